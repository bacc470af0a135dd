//! `ExactSum`: a sum that does not depend on the order of its terms while they are integers.
//!
//! Floating-point addition is not associative, so a sum computed over differently split
//! input (chunks, threads, receivers, trees of mergers) may differ in its last bits. While
//! every term is a whole number of magnitude at most 2^53 (counts, bytes, milliseconds), the
//! sum is kept as a 128-bit integer, which is exact and so the same under any split and order.
//! The first fractional or huge term (or an overflow) turns it into an `f64` sum.
//!
//! Memory: 16 bytes. JSON: an integer (a string of digits beyond 64 bits) while exact; a
//! number with a fraction or exponent (`5.0`) once floating; `"inf"`/`"-inf"` on overflow.

use serde_json::Value;

const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

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

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExactSum {
    Int(i128),
    Float(f64),
}

impl Default for ExactSum {
    fn default() -> ExactSum {
        ExactSum::Int(0)
    }
}

impl ExactSum {
    /// Add `x`.
    #[inline]
    pub fn add(&mut self, x: f64) {
        match self {
            ExactSum::Int(n) => match whole(x).and_then(|w| n.checked_add(i128::from(w))) {
                Some(v) => *n = v,
                None => *self = ExactSum::Float(*n as f64 + x),
            },
            ExactSum::Float(f) => *f += x,
        }
    }

    /// Add `x * x`, exactly while `x` is a whole number.
    #[inline]
    pub fn add_square(&mut self, x: f64) {
        match self {
            ExactSum::Int(n) => match whole(x).and_then(|w| n.checked_add(i128::from(w).pow(2))) {
                Some(v) => *n = v,
                None => *self = ExactSum::Float(*n as f64 + x * x),
            },
            ExactSum::Float(f) => *f += x * x,
        }
    }

    pub fn merge(&mut self, other: &ExactSum) {
        match (*self, *other) {
            (ExactSum::Int(a), ExactSum::Int(b)) => {
                *self = match a.checked_add(b) {
                    Some(v) => ExactSum::Int(v),
                    None => ExactSum::Float(a as f64 + b as f64),
                }
            }
            (a, b) => *self = ExactSum::Float(a.get() + b.get()),
        }
    }

    pub fn get(&self) -> f64 {
        match *self {
            ExactSum::Int(n) => n as f64,
            ExactSum::Float(f) => f,
        }
    }

    pub fn to_json(&self) -> Value {
        match *self {
            ExactSum::Int(n) => match i64::try_from(n) {
                Ok(i) => Value::from(i),
                Err(_) => Value::from(n.to_string()),
            },
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
                    Ok(ExactSum::Int(i as i128))
                } else if let Some(u) = n.as_u64() {
                    Ok(ExactSum::Int(u as i128))
                } else {
                    n.as_f64().map(ExactSum::Float).ok_or_else(bad)
                }
            }
            Value::String(s) if s == "inf" => Ok(ExactSum::Float(f64::INFINITY)),
            Value::String(s) if s == "-inf" => Ok(ExactSum::Float(f64::NEG_INFINITY)),
            Value::String(s) => s.parse::<i128>().map(ExactSum::Int).map_err(|_| bad()),
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
        xs.iter().for_each(|&x| fwd.add_square(x));
        let mut back = ExactSum::default();
        xs.iter().rev().for_each(|&x| back.add_square(x));
        let mut a = ExactSum::default();
        let mut b = ExactSum::default();
        xs[..3].iter().for_each(|&x| a.add_square(x));
        xs[3..].iter().for_each(|&x| b.add_square(x));
        b.merge(&a);
        assert_eq!(fwd, back);
        assert_eq!(fwd, b);
        let want: i128 = xs.iter().map(|&x| (x as i128) * (x as i128)).sum();
        assert_eq!(fwd, ExactSum::Int(want));
    }

    #[test]
    fn json_keeps_the_mode() {
        for s in [
            ExactSum::Int(5),
            ExactSum::Int(-5),
            ExactSum::Int(1 << 100),
            ExactSum::Float(5.0),
            ExactSum::Float(2.5),
            ExactSum::Float(f64::INFINITY),
            ExactSum::Float(f64::NEG_INFINITY),
        ] {
            let text = s.to_json().to_string();
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(ExactSum::from_json(Some(&back), "x").unwrap(), s, "{text}");
        }
        let mut s = ExactSum::default();
        s.add(2.0);
        s.add(0.5);
        assert_eq!(s, ExactSum::Float(2.5));
    }
}
