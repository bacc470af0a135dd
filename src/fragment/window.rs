//! The open windows of one `pulse-fragment` run, and when to flush them.
//!
//! A window's fragment is written
//! - when the stream's event time (the newest event time seen) passes its end by `grace`
//!   (before any event has a time of its own, the clock's time given to timeless events
//!   stands in for it, so a stream of timeless lines is still flushed and forgotten);
//! - again whenever late events change it after that;
//! - on every wall-clock tick in live mode, if it changed since last written (so a quiet
//!   stream still reports; those fragments are provisional);
//! - at end of input, for everything not yet written in its latest state.
//!
//! A window is forgotten once it is older than the allowed lateness (no event can reach it
//! any more), so memory is bounded by open windows × stats × group keys, not by input
//! length. Each write carries a `rev` larger than any before it from this process.

use std::cmp::Ordering;
use std::io::Write;

use super::{Entry, FastMap, Own, Partial, StatId, OVERFLOW_KEY, OWN_SECS};
use crate::clock::Clock;
use crate::error::{Diag, Result};
use crate::record::FragmentRef;
use crate::shard::Routing;
use crate::spec::{StatSet, OWN_PREFIX};
use crate::stat::{AggSpec, State};

/// The first eight bytes of a key, zero-padded, big-endian: ordered as the keys are
/// wherever two differ (`None` and `Some("")` are both 0, and left to the full comparison).
#[inline]
fn key_prefix(key: Option<&str>) -> u64 {
    let b = key.unwrap_or("").as_bytes();
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(w)
}

/// The name a stat's fragments carry.
fn stat_name<'a>(stats: &'a StatSet, id: &'a StatId) -> &'a str {
    match id {
        StatId::Def(i) => &stats.stats[*i as usize].name,
        StatId::L2met(n) => n,
        StatId::Own(o) => o.name(),
    }
}

struct Slot {
    secs: u32,
    agg: AggSpec,
    state: State,
    /// Changed since last written.
    dirty: bool,
    /// Last written with a watermark at or past its end (as the merger needs to call it
    /// final).
    closed: bool,
}

type SlotKey = (StatId, Option<Box<str>>, i64);

/// The merging side of `pulse-fragment`.
pub struct Windows {
    src: String,
    rev: u64,
    clock: Clock,
    grace: f64,
    lateness: f64,
    shards: Option<Routing>,
    /// Newest event time seen.
    newest: f64,
    /// Newest clock time given to an event without a time.
    clock_newest: f64,
    /// Live input: while no event comes, event time is taken to run on with the clock from
    /// `newest_at`, the clock's time when `newest` last moved on, so that a quiet stream's
    /// windows still close (see [`Windows::front_due`]).
    idle_advance: bool,
    newest_at: f64,
    slots: FastMap<SlotKey, Slot>,
    /// Distinct group keys per (stat, window start), for the cap, and whether the window has
    /// overflowed.
    keys: FastMap<(StatId, i64), (usize, bool)>,
    /// Stats whose cap has been reported.
    capped: Vec<StatId>,
    /// l2met names whose aggregate disagreed with an earlier use, reported once.
    l2met_clash: Vec<Box<str>>,
    l2met_aggs: FastMap<Box<str>, AggSpec>,
    /// l2met names that are a declared stat's, ignored (reported once; at most as many as
    /// the declared stats).
    l2met_taken: Vec<Box<str>>,
    /// An l2met name of the tool's own stats has been reported.
    l2met_own_told: bool,
    /// `--max-l2met`: the most distinct l2met names of this stream (the keys of
    /// `l2met_aggs`), and `--max-value-len`, the longest.
    max_l2met: usize,
    max_name_len: usize,
    /// The first l2met contribution dropped by those bounds in the chunk being absorbed, as
    /// (its line in the chunk, why), once per stream (see [`Windows::take_l2met_dropped`]).
    l2met_dropped: Option<(u64, String)>,
    l2met_dropped_told: bool,
    /// An event held as too far ahead, waiting for the next timed event (see
    /// [`super::Pending`]).
    pub pending: Option<super::Pending>,
    /// Windows forgotten so far (past the lateness horizon): they can no longer be re-sent.
    pub forgotten: u64,
}

impl Windows {
    pub fn new(
        src: String,
        clock: Clock,
        grace: f64,
        lateness: f64,
        shards: Option<Routing>,
    ) -> Self {
        Windows {
            src,
            rev: 0,
            clock,
            grace,
            lateness,
            shards,
            newest: f64::NEG_INFINITY,
            clock_newest: f64::NEG_INFINITY,
            idle_advance: false,
            newest_at: f64::NEG_INFINITY,
            slots: FastMap::default(),
            keys: FastMap::default(),
            capped: Vec::new(),
            l2met_clash: Vec::new(),
            l2met_aggs: FastMap::default(),
            l2met_taken: Vec::new(),
            l2met_own_told: false,
            max_l2met: usize::MAX,
            max_name_len: usize::MAX,
            l2met_dropped: None,
            l2met_dropped_told: false,
            pending: None,
            forgotten: 0,
        }
    }

    /// At most `names` distinct l2met names in this stream (`--max-l2met`), none longer than
    /// `len` bytes (`--max-value-len`); the contributions of others are dropped and counted
    /// in `pulse.l2met.dropped`.
    pub fn max_l2met(mut self, names: usize, len: usize) -> Self {
        self.max_l2met = names;
        self.max_name_len = len;
        self
    }

    /// The first l2met contribution dropped by [`Windows::max_l2met`] since the last call,
    /// once per stream: (its line in the chunk absorbed, why).
    pub fn take_l2met_dropped(&mut self) -> Option<(u64, String)> {
        self.l2met_dropped.take()
    }

    /// On live input, let event time run on with the clock while no event comes.
    pub fn idle_advance(mut self, on: bool) -> Self {
        self.idle_advance = on;
        self
    }

    /// Newest event time seen so far (`-inf` before any).
    pub fn newest(&self) -> f64 {
        self.newest
    }

    /// At the end of the stream: keep the held event, if any. Nothing came after it to
    /// confirm it, but nothing after it can be made late by it either, and the last line of
    /// a sparse replay (after a quiet night) is as likely real as a typo.
    pub fn keep_pending(&mut self, stats: &StatSet, diag: &mut Diag) -> Option<(i64, f64, f64)> {
        let p = self.pending.take()?;
        let (line, time, newest) = (p.line, p.time, p.newest);
        self.absorb(stats, p.partial, time, f64::NEG_INFINITY, diag);
        Some((line, time, newest))
    }

    /// Open windows held.
    pub fn open(&self) -> usize {
        self.slots.len()
    }

    /// Take in a chunk's partial states, its newest event time and the clock's time it
    /// gave events without one (`-inf` for none).
    pub fn absorb(
        &mut self,
        stats: &StatSet,
        partial: Partial,
        max_time: f64,
        clock_used: f64,
        diag: &mut Diag,
    ) {
        for entry in partial.entries {
            self.absorb_entry(stats, entry, diag);
        }
        if max_time > self.newest {
            self.newest = max_time;
            self.newest_at = self.clock.now();
        }
        self.clock_newest = self.clock_newest.max(clock_used);
    }

    /// The time that decides what is due: the newest event time, or while no event has had
    /// a time, the newest clock time given to timeless ones.
    fn front(&self) -> f64 {
        if self.newest.is_finite() {
            self.newest
        } else {
            self.clock_newest
        }
    }

    /// The time that decides what is due and the watermark: [`Windows::front`], run on by
    /// the clock since the newest event came when idle advance is on. Only what is written
    /// depends on it: what is late, and what is forgotten, follow event time alone, so an
    /// event that comes after a quiet spell is still counted and its window written again.
    fn front_due(&self) -> f64 {
        let front = self.front();
        // Only for a stream of current events (within --lateness of the clock): a replay of
        // an archive through a pipe that stalls must not close windows it is still in.
        let now = self.clock.now();
        let current = (now - self.newest).abs() <= self.lateness;
        if self.idle_advance && current && self.newest.is_finite() && self.newest_at.is_finite() {
            front.max(self.newest + (now - self.newest_at).max(0.0))
        } else {
            front
        }
    }

    fn absorb_entry(&mut self, stats: &StatSet, e: Entry, diag: &mut Diag) {
        let Entry {
            stat,
            mut key,
            start,
            secs,
            agg,
            state,
            adds,
            line,
        } = e;
        if let StatId::L2met(name) = &stat {
            if self.l2met_taken.contains(name) {
                return;
            }
            // An l2met name used with two kinds (count#x and measure#x) cannot merge.
            match self.l2met_aggs.get(name) {
                Some(a) if *a != agg => {
                    if !self.l2met_clash.contains(name) {
                        self.l2met_clash.push(name.clone());
                        let _ = diag.bad(
                            "l2met clash",
                            &format!("stat {name}"),
                            &format!("used as both {a} and {agg}; keeping {a}"),
                        );
                    }
                    return;
                }
                Some(_) => {}
                None => {
                    // Nor may it pass for a declared stat or one of the tool's own.
                    let declared = stats.stats.iter().any(|d| *d.name == **name);
                    if declared || name.starts_with(OWN_PREFIX) {
                        let whose = if declared {
                            "a declared stat"
                        } else {
                            "pulse-fragment's own stats"
                        };
                        if declared || !self.l2met_own_told {
                            diag.note(
                                "l2met clash",
                                &format!("stat {name}"),
                                &format!("the name of {whose}; the l2met key is ignored"),
                            );
                        }
                        // Own names are told once, not kept: there is no end to them.
                        if declared {
                            self.l2met_taken.push(name.clone());
                        } else {
                            self.l2met_own_told = true;
                        }
                        return;
                    }
                    if self.l2met_aggs.len() >= self.max_l2met || name.len() > self.max_name_len {
                        self.drop_l2met(name, start, adds, line, diag);
                        return;
                    }
                    self.l2met_aggs.insert(name.clone(), agg.clone());
                }
            }
        }
        let full = (stat.clone(), key.clone(), start);
        if !self.slots.contains_key(&full) {
            if let (Some(_), StatId::Def(i)) = (&key, &stat) {
                let cap = stats.stats[*i as usize].max_keys;
                let (n, overflowed) = self.keys.entry((stat.clone(), start)).or_insert((0, false));
                if *n >= cap {
                    if !self.capped.contains(&stat) {
                        self.capped.push(stat.clone());
                        let name = &stats.stats[*i as usize].name;
                        let _ = diag.bad(
                            "overflowed keys",
                            &format!("stat {name}"),
                            &format!(
                                "more than {cap} group keys in one window; the rest are counted under {OVERFLOW_KEY}"
                            ),
                        );
                    }
                    key = Some(OVERFLOW_KEY.into());
                    // Counted once per stat window that hits its cap, in the own-stat window
                    // of that window's start: the same however the input was chunked.
                    if !*overflowed {
                        *overflowed = true;
                        self.add_own(
                            Own::Overflow,
                            super::window_start(start as f64, OWN_SECS),
                            1.0,
                        );
                    }
                } else {
                    *n += 1;
                }
            }
        }
        let slot = self
            .slots
            .entry((stat, key, start))
            .or_insert_with(|| Slot {
                secs,
                state: State::new(&agg),
                agg,
                dirty: false,
                closed: false,
            });
        // Same stat, same spec: merge cannot fail.
        let _ = slot.state.merge(&state);
        slot.dirty = true;
    }

    /// Drop the `adds` contributions to l2met stat `name` in the window at `start`, the first
    /// at chunk line `line`: count them in `pulse.l2met.dropped`, and note the first.
    #[cold]
    #[inline(never)]
    fn drop_l2met(&mut self, name: &str, start: i64, adds: u64, line: u64, diag: &mut Diag) {
        self.add_own(Own::L2metDropped, start, adds as f64);
        diag.count("l2met dropped", adds);
        if self.l2met_dropped_told {
            return;
        }
        self.l2met_dropped_told = true;
        let why = if name.len() > self.max_name_len {
            let mut shown = String::new();
            crate::stat::cut_marked(name, 64, &mut shown);
            format!(
                "l2met name {shown:?} is {} bytes, longer than --max-value-len ({}); its values are dropped",
                name.len(),
                self.max_name_len
            )
        } else {
            format!(
                "l2met name {name:?} is past --max-l2met ({} distinct l2met names in this input); its values and those of every further new name are dropped",
                self.max_l2met
            )
        };
        self.l2met_dropped = Some((line, format!("{why}, counted in pulse.l2met.dropped")));
    }

    fn add_own(&mut self, own: Own, start: i64, n: f64) {
        let slot = self
            .slots
            .entry((StatId::Own(own), None, start))
            .or_insert_with(|| Slot {
                secs: OWN_SECS,
                agg: AggSpec::Count,
                state: State::new(&AggSpec::Count),
                dirty: false,
                closed: false,
            });
        slot.state.add(crate::stat::Input::Num(n));
        slot.dirty = true;
    }

    /// Write windows due by event time (end + grace ≤ newest) and forget those past the
    /// lateness horizon.
    pub fn flush_due(&mut self, stats: &StatSet, out: &mut Vec<u8>) {
        let due_at = self.front_due();
        let grace = self.grace;
        let wm = self.watermark();
        self.write(stats, out, wm, |start, secs| {
            (start + secs as i64) as f64 + grace <= due_at
        });
        let horizon = self.front() - self.lateness;
        let before = self.slots.len();
        self.slots
            .retain(|(_, _, start), slot| ((*start + slot.secs as i64) as f64) > horizon);
        self.forgotten += (before - self.slots.len()) as u64;
        self.keys.retain(|(stat, start), _| match stat {
            StatId::Def(i) => ((*start + stats.stats[*i as usize].secs as i64) as f64) > horizon,
            _ => false,
        });
    }

    /// On a wall-clock tick: write the windows now due (on a quiet live stream, due by the
    /// clock alone), those written before they were due (on an earlier tick) once more with
    /// the watermark that closes them, then every other changed window. Once a tick, as it
    /// visits every open window.
    pub fn tick(&mut self, stats: &StatSet, out: &mut Vec<u8>) {
        self.reopen_unclosed(self.watermark());
        self.flush_due(stats, out);
        self.flush_all(stats, out, false);
    }

    /// Mark for writing the windows ending by `end` that were last written without a
    /// watermark closing them.
    fn reopen_unclosed(&mut self, end: i64) {
        for ((_, _, start), slot) in self.slots.iter_mut() {
            if !slot.closed && *start + slot.secs as i64 <= end {
                slot.dirty = true;
            }
        }
    }

    /// Write every window changed since last written: on a wall-clock tick (`at_end` false)
    /// or at end of input (`at_end` true, when the watermark moves past every window).
    pub fn flush_all(&mut self, stats: &StatSet, out: &mut Vec<u8>, at_end: bool) {
        let wm = if at_end {
            let max_end = self
                .slots
                .iter()
                .map(|((_, _, start), s)| start + s.secs as i64)
                .max()
                .unwrap_or(i64::MIN);
            max_end.max(self.watermark())
        } else {
            self.watermark()
        };
        self.write(stats, out, wm, |_, _| true);
    }

    /// Every window ending at or before the watermark has been written.
    fn watermark(&self) -> i64 {
        let front = self.front_due();
        if front.is_finite() {
            (front - self.grace).floor() as i64
        } else {
            i64::MIN
        }
    }

    fn write(
        &mut self,
        stats: &StatSet,
        out: &mut Vec<u8>,
        wm: i64,
        due: impl Fn(i64, u32) -> bool,
    ) {
        let Windows {
            slots,
            rev,
            src,
            clock,
            shards,
            ..
        } = self;
        // The due windows, borrowed from the map (not their keys copied out to look each
        // up again), each with its stat's name looked up once and the first bytes of its
        // key as a number (most keys differ there: one comparison instead of two calls).
        let mut ready: Vec<(u64, &str, &SlotKey, &mut Slot)> = slots
            .iter_mut()
            .filter(|(k, s)| s.dirty && due(k.2, s.secs))
            .map(|(k, s)| (key_prefix(k.1.as_deref()), stat_name(stats, &k.0), k, s))
            .collect();
        if ready.is_empty() {
            return;
        }
        // Deterministic order: by window, then stat name, then key. No two windows held
        // are equal in all three (a declared stat and an l2met one of the same name are
        // one stat to the merger, and kept apart only by their StatId), so an unstable
        // sort gives the one order.
        ready.sort_unstable_by(|(ap, an, a, _), (bp, bn, b, _)| {
            a.2.cmp(&b.2)
                .then_with(|| {
                    if std::ptr::eq(*an, *bn) {
                        Ordering::Equal
                    } else {
                        an.cmp(bn)
                    }
                })
                .then_with(|| ap.cmp(bp))
                .then_with(|| a.1.cmp(&b.1))
        });
        let last = ready.len() - 1;
        for (n, (_, _, k, slot)) in ready.into_iter().enumerate() {
            slot.dirty = false;
            slot.closed = wm >= k.2 + slot.secs as i64;
            *rev = next_rev(*rev, clock);
            let frag = FragmentRef {
                stat: stat_name(stats, &k.0),
                key: k.1.as_deref(),
                start: k.2,
                secs: slot.secs,
                src,
                rev: *rev,
                // True when this line is written: windows are written in order of start, so
                // all ending by this one's start are out; after the batch's last line, all
                // due ones are.
                wm: if n == last { wm } else { wm.min(k.2) },
                agg: &slot.agg,
                state: slot.state.to_json(),
            };
            if let Some(r) = shards {
                out.extend_from_slice(itoa::Buffer::new().format(r.prefix(frag.stat)).as_bytes());
                out.push(b'\t');
            }
            frag.write_json(out);
            out.push(b'\n');
        }
    }

    /// Write every window held again, in its current state and with a new `rev` (after a
    /// link reconnects: the merger may have lost what it had). `at_end`: the input has
    /// ended, and the watermark is past every window, as [`Windows::finish`] wrote it.
    pub fn resend(&mut self, stats: &StatSet, out: &mut Vec<u8>, at_end: bool) {
        for slot in self.slots.values_mut() {
            slot.dirty = true;
        }
        self.flush_all(stats, out, at_end);
    }

    /// Write everything not yet written, as at end of input.
    pub fn finish(&mut self, stats: &StatSet, w: &mut dyn Write) -> Result<()> {
        // A window last written on a tick, before it was due, is written once more with the
        // watermark that closes it (a listening merger need not wait for this source).
        self.reopen_unclosed(i64::MAX);
        let mut out = Vec::new();
        self.flush_all(stats, &mut out, true);
        w.write_all(&out)?;
        Ok(())
    }
}

/// Revisions increase within a process; with the system clock they also follow wall time
/// (microseconds), so a restarted process with the same `--source` still supersedes what it
/// sent before.
fn next_rev(prev: u64, clock: &Clock) -> u64 {
    match clock {
        Clock::Fixed(_) => prev + 1,
        Clock::System => {
            let now = (clock.now() * 1e6) as u64;
            now.max(prev + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key_prefix;
    use proptest::prelude::*;

    proptest! {
        /// Where two keys' prefixes differ, they order the keys as the keys order.
        #[test]
        fn key_prefixes_order_as_keys_do(
            a in proptest::option::of("[\\x00a-c.1é]{0,10}"),
            b in proptest::option::of("[\\x00a-c.1é]{0,10}"),
        ) {
            let (pa, pb) = (key_prefix(a.as_deref()), key_prefix(b.as_deref()));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }
}
