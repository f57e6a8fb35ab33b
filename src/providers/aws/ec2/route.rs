//! `aws_route`: one route of a route table, managed on its own (a route in
//! the VPC's main table, a NAT gateway route per private table), next to
//! tables whose `route` blocks are left unset.
//!
//! A route has no id and no tags in AWS: its table and destination name it,
//! and berth's id is `TABLE_DESTINATION`, as Terraform spells an import.
//! Refresh reads every table of a batch with one DescribeRouteTables per
//! 200 tables. A create whose answer was lost (or a crash between the create
//! and its record) meets its own route on the next CreateRoute
//! (`RouteAlreadyExists`): it is taken when it goes where the configuration
//! says, refused when it goes elsewhere (someone else's route). A new target
//! is set in place with ReplaceRoute; a new destination or table replaces
//! the route.

use super::client::{Ec2, Failure, Kind, Resource, apply_one_by_one, filter, id_of, read_back, req_str};
use super::error::{code_of, sdk_error};
use super::retry::{self, retry_codes};
use super::route_table::describe_route_tables;
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
#[cfg(test)]
use crate::value::obj;
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Route, RouteTable};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Where a route goes: exactly one is set.
const TARGETS: &[&str] = &[
    "gateway_id",
    "nat_gateway_id",
    "network_interface_id",
    "vpc_peering_connection_id",
    "transit_gateway_id",
    "egress_only_gateway_id",
];
const DESTINATIONS: &[&str] = &["destination_cidr_block", "destination_ipv6_cidr_block"];

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let mut attrs = vec![
        Attribute::arg("route_table_id").required().force_new(),
        Attribute::arg("destination_cidr_block").force_new(),
        Attribute::arg("destination_ipv6_cidr_block").force_new(),
    ];
    attrs.extend(TARGETS.iter().map(|t| Attribute::arg(t)));
    Schema::new(attrs).with_exported(&["id", "origin", "state"])
});

pub(crate) struct AwsRoute;

#[async_trait]
impl Resource for AwsRoute {
    fn name(&self) -> &'static str {
        "aws_route"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("route_table_id", Str),
            ("destination_cidr_block", Str),
            ("destination_ipv6_cidr_block", Str),
            ("gateway_id", Str),
            ("nat_gateway_id", Str),
            ("network_interface_id", Str),
            ("vpc_peering_connection_id", Str),
            ("transit_gateway_id", Str),
            ("egress_only_gateway_id", Str),
        ]
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
        let destinations = DESTINATIONS.iter().filter(|k| set(k)).count();
        if destinations != 1 {
            errs.push(ProviderError::new(format!(
                "`aws_route` needs exactly one destination ({}), it has {destinations}",
                DESTINATIONS.join(", ")
            )));
        }
        for (k, v6) in [("destination_cidr_block", false), ("destination_ipv6_cidr_block", true)] {
            if let Some(c) = config.get_str(k) {
                let ok = match c.parse::<ipnet::IpNet>() {
                    Ok(ipnet::IpNet::V4(_)) => !v6,
                    Ok(ipnet::IpNet::V6(_)) => v6,
                    Err(_) => false,
                };
                if !ok {
                    let kind = if v6 { "IPv6" } else { "IPv4" };
                    errs.push(ProviderError::attr(k, format!("`{k}` is not an {kind} CIDR block: `{c}`")));
                }
            }
        }
        let targets = TARGETS.iter().filter(|k| set(k)).count();
        if targets != 1 {
            errs.push(ProviderError::new(format!(
                "`aws_route` needs exactly one target ({}), it has {targets}",
                TARGETS.join(", ")
            )));
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let mut tables: Vec<String> =
            items.iter().filter_map(|(_, p)| p.get_str("route_table_id").map(str::to_string)).collect();
        tables.sort();
        tables.dedup();
        let mut found: HashMap<String, RouteTable> = HashMap::new();
        for chunk in tables.chunks(super::client::MAX_FILTER_VALUES) {
            match describe_route_tables(ec2, vec![filter("route-table-id", chunk.iter().cloned())]).await {
                Ok(ts) => found.extend(ts.into_iter().filter_map(|t| Some((t.route_table_id()?.to_string(), t)))),
                Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        items
            .iter()
            .map(|(_, prior)| {
                id_of(prior)?;
                let table = prior.get_str("route_table_id").and_then(|t| found.get(t));
                Ok(table.and_then(|t| route_in(t, prior)).map(|r| route_state(req_table(prior), &r)))
            })
            .collect()
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    /// A route carries no tags: its table and destination find it, when the
    /// configuration is at hand.
    async fn adopt(&self, ec2: &Ec2, _ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let Some(table) = template.get_str("route_table_id") else { return Ok(None) };
        let found = describe_route_tables(ec2, vec![filter("route-table-id", [table])]).await?;
        Ok(found
            .first()
            .and_then(|t| route_in(t, template))
            .filter(|r| same_target(r, template))
            .map(|r| route_state(table, &r)))
    }

    fn adopt_looks_again(&self) -> bool {
        false
    }
}

fn req_table(v: &Value) -> &str {
    v.get_str("route_table_id").unwrap_or_default()
}

/// The destination a planned or prior route names.
fn destination(v: &Value) -> Option<(&'static str, &str)> {
    DESTINATIONS.iter().find_map(|k| v.get_str(k).filter(|s| !s.is_empty()).map(|s| (*k, s)))
}

/// The route of `table` to the destination `v` names.
fn route_in(table: &RouteTable, v: &Value) -> Option<Route> {
    let (k, dest) = destination(v)?;
    table
        .routes()
        .iter()
        .find(|r| match k {
            "destination_cidr_block" => r.destination_cidr_block() == Some(dest),
            _ => r.destination_ipv6_cidr_block() == Some(dest),
        })
        .cloned()
}

fn target_of<'a>(r: &'a Route, k: &str) -> Option<&'a str> {
    match k {
        "gateway_id" => r.gateway_id(),
        "nat_gateway_id" => r.nat_gateway_id(),
        // An instance route reports the instance's interface: the interface
        // is the target.
        "network_interface_id" => r.network_interface_id(),
        "vpc_peering_connection_id" => r.vpc_peering_connection_id(),
        "transit_gateway_id" => r.transit_gateway_id(),
        "egress_only_gateway_id" => r.egress_only_internet_gateway_id(),
        _ => None,
    }
}

/// Whether a route goes where `v` says.
fn same_target(r: &Route, v: &Value) -> bool {
    TARGETS.iter().all(|k| target_of(r, k).filter(|s| !s.is_empty()) == v.get_str(k).filter(|s| !s.is_empty()))
}

fn route_state(table: &str, r: &Route) -> Value {
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let dest = r.destination_cidr_block().or(r.destination_ipv6_cidr_block()).unwrap_or_default();
    let mut m = Map::new();
    m.insert("id".into(), Value::str(format!("{table}_{dest}")));
    m.insert("route_table_id".into(), Value::str(table));
    m.insert("destination_cidr_block".into(), s(r.destination_cidr_block()));
    m.insert("destination_ipv6_cidr_block".into(), s(r.destination_ipv6_cidr_block()));
    for k in TARGETS {
        m.insert(k.to_string(), s(target_of(r, k)));
    }
    m.insert("origin".into(), s(r.origin().map(|o| o.as_str())));
    m.insert("state".into(), s(r.state().map(|o| o.as_str())));
    Value::Map(m)
}

async fn read_route(ec2: &Ec2, v: &Value) -> ProviderResult<Option<Value>> {
    let table = req_str(v, "route_table_id")?;
    let found = describe_route_tables(ec2, vec![filter("route-table-id", [table])]).await?;
    Ok(found.first().and_then(|t| route_in(t, v)).map(|r| route_state(table, &r)))
}

fn target(v: &Value, k: &str) -> Option<String> {
    v.get_str(k).filter(|s| !s.is_empty()).map(str::to_string)
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let table = req_str(&planned, "route_table_id")?;
            let (_, dest) = destination(&planned)
                .ok_or_else(|| ProviderError::new("`aws_route` needs a destination that is known at apply"))?;
            let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .create_route()
                    .route_table_id(table)
                    .set_destination_cidr_block(target(&planned, "destination_cidr_block"))
                    .set_destination_ipv6_cidr_block(target(&planned, "destination_ipv6_cidr_block"))
                    .set_gateway_id(target(&planned, "gateway_id"))
                    .set_nat_gateway_id(target(&planned, "nat_gateway_id"))
                    .set_network_interface_id(target(&planned, "network_interface_id"))
                    .set_vpc_peering_connection_id(target(&planned, "vpc_peering_connection_id"))
                    .set_transit_gateway_id(target(&planned, "transit_gateway_id"))
                    .set_egress_only_internet_gateway_id(target(&planned, "egress_only_gateway_id"))
                    .send()
            })
            .await;
            let action = || format!("CreateRoute `{dest}` in `{table}` for `{}`", op.ctx.addr);
            match r {
                Ok(_) => {}
                // The resend of a create whose answer was lost, or the next
                // run after a crash, meets the route it made.
                Err(e) if code_of(&e) == Some("RouteAlreadyExists") => {
                    let now = describe_route_tables(ec2, vec![filter("route-table-id", [table])]).await?;
                    match now.first().and_then(|t| route_in(t, &planned)) {
                        Some(r) if same_target(&r, &planned) => {
                            tracing::debug!(table, dest, "CreateRoute: the route is already there, as wanted");
                        }
                        _ => return Err(sdk_error(&action(), &e).into()),
                    }
                }
                Err(e) => return Err(sdk_error(&action(), &e).into()),
            }
            let id = format!("{table}_{dest}");
            match read_back(ec2, "route", &id, || read_route(ec2, &planned)).await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(super::client::partial_state(&planned, &id), e)),
            }
        }
        ChangeKind::Update { prior, planned } => {
            let table = req_str(&prior, "route_table_id")?;
            let (_, dest) = destination(&prior).ok_or_else(|| ProviderError::new("the state has no destination"))?;
            let r = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .replace_route()
                    .route_table_id(table)
                    .set_destination_cidr_block(target(&prior, "destination_cidr_block"))
                    .set_destination_ipv6_cidr_block(target(&prior, "destination_ipv6_cidr_block"))
                    .set_gateway_id(target(&planned, "gateway_id"))
                    .set_nat_gateway_id(target(&planned, "nat_gateway_id"))
                    .set_network_interface_id(target(&planned, "network_interface_id"))
                    .set_vpc_peering_connection_id(target(&planned, "vpc_peering_connection_id"))
                    .set_transit_gateway_id(target(&planned, "transit_gateway_id"))
                    .set_egress_only_internet_gateway_id(target(&planned, "egress_only_gateway_id"))
                    .send()
            })
            .await;
            if let Err(e) = r {
                let now = read_route(ec2, &prior).await.ok().flatten().unwrap_or_else(|| prior.clone());
                return Err(Failure::with(now, sdk_error(&format!("ReplaceRoute `{dest}` in `{table}`"), &e)));
            }
            read_route(ec2, &planned).await.map_err(|e| Failure::with(prior.clone(), e))?.map(Some).ok_or_else(|| {
                Failure::with(prior.clone(), ProviderError::new(format!("route `{dest}` in `{table}` disappeared")))
            })
        }
        ChangeKind::Delete { prior } => {
            let table = req_str(&prior, "route_table_id").map_err(|e| Failure::with(prior.clone(), e))?;
            let r = ec2
                .client
                .delete_route()
                .route_table_id(table)
                .set_destination_cidr_block(target(&prior, "destination_cidr_block"))
                .set_destination_ipv6_cidr_block(target(&prior, "destination_ipv6_cidr_block"))
                .send()
                .await;
            match r {
                Ok(_) => Ok(None),
                Err(e) if matches!(code_of(&e), Some("InvalidRoute.NotFound" | "InvalidRouteTableID.NotFound")) => {
                    Ok(None)
                }
                Err(e) => Err(Failure::with(prior.clone(), sdk_error(&format!("DeleteRoute in `{table}`"), &e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_destination_and_one_target() {
        let ok = obj([
            ("route_table_id", Value::str("rtb-1")),
            ("destination_cidr_block", Value::str("0.0.0.0/0")),
            ("nat_gateway_id", Value::str("nat-1")),
        ]);
        assert!(AwsRoute.validate(&ok).is_empty());
        let two = obj([
            ("route_table_id", Value::str("rtb-1")),
            ("destination_cidr_block", Value::str("0.0.0.0/0")),
            ("gateway_id", Value::str("igw-1")),
            ("nat_gateway_id", Value::str("nat-1")),
        ]);
        let errs = AwsRoute.validate(&two);
        assert!(errs.iter().any(|e| e.message.contains("exactly one target")), "{errs:?}");
        let v6 = obj([
            ("route_table_id", Value::str("rtb-1")),
            ("destination_ipv6_cidr_block", Value::str("10.0.0.0/8")),
            ("gateway_id", Value::str("igw-1")),
        ]);
        assert_eq!(AwsRoute.validate(&v6)[0].attribute.as_deref(), Some("destination_ipv6_cidr_block"));
    }
}
