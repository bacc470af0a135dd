//! `key=value` message attributes (logfmt, l2met) and the value coercion of the original Pulse.
//!
//! Rules:
//! - tokens are separated by spaces or tabs; a token is `key=value`, `key="quoted value"` or a
//!   bare `key`;
//! - a key is any run of bytes other than space, tab, `=` and `"` (so l2met's
//!   `measure#db.latency` and `sample#memory_total` keep their full name);
//! - a bare key is `true`;
//! - an unquoted value is coerced: empty → `null`, `true`/`false` → booleans, an optional `-`
//!   and 1 to 18 digits → integer, `-?DIGITS.DIGITS` → decimal number, anything else stays a
//!   string (`37ms`, `21.00MB`, `1e3`);
//! - a quoted value is always a string, with `\"`, `\\`, `\n`, `\t`, `\r` undone; an unclosed
//!   quote runs to the end of the message;
//! - a later key replaces an earlier one of the same name (and an envelope field);
//! - tokens with an empty key (a stray `=value` or `"quoted"` text) are skipped.
//!
//! A syslog or `heroku logs` message is read for attributes only when it *looks like logfmt*:
//! its first token is `key=...` ([`looks_logfmt`]). So `at=info method=GET ...` and
//! `source=web.1 sample#load_avg_1m=2.46` are, `Error L10 (output buffer overflow)` and
//! `State changed from up to down` are not.

use super::scan::{push_unescaped, quote_end, quote_end_escaped, skip_spaces};
use crate::find::{self, Blank, KeyEnd, SpaceEqOrQuote};
use crate::record::{Event, Span, Val};

/// True when the message's first token is `key=...`.
#[inline]
pub fn looks_logfmt(msg: &str) -> bool {
    // `is_kv_token(token(skip_spaces(msg)).0)` in one search: the first space, `=` or `"` is
    // a `=`, not at the start.
    let b = skip_spaces(msg).as_bytes();
    matches!(find::first::<SpaceEqOrQuote>(b, 0), Some(i) if i > 0 && b[i] == b'=')
}

/// The value an unquoted attribute text stands for, when it is not a string.
#[inline]
pub fn coerce(v: &str) -> Option<Val> {
    coerce_bytes(v.as_bytes())
}

/// [`coerce`] of the bytes of a value (slicing the message as `str` would check both ends
/// for character boundaries).
// Always inlined: with a second caller (crate::pattern) the compiler made it a call in
// parse_attrs_at, +1.8% instructions per router line.
#[inline(always)]
fn coerce_bytes(b: &[u8]) -> Option<Val> {
    let Some(&first) = b.first() else {
        return Some(Val::Null);
    };
    if !(first.is_ascii_digit() || first == b'-' || first == b't' || first == b'f') {
        return None;
    }
    match b {
        b"true" => return Some(Val::Bool(true)),
        b"false" => return Some(Val::Bool(false)),
        _ => {}
    }
    let digits = if first == b'-' { &b[1..] } else { b };
    let int_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    if int_len == digits.len() {
        if int_len > 18 {
            return None;
        }
        let mut n: i64 = 0;
        for &c in digits {
            n = n * 10 + (c - b'0') as i64;
        }
        return Some(Val::Int(if first == b'-' { -n } else { n }));
    }
    let rest = &digits[int_len..];
    if rest.len() >= 2 && rest[0] == b'.' && rest[1..].iter().all(u8::is_ascii_digit) {
        // All ASCII here (sign, digits, point).
        let text = std::str::from_utf8(b).ok()?;
        return text.parse::<f64>().ok().map(Val::Float);
    }
    None
}

/// Add every attribute of `msg` to `ev` (see the module doc); returns how many were read.
pub fn parse_attrs(ev: &mut Event, scratch: &mut Vec<u8>, msg: &str) -> usize {
    parse_attrs_at(ev, scratch, msg, None)
}

/// [`parse_attrs`] for a message already in the event's arena at byte `base`: keys and
/// values that need no unescaping are then spans of it rather than copies.
pub fn parse_attrs_at(
    ev: &mut Event,
    scratch: &mut Vec<u8>,
    msg: &str,
    base: Option<u32>,
) -> usize {
    let b = msg.as_bytes();
    let n = b.len();
    let at = |s: usize, e: usize| {
        base.map(|base| Span {
            start: base + s as u32,
            end: base + e as u32,
        })
    };
    let set = |ev: &mut Event, ks: usize, ke: usize, val: Val| match at(ks, ke) {
        Some(key) => ev.set_span(key, val),
        None => ev.set(&msg[ks..ke], val),
    };
    let mut i = 0;
    let mut count = 0;
    while i < n {
        while i < n && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= n {
            break;
        }
        let ks = i;
        i = find::first::<KeyEnd>(b, i).unwrap_or(n);
        let ke = i;
        if ks == ke {
            if b[i] == b'"' {
                i = (quote_end(b, i + 1) + 1).min(n);
            }
            while i < n && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            continue;
        }
        count += 1;
        // One call of `set` for the three kinds of value, so that it is inlined once.
        let val = if i < n && b[i] == b'=' {
            i += 1;
            if i < n && b[i] == b'"' {
                let (end, escaped) = quote_end_escaped(b, i + 1);
                let span = match at(i + 1, end) {
                    Some(span) if !escaped => span,
                    _ => push_unescaped(ev, scratch, &msg[i + 1..end], false),
                };
                i = (end + 1).min(n);
                Val::Str(span)
            } else {
                let vs = i;
                i = find::first::<Blank>(b, i).unwrap_or(n);
                match coerce_bytes(&b[vs..i]) {
                    Some(val) => val,
                    None => Val::Str(at(vs, i).unwrap_or_else(|| ev.push_text(&msg[vs..i]))),
                }
            }
        } else {
            Val::Bool(true)
        };
        set(ev, ks, ke, val);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ValRef;

    fn attrs(msg: &str) -> serde_json::Value {
        let mut ev = Event::new();
        parse_attrs(&mut ev, &mut Vec::new(), msg);
        let mut out = Vec::new();
        ev.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn coercion_follows_the_original() {
        assert_eq!(coerce(""), Some(Val::Null));
        assert_eq!(coerce("200"), Some(Val::Int(200)));
        assert_eq!(coerce("-7"), Some(Val::Int(-7)));
        assert_eq!(coerce("2.46"), Some(Val::Float(2.46)));
        assert_eq!(coerce("true"), Some(Val::Bool(true)));
        assert_eq!(coerce("false"), Some(Val::Bool(false)));
        for s in [
            "37ms",
            "1.",
            ".5",
            "1e3",
            "-",
            "12345678912345678901",
            "21.00MB",
            "t",
        ] {
            assert_eq!(coerce(s), None, "{s}");
        }
    }

    #[test]
    fn router_line() {
        let v = attrs(
            r#"at=error code=H12 desc="Request timeout" method=GET path="/" dyno=web.1 connect=6ms service=30001ms status=503 bytes=0 ok"#,
        );
        assert_eq!(v["at"], "error");
        assert_eq!(v["desc"], "Request timeout");
        assert_eq!(v["path"], "/");
        assert_eq!(v["service"], "30001ms");
        assert_eq!(v["status"], 503);
        assert_eq!(v["bytes"], 0);
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn l2met_and_edge_cases() {
        let v = attrs("sample#memory_total=21.00MB sample#load_avg_1m=2.46 count#signups=1 measure#db.latency=4ms");
        assert_eq!(v["sample#memory_total"], "21.00MB");
        assert_eq!(v["sample#load_avg_1m"], 2.46);
        assert_eq!(v["count#signups"], 1);
        assert_eq!(v["measure#db.latency"], "4ms");
        let v = attrs(r#"a=foo b=10ms c=cat E="123" d foo= emp="#);
        assert_eq!(v["E"], "123");
        assert_eq!(v["d"], true);
        assert!(v["foo"].is_null() && v["emp"].is_null());
        let v = attrs(r#"y="f\n"y=g"#);
        assert_eq!(v["y"], "g");
        let v = attrs(r#"x="say \"hi\"" =junk "q r" z=1 u="unterminated rest"#);
        assert_eq!(v["x"], "say \"hi\"");
        assert_eq!(v["z"], 1);
        assert_eq!(v["u"], "unterminated rest");
        assert_eq!(v.as_object().unwrap().len(), 3);
        let mut ev = Event::new();
        ev.set_str("host", "envelope");
        parse_attrs(&mut ev, &mut Vec::new(), "host=attr");
        assert_eq!(ev.get("host"), Some(ValRef::Str("attr")));
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn looks_like_logfmt() {
        assert!(looks_logfmt("at=info method=GET"));
        assert!(looks_logfmt(" sample#x=1"));
        assert!(!looks_logfmt("Error L10 (output buffer overflow): x=1"));
        assert!(!looks_logfmt("=x"));
        assert!(!looks_logfmt(""));
        // Only a space ends the first token; a quote before its `=` makes it no key.
        assert!(looks_logfmt("a\tb=c d"));
        assert!(!looks_logfmt("a\"b=c"));
        assert!(!looks_logfmt("ab c=d"));
        assert!(looks_logfmt("  k==\""));
    }
}
