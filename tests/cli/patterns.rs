//! `--patterns` (pulse.patterns(5)) on real samples, through pulse-parse and pulse-fragment.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fragment::latest_states;
use crate::util::{assert_ok, fixture, ndjson, run, sh};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Counts of one stat per group key over all windows, from a fragment stream.
fn counts(frags: &[Value], stat: &str) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for ((s, key, ..), state) in latest_states(frags) {
        if s == stat {
            *m.entry(key).or_insert(0.0) += state["count"].as_f64().unwrap();
        }
    }
    m
}

const SSHD: &str = "\
# connections and login outcomes, from the message text of sshd
match /^Connection from (?P<conn_ip>\\S+) port (?P<port>\\d+)/ where source=sshd
match /^(?P<outcome>Failed|Accepted) (?P<method>\\S+) for (?:invalid user )?(?P<user>\\S+) from (?P<ip>\\S+) port/ where source=sshd
";

#[test]
fn sshd_connections_and_logins_by_address_and_user() {
    // tests/fixtures/real/mtail/sftp_chroot.log: `grep -o 'Connection from [0-9.]*' | sort |
    // uniq -c` gives 23 from 192.168.0.1 and one each from .2 to .5; `grep Accepted` gives
    // 4 password logins, user7 twice (from .3 and .4), user1 and user2 once; `grep Failed`
    // gives 4 "Failed none" (the method tried first), one per accepted login.
    let dir = tempfile::tempdir().unwrap();
    let pats = write(&dir, "sshd.patterns", SSHD);
    let stats = write(
        &dir,
        "sshd.stats",
        "ssh.connections count 86400s conn_ip? by conn_ip\n\
         ssh.accepted count 86400s outcome=Accepted method=password by user\n\
         ssh.failed count 86400s outcome=Failed by method,ip\n",
    );
    let log = fixture("real/mtail/sftp_chroot.log");
    let log = log.to_str().unwrap();
    let common = format!("--stats {stats} --source t --now 0");
    let fused = sh(&format!(
        "pulse-fragment --raw --year 2015 --patterns {pats} {common} {log}"
    ));
    assert_ok(&fused);
    let piped = sh(&format!(
        "pulse-parse --year 2015 --patterns {pats} {log} | pulse-fragment {common}"
    ));
    assert_ok(&piped);
    let frags = ndjson(&fused.stdout);
    // --raw --patterns gives what pulse-parse --patterns | pulse-fragment gives.
    assert_eq!(latest_states(&frags), latest_states(&ndjson(&piped.stdout)));
    let conns = counts(&frags, "ssh.connections");
    let want: BTreeMap<String, f64> = [
        ("\"192.168.0.1\"", 23.0),
        ("\"192.168.0.2\"", 1.0),
        ("\"192.168.0.3\"", 1.0),
        ("\"192.168.0.4\"", 1.0),
        ("\"192.168.0.5\"", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(conns, want);
    let accepted = counts(&frags, "ssh.accepted");
    assert_eq!(accepted["\"user7\""], 2.0);
    assert_eq!(accepted["\"user1\""], 1.0);
    assert_eq!(accepted["\"user2\""], 1.0);
    assert_eq!(accepted.len(), 3);
    let failed = counts(&frags, "ssh.failed");
    assert_eq!(failed.len(), 4);
    assert_eq!(failed["\"none,192.168.0.4\""], 1.0, "{failed:?}");
    // Without the patterns, nothing is read from the text: no connections are counted.
    let plain = sh(&format!("pulse-fragment --raw --year 2015 {common} {log}"));
    assert_ok(&plain);
    assert!(counts(&ndjson(&plain.stdout), "ssh.connections").is_empty());
}

#[test]
fn failed_passwords_and_sudo_attributes_anywhere() {
    // tests/fixtures/real/beats/auth-test.log: one "Failed password for root from
    // 216.160.83.57"; three sudo lines, each `... ; USER=root ; COMMAND=...` (the
    // attributes are not at the start of the message, so only `kv` reads them).
    let dir = tempfile::tempdir().unwrap();
    let pats = write(
        &dir,
        "auth.patterns",
        &format!("{SSHD}kv where source=sudo\n"),
    );
    let log = fixture("real/beats/auth-test.log");
    let out = run(
        "pulse-parse",
        &["--year", "2016", "--patterns", &pats, log.to_str().unwrap()],
        b"",
    );
    assert_ok(&out);
    let evs = ndjson(&out.stdout);
    assert_eq!(evs.len(), 10);
    let failed: Vec<&Value> = evs.iter().filter(|e| e["outcome"] == "Failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["ip"], "216.160.83.57");
    assert_eq!(failed[0]["user"], "root");
    assert_eq!(failed[0]["time"], "2016-02-20T08:35:22Z");
    let sudo: Vec<&Value> = evs.iter().filter(|e| e["source"] == "sudo").collect();
    assert_eq!(sudo.len(), 3);
    assert!(sudo.iter().all(|e| e["USER"] == "root"), "{sudo:?}");
    let commands: Vec<&str> = sudo
        .iter()
        .map(|e| e["COMMAND"].as_str().unwrap())
        .collect();
    // The value runs to the next blank: `/bin/cat /var/log/secure` gives `/bin/cat`.
    assert_eq!(commands, ["/bin/ls", "/bin/cat", "/bin/ls"]);
    assert_eq!(sudo[0]["TTY"], "pts/0");
    // Other lines are as before: the accepted login has no attribute from kv.
    assert!(evs[0].get("TTY").is_none());
}

#[test]
fn pam_rhost_is_read_from_the_middle_of_the_message() {
    let line = "Jun 12 06:45:01 box sshd[4242]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4\n";
    let out = run("pulse-parse", &["--year", "2026"], line.as_bytes());
    assert_ok(&out);
    assert!(ndjson(&out.stdout)[0].get("rhost").is_none());
    let dir = tempfile::tempdir().unwrap();
    let pats = write(&dir, "kv.patterns", "kv where source=sshd\n");
    let out = run(
        "pulse-parse",
        &["--year", "2026", "--patterns", &pats],
        line.as_bytes(),
    );
    assert_ok(&out);
    let ev = &ndjson(&out.stdout)[0];
    assert_eq!(ev["rhost"], "218.188.2.4");
    assert_eq!(ev["uid"], 0);
    assert_eq!(ev["ruser"], Value::Null);
    assert_eq!(ev["tty"], "NODEVssh");
}

const NGINX: &str = r#"format nginx_error /(?P<time>\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<msg>.*)/ time "%Y/%m/%d %H:%M:%S"
match /, client: (?P<client>[^,]+), server: (?P<server>[^,]*), request: "(?P<method>\S+) (?P<path>\S+)/
match /upstream: "(?P<upstream>[^"]+)"/ where level=error
"#;

#[test]
fn nginx_error_log_by_a_custom_format() {
    // tests/fixtures/real/beats/nginx-error.log: 4 lines start with a time (the other two
    // continue a PHP warning); 3 of them name a request: /favicon.ico, /adsasd, /pysio.
    let dir = tempfile::tempdir().unwrap();
    let pats = write(&dir, "nginx.patterns", NGINX);
    let log = fixture("real/beats/nginx-error.log");
    let out = run(
        "pulse-parse",
        &["--patterns", &pats, log.to_str().unwrap()],
        b"",
    );
    assert!(out.status.success());
    let evs = ndjson(&out.stdout);
    let read: Vec<&Value> = evs.iter().filter(|e| e["level"] == "error").collect();
    assert_eq!(read.len(), 4);
    assert_eq!(read[0]["time"], "2016-10-25T14:49:34Z");
    assert_eq!(read[0]["pid"], 54053);
    assert_eq!(read[0]["connection"], 1);
    assert_eq!(read[2]["connection"], 180289);
    assert!(read[2].get("path").is_none());
    let paths: Vec<&str> = read.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["/favicon.ico", "/adsasd", "/pysio"]);
    assert_eq!(read[0]["client"], "127.0.0.1");
    assert_eq!(evs.iter().filter(|e| e["unparsed"] == true).count(), 2);
    // The upstream example of pulse.patterns(5), counted by upstream.
    let line = "2024/03/05 10:15:02 [error] 1234#1234: *5678 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: shop.example.com, request: \"GET /api/cart HTTP/1.1\", upstream: \"http://10.0.0.12:8080/api/cart\", host: \"shop.example.com\"\n";
    let stats = write(
        &dir,
        "n.stats",
        "nginx.upstream.errors count 60s upstream? by upstream\n",
    );
    let out = run(
        "pulse-fragment",
        &["--raw", "--patterns", &pats, "--stats", &stats],
        line.repeat(3).as_bytes(),
    );
    assert_ok(&out);
    let c = counts(&ndjson(&out.stdout), "nginx.upstream.errors");
    assert_eq!(c["\"http://10.0.0.12:8080/api/cart\""], 3.0);
}

#[test]
fn postgres_levels_and_slow_statements() {
    // tests/fixtures/real/lnav/logfile_postgres.1: `grep -o '^[^]]*] [A-Z]*' | awk
    // '{print $5}' | sort | uniq -c` gives ERROR 2, STATEMENT 2, WARNING 2, NOTICE 1; its 38
    // other lines continue a statement. (Its zone, CEST, is a name: no time is read.)
    let dir = tempfile::tempdir().unwrap();
    let pats = write(
        &dir,
        "pg.patterns",
        "format postgres /\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+ [A-Z]+ \\[(?P<pid>\\d+)\\] (?P<level>[A-Z]+):  (?P<msg>.*)/\n",
    );
    let log = fixture("real/lnav/logfile_postgres.1");
    let out = run(
        "pulse-parse",
        &["--patterns", &pats, log.to_str().unwrap()],
        b"",
    );
    let mut levels: BTreeMap<String, usize> = BTreeMap::new();
    for e in ndjson(&out.stdout) {
        if let Some(l) = e["level"].as_str() {
            *levels.entry(l.to_string()).or_default() += 1;
            assert_eq!(e["pid"], 1329108);
        }
    }
    let want: BTreeMap<String, usize> = [
        ("ERROR", 2),
        ("NOTICE", 1),
        ("STATEMENT", 2),
        ("WARNING", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(levels, want);
    // Slow statements by duration, as in pulse.patterns(5) (lines in PostgreSQL's
    // log_min_duration_statement form).
    let pats = write(
        &dir,
        "slow.patterns",
        "format postgres /(?P<time>\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+ UTC) \\[(?P<pid>\\d+)\\] (?P<level>[A-Z]+\\d?):  (?P<msg>.*)/ time \"%Y-%m-%d %H:%M:%S.%f UTC\"\n\
         match /^duration: (?P<duration>\\d+(?:\\.\\d+)?) ms  (?:statement|execute [^:]*): (?P<statement>.*)/ where level=LOG\n",
    );
    let stats = write(
        &dir,
        "pg.stats",
        "pg.statements summary duration in ms 60s duration?\npg.slow count 60s duration>=1000\n",
    );
    let lines = "\
2025-04-12 00:14:12.837 UTC [1329108] LOG:  duration: 1520.311 ms  statement: SELECT * FROM scrape_memory
2025-04-12 00:14:13.002 UTC [1329108] LOG:  duration: 12.5 ms  statement: SELECT 1
2025-04-12 00:14:40.500 UTC [1329109] LOG:  duration: 2004 ms  execute <unnamed>: UPDATE t SET n = n + 1
2025-04-12 00:14:41.000 UTC [1329109] ERROR:  relation \"scrape_memory\" does not exist
";
    let out = run("pulse-parse", &["--patterns", &pats], lines.as_bytes());
    assert_ok(&out);
    let evs = ndjson(&out.stdout);
    assert_eq!(evs[0]["time"], "2025-04-12T00:14:12.837Z");
    assert_eq!(evs[0]["duration"], 1520.311);
    assert_eq!(evs[2]["statement"], "UPDATE t SET n = n + 1");
    assert!(evs[3].get("duration").is_none());
    let out = run(
        "pulse-fragment",
        &["--raw", "--patterns", &pats, "--stats", &stats],
        lines.as_bytes(),
    );
    assert_ok(&out);
    let states = latest_states(&ndjson(&out.stdout));
    let t0 = 1744416840; // 2025-04-12T00:14:00Z
    let slow = &states[&("pg.slow".to_string(), "null".to_string(), t0, 60)];
    assert_eq!(slow["count"].as_f64(), Some(2.0));
    let all = &states[&("pg.statements".to_string(), "null".to_string(), t0, 60)];
    assert_eq!(all["count"].as_f64(), Some(3.0));
    assert_eq!(all["max"].as_f64(), Some(2004.0));
}

#[test]
fn errors_in_a_patterns_file_name_file_and_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pats = write(&dir, "bad.patterns", "kv\n# fine so far\nmatch /(?P<x>a)\n");
    for args in [
        vec!["pulse-parse", "--patterns", &pats],
        vec!["pulse-fragment", "--raw", "--patterns", &pats],
    ] {
        let out = run(args[0], &args[1..], b"a=1\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.patterns:3: unterminated /REGEX/"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    // --patterns reads raw lines: without --raw it is a usage error.
    let out = run("pulse-fragment", &["--patterns", &pats], b"");
    assert_eq!(out.status.code(), Some(2));
}
