//! `aws_eip_association`: an Elastic IP associated with a host or an
//! interface, apart from the address itself (the address outlives hosts
//! that come and go; the association is replaced with them).
//!
//! An association has no tags: the address and its target identify it.
//! AssociateAddress is safe to send again (the resend of one whose answer
//! was lost associates the same address with the same target and answers
//! the same association), so a create after a crash simply associates
//! again. Refresh reads a batch with one DescribeAddresses per 200, by
//! association id; an address associated elsewhere since is gone.

use super::client::{Ec2, Failure, Kind, Resource, apply_one_by_one, filter, id_of, refresh_batch, req_str};
use super::eip::describe;
use super::error::{code_of, sdk_error};
use super::retry::{self, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::Address;
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("allocation_id").required().force_new(),
        Attribute::arg("instance_id").computed().force_new(),
        Attribute::arg("network_interface_id").computed().force_new(),
        Attribute::arg("private_ip_address").computed().force_new(),
        Attribute::arg("allow_reassociation"),
    ])
    .with_exported(&["id", "public_ip"])
});

pub(crate) struct AwsEipAssociation;

#[async_trait]
impl Resource for AwsEipAssociation {
    fn name(&self) -> &'static str {
        "aws_eip_association"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("allocation_id", Str),
            ("instance_id", Str),
            ("network_interface_id", Str),
            ("private_ip_address", Str),
            ("allow_reassociation", Bool),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        super::client::default(m, "allow_reassociation", Value::Bool(false));
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
        if config.is_known() && !set("instance_id") && !set("network_interface_id") {
            return vec![ProviderError::new("`aws_eip_association` needs `instance_id` or `network_interface_id`")];
        }
        Vec::new()
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe(ec2, vec![filter("association-id", ids)]),
            |a: &Address| a.association_id().map(str::to_string),
            |a, prior| async move { Ok(state(&a, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    /// The address, when the configuration is at hand: associated with
    /// what the configuration names, it is this association.
    async fn adopt(&self, ec2: &Ec2, _ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let Some(allocation) = template.get_str("allocation_id") else { return Ok(None) };
        let found = describe(ec2, vec![filter("allocation-id", [allocation])]).await?;
        Ok(found.first().filter(|a| targets_match(a, template)).map(|a| state(a, template)))
    }

    fn adopt_looks_again(&self) -> bool {
        false
    }
}

fn targets_match(a: &Address, v: &Value) -> bool {
    a.association_id().is_some()
        && v.get_str("instance_id").is_none_or(|i| a.instance_id() == Some(i))
        && v.get_str("network_interface_id").is_none_or(|n| a.network_interface_id() == Some(n))
}

fn state(a: &Address, prior: &Value) -> Value {
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    obj([
        ("id", s(a.association_id())),
        ("allocation_id", s(a.allocation_id())),
        ("instance_id", s(a.instance_id())),
        ("network_interface_id", s(a.network_interface_id())),
        ("private_ip_address", s(a.private_ip_address())),
        (
            "allow_reassociation",
            prior.get("allow_reassociation").filter(|v| v.is_known()).cloned().unwrap_or(Value::Bool(false)),
        ),
        ("public_ip", s(a.public_ip())),
    ])
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let allocation = req_str(&planned, "allocation_id")?;
            let opt = |k: &str| planned.get_str(k).filter(|s| !s.is_empty()).map(str::to_string);
            let out = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .associate_address()
                    .allocation_id(allocation)
                    .set_instance_id(opt("instance_id"))
                    .set_network_interface_id(opt("network_interface_id"))
                    .set_private_ip_address(opt("private_ip_address"))
                    .set_allow_reassociation(planned.get("allow_reassociation").and_then(Value::as_bool))
                    .send()
            })
            .await
            .map_err(|e| sdk_error(&format!("AssociateAddress `{allocation}` for `{}`", op.ctx.addr), &e))?;
            let association = out.association_id().unwrap_or_default().to_string();
            let found = describe(ec2, vec![filter("allocation-id", [allocation])]).await?;
            match found.first() {
                Some(a) if a.association_id() == Some(association.as_str()) => Ok(Some(state(a, &planned))),
                _ => {
                    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
                    m.insert("id".into(), Value::str(&association));
                    Ok(Some(Value::Map(m)))
                }
            }
        }
        ChangeKind::Update { prior, planned } => {
            // Only `allow_reassociation` changes in place, and it matters only
            // when associating.
            let mut m = prior.as_map().cloned().unwrap_or_default();
            m.insert("allow_reassociation".into(), planned.get("allow_reassociation").cloned().unwrap_or(Value::Null));
            Ok(Some(Value::Map(m)))
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            match ec2.client.disassociate_address().association_id(&id).send().await {
                Ok(_) => Ok(None),
                Err(e) if code_of(&e) == Some("InvalidAssociationID.NotFound") => Ok(None),
                Err(e) => Err(Failure::with(prior.clone(), sdk_error(&format!("DisassociateAddress `{id}`"), &e))),
            }
        }
    }
}
