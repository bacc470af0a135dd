//! pulse-web's library: the bounded history of snapshots ([`History`]), the dashboard file
//! ([`dashboard`]), the routes ([`routes`]) and the HTTP server ([`http`]).
//!
//! Routes take plain data and return bytes, so they are tested without a socket; the page's
//! only data source is the JSON API, so a test of the API is a test of what the page shows.

pub mod dashboard;
pub mod http;
pub mod routes;

use std::collections::{BTreeMap, HashMap};

use crate::record::Snapshot;
use crate::sink::SnapshotRef;

/// How much history each series keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The last N windows.
    Windows(usize),
    /// The windows that end within this many seconds of the newest one's end.
    Secs(i64),
}

/// One window of one stat and key: the latest snapshot's values, in the order of the
/// series' value names (NaN where a snapshot lacked a value).
#[derive(Debug, Clone)]
pub struct Window {
    pub secs: u32,
    pub is_final: bool,
    pub vals: Vec<f64>,
}

/// The history of one stat and key: a ring of windows, bounded by [`Keep`].
///
/// Memory: about 48 bytes plus 8 bytes per value name for each window held, so 60 windows of
/// 5 values take about 5 KiB.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Value names, in first-seen order.
    pub names: Vec<String>,
    /// Window start → values.
    pub windows: BTreeMap<i64, Window>,
}

impl Series {
    /// The latest value of `name`, with its window start and finality.
    pub fn latest(&self, name: &str) -> Option<(i64, f64, bool)> {
        let i = self.names.iter().position(|n| n == name)?;
        self.windows.iter().rev().find_map(|(&s, w)| {
            w.vals
                .get(i)
                .filter(|v| !v.is_nan())
                .map(|&v| (s, v, w.is_final))
        })
    }

    /// The latest final value of `name`.
    pub fn latest_final(&self, name: &str) -> Option<(i64, f64)> {
        let i = self.names.iter().position(|n| n == name)?;
        self.windows.iter().rev().find_map(|(&s, w)| {
            w.vals
                .get(i)
                .filter(|v| w.is_final && !v.is_nan())
                .map(|&v| (s, v))
        })
    }

    /// Points of `name`: (start, secs, value, final), oldest first.
    pub fn points(&self, name: &str) -> Vec<(i64, u32, f64, bool)> {
        let Some(i) = self.names.iter().position(|n| n == name) else {
            return Vec::new();
        };
        self.windows
            .iter()
            .filter_map(|(&s, w)| {
                w.vals
                    .get(i)
                    .filter(|v| !v.is_nan())
                    .map(|&v| (s, w.secs, v, w.is_final))
            })
            .collect()
    }
}

/// Stat name, key.
pub type SeriesId = (String, Option<String>);

/// A [`SeriesId`] borrowed from a snapshot being read, to look a series up without
/// allocating: it hashes as the tuple does (field by field) and compares equal to it.
#[derive(Hash)]
struct IdRef<'a>(&'a str, Option<&'a str>);

impl hashbrown::Equivalent<SeriesId> for IdRef<'_> {
    fn equivalent(&self, id: &SeriesId) -> bool {
        self.0 == id.0 && self.1 == id.1.as_deref()
    }
}

/// Every series held, bounded by `max_series` (one series per stat, key and value name).
#[derive(Debug)]
pub struct History {
    keep: Keep,
    max_series: usize,
    pub series: hashbrown::HashMap<SeriesId, Series>,
    /// Series (stat, key, value name) currently held.
    pub count: usize,
    /// Snapshots whose new series did not fit under `max_series` (not held).
    pub overflow: u64,
    /// Snapshots taken in.
    pub ingested: u64,
    /// Bumped on every change, for the live stream.
    pub version: u64,
    /// With `--rules`: the pending and firing alerts of each stat and key.
    pub alerts: HashMap<SeriesId, Vec<crate::alert::Active>>,
    /// Seconds from the reader's first snapshot to the latest it took in (for input read
    /// once, the time it took to read it), as the reader reports it.
    pub read_secs: f64,
    /// Whether the input was read to its end (not with `--follow`, which never ends).
    pub read_done: bool,
}

impl History {
    pub fn new(keep: Keep, max_series: usize) -> History {
        History {
            keep,
            max_series,
            series: hashbrown::HashMap::new(),
            count: 0,
            overflow: 0,
            ingested: 0,
            version: 0,
            alerts: HashMap::new(),
            read_secs: 0.0,
            read_done: false,
        }
    }

    /// Replace the alerts shown (pulse-web `--rules`).
    pub fn set_alerts(&mut self, active: Vec<crate::alert::Active>) {
        let mut by: HashMap<SeriesId, Vec<crate::alert::Active>> = HashMap::new();
        for a in active {
            by.entry((a.stat.clone(), a.key.clone()))
                .or_default()
                .push(a);
        }
        if by != self.alerts {
            self.alerts = by;
            self.version += 1;
        }
    }

    /// Take in one snapshot: it replaces what the same window held. A snapshot older than
    /// what the history keeps is ignored; one that would add series past `max_series` is
    /// counted in `overflow` and dropped.
    pub fn add(&mut self, snap: Snapshot) {
        self.add_ref(&SnapshotRef::from(&snap));
    }

    /// [`History::add`] of a snapshot as read: nothing is allocated unless it brings a new
    /// series, a new value name or a new window.
    pub fn add_ref(&mut self, snap: &SnapshotRef) {
        self.ingested += 1;
        let id = IdRef(&snap.stat, snap.key.as_deref());
        let series = match self.series.get_mut(&id) {
            Some(s) => s,
            None => {
                if self.count + snap.values.len() > self.max_series {
                    self.overflow += 1;
                    return;
                }
                self.series
                    .entry((
                        snap.stat.to_string(),
                        snap.key.as_deref().map(str::to_string),
                    ))
                    .or_default()
            }
        };
        // The usual case: the same value names as before, in the same (sorted) order.
        let same_names = series.names.len() == snap.values.len()
            && series
                .names
                .iter()
                .zip(&snap.values)
                .all(|(a, (b, _))| a == b);
        let new_names = if same_names {
            0
        } else {
            snap.values
                .iter()
                .filter(|(k, _)| !series.names.iter().any(|n| n == k))
                .count()
        };
        if new_names > 0 && self.count + new_names > self.max_series {
            self.overflow += 1;
            return;
        }
        // Too old to keep?
        if let Some((&newest, w)) = series.windows.iter().next_back() {
            let full = match self.keep {
                Keep::Windows(n) => series.windows.len() >= n,
                Keep::Secs(_) => true,
            };
            let oldest = *series.windows.keys().next().unwrap();
            let too_old = match self.keep {
                Keep::Windows(_) => full && snap.start < oldest,
                Keep::Secs(d) => {
                    snap.start + i64::from(snap.secs) <= newest + i64::from(w.secs) - d
                }
            };
            if too_old {
                return;
            }
        }
        if new_names > 0 {
            for (k, _) in &snap.values {
                if !series.names.iter().any(|n| n == k) {
                    series.names.push(k.to_string());
                }
            }
        }
        self.count += new_names;
        // The vector of the window replaced, or of the oldest one about to leave a full
        // ring, is reused.
        let mut vals = match series.windows.get_mut(&snap.start) {
            Some(w) => std::mem::take(&mut w.vals),
            None => match self.keep {
                Keep::Windows(n) if series.windows.len() >= n => series
                    .windows
                    .pop_first()
                    .map(|(_, w)| w.vals)
                    .unwrap_or_default(),
                _ => Vec::with_capacity(series.names.len()),
            },
        };
        vals.clear();
        if same_names {
            vals.extend(snap.values.iter().map(|&(_, v)| v));
        } else {
            vals.extend(series.names.iter().map(|n| snap.get(n).unwrap_or(f64::NAN)));
        }
        series.windows.insert(
            snap.start,
            Window {
                secs: snap.secs,
                is_final: snap.is_final,
                vals,
            },
        );
        match self.keep {
            Keep::Windows(n) => {
                while series.windows.len() > n {
                    series.windows.pop_first();
                }
            }
            Keep::Secs(d) => {
                let (&newest, w) = series.windows.iter().next_back().unwrap();
                let horizon = newest + i64::from(w.secs) - d;
                while let Some((&s, w)) = series.windows.iter().next() {
                    if s + i64::from(w.secs) <= horizon {
                        series.windows.pop_first();
                    } else {
                        break;
                    }
                }
            }
        }
        self.version += 1;
    }
}

/// The value a stat's cell draws: `p95` for quantiles, `unique`, `mean` for summaries
/// (which have `min`), `sum` for `last`, otherwise `count`, `rate`, or the first name.
pub fn headline(names: &[String]) -> Option<&str> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let pick = if has("p95") {
        "p95"
    } else if has("unique") {
        "unique"
    } else if has("mean") && has("min") {
        "mean"
    } else if has("sum") && has("mean") {
        "sum"
    } else if has("count") {
        "count"
    } else if has("rate") {
        "rate"
    } else {
        return names.first().map(String::as_str);
    };
    Some(pick)
}

/// The value names aggregates other than `top` write (a `top` writes `count` and `error`
/// too, which are no values of its list).
pub const FIXED: &[&str] = &[
    "count", "rate", "sum", "mean", "min", "max", "stddev", "p50", "p90", "p95", "p99", "unique",
    "error",
];

/// Whether a stat is a `top`: it has value names besides the fixed names of other aggregates.
pub fn is_top(names: &[String]) -> bool {
    names.iter().any(|n| !FIXED.contains(&n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(start: i64, fin: bool, vals: &[(&str, f64)]) -> Snapshot {
        Snapshot {
            stat: "s".into(),
            key: Some("k".into()),
            start,
            secs: 60,
            is_final: fin,
            values: vals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn later_snapshot_replaces_and_ring_is_bounded() {
        let mut h = History::new(Keep::Windows(3), 100);
        h.add(snap(0, false, &[("count", 1.0)]));
        h.add(snap(0, true, &[("count", 2.0)]));
        for i in 1..5 {
            h.add(snap(i * 60, true, &[("count", i as f64)]));
        }
        let s = &h.series[&("s".to_string(), Some("k".to_string()))];
        assert_eq!(s.windows.len(), 3);
        assert_eq!(s.latest("count"), Some((240, 4.0, true)));
        // Older than the ring holds: ignored.
        h.add(snap(0, true, &[("count", 9.0)]));
        let s = &h.series[&("s".to_string(), Some("k".to_string()))];
        assert_eq!(s.points("count")[0].0, 120);
        assert_eq!(h.count, 1);
    }

    #[test]
    fn value_names_in_first_seen_order_and_windows_reused() {
        let mut h = History::new(Keep::Windows(2), 100);
        h.add(snap(0, true, &[("p99", 1.0), ("count", 2.0)]));
        h.add(snap(60, true, &[("max", 3.0), ("count", 4.0)]));
        h.add(snap(
            120,
            true,
            &[("count", 5.0), ("max", 6.0), ("p99", 7.0)],
        ));
        h.add(snap(120, false, &[("p99", 8.0)]));
        let s = &h.series[&("s".to_string(), Some("k".to_string()))];
        assert_eq!(s.names, ["count", "p99", "max"]);
        assert_eq!(h.count, 3);
        let starts: Vec<i64> = s.windows.keys().copied().collect();
        assert_eq!(starts, [60, 120]);
        assert_eq!(s.windows[&60].vals[0], 4.0);
        assert!(s.windows[&60].vals[1].is_nan());
        assert_eq!(s.windows[&60].vals[2], 3.0);
        assert!(s.windows[&120].vals[0].is_nan());
        assert_eq!(s.windows[&120].vals[1], 8.0);
        assert!(!s.windows[&120].is_final);
        assert_eq!(h.ingested, 4);
        assert_eq!(h.version, 4);
    }

    #[test]
    fn duration_keeps_recent_windows() {
        let mut h = History::new(Keep::Secs(180), 100);
        for i in 0..10 {
            h.add(snap(i * 60, true, &[("count", 1.0)]));
        }
        let s = &h.series[&("s".to_string(), Some("k".to_string()))];
        assert_eq!(
            s.windows.keys().copied().collect::<Vec<_>>(),
            [420, 480, 540]
        );
    }

    #[test]
    fn max_series_counts_overflow() {
        let mut h = History::new(Keep::Windows(60), 2);
        h.add(snap(0, true, &[("count", 1.0), ("rate", 0.1)]));
        let mut other = snap(0, true, &[("count", 1.0)]);
        other.key = Some("other".into());
        h.add(other);
        h.add(snap(
            60,
            true,
            &[("count", 1.0), ("rate", 0.1), ("sum", 3.0)],
        ));
        assert_eq!(h.overflow, 2);
        assert_eq!(h.count, 2);
        assert_eq!(h.series.len(), 1);
    }

    #[test]
    fn headline_per_aggregate() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(headline(&n(&["count", "rate"])), Some("count"));
        assert_eq!(
            headline(&n(&["max", "p50", "p90", "p95", "p99"])),
            Some("p95")
        );
        assert_eq!(
            headline(&n(&["count", "max", "mean", "min", "stddev", "sum"])),
            Some("mean")
        );
        assert_eq!(headline(&n(&["count", "mean", "sum"])), Some("sum"));
        assert_eq!(headline(&n(&["unique"])), Some("unique"));
        assert!(is_top(&n(&["/index.html", "/a"])));
        assert!(!is_top(&n(&["count"])));
        assert!(!is_top(&n(&["count", "error"])));
    }
}
