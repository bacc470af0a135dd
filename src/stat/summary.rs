//! `summary`: count, sum, sum of squares, minimum and maximum of a numeric field.
//!
//! State: five numbers (40 bytes, no heap). Merge adds the counts and sums and takes the
//! min of the mins and the max of the maxes. Snapshot values: `count`, `sum`, `mean`,
//! `min`, `max`, `stddev` (population standard deviation, from the sum of squares); an
//! empty summary gives only `count` 0. NaN and infinite inputs are ignored.
//! JSON state: `{"count","sum","sumsq","min","max"}` (`min`/`max` absent when empty).
//! The sums are [`ExactSum`]s: exact, and so independent of how the input was split, while
//! the values are whole numbers.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::exact::ExactSum;
use super::{expect_fields, get_finite, get_u64, num, put};

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    count: u64,
    sum: ExactSum,
    sumsq: ExactSum,
    min: f64,
    max: f64,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary {
            count: 0,
            sum: ExactSum::default(),
            sumsq: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Summary {
    #[inline]
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        ExactSum::add_with_square(&mut self.sum, &mut self.sumsq, x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Summary) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        self.sumsq.merge(&other.sumsq);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn values(&self, out: &mut BTreeMap<String, f64>) {
        put(out, "count", self.count as f64);
        if self.count == 0 {
            return;
        }
        let n = self.count as f64;
        let sum = self.sum.get();
        let mean = sum / n;
        put(out, "sum", sum);
        put(out, "mean", mean);
        put(out, "min", self.min);
        put(out, "max", self.max);
        // Rounding can make the variance a hair negative when all values are equal; an
        // overflowed sum of squares gives no stddev at all (`max` would turn NaN into 0).
        let var = self.sumsq.get() / n - mean * mean;
        if var.is_finite() {
            put(out, "stddev", var.max(0.0).sqrt());
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("count".into(), Value::from(self.count));
        m.insert("sum".into(), self.sum.to_json());
        m.insert("sumsq".into(), self.sumsq.to_json());
        if self.count > 0 {
            m.insert("min".into(), num(self.min));
            m.insert("max".into(), num(self.max));
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Result<Summary, String> {
        expect_fields(v, &["count", "sum", "sumsq", "min", "max"])?;
        let count = get_u64(v, "count")?;
        let mut s = Summary {
            count,
            sum: ExactSum::from_json(v.get("sum"), "sum")?,
            sumsq: ExactSum::from_json(v.get("sumsq"), "sumsq")?,
            ..Summary::default()
        };
        if count > 0 {
            s.min = get_finite(v, "min")?;
            s.max = get_finite(v, "max")?;
            if s.min > s.max {
                return Err("state min is greater than max".into());
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_population_stddev() {
        let mut s = Summary::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN] {
            s.add(x);
        }
        let mut out = BTreeMap::new();
        s.values(&mut out);
        assert_eq!(out["count"], 8.0);
        assert_eq!(out["sum"], 40.0);
        assert_eq!(out["mean"], 5.0);
        assert_eq!(out["min"], 2.0);
        assert_eq!(out["max"], 9.0);
        assert_eq!(out["stddev"], 2.0);
        assert_eq!(
            s.to_json().to_string(),
            r#"{"count":8,"max":9,"min":2,"sum":40,"sumsq":232}"#
        );
        assert_eq!(Summary::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn empty_gives_count_zero_only() {
        let s = Summary::default();
        let mut out = BTreeMap::new();
        s.values(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out["count"], 0.0);
        assert_eq!(Summary::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn overflowing_squares_never_give_nan() {
        let mut s = Summary::default();
        s.add(1e300);
        s.add(-1e300);
        s.add(f64::MAX);
        s.add(f64::MAX);
        let mut out = BTreeMap::new();
        s.values(&mut out);
        assert!(out.values().all(|v| v.is_finite()));
        assert!(!out.contains_key("stddev"));
        assert_eq!(Summary::from_json(&s.to_json()).unwrap(), s);
    }
}
