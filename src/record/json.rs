//! A small reader for one flat JSON object per line, into an [`Event`] without allocating
//! per field.

use super::{Event, JsonError, Route, Span, Val};

struct Reader<'a> {
    /// The line, checked as UTF-8 once, so that strings found in it are sliced, not checked
    /// again (slices at ASCII quotes are always on character boundaries).
    text: &'a str,
    b: &'a [u8],
    i: usize,
    /// Where the line starts in the event's arena: a string without escapes is a span of
    /// that copy, so reading it copies nothing.
    base: u32,
    /// Where each `\uXXXX` escape of a lone surrogate starts (decoded as U+FFFD).
    lone: Vec<usize>,
}

/// The first byte at or after `from` that ends a run of plain string text (a quote, a
/// backslash, a control character or DEL), or the end of `b`.
#[inline]
fn next_special(b: &[u8], from: usize) -> usize {
    super::next_escape(b, from).unwrap_or(b.len())
}

fn err(offset: usize, what: &'static str) -> JsonError {
    JsonError { offset, what }
}

impl<'a> Reader<'a> {
    #[inline]
    fn ws(&mut self) {
        // Compact JSON has none: one test in the common case.
        if self.b.get(self.i).is_none_or(|&c| c > b' ') {
            return;
        }
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(err(self.i, what))
        }
    }

    /// Read a string (the opening quote is next): a span of the line's copy in the event's
    /// arena when it has no escapes, else unescaped onto the end of the arena.
    ///
    /// The text between escapes is found sixteen bytes at a time and copied whole; the line
    /// was checked as UTF-8 up front, and cutting it at ASCII bytes keeps it so.
    #[inline]
    fn string(&mut self, ev: &mut Event) -> Result<Span, JsonError> {
        self.i += 1;
        let start = self.i;
        let first = next_special(self.b, start);
        // Fast path: no escapes up to the closing quote.
        if self.b.get(first) == Some(&b'"') {
            self.i = first + 1;
            return Ok(Span {
                start: self.base + start as u32,
                end: self.base + first as u32,
            });
        }
        self.string_escaped(ev, start, first)
    }

    /// [`Reader::string`] of a string with an escape (or an error) at `first`.
    #[inline(never)]
    fn string_escaped(
        &mut self,
        ev: &mut Event,
        start: usize,
        first: usize,
    ) -> Result<Span, JsonError> {
        let (b, text) = (self.b, self.text);
        let lone = &mut self.lone;
        let mut i = first;
        let mut failed: Option<JsonError> = None;
        let span = ev.build_text(|out| {
            out.push_str(&text[start..i]);
            loop {
                let Some(&c) = b.get(i) else {
                    failed = Some(err(i, "unterminated string"));
                    return;
                };
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = b.get(i + 1) else {
                            failed = Some(err(i, "unterminated string"));
                            return;
                        };
                        i += 2;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let Some(hi) = hex4(b, i) else {
                                    failed = Some(err(i, "bad \\u escape"));
                                    return;
                                };
                                i += 4;
                                let c = if (0xd800..0xdc00).contains(&hi)
                                    && b.get(i) == Some(&b'\\')
                                    && b.get(i + 1) == Some(&b'u')
                                {
                                    match hex4(b, i + 2) {
                                        Some(lo) if (0xdc00..0xe000).contains(&lo) => {
                                            i += 6;
                                            char::from_u32(
                                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00),
                                            )
                                        }
                                        _ => None,
                                    }
                                } else {
                                    char::from_u32(hi)
                                };
                                out.push(c.unwrap_or_else(|| {
                                    lone.push(i - 6);
                                    '\u{fffd}'
                                }));
                            }
                            _ => {
                                failed = Some(err(i - 1, "bad escape"));
                                return;
                            }
                        }
                    }
                    0..=0x1f => {
                        failed = Some(err(i, "control character in string"));
                        return;
                    }
                    // DEL stops the scan (it is escaped on output) but is fine here.
                    _ => {
                        out.push(c as char);
                        i += 1;
                    }
                }
                let next = next_special(b, i);
                out.push_str(&text[i..next]);
                i = next;
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        self.i = i + 1;
        Ok(span)
    }

    /// Step over a string (the opening quote is next), checking it as [`Reader::string`]
    /// would but copying nothing.
    fn skip_string(&mut self) -> Result<(), JsonError> {
        let b = self.b;
        let mut i = self.i + 1;
        loop {
            i = next_special(b, i);
            match b.get(i) {
                None => return Err(err(i, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match b.get(i + 1) {
                    None => return Err(err(i, "unterminated string")),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        if hex4(b, i + 2).is_none() {
                            return Err(err(i + 2, "bad \\u escape"));
                        }
                        i += 6;
                    }
                    Some(_) => return Err(err(i + 1, "bad escape")),
                },
                Some(0x7f) => i += 1,
                Some(_) => return Err(err(i, "control character in string")),
            }
        }
        self.i = i + 1;
        Ok(())
    }

    fn number(&mut self) -> Result<Val, JsonError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = self.i;
        // The integer part's value, while it fits (18 digits always do).
        let mut whole: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            whole = whole.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        if self.i == digits || (self.b[digits] == b'0' && self.i > digits + 1) {
            return Err(err(start, "bad number"));
        }
        let short = self.i - digits <= 18;
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.i += 1;
            let f = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            if self.i == f {
                return Err(err(start, "bad number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let e = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            if self.i == e {
                return Err(err(start, "bad number"));
            }
        }
        if !float && short {
            // Below 10^18, so it fits an i64 either sign.
            let n = whole as i64;
            return Ok(Val::Int(if digits > start { -n } else { n }));
        }
        // The line is valid UTF-8 and this run is ASCII, so it is a character run.
        let text = &self.text[start..self.i];
        if !float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Val::Int(n));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Val::Float(f)),
            _ => Err(err(start, "number out of range")),
        }
    }

    fn literal(&mut self, word: &[u8], v: Val) -> Result<Val, JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(err(self.i, "unexpected character"))
        }
    }

    /// Skip a nested value, checking that it is well-formed JSON (so it can be written back
    /// verbatim), and return its raw span in the input. Nesting is tracked on a heap stack, so
    /// deep input cannot overflow the call stack.
    fn skip_nested(&mut self) -> Result<(usize, usize), JsonError> {
        let start = self.i;
        let mut open: Vec<u8> = Vec::new();
        let mut scratch = Event::new();
        'value: loop {
            self.ws();
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    self.i += 1;
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        open.push(c);
                        if c == b'{' {
                            self.nested_key(&mut scratch)?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    scratch.clear();
                    self.string(&mut scratch)?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(b't') => {
                    self.literal(b"true", Val::Null)?;
                }
                Some(b'f') => {
                    self.literal(b"false", Val::Null)?;
                }
                Some(b'n') => {
                    self.literal(b"null", Val::Null)?;
                }
                Some(_) => return Err(err(self.i, "expected a value")),
                None => return Err(err(self.i, "unterminated value")),
            }
            // After a value: close containers, or go on to the next element.
            loop {
                let Some(&c) = open.last() else {
                    return Ok((start, self.i));
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if c == b'{' {
                            self.nested_key(&mut scratch)?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if c == b'{' => {
                        self.i += 1;
                        open.pop();
                    }
                    Some(b']') if c == b'[' => {
                        self.i += 1;
                        open.pop();
                    }
                    Some(_) => return Err(err(self.i, "expected ',' or a closing bracket")),
                    None => return Err(err(self.i, "unterminated value")),
                }
            }
        }
    }

    /// A `"key":` inside a nested object.
    fn nested_key(&mut self, scratch: &mut Event) -> Result<(), JsonError> {
        self.ws();
        if self.peek() != Some(b'"') {
            return Err(err(self.i, "expected a key"));
        }
        scratch.clear();
        self.string(scratch)?;
        self.expect(b':', "expected ':'")
    }
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    s.iter()
        .try_fold(0, |n, &c| Some(n << 4 | (c as char).to_digit(16)?))
}

/// Read `line` into `ev`, keeping only the fields whose names `keep` accepts (all of them
/// with `None`); the rest are still checked, so a malformed line is an error either way.
// Generic over the router, so that a reader's routing (called for every key) is inlined.
pub(super) fn read_object<R: Fn(&str) -> Route + ?Sized>(
    ev: &mut Event,
    line: &[u8],
    route: Option<&R>,
    slots: &mut [Option<Val>],
) -> Result<(), JsonError> {
    let text = crate::find::utf8(line).map_err(|e| err(e.valid_up_to(), "line is not UTF-8"))?;
    let base = ev.push_text(text).start;
    let mut r = Reader {
        text,
        b: line,
        i: 0,
        base,
        lone: Vec::new(),
    };
    r.expect(b'{', "expected an object")?;
    r.ws();
    if r.peek() == Some(b'}') {
        r.i += 1;
    } else {
        loop {
            r.ws();
            if r.peek() != Some(b'"') {
                return Err(err(r.i, "expected a key"));
            }
            let mark = ev.text_len();
            let key = r.string(ev)?;
            r.expect(b':', "expected ':'")?;
            r.ws();
            let to = route.map_or(Route::Event, |route| route(ev.text(key)));
            if to == Route::Skip {
                // Drop the key's text if it had escapes (and so was copied).
                ev.truncate_text(mark);
                match r.peek() {
                    Some(b'"') => r.skip_string()?,
                    Some(b'-' | b'0'..=b'9') => {
                        r.number()?;
                    }
                    Some(b't') => {
                        r.literal(b"true", Val::Null)?;
                    }
                    Some(b'f') => {
                        r.literal(b"false", Val::Null)?;
                    }
                    Some(b'n') => {
                        r.literal(b"null", Val::Null)?;
                    }
                    Some(b'{' | b'[') => {
                        r.skip_nested()?;
                    }
                    _ => return Err(err(r.i, "expected a value")),
                }
                r.ws();
                match r.peek() {
                    Some(b',') => {
                        r.i += 1;
                        continue;
                    }
                    Some(b'}') => {
                        r.i += 1;
                        break;
                    }
                    _ => return Err(err(r.i, "expected ',' or '}'")),
                }
            }
            let val = match r.peek() {
                Some(b'"') => Val::Str(r.string(ev)?),
                Some(b'-' | b'0'..=b'9') => r.number()?,
                Some(b't') => r.literal(b"true", Val::Bool(true))?,
                Some(b'f') => r.literal(b"false", Val::Bool(false))?,
                Some(b'n') => r.literal(b"null", Val::Null)?,
                Some(b'{' | b'[') => {
                    r.lone.clear();
                    let (s, e) = r.skip_nested()?;
                    let raw = std::str::from_utf8(&line[s..e])
                        .map_err(|_| err(s, "value is not UTF-8"))?;
                    // Kept verbatim, except that a lone surrogate escape (which strict
                    // readers reject) is written as the U+FFFD it was read as.
                    Val::Raw(ev.build_text(|out| {
                        let mut from = s;
                        for &at in &r.lone {
                            out.push_str(&raw[from - s..at - s]);
                            out.push_str("\\ufffd");
                            from = at + 6;
                        }
                        out.push_str(&raw[from - s..]);
                    }))
                }
                _ => return Err(err(r.i, "expected a value")),
            };
            match to {
                Route::Event => ev.set_span(key, val),
                Route::Slot(i) => slots[i as usize] = Some(val),
                Route::Both(i) => {
                    slots[i as usize] = Some(val);
                    ev.set_span(key, val);
                }
                Route::Skip => unreachable!("skipped above"),
            }
            r.ws();
            match r.peek() {
                Some(b',') => r.i += 1,
                Some(b'}') => {
                    r.i += 1;
                    break;
                }
                _ => return Err(err(r.i, "expected ',' or '}'")),
            }
        }
    }
    r.ws();
    if r.i != line.len() {
        return Err(err(r.i, "text after the object"));
    }
    Ok(())
}
