//! End to end (GitHub issue 5): a real log file goes through all four tools, piped as a user
//! would type them, into a real carbon-cache (and, as CSV, a real PostgreSQL); what those hold
//! must be the per-minute values of the snapshots the pipeline wrote, and the snapshots must
//! be what the log says.
//!
//! Carbon keeps every metric at one point per minute for 20 years (`60s:20y`, sparse whisper
//! files), because whisper drops points older than its longest retention and the logs date
//! from 2010 to 2024. So each snapshot window maps to exactly one whisper point at its own
//! `start`, and the logs' timestamps are used as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::servers::{Carbon, Postgres};
use crate::util::{fixture, ndjson, sh};

/// Apache combined log, May 2015, `+0000`; events only at HH:05, 84 distinct minutes.
const APACHE: &str = "real/elastic-examples/apache_logs";
/// `heroku logs` lines from Heroku's docs, 2010 to 2024, not in time order.
const HEROKU: &str = "real/curated/heroku-cli-lines.log";

/// One whisper point per minute, reaching back to 2006 from a 2026 clock.
const RETENTION: &str = "60s:20y";

/// How long carbon may take to write what it received.
const CARBON_DEADLINE: Duration = Duration::from_secs(30);

/// Stat, key, window start.
type SnapId = (String, Option<String>, i64);

/// The snapshots of a run, the latest per stat, key and window (as consumers keep them).
struct Snaps {
    windows: BTreeMap<SnapId, BTreeMap<String, f64>>,
    /// How many snapshot lines the pipeline wrote.
    lines: usize,
}

/// Graphite path -> (stat, `[(start, value)]`).
type GraphitePoints<'a> = BTreeMap<String, (&'a str, Vec<(i64, f64)>)>;

impl Snaps {
    fn read(path: &Path) -> Snaps {
        let bytes = std::fs::read(path).expect("snapshots written by tee");
        let all = ndjson(&bytes);
        let mut windows = BTreeMap::new();
        for s in &all {
            assert_eq!(
                s["final"], true,
                "--every 0 writes final snapshots only: {s}"
            );
            assert_eq!(s["secs"], 60, "{s}");
            let id = (
                s["stat"].as_str().expect("stat").to_string(),
                s["key"].as_str().map(str::to_string),
                s["start"].as_i64().expect("start"),
            );
            let values = s["values"]
                .as_object()
                .expect("values")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_f64().expect("number")))
                .collect();
            windows.insert(id, values);
        }
        Snaps {
            windows,
            lines: all.len(),
        }
    }

    /// Values of `stat` as `(key, start) -> values`.
    fn stat(&self, stat: &str) -> BTreeMap<(Option<String>, i64), &BTreeMap<String, f64>> {
        self.windows
            .iter()
            .filter(|((s, _, _), _)| s == stat)
            .map(|((_, k, t), v)| ((k.clone(), *t), v))
            .collect()
    }

    /// The Graphite points the snapshots make under `prefix`: path -> (stat, `[(start, value)]`).
    fn graphite(&self, prefix: &str) -> GraphitePoints<'_> {
        let mut out = GraphitePoints::new();
        for ((stat, key, start), values) in &self.windows {
            for (name, v) in values {
                out.entry(graphite_path(prefix, stat, key.as_deref(), name))
                    .or_insert_with(|| (stat, Vec::new()))
                    .1
                    .push((*start, *v));
            }
        }
        for (_, points) in out.values_mut() {
            points.sort_by_key(|p| p.0);
        }
        out
    }
}

/// The path rule of `pulse-emit(1)`: the stat's dots are levels; the key and the value name
/// are one level each, every character outside `[A-Za-z0-9_-]` becoming `_`.
fn graphite_path(prefix: &str, stat: &str, key: Option<&str>, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut parts = vec![prefix.to_string()];
    parts.extend(stat.split('.').map(clean));
    parts.extend(key.map(clean));
    parts.push(clean(name));
    parts.join(".")
}

/// `'s'`, quoted for bash.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// `pulse-parse LOG | pulse-fragment | pulse-merge --every 0 | tee SNAPS | pulse-emit SINK`.
fn pipeline(log: &Path, snaps: &Path, sink: &str) -> Output {
    let out = sh(&format!(
        "pulse-parse {} | pulse-fragment | pulse-merge --every 0 | tee {} | pulse-emit {sink}",
        quote(log),
        quote(snaps)
    ));
    assert!(
        out.status.success(),
        "pipeline failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Equal as the brief of issue 5 wants: exactly for integers, within 1e-9 relative otherwise.
fn same(a: f64, b: f64) -> bool {
    if a.fract() == 0.0 && b.fract() == 0.0 {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn same_points(got: &[(i64, f64)], want: &[(i64, f64)]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.0 == w.0 && same(g.1, w.1))
}

/// Poll (bounded) until carbon has a whisper file for every path in `want`; then assert that
/// it has no other.
fn wait_for_metrics(carbon: &Carbon, want: &BTreeSet<String>) {
    let end = Instant::now() + CARBON_DEADLINE;
    let mut have = carbon.metrics();
    while Instant::now() < end && !want.iter().all(|m| have.binary_search(m).is_ok()) {
        std::thread::sleep(Duration::from_millis(200));
        have = carbon.metrics();
    }
    let have: BTreeSet<String> = have.into_iter().collect();
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "whisper files: missing {missing:?}, extra {extra:?}\n{}",
        carbon.log()
    );
}

/// The stretches of time to read back for `points` (sorted): an hour either side of each run
/// of points less than a day apart. (Reading a whole 20-year archive takes whisper-fetch
/// seconds per metric; the heroku log's points are spread over 14 years.)
fn spans(points: &[(i64, f64)]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &(t, _) in points {
        match out.last_mut() {
            Some(last) if t - 3600 < last.1 + 86_400 => last.1 = t + 3600,
            _ => out.push((t - 3600, t + 3600)),
        }
    }
    out
}

/// The non-empty points of `metric` over `spans`.
fn read_back(carbon: &Carbon, metric: &str, spans: &[(i64, i64)]) -> Vec<(i64, f64)> {
    spans
        .iter()
        .flat_map(|&(from, until)| carbon.values(metric, from, until))
        .collect()
}

/// Every point of every metric of `stats` reads back from whisper as the snapshots hold it:
/// the same minutes (no point missing, none extra within an hour of the snapshots' own) and
/// the same values. Returns how many points were compared.
fn assert_carbon_holds(carbon: &Carbon, snaps: &Snaps, prefix: &str, stats: &[&str]) -> usize {
    let points = snaps.graphite(prefix);
    let mut compared = 0;
    for stat in stats {
        let metrics: Vec<_> = points
            .iter()
            .filter(|(_, (s, _))| s == stat)
            .map(|(path, (_, want))| (path, want))
            .collect();
        assert!(!metrics.is_empty(), "no metric of {stat} in the snapshots");
        for (metric, want) in metrics {
            let spans = spans(want);
            // Carbon writes asynchronously, and may write a metric's points in several goes.
            let end = Instant::now() + CARBON_DEADLINE;
            let mut got = read_back(carbon, metric, &spans);
            while Instant::now() < end && got.len() < want.len() {
                std::thread::sleep(Duration::from_millis(200));
                got = read_back(carbon, metric, &spans);
            }
            assert!(
                same_points(&got, want),
                "{metric}: whisper holds {} points, the snapshots {}\nwhisper:   {got:?}\nsnapshots: {want:?}",
                got.len(),
                want.len()
            );
            compared += got.len();
        }
    }
    compared
}

/// What the apache log says, read from its text (not through Pulse): per minute, the lines,
/// the requests per status, and the count, sum, min and max of the byte counts (`-` is none).
#[derive(Default, Debug, PartialEq)]
struct Minute {
    lines: u64,
    status: BTreeMap<String, u64>,
    bytes: Vec<f64>,
}

fn apache_by_minute(text: &str) -> BTreeMap<i64, Minute> {
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut out: BTreeMap<i64, Minute> = BTreeMap::new();
    for line in text.lines() {
        // `[17/May/2015:10:05:03 +0000] "GET ... HTTP/1.1" 200 203023 "referer" "agent"`
        let stamp = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
        assert!(stamp.ends_with(" +0000"), "{line}");
        let n = |r: std::ops::Range<usize>| stamp[r].parse::<i64>().unwrap();
        let month = months.iter().position(|m| *m == &stamp[3..6]).unwrap() as i64 + 1;
        let (year, day, hour, min) = (n(7..11), n(0..2), n(12..14), n(15..17));
        assert_eq!((year, month), (2015, 5), "{line}");
        // Days from 1970-01-01 to 2015-05-01 is 16556.
        let minute = ((16556 + day - 1) * 24 + hour) * 3600 + min * 60;
        let mut after = line.split('"').nth(2).unwrap().split_whitespace();
        let status = after.next().unwrap().to_string();
        let bytes = after.next().unwrap();
        let m = out.entry(minute).or_default();
        m.lines += 1;
        *m.status.entry(status).or_default() += 1;
        if bytes != "-" {
            m.bytes.push(bytes.parse().unwrap());
        }
    }
    out
}

/// The apache log through all four tools into carbon: the snapshots are what the log says
/// minute by minute, and whisper holds each snapshot value at its minute.
#[test]
fn apache_log_through_all_four_tools_into_carbon() {
    let Some(carbon) = Carbon::start_with(RETENTION) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps_file = dir.path().join("snaps.ndjson");
    let log = fixture(APACHE);
    pipeline(
        &log,
        &snaps_file,
        &format!("--graphite {} --prefix e2e", carbon.addr()),
    );
    let snaps = Snaps::read(&snaps_file);
    assert_eq!(snaps.lines, snaps.windows.len(), "a window written twice");

    // The snapshots against the log's own text.
    let truth = apache_by_minute(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(truth.len(), 84, "the log has 84 distinct minutes");
    assert_eq!(truth.values().map(|m| m.lines).sum::<u64>(), 10_000);
    let total = snaps.stat("events.total");
    let requests = snaps.stat("http.requests");
    let bytes = snaps.stat("http.bytes");
    assert_eq!(total.len(), 84);
    assert_eq!(bytes.len(), 84);
    assert_eq!(
        requests.len(),
        truth.values().map(|m| m.status.len()).sum::<usize>()
    );
    for (&start, m) in &truth {
        assert_eq!(total[&(None, start)]["count"], m.lines as f64, "{start}");
        for (status, &n) in &m.status {
            let v = requests[&(Some(status.clone()), start)];
            assert_eq!(v["count"], n as f64, "{start} {status}");
            assert!(same(v["rate"], n as f64 / 60.0), "{start} {status}");
        }
        let b = bytes[&(None, start)];
        assert_eq!(b["count"], m.bytes.len() as f64, "{start}");
        assert_eq!(b["sum"], m.bytes.iter().sum::<f64>(), "{start}");
        assert_eq!(b["min"], m.bytes.iter().copied().fold(f64::MAX, f64::min));
        assert_eq!(b["max"], m.bytes.iter().copied().fold(0.0, f64::max));
        assert!(same(b["mean"], b["sum"] / b["count"]), "{start}");
    }

    // Carbon: a whisper file for every path the snapshots make, no other, named by the
    // documented rule.
    let points = snaps.graphite("e2e");
    let want: BTreeSet<String> = points.keys().cloned().collect();
    for path in [
        "e2e.events.total.count",
        "e2e.events.total.rate",
        "e2e.http.requests.200.count",
        "e2e.http.requests.404.rate",
        "e2e.http.status.5xx.count",
        "e2e.http.bytes.sum",
        "e2e.http.bytes.stddev",
        "e2e.http.paths._favicon_ico",
        "e2e.pulse.events.count",
    ] {
        assert!(want.contains(path), "{path} not among {want:?}");
    }
    wait_for_metrics(&carbon, &want);

    // Every per-minute value of these stats reads back from whisper.
    let compared = assert_carbon_holds(
        &carbon,
        &snaps,
        "e2e",
        &[
            "events.total",
            "http.requests",
            "http.status.5xx",
            "http.bytes",
        ],
    );
    // events.total 2 x 84, http.bytes 6 x 84, http.requests 2 per window, 5xx 2 x 3.
    assert_eq!(compared, 2 * 84 + 6 * 84 + 2 * requests.len() + 2 * 3);
}

/// Heroku's documented router and runtime lines (2010 to 2024, out of order, some late)
/// through all four tools into carbon: the router stats, grouped by error code, status and
/// host, read back from whisper as the snapshots hold them.
#[test]
fn heroku_log_through_all_four_tools_into_carbon() {
    let Some(carbon) = Carbon::start_with(RETENTION) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps_file = dir.path().join("snaps.ndjson");
    pipeline(
        &fixture(HEROKU),
        &snaps_file,
        &format!("--graphite tcp://{} --prefix e2e.heroku", carbon.addr()),
    );
    let snaps = Snaps::read(&snaps_file);
    assert_eq!(snaps.lines, snaps.windows.len(), "a window written twice");
    // The 2010 minute holds the H10-H24 router errors, one each.
    let errors = snaps.stat("router.errors");
    for code in ["H10", "H12", "H18", "H24"] {
        assert_eq!(
            errors[&(Some(code.to_string()), 1286427060)]["count"],
            1.0,
            "{code}"
        );
    }

    let points = snaps.graphite("e2e.heroku");
    let want: BTreeSet<String> = points.keys().cloned().collect();
    for path in [
        "e2e.heroku.router.errors.H10.count",
        "e2e.heroku.router.requests.503.count",
        "e2e.heroku.router.service.summary.myapp_herokuapp_com.stddev",
        "e2e.heroku.events.total.count",
    ] {
        assert!(want.contains(path), "{path} not among {want:?}");
    }
    wait_for_metrics(&carbon, &want);
    let compared = assert_carbon_holds(
        &carbon,
        &snaps,
        "e2e.heroku",
        &[
            "events.total",
            "router.errors",
            "router.requests",
            "router.service.summary",
            "router.bytes",
        ],
    );
    let windows = |stat: &str| snaps.stat(stat).len();
    assert_eq!(
        compared,
        2 * (windows("events.total") + windows("router.errors") + windows("router.requests"))
            + 6 * (windows("router.service.summary") + windows("router.bytes"))
    );
}

/// The same pipeline ending in CSV, loaded into PostgreSQL with `\copy`: every row is a value
/// of a snapshot, and the sums per stat and value name match the snapshots'.
#[test]
fn apache_log_through_all_four_tools_into_postgres() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps_file = dir.path().join("snaps.ndjson");
    let csv = pipeline(&fixture(APACHE), &snaps_file, "--format csv").stdout;
    let snaps = Snaps::read(&snaps_file);
    pg.query(
        "CREATE TABLE metrics(stat text, key text, start bigint, secs int, final boolean, \
         name text, value double precision)",
    );
    let load = pg.psql(r"\copy metrics FROM STDIN CSV HEADER", &csv);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );

    // Row by row.
    let rows: serde_json::Value = serde_json::from_str(
        &pg.query("SELECT json_agg(json_build_array(stat, key, start, name, value)) FROM metrics"),
    )
    .unwrap();
    let mut got: BTreeMap<(SnapId, String), f64> = BTreeMap::new();
    for r in rows.as_array().unwrap() {
        let id = (
            r[0].as_str().unwrap().to_string(),
            r[1].as_str().map(str::to_string),
            r[2].as_i64().unwrap(),
        );
        let old = got.insert(
            (id, r[3].as_str().unwrap().to_string()),
            r[4].as_f64().unwrap(),
        );
        assert!(old.is_none(), "row loaded twice: {r}");
    }
    let mut want_rows = 0;
    for (id, values) in &snaps.windows {
        for (name, v) in values {
            want_rows += 1;
            let g = got.get(&(id.clone(), name.clone()));
            assert!(
                g.is_some_and(|g| same(*g, *v)),
                "{id:?} {name}: postgres {g:?}, snapshot {v}"
            );
        }
    }
    assert_eq!(got.len(), want_rows);

    // The sums a user would ask for.
    let sums: serde_json::Value = serde_json::from_str(&pg.query(
        "SELECT json_agg(json_build_array(stat, name, n, s)) FROM \
         (SELECT stat, name, count(*) AS n, sum(value) AS s FROM metrics GROUP BY stat, name) t",
    ))
    .unwrap();
    let mut want: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
    for ((stat, _, _), values) in &snaps.windows {
        for (name, v) in values {
            let e = want.entry((stat.clone(), name.clone())).or_default();
            e.0 += 1;
            e.1 += v;
        }
    }
    let sums = sums.as_array().unwrap();
    assert_eq!(sums.len(), want.len());
    for s in sums {
        let key = (
            s[0].as_str().unwrap().to_string(),
            s[1].as_str().unwrap().to_string(),
        );
        let (n, sum) = want[&key];
        assert_eq!(s[2].as_u64(), Some(n), "{key:?}");
        assert!(same(s[3].as_f64().unwrap(), sum), "{key:?}: {s} vs {sum}");
    }
    // And the requests per status, summed over the minutes, are the log's.
    assert_eq!(
        pg.query(
            "SELECT key, sum(value) FROM metrics WHERE stat = 'http.requests' AND name = 'count' \
             GROUP BY key ORDER BY key"
        ),
        "200|9126\n206|45\n301|164\n304|445\n403|2\n404|213\n416|2\n500|3\n"
    );
}
