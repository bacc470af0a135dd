//! `last func recency`: the latest value of a field per partition (say, per dyno), combined
//! over the partitions that reported recently.
//!
//! State: for each partition, the (time, value) of its latest event; the later time wins,
//! and an exact tie goes to the larger value, so merge is commutative and associative.
//! At most [`MAX_PARTITIONS`] (10,000) partitions are held per state; events of further new
//! partitions are dropped (merge is exact while the union stays within the cap). Memory:
//! about the partition name's length plus ~60 bytes per partition; a name longer than
//! [`super::STATE_TEXT`] is held in its cut form ([`super::cut_marked`]; pulse-fragment cuts
//! longer ones before, at `--max-value-len`).
//!
//! Snapshot values for the window `[start, start + secs)`, over the partitions whose latest
//! time is at least `start + secs − recency`: `count` (how many partitions), and by `func`
//! `sum`, `mean` or `max` of their values (`mean`/`max` left out when there are none;
//! `last count` gives just `count`). JSON state: `{"parts": {"name": [time, value], ...}}`.

use std::collections::{BTreeMap, HashMap};

use super::exact::ExactSum;

use serde_json::{json, Map, Value};

use super::{expect_fields, num, put, LastFn};

/// Most partitions held per state.
pub const MAX_PARTITIONS: usize = 10_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Last {
    func: LastFn,
    recency: u32,
    parts: HashMap<String, (f64, f64)>,
}

/// Whether `(t1, v1)` replaces `(t0, v0)`: later time, or same time and larger value.
#[inline]
fn newer(t1: f64, v1: f64, t0: f64, v0: f64) -> bool {
    t1 > t0 || (t1 == t0 && v1 > v0)
}

impl Last {
    pub fn new(func: LastFn, recency: u32) -> Last {
        Last {
            func,
            recency,
            parts: HashMap::new(),
        }
    }

    pub fn func(&self) -> LastFn {
        self.func
    }

    pub fn recency(&self) -> u32 {
        self.recency
    }

    /// Record `value` for partition `part` at `time` (Unix seconds); non-finite inputs are
    /// ignored. Allocates only for a partition not seen before.
    #[inline]
    pub fn add(&mut self, part: &str, time: f64, value: f64) {
        if !time.is_finite() || !value.is_finite() {
            return;
        }
        let part = &*super::cut_text(part);
        if let Some(tv) = self.parts.get_mut(part) {
            if newer(time, value, tv.0, tv.1) {
                *tv = (time, value);
            }
        } else if self.parts.len() < MAX_PARTITIONS {
            self.parts.insert(part.to_string(), (time, value));
        }
    }

    pub fn merge(&mut self, other: &Last) {
        // Fixed order, so that which partitions fit under the cap is deterministic.
        let mut theirs: Vec<(&String, &(f64, f64))> = other.parts.iter().collect();
        theirs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (p, &(t, v)) in theirs {
            self.add(p, t, v);
        }
    }

    /// The values of the partitions recent at the end of `[start, start + secs)`.
    fn recent(&self, start: i64, secs: u32) -> impl Iterator<Item = f64> + '_ {
        let cutoff = (start + i64::from(secs) - i64::from(self.recency)) as f64;
        self.parts
            .values()
            .filter(move |tv| tv.0 >= cutoff)
            .map(|tv| tv.1)
    }

    pub fn values(&self, start: i64, secs: u32, out: &mut BTreeMap<String, f64>) {
        // The partitions come in hash order, which differs from run to run: an exact sum
        // keeps the result the same.
        // In a fixed order (the partitions are hashed, in an order that changes from one
        // process to the next): a sum of terms too long to be exact then is still one
        // number for one state.
        let mut recent: Vec<f64> = self.recent(start, secs).collect();
        recent.sort_unstable_by(f64::total_cmp);
        let (mut n, mut sum, mut max) = (0u64, ExactSum::default(), f64::NEG_INFINITY);
        for v in recent {
            n += 1;
            sum.add(v);
            max = max.max(v);
        }
        let sum = sum.get();
        put(out, "count", n as f64);
        match self.func {
            LastFn::Sum => put(out, "sum", sum),
            LastFn::Mean if n > 0 => put(out, "mean", sum / n as f64),
            LastFn::Max if n > 0 => put(out, "max", max),
            _ => {}
        }
    }

    pub fn to_json(&self) -> Value {
        let parts: Map<String, Value> = self
            .parts
            .iter()
            .map(|(p, &(t, v))| (p.clone(), json!([num(t), num(v)])))
            .collect();
        json!({ "parts": parts })
    }

    pub fn from_json(func: LastFn, recency: u32, v: &Value) -> Result<Last, String> {
        expect_fields(v, &["parts"])?;
        let obj = v
            .get("parts")
            .and_then(Value::as_object)
            .ok_or("state field \"parts\" missing or not an object")?;
        if obj.len() > MAX_PARTITIONS {
            return Err(format!("more than {MAX_PARTITIONS} partitions"));
        }
        let mut parts = HashMap::with_capacity(obj.len());
        for (p, tv) in obj {
            let pair = match tv.as_array().map(Vec::as_slice) {
                Some([t, v]) => t.as_f64().zip(v.as_f64()),
                _ => None,
            };
            let (t, v) = pair.ok_or_else(|| format!("partition {p:?} is not [time, value]"))?;
            let p = super::cut_text(p).to_string();
            match parts.get(&p) {
                Some(&(t0, v0)) if !newer(t, v, t0, v0) => {}
                _ => {
                    parts.insert(p, (t, v));
                }
            }
        }
        Ok(Last {
            func,
            recency,
            parts,
        })
    }

    pub fn heap_bytes(&self) -> usize {
        let table = self.parts.capacity() * (std::mem::size_of::<(String, (f64, f64))>() + 1);
        table + self.parts.keys().map(String::capacity).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_per_partition_within_recency() {
        let mut l = Last::new(LastFn::Sum, 300);
        l.add("web.1", 1000.0, 5.0);
        l.add("web.1", 1010.0, 7.0);
        l.add("web.1", 1005.0, 100.0); // older: ignored
        l.add("web.2", 1020.0, 3.0);
        l.add("web.3", 600.0, 50.0); // stale by the end of the window
        l.add("web.4", 1020.0, f64::NAN);
        let mut out = BTreeMap::new();
        l.values(960, 60, &mut out); // window end 1020, cutoff 720
        assert_eq!(out["count"], 2.0);
        assert_eq!(out["sum"], 10.0);
        let mut m = Last::new(LastFn::Max, 300);
        m.merge(&l);
        let mut out = BTreeMap::new();
        m.values(960, 60, &mut out);
        assert_eq!(out["max"], 7.0);
        let mut out = BTreeMap::new();
        Last::new(LastFn::Mean, 300).values(960, 60, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(Last::from_json(LastFn::Sum, 300, &l.to_json()).unwrap(), l);
    }

    #[test]
    fn tie_goes_to_larger_value() {
        let (mut a, mut b) = (Last::new(LastFn::Sum, 60), Last::new(LastFn::Sum, 60));
        a.add("p", 10.0, 1.0);
        b.add("p", 10.0, 2.0);
        let mut ab = a.clone();
        ab.merge(&b);
        b.merge(&a);
        assert_eq!(ab, b);
        assert_eq!(ab.parts["p"], (10.0, 2.0));
    }

    /// Terms too long for an exact sum (kB read as MB: ten decimals) still give one sum
    /// for one state, whatever order its hashed partitions are visited in.
    #[test]
    fn a_float_sum_does_not_depend_on_the_hash_order() {
        let sums: Vec<u64> = (0..20)
            .map(|_| {
                let mut l = Last::new(LastFn::Sum, 300);
                for i in 0..40u32 {
                    let kb = 100_000.0 + f64::from(i * 7919 % 400_000);
                    l.add(&format!("web.{i}"), 1000.0, kb / 1024.0 + 0.1);
                }
                let mut out = BTreeMap::new();
                l.values(960, 60, &mut out);
                out["sum"].to_bits()
            })
            .collect();
        assert!(sums.iter().all(|&s| s == sums[0]), "{sums:?}");
    }

    #[test]
    fn caps_partitions() {
        let mut l = Last::new(LastFn::Count, 60);
        for i in 0..MAX_PARTITIONS + 10 {
            l.add(&i.to_string(), 1.0, 1.0);
        }
        assert_eq!(l.parts.len(), MAX_PARTITIONS);
        assert!(Last::from_json(LastFn::Count, 60, &json!({"parts": {"a": [1]}})).is_err());
    }
}
