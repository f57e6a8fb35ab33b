//! `aws_lb_listener`: a port of a load balancer and where its connections
//! go (`default_action { type = "forward", target_group_arn = ... }`).
//!
//! A listener has no name: a port of a load balancer holds one listener,
//! and CreateListener is not idempotent. The SDK's resend of a create whose
//! answer was lost is refused with `DuplicateListener` by the first
//! request's listener, which is then found on its port and used if it
//! carries this address's ownership tags (anybody else's is a conflict).
//! Port, protocol and the default action change in place (ModifyListener).
//!
//! A refresh reads the listeners of each load balancer the batch names,
//! by the page; a load balancer gone takes its listeners with it.

use super::client::{
    Elb, Kind, Resource, all_load_balancers, create_tags, describe_tags, find_attempt, int_in, owned_by_address,
    sync_tags, tags_value,
};
use crate::providers::aws::ec2::client::{changed, id_of, tags_arg, tags_changed};
use crate::providers::aws::ec2::error::{about, code_of, sdk_error};
use crate::providers::{
    ApplyOp, ApplyOutcome, Attribute, ChangeKind, OpContext, ProviderError, ProviderErrorKind, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Listener, ProtocolEnum, Tag};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("load_balancer_arn").required().force_new(),
        Attribute::arg("port").required().number(),
        Attribute::arg("protocol").required(),
        Attribute::arg("default_action").required().block(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn"])
});

const PROTOCOLS: &[&str] = &["HTTP", "TCP", "UDP", "TCP_UDP"];

pub(crate) struct AwsLbListener;

#[async_trait]
impl Resource for AwsLbListener {
    fn name(&self) -> &'static str {
        "aws_lb_listener"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("load_balancer_arn", Str), ("protocol", Str), ("default_action", Blocks), ("tags", StrMap)]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        if let Some(p) = int_in(m.get("port"), "port", 1..=65535)? {
            m.insert("port".into(), Value::from(p));
        }
        if let Some(p) = m.get("protocol").and_then(Value::as_str).map(str::to_ascii_uppercase) {
            m.insert("protocol".into(), Value::str(p));
        }
        if let Some(l) = m.get("default_action").and_then(Value::as_list).filter(|l| l.iter().all(Value::is_known)) {
            let actions = l
                .iter()
                .map(|a| {
                    obj([
                        ("type", Value::str(a.get_str("type").unwrap_or("forward"))),
                        ("target_group_arn", a.get("target_group_arn").cloned().unwrap_or(Value::Null)),
                    ])
                })
                .collect();
            m.insert("default_action".into(), Value::List(actions));
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if let Err(e) = int_in(config.get("port"), "port", 1..=65535) {
            errs.push(e);
        }
        if let Some(p) = config.get_str("protocol")
            && !PROTOCOLS.contains(&p.to_ascii_uppercase().as_str())
        {
            errs.push(ProviderError::attr(
                "protocol",
                format!(
                    "`protocol` is one of {} (berth manages no certificates, so no `HTTPS` or `TLS`), not `{p}`",
                    PROTOCOLS.join(", ")
                ),
            ));
        }
        if let Some(l) = config.get("default_action").and_then(Value::as_list) {
            if l.len() != 1 {
                errs.push(ProviderError::attr(
                    "default_action",
                    format!("berth's listeners take exactly one `default_action` block; there are {}", l.len()),
                ));
            }
            for a in l.iter().filter_map(Value::as_map) {
                for k in a.keys() {
                    if k != "type" && k != "target_group_arn" {
                        errs.push(ProviderError::attr(
                            "default_action",
                            format!("`default_action` has no argument `{k}`; it takes `type` and `target_group_arn`"),
                        ));
                    }
                }
                match a.get("type").map(Value::unmarked) {
                    Some(Value::String(t)) if t != "forward" => errs.push(ProviderError::attr(
                        "default_action",
                        format!("`default_action.type` `{t}` is not supported; berth's listeners `forward`"),
                    )),
                    None | Some(Value::Null) => {
                        errs.push(ProviderError::attr("default_action", "`default_action` requires `type`"))
                    }
                    _ => {}
                }
                if a.get("target_group_arn").is_none_or(Value::is_null) {
                    errs.push(ProviderError::attr(
                        "default_action",
                        "a `forward` `default_action` requires `target_group_arn`",
                    ));
                }
            }
        }
        errs
    }

    async fn refresh(&self, elb: &Elb, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let mut by_lb: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut out: Vec<Option<Refreshed>> = vec![None; items.len()];
        for (i, (_, prior)) in items.iter().enumerate() {
            match (prior.get_str("load_balancer_arn"), prior.get_str("id")) {
                (Some(lb), _) => by_lb.entry(lb.to_string()).or_default().push(i),
                // An import knows the listener's ARN only: read it alone.
                (None, Some(id)) => out[i] = Some(read(elb, id).await),
                (None, None) => out[i] = Some(Err(ProviderError::attr("id", "the state has no `id`"))),
            }
        }
        let mut found: HashMap<String, Listener> = HashMap::new();
        for lb in by_lb.keys() {
            match listeners_of(elb, lb).await {
                Ok(Some(ls)) => found.extend(ls.into_iter().filter_map(|l| Some((l.listener_arn()?.to_string(), l)))),
                Ok(None) => {}
                Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        let wanted: Vec<String> = items
            .iter()
            .filter_map(|(_, p)| p.get_str("id"))
            .filter(|id| found.contains_key(*id))
            .map(str::to_string)
            .collect();
        let tags = match describe_tags(elb, &wanted).await {
            Ok(t) => t,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        out.into_iter()
            .zip(items)
            .map(|(done, (_, prior))| {
                done.unwrap_or_else(|| {
                    let id = id_of(prior)?;
                    Ok(found.get(&id).map(|l| state(l, tags.get(&id).map(Vec::as_slice).unwrap_or_default())))
                })
            })
            .collect()
    }

    async fn apply(&self, elb: &Elb, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => create(elb, &op.ctx, &planned).await,
            ChangeKind::Update { prior, planned } => update(elb, &prior, &planned).await,
            ChangeKind::Delete { prior } => delete(elb, &prior).await,
        }
    }

    /// Listeners are listed per load balancer: every load balancer's
    /// listeners, then their tags by twenties.
    async fn adopt(&self, elb: &Elb, ctx: &OpContext) -> ProviderResult<Option<Value>> {
        let mut arns = Vec::new();
        let mut all = HashMap::new();
        for lb in all_load_balancers(elb).await? {
            let Some(lb_arn) = lb.load_balancer_arn() else { continue };
            for l in listeners_of(elb, lb_arn).await?.unwrap_or_default() {
                if let Some(a) = l.listener_arn() {
                    arns.push(a.to_string());
                    all.insert(a.to_string(), l);
                }
            }
        }
        let Some(arn) = find_attempt(elb, "listener", ctx, arns).await? else { return Ok(None) };
        let tags = describe_tags(elb, std::slice::from_ref(&arn)).await?.remove(&arn).unwrap_or_default();
        Ok(all.get(&arn).map(|l| state(l, &tags)))
    }
}

/// The listeners of a load balancer, by the page; `None` when the load
/// balancer is gone.
async fn listeners_of(elb: &Elb, lb: &str) -> ProviderResult<Option<Vec<Listener>>> {
    let mut out = Vec::new();
    let mut pages = elb
        .client
        .describe_listeners()
        .load_balancer_arn(lb)
        .page_size(super::client::PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => out.extend(p.listeners().iter().cloned()),
            Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => return Ok(None),
            Err(e) => return Err(sdk_error(&format!("DescribeListeners of `{lb}`"), &e)),
        }
    }
    Ok(Some(out))
}

fn state(l: &Listener, tags: &[Tag]) -> Value {
    let arn = l.listener_arn().unwrap_or_default();
    let actions = l
        .default_actions()
        .iter()
        .map(|a| {
            obj([
                ("type", Value::str(a.r#type().map(|t| t.as_str()).unwrap_or("forward"))),
                ("target_group_arn", a.target_group_arn().map(Value::str).unwrap_or(Value::Null)),
            ])
        })
        .collect();
    obj([
        ("id", Value::str(arn)),
        ("arn", Value::str(arn)),
        ("load_balancer_arn", Value::str(l.load_balancer_arn().unwrap_or_default())),
        ("port", l.port().map(|p| Value::from(p as i64)).unwrap_or(Value::Null)),
        ("protocol", l.protocol().map(|p| Value::str(p.as_str())).unwrap_or(Value::Null)),
        ("default_action", Value::List(actions)),
        ("tags", tags_value(tags)),
    ])
}

fn actions(planned: &Value) -> Vec<Action> {
    planned
        .get("default_action")
        .and_then(Value::as_list)
        .into_iter()
        .flatten()
        .map(|a| {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .set_target_group_arn(a.get_str("target_group_arn").map(str::to_string))
                .build()
        })
        .collect()
}

fn port(planned: &Value) -> Option<i32> {
    planned.get("port").and_then(Value::as_f64).map(|p| p as i32)
}

async fn read(elb: &Elb, arn: &str) -> ProviderResult<Option<Value>> {
    let out = match elb.client.describe_listeners().listener_arns(arn).send().await {
        Ok(out) => out,
        Err(e) if code_of(&e) == Some("ListenerNotFound") => return Ok(None),
        Err(e) => return Err(sdk_error(&format!("DescribeListeners `{arn}`"), &e)),
    };
    let Some(l) = out.listeners().first() else { return Ok(None) };
    let tags = describe_tags(elb, &[arn.to_string()]).await?.remove(arn).unwrap_or_default();
    Ok(Some(state(l, &tags)))
}

async fn create(elb: &Elb, ctx: &OpContext, planned: &Value) -> ApplyOutcome {
    let lb = planned.get_str("load_balancer_arn").unwrap_or_default().to_string();
    let user = match tags_arg(planned.get("tags")) {
        Ok(t) => t,
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    let sent = elb
        .client
        .create_listener()
        .load_balancer_arn(&lb)
        .set_port(port(planned))
        .protocol(ProtocolEnum::from(planned.get_str("protocol").unwrap_or("HTTP")))
        .set_default_actions(Some(actions(planned)))
        .set_tags(Some(create_tags(ctx, &user)))
        .send()
        .await;
    let arn = match sent {
        Ok(out) => out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string(),
        // A port holds one listener: the first request of this create may
        // have made it, its answer lost.
        Err(e) if code_of(&e) == Some("DuplicateListener") => {
            let on_port = match listeners_of(elb, &lb).await {
                Ok(ls) => ls.unwrap_or_default().into_iter().find(|l| l.port() == port(planned)),
                Err(e) => return ApplyOutcome::failed(None, e),
            };
            let Some(arn) = on_port.and_then(|l| l.listener_arn().map(str::to_string)) else {
                return ApplyOutcome::failed(None, sdk_error(&format!("CreateListener for `{}`", ctx.addr), &e));
            };
            let tags = match describe_tags(elb, std::slice::from_ref(&arn)).await {
                Ok(mut t) => t.remove(&arn).unwrap_or_default(),
                Err(e) => return ApplyOutcome::failed(None, e),
            };
            if !owned_by_address(&tags, ctx) {
                let e = ProviderError::attr(
                    "port",
                    format!(
                        "port {} of `{lb}` already has a listener that does not belong to `{}` of this state (`{arn}`)",
                        port(planned).unwrap_or(0),
                        ctx.addr
                    ),
                )
                .with_kind(ProviderErrorKind::Conflict);
                return ApplyOutcome::failed(None, e);
            }
            tracing::debug!(arn, "CreateListener: the port holds this create's own listener; using it");
            arn
        }
        Err(e) => return ApplyOutcome::failed(None, sdk_error(&format!("CreateListener for `{}`", ctx.addr), &e)),
    };
    match read(elb, &arn).await {
        Ok(Some(v)) => ApplyOutcome::ok(Some(v)),
        Ok(None) => {
            ApplyOutcome::failed(None, ProviderError::new(format!("listener `{arn}` disappeared after its create")))
        }
        Err(e) => {
            let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
            m.insert("id".into(), Value::str(&arn));
            m.insert("arn".into(), Value::str(&arn));
            ApplyOutcome::failed(Some(Value::Map(m)), e)
        }
    }
}

async fn update(elb: &Elb, prior: &Value, planned: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    let steps = async {
        if ["port", "protocol", "default_action"].iter().any(|a| changed(prior, planned, a)) {
            elb.client
                .modify_listener()
                .listener_arn(&arn)
                .set_port(port(planned))
                .protocol(ProtocolEnum::from(planned.get_str("protocol").unwrap_or("HTTP")))
                .set_default_actions(Some(actions(planned)))
                .send()
                .await
                .map_err(|e| about("default_action", sdk_error(&format!("ModifyListener on `{arn}`"), &e)))?;
        }
        if tags_changed(prior, planned) {
            sync_tags(elb, &arn, prior.get("tags"), planned.get("tags")).await?;
        }
        read(elb, &arn).await
    };
    match steps.await {
        Ok(v) => ApplyOutcome::ok(v),
        Err(e) => {
            let now = read(elb, &arn).await.ok().flatten().unwrap_or_else(|| prior.clone());
            ApplyOutcome::failed(Some(now), e)
        }
    }
}

async fn delete(elb: &Elb, prior: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    match elb.client.delete_listener().listener_arn(&arn).send().await {
        Ok(_) => ApplyOutcome::ok(None),
        Err(e) if code_of(&e) == Some("ListenerNotFound") => ApplyOutcome::ok(None),
        Err(e) => ApplyOutcome::failed(Some(prior.clone()), sdk_error(&format!("DeleteListener `{arn}`"), &e)),
    }
}
