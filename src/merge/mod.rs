//! From fragments to snapshots: the merger's state machine, free of I/O.
//!
//! For every (stat, key, window) the merger keeps, per source (and, with a rollup, per
//! original window of that source), the fragment with the highest `rev`. The window's value is
//! the merge of those states. Because each kept state is replaced, never added to, feeding a
//! fragment twice, in any order, through any tree of mergers, changes nothing.
//!
//! A window becomes final when every source heard from has a watermark (`wm`) at or past the
//! window's end; or `max_wait` seconds of wall clock after the first source passed it, once
//! no source still behind it is both live (its watermark moved in the last `max_wait`
//! seconds) and in it (it sent a fragment for the window), and in any case one window length
//! after that (so a source whose watermark creeps, on purpose or not, holds back at most
//! its own windows, and those only so long); or at end of input. A fragment that changes a final window makes it emit an updated final
//! snapshot. Final windows are forgotten once they are `retain` seconds of event time behind
//! the slowest source's watermark; fragments for forgotten windows are counted as too old.
//! A source whose watermark has not moved for `retain` seconds of wall clock no longer
//! counts as the slowest (a receiver that was restarted under a new name would otherwise hold every
//! window forever).
//! (A source first heard of after that, with old windows, finds them forgotten: so the CLI
//! forgets nothing unless it runs unbounded, with `--listen`.)
//!
//! No source can make another's fragments be refused or change their result:
//! - each stat has one aggregate, from the stats file ([`Config::aggs`]) or else the first
//!   fragment of the stat; a fragment with another is refused, for its source only;
//! - a `rev` more than [`AHEAD`] seconds ahead of this merger's clock (revisions are
//!   microseconds of the sender's clock) is refused, and a watermark that far ahead counts
//!   only as far as that;
//! - a source holds at most `max_windows` windows, and a stat at most `max_keys` keys per
//!   window: past them a fragment opening a new one is refused.
//!
//! Refusals are counted in the stat [`REFUSED`], keyed by reason, in the window of the newest
//! watermark, and merged and written like any other.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::clock::Clock;
use crate::record::{Fragment, Snapshot};
use crate::shard::Shard;
use crate::stat::{AggSpec, Input, State};

/// The merger's own count of refused fragments and clients, keyed by reason.
pub const REFUSED: &str = "pulse.merge.refused";

/// How far (seconds) a fragment's `rev` may be ahead of the merger's clock, and how far a
/// watermark counts ahead of it (with the system clock only).
pub const AHEAD: f64 = 600.0;

/// Default of [`Config::max_keys`] and [`Config::max_windows`].
pub const DEFAULT_MAX_KEYS: usize = 100_000;
pub const DEFAULT_MAX_WINDOWS: usize = 100_000;

/// Mismatches are reported once per source and stat, for this many pairs.
const REPORTED_MAX: usize = 10_000;

/// What the merger writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Snapshots (for pulse-emit).
    Snapshots,
    /// Merged fragments under the merger's own `src` (for a merger above this one).
    Fragments,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub shard: Option<Shard>,
    pub rollup: Option<u32>,
    pub max_wait: f64,
    pub retain: f64,
    pub output: Output,
    /// The merger's own source name (for `Output::Fragments`).
    pub src: String,
    /// Each stat's aggregate known in advance (`--stats FILE`): name → aggregate text.
    pub aggs: HashMap<String, String>,
    /// Keys per stat and window.
    pub max_keys: usize,
    /// Windows (per original window start, with a rollup) one source may hold.
    pub max_windows: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            shard: None,
            rollup: None,
            max_wait: 10.0,
            retain: f64::INFINITY,
            output: Output::Snapshots,
            src: "merge".into(),
            aggs: HashMap::new(),
            max_keys: DEFAULT_MAX_KEYS,
            max_windows: DEFAULT_MAX_WINDOWS,
        }
    }
}

/// A stat's aggregate, and where it came from (for messages).
struct Pin {
    agg: String,
    spec: AggSpec,
    /// The source that sent it first; `None` from the stats file.
    first_src: Option<String>,
}

/// What the merger knows of one source.
struct Source {
    wm: i64,
    /// Wall-clock time its watermark last moved on.
    moved: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct WKey {
    start: i64,
    stat: String,
    key: Option<String>,
    secs: u32,
}

struct Acc {
    agg: String,
    spec: AggSpec,
    /// (src, original window start) → (rev, state).
    parts: HashMap<(String, i64), (u64, State)>,
    dirty: bool,
    is_final: bool,
    /// Wall-clock time when the first source's watermark passed the window's end.
    due_since: Option<f64>,
}

impl Acc {
    fn merged(&self) -> State {
        let mut s = State::new(&self.spec);
        // In the parts' order, not the map's: a `top` summary past its capacity depends
        // on the order of its merges (within its error bound), and the same input must give
        // the same output.
        let mut parts: Vec<_> = self.parts.iter().collect();
        parts.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (_, (_, st)) in parts {
            // All parts were checked against `agg` on the way in.
            let _ = s.merge(st);
        }
        s
    }
}

/// Why a fragment was not taken.
#[derive(Debug, Clone, PartialEq)]
pub enum Reject {
    /// Another shard's stat: skipped silently.
    OtherShard,
    /// Older or equal `rev` than the one held: ignored silently (a re-delivery).
    Stale,
    /// For a window already forgotten.
    TooOld,
    /// The fragment is unusable (bad agg or state, window not a divisor of the rollup).
    Bad(String),
    /// Same stat with a different aggregate than the stats file's or the first source's;
    /// `true` the first time for this source and stat (to report it).
    Mismatch(String, bool),
    /// A `rev` far ahead of this merger's clock.
    RevAhead(String),
    /// A bound reached: `"keys"` or `"windows"`, with a message.
    Bound(&'static str, String),
}

impl Reject {
    /// The key under which [`REFUSED`] counts it (`None`: not counted).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Reject::OtherShard | Reject::Stale => None,
            Reject::TooOld => Some("too_old"),
            Reject::Bad(_) => Some("malformed"),
            Reject::Mismatch(..) => Some("mismatch"),
            Reject::RevAhead(_) => Some("rev_ahead"),
            Reject::Bound(kind, _) => Some(if *kind == "keys" {
                "max_keys"
            } else {
                "max_windows"
            }),
        }
    }
}

pub struct Merger {
    cfg: Config,
    clock: Clock,
    windows: BTreeMap<WKey, Acc>,
    /// The sources still counted for finality.
    wms: HashMap<String, Source>,
    /// Their watermarks as a multiset (watermark → sources), for the slowest in log time.
    wm_set: BTreeMap<i64, usize>,
    /// Every stat's aggregate.
    aggs: HashMap<String, Pin>,
    /// Windows held per source (parts, with a rollup).
    held: HashMap<String, usize>,
    /// Keys held per stat and window.
    keys: HashMap<(String, i64, u32), usize>,
    /// (source, stat) pairs whose mismatch was reported.
    reported: HashSet<(String, String)>,
    rev: u64,
    max_wm: i64,
    /// Windows forgotten so far (past `retain`): they can no longer be re-sent.
    pub forgotten: u64,
}

impl Merger {
    pub fn new(cfg: Config, clock: Clock) -> Merger {
        let mut aggs = HashMap::new();
        let known = cfg
            .aggs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([(REFUSED, "count")]);
        for (stat, agg) in known {
            if let Ok(spec) = agg.parse() {
                let pin = Pin {
                    agg: agg.to_string(),
                    spec,
                    first_src: None,
                };
                aggs.insert(stat.to_string(), pin);
            }
        }
        Merger {
            cfg,
            clock,
            windows: BTreeMap::new(),
            wms: HashMap::new(),
            wm_set: BTreeMap::new(),
            aggs,
            held: HashMap::new(),
            keys: HashMap::new(),
            reported: HashSet::new(),
            rev: 0,
            max_wm: i64::MIN,
            forgotten: 0,
        }
    }

    /// Windows held.
    pub fn open(&self) -> usize {
        self.windows.len()
    }

    /// Take one fragment.
    pub fn add(&mut self, f: Fragment) -> Result<(), Reject> {
        if let Some(shard) = self.cfg.shard {
            if !shard.keeps(&f.stat) {
                return Err(Reject::OtherShard);
            }
        }
        if f.secs == 0 {
            return Err(Reject::Bad("window of 0 seconds".into()));
        }
        let now = self.clock.now();
        let mut wm = f.wm;
        if let Clock::System = self.clock {
            let ahead = f.rev as f64 / 1e6 - now;
            if ahead > AHEAD {
                return Err(Reject::RevAhead(format!(
                    "source {}: rev {} is {ahead:.0} s ahead of this merger's clock (more than {AHEAD} s): refused (is the sender's clock right?)",
                    f.src, f.rev
                )));
            }
            wm = wm.min((now + AHEAD) as i64);
        }
        if !self.aggs.contains_key(&f.stat) {
            let pin = Pin {
                spec: f.agg.parse().map_err(Reject::Bad)?,
                agg: f.agg.clone(),
                first_src: Some(f.src.clone()),
            };
            self.aggs.insert(f.stat.clone(), pin);
        }
        let pin = &self.aggs[&f.stat];
        if pin.agg != f.agg {
            let from = match &pin.first_src {
                Some(src) => format!("as source {src} sent it first"),
                None => "as the stats file says".to_string(),
            };
            let msg = format!(
                "source {} sends stat {} as {:?}, but it is {:?} ({from}): refused",
                f.src, f.stat, f.agg, pin.agg
            );
            let first = self.reported.len() < REPORTED_MAX
                && self.reported.insert((f.src.clone(), f.stat.clone()));
            return Err(Reject::Mismatch(msg, first));
        }
        let spec = pin.spec.clone();
        let (start, secs) = match self.cfg.rollup {
            Some(r) => {
                if r % f.secs != 0 {
                    return Err(Reject::Bad(format!(
                        "stat {}: a {} s window does not divide the {r} s rollup",
                        f.stat, f.secs
                    )));
                }
                (f.start.div_euclid(r as i64) * r as i64, r)
            }
            None => (f.start, f.secs),
        };
        let state = State::from_json(&spec, &f.state)
            .map_err(|e| Reject::Bad(format!("stat {}: bad state: {e}", f.stat)))?;
        self.heard(&f.src, wm, now);
        let wkey = WKey {
            start,
            stat: f.stat,
            key: f.key,
            secs,
        };
        let window = self.windows.get(&wkey);
        // A source at its bound may only revise the windows it holds.
        if self
            .held
            .get(&f.src)
            .is_some_and(|&n| n >= self.cfg.max_windows)
            && window.is_none_or(|acc| !acc.parts.contains_key(&(f.src.clone(), f.start)))
        {
            return Err(Reject::Bound(
                "windows",
                format!(
                    "source {} holds {} windows: one more refused (--max-windows)",
                    f.src, self.cfg.max_windows
                ),
            ));
        }
        // Only a window not held can be too old, or past a bound.
        if window.is_none() {
            let min_known = self.slowest();
            if ((start + secs as i64) as f64) < min_known as f64 - self.cfg.retain {
                return Err(Reject::TooOld);
            }
            if wkey.key.is_some() {
                let n = self
                    .keys
                    .entry((wkey.stat.clone(), start, secs))
                    .or_insert(0);
                if *n >= self.cfg.max_keys {
                    return Err(Reject::Bound(
                        "keys",
                        format!(
                            "stat {} has {} keys in the window at {start}: a new key from source {} refused (--max-keys)",
                            wkey.stat, self.cfg.max_keys, f.src
                        ),
                    ));
                }
                *n += 1;
            }
        }
        let acc = self.windows.entry(wkey).or_insert_with(|| Acc {
            agg: f.agg,
            spec,
            parts: HashMap::new(),
            dirty: false,
            is_final: false,
            due_since: None,
        });
        match acc.parts.entry((f.src, f.start)) {
            Entry::Occupied(o) if o.get().0 >= f.rev => return Err(Reject::Stale),
            Entry::Occupied(mut o) => *o.get_mut() = (f.rev, state),
            Entry::Vacant(v) => {
                *self.held.entry(v.key().0.clone()).or_insert(0) += 1;
                v.insert((f.rev, state));
            }
        }
        acc.dirty = true;
        Ok(())
    }

    /// A source was heard from with watermark `wm`.
    fn heard(&mut self, src: &str, wm: i64, now: f64) {
        match self.wms.get_mut(src) {
            Some(s) => {
                if wm > s.wm {
                    multiset_remove(&mut self.wm_set, s.wm);
                    *self.wm_set.entry(wm).or_insert(0) += 1;
                    s.wm = wm;
                    s.moved = now;
                }
            }
            None => {
                *self.wm_set.entry(wm).or_insert(0) += 1;
                self.wms.insert(src.to_string(), Source { wm, moved: now });
            }
        }
        self.max_wm = self.max_wm.max(wm);
    }

    /// Count `n` refusals for `reason` in [`REFUSED`] (with a shard, the key names it).
    pub fn count_refused(&mut self, reason: &str, n: u64) {
        let secs = self.cfg.rollup.unwrap_or(60);
        let at = if self.max_wm == i64::MIN {
            self.clock.now() as i64
        } else {
            self.max_wm
        };
        let start = at.div_euclid(secs as i64) * secs as i64;
        let key = match self.cfg.shard {
            Some(s) => format!("{reason} {}/{}", s.index, s.count),
            None => reason.to_string(),
        };
        let wkey = WKey {
            start,
            stat: REFUSED.to_string(),
            key: Some(key),
            secs,
        };
        let acc = self.windows.entry(wkey).or_insert_with(|| Acc {
            agg: "count".into(),
            spec: AggSpec::Count,
            parts: HashMap::new(),
            dirty: false,
            is_final: false,
            due_since: None,
        });
        let part = acc
            .parts
            .entry((self.cfg.src.clone(), start))
            .or_insert_with(|| (0, State::new(&AggSpec::Count)));
        part.0 += 1;
        part.1.add(Input::Num(n as f64));
        acc.dirty = true;
    }

    /// Mark windows final that are due, then write: final snapshots of windows that became
    /// final or changed since, and (when `provisional`) snapshots of changed open windows.
    pub fn poll(&mut self, provisional: bool, out: &mut Vec<u8>) {
        let now = self.clock.now();
        let retain = self.cfg.retain;
        // A source silent, or stuck, that long no longer holds anything back.
        let wm_set = &mut self.wm_set;
        self.wms.retain(|_, s| {
            let keep = now - s.moved <= retain;
            if !keep {
                multiset_remove(wm_set, s.wm);
            }
            keep
        });
        let min_wm = self.slowest();
        let max_wait = self.cfg.max_wait;
        for (k, acc) in self.windows.iter_mut() {
            if acc.is_final {
                continue;
            }
            let end = k.start + k.secs as i64;
            if min_wm >= end {
                acc.is_final = true;
                acc.dirty = true;
            } else if self.max_wm >= end {
                let waited = now - *acc.due_since.get_or_insert(now);
                if waited < max_wait {
                    continue;
                }
                // Past max_wait, only a source behind that is live (its watermark moves
                // on) and in this window (it sent for it) holds it: behind in event time,
                // not gone (another source at end of input, or with a clock ahead, must not
                // cut its window short); and that for one window length more at most, so
                // that no source, however slowly its watermark creeps, holds finality
                // beyond that.
                let wms = &self.wms;
                let held = waited < max_wait + k.secs as f64
                    && acc.parts.keys().any(|(src, _)| {
                        wms.get(src)
                            .is_some_and(|s| s.wm < end && now - s.moved < max_wait)
                    });
                if !held {
                    acc.is_final = true;
                    acc.dirty = true;
                }
            }
        }
        self.write(out, |acc| acc.is_final || provisional, min_wm);
        let horizon = min_wm as f64 - self.cfg.retain;
        let before = self.windows.len();
        let (held, keys) = (&mut self.held, &mut self.keys);
        self.windows.retain(|k, acc| {
            let forget = acc.is_final && !acc.dirty && ((k.start + k.secs as i64) as f64) < horizon;
            if forget {
                for (src, _) in acc.parts.keys() {
                    if let Some(n) = held.get_mut(src) {
                        *n -= 1;
                        if *n == 0 {
                            held.remove(src);
                        }
                    }
                }
                if k.key.is_some() {
                    let id = (k.stat.clone(), k.start, k.secs);
                    if let Some(n) = keys.get_mut(&id) {
                        *n -= 1;
                        if *n == 0 {
                            keys.remove(&id);
                        }
                    }
                }
            }
            !forget
        });
        self.forgotten += (before - self.windows.len()) as u64;
    }

    /// The slowest watermark of the sources still counted (`i64::MIN` before any).
    fn slowest(&self) -> i64 {
        self.wm_set.keys().next().copied().unwrap_or(i64::MIN)
    }

    /// Write every window held again, final or not (with `Output::Fragments`, after the
    /// link to the merger above reconnects: it may have lost what it had). `at_end`: after
    /// [`Merger::finish`], with its watermark.
    pub fn resend(&mut self, out: &mut Vec<u8>, at_end: bool) {
        for acc in self.windows.values_mut() {
            acc.dirty = true;
        }
        let wm = if at_end {
            self.end_watermark()
        } else {
            self.slowest()
        };
        self.write(out, |_| true, wm);
    }

    /// The watermark once all input has ended: past every window.
    fn end_watermark(&self) -> i64 {
        self.windows
            .keys()
            .map(|k| k.start + k.secs as i64)
            .max()
            .unwrap_or(i64::MIN)
            .max(self.max_wm)
    }

    /// End of all input: everything is final.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for acc in self.windows.values_mut() {
            if !acc.is_final {
                acc.is_final = true;
                acc.dirty = true;
            }
        }
        let max_end = self.end_watermark();
        self.write(out, |_| true, max_end);
    }

    fn write(&mut self, out: &mut Vec<u8>, want: impl Fn(&Acc) -> bool, wm: i64) {
        for (k, acc) in self.windows.iter_mut() {
            if !acc.dirty || !want(acc) {
                continue;
            }
            acc.dirty = false;
            let merged = acc.merged();
            match self.cfg.output {
                Output::Snapshots => {
                    let mut values = BTreeMap::new();
                    merged.values(&acc.spec, k.start, k.secs, &mut values);
                    let snap = Snapshot {
                        stat: k.stat.clone(),
                        key: k.key.clone(),
                        start: k.start,
                        secs: k.secs,
                        is_final: acc.is_final,
                        values,
                    };
                    let _ = serde_json::to_writer(&mut *out, &snap);
                }
                Output::Fragments => {
                    self.rev = match self.clock {
                        Clock::Fixed(_) => self.rev + 1,
                        Clock::System => ((self.clock.now() * 1e6) as u64).max(self.rev + 1),
                    };
                    let frag = Fragment {
                        stat: k.stat.clone(),
                        key: k.key.clone(),
                        start: k.start,
                        secs: k.secs,
                        src: self.cfg.src.clone(),
                        rev: self.rev,
                        wm,
                        agg: acc.agg.clone(),
                        state: merged.to_json(),
                    };
                    let _ = serde_json::to_writer(&mut *out, &frag);
                }
            }
            out.push(b'\n');
        }
    }
}

/// Take one `v` out of a multiset.
fn multiset_remove(set: &mut BTreeMap<i64, usize>, v: i64) {
    if let Some(n) = set.get_mut(&v) {
        *n -= 1;
        if *n == 0 {
            set.remove(&v);
        }
    }
}

/// Strip a `SHARD<TAB>` routing prefix (from `pulse-fragment --shards`) if the line has one.
pub fn strip_shard_prefix(line: &[u8]) -> &[u8] {
    let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && line.get(digits) == Some(&b'\t') {
        &line[digits + 1..]
    } else {
        line
    }
}

#[cfg(test)]
mod tests;
