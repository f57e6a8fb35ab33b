//! The EC2 and VPC member of the `aws` provider: the router.
//!
//! [`Ec2`] implements [`Provider`] by dispatching each type to the file that
//! owns it: one file per resource type (its schema, normalization,
//! validation, refresh, apply and adoption), each a [`Resource`] row of
//! [`MANAGED`], and the data sources in [`data`]. What they all share (the
//! SDK handle, tags, filters, the generic planner, the apply plumbing) is
//! [`client`], which imports none of them; errors and retries are in
//! [`error`] and [`retry`] below it. Validation and planning are generic
//! here, over each type's schema and argument types, so every type checks
//! and plans the same way.

pub(crate) mod client;
pub mod data;
pub mod default_security_group;
pub mod eip;
pub mod eip_association;
pub mod error;
pub mod health;
pub mod instance;
pub mod internet_gateway;
pub mod key_pair;
pub mod nat_gateway;
pub mod retry;
pub mod route;
pub mod route_table;
pub mod route_table_association;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet;
pub mod vpc;
pub mod vpc_security_group_rule;

pub use client::Ec2;

use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplySink, OpContext, Planned, Provider, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use client::Resource;

/// The managed types, one row per type file.
static MANAGED: &[&dyn Resource] = &[
    &vpc::AwsVpc,
    &subnet::AwsSubnet,
    &internet_gateway::AwsInternetGateway,
    &route_table::AwsRouteTable,
    &route_table_association::AwsRouteTableAssociation,
    &security_group::AwsSecurityGroup,
    &default_security_group::AwsDefaultSecurityGroup,
    &key_pair::AwsKeyPair,
    &instance::AwsInstance,
    &route::AwsRoute,
    &eip::AwsEip,
    &eip_association::AwsEipAssociation,
    &nat_gateway::AwsNatGateway,
    &security_group_rule::AwsSecurityGroupRule,
    &vpc_security_group_rule::INGRESS,
    &vpc_security_group_rule::EGRESS,
];

fn managed(type_: &str) -> Option<&'static dyn Resource> {
    MANAGED.iter().copied().find(|r| r.name() == type_)
}

fn no_type(type_: &str) -> ProviderError {
    ProviderError::new(format!("the `aws` provider has no type `{type_}`"))
}

impl Ec2 {
    /// True for the types this member implements, managed or data.
    pub fn handles(type_: &str) -> bool {
        managed(type_).is_some() || data::find(type_).is_some()
    }

    fn resource(&self, type_: &str) -> ProviderResult<&'static dyn Resource> {
        managed(type_).ok_or_else(|| no_type(type_))
    }
}

fn schema_static(mode: Mode, type_: &str) -> Option<&'static Schema> {
    match mode {
        Mode::Managed => managed(type_).map(|r| r.schema()),
        Mode::Data => data::find(type_).map(|d| d.schema()),
    }
}

/// The configuration as the planner wants it: every value in its canonical
/// form and defaults filled in, so it compares equal to a state read back.
fn normalize(r: &dyn Resource, config: &Value) -> ProviderResult<Map> {
    let mut m = config.as_map().cloned().unwrap_or_default();
    // Only arguments of the schema are planned; anything else is the
    // engine's business (count, depends_on, lifecycle).
    if r.schema().is_argument("tags") {
        let tags = client::normalize_tags(m.get("tags"));
        m.insert("tags".into(), tags);
    }
    r.normalize(&mut m)?;
    Ok(m)
}

fn validate_config(mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    if !matches!(config.unmarked(), Value::Map(_)) {
        errs.push(ProviderError::new(format!("the configuration of `{type_}` must be an object")));
        return errs;
    }
    let resource = match mode {
        Mode::Managed => managed(type_),
        Mode::Data => None,
    };
    let kinds = match (mode, resource) {
        (Mode::Managed, Some(r)) => r.kinds(),
        (Mode::Data, _) => match data::find(type_) {
            Some(d) => d.kinds(),
            None => return errs,
        },
        _ => return errs,
    };
    client::check_types(config, kinds, &mut errs);
    if let Some(schema) = schema_static(mode, type_) {
        for a in schema.arguments().filter(|a| a.required) {
            if config.get(a.name).is_none_or(Value::is_null) {
                errs.push(ProviderError::attr(a.name, format!("`{type_}` requires `{}`", a.name)));
            }
        }
        if let Some(m) = config.as_map() {
            for k in m.keys() {
                if schema.attribute(k).is_some() && !schema.is_argument(k) {
                    errs.push(ProviderError::attr(k, format!("`{k}` of `{type_}` is read-only: it cannot be set")));
                }
            }
        }
    }
    match resource {
        Some(r) => {
            match client::tags_arg(config.get("tags").filter(|v| v.is_known())) {
                Err(e) => errs.push(e),
                Ok(tags) if tags.len() > client::max_user_tags(type_) => errs.push(ProviderError::attr(
                    "tags",
                    format!(
                        "`tags` has {} tags; AWS allows {} per resource and berth adds {} of its own to `{type_}` \
                         (its ownership tags), so at most {} can be set",
                        tags.len(),
                        client::AWS_TAGS_PER_RESOURCE,
                        client::berth_tag_count(type_),
                        client::max_user_tags(type_)
                    ),
                )),
                Ok(_) => {}
            }
            errs.extend(r.validate(config));
        }
        None => errs.extend(data::find(type_).map(|d| data::validate(d, config)).unwrap_or_default()),
    }
    errs
}

#[async_trait]
impl Provider for Ec2 {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        schema_static(mode, type_)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => MANAGED.iter().map(|r| r.name()).collect(),
            Mode::Data => data::names(),
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        validate_config(mode, type_, config)
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        match managed(type_) {
            Some(r) => r.refresh(self, &items).await,
            None => {
                let e = no_type(type_);
                items.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let r = self.resource(type_)?;
        if let Some(e) = validate_config(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        let config = normalize(r, config)?;
        let mut planned = client::plan_generic(r.schema(), prior, &config);
        r.refine_plan(prior, &config, &mut planned);
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        match managed(type_) {
            Some(r) => r.apply(self, ops, sink).await,
            None => {
                for i in 0..ops.len() {
                    let _ = sink.send((i, crate::providers::ApplyOutcome::failed(None, no_type(type_))));
                }
            }
        }
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        let source = data::find(type_).ok_or_else(|| no_type(type_))?;
        if let Some(e) = validate_config(Mode::Data, type_, config).into_iter().next() {
            return Err(e);
        }
        data::read(self, source, config).await
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Option<Value>> {
        let r = self.resource(type_)?;
        // The configuration stands in for the prior state: it supplies what
        // AWS cannot report back (user_data, public_key, rule grouping).
        let template = Value::Map(normalize(r, config)?);
        // The interrupted create may have made an object that listings do
        // not show yet (EC2 is eventually consistent, and the next run may
        // start at once): concluding it made none would create a second.
        // So an object not found is looked for again, for a bounded time.
        let backoff = self.eventual.lost_answer();
        let start = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            let found = r.adopt(self, ctx, &template).await?;
            if found.is_some() || !r.adopt_looks_again() {
                return Ok(found);
            }
            let delay = backoff.delay(attempt);
            if start.elapsed() + delay > backoff.deadline {
                return Ok(None);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn health(
        &self,
        type_: &str,
        items: &[(OpContext, Value)],
    ) -> Option<ProviderResult<Vec<Option<crate::providers::Health>>>> {
        if type_ == "aws_instance" { Some(health::instances(self, items).await) } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn every_type_has_a_schema_with_id() {
        for t in MANAGED.iter().map(|r| r.name()) {
            assert!(schema_static(Mode::Managed, t).unwrap().attribute("id").is_some(), "{t}");
        }
        for t in data::names() {
            assert!(schema_static(Mode::Data, t).unwrap().attribute("id").is_some(), "{t}");
        }
    }

    #[test]
    fn validation_names_attributes() {
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("cidr_block", Value::Number(10.0))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("cidr_block"));
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("tags", Value::Null)]));
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("cidr_block")));
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("cidr_block", Value::str("10.0.0.0/33"))]));
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("cidr_block")), "{errs:?}");
        let errs = validate_config(
            Mode::Managed,
            "aws_instance",
            &obj([("ami", Value::str("a")), ("instance_type", Value::str("t3.micro")), ("id", Value::str("i-1"))]),
        );
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("id")), "{errs:?}");
        // Unknown values are skipped.
        assert!(
            validate_config(
                Mode::Managed,
                "aws_subnet",
                &obj([("vpc_id", Value::Unknown), ("cidr_block", Value::Unknown)])
            )
            .is_empty()
        );
    }

    #[test]
    fn too_many_tags_are_refused_before_any_call() {
        let tags = |n: usize| Value::Map((0..n).map(|i| (format!("k{i}"), Value::str("v"))).collect());
        let vpc = |n| obj([("cidr_block", Value::str("10.0.0.0/16")), ("tags", tags(n))]);
        assert!(validate_config(Mode::Managed, "aws_vpc", &vpc(46)).is_empty());
        let errs = validate_config(Mode::Managed, "aws_vpc", &vpc(47));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].attribute.as_deref(), Some("tags"));
        assert!(errs[0].message.contains("at most 46"), "{}", errs[0].message);
        let host =
            |n| obj([("ami", Value::str("ami-1")), ("instance_type", Value::str("t3.micro")), ("tags", tags(n))]);
        assert!(validate_config(Mode::Managed, "aws_instance", &host(47)).is_empty());
        assert!(!validate_config(Mode::Managed, "aws_instance", &host(48)).is_empty());
    }

    #[test]
    fn a_restart_plans_new_public_addresses() {
        let prior = obj([
            ("id", Value::str("i-1")),
            ("ami", Value::str("ami-1")),
            ("instance_type", Value::str("t3.micro")),
            ("instance_state", Value::str("running")),
            ("public_ip", Value::str("54.0.0.1")),
            ("public_dns", Value::str("ec2-54-0-0-1.compute-1.amazonaws.com")),
            ("private_ip", Value::str("10.0.0.5")),
            ("tags", obj::<&str>([])),
        ]);
        let plan = |type_: &str, prior: &Value| {
            let config = normalize(
                &instance::AwsInstance,
                &obj([("ami", Value::str("ami-1")), ("instance_type", Value::str(type_))]),
            )
            .unwrap();
            let mut p = client::plan_generic(&instance::SCHEMA, Some(prior), &config);
            instance::AwsInstance.refine_plan(Some(prior), &config, &mut p);
            p
        };
        let p = plan("t3.small", &prior);
        assert_eq!(p.after.get("public_ip"), Some(&Value::Unknown));
        assert_eq!(p.after.get("public_dns"), Some(&Value::Unknown));
        assert_eq!(p.after.get_str("private_ip"), Some("10.0.0.5"));
        assert_eq!(plan("t3.micro", &prior).after.get_str("public_ip"), Some("54.0.0.1"));
        let mut stopped = prior.clone();
        if let Value::Map(m) = &mut stopped {
            m.insert("instance_state".into(), Value::str("stopped"));
        }
        assert_eq!(plan("t3.micro", &stopped).after.get("public_ip"), Some(&Value::Unknown));
    }

    #[test]
    fn unknown_force_new_argument_replaces() {
        let prior = obj([
            ("id", Value::str("subnet-1")),
            ("arn", Value::str("arn")),
            ("vpc_id", Value::str("vpc-1")),
            ("cidr_block", Value::str("10.0.1.0/24")),
            ("availability_zone", Value::str("us-east-1a")),
            ("availability_zone_id", Value::str("use1-az1")),
            ("owner_id", Value::str("123456789012")),
            ("map_public_ip_on_launch", Value::Bool(false)),
            ("ipv6_cidr_block", Value::Null),
            ("ipv6_cidr_block_association_id", Value::Null),
            ("assign_ipv6_address_on_creation", Value::Bool(false)),
            ("tags", obj::<&str>([])),
        ]);
        let config = normalize(
            &subnet::AwsSubnet,
            &obj([("vpc_id", Value::Unknown), ("cidr_block", Value::str("10.0.1.0/24"))]),
        )
        .unwrap();
        let p = client::plan_generic(&subnet::SCHEMA, Some(&prior), &config);
        assert_eq!(p.requires_replace, vec!["vpc_id".to_string()]);
        assert_eq!(p.after.get("id"), Some(&Value::Unknown));
        assert_eq!(p.after.get("availability_zone"), Some(&Value::Unknown));

        let config = normalize(
            &subnet::AwsSubnet,
            &obj([("vpc_id", Value::str("vpc-1")), ("cidr_block", Value::str("10.0.1.0/24"))]),
        )
        .unwrap();
        let p = client::plan_generic(&subnet::SCHEMA, Some(&prior), &config);
        assert!(p.requires_replace.is_empty());
        assert_eq!(p.after, prior);
    }
}
