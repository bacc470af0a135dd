//! The rules file of `pulse-alert --rules FILE`, parsed into [`Rules`].
//!
//! One rule per line, `#` starts a comment, blank lines are ignored and a line ending in `\`
//! goes on with the next (the stats file's lexer, [`crate::spec`]):
//!
//! ```text
//! # name      series                    value  condition        clauses
//! h12-storm   router.errors[H12]        count  > 100            for 2m  severity critical  "{value} H12 a minute"
//! slow-app    router.service            p95    > 1000           for 5m  clear 800  "p95 of {key} is {value} ms"
//! silent-app  router.requests.app[*]           absent           for 2m  "{key} stopped sending traffic"
//! surge       router.requests.app       rate   rises by 50%
//! odd-load    runtime.load[*.com]       sum    outside 0..8     keep 5m
//! ```
//!
//! The grammar, in full, is in `man/pulse.rules.5`:
//!
//! ```text
//! line     := NAME SERIES [VALUE] COND CLAUSE*          (VALUE may be left out before absent)
//! SERIES   := STAT | STAT[KEY] | STAT[GLOB] | STAT[*]   (no brackets: every key, null too)
//! COND     := (> | < | >= | <= | == | !=) NUMBER | outside A..B
//!           | (rises | falls) by NUMBER[%] | absent
//! CLAUSE   := for DURATION | clear (NUMBER | A..B) | keep DURATION
//!           | severity WORD | "SUMMARY" | summary "SUMMARY"
//! ```

use std::fmt;

use crate::spec::lex::{logical_lines, Cursor};
use crate::spec::{duration, SpecError};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Lt,
    Ge,
    Le,
    Eq,
    Ne,
}

impl Op {
    pub fn test(self, v: f64, t: f64) -> bool {
        match self {
            Op::Gt => v > t,
            Op::Lt => v < t,
            Op::Ge => v >= t,
            Op::Le => v <= t,
            Op::Eq => v == t,
            Op::Ne => v != t,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// What a window's value must do for the condition to hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `> 100`: with `clear C`, a firing alert stays firing while `value OP C`.
    Cmp { op: Op, threshold: f64, clear: f64 },
    /// `outside A..B`: with `clear C..D`, a firing alert stays firing while outside C..D.
    Outside { lo: f64, hi: f64, clear: (f64, f64) },
    /// `rises by 50%` / `falls by 10`: against the previous window of the same series.
    Change { rise: bool, by: f64, percent: bool },
    /// A series seen before has no final snapshot for a window that closed.
    Absent,
}

/// Which keys of a stat a rule watches; each key is its own alert instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySel {
    /// No brackets, or `[*]`: every key (and the null key).
    All,
    /// `[200]`: that key only.
    One(String),
    /// `[*.example.com]`: keys matching a glob of `*` and `?`.
    Glob(String),
}

impl KeySel {
    pub fn matches(&self, key: Option<&str>) -> bool {
        match self {
            KeySel::All => true,
            KeySel::One(k) => key == Some(k.as_str()),
            KeySel::Glob(g) => key.is_some_and(|k| glob(g.as_bytes(), k.as_bytes())),
        }
    }
}

/// `*` any run, `?` one character (byte); linear in practice for the short keys of stats.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub stat: String,
    pub keys: KeySel,
    /// The snapshot value read (`count`, `p95`, ...); empty for `absent` without one.
    pub value: String,
    pub cond: Cond,
    /// `for`: seconds the condition must hold (whole windows) before firing.
    pub for_secs: u32,
    /// `keep`: seconds a firing alert stays firing after its condition stopped holding.
    pub keep_secs: u32,
    pub severity: String,
    pub summary: String,
    /// Where it was defined (`FILE:LINE`).
    pub origin: String,
}

impl Rule {
    /// Windows the condition must hold for, at least 1.
    pub fn need(&self, secs: u32) -> u32 {
        windows(self.for_secs, secs).max(1)
    }

    /// Windows the condition may fail while firing before the alert resolves.
    pub fn keep(&self, secs: u32) -> u32 {
        windows(self.keep_secs, secs)
    }
}

/// Whole windows of `secs` that `total` seconds take, a part counting as one.
pub(crate) fn windows(total: u32, secs: u32) -> u32 {
    total.div_ceil(secs.max(1))
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Cmp { op, threshold, .. } => write!(f, "{} {threshold}", op.as_str()),
            Cond::Outside { lo, hi, .. } => write!(f, "outside {lo}..{hi}"),
            Cond::Change { rise, by, percent } => write!(
                f,
                "{} by {by}{}",
                if *rise { "rises" } else { "falls" },
                if *percent { "%" } else { "" }
            ),
            Cond::Absent => f.write_str("absent"),
        }
    }
}

/// Every rule of the rules files, in the order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Parse a rules file's text; `origin` names it in errors (`FILE:LINE:COL: ...`).
    pub fn parse(text: &str, origin: &str) -> Result<Rules, SpecError> {
        let mut rules = Rules::default();
        rules.extend_from(text, origin)?;
        Ok(rules)
    }

    /// Add the rules of another file; a name defined twice is an error.
    pub fn extend_from(&mut self, text: &str, origin: &str) -> Result<(), SpecError> {
        for logical in logical_lines(text) {
            let mut c = Cursor::new(&logical.text);
            if !c.more() {
                continue;
            }
            let at = format!("{origin}:{}", logical.line);
            let parsed = parse_line(&mut c, at.clone());
            let rule = parsed.map_err(|message| {
                let (line, col) = logical.place(c.tok());
                SpecError {
                    origin: origin.to_string(),
                    line,
                    column: Some(col),
                    message,
                }
            })?;
            if let Some(prev) = self.rules.iter().find(|r| r.name == rule.name) {
                return Err(SpecError {
                    origin: origin.to_string(),
                    line: logical.line,
                    column: Some(1),
                    message: format!("rule {:?} is already defined at {}", rule.name, prev.origin),
                });
            }
            self.rules.push(rule);
        }
        Ok(())
    }
}

fn need_word(c: &mut Cursor<'_>, what: &str) -> Result<String, String> {
    c.word()?
        .ok_or_else(|| format!("expected {what}, found the end of the line"))
}

fn number(w: &str) -> Result<f64, String> {
    let t = w.replace('_', "");
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("expected a number, found {w:?}")),
    }
}

fn range(w: &str) -> Result<(f64, f64), String> {
    let Some((a, b)) = w.split_once("..") else {
        return Err(format!("expected a range A..B, found {w:?}"));
    };
    let (a, b) = (number(a)?, number(b)?);
    if a > b {
        return Err(format!("range {w:?}: {a} is above {b}"));
    }
    Ok((a, b))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-:/@".contains(c))
}

fn parse_line(c: &mut Cursor<'_>, origin: String) -> Result<Rule, String> {
    let name = need_word(c, "a rule name")?;
    if !valid_name(&name) {
        return Err(format!(
            "rule name {name:?}: letters, digits and _ . - : / @ only"
        ));
    }
    let series = need_word(
        c,
        "a stat (router.errors, router.errors[H12], router.service[*])",
    )?;
    let (stat, keys) = match series.split_once('[') {
        None => (series.clone(), KeySel::All),
        Some((s, rest)) => {
            let Some(k) = rest.strip_suffix(']') else {
                return Err(format!("{series:?}: a key selection ends in ]"));
            };
            let sel = if k == "*" {
                KeySel::All
            } else if k.contains(['*', '?']) {
                KeySel::Glob(k.to_string())
            } else if k.is_empty() {
                return Err(format!(
                    "{series:?}: an empty key selection (write [*] for every key)"
                ));
            } else {
                KeySel::One(k.to_string())
            };
            (s.to_string(), sel)
        }
    };
    if !valid_name(&stat) {
        return Err(format!(
            "stat name {stat:?}: letters, digits and _ . - : / @ only"
        ));
    }
    let mut value = String::new();
    let cond = loop {
        let w = need_word(c, "a value name (count, rate, p95, ...) and a condition")?;
        let op = match w.as_str() {
            ">" => Some(Op::Gt),
            "<" => Some(Op::Lt),
            ">=" => Some(Op::Ge),
            "<=" => Some(Op::Le),
            "==" => Some(Op::Eq),
            "!=" => Some(Op::Ne),
            _ => None,
        };
        if let Some(op) = op {
            if value.is_empty() {
                return Err(format!(
                    "expected a value name before {w:?} (count, p95, ...)"
                ));
            }
            let t = number(&need_word(c, "a threshold")?)?;
            break Cond::Cmp {
                op,
                threshold: t,
                clear: t,
            };
        }
        match w.as_str() {
            "absent" => break Cond::Absent,
            "outside" => {
                if value.is_empty() {
                    return Err("expected a value name before outside".into());
                }
                let (lo, hi) = range(&need_word(c, "a range A..B")?)?;
                break Cond::Outside {
                    lo,
                    hi,
                    clear: (lo, hi),
                };
            }
            "rises" | "falls" => {
                if value.is_empty() {
                    return Err(format!("expected a value name before {w}"));
                }
                let rise = w == "rises";
                if need_word(c, "by")? != "by" {
                    return Err(format!("expected by after {w} ({w} by 50%)"));
                }
                let n = need_word(c, "an amount (50%, or 100)")?;
                let (num, percent) = match n.strip_suffix('%') {
                    Some(x) => (x, true),
                    None => (n.as_str(), false),
                };
                let by = number(num)?;
                if by < 0.0 {
                    return Err(format!("{n:?}: an amount of at least 0"));
                }
                break Cond::Change { rise, by, percent };
            }
            _ if value.is_empty() => {
                if !valid_name(&w) && !w.chars().all(|c| !c.is_whitespace()) {
                    return Err(format!("{w:?} is not a value name"));
                }
                value = w;
            }
            _ => {
                return Err(format!(
                    "expected a condition (> N, < N, >= N, <= N, == N, != N, outside A..B, rises by N%, falls by N%, absent), found {w:?}"
                ))
            }
        }
    };
    let mut rule = Rule {
        name,
        stat,
        keys,
        value,
        cond,
        for_secs: 0,
        keep_secs: 0,
        severity: "warning".into(),
        summary: String::new(),
        origin,
    };
    let (mut seen_clear, mut seen_for, mut seen_keep) = (false, false, false);
    while c.more() {
        if c.peek() == Some('"') {
            rule.summary = c.quoted()?;
            continue;
        }
        let w = need_word(c, "a clause")?;
        match w.as_str() {
            "for" | "keep" => {
                let d = need_word(c, "a duration (2m, 90s, 1h)")?;
                let secs = duration(&d)?;
                let seen = if w == "for" { &mut seen_for } else { &mut seen_keep };
                if std::mem::replace(seen, true) {
                    return Err(format!("{w} is given twice"));
                }
                if w == "for" {
                    rule.for_secs = secs;
                } else {
                    rule.keep_secs = secs;
                }
            }
            "clear" => {
                if std::mem::replace(&mut seen_clear, true) {
                    return Err("clear is given twice".into());
                }
                let x = need_word(c, "a threshold to resolve at")?;
                match &mut rule.cond {
                    Cond::Cmp {
                        op,
                        threshold,
                        clear,
                    } => {
                        let v = number(&x)?;
                        let ok = match op {
                            Op::Gt | Op::Ge => v <= *threshold,
                            Op::Lt | Op::Le => v >= *threshold,
                            Op::Eq | Op::Ne => {
                                return Err(format!(
                                    "clear does not go with {} (only with > < >= <= and outside)",
                                    op.as_str()
                                ))
                            }
                        };
                        if !ok {
                            return Err(format!(
                                "clear {v}: must be on the ok side of the threshold {threshold} (the alert resolves once the value is no longer {} {v})",
                                op.as_str()
                            ));
                        }
                        *clear = v;
                    }
                    Cond::Outside { lo, hi, clear } => {
                        let (a, b) = range(&x)?;
                        if a < *lo || b > *hi {
                            return Err(format!(
                                "clear {a}..{b}: must lie within {lo}..{hi}"
                            ));
                        }
                        *clear = (a, b);
                    }
                    _ => {
                        return Err(
                            "clear goes with > < >= <= and outside, not with rises, falls or absent"
                                .into(),
                        )
                    }
                }
            }
            "severity" => {
                rule.severity = need_word(c, "a severity (critical, warning, info)")?;
            }
            "summary" => {
                if c.peek() != Some('"') {
                    c.skip_blanks();
                }
                if c.peek() != Some('"') {
                    return Err("expected a quoted summary after summary".into());
                }
                rule.summary = c.quoted()?;
            }
            _ => {
                return Err(format!(
                    "expected for DURATION, clear N, keep DURATION, severity WORD or a \"summary\", found {w:?}"
                ))
            }
        }
    }
    if rule.summary.is_empty() {
        rule.summary = match rule.cond {
            Cond::Absent => format!("{} {{key}}: no data", rule.stat),
            _ => format!(
                "{} {{key}} {} is {{value}} ({} {{threshold}})",
                rule.stat,
                rule.value,
                match &rule.cond {
                    Cond::Cmp { op, .. } => op.as_str(),
                    Cond::Outside { .. } => "outside",
                    Cond::Change { rise: true, .. } => "rose past",
                    Cond::Change { .. } => "fell past",
                    Cond::Absent => "",
                }
            ),
        };
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let text = r#"
# comment
h12   router.errors[H12]   count > 100 for 2m severity critical "{value} H12"
slow  router.service       p95   > 1000 for 5m clear 800 keep 1m
gone  router.requests.app[*]     absent for 2m
gone2 router.requests.app[*.com] count absent
surge router.requests.app  rate  rises by 50%
drop  router.requests.app  rate  falls by 10
odd   runtime.load         sum   outside 0..8 clear 1..7 \
      summary "load {value}"
"#;
        let r = Rules::parse(text, "a.rules").unwrap();
        assert_eq!(r.rules.len(), 7);
        let h = &r.rules[0];
        assert_eq!(h.keys, KeySel::One("H12".into()));
        assert_eq!(h.value, "count");
        assert_eq!(h.for_secs, 120);
        assert_eq!(h.severity, "critical");
        assert_eq!(h.summary, "{value} H12");
        assert_eq!(h.origin, "a.rules:3");
        assert_eq!(
            r.rules[1].cond,
            Cond::Cmp {
                op: Op::Gt,
                threshold: 1000.0,
                clear: 800.0
            }
        );
        assert_eq!(r.rules[1].keep_secs, 60);
        assert_eq!(r.rules[1].keys, KeySel::All);
        assert_eq!(r.rules[2].cond, Cond::Absent);
        assert_eq!(r.rules[2].value, "");
        assert_eq!(r.rules[3].keys, KeySel::Glob("*.com".into()));
        assert_eq!(
            r.rules[4].cond,
            Cond::Change {
                rise: true,
                by: 50.0,
                percent: true
            }
        );
        assert_eq!(
            r.rules[6].cond,
            Cond::Outside {
                lo: 0.0,
                hi: 8.0,
                clear: (1.0, 7.0)
            }
        );
        assert_eq!(r.rules[6].summary, "load {value}");
        assert_eq!(r.rules[1].need(60), 5);
        assert_eq!(r.rules[0].need(60), 2);
        assert_eq!(r.rules[2].need(60), 2);
        assert_eq!(r.rules[4].need(60), 1);
        assert_eq!(r.rules[1].keep(60), 1);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        for (text, want) in [
            ("a router.errors count >", "r:1:24: expected a threshold"),
            ("a router.errors count > x", "r:1:25: expected a number"),
            (
                "\n\nb s count > 1 for 5x",
                "r:3:19: \"5x\" is not a duration",
            ),
            (
                "b s count > 1 clear 2",
                "r:1:21: clear 2: must be on the ok side",
            ),
            (
                "b s count == 1 clear 2",
                "r:1:22: clear does not go with ==",
            ),
            ("b s count rises 5", "r:1:17: expected by after rises"),
            ("b s count boom 5", "r:1:11: expected a condition"),
            ("b s[ count > 1", "r:1:3: \"s[\": a key selection ends in ]"),
            ("b s count > 1 sev x", "r:1:15: expected for DURATION"),
            ("b s count > 1 \"open", "r:1:15: unterminated quoted string"),
            (
                "a s count > 1\na t count > 2",
                "r:2:1: rule \"a\" is already defined at r:1",
            ),
            ("b s > 1", "r:1:5: expected a value name before \">\""),
            ("b s count outside 3..1", "r:1:19: range \"3..1\""),
        ] {
            let e = Rules::parse(text, "r").unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn globs() {
        let g = KeySel::Glob("*.example.com".into());
        assert!(g.matches(Some("api.example.com")));
        assert!(!g.matches(Some("api.example.org")));
        assert!(!g.matches(None));
        assert!(KeySel::Glob("H1?".into()).matches(Some("H12")));
        assert!(!KeySel::Glob("H1?".into()).matches(Some("H123")));
        assert!(KeySel::Glob("a*b*c".into()).matches(Some("aXXbYYc")));
        assert!(KeySel::All.matches(None));
        assert!(KeySel::One("x".into()).matches(Some("x")));
    }
}
