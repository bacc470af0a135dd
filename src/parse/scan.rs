//! Byte-level helpers shared by the format parsers: tokens, timestamps, unescaping.

use crate::find::{self, EqOrQuote, QuoteOrBackslash, Space};
use crate::record::{Event, Span};

/// Append the string field `key` to an event known not to hold it yet (envelope fields right
/// after [`Event::clear`]); skips [`Event::set`]'s search for an earlier field.
#[inline(always)]
pub fn put_new(ev: &mut Event, key: &str, val: &str) -> Span {
    let k = ev.push_text(key);
    let v = ev.push_text(val);
    ev.push_named(k, key, crate::record::Val::Str(v));
    v
}

/// [`put_new`] of a value already in the arena, or not text.
#[inline(always)]
pub fn put_new_val(ev: &mut Event, key: &str, val: crate::record::Val) {
    ev.push_new(key, val);
}

/// The first space-delimited token of `s` and what follows the single space after it.
#[inline]
pub fn token(s: &str) -> (&str, &str) {
    match find::first::<Space>(s.as_bytes(), 0) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// `s` without leading spaces.
#[inline]
pub fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// True when `t` starts like an RFC 3339 timestamp (`2012-11-30T06:45:29...`).
#[inline]
pub fn looks_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':'
        && b[5..7].iter().chain(&b[8..10]).all(u8::is_ascii_digit)
}

/// True when `t` is `key=...` with a non-empty key that holds no quote.
#[inline]
pub fn is_kv_token(t: &str) -> bool {
    // The first `=` or `"` is a `=`, not at the start.
    let b = t.as_bytes();
    matches!(find::first::<EqOrQuote>(b, 0), Some(i) if i > 0 && b[i] == b'=')
}

/// Index of the closing unescaped `"` in `b` from `i` (just after the opening quote), or
/// `b.len()` when the quote is never closed.
#[inline]
pub fn quote_end(b: &[u8], i: usize) -> usize {
    quote_end_escaped(b, i).0
}

/// [`quote_end`], and whether the text before it holds a backslash (needs unescaping).
#[inline]
pub fn quote_end_escaped(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut escaped = false;
    while let Some(k) = find::first::<QuoteOrBackslash>(b, i) {
        if b[k] == b'\\' {
            escaped = true;
            i = k + 2;
            if i >= b.len() {
                return (b.len(), true);
            }
        } else {
            return (k, escaped);
        }
    }
    (b.len(), escaped)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Push `raw` into the event's arena with backslash escapes undone: `\"`, `\\`, `\n`, `\t`,
/// `\r`, and with `hex_bytes` also `\xNN` (a raw byte, as Apache writes non-ASCII bytes).
/// Other escapes are kept as written. Bytes that do not form UTF-8 are replaced (lossy).
pub fn push_unescaped(ev: &mut Event, scratch: &mut Vec<u8>, raw: &str, hex_bytes: bool) -> Span {
    let b = raw.as_bytes();
    if memchr::memchr(b'\\', b).is_none() {
        return ev.push_text(raw);
    }
    scratch.clear();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c != b'\\' || i + 1 >= b.len() {
            scratch.push(c);
            i += 1;
            continue;
        }
        if hex_bytes && b[i + 1] == b'x' {
            // A run of `\xNN` escapes is decoded when its bytes are UTF-8; otherwise (say,
            // Latin-1 from an old browser) it is kept as written, so nothing is lost.
            let start = i;
            let mut bytes = Vec::new();
            while i + 3 < b.len() && b[i] == b'\\' && b[i + 1] == b'x' {
                let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) else {
                    break;
                };
                bytes.push(h << 4 | l);
                i += 4;
            }
            if bytes.is_empty() {
                scratch.push(b'\\');
                i += 1;
                continue;
            }
            // Byte k of the run was written as b[start + 4k..start + 4k + 4].
            let mut k = 0;
            while k < bytes.len() {
                match std::str::from_utf8(&bytes[k..]) {
                    Ok(_) => {
                        scratch.extend_from_slice(&bytes[k..]);
                        k = bytes.len();
                    }
                    Err(e) => {
                        let good = e.valid_up_to();
                        scratch.extend_from_slice(&bytes[k..k + good]);
                        let bad = e.error_len().unwrap_or(bytes.len() - k - good);
                        let from = start + 4 * (k + good);
                        scratch.extend_from_slice(&b[from..from + 4 * bad]);
                        k += good + bad;
                    }
                }
            }
            continue;
        }
        let (out, used) = match b[i + 1] {
            b'"' => (b'"', 2),
            b'\\' => (b'\\', 2),
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            _ => (b'\\', 1),
        };
        scratch.push(out);
        i += used;
    }
    let text = String::from_utf8_lossy(scratch);
    ev.push_text(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_stamps() {
        assert_eq!(token("a b c"), ("a", "b c"));
        assert_eq!(token("abc"), ("abc", ""));
        assert!(looks_rfc3339("2012-11-30T06:45:29+00:00"));
        assert!(!looks_rfc3339("2012-11-30 06:45:29"));
        assert!(is_kv_token("a=b"));
        assert!(is_kv_token("sample#x="));
        assert!(!is_kv_token("=b"));
        assert!(!is_kv_token("\"a=b\""));
        assert_eq!(quote_end(b"ab\\\"c\" d", 0), 5);
        assert_eq!(quote_end(b"abc\\", 0), 4);
    }

    #[test]
    fn unescaping() {
        let mut ev = Event::new();
        let mut sc = Vec::new();
        // Bytes that are not UTF-8 stay escaped; the rest of the run is decoded.
        let s = push_unescaped(&mut ev, &mut sc, r#"a\"b\\c\x41\xe4\x42\xc3\xa9"#, true);
        assert_eq!(ev.text(s), "a\"b\\cA\\xe4Bé");
        let s = push_unescaped(&mut ev, &mut sc, r#"\x4"#, true);
        assert_eq!(ev.text(s), "\\x4");
        let s = push_unescaped(&mut ev, &mut sc, r#"esc\t\q\"#, false);
        assert_eq!(ev.text(s), "esc\t\\q\\");
    }
}
