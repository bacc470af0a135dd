//! Where snapshots go: Graphite, HTTP, and text formats on a writer.
//!
//! Every sink takes batches of [`Snapshot`]s that were already collapsed by [`Latest`] (one
//! per stat, key and window, the newest, final preferred) and either delivers the whole batch
//! or returns an error, in which case the caller keeps the batch and tries again later: a
//! sink never reports a batch as delivered before its bytes were written and flushed
//! (Graphite) or acknowledged with a 2xx status (HTTP).
//!
//! - [`graphite`]: the plaintext protocol over TCP, with reconnects and backoff;
//! - [`http`]: the original Heroku Pulse emitter's JSON body, POSTed to each URL;
//! - [`text`]: `json`, `csv`, `table` and `graphite` lines on a writer (stdout);
//! - [`state`]: the checkpoint that lets `pulse-emit --state` run from cron.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::Result;
use crate::record::Snapshot;

pub mod graphite;
pub mod http;
pub mod live;
pub mod postgres;
pub mod state;
pub mod text;

/// A destination for snapshots.
pub trait Sink {
    /// How messages name this sink (`graphite 127.0.0.1:2003`, a URL without its password).
    fn name(&self) -> String;

    /// Deliver `batch`; `Ok` only once all of it was accepted.
    fn send(&mut self, batch: &[Snapshot]) -> Result<()>;

    /// True when the sink wants the whole input at the end (csv, table) rather than batches
    /// as they come.
    fn at_end_only(&self) -> bool {
        false
    }

    /// True when sending the same snapshot twice is harmless (Graphite: a point overwrites
    /// the one of the same path and timestamp), so recent windows may be re-sent.
    fn idempotent(&self) -> bool {
        false
    }

    /// The input has ended and the last batch was sent: write what is still held.
    fn end(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The identity of a snapshot: window start first so that output is in time order.
pub type SnapKey = (i64, String, Option<String>, u32);

pub fn snap_key(s: &Snapshot) -> SnapKey {
    (s.start, s.stat.clone(), s.key.clone(), s.secs)
}

/// The latest snapshot of each (stat, key, window).
///
/// A later snapshot replaces an earlier one, except that a non-final snapshot never replaces
/// a final one (a merger restarted on old input may re-send a window it already closed).
#[derive(Debug, Default, Clone)]
pub struct Latest {
    map: BTreeMap<SnapKey, Snapshot>,
}

impl Latest {
    pub fn new() -> Latest {
        Latest::default()
    }

    pub fn insert(&mut self, snap: Snapshot) {
        match self.map.entry(snap_key(&snap)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(snap);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if snap.is_final || !o.get().is_final {
                    o.insert(snap);
                }
            }
        }
    }

    /// Put back snapshots that could not be delivered, unless something newer arrived since.
    pub fn restore(&mut self, older: Vec<Snapshot>) {
        for snap in older {
            self.map.entry(snap_key(&snap)).or_insert(snap);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All snapshots in (start, stat, key, secs) order, leaving this empty.
    pub fn drain(&mut self) -> Vec<Snapshot> {
        std::mem::take(&mut self.map).into_values().collect()
    }

    /// All snapshots in (start, stat, key, secs) order.
    pub fn to_vec(&self) -> Vec<Snapshot> {
        self.map.values().cloned().collect()
    }
}

/// A snapshot as read, its names borrowed from the line where they hold no escapes: what
/// [`parse_snapshot_ref`] gives, so that a reader that keeps only numbers (pulse-web's
/// history) allocates nothing per line.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRef<'a> {
    pub stat: Cow<'a, str>,
    pub key: Option<Cow<'a, str>>,
    pub start: i64,
    pub secs: u32,
    pub is_final: bool,
    /// The finite values, sorted by name, one per name (the last one given).
    pub values: Vec<(Cow<'a, str>, f64)>,
}

impl SnapshotRef<'_> {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| self.values[i].1)
    }

    pub fn into_owned(self) -> Snapshot {
        Snapshot {
            stat: self.stat.into_owned(),
            key: self.key.map(Cow::into_owned),
            start: self.start,
            secs: self.secs,
            is_final: self.is_final,
            values: self
                .values
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect(),
        }
    }
}

impl<'a> From<&'a Snapshot> for SnapshotRef<'a> {
    fn from(s: &'a Snapshot) -> SnapshotRef<'a> {
        SnapshotRef {
            stat: Cow::Borrowed(&s.stat),
            key: s.key.as_deref().map(Cow::Borrowed),
            start: s.start,
            secs: s.secs,
            is_final: s.is_final,
            values: s
                .values
                .iter()
                .map(|(k, &v)| (Cow::Borrowed(k.as_str()), v))
                .collect(),
        }
    }
}

/// A JSON string, borrowed from the line unless it holds escapes.
struct WireStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for WireStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                s: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(WireStr(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
                Ok(WireStr(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> std::result::Result<Self::Value, E> {
                Ok(WireStr(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The values object: read as a map of names to numbers or `null`, then sorted by name with
/// the last value of a repeated name kept (as a map would), and only the finite ones kept.
struct WireValues<'a>(Vec<(Cow<'a, str>, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for WireValues<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireValues<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut m: M,
            ) -> std::result::Result<Self::Value, M::Error> {
                // A `null` is held as NaN until a later value of the same name replaces it;
                // JSON numbers are never NaN.
                let mut all: Vec<(Cow<'de, str>, f64)> = Vec::with_capacity(8);
                while let Some((k, v)) = m.next_entry::<WireStr<'de>, Option<f64>>()? {
                    all.push((k.0, v.unwrap_or(f64::NAN)));
                }
                if !all.windows(2).all(|w| w[0].0 < w[1].0) {
                    // Stable: of equal names, the last one given ends up last, and its
                    // value is kept.
                    all.sort_by(|a, b| a.0.cmp(&b.0));
                    all.dedup_by(|later, kept| {
                        let same = later.0 == kept.0;
                        if same {
                            kept.1 = later.1;
                        }
                        same
                    });
                }
                all.retain(|(_, v)| v.is_finite());
                Ok(WireValues(all))
            }
        }
        d.deserialize_map(V)
    }
}

/// The snapshot as read: values may be `null` (a merger writes non-finite numbers so).
#[derive(Deserialize)]
struct WireSnapshot<'a> {
    #[serde(borrow)]
    stat: WireStr<'a>,
    #[serde(borrow)]
    key: Option<WireStr<'a>>,
    start: i64,
    secs: u32,
    #[serde(rename = "final", default)]
    is_final: bool,
    #[serde(borrow)]
    values: WireValues<'a>,
}

/// Parse one NDJSON line as a snapshot. `null` values are dropped (they carry no number).
pub fn parse_snapshot(line: &[u8]) -> std::result::Result<Snapshot, String> {
    parse_snapshot_ref(line).map(SnapshotRef::into_owned)
}

/// [`parse_snapshot`], borrowing the names from `line`.
pub fn parse_snapshot_ref(line: &[u8]) -> std::result::Result<SnapshotRef<'_>, String> {
    match plain_snapshot(line) {
        Some(s) => Ok(s),
        None => parse_snapshot_serde(line),
    }
}

/// A snapshot line's fields but its values, as [`read_plain`] reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlainHead<'a> {
    pub stat: &'a str,
    pub key: Option<&'a str>,
    pub start: i64,
    pub secs: u32,
    pub is_final: bool,
}

/// Read `line` if it is a snapshot exactly as pulse-merge writes it (see [`Plain`]),
/// pushing its finite values onto `values` in their order (sorted by name); `None`, with
/// nothing pushed, for any other line, which [`parse_snapshot_ref`] reads.
pub fn read_plain<'a>(line: &'a [u8], values: &mut Vec<(&'a str, f64)>) -> Option<PlainHead<'a>> {
    let from = values.len();
    let head = Plain::new(line).read(values);
    if head.is_none() {
        values.truncate(from);
    }
    head
}

fn plain_snapshot(line: &[u8]) -> Option<SnapshotRef<'_>> {
    let mut values = Vec::with_capacity(8);
    let h = read_plain(line, &mut values)?;
    Some(SnapshotRef {
        stat: Cow::Borrowed(h.stat),
        key: h.key.map(Cow::Borrowed),
        start: h.start,
        secs: h.secs,
        is_final: h.is_final,
        values: values
            .into_iter()
            .map(|(n, v)| (Cow::Borrowed(n), v))
            .collect(),
    })
}

/// The general reader of [`parse_snapshot_ref`]: any JSON object, its fields in any order,
/// escapes, unknown fields, and the message for what is not a snapshot.
fn parse_snapshot_serde(line: &[u8]) -> std::result::Result<SnapshotRef<'_>, String> {
    let w: WireSnapshot = serde_json::from_slice(line).map_err(|e| {
        let msg = e.to_string();
        format!("not a snapshot: {msg}")
    })?;
    if w.stat.0.is_empty() {
        return Err("not a snapshot: empty stat name".into());
    }
    if w.secs == 0 {
        return Err("not a snapshot: secs is 0".into());
    }
    Ok(SnapshotRef {
        stat: w.stat.0,
        key: w.key.map(|k| k.0),
        start: w.start,
        secs: w.secs,
        is_final: w.is_final,
        values: w.values.0,
    })
}

/// A reader of snapshots exactly as pulse-merge writes them: compact, the fields in their
/// order, names without escapes, values sorted by name. It reads a line to what the general
/// reader gives for it, or gives up (`None`) at the first byte that is not of that form and
/// leaves the line to the general reader, which also words the errors; so it changes how
/// fast a line is read, never what is read.
struct Plain<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Plain<'a> {
    fn new(b: &'a [u8]) -> Plain<'a> {
        Plain { b, i: 0 }
    }

    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        let end = self.i + s.len();
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    #[inline]
    fn eat(&mut self, s: &[u8]) -> bool {
        self.lit(s).is_some()
    }

    /// The text up to the closing quote (the opening one read), which must hold no escape
    /// and no control character.
    fn text(&mut self) -> Option<&'a str> {
        let from = self.i;
        let len = memchr::memchr(b'"', &self.b[from..])?;
        let raw = &self.b[from..from + len];
        if raw.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i = from + len + 1;
        std::str::from_utf8(raw).ok()
    }

    /// A JSON integer's digits (`-`? then `0` or digits not starting with 0).
    fn int_token(&mut self) -> Option<&'a [u8]> {
        let from = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let n = self.i - digits;
        if n == 0 || (n > 1 && self.b[digits] == b'0') {
            return None;
        }
        Some(&self.b[from..self.i])
    }

    fn int(&mut self) -> Option<i64> {
        std::str::from_utf8(self.int_token()?).ok()?.parse().ok()
    }

    /// A value: a JSON number as serde_json reads it into an `f64` (an integer through
    /// `u64`, others correctly rounded), or `null` as NaN, as the general reader holds it.
    fn number(&mut self) -> Option<f64> {
        if self.eat(b"null") {
            return Some(f64::NAN);
        }
        let from = self.i;
        let int = self.int_token()?;
        let mut float = false;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            float = true;
            self.digits()?;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
        }
        let text = std::str::from_utf8(&self.b[from..self.i]).ok()?;
        let v = if float {
            text.parse::<f64>().ok()?
        } else if int[0] == b'-' {
            // Negated after the conversion: `-0` is -0.0, as serde_json has it.
            -(text[1..].parse::<u64>().ok()? as f64)
        } else {
            text.parse::<u64>().ok()? as f64
        };
        v.is_finite().then_some(v)
    }

    fn digits(&mut self) -> Option<()> {
        let from = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        (self.i > from).then_some(())
    }

    fn read(mut self, values: &mut Vec<(&'a str, f64)>) -> Option<PlainHead<'a>> {
        self.lit(br#"{"stat":""#)?;
        let stat = self.text()?;
        self.lit(br#","key":"#)?;
        let key = if self.eat(b"null") {
            None
        } else {
            self.lit(b"\"")?;
            Some(self.text()?)
        };
        self.lit(br#","start":"#)?;
        let start = self.int()?;
        self.lit(br#","secs":"#)?;
        let secs = u32::try_from(self.int()?).ok()?;
        self.lit(br#","final":"#)?;
        let is_final = if self.eat(b"true") {
            true
        } else if self.eat(b"false") {
            false
        } else {
            return None;
        };
        self.lit(br#","values":{"#)?;
        let mut last: Option<&str> = None;
        if !self.eat(b"}") {
            loop {
                self.lit(b"\"")?;
                let name = self.text()?;
                self.lit(b":")?;
                let v = self.number()?;
                // Sorted and each name once, as a merger writes them; else the general
                // reader sorts them out.
                if last.is_some_and(|last| last >= name) {
                    return None;
                }
                last = Some(name);
                if v.is_finite() {
                    values.push((name, v));
                }
                if self.eat(b"}") {
                    break;
                }
                self.lit(b",")?;
            }
        }
        self.lit(b"}")?;
        if self.i != self.b.len() || stat.is_empty() || secs == 0 {
            return None;
        }
        Some(PlainHead {
            stat,
            key,
            start,
            secs,
            is_final,
        })
    }
}

/// Exponential backoff: `base`, `2 × base`, ... capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            next: base,
        }
    }

    /// The delay to wait now; the next one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(stat: &str, key: Option<&str>, start: i64, fin: bool, v: f64) -> Snapshot {
        Snapshot {
            stat: stat.into(),
            key: key.map(Into::into),
            start,
            secs: 60,
            is_final: fin,
            values: [("count".to_string(), v)].into_iter().collect(),
        }
    }

    #[test]
    fn latest_keeps_newest_and_prefers_final() {
        let mut l = Latest::new();
        l.insert(snap("a", None, 60, false, 1.0));
        l.insert(snap("a", None, 60, false, 2.0));
        l.insert(snap("a", Some("x"), 60, false, 5.0));
        l.insert(snap("a", None, 0, true, 9.0));
        l.insert(snap("a", None, 60, true, 3.0));
        l.insert(snap("a", None, 60, false, 4.0));
        let v = l.drain();
        let got: Vec<(i64, Option<&str>, f64)> = v
            .iter()
            .map(|s| (s.start, s.key.as_deref(), s.values["count"]))
            .collect();
        assert_eq!(
            got,
            vec![(0, None, 9.0), (60, None, 3.0), (60, Some("x"), 5.0)]
        );
        assert!(l.is_empty());
    }

    #[test]
    fn restore_does_not_override_newer() {
        let mut l = Latest::new();
        l.insert(snap("a", None, 60, false, 2.0));
        l.restore(vec![
            snap("a", None, 60, false, 1.0),
            snap("b", None, 0, true, 7.0),
        ]);
        let v = l.drain();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].values["count"], 2.0);
    }

    /// The parse as it was, into owned maps: the borrowing parse must agree with it.
    fn parse_owned(line: &[u8]) -> std::result::Result<Snapshot, String> {
        #[derive(Deserialize)]
        struct Old {
            stat: String,
            key: Option<String>,
            start: i64,
            secs: u32,
            #[serde(rename = "final", default)]
            is_final: bool,
            values: BTreeMap<String, Option<f64>>,
        }
        let w: Old = serde_json::from_slice(line).map_err(|e| format!("not a snapshot: {e}"))?;
        if w.stat.is_empty() {
            return Err("not a snapshot: empty stat name".into());
        }
        if w.secs == 0 {
            return Err("not a snapshot: secs is 0".into());
        }
        Ok(Snapshot {
            stat: w.stat,
            key: w.key,
            start: w.start,
            secs: w.secs,
            is_final: w.is_final,
            values: w
                .values
                .into_iter()
                .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (k, v)))
                .collect(),
        })
    }

    #[test]
    fn borrowing_parse_agrees_with_owned_maps() {
        for line in [
            &br#"{"stat":"s","key":"k","start":60,"secs":60,"final":true,"values":{"p99":3,"count":2,"max":null}}"#[..],
            br#"{"stat":"a\"b","key":"x\ny\u00e9","start":-5,"secs":1,"values":{"z":1,"a":2,"z":null,"a":7,"m\u0041":1e400}}"#,
            br#"{"stat":"s","key":"k","start":0,"secs":60,"values":{"b":null,"a":1,"b":3,"c":2,"c":null}}"#,
            br#"{"values":{},"secs":9,"start":0,"key":null,"stat":"s","extra":[1,{"a":2}]}"#,
            br#"{"stat":"s","key":5,"start":0,"secs":1,"values":{}}"#,
            br#"{"stat":"s","start":0,"secs":1,"values":{"a":"x"}}"#,
            br#"{"stat":"s","start":0,"secs":1,"values":[]}"#,
            br#"{"stat":"","start":0,"secs":1,"values":{}}"#,
            br#"{"stat":"s","start":0,"secs":1}"#,
            br#"{"stat":"s","start":0,"secs":1,"values":{"a":1}"#,
            b"{}",
            b"[1]",
            b"not json",
        ] {
            let text = String::from_utf8_lossy(line);
            assert_eq!(parse_snapshot(line), parse_owned(line), "{text}");
        }
    }

    /// Whatever the fast reader reads, the general one reads the same (to the bit of
    /// every value); lines it gives up on are the general reader's.
    fn plain_agrees(line: &[u8]) -> bool {
        let Some(fast) = plain_snapshot(line) else {
            return false;
        };
        let slow = parse_snapshot_serde(line).expect("the general reader takes it too");
        let bits = |s: &SnapshotRef| -> Vec<(String, u64)> {
            s.values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect()
        };
        assert_eq!(
            (&fast.stat, &fast.key, fast.start, fast.secs, fast.is_final),
            (&slow.stat, &slow.key, slow.start, slow.secs, slow.is_final),
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(
            bits(&fast),
            bits(&slow),
            "{}",
            String::from_utf8_lossy(line)
        );
        true
    }

    #[test]
    fn the_fast_reader_takes_what_a_merger_writes_and_leaves_the_rest() {
        let merged = br#"{"stat":"router.service","key":"www.example.org","start":1767225600,"secs":60,"final":false,"values":{"count":290,"max":1e21,"mean":4.833333333333333,"min":-0.5,"p50":null}}"#;
        assert!(plain_agrees(merged));
        for line in [
            &br#"{"stat":"a\"b","key":null,"start":0,"secs":60,"final":true,"values":{}}"#[..],
            br#"{"stat":"s","key":null,"start":0,"secs":60,"values":{}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{"b":1,"a":2}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{"a":1,"a":2}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{"a":01}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{"a":1.}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{"a":1e400}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":0,"final":true,"values":{}}"#,
            br#"{"stat":"","key":null,"start":0,"secs":60,"final":true,"values":{}}"#,
            br#"{"stat":"s","key":null,"start":0,"secs":60,"final":true,"values":{}} "#,
            br#"{"stat":"s", "key":null,"start":0,"secs":60,"final":true,"values":{}}"#,
        ] {
            assert!(
                plain_snapshot(line).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(parse_snapshot_ref(line), parse_snapshot_serde(line));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_reader_agrees_with_the_general_one(
            stat in "[a-z.\"\\\\\u{e9}\u{1}]{0,12}",
            key in proptest::option::of("[a-z0-9.\"\u{7f}\u{1f600}]{0,10}"),
            start in proptest::prelude::any::<i64>(),
            secs in 0u64..5_000_000_000,
            is_final in proptest::prelude::any::<bool>(),
            names in proptest::collection::vec("[a-z]{1,4}", 0..6),
            nums in proptest::collection::vec(
                "null|-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", 6),
        ) {
            let mut line = format!("{{\"stat\":{},\"key\":{},\"start\":{start},\"secs\":{secs},\"final\":{is_final},\"values\":{{",
                serde_json::to_string(&stat).unwrap(), serde_json::to_string(&key).unwrap());
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&format!("\"{n}\":{}", nums[i]));
            }
            line.push_str("}}");
            let plain = plain_agrees(line.as_bytes());
            // Read fast exactly when the line is in the merger's form: names sorted and
            // once each, stat and key without escapes, numbers in range (integers within
            // u64 either side of 0).
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            let number = |n: &String| {
                n == "null"
                    || if n.contains(['.', 'e', 'E']) {
                        n.parse::<f64>().is_ok_and(f64::is_finite)
                    } else {
                        n.trim_start_matches('-').parse::<u64>().is_ok()
                    }
            };
            let form = !stat.is_empty()
                && !stat.contains(['"', '\\', '\u{1}'])
                && key.as_deref().is_none_or(|k| !k.contains('"'))
                && (1..=u64::from(u32::MAX)).contains(&secs)
                && sorted == names
                && nums[..names.len()].iter().all(number);
            proptest::prop_assert_eq!(plain, form, "{}", line);
        }
    }

    #[test]
    fn parse_snapshot_accepts_null_key_and_values() {
        let s = parse_snapshot(
            br#"{"stat":"s","key":null,"start":60,"secs":60,"final":true,"values":{"count":2,"stddev":null}}"#,
        )
        .unwrap();
        assert_eq!(s.key, None);
        assert!(s.is_final);
        assert_eq!(s.values.len(), 1);
        for bad in [
            &b"{}"[..],
            b"[1]",
            b"{\"stat\":\"s\",\"key\":null,\"start\":\"x\",\"secs\":60,\"values\":{}}",
            b"{\"stat\":\"s\",\"key\":null,\"start\":1,\"secs\":0,\"values\":{}}",
        ] {
            assert!(parse_snapshot(bad).is_err());
        }
    }

    #[test]
    fn backoff_doubles_to_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }
}
