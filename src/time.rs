//! Timestamps: reading the ones logs carry, turning them into Unix time.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8], n: usize) -> Option<i64> {
    if b.len() < n {
        return None;
    }
    let mut v = 0i64;
    for &c in &b[..n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// A numeric time as Unix seconds: seconds, or milliseconds when at least 10^11 (past
/// 5138 as seconds, 1973 as milliseconds). `None` outside years 0000 to 9999 (the years
/// RFC 3339 can write): microseconds or a stray large number are no time.
pub fn unix_seconds(f: f64) -> Option<f64> {
    let secs = if f.abs() >= 1e11 { f / 1000.0 } else { f };
    (-62_167_219_200.0..253_402_300_800.0)
        .contains(&secs)
        .then_some(secs)
}

/// Parse an RFC 3339 / ISO 8601 timestamp to Unix seconds (with fraction).
///
/// Accepts `2012-11-30T06:45:29+00:00`, `...Z`, fractional seconds of any length, `-00:00`,
/// a space instead of `T`, offsets written `+0000`, and no offset (taken as UTC). Trailing
/// text after a complete timestamp (as in `...Z+00:00`) is ignored.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let secs = rfc3339_prefix(b)?;
    let (frac, offset) = rfc3339_tail(b)?;
    Some((secs - offset) as f64 + frac)
}

/// [`parse_rfc3339`] for a stream of timestamps, most in the same hour as the one before:
/// the seconds of the date and hour are kept from the last text read, so that reading one
/// whose first 13 bytes (`YYYY-MM-DDTHH`) are the same parses only minutes on.
#[derive(Debug, Default)]
pub struct Rfc3339Reader {
    /// The first 13 bytes of the last timestamp read whole, and their seconds.
    hour: Option<([u8; 13], i64)>,
}

impl Rfc3339Reader {
    /// Exactly [`parse_rfc3339`] of `s`.
    #[inline]
    pub fn read(&mut self, s: &str) -> Option<f64> {
        let b = s.as_bytes();
        let base = match (self.hour, b.get(..13)) {
            (Some((hour, secs)), Some(head)) if *head == hour => {
                if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
                    return None;
                }
                let min = digits(&b[14..], 2)?;
                let sec = digits(b.get(17..)?, 2)?;
                if min > 59 || sec > 60 {
                    return None;
                }
                secs + min * 60 + sec
            }
            _ => {
                let whole = rfc3339_prefix(b)?;
                // The date and hour alone: the text's minutes and seconds taken off.
                let (min, sec) = (digits(&b[14..], 2)?, digits(&b[17..], 2)?);
                let mut head = [0u8; 13];
                head.copy_from_slice(&b[..13]);
                self.hour = Some((head, whole - min * 60 - sec));
                whole
            }
        };
        let (frac, offset) = rfc3339_tail(b)?;
        Some((base - offset) as f64 + frac)
    }
}

/// The whole seconds of `YYYY-MM-DDTHH:MM:SS`, the first 19 bytes of `b`, in the
/// timestamp's own offset.
fn rfc3339_prefix(b: &[u8]) -> Option<i64> {
    let year = digits(b, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(&b[5..], 2)? as u32;
    let day = digits(&b[8..], 2)? as u32;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b.get(11..)?, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let min = digits(&b[14..], 2)?;
    let sec = digits(b.get(17..)?, 2)?;
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec)
}

/// The fraction of a second and the offset (in seconds) written from byte 19 of `b` on.
#[inline]
fn rfc3339_tail(b: &[u8]) -> Option<(f64, i64)> {
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        // The digits as one integer over a power of ten (one division, and the fraction
        // correctly rounded); digits past the 18th are below an f64's precision here.
        const POW10: [f64; 19] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18,
        ];
        let (mut n, mut k) = (0u64, 0usize);
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if k < 18 {
                n = n * 10 + u64::from(c - b'0');
                k += 1;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = n as f64 / POW10[k];
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b.get(i + 1..)?, 2)?;
            let om = match b.get(i + 3) {
                Some(b':') => digits(b.get(i + 4..)?, 2)?,
                _ => digits(b.get(i + 3..)?, 2).unwrap_or(0),
            };
            let off = oh * 3600 + om * 60;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        Some(_) => return None,
    };
    Some((frac, offset))
}

/// Format Unix seconds as RFC 3339 in UTC (`2015-05-17T10:05:03Z`), whole seconds.
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The month number (1-12) of an English three-letter abbreviation (`Jan`..`Dec`, any case).
pub fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    if m.len() != 3 {
        return None;
    }
    // One word compared, not a search of twelve names (a BSD syslog line asks twice). A
    // byte or'ed with 0x20 is a lowercase letter only if it was that letter in either case,
    // so this is a case-insensitive comparison with names all of letters.
    let w = u32::from_le_bytes([m[0], m[1], m[2], 0]) | 0x0020_2020;
    let name = |n: &[u8; 3]| u32::from_le_bytes([n[0], n[1], n[2], 0]);
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    NAMES
        .iter()
        .position(|n| name(n) == w)
        .map(|i| i as u32 + 1)
}

fn push2(out: &mut String, v: i64) {
    out.push((b'0' + (v / 10 % 10) as u8) as char);
    out.push((b'0' + (v % 10) as u8) as char);
}

/// `00` to `99`, each two ASCII digits.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Append `YYYY-MM-DDTHH:MM:SS` (no zone).
pub(crate) fn push_civil(
    out: &mut String,
    year: i64,
    month: u32,
    day: i64,
    h: i64,
    mi: i64,
    sec: i64,
) {
    // Built in place and appended once, two digits at a time from a table: a `push` per
    // character checked the capacity and encoded a char each time, a quarter of the cost of
    // reading a BSD syslog line.
    let mut b = *b"0000-00-00T00:00:00";
    let mut put2 = |at: usize, v: i64| {
        let i = 2 * v.rem_euclid(100) as usize;
        b[at..at + 2].copy_from_slice(&DIGIT_PAIRS[i..i + 2]);
    };
    put2(0, year / 100);
    put2(2, year % 100);
    put2(5, month as i64);
    put2(8, day);
    put2(11, h);
    put2(14, mi);
    put2(17, sec);
    out.push_str(crate::find::utf8(&b).expect("ASCII digits"));
}

/// Convert an Apache/NCSA access-log time (`17/May/2015:10:05:03 +0000`) to RFC 3339
/// (`2015-05-17T10:05:03+00:00`), keeping the offset as written. Appends to `out`; returns
/// false (appending nothing) when `s` is not such a time.
pub fn apache_to_rfc3339(s: &str, out: &mut String) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return false;
    }
    let (Some(day), Some(month), Some(year)) = (
        digits(b, 2),
        month_from_abbrev(&b[3..6]),
        digits(&b[7..], 4),
    ) else {
        return false;
    };
    let (Some(h), Some(mi), Some(sec)) = (
        digits(&b[12..], 2),
        digits(&b[15..], 2),
        digits(&b[18..], 2),
    ) else {
        return false;
    };
    if b[14] != b':' || b[17] != b':' || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    let zone = &b[20..];
    let (sign, zh, zm) = match zone {
        [] => (b'Z', 0, 0),
        [b' ', sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 4 => {
            match (digits(rest, 2), digits(&rest[2..], 2)) {
                (Some(zh), Some(zm)) => (*sign, zh, zm),
                _ => return false,
            }
        }
        _ => return false,
    };
    out.reserve(25);
    push_civil(out, year, month, day, h, mi, sec);
    if sign == b'Z' {
        out.push('Z');
    } else {
        out.push(sign as char);
        push2(out, zh);
        out.push(':');
        push2(out, zm);
    }
    true
}

/// Append Unix seconds as RFC 3339 in UTC, with up to six fraction digits when not whole
/// (`2015-05-17T10:05:03.25Z`).
pub fn write_rfc3339(out: &mut String, secs: f64) {
    let whole = secs.floor();
    let s = format_rfc3339(whole as i64);
    let micros = ((secs - whole) * 1e6).round() as i64;
    if micros == 0 || micros >= 1_000_000 {
        out.push_str(&s);
        return;
    }
    out.push_str(&s[..s.len() - 1]);
    let frac = format!(".{micros:06}");
    out.push_str(frac.trim_end_matches('0'));
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_names_in_any_case_and_nothing_else() {
        assert_eq!(month_from_abbrev(b"Jan"), Some(1));
        assert_eq!(month_from_abbrev(b"dEC"), Some(12));
        assert_eq!(month_from_abbrev(b"SEP"), Some(9));
        // Other bytes, and other lengths.
        assert_eq!(month_from_abbrev(b"J\x01n"), None);
        assert_eq!(month_from_abbrev(b"Ja\x0e"), None);
        assert_eq!(month_from_abbrev(b"Janu"), None);
        assert_eq!(month_from_abbrev(b"Ja"), None);
    }

    #[test]
    fn the_hour_reader_reads_as_parse_rfc3339() {
        let texts = [
            "2026-01-01T00:00:00.000296+00:00",
            "2026-01-01T00:59:59.999999+00:00",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:05:61Z",
            "2026-01-01T00:5:00Z",
            "2026-01-01T00-05:00Z",
            "2026-01-01T00:05",
            "2026-01-01T00",
            "2026-01-01T00:05:0x",
            "2026-01-01T00:05:07",
            "2026-01-01T00:05:07-07:00",
            "2026-01-01T01:00:00Z",
            "2026-01-01t01:00:00Z",
            "2026-01-01 01:00:00,5",
            "2026-02-30T01:00:00Z",
            "2026-13-01T01:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T01:02:03.Z",
            "1969-12-31T23:59:59.5Z",
            "2026-01-01T01:02:03+0530",
            "",
            "not a time at all",
        ];
        let mut r = Rfc3339Reader::default();
        // Each text after each other text, so every one is read both with the hour kept
        // from a different text and with its own.
        for a in texts {
            for b in texts {
                for t in [a, b, b] {
                    assert_eq!(r.read(t), parse_rfc3339(t), "{t} after {a}");
                }
            }
        }
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339("2012-11-30T06:45:29+00:00"),
            Some(1354257929.0)
        );
        assert_eq!(
            parse_rfc3339("2010-10-06T21:51:04-07:00"),
            Some(1286427064.0)
        );
        assert_eq!(
            parse_rfc3339("2012-12-10T03:51:41Z+00:00"),
            parse_rfc3339("2012-12-10T03:51:41Z")
        );
        let f = parse_rfc3339("2019-07-21T22:13:34.598992Z").unwrap();
        assert!((f - 1563747214.598992).abs() < 1e-5);
        assert_eq!(
            parse_rfc3339("2015-05-17 10:05:03+0000"),
            Some(1431857103.0)
        );
        assert_eq!(parse_rfc3339("nope"), None);
        assert_eq!(parse_rfc3339("2015-13-01T00:00:00Z"), None);
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(format_rfc3339(1431857103), "2015-05-17T10:05:03Z");
    }
    #[test]
    fn apache_and_bsd_times() {
        let mut s = String::new();
        assert!(apache_to_rfc3339("17/May/2015:10:05:03 +0000", &mut s));
        assert_eq!(s, "2015-05-17T10:05:03+00:00");
        s.clear();
        assert!(apache_to_rfc3339("23/Jan/2012:21:24:19 -0800", &mut s));
        assert_eq!(s, "2012-01-23T21:24:19-08:00");
        assert_eq!(parse_rfc3339(&s), parse_rfc3339("2012-01-24T05:24:19Z"));
        s.clear();
        assert!(!apache_to_rfc3339("17/Mai/2015:10:05:03 +0000", &mut s));
        assert!(!apache_to_rfc3339("17/May/2015:10:05:03 +00", &mut s));
        assert!(s.is_empty());
        write_rfc3339(&mut s, 1431857103.25);
        assert_eq!(s, "2015-05-17T10:05:03.25Z");
    }
}
