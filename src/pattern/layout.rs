//! Time layouts of custom line formats: strftime-like tokens read back into RFC 3339.
//!
//! | token | reads |
//! |---|---|
//! | `%Y` | a four-digit year |
//! | `%y` | a two-digit year, 2000-2099 (`69`-`99`: 1969-1999) |
//! | `%m` | a month, 1 or 2 digits |
//! | `%b` | an English month name, abbreviated (`Jan`) or in full (`January`), any case |
//! | `%d`, `%e` | a day of the month, 1 or 2 digits, after an optional space (`Feb  3`) |
//! | `%H`, `%M`, `%S` | hour (0-23), minute, second (0-60), 1 or 2 digits |
//! | `%f` | a fraction of a second, 1 to 9 digits (write `%S.%f` or `%S,%f`) |
//! | `%z` | a zone: `Z`, `+hh:mm`, `+hhmm` or `+hh` (or `-`) |
//! | `%a` | an English weekday name, abbreviated or in full (read, not checked) |
//! | `%s` | Unix seconds, with an optional `.fraction` |
//! | `%T`, `%F` | `%H:%M:%S`, `%Y-%m-%d` |
//! | `%%` | a `%` |
//!
//! Any other character matches itself. A layout without a year takes the year given (the
//! `--year` of RFC 3164 stamps); one without `%z` is UTC, as BSD syslog stamps are read. The
//! result is `YYYY-MM-DDTHH:MM:SS[.fraction]` and `Z` or the offset as `±hh:mm`.

/// One piece of a layout.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    Lit(char),
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    Hour,
    Minute,
    Second,
    Frac,
    Zone,
    Weekday,
    Epoch,
}

/// A parsed time layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    items: Vec<Item>,
    pub text: String,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl Layout {
    /// Parse a layout; it must name a whole time: `%s`, or a month, a day, an hour and a
    /// minute.
    pub fn parse(text: &str) -> Result<Layout, String> {
        let mut items = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                items.push(Item::Lit(c));
                continue;
            }
            match chars.next() {
                Some('Y') => items.push(Item::Year4),
                Some('y') => items.push(Item::Year2),
                Some('m') => items.push(Item::Month),
                Some('b') | Some('B') | Some('h') => items.push(Item::MonthName),
                Some('d') | Some('e') => items.push(Item::Day),
                Some('H') => items.push(Item::Hour),
                Some('M') => items.push(Item::Minute),
                Some('S') => items.push(Item::Second),
                Some('f') => items.push(Item::Frac),
                Some('z') => items.push(Item::Zone),
                Some('a') | Some('A') => items.push(Item::Weekday),
                Some('s') => items.push(Item::Epoch),
                Some('T') => items.extend([
                    Item::Hour,
                    Item::Lit(':'),
                    Item::Minute,
                    Item::Lit(':'),
                    Item::Second,
                ]),
                Some('F') => items.extend([
                    Item::Year4,
                    Item::Lit('-'),
                    Item::Month,
                    Item::Lit('-'),
                    Item::Day,
                ]),
                Some('%') => items.push(Item::Lit('%')),
                Some(o) => {
                    return Err(format!(
                        "time layout {text:?}: unknown token %{o} (known: %Y %y %m %b %d %e %H %M %S %f %z %a %s %T %F %%)"
                    ))
                }
                None => return Err(format!("time layout {text:?} ends in a lone %")),
            }
        }
        let has = |i: &Item| items.contains(i);
        let whole = has(&Item::Epoch)
            || ((has(&Item::Month) || has(&Item::MonthName))
                && has(&Item::Day)
                && has(&Item::Hour)
                && has(&Item::Minute));
        if !whole {
            return Err(format!(
                "time layout {text:?} does not name a whole time: it needs %s, or a month (%m or %b), a day (%d), an hour (%H) and a minute (%M)"
            ));
        }
        Ok(Layout {
            items,
            text: text.to_string(),
        })
    }

    /// Read `s` (all of it) by this layout and append it to `out` as RFC 3339; `year` is
    /// the year of a layout without one. False (appending nothing) when `s` does not fit.
    pub fn to_rfc3339(&self, s: &str, year: i32, out: &mut String) -> bool {
        let b = s.as_bytes();
        let mut i = 0;
        let (mut y, mut mo, mut d) = (year as i64, 0u32, 0i64);
        let (mut h, mut mi, mut sec) = (0i64, 0i64, 0i64);
        let mut frac: &str = "";
        let mut zone: Option<(u8, i64, i64)> = None;
        let mut epoch: Option<f64> = None;
        let num = |i: &mut usize, min: usize, max: usize| -> Option<i64> {
            let start = *i;
            while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i - start < min {
                return None;
            }
            s[start..*i].parse().ok()
        };
        let name = |i: &mut usize, names: &[&str]| -> Option<usize> {
            let rest = &b[*i..];
            for (n, full) in names.iter().enumerate() {
                let full = full.as_bytes();
                if rest.len() >= full.len() && rest[..full.len()].eq_ignore_ascii_case(full) {
                    *i += full.len();
                    return Some(n);
                }
            }
            for (n, full) in names.iter().enumerate() {
                if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(&full.as_bytes()[..3]) {
                    *i += 3;
                    return Some(n);
                }
            }
            None
        };
        for item in &self.items {
            let ok = match item {
                Item::Lit(c) => {
                    let mut buf = [0u8; 4];
                    let lit = c.encode_utf8(&mut buf).as_bytes();
                    if b[i..].starts_with(lit) {
                        i += lit.len();
                        true
                    } else {
                        false
                    }
                }
                Item::Year4 => num(&mut i, 4, 4).map(|v| y = v).is_some(),
                Item::Year2 => num(&mut i, 2, 2)
                    .map(|v| y = if v >= 69 { 1900 + v } else { 2000 + v })
                    .is_some(),
                Item::Month => num(&mut i, 1, 2).map(|v| mo = v as u32).is_some(),
                Item::MonthName => name(&mut i, &MONTHS).map(|n| mo = n as u32 + 1).is_some(),
                Item::Day => {
                    if b.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    num(&mut i, 1, 2).map(|v| d = v).is_some()
                }
                Item::Hour => num(&mut i, 1, 2).map(|v| h = v).is_some(),
                Item::Minute => num(&mut i, 1, 2).map(|v| mi = v).is_some(),
                Item::Second => num(&mut i, 1, 2).map(|v| sec = v).is_some(),
                Item::Frac => {
                    let start = i;
                    while i < b.len() && i - start < 9 && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    frac = &s[start..i];
                    !frac.is_empty()
                }
                Item::Zone => match read_zone(&b[i..]) {
                    Some((z, len)) => {
                        zone = Some(z);
                        i += len;
                        true
                    }
                    None => false,
                },
                Item::Weekday => name(&mut i, &WEEKDAYS).is_some(),
                Item::Epoch => {
                    let start = i;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                        i += 1;
                    }
                    match s[start..i].parse::<f64>() {
                        Ok(v) => {
                            epoch = Some(v);
                            true
                        }
                        Err(_) => false,
                    }
                }
            };
            if !ok {
                return false;
            }
        }
        if i != b.len() {
            return false;
        }
        if let Some(e) = epoch {
            return match crate::time::unix_seconds(e) {
                Some(secs) => {
                    crate::time::write_rfc3339(out, secs);
                    true
                }
                None => false,
            };
        }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let month_days = match mo {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if !(0..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || !(1..=month_days).contains(&d)
            || h > 23
            || mi > 59
            || sec > 60
        {
            return false;
        }
        let two = |out: &mut String, v: i64| {
            out.push((b'0' + (v / 10 % 10) as u8) as char);
            out.push((b'0' + (v % 10) as u8) as char);
        };
        two(out, y / 100);
        two(out, y % 100);
        out.push('-');
        two(out, mo as i64);
        out.push('-');
        two(out, d);
        out.push('T');
        two(out, h);
        out.push(':');
        two(out, mi);
        out.push(':');
        two(out, sec);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        match zone {
            None | Some((b'Z', _, _)) => out.push('Z'),
            Some((sign, zh, zm)) => {
                out.push(sign as char);
                two(out, zh);
                out.push(':');
                two(out, zm);
            }
        }
        true
    }
}

/// A zone at the start of `b`: (sign or `Z`, hours, minutes) and its length.
fn read_zone(b: &[u8]) -> Option<((u8, i64, i64), usize)> {
    match b.first()? {
        b'Z' | b'z' => Some(((b'Z', 0, 0), 1)),
        &sign @ (b'+' | b'-') => {
            let d = |i: usize| {
                b.get(i)
                    .filter(|c| c.is_ascii_digit())
                    .map(|c| (c - b'0') as i64)
            };
            let zh = d(1)? * 10 + d(2)?;
            let (zm, len) = match (b.get(3), d(3), d(4), d(5)) {
                (Some(b':'), _, Some(a), Some(c)) => (a * 10 + c, 6),
                (_, Some(a), Some(c), _) => (a * 10 + c, 5),
                _ => (0, 3),
            };
            (zh <= 23 && zm <= 59).then_some(((sign, zh, zm), len))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(layout: &str, s: &str) -> Option<String> {
        let l = Layout::parse(layout).unwrap();
        let mut out = String::new();
        l.to_rfc3339(s, 2026, &mut out).then_some(out)
    }

    #[test]
    fn layouts_read_into_rfc3339() {
        assert_eq!(
            read("%Y-%m-%d %H:%M:%S", "2015-03-04 05:06:07").as_deref(),
            Some("2015-03-04T05:06:07Z")
        );
        assert_eq!(
            read("%F %T,%f %z", "2015-03-04 05:06:07,123 +0100").as_deref(),
            Some("2015-03-04T05:06:07.123+01:00")
        );
        assert_eq!(
            read("%Y/%m/%d %H:%M:%S", "2017/05/23 17:39:52").as_deref(),
            Some("2017-05-23T17:39:52Z")
        );
        // No year: the one given; a space-padded day.
        assert_eq!(
            read("%b %e %H:%M:%S", "Feb  3 20:07:26").as_deref(),
            Some("2026-02-03T20:07:26Z")
        );
        assert_eq!(
            read("%d/%b/%Y:%H:%M:%S %z", "17/May/2015:10:05:03 -0730").as_deref(),
            Some("2015-05-17T10:05:03-07:30")
        );
        assert_eq!(
            read("%a %B %d %H:%M:%S %Y", "Tuesday March 10 01:02:03 2020").as_deref(),
            Some("2020-03-10T01:02:03Z")
        );
        assert_eq!(
            read("%s", "1431857103").as_deref(),
            Some("2015-05-17T10:05:03Z")
        );
        assert_eq!(
            read("%y%m%d %H:%M:%S", "991231 23:59:59").as_deref(),
            Some("1999-12-31T23:59:59Z")
        );
    }

    #[test]
    fn times_that_do_not_fit_are_refused() {
        let f = "%Y-%m-%d %H:%M:%S";
        for s in [
            "2015-02-30 00:00:00",
            "2015-13-01 00:00:00",
            "2015-01-01 24:00:00",
            "2015-01-01 00:00:00 trailing",
            "2015-01-01",
            "x015-01-01 00:00:00",
        ] {
            assert_eq!(read(f, s), None, "{s}");
        }
        assert_eq!(read("%b %d %H:%M", "Foo 12 10:00"), None);
    }

    #[test]
    fn bad_layouts_are_errors() {
        assert!(Layout::parse("%H:%M:%S")
            .unwrap_err()
            .contains("whole time"));
        assert!(Layout::parse("%Y-%q").unwrap_err().contains("%q"));
        assert!(Layout::parse("%Y-%m-%d %H:%M %")
            .unwrap_err()
            .contains("lone %"));
    }
}
