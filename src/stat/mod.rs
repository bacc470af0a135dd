//! Aggregates: what a stat computes, as mergeable states.
//!
//! Each kind lives in its own file and opens with what it computes and its memory cost.
//! Every state is a commutative monoid: [`State::new`] is the identity of [`State::merge`],
//! and folding a list equals merging the folds of any split of it.

use std::fmt;
use std::str::FromStr;

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
