//! Splitting bytes into lines.

/// Iterate over the lines of `buf`, without their `\n` or `\r\n` ending.
///
/// A final line without a newline is yielded too; an empty `buf` yields nothing.
pub fn lines(buf: &[u8]) -> Lines<'_> {
    Lines { buf, pos: 0 }
}

pub struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let (line, advance) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        Some(trim_cr(line))
    }
}

/// Strip one trailing `\r`.
#[inline]
pub fn trim_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

/// Number of lines in `buf` as [`lines`] would yield them.
pub fn count_lines(buf: &[u8]) -> u64 {
    let n = memchr::memchr_iter(b'\n', buf).count() as u64;
    match buf.last() {
        Some(b'\n') | None => n,
        Some(_) => n + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lf_crlf_and_unterminated() {
        let got: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(count_lines(b"a\r\nb\n\nc"), 4);
        assert_eq!(count_lines(b"a\n"), 1);
        assert_eq!(lines(b"").count(), 0);
    }
}
