//! The baseline: raw `std::net::UdpSocket` over loopback, one `send` / `recv` call per packet.

use super::rounds::Sample;
use super::span::{self, Flags};
use std::net::UdpSocket;
use std::time::Duration;

/// Two connected loopback sockets whose reads give up after 50 ms (so a thread sees its stop
/// flag).
fn pair() -> Result<(UdpSocket, UdpSocket), String> {
    let bind = || UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("raw UDP bind: {e}"));
    let (a, b) = (bind()?, bind()?);
    let addr = |s: &UdpSocket| s.local_addr().map_err(|e| e.to_string());
    a.connect(addr(&b)?).map_err(|e| e.to_string())?;
    b.connect(addr(&a)?).map_err(|e| e.to_string())?;
    for socket in [&a, &b] {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

/// A sender blasting `size`-byte datagrams as fast as `send` returns; a receiver counting.
pub fn one_way(size: usize, span: Duration) -> Result<Sample, String> {
    let (sender, receiver) = pair()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0xab; size];
            while flags.sending() {
                // A full socket buffer is the kernel's to drop: the send itself succeeds.
                if sender.send(&payload).is_ok() {
                    flags.sent(1);
                }
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            let mut buf = [0u8; 2048];
            while flags.receiving() {
                if receiver.recv(&mut buf).is_ok() {
                    flags.delivered(1);
                }
            }
            Ok(())
        }),
    )
}

/// One `size`-byte datagram in flight, echoed by a thread blocked in `recv`.
pub fn ping_pong(size: usize, span: Duration) -> Result<Sample, String> {
    let (client, server) = pair()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0x11; size];
            let mut buf = [0u8; 2048];
            while flags.sending() {
                client
                    .send(&payload)
                    .map_err(|e| format!("raw send: {e}"))?;
                flags.sent(1);
                if client.recv(&mut buf).is_ok() {
                    flags.delivered(1);
                }
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            let mut buf = [0u8; 2048];
            while flags.receiving() {
                if let Ok(len) = server.recv(&mut buf) {
                    let _ = server.send(&buf[..len]);
                }
            }
            Ok(())
        }),
    )
}
