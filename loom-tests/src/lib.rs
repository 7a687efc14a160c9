//! Checks of GUDP's concurrent core, which it reaches through the `internals` feature (not
//! part of gudp's API). Under `--cfg loom`, `tests/` holds the loom models; without it, the
//! stress tests of the core on real threads (`tests/*_stress.rs`), which `cargo test
//! --workspace` runs in both modes. This library holds the helpers they share. The models:
//!
//! ```text
//! scripts/loom.sh            # both modes, each model at its own bound
//! ```

/// Runs `model` under loom's checker with at most `preemptions` preemptions per interleaving
/// (`LOOM_MAX_PREEMPTIONS`, if set, overrides it for every model) and prints how many
/// interleavings it explored, for `docs/proofs.md`.
#[cfg(loom)]
pub fn check<F>(name: &str, preemptions: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let explored = Arc::new(AtomicUsize::new(0));
    let counter = explored.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(preemptions);
    }
    let bound = builder.preemption_bound;
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    println!(
        "loom model {name} [{}]: {} interleavings, preemption bound {}",
        gudp::IMPLEMENTATION,
        explored.load(Ordering::Relaxed),
        bound.map_or_else(|| "none".to_string(), |b| b.to_string()),
    );
}

/// Fails, naming the first ten, if any item of `seen` (a count per item) was not received
/// exactly once.
#[cfg(not(loom))]
pub fn assert_each_seen_once(seen: &[u8]) {
    let lost: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).take(10).collect();
    let twice: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).take(10).collect();
    assert!(
        lost.is_empty(),
        "items never received (first ten): {lost:?}"
    );
    assert!(
        twice.is_empty(),
        "items received twice (first ten): {twice:?}"
    );
}

/// An eventfd as epoll sees it, for the models of the event loop's sleep: a wake sets it; a
/// sleep returns once it is set, clearing it.
#[cfg(loom)]
#[derive(Default)]
pub struct EventFd {
    signalled: loom::sync::Mutex<bool>,
    condvar: loom::sync::Condvar,
}

#[cfg(loom)]
impl EventFd {
    /// Sets it (a `mio::Waker::wake`).
    pub fn wake(&self) {
        *self.signalled.lock().unwrap() = true;
        self.condvar.notify_one();
    }

    /// Returns once it is set, clearing it (the loop's sleep in `mio::Poll`).
    pub fn sleep(&self) {
        let mut signalled = self.signalled.lock().unwrap();
        while !*signalled {
            signalled = self.condvar.wait(signalled).unwrap();
        }
        *signalled = false;
    }
}
