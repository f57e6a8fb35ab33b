//! `data "aws_security_group"`: one security group found by id, name, VPC,
//! tags or `filter` blocks (one DescribeSecurityGroups call); none or
//! several is an error that says which.

use super::super::client::{Ec2, Kind, filter, tags_value};
use super::super::security_group::describe;
use super::{DataSource, exactly_one, filter_blocks, str_or_null, tag_filters, with};
use crate::providers::{Attribute, ProviderResult, Schema};
use crate::value::Value;
use async_trait::async_trait;
use std::sync::LazyLock;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("id").computed(),
        Attribute::arg("name").computed(),
        Attribute::arg("vpc_id").computed(),
        Attribute::arg("tags").computed(),
        Attribute::arg("filter").block(),
    ])
    .with_exported(&["arn", "description", "owner_id"])
});

pub(super) struct AwsSecurityGroup;

#[async_trait]
impl DataSource for AwsSecurityGroup {
    fn name(&self) -> &'static str {
        "aws_security_group"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[("id", Str), ("name", Str), ("vpc_id", Str), ("tags", StrMap), ("filter", Blocks)]
    }

    async fn read(&self, ec2: &Ec2, config: &Value) -> ProviderResult<Value> {
        let mut filters = filter_blocks(config)?;
        for (arg, name) in [("id", "group-id"), ("name", "group-name"), ("vpc_id", "vpc-id")] {
            if let Some(v) = config.get_str(arg) {
                filters.push(filter(name, [v]));
            }
        }
        filters.extend(tag_filters(config)?);
        let g = exactly_one("security group", &filters, describe(ec2, filters.clone()).await?)?;
        let id = g.group_id().unwrap_or_default();
        let owner = g.owner_id().unwrap_or_default();
        let arn = g.security_group_arn().map(str::to_string).unwrap_or_else(|| ec2.arn(owner, "security-group", id));
        Ok(with(
            config,
            vec![
                ("id", Value::str(id)),
                ("arn", Value::str(arn)),
                ("name", str_or_null(g.group_name())),
                ("description", str_or_null(g.description())),
                ("vpc_id", str_or_null(g.vpc_id())),
                ("owner_id", str_or_null(g.owner_id())),
                ("tags", tags_value(g.tags())),
            ],
        ))
    }
}
