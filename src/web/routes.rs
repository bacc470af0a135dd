//! The routes, as a table: each takes the history (and the query) and returns a [`Reply`].
//!
//! | route | what |
//! |---|---|
//! | `/` | the page (HTML, CSS and JavaScript compiled in) |
//! | `/api/stats` | the stats, keys and value names held, each cell's headline points |
//! | `/api/series?stat=&key=&value=[&format=csv]` | one series: start, secs, value, final |
//! | `/api/snapshots` | the whole buffer, as snapshots (the original's `/stats`) |
//! | `/metrics` | the latest final values, Prometheus text format |
//! | `/events` | Server-Sent Events: `update` when the history changed (see [`super::http`]) |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::dashboard::{Dashboard, Panel};
use super::{headline, is_top, History, Series};
use crate::record::Snapshot;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// An HTTP answer, before it is written.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
        }
    }
    fn json(v: &Value) -> Reply {
        Reply::ok(
            "application/json",
            serde_json::to_vec(v).unwrap_or_default(),
        )
    }
    pub fn error(status: u16, msg: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{msg}\n").into_bytes(),
        }
    }
}

/// Answer `GET path?query` from the history (every route but `/events`).
pub fn route(path: &str, query: &str, h: &History, dash: &Dashboard) -> Reply {
    match path {
        "/" | "/index.html" => Reply::ok("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => Reply::ok("text/javascript; charset=utf-8", APP_JS),
        "/style.css" => Reply::ok("text/css; charset=utf-8", STYLE_CSS),
        "/api/stats" => Reply::json(&stats(h, dash)),
        "/api/series" => series(h, &params(query)),
        "/api/snapshots" => Reply::json(&snapshots(h)),
        "/metrics" => Reply::ok("text/plain; version=0.0.4; charset=utf-8", metrics(h)),
        _ => Reply::error(404, "not found"),
    }
}

/// Query parameters, percent-decoded (`+` is a space).
pub fn params(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn points_json(s: &Series, name: &str) -> Vec<Value> {
    s.points(name)
        .into_iter()
        .map(|(start, secs, v, fin)| json!([start, secs, v, fin]))
        .collect()
}

/// How many keys a stat's panel shows before "N more".
pub const SHOWN_KEYS: usize = 20;

/// `/api/stats`: one entry per stat (in the dashboard's order, or by name), each key with
/// its value names, the headline value drawn, its points `[start, secs, value, final]` and
/// its latest value; keys sorted by latest value, largest first.
pub fn stats(h: &History, dash: &Dashboard) -> Value {
    let mut by_stat: BTreeMap<&str, Vec<(&Option<String>, &Series)>> = BTreeMap::new();
    for ((stat, key), s) in &h.series {
        by_stat.entry(stat).or_default().push((key, s));
    }
    let default_panels: Vec<Panel>;
    let panels: &[Panel] = if dash.panels.is_empty() {
        default_panels = by_stat
            .keys()
            .map(|s| Panel {
                stat: s.to_string(),
                ..Panel::default()
            })
            .collect();
        &default_panels
    } else {
        &dash.panels
    };
    let mut out = Vec::new();
    for p in panels {
        let Some(keys) = by_stat.get(p.stat.as_str()) else {
            out.push(
                json!({"stat": p.stat, "title": p.title, "unit": p.unit, "keys": [],
                "warning": p.warning, "critical": p.critical}),
            );
            continue;
        };
        let mut cells: Vec<(f64, Value)> = Vec::new();
        for (key, s) in keys {
            if !p.keys.is_empty() && !key.as_ref().is_some_and(|k| p.keys.contains(k)) {
                continue;
            }
            let top = is_top(&s.names);
            let name = match &p.value {
                Some(v) => Some(v.as_str()),
                None if top => None,
                None => headline(&s.names),
            };
            let (points, latest) = match name {
                Some(n) => (points_json(s, n), s.latest(n)),
                None => (Vec::new(), None),
            };
            // A top: the latest window's values, largest first (`(other)`, the rest of the
            // count, is not one of them).
            let ranked: Vec<Value> = if top {
                let mut r: Vec<(&str, f64)> = s
                    .windows
                    .values()
                    .next_back()
                    .map(|w| {
                        s.names
                            .iter()
                            .zip(&w.vals)
                            .filter(|(n, v)| {
                                !v.is_nan()
                                    && !super::FIXED.contains(&n.as_str())
                                    && n.as_str() != "(other)"
                            })
                            .map(|(n, &v)| (n.as_str(), v))
                            .collect()
                    })
                    .unwrap_or_default();
                r.sort_by(|a, b| b.1.total_cmp(&a.1));
                r.truncate(5);
                r.into_iter().map(|(n, v)| json!([n, v])).collect()
            } else {
                Vec::new()
            };
            let sort = latest
                .map(|l| l.1)
                .or_else(|| ranked.first().and_then(|r| r[1].as_f64()))
                .unwrap_or(f64::NEG_INFINITY);
            let mut level = latest.map_or("", |(_, v, _)| {
                if p.critical.is_some_and(|l| l.crossed(v)) {
                    "critical"
                } else if p.warning.is_some_and(|l| l.crossed(v)) {
                    "warning"
                } else {
                    ""
                }
            });
            // The same evaluation as pulse-alert's (--rules): a firing alert colours the
            // cell by its severity, critical over warning.
            let alerts = h.alerts.get(&(p.stat.clone(), (*key).clone()));
            for a in alerts.into_iter().flatten() {
                if a.phase == crate::alert::Phase::Firing {
                    if a.severity == "critical" {
                        level = "critical";
                    } else if level.is_empty() {
                        level = "warning";
                    }
                }
            }
            cells.push((
                sort,
                json!({
                    "key": key,
                    "values": s.names,
                    "value": name,
                    "points": points,
                    "latest": latest.map(|l| json!({"start": l.0, "value": l.1, "final": l.2})),
                    "top": ranked,
                    "level": level,
                    "alerts": alerts.map_or(Vec::new(), |v| v.iter().map(|a| json!({
                        "rule": a.rule, "state": a.phase, "severity": a.severity, "since": a.since,
                    })).collect::<Vec<_>>()),
                }),
            ));
        }
        cells.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.push(json!({
            "stat": p.stat,
            "title": p.title,
            "unit": p.unit,
            "warning": p.warning,
            "critical": p.critical,
            "keys": cells.into_iter().map(|c| c.1).collect::<Vec<_>>(),
        }));
    }
    json!({
        "stats": out,
        "series": h.count,
        "overflow": h.overflow,
        "ingested": h.ingested,
        "read_secs": h.read_secs,
        "read_done": h.read_done,
        "version": h.version,
    })
}

/// `/api/series?stat=S&key=K&value=V`: the points of one series (no `key` parameter: the
/// stat without a group-by). Without `value`, every value of the stat and key. With
/// `format=csv`, CSV (`start,secs,value,final`, or `start,secs,final,NAME...`).
pub fn series(h: &History, q: &BTreeMap<String, String>) -> Reply {
    let Some(stat) = q.get("stat") else {
        return Reply::error(400, "stat= is missing");
    };
    let id = (stat.clone(), q.get("key").cloned());
    let Some(s) = h.series.get(&id) else {
        return Reply::error(404, "no such stat and key");
    };
    let csv = q.get("format").is_some_and(|f| f == "csv");
    match q.get("value") {
        Some(v) => {
            if !s.names.contains(v) {
                return Reply::error(404, "no such value");
            }
            let pts = s.points(v);
            if csv {
                let mut out = String::from("start,secs,value,final\n");
                for (start, secs, val, fin) in pts {
                    let _ = writeln!(out, "{start},{secs},{val},{fin}");
                }
                return Reply::ok("text/csv; charset=utf-8", out);
            }
            let points: Vec<Value> = pts
                .into_iter()
                .map(|(start, secs, value, fin)| {
                    json!({"start": start, "secs": secs, "value": value, "final": fin})
                })
                .collect();
            Reply::json(&json!({"stat": stat, "key": id.1, "value": v, "points": points}))
        }
        None => {
            if csv {
                let mut out = String::from("start,secs,final");
                for n in &s.names {
                    out.push(',');
                    out.push_str(&csv_field(n));
                }
                out.push('\n');
                for (start, w) in &s.windows {
                    let _ = write!(out, "{start},{},{}", w.secs, w.is_final);
                    for v in &w.vals {
                        out.push(',');
                        if !v.is_nan() {
                            let _ = write!(out, "{v}");
                        }
                    }
                    out.push('\n');
                }
                return Reply::ok("text/csv; charset=utf-8", out);
            }
            let points: Vec<Value> = s
                .windows
                .iter()
                .map(|(start, w)| {
                    let values: serde_json::Map<String, Value> = s
                        .names
                        .iter()
                        .zip(&w.vals)
                        .filter(|(_, v)| !v.is_nan())
                        .map(|(n, v)| (n.clone(), json!(v)))
                        .collect();
                    json!({"start": start, "secs": w.secs, "final": w.is_final, "values": values})
                })
                .collect();
            Reply::json(&json!({"stat": stat, "key": id.1, "values": s.names, "points": points}))
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `/api/snapshots`: every window held, as snapshots, sorted by stat, key and start.
pub fn snapshots(h: &History) -> Value {
    let mut ids: Vec<&(String, Option<String>)> = h.series.keys().collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let s = &h.series[id];
        for (&start, w) in &s.windows {
            let snap = Snapshot {
                stat: id.0.clone(),
                key: id.1.clone(),
                start,
                secs: w.secs,
                is_final: w.is_final,
                values: s
                    .names
                    .iter()
                    .zip(&w.vals)
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(n, &v)| (n.clone(), v))
                    .collect(),
            };
            out.push(serde_json::to_value(snap).unwrap_or(Value::Null));
        }
    }
    Value::Array(out)
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, anything else becomes `_`.
pub fn metric_name(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(p.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        }));
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label value escaped for the text format: `\\`, `\"` and `\n`.
pub fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `/metrics`: each series' latest final value as a gauge named
/// `pulse_<stat>_<value>` (sanitised), with the key as label `key` when there is one. A `top`
/// stat's values become `pulse_<stat>{key="...",value="NAME"}`.
pub fn metrics(h: &History) -> String {
    // name -> lines
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((stat, key), s) in &h.series {
        let top = is_top(&s.names);
        for n in &s.names {
            let Some((_, v)) = s.latest_final(n) else {
                continue;
            };
            let (name, mut labels) = if top {
                (
                    metric_name(&["pulse", stat]),
                    vec![format!("value=\"{}\"", label_value(n))],
                )
            } else {
                (metric_name(&["pulse", stat, n]), Vec::new())
            };
            if let Some(k) = key {
                labels.insert(0, format!("key=\"{}\"", label_value(k)));
            }
            let mut line = name.clone();
            if !labels.is_empty() {
                let _ = write!(line, "{{{}}}", labels.join(","));
            }
            let _ = write!(line, " {}", prom_number(v));
            families.entry(name).or_default().push(line);
        }
    }
    let mut out = String::new();
    for (name, mut lines) in families {
        lines.sort();
        let _ = writeln!(out, "# TYPE {name} gauge");
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

fn prom_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::Keep;
    use super::*;

    fn history() -> History {
        let mut h = History::new(Keep::Windows(60), 1000);
        for (key, start, fin, count) in [
            ("200", 0, true, 5.0),
            ("200", 60, false, 7.0),
            ("404", 0, true, 9.0),
            ("a\"b\\c\nd", 0, true, 1.0),
        ] {
            h.add(Snapshot {
                stat: "web.status-code".into(),
                key: Some(key.into()),
                start,
                secs: 60,
                is_final: fin,
                values: [
                    ("count".to_string(), count),
                    ("rate".to_string(), count / 60.0),
                ]
                .into_iter()
                .collect(),
            });
        }
        h
    }

    #[test]
    fn metrics_are_sanitised_escaped_and_final_only() {
        let m = metrics(&history());
        assert!(
            m.contains("# TYPE pulse_web_status_code_count gauge\n"),
            "{m}"
        );
        assert!(
            m.contains("pulse_web_status_code_count{key=\"200\"} 5\n"),
            "{m}"
        );
        assert!(
            m.contains("pulse_web_status_code_count{key=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{m}"
        );
        assert_eq!(metric_name(&["9lives", "x.y"]), "_9lives_x_y");
    }

    #[test]
    fn stats_sorted_by_latest_and_series_as_csv() {
        let h = history();
        let v = stats(&h, &Dashboard::default());
        let keys: Vec<&str> = v["stats"][0]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["404", "200", "a\"b\\c\nd"]);
        assert_eq!(
            v["stats"][0]["keys"][1]["points"].as_array().unwrap().len(),
            2
        );
        let r = route(
            "/api/series",
            "stat=web.status-code&key=200&value=count&format=csv",
            &h,
            &Dashboard::default(),
        );
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "start,secs,value,final\n0,60,5,true\n60,60,7,false\n"
        );
        assert_eq!(params("a=%2Fx+y&b")["a"], "/x y");
    }
}
