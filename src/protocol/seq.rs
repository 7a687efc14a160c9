//! Wrap-aware 16-bit sequence numbers.
//!
//! Sequence numbers travel on the wire as `u16` and wrap from 65535 to 0. They are compared
//! by the signed distance between them, never with `Ord` (that order is not transitive across
//! the wrap). Internally every connection extends them to `u64` ("extended sequence") relative
//! to a reference it already holds, so its buffers and [`PacketNumber`](super::PacketNumber)s never
//! wrap.
//!
//! ```
//! use gudp::protocol::seq::{extend_sequence, sequence_greater_than};
//! // 2 was sent after 65535: the wire number wrapped, the extended one does not.
//! assert!(sequence_greater_than(2, 65_535));
//! assert_eq!(extend_sequence(65_535, 2), Some(65_538));
//! ```

/// Half the sequence space: two sequences this far apart compare neither greater nor less.
///
/// ```
/// use gudp::protocol::seq::{sequence_greater_than, HALF_RANGE};
/// assert!(sequence_greater_than(HALF_RANGE - 1, 0));
/// assert!(!sequence_greater_than(HALF_RANGE, 0)); // exactly half apart: neither is newer
/// ```
pub const HALF_RANGE: u16 = 0x8000;

/// `true` when `a` is more recent than `b`, taking wrap-around into account.
///
/// `a` is greater when `a - b (mod 65536)` lies in `1..=32767`. At a distance of exactly
/// 32768 neither is greater than the other.
///
/// ```
/// use gudp::protocol::seq::sequence_greater_than;
/// assert!(sequence_greater_than(1, 0));
/// assert!(sequence_greater_than(0, 65535)); // across the wrap
/// assert!(!sequence_greater_than(65535, 0));
/// assert!(!sequence_greater_than(32768, 0) && !sequence_greater_than(0, 32768));
/// ```
#[inline]
pub fn sequence_greater_than(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < HALF_RANGE
}

/// `true` when `a` is older than `b`, taking wrap-around into account (`b` greater than `a`).
///
/// ```
/// use gudp::protocol::seq::sequence_less_than;
/// assert!(sequence_less_than(65_535, 0)); // 65535 was sent just before the wrap to 0
/// assert!(!sequence_less_than(0, 65_535));
/// assert!(!sequence_less_than(9, 9));
/// ```
#[inline]
pub fn sequence_less_than(a: u16, b: u16) -> bool {
    sequence_greater_than(b, a)
}

/// Extends a wire sequence to 64 bits: the extended sequence closest to `reference` whose low
/// 16 bits equal `seq`, within `reference - 32768 ..= reference + 32767`.
///
/// Returns `None` when that value would be negative (a sequence "before the start").
///
/// A receiver passes the newest sequence it holds (0 before the first): a packet exactly
/// half the space ahead of it then extends 32768 *behind* it, since neither is newer, and can
/// never become the newest.
///
/// ```
/// use gudp::protocol::seq::extend_sequence;
/// assert_eq!(extend_sequence(65_535, 0), Some(65_536));
/// assert_eq!(extend_sequence(65_536, 65_535), Some(65_535));
/// assert_eq!(extend_sequence(3, 65_535), None);
/// // Newest 4: 32,771 is newer, 32,772 (exactly half ahead) is not.
/// assert_eq!(extend_sequence(4, 32_771), Some(32_771));
/// assert_eq!(extend_sequence(4, 32_772), None);
/// assert_eq!(extend_sequence(100_000, 1_696), Some(100_000 - 32_768));
/// ```
#[inline]
pub fn extend_sequence(reference: u64, seq: u16) -> Option<u64> {
    // Signed distance from the reference's low bits to `seq`, in -32768..=32767.
    let delta = seq.wrapping_sub(reference as u16) as i16;
    reference.checked_add_signed(i64::from(delta))
}

/// Extends an acknowledged wire sequence to the most recent extended sequence at or before
/// `latest` with the same low 16 bits (acks can only name packets already sent).
///
/// Returns `None` when fewer packets than that distance have been sent.
///
/// ```
/// use gudp::protocol::seq::extend_backwards;
/// // 70000 packets sent so far; 70000 mod 65536 = 4464.
/// assert_eq!(extend_backwards(70_000, 4_464), Some(70_000));
/// assert_eq!(extend_backwards(70_000, 4_465), Some(4_465)); // 65535 packets back
/// assert_eq!(extend_backwards(5, 6), None); // not sent yet
/// ```
#[inline]
pub fn extend_backwards(latest: u64, seq: u16) -> Option<u64> {
    let back = (latest as u16).wrapping_sub(seq);
    latest.checked_sub(u64::from(back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greater_than_is_antisymmetric_and_wraps() {
        for (a, b) in [(1u16, 0u16), (0, 65535), (100, 65000), (32767, 0)] {
            assert!(sequence_greater_than(a, b), "{a} > {b}");
            assert!(!sequence_greater_than(b, a), "!({b} > {a})");
            assert!(sequence_less_than(b, a));
        }
        assert!(!sequence_greater_than(7, 7));
        assert!(!sequence_greater_than(32768, 0));
        assert!(!sequence_greater_than(0, 32768));
    }

    #[test]
    fn extension_round_trips_near_the_reference() {
        for reference in [0u64, 1, 65_535, 65_536, 1_000_000, 4_295_032_831] {
            for offset in [-32_768i64, -1, 0, 1, 32_767] {
                let Some(target) = reference.checked_add_signed(offset) else {
                    continue;
                };
                assert_eq!(extend_sequence(reference, target as u16), Some(target));
            }
        }
        assert_eq!(extend_sequence(10, 65_535), None);
    }

    /// The sequence-extension vectors of docs/protocol.md §8.
    #[test]
    fn spec_extension_vectors() {
        let vectors: [(u64, u16, Option<u64>); 10] = [
            (0, 0, Some(0)),
            (0, 32_767, Some(32_767)),
            (0, 32_768, None),
            (4, 32_771, Some(32_771)),
            (4, 32_772, None),
            (5, 32_772, Some(32_772)),
            (65_535, 0, Some(65_536)),
            (65_536, 65_535, Some(65_535)),
            (100_000, 1_696, Some(67_232)),
            (100_000, 1_695, Some(132_767)),
        ];
        for (newest, wire, extended) in vectors {
            assert_eq!(extend_sequence(newest, wire), extended, "{newest} {wire}");
        }
    }

    #[test]
    fn backwards_extension_names_only_sent_packets() {
        assert_eq!(extend_backwards(70_000, 70_000u64 as u16), Some(70_000));
        assert_eq!(extend_backwards(70_000, 69_999u64 as u16), Some(69_999));
        assert_eq!(
            extend_backwards(70_000, 70_001u64 as u16),
            Some(70_001 - 65_536)
        );
        assert_eq!(extend_backwards(5, 65_535), None);
    }
}
