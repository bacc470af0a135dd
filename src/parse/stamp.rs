//! Timestamps as application logs write them, and the year and zone of stamps that carry
//! none.
//!
//! [`leading`] reads a timestamp at the start of a line in one of these layouts and says
//! how many bytes it took:
//!
//! | layout | example |
//! |---|---|
//! | ISO 8601, `T` or a space, `.` or `,` fraction, optional zone | `2015-10-18 18:01:47,978`, `2020-08-06T14:25:02.835618Z`, `2025-04-12 00:14:12.837 CEST` |
//! | the same in brackets | `[2016-04-15T20:17:00.310Z]`, `[2017-01-01 12:00:00,123]` |
//! | `yyyy/MM/dd HH:mm:ss[.ffffff]` | `2016/10/25 14:49:34` (nginx, Go `log`) |
//! | `yy/MM/dd HH:mm:ss` | `17/06/09 20:10:40` (Spark, log4j `%d{yy/MM/dd HH:mm:ss}`) |
//! | `yyMMdd HHmmss`, `yyMMdd H:mm:ss` | `081109 203615` (HDFS), `191015  9:46:45` (MySQL query log) |
//! | `[Www Mmm dd HH:mm:ss[.ffffff] yyyy]` | `[Sun Dec 04 04:47:44 2005]` (Apache 2.2; 2.4 adds microseconds) |
//! | `MM-dd HH:mm:ss.SSS` (no year) | `03-17 16:13:38.811` (Android logcat) |
//! | `dd Mon [yyyy ]HH:mm:ss[.SSS]` | `30 May 12:50:13.457` (Redis 3), `01 Mar 2024 12:34:56.789` (Redis 5+) |
//! | epoch seconds or milliseconds | `1496141844`, `1496141844.123`, `1496141844123` |
//!
//! A zone is `Z`, `±hh:mm`, `±hhmm`, `±hh`, or, after a space, one of the abbreviations in
//! [`ZONES`] (an unknown abbreviation makes the stamp no stamp: it is never guessed). A stamp
//! without a zone is read in the zone of [`Ctx::tz`] (`--tz`, default UTC). A stamp without
//! a year gets the year that puts it nearest to, and not more than a day after, the
//! reference time (the input file's modification time, or the clock for a stream); so an
//! archive running from `Dec 31` into `Jan  1` moves on to the next year at New Year, and a
//! `Dec 10` read on Dec 1 is last year's.
//!
//! Stamps are written as RFC 3339 with the fraction as written (a `,` becomes `.`) and the
//! zone as `Z` or `±hh:mm`.

use crate::time::{days_from_civil, month_from_abbrev};

/// Zone abbreviations read after a stamp, with their offsets in minutes. Only unambiguous
/// ones (no `IST`, `CST` is North America's).
pub const ZONES: [(&str, i32); 22] = [
    ("UTC", 0),
    ("GMT", 0),
    ("UT", 0),
    ("WET", 0),
    ("WEST", 60),
    ("BST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("MET", 60),
    ("MEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("JST", 540),
];

/// How the year of a stamp without one is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Year {
    /// Always this year (`--year`).
    Fixed(i32),
    /// Nearest to, and not more than a day after, this time (Unix seconds).
    Near(i64),
}

/// What a stamp is read against: the year rule and the zone of stamps without one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ctx {
    pub year: Year,
    /// Offset in minutes east of UTC for stamps that carry no zone.
    pub tz: i32,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx {
            year: Year::Near(now()),
            tz: 0,
        }
    }
}

impl Ctx {
    /// One year for a layout of a patterns file that has none: `--year`, or the year of
    /// the reference time (patterns' custom formats do not infer a year per line).
    pub fn year_hint(&self) -> i32 {
        match self.year {
            Year::Fixed(y) => y,
            Year::Near(r) => crate::time::civil_from_days(r.div_euclid(86400)).0 as i32,
        }
    }
}

/// The clock, in whole Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The zone a stamp was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// None written: [`Ctx::tz`].
    Local,
    /// Minutes east of UTC (`Z` is 0).
    Offset(i32),
}

/// A stamp's parts, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// `None` when the layout has no year.
    pub year: Option<i64>,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// The fraction's digits as written (may be empty).
    pub frac: &'a str,
    pub zone: Zone,
}

fn num(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A run of digits at `at` (the fraction), and where it ends.
fn digits_run(s: &str, at: usize) -> (&str, usize) {
    let b = s.as_bytes();
    let mut e = at;
    while e < b.len() && b[e].is_ascii_digit() {
        e += 1;
    }
    (&s[at..e], e)
}

/// `HH:MM:SS` at `at` (or `H:MM:SS` when `short_hour`), then an optional `.`/`,` fraction.
/// Returns (h, m, s, frac, end).
fn clock_at(s: &str, at: usize, short_hour: bool) -> Option<(u32, u32, u32, &str, usize)> {
    let b = s.as_bytes();
    let (h, at) = match num(b, at, 2) {
        Some(h) => (h, at + 2),
        None if short_hour => (num(b, at, 1)?, at + 1),
        None => return None,
    };
    if b.get(at) != Some(&b':') || b.get(at + 3) != Some(&b':') {
        return None;
    }
    let mi = num(b, at + 1, 2)?;
    let sec = num(b, at + 4, 2)?;
    let mut end = at + 6;
    let mut frac = "";
    if matches!(b.get(end), Some(b'.' | b',')) && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        let (f, e) = digits_run(s, end + 1);
        frac = f;
        end = e;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some((h, mi, sec, frac, end))
}

/// The zone right after a stamp at `at`: (zone, end). No zone written is [`Zone::Local`]
/// with `end == at`; `None` when a zone-like word is there but unknown.
fn zone_at(s: &str, at: usize) -> Option<(Zone, usize)> {
    let b = s.as_bytes();
    match b.get(at) {
        Some(b'Z' | b'z') if !b.get(at + 1).is_some_and(u8::is_ascii_alphanumeric) => {
            Some((Zone::Offset(0), at + 1))
        }
        Some(&sign @ (b'+' | b'-')) => {
            let h = num(b, at + 1, 2)? as i32;
            let (m, end) = if b.get(at + 3) == Some(&b':') {
                (num(b, at + 4, 2)? as i32, at + 6)
            } else if let Some(m) = num(b, at + 3, 2) {
                (m as i32, at + 5)
            } else {
                (0, at + 3)
            };
            if h > 23 || m > 59 || b.get(end).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            let off = h * 60 + m;
            Some((Zone::Offset(if sign == b'-' { -off } else { off }), end))
        }
        Some(b' ') => {
            // An abbreviation: 2 to 5 capitals, then the end, a space or `]`.
            let w = &b[at + 1..];
            let n = w.iter().take_while(|c| c.is_ascii_uppercase()).count();
            if !(2..=5).contains(&n) || w.get(n).is_some_and(|c| !matches!(c, b' ' | b']')) {
                return Some((Zone::Local, at));
            }
            let word = &s[at + 1..at + 1 + n];
            match ZONES.iter().find(|(z, _)| *z == word) {
                Some(&(_, off)) => Some((Zone::Offset(off), at + 1 + n)),
                // Capitals that are no zone are the message's (`2020-01-01 10:00:00 INFO`),
                // unless they look like one (ends in `T`, as zone names do): never guessed.
                None if n <= 4 && word.ends_with('T') => None,
                None => Some((Zone::Local, at)),
            }
        }
        _ => Some((Zone::Local, at)),
    }
}

/// A stamp at the start of `s` in one of the layouts of the module doc, and the bytes it
/// takes (a closing `]` included; not the space after it).
pub fn leading(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    match b.first()? {
        b'[' => {
            if let Some((st, n)) = iso(&s[1..]) {
                return (b.get(n + 1) == Some(&b']')).then_some((st, n + 2));
            }
            apache(s)
        }
        b'0'..=b'9' => iso(s)
            .or_else(|| slash_ymd(s))
            .or_else(|| yymmdd(s))
            .or_else(|| logcat(s))
            .or_else(|| day_month(s))
            .or_else(|| epoch(s)),
        _ => None,
    }
}

fn valid(st: Stamp<'_>) -> Option<Stamp<'_>> {
    let ok = (1..=12).contains(&st.month)
        && st.day >= 1
        && st.day
            <= st.year.map_or(if st.month == 2 { 29 } else { 31 }, |y| {
                days_in_month(y, st.month)
            })
        && st.day <= days_in_month(2000, st.month);
    ok.then_some(st)
}

/// `yyyy-MM-dd[T ]HH:mm:ss[.f][zone]`.
fn iso(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, sec, frac, end) = clock_at(s, 11, false)?;
    let (zone, end) = zone_at(s, end)?;
    let st = valid(Stamp {
        year: Some(y as i64),
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone,
    })?;
    Some((st, end))
}

/// `yyyy/MM/dd HH:mm:ss[.f]` and `yy/MM/dd HH:mm:ss[.f]`.
fn slash_ymd(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    let (y, at) = if b.get(4) == Some(&b'/') {
        (num(b, 0, 4)? as i64, 5)
    } else if b.get(2) == Some(&b'/') {
        (2000 + num(b, 0, 2)? as i64, 3)
    } else {
        return None;
    };
    let mo = num(b, at, 2)?;
    if b.get(at + 2) != Some(&b'/') {
        return None;
    }
    let d = num(b, at + 3, 2)?;
    if b.get(at + 5) != Some(&b' ') {
        return None;
    }
    let (h, mi, sec, frac, end) = clock_at(s, at + 6, false)?;
    let (zone, end) = zone_at(s, end)?;
    let st = valid(Stamp {
        year: Some(y),
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone,
    })?;
    Some((st, end))
}

/// `yyMMdd HHmmss` (HDFS) and `yyMMdd H:mm:ss` / `yyMMdd HH:mm:ss` (MySQL's query log, the
/// hour space-padded).
fn yymmdd(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    if b.get(6) != Some(&b' ') {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 2)?, num(b, 2, 2)?, num(b, 4, 2)?);
    let (h, mi, sec, frac, end) = if let (Some(h), Some(mi), Some(sec)) =
        (num(b, 7, 2), num(b, 9, 2), num(b, 11, 2))
    {
        if b.get(13).is_some_and(|c| !matches!(c, b' ' | b'\t')) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        (h, mi, sec, "", 13)
    } else {
        let at = if b.get(7) == Some(&b' ') { 8 } else { 7 };
        clock_at(s, at, true)?
    };
    let st = valid(Stamp {
        year: Some(2000 + y as i64),
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone: Zone::Local,
    })?;
    Some((st, end))
}

/// `MM-dd HH:mm:ss.SSS` (logcat; a fraction is required, so `10-12 10:00:00` alone is not
/// taken for a date).
fn logcat(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    if b.get(2) != Some(&b'-') || b.get(5) != Some(&b' ') {
        return None;
    }
    let (mo, d) = (num(b, 0, 2)?, num(b, 3, 2)?);
    let (h, mi, sec, frac, end) = clock_at(s, 6, false)?;
    if frac.is_empty() {
        return None;
    }
    let st = valid(Stamp {
        year: None,
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone: Zone::Local,
    })?;
    Some((st, end))
}

/// `dd Mon [yyyy ]HH:mm:ss[.SSS]` (Redis).
fn day_month(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    if b.get(2) != Some(&b' ') || b.get(6) != Some(&b' ') {
        return None;
    }
    let d = num(b, 0, 2)?;
    let mo = month_from_abbrev(b.get(3..6)?)?;
    let (year, at) = match num(b, 7, 4) {
        Some(y) if b.get(11) == Some(&b' ') => (Some(y as i64), 12),
        _ => (None, 7),
    };
    let (h, mi, sec, frac, end) = clock_at(s, at, false)?;
    let st = valid(Stamp {
        year,
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone: Zone::Local,
    })?;
    Some((st, end))
}

/// `[Www Mmm dd HH:mm:ss[.ffffff] yyyy]` (Apache's error log).
fn apache(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    if b.len() < 26 || b[4] != b' ' || b[8] != b' ' || b[11] != b' ' {
        return None;
    }
    if !b[1..4].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mo = month_from_abbrev(&b[5..8])?;
    let d = match (b[9], b[10]) {
        (b' ', c) if c.is_ascii_digit() => (c - b'0') as u32,
        _ => num(b, 9, 2)?,
    };
    let (h, mi, sec, frac, end) = clock_at(s, 12, false)?;
    if b.get(end) != Some(&b' ') || b.get(end + 5) != Some(&b']') {
        return None;
    }
    let y = num(b, end + 1, 4)?;
    let st = valid(Stamp {
        year: Some(y as i64),
        month: mo,
        day: d,
        hour: h,
        min: mi,
        sec,
        frac,
        zone: Zone::Local,
    })?;
    Some((st, end + 6))
}

/// Epoch seconds (10 digits, optional fraction) or milliseconds (13 digits), years
/// 2001 to 2286, followed by a space.
fn epoch(s: &str) -> Option<(Stamp<'_>, usize)> {
    let b = s.as_bytes();
    let (int, mut end) = digits_run(s, 0);
    let mut frac = "";
    let secs = match int.len() {
        10 => {
            if b.get(end) == Some(&b'.') {
                let (f, e) = digits_run(s, end + 1);
                if f.is_empty() {
                    return None;
                }
                frac = f;
                end = e;
            }
            int.parse::<i64>().ok()?
        }
        13 => {
            frac = &int[10..];
            int[..10].parse::<i64>().ok()?
        }
        _ => return None,
    };
    if b.get(end).is_some_and(|&c| c != b' ') {
        return None;
    }
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400) as u32;
    let (y, mo, d) = crate::time::civil_from_days(days);
    let st = Stamp {
        year: Some(y),
        month: mo,
        day: d,
        hour: rem / 3600,
        min: rem / 60 % 60,
        sec: rem % 60,
        frac,
        zone: Zone::Offset(0),
    };
    Some((st, end))
}

/// The year for a stamp of `month`..`sec` without one (local time `tz` minutes east of
/// UTC), by the rule of `year`.
pub fn year_for(
    year: Year,
    tz: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
) -> Option<i64> {
    match year {
        Year::Fixed(y) => {
            let y = y as i64;
            (day <= days_in_month(y, month)).then_some(y)
        }
        Year::Near(reference) => {
            let (ry, _, _) = crate::time::civil_from_days(reference.div_euclid(86400));
            // The latest year, from next year back, whose stamp is at most a day after
            // the reference (Feb 29 looks further back for a leap year).
            (ry - 8..=ry + 1).rev().find(|&y| {
                day <= days_in_month(y, month)
                    && unix(y, month, day, hour, min, sec) - tz as i64 * 60 <= reference + 86400
            })
        }
    }
}

fn unix(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    days_from_civil(y, mo, d) * 86400 + (h * 3600 + mi * 60 + s) as i64
}

impl Stamp<'_> {
    /// Append the stamp as RFC 3339 (its year and zone from `ctx` when it has none).
    /// False, appending nothing, when no year fits (a Feb 29 under a fixed non-leap year).
    pub fn write(&self, ctx: &Ctx, out: &mut String) -> bool {
        let tz = match self.zone {
            Zone::Local => ctx.tz,
            Zone::Offset(o) => o,
        };
        let year = match self.year {
            Some(y) => y,
            None => match year_for(
                ctx.year, tz, self.month, self.day, self.hour, self.min, self.sec,
            ) {
                Some(y) => y,
                None => return false,
            },
        };
        if !(0..=9999).contains(&year) {
            return false;
        }
        crate::time::push_civil(
            out,
            year,
            self.month,
            self.day as i64,
            self.hour as i64,
            self.min as i64,
            self.sec as i64,
        );
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(self.frac);
        }
        if tz == 0 {
            out.push('Z');
        } else {
            let a = tz.unsigned_abs();
            let sign = if tz < 0 { '-' } else { '+' };
            let _ =
                std::fmt::Write::write_fmt(out, format_args!("{sign}{:02}:{:02}", a / 60, a % 60));
        }
        true
    }
}

/// Parse a `--tz` value: `UTC`, `Z`, an offset (`+02:00`, `-0500`, `+2`) or one of
/// [`ZONES`]. Returns minutes east of UTC.
pub fn parse_tz(s: &str) -> Result<i32, String> {
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(0);
    }
    if let Some(&(_, off)) = ZONES.iter().find(|(z, _)| z.eq_ignore_ascii_case(s)) {
        return Ok(off);
    }
    let bad = || {
        format!("--tz: '{s}' is not UTC, an offset like +02:00 or -0500, or one of the fixed zones {} (named zones with daylight saving are not read: give the offset the log was written in)",
            ZONES.iter().map(|(z, _)| *z).collect::<Vec<_>>().join(", "))
    };
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => (&rest[..2], &rest[2..]),
        None => (rest, "0"),
    };
    let (Ok(h), Ok(m)) = (h.parse::<i32>(), m.parse::<i32>()) else {
        return Err(bad());
    };
    if !(0..=23).contains(&h) || !(0..=59).contains(&m) || h.to_string().len() > 2 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str, ctx: Ctx) -> Option<(String, usize)> {
        let (st, n) = leading(s)?;
        let mut out = String::new();
        st.write(&ctx, &mut out).then_some((out, n))
    }

    const UTC: Ctx = Ctx {
        year: Year::Fixed(2026),
        tz: 0,
    };

    #[test]
    fn layouts() {
        let cases = [
            (
                "2015-10-18 18:01:47,978 INFO",
                "2015-10-18T18:01:47.978Z",
                23,
            ),
            (
                "2020-08-06T14:25:02.835618Z 0 [Note]",
                "2020-08-06T14:25:02.835618Z",
                27,
            ),
            (
                "2025-04-12 00:14:12.837 CEST [1]",
                "2025-04-12T00:14:12.837+02:00",
                28,
            ),
            ("2019-10-16 17:24:15 0 [Note]", "2019-10-16T17:24:15Z", 19),
            (
                "2016-04-15T20:17:00+0130 x",
                "2016-04-15T20:17:00+01:30",
                24,
            ),
            (
                "[2016-04-15T20:17:00.310Z] x",
                "2016-04-15T20:17:00.310Z",
                26,
            ),
            ("2016/10/25 14:49:34 [error]", "2016-10-25T14:49:34Z", 19),
            (
                "2022/09/11 16:37:52.198136 main.go",
                "2022-09-11T16:37:52.198136Z",
                26,
            ),
            ("17/06/09 20:10:40 INFO x", "2017-06-09T20:10:40Z", 17),
            ("081109 203615 148 INFO", "2008-11-09T20:36:15Z", 13),
            ("191015  9:46:45\t    13 Query", "2019-10-15T09:46:45Z", 15),
            (
                "[Sun Dec 04 04:47:44 2005] [error]",
                "2005-12-04T04:47:44Z",
                26,
            ),
            (
                "[Wed Oct 11 14:32:52.123456 2000] [core:error]",
                "2000-10-11T14:32:52.123456Z",
                33,
            ),
            ("03-17 16:13:38.811  1702", "2026-03-17T16:13:38.811Z", 18),
            (
                "30 May 12:50:13.457 * Ready",
                "2026-05-30T12:50:13.457Z",
                19,
            ),
            (
                "01 Mar 2024 12:34:56.789 * Ready",
                "2024-03-01T12:34:56.789Z",
                24,
            ),
            ("1496141844 x", "2017-05-30T10:57:24Z", 10),
            ("1496141844123 x", "2017-05-30T10:57:24.123Z", 13),
        ];
        for (line, want, n) in cases {
            assert_eq!(read(line, UTC), Some((want.to_string(), n)), "{line}");
        }
        let none = [
            "2015-13-18 18:01:47 x",
            "2015-02-30 18:01:47 x",
            "2025-04-12 00:14:12.837 AEXT x",
            "12345 hello",
            "10-12 10:00:00 x",
            "1496141844x",
            "2016/10/25 24:49:34",
            "hello",
            "",
        ];
        for line in none {
            assert_eq!(read(line, UTC), None, "{line}");
        }
        // Capitals that are no zone belong to the message.
        assert_eq!(
            read("2020-01-01 10:00:00 INFO x", UTC).unwrap().1,
            "2020-01-01 10:00:00".len()
        );
    }

    #[test]
    fn zone_of_stamps_without_one() {
        let ctx = Ctx {
            year: Year::Fixed(2026),
            tz: -300,
        };
        assert_eq!(
            read("2015-10-18 18:01:47 x", ctx).unwrap().0,
            "2015-10-18T18:01:47-05:00"
        );
        assert_eq!(
            read("2015-10-18 18:01:47Z x", ctx).unwrap().0,
            "2015-10-18T18:01:47Z"
        );
        assert_eq!(parse_tz("+02:00"), Ok(120));
        assert_eq!(parse_tz("-0530"), Ok(-330));
        assert_eq!(parse_tz("CEST"), Ok(120));
        assert_eq!(parse_tz("utc"), Ok(0));
        assert!(parse_tz("Europe/Paris").is_err());
        assert!(parse_tz("+25").is_err());
    }

    #[test]
    fn years_nearest_and_not_after_the_reference() {
        let at = |y, mo, d, h| unix(y, mo, d, h, 0, 0);
        // Read on 2026-12-01: Dec 10 is last year's, Nov 30 this year's.
        let r = Year::Near(at(2026, 12, 1, 12));
        assert_eq!(year_for(r, 0, 12, 10, 0, 0, 0), Some(2025));
        assert_eq!(year_for(r, 0, 11, 30, 0, 0, 0), Some(2026));
        // A day's slack for a clock or zone a little ahead.
        assert_eq!(year_for(r, 0, 12, 2, 6, 0, 0), Some(2026));
        // An archive across New Year, its file written on Jan 1.
        let r = Year::Near(at(2027, 1, 1, 0) + 5);
        assert_eq!(year_for(r, 0, 12, 31, 23, 59, 59), Some(2026));
        assert_eq!(year_for(r, 0, 1, 1, 0, 0, 1), Some(2027));
        // Feb 29 goes back to a leap year.
        let r = Year::Near(at(2027, 3, 1, 0));
        assert_eq!(year_for(r, 0, 2, 29, 0, 0, 0), Some(2024));
        assert_eq!(year_for(Year::Fixed(2027), 0, 2, 29, 0, 0, 0), None);
        assert_eq!(year_for(Year::Fixed(2028), 0, 2, 29, 0, 0, 0), Some(2028));
    }
}
