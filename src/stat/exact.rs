//! `ExactSum`: a sum that does not depend on the order or grouping of its terms while they
//! are short decimals.
//!
//! Floating-point addition is not associative, so a sum computed over differently split
//! input (chunks, threads, receivers, trees of mergers) may differ in its last bits: the
//! same log read from a file or through a pipe, or merged in another order, would give
//! another `893.2800000000002`. Log values are decimals of a few digits (`200`, `37ms`,
//! `0.17`, `382.17MB`), so each term is read as the shortest decimal `m / 10^d` (d ≤ 9, or
//! ≤ 18 for a square) that is the same `f64`, and the sum is kept as a 128-bit count of
//! units of `10^-scale`: exact, so the same under any split and order. A term that is no
//! such decimal, or an overflow, turns the sum into an `f64` one.
//!
//! Memory: 32 bytes. JSON: an integer while exact and whole (a string of digits beyond 64
//! bits); a decimal number while exact and below 10^15 units (so it reads back exactly);
//! beyond that a string of its exact decimal digits (`"12345678901234567.25"`); a float
//! number once floating; `"inf"`/`"-inf"` on overflow to infinity.

use serde_json::Value;

const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Most fractional digits of a term (of a square: twice this).
const MAX_DIGITS: u32 = 9;
/// A decimal is written as a JSON number while its units are below this (15 significant
/// digits always survive the trip through an `f64`).
const JSON_UNITS: i128 = 1_000_000_000_000_000;

/// `x` as an integer when it is a whole number of magnitude at most 2^53. Within that range
/// the conversion to `i64` cannot saturate and round-trips exactly only for whole numbers,
/// which is cheaper than `fract` (a libm `trunc` call) plus an `f64 → i128` conversion.
#[inline]
fn whole(x: f64) -> Option<i64> {
    if x.abs() <= EXACT {
        let n = x as i64;
        (n as f64 == x).then_some(n)
    } else {
        None
    }
}

/// 10^k as `f64` (exact up to 10^22).
#[inline]
fn pow10f(k: u32) -> f64 {
    const P: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    P[k as usize]
}

/// 10^k as an integer.
#[inline]
fn pow10(k: u32) -> i128 {
    10i128.pow(k)
}

/// The shortest decimal `m / 10^d` with `d <= max_digits` and `|m| < 2^53` that reads as
/// `x`, as `(m, d)`.
#[inline]
pub(crate) fn decimal(x: f64, max_digits: u32) -> Option<(i64, u32)> {
    if let Some(n) = whole(x) {
        return Some((n, 0));
    }
    (1..=max_digits).find_map(|d| {
        let p = pow10f(d);
        let scaled = x * p;
        if scaled.abs() > EXACT {
            return None;
        }
        let m = (scaled + 0.5f64.copysign(scaled)) as i64;
        (m as f64 / p == x).then_some((m, d))
    })
}

/// A sum of terms: exact in units of `10^-scale`, or a float.
#[derive(Clone, Copy, Debug)]
pub enum ExactSum {
    Exact { units: i128, scale: u32 },
    Float(f64),
}

/// Sums are equal when their values are (`1.50` is `1.5`; a float sum written as `2.5`
/// reads back as an exact one).
impl PartialEq for ExactSum {
    fn eq(&self, other: &ExactSum) -> bool {
        match (*self, *other) {
            (ExactSum::Exact { units: a, scale: s }, ExactSum::Exact { units: b, scale: t }) => {
                let (a, b) = if s <= t {
                    (pow10(t - s).checked_mul(a), Some(b))
                } else {
                    (Some(a), pow10(s - t).checked_mul(b))
                };
                a.is_some() && a == b
            }
            (a, b) => a.get() == b.get(),
        }
    }
}

impl Default for ExactSum {
    fn default() -> ExactSum {
        ExactSum::Exact { units: 0, scale: 0 }
    }
}

impl ExactSum {
    /// The exact sum of whole units.
    pub fn whole(n: i128) -> ExactSum {
        ExactSum::Exact { units: n, scale: 0 }
    }

    /// Add `units / 10^scale`, or turn floating (adding `x`) when that overflows.
    #[inline]
    fn add_exact(&mut self, units: i128, scale: u32, x: impl FnOnce() -> f64) {
        if let ExactSum::Exact { units: n, scale: s } = *self {
            // Terms mostly come at the sum's scale (whole numbers into a whole sum).
            let sum = if scale == s {
                n.checked_add(units).map(|u| (u, s))
            } else if scale < s {
                pow10(s - scale)
                    .checked_mul(units)
                    .and_then(|u| n.checked_add(u))
                    .map(|u| (u, s))
            } else {
                pow10(scale - s)
                    .checked_mul(n)
                    .and_then(|n| n.checked_add(units))
                    .map(|u| (u, scale))
            };
            *self = match sum {
                Some((units, scale)) => ExactSum::Exact { units, scale },
                None => ExactSum::Float(self.get() + x()),
            };
        } else if let ExactSum::Float(f) = self {
            *f += x();
        }
    }

    /// Add `x`.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if let ExactSum::Float(f) = self {
            *f += x;
            return;
        }
        self.add_decimal(x, decimal(x, MAX_DIGITS));
    }

    /// Add `x` to `sum` and `x * x` (exactly the square of the decimal `x` reads as, while
    /// it is one) to `sumsq`, reading `x` as a decimal once for both.
    #[inline]
    pub fn add_with_square(sum: &mut ExactSum, sumsq: &mut ExactSum, x: f64) {
        let exact = |s: &ExactSum| matches!(s, ExactSum::Exact { .. });
        let dec = if exact(sum) || exact(sumsq) {
            decimal(x, MAX_DIGITS)
        } else {
            None
        };
        sum.add_decimal(x, dec);
        match (&mut *sumsq, dec) {
            (ExactSum::Float(f), _) => *f += x * x,
            (_, Some((m, d))) => sumsq.add_exact(i128::from(m) * i128::from(m), 2 * d, || x * x),
            (_, None) => *sumsq = ExactSum::Float(sumsq.get() + x * x),
        }
    }

    /// Add `x`, which reads as the decimal `dec` (`None`: no short decimal).
    #[inline]
    fn add_decimal(&mut self, x: f64, dec: Option<(i64, u32)>) {
        match (&mut *self, dec) {
            (ExactSum::Float(f), _) => *f += x,
            (_, Some((m, d))) => self.add_exact(i128::from(m), d, || x),
            (_, None) => *self = ExactSum::Float(self.get() + x),
        }
    }

    pub fn merge(&mut self, other: &ExactSum) {
        match *other {
            ExactSum::Exact { units, scale } => self.add_exact(units, scale, || other.get()),
            ExactSum::Float(f) => *self = ExactSum::Float(self.get() + f),
        }
    }

    /// The exact sum as `(units, scale)` (`units / 10^scale`), while it is exact.
    pub fn exact(&self) -> Option<(i128, u32)> {
        match *self {
            ExactSum::Exact { units, scale } => Some((units, scale)),
            ExactSum::Float(_) => None,
        }
    }

    pub fn get(&self) -> f64 {
        match *self {
            ExactSum::Exact { units, scale } => units as f64 / pow10f(scale),
            ExactSum::Float(f) => f,
        }
    }

    pub fn to_json(&self) -> Value {
        match *self {
            // At most 15 digits, as a number: every JSON reader (jq, a float parser) reads
            // it exactly. Longer, as a string of its digits.
            ExactSum::Exact { units, scale: 0 } if units.abs() < JSON_UNITS => {
                Value::from(units as i64)
            }
            ExactSum::Exact { units, .. } if units.abs() < JSON_UNITS => {
                serde_json::Number::from_f64(self.get()).map_or(Value::Null, Value::Number)
            }
            ExactSum::Exact { units, scale: 0 } => Value::from(units.to_string()),
            ExactSum::Exact { units, scale } => {
                let digits = units.unsigned_abs().to_string();
                let digits = format!("{digits:0>width$}", width = scale as usize + 1);
                let (int, frac) = digits.split_at(digits.len() - scale as usize);
                let sign = if units < 0 { "-" } else { "" };
                Value::from(format!("{sign}{int}.{frac}"))
            }
            ExactSum::Float(f) if f.is_finite() => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            ExactSum::Float(f) if f > 0.0 => Value::from("inf"),
            ExactSum::Float(_) => Value::from("-inf"),
        }
    }

    pub fn from_json(v: Option<&Value>, name: &str) -> Result<ExactSum, String> {
        let bad = || format!("state field {name:?} missing or not a number");
        match v.ok_or_else(bad)? {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(ExactSum::whole(i as i128))
                } else if let Some(u) = n.as_u64() {
                    Ok(ExactSum::whole(u as i128))
                } else {
                    let x = n.as_f64().ok_or_else(bad)?;
                    // A decimal written while exact reads back as one; anything longer
                    // was a float sum.
                    Ok(match decimal(x, 2 * MAX_DIGITS) {
                        Some((m, d)) if i128::from(m).abs() < JSON_UNITS => ExactSum::Exact {
                            units: i128::from(m),
                            scale: d,
                        },
                        _ => ExactSum::Float(x),
                    })
                }
            }
            Value::String(s) if s == "inf" => Ok(ExactSum::Float(f64::INFINITY)),
            Value::String(s) if s == "-inf" => Ok(ExactSum::Float(f64::NEG_INFINITY)),
            Value::String(s) => {
                let (int, frac) = s.split_once('.').unwrap_or((s, ""));
                let scale = frac.len() as u32;
                let digits_ok = !frac.is_empty() || !s.contains('.');
                if !digits_ok || scale > 2 * MAX_DIGITS || !frac.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                let units = format!("{int}{frac}").parse::<i128>().map_err(|_| bad())?;
                Ok(ExactSum::Exact { units, scale })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_sums_do_not_depend_on_order() {
        // Squares above 2^53: a float sum of these depends on the order of addition.
        let xs = [
            94_000_123.0,
            3.0,
            117_000_457.0,
            1.0,
            54_306_753.0,
            99_999_999.0,
            7.0,
        ];
        let mut fwd = ExactSum::default();
        xs.iter()
            .for_each(|&x| ExactSum::add_with_square(&mut ExactSum::default(), &mut fwd, x));
        let mut back = ExactSum::default();
        xs.iter()
            .rev()
            .for_each(|&x| ExactSum::add_with_square(&mut ExactSum::default(), &mut back, x));
        let mut a = ExactSum::default();
        let mut b = ExactSum::default();
        xs[..3]
            .iter()
            .for_each(|&x| ExactSum::add_with_square(&mut ExactSum::default(), &mut a, x));
        xs[3..]
            .iter()
            .for_each(|&x| ExactSum::add_with_square(&mut ExactSum::default(), &mut b, x));
        b.merge(&a);
        assert_eq!(fwd, back);
        assert_eq!(fwd, b);
        let want: i128 = xs.iter().map(|&x| (x as i128) * (x as i128)).sum();
        assert_eq!(fwd, ExactSum::whole(want));
    }

    #[test]
    fn decimal_sums_do_not_depend_on_order_or_split() {
        // Load averages and memory sizes: as floats, these sums differ in the last bits
        // with the order of addition.
        let xs: Vec<f64> = (0..2000)
            .map(|i| {
                format!(
                    "{}.{:0>width$}",
                    i % 500,
                    i * 7919 % 1000,
                    width = 1 + i % 3
                )
            })
            .map(|text| text.parse().unwrap())
            .collect();
        let fold = |xs: &[f64]| {
            let mut s = (ExactSum::default(), ExactSum::default());
            for &x in xs {
                ExactSum::add_with_square(&mut s.0, &mut s.1, x);
            }
            s
        };
        let whole = fold(&xs);
        let mut rev = xs.clone();
        rev.reverse();
        assert_eq!(fold(&rev), whole);
        for cut in [1, 77, 1000, 1999] {
            let (mut a, b) = (fold(&xs[..cut]), fold(&xs[cut..]));
            a.0.merge(&b.0);
            a.1.merge(&b.1);
            assert_eq!(a, whole, "cut at {cut}");
        }
        assert!(matches!(whole.0, ExactSum::Exact { .. }));
        assert!(matches!(whole.1, ExactSum::Exact { .. }));
        // The float sum in one order, for scale: close, but not what the exact sum is.
        let float: f64 = xs.iter().sum();
        assert!((whole.0.get() - float).abs() < 1e-9 * float);
    }

    #[test]
    fn terms_that_are_no_short_decimal_make_it_a_float() {
        let mut s = ExactSum::default();
        s.add(2.0);
        s.add(0.25);
        assert_eq!(
            s,
            ExactSum::Exact {
                units: 225,
                scale: 2
            }
        );
        s.add(std::f64::consts::PI);
        assert_eq!(s, ExactSum::Float(2.25 + std::f64::consts::PI));
        let mut big = ExactSum::whole(i128::MAX - 1);
        big.add(5.0);
        assert!(matches!(big, ExactSum::Float(_)));
    }

    #[test]
    fn json_reads_back_the_same_sum() {
        for s in [
            ExactSum::whole(5),
            ExactSum::whole(-5),
            ExactSum::whole(1 << 100),
            ExactSum::whole(999_999_999_999_999),
            ExactSum::whole(18_014_398_509_481_983),
            ExactSum::Exact {
                units: 89328,
                scale: 2,
            },
            ExactSum::Exact {
                units: -17,
                scale: 2,
            },
            ExactSum::Exact {
                units: 1175_4158,
                scale: 4,
            },
            ExactSum::Exact {
                units: 123456789012345678901234567,
                scale: 9,
            },
            ExactSum::Exact {
                units: -5,
                scale: 18,
            },
            ExactSum::Float(std::f64::consts::PI),
            ExactSum::Float(f64::INFINITY),
            ExactSum::Float(f64::NEG_INFINITY),
        ] {
            let text = s.to_json().to_string();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(ExactSum::from_json(Some(&back), "x").unwrap(), s, "{text}");
        }
        assert_eq!(
            ExactSum::Exact {
                units: 89328,
                scale: 2
            }
            .to_json()
            .to_string(),
            "893.28"
        );
        assert_eq!(
            ExactSum::Exact {
                units: -123456789012345678901234567,
                scale: 9
            }
            .to_json(),
            Value::from("-123456789012345678.901234567")
        );
        // Whole sums too: a number up to 15 digits, which jq reads exactly; longer, a string.
        assert_eq!(
            ExactSum::whole(999_999_999_999_999).to_json().to_string(),
            "999999999999999"
        );
        assert_eq!(
            ExactSum::whole(-18_014_398_509_481_983).to_json(),
            Value::from("-18014398509481983")
        );
        for bad in ["1.2.3", "x", "1.", ".", "1.-2"] {
            assert!(
                ExactSum::from_json(Some(&Value::from(bad)), "x").is_err(),
                "{bad}"
            );
        }
    }
}
