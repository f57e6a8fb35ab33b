//! What every EC2 resource type shares, and nothing type-specific: the
//! member's SDK handle ([`Ec2`]), the [`Resource`] row each type file
//! implements, ownership tags and idempotency tokens, AWS's request limits,
//! argument readers, the generic planner, and the apply plumbing (batched
//! refresh, read-back after a create, the state of a half-done step,
//! adoption by tags).
//!
//! It is the leaf of the `ec2` folder: the type files import it, it imports
//! none of them, and the router ([`super`]) imports the type files. Errors
//! and retries sit below it in [`super::error`] and [`super::retry`].
//!
//! The planner is where "no-op re-plan" is won or lost: a configuration and
//! a state read back from AWS must normalize to the same value (tags as a
//! map of strings, sets sorted, defaults filled in), otherwise every plan
//! would show a spurious change.

use super::error::{code_of, sdk_error};
use super::retry::{self, Backoff, retry_codes};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, OpContext, Planned, ProviderError, ProviderResult, Refreshed, Schema, apply_each,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

/// The EC2 member: one client, shared by every type.
pub struct Ec2 {
    pub client: aws_sdk_ec2::Client,
    pub region: String,
    pub partition: &'static str,
    /// Retries of references to objects created moments ago.
    pub eventual: Backoff,
    /// Retries of deletes blocked by dependents still going away.
    pub dependents: Backoff,
    /// Retries of a launch whose fixed private address is not released yet.
    pub address_release: Backoff,
    /// The first pause between DescribeInstances polls while waiting for a
    /// state; later pauses grow up to `poll_max`.
    pub poll: Duration,
    pub poll_max: Duration,
}

impl Ec2 {
    pub fn new(client: aws_sdk_ec2::Client, region: &str) -> Ec2 {
        Ec2 {
            client,
            region: region.to_string(),
            partition: partition(region),
            eventual: Backoff::EVENTUAL,
            dependents: Backoff::DEPENDENTS,
            address_release: Backoff::ADDRESS_RELEASE,
            poll: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
        }
    }

    /// `arn:PARTITION:ec2:REGION:OWNER:KIND/ID`.
    pub fn arn(&self, owner: &str, kind: &str, id: &str) -> String {
        format!("arn:{}:ec2:{}:{}:{}/{}", self.partition, self.region, owner, kind, id)
    }
}

/// One managed EC2 type, as its file implements it: the row the router
/// ([`super`]) dispatches to. Validation and planning are generic over
/// [`Resource::schema`] and [`Resource::kinds`]; the hooks add what is
/// particular to the type.
#[async_trait]
pub(crate) trait Resource: Sync {
    fn name(&self) -> &'static str;
    fn schema(&self) -> &'static Schema;
    /// The known arguments' types, checked before anything else.
    fn kinds(&self) -> &'static [(&'static str, Kind)];
    /// Canonical forms and defaults of a configuration, beyond `tags`
    /// (which the router normalizes for every type that takes them).
    fn normalize(&self, _config: &mut Map) -> ProviderResult<()> {
        Ok(())
    }
    /// Checks beyond argument types, required arguments and tags.
    fn validate(&self, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }
    /// The plan beyond the generic one ([`plan_generic`]), from the
    /// normalized configuration.
    fn refine_plan(&self, _prior: Option<&Value>, _config: &Map, _planned: &mut Planned) {}
    /// Reads a batch; what is gone is `None`.
    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed>;
    /// Carries out a batch, reporting each outcome as it lands.
    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink);
    /// The object of one create attempt after a crash; `template` is the
    /// normalized configuration, standing in for the prior state.
    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>>;
    /// Whether an object not found by [`Resource::adopt`] may yet show up
    /// in a listing: objects found by their tags may; one found by its
    /// configuration alone (an association) is there or not.
    fn adopt_looks_again(&self) -> bool {
        true
    }
}

/// Applies a batch one operation at a time per object: types without batch
/// calls. A few in flight at once keeps well under EC2's mutation rate
/// limits.
pub(crate) async fn apply_one_by_one<F, Fut>(ops: Vec<ApplyOp>, sink: ApplySink, apply: F)
where
    F: Fn(ApplyOp) -> Fut + Sync,
    Fut: Future<Output = Result<Option<Value>, Failure>> + Send,
{
    let apply = &apply;
    apply_each(ops, sink, 8, |op| async move { outcome(apply(op).await) }).await
}

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

/// Marks a plan as a replacement because of `attr`, for what the schema's
/// `force_new` cannot say: as [`plan_generic`] does, every computed value
/// the configuration leaves unset is unknown again.
pub(crate) fn replace_because(schema: &Schema, config: &Map, planned: &mut Planned, attr: &str) {
    if planned.requires_replace.is_empty()
        && let Value::Map(after) = &mut planned.after
    {
        for a in &schema.attributes {
            let exported = schema.exported_only.contains(&a.name);
            let unset = config.get(a.name).is_none_or(Value::is_null);
            if exported || (a.computed && unset) {
                after.insert(a.name.to_string(), Value::Unknown);
            }
        }
    }
    if !planned.requires_replace.iter().any(|r| r == attr) {
        planned.requires_replace.push(attr.to_string());
    }
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

// ------------------------------------------------------------ apply plumbing

/// A failed step: what exists now, and why.
pub(crate) struct Failure {
    pub state: Option<Value>,
    pub error: ProviderError,
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure { state: None, error }
    }
}

impl Failure {
    pub fn with(state: Value, error: ProviderError) -> Failure {
        Failure { state: Some(state), error }
    }
}

pub(crate) fn outcome(r: Result<Option<Value>, Failure>) -> ApplyOutcome {
    match r {
        Ok(state) => ApplyOutcome::ok(state),
        Err(f) => ApplyOutcome::failed(f.state, f.error),
    }
}

/// Refreshes a batch: looks the IDs up [`MAX_FILTER_VALUES`] at a time with `describe`,
/// then builds each found object's state from it and its prior state.
/// Objects not found are gone (`None`).
pub(crate) async fn refresh_batch<T, D, DF, B, BF>(
    items: &[(OpContext, Value)],
    describe: D,
    key: fn(&T) -> Option<String>,
    build: B,
) -> Vec<Refreshed>
where
    D: Fn(Vec<String>) -> DF,
    DF: Future<Output = ProviderResult<Vec<T>>>,
    B: Fn(T, Value) -> BF,
    BF: Future<Output = ProviderResult<Value>>,
{
    refresh_batch_with(items, describe, key, build).await
}

/// [`refresh_batch`], building anything from each found object: for types
/// that read more in a second batched step before they build states.
pub(crate) async fn refresh_batch_with<T, R, D, DF, B, BF>(
    items: &[(OpContext, Value)],
    describe: D,
    key: fn(&T) -> Option<String>,
    build: B,
) -> Vec<ProviderResult<Option<R>>>
where
    D: Fn(Vec<String>) -> DF,
    DF: Future<Output = ProviderResult<Vec<T>>>,
    B: Fn(T, Value) -> BF,
    BF: Future<Output = ProviderResult<R>>,
{
    let ids: Vec<ProviderResult<String>> = items.iter().map(|(_, prior)| id_of(prior)).collect();
    let mut wanted: Vec<String> = ids.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    wanted.sort();
    wanted.dedup();
    let mut found: HashMap<String, T> = HashMap::new();
    for chunk in wanted.chunks(MAX_FILTER_VALUES) {
        match describe(chunk.to_vec()).await {
            Ok(objects) => {
                for o in objects {
                    if let Some(k) = key(&o) {
                        found.insert(k, o);
                    }
                }
            }
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        }
    }
    let futs = items.iter().zip(ids).map(|((_, prior), id)| {
        let object = id.map(|id| found.remove(&id));
        let prior = prior.clone();
        let build = &build;
        async move {
            match object {
                Err(e) => Err(e),
                Ok(None) => Ok(None),
                Ok(Some(o)) => build(o, prior).await.map(Some),
            }
        }
    });
    futures::future::join_all(futs).await
}

/// Polls `read` until the object shows up: a Describe right after a create
/// may not see it yet.
pub(crate) async fn read_back<F, Fut>(ec2: &Ec2, what: &str, id: &str, read: F) -> ProviderResult<Value>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ProviderResult<Option<Value>>>,
{
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(v) = read().await? {
            return Ok(v);
        }
        let delay = ec2.eventual.delay(attempt);
        if start.elapsed() + delay > ec2.eventual.deadline {
            return Err(ProviderError::new(format!("{what} `{id}` was created but never became visible")));
        }
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// The state to report for a failed update: the object as a fresh read
/// shows it, or `prior` when that read fails too.
pub(crate) async fn as_it_is<F>(read: F, prior: &Value) -> Value
where
    F: Future<Output = ProviderResult<Option<Value>>>,
{
    match read.await {
        Ok(Some(v)) => v,
        _ => prior.clone(),
    }
}

/// The one ID among `found`, `None` when empty; several is an error (two
/// objects of one create attempt cannot be told apart).
pub(crate) fn one_id<T>(what: &str, found: &[T], id: fn(&T) -> Option<&str>) -> ProviderResult<Option<String>> {
    match found {
        [] => Ok(None),
        [one] => Ok(id(one).map(str::to_string)),
        many => Err(ProviderError::new(format!(
            "several {what}s carry the same create's token ({})",
            many.iter().filter_map(id).collect::<Vec<_>>().join(", ")
        ))),
    }
}

pub(crate) fn bool_attr(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

/// Makes AWS's tags match `new`, given the user tags it had (`old`).
pub(crate) async fn sync_tags(
    ec2: &Ec2,
    resource: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> ProviderResult<()> {
    let old = tags_arg(old)?;
    let new = tags_arg(new)?;
    let removed: Vec<Tag> =
        old.keys().filter(|k| !new.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    let changed: Vec<Tag> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    if !removed.is_empty() {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.delete_tags().resources(resource).set_tags(Some(removed.clone())).send()
        })
        .await
        .map_err(|e| sdk_error(&format!("DeleteTags on `{resource}`"), &e))?;
    }
    if !changed.is_empty() {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.create_tags().resources(resource).set_tags(Some(changed.clone())).send()
        })
        .await
        .map_err(|e| sdk_error(&format!("CreateTags on `{resource}`"), &e))?;
    }
    Ok(())
}

pub(crate) fn tags_changed(prior: &Value, planned: &Value) -> bool {
    !prior.get("tags").unwrap_or(&Value::Null).same_as(planned.get("tags").unwrap_or(&Value::Null))
}

pub(crate) fn changed(prior: &Value, planned: &Value, attr: &str) -> bool {
    !prior.get(attr).unwrap_or(&Value::Null).same_as(planned.get(attr).unwrap_or(&Value::Null))
}

/// Checks that known `cidr_block`s parse.
pub(crate) fn validate_cidr(config: &Value) -> Vec<ProviderError> {
    match config.get("cidr_block").and_then(Value::as_str) {
        Some(s) if s.parse::<ipnet::IpNet>().is_err() => {
            vec![ProviderError::attr("cidr_block", format!("`cidr_block` is not a CIDR block: `{s}`"))]
        }
        _ => Vec::new(),
    }
}

/// Runs a delete, retrying while dependents are still going away; an object
/// already gone counts as deleted.
pub(crate) async fn delete_ignoring_gone<T, E, F, Fut>(
    ec2: &Ec2,
    action: &str,
    id: &str,
    gone: &str,
    op: F,
) -> ProviderResult<()>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    >,
{
    match retry_codes(retry::STILL_IN_USE, ec2.dependents, op).await {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some(gone) => Ok(()),
        Err(e) => Err(sdk_error(&format!("{action} `{id}`"), &e)),
    }
}

/// Exactly one object, or none; several is an error naming them.
pub(crate) fn at_most_one<T>(
    what: &str,
    ctx: &OpContext,
    mut found: Vec<T>,
    id: fn(&T) -> String,
) -> ProviderResult<Option<T>> {
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(ProviderError::new(format!(
            "several {what}s are tagged as `{}` of this state ({}); delete the extra ones",
            ctx.addr,
            found.iter().map(id).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Fills in the default of an argument the configuration leaves unset, so
/// the plan compares equal to what AWS reports.
pub(crate) fn default(m: &mut Map, k: &str, v: Value) {
    if m.get(k).is_none_or(Value::is_null) {
        m.insert(k.to_string(), v);
    }
}

/// The state to record when a create succeeded but a later step failed:
/// the planned values with the new `id`, and nothing unknown left.
pub(crate) fn partial_state(planned: &Value, id: &str) -> Value {
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    m.insert("id".into(), Value::str(id));
    Value::Map(m)
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
