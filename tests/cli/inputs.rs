//! Inputs and limits, for every tool: each input its own time stream (pulse-fragment),
//! unreadable inputs, gzip and binary input, escaped input on stderr, and limits that agree
//! from one stage to the next (a 50 MB line through the whole pipeline).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{assert_ok, bin, ndjson, run, sh};

/// `n` Heroku router lines from `start` (Unix seconds), one every 0.25 s, statuses and
/// paths varied.
fn router_lines(start: i64, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let t = start + (i / 4) as i64;
        let (d, rem) = (t.div_euclid(86400), t.rem_euclid(86400));
        // Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = d + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let status = [200, 200, 200, 404, 500][i % 5];
        let path = ["/", "/cart", "/api/items", "/login"][i % 4];
        s.push_str(&format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00 heroku[router]: at=info method=GET path={path} host=shop.example.com request_id={i} fwd=\"10.0.0.{}\" dyno=web.{} connect=1ms service={}ms status={status} bytes={}\n",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            i % 200,
            i % 3 + 1,
            5 + i % 97,
            100 + i % 1000
        ));
    }
    s
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn tool(name: &str, args: &[&Path]) -> Output {
    Command::new(bin(name)).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The latest snapshot of each (stat, key, start, secs), with its values.
fn finals(snapshots: &[u8]) -> BTreeMap<(String, String, i64, i64), Value> {
    let mut m = BTreeMap::new();
    for s in ndjson(snapshots) {
        let k = (
            s["stat"].as_str().unwrap().to_string(),
            s["key"].to_string(),
            s["start"].as_i64().unwrap(),
            s["secs"].as_i64().unwrap(),
        );
        assert_eq!(s["final"], true, "{s}");
        m.insert(k, s["values"].clone());
    }
    m
}

fn assert_same_snapshots(
    got: &BTreeMap<(String, String, i64, i64), Value>,
    want: &BTreeMap<(String, String, i64, i64), Value>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let g = &got[k];
        let (g, w) = (g.as_object().unwrap(), w.as_object().unwrap());
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            w.keys().collect::<Vec<_>>(),
            "{k:?}"
        );
        for (name, wv) in w {
            let (a, b) = (g[name].as_f64().unwrap(), wv.as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
                "{k:?} {name}: {a} vs {b}"
            );
        }
    }
}

/// The count of `pulse.events` over all windows of some snapshots.
fn events_counted(snapshots: &BTreeMap<(String, String, i64, i64), Value>) -> f64 {
    snapshots
        .iter()
        .filter(|(k, _)| k.0 == "pulse.events")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum()
}

#[test]
fn each_input_file_is_its_own_time_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // b is an hour older than a: read after a as one stream, all of b would be late.
    let a = write(d, "syslog", router_lines(1_767_229_200, 2000));
    let b = write(d, "syslog.1", router_lines(1_767_225_600, 2000));
    let fa = write(
        d,
        "a.frag",
        tool("pulse-fragment", &[Path::new("--raw"), &a]).stdout,
    );
    let fb = write(
        d,
        "b.frag",
        tool("pulse-fragment", &[Path::new("--raw"), &b]).stdout,
    );
    let every = Path::new("--every=0");
    let separate = tool("pulse-merge", &[every, &fa, &fb]);
    assert_ok(&separate);
    let want = finals(&separate.stdout);
    assert_eq!(events_counted(&want), 4000.0);
    for (first, second) in [(&a, &b), (&b, &a)] {
        let frags = tool("pulse-fragment", &[Path::new("--raw"), first, second]);
        assert_ok(&frags);
        let err = stderr(&frags);
        assert!(!err.contains("late"), "{err}");
        // One source per input, by position.
        let srcs: std::collections::BTreeSet<String> = ndjson(&frags.stdout)
            .iter()
            .map(|f| f["src"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(srcs.len(), 2, "{srcs:?}");
        assert!(srcs.iter().any(|s| s.ends_with("/1")) && srcs.iter().any(|s| s.ends_with("/2")));
        let f = write(d, "both.frag", &frags.stdout);
        let together = tool("pulse-merge", &[every, &f]);
        assert_ok(&together);
        assert_same_snapshots(&finals(&together.stdout), &want);
    }
    // The same through pulse-parse, events in, and with the stats of each input alone.
    let out = sh(&format!(
        "pulse-parse {} {} | pulse-fragment --source s | pulse-merge --every 0",
        b.display(),
        a.display()
    ));
    assert_ok(&out);
    // From stdin the two files are one stream: b after a is late.
    let out = sh(&format!(
        "cat {} {} | pulse-fragment --raw | pulse-merge --every 0",
        a.display(),
        b.display()
    ));
    assert_ok(&out);
    assert_eq!(events_counted(&finals(&out.stdout)), 2000.0);
    assert!(stderr(&out).contains("late"), "{}", stderr(&out));
}

#[test]
fn an_unreadable_input_is_reported_and_the_others_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log1 = write(d, "one.log", router_lines(1_767_229_200, 10));
    let log2 = write(d, "two.log", router_lines(1_767_229_300, 10));
    let missing = d.join("nosuch.log");
    let a_dir = d.join("subdir");
    std::fs::create_dir(&a_dir).unwrap();
    let has = |out: &Output, tool: &str, what: &Path, why: &str| {
        let want = format!("{tool}: {}: {why}", what.display());
        assert!(
            stderr(out).contains(&want),
            "{want:?} not in {}",
            stderr(out)
        );
    };

    // pulse-parse: every event of the readable files, a message per unreadable one.
    let out = tool("pulse-parse", &[&log1, &missing, &a_dir, &log2]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(ndjson(&out.stdout).len(), 20);
    has(&out, "pulse-parse", &missing, "No such file or directory");
    has(&out, "pulse-parse", &a_dir, "Is a directory");

    // pulse-fragment --raw and on events.
    let out = tool(
        "pulse-fragment",
        &[Path::new("--raw"), &log1, &missing, &log2],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    has(
        &out,
        "pulse-fragment",
        &missing,
        "No such file or directory",
    );
    let frags = write(d, "frags", &out.stdout);
    let events: f64 = ndjson(&out.stdout)
        .iter()
        .filter(|f| f["stat"] == "pulse.events")
        .map(|f| f["state"]["count"].as_f64().unwrap())
        .sum();
    assert_eq!(events, 20.0);
    let ev = write(d, "events", tool("pulse-parse", &[&log1]).stdout);
    let out = tool("pulse-fragment", &[&missing, &ev]);
    assert_eq!(out.status.code(), Some(1));
    has(
        &out,
        "pulse-fragment",
        &missing,
        "No such file or directory",
    );
    assert!(!out.stdout.is_empty());

    // pulse-merge: "the rest is still merged".
    let out = tool("pulse-merge", &[Path::new("--every=0"), &missing, &frags]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    has(&out, "pulse-merge", &missing, "No such file or directory");
    let snaps = finals(&out.stdout);
    assert_eq!(events_counted(&snaps), 20.0);
    let snaps = write(d, "snaps", &out.stdout);

    // pulse-emit: what could be read is delivered.
    let out = tool("pulse-emit", &[Path::new("--format=csv"), &snaps, &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    has(&out, "pulse-emit", &missing, "No such file or directory");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pulse.events"));
}

#[test]
fn gzip_input_is_read_by_its_magic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = router_lines(1_767_225_600, 3000);
    let (first, second) =
        text.split_at(text.len() / 3 + text[text.len() / 3..].find('\n').unwrap() + 1);
    // Two members, as `gzip -c a >x; gzip -c b >>x` makes; a name that does not say gzip.
    let mut two = gzip(first.as_bytes());
    two.extend(gzip(second.as_bytes()));
    let gz = write(d, "archive.2", &two);
    let plain = write(d, "plain.log", &text);
    let want = tool("pulse-parse", &[&plain]);
    assert_ok(&want);
    let got = tool("pulse-parse", &[&gz]);
    assert_ok(&got);
    assert_eq!(ndjson(&got.stdout), ndjson(&want.stdout));
    // stdin too, one thread or many.
    let got = run("pulse-parse", &["--threads", "1"], &two);
    assert_ok(&got);
    assert_eq!(ndjson(&got.stdout), ndjson(&want.stdout));
    // Rotated archives as they lie, oldest first or not: every event counted.
    let newer = write(d, "syslog", router_lines(1_767_229_200, 1000));
    let out = sh(&format!(
        "pulse-fragment --raw {} {} | pulse-merge --every 0",
        gz.display(),
        newer.display()
    ));
    assert_ok(&out);
    assert_eq!(events_counted(&finals(&out.stdout)), 4000.0);

    // A truncated archive: the lines before the cut are read, the file is named, status 1.
    let cut = write(d, "cut.gz", &two[..two.len() / 2]);
    let out = tool("pulse-parse", &[&cut, &newer]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "pulse-parse: {}: corrupt or truncated gzip data",
            cut.display()
        )),
        "{err}"
    );
    let n = ndjson(&out.stdout).len();
    assert!(n > 1000 && n < 4000, "{n} events");
}

#[test]
fn binary_input_is_skipped_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(std::iter::repeat_n(0u8, 5000));
    let bin_file = write(d, "a.out", &elf);
    let mut wtmp = vec![0u8; 384];
    wtmp[..8].copy_from_slice(b"\x07\0\0\0ts/0");
    let wtmp = write(d, "wtmp", wtmp.repeat(20));
    let log = write(d, "app.log", router_lines(1_767_225_600, 5));
    for t in ["pulse-parse", "pulse-fragment"] {
        let raw = Path::new("--raw");
        let args: Vec<&Path> = if t == "pulse-parse" {
            vec![&bin_file, &wtmp, &log]
        } else {
            vec![raw, &bin_file, &wtmp, &log]
        };
        let out = tool(t, &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(
            err.contains(&format!(
                "{t}: {}: an executable (ELF), not log text: skipped",
                bin_file.display()
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{t}: {}: binary data, not log text: skipped",
                wtmp.display()
            )),
            "{err}"
        );
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn input_bytes_on_stderr_are_escaped() {
    let out = run(
        "pulse-parse",
        &[],
        b"\x1b]0;pwned\x07\x1b[31mred \xff\xfe text\n",
    );
    let err = out.stderr;
    assert!(!err.iter().any(|&b| b == 0x1b || b == 0x07), "{err:?}");
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("no format matches: \\e]0;pwned\\x07\\e[31mred \\xff\\xfe text"),
        "{err}"
    );
}

/// A 50 MB line among others, through `pulse-parse | pulse-fragment | pulse-merge |
/// pulse-emit` and through `pulse-fragment --raw`: reported as overlong once, with file and
/// line, nothing else lost, the same counts both ways.
#[test]
fn a_50_mb_line_through_the_whole_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = router_lines(1_767_225_600, 20);
    let (head, tail) = lines.split_at(lines.find("\n").unwrap() + 1);
    let mut text = head.as_bytes().to_vec();
    text.extend_from_slice(b"2026-01-01T00:00:00+00:00 heroku[router]: at=info method=GET path=/");
    text.resize(text.len() + 50_000_000, b'x');
    text.extend_from_slice(b" host=shop.example.com status=200 service=3ms\n");
    text.extend_from_slice(tail.as_bytes());
    let log = write(d, "big.log", &text);
    let q = log.display();
    let csv = |out: &Output| -> BTreeMap<String, String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| {
                let (k, v) = l.rsplit_once(',').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let piped = sh(&format!(
        "pulse-parse {q} | pulse-fragment | pulse-merge --every 0 | pulse-emit --format csv"
    ));
    assert_ok(&piped);
    let raw = sh(&format!(
        "pulse-fragment --raw {q} | pulse-merge --every 0 | pulse-emit --format csv"
    ));
    assert_ok(&raw);
    for out in [&piped, &raw] {
        let err = stderr(out);
        // The message and the total.
        assert_eq!(
            err.lines().filter(|l| l.contains("overlong")).count(),
            2,
            "{err}"
        );
        assert!(err.contains(&format!("{q}: line 2: overlong")), "{err}");
        assert!(
            !err.contains("malformed") && !err.contains("invalid"),
            "{err}"
        );
    }
    let (p, r) = (csv(&piped), csv(&raw));
    assert_eq!(p, r);
    let events: f64 = p
        .iter()
        .filter(|(k, _)| k.starts_with("pulse.events,") && k.ends_with(",count"))
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum();
    assert_eq!(events, 21.0);
}

/// A path that becomes hot only after 20,000 others were seen in its window is listed first
/// (the first-come table of 10,000 values never listed it), by two receivers and a merger,
/// within the error bound the snapshot states.
#[test]
fn a_value_hot_only_late_in_its_window_is_listed_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stats = write(d, "top.stats", "paths top 3 path 60s path?\n");
    let (mut a, mut b) = (String::new(), String::new());
    for i in 0..20_000 {
        let line = format!("{{\"time\":\"2026-01-01T00:00:01Z\",\"path\":\"/cold/{i}\"}}\n");
        if i % 2 == 0 { &mut a } else { &mut b }.push_str(&line);
    }
    for i in 0..300 {
        let line = "{\"time\":\"2026-01-01T00:00:50Z\",\"path\":\"/hot\"}\n";
        if i % 2 == 0 { &mut a } else { &mut b }.push_str(line);
    }
    let (a, b) = (write(d, "a", a), write(d, "b", b));
    let out = sh(&format!(
        "(pulse-fragment --stats {s} {a}; pulse-fragment --stats {s} {b}) | pulse-merge --every 0",
        s = stats.display(),
        a = a.display(),
        b = b.display(),
    ));
    assert_ok(&out);
    let snap = ndjson(&out.stdout)
        .into_iter()
        .rev()
        .find(|s| s["stat"] == "paths" && s["final"] == true)
        .unwrap();
    let v = snap["values"].as_object().unwrap();
    assert_eq!(v["count"], 20_300);
    let error = v["error"].as_f64().unwrap() * 60.0;
    assert!(error <= 20_300.0 / 1001.0, "{v:?}");
    let hot = v["/hot"].as_f64().unwrap() * 60.0;
    assert!(hot <= 300.0 && hot >= 300.0 - error - 1e-9, "{v:?}");
    for (name, rate) in v {
        if !["count", "error", "(other)", "/hot"].contains(&name.as_str()) {
            assert!(
                rate.as_f64().unwrap() < v["/hot"].as_f64().unwrap(),
                "{v:?}"
            );
        }
    }
}

/// A `top` state of many long values: the snapshot pulse-merge writes is one pulse-emit
/// reads (it was cut at 1 MiB and lost, with status 0).
#[test]
fn a_large_top_snapshot_reaches_pulse_emit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stats = write(d, "top.stats", "paths top 5000 path cap 5000 60s path?\n");
    let mut events = String::new();
    for i in 0..3000 {
        events.push_str(&format!(
            "{{\"time\":\"2026-01-01T00:00:01Z\",\"path\":\"/{i}/{}\"}}\n",
            "y".repeat(2000)
        ));
    }
    let ev = write(d, "events", events);
    let out = sh(&format!(
        "pulse-fragment --stats {} {} | pulse-merge --every 0 | tee {} | pulse-emit --format csv",
        stats.display(),
        ev.display(),
        d.join("snaps").display()
    ));
    assert_ok(&out);
    assert!(std::fs::metadata(d.join("snaps")).unwrap().len() > 2 << 20);
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("paths,"))
        .count();
    // 3000 values (each cut to 1 KiB, still distinct), the count and the error (0).
    assert_eq!(rows, 3002, "{}", stderr(&out));
}
