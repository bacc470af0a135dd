//! Units of measure and numbers written with a unit suffix (`37ms`, `1.2s`, `21.00MB`).
//!
//! Two dimensions are known: time (base: seconds) and bytes (base: bytes). Byte multiples are
//! powers of 1024 (`kB` = 1024 B, `MB` = 1024² B, ...), because that is what Heroku's runtime
//! and add-on metrics mean by them (`sample#memory_total=21.00MB` is MiB, `memory-total=15657100kB`
//! is KiB); `KiB`, `MiB`, ... are accepted as the same units. Any other alphabetic suffix
//! (`348836pages`, `3bottles`, `5%`) names a count that cannot be converted: such a value reads
//! as its number when the stat declares no unit, and as no value when it declares one.

use std::fmt;
use std::str::FromStr;

/// A unit a stat's values are converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Ns,
    Us,
    Ms,
    S,
    Min,
    H,
    B,
    KB,
    MB,
    GB,
    TB,
}

/// What a unit measures; only units of the same dimension convert into each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Time,
    Bytes,
}

impl Unit {
    /// The canonical spelling, as `list()` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::Min => "min",
            Unit::H => "h",
            Unit::B => "B",
            Unit::KB => "kB",
            Unit::MB => "MB",
            Unit::GB => "GB",
            Unit::TB => "TB",
        }
    }

    pub fn dim(self) -> Dim {
        match self {
            Unit::Ns | Unit::Us | Unit::Ms | Unit::S | Unit::Min | Unit::H => Dim::Time,
            _ => Dim::Bytes,
        }
    }

    /// Size of the unit in its dimension's base (seconds or bytes).
    pub fn scale(self) -> f64 {
        match self {
            Unit::Ns => 1e-9,
            Unit::Us => 1e-6,
            Unit::Ms => 1e-3,
            Unit::S => 1.0,
            Unit::Min => 60.0,
            Unit::H => 3600.0,
            Unit::B => 1.0,
            Unit::KB => 1024.0,
            Unit::MB => 1024.0 * 1024.0,
            Unit::GB => 1024.0 * 1024.0 * 1024.0,
            Unit::TB => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }

    /// The unit a suffix names, if it is a known one. Time units are case-sensitive (`ms`,
    /// not `MS`); byte units are not (`kB`, `KB`, `kb`, `KiB`).
    pub fn from_suffix(s: &str) -> Option<Unit> {
        Some(match s {
            "ns" => Unit::Ns,
            "us" | "µs" | "μs" => Unit::Us,
            "ms" => Unit::Ms,
            "s" | "sec" | "secs" => Unit::S,
            "m" | "min" | "mins" => Unit::Min,
            "h" | "hr" | "hrs" => Unit::H,
            _ => {
                let eq = |w: &str| s.eq_ignore_ascii_case(w);
                if eq("b") || eq("byte") || eq("bytes") {
                    Unit::B
                } else if eq("kb") || eq("kib") {
                    Unit::KB
                } else if eq("mb") || eq("mib") {
                    Unit::MB
                } else if eq("gb") || eq("gib") {
                    Unit::GB
                } else if eq("tb") || eq("tib") {
                    Unit::TB
                } else {
                    return None;
                }
            }
        })
    }

    /// Size of the unit in whole nanoseconds or bytes.
    fn whole_scale(self) -> i128 {
        match self {
            Unit::Ns => 1,
            Unit::Us => 1_000,
            Unit::Ms => 1_000_000,
            Unit::S => 1_000_000_000,
            Unit::Min => 60_000_000_000,
            Unit::H => 3_600_000_000_000,
            Unit::B => 1,
            Unit::KB => 1 << 10,
            Unit::MB => 1 << 20,
            Unit::GB => 1 << 30,
            Unit::TB => 1 << 40,
        }
    }

    /// Convert `x` from this unit to `to`; `None` across dimensions.
    ///
    /// A short decimal (at most 9 fractional digits, as written in logs) is converted by one
    /// division of exact integers, so the result is the `f64` nearest the true value:
    /// `815us` is `0.815` ms, where multiplying by the ratio of the scales gives
    /// `0.8150000000000001`, which no exact sum can take as the decimal it is.
    pub fn convert(self, x: f64, to: Unit) -> Option<f64> {
        if self == to {
            Some(x)
        } else if self.dim() == to.dim() {
            Some(
                exact_ratio(x, self.whole_scale(), to.whole_scale())
                    .unwrap_or_else(|| x * (self.scale() / to.scale())),
            )
        } else {
            None
        }
    }
}

/// `x · a / b` rounded once, when `x` reads as a short decimal `m / 10^d` and the reduced
/// fraction `m·a / (10^d·b)` has both terms within 2^53 (so both are exact as `f64` and
/// their quotient is correctly rounded).
fn exact_ratio(x: f64, a: i128, b: i128) -> Option<f64> {
    const EXACT: u128 = 1 << 53;
    let (m, d) = crate::stat::exact::decimal(x, 9)?;
    let num = i128::from(m).checked_mul(a)?;
    let den = 10i128.checked_pow(d)?.checked_mul(b)?;
    let (mut n, mut q) = (num.unsigned_abs(), den.unsigned_abs());
    if n > EXACT || q > EXACT {
        let g = gcd(n, q);
        (n, q) = (n / g, q / g);
    }
    let sign = if num < 0 { -1.0 } else { 1.0 };
    (n <= EXACT && q <= EXACT).then(|| sign * (n as f64 / q as f64))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> Result<Unit, String> {
        Unit::from_suffix(s).ok_or_else(|| {
            format!("unknown unit {s:?} (expected ns, us, ms, s, m, h, B, kB, MB, GB or TB)")
        })
    }
}

/// The suffix after a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suffix {
    /// A bare number.
    None,
    /// A known unit.
    Unit(Unit),
    /// An alphabetic suffix that is not a unit (`pages`, `%`): a plain count.
    Other,
}

/// Most digits of a number read without `f64::from_str`: 10^15 < 2^53, so the mantissa is
/// exact in an f64.
const FAST_DIGITS: usize = 15;

/// 10^0 ..= 10^15, all exact in an f64.
const POW10: [f64; FAST_DIGITS + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Split `s` into a number and its suffix: `"37ms"` → `(37, Unit(Ms))`, `"4"` → `(4, None)`,
/// `"348836pages"` → `(348836, Other)`. `None` when `s` does not start with a number or the
/// suffix has anything but letters (or is a lone `%`).
pub fn split_quantity(s: &str) -> Option<(f64, Suffix)> {
    let b = s.as_bytes();
    let mut i = 0;
    let negative = i < b.len() && b[i] == b'-';
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    // The digits as an integer mantissa, for the fast path below.
    let mut mantissa = 0u64;
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        mantissa = mantissa
            .wrapping_mul(10)
            .wrapping_add(u64::from(b[i] - b'0'));
        i += 1;
    }
    let mut digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let frac = i + 1;
        let mut j = frac;
        while j < b.len() && b[j].is_ascii_digit() {
            mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(b[j] - b'0'));
            j += 1;
        }
        frac_digits = j - frac;
        digits += frac_digits;
        if j > frac || digits > 0 {
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    let mut exponent = false;
    // An exponent only when digits follow (`1e3`, `2E-2`), so `1eggs` is 1 egg.
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
            exponent = true;
        }
    }
    let x = if !exponent && digits <= FAST_DIGITS {
        // Clinger's fast path, as `f64::from_str` takes it too: the mantissa and the power
        // of ten are exact in an f64, so one correctly rounded division gives the same
        // (correctly rounded) value as the full parse.
        let x = mantissa as f64 / POW10[frac_digits];
        if negative {
            -x
        } else {
            x
        }
    } else {
        let x: f64 = s[..i].parse().ok()?;
        if !x.is_finite() {
            return None;
        }
        x
    };
    let rest = &s[i..];
    let suffix = if rest.is_empty() {
        Suffix::None
    } else if let Some(u) = Unit::from_suffix(rest) {
        Suffix::Unit(u)
    } else if rest == "%" || rest.chars().all(char::is_alphabetic) {
        Suffix::Other
    } else {
        return None;
    };
    Some((x, suffix))
}

/// Parse a number with an optional unit suffix (`"37ms"`, `"21.00MB"`, `"1.2s"`, `"4"`),
/// converted to `want` when given. A bare number is taken to be in `want` already. `None`
/// when `s` is not a number, or when `want` is given and the suffix is an unknown word or a
/// unit of another dimension. Without `want`, the number is returned as written.
pub fn parse_quantity(s: &str, want: Option<Unit>) -> Option<f64> {
    let (x, suffix) = split_quantity(s)?;
    match (suffix, want) {
        (_, None) | (Suffix::None, Some(_)) => Some(x),
        (Suffix::Unit(u), Some(w)) => u.convert(x, w),
        (Suffix::Other, Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    }

    #[test]
    fn quantities_convert_to_the_declared_unit() {
        assert!(close(parse_quantity("1.2s", Some(Unit::Ms)), 1200.0));
        assert!(close(parse_quantity("37ms", Some(Unit::Ms)), 37.0));
        assert!(close(parse_quantity("37ms", Some(Unit::S)), 0.037));
        assert!(close(parse_quantity("1500us", Some(Unit::Ms)), 1.5));
        assert!(close(parse_quantity("250µs", Some(Unit::Us)), 250.0));
        assert!(close(parse_quantity("2m", Some(Unit::S)), 120.0));
        assert!(close(parse_quantity("1h", Some(Unit::Min)), 60.0));
        assert!(close(parse_quantity("21.00MB", Some(Unit::MB)), 21.0));
        assert!(close(parse_quantity("512kB", Some(Unit::MB)), 0.5));
        assert!(close(parse_quantity("1KB", Some(Unit::B)), 1024.0));
        assert!(close(parse_quantity("1GB", Some(Unit::MB)), 1024.0));
        assert!(close(parse_quantity("10bytes", Some(Unit::B)), 10.0));
        assert!(close(
            parse_quantity("194056863bytes", Some(Unit::KB)),
            189508.655273
        ));
        assert!(close(parse_quantity("-3.5e2ms", Some(Unit::S)), -0.35));
    }

    /// Converted short decimals are the nearest `f64` to the true value, so an exact sum
    /// reads them as the decimals they are.
    #[test]
    fn conversions_of_short_decimals_are_correctly_rounded() {
        let cases: &[(&str, Unit, &str)] = &[
            ("815us", Unit::Ms, "0.815"),
            ("10us", Unit::S, "0.00001"),
            ("1.5h", Unit::Ms, "5400000"),
            ("0.7s", Unit::Min, "0.011666666666666667"),
            ("3ms", Unit::Us, "3000"),
            ("-2.5ms", Unit::S, "-0.0025"),
            ("100kB", Unit::MB, "0.09765625"),
            ("0.3MB", Unit::KB, "307.2"),
            ("1.1TB", Unit::B, "1209462790553.6"),
        ];
        for (text, unit, want) in cases {
            let want: f64 = want.parse().unwrap();
            assert_eq!(
                parse_quantity(text, Some(*unit)),
                Some(want),
                "{text} in {unit}"
            );
        }
        // Past 2^53 a conversion is a product of floats, as before.
        assert!(close(parse_quantity("9e30ns", Some(Unit::S)), 9e21));
    }

    /// The fast path must give exactly what `f64::from_str` gives.
    #[test]
    fn numbers_read_as_from_str_would() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "+7",
            "5.",
            ".5",
            "-.25",
            "0.1",
            "0.3",
            "2.675",
            "123456789012345",
            "1234567890123456",
            "12345678901234567890",
            "0.000000000000001",
            "99999.99999",
            "9007199254740993",
            "1e3",
            "2E-2",
            "-3.5e2",
            "1.7976931348623157e308",
            "000000000000000000001",
            "4.35",
            "1.005",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 18) as usize + 1;
            let text = format!("{:018}", x >> 8);
            let (int, frac) = text[18 - digits..].split_at((x >> 3) as usize % (digits + 1));
            cases.push(format!("{int}.{frac}"));
            cases.push(format!("-{int}{frac}"));
        }
        for s in cases {
            let want: f64 = s.parse().unwrap();
            let (got, suffix) = split_quantity(&s).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
            assert_eq!(suffix, Suffix::None);
            let (got, _) = split_quantity(&format!("{s}ms")).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{s}ms");
        }
    }

    #[test]
    fn bare_numbers_are_in_the_declared_unit() {
        assert!(close(parse_quantity("4", Some(Unit::Ms)), 4.0));
        assert!(close(parse_quantity("4", None), 4.0));
        assert!(close(parse_quantity(".5", None), 0.5));
        assert!(close(parse_quantity("5.", None), 5.0));
    }

    #[test]
    fn unknown_suffixes_are_counts() {
        assert!(close(parse_quantity("348836pages", None), 348836.0));
        assert!(close(parse_quantity("3bottle", None), 3.0));
        assert!(close(parse_quantity("1eggs", None), 1.0));
        assert!(close(parse_quantity("99%", None), 99.0));
        assert_eq!(parse_quantity("348836pages", Some(Unit::B)), None);
        // Without a declared unit a known suffix is read as written.
        assert!(close(parse_quantity("37ms", None), 37.0));
    }

    #[test]
    fn incompatible_or_malformed_is_none() {
        assert_eq!(parse_quantity("37ms", Some(Unit::MB)), None);
        assert_eq!(parse_quantity("21MB", Some(Unit::S)), None);
        for bad in [
            "", "-", ".", "ms", "abc", "1.2.3", "12:30", "1 ms", "1e", "NaN", "inf",
        ] {
            assert!(
                split_quantity(bad).is_none() || bad == "1e",
                "{bad:?} parsed as {:?}",
                split_quantity(bad)
            );
        }
        // `1e` is one `e` (an unknown suffix), not an exponent.
        assert_eq!(split_quantity("1e"), Some((1.0, Suffix::Other)));
    }

    #[test]
    fn unit_names_round_trip() {
        for u in [
            Unit::Ns,
            Unit::Us,
            Unit::Ms,
            Unit::S,
            Unit::Min,
            Unit::H,
            Unit::B,
            Unit::KB,
            Unit::MB,
            Unit::GB,
            Unit::TB,
        ] {
            assert_eq!(u.name().parse::<Unit>(), Ok(u));
        }
        assert_eq!("MiB".parse::<Unit>(), Ok(Unit::MB));
        assert!("MS".parse::<Unit>().is_err());
        assert!("pages".parse::<Unit>().is_err());
    }
}
