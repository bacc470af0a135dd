//! From events to fragments: evaluating the declared stats on each event, per chunk, and
//! keeping the windows open until they are due.
//!
//! Work is split in two so it spreads over cores while staying exact:
//! - [`Engine::process`] runs on worker threads over a chunk of lines: it reads each event
//!   (NDJSON, or raw log lines with `--raw`), finds its time and window, evaluates every stat
//!   and folds the contributions into a chunk-local [`Partial`];
//! - [`window::Windows`] runs on one thread, receives the partials in input order, merges them
//!   into the open windows and decides what to flush.
//!
//! Lateness is judged per event against the newest event time before it in the stream. A
//! worker knows only the newest time inside its own chunk, so it drops what is late by that
//! measure and reports the oldest time it kept; if that is late by the stream's measure,
//! the chunk is processed again on the merging thread with the stream's newest time known
//! (rare: it needs events more than `--lateness` out of order at a chunk boundary). The
//! result is the same whatever the chunking or the number of threads.
//!
//! A bad clock is one bad line: an event more than `--max-ahead` ahead of the stream's
//! newest time does not move the stream's time at once. It is held, and the next timed
//! event decides: if that one is also more than `--max-ahead` ahead of the old newest time
//! and not late by the held one's, the jump is real (a gap in a replay, a stream resuming)
//! and the held event counts; otherwise it is dropped and counted in `pulse.future`. One
//! held at the end of its input is kept: nothing after it can be made late. On live
//! input an event more than `--max-ahead` ahead of the clock is dropped at once. Workers only
//! detect such an event (one comparison per event in the common case); the chunk is then
//! processed again in stream order, where the hold is decided, also across chunks.

pub mod window;

use crate::clock::Clock;
use crate::error::Diag;
use crate::io::lines::lines;
use crate::parse::{LineIssues, Options as ParseOptions, Parser};
use crate::record::{same_bytes, Event, Route, Val, ValRef};
use crate::spec::{l2met, write_group_key, Cond, StatSet, Unit};
use crate::stat::{AggSpec, Input, State};
use crate::time::Rfc3339Reader;

/// The tool's own stats, emitted as fragments like any other (so they reach Graphite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Own {
    /// Events read (parsed or not).
    Events,
    /// Events that no log format recognised (`"unparsed": true`).
    Unparsed,
    /// Input lines that are not events (bad JSON).
    Malformed,
    /// Events older than the allowed lateness, dropped.
    Late,
    /// Stat windows that reached their group-key cap (the rest of their keys are folded into
    /// `_overflow`).
    Overflow,
    /// Events that matched a stat's filter but lacked a usable value.
    NoValue,
    /// Events far ahead of the stream's time that the events after them did not confirm
    /// (or, live, far ahead of the clock), dropped.
    Future,
    /// l2met contributions dropped: their name was new past `--max-l2met`, or longer than
    /// `--max-value-len`.
    L2metDropped,
    /// Events with a group key, `top` value or `last` partition longer than
    /// `--max-value-len`, cut (see [`crate::stat::cut_marked`]).
    Cut,
}

impl Own {
    pub const ALL: [Own; 9] = [
        Own::Events,
        Own::Unparsed,
        Own::Malformed,
        Own::Late,
        Own::Overflow,
        Own::NoValue,
        Own::Future,
        Own::L2metDropped,
        Own::Cut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Own::Events => "pulse.events",
            Own::Unparsed => "pulse.unparsed",
            Own::Malformed => "pulse.malformed",
            Own::Late => "pulse.late",
            Own::Overflow => "pulse.overflow",
            Own::NoValue => "pulse.novalue",
            Own::Future => "pulse.future",
            Own::L2metDropped => "pulse.l2met.dropped",
            Own::Cut => "pulse.value.cut",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Own::Events => "events read",
            Own::Unparsed => "events no log format recognised",
            Own::Malformed => "input lines that are not JSON events",
            Own::Late => "events later than --lateness, dropped",
            Own::Overflow => {
                "stat windows whose group keys passed the cap (the rest under _overflow)"
            }
            Own::NoValue => "events that matched a stat but had no usable value",
            Own::Future => {
                "events more than --max-ahead ahead of the stream, not confirmed by the next, dropped"
            }
            Own::L2metDropped => {
                "l2met values whose name was new past --max-l2met names or longer than --max-value-len, dropped"
            }
            Own::Cut => {
                "events with a group key, top value or last partition longer than --max-value-len, cut with a marker"
            }
        }
    }
}

/// Window length of the tool's own stats.
pub const OWN_SECS: u32 = 60;

/// The key under which group keys beyond a stat's cap are counted.
pub const OVERFLOW_KEY: &str = "_overflow";

/// Which stat a partial state belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatId {
    /// A declared stat: its index in the [`StatSet`].
    Def(u32),
    /// A stat named by an l2met key (`measure#db.latency` → `db.latency`).
    L2met(Box<str>),
    /// One of the tool's own `pulse.*` stats.
    Own(Own),
}

/// One partial state: a stat, a group key, a window.
#[derive(Clone, Debug)]
pub struct Entry {
    pub stat: StatId,
    pub key: Option<Box<str>>,
    pub start: i64,
    pub secs: u32,
    pub agg: AggSpec,
    pub state: State,
    /// l2met entries: the contributions folded in (what `pulse.l2met.dropped` counts if the
    /// name is refused), and the chunk line of the first. Zero for the others.
    pub adds: u64,
    pub line: u64,
}

pub use crate::stat::hash::{FastHasher, FastMap};

/// A group key of a chunk: its grouping (a distinct group-by field list) and its index among
/// that grouping's keys, as made by [`Partial::key_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyId {
    pub grouping: u16,
    pub index: u32,
}

/// The slot of a (stat, key) not folded into yet.
const NO_SLOT: (i64, u32) = (i64::MIN, u32::MAX);

/// Partial states of one chunk, in order of first appearance (so the merging thread sees the
/// same order whatever the thread count).
#[derive(Default)]
pub struct Partial {
    pub entries: Vec<Entry>,
    /// (declared stat, window start, key index or `u32::MAX` without key) → index in
    /// `entries`, for every entry of a declared stat.
    defs: FastMap<(u32, i64, u32), u32>,
    /// Per declared stat, per key index (one slot without group-by): the (window start,
    /// index in `entries`) it last folded into. Events mostly fall in the window of the one
    /// before, so this finds the entry by indexing; `defs` is for the others.
    slots: Vec<Vec<(i64, u32)>>,
    /// Per grouping: its group keys of this chunk → index in `key_text`. Keys are numbered
    /// per grouping so that `slots` stay dense.
    keys: Vec<FastMap<Box<str>, u32>>,
    key_text: Vec<Vec<Box<str>>>,
    /// (own stat, window start, index in `entries`).
    own: Vec<(Own, i64, u32)>,
    /// l2met name → (window start, index in `entries`).
    l2met: FastMap<Box<str>, Vec<(i64, u32)>>,
}

impl Partial {
    fn push(
        &mut self,
        stat: StatId,
        key: Option<Box<str>>,
        start: i64,
        secs: u32,
        agg: &AggSpec,
    ) -> u32 {
        let i = self.entries.len() as u32;
        self.entries.push(Entry {
            stat,
            key,
            start,
            secs,
            agg: agg.clone(),
            state: State::new(agg),
            adds: 0,
            line: 0,
        });
        i
    }

    /// The chunk-local id of group key `key` of `grouping` (made on first use).
    #[inline]
    pub fn key_id(&mut self, grouping: u16, key: &str) -> KeyId {
        let g = grouping as usize;
        if self.keys.len() <= g {
            self.keys.resize_with(g + 1, Default::default);
            self.key_text.resize_with(g + 1, Vec::new);
        }
        let index = match self.keys[g].get(key) {
            Some(&index) => index,
            None => {
                let index = self.key_text[g].len() as u32;
                let text: Box<str> = key.into();
                self.key_text[g].push(text.clone());
                self.keys[g].insert(text, index);
                index
            }
        };
        KeyId { grouping, index }
    }

    /// Fold one contribution to declared stat `def`, under group key `key` (from
    /// [`Partial::key_id`]; `None` without group-by).
    #[inline(always)]
    pub fn add_def(
        &mut self,
        def: u32,
        key: Option<KeyId>,
        start: i64,
        secs: u32,
        agg: &AggSpec,
        input: Input<'_>,
    ) {
        let d = def as usize;
        if self.slots.len() <= d {
            self.slots.resize_with(d + 1, Vec::new);
        }
        let k = key.map_or(0, |k| k.index as usize);
        if self.slots[d].len() <= k {
            self.slots[d].resize(k + 1, NO_SLOT);
        }
        let (s, i) = self.slots[d][k];
        let i = if s == start && i != NO_SLOT.1 {
            i
        } else {
            let index = key.map_or(u32::MAX, |k| k.index);
            let i = match self.defs.get(&(def, start, index)) {
                Some(&i) => i,
                None => {
                    let text =
                        key.map(|k| self.key_text[k.grouping as usize][k.index as usize].clone());
                    let i = self.push(StatId::Def(def), text, start, secs, agg);
                    self.defs.insert((def, start, index), i);
                    i
                }
            };
            self.slots[d][k] = (start, i);
            i
        };
        self.entries[i as usize].state.add(input);
    }

    /// Fold one contribution to the l2met stat `name` (60 s windows, no key), of chunk line
    /// `line`.
    pub fn add_l2met(
        &mut self,
        name: &str,
        start: i64,
        agg: &AggSpec,
        input: Input<'_>,
        line: u64,
    ) {
        // The same name used with two kinds (count#x, measure#x) makes two entries, so the
        // merging side keeps the first kind and drops the other (see `Windows`).
        let entries = &self.entries;
        let found = self
            .l2met
            .get(name)
            .and_then(|ws| {
                ws.iter()
                    .find(|&&(s, i)| s == start && entries[i as usize].agg == *agg)
            })
            .map(|&(_, i)| i);
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.push(StatId::L2met(name.into()), None, start, OWN_SECS, agg);
                self.entries[i as usize].line = line;
                self.l2met.entry(name.into()).or_default().push((start, i));
                i
            }
        };
        let e = &mut self.entries[i as usize];
        e.adds += 1;
        e.state.add(input);
    }

    /// Count one occurrence of an own stat at time `t`.
    #[inline]
    pub fn own(&mut self, own: Own, t: f64) {
        self.own_n(own, t, 1.0);
    }

    pub fn own_n(&mut self, own: Own, t: f64, n: f64) {
        let start = window_start(t, OWN_SECS);
        let found = self
            .own
            .iter()
            .find(|(o, s, _)| *o == own && *s == start)
            .map(|&(_, _, i)| i);
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.push(StatId::Own(own), None, start, OWN_SECS, &AggSpec::Count);
                self.own.push((own, start, i));
                i
            }
        };
        self.entries[i as usize].state.add(Input::Num(n));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Start of the epoch-aligned window of length `secs` holding time `t`.
#[inline]
pub fn window_start(t: f64, secs: u32) -> i64 {
    let secs = secs.max(1) as i64;
    ((t.floor() as i64).div_euclid(secs)) * secs
}

/// The time of an event: its `time` field (RFC 3339 text, or a number read by
/// [`crate::time::unix_seconds`], as pulse-parse reads one), else `None`.
pub fn event_time(ev: &Event) -> Option<f64> {
    time_of(ev.get("time"))
}

/// [`event_time`] from the `time` field's value.
#[inline]
fn time_of(v: Option<ValRef<'_>>) -> Option<f64> {
    time_with(v, &mut Rfc3339Reader::default())
}

/// [`time_of`], reading text with `reader`.
#[inline]
fn time_with(v: Option<ValRef<'_>>, reader: &mut Rfc3339Reader) -> Option<f64> {
    match v? {
        ValRef::Str(s) => reader.read(s),
        ValRef::Int(n) => crate::time::unix_seconds(n as f64),
        ValRef::Float(f) => crate::time::unix_seconds(f),
        _ => None,
    }
}

/// Whether `key` may be an l2met key, cheaply: `count#`, `sample#`, `unique#` and
/// `measure#` put a `#` at byte 5, 6 or 7 ([`l2met`] decides).
#[inline]
fn maybe_l2met(key: &str) -> bool {
    maybe_l2met_bytes(key.as_bytes())
}

/// [`maybe_l2met`] of a name given as bytes.
#[inline]
fn maybe_l2met_bytes(b: &[u8]) -> bool {
    b.get(5) == Some(&b'#') || b.get(6) == Some(&b'#') || b.get(7) == Some(&b'#')
}

/// A bad input line found by a worker, by its index in the chunk.
#[derive(Debug, Clone)]
pub struct Bad {
    pub line: u64,
    pub kind: &'static str,
    pub detail: String,
}

/// What a worker hands back for one chunk.
pub struct ChunkOut {
    pub partial: Partial,
    /// Lines in the chunk.
    pub lines: u64,
    /// Oldest event time kept (not judged late within the chunk); +inf if none.
    pub min_kept: f64,
    /// Newest event time seen; -inf if none.
    pub max_time: f64,
    /// The first few bad lines (the rest only counted in the partial's own stats).
    pub bad: Vec<Bad>,
    /// Number of bad lines in all.
    pub bad_total: u64,
    /// The chunk itself, kept only when it may have to be processed again.
    pub data: Vec<u8>,
    /// Counts of own stats that have no time of their own (late events, malformed lines),
    /// as (stat, the chunk's newest event time before them or -inf, count). The stream's
    /// newest time is known only in stream order, so [`Engine::settle`] places them.
    pub timeless: Vec<(Own, f64, u64)>,
    /// The clock's time when the chunk was processed (for `timeless` before any event time).
    pub now: f64,
    /// `now` if some event had no time and was placed at the clock's time; else -inf.
    pub clock_used: f64,
    /// The time of the last timed event kept, where an event without a time of its own is
    /// placed; -inf before the first (then, on a worker, see `untimed_first`).
    pub last_time: f64,
    /// On a worker: an event without a time came before any timed one, so its time is the
    /// stream's and the chunk is processed again in stream order ([`Engine::settle`]).
    pub untimed_first: bool,
    /// Processed in stream order (`stream_newest` known), not on a worker.
    pub in_order: bool,
    /// Events whose `time` is neither RFC 3339 text nor Unix seconds (placed at the clock's
    /// time), and the first of them: (line in the chunk, the time as written).
    pub bad_times: u64,
    pub first_bad_time: Option<(u64, String)>,
    /// The first event dropped as late, as (line index in the chunk, its time, the newest
    /// time then).
    pub first_late: Option<(u64, f64, f64)>,
    /// The first event dropped as too far ahead (see [`Pending`]), as (line index in the
    /// chunk, negative for one held from an earlier chunk, its time, the newest time then,
    /// whether it was ahead of the clock rather than unconfirmed).
    pub first_future: Option<(i64, f64, f64, bool)>,
    /// An event time above this takes the slow path of [`Engine::ahead`]: the newest time
    /// plus `--max-ahead`, at most the clock's plus `--max-ahead` on live input, `-inf`
    /// while an event is held or before the first.
    ahead_limit: f64,
    /// Live input: the clock's time plus `--max-ahead` (else +inf).
    wall_limit: f64,
    /// The first timed event's time on a worker (judged by [`Engine::settle`]); +inf if none.
    pub first_time: f64,
    /// On a worker: some event was far ahead of the chunk's newest time, so the chunk is
    /// processed again in stream order.
    pub suspect: bool,
    /// In stream order: the event held at the end of the chunk, undecided.
    pub pending: Option<Pending>,
    /// In stream order: the contributions of the event being held (swapped with `partial`
    /// while it is folded).
    held: Partial,
    /// With `--raw`: unparsed, empty and bad-frame lines, as `pulse-parse` reports them.
    pub issues: LineIssues,
    /// Events read (late ones too).
    pub events: u64,
    /// With [`Engine::track_fields`]: the fields (by id) this worker met for the first time
    /// in this chunk; gather them with [`FieldsSeen::add`].
    pub seen: Vec<u16>,
    /// Contributions without a usable value (as counted in `pulse.novalue`), and the first
    /// of them: (line index in the chunk, what was missing).
    pub novalue: u64,
    pub first_novalue: Option<(u64, String)>,
    /// Events with a text cut at `--max-value-len` (as counted in `pulse.value.cut`), and
    /// the first cut: (line index in the chunk, what was cut).
    pub cuts: u64,
    pub first_cut: Option<(u64, String)>,
    /// The first l2met contribution of the chunk dropped by `--max-l2met` or
    /// `--max-value-len` (set by [`Engine::settle`]): (line index in the chunk, why).
    pub first_l2met_dropped: Option<(u64, String)>,
}

impl ChunkOut {
    /// Count an event of the current line whose time field `v` is not a time.
    #[cold]
    fn bad_time(&mut self, v: Option<ValRef<'_>>) {
        self.bad_times += 1;
        if self.first_bad_time.is_none() {
            let mut text = String::new();
            if let Some(v) = v {
                v.write_text(&mut text);
            }
            self.first_bad_time = Some((self.lines.saturating_sub(1), text));
        }
    }

    /// The time of an event whose `time` field `v` is absent or no time (see
    /// [`Engine::fold`]).
    #[cold]
    #[inline(never)]
    fn untimed(&mut self, v: Option<ValRef<'_>>, now: f64) -> f64 {
        if !matches!(v, None | Some(ValRef::Null)) {
            self.bad_time(v);
        }
        if self.last_time.is_finite() {
            return self.last_time;
        }
        if !self.in_order {
            self.untimed_first = true;
        }
        self.clock_used = now;
        now
    }

    /// Count one `own` occurrence at the chunk's current newest time.
    fn timeless(&mut self, own: Own) {
        match self.timeless.last_mut() {
            Some((o, t, n)) if *o == own && *t == self.max_time => *n += 1,
            _ => self.timeless.push((own, self.max_time, 1)),
        }
    }
}

/// An event held because it is more than `--max-ahead` ahead of the stream's newest time:
/// the next timed event confirms it (its contributions count and the stream's time moves
/// to it) or not (it is dropped, counted in `pulse.future`).
pub struct Pending {
    pub time: f64,
    /// The stream's newest time when it came.
    pub newest: f64,
    /// Its line, as an index into the chunk being processed (negative: an earlier chunk's).
    pub line: i64,
    /// Its contributions.
    pub partial: Partial,
}

/// How a chunk's lines are read.
#[derive(Clone, Copy, Debug)]
pub enum InputKind {
    /// One JSON event per line (the output of pulse-parse).
    Events,
    /// Raw log lines, parsed in-process exactly as pulse-parse would.
    Raw(ParseOptions),
}

/// The field names the stat set reads, each with an id: an event's fields are matched to
/// them once per event, and every later read is by id.
struct FieldTable {
    names: Vec<Box<str>>,
    /// Per name, its index slot in an event ([`Event::slot_of_name`]).
    event_slots: Vec<usize>,
    /// Open addressing, linear probing: id + 1 per slot, 0 empty.
    slots: Vec<u16>,
    shift: u32,
}

impl FieldTable {
    fn new(names: Vec<Box<str>>) -> FieldTable {
        let size = (names.len() * 4).next_power_of_two().max(16);
        let mut t = FieldTable {
            names: Vec::new(),
            event_slots: Vec::new(),
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
        };
        for n in names {
            if t.id(&n).is_none() {
                let mut i = t.slot(n.as_bytes());
                while t.slots[i] != 0 {
                    i = (i + 1) & (t.slots.len() - 1);
                }
                t.slots[i] = t.names.len() as u16 + 1;
                t.event_slots.push(Event::slot_of_name(&n));
                t.names.push(n);
            }
        }
        t
    }

    /// A cheap hash of a name: its length and three of its bytes.
    #[inline]
    fn slot(&self, k: &[u8]) -> usize {
        let h = match k {
            [] => 0,
            [first, .., last] => {
                (k.len() as u64)
                    | (*first as u64) << 8
                    | (*last as u64) << 16
                    | (k[k.len() / 2] as u64) << 24
            }
            [only] => 1 | (*only as u64) << 8,
        };
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    // Called for every field of every event: inlining saves more than the call.
    #[inline(always)]
    fn id(&self, k: &str) -> Option<u16> {
        self.id_bytes(k.as_bytes())
    }

    #[inline(always)]
    fn id_bytes(&self, k: &[u8]) -> Option<u16> {
        let mut i = self.slot(k);
        loop {
            match self.slots[i] {
                0 => return None,
                n => {
                    if same_bytes(self.names[n as usize - 1].as_bytes(), k) {
                        return Some(n - 1);
                    }
                }
            }
            i = (i + 1) & (self.slots.len() - 1);
        }
    }

    /// The id of `name`, which must have been given to [`FieldTable::new`].
    fn of(&self, name: &str) -> u16 {
        self.id(name).expect("a field name of the stat set")
    }
}

/// The allocation of `v` for values of another lifetime, emptied. (Collecting a mapped
/// `into_iter` of a vector into one of the same element size reuses its buffer, so this does
/// not allocate.)
fn recycle<'a, 'b>(mut v: Vec<Option<ValRef<'a>>>) -> Vec<Option<ValRef<'b>>> {
    v.clear();
    v.into_iter().map(|_| None).collect()
}

/// Where one declared stat reads its fields, by field id.
struct Plan {
    value: Option<u16>,
    /// The partition fields of `last`.
    parts: Vec<u16>,
    /// Index into [`Engine::groupings`], or `None` without group-by.
    grouping: Option<u16>,
    /// For a stat reading its value as a number: the index of its (field, unit) pair, whose
    /// conversion is shared per event by all stats reading the same pair.
    number: Option<u16>,
}

/// The per-event work, shared (read-only) by all workers.
pub struct Engine {
    pub stats: StatSet,
    pub input: InputKind,
    pub lateness: f64,
    /// How far ahead of the stream's newest time (and, live, of the clock) an event may be
    /// before it is held (see [`Pending`]).
    pub max_ahead: f64,
    /// Live input: events more than `max_ahead` ahead of the clock are dropped.
    live: bool,
    pub clock: Clock,
    /// Every distinct filter condition of the stat set, each evaluated once per event.
    conds: Vec<Cond>,
    /// Per stat: its filter as OR of AND-groups of `conds` (empty: every event passes).
    filters: Vec<Pass>,
    fields: FieldTable,
    /// The field id of each of `conds`.
    cond_field: Vec<u16>,
    plans: Vec<Plan>,
    /// Distinct group-by field lists (the key of one is written once per event).
    groupings: Vec<Vec<u16>>,
    /// Number of distinct (field, unit) pairs read as numbers (see [`Plan::number`]).
    numbers: usize,
    time_id: u16,
    unparsed_id: u16,
    /// Stop reading a chunk at its first bad line (`--strict`: that line ends the run, so
    /// nothing after it may count).
    strict: bool,
    /// With [`Engine::track_fields`]: the ids of the fields the declared stats read, which
    /// each worker looks for until it has met them.
    watched: Vec<u16>,
    /// `--patterns`, for the parsers of raw lines.
    patterns: Option<std::sync::Arc<crate::pattern::Patterns>>,
    /// `--max-value-len`: group keys, `top` values and `last` partitions longer than this
    /// are cut (see [`crate::stat::cut_marked`]).
    pub max_value_len: usize,
}

impl Engine {
    pub fn new(stats: StatSet, input: InputKind, lateness: f64, clock: Clock) -> Engine {
        let mut conds: Vec<Cond> = Vec::new();
        let filters = stats
            .stats
            .iter()
            .map(|def| {
                def.filter
                    .any
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            .map(|c| match conds.iter().position(|k| k == c) {
                                Some(i) => i as u16,
                                None => {
                                    conds.push(c.clone());
                                    (conds.len() - 1) as u16
                                }
                            })
                            .collect::<Vec<u16>>()
                    })
                    .map(|conds| Group::of(&conds))
                    .collect()
            })
            .map(Pass::of)
            .collect();
        let mut names: Vec<Box<str>> = vec!["time".into(), "unparsed".into()];
        names.extend(conds.iter().map(|c| c.field.as_str().into()));
        for def in &stats.stats {
            names.extend(def.value.iter().map(|v| v.as_str().into()));
            names.extend(
                def.partition
                    .iter()
                    .flat_map(|p| p.split(','))
                    .map(Into::into),
            );
            names.extend(def.group_by.iter().map(|g| g.as_str().into()));
        }
        let fields = FieldTable::new(names);
        let cond_field = conds.iter().map(|c| fields.of(&c.field)).collect();
        let mut groupings: Vec<Vec<u16>> = Vec::new();
        let mut numbers: Vec<(u16, Option<Unit>)> = Vec::new();
        let plans = stats
            .stats
            .iter()
            .map(|def| {
                let grouping = (!def.group_by.is_empty()).then(|| {
                    let ids: Vec<u16> = def.group_by.iter().map(|g| fields.of(g)).collect();
                    match groupings.iter().position(|g| *g == ids) {
                        Some(i) => i as u16,
                        None => {
                            groupings.push(ids);
                            (groupings.len() - 1) as u16
                        }
                    }
                });
                let value = def.value.as_deref().map(|v| fields.of(v));
                let numeric = matches!(
                    def.agg,
                    AggSpec::Summary | AggSpec::Quantiles | AggSpec::Last { .. }
                );
                let number = value.filter(|_| numeric).map(|f| {
                    let pair = (f, def.unit);
                    match numbers.iter().position(|n| *n == pair) {
                        Some(i) => i as u16,
                        None => {
                            numbers.push(pair);
                            (numbers.len() - 1) as u16
                        }
                    }
                });
                Plan {
                    value,
                    parts: def
                        .partition
                        .iter()
                        .flat_map(|p| p.split(','))
                        .map(|f| fields.of(f))
                        .collect(),
                    grouping,
                    number,
                }
            })
            .collect();
        Engine {
            stats,
            input,
            lateness,
            max_ahead: lateness,
            live: false,
            clock,
            conds,
            filters,
            time_id: fields.of("time"),
            unparsed_id: fields.of("unparsed"),
            fields,
            cond_field,
            plans,
            groupings,
            numbers: numbers.len(),
            strict: false,
            watched: Vec::new(),
            patterns: None,
            max_value_len: crate::stat::MAX_TEXT,
        }
    }

    /// Cut group keys, `top` values and `last` partitions longer than `bytes` (at most
    /// [`crate::stat::MAX_TEXT`], the default).
    pub fn max_value_len(mut self, bytes: usize) -> Engine {
        self.max_value_len = bytes.min(crate::stat::MAX_TEXT);
        self
    }

    /// Hold events more than `secs` ahead of the stream's newest time (default: the
    /// lateness), and on `live` input drop those more than `secs` ahead of the clock.
    pub fn max_ahead(mut self, secs: f64, live: bool) -> Engine {
        self.max_ahead = secs;
        self.live = live;
        self
    }

    /// Under `--strict`, stop each chunk at its first bad line (malformed; with `--raw`
    /// also unparsed or with a bad frame count), which will end the run.
    pub fn strict(mut self, strict: bool) -> Engine {
        self.strict = strict;
        self
    }

    /// Apply these patterns to raw lines as they are parsed (see [`crate::pattern`]).
    pub fn patterns(mut self, p: Option<std::sync::Arc<crate::pattern::Patterns>>) -> Engine {
        self.patterns = p;
        self
    }

    /// Note which of the fields the declared stats read occur in some event, for
    /// [`Engine::never_seen`]. A worker looks only for those it has not met yet, so once
    /// all have occurred this costs one test per event.
    pub fn track_fields(mut self, on: bool) -> Engine {
        let mut watched = Vec::new();
        if on {
            for i in 0..self.stats.stats.len() {
                for f in self.stat_fields(i) {
                    let id = self.fields.of(f);
                    if !watched.contains(&id) {
                        watched.push(id);
                    }
                }
            }
        }
        self.watched = watched;
        self
    }

    /// The fields stat `i` reads, once each: its filter's, its value, its partition, its
    /// group-by.
    fn stat_fields(&self, i: usize) -> Vec<&str> {
        let def = &self.stats.stats[i];
        let mut out: Vec<&str> = Vec::new();
        let filter = def.filter.any.iter().flatten().map(|c| c.field.as_str());
        let parts = def.partition.iter().flat_map(|p| p.split(','));
        let all = filter
            .chain(def.value.as_deref())
            .chain(parts)
            .chain(def.group_by.iter().map(String::as_str));
        for f in all {
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// Count a no-value contribution to stat `i` of the event read by `get` at chunk line
    /// `line`, describing the first. (Out of line, reading the fields again: the per-event
    /// loop keeps nothing alive for it.)
    #[cold]
    #[inline(never)]
    fn missed<'e>(
        &self,
        i: usize,
        get: impl Fn(u16) -> Option<ValRef<'e>>,
        count: &mut u64,
        first: &mut Option<(u64, String)>,
        line: u64,
    ) {
        *count += 1;
        if first.is_none() {
            let plan = &self.plans[i];
            let value = plan.value.and_then(&get);
            let parts = plan.parts.iter().map(|&f| get(f));
            *first = Some((line, no_value(&self.stats.stats[i], value, parts)));
        }
    }

    /// After a run with [`Engine::track_fields`]: each (stat index, field) where a field
    /// the stat reads occurred in no event, in stat order.
    pub fn never_seen(&self, seen: &FieldsSeen) -> Vec<(usize, &str)> {
        if self.watched.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 0..self.stats.stats.len() {
            for f in self.stat_fields(i) {
                let id = self.fields.of(f) as usize;
                if !seen.seen.get(id).copied().unwrap_or(false) {
                    out.push((i, f));
                }
            }
        }
        out
    }
}

/// Which of the fields the stats read occurred in the events of a run, gathered from the
/// chunks in [`ChunkOut::seen`], and how many events there were.
#[derive(Debug, Default)]
pub struct FieldsSeen {
    seen: Vec<bool>,
    pub events: u64,
}

impl FieldsSeen {
    pub fn add(&mut self, got: &ChunkOut) {
        self.events += got.events;
        for &id in &got.seen {
            let id = id as usize;
            if self.seen.len() <= id {
                self.seen.resize(id + 1, false);
            }
            self.seen[id] = true;
        }
    }
}

/// Move the fields of `unseen` that the event has (`get`) to `seen`.
#[cold]
#[inline(never)]
fn note_seen<'e>(
    unseen: &mut Vec<u16>,
    get: impl Fn(u16) -> Option<ValRef<'e>>,
    seen: &mut Vec<u16>,
) {
    unseen.retain(|&id| {
        let met = get(id).is_some();
        if met {
            seen.push(id);
        }
        !met
    });
}

/// Note that a text of stat `def` (`what`: its group key, value or partition) of `len` bytes
/// was cut at chunk line `line`, describing the first of the chunk in `first`.
#[cold]
#[inline(never)]
fn cut_note(
    first: &mut Option<(u64, String)>,
    line: u64,
    def: &crate::spec::StatDef,
    what: &str,
    len: usize,
    max: usize,
    was_cut: &mut bool,
) {
    *was_cut = true;
    if first.is_none() {
        *first = Some((
            line,
            format!(
                "the {what} of stat {:?} (line {}) is {len} bytes, longer than --max-value-len ({max}): kept as its first bytes and a marker, \"\u{2026}[cut from {len} bytes #HASH]\"; counted in pulse.value.cut",
                def.name, def.line
            ),
        ));
    }
}

/// Why the value of l2met key `k` is no number.
#[cold]
#[inline(never)]
fn l2met_no_value(k: &str, v: ValRef<'_>) -> String {
    let mut text = String::new();
    v.write_text(&mut text);
    format!("l2met key {k:?}: {text:?} is not a number; counted in pulse.novalue")
}

/// What stat `def` missed in an event it passed: the value, or a partition field.
#[cold]
#[inline(never)]
fn no_value<'a>(
    def: &crate::spec::StatDef,
    value: Option<ValRef<'a>>,
    parts: impl Iterator<Item = Option<ValRef<'a>>>,
) -> String {
    let what = |field: &str, v: Option<ValRef<'_>>| match v {
        None => format!("field {field:?} is missing"),
        Some(ValRef::Null) => format!("field {field:?} is empty"),
        Some(v) => {
            let mut text = String::new();
            v.write_text(&mut text);
            match def.unit {
                Some(u) => format!("{field} {text:?} is not a number in {}", u.name()),
                None => format!("{field} {text:?} is not a number"),
            }
        }
    };
    let field = def.value.as_deref().unwrap_or("");
    let value_ok =
        matches!(def.agg, AggSpec::Last { .. }) && value.and_then(|v| def.number(v)).is_some();
    let reason = if value_ok {
        // `last` with its value: a partition field is missing.
        let names = def.partition.as_deref().unwrap_or("").split(',');
        names
            .zip(parts)
            .find(|(_, p)| matches!(p, None | Some(ValRef::Null)))
            .map_or_else(|| "no usable value".to_string(), |(f, p)| what(f, p))
    } else {
        what(field, value)
    };
    format!(
        "stat {:?} (line {}) matched but has no value: {reason}; counted in pulse.novalue",
        def.name, def.line
    )
}

/// A stat's filter over the truth of every condition (an event's condition bits).
enum Pass {
    /// One AND-group of conditions all in the first word of bits (no condition: mask 0), as
    /// most filters are: one mask test, without following a pointer.
    Word0(u64),
    /// Any other: an OR of AND-groups.
    Any(Vec<Group>),
}

impl Pass {
    fn of(any: Vec<Group>) -> Pass {
        match any.as_slice() {
            [] => Pass::Word0(0),
            [Group(words)] => match words.as_slice() {
                [] => Pass::Word0(0),
                [(0, m)] => Pass::Word0(*m),
                _ => Pass::Any(any),
            },
            _ => Pass::Any(any),
        }
    }

    /// Does the event pass, given the truth of every condition in `bits`?
    #[inline(always)]
    fn holds(&self, bits: &[u64]) -> bool {
        match self {
            Pass::Word0(m) => bits[0] & m == *m,
            Pass::Any(any) => any.iter().any(|group| group.holds(bits)),
        }
    }
}

/// An AND-group of conditions as bit masks over the words of an event's condition bits:
/// (word index, bits that must all be set).
struct Group(Vec<(u16, u64)>);

impl Group {
    fn of(conds: &[u16]) -> Group {
        let mut words: Vec<(u16, u64)> = Vec::new();
        for &c in conds {
            let (w, bit) = (c / 64, 1u64 << (c % 64));
            match words.iter_mut().find(|(i, _)| *i == w) {
                Some((_, m)) => *m |= bit,
                None => words.push((w, bit)),
            }
        }
        Group(words)
    }

    #[inline]
    fn holds(&self, bits: &[u64]) -> bool {
        self.0.iter().all(|&(w, m)| bits[w as usize] & m == m)
    }
}

/// A worker's reusable scratch.
pub struct Scratch {
    event: Event,
    parser: Option<Parser>,
    work: Work,
}

/// The per-event scratch of [`Engine::event`].
struct Work {
    key: String,
    text: String,
    /// A `top` value or `last` partition cut to `--max-value-len`.
    cut: String,
    /// Per condition of [`Engine::conds`]: whether the current event meets it, one bit each.
    bits: Vec<u64>,
    /// Per field id: its value in the current event. Only the allocation outlives an event:
    /// it is empty between events (see [`recycle`]).
    vals: Vec<Option<ValRef<'static>>>,
    /// Per field id: its value in the current event line (see [`Event::read_json_routed`]).
    slots: Vec<Option<Val>>,
    /// Per grouping: the current event's group key id, once written.
    gkeys: Vec<Option<KeyId>>,
    /// Per (field, unit) pair of [`Plan::number`]: the current event's value, once converted.
    numbers: Vec<Option<Option<f64>>>,
    /// Reads event times, keeping the last one's date and hour.
    times: Rfc3339Reader,
    /// The watched fields (see [`Engine::track_fields`]) this worker has not met yet.
    unseen: Vec<u16>,
}

/// Keep at most this many bad-line reports per chunk (all are counted).
const BAD_SHOWN: usize = 4;

impl Scratch {
    /// With raw input: stamps without a year are read near `reference` (a file's
    /// modification time), or the clock when `None` (see [`crate::parse::stamp`]).
    pub fn set_reference(&mut self, reference: Option<i64>) {
        if let Some(p) = &mut self.parser {
            p.set_reference(reference.unwrap_or_else(crate::parse::stamp::now));
        }
    }
}

impl Engine {
    pub fn scratch(&self) -> Scratch {
        Scratch {
            event: Event::new(),
            parser: match self.input {
                InputKind::Raw(opts) => Some(
                    Parser::new(opts)
                        .with_patterns(self.patterns.clone())
                        .reading_only(&self.fields.names),
                ),
                InputKind::Events => None,
            },
            work: Work {
                key: String::new(),
                text: String::new(),
                cut: String::new(),
                // At least one word, for `Pass::Word0`.
                bits: vec![0; self.conds.len().div_ceil(64).max(1)],
                vals: Vec::with_capacity(self.fields.names.len()),
                slots: vec![None; self.fields.names.len()],
                gkeys: vec![None; self.groupings.len()],
                numbers: vec![None; self.numbers],
                times: Rfc3339Reader::default(),
                unseen: self.watched.clone(),
            },
        }
    }

    /// Process one chunk of whole lines. `stream_newest` is the newest event time before the
    /// chunk when known (the exact re-run), `None` on a worker.
    pub fn process(&self, s: &mut Scratch, chunk: &[u8], stream_newest: Option<f64>) -> ChunkOut {
        let mut out = self.process_lines(s, chunk, stream_newest, None);
        if stream_newest.is_none()
            && (out.min_kept < f64::INFINITY
                || out.untimed_first
                || out.suspect
                || out.first_time < f64::INFINITY)
        {
            out.data = chunk.to_vec();
        }
        out
    }

    /// [`Engine::process`] on a worker, keeping the chunk itself (for a possible exact
    /// re-run) without copying it.
    pub fn process_owned(&self, s: &mut Scratch, chunk: Vec<u8>) -> ChunkOut {
        let mut out = self.process_lines(s, &chunk, None, None);
        if out.min_kept < f64::INFINITY
            || out.untimed_first
            || out.suspect
            || out.first_time < f64::INFINITY
        {
            out.data = chunk;
        }
        out
    }

    fn process_lines(
        &self,
        s: &mut Scratch,
        chunk: &[u8],
        stream_newest: Option<f64>,
        pending: Option<Pending>,
    ) -> ChunkOut {
        let now = self.clock.now();
        let wall_limit = if self.live {
            now + self.max_ahead
        } else {
            f64::INFINITY
        };
        let newest = stream_newest.unwrap_or(f64::NEG_INFINITY);
        let ahead_limit = if pending.is_some() {
            f64::NEG_INFINITY
        } else {
            self.limit(newest, wall_limit)
        };
        let mut out = ChunkOut {
            partial: Partial::default(),
            lines: 0,
            min_kept: f64::INFINITY,
            max_time: stream_newest.unwrap_or(f64::NEG_INFINITY),
            bad: Vec::new(),
            bad_total: 0,
            data: Vec::new(),
            timeless: Vec::new(),
            now,
            clock_used: f64::NEG_INFINITY,
            last_time: stream_newest.unwrap_or(f64::NEG_INFINITY),
            untimed_first: false,
            in_order: stream_newest.is_some(),
            bad_times: 0,
            first_bad_time: None,
            first_late: None,
            first_future: None,
            ahead_limit,
            wall_limit,
            first_time: f64::INFINITY,
            suspect: false,
            pending,
            held: Partial::default(),
            issues: LineIssues::default(),
            events: 0,
            seen: Vec::new(),
            novalue: 0,
            first_novalue: None,
            cuts: 0,
            first_cut: None,
            first_l2met_dropped: None,
        };
        let Scratch {
            event,
            parser,
            work,
        } = s;
        // Of an event line, the fields some stat reads go to their slot and l2met keys into
        // the event; the rest are checked and dropped.
        let route = |k: &str| {
            let l2met = self.stats.l2met && maybe_l2met(k) && l2met(k).is_some();
            match (self.fields.id(k), l2met) {
                (Some(id), false) => Route::Slot(id),
                (Some(id), true) => Route::Both(id),
                (None, true) => Route::Event,
                (None, false) => Route::Skip,
            }
        };
        for line in lines(chunk) {
            let n = out.lines;
            out.lines += 1;
            match parser {
                Some(p) => {
                    let got = p.parse_line(line, &mut |ev: &Event| {
                        // Under --strict an unparsed record ends the run: not counted.
                        if !(self.strict && matches!(ev.get("unparsed"), Some(ValRef::Bool(true))))
                        {
                            self.event(ev, now, &mut out, work);
                        }
                    });
                    out.issues.record(n, 0, line, &got);
                    if self.strict && (got.unparsed || got.bad_frame_counts > 0) {
                        break;
                    }
                }
                None => {
                    work.slots.fill(None);
                    match event.read_json_routed(line, &route, &mut work.slots) {
                        Ok(()) => self.event_slotted(event, now, &mut out, work),
                        Err(e) => {
                            if line.iter().all(|b| b.is_ascii_whitespace()) {
                                continue;
                            }
                            out.timeless(Own::Malformed);
                            out.bad_total += 1;
                            if out.bad.len() < BAD_SHOWN {
                                out.bad.push(Bad {
                                    line: n,
                                    kind: "malformed",
                                    detail: e.to_string(),
                                });
                            }
                            if self.strict {
                                break;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The stream-order half of a chunk's work (what `pulse-fragment` does with each chunk a
    /// worker hands back, in input order): process the chunk again with the stream's newest
    /// time if the worker kept an event the stream judges late, place the timeless own
    /// counts at the stream's newest time, fold the partial into `windows` and write the
    /// windows now due to `out`. Returns the chunk's output, its partial taken, for
    /// reporting its bad lines.
    pub fn settle(
        &self,
        exact: &mut Scratch,
        windows: &mut window::Windows,
        mut got: ChunkOut,
        diag: &mut Diag,
        out: &mut Vec<u8>,
    ) -> ChunkOut {
        let newest = windows.newest();
        // A held event waits for a chunk with timed events to decide it.
        let held = if got.data.is_empty() {
            None
        } else {
            windows.pending.take()
        };
        if got.min_kept < newest - self.lateness
            || (got.untimed_first && newest.is_finite())
            || got.suspect
            || held.is_some()
            || (newest.is_finite()
                && got.first_time.is_finite()
                && got.first_time > newest + self.max_ahead)
        {
            let data = std::mem::take(&mut got.data);
            // The worker met these fields; the re-run's scratch may not report them again.
            let seen = std::mem::take(&mut got.seen);
            got = self.process_lines(exact, &data, Some(newest), held);
            got.data = data;
            got.seen.extend(seen);
        }
        if let Some(p) = got.pending.take() {
            windows.pending = Some(p);
        }
        if let Some(p) = &mut windows.pending {
            p.line -= got.lines as i64;
        }
        let mut partial = std::mem::take(&mut got.partial);
        for &(own, t, n) in &got.timeless {
            if own == Own::Late {
                diag.count("late (dropped)", n);
            }
            if own == Own::Future {
                diag.count("future (dropped)", n);
            }
            let t = t.max(newest);
            partial.own_n(own, if t.is_finite() { t } else { got.now }, n as f64);
        }
        windows.absorb(&self.stats, partial, got.max_time, got.clock_used, diag);
        got.first_l2met_dropped = windows.take_l2met_dropped();
        windows.flush_due(&self.stats, out);
        got
    }

    /// Fold one event into the chunk's partial.
    fn event(&self, ev: &Event, now: f64, out: &mut ChunkOut, w: &mut Work) {
        // Give each name the stats read its value in the event (an event has no repeated
        // names: a later one replaced the earlier), and note whether any name may be an
        // l2met key. Whichever side has fewer names is walked: with the default stats a
        // parsed line has fewer fields than the stats read names, and most are read.
        let mut vals = recycle(std::mem::take(&mut w.vals));
        let names = &self.fields.names;
        let maybe_l2met = if names.len() < ev.len() && !self.stats.l2met && ev.is_indexed() {
            // Fewer names read than the event has (a syslog line and a stat or two): each
            // looked up in the event's index, from its slot computed once.
            let slots = &self.fields.event_slots;
            vals.extend(names.iter().zip(slots).map(|(n, &s)| ev.get_at_slot(n, s)));
            false
        } else {
            vals.resize(names.len(), None);
            let mut maybe_l2met = false;
            for i in 0..ev.len() {
                let k = ev.key_bytes_at(i);
                if let Some(id) = self.fields.id_bytes(k) {
                    vals[id as usize] = Some(ev.value_at(i));
                }
                maybe_l2met |= maybe_l2met_bytes(k);
            }
            self.stats.l2met && maybe_l2met
        };
        self.fold(ev, |id| vals[id as usize], maybe_l2met, now, out, w);
        w.vals = recycle(vals);
    }

    /// [`Engine::event`] of an event read with [`Event::read_json_routed`]: the fields the
    /// stats read are in `w.slots`, and the event holds only the l2met keys.
    fn event_slotted(&self, ev: &Event, now: f64, out: &mut ChunkOut, w: &mut Work) {
        let mut vals = recycle(std::mem::take(&mut w.vals));
        vals.extend(w.slots.iter().map(|v| v.map(|v| ev.resolve(v))));
        let maybe_l2met = !ev.is_empty();
        self.fold(ev, |id| vals[id as usize], maybe_l2met, now, out, w);
        w.vals = recycle(vals);
    }

    /// [`Engine::event`] once the event's fields are matched: `get` reads a field by id.
    #[inline]
    fn fold<'e>(
        &self,
        ev: &'e Event,
        get: impl Fn(u16) -> Option<ValRef<'e>> + Copy,
        maybe_l2met: bool,
        now: f64,
        out: &mut ChunkOut,
        w: &mut Work,
    ) {
        let Work {
            key,
            text,
            cut,
            bits,
            gkeys,
            numbers,
            times,
            unseen,
            ..
        } = w;
        out.events += 1;
        if !unseen.is_empty() {
            note_seen(unseen, get, &mut out.seen);
        }
        let field = get(self.time_id);
        let mut hold = false;
        let t = match time_with(field, times) {
            Some(t) => {
                if t < out.max_time - self.lateness {
                    if out.first_late.is_none() {
                        out.first_late = Some((out.lines.saturating_sub(1), t, out.max_time));
                    }
                    out.timeless(Own::Late);
                    return;
                }
                if t > out.ahead_limit {
                    match self.ahead(t, out) {
                        Ahead::Keep => {}
                        Ahead::Hold => hold = true,
                        Ahead::Drop => return,
                    }
                }
                if hold {
                    std::mem::swap(&mut out.partial, &mut out.held);
                } else if t > out.max_time {
                    out.max_time = t;
                    out.ahead_limit = self.limit(t, out.wall_limit);
                }
                if !hold {
                    if t < out.min_kept {
                        out.min_kept = t;
                    }
                    out.last_time = t;
                }
                t
            }
            // No time of its own (a stack trace's line, an unparsed line): the time of the
            // previous timed event of the stream. Before any, on a worker, the chunk is
            // done again in stream order; a stream with no time at all so far uses the
            // clock's, which is no event time: it neither moves the stream's time on nor is
            // judged late by it.
            None => out.untimed(field, now),
        };
        let p = &mut out.partial;
        p.own(Own::Events, t);
        if matches!(get(self.unparsed_id), Some(ValRef::Bool(true))) {
            p.own(Own::Unparsed, t);
        }
        // Every condition once, up front: most are read by some stat of every event, and
        // a stat's filter is then a few mask tests.
        bits.fill(0);
        for (c, (cond, &f)) in self.conds.iter().zip(&self.cond_field).enumerate() {
            if cond.test_value(get(f)) {
                bits[c / 64] |= 1 << (c % 64);
            }
        }
        gkeys.fill(None);
        numbers.fill(None);
        // Most stats share one window length: divide once per length met in a row.
        let mut win = (0u32, 0i64);
        // Some text of this event was longer than --max-value-len, and cut.
        let mut was_cut = false;
        let stats = self.stats.stats.iter().zip(&self.plans).zip(&self.filters);
        for (i, ((def, plan), filter)) in stats.enumerate() {
            if !filter.holds(bits) {
                continue;
            }
            let value = plan.value.and_then(get);
            let parts = plan.parts.iter().map(|&f| get(f));
            let number = |v| match plan.number {
                Some(n) => *numbers[n as usize].get_or_insert_with(|| def.number(v)),
                None => def.number(v),
            };
            let Some(mut input) = def.input_with(value, number, parts, t, text) else {
                p.own(Own::NoValue, t);
                let line = out.lines.saturating_sub(1);
                self.missed(i, get, &mut out.novalue, &mut out.first_novalue, line);
                continue;
            };
            match input {
                Input::Text(s) if s.len() > self.max_value_len && def.agg != AggSpec::Unique => {
                    crate::stat::cut_marked(s, self.max_value_len, cut);
                    let line = out.lines.saturating_sub(1);
                    cut_note(
                        &mut out.first_cut,
                        line,
                        def,
                        "value",
                        s.len(),
                        self.max_value_len,
                        &mut was_cut,
                    );
                    input = Input::Text(cut);
                }
                Input::Last { part, time, value } if part.len() > self.max_value_len => {
                    crate::stat::cut_marked(part, self.max_value_len, cut);
                    let line = out.lines.saturating_sub(1);
                    cut_note(
                        &mut out.first_cut,
                        line,
                        def,
                        "partition",
                        part.len(),
                        self.max_value_len,
                        &mut was_cut,
                    );
                    input = Input::Last {
                        part: cut,
                        time,
                        value,
                    };
                }
                _ => {}
            }
            let key_id = plan.grouping.map(|g| match gkeys[g as usize] {
                Some(id) => id,
                None => {
                    let fields = &self.groupings[g as usize];
                    let whole =
                        write_group_key(fields.iter().map(|&f| get(f)), self.max_value_len, key);
                    if let Some(len) = whole {
                        let line = out.lines.saturating_sub(1);
                        cut_note(
                            &mut out.first_cut,
                            line,
                            def,
                            "group key",
                            len,
                            self.max_value_len,
                            &mut was_cut,
                        );
                    }
                    let id = p.key_id(g, key);
                    gkeys[g as usize] = Some(id);
                    id
                }
            });
            if win.0 != def.secs {
                win = (def.secs, window_start(t, def.secs));
            }
            let start = win.1;
            p.add_def(i as u32, key_id, start, def.secs, &def.agg, input);
        }
        if was_cut {
            p.own(Own::Cut, t);
            out.cuts += 1;
        }
        if self.stats.l2met && maybe_l2met {
            for (k, v) in ev.iter() {
                let Some((name, agg)) = l2met(k) else {
                    continue;
                };
                let input = match agg {
                    AggSpec::Unique => {
                        text.clear();
                        v.write_text(text);
                        Input::Text(text)
                    }
                    _ => match v {
                        ValRef::Int(n) => Input::Num(n as f64),
                        ValRef::Float(f) => Input::Num(f),
                        ValRef::Str(s) => match crate::spec::parse_quantity(s, None) {
                            Some(x) => Input::Num(x),
                            None => {
                                p.own(Own::NoValue, t);
                                out.novalue += 1;
                                if out.first_novalue.is_none() {
                                    let line = out.lines.saturating_sub(1);
                                    out.first_novalue = Some((line, l2met_no_value(k, v)));
                                }
                                continue;
                            }
                        },
                        _ => {
                            p.own(Own::NoValue, t);
                            out.novalue += 1;
                            if out.first_novalue.is_none() {
                                let line = out.lines.saturating_sub(1);
                                out.first_novalue = Some((line, l2met_no_value(k, v)));
                            }
                            continue;
                        }
                    },
                };
                let start = window_start(t, OWN_SECS);
                p.add_l2met(name, start, &agg, input, out.lines.saturating_sub(1));
            }
        }
        if hold {
            let partial = std::mem::take(&mut out.partial);
            out.partial = std::mem::take(&mut out.held);
            let p = out.pending.as_mut().expect("the event held");
            p.partial = partial;
        }
    }

    /// The slow path of an event at `t` above [`ChunkOut::ahead_limit`]: the first timed
    /// event of a chunk, an event after a held one, or one far ahead of the newest time or
    /// the clock.
    #[cold]
    #[inline(never)]
    fn ahead(&self, t: f64, out: &mut ChunkOut) -> Ahead {
        let line = out.lines.saturating_sub(1) as i64;
        if t > out.wall_limit && out.max_time.is_finite() && out.max_time <= out.wall_limit {
            self.future(out, line, t, out.max_time.max(out.now), true);
            return Ahead::Drop;
        }
        if let Some(p) = out.pending.take() {
            // This event decides the held one: a real jump if it is also far ahead of the
            // time before it, and not late by the held one's.
            if t > p.newest + self.max_ahead && t >= p.time - self.lateness {
                out.partial.entries.extend(p.partial.entries);
                if p.time > out.max_time {
                    out.max_time = p.time;
                }
                out.min_kept = out.min_kept.min(p.time);
                out.last_time = p.time;
            } else {
                self.future(out, p.line, p.time, p.newest, false);
            }
        }
        let limit = self.limit(out.max_time, out.wall_limit);
        out.ahead_limit = limit;
        if !out.max_time.is_finite() {
            // The first timed event: of the stream in stream order, nothing to judge it by;
            // on a worker, `settle` judges it.
            if !out.in_order {
                out.first_time = out.first_time.min(t);
            }
            return Ahead::Keep;
        }
        if t <= limit {
            return Ahead::Keep;
        }
        if !out.in_order {
            out.suspect = true;
            return Ahead::Keep;
        }
        out.pending = Some(Pending {
            time: t,
            newest: out.max_time,
            line,
            partial: Partial::default(),
        });
        out.ahead_limit = f64::NEG_INFINITY;
        Ahead::Hold
    }

    /// The event time above which [`Engine::ahead`] judges an event, after the newest time
    /// `newest`: `--max-ahead` past it, and on live input no further than the clock allows
    /// (`wall`), unless the stream is already ahead of the clock (then the clock is not
    /// what is wrong).
    #[inline]
    fn limit(&self, newest: f64, wall: f64) -> f64 {
        let limit = newest + self.max_ahead;
        if newest <= wall {
            limit.min(wall)
        } else {
            limit
        }
    }

    /// Drop an event at `t` as too far ahead of `newest` (or of the clock).
    #[cold]
    fn future(&self, out: &mut ChunkOut, line: i64, t: f64, newest: f64, clock: bool) {
        if out.first_future.is_none() {
            out.first_future = Some((line, t, newest, clock));
        }
        out.timeless(Own::Future);
    }
}

/// What [`Engine::ahead`] decides of an event.
enum Ahead {
    Keep,
    Hold,
    Drop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let words = [
            "", "a", "ab", "abc", "abcd", "abcde", "status", "service", "sample#x",
        ];
        let long = [
            "sample#memory_to",
            "sample#memory_total",
            "sample#memory_totaL",
        ];
        for a in words.iter().chain(&long) {
            for b in words.iter().chain(&long) {
                assert_eq!(
                    same_bytes(a.as_bytes(), b.as_bytes()),
                    a == b,
                    "{a:?} {b:?}"
                );
            }
            for i in 0..a.len() {
                let mut c = a.as_bytes().to_vec();
                c[i] ^= 1;
                assert!(!same_bytes(a.as_bytes(), &c), "{a:?} {i}");
            }
        }
    }

    #[test]
    fn recycle_keeps_the_allocation() {
        let text = String::from("x");
        let mut v: Vec<Option<ValRef<'_>>> = Vec::with_capacity(40);
        v.push(Some(ValRef::Str(&text)));
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        let w: Vec<Option<ValRef<'static>>> = recycle(v);
        assert!(w.is_empty());
        assert_eq!((w.as_ptr() as usize, w.capacity()), (ptr, cap));
    }

    #[test]
    fn filters_over_more_than_64_conditions_count_what_they_match() {
        // 70 conditions `f=N`, then ANDs and ORs across the words of the condition bits.
        let mut text: String = (0..70).map(|n| format!("s{n} count 60s f={n}\n")).collect();
        text.push_str("either count 60s f=3 || f=68\n");
        text.push_str("both count 60s f=1 h=69\n");
        text.push_str("all count 60s\n");
        let stats = StatSet::parse(&text, "test").unwrap();
        let engine = Engine::new(stats, InputKind::Events, 300.0, Clock::Fixed(0.0));
        let lines: String = [(3, 0), (68, 0), (1, 69), (1, 70), (69, 69), (5, 1)]
            .iter()
            .map(|(f, h)| format!("{{\"time\":60,\"f\":{f},\"h\":{h}}}\n"))
            .collect();
        let out = engine.process(&mut engine.scratch(), lines.as_bytes(), None);
        let count = |name: &str| -> u64 {
            let i = engine
                .stats
                .stats
                .iter()
                .position(|d| d.name == name)
                .unwrap();
            out.partial
                .entries
                .iter()
                .filter(|e| e.stat == StatId::Def(i as u32))
                .map(|e| match &e.state {
                    State::Count(c) => c.get() as u64,
                    other => panic!("{other:?}"),
                })
                .sum()
        };
        for (name, want) in [
            ("s0", 0),
            ("s1", 2),
            ("s3", 1),
            ("s5", 1),
            ("s68", 1),
            ("s69", 1),
            ("either", 2),
            ("both", 1),
            ("all", 6),
        ] {
            assert_eq!(count(name), want, "{name}");
        }
    }

    /// Counts per (stat, window start) of `lines` fragmented in chunks of `size` lines, with
    /// the held event at the end kept as `pulse-fragment` does.
    fn counts_in_chunks(engine: &Engine, lines: &[String], size: usize) -> Vec<(String, i64, f64)> {
        let mut windows = window::Windows::new("t".into(), engine.clock, 0.0, 300.0, None);
        let mut diag = Diag::new("test", false).quiet();
        let (mut scratch, mut exact) = (engine.scratch(), engine.scratch());
        let mut out = Vec::new();
        for chunk in lines.chunks(size) {
            let text: String = chunk.iter().map(|l| format!("{l}\n")).collect();
            let got = engine.process(&mut scratch, text.as_bytes(), None);
            engine.settle(&mut exact, &mut windows, got, &mut diag, &mut out);
        }
        windows.keep_pending(&engine.stats, &mut diag);
        windows.finish(&engine.stats, &mut out).unwrap();
        let mut latest: std::collections::BTreeMap<(String, i64), (u64, f64)> = Default::default();
        for line in String::from_utf8(out).unwrap().lines() {
            let f: serde_json::Value = serde_json::from_str(line).unwrap();
            let k = (
                f["stat"].as_str().unwrap().to_string(),
                f["start"].as_i64().unwrap(),
            );
            let rev = f["rev"].as_u64().unwrap();
            let n = f["state"]["count"].as_f64().unwrap_or(f64::NAN);
            if latest.get(&k).is_none_or(|(r, _)| rev > *r) {
                latest.insert(k, (rev, n));
            }
        }
        latest
            .into_iter()
            .map(|((s, t), (_, n))| (s, t, n))
            .collect()
    }

    #[test]
    fn events_far_ahead_are_judged_the_same_in_any_chunking() {
        let stats = StatSet::parse("req count 60s\n", "test").unwrap();
        let engine = Engine::new(stats, InputKind::Events, 300.0, Clock::Fixed(0.0));
        // Ahead and back (dropped), a real gap (kept), two far ahead in a row (the second
        // confirms the first), a far one followed by a malformed line and an untimed one, and
        // a far one at the end (kept: nothing after it is made late by it).
        let times = [
            "0", "10", "9000000", "20", "30", "7230", "7240", "7250", "20000", "20001", "20002",
            "90000", "x", "null", "20003", "20004", "900000",
        ];
        let lines: Vec<String> = times
            .iter()
            .map(|t| match *t {
                "x" => "{not json".to_string(),
                t => format!("{{\"time\":{t}}}"),
            })
            .collect();
        let want = counts_in_chunks(&engine, &lines, lines.len());
        let total = |stat: &str| -> f64 {
            want.iter()
                .filter(|(s, ..)| s == stat)
                .map(|(.., n)| n)
                .sum()
        };
        assert_eq!(total("req"), 14.0, "{want:?}");
        assert_eq!(total("pulse.future"), 2.0, "{want:?}");
        assert_eq!(total("pulse.late"), 0.0, "{want:?}");
        for size in 1..lines.len() {
            assert_eq!(
                counts_in_chunks(&engine, &lines, size),
                want,
                "chunks of {size}"
            );
        }
    }

    /// The fragments of `lines` in chunks of `size` lines, at most `names` l2met names, as
    /// (stat, start, state), and the contributions dropped.
    fn l2met_in_chunks(lines: &[String], size: usize, names: usize) -> (Vec<String>, f64) {
        let stats = StatSet::parse("l2met on\nall count 60s\n", "test").unwrap();
        let engine = Engine::new(stats, InputKind::Events, 300.0, Clock::Fixed(0.0));
        let mut windows =
            window::Windows::new("t".into(), engine.clock, 0.0, 300.0, None).max_l2met(names, 8);
        let mut diag = Diag::new("test", false).quiet();
        let (mut scratch, mut exact) = (engine.scratch(), engine.scratch());
        let mut out = Vec::new();
        let mut first = None;
        for chunk in lines.chunks(size) {
            let text: String = chunk.iter().map(|l| format!("{l}\n")).collect();
            let got = engine.process(&mut scratch, text.as_bytes(), None);
            let got = engine.settle(&mut exact, &mut windows, got, &mut diag, &mut out);
            first = first.or(got.first_l2met_dropped);
        }
        windows.finish(&engine.stats, &mut out).unwrap();
        let mut frags: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                let f: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", f["stat"], f["start"], f["state"])
            })
            .collect();
        frags.sort();
        assert!(first.is_some());
        (frags, diag.total("l2met dropped") as f64)
    }

    #[test]
    fn the_l2met_names_admitted_do_not_depend_on_chunking() {
        // Names a..g over two minutes, each several times, and names too long (9 bytes)
        // or of the tool's own, which take no place.
        let names = [
            "a",
            "b",
            "a",
            "c",
            "d",
            "a",
            "e",
            "b",
            "f",
            "toolongxx",
            "pulse.x",
            "g",
        ];
        let lines: Vec<String> = (0..40)
            .map(|i| {
                let n = names[i % names.len()];
                format!("{{\"time\":{},\"count#{n}\":1,\"measure#d\":{i}}}", i * 3)
            })
            .collect();
        let (want, dropped) = l2met_in_chunks(&lines, lines.len(), 4);
        // d, a, b, c admitted (in order of first use); e, f, g and the long name dropped.
        for stat in ["\"a\"", "\"b\"", "\"c\"", "\"d\""] {
            assert!(want.iter().any(|f| f.starts_with(stat)), "{stat} {want:?}");
        }
        for stat in ["\"e\"", "\"f\"", "\"g\"", "\"toolongxx\"", "\"pulse.x\""] {
            assert!(!want.iter().any(|f| f.starts_with(stat)), "{stat} {want:?}");
        }
        let uses = |n: &str| (0..40).filter(|i| names[i % names.len()] == n).count() as f64;
        assert_eq!(
            dropped,
            uses("e") + uses("f") + uses("g") + uses("toolongxx")
        );
        assert!(want
            .iter()
            .any(|f| f.starts_with("\"pulse.l2met.dropped\"")));
        // `count#d` clashes with `measure#d` (the first kind): its values never reach d's.
        assert!(
            want.iter().any(|f| f.starts_with("\"d\" 0 {\"count\":20,")),
            "{want:?}"
        );
        assert!(
            want.iter()
                .any(|f| f.starts_with("\"d\" 60 {\"count\":20,")),
            "{want:?}"
        );
        for size in 1..lines.len() {
            assert_eq!(
                l2met_in_chunks(&lines, size, 4),
                (want.clone(), dropped),
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn windows_align_to_the_epoch() {
        assert_eq!(window_start(119.9, 60), 60);
        assert_eq!(window_start(120.0, 60), 120);
        assert_eq!(window_start(-0.5, 60), -60);
        assert_eq!(window_start(1431857103.0, 600), 1431856800);
    }

    #[test]
    fn event_time_reads_text_and_numbers() {
        let mut e = Event::new();
        e.set_str("time", "2015-05-17T10:05:03+00:00");
        assert_eq!(event_time(&e), Some(1431857103.0));
        e.set("time", crate::record::Val::Int(1431857103000));
        assert_eq!(event_time(&e), Some(1431857103.0));
        e.set_str("time", "yesterday");
        assert_eq!(event_time(&e), None);
        // As pulse-parse reads numbers: microseconds (year ~58,800 as milliseconds) and
        // numbers past year 9999 are no time, so they cannot make a live stream late.
        e.set("time", crate::record::Val::Int(1431857103000000));
        assert_eq!(event_time(&e), None);
        e.set("time", crate::record::Val::Float(1e30));
        assert_eq!(event_time(&e), None);
        e.set("time", crate::record::Val::Float(1e11));
        assert_eq!(event_time(&e), Some(1e8));
    }
}
