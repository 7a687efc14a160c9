//! Connect tokens from anywhere must never panic: parsing a token file's bytes (whatever is
//! accepted re-serializes to the same bytes), and a secure server opening whatever sealed
//! part, expiry and nonce a request carries.
#![no_main]

use std::time::Instant;

use gudp::protocol::wire::{WirePacket, DEFAULT_PROTOCOL_ID};
use gudp::protocol::{Config, Endpoint};
use gudp::secure::{ConnectToken, PrivateKey, SecureHello, SecureServer, UnixClock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = ConnectToken::from_bytes(data) {
        assert_eq!(token.to_bytes(), data);
    }
    let mut sealed = [0u8; 1024];
    let n = data.len().min(1024);
    sealed[..n].copy_from_slice(&data[..n]);
    let word = |at: usize| {
        let mut w = [0u8; 8];
        let tail = data.get(1024 + at..).unwrap_or(&[]);
        let k = tail.len().min(8);
        w[..k].copy_from_slice(&tail[..k]);
        u64::from_be_bytes(w)
    };
    let hello = SecureHello {
        nonce: word(0),
        fingerprint: 0,
        expire_timestamp: word(8),
        token_nonce: [0x24; 24],
        sealed: &sealed,
    };
    let now = Instant::now();
    let public = "127.0.0.1:40000".parse().unwrap();
    let mut server = Endpoint::new(Config::default(), [1; 16]);
    let key = PrivateKey::from_bytes([7; 32]);
    server.set_secure(SecureServer::new(key, public, UnixClock::new(now, 1_000)));
    let mut buf = [0u8; 1200];
    let len = WirePacket::SecureRequest(hello)
        .encode(DEFAULT_PROTOCOL_ID, &mut buf)
        .expect("1,200 bytes fit");
    let from = "127.0.0.1:5000".parse().unwrap();
    let _ = server.handle_datagram_mut(now, from, &mut buf[..len]);
    assert_eq!(server.connection_count(), 0); // nothing forged gets in
});
