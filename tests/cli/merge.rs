//! `pulse-merge` CLI tests: any topology gives the same final snapshots.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::util::{bin, fixture, ndjson, run, sh, terminate};

const APACHE: &str = "real/elastic-examples/apache_logs";

pub type Finals = BTreeMap<(String, String, i64, u64), Value>;

/// The latest final snapshot per (stat, key, start, secs), without the merger's own
/// `pulse.merge.refused` counts (in windows of the merger's clock; checked where a test
/// asks for them, see [`refused`]).
pub fn finals(snaps: &[Value]) -> Finals {
    let mut m = Finals::new();
    for s in snaps {
        if s["final"] != Value::Bool(true) || s["stat"] == "pulse.merge.refused" {
            continue;
        }
        let k = (
            s["stat"].as_str().unwrap().to_string(),
            s["key"].to_string(),
            s["start"].as_i64().unwrap(),
            s["secs"].as_u64().unwrap(),
        );
        m.insert(k, s["values"].clone());
    }
    m
}

/// Split the lines of `src` into `n` files in `dir` (round-robin blocks of 337 lines, so
/// every part has events of every hour).
fn split(src: &Path, dir: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(src).unwrap();
    let mut parts: Vec<String> = vec![String::new(); n];
    for (i, line) in text.lines().enumerate() {
        parts[(i / 337) % n].push_str(line);
        parts[(i / 337) % n].push('\n');
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = dir.join(format!("part{i}.log"));
            std::fs::write(&path, p).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect()
}

fn whole_run(file: &str) -> Finals {
    let out = sh(&format!(
        "pulse-fragment --raw --now 0 {file} | pulse-merge --every 0 --now 0"
    ));
    crate::util::assert_ok(&out);
    finals(&ndjson(&out.stdout))
}

#[test]
fn split_log_merged_equals_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let parts = split(&file, dir.path(), 3);
    let whole = whole_run(file.to_str().unwrap());
    assert!(whole.len() > 100);

    // Three fragmenters, their outputs concatenated (and one of them twice: duplicates
    // change nothing), one merger.
    let out = sh(&format!(
        "cat <(pulse-fragment --raw --now 0 {a}) <(pulse-fragment --raw --now 0 {b}) <(pulse-fragment --raw --now 0 {c}) > {d}/all.ndjson && \
         cat {d}/all.ndjson {d}/all.ndjson | pulse-merge --every 0 --now 0",
        a = parts[0],
        b = parts[1],
        c = parts[2],
        d = dir.path().display()
    ));
    crate::util::assert_ok(&out);
    assert_eq!(finals(&ndjson(&out.stdout)), whole);
}

#[test]
fn three_fragmenters_two_shards_union_equals_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let parts = split(&file, dir.path(), 3);
    let whole = whole_run(file.to_str().unwrap());
    let d = dir.path().display();
    let mut union = Finals::new();
    for shard in 0..2 {
        // The merger reads the three fragment streams concurrently, as FIFOs.
        let out = sh(&format!(
            "pulse-merge --every 0 --now 0 --shard {shard}/2 \
               <(pulse-fragment --raw --now 0 --shards 2 {a}) \
               <(pulse-fragment --raw --now 0 --shards 2 {b}) \
               <(pulse-fragment --raw --now 0 --shards 2 {c}) > {d}/shard{shard}.ndjson && cat {d}/shard{shard}.ndjson",
            a = parts[0],
            b = parts[1],
            c = parts[2],
        ));
        crate::util::assert_ok(&out);
        let got = finals(&ndjson(&out.stdout));
        assert!(!got.is_empty());
        for (k, v) in got {
            assert_eq!(pulse::shard::shard_of(&k.0, 2), shard);
            assert!(union.insert(k, v).is_none(), "a stat in two shards");
        }
    }
    assert_eq!(union, whole);
}

#[test]
fn stacked_mergers_equal_one_merger() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let parts = split(&file, dir.path(), 2);
    let whole = whole_run(file.to_str().unwrap());
    let out = sh(&format!(
        "pulse-merge --every 0 --now 0 \
           <(pulse-fragment --raw --now 0 {a} | pulse-merge --every 0 --now 0 --output fragments --source m1) \
           <(pulse-fragment --raw --now 0 {b} | pulse-merge --every 0 --now 0 --output fragments --source m2)",
        a = parts[0],
        b = parts[1],
    ));
    crate::util::assert_ok(&out);
    assert_eq!(finals(&ndjson(&out.stdout)), whole);
}

#[test]
fn rollup_equals_fragmenting_with_the_longer_window() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let s1 = dir.path().join("1m.stats");
    let s10 = dir.path().join("10m.stats");
    let body = |w: &str| {
        format!(
            "req count {w} status? by status\nbytes summary bytes {w} bytes?\nlat quantiles bytes {w} bytes?\nips unique client {w}\n"
        )
    };
    std::fs::write(&s1, body("60s")).unwrap();
    std::fs::write(&s10, body("600s")).unwrap();
    let f = file.display();
    let rolled = sh(&format!(
        "pulse-fragment --raw --now 0 --stats {} {f} | pulse-merge --every 0 --now 0 --rollup 600",
        s1.display()
    ));
    let direct = sh(&format!(
        "pulse-fragment --raw --now 0 --stats {} {f} | pulse-merge --every 0 --now 0",
        s10.display()
    ));
    assert!(rolled.status.success() && direct.status.success());
    let a: Finals = finals(&ndjson(&rolled.stdout))
        .into_iter()
        .filter(|(k, _)| !k.0.starts_with("pulse."))
        .collect();
    let b: Finals = finals(&ndjson(&direct.stdout))
        .into_iter()
        .filter(|(k, _)| !k.0.starts_with("pulse."))
        .collect();
    assert!(a.keys().all(|k| k.3 == 600));
    assert!(a.len() > 20);
    assert_eq!(a, b);
}

#[test]
fn mismatched_aggregates_name_both_sources() {
    let frag = |src: &str, agg: &str, state: &str| {
        format!("{{\"stat\":\"x\",\"key\":null,\"start\":0,\"secs\":60,\"src\":\"{src}\",\"rev\":1,\"wm\":60,\"agg\":\"{agg}\",\"state\":{state}}}\n")
    };
    let mut input = frag("alpha", "count", "{\"count\":1}");
    input.push_str(&frag(
        "beta",
        "summary",
        "{\"count\":1,\"sum\":1,\"sumsq\":1,\"min\":1,\"max\":1}",
    ));
    let out = crate::util::run(
        "pulse-merge",
        &["--every", "0", "--now", "0"],
        input.as_bytes(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("alpha") && err.contains("beta"), "{err}");
    assert!(err.contains("pulse-merge: stdin: line 2:"), "{err}");
    let all = ndjson(&out.stdout);
    let snaps = finals(&all);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps.values().next().unwrap()["count"].as_f64(), Some(1.0));
    assert_eq!(refused(&all, "mismatch"), 1.0);
}

/// The merger's own count of refusals for `reason`, over all windows.
pub fn refused(snaps: &[Value], reason: &str) -> f64 {
    snaps
        .iter()
        .filter(|s| s["stat"] == "pulse.merge.refused" && s["key"] == reason && s["final"] == true)
        .map(|s| s["values"]["count"].as_f64().unwrap())
        .sum()
}

/// Several TCP clients; one disconnects mid-stream, reconnects and re-sends everything.
#[test]
fn listen_accepts_clients_that_reconnect_and_resend() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(APACHE);
    let parts = split(&file, dir.path(), 3);
    let whole = whole_run(file.to_str().unwrap());
    let frags: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| {
            let o = sh(&format!("pulse-fragment --raw --now 0 {p}"));
            assert!(o.status.success());
            o.stdout
        })
        .collect();

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let out_path = dir.path().join("snaps.ndjson");
    let merger = std::process::Command::new(bin("pulse-merge"))
        .args(["--listen", &addr, "--every", "0.2", "--max-wait", "3600"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let connect = || {
        for _ in 0..200 {
            if let Ok(s) = std::net::TcpStream::connect(&addr) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("merger not listening on {addr}");
    };
    // Client 0 sends half, drops, reconnects and sends everything again.
    let half = frags[0].len() / 2;
    let cut = frags[0][..half].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    {
        let mut c = connect();
        c.write_all(&frags[0][..cut]).unwrap();
    }
    // A client that resets its connection mid-line ends only its own input.
    {
        use std::os::fd::AsRawFd;
        let mut c = connect();
        c.write_all(&frags[1][..5000]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on the open socket `c`, with a pointer to a live `linger` and
        // its size; closing with a zero linger sends a reset.
        let rc = unsafe {
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0);
    }
    // A stray client's garbage is reported, and does not make the stop look like a failure.
    {
        let mut c = connect();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    }
    for f in &frags[1..] {
        let mut c = connect();
        c.write_all(f).unwrap();
    }
    {
        let mut c = connect();
        c.write_all(&frags[0]).unwrap();
    }
    // Wait (bounded) until the merger's provisional snapshots account for every event, then
    // stop it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let snaps = ndjson(&std::fs::read(&out_path).unwrap());
        let mut latest: BTreeMap<(String, i64), f64> = BTreeMap::new();
        for s in &snaps {
            if s["stat"] == "pulse.events" {
                let k = (s["key"].to_string(), s["start"].as_i64().unwrap());
                latest.insert(k, s["values"]["count"].as_f64().unwrap());
            }
        }
        if latest.values().sum::<f64>() == 10_000.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "merger did not take every fragment"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    terminate(merger.id());
    let res = merger.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert!(err.contains("that input ends here"), "{err}");
    assert!(err.contains("malformed"), "{err}");
    let snaps = ndjson(&std::fs::read(&out_path).unwrap());
    assert_eq!(finals(&snaps), whole);
}

#[test]
fn an_unreadable_input_fails_the_run_but_the_others_are_merged() {
    let file = fixture(APACHE);
    let frags = sh(&format!("pulse-fragment --raw --now 0 {}", file.display()));
    assert!(frags.status.success());
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.ndjson");
    std::fs::write(&good, &frags.stdout).unwrap();
    // A directory opens but cannot be read.
    let out = run(
        "pulse-merge",
        &[good.to_str().unwrap(), dir.path().to_str().unwrap()],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("that input ends here"), "{err}");
    assert_eq!(
        finals(&ndjson(&out.stdout)),
        whole_run(file.to_str().unwrap())
    );
}

/// A `top` state from before summaries (counts only) merges as exact with a new one; a
/// malformed one is reported with its file and line, and the run fails.
#[test]
fn top_states_old_and_new_merge_and_a_malformed_one_is_named() {
    let frag = |src: &str, state: &str| {
        format!(
            r#"{{"stat":"p","key":null,"start":0,"secs":60,"src":"{src}","rev":1,"wm":60,"agg":"top 3","state":{state}}}"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frags");
    let text = [
        frag("old", r#"{"counts":{"/a":2,"/b":1}}"#),
        frag("bad", r#"{"count":1,"offset":0,"counts":{"/a":5}}"#),
        frag("new", r#"{"count":4,"offset":0,"counts":{"/a":3,"/c":1}}"#),
    ]
    .join("\n");
    std::fs::write(&file, text + "\n").unwrap();
    let out = run(
        "pulse-merge",
        &["--every", "0", file.to_str().unwrap()],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "pulse-merge: {}: line 2: malformed: stat p: bad state: the counts add up to 5, more than the count 1",
            file.display()
        )),
        "{err}"
    );
    let f = finals(&ndjson(&out.stdout));
    let p = &f[&("p".to_string(), "null".to_string(), 0, 60)];
    let want = serde_json::json!({
        "/a": 5.0 / 60.0, "/b": 1.0 / 60.0, "/c": 1.0 / 60.0, "count": 7, "error": 0
    });
    assert_eq!(p, &want);
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    pulse::cli::merge::Args::command().debug_assert();
}

#[test]
fn man_page_matches_help() {
    crate::util::assert_man_matches_help("pulse-merge", "pulse-merge.1");
}

/// A window whose sources have not all moved past it becomes final `--max-wait` seconds of
/// wall clock after the first source passed it, while the input is still open.
#[test]
fn max_wait_finalises_windows_a_silent_source_holds_open() {
    use std::io::{BufRead, BufReader};
    let frag = |src: &str, start: i64, wm: i64| {
        format!("{{\"stat\":\"x\",\"key\":null,\"start\":{start},\"secs\":60,\"src\":\"{src}\",\"rev\":1,\"wm\":{wm},\"agg\":\"count\",\"state\":{{\"count\":1}}}}\n")
    };
    let mut merger = std::process::Command::new(bin("pulse-merge"))
        .args(["--every", "0", "--max-wait", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let guard = crate::util::watchdog(merger.id(), 30);
    let mut stdin = merger.stdin.take().unwrap();
    // Source b has reported but is stuck before the window's end; a has moved past it.
    stdin.write_all(frag("b", 0, 30).as_bytes()).unwrap();
    stdin.write_all(frag("a", 0, 120).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    let mut lines = BufReader::new(merger.stdout.take().unwrap()).lines();
    // Blocks until the merger writes; the input stays open meanwhile.
    let line = lines.next().unwrap().unwrap();
    let waited = started.elapsed();
    let snap: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(snap["final"], Value::Bool(true));
    assert_eq!(snap["values"]["count"].as_f64(), Some(2.0));
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "{waited:?}"
    );
    // A fragment that changes the final window gives an updated final snapshot.
    stdin.write_all(frag("c", 0, 120).as_bytes()).unwrap();
    drop(stdin);
    let line = lines.next().unwrap().unwrap();
    let snap: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(snap["final"], Value::Bool(true));
    assert_eq!(snap["values"]["count"].as_f64(), Some(3.0));
    assert!(merger.wait().unwrap().success());
    drop(guard);
}

#[test]
fn sigterm_on_a_stdin_stream_writes_every_window_final() {
    let file = fixture(APACHE);
    let frags = sh(&format!("pulse-fragment --raw --now 0 {}", file.display()));
    assert!(frags.status.success());
    let mut merger = std::process::Command::new(bin("pulse-merge"))
        .args(["--every", "0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The stream stays open: only the signal ends the run.
    let mut stdin = merger.stdin.take().unwrap();
    stdin.write_all(&frags.stdout).unwrap();
    stdin.flush().unwrap();
    // Time to read it all (about 50 ms here), with room for a loaded machine.
    std::thread::sleep(std::time::Duration::from_secs(3));
    terminate(merger.id());
    let out = merger.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(0));
    let snaps = ndjson(&out.stdout);
    assert!(snaps.iter().all(|s| s["final"] == true));
    assert_eq!(finals(&snaps), whole_run(file.to_str().unwrap()));
}

#[test]
fn sigterm_on_a_listening_merger_reads_what_every_client_sent() {
    // 20 clients, each about 1.5 MB of fragments, writing at once and keeping their
    // connections open; SIGTERM as soon as the last write returned.
    let clients = 20;
    let per_client = 11_000;
    let data: Vec<Vec<u8>> = (0..clients)
        .map(|c| {
            let mut out = String::new();
            for j in 0..per_client {
                out.push_str(&format!(
                    "{{\"stat\":\"s{}\",\"key\":null,\"start\":{},\"secs\":60,\"src\":\"c{c}\",\"rev\":{},\"wm\":0,\"agg\":\"count\",\"state\":{{\"count\":{}}}}}\n",
                    j % 20,
                    60 * (j / 20),
                    j + 1,
                    j % 7 + 1
                ));
            }
            out.into_bytes()
        })
        .collect();
    let whole = run("pulse-merge", &["--every", "0"], &data.concat());
    crate::util::assert_ok(&whole);
    let want = finals(&ndjson(&whole.stdout));
    assert_eq!(want.len(), per_client);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("snaps.ndjson");
    let merger = std::process::Command::new(bin("pulse-merge"))
        // The drain deadline has a test of its own; here it is only a bound on a loaded
        // machine (a debug build beside other tests reads 30 MB slowly).
        .args([
            "--listen",
            &addr,
            "--every",
            "0",
            "--max-wait",
            "3600",
            "--drain",
            "90",
        ])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let guard = crate::util::watchdog(merger.id(), 120);
    let mut connected = None;
    for _ in 0..200 {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            connected = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let first = connected.expect("merger listening");
    let conns: Vec<std::net::TcpStream> = std::iter::once(first)
        .chain((1..clients).map(|_| std::net::TcpStream::connect(&addr).unwrap()))
        .collect();
    let writers: Vec<_> = conns
        .into_iter()
        .zip(data)
        .map(|(mut c, d)| {
            std::thread::spawn(move || {
                c.write_all(&d).unwrap();
                c
            })
        })
        .collect();
    // Kept open until the merger has ended.
    let open: Vec<std::net::TcpStream> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    terminate(merger.id());
    let out = merger.wait_with_output().unwrap();
    drop(guard);
    drop(open);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("unread"), "{err}");
    let got = finals(&ndjson(&std::fs::read(&out_path).unwrap()));
    assert_eq!(got.len(), want.len(), "{err}");
    assert!(got == want, "finals differ from the run through stdin");
}

#[test]
fn a_drain_deadline_that_runs_out_is_reported_and_fails_the_run() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let merger = std::process::Command::new(bin("pulse-merge"))
        .args(["--listen", &addr, "--every", "0", "--drain", "0.5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let guard = crate::util::watchdog(merger.id(), 30);
    let mut c = None;
    for _ in 0..200 {
        if let Ok(s) = std::net::TcpStream::connect(&addr) {
            c = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    // A client that never stops sending: the drain cannot finish.
    let mut c = c.expect("merger listening");
    let writer = std::thread::spawn(move || {
        let line = b"{\"stat\":\"s\",\"key\":null,\"start\":0,\"secs\":60,\"src\":\"c\",\"rev\":1,\"wm\":0,\"agg\":\"count\",\"state\":{\"count\":1}}\n";
        let block: Vec<u8> = line.repeat(1000);
        while c.write_all(&block).is_ok() {}
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    terminate(merger.id());
    let out = merger.wait_with_output().unwrap();
    drop(guard);
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pulse-merge: stopped with "), "{err}");
    assert!(err.contains(" bytes unread on 1 connections"), "{err}");
}
