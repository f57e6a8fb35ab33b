//! `aws_route_table`: a VPC's routes, the `route` blocks managed as a set.
//!
//! As in Terraform, a table without `route` blocks leaves its routes alone
//! (standalone `aws_route`s, or routes another tool adds, live there);
//! `route = []` removes every route but the local one.
//!
//! CreateRouteTable takes a client token, so the SDK's resend of a create
//! that landed returns the table it made. Routes are synced by destination:
//! only the routes that differ are deleted, replaced or created. The resend
//! of a CreateRoute whose answer was lost meets its own route
//! (`RouteAlreadyExists`): success when the table's route for the
//! destination is exactly the wanted one.

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, changed,
    client_token, delete_ignoring_gone, filter, id_of, partial_state, read_back, refresh_batch, req_str, sync_tags,
    tag_spec, tags_arg, tags_changed, tags_value,
};
use super::error::{code_of, sdk_error};
use super::retry::{self, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, RouteOrigin, RouteTable};
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("vpc_id").required().force_new(),
        Attribute::arg("route").block().computed(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn"])
});

pub(crate) struct AwsRouteTable;

#[async_trait]
impl Resource for AwsRouteTable {
    fn name(&self) -> &'static str {
        "aws_route_table"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        &[("vpc_id", Kind::Str), ("route", Kind::Blocks), ("tags", Kind::StrMap)]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        // No `route` at all leaves the table's routes alone (standalone
        // `aws_route`s may manage them); `route = []` means none.
        if m.get("route").is_some_and(|v| !v.is_null()) {
            let routes = normalize_routes(m.get("route"))?;
            m.insert("route".into(), routes);
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        normalize_routes(config.get("route")).err().into_iter().collect()
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe_route_tables(ec2, vec![filter("route-table-id", ids)]),
            |rt: &RouteTable| rt.route_table_id().map(str::to_string),
            |rt, _prior| async move { Ok(route_table_state(ec2, &rt)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, _template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe_route_tables(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("route table", ctx, found, |r| r.route_table_id().unwrap_or_default().to_string())?
            .map(|r| route_table_state(ec2, &r)))
    }
}

/// The targets a `route` block may name; exactly one is set.
const ROUTE_TARGETS: &[&str] =
    &["gateway_id", "nat_gateway_id", "instance_id", "network_interface_id", "vpc_peering_connection_id"];

/// Normalizes `route` blocks into a set: every key present (`""` when
/// unset, as AWS reports it), sorted by destination.
pub(crate) fn normalize_routes(v: Option<&Value>) -> ProviderResult<Value> {
    let blocks = match v.map(Value::unmarked) {
        None | Some(Value::Null) => return Ok(Value::List(Vec::new())),
        Some(Value::Unknown) => return Ok(Value::Unknown),
        Some(Value::List(l)) => l,
        Some(other) => {
            return Err(ProviderError::attr("route", format!("`route` must be blocks, not {}", other.type_name())));
        }
    };
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for b in blocks {
        let Some(m) = b.as_map() else {
            return Err(ProviderError::attr("route", "each `route` must be a block"));
        };
        if let Some(k) = m.keys().find(|k| *k != "cidr_block" && !ROUTE_TARGETS.contains(&k.as_str())) {
            return Err(ProviderError::attr("route", format!("unknown argument `{k}` in a `route` block")));
        }
        let mut r = Map::new();
        for key in std::iter::once("cidr_block").chain(ROUTE_TARGETS.iter().copied()) {
            let v = match m.get(key).map(Value::unmarked) {
                None | Some(Value::Null) => Value::str(""),
                Some(v @ (Value::String(_) | Value::Unknown)) => v.clone(),
                Some(other) => {
                    return Err(ProviderError::attr(
                        "route",
                        format!("`route.{key}` must be a string, not {}", other.type_name()),
                    ));
                }
            };
            r.insert(key.to_string(), v);
        }
        match r["cidr_block"].as_str() {
            Some("") => return Err(ProviderError::attr("route", "a `route` block requires `cidr_block`")),
            Some(c) => {
                if c.parse::<ipnet::IpNet>().is_err() {
                    return Err(ProviderError::attr("route", format!("`route.cidr_block` is not a CIDR block: `{c}`")));
                }
                if !seen.insert(c.to_string()) {
                    return Err(ProviderError::attr("route", format!("two `route` blocks for `{c}`")));
                }
            }
            None => {}
        }
        let set = ROUTE_TARGETS.iter().filter(|k| r[**k].as_str() != Some("")).count();
        if set != 1 {
            return Err(ProviderError::attr(
                "route",
                format!("a `route` block needs exactly one target ({}), it has {set}", ROUTE_TARGETS.join(", ")),
            ));
        }
        out.push(Value::Map(r));
    }
    Ok(Value::List(client::sorted_unique(out)))
}

fn routes_of(rt: &RouteTable) -> Value {
    let mut out = Vec::new();
    for r in rt.routes() {
        // The local route comes with the table; it is not the user's.
        if r.origin() == Some(&RouteOrigin::CreateRouteTable) || r.gateway_id() == Some("local") {
            continue;
        }
        let Some(cidr) = r.destination_cidr_block() else { continue };
        let instance = r.instance_id().unwrap_or_default();
        // AWS reports an instance route's interface too; the user named the
        // instance, so only it is compared.
        let eni = if instance.is_empty() { r.network_interface_id().unwrap_or_default() } else { "" };
        out.push(obj([
            ("cidr_block", Value::str(cidr)),
            ("gateway_id", Value::str(r.gateway_id().unwrap_or_default())),
            ("nat_gateway_id", Value::str(r.nat_gateway_id().unwrap_or_default())),
            ("instance_id", Value::str(instance)),
            ("network_interface_id", Value::str(eni)),
            ("vpc_peering_connection_id", Value::str(r.vpc_peering_connection_id().unwrap_or_default())),
        ]));
    }
    Value::List(client::sorted_unique(out))
}

pub(crate) async fn describe_route_tables(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<RouteTable>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_route_tables().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeRouteTables", &e))?.route_tables().iter().cloned());
    }
    Ok(out)
}

fn route_table_state(ec2: &Ec2, rt: &RouteTable) -> Value {
    let id = rt.route_table_id().unwrap_or_default();
    obj([
        ("id", Value::str(id)),
        ("arn", Value::str(ec2.arn(rt.owner_id().unwrap_or_default(), "route-table", id))),
        ("vpc_id", Value::str(rt.vpc_id().unwrap_or_default())),
        ("route", routes_of(rt)),
        ("tags", tags_value(rt.tags())),
    ])
}

async fn read_route_table(ec2: &Ec2, id: &str) -> ProviderResult<Option<Value>> {
    Ok(describe_route_tables(ec2, vec![filter("route-table-id", [id])])
        .await?
        .first()
        .map(|rt| route_table_state(ec2, rt)))
}

fn routes_by_cidr(v: Option<&Value>) -> BTreeMap<String, Map> {
    v.and_then(Value::as_list)
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r.get_str("cidr_block")?.to_string(), r.as_map()?.clone())))
        .collect()
}

/// Deletes, replaces and creates only the routes that differ.
async fn sync_routes(ec2: &Ec2, id: &str, current: Option<&Value>, wanted: Option<&Value>) -> ProviderResult<()> {
    let have = routes_by_cidr(current);
    let want = routes_by_cidr(wanted);
    for cidr in have.keys().filter(|c| !want.contains_key(*c)) {
        match ec2.client.delete_route().route_table_id(id).destination_cidr_block(cidr).send().await {
            Ok(_) => {}
            Err(e) if code_of(&e) == Some("InvalidRoute.NotFound") => {}
            Err(e) => return Err(sdk_error(&format!("DeleteRoute `{cidr}` from `{id}`"), &e)),
        }
    }
    for (cidr, route) in &want {
        let target = |k: &str| route.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        match have.get(cidr) {
            Some(old) if Value::Map(old.clone()).same_as(&Value::Map(route.clone())) => {}
            Some(_) => {
                retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .replace_route()
                        .route_table_id(id)
                        .destination_cidr_block(cidr)
                        .set_gateway_id(target("gateway_id"))
                        .set_nat_gateway_id(target("nat_gateway_id"))
                        .set_instance_id(target("instance_id"))
                        .set_network_interface_id(target("network_interface_id"))
                        .set_vpc_peering_connection_id(target("vpc_peering_connection_id"))
                        .send()
                })
                .await
                .map_err(|e| sdk_error(&format!("ReplaceRoute `{cidr}` in `{id}`"), &e))?;
            }
            None => {
                let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .create_route()
                        .route_table_id(id)
                        .destination_cidr_block(cidr)
                        .set_gateway_id(target("gateway_id"))
                        .set_nat_gateway_id(target("nat_gateway_id"))
                        .set_instance_id(target("instance_id"))
                        .set_network_interface_id(target("network_interface_id"))
                        .set_vpc_peering_connection_id(target("vpc_peering_connection_id"))
                        .send()
                })
                .await;
                match r {
                    Ok(_) => {}
                    // The resend of a CreateRoute whose answer was lost meets
                    // the route it made: success when the table's route for
                    // the destination is exactly the wanted one.
                    Err(e) if code_of(&e) == Some("RouteAlreadyExists") => {
                        let now = read_route_table(ec2, id).await?;
                        let have = routes_by_cidr(now.as_ref().and_then(|t| t.get("route")));
                        if !have.get(cidr).is_some_and(|r| Value::Map(r.clone()).same_as(&Value::Map(route.clone()))) {
                            return Err(sdk_error(&format!("CreateRoute `{cidr}` in `{id}`"), &e));
                        }
                        tracing::debug!(id, cidr, "CreateRoute: the route is already there, as wanted");
                    }
                    Err(e) => return Err(sdk_error(&format!("CreateRoute `{cidr}` in `{id}`"), &e)),
                }
            }
        }
    }
    Ok(())
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let vpc_id = req_str(&planned, "vpc_id")?;
            let tags = tags_arg(planned.get("tags"))?;
            // The attempt's client token: AWS answers the SDK's resend of a
            // request that landed with the table it made.
            let token = client_token(&op.ctx);
            let out = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .create_route_table()
                    .vpc_id(vpc_id)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::RouteTable, &op.ctx, &tags))
                    .send()
            })
            .await
            .map_err(|e| sdk_error(&format!("CreateRouteTable for `{}`", op.ctx.addr), &e))?;
            let id = out.route_table().and_then(|r| r.route_table_id()).unwrap_or_default().to_string();
            let after = async {
                sync_routes(ec2, &id, None, planned.get("route")).await?;
                read_back(ec2, "route table", &id, || read_route_table(ec2, &id)).await
            };
            after.await.map(Some).map_err(|e| Failure::with(partial_state(&planned, &id), e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                if changed(&prior, &planned, "route") {
                    sync_routes(ec2, &id, prior.get("route"), planned.get("route")).await?;
                }
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read_back(ec2, "route table", &id, || read_route_table(ec2, &id)).await
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(as_it_is(read_route_table(ec2, &id), &prior).await, e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            delete_ignoring_gone(ec2, "DeleteRouteTable", &id, "InvalidRouteTableID.NotFound", || {
                ec2.client.delete_route_table().route_table_id(&id).send()
            })
            .await
            .map(|()| None)
            .map_err(|e| Failure::with(prior.clone(), e))
        }
    }
}
