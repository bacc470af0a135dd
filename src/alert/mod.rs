//! pulse-alert's library: rules over snapshots ([`rules`]), the event-time state machine
//! ([`Engine`]), the check-result record ([`Transition`]) and the Alertmanager webhook body
//! ([`webhook`]).
//!
//! Each rule and series (stat and key) is one alert instance with the state machine
//! ok → pending → firing → ok (a *resolved* transition), stepped once per window of that
//! series on its final snapshot, in event time:
//!
//! - the condition must hold for `for` (whole windows, at least one) to fire: the first
//!   window it holds gives `pending` (unless one window is enough), the one that completes
//!   `for` gives `firing`, and a window that does not hold while pending gives `ok`;
//! - while firing, the condition tested is the `clear` one (the alert stays firing while the
//!   value is still past `clear`), and it resolves after it failed on `keep` + 1 windows in a
//!   row;
//! - a window of a series without a final snapshot (the series fell silent) counts as not
//!   meeting a value condition, and is what `absent` looks for. Such a window is known only
//!   once the event time has passed it: time is the newest window end of any final snapshot
//!   seen, never the clock, so a window that never closed (the input ended) is not absent;
//! - a final snapshot for a window that was already evaluated (late data) replaces that
//!   window's value and replays the instance from the oldest window held: transitions that
//!   come or go are written as corrections (a withdrawn one says so). Windows older than the
//!   `horizon` are not corrected any more (counted as too late).
//!
//! Every step depends only on the sequence of windows of its own series, and on the event
//! time only for deciding that a window is missing; so how snapshots were batched, and in
//! which order the keys of one window came, does not change the transitions.
//!
//! Memory: per instance about 200 bytes plus 64 bytes per window of the horizon held.
//!
//! ```
//! use pulse::alert::{Config, Engine, Rules};
//! use pulse::record::Snapshot;
//!
//! let rules = Rules::parse("h12 router.errors[H12] count > 100 for 2m", "ops.rules").unwrap();
//! let mut engine = Engine::new(rules, Config::default());
//! let mut out = Vec::new();
//! for (i, count) in [3.0, 402.0, 428.0, 5.0].into_iter().enumerate() {
//!     let snap = Snapshot {
//!         stat: "router.errors".into(),
//!         key: Some("H12".into()),
//!         start: 60 * i as i64,
//!         secs: 60,
//!         is_final: true,
//!         values: [("count".to_string(), count)].into_iter().collect(),
//!     };
//!     engine.add(&snap, &mut out);
//! }
//! let states: Vec<(i64, &str)> = out.iter().map(|t| (t.start, t.status.as_str())).collect();
//! assert_eq!(states, [(60, "pending"), (120, "firing"), (180, "resolved")]);
//! ```

pub mod rules;
pub mod webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::{write_json_str, Snapshot};
use crate::sink::SnapshotRef;
use crate::stat::hash::FastHasher;
pub use rules::{Cond, KeySel, Op, Rule, Rules};

/// A phase of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Ok,
    Pending,
    Firing,
}

/// What a check result says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The condition began to hold; it must hold for `for` before firing.
    Pending,
    Firing,
    /// A firing alert's condition cleared (for `keep` after).
    Resolved,
    /// A pending alert's condition stopped holding before it fired.
    Ok,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Firing => "firing",
            Status::Resolved => "resolved",
            Status::Ok => "ok",
        }
    }
}

/// The threshold a window was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    None,
    One(f64),
    Range(f64, f64),
}

/// One window of one series, as an instance saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub start: i64,
    pub secs: u32,
    /// A final snapshot of the series came for this window.
    pub present: bool,
    /// The rule's value in it (none when absent or the snapshot lacks that value).
    pub value: Option<f64>,
}

/// The state of one instance between windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Inst {
    pub phase: Phase,
    /// Windows in a row the condition held (while pending).
    pub run: u32,
    /// Windows in a row the clear condition failed (while firing).
    pub fail: u32,
    /// Start of the window the condition began to hold in.
    pub since: i64,
    /// The previous window's value (for `rises by` / `falls by`).
    pub prev: Option<(i64, f64)>,
    /// When a firing alert was last stated (`--repeat`).
    pub stated: i64,
}

/// One transition of one instance: the check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Index into the rules.
    pub rule: usize,
    pub key: Key,
    pub status: Status,
    pub value: Option<f64>,
    pub threshold: Threshold,
    pub start: i64,
    pub secs: u32,
    pub since: i64,
    /// It corrects what was written earlier (late data re-evaluated a window).
    pub correction: bool,
    /// A correction saying an earlier transition did not happen after all.
    pub withdrawn: bool,
    /// A firing alert stated again (`--repeat`), not a change.
    pub repeat: bool,
    /// Evaluated on a provisional snapshot (`--early`): may be withdrawn when the window's
    /// final snapshot says otherwise.
    pub provisional: bool,
}

/// A series' key, shared by its instances and the transitions they write.
pub type Key = Option<Arc<str>>;

/// A window held for corrections, with the instance's state before it: a late snapshot
/// replays from there, and the oldest one's is the state a correction can go back to.
///
/// Packed into one cache line (an [`Entry`] and an [`Inst`] take 88 bytes): a thousand
/// instances each write their ring once a window, and the rings do not stay in the cache,
/// so a window costs one line per instance, not two. Numbers that may be none are NaN
/// then (values are finite: see [`Engine::add`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(align(64))]
struct Slot {
    start: i64,
    value: f64,
    since: i64,
    prev_start: i64,
    prev_value: f64,
    stated: i64,
    run: u32,
    fail: u32,
    secs: u32,
    present: bool,
    phase: Phase,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl Slot {
    fn new(e: &Entry, before: &Inst) -> Slot {
        let (prev_start, prev_value) = before.prev.unwrap_or((0, f64::NAN));
        Slot {
            start: e.start,
            value: e.value.unwrap_or(f64::NAN),
            since: before.since,
            prev_start,
            prev_value,
            stated: before.stated,
            run: before.run,
            fail: before.fail,
            secs: e.secs,
            present: e.present,
            phase: before.phase,
        }
    }

    fn e(&self) -> Entry {
        Entry {
            start: self.start,
            secs: self.secs,
            present: self.present,
            value: Some(self.value).filter(|v| !v.is_nan()),
        }
    }

    fn set_e(&mut self, e: &Entry) {
        *self = Slot::new(e, &self.before());
    }

    /// The state before this window.
    fn before(&self) -> Inst {
        Inst {
            phase: self.phase,
            run: self.run,
            fail: self.fail,
            since: self.since,
            prev: Some((self.prev_start, self.prev_value)).filter(|p| !p.1.is_nan()),
            stated: self.stated,
        }
    }

    fn set_before(&mut self, st: &Inst) {
        *self = Slot::new(&self.e(), st);
    }
}

/// What stepping an instance reads of its rule, kept in the instance itself: a thousand
/// instances stepped in turn would otherwise each reach for a rule of their own.
#[derive(Debug, Clone, PartialEq)]
struct Kernel {
    cond: Cond,
    for_secs: u32,
    keep_secs: u32,
}

impl Kernel {
    fn of(rule: &Rule) -> Kernel {
        Kernel {
            cond: rule.cond.clone(),
            for_secs: rule.for_secs,
            keep_secs: rule.keep_secs,
        }
    }

    /// [`Rule::need`].
    fn need(&self, secs: u32) -> u32 {
        rules::windows(self.for_secs, secs).max(1)
    }

    /// [`Rule::keep`].
    fn keep(&self, secs: u32) -> u32 {
        rules::windows(self.keep_secs, secs)
    }
}

/// One alert instance: a rule over one key of its stat.
#[derive(Debug, Clone)]
pub struct Instance {
    pub rule: usize,
    k: Kernel,
    /// Index of the rule's value name in its stat's names (see `StatRules`).
    name: usize,
    /// The state after the newest window.
    pub cur: Inst,
    /// The windows held for corrections, oldest first.
    ring: VecDeque<Slot>,
    /// End of the newest window held, kept here: every snapshot asks for it, and the rings
    /// of a thousand instances are rarely in the cache.
    last_end: Option<i64>,
    /// With `--early`: the window a provisional snapshot was evaluated for, and the
    /// provisional transitions written for it (withdrawn unless its final one confirms them).
    early: Option<(i64, Vec<Transition>)>,
}

/// An instance as a state file keeps it: the state after the newest window, the state
/// before the oldest one held, and the windows held.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedInst {
    pub cur: Inst,
    pub base: Inst,
    pub ring: VecDeque<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early: Option<(i64, Vec<Transition>)>,
}

impl Instance {
    fn new(rule: &Rule, idx: usize, name: usize) -> Instance {
        Instance {
            rule: idx,
            k: Kernel::of(rule),
            name,
            cur: Inst::default(),
            ring: VecDeque::new(),
            last_end: None,
            early: None,
        }
    }

    /// End of the newest window evaluated.
    fn end(&self) -> Option<i64> {
        self.last_end
    }

    /// The state before the oldest window held (the newest one's when none is held).
    fn base(&self) -> Inst {
        self.ring.front().map_or(self.cur, Slot::before)
    }

    fn saved(&self) -> SavedInst {
        SavedInst {
            cur: self.cur,
            base: self.base(),
            ring: self.ring.iter().map(Slot::e).collect(),
            early: self.early.clone(),
        }
    }

    /// From a state file: the state before each window held is found again by stepping
    /// from `base` (as a correction would).
    fn from_saved(rule: &Rule, idx: usize, name: usize, s: SavedInst) -> Instance {
        let k = Kernel::of(rule);
        let mut st = s.base;
        let mut sink = Vec::new();
        let last_end = s.ring.back().map(|e| e.start + e.secs as i64);
        let ring = s
            .ring
            .into_iter()
            .map(|e| {
                let before = st;
                step(&k, idx, &None, &mut st, &e, None, &mut sink);
                sink.clear();
                Slot::new(&e, &before)
            })
            .collect();
        let mut early = s.early;
        if let Some((_, ts)) = &mut early {
            ts.iter_mut().for_each(|t| t.rule = idx);
        }
        Instance {
            rule: idx,
            k,
            name,
            cur: s.cur,
            ring,
            last_end,
            early,
        }
    }
}

/// The evaluation of one window: does the condition hold, against what threshold.
fn eval(k: &Kernel, e: &Entry, prev: Option<f64>, firing: bool) -> (bool, Threshold) {
    match &k.cond {
        Cond::Absent => (!e.present, Threshold::None),
        Cond::Cmp {
            op,
            threshold,
            clear,
        } => {
            let t = if firing { *clear } else { *threshold };
            (e.value.is_some_and(|v| op.test(v, t)), Threshold::One(t))
        }
        Cond::Outside { lo, hi, clear } => {
            let (a, b) = if firing { *clear } else { (*lo, *hi) };
            (
                e.value.is_some_and(|v| v < a || v > b),
                Threshold::Range(a, b),
            )
        }
        Cond::Change { rise, by, percent } => {
            let Some(p) = prev else {
                return (false, Threshold::None);
            };
            let delta = if *percent { p.abs() * by / 100.0 } else { *by };
            let t = if *rise { p + delta } else { p - delta };
            let holds = e.value.is_some_and(|v| {
                if *rise {
                    v >= t && v > p
                } else {
                    v <= t && v < p
                }
            });
            (holds, Threshold::One(t))
        }
    }
}

/// Step one instance over one window: the pure state machine.
fn step(
    k: &Kernel,
    idx: usize,
    key: &Key,
    st: &mut Inst,
    e: &Entry,
    repeat: Option<i64>,
    out: &mut Vec<Transition>,
) {
    let prev = st
        .prev
        .filter(|(s, _)| *s + e.secs as i64 == e.start)
        .map(|p| p.1);
    let (holds, threshold) = eval(k, e, prev, st.phase == Phase::Firing);
    st.prev = e.value.map(|v| (e.start, v));
    let mut emit = |st: &Inst, status: Status, repeat: bool| {
        out.push(Transition {
            rule: idx,
            key: key.clone(),
            status,
            value: e.value,
            threshold,
            start: e.start,
            secs: e.secs,
            since: st.since,
            correction: false,
            withdrawn: false,
            repeat,
            provisional: false,
        })
    };
    match st.phase {
        Phase::Ok => {
            if holds {
                st.since = e.start;
                st.run = 1;
                if k.need(e.secs) <= 1 {
                    st.phase = Phase::Firing;
                    st.fail = 0;
                    st.stated = e.start;
                    emit(st, Status::Firing, false);
                } else {
                    st.phase = Phase::Pending;
                    emit(st, Status::Pending, false);
                }
            }
        }
        Phase::Pending => {
            if holds {
                st.run += 1;
                if st.run >= k.need(e.secs) {
                    st.phase = Phase::Firing;
                    st.fail = 0;
                    st.stated = e.start;
                    emit(st, Status::Firing, false);
                }
            } else {
                st.phase = Phase::Ok;
                st.run = 0;
                emit(st, Status::Ok, false);
            }
        }
        Phase::Firing => {
            if holds {
                st.fail = 0;
            } else {
                st.fail += 1;
                if st.fail > k.keep(e.secs) {
                    st.phase = Phase::Ok;
                    st.fail = 0;
                    st.run = 0;
                    emit(st, Status::Resolved, false);
                    return;
                }
            }
            if let Some(r) = repeat {
                if e.start - st.stated >= r {
                    st.stated = e.start;
                    emit(st, Status::Firing, true);
                }
            }
        }
    }
}

/// The series of one stat: its key and the instances of the rules that watch it.
#[derive(Debug)]
struct Series {
    key: Key,
    insts: Vec<Instance>,
}

/// A series key as a snapshot gives it, to look a series up without making a [`Key`].
#[derive(Hash)]
struct KeyRef<'a>(Option<&'a str>);

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0 == key.as_deref()
    }
}

type FastBuild = BuildHasherDefault<FastHasher>;

/// The instances of one stat's rules.
#[derive(Debug)]
struct StatRules {
    stat: String,
    rules: Vec<usize>,
    /// The value names its rules read, each once (looked up once per snapshot).
    names: Vec<String>,
    /// Per rule of the engine (indexed by rule), its value name's index in `names`.
    name_of: HashMap<usize, usize>,
    /// `KeyRef` hashes as `Key` does: `Option<&str>` and `Option<Arc<str>>` both hash the
    /// variant, then the text.
    series: hashbrown::HashMap<Key, Series, FastBuild>,
}

impl StatRules {
    /// The instances of `key`, made for the rules that watch it on its first snapshot.
    fn series(&mut self, rules: &[Rule], key: Option<&str>) -> &mut Series {
        if !self.series.contains_key(&KeyRef(key)) {
            let insts = self
                .rules
                .iter()
                .filter(|&&i| rules[i].keys.matches(key))
                .map(|&i| Instance::new(&rules[i], i, self.name_of[&i]))
                .collect();
            let key: Key = key.map(Arc::from);
            self.series.insert(key.clone(), Series { key, insts });
        }
        self.series.get_mut(&KeyRef(key)).expect("just made")
    }
}

/// Options of the evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Windows held per instance for corrections by late data.
    pub horizon: u32,
    /// Re-state firing alerts this often (event seconds).
    pub repeat: Option<i64>,
    /// Also evaluate provisional snapshots (`--early`).
    pub early: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            horizon: 10,
            repeat: None,
            early: false,
        }
    }
}

/// A snapshot as the engine reads it, borrowed from wherever it is held: its values finite
/// and sorted by name, each name once (as [`SnapshotRef`] has them).
#[derive(Debug, Clone, Copy)]
pub struct View<'a, V> {
    pub stat: &'a str,
    pub key: Option<&'a str>,
    pub start: i64,
    pub secs: u32,
    pub is_final: bool,
    pub values: &'a [(V, f64)],
}

impl<V: AsRef<str>> View<'_, V> {
    fn get(&self, name: &str) -> Option<f64> {
        self.values
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| self.values[i].1)
    }
}

/// Every instance of every rule, stepped by final snapshots.
#[derive(Debug)]
pub struct Engine {
    pub rules: Vec<Rule>,
    config: Config,
    /// The stats some rule watches, in sorted order (the order of output when time
    /// advances), and where each is in it.
    stats: Vec<StatRules>,
    index: HashMap<String, usize, FastBuild>,
    /// The values of the snapshot being taken in, by the index of their name (reused).
    vals: Vec<Option<f64>>,
    /// Event time: the newest end of a final snapshot's window.
    pub clock: Option<i64>,
    /// Final snapshots for windows older than the horizon of their instance, ignored.
    pub too_late: u64,
    /// Final snapshots evaluated (of stats some rule watches).
    pub evaluated: u64,
}

/// A pending or firing alert, as [`Engine::active`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Active {
    pub stat: String,
    pub key: Option<String>,
    pub rule: String,
    pub severity: String,
    pub phase: Phase,
    pub since: i64,
}

/// What a state file keeps of one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub rule: String,
    pub stat: String,
    pub key: Option<String>,
    #[serde(flatten)]
    pub inst: SavedInst,
}

impl Engine {
    pub fn new(rules: Rules, config: Config) -> Engine {
        let mut by_stat: BTreeMap<String, StatRules> = BTreeMap::new();
        for (i, r) in rules.rules.iter().enumerate() {
            let sr = by_stat.entry(r.stat.clone()).or_insert_with(|| StatRules {
                stat: r.stat.clone(),
                rules: Vec::new(),
                names: Vec::new(),
                name_of: HashMap::new(),
                series: hashbrown::HashMap::default(),
            });
            sr.rules.push(i);
            let n = match sr.names.iter().position(|n| *n == r.value) {
                Some(n) => n,
                None => {
                    sr.names.push(r.value.clone());
                    sr.names.len() - 1
                }
            };
            sr.name_of.insert(i, n);
        }
        let stats: Vec<StatRules> = by_stat.into_values().collect();
        let index = stats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.stat.clone(), i))
            .collect();
        Engine {
            rules: rules.rules,
            config,
            stats,
            index,
            vals: Vec::new(),
            clock: None,
            too_late: 0,
            evaluated: 0,
        }
    }

    /// Number of alert instances held.
    pub fn instances(&self) -> usize {
        self.stats
            .iter()
            .map(|s| s.series.values().map(|s| s.insts.len()).sum::<usize>())
            .sum()
    }

    /// Take in one snapshot; transitions go to `out`. Provisional snapshots are ignored
    /// unless [`Config::early`].
    pub fn add(&mut self, snap: &Snapshot, out: &mut Vec<Transition>) {
        self.add_ref(&SnapshotRef::from(snap), out);
    }

    /// [`Engine::add`] of a snapshot as read, its names borrowed from the line.
    pub fn add_ref(&mut self, snap: &SnapshotRef, out: &mut Vec<Transition>) {
        self.add_view(
            &View {
                stat: &snap.stat,
                key: snap.key.as_deref(),
                start: snap.start,
                secs: snap.secs,
                is_final: snap.is_final,
                values: &snap.values,
            },
            out,
        );
    }

    /// [`Engine::add`] of a snapshot however it is held.
    pub fn add_view<V: AsRef<str>>(&mut self, snap: &View<V>, out: &mut Vec<Transition>) {
        if !snap.is_final {
            if self.config.early {
                self.add_early(snap, out);
            }
            return;
        }
        let end = snap.start + snap.secs as i64;
        if self.clock.is_none_or(|c| end > c) {
            self.advance(end, out);
        }
        let Some(&si) = self.index.get(snap.stat) else {
            return;
        };
        self.evaluated += 1;
        let sr = &mut self.stats[si];
        self.vals.clear();
        self.vals.extend(sr.names.iter().map(|n| snap.get(n)));
        let series = sr.series(&self.rules, snap.key);
        prefetch_rings(&series.insts);
        for inst in series.insts.iter_mut() {
            let e = Entry {
                start: snap.start,
                secs: snap.secs,
                present: true,
                value: self.vals[inst.name],
            };
            match inst.end() {
                // The next window, as nearly always.
                Some(last) if snap.start == last => {
                    push(inst, &series.key, e, self.config, out);
                }
                Some(last) if snap.start < last => {
                    correct(inst, &series.key, e, &mut self.too_late, out);
                }
                _ => {
                    fill(inst, &series.key, snap.start, self.config, out);
                    push(inst, &series.key, e, self.config, out);
                }
            }
        }
    }

    /// A provisional snapshot: what its window would give if it were final, written as
    /// provisional; what an earlier provisional snapshot of the window gave and this one
    /// does not is withdrawn.
    fn add_early<V: AsRef<str>>(&mut self, snap: &View<V>, out: &mut Vec<Transition>) {
        let Some(&si) = self.index.get(snap.stat) else {
            return;
        };
        // A series not seen final yet is made as a final would make it.
        let series = self.stats[si].series(&self.rules, snap.key);
        let config = Config {
            repeat: None,
            ..self.config
        };
        for inst in series.insts.iter_mut() {
            if inst.end().is_some_and(|last| snap.start < last) {
                continue; // the window was evaluated on its final snapshot
            }
            let rule = &self.rules[inst.rule];
            let e = Entry {
                start: snap.start,
                secs: snap.secs,
                present: true,
                value: snap.get(&rule.value),
            };
            let mut tmp = inst.clone();
            tmp.early = None;
            let mut got = Vec::new();
            fill(&mut tmp, &series.key, snap.start, config, &mut Vec::new());
            push(&mut tmp, &series.key, e, config, &mut got);
            got.retain(|t| t.start == snap.start);
            for t in &mut got {
                t.provisional = true;
            }
            let before = match inst.early.take() {
                Some((w, b)) if w == snap.start => b,
                Some((_, b)) => {
                    withdraw(&b, &[], out);
                    Vec::new()
                }
                None => Vec::new(),
            };
            withdraw(&before, &got, out);
            for t in &got {
                if !before.iter().any(|b| b.status == t.status) {
                    out.push(t.clone());
                }
            }
            inst.early = Some((snap.start, got));
        }
    }

    /// The event time moved to `end`: every window of a series that ended before it and
    /// has no final snapshot is missing.
    fn advance(&mut self, end: i64, out: &mut Vec<Transition>) {
        self.clock = Some(end);
        let config = self.config;
        for sr in &mut self.stats {
            // Only the series that miss a window: most sent one for every window.
            let missing = |i: &Instance| {
                i.ring
                    .back()
                    .is_some_and(|s| s.start + 2 * (s.secs as i64) < end)
            };
            let mut keys: Vec<Key> = sr
                .series
                .values()
                // The instances of a series are stepped together: the first tells.
                .filter(|s| s.insts.first().is_some_and(missing))
                .map(|s| s.key.clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            keys.sort();
            for key in keys {
                let kr = KeyRef(key.as_deref());
                let series = sr.series.get_mut(&kr).expect("a key");
                for inst in series.insts.iter_mut() {
                    let Some(last) = inst.end() else { continue };
                    let secs = inst.ring.back().map_or(60, |s| s.secs) as i64;
                    // Windows [last, last + secs) ... ending before `end`.
                    let upto = last + ((end - last - 1).max(0) / secs) * secs;
                    fill(inst, &series.key, upto, config, out);
                }
                // An instance that holds nothing but missing windows, and is ok, is gone
                // (an `absent` rule keeps it: its series was seen).
                series.insts.retain(|i| {
                    matches!(i.k.cond, Cond::Absent)
                        || i.cur.phase != Phase::Ok
                        || i.ring.iter().rev().any(|s| s.present)
                });
                if series.insts.is_empty() {
                    sr.series.remove(&kr);
                }
            }
        }
    }

    /// The instances that are pending or firing, by stat and key (for pulse-web's cells).
    pub fn active(&self) -> Vec<Active> {
        let mut out = Vec::new();
        for sr in &self.stats {
            for series in sr.series.values() {
                for i in series.insts.iter().filter(|i| i.cur.phase != Phase::Ok) {
                    let rule = &self.rules[i.rule];
                    out.push(Active {
                        stat: sr.stat.clone(),
                        key: series.key.as_deref().map(str::to_string),
                        rule: rule.name.clone(),
                        severity: rule.severity.clone(),
                        phase: i.cur.phase,
                        since: i.cur.since,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.stat, &a.key, &a.rule).cmp(&(&b.stat, &b.key, &b.rule)));
        out
    }

    /// The instances for a state file.
    pub fn save(&self) -> Vec<Saved> {
        let mut out = Vec::new();
        for sr in &self.stats {
            let mut series: Vec<&Series> = sr.series.values().collect();
            series.sort_by(|a, b| a.key.cmp(&b.key));
            for s in series {
                for inst in &s.insts {
                    out.push(Saved {
                        rule: self.rules[inst.rule].name.clone(),
                        stat: sr.stat.clone(),
                        key: s.key.as_deref().map(str::to_string),
                        inst: inst.saved(),
                    });
                }
            }
        }
        out
    }

    /// Take back instances from a state file; those of rules no longer defined (or now over
    /// another stat) are dropped, and their number returned.
    pub fn restore(&mut self, saved: Vec<Saved>, clock: Option<i64>) -> usize {
        let mut dropped = 0;
        self.clock = clock;
        for s in saved {
            let Some(i) = self
                .rules
                .iter()
                .position(|r| r.name == s.rule && r.stat == s.stat)
            else {
                dropped += 1;
                continue;
            };
            if !self.rules[i].keys.matches(s.key.as_deref()) {
                dropped += 1;
                continue;
            }
            let sr = &mut self.stats[self.index[&s.stat]];
            let name = sr.name_of[&i];
            let key: Key = s.key.as_deref().map(Arc::from);
            let series = sr.series.entry(key.clone()).or_insert_with(|| Series {
                key,
                insts: Vec::new(),
            });
            let inst = Instance::from_saved(&self.rules[i], i, name, s.inst);
            series.insts.retain(|x| x.rule != i);
            series.insts.push(inst);
            series.insts.sort_by_key(|x| x.rule);
        }
        dropped
    }
}

/// How a rule set's transitions are written: the check-result records, made without
/// serde from what is the same in every record of a rule. It owns a copy of the rules, so
/// that a thread of its own can write while the engine goes on.
#[derive(Debug)]
pub struct Records {
    pub rules: Vec<Rule>,
    /// Each rule's summary template, read once.
    templates: Vec<Template>,
    /// Each rule's fixed parts of its JSON record.
    heads: Vec<RecordHead>,
    /// Where a summary is filled in before it is written.
    scratch: String,
}

impl Records {
    pub fn new(rules: &[Rule]) -> Records {
        Records {
            templates: rules.iter().map(|r| Template::parse(&r.summary)).collect(),
            heads: rules.iter().map(RecordHead::new).collect(),
            rules: rules.to_vec(),
            scratch: String::new(),
        }
    }

    /// Write `t` as its JSON record (see `man/pulse-alert.1`, FORMAT) and a newline: the
    /// fields in the order of the format's documentation, numbers as serde_json writes
    /// them (whole ones without a fraction), `withdrawn`, `repeat` and `provisional` only
    /// when true. The tests hold a serde version of the record to compare it with.
    pub fn write_json(&mut self, t: &Transition, out: &mut Vec<u8>) {
        let head = &self.heads[t.rule];
        out.extend_from_slice(&head.rule_stat);
        match &t.key {
            Some(k) => write_json_str(out, k),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(&head.value_name);
        out.extend_from_slice(t.status.as_str().as_bytes());
        out.extend_from_slice(b"\",\"value\":");
        match t.value {
            Some(v) => write_num(out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"threshold\":");
        match t.threshold {
            Threshold::None => out.extend_from_slice(b"null"),
            Threshold::One(v) => write_num(out, v),
            Threshold::Range(a, b) => {
                out.push(b'[');
                write_num(out, a);
                out.push(b',');
                write_num(out, b);
                out.push(b']');
            }
        }
        let mut int = itoa::Buffer::new();
        out.extend_from_slice(b",\"start\":");
        out.extend_from_slice(int.format(t.start).as_bytes());
        out.extend_from_slice(b",\"secs\":");
        out.extend_from_slice(int.format(t.secs).as_bytes());
        out.extend_from_slice(b",\"since\":");
        out.extend_from_slice(int.format(t.since).as_bytes());
        out.extend_from_slice(&head.severity);
        self.scratch.clear();
        self.templates[t.rule].fill(t, &self.rules[t.rule], &mut self.scratch);
        write_json_str(out, &self.scratch);
        out.extend_from_slice(if t.correction {
            b",\"correction\":true"
        } else {
            b",\"correction\":false"
        });
        if t.withdrawn {
            out.extend_from_slice(b",\"withdrawn\":true");
        }
        if t.repeat {
            out.extend_from_slice(b",\"repeat\":true");
        }
        if t.provisional {
            out.extend_from_slice(b",\"provisional\":true");
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The parts of a rule's JSON record that are the same in every transition it writes.
#[derive(Debug)]
struct RecordHead {
    /// `{"rule":NAME,"stat":STAT,"key":`
    rule_stat: Vec<u8>,
    /// `,"value_name":NAME,"state":"`
    value_name: Vec<u8>,
    /// `,"severity":SEVERITY,"summary":`
    severity: Vec<u8>,
}

impl RecordHead {
    fn new(rule: &Rule) -> RecordHead {
        let mut rule_stat = b"{\"rule\":".to_vec();
        write_json_str(&mut rule_stat, &rule.name);
        rule_stat.extend_from_slice(b",\"stat\":");
        write_json_str(&mut rule_stat, &rule.stat);
        rule_stat.extend_from_slice(b",\"key\":");
        let mut value_name = b",\"value_name\":".to_vec();
        if rule.value.is_empty() {
            value_name.extend_from_slice(b"null");
        } else {
            write_json_str(&mut value_name, &rule.value);
        }
        value_name.extend_from_slice(b",\"state\":\"");
        let mut severity = b",\"severity\":".to_vec();
        write_json_str(&mut severity, &rule.severity);
        severity.extend_from_slice(b",\"summary\":");
        RecordHead {
            rule_stat,
            value_name,
            severity,
        }
    }
}

/// A number as [`Num`] serializes it.
fn write_num(out: &mut Vec<u8>, v: f64) {
    use serde_json::ser::Formatter;
    let mut f = serde_json::ser::CompactFormatter;
    let written = if v.fract() == 0.0 && v.abs() < 9e15 {
        f.write_i64(out, v as i64)
    } else if v.is_finite() {
        f.write_f64(out, v)
    } else {
        f.write_null(out)
    };
    written.expect("writing to a Vec");
}

/// One piece of a summary template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Key,
    Value,
    Threshold,
    Rule,
    Stat,
    Name,
    State,
    Severity,
}

/// A summary template, read once: text and the fields it names.
#[derive(Debug, Clone, PartialEq)]
struct Template(Vec<Part>);

impl Template {
    fn parse(text: &str) -> Template {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('{') {
            lit.push_str(&rest[..i]);
            let tail = &rest[i..];
            let Some(j) = tail.find('}') else {
                lit.push_str(tail);
                rest = "";
                break;
            };
            let part = match &tail[1..j] {
                "key" => Part::Key,
                "value" => Part::Value,
                "threshold" => Part::Threshold,
                "rule" => Part::Rule,
                "stat" => Part::Stat,
                "name" => Part::Name,
                "state" => Part::State,
                "severity" => Part::Severity,
                // Not a field: kept as written.
                _ => {
                    lit.push_str(&tail[..=j]);
                    rest = &tail[j + 1..];
                    continue;
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &tail[j + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Template(parts)
    }

    fn fill(&self, t: &Transition, rule: &Rule, out: &mut String) {
        for p in &self.0 {
            match p {
                Part::Text(s) => out.push_str(s),
                Part::Key => out.push_str(t.key.as_deref().unwrap_or("null")),
                Part::Value => match t.value {
                    Some(v) => push_num(out, v),
                    None => out.push_str("none"),
                },
                Part::Threshold => t.threshold.push_text(out),
                Part::Rule => out.push_str(&rule.name),
                Part::Stat => out.push_str(&rule.stat),
                Part::Name => out.push_str(&rule.value),
                Part::State => out.push_str(t.status.as_str()),
                Part::Severity => out.push_str(&rule.severity),
            }
        }
    }
}

/// Ask for the newest window of each instance's ring to be brought into the cache, where
/// the next one is written: for all the instances of a series at once, so the memory reads
/// overlap instead of each waiting in turn (the rings of a thousand rules do not stay in
/// the cache from one window to the next).
#[inline]
fn prefetch_rings(insts: &[Instance]) {
    #[cfg(target_arch = "x86_64")]
    for inst in insts {
        if let Some(back) = inst.ring.back() {
            let p = (back as *const Slot).cast::<i8>();
            // SAFETY: a prefetch is only a hint; it reads nothing and cannot fault, and the
            // addresses are of the ring's own slot and the bytes right after it.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(std::mem::size_of::<Slot>()));
            }
        }
    }
}

/// Step `inst` over the missing windows from its newest one up to `upto` (exclusive). A
/// long silence steps at most enough windows for the state machine to settle.
fn fill(inst: &mut Instance, key: &Key, upto: i64, config: Config, out: &mut Vec<Transition>) {
    let Some(mut w) = inst.end() else { return };
    if w >= upto {
        return;
    }
    let secs = inst.ring.back().map_or(60, |s| s.secs);
    let settle = (inst.k.need(secs) + inst.k.keep(secs) + config.horizon + 2) as i64;
    let total = (upto - w) / secs as i64;
    if total > settle {
        // Only the first windows can change the state; the rest are all alike. Step the
        // first ones, then jump (without repeats in between) to the last ones.
        for _ in 0..settle {
            push(inst, key, missing(w, secs), config, out);
            w += secs as i64;
        }
        let jump = upto - config.horizon as i64 * secs as i64;
        if jump > w {
            w = jump;
            inst.ring.clear();
            inst.last_end = None;
        }
    }
    while w < upto {
        push(inst, key, missing(w, secs), config, out);
        w += secs as i64;
    }
}

fn missing(start: i64, secs: u32) -> Entry {
    Entry {
        start,
        secs,
        present: false,
        value: None,
    }
}

/// Step `inst` over its next window and keep that window for corrections.
fn push(inst: &mut Instance, key: &Key, e: Entry, config: Config, out: &mut Vec<Transition>) {
    let from = out.len();
    let before = inst.cur;
    step(
        &inst.k,
        inst.rule,
        key,
        &mut inst.cur,
        &e,
        config.repeat,
        out,
    );
    if inst.early.is_some() {
        confirm_early(inst, e.start, from, out);
    }
    let horizon = config.horizon.max(1) as usize;
    if inst.ring.len() >= horizon {
        inst.ring.pop_front();
    } else if inst.ring.capacity() < horizon {
        // Room for the horizon and no more: the ring turns through all its capacity, and
        // the fewer bytes a thousand instances turn through, the more stay in the cache.
        inst.ring.reserve_exact(horizon - inst.ring.len());
    }
    inst.ring.push_back(Slot::new(&e, &before));
    inst.last_end = Some(e.start + e.secs as i64);
}

/// The final snapshot of window `w` was stepped, writing `out[from..]`: the provisional
/// transitions of that window (or of an older one) it does not confirm are withdrawn.
fn confirm_early(inst: &mut Instance, w: i64, from: usize, out: &mut Vec<Transition>) {
    let Some((ew, early)) = inst.early.take() else {
        return;
    };
    if ew > w {
        inst.early = Some((ew, early));
        return;
    }
    let confirmed: Vec<Transition> = if ew == w {
        out[from..].to_vec()
    } else {
        Vec::new()
    };
    let mut gone = Vec::new();
    withdraw(&early, &confirmed, &mut gone);
    out.splice(from..from, gone);
}

/// Write as withdrawn the provisional transitions of `before` that `now` does not have.
fn withdraw(before: &[Transition], now: &[Transition], out: &mut Vec<Transition>) {
    for b in before {
        if !now.iter().any(|t| t.status == b.status) {
            let mut w = b.clone();
            w.withdrawn = true;
            out.push(w);
        }
    }
}

/// A final snapshot for a window already evaluated: replace it and write what changed.
/// Only the windows from it on can change, so they alone are stepped again (without
/// repeats), from the state before it.
fn correct(
    inst: &mut Instance,
    key: &Key,
    e: Entry,
    too_late: &mut u64,
    out: &mut Vec<Transition>,
) {
    let Some(i) = inst.ring.iter().position(|x| x.start == e.start) else {
        *too_late += 1;
        return;
    };
    let held = inst.ring[i].e();
    if held == e || held.secs != e.secs {
        return;
    }
    let mut before = Vec::new();
    let mut st = inst.ring[i].before();
    for s in inst.ring.range(i..) {
        step(&inst.k, inst.rule, key, &mut st, &s.e(), None, &mut before);
    }
    inst.ring[i].set_e(&e);
    let mut after = Vec::new();
    let mut st = inst.ring[i].before();
    for s in inst.ring.range_mut(i..) {
        s.set_before(&st);
        step(&inst.k, inst.rule, key, &mut st, &s.e(), None, &mut after);
    }
    let stated = inst.cur.stated;
    inst.cur = st;
    if inst.cur.phase == Phase::Firing {
        inst.cur.stated = inst.cur.stated.max(stated);
    }
    let same = |a: &Transition, b: &Transition| a.start == b.start && a.status == b.status;
    // Transitions that come and go, in window order.
    let mut changed: Vec<Transition> = Vec::new();
    for t in &before {
        if !after.iter().any(|a| same(a, t)) {
            let mut t = t.clone();
            t.correction = true;
            t.withdrawn = true;
            changed.push(t);
        }
    }
    for t in &after {
        if !before.iter().any(|b| same(b, t)) {
            let mut t = t.clone();
            t.correction = true;
            changed.push(t);
        }
    }
    changed.sort_by_key(|t| (t.start, !t.withdrawn));
    out.extend(changed);
}

/// Values as people read them: whole numbers without a fraction, others to 3 decimals.
pub fn fmt_num(v: f64) -> String {
    let mut s = String::new();
    push_num(&mut s, v);
    s
}

/// [`fmt_num`] onto `out`.
fn push_num(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    // `{:.3}` rounds the exact value, half to even. Below 1e9, `a * 1000` is within 2^-13 of
    // the exact product, so away from a half it rounds the same, and the digits are made
    // here; the rest (near a half, large, not finite) goes to the formatter.
    let a = v.abs();
    if a < 1e9 {
        let y = a * 1000.0;
        if (y - y.floor() - 0.5).abs() > 1e-3 {
            let r = y.round() as u64;
            if v < 0.0 {
                out.push('-');
            }
            let mut int = itoa::Buffer::new();
            out.push_str(int.format(r / 1000));
            let mut frac = r % 1000;
            if frac != 0 {
                let mut digits = 3;
                while frac.is_multiple_of(10) {
                    frac /= 10;
                    digits -= 1;
                }
                out.push('.');
                let text = int.format(frac);
                (text.len()..digits).for_each(|_| out.push('0'));
                out.push_str(text);
            }
            return;
        }
    }
    let from = out.len();
    write!(out, "{v:.3}").expect("writing to a String");
    if out[from..].contains('.') {
        let keep = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(keep);
    }
}

impl Threshold {
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.push_text(&mut s);
        s
    }

    fn push_text(&self, out: &mut String) {
        match self {
            Threshold::None => {}
            Threshold::One(t) => push_num(out, *t),
            Threshold::Range(a, b) => {
                push_num(out, *a);
                out.push_str("..");
                push_num(out, *b);
            }
        }
    }
}

impl Transition {
    /// The summary template filled in: `{key}`, `{value}`, `{threshold}`, `{rule}`,
    /// `{stat}`, `{name}` (the value name), `{state}`, `{severity}`.
    pub fn summary(&self, rule: &Rule) -> String {
        let mut out = String::with_capacity(rule.summary.len() + 16);
        Template::parse(&rule.summary).fill(self, rule, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
