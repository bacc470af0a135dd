//! The stats file: which stats `pulse-fragment` computes, parsed into [`StatSet`].
//!
//! One stat per line, `#` starts a comment, blank lines are ignored and a line ending in `\`
//! goes on with the next:
//!
//! ```text
//! # name            aggregate                  window  filter                         group
//! router.requests   count                      60s     source=heroku ps=router        by status
//! router.service    quantiles service in ms    60s     source=heroku ps=router        by host
//! router.5xx        count                      60s     status>=500 status<600
//! web.memory        last sample#memory_total per source sum in MB  60s  sample#memory_total?  by host
//! l2met on
//! ```
//!
//! The grammar, in full, is in `man/pulse.stats.5`:
//!
//! ```text
//! line      := NAME AGG OPTION* WINDOW OPTION* FILTER CLAUSE* | "l2met" ("on"|"off")
//! AGG       := count | summary F | quantiles F | unique F | top K F
//!            | last F per F[,F...] (sum|mean|count|max)
//! OPTION    := (in|as) UNIT | within DURATION | cap M  (within: last only; cap: top only)
//! WINDOW    := DURATION                                (10s, 60s, 1m, 1h, 1d; whole seconds)
//! FILTER    := [where] OR        OR := AND ("||" AND)*        AND := TERM ([&&] TERM)*
//! TERM      := COND | "(" OR ")"                       (multiplied out, at most 64 ANDs)
//! COND      := F=V[|V...] | F!=V[|V...] | F<N | F<=N | F>N | F>=N | F~T[|T...] | F!~T[|T...]
//!            | F? | !F
//! CLAUSE    := by F[,F...] | max-keys N
//! ```
//!
//! Matching an event, reading its value and writing its group key borrow from the event and
//! do not allocate.

mod filter;
pub(crate) mod lex;
mod unit;

#[cfg(test)]
mod classic_tests;

use std::fmt;

pub use filter::{CmpOp, Cond, Filter, Lit, Quantity, Test};
pub use unit::{parse_quantity, split_quantity, Dim, Suffix, Unit};

use crate::record::{Event, ValRef};
use crate::stat::{AggSpec, Input, LastFn};
use lex::{bare_field, check_field, logical_lines, write_field, Cursor};

/// Default cap on the number of group keys of one stat per window.
pub const DEFAULT_MAX_KEYS: usize = 10_000;
/// The prefix of the names of pulse-fragment's own stats (`pulse.events`, `pulse.late`
/// ...), which neither a stats file nor an l2met key may use.
pub const OWN_PREFIX: &str = "pulse.";

/// Default recency of `last`: partitions not heard from for this long are left out.
pub const DEFAULT_RECENCY: u32 = 300;

/// One declared stat.
#[derive(Clone, Debug, PartialEq)]
pub struct StatDef {
    /// The stat's name, e.g. `router.service`.
    pub name: String,
    pub agg: AggSpec,
    /// Window length in whole seconds, at least 1.
    pub secs: u32,
    pub filter: Filter,
    /// The field read for summary, quantiles, unique, top and last (`None` for count).
    pub value: Option<String>,
    /// The unit values are converted to.
    pub unit: Option<Unit>,
    /// `last FIELD per PART`: the partition field(s), comma-separated.
    pub partition: Option<String>,
    /// Group-by fields (may be empty).
    pub group_by: Vec<String>,
    /// Group-by cardinality cap.
    pub max_keys: usize,
    /// Line in its file, for messages.
    pub line: usize,
}

impl StatDef {
    /// Does the event pass the filter?
    #[inline]
    pub fn matches(&self, ev: &Event) -> bool {
        self.filter.matches(ev)
    }

    /// The event's contribution to this stat: `One` for count; `Num` for summary and
    /// quantiles (the value field as a number, converted to the stat's unit); `Text` for
    /// unique and top (the value as text; `scratch` holds it when it is not a string);
    /// `Last` for last (`part` is the partition field's text, `time` is passed through).
    /// `None` when the field is missing, empty, or not a number where one is needed.
    pub fn input<'a>(
        &self,
        ev: &'a Event,
        time: f64,
        scratch: &'a mut String,
    ) -> Option<Input<'a>> {
        let value = self.value.as_deref().and_then(|f| ev.get(f));
        let parts = self
            .partition
            .iter()
            .flat_map(|p| p.split(','))
            .map(|f| ev.get(f));
        self.input_from(value, parts, time, scratch)
    }

    /// [`StatDef::input`] from values already looked up: `value` is the value field's,
    /// `parts` the partition fields' in order (`None` where missing).
    #[inline]
    pub fn input_from<'a>(
        &self,
        value: Option<ValRef<'a>>,
        parts: impl Iterator<Item = Option<ValRef<'a>>>,
        time: f64,
        scratch: &'a mut String,
    ) -> Option<Input<'a>> {
        self.input_with(value, |v| self.number(v), parts, time, scratch)
    }

    /// The value as a number in the stat's unit (summary, quantiles, last).
    #[inline]
    pub fn number(&self, v: ValRef<'_>) -> Option<f64> {
        filter::number(v, self.unit)
    }

    /// [`StatDef::input_from`] with the conversion of the value to a number given (it must
    /// agree with [`StatDef::number`]), so that stats reading the same field in the same
    /// unit can share one conversion per event.
    #[inline]
    pub fn input_with<'a>(
        &self,
        value: Option<ValRef<'a>>,
        number: impl FnOnce(ValRef<'a>) -> Option<f64>,
        parts: impl Iterator<Item = Option<ValRef<'a>>>,
        time: f64,
        scratch: &'a mut String,
    ) -> Option<Input<'a>> {
        match self.agg {
            AggSpec::Count => Some(Input::One),
            AggSpec::Summary | AggSpec::Quantiles => number(value?).map(Input::Num),
            AggSpec::Unique | AggSpec::Top { .. } => match value? {
                ValRef::Null => None,
                ValRef::Str(s) => Some(Input::Text(s)),
                v => {
                    scratch.clear();
                    v.write_text(scratch);
                    Some(Input::Text(scratch.as_str()))
                }
            },
            AggSpec::Last { .. } => {
                let value = number(value?)?;
                let part = partition_text(parts, scratch)?;
                Some(Input::Last { part, time, value })
            }
        }
    }

    /// Write the group key (group-by values joined by `,`; a missing or empty field is
    /// written as `-`) into `out`, cleared first. False, with `out` empty, without group-by.
    pub fn group_key(&self, ev: &Event, out: &mut String) -> bool {
        write_group_key(
            self.group_by.iter().map(|f| ev.get(f)),
            crate::stat::MAX_TEXT,
            out,
        );
        !self.group_by.is_empty()
    }

    /// The aggregate part of the line (`quantiles service in ms`).
    fn agg_text(&self) -> String {
        let mut out = String::new();
        let field = |out: &mut String| {
            if let Some(v) = &self.value {
                out.push(' ');
                write_field(out, v);
            }
        };
        match &self.agg {
            AggSpec::Count => out.push_str("count"),
            AggSpec::Summary => {
                out.push_str("summary");
                field(&mut out);
            }
            AggSpec::Quantiles => {
                out.push_str("quantiles");
                field(&mut out);
            }
            AggSpec::Unique => {
                out.push_str("unique");
                field(&mut out);
            }
            AggSpec::Top { k, cap } => {
                out.push_str(&format!("top {k}"));
                field(&mut out);
                if *cap != crate::stat::top::DEFAULT_CAP {
                    out.push_str(&format!(" cap {cap}"));
                }
            }
            AggSpec::Last { func, recency } => {
                out.push_str("last");
                field(&mut out);
                out.push_str(" per ");
                let parts: Vec<&str> = self.partition.as_deref().unwrap_or("").split(',').collect();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_field(&mut out, p);
                }
                out.push(' ');
                out.push_str(func.name());
                if *recency != DEFAULT_RECENCY {
                    out.push_str(&format!(" within {recency}s"));
                }
            }
        }
        if let Some(u) = self.unit {
            out.push_str(" in ");
            out.push_str(u.name());
        }
        out
    }

    /// Filter and clauses (`status>=500`, `by host max-keys 500`).
    fn tail_text(&self) -> (String, String) {
        let mut out = String::new();
        if !self.group_by.is_empty() {
            out.push_str("by ");
            for (i, g) in self.group_by.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_field(&mut out, g);
            }
        }
        if self.max_keys != DEFAULT_MAX_KEYS {
            out.push_str(&format!(" max-keys {}", self.max_keys));
        }
        (self.filter.to_string(), out)
    }
}

/// Write a group key from the group-by fields' values in order (joined by `,`; a missing or
/// null value is written as `-`) into `out`, cleared first. A key longer than `max` bytes is
/// cut with [`crate::stat::cut_marked`], and the result is its whole length.
#[inline]
pub fn write_group_key<'a>(
    values: impl Iterator<Item = Option<ValRef<'a>>>,
    max: usize,
    out: &mut String,
) -> Option<usize> {
    out.clear();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            None | Some(ValRef::Null) => out.push('-'),
            Some(v) => v.write_text(out),
        }
    }
    // A long key is cut, with a marker (see `crate::stat::cut_marked`).
    if out.len() > max {
        let whole = std::mem::take(out);
        crate::stat::cut_marked(&whole, max, out);
        return Some(whole.len());
    }
    None
}

/// The partition text from the partition fields' values ("a" or "a,b"); borrowed from the
/// event for one string field, built in `scratch` otherwise. `None` without partition fields
/// or when one is missing or null.
fn partition_text<'a>(
    mut parts: impl Iterator<Item = Option<ValRef<'a>>>,
    scratch: &'a mut String,
) -> Option<&'a str> {
    let first = parts.next()?;
    let Some(second) = parts.next() else {
        return match first? {
            ValRef::Str(s) => Some(s),
            ValRef::Null => None,
            v => {
                scratch.clear();
                v.write_text(scratch);
                Some(scratch.as_str())
            }
        };
    };
    scratch.clear();
    for (i, v) in [first, second].into_iter().chain(parts).enumerate() {
        if i > 0 {
            scratch.push(',');
        }
        match v? {
            ValRef::Null => return None,
            v => v.write_text(scratch),
        }
    }
    Some(scratch.as_str())
}

impl fmt::Display for StatDef {
    /// The stat as one line of a stats file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}s", self.name, self.agg_text(), self.secs)?;
        let (filter, clauses) = self.tail_text();
        for part in [filter, clauses] {
            if !part.is_empty() {
                write!(f, " {part}")?;
            }
        }
        Ok(())
    }
}

/// A parse error: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub origin: String,
    pub line: usize,
    /// The column (in characters, from 1) of what is wrong, when it is one place.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.origin, self.line)?;
        if let Some(col) = self.column {
            write!(f, "{col}:")?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for SpecError {}

/// The stats to compute.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatSet {
    pub stats: Vec<StatDef>,
    /// Also derive stats from l2met-style keys (`count#X`, `measure#X`, `sample#X`,
    /// `unique#X`); see [`l2met`].
    pub l2met: bool,
}

impl StatSet {
    /// Parse a stats file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<StatSet, SpecError> {
        let mut set = StatSet::default();
        for logical in logical_lines(text) {
            let line = logical.line;
            let err = |message: String| SpecError {
                origin: origin.to_string(),
                line,
                column: None,
                message,
            };
            let mut c = Cursor::new(&logical.text);
            let parsed = parse_line(&mut c, line).map_err(|message| {
                let (line, col) = logical.place(c.tok());
                SpecError {
                    origin: origin.to_string(),
                    line,
                    column: Some(col),
                    message,
                }
            })?;
            match parsed {
                Parsed::Nothing => {}
                Parsed::L2met(on) => set.l2met = on,
                Parsed::Stat(def) => {
                    if let Some(prev) = set.stats.iter().find(|s| s.name == def.name) {
                        return Err(err(format!(
                            "stat {:?} is already defined at line {}",
                            def.name, prev.line
                        )));
                    }
                    set.stats.push(def);
                }
            }
        }
        Ok(set)
    }

    /// The built-in stats, used when no stats file is given (`src/spec/defaults.stats`).
    pub fn defaults() -> StatSet {
        StatSet::parse(DEFAULTS, "defaults").expect("the built-in stats parse")
    }

    /// Append another set; a stat name defined in both is an error. l2met is on if either
    /// set turns it on.
    pub fn extend(&mut self, other: StatSet) -> Result<(), SpecError> {
        for s in &other.stats {
            if let Some(prev) = self.stats.iter().find(|p| p.name == s.name) {
                return Err(SpecError {
                    origin: "stats".to_string(),
                    line: s.line,
                    column: None,
                    message: format!(
                        "stat {:?} is defined twice (also at line {} of an earlier stats file)",
                        s.name, prev.line
                    ),
                });
            }
        }
        self.stats.extend(other.stats);
        self.l2met |= other.l2met;
        Ok(())
    }

    /// One line per stat in the stats-file syntax, columns aligned (plus `l2met on` when
    /// set). Parsing the result gives this set back.
    pub fn list(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .stats
            .iter()
            .map(|s| {
                let (filter, clauses) = s.tail_text();
                [
                    s.name.clone(),
                    s.agg_text(),
                    format!("{}s", s.secs),
                    filter,
                    clauses,
                ]
            })
            .collect();
        let mut width = [0usize; 4];
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        if self.l2met {
            out.push_str("l2met on\n");
        }
        for r in &rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i == 4 {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}  ", w = width[i]));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The built-in stats file.
pub const DEFAULTS: &str = include_str!("defaults.stats");

/// l2met conventions: `count#X` → (X, Summary; its sum is the total count), `measure#X` →
/// (X, Quantiles), `sample#X` → (X, Summary), `unique#X` → (X, Unique); anything else `None`.
pub fn l2met(key: &str) -> Option<(&str, AggSpec)> {
    let (prefix, name) = key.split_once('#')?;
    if name.is_empty() {
        return None;
    }
    let agg = match prefix {
        "count" | "sample" => AggSpec::Summary,
        "measure" => AggSpec::Quantiles,
        "unique" => AggSpec::Unique,
        _ => return None,
    };
    Some((name, agg))
}

enum Parsed {
    Nothing,
    L2met(bool),
    Stat(StatDef),
}

const AGGREGATES: &str = "count, summary FIELD, quantiles FIELD, unique FIELD, top K FIELD or \
                          last FIELD per FIELD sum|mean|count|max";

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-:/@".contains(c))
}

/// A duration in whole seconds: `10s`, `1m`, `5min`, `1h`, `1d`; `1500ms` is not whole.
pub(crate) fn duration(word: &str) -> Result<u32, String> {
    const UNITS: &str = "s, m, h or d (10s, 90s, 1m, 30m, 1h, 1d)";
    let secs = match split_quantity(word) {
        Some((x, Suffix::Unit(u))) if u.dim() == Dim::Time => {
            u.convert(x, Unit::S).expect("time converts to seconds")
        }
        Some((x, Suffix::Other))
            if matches!(
                word.trim_start_matches(|c: char| !c.is_alphabetic()),
                "d" | "day" | "days"
            ) =>
        {
            x * 86_400.0
        }
        Some((_, Suffix::None)) => {
            return Err(format!(
                "{word:?} needs a unit: {word}s, or a multiple like 1m, 1h or 1d"
            ))
        }
        _ => {
            return Err(format!(
                "{word:?} is not a duration: a number with a unit {UNITS}"
            ))
        }
    };
    let rounded = secs.round();
    if (secs - rounded).abs() > 1e-9 || rounded < 1.0 || rounded > u32::MAX as f64 {
        return Err(format!(
            "{word:?} is not a whole number of seconds of at least 1s"
        ));
    }
    Ok(rounded as u32)
}

/// The field an aggregate reads (`summary FIELD`; `form` is the aggregate's syntax). A
/// missing field, or the window or a condition where the field should be, is named as such.
fn agg_field(c: &mut Cursor<'_>, agg: &str, form: &str, list: bool) -> Result<String, String> {
    c.skip_blanks();
    let quoted = c.peek() == Some('"');
    let Some(w) = c.word()? else {
        return Err(format!(
            "{agg} needs the field it reads ({form}), found the end of the line"
        ));
    };
    if !quoted {
        if duration(&w).is_ok() {
            return Err(format!(
                "{agg} needs the field it reads before the window ({form}), found the window {w:?}"
            ));
        }
        let fields: Vec<&str> = if list {
            w.split(',').collect()
        } else {
            vec![&w]
        };
        fields
            .into_iter()
            .filter(|f| !f.is_empty())
            .try_for_each(check_field)
            .map_err(|e| format!("{agg} needs the field it reads ({form}): {e}"))?;
    }
    Ok(w)
}

fn need_word(c: &mut Cursor<'_>, what: &str) -> Result<String, String> {
    c.word()?
        .ok_or_else(|| format!("expected {what}, found the end of the line"))
}

fn parse_line(c: &mut Cursor<'_>, line: usize) -> Result<Parsed, String> {
    let Some(name) = c.word()? else {
        return Ok(Parsed::Nothing);
    };
    if name == "l2met" {
        let on = match need_word(c, "on or off after l2met")?.as_str() {
            "on" => true,
            "off" => false,
            w => return Err(format!("expected on or off after l2met, found {w:?}")),
        };
        if c.more() {
            return Err(format!(
                "unexpected {:?} after l2met {}",
                c.rest(),
                if on { "on" } else { "off" }
            ));
        }
        return Ok(Parsed::L2met(on));
    }
    if !valid_name(&name) {
        return Err(format!(
            "stat name {name:?} may contain only letters, digits and _ . - : / @"
        ));
    }
    if name.starts_with(OWN_PREFIX) {
        return Err(format!(
            "stat name {name:?}: names beginning with {OWN_PREFIX:?} are pulse-fragment's own stats"
        ));
    }
    let agg_word = need_word(c, &format!("an aggregate after {name}: {AGGREGATES}"))?;
    let mut value = None;
    let mut partition = None;
    let agg = match agg_word.as_str() {
        "count" => AggSpec::Count,
        "summary" | "quantiles" | "unique" => {
            value = Some(agg_field(
                c,
                &agg_word,
                &format!("{agg_word} FIELD"),
                false,
            )?);
            match agg_word.as_str() {
                "summary" => AggSpec::Summary,
                "quantiles" => AggSpec::Quantiles,
                _ => AggSpec::Unique,
            }
        }
        "top" => {
            let k = need_word(c, "a count K after top (top K FIELD)")?;
            let k: usize = match k.parse() {
                Ok(k) if k >= 1 => k,
                _ => {
                    return Err(format!(
                        "expected a count K ≥ 1 after top (top K FIELD), found {k:?}"
                    ))
                }
            };
            value = Some(agg_field(c, &format!("top {k}"), "top K FIELD", false)?);
            AggSpec::Top {
                k,
                cap: crate::stat::top::DEFAULT_CAP,
            }
        }
        "last" => {
            const LAST: &str = "last FIELD per FIELD sum|mean|count|max";
            let v = agg_field(c, "last", LAST, false)?;
            match c.word()? {
                Some(w) if w == "per" => {}
                w => {
                    return Err(format!(
                        "expected per after last {v} (last FIELD per FIELD sum|mean|count|max), found {}",
                        w.map_or("the end of the line".to_string(), |w| format!("{w:?}"))
                    ))
                }
            }
            let p = agg_field(c, &format!("last {v} per"), LAST, true)?;
            if p.split(',').any(str::is_empty) {
                return Err(format!("bad partition field list {p:?} after per"));
            }
            let func =
                match need_word(c, &format!("sum, mean, count or max after per {p}"))?.as_str() {
                    "sum" => LastFn::Sum,
                    "mean" => LastFn::Mean,
                    "count" => LastFn::Count,
                    "max" => LastFn::Max,
                    w => {
                        return Err(format!(
                            "expected sum, mean, count or max after per {p}, found {w:?}"
                        ))
                    }
                };
            value = Some(v);
            partition = Some(p);
            AggSpec::Last {
                func,
                recency: DEFAULT_RECENCY,
            }
        }
        w => {
            return Err(format!(
                "expected an aggregate after {name}: {AGGREGATES}; found {w:?}"
            ))
        }
    };
    let mut def = StatDef {
        name,
        agg,
        secs: 0,
        filter: Filter::default(),
        value,
        unit: None,
        partition,
        group_by: Vec::new(),
        max_keys: DEFAULT_MAX_KEYS,
        line,
    };
    let mut seen_cap = false;
    options(c, &mut def, &mut seen_cap)?;
    let w = need_word(
        c,
        "a window such as 10s, 60s, 1m, 1h or 1d after the aggregate",
    )?;
    def.secs = duration(&w).map_err(|e| {
        if def.agg == AggSpec::Count && bare_field(&w) && split_quantity(&w).is_none() {
            format!(
                "expected a window after count, found {w:?}: count takes no field \
                 (for the values of a field: summary {w}, unique {w}, top K {w} ...)"
            )
        } else {
            format!("expected a window after the aggregate: {e}")
        }
    })?;
    options(c, &mut def, &mut seen_cap)?;
    def.filter = Filter::parse(c)?;
    let mut seen_by = false;
    let mut seen_max = false;
    while c.more() {
        if c.peek_word_is("by") {
            if seen_by {
                return Err("by given twice".into());
            }
            seen_by = true;
            c.eat("by");
            while c.more() && !c.peek_word_is("max-keys") {
                let quoted = c.peek() == Some('"');
                let w = c.word()?.expect("more");
                if quoted {
                    def.group_by.push(w);
                } else {
                    for f in w.split(',').filter(|s| !s.is_empty()) {
                        check_field(f).map_err(|e| format!("by: {e}"))?;
                        def.group_by.push(f.to_string());
                    }
                }
            }
            if def.group_by.is_empty() {
                return Err("expected field names after by (by host or by host,status)".into());
            }
        } else if c.peek_word_is("max-keys") {
            if seen_max {
                return Err("max-keys given twice".into());
            }
            seen_max = true;
            c.eat("max-keys");
            let n = need_word(c, "a number after max-keys")?;
            def.max_keys = match n.parse() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("expected a number ≥ 1 after max-keys, found {n:?}")),
            };
        } else {
            return Err(format!(
                "expected by FIELDS, max-keys N or the end of the line, found {:?}",
                c.rest()
            ));
        }
    }
    if seen_max && def.group_by.is_empty() {
        return Err("max-keys only applies to a stat with by FIELDS".into());
    }
    Ok(Parsed::Stat(def))
}

/// `in UNIT` / `as UNIT` / `within DURATION` / `cap M`, before or after the window.
/// `seen_cap` carries over from the call before the window to the one after it.
fn options(c: &mut Cursor<'_>, def: &mut StatDef, seen_cap: &mut bool) -> Result<(), String> {
    loop {
        if c.peek_word_is("in") || c.peek_word_is("as") {
            let kw = if c.eat("in") {
                "in"
            } else {
                c.eat("as");
                "as"
            };
            let u = need_word(
                c,
                &format!("a unit after {kw} (ns, us, ms, s, m, h, B, kB, MB, GB, TB)"),
            )?;
            if !matches!(
                def.agg,
                AggSpec::Summary | AggSpec::Quantiles | AggSpec::Last { .. }
            ) {
                return Err(format!(
                    "{kw} {u}: a unit applies only to summary, quantiles and last"
                ));
            }
            if def.unit.is_some() {
                return Err("the unit is given twice".into());
            }
            def.unit = Some(u.parse()?);
        } else if c.peek_word_is("within") {
            c.eat("within");
            let w = need_word(c, "a duration after within (within 300s)")?;
            match &mut def.agg {
                AggSpec::Last { recency, .. } => {
                    *recency = duration(&w).map_err(|e| format!("within: {e}"))?
                }
                _ => return Err("within applies only to last".into()),
            }
        } else if c.peek_word_is("cap") {
            c.eat("cap");
            use crate::stat::top::MAX_CAP;
            let w = need_word(
                c,
                &format!("a number of counters after cap (1 to {MAX_CAP})"),
            )?;
            let AggSpec::Top { cap, .. } = &mut def.agg else {
                return Err("cap applies only to top".into());
            };
            if *seen_cap {
                return Err("cap given twice".into());
            }
            *seen_cap = true;
            *cap = match w.parse() {
                Ok(n) if (1..=MAX_CAP).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "expected a number of counters from 1 to {MAX_CAP} after cap, found {w:?}"
                    ))
                }
            };
        } else {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
