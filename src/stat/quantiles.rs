//! `quantiles`: p50, p90, p95, p99 of a numeric field from a DDSketch (Masson, Rim and Lee,
//! "DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees",
//! VLDB 2019), plus the exact count, sum, min and max.
//!
//! Each value `x > 0` falls in bucket `i = ceil(log_γ(x))` with `γ = (1 + α) / (1 − α)` and
//! `α = 0.01`; bucket `i` covers `(γ^(i−1), γ^i]` and is reported as `2γ^i / (γ + 1)`, which
//! is within 1% of every value in it. Negative values use a mirrored store indexed by
//! `|x|`; zero has its own counter. A quantile `q` is the value of rank `⌊q(n − 1)⌋`
//! (0-based) in sorted order, so it is within 1% of the exact one, and it is clamped to the
//! exact [min, max].
//!
//! Merge adds bucket counts, so it is exact: merged sketches equal the sketch of the whole.
//!
//! Memory: each store is a dense run of `u64` counters from its lowest to its highest
//! bucket, at most [`MAX_BUCKETS`] (2048) of them = 16 KiB per sign. 2048 buckets span a
//! ratio of γ^2048 ≈ 4·10^17 between the largest and smallest value of one sign, so the cap
//! only matters for data spanning more than 17 orders of magnitude: then the lowest buckets
//! (the values nearest zero) are collapsed into the lowest kept one, and quantiles that
//! fall there lose their accuracy guarantee. Collapsing depends only on the highest bucket
//! ever seen, so merge stays exact. Typical data (latencies spanning 1 ms..100 s) uses
//! about 600 buckets.
//!
//! Snapshot values: `count`, `sum`, `mean`, `min`, `max`, `p50`, `p90`, `p95`, `p99` (only
//! `count` when empty). JSON state:
//! `{"count","sum","min","max","zero":n,"pos":{"offset":i,"counts":[...]},"neg":{...}}`
//! with `zero`, `pos`, `neg` left out when empty, and `min`/`max` when the count is 0.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::exact::ExactSum;
use super::{expect_fields, get_finite, get_u64, num, put};

/// Relative accuracy of every reported quantile.
pub const ALPHA: f64 = 0.01;
/// Most buckets held per sign.
pub const MAX_BUCKETS: usize = 2048;

/// The quantiles reported in snapshots, with their value names.
pub const REPORTED: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)];

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

/// `1 / ln γ`, computed once per process.
fn inv_ln_gamma() -> f64 {
    use std::sync::OnceLock;
    static V: OnceLock<f64> = OnceLock::new();
    *V.get_or_init(|| 1.0 / gamma().ln())
}

/// The bucket index of a positive finite value.
#[inline]
fn index_of(x: f64) -> i32 {
    // |ln x| ≤ 745 for positive finite doubles, so the index fits an i32 comfortably.
    (x.ln() * inv_ln_gamma()).ceil() as i32
}

/// The representative value of bucket `i`: within α of every value the bucket covers.
fn value_of(i: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(i) / (g + 1.0)
}

/// Counters for buckets `offset .. offset + counts.len()`, no zero counters at either end.
#[derive(Clone, Debug, Default, PartialEq)]
struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Add `n` to bucket `i`, growing the run and collapsing its low end past the cap.
    #[inline]
    fn add(&mut self, i: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(n);
            return;
        }
        let lo = self.offset;
        let hi = lo + self.counts.len() as i32 - 1;
        if i >= lo && i <= hi {
            self.counts[(i - lo) as usize] += n;
        } else if i > hi {
            self.counts.resize((i - lo) as usize + 1, 0);
            *self.counts.last_mut().unwrap() += n;
            self.collapse();
        } else {
            // Below the run: grow it downwards, but never past the lowest bucket the cap
            // allows; a value below that belongs in that bucket.
            let target = i.max(hi - (MAX_BUCKETS as i32 - 1));
            if target < lo {
                let grow = (lo - target) as usize;
                self.counts.splice(0..0, std::iter::repeat_n(0, grow));
                self.offset = target;
            }
            self.counts[(target - self.offset) as usize] += n;
        }
    }

    /// Fold the lowest buckets into one so that at most `MAX_BUCKETS` remain.
    fn collapse(&mut self) {
        let len = self.counts.len();
        if len <= MAX_BUCKETS {
            return;
        }
        let extra = len - MAX_BUCKETS;
        let folded: u64 = self.counts[..=extra].iter().sum();
        self.counts.drain(..extra);
        self.counts[0] = folded;
        self.offset += extra as i32;
    }

    fn merge(&mut self, other: &Store) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        // Grow to the union of both runs first, then add, then collapse once.
        let lo = self.offset.min(other.offset);
        let hi =
            (self.offset + self.counts.len() as i32).max(other.offset + other.counts.len() as i32);
        let mut counts = vec![0u64; (hi - lo) as usize];
        for (s, off) in [(&self.counts, self.offset), (&other.counts, other.offset)] {
            let at = (off - lo) as usize;
            for (d, c) in counts[at..at + s.len()].iter_mut().zip(s) {
                *d += c;
            }
        }
        self.offset = lo;
        self.counts = counts;
        self.collapse();
    }

    fn to_json(&self) -> Value {
        json!({ "offset": self.offset, "counts": self.counts })
    }

    fn from_json(v: &Value) -> Result<Store, String> {
        expect_fields(v, &["offset", "counts"])?;
        let offset = v
            .get("offset")
            .and_then(Value::as_i64)
            .and_then(|o| i32::try_from(o).ok())
            .filter(|o| o.abs() < 100_000)
            .ok_or("bucket offset missing or out of range")?;
        let counts: Vec<u64> = v
            .get("counts")
            .and_then(Value::as_array)
            .ok_or("bucket counts missing")?
            .iter()
            .map(|c| {
                c.as_u64()
                    .ok_or("bucket count is not a non-negative integer")
            })
            .collect::<Result<_, _>>()?;
        if counts.len() > MAX_BUCKETS {
            return Err(format!("more than {MAX_BUCKETS} buckets"));
        }
        if counts.first() == Some(&0) || counts.last() == Some(&0) {
            return Err("bucket counts start or end with zero".into());
        }
        Ok(Store { offset, counts })
    }

    fn heap_bytes(&self) -> usize {
        self.counts.capacity() * 8
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Quantiles {
    count: u64,
    sum: ExactSum,
    min: f64,
    max: f64,
    zero: u64,
    pos: Store,
    neg: Store,
}

impl Default for Quantiles {
    fn default() -> Quantiles {
        Quantiles {
            count: 0,
            sum: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            zero: 0,
            pos: Store::default(),
            neg: Store::default(),
        }
    }
}

impl Quantiles {
    /// Add one value; NaN and infinities are ignored.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        self.sum.add(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if x > 0.0 {
            self.pos.add(index_of(x), 1);
        } else if x < 0.0 {
            self.neg.add(index_of(-x), 1);
        } else {
            self.zero += 1;
        }
    }

    pub fn merge(&mut self, other: &Quantiles) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.zero += other.zero;
        self.pos.merge(&other.pos);
        self.neg.merge(&other.neg);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value of rank `⌊q(n − 1)⌋` (0-based, ascending), within 1% of the exact one;
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        // Ascending order: most negative first (the highest negative buckets), then zero,
        // then the positive buckets upwards.
        let mut found = None;
        for (j, &c) in self.neg.counts.iter().enumerate().rev() {
            seen += c;
            if seen > rank {
                found = Some(-value_of(self.neg.offset + j as i32));
                break;
            }
        }
        if found.is_none() {
            seen += self.zero;
            if seen > rank {
                found = Some(0.0);
            }
        }
        if found.is_none() {
            for (j, &c) in self.pos.counts.iter().enumerate() {
                seen += c;
                if seen > rank {
                    found = Some(value_of(self.pos.offset + j as i32));
                    break;
                }
            }
        }
        // Counts always add up (checked on input), but stay total anyway.
        let v = found.unwrap_or(self.max);
        Some(v.clamp(self.min, self.max))
    }

    pub fn values(&self, out: &mut BTreeMap<String, f64>) {
        put(out, "count", self.count as f64);
        if self.count == 0 {
            return;
        }
        put(out, "sum", self.sum.get());
        put(out, "mean", self.sum.get() / self.count as f64);
        put(out, "min", self.min);
        put(out, "max", self.max);
        for (name, q) in REPORTED {
            if let Some(v) = self.quantile(q) {
                put(out, name, v);
            }
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("count".into(), Value::from(self.count));
        m.insert("sum".into(), self.sum.to_json());
        if self.count > 0 {
            m.insert("min".into(), num(self.min));
            m.insert("max".into(), num(self.max));
        }
        if self.zero > 0 {
            m.insert("zero".into(), Value::from(self.zero));
        }
        if !self.pos.is_empty() {
            m.insert("pos".into(), self.pos.to_json());
        }
        if !self.neg.is_empty() {
            m.insert("neg".into(), self.neg.to_json());
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Result<Quantiles, String> {
        expect_fields(v, &["count", "sum", "min", "max", "zero", "pos", "neg"])?;
        let mut s = Quantiles {
            count: get_u64(v, "count")?,
            sum: ExactSum::from_json(v.get("sum"), "sum")?,
            zero: match v.get("zero") {
                None => 0,
                Some(_) => get_u64(v, "zero")?,
            },
            ..Quantiles::default()
        };
        if let Some(p) = v.get("pos") {
            s.pos = Store::from_json(p)?;
        }
        if let Some(n) = v.get("neg") {
            s.neg = Store::from_json(n)?;
        }
        if s.count > 0 {
            s.min = get_finite(v, "min")?;
            s.max = get_finite(v, "max")?;
            if s.min > s.max {
                return Err("state min is greater than max".into());
            }
        }
        let total = s
            .zero
            .checked_add(s.pos.total())
            .and_then(|t| t.checked_add(s.neg.total()));
        if total != Some(s.count) {
            return Err("bucket counts do not add up to count".into());
        }
        Ok(s)
    }

    pub fn heap_bytes(&self) -> usize {
        self.pos.heap_bytes() + self.neg.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact quantile with the sketch's rank definition.
    fn exact(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn rel_err(got: f64, want: f64) -> f64 {
        if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        }
    }

    /// A deterministic log-normal sample (xorshift + Box–Muller), no extra crates.
    fn lognormal(n: usize, seed: u64, mu: f64, sigma: f64) -> Vec<f64> {
        let mut s = seed;
        let mut unif = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u1, u2) = (unif(), unif());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (mu + sigma * z).exp()
            })
            .collect()
    }

    #[test]
    fn within_one_percent_on_lognormal_data() {
        for (seed, mu, sigma) in [(1, 3.0, 1.0), (7, 0.0, 2.5), (42, -5.0, 0.5)] {
            let data = lognormal(50_000, seed, mu, sigma);
            let mut sk = Quantiles::default();
            for &x in &data {
                sk.add(x);
            }
            let mut sorted = data.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let (got, want) = (sk.quantile(q).unwrap(), exact(&sorted, q));
                assert!(
                    rel_err(got, want) <= ALPHA + 1e-9,
                    "seed {seed} q {q}: got {got}, exact {want}"
                );
            }
            assert!(sk.pos.counts.len() < MAX_BUCKETS, "collapsed");
        }
    }

    #[test]
    fn mixed_signs_and_zero() {
        let data: Vec<f64> = (-500..=500).map(|i| f64::from(i) * 0.37).collect();
        let mut sk = Quantiles::default();
        for &x in data.iter().rev() {
            sk.add(x);
        }
        for q in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0] {
            let (got, want) = (sk.quantile(q).unwrap(), exact(&data, q));
            assert!(
                rel_err(got, want) <= ALPHA + 1e-9,
                "q {q}: got {got}, exact {want}"
            );
        }
        assert_eq!(sk.quantile(0.5), Some(0.0));
        assert_eq!(Quantiles::from_json(&sk.to_json()).unwrap(), sk);
    }

    #[test]
    fn values_of_empty_and_single() {
        let mut sk = Quantiles::default();
        let mut out = BTreeMap::new();
        sk.values(&mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec![("count".to_string(), 0.0)]
        );
        sk.add(250.0);
        let mut out = BTreeMap::new();
        sk.values(&mut out);
        for name in ["min", "max", "mean", "sum", "p50", "p90", "p95", "p99"] {
            assert_eq!(out[name], 250.0, "{name}");
        }
        assert_eq!(
            sk.to_json().to_string(),
            format!(
                r#"{{"count":1,"max":250,"min":250,"pos":{{"counts":[1],"offset":{}}},"sum":250}}"#,
                index_of(250.0)
            )
        );
    }

    #[test]
    fn cap_collapses_lowest_buckets_and_stays_mergeable() {
        // 40 orders of magnitude: far more than 2048 buckets.
        let data: Vec<f64> = (-200..200)
            .map(|e| 10f64.powf(f64::from(e) / 10.0))
            .collect();
        let mut whole = Quantiles::default();
        for &x in &data {
            whole.add(x);
        }
        assert_eq!(whole.pos.counts.len(), MAX_BUCKETS);
        assert_eq!(whole.pos.total(), 400);
        let (mut a, mut b) = (Quantiles::default(), Quantiles::default());
        for (i, &x) in data.iter().enumerate() {
            if i % 3 == 0 {
                a.add(x)
            } else {
                b.add(x)
            }
        }
        a.merge(&b);
        assert_eq!(a.pos, whole.pos);
        // The order of arrival does not matter either, even across the cap.
        let mut desc = Quantiles::default();
        for &x in data.iter().rev() {
            desc.add(x);
        }
        assert_eq!(desc, whole);
        // High quantiles are still accurate.
        let q = whole.quantile(0.99).unwrap();
        assert!(rel_err(q, exact(&data, 0.99)) <= ALPHA + 1e-9);
        assert_eq!(Quantiles::from_json(&whole.to_json()).unwrap(), whole);
    }

    #[test]
    fn rejects_inconsistent_state() {
        let bad =
            json!({"count": 2, "sum": 3, "min": 1, "max": 2, "pos": {"offset": 0, "counts": [1]}});
        assert!(Quantiles::from_json(&bad).is_err());
        let bad = json!({"count": 1, "sum": 3, "min": 1, "max": 2, "pos": {"offset": 0, "counts": [1, 0]}});
        assert!(Quantiles::from_json(&bad).is_err());
    }

    proptest! {
        #[test]
        fn any_values_within_alpha(xs in prop::collection::vec(-1e6f64..1e6, 1..300), q in 0.0f64..=1.0) {
            let mut sk = Quantiles::default();
            for &x in &xs { sk.add(x); }
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            let (got, want) = (sk.quantile(q).unwrap(), exact(&sorted, q));
            prop_assert!(rel_err(got, want) <= ALPHA + 1e-9, "got {} want {}", got, want);
        }
    }
}
