//! A cursor over one logical line of a stats file: words, quoted strings, operators.
//!
//! A word is a run of non-blank characters; `"..."` is a quoted string with `\"` and `\\`
//! escapes. `#` at the start of a word (outside quotes) begins a comment that runs to the end
//! of the line, so `sample#memory_total` is a word, not a comment.

/// Characters that end a field name in a condition.
pub const OP_CHARS: &[char] = &['=', '!', '<', '>', '~', '?', '|', '&', '"', '(', ')'];

/// The punctuation a bare (unquoted) field name may hold, besides letters and digits.
pub const FIELD_PUNCT: &str = "_.-:/@#$[]%+";

/// Whether `s` may be written as a bare field name: letters, digits and [`FIELD_PUNCT`].
pub fn bare_field(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || FIELD_PUNCT.contains(c))
}

/// Check a bare field name (one that was not quoted): the error says which character is
/// not allowed.
pub fn check_field(s: &str) -> Result<(), String> {
    match s
        .chars()
        .find(|&c| !(c.is_alphanumeric() || FIELD_PUNCT.contains(c)))
    {
        None => Ok(()),
        Some(c) => Err(format!(
            "field name {s:?} holds {c:?}: a field name is letters, digits and \
             _ . - : / @ # $ [ ] % +, or any text in double quotes"
        )),
    }
}

/// Write a field name as a word the parser reads back: bare when [`bare_field`], quoted
/// otherwise.
pub fn write_field(out: &mut String, s: &str) {
    if bare_field(s) && !s.starts_with('#') {
        out.push_str(s);
    } else {
        quote(out, s);
    }
}

pub struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    /// Where the token read last began (for the column of an error).
    tok: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0, tok: 0 }
    }

    /// The byte offset reached in the line.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Where the token read last began: an error is about it.
    pub fn tok(&self) -> usize {
        self.tok
    }

    /// Make an error point at byte offset `at`.
    pub fn point_at(&mut self, at: usize) {
        self.tok = at;
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
            self.tok = self.pos;
            return Ok(None);
        }
        self.tok = self.pos;
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
        self.tok = start;
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
        self.tok = self.pos;
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
    if needs_quotes {
        quote(out, s);
    } else {
        out.push_str(s);
    }
}

/// Write `s` in double quotes, escaping `"` and `\\`.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// One logical line of a stats file: physical lines joined where one ends in `\\`.
#[derive(Debug, PartialEq, Eq)]
pub struct Logical {
    /// The number of its first physical line.
    pub line: usize,
    pub text: String,
    /// Where each of its physical lines begins in `text`.
    starts: Vec<usize>,
}

impl Logical {
    /// The physical line and column (in characters, from 1) of byte offset `at` of `text`.
    pub fn place(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let k = self.starts.iter().rposition(|&s| s <= at).unwrap_or(0);
        let from = self.starts.get(k).copied().unwrap_or(0);
        let col = self.text.get(from..at).map_or(0, |t| t.chars().count());
        (self.line + k, col + 1)
    }
}

/// Join the physical lines of a stats file into logical lines: a line ending in `\\` goes on
/// with the next.
pub fn logical_lines(text: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut cur: Option<Logical> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (body, cont) = match line.strip_suffix('\\') {
            Some(b) if !b.ends_with('\\') => (b, true),
            _ => (line, false),
        };
        let entry = cur.get_or_insert_with(|| Logical {
            line: i + 1,
            text: String::new(),
            starts: Vec::new(),
        });
        if !entry.text.is_empty() {
            entry.text.push(' ');
        }
        entry.starts.push(entry.text.len());
        entry.text.push_str(body);
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
        let got: Vec<(usize, &str)> = l.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(got, vec![(1, "a    b"), (3, "c"), (4, "d ")]);
        // Columns count from the start of the physical line holding the offset.
        assert_eq!(l[0].place(0), (1, 1));
        assert_eq!(l[0].place(5), (2, 3));
        assert_eq!(l[1].place(1), (3, 2));
    }
}
