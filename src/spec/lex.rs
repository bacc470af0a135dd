//! A cursor over one logical line of a stats file: words, quoted strings, operators.
//!
//! A word is a run of non-blank characters; `"..."` is a quoted string with `\"` and `\\`
//! escapes. `#` at the start of a word (outside quotes) begins a comment that runs to the end
//! of the line, so `sample#memory_total` is a word, not a comment.

/// Characters that end a field name in a condition.
pub const OP_CHARS: &[char] = &['=', '!', '<', '>', '~', '?', '|', '&', '"'];

pub struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0 }
    }

    pub fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// Skip blanks; true when something other than the end of line or a comment follows.
    pub fn more(&mut self) -> bool {
        self.skip_blanks();
        !self.rest().is_empty() && !self.rest().starts_with('#')
    }

    pub fn skip_blanks(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    /// True when the next word (after blanks) is exactly `w`.
    pub fn peek_word_is(&mut self, w: &str) -> bool {
        self.skip_blanks();
        let r = self.rest();
        r.starts_with(w) && r[w.len()..].chars().next().is_none_or(char::is_whitespace)
    }

    pub fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    /// The next character without consuming it.
    pub fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The next word (bare or quoted), or `None` at the end of line or a comment.
    pub fn word(&mut self) -> Result<Option<String>, String> {
        if !self.more() {
            return Ok(None);
        }
        if self.peek() == Some('"') {
            return self.quoted().map(Some);
        }
        let r = self.rest();
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        self.pos += end;
        Ok(Some(r[..end].to_string()))
    }

    /// Read a run of characters up to one `stop` accepts (not consuming it).
    pub fn take_until(&mut self, stop: impl Fn(&str) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if stop(self.rest()) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    /// A quoted string; the cursor is on its opening `"`.
    pub fn quoted(&mut self) -> Result<String, String> {
        debug_assert_eq!(self.peek(), Some('"'));
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                _ => out.push(c),
            }
        }
        Err("unterminated quoted string (a closing \" is missing)".to_string())
    }
}

/// Write `s` as a word the lexer reads back as `s`: bare when it can be, quoted otherwise.
/// `special` lists characters that force quoting in this position.
pub fn write_word(out: &mut String, s: &str, special: &[char]) {
    let needs_quotes = s.is_empty()
        || s.starts_with('#')
        || s.contains("&&")
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || special.contains(&c));
    if !needs_quotes {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Join the physical lines of a stats file into logical lines: a line ending in `\` goes on
/// with the next. Yields (first physical line number, text).
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (body, cont) = match line.strip_suffix('\\') {
            Some(b) if !b.ends_with('\\') => (b, true),
            _ => (line, false),
        };
        let entry = cur.get_or_insert_with(|| (i + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !cont {
            out.extend(cur.take());
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_and_comments() {
        let mut c = Cursor::new(r#"  a  "b c\"d" sample#x # comment"#);
        assert_eq!(c.word().unwrap().as_deref(), Some("a"));
        assert_eq!(c.word().unwrap().as_deref(), Some("b c\"d"));
        assert_eq!(c.word().unwrap().as_deref(), Some("sample#x"));
        assert_eq!(c.word().unwrap(), None);
        assert!(Cursor::new("\"abc").word().is_err());
    }

    #[test]
    fn write_word_round_trips() {
        for s in [
            "plain",
            "",
            "a b",
            "q\"uote",
            "back\\slash",
            "#hash",
            "a|b",
            "x&&y",
        ] {
            let mut out = String::new();
            write_word(&mut out, s, &['|']);
            let mut c = Cursor::new(&out);
            assert_eq!(c.word().unwrap().as_deref(), Some(s), "{out}");
        }
    }

    #[test]
    fn continuation_lines_join() {
        let l = logical_lines("a \\\n  b\nc\r\nd \\\n");
        assert_eq!(
            l,
            vec![
                (1, "a    b".to_string()),
                (3, "c".to_string()),
                (4, "d ".to_string())
            ]
        );
    }
}
