//! The `aws` provider block: the names it takes ([`BLOCK`]) and its
//! evaluated value, checked ([`ProviderArgs`]).
//!
//! [`BLOCK`] is what `berth validate` and `berth plan` hold the written
//! block to before anything is evaluated, so a misspelt argument is an error
//! at its `file:line:column` with a "did you mean" instead of being dropped
//! (a dropped `assume_role` would act in the caller's own account).
//! [`ProviderArgs::parse`] then checks the values, and refuses unknown names
//! too for callers that build the value themselves.
//!
//! Names follow Terraform's AWS provider. Errors carry the argument's path
//! (`assume_role.role_arn`) so the engine can point at it.

use super::provider_tags::ProviderTags;
use crate::aws_sdk::{self, AssumeRole, SdkSettings, StaticKeys};
use crate::providers::{BlockSchema, ProviderError, ProviderResult};
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The services whose endpoint can be overridden in `endpoints { ... }`.
pub const ENDPOINT_SERVICES: &[&str] = &["ec2", "elbv2", "route53", "s3", "sts"];

/// The `aws` provider block.
pub static BLOCK: BlockSchema = BlockSchema {
    args: &[
        "region",
        "profile",
        "endpoint_url",
        "access_key",
        "secret_key",
        "max_retries",
        "route53_wait_for_sync",
        "route53_sync_timeout",
    ],
    blocks: &[
        ("endpoints", &ENDPOINTS),
        ("assume_role", &ASSUME_ROLE),
        ("default_tags", &DEFAULT_TAGS),
        ("ignore_tags", &IGNORE_TAGS),
    ],
};
static ENDPOINTS: BlockSchema = BlockSchema { args: ENDPOINT_SERVICES, blocks: &[] };
static ASSUME_ROLE: BlockSchema = BlockSchema { args: aws_sdk::ASSUME_ROLE_ARGS, blocks: &[] };
static DEFAULT_TAGS: BlockSchema = BlockSchema { args: &["tags"], blocks: &[] };
static IGNORE_TAGS: BlockSchema = BlockSchema { args: &["keys", "key_prefixes"], blocks: &[] };

/// The provider block's arguments, checked. `Debug` shows no secret
/// ([`SdkSettings`] hides them).
#[derive(Debug, Default)]
pub(super) struct ProviderArgs {
    pub sdk: SdkSettings,
    /// `endpoints { ... }`: per service.
    pub endpoints: BTreeMap<String, String>,
    pub tags: ProviderTags,
}

/// `name` for errors: `region`, `assume_role.role_arn`.
fn path(block: Option<&str>, name: &str) -> String {
    match block {
        Some(b) => format!("{b}.{name}"),
        None => name.to_string(),
    }
}

fn err(block: Option<&str>, name: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::attr(&path(block, name), message)
}

/// A string argument; `None` when unset, null or empty.
fn opt_string(v: &Value, block: Option<&str>, name: &str) -> ProviderResult<Option<String>> {
    let p = path(block, name);
    match v.get(name).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Unknown) => {
            Err(err(block, name, format!("`{p}` of the `aws` provider must be known before planning")))
        }
        Some(other) => {
            Err(err(block, name, format!("`{p}` of the `aws` provider must be a string, not {}", other.type_name())))
        }
    }
}

/// A list of strings; empty when unset.
fn string_list(v: &Value, block: Option<&str>, name: &str) -> ProviderResult<Vec<String>> {
    let p = path(block, name);
    match v.get(name).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(items)) => items
            .iter()
            .map(|i| match i.unmarked() {
                Value::String(s) => Ok(s.clone()),
                other => {
                    Err(err(block, name, format!("`{p}` must be a list of strings, not of {}", other.type_name())))
                }
            })
            .collect(),
        Some(other) => Err(err(block, name, format!("`{p}` must be a list of strings, not {}", other.type_name()))),
    }
}

/// A map of strings (numbers and bools written as HCL prints them); empty
/// when unset.
fn string_map(v: &Value, block: Option<&str>, name: &str) -> ProviderResult<BTreeMap<String, String>> {
    let p = path(block, name);
    match v.get(name).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Map(m)) => m
            .iter()
            .map(|(k, x)| match x.unmarked() {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), crate::value::format_number(*n))),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                other => Err(err(block, name, format!("`{p}`: `{k}` must be a string, not {}", other.type_name()))),
            })
            .collect(),
        Some(other) => Err(err(block, name, format!("`{p}` must be a map of strings, not {}", other.type_name()))),
    }
}

/// The blocks written under `name` (`name { ... }` arrives as a list of
/// objects, `name = { ... }` as one object; both mean the same).
fn blocks<'a>(config: &'a Value, name: &str) -> ProviderResult<Vec<&'a Value>> {
    let list: Vec<&Value> = match config.get(name).map(Value::unmarked) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(l)) => l.iter().collect(),
        Some(m @ Value::Map(_)) => vec![m],
        Some(other) => {
            return Err(ProviderError::attr(name, format!("`{name}` must be a block, not {}", other.type_name())));
        }
    };
    if let Some(b) = list.iter().find(|b| b.as_map().is_none()) {
        return Err(ProviderError::attr(name, format!("`{name}` must be a block, not {}", b.type_name())));
    }
    Ok(list)
}

/// At most one block under `name`.
fn one_block<'a>(config: &'a Value, name: &str) -> ProviderResult<Option<&'a Value>> {
    let mut list = blocks(config, name)?;
    if list.len() > 1 {
        return Err(ProviderError::attr(name, format!("at most one `{name}` block is allowed, found {}", list.len())));
    }
    Ok(list.pop())
}

/// Refuses names the schema does not know, with a "did you mean".
fn check_names(v: &Value, block: Option<&str>, schema: &BlockSchema) -> ProviderResult<()> {
    let Some(m) = v.as_map() else { return Ok(()) };
    for k in m.keys() {
        if schema.knows(k) {
            continue;
        }
        let what = match block {
            Some(b) => format!("the `{b}` block of the `aws` provider"),
            None => "the `aws` provider block".to_string(),
        };
        let mut msg = format!("unsupported argument `{k}` in {what}");
        if let Some(s) = crate::diag::suggest(k, schema.names()) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        return Err(err(block, k, msg));
    }
    Ok(())
}

impl ProviderArgs {
    pub fn parse(config: &Value) -> ProviderResult<ProviderArgs> {
        if !matches!(config.unmarked(), Value::Map(_) | Value::Null) {
            return Err(ProviderError::new("the `aws` provider block must be an object"));
        }
        check_names(config, None, &BLOCK)?;
        let mut sdk = SdkSettings {
            region: opt_string(config, None, "region")?,
            profile: opt_string(config, None, "profile")?,
            endpoint_url: opt_string(config, None, "endpoint_url")?,
            ..SdkSettings::default()
        };
        match (opt_string(config, None, "access_key")?, opt_string(config, None, "secret_key")?) {
            (Some(access_key), Some(secret_key)) => sdk.keys = Some(StaticKeys { access_key, secret_key }),
            (Some(_), None) => {
                return Err(ProviderError::attr("secret_key", "`access_key` is set but `secret_key` is not"));
            }
            (None, Some(_)) => {
                return Err(ProviderError::attr("access_key", "`secret_key` is set but `access_key` is not"));
            }
            (None, None) => {}
        }
        match config.get("max_retries").map(Value::unmarked) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= f64::from(aws_sdk::MAX_RETRIES_LIMIT) => {
                sdk.max_retries = Some(*n as u32)
            }
            Some(other) => {
                return Err(ProviderError::attr(
                    "max_retries",
                    format!(
                        "`max_retries` must be a whole number from 0 to {}, not {other}",
                        aws_sdk::MAX_RETRIES_LIMIT
                    ),
                ));
            }
        }
        let mut endpoints = BTreeMap::new();
        for block in blocks(config, "endpoints")? {
            for key in block.as_map().into_iter().flat_map(|m| m.keys()) {
                if !ENDPOINT_SERVICES.contains(&key.as_str()) {
                    let mut msg = format!(
                        "unknown service `{key}` in `endpoints` (berth knows: {})",
                        ENDPOINT_SERVICES.join(", ")
                    );
                    if let Some(s) = crate::diag::suggest(key, ENDPOINT_SERVICES.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    return Err(err(Some("endpoints"), key, msg));
                }
                if let Some(url) = opt_string(block, Some("endpoints"), key)? {
                    endpoints.insert(key.clone(), url);
                }
            }
        }
        sdk.sts_endpoint = endpoints.get("sts").cloned();
        if let Some(block) = one_block(config, "assume_role")? {
            sdk.assume_role = assume_role(block)?;
        }
        let mut tags = ProviderTags::default();
        if let Some(block) = one_block(config, "default_tags")? {
            check_names(block, Some("default_tags"), &DEFAULT_TAGS)?;
            tags.defaults = string_map(block, Some("default_tags"), "tags")?;
            if let Some(k) = tags.defaults.keys().find(|k| k.starts_with(super::ec2::client::BERTH_TAG_PREFIX)) {
                return Err(err(
                    Some("default_tags"),
                    "tags",
                    format!(
                        "tag `{k}`: keys starting with `{}` are reserved for berth",
                        super::ec2::client::BERTH_TAG_PREFIX
                    ),
                ));
            }
        }
        if let Some(block) = one_block(config, "ignore_tags")? {
            check_names(block, Some("ignore_tags"), &IGNORE_TAGS)?;
            tags.ignore_keys = string_list(block, Some("ignore_tags"), "keys")?.into_iter().collect::<BTreeSet<_>>();
            tags.ignore_prefixes = string_list(block, Some("ignore_tags"), "key_prefixes")?;
            tags.ignore_prefixes.retain(|p| !p.is_empty());
        }
        Ok(ProviderArgs { sdk, endpoints, tags })
    }
}

/// `assume_role { ... }`; `None` when `role_arn` is empty, as in Terraform,
/// so a module can make the role optional with `role_arn = var.role_arn`.
fn assume_role(block: &Value) -> ProviderResult<Option<AssumeRole>> {
    const B: Option<&str> = Some("assume_role");
    check_names(block, B, &ASSUME_ROLE)?;
    let Some(role_arn) = opt_string(block, B, "role_arn")? else {
        if block.as_map().is_some_and(|m| m.values().any(|v| !v.is_null())) && block.get("role_arn").is_none() {
            return Err(ProviderError::attr("assume_role", "`assume_role` needs `role_arn`"));
        }
        return Ok(None);
    };
    aws_sdk::check_role_arn(&role_arn).map_err(|e| err(B, "role_arn", format!("`assume_role.role_arn`: {e}")))?;
    let session_name = opt_string(block, B, "session_name")?;
    if let Some(n) = &session_name {
        aws_sdk::check_session_name(n)
            .map_err(|e| err(B, "session_name", format!("`assume_role.session_name`: {e}")))?;
    }
    let external_id = opt_string(block, B, "external_id")?;
    if let Some(id) = &external_id {
        aws_sdk::check_external_id(id).map_err(|e| err(B, "external_id", format!("`assume_role.external_id` {e}")))?;
    }
    let duration = match opt_string(block, B, "duration")? {
        None => None,
        Some(d) => {
            Some(aws_sdk::parse_duration(&d).map_err(|e| err(B, "duration", format!("`assume_role.duration`: {e}")))?)
        }
    };
    Ok(Some(AssumeRole {
        role_arn,
        session_name,
        external_id,
        duration,
        policy: opt_string(block, B, "policy")?,
        policy_arns: string_list(block, B, "policy_arns")?,
        tags: string_map(block, B, "tags")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn block(name: &str, items: Vec<(&str, Value)>) -> (String, Value) {
        (name.to_string(), Value::List(vec![obj(items)]))
    }

    #[test]
    fn errors_name_the_attribute() {
        let e = ProviderArgs::parse(&obj([("max_retries", Value::str("many"))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("max_retries"));
        let e = ProviderArgs::parse(&obj([("access_key", Value::str("AK"))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("secret_key"));
        let e =
            ProviderArgs::parse(&obj([("endpoints", Value::List(vec![obj([("lambda", Value::str("http://x"))])]))]))
                .unwrap_err();
        assert!(e.message.contains("`lambda`"), "{}", e.message);
        assert_eq!(e.attribute.as_deref(), Some("endpoints.lambda"));
        let e = ProviderArgs::parse(&obj([("region", Value::Number(1.0))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("region"));
    }

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let e = ProviderArgs::parse(&obj([("regoin", Value::str("x"))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("regoin"));
        assert!(e.message.contains("did you mean `region`?"), "{}", e.message);
        let (k, v) = block("assume_role", vec![("rol_arn", Value::str("arn:aws:iam::123456789012:role/x"))]);
        let e = ProviderArgs::parse(&obj([(k, v)])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("assume_role.rol_arn"));
        assert!(e.message.contains("did you mean `role_arn`?"), "{}", e.message);
        let (k, v) = block("default_tags", vec![("tag", obj([("a", Value::str("b"))]))]);
        let e = ProviderArgs::parse(&obj([(k, v)])).unwrap_err();
        assert!(e.message.contains("did you mean `tags`?"), "{}", e.message);
    }

    #[test]
    fn assume_role_is_checked() {
        let parse = |items: Vec<(&str, Value)>| {
            let (k, v) = block("assume_role", items);
            ProviderArgs::parse(&obj([(k, v)]))
        };
        let arn = Value::str("arn:aws:iam::123456789012:role/deploy");
        let a = parse(vec![
            ("role_arn", arn.clone()),
            ("session_name", Value::str("ci")),
            ("external_id", Value::Sensitive(Box::new(Value::str("the-external-id")))),
            ("duration", Value::str("2h")),
            ("tags", obj([("team", Value::str("ops"))])),
        ])
        .unwrap();
        let role = a.sdk.assume_role.expect("a role");
        assert_eq!(role.duration, Some(std::time::Duration::from_secs(7200)));
        assert_eq!(role.external_id.as_deref(), Some("the-external-id"));
        let debug = format!(
            "{:?}",
            ProviderArgs::parse(&obj([block(
                "assume_role",
                vec![("role_arn", arn.clone()), ("external_id", Value::str("the-external-id"))]
            )]))
            .unwrap()
        );
        assert!(!debug.contains("the-external-id"), "{debug}");
        let e = parse(vec![("role_arn", Value::str("deploy"))]).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("assume_role.role_arn"));
        let e = parse(vec![("role_arn", arn.clone()), ("duration", Value::str("5m"))]).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("assume_role.duration"));
        let e = parse(vec![("session_name", Value::str("ci"))]).unwrap_err();
        assert!(e.message.contains("needs `role_arn`"), "{}", e.message);
        // An empty role ARN assumes nothing, as in Terraform.
        assert!(parse(vec![("role_arn", Value::str(""))]).unwrap().sdk.assume_role.is_none());
        let two = Value::List(vec![obj([("role_arn", arn.clone())]), obj([("role_arn", arn)])]);
        let e = ProviderArgs::parse(&obj([("assume_role", two)])).unwrap_err();
        assert!(e.message.contains("at most one"), "{}", e.message);
    }

    #[test]
    fn default_and_ignored_tags_are_read() {
        let a = ProviderArgs::parse(&obj([
            block("default_tags", vec![("tags", obj([("env", Value::str("prod")), ("n", Value::Number(1.0))]))]),
            block(
                "ignore_tags",
                vec![
                    ("keys", Value::List(vec![Value::str("kube")])),
                    ("key_prefixes", Value::List(vec![Value::str("aws:")])),
                ],
            ),
        ]))
        .unwrap();
        assert_eq!(a.tags.defaults.get("n").map(String::as_str), Some("1"));
        assert!(a.tags.ignores("kube") && a.tags.ignores("aws:x") && !a.tags.ignores("env"));
        let e = ProviderArgs::parse(&obj([block("default_tags", vec![("tags", obj([("berth:x", Value::str("y"))]))])]))
            .unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("default_tags.tags"));
    }
}
