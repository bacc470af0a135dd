//! The detection confusion test: every line of every real sample in `tests/fixtures/real/`
//! is read by `--format auto`, and what each line was read as is compared with what it is.
//!
//! Each file lists how many of its lines are read as each format. A line of one format
//! read as another is a misreading; the known ambiguities are the `unparsed` entries, each
//! with its reason.

use super::*;
use std::collections::BTreeMap;

/// What each line of `path` (under tests/fixtures/real) is read as: format name, or
/// `continuation`, `unparsed`, `empty`. Logplex frames count once per line.
fn read_as(path: &str) -> BTreeMap<String, usize> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let mut p = Parser::new(Options::new(Format::Auto, None, 0));
    let mut got = BTreeMap::new();
    for line in crate::io::lines::lines(&bytes) {
        let o = p.parse_line(line, &mut |_| {});
        let what = if o.empty {
            "empty".to_string()
        } else if o.continuation {
            "continuation".to_string()
        } else if o.unparsed {
            "unparsed".to_string()
        } else {
            o.format
                .expect("a parsed line has its format")
                .name()
                .to_string()
        };
        *got.entry(what).or_insert(0) += 1;
    }
    got
}

/// Every real sample, with what its lines must be read as.
const EXPECTED: &[(&str, &[(&str, usize)])] = &[
    ("beats/apache-error-test.log", &[("applog", 3)]),
    ("beats/apache-error-ubuntu-2.2.22.log", &[("applog", 7)]),
    ("beats/auth-test.log", &[("rfc3164", 10)]),
    ("beats/haproxy.log", &[("rfc3164", 10)]),
    // Line 24, `Version: '10.4.8-MariaDB-log'  socket: ...`, has no time: unparsed. The
    // file ends with an empty line.
    (
        "beats/mariadb-10.4.8.log",
        &[("applog", 28), ("empty", 1), ("unparsed", 1)],
    ),
    // The two `PHP message: ...` lines continue the FastCGI record before them but are
    // not indented: unparsed (they take the previous line's time in pulse-fragment).
    ("beats/nginx-error.log", &[("applog", 4), ("unparsed", 2)]),
    // The two ASCII-art banners are indented lines: continuation.
    (
        "beats/redis-darwin-3.0.2.log",
        &[("applog", 18), ("continuation", 34), ("empty", 2)],
    ),
    ("beats/redis-test.log", &[("applog", 4)]),
    ("crowdsec-hub/caddy-logs.log", &[("empty", 1), ("json", 11)]),
    ("crowdsec-hub/envoy.log", &[("cri", 10)]),
    // `DEBUG: CrowdsecBouncerTraefikPlugin: 2025/09/05 13:53:40 ...` puts its time after
    // the level: unparsed.
    (
        "crowdsec-hub/traefik_json.log",
        &[("json", 6), ("unparsed", 1)],
    ),
    // The L10 line is printed in the article in the drain-to-file shape.
    (
        "curated/heroku-cli-lines.log",
        &[("heroku", 57), ("logplex", 1)],
    ),
    ("curated/heroku-messages.txt", &[("logfmt", 25)]),
    ("curated/logplex-frames-badcounts.txt", &[("logplex", 4)]),
    ("curated/logplex-frames.txt", &[("logplex", 19)]),
    ("elastic-examples/apache_logs", &[("access", 10000)]),
    ("elastic-examples/kitchen.log", &[("applog", 29)]),
    ("heroku-influxdb-drain/sample0.txt", &[("logplex", 4)]),
    ("heroku-influxdb-drain/sample1.txt", &[("logplex", 1)]),
    ("heroku-influxdb-drain/sample3.txt", &[("logplex", 2)]),
    ("heroku-influxdb-drain/sample4.txt", &[("logplex", 1)]),
    ("heroku-influxdb-drain/sample5.txt", &[("logplex", 1)]),
    // slog's text handler is logfmt; zap's is JSON.
    ("humanlog/00004-mixed.input", &[("json", 1), ("logfmt", 3)]),
    ("humanlog/90000-misc-unchanged.input", &[("applog", 14)]),
    ("lnav/logfile_haproxy.0", &[("rfc3164", 17)]),
    ("lnav/logfile_journald.json", &[("json", 2)]),
    ("lnav/logfile_logfmt.0", &[("logfmt", 5)]),
    ("lnav/logfile_mysql_error.0", &[("applog", 4)]),
    (
        "lnav/logfile_postgres.1",
        &[("applog", 7), ("continuation", 38)],
    ),
    ("mtail/sftp_chroot.log", &[("rfc3164", 236)]),
    (
        "otroslogviewer/log4j_pattern1.log",
        &[("applog", 47), ("continuation", 7)],
    ),
    ("plaso/syslog_rsyslog", &[("rfc3164", 5)]),
    ("syslog-loose/rfc3164/long_msg.txt", &[("rfc3164", 1)]),
    (
        "syslog-loose/rfc3164/rfc3339_timestamp.txt",
        &[("rfc3164", 1)],
    ),
    ("syslog-loose/rfc3164/simple.txt", &[("rfc3164", 1)]),
    (
        "syslog-loose/rfc3164/with_structured_data.txt",
        &[("rfc3164", 1)],
    ),
    (
        "syslog-loose/rfc5424/with_structured_data.txt",
        &[("rfc5424", 1)],
    ),
    (
        "syslog-loose/rfc5424/with_structured_data_long_msg.txt",
        &[("rfc5424", 1)],
    ),
    (
        "syslog-loose/rfc5424/without_structured_data.txt",
        &[("rfc5424", 1)],
    ),
    (
        "syslog-loose/rfc5424/without_structured_data_long_msg.txt",
        &[("rfc5424", 1)],
    ),
];

#[test]
fn every_real_sample_is_read_as_its_format() {
    let mut wrong = Vec::new();
    for (file, want) in EXPECTED {
        let want: BTreeMap<String, usize> = want.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let got = read_as(file);
        if got != want {
            wrong.push(format!("{file}: read as {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_real_sample_is_in_the_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    for f in sample_files(&root) {
        assert!(
            EXPECTED.iter().any(|(e, _)| *e == f),
            "{f} is not in the detection table"
        );
    }
}

/// The log files under `root` (not licences or READMEs), relative.
fn sample_files(root: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !rel.contains("LICENSE") && !rel.ends_with(".md") {
                    files.push(rel);
                }
            }
        }
    }
    files.sort();
    files
}

/// The fields syslog lines must carry: every BSD and rsyslog sample line has its host,
/// its tag as `source` and a `msg`, and a time.
#[test]
fn syslog_samples_have_host_source_and_time() {
    for file in [
        "beats/auth-test.log",
        "mtail/sftp_chroot.log",
        "plaso/syslog_rsyslog",
        "lnav/logfile_haproxy.0",
    ] {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real")
            .join(file);
        let bytes = std::fs::read(full).unwrap();
        let mut p = Parser::new(Options::new(Format::Auto, Some(2020), 0));
        for (n, line) in crate::io::lines::lines(&bytes).enumerate() {
            p.parse_line(line, &mut |ev| {
                for k in ["time", "host", "source", "msg"] {
                    assert!(ev.get(k).is_some(), "{file}:{}: no {k}", n + 1);
                }
                let src = ev.get_str("source").unwrap();
                assert!(!src.contains(['[', ':']), "{file}:{}: source {src}", n + 1);
            });
        }
    }
}

#[test]
#[ignore]
fn print_matrix() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
    for f in sample_files(&root) {
        println!("{f}: {:?}", read_as(&f));
    }
}
