//! VPC plumbing: `aws_vpc`, `aws_subnet`, `aws_internet_gateway`,
//! `aws_route_table`, `aws_route_table_association` and `aws_key_pair`.
//!
//! Refresh reads a whole batch with one Describe call per 200 IDs (EC2's
//! limit of filter values per call), by filter rather than by ID list: an ID
//! list fails the whole call when one object is gone, a filter just leaves
//! it out, which is what "deleted outside berth" must look like. Creates tag
//! objects with berth's ownership tags and the attempt's token in the create
//! call itself, so a crash between create and record leaves something
//! [`adopt`] can find.
//!
//! A create whose answer is lost must not make a second object. CreateRouteTable
//! takes a client token, so the SDK's resend is safe. CreateSubnet and
//! ImportKeyPair cannot make a second object (a CIDR, a key name is taken):
//! the resend is refused, and the object that refused it is the create's
//! when it carries the attempt's token. CreateVpc and CreateInternetGateway
//! have neither: berth resends them itself, after looking for the attempt's
//! object ([`retry::create_or_find`]). Attach, associate and route calls
//! whose resend meets their own result (`Resource.AlreadyAssociated`,
//! `RouteAlreadyExists`) succeed once a read-back shows the wanted state.
//!
//! A failed update reports the object as a fresh read shows it, so the state
//! records what really changed and the next plan proposes only the rest.

use super::common::{
    self, MAX_FILTER_VALUES, attempt_filters, client_token, code_of, filter, id_of, opt_bool, opt_str, req_str,
    sdk_error, tag_spec, tags_arg, tags_value,
};
use super::ec2::{Ec2, partial_state};
use super::retry::{self, Created, NoBlindRetry, create_or_find, poll_for, retry_codes};
use crate::providers::{
    ApplyOp, ApplyOutcome, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed,
};
use crate::value::{Map, Value, obj};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InternetGateway, KeyPairInfo, ResourceType, RouteOrigin, RouteTable,
    RouteTableAssociation, RouteTableAssociationStateCode, Subnet, Tag, Vpc, VpcAttributeName,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

/// A failed step: what exists now, and why.
pub(crate) struct Failure {
    pub state: Option<Value>,
    pub error: ProviderError,
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure { state: None, error }
    }
}

impl Failure {
    pub fn with(state: Value, error: ProviderError) -> Failure {
        Failure { state: Some(state), error }
    }
}

pub(crate) fn outcome(r: Result<Option<Value>, Failure>) -> ApplyOutcome {
    match r {
        Ok(state) => ApplyOutcome::ok(state),
        Err(f) => ApplyOutcome::failed(f.state, f.error),
    }
}

/// Refreshes a batch: looks the IDs up [`MAX_FILTER_VALUES`] at a time with `describe`,
/// then builds each found object's state from it and its prior state.
/// Objects not found are gone (`None`).
pub(crate) async fn refresh_batch<T, D, DF, B, BF>(
    items: &[(OpContext, Value)],
    describe: D,
    key: fn(&T) -> Option<String>,
    build: B,
) -> Vec<Refreshed>
where
    D: Fn(Vec<String>) -> DF,
    DF: Future<Output = ProviderResult<Vec<T>>>,
    B: Fn(T, Value) -> BF,
    BF: Future<Output = ProviderResult<Value>>,
{
    let ids: Vec<ProviderResult<String>> = items.iter().map(|(_, prior)| id_of(prior)).collect();
    let mut wanted: Vec<String> = ids.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    wanted.sort();
    wanted.dedup();
    let mut found: HashMap<String, T> = HashMap::new();
    for chunk in wanted.chunks(MAX_FILTER_VALUES) {
        match describe(chunk.to_vec()).await {
            Ok(objects) => {
                for o in objects {
                    if let Some(k) = key(&o) {
                        found.insert(k, o);
                    }
                }
            }
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        }
    }
    let futs = items.iter().zip(ids).map(|((_, prior), id)| {
        let object = id.map(|id| found.remove(&id));
        let prior = prior.clone();
        let build = &build;
        async move {
            match object {
                Err(e) => Err(e),
                Ok(None) => Ok(None),
                Ok(Some(o)) => build(o, prior).await.map(Some),
            }
        }
    });
    futures::future::join_all(futs).await
}

/// Polls `read` until the object shows up: a Describe right after a create
/// may not see it yet.
async fn read_back<F, Fut>(ec2: &Ec2, what: &str, id: &str, read: F) -> ProviderResult<Value>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ProviderResult<Option<Value>>>,
{
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(v) = read().await? {
            return Ok(v);
        }
        let delay = ec2.eventual.delay(attempt);
        if start.elapsed() + delay > ec2.eventual.deadline {
            return Err(ProviderError::new(format!("{what} `{id}` was created but never became visible")));
        }
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// The state to report for a failed update: the object as a fresh read
/// shows it, or `prior` when that read fails too.
pub(crate) async fn as_it_is<F>(read: F, prior: &Value) -> Value
where
    F: Future<Output = ProviderResult<Option<Value>>>,
{
    match read.await {
        Ok(Some(v)) => v,
        _ => prior.clone(),
    }
}

/// The one ID among `found`, `None` when empty; several is an error (two
/// objects of one create attempt cannot be told apart).
pub(crate) fn one_id<T>(what: &str, found: &[T], id: fn(&T) -> Option<&str>) -> ProviderResult<Option<String>> {
    match found {
        [] => Ok(None),
        [one] => Ok(id(one).map(str::to_string)),
        many => Err(ProviderError::new(format!(
            "several {what}s carry the same create's token ({})",
            many.iter().filter_map(id).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn bool_attr(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

/// Makes AWS's tags match `new`, given the user tags it had (`old`).
pub(crate) async fn sync_tags(
    ec2: &Ec2,
    resource: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> ProviderResult<()> {
    let old = tags_arg(old)?;
    let new = tags_arg(new)?;
    let removed: Vec<Tag> =
        old.keys().filter(|k| !new.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    let changed: Vec<Tag> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    if !removed.is_empty() {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.delete_tags().resources(resource).set_tags(Some(removed.clone())).send()
        })
        .await
        .map_err(|e| sdk_error(&format!("DeleteTags on `{resource}`"), &e))?;
    }
    if !changed.is_empty() {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.create_tags().resources(resource).set_tags(Some(changed.clone())).send()
        })
        .await
        .map_err(|e| sdk_error(&format!("CreateTags on `{resource}`"), &e))?;
    }
    Ok(())
}

fn tags_changed(prior: &Value, planned: &Value) -> bool {
    !prior.get("tags").unwrap_or(&Value::Null).same_as(planned.get("tags").unwrap_or(&Value::Null))
}

fn changed(prior: &Value, planned: &Value, attr: &str) -> bool {
    !prior.get(attr).unwrap_or(&Value::Null).same_as(planned.get(attr).unwrap_or(&Value::Null))
}

/// Checks that known `cidr_block`s parse.
pub(crate) fn validate_cidr(config: &Value) -> Vec<ProviderError> {
    match config.get("cidr_block").and_then(Value::as_str) {
        Some(s) if s.parse::<ipnet::IpNet>().is_err() => {
            vec![ProviderError::attr("cidr_block", format!("`cidr_block` is not a CIDR block: `{s}`"))]
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- aws_vpc

async fn describe_vpcs(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<Vpc>> {
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

pub(crate) async fn vpc_state(ec2: &Ec2, vpc: &Vpc) -> ProviderResult<Value> {
    let id = vpc.vpc_id().unwrap_or_default();
    let (dns_support, dns_hostnames) = vpc_dns(ec2, id).await?;
    Ok(obj([
        ("id", Value::str(id)),
        ("arn", Value::str(ec2.arn(vpc.owner_id().unwrap_or_default(), "vpc", id))),
        ("cidr_block", Value::str(vpc.cidr_block().unwrap_or_default())),
        ("enable_dns_support", Value::Bool(dns_support)),
        ("enable_dns_hostnames", Value::Bool(dns_hostnames)),
        ("tags", tags_value(vpc.tags())),
    ]))
}

pub(crate) async fn refresh_vpcs(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |ids| describe_vpcs(ec2, vec![filter("vpc-id", ids)]),
        |v: &Vpc| v.vpc_id().map(str::to_string),
        |v, _prior| async move { vpc_state(ec2, &v).await },
    )
    .await
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

async fn apply_vpc(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
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

/// Runs a delete, retrying while dependents are still going away; an object
/// already gone counts as deleted.
async fn delete_ignoring_gone<T, E, F, Fut>(ec2: &Ec2, action: &str, id: &str, gone: &str, op: F) -> ProviderResult<()>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    >,
{
    match retry_codes(retry::STILL_IN_USE, ec2.dependents, op).await {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == Some(gone) => Ok(()),
        Err(e) => Err(sdk_error(&format!("{action} `{id}`"), &e)),
    }
}

// ------------------------------------------------------------- aws_subnet

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
    let arn =
        s.subnet_arn().map(str::to_string).unwrap_or_else(|| ec2.arn(s.owner_id().unwrap_or_default(), "subnet", id));
    obj([
        ("id", Value::str(id)),
        ("arn", Value::str(arn)),
        ("vpc_id", Value::str(s.vpc_id().unwrap_or_default())),
        ("cidr_block", Value::str(s.cidr_block().unwrap_or_default())),
        ("availability_zone", Value::str(s.availability_zone().unwrap_or_default())),
        ("map_public_ip_on_launch", Value::Bool(s.map_public_ip_on_launch().unwrap_or(false))),
        ("tags", tags_value(s.tags())),
    ])
}

pub(crate) async fn refresh_subnets(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |ids| describe_subnets(ec2, vec![filter("subnet-id", ids)]),
        |s: &Subnet| s.subnet_id().map(str::to_string),
        |s, _prior| async move { Ok(subnet_state(ec2, &s)) },
    )
    .await
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

async fn apply_subnet(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
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
                            tracing::debug!(id, "CreateSubnet: the CIDR is taken by this create's own subnet; using it");
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

// --------------------------------------------------- aws_internet_gateway

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

pub(crate) async fn refresh_igws(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |ids| describe_igws(ec2, vec![filter("internet-gateway-id", ids)]),
        |g: &InternetGateway| g.internet_gateway_id().map(str::to_string),
        |g, _prior| async move { Ok(igw_state(ec2, &g)) },
    )
    .await
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

async fn apply_igw(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
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

// -------------------------------------------------------- aws_route_table

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
    Ok(Value::List(common::sorted_unique(out)))
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
    Value::List(common::sorted_unique(out))
}

async fn describe_route_tables(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<RouteTable>> {
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

pub(crate) async fn refresh_route_tables(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |ids| describe_route_tables(ec2, vec![filter("route-table-id", ids)]),
        |rt: &RouteTable| rt.route_table_id().map(str::to_string),
        |rt, _prior| async move { Ok(route_table_state(ec2, &rt)) },
    )
    .await
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

async fn apply_route_table(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
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

// -------------------------------------------- aws_route_table_association

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

pub(crate) async fn refresh_associations(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |ids| describe_associations(ec2, vec![filter("association.route-table-association-id", ids)]),
        |a: &RouteTableAssociation| a.route_table_association_id().map(str::to_string),
        |a, _prior| async move { Ok(association_state(&a)) },
    )
    .await
}

async fn apply_association(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
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

// ----------------------------------------------------------- aws_key_pair

async fn describe_key_pairs(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<KeyPairInfo>> {
    // DescribeKeyPairs does not paginate.
    let out = ec2
        .client
        .describe_key_pairs()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeKeyPairs", &e))?;
    Ok(out.key_pairs().to_vec())
}

fn key_pair_state(k: &KeyPairInfo, prior: &Value) -> Value {
    // AWS keeps the fingerprint, not the key as given: carry it over.
    let public_key = prior.get("public_key").cloned().unwrap_or(Value::Null);
    let name = k.key_name().unwrap_or_default();
    obj([
        ("id", Value::str(name)),
        ("key_name", Value::str(name)),
        ("public_key", public_key),
        ("fingerprint", Value::str(k.key_fingerprint().unwrap_or_default())),
        ("key_pair_id", Value::str(k.key_pair_id().unwrap_or_default())),
        ("tags", tags_value(k.tags())),
    ])
}

pub(crate) async fn refresh_key_pairs(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    refresh_batch(
        items,
        |names| describe_key_pairs(ec2, vec![filter("key-name", names)]),
        |k: &KeyPairInfo| k.key_name().map(str::to_string),
        |k, prior| async move { Ok(key_pair_state(&k, &prior)) },
    )
    .await
}

async fn apply_key_pair(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let name = req_str(&planned, "key_name")?;
            let key = req_str(&planned, "public_key")?;
            let tags = tags_arg(planned.get("tags"))?;
            let imported = ec2
                .client
                .import_key_pair()
                .key_name(name)
                .public_key_material(aws_smithy_types::Blob::new(key.as_bytes()))
                .tag_specifications(tag_spec(ResourceType::KeyPair, &op.ctx, &tags))
                .send()
                .await;
            let action = || format!("ImportKeyPair `{name}` for `{}`", op.ctx.addr);
            let (fingerprint, key_pair_id) = match imported {
                Ok(out) => (
                    out.key_fingerprint().unwrap_or_default().to_string(),
                    out.key_pair_id().unwrap_or_default().to_string(),
                ),
                // A key name is unique: when an import landed and its answer
                // was lost, the SDK's resend is refused by that very key. It
                // is this create's when it carries the attempt's token.
                Err(e) if code_of(&e) == Some("InvalidKeyPair.Duplicate") => {
                    let mine = || async {
                        let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                        Ok(found.into_iter().find(|k| common::owned_by_attempt(k.tags(), &op.ctx)).map(|k| {
                            format!(
                                "{}\n{}",
                                k.key_fingerprint().unwrap_or_default(),
                                k.key_pair_id().unwrap_or_default()
                            )
                        }))
                    };
                    match poll_for(ec2.eventual.lost_answer(), &mine).await? {
                        Some(found) => {
                            tracing::debug!(name, "ImportKeyPair: the name is taken by this create's own key; using it");
                            let (f, id) = found.split_once('\n').unwrap_or_default();
                            (f.to_string(), id.to_string())
                        }
                        None => return Err(common::about("key_name", sdk_error(&action(), &e)).into()),
                    }
                }
                Err(e) => return Err(common::about("public_key", sdk_error(&action(), &e)).into()),
            };
            // Read back until the key is visible, as for every other type: a
            // refresh that does not see it yet would plan it again.
            let read = || async {
                let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                Ok(found.first().map(|k| key_pair_state(k, &planned)))
            };
            match read_back(ec2, "key pair", name, read).await {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    let mut m = planned.as_map().cloned().unwrap_or_default();
                    m.insert("id".into(), Value::str(name));
                    m.insert("fingerprint".into(), Value::str(fingerprint));
                    m.insert("key_pair_id".into(), Value::str(key_pair_id));
                    Err(Failure::with(Value::Map(m), e))
                }
            }
        }
        ChangeKind::Update { prior, planned } => {
            let steps = async {
                let target = prior.get_str("key_pair_id").filter(|s| !s.is_empty()).map(str::to_string);
                let target = match target {
                    Some(t) => t,
                    None => return Err(ProviderError::attr("key_pair_id", "the state has no `key_pair_id`")),
                };
                sync_tags(ec2, &target, prior.get("tags"), planned.get("tags")).await?;
                let mut m = prior.as_map().cloned().unwrap_or_default();
                m.insert("tags".into(), planned.get("tags").cloned().unwrap_or(Value::Null));
                Ok(Some(Value::Map(m)))
            };
            match steps.await {
                Ok(v) => Ok(v),
                Err(e) => {
                    let read = async {
                        let name = req_str(&prior, "key_name")?;
                        let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                        Ok(found.first().map(|k| key_pair_state(k, &prior)))
                    };
                    Err(Failure::with(as_it_is(read, &prior).await, e))
                }
            }
        }
        ChangeKind::Delete { prior } => {
            let name = req_str(&prior, "key_name").map_err(|e| Failure::with(prior.clone(), e))?;
            // DeleteKeyPair succeeds for a name that does not exist.
            ec2.client
                .delete_key_pair()
                .key_name(name)
                .send()
                .await
                .map(|_| None)
                .map_err(|e| Failure::with(prior.clone(), sdk_error(&format!("DeleteKeyPair `{name}`"), &e)))
        }
    }
}

// ---------------------------------------------------------------- common

pub(crate) async fn apply_one(ec2: &Ec2, type_: &str, op: ApplyOp) -> ApplyOutcome {
    let r = match type_ {
        "aws_vpc" => apply_vpc(ec2, op).await,
        "aws_subnet" => apply_subnet(ec2, op).await,
        "aws_internet_gateway" => apply_igw(ec2, op).await,
        "aws_route_table" => apply_route_table(ec2, op).await,
        "aws_route_table_association" => apply_association(ec2, op).await,
        "aws_key_pair" => apply_key_pair(ec2, op).await,
        other => Err(ProviderError::new(format!("the `aws` provider has no type `{other}`")).into()),
    };
    outcome(r)
}

/// Exactly one object, or none; several is an error naming them.
pub(crate) fn at_most_one<T>(
    what: &str,
    ctx: &OpContext,
    mut found: Vec<T>,
    id: fn(&T) -> String,
) -> ProviderResult<Option<T>> {
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(ProviderError::new(format!(
            "several {what}s are tagged as `{}` of this state ({}); delete the extra ones",
            ctx.addr,
            found.iter().map(id).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The object of one create attempt, after a crash: by its token tag (or,
/// for attempts journaled before tokens, its generation). Deleted objects
/// are gone from these listings; an older object of the address carries
/// another token and is never taken.
pub(crate) async fn adopt(ec2: &Ec2, ctx: &OpContext, type_: &str, template: &Value) -> ProviderResult<Option<Value>> {
    let mine = attempt_filters(ctx);
    match type_ {
        "aws_vpc" => match at_most_one("VPC", ctx, describe_vpcs(ec2, mine).await?, |v| {
            v.vpc_id().unwrap_or_default().to_string()
        })? {
            Some(v) => vpc_state(ec2, &v).await.map(Some),
            None => Ok(None),
        },
        "aws_subnet" => Ok(at_most_one("subnet", ctx, describe_subnets(ec2, mine).await?, |s| {
            s.subnet_id().unwrap_or_default().to_string()
        })?
        .map(|s| subnet_state(ec2, &s))),
        "aws_internet_gateway" => Ok(at_most_one("internet gateway", ctx, describe_igws(ec2, mine).await?, |g| {
            g.internet_gateway_id().unwrap_or_default().to_string()
        })?
        .map(|g| igw_state(ec2, &g))),
        "aws_route_table" => Ok(at_most_one("route table", ctx, describe_route_tables(ec2, mine).await?, |r| {
            r.route_table_id().unwrap_or_default().to_string()
        })?
        .map(|r| route_table_state(ec2, &r))),
        "aws_key_pair" => Ok(at_most_one("key pair", ctx, describe_key_pairs(ec2, mine).await?, |k| {
            k.key_name().unwrap_or_default().to_string()
        })?
        .map(|k| key_pair_state(&k, template))),
        "aws_route_table_association" => {
            // Associations carry no tags: the subnet and table identify one.
            let (Some(subnet), Some(table)) = (template.get_str("subnet_id"), template.get_str("route_table_id"))
            else {
                return Ok(None);
            };
            let found = describe_associations(ec2, vec![filter("association.subnet-id", [subnet])]).await?;
            Ok(found
                .iter()
                .find(|a| a.subnet_id() == Some(subnet) && a.route_table_id() == Some(table))
                .map(association_state))
        }
        other => Err(ProviderError::new(format!("the `aws` provider has no type `{other}`"))),
    }
}
