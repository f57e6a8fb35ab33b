//! `data "aws_availability_zones"`: the zones of the provider's region, so
//! a configuration spreads subnets over them without naming them.
//!
//! One DescribeAvailabilityZones call. `state` (usually `"available"`)
//! becomes a filter; `all_availability_zones` includes Local and Wavelength
//! zones the account has not opted into; `exclude_names` and
//! `exclude_zone_ids` are applied afterwards. Zones are sorted by name, so
//! `names[0]` is the same zone on every run.

use super::super::client::{Ec2, Kind, filter};
use super::super::error::sdk_error;
use super::{DataSource, filter_blocks, with};
use crate::providers::{Attribute, ProviderError, ProviderResult, Schema};
use crate::value::Value;
use async_trait::async_trait;
use std::sync::LazyLock;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("state"),
        Attribute::arg("all_availability_zones"),
        Attribute::arg("exclude_names"),
        Attribute::arg("exclude_zone_ids"),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&["id", "names", "zone_ids", "group_names"])
});

/// `AvailabilityZoneState` in the EC2 API reference.
const STATES: &[&str] = &["available", "information", "impaired", "unavailable", "constrained"];

pub(super) struct AwsAvailabilityZones;

#[async_trait]
impl DataSource for AwsAvailabilityZones {
    fn name(&self) -> &'static str {
        "aws_availability_zones"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("state", Str),
            ("all_availability_zones", Bool),
            ("exclude_names", StrList),
            ("exclude_zone_ids", StrList),
            ("filter", Blocks),
        ]
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        match config.get_str("state") {
            Some(s) if !STATES.contains(&s) => {
                vec![ProviderError::attr("state", format!("`state` must be one of {}, not `{s}`", STATES.join(", ")))]
            }
            _ => Vec::new(),
        }
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        let mut filters = filter_blocks(config)?;
        if let Some(s) = config.get_str("state") {
            filters.push(filter("state", [s]));
        }
        let all = config.get("all_availability_zones").and_then(Value::as_bool);
        let out = ec2
            .client
            .describe_availability_zones()
            .set_filters((!filters.is_empty()).then_some(filters))
            .set_all_availability_zones(all)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeAvailabilityZones", &e))?;
        let skip_names = super::super::client::strings(config.get("exclude_names"));
        let skip_ids = super::super::client::strings(config.get("exclude_zone_ids"));
        let mut zones: Vec<_> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_name().is_none_or(|n| !skip_names.iter().any(|s| s == n)))
            .filter(|z| z.zone_id().is_none_or(|n| !skip_ids.iter().any(|s| s == n)))
            .collect();
        zones.sort_by(|a, b| a.zone_name().cmp(&b.zone_name()));
        let list = |f: fn(&aws_sdk_ec2::types::AvailabilityZone) -> Option<&str>| {
            Value::List(zones.iter().filter_map(|z| f(z)).map(Value::str).collect())
        };
        let mut groups: Vec<Value> = zones.iter().filter_map(|z| z.group_name()).map(Value::str).collect();
        groups = super::super::client::sorted_unique(groups);
        Ok(with(
            config,
            vec![
                ("id", Value::str(&ec2.region)),
                ("names", list(|z| z.zone_name())),
                ("zone_ids", list(|z| z.zone_id())),
                ("group_names", Value::List(groups)),
            ],
        ))
    }
}
