//! `aws_subnet`: a CIDR block of a VPC in one availability zone.
//!
//! A CIDR belongs to one subnet of a VPC, so CreateSubnet cannot make a
//! second subnet: the SDK's resend of a create that landed is refused with
//! `InvalidSubnet.Conflict` by the attempt's own subnet, which is then found
//! by its token tag and used. `ipv6_cidr_block` (from the VPC's IPv6
//! block) is set at creation; `map_public_ip_on_launch` and
//! `assign_ipv6_address_on_creation` change in place, one
//! ModifySubnetAttribute each.

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, bool_attr, changed,
    delete_ignoring_gone, filter, id_of, one_id, opt_bool, opt_str, partial_state, read_back, refresh_batch, req_str,
    sync_tags, tag_spec, tags_arg, tags_changed, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, poll_for, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, Subnet};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("vpc_id").required().force_new(),
        Attribute::arg("cidr_block").required().force_new(),
        Attribute::arg("availability_zone").computed().force_new(),
        Attribute::arg("availability_zone_id").computed().force_new(),
        Attribute::arg("map_public_ip_on_launch"),
        Attribute::arg("ipv6_cidr_block").computed().force_new(),
        Attribute::arg("assign_ipv6_address_on_creation"),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "owner_id", "ipv6_cidr_block_association_id"])
});

pub(crate) struct AwsSubnet;

#[async_trait]
impl Resource for AwsSubnet {
    fn name(&self) -> &'static str {
        "aws_subnet"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("vpc_id", Str),
            ("cidr_block", Str),
            ("availability_zone", Str),
            ("availability_zone_id", Str),
            ("map_public_ip_on_launch", Bool),
            ("ipv6_cidr_block", Str),
            ("assign_ipv6_address_on_creation", Bool),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        client::default(m, "map_public_ip_on_launch", Value::Bool(false));
        client::default(m, "assign_ipv6_address_on_creation", Value::Bool(false));
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = client::validate_cidr(config);
        if let Some(c) = config.get_str("ipv6_cidr_block")
            && !matches!(c.parse::<ipnet::IpNet>(), Ok(ipnet::IpNet::V6(_)))
        {
            errs.push(ProviderError::attr(
                "ipv6_cidr_block",
                format!("`ipv6_cidr_block` is not an IPv6 CIDR block: `{c}`"),
            ));
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe_subnets(ec2, vec![filter("subnet-id", ids)]),
            |s: &Subnet| s.subnet_id().map(str::to_string),
            |s, _prior| async move { Ok(subnet_state(ec2, &s)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, _template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe_subnets(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("subnet", ctx, found, |s| s.subnet_id().unwrap_or_default().to_string())?
            .map(|s| subnet_state(ec2, &s)))
    }
}

pub(crate) async fn describe_subnets(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<Subnet>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_subnets().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeSubnets", &e))?.subnets().iter().cloned());
    }
    Ok(out)
}

pub(crate) fn subnet_state(ec2: &Ec2, s: &Subnet) -> Value {
    let id = s.subnet_id().unwrap_or_default();
    let opt = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let ipv6 = s.ipv6_cidr_block_association_set().iter().find(|a| {
        a.ipv6_cidr_block_state()
            .and_then(|s| s.state())
            .is_some_and(|s| matches!(s.as_str(), "associating" | "associated"))
    });
    let arn =
        s.subnet_arn().map(str::to_string).unwrap_or_else(|| ec2.arn(s.owner_id().unwrap_or_default(), "subnet", id));
    obj([
        ("id", Value::str(id)),
        ("arn", Value::str(arn)),
        ("vpc_id", Value::str(s.vpc_id().unwrap_or_default())),
        ("cidr_block", Value::str(s.cidr_block().unwrap_or_default())),
        ("availability_zone", Value::str(s.availability_zone().unwrap_or_default())),
        ("availability_zone_id", opt(s.availability_zone_id())),
        ("owner_id", opt(s.owner_id())),
        ("map_public_ip_on_launch", Value::Bool(s.map_public_ip_on_launch().unwrap_or(false))),
        ("ipv6_cidr_block", opt(ipv6.and_then(|a| a.ipv6_cidr_block()))),
        ("ipv6_cidr_block_association_id", opt(ipv6.and_then(|a| a.association_id()))),
        ("assign_ipv6_address_on_creation", Value::Bool(s.assign_ipv6_address_on_creation().unwrap_or(false))),
        ("tags", tags_value(s.tags())),
    ])
}

async fn read_subnet(ec2: &Ec2, id: &str) -> ProviderResult<Option<Value>> {
    Ok(describe_subnets(ec2, vec![filter("subnet-id", [id])]).await?.first().map(|s| subnet_state(ec2, s)))
}

async fn set_map_public(ec2: &Ec2, id: &str, want: bool) -> ProviderResult<()> {
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client.modify_subnet_attribute().subnet_id(id).map_public_ip_on_launch(bool_attr(want)).send()
    })
    .await
    .map_err(|e| sdk_error(&format!("ModifySubnetAttribute on `{id}`"), &e))?;
    Ok(())
}

async fn set_assign_ipv6(ec2: &Ec2, id: &str, want: bool) -> ProviderResult<()> {
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client.modify_subnet_attribute().subnet_id(id).assign_ipv6_address_on_creation(bool_attr(want)).send()
    })
    .await
    .map_err(|e| {
        about("assign_ipv6_address_on_creation", sdk_error(&format!("ModifySubnetAttribute on `{id}`"), &e))
    })?;
    Ok(())
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let vpc_id = req_str(&planned, "vpc_id")?;
            let cidr = req_str(&planned, "cidr_block")?;
            let tags = tags_arg(planned.get("tags"))?;
            let created = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .create_subnet()
                    .vpc_id(vpc_id)
                    .cidr_block(cidr)
                    .set_availability_zone(opt_str(&planned, "availability_zone").map(str::to_string))
                    .set_availability_zone_id(opt_str(&planned, "availability_zone_id").map(str::to_string))
                    .set_ipv6_cidr_block(opt_str(&planned, "ipv6_cidr_block").map(str::to_string))
                    .tag_specifications(tag_spec(ResourceType::Subnet, &op.ctx, &tags))
                    .send()
            })
            .await;
            let id = match created {
                Ok(out) => out.subnet().and_then(Subnet::subnet_id).unwrap_or_default().to_string(),
                // A CIDR belongs to one subnet of a VPC: when an attempt
                // landed and its answer was lost, the SDK's resend is refused
                // by that attempt's own subnet.
                Err(e) if code_of(&e) == Some("InvalidSubnet.Conflict") => {
                    let mine = || async {
                        one_id("subnet", &describe_subnets(ec2, attempt_filters(&op.ctx)).await?, Subnet::subnet_id)
                    };
                    match poll_for(ec2.eventual.lost_answer(), &mine).await? {
                        Some(id) => {
                            tracing::debug!(
                                id,
                                "CreateSubnet: the CIDR is taken by this create's own subnet; using it"
                            );
                            id
                        }
                        None => return Err(sdk_error(&format!("CreateSubnet for `{}`", op.ctx.addr), &e).into()),
                    }
                }
                Err(e) => return Err(sdk_error(&format!("CreateSubnet for `{}`", op.ctx.addr), &e).into()),
            };
            let after = async {
                if opt_bool(&planned, "map_public_ip_on_launch") == Some(true) {
                    set_map_public(ec2, &id, true).await?;
                }
                // ModifySubnetAttribute takes one attribute per call.
                if opt_bool(&planned, "assign_ipv6_address_on_creation") == Some(true) {
                    set_assign_ipv6(ec2, &id, true).await?;
                }
                read_back(ec2, "subnet", &id, || read_subnet(ec2, &id)).await
            };
            after.await.map(Some).map_err(|e| Failure::with(partial_state(&planned, &id), e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                if changed(&prior, &planned, "map_public_ip_on_launch") {
                    set_map_public(ec2, &id, opt_bool(&planned, "map_public_ip_on_launch").unwrap_or(false)).await?;
                }
                if changed(&prior, &planned, "assign_ipv6_address_on_creation") {
                    let want = opt_bool(&planned, "assign_ipv6_address_on_creation").unwrap_or(false);
                    set_assign_ipv6(ec2, &id, want).await?;
                }
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read_back(ec2, "subnet", &id, || read_subnet(ec2, &id)).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(as_it_is(read_subnet(ec2, &id), &prior).await, e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            delete_ignoring_gone(ec2, "DeleteSubnet", &id, "InvalidSubnetID.NotFound", || {
                ec2.client.delete_subnet().subnet_id(&id).send()
            })
            .await
            .map(|()| None)
            .map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}
