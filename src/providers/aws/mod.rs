//! The `aws` provider: one configured AWS session shared by every AWS
//! service berth manages.
//!
//! [`AwsProvider`] is a composite. It owns the resolved SDK configuration
//! (region, credentials, endpoints, retries) and forwards each resource type
//! to the member that implements it by type prefix: EC2 and VPC types go to
//! [`ec2::Ec2`]; other services (Route53) slot in as one more match arm in
//! [`AwsProvider::member`]. Every client built here carries the
//! [`CountCalls`](crate::providers::api_stats::CountCalls) interceptor, so
//! tests and benchmarks can hold berth to the physical minimum of API calls.
//!
//! Throttling (`RequestLimitExceeded`, `Throttling`, HTTP 503) is left to the
//! SDK's standard retry mode, which backs off exponentially with full jitter,
//! with more attempts than the SDK's default and no retry quota
//! ([`retry_partition`]);
//! eventual consistency right after a create (`InvalidVpcID.NotFound` for a
//! VPC the same run just made) is retried by [`retry`], which the SDK does not
//! treat as retryable.

mod common;
pub mod data;
pub mod ec2;
pub mod instance;
pub mod network;
pub mod retry;
pub mod route53;
pub mod security_group;

use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplySink, OpContext, Planned, Provider, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::Value;
use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_types::retry::RetryConfig;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The services whose endpoint can be overridden in `endpoints { ... }`.
pub const ENDPOINT_SERVICES: &[&str] = &["ec2", "route53", "s3"];

/// Retries after the first attempt when the configuration says nothing.
/// Higher than the SDK's default of 2: a large apply meets throttling, and
/// giving up half-way costs more than waiting.
const DEFAULT_MAX_RETRIES: u32 = 8;

/// The retry quota of a service's clients: none. The SDK's standard mode
/// also bounds retries with a token bucket of 500 per service that every
/// retry after the first of a call drains for good (5 for throttling, 10 for
/// a 503 or a dropped connection); it stops retry storms in long-lived
/// services, but in a large apply under sustained throttling it runs dry and
/// calls fail half-way with attempts left (Terraform's AWS provider met the
/// same: "retry quota exceeded"). berth is a bounded batch: `max_retries`
/// and the exponential backoff are the bounds. `name` is the service.
pub fn retry_partition(name: &'static str) -> aws_sdk_ec2::config::retry::RetryPartition {
    use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(name).token_bucket(TokenBucket::unlimited()).build()
}

/// The configured `aws` provider. See the module documentation.
pub struct AwsProvider {
    sdk: SdkConfig,
    /// `endpoint_url` from the provider block: every service.
    endpoint_url: Option<String>,
    /// `endpoints { ... }` from the provider block: per service.
    endpoints: BTreeMap<String, String>,
    ec2: Arc<ec2::Ec2>,
    route53: Arc<route53::Route53>,
}

/// The provider block's arguments, checked.
#[derive(Debug, Default)]
struct ProviderArgs {
    region: Option<String>,
    profile: Option<String>,
    endpoint_url: Option<String>,
    endpoints: BTreeMap<String, String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    max_retries: Option<u32>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the SdkConfig: its credentials provider may hold secrets.
        f.debug_struct("AwsProvider")
            .field("region", &self.region())
            .field("endpoint_url", &self.endpoint_url)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

fn opt_string(config: &Value, name: &str) -> ProviderResult<Option<String>> {
    match config.get(name).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Unknown) => {
            Err(ProviderError::attr(name, format!("`{name}` of the `aws` provider must be known before planning")))
        }
        Some(other) => Err(ProviderError::attr(
            name,
            format!("`{name}` of the `aws` provider must be a string, not {}", other.type_name()),
        )),
    }
}

impl ProviderArgs {
    fn parse(config: &Value) -> ProviderResult<ProviderArgs> {
        if !matches!(config.unmarked(), Value::Map(_) | Value::Null) {
            return Err(ProviderError::new("the `aws` provider block must be an object"));
        }
        let mut args = ProviderArgs {
            region: opt_string(config, "region")?,
            profile: opt_string(config, "profile")?,
            endpoint_url: opt_string(config, "endpoint_url")?,
            access_key: opt_string(config, "access_key")?,
            secret_key: opt_string(config, "secret_key")?,
            ..ProviderArgs::default()
        };
        // `endpoints { ec2 = ... }` arrives as a list of one object (a block);
        // `endpoints = { ... }` as an object. Both mean the same.
        let blocks: Vec<&Value> = match config.get("endpoints").map(Value::unmarked) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::List(l)) => l.iter().collect(),
            Some(m @ Value::Map(_)) => vec![m],
            Some(other) => {
                return Err(ProviderError::attr(
                    "endpoints",
                    format!("`endpoints` must be a block, not {}", other.type_name()),
                ));
            }
        };
        for block in blocks {
            let Some(map) = block.as_map() else {
                return Err(ProviderError::attr("endpoints", "`endpoints` must be a block of `service = url`"));
            };
            for key in map.keys() {
                if !ENDPOINT_SERVICES.contains(&key.as_str()) {
                    return Err(ProviderError::attr(
                        "endpoints",
                        format!(
                            "unknown service `{key}` in `endpoints` (berth knows: {})",
                            ENDPOINT_SERVICES.join(", ")
                        ),
                    ));
                }
                if let Some(url) = opt_string(block, key)? {
                    args.endpoints.insert(key.clone(), url);
                }
            }
        }
        match config.get("max_retries").map(Value::unmarked) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if *n >= 0.0 && n.fract() == 0.0 && *n <= 100.0 => {
                args.max_retries = Some(*n as u32)
            }
            Some(other) => {
                return Err(ProviderError::attr(
                    "max_retries",
                    format!("`max_retries` must be a whole number from 0 to 100, not {other}"),
                ));
            }
        }
        match (&args.access_key, &args.secret_key) {
            (Some(_), None) => {
                return Err(ProviderError::attr("secret_key", "`access_key` is set but `secret_key` is not"));
            }
            (None, Some(_)) => {
                return Err(ProviderError::attr("access_key", "`secret_key` is set but `access_key` is not"));
            }
            _ => {}
        }
        Ok(args)
    }
}

impl AwsProvider {
    /// Resolves the provider block into an SDK configuration. Credentials
    /// come from `access_key`/`secret_key` when set, otherwise from the
    /// standard chain (environment, profile, SSO, instance metadata).
    pub async fn from_config(config: &Value) -> ProviderResult<AwsProvider> {
        let args = ProviderArgs::parse(config)?;
        let max_retries = args.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let retry =
            RetryConfig::standard().with_max_attempts(max_retries + 1).with_max_backoff(Duration::from_secs(20));
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
        if let Some(region) = &args.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = &args.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &args.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let (Some(ak), Some(sk)) = (&args.access_key, &args.secret_key) {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                ak.clone(),
                sk.clone(),
                None,
                None,
                "berth-provider-block",
            ));
        }
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(ProviderError::attr(
                "region",
                "no AWS region: set `region` in the `aws` provider block, or `AWS_REGION`",
            ));
        };
        let mut ec2_conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .interceptor(crate::providers::api_stats::CountCalls)
            .retry_partition(retry_partition("ec2"));
        if let Some(url) = args.endpoints.get("ec2") {
            ec2_conf = ec2_conf.endpoint_url(url);
        }
        let ec2 = Arc::new(ec2::Ec2::new(aws_sdk_ec2::Client::from_conf(ec2_conf.build()), &region));
        let settings = route53::Route53Settings::from_provider_config(config)?;
        let r53_endpoint = endpoint_for(&args.endpoints, args.endpoint_url.as_deref(), &sdk, "route53");
        let route53 = Arc::new(route53::Route53::new(&sdk, r53_endpoint).with_settings(settings));
        Ok(AwsProvider { sdk, endpoint_url: args.endpoint_url, endpoints: args.endpoints, ec2, route53 })
    }

    /// The resolved SDK configuration, for members built elsewhere (Route53).
    /// Clients built from it must add
    /// [`CountCalls`](crate::providers::api_stats::CountCalls) and apply
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

    /// The member that implements a type. One arm per service.
    fn member(&self, type_: &str) -> Option<&dyn Provider> {
        match type_ {
            t if ec2::Ec2::handles(t) => Some(&*self.ec2),
            t if t.starts_with("aws_route53_") => Some(&*self.route53),
            _ => None,
        }
    }

    fn members(&self) -> Vec<&dyn Provider> {
        vec![&*self.ec2, &*self.route53]
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

#[async_trait]
impl Provider for AwsProvider {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
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
        match self.member(type_) {
            Some(m) => m.refresh(type_, items).await,
            None => items.iter().map(|_| Err(no_type(type_))).collect(),
        }
    }

    async fn plan(
        &self,
        ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        self.member(type_).ok_or_else(|| no_type(type_))?.plan(ctx, type_, prior, config).await
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        match self.member(type_) {
            Some(m) => m.apply(type_, ops, sink).await,
            None => {
                for i in 0..ops.len() {
                    let _ = sink.send((i, crate::providers::ApplyOutcome::failed(None, no_type(type_))));
                }
            }
        }
    }

    async fn read(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        self.member(type_).ok_or_else(|| no_type(type_))?.read(ctx, type_, config).await
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Option<Value>> {
        self.member(type_).ok_or_else(|| no_type(type_))?.adopt(ctx, type_, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn provider_block_errors_name_the_attribute() {
        let e = ProviderArgs::parse(&obj([("max_retries", Value::str("many"))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("max_retries"));
        let e = ProviderArgs::parse(&obj([("access_key", Value::str("AK"))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("secret_key"));
        let e =
            ProviderArgs::parse(&obj([("endpoints", Value::List(vec![obj([("lambda", Value::str("http://x"))])]))]))
                .unwrap_err();
        assert!(e.message.contains("`lambda`"), "{}", e.message);
        let e = ProviderArgs::parse(&obj([("region", Value::Number(1.0))])).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("region"));
    }

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
}
