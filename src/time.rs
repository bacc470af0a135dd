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

/// Parse an RFC 3339 / ISO 8601 timestamp to Unix seconds (with fraction).
///
/// Accepts `2012-11-30T06:45:29+00:00`, `...Z`, fractional seconds of any length, `-00:00`,
/// a space instead of `T`, offsets written `+0000`, and no offset (taken as UTC). Trailing
/// text after a complete timestamp (as in `...Z+00:00`) is ignored.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
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
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let mut scale = 0.1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac += (c - b'0') as f64 * scale;
            scale /= 10.0;
            i += 1;
        }
        if i == start {
            return None;
        }
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
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + min * 60 + sec - offset;
    Some(secs as f64 + frac)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
