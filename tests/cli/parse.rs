//! `pulse-parse` CLI tests.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{fixture, ndjson, run, sh};

fn parse_file(args: &[&str], file: &Path) -> (Vec<serde_json::Value>, String) {
    let mut all: Vec<&str> = args.to_vec();
    let f = file.to_str().unwrap();
    all.push(f);
    let out = run("pulse-parse", &all, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        ndjson(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unparsed(v: &serde_json::Value) -> bool {
    v.get("unparsed").and_then(|u| u.as_bool()) == Some(true)
}

#[test]
fn apache_log_statuses() {
    let (events, stderr) = parse_file(&[], &fixture("real/elastic-examples/apache_logs"));
    assert_eq!(events.len(), 10_000);
    assert!(stderr.is_empty(), "{stderr}");
    let mut statuses: BTreeMap<i64, usize> = BTreeMap::new();
    for e in &events {
        assert!(!unparsed(e), "{e}");
        *statuses.entry(e["status"].as_i64().unwrap()).or_default() += 1;
    }
    // The fixture README says 200 x9125, but its counts then sum to 9,999 of 10,000 lines;
    // `awk '{print $9}'` and `grep -c '" 200 '` both give 9,126.
    let want: BTreeMap<i64, usize> = [
        (200, 9126),
        (304, 445),
        (404, 213),
        (301, 164),
        (206, 45),
        (500, 3),
        (403, 2),
        (416, 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(statuses, want);
    let nulls = events.iter().filter(|e| e["bytes"].is_null()).count();
    assert_eq!(nulls, 669);
    assert_eq!(events[0]["time"], "2015-05-17T10:05:03+00:00");
    assert_eq!(events[0]["client"], "83.149.9.216");
    // Line 8899: user agent with no closing quote.
    let ua = events[8898]["user_agent"].as_str().unwrap();
    assert!(ua.ends_with("google.com/bot.html"), "{ua}");
}

#[test]
fn every_logplex_frame_parses() {
    let (good, stderr) = parse_file(&[], &fixture("real/curated/logplex-frames.txt"));
    assert_eq!(good.len(), 19);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(good.iter().all(|e| !unparsed(e)));
    assert_eq!(good[2]["time"], "2012-11-30T06:45:29+00:00");
    assert_eq!(
        (good[2]["source"].as_str(), good[2]["ps"].as_str()),
        (Some("app"), Some("web.3"))
    );
    assert_eq!(
        (good[4]["host"].as_str(), good[4]["source"].as_str()),
        (Some("heroku"), Some("web.3"))
    );
    assert_eq!(good[7]["msgid"], "10");
    assert_eq!(good[12]["msg"], "this is the message");
    assert_eq!(good[15]["measure.world"], 100);
    let (bad, stderr) = parse_file(&[], &fixture("real/curated/logplex-frames-badcounts.txt"));
    assert_eq!(bad.len(), 4);
    assert!(bad.iter().all(|e| !unparsed(e)));
    assert_eq!(
        (bad[1]["source"].as_str(), bad[1]["ps"].as_str()),
        (Some("heroku"), Some("logplex"))
    );
    assert_eq!(bad[3]["sample#load_avg_15m"], 0.01);
    assert!(stderr.contains("line 1: bad frame count"), "{stderr}");
    assert!(
        stderr.contains("pulse-parse: 4 bad frame count"),
        "{stderr}"
    );
}

#[test]
fn drain_samples_recover() {
    let (s1, stderr) = parse_file(&[], &fixture("real/heroku-influxdb-drain/sample1.txt"));
    assert_eq!(s1.len(), 2);
    assert_eq!(s1[0]["ps"], "logplex");
    assert!(s1[0]["msg"]
        .as_str()
        .unwrap()
        .ends_with("2017-08-28T08:07:27+00:00."));
    assert_eq!(
        (s1[1]["source"].as_str(), s1[1]["ps"].as_str()),
        (Some("heroku"), Some("router"))
    );
    assert_eq!(s1[1]["time"], "2017-08-28T08:36:13.461949+00:00");
    assert_eq!(s1[1]["status"], 400);
    assert!(stderr.contains("1 bad frame count"), "{stderr}");
    for (name, n) in [
        ("sample0.txt", 4),
        ("sample3.txt", 2),
        ("sample4.txt", 1),
        ("sample5.txt", 1),
    ] {
        let (ev, stderr) = parse_file(&[], &fixture(&format!("real/heroku-influxdb-drain/{name}")));
        assert_eq!(ev.len(), n, "{name}");
        assert!(ev.iter().all(|e| !unparsed(e)), "{name}");
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

#[test]
fn heroku_lines_and_messages_parse() {
    let (ev, stderr) = parse_file(&[], &fixture("real/curated/heroku-cli-lines.log"));
    assert_eq!(ev.len(), 58);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(ev.iter().all(|e| !unparsed(e)));
    assert_eq!(
        (ev[9]["source"].as_str(), ev[9]["ps"].as_str()),
        (Some("heroku"), Some("router"))
    );
    assert_eq!(ev[9]["code"], "H12");
    assert_eq!(ev[9]["desc"], "Request timeout");
    assert_eq!(ev[9]["time"], "2010-10-06T21:51:37-07:00");
    assert_eq!(ev[52]["ps"], "logplex");
    assert_eq!(ev[52]["host"], "d.1234-drain-identifier-567");
    assert_eq!(ev[57]["sample#load-avg-1m"], 0.115);
    let (ev, stderr) = parse_file(&[], &fixture("real/curated/heroku-messages.txt"));
    assert_eq!(ev.len(), 25);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(ev.iter().all(|e| !unparsed(e)));
    assert_eq!(ev[1]["sample#memory_total"], "21.00MB");
    assert_eq!(ev[0]["sample#load_avg_1m"], 2.46);
}

#[test]
fn syslog_loose_samples() {
    for f in [
        "simple",
        "long_msg",
        "rfc3339_timestamp",
        "with_structured_data",
    ] {
        let (ev, _) = parse_file(
            &["--year", "2019"],
            &fixture(&format!("real/syslog-loose/rfc3164/{f}.txt")),
        );
        assert_eq!(ev.len(), 1);
        assert!(!unparsed(&ev[0]), "{f}: {}", ev[0]);
        assert!(ev[0]["time"].as_str().unwrap().starts_with("2019-"), "{f}");
    }
    for f in [
        "with_structured_data",
        "without_structured_data",
        "with_structured_data_long_msg",
        "without_structured_data_long_msg",
    ] {
        let (ev, _) = parse_file(
            &["--format", "rfc5424"],
            &fixture(&format!("real/syslog-loose/rfc5424/{f}.txt")),
        );
        assert_eq!(ev[0]["source"], "evntslog", "{f}");
        assert_eq!(ev[0]["msgid"], "ID47", "{f}");
    }
}

/// Golden outputs: `BLESS=1 cargo test` rewrites `tests/fixtures/golden/*.ndjson`.
#[test]
fn golden_outputs() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("mixed", &["--year", "2019"], &["parse/mixed.log"]),
        (
            "logplex-frames",
            &[],
            &[
                "real/curated/logplex-frames.txt",
                "real/curated/logplex-frames-badcounts.txt",
            ],
        ),
        (
            "drain-samples",
            &[],
            &[
                "real/heroku-influxdb-drain/sample0.txt",
                "real/heroku-influxdb-drain/sample1.txt",
                "real/heroku-influxdb-drain/sample3.txt",
                "real/heroku-influxdb-drain/sample4.txt",
                "real/heroku-influxdb-drain/sample5.txt",
            ],
        ),
        (
            "heroku-cli-lines",
            &[],
            &["real/curated/heroku-cli-lines.log"],
        ),
        (
            "heroku-messages",
            &[],
            &["real/curated/heroku-messages.txt"],
        ),
        (
            "syslog-loose",
            &["--year", "2019"],
            &[
                "real/syslog-loose/rfc3164/simple.txt",
                "real/syslog-loose/rfc3164/long_msg.txt",
                "real/syslog-loose/rfc3164/rfc3339_timestamp.txt",
                "real/syslog-loose/rfc3164/with_structured_data.txt",
                "real/syslog-loose/rfc5424/with_structured_data.txt",
                "real/syslog-loose/rfc5424/without_structured_data.txt",
            ],
        ),
        // Stamps without a year are read with --year: a checkout's mtimes are its own.
        (
            "syslog-files",
            &["--year", "2020"],
            &[
                "real/beats/auth-test.log",
                "real/beats/haproxy.log",
                "real/lnav/logfile_haproxy.0",
                "real/mtail/sftp_chroot.log",
                "real/plaso/syslog_rsyslog",
            ],
        ),
        (
            "applog-java-ruby",
            &["--year", "2020"],
            &[
                "real/otroslogviewer/log4j_pattern1.log",
                "real/elastic-examples/kitchen.log",
            ],
        ),
        (
            "applog-servers",
            &["--year", "2020"],
            &[
                "real/beats/nginx-error.log",
                "real/beats/apache-error-test.log",
                "real/beats/apache-error-ubuntu-2.2.22.log",
                "real/beats/mariadb-10.4.8.log",
                "real/beats/redis-darwin-3.0.2.log",
                "real/beats/redis-test.log",
                "real/lnav/logfile_postgres.1",
                "real/lnav/logfile_mysql_error.0",
            ],
        ),
        (
            "go-and-logfmt",
            &["--year", "2020"],
            &[
                "real/humanlog/00004-mixed.input",
                "real/humanlog/90000-misc-unchanged.input",
                "real/lnav/logfile_logfmt.0",
            ],
        ),
        (
            "json-journald-cri",
            &["--year", "2020"],
            &[
                "real/crowdsec-hub/caddy-logs.log",
                "real/crowdsec-hub/traefik_json.log",
                "real/crowdsec-hub/envoy.log",
                "real/lnav/logfile_journald.json",
            ],
        ),
        (
            "multiline",
            &["--year", "2020", "--multiline"],
            &[
                "real/otroslogviewer/log4j_pattern1.log",
                "real/lnav/logfile_postgres.1",
            ],
        ),
    ];
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for (name, args, inputs) in cases {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(
            inputs
                .iter()
                .map(|i| fixture(i).to_str().unwrap().to_string()),
        );
        let refs: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
        let out = run("pulse-parse", &refs, b"");
        assert!(out.status.success(), "{name}");
        let golden = fixture(&format!("golden/{name}.ndjson"));
        if bless {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &out.stdout).unwrap();
            continue;
        }
        let want = std::fs::read(&golden)
            .unwrap_or_else(|_| panic!("{} missing: run BLESS=1 cargo test", golden.display()));
        if ndjson(&want) != ndjson(&out.stdout) {
            failures.push(name.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "golden output differs for {failures:?} (BLESS=1 cargo test rewrites, review the diff)"
    );
}

#[test]
fn stdin_crlf_invalid_utf8_and_empty_lines() {
    let out = run("pulse-parse", &[], b"a=1\r\n\nb=\xff\x00\nno format here");
    assert!(out.status.success());
    let ev = ndjson(&out.stdout);
    // The empty line is counted, and makes no event.
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["a"], 1);
    assert_eq!(ev[1]["b"], "\u{fffd}\u{0}");
    assert!(unparsed(&ev[2]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pulse-parse: stdin: line 4: unparsed: no format matches: no format here"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pulse-parse: 1 empty, 1 unparsed"),
        "{stderr}"
    );
    // A byte-order mark at the start is not part of the first line.
    let out = run("pulse-parse", &[], b"\xef\xbb\xbf{\"a\":1}\n");
    assert_eq!(ndjson(&out.stdout)[0]["a"], 1);
}

#[test]
fn strict_fails_naming_the_line() {
    let out = run("pulse-parse", &["--strict"], b"a=1\nb=2\nnope nope\nc=3\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdin: line 3: unparsed"), "{stderr}");
    assert_eq!(ndjson(&out.stdout).len(), 2);
}

#[test]
fn usage_errors_help_and_version() {
    let out = run("pulse-parse", &["--format", "xml"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("xml"));
    let out = run("pulse-parse", &["--no-such-flag"], b"");
    assert_eq!(out.status.code(), Some(2));
    for flag in ["--help", "--version"] {
        let out = run("pulse-parse", &[flag], b"");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(!out.stdout.is_empty());
    }
    let out = run("pulse-parse", &["/no/such/file"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("pulse-parse: /no/such/file"));
}

#[test]
fn formats_forced_and_threads_agree() {
    let f = fixture("real/elastic-examples/apache_logs");
    let (one, _) = parse_file(&["--threads", "1", "--format", "access"], &f);
    let (many, _) = parse_file(&["--threads", "4"], &f);
    assert_eq!(one, many);
    let (forced, _) = parse_file(&["--format", "json"], &f);
    assert!(forced.iter().all(unparsed));
}

#[test]
fn broken_pipe_is_quiet() {
    let f = fixture("real/elastic-examples/apache_logs");
    let out = sh(&format!(
        "pulse-parse {} {} | head -n1",
        f.display(),
        f.display()
    ));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ndjson(&out.stdout).len(), 1);
}

#[test]
fn man_page_lists_every_option() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/pulse-parse.1"))
            .unwrap();
    for arg in pulse::cli::parse::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(
                page.contains(&roff),
                "man/pulse-parse.1 does not document --{long}"
            );
        }
    }
    for (_, name) in pulse::parse::Format::ALL {
        assert!(
            page.contains(&format!(".B {name}")),
            "man page lacks format {name}"
        );
    }
}

#[test]
fn a_live_stream_is_passed_on_while_it_is_open() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::util::bin("pulse-parse"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a=1\n").unwrap();
    stdin.flush().unwrap();
    // Stdin stays open: the record must come out anyway, without --line-buffered.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        tx.send(line).unwrap();
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(20));
    drop(stdin);
    child.wait().unwrap();
    assert_eq!(
        got.expect("no record while the stream was open"),
        "{\"a\":1}\n"
    );
}

/// SIGTERM (or Ctrl-C) on a stream that stays open ends the run as its end would: what was
/// read is written, exit status 0.
#[test]
fn sigterm_on_a_stream_writes_what_was_read() {
    let input: String = (0..1000).map(|i| format!("a={i}\n")).collect();
    let out = crate::util::terminated_after("pulse-parse", &[], input.as_bytes(), 500);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1000);
    assert!(text.ends_with("{\"a\":999}\n"), "{text}");
}

/// A file of BSD syslog lines with its modification time set to `mtime` (Unix seconds).
fn syslog_file(dir: &std::path::Path, name: &str, text: &str, mtime: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
        .unwrap();
    path
}

#[test]
fn years_of_bsd_stamps_follow_the_file_across_new_year() {
    let dir = tempfile::tempdir().unwrap();
    // Written on 2027-01-01T00:05:00Z: December is 2026's, January 2027's.
    let text = "Dec 31 23:59:58 web1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2\n\
                Dec 31 23:59:59 web1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2\n\
                Jan  1 00:00:01 web1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2\n\
                Jan  1 00:00:02 web1 sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2\n";
    let path = syslog_file(dir.path(), "auth.log", text, 1798761900);
    let out = run("pulse-parse", &[path.to_str().unwrap()], b"");
    assert!(out.status.success());
    let times: Vec<String> = ndjson(&out.stdout)
        .iter()
        .map(|e| e["time"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2026-12-31T23:59:58Z",
            "2026-12-31T23:59:59Z",
            "2027-01-01T00:00:01Z",
            "2027-01-01T00:00:02Z"
        ]
    );
    // pulse-fragment --raw keeps every one: nothing is a year late.
    let out = run(
        "pulse-fragment",
        &["--raw", "--now", "1798761900", path.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success());
    let total: i64 = ndjson(&out.stdout)
        .iter()
        .filter(|f| f["stat"] == "events.total")
        .map(|f| f["state"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 4, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("late"));
    // --year forces one.
    let out = run(
        "pulse-parse",
        &["--year", "2020", path.to_str().unwrap()],
        b"",
    );
    assert_eq!(ndjson(&out.stdout)[2]["time"], "2020-01-01T00:00:01Z");
}

#[test]
fn a_bsd_stamp_after_the_file_was_written_is_last_year() {
    let dir = tempfile::tempdir().unwrap();
    // Written on 2026-12-01T12:00:00Z: Dec 10 cannot be this year's; Nov 30 is.
    let text = "Dec 10 08:00:00 h cron[2]: x\nNov 30 08:00:00 h cron[2]: y\n";
    let path = syslog_file(dir.path(), "old.log", text, 1796126400);
    let out = run("pulse-parse", &[path.to_str().unwrap()], b"");
    let ev = ndjson(&out.stdout);
    assert_eq!(ev[0]["time"], "2025-12-10T08:00:00Z");
    assert_eq!(ev[1]["time"], "2026-11-30T08:00:00Z");
    // --tz: the stamps are local time of that zone.
    let out = run(
        "pulse-parse",
        &["--tz", "+02:00", path.to_str().unwrap()],
        b"",
    );
    assert_eq!(ndjson(&out.stdout)[1]["time"], "2026-11-30T08:00:00+02:00");
    let out = run("pulse-parse", &["--tz", "Mars/Olympus"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tz"));
}

#[test]
fn an_application_log_with_a_stack_trace_is_replayed_at_its_own_time() {
    // 54 lines of log4j output from 2011, 7 of them a stack trace without a time.
    let f = fixture("real/otroslogviewer/log4j_pattern1.log");
    let out = run("pulse-fragment", &["--raw", f.to_str().unwrap()], b"");
    assert!(out.status.success());
    let frags = ndjson(&out.stdout);
    let totals: Vec<(i64, i64)> = frags
        .iter()
        .filter(|f| f["stat"] == "events.total")
        .map(|f| {
            (
                f["start"].as_i64().unwrap(),
                f["state"]["count"].as_i64().unwrap(),
            )
        })
        .collect();
    // All in the minute of 2011-04-20T16:26, none at the clock's time.
    assert_eq!(totals, [(1303316760, 54)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("7 continuation"), "{stderr}");
    assert!(!stderr.contains("unparsed"), "{stderr}");
}

#[test]
fn multiline_joins_stack_traces_also_across_chunks() {
    // About 5 MB: chunk boundaries (1 MiB) fall inside traces.
    let mut text = String::new();
    for i in 0..40_000 {
        text.push_str(&format!(
            "2020-01-01 00:{:02}:{:02},{:03} ERROR [main] com.x.Job: failed {i}\n",
            i / 60 % 60,
            i % 60,
            i % 1000
        ));
        text.push_str(&format!("java.lang.IllegalStateException: job {i}\n"));
        text.push_str("\tat com.x.Job.run(Job.java:10)\n\tat java.base/java.lang.Thread.run(Thread.java:829)\n");
        if i % 3 == 0 {
            text.push_str("Caused by: java.io.IOException: disk\n\t... 2 more\n");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, &text).unwrap();
    for threads in ["1", "2"] {
        let out = run(
            "pulse-parse",
            &["--multiline", "--threads", threads, path.to_str().unwrap()],
            b"",
        );
        assert!(out.status.success());
        let ev = ndjson(&out.stdout);
        assert_eq!(ev.len(), 40_000, "one record per logged error");
        for (i, e) in ev.iter().enumerate() {
            let msg = e["msg"].as_str().unwrap();
            let mut want = format!(
                "failed {i}\njava.lang.IllegalStateException: job {i}\n\tat com.x.Job.run(Job.java:10)\n\tat java.base/java.lang.Thread.run(Thread.java:829)"
            );
            if i % 3 == 0 {
                want.push_str("\nCaused by: java.io.IOException: disk\n\t... 2 more");
            }
            assert_eq!(msg, want, "record {i}");
            assert_eq!(e["level"], "error");
        }
    }
    // Without it, each continuation line is its own record.
    let out = run("pulse-parse", &[path.to_str().unwrap()], b"");
    let ev = ndjson(&out.stdout);
    let cont = ev.iter().filter(|e| e["continuation"] == true).count();
    assert_eq!(cont, 40_000 * 3 + 13_334 * 2);
    // A stream that starts inside a trace keeps those lines as continuation records.
    let out = run(
        "pulse-parse",
        &["--multiline"],
        b"\tat x\n2020-01-01 00:00:00 INFO ok\n",
    );
    let ev = ndjson(&out.stdout);
    assert_eq!(ev[0]["continuation"], true);
    assert_eq!(ev[1]["msg"], "ok");
}
