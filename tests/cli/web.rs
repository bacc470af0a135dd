//! pulse-web: the API against the snapshots of the real Apache log, basic auth, the refusal
//! of a public address, `--follow` across rotation, `/metrics` through the Python
//! `prometheus_client` parser, and the page itself in headless Chromium (by WebDriver).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::servers::{available, free_port};
use crate::util::{bin, fixture, ndjson, sh};

const APACHE: &str = "real/elastic-examples/apache_logs";

/// The snapshots of the real Apache log (pulse-parse | pulse-fragment | pulse-merge).
fn apache_snapshots(dir: &Path) -> PathBuf {
    let out = dir.join("snaps.ndjson");
    let r = sh(&format!(
        "pulse-parse {} | pulse-fragment | pulse-merge > {}",
        fixture(APACHE).display(),
        out.display()
    ));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

/// The latest snapshot per stat, key and window, as a consumer keeps them.
type Latest = BTreeMap<(String, Option<String>), BTreeMap<i64, (bool, BTreeMap<String, f64>)>>;

fn latest(path: &Path) -> Latest {
    let mut out: Latest = BTreeMap::new();
    for s in ndjson(&std::fs::read(path).unwrap()) {
        let id = (
            s["stat"].as_str().unwrap().to_string(),
            s["key"].as_str().map(str::to_string),
        );
        let vals = s["values"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        out.entry(id).or_default().insert(
            s["start"].as_i64().unwrap(),
            (s["final"].as_bool().unwrap(), vals),
        );
    }
    out
}

/// A running pulse-web, killed on drop.
struct Web {
    child: Child,
    addr: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Web {
    /// Start pulse-web with `args` (plus `--listen 127.0.0.1:PORT` unless given) and wait
    /// until it serves.
    fn start(args: &[&str], env: &[(&str, &str)], stdin: Option<PathBuf>) -> Web {
        Web::start_bin(bin("pulse-web"), args, env, stdin)
    }

    /// [`Web::start`] of the binary `exe`.
    fn start_bin(exe: PathBuf, args: &[&str], env: &[(&str, &str)], stdin: Option<PathBuf>) -> Web {
        let mut cmd = Command::new(exe);
        let port;
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !args.contains(&"--listen") {
            port = free_port();
            all.push("--listen".into());
            all.push(format!("127.0.0.1:{port}"));
        }
        cmd.args(&all).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env_remove("WEB_AUTH");
        for (k, v) in env {
            cmd.env(k, v);
        }
        match stdin {
            Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
            None => cmd.stdin(Stdio::null()),
        };
        let mut child = cmd.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("pulse-web says where it serves");
        let addr = first
            .strip_prefix("pulse-web: serving http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .trim_end_matches('/')
            .to_string();
        Web {
            child,
            addr,
            stderr: rx,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, None, &[])
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Poll `/api/stats` until `ok` holds (10 s at most).
    fn wait_stats(&self, ok: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.json("/api/stats");
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < until, "condition not met: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 request (Connection: close); returns status and body (chunked bodies
/// decoded).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[&str],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then Content-Length bytes (a keep-alive server does not close).
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end].lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if len.is_some_and(|len| raw.len() >= end + 4 + len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut r = rest;
        while let Some((size, after)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            r = &after[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

fn basic(user_pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

fn cell<'a>(stats: &'a Value, stat: &str, key: Option<&str>) -> &'a Value {
    stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stat"] == stat)
        .unwrap_or_else(|| panic!("no stat {stat}"))["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"].as_str() == key)
        .unwrap_or_else(|| panic!("no key {key:?} in {stat}"))
}

#[test]
fn web_api_holds_the_last_windows_of_the_real_apache_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = apache_snapshots(dir.path());
    let want = latest(&snaps);
    let web = Web::start(&[snaps.to_str().unwrap()], &[], None);
    let stats =
        web.wait_stats(|v| v["ingested"].as_u64() > Some(0) && v["version"].as_u64() >= Some(1));
    let want_stats: std::collections::BTreeSet<&str> = want.keys().map(|k| k.0.as_str()).collect();
    let got_stats: std::collections::BTreeSet<&str> = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stat"].as_str().unwrap())
        .collect();
    assert_eq!(got_stats, want_stats);
    // Every stat and key: 60 windows at most, the latest value the last snapshot's.
    for ((stat, key), windows) in &want {
        let c = cell(&stats, stat, key.as_deref());
        if c["top"].as_array().is_some_and(|t| !t.is_empty()) {
            continue;
        }
        let name = c["value"].as_str().unwrap();
        let pts = c["points"].as_array().unwrap();
        let with: Vec<(&i64, f64)> = windows
            .iter()
            .filter_map(|(s, (_, v))| v.get(name).map(|x| (s, *x)))
            .collect();
        let held = with.len().min(60);
        assert_eq!(pts.len(), held, "{stat} {key:?}");
        let last = with.last().unwrap();
        assert_eq!(
            c["latest"]["value"].as_f64(),
            Some(last.1),
            "{stat} {key:?}"
        );
        assert_eq!(c["latest"]["start"].as_i64(), Some(*last.0));
    }
    // Headline values: count for counts, mean for summaries.
    assert_eq!(cell(&stats, "http.requests", Some("200"))["value"], "count");
    assert_eq!(cell(&stats, "http.bytes", None)["value"], "mean");
    // Keys sorted by latest value.
    let keys = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stat"] == "http.requests")
        .unwrap()["keys"]
        .as_array()
        .unwrap();
    let lat: Vec<f64> = keys
        .iter()
        .map(|k| k["latest"]["value"].as_f64().unwrap())
        .collect();
    assert!(lat.windows(2).all(|w| w[0] >= w[1]), "{lat:?}");

    // One series in full, JSON and CSV.
    let (last_start, (_, vals)) = want[&("http.requests".to_string(), Some("200".to_string()))]
        .iter()
        .next_back()
        .unwrap();
    let s = web.json("/api/series?stat=http.requests&key=200&value=count");
    let p = s["points"].as_array().unwrap();
    assert_eq!(p.len(), 60);
    assert_eq!(p[59]["start"].as_i64(), Some(*last_start));
    assert_eq!(p[59]["value"].as_f64(), Some(vals["count"]));
    assert_eq!(p[59]["final"], true);
    let (st, csv) = web.get("/api/series?stat=http.requests&key=200&format=csv");
    assert_eq!(st, 200);
    assert!(csv.starts_with("start,secs,final,count,rate\n"), "{csv}");
    assert_eq!(csv.lines().count(), 61);
    // The whole buffer: 60 windows per stat and key at most.
    let all = web.json("/api/snapshots");
    let expect: usize = want.values().map(|w| w.len().min(60)).sum();
    assert_eq!(all.as_array().unwrap().len(), expect);
    assert_eq!(web.get("/nope").0, 404);
    let (st, page) = web.get("/");
    assert_eq!(st, 200);
    assert!(page.contains("<script src=\"/app.js\">"));
}

#[test]
fn web_reports_bad_lines_with_file_and_line_and_uses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.ndjson");
    std::fs::write(
        &f,
        "{\"stat\":\"a\",\"key\":null,\"start\":60,\"secs\":60,\"final\":true,\"values\":{\"count\":3}}\nnot json\n{\"stat\":\"a\",\"key\":null,\"start\":120,\"secs\":60,\"final\":false,\"values\":{\"count\":4}}\n",
    )
    .unwrap();
    let web = Web::start(&[f.to_str().unwrap()], &[], None);
    let v = web.wait_stats(|v| v["ingested"] == 2);
    let c = cell(&v, "a", None);
    assert_eq!(
        c["points"],
        json!([[60, 60, 3.0, true], [120, 60, 4.0, false]])
    );
    std::thread::sleep(Duration::from_millis(200));
    let err = web.stderr_lines().join("\n");
    assert!(
        err.contains(&format!("{}: line 2: bad: not a snapshot", f.display())),
        "{err}"
    );
}

#[test]
fn web_basic_auth_guards_every_route_and_the_stream() {
    let auth = "ops:correct-horse-battery-staple";
    let web = Web::start(&[], &[("WEB_AUTH", auth)], None);
    for path in ["/", "/api/stats", "/metrics", "/events", "/api/snapshots"] {
        let (st, _) = http(&web.addr, "GET", path, None, &[]);
        assert_eq!(st, 401, "{path}");
        let (st, _) = http(
            &web.addr,
            "GET",
            path,
            None,
            &[&basic("ops:wrong-password-here!!")],
        );
        assert_eq!(st, 401, "{path}");
    }
    let (st, page) = http(&web.addr, "GET", "/", None, &[&basic(auth)]);
    assert_eq!(st, 200);
    assert!(page.contains("<title>Pulse</title>"));
    // The stream, with credentials: its head and first event.
    let mut s = TcpStream::connect(&web.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n",
        basic(auth)
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains("event: update") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Type: text/event-stream"), "{text}");
}

#[test]
fn web_refuses_a_public_address_without_auth() {
    let out = Command::new(bin("pulse-web"))
        .args(["--listen", "0.0.0.0:0"])
        .env_remove("WEB_AUTH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address, and no auth"), "{err}");
    // A short password is refused too.
    let out = Command::new(bin("pulse-web"))
        .env("WEB_AUTH", "ops:short")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // --no-auth says so.
    let web = Web::start(&["--listen", "0.0.0.0:0", "--no-auth"], &[], None);
    let port = web.addr.rsplit(':').next().unwrap();
    assert_eq!(
        http(&format!("127.0.0.1:{port}"), "GET", "/", None, &[]).0,
        200
    );
}

fn snap(stat: &str, key: Option<&str>, start: i64, fin: bool, count: f64) -> String {
    format!(
        "{}\n",
        json!({"stat": stat, "key": key, "start": start, "secs": 60, "final": fin,
            "values": {"count": count, "rate": count / 60.0}})
    )
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn web_follows_a_file_across_rotation_and_late_data_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("snaps.ndjson");
    append(&f, &snap("t", None, 60, false, 1.0));
    let web = Web::start(
        &["--follow", f.to_str().unwrap(), "--history", "3"],
        &[],
        None,
    );
    web.wait_stats(|v| v["ingested"] == 1);
    // Late data: the same window again, now final.
    append(&f, &snap("t", None, 60, true, 2.0));
    let v = web.wait_stats(|v| v["ingested"] == 2);
    assert_eq!(cell(&v, "t", None)["points"], json!([[60, 60, 2.0, true]]));
    // Rotation: the old file renamed, a new one written.
    append(&f, &snap("t", None, 120, true, 3.0));
    std::fs::rename(&f, dir.path().join("snaps.ndjson.1")).unwrap();
    append(&f, &snap("t", None, 240, true, 5.0));
    append(&f, &snap("t", None, 300, true, 6.0));
    let v = web.wait_stats(|v| v["ingested"] == 5);
    // --history 3 keeps three windows; 180 is missing (a gap, not drawn).
    assert_eq!(
        cell(&v, "t", None)["points"],
        json!([
            [120, 60, 3.0, true],
            [240, 60, 5.0, true],
            [300, 60, 6.0, true]
        ])
    );
}

#[test]
fn web_max_series_counts_the_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.ndjson");
    let mut text = String::new();
    for k in 0..10 {
        text.push_str(&snap("t", Some(&format!("k{k}")), 60, true, k as f64));
    }
    std::fs::write(&f, text).unwrap();
    let web = Web::start(&["--max-series", "8", f.to_str().unwrap()], &[], None);
    let v = web.wait_stats(|v| v["ingested"] == 10);
    assert_eq!(v["series"], 8);
    assert_eq!(v["overflow"], 6);
    assert_eq!(v["stats"][0]["keys"].as_array().unwrap().len(), 4);
    assert_eq!(v["stats"][0]["keys"][0]["key"], "k3");
}

#[test]
fn web_dashboard_file_orders_titles_and_colours() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.ndjson");
    std::fs::write(
        &f,
        snap("a", None, 60, true, 50.0)
            + &snap("b", None, 60, true, 5.0)
            + &snap("c", None, 60, true, 1.0),
    )
    .unwrap();
    let d = dir.path().join("dash");
    std::fs::write(
        &d,
        "# two panels\nb title \"Bees\" unit req warning 4 critical 10\na value rate warning <1 critical <0.5\n",
    )
    .unwrap();
    let web = Web::start(
        &["--dashboard", d.to_str().unwrap(), f.to_str().unwrap()],
        &[],
        None,
    );
    let v = web.wait_stats(|v| v["ingested"] == 3);
    let names: Vec<&str> = v["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stat"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a"]);
    assert_eq!(v["stats"][0]["title"], "Bees");
    assert_eq!(v["stats"][0]["keys"][0]["level"], "warning");
    assert_eq!(v["stats"][1]["keys"][0]["value"], "rate");
    // Lower is worse: a rate of 50/60 is under the warning's 1, above the critical's 0.5.
    assert_eq!(v["stats"][1]["keys"][0]["level"], "warning");
    // A mistake in the file names its line.
    std::fs::write(&d, "a value count\nb colour red\n").unwrap();
    let out = Command::new(bin("pulse-web"))
        .args(["--dashboard", d.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2, column 3: unknown option"));
}

/// `--rules`: the cells of series with a firing alert are coloured by the rule's severity,
/// by the same evaluation as pulse-alert's (which writes the firing for the same input).
#[test]
fn web_rules_colour_the_cells_of_firing_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.ndjson");
    let mut text = String::new();
    for w in 0..3 {
        text += &snap("errs", Some("a"), 60 * w, true, 20.0);
        text += &snap("errs", Some("b"), 60 * w, true, 1.0);
        text += &snap("slow", None, 60 * w, true, 20.0);
    }
    std::fs::write(&f, &text).unwrap();
    let rules = dir.path().join("r.rules");
    std::fs::write(
        &rules,
        "hot errs[*] count > 10 for 2m severity critical\nwarm slow count > 10 for 5m\n",
    )
    .unwrap();
    let web = Web::start(
        &["--rules", rules.to_str().unwrap(), f.to_str().unwrap()],
        &[],
        None,
    );
    let v = web.wait_stats(|v| v["ingested"] == 9);
    let a = cell(&v, "errs", Some("a"));
    assert_eq!(a["level"], "critical", "{a}");
    assert_eq!(a["alerts"][0]["rule"], "hot");
    assert_eq!(a["alerts"][0]["state"], "firing");
    assert_eq!(cell(&v, "errs", Some("b"))["level"], "");
    // Pending (3 of the 5 minutes): listed, not coloured.
    let slow = cell(&v, "slow", None);
    assert_eq!(slow["level"], "", "{slow}");
    assert_eq!(slow["alerts"][0]["state"], "pending");
    let out = crate::util::run(
        "pulse-alert",
        &["--rules", rules.to_str().unwrap(), f.to_str().unwrap()],
        b"",
    );
    let recs = crate::util::ndjson(&out.stdout);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0]["key"].as_str(), recs[0]["state"].as_str()),
        (Some("a"), Some("firing"))
    );
    // A mistake in the rules names its place.
    std::fs::write(&rules, "hot errs count >\n").unwrap();
    let out = Command::new(bin("pulse-web"))
        .args(["--rules", rules.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("r.rules:1:17: expected a threshold"));
}

/// Python with the `prometheus_client` package (CI installs it), or None outside CI.
fn prometheus_python() -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python3 -c 'import prometheus_client' fails: .ci/run installs it");
    }
    eprintln!("note: skipping: python3's prometheus_client is not installed");
    None
}

#[test]
fn web_metrics_parse_with_prometheus_client_and_equal_the_final_snapshots() {
    let Some(()) = prometheus_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps = apache_snapshots(dir.path());
    // A key that needs escaping, and a provisional window that /metrics must not show.
    append(
        &snaps,
        &snap(
            "odd.stat-name",
            Some("a\"b\\c\nd"),
            1_431_857_100,
            true,
            7.0,
        ),
    );
    append(
        &snaps,
        &snap(
            "odd.stat-name",
            Some("a\"b\\c\nd"),
            1_431_857_160,
            false,
            9.0,
        ),
    );
    let want = latest(&snaps);
    let web = Web::start(&[snaps.to_str().unwrap()], &[], None);
    web.wait_stats(|v| {
        v["ingested"].as_u64() == Some(ndjson(&std::fs::read(&snaps).unwrap()).len() as u64)
    });
    let (st, text) = web.get("/metrics");
    assert_eq!(st, 200);
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    let samples: Vec<(String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    let got: BTreeMap<(String, BTreeMap<String, String>), f64> =
        samples.into_iter().map(|(n, l, v)| ((n, l), v)).collect();
    let sanitize = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let fixed = [
        "count", "rate", "sum", "mean", "min", "max", "stddev", "p50", "p90", "p95", "p99",
        "unique", "error",
    ];
    let mut expect: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
    for ((stat, key), all) in &want {
        // pulse-web holds the last 60 windows.
        let windows: BTreeMap<&i64, &(bool, BTreeMap<String, f64>)> =
            all.iter().rev().take(60).collect();
        let names: std::collections::BTreeSet<&String> =
            windows.values().flat_map(|w| w.1.keys()).collect();
        let top = names.iter().any(|n| !fixed.contains(&n.as_str()));
        for n in names {
            let Some(v) = windows
                .values()
                .rev()
                .find_map(|(fin, vals)| vals.get(n).filter(|_| *fin))
            else {
                continue;
            };
            let mut labels = BTreeMap::new();
            if let Some(k) = key {
                labels.insert("key".to_string(), k.clone());
            }
            let name = if top {
                labels.insert("value".to_string(), n.clone());
                format!("pulse_{}", sanitize(stat))
            } else {
                format!("pulse_{}_{}", sanitize(stat), sanitize(n))
            };
            expect.insert((name, labels), *v);
        }
    }
    assert_eq!(got.len(), expect.len());
    for (k, v) in &expect {
        assert_eq!(got.get(k), Some(v), "{k:?}");
    }
    let odd = (
        "pulse_odd_stat_name_count".to_string(),
        BTreeMap::from([("key".to_string(), "a\"b\\c\nd".to_string())]),
    );
    assert_eq!(got[&odd], 7.0);
}

/// A headless Chromium driven by chromedriver (WebDriver over HTTP), stopped on drop.
struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Option<Browser> {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find(|p| crate::servers::which(p).is_some());
        if !available(
            "web browser test",
            &["chromedriver", chromium.unwrap_or("chromium")],
        ) {
            return None;
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < until, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": crate::servers::which(chromium.unwrap()).unwrap(),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let (st, body) = http(&addr, "POST", "/session", Some(&caps.to_string()), &[]);
        assert_eq!(st, 200, "new session: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Some(Browser {
            driver,
            addr,
            session,
            _profile: profile,
        })
    }

    /// A headless Firefox (firefox-esr) driven by geckodriver, in the dark scheme when
    /// `dark` (the content's prefers-color-scheme), else the light one.
    fn firefox(dark: bool) -> Option<Browser> {
        let firefox = ["firefox-esr", "firefox"]
            .into_iter()
            .find(|p| crate::servers::which(p).is_some());
        if !available(
            "web browser test (Firefox)",
            &["geckodriver", firefox.unwrap_or("firefox-esr")],
        ) {
            return None;
        }
        let port = free_port();
        let driver = Command::new("geckodriver")
            .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < until, "geckodriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        // 0: dark, 1: light (layout.css.prefers-color-scheme.content-override).
        let scheme = if dark { 0 } else { 1 };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "firefox",
            "moz:firefoxOptions": {
                "binary": crate::servers::which(firefox.unwrap()).unwrap(),
                "args": ["-headless", "-width", "1400", "-height", "1000",
                    "-profile", profile.path().display().to_string()],
                "prefs": {
                    "layout.css.prefers-color-scheme.content-override": scheme,
                    "app.update.enabled": false,
                    "browser.shell.checkDefaultBrowser": false,
                    "datareporting.policy.dataSubmissionEnabled": false,
                    "network.captive-portal-service.enabled": false
                }
            }
        }}});
        let (st, body) = http(&addr, "POST", "/session", Some(&caps.to_string()), &[]);
        assert_eq!(st, 200, "new session: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let session = v["value"]["sessionId"].as_str().unwrap().to_string();
        Some(Browser {
            driver,
            addr,
            session,
            _profile: profile,
        })
    }

    fn cmd(&self, path: &str, body: Value) -> Value {
        let (st, text) = http(
            &self.addr,
            "POST",
            &format!("/session/{}/{path}", self.session),
            Some(&body.to_string()),
            &[],
        );
        assert_eq!(st, 200, "{path}: {text}");
        serde_json::from_str::<Value>(&text).unwrap()["value"].clone()
    }

    /// A DevTools protocol command, through chromedriver.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd("goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    fn goto(&self, url: &str) {
        self.cmd("url", json!({ "url": url }));
    }

    fn eval(&self, script: &str) -> Value {
        self.cmd("execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Evaluate `script` until it returns something other than null or false.
    fn wait(&self, script: &str, within: Duration) -> Value {
        let until = Instant::now() + within;
        loop {
            let v = self.eval(script);
            if !(v.is_null() || v == false) {
                return v;
            }
            assert!(Instant::now() < until, "timed out waiting for: {script}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, path: &Path) {
        let (st, text) = http(
            &self.addr,
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
            &[],
        );
        assert_eq!(st, 200);
        let v: Value = serde_json::from_str(&text).unwrap();
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
            &[],
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// pulse-web following the real Apache snapshots, in `browser`: the cells, the chosen
/// cells' latest values and points equal the snapshots, a top's list ranks its values
/// without `(other)`; `look` runs on the drawn page (screenshots, colour schemes); then
/// newer snapshots change the page without a reload within 2 s (the provisional point drawn
/// as such), and after a restart the page reconnects by itself and shows the new process's
/// data. The restarted pulse-web is returned, running (with the directory of its input).
fn page_draws_updates_and_reconnects(
    browser: &Browser,
    look: impl FnOnce(&Browser),
) -> (Web, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let snaps = apache_snapshots(dir.path());
    let want = latest(&snaps);
    let follow = dir.path().join("follow.ndjson");
    std::fs::copy(&snaps, &follow).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let f = follow.to_str().unwrap().to_string();
    let web = Web::start(&["--listen", &listen, "--follow", &f], &[], None);
    let n_lines = ndjson(&std::fs::read(&snaps).unwrap()).len() as u64;
    let stats = web.wait_stats(|v| v["ingested"].as_u64() == Some(n_lines));
    browser.goto(&format!("http://{listen}/"));
    browser.wait(
        "return document.body.dataset.connected === '1' && document.querySelectorAll('.cell').length > 0",
        Duration::from_secs(30),
    );
    // Cells: one per stat and key, at most 20 per stat.
    let expect_cells: usize = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keys"].as_array().unwrap().len().min(20))
        .sum();
    let cells = browser.eval("return document.querySelectorAll('.cell').length");
    assert_eq!(cells.as_u64(), Some(expect_cells as u64));
    // Chosen cells: the latest value equals the last snapshot; one point per window held.
    for (stat, key, name) in [
        ("http.requests", Some("200"), "count"),
        ("events.total", None, "count"),
        ("http.bytes", None, "mean"),
    ] {
        let id = (stat.to_string(), key.map(str::to_string));
        let last = want[&id].values().next_back().unwrap().1[name];
        let sel = format!(
            "document.querySelector('.cell[data-stat=\"{stat}\"][data-key=\"{}\"]')",
            key.unwrap_or("")
        );
        let shown = browser.eval(&format!(
            "return {sel}.querySelector('.latest').dataset.value"
        ));
        assert_eq!(
            shown.as_str().unwrap().parse::<f64>().unwrap(),
            last,
            "{stat} {key:?}"
        );
        let points = browser.eval(&format!(
            "return {sel}.querySelectorAll('circle.point').length"
        ));
        assert_eq!(
            points.as_u64(),
            Some(want[&id].len().min(60) as u64),
            "{stat} {key:?}"
        );
    }
    // A top's list ranks its values; `(other)`, the rest of the count, is none of them.
    let listed = browser.eval(
        "return [...document.querySelectorAll('.cell[data-stat=\"http.paths\"] ol.top li')].map(li => li.firstChild.textContent)",
    );
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(!listed.contains(&"(other)"), "{listed:?}");
    look(browser);
    // Newer snapshots: the page changes without a reload, within 2 s.
    browser.eval("window.__same_page = true; return 1");
    let newest = *want[&("events.total".to_string(), None)]
        .keys()
        .next_back()
        .unwrap();
    append(
        &follow,
        &snap("events.total", None, newest + 60, false, 4242.0),
    );
    let t0 = Instant::now();
    browser.wait(
        "return window.__same_page && document.querySelector('.cell[data-stat=\"events.total\"] .latest').dataset.value === '4242'",
        Duration::from_secs(5),
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    // The provisional point is drawn as such.
    let prov = browser.eval(
        "return document.querySelectorAll('.cell[data-stat=\"events.total\"] circle.prov').length",
    );
    assert_eq!(prov, 1);
    // A restart: the page notices, reconnects by itself and shows the new process's data.
    drop(web);
    browser.wait(
        "return document.body.dataset.connected === '0'",
        Duration::from_secs(10),
    );
    append(
        &follow,
        &snap("events.total", None, newest + 120, true, 777.0),
    );
    let web = Web::start(&["--listen", &listen, "--follow", &f], &[], None);
    browser.wait(
        "return window.__same_page && document.body.dataset.connected === '1' && document.querySelector('.cell[data-stat=\"events.total\"] .latest').dataset.value === '777'",
        Duration::from_secs(10),
    );
    (web, dir)
}

/// The page's background colour.
const BACKGROUND: &str = "return getComputedStyle(document.body).backgroundColor";
const LIGHT: &str = "rgb(246, 247, 249)";
const DARK: &str = "rgb(15, 18, 23)";

#[test]
fn web_page_in_chromium_draws_the_snapshots_updates_live_and_reconnects() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let scheme = |browser: &Browser, value: &str| {
        browser.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        );
    };
    let (web, _dir) = page_draws_updates_and_reconnects(&browser, |browser| {
        // scripts/screenshot-web: the page on the real sample.
        if let Ok(out) = std::env::var("PULSE_WEB_SCREENSHOT") {
            browser.screenshot(Path::new(&out));
        }
        // The dark scheme: the page follows prefers-color-scheme.
        scheme(browser, "dark");
        assert_eq!(browser.eval(BACKGROUND), DARK);
        if let Ok(out) = std::env::var("PULSE_WEB_SCREENSHOT_DARK") {
            browser.screenshot(Path::new(&out));
        }
        scheme(browser, "light");
        assert_eq!(browser.eval(BACKGROUND), LIGHT);
    });
    // The detail view: a chart of every value, a table, CSV and JSON links.
    browser.eval("document.querySelector('.cell[data-stat=\"http.bytes\"]').click(); return 1");
    let rows = browser.wait(
        "const d = document.getElementById('detail'); return !d.hidden && d.querySelectorAll('tr').length",
        Duration::from_secs(5),
    );
    assert_eq!(rows.as_u64(), Some(61));
    let links = browser.eval(
        "return [...document.querySelectorAll('#detail a')].map(a => a.getAttribute('href'))",
    );
    assert!(links.to_string().contains("format=csv"), "{links}");
    drop(web);
}

/// The same page in Firefox, once in the light scheme and once in the dark one.
#[test]
fn web_page_in_firefox_draws_the_snapshots_light_and_dark_and_updates_live() {
    for dark in [false, true] {
        let Some(browser) = Browser::firefox(dark) else {
            return;
        };
        let (web, _dir) = page_draws_updates_and_reconnects(&browser, |browser| {
            assert_eq!(browser.eval(BACKGROUND), if dark { DARK } else { LIGHT });
            let shot = if dark {
                "PULSE_WEB_SCREENSHOT_FIREFOX_DARK"
            } else {
                "PULSE_WEB_SCREENSHOT_FIREFOX"
            };
            if let Ok(out) = std::env::var(shot) {
                browser.screenshot(Path::new(&out));
            }
        });
        drop(web);
    }
}

/// The OPTIONS section of `man/pulse-web.1` is generated from the clap definition between
/// marker comments. `PULSE_BLESS=1 cargo test man_page` rewrites it.
#[test]
fn web_man_page_options_match_help() {
    if crate::util::generated_options_match("pulse-web.1", pulse::cli::web::command()).is_none() {
        return;
    }
    crate::util::assert_man_matches_help("pulse-web", "pulse-web.1");
}

/// The pulse-web the benches run: `PULSE_WEB_BIN` (scripts/bench-web passes the release
/// build), else the one under test.
fn bench_web(args: &[&str], snapshots: u64) -> Web {
    let web = Web::start_bin(
        std::env::var_os("PULSE_WEB_BIN").map_or_else(|| bin("pulse-web"), PathBuf::from),
        args,
        &[],
        None,
    );
    web.wait_stats(|v| v["ingested"].as_u64() == Some(snapshots));
    web
}

/// The snapshots [`bench_cells`] writes.
const CELLS: u64 = 25 * 20 * 60;

/// 25 stats x 20 keys (the keys a stat shows) x 60 windows of 5 values: 500 cells.
fn bench_cells(path: &Path) {
    let mut out = String::new();
    for w in 0..60i64 {
        for s in 0..25 {
            for k in 0..20 {
                let v = json!({"stat": format!("bench.s{s:02}"), "key": format!("host-{k:02}"),
                    "start": 1_767_225_600 + 60 * w, "secs": 60, "final": w < 59,
                    "values": {"count": k * 10 + w, "max": 900 + w, "p50": 40 + (w * k) % 7,
                        "p95": 300 + (w * 7 + k * 13) % 50, "p99": 700 + w}});
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

/// scripts/bench-web: a page of 500 cells in headless Chromium, from navigation until the
/// 500th cell's chart is in the DOM (a MutationObserver installed before the page's own
/// script, by the DevTools protocol) and then painted (the next animation frame).
#[test]
#[ignore = "a benchmark: scripts/bench-web runs it"]
fn web_bench_page_of_500_cells_in_chromium() {
    let Some(browser) = Browser::start() else {
        println!("skipped page: chromium or chromedriver missing");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("cells.ndjson");
    bench_cells(&snaps);
    let web = bench_web(&[snaps.to_str().unwrap()], CELLS);
    browser.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "
            window.__drawn = null;
            new MutationObserver((_, obs) => {
                if (document.querySelectorAll('.cell svg.spark circle.point').length >= 500 * 60) {
                    const dom = performance.now();
                    obs.disconnect();
                    requestAnimationFrame(() => setTimeout(() => {
                        window.__drawn = {dom, painted: performance.now()};
                    }));
                }
            }).observe(document, {childList: true, subtree: true});"}),
    );
    let mut runs = Vec::new();
    for _ in 0..5 {
        browser.goto(&format!("http://{}/", web.addr));
        let t = browser.wait("return window.__drawn", Duration::from_secs(30));
        let cells = browser.eval("return document.querySelectorAll('.cell').length");
        assert_eq!(cells, 500);
        runs.push((t["dom"].as_f64().unwrap(), t["painted"].as_f64().unwrap()));
    }
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (dom, painted) = runs[runs.len() / 2];
    let worst = runs.last().unwrap().1;
    println!(
        "page: 500 cells x 60 points drawn {:.0} ms after navigation, painted at {:.0} ms (median of 5; worst {:.0} ms) (target < 1000 ms: {})",
        dom,
        painted,
        worst,
        if worst < 1000.0 { "met" } else { "NOT met" }
    );
}

/// scripts/bench-web: 50 clients on `/events` of `pulse-web --follow`, as 50 pages: on each
/// `update` event a client fetches `/api/stats`. For each of 20 snapshots appended to the
/// file, the delay from the write to each client having the event, and to its having
/// `/api/stats` with the new value.
#[test]
#[ignore = "a benchmark: scripts/bench-web runs it"]
fn web_bench_50_clients_on_the_stream() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("cells.ndjson");
    bench_cells(&snaps);
    let web = bench_web(&["--follow", snaps.to_str().unwrap()], CELLS);
    let addr = web.addr.clone();
    // Each client sends (round seen in /api/stats, when the event came, when the data came).
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize, Instant, Instant)>();
    let mut ready = Vec::new();
    for c in 0..CLIENTS {
        let (tx, addr) = (tx.clone(), addr.clone());
        let (rtx, rrx) = std::sync::mpsc::channel();
        ready.push(rrx);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            let mut seen = 0;
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                if !line.starts_with("event: update") {
                    continue;
                }
                let event = Instant::now();
                // As a page does: a new connection, the whole body (pulse-web closes it).
                let mut q = TcpStream::connect(&addr).unwrap();
                write!(q, "GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut raw = Vec::new();
                q.read_to_end(&mut raw)
                    .unwrap_or_else(|e| panic!("client {c}: /api/stats: {e}"));
                let data = Instant::now();
                assert!(
                    raw.starts_with(b"HTTP/1.1 200"),
                    "client {c}: {}",
                    String::from_utf8_lossy(&raw[..raw.len().min(200)])
                );
                // Round r writes p95 = 1000 + r, the latest value of its cell (the latest
                // values of the bench data's own are below 1000); found without parsing the
                // whole reply, as the clients share two cores with pulse-web.
                let round = memchr::memmem::find(&raw, b"\"value\":10")
                    .map(|i| &raw[i + 8..])
                    .and_then(|v| {
                        std::str::from_utf8(
                            &v[..v.iter().position(|b| !b.is_ascii_digit()).unwrap_or(0)],
                        )
                        .ok()?
                        .parse::<usize>()
                        .ok()
                    })
                    .map_or(0, |v| v.saturating_sub(1000));
                // Ready once the reply to the first event (at connection) came.
                let _ = rtx.send(());
                if (1..=ROUNDS).contains(&round) && round > seen {
                    seen = round;
                    if tx.send((c, round, event, data)).is_err() {
                        return;
                    }
                }
            }
        });
    }
    for r in ready {
        r.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut event_ms = Vec::new();
    let mut data_ms = Vec::new();
    let mut missed = 0;
    let start = 1_767_225_600 + 60 * 60;
    for round in 1..=ROUNDS {
        let line = json!({"stat": "bench.s00", "key": "host-00", "start": start + 60 * round as i64,
            "secs": 60, "final": false, "values": {"count": round, "p95": 1000 + round}});
        let t0 = Instant::now();
        append(&snaps, &format!("{line}\n"));
        let mut got = [false; CLIENTS];
        let until = t0 + Duration::from_secs(5);
        while got.iter().any(|g| !g) {
            let Ok((c, r, event, data)) =
                rx.recv_timeout(until.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            if r == round && !got[c] {
                got[c] = true;
                event_ms.push(event.duration_since(t0).as_secs_f64() * 1e3);
                data_ms.push(data.duration_since(t0).as_secs_f64() * 1e3);
            }
        }
        let late = got.iter().filter(|g| !**g).count();
        if late > 0 {
            println!("stream: round {round}: {late} clients without it after 5 s");
        }
        missed += late;
        std::thread::sleep(Duration::from_millis(700));
    }
    let q = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    for l in web.stderr_lines() {
        println!("stderr: {l}");
    }
    let met = missed == 0 && data_ms.iter().all(|&d| d < 1000.0);
    println!(
        "stream: {CLIENTS} clients x {ROUNDS} snapshots appended: event after median {:.0} ms, max {:.0} ms; /api/stats with the new value after median {:.0} ms, p99 {:.0} ms, max {:.0} ms; {missed} missed (target: every client every update < 1000 ms: {})",
        q(&mut event_ms, 0.5),
        q(&mut event_ms, 1.0),
        q(&mut data_ms, 0.5),
        q(&mut data_ms, 0.99),
        q(&mut data_ms, 1.0),
        if met { "met" } else { "NOT met" }
    );
}
