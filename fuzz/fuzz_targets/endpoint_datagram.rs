//! A server endpoint with one live connection is fed the fuzzer's datagrams, alternately from
//! the connected peer and from a stranger: no input may panic it.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gudp::protocol::wire::DEFAULT_PROTOCOL_ID;
use gudp::protocol::{Config, Endpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let client_addr: SocketAddr = "10.0.0.1:1".parse().unwrap();
    let server_addr: SocketAddr = "10.0.0.2:2".parse().unwrap();
    let stranger: SocketAddr = "10.0.0.3:3".parse().unwrap();
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    client.connect(t0, server_addr).unwrap();
    let mut buf = vec![0u8; 1500];
    for _ in 0..3 {
        while let Some(t) = client.poll_transmit(t0, &mut buf) {
            server.handle_datagram(t0, client_addr, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(t0, &mut buf) {
            client.handle_datagram(t0, server_addr, &buf[..t.len]);
        }
    }
    // Split the input into datagrams at 0xff bytes; give each our protocol id so it reaches
    // the deeper decoders and the connection state machine.
    let mut now = t0;
    for (i, chunk) in data.split(|&b| b == 0xff).enumerate() {
        let mut d = DEFAULT_PROTOCOL_ID.to_be_bytes().to_vec();
        d.extend_from_slice(chunk);
        now += Duration::from_millis(7);
        let from = if i % 2 == 0 { client_addr } else { stranger };
        let _ = server.handle_datagram(now, from, &d);
        server.handle_timeout(now);
        while server.poll_transmit(now, &mut buf).is_some() {}
        while server.poll_event().is_some() {}
    }
});
