//! `aws_route_table_association`: which route table a subnet uses.
//!
//! An association carries no tags: its subnet and table identify it, which
//! is how a create whose answer was lost (or a crash) is followed up. A
//! subnet has one association, so the resend of an associate that landed
//! meets it (`Resource.AlreadyAssociated`): success when it is with the
//! wanted table. Associations are read through DescribeRouteTables.

use super::client::{Ec2, Failure, Kind, Resource, apply_one_by_one, filter, id_of, refresh_batch, req_str};
use super::error::{code_of, sdk_error};
use super::retry::{self, retry_codes};
use super::route_table::describe_route_tables;
use crate::providers::{ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderResult, Refreshed, Schema};
use crate::value::{Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, RouteTableAssociation, RouteTableAssociationStateCode};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![Attribute::arg("subnet_id").required().force_new(), Attribute::arg("route_table_id").required()])
        .with_exported(&["id"])
});

pub(crate) struct AwsRouteTableAssociation;

#[async_trait]
impl Resource for AwsRouteTableAssociation {
    fn name(&self) -> &'static str {
        "aws_route_table_association"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        &[("subnet_id", Kind::Str), ("route_table_id", Kind::Str)]
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe_associations(ec2, vec![filter("association.route-table-association-id", ids)]),
            |a: &RouteTableAssociation| a.route_table_association_id().map(str::to_string),
            |a, _prior| async move { Ok(association_state(&a)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    /// Associations carry no tags: the subnet and table identify one.
    async fn adopt(&self, ec2: &Ec2, _ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let (Some(subnet), Some(table)) = (template.get_str("subnet_id"), template.get_str("route_table_id")) else {
            return Ok(None);
        };
        let found = describe_associations(ec2, vec![filter("association.subnet-id", [subnet])]).await?;
        Ok(found
            .iter()
            .find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table))
            .map(association_state))
    }

    /// Without its configuration there is nothing to look for, and with it
    /// the association is there or not.
    fn adopt_looks_again(&self) -> bool {
        false
    }
}

fn association_state(a: &RouteTableAssociation) -> Value {
    obj([
        ("id", Value::str(a.route_table_association_id().unwrap_or_default())),
        ("subnet_id", Value::str(a.subnet_id().unwrap_or_default())),
        ("route_table_id", Value::str(a.route_table_id().unwrap_or_default())),
    ])
}

fn live(a: &RouteTableAssociation) -> bool {
    !matches!(
        a.association_state().and_then(|s| s.state()),
        Some(RouteTableAssociationStateCode::Disassociated | RouteTableAssociationStateCode::Disassociating)
    )
}

async fn describe_associations(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<RouteTableAssociation>> {
    Ok(describe_route_tables(ec2, filters)
        .await?
        .iter()
        .flat_map(|rt| rt.associations().iter().cloned())
        .filter(live)
        .collect())
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let subnet = req_str(&planned, "subnet_id")?;
            let table = req_str(&planned, "route_table_id")?;
            let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.associate_route_table().subnet_id(subnet).route_table_id(table).send()
            })
            .await;
            let action = || format!("AssociateRouteTable `{table}` with `{subnet}`");
            let id = match r {
                Ok(out) => out.association_id().unwrap_or_default().to_string(),
                // A subnet has one association. The resend of an associate
                // whose answer was lost (or the next run's create of an
                // association a crash left unrecorded) meets it: success
                // when it is with this very table.
                Err(e) if code_of(&e) == Some("Resource.AlreadyAssociated") => {
                    let found = describe_associations(ec2, vec![filter("association.subnet-id", [subnet])]).await?;
                    match found.iter().find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table)) {
                        Some(a) => {
                            tracing::debug!(subnet, table, "AssociateRouteTable: already associated with this table");
                            a.route_table_association_id().unwrap_or_default().to_string()
                        }
                        None => return Err(sdk_error(&action(), &e).into()),
                    }
                }
                Err(e) => return Err(sdk_error(&action(), &e).into()),
            };
            Ok(Some(obj([
                ("id", Value::str(id)),
                ("subnet_id", Value::str(subnet)),
                ("route_table_id", Value::str(table)),
            ])))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let table = req_str(&planned, "route_table_id")?;
            let subnet = req_str(&prior, "subnet_id")?;
            let now = || async {
                let found = describe_associations(ec2, vec![filter("association.subnet-id", [subnet])]).await;
                found.ok().and_then(|f| f.iter().find(|a| a.subnet_id() == Some(subnet)).map(association_state))
            };
            // Replacing gives the association a new ID.
            let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.replace_route_table_association().association_id(&id).route_table_id(table).send()
            })
            .await;
            let new_id = match r {
                Ok(out) => out.new_association_id().unwrap_or(&id).to_string(),
                // The resend of a replace whose answer was lost names the
                // association it replaced: fine when the subnet's
                // association now is with the wanted table.
                Err(e) if code_of(&e) == Some("InvalidAssociationID.NotFound") => match now().await {
                    Some(a) if a.get_str("route_table_id") == Some(table) => {
                        a.get_str("id").unwrap_or_default().to_string()
                    }
                    other => {
                        let e = sdk_error(&format!("ReplaceRouteTableAssociation `{id}`"), &e);
                        return Err(Failure { state: other, error: e });
                    }
                },
                Err(e) => {
                    let e = sdk_error(&format!("ReplaceRouteTableAssociation `{id}`"), &e);
                    return Err(Failure::with(now().await.unwrap_or(prior.clone()), e));
                }
            };
            let mut m = planned.as_map().cloned().unwrap_or_default();
            m.insert("id".into(), Value::str(new_id));
            Ok(Some(Value::Map(m)))
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            match ec2.client.disassociate_route_table().association_id(&id).send().await {
                Ok(_) => Ok(None),
                Err(e) if code_of(&e) == Some("InvalidAssociationID.NotFound") => Ok(None),
                Err(e) => Err(Failure::with(prior.clone(), sdk_error(&format!("DisassociateRouteTable `{id}`"), &e))),
            }
        }
    }
}
