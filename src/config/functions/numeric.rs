//! Number functions: `abs`, `ceil`, `floor`, `log`, `pow`, `signum`, `max`,
//! `min`, `parseint`, `range` and `sum`.

use super::*;

pub(super) fn abs(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.abs())
}

pub(super) fn ceil(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.ceil())
}

pub(super) fn floor(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.floor())
}

pub(super) fn log(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let (n, base) = (a.number(0)?, a.number(1)?);
    finite(n.log(base))
}

pub(super) fn pow(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.powf(a.number(1)?))
}

pub(super) fn signum(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // Terraform takes a whole number here.
    let n = a.int(0)? as f64;
    // f64::signum says 1 for zero; Terraform says 0.
    Ok(Value::Number(if n > 0.0 {
        1.0
    } else if n < 0.0 {
        -1.0
    } else {
        0.0
    }))
}

fn numbers(a: &Args) -> Result<Vec<f64>, String> {
    (0..a.len())
        .map(|i| match a.arg(i) {
            Value::List(_) => Err(format!(
                "{} must be a number, got list (expand a list with `...`)",
                arg_name(i)
            )),
            _ => a.number(i),
        })
        .collect()
}

pub(super) fn max(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Number(
        numbers(a)?.into_iter().fold(f64::NEG_INFINITY, f64::max),
    ))
}

pub(super) fn min(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Number(
        numbers(a)?.into_iter().fold(f64::INFINITY, f64::min),
    ))
}

pub(super) fn parseint(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let base = a.int(1)?;
    if !(2..=62).contains(&base) {
        return Err(format!("base {} must be between 2 and 62", qn(base)));
    }
    let fail = || format!("cannot parse {} as a base-{base} integer", q(&s));
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(fail());
    }
    let mut n = num_bigint::BigInt::from(0);
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i64 - '0' as i64,
            'a'..='z' => c as i64 - 'a' as i64 + 10,
            // Up to base 36 letters are case-blind; above it capitals come
            // after the small letters, as in Go's big.Int.
            'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
            'A'..='Z' => c as i64 - 'A' as i64 + 36,
            _ => return Err(fail()),
        };
        if d >= base {
            return Err(fail());
        }
        n = n * base + d;
        if n.bits() > 4096 {
            return Err(format!("{} is too large", q(&s)));
        }
    }
    let n = if neg { -n } else { n };
    Ok(crate::value::BigNum::from_int(&n).into_value())
}

pub(super) fn range(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let nums = (0..a.len())
        .map(|i| a.number(i))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, limit, step) = match nums[..] {
        [limit] => (0.0, limit, if limit >= 0.0 { 1.0 } else { -1.0 }),
        [start, limit] => (start, limit, if limit >= start { 1.0 } else { -1.0 }),
        [start, limit, step] => (start, limit, step),
        _ => return Err(format!("expects 1 to 3 arguments, got {}", nums.len())),
    };
    if ![start, limit, step].iter().all(|n| n.is_finite()) {
        return Err("arguments must be finite numbers".into());
    }
    if step == 0.0 {
        return Err("step must not be zero".into());
    }
    let too_many = || format!("the result would have more than {MAX_RANGE} elements");
    if ((limit - start) / step).ceil() > MAX_RANGE as f64 {
        return Err(too_many());
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0.0 && n < limit) || (step < 0.0 && n > limit) {
        // A step too small to move a large start never ends otherwise.
        if out.len() >= MAX_RANGE {
            return Err(too_many());
        }
        out.push(Value::Number(n));
        n += step;
    }
    Ok(Value::List(out))
}

pub(super) fn sum(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    if l.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    // Exactly, as Terraform adds: `sum([0.1, 0.2])` is 0.3.
    let mut total = crate::value::BigNum::zero();
    for (j, v) in l.iter().enumerate() {
        let n = match v {
            Value::String(s) => crate::config::types::parse_number(s),
            v => Some(v.clone()),
        };
        let n = n.and_then(|n| n.as_big()).ok_or_else(|| {
            to_number(v, &elem_name(j, 0))
                .err()
                .unwrap_or_else(|| format!("{} must be a number", elem_name(j, 0)))
        })?;
        total = total.add(&n);
    }
    if total.is_inf() {
        return Err("the result is not a finite number".into());
    }
    Ok(total.into_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn number_functions() {
        assert_eq!(ok("min", vec![n(12.0), n(54.0), n(3.0)]), n(3.0));
        assert_eq!(ok("max", vec![n(12.0), n(54.0), n(3.0)]), n(54.0));
        assert_eq!(
            ok("max", vec![s("12"), n(5.0)]),
            n(12.0),
            "numeric strings convert"
        );
        assert_eq!(ok("abs", vec![n(-12.4)]), n(12.4));
        assert_eq!(ok("ceil", vec![n(4.1)]), n(5.0));
        assert_eq!(ok("floor", vec![n(4.9)]), n(4.0));
        assert_eq!(ok("floor", vec![n(-4.1)]), n(-5.0));
        assert_eq!(ok("pow", vec![n(3.0), n(2.0)]), n(9.0));
        assert_eq!(ok("pow", vec![n(4.0), n(0.0)]), n(1.0));
        assert_eq!(ok("log", vec![n(16.0), n(2.0)]), n(4.0));
        assert_eq!(ok("signum", vec![n(-13.0)]), n(-1.0));
        assert_eq!(ok("signum", vec![n(0.0)]), n(0.0));
        assert_eq!(ok("parseint", vec![s("100"), n(10.0)]), n(100.0));
        assert_eq!(ok("parseint", vec![s("FF"), n(16.0)]), n(255.0));
        assert_eq!(ok("parseint", vec![s("-10"), n(16.0)]), n(-16.0));
        assert_eq!(
            ok("parseint", vec![s("1011111011101111"), n(2.0)]),
            n(48879.0)
        );
        assert_eq!(
            ok("parseint", vec![s("aA"), n(62.0)]),
            n(10.0 * 62.0 + 36.0)
        );
        assert_eq!(ok("sum", vec![ln(&[10.0, 13.0, 6.0, 4.5])]), n(33.5));
        assert_eq!(ok("sum", vec![ls(&["1", "2"])]), n(3.0));
    }

    #[test]
    fn number_errors() {
        assert_eq!(
            err("abs", vec![s("x")]),
            "abs: argument 1 must be a number, got `x`"
        );
        assert_eq!(
            err("abs", vec![s(" 1")]),
            "abs: argument 1 must be a number, got ` 1`"
        );
        assert_eq!(
            err("abs", vec![s("inf")]),
            "abs: argument 1 must be a number, got `inf`"
        );
        assert_eq!(
            err("abs", vec![Value::Bool(true)]),
            "abs: argument 1 must be a number, got bool"
        );
        assert_eq!(
            err("pow", vec![n(10.0), n(400.0)]),
            "pow: the result is not a finite number"
        );
        assert_eq!(
            err("log", vec![n(-1.0), n(10.0)]),
            "log: the result is not a finite number"
        );
        assert_eq!(
            err("max", vec![ln(&[1.0, 2.0])]),
            "max: argument 1 must be a number, got list (expand a list with `...`)"
        );
        assert_eq!(err("sum", vec![ln(&[])]), "sum: cannot sum an empty list");
        // Terraform's numbers do not overflow at f64's range.
        assert_eq!(
            ok("sum", vec![ln(&[1e308, 1e308])]),
            crate::value::BigNum::parse("2e308").unwrap().into_value()
        );
        assert_eq!(
            err("sum", vec![l(vec![n(1.0), s("x")])]),
            "sum: element 1 of argument 1 must be a number, got `x`"
        );
        assert_eq!(
            err("parseint", vec![s("12"), n(1.0)]),
            "parseint: base `1` must be between 2 and 62"
        );
        assert_eq!(
            err("parseint", vec![s("12G"), n(16.0)]),
            "parseint: cannot parse `12G` as a base-16 integer"
        );
        assert_eq!(
            err("parseint", vec![s(""), n(10.0)]),
            "parseint: cannot parse `` as a base-10 integer"
        );
        // Exact beyond an f64's range, as Terraform's big integers.
        assert_eq!(
            ok("parseint", vec![s("99999999999999999999"), n(10.0)]).to_string(),
            "99999999999999999999"
        );
    }

    #[test]
    fn range_follows_terraform() {
        assert_eq!(ok("range", vec![n(3.0)]), ln(&[0.0, 1.0, 2.0]));
        assert_eq!(ok("range", vec![n(1.0), n(4.0)]), ln(&[1.0, 2.0, 3.0]));
        assert_eq!(
            ok("range", vec![n(1.0), n(8.0), n(2.0)]),
            ln(&[1.0, 3.0, 5.0, 7.0])
        );
        assert_eq!(
            ok("range", vec![n(1.0), n(4.0), n(0.5)]),
            ln(&[1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
        );
        assert_eq!(ok("range", vec![n(4.0), n(1.0)]), ln(&[4.0, 3.0, 2.0]));
        assert_eq!(
            ok("range", vec![n(10.0), n(5.0), n(-2.0)]),
            ln(&[10.0, 8.0, 6.0])
        );
        assert_eq!(ok("range", vec![n(0.0)]), ln(&[]));
        assert_eq!(ok("range", vec![n(-3.0)]), ln(&[0.0, -1.0, -2.0]));
        assert_eq!(
            ok("range", vec![n(1.0), n(4.0), n(-1.0)]),
            ln(&[]),
            "a step away from the limit gives nothing"
        );
        assert_eq!(
            err("range", vec![n(1.0), n(4.0), n(0.0)]),
            "range: step must not be zero"
        );
        assert_eq!(
            err("range", vec![n(1e18)]),
            "range: the result would have more than 1000000 elements"
        );
        assert_eq!(
            err("range", vec![n(1e18), n(1e18 + 256.0), n(1.0)]),
            "range: the result would have more than 1000000 elements"
        );
        assert_eq!(
            ok("range", vec![n(1_000_000.0)]).as_list().map(Vec::len),
            Some(1_000_000)
        );
    }
}
