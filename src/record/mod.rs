//! The wire format between the stages: one JSON object per line.
//!
//! # Event (pulse-parse → pulse-fragment)
//!
//! A flat object: the envelope of the log line (`time`, `host`, `source`, `ps`, `level`,
//! `slot`, `instance_id`, `cloud`, `msg`, where the format has them) plus every `key=value`
//! attribute of the message at top level. An attribute overrides an envelope field of the same
//! name. Envelope fields are strings except `instance_id` (an integer); attribute values are
//! numbers, booleans, `null` or strings. A line no format matches is
//! `{"line":"...","unparsed":true}`.
//!
//! ```json
//! {"time":"2012-11-30T06:45:29+00:00","host":"host","source":"app","ps":"web.3","msg":"at=info status=200","at":"info","status":200}
//! ```
//!
//! # Fragment (pulse-fragment → pulse-merge)
//!
//! The cumulative partial state of one stat, group key and window from one source; see
//! [`Fragment`]. A later `rev` for the same (`src`, `stat`, `key`, `start`) replaces an earlier
//! one.
//!
//! # Snapshot (pulse-merge → pulse-emit)
//!
//! The unified values of one stat, key and window; see [`Snapshot`].
//!
//! [`Event`] is the in-memory event: an arena of text plus a list of fields, reused from line to
//! line so the hot path does not allocate.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A byte range in an [`Event`]'s text arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

/// A field value as stored in an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, unescaped, in the arena.
    Str(Span),
    /// JSON text kept verbatim (nested objects and arrays of JSON input).
    Raw(Span),
}

/// A field value borrowed from an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Raw(&'a str),
}

impl<'a> ValRef<'a> {
    /// The value as a number, if it is one (strings are not converted here; units are the
    /// stat layer's business).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValRef::Int(i) => Some(i as f64),
            ValRef::Float(f) => Some(f),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            ValRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Write the value as text the way a user would read it (`200`, `true`, `web.1`); used for
    /// group keys, unique and top-k values. Null writes nothing.
    pub fn write_text(&self, out: &mut String) {
        match *self {
            ValRef::Null => {}
            ValRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            ValRef::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
            ValRef::Float(f) => write_f64(out, f),
            ValRef::Str(s) | ValRef::Raw(s) => out.push_str(s),
        }
    }
}

/// Format a float the shortest way that reads back exactly (`2.46`, `1e21`), integers
/// without a fraction (`3` not `3.0`); non-finite values as `null`.
pub fn write_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{}", f as i64);
    } else {
        out.push_str(ryu::Buffer::new().format_finite(f));
    }
}

/// `a == b`, without a `memcmp` call for the short strings field names are: up to 16 bytes
/// are compared as two (possibly overlapping) words.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..=3 => a == b,
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// Slots of an event's field index (a power of two).
const SLOTS: usize = 64;
/// Beyond this many fields the index is dropped and lookups scan the list.
const MAX_INDEXED: usize = SLOTS * 3 / 4;

/// One event, reusable: [`Event::clear`] keeps the allocations.
///
/// Fields are looked up through a small open-addressing hash index (see `slot_of`; linear
/// probing), since every stat of `pulse-fragment` reads fields of every event; an event
/// with more than 48 fields falls back to scanning.
#[derive(Clone, Debug)]
pub struct Event {
    text: String,
    fields: Vec<(Span, Val)>,
    /// Field position + 1 per slot; 0 is empty.
    index: [u16; SLOTS],
    indexed: bool,
}

impl Default for Event {
    fn default() -> Event {
        Event {
            text: String::new(),
            fields: Vec::new(),
            index: [0; SLOTS],
            indexed: true,
        }
    }
}

/// The index slot of a field name: a multiply-mix of its length and of its first and last
/// eight (or four, or one) bytes. Names are short; hashing them byte by byte cost more than
/// the rest of the lookup.
#[inline]
fn slot_of(key: &[u8]) -> usize {
    let n = key.len();
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("eight bytes"));
    let half = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("four bytes")) as u64;
    let h = if n >= 8 {
        word(&key[..8]) ^ word(&key[n - 8..]).rotate_left(31)
    } else if n >= 4 {
        half(&key[..4]) | half(&key[n - 4..]) << 32
    } else if n > 0 {
        key[0] as u64 | (key[n / 2] as u64) << 8 | (key[n - 1] as u64) << 16
    } else {
        0
    };
    let h = (h ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

impl Event {
    pub fn new() -> Event {
        Event::default()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        if !self.fields.is_empty() || !self.indexed {
            self.index = [0; SLOTS];
        }
        self.fields.clear();
        self.indexed = true;
    }

    /// Append a field and index it.
    #[inline]
    fn push_field(&mut self, key: Span, val: Val) {
        let slot = slot_of(self.bytes(key));
        self.push_field_at(key, slot, val);
    }

    /// [`Event::push_field`] of a key whose index slot is known, `slot_of` of its name.
    #[inline]
    fn push_field_at(&mut self, key: Span, slot: usize, val: Val) {
        let pos = self.fields.len();
        self.fields.push((key, val));
        if !self.indexed {
            return;
        }
        if pos >= MAX_INDEXED {
            self.indexed = false;
            return;
        }
        let mut i = slot;
        while self.index[i] != 0 {
            i = (i + 1) & (SLOTS - 1);
        }
        self.index[i] = pos as u16 + 1;
    }

    fn reindex(&mut self) {
        self.index = [0; SLOTS];
        self.indexed = true;
        let fields = std::mem::take(&mut self.fields);
        for (k, v) in fields.iter().copied() {
            self.push_field(k, v);
        }
        self.fields = fields;
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Append text to the arena and return its span.
    #[inline]
    pub fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    /// Build a string in the arena piece by piece (e.g. while unescaping); `f` appends to the
    /// given `String`, and the span of what it appended is returned.
    #[inline]
    pub fn build_text(&mut self, f: impl FnOnce(&mut String)) -> Span {
        let start = self.text.len() as u32;
        f(&mut self.text);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    #[inline]
    pub fn text(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    #[inline]
    fn find(&self, key: &str) -> Option<usize> {
        self.probe(key).ok()
    }

    /// The position of field `key`, or where it is not: the empty index slot that ends its
    /// probe (`None` when the event is not indexed).
    #[inline]
    fn probe(&self, key: &str) -> Result<usize, Option<usize>> {
        self.probe_bytes(key.as_bytes())
    }

    /// The bytes of `span` (cheaper than [`Event::text`], which checks both ends for
    /// character boundaries).
    #[inline]
    fn bytes(&self, span: Span) -> &[u8] {
        &self.text.as_bytes()[span.start as usize..span.end as usize]
    }

    /// [`Event::probe`] of a name given as bytes.
    #[inline(always)]
    fn probe_bytes(&self, key: &[u8]) -> Result<usize, Option<usize>> {
        self.probe_from(key, slot_of(key))
    }

    /// [`Event::probe_bytes`] from `key`'s index slot `i`, computed beforehand.
    #[inline(always)]
    fn probe_from(&self, key: &[u8], mut i: usize) -> Result<usize, Option<usize>> {
        if !self.indexed {
            return self
                .fields
                .iter()
                .position(|(k, _)| self.bytes(*k) == key)
                .ok_or(None);
        }
        loop {
            match self.index[i] {
                0 => return Err(Some(i)),
                n => {
                    let pos = n as usize - 1;
                    if same_bytes(self.bytes(self.fields[pos].0), key) {
                        return Ok(pos);
                    }
                }
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }

    /// Append a field whose name [`Event::probe`] did not find; `slot` is what it returned.
    #[inline]
    fn push_probed(&mut self, slot: Option<usize>, key: Span, val: Val) {
        match slot {
            Some(i) => {
                let pos = self.fields.len();
                self.fields.push((key, val));
                if pos >= MAX_INDEXED {
                    self.indexed = false;
                } else {
                    self.index[i] = pos as u16 + 1;
                }
            }
            None => self.push_field(key, val),
        }
    }

    /// Set `key` to `val`, replacing an earlier field of the same name in place (so an
    /// attribute overrides an envelope field and keeps its position).
    #[inline]
    pub fn set(&mut self, key: &str, val: Val) {
        match self.probe(key) {
            Ok(i) => self.fields[i].1 = val,
            Err(slot) => {
                let k = self.push_text(key);
                self.push_probed(slot, k, val);
            }
        }
    }

    /// Like [`Event::set`] with a key already in the arena.
    #[inline(always)]
    pub fn set_span(&mut self, key: Span, val: Val) {
        let found = self.probe_bytes(self.bytes(key));
        match found {
            Ok(i) => self.fields[i].1 = val,
            Err(slot) => self.push_probed(slot, key, val),
        }
    }

    /// Set `key` to the string `val`.
    #[inline]
    pub fn set_str(&mut self, key: &str, val: &str) {
        let v = self.push_text(val);
        self.set(key, Val::Str(v));
    }

    /// Append a field without checking for an earlier one of the same name (the caller knows
    /// the key is new, e.g. the first envelope field). The key is hashed as given, not as
    /// copied: a constant name folds to a constant slot, and the copy just written is not
    /// read back.
    #[inline]
    pub fn push_new(&mut self, key: &str, val: Val) {
        let k = self.push_text(key);
        self.push_named(k, key, val);
    }

    /// [`Event::push_new`] of a key already in the arena at `k`, `name` its text.
    #[inline]
    pub fn push_named(&mut self, k: Span, name: &str, val: Val) {
        debug_assert_eq!(self.text(k), name);
        self.push_field_at(k, slot_of(name.as_bytes()), val);
    }

    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Some(i) => {
                self.fields.remove(i);
                self.reindex();
                true
            }
            None => false,
        }
    }

    /// A value of this event (or read into slots by [`Event::read_json_routed`]) with its
    /// text.
    #[inline]
    pub fn resolve(&self, v: Val) -> ValRef<'_> {
        match v {
            Val::Null => ValRef::Null,
            Val::Bool(b) => ValRef::Bool(b),
            Val::Int(i) => ValRef::Int(i),
            Val::Float(f) => ValRef::Float(f),
            Val::Str(s) => ValRef::Str(self.text(s)),
            Val::Raw(s) => ValRef::Raw(self.text(s)),
        }
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: &str) -> Option<ValRef<'_>> {
        self.find(key).map(|i| self.resolve(self.fields[i].1))
    }

    /// The index slot of a field name, for [`Event::get_at_slot`].
    #[inline]
    pub fn slot_of_name(key: &str) -> usize {
        slot_of(key.as_bytes())
    }

    /// [`Event::get`] of `key` whose slot ([`Event::slot_of_name`]) was computed
    /// beforehand.
    #[inline]
    pub fn get_at_slot(&self, key: &str, slot: usize) -> Option<ValRef<'_>> {
        self.probe_from(key.as_bytes(), slot)
            .ok()
            .map(|i| self.resolve(self.fields[i].1))
    }

    /// Whether lookups go through the index (not a scan of every field).
    #[inline]
    pub fn is_indexed(&self) -> bool {
        self.indexed
    }

    /// The name of the field at position `i`, as bytes (cheaper than [`Event::key_at`]).
    #[inline]
    pub fn key_bytes_at(&self, i: usize) -> &[u8] {
        self.bytes(self.fields[i].0)
    }

    /// The string value of `key`, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// The name of the field at position `i` (in [`Event::iter`] order); `i < len()`.
    #[inline]
    pub fn key_at(&self, i: usize) -> &str {
        self.text(self.fields[i].0)
    }

    /// The value of the field at position `i` (in [`Event::iter`] order); `i < len()`.
    #[inline]
    pub fn value_at(&self, i: usize) -> ValRef<'_> {
        self.resolve(self.fields[i].1)
    }

    /// Fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, ValRef<'_>)> {
        self.fields
            .iter()
            .map(|&(k, v)| (self.text(k), self.resolve(v)))
    }

    /// Append this event as one JSON object (no newline) to `out`.
    ///
    /// The bytes to escape are marked in the whole arena at once (sixteen at a time), so
    /// each key and string is tested with a shift and a mask; `out` is lengthened to a bound
    /// of the object's size and cut back after the writes, which are then plain stores
    /// rather than capacity checks and `memcpy` calls. The bound holds [`ESCAPE_ROOM`] bytes
    /// for escapes; an event that needs more, or whose arena is too long to mark on the
    /// stack, goes to the general writer.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if self.text.len() / 64 + 2 > MARK_WORDS {
            return self.write_json_escaping(out);
        }
        let start = out.len();
        let mut size = 2 + ESCAPE_ROOM + BLOCK_OVERRUN;
        for &(k, v) in &self.fields {
            size += span_len(k)
                + 4
                + match v {
                    Val::Str(s) => span_len(s) + 2,
                    Val::Raw(s) => span_len(s),
                    _ => 24,
                };
        }
        out.resize(start + size, 0);
        match self.write_json_into(&mut out[start..]) {
            Some(n) => out.truncate(start + n),
            None => {
                out.truncate(start);
                self.write_json_escaping(out);
            }
        }
    }

    /// [`Event::write_json`] into `dst`, sized as it says: the length written, or `None`
    /// when the escapes need more than [`ESCAPE_ROOM`] bytes.
    #[inline(always)]
    fn write_json_into(&self, dst: &mut [u8]) -> Option<usize> {
        let text = self.text.as_bytes();
        let mut marks = [0u64; MARK_WORDS];
        crate::find::class_bits::<crate::find::JsonSpecial>(
            text,
            &mut marks[..text.len() / 64 + 2],
        );
        let marks = &marks;
        let mut room = ESCAPE_ROOM;
        let mut o = 0;
        // `{` before the first field, `,` before the others.
        let mut sep = b'{';
        for &(k, v) in &self.fields {
            dst[o] = sep;
            sep = b',';
            o = json_string(dst, o + 1, text, marks, k, &mut room)?;
            dst[o] = b':';
            o += 1;
            let put = |dst: &mut [u8], o: usize, b: &[u8]| {
                crate::find::copy_short(b, &mut dst[o..]);
                o + b.len()
            };
            o = match v {
                Val::Null => put(dst, o, b"null"),
                Val::Bool(true) => put(dst, o, b"true"),
                Val::Bool(false) => put(dst, o, b"false"),
                Val::Int(n) => put(dst, o, itoa::Buffer::new().format(n).as_bytes()),
                Val::Float(f) if f.is_finite() => {
                    put(dst, o, ryu::Buffer::new().format_finite(f).as_bytes())
                }
                Val::Float(_) => put(dst, o, b"null"),
                Val::Str(s) => json_string(dst, o, text, marks, s, &mut room)?,
                Val::Raw(s) => {
                    let raw = &text[s.start as usize..s.end as usize];
                    dst[o..o + raw.len()].copy_from_slice(raw);
                    o + raw.len()
                }
            };
        }
        if sep == b'{' {
            dst[o] = b'{';
            o += 1;
        }
        dst[o] = b'}';
        Some(o + 1)
    }

    /// [`Event::write_json`] by [`write_json_bytes`], for events with many escapes.
    #[inline(never)]
    fn write_json_escaping(&self, out: &mut Vec<u8>) {
        let bytes = |s: Span| self.bytes(s);
        out.push(b'{');
        for (i, &(k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_bytes(out, bytes(k));
            out.push(b':');
            match v {
                Val::Null => out.extend_from_slice(b"null"),
                Val::Bool(true) => out.extend_from_slice(b"true"),
                Val::Bool(false) => out.extend_from_slice(b"false"),
                Val::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
                Val::Float(f) => write_json_f64(out, f),
                Val::Str(s) => write_json_bytes(out, bytes(s)),
                Val::Raw(s) => out.extend_from_slice(bytes(s)),
            }
        }
        out.push(b'}');
    }

    /// Read one JSON object into this event (after clearing it). Scalars become fields;
    /// nested objects and arrays are kept as raw JSON text. Fails on anything that is not a
    /// single well-formed object.
    pub fn read_json(&mut self, line: &[u8]) -> Result<(), JsonError> {
        self.clear();
        json::read_object(self, line, None::<&fn(&str) -> Route>, &mut [])
    }

    /// [`Event::read_json`] sending each field where `route` says: into this event, into
    /// `slots` (a later field of the same name replaces an earlier one, as in an event), both,
    /// or nowhere. A reader that wants a few known fields gets them by position in `slots`
    /// without indexing them. A field's value read into `slots` refers to this event's text:
    /// read it with [`Event::resolve`]. Slots are not cleared first.
    #[inline(always)]
    pub fn read_json_routed<R: Fn(&str) -> Route + ?Sized>(
        &mut self,
        line: &[u8],
        route: &R,
        slots: &mut [Option<Val>],
    ) -> Result<(), JsonError> {
        self.clear();
        json::read_object(self, line, Some(route), slots)
    }

    /// The length of the arena's text.
    fn text_len(&self) -> u32 {
        self.text.len() as u32
    }

    /// Drop the arena's text from `len` on (text of a field just read and not kept).
    fn truncate_text(&mut self, len: u32) {
        self.text.truncate(len as usize);
    }
}

/// Where [`Event::read_json_routed`] puts a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Nowhere: the field is checked and dropped.
    Skip,
    /// Into the event.
    Event,
    /// Into this slot.
    Slot(u16),
    /// Into this slot and into the event.
    Both(u16),
}

/// Why a line is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset + 1, self.what)
    }
}

/// Write `f` as a JSON number (non-finite as `null`).
pub fn write_json_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// The first byte at or after `from` that JSON text must escape (see
/// [`crate::find::JsonSpecial`]).
#[inline]
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    crate::find::first::<crate::find::JsonSpecial>(bytes, from)
}

/// Write `s` as a JSON string with escapes: the runs between bytes that need escaping are
/// copied whole.
#[inline(always)]
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    write_json_bytes(out, s.as_bytes());
}

/// [`write_json_str`] of UTF-8 text given as bytes (the bytes are copied as they are).
#[inline(always)]
fn write_json_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let Some(first) = next_escape(bytes, 0) else {
        // The common case, a string with nothing to escape, written in one go.
        out.reserve(bytes.len() + 2);
        let len = out.len();
        // SAFETY: the reserve above makes room for the quotes and the bytes; every byte up
        // to the new length is written before it is set.
        unsafe {
            let at = out.as_mut_ptr().add(len);
            at.write(b'"');
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(1), bytes.len());
            at.add(1 + bytes.len()).write(b'"');
            out.set_len(len + bytes.len() + 2);
        }
        return;
    };
    write_escaped(out, bytes, first);
}

/// Bytes [`Event::write_json`] keeps for escapes (beyond the one byte each escaped byte
/// takes unescaped): a message with a few quoted values fits.
const ESCAPE_ROOM: usize = 64;
/// Bytes [`copy_span`] may write past the end of its string.
const BLOCK_OVERRUN: usize = 16;
/// Words of the escape marks [`Event::write_json`] keeps on the stack: arenas up to about
/// 2 KiB.
const MARK_WORDS: usize = 32;

#[inline(always)]
fn span_len(s: Span) -> usize {
    (s.end - s.start) as usize
}

/// Copy `text[s..e]` into `dst` at `o`. Up to sixteen bytes are copied as one block of the
/// text from `s` when the text holds it (bytes past `e` land past the copy, for the caller
/// to overwrite or cut off: `dst` needs [`BLOCK_OVERRUN`] bytes of room), up to 32 as two
/// overlapping blocks; only longer runs go to `memcpy`.
#[inline(always)]
fn copy_span(dst: &mut [u8], o: usize, text: &[u8], s: usize, e: usize) {
    let n = e - s;
    if n <= 16 {
        if s + 16 <= text.len() {
            dst[o..o + 16].copy_from_slice(&text[s..s + 16]);
        } else {
            crate::find::copy_short(&text[s..e], &mut dst[o..]);
        }
    } else if n <= 32 {
        dst[o..o + 16].copy_from_slice(&text[s..s + 16]);
        dst[o + n - 16..o + n].copy_from_slice(&text[e - 16..e]);
    } else {
        dst[o..o + n].copy_from_slice(&text[s..e]);
    }
}

/// Write the span `s` of the UTF-8 text `text`, whose bytes to escape are set in `marks`, as
/// a JSON string into `dst` at `o`: the end of what was written, or `None` when its escapes
/// need more than the `room` left. `dst` must hold the string unescaped, `room` and
/// [`BLOCK_OVERRUN`] bytes from `o`.
#[inline(always)]
fn json_string(
    dst: &mut [u8],
    o: usize,
    text: &[u8],
    marks: &[u64; MARK_WORDS],
    s: Span,
    room: &mut usize,
) -> Option<usize> {
    let (mut i, end) = (s.start as usize, s.end as usize);
    dst[o] = b'"';
    let mut o = o + 1;
    loop {
        let e = crate::find::next_marked(marks, i, end).unwrap_or(end);
        copy_span(dst, o, text, i, e);
        o += e - i;
        if e == end {
            break;
        }
        o = json_escape(dst, o, text[e], room)?;
        i = e + 1;
    }
    dst[o] = b'"';
    Some(o + 1)
}

/// Write the escape of `b` at `o`, taking what it needs beyond one byte from `room`; out of
/// line, so that [`json_string`] inlined stays small.
#[inline(never)]
fn json_escape(dst: &mut [u8], o: usize, b: u8, room: &mut usize) -> Option<usize> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = |c: u8| ([b'\\', c, 0, 0, 0, 0], 2);
    let (esc, len) = match b {
        b'"' => short(b'"'),
        b'\\' => short(b'\\'),
        b'\n' => short(b'n'),
        b'\r' => short(b'r'),
        b'\t' => short(b't'),
        0x08 => short(b'b'),
        0x0c => short(b'f'),
        _ => {
            let (hi, lo) = (HEX[(b >> 4) as usize], HEX[(b & 15) as usize]);
            ([b'\\', b'u', b'0', b'0', hi, lo], 6)
        }
    };
    *room = room.checked_sub(len - 1)?;
    // All six bytes, a fixed-size copy; those past `len` are overwritten next.
    dst[o..o + 6].copy_from_slice(&esc);
    Some(o + len)
}

/// [`write_json_str`] of a string with a byte to escape at `first`: kept out of line, so
/// that the common case inlined into its callers stays small.
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], first: usize) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
        start = i + 1;
        next = next_escape(bytes, start);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

mod json;

/// The partial state of one stat for one group key, one window, from one source.
///
/// ```json
/// {"stat":"router.status","key":"200","start":1431856800,"secs":60,"src":"web-1.4121.9f3a","rev":2,"wm":1431856920,"agg":"count","state":{"count":12}}
/// ```
///
/// - `key`: the group value, or `null` when the stat has no group-by;
/// - `start`, `secs`: the window, `[start, start + secs)` in Unix seconds, aligned to the
///   epoch;
/// - `src`, `rev`: the producing process and its revision of this window's state: a later
///   `rev` replaces an earlier one, an equal or older one is ignored;
/// - `wm`: the source's watermark when it wrote this line: every window of this source ending
///   at or before `wm` has been sent (it may still be revised by late data);
/// - `agg`: the aggregate's canonical spec (`count`, `summary`, `quantiles`, `top 10`,
///   `last sum 300`, ...); two fragments of one stat with different `agg` do not merge;
/// - `state`: the aggregate's mergeable state, whose shape `agg` defines (see [`crate::stat`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub stat: String,
    pub key: Option<String>,
    pub start: i64,
    pub secs: u32,
    pub src: String,
    pub rev: u64,
    #[serde(default)]
    pub wm: i64,
    pub agg: String,
    pub state: serde_json::Value,
}

/// A [`Fragment`] borrowed for writing: the same JSON, field for field, without copying its
/// strings into a `Fragment` first (`pulse-fragment` writes one per window it flushes).
pub struct FragmentRef<'a> {
    pub stat: &'a str,
    pub key: Option<&'a str>,
    pub start: i64,
    pub secs: u32,
    pub src: &'a str,
    pub rev: u64,
    pub wm: i64,
    pub agg: &'a dyn std::fmt::Display,
    pub state: serde_json::Value,
}

impl FragmentRef<'_> {
    /// Append the fragment as one JSON object (no newline): the bytes serde_json writes for
    /// the [`Fragment`], its envelope written directly (through serde it cost about as much
    /// as the rest of writing a window).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Strings by serde_json, whose escapes differ from the events' (DEL is left as is).
        // Serialising to a Vec cannot fail.
        let text = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"{\"stat\":");
        text(out, self.stat);
        out.extend_from_slice(b",\"key\":");
        match self.key {
            Some(k) => text(out, k),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"start\":");
        out.extend_from_slice(n.format(self.start).as_bytes());
        out.extend_from_slice(b",\"secs\":");
        out.extend_from_slice(n.format(self.secs).as_bytes());
        out.extend_from_slice(b",\"src\":");
        text(out, self.src);
        out.extend_from_slice(b",\"rev\":");
        out.extend_from_slice(n.format(self.rev).as_bytes());
        out.extend_from_slice(b",\"wm\":");
        out.extend_from_slice(n.format(self.wm).as_bytes());
        out.extend_from_slice(b",\"agg\":");
        text(out, &self.agg.to_string());
        out.extend_from_slice(b",\"state\":");
        let _ = serde_json::to_writer(&mut *out, &self.state);
        out.push(b'}');
    }
}

/// The unified view of one stat, key and window.
///
/// ```json
/// {"stat":"router.status","key":"200","start":1431856800,"secs":60,"final":true,"values":{"count":12,"rate":0.2}}
/// ```
///
/// `final` is false while the window may still change; a later snapshot for the same stat, key
/// and window replaces an earlier one. `values` is a flat object of named numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub stat: String,
    pub key: Option<String>,
    pub start: i64,
    pub secs: u32,
    #[serde(rename = "final")]
    pub is_final: bool,
    #[serde(serialize_with = "whole_numbers_plain")]
    pub values: std::collections::BTreeMap<String, f64>,
}

/// Snapshot values as written: a whole number without a fraction (`12`, not `12.0`, so
/// that `grep '"count":12'` finds it), any other the shortest way that reads back exactly.
fn whole_numbers_plain<S: serde::Serializer>(
    values: &std::collections::BTreeMap<String, f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(values.len()))?;
    for (k, &v) in values {
        // Every whole f64 in i64's range converts exactly (past 2^53 they are all whole).
        if v.fract() == 0.0 && v.abs() < 9_223_372_036_854_775_807.0 {
            map.serialize_entry(k, &(v as i64))?;
        } else {
            map.serialize_entry(k, &v)?;
        }
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_fragment_is_written_as_a_fragment() {
        let frag = Fragment {
            stat: "ssh.\"failed\"".into(),
            key: Some("1.2.3.4\n\u{e9}\u{1}\t\\\u{7f}\r\u{8}\u{c}/".into()),
            start: 1767225600,
            secs: 60,
            src: "web-1".into(),
            rev: 7,
            wm: -5,
            agg: "top 10".into(),
            state: serde_json::json!({"count": 3}),
        };
        let agg: crate::stat::AggSpec = "top 10".parse().unwrap();
        assert_eq!(agg.to_string(), frag.agg);
        let borrowed = FragmentRef {
            stat: &frag.stat,
            key: frag.key.as_deref(),
            start: frag.start,
            secs: frag.secs,
            src: &frag.src,
            rev: frag.rev,
            wm: frag.wm,
            agg: &agg,
            state: frag.state.clone(),
        };
        let written = |f: &FragmentRef<'_>| {
            let mut out = Vec::new();
            f.write_json(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(&borrowed), serde_json::to_string(&frag).unwrap());
        let none = FragmentRef {
            key: None,
            ..borrowed
        };
        let whole = Fragment {
            key: None,
            ..frag.clone()
        };
        assert_eq!(written(&none), serde_json::to_string(&whole).unwrap());
    }

    #[test]
    fn snapshot_whole_numbers_have_no_fraction() {
        let snap = Snapshot {
            stat: "s".into(),
            key: None,
            start: 0,
            secs: 60,
            is_final: true,
            values: [
                ("count", 30062.0),
                ("mean", 2.5),
                ("min", -0.0),
                ("big", 1e300),
                ("sum", 9007199254740994.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        };
        let text = serde_json::to_string(&snap).unwrap();
        assert!(
            text.contains(
                r#""values":{"big":1e+300,"count":30062,"mean":2.5,"min":0,"sum":9007199254740994}"#
            ),
            "{text}"
        );
        let back: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back.values, snap.values);
    }

    #[test]
    fn set_overrides_in_place_and_writes_json() {
        let mut e = Event::new();
        e.set_str("host", "a\"b");
        e.set("status", Val::Int(200));
        e.set("host", Val::Bool(true));
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"host":true,"status":200}"#
        );
        assert_eq!(e.get("status"), Some(ValRef::Int(200)));
    }

    #[test]
    fn json_round_trip() {
        let line = br#"{"a":"x\ny\u00e9","b":-1.5e3,"c":[1,{"d":2}],"e":null,"f":true,"g":12}"#;
        let mut e = Event::new();
        e.read_json(line).unwrap();
        assert_eq!(e.get_str("a"), Some("x\nyé"));
        assert_eq!(e.get("b"), Some(ValRef::Float(-1500.0)));
        assert_eq!(e.get("c"), Some(ValRef::Raw(r#"[1,{"d":2}]"#)));
        assert_eq!(e.get("g"), Some(ValRef::Int(12)));
        let mut out = Vec::new();
        e.write_json(&mut out);
        let a: serde_json::Value = serde_json::from_slice(line).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn json_strings_escape_exactly_what_they_must() {
        let cases = [
            "plain text that is long enough for words",
            "q\"uote",
            "back\\slash and more text after it",
            "ctl\u{1}\u{1f}\u{7f} tab\t nl\n cr\r",
            "utf8 é ü 日本 \u{10348}",
            "",
            "12345678\"",
            "path=\"/cart\" fwd=\"1.2.3.4\" a\\b long enough to take several words",
            "quote \" and control \u{2} together",
            "\u{7f}",
            "é\u{7f}x",
        ];
        for c in cases {
            let mut out = Vec::new();
            write_json_str(&mut out, c);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, c);
            let want = serde_json::to_string(c).unwrap();
            if !c.contains('\u{7f}') {
                assert_eq!(String::from_utf8(out).unwrap(), want);
            }
        }
    }

    #[test]
    fn json_string_escapes_are_found_at_every_position() {
        // The scanner works sixteen bytes at a time: put each byte that needs escaping (and
        // a high byte that does not) at every position of strings around that width.
        for len in 1..40 {
            for at in 0..len {
                for special in ['"', '\\', '\u{1}', '\u{1f}', '\u{7f}', '\n', 'é'] {
                    let mut c: String = "a".repeat(len - 1);
                    c.insert(at, special);
                    let mut out = Vec::new();
                    write_json_str(&mut out, &c);
                    let back: String = serde_json::from_slice(&out).unwrap();
                    assert_eq!(back, c);
                    let raw = out.iter().filter(|&&b| b < 0x20 || b == 0x7f).count();
                    assert_eq!(raw, 0, "{c:?} written with a raw control byte");
                }
            }
        }
    }

    #[test]
    fn json_strings_are_read_whatever_the_position_of_escapes_and_controls() {
        for len in 1..40 {
            for at in 0..len {
                for special in ['"', '\\', '\u{1}', '\u{7f}', '\n', 'é', '\u{10348}'] {
                    let mut c: String = "a".repeat(len - 1);
                    c.insert(at, special);
                    let mut e = Event::new();
                    let line = format!("{{\"k\":{}}}", serde_json::to_string(&c).unwrap());
                    e.read_json(line.as_bytes()).unwrap();
                    assert_eq!(e.get_str("k"), Some(c.as_str()));
                    if special < ' ' {
                        // A raw control character inside a string is not JSON.
                        let raw = format!("{{\"k\":\"{c}\"}}");
                        assert!(e.read_json(raw.as_bytes()).is_err(), "{raw:?}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn json_strings_read_back_as_serde_json_writes_them(c in "(?s).{0,80}") {
            let mut e = Event::new();
            let line = format!("{{\"k\":{}}}", serde_json::to_string(&c).unwrap());
            e.read_json(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(e.get_str("k"), Some(c.as_str()));
            // And serde's escapes of everything (\u00XX for controls) too.
            let escaped: String = c.chars().map(|ch| if (ch as u32) < 0x80 { format!("\\u{:04x}", ch as u32) } else { ch.to_string() }).collect();
            e.read_json(format!("{{\"k\":\"{escaped}\"}}").as_bytes()).unwrap();
            proptest::prop_assert_eq!(e.get_str("k"), Some(c.as_str()));
        }

        #[test]
        fn json_strings_match_serde_json(c in "(?s).{0,80}") {
            let mut out = Vec::new();
            write_json_str(&mut out, &c);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(&back, &c);
            if !c.contains('\u{7f}') {
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&c).unwrap());
            }
        }
    }

    #[test]
    fn event_writer_agrees_with_the_general_one() {
        let quotes = "\"".repeat(70);
        let long = "ab\"c".repeat(600);
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "plain text of some length, past sixteen and thirty-two bytes",
            "q\"uote",
            "\u{7f}\u{1}\n\t\\\r\u{8}\u{c}\u{1f}",
            "é ü 漢字 \u{7f}",
            &quotes,
            &long,
        ];
        let mut e = Event::new();
        for a in texts {
            for b in texts {
                e.clear();
                e.set_str("k", a);
                e.set(b, Val::Int(-42));
                e.set("f", Val::Float(2.5));
                e.set("n", Val::Null);
                e.set("t", Val::Bool(true));
                let raw = e.push_text("[1,{\"x\":2}]");
                e.set("r", Val::Raw(raw));
                e.set_str(a, b);
                let (mut fast, mut general) = (b"prefix".to_vec(), b"prefix".to_vec());
                e.write_json(&mut fast);
                e.write_json_escaping(&mut general);
                assert_eq!(fast, general, "{a:?} {b:?}");
                let v: serde_json::Value = serde_json::from_slice(&fast[6..]).unwrap();
                assert_eq!(v[a], b, "{a:?} {b:?}");
            }
        }
        e.clear();
        let mut out = Vec::new();
        e.write_json(&mut out);
        assert_eq!(out, b"{}");
    }

    #[test]
    fn many_fields_fall_back_to_scanning() {
        let mut e = Event::new();
        for i in 0..200 {
            e.set(&format!("k{i}"), Val::Int(i));
        }
        for i in (0..200).rev() {
            assert_eq!(e.get(&format!("k{i}")), Some(ValRef::Int(i)));
        }
        e.set("k7", Val::Int(-7));
        assert_eq!(e.get("k7"), Some(ValRef::Int(-7)));
        assert_eq!(e.len(), 200);
        e.clear();
        e.set("a", Val::Int(1));
        e.set("b", Val::Int(2));
        assert!(e.remove("a"));
        assert_eq!(e.get("b"), Some(ValRef::Int(2)));
        assert_eq!(e.get("a"), None);
    }

    #[test]
    fn nested_values_are_kept_verbatim() {
        let line =
            br#"{"a":[],"b":{},"c":[1,[true,null],{"k":"v","l":[-1.5e3]}],"d":{ "x" : [ ] }}"#;
        let mut e = Event::new();
        e.read_json(line).unwrap();
        assert_eq!(e.get("a"), Some(ValRef::Raw("[]")));
        assert_eq!(e.get("b"), Some(ValRef::Raw("{}")));
        assert_eq!(
            e.get("c"),
            Some(ValRef::Raw(r#"[1,[true,null],{"k":"v","l":[-1.5e3]}]"#))
        );
        assert_eq!(e.get("d"), Some(ValRef::Raw(r#"{ "x" : [ ] }"#)));
        e.read_json(br#"{"z":0,"m":-0.5,"n":[0,-0,0e1]}"#).unwrap();
        assert_eq!(e.get("z"), Some(ValRef::Int(0)));
        assert_eq!(e.get("m"), Some(ValRef::Float(-0.5)));
        assert_eq!(e.get("n"), Some(ValRef::Raw("[0,-0,0e1]")));
    }

    #[test]
    fn lone_surrogates_become_replacement_chars_even_when_nested() {
        // Found by fuzzing: a nested lone surrogate was kept verbatim, which serde_json
        // rejects. Top-level strings already decoded it as U+FFFD; nested ones now say so.
        let line = br#"{"a":["\ud83d\ud0e0",{"k":"\udc00x"}],"b":"\ud800","c":["\ud83d\ude00"]}"#;
        let mut e = Event::new();
        e.read_json(line).unwrap();
        assert_eq!(
            e.get("a"),
            Some(ValRef::Raw(r#"["\ufffd\ud0e0",{"k":"\ufffdx"}]"#))
        );
        assert_eq!(e.get_str("b"), Some("\u{fffd}"));
        assert_eq!(e.get("c"), Some(ValRef::Raw(r#"["\ud83d\ude00"]"#)));
        let mut out = Vec::new();
        e.write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a"][1]["k"], "\u{fffd}x");
    }

    #[test]
    fn json_fields_not_wanted_are_checked_but_not_kept() {
        let mut e = Event::new();
        let keep = |k: &str| {
            if k.starts_with('k') {
                Route::Event
            } else {
                Route::Skip
            }
        };
        let line = br#"{"a":"x\"y","k1":"v","b":[1,{"c":2}],"k2":7,"d":null,"k1":"w"}"#;
        e.read_json_routed(line, &keep, &mut []).unwrap();
        let fields: Vec<_> = e.iter().collect();
        assert_eq!(
            fields,
            vec![("k1", ValRef::Str("w")), ("k2", ValRef::Int(7))]
        );
        assert!(e
            .read_json_routed(br#"{"a":[1,],"k1":1}"#, &keep, &mut [])
            .is_err());
        assert!(e
            .read_json_routed(b"{\"a\":\"\x01\"}", &keep, &mut [])
            .is_err());
        // Every line the full reader rejects, the keeping one rejects too.
        for bad in [
            &br#"{"a":"x\q"}"#[..],
            br#"{"a":"\u12"}"#,
            br#"{"a":"open}"#,
            br#"{"a":tru}"#,
            br#"{"a":05}"#,
            br#"{"a":1 "k":2}"#,
        ] {
            assert!(e.read_json(bad).is_err());
            assert!(e.read_json_routed(bad, &keep, &mut []).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_fields_routed_to_slots_replace_like_event_fields() {
        let mut e = Event::new();
        let route = |k: &str| match k {
            "k1" => Route::Slot(0),
            "k2" => Route::Both(1),
            "esc" => Route::Slot(2),
            "l" => Route::Event,
            _ => Route::Skip,
        };
        let line =
            br#"{"a":"x\"y","k1":"v","b":[1,{"c":2}],"k2":7,"l":true,"e\u0073c":"t\tu","k1":"w"}"#;
        let mut slots = [None; 4];
        e.read_json_routed(line, &route, &mut slots).unwrap();
        let got: Vec<_> = slots.iter().map(|v| v.map(|v| e.resolve(v))).collect();
        assert_eq!(
            got,
            vec![
                Some(ValRef::Str("w")),
                Some(ValRef::Int(7)),
                Some(ValRef::Str("t\tu")),
                None
            ]
        );
        let fields: Vec<_> = e.iter().collect();
        assert_eq!(
            fields,
            vec![("k2", ValRef::Int(7)), ("l", ValRef::Bool(true))]
        );
        // The full reader sees the same values.
        let mut full = Event::new();
        full.read_json(line).unwrap();
        assert_eq!(full.get("k1"), got[0]);
        assert_eq!(full.get("k2"), got[1]);
        assert_eq!(full.get("esc"), got[2]);
    }

    #[test]
    fn json_integers_read_as_serde_json_does() {
        let mut e = Event::new();
        for text in [
            "0",
            "7",
            "-45",
            "999999999999999999",
            "-999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "123456789012345678901",
        ] {
            e.read_json(format!("{{\"n\":{text}}}").as_bytes()).unwrap();
            let want: serde_json::Value = serde_json::from_str(text).unwrap();
            let got = match e.get("n") {
                Some(ValRef::Int(n)) => serde_json::Value::from(n),
                Some(ValRef::Float(f)) => serde_json::Value::from(f),
                other => panic!("{text}: {other:?}"),
            };
            assert_eq!(got.as_f64(), want.as_f64(), "{text}");
            assert_eq!(got.is_i64(), want.is_i64(), "{text}");
        }
        // Unlike serde_json, which reads `-0` as a float, it is the integer 0 (as before).
        e.read_json(br#"{"n":-0}"#).unwrap();
        assert_eq!(e.get("n"), Some(ValRef::Int(0)));
    }

    #[test]
    fn bad_json_is_an_error() {
        let mut e = Event::new();
        for bad in [
            &b"{"[..],
            b"[1]",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"",
            // Found by fuzzing: malformed nested values were kept as raw text, so
            // write_json gave invalid JSON.
            b"{\"z\":{:{}}}",
            b"{\"a\":[1 2]}",
            b"{\"a\":[1,]}",
            b"{\"a\":[,1]}",
            b"{\"a\":{\"k\" 1}}",
            b"{\"a\":{\"k\":1,}}",
            b"{\"a\":{1:2}}",
            b"{\"a\":[}",
            b"{\"a\":{\"k\":]}",
            b"{\"a\":[[]]]}",
            // Leading zeros are not JSON (and were written back verbatim when nested).
            b"{\"a\":[05]}",
            b"{\"a\":05}",
            b"{\"a\":-00}",
            // Out of f64 range: it used to read as infinity and be written back as null.
            b"{\"a\":1e999}",
            b"{\"a\":[-1e400]}",
            // from_str_radix takes a sign, so `\u+041` read as `A`.
            b"{\"a\":\"\\u+041\"}",
        ] {
            assert!(
                e.read_json(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
