//! Filters: which events a stat counts.
//!
//! A filter is an OR (`||`) of groups, each an AND (blank or `&&`) of conditions on event
//! fields; parentheses in a stats file are multiplied out into that form when parsed. An empty filter matches every event. Evaluation borrows from the event and does not
//! allocate.

use std::fmt;

use super::lex::{check_field, write_field, write_word, Cursor, OP_CHARS};
use super::unit::{parse_quantity, split_quantity, Suffix, Unit};
use crate::record::{same_bytes, Event, ValRef};

/// OR of AND-groups of conditions; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub any: Vec<Vec<Cond>>,
}

/// One condition on one field.
#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub field: String,
    pub test: Test,
}

/// What a condition checks.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `FIELD?`: the field is there (whatever its value, even empty).
    Present,
    /// `!FIELD`: the field is not there.
    Absent,
    /// `FIELD=A|B`: the value equals one of the alternatives.
    Eq(Vec<Lit>),
    /// `FIELD!=A|B`: the field is missing or equals none of them.
    Ne(Vec<Lit>),
    /// `FIELD~A|B`: the value, as text, contains one of them.
    Contains(Vec<String>),
    /// `FIELD!~A|B`: the field is missing or contains none of them.
    NotContains(Vec<String>),
    /// `FIELD<N`, `<=`, `>`, `>=`: the value, as a number, compares so with `N`.
    Cmp(CmpOp, Quantity),
}

/// A literal to compare for equality: its text, and its number when it is a bare number
/// (so `status=500` matches the number 500 and the string "500").
#[derive(Clone, Debug, PartialEq)]
pub struct Lit {
    pub text: String,
    pub num: Option<f64>,
}

impl Lit {
    pub fn new(text: String) -> Lit {
        let num = match split_quantity(&text) {
            Some((x, Suffix::None)) => Some(x),
            _ => None,
        };
        Lit { text, num }
    }
}

/// A number with an optional unit, as written in a comparison (`500`, `1s`, `512MB`).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub text: String,
    pub value: f64,
    pub unit: Option<Unit>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Call `f` with the value as text, formatted on the stack (as `ValRef::write_text` would).
fn with_text<R>(v: ValRef<'_>, f: impl FnOnce(&str) -> R) -> R {
    match v {
        ValRef::Null => f(""),
        ValRef::Bool(b) => f(if b { "true" } else { "false" }),
        ValRef::Int(i) => f(itoa::Buffer::new().format(i)),
        ValRef::Float(x) if !x.is_finite() => f("null"),
        ValRef::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
            f(itoa::Buffer::new().format(x as i64))
        }
        ValRef::Float(x) => f(ryu::Buffer::new().format_finite(x)),
        ValRef::Str(s) | ValRef::Raw(s) => f(s),
    }
}

/// The value as a number: JSON numbers as they are, strings through [`parse_quantity`]
/// (converted to `unit` when given).
pub fn number(v: ValRef<'_>, unit: Option<Unit>) -> Option<f64> {
    match v {
        ValRef::Int(i) => Some(i as f64),
        ValRef::Float(x) => Some(x),
        ValRef::Str(s) => parse_quantity(s, unit),
        _ => None,
    }
}

fn equals(v: ValRef<'_>, lit: &Lit) -> bool {
    match v {
        ValRef::Str(s) | ValRef::Raw(s) => same_bytes(s.as_bytes(), lit.text.as_bytes()),
        ValRef::Int(i) => lit.num == Some(i as f64),
        ValRef::Float(x) => lit.num == Some(x),
        ValRef::Bool(b) => lit.text == if b { "true" } else { "false" },
        ValRef::Null => lit.text.is_empty(),
    }
}

impl Cond {
    #[inline]
    pub fn test(&self, ev: &Event) -> bool {
        self.test_value(ev.get(&self.field))
    }

    /// The test on the field's value already looked up (`None`: the field is missing).
    // Inlined into `pulse-fragment`'s per-event loop over every condition.
    #[inline(always)]
    pub fn test_value(&self, v: Option<ValRef<'_>>) -> bool {
        match &self.test {
            Test::Present => v.is_some(),
            Test::Absent => v.is_none(),
            Test::Eq(lits) => v.is_some_and(|v| lits.iter().any(|l| equals(v, l))),
            Test::Ne(lits) => !v.is_some_and(|v| lits.iter().any(|l| equals(v, l))),
            Test::Contains(subs) => {
                v.is_some_and(|v| with_text(v, |t| subs.iter().any(|s| t.contains(s.as_str()))))
            }
            Test::NotContains(subs) => {
                !v.is_some_and(|v| with_text(v, |t| subs.iter().any(|s| t.contains(s.as_str()))))
            }
            Test::Cmp(op, q) => match v.and_then(|v| number(v, q.unit)) {
                Some(x) => match op {
                    CmpOp::Lt => x < q.value,
                    CmpOp::Le => x <= q.value,
                    CmpOp::Gt => x > q.value,
                    CmpOp::Ge => x >= q.value,
                },
                None => false,
            },
        }
    }
}

impl Filter {
    /// Does the event pass?
    #[inline]
    pub fn matches(&self, ev: &Event) -> bool {
        self.any.is_empty() || self.any.iter().any(|g| g.iter().all(|c| c.test(ev)))
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_empty()
    }

    /// Parse conditions from the cursor up to the end of line or a clause keyword
    /// (`by`, `max-keys`). Parentheses group (`(a=1 || b=2) c=3`); they are multiplied out
    /// into the OR of AND-groups, of at most [`MAX_GROUPS`] groups.
    pub fn parse(c: &mut Cursor<'_>) -> Result<Filter, String> {
        if c.peek_word_is("where") {
            c.eat("where");
        }
        let any = disjunction(c, 0)?;
        c.skip_blanks();
        if c.peek() == Some(')') {
            c.point_at(c.pos());
            return Err(format!("`)` without its `(`; {QUOTE_PARENS}"));
        }
        Ok(Filter { any })
    }
}

/// The most AND-groups a filter may have once its parentheses are multiplied out
/// (`(a || b) (c || d)` is 4: `a c || a d || b c || b d`).
pub const MAX_GROUPS: usize = 64;

const QUOTE_PARENS: &str = "a value holding a parenthesis is written in double quotes \
                            (msg~\"(error)\")";

fn is_end(c: &mut Cursor<'_>) -> bool {
    !c.more() || c.peek_word_is("by") || c.peek_word_is("max-keys")
}

/// An OR (`||`) of conjunctions, up to the end of the filter or a `)`.
fn disjunction(c: &mut Cursor<'_>, depth: usize) -> Result<Vec<Vec<Cond>>, String> {
    let mut any: Vec<Vec<Cond>> = Vec::new();
    let mut first = true;
    loop {
        let groups = conjunction(c, depth)?;
        c.skip_blanks();
        let or = c.rest().starts_with("||");
        if groups.is_empty() && (or || !first) {
            c.point_at(c.pos());
            return Err("`||` needs a condition on each side".into());
        }
        any.extend(groups);
        if any.len() > MAX_GROUPS {
            return Err(too_many());
        }
        if !or {
            return Ok(any);
        }
        c.eat("||");
        first = false;
    }
}

fn too_many() -> String {
    format!(
        "the filter has more than {MAX_GROUPS} alternatives once its parentheses are \
         multiplied out; split it into several stats"
    )
}

/// An AND (blank or `&&`) of conditions and parenthesised groups, up to `||`, `)` or the end,
/// as an OR of AND-groups (empty when there is no condition).
fn conjunction(c: &mut Cursor<'_>, depth: usize) -> Result<Vec<Vec<Cond>>, String> {
    // The AND of no condition: one empty group.
    let mut acc: Vec<Vec<Cond>> = vec![Vec::new()];
    let mut terms = 0;
    // An `&&` not yet followed by its right-hand condition.
    let mut dangling = false;
    let and_error = |c: &mut Cursor<'_>| {
        c.point_at(c.pos());
        Err("`&&` needs a condition on each side".to_string())
    };
    loop {
        if is_end(c) || c.rest().starts_with("||") || c.peek() == Some(')') {
            break;
        }
        if c.rest().starts_with("&&") {
            if terms == 0 || dangling {
                return and_error(c);
            }
            c.eat("&&");
            dangling = true;
            continue;
        }
        dangling = false;
        let term_at = c.pos();
        let term = if c.peek() == Some('(') {
            let open = c.pos();
            c.eat("(");
            let inner = disjunction(c, depth + 1)?;
            c.skip_blanks();
            if !c.eat(")") {
                c.point_at(open);
                return Err("this `(` is not closed: a `)` is missing".into());
            }
            if inner.is_empty() {
                c.point_at(open);
                return Err("empty parentheses: `()` holds no condition".into());
            }
            inner
        } else if c.rest().starts_with("!(") {
            c.point_at(c.pos());
            return Err(
                "`!` applies to one field (!FIELD); a group in parentheses cannot be negated"
                    .into(),
            );
        } else {
            vec![vec![parse_cond(c)?]]
        };
        terms += 1;
        if acc.len() * term.len() > MAX_GROUPS {
            c.point_at(term_at);
            return Err(too_many());
        }
        acc = acc
            .iter()
            .flat_map(|a| {
                term.iter().map(move |t| {
                    let mut g = a.clone();
                    for cond in t {
                        if !g.contains(cond) {
                            g.push(cond.clone());
                        }
                    }
                    g
                })
            })
            .collect();
    }
    if dangling {
        return and_error(c);
    }
    Ok(if terms == 0 { Vec::new() } else { acc })
}

const EXPECTED: &str = "expected a condition: FIELD=VALUE, FIELD!=VALUE, FIELD<N, FIELD<=N, \
                        FIELD>N, FIELD>=N, FIELD~TEXT, FIELD!~TEXT, FIELD? or !FIELD";

fn field_name(c: &mut Cursor<'_>) -> Result<String, String> {
    if c.peek() == Some('"') {
        return c.quoted();
    }
    let name =
        c.take_until(|r| r.starts_with(|ch: char| ch.is_whitespace() || OP_CHARS.contains(&ch)));
    if name.is_empty() {
        return Err(match c.peek() {
            Some(ch) => format!("{EXPECTED}; found {ch:?}"),
            None => EXPECTED.to_string(),
        });
    }
    check_field(name)?;
    Ok(name.to_string())
}

fn parse_cond(c: &mut Cursor<'_>) -> Result<Cond, String> {
    if c.peek() == Some('!') {
        c.eat("!");
        let field = field_name(c)?;
        return Ok(Cond {
            field,
            test: Test::Absent,
        });
    }
    let field = field_name(c)?;
    c.skip_blanks();
    let ops: [(&str, u8); 10] = [
        ("==", b'='),
        ("!=", b'n'),
        ("!~", b'c'),
        ("<=", b'l'),
        (">=", b'g'),
        ("=", b'='),
        ("~", b'~'),
        ("<", b'<'),
        (">", b'>'),
        ("?", b'?'),
    ];
    let Some(&(sym, op)) = ops.iter().find(|(s, _)| c.rest().starts_with(s)) else {
        let found = c.take_until(|r| r.starts_with(char::is_whitespace));
        return Err(if found.is_empty() {
            format!("expected an operator after {field:?} (=, !=, <, <=, >, >=, ~, !~ or ?)")
        } else {
            format!(
                "expected an operator after {field:?} (=, !=, <, <=, >, >=, ~, !~ or ?), found {found:?}"
            )
        });
    };
    c.eat(sym);
    if op == b'?' {
        return Ok(Cond {
            field,
            test: Test::Present,
        });
    }
    let alts = values(c, sym, &field)?;
    let test = match op {
        b'=' | b'n' => {
            let lits = alts.into_iter().map(Lit::new).collect();
            if op == b'=' {
                Test::Eq(lits)
            } else {
                Test::Ne(lits)
            }
        }
        b'~' | b'c' => {
            if alts.iter().any(String::is_empty) {
                return Err(format!("{field}{sym} needs some text to look for"));
            }
            if op == b'~' {
                Test::Contains(alts)
            } else {
                Test::NotContains(alts)
            }
        }
        _ => {
            if alts.len() != 1 {
                return Err(format!("{field}{sym} takes one number, not alternatives"));
            }
            let text = alts.into_iter().next().expect("one");
            let (value, unit) = match split_quantity(&text) {
                Some((x, Suffix::None)) => (x, None),
                Some((x, Suffix::Unit(u))) => (x, Some(u)),
                _ => {
                    return Err(format!(
                        "{field}{sym} needs a number, optionally with a unit (500, 1.5s, 512MB); found {text:?}"
                    ))
                }
            };
            let op = match op {
                b'l' => CmpOp::Le,
                b'g' => CmpOp::Ge,
                b'<' => CmpOp::Lt,
                _ => CmpOp::Gt,
            };
            Test::Cmp(op, Quantity { text, value, unit })
        }
    };
    Ok(Cond { field, test })
}

/// Values after an operator: `A|B|"c d"`, blanks allowed around `|` (but `||` is OR).
fn values(c: &mut Cursor<'_>, sym: &str, field: &str) -> Result<Vec<String>, String> {
    let mut alts = Vec::new();
    c.skip_blanks();
    loop {
        let v = if c.peek() == Some('"') {
            c.quoted()?
        } else {
            let v = c.take_until(|r| {
                r.starts_with(|ch: char| ch.is_whitespace() || matches!(ch, '|' | '"' | '(' | ')'))
                    || r.starts_with("&&")
            });
            if c.peek() == Some('(') {
                c.point_at(c.pos());
                return Err(format!("{field}{sym}{v}(...: {QUOTE_PARENS}"));
            }
            v.to_string()
        };
        if v.is_empty() && (c.rest().starts_with('|') && !c.rest().starts_with("||")) {
            return Err(format!("empty alternative in {field}{sym}"));
        }
        alts.push(v);
        let save = c.rest().len();
        c.skip_blanks();
        if c.rest().starts_with('|') && !c.rest().starts_with("||") {
            c.eat("|");
            c.skip_blanks();
            continue;
        }
        if c.rest().len() != save && c.rest().starts_with('"') {
            return Err(format!("unexpected quoted text after {field}{sym}VALUE"));
        }
        break;
    }
    Ok(alts)
}

fn write_alts(out: &mut String, alts: impl Iterator<Item = impl AsRef<str>>) {
    for (i, a) in alts.enumerate() {
        if i > 0 {
            out.push('|');
        }
        write_word(out, a.as_ref(), &['|', '(', ')']);
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let field = |out: &mut String| write_field(out, &self.field);
        match &self.test {
            Test::Absent => {
                out.push('!');
                field(&mut out);
            }
            Test::Present => {
                field(&mut out);
                out.push('?');
            }
            Test::Eq(l) | Test::Ne(l) => {
                field(&mut out);
                out.push_str(if matches!(self.test, Test::Eq(_)) {
                    "="
                } else {
                    "!="
                });
                write_alts(&mut out, l.iter().map(|l| l.text.as_str()));
            }
            Test::Contains(s) | Test::NotContains(s) => {
                field(&mut out);
                out.push_str(if matches!(self.test, Test::Contains(_)) {
                    "~"
                } else {
                    "!~"
                });
                write_alts(&mut out, s.iter());
            }
            Test::Cmp(op, q) => {
                field(&mut out);
                out.push_str(op.symbol());
                out.push_str(&q.text);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.any.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            for (j, c) in g.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Val;

    fn filter(s: &str) -> Filter {
        let mut c = Cursor::new(s);
        let f = Filter::parse(&mut c).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!(!c.more(), "{s}: left {:?}", c.rest());
        f
    }

    fn ev(fields: &[(&str, Val)]) -> Event {
        let mut e = Event::new();
        for (k, v) in fields {
            e.set(k, *v);
        }
        e
    }

    fn s(e: &mut Event, k: &str, v: &str) {
        e.set_str(k, v);
    }

    #[test]
    fn equality_matches_numbers_and_strings() {
        let f = filter("status=500|502 at=error");
        let mut e = ev(&[("status", Val::Int(502))]);
        s(&mut e, "at", "error");
        assert!(f.matches(&e));
        let mut e2 = Event::new();
        s(&mut e2, "status", "500");
        s(&mut e2, "at", "error");
        assert!(f.matches(&e2));
        e2.set("status", Val::Float(500.0));
        assert!(f.matches(&e2));
        e2.set("status", Val::Int(503));
        assert!(!f.matches(&e2));
        assert!(!f.matches(&Event::new()));
    }

    #[test]
    fn inequality_is_true_for_missing_fields() {
        let f = filter(r#"http_host!="127.0.0.1""#);
        let mut e = Event::new();
        assert!(f.matches(&e));
        s(&mut e, "http_host", "127.0.0.1");
        assert!(!f.matches(&e));
        s(&mut e, "http_host", "10.0.0.1");
        assert!(f.matches(&e));
    }

    #[test]
    fn presence_absence_and_booleans() {
        let f = filter("unparsed? !msg slug_url=true");
        let mut e = ev(&[("unparsed", Val::Bool(true)), ("slug_url", Val::Bool(true))]);
        assert!(f.matches(&e));
        s(&mut e, "msg", "x");
        assert!(!f.matches(&e));
        let g = filter(r#"key="""#);
        assert!(g.matches(&ev(&[("key", Val::Null)])));
        assert!(!g.matches(&Event::new()));
    }

    #[test]
    fn numeric_comparisons_understand_units() {
        let f = filter("service>=1s service<2000ms");
        let mut e = Event::new();
        for (v, want) in [
            ("1.5s", true),
            ("999ms", false),
            ("2s", false),
            ("1000ms", true),
        ] {
            s(&mut e, "service", v);
            assert_eq!(f.matches(&e), want, "{v}");
        }
        // A bare number is taken in the literal's unit.
        e.set("service", Val::Int(1));
        assert!(f.matches(&e));
        // Not a number, or another dimension: false.
        s(&mut e, "service", "slow");
        assert!(!f.matches(&e));
        s(&mut e, "service", "1500MB");
        assert!(!f.matches(&e));
        let g = filter("status >= 500 status < 600");
        assert!(g.matches(&ev(&[("status", Val::Int(503))])));
        assert!(!g.matches(&ev(&[("status", Val::Int(404))])));
        let h = filter("mem>512MB");
        let mut m = Event::new();
        s(&mut m, "mem", "1GB");
        assert!(h.matches(&m));
        s(&mut m, "mem", "500000kB");
        assert!(!h.matches(&m));
    }

    #[test]
    fn substring_and_not_substring() {
        let f = filter(r#"msg~"[error]" level=crit"#);
        let mut e = Event::new();
        s(
            &mut e,
            "msg",
            "2012/01/01 [error] 123#0: upstream timed out",
        );
        s(&mut e, "level", "crit");
        assert!(f.matches(&e));
        s(&mut e, "msg", "[warn] x");
        assert!(!f.matches(&e));
        let g = filter("queue~ps.kill.|ps.stop. path!~/health");
        let mut q = Event::new();
        s(&mut q, "queue", "ps.kill.42");
        assert!(g.matches(&q));
        s(&mut q, "path", "/healthcheck");
        assert!(!g.matches(&q));
        // Numbers are searched as text.
        assert!(filter("status~50").matches(&ev(&[("status", Val::Int(503))])));
        assert!(filter("x~.5").matches(&ev(&[("x", Val::Float(2.5))])));
    }

    #[test]
    fn or_groups_and_explicit_and() {
        let f = filter("at=start && fn=join || event=start");
        let mut e = Event::new();
        s(&mut e, "at", "start");
        assert!(!f.matches(&e));
        s(&mut e, "fn", "join");
        assert!(f.matches(&e));
        let mut e2 = Event::new();
        s(&mut e2, "event", "start");
        assert!(f.matches(&e2));
        assert_eq!(f.any.len(), 2);
        assert!(filter("").matches(&Event::new()));
    }

    #[test]
    fn stops_at_clause_keywords() {
        let mut c = Cursor::new("where a=1 b? by host");
        let f = Filter::parse(&mut c).unwrap();
        assert_eq!(f.any[0].len(), 2);
        assert!(c.peek_word_is("by"));
    }

    #[test]
    fn errors_say_what_was_expected() {
        for (src, want) in [
            ("status", "expected an operator after \"status\""),
            ("status 500", "expected an operator after \"status\""),
            ("=5", "expected a condition"),
            ("status>abc", "needs a number"),
            ("status>1|2", "one number"),
            ("a=1 ||", "`||` needs a condition"),
            ("|| a=1", "`||` needs a condition"),
            ("msg~\"x", "unterminated"),
            ("msg~\"\"", "needs some text"),
            ("a=1||", "`||` needs a condition"),
            ("a=1 &&", "`&&` needs a condition"),
            ("a=1 && || b=2", "needs a condition"),
            ("&& a=1", "`&&` needs a condition"),
        ] {
            let err = Filter::parse(&mut Cursor::new(src)).unwrap_err();
            assert!(err.contains(want), "{src}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for src in [
            r#"source=heroku ps=router status>=500 status<600"#,
            r#"msg~"[error]" http_host!="127.0.0.1" || !site a?"#,
            r#"path="/a b"|"x|y" service<=1.5s"#,
            r#""odd field"=1 code!~H1|H2"#,
        ] {
            let f = filter(src);
            let again = filter(&f.to_string());
            assert_eq!(f, again, "{src} -> {f}");
        }
    }
}
