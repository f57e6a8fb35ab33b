//! `yamlencode` and `yamldecode`, as Terraform writes and reads YAML.
//!
//! yaml-rust2 does the parsing; what a plain scalar means is decided here,
//! with the YAML 1.1 rules Terraform follows (`yes` is true, `~` is null,
//! a date is a timestamp). The encoder is written out here because
//! Terraform's output has a fixed shape: every string double-quoted unless
//! it spans lines (then a literal block), sequences in a mapping not
//! indented, and `...` after a document that is one plain scalar.

use super::*;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

pub(super) fn yamldecode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let text = a.string(0)?;
    let mut parser = Parser::new_from_str(&text);
    let mut events = Vec::new();
    loop {
        let (ev, _) = parser.next_token().map_err(|e| {
            format!(
                "on line {}, column {}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        if ev == Event::StreamEnd {
            break;
        }
        events.push(ev);
        if events.len() > 1_000_000 {
            return Err("the document is too large".into());
        }
    }
    let docs = events
        .iter()
        .filter(|e| **e == Event::DocumentStart)
        .count();
    if docs > 1 {
        return Err("the string holds more than one YAML document".into());
    }
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut pos = 0;
    while pos < events.len() && matches!(events[pos], Event::StreamStart | Event::DocumentStart) {
        pos += 1;
    }
    if pos >= events.len() || events[pos] == Event::DocumentEnd {
        return Err("on line 1, column 1: missing start of document".into());
    }
    build(&events, &mut pos, &mut anchors, 0)
}

use std::collections::HashMap;

fn build(
    events: &[Event],
    pos: &mut usize,
    anchors: &mut HashMap<usize, Value>,
    depth: usize,
) -> Result<Value, String> {
    if depth > 500 {
        return Err("the document nests too deep".into());
    }
    let ev = events.get(*pos).ok_or("unexpected end of the document")?;
    *pos += 1;
    let (v, anchor) = match ev {
        Event::Scalar(s, style, anchor, tag) => match scalar(s, *style, tag.as_ref())? {
            // Terraform's numbers have no NaN, and an infinity cannot be
            // stored: refuse them here rather than later.
            Value::Unknown => return Err(format!("{} is not a finite number", q(s))),
            v => (v, *anchor),
        },
        Event::Alias(id) => {
            return anchors
                .get(id)
                .cloned()
                .ok_or_else(|| "unknown anchor".to_string());
        }
        Event::SequenceStart(anchor, _) => {
            let mut items = Vec::new();
            while events.get(*pos) != Some(&Event::SequenceEnd) {
                items.push(build(events, pos, anchors, depth + 1)?);
            }
            *pos += 1;
            (Value::List(items), *anchor)
        }
        Event::MappingStart(anchor, _) => {
            let mut m = Map::new();
            while events.get(*pos) != Some(&Event::MappingEnd) {
                let k = build(events, pos, anchors, depth + 1)?;
                let key = match k {
                    Value::String(s) => s,
                    Value::Number(n) => format_number(n),
                    Value::BigNumber(n) => n.to_text(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => "null".to_string(),
                    _ => return Err("a mapping key must be a scalar".into()),
                };
                let v = build(events, pos, anchors, depth + 1)?;
                m.insert(key, v);
            }
            *pos += 1;
            (Value::Map(m), *anchor)
        }
        other => return Err(format!("unexpected YAML event {other:?}")),
    };
    if anchor > 0 {
        anchors.insert(anchor, v.clone());
    }
    Ok(v)
}

fn scalar(s: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        let name = if t.handle == "!!" {
            t.suffix.as_str()
        } else {
            t.suffix.trim_start_matches("tag:yaml.org,2002:")
        };
        return match name {
            "str" => Ok(Value::String(s.to_string())),
            "null" => Ok(Value::Null),
            "bool" => match resolve(s) {
                v @ Value::Bool(_) => Ok(v),
                _ => Err(format!("cannot decode {} as a bool", q(s))),
            },
            "int" | "float" => match resolve(s) {
                v @ (Value::Number(_) | Value::BigNumber(_)) => Ok(v),
                _ => Err(format!("cannot decode {} as a number", q(s))),
            },
            "binary" => Ok(Value::String(s.to_string())),
            _ => Ok(Value::String(s.to_string())),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(s.to_string()));
    }
    Ok(resolve(s))
}

/// What a plain scalar means under YAML 1.1's rules, as Terraform reads it.
fn resolve(s: &str) -> Value {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            return Value::Unknown;
        }
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let radix = |prefix: &str, base: u32| -> Option<Value> {
        let body = digits.strip_prefix(prefix)?;
        let n = num_bigint::BigInt::parse_bytes(body.as_bytes(), base)?;
        Some(crate::value::BigNum::from_int(&if neg { -n } else { n }).into_value())
    };
    if let Some(v) = radix("0x", 16)
        .or_else(|| radix("0b", 2))
        .or_else(|| radix("0o", 8))
    {
        return v;
    }
    if let Some(n) = crate::value::BigNum::parse(s) {
        return n.into_value();
    }
    if let Some(t) = timestamp(s) {
        return Value::String(t);
    }
    Value::String(s.to_string())
}

/// A YAML timestamp as an RFC 3339 string: `2001-12-14` is midnight UTC.
fn timestamp(s: &str) -> Option<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && s.len() == 10
    {
        return Some(format!("{}T00:00:00Z", d.format("%Y-%m-%d")));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

pub(super) fn yamlencode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let v = a.take(0);
    let mut out = String::new();
    match &v {
        Value::String(s) if s.contains('\n') => literal(s, 2, &mut out),
        Value::List(l) | Value::Set(l) if !l.is_empty() => seq(l, 0, &mut out),
        Value::Map(m) if !m.is_empty() => map(m, 0, &mut out),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
            if matches!(
                other,
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::BigNumber(_)
            ) {
                out.push_str("...\n");
            }
        }
    }
    Ok(Value::String(out))
}

/// A value that fits on the line after `- ` or `key: `.
fn inline(v: &Value) -> String {
    match v {
        Value::Null | Value::Unknown => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::BigNumber(n) => n.to_text(),
        Value::String(s) => quoted(s),
        Value::List(l) | Value::Set(l) if l.is_empty() => "[]".into(),
        Value::Map(m) if m.is_empty() => "{}".into(),
        Value::Sensitive(v) => inline(v),
        _ => String::new(),
    }
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::List(l) | Value::Set(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::String(s) => s.contains('\n'),
        Value::Sensitive(v) => is_block(v),
        _ => false,
    }
}

/// A multi-line string as a literal block, indented by `indent`.
fn literal(s: &str, indent: usize, out: &mut String) {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let lead = if s.starts_with(' ') { "2" } else { "" };
    out.push_str(&format!("|{lead}{chomp}\n"));
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn value_after(v: &Value, indent: usize, in_map: bool, out: &mut String) {
    match v {
        Value::Sensitive(v) => value_after(v, indent, in_map, out),
        Value::String(s) if s.contains('\n') => {
            out.push(' ');
            literal(s, indent + 2, out);
        }
        Value::List(l) | Value::Set(l) if !l.is_empty() => {
            out.push('\n');
            // A sequence under a key is not indented; one in a sequence is.
            seq(l, if in_map { indent } else { indent + 2 }, out);
        }
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            map(m, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn seq(items: &[Value], indent: usize, out: &mut String) {
    for v in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v.unmarked() {
            Value::Map(m) if !m.is_empty() => {
                // The first key shares the dash's line.
                out.push(' ');
                let mut first = String::new();
                map(m, indent + 2, &mut first);
                out.push_str(first.trim_start_matches(' '));
            }
            Value::List(l) | Value::Set(l) if !l.is_empty() => {
                out.push(' ');
                let mut inner = String::new();
                seq(l, indent + 2, &mut inner);
                out.push_str(inner.trim_start_matches(' '));
            }
            other if is_block(other) => value_after(other, indent, false, out),
            other => {
                out.push(' ');
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn map(m: &Map, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quoted(k));
        out.push(':');
        value_after(v, indent, true, out);
    }
}
