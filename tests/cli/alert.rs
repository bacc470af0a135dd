//! pulse-alert: rules over snapshots, through the real binaries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{assert_ok, ndjson, run, sh, spawn_piped};

/// Start of gen-router-log's event time (2026-01-01T00:00:00Z).
const T0: i64 = 1767225600;

/// Rules for the three incidents of `gen-router-log --incidents`.
pub const INCIDENT_RULES: &str = "\
# The incidents of scripts/gen-router-log --incidents
h12-storm   router.errors[H12]       count  > 100   for 2m  severity critical  \"{value} H12 timeouts a minute\"
silent-app  router.requests.app[*]          absent  for 2m  \"{key} stopped sending traffic\"
slow-app    router.service[*]        p95    > 1000  for 5m  clear 800  \"p95 of {key} is {value} ms\"
";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The snapshots of a 22-minute generated replay with incidents, through the real pipeline
/// (gen-router-log → pulse-fragment --raw → pulse-merge), made once per test run.
pub fn incident_snapshots() -> &'static [u8] {
    static SNAPS: OnceLock<Vec<u8>> = OnceLock::new();
    SNAPS.get_or_init(|| {
        let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-router-log");
        let out = sh(&format!(
            "python3 {} 66000 --rate 50 --incidents | pulse-fragment --raw | pulse-merge",
            gen.display()
        ));
        assert_ok(&out);
        out.stdout
    })
}

/// (rule, key, state, minute of the window) of every record.
pub fn summary(out: &[u8]) -> Vec<(String, String, String, i64)> {
    ndjson(out)
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap_or("null").to_string(),
                r["state"].as_str().unwrap().to_string(),
                (r["start"].as_i64().unwrap() - T0) / 60,
            )
        })
        .collect()
}

pub fn expected_incidents() -> Vec<(String, String, String, i64)> {
    [
        ("h12-storm", "H12", "firing", 4),
        ("h12-storm", "H12", "resolved", 6),
        ("silent-app", "admin.example.com", "firing", 9),
        ("silent-app", "admin.example.com", "resolved", 11),
        ("slow-app", "www.example.org", "firing", 17),
        ("slow-app", "www.example.org", "resolved", 19),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d))
    .collect()
}

#[test]
fn alert_incidents_of_a_generated_replay_fire_and_resolve_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-router-log");
    // The whole pipeline in one go, as an operator runs it.
    let out = sh(&format!(
        "python3 {} 66000 --rate 50 --incidents | pulse-fragment --raw | pulse-merge | pulse-alert --rules {}",
        gen.display(),
        rules.display()
    ));
    assert_ok(&out);
    assert_eq!(summary(&out.stdout), expected_incidents());
    let recs = ndjson(&out.stdout);
    let h12 = &recs[0];
    assert_eq!(h12["stat"], "router.errors");
    assert_eq!(h12["value_name"], "count");
    assert_eq!(h12["severity"], "critical");
    assert_eq!(h12["threshold"], 100);
    assert_eq!(h12["secs"], 60);
    assert_eq!(
        h12["since"],
        T0 + 180,
        "pending since the storm's first minute"
    );
    assert_eq!(h12["correction"], false);
    assert!(h12["value"].as_f64().unwrap() > 100.0);
    assert_eq!(
        h12["summary"],
        format!("{} H12 timeouts a minute", h12["value"])
    );
    // The resolution of slow-app is judged against clear (800).
    assert_eq!(recs[5]["threshold"], 800);
    assert_eq!(recs[2]["value"], serde_json::Value::Null);
    // With --pending, the H12 storm's p95 on api (3 minutes, under for 5m) is pending, then
    // ok: never firing.
    let out = run(
        "pulse-alert",
        &["--rules", rules.to_str().unwrap(), "--pending"],
        incident_snapshots(),
    );
    assert_ok(&out);
    let s = summary(&out.stdout);
    assert!(s.contains(&(
        "slow-app".into(),
        "api.example.com".into(),
        "pending".into(),
        3
    )));
    assert!(s.contains(&("slow-app".into(), "api.example.com".into(), "ok".into(), 6)));
    let firing: Vec<_> = s
        .iter()
        .filter(|t| t.2 == "firing" || t.2 == "resolved")
        .cloned()
        .collect();
    assert_eq!(firing, expected_incidents());
    // The table, for people.
    let out = run(
        "pulse-alert",
        &["--rules", rules.to_str().unwrap(), "--format", "table"],
        incident_snapshots(),
    );
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].starts_with("WINDOW") && lines[0].ends_with("SUMMARY"));
    assert!(
        lines[1].starts_with("2026-01-01T00:04:00Z  firing"),
        "{text}"
    );
    assert!(lines[1].contains("h12-storm") && lines[1].contains("H12 timeouts"));
}

/// Snapshots of one series with the given counts, one per minute.
fn series(stat: &str, key: &str, vals: &[f64]) -> String {
    vals.iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{{\"stat\":\"{stat}\",\"key\":\"{key}\",\"start\":{},\"secs\":60,\"final\":true,\"values\":{{\"count\":{v}}}}}\n",
                T0 + 60 * i as i64
            )
        })
        .collect()
}

#[test]
fn alert_a_series_oscillating_around_its_threshold_does_not_flap_with_for_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    // Around 100: above, below, above ... for 20 minutes, then well under.
    let mut vals: Vec<f64> = (0..20)
        .map(|i| if i % 2 == 0 { 104.0 } else { 96.0 })
        .collect();
    vals.splice(2..2, [130.0, 140.0]); // it really rises once
    vals.extend([60.0, 50.0]);
    let input = series("s", "a", &vals);
    let calm = write(
        dir.path(),
        "calm.rules",
        b"osc s[a] count > 100 for 2m clear 80\n",
    );
    let out = run(
        "pulse-alert",
        &["-r", calm.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_ok(&out);
    let s = summary(&out.stdout);
    assert_eq!(
        s,
        vec![
            ("osc".into(), "a".into(), "firing".into(), 3),
            ("osc".into(), "a".into(), "resolved".into(), 22)
        ]
    );
    // The same series with a bare threshold flaps: what for and clear are for.
    let bare = write(dir.path(), "bare.rules", b"osc s[a] count > 100\n");
    let out = run(
        "pulse-alert",
        &["-r", bare.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_ok(&out);
    let firings = summary(&out.stdout)
        .iter()
        .filter(|t| t.2 == "firing")
        .count();
    assert!(firings >= 10, "{firings}");
    // for alone stops the flapping before firing (pending comes and goes).
    let for_only = write(dir.path(), "for.rules", b"osc s[a] count > 100 for 2m\n");
    let osc = series("s", "a", &vals[4..20]);
    let out = run(
        "pulse-alert",
        &["-r", for_only.to_str().unwrap()],
        osc.as_bytes(),
    );
    assert_ok(&out);
    assert_eq!(out.stdout, b"", "never fires");
}

/// Feed `input` to pulse-alert in `pieces` writes (cut anywhere, mid-line too), pausing
/// between them, and return its stdout.
fn fed_slowly(args: &[&str], input: &[u8], pieces: usize) -> Vec<u8> {
    let mut child = spawn_piped("pulse-alert", args);
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let step = data.len() / pieces + 1;
        for chunk in data.chunks(step) {
            stdin.write_all(chunk).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_ok(&out);
    out.stdout
}

#[test]
fn alert_replay_equals_live_fed_at_once_slowly_or_with_keys_shuffled() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let file = write(dir.path(), "snaps.ndjson", incident_snapshots());
    let r = rules.to_str().unwrap();
    let at_once = run(
        "pulse-alert",
        &["-r", r, "--pending", file.to_str().unwrap()],
        b"",
    );
    assert_ok(&at_once);
    assert!(!at_once.stdout.is_empty());
    let slow = fed_slowly(&["-r", r, "--pending"], incident_snapshots(), 37);
    assert_eq!(
        String::from_utf8_lossy(&slow),
        String::from_utf8_lossy(&at_once.stdout),
        "fed slowly through a pipe"
    );
    // The keys of each window (and the stats) in another order: the same transitions.
    let text = String::from_utf8(incident_snapshots().to_vec()).unwrap();
    let mut groups: Vec<(i64, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let start = v["start"].as_i64().unwrap();
        match groups.last_mut() {
            Some((s, g)) if *s == start => g.push(line),
            _ => groups.push((start, vec![line])),
        }
    }
    let mut shuffled = String::new();
    for (i, (_, g)) in groups.iter_mut().enumerate() {
        // A deterministic shuffle: reversed, then rotated.
        g.reverse();
        let k = i % g.len().max(1);
        g.rotate_left(k);
        for l in g.iter() {
            shuffled.push_str(l);
            shuffled.push('\n');
        }
    }
    assert_ne!(shuffled.as_bytes(), incident_snapshots());
    let out = fed_slowly(&["-r", r, "--pending"], shuffled.as_bytes(), 11);
    let sorted = |b: &[u8]| {
        let mut v: Vec<String> = String::from_utf8_lossy(b)
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&out), sorted(&at_once.stdout), "keys shuffled");
    // Without --pending no two transitions share a window here: byte-identical.
    let plain = run("pulse-alert", &["-r", r, file.to_str().unwrap()], b"");
    let plain_shuffled = run("pulse-alert", &["-r", r], shuffled.as_bytes());
    assert_eq!(plain.stdout, plain_shuffled.stdout);
}

#[test]
fn alert_a_late_correction_lifting_a_window_over_the_threshold_is_a_correction_record() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "r.rules", b"errs s[a] count > 10 for 2m\n");
    let mut input = series("s", "a", &[1.0, 20.0, 5.0, 1.0, 1.0]);
    // Window 2 sent again as final with late data: 25 > 10, so 1 and 2 held: firing at 2,
    // resolved at 3.
    input.push_str(&format!(
        "{{\"stat\":\"s\",\"key\":\"a\",\"start\":{},\"secs\":60,\"final\":true,\"values\":{{\"count\":25}}}}\n",
        T0 + 120
    ));
    let out = run(
        "pulse-alert",
        &["-r", rules.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_ok(&out);
    let recs = ndjson(&out.stdout);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0]["state"], "firing");
    assert_eq!(recs[0]["correction"], true);
    assert_eq!(recs[0]["start"], T0 + 120);
    assert_eq!(recs[0]["value"], 25);
    assert_eq!(recs[0]["since"], T0 + 60);
    assert_eq!(recs[1]["state"], "resolved");
    assert_eq!(recs[1]["correction"], true);
    assert_eq!(recs[1]["start"], T0 + 180);
    // The same final sent a third time changes nothing.
    let again = format!(
        "{input}{{\"stat\":\"s\",\"key\":\"a\",\"start\":{},\"secs\":60,\"final\":true,\"values\":{{\"count\":25}}}}\n",
        T0 + 120
    );
    let out2 = run(
        "pulse-alert",
        &["-r", rules.to_str().unwrap()],
        again.as_bytes(),
    );
    assert_eq!(out2.stdout, out.stdout);
}

/// The incident snapshots cut at the first line of window `minute`.
fn cut_at(minute: i64) -> (Vec<u8>, Vec<u8>) {
    let all = incident_snapshots();
    let needle = format!("\"start\":{}", T0 + 60 * minute);
    let text = std::str::from_utf8(all).unwrap();
    let at = text
        .lines()
        .scan(0usize, |off, l| {
            let here = *off;
            *off += l.len() + 1;
            Some((here, l))
        })
        .find(|(_, l)| l.contains(&needle))
        .map(|(o, _)| o)
        .unwrap();
    (all[..at].to_vec(), all[at..].to_vec())
}

#[test]
fn alert_a_restart_with_state_in_an_incident_neither_fires_again_nor_misses_the_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let st = dir.path().join("alert.state");
    let (r, s) = (rules.to_str().unwrap(), st.to_str().unwrap());
    let whole = run("pulse-alert", &["-r", r], incident_snapshots());
    assert_ok(&whole);
    // Stopped in the middle of the H12 storm (it fired at minute 4), and of the silence.
    for minute in [5, 10] {
        let _ = std::fs::remove_file(&st);
        let (a, b) = cut_at(minute);
        let first = run("pulse-alert", &["-r", r, "--state", s], &a);
        assert_ok(&first);
        let second = run("pulse-alert", &["-r", r, "--state", s], &b);
        assert_ok(&second);
        let mut both = first.stdout.clone();
        both.extend(&second.stdout);
        assert_eq!(
            String::from_utf8_lossy(&both),
            String::from_utf8_lossy(&whole.stdout),
            "cut at minute {minute}"
        );
        let second = summary(&second.stdout);
        assert!(second
            .iter()
            .all(|t| !(t.0 == "h12-storm" && t.2 == "firing")));
        if minute == 5 {
            assert!(second.contains(&("h12-storm".into(), "H12".into(), "resolved".into(), 6)));
        }
    }
    // The state file is private, and a run with a planted link instead refuses it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&st).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let link = dir.path().join("link.state");
    std::os::unix::fs::symlink(&st, &link).unwrap();
    let out = run(
        "pulse-alert",
        &["-r", r, "--state", link.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));

    // Cron: the same file, appended to between runs, is read from where the last run
    // stopped.
    let cron_state = dir.path().join("cron.state");
    let snaps = dir.path().join("snaps.ndjson");
    let (a, b) = cut_at(5);
    std::fs::write(&snaps, &a).unwrap();
    let args = [
        "-r",
        r,
        "--state",
        cron_state.to_str().unwrap(),
        snaps.to_str().unwrap(),
    ];
    let first = run("pulse-alert", &args, b"");
    assert_ok(&first);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&snaps)
        .unwrap()
        .write_all(&b)
        .unwrap();
    let second = run("pulse-alert", &args, b"");
    assert_ok(&second);
    let third = run("pulse-alert", &args, b"");
    assert_ok(&third);
    assert_eq!(third.stdout, b"", "nothing new, nothing written");
    let mut both = first.stdout.clone();
    both.extend(&second.stdout);
    assert_eq!(both, whole.stdout);
}

#[test]
fn alert_webhook_against_a_server_that_fails_then_recovers_gets_every_transition_once_in_order() {
    use crate::emit::http_peer;
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let r = rules.to_str().unwrap();
    // Two failures, then every request accepted.
    let (addr, seen) = http_peer(|i, _| {
        Some(if i < 2 {
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string()
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        })
    });
    let url = format!("http://alert:hook-s3cret@{addr}/hook");
    let out = run(
        "pulse-alert",
        &["-r", r, "--webhook", &url, "--format", "none"],
        incident_snapshots(),
    );
    assert_ok(&out);
    assert_eq!(out.stdout, b"");
    assert!(!stderr(&out).contains("s3cret"));
    let reqs = seen.lock().unwrap().clone();
    assert!(reqs.len() >= 3, "{reqs:?}");
    let mut got = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(req.line, "POST /hook HTTP/1.1");
        // base64("alert:hook-s3cret")
        assert_eq!(
            req.headers.get("authorization").map(String::as_str),
            Some("Basic YWxlcnQ6aG9vay1zM2NyZXQ=")
        );
        if i < 2 {
            continue; // answered 503: not delivered
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["version"], "4");
        assert_eq!(body["receiver"], "pulse-alert");
        for a in body["alerts"].as_array().unwrap() {
            got.push((
                a["labels"]["alertname"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
                a["startsAt"].as_str().unwrap().to_string(),
                a["endsAt"].as_str().unwrap().to_string(),
            ));
        }
    }
    let want: Vec<(String, String, String, String)> = [
        (
            "h12-storm",
            "firing",
            "2026-01-01T00:03:00Z",
            "0001-01-01T00:00:00Z",
        ),
        (
            "h12-storm",
            "resolved",
            "2026-01-01T00:03:00Z",
            "2026-01-01T00:06:00Z",
        ),
        (
            "silent-app",
            "firing",
            "2026-01-01T00:08:00Z",
            "0001-01-01T00:00:00Z",
        ),
        (
            "silent-app",
            "resolved",
            "2026-01-01T00:08:00Z",
            "2026-01-01T00:11:00Z",
        ),
        (
            "slow-app",
            "firing",
            "2026-01-01T00:13:00Z",
            "0001-01-01T00:00:00Z",
        ),
        (
            "slow-app",
            "resolved",
            "2026-01-01T00:13:00Z",
            "2026-01-01T00:19:00Z",
        ),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn alert_webhook_down_with_state_delivers_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let st = dir.path().join("alert.state");
    let (r, s) = (rules.to_str().unwrap(), st.to_str().unwrap());
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://u:pw-s3cret@127.0.0.1:{port}/hook");
    let mut cmd = std::process::Command::new(crate::util::bin("pulse-alert"));
    cmd.args(["-r", r, "--state", s, "--webhook-tries", "2"])
        .env("ALERT_URLS", &down)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(incident_snapshots())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        summary(&out.stdout),
        expected_incidents(),
        "stdout still gets them"
    );
    let err = stderr(&out);
    assert!(!err.contains("s3cret"), "{err}");
    let failures: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("after 2 tries"))
        .collect();
    assert_eq!(failures.len(), 1, "one line per run of failures: {err}");
    assert!(failures[0].contains("POST http://127.0.0.1:"), "{err}");
    // The receiver is back (same URL, so its queue is taken): the next run, with no new
    // input, delivers what was kept, once, in order.
    let (_, seen) = crate::emit::http_peer_on(
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
        |_, _| Some("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()),
    );
    let mut cmd = std::process::Command::new(crate::util::bin("pulse-alert"));
    cmd.args(["-r", r, "--state", s]).env("ALERT_URLS", &down);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_ok(&out);
    assert_eq!(out.stdout, b"", "nothing new evaluated");
    let reqs = seen.lock().unwrap().clone();
    let names: Vec<String> = reqs
        .iter()
        .flat_map(|q| {
            let b: serde_json::Value = serde_json::from_slice(&q.body).unwrap();
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{} {}", a["labels"]["alertname"], a["status"]))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        names,
        [
            "\"h12-storm\" \"firing\"",
            "\"h12-storm\" \"resolved\"",
            "\"silent-app\" \"firing\"",
            "\"silent-app\" \"resolved\"",
            "\"slow-app\" \"firing\"",
            "\"slow-app\" \"resolved\""
        ]
    );
    // Delivered: a third run sends nothing.
    let mut cmd = std::process::Command::new(crate::util::bin("pulse-alert"));
    cmd.args(["-r", r, "--state", s]).env("ALERT_URLS", &down);
    assert_ok(&cmd.stdin(Stdio::null()).output().unwrap());
    assert_eq!(seen.lock().unwrap().len(), reqs.len());
}

#[test]
fn alert_bad_rules_and_bad_input_are_reported_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "bad.rules",
        b"# ok\nfine s count > 1\nbroken s count > lots\n",
    );
    let out = run("pulse-alert", &["-r", rules.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:3:18: expected a number", rules.display())),
        "{err}"
    );
    assert!(err.starts_with("pulse-alert: "), "{err}");
    // A bad snapshot line is reported with its line number; --strict makes it fatal.
    let rules = write(dir.path(), "ok.rules", b"fine s count > 1\n");
    let input = format!("{}not json\n", series("s", "a", &[5.0]));
    let out = run(
        "pulse-alert",
        &["-r", rules.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("stdin: line 2"), "{}", stderr(&out));
    assert_eq!(summary(&out.stdout).len(), 1);
    let out = run(
        "pulse-alert",
        &["-r", rules.to_str().unwrap(), "--strict"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    // Lines the fast reader leaves to the general one keep their numbers: a blank line, a
    // bad one, bytes that are not UTF-8 (the whole chunk is then read line by line), and a
    // good snapshot written another way (an escape in its key, the fields reordered).
    let other = format!(
        "{{\"values\":{{\"count\":7}},\"final\":true,\"secs\":60,\"start\":{},\"key\":\"\\u0062\",\"stat\":\"s\"}}\n",
        T0
    );
    for tail in [&b""[..], b"\xff\xfe\n"] {
        let mut input = series("s", "a", &[5.0]).into_bytes();
        input.extend_from_slice(b"\nnot json\n");
        input.extend_from_slice(other.as_bytes());
        input.extend_from_slice(tail);
        let out = run("pulse-alert", &["-r", rules.to_str().unwrap()], &input);
        assert_ok(&out);
        let err = stderr(&out);
        assert!(err.contains("stdin: line 3"), "{err}");
        // Only the first bad line is shown; the rest are counted.
        let bad = if tail.is_empty() { "1 bad" } else { "2 bad" };
        assert!(err.contains(&format!("pulse-alert: {bad}")), "{err}");
        for good in ["line 1:", "line 2:", "line 4:"] {
            assert!(!err.contains(&format!("stdin: {good}")), "{err}");
        }
        let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].to_string())
            .collect();
        assert_eq!(keys, ["\"a\"", "\"b\""]);
    }
    // No --rules: a usage error.
    let out = run("pulse-alert", &[], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn alert_repeat_restates_firing_alerts_in_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "r.rules", b"hot s[a] count > 10\n");
    let input = series("s", "a", &[20.0; 7]);
    let out = run(
        "pulse-alert",
        &["-r", rules.to_str().unwrap(), "--repeat", "3m"],
        input.as_bytes(),
    );
    assert_ok(&out);
    let recs = ndjson(&out.stdout);
    let got: Vec<(i64, bool)> = recs
        .iter()
        .map(|r| {
            (
                (r["start"].as_i64().unwrap() - T0) / 60,
                r["repeat"] == true,
            )
        })
        .collect();
    assert_eq!(got, vec![(0, false), (3, true), (6, true)]);
}

/// The OPTIONS section of `man/pulse-alert.1` is generated from the clap definition between
/// marker comments. `PULSE_BLESS=1 cargo test man_page` rewrites it.
#[test]
fn alert_man_page_options_match_help() {
    if crate::util::generated_options_match("pulse-alert.1", pulse::cli::alert::command()).is_none()
    {
        return;
    }
    crate::util::assert_man_matches_help("pulse-alert", "pulse-alert.1");
}

/// Every example of pulse.rules(5) (its SYNOPSIS and EXAMPLES blocks) is a valid rules file.
#[test]
fn alert_rules_man_page_examples_parse() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/pulse.rules.5"))
            .unwrap();
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    let mut section = String::new();
    for line in page.lines() {
        if let Some(s) = line.strip_prefix(".SH ") {
            section = s.to_string();
        } else if line == ".EX" {
            cur = Some(String::new());
        } else if line == ".EE" {
            let b = cur.take().unwrap();
            if section != "GRAMMAR" {
                blocks.push(b);
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(&line.replace("\\-", "-").replace("\\e", "\\"));
            b.push('\n');
        }
    }
    assert!(blocks.len() >= 3);
    let dir = tempfile::tempdir().unwrap();
    let mut names = 0;
    for (i, b) in blocks.iter().enumerate() {
        let f = write(dir.path(), &format!("{i}.rules"), b.as_bytes());
        let out = run("pulse-alert", &["-r", f.to_str().unwrap()], b"");
        assert_ok(&out);
        names += b
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with(' '))
            .count();
    }
    assert!(names >= 12, "{names}");
}

/// Live, killed without warning (SIGKILL) mid-incident while its input is still open: the
/// state saved as it went lets the next run go on without a second firing.
#[test]
fn alert_killed_live_mid_incident_resumes_from_its_state() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let st = dir.path().join("alert.state");
    let (r, s) = (rules.to_str().unwrap(), st.to_str().unwrap());
    let whole = run("pulse-alert", &["-r", r], incident_snapshots());
    let (a, b) = cut_at(5);
    let mut child = spawn_piped("pulse-alert", &["-r", r, "--state", s]);
    let guard = crate::util::watchdog(child.id(), 30);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&a).unwrap();
    stdin.flush().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(first.contains("\"state\":\"firing\""), "{first}");
    // Idle for longer than the state's save interval, then killed.
    std::thread::sleep(Duration::from_millis(1600));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(guard);
    drop(stdin);
    let second = run("pulse-alert", &["-r", r, "--state", s], &b);
    assert_ok(&second);
    let mut both = first.into_bytes();
    both.extend(&second.stdout);
    assert_eq!(
        String::from_utf8_lossy(&both),
        String::from_utf8_lossy(&whole.stdout)
    );
}

/// --early evaluates provisional snapshots too: what it adds is marked provisional, and
/// without those records the output is the final evaluation's.
#[test]
fn alert_early_adds_only_provisional_records() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "r.rules", b"hot s[a] count > 10\n");
    let r = rules.to_str().unwrap();
    let prov = |start: i64, v: f64| {
        format!(
            "{{\"stat\":\"s\",\"key\":\"a\",\"start\":{start},\"secs\":60,\"final\":false,\"values\":{{\"count\":{v}}}}}\n"
        )
    };
    let fin = |start: i64, v: f64| prov(start, v).replace("\"final\":false", "\"final\":true");
    let input = [
        fin(T0, 1.0),
        prov(T0 + 60, 12.0), // looks bad early...
        fin(T0 + 60, 3.0),   // ...but is not: withdrawn
        prov(T0 + 120, 30.0),
        fin(T0 + 120, 31.0), // confirmed
    ]
    .concat();
    let plain = run("pulse-alert", &["-r", r], input.as_bytes());
    assert_ok(&plain);
    let early = run("pulse-alert", &["-r", r, "--early"], input.as_bytes());
    assert_ok(&early);
    let recs = ndjson(&early.stdout);
    let got: Vec<(i64, String, bool, bool)> = recs
        .iter()
        .map(|r| {
            (
                (r["start"].as_i64().unwrap() - T0) / 60,
                r["state"].as_str().unwrap().to_string(),
                r["provisional"] == true,
                r["withdrawn"] == true,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "firing".into(), true, false),
            (1, "firing".into(), true, true),
            (2, "firing".into(), true, false),
            (2, "firing".into(), false, false),
        ]
    );
    let finals: Vec<&serde_json::Value> =
        recs.iter().filter(|r| r["provisional"] != true).collect();
    assert_eq!(finals, ndjson(&plain.stdout).iter().collect::<Vec<_>>());
    // On the generated replay (whose merger wrote provisional snapshots too), the same.
    let rules = write(dir.path(), "ops.rules", INCIDENT_RULES.as_bytes());
    let r = rules.to_str().unwrap();
    let plain = run("pulse-alert", &["-r", r], incident_snapshots());
    let early = run("pulse-alert", &["-r", r, "--early"], incident_snapshots());
    let finals: Vec<serde_json::Value> = ndjson(&early.stdout)
        .into_iter()
        .filter(|r| r["provisional"] != true)
        .collect();
    assert_eq!(finals, ndjson(&plain.stdout));
}
