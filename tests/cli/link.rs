//! `--connect`: Pulse's own link from receivers (and mergers) to a listening merger, under
//! faults. Real processes on loopback; every wait bounded.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::merge::{finals, Finals};
use crate::util::{bin, ndjson, terminate, watchdog};

/// A loopback address nobody listens on right now.
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `n` router lines from 2026-01-01T00:00:00Z, 500 a second, deterministic.
fn router_log(n: usize, seed: u64) -> Vec<String> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let paths = ["/", "/cart", "/api/v1/items", "/login", "/checkout"];
    let statuses = [200, 200, 200, 200, 201, 304, 404, 500, 503];
    (0..n)
        .map(|i| {
            let us = i as u64 * 2000 + next() % 2000;
            let (s, us) = (us / 1_000_000, us % 1_000_000);
            format!(
                "2026-01-01T00:{:02}:{:02}.{us:06}+00:00 heroku[router]: at=info method=GET path=\"{}\" host=shop.example.com dyno=web.{} connect={}ms service={}ms status={} bytes={} protocol=https",
                s / 60,
                s % 60,
                paths[next() as usize % paths.len()],
                next() % 4 + 1,
                next() % 5,
                next() % 900 + 1,
                statuses[next() as usize % statuses.len()],
                next() % 50_000
            )
        })
        .collect()
}

/// Lines `from..to` of `lines`, newline-terminated.
fn part(lines: &[String], from: usize, to: usize) -> Vec<u8> {
    let mut s = lines[from..to.min(lines.len())].join("\n");
    s.push('\n');
    s.into_bytes()
}

/// Write a file only its owner can read.
fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

const AUTH: &str =
    "web1:0123456789abcdef0123\nweb2:fedcba9876543210fedc\nmid:00112233445566778899\n";

/// `pulse-merge --listen ADDR --every 0 --retain inf ARGS`, waited for until it accepts.
fn merger(addr: &str, args: &[&str]) -> Child {
    let child = Command::new(bin("pulse-merge"))
        .args(["--listen", addr, "--every", "0", "--retain", "inf"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "merger not listening on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGTERM a merger: (its snapshots, stderr, exit status).
fn stop(child: Child) -> (Vec<u8>, String, Option<i32>) {
    let guard = watchdog(child.id(), 20);
    terminate(child.id());
    let out = child.wait_with_output().unwrap();
    drop(guard);
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// `pulse-fragment --raw ARGS` reading from a pipe the test writes to.
fn receiver(args: &[&str]) -> (Child, ChildStdin) {
    let mut child = Command::new(bin("pulse-fragment"))
        .arg("--raw")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Wait for a receiver: (stdout, stderr, exit status, seconds taken).
fn finish(child: Child) -> (Vec<u8>, String, Option<i32>) {
    let guard = watchdog(child.id(), 20);
    let out = child.wait_with_output().unwrap();
    drop(guard);
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// The finals of an undisturbed run: each part fragmented on its own, merged from files.
fn reference(dir: &Path, parts: &[Vec<u8>], stats: &[&str]) -> Finals {
    let mut files = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let out = crate::util::run("pulse-fragment", &[&["--raw"], stats].concat(), p);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = dir.join(format!("ref{i}.ndjson"));
        std::fs::write(&f, out.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = crate::util::run("pulse-merge", &args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    finals(&ndjson(&out.stdout))
}

/// Every final snapshot of a run, the latest per window (as a consumer keeps them).
fn finals_of(outputs: &[&[u8]]) -> Finals {
    let all: Vec<serde_json::Value> = outputs.iter().flat_map(|o| ndjson(o)).collect();
    finals(&all)
}

/// Stats in 5 s windows, so that many windows are written (and final) mid-stream.
const STATS5: &str = "hits count 5s\nstatuses count 5s status? by status\nsvc quantiles service in ms 5s service?\nsvc.by.dyno summary service in ms 5s service? by dyno\n";

#[test]
fn a_merger_killed_and_restarted_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let auth = secret(dir.path(), "auth", AUTH);
    let t1 = secret(dir.path(), "t1", "web1:0123456789abcdef0123\n");
    let t2 = secret(dir.path(), "t2", "web2:fedcba9876543210fedc\n");
    let stats = dir.path().join("stats");
    std::fs::write(&stats, STATS5).unwrap();
    let stats_arg = stats.display().to_string();
    let lines = router_log(24_000, 7);
    // Two receivers, each every other line (48 s of event time each).
    let halves: Vec<Vec<String>> = (0..2)
        .map(|h| lines.iter().skip(h).step_by(2).cloned().collect())
        .collect();
    let whole: Vec<Vec<u8>> = halves.iter().map(|h| part(h, 0, h.len())).collect();
    let want = reference(dir.path(), &whole, &["--stats", &stats_arg]);

    let addr = free_addr();
    let auth_arg = auth.display().to_string();
    let mut m1 = merger(&addr, &["--auth-file", &auth_arg]);
    let tokens = [t1.display().to_string(), t2.display().to_string()];
    let mut rs: Vec<(Child, ChildStdin)> = tokens
        .iter()
        .map(|t| receiver(&["--connect", &addr, "--token-file", t, "--stats", &stats_arg]))
        .collect();
    let mut feed = |r: usize, from: usize, to: usize| {
        rs[r].1.write_all(&part(&halves[r], from, to)).unwrap();
    };
    // The first receiver runs ahead: its first 32 s are written to the merger, which cannot
    // make them final while the second lags (it waits for it), and holds them when killed.
    feed(0, 0, 8000);
    feed(1, 0, 4000);
    std::thread::sleep(Duration::from_millis(1500));
    m1.kill().unwrap();
    let out1 = m1.wait_with_output().unwrap();
    // Input goes on while the merger is down (queued), then it comes back on the same port.
    feed(1, 4000, 8000);
    std::thread::sleep(Duration::from_millis(700));
    let m2 = merger(&addr, &["--auth-file", &auth_arg]);
    std::thread::sleep(Duration::from_millis(500));
    feed(0, 8000, 12_000);
    feed(1, 8000, 12_000);
    let mut errs = Vec::new();
    for (child, stdin) in rs {
        drop(stdin);
        let (out, err, code) = finish(child);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.is_empty(), "fragments went to the link, not stdout");
        assert!(err.contains("re-sending the windows held"), "{err}");
        errs.push(err);
    }
    let (out2, err2, code2) = stop(m2);
    assert_eq!(code2, Some(0), "{err2}");
    let got = finals_of(&[&out1.stdout, &out2]);
    assert!(want.len() > 100, "{}", want.len());
    assert_eq!(got.len(), want.len(), "{errs:?}");
    assert_eq!(got, want);
}

#[test]
fn windows_forgotten_before_a_break_are_reported_and_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats");
    std::fs::write(&stats, "hits count 1s\n").unwrap();
    let stats_arg = stats.display().to_string();
    let lines = router_log(12_000, 3);
    let addr = free_addr();
    let mut m1 = merger(&addr, &[]);
    let (child, mut stdin) = receiver(&[
        "--connect",
        &addr,
        "--stats",
        &stats_arg,
        "--lateness",
        "1",
        "--grace",
        "0.5",
    ]);
    // 10 s of event time in 1 s windows, each forgotten a second after it ends: the merger
    // is killed while the last ones were just forgotten, then stays down for longer than
    // --lateness.
    // The merger is killed as soon as it has the final of second 7: the receiver forgot
    // that window just now (its event time passed 9 s), not before it had even read it.
    let (tx, rx) = std::sync::mpsc::channel();
    let m1_out = std::io::BufReader::new(m1.stdout.take().unwrap());
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in m1_out.lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    stdin.write_all(&part(&lines, 0, 5000)).unwrap();
    let second7 = format!("\"start\":{},", 1_767_225_600 + 7);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(&second7) => break,
            Ok(_) => {}
            Err(e) => panic!("the merger never had the final of second 7: {e}"),
        }
    }
    m1.kill().unwrap();
    let _ = m1.wait();
    std::thread::sleep(Duration::from_millis(1500));
    let m2 = merger(&addr, &[]);
    stdin.write_all(&part(&lines, 5000, 12_000)).unwrap();
    drop(stdin);
    let (_, err, code) = finish(child);
    let _ = stop(m2);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot be re-sent"), "{err}");
    assert!(
        err.contains("windows may not have reached the merger"),
        "{err}"
    );
}

#[test]
fn a_merger_that_stays_down_fails_the_run_naming_what_was_not_delivered() {
    let lines = router_log(3000, 5);
    let addr = free_addr();
    let mut m = merger(&addr, &[]);
    let (child, mut stdin) = receiver(&["--connect", &addr, "--connect-wait", "1s"]);
    stdin.write_all(&part(&lines, 0, 1500)).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    m.kill().unwrap();
    let _ = m.wait();
    stdin.write_all(&part(&lines, 1500, 3000)).unwrap();
    drop(stdin);
    let (_, err, code) = finish(child);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unreachable for 1s (--connect-wait)"), "{err}");
    assert!(err.contains("windows held"), "{err}");
}

#[test]
fn nobody_listening_fails_within_the_connect_wait() {
    let addr = free_addr();
    let started = Instant::now();
    let out = crate::util::run(
        "pulse-fragment",
        &["--raw", "--connect", &addr, "--connect-wait", "1500ms"],
        &part(&router_log(100, 1), 0, 100),
    );
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "merger {addr}: never reachable for 1500ms (--connect-wait)"
        )),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn a_bad_token_is_told_to_the_client_which_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let auth = secret(dir.path(), "auth", AUTH);
    let bad = secret(dir.path(), "bad", "web1:not-the-right-token-x\n");
    let addr = free_addr();
    let m = merger(&addr, &["--auth-file", &auth.display().to_string()]);
    let started = Instant::now();
    let out = crate::util::run(
        "pulse-fragment",
        &[
            "--raw",
            "--connect",
            &addr,
            "--token-file",
            &bad.display().to_string(),
        ],
        &part(&router_log(20_000, 2), 0, 20_000),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("merger {addr}: refused: authentication failed")),
        "{err}"
    );
    assert!(
        !err.contains("not-the-right-token"),
        "the token is never shown: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (_, merr, _) = stop(m);
    // The probe of `merger` and this client.
    assert!(merr.contains("2 refused: not authenticated"), "{merr}");

    // A token file others can read is refused before anything is sent.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = crate::util::run(
        "pulse-fragment",
        &[
            "--connect",
            &addr,
            "--token-file",
            &bad.display().to_string(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by every user"));
}

#[test]
fn a_tree_of_mergers_over_links_equals_the_single_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let auth = secret(dir.path(), "auth", AUTH);
    let auth_arg = auth.display().to_string();
    let t1 = secret(dir.path(), "t1", "web1:0123456789abcdef0123\n");
    let t2 = secret(dir.path(), "t2", "web2:fedcba9876543210fedc\n");
    let tm = secret(dir.path(), "tm", "mid:00112233445566778899\n");
    let lines = router_log(20_000, 11);
    let halves = [part(&lines, 0, 10_000), part(&lines, 10_000, 20_000)];
    // The single pipe: everything through one pulse-fragment and one pulse-merge.
    let all = part(&lines, 0, lines.len());
    let want = reference(dir.path(), &[all], &[]);

    let (top_addr, mid_addr) = (free_addr(), free_addr());
    let top = merger(&top_addr, &["--auth-file", &auth_arg]);
    let mid = merger(
        &mid_addr,
        &[
            "--auth-file",
            &auth_arg,
            "--output",
            "fragments",
            "--connect",
            &top_addr,
            "--token-file",
            &tm.display().to_string(),
        ],
    );
    let rs: Vec<(Child, ChildStdin)> = [&t1, &t2]
        .iter()
        .map(|t| {
            receiver(&[
                "--connect",
                &mid_addr,
                "--token-file",
                &t.display().to_string(),
            ])
        })
        .collect();
    for ((child, mut stdin), input) in rs.into_iter().zip(&halves) {
        stdin.write_all(input).unwrap();
        drop(stdin);
        let (_, err, code) = finish(child);
        assert_eq!(code, Some(0), "{err}");
    }
    let (mid_out, mid_err, mid_code) = stop(mid);
    assert_eq!(mid_code, Some(0), "{mid_err}");
    assert!(mid_out.is_empty(), "the middle merger writes to its link");
    let (top_out, top_err, top_code) = stop(top);
    assert_eq!(top_code, Some(0), "{top_err}");
    let got = finals_of(&[&top_out]);
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn connect_on_a_merger_needs_fragment_output() {
    let out = crate::util::run("pulse-merge", &["--connect", "127.0.0.1:1"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output fragments"));
}

#[test]
fn a_refusal_reaches_a_client_that_reads_late() {
    // A client that sends a wrong token and more data, and reads only later: the merger
    // must not close with that data unread (a reset, which would destroy its error line).
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let auth = secret(dir.path(), "auth", AUTH);
    let addr = free_addr();
    let m = merger(&addr, &["--auth-file", &auth.display().to_string()]);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut data = b"auth web1:wrong-token-0123456789\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 100_000));
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("error: authentication failed\n"),
        "{r:?}: {text:?}"
    );
    // Closed with a FIN, not a reset (a reset can destroy the line still in flight).
    assert!(r.is_ok(), "{r:?}");
    let _ = stop(m);
}

#[test]
fn sigterm_sends_the_finals_and_closes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats");
    std::fs::write(&stats, STATS5).unwrap();
    let stats_arg = stats.display().to_string();
    let lines = part(&router_log(6000, 9), 0, 6000);
    let want = reference(
        dir.path(),
        std::slice::from_ref(&lines),
        &["--stats", &stats_arg],
    );
    let addr = free_addr();
    let m = merger(&addr, &[]);
    let (child, mut stdin) = receiver(&["--connect", &addr, "--stats", &stats_arg]);
    stdin.write_all(&lines).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // Input still open: the signal ends the run as the end of input would.
    terminate(child.id());
    let (_, err, code) = finish(child);
    drop(stdin);
    assert_eq!(code, Some(0), "{err}");
    let (out, merr, _) = stop(m);
    assert!(!merr.contains("reset"), "{merr}");
    assert_eq!(finals_of(&[&out]), want);
}

/// One authenticated client against two honest receivers: it sends first, with another
/// aggregate than the stats file's (to have the honest fragments refused), a rev far
/// ahead of the clock (to freeze a window), and a part of every window with a watermark
/// that creeps (to hold finality). The honest finals equal a run without it, and every
/// window is final within --max-wait and one window length of the honest input's end.
#[test]
fn a_hostile_client_changes_no_honest_number_and_holds_finality_only_so_long() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    const EVIL: &str = "evil:00aa11bb22cc33dd44ee\n";
    let dir = tempfile::tempdir().unwrap();
    let auth = secret(dir.path(), "auth", &format!("{AUTH}{EVIL}"));
    let t1 = secret(dir.path(), "t1", "web1:0123456789abcdef0123\n");
    let t2 = secret(dir.path(), "t2", "web2:fedcba9876543210fedc\n");
    let stats = dir.path().join("stats");
    std::fs::write(&stats, STATS5).unwrap();
    let stats_arg = stats.display().to_string();
    // 60 s of event time from 2026-01-01T00:00:00, every other line to each receiver.
    let lines = router_log(30_000, 11);
    let halves: Vec<Vec<u8>> = (0..2)
        .map(|h| {
            let half: Vec<String> = lines.iter().skip(h).step_by(2).cloned().collect();
            part(&half, 0, half.len())
        })
        .collect();
    let want = reference(dir.path(), &halves, &["--stats", &stats_arg]);
    assert!(want.len() > 50, "{}", want.len());

    let addr = free_addr();
    let auth_arg = auth.display().to_string();
    let max_wait = 2.0;
    let mut m = merger(
        &addr,
        &[
            "--auth-file",
            &auth_arg,
            "--stats",
            &stats_arg,
            "--max-wait",
            "2",
        ],
    );
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let reader = {
        let seen = seen.clone();
        let out = std::io::BufReader::new(m.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(|l| l.ok()) {
                if let Ok(v) = serde_json::from_str(&line) {
                    seen.lock().unwrap().push(v);
                }
            }
        })
    };

    let t0: i64 = 1_767_225_600;
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
    };
    let frag = |stat: &str, key: &str, start: i64, rev: u64, wm: i64, agg: &str, state: &str| {
        format!(
            "{{\"stat\":\"{stat}\",\"key\":{key},\"start\":{start},\"secs\":5,\"src\":\"web1\",\"rev\":{rev},\"wm\":{wm},\"agg\":\"{agg}\",\"state\":{state}}}\n"
        )
    };
    let mut evil = TcpStream::connect(&addr).unwrap();
    let mut first = format!("auth {EVIL}");
    for w in 0..12 {
        let start = t0 + 5 * w;
        let rev = now_us();
        // Forged: svc is quantiles, statuses a count.
        let summary = r#"{"count":1,"max":1e9,"min":1e9,"sum":1e9,"sumsq":1e18}"#;
        first += &frag("svc", "null", start, rev, t0, "summary", summary);
        first += &frag("statuses", "\"200\"", start, rev, t0, "summary", summary);
        // Frozen: a rev no clock reaches.
        first += &frag(
            "hits",
            "null",
            start,
            u64::MAX,
            t0,
            "count",
            r#"{"count":1000000}"#,
        );
        // Held: a part of every window, the watermark at the start.
        first += &frag("hits", "null", start, rev, t0, "count", r#"{"count":0}"#);
    }
    evil.write_all(first.as_bytes()).unwrap();
    let stop_evil = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let creeper = {
        let stop_evil = stop_evil.clone();
        std::thread::spawn(move || {
            // A live source whose watermark moves a second per second of wall clock.
            let mut i = 0;
            while !stop_evil.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                i += 1;
                let line = frag(
                    "hits",
                    "null",
                    t0,
                    now_us(),
                    t0 + i / 2,
                    "count",
                    r#"{"count":0}"#,
                );
                if evil.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let tokens = [t1.display().to_string(), t2.display().to_string()];
    let rs: Vec<(Child, ChildStdin)> = tokens
        .iter()
        .map(|t| receiver(&["--connect", &addr, "--token-file", t, "--stats", &stats_arg]))
        .collect();
    for ((child, mut stdin), half) in rs.into_iter().zip(&halves) {
        stdin.write_all(half).unwrap();
        drop(stdin);
        let (_, err, code) = finish(child);
        assert_eq!(code, Some(0), "{err}");
    }
    let honest_done = Instant::now();
    // Every honest window final, with the honest value, within --max-wait and one window
    // length (5 s), plus the merger's check interval and slack for a loaded machine.
    let bound = Duration::from_secs_f64(max_wait + 5.0 + 4.0);
    let complete = loop {
        let got = finals(&seen.lock().unwrap());
        if want.iter().all(|(k, v)| got.get(k) == Some(v)) {
            break Some(honest_done.elapsed());
        }
        if honest_done.elapsed() > bound {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    stop_evil.store(true, std::sync::atomic::Ordering::Relaxed);
    creeper.join().unwrap();
    let (_, err, code) = stop(m);
    reader.join().unwrap();
    assert_eq!(code, Some(0), "{err}");
    let snaps = seen.lock().unwrap().clone();
    let got = finals(&snaps);
    let missing: Vec<_> = want
        .keys()
        .filter(|k| got.get(*k) != want.get(*k))
        .collect();
    assert!(
        complete.is_some(),
        "not final within {bound:?}: {} of {} windows differ or are missing, e.g. {:?}",
        missing.len(),
        want.len(),
        missing.first()
    );
    assert_eq!(got, want, "{err}");
    assert!(crate::merge::refused(&snaps, "mismatch") >= 24.0, "{err}");
    assert!(crate::merge::refused(&snaps, "rev_ahead") >= 12.0, "{err}");
    assert!(err.contains("evil/web1"), "{err}");
}
