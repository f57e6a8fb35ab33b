//! `aws_vpc`: the network every other EC2 object of a configuration lives in.
//!
//! CreateVpc takes no idempotency token and a VPC has no unique name, so the
//! SDK's resend of a create whose answer was lost would make a second VPC:
//! the call carries [`NoBlindRetry`] and goes through [`create_or_find`],
//! which looks for the attempt's VPC by its token tag before sending again.
//! `instance_tenancy` is set at creation (a change replaces the VPC);
//! `assign_generated_ipv6_cidr_block` asks AWS for an IPv6 block from its
//! pool, at creation or later (AssociateVpcCidrBlock), and gives it back.
//! The DNS attributes take one ModifyVpcAttribute call each, and are read
//! back with one DescribeVpcAttribute each (EC2 has no batch read of them).

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, bool_attr,
    delete_ignoring_gone, filter, id_of, one_id, opt_bool, partial_state, read_back, refresh_batch, req_str, sync_tags,
    tag_spec, tags_arg, tags_changed, tags_value,
};
use super::error::{about as client_about, sdk_error};
use super::retry::{self, Created, NoBlindRetry, create_or_find, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, Tenancy, Vpc, VpcAttributeName, VpcIpv6CidrBlockAssociation};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("cidr_block").required().force_new(),
        Attribute::arg("instance_tenancy").force_new(),
        Attribute::arg("enable_dns_support"),
        Attribute::arg("enable_dns_hostnames"),
        Attribute::arg("assign_generated_ipv6_cidr_block"),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "owner_id", "ipv6_cidr_block", "ipv6_association_id"])
});

pub(crate) struct AwsVpc;

#[async_trait]
impl Resource for AwsVpc {
    fn name(&self) -> &'static str {
        "aws_vpc"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("cidr_block", Str),
            ("instance_tenancy", Str),
            ("enable_dns_support", Bool),
            ("enable_dns_hostnames", Bool),
            ("assign_generated_ipv6_cidr_block", Bool),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        client::default(m, "enable_dns_support", Value::Bool(true));
        client::default(m, "enable_dns_hostnames", Value::Bool(false));
        client::default(m, "instance_tenancy", Value::str("default"));
        client::default(m, "assign_generated_ipv6_cidr_block", Value::Bool(false));
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = client::validate_cidr(config);
        // CreateVpc's `InstanceTenancy`: "default" or "dedicated" ("host"
        // is not supported for a VPC).
        if let Some(t) = config.get_str("instance_tenancy")
            && !["default", "dedicated"].contains(&t)
        {
            errs.push(ProviderError::attr(
                "instance_tenancy",
                format!("`instance_tenancy` must be `default` or `dedicated`, not `{t}`"),
            ));
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe_vpcs(ec2, vec![filter("vpc-id", ids)]),
            |v: &Vpc| v.vpc_id().map(str::to_string),
            |v, _prior| async move { vpc_state(ec2, &v).await },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, _template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe_vpcs(ec2, attempt_filters(ctx)).await?;
        match at_most_one("VPC", ctx, found, |v| v.vpc_id().unwrap_or_default().to_string())? {
            Some(v) => vpc_state(ec2, &v).await.map(Some),
            None => Ok(None),
        }
    }
}

pub(crate) async fn describe_vpcs(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<Vpc>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_vpcs().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeVpcs", &e))?.vpcs().iter().cloned());
    }
    Ok(out)
}

pub(crate) async fn vpc_dns(ec2: &Ec2, id: &str) -> ProviderResult<(bool, bool)> {
    let support = ec2.client.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsSupport).send();
    let hostnames =
        ec2.client.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsHostnames).send();
    let (s, h) = tokio::join!(support, hostnames);
    let s = s.map_err(|e| sdk_error(&format!("DescribeVpcAttribute on `{id}`"), &e))?;
    let h = h.map_err(|e| sdk_error(&format!("DescribeVpcAttribute on `{id}`"), &e))?;
    Ok((
        s.enable_dns_support().and_then(|a| a.value()).unwrap_or(true),
        h.enable_dns_hostnames().and_then(|a| a.value()).unwrap_or(false),
    ))
}

/// The VPC's IPv6 block that AWS gave it (from Amazon's pool), when
/// associated or on its way.
fn amazon_ipv6(vpc: &Vpc) -> Option<&VpcIpv6CidrBlockAssociation> {
    vpc.ipv6_cidr_block_association_set().iter().find(|a| {
        let live = a
            .ipv6_cidr_block_state()
            .and_then(|s| s.state())
            .is_some_and(|s| matches!(s.as_str(), "associating" | "associated"));
        live && a.ipv6_pool().is_none_or(|p| p == "Amazon")
    })
}

pub(crate) async fn vpc_state(ec2: &Ec2, vpc: &Vpc) -> ProviderResult<Value> {
    let id = vpc.vpc_id().unwrap_or_default();
    let (dns_support, dns_hostnames) = vpc_dns(ec2, id).await?;
    let ipv6 = amazon_ipv6(vpc);
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    Ok(obj([
        ("id", Value::str(id)),
        ("arn", Value::str(ec2.arn(vpc.owner_id().unwrap_or_default(), "vpc", id))),
        ("owner_id", s(vpc.owner_id())),
        ("cidr_block", Value::str(vpc.cidr_block().unwrap_or_default())),
        ("instance_tenancy", Value::str(vpc.instance_tenancy().map(|t| t.as_str()).unwrap_or("default"))),
        ("enable_dns_support", Value::Bool(dns_support)),
        ("enable_dns_hostnames", Value::Bool(dns_hostnames)),
        ("assign_generated_ipv6_cidr_block", Value::Bool(ipv6.is_some())),
        ("ipv6_cidr_block", s(ipv6.and_then(|a| a.ipv6_cidr_block()))),
        ("ipv6_association_id", s(ipv6.and_then(|a| a.association_id()))),
        ("tags", tags_value(vpc.tags())),
    ]))
}

/// Asks AWS for an IPv6 block for the VPC, or gives it back.
async fn set_ipv6(ec2: &Ec2, id: &str, prior: Option<&Value>, planned: &Value) -> ProviderResult<()> {
    let want = opt_bool(planned, "assign_generated_ipv6_cidr_block").unwrap_or(false);
    let have = prior.and_then(|p| opt_bool(p, "assign_generated_ipv6_cidr_block")).unwrap_or(false);
    if want == have {
        return Ok(());
    }
    let about_ipv6 = |e| client_about("assign_generated_ipv6_cidr_block", e);
    if want {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.associate_vpc_cidr_block().vpc_id(id).amazon_provided_ipv6_cidr_block(true).send()
        })
        .await
        .map_err(|e| about_ipv6(sdk_error(&format!("AssociateVpcCidrBlock on `{id}`"), &e)))?;
    } else if let Some(a) = prior.and_then(|p| p.get_str("ipv6_association_id")) {
        ec2.client
            .disassociate_vpc_cidr_block()
            .association_id(a)
            .send()
            .await
            .map_err(|e| about_ipv6(sdk_error(&format!("DisassociateVpcCidrBlock `{a}`"), &e)))?;
    }
    Ok(())
}

async fn read_vpc(ec2: &Ec2, id: &str) -> ProviderResult<Option<Value>> {
    match describe_vpcs(ec2, vec![filter("vpc-id", [id])]).await?.first() {
        Some(v) => vpc_state(ec2, v).await.map(Some),
        None => Ok(None),
    }
}

async fn set_vpc_dns(ec2: &Ec2, id: &str, prior: Option<&Value>, planned: &Value) -> ProviderResult<()> {
    // ModifyVpcAttribute takes one attribute per call.
    for (attr, default) in [("enable_dns_support", true), ("enable_dns_hostnames", false)] {
        let want = opt_bool(planned, attr).unwrap_or(default);
        let have = prior.and_then(|p| opt_bool(p, attr)).unwrap_or(default);
        if want == have {
            continue;
        }
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            let call = ec2.client.modify_vpc_attribute().vpc_id(id);
            let call = if attr == "enable_dns_support" {
                call.enable_dns_support(bool_attr(want))
            } else {
                call.enable_dns_hostnames(bool_attr(want))
            };
            call.send()
        })
        .await
        .map_err(|e| sdk_error(&format!("ModifyVpcAttribute `{attr}` on `{id}`"), &e))?;
    }
    Ok(())
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let cidr = req_str(&planned, "cidr_block")?;
            let tags = tags_arg(planned.get("tags"))?;
            let spec = tag_spec(ResourceType::Vpc, &op.ctx, &tags);
            let created = create_or_find(
                &format!("CreateVpc for `{}`", op.ctx.addr),
                ec2.eventual.lost_answer(),
                || {
                    ec2.client
                        .create_vpc()
                        .cidr_block(cidr)
                        .set_instance_tenancy(planned.get_str("instance_tenancy").map(Tenancy::from))
                        .set_amazon_provided_ipv6_cidr_block(
                            opt_bool(&planned, "assign_generated_ipv6_cidr_block").filter(|b| *b),
                        )
                        .tag_specifications(spec.clone())
                        .customize()
                        .config_override(aws_sdk_ec2::config::Config::builder().retry_classifier(NoBlindRetry))
                        .send()
                },
                || async { one_id("VPC", &describe_vpcs(ec2, attempt_filters(&op.ctx)).await?, Vpc::vpc_id) },
            )
            .await?;
            let id = match created {
                Created::Answered(out) => out.vpc().and_then(Vpc::vpc_id).unwrap_or_default().to_string(),
                Created::Found(id) => id,
            };
            let after = async {
                set_vpc_dns(ec2, &id, None, &planned).await?;
                read_back(ec2, "VPC", &id, || read_vpc(ec2, &id)).await
            };
            after.await.map(Some).map_err(|e| Failure::with(partial_state(&planned, &id), e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                set_vpc_dns(ec2, &id, Some(&prior), &planned).await?;
                set_ipv6(ec2, &id, Some(&prior), &planned).await?;
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read_back(ec2, "VPC", &id, || read_vpc(ec2, &id)).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(as_it_is(read_vpc(ec2, &id), &prior).await, e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            delete_ignoring_gone(ec2, "DeleteVpc", &id, "InvalidVpcID.NotFound", || {
                ec2.client.delete_vpc().vpc_id(&id).send()
            })
            .await
            .map(|()| None)
            .map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}
