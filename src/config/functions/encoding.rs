//! Encodings: base64, URL encoding and JSON.

use super::*;

pub(super) fn base64encode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(BASE64.encode(a.string(0)?)))
}

pub(super) fn base64decode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let bytes = BASE64
        .decode(a.string(0)?)
        .map_err(|_| "argument 1 is not valid base64".to_string())?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8".to_string())
}

pub(super) fn urlencode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // As Go's url.QueryEscape: unreserved bytes stay, space becomes `+`.
    let s = a.string(0)?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(Value::String(out))
}

pub(super) fn jsonencode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(json_text(a.arg(0))?))
}

/// JSON with sorted keys and whole numbers without `.0`; `<`, `>`, `&`,
/// U+2028 and U+2029 escaped, as Terraform does so the output is safe to
/// embed in HTML and JavaScript.
pub(super) fn json_text(v: &Value) -> Result<String, String> {
    fn check(v: &Value) -> Result<(), String> {
        match v {
            Value::Number(n) if !n.is_finite() => Err(format!(
                "cannot encode the non-finite number {} as JSON",
                q(&format_number(*n))
            )),
            Value::List(l) => l.iter().try_for_each(check),
            Value::Map(m) => m.values().try_for_each(check),
            _ => Ok(()),
        }
    }
    fn string(s: &str, out: &mut String) {
        for c in serde_json::Value::from(s).to_string().chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
    }
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Null | Value::Unknown => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // Whole numbers in full up to 1e21, as Terraform prints them;
            // beyond that, and for fractions, the shortest exact form.
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e21 => {
                out.push_str(&format!("{n:.0}"))
            }
            Value::Number(n) => out.push_str(&serde_json::Value::from(*n).to_string()),
            Value::String(s) => string(s, out),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(k, out);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Sensitive(v) => write(v, out),
        }
    }
    check(v)?;
    let mut out = String::new();
    write(v, &mut out);
    Ok(out)
}

pub(super) fn jsondecode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // Not Value::from_json: that would turn `{"$berth": "unknown"}` in a
    // user's document into an unknown.
    fn convert(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(l) => Value::List(l.into_iter().map(convert).collect()),
            serde_json::Value::Object(m) => {
                Value::Map(m.into_iter().map(|(k, v)| (k, convert(v))).collect())
            }
        }
    }
    let s = a.string(0)?;
    // serde_json's messages give a position, never the text itself.
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| format!("argument 1 is not valid JSON: {e}"))?;
    Ok(convert(j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn json_round_trips() {
        assert_eq!(
            ok("jsonencode", vec![obj([("hello", s("world"))])]),
            s(r#"{"hello":"world"}"#)
        );
        assert_eq!(
            ok(
                "jsonencode",
                vec![obj([
                    ("b", n(1.0)),
                    ("a", l(vec![n(2.5), Value::Bool(true), Value::Null]))
                ])]
            ),
            s(r#"{"a":[2.5,true,null],"b":1}"#)
        );
        assert_eq!(ok("jsonencode", vec![Value::Null]), s("null"));
        assert_eq!(
            ok("jsonencode", vec![s("<a & b>")]),
            s(r#""\u003ca \u0026 b\u003e""#)
        );
        assert_eq!(ok("jsonencode", vec![n(1e20)]), s("100000000000000000000"));
        assert_eq!(ok("jsonencode", vec![n(-0.5)]), s("-0.5"));
        assert_eq!(ok("jsonencode", vec![n(1e300)]), s("1e+300"));
        assert_eq!(
            ok("jsonencode", vec![s("tab\t\"q\" \u{2028}")]),
            s(r#""tab\t\"q\" \u2028""#)
        );
        assert_eq!(
            err("jsonencode", vec![n(f64::INFINITY)]),
            "jsonencode: cannot encode the non-finite number `inf` as JSON"
        );
        assert_eq!(
            ok("jsondecode", vec![s(r#"{"hello": "world"}"#)]),
            obj([("hello", s("world"))])
        );
        assert_eq!(ok("jsondecode", vec![s("true")]), Value::Bool(true));
        assert_eq!(ok("jsondecode", vec![s("[1, 2.5]")]), ln(&[1.0, 2.5]));
        // The plan's unknown sentinel is ordinary data here.
        assert_eq!(
            ok("jsondecode", vec![s(r#"{"$berth": "unknown"}"#)]),
            obj([("$berth", s("unknown"))])
        );
        let e = err("jsondecode", vec![s("{nope")]);
        assert!(
            e.starts_with("jsondecode: argument 1 is not valid JSON: "),
            "{e}"
        );
        let deep = "[".repeat(10_000);
        assert!(
            err("jsondecode", vec![s(&deep)])
                .starts_with("jsondecode: argument 1 is not valid JSON")
        );
    }

    #[test]
    fn base64_hashes_and_urls() {
        assert_eq!(
            ok("base64encode", vec![s("Hello World")]),
            s("SGVsbG8gV29ybGQ=")
        );
        assert_eq!(
            ok("base64decode", vec![s("SGVsbG8gV29ybGQ=")]),
            s("Hello World")
        );
        assert_eq!(
            err("base64decode", vec![s("!!!")]),
            "base64decode: argument 1 is not valid base64"
        );
        assert_eq!(
            err("base64decode", vec![s("/w==")]),
            "base64decode: the decoded bytes are not valid UTF-8"
        );
        assert_eq!(
            ok("sha256", vec![s("hello world")]),
            s("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
        assert_eq!(
            ok("base64sha256", vec![s("hello world")]),
            s("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")
        );
        assert_eq!(ok("sha512", vec![s("")]).as_str().map(str::len), Some(128));
        assert_eq!(
            ok("urlencode", vec![s("Hello World!")]),
            s("Hello+World%21")
        );
        assert_eq!(ok("urlencode", vec![s("ü/~")]), s("%C3%BC%2F~"));
    }
}
