//! The Elastic Load Balancing (v2) member of the `aws` provider: internal
//! load balancers in front of a role's hosts, for when private DNS is not
//! enough (clients that cache a name for ever, real balancing of load).
//!
//! [`Elb`] implements [`Provider`] by dispatching each type to the file
//! that owns it, as the EC2 member does: [`load_balancer`] (`aws_lb`),
//! [`target_group`] (`aws_lb_target_group`), [`listener`]
//! (`aws_lb_listener`) and [`target_group_attachment`]
//! (`aws_lb_target_group_attachment`), with what they share in [`client`].
//! Validation and planning are generic here, over each type's schema and
//! argument kinds, with EC2's planner, so an ELBv2 type plans exactly as an
//! EC2 type does. Objects carry berth's ownership tags (the same keys as
//! EC2's), so what an interrupted create made is found again by them.
//!
//! The load balancer's `dns_name` and `zone_id` are what a Route53 alias
//! record points at, so the private name of a role can stay the same when a
//! load balancer goes in front of it.

pub(crate) mod client;
pub mod listener;
pub mod load_balancer;
pub mod target_group;
pub mod target_group_attachment;

pub use client::Elb;

use crate::addr::Mode;
use crate::providers::aws::ec2::client::{
    AWS_TAGS_PER_RESOURCE, berth_tag_count, max_user_tags, plan_generic, tags_arg,
};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, OpContext, Planned, Provider, ProviderError, ProviderResult, Refreshed, Schema,
    apply_each,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use client::Resource;

/// The managed types, one row per type file.
static MANAGED: &[&dyn Resource] = &[
    &load_balancer::AwsLb,
    &target_group::AwsLbTargetGroup,
    &listener::AwsLbListener,
    &target_group_attachment::AwsLbTargetGroupAttachment,
];

fn managed(type_: &str) -> Option<&'static dyn Resource> {
    MANAGED.iter().copied().find(|r| r.name() == type_)
}

fn no_type(type_: &str) -> ProviderError {
    ProviderError::new(format!("the `aws` provider has no type `{type_}`"))
}

impl Elb {
    /// True for the types this member implements.
    pub fn handles(type_: &str) -> bool {
        managed(type_).is_some()
    }
}

/// The configuration as the planner wants it: canonical forms and defaults
/// filled in, so it compares equal to a state read back.
fn normalize(r: &dyn Resource, config: &Value) -> ProviderResult<Map> {
    let mut m = config.as_map().cloned().unwrap_or_default();
    if r.schema().is_argument("tags") {
        let tags = crate::providers::aws::ec2::client::normalize_tags(m.get("tags"));
        m.insert("tags".into(), tags);
    }
    r.normalize(&mut m)?;
    Ok(m)
}

fn validate_config(type_: &str, config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    let Some(r) = managed(type_) else { return vec![no_type(type_)] };
    if !matches!(config.unmarked(), Value::Map(_)) {
        return vec![ProviderError::new(format!("the configuration of `{type_}` must be an object"))];
    }
    client::check_types(config, r.kinds(), &mut errs);
    let schema = r.schema();
    for a in schema.arguments().filter(|a| a.required) {
        if config.get(a.name).is_none_or(Value::is_null) {
            errs.push(ProviderError::attr(a.name, format!("`{type_}` requires `{}`", a.name)));
        }
    }
    for k in config.as_map().into_iter().flat_map(|m| m.keys()) {
        if schema.attribute(k).is_some() && !schema.is_argument(k) {
            errs.push(ProviderError::attr(k, format!("`{k}` of `{type_}` is read-only: it cannot be set")));
        }
    }
    if schema.is_argument("tags") {
        match tags_arg(config.get("tags").filter(|v| v.is_known())) {
            Err(e) => errs.push(e),
            Ok(tags) if tags.len() > max_user_tags(type_) => errs.push(ProviderError::attr(
                "tags",
                format!(
                    "`tags` has {} tags; AWS allows {AWS_TAGS_PER_RESOURCE} per resource and berth adds {} of its own \
                     to `{type_}` (its ownership tags), so at most {} can be set",
                    tags.len(),
                    berth_tag_count(type_),
                    max_user_tags(type_)
                ),
            )),
            Ok(_) => {}
        }
    }
    errs.extend(r.validate(config));
    errs
}

#[async_trait]
impl Provider for Elb {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match mode {
            Mode::Managed => managed(type_).map(|r| r.schema()),
            Mode::Data => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => MANAGED.iter().map(|r| r.name()).collect(),
            Mode::Data => Vec::new(),
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        match mode {
            Mode::Managed => validate_config(type_, config),
            Mode::Data => vec![no_type(type_)],
        }
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        match managed(type_) {
            Some(r) => r.refresh(self, &items).await,
            None => items.iter().map(|_| Err(no_type(type_))).collect(),
        }
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let r = managed(type_).ok_or_else(|| no_type(type_))?;
        if let Some(e) = validate_config(type_, config).into_iter().next() {
            return Err(e);
        }
        let config = normalize(r, config)?;
        // AWS does not report `name_prefix`: an object found again after a
        // crash has none recorded, and a name that starts with the
        // configured prefix is the prefix's.
        let prior = prior.map(|p| {
            let mut p = p.clone();
            if let (Value::Map(m), Some(prefix)) = (&mut p, config.get("name_prefix").and_then(Value::as_str))
                && m.get("name_prefix").is_none_or(Value::is_null)
                && m.get("name").and_then(Value::as_str).is_some_and(|n| n.starts_with(prefix))
            {
                m.insert("name_prefix".into(), Value::str(prefix));
            }
            p
        });
        Ok(plan_generic(r.schema(), prior.as_ref(), &config))
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        let Some(r) = managed(type_) else {
            for i in 0..ops.len() {
                let _ = sink.send((i, ApplyOutcome::failed(None, no_type(type_))));
            }
            return;
        };
        // ELBv2 has no batch mutations. An attachment spends its time
        // waiting for health checks, polling with backoff, so a role's
        // hosts wait side by side; 16 in flight stay well under the API's
        // request rates.
        apply_each(ops, sink, 16, |op| r.apply(self, op)).await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(no_type(type_))
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Option<Value>> {
        managed(type_).ok_or_else(|| no_type(type_))?.adopt(self, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn every_type_has_a_schema_with_id_and_tags_where_aws_has_them() {
        for r in MANAGED {
            assert!(r.schema().attribute("id").is_some(), "{}", r.name());
        }
        for t in ["aws_lb", "aws_lb_target_group", "aws_lb_listener"] {
            assert!(managed(t).unwrap().schema().is_argument("tags"), "{t}");
        }
    }

    #[test]
    fn validation_names_attributes() {
        let subnets = |n: usize| Value::List((0..n).map(|i| Value::str(format!("subnet-{i}"))).collect());
        let errs = validate_config("aws_lb", &obj([("subnets", subnets(1)), ("internal", Value::Bool(true))]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].attribute.as_deref(), Some("subnets"));
        assert!(
            validate_config("aws_lb", &obj([("subnets", subnets(1)), ("load_balancer_type", Value::str("network"))]))
                .is_empty()
        );
        let errs = validate_config(
            "aws_lb",
            &obj([("subnets", subnets(2)), ("name", Value::str("internal-web")), ("dns_name", Value::str("x"))]),
        );
        let attrs: Vec<_> = errs.iter().filter_map(|e| e.attribute.clone()).collect();
        assert!(attrs.contains(&"name".to_string()) && attrs.contains(&"dns_name".to_string()), "{errs:?}");
        let errs = validate_config(
            "aws_lb_listener",
            &obj([
                ("load_balancer_arn", Value::str("arn")),
                ("port", Value::Number(80.0)),
                ("protocol", Value::str("HTTP")),
                ("default_action", Value::List(vec![obj([("type", Value::str("redirect"))])])),
            ]),
        );
        assert!(errs.iter().any(|e| e.message.contains("`redirect`")), "{errs:?}");
        let errs = validate_config(
            "aws_lb_target_group",
            &obj([
                ("port", Value::Number(80.0)),
                ("protocol", Value::str("HTTP")),
                ("vpc_id", Value::str("vpc-1")),
                ("health_check", Value::List(vec![obj([("interval", Value::Number(1.0))])])),
            ]),
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("health_check.interval"), "{}", errs[0].message);
        // Unknown values are skipped.
        assert!(
            validate_config(
                "aws_lb_target_group_attachment",
                &obj([("target_group_arn", Value::Unknown), ("target_id", Value::Unknown)])
            )
            .is_empty()
        );
    }
}
