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

/// The population variance `(n·Σx² − (Σx)²) / n²` computed in integers from exact sums,
/// rounded once at the end; `None` when a sum is not exact or the integers overflow.
fn exact_variance(n: u64, sum: &ExactSum, sumsq: &ExactSum) -> Option<f64> {
    let (s, ds) = sum.exact()?;
    let (q, dq) = sumsq.exact()?;
    // Both terms at scale k = max(dq, 2·ds).
    let k = dq.max(2 * ds);
    let n = i128::from(n);
    let nq = n.checked_mul(q)?.checked_mul(10i128.checked_pow(k - dq)?)?;
    let s2 = s
        .checked_mul(s)?
        .checked_mul(10i128.checked_pow(k - 2 * ds)?)?;
    let mut num = nq.checked_sub(s2)?;
    // One spelling per value (sums may hold `1.50` or `1.5`, by the order they were
    // merged in), so that one value always rounds the same way.
    let mut k = k;
    while k > 0 && num % 10 == 0 {
        num /= 10;
        k -= 1;
    }
    let n = n as f64;
    Some(num.max(0) as f64 / (n * n) / 10f64.powi(k as i32))
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
        // From the exact sums while they are (`sumsq / n - mean²` in floating point loses
        // every digit of a small spread around a large mean). Otherwise rounding can make
        // the variance a hair negative when all values are equal; an overflowed sum of
        // squares gives no stddev at all (`max` would turn NaN into 0).
        let var = exact_variance(self.count, &self.sum, &self.sumsq)
            .unwrap_or_else(|| self.sumsq.get() / n - mean * mean);
        // No variance exceeds (max − min)² / 4 (Popoviciu): a bound on what cancellation in
        // the floating-point formula can make of a small spread around a huge mean.
        let half = (self.max - self.min) / 2.0;
        let var = if var.is_finite() {
            var.min(half * half)
        } else {
            var
        };
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

    /// A small spread around a large mean: `sumsq / n - mean²` in floating point gave 0.
    #[test]
    fn stddev_of_a_small_spread_around_a_large_mean() {
        let pstdev = |xs: &[f64]| {
            let mut s = Summary::default();
            xs.iter().for_each(|&x| s.add(x));
            let mut out = BTreeMap::new();
            s.values(&mut out);
            out["stddev"]
        };
        // Epoch milliseconds: 1774754100123 + i % 3; the true value is sqrt(2/3).
        let ms: Vec<f64> = (0..999)
            .map(|i| 1774754100123.0 + f64::from(i % 3))
            .collect();
        let want = (2.0f64 / 3.0).sqrt();
        assert!((pstdev(&ms) - want).abs() < 1e-12, "{}", pstdev(&ms));
        let tenths: Vec<f64> = (0..999)
            .map(|i| [100000000.1, 100000000.2, 100000000.3][i % 3])
            .collect();
        assert!((pstdev(&tenths) - want / 10.0).abs() < 1e-12);
        // Merged parts give the same.
        let (mut a, mut b) = (Summary::default(), Summary::default());
        ms[..500].iter().for_each(|&x| a.add(x));
        ms[500..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        let mut out = BTreeMap::new();
        a.values(&mut out);
        assert_eq!(out["stddev"], pstdev(&ms));
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
