//! Aggregates: what a stat computes, as mergeable states.
//!
//! Each kind lives in its own file and opens with what it computes and its memory cost.
//! Every state is a commutative monoid: [`State::new`] is the identity of [`State::merge`],
//! and folding a list equals merging the folds of any split of it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub mod count;
pub mod last;
pub mod quantiles;
pub mod summary;
pub mod top;
pub mod unique;

/// Which aggregate a stat uses, with its parameters. Its [`fmt::Display`] form is the
/// canonical `agg` string carried by fragments (`count`, `summary`, `quantiles`, `unique`,
/// `top 10`, `last sum 300`); two fragments merge only when their `agg` strings are equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AggSpec {
    /// Number of matching events (or the sum of their weights).
    Count,
    /// count, sum, sum of squares, min, max of a numeric field.
    Summary,
    /// Quantiles of a numeric field from a DDSketch with 1% relative accuracy.
    Quantiles,
    /// Distinct values of a field: exact while small, then HyperLogLog.
    Unique,
    /// The `k` most frequent values of a field.
    Top { k: usize },
    /// The latest value of a field per partition, combined over partitions by `func`;
    /// partitions older than `recency` seconds before the window's end are left out.
    Last { func: LastFn, recency: u32 },
}

/// How `last` combines the latest value of each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LastFn {
    Sum,
    Mean,
    Count,
    Max,
}

impl LastFn {
    pub fn name(self) -> &'static str {
        match self {
            LastFn::Sum => "sum",
            LastFn::Mean => "mean",
            LastFn::Count => "count",
            LastFn::Max => "max",
        }
    }
}

impl fmt::Display for AggSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggSpec::Count => f.write_str("count"),
            AggSpec::Summary => f.write_str("summary"),
            AggSpec::Quantiles => f.write_str("quantiles"),
            AggSpec::Unique => f.write_str("unique"),
            AggSpec::Top { k } => write!(f, "top {k}"),
            AggSpec::Last { func, recency } => write!(f, "last {} {recency}", func.name()),
        }
    }
}

impl FromStr for AggSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<AggSpec, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = || format!("unknown aggregate {s:?}");
        Ok(match words.as_slice() {
            ["count"] => AggSpec::Count,
            ["summary"] => AggSpec::Summary,
            ["quantiles"] => AggSpec::Quantiles,
            ["unique"] => AggSpec::Unique,
            ["top", k] => AggSpec::Top {
                k: k.parse().map_err(|_| bad())?,
            },
            ["last", func, recency] => AggSpec::Last {
                func: match *func {
                    "sum" => LastFn::Sum,
                    "mean" => LastFn::Mean,
                    "count" => LastFn::Count,
                    "max" => LastFn::Max,
                    _ => return Err(bad()),
                },
                recency: recency.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }
}

/// What one event contributes to a stat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input<'a> {
    /// One occurrence (count).
    One,
    /// A number (summary, quantiles; a weight for count).
    Num(f64),
    /// A value as text (unique, top).
    Text(&'a str),
    /// A partition's value at an event time in Unix seconds (last).
    Last {
        part: &'a str,
        time: f64,
        value: f64,
    },
}

/// The mergeable state of one stat for one key and window: one variant per aggregate kind.
///
/// [`State::new`] is the identity of [`State::merge`]; merging is commutative and
/// associative, so fragments may be merged in any order and any tree shape.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Count(count::Count),
    Summary(summary::Summary),
    Quantiles(quantiles::Quantiles),
    Unique(unique::Unique),
    Top(top::Top),
    Last(last::Last),
}

/// Two states of different aggregates (or of the same kind with different parameters)
/// cannot be merged. `left` and `right` are their canonical `agg` strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub left: String,
    pub right: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aggregate mismatch: {} vs {}", self.left, self.right)
    }
}

impl std::error::Error for Mismatch {}

impl State {
    /// The identity (empty state) for this spec.
    pub fn new(spec: &AggSpec) -> State {
        match *spec {
            AggSpec::Count => State::Count(count::Count::default()),
            AggSpec::Summary => State::Summary(summary::Summary::default()),
            AggSpec::Quantiles => State::Quantiles(quantiles::Quantiles::default()),
            AggSpec::Unique => State::Unique(unique::Unique::default()),
            AggSpec::Top { k } => State::Top(top::Top::new(k)),
            AggSpec::Last { func, recency } => State::Last(last::Last::new(func, recency)),
        }
    }

    /// The spec this state was made for (its parameters travel with it, so that states
    /// of `top 5` and `top 10` refuse to merge).
    pub fn spec(&self) -> AggSpec {
        match self {
            State::Count(_) => AggSpec::Count,
            State::Summary(_) => AggSpec::Summary,
            State::Quantiles(_) => AggSpec::Quantiles,
            State::Unique(_) => AggSpec::Unique,
            State::Top(t) => AggSpec::Top { k: t.k() },
            State::Last(l) => AggSpec::Last {
                func: l.func(),
                recency: l.recency(),
            },
        }
    }

    /// Fold one event's contribution. Count: `Input::One` adds 1, `Input::Num(w)` adds `w`.
    /// Summary/Quantiles: `Input::Num(x)` (NaN and infinities ignored). Unique/Top:
    /// `Input::Text(s)`. Last: `Input::Last`. An input of the wrong shape is ignored.
    #[inline]
    pub fn add(&mut self, input: Input<'_>) {
        match (self, input) {
            (State::Count(c), Input::One) => c.add(1.0),
            (State::Count(c), Input::Num(w)) => c.add(w),
            (State::Summary(s), Input::Num(x)) => s.add(x),
            (State::Quantiles(q), Input::Num(x)) => q.add(x),
            (State::Unique(u), Input::Text(t)) => u.add(t),
            (State::Top(t), Input::Text(v)) => t.add(v),
            (State::Last(l), Input::Last { part, time, value }) => l.add(part, time, value),
            _ => {}
        }
    }

    /// Merge another state of the same spec into `self` (commutative, associative,
    /// identity [`State::new`]). States of different specs give [`Mismatch`] and leave
    /// `self` unchanged.
    pub fn merge(&mut self, other: &State) -> Result<(), Mismatch> {
        let mismatch = |a: &State, b: &State| Mismatch {
            left: a.spec().to_string(),
            right: b.spec().to_string(),
        };
        match (&mut *self, other) {
            (State::Count(a), State::Count(b)) => a.merge(b),
            (State::Summary(a), State::Summary(b)) => a.merge(b),
            (State::Quantiles(a), State::Quantiles(b)) => a.merge(b),
            (State::Unique(a), State::Unique(b)) => a.merge(b),
            (State::Top(a), State::Top(b)) if a.k() == b.k() => a.merge(b),
            (State::Last(a), State::Last(b))
                if a.func() == b.func() && a.recency() == b.recency() =>
            {
                a.merge(b)
            }
            _ => return Err(mismatch(self, other)),
        }
        Ok(())
    }

    /// The snapshot values for the window `[start, start + secs)`, appended to `out` as
    /// named numbers. Never writes NaN or an infinity.
    pub fn values(&self, spec: &AggSpec, start: i64, secs: u32, out: &mut BTreeMap<String, f64>) {
        let _ = spec;
        match self {
            State::Count(c) => c.values(secs, out),
            State::Summary(s) => s.values(out),
            State::Quantiles(q) => q.values(out),
            State::Unique(u) => u.values(out),
            State::Top(t) => t.values(secs, out),
            State::Last(l) => l.values(start, secs, out),
        }
    }

    /// The mergeable state as JSON (a fragment's `state` field).
    pub fn to_json(&self) -> Value {
        match self {
            State::Count(c) => c.to_json(),
            State::Summary(s) => s.to_json(),
            State::Quantiles(q) => q.to_json(),
            State::Unique(u) => u.to_json(),
            State::Top(t) => t.to_json(),
            State::Last(l) => l.to_json(),
        }
    }

    /// Read a state written by [`State::to_json`] for `spec`; the error says what is wrong.
    pub fn from_json(spec: &AggSpec, v: &Value) -> Result<State, String> {
        Ok(match *spec {
            AggSpec::Count => State::Count(count::Count::from_json(v)?),
            AggSpec::Summary => State::Summary(summary::Summary::from_json(v)?),
            AggSpec::Quantiles => State::Quantiles(quantiles::Quantiles::from_json(v)?),
            AggSpec::Unique => State::Unique(unique::Unique::from_json(v)?),
            AggSpec::Top { k } => State::Top(top::Top::from_json(k, v)?),
            AggSpec::Last { func, recency } => {
                State::Last(last::Last::from_json(func, recency, v)?)
            }
        })
    }

    /// Rough heap bytes held (for memory accounting and tests).
    pub fn heap_bytes(&self) -> usize {
        match self {
            State::Count(_) | State::Summary(_) => 0,
            State::Quantiles(q) => q.heap_bytes(),
            State::Unique(u) => u.heap_bytes(),
            State::Top(t) => t.heap_bytes(),
            State::Last(l) => l.heap_bytes(),
        }
    }
}

/// Insert `v` under `name` only if it is finite: snapshots never carry NaN or infinities.
fn put(out: &mut BTreeMap<String, f64>, name: &str, v: f64) {
    if v.is_finite() {
        out.insert(name.to_string(), v);
    }
}

/// A number as JSON: integral values within 2^53 print as integers (`3`, not `3.0`), others
/// in serde_json's shortest round-tripping form. A sum that overflowed is written as the
/// string `"inf"` or `"-inf"` (JSON has no infinities); NaN never reaches a state.
fn num(x: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.fract() == 0.0 && x.abs() <= EXACT && !(x == 0.0 && x.is_sign_negative()) {
        Value::from(x as i64)
    } else if let Some(n) = serde_json::Number::from_f64(x) {
        Value::Number(n)
    } else if x > 0.0 {
        Value::from("inf")
    } else {
        Value::from("-inf")
    }
}

/// Field `name` of object `v` as a number written by [`num`] (possibly infinite, never NaN).
fn get_num(v: &Value, name: &str) -> Result<f64, String> {
    match v.get(name) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s == "inf" => Some(f64::INFINITY),
        Some(Value::String(s)) if s == "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
    .ok_or_else(|| format!("state field {name:?} missing or not a number"))
}

/// Field `name` of object `v` as a finite number.
fn get_finite(v: &Value, name: &str) -> Result<f64, String> {
    match get_num(v, name)? {
        x if x.is_finite() => Ok(x),
        _ => Err(format!("state field {name:?} is not finite")),
    }
}

/// Field `name` of object `v` as a non-negative integer.
fn get_u64(v: &Value, name: &str) -> Result<u64, String> {
    v.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("state field {name:?} missing or not a non-negative integer"))
}

/// Check that `v` is an object holding only the given fields.
fn expect_fields(v: &Value, allowed: &[&str]) -> Result<(), String> {
    let obj = v.as_object().ok_or("state is not a JSON object")?;
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown state field {k:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agg_spec_round_trips() {
        for s in [
            "count",
            "summary",
            "quantiles",
            "unique",
            "top 10",
            "last sum 300",
            "last max 60",
        ] {
            assert_eq!(s.parse::<AggSpec>().unwrap().to_string(), s);
        }
        assert!("top x".parse::<AggSpec>().is_err());
    }
}
