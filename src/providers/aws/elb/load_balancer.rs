//! `aws_lb`: an application or network load balancer, internal (reached
//! only from inside its VPC) or internet-facing.
//!
//! The name is unique per account and region, and ELBv2 answers a create
//! with the same name and the same settings with the object that exists,
//! so a create is idempotent by name: the SDK's resend of a create whose
//! answer was lost gets the first request's load balancer back. A name the
//! configuration leaves unset is derived from the create attempt's token
//! ([`generated_name`]) for the same reason. Because the same call would
//! also hand back somebody else's load balancer of that name, the create
//! reads the tags of what it got and refuses an object that does not carry
//! this address's ownership tags.
//!
//! A load balancer starts `provisioning`; the create waits until it is
//! `active`, so listeners and records pointing at it work when it returns.
//! `subnets` and `security_groups` change in place (SetSubnets,
//! SetSecurityGroups); the rest replaces.

use super::client::{
    self, Elb, Kind, Resource, all_load_balancers, check_name, claim_created, create_tags, describe_tags, find_attempt,
    generated_name, name_taken, string_set, strings_value, sync_tags, tags_value,
};
use crate::providers::aws::ec2::client::{changed, id_of, opt_str, tags_arg, tags_changed};
use crate::providers::aws::ec2::error::{code_of, sdk_error};
use crate::providers::{
    ApplyOp, ApplyOutcome, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancer, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum, Tag,
};
use std::collections::HashMap;
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("name").computed().force_new(),
        Attribute::arg("name_prefix").force_new(),
        Attribute::arg("internal").force_new(),
        Attribute::arg("load_balancer_type").force_new(),
        Attribute::arg("subnets").required(),
        Attribute::arg("security_groups").computed(),
        Attribute::arg("ip_address_type").computed(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "arn_suffix", "dns_name", "zone_id", "vpc_id"])
});

/// The types berth creates. Gateway load balancers sit in front of
/// appliances, not of a role's hosts.
const TYPES: &[&str] = &["application", "network"];

/// Terraform's limit on `name_prefix` for a load balancer.
const MAX_PREFIX: usize = 6;

pub(crate) struct AwsLb;

#[async_trait]
impl Resource for AwsLb {
    fn name(&self) -> &'static str {
        "aws_lb"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("name", Str),
            ("name_prefix", Str),
            ("internal", Bool),
            ("load_balancer_type", Str),
            ("subnets", StrList),
            ("security_groups", StrList),
            ("ip_address_type", Str),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        client::default_value(m, "internal", Value::Bool(false));
        client::default_value(m, "load_balancer_type", Value::str("application"));
        client::default_value(m, "ip_address_type", Value::str("ipv4"));
        let subnets = string_set(m.get("subnets"));
        m.insert("subnets".into(), subnets);
        if m.get("security_groups").is_some_and(|v| !v.is_null()) {
            let sgs = string_set(m.get("security_groups"));
            m.insert("security_groups".into(), sgs);
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if let Some(n) = config.get_str("name")
            && let Some(e) = check_name("name", n, client::MAX_NAME, true)
        {
            errs.push(e);
        }
        if let Some(p) = config.get_str("name_prefix")
            && let Some(e) = check_name("name_prefix", p, MAX_PREFIX, true)
        {
            errs.push(e);
        }
        if config.get("name").is_some_and(|v| !v.is_null()) && config.get("name_prefix").is_some_and(|v| !v.is_null()) {
            errs.push(ProviderError::attr("name_prefix", "`name` and `name_prefix` cannot both be set"));
        }
        let kind = config.get_str("load_balancer_type").unwrap_or("application");
        if config.get("load_balancer_type").is_none_or(Value::is_known) && !TYPES.contains(&kind) {
            errs.push(ProviderError::attr(
                "load_balancer_type",
                format!("`load_balancer_type` is `application` or `network`, not `{kind}`"),
            ));
        }
        if let Some(t) = config.get_str("ip_address_type")
            && !["ipv4", "dualstack"].contains(&t)
        {
            errs.push(ProviderError::attr(
                "ip_address_type",
                format!("`ip_address_type` is `ipv4` or `dualstack`, not `{t}`"),
            ));
        }
        // "You must specify subnets from at least two Availability Zones"
        // (CreateLoadBalancer, for an Application Load Balancer).
        if let Some(l) = config.get("subnets").and_then(Value::as_list)
            && kind == "application"
        {
            if l.len() < 2 && l.iter().all(Value::is_known) {
                errs.push(ProviderError::attr(
                    "subnets",
                    format!("an application load balancer needs subnets in at least two availability zones; `subnets` has {}", l.len()),
                ));
            }
        } else if let Some(l) = config.get("subnets").and_then(Value::as_list)
            && l.is_empty()
        {
            errs.push(ProviderError::attr("subnets", "`subnets` needs at least one subnet"));
        }
        errs
    }

    async fn refresh(&self, elb: &Elb, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let all = match all_load_balancers(elb).await {
            Ok(all) => all,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut by_arn: HashMap<String, LoadBalancer> =
            all.into_iter().filter_map(|lb| Some((lb.load_balancer_arn()?.to_string(), lb))).collect();
        let wanted: Vec<String> = items
            .iter()
            .filter_map(|(_, p)| p.get_str("id"))
            .filter(|id| by_arn.contains_key(*id))
            .map(str::to_string)
            .collect();
        let tags = match describe_tags(elb, &wanted).await {
            Ok(t) => t,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        items
            .iter()
            .map(|(_, prior)| {
                let id = id_of(prior)?;
                Ok(by_arn
                    .remove(&id)
                    .map(|lb| state(&lb, tags.get(&id).map(Vec::as_slice).unwrap_or_default(), Some(prior))))
            })
            .collect()
    }

    async fn apply(&self, elb: &Elb, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => create(elb, &op.ctx, &planned).await,
            ChangeKind::Update { prior, planned } => update(elb, &prior, &planned).await,
            ChangeKind::Delete { prior } => delete(elb, &prior).await,
        }
    }

    async fn adopt(&self, elb: &Elb, ctx: &OpContext) -> ProviderResult<Option<Value>> {
        let all = all_load_balancers(elb).await?;
        let arns = all.iter().filter_map(|lb| lb.load_balancer_arn().map(str::to_string)).collect();
        let Some(arn) = find_attempt(elb, "load balancer", ctx, arns).await? else { return Ok(None) };
        read(elb, &arn, None).await
    }
}

/// The state of a load balancer as AWS reports it. `name_prefix` is not
/// reported: it is the prior state's.
pub(crate) fn state(lb: &LoadBalancer, tags: &[Tag], prior: Option<&Value>) -> Value {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let subnets = strings_value(lb.availability_zones().iter().filter_map(|z| z.subnet_id()));
    let sgs = strings_value(lb.security_groups().iter().map(String::as_str));
    let prefix = prior.and_then(|p| p.get("name_prefix")).cloned().unwrap_or(Value::Null);
    obj([
        ("id", Value::str(arn)),
        ("arn", Value::str(arn)),
        ("arn_suffix", Value::str(client::arn_suffix(arn, "loadbalancer"))),
        ("name", Value::str(lb.load_balancer_name().unwrap_or_default())),
        ("name_prefix", prefix),
        ("internal", Value::Bool(lb.scheme() == Some(&LoadBalancerSchemeEnum::Internal))),
        ("load_balancer_type", Value::str(lb.r#type().map(|t| t.as_str()).unwrap_or("application"))),
        ("subnets", subnets),
        ("security_groups", sgs),
        ("ip_address_type", Value::str(lb.ip_address_type().map(|t| t.as_str()).unwrap_or("ipv4"))),
        ("tags", tags_value(tags)),
        ("dns_name", Value::str(lb.dns_name().unwrap_or_default())),
        ("zone_id", Value::str(lb.canonical_hosted_zone_id().unwrap_or_default())),
        ("vpc_id", Value::str(lb.vpc_id().unwrap_or_default())),
    ])
}

/// One load balancer by ARN, with its tags; `None` when it is gone.
async fn describe(elb: &Elb, arn: &str) -> ProviderResult<Option<(LoadBalancer, Vec<Tag>)>> {
    let out = match elb.client.describe_load_balancers().load_balancer_arns(arn).send().await {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => return Ok(None),
        Err(e) => return Err(sdk_error(&format!("DescribeLoadBalancers `{arn}`"), &e)),
    };
    let Some(lb) = out.load_balancers().first().cloned() else { return Ok(None) };
    let tags = describe_tags(elb, &[arn.to_string()]).await?.remove(arn).unwrap_or_default();
    Ok(Some((lb, tags)))
}

async fn read(elb: &Elb, arn: &str, prior: Option<&Value>) -> ProviderResult<Option<Value>> {
    Ok(describe(elb, arn).await?.map(|(lb, tags)| state(&lb, &tags, prior)))
}

/// Waits while the load balancer is `provisioning`; `failed` is an error.
async fn wait_active(elb: &Elb, arn: &str) -> ProviderResult<()> {
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        let Some((lb, _)) = describe(elb, arn).await? else {
            return Err(ProviderError::new(format!("load balancer `{arn}` disappeared while it was provisioning")));
        };
        match lb.state().and_then(|s| s.code()) {
            Some(LoadBalancerStateEnum::Active) | None => return Ok(()),
            Some(LoadBalancerStateEnum::Failed) => {
                let why = lb.state().and_then(|s| s.reason()).unwrap_or("no reason given");
                return Err(ProviderError::new(format!("load balancer `{arn}` failed to provision: {why}")));
            }
            Some(_) => {}
        }
        let pause = elb.pause(attempt);
        if start.elapsed() + pause > elb.active_timeout {
            return Err(ProviderError::new(format!(
                "load balancer `{arn}` was still provisioning after {}s",
                elb.active_timeout.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

fn strings(v: &Value, attr: &str) -> Vec<String> {
    crate::providers::aws::ec2::client::strings(v.get(attr))
}

async fn create(elb: &Elb, ctx: &OpContext, planned: &Value) -> ApplyOutcome {
    let name = match planned.get_str("name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => generated_name(opt_str(planned, "name_prefix"), ctx),
    };
    let user = match tags_arg(planned.get("tags")) {
        Ok(t) => t,
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    let internal = planned.get("internal").and_then(Value::as_bool).unwrap_or(false);
    let sgs = strings(planned, "security_groups");
    let sent = elb
        .client
        .create_load_balancer()
        .name(&name)
        .set_subnets(Some(strings(planned, "subnets")))
        .set_security_groups((!sgs.is_empty()).then_some(sgs))
        .scheme(if internal { LoadBalancerSchemeEnum::Internal } else { LoadBalancerSchemeEnum::InternetFacing })
        .r#type(LoadBalancerTypeEnum::from(planned.get_str("load_balancer_type").unwrap_or("application")))
        .ip_address_type(IpAddressType::from(planned.get_str("ip_address_type").unwrap_or("ipv4")))
        .set_tags(Some(create_tags(ctx, &user)))
        .send()
        .await;
    let arn = match sent {
        Ok(out) => out.load_balancers().first().and_then(|lb| lb.load_balancer_arn()).unwrap_or_default().to_string(),
        Err(e) if code_of(&e) == Some("DuplicateLoadBalancerName") => return ApplyOutcome::failed(None, name_taken("load balancer", &name)),
        Err(e) => return ApplyOutcome::failed(None, sdk_error(&format!("CreateLoadBalancer for `{}`", ctx.addr), &e)),
    };
    if let Err(e) = claim_created(elb, ctx, "load balancer", &name, &arn).await {
        return ApplyOutcome::failed(None, e);
    }
    let partial = || {
        let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
        m.insert("id".into(), Value::str(&arn));
        m.insert("arn".into(), Value::str(&arn));
        m.insert("name".into(), Value::str(&name));
        Value::Map(m)
    };
    if let Err(e) = wait_active(elb, &arn).await {
        return ApplyOutcome::failed(Some(partial()), e);
    }
    match read(elb, &arn, Some(planned)).await {
        Ok(Some(v)) => ApplyOutcome::ok(Some(v)),
        Ok(None) => ApplyOutcome::failed(
            None,
            ProviderError::new(format!("load balancer `{arn}` disappeared after its create")),
        ),
        Err(e) => ApplyOutcome::failed(Some(partial()), e),
    }
}

async fn update(elb: &Elb, prior: &Value, planned: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    let steps = async {
        if changed(prior, planned, "subnets") {
            elb.client
                .set_subnets()
                .load_balancer_arn(&arn)
                .set_subnets(Some(strings(planned, "subnets")))
                .send()
                .await
                .map_err(|e| {
                    crate::providers::aws::ec2::error::about(
                        "subnets",
                        sdk_error(&format!("SetSubnets on `{arn}`"), &e),
                    )
                })?;
        }
        if changed(prior, planned, "security_groups") && planned.get("security_groups").is_some_and(Value::is_known) {
            elb.client
                .set_security_groups()
                .load_balancer_arn(&arn)
                .set_security_groups(Some(strings(planned, "security_groups")))
                .send()
                .await
                .map_err(|e| {
                    crate::providers::aws::ec2::error::about(
                        "security_groups",
                        sdk_error(&format!("SetSecurityGroups on `{arn}`"), &e),
                    )
                })?;
        }
        if tags_changed(prior, planned) {
            sync_tags(elb, &arn, prior.get("tags"), planned.get("tags")).await?;
        }
        read(elb, &arn, Some(planned)).await
    };
    match steps.await {
        Ok(v) => ApplyOutcome::ok(v),
        Err(e) => {
            let now = read(elb, &arn, Some(prior)).await.ok().flatten().unwrap_or_else(|| prior.clone());
            ApplyOutcome::failed(Some(now), e)
        }
    }
}

async fn delete(elb: &Elb, prior: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    match elb.client.delete_load_balancer().load_balancer_arn(&arn).send().await {
        Ok(_) => ApplyOutcome::ok(None),
        Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => ApplyOutcome::ok(None),
        Err(e) => ApplyOutcome::failed(Some(prior.clone()), sdk_error(&format!("DeleteLoadBalancer `{arn}`"), &e)),
    }
}
