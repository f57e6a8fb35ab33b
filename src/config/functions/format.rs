//! `format` and `formatlist`: Go-style verbs as Terraform implements them.

use super::encoding::json_text;
use super::*;

pub(super) fn format(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let spec = a.string(0)?;
    // A null argument makes the whole result null, as in Terraform.
    if a.0.iter().skip(1).any(Value::is_null) {
        return Ok(Value::Null);
    }
    Ok(Value::String(format_values(
        &spec,
        a.0.get(1..).unwrap_or_default(),
    )?))
}

pub(super) fn formatlist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let spec = a.string(0)?;
    let rest = a.0.get(1..).unwrap_or_default();
    // Lists are iterated in step; anything else repeats on every line.
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        if let Value::List(l) = v {
            match len {
                Some((n, first)) if n != l.len() => {
                    return Err(format!(
                        "argument {} has {} but argument {} has {}",
                        i + 2,
                        count(l.len(), "element"),
                        first + 2,
                        count(n, "element")
                    ));
                }
                Some(_) => {}
                None => len = Some((l.len(), i)),
            }
        }
    }
    let n = len.map_or(1, |(n, _)| n);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let row: Vec<Value> = rest
            .iter()
            .map(|v| match v {
                Value::List(l) => l.get(k).cloned().unwrap_or_default(),
                v => v.clone(),
            })
            .collect();
        let line = format_values(&spec, &row).map_err(|e| format!("element {k}: {e}"))?;
        out.push(Value::String(line));
    }
    Ok(Value::List(out))
}

#[derive(Default)]
struct Verb {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

/// Go-style formatting as Terraform's `format`: `%v %#v %s %q %t %d %b %o %x
/// %X %e %E %f %F %g %G %%`, flags `- + space 0 #`, width, precision and
/// explicit argument indexes (`%[2]s`).
fn format_values(spec: &str, args: &[Value]) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut next = 0usize;
    let mut used = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut v = Verb::default();
        while let Some(&flag) = chars.get(i) {
            match flag {
                '-' => v.minus = true,
                '+' => v.plus = true,
                ' ' => v.space = true,
                '0' => v.zero = true,
                '#' => v.sharp = true,
                _ => break,
            }
            i += 1;
        }
        let so_far = |i: usize| -> String { chars[start..i.min(chars.len())].iter().collect() };
        if chars.get(i) == Some(&'[') {
            let close = chars[i..].iter().position(|&c| c == ']').map(|p| i + p);
            let index = close.and_then(|close| {
                let digits: String = chars[i + 1..close].iter().collect();
                digits
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=args.len().max(1)).contains(n))
            });
            match (close, index) {
                (Some(close), Some(n)) => {
                    next = n - 1;
                    i = close + 1;
                }
                _ => {
                    return Err(format!(
                        "invalid argument index in {}",
                        q(&so_far(close.map_or(i + 1, |c| c + 1)))
                    ));
                }
            }
        }
        v.width = pad_number(&chars, &mut i)
            .map_err(|_| format!("width in {} is too large", q(&so_far(i))))?;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let p = pad_number(&chars, &mut i)
                .map_err(|_| format!("precision in {} is too large", q(&so_far(i))))?;
            v.prec = Some(p.unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            return Err(format!(
                "incomplete verb {} at the end of the format string",
                q(&so_far(i))
            ));
        };
        i += 1;
        v.verb = verb;
        let text = so_far(i);
        let Some(arg) = args.get(next) else {
            let given = match args.len() {
                1 => "1 value was".to_string(),
                k => format!("{k} values were"),
            };
            return Err(format!(
                "not enough arguments: {} needs value {} but {given} given",
                q(&text),
                next + 1
            ));
        };
        next += 1;
        used = used.max(next);
        let (prefix, body, numeric) = render_verb(&v, arg, &text)?;
        use unicode_segmentation::UnicodeSegmentation as _;
        let len = prefix.graphemes(true).count() + body.graphemes(true).count();
        let fill = v.width.unwrap_or(0).saturating_sub(len);
        if v.minus {
            out.push_str(&prefix);
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if v.zero && numeric {
            out.push_str(&prefix);
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(&prefix);
            out.push_str(&body);
        }
    }
    if used < args.len() {
        return Err(format!(
            "too many arguments: the format string uses {} of {}",
            count(used, "value"),
            args.len()
        ));
    }
    Ok(out)
}

/// Reads a width or precision; `Err` when it is above [`MAX_PAD`].
fn pad_number(chars: &[char], i: &mut usize) -> Result<Option<usize>, ()> {
    let mut n: Option<usize> = None;
    let mut too_large = false;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        let v = n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize);
        too_large |= v > MAX_PAD;
        n = Some(v.min(MAX_PAD + 1));
        *i += 1;
    }
    if too_large { Err(()) } else { Ok(n) }
}

/// One verb's text, split into a sign/radix prefix and the body so zero
/// padding can go between them.
fn render_verb(v: &Verb, arg: &Value, text: &str) -> Result<(String, String, bool), String> {
    let what = format!("the value for {}", q(text));
    let sign = |negative: bool| -> String {
        if negative {
            "-".into()
        } else if v.plus {
            "+".into()
        } else if v.space {
            " ".into()
        } else {
            String::new()
        }
    };
    match v.verb {
        'v' => {
            let s = match arg {
                _ if v.sharp => json_text(arg)?,
                Value::String(s) => s.clone(),
                Value::Number(n) => format_number(*n),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".into(),
                other => json_text(other)?,
            };
            Ok((String::new(), s, false))
        }
        's' => {
            let s = to_string(arg, &what)?;
            let s = match v.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            Ok((String::new(), s, false))
        }
        'q' => Ok((
            String::new(),
            serde_json::Value::String(to_string(arg, &what)?).to_string(),
            false,
        )),
        't' => Ok((String::new(), to_bool(arg, &what)?.to_string(), false)),
        // A whole number beyond an f64's exact range prints in full.
        'd' if matches!(arg, Value::BigNumber(b) if b.is_int()) && v.prec.is_none() => {
            let n = arg.as_big().map(|b| b.trunc()).unwrap_or_default();
            let digits = n.magnitude().to_string();
            Ok((sign(n.sign() == num_bigint::Sign::Minus), digits, true))
        }
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = to_number(arg, &what)?;
            if !n.is_finite() || n.fract() != 0.0 {
                return Err(format!(
                    "{what} must be a whole number, got {}",
                    q(&format_number(n))
                ));
            }
            let mag = n.abs();
            let mut digits = if mag < 1.8e19 {
                let u = mag as u64;
                match v.verb {
                    'b' => format!("{u:b}"),
                    'o' => format!("{u:o}"),
                    'x' => format!("{u:x}"),
                    'X' => format!("{u:X}"),
                    _ => u.to_string(),
                }
            } else if v.verb == 'd' {
                format!("{mag:.0}")
            } else {
                return Err(format!("{what} is too large, got {}", q(&format_number(n))));
            };
            if let Some(p) = v.prec
                && digits.len() < p
            {
                digits.insert_str(0, &"0".repeat(p - digits.len()));
            }
            let radix = match (v.sharp, v.verb) {
                (true, 'b') => "0b",
                (true, 'o') => "0",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                _ => "",
            };
            // Go ignores the 0 flag when a precision is given.
            Ok((sign(n < 0.0) + radix, digits, v.prec.is_none()))
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let n = to_number(arg, &what)?;
            let mag = n.abs();
            let upper = v.verb.is_ascii_uppercase();
            let body = if mag.is_nan() {
                "NaN".to_string()
            } else if mag.is_infinite() {
                "Inf".to_string()
            } else {
                match v.verb {
                    'f' | 'F' => format!("{:.*}", v.prec.unwrap_or(6), mag),
                    'e' | 'E' => exp_form(mag, v.prec.unwrap_or(6), upper),
                    _ => general_form(mag, v.prec, upper, v.sharp),
                }
            };
            Ok((sign(n < 0.0), body, true))
        }
        _ => Err(format!("unrecognized verb {}", q(text))),
    }
}

/// `1.234560e+03`, as Go prints `%e`: a sign and at least two exponent digits.
fn exp_form(m: f64, prec: usize, upper: bool) -> String {
    let s = format!("{m:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    join_exp(mant, exp.parse().unwrap_or(0), upper)
}

fn join_exp(mant: &str, exp: i32, upper: bool) -> String {
    let e = if upper { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}{e}{sign}{:02}", exp.unsigned_abs())
}

/// Go's `%g`: the shorter of `%e` and `%f`, without trailing zeros.
fn general_form(m: f64, prec: Option<usize>, upper: bool, keep_zeros: bool) -> String {
    if m == 0.0 {
        return "0".into();
    }
    let strip = |s: String| -> String {
        if keep_zeros || !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    match prec {
        None => {
            let s = format!("{m:e}");
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            // Go switches to the exponent form at 1e21 for shortest output.
            if !(-4..21).contains(&exp) {
                join_exp(mant, exp, upper)
            } else {
                format!("{m}")
            }
        }
        Some(p) => {
            let p = p.max(1);
            let s = format!("{:.*e}", p - 1, m);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            if exp < -4 || exp >= p as i32 {
                join_exp(&strip(mant.to_string()), exp, upper)
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                strip(format!("{m:.decimals$}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    fn fmt(spec: &str, args: Vec<Value>) -> Value {
        let mut all = vec![s(spec)];
        all.extend(args);
        ok("format", all)
    }

    fn fmt_err(spec: &str, args: Vec<Value>) -> String {
        let mut all = vec![s(spec)];
        all.extend(args);
        err("format", all)
    }

    #[test]
    fn format_verbs() {
        assert_eq!(fmt("Hello, %s!", vec![s("Ander")]), s("Hello, Ander!"));
        assert_eq!(
            fmt("There are %d lights", vec![n(4.0)]),
            s("There are 4 lights")
        );
        // A null argument makes the result null, as in Terraform.
        assert_eq!(fmt("%v", vec![Value::Null]), Value::Null);
        assert_eq!(
            fmt(
                "%v %v %v %v",
                vec![s("a"), n(1.5), Value::Bool(true), s("null")]
            ),
            s("a 1.5 true null")
        );
        assert_eq!(
            fmt("%v", vec![obj([("b", n(1.0)), ("a", ls(&["x"]))])]),
            s(r#"{"a":["x"],"b":1}"#)
        );
        assert_eq!(fmt("%#v", vec![s("a")]), s(r#""a""#));
        assert_eq!(fmt("%q", vec![s("a\"b")]), s(r#""a\"b""#));
        assert_eq!(fmt("%t", vec![Value::Bool(false)]), s("false"));
        assert_eq!(fmt("%t", vec![s("true")]), s("true"));
        assert_eq!(fmt("%f", vec![n(1.23456)]), s("1.234560"));
        assert_eq!(fmt("%.2f", vec![n(1.23456)]), s("1.23"));
        assert_eq!(fmt("%.0f", vec![n(2.5)]), s("2"));
        assert_eq!(fmt("%e", vec![n(1234.5678)]), s("1.234568e+03"));
        assert_eq!(fmt("%E", vec![n(0.000123)]), s("1.230000E-04"));
        assert_eq!(fmt("%g", vec![n(1234.5)]), s("1234.5"));
        assert_eq!(fmt("%g", vec![n(1e21)]), s("1e+21"));
        assert_eq!(fmt("%g", vec![n(0.00001)]), s("1e-05"));
        assert_eq!(fmt("%.3g", vec![n(1234.5)]), s("1.23e+03"));
        assert_eq!(fmt("%.3g", vec![n(1.5)]), s("1.5"));
        assert_eq!(
            fmt("%b %o %x %X", vec![n(5.0), n(8.0), n(255.0), n(255.0)]),
            s("101 10 ff FF")
        );
        assert_eq!(
            fmt("%#x %#o %#b", vec![n(255.0), n(8.0), n(2.0)]),
            s("0xff 010 0b10")
        );
        assert_eq!(fmt("%d", vec![n(-42.0)]), s("-42"));
        assert_eq!(fmt("%d", vec![s("7")]), s("7"));
        assert_eq!(fmt("%s", vec![n(7.0)]), s("7"));
        assert_eq!(fmt("%d", vec![n(1e20)]), s("100000000000000000000"));
        assert_eq!(fmt("100%%", vec![]), s("100%"));
        assert_eq!(fmt("%[2]s %[1]s", vec![s("a"), s("b")]), s("b a"));
        assert_eq!(fmt("ünïcødé %s", vec![s("🤔")]), s("ünïcødé 🤔"));
    }

    #[test]
    fn format_flags_width_and_precision() {
        assert_eq!(fmt("[%5s]", vec![s("ab")]), s("[   ab]"));
        assert_eq!(fmt("[%-5s]", vec![s("ab")]), s("[ab   ]"));
        assert_eq!(
            fmt("[%5s]", vec![s("ü")]),
            s("[    ü]"),
            "width counts characters"
        );
        assert_eq!(fmt("[%.2s]", vec![s("abcdef")]), s("[ab]"));
        assert_eq!(fmt("[%05d]", vec![n(-42.0)]), s("[-0042]"));
        assert_eq!(fmt("[%+d]", vec![n(42.0)]), s("[+42]"));
        assert_eq!(fmt("[% d]", vec![n(42.0)]), s("[ 42]"));
        assert_eq!(fmt("[%6.2f]", vec![n(1.23456)]), s("[  1.23]"));
        assert_eq!(fmt("[%06.2f]", vec![n(-1.23456)]), s("[-01.23]"));
        assert_eq!(fmt("[%.3d]", vec![n(7.0)]), s("[007]"));
        assert_eq!(fmt("[%-4d]", vec![n(7.0)]), s("[7   ]"));
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            fmt_err("%s %s", vec![s("a")]),
            "format: not enough arguments: `%s` needs value 2 but 1 value was given"
        );
        assert_eq!(
            fmt_err("%s", vec![]),
            "format: not enough arguments: `%s` needs value 1 but 0 values were given"
        );
        assert_eq!(
            fmt_err("%s", vec![s("a"), s("b")]),
            "format: too many arguments: the format string uses 1 value of 2"
        );
        assert_eq!(
            fmt_err("plain", vec![s("a")]),
            "format: too many arguments: the format string uses 0 values of 1"
        );
        assert_eq!(
            fmt_err("%d", vec![n(1.5)]),
            "format: the value for `%d` must be a whole number, got `1.5`"
        );
        assert_eq!(
            fmt_err("%d", vec![s("x")]),
            "format: the value for `%d` must be a number, got `x`"
        );
        assert_eq!(
            fmt_err("%s", vec![ls(&["a"])]),
            "format: the value for `%s` must be a string, got list"
        );
        assert_eq!(
            fmt_err("%t", vec![n(1.0)]),
            "format: the value for `%t` must be a bool, got number"
        );
        assert_eq!(
            fmt_err("%y", vec![s("a")]),
            "format: unrecognized verb `%y`"
        );
        assert_eq!(
            fmt_err("abc %", vec![]),
            "format: incomplete verb `%` at the end of the format string"
        );
        assert_eq!(
            fmt_err("%-5", vec![]),
            "format: incomplete verb `%-5` at the end of the format string"
        );
        assert_eq!(
            fmt_err("%[3]s", vec![s("a")]),
            "format: invalid argument index in `%[3]`"
        );
        assert_eq!(
            fmt_err("%[x", vec![s("a")]),
            "format: invalid argument index in `%[`"
        );
        assert_eq!(
            fmt_err("%99999s", vec![s("a")]),
            "format: width in `%99999` is too large"
        );
        assert_eq!(
            fmt_err("%.99999f", vec![n(1.0)]),
            "format: precision in `%.99999` is too large"
        );
        assert_eq!(
            fmt_err("%x", vec![n(1e20)]),
            "format: the value for `%x` is too large, got `100000000000000000000`"
        );
        assert_eq!(
            err("format", vec![ls(&[])]),
            "format: argument 1 must be a string, got list"
        );
    }

    #[test]
    fn formatlist_iterates_lists_in_step() {
        assert_eq!(
            ok(
                "formatlist",
                vec![
                    s("Hello, %s!"),
                    ls(&["Valentina", "Ander", "Olivia", "Sam"])
                ]
            ),
            ls(&[
                "Hello, Valentina!",
                "Hello, Ander!",
                "Hello, Olivia!",
                "Hello, Sam!"
            ])
        );
        assert_eq!(
            ok(
                "formatlist",
                vec![s("%s, %s!"), s("Salutations"), ls(&["Valentina", "Ander"])]
            ),
            ls(&["Salutations, Valentina!", "Salutations, Ander!"])
        );
        assert_eq!(
            ok(
                "formatlist",
                vec![s("%s=%d"), ls(&["a", "b"]), ln(&[1.0, 2.0])]
            ),
            ls(&["a=1", "b=2"])
        );
        assert_eq!(ok("formatlist", vec![s("%s"), s("x")]), ls(&["x"]));
        assert_eq!(ok("formatlist", vec![s("%s"), ls(&[])]), l(vec![]));
        assert_eq!(
            err("formatlist", vec![s("%s%s"), ls(&["a", "b"]), ls(&["a"])]),
            "formatlist: argument 3 has 1 element but argument 2 has 2 elements"
        );
        assert_eq!(
            err("formatlist", vec![s("%d"), ls(&["1", "x"])]),
            "formatlist: element 1: the value for `%d` must be a number, got `x`"
        );
    }
}
