//! `pulse-fragment` CLI tests.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{fixture, ndjson, run, sh};

const APACHE: &str = "real/elastic-examples/apache_logs";

/// The latest state per (stat, key, start, secs) of a fragment stream (what a merger keeps).
pub fn latest_states(frags: &[Value]) -> BTreeMap<(String, String, i64, u64), Value> {
    let mut m: BTreeMap<(String, String, i64, u64), (u64, Value)> = BTreeMap::new();
    for f in frags {
        let k = (
            f["stat"].as_str().unwrap().to_string(),
            f["key"].to_string(),
            f["start"].as_i64().unwrap(),
            f["secs"].as_u64().unwrap(),
        );
        let rev = f["rev"].as_u64().unwrap();
        let keep = m.get(&k).is_none_or(|(r, _)| rev > *r);
        if keep {
            m.insert(k, (rev, f["state"].clone()));
        }
    }
    m.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

#[test]
fn raw_input_gives_the_same_fragments_as_parse_then_fragment() {
    let file = fixture(APACHE);
    let file = file.to_str().unwrap();
    let fused = sh(&format!("pulse-fragment --raw --source t --now 0 {file}"));
    crate::util::assert_ok(&fused);
    let piped = sh(&format!(
        "pulse-parse {file} | pulse-fragment --source t --now 0"
    ));
    crate::util::assert_ok(&piped);
    let a = latest_states(&ndjson(&fused.stdout));
    let b = latest_states(&ndjson(&piped.stdout));
    assert!(a.len() > 100, "only {} windows", a.len());
    assert_eq!(a, b);
    // And the whole file is accounted for: 10,000 events in pulse.events.
    let events: f64 = a
        .iter()
        .filter(|(k, _)| k.0 == "pulse.events")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(events, 10_000.0);
}

#[test]
fn thread_count_does_not_change_the_result() {
    let file = fixture(APACHE);
    let file = file.to_str().unwrap();
    let one = sh(&format!("pulse-fragment --raw --threads 1 --now 0 {file}"));
    let four = sh(&format!("pulse-fragment --raw --threads 4 --now 0 {file}"));
    assert!(one.status.success() && four.status.success());
    assert_eq!(
        latest_states(&ndjson(&one.stdout)),
        latest_states(&ndjson(&four.stdout))
    );
}

fn events(lines: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (time, status) in lines {
        out.push_str(&format!("{{\"time\":\"{time}\",\"status\":{status}}}\n"));
    }
    out.into_bytes()
}

const COUNT_BY_STATUS: &str = "req count 60s status? by status\n";

fn stats_file(dir: &tempfile::TempDir, text: &str) -> String {
    let p = dir.path().join("t.stats");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn windows_follow_event_time_and_late_events_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let input = events(&[
        ("2026-01-01T00:00:10Z", "200"),
        ("2026-01-01T00:00:50Z", "200"),
        ("2026-01-01T00:01:05Z", "500"),
        // 535 s ahead: taken at once with --max-ahead 600.
        ("2026-01-01T00:10:00Z", "200"),
        // 9 minutes behind the newest: later than the default 300 s lateness.
        ("2026-01-01T00:01:00Z", "200"),
        // Within lateness: changes a window already written.
        ("2026-01-01T00:06:00Z", "404"),
    ]);
    let out = run(
        "pulse-fragment",
        &[
            "--stats",
            &stats,
            "--source",
            "s",
            "--now",
            "0",
            "--max-ahead",
            "600",
        ],
        &input,
    );
    crate::util::assert_ok(&out);
    let frags = ndjson(&out.stdout);
    let states = latest_states(&frags);
    let t0 = 1767225600i64;
    let count = |stat: &str, key: &str, start: i64| {
        states
            .get(&(stat.to_string(), key.to_string(), start, 60))
            .map(|v| v["count"].as_f64().unwrap())
    };
    assert_eq!(count("req", "\"200\"", t0), Some(2.0));
    assert_eq!(count("req", "\"500\"", t0 + 60), Some(1.0));
    assert_eq!(count("req", "\"200\"", t0 + 600), Some(1.0));
    assert_eq!(count("req", "\"404\"", t0 + 360), Some(1.0));
    // The late event was not counted anywhere, but in pulse.late.
    assert_eq!(count("req", "\"200\"", t0 + 60), None);
    let late: f64 = states
        .iter()
        .filter(|(k, _)| k.0 == "pulse.late")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(late, 1.0);
    // The first window was written before end of input (its end + grace was passed), and
    // the watermark passed its end before the last window was written.
    let first = frags
        .iter()
        .position(|f| f["stat"] == "req" && f["start"] == t0)
        .unwrap();
    let last_frag = frags.iter().position(|f| f["start"] == t0 + 600).unwrap();
    let passed = frags
        .iter()
        .position(|f| f["wm"].as_i64().unwrap() >= t0 + 60)
        .unwrap();
    assert!(first < last_frag && first <= passed && passed < last_frag);
    // No line claims more than is true: a line's watermark never passes the end of a window
    // written after it.
    for (i, f) in frags.iter().enumerate() {
        let wm = f["wm"].as_i64().unwrap();
        for later in &frags[i + 1..] {
            let end = later["start"].as_i64().unwrap() + later["secs"].as_i64().unwrap();
            let first_write = !frags[..i + 1].iter().any(|e| {
                e["stat"] == later["stat"]
                    && e["key"] == later["key"]
                    && e["start"] == later["start"]
            });
            if first_write {
                assert!(
                    end > wm,
                    "line {i} claims wm {wm} but a window ending {end} comes later"
                );
            }
        }
    }
    // Every rev is unique and increasing in output order.
    let revs: Vec<u64> = frags.iter().map(|f| f["rev"].as_u64().unwrap()).collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let mut input = events(&[("2026-01-01T00:00:10Z", "200")]);
    input.extend_from_slice(b"{not json\n");
    input.extend(events(&[("2026-01-01T00:00:20Z", "200")]));
    let out = run("pulse-fragment", &["--stats", &stats, "--now", "0"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pulse-fragment: stdin: line 2:"), "{err}");
    let states = latest_states(&ndjson(&out.stdout));
    let n: f64 = states
        .iter()
        .filter(|(k, _)| k.0 == "req")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(n, 2.0);
    let malformed: f64 = states
        .iter()
        .filter(|(k, _)| k.0 == "pulse.malformed")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(malformed, 1.0);

    let strict = run(
        "pulse-fragment",
        &["--stats", &stats, "--strict", "--threads", "1"],
        &input,
    );
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("line 2"));
}

/// Sum of the `count` of every latest state of `stat`.
fn total(states: &BTreeMap<(String, String, i64, u64), Value>, stat: &str) -> f64 {
    states
        .iter()
        .filter(|(k, _)| k.0 == stat)
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum()
}

#[test]
fn strict_writes_what_came_before_the_bad_line_and_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let good: Vec<(&str, &str)> = vec![("2026-01-01T00:00:10Z", "200"); 500];
    let mut input = events(&good);
    input.extend_from_slice(b"{not json\n");
    input.extend(events(&good));
    for threads in ["1", "2"] {
        let out = run(
            "pulse-fragment",
            &["--stats", &stats, "--strict", "--threads", threads],
            &input,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("line 501: malformed"), "{err}");
        assert_eq!(total(&latest_states(&ndjson(&out.stdout)), "req"), 500.0);
    }
}

#[test]
fn a_line_without_a_time_does_not_make_a_replay_late() {
    // A replayed archive (event times in 2015) with an unparsed line and an event whose
    // time is not a time. The unparsed line takes the time of the line before it; the
    // event with a bad time, the first of its stream, the clock's (here 2026), which must
    // not count as the stream's time, or every later archive line would be "late".
    let log = std::fs::read_to_string(fixture(APACHE)).unwrap();
    let mut input = String::new();
    for (i, line) in log.lines().take(2000).enumerate() {
        if i == 10 {
            input.push_str("this line is in no log format\n");
        }
        input.push_str(line);
        input.push('\n');
    }
    let now = "1795300000";
    let out = run(
        "pulse-fragment",
        &["--raw", "--source", "t", "--now", now],
        input.as_bytes(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stdin: line 11: unparsed: no format matches"),
        "{err}"
    );
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "pulse.late"), 0.0, "{err}");
    assert_eq!(total(&states, "pulse.events"), 2001.0);
    // The timeless line is counted in the window of the line before it (2015-05-17
    // 10:05), nothing at the clock's time.
    let count_at = |start: i64| -> f64 {
        states
            .iter()
            .filter(|(k, _)| k.0 == "pulse.events" && k.2 == start)
            .map(|(_, v)| v["count"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(count_at(1795300000 / 60 * 60), 0.0);
    let plain = run(
        "pulse-fragment",
        &["--raw", "--source", "t", "--now", now],
        log.lines()
            .take(2000)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    let plain = latest_states(&ndjson(&plain.stdout));
    let first = 1431857100;
    let plain_first: f64 = plain
        .iter()
        .filter(|(k, _)| k.0 == "pulse.events" && k.2 == first)
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(count_at(first), plain_first + 1.0);

    // The same from events, with a time that does not read as one.
    let mut events = b"{\"time\":\"17/May/2015:10:05:03 +0000\",\"x\":1}\n".to_vec();
    events.extend(
        run(
            "pulse-parse",
            &[],
            log.lines()
                .take(2000)
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        )
        .stdout,
    );
    let out = run("pulse-fragment", &["--now", now], &events);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stdin: line 1: bad time: \"17/May/2015:10:05:03 +0000\""),
        "{err}"
    );
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "pulse.late"), 0.0, "{err}");
    assert_eq!(total(&states, "pulse.events"), 2001.0);
}

#[test]
fn late_events_are_totalled_on_stderr() {
    let input = events(&[
        ("2026-01-01T00:10:00Z", "200"),
        ("2026-01-01T00:01:00Z", "200"),
        ("2026-01-01T00:02:00Z", "200"),
    ]);
    let out = run("pulse-fragment", &["--now", "0"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 late (dropped)"), "{err}");
    // The first is shown as it happens, with its line.
    assert!(
        err.contains("stdin: line 2: late (dropped): event time 2026-01-01T00:01:00Z is more than --lateness (300 s) behind the newest seen, 2026-01-01T00:10:00Z"),
        "{err}"
    );
    assert_eq!(
        err.matches("late (dropped): event time").count(),
        1,
        "{err}"
    );
}

#[test]
fn numbers_that_are_no_time_do_not_make_a_stream_late() {
    // Microseconds (year ~58,800 read as milliseconds) and 1e30: not times, as in
    // pulse-parse; they are reported and placed at the clock's time, and the events after
    // them still count.
    let input = b"{\"time\":1767225600,\"x\":1}\n{\"time\":1767225600000000,\"x\":1}\n\
{\"time\":1e30,\"x\":1}\n{\"time\":1767225601,\"x\":1}\n";
    let out = run("pulse-fragment", &["--now", "1767225700"], input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stdin: line 2: bad time: \"1767225600000000\""),
        "{err}"
    );
    assert!(err.contains("2 bad time"), "{err}");
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "pulse.late"), 0.0, "{err}");
    assert_eq!(total(&states, "pulse.events"), 4.0, "{err}");
}

#[test]
fn raw_strict_stops_at_the_first_unparsed_line() {
    let log = std::fs::read_to_string(fixture(APACHE)).unwrap();
    let mut input: String = log.lines().take(100).map(|l| format!("{l}\n")).collect();
    input.push_str("no format here\n");
    input.push_str(&log);
    let out = run("pulse-fragment", &["--raw", "--strict"], input.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 101: unparsed: no format matches: no format here"),
        "{err}"
    );
    assert_eq!(
        total(&latest_states(&ndjson(&out.stdout)), "pulse.events"),
        100.0
    );
}

#[test]
fn stat_names_are_not_taken_twice() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.stats");
    let b = dir.path().join("b.stats");
    std::fs::write(&a, "x count 60s\n").unwrap();
    std::fs::write(&b, "y count 60s\n\nx count 60s\n").unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = run("pulse-fragment", &["-s", a, "-s", b], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{b}:3: stat \"x\" is defined twice (also at {a}:1)"
        )),
        "{err}"
    );

    let own = stats_file(&dir, "pulse.events count 60s\n");
    let out = run("pulse-fragment", &["-s", &own], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pulse-fragment's own stats"));

    // l2met keys may not pass for a declared or own stat; other l2met keys still count.
    let line = br#"{"time":"2026-01-01T00:00:00Z","count#events.total":5,"count#pulse.late":2,"count#fine":3}"#;
    let out = run("pulse-fragment", &["--now", "0"], line);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stat events.total: l2met clash"), "{err}");
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "events.total"), 1.0);
    assert_eq!(total(&states, "pulse.late"), 0.0);
    let fine: Vec<_> = states.iter().filter(|(k, _)| k.0 == "fine").collect();
    assert_eq!(fine.len(), 1);
}

#[test]
fn bad_stats_file_is_a_usage_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, "ok count 60s\nbroken frobnicate 60s\n");
    let out = run("pulse-fragment", &["--stats", &stats], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2:"), "{err}");
}

#[test]
fn list_stats_prints_a_stats_file_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("pulse-fragment", &["--list-stats"], b"");
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("router.service"), "{listed}");
    let p = stats_file(&dir, &listed);
    let again = run("pulse-fragment", &["--list-stats", "--stats", &p], b"");
    crate::util::assert_ok(&again);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), listed);
}

#[test]
fn shards_prefix_routes_lines_by_stat() {
    let file = fixture(APACHE);
    let out = sh(&format!(
        "pulse-fragment --raw --shards 3 --now 0 {}",
        file.display()
    ));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut seen = [false; 3];
    for line in text.lines() {
        let (shard, json) = line.split_once('\t').expect("shard prefix");
        let shard: u32 = shard.parse().unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            pulse::shard::shard_of(v["stat"].as_str().unwrap(), 3),
            shard
        );
        seen[shard as usize] = true;
    }
    assert!(seen.iter().filter(|s| **s).count() >= 2);
}

#[test]
fn closed_pipe_ends_quietly() {
    let file = fixture(APACHE);
    let out = sh(&format!(
        "pulse-fragment --raw --now 0 {} | head -n1",
        file.display()
    ));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn l2met_keys_become_stats_with_zero_configuration() {
    let input = b"{\"time\":\"2026-01-01T00:00:01Z\",\"measure#db.latency\":\"4ms\",\"count#signups\":2}\n{\"time\":\"2026-01-01T00:00:02Z\",\"measure#db.latency\":\"6ms\",\"count#signups\":1}\n";
    let out = run("pulse-fragment", &["--now", "0"], input);
    assert!(out.status.success());
    let states = latest_states(&ndjson(&out.stdout));
    let t0 = 1767225600i64;
    let signups = &states[&("signups".to_string(), "null".to_string(), t0, 60)];
    assert_eq!(signups["sum"].as_f64(), Some(3.0));
    assert!(states.contains_key(&("db.latency".to_string(), "null".to_string(), t0, 60)));
}

#[test]
fn clap_definition_is_consistent() {
    use clap::CommandFactory;
    pulse::cli::fragment::Args::command().debug_assert();
}

#[test]
fn man_page_matches_help() {
    crate::util::assert_man_matches_help("pulse-fragment", "pulse-fragment.1");
}

#[test]
fn group_keys_beyond_the_cap_are_counted_under_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, "req count 60s status? by status max-keys 2\n");
    let input = events(&[
        ("2026-01-01T00:00:01Z", "200"),
        ("2026-01-01T00:00:02Z", "404"),
        ("2026-01-01T00:00:03Z", "500"),
        ("2026-01-01T00:00:04Z", "200"),
        ("2026-01-01T00:00:05Z", "503"),
        ("2026-01-01T00:00:06Z", "500"),
    ]);
    let out = run("pulse-fragment", &["--stats", &stats, "--now", "0"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("req") && err.contains("_overflow"), "{err}");
    let states = latest_states(&ndjson(&out.stdout));
    let t0 = 1767225600i64;
    let get = |key: &str| {
        states
            .get(&("req".to_string(), key.to_string(), t0, 60))
            .map(|v| v["count"].as_f64().unwrap())
    };
    assert_eq!(get("\"200\""), Some(2.0));
    assert_eq!(get("\"404\""), Some(1.0));
    assert_eq!(get("\"_overflow\""), Some(3.0));
    assert_eq!(get("\"500\""), None);
    let overflow: f64 = states
        .iter()
        .filter(|(k, _)| k.0 == "pulse.overflow")
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert_eq!(overflow, 1.0);
}

/// Reading a stream, changed windows are written by the wall clock even while no later
/// event moves event time past them (a quiet stream still reports).
#[test]
fn a_quiet_stream_still_reports_on_the_wall_clock() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let mut child = std::process::Command::new(crate::util::bin("pulse-fragment"))
        .args(["--stats", &stats, "--flush-every", "0.2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let guard = crate::util::watchdog(child.id(), 30);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&events(&[("2026-01-01T00:00:10Z", "200")]))
        .unwrap();
    stdin.flush().unwrap();
    // The input stays open: only the wall-clock flush can write the window.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = false;
    while let Some(Ok(line)) = lines.next() {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["stat"] == "req" {
            assert_eq!(v["state"]["count"].as_f64(), Some(1.0));
            seen = true;
            break;
        }
    }
    assert!(seen, "no fragment before the watchdog fired");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    drop(guard);
}

/// On a live stream that falls quiet, event time runs on with the clock: the last window is
/// written once more with a watermark past its end (so a merger can call it final) without
/// waiting for the next event or the end of input.
#[test]
fn a_quiet_live_stream_still_closes_its_windows() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("pulse-quiet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stats = dir.join("c.stats");
    std::fs::write(&stats, "c count 1s\n").unwrap();
    let mut child = Command::new(crate::util::bin("pulse-fragment"))
        .args(["--stats", stats.to_str().unwrap()])
        .args(["--grace", "0.5", "--flush-every", "0.2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{{\"time\":{now},\"x\":1}}").unwrap();
    stdin.flush().unwrap();
    // Stdin stays open and quiet.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let closed = v["wm"].as_i64().unwrap()
                >= v["start"].as_i64().unwrap() + v["secs"].as_i64().unwrap();
            if v["stat"] == "c" && closed {
                let _ = tx.send(v);
                return;
            }
        }
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(20));
    drop(stdin);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v = got.expect("the quiet stream's window was not closed while it was open");
    assert_eq!(v["start"].as_i64(), Some(now.floor() as i64));
    assert_eq!(v["state"]["count"].as_f64(), Some(1.0));
}

/// SIGTERM (or Ctrl-C) on a live stream that stays open ends the run as its end would:
/// everything read is written, every window closed (watermark past its end), exit 0.
#[test]
fn sigterm_on_a_live_stream_writes_every_window_as_at_its_end() {
    let input = "{\"time\":1767225600,\"status\":200}\n".repeat(50);
    let out = crate::util::terminated_after(
        "pulse-fragment",
        &["--flush-every", "0.2"],
        input.as_bytes(),
        600,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let frags = ndjson(&out.stdout);
    let last = frags
        .iter()
        .rev()
        .find(|f| f["stat"] == "events.total")
        .expect("events.total written");
    assert_eq!(last["state"]["count"].as_f64(), Some(50.0));
    let wm = frags
        .iter()
        .map(|f| f["wm"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(wm >= 1767225660, "windows not closed: wm {wm}");
}

#[test]
fn fields_of_a_stats_file_that_never_occur_are_warned_about_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(
        &dir,
        "ssh.failed   count 60s  sourse=sshd msg~Failed\n\
         ssh.users    count 60s  source=sshd  by usr\n\
         # a comment line\n\
         ssh.ok       count 60s  (source=sshd || source=sudo) msg~Accepted\n\
         ssh.latency  summary latency_ms 60s source=sshd\n",
    );
    let log = fixture("real/beats/auth-test.log");
    let log = log.to_str().unwrap();
    // The sample's lines jump days back and forth: none is held as too far ahead.
    let args = [
        "--raw",
        "--year",
        "2024",
        "--now",
        "0",
        "--max-ahead",
        "1e9",
        "--source",
        "t",
        "--stats",
        &stats,
        log,
    ];
    let out = run("pulse-fragment", &args, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for (line, stat, field) in [
        (1, "ssh.failed", "sourse"),
        (2, "ssh.users", "usr"),
        (5, "ssh.latency", "latency_ms"),
    ] {
        let want = format!(
            "pulse-fragment: {stats}: line {line}: stat \"{stat}\": field \"{field}\" never occurred in 10 events\n"
        );
        assert_eq!(err.matches(&want).count(), 1, "{want}\n{err}");
    }
    assert_eq!(err.matches("never occurred").count(), 3, "{err}");
    // The parenthesised filter counts both accepted logins, and the warnings change
    // nothing in the output: the same fragments with one thread or four.
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "ssh.ok"), 2.0);
    let four = run(
        "pulse-fragment",
        &[&args[..], &["--threads", "4"]].concat(),
        b"",
    );
    assert_eq!(latest_states(&ndjson(&four.stdout)), states);
    assert_eq!(four.stderr, out.stderr);
    // The summary's events without latency_ms are no-value events, reported as such.
    let novalue = total(&states, "pulse.novalue");
    assert!(novalue >= 1.0, "{err}");
    assert!(
        err.contains(": line 1: no value: stat \"ssh.latency\" (line 5) matched but has no value: field \"latency_ms\" is missing; counted in pulse.novalue"),
        "{err}"
    );
    assert!(err.contains(&format!(" {novalue} no value")), "{err}");
}

#[test]
fn the_built_in_stats_and_runs_without_events_give_no_field_warnings() {
    let log = fixture("real/beats/auth-test.log");
    let out = run(
        "pulse-fragment",
        &["--raw", "--now", "0", log.to_str().unwrap()],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("never occurred"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, "x count 60s nosuch?\n");
    let out = run("pulse-fragment", &["--stats", &stats], b"");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    // Fields that do occur, even only in late events, are not warned about.
    let input = events(&[
        ("2026-01-01T00:10:00Z", "200"),
        ("2026-01-01T00:01:00Z", "201"),
    ]);
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let out = run("pulse-fragment", &["--stats", &stats, "--now", "0"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("never occurred"), "{err}");
}

#[test]
fn events_without_a_usable_value_are_reported_with_their_line_and_totalled() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(
        &dir,
        "svc   summary service in ms 60s service?\n\
         mem   last mem per dyno sum 60s mem?\n",
    );
    let input = concat!(
        "{\"time\":60,\"service\":\"37ms\",\"mem\":5,\"dyno\":\"web.1\"}\n",
        "{\"time\":61,\"service\":\"fast\",\"mem\":5,\"dyno\":\"web.1\"}\n",
        "{\"time\":62,\"service\":\"5s\",\"mem\":5}\n",
        "{\"time\":63,\"service\":\"1MB\"}\n",
    );
    let out = run(
        "pulse-fragment",
        &["--stats", &stats, "--now", "0"],
        input.as_bytes(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("pulse-fragment: stdin: line 2: no value: stat \"svc\" (line 1) matched but has no value: service \"fast\" is not a number in ms; counted in pulse.novalue (further no value lines are counted, not shown)\n"),
        "{err}"
    );
    assert_eq!(err.matches(": no value:").count(), 1, "{err}");
    // fast, the missing dyno of line 3, 1MB: three, as in pulse.novalue.
    let states = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&states, "pulse.novalue"), 3.0);
    assert!(err.ends_with("pulse-fragment: 3 no value\n"), "{err}");
    assert_eq!(total(&states, "svc"), 2.0);
}

/// `n` events from 2026-03-01T00:00:00Z, ten a second, as lines of `{"time":..,"status":200}`,
/// the one at index `odd` (if any) dated `odd_time` instead.
fn replay(n: usize, gap_at: usize, gap: u64, odd: Option<(usize, &str)>) -> String {
    let mut out = String::with_capacity(n * 48);
    for i in 0..n {
        let t = i as u64 / 10 + if i >= gap_at { gap } else { 0 };
        let time = match odd {
            Some((at, odd_time)) if at == i => odd_time.to_string(),
            _ => format!(
                "2026-03-01T{:02}:{:02}:{:02}.{}Z",
                t / 3600,
                t / 60 % 60,
                t % 60,
                i % 10
            ),
        };
        out.push_str(&format!("{{\"time\":\"{time}\",\"status\":200}}\n"));
    }
    out
}

#[test]
fn one_event_far_ahead_is_dropped_alone_and_the_stream_keeps_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replay.ndjson");
    let n = 200_001;
    std::fs::write(
        &file,
        replay(n, n, 0, Some((100_000, "2030-03-01T00:00:00Z"))),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut states = Vec::new();
    for threads in ["1", "4"] {
        let out = run(
            "pulse-fragment",
            &["--source", "t", "--now", "0", "--threads", threads, file],
            b"",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("line 100001: future (dropped): event time 2030-03-01T00:00:00Z is more than --max-ahead (300 s) ahead of the newest seen, 2026-03-01T02:46:39.9Z"),
            "{err}"
        );
        assert!(err.contains("1 future (dropped)"), "{err}");
        assert!(!err.contains("late"), "{err}");
        let s = latest_states(&ndjson(&out.stdout));
        assert_eq!(total(&s, "pulse.events"), 200_000.0, "{err}");
        assert_eq!(total(&s, "pulse.future"), 1.0);
        assert_eq!(total(&s, "pulse.late"), 0.0);
        assert!(s.keys().all(|k| k.2 < 1_800_000_000), "a window in 2030");
        states.push(s);
    }
    assert_eq!(states[0], states[1], "1 and 4 threads differ");
}

#[test]
fn a_gap_in_a_replay_is_confirmed_by_the_events_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gap.ndjson");
    // 100,000 events, then two hours of nothing, then 100,000 more.
    std::fs::write(&file, replay(200_000, 100_000, 7200, None)).unwrap();
    let file = file.to_str().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let mut states = Vec::new();
    for threads in ["1", "4"] {
        let out = run(
            "pulse-fragment",
            &[
                "--stats",
                &stats,
                "--source",
                "t",
                "--now",
                "0",
                "--threads",
                threads,
                file,
            ],
            b"",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.is_empty(), "{err}");
        let s = latest_states(&ndjson(&out.stdout));
        assert_eq!(total(&s, "pulse.events"), 200_000.0);
        assert_eq!(total(&s, "pulse.future"), 0.0);
        assert_eq!(total(&s, "req"), 200_000.0);
        states.push(s);
    }
    assert_eq!(states[0], states[1], "1 and 4 threads differ");
}

#[test]
fn an_unconfirmed_jump_is_dropped_and_a_confirmed_one_counts_in_small_streams() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, COUNT_BY_STATUS);
    let input = events(&[
        ("2026-01-01T00:00:00Z", "200"),
        ("2026-01-01T05:00:00Z", "500"),
        ("2026-01-01T00:00:01Z", "200"),
        ("2026-01-01T03:00:00Z", "201"),
        ("2026-01-01T03:00:01Z", "201"),
        ("2026-01-01T09:00:00Z", "503"),
    ]);
    let out = run("pulse-fragment", &["--stats", &stats, "--now", "0"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The 05:00 line is not confirmed (the next is back at 00:00:01); the jump to 03:00
    // is (the next is near it); the last line has nothing after it, and is kept.
    assert!(
        err.contains("stdin: line 2: future (dropped): event time 2026-01-01T05:00:00Z"),
        "{err}"
    );
    assert!(
        err.contains("stdin: line 6: far ahead at the end (kept): event time 2026-01-01T09:00:00Z"),
        "{err}"
    );
    let s = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&s, "pulse.future"), 1.0);
    assert_eq!(total(&s, "pulse.late"), 0.0);
    assert_eq!(total(&s, "req"), 5.0);
    assert!(s.keys().all(|k| k.1 != "\"500\""), "{s:?}");
    assert!(s.keys().any(|k| k.1 == "\"503\""), "{s:?}");
}

#[test]
fn a_live_stream_drops_events_far_ahead_of_the_clock() {
    let input = events(&[
        ("2026-01-01T00:00:00Z", "200"),
        ("2026-01-01T02:00:00Z", "200"),
        ("2026-01-01T02:00:01Z", "200"),
    ]);
    // The clock is at 01:00: the jump to 02:00 is confirmed by the stream, not the clock.
    let out = run("pulse-fragment", &["--now", "1767229200"], &input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stdin: line 2: future (dropped): event time 2026-01-01T02:00:00Z is more than --max-ahead (300 s) ahead of the clock, 2026-01-01T01:00:00Z"),
        "{err}"
    );
    let s = latest_states(&ndjson(&out.stdout));
    assert_eq!(total(&s, "pulse.future"), 2.0);
    assert_eq!(total(&s, "pulse.events"), 1.0);
}

/// Events over three minutes: a declared stat's status, a stable l2met name (`measure#db`) on
/// every line, and `count#nI` with 30 distinct names, each used 1 + I % 3 times in turn.
fn l2met_flood() -> (Vec<u8>, Vec<String>) {
    let mut text = String::new();
    let mut order: Vec<String> = Vec::new();
    let mut line = 0;
    for round in 0..3 {
        for i in 0..30 {
            if round > i % 3 {
                continue;
            }
            let name = format!("n{i}");
            if !order.contains(&name) {
                order.push(name.clone());
            }
            let secs = line % 180;
            text.push_str(&format!(
                "{{\"time\":\"2026-01-01T00:{:02}:{:02}Z\",\"status\":{},\"measure#db\":\"{}ms\",\"count#{name}\":2}}\n",
                secs / 60,
                secs % 60,
                200 + line % 3,
                line % 17
            ));
            line += 1;
        }
    }
    (text.into_bytes(), order)
}

#[test]
fn l2met_names_past_the_cap_are_dropped_counted_and_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, &format!("l2met on\n{COUNT_BY_STATUS}"));
    let (input, order) = l2met_flood();
    let with = |cap: &str| {
        let out = run(
            "pulse-fragment",
            &["--stats", &stats, "--now", "0", "--max-l2met", cap],
            &input,
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        (latest_states(&ndjson(&out.stdout)), err)
    };
    let (all, quiet) = with("1000000");
    assert!(!quiet.contains("l2met dropped"), "{quiet}");
    assert!(!all.keys().any(|k| k.0 == "pulse.l2met.dropped"));
    // `db` is the first name, then n0, n1, ...: a cap of 11 admits db and n0..n9.
    let (capped, err) = with("11");
    let admitted: Vec<&str> = std::iter::once("db")
        .chain(order.iter().take(10).map(String::as_str))
        .collect();
    let refused = &order[10..];
    let l2met_names: std::collections::BTreeSet<&str> = capped
        .keys()
        .map(|k| k.0.as_str())
        .filter(|s| *s != "req" && !s.starts_with("pulse."))
        .collect();
    assert_eq!(
        l2met_names,
        admitted.iter().copied().collect(),
        "{capped:?}"
    );
    // Every contribution of a refused name is counted, in the minute it came in.
    let refused_uses: f64 = all
        .iter()
        .filter(|(k, _)| refused.contains(&k.0))
        .map(|(_, v)| v["count"].as_f64().unwrap())
        .sum();
    assert!(refused_uses >= 20.0, "{refused_uses}");
    assert_eq!(total(&capped, "pulse.l2met.dropped"), refused_uses);
    for ((stat, _, start, _), v) in &capped {
        if stat == "pulse.l2met.dropped" {
            let here: f64 = all
                .iter()
                .filter(|(k, _)| refused.contains(&k.0) && k.2 == *start)
                .map(|(_, v)| v["count"].as_f64().unwrap())
                .sum();
            assert_eq!(v["count"].as_f64().unwrap(), here, "minute {start}");
        }
    }
    // Every other stat's numbers are those of the uncapped run.
    let others = |m: &BTreeMap<(String, String, i64, u64), Value>| {
        m.iter()
            .filter(|(k, _)| !refused.contains(&k.0) && k.0 != "pulse.l2met.dropped")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(others(&capped), others(&all));
    // Told once, with the first name refused and its line (line 11: db and n0..n9 before).
    assert_eq!(err.matches("l2met dropped:").count(), 1, "{err}");
    assert!(
        err.contains("stdin: line 11: l2met dropped: l2met name \"n10\" is past --max-l2met (11"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{refused_uses} l2met dropped")),
        "{err}"
    );
}

#[test]
fn l2met_names_longer_than_max_value_len_are_dropped() {
    let long = "x".repeat(2000);
    let input = format!(
        "{{\"time\":\"2026-01-01T00:00:01Z\",\"count#{long}\":1,\"count#ok\":1}}\n{{\"time\":\"2026-01-01T00:00:02Z\",\"count#{long}\":1}}\n"
    );
    let out = run("pulse-fragment", &["--now", "0"], input.as_bytes());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let states = latest_states(&ndjson(&out.stdout));
    assert!(!states.keys().any(|k| k.0 == long));
    assert_eq!(total(&states, "pulse.l2met.dropped"), 2.0);
    assert!(states.keys().any(|k| k.0 == "ok"));
    assert!(
        err.contains("stdin: line 1: l2met dropped: l2met name \"xxx")
            && err.contains("is 2000 bytes, longer than --max-value-len (1024)"),
        "{err}"
    );
}

/// `by path`, `top path`, `last per path` and `unique path` over 5 distinct 3,000-byte paths
/// (their first 2,999 bytes the same), 4 times each, and two short paths.
const PATH_STATS: &str = "\
hits count 60s path? by path
paths top 10 path 60s path?
latest last n per path sum 60s n?
distinct unique path 60s path?
all count 60s
";

fn long_paths() -> Vec<u8> {
    let prefix = "/".to_string() + &"a".repeat(2998);
    let mut text = String::new();
    for i in 0..24 {
        let path = if i < 20 {
            format!("{prefix}{}", i % 5)
        } else {
            format!("/short{}", i % 2)
        };
        text.push_str(&format!(
            "{{\"time\":\"2026-01-01T00:00:{i:02}Z\",\"path\":\"{path}\",\"n\":{i}}}\n"
        ));
    }
    text.into_bytes()
}

/// The marker ending a text cut by --max-value-len, if any: (whole length, hash).
fn marker(text: &str) -> Option<(usize, String)> {
    let at = text.rfind("\u{2026}[cut from ")?;
    let rest = text[at..].strip_prefix("\u{2026}[cut from ")?;
    let (len, hash) = rest.strip_suffix(']')?.split_once(" bytes #")?;
    Some((len.parse().ok()?, hash.to_string()))
}

#[test]
fn long_values_are_cut_with_a_marker_counted_and_told() {
    let dir = tempfile::tempdir().unwrap();
    let stats = stats_file(&dir, PATH_STATS);
    let input = long_paths();
    let with = |max: &str| {
        let out = run(
            "pulse-fragment",
            &["--stats", &stats, "--now", "0", "--max-value-len", max],
            &input,
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        (latest_states(&ndjson(&out.stdout)), err)
    };
    let (states, err) = with("1024");
    let t0 = 1767225600i64;
    // By path: each long path its own key, cut, marked with its length and a hash.
    let hits: Vec<(String, f64)> = states
        .iter()
        .filter(|(k, _)| k.0 == "hits")
        .map(|(k, v)| {
            let key: String = serde_json::from_str(&k.1).unwrap();
            (key, v["count"].as_f64().unwrap())
        })
        .collect();
    assert_eq!(hits.len(), 7, "{hits:?}");
    let mut hashes = std::collections::BTreeSet::new();
    for (key, n) in &hits {
        if key.starts_with("/short") {
            assert_eq!(*n, 2.0);
            assert!(marker(key).is_none());
            continue;
        }
        assert_eq!(*n, 4.0, "{key}");
        assert!(key.len() > 1024 && key.len() <= 1024 + 64, "{}", key.len());
        assert!(key.starts_with(&("/".to_string() + &"a".repeat(1023))));
        let (len, hash) = marker(key).unwrap_or_else(|| panic!("no marker: {key}"));
        assert_eq!(len, 3000);
        hashes.insert(hash);
    }
    assert_eq!(hashes.len(), 5);
    // Top values and last partitions the same way; unique values are hashed whole.
    let top = &states[&("paths".to_string(), "null".to_string(), t0, 60)]["counts"];
    let top = top.as_object().unwrap();
    assert_eq!(top.len(), 7, "{top:?}");
    assert_eq!(
        top.keys().filter(|v| marker(v).is_some()).count(),
        5,
        "{top:?}"
    );
    assert!(top
        .values()
        .all(|n| n.as_u64() == Some(4) || n.as_u64() == Some(2)));
    let parts = &states[&("latest".to_string(), "null".to_string(), t0, 60)]["parts"];
    let parts = parts.as_object().unwrap();
    assert_eq!(parts.len(), 7);
    assert_eq!(parts.keys().filter(|v| marker(v).is_some()).count(), 5);
    let unique = run("pulse-merge", &["--every", "0"], &{
        let out = run("pulse-fragment", &["--stats", &stats, "--now", "0"], &input);
        out.stdout
    });
    let snaps = ndjson(&unique.stdout);
    let distinct = snaps
        .iter()
        .find(|s| s["stat"] == "distinct")
        .expect("a unique snapshot");
    assert_eq!(distinct["values"]["unique"].as_f64(), Some(7.0));
    // Each event with a cut text counted once; the first told with its line.
    assert_eq!(total(&states, "pulse.value.cut"), 20.0);
    assert_eq!(err.matches("value cut:").count(), 1, "{err}");
    assert!(
        err.contains("stdin: line 1: value cut: the group key of stat \"hits\" (line 1) is 3000 bytes, longer than --max-value-len (1024): kept as its first bytes and a marker"),
        "{err}"
    );
    assert!(err.contains("20 value cut"), "{err}");

    // A smaller bound cuts the same values shorter, with the same markers, and changes
    // nothing else: the short keys, the counts and the stats without texts.
    let (short, _) = with("100");
    let strip = |m: &BTreeMap<(String, String, i64, u64), Value>| {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            let key = match serde_json::from_str::<Option<String>>(&k.1).unwrap() {
                Some(key) => match marker(&key) {
                    Some((len, hash)) => format!("cut {len} {hash}"),
                    None => key,
                },
                None => "null".into(),
            };
            let v = match (v.get("counts"), v.get("parts")) {
                (Some(c), _) => Value::from(
                    c.as_object()
                        .unwrap()
                        .iter()
                        .map(|(t, n)| {
                            format!("{:?} {n}", marker(t).map(|m| m.1).unwrap_or(t.clone()))
                        })
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>(),
                ),
                (_, Some(p)) => Value::from(
                    p.as_object()
                        .unwrap()
                        .iter()
                        .map(|(t, n)| {
                            format!("{:?} {n}", marker(t).map(|m| m.1).unwrap_or(t.clone()))
                        })
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>(),
                ),
                _ => v.clone(),
            };
            out.insert((k.0.clone(), key, k.2), v);
        }
        out
    };
    assert!(short
        .keys()
        .filter(|k| k.0 == "hits")
        .all(|k| k.1.len() < 200));
    assert_eq!(strip(&short), strip(&states));

    for bad in ["0", "1025"] {
        let out = run("pulse-fragment", &["--max-value-len", bad], b"");
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
}
