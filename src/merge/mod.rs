//! From fragments to snapshots: the merger's state machine, free of I/O.
//!
//! For every (stat, key, window) the merger keeps, per source (and, with a rollup, per
//! original window of that source), the fragment with the highest `rev`. The window's value is
//! the merge of those states. Because each kept state is replaced, never added to, feeding a
//! fragment twice, in any order, through any tree of mergers, changes nothing.
//!
//! A window becomes final when every source heard from has a watermark (`wm`) at or past the
//! window's end; or `max_wait` seconds of wall clock after the first source passed it, once
//! the watermark of every source still behind has not moved for `max_wait` seconds; or at
//! end of input. A fragment that changes a final window makes it emit an updated final
//! snapshot. Final windows are forgotten once they are `retain` seconds of event time behind
//! the slowest source's watermark; fragments for forgotten windows are counted as too old.
//! A source whose watermark has not moved for `retain` seconds of wall clock no longer
//! counts as the slowest (a receiver that was restarted under a new name would otherwise hold every
//! window forever).
//! (A source first heard of after that, with old windows, finds them forgotten: so the CLI
//! forgets nothing unless it runs unbounded, with `--listen`.)

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use crate::clock::Clock;
use crate::record::{Fragment, Snapshot};
use crate::shard::Shard;
use crate::stat::{AggSpec, State};

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
    /// The first source seen for this window (named in mismatch messages).
    first_src: String,
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
        for (_, st) in self.parts.values() {
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
    /// Same stat with a different aggregate from another source.
    Mismatch(String),
}

pub struct Merger {
    cfg: Config,
    clock: Clock,
    windows: BTreeMap<WKey, Acc>,
    /// Per source: its watermark, the wall-clock time it was last heard from, and the
    /// wall-clock time its watermark last moved on.
    wms: HashMap<String, (i64, f64, f64)>,
    rev: u64,
    max_wm: i64,
    /// Windows forgotten so far (past `retain`): they can no longer be re-sent.
    pub forgotten: u64,
}

impl Merger {
    pub fn new(cfg: Config, clock: Clock) -> Merger {
        Merger {
            cfg,
            clock,
            windows: BTreeMap::new(),
            wms: HashMap::new(),
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
        match self.wms.get_mut(&f.src) {
            Some((wm, heard, moved)) => {
                if f.wm > *wm {
                    *wm = f.wm;
                    *moved = now;
                }
                *heard = now;
            }
            None => {
                self.wms.insert(f.src.clone(), (f.wm, now, now));
            }
        }
        self.max_wm = self.max_wm.max(f.wm);
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
        let wkey = WKey {
            start,
            stat: f.stat,
            key: f.key,
            secs,
        };
        // Only a window not held can be too old (the slowest watermark is looked up then
        // only: once per window, not once per fragment).
        let held = self.windows.get(&wkey);
        if held.is_none() {
            let min_known = self.slowest();
            if ((start + secs as i64) as f64) < min_known as f64 - self.cfg.retain {
                return Err(Reject::TooOld);
            }
        }
        let spec: AggSpec = match held {
            Some(acc) if acc.agg == f.agg => acc.spec.clone(),
            _ => f.agg.parse().map_err(Reject::Bad)?,
        };
        let state = State::from_json(&spec, &f.state)
            .map_err(|e| Reject::Bad(format!("stat {}: bad state: {e}", wkey.stat)))?;
        let acc = self.windows.entry(wkey).or_insert_with_key(|_| Acc {
            agg: f.agg.clone(),
            spec,
            first_src: f.src.clone(),
            parts: HashMap::new(),
            dirty: false,
            is_final: false,
            due_since: None,
        });
        if acc.agg != f.agg {
            return Err(Reject::Mismatch(format!(
                "aggregate mismatch: source {} sends {:?} but source {} sends {:?}",
                acc.first_src, acc.agg, f.src, f.agg
            )));
        }
        match acc.parts.entry((f.src, f.start)) {
            Entry::Occupied(o) if o.get().0 >= f.rev => return Err(Reject::Stale),
            Entry::Occupied(mut o) => *o.get_mut() = (f.rev, state),
            Entry::Vacant(v) => {
                v.insert((f.rev, state));
            }
        }
        acc.dirty = true;
        Ok(())
    }

    /// Mark windows final that are due, then write: final snapshots of windows that became
    /// final or changed since, and (when `provisional`) snapshots of changed open windows.
    pub fn poll(&mut self, provisional: bool, out: &mut Vec<u8>) {
        let now = self.clock.now();
        let retain = self.cfg.retain;
        // A source silent, or stuck, that long no longer holds anything back.
        self.wms.retain(|_, (_, _, moved)| now - *moved <= retain);
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
                let since = *acc.due_since.get_or_insert(now);
                // Only stalled sources are waited for at most `max_wait`: one whose
                // watermark still moves on is behind in event time, not gone (another
                // source at end of input, or with a clock ahead, must not cut its window
                // short). One still sending but stuck does not hold windows for ever.
                let live_behind = self
                    .wms
                    .values()
                    .any(|&(wm, _, moved)| wm < end && now - moved < max_wait);
                if now - since >= max_wait && !live_behind {
                    acc.is_final = true;
                    acc.dirty = true;
                }
            }
        }
        self.write(out, |acc| acc.is_final || provisional, min_wm);
        let horizon = min_wm as f64 - self.cfg.retain;
        let before = self.windows.len();
        self.windows.retain(|k, acc| {
            !(acc.is_final && !acc.dirty && ((k.start + k.secs as i64) as f64) < horizon)
        });
        self.forgotten += (before - self.windows.len()) as u64;
    }

    /// The slowest watermark of the sources still counted (`i64::MIN` before any).
    fn slowest(&self) -> i64 {
        self.wms
            .values()
            .map(|&(wm, _, _)| wm)
            .min()
            .unwrap_or(i64::MIN)
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
