//! `aws_eip`: an Elastic IP, the stable public address of a Kamal host or
//! of a NAT gateway.
//!
//! AllocateAddress takes no idempotency token and an address has no unique
//! name, so the SDK's resend of an allocation whose answer was lost would
//! hold a second address (and bill for it): the call carries
//! [`NoBlindRetry`] and goes through [`create_or_find`], which looks for the
//! attempt's address by its token tag first. `instance` or
//! `network_interface` associates the address (in place, AssociateAddress
//! with reassociation allowed, so moving it is one call); a destroy
//! disassociates it before it is released. Refresh reads a batch with one
//! DescribeAddresses per 200.

use super::client::{
    Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, filter, id_of, one_id,
    partial_state, read_back, refresh_batch, sync_tags, tag_spec, tags_arg, tags_changed, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, Created, NoBlindRetry, create_or_find, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Address, DomainType, Filter, ResourceType};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("domain").computed().force_new(),
        // Terraform's AWS provider before 5: `vpc = true` is `domain = "vpc"`.
        Attribute::arg("vpc").computed().force_new(),
        Attribute::arg("instance").computed(),
        Attribute::arg("network_interface").computed(),
        Attribute::arg("associate_with_private_ip"),
        Attribute::arg("public_ipv4_pool").computed().force_new(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "allocation_id", "association_id", "public_ip", "private_ip", "public_dns", "arn"])
});

pub(crate) struct AwsEip;

#[async_trait]
impl Resource for AwsEip {
    fn name(&self) -> &'static str {
        "aws_eip"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("domain", Str),
            ("vpc", Bool),
            ("instance", Str),
            ("network_interface", Str),
            ("associate_with_private_ip", Str),
            ("public_ipv4_pool", Str),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        // Every address is a VPC address now (EC2-Classic is gone).
        if m.get("domain").is_none_or(Value::is_null) && m.get("vpc").is_some_and(|v| v.as_bool().is_some()) {
            m.insert("domain".into(), Value::str("vpc"));
        }
        for k in ["instance", "network_interface", "associate_with_private_ip"] {
            if m.get(k).and_then(Value::as_str) == Some("") {
                m.insert(k.into(), Value::Null);
            }
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if let Some(d) = config.get_str("domain")
            && d != "vpc"
        {
            errs.push(ProviderError::attr("domain", format!("`domain` must be `vpc`, not `{d}`")));
        }
        if config.get("vpc").and_then(Value::as_bool) == Some(false) {
            errs.push(ProviderError::attr("vpc", "`vpc = false` asks for an EC2-Classic address, which AWS retired"));
        }
        let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
        if set("instance") && set("network_interface") {
            errs.push(ProviderError::attr("network_interface", "set `instance` or `network_interface`, not both"));
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe(ec2, vec![filter("allocation-id", ids)]),
            |a: &Address| a.allocation_id().map(str::to_string),
            |a, prior| async move { Ok(state(ec2, &a, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("Elastic IP", ctx, found, |a| a.allocation_id().unwrap_or_default().to_string())?
            .map(|a| state(ec2, &a, template)))
    }
}

pub(crate) async fn describe(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<Address>> {
    // DescribeAddresses does not paginate.
    let out = ec2
        .client
        .describe_addresses()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeAddresses", &e))?;
    Ok(out.addresses().to_vec())
}

/// The public DNS name AWS gives an address: `ec2-A-B-C-D.REGION.compute.amazonaws.com`
/// (`compute-1.amazonaws.com` in us-east-1).
fn public_dns(region: &str, ip: &str) -> String {
    let dashed = ip.replace('.', "-");
    if region == "us-east-1" {
        format!("ec2-{dashed}.compute-1.amazonaws.com")
    } else {
        format!("ec2-{dashed}.{region}.compute.amazonaws.com")
    }
}

fn state(ec2: &Ec2, a: &Address, prior: &Value) -> Value {
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let id = a.allocation_id().unwrap_or_default();
    let ip = a.public_ip().unwrap_or_default();
    let owner = a.network_interface_owner_id().unwrap_or_default();
    let carried = |k: &str| prior.get(k).filter(|v| v.is_known()).cloned().unwrap_or(Value::Null);
    obj([
        ("id", Value::str(id)),
        ("allocation_id", Value::str(id)),
        ("arn", Value::str(ec2.arn(owner, "elastic-ip", id))),
        ("domain", Value::str(a.domain().map(DomainType::as_str).unwrap_or("vpc"))),
        ("vpc", Value::Bool(a.domain().is_none_or(|d| *d == DomainType::Vpc))),
        ("instance", s(a.instance_id())),
        ("network_interface", s(a.network_interface_id())),
        ("associate_with_private_ip", carried("associate_with_private_ip")),
        ("public_ipv4_pool", s(a.public_ipv4_pool())),
        ("association_id", s(a.association_id())),
        ("public_ip", s(a.public_ip())),
        ("private_ip", s(a.private_ip_address())),
        ("public_dns", if ip.is_empty() { Value::Null } else { Value::str(public_dns(&ec2.region, ip)) }),
        ("tags", tags_value(a.tags())),
    ])
}

async fn read(ec2: &Ec2, id: &str, prior: &Value) -> ProviderResult<Option<Value>> {
    Ok(describe(ec2, vec![filter("allocation-id", [id])]).await?.first().map(|a| state(ec2, a, prior)))
}

/// Associates the address with what `planned` names, when it names one.
async fn associate(ec2: &Ec2, id: &str, planned: &Value) -> ProviderResult<()> {
    let instance = planned.get_str("instance").filter(|s| !s.is_empty()).map(str::to_string);
    let eni = planned.get_str("network_interface").filter(|s| !s.is_empty()).map(str::to_string);
    if instance.is_none() && eni.is_none() {
        return Ok(());
    }
    let private = planned.get_str("associate_with_private_ip").filter(|s| !s.is_empty()).map(str::to_string);
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client
            .associate_address()
            .allocation_id(id)
            .set_instance_id(instance.clone())
            .set_network_interface_id(eni.clone())
            .set_private_ip_address(private.clone())
            // Moving the address from one host to the next is one call.
            .allow_reassociation(true)
            .send()
    })
    .await
    .map_err(|e| about("instance", sdk_error(&format!("AssociateAddress `{id}`"), &e)))?;
    Ok(())
}

async fn disassociate(ec2: &Ec2, association: &str) -> ProviderResult<()> {
    match ec2.client.disassociate_address().association_id(association).send().await {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some("InvalidAssociationID.NotFound") => Ok(()),
        Err(e) => Err(sdk_error(&format!("DisassociateAddress `{association}`"), &e)),
    }
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let tags = tags_arg(planned.get("tags"))?;
            let spec = tag_spec(ResourceType::ElasticIp, &op.ctx, &tags);
            let pool = planned.get_str("public_ipv4_pool").filter(|s| !s.is_empty()).map(str::to_string);
            let created = create_or_find(
                &format!("AllocateAddress for `{}`", op.ctx.addr),
                ec2.eventual.lost_answer(),
                || {
                    ec2.client
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .set_public_ipv4_pool(pool.clone())
                        .tag_specifications(spec.clone())
                        .customize()
                        .config_override(aws_sdk_ec2::config::Config::builder().retry_classifier(NoBlindRetry))
                        .send()
                },
                || async {
                    let found = describe(ec2, attempt_filters(&op.ctx)).await?;
                    one_id("Elastic IP", &found, Address::allocation_id)
                },
            )
            .await?;
            let id = match created {
                Created::Answered(out) => out.allocation_id().unwrap_or_default().to_string(),
                Created::Found(id) => id,
            };
            let after = async {
                associate(ec2, &id, &planned).await?;
                read_back(ec2, "Elastic IP", &id, || read(ec2, &id, &planned)).await
            };
            after.await.map(Some).map_err(|e| Failure::with(partial_state(&planned, &id), e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                let target = |v: &Value| (v.get("instance").cloned(), v.get("network_interface").cloned());
                let (was, now) = (target(&prior), target(&planned));
                let moved = !was.0.unwrap_or(Value::Null).same_as(&now.0.clone().unwrap_or(Value::Null))
                    || !was.1.unwrap_or(Value::Null).same_as(&now.1.clone().unwrap_or(Value::Null));
                if moved {
                    let unset = |v: &Option<Value>| v.as_ref().is_none_or(|v| v.is_null());
                    if unset(&now.0) && unset(&now.1) {
                        if let Some(a) = prior.get_str("association_id") {
                            disassociate(ec2, a).await?;
                        }
                    } else {
                        associate(ec2, &id, &planned).await?;
                    }
                }
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read_back(ec2, "Elastic IP", &id, || read(ec2, &id, &planned)).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(as_it_is(read(ec2, &id, &prior), &prior).await, e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            let steps = async {
                // The association as AWS has it now: another resource may
                // have moved the address since.
                let now = describe(ec2, vec![filter("allocation-id", [id.as_str()])]).await?;
                if let Some(a) = now.first().and_then(|a| a.association_id()) {
                    disassociate(ec2, a).await?;
                }
                match retry_codes(retry::STILL_IN_USE, ec2.dependents, || {
                    ec2.client.release_address().allocation_id(&id).send()
                })
                .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if code_of(&e) == Some("InvalidAllocationID.NotFound") => Ok(()),
                    Err(e) => Err(sdk_error(&format!("ReleaseAddress `{id}`"), &e)),
                }
            };
            steps.await.map(|()| None).map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_names_follow_the_region() {
        assert_eq!(public_dns("us-east-1", "54.1.2.3"), "ec2-54-1-2-3.compute-1.amazonaws.com");
        assert_eq!(public_dns("eu-west-1", "54.1.2.3"), "ec2-54-1-2-3.eu-west-1.compute.amazonaws.com");
    }

    #[test]
    fn classic_addresses_are_refused() {
        let errs = AwsEip.validate(&obj([("vpc", Value::Bool(false))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("vpc"));
        assert!(AwsEip.validate(&obj([("domain", Value::str("vpc"))])).is_empty());
    }
}
