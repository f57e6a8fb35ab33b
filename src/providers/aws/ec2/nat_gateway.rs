//! `aws_nat_gateway`: the way out to the internet for private subnets.
//!
//! CreateNatGateway takes a client token, so the SDK's resend of a create
//! that landed returns the gateway it made. A gateway is `pending` for a
//! minute or two: berth waits for `available` (bounded by `timeouts {
//! create }`, default 10 minutes) so routes to it work, and reports one that
//! `failed` with AWS's reason. A delete waits for `deleted`, because the
//! gateway's Elastic IP and subnet cannot go before it has. Deleted and
//! failed gateways stay listed for about an hour; for berth they are gone.
//! Every argument but `tags` replaces the gateway.

use super::client::{
    Ec2, Failure, Kind, Resource, apply_one_by_one, at_most_one, attempt_filters, client_token, create_timeout, filter,
    id_of, partial_state, refresh_batch, req_str, sync_tags, tag_spec, tags_arg, tags_changed, tags_value,
};
use super::error::{code_of, sdk_error};
use super::retry::{self, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ConnectivityType, Filter, NatGateway, NatGatewayState, ResourceType};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Default for `timeouts { create }`, as in Terraform.
const CREATE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a delete may take, as Terraform's default.
const DELETE_TIMEOUT: Duration = Duration::from_secs(1800);

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("subnet_id").required().force_new(),
        Attribute::arg("allocation_id").force_new(),
        Attribute::arg("connectivity_type").force_new(),
        Attribute::arg("private_ip").computed().force_new(),
        Attribute::arg("tags"),
        Attribute::arg("timeouts").block(),
    ])
    .with_exported(&["id", "network_interface_id", "public_ip", "association_id", "vpc_id"])
});

pub(crate) struct AwsNatGateway;

#[async_trait]
impl Resource for AwsNatGateway {
    fn name(&self) -> &'static str {
        "aws_nat_gateway"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("subnet_id", Str), ("allocation_id", Str), ("connectivity_type", Str), ("private_ip", Str), ("tags", StrMap)]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        super::client::default(m, "connectivity_type", Value::str("public"));
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs: Vec<ProviderError> = create_timeout(config, Duration::ZERO).err().into_iter().collect();
        let kind = config.get_str("connectivity_type").unwrap_or("public");
        if !["public", "private"].contains(&kind) {
            errs.push(ProviderError::attr(
                "connectivity_type",
                format!("`connectivity_type` must be `public` or `private`, not `{kind}`"),
            ));
        }
        // "The allocation ID of an Elastic IP address to associate with the
        // NAT gateway ... required for a public NAT gateway" (CreateNatGateway).
        let has_eip = config.get("allocation_id").is_some_and(|v| !v.is_null());
        if config.is_known() && kind == "public" && !has_eip {
            errs.push(ProviderError::attr(
                "allocation_id",
                "a public NAT gateway needs `allocation_id` (an `aws_eip`)",
            ));
        }
        if kind == "private" && has_eip {
            errs.push(ProviderError::attr("allocation_id", "a private NAT gateway takes no `allocation_id`"));
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| async move { Ok(live(describe(ec2, vec![filter("nat-gateway-id", ids)]).await?)) },
            |g: &NatGateway| g.nat_gateway_id().map(str::to_string),
            |g, prior| async move { Ok(state(&g, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let found = live(describe(ec2, attempt_filters(ctx)).await?);
        Ok(at_most_one("NAT gateway", ctx, found, |g| g.nat_gateway_id().unwrap_or_default().to_string())?
            .map(|g| state(&g, template)))
    }
}

async fn describe(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<NatGateway>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_nat_gateways().set_filter(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeNatGateways", &e))?.nat_gateways().iter().cloned());
    }
    Ok(out)
}

fn gone(g: &NatGateway) -> bool {
    matches!(g.state(), Some(NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed))
}

fn live(found: Vec<NatGateway>) -> Vec<NatGateway> {
    found.into_iter().filter(|g| !gone(g)).collect()
}

fn state(g: &NatGateway, prior: &Value) -> Value {
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let primary = g.nat_gateway_addresses().iter().find(|a| a.is_primary() != Some(false));
    obj([
        ("id", s(g.nat_gateway_id())),
        ("subnet_id", s(g.subnet_id())),
        ("vpc_id", s(g.vpc_id())),
        ("allocation_id", s(primary.and_then(|a| a.allocation_id()))),
        ("connectivity_type", Value::str(g.connectivity_type().map(ConnectivityType::as_str).unwrap_or("public"))),
        ("private_ip", s(primary.and_then(|a| a.private_ip()))),
        ("public_ip", s(primary.and_then(|a| a.public_ip()))),
        ("network_interface_id", s(primary.and_then(|a| a.network_interface_id()))),
        ("association_id", s(primary.and_then(|a| a.association_id()))),
        ("tags", tags_value(g.tags())),
        ("timeouts", prior.get("timeouts").filter(|v| v.is_known()).cloned().unwrap_or(Value::Null)),
    ])
}

/// Polls a gateway until `done` says it is settled, or the deadline.
async fn wait<F>(ec2: &Ec2, id: &str, timeout: Duration, what: &str, done: F) -> ProviderResult<Option<NatGateway>>
where
    F: Fn(Option<&NatGateway>) -> Option<ProviderResult<()>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = ec2.poll;
    loop {
        let found = describe(ec2, vec![filter("nat-gateway-id", [id])]).await?;
        let g = found.into_iter().next();
        if let Some(r) = done(g.as_ref()) {
            return r.map(|()| g);
        }
        if Instant::now() >= deadline {
            let now =
                g.as_ref().and_then(|g| g.state()).map(|s| s.as_str().to_string()).unwrap_or("not visible".into());
            return Err(ProviderError::new(format!(
                "NAT gateway `{id}` did not become {what} within {} (it is `{now}`)",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ec2.poll_max);
    }
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let subnet = req_str(&planned, "subnet_id")?;
            let tags = tags_arg(planned.get("tags"))?;
            let timeout = create_timeout(&planned, CREATE_TIMEOUT)?;
            let opt = |k: &str| planned.get_str(k).filter(|s| !s.is_empty()).map(str::to_string);
            // The attempt's token: AWS answers the SDK's resend of a create
            // that landed with the gateway it made.
            let token = client_token(&op.ctx);
            let out = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .create_nat_gateway()
                    .subnet_id(subnet)
                    .set_allocation_id(opt("allocation_id"))
                    .set_private_ip_address(opt("private_ip"))
                    .set_connectivity_type(opt("connectivity_type").map(|c| ConnectivityType::from(c.as_str())))
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::Natgateway, &op.ctx, &tags))
                    .send()
            })
            .await
            .map_err(|e| sdk_error(&format!("CreateNatGateway for `{}`", op.ctx.addr), &e))?;
            let id = out.nat_gateway().and_then(|g| g.nat_gateway_id()).unwrap_or_default().to_string();
            let ready = wait(ec2, &id, timeout, "available", |g| match g.and_then(|g| g.state()) {
                Some(NatGatewayState::Available) => Some(Ok(())),
                Some(NatGatewayState::Failed) => {
                    let why = g.and_then(|g| g.failure_message()).unwrap_or("no reason given");
                    Some(Err(ProviderError::new(format!("NAT gateway `{id}` failed: {why}"))))
                }
                _ => None,
            })
            .await;
            match ready {
                Ok(Some(g)) => Ok(Some(state(&g, &planned))),
                Ok(None) => Err(Failure::with(partial_state(&planned, &id), ProviderError::new("no gateway"))),
                Err(e) => Err(Failure::with(partial_state(&planned, &id), e)),
            }
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            if tags_changed(&prior, &planned) {
                sync_tags(ec2, &id, prior.get("tags"), planned.get("tags"))
                    .await
                    .map_err(|e| Failure::with(prior.clone(), e))?;
            }
            let mut m = prior.as_map().cloned().unwrap_or_default();
            for k in ["tags", "timeouts"] {
                m.insert(k.into(), planned.get(k).cloned().unwrap_or(Value::Null));
            }
            Ok(Some(Value::Map(m)))
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            let steps = async {
                match ec2.client.delete_nat_gateway().nat_gateway_id(&id).send().await {
                    Ok(_) => {}
                    Err(e) if code_of(&e) == Some("NatGatewayNotFound") => return Ok(()),
                    Err(e) => return Err(sdk_error(&format!("DeleteNatGateway `{id}`"), &e)),
                }
                wait(ec2, &id, DELETE_TIMEOUT, "deleted", |g| match g.and_then(|g| g.state()) {
                    None | Some(NatGatewayState::Deleted | NatGatewayState::Failed) => Some(Ok(())),
                    _ => None,
                })
                .await
                .map(|_| ())
            };
            steps.await.map(|()| None).map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_gateways_need_an_address() {
        let public = obj([("subnet_id", Value::str("subnet-1"))]);
        assert_eq!(AwsNatGateway.validate(&public)[0].attribute.as_deref(), Some("allocation_id"));
        let private = obj([("subnet_id", Value::str("subnet-1")), ("connectivity_type", Value::str("private"))]);
        assert!(AwsNatGateway.validate(&private).is_empty());
    }
}
