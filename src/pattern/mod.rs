//! The patterns file (`--patterns FILE`): fields from message text, parsed into [`Patterns`].
//!
//! One rule per line, `#` starts a comment, blank lines are ignored and a line ending in `\`
//! goes on with the next (the lexer and the filter syntax are the stats file's, see
//! [`crate::spec`]):
//!
//! ```text
//! # sshd: failed logins, with the user and the source address
//! match /^Failed password for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)/ where source=sshd
//! # nginx error log: the upstream of an upstream error
//! match /upstream: "(?P<upstream>[^"]*)"/ where msg~upstream
//! # key=value pairs anywhere in the message, not only when it starts with one
//! kv where source=sshd
//! # a line format of one's own: captures become fields, `time` read by its layout
//! format myapp /^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<msg>.*)/ time "%Y-%m-%d %H:%M:%S"
//! ```
//!
//! The grammar, in full (and with examples) in `man/pulse.patterns.5`:
//!
//! ```text
//! line    := match | kv | format
//! match   := "match" [FIELD] /REGEX/ [time LAYOUT] [where FILTER]
//! kv      := "kv" [FIELD] [where FILTER]
//! format  := "format" NAME /REGEX/ [time LAYOUT]
//! FIELD   := the field to read (a word or "quoted"; default msg)
//! REGEX   := a regular expression of the `regex` crate (linear time); `\/` is a `/`
//! LAYOUT  := strftime-like tokens (see [`layout`]), a word or "quoted"
//! FILTER  := the stats file's: COND ([&&] COND | "||" COND)*
//! ```
//!
//! What each does to an event (after its line was parsed, in file order, each rule seeing
//! the fields set by those before it):
//!
//! - `match`: when the event passes the filter (tested first, so a rule for sshd does not run
//!   its regex on kernel lines) and FIELD is a string the regex matches, each named capture
//!   `(?P<name>...)` that took part in the match sets the field `name`. Values are coerced as
//!   message attributes are (integers and decimals become numbers, `true`/`false` booleans,
//!   an empty capture `null`), except captures named like the envelope's string fields
//!   (`time`, `host`, `source`, `ps`, `level`, `msg`), which stay strings. A capture that
//!   did not take part sets nothing. With `time LAYOUT`, the `time` capture is read by the
//!   layout into RFC 3339 (when it does not fit, `time` is left as it was).
//! - `kv`: every `key=value` token anywhere in FIELD sets `key`, coerced as attributes are;
//!   `key="quoted value"` is a string. A key is ASCII letters, digits, `_`, `.`, `-` and
//!   `#`, starting with a letter, digit or `_`; the value runs to the next blank. So
//!   `authentication failure; logname= uid=0 rhost=218.188.2.4` gives `logname: null`,
//!   `uid: 0`, `rhost: "218.188.2.4"`.
//! - `format`: a whole line format of one's own, tried (in file order) before the built-in
//!   detection when the format is `auto`: the regex, anchored at the start of the line,
//!   must match, and its `time` capture (required when there is one: `time LAYOUT`) must fit
//!   the layout; the event is then the captures (as `match` sets them) and, when the `msg`
//!   capture looks like logfmt, its attributes as a built-in format would read them. A line
//!   no custom format takes goes on to the built-in detection. The rules then apply to the
//!   event as to any other.
//!
//! Errors in the file name it and the line (`rules.patterns:3: ...`); the tools exit 2.

pub mod layout;
mod seq;

use std::path::PathBuf;
use std::sync::Arc;

use regex::{CaptureLocations, Regex};

use crate::error::Error;
use crate::parse::logfmt;
use crate::parse::scan::{push_unescaped, quote_end};
use crate::record::{Event, Val, ValRef};
use crate::spec::lex::{logical_lines, Cursor};
use crate::spec::Filter;
use layout::Layout;
use seq::Seq;

/// Fields that are strings in every event's envelope: captures of these names are not
/// coerced.
const ENVELOPE: [&str; 6] = ["time", "host", "source", "ps", "level", "msg"];

/// The named captures of one regex and what becomes of them.
#[derive(Clone, Debug)]
struct Captures {
    /// The regex searched: the whole one, or with `lead` what follows it.
    regex: Regex,
    /// The literal a regex `^LITERAL REST` starts with, when REST looks at nothing before
    /// itself: the text must start with it, and `regex` (`^REST`) is searched in what
    /// follows, giving the same captures. The search for captures (a backtracking one when
    /// the regex is not one-pass) costs dozens of instructions a byte; a literal prefix
    /// costs a comparison.
    lead: Option<Box<str>>,
    /// The same search as `regex`'s, done faster, when `regex` is of the shape
    /// [`seq`] takes.
    seq: Option<Seq>,
    /// (group index, field name, coerce the value).
    names: Vec<(usize, Box<str>, bool)>,
    /// The group index of `time` and its layout, when `time LAYOUT` was given.
    time: Option<(usize, Layout)>,
}

#[derive(Clone, Debug)]
enum Kind {
    Match(Captures),
    Kv,
}

/// One `match` or `kv` rule.
#[derive(Clone, Debug)]
struct Rule {
    filter: Filter,
    field: Box<str>,
    kind: Kind,
}

/// One `format` line.
#[derive(Clone, Debug)]
struct LineFormat {
    name: String,
    caps: Captures,
}

/// A patterns file, parsed: rules applied to parsed events, and custom line formats.
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    rules: Vec<Rule>,
    formats: Vec<LineFormat>,
}

/// An error in a patterns file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub origin: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.message)
    }
}

impl std::error::Error for PatternError {}

impl Patterns {
    /// Parse a patterns file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Patterns, PatternError> {
        let mut p = Patterns::default();
        for logical in logical_lines(text) {
            let line = logical.line;
            parse_line(&mut p, &logical.text).map_err(|message| PatternError {
                origin: origin.to_string(),
                line,
                message,
            })?;
        }
        Ok(p)
    }

    /// Read and parse every `--patterns` file, in order, into one set; `None` when none is
    /// given. Errors are usage errors (exit status 2).
    pub fn load(paths: &[PathBuf]) -> Result<Option<Arc<Patterns>>, Error> {
        if paths.is_empty() {
            return Ok(None);
        }
        let mut all = Patterns::default();
        for p in paths {
            let origin = p.display().to_string();
            let text =
                std::fs::read_to_string(p).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
            let one = Patterns::parse(&text, &origin).map_err(|e| Error::Usage(e.to_string()))?;
            all.rules.extend(one.rules);
            all.formats.extend(one.formats);
        }
        Ok(Some(Arc::new(all)))
    }

    /// Number of `match` and `kv` rules, and of custom formats.
    pub fn counts(&self) -> (usize, usize) {
        (self.rules.len(), self.formats.len())
    }
}

/// Read `/REGEX/` at the cursor: the regex text with `\/` undone.
fn regex_literal(c: &mut Cursor<'_>) -> Result<String, String> {
    c.skip_blanks();
    let rest = c.rest();
    if !rest.starts_with('/') {
        return Err(match c.peek() {
            Some(ch) => format!("expected /REGEX/; found {ch:?}"),
            None => "expected /REGEX/".to_string(),
        });
    }
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, ch)) = chars.next() {
        match ch {
            '/' => {
                c.eat(&rest[..i + 1]);
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            _ => out.push(ch),
        }
    }
    Err("unterminated /REGEX/ (a closing / is missing; write a / inside as \\/)".to_string())
}

/// Compile a regex and list its named captures; `time` is the layout given for it.
fn captures(re: &str, anchored: bool, time: Option<Layout>) -> Result<Captures, String> {
    let src = if anchored {
        format!("^(?:{re})")
    } else {
        re.to_string()
    };
    let regex = Regex::new(&src).map_err(|e| format!("bad regular expression: {e}"))?;
    // A rest that does not compile (past a size limit, as printed) keeps the whole regex.
    let (lead, regex, searched) =
        match split_lead(&src).and_then(|(l, r)| Some((l, Regex::new(&r).ok()?, r))) {
            Some((lead, rest, r)) => (Some(lead), rest, r),
            None => (None, regex, src),
        };
    let seq = Seq::new(&searched, regex.captures_len());
    let names: Vec<(usize, Box<str>, bool)> = regex
        .capture_names()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (i, n.into(), !ENVELOPE.contains(&n))))
        .collect();
    if names.is_empty() {
        return Err(
            "the regular expression has no named capture, (?P<name>...), to set a field with"
                .to_string(),
        );
    }
    let time_group = names
        .iter()
        .find(|(_, n, _)| &**n == "time")
        .map(|(i, ..)| *i);
    let time = match (time, time_group) {
        (Some(l), Some(g)) => Some((g, l)),
        (Some(_), None) => {
            return Err("`time LAYOUT` is given but the regex has no (?P<time>...)".to_string())
        }
        (None, _) => None,
    };
    Ok(Captures {
        regex,
        lead,
        seq,
        names,
        time,
    })
}

/// A regex `^LITERAL REST` as (LITERAL, `^REST`), when REST has no look-around but the end
/// of text or of a line (which look only ahead): REST then matches at the literal's end of a
/// text exactly as `^REST` matches what follows the literal. `None` for any other regex.
fn split_lead(src: &str) -> Option<(Box<str>, String)> {
    use regex_syntax::hir::{HirKind, Look};
    let hir = regex_syntax::parse(src).ok()?;
    let HirKind::Concat(subs) = hir.kind() else {
        return None;
    };
    let [first, second, rest @ ..] = subs.as_slice() else {
        return None;
    };
    let (HirKind::Look(Look::Start), HirKind::Literal(lit)) = (first.kind(), second.kind()) else {
        return None;
    };
    let lit = std::str::from_utf8(&lit.0).ok()?;
    let rest = regex_syntax::hir::Hir::concat(rest.to_vec());
    let looks = rest.properties().look_set();
    if !looks.remove(Look::End).remove(Look::EndLF).is_empty() {
        return None;
    }
    Some((lit.into(), format!("^(?:{rest})")))
}

impl Captures {
    /// Where a search of this regex puts its captures.
    fn locations(&self) -> Locations {
        Locations {
            regex: self.regex.capture_locations(),
            slots: vec![None; self.seq.as_ref().map_or(0, Seq::slots)],
        }
    }

    /// Search `text`; on a match, the text searched (all of it, or what follows `lead`),
    /// which the offsets in `locs` are of.
    #[inline]
    fn search<'t>(&self, locs: &mut Locations, text: &'t str) -> Option<&'t str> {
        let hay = match &self.lead {
            Some(lead) => text.strip_prefix(&**lead)?,
            None => text,
        };
        match &self.seq {
            Some(seq) => seq.search(hay, &mut locs.slots).then_some(hay),
            None => self.regex.captures_read(&mut locs.regex, hay).map(|_| hay),
        }
    }
}

/// The captures of a search: in `slots` when [`Seq`] searched, else in `regex`.
#[derive(Clone, Debug)]
struct Locations {
    regex: CaptureLocations,
    slots: Vec<Option<usize>>,
}

impl Locations {
    /// The start and end of group `g`, when it took part in the match.
    #[inline]
    fn get(&self, g: usize) -> Option<(usize, usize)> {
        if self.slots.is_empty() {
            return self.regex.get(g);
        }
        Some((self.slots[2 * g]?, self.slots[2 * g + 1]?))
    }
}

/// An optional `time LAYOUT` clause.
fn time_clause(c: &mut Cursor<'_>) -> Result<Option<Layout>, String> {
    if !c.peek_word_is("time") {
        return Ok(None);
    }
    c.eat("time");
    match c.word()? {
        Some(l) => Layout::parse(&l).map(Some),
        None => Err("`time` needs a LAYOUT, e.g. time \"%Y-%m-%d %H:%M:%S\"".to_string()),
    }
}

/// A field name word (`match FIELD /.../`, `kv FIELD`).
fn field_word(c: &mut Cursor<'_>) -> Result<Box<str>, String> {
    let w = c.word()?.unwrap_or_default();
    if w.is_empty() || (c.peek() != Some('"') && w.contains(crate::spec::lex::OP_CHARS)) {
        return Err(format!("{w:?} is not a field name"));
    }
    Ok(w.into())
}

fn end_of_line(c: &mut Cursor<'_>) -> Result<(), String> {
    if c.more() {
        let w = c.word()?.unwrap_or_default();
        return Err(format!("unexpected {w:?} at the end of the rule"));
    }
    Ok(())
}

fn parse_line(p: &mut Patterns, body: &str) -> Result<(), String> {
    let mut c = Cursor::new(body);
    let Some(kw) = c.word()? else {
        return Ok(());
    };
    match kw.as_str() {
        "match" => {
            c.skip_blanks();
            let field: Box<str> = if c.peek() == Some('/') {
                "msg".into()
            } else {
                field_word(&mut c)?
            };
            let re = regex_literal(&mut c)?;
            let time = time_clause(&mut c)?;
            let caps = captures(&re, false, time)?;
            let filter = Filter::parse(&mut c)?;
            end_of_line(&mut c)?;
            p.rules.push(Rule {
                filter,
                field,
                kind: Kind::Match(caps),
            });
        }
        "kv" => {
            let field: Box<str> = if c.more() && !c.peek_word_is("where") {
                field_word(&mut c)?
            } else {
                "msg".into()
            };
            let filter = if c.more() {
                if !c.peek_word_is("where") {
                    return Err("expected `where FILTER` after `kv FIELD`".to_string());
                }
                Filter::parse(&mut c)?
            } else {
                Filter::default()
            };
            end_of_line(&mut c)?;
            p.rules.push(Rule {
                filter,
                field,
                kind: Kind::Kv,
            });
        }
        "format" => {
            let Some(name) = c.word()? else {
                return Err("`format` needs a NAME and a /REGEX/".to_string());
            };
            if name.starts_with('/') {
                return Err("`format` needs a NAME before its /REGEX/".to_string());
            }
            let re = regex_literal(&mut c)?;
            let time = time_clause(&mut c)?;
            let caps = captures(&re, true, time)?;
            if caps.time.is_none() && caps.names.iter().any(|(_, n, _)| &**n == "time") {
                return Err(
                    "a format's (?P<time>...) needs its layout: time \"%Y-%m-%d %H:%M:%S\" (say)"
                        .to_string(),
                );
            }
            end_of_line(&mut c)?;
            if let Some(prev) = p.formats.iter().find(|f| f.name == name) {
                return Err(format!("format {name:?} is already defined ({prev:?})"));
            }
            p.formats.push(LineFormat { name, caps });
        }
        other => {
            return Err(format!(
                "expected a rule: match, kv or format; found {other:?}"
            ))
        }
    }
    Ok(())
}

/// Applies [`Patterns`] to events: one per parser (per thread), with its scratch.
pub struct Matcher {
    p: Arc<Patterns>,
    /// One per rule, then one per format.
    locs: Vec<Locations>,
    /// Per rule, per named capture: whether to set its field (see [`Matcher::only_fields`]);
    /// empty for a `kv` rule.
    keep: Vec<Vec<bool>>,
    text: String,
    time: String,
    bytes: Vec<u8>,
}

impl Matcher {
    pub fn new(p: Arc<Patterns>) -> Matcher {
        let locs = p
            .rules
            .iter()
            .map(|r| match &r.kind {
                Kind::Match(c) => c.locations(),
                // Not used: a placeholder, so that rule i has locations i.
                Kind::Kv => Locations {
                    regex: Regex::new("").expect("empty regex").capture_locations(),
                    slots: Vec::new(),
                },
            })
            .chain(p.formats.iter().map(|f| f.caps.locations()))
            .collect();
        let keep = p
            .rules
            .iter()
            .map(|r| match &r.kind {
                Kind::Match(c) => vec![true; c.names.len()],
                Kind::Kv => Vec::new(),
            })
            .collect();
        Matcher {
            p,
            locs,
            keep,
            text: String::new(),
            time: String::new(),
            bytes: Vec::new(),
        }
    }

    /// Set by `match` rules only the fields in `wanted` (and those some rule reads, in its
    /// filter or as its FIELD): a caller that reads only these (pulse-fragment, the fields
    /// its stats read) is spared the values of the rest. A rule left setting nothing is not
    /// run at all. Custom formats still set every capture (their `msg` gives attributes).
    pub fn only_fields(&mut self, wanted: &[Box<str>]) {
        let rules = &self.p.rules;
        let read_by_rules = |name: &str| {
            rules.iter().any(|r| {
                *r.field == *name || r.filter.any.iter().flatten().any(|c| c.field == name)
            })
        };
        for (rule, keep) in rules.iter().zip(&mut self.keep) {
            if let Kind::Match(c) = &rule.kind {
                for ((_, name, _), k) in c.names.iter().zip(keep.iter_mut()) {
                    *k = wanted.iter().any(|w| w == name) || read_by_rules(name);
                }
            }
        }
    }

    /// True when the file defines line formats (so [`Matcher::read_format`] may take a
    /// line).
    #[inline]
    pub fn has_formats(&self) -> bool {
        !self.p.formats.is_empty()
    }

    /// Read `line` by the first custom format that takes it, into `ev` (cleared first);
    /// false when none does (`ev` is then cleared, or holds nothing meaningful).
    pub fn read_format(&mut self, ev: &mut Event, line: &str, year: i32) -> bool {
        let n = self.p.rules.len();
        for (i, f) in self.p.formats.iter().enumerate() {
            let locs = &mut self.locs[n + i];
            let Some(line) = f.caps.search(locs, line) else {
                continue;
            };
            // The time must fit its layout, or the format does not take the line.
            self.time.clear();
            if let Some((g, layout)) = &f.caps.time {
                match locs.get(*g) {
                    Some((s, e)) if layout.to_rfc3339(&line[s..e], year, &mut self.time) => {}
                    _ => continue,
                }
            }
            ev.clear();
            set_captures(ev, &f.caps, None, locs, line, &self.time);
            let attrs = match ev.get("msg") {
                Some(ValRef::Str(msg)) if logfmt::looks_logfmt(msg) => {
                    self.text.clear();
                    self.text.push_str(msg);
                    true
                }
                _ => false,
            };
            if attrs {
                logfmt::parse_attrs(ev, &mut self.bytes, &self.text);
            }
            return true;
        }
        false
    }

    /// Apply every rule, in order, to a parsed event.
    pub fn apply(&mut self, ev: &mut Event, year: i32) {
        for (i, rule) in self.p.rules.iter().enumerate() {
            if !rule.filter.matches(ev) {
                continue;
            }
            let Some(ValRef::Str(v)) = ev.get(&rule.field) else {
                continue;
            };
            match &rule.kind {
                Kind::Match(caps) => {
                    let keep = &self.keep[i];
                    if !keep.contains(&true) {
                        continue;
                    }
                    let locs = &mut self.locs[i];
                    let Some(v) = caps.search(locs, v) else {
                        continue;
                    };
                    self.text.clear();
                    self.text.push_str(v);
                    self.time.clear();
                    if let Some((g, layout)) = &caps.time {
                        if let Some((s, e)) = locs.get(*g) {
                            layout.to_rfc3339(&self.text[s..e], year, &mut self.time);
                        }
                    }
                    set_captures(ev, caps, Some(keep), locs, &self.text, &self.time);
                }
                Kind::Kv => {
                    self.text.clear();
                    self.text.push_str(v);
                    kv_anywhere(ev, &mut self.bytes, &self.text);
                }
            }
        }
    }
}

/// Set the fields of the captures in `locs` (of a match in `text`), those `keep` marks
/// (all when `None`); `time` is the time already read by the layout (empty: none, or it did
/// not fit, and `time` is left alone).
fn set_captures(
    ev: &mut Event,
    caps: &Captures,
    keep: Option<&[bool]>,
    locs: &Locations,
    text: &str,
    time: &str,
) {
    let time_group = caps.time.as_ref().map(|(g, _)| *g);
    for (n, (g, name, coerce)) in caps.names.iter().enumerate() {
        if keep.is_some_and(|k| !k[n]) {
            continue;
        }
        let Some((s, e)) = locs.get(*g) else {
            continue;
        };
        if Some(*g) == time_group {
            if !time.is_empty() {
                ev.set_str("time", time);
            }
            continue;
        }
        let v = &text[s..e];
        let val = match coerce.then(|| logfmt::coerce(v)).flatten() {
            Some(val) => val,
            None => Val::Str(ev.push_text(v)),
        };
        ev.set(name, val);
    }
}

/// A byte of a `kv` key.
#[inline]
fn key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'#')
}

/// Set every `key=value` token of `text` (see the module doc); returns how many.
pub fn kv_anywhere(ev: &mut Event, scratch: &mut Vec<u8>, text: &str) -> usize {
    let b = text.as_bytes();
    let n = b.len();
    let blank = |c: u8| c == b' ' || c == b'\t';
    let mut i = 0;
    let mut count = 0;
    while i < n {
        while i < n && blank(b[i]) {
            i += 1;
        }
        let ks = i;
        while i < n && key_byte(b[i]) {
            i += 1;
        }
        let ke = i;
        let starts_well = ke > ks && (b[ks].is_ascii_alphanumeric() || b[ks] == b'_');
        if starts_well && i < n && b[i] == b'=' {
            i += 1;
            let val = if i < n && b[i] == b'"' {
                let end = quote_end(b, i + 1);
                let span = push_unescaped(ev, scratch, &text[i + 1..end], false);
                i = (end + 1).min(n);
                Val::Str(span)
            } else {
                let vs = i;
                while i < n && !blank(b[i]) {
                    i += 1;
                }
                let v = &text[vs..i];
                logfmt::coerce(v).unwrap_or_else(|| Val::Str(ev.push_text(v)))
            };
            ev.set(&text[ks..ke], val);
            count += 1;
        }
        while i < n && !blank(b[i]) {
            i += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests;
