//! `pulse-emit` CLI tests.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::servers::{Carbon, Postgres};
use crate::util::{bin, ndjson, run, sh};

/// A window start near now (whisper keeps 5 years; keep test data well inside that).
fn recent_minute(minutes_ago: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now / 60 - minutes_ago) * 60
}

pub(crate) fn snap(
    stat: &str,
    key: Option<&str>,
    start: i64,
    fin: bool,
    values: &[(&str, f64)],
) -> String {
    serde_json::json!({
        "stat": stat,
        "key": key,
        "start": start,
        "secs": 60,
        "final": fin,
        "values": values.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
    })
    .to_string()
        + "\n"
}

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn append(path: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn clap_command_is_valid() {
    pulse::cli::emit::command().debug_assert();
}

#[test]
fn json_collapses_to_latest_final_preferred_and_reports_bad_lines() {
    let mut input = String::new();
    input += &snap("web.status", Some("200"), 60, false, &[("count", 1.0)]);
    input += "not json\n";
    input += &snap("web.status", Some("200"), 60, true, &[("count", 5.0)]);
    input += &snap("web.status", Some("200"), 60, false, &[("count", 4.0)]);
    input += "\n";
    input += &snap("web.status", None, 0, true, &[("count", 9.0)]);
    input += "{\"stat\":\"x\"}\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.ndjson");
    std::fs::write(&file, &input).unwrap();
    let out = run(
        "pulse-emit",
        &["--format", "json", file.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = ndjson(&out.stdout);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["start"], 0);
    assert_eq!(got[1]["values"]["count"], 5);
    assert_eq!(got[1]["final"], true);
    let err = stderr(&out);
    assert!(
        err.contains("s.ndjson: line 2: invalid: not a snapshot"),
        "{err}"
    );
    assert!(err.contains("pulse-emit: 2 invalid"), "{err}");

    let strict = run("pulse-emit", &["--strict", "-f", "json"], input.as_bytes());
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        stderr(&strict).contains("stdin: line 2"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn csv_rows_per_value_and_table_for_people() {
    let input = snap(
        "router.service",
        Some("web.1"),
        120,
        true,
        &[("mean", 12.5), ("count", 4.0)],
    ) + &snap("router.service", None, 120, true, &[("count", 2.0)]);
    let out = run("pulse-emit", &["-f", "csv"], input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "stat,key,start,secs,final,name,value\n\
         router.service,,120,60,true,count,2\n\
         router.service,web.1,120,60,true,count,4\n\
         router.service,web.1,120,60,true,mean,12.5\n"
    );
    // Default format is the table.
    let out = run("pulse-emit", &[], input.as_bytes());
    assert_eq!(
        stdout(&out),
        "router.service\n\
         key    start                 secs  final  count  mean\n\
         -      1970-01-01T00:02:00Z    60  yes        2     -\n\
         web.1  1970-01-01T00:02:00Z    60  yes        4  12.5\n"
    );
}

#[test]
fn graphite_format_cleans_paths() {
    let input = snap(
        "router.status",
        Some("a b/c:d.e"),
        1431856800,
        true,
        &[("p.95", 0.25)],
    ) + &snap("router.status", None, 1431856800, true, &[("count", 3.0)]);
    let out = run(
        "pulse-emit",
        &["-f", "graphite", "--prefix", "pulse.prod"],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pulse.prod.router.status.count 3 1431856800\n\
         pulse.prod.router.status.a_b_c_d_e.p_95 0.25 1431856800\n"
    );
}

#[test]
fn closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.ndjson");
    let mut s = String::new();
    for i in 0..20000 {
        s += &snap("s", Some(&i.to_string()), 60, true, &[("count", 1.0)]);
    }
    std::fs::write(&file, s).unwrap();
    for format in ["graphite", "json", "csv"] {
        let out = sh(&format!(
            "pulse-emit -f {format} < {} | head -1",
            file.display()
        ));
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), 1);
        assert_eq!(stderr(&out), "", "{format}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--state", "s.json"][..],
        &["--state", "s.json", "-"],
        &["--format", "xml"],
        &["--graphite", "udp://x:1"],
        &["--metrics-url", "ftp://u:secret@h/"],
        &["--flush-interval", "0"],
    ] {
        let out = run("pulse-emit", args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("secret"));
    }
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub line: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A real HTTP/1.1 server on loopback that records requests and answers with the statuses
/// given, in turn (the last one repeats). One request per connection.
fn http_server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Request>>>) {
    http_peer(move |i, _| {
        let status = statuses[i.min(statuses.len() - 1)];
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        Some(format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    })
}

/// A real HTTP/1.1 server on loopback that records each request (method and path, headers,
/// body) and writes what `answer(index, request)` returns; `None` never answers (the
/// connection is held open: a hung endpoint). One request per connection.
pub fn http_peer(
    answer: impl Fn(usize, &Request) -> Option<String> + Send + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    http_peer_on(TcpListener::bind("127.0.0.1:0").unwrap(), answer)
}

/// [`http_peer`] on a listener the caller bound (a port chosen in advance).
pub fn http_peer_on(
    listener: TcpListener,
    answer: impl Fn(usize, &Request) -> Option<String> + Send + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (i, conn) in listener.incoming().enumerate().take(50) {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    break;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let req = Request {
                line: line.trim_end().to_string(),
                headers,
                body,
            };
            let reply = answer(i, &req);
            log.lock().unwrap().push(req);
            match reply {
                Some(reply) => {
                    let _ = conn.write_all(reply.as_bytes());
                }
                None => held.push(conn),
            }
        }
    });
    (addr, seen)
}

#[test]
fn http_posts_original_body_with_basic_auth_and_retries_on_500() {
    let (addr, seen) = http_server(vec![500, 200]);
    let url = format!("http://pulse:s3cret@{addr}/metrics");
    let input = snap(
        "router.status",
        Some("200"),
        1431856800,
        false,
        &[("count", 11.0)],
    ) + &snap(
        "router.status",
        Some("200"),
        1431856800,
        true,
        &[("count", 12.0), ("rate", 0.2)],
    ) + &snap("errors", None, 1431856860, true, &[("count", 1.0)]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.ndjson");
    std::fs::write(&file, &input).unwrap();
    let out = run(
        "pulse-emit",
        &["--metrics-url", &url, file.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no stdout when a network sink is given");
    let reqs = seen.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "one failed try, one retry: {reqs:?}");
    for r in &reqs {
        assert_eq!(r.line, "POST /metrics HTTP/1.1");
        // base64("pulse:s3cret")
        assert_eq!(r.headers["authorization"], "Basic cHVsc2U6czNjcmV0");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    assert_eq!(reqs[0].body, reqs[1].body);
    let body: serde_json::Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!([
            {"metric":"router.status.200.count","value":12.0,"measure_time":1431856800,"measure_period":60},
            {"metric":"router.status.200.rate","value":0.2,"measure_time":1431856800,"measure_period":60},
            {"metric":"errors.count","value":1.0,"measure_time":1431856860,"measure_period":60},
        ])
    );
}

#[test]
fn http_failure_names_url_without_password_and_exits_1() {
    let (addr, seen) = http_server(vec![500]);
    let url = format!("http://pulse:s3cret@{addr}/m");
    let input = snap("a", None, 60, true, &[("count", 1.0)]);
    let out = std::process::Command::new(bin("pulse-emit"))
        .env("METRICS_URLS", format!("{url},"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "POST http://{addr}/m: HTTP 500 Internal Server Error (after 3 tries)"
        )),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn cron_reads_only_new_lines_and_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("snapshots.ndjson");
    let state = dir.path().join("emit.state");
    let cron = |extra: &[&str]| {
        let mut args = vec!["--state", state.to_str().unwrap(), "-f", "csv"];
        args.extend_from_slice(extra);
        args.push(input.to_str().unwrap());
        run("pulse-emit", &args, b"")
    };
    let rows = |out: &std::process::Output| -> Vec<String> {
        assert!(out.status.success(), "{}", stderr(out));
        stdout(out).lines().skip(1).map(String::from).collect()
    };
    append(&input, &snap("s", None, 60, true, &[("count", 1.0)]));
    // A partial line (the writer caught mid-line) waits for the next run.
    let second = snap("s", None, 120, true, &[("count", 2.0)]);
    append(&input, &second[..10]);
    assert_eq!(rows(&cron(&[])), vec!["s,,60,60,true,count,1"]);
    append(&input, &second[10..]);
    assert_eq!(rows(&cron(&[])), vec!["s,,120,60,true,count,2"]);
    assert!(rows(&cron(&[])).is_empty());

    // Rotation: more is written to the old file, it is renamed, a new one is created.
    append(&input, &snap("s", None, 180, true, &[("count", 3.0)]));
    std::fs::rename(&input, dir.path().join("snapshots.ndjson.1")).unwrap();
    append(&input, &snap("s", None, 240, true, &[("count", 4.0)]));
    assert_eq!(
        rows(&cron(&[])),
        vec!["s,,180,60,true,count,3", "s,,240,60,true,count,4"]
    );
    assert!(rows(&cron(&[])).is_empty());

    // Another run holding the lock: this one refuses to send.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("emit.state.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    append(&input, &snap("s", None, 300, true, &[("count", 5.0)]));
    let out = cron(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another pulse-emit run holds the lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    drop(lock);
    assert_eq!(rows(&cron(&[])), vec!["s,,300,60,true,count,5"]);
}

/// Real carbon-cache: send, read back with whisper-fetch; kill carbon, see the cron run fail,
/// restart it, and see the next run deliver everything.
#[test]
fn cron_to_real_carbon_survives_carbon_going_away() {
    let Some(mut carbon) = Carbon::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("snapshots.ndjson");
    let state = dir.path().join("emit.state");
    let t0 = recent_minute(30);
    let cron = |carbon: &Carbon| {
        run(
            "pulse-emit",
            &[
                "--state",
                state.to_str().unwrap(),
                "--graphite",
                &format!("tcp://{}", carbon.addr()),
                "--prefix",
                "pulse.test",
                input.to_str().unwrap(),
            ],
            b"",
        )
    };
    // Five minutes of a count per status, with a late non-final snapshot that a final one
    // replaces.
    let mut expect: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let write_minute = |m: i64, expect: &mut BTreeMap<String, Vec<(i64, f64)>>| {
        let start = t0 + m * 60;
        let ok = 100.0 + m as f64;
        append(
            &input,
            &snap(
                "router.status",
                Some("200"),
                start,
                false,
                &[("count", ok - 50.0)],
            ),
        );
        append(
            &input,
            &snap("router.status", Some("200"), start, true, &[("count", ok)]),
        );
        append(
            &input,
            &snap(
                "router.status",
                Some("5xx"),
                start,
                true,
                &[("count", m as f64)],
            ),
        );
        expect
            .entry("pulse.test.router.status.200.count".into())
            .or_default()
            .push((start, ok));
        expect
            .entry("pulse.test.router.status.5xx.count".into())
            .or_default()
            .push((start, m as f64));
    };
    for m in 0..3 {
        write_minute(m, &mut expect);
    }
    let out = cron(&carbon);
    assert!(out.status.success(), "{}", stderr(&out));
    let (from, until) = (t0, t0 + 3600);
    for (metric, want) in &expect {
        assert_eq!(
            &carbon.wait_for(metric, from, until, want),
            want,
            "{metric}\n{}",
            carbon.log()
        );
    }

    carbon.stop();
    for m in 3..5 {
        write_minute(m, &mut expect);
    }
    let out = cron(&carbon);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("graphite {}", carbon.addr())),
        "{err}"
    );
    assert!(err.contains("checkpoint not advanced"), "{err}");

    carbon.restart();
    let out = cron(&carbon);
    assert!(out.status.success(), "{}", stderr(&out));
    for (metric, want) in &expect {
        assert_eq!(want.len(), 5);
        assert_eq!(
            &carbon.wait_for(metric, from, until, want),
            want,
            "{metric}\n{}",
            carbon.log()
        );
    }
    assert_eq!(
        carbon.metrics(),
        vec![
            "pulse.test.router.status.200.count",
            "pulse.test.router.status.5xx.count"
        ]
    );
}

/// Streaming from stdin into real carbon: points arrive while the stream is still open.
#[test]
fn stream_to_real_carbon_flushes_while_open() {
    let Some(carbon) = Carbon::start() else {
        return;
    };
    let t = recent_minute(10);
    let mut child = crate::util::spawn_piped(
        "pulse-emit",
        &["--graphite", &carbon.addr(), "--flush-interval", "0.2"],
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(snap("live.requests", None, t, false, &[("count", 7.0)]).as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let got = carbon.wait_for("live.requests.count", t, t + 60, &[(t, 7.0)]);
    assert_eq!(got, vec![(t, 7.0)], "{}", carbon.log());
    // A later snapshot of the same window overwrites the point.
    stdin
        .write_all(snap("live.requests", None, t, true, &[("count", 9.0)]).as_bytes())
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        carbon.wait_for("live.requests.count", t, t + 60, &[(t, 9.0)]),
        vec![(t, 9.0)]
    );
}

/// CSV output loads into a real PostgreSQL with psql's \copy, and sums match the input.
#[test]
fn csv_loads_into_real_postgres() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let mut input = String::new();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for m in 0..20i64 {
        for (key, k) in [
            (Some("web.1"), 1.0),
            (None, 2.0),
            (Some("a,\"quoted\" key"), 3.0),
            // An empty group key (a field present but empty) is not the null key.
            (Some(""), 4.0),
        ] {
            let count = (m as f64 + 1.0) * k;
            let mean = 0.5 * m as f64 + k;
            // A non-final snapshot first: only the final one must be loaded.
            input += &snap("router.service", key, m * 60, false, &[("count", 1000.0)]);
            input += &snap(
                "router.service",
                key,
                m * 60,
                true,
                &[("count", count), ("mean", mean)],
            );
            *sums.entry("count".into()).or_default() += count;
            *sums.entry("mean".into()).or_default() += mean;
        }
    }
    let out = run("pulse-emit", &["--format", "csv"], input.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    pg.query(
        "CREATE TABLE metrics(stat text, key text, start bigint, secs int, final boolean, name text, value double precision)",
    );
    let load = pg.psql(r"\copy metrics FROM STDIN CSV HEADER", &out.stdout);
    assert!(load.status.success(), "{}", stderr(&load));
    let got = pg.query("SELECT name, sum(value) FROM metrics GROUP BY name ORDER BY name");
    let want: String = sums.iter().map(|(n, s)| format!("{n}|{s}\n")).collect();
    assert_eq!(got, want);
    assert_eq!(
        pg.query("SELECT count(*) FROM metrics WHERE key IS NULL"),
        "40\n"
    );
    assert_eq!(
        pg.query("SELECT count(DISTINCT key) FROM metrics WHERE key LIKE '%quoted%'"),
        "1\n"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM metrics WHERE key = ''"),
        "40\n"
    );
    assert_eq!(pg.query("SELECT bool_and(final) FROM metrics"), "t\n");
}

/// The OPTIONS section of `man/pulse-emit.1` is generated from the clap definition, between
/// marker comments; the rest is hand-written. `PULSE_BLESS=1 cargo test man_page` rewrites it.
#[test]
fn man_page_options_match_help() {
    let Some(page) =
        crate::util::generated_options_match("pulse-emit.1", pulse::cli::emit::command())
    else {
        return;
    };
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH SINKS",
        ".SH CRON",
        ".SH ENVIRONMENT",
        ".SH \"EXIT STATUS\"",
        ".SH EXAMPLES",
    ] {
        assert!(page.contains(section), "{section}");
    }
}

/// Streaming, SIGTERM (or a Ctrl-C reaching the whole pipeline) does not cut delivery short:
/// what arrived is delivered and the exit status is 0, even while stdin stays open.
#[test]
fn sigterm_while_streaming_delivers_what_arrived() {
    let snaps =
        sh("printf '{\"time\":1767225600,\"status\":200}\\n' | pulse-fragment | pulse-merge");
    assert!(snaps.status.success());
    let out = crate::util::terminated_after("pulse-emit", &["--format", "csv"], &snaps.stdout, 300);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.contains("events.total,,1767225600,60,true,count,1"),
        "{csv}"
    );
}

/// 307 and 308 are followed as a POST of the same body; 301, 302 and 303 (which clients
/// replay as a bodiless GET) fail with a message naming both URLs, redacted.
#[test]
fn http_redirects_of_a_post() {
    let input = snap("r", None, 1431856800, true, &[("count", 3.0)]);
    for status in [307u16, 308, 301, 302, 303] {
        let (addr, seen) = http_peer(move |i, _| {
            Some(if i == 0 {
                format!(
                    "HTTP/1.1 {status} Moved\r\nLocation: /final?token=l0ctok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            })
        });
        let url = format!("http://pulse:pa/ss@{addr}/m?api_key=k3ysecret");
        let out = run("pulse-emit", &["--metrics-url", &url], input.as_bytes());
        let (err, reqs) = (stderr(&out), seen.lock().unwrap().clone());
        for secret in ["pa/ss", "k3ysecret", "l0ctok"] {
            assert!(
                !err.contains(secret) && !stdout(&out).contains(secret),
                "{status}: {err}"
            );
        }
        if status >= 307 {
            assert!(out.status.success(), "{status}: {err}");
            assert_eq!(reqs.len(), 2, "{status}: {reqs:?}");
            assert_eq!(reqs[0].line, "POST /m?api_key=k3ysecret HTTP/1.1");
            assert_eq!(reqs[1].line, "POST /final?token=l0ctok HTTP/1.1");
            assert_eq!(reqs[0].body, reqs[1].body);
            assert!(!reqs[1].body.is_empty());
            // Same origin: the credentials go along (base64 of pulse:pa/ss).
            assert_eq!(reqs[1].headers["authorization"], "Basic cHVsc2U6cGEvc3M=");
        } else {
            assert_eq!(out.status.code(), Some(1), "{status}: {err}");
            assert_eq!(reqs.len(), 1, "{status}: not replayed: {reqs:?}");
            assert!(
                err.contains(&format!(
                    "POST http://{addr}/m?api_key=REDACTED: HTTP {status} "
                )),
                "{err}"
            );
            assert!(
                err.contains(&format!("redirected to http://{addr}/final?token=REDACTED")),
                "{err}"
            );
        }
    }
}

/// User info with unencoded `/`, `?`, `#` goes to the right host as basic auth, and neither
/// it nor token-like query parameters appear in any output, on success, failure or misuse.
#[test]
fn secrets_never_printed() {
    let input = snap("r", None, 60, true, &[("count", 1.0)]);
    for pass in ["pa/ss", "pa?ss", "pa#ss", "p%2Fa%3Fs%23s"] {
        let (addr, seen) = http_server(vec![500]);
        let url = format!("http://pulse:{pass}@{addr}/m?x=1&access_token=t0ksecret");
        let out = run("pulse-emit", &["--metrics-url", &url], input.as_bytes());
        assert_eq!(out.status.code(), Some(1));
        let all = stderr(&out) + &stdout(&out);
        for secret in [pass, "t0ksecret", "p/a?s#s"] {
            assert!(!all.contains(secret), "{pass}: {all}");
        }
        assert!(
            all.contains(&format!("POST http://{addr}/m?x=1&access_token=REDACTED:")),
            "{all}"
        );
        let reqs = seen.lock().unwrap().clone();
        assert_eq!(reqs.len(), 3, "{pass}: reached the server");
        let want = if pass.contains('%') { "p/a?s#s" } else { pass };
        let b64 = {
            let out = sh(&format!("printf '%s' 'pulse:{want}' | base64"));
            stdout(&out).trim().to_string()
        };
        assert_eq!(reqs[0].headers["authorization"], format!("Basic {b64}"));
    }
    // Unreachable, and a usage error.
    let port = crate::servers::free_port();
    for url in [
        format!("http://u:s3cr/et@127.0.0.1:{port}/m?apikey=t0ksecret"),
        "ftp://u:s3cr/et@h/?token=t0ksecret".to_string(),
        "http://u:s3cr/et@/?token=t0ksecret".to_string(),
    ] {
        let out = run("pulse-emit", &["--metrics-url", &url], input.as_bytes());
        assert!(!out.status.success());
        let all = stderr(&out) + &stdout(&out);
        assert!(!all.contains("s3cr") && !all.contains("t0ksecret"), "{all}");
    }
}

/// Symbolic links at the state, lock and temporary paths are never followed: the victim
/// file stays as it was and the run fails with a message naming the link.
#[test]
fn state_lock_and_temporary_symlinks_are_refused() {
    for which in ["emit.state", "emit.state.lock", "emit.state.tmp"] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.ndjson");
        append(&input, &snap("s", None, 60, true, &[("count", 1.0)]));
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(which)).unwrap();
        let state = dir.path().join("emit.state");
        let out = run(
            "pulse-emit",
            &[
                "--state",
                state.to_str().unwrap(),
                "-f",
                "csv",
                input.to_str().unwrap(),
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{which}: {err}");
        assert!(
            err.contains(which) && err.contains("symbolic link"),
            "{which}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious\n",
            "{which}"
        );
        let tmp = dir.path().join("emit.state.tmp");
        assert!(
            which.ends_with(".tmp") || !tmp.exists(),
            "{which}: orphan temporary"
        );
    }
}

/// A hung HTTP endpoint (accepts, never answers) delays only itself: Graphite points still
/// arrive in real carbon within a second or two while the HTTP sink waits out its timeout,
/// and the HTTP failure is reported at the end.
#[test]
fn hung_endpoint_does_not_delay_graphite() {
    let Some(carbon) = Carbon::start() else {
        return;
    };
    let (addr, seen) = http_peer(|_, _| None);
    let t = recent_minute(20);
    let mut child = crate::util::spawn_piped(
        "pulse-emit",
        &[
            "--graphite",
            &carbon.addr(),
            "--metrics-url",
            &format!("http://{addr}/hung"),
            "--http-timeout",
            "4",
            "--flush-interval",
            "0.2",
        ],
    );
    let guard = crate::util::watchdog(child.id(), 60);
    let mut stdin = child.stdin.take().unwrap();
    for (i, m) in [0i64, 1, 2].iter().enumerate() {
        let start = t + m * 60;
        let sent = std::time::Instant::now();
        stdin
            .write_all(snap("hung.g", None, start, true, &[("count", i as f64 + 1.0)]).as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        let want: Vec<(i64, f64)> = (0..=i)
            .map(|j| (t + j as i64 * 60, j as f64 + 1.0))
            .collect();
        let got = carbon.wait_for("hung.g.count", t, t + 600, &want);
        let took = sent.elapsed();
        assert_eq!(got, want, "{}", carbon.log());
        // The HTTP sink is stuck for 3 × 4 s per batch; Graphite must not wait for it.
        assert!(
            took < std::time::Duration::from_secs(3),
            "point {i} took {took:?}"
        );
    }
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the HTTP peer was reached"
    );
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    drop(guard);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("POST http://{addr}/hung")), "{err}");
}

/// At-least-once into Graphite from cron: carbon stops right after a successful run and
/// loses what it had not stored (here: its whisper files are removed, the worst case); the
/// next run, after carbon is back, re-sends the windows of the last --resend, so no point
/// is missing.
#[test]
fn cron_resend_restores_what_carbon_lost() {
    let Some(mut carbon) = Carbon::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("snapshots.ndjson");
    let state = dir.path().join("emit.state");
    let t0 = recent_minute(40);
    let cron = |carbon: &Carbon| {
        run(
            "pulse-emit",
            &[
                "--state",
                state.to_str().unwrap(),
                "--graphite",
                &carbon.addr(),
                "--resend",
                "5m",
                input.to_str().unwrap(),
            ],
            b"",
        )
    };
    let mut want = Vec::new();
    for m in 0..3 {
        append(
            &input,
            &snap(
                "lost",
                None,
                t0 + m * 60,
                true,
                &[("count", m as f64 + 1.0)],
            ),
        );
        want.push((t0 + m * 60, m as f64 + 1.0));
    }
    let out = cron(&carbon);
    assert!(out.status.success(), "{}", stderr(&out));
    carbon.stop();
    for m in carbon.metrics() {
        std::fs::remove_file(carbon.whisper_file(&m)).unwrap();
    }
    carbon.restart();
    for m in 3..5 {
        append(
            &input,
            &snap(
                "lost",
                None,
                t0 + m * 60,
                true,
                &[("count", m as f64 + 1.0)],
            ),
        );
        want.push((t0 + m * 60, m as f64 + 1.0));
    }
    let out = cron(&carbon);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        carbon.wait_for("lost.count", t0, t0 + 3600, &want),
        want,
        "{}",
        carbon.log()
    );
    // Windows older than --resend before the newest are not sent again.
    let text = std::fs::read_to_string(&state).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let starts: Vec<i64> = doc["resend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_i64().unwrap())
        .collect();
    assert_eq!(starts, (0..5).map(|m| t0 + m * 60).collect::<Vec<_>>());
    append(
        &input,
        &snap("lost", None, t0 + 600, true, &[("count", 11.0)]),
    );
    assert!(cron(&carbon).status.success());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(doc["resend"].as_array().unwrap().len(), 1, "{doc}");
}

/// A sink that is down holds at most --queue snapshots; then reading stops (backpressure),
/// said once on stderr, instead of queueing without bound.
#[test]
fn down_sink_queue_is_bounded_with_backpressure() {
    let port = crate::servers::free_port();
    let mut child = crate::util::spawn_piped(
        "pulse-emit",
        &[
            "--graphite",
            &format!("127.0.0.1:{port}"),
            "--queue",
            "50",
            "--flush-interval",
            "0.1",
        ],
    );
    let guard = crate::util::watchdog(child.id(), 60);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut written = 0;
        for i in 0..100_000 {
            let line = snap("q", Some(&i.to_string()), 60, true, &[("count", 1.0)]);
            if stdin.write_all(line.as_bytes()).is_err() {
                break;
            }
            written += 1;
        }
        written
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        seen += &line;
        if line.contains("queue full") {
            break;
        }
        line.clear();
    }
    assert!(
        seen.contains(&format!(
            "graphite 127.0.0.1:{port}: queue full (50 snapshots)"
        )),
        "{seen}"
    );
    // The writer is held back: far from all of its input was taken.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!writer.is_finished(), "input was not held back");
    // SIGTERM while held back: the run ends within the drain time, and says what was not
    // delivered (exit 1), rather than waiting for the sink forever.
    let t = std::time::Instant::now();
    crate::util::terminate(child.id());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    drop(guard);
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        t.elapsed()
    );
    assert!(
        rest.contains(&format!("graphite 127.0.0.1:{port}")),
        "{rest}"
    );
    let _ = writer.join();
}

/// Streaming at-least-once: carbon is killed and loses what it had (its whisper files are
/// removed, the worst case), then comes back; the stream reconnects and writes its last
/// --resend of lines again, so every point is in whisper, not only those sent after.
#[test]
fn stream_resends_after_carbon_restart() {
    let Some(mut carbon) = Carbon::start() else {
        return;
    };
    let t = recent_minute(60);
    let mut child = crate::util::spawn_piped(
        "pulse-emit",
        &["--graphite", &carbon.addr(), "--flush-interval", "0.1"],
    );
    let guard = crate::util::watchdog(child.id(), 90);
    let mut stdin = child.stdin.take().unwrap();
    let mut want = Vec::new();
    for m in 0..10i64 {
        stdin
            .write_all(snap("streamed", None, t + m * 60, true, &[("count", m as f64)]).as_bytes())
            .unwrap();
        want.push((t + m * 60, m as f64));
    }
    stdin.flush().unwrap();
    assert_eq!(carbon.wait_for("streamed.count", t, t + 3600, &want), want);
    carbon.stop();
    for m in carbon.metrics() {
        std::fs::remove_file(carbon.whisper_file(&m)).unwrap();
    }
    carbon.restart();
    stdin
        .write_all(snap("streamed", None, t + 600, true, &[("count", 10.0)]).as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    want.push((t + 600, 10.0));
    assert_eq!(
        carbon.wait_for("streamed.count", t, t + 3600, &want),
        want,
        "{}",
        carbon.log()
    );
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    drop(guard);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Bytes from the input reach the terminal escaped: table cells and the file name in a
/// report of a bad line.
#[test]
fn control_bytes_are_escaped_in_table_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evil\x1b[2J.ndjson");
    let input = snap(
        "s\x1b]0;t\x07",
        Some("k\r\u{9b}x"),
        60,
        true,
        &[("count", 1.0)],
    ) + "bad\n";
    std::fs::write(&file, input).unwrap();
    let out = run("pulse-emit", &[file.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, e) = (stdout(&out), stderr(&out));
    for text in [&o, &e] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
    assert!(
        o.contains("s\\x1b]0;t\\x07") && o.contains("k\\r\\u{9b}x"),
        "{o}"
    );
    assert!(e.contains("evil\\x1b[2J.ndjson: line 2"), "{e}");
}
