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
            // As Terraform prints numbers: in full, never with an exponent.
            Value::Number(n) => out.push_str(&format_number(*n)),
            Value::BigNumber(n) => out.push_str(&n.to_text()),
            Value::String(s) => string(s, out),
            Value::List(l) | Value::Set(l) => {
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
    let s = a.string(0)?;
    // serde_json checks the document (its messages give a position, never
    // the text itself); the values are read here, so numbers keep every
    // digit, as in Terraform. Not Value::from_json: that would turn
    // `{"$berth": "unknown"}` in a user's document into an unknown.
    serde_json::from_str::<serde::de::IgnoredAny>(&s)
        .map_err(|e| format!("argument 1 is not valid JSON: {e}"))?;
    let mut r = JsonText {
        s: s.as_bytes(),
        i: 0,
    };
    r.value(0)
}

/// A reader of JSON already checked by serde_json.
struct JsonText<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonText<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 500 {
            return Err("the JSON document nests too deep".into());
        }
        self.ws();
        let bad = || "argument 1 is not valid JSON".to_string();
        match self.s.get(self.i).copied().ok_or_else(bad)? {
            b'{' => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Map(m));
                    }
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                        self.ws();
                    }
                    let Value::String(k) = self.string()? else {
                        return Err(bad());
                    };
                    self.ws();
                    self.i += 1; // the `:`
                    let v = self.value(depth + 1)?;
                    m.insert(k, v);
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        Some(b',') => self.i += 1,
                        Some(_) => items.push(self.value(depth + 1)?),
                        None => return Err(bad()),
                    }
                }
            }
            b'"' => self.string(),
            b't' => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            b'f' => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            b'n' => {
                self.i += 4;
                Ok(Value::Null)
            }
            _ => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| bad())?;
                crate::value::BigNum::parse(text)
                    .map(crate::value::BigNum::into_value)
                    .ok_or_else(|| format!("the number {} is out of range", q(text)))
            }
        }
    }

    fn string(&mut self) -> Result<Value, String> {
        let start = self.i;
        self.i += 1;
        while let Some(c) = self.s.get(self.i) {
            match c {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let text =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                    return serde_json::from_str::<String>(text)
                        .map(Value::String)
                        .map_err(|e| e.to_string());
                }
                _ => self.i += 1,
            }
        }
        Err("argument 1 is not valid JSON".into())
    }
}

/// gzip, then base64, byte for byte as Terraform's Go writer frames it: a
/// header without a name or time, the data flushed, then an empty final
/// block.
pub(super) fn base64gzip(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let data = a.string(0)?;
    let mut deflate = flate2::Compress::new(flate2::Compression::default(), false);
    let mut body = Vec::with_capacity(data.len() + 64);
    deflate
        .compress_vec(data.as_bytes(), &mut body, flate2::FlushCompress::Sync)
        .map_err(|e| format!("cannot compress: {e}"))?;
    while deflate.total_in() < data.len() as u64 || body.len() == body.capacity() {
        body.reserve(data.len() + 64);
        let at = deflate.total_in() as usize;
        deflate
            .compress_vec(
                &data.as_bytes()[at..],
                &mut body,
                flate2::FlushCompress::Sync,
            )
            .map_err(|e| format!("cannot compress: {e}"))?;
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&body);
    out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    let mut crc = flate2::Crc::new();
    crc.update(data.as_bytes());
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(Value::String(BASE64.encode(out)))
}

/// The bytes of `text` in the character encoding `name`.
fn encode_text(text: &str, name: &str) -> Result<Vec<u8>, String> {
    let upper = name.to_ascii_uppercase();
    let utf16 = |be: bool, bom: bool| {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(&[0xfe, 0xff]);
        }
        for u in text.encode_utf16() {
            out.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    };
    match upper.as_str() {
        "UTF-16" => return Ok(utf16(true, true)),
        "UTF-16BE" => return Ok(utf16(true, false)),
        "UTF-16LE" => return Ok(utf16(false, false)),
        "ISO-8859-1" | "LATIN1" | "ISO_8859-1" => {
            return text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    format!(
                        "the given string contains characters that cannot be represented in {}",
                        q(name)
                    )
                });
        }
        _ => {}
    }
    let enc = encoding_rs::Encoding::for_label(name.as_bytes())
        .ok_or_else(|| format!("{} is not a supported IANA encoding name or alias", q(name)))?;
    let (bytes, _, unmappable) = enc.encode(text);
    if unmappable {
        return Err(format!(
            "the given string contains characters that cannot be represented in {}",
            q(name)
        ));
    }
    Ok(bytes.into_owned())
}

fn decode_text(bytes: &[u8], name: &str) -> Result<String, String> {
    let upper = name.to_ascii_uppercase();
    let bad = || format!("the given value is has an invalid {} encoding", q(name));
    let utf16 = |b: &[u8], be: bool| -> Result<String, String> {
        if !b.len().is_multiple_of(2) {
            return Err(bad());
        }
        let units: Vec<u16> = b
            .chunks(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| bad())
    };
    match upper.as_str() {
        "UTF-16" => {
            return match bytes {
                [0xff, 0xfe, rest @ ..] => utf16(rest, false),
                [0xfe, 0xff, rest @ ..] => utf16(rest, true),
                _ => utf16(bytes, true),
            };
        }
        "UTF-16BE" => return utf16(bytes, true),
        "UTF-16LE" => return utf16(bytes, false),
        "ISO-8859-1" | "LATIN1" | "ISO_8859-1" => {
            return Ok(bytes.iter().map(|b| char::from(*b)).collect());
        }
        _ => {}
    }
    let enc = encoding_rs::Encoding::for_label(name.as_bytes())
        .ok_or_else(|| format!("{} is not a supported IANA encoding name or alias", q(name)))?;
    let (text, malformed) = enc.decode_without_bom_handling(bytes);
    if malformed {
        return Err(bad());
    }
    Ok(text.into_owned())
}

pub(super) fn textencodebase64(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let bytes = encode_text(&a.string(0)?, &a.string(1)?)?;
    Ok(Value::String(BASE64.encode(bytes)))
}

pub(super) fn textdecodebase64(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let name = a.string(1)?;
    // The encoding is checked first, as Terraform does.
    decode_text(b"", &name)?;
    let bytes = BASE64
        .decode(a.string(0)?)
        .map_err(|_| "argument 1 is not valid base64".to_string())?;
    decode_text(&bytes, &name).map(Value::String)
}

/// CSV with a header row, as Go's `encoding/csv` reads it: a list of
/// objects, one per row, every value a string.
pub(super) fn csvdecode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let text = a.string(0)?;
    let rows = csv_rows(&text)?;
    let mut it = rows.into_iter();
    let Some(header) = it.next() else {
        return Err("missing header line".into());
    };
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            return Err(format!("duplicate column name {}", q(h)));
        }
    }
    let mut out = Vec::new();
    for (n, row) in it.enumerate() {
        if row.len() != header.len() {
            return Err(format!(
                "record on line {} has {} fields, the header has {}",
                n + 2,
                row.len(),
                header.len()
            ));
        }
        let m: Map = header
            .iter()
            .cloned()
            .zip(row.into_iter().map(Value::String))
            .collect();
        out.push(Value::Map(m));
    }
    Ok(Value::List(out))
}

fn csv_rows(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // Empty lines are skipped.
        if chars[i] == '\n' || (chars[i] == '\r' && chars.get(i + 1) == Some(&'\n')) {
            i += if chars[i] == '\r' { 2 } else { 1 };
            line += 1;
            continue;
        }
        let mut row = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "line {line}: extraneous or missing \" in quoted-field"
                            ));
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            if !(*c == '\r' && chars.get(i + 1) == Some(&'\n')) {
                                field.push(*c);
                            }
                            i += 1;
                        }
                    }
                }
                if !matches!(chars.get(i), None | Some(',' | '\n' | '\r')) {
                    return Err(format!(
                        "line {line}: extraneous or missing \" in quoted-field"
                    ));
                }
            } else {
                while let Some(c) = chars.get(i) {
                    if matches!(c, ',' | '\n')
                        || (*c == '\r' && matches!(chars.get(i + 1), Some('\n') | None))
                    {
                        break;
                    }
                    if *c == '"' {
                        return Err(format!("line {line}: bare \" in non-quoted-field"));
                    }
                    field.push(*c);
                    i += 1;
                }
            }
            row.push(field);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('\r') => {
                    i += if chars.get(i + 1) == Some(&'\n') {
                        2
                    } else {
                        1
                    };
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        rows.push(row);
    }
    Ok(rows)
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
        // Terraform writes every number in full, never with an exponent.
        assert_eq!(
            ok("jsonencode", vec![n(1e300)]),
            s(&format!("1{}", "0".repeat(300)))
        );
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
