//! `aws_internet_gateway`: a VPC's way out to the internet, attached to at
//! most one VPC.
//!
//! CreateInternetGateway takes no idempotency token and a gateway has no
//! unique name: the create carries [`NoBlindRetry`] and goes through
//! [`create_or_find`], which looks for the attempt's gateway by its token
//! tag before sending again. The resend of an attach whose answer was lost
//! meets its own attachment (`Resource.AlreadyAssociated`): success when the
//! gateway is attached to the wanted VPC.

use super::client::{
    Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, changed,
    delete_ignoring_gone, filter, id_of, one_id, opt_str, partial_state, read_back, refresh_batch, sync_tags, tag_spec,
    tags_arg, tags_changed, tags_value,
};
use super::error::{code_of, sdk_error};
use super::retry::{self, Created, NoBlindRetry, create_or_find, retry_codes};
use crate::providers::{ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderResult, Refreshed, Schema};
use crate::value::{Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, InternetGateway, ResourceType};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![Attribute::arg("vpc_id"), Attribute::arg("tags")]).with_exported(&["id", "arn"]));

pub(crate) struct AwsInternetGateway;

#[async_trait]
impl Resource for AwsInternetGateway {
    fn name(&self) -> &'static str {
        "aws_internet_gateway"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        &[("vpc_id", Kind::Str), ("tags", Kind::StrMap)]
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe_igws(ec2, vec![filter("internet-gateway-id", ids)]),
            |g: &InternetGateway| g.internet_gateway_id().map(str::to_string),
            |g, _prior| async move { Ok(igw_state(ec2, &g)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, _template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe_igws(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("internet gateway", ctx, found, |g| g.internet_gateway_id().unwrap_or_default().to_string())?
            .map(|g| igw_state(ec2, &g)))
    }
}

async fn describe_igws(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<InternetGateway>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_internet_gateways().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeInternetGateways", &e))?.internet_gateways().iter().cloned());
    }
    Ok(out)
}

fn igw_state(ec2: &Ec2, g: &InternetGateway) -> Value {
    let id = g.internet_gateway_id().unwrap_or_default();
    let vpc = g.attachments().iter().find_map(|a| a.vpc_id()).map(Value::str).unwrap_or(Value::Null);
    obj([
        ("id", Value::str(id)),
        ("arn", Value::str(ec2.arn(g.owner_id().unwrap_or_default(), "internet-gateway", id))),
        ("vpc_id", vpc),
        ("tags", tags_value(g.tags())),
    ])
}

async fn read_igw(ec2: &Ec2, id: &str) -> ProviderResult<Option<Value>> {
    Ok(describe_igws(ec2, vec![filter("internet-gateway-id", [id])]).await?.first().map(|g| igw_state(ec2, g)))
}

async fn attach_igw(ec2: &Ec2, id: &str, vpc: &str) -> ProviderResult<()> {
    let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send()
    })
    .await;
    match r {
        Ok(_) => Ok(()),
        // A gateway attaches to one VPC. The resend of an attach whose
        // answer was lost meets the attachment it made: success when the
        // gateway is attached to this very VPC.
        Err(e) if code_of(&e) == Some("Resource.AlreadyAssociated") => {
            let attached = describe_igws(ec2, vec![filter("internet-gateway-id", [id])])
                .await?
                .first()
                .is_some_and(|g| g.attachments().iter().any(|a| a.vpc_id() == Some(vpc)));
            if attached {
                tracing::debug!(id, vpc, "AttachInternetGateway: already attached to this VPC");
                Ok(())
            } else {
                Err(sdk_error(&format!("AttachInternetGateway `{id}` to `{vpc}`"), &e))
            }
        }
        Err(e) => Err(sdk_error(&format!("AttachInternetGateway `{id}` to `{vpc}`"), &e)),
    }
}

async fn detach_igw(ec2: &Ec2, id: &str, vpc: &str) -> ProviderResult<()> {
    // Detaching fails while instances in the VPC still hold public
    // addresses; those go away as the instances terminate.
    match retry_codes(retry::STILL_IN_USE, ec2.dependents, || {
        ec2.client.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send()
    })
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(code_of(&e), Some("Gateway.NotAttached" | "InvalidInternetGatewayID.NotFound")) => Ok(()),
        Err(e) => Err(sdk_error(&format!("DetachInternetGateway `{id}` from `{vpc}`"), &e)),
    }
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let tags = tags_arg(planned.get("tags"))?;
            let spec = tag_spec(ResourceType::InternetGateway, &op.ctx, &tags);
            let created = create_or_find(
                &format!("CreateInternetGateway for `{}`", op.ctx.addr),
                ec2.eventual.lost_answer(),
                || {
                    ec2.client
                        .create_internet_gateway()
                        .tag_specifications(spec.clone())
                        .customize()
                        .config_override(aws_sdk_ec2::config::Config::builder().retry_classifier(NoBlindRetry))
                        .send()
                },
                || async {
                    let found = describe_igws(ec2, attempt_filters(&op.ctx)).await?;
                    one_id("internet gateway", &found, InternetGateway::internet_gateway_id)
                },
            )
            .await?;
            let id = match created {
                Created::Answered(out) => {
                    out.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_string()
                }
                Created::Found(id) => id,
            };
            let after = async {
                if let Some(vpc) = opt_str(&planned, "vpc_id") {
                    attach_igw(ec2, &id, vpc).await?;
                }
                read_back(ec2, "internet gateway", &id, || read_igw(ec2, &id)).await
            };
            after.await.map(Some).map_err(|e| Failure::with(partial_state(&planned, &id), e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                if changed(&prior, &planned, "vpc_id") {
                    if let Some(old) = opt_str(&prior, "vpc_id") {
                        detach_igw(ec2, &id, old).await?;
                    }
                    if let Some(new) = opt_str(&planned, "vpc_id") {
                        attach_igw(ec2, &id, new).await?;
                    }
                }
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read_back(ec2, "internet gateway", &id, || read_igw(ec2, &id)).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(as_it_is(read_igw(ec2, &id), &prior).await, e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            let steps = async {
                if let Some(vpc) = opt_str(&prior, "vpc_id") {
                    detach_igw(ec2, &id, vpc).await?;
                }
                delete_ignoring_gone(ec2, "DeleteInternetGateway", &id, "InvalidInternetGatewayID.NotFound", || {
                    ec2.client.delete_internet_gateway().internet_gateway_id(&id).send()
                })
                .await
            };
            steps.await.map(|()| None).map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}
