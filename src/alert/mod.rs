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
//! Memory: per instance about 150 bytes plus 32 bytes per window of the horizon held.
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

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::record::Snapshot;
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    pub key: Option<String>,
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

/// One alert instance: a rule over one key of its stat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    #[serde(skip)]
    pub rule: usize,
    /// Index of the rule's value name in its stat's names (see `StatRules`).
    #[serde(skip)]
    name: usize,
    /// The state after the newest window.
    pub cur: Inst,
    /// The state before the oldest window of `ring`.
    pub base: Inst,
    /// The windows held for corrections, oldest first.
    pub ring: VecDeque<Entry>,
    /// With `--early`: the window a provisional snapshot was evaluated for, and the
    /// provisional transitions written for it (withdrawn unless its final one confirms them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early: Option<(i64, Vec<Transition>)>,
}

impl Instance {
    fn new(rule: usize, name: usize) -> Instance {
        Instance {
            rule,
            name,
            cur: Inst::default(),
            base: Inst::default(),
            ring: VecDeque::new(),
            early: None,
        }
    }

    /// End of the newest window evaluated.
    fn end(&self) -> Option<i64> {
        self.ring.back().map(|e| e.start + e.secs as i64)
    }
}

/// The evaluation of one window: does the condition hold, against what threshold.
fn eval(rule: &Rule, e: &Entry, prev: Option<f64>, firing: bool) -> (bool, Threshold) {
    match &rule.cond {
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
pub fn step(
    rule: &Rule,
    idx: usize,
    key: &Option<String>,
    st: &mut Inst,
    e: &Entry,
    repeat: Option<i64>,
    out: &mut Vec<Transition>,
) {
    let prev = st
        .prev
        .filter(|(s, _)| *s + e.secs as i64 == e.start)
        .map(|p| p.1);
    let (holds, threshold) = eval(rule, e, prev, st.phase == Phase::Firing);
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
    let need = rule.need(e.secs);
    match st.phase {
        Phase::Ok => {
            if holds {
                st.since = e.start;
                st.run = 1;
                if need <= 1 {
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
                if st.run >= need {
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
                if st.fail > rule.keep(e.secs) {
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

/// The instances of one stat's rules.
#[derive(Debug, Default)]
struct StatRules {
    rules: Vec<usize>,
    /// The value names its rules read, each once (looked up once per snapshot).
    names: Vec<String>,
    /// Per rule of the engine (indexed by rule), its value name's index in `names`.
    name_of: HashMap<usize, usize>,
    series: HashMap<Option<String>, Vec<Instance>>,
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

/// Every instance of every rule, stepped by final snapshots.
#[derive(Debug)]
pub struct Engine {
    pub rules: Vec<Rule>,
    config: Config,
    stats: HashMap<String, StatRules>,
    /// Stat names in sorted order (for a deterministic order of output).
    order: Vec<String>,
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
    pub inst: Instance,
}

impl Engine {
    pub fn new(rules: Rules, config: Config) -> Engine {
        let mut stats: HashMap<String, StatRules> = HashMap::new();
        for (i, r) in rules.rules.iter().enumerate() {
            let sr = stats.entry(r.stat.clone()).or_default();
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
        let mut order: Vec<String> = stats.keys().cloned().collect();
        order.sort();
        Engine {
            rules: rules.rules,
            config,
            stats,
            order,
            clock: None,
            too_late: 0,
            evaluated: 0,
        }
    }

    /// Number of alert instances held.
    pub fn instances(&self) -> usize {
        self.stats
            .values()
            .map(|s| s.series.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Take in one snapshot; transitions go to `out`. Provisional snapshots are ignored
    /// unless [`Config::early`].
    pub fn add(&mut self, snap: &Snapshot, out: &mut Vec<Transition>) {
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
        let Some(sr) = self.stats.get_mut(&snap.stat) else {
            return;
        };
        self.evaluated += 1;
        let rules = &self.rules;
        let vals: Vec<Option<f64>> = sr
            .names
            .iter()
            .map(|n| snap.values.get(n).copied())
            .collect();
        let insts = match sr.series.get_mut(&snap.key) {
            Some(v) => v,
            None => {
                let v: Vec<Instance> = sr
                    .rules
                    .iter()
                    .filter(|&&i| rules[i].keys.matches(snap.key.as_deref()))
                    .map(|&i| Instance::new(i, sr.name_of[&i]))
                    .collect();
                sr.series.entry(snap.key.clone()).or_insert(v)
            }
        };
        for inst in insts.iter_mut() {
            let rule = &rules[inst.rule];
            let e = Entry {
                start: snap.start,
                secs: snap.secs,
                present: true,
                value: vals[inst.name],
            };
            match inst.end() {
                Some(last) if snap.start < last => {
                    correct(rule, inst, &snap.key, e, &mut self.too_late, out);
                }
                _ => {
                    fill(rule, inst, &snap.key, snap.start, self.config, out);
                    push(rule, inst, &snap.key, e, self.config, out);
                }
            }
        }
    }

    /// A provisional snapshot: what its window would give if it were final, written as
    /// provisional; what an earlier provisional snapshot of the window gave and this one
    /// does not is withdrawn.
    fn add_early(&mut self, snap: &Snapshot, out: &mut Vec<Transition>) {
        let Some(sr) = self.stats.get_mut(&snap.stat) else {
            return;
        };
        let Some(insts) = sr.series.get_mut(&snap.key) else {
            // A series not seen final yet: create it as a final would.
            let rules = &self.rules;
            let v: Vec<Instance> = sr
                .rules
                .iter()
                .filter(|&&i| rules[i].keys.matches(snap.key.as_deref()))
                .map(|&i| Instance::new(i, sr.name_of[&i]))
                .collect();
            sr.series.insert(snap.key.clone(), v);
            return self.add_early(snap, out);
        };
        let config = Config {
            repeat: None,
            ..self.config
        };
        for inst in insts.iter_mut() {
            if inst.end().is_some_and(|last| snap.start < last) {
                continue; // the window was evaluated on its final snapshot
            }
            let rule = &self.rules[inst.rule];
            let e = Entry {
                start: snap.start,
                secs: snap.secs,
                present: true,
                value: snap.values.get(&rule.value).copied(),
            };
            let mut tmp = inst.clone();
            tmp.early = None;
            let mut got = Vec::new();
            fill(
                rule,
                &mut tmp,
                &snap.key,
                snap.start,
                config,
                &mut Vec::new(),
            );
            push(rule, &mut tmp, &snap.key, e, config, &mut got);
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
        for stat in &self.order {
            let sr = self.stats.get_mut(stat).expect("in order");
            // Only the series that miss a window: most sent one for every window.
            let missing = |i: &Instance| {
                i.ring
                    .back()
                    .is_some_and(|e| e.start + 2 * (e.secs as i64) < end)
            };
            let mut keys: Vec<&Option<String>> = sr
                .series
                .iter()
                // The instances of a series are stepped together: the first tells.
                .filter(|(_, insts)| insts.first().is_some_and(missing))
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                continue;
            }
            keys.sort();
            let keys: Vec<Option<String>> = keys.into_iter().cloned().collect();
            for key in keys {
                let insts = sr.series.get_mut(&key).expect("a key");
                for inst in insts.iter_mut() {
                    let rule = &self.rules[inst.rule];
                    let Some(last) = inst.end() else { continue };
                    let secs = inst.ring.back().map_or(60, |e| e.secs) as i64;
                    // Windows [last, last + secs) ... ending before `end`.
                    let upto = last + ((end - last - 1).max(0) / secs) * secs;
                    fill(rule, inst, &key, upto, config, out);
                }
                // An instance that holds nothing but missing windows, and is ok, is gone
                // (an `absent` rule keeps it: its series was seen).
                insts.retain(|i| {
                    matches!(self.rules[i.rule].cond, Cond::Absent)
                        || i.cur.phase != Phase::Ok
                        || i.ring.iter().rev().any(|e| e.present)
                });
                if insts.is_empty() {
                    sr.series.remove(&key);
                }
            }
        }
    }

    /// The instances that are pending or firing, by stat and key (for pulse-web's cells).
    pub fn active(&self) -> Vec<Active> {
        let mut out = Vec::new();
        for (stat, sr) in &self.stats {
            for (key, insts) in &sr.series {
                for i in insts.iter().filter(|i| i.cur.phase != Phase::Ok) {
                    let rule = &self.rules[i.rule];
                    out.push(Active {
                        stat: stat.clone(),
                        key: key.clone(),
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
        for stat in &self.order {
            let sr = &self.stats[stat];
            let mut keys: Vec<&Option<String>> = sr.series.keys().collect();
            keys.sort();
            for key in keys {
                for inst in &sr.series[key] {
                    out.push(Saved {
                        rule: self.rules[inst.rule].name.clone(),
                        stat: stat.clone(),
                        key: key.clone(),
                        inst: inst.clone(),
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
            let sr = self.stats.get_mut(&s.stat).expect("a rule's stat");
            let insts = sr.series.entry(s.key).or_default();
            let mut inst = s.inst;
            inst.rule = i;
            inst.name = sr.name_of[&i];
            if let Some((_, ts)) = &mut inst.early {
                ts.iter_mut().for_each(|t| t.rule = i);
            }
            insts.retain(|x| x.rule != i);
            insts.push(inst);
            insts.sort_by_key(|x| x.rule);
        }
        dropped
    }
}

/// Step `inst` over the missing windows from its newest one up to `upto` (exclusive). A
/// long silence steps at most enough windows for the state machine to settle.
fn fill(
    rule: &Rule,
    inst: &mut Instance,
    key: &Option<String>,
    upto: i64,
    config: Config,
    out: &mut Vec<Transition>,
) {
    let Some(mut w) = inst.end() else { return };
    let secs = inst.ring.back().map_or(60, |e| e.secs);
    let settle = (rule.need(secs) + rule.keep(secs) + config.horizon + 2) as i64;
    let total = (upto - w) / secs as i64;
    if total > settle {
        // Only the first windows can change the state; the rest are all alike. Step the
        // first ones, then jump (without repeats in between) to the last ones.
        for _ in 0..settle {
            push(rule, inst, key, missing(w, secs), config, out);
            w += secs as i64;
        }
        let jump = upto - config.horizon as i64 * secs as i64;
        if jump > w {
            w = jump;
            inst.base = inst.cur.clone();
            inst.ring.clear();
        }
    }
    while w < upto {
        push(rule, inst, key, missing(w, secs), config, out);
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
fn push(
    rule: &Rule,
    inst: &mut Instance,
    key: &Option<String>,
    e: Entry,
    config: Config,
    out: &mut Vec<Transition>,
) {
    let from = out.len();
    step(rule, inst.rule, key, &mut inst.cur, &e, config.repeat, out);
    if let Some((w, early)) = inst.early.take() {
        if w > e.start {
            inst.early = Some((w, early));
        } else {
            let confirmed: Vec<Transition> = if w == e.start {
                out[from..].to_vec()
            } else {
                Vec::new()
            };
            let mut gone = Vec::new();
            withdraw(&early, &confirmed, &mut gone);
            out.splice(from..from, gone);
        }
    }
    inst.ring.push_back(e);
    while inst.ring.len() > config.horizon.max(1) as usize {
        let old = inst.ring.pop_front().expect("not empty");
        let mut sink = Vec::new();
        step(rule, inst.rule, key, &mut inst.base, &old, None, &mut sink);
    }
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

/// Replay an instance from its base over its ring (without repeats).
fn replay(rule: &Rule, inst: &Instance, key: &Option<String>, out: &mut Vec<Transition>) -> Inst {
    let mut st = inst.base.clone();
    for e in &inst.ring {
        step(rule, inst.rule, key, &mut st, e, None, out);
    }
    st
}

/// A final snapshot for a window already evaluated: replace it and write what changed.
fn correct(
    rule: &Rule,
    inst: &mut Instance,
    key: &Option<String>,
    e: Entry,
    too_late: &mut u64,
    out: &mut Vec<Transition>,
) {
    let Some(i) = inst.ring.iter().position(|x| x.start == e.start) else {
        *too_late += 1;
        return;
    };
    if inst.ring[i] == e || inst.ring[i].secs != e.secs {
        return;
    }
    let mut before = Vec::new();
    replay(rule, inst, key, &mut before);
    inst.ring[i] = e;
    let mut after = Vec::new();
    let stated = inst.cur.stated;
    inst.cur = replay(rule, inst, key, &mut after);
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
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Threshold {
    pub fn text(&self) -> String {
        match self {
            Threshold::None => String::new(),
            Threshold::One(t) => fmt_num(*t),
            Threshold::Range(a, b) => format!("{}..{}", fmt_num(*a), fmt_num(*b)),
        }
    }
}

impl Transition {
    /// The summary template filled in: `{key}`, `{value}`, `{threshold}`, `{rule}`,
    /// `{stat}`, `{name}` (the value name), `{state}`, `{severity}`.
    pub fn summary(&self, rule: &Rule) -> String {
        let mut out = String::with_capacity(rule.summary.len() + 16);
        let mut rest = rule.summary.as_str();
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let Some(j) = tail.find('}') else {
                out.push_str(tail);
                rest = "";
                break;
            };
            let field = &tail[1..j];
            match field {
                "key" => out.push_str(self.key.as_deref().unwrap_or("null")),
                "value" => out.push_str(&self.value.map_or("none".into(), fmt_num)),
                "threshold" => out.push_str(&self.threshold.text()),
                "rule" => out.push_str(&rule.name),
                "stat" => out.push_str(&rule.stat),
                "name" => out.push_str(&rule.value),
                "state" => out.push_str(self.status.as_str()),
                "severity" => out.push_str(&rule.severity),
                _ => out.push_str(&tail[..=j]),
            }
            rest = &tail[j + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The check result as a JSON object (see `man/pulse-alert.1`, FORMAT).
    pub fn to_json(&self, rules: &[Rule]) -> serde_json::Value {
        serde_json::to_value(self.record(rules)).expect("a record serializes")
    }

    /// The check result as written: fields in the order of the format's documentation.
    pub fn record<'a>(&'a self, rules: &'a [Rule]) -> Record<'a> {
        let rule = &rules[self.rule];
        Record {
            rule: &rule.name,
            stat: &rule.stat,
            key: self.key.as_deref(),
            value_name: Some(rule.value.as_str()).filter(|v| !v.is_empty()),
            state: self.status.as_str(),
            value: self.value.map(Num),
            threshold: self.threshold,
            start: self.start,
            secs: self.secs,
            since: self.since,
            severity: &rule.severity,
            summary: self.summary(rule),
            correction: self.correction,
            withdrawn: self.withdrawn,
            repeat: self.repeat,
            provisional: self.provisional,
        }
    }
}

/// A check result, serialized straight to JSON (see [`Transition::record`]).
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub rule: &'a str,
    pub stat: &'a str,
    pub key: Option<&'a str>,
    pub value_name: Option<&'a str>,
    pub state: &'static str,
    pub value: Option<Num>,
    #[serde(serialize_with = "threshold_json")]
    pub threshold: Threshold,
    pub start: i64,
    pub secs: u32,
    pub since: i64,
    pub severity: &'a str,
    pub summary: String,
    pub correction: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub withdrawn: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub repeat: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub provisional: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A number written as snapshots write them: whole numbers without a fraction.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9e15 {
            s.serialize_i64(v as i64)
        } else if v.is_finite() {
            s.serialize_f64(v)
        } else {
            s.serialize_none()
        }
    }
}

fn threshold_json<S: serde::Serializer>(t: &Threshold, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Threshold::None => s.serialize_none(),
        Threshold::One(v) => Num(*v).serialize(s),
        Threshold::Range(a, b) => [Num(*a), Num(*b)].serialize(s),
    }
}

#[cfg(test)]
mod tests;
