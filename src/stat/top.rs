//! `top k`: the `k` most frequent values of a field, with their rates.
//!
//! State: an exact count per distinct value, for at most [`MAX_VALUES`] (10,000) distinct
//! values; once that many are held, occurrences of further new values are counted under
//! the value [`OTHER`] (`"(other)"`). Memory: about
//! the value's length plus ~40 bytes per distinct value, so at most a few MiB.
//!
//! Merge adds the counts of equal values. It is exact (commutative and associative) as
//! long as the merged states together hold at most 10,000 distinct values; past that,
//! which values keep their own count depends on the order of arrival.
//!
//! Snapshot values: `count` (all occurrences), and for each of the `k` most frequent
//! values, one entry named by the value text itself whose number is its rate per second
//! (count / window seconds). Ties are ranked by value text, so results are deterministic.
//! `(other)` is no value: it takes none of the `k` places, and is given after them (as
//! `(other)`, its rate) when there is one.
//! (A value spelled `count` is overshadowed by the total.) A value longer than
//! [`super::STATE_TEXT`] is counted under its cut form ([`super::cut_marked`]; pulse-fragment
//! cuts longer values before, at `--max-value-len`). JSON state:
//! `{"counts": {"value": n, ...}}`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::hash::FastMap;
use super::{expect_fields, put};

/// Most distinct values counted exactly per state.
pub const MAX_VALUES: usize = 10_000;
/// Where occurrences of values beyond [`MAX_VALUES`] are counted.
pub const OTHER: &str = "(other)";

#[derive(Clone, Debug, PartialEq)]
pub struct Top {
    k: usize,
    counts: FastMap<String, u64>,
}

impl Top {
    pub fn new(k: usize) -> Top {
        Top {
            k,
            counts: FastMap::default(),
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// Count one occurrence of `value`; allocates only for a value not seen before.
    #[inline]
    pub fn add(&mut self, value: &str) {
        self.add_n(value, 1);
    }

    fn add_n(&mut self, value: &str, n: u64) {
        let value = &*super::cut_text(value);
        if let Some(c) = self.counts.get_mut(value) {
            *c += n;
            return;
        }
        let held = self.counts.len() - usize::from(self.counts.contains_key(OTHER));
        let key = if held < MAX_VALUES { value } else { OTHER };
        *self.counts.entry(key.to_string()).or_insert(0) += n;
    }

    pub fn merge(&mut self, other: &Top) {
        // Visit in a fixed order so that overflow, when it happens, is deterministic.
        let mut theirs: Vec<(&String, &u64)> = other.counts.iter().collect();
        theirs.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (v, &n) in theirs {
            self.add_n(v, n);
        }
    }

    /// The total number of occurrences.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `k` most frequent values with their counts, most frequent first, ties by value
    /// (never [`OTHER`], which is no value).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self
            .counts
            .iter()
            .filter(|(v, _)| v.as_str() != OTHER)
            .map(|(v, &n)| (v.as_str(), n))
            .collect();
        let by = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if all.len() > self.k && self.k > 0 {
            all.select_nth_unstable_by(self.k - 1, by);
        }
        all.truncate(self.k);
        all.sort_unstable_by(by);
        all
    }

    pub fn values(&self, secs: u32, out: &mut BTreeMap<String, f64>) {
        let secs = f64::from(secs.max(1));
        for (v, n) in self.ranked() {
            put(out, v, n as f64 / secs);
        }
        if let Some(&n) = self.counts.get(OTHER) {
            put(out, OTHER, n as f64 / secs);
        }
        put(out, "count", self.total() as f64);
    }

    pub fn to_json(&self) -> Value {
        let counts: Map<String, Value> = self
            .counts
            .iter()
            .map(|(v, &n)| (v.clone(), Value::from(n)))
            .collect();
        json!({ "counts": counts })
    }

    pub fn from_json(k: usize, v: &Value) -> Result<Top, String> {
        expect_fields(v, &["counts"])?;
        let obj = v
            .get("counts")
            .and_then(Value::as_object)
            .ok_or("state field \"counts\" missing or not an object")?;
        if obj.len() > MAX_VALUES + 1 {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        let mut counts = FastMap::with_capacity_and_hasher(obj.len(), Default::default());
        for (val, n) in obj {
            let n = n
                .as_u64()
                .ok_or_else(|| format!("count of {val:?} is not a non-negative integer"))?;
            *counts.entry(super::cut_text(val).to_string()).or_insert(0) += n;
        }
        Ok(Top { k, counts })
    }

    pub fn heap_bytes(&self) -> usize {
        let table = self.counts.capacity() * (std::mem::size_of::<(String, u64)>() + 1);
        table + self.counts.keys().map(String::capacity).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_count_then_value() {
        let mut t = Top::new(2);
        for v in ["b", "a", "c", "c", "b", "a", "c", "d"] {
            t.add(v);
        }
        assert_eq!(t.ranked(), vec![("c", 3), ("a", 2)]);
        let mut out = BTreeMap::new();
        t.values(10, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out["count"], 8.0);
        assert_eq!(out["c"], 0.3);
        assert_eq!(out["a"], 0.2);
        assert_eq!(Top::from_json(2, &t.to_json()).unwrap(), t);
        assert_eq!(Top::new(0).ranked(), vec![]);
    }

    #[test]
    fn overflow_goes_to_other() {
        let mut t = Top::new(3);
        for i in 0..MAX_VALUES + 50 {
            t.add(&i.to_string());
        }
        t.add("0");
        assert_eq!(t.counts.len(), MAX_VALUES + 1);
        assert_eq!(t.counts[OTHER], 50);
        assert_eq!(t.counts["0"], 2);
        assert_eq!(t.total(), MAX_VALUES as u64 + 51);
        // `(other)` takes none of the k places, and is given after them.
        assert_eq!(t.ranked(), vec![("0", 2), ("1", 1), ("10", 1)]);
        let mut out = BTreeMap::new();
        t.values(10, &mut out);
        assert_eq!(out[OTHER], 5.0);
        assert_eq!(out["0"], 0.2);
        assert_eq!(out.len(), 5);
        assert!(t.heap_bytes() > MAX_VALUES * 32);
        assert_eq!(Top::from_json(3, &t.to_json()).unwrap(), t);
    }
}
