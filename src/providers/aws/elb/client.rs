//! What every Elastic Load Balancing (v2) type shares, and nothing
//! type-specific: the member's SDK handle ([`Elb`]), the [`Resource`] row
//! each type file implements, ownership tags, AWS's request limits, the
//! listings by the page, and tags by twenty.
//!
//! It is the leaf of the `elb` folder: the type files import it, it imports
//! none of them. What it shares with EC2 (the ownership tag names, the
//! idempotency token, the generic planner, argument kinds, error
//! classification) it takes from [`super::super::ec2`]'s leaves, so an
//! object of either service is recognised the same way.
//!
//! ELBv2 has no tag filters on its Describe calls: an object is found by
//! its ARN or name, and its tags are read with DescribeTags, at most
//! [`MAX_TAG_ARNS`] resources a call. Refresh therefore lists by the page
//! ([`PAGE_SIZE`] at a time) and reads tags by twenties; adoption after a
//! crash, which has nothing but the ownership tags to go by, reads every
//! object's tags the same way.

use crate::providers::aws::ec2::client::{ADDRESS_TAG, GENERATION_TAG, LINEAGE_TAG, TOKEN_TAG, client_token};
use crate::providers::aws::ec2::error::sdk_error;
use crate::providers::{ApplyOp, ApplyOutcome, OpContext, ProviderError, ProviderErrorKind, ProviderResult, Refreshed, Schema};
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, Tag, TargetGroup};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub(crate) use crate::providers::aws::ec2::client::default as default_value;
pub use crate::providers::aws::ec2::client::{Kind, check_types};

/// DescribeTags takes at most this many resource ARNs a call ("You can
/// specify up to 20 resources in a single call"); so do
/// DescribeLoadBalancers' `LoadBalancerArns`.
pub const MAX_TAG_ARNS: usize = 20;

/// The largest `PageSize` DescribeLoadBalancers, DescribeTargetGroups and
/// DescribeListeners accept (1 to 400).
pub const PAGE_SIZE: i32 = 400;

/// Load balancer and target group names: at most 32 characters.
pub const MAX_NAME: usize = 32;

/// The ELBv2 member: one client, shared by every type.
pub struct Elb {
    pub client: aws_sdk_elasticloadbalancingv2::Client,
    /// The first pause between polls (a load balancer becoming active, a
    /// target becoming healthy, a target draining); later pauses grow up
    /// to `poll_max`.
    pub poll: Duration,
    pub poll_max: Duration,
    /// How long a load balancer may stay `provisioning`.
    pub active_timeout: Duration,
    /// How much longer than its health check needs a new target may take
    /// to be found healthy: the first check starts only once the
    /// registration has propagated.
    pub healthy_grace: Duration,
}

impl Elb {
    pub fn new(client: aws_sdk_elasticloadbalancingv2::Client) -> Elb {
        Elb {
            client,
            poll: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
            active_timeout: Duration::from_secs(600),
            healthy_grace: Duration::from_secs(30),
        }
    }

    /// The pause before poll number `attempt`: doubling from `poll` up to
    /// `poll_max`.
    pub fn pause(&self, attempt: u32) -> Duration {
        self.poll.saturating_mul(1u32 << attempt.min(16)).min(self.poll_max)
    }
}

/// One managed ELBv2 type, as its file implements it.
#[async_trait]
pub(crate) trait Resource: Sync {
    fn name(&self) -> &'static str;
    fn schema(&self) -> &'static Schema;
    /// The known arguments' types, checked before anything else.
    fn kinds(&self) -> &'static [(&'static str, Kind)];
    /// Canonical forms and defaults, so a configuration compares equal to
    /// a state read back.
    fn normalize(&self, _config: &mut Map) -> ProviderResult<()> {
        Ok(())
    }
    /// Checks beyond argument types, required arguments and tags.
    fn validate(&self, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }
    /// Reads a batch; what is gone is `None`.
    async fn refresh(&self, elb: &Elb, items: &[(OpContext, Value)]) -> Vec<Refreshed>;
    /// Carries out one change.
    async fn apply(&self, elb: &Elb, op: ApplyOp) -> ApplyOutcome;
    /// The object of one create attempt after a crash, by its ownership
    /// tags; `None` for types that carry none.
    async fn adopt(&self, elb: &Elb, ctx: &OpContext) -> ProviderResult<Option<Value>>;
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// The user's tags plus berth's ownership tags and the attempt's token, for
/// a create call.
pub fn create_tags(ctx: &OpContext, user: &BTreeMap<String, String>) -> Vec<Tag> {
    let mut out: Vec<Tag> = user.iter().map(|(k, v)| tag(k, v)).collect();
    out.push(tag(ADDRESS_TAG, &ctx.addr.to_string()));
    out.push(tag(LINEAGE_TAG, &ctx.lineage));
    out.push(tag(GENERATION_TAG, &ctx.generation.to_string()));
    if !ctx.token.is_empty() {
        out.push(tag(TOKEN_TAG, &client_token(ctx)));
    }
    out
}

fn has(tags: &[Tag], k: &str, v: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v))
}

/// Whether tags mark the object as this address's in this state (whichever
/// create attempt made it).
pub fn owned_by_address(tags: &[Tag], ctx: &OpContext) -> bool {
    has(tags, ADDRESS_TAG, &ctx.addr.to_string()) && has(tags, LINEAGE_TAG, &ctx.lineage)
}

/// Whether tags mark the object as made by this very create attempt: its
/// token, or without one its generation.
pub fn owned_by_attempt(tags: &[Tag], ctx: &OpContext) -> bool {
    owned_by_address(tags, ctx)
        && if ctx.token.is_empty() {
            has(tags, GENERATION_TAG, &ctx.generation.to_string())
        } else {
            has(tags, TOKEN_TAG, &client_token(ctx))
        }
}

/// The `tags` attribute: berth's own tags left out.
pub fn tags_value(tags: &[Tag]) -> Value {
    use crate::providers::aws::ec2::client::BERTH_TAG_PREFIX;
    Value::Map(
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
            .filter(|(k, _)| !k.starts_with(BERTH_TAG_PREFIX))
            .map(|(k, v)| (k.to_string(), Value::str(v)))
            .collect(),
    )
}

/// The tags of each ARN, [`MAX_TAG_ARNS`] a call.
pub async fn describe_tags(elb: &Elb, arns: &[String]) -> ProviderResult<HashMap<String, Vec<Tag>>> {
    let mut out = HashMap::new();
    for chunk in arns.chunks(MAX_TAG_ARNS) {
        let resp = elb
            .client
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTags", &e))?;
        for d in resp.tag_descriptions() {
            if let Some(arn) = d.resource_arn() {
                out.insert(arn.to_string(), d.tags().to_vec());
            }
        }
    }
    Ok(out)
}

/// Makes the user tags of `arn` match `new`, given those it had (`old`):
/// one RemoveTags and one AddTags at most.
pub async fn sync_tags(elb: &Elb, arn: &str, old: Option<&Value>, new: Option<&Value>) -> ProviderResult<()> {
    use crate::providers::aws::ec2::client::tags_arg;
    let old = tags_arg(old)?;
    let new = tags_arg(new)?;
    let removed: Vec<String> = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
    let changed: Vec<Tag> = new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, v)| tag(k, v)).collect();
    if !removed.is_empty() {
        elb.client
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(removed))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("RemoveTags on `{arn}`"), &e))?;
    }
    if !changed.is_empty() {
        elb.client
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(changed))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("AddTags on `{arn}`"), &e))?;
    }
    Ok(())
}

/// Every load balancer of the account and region, [`PAGE_SIZE`] a call.
pub async fn all_load_balancers(elb: &Elb) -> ProviderResult<Vec<LoadBalancer>> {
    let mut out = Vec::new();
    let mut pages = elb.client.describe_load_balancers().page_size(PAGE_SIZE).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeLoadBalancers", &e))?.load_balancers().iter().cloned());
    }
    Ok(out)
}

/// Every target group of the account and region, [`PAGE_SIZE`] a call.
pub async fn all_target_groups(elb: &Elb) -> ProviderResult<Vec<TargetGroup>> {
    let mut out = Vec::new();
    let mut pages = elb.client.describe_target_groups().page_size(PAGE_SIZE).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeTargetGroups", &e))?.target_groups().iter().cloned());
    }
    Ok(out)
}

/// Among `arns`, the one whose tags say this create attempt made it.
pub async fn find_attempt(elb: &Elb, what: &str, ctx: &OpContext, arns: Vec<String>) -> ProviderResult<Option<String>> {
    let tags = describe_tags(elb, &arns).await?;
    let mut mine: Vec<String> =
        arns.into_iter().filter(|a| tags.get(a).is_some_and(|t| owned_by_attempt(t, ctx))).collect();
    match mine.len() {
        0 | 1 => Ok(mine.pop()),
        _ => Err(ProviderError::new(format!(
            "several {what}s carry the ownership tags of one create of `{}` ({}); delete the extra ones",
            ctx.addr,
            mine.join(", ")
        ))),
    }
}

/// The name a create gives an object the configuration does not name:
/// `prefix` (or `berth-`) and the create attempt's token, cut to 32
/// characters. The same attempt always gets the same name, so the SDK's
/// resend of a create whose answer was lost is answered with the object
/// the first request made (ELBv2 returns the existing object for a
/// create with the same name and settings) instead of making a second.
pub fn generated_name(prefix: Option<&str>, ctx: &OpContext) -> String {
    let prefix = prefix.filter(|p| !p.is_empty()).unwrap_or("berth-");
    let mut name = format!("{prefix}{}", client_token(ctx));
    name.truncate(MAX_NAME);
    name.trim_end_matches('-').to_string()
}

/// Checks a load balancer or target group name as AWS does: at most 32
/// characters, letters, digits and hyphens, not starting or ending with a
/// hyphen; a load balancer's may not start with `internal-`.
pub fn check_name(attr: &str, name: &str, max: usize, load_balancer: bool) -> Option<ProviderError> {
    let bad = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.len() > max {
        Some(format!("has {} characters; at most {max} are allowed", name.len()))
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Some("may hold only letters, digits and hyphens".to_string())
    } else if name.starts_with('-') || (attr == "name" && name.ends_with('-')) {
        Some("must not begin or end with a hyphen".to_string())
    } else if load_balancer && name.starts_with("internal-") {
        Some("must not begin with `internal-`".to_string())
    } else {
        None
    };
    bad.map(|why| ProviderError::attr(attr, format!("`{attr}` `{name}` {why}")))
}

/// A whole number within `range`, from a number or a string that reads as
/// one (nested blocks are not converted by the engine).
pub fn int_in(
    v: Option<&Value>,
    attr: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ProviderError> {
    let Some(v) = v.map(Value::unmarked) else { return Ok(None) };
    let n = match v {
        Value::Null | Value::Unknown => return Ok(None),
        Value::Number(n) => *n,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| ProviderError::attr(attr, format!("`{attr}` must be a whole number, not `{s}`")))?,
        other => {
            return Err(ProviderError::attr(
                attr,
                format!("`{attr}` must be a whole number, not {}", other.type_name()),
            ));
        }
    };
    if n.fract() != 0.0 || !range.contains(&(n as i64)) {
        return Err(ProviderError::attr(
            attr,
            format!("`{attr}` must be a whole number from {} to {}, not {n}", range.start(), range.end()),
        ));
    }
    Ok(Some(n as i64))
}

/// A list of strings as a sorted, de-duplicated list: a set.
pub fn string_set(v: Option<&Value>) -> Value {
    crate::providers::aws::ec2::client::normalize_set(v)
}

/// A sorted list of strings as a value.
pub fn strings_value<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    let mut v: Vec<&str> = items.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    Value::List(v.into_iter().map(Value::str).collect())
}

/// What an ARN names after its resource kind: `app/web/50dc…` for
/// `…:loadbalancer/app/web/50dc…`, as Terraform's `arn_suffix`.
pub fn arn_suffix(arn: &str, kind: &str) -> String {
    match arn.split_once(&format!(":{kind}/")) {
        Some((_, rest)) if kind == "loadbalancer" => rest.to_string(),
        Some((_, rest)) => format!("{kind}/{rest}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::InstanceAddr;

    #[test]
    fn generated_names_fit_and_are_per_attempt() {
        let ctx =
            |t: &str| OpContext::new("aws_lb.web".parse::<InstanceAddr>().unwrap(), "lin", 0).with_token(t.to_string());
        let a = generated_name(Some("web-"), &ctx("one"));
        assert_eq!(a, generated_name(Some("web-"), &ctx("one")));
        assert_ne!(a, generated_name(Some("web-"), &ctx("two")));
        assert!(a.starts_with("web-") && a.len() == MAX_NAME, "{a}");
        assert!(check_name("name", &a, MAX_NAME, true).is_none());
        assert!(generated_name(None, &ctx("one")).starts_with("berth-"));
    }

    #[test]
    fn names_are_checked_as_aws_does() {
        assert!(check_name("name", "web-internal", 32, true).is_none());
        assert!(check_name("name", "internal-web", 32, true).is_some());
        assert!(check_name("name", "internal-web", 32, false).is_none());
        assert!(check_name("name", &"a".repeat(33), 32, true).unwrap().message.contains("33 characters"));
        assert!(check_name("name", "web_1", 32, true).is_some());
        assert!(check_name("name", "web-", 32, true).is_some());
        assert!(check_name("name_prefix", "web-", 6, true).is_none());
    }

    #[test]
    fn arn_suffixes() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123:loadbalancer/app/web/50dc";
        assert_eq!(arn_suffix(lb, "loadbalancer"), "app/web/50dc");
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/web/73e2";
        assert_eq!(arn_suffix(tg, "targetgroup"), "targetgroup/web/73e2");
    }

    #[test]
    fn numbers_from_strings_and_ranges() {
        assert_eq!(int_in(Some(&Value::str("30")), "interval", 5..=300).unwrap(), Some(30));
        assert_eq!(int_in(Some(&Value::Number(2.0)), "x", 2..=10).unwrap(), Some(2));
        assert!(int_in(Some(&Value::Number(1.0)), "x", 2..=10).is_err());
        assert!(int_in(Some(&Value::Number(2.5)), "x", 2..=10).is_err());
        assert_eq!(int_in(None, "x", 2..=10).unwrap(), None);
    }
}

/// A create by name found the name taken with other settings (AWS's
/// `Duplicate…Name`): `what` is `load balancer` or `target group`.
pub fn name_taken(what: &str, name: &str) -> ProviderError {
    ProviderError::attr("name", format!("a {what} named `{name}` already exists with other settings; choose another `name`"))
        .with_kind(ProviderErrorKind::Conflict)
}

/// After a create by name: AWS answers a create with the same name and
/// settings with the existing object, so the object at `arn` must carry
/// this address's ownership tags, or it is somebody else's.
pub async fn claim_created(elb: &Elb, ctx: &OpContext, what: &str, name: &str, arn: &str) -> ProviderResult<()> {
    let tags = match describe_tags(elb, &[arn.to_string()]).await {
        Ok(mut t) => t.remove(arn).unwrap_or_default(),
        Err(e) => return Err(e.with_kind(ProviderErrorKind::Indeterminate)),
    };
    if owned_by_address(&tags, ctx) {
        return Ok(());
    }
    Err(ProviderError::attr(
        "name",
        format!(
            "a {what} named `{name}` already exists and does not belong to `{}` of this state (`{arn}`); choose another `name`",
            ctx.addr
        ),
    )
    .with_kind(ProviderErrorKind::Conflict))
}
