//! The datagram decoder must never panic, and whatever it accepts must re-encode to the very
//! same bytes (every field has exactly one encoding).
#![no_main]

use gudp::protocol::wire::{decode, DEFAULT_PROTOCOL_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = decode(DEFAULT_PROTOCOL_ID, data) {
        let mut out = vec![0u8; data.len()];
        let n = packet
            .encode(DEFAULT_PROTOCOL_ID, &mut out)
            .expect("same length fits");
        assert_eq!(&out[..n], data);
    }
});
