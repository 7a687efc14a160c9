//! The `gudp` command, driven as a user would: the real binary, over loopback, with
//! signals. Durations are short so that the whole file runs in well under a minute.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const GUDP: &str = env!("CARGO_BIN_EXE_gudp");

/// A running `gudp` whose output is collected as it comes.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
}

/// What a finished `gudp` did.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// From the start of the process.
    took: Duration,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(GUDP)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gudp binary runs");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let lines = stdout.clone();
        thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let text = stderr.clone();
        thread::spawn(move || {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all);
            *text.lock().unwrap() = all;
        });
        Running {
            child,
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    /// Waits for a stdout line containing `needle`.
    fn line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.stdout.lock().unwrap();
            if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}; stdout so far:\n{}",
                lines.join("\n")
            );
            drop(lines);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the exit (killing the process and failing after `timeout`).
    fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "gudp still running after {timeout:?}; stdout:\n{}",
                    self.stdout.lock().unwrap().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let took = self.started.elapsed();
        // The readers finish at end of file, right after the exit.
        thread::sleep(Duration::from_millis(50));
        let stdout = self.stdout.lock().unwrap().join("\n");
        let stderr = self.stderr.lock().unwrap().clone();
        Finished {
            status,
            stdout,
            stderr,
            took,
        }
    }
}

fn gudp(args: &[&str], timeout: Duration) -> Finished {
    Running::start(args).finish(timeout)
}

/// `gudp serve` on a free loopback port, and that port.
fn server(extra: &[&str]) -> (Running, SocketAddr) {
    let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let serve = Running::start(&args);
    let line = serve.line("gudp echo server on ", Duration::from_secs(10));
    let addr = line
        .trim_start_matches("gudp echo server on ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .expect("serve prints its address");
    (serve, addr)
}

/// The numbers of the client's summary line: sent, acked, lost.
fn summary(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let after = |word: &str| -> u64 {
        let rest = &line[line
            .find(word)
            .unwrap_or_else(|| panic!("{word} in {line}"))
            + word.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (after("sent "), after("acked "), after("lost "))
}

#[test]
fn bad_input_gets_a_clear_error_at_once() {
    let cases: &[(&[&str], &str)] = &[
        (&["connect", "127.0.0.1:0"], "port 0 is not a destination"),
        (&["connect", "0.0.0.0:9"], "is not a destination"),
        (&["connect", "localhost"], "has no port"),
        (&["connect", "localhost:70000"], "is not HOST:PORT"),
        (&["connect", "no-such-host.invalid:9"], "cannot resolve"),
        (
            &["connect", "127.0.0.1:9", "--rate", "-5"],
            "-5 is not in 1..=",
        ),
        (
            &["connect", "127.0.0.1:9", "--duration", "0"],
            "number of seconds",
        ),
        (
            &["connect", "127.0.0.1:9", "--size", "5000"],
            "5000 is not in 0..=1200",
        ),
        (&["serve", "--bind", "127.0.0.1"], "has no port"),
        (
            &["serve", "--bind", "127.0.0.1:0", "--duration", "-1"],
            "number of seconds",
        ),
        (&["demo", "--rate", "0"], "0 is not in 1..="),
        (
            &["demo", "--chart", "/no/such/dir/x.svg"],
            "cannot write the chart",
        ),
        (
            &["connect", "127.0.0.1:9", "--chart", "/no/such/dir/x.svg"],
            "cannot write the chart",
        ),
    ];
    for (args, expected) in cases {
        let run = gudp(args, Duration::from_secs(10));
        assert!(!run.status.success(), "{args:?} succeeded");
        assert!(
            run.stderr.contains(expected),
            "{args:?}: expected {expected:?} in stderr:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("-- -5"),
            "{args:?}: clap's misleading tip"
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert!(
            run.took < Duration::from_secs(3),
            "{args:?} took {:?}",
            run.took
        );
    }
}

#[test]
fn connect_by_host_name_shows_the_visible_address_and_accounts_for_every_packet() {
    let (serve, addr) = server(&["--duration", "4"]);
    let target = format!("localhost:{}", addr.port());
    let run = gudp(
        &["connect", &target, "--rate", "50", "--duration", "1.5"],
        Duration::from_secs(15),
    );
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let connected = run.stdout.lines().next().unwrap();
    assert!(
        connected.starts_with("connected 127.0.0.1:") && connected.ends_with(&format!("-> {addr}")),
        "{connected}"
    );
    let (sent, acked, lost) = summary(&run.stdout);
    assert!(sent >= 50, "{}", run.stdout);
    assert_eq!(sent, acked + lost, "{}", run.stdout);
    assert!(!run.stdout.contains("unresolved"), "{}", run.stdout);
    serve.finish(Duration::from_secs(10));
}

#[test]
fn serve_table_shows_open_connections_and_a_clean_exit_is_not_invalid() {
    let (serve, addr) = server(&["--duration", "3.5"]);
    let target = addr.to_string();
    let client = gudp(
        &["connect", &target, "--rate", "40", "--duration", "1"],
        Duration::from_secs(15),
    );
    assert!(client.status.success(), "{}", client.stderr);
    let serve = serve.finish(Duration::from_secs(10));
    assert!(serve.status.success(), "{}", serve.stderr);
    let out = &serve.stdout;
    let header = out.lines().find(|l| l.contains("open")).unwrap();
    for column in ["open", "accepted", "recv/s", "invalid/s", "stray/s"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(out.contains("closed by peer after"), "{out}");
    // Rows: t, open, accepted, recv/s, echoed/s, refused/s, inbox-full/s, invalid/s, stray/s.
    let rows: Vec<Vec<u64>> = out
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| {
            l.split_whitespace()
                .map(|f| f.trim_end_matches('s').parse().unwrap())
                .collect()
        })
        .collect();
    assert!(
        rows.iter().any(|r| r[1] == 1),
        "open while connected:\n{out}"
    );
    let last = rows.last().unwrap();
    assert_eq!(
        (last[1], last[2]),
        (0, 1),
        "open 0, accepted 1 after:\n{out}"
    );
    assert!(rows.iter().all(|r| r[7] == 0), "nothing invalid:\n{out}");
    let totals = out.lines().find(|l| l.starts_with("totals:")).unwrap();
    assert!(totals.contains(" 0 invalid"), "{totals}");
}

#[test]
fn sigint_on_serve_closes_its_clients_at_once() {
    let (serve, addr) = server(&[]);
    let target = addr.to_string();
    let client = Running::start(&["connect", &target, "--rate", "40", "--duration", "30"]);
    client.line("1s ", Duration::from_secs(10));
    let signalled = Instant::now();
    serve.signal("INT");
    let serve = serve.finish(Duration::from_secs(10));
    assert!(serve.status.success(), "serve exits 0 after a clean stop");
    assert!(
        serve
            .stdout
            .contains("interrupted: closing 1 open connection(s)"),
        "{}",
        serve.stdout
    );
    let client = client.finish(Duration::from_secs(10));
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "the client learnt at once, not after its idle timeout"
    );
    assert_eq!(client.status.code(), Some(1));
    assert!(
        client.stderr.contains("the server closed the connection"),
        "{}",
        client.stderr
    );
    let (sent, acked, lost) = summary(&client.stdout);
    assert_eq!(sent, acked + lost, "{}", client.stdout);
}

#[test]
fn sigterm_on_connect_closes_cleanly_and_exits_130() {
    let (serve, addr) = server(&[]);
    let target = addr.to_string();
    let client = Running::start(&["connect", &target, "--rate", "40", "--duration", "30"]);
    client.line("1s ", Duration::from_secs(10));
    let signalled = Instant::now();
    client.signal("TERM");
    let client = client.finish(Duration::from_secs(10));
    assert_eq!(client.status.code(), Some(130), "{}", client.stderr);
    assert!(
        client.stderr.contains("interrupted after"),
        "{}",
        client.stderr
    );
    let (sent, acked, lost) = summary(&client.stdout);
    assert_eq!(sent, acked + lost, "{}", client.stdout);
    serve.line("closed by peer after", Duration::from_secs(3));
    assert!(signalled.elapsed() < Duration::from_secs(4));
    serve.signal("TERM");
    assert!(serve.finish(Duration::from_secs(10)).status.success());
}

#[test]
fn connect_fails_and_says_why_when_the_server_dies_mid_run() {
    let (serve, addr) = server(&[]);
    let target = addr.to_string();
    let client = Running::start(&["connect", &target, "--rate", "40", "--duration", "4"]);
    client.line("1s ", Duration::from_secs(10));
    serve.signal("KILL"); // no clean close: the client hears nothing more
    let _ = serve.finish(Duration::from_secs(5));
    let client = client.finish(Duration::from_secs(15));
    assert_eq!(client.status.code(), Some(1), "{}", client.stdout);
    assert!(
        client.stderr.contains("the server stopped answering"),
        "{}",
        client.stderr
    );
    let (sent, acked, lost) = summary(&client.stdout);
    assert_eq!(sent, acked + lost, "{}", client.stdout);
    assert!(lost > 0);
}

#[test]
fn connect_to_nothing_fails_with_the_reason() {
    // A port nothing listens on: bind one and free it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let run = gudp(
        &["connect", &target, "--duration", "1"],
        Duration::from_secs(15),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(
        run.stderr.contains(&format!("cannot connect to {target}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("connect timed out"), "{}", run.stderr);
}

#[test]
fn demo_and_connect_write_self_contained_charts() {
    let dir = std::env::temp_dir().join(format!("gudp-cli-charts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("demo.svg");
    let demo = gudp(
        &["demo", "--duration", "6", "--chart", svg.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(demo.status.success(), "{}", demo.stderr);
    assert!(demo.stdout.contains("chart written to"), "{}", demo.stdout);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(text.trim_end().ends_with("</svg>"));
    for part in [
        "round trip and jitter",
        "packet loss",
        "packets per second",
        "mode",
    ] {
        assert!(text.contains(part), "{part}");
    }
    assert!(
        text.contains("→ bad at"),
        "the change to bad mode is marked"
    );
    assert_eq!(
        text.matches("http").count(),
        1,
        "nothing fetched: only the xmlns"
    );

    let (serve, addr) = server(&["--duration", "3"]);
    let html = dir.join("run.html");
    let target = addr.to_string();
    let run = gudp(
        &[
            "connect",
            &target,
            "--duration",
            "1",
            "--chart",
            html.to_str().unwrap(),
        ],
        Duration::from_secs(15),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg"));
    assert!(!page.contains("<script") && !page.contains("<link"));
    serve.finish(Duration::from_secs(10));

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_signal_exits_at_once() {
    let (serve, addr) = server(&[]);
    let target = addr.to_string();
    let client = Running::start(&["connect", &target, "--rate", "40", "--duration", "30"]);
    client.line("1s ", Duration::from_secs(10));
    // A frozen server acks nothing: the client's clean close would linger its full second.
    serve.signal("STOP");
    thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    client.signal("INT");
    thread::sleep(Duration::from_millis(100));
    client.signal("INT");
    let client = client.finish(Duration::from_secs(10));
    assert_eq!(client.status.code(), Some(130));
    assert!(
        !client.stdout.contains("summary:"),
        "it did not wait for the close: {}",
        client.stdout
    );
    // Under the linger's full second plus the wait for the last echoes (no summary above is
    // the sharper sign); the slack is for a machine whose cores are busy.
    assert!(signalled.elapsed() < Duration::from_millis(1_500));
    serve.signal("CONT");
    serve.signal("TERM");
    assert!(serve.finish(Duration::from_secs(10)).status.success());
}

#[test]
fn an_idle_server_is_quiet() {
    let serve = gudp(
        &["serve", "--bind", "127.0.0.1:0", "--duration", "1.5"],
        Duration::from_secs(10),
    );
    assert!(serve.status.success(), "{}", serve.stderr);
    let rows = serve
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(rows, 0, "no line of zeros each second:\n{}", serve.stdout);
    assert!(serve.stdout.contains("totals: "), "{}", serve.stdout);
}

#[test]
fn a_closed_stdout_stops_serve_cleanly_instead_of_panicking() {
    let mut serve = Command::new(GUDP)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `gudp serve | head -1` does: read the first line, then close the pipe.
    let mut first = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("gudp echo server on "), "{first}");
    // Whatever serve prints next fails, if not its header then the client's arrival.
    let addr = first.split_whitespace().nth(4).unwrap();
    let mut client = Running::start(&["connect", addr, "--duration", "5"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve ignored its closed stdout");
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = client.child.kill();
    let _ = client.child.wait();
}

#[test]
fn an_interrupted_demo_still_writes_its_chart() {
    let dir = std::env::temp_dir().join(format!("gudp-cli-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("cut.svg");
    let demo = Running::start(&["demo", "--duration", "20", "--chart", svg.to_str().unwrap()]);
    demo.line("1s ", Duration::from_secs(10));
    demo.signal("INT");
    let demo = demo.finish(Duration::from_secs(10));
    assert_eq!(demo.status.code(), Some(130), "{}", demo.stderr);
    assert!(demo.stdout.contains("summary: "), "{}", demo.stdout);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<polyline"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_prints_a_table_with_medians_ratios_and_targets_in_three_formats() {
    let dir = std::env::temp_dir().join(format!("gudp-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (md, csv) = (dir.join("t.md"), dir.join("t.csv"));
    let args = [
        "bench",
        "--rows",
        "pingpong",
        "--sizes",
        "64",
        "--peers",
        "none",
        "--rounds",
        "2",
        "--span",
        "0.2",
        "--markdown",
        md.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ];
    let bench = gudp(&args, Duration::from_secs(60));
    assert!(bench.status.success(), "{}{}", bench.stdout, bench.stderr);
    // Raw UDP, GUDP with the default configuration (with its target), the unpaced extra.
    for row in ["raw UDP", "GUDP ", "GUDP unpaced (extra)"] {
        let line = format!("ping-pong 64 B, one in flight: {row}");
        assert!(
            bench.stdout.contains(&line),
            "{line} missing:\n{}",
            bench.stdout
        );
    }
    assert!(
        bench.stdout.contains("DaemonConfig::default()"),
        "{}",
        bench.stdout
    );
    assert!(
        bench.stdout.contains("target ≥ 0.8× raw"),
        "{}",
        bench.stdout
    );
    let md = std::fs::read_to_string(&md).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines.len(),
        2 + 3,
        "header, separator and a line per row:\n{md}"
    );
    for line in &lines {
        assert_eq!(line.matches(" | ").count(), 5, "six cells: {line}");
    }
    // Two rounds: a median with its range, and the per-round ratio to raw UDP.
    assert!(
        lines[3].contains(") round trips/s") && lines[3].contains("× ("),
        "{md}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("key,measurement,"), "{csv}");
    assert!(csv.contains("\npingpong-64-gudp,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    let bad = gudp(&["bench", "--sizes", "5000"], Duration::from_secs(10));
    assert_eq!(bad.status.code(), Some(1), "{}", bad.stderr);
    assert!(bad.stderr.contains("--sizes: 5000"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("panicked"), "{}", bad.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secure_mode_between_two_processes_with_a_key_file_and_a_token_file() {
    let dir = std::env::temp_dir().join(format!("gudp-secure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("server.key");
    let token = dir.join("client.token");
    let (key_s, token_s) = (key.to_str().unwrap(), token.to_str().unwrap());
    let made = gudp(&["keygen", "--out", key_s], Duration::from_secs(10));
    assert!(made.status.success(), "{}", made.stderr);
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    // A second keygen never overwrites a key.
    assert!(!gudp(&["keygen", "--out", key_s], Duration::from_secs(10))
        .status
        .success());
    let (serve, addr) = server(&["--duration", "12", "--key-file", key_s]);
    let addr = addr.to_string();
    let minted = gudp(
        &[
            "token",
            "--key-file",
            key_s,
            "--server",
            &addr,
            "--client-id",
            "77",
            "--out",
            token_s,
        ],
        Duration::from_secs(10),
    );
    assert!(minted.status.success(), "{}", minted.stderr);
    assert_eq!(std::fs::read(&token).unwrap().len(), 2048);
    let run = gudp(
        &[
            "connect",
            "--token-file",
            token_s,
            "--rate",
            "50",
            "--duration",
            "1.5",
        ],
        Duration::from_secs(15),
    );
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let (sent, acked, lost) = summary(&run.stdout);
    assert!(sent >= 50 && acked > 0, "{}", run.stdout);
    assert_eq!(sent, acked + lost, "{}", run.stdout);
    // A token minted with another key is refused: no answer, and a clear error.
    let other = dir.join("other.key");
    let other_s = other.to_str().unwrap();
    assert!(gudp(&["keygen", "--out", other_s], Duration::from_secs(10))
        .status
        .success());
    let forged = dir.join("forged.token");
    let forged_s = forged.to_str().unwrap();
    let minted = gudp(
        &[
            "token",
            "--key-file",
            other_s,
            "--server",
            &addr,
            "--out",
            forged_s,
        ],
        Duration::from_secs(10),
    );
    assert!(minted.status.success(), "{}", minted.stderr);
    let refused = gudp(
        &["connect", "--token-file", forged_s, "--duration", "1"],
        Duration::from_secs(15),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot connect to any server the token lists"),
        "{}",
        refused.stderr
    );
    let served = serve.finish(Duration::from_secs(15));
    assert!(served.status.success(), "{}", served.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connect_exercises_a_message_channel_and_a_mismatch_is_refused_with_its_reason() {
    let (serve, addr) = server(&["--duration", "6", "--channel", "ordered"]);
    let target = addr.to_string();
    let run = gudp(
        &[
            "connect",
            &target,
            "--channel",
            "ordered",
            "--rate",
            "50",
            "--duration",
            "1.5",
        ],
        Duration::from_secs(15),
    );
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let (sent, acked, lost) = summary(&run.stdout);
    assert!(sent >= 50, "{}", run.stdout);
    // Reliable: every message acked, none lost.
    assert_eq!((acked, lost), (sent, 0), "{}", run.stdout);
    // A packet-mode client is refused by a message-mode server, and told why.
    let packets = gudp(
        &["connect", &target, "--duration", "1"],
        Duration::from_secs(15),
    );
    assert_eq!(packets.status.code(), Some(1), "{}", packets.stdout);
    assert!(
        packets.stderr.contains("message channels differ"),
        "{}",
        packets.stderr
    );
    serve.finish(Duration::from_secs(10));
}

#[test]
fn demo_messages_shows_the_ordered_stream_complete_and_the_unreliable_losses() {
    let demo = gudp(
        &["demo", "--messages", "--duration", "6"],
        Duration::from_secs(60),
    );
    assert!(demo.status.success(), "{}\n{}", demo.stdout, demo.stderr);
    assert!(demo.stdout.contains("in order: yes"), "{}", demo.stdout);
    let seconds = demo.stdout.lines().filter(|l| l.contains("s  ")).count();
    assert!(seconds >= 3, "a line per second:\n{}", demo.stdout);
}
