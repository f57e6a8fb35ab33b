//! Record types and values: per-type validation, the canonical form berth
//! stores and compares (so `10.0.1.5` and a CNAME target with or without its
//! trailing dot never show as drift), and the presentation form Route53
//! expects in `Value` elements.
//!
//! TXT values are written unquoted in configuration, as in Terraform; they
//! are quoted here, split into the 255-byte character-strings DNS allows,
//! and decoded again when read back.

use super::names;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The record types `aws_route53_record` manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
    Srv,
    Mx,
}

pub const SUPPORTED: &str = "A, AAAA, CNAME, TXT, SRV, MX";

/// The longest character-string in a TXT record.
const TXT_CHUNK: usize = 255;

impl RecordType {
    pub fn parse(s: &str) -> Option<RecordType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "TXT" => RecordType::Txt,
            "SRV" => RecordType::Srv,
            "MX" => RecordType::Mx,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Srv => "SRV",
            RecordType::Mx => "MX",
        }
    }

    /// TXT and SRV names carry `_service._proto` style labels.
    pub fn allows_underscore(self) -> bool {
        matches!(self, RecordType::Txt | RecordType::Srv)
    }

    pub fn sdk(self) -> aws_sdk_route53::types::RrType {
        aws_sdk_route53::types::RrType::from(self.as_str())
    }
}

fn u16_field(what: &str, s: &str, value: &str) -> Result<u16, String> {
    s.parse::<u16>().map_err(|_| format!("{what} `{s}` in `{value}` is not a number from 0 to 65535"))
}

fn target(value: &str, t: &str) -> Result<String, String> {
    // Targets are host names; `_` is common in service targets, so allow it.
    if t == "." {
        return Ok(".".into());
    }
    names::validate(t, true).map_err(|e| format!("target of `{value}`: {e}"))?;
    Ok(names::normalize(t))
}

/// Checks one value of a record of type `t` and returns its canonical form.
pub fn canonical(t: RecordType, value: &str) -> Result<String, String> {
    match t {
        RecordType::A => value
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("`{value}` is not an IPv4 address (an A record holds addresses like `10.0.1.5`)")),
        RecordType::Aaaa => value
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("`{value}` is not an IPv6 address (an AAAA record holds addresses like `fd00::5`)")),
        RecordType::Cname => {
            names::validate(value, true).map_err(|e| format!("CNAME target `{value}`: {e}"))?;
            Ok(names::normalize(value))
        }
        RecordType::Mx => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            let [prio, host] = parts[..] else {
                return Err(format!("`{value}` is not an MX value `PRIORITY HOST` (like `10 mail.internal`)"));
            };
            let prio = u16_field("priority", prio, value)?;
            Ok(format!("{prio} {}", target(value, host)?))
        }
        RecordType::Srv => {
            let parts: Vec<&str> = value.split_whitespace().collect();
            let [prio, weight, port, host] = parts[..] else {
                return Err(format!(
                    "`{value}` is not an SRV value `PRIORITY WEIGHT PORT TARGET` (like `10 5 5060 sip.internal`)"
                ));
            };
            let prio = u16_field("priority", prio, value)?;
            let weight = u16_field("weight", weight, value)?;
            let port = u16_field("port", port, value)?;
            Ok(format!("{prio} {weight} {port} {}", target(value, host)?))
        }
        RecordType::Txt => Ok(value.to_string()),
    }
}

/// The `Value` element Route53 expects for a canonical value.
pub fn to_api(t: RecordType, canonical: &str) -> String {
    match t {
        RecordType::Txt => encode_txt(canonical),
        _ => canonical.to_string(),
    }
}

/// A `Value` element read from Route53 in canonical form. A value berth
/// cannot parse (someone wrote garbage through the console) is kept as it
/// is, so it still shows as drift.
pub fn from_api(t: RecordType, raw: &str) -> String {
    match t {
        RecordType::Txt => decode_txt(raw),
        _ => canonical(t, raw).unwrap_or_else(|_| raw.to_string()),
    }
}

/// Quotes a TXT value as DNS character-strings of at most 255 bytes each.
/// Bytes outside printable ASCII are written as `\DDD` octal escapes, which
/// Route53 accepts and returns.
pub fn encode_txt(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for (i, chunk) in value.as_bytes().chunks(TXT_CHUNK).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        for &b in chunk {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03o}")),
            }
        }
        out.push('"');
    }
    if value.is_empty() {
        out.push_str("\"\"");
    }
    out
}

/// Reverses [`encode_txt`]: joins the quoted character-strings. Text outside
/// quotes (Route53 never returns it, but a hand-written record may hold it)
/// is taken as it is.
pub fn decode_txt(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut quoted = false;
    let mut any_quote = false;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            quoted = !quoted;
            any_quote = true;
            i += 1;
            continue;
        }
        if c == b'\\' && i + 1 < b.len() {
            if i + 3 < b.len() && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        // Spaces between character-strings separate them; they are not data.
        if !quoted && any_quote && c == b' ' {
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_by_type() {
        assert_eq!(canonical(RecordType::A, "10.0.1.5").unwrap(), "10.0.1.5");
        assert!(canonical(RecordType::A, "10.0.1.300").unwrap_err().contains("`10.0.1.300`"));
        assert!(canonical(RecordType::A, "fd00::1").is_err());
        assert_eq!(canonical(RecordType::Aaaa, "FD00:0::1").unwrap(), "fd00::1");
        assert!(canonical(RecordType::Aaaa, "10.0.0.1").is_err());
        assert_eq!(canonical(RecordType::Cname, "Micro-Search.internal.").unwrap(), "micro-search.internal");
        assert_eq!(canonical(RecordType::Mx, "10  mail.internal.").unwrap(), "10 mail.internal");
        assert!(canonical(RecordType::Mx, "mail.internal").unwrap_err().contains("PRIORITY HOST"));
        assert!(canonical(RecordType::Mx, "70000 mail.internal").unwrap_err().contains("65535"));
        assert_eq!(canonical(RecordType::Srv, "10 5 5060 _sip.internal").unwrap(), "10 5 5060 _sip.internal");
        assert!(canonical(RecordType::Srv, "10 5 sip.internal").unwrap_err().contains("PRIORITY WEIGHT PORT TARGET"));
    }

    #[test]
    fn txt_round_trips_through_quoting_and_chunks() {
        for v in ["plain", "with \"quotes\" and \\", "", "ünïcode", &"x".repeat(600)] {
            let enc = encode_txt(v);
            assert!(enc.starts_with('"') && enc.ends_with('"'));
            assert_eq!(decode_txt(&enc), v, "{enc}");
        }
        let enc = encode_txt(&"x".repeat(300));
        assert_eq!(enc.matches('"').count(), 4, "two character-strings: {enc}");
        assert_eq!(decode_txt("unquoted text"), "unquoted text");
    }
}
