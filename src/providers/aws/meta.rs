//! The data sources about the provider itself rather than an AWS service's
//! objects: `aws_region` (the region it acts in, no call), `aws_partition`
//! (the ARN partition and DNS suffix of that region, no call) and
//! `aws_caller_identity` (the account, ARN and user id its credentials act
//! as: one STS GetCallerIdentity, which needs no permission). Configurations
//! use them to build ARNs and names without writing the account down.

use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, Attribute, OpContext, Planned, Provider, ProviderError, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use std::sync::LazyLock;

static REGION: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![Attribute::arg("name").computed(), Attribute::arg("region").computed()]).with_exported(&[
        "id",
        "endpoint",
        "description",
    ])
});

static PARTITION: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![]).with_exported(&["id", "partition", "dns_suffix", "reverse_dns_prefix"]));

static CALLER_IDENTITY: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![]).with_exported(&["id", "account_id", "arn", "user_id"]));

const DATA: &[&str] = &["aws_region", "aws_partition", "aws_caller_identity"];

/// The member for the provider's own facts.
pub struct Meta {
    region: String,
    sts: aws_sdk_sts::Client,
}

impl Meta {
    pub fn new(region: &str, sts: aws_sdk_sts::Client) -> Meta {
        Meta { region: region.to_string(), sts }
    }

    pub fn handles(type_: &str) -> bool {
        DATA.contains(&type_)
    }
}

/// The DNS suffix of a partition's endpoints.
fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso" => "c2s.ic.gov",
        "aws-iso-b" => "sc2s.sgov.gov",
        _ => "amazonaws.com",
    }
}

fn with(config: &Value, items: Vec<(&str, Value)>) -> Value {
    let mut m: Map = config.as_map().cloned().unwrap_or_default();
    for (k, v) in items {
        m.insert(k.to_string(), v);
    }
    Value::Map(m)
}

fn not_managed(type_: &str) -> ProviderError {
    ProviderError::new(format!("`{type_}` is a data source of the `aws` provider, not a resource"))
}

#[async_trait]
impl Provider for Meta {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match (mode, type_) {
            (Mode::Data, "aws_region") => Some(&REGION),
            (Mode::Data, "aws_partition") => Some(&PARTITION),
            (Mode::Data, "aws_caller_identity") => Some(&CALLER_IDENTITY),
            _ => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Data => DATA.to_vec(),
            Mode::Managed => Vec::new(),
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        let Some(schema) = self.schema(mode, type_) else { return vec![not_managed(type_)] };
        let mut errs = Vec::new();
        for (k, v) in config.as_map().into_iter().flatten() {
            if schema.attribute(k).is_some() && !schema.is_argument(k) {
                errs.push(ProviderError::attr(k, format!("`{k}` of `{type_}` is read-only: it cannot be set")));
            } else if schema.is_argument(k) && v.is_known() && !v.is_null() && v.as_str().is_none() {
                errs.push(ProviderError::attr(k, format!("`{k}` must be a string, not {}", v.type_name())));
            }
        }
        errs
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        items.iter().map(|_| Err(not_managed(type_))).collect()
    }

    async fn plan(&self, _: &OpContext, type_: &str, _: Option<&Value>, _: &Value) -> ProviderResult<Planned> {
        Err(not_managed(type_))
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        for i in 0..ops.len() {
            let _ = sink.send((i, ApplyOutcome::failed(None, not_managed(type_))));
        }
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        match type_ {
            "aws_region" => {
                // `name` (Terraform's AWS provider 5) or `region` (6) names
                // another region than the provider's.
                let region = config
                    .get_str("region")
                    .or_else(|| config.get_str("name"))
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&self.region)
                    .to_string();
                let partition = super::ec2::client::partition(&region);
                Ok(with(
                    config,
                    vec![
                        ("id", Value::str(&region)),
                        ("name", Value::str(&region)),
                        ("region", Value::str(&region)),
                        ("endpoint", Value::str(format!("ec2.{region}.{}", dns_suffix(partition)))),
                        ("description", Value::Null),
                    ],
                ))
            }
            "aws_partition" => {
                let partition = super::ec2::client::partition(&self.region);
                let suffix = dns_suffix(partition);
                let reverse: Vec<&str> = suffix.rsplit('.').collect();
                Ok(with(
                    config,
                    vec![
                        ("id", Value::str(partition)),
                        ("partition", Value::str(partition)),
                        ("dns_suffix", Value::str(suffix)),
                        ("reverse_dns_prefix", Value::str(reverse.join("."))),
                    ],
                ))
            }
            "aws_caller_identity" => {
                let out = self.sts.get_caller_identity().send().await.map_err(|e| {
                    let code = aws_sdk_sts::error::ProvideErrorMetadata::code(&e).map(str::to_string);
                    let msg = match code {
                        Some(c) => format!(
                            "GetCallerIdentity failed: {c}: {}",
                            aws_sdk_sts::error::ProvideErrorMetadata::message(&e).unwrap_or("(no message)")
                        ),
                        None => format!("GetCallerIdentity failed: {}", aws_sdk_sts::error::DisplayErrorContext(&e)),
                    };
                    ProviderError::new(msg)
                })?;
                let account = out.account().unwrap_or_default();
                Ok(with(
                    config,
                    vec![
                        ("id", Value::str(account)),
                        ("account_id", Value::str(account)),
                        ("arn", Value::str(out.arn().unwrap_or_default())),
                        ("user_id", Value::str(out.user_id().unwrap_or_default())),
                    ],
                ))
            }
            other => Err(ProviderError::new(format!("the `aws` provider has no data source `{other}`"))),
        }
    }
}
