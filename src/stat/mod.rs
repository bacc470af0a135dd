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
pub mod exact;
pub mod hash;
pub mod last;
pub mod quantiles;
pub mod summary;
pub mod top;
pub mod unique;

/// The longest value text `pulse-fragment` keeps whole (a group key, a `top` value, a
/// `last` partition): 1 KiB, the default and the most of `--max-value-len`. A longer one is
/// cut by [`cut_marked`] to a prefix and a marker, at most [`MARK_MAX`] bytes more, so that a
/// fragment or snapshot of 10,000 such texts stays within what the next stage reads
/// ([`crate::io::input::MAX_RECORD`]).
pub const MAX_TEXT: usize = 1024;

/// The most bytes [`cut_marked`] adds after the prefix it keeps.
pub const MARK_MAX: usize = 64;

/// The longest text a state holds ([`MAX_TEXT`] and a marker): a longer one (from a
/// fragment written by something else) is cut with [`cut_marked`] to [`MAX_TEXT`].
pub const STATE_TEXT: usize = MAX_TEXT + MARK_MAX;

/// `s` as a state holds it: whole up to [`STATE_TEXT`] bytes, else cut with [`cut_marked`].
#[inline]
pub fn cut_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= STATE_TEXT {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::new();
    cut_marked(s, MAX_TEXT, &mut out);
    std::borrow::Cow::Owned(out)
}

/// Write `s`, longer than `max` bytes, cut into `out` (cleared first): its first `max`
/// bytes (fewer, to end at a character boundary), then `…[cut from LEN bytes #HASH]`, where
/// LEN is the length of `s` and HASH the 16 hex digits of [`unique::hash64`] of the whole
/// of `s`. So distinct long values stay distinct (but for a 64-bit hash collision), and a
/// cut text is always longer than `max`, which no text kept whole is: a cut one is never
/// taken for a value as written.
#[cold]
#[inline(never)]
pub fn cut_marked(s: &str, max: usize, out: &mut String) {
    use std::fmt::Write as _;
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.clear();
    out.push_str(&s[..end]);
    let _ = write!(
        out,
        "\u{2026}[cut from {} bytes #{:016x}]",
        s.len(),
        unique::hash64(s)
    );
}

/// Which aggregate a stat uses, with its parameters. Its [`fmt::Display`] form is the
/// canonical `agg` string carried by fragments (`count`, `summary`, `quantiles`, `unique`,
/// `top 10` at the default cap, `top 10 cap 50` at another, `last sum 300`); two fragments
/// merge only when their `agg` strings are equal.
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
    /// The `k` most frequent values of a field, from a summary of at most `cap` counters.
    Top { k: usize, cap: usize },
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
            AggSpec::Top { k, cap } if *cap == top::DEFAULT_CAP => write!(f, "top {k}"),
            AggSpec::Top { k, cap } => write!(f, "top {k} cap {cap}"),
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
                cap: top::DEFAULT_CAP,
            },
            ["top", k, "cap", cap] => AggSpec::Top {
                k: k.parse().map_err(|_| bad())?,
                cap: match cap.parse() {
                    Ok(c) if (1..=top::MAX_CAP).contains(&c) && *cap == c.to_string() => c,
                    _ => return Err(bad()),
                },
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
            AggSpec::Top { k, cap } => State::Top(top::Top::new(k, cap)),
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
            State::Top(t) => AggSpec::Top {
                k: t.k(),
                cap: t.cap(),
            },
            State::Last(l) => AggSpec::Last {
                func: l.func(),
                recency: l.recency(),
            },
        }
    }

    /// Fold one event's contribution. Count: `Input::One` adds 1, `Input::Num(w)` adds `w`.
    /// Summary/Quantiles: `Input::Num(x)` (NaN and infinities ignored). Unique/Top:
    /// `Input::Text(s)`. Last: `Input::Last`. An input of the wrong shape is ignored.
    // Inlined into the per-stat loop of `pulse-fragment`, where its dispatch and call cost
    // more than the counting itself for most kinds.
    #[inline(always)]
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
            (State::Top(a), State::Top(b)) if a.k() == b.k() && a.cap() == b.cap() => a.merge(b),
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
            AggSpec::Top { k, cap } => State::Top(top::Top::from_json(k, cap, v)?),
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
    use proptest::prelude::*;

    #[test]
    fn a_cut_text_keeps_its_prefix_is_longer_than_the_bound_and_stays_distinct() {
        let a = format!("{}a", "é".repeat(700)); // 1401 bytes, 2-byte characters
        let b = format!("{}b", "é".repeat(700));
        let (mut ca, mut cb) = (String::new(), String::new());
        cut_marked(&a, 1023, &mut ca);
        cut_marked(&b, 1023, &mut cb);
        assert_ne!(ca, cb);
        // At a character boundary at or below the bound, then the marker.
        assert!(ca.starts_with(&"é".repeat(511)) && !ca.starts_with(&"é".repeat(512)));
        let mark = format!("\u{2026}[cut from 1401 bytes #{:016x}]", unique::hash64(&a));
        assert_eq!(&ca[1022..], mark);
        assert!(ca.len() > 1023 && ca.len() <= 1023 + MARK_MAX);
        // The same text cuts the same way; a cut text passes a state's bound whole.
        let mut again = String::new();
        cut_marked(&a, 1023, &mut again);
        assert_eq!(again, ca);
        assert_eq!(cut_text(&ca), ca.as_str());
        // The longest marker fits in MARK_MAX.
        let mut longest = String::new();
        cut_marked(&"x".repeat(64 << 20), 0, &mut longest);
        assert!(longest.len() <= MARK_MAX, "{longest}");
        // A state holds a longer text cut at MAX_TEXT.
        let long = "y".repeat(STATE_TEXT + 1);
        let held = cut_text(&long);
        assert!(held.starts_with(&"y".repeat(MAX_TEXT)) && held.len() <= STATE_TEXT);
        assert!(held.contains("[cut from 1089 bytes #"), "{held}");
    }
    use serde_json::json;

    #[test]
    fn agg_spec_round_trips() {
        for s in [
            "count",
            "summary",
            "quantiles",
            "unique",
            "top 10",
            "top 10 cap 50",
            "last sum 300",
            "last max 60",
        ] {
            assert_eq!(s.parse::<AggSpec>().unwrap().to_string(), s);
        }
        assert!("top x".parse::<AggSpec>().is_err());
        // The default cap is not written, so that old and new fragments agree.
        assert_eq!(
            "top 3 cap 1000".parse::<AggSpec>().unwrap().to_string(),
            "top 3"
        );
        for bad in ["top 3 cap 0", "top 3 cap 10001", "top 3 cap", "top 3 cap x"] {
            assert!(bad.parse::<AggSpec>().is_err(), "{bad}");
        }
    }

    /// An owned [`Input`], for generating test data.
    #[derive(Clone, Debug)]
    enum In {
        One,
        Num(f64),
        Text(String),
        Last(String, f64, f64),
    }

    impl In {
        fn input(&self) -> Input<'_> {
            match self {
                In::One => Input::One,
                In::Num(x) => Input::Num(*x),
                In::Text(s) => Input::Text(s),
                In::Last(p, t, v) => Input::Last {
                    part: p,
                    time: *t,
                    value: *v,
                },
            }
        }
    }

    fn fold(spec: &AggSpec, items: &[In]) -> State {
        let mut s = State::new(spec);
        for i in items {
            s.add(i.input());
        }
        s
    }

    fn merged(a: &State, b: &State) -> State {
        let mut m = a.clone();
        m.merge(b).unwrap();
        m
    }

    /// Inputs for every kind. Numbers are multiples of 1/8 below 2^17, so that every sum
    /// and sum of squares is exact in f64 and states can be compared exactly.
    fn exact_case() -> impl Strategy<Value = (AggSpec, Vec<In>)> {
        let dyadic = || (-(1i32 << 20)..(1 << 20)).prop_map(|i| f64::from(i) / 8.0);
        let num = move || {
            prop_oneof![
                4 => dyadic().prop_map(In::Num),
                1 => Just(In::Num(0.0)),
                1 => Just(In::Num(f64::NAN)),
                1 => Just(In::Text("wrong shape".into())),
            ]
        };
        let text = |n: u32| (0..n).prop_map(|i| In::Text(format!("v{i}")));
        let last = (0..12u32, 0..20i32, -50..50i32)
            .prop_map(|(p, t, v)| In::Last(format!("p{p}"), f64::from(t), f64::from(v)));
        let func = prop_oneof![
            Just(LastFn::Sum),
            Just(LastFn::Mean),
            Just(LastFn::Count),
            Just(LastFn::Max)
        ];
        prop_oneof![
            prop::collection::vec(
                prop_oneof![Just(In::One), dyadic().prop_map(In::Num)],
                0..100
            )
            .prop_map(|v| (AggSpec::Count, v)),
            prop::collection::vec(num(), 0..200).prop_map(|v| (AggSpec::Summary, v)),
            prop::collection::vec(num(), 0..200).prop_map(|v| (AggSpec::Quantiles, v)),
            prop::collection::vec(text(60), 0..200).prop_map(|v| (AggSpec::Unique, v)),
            // Enough distinct values to cross from the exact set to HyperLogLog.
            prop::collection::vec(text(2500), 0..2500).prop_map(|v| (AggSpec::Unique, v)),
            // At most 25 distinct values: within every cap, so exact.
            (
                0..6usize,
                prop_oneof![Just(top::DEFAULT_CAP), 25..40usize],
                prop::collection::vec(text(25), 0..200)
            )
                .prop_map(|(k, cap, v)| (AggSpec::Top { k, cap }, v)),
            (func, 0..30u32, prop::collection::vec(last, 0..100))
                .prop_map(|(func, recency, v)| (AggSpec::Last { func, recency }, v)),
        ]
    }

    /// Cut `items` into pieces at the given fractions.
    fn split(items: &[In], cuts: &[f64]) -> Vec<Vec<In>> {
        let mut at: Vec<usize> = cuts
            .iter()
            .map(|c| (c * items.len() as f64) as usize)
            .collect();
        at.sort_unstable();
        let mut parts = Vec::new();
        let mut prev = 0;
        for a in at.into_iter().chain([items.len()]) {
            parts.push(items[prev..a].to_vec());
            prev = a;
        }
        parts
    }

    fn check_values(s: &State, spec: &AggSpec) -> Result<(), TestCaseError> {
        let mut out = BTreeMap::new();
        s.values(spec, 1_000, 10, &mut out);
        prop_assert!(out.contains_key("count") || matches!(spec, AggSpec::Unique));
        for (k, v) in &out {
            prop_assert!(v.is_finite(), "{} = {}", k, v);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// fold(all) == merge of the folds of any split, in order, reversed, and as a tree.
        #[test]
        fn fold_equals_merge_of_split_folds(
            (spec, items) in exact_case(),
            cuts in prop::collection::vec(0.0f64..1.0, 0..5),
        ) {
            let whole = fold(&spec, &items);
            let folds: Vec<State> = split(&items, &cuts).iter().map(|p| fold(&spec, p)).collect();
            let mut forward = State::new(&spec);
            for f in &folds {
                forward.merge(f).unwrap();
            }
            prop_assert_eq!(&forward, &whole);
            let mut backward = State::new(&spec);
            for f in folds.iter().rev() {
                backward.merge(f).unwrap();
            }
            prop_assert_eq!(&backward, &whole);
            // Pairwise tree reduction.
            let mut level = folds;
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|c| if c.len() == 2 { merged(&c[0], &c[1]) } else { c[0].clone() })
                    .collect();
            }
            prop_assert_eq!(&level[0], &whole);
            let mut a = BTreeMap::new();
            let mut b = BTreeMap::new();
            whole.values(&spec, 0, 60, &mut a);
            level[0].values(&spec, 0, 60, &mut b);
            prop_assert_eq!(a, b);
            check_values(&whole, &spec)?;
        }

        /// new() is the identity; merge is commutative and associative.
        #[test]
        fn monoid_laws(
            (spec, items) in exact_case(),
            c1 in 0.0f64..1.0,
            c2 in 0.0f64..1.0,
        ) {
            let parts = split(&items, &[c1, c2]);
            let [a, b, c] = [0, 1, 2].map(|i| fold(&spec, &parts[i]));
            let e = State::new(&spec);
            prop_assert_eq!(&merged(&e, &a), &a);
            prop_assert_eq!(&merged(&a, &e), &a);
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        }

        /// to_json / from_json round-trips exactly, also through the JSON text.
        #[test]
        fn json_round_trips((spec, items) in exact_case()) {
            let s = fold(&spec, &items);
            let back = State::from_json(&spec, &s.to_json()).unwrap();
            prop_assert_eq!(&back, &s);
            let text = s.to_json().to_string();
            let reparsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&State::from_json(&spec, &reparsed).unwrap(), &s);
        }

        /// Arbitrary doubles: float sums may differ in the last bits when reassociated, so
        /// sums are compared with a tolerance scaled by the inputs' magnitude; counts,
        /// min, max and buckets exactly. Values never hold NaN or infinities.
        #[test]
        fn arbitrary_floats_merge_within_rounding(
            kind in 0..3usize,
            xs in prop::collection::vec(
                prop_oneof![-1e100f64..1e100, -1.0f64..1.0, any::<f64>().prop_filter("moderate", |x| x.abs() < 1e100)],
                0..150,
            ),
            cuts in prop::collection::vec(0.0f64..1.0, 0..4),
        ) {
            let spec = [AggSpec::Count, AggSpec::Summary, AggSpec::Quantiles][kind].clone();
            let items: Vec<In> = xs.iter().map(|&x| In::Num(x)).collect();
            let whole = fold(&spec, &items);
            let mut m = State::new(&spec);
            for p in split(&items, &cuts) {
                m.merge(&fold(&spec, &p)).unwrap();
            }
            let scale: f64 = xs.iter().map(|x| x.abs() + x * x).sum();
            close_json(&whole.to_json(), &m.to_json(), scale, "")?;
            check_values(&whole, &spec)?;
            check_values(&m, &spec)?;
            prop_assert_eq!(&State::from_json(&spec, &whole.to_json()).unwrap(), &whole);
        }

        /// Values never hold NaN or infinities, whatever the input.
        #[test]
        fn values_always_finite(
            kind in 0..3usize,
            xs in prop::collection::vec(any::<f64>(), 0..50),
        ) {
            let spec = [AggSpec::Count, AggSpec::Summary, AggSpec::Quantiles][kind].clone();
            let items: Vec<In> = xs.iter().map(|&x| In::Num(x)).collect();
            check_values(&fold(&spec, &items), &spec)?;
        }
    }

    /// Compare two states' JSON: `sum`, `sumsq` and a weighted `count` within
    /// `1e-12 * scale`, everything else exactly.
    fn close_json(a: &Value, b: &Value, scale: f64, key: &str) -> Result<(), TestCaseError> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                prop_assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
                for (k, v) in x {
                    close_json(v, &y[k], scale, k)?;
                }
            }
            (Value::Number(x), Value::Number(y)) if ["sum", "sumsq", "count"].contains(&key) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                prop_assert!((x - y).abs() <= 1e-12 * scale, "{}: {} vs {}", key, x, y);
            }
            _ => prop_assert_eq!(a, b, "field {}", key),
        }
        Ok(())
    }

    #[test]
    fn different_specs_do_not_merge() {
        let cases = [
            ("count", "summary"),
            ("quantiles", "unique"),
            ("top 5", "top 10"),
            ("top 5", "top 5 cap 10"),
            ("last sum 300", "last mean 300"),
            ("last sum 300", "last sum 60"),
        ];
        for (l, r) in cases {
            let (l, r) = (l.parse::<AggSpec>().unwrap(), r.parse::<AggSpec>().unwrap());
            let mut a = State::new(&l);
            a.add(Input::One);
            let before = a.clone();
            let err = a.merge(&State::new(&r)).unwrap_err();
            assert_eq!(err.to_string(), format!("aggregate mismatch: {l} vs {r}"));
            assert_eq!(a, before);
        }
        let top = |k, cap| State::new(&AggSpec::Top { k, cap });
        assert!(top(5, 10).merge(&top(5, 10)).is_ok());
        assert!(top(5, 10).merge(&top(5, 11)).is_err());
    }

    #[test]
    fn from_json_rejects_other_kinds_state() {
        let count = State::new(&AggSpec::Count).to_json();
        for spec in ["summary", "quantiles", "unique", "top 3", "last sum 60"] {
            let spec: AggSpec = spec.parse().unwrap();
            assert!(State::from_json(&spec, &count).is_err(), "{spec}");
        }
        assert!(State::from_json(&AggSpec::Count, &json!([1])).is_err());
        assert!(State::from_json(&AggSpec::Count, &json!({"count": 1, "x": 2})).is_err());
    }

    #[test]
    fn values_names_per_kind() {
        let names = |spec: &str, inputs: &[Input]| {
            let spec: AggSpec = spec.parse().unwrap();
            let mut s = State::new(&spec);
            for &i in inputs {
                s.add(i);
            }
            let mut out = BTreeMap::new();
            s.values(&spec, 0, 60, &mut out);
            out.into_keys().collect::<Vec<_>>().join(",")
        };
        assert_eq!(names("count", &[Input::One]), "count,rate");
        assert_eq!(
            names("summary", &[Input::Num(1.0)]),
            "count,max,mean,min,stddev,sum"
        );
        assert_eq!(
            names("quantiles", &[Input::Num(1.0)]),
            "count,max,mean,min,p50,p90,p95,p99,sum"
        );
        assert_eq!(names("unique", &[Input::Text("a")]), "unique");
        assert_eq!(
            names(
                "top 1",
                &[Input::Text("a"), Input::Text("b"), Input::Text("b")]
            ),
            "(other),b,count,error"
        );
        let last = Input::Last {
            part: "a",
            time: 59.0,
            value: 2.0,
        };
        assert_eq!(names("last mean 60", &[last]), "count,mean");
        assert_eq!(names("last count 60", &[last]), "count");
    }

    #[test]
    fn heap_bytes_grows_with_content() {
        let spec = AggSpec::Unique;
        let mut s = State::new(&spec);
        let empty = s.heap_bytes();
        for i in 0..5000 {
            s.add(Input::Text(&i.to_string()));
        }
        assert!(s.heap_bytes() >= 16384 && s.heap_bytes() > empty);
        assert_eq!(State::new(&AggSpec::Count).heap_bytes(), 0);
    }
}
