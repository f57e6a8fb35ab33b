//! `data "aws_route53_zone"`: a hosted zone made outside the configuration
//! (the company's public domain, a shared private zone), found by
//! `zone_id`, or by `name` with `private_zone`, `vpc_id` and `tags` to tell
//! zones of one name apart.
//!
//! By name it costs one ListHostedZonesByName (zones come sorted by name,
//! so the zones of one name are together), a GetHostedZone per candidate
//! when `vpc_id` must be checked, and one ListTagsForResources when `tags`
//! must be. None or several matches is an error that says which.

use super::zones::{arn, tags_value};
use super::{ApiError, Route53, bare_id, names};
use crate::providers::{Attribute, ProviderError, ProviderResult, Schema};
use crate::value::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub(super) const TYPE: &str = "aws_route53_zone";

pub(super) static ZONE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("zone_id").computed(),
        Attribute::arg("name").computed(),
        Attribute::arg("private_zone"),
        Attribute::arg("vpc_id"),
        Attribute::arg("tags").computed(),
    ])
    .with_exported(&["id", "arn", "comment", "caller_reference", "name_servers", "resource_record_set_count"])
});

pub(super) fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    for k in ["zone_id", "name", "vpc_id"] {
        if let Some(v) = config.get(k).filter(|v| v.is_known() && !v.is_null())
            && v.as_str().is_none()
        {
            errs.push(ProviderError::attr(k, format!("`{k}` must be a string, not {}", v.type_name())));
        }
    }
    if let Some(v) = config.get("private_zone").filter(|v| v.is_known() && !v.is_null())
        && v.as_bool().is_none()
    {
        errs.push(ProviderError::attr("private_zone", format!("`private_zone` must be a bool, not {}", v.type_name())));
    }
    let given = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
    if config.is_known() && !given("zone_id") && !given("name") {
        errs.push(ProviderError::new("`aws_route53_zone` needs `zone_id` or `name`"));
    }
    errs
}

fn api(e: ApiError) -> ProviderError {
    e.into()
}

impl Route53 {
    pub(super) async fn read_zone_data(&self, config: &Value) -> ProviderResult<Value> {
        let wanted_tags: BTreeMap<String, String> = config
            .get("tags")
            .and_then(Value::as_map)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        let zone_id = match config.get_str("zone_id").filter(|s| !s.is_empty()) {
            Some(id) => bare_id(id),
            None => self.find_zone(config, &wanted_tags).await?,
        };
        let got = self.get_zone(&zone_id).await.map_err(api)?;
        let hz = got.hosted_zone();
        let name = hz.map(|z| names::from_api(z.name())).unwrap_or_default();
        let ns = self.name_servers(&zone_id, &name, &got).await.map_err(api)?;
        let tags =
            self.zone_tags(std::slice::from_ref(&zone_id)).await.map_err(api)?.remove(&zone_id).unwrap_or_default();
        let mut m: Map = config.as_map().cloned().unwrap_or_default();
        let s = |v: Option<&str>| v.map(Value::str).unwrap_or(Value::Null);
        m.insert("id".into(), Value::str(&zone_id));
        m.insert("zone_id".into(), Value::str(&zone_id));
        m.insert("name".into(), Value::String(name));
        m.insert("arn".into(), Value::String(arn(&zone_id)));
        m.insert("comment".into(), s(hz.and_then(|z| z.config()).and_then(|c| c.comment())));
        m.insert("caller_reference".into(), s(hz.map(|z| z.caller_reference())));
        m.insert(
            "private_zone".into(),
            Value::Bool(hz.and_then(|z| z.config()).map(|c| c.private_zone()).unwrap_or(false)),
        );
        m.insert(
            "resource_record_set_count".into(),
            hz.and_then(|z| z.resource_record_set_count()).map(|n| Value::Number(n as f64)).unwrap_or(Value::Null),
        );
        m.insert("name_servers".into(), Value::List(ns.into_iter().map(Value::String).collect()));
        m.insert("tags".into(), tags_value(&tags));
        Ok(Value::Map(m))
    }

    /// The one zone of `name` that is private or public as asked, in the
    /// VPC and with the tags asked for.
    async fn find_zone(&self, config: &Value, wanted_tags: &BTreeMap<String, String>) -> ProviderResult<String> {
        let name = names::normalize(config.get_str("name").unwrap_or_default());
        let private = config.get("private_zone").and_then(Value::as_bool).unwrap_or(false);
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(&name)
            .max_items(100)
            .send()
            .await
            .map_err(|e| api(ApiError::new("ListHostedZonesByName", &name, e)))?;
        let mut ids: Vec<String> = out
            .hosted_zones()
            .iter()
            .take_while(|z| names::from_api(z.name()) == name)
            .filter(|z| z.config().map(|c| c.private_zone()).unwrap_or(false) == private)
            .map(|z| bare_id(z.id()))
            .collect();
        if let Some(vpc) = config.get_str("vpc_id") {
            let mut in_vpc = Vec::new();
            for id in ids {
                let got = self.get_zone(&id).await.map_err(api)?;
                if got.vpcs().iter().any(|v| v.vpc_id() == Some(vpc)) {
                    in_vpc.push(id);
                }
            }
            ids = in_vpc;
        }
        if !wanted_tags.is_empty() && !ids.is_empty() {
            let tags = self.zone_tags(&ids).await.map_err(api)?;
            ids.retain(|id| {
                let have = tags.get(id);
                wanted_tags.iter().all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
            });
        }
        let kind = if private { "private" } else { "public" };
        match ids.len() {
            1 => Ok(ids.remove(0)),
            0 => Err(ProviderError::new(format!("no {kind} hosted zone `{name}` matches"))),
            n => Err(ProviderError::new(format!(
                "{n} {kind} hosted zones `{name}` match ({}); give `zone_id`, `vpc_id` or `tags`",
                ids.join(", ")
            ))),
        }
    }
}
