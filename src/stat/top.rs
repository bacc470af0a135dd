//! `top k`: the `k` most frequent values of a field, with their rates, from a mergeable
//! frequent-items summary (Misra-Gries, merged as in Agarwal et al., "Mergeable
//! Summaries", PODS 2012).
//!
//! State: at most `cap` counters (value → count; `top K FIELD cap M`, default
//! [`DEFAULT_CAP`]), the exact total `count` of occurrences, and the `offset`, the sum of
//! the amounts subtracted from every counter by the reductions so far. Memory: the value's
//! length plus ~40 bytes per counter, for at most `2 × cap` counters between reductions
//! (about 100 kB at the default cap with short values).
//!
//! Adding one occurrence increments its value's counter (a new value gets one). Merging adds
//! the counters of equal values and the totals and offsets. Whenever more than `2 × cap`
//! counters are held, and whenever the state is written out (a fragment's state, a
//! snapshot's values), it is *reduced* to `cap`: with `c` the (`cap`+1)-th largest count,
//! `c` is subtracted from every counter, the ones left at zero or below are dropped, and `c`
//! is added to the offset. At most `cap` counters are larger than `c`, so at most `cap`
//! remain; ties need no rule, as every counter equal to `c` goes. The reduction depends only
//! on the counts, never on the order of the arguments, so merging is commutative. Past
//! capacity it is not associative: how the input was split and merged changes the counts a
//! little, always within the bounds below (pulse-merge merges a window's parts in a fixed
//! order, so the same input gives the same output).
//!
//! Guarantees, for the occurrences `N` (`count`) of a window, whatever tree of merges (any
//! split over receivers, threads, chunks, mergers, shards; any duplicate delivery) made it:
//!
//! - **Exact below capacity.** While the values of a window's occurrences number at most
//!   `cap` distinct ones, no reduction ever subtracts anything (a reduction only subtracts
//!   when more than `cap` counters are held, and every state's counters are values of the
//!   window), so the counts are exact and the same for every topology: `error` is 0.
//! - **Bounded error past it.** For every value `v`, `true(v) − offset ≤ reported(v) ≤
//!   true(v)` (a value without a counter is reported as 0), and `offset ≤ (N − S)/(cap+1)
//!   ≤ N/(cap+1)`, `S` the sum of the counters held. Proof: a counter only ever gains its own
//!   value's occurrences and each reduction takes at most `c` from it while adding `c` to
//!   the offset, so it loses at most the offset; a reduction removes at least
//!   `(cap+1) × c` from the sum of the counters (`cap`+1 counters of at least `c` each) and
//!   adds `c` to the offset, and merging adds both sides' sums and offsets.
//! - **No false negatives.** Every value with `true(v) > offset` holds a counter: a heavy
//!   value, more frequent than `N/(cap+1)`, is always listed if it is among the `k` largest
//!   counters; a value not listed has `true(v) ≤ offset + (the k-th listed count)` (`≤
//!   offset` when fewer than `k` are listed).
//! - **`count` exact** always: the total is kept beside the counters.
//!
//! Snapshot values: `count` (all occurrences); for each of the `k` largest counters, one
//! entry named by the value text itself whose number is its rate per second (count / window
//! seconds), ties ranked by value text; `(other)`, the rate of `count` minus the sum of the
//! `k` listed counts (given when not 0), so that the list and `(other)` add up to `count`;
//! and `error`, the offset as a rate per second: each listed rate is at most `error` below
//! the true one (0 while exact). A value spelled `count`, `error` or `(other)` is counted
//! but overshadowed by those names. A value longer than [`super::STATE_TEXT`] is counted
//! under its cut form ([`super::cut_marked`]; pulse-fragment cuts longer values before, at
//! `--max-value-len`).
//!
//! JSON state: `{"count": N, "offset": E, "counts": {"value": n, ...}}`, reduced to `cap`.
//! A state with `counts` only (written before summaries) is read as exact, `count` the sum
//! of its counters; its `(other)` counter, if any, is the occurrences it had no room for:
//! they count in `count` and bound the error (`offset` = their number).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::hash::FastMap;
use super::{expect_fields, get_u64, put};

/// Counters per state unless the stat says `cap M`. The error bound `N/(cap+1)` is then
/// under 0.1 % of a window's occurrences, and a fragment holds at most 1000 values (a
/// tenth of the old 10,000-value table), which is plenty for the `k` of a top list.
pub const DEFAULT_CAP: usize = 1000;
/// The largest `cap`: a fragment of that many cut values stays far within what the next
/// stage reads ([`crate::io::input::MAX_RECORD`]).
pub const MAX_CAP: usize = 10_000;
/// The name of the occurrences not in the `k` listed values.
pub const OTHER: &str = "(other)";

#[derive(Clone, Debug)]
pub struct Top {
    k: usize,
    cap: usize,
    /// At most `2 × cap` counters; more than `cap` only between reductions.
    counts: FastMap<String, u64>,
    /// All occurrences.
    total: u64,
    /// The sum of the amounts subtracted from each counter (the error bound).
    offset: u64,
}

impl Top {
    pub fn new(k: usize, cap: usize) -> Top {
        Top {
            k,
            cap: cap.clamp(1, MAX_CAP),
            counts: FastMap::default(),
            total: 0,
            offset: 0,
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Count one occurrence of `value`; allocates only for a value not seen before.
    #[inline]
    pub fn add(&mut self, value: &str) {
        self.total += 1;
        let value = &*super::cut_text(value);
        if let Some(c) = self.counts.get_mut(value) {
            *c += 1;
            return;
        }
        self.counts.insert(value.to_string(), 1);
        if self.counts.len() > 2 * self.cap {
            self.reduce();
        }
    }

    pub fn merge(&mut self, other: &Top) {
        self.total += other.total;
        self.offset += other.offset;
        for (v, &n) in &other.counts {
            if let Some(c) = self.counts.get_mut(v.as_str()) {
                *c += n;
            } else {
                self.counts.insert(v.clone(), n);
            }
        }
        if self.counts.len() > 2 * self.cap {
            self.reduce();
        }
    }

    /// The amount a reduction to `cap` subtracts: the (`cap`+1)-th largest count, 0 when
    /// at most `cap` counters are held.
    fn threshold(&self) -> u64 {
        if self.counts.len() <= self.cap {
            return 0;
        }
        let mut all: Vec<u64> = self.counts.values().copied().collect();
        let (_, c, _) = all.select_nth_unstable_by(self.cap, |a, b| b.cmp(a));
        *c
    }

    /// Reduce to at most `cap` counters (see the module doc).
    fn reduce(&mut self) {
        let c = self.threshold();
        if c == 0 {
            return;
        }
        self.counts.retain(|_, n| {
            *n = n.saturating_sub(c);
            *n > 0
        });
        self.offset += c;
    }

    /// The state as written out, reduced to `cap`: the counters (unordered) and the offset.
    /// Does not change `self`, so that the slack between reductions never shows.
    fn reduced(&self) -> (impl Iterator<Item = (&str, u64)>, u64) {
        let c = self.threshold();
        let counters = self
            .counts
            .iter()
            .filter(move |(_, &n)| n > c)
            .map(move |(v, &n)| (v.as_str(), n - c));
        (counters, self.offset + c)
    }

    /// The total number of occurrences (exact).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The error bound of the reported counts: each is at most this much below the truth.
    pub fn error(&self) -> u64 {
        self.reduced().1
    }

    /// The `k` largest counts with their values, largest first, ties by value; and the
    /// error bound.
    pub fn ranked(&self) -> (Vec<(&str, u64)>, u64) {
        let (counters, error) = self.reduced();
        let mut all: Vec<(&str, u64)> = counters.collect();
        let by = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if all.len() > self.k && self.k > 0 {
            all.select_nth_unstable_by(self.k - 1, by);
        }
        all.truncate(self.k);
        all.sort_unstable_by(by);
        (all, error)
    }

    pub fn values(&self, secs: u32, out: &mut BTreeMap<String, f64>) {
        let secs = f64::from(secs.max(1));
        let (listed, error) = self.ranked();
        let mut sum = 0;
        for &(v, n) in &listed {
            put(out, v, n as f64 / secs);
            sum += n;
        }
        // The listed counts never exceed the total (each is at most its value's truth).
        let other = self.total.saturating_sub(sum);
        if other > 0 {
            put(out, OTHER, other as f64 / secs);
        }
        put(out, "count", self.total as f64);
        put(out, "error", error as f64 / secs);
    }

    pub fn to_json(&self) -> Value {
        let (counters, offset) = self.reduced();
        let counts: Map<String, Value> = counters
            .map(|(v, n)| (v.to_string(), Value::from(n)))
            .collect();
        json!({ "count": self.total, "offset": offset, "counts": counts })
    }

    /// Read a state written by [`Top::to_json`], or an old one with `counts` only (see the
    /// module doc); reduced to `cap` if it holds more counters.
    pub fn from_json(k: usize, cap: usize, v: &Value) -> Result<Top, String> {
        expect_fields(v, &["count", "offset", "counts"])?;
        let obj = v
            .get("counts")
            .and_then(Value::as_object)
            .ok_or("state field \"counts\" missing or not an object")?;
        if obj.len() > MAX_CAP + 1 {
            return Err(format!("more than {MAX_CAP} values"));
        }
        let old = v.get("count").is_none();
        if old && v.get("offset").is_some() {
            return Err("state field \"offset\" without \"count\"".into());
        }
        let mut t = Top::new(k, cap);
        t.counts = FastMap::with_capacity_and_hasher(obj.len(), Default::default());
        let mut sum: u64 = 0;
        for (val, n) in obj {
            let n = n
                .as_u64()
                .ok_or_else(|| format!("count of {val:?} is not a non-negative integer"))?;
            sum = sum
                .checked_add(n)
                .ok_or("the counts add up to more than 2^64")?;
            if old && val == OTHER {
                t.offset = n;
                continue;
            }
            if n > 0 {
                *t.counts
                    .entry(super::cut_text(val).to_string())
                    .or_insert(0) += n;
            }
        }
        if old {
            t.total = sum;
        } else {
            t.total = get_u64(v, "count")?;
            t.offset = get_u64(v, "offset")?;
            if sum > t.total {
                return Err(format!(
                    "the counts add up to {sum}, more than the count {}",
                    t.total
                ));
            }
            if t.offset > t.total {
                return Err(format!(
                    "offset {} is more than the count {}",
                    t.offset, t.total
                ));
            }
        }
        t.reduce();
        Ok(t)
    }

    pub fn heap_bytes(&self) -> usize {
        let table = self.counts.capacity() * (std::mem::size_of::<(String, u64)>() + 1);
        table + self.counts.keys().map(String::capacity).sum::<usize>()
    }
}

/// States are equal when they write out the same: the slack between reductions is not
/// part of a state's value.
impl PartialEq for Top {
    fn eq(&self, other: &Top) -> bool {
        let (a, ea) = self.reduced();
        let (b, eb) = other.reduced();
        self.k == other.k
            && self.cap == other.cap
            && self.total == other.total
            && ea == eb
            && a.collect::<BTreeMap<_, _>>() == b.collect::<BTreeMap<_, _>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fold<'a>(k: usize, cap: usize, items: impl IntoIterator<Item = &'a str>) -> Top {
        let mut t = Top::new(k, cap);
        for v in items {
            t.add(v);
        }
        t
    }

    fn values(t: &Top, secs: u32) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        t.values(secs, &mut out);
        out
    }

    #[test]
    fn ranks_by_count_then_value() {
        let t = fold(2, DEFAULT_CAP, ["b", "a", "c", "c", "b", "a", "c", "d"]);
        assert_eq!(t.ranked(), (vec![("c", 3), ("a", 2)], 0));
        let out = values(&t, 10);
        assert_eq!(out.len(), 5);
        assert_eq!(out["count"], 8.0);
        assert_eq!(out["c"], 0.3);
        assert_eq!(out["a"], 0.2);
        // b and d: 3 of the 8 occurrences are not listed.
        assert_eq!(out[OTHER], 0.3);
        assert_eq!(out["error"], 0.0);
        assert_eq!(Top::from_json(2, DEFAULT_CAP, &t.to_json()).unwrap(), t);
        assert_eq!(Top::new(0, 10).ranked(), (vec![], 0));
        // All listed: no (other).
        assert!(!values(&fold(5, 10, ["a", "b"]), 60).contains_key(OTHER));
    }

    #[test]
    fn a_reduction_subtracts_the_cap_plus_first_largest_count() {
        // cap 2: five counters (more than 2 × 2) make a reduction by the third largest.
        let t = fold(
            3,
            2,
            ["a", "a", "a", "a", "b", "b", "b", "c", "c", "d", "e"],
        );
        assert_eq!(t.total(), 11);
        assert_eq!(t.ranked(), (vec![("a", 2), ("b", 1)], 2));
        // Written out as reduced; the list and (other) add up to count.
        assert_eq!(
            t.to_json(),
            json!({"count": 11, "offset": 2, "counts": {"a": 2, "b": 1}})
        );
        let out = values(&t, 1);
        assert_eq!(
            (out["a"], out["b"], out[OTHER], out["error"]),
            (2.0, 1.0, 8.0, 2.0)
        );
        // Four counters are slack below 2 × cap: not reduced in memory, but written out
        // and compared as reduced.
        let slack = fold(3, 2, ["a", "a", "a", "b", "b", "c", "d"]);
        assert_eq!(slack.counts.len(), 4);
        assert_eq!(slack.error(), 1);
        let read = Top::from_json(3, 2, &slack.to_json()).unwrap();
        assert_eq!(read.counts.len(), 2);
        assert_eq!(read, slack);
        assert_eq!(values(&read, 60), values(&slack, 60));
        // Ties need no rule: every counter equal to the threshold goes.
        let ties = fold(3, 2, ["a", "b", "c", "d", "e"]);
        assert_eq!(ties.ranked(), (vec![], 1));
    }

    #[test]
    fn a_value_that_becomes_hot_late_is_listed_first() {
        let mut t = Top::new(3, DEFAULT_CAP);
        for i in 0..20_000 {
            t.add(&format!("/cold/{i}"));
        }
        for _ in 0..100 {
            t.add("/hot");
        }
        let (listed, error) = t.ranked();
        assert_eq!(listed[0].0, "/hot");
        // The bound: N/(cap+1), here 20 of 20,100.
        assert!(error <= t.total() / (DEFAULT_CAP as u64 + 1), "{error}");
        assert!(listed[0].1 >= 100 - error && listed[0].1 <= 100);
        assert!(t.counts.len() <= 2 * DEFAULT_CAP);
        assert!(t.to_json()["counts"].as_object().unwrap().len() <= DEFAULT_CAP);
    }

    #[test]
    fn an_old_state_is_read_as_exact_and_its_other_as_the_error() {
        let old = json!({"counts": {"/a": 5, "/b": 2}});
        let t = Top::from_json(1, DEFAULT_CAP, &old).unwrap();
        assert_eq!(
            t,
            fold(1, DEFAULT_CAP, ["/a"; 5].into_iter().chain(["/b"; 2]))
        );
        assert_eq!((t.total(), t.error()), (7, 0));
        let capped = json!({"counts": {"/a": 5, "(other)": 3}});
        let t = Top::from_json(1, DEFAULT_CAP, &capped).unwrap();
        assert_eq!((t.total(), t.error()), (8, 3));
        assert_eq!(t.ranked(), (vec![("/a", 5)], 3));
        // In a new state, (other) is a value like any other.
        let t = Top::from_json(
            1,
            DEFAULT_CAP,
            &json!({"count": 3, "offset": 0, "counts": {"(other)": 3}}),
        )
        .unwrap();
        assert_eq!(t.ranked(), (vec![("(other)", 3)], 0));
        // An old state with more counters than the cap is reduced.
        let many: Map<String, Value> = (0..50).map(|i| (format!("v{i}"), json!(i))).collect();
        let t = Top::from_json(3, 10, &json!({ "counts": many })).unwrap();
        assert_eq!(t.total(), (0..50).sum::<u64>());
        assert_eq!(t.ranked(), (vec![("v49", 10), ("v48", 9), ("v47", 8)], 39));
    }

    #[test]
    fn malformed_states_are_refused_with_a_reason() {
        for (state, want) in [
            (json!({"counts": 3}), "\"counts\" missing or not an object"),
            (json!({"count": 3, "offset": 0}), "\"counts\" missing"),
            (
                json!({"count": 1, "counts": {"a": 1}}),
                "\"offset\" missing",
            ),
            (
                json!({"offset": 1, "counts": {"a": 1}}),
                "\"offset\" without \"count\"",
            ),
            (
                json!({"count": 1, "offset": 0, "counts": {"a": 2}}),
                "add up to 2, more than the count 1",
            ),
            (
                json!({"count": 1, "offset": 2, "counts": {}}),
                "offset 2 is more than the count 1",
            ),
            (
                json!({"count": 1, "offset": 0, "counts": {"a": -1}}),
                "count of \"a\" is not a non-negative integer",
            ),
            (
                json!({"count": -1, "offset": 0, "counts": {}}),
                "\"count\" missing or not a non-negative integer",
            ),
            (
                json!({"count": 1, "offset": 0, "counts": {}, "x": 1}),
                "unknown state field \"x\"",
            ),
            (
                json!({"counts": {"a": u64::MAX, "b": 1}}),
                "add up to more than 2^64",
            ),
        ] {
            let e = Top::from_json(3, 10, &state).unwrap_err();
            assert!(e.contains(want), "{state}: {e}");
        }
        let many: Map<String, Value> = (0..=MAX_CAP + 1)
            .map(|i| (i.to_string(), json!(1)))
            .collect();
        assert!(Top::from_json(3, 10, &json!({ "counts": many })).is_err());
    }

    /// Merge `parts` pairwise in an order drawn from `picks`: any binary tree of merges.
    fn merge_tree(mut parts: Vec<Top>, picks: &[usize]) -> Top {
        let mut p = picks.iter().cycle();
        while parts.len() > 1 {
            let a = parts.swap_remove(p.next().unwrap() % parts.len());
            let i = p.next().unwrap() % parts.len();
            let mut b = std::mem::replace(&mut parts[i], Top::new(0, 1));
            // Through the JSON now and then, as between a receiver and a merger.
            if p.next().unwrap().is_multiple_of(2) {
                b = Top::from_json(b.k, b.cap, &b.to_json()).unwrap();
            }
            b.merge(&a);
            parts[i] = b;
        }
        parts.pop().unwrap()
    }

    /// Values skewed so that a few are heavy: value `i` with weight about 1/(i+1).
    fn skewed(distinct: u32) -> impl Strategy<Value = String> {
        (0..distinct, 0.0f64..1.0).prop_map(move |(i, u)| {
            let heavy = (u * u * u * f64::from(distinct)) as u32;
            format!("v{}", if i % 3 == 0 { i } else { heavy })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The guarantees of the module doc, for any split and any tree of merges.
        #[test]
        fn bounds_hold_for_any_split_and_merge_tree(
            items in prop::collection::vec(skewed(60), 0..600),
            cap in 1usize..40,
            k in 0usize..6,
            cuts in prop::collection::vec(0usize..600, 0..8),
            picks in prop::collection::vec(0usize..1000, 1..30),
        ) {
            let mut truth: BTreeMap<&str, u64> = BTreeMap::new();
            for v in &items {
                *truth.entry(v.as_str()).or_insert(0) += 1;
            }
            let n = items.len() as u64;
            let mut at: Vec<usize> = cuts.iter().map(|&c| c.min(items.len())).collect();
            at.sort_unstable();
            let mut parts = Vec::new();
            let mut prev = 0;
            for a in at.into_iter().chain([items.len()]) {
                parts.push(fold(k, cap, items[prev..a].iter().map(String::as_str)));
                prev = a;
            }
            let t = merge_tree(parts, &picks);
            prop_assert_eq!(t.total(), n);
            let (counters, error) = t.reduced();
            let held: BTreeMap<&str, u64> = counters.collect();
            prop_assert!(held.len() <= cap);
            let s: u64 = held.values().sum();
            prop_assert!(error * (cap as u64 + 1) <= n - s, "error {} n {} s {}", error, n, s);
            for (v, &c) in &truth {
                let r = held.get(v).copied().unwrap_or(0);
                prop_assert!(r <= c && c <= r + error, "{}: true {} reported {} error {}", v, c, r, error);
                if c * (cap as u64 + 1) > n {
                    prop_assert!(held.contains_key(v), "heavy {} ({} of {}) missing", v, c, n);
                }
            }
            // The snapshot: the list and (other) add up to count; an unlisted value is
            // at most error above the last listed count.
            let (listed, _) = t.ranked();
            let out = values(&t, 1);
            let sum: f64 = listed.iter().map(|&(v, _)| out[v]).sum();
            prop_assert_eq!(sum + out.get(OTHER).copied().unwrap_or(0.0), n as f64);
            prop_assert_eq!(out["error"], error as f64);
            if k > 0 {
                // With fewer than k listed, every counter is: an unlisted value has none.
                let last = if listed.len() == k { listed[k - 1].1 } else { 0 };
                for (v, &c) in &truth {
                    if !listed.iter().any(|l| l.0 == *v) {
                        prop_assert!(c <= last + error, "{} ({}) unlisted", v, c);
                    }
                }
            }
            // Below capacity: one exact count, whatever the tree.
            if truth.len() <= cap {
                prop_assert_eq!(error, 0);
                let exact = fold(k, MAX_CAP, items.iter().map(String::as_str));
                prop_assert_eq!(&held, &exact.reduced().0.collect::<BTreeMap<_, _>>());
                prop_assert_eq!(out, values(&exact, 1));
            }
        }

        /// Merging is commutative, whatever the slack of either side.
        #[test]
        fn merge_is_commutative(
            a in prop::collection::vec(skewed(30), 0..200),
            b in prop::collection::vec(skewed(30), 0..200),
            cap in 1usize..12,
        ) {
            let (a, b) = (fold(3, cap, a.iter().map(String::as_str)), fold(3, cap, b.iter().map(String::as_str)));
            let mut ab = a.clone();
            ab.merge(&b);
            let mut ba = b.clone();
            ba.merge(&a);
            prop_assert_eq!(ab.to_json(), ba.to_json());
            prop_assert_eq!(values(&ab, 60), values(&ba, 60));
        }
    }
}
