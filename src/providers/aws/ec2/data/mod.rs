//! The EC2 data sources: `aws_ami`, `aws_vpc` and `aws_subnet` here,
//! `aws_availability_zones`, `aws_instance`, `aws_instances` and
//! `aws_security_group` in their own files, each a [`DataSource`] row of
//! [`SOURCES`].
//!
//! Each turns its arguments into EC2 filters (`filter { name, values }`
//! blocks pass through as they are), makes one Describe call and insists
//! on exactly one result: zero or several matches is an error that says
//! which, rather than a silent pick. `aws_ami` with `most_recent = true`
//! picks the newest of several, as in Terraform.

mod availability_zones;
mod instances;
mod security_group;

use super::client::{Ec2, Kind, filter, tags_arg, tags_value};
use super::error::sdk_error;
use super::subnet::{describe_subnets, subnet_state};
use super::vpc::vpc_dns;
use crate::providers::{Attribute, ProviderError, ProviderResult, Schema};
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, Image};
use std::sync::LazyLock;

/// One EC2 data source: the row the router dispatches reads to.
#[async_trait]
pub(crate) trait DataSource: Sync {
    fn name(&self) -> &'static str;
    fn schema(&self) -> &'static Schema;
    /// The known arguments' types, checked before anything else.
    fn kinds(&self) -> &'static [(&'static str, Kind)];
    /// Checks beyond argument types and `filter` blocks.
    fn validate(&self, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }
    /// Reads it: the configuration with the exported attributes added.
    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value>;
}

/// The data sources, one row each.
static SOURCES: &[&dyn DataSource] = &[
    &AwsAmi,
    &AwsVpc,
    &AwsSubnet,
    &availability_zones::AwsAvailabilityZones,
    &instances::AwsInstance,
    &instances::AwsInstances,
    &security_group::AwsSecurityGroup,
];

/// The data source of a type.
pub(crate) fn find(type_: &str) -> Option<&'static dyn DataSource> {
    SOURCES.iter().copied().find(|d| d.name() == type_)
}

/// Every data source's name.
pub(crate) fn names() -> Vec<&'static str> {
    SOURCES.iter().map(|d| d.name()).collect()
}

static AMI: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("owners"),
        Attribute::arg("filter").block(),
        Attribute::arg("most_recent"),
        Attribute::arg("name_regex"),
        Attribute::arg("executable_users"),
    ])
    .with_exported(&[
        "id",
        "arn",
        "image_id",
        "name",
        "architecture",
        "creation_date",
        "description",
        "owner_id",
        "root_device_name",
        "root_device_type",
        "virtualization_type",
        "platform_details",
        "state",
        "tags",
    ])
});

static VPC: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("id").computed(),
        Attribute::arg("cidr_block").computed(),
        Attribute::arg("default").computed(),
        Attribute::arg("tags").computed(),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&["arn", "owner_id", "enable_dns_support", "enable_dns_hostnames", "state"])
});

static SUBNET: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("id").computed(),
        Attribute::arg("vpc_id").computed(),
        Attribute::arg("cidr_block").computed(),
        Attribute::arg("availability_zone").computed(),
        Attribute::arg("tags").computed(),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&[
        "arn",
        "owner_id",
        "map_public_ip_on_launch",
        "available_ip_address_count",
        "state",
        "availability_zone_id",
        "ipv6_cidr_block",
        "ipv6_cidr_block_association_id",
        "assign_ipv6_address_on_creation",
    ])
});

/// The `filter` blocks as EC2 filters.
pub(super) fn filter_blocks(config: &Value) -> ProviderResult<Vec<Filter>> {
    let mut out = Vec::new();
    let blocks = match config.get("filter").map(Value::unmarked) {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::List(l)) => l.clone(),
        Some(m @ Value::Map(_)) => vec![m.clone()],
        Some(other) => {
            return Err(ProviderError::attr("filter", format!("`filter` must be blocks, not {}", other.type_name())));
        }
    };
    for b in blocks {
        let name = match b.get("name").map(Value::unmarked) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(ProviderError::attr("filter", "each `filter` block requires a `name` string")),
        };
        let values = match b.get("values").map(Value::unmarked) {
            Some(Value::List(l)) if !l.is_empty() => l
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ProviderError::attr("filter", format!("`filter` `{name}`: `values` must be known strings"))
                    })
                })
                .collect::<ProviderResult<Vec<_>>>()?,
            _ => {
                return Err(ProviderError::attr(
                    "filter",
                    format!("`filter` `{name}` requires a non-empty `values` list"),
                ));
            }
        };
        out.push(filter(&name, values));
    }
    Ok(out)
}

pub(super) fn tag_filters(config: &Value) -> ProviderResult<Vec<Filter>> {
    let tags = tags_arg(config.get("tags"))?;
    Ok(tags.into_iter().map(|(k, v)| filter(&format!("tag:{k}"), [v])).collect())
}

/// Checks a data source's configuration: its `filter` blocks and its own
/// rules. Unknown configurations wait for the read.
pub(crate) fn validate(source: &dyn DataSource, config: &Value) -> Vec<ProviderError> {
    if !config.is_known() {
        return Vec::new();
    }
    let mut errs: Vec<ProviderError> = filter_blocks(config).err().into_iter().collect();
    errs.extend(source.validate(config));
    errs
}

fn known(config: &Value) -> ProviderResult<()> {
    match config.as_map().and_then(|m| m.iter().find(|(_, v)| !v.is_known())) {
        Some((k, _)) => Err(ProviderError::attr(k, format!("`{k}` must be known to read this data source"))),
        None => Ok(()),
    }
}

pub(super) fn with(config: &Value, items: Vec<(&str, Value)>) -> Value {
    let mut m: Map = config.as_map().cloned().unwrap_or_default();
    for (k, v) in items {
        m.insert(k.to_string(), v);
    }
    Value::Map(m)
}

pub(super) fn str_or_null(s: Option<&str>) -> Value {
    s.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null)
}

pub(super) fn criteria(filters: &[Filter]) -> String {
    if filters.is_empty() {
        return "no filters".into();
    }
    filters
        .iter()
        .map(|f| format!("{}={}", f.name().unwrap_or_default(), f.values().join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn read_ami(ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
    let owners = super::client::strings(config.get("owners"));
    let users = super::client::strings(config.get("executable_users"));
    let filters = filter_blocks(config)?;
    let mut images: Vec<Image> = Vec::new();
    let mut pages = ec2
        .client
        .describe_images()
        .set_owners(Some(owners.clone()))
        .set_executable_users((!users.is_empty()).then_some(users))
        .set_filters(Some(filters.clone()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        images.extend(page.map_err(|e| sdk_error("DescribeImages", &e))?.images().iter().cloned());
    }
    if let Some(re) = config.get_str("name_regex") {
        let re = regex::Regex::new(re).map_err(|e| {
            ProviderError::attr("name_regex", format!("`name_regex` is not a valid regular expression: {e}"))
        })?;
        images.retain(|i| i.name().is_some_and(|n| re.is_match(n)));
    }
    let most_recent = config.get("most_recent").and_then(Value::as_bool) == Some(true);
    let image = match images.len() {
        0 => {
            return Err(ProviderError::new(format!(
                "no AMI owned by `{}` matches {}",
                owners.join(", "),
                criteria(&filters)
            )));
        }
        1 => images.remove(0),
        n if !most_recent => {
            return Err(ProviderError::attr(
                "most_recent",
                format!("{n} AMIs match {}; narrow the filters or set `most_recent = true`", criteria(&filters)),
            ));
        }
        _ => {
            // ISO 8601 timestamps sort as strings.
            images.sort_by(|a, b| a.creation_date().cmp(&b.creation_date()));
            images.pop().unwrap_or_else(|| unreachable!("several images"))
        }
    };
    let id = image.image_id().unwrap_or_default();
    Ok(with(
        config,
        vec![
            ("id", Value::str(id)),
            ("image_id", Value::str(id)),
            ("arn", Value::str(format!("arn:{}:ec2:{}::image/{id}", ec2.partition, ec2.region))),
            ("name", str_or_null(image.name())),
            ("architecture", str_or_null(image.architecture().map(|a| a.as_str()))),
            ("creation_date", str_or_null(image.creation_date())),
            ("description", str_or_null(image.description())),
            ("owner_id", str_or_null(image.owner_id())),
            ("root_device_name", str_or_null(image.root_device_name())),
            ("root_device_type", str_or_null(image.root_device_type().map(|a| a.as_str()))),
            ("virtualization_type", str_or_null(image.virtualization_type().map(|a| a.as_str()))),
            ("platform_details", str_or_null(image.platform_details())),
            ("state", str_or_null(image.state().map(|a| a.as_str()))),
            ("tags", tags_value(image.tags())),
        ],
    ))
}

pub(super) fn exactly_one<T>(what: &str, filters: &[Filter], mut found: Vec<T>) -> ProviderResult<T> {
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ProviderError::new(format!("no {what} matches {}", criteria(filters)))),
        n => Err(ProviderError::new(format!("{n} {what}s match {}; narrow the search", criteria(filters)))),
    }
}

async fn read_vpc(ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
    let mut filters = filter_blocks(config)?;
    if let Some(id) = config.get_str("id") {
        filters.push(filter("vpc-id", [id]));
    }
    if let Some(c) = config.get_str("cidr_block") {
        filters.push(filter("cidr", [c]));
    }
    if let Some(d) = config.get("default").and_then(Value::as_bool) {
        filters.push(filter("is-default", [d.to_string()]));
    }
    filters.extend(tag_filters(config)?);
    let mut vpcs = Vec::new();
    let mut pages = ec2.client.describe_vpcs().set_filters(Some(filters.clone())).into_paginator().send();
    while let Some(page) = pages.next().await {
        vpcs.extend(page.map_err(|e| sdk_error("DescribeVpcs", &e))?.vpcs().iter().cloned());
    }
    let vpc = exactly_one("VPC", &filters, vpcs)?;
    let id = vpc.vpc_id().unwrap_or_default();
    let owner = vpc.owner_id().unwrap_or_default();
    let (dns_support, dns_hostnames) = vpc_dns(ec2, id).await?;
    Ok(with(
        config,
        vec![
            ("id", Value::str(id)),
            ("arn", Value::str(ec2.arn(owner, "vpc", id))),
            ("cidr_block", str_or_null(vpc.cidr_block())),
            ("default", Value::Bool(vpc.is_default().unwrap_or(false))),
            ("tags", tags_value(vpc.tags())),
            ("owner_id", Value::str(owner)),
            ("enable_dns_support", Value::Bool(dns_support)),
            ("enable_dns_hostnames", Value::Bool(dns_hostnames)),
            ("state", str_or_null(vpc.state().map(|s| s.as_str()))),
        ],
    ))
}

async fn read_subnet(ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
    let mut filters = filter_blocks(config)?;
    for (arg, name) in [
        ("id", "subnet-id"),
        ("vpc_id", "vpc-id"),
        ("cidr_block", "cidr-block"),
        ("availability_zone", "availability-zone"),
    ] {
        if let Some(v) = config.get_str(arg) {
            filters.push(filter(name, [v]));
        }
    }
    filters.extend(tag_filters(config)?);
    let subnet = exactly_one("subnet", &filters, describe_subnets(ec2, filters.clone()).await?)?;
    let mut m: Map = config.as_map().cloned().unwrap_or_default();
    m.extend(subnet_state(ec2, &subnet).as_map().cloned().unwrap_or_default());
    m.insert("owner_id".into(), str_or_null(subnet.owner_id()));
    let count = subnet.available_ip_address_count().map(|n| Value::Number(n as f64)).unwrap_or(Value::Null);
    m.insert("available_ip_address_count".into(), count);
    m.insert("state".into(), str_or_null(subnet.state().map(|s| s.as_str())));
    Ok(Value::Map(m))
}

/// Reads a data source, once every argument is known.
pub(crate) async fn read(ec2: &Ec2, source: &dyn DataSource, config: &Value) -> ProviderResult<Value> {
    known(config)?;
    source.read(ec2, config).await
}

struct AwsAmi;

#[async_trait]
impl DataSource for AwsAmi {
    fn name(&self) -> &'static str {
        "aws_ami"
    }

    fn schema(&self) -> &'static Schema {
        &AMI
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("owners", StrList),
            ("filter", Blocks),
            ("most_recent", Bool),
            ("name_regex", Str),
            ("executable_users", StrList),
        ]
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if let Some(re) = config.get_str("name_regex")
            && let Err(e) = regex::Regex::new(re)
        {
            errs.push(ProviderError::attr(
                "name_regex",
                format!("`name_regex` is not a valid regular expression: {e}"),
            ));
        }
        if config.get("owners").and_then(Value::as_list).is_none_or(|l| l.is_empty()) {
            errs.push(ProviderError::attr(
                "owners",
                "`aws_ami` requires `owners` (for example `[\"amazon\"]` or an account ID)",
            ));
        }
        errs
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        read_ami(ec2, config).await
    }
}

struct AwsVpc;

#[async_trait]
impl DataSource for AwsVpc {
    fn name(&self) -> &'static str {
        "aws_vpc"
    }

    fn schema(&self) -> &'static Schema {
        &VPC
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("id", Str), ("cidr_block", Str), ("default", Bool), ("tags", StrMap), ("filter", Blocks)]
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        read_vpc(ec2, config).await
    }
}

struct AwsSubnet;

#[async_trait]
impl DataSource for AwsSubnet {
    fn name(&self) -> &'static str {
        "aws_subnet"
    }

    fn schema(&self) -> &'static Schema {
        &SUBNET
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("id", Str),
            ("vpc_id", Str),
            ("cidr_block", Str),
            ("availability_zone", Str),
            ("tags", StrMap),
            ("filter", Blocks),
        ]
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        read_subnet(ec2, config).await
    }
}
