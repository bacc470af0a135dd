//! `count`: the number of matching events, or the sum of their weights when the stat has a
//! value field.
//!
//! State: one `f64` (exact for integer counts up to 2^53). Memory: 8 bytes, no heap.
//! Merge adds. Snapshot values: `count`, and `rate` = count / window seconds.
//! JSON state: `{"count": n}`, integral counts written as integers.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{expect_fields, get_num, num, put};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Count {
    n: f64,
}

impl Count {
    /// Add one event of weight `w` (1 for a plain count). Non-finite weights are ignored, and
    /// the sum saturates at the largest finite number rather than become infinite.
    #[inline]
    pub fn add(&mut self, w: f64) {
        if w.is_finite() {
            self.n = (self.n + w).clamp(-f64::MAX, f64::MAX);
        }
    }

    pub fn merge(&mut self, other: &Count) {
        self.n = (self.n + other.n).clamp(-f64::MAX, f64::MAX);
    }

    /// The count (or the sum of weights).
    pub fn get(&self) -> f64 {
        self.n
    }

    pub fn values(&self, secs: u32, out: &mut BTreeMap<String, f64>) {
        put(out, "count", self.n);
        if secs > 0 {
            put(out, "rate", self.n / f64::from(secs));
        }
    }

    pub fn to_json(&self) -> Value {
        json!({ "count": num(self.n) })
    }

    pub fn from_json(v: &Value) -> Result<Count, String> {
        expect_fields(v, &["count"])?;
        Ok(Count {
            n: get_num(v, "count")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_weights_and_prints_integers() {
        let mut c = Count::default();
        c.add(1.0);
        c.add(2.0);
        c.add(f64::NAN);
        c.add(f64::INFINITY);
        assert_eq!(c.to_json().to_string(), r#"{"count":3}"#);
        let mut out = BTreeMap::new();
        c.values(60, &mut out);
        assert_eq!(out["count"], 3.0);
        assert_eq!(out["rate"], 0.05);
        c.add(0.5);
        assert_eq!(c.to_json().to_string(), r#"{"count":3.5}"#);
        assert_eq!(Count::from_json(&c.to_json()).unwrap(), c);
        assert!(Count::from_json(&json!({"count": "x"})).is_err());
        assert!(Count::from_json(&json!({"cnt": 1})).is_err());
    }

    #[test]
    fn huge_weights_saturate_instead_of_overflowing() {
        // Found by the values_always_finite property test.
        let mut c = Count::default();
        c.add(3.095590052323379e307);
        c.add(1.4971304178683167e308);
        let mut out = BTreeMap::new();
        c.values(60, &mut out);
        assert_eq!(out["count"], f64::MAX);
        let mut d = c.clone();
        d.merge(&c);
        assert_eq!(d.get(), f64::MAX);
    }
}
