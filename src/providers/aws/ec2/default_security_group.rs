//! `aws_default_security_group`: the group AWS makes with every VPC, taken
//! into management rather than created.
//!
//! As in Terraform, the "create" finds the VPC's group named `default`
//! (the default VPC's when `vpc_id` is left out) and makes its rules exactly
//! the configuration's: every rule AWS or anyone else put there is revoked,
//! and a direction without blocks has no rules (unlike
//! `aws_security_group`, whose blockless directions are left to rule
//! resources). Rules and tags then change in place as for
//! `aws_security_group`, whose rule sets this type shares. The group
//! cannot be deleted: a destroy forgets it and, as Terraform does, leaves
//! its rules as they are. berth puts no ownership tags on a group it did not
//! make; a create interrupted by a crash is adopted by finding the VPC's
//! group again.

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, filter, opt_str, refresh_batch, sync_tags,
};
use super::error::sdk_error;
use super::security_group::{self, describe, read_group, reconcile};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_ec2::types::SecurityGroup;
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("vpc_id").computed().force_new(),
        Attribute::arg("ingress").block(),
        Attribute::arg("egress").block(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "owner_id", "name", "description"])
});

pub(crate) struct AwsDefaultSecurityGroup;

#[async_trait]
impl Resource for AwsDefaultSecurityGroup {
    fn name(&self) -> &'static str {
        "aws_default_security_group"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("vpc_id", Str), ("ingress", Blocks), ("egress", Blocks), ("tags", StrMap)]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        // The configuration's rules are all the rules: no blocks, none.
        for dir in ["ingress", "egress"] {
            let rules = match m.get(dir).filter(|v| !v.is_null()) {
                Some(v) => security_group::normalize_rules(dir, Some(v))?,
                None => Value::List(Vec::new()),
            };
            m.insert(dir.into(), rules);
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        ["ingress", "egress"]
            .into_iter()
            .filter_map(|d| security_group::normalize_rules(d, config.get(d)).err())
            .collect()
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe(ec2, vec![filter("group-id", ids)]),
            |g: &SecurityGroup| g.group_id().map(str::to_string),
            |g, prior| async move { Ok(security_group::state(ec2, &g, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, _ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        // The group is there whether or not the interrupted run reached it;
        // the next plan takes its rules to the configuration's.
        let id = find(ec2, opt_str(template, "vpc_id")).await?;
        Ok(read_group(ec2, &id).await?.map(|g| security_group::state(ec2, &g, template)))
    }

    fn adopt_looks_again(&self) -> bool {
        false
    }
}

/// The id of the group named `default` of `vpc_id`, or of the region's
/// default VPC.
async fn find(ec2: &Ec2, vpc_id: Option<&str>) -> ProviderResult<String> {
    let vpc = match vpc_id {
        Some(v) => v.to_string(),
        None => {
            let out = ec2
                .client
                .describe_vpcs()
                .filters(filter("is-default", ["true"]))
                .send()
                .await
                .map_err(|e| sdk_error("DescribeVpcs", &e))?;
            out.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_string).ok_or_else(|| {
                ProviderError::attr("vpc_id", "the region has no default VPC: set `vpc_id`".to_string())
            })?
        }
    };
    let found = describe(ec2, vec![filter("vpc-id", [vpc.as_str()]), filter("group-name", ["default"])]).await?;
    found
        .first()
        .and_then(|g| g.group_id())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::attr("vpc_id", format!("VPC `{vpc}` has no default security group")))
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let id = find(ec2, opt_str(&planned, "vpc_id")).await?;
            let read_now = || async {
                let g = read_group(ec2, &id).await?;
                Ok(g.map(|g| security_group::state(ec2, &g, &planned)))
            };
            let steps = async {
                // Tags first: what the group carries now (berth's own are
                // never among them) becomes what the configuration says.
                let g = read_group(ec2, &id)
                    .await?
                    .ok_or_else(|| ProviderError::new(format!("security group `{id}` disappeared")))?;
                let now = client::tags_value(g.tags());
                if !now.same_as(planned.get("tags").unwrap_or(&Value::Null)) {
                    sync_tags(ec2, &id, Some(&now), planned.get("tags")).await?;
                }
                reconcile(ec2, &id, &planned).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    let seen = as_it_is(read_now(), &client::partial_state(&planned, &id)).await;
                    Err(Failure::with(seen, e))
                }
            }
        }
        // Rules and tags, as for any security group.
        ChangeKind::Update { .. } => security_group::apply(ec2, op).await,
        // As Terraform does: the group cannot be deleted, so berth forgets
        // it and leaves its rules as they are (a destroy must not cut off
        // what still runs in the VPC).
        ChangeKind::Delete { .. } => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn a_direction_without_blocks_has_no_rules() {
        let mut m = obj([("vpc_id", Value::str("vpc-1"))]).as_map().cloned().unwrap();
        AwsDefaultSecurityGroup.normalize(&mut m).unwrap();
        assert_eq!(m.get("ingress"), Some(&Value::List(Vec::new())));
        assert_eq!(m.get("egress"), Some(&Value::List(Vec::new())));
        assert!(!SCHEMA.attribute("ingress").unwrap().computed, "never carried from what AWS has");
    }
}
