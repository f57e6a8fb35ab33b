//! Terraform's numbers, exactly.
//!
//! Terraform keeps a number as a binary floating-point number with a 512-bit
//! mantissa, rounded to nearest even after every operation, and prints it
//! with the fewest decimal digits that read back to the same number, never
//! with an exponent. So `0.1 + 0.2` is `0.3`, `9007199254740993` stays exact
//! and `1 / 3` prints 155 digits. An f64 cannot do that, so [`BigNum`] does.
//!
//! Most numbers in a configuration are small integers or short decimals, and
//! [`Value::Number`](super::Value::Number) keeps those as an f64 read as "the
//! number its shortest decimal spells" — the same number Terraform has for
//! that literal. Only numbers that need more (long decimals, huge integers,
//! results of `1 / 3`) live in a boxed [`BigNum`]; see [`BigNum::into_value`].
//!
//! Results of functions Terraform computes in float64 (`pow`, `log`) carry a
//! 53-bit precision, as they do in Terraform, so they print as a float64.

use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{ToPrimitive, Zero};
use std::cmp::Ordering;

/// The precision of Terraform's numbers, in mantissa bits.
pub const PREC: u32 = 512;
/// The precision of a float64, for results Terraform computes as one.
pub const PREC_F64: u32 = 53;
/// Decimal exponents beyond this are refused rather than computed: a typo
/// like `1e999999999` would otherwise build a number with a billion digits.
const MAX_DECIMAL_EXP: i64 = 100_000;

/// A binary floating-point number: `(-1)^neg * mant * 2^exp`, or an infinity.
#[derive(Clone, Debug)]
pub struct BigNum {
    neg: bool,
    /// Odd, or zero; meaningless for an infinity.
    mant: BigUint,
    exp: i64,
    inf: bool,
    /// Mantissa bits kept by operations on this number.
    prec: u32,
}

impl PartialEq for BigNum {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_num(other) == Ordering::Equal
    }
}

impl BigNum {
    pub fn zero() -> BigNum {
        BigNum {
            neg: false,
            mant: BigUint::zero(),
            exp: 0,
            inf: false,
            prec: PREC,
        }
    }

    pub fn infinity(neg: bool) -> BigNum {
        BigNum {
            neg,
            mant: BigUint::zero(),
            exp: 0,
            inf: true,
            prec: PREC,
        }
    }

    pub fn from_i64(n: i64) -> BigNum {
        BigNum::from_int(&BigInt::from(n))
    }

    pub fn from_int(n: &BigInt) -> BigNum {
        let prec = (n.bits() as u32).max(64);
        round(
            n.sign() == Sign::Minus,
            n.magnitude().clone(),
            0,
            false,
            prec,
        )
    }

    /// The exact value of a float64, at float64 precision: what Terraform
    /// has for the result of a function it computes in float64.
    pub fn from_f64_exact(f: f64) -> BigNum {
        if f.is_infinite() {
            return BigNum::infinity(f < 0.0);
        }
        if f == 0.0 || f.is_nan() {
            return BigNum {
                prec: PREC_F64,
                ..BigNum::zero()
            };
        }
        let bits = f.to_bits();
        let neg = bits >> 63 == 1;
        let e = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (m, exp) = if e == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), e - 1075)
        };
        round(neg, BigUint::from(m), exp, false, PREC_F64)
    }

    /// The number an f64 stands for in [`Value::Number`](super::Value::Number):
    /// its shortest decimal, read at Terraform's precision.
    pub fn from_f64(f: f64) -> BigNum {
        if f.is_infinite() {
            return BigNum::infinity(f < 0.0);
        }
        if f.fract() == 0.0 && f.abs() < 1.8e19 {
            let n = BigInt::from(f as i128);
            return round(
                n.sign() == Sign::Minus,
                n.magnitude().clone(),
                0,
                false,
                PREC,
            );
        }
        BigNum::parse(&format!("{f}")).unwrap_or_else(|| BigNum::from_f64_exact(f))
    }

    /// Reads a decimal number as Terraform does (`12`, `-1.5e3`, `.5`,
    /// `Inf`), rounded to nearest even at 512 bits. `None` when `s` is not a
    /// number or its exponent is absurd.
    pub fn parse(s: &str) -> Option<BigNum> {
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if body == "Inf" || body == "inf" {
            return Some(BigNum::infinity(neg));
        }
        let b = body.as_bytes();
        let mut i = 0;
        let mut digits = String::new();
        let mut frac_digits: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] as char);
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] as char);
                frac_digits += 1;
                i += 1;
            }
        }
        if digits.is_empty() {
            return None;
        }
        let mut exp10: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            let e: i64 = body[start..i]
                .parse()
                .ok()
                .filter(|e: &i64| *e <= MAX_DECIMAL_EXP)?;
            exp10 = if eneg { -e } else { e };
        }
        if i != b.len() {
            return None;
        }
        let m: BigUint = digits.parse().ok()?;
        let k = exp10 - frac_digits;
        if k.abs() > MAX_DECIMAL_EXP {
            return None;
        }
        if m.is_zero() {
            return Some(BigNum::zero());
        }
        Some(if k >= 0 {
            round(neg, m * pow10(k as u64), 0, false, PREC)
        } else {
            divide(neg, &m, 0, &pow10((-k) as u64), 0, PREC)
        })
    }

    pub fn is_zero(&self) -> bool {
        !self.inf && self.mant.is_zero()
    }

    pub fn is_inf(&self) -> bool {
        self.inf
    }

    pub fn is_neg(&self) -> bool {
        self.neg && !self.is_zero()
    }

    pub fn prec(&self) -> u32 {
        self.prec
    }

    /// True for a finite whole number.
    pub fn is_int(&self) -> bool {
        !self.inf && (self.mant.is_zero() || self.exp >= 0)
    }

    pub fn negate(mut self) -> BigNum {
        self.neg = !self.neg;
        self
    }

    pub fn abs(mut self) -> BigNum {
        self.neg = false;
        self
    }

    pub fn add(&self, o: &BigNum) -> BigNum {
        let prec = self.prec.max(o.prec);
        if self.inf || o.inf {
            return match (self.inf, o.inf) {
                (true, true) if self.neg != o.neg => BigNum::zero(),
                (true, _) => BigNum::infinity(self.neg),
                _ => BigNum::infinity(o.neg),
            };
        }
        if self.is_zero() {
            return BigNum { prec, ..o.clone() }.rounded();
        }
        if o.is_zero() {
            return BigNum {
                prec,
                ..self.clone()
            }
            .rounded();
        }
        // An operand below an eighth of the other's last place cannot change
        // the rounded sum: skip the giant shift aligning it would take.
        let (big, small) = if self.top() >= o.top() {
            (self, o)
        } else {
            (o, self)
        };
        if small.top() + prec as i64 + 4 < big.top() {
            return BigNum {
                prec,
                ..big.clone()
            };
        }
        let e = self.exp.min(o.exp);
        let a = BigInt::from_biguint(sign(self.neg), self.mant.clone() << (self.exp - e) as usize);
        let b = BigInt::from_biguint(sign(o.neg), o.mant.clone() << (o.exp - e) as usize);
        let s = a + b;
        round(
            s.sign() == Sign::Minus,
            s.magnitude().clone(),
            e,
            false,
            prec,
        )
    }

    pub fn sub(&self, o: &BigNum) -> BigNum {
        self.add(&o.clone().negate())
    }

    pub fn mul(&self, o: &BigNum) -> BigNum {
        let prec = self.prec.max(o.prec);
        let neg = self.neg != o.neg;
        if self.inf || o.inf {
            return if self.is_zero() || o.is_zero() {
                BigNum::zero()
            } else {
                BigNum::infinity(neg)
            };
        }
        round(neg, &self.mant * &o.mant, self.exp + o.exp, false, prec)
    }

    /// `self / o`; dividing by zero gives an infinity, as in Terraform.
    pub fn div(&self, o: &BigNum) -> BigNum {
        let prec = self.prec.max(o.prec);
        let neg = self.neg != o.neg;
        if self.inf {
            return if o.inf {
                BigNum::zero()
            } else {
                BigNum::infinity(neg)
            };
        }
        if o.inf {
            return BigNum::zero();
        }
        if o.is_zero() {
            return BigNum::infinity(neg);
        }
        if self.is_zero() {
            return BigNum::zero();
        }
        divide(neg, &self.mant, self.exp, &o.mant, o.exp, prec)
    }

    /// Terraform's `%`: `a - b * trunc(a / b)`, and `a` itself for `b = 0`.
    pub fn rem(&self, o: &BigNum) -> BigNum {
        if self.inf || o.inf {
            return self.mul(o);
        }
        if o.is_zero() {
            return self.clone();
        }
        let q = self.div(o).trunc();
        self.sub(&o.mul(&BigNum::from_int(&q)))
    }

    /// The integer part, rounded toward zero. Infinities give zero.
    pub fn trunc(&self) -> BigInt {
        if self.inf || self.mant.is_zero() {
            return BigInt::zero();
        }
        let m = if self.exp >= 0 {
            &self.mant << self.exp as usize
        } else {
            &self.mant >> (-self.exp) as usize
        };
        BigInt::from_biguint(sign(self.neg), m)
    }

    pub fn floor(&self) -> BigInt {
        let t = self.trunc();
        if self.neg && !self.is_int() { t - 1 } else { t }
    }

    pub fn ceil(&self) -> BigInt {
        let t = self.trunc();
        if !self.neg && !self.is_int() {
            t + 1
        } else {
            t
        }
    }

    /// The nearest f64.
    pub fn to_f64(&self) -> f64 {
        if self.inf {
            return if self.neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        if self.mant.is_zero() {
            return 0.0;
        }
        let r = round(self.neg, self.mant.clone(), self.exp, false, 53);
        let m = r.mant.to_f64().unwrap_or(f64::INFINITY);
        let v = if r.exp > 1100 {
            f64::INFINITY
        } else if r.exp < -1200 {
            0.0
        } else {
            m * 2f64.powi(r.exp.clamp(-1022, 1023) as i32)
                * 2f64.powi((r.exp - r.exp.clamp(-1022, 1023)) as i32)
        };
        if self.neg { -v } else { v }
    }

    /// Compares numerically.
    pub fn cmp_num(&self, o: &BigNum) -> Ordering {
        let sa = self.signum();
        let sb = o.signum();
        if sa != sb {
            return sa.cmp(&sb);
        }
        if self.inf || o.inf {
            return match (self.inf, o.inf) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if self.neg {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                _ => {
                    if o.neg {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
            };
        }
        if sa == 0 {
            return Ordering::Equal;
        }
        let mag = if self.top() != o.top() {
            self.top().cmp(&o.top())
        } else {
            let e = self.exp.min(o.exp);
            (&self.mant << (self.exp - e) as usize).cmp(&(&o.mant << (o.exp - e) as usize))
        };
        if self.neg { mag.reverse() } else { mag }
    }

    fn signum(&self) -> i8 {
        if self.is_zero() {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }

    /// The position just above the highest set bit.
    fn top(&self) -> i64 {
        self.exp + self.mant.bits() as i64
    }

    fn rounded(self) -> BigNum {
        if self.inf {
            return self;
        }
        round(self.neg, self.mant, self.exp, false, self.prec)
    }

    /// The decimal Terraform prints: the fewest digits that read back to
    /// this number at its precision, without an exponent.
    pub fn to_text(&self) -> String {
        if self.inf {
            return if self.neg {
                "-Inf".into()
            } else {
                "+Inf".into()
            };
        }
        if self.mant.is_zero() {
            return "0".into();
        }
        let (digits, point) = self.shortest();
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        let d = digits.as_bytes();
        if point > 0 {
            for i in 0..point as usize {
                out.push(*d.get(i).unwrap_or(&b'0') as char);
            }
        } else {
            out.push('0');
        }
        let frac = d.len() as i64 - point;
        if frac > 0 {
            out.push('.');
            for i in 0..frac {
                let at = point + i;
                out.push(if at < 0 { '0' } else { d[at as usize] as char });
            }
        }
        out
    }

    /// The shortest decimal digits and the decimal point's position
    /// (`0.DIGITS * 10^point`) that read back to this number: the digit walk
    /// between the two half-way points to the neighbouring numbers.
    fn shortest(&self) -> (String, i64) {
        let d = Decimal::of(&self.mant, self.exp);
        // The mantissa widened to prec+1 bits: its last bit is half a unit
        // in the last place.
        let bits = self.mant.bits() as i64;
        let shift = (self.prec as i64 + 1) - bits;
        let (m, e) = if shift >= 0 {
            (&self.mant << shift as usize, self.exp - shift)
        } else {
            (&self.mant >> (-shift) as usize, self.exp - shift)
        };
        let lower = Decimal::of(&(&m - 1u32), e);
        let upper = Decimal::of(&(&m + 1u32), e);
        let inclusive = !m.bit(1);
        let dm = d.digits.as_bytes();
        for (i, &c) in dm.iter().enumerate() {
            let l = lower.at(i);
            let u = upper.at(i);
            let okdown = l != c || (inclusive && i + 1 == lower.digits.len());
            let okup = c != u && (inclusive || c + 1 < u || i + 1 < upper.digits.len());
            if okdown && okup {
                return d.round(i + 1);
            } else if okdown {
                return d.round_down(i + 1);
            } else if okup {
                return d.round_up(i + 1);
            }
        }
        (d.digits, d.point)
    }

    /// The value as berth stores it: an f64 when one stands for exactly
    /// this number (see the module comment), boxed otherwise.
    pub fn into_value(self) -> super::Value {
        match self.to_small() {
            Some(f) => super::Value::Number(f),
            None => super::Value::BigNumber(Box::new(self)),
        }
    }

    /// The f64 whose shortest decimal reads back to exactly this number.
    fn to_small(&self) -> Option<f64> {
        if self.inf {
            return None;
        }
        if self.mant.is_zero() {
            return Some(0.0);
        }
        if self.is_int() {
            // Integers need no decimal detour: exact in an f64 up to 2^53.
            let t = self.trunc();
            return t
                .to_i64()
                .filter(|n| n.unsigned_abs() <= 1 << 53)
                .map(|n| n as f64);
        }
        if self.prec < PREC {
            // A float64 result that is not a short decimal keeps its
            // precision: Terraform prints and combines it as a float64.
            return None;
        }
        let text = self.to_text();
        if text.len() > 24 {
            return None;
        }
        let f: f64 = text.parse().ok()?;
        (f.is_finite() && BigNum::from_f64(f) == *self && crate::value::format_number(f) == text)
            .then_some(f)
    }
}

fn sign(neg: bool) -> Sign {
    if neg { Sign::Minus } else { Sign::Plus }
}

fn pow10(n: u64) -> BigUint {
    num_traits::pow(BigUint::from(10u32), n as usize)
}

/// Rounds `mant * 2^exp` to `prec` bits, to nearest even; `sticky` says
/// that nonzero bits were already dropped below `mant`.
fn round(neg: bool, mant: BigUint, exp: i64, sticky: bool, prec: u32) -> BigNum {
    if mant.is_zero() {
        return BigNum {
            prec,
            ..BigNum::zero()
        };
    }
    let bits = mant.bits();
    let (mut m, mut e) = (mant, exp);
    if bits > prec as u64 {
        let drop = bits - prec as u64;
        let half = m.bit(drop - 1);
        let below = sticky || (m.trailing_zeros().unwrap_or(0) < drop - 1);
        m >>= drop as usize;
        e += drop as i64;
        if half && (below || m.bit(0)) {
            m += 1u32;
        }
    }
    let tz = m.trailing_zeros().unwrap_or(0);
    if tz > 0 {
        m >>= tz as usize;
        e += tz as i64;
    }
    BigNum {
        neg,
        mant: m,
        exp: e,
        inf: false,
        prec,
    }
}

/// `(a * 2^ea) / (b * 2^eb)`, correctly rounded to `prec` bits.
fn divide(neg: bool, a: &BigUint, ea: i64, b: &BigUint, eb: i64, prec: u32) -> BigNum {
    // Enough quotient bits for the rounding bit and a guard.
    let shift = (prec as i64 + 2 + b.bits() as i64 - a.bits() as i64).max(0);
    let num = a << shift as usize;
    let q = &num / b;
    let sticky = !(&num % b).is_zero();
    round(neg, q, ea - eb - shift, sticky, prec)
}

/// A decimal `0.DIGITS * 10^point` with no leading or trailing zeros.
struct Decimal {
    digits: String,
    point: i64,
}

impl Decimal {
    /// The exact decimal of `mant * 2^exp`.
    fn of(mant: &BigUint, exp: i64) -> Decimal {
        if mant.is_zero() {
            return Decimal {
                digits: String::new(),
                point: 0,
            };
        }
        let (n, frac) = if exp >= 0 {
            (mant << exp as usize, 0i64)
        } else {
            (
                mant * num_traits::pow(BigUint::from(5u32), (-exp) as usize),
                -exp,
            )
        };
        let s = n.to_string();
        let point = s.len() as i64 - frac;
        let digits = s.trim_end_matches('0').to_string();
        Decimal { digits, point }
    }

    fn at(&self, i: usize) -> u8 {
        *self.digits.as_bytes().get(i).unwrap_or(&b'0')
    }

    fn round(self, n: usize) -> (String, i64) {
        let d = self.digits.as_bytes();
        let up = if d.get(n) == Some(&b'5') && n + 1 == d.len() {
            n > 0 && (d[n - 1] - b'0') % 2 == 1
        } else {
            d.get(n).is_some_and(|c| *c >= b'5')
        };
        if up {
            self.round_up(n)
        } else {
            self.round_down(n)
        }
    }

    fn round_down(self, n: usize) -> (String, i64) {
        let cut = &self.digits[..n.min(self.digits.len())];
        (cut.trim_end_matches('0').to_string(), self.point)
    }

    fn round_up(self, n: usize) -> (String, i64) {
        let mut d: Vec<u8> = self.digits.as_bytes()[..n.min(self.digits.len())].to_vec();
        while let Some(last) = d.last_mut() {
            if *last < b'9' {
                *last += 1;
                return (String::from_utf8(d).unwrap_or_default(), self.point);
            }
            d.pop();
        }
        ("1".into(), self.point + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> BigNum {
        BigNum::parse(s).expect(s)
    }

    #[test]
    fn prints_as_terraform() {
        assert_eq!(p("0.1").add(&p("0.2")).to_text(), "0.3");
        assert_eq!(
            p("1").div(&p("3")).to_text(),
            format!("0.{}5", "3".repeat(154))
        );
        assert_eq!(p("9007199254740993").to_text(), "9007199254740993");
        assert_eq!(p("123456789.123456789").to_text(), "123456789.123456789");
        assert_eq!(p("1e300").to_text(), format!("1{}", "0".repeat(300)));
        assert_eq!(p("1e-7").to_text(), "0.0000001");
        assert_eq!(
            p("1").sub(&p("0.9")).to_text(),
            format!("0.1{}3", "0".repeat(153))
        );
        assert_eq!(
            BigNum::from_f64_exact(2f64.sqrt()).to_text(),
            "1.4142135623730951"
        );
        assert_eq!(p("-7").rem(&p("3")).to_text(), "-1");
        assert_eq!(p("10").rem(&p("3.5")).to_text(), "3");
        assert_eq!(p("1").rem(&p("0")).to_text(), "1");
    }

    #[test]
    fn small_numbers_stay_f64() {
        assert_eq!(
            p("0.1").add(&p("0.2")).into_value(),
            super::super::Value::Number(0.3)
        );
        assert_eq!(p("2.5").into_value(), super::super::Value::Number(2.5));
        assert!(matches!(
            p("9007199254740993").into_value(),
            super::super::Value::BigNumber(_)
        ));
        assert!(matches!(
            p("1").div(&p("3")).into_value(),
            super::super::Value::BigNumber(_)
        ));
        assert_eq!(BigNum::from_f64(0.1), p("0.1"));
        assert_eq!(
            p("1e20").into_value(),
            super::super::Value::BigNumber(Box::new(p("1e20")))
        );
    }

    #[test]
    fn compares_and_rounds() {
        assert_eq!(p("0.3").cmp_num(&p("0.1").add(&p("0.2"))), Ordering::Equal);
        assert_eq!(p("-2").cmp_num(&p("1")), Ordering::Less);
        assert_eq!(p("-1.5").floor(), BigInt::from(-2));
        assert_eq!(p("1.2").ceil(), BigInt::from(2));
        assert_eq!(p("0.5").to_f64(), 0.5);
        assert!(BigNum::parse("1e999999999").is_none());
        assert!(BigNum::parse("0x10").is_none());
        assert!(BigNum::parse(" 1").is_none());
        assert_eq!(p(".5").to_text(), "0.5");
        assert_eq!(p("5.").to_text(), "5");
    }
}
