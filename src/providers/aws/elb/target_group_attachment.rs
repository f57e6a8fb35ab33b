//! `aws_lb_target_group_attachment`: one host registered in one target
//! group, and the order a replaced host needs.
//!
//! The create registers the target and then **waits until the target group
//! finds it `healthy`** (DescribeTargetHealth), bounded by what the group's
//! health check needs to get there (`healthy_threshold` checks, each up to
//! `interval` + `timeout` apart) twice over plus half a minute. Only then
//! is the attachment done, and the step graph orders the records and the
//! destroy of the replaced host after it (`engine::order`), so a name is
//! switched to a new host only once its load balancer sends it traffic. A
//! target that never becomes healthy fails the create: the attachment is
//! recorded tainted, as a host that never booted is, and nothing after it
//! moves.
//!
//! The delete deregisters the target and **waits while it is `draining`**,
//! which AWS keeps it for up to the group's deregistration delay while its
//! open connections finish; the old host is destroyed only after that.
//!
//! A registration has no tags and no id of its own: it is found by its
//! target group, target and port. RegisterTargets of a target already
//! registered changes nothing, so a create interrupted by a crash is simply
//! made again (there is nothing to adopt), and a refresh reads each target
//! group's registrations in one call (DescribeTargetHealth takes one group).

use super::client::{Elb, Kind, Resource, int_in};
use super::target_group::{self, HealthCheck};
use crate::providers::aws::ec2::client::{opt_str, req_str};
use crate::providers::aws::ec2::error::{code_of, sdk_error};
use crate::providers::{
    ApplyOp, ApplyOutcome, Attribute, ChangeKind, OpContext, ProviderError, ProviderErrorKind, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealthDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("target_group_arn").required().force_new(),
        Attribute::arg("target_id").required().force_new(),
        Attribute::arg("port").number().computed().force_new(),
    ])
    .with_exported(&["id"])
});

/// Beyond the deregistration delay, for the end of draining to show.
const DRAINING_GRACE: Duration = Duration::from_secs(60);

pub(crate) struct AwsLbTargetGroupAttachment;

#[async_trait]
impl Resource for AwsLbTargetGroupAttachment {
    fn name(&self) -> &'static str {
        "aws_lb_target_group_attachment"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("target_group_arn", Str), ("target_id", Str)]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        if let Some(p) = int_in(m.get("port"), "port", 1..=65535)? {
            m.insert("port".into(), Value::from(p));
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        int_in(config.get("port"), "port", 1..=65535).err().into_iter().collect()
    }

    async fn refresh(&self, elb: &Elb, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let mut by_group: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut out: Vec<Option<Refreshed>> = vec![None; items.len()];
        for (i, (_, prior)) in items.iter().enumerate() {
            match prior.get_str("target_group_arn") {
                Some(tg) => by_group.entry(tg).or_default().push(i),
                None => {
                    out[i] = Some(Err(ProviderError::attr("target_group_arn", "the state has no `target_group_arn`")))
                }
            }
        }
        for (tg, idx) in by_group {
            // Every registration of the group in one call.
            let found = match elb.client.describe_target_health().target_group_arn(tg).send().await {
                Ok(o) => o.target_health_descriptions().to_vec(),
                Err(e) if code_of(&e) == Some("TargetGroupNotFound") => Vec::new(),
                Err(e) => {
                    let e = sdk_error(&format!("DescribeTargetHealth of `{tg}`"), &e);
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                    continue;
                }
            };
            for i in idx {
                let prior = &items[i].1;
                let target = prior.get_str("target_id").unwrap_or_default();
                let port = prior.get("port").and_then(Value::as_f64).map(|p| p as i32);
                let now = found.iter().find(|d| {
                    let t = d.target();
                    t.and_then(|t| t.id()) == Some(target) && (port.is_none() || t.and_then(|t| t.port()) == port)
                });
                out[i] = Some(Ok(now.filter(|d| registered(d)).map(|d| state(tg, d))));
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(ProviderError::new("attachment was not refreshed")))).collect()
    }

    async fn apply(&self, elb: &Elb, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => create(elb, &op.ctx, &planned).await,
            // Every argument replaces: nothing changes in place.
            ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
            ChangeKind::Delete { prior } => delete(elb, &prior).await,
        }
    }

    async fn adopt(&self, _elb: &Elb, _ctx: &OpContext) -> ProviderResult<Option<Value>> {
        Ok(None)
    }
}

/// Whether a description shows the target registered: not on its way out
/// (`draining`) and not unknown to the group (`unused` for want of a
/// registration).
fn registered(d: &TargetHealthDescription) -> bool {
    let h = d.target_health();
    let state = h.and_then(|h| h.state());
    let reason = h.and_then(|h| h.reason());
    !matches!(state, Some(TargetHealthStateEnum::Draining))
        && !(matches!(state, Some(TargetHealthStateEnum::Unused))
            && matches!(reason, Some(TargetHealthReasonEnum::NotRegistered)))
}

fn state(tg: &str, d: &TargetHealthDescription) -> Value {
    let t = d.target();
    let id = t.and_then(|t| t.id()).unwrap_or_default();
    let port = t.and_then(|t| t.port());
    obj([
        ("id", Value::str(attachment_id(tg, id, port))),
        ("target_group_arn", Value::str(tg)),
        ("target_id", Value::str(id)),
        ("port", port.map(|p| Value::from(p as i64)).unwrap_or(Value::Null)),
    ])
}

fn attachment_id(tg: &str, target: &str, port: Option<i32>) -> String {
    match port {
        Some(p) => format!("{tg}-{target}-{p}"),
        None => format!("{tg}-{target}"),
    }
}

fn target(planned: &Value) -> ProviderResult<TargetDescription> {
    Ok(TargetDescription::builder()
        .id(req_str(planned, "target_id")?)
        .set_port(planned.get("port").and_then(Value::as_f64).map(|p| p as i32))
        .build())
}

/// The target's health as the group sees it now.
async fn health(elb: &Elb, tg: &str, t: &TargetDescription) -> ProviderResult<Option<TargetHealthDescription>> {
    let out = elb
        .client
        .describe_target_health()
        .target_group_arn(tg)
        .targets(t.clone())
        .send()
        .await
        .map_err(|e| sdk_error(&format!("DescribeTargetHealth of `{tg}`"), &e))?;
    Ok(out.target_health_descriptions().first().cloned())
}

fn describe_health(d: Option<&TargetHealthDescription>) -> String {
    let h = d.and_then(|d| d.target_health());
    let state = h.and_then(|h| h.state()).map(|s| s.as_str().to_string()).unwrap_or_else(|| "not listed".into());
    match h.and_then(|h| h.description()) {
        Some(why) => format!("`{state}` ({why})"),
        None => format!("`{state}`"),
    }
}

/// What a wait for health ends with.
enum Settled {
    Healthy,
    /// Nothing checks the target (health checks off, or no load balancer
    /// forwards to the group): it is in, but nobody vouches for it.
    Unchecked(String),
}

async fn wait_healthy(elb: &Elb, tg: &str, t: &TargetDescription, hc: &HealthCheck) -> ProviderResult<Settled> {
    let bound = hc.time_to_healthy() * 2 + elb.healthy_grace;
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let d = health(elb, tg, t).await?;
        let h = d.as_ref().and_then(|d| d.target_health());
        match (h.and_then(|h| h.state()), h.and_then(|h| h.reason())) {
            (Some(TargetHealthStateEnum::Healthy), _) => return Ok(Settled::Healthy),
            (Some(TargetHealthStateEnum::Unavailable), Some(TargetHealthReasonEnum::HealthCheckDisabled)) => {
                return Ok(Settled::Unchecked("health checks are disabled".into()));
            }
            (Some(TargetHealthStateEnum::Unused), Some(TargetHealthReasonEnum::NotInUse)) => {
                return Ok(Settled::Unchecked("no load balancer forwards to the target group yet".into()));
            }
            // `initial`, `unhealthy` (it may pass its next checks), a
            // registration not visible yet: wait.
            _ => {}
        }
        let pause = elb.pause(attempt);
        if start.elapsed() + pause > bound {
            return Err(ProviderError::new(format!(
                "target `{}` did not become healthy in `{tg}` within {}s (its health check needs up to {}s): it is {}",
                t.id().unwrap_or_default(),
                bound.as_secs(),
                hc.time_to_healthy().as_secs(),
                describe_health(d.as_ref())
            )));
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

async fn create(elb: &Elb, ctx: &OpContext, planned: &Value) -> ApplyOutcome {
    let tg = match req_str(planned, "target_group_arn") {
        Ok(tg) => tg.to_string(),
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    let t = match target(planned) {
        Ok(t) => t,
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    let group = match target_group::describe(elb, &tg).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            let e = ProviderError::attr("target_group_arn", format!("target group `{tg}` does not exist"))
                .with_kind(ProviderErrorKind::NotFound);
            return ApplyOutcome::failed(None, e);
        }
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    if let Err(e) = elb.client.register_targets().target_group_arn(&tg).targets(t.clone()).send().await {
        let e = sdk_error(&format!("RegisterTargets for `{}`", ctx.addr), &e);
        return ApplyOutcome::failed(None, e);
    }
    let port = t.port().or(group.port());
    let now = obj([
        ("id", Value::str(attachment_id(&tg, t.id().unwrap_or_default(), port))),
        ("target_group_arn", Value::str(&tg)),
        ("target_id", Value::str(t.id().unwrap_or_default())),
        ("port", port.map(|p| Value::from(p as i64)).unwrap_or(Value::Null)),
    ]);
    let hc = HealthCheck::from_aws(&group);
    match wait_healthy(elb, &tg, &t, &hc).await {
        Ok(Settled::Healthy) => ApplyOutcome::ok(Some(now)),
        Ok(Settled::Unchecked(why)) => ApplyOutcome::ok(Some(now))
            .with_warning(format!("`{}` is registered in `{tg}` but not health-checked: {why}", ctx.addr)),
        // Registered but not healthy: recorded, tainted, to be replaced.
        Err(e) => ApplyOutcome::failed(Some(now), e),
    }
}

async fn delete(elb: &Elb, prior: &Value) -> ApplyOutcome {
    let Some(tg) = opt_str(prior, "target_group_arn").map(str::to_string) else {
        return ApplyOutcome::failed(
            Some(prior.clone()),
            ProviderError::attr("target_group_arn", "the state has no `target_group_arn`"),
        );
    };
    let t = match target(prior) {
        Ok(t) => t,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    let delay = match target_group::deregistration_delay(elb, &tg).await {
        Ok(d) => d,
        Err(e) if e.kind == ProviderErrorKind::NotFound => return ApplyOutcome::ok(None),
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    match elb.client.deregister_targets().target_group_arn(&tg).targets(t.clone()).send().await {
        Ok(_) => {}
        // Not registered (any more), or the group is gone: nothing to drain.
        Err(e) if matches!(code_of(&e), Some("InvalidTarget" | "TargetGroupNotFound")) => {
            return ApplyOutcome::ok(None);
        }
        Err(e) => {
            return ApplyOutcome::failed(Some(prior.clone()), sdk_error(&format!("DeregisterTargets from `{tg}`"), &e));
        }
    }
    let bound = Duration::from_secs(delay.max(0) as u64) + DRAINING_GRACE;
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let d = match health(elb, &tg, &t).await {
            Ok(d) => d,
            Err(e) if e.kind == ProviderErrorKind::NotFound => return ApplyOutcome::ok(None),
            Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
        };
        let draining = d
            .as_ref()
            .and_then(|d| d.target_health())
            .and_then(|h| h.state())
            .is_some_and(|s| *s == TargetHealthStateEnum::Draining);
        if !draining {
            return ApplyOutcome::ok(None);
        }
        let pause = elb.pause(attempt);
        if start.elapsed() + pause > bound {
            let e = ProviderError::new(format!(
                "target `{}` was still draining from `{tg}` {}s after its deregistration (the group's delay is {delay}s)",
                t.id().unwrap_or_default(),
                bound.as_secs()
            ));
            return ApplyOutcome::failed(Some(prior.clone()), e);
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}
