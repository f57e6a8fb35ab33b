//! Time functions: `formatdate`, `timeadd`, `timecmp`, `timestamp` and
//! `plantimestamp`. Timestamps are RFC 3339 strings, as in Terraform.

use super::*;
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike, Utc};

fn parse_time(s: &str, what: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s).map_err(|_| {
        format!(
            "{what} is not a valid RFC 3339 timestamp, e.g. `2024-03-05T14:07:09Z`, got {}",
            q(s)
        )
    })
}

/// A timestamp as Terraform writes one: seconds only, `Z` for UTC.
fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current time. Terraform gives a new value on every run.
pub(super) fn timestamp(_: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    ))
}

/// The time of the plan; berth plans and applies in one run, so this is the
/// time of the call.
pub(super) fn plantimestamp(_: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    ))
}

pub(super) fn timecmp(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let x = parse_time(&a.string(0)?, "argument 1")?;
    let y = parse_time(&a.string(1)?, "argument 2")?;
    Ok(Value::Number(match x.cmp(&y) {
        std::cmp::Ordering::Less => -1.0,
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Greater => 1.0,
    }))
}

/// Reads a Go duration: `1h30m`, `-10s`, `1.5h`, `300ms`.
fn parse_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(if neg { -total } else { total })
}

pub(super) fn timeadd(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let t = parse_time(&a.string(0)?, "argument 1")?;
    let d = a.string(1)?;
    let secs = parse_duration(&d).ok_or_else(|| {
        format!(
            "invalid duration {}: use units such as `1h30m` or `-10s`",
            q(&d)
        )
    })?;
    let nanos = (secs * 1e9).round();
    if !nanos.is_finite() || nanos.abs() > 9.2e18 {
        return Err(format!("the duration {} is too long", q(&d)));
    }
    let out = t
        .checked_add_signed(chrono::Duration::nanoseconds(nanos as i64))
        .ok_or_else(|| "the result is out of range".to_string())?;
    Ok(Value::String(rfc3339(&out)))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

pub(super) fn formatdate(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let spec = a.string(0)?;
    let t = parse_time(&a.string(1)?, "argument 2")?;
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'literal' text; '' is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let end = chars[i + 1..]
                .iter()
                .position(|c| *c == '\'')
                .ok_or_else(|| "the format has an unterminated quoted literal".to_string())?;
            out.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let off = t.offset().local_minus_utc();
        let (sign, oh, om) = (
            if off < 0 { '-' } else { '+' },
            off.abs() / 3600,
            off.abs() % 3600 / 60,
        );
        let h12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let piece = match (c, n) {
            ('Y', 4) => format!("{:04}", t.year()),
            ('Y', 2) => format!("{:02}", t.year() % 100),
            ('M', 4) => MONTHS[t.month0() as usize].to_string(),
            ('M', 3) => MONTHS[t.month0() as usize][..3].to_string(),
            ('M', 2) => format!("{:02}", t.month()),
            ('M', 1) => t.month().to_string(),
            ('D', 2) => format!("{:02}", t.day()),
            ('D', 1) => t.day().to_string(),
            ('E', 4) => DAYS[t.weekday().num_days_from_monday() as usize].to_string(),
            ('E', 3) => DAYS[t.weekday().num_days_from_monday() as usize][..3].to_string(),
            ('h', 2) => format!("{:02}", t.hour()),
            ('h', 1) => t.hour().to_string(),
            ('H', 2) => format!("{h12:02}"),
            ('H', 1) => h12.to_string(),
            ('A', 2) => (if t.hour() < 12 { "AM" } else { "PM" }).to_string(),
            ('a', 2) => (if t.hour() < 12 { "am" } else { "pm" }).to_string(),
            ('m', 2) => format!("{:02}", t.minute()),
            ('m', 1) => t.minute().to_string(),
            ('s', 2) => format!("{:02}", t.second()),
            ('s', 1) => t.second().to_string(),
            ('Z', 5) => format!("{sign}{oh:02}:{om:02}"),
            ('Z', 4) => format!("{sign}{oh:02}{om:02}"),
            ('Z', 3) if off == 0 => "UTC".to_string(),
            ('Z', 3) => format!("{sign}{oh:02}{om:02}"),
            ('Z', 1) if off == 0 => "Z".to_string(),
            ('Z', 1) => format!("{sign}{oh:02}:{om:02}"),
            _ => {
                return Err(format!(
                    "invalid date format verb {}: letters in the format are verbs such as `YYYY`, quote literal text with `'`",
                    q(&c.to_string().repeat(n))
                ));
            }
        };
        out.push_str(&piece);
    }
    Ok(Value::String(out))
}
