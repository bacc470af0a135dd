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
pub mod heroku;
pub mod logfmt;
pub mod logplex;
pub mod scan;
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
}

impl Format {
    /// Every format with its `--format` name.
    pub const ALL: [(Format, &'static str); 9] = [
        (Format::Auto, "auto"),
        (Format::Pulse, "pulse"),
        (Format::Rfc5424, "rfc5424"),
        (Format::Logplex, "logplex"),
        (Format::HerokuCli, "heroku"),
        (Format::Rfc3164, "rfc3164"),
        (Format::Logfmt, "logfmt"),
        (Format::Access, "access"),
        (Format::Json, "json"),
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
    /// The year of RFC 3164 stamps, which carry none.
    pub year: i32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Auto,
            year: crate::time::current_year(),
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
    /// The line was empty or blank (emitted as an unparsed record, not counted as one).
    pub empty: bool,
}

/// A reusable parser: one per thread, its event and scratch buffers reused line after line.
pub struct Parser {
    opts: Options,
    ev: Event,
    scratch: Vec<u8>,
    tmp: String,
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
        }
    }

    /// Apply these patterns (custom line formats, then rules on each parsed event).
    pub fn with_patterns(mut self, p: Option<std::sync::Arc<crate::pattern::Patterns>>) -> Parser {
        self.patterns = p.map(crate::pattern::Matcher::new);
        self
    }

    /// Parse one line into one or more events, calling `emit` with each (see the module doc).
    pub fn parse_line(&mut self, line: &[u8], emit: &mut dyn FnMut(&Event)) -> LineOutcome {
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
            out.events = 1;
            self.unparsed(s, emit);
            return out;
        }
        let format = self.opts.format;
        // Patterns: custom line formats come before the built-in detection.
        if let Some(m) = self.patterns.as_mut().filter(|m| m.has_formats()) {
            if format == Format::Auto && m.read_format(&mut self.ev, s, self.opts.year) {
                m.apply(&mut self.ev, self.opts.year);
                out.events = 1;
                emit(&self.ev);
                return out;
            }
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
                    || syslog::parse_rfc3164(&mut self.ev, &mut self.scratch, body, self.opts.year);
                if ok {
                    if let Some(m) = &mut self.patterns {
                        m.apply(&mut self.ev, self.opts.year);
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
        if self.one(format, s) {
            if let Some(m) = &mut self.patterns {
                m.apply(&mut self.ev, self.opts.year);
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
        let (ev, sc, year) = (&mut self.ev, &mut self.scratch, self.opts.year);
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
            Format::Rfc3164 => syslog::parse_rfc3164(ev, sc, s, year),
            Format::Access => access::parse_access(ev, sc, s),
            Format::Auto | Format::Logfmt | Format::Json => false,
        }
    }

    fn auto(&mut self, s: &str) -> bool {
        let b = s.as_bytes();
        let year = self.opts.year;
        match b[0] {
            b'{' if self.json(s) => return true,
            b'<' => {
                let (ev, sc) = (&mut self.ev, &mut self.scratch);
                return syslog::parse_rfc5424(ev, sc, s) || syslog::parse_rfc3164(ev, sc, s, year);
            }
            b'0'..=b'9' => {
                let (t, rest) = token(s);
                if looks_rfc3339(t) {
                    let (t2, rest2) = token(rest);
                    if is_kv_token(t2) {
                        return self.logfmt(s);
                    }
                    let (ev, sc) = (&mut self.ev, &mut self.scratch);
                    if t2.ends_with(':') && heroku::heroku_cli_parts(ev, sc, t, t2, rest2) {
                        return true;
                    }
                    if syslog::is_facility_level(token(rest2).0) && heroku::parse_pulse(ev, sc, s) {
                        return true;
                    }
                    return syslog::header_fields(ev, sc, s, None);
                }
            }
            _ => {}
        }
        let (ev, sc) = (&mut self.ev, &mut self.scratch);
        if b.len() >= 15
            && b[3] == b' '
            && crate::time::month_from_abbrev(&b[..3]).is_some()
            && syslog::parse_rfc3164(ev, sc, s, year)
        {
            return true;
        }
        if access::parse_access(ev, sc, s) {
            return true;
        }
        let first = token(s).0;
        let lone_word = first.len() == s.len()
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'#'));
        if is_kv_token(first) || lone_word {
            return self.logfmt(s);
        }
        false
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
        let found = ["time", "timestamp", "ts"]
            .iter()
            .find_map(|k| ev.get(k).map(|v| (*k, v)));
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
            text: String::from_utf8_lossy(cut).into_owned(),
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
