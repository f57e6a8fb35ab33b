//! The arguments of a `health_check` block, one at a time: what a valid
//! `url`, `expect_status`, `timeout` and `interval` is.
//!
//! Loading checks the arguments written as constants, the planner those it
//! can evaluate (`self.private_ip` is known only once the host exists), and
//! the apply the whole block once the object is there: all with these
//! rules, so a bad URL or duration is an error with the argument's
//! file:line long before a host is created for it.

use crate::value::Value;
use std::time::Duration;

/// Checks one known argument; unknown and null values pass (a null takes
/// the default). Arguments the block does not know are the loader's to
/// report, and pass here.
pub fn check_attr(name: &str, v: &Value) -> Result<(), String> {
    match name {
        "url" => url(v).map(|_| ()),
        "expect_status" => expect_status(v).map(|_| ()),
        "timeout" | "interval" => duration(v, name).map(|_| ()),
        "enabled" => match v.unmarked() {
            Value::Bool(_) | Value::Null | Value::Unknown => Ok(()),
            other => Err(format!("health_check: `enabled` must be true or false, not {}", other.type_name())),
        },
        _ => Ok(()),
    }
}

/// `url`: an absolute http:// or https:// URL with a host. `None` when
/// unknown or null.
pub fn url(v: &Value) -> Result<Option<String>, String> {
    match v.unmarked() {
        Value::Unknown | Value::Null => Ok(None),
        Value::String(s) => {
            if !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(format!("health_check: `url` must start with http:// or https://, got `{s}`"));
            }
            match reqwest::Url::parse(s) {
                Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(Some(s.clone())),
                Ok(_) => Err(format!("health_check: `url` `{s}` has no host")),
                Err(e) => Err(format!("health_check: `url` `{s}` is not a valid URL: {e}")),
            }
        }
        other => Err(format!("health_check: `url` must be a string, not {}", other.type_name())),
    }
}

/// `expect_status`: an HTTP status, 100 to 599. `None` when unknown or null.
pub fn expect_status(v: &Value) -> Result<Option<u16>, String> {
    match v.unmarked() {
        Value::Unknown | Value::Null => Ok(None),
        Value::Number(n) if (100.0..600.0).contains(n) && n.fract() == 0.0 => Ok(Some(*n as u16)),
        other => Err(format!("health_check: `expect_status` must be an HTTP status from 100 to 599, not {other}")),
    }
}

/// A duration: `"5s"`, `"1m30s"`, or a number of seconds. `None` when
/// unknown or null.
pub fn duration(v: &Value, what: &str) -> Result<Option<Duration>, String> {
    match v.unmarked() {
        Value::Unknown | Value::Null => Ok(None),
        Value::String(s) => humantime::parse_duration(s)
            .map(Some)
            .map_err(|e| format!("health_check: `{what}` `{s}` is not a duration such as \"5s\": {e}")),
        Value::Number(n) if *n >= 0.0 && n.is_finite() => Ok(Some(Duration::from_secs_f64(*n))),
        other => Err(format!("health_check: `{what}` must be a duration such as \"5s\", not {}", other.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_argument_is_checked_alone() {
        assert!(check_attr("url", &"http://10.0.0.1:8080/up".into()).is_ok());
        assert!(check_attr("url", &Value::Unknown).is_ok());
        let e = check_attr("url", &"ftp://x/up".into()).unwrap_err();
        assert!(e.contains("http:// or https://"), "{e}");
        let e = check_attr("url", &"http://exa mple/up".into()).unwrap_err();
        assert!(e.contains("not a valid URL"), "{e}");
        let e = check_attr("url", &"http://:8080/up".into()).unwrap_err();
        assert!(e.contains("URL") || e.contains("host"), "{e}");
        assert!(check_attr("expect_status", &Value::Number(204.0)).is_ok());
        for bad in [99.0, 600.0, 200.5] {
            let e = check_attr("expect_status", &Value::Number(bad)).unwrap_err();
            assert!(e.contains("100 to 599"), "{e}");
        }
        assert_eq!(duration(&"1m30s".into(), "timeout").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(duration(&Value::Number(2.0), "timeout").unwrap(), Some(Duration::from_secs(2)));
        let e = check_attr("interval", &"soon".into()).unwrap_err();
        assert!(e.contains("`interval` `soon` is not a duration"), "{e}");
        assert!(check_attr("enabled", &"yes".into()).is_err());
    }
}
