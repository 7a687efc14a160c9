//! Proofs for `gudp::internals::status::StatusWord`.
#![cfg(loom)]

use gudp::internals::status::{CloseReason, CongestionMode, StatusWord};
use loom::sync::Arc;
use loom::thread;
use loom_tests::check;

/// **Property:** of two concurrent finishers exactly one is told it was first, both reasons
/// are recorded, and the reported reason is the higher-priority one.
///
/// **Why it holds:** `finish` is a single `fetch_or`. Read-modify-writes on one atomic are
/// totally ordered, so exactly one of them sees no final bit in the previous value; and
/// `fetch_or` can only add bits, so the second reason joins the first.
#[test]
fn exactly_one_first_finisher_and_both_reasons_kept() {
    check("status::exactly_one_first_finisher", 3, || {
        let word = Arc::new(StatusWord::new());
        let other = {
            let word = word.clone();
            thread::spawn(move || word.finish(CloseReason::ClosedByPeer))
        };
        let mine = word.finish(CloseReason::TimedOut);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one finisher is first");
        let status = word.load();
        let reasons: Vec<_> = status.close_reasons().collect();
        assert_eq!(reasons, [CloseReason::TimedOut, CloseReason::ClosedByPeer]);
        assert_eq!(status.close_reason(), Some(CloseReason::TimedOut));
    });
}

/// **Property:** a working-state change never lands after a final bit: if `set_congestion`
/// reports success its change is visible in the final word; if it reports the close reason,
/// the word still holds the old mode. And an observer that has seen a final bit never sees
/// it cleared afterwards.
///
/// **Why it holds:** the working change is a CAS whose expected value was checked to have no
/// final bit. If `finish`'s `fetch_or` lands first, the CAS fails (the value changed) and the
/// retry sees the final bit and gives up. No operation in the type can remove a bit.
#[test]
fn working_change_never_after_final() {
    check("status::working_change_never_after_final", 3, || {
        let word = Arc::new(StatusWord::new());
        let setter = {
            let word = word.clone();
            thread::spawn(move || word.set_congestion(CongestionMode::Bad))
        };
        let observer = {
            let word = word.clone();
            thread::spawn(move || {
                let first = word.load();
                let second = word.load();
                assert!(
                    !first.is_finished() || second.is_finished(),
                    "final is absorbing"
                );
            })
        };
        word.finish(CloseReason::Closed);
        let result = setter.join().unwrap();
        observer.join().unwrap();
        let status = word.load();
        match result {
            Ok(()) => assert_eq!(status.congestion(), CongestionMode::Bad),
            Err(reason) => {
                assert_eq!(reason, CloseReason::Closed);
                assert_eq!(status.congestion(), CongestionMode::Good);
            }
        }
        assert_eq!(status.close_reason(), Some(CloseReason::Closed));
    });
}
