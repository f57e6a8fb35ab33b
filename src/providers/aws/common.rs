//! Helpers shared by the EC2 resource types: error messages and their
//! kinds, ownership tags, idempotency tokens, AWS's request limits, argument
//! readers and the generic planner.
//!
//! The planner is where "no-op re-plan" is won or lost: a configuration and
//! a state read back from AWS must normalize to the same value (tags as a
//! map of strings, sets sorted, defaults filled in), otherwise every plan
//! would show a spurious change.

use crate::providers::{OpContext, Planned, ProviderError, ProviderErrorKind, ProviderResult, Schema};
use crate::value::{Map, Value};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use sha2::Digest;
use std::collections::BTreeMap;

pub const ADDRESS_TAG: &str = "berth:address";
pub const LINEAGE_TAG: &str = "berth:lineage";
/// The idempotency token of the create attempt that made an object
/// ([`client_token`]), on every object whose Describe does not report the
/// client token it was created with (all but instances). It names one create
/// attempt exactly: a lost answer's follow-up and the adoption after a crash
/// find that attempt's object by it, never an older object of the address
/// (one deleted a moment ago may still be listed) nor a later attempt's.
pub const TOKEN_TAG: &str = "berth:token";
/// Which create of the address made the object: the `generation` the
/// idempotency token is derived from too. A create-before-destroy
/// replacement launches a second object with the same address while the
/// first still runs; only this tag tells the two apart when berth dies
/// before it learns the new one's id.
pub const GENERATION_TAG: &str = "berth:generation";
/// Tags under this prefix belong to berth and never appear in `tags`.
pub const BERTH_TAG_PREFIX: &str = "berth:";

/// EC2 refuses a Describe call with more filter values than this, counted
/// over all its filters (`FilterLimitExceeded`: "The maximum number of
/// filter values specified on a single call is 200"). A batch of IDs looked
/// up by filter goes out in chunks of this size, so a refresh of N objects
/// of one type costs ceil(N/200) calls.
pub const MAX_FILTER_VALUES: usize = 200;

/// DescribeInstances returns at most this many results per page
/// (`MaxResults`, 5 to 1000).
pub const MAX_RESULTS: i32 = 1000;

/// AWS allows 50 user tags per EC2 resource ("Tag restrictions" in the EC2
/// User Guide; `aws:` tags do not count, berth's do).
pub const AWS_TAGS_PER_RESOURCE: usize = 50;

/// How many tags berth adds to an object of `type_`: `berth:address`,
/// `berth:lineage`, `berth:generation`, and `berth:token` on all but
/// instances (they carry their client token themselves).
pub fn berth_tag_count(type_: &str) -> usize {
    if type_ == "aws_instance" { 3 } else { 4 }
}

/// The most tags a configuration may give an object of `type_`: 50 - 3 = 47
/// for an instance, 50 - 4 = 46 for the other types.
pub fn max_user_tags(type_: &str) -> usize {
    AWS_TAGS_PER_RESOURCE - berth_tag_count(type_)
}

/// An SDK error as one line: `ACTION: CODE: message`, never a Debug dump,
/// with its [`ProviderErrorKind`].
pub fn sdk_error<E>(action: &str, err: &SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = match err.code() {
        Some(code) => {
            ProviderError::new(format!("{action} failed: {code}: {}", err.message().unwrap_or("(no message)")))
        }
        None => ProviderError::new(format!("{action} failed: {}", DisplayErrorContext(err))),
    };
    e.with_kind(error_kind(err))
}

/// `e` about one attribute, so the engine points at it; its kind is kept.
pub fn about(attr: &str, mut e: ProviderError) -> ProviderError {
    e.attribute = Some(attr.to_string());
    e
}

/// Whether a request that failed this way may nevertheless have been carried
/// out: its answer never arrived (a dropped connection, a timeout, an answer
/// cut short) or the service failed inside (HTTP 500 `InternalError`). A
/// throttling answer, a 503, a 500 for want of capacity
/// (`InsufficientInstanceCapacity` and its kin) and every 4xx say the
/// request was refused.
pub fn may_have_landed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::DispatchFailure(d) => !d.is_user(),
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() == 500 && !err.code().is_some_and(|c| c.starts_with("Insufficient"))
        }
        _ => false,
    }
}

/// EC2's throttling codes ("Request throttling for the Amazon EC2 API").
const THROTTLING: &[&str] = &["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"];

/// The kind of an SDK error, for the engine: above all, whether a failed
/// create may have landed ([`ProviderErrorKind::Indeterminate`]), so that it
/// stays pending and the next run looks for its object.
pub fn error_kind<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ProviderErrorKind {
    use ProviderErrorKind::*;
    if let Some(code) = err.code()
        && THROTTLING.contains(&code)
    {
        return Throttled;
    }
    if may_have_landed(err) {
        return Indeterminate;
    }
    let Some(code) = err.code() else {
        return match err {
            SdkError::ConstructionFailure(_) => Invalid,
            // A 503 without a code: the service refused, and retries ran out.
            _ => Other,
        };
    };
    if code.ends_with(".NotFound") || code.ends_with("NotFound") {
        NotFound
    } else if code.ends_with(".Duplicate")
        || code.ends_with(".InUse")
        || code.ends_with(".Conflict")
        || code.contains("AlreadyExists")
        || code.contains("AlreadyAssociated")
        || matches!(code, "DependencyViolation" | "IdempotentParameterMismatch" | "IncorrectState")
    {
        Conflict
    } else if code.starts_with("Invalid")
        || code.starts_with("Unauthorized")
        || code.starts_with("Unsupported")
        || code.starts_with("Missing")
        || code.ends_with("LimitExceeded")
        || matches!(code, "AuthFailure" | "OptInRequired" | "Blocked")
    {
        Invalid
    } else {
        Other
    }
}

/// A short cause of a failed call for the debug log, in the words of the
/// SDK retry lines (`RequestLimitExceeded (HTTP 503)`, `a connection error`).
pub fn failure_cause<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::DispatchFailure(_) => "a connection error".into(),
        SdkError::TimeoutError(_) => "a timeout".into(),
        SdkError::ResponseError(_) => "an answer cut short".into(),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match err.code() {
                Some(code) => format!("{code} (HTTP {status})"),
                None => format!("HTTP {status}"),
            }
        }
        _ => "an error".into(),
    }
}

/// The error code of an SDK error, when the service sent one.
pub fn code_of<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.code()
}

pub fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// The filters that find what one create (`ctx.generation`) of one address
/// of one state made.
pub fn ownership_filters(ctx: &OpContext) -> Vec<Filter> {
    vec![
        filter(&format!("tag:{ADDRESS_TAG}"), [ctx.addr.to_string()]),
        filter(&format!("tag:{LINEAGE_TAG}"), [ctx.lineage.clone()]),
        filter(&format!("tag:{GENERATION_TAG}"), [ctx.generation.to_string()]),
    ]
}

/// The filters that find the object of one create attempt: by its
/// `berth:token` tag when the attempt has a token (every create since tokens
/// were journaled), otherwise by address, lineage and generation.
pub fn attempt_filters(ctx: &OpContext) -> Vec<Filter> {
    if ctx.token.is_empty() {
        return ownership_filters(ctx);
    }
    vec![
        filter(&format!("tag:{ADDRESS_TAG}"), [ctx.addr.to_string()]),
        filter(&format!("tag:{LINEAGE_TAG}"), [ctx.lineage.clone()]),
        filter(&format!("tag:{TOKEN_TAG}"), [client_token(ctx)]),
    ]
}

/// The user's tags plus berth's ownership tags and the attempt's token tag,
/// for a create call of anything but an instance.
pub fn tag_spec(resource: ResourceType, ctx: &OpContext, user: &BTreeMap<String, String>) -> TagSpecification {
    let b = ownership_tag_spec(resource, ctx, user);
    let b = if ctx.token.is_empty() { b } else { b.tags(tag(TOKEN_TAG, &client_token(ctx))) };
    b.build()
}

/// The user's tags plus berth's ownership tags, for RunInstances: an
/// instance reports the client token it was launched with, so it needs no
/// token tag.
pub fn instance_tag_spec(ctx: &OpContext, user: &BTreeMap<String, String>) -> TagSpecification {
    ownership_tag_spec(ResourceType::Instance, ctx, user).build()
}

fn ownership_tag_spec(
    resource: ResourceType,
    ctx: &OpContext,
    user: &BTreeMap<String, String>,
) -> aws_sdk_ec2::types::builders::TagSpecificationBuilder {
    let mut b = TagSpecification::builder().resource_type(resource);
    for (k, v) in user {
        b = b.tags(tag(k, v));
    }
    b.tags(tag(ADDRESS_TAG, &ctx.addr.to_string()))
        .tags(tag(LINEAGE_TAG, &ctx.lineage))
        .tags(tag(GENERATION_TAG, &ctx.generation.to_string()))
}

/// Whether AWS tags carry this create attempt's ownership: its address and
/// lineage, and its token (or, without one, its generation).
pub fn owned_by_attempt(tags: &[Tag], ctx: &OpContext) -> bool {
    let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
    has(ADDRESS_TAG, &ctx.addr.to_string())
        && has(LINEAGE_TAG, &ctx.lineage)
        && if ctx.token.is_empty() {
            has(GENERATION_TAG, &ctx.generation.to_string())
        } else {
            has(TOKEN_TAG, &client_token(ctx))
        }
}

/// The `tags` attribute from AWS tags: berth's own tags left out.
pub fn tags_value(tags: &[Tag]) -> Value {
    Value::Map(
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
            .filter(|(k, _)| !k.starts_with(BERTH_TAG_PREFIX))
            .map(|(k, v)| (k.to_string(), Value::str(v)))
            .collect(),
    )
}

/// The known `tags` argument as strings (numbers and bools are written as
/// HCL would print them).
pub fn tags_arg(v: Option<&Value>) -> ProviderResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    match v.unmarked() {
        Value::Null => Ok(out),
        Value::Map(m) => {
            for (k, v) in m {
                if k.starts_with(BERTH_TAG_PREFIX) {
                    return Err(ProviderError::attr(
                        "tags",
                        format!("tag `{k}`: keys starting with `{BERTH_TAG_PREFIX}` are reserved for berth"),
                    ));
                }
                out.insert(k.clone(), scalar_string("tags", v)?);
            }
            Ok(out)
        }
        other => {
            Err(ProviderError::attr("tags", format!("`tags` must be a map of strings, not {}", other.type_name())))
        }
    }
}

fn scalar_string(attr: &str, v: &Value) -> ProviderResult<String> {
    match v.unmarked() {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(crate::value::format_number(*n)),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ProviderError::attr(attr, format!("`{attr}` values must be strings, not {}", other.type_name()))),
    }
}

/// Normalizes `tags` for a plan: null is the empty map, scalars become
/// strings; unknown values stay unknown.
pub fn normalize_tags(v: Option<&Value>) -> Value {
    match v.map(Value::unmarked) {
        None | Some(Value::Null) => Value::Map(Map::new()),
        Some(Value::Map(m)) => Value::Map(
            m.iter()
                .map(|(k, v)| {
                    let v = match v.unmarked() {
                        Value::Number(n) => Value::str(crate::value::format_number(*n)),
                        Value::Bool(b) => Value::str(b.to_string()),
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Some(other) => other.clone(),
    }
}

/// A set of scalars as a sorted, de-duplicated list, so order in the
/// configuration never shows as a change.
pub fn normalize_set(v: Option<&Value>) -> Value {
    match v.map(Value::unmarked) {
        None | Some(Value::Null) => Value::List(Vec::new()),
        Some(Value::List(l)) => Value::List(sorted_unique(l.clone())),
        Some(other) => other.clone(),
    }
}

/// Sorts values by their JSON form and drops duplicates.
pub fn sorted_unique(mut l: Vec<Value>) -> Vec<Value> {
    l.sort_by_cached_key(|v| v.to_json().to_string());
    l.dedup_by(|a, b| a.same_as(b));
    l
}

/// Strings of a list value; unknown and non-string items are skipped.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_list)
        .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A required string argument of a planned (fully known) value.
pub fn req_str<'a>(v: &'a Value, attr: &str) -> ProviderResult<&'a str> {
    match v.get(attr).map(Value::unmarked) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::Unknown) => Err(ProviderError::attr(attr, format!("`{attr}` is still unknown at apply"))),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ProviderError::attr(attr, format!("`{attr}` is required")))
        }
        Some(other) => Err(ProviderError::attr(attr, format!("`{attr}` must be a string, not {}", other.type_name()))),
    }
}

/// An optional string argument: empty strings count as unset.
pub fn opt_str<'a>(v: &'a Value, attr: &str) -> Option<&'a str> {
    v.get_str(attr).filter(|s| !s.is_empty())
}

pub fn opt_bool(v: &Value, attr: &str) -> Option<bool> {
    v.get(attr).and_then(Value::as_bool)
}

/// The `id` of a prior state.
pub fn id_of(v: &Value) -> ProviderResult<String> {
    v.get_str("id")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::attr("id", "the state has no `id`"))
}

/// The idempotency token of a create attempt: every retry of one create
/// (the SDK's, or the next run's after a crash, which reads the attempt's
/// token back from the journal) sends the same token, so AWS returns the
/// first call's object instead of making a second one; every new create
/// attempt gets a new one, because AWS refuses a token it has seen with
/// other parameters (`IdempotentParameterMismatch`) or whose instance is
/// gone (`IdempotentInstanceTerminated`) for as long as it remembers it.
/// A sha256 in hex is exactly 64 characters, EC2's limit for ClientToken.
pub fn client_token(ctx: &OpContext) -> String {
    let mut h = sha2::Sha256::new();
    h.update(ctx.lineage.as_bytes());
    h.update(b"\n");
    h.update(ctx.addr.to_string().as_bytes());
    h.update(b"\n");
    h.update(ctx.generation.to_string().as_bytes());
    h.update(b"\n");
    h.update(ctx.token.as_bytes());
    let mut s = hex::encode(h.finalize());
    s.truncate(64);
    s
}

/// The ARN partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// A checked argument's type, for [`check_types`].
#[derive(Clone, Copy)]
pub enum Kind {
    Str,
    Bool,
    StrList,
    StrMap,
    Blocks,
}

/// Checks the known arguments' types, naming each wrong one.
pub fn check_types(config: &Value, kinds: &[(&str, Kind)], errs: &mut Vec<ProviderError>) {
    for (name, kind) in kinds {
        let Some(v) = config.get(name) else { continue };
        let v = v.unmarked();
        if v.is_null() || v.is_unknown() {
            continue;
        }
        let ok = match kind {
            Kind::Str => matches!(v, Value::String(_)),
            Kind::Bool => matches!(v, Value::Bool(_)),
            Kind::StrList => {
                v.as_list().is_some_and(|l| l.iter().all(|i| matches!(i.unmarked(), Value::String(_) | Value::Unknown)))
            }
            Kind::StrMap => v.as_map().is_some(),
            Kind::Blocks => v.as_list().is_some_and(|l| l.iter().all(|i| i.as_map().is_some())),
        };
        if !ok {
            let want = match kind {
                Kind::Str => "a string",
                Kind::Bool => "a bool",
                Kind::StrList => "a list of strings",
                Kind::StrMap => "a map of strings",
                Kind::Blocks => "a list of blocks",
            };
            errs.push(ProviderError::attr(name, format!("`{name}` must be {want}, not {}", v.type_name())));
        }
    }
}

/// The generic plan of an EC2 resource. `config` must already be
/// normalized and have defaults filled in. An argument that is also
/// computed takes its prior value when the configuration leaves it unset
/// (Unknown on create). A change of a `force_new` argument, or an unknown
/// one on an existing object, requires replacement; then every computed
/// value not set in the configuration is unknown again.
pub fn plan_generic(schema: &Schema, prior: Option<&Value>, config: &Map) -> Planned {
    let mut after = Map::new();
    let mut requires_replace = Vec::new();
    for attr in schema.arguments() {
        let configured = config.get(attr.name).filter(|v| !v.is_null()).cloned();
        let value = match (&configured, attr.computed, prior) {
            (Some(v), _, _) => v.clone(),
            (None, true, Some(p)) => p.get(attr.name).cloned().unwrap_or(Value::Null),
            (None, true, None) => Value::Unknown,
            (None, false, _) => Value::Null,
        };
        if let Some(p) = prior
            && attr.force_new
            && (configured.is_some() || !attr.computed)
        {
            let before = p.get(attr.name).unwrap_or(&Value::Null);
            if !value.is_known() || !before.same_as(&value) {
                requires_replace.push(attr.name.to_string());
            }
        }
        after.insert(attr.name.to_string(), value);
    }
    let replacing = !requires_replace.is_empty();
    for attr in &schema.attributes {
        let exported = schema.exported_only.contains(&attr.name);
        let unset = config.get(attr.name).is_none_or(Value::is_null);
        if exported || (replacing && attr.computed && unset) {
            let v = match prior {
                Some(p) if !replacing => p.get(attr.name).cloned().unwrap_or(Value::Null),
                _ => Value::Unknown,
            };
            after.insert(attr.name.to_string(), v);
        }
    }
    Planned { after: Value::Map(after), requires_replace, notes: Vec::new() }
}

/// The create timeout from `timeouts { create = "10m" }` (a block or an
/// object), `default` when unset.
pub fn create_timeout(v: &Value, default: std::time::Duration) -> ProviderResult<std::time::Duration> {
    let block = match v.get("timeouts").map(Value::unmarked) {
        Some(Value::List(l)) => l.first().cloned(),
        Some(m @ Value::Map(_)) => Some(m.clone()),
        _ => None,
    };
    match block.as_ref().and_then(|b| b.get("create")).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => humantime::parse_duration(s)
            .map_err(|e| ProviderError::attr("timeouts", format!("`timeouts.create` is not a duration (`{s}`): {e}"))),
        Some(other) => Err(ProviderError::attr(
            "timeouts",
            format!("`timeouts.create` must be a duration such as \"10m\", not {}", other.type_name()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::InstanceAddr;

    fn ctx(generation: u64) -> OpContext {
        OpContext::new("aws_instance.web[0]".parse::<InstanceAddr>().unwrap(), "7f0c", generation)
    }

    #[test]
    fn client_token_is_stable_and_per_generation() {
        assert_eq!(client_token(&ctx(1)), client_token(&ctx(1)));
        assert_ne!(client_token(&ctx(1)), client_token(&ctx(2)));
        assert_eq!(client_token(&ctx(1)).len(), 64);
        // One create attempt, one token; the next attempt another.
        let a = ctx(0).with_token(OpContext::fresh_token());
        let b = ctx(0).with_token(OpContext::fresh_token());
        assert_eq!(client_token(&a), client_token(&a.clone()));
        assert_ne!(client_token(&a), client_token(&b));
    }

    #[test]
    fn tag_budget_leaves_room_for_berths_own() {
        assert_eq!(max_user_tags("aws_instance"), 47);
        assert_eq!(max_user_tags("aws_vpc"), 46);
        assert_eq!(max_user_tags("aws_security_group") + berth_tag_count("aws_security_group"), 50);
        // What tag_spec writes is what the count says.
        let c = ctx(0).with_token(OpContext::fresh_token());
        let none = BTreeMap::new();
        assert_eq!(tag_spec(ResourceType::Vpc, &c, &none).tags().len(), berth_tag_count("aws_vpc"));
        assert_eq!(instance_tag_spec(&c, &none).tags().len(), berth_tag_count("aws_instance"));
    }

    #[test]
    fn errors_say_whether_the_request_may_have_landed() {
        use aws_sdk_ec2::error::ErrorMetadata;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::body::SdkBody;
        type E = SdkError<ErrorMetadata, HttpResponse>;
        let service = |code: &str, status: u16| -> E {
            let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            SdkError::service_error(ErrorMetadata::builder().code(code).message("m").build(), raw)
        };
        let dropped: E = SdkError::dispatch_failure(ConnectorError::io("connection closed".into()));
        let timeout: E = SdkError::timeout_error("too slow");
        assert!(may_have_landed(&dropped) && may_have_landed(&timeout));
        assert!(may_have_landed(&service("InternalError", 500)));
        assert!(!may_have_landed(&service("InsufficientInstanceCapacity", 500)));
        assert!(!may_have_landed(&service("RequestLimitExceeded", 503)));
        assert!(!may_have_landed(&service("InvalidParameterValue", 400)));
        use ProviderErrorKind::*;
        assert_eq!(error_kind(&dropped), Indeterminate);
        assert_eq!(error_kind(&service("InternalError", 500)), Indeterminate);
        assert_eq!(error_kind(&service("RequestLimitExceeded", 503)), Throttled);
        assert_eq!(error_kind(&service("InvalidVpcID.NotFound", 400)), NotFound);
        assert_eq!(error_kind(&service("InvalidGroup.Duplicate", 400)), Conflict);
        assert_eq!(error_kind(&service("InvalidParameterValue", 400)), Invalid);
        assert_eq!(sdk_error("CreateVpc", &dropped).kind, Indeterminate);
        assert_eq!(failure_cause(&service("RequestLimitExceeded", 503)), "RequestLimitExceeded (HTTP 503)");
    }

    #[test]
    fn reserved_tags_are_refused_and_filtered() {
        let m = crate::value::obj([("berth:address", Value::str("x"))]);
        assert_eq!(tags_arg(Some(&m)).unwrap_err().attribute.as_deref(), Some("tags"));
        let t = [tag("Name", "a"), tag(ADDRESS_TAG, "b")];
        assert_eq!(tags_value(&t), crate::value::obj([("Name", Value::str("a"))]));
    }

    #[test]
    fn timeouts_parse_or_name_the_attribute() {
        let d = std::time::Duration::from_secs(600);
        let v = crate::value::obj([("timeouts", Value::List(vec![crate::value::obj([("create", Value::str("2m"))])]))]);
        assert_eq!(create_timeout(&v, d).unwrap().as_secs(), 120);
        let bad = crate::value::obj([("timeouts", crate::value::obj([("create", Value::str("soon"))]))]);
        assert_eq!(create_timeout(&bad, d).unwrap_err().attribute.as_deref(), Some("timeouts"));
    }
}
