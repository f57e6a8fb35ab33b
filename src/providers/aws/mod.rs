//! The `aws` provider: one configured AWS session shared by every AWS
//! service berth manages.
//!
//! [`AwsProvider`] is a composite. It owns the resolved SDK configuration
//! (region, credentials, endpoints, retries) and forwards each resource type
//! to the member that implements it by type prefix: EC2 and VPC types go to
//! [`ec2::Ec2`], load balancers to [`elb::Elb`]; other services (Route53) slot in as one more match arm in
//! [`AwsProvider::member`], and the provider's own facts (region, partition,
//! caller identity) are [`meta::Meta`]. Every client built here carries the
//! [`CountCalls`](crate::telemetry::api_stats::CountCalls) interceptor, so
//! tests and benchmarks can hold berth to the physical minimum of API calls.
//!
//! The provider block is checked in [`provider_config`] and loaded through
//! [`crate::aws_sdk`], which the S3 state backend shares: `assume_role`
//! there makes every call here act in the role's account. `default_tags`
//! and `ignore_tags` are applied around the members ([`provider_tags`]), so
//! no resource type needs to know about them.
//!
//! Throttling (`RequestLimitExceeded`, `Throttling`, HTTP 503) is left to the
//! SDK's standard retry mode, which backs off exponentially with full jitter,
//! with more attempts than the SDK's default and no retry quota
//! ([`retry_partition`]);
//! eventual consistency right after a create (`InvalidVpcID.NotFound` for a
//! VPC the same run just made) is retried by [`ec2::retry`], which the SDK
//! does not treat as retryable.

mod claim;
pub mod ec2;
pub mod elb;
pub mod meta;
pub mod provider_config;
pub mod provider_tags;
pub mod route53;

use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, ChangeKind, OpContext, Planned, Provider, ProviderError, ProviderResult,
    Refreshed, Schema,
};
use crate::value::Value;
use async_trait::async_trait;
use aws_config::SdkConfig;
use provider_config::ProviderArgs;
use provider_tags::{ProviderTags, TAGS_ALL};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use crate::aws_sdk::{DEFAULT_MAX_RETRIES, retry_partition};
pub use provider_config::{BLOCK, ENDPOINT_SERVICES};

/// The configured `aws` provider. See the module documentation.
pub struct AwsProvider {
    sdk: SdkConfig,
    /// `endpoint_url` from the provider block: every service.
    endpoint_url: Option<String>,
    /// `endpoints { ... }` from the provider block: per service.
    endpoints: BTreeMap<String, String>,
    /// `default_tags` and `ignore_tags`.
    tags: ProviderTags,
    /// The schemas of the types that take `tags`, with `tags_all` exported.
    tagged: BTreeMap<&'static str, Schema>,
    ec2: Arc<ec2::Ec2>,
    elb: Arc<elb::Elb>,
    route53: Arc<route53::Route53>,
    meta: Arc<meta::Meta>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the SdkConfig: its credentials provider may hold secrets.
        f.debug_struct("AwsProvider")
            .field("region", &self.region())
            .field("endpoint_url", &self.endpoint_url)
            .field("endpoints", &self.endpoints)
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// Resolves the provider block into an SDK configuration (through
    /// [`crate::aws_sdk::load`], shared with the S3 state backend).
    /// Credentials come from `access_key`/`secret_key` when set, otherwise
    /// from the standard chain (environment, profile, SSO, instance
    /// metadata); with `assume_role`, those sign the AssumeRole call and the
    /// role's credentials sign everything else.
    pub async fn from_config(config: &Value) -> ProviderResult<AwsProvider> {
        let args = ProviderArgs::parse(config)?;
        let sdk = crate::aws_sdk::load(&args.sdk).await.map_err(|e| match e {
            crate::aws_sdk::LoadError::NoRegion => ProviderError::attr(
                "region",
                "no AWS region: set `region` in the `aws` provider block, or `AWS_REGION`",
            ),
            e @ crate::aws_sdk::LoadError::AssumeRole { .. } => {
                ProviderError::attr("assume_role.role_arn", e.to_string())
            }
        })?;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let mut ec2_conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .interceptor(crate::telemetry::api_stats::CountCalls)
            .retry_partition(retry_partition("ec2"));
        if let Some(url) = args.endpoints.get("ec2") {
            ec2_conf = ec2_conf.endpoint_url(url);
        }
        let ec2 = Arc::new(ec2::Ec2::new(aws_sdk_ec2::Client::from_conf(ec2_conf.build()), &region));
        let settings = route53::Route53Settings::from_provider_config(config)?;
        let endpoint_url = args.sdk.endpoint_url;
        let mut elb_conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk)
            .interceptor(crate::telemetry::api_stats::CountCalls)
            .retry_partition(retry_partition("elasticloadbalancing"));
        if let Some(url) = endpoint_for(&args.endpoints, endpoint_url.as_deref(), &sdk, "elbv2") {
            elb_conf = elb_conf.endpoint_url(url);
        }
        let elb = Arc::new(elb::Elb::new(aws_sdk_elasticloadbalancingv2::Client::from_conf(elb_conf.build())));
        let r53_endpoint = endpoint_for(&args.endpoints, endpoint_url.as_deref(), &sdk, "route53");
        let route53 = Arc::new(route53::Route53::new(&sdk, r53_endpoint).with_settings(settings));
        let mut sts_conf = aws_sdk_sts::config::Builder::from(&sdk)
            .interceptor(crate::telemetry::api_stats::CountCalls)
            .retry_partition(retry_partition("sts"));
        if let Some(url) = endpoint_for(&args.endpoints, endpoint_url.as_deref(), &sdk, "sts") {
            sts_conf = sts_conf.endpoint_url(url);
        }
        let meta = Arc::new(meta::Meta::new(&region, aws_sdk_sts::Client::from_conf(sts_conf.build())));
        let mut p = AwsProvider {
            sdk,
            endpoint_url,
            endpoints: args.endpoints,
            tags: args.tags,
            tagged: BTreeMap::new(),
            ec2,
            elb,
            route53,
            meta,
        };
        p.tagged = p.tagged_schemas();
        Ok(p)
    }

    /// The schemas of the managed types that take `tags`, each with
    /// `tags_all` added as an exported attribute.
    fn tagged_schemas(&self) -> BTreeMap<&'static str, Schema> {
        let mut out = BTreeMap::new();
        for m in self.members() {
            for t in m.type_names(Mode::Managed) {
                if let Some(s) = m.schema(Mode::Managed, t).filter(|s| s.is_argument("tags")) {
                    out.insert(t, s.clone().with_exported(&[TAGS_ALL]));
                }
            }
        }
        out
    }

    /// The provider's `default_tags` and `ignore_tags`.
    pub fn provider_tags(&self) -> &ProviderTags {
        &self.tags
    }

    /// The resolved SDK configuration, for members built elsewhere (Route53).
    /// Clients built from it must add
    /// [`CountCalls`](crate::telemetry::api_stats::CountCalls) and apply
    /// [`AwsProvider::endpoint_for`].
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    /// The endpoint a service's client must use, `None` for the SDK's
    /// default: `endpoints { SERVICE }`, then `endpoint_url`, then
    /// `AWS_ENDPOINT_URL_SERVICE` and `AWS_ENDPOINT_URL` from the environment.
    pub fn endpoint_for(&self, service: &str) -> Option<String> {
        endpoint_for(&self.endpoints, self.endpoint_url.as_deref(), &self.sdk, service)
    }

    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.to_string())
    }

    /// The EC2 client, with the interceptor and endpoint applied.
    pub fn ec2_client(&self) -> &aws_sdk_ec2::Client {
        &self.ec2.client
    }

    /// Bounds the retries of eventual-consistency errors (default one
    /// minute). Tests shorten it to see a genuinely missing reference fail
    /// fast; call before the provider is shared.
    pub fn with_consistency_deadline(mut self, deadline: Duration) -> Self {
        if let Some(ec2) = Arc::get_mut(&mut self.ec2) {
            ec2.eventual.deadline = deadline;
        }
        self
    }

    /// Bounds how much longer than its health check needs a new target may
    /// take to become healthy (default 30 s). Tests shorten it to see a
    /// target that never becomes healthy fail fast; call before the
    /// provider is shared.
    pub fn with_health_grace(mut self, grace: Duration) -> Self {
        if let Some(elb) = Arc::get_mut(&mut self.elb) {
            elb.healthy_grace = grace;
        }
        self
    }

    /// The member that implements a type. One arm per service.
    fn member(&self, type_: &str) -> Option<&dyn Provider> {
        match type_ {
            t if ec2::Ec2::handles(t) => Some(&*self.ec2),
            t if elb::Elb::handles(t) => Some(&*self.elb),
            t if t.starts_with("aws_route53_") => Some(&*self.route53),
            t if meta::Meta::handles(t) => Some(&*self.meta),
            _ => None,
        }
    }

    fn members(&self) -> Vec<&dyn Provider> {
        vec![&*self.ec2, &*self.elb, &*self.route53, &*self.meta]
    }
}

fn endpoint_for(
    endpoints: &BTreeMap<String, String>,
    endpoint_url: Option<&str>,
    sdk: &SdkConfig,
    service: &str,
) -> Option<String> {
    let service = service.to_ascii_lowercase();
    if let Some(url) = endpoints.get(&service) {
        return Some(url.clone());
    }
    if let Some(url) = endpoint_url {
        return Some(url.to_string());
    }
    let env_key = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase().replace('-', "_"));
    std::env::var(env_key).ok().filter(|s| !s.is_empty()).or_else(|| sdk.endpoint_url().map(str::to_string))
}

fn no_type(type_: &str) -> ProviderError {
    ProviderError::new(format!("the `aws` provider has no type `{type_}`"))
}

/// A member's apply of a batch, with the outcomes translated to the
/// provider's tags on their way to the engine as they land.
async fn apply_tagged(tags: &ProviderTags, member: &dyn Provider, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
    // What each operation started from, in the provider's terms: the keys
    // the resource block sets stay visible in `tags` of the result.
    let starts: Vec<Value> = ops
        .iter()
        .map(|op| match &op.kind {
            ChangeKind::Create { planned } | ChangeKind::Update { planned, .. } => planned.clone(),
            ChangeKind::Delete { prior } => prior.clone(),
        })
        .collect();
    let ops = ops
        .into_iter()
        .map(|op| {
            let kind = match op.kind {
                ChangeKind::Create { planned } => ChangeKind::Create { planned: tags.member_state(&planned) },
                ChangeKind::Update { prior, planned } => {
                    ChangeKind::Update { prior: tags.member_state(&prior), planned: tags.member_state(&planned) }
                }
                ChangeKind::Delete { prior } => ChangeKind::Delete { prior: tags.member_state(&prior) },
            };
            ApplyOp { ctx: op.ctx, kind }
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, ApplyOutcome)>();
    let forward = async {
        while let Some((i, outcome)) = rx.recv().await {
            let start = starts.get(i);
            let state = outcome.state.map(|s| {
                // The provider's terms of the plan: `tags` as configured.
                let prior = start.map(|p| {
                    let mut p = p.clone();
                    if let Value::Map(m) = &mut p {
                        m.remove(TAGS_ALL);
                    }
                    p
                });
                tags.state(s, prior.as_ref())
            });
            let _ = sink.send((i, ApplyOutcome { state, ..outcome }));
        }
    };
    tokio::join!(member.apply(type_, ops, tx), forward);
}

#[async_trait]
impl Provider for AwsProvider {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        if mode == Mode::Managed
            && let Some(s) = self.tagged.get(type_)
        {
            return Some(s);
        }
        self.member(type_)?.schema(mode, type_)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        self.members().into_iter().flat_map(|m| m.type_names(mode)).collect()
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        match self.member(type_) {
            Some(m) => m.validate(mode, type_, config),
            None => vec![no_type(type_)],
        }
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        let Some(m) = self.member(type_) else {
            return items.iter().map(|_| Err(no_type(type_))).collect();
        };
        if !self.tagged.contains_key(type_) {
            return m.refresh(type_, items).await;
        }
        let priors: Vec<Value> = items.iter().map(|(_, v)| v.clone()).collect();
        let items = items.into_iter().map(|(c, v)| (c, self.tags.member_state(&v))).collect();
        let results = m.refresh(type_, items).await;
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.map(|found| found.map(|v| self.tags.state(v, priors.get(i)))))
            .collect()
    }

    async fn plan(
        &self,
        ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let m = self.member(type_).ok_or_else(|| no_type(type_))?;
        if !self.tagged.contains_key(type_) {
            return m.plan(ctx, type_, prior, config).await;
        }
        let prior = prior.map(|p| self.tags.member_state(p));
        let mut planned = m.plan(ctx, type_, prior.as_ref(), &self.tags.member_config(config)).await?;
        planned.after = self.tags.planned(planned.after, config);
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        let Some(m) = self.member(type_) else {
            for i in 0..ops.len() {
                let _ = sink.send((i, ApplyOutcome::failed(None, no_type(type_))));
            }
            return;
        };
        let tagged = self.tagged.contains_key(type_);
        let run = |ops: Vec<ApplyOp>, sink: ApplySink| async move {
            if tagged { apply_tagged(&self.tags, m, type_, ops, sink).await } else { m.apply(type_, ops, sink).await }
        };
        if self.ownership_marks(type_).is_none() || !ops.iter().any(|o| o.ctx.claim) {
            return run(ops, sink).await;
        }
        // Imported objects take berth's ownership tags before their update.
        let owner = if elb::Elb::handles(type_) { claim::Owner::Elb(&self.elb) } else { claim::Owner::Ec2(&self.ec2) };
        let (index, ops): (Vec<usize>, Vec<ApplyOp>) =
            claim::claim_updates(owner, type_, ops, &sink).await.into_iter().unzip();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, ApplyOutcome)>();
        let forward = async {
            while let Some((i, outcome)) = rx.recv().await {
                let _ = sink.send((index[i], outcome));
            }
        };
        tokio::join!(run(ops, tx), forward);
    }

    fn ownership_marks(&self, type_: &str) -> Option<String> {
        ((ec2::Ec2::handles(type_) || elb::Elb::handles(type_)) && self.tagged.contains_key(type_)).then(claim::marks)
    }

    async fn read(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        let v = self.member(type_).ok_or_else(|| no_type(type_))?.read(ctx, type_, config).await?;
        Ok(self.tags.data(v))
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Option<Value>> {
        let m = self.member(type_).ok_or_else(|| no_type(type_))?;
        let found = m.adopt(ctx, type_, config).await?;
        Ok(if self.tagged.contains_key(type_) { found.map(|v| self.tags.state(v, None)) } else { found })
    }

    async fn health(
        &self,
        type_: &str,
        items: &[(OpContext, Value)],
    ) -> Option<ProviderResult<Vec<Option<crate::providers::Health>>>> {
        self.member(type_)?.health(type_, items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[tokio::test]
    async fn endpoints_resolve_per_service_then_global() {
        let p = AwsProvider::from_config(&obj([
            ("region", Value::str("eu-west-1")),
            ("access_key", Value::str("testing")),
            ("secret_key", Value::Sensitive(Box::new(Value::str("testing")))),
            ("endpoint_url", Value::str("http://127.0.0.1:1")),
            ("endpoints", Value::List(vec![obj([("route53", Value::str("http://127.0.0.1:2"))])])),
        ]))
        .await
        .unwrap();
        assert_eq!(p.endpoint_for("route53").as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(p.endpoint_for("ec2").as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(p.region().as_deref(), Some("eu-west-1"));
        let debug = format!("{p:?}");
        assert!(!debug.contains("testing"), "Debug must not show credentials: {debug}");
        // Throttling is the SDK's job: standard mode retries
        // `RequestLimitExceeded`, `Throttling` and 5xx with jittered backoff.
        let retry = p.sdk_config().retry_config().expect("a retry config");
        assert_eq!(retry.mode(), aws_smithy_types::retry::RetryMode::Standard);
        assert_eq!(retry.max_attempts(), DEFAULT_MAX_RETRIES + 1);
    }

    #[tokio::test]
    async fn taggable_types_export_tags_all() {
        let p = AwsProvider::from_config(&obj([
            ("region", Value::str("eu-west-1")),
            ("access_key", Value::str("testing")),
            ("secret_key", Value::str("testing")),
        ]))
        .await
        .unwrap();
        for t in ["aws_vpc", "aws_subnet", "aws_instance", "aws_security_group", "aws_route53_zone", "aws_key_pair"] {
            let s = p.schema(Mode::Managed, t).unwrap();
            assert!(s.attribute(TAGS_ALL).is_some() && !s.is_argument(TAGS_ALL), "{t}");
        }
        for t in ["aws_route53_record", "aws_route_table_association"] {
            assert!(p.schema(Mode::Managed, t).unwrap().attribute(TAGS_ALL).is_none(), "{t}");
        }
    }
}
