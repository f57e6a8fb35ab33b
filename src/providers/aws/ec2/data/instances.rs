//! `data "aws_instance"` and `data "aws_instances"`: hosts made outside the
//! configuration (another workspace, another tool), found by id, tags or
//! `filter` blocks with one DescribeInstances call.
//!
//! `aws_instance` insists on exactly one live host (terminated and
//! shutting-down ones, which AWS lists for a while, are left out) and
//! exports what berth's own `aws_instance` state holds. `aws_instances`
//! lists the hosts in `instance_state_names` (default `["running"]`, as in
//! Terraform), sorted by id so the lists are stable from run to run.

use super::super::client::{Ec2, Kind, filter, tags_arg};
use super::super::instance::{self as host, Found};
use super::{DataSource, criteria, filter_blocks, with};
use crate::providers::{Attribute, ProviderError, ProviderResult, Schema};
use crate::value::Value;
use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use std::sync::LazyLock;

static INSTANCE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("instance_id").computed(),
        Attribute::arg("instance_tags").computed(),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&[
        "id",
        "arn",
        "ami",
        "instance_type",
        "availability_zone",
        "subnet_id",
        "vpc_security_group_ids",
        "security_groups",
        "key_name",
        "iam_instance_profile",
        "private_ip",
        "secondary_private_ips",
        "public_ip",
        "private_dns",
        "public_dns",
        "instance_state",
        "primary_network_interface_id",
        "metadata_options",
        "monitoring",
        "source_dest_check",
        "tags",
    ])
});

static INSTANCES: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("instance_tags"),
        Attribute::arg("instance_state_names"),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&["id", "ids", "private_ips", "public_ips"])
});

/// `InstanceStateName` in the EC2 API reference.
const STATES: &[&str] = &["pending", "running", "shutting-down", "terminated", "stopping", "stopped"];

fn instance_tag_filters(config: &Value) -> ProviderResult<Vec<Filter>> {
    let tags = tags_arg(config.get("instance_tags")).map_err(|e| super::super::error::about("instance_tags", e))?;
    Ok(tags.into_iter().map(|(k, v)| filter(&format!("tag:{k}"), [v])).collect())
}

pub(super) struct AwsInstance;

#[async_trait]
impl DataSource for AwsInstance {
    fn name(&self) -> &'static str {
        "aws_instance"
    }

    fn schema(&self) -> &'static Schema {
        &INSTANCE
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("instance_id", Str), ("instance_tags", StrMap), ("filter", Blocks)]
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        let mut filters = filter_blocks(config)?;
        if let Some(id) = config.get_str("instance_id") {
            filters.push(filter("instance-id", [id]));
        }
        filters.extend(instance_tag_filters(config)?);
        if filters.is_empty() {
            return Err(ProviderError::new(
                "`aws_instance` needs `instance_id`, `instance_tags` or a `filter` block to find one host",
            ));
        }
        let mut live: Vec<Found> = host::describe(ec2, filters.clone())
            .await?
            .into_iter()
            .filter(|f| {
                f.0.state().and_then(|s| s.name()).is_none_or(|s| !matches!(s.as_str(), "terminated" | "shutting-down"))
            })
            .collect();
        let found = match live.len() {
            1 => live.remove(0),
            0 => return Err(ProviderError::new(format!("no live instance matches {}", criteria(&filters)))),
            n => {
                let ids: Vec<&str> = live.iter().filter_map(|f| f.0.instance_id()).collect();
                return Err(ProviderError::new(format!(
                    "{n} instances match {} ({}); narrow the search",
                    criteria(&filters),
                    ids.join(", ")
                )));
            }
        };
        let state = host::data_state(ec2, &found);
        let exported: Vec<(&str, Value)> = INSTANCE
            .exported_only
            .iter()
            .map(|k| (*k, state.get(k).cloned().unwrap_or(Value::Null)))
            .chain([("instance_id", state.get("id").cloned().unwrap_or(Value::Null))])
            .collect();
        Ok(with(config, exported))
    }
}

pub(super) struct AwsInstances;

#[async_trait]
impl DataSource for AwsInstances {
    fn name(&self) -> &'static str {
        "aws_instances"
    }

    fn schema(&self) -> &'static Schema {
        &INSTANCES
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("instance_tags", StrMap), ("instance_state_names", StrList), ("filter", Blocks)]
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        super::super::client::strings(config.get("instance_state_names"))
            .into_iter()
            .filter(|s| !STATES.contains(&s.as_str()))
            .map(|s| {
                ProviderError::attr(
                    "instance_state_names",
                    format!("`{s}` is not an instance state (one of {})", STATES.join(", ")),
                )
            })
            .collect()
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        let mut filters = filter_blocks(config)?;
        filters.extend(instance_tag_filters(config)?);
        let mut states = super::super::client::strings(config.get("instance_state_names"));
        if states.is_empty() {
            states.push("running".into());
        }
        filters.push(filter("instance-state-name", states));
        let mut found = host::describe(ec2, filters).await?;
        found.sort_by(|a, b| a.0.instance_id().cmp(&b.0.instance_id()));
        let list = |f: fn(&aws_sdk_ec2::types::Instance) -> Option<&str>| {
            Value::List(found.iter().filter_map(|i| f(&i.0)).filter(|s| !s.is_empty()).map(Value::str).collect())
        };
        Ok(with(
            config,
            vec![
                ("id", Value::str(&ec2.region)),
                ("ids", list(|i| i.instance_id())),
                ("private_ips", list(|i| i.private_ip_address())),
                ("public_ips", list(|i| i.public_ip_address())),
            ],
        ))
    }
}
