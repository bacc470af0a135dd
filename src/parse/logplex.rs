//! Logplex HTTPS drain bodies: octet-counted frames (RFC 6587, `LEN SP SYSLOG-MSG`), read
//! line by line.
//!
//! A line that starts with `DIGITS SP <` holds one or more frames. Each frame's count is
//! trusted when it ends exactly at the end of the line, one byte past it (the LF the count
//! included), or where another frame header starts (after optional whitespace). Otherwise the
//! count is wrong (damaged captures, hand-edited samples): the frame is cut at the next *frame
//! boundary* — a place where `DIGITS SP <DIGITS>DIGIT SP` starts and the byte before is not a
//! digit — or at the end of the line, and counted as a bad count. A frame whose count reaches
//! past the line end is cut there. Frames never span lines, so a message holding a newline
//! loses its continuation line (which is then read on its own).

/// `DIGITS SP <DIGITS>DIGIT SP` at `p`: the count and where the frame's body starts.
fn header(b: &[u8], p: usize) -> Option<(usize, usize)> {
    let mut i = p;
    let mut n: usize = 0;
    while i < b.len() && b[i].is_ascii_digit() && i - p < 9 {
        n = n * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    if i == p || b.get(i) != Some(&b' ') || b.get(i + 1) != Some(&b'<') {
        return None;
    }
    let body = i + 1;
    let mut j = body + 1;
    while j < b.len() && b[j].is_ascii_digit() && j - body <= 3 {
        j += 1;
    }
    if j == body + 1 || b.get(j) != Some(&b'>') {
        return None;
    }
    let k = j + 1;
    let mut m = k;
    while m < b.len() && b[m].is_ascii_digit() {
        m += 1;
    }
    if m == k || b.get(m) != Some(&b' ') {
        return None;
    }
    Some((n, body))
}

/// True when `line` starts with a frame header.
pub fn starts_with_frame(line: &[u8]) -> bool {
    header(line, 0).is_some()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Does a frame that declares it ends at `end` end at a plausible place?
fn end_ok(b: &[u8], end: usize, depth: u8) -> bool {
    if end == b.len() || end == b.len() + 1 {
        return true;
    }
    if end > b.len() {
        return false;
    }
    let q = skip_ws(b, end);
    if q == b.len() {
        return true;
    }
    match header(b, q) {
        None => false,
        // A digit just before the header: the header may be the tail of a longer number
        // (`...00.291 <158>1` read 1 byte short). Trust it only if its own count checks out.
        Some((count, body)) if q == end && end > 0 && b[end - 1].is_ascii_digit() => {
            depth == 0 && end_ok(b, body + count, 1)
        }
        Some(_) => true,
    }
}

/// The first frame boundary at or after `from`.
fn next_boundary(b: &[u8], from: usize) -> Option<usize> {
    for lt in memchr::memchr_iter(b'<', &b[from..]) {
        let k = from + lt;
        if k < 2 || b[k - 1] != b' ' {
            continue;
        }
        let mut p = k - 1;
        while p > from && b[p - 1].is_ascii_digit() {
            p -= 1;
        }
        if p == k - 1 || (p > 0 && b[p - 1].is_ascii_digit()) {
            continue;
        }
        if header(b, p).is_some() {
            return Some(p);
        }
    }
    None
}

/// One frame of a line: the byte range of its body and whether its count was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub start: usize,
    pub end: usize,
    pub bad_count: bool,
}

/// The frames of a line that [`starts_with_frame`]. Text between frames that is not a frame
/// is yielded as a frame with a bad count (it then fails to parse and is kept as unparsed).
pub fn frames(line: &[u8]) -> Frames<'_> {
    Frames { b: line, pos: 0 }
}

pub struct Frames<'a> {
    b: &'a [u8],
    pos: usize,
}

fn trim_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    end
}

impl Iterator for Frames<'_> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let b = self.b;
        let pos = skip_ws(b, self.pos);
        if pos >= b.len() {
            return None;
        }
        let Some((count, body)) = header(b, pos) else {
            let end = next_boundary(b, pos + 1).unwrap_or(b.len());
            self.pos = end;
            return Some(Frame {
                start: pos,
                end: trim_end(b, pos, end),
                bad_count: true,
            });
        };
        let end = body + count;
        if end_ok(b, end, 0) {
            let end = end.min(b.len());
            self.pos = end;
            return Some(Frame {
                start: body,
                end: trim_end(b, body, end),
                bad_count: false,
            });
        }
        let end = next_boundary(b, body + 1).unwrap_or(b.len());
        self.pos = end;
        Some(Frame {
            start: body,
            end: trim_end(b, body, end),
            bad_count: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<(&str, bool)> {
        frames(line.as_bytes())
            .map(|f| (&line[f.start..f.end], f.bad_count))
            .collect()
    }

    #[test]
    fn exact_short_by_lf_and_several() {
        let f1 = "<40>1 2012-11-30T06:45:29+00:00 host app web.3 - up";
        let line = format!("{} {f1}", f1.len());
        assert_eq!(split(&line), vec![(f1, false)]);
        let line = format!("{} {f1}", f1.len() + 1);
        assert_eq!(split(&line), vec![(f1, false)]);
        let f2 = "<40>1 2012-11-30T06:45:29+00:00 host app web.3 - 168";
        let line = format!("{} {f2}{} {f1}", f2.len(), f1.len() + 1);
        assert_eq!(split(&line), vec![(f2, false), (f1, false)]);
        let line = format!("{} {f1} {} {f2}", f1.len() + 1, f2.len());
        assert_eq!(split(&line), vec![(f1, false), (f2, false)]);
    }

    #[test]
    fn recovers_from_wrong_counts() {
        // The sample1 trap: both counts include a missing LF.
        let a = "<172>1 2017-08-28T08:36:13+00:00 host heroku logplex - Error L10 (output buffer overflow): 302626 messages dropped since 2017-08-28T08:07:27+00:00.";
        let b = "<158>1 2017-08-28T08:36:13.461949+00:00 host heroku router - at=info status=400";
        let line = format!("{} {a}{} {b}", a.len() + 1, b.len() + 1);
        assert_eq!(split(&line), vec![(a, true), (b, false)]);
        // Too short, too long.
        let line = format!("{} {b}", b.len() - 3);
        assert_eq!(split(&line), vec![(b, true)]);
        let line = format!("{} {b}", b.len() + 4);
        assert_eq!(split(&line), vec![(b, true)]);
        // Junk after a frame: its count fits nothing, so the frame runs to the line end.
        let line = format!("{} {b} junk", b.len());
        let whole = format!("{b} junk");
        assert_eq!(split(&line), vec![(whole.as_str(), true)]);
        assert!(starts_with_frame(b"12 <1>1 x"));
        assert!(!starts_with_frame(b"12 <1> x"));
        assert!(!starts_with_frame(b"12 x"));
    }
}
