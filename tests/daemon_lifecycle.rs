//! The daemon's life and death: shutdown wakes every blocked caller with `DaemonStopped` and
//! tells peers, a failed connect says why, a bad configuration is refused with a clear error.

mod common;

use common::{loopback, pair, watchdog};
use gudp::protocol::Config;
use gudp::{
    CloseReason, ConnectError, Daemon, DaemonConfig, RecvTimeoutError, SendError, TryRecvError,
};
use std::io;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn shutdown_wakes_every_blocked_caller_and_tells_the_peer() {
    let _watchdog = watchdog("shutdown_wakes", Duration::from_secs(30));
    let p = pair(DaemonConfig::default(), DaemonConfig::default());
    let receiver = {
        let server = p.server.clone();
        thread::spawn(move || server.recv())
    };
    let acceptor = {
        let listener = p.listener;
        thread::spawn(move || listener.accept().map(|_| ()))
    };
    // Let both block before the daemon goes away.
    thread::sleep(Duration::from_millis(100));
    p.server_daemon.shutdown();

    assert_eq!(receiver.join().unwrap(), Err(CloseReason::DaemonStopped));
    assert_eq!(acceptor.join().unwrap(), Err(CloseReason::DaemonStopped));
    assert_eq!(
        p.server.try_send(b"late"),
        Err(SendError::Closed(CloseReason::DaemonStopped))
    );
    assert_eq!(
        p.server.status().close_reason(),
        Some(CloseReason::DaemonStopped)
    );
    // The shutdown sent the peer a disconnect: it ends at once, not after its idle timeout.
    assert_eq!(
        p.client.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed(CloseReason::ClosedByPeer))
    );
    assert!(
        p.server_daemon.listen(loopback()).is_err(),
        "a stopped daemon binds nothing"
    );
}

#[test]
fn dropping_the_daemon_finishes_its_connections() {
    let _watchdog = watchdog("dropping_the_daemon", Duration::from_secs(30));
    let p = pair(DaemonConfig::default(), DaemonConfig::default());
    let client = p.client.clone();
    drop(p.client_daemon);
    assert_eq!(
        client.try_recv(),
        Err(TryRecvError::Closed(CloseReason::DaemonStopped))
    );
    assert_eq!(
        p.server.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed(CloseReason::ClosedByPeer))
    );
}

#[test]
fn manual_daemon_refuses_to_poll_after_shutdown() {
    let daemon = Daemon::manual(DaemonConfig::default()).unwrap();
    daemon.poll(Some(Duration::ZERO)).unwrap();
    daemon.shutdown();
    assert!(daemon.poll(Some(Duration::ZERO)).is_err());
    // A spawned daemon has no `poll` at all (a compile_fail doctest on `Daemon::spawn`).
}

#[test]
fn connect_to_nobody_times_out_with_its_reason() {
    let _watchdog = watchdog("connect_to_nobody", Duration::from_secs(30));
    let mut config = DaemonConfig::default();
    config.protocol.connect_timeout = Duration::from_millis(300);
    let daemon = Daemon::spawn(config).unwrap();
    // A bound socket that never answers: requests reach it and are ignored.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let error = daemon
        .connect(silent.local_addr().unwrap())
        .expect_err("nobody answers");
    assert!(
        matches!(error, ConnectError::Failed(CloseReason::ConnectTimedOut)),
        "{error}"
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "gave up after {waited:?} for a 300 ms connect timeout"
    );
    assert_eq!(daemon.counters().unaccounted(), 0);
}

#[test]
fn bad_configurations_are_refused_with_a_clear_error() {
    let cases = [
        (
            {
                let mut config = DaemonConfig::default();
                config.io_batch = 0;
                config
            },
            "io_batch",
        ),
        (
            {
                let mut config = DaemonConfig::default();
                config.io_batch = 65;
                config
            },
            "io_batch",
        ),
        (
            {
                let mut config = DaemonConfig::default();
                config.inbox_capacity = 0;
                config
            },
            "inbox_capacity",
        ),
        (
            {
                let mut config = DaemonConfig::default();
                config.protocol = {
                    let mut protocol = Config::default();
                    protocol.max_payload = 70_000;
                    protocol
                };
                config
            },
            "max_payload",
        ),
    ];
    for (config, field) in cases {
        for result in [
            Daemon::spawn(config.clone()).map(drop),
            Daemon::manual(config).map(drop),
        ] {
            let error = result.expect_err("refused");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}

#[test]
fn single_datagram_system_calls_carry_the_same_traffic() {
    // io_batch = 1 takes the portable path (one recv_from / send_to per datagram).
    let _watchdog = watchdog("single_datagram_calls", Duration::from_secs(30));
    let mut config = DaemonConfig::default();
    config.io_batch = 1;
    let p = pair(config.clone(), config);
    for i in 0..200u32 {
        p.client.send(&i.to_le_bytes()).unwrap();
    }
    for i in 0..200u32 {
        let packet = p.server.recv_timeout(WAIT).expect("every packet arrives");
        assert_eq!(&packet[..], &i.to_le_bytes());
    }
    assert_eq!(p.server_daemon.counters().unaccounted(), 0);
}

/// A frame loop connects without blocking: the pending connection answers at once on every
/// poll, and an address no server can have is refused before anything is sent.
#[test]
fn nonblocking_connect_never_blocks_and_bad_addresses_fail_at_once() {
    let _watchdog = watchdog("nonblocking connect", Duration::from_secs(30));
    let mut config = DaemonConfig::default();
    config.protocol.connect_timeout = Duration::from_millis(300);
    let daemon = Daemon::spawn(config).unwrap();
    for bad in [
        "127.0.0.1:0",
        "0.0.0.0:9",
        "224.0.0.1:9",
        "255.255.255.255:9",
    ] {
        let started = std::time::Instant::now();
        let refused = daemon.connect(bad.parse().unwrap());
        assert!(
            matches!(refused, Err(gudp::ConnectError::InvalidAddress(_))),
            "{bad}: {refused:?}"
        );
        // Refused before anything is sent; generous for a machine whose cores are busy.
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{bad} waited"
        );
    }
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pending = daemon
        .connect_nonblocking(silent.local_addr().unwrap())
        .unwrap();
    let started = std::time::Instant::now();
    let outcome = loop {
        let poll_started = std::time::Instant::now();
        let outcome = pending.try_finish();
        // A poll is a load and a clock read; 250 ms only allows for a descheduled thread.
        assert!(
            poll_started.elapsed() < Duration::from_millis(250),
            "try_finish blocked"
        );
        if let Some(outcome) = outcome {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(matches!(
        outcome,
        Err(gudp::ConnectError::Failed(CloseReason::ConnectTimedOut))
    ));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let pending = daemon.connect_nonblocking(listener.local_addr()).unwrap();
    let conn = loop {
        if let Some(outcome) = pending.try_finish() {
            break outcome.unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(conn.peer_addr(), listener.local_addr());
}

/// Two daemons can be told apart in a profiler: each thread carries its configured name.
#[cfg(target_os = "linux")]
#[test]
fn daemon_threads_carry_their_configured_names() {
    let mut config = DaemonConfig::default();
    config.thread_name = "gudp-lobby".into();
    let _daemon = Daemon::spawn(config).unwrap();
    let names = || -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_string())
            .collect()
    };
    // The new thread names itself as it starts, just after `spawn` returns.
    common::wait_for(Duration::from_secs(5), "the named daemon thread", || {
        names().iter().any(|n| n == "gudp-lobby")
    });
    let mut bad = DaemonConfig::default();
    bad.thread_name = String::new();
    assert!(Daemon::spawn(bad).is_err(), "an empty name is refused");
}
