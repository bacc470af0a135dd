//! Log line formats: raw lines in, [`Event`]s out (the library side of `pulse-parse`).
//!
//! [`Parser::parse_line`] turns one line (no trailing newline; invalid UTF-8 is read lossily,
//! NUL bytes and a trailing CR are fine) into one or more events: exactly one per line, except
//! a Logplex drain line holding several octet-counted frames, which gives one per frame.
//! [`parse_chunk`] does that for a chunk of whole lines and writes NDJSON.
//!
//! # Formats and auto-detection
//!
//! With [`Format::Auto`] each line is tried, by its first bytes, in this order:
//!
//! | line starts with | format | module |
//! |---|---|---|
//! | `DIGITS SP <` | Logplex octet-counted frames, each read as RFC 5424 (or 3164) | [`logplex`], [`syslog`] |
//! | `{` | a JSON object, passed through | [`Event::read_json`] |
//! | `<PRI>1 ` / `<PRI>` | RFC 5424 / RFC 3164 | [`syslog`] |
//! | RFC 3339 time, then `key=...` | logfmt with a leading time | [`logfmt`] |
//! | RFC 3339 time, then `name[ps]:` | `heroku logs` | [`heroku`] |
//! | RFC 3339 time, host, `facility.level` | original Pulse syslog | [`heroku`] |
//! | RFC 3339 time, then 2+ words | drain-to-file (`TIME HOST APP PROCID [MSGID] MSG`) | [`syslog`] |
//! | `Mmm dd hh:mm:ss` | RFC 3164 without PRI | [`syslog`] |
//! | `CLIENT IDENT USER [` | Apache/nginx access log | [`access`] |
//! | `key=...`, or one bare word | logfmt | [`logfmt`] |
//!
//! Anything else is `{"line": "...", "unparsed": true}`. So is an empty (or all-blank) line,
//! which keeps "one record per line" true; it is counted as empty, not as unparsed. A forced
//! [`Format`] tries only that format (and `logfmt` accepts any non-blank line).
//!
//! # JSON lines
//!
//! Passed through field for field. When there is no `time`, a `timestamp` or `ts` field is
//! copied to `time`; a numeric time (Unix seconds, or milliseconds when ≥ 1e11) becomes an
//! RFC 3339 string.

pub mod access;
pub mod applog;
pub mod heroku;
pub mod logfmt;
pub mod logplex;
pub mod scan;
pub mod stamp;
pub mod syslog;

use std::fmt;
use std::str::FromStr;

use crate::error::Diag;
use crate::io::lines::{lines, trim_cr};
use crate::record::{Event, Val, ValRef};
use scan::{is_kv_token, looks_rfc3339, token};

/// A log line format, as named for `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Auto,
    Pulse,
    Rfc5424,
    Logplex,
    HerokuCli,
    Rfc3164,
    Logfmt,
    Access,
    Json,
    Applog,
    Cri,
}

impl Format {
    /// Every format with its `--format` name.
    pub const ALL: [(Format, &'static str); 11] = [
        (Format::Auto, "auto"),
        (Format::Pulse, "pulse"),
        (Format::Rfc5424, "rfc5424"),
        (Format::Logplex, "logplex"),
        (Format::HerokuCli, "heroku"),
        (Format::Rfc3164, "rfc3164"),
        (Format::Logfmt, "logfmt"),
        (Format::Access, "access"),
        (Format::Json, "json"),
        (Format::Applog, "applog"),
        (Format::Cri, "cri"),
    ];

    pub fn name(self) -> &'static str {
        Format::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("auto")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(f, _)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown format '{s}' (one of: {})", names.join(", "))
            })
    }
}

/// How to parse.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub format: Format,
    /// `--multiline`: continuation lines join the record before them (see
    /// [`parse_chunk_multiline`]).
    pub multiline: bool,
    /// The year of stamps that carry none (BSD syslog, logcat, Redis, klog) and the zone of
    /// stamps without a zone (see [`stamp`]).
    pub time: stamp::Ctx,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Auto,
            multiline: false,
            time: stamp::Ctx::default(),
        }
    }
}

impl Options {
    /// Options from the flags: `--format`, `--year` (fixed; else inferred) and `--tz`.
    pub fn new(format: Format, year: Option<i32>, tz: i32) -> Options {
        Options {
            format,
            multiline: false,
            time: stamp::Ctx {
                year: match year {
                    Some(y) => stamp::Year::Fixed(y),
                    None => stamp::Year::Near(stamp::now()),
                },
                tz,
            },
        }
    }
}

/// What became of one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOutcome {
    /// Events emitted (unparsed records included).
    pub events: u32,
    /// Some record of the line matched no format.
    pub unparsed: bool,
    /// Logplex frames whose octet count was wrong (recovered; see [`logplex`]).
    pub bad_frame_counts: u32,
    /// The line was empty or blank (no record; counted as empty).
    pub empty: bool,
    /// The format the line was read as (`None`: unparsed, empty or a continuation line).
    pub format: Option<Format>,
    /// A continuation line (indented, `Caused by: `, `... N more`), emitted as
    /// `{"line": ..., "continuation": true}`.
    pub continuation: bool,
}

/// True for a line that continues the record before it: indented (a stack trace's
/// `\tat ...`, a PostgreSQL statement), Java's `Caused by: ` and `... N more`, or the
/// exception line that opens a stack trace (`java.io.FileNotFoundException: ...`: a
/// dotted class name ending in `Exception`, `Error` or `Throwable`).
pub fn is_continuation(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(b' ' | b'\t') => true,
        Some(b'C') if s.starts_with("Caused by: ") => true,
        Some(b'.') => {
            s.starts_with("... ")
                && s.ends_with(" more")
                && s[4..s.len() - 5].bytes().all(|c| c.is_ascii_digit())
        }
        Some(b'a'..=b'z') => {
            let class = s.split([':', ' ']).next().unwrap_or("");
            let rest = &s[class.len()..];
            class.contains('.')
                && (class.ends_with("Exception")
                    || class.ends_with("Error")
                    || class.ends_with("Throwable"))
                && class
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'$'))
                && (rest.is_empty() || rest.starts_with(": "))
        }
        _ => false,
    }
}

/// The longest event the parser writes as JSON: [`crate::io::input::MAX_RECORD`], what the
/// next stage reads. Escaping can make an event several times its line's length (a line of
/// control bytes, six), so an event of a line of [`CHECK_FROM`] bytes or more is measured,
/// and one that would be longer becomes an unparsed record of the line, cut to fit.
pub const MAX_EVENT: usize = crate::io::input::MAX_RECORD;

/// Lines shorter than this (1 MiB, the longest raw line read, so only a cut line) cannot
/// give an event past [`MAX_EVENT`]: escaping, attributes written beside the message and the
/// envelope make an event at most a dozen or so times its line, plus a few hundred bytes,
/// far from 64. Only longer ones are measured.
const CHECK_FROM: usize = MAX_EVENT / 64;

/// A reusable parser: one per thread, its event and scratch buffers reused line after line.
pub struct Parser {
    opts: Options,
    ev: Event,
    scratch: Vec<u8>,
    tmp: String,
    /// The format the last line was read as.
    detected: Option<Format>,
    // Patterns (`--patterns`, see crate::pattern): custom formats and fields from text.
    patterns: Option<crate::pattern::Matcher>,
}

impl Parser {
    pub fn new(opts: Options) -> Parser {
        Parser {
            opts,
            ev: Event::new(),
            scratch: Vec::new(),
            tmp: String::new(),
            patterns: None,
            detected: None,
        }
    }

    /// The time stamps without a year are placed near (see [`stamp::Year::Near`]): the
    /// input's modification time, or the clock for a stream. No effect under `--year`.
    pub fn set_reference(&mut self, secs: i64) {
        if let stamp::Year::Near(r) = &mut self.opts.time.year {
            *r = secs;
        }
    }

    /// Apply these patterns (custom line formats, then rules on each parsed event).
    pub fn with_patterns(mut self, p: Option<std::sync::Arc<crate::pattern::Patterns>>) -> Parser {
        self.patterns = p.map(crate::pattern::Matcher::new);
        self
    }

    /// Only these fields of events are read (pulse-fragment: those its stats read), so
    /// `--patterns` rules need not set others (see [`crate::pattern::Matcher::only_fields`]).
    pub fn reading_only(mut self, fields: &[Box<str>]) -> Parser {
        if let Some(m) = &mut self.patterns {
            m.only_fields(fields);
        }
        self
    }

    /// Parse one line into one or more events, calling `emit` with each (see the module doc).
    /// No event is longer than [`MAX_EVENT`] as JSON.
    #[inline]
    pub fn parse_line(&mut self, line: &[u8], emit: &mut dyn FnMut(&Event)) -> LineOutcome {
        if line.len() < CHECK_FROM {
            return self.parse_line_unchecked(line, emit);
        }
        self.parse_long_line(line, emit)
    }

    /// [`Parser::parse_line`] of a line long enough that its events are measured.
    #[cold]
    fn parse_long_line(&mut self, line: &[u8], emit: &mut dyn FnMut(&Event)) -> LineOutcome {
        let mut json = Vec::new();
        let mut replaced = false;
        let mut out = self.parse_line_unchecked(line, &mut |ev: &Event| {
            json.clear();
            ev.write_json(&mut json);
            if json.len() < MAX_EVENT {
                return emit(ev);
            }
            // An unparsed record of the line, cut so that even escaped six times over
            // (with its field names) it fits.
            replaced = true;
            let text = String::from_utf8_lossy(trim_cr(line));
            let mut end = (MAX_EVENT / 6 - 64).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let mut cut = Event::new();
            cut.set_str("line", &text[..end]);
            cut.set("unparsed", Val::Bool(true));
            emit(&cut);
        });
        out.unparsed |= replaced;
        out
    }

    fn parse_line_unchecked(&mut self, line: &[u8], emit: &mut dyn FnMut(&Event)) -> LineOutcome {
        let line = trim_cr(line);
        // Valid UTF-8 (nearly every line) is borrowed as it is; only the rest is repaired.
        let text = match crate::find::utf8(line) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(line),
        };
        let s: &str = &text;
        let mut out = LineOutcome::default();
        if s.bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r')) {
            out.empty = true;
            return out;
        }
        let format = self.opts.format;
        // Patterns: custom line formats come before the built-in detection.
        if let Some(m) = self.patterns.as_mut().filter(|m| m.has_formats()) {
            if format == Format::Auto && m.read_format(&mut self.ev, s, self.opts.time.year_hint())
            {
                m.apply(&mut self.ev, self.opts.time.year_hint());
                out.events = 1;
                emit(&self.ev);
                return out;
            }
        }
        if format == Format::Auto && is_continuation(s) {
            out.events = 1;
            out.continuation = true;
            self.ev.clear();
            self.ev.set_str("line", s);
            self.ev.set("continuation", Val::Bool(true));
            emit(&self.ev);
            return out;
        }
        if matches!(format, Format::Auto | Format::Logplex)
            && logplex::starts_with_frame(s.as_bytes())
        {
            for f in logplex::frames(s.as_bytes()) {
                let body = &s[f.start..f.end];
                out.events += 1;
                if f.bad_count {
                    out.bad_frame_counts += 1;
                }
                let ok = syslog::parse_rfc5424(&mut self.ev, &mut self.scratch, body)
                    || syslog::parse_rfc3164(
                        &mut self.ev,
                        &mut self.scratch,
                        body,
                        &self.opts.time,
                    );
                if ok {
                    out.format = Some(Format::Logplex);
                    if let Some(m) = &mut self.patterns {
                        m.apply(&mut self.ev, self.opts.time.year_hint());
                    }
                    emit(&self.ev);
                } else {
                    out.unparsed = true;
                    self.unparsed(body, emit);
                }
            }
            return out;
        }
        out.events = 1;
        self.detected = Some(format);
        if self.one(format, s) {
            out.format = self.detected;
            if let Some(m) = &mut self.patterns {
                m.apply(&mut self.ev, self.opts.time.year_hint());
            }
            emit(&self.ev);
        } else {
            out.unparsed = true;
            self.unparsed(s, emit);
        }
        out
    }

    fn unparsed(&mut self, s: &str, emit: &mut dyn FnMut(&Event)) {
        self.ev.clear();
        self.ev.set_str("line", s);
        self.ev.set("unparsed", Val::Bool(true));
        emit(&self.ev);
    }

    /// Parse `s` as one record of `format` into `self.ev`.
    fn one(&mut self, format: Format, s: &str) -> bool {
        match format {
            Format::Auto => return self.auto(s),
            Format::Logfmt => return self.logfmt(s),
            Format::Json => return self.json(s),
            _ => {}
        }
        let (ev, sc, ctx) = (&mut self.ev, &mut self.scratch, &self.opts.time);
        match format {
            Format::Pulse => heroku::parse_pulse(ev, sc, s),
            Format::Rfc5424 => syslog::parse_rfc5424(ev, sc, s),
            Format::Logplex => {
                syslog::parse_rfc5424(ev, sc, s)
                    || (looks_rfc3339(token(s).0) && syslog::header_fields(ev, sc, s, None))
            }
            Format::HerokuCli => {
                heroku::parse_heroku_cli(ev, sc, s)
                    || (looks_rfc3339(token(s).0) && syslog::header_fields(ev, sc, s, None))
            }
            Format::Rfc3164 => syslog::parse_rfc3164(ev, sc, s, ctx),
            Format::Access => access::parse_access(ev, sc, s),
            Format::Applog => applog::parse_applog(ev, sc, s, ctx),
            Format::Cri => self.cri(s),
            Format::Auto | Format::Logfmt | Format::Json => false,
        }
    }

    /// Detect the format of `s` (see the module doc) and parse it; `self.detected` says
    /// which it was.
    fn auto(&mut self, s: &str) -> bool {
        let b = s.as_bytes();
        let ctx = self.opts.time;
        fn found(f: Format, ok: bool, d: &mut Option<Format>) -> bool {
            if ok {
                *d = Some(f);
            }
            ok
        }
        let d = &mut None;
        let ok = 'detect: {
            match b[0] {
                b'{' if self.json(s) => break 'detect found(Format::Json, true, d),
                b'<' => {
                    let (ev, sc) = (&mut self.ev, &mut self.scratch);
                    if syslog::parse_rfc5424(ev, sc, s) {
                        break 'detect found(Format::Rfc5424, true, d);
                    }
                    break 'detect found(
                        Format::Rfc3164,
                        syslog::parse_rfc3164(ev, sc, s, &ctx),
                        d,
                    );
                }
                b'0'..=b'9' => {
                    let (t, rest) = token(s);
                    if looks_rfc3339(t) {
                        let (t2, rest2) = token(rest);
                        if is_kv_token(t2) {
                            break 'detect found(Format::Logfmt, self.logfmt(s), d);
                        }
                        let (ev, sc) = (&mut self.ev, &mut self.scratch);
                        if t2.ends_with(':') && heroku::heroku_cli_parts(ev, sc, t, t2, rest2) {
                            break 'detect found(Format::HerokuCli, true, d);
                        }
                        let (t3, _) = token(rest2);
                        if matches!(t2, "stdout" | "stderr") && matches!(t3, "F" | "P") {
                            break 'detect found(Format::Cri, self.cri(s), d);
                        }
                        let (ev, sc) = (&mut self.ev, &mut self.scratch);
                        if syslog::is_facility_level(t3) && heroku::parse_pulse(ev, sc, s) {
                            break 'detect found(Format::Pulse, true, d);
                        }
                        // rsyslog's file format: `TIME HOST TAG[PID]: MSG`.
                        if syslog::is_tag(t3) && syslog::parse_rfc3164(ev, sc, s, &ctx) {
                            break 'detect found(Format::Rfc3164, true, d);
                        }
                        if syslog::drain_shape(rest) && syslog::header_fields(ev, sc, s, None) {
                            break 'detect found(Format::Logplex, true, d);
                        }
                    }
                }
                _ => {}
            }
            let (ev, sc) = (&mut self.ev, &mut self.scratch);
            if b.len() >= 15
                && b[3] == b' '
                && crate::time::month_from_abbrev(&b[..3]).is_some()
                && syslog::parse_rfc3164(ev, sc, s, &ctx)
            {
                break 'detect found(Format::Rfc3164, true, d);
            }
            if access::parse_access(ev, sc, s) {
                break 'detect found(Format::Access, true, d);
            }
            if applog::parse_applog(ev, sc, s, &ctx) {
                break 'detect found(Format::Applog, true, d);
            }
            let first = token(s).0;
            let lone_word = first.len() == s.len()
                && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'#'));
            if is_kv_token(first) || lone_word {
                break 'detect found(Format::Logfmt, self.logfmt(s), d);
            }
            false
        };
        self.detected = *d;
        ok
    }

    /// A CRI (containerd, CRI-O) log line: `TIME STREAM P|F MSG`; a JSON message is read as
    /// a JSON line (its own time kept, else the runtime's).
    fn cri(&mut self, s: &str) -> bool {
        let (t, rest) = token(s);
        let (stream, rest) = token(rest);
        let (tag, msg) = token(rest);
        if !looks_rfc3339(t) || !matches!(stream, "stdout" | "stderr") || !matches!(tag, "F" | "P")
        {
            return false;
        }
        if msg.starts_with('{') && self.json(msg) {
            if self.ev.get("time").is_none() {
                self.ev.set_str("time", t);
            }
        } else {
            self.ev.clear();
            self.ev.set_str("time", t);
            syslog::set_message(&mut self.ev, &mut self.scratch, msg);
        }
        self.ev.set_str("stream", stream);
        if tag == "P" {
            self.ev.set("partial", Val::Bool(true));
        }
        true
    }

    /// A logfmt line, with an optional leading RFC 3339 time.
    fn logfmt(&mut self, s: &str) -> bool {
        self.ev.clear();
        let (t, rest) = token(s);
        let attrs = if looks_rfc3339(t) && !rest.trim().is_empty() {
            self.ev.set_str("time", t);
            rest
        } else {
            s
        };
        logfmt::parse_attrs(&mut self.ev, &mut self.scratch, attrs) > 0
    }

    fn json(&mut self, s: &str) -> bool {
        if self.ev.read_json(s.as_bytes()).is_err() {
            return false;
        }
        let ev = &self.ev;
        let found = ["time", "timestamp", "ts", "@timestamp"]
            .iter()
            .find_map(|k| ev.get(k).map(|v| (*k, v)));
        if found.is_none() && ev.get("__REALTIME_TIMESTAMP").is_some() {
            self.journald();
            return true;
        }
        let tmp = &mut self.tmp;
        tmp.clear();
        let convert = match found {
            Some(("time", ValRef::Str(_))) | None => false,
            Some((_, ValRef::Str(t))) => {
                tmp.push_str(t);
                true
            }
            Some((_, v)) => match v.as_f64() {
                Some(f) => match crate::time::unix_seconds(f) {
                    Some(secs) => {
                        crate::time::write_rfc3339(tmp, secs);
                        true
                    }
                    None => false,
                },
                None => false,
            },
        };
        if convert {
            let t = std::mem::take(&mut self.tmp);
            self.ev.set_str("time", &t);
            self.tmp = t;
        }
        true
    }
}

impl Parser {
    /// A `journalctl -o json` record: `__REALTIME_TIMESTAMP` (microseconds) becomes `time`,
    /// and `MESSAGE`, `PRIORITY`, `_HOSTNAME`, `SYSLOG_IDENTIFIER` and `_PID` the envelope's
    /// `msg`, `level`, `host`, `source` and `ps` (all fields are kept as they are too).
    fn journald(&mut self) {
        let ev = &self.ev;
        let micros = match ev.get("__REALTIME_TIMESTAMP") {
            Some(ValRef::Str(t)) => t.parse::<i64>().ok(),
            Some(v) => v.as_f64().map(|f| f as i64),
            None => None,
        };
        let mut time = String::new();
        if let Some(us) = micros.filter(|&us| us >= 0) {
            crate::time::write_rfc3339(&mut time, us.div_euclid(1_000_000) as f64);
            let frac = us.rem_euclid(1_000_000);
            if frac != 0 {
                time.pop();
                time.push_str(&format!(".{frac:06}Z"));
            }
        }
        let text = |k: &str| match ev.get(k) {
            Some(ValRef::Str(s)) => Some(s.to_string()),
            Some(ValRef::Int(n)) => Some(n.to_string()),
            _ => None,
        };
        let level = text("PRIORITY")
            .and_then(|p| p.parse::<usize>().ok())
            .and_then(|p| syslog::SEVERITIES.get(p).copied());
        let pairs = [
            ("msg", text("MESSAGE")),
            ("level", level.map(str::to_string)),
            ("host", text("_HOSTNAME")),
            ("source", text("SYSLOG_IDENTIFIER")),
            ("ps", text("_PID")),
        ];
        if !time.is_empty() {
            self.ev.set_str("time", &time);
        }
        for (k, v) in pairs {
            if let Some(v) = v {
                if self.ev.get(k).is_none() {
                    self.ev.set_str(k, &v);
                }
            }
        }
    }
}

/// Something worth reporting in a chunk: where, and the start of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Line index within the chunk (0-based).
    pub line: u64,
    /// Length of the chunk's output before this line's records.
    pub out_offset: usize,
    /// The start of the line (up to 120 bytes, lossy).
    pub text: String,
}

impl Issue {
    fn new(line: u64, out_offset: usize, bytes: &[u8]) -> Issue {
        let cut = &bytes[..bytes.len().min(120)];
        Issue {
            line,
            out_offset,
            // Escaped, for stderr: control bytes and bytes that are not UTF-8 as `\xNN`.
            text: crate::error::escape(cut),
        }
    }
}

/// What became of the lines of a chunk that is worth telling: counts, and the first of
/// each kind. `pulse-parse` and `pulse-fragment --raw` report them the same way.
#[derive(Clone, Debug, Default)]
pub struct LineIssues {
    /// Lines holding at least one unparsed record.
    pub unparsed: u64,
    pub empty: u64,
    pub continuation: u64,
    pub bad_frame_counts: u64,
    pub first_unparsed: Option<Issue>,
    pub first_bad_frame: Option<Issue>,
}

impl LineIssues {
    /// Note the `outcome` of `line`, line `n` (0-based) of its chunk, whose records start
    /// at `out_offset` of the chunk's output.
    #[inline]
    pub fn record(&mut self, n: u64, out_offset: usize, line: &[u8], outcome: &LineOutcome) {
        if outcome.empty {
            self.empty += 1;
        }
        if outcome.continuation {
            self.continuation += 1;
        }
        if outcome.unparsed {
            self.unparsed += 1;
            if self.first_unparsed.is_none() {
                self.first_unparsed = Some(Issue::new(n, out_offset, line));
            }
        }
        if outcome.bad_frame_counts > 0 {
            self.bad_frame_counts += outcome.bad_frame_counts as u64;
            if self.first_bad_frame.is_none() {
                self.first_bad_frame = Some(Issue::new(n, out_offset, line));
            }
        }
    }

    /// Report them: the first of each kind named by `at(its line in the chunk)`, the rest
    /// counted; empty lines only counted. Under `--strict` the first bad one is the error.
    pub fn report(&self, diag: &mut Diag, at: impl Fn(u64) -> String) -> crate::error::Result<()> {
        // Kept as records (one per line), and only totalled: a blank line is not bad input.
        diag.count("empty", self.empty);
        diag.count("continuation", self.continuation);
        if let Some(issue) = &self.first_bad_frame {
            let what = format!(
                "octet count does not fit the frame, recovered: {}",
                issue.text
            );
            diag.bad("bad frame count", &at(issue.line), &what)?;
            diag.count("bad frame count", self.bad_frame_counts - 1);
        }
        if let Some(issue) = &self.first_unparsed {
            let what = format!("no format matches: {}", issue.text);
            diag.bad("unparsed", &at(issue.line), &what)?;
            diag.count("unparsed", self.unparsed - 1);
        }
        Ok(())
    }
}

/// The NDJSON of one chunk of lines and what went wrong in it.
#[derive(Clone, Debug, Default)]
pub struct ParsedChunk {
    pub out: Vec<u8>,
    pub lines: u64,
    pub events: u64,
    pub issues: LineIssues,
    /// With [`parse_chunk_multiline`]: the continuation lines before the chunk's first
    /// record (they belong to the previous chunk's last record; not in `out`), and where in
    /// `out` the chunk's last record starts when later continuation lines may join it.
    pub leading: Vec<String>,
    pub tail: Option<usize>,
}

/// Join continuation `lines` into the record `json` (one NDJSON line, without its newline):
/// each is appended to its `msg` after a newline (a record without `msg` gets one).
pub fn join_continuations(json: &[u8], lines: &[String], out: &mut Vec<u8>) {
    let mut ev = Event::new();
    if ev.read_json(json).is_err() {
        out.extend_from_slice(json);
        return;
    }
    let mut msg = ev.get_str("msg").map(str::to_string);
    for l in lines {
        match &mut msg {
            Some(m) => {
                m.push('\n');
                m.push_str(l);
            }
            None => msg = Some(l.clone()),
        }
    }
    ev.set_str("msg", msg.as_deref().unwrap_or(""));
    ev.write_json(out);
}

/// A continuation record for `line`, written to `out` with its newline.
pub fn write_continuation(line: &str, out: &mut Vec<u8>) {
    let mut ev = Event::new();
    ev.set_str("line", line);
    ev.set("continuation", Val::Bool(true));
    ev.write_json(out);
    out.push(b'\n');
}

/// [`parse_chunk_into`] with `--multiline`: each continuation line is appended to the `msg`
/// of the record before it (after a newline) instead of being a record of its own. The
/// chunk's last record is marked in [`ParsedChunk::tail`] and its leading continuation
/// lines are in [`ParsedChunk::leading`], for the writer to join across chunks.
pub fn parse_chunk_multiline(parser: &mut Parser, chunk: &[u8], mut out: Vec<u8>) -> ParsedChunk {
    out.clear();
    let mut res = ParsedChunk {
        out,
        ..ParsedChunk::default()
    };
    // The last record, held unwritten while continuation lines may follow.
    let mut held: Option<Event> = None;
    let mut held_msg = String::new();
    let flush = |held: &mut Option<Event>, msg: &mut String, out: &mut Vec<u8>| -> Option<usize> {
        let mut ev = held.take()?;
        if !msg.is_empty() {
            let joined = match ev.get_str("msg") {
                Some(m) => format!("{m}\n{msg}"),
                None => msg.clone(),
            };
            ev.set_str("msg", &joined);
            msg.clear();
        }
        let at = out.len();
        ev.write_json(out);
        out.push(b'\n');
        Some(at)
    };
    for line in lines(chunk) {
        let offset = res.out.len();
        let mut records: Vec<Event> = Vec::new();
        let outcome = parser.parse_line(line, &mut |ev: &Event| records.push(ev.clone()));
        res.issues.record(res.lines, offset, line, &outcome);
        res.lines += 1;
        if outcome.continuation {
            let text = String::from_utf8_lossy(trim_cr(line)).into_owned();
            if held.is_some() {
                if !held_msg.is_empty() {
                    held_msg.push('\n');
                }
                held_msg.push_str(&text);
            } else if res.events == 0 && res.out.is_empty() {
                res.leading.push(text);
            } else {
                write_continuation(&text, &mut res.out);
                res.events += 1;
            }
            continue;
        }
        flush(&mut held, &mut held_msg, &mut res.out);
        let n = records.len();
        for (i, ev) in records.into_iter().enumerate() {
            res.events += 1;
            let unparsed = matches!(ev.get("unparsed"), Some(ValRef::Bool(true)));
            if i + 1 == n && !unparsed {
                held = Some(ev);
            } else {
                ev.write_json(&mut res.out);
                res.out.push(b'\n');
            }
        }
    }
    res.tail = flush(&mut held, &mut held_msg, &mut res.out);
    res
}

/// Parse every line of `chunk` (whole lines; the last may lack its newline) to NDJSON.
pub fn parse_chunk(parser: &mut Parser, chunk: &[u8]) -> ParsedChunk {
    parse_chunk_into(parser, chunk, Vec::new())
}

/// [`parse_chunk`] writing into `out` (cleared first), a buffer to reuse.
pub fn parse_chunk_into(parser: &mut Parser, chunk: &[u8], mut out: Vec<u8>) -> ParsedChunk {
    out.clear();
    // Events come out about twice the size of their lines (the message is kept whole).
    out.reserve(2 * chunk.len() + chunk.len() / 4 + 64);
    let mut res = ParsedChunk {
        out,
        ..ParsedChunk::default()
    };
    for line in lines(chunk) {
        let offset = res.out.len();
        let out = &mut res.out;
        let outcome = parser.parse_line(line, &mut |ev: &Event| {
            ev.write_json(out);
            out.push(b'\n');
        });
        res.events += outcome.events as u64;
        res.issues.record(res.lines, offset, line, &outcome);
        res.lines += 1;
    }
    res
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod detect_tests;
