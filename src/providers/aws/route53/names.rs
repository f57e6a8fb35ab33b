//! DNS names as berth hands them to Route53: validation before any API
//! call, the canonical spelling used in state (lower case, no trailing dot),
//! the fully qualified name of a zone-relative record name, and the name of
//! the ownership record that stands beside each managed record.
//!
//! Route53 answers with names in its own presentation form (trailing dot,
//! `\052` for `*`, octal escapes for other special bytes), so names read back
//! from the API go through [`from_api`] before they are compared.

/// RFC 1035: a name is at most 255 octets on the wire, 253 characters written
/// without the trailing dot.
pub const MAX_NAME: usize = 253;
pub const MAX_LABEL: usize = 63;

/// The label prefix of ownership records (see the registry module).
pub const OWNER_PREFIX: &str = "_berth-owner";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name `{name}` is {len} characters long; a DNS name has at most 253")]
    TooLong { name: String, len: usize },
    #[error("name `{name}` has an empty label (a leading dot or two dots in a row)")]
    EmptyLabel { name: String },
    #[error("label `{label}` of `{name}` is {len} characters long; a label has at most 63")]
    LabelTooLong { name: String, label: String, len: usize },
    #[error("label `{label}` of `{name}` contains `{ch}`; a label holds letters, digits and hyphens{hint}")]
    BadChar { name: String, label: String, ch: char, hint: &'static str },
    #[error("label `{label}` of `{name}` starts or ends with a hyphen")]
    Hyphen { name: String, label: String },
    #[error("`*` in `{name}` is only allowed as the whole first label (`*.example.internal`)")]
    Wildcard { name: String },
}

/// Lower case, without the trailing dot: the spelling berth stores and compares.
pub fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Checks a record or zone name. `underscore` allows `_` in labels, as TXT
/// and SRV names need it (`_sip._tcp.example.internal`).
pub fn validate(name: &str, underscore: bool) -> Result<(), NameError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err(NameError::Empty);
    }
    if bare.len() > MAX_NAME {
        return Err(NameError::TooLong { name: name.to_string(), len: bare.len() });
    }
    for (i, label) in bare.split('.').enumerate() {
        let err_name = || name.to_string();
        if label.is_empty() {
            return Err(NameError::EmptyLabel { name: err_name() });
        }
        if label == "*" {
            if i == 0 {
                continue;
            }
            return Err(NameError::Wildcard { name: err_name() });
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong { name: err_name(), label: label.to_string(), len: label.len() });
        }
        if let Some(ch) = label.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_')))
        {
            if ch == '*' {
                return Err(NameError::Wildcard { name: err_name() });
            }
            let hint = if ch == '_' { " (`_` only in TXT and SRV names)" } else { "" };
            return Err(NameError::BadChar { name: err_name(), label: label.to_string(), ch, hint });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen { name: err_name(), label: label.to_string() });
        }
    }
    Ok(())
}

/// The fully qualified name of `name` in `zone`: a name that does not end
/// with the zone's name is relative to it, as in Terraform.
pub fn fqdn(name: &str, zone: &str) -> String {
    let n = normalize(name);
    let z = normalize(zone);
    if n == z || n.ends_with(&format!(".{z}")) { n } else { format!("{n}.{z}") }
}

/// The name of the ownership TXT record of the record `fqdn` of type
/// `rtype`: `_berth-owner-a.micro-search.internal`. The type is part of the
/// first label so an A and an AAAA record of one name have separate owners,
/// and the owner never shares a name with its record (a CNAME may not have
/// other data beside it). A wildcard `*.apps.internal` cannot carry a prefix
/// label in front of `*`, so its owner is `_berth-owner-a-wildcard.apps.internal`.
pub fn owner_name(fqdn: &str, rtype: &str) -> String {
    let t = rtype.to_ascii_lowercase();
    match fqdn.strip_prefix("*.") {
        Some(rest) => format!("{OWNER_PREFIX}-{t}-wildcard.{rest}"),
        None if fqdn == "*" => format!("{OWNER_PREFIX}-{t}-wildcard"),
        None => format!("{OWNER_PREFIX}-{t}.{fqdn}"),
    }
}

/// The ownership record of one record set among several of a name and
/// type (a routing policy's): the set identifier's digest joins the type in
/// the first label (`_berth-owner-a-1f0e3dad.web.internal`), so each set
/// has its own owner and the label stays short whatever the identifier.
pub fn owner_name_for(fqdn: &str, rtype: &str, set_id: Option<&str>) -> String {
    use sha2::Digest;
    match set_id {
        None => owner_name(fqdn, rtype),
        Some(id) => {
            let digest = hex::encode(sha2::Sha256::digest(id.as_bytes()));
            owner_name(fqdn, &format!("{rtype}-{}", &digest[..8]))
        }
    }
}

/// A name as Route53 returns it (`\052.apps.internal.`) in berth's spelling
/// (`*.apps.internal`): octal escapes decoded, lower case, no trailing dot.
pub fn from_api(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') as u32 * 64 + (bytes[i + 2] - b'0') as u32 * 8 + (bytes[i + 3] - b'0') as u32;
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    normalize(&String::from_utf8_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["micro-search", "micro-search.internal", "a.b.c.", "*.apps.internal", "x1-2.y"] {
            assert_eq!(validate(n, false), Ok(()), "{n}");
        }
        assert_eq!(validate("_sip._tcp.internal", true), Ok(()));
    }

    #[test]
    fn names_the_bad_label() {
        let e = validate("micro_search.internal", false).unwrap_err().to_string();
        assert!(e.contains("`micro_search`") && e.contains("TXT and SRV"), "{e}");
        let e = validate("-bad.internal", false).unwrap_err().to_string();
        assert!(e.contains("`-bad`") && e.contains("hyphen"), "{e}");
        let long = "a".repeat(64);
        let e = validate(&format!("{long}.internal"), false).unwrap_err().to_string();
        assert!(e.contains(&format!("`{long}`")) && e.contains("64"), "{e}");
        let e = validate("a.*.internal", false).unwrap_err().to_string();
        assert!(e.contains("first label"), "{e}");
        let e = validate("a*b.internal", false).unwrap_err().to_string();
        assert!(e.contains("first label"), "{e}");
        let e = validate("a..b", false).unwrap_err().to_string();
        assert!(e.contains("empty label"), "{e}");
        let e = validate("héllo.internal", false).unwrap_err().to_string();
        assert!(e.contains("`héllo`"), "{e}");
        let huge = vec!["abcdefghij"; 24].join(".");
        assert!(matches!(validate(&huge, false), Err(NameError::TooLong { len: 263, .. })));
    }

    #[test]
    fn relative_names_get_the_zone_suffix() {
        assert_eq!(fqdn("micro-search", "internal"), "micro-search.internal");
        assert_eq!(fqdn("micro-search.internal.", "internal."), "micro-search.internal");
        assert_eq!(fqdn("Internal", "internal"), "internal");
        assert_eq!(fqdn("xinternal", "internal"), "xinternal.internal");
    }

    #[test]
    fn owner_names_keep_types_apart() {
        assert_eq!(owner_name("micro-search.internal", "A"), "_berth-owner-a.micro-search.internal");
        assert_eq!(owner_name("www.internal", "CNAME"), "_berth-owner-cname.www.internal");
        assert_eq!(owner_name("*.apps.internal", "A"), "_berth-owner-a-wildcard.apps.internal");
        assert_eq!(owner_name_for("web.internal", "A", None), "_berth-owner-a.web.internal");
        let blue = owner_name_for("web.internal", "A", Some("blue"));
        assert!(blue.starts_with("_berth-owner-a-") && blue.ends_with(".web.internal"), "{blue}");
        assert_ne!(blue, owner_name_for("web.internal", "A", Some("green")));
        assert_eq!(blue.len(), owner_name_for("web.internal", "A", Some(&"x".repeat(128))).len());
    }

    #[test]
    fn api_names_are_decoded() {
        assert_eq!(from_api("\\052.Apps.internal."), "*.apps.internal");
        assert_eq!(from_api("micro-search.internal."), "micro-search.internal");
    }
}
