//! `aws_lb_target_group`: the hosts (or addresses) a listener forwards to,
//! with the health check that decides which of them get traffic.
//!
//! Created like a load balancer (idempotent by name, the name derived from
//! the create attempt when unset, the ownership tags checked after the
//! create). Every health check setting is sent explicitly, berth's defaults
//! filled in where the configuration leaves one unset (Terraform's: 3
//! healthy and 3 unhealthy checks, every 30 s, on the traffic port, `/` and
//! `200` for HTTP), so what AWS reports back is what was planned whatever
//! AWS's own defaults for the protocol are. The health check and
//! `deregistration_delay` change in place (ModifyTargetGroup,
//! ModifyTargetGroupAttributes); port, protocol, VPC and target type
//! replace.
//!
//! ELBv2 has no batch call for target group attributes: a refresh reads the
//! groups by the page and then the deregistration delay of each group it
//! tracks, one DescribeTargetGroupAttributes each.

use super::client::{
    self, Elb, Kind, Resource, all_target_groups, check_name, claim_created, create_tags, describe_tags, find_attempt, generated_name,
    int_in, name_taken, sync_tags, tags_value,
};
use crate::providers::aws::ec2::client::{changed, id_of, opt_str, tags_arg, tags_changed};
use crate::providers::aws::ec2::error::{about, code_of, sdk_error};
use crate::providers::aws::ec2::retry::{self as ec2_retry, Backoff, retry_codes};
use crate::providers::{
    ApplyOp, ApplyOutcome, Attribute, ChangeKind, OpContext, ProviderError, ProviderErrorKind, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, Tag, TargetGroup, TargetGroupAttribute, TargetTypeEnum,
};
use std::collections::HashMap;
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("name").computed().force_new(),
        Attribute::arg("name_prefix").force_new(),
        Attribute::arg("port").number().force_new(),
        Attribute::arg("protocol").force_new(),
        Attribute::arg("vpc_id").force_new(),
        Attribute::arg("target_type").force_new(),
        Attribute::arg("health_check").block(),
        Attribute::arg("deregistration_delay").number(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "arn_suffix"])
});

/// AWS's deregistration delay when none is set, in seconds.
pub const DEFAULT_DEREGISTRATION_DELAY: i64 = 300;
const DEREGISTRATION_KEY: &str = "deregistration_delay.timeout_seconds";

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"];
const HEALTH_PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP"];
const TARGET_TYPES: &[&str] = &["instance", "ip"];
const HEALTH_KEYS: &[&str] = &[
    "enabled",
    "healthy_threshold",
    "unhealthy_threshold",
    "interval",
    "timeout",
    "path",
    "port",
    "protocol",
    "matcher",
];

/// Terraform's limit on `name_prefix` for a target group.
const MAX_PREFIX: usize = 6;

pub(crate) struct AwsLbTargetGroup;

/// The health check of a target group, every setting filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HealthCheck {
    pub enabled: bool,
    pub healthy_threshold: i64,
    pub unhealthy_threshold: i64,
    pub interval: i64,
    pub timeout: i64,
    pub path: Option<String>,
    pub port: String,
    pub protocol: String,
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// From a `health_check` block (or none), with defaults.
    fn from_block(block: Option<&Value>) -> ProviderResult<HealthCheck> {
        let b = match block.map(Value::unmarked) {
            Some(Value::List(l)) => l.first().cloned().unwrap_or(Value::Null),
            Some(m @ Value::Map(_)) => m.clone(),
            _ => Value::Null,
        };
        let at = |k: &str| format!("health_check.{k}");
        let protocol = b.get_str("protocol").unwrap_or("HTTP").to_ascii_uppercase();
        let http = protocol == "HTTP" || protocol == "HTTPS";
        let num = |k: &str, range, default| -> ProviderResult<i64> {
            Ok(int_in(b.get(k), &at(k), range)?.unwrap_or(default))
        };
        Ok(HealthCheck {
            enabled: b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            healthy_threshold: num("healthy_threshold", 2..=10, 3)?,
            unhealthy_threshold: num("unhealthy_threshold", 2..=10, 3)?,
            interval: num("interval", 5..=300, 30)?,
            timeout: num("timeout", 2..=120, if http { 5 } else { 10 })?,
            path: if http { Some(b.get_str("path").unwrap_or("/").to_string()) } else { None },
            port: match b.get("port").map(Value::unmarked) {
                Some(Value::Number(n)) => crate::value::format_number(*n),
                Some(Value::String(s)) => s.clone(),
                _ => "traffic-port".to_string(),
            },
            matcher: if http { Some(b.get_str("matcher").unwrap_or("200").to_string()) } else { None },
            protocol,
        })
    }

    pub(crate) fn from_aws(tg: &TargetGroup) -> HealthCheck {
        let protocol = tg.health_check_protocol().map(|p| p.as_str().to_string()).unwrap_or_else(|| "HTTP".into());
        let http = protocol == "HTTP" || protocol == "HTTPS";
        HealthCheck {
            enabled: tg.health_check_enabled().unwrap_or(true),
            healthy_threshold: tg.healthy_threshold_count().unwrap_or(3) as i64,
            unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or(3) as i64,
            interval: tg.health_check_interval_seconds().unwrap_or(30) as i64,
            timeout: tg.health_check_timeout_seconds().unwrap_or(5) as i64,
            path: if http { tg.health_check_path().map(str::to_string) } else { None },
            port: tg.health_check_port().unwrap_or("traffic-port").to_string(),
            matcher: if http { tg.matcher().and_then(Matcher::http_code).map(str::to_string) } else { None },
            protocol,
        }
    }

    fn value(&self) -> Value {
        let opt = |s: &Option<String>| s.as_deref().map(Value::str).unwrap_or(Value::Null);
        Value::List(vec![obj([
            ("enabled", Value::Bool(self.enabled)),
            ("healthy_threshold", Value::from(self.healthy_threshold)),
            ("unhealthy_threshold", Value::from(self.unhealthy_threshold)),
            ("interval", Value::from(self.interval)),
            ("timeout", Value::from(self.timeout)),
            ("path", opt(&self.path)),
            ("port", Value::str(&self.port)),
            ("protocol", Value::str(&self.protocol)),
            ("matcher", opt(&self.matcher)),
        ])])
    }

    /// The longest a newly registered target can take to be found healthy
    /// by these checks: `healthy_threshold` checks in a row, each up to
    /// `interval` apart and `timeout` long.
    pub fn time_to_healthy(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.healthy_threshold * (self.interval + self.timeout)) as u64)
    }

    /// From a state's `health_check` attribute.
    pub fn of_state(v: &Value) -> HealthCheck {
        HealthCheck::from_block(v.get("health_check"))
            .unwrap_or_else(|_| HealthCheck::from_block(None).expect("defaults"))
    }
}

#[async_trait]
impl Resource for AwsLbTargetGroup {
    fn name(&self) -> &'static str {
        "aws_lb_target_group"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("name", Str),
            ("name_prefix", Str),
            ("protocol", Str),
            ("vpc_id", Str),
            ("target_type", Str),
            ("health_check", Blocks),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        client::default_value(m, "target_type", Value::str("instance"));
        if let Some(p) = m.get("protocol").and_then(Value::as_str).map(str::to_ascii_uppercase) {
            m.insert("protocol".into(), Value::str(p));
        }
        let delay = int_in(m.get("deregistration_delay"), "deregistration_delay", 0..=3600)?;
        m.insert("deregistration_delay".into(), Value::from(delay.unwrap_or(DEFAULT_DEREGISTRATION_DELAY)));
        if let Some(port) = int_in(m.get("port"), "port", 1..=65535)? {
            m.insert("port".into(), Value::from(port));
        }
        // Unknown values inside the block stay as configured.
        let block_known = m.get("health_check").is_none_or(Value::is_known);
        if block_known {
            let hc = HealthCheck::from_block(m.get("health_check"))?;
            m.insert("health_check".into(), hc.value());
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if let Some(n) = config.get_str("name")
            && let Some(e) = check_name("name", n, client::MAX_NAME, false)
        {
            errs.push(e);
        }
        if let Some(p) = config.get_str("name_prefix")
            && let Some(e) = check_name("name_prefix", p, MAX_PREFIX, false)
        {
            errs.push(e);
        }
        if config.get("name").is_some_and(|v| !v.is_null()) && config.get("name_prefix").is_some_and(|v| !v.is_null()) {
            errs.push(ProviderError::attr("name_prefix", "`name` and `name_prefix` cannot both be set"));
        }
        for a in ["port", "protocol", "vpc_id"] {
            if config.get(a).is_none_or(Value::is_null) {
                errs.push(ProviderError::attr(
                    a,
                    format!("`aws_lb_target_group` requires `{a}` for `instance` and `ip` targets"),
                ));
            }
        }
        if let Err(e) = int_in(config.get("port"), "port", 1..=65535) {
            errs.push(e);
        }
        if let Err(e) = int_in(config.get("deregistration_delay"), "deregistration_delay", 0..=3600) {
            errs.push(e);
        }
        if let Some(p) = config.get_str("protocol")
            && !PROTOCOLS.contains(&p.to_ascii_uppercase().as_str())
        {
            errs.push(ProviderError::attr(
                "protocol",
                format!("`protocol` is one of {}, not `{p}`", PROTOCOLS.join(", ")),
            ));
        }
        if let Some(t) = config.get_str("target_type")
            && !TARGET_TYPES.contains(&t)
        {
            errs.push(ProviderError::attr("target_type", format!("`target_type` is `instance` or `ip`, not `{t}`")));
        }
        if let Some(l) = config.get("health_check").and_then(Value::as_list) {
            if l.len() > 1 {
                errs.push(ProviderError::attr("health_check", "only one `health_check` block is allowed"));
            }
            if let Some(b) = l.first().and_then(Value::as_map) {
                for k in b.keys() {
                    if !HEALTH_KEYS.contains(&k.as_str()) {
                        errs.push(ProviderError::attr(
                            "health_check",
                            format!("`health_check` has no argument `{k}`; it takes {}", HEALTH_KEYS.join(", ")),
                        ));
                    }
                }
                if let Some(p) = b.get("protocol").and_then(Value::as_str)
                    && !HEALTH_PROTOCOLS.contains(&p.to_ascii_uppercase().as_str())
                {
                    errs.push(ProviderError::attr(
                        "health_check",
                        format!("`health_check.protocol` is `HTTP`, `HTTPS` or `TCP`, not `{p}`"),
                    ));
                }
            }
            if l.iter().all(Value::is_known)
                && let Err(e) = HealthCheck::from_block(config.get("health_check"))
            {
                errs.push(about("health_check", e));
            }
        }
        errs
    }

    async fn refresh(&self, elb: &Elb, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let all = match all_target_groups(elb).await {
            Ok(all) => all,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let by_arn: HashMap<String, TargetGroup> =
            all.into_iter().filter_map(|tg| Some((tg.target_group_arn()?.to_string(), tg))).collect();
        let wanted: Vec<String> = items
            .iter()
            .filter_map(|(_, p)| p.get_str("id"))
            .filter(|id| by_arn.contains_key(*id))
            .map(str::to_string)
            .collect();
        let tags = match describe_tags(elb, &wanted).await {
            Ok(t) => t,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut out = Vec::with_capacity(items.len());
        for (_, prior) in items {
            let r = async {
                let id = id_of(prior)?;
                let Some(tg) = by_arn.get(&id) else { return Ok(None) };
                let delay = match deregistration_delay(elb, &id).await {
                    Ok(d) => d,
                    Err(e) if e.kind == ProviderErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                Ok(Some(state(tg, tags.get(&id).map(Vec::as_slice).unwrap_or_default(), delay, Some(prior))))
            };
            out.push(r.await);
        }
        out
    }

    async fn apply(&self, elb: &Elb, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => create(elb, &op.ctx, &planned).await,
            ChangeKind::Update { prior, planned } => update(elb, &prior, &planned).await,
            ChangeKind::Delete { prior } => delete(elb, &prior).await,
        }
    }

    async fn adopt(&self, elb: &Elb, ctx: &OpContext) -> ProviderResult<Option<Value>> {
        let all = all_target_groups(elb).await?;
        let arns = all.iter().filter_map(|tg| tg.target_group_arn().map(str::to_string)).collect();
        let Some(arn) = find_attempt(elb, "target group", ctx, arns).await? else { return Ok(None) };
        read(elb, &arn, None).await
    }
}

pub(crate) fn state(tg: &TargetGroup, tags: &[Tag], delay: i64, prior: Option<&Value>) -> Value {
    let arn = tg.target_group_arn().unwrap_or_default();
    let prefix = prior.and_then(|p| p.get("name_prefix")).cloned().unwrap_or(Value::Null);
    obj([
        ("id", Value::str(arn)),
        ("arn", Value::str(arn)),
        ("arn_suffix", Value::str(client::arn_suffix(arn, "targetgroup"))),
        ("name", Value::str(tg.target_group_name().unwrap_or_default())),
        ("name_prefix", prefix),
        ("port", tg.port().map(|p| Value::from(p as i64)).unwrap_or(Value::Null)),
        ("protocol", tg.protocol().map(|p| Value::str(p.as_str())).unwrap_or(Value::Null)),
        ("vpc_id", tg.vpc_id().map(Value::str).unwrap_or(Value::Null)),
        ("target_type", Value::str(tg.target_type().map(|t| t.as_str()).unwrap_or("instance"))),
        ("health_check", HealthCheck::from_aws(tg).value()),
        ("deregistration_delay", Value::from(delay)),
        ("tags", tags_value(tags)),
    ])
}

/// The deregistration delay of a target group, in seconds.
pub(crate) async fn deregistration_delay(elb: &Elb, arn: &str) -> ProviderResult<i64> {
    let out = elb
        .client
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("DescribeTargetGroupAttributes `{arn}`"), &e))?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_KEY))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DEREGISTRATION_DELAY))
}

/// One target group by ARN with everything its state needs; `None` when gone.
pub(crate) async fn describe(elb: &Elb, arn: &str) -> ProviderResult<Option<TargetGroup>> {
    match elb.client.describe_target_groups().target_group_arns(arn).send().await {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) if code_of(&e) == Some("TargetGroupNotFound") => Ok(None),
        Err(e) => Err(sdk_error(&format!("DescribeTargetGroups `{arn}`"), &e)),
    }
}

async fn read(elb: &Elb, arn: &str, prior: Option<&Value>) -> ProviderResult<Option<Value>> {
    let Some(tg) = describe(elb, arn).await? else { return Ok(None) };
    let tags = describe_tags(elb, &[arn.to_string()]).await?.remove(arn).unwrap_or_default();
    let delay = deregistration_delay(elb, arn).await?;
    Ok(Some(state(&tg, &tags, delay, prior)))
}

async fn set_delay(elb: &Elb, arn: &str, seconds: i64) -> ProviderResult<()> {
    elb.client
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(TargetGroupAttribute::builder().key(DEREGISTRATION_KEY).value(seconds.to_string()).build())
        .send()
        .await
        .map_err(|e| {
            about("deregistration_delay", sdk_error(&format!("ModifyTargetGroupAttributes on `{arn}`"), &e))
        })?;
    Ok(())
}

fn planned_delay(planned: &Value) -> i64 {
    planned
        .get("deregistration_delay")
        .and_then(Value::as_f64)
        .map(|n| n as i64)
        .unwrap_or(DEFAULT_DEREGISTRATION_DELAY)
}

async fn create(elb: &Elb, ctx: &OpContext, planned: &Value) -> ApplyOutcome {
    let name = match planned.get_str("name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => generated_name(opt_str(planned, "name_prefix"), ctx),
    };
    let user = match tags_arg(planned.get("tags")) {
        Ok(t) => t,
        Err(e) => return ApplyOutcome::failed(None, e),
    };
    let hc = HealthCheck::of_state(planned);
    let sent = elb
        .client
        .create_target_group()
        .name(&name)
        .protocol(ProtocolEnum::from(planned.get_str("protocol").unwrap_or("HTTP")))
        .set_port(planned.get("port").and_then(Value::as_f64).map(|p| p as i32))
        .set_vpc_id(opt_str(planned, "vpc_id").map(str::to_string))
        .target_type(TargetTypeEnum::from(planned.get_str("target_type").unwrap_or("instance")))
        .health_check_enabled(hc.enabled)
        .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
        .health_check_port(&hc.port)
        .set_health_check_path(hc.path.clone())
        .health_check_interval_seconds(hc.interval as i32)
        .health_check_timeout_seconds(hc.timeout as i32)
        .healthy_threshold_count(hc.healthy_threshold as i32)
        .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
        .set_matcher(hc.matcher.as_ref().map(|m| Matcher::builder().http_code(m).build()))
        .set_tags(Some(create_tags(ctx, &user)))
        .send()
        .await;
    let arn = match sent {
        Ok(out) => out.target_groups().first().and_then(|tg| tg.target_group_arn()).unwrap_or_default().to_string(),
        Err(e) if code_of(&e) == Some("DuplicateTargetGroupName") => return ApplyOutcome::failed(None, name_taken("target group", &name)),
        Err(e) => return ApplyOutcome::failed(None, sdk_error(&format!("CreateTargetGroup for `{}`", ctx.addr), &e)),
    };
    if let Err(e) = claim_created(elb, ctx, "target group", &name, &arn).await {
        return ApplyOutcome::failed(None, e);
    }
    let partial = || {
        let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
        m.insert("id".into(), Value::str(&arn));
        m.insert("arn".into(), Value::str(&arn));
        m.insert("name".into(), Value::str(&name));
        Value::Map(m)
    };
    let delay = planned_delay(planned);
    if delay != DEFAULT_DEREGISTRATION_DELAY
        && let Err(e) = set_delay(elb, &arn, delay).await
    {
        return ApplyOutcome::failed(Some(partial()), e);
    }
    match read(elb, &arn, Some(planned)).await {
        Ok(Some(v)) => ApplyOutcome::ok(Some(v)),
        Ok(None) => {
            ApplyOutcome::failed(None, ProviderError::new(format!("target group `{arn}` disappeared after its create")))
        }
        Err(e) => ApplyOutcome::failed(Some(partial()), e),
    }
}

async fn update(elb: &Elb, prior: &Value, planned: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    let steps = async {
        if changed(prior, planned, "health_check") {
            let hc = HealthCheck::of_state(planned);
            elb.client
                .modify_target_group()
                .target_group_arn(&arn)
                .health_check_enabled(hc.enabled)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .health_check_port(&hc.port)
                .set_health_check_path(hc.path.clone())
                .health_check_interval_seconds(hc.interval as i32)
                .health_check_timeout_seconds(hc.timeout as i32)
                .healthy_threshold_count(hc.healthy_threshold as i32)
                .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
                .set_matcher(hc.matcher.as_ref().map(|m| Matcher::builder().http_code(m).build()))
                .send()
                .await
                .map_err(|e| about("health_check", sdk_error(&format!("ModifyTargetGroup on `{arn}`"), &e)))?;
        }
        if changed(prior, planned, "deregistration_delay") {
            set_delay(elb, &arn, planned_delay(planned)).await?;
        }
        if tags_changed(prior, planned) {
            sync_tags(elb, &arn, prior.get("tags"), planned.get("tags")).await?;
        }
        read(elb, &arn, Some(planned)).await
    };
    match steps.await {
        Ok(v) => ApplyOutcome::ok(v),
        Err(e) => {
            let now = read(elb, &arn, Some(prior)).await.ok().flatten().unwrap_or_else(|| prior.clone());
            ApplyOutcome::failed(Some(now), e)
        }
    }
}

/// A target group is in use until the listeners forwarding to it are gone,
/// which their deletes (ordered first) make true a moment later.
const IN_USE: &[&str] = &["ResourceInUse"];

async fn delete(elb: &Elb, prior: &Value) -> ApplyOutcome {
    let arn = match id_of(prior) {
        Ok(a) => a,
        Err(e) => return ApplyOutcome::failed(Some(prior.clone()), e),
    };
    let backoff = Backoff { deadline: std::time::Duration::from_secs(120), ..ec2_retry::Backoff::DEPENDENTS };
    match retry_codes(IN_USE, backoff, || elb.client.delete_target_group().target_group_arn(&arn).send()).await {
        Ok(_) => ApplyOutcome::ok(None),
        Err(e) if code_of(&e) == Some("TargetGroupNotFound") => ApplyOutcome::ok(None),
        Err(e) => ApplyOutcome::failed(Some(prior.clone()), sdk_error(&format!("DeleteTargetGroup `{arn}`"), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_defaults_follow_the_protocol() {
        let http = HealthCheck::from_block(None).unwrap();
        assert_eq!((http.path.as_deref(), http.matcher.as_deref(), http.timeout), (Some("/"), Some("200"), 5));
        let tcp = HealthCheck::from_block(Some(&Value::List(vec![obj([("protocol", Value::str("tcp"))])]))).unwrap();
        assert_eq!((tcp.protocol.as_str(), tcp.path, tcp.matcher, tcp.timeout), ("TCP", None, None, 10));
        let bad = Value::List(vec![obj([("interval", Value::Number(1.0))])]);
        assert_eq!(
            HealthCheck::from_block(Some(&bad)).unwrap_err().attribute.as_deref(),
            Some("health_check.interval")
        );
        let quick = Value::List(vec![obj([
            ("healthy_threshold", Value::Number(2.0)),
            ("interval", Value::Number(5.0)),
            ("timeout", Value::Number(2.0)),
        ])]);
        assert_eq!(HealthCheck::from_block(Some(&quick)).unwrap().time_to_healthy().as_secs(), 14);
    }

    #[test]
    fn a_normalized_config_matches_its_own_state_shape() {
        let mut m =
            obj([("port", Value::str("8080")), ("protocol", Value::str("http")), ("vpc_id", Value::str("vpc-1"))])
                .as_map()
                .cloned()
                .unwrap();
        AwsLbTargetGroup.normalize(&mut m).unwrap();
        assert_eq!(m.get("port"), Some(&Value::from(8080i64)));
        assert_eq!(m.get("protocol").and_then(Value::as_str), Some("HTTP"));
        assert_eq!(m.get("deregistration_delay"), Some(&Value::from(300i64)));
        assert_eq!(m.get("target_type"), Some(&Value::str("instance")));
        assert_eq!(m.get("health_check"), Some(&HealthCheck::from_block(None).unwrap().value()));
    }
}
