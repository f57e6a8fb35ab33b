//! `aws_vpc_security_group_ingress_rule` and
//! `aws_vpc_security_group_egress_rule`: one AWS security group rule each
//! (one protocol and port range, one source), with the rule id (`sgr-…`) and
//! tags AWS gives such rules.
//!
//! The authorize call tags the rule with berth's ownership tags and the
//! attempt's token, so the next run after a crash finds it by DescribeTags
//! (the rules listing has no tag filters everywhere). The resend of an
//! authorize whose answer was lost meets its own rule
//! (`InvalidPermission.Duplicate`), found the same way. Everything but the
//! group changes in place (ModifySecurityGroupRules, tags by
//! CreateTags/DeleteTags); refresh reads a batch with one
//! DescribeSecurityGroupRules per 200 rule ids.

use super::client::{
    Ec2, Failure, Kind, Resource, TOKEN_TAG, apply_one_by_one, client_token, filter, id_of, owned_by_attempt,
    partial_state, refresh_batch, req_str, sync_tags, tags_arg, tags_changed, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, poll_for, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, SecurityGroupRule, SecurityGroupRuleRequest,
    SecurityGroupRuleUpdate, UserIdGroupPair,
};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("security_group_id").required().force_new(),
        Attribute::arg("ip_protocol").required(),
        Attribute::arg("from_port").number(),
        Attribute::arg("to_port").number(),
        Attribute::arg("cidr_ipv4"),
        Attribute::arg("cidr_ipv6"),
        Attribute::arg("referenced_security_group_id"),
        Attribute::arg("prefix_list_id"),
        Attribute::arg("description"),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "security_group_rule_id", "arn"])
});

/// The sources of a rule: exactly one is set.
const SOURCES: &[&str] = &["cidr_ipv4", "cidr_ipv6", "referenced_security_group_id", "prefix_list_id"];

/// One rule, ingress or egress.
pub(crate) struct AwsVpcSecurityGroupRule {
    egress: bool,
}

pub(crate) static INGRESS: AwsVpcSecurityGroupRule = AwsVpcSecurityGroupRule { egress: false };
pub(crate) static EGRESS: AwsVpcSecurityGroupRule = AwsVpcSecurityGroupRule { egress: true };

#[async_trait]
impl Resource for AwsVpcSecurityGroupRule {
    fn name(&self) -> &'static str {
        if self.egress { "aws_vpc_security_group_egress_rule" } else { "aws_vpc_security_group_ingress_rule" }
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("security_group_id", Str),
            ("ip_protocol", Str),
            ("cidr_ipv4", Str),
            ("cidr_ipv6", Str),
            ("referenced_security_group_id", Str),
            ("prefix_list_id", Str),
            ("description", Str),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        if let Some(p) = m.get("ip_protocol").and_then(protocol_name) {
            m.insert("ip_protocol".into(), Value::String(p));
        }
        // "-1" (all traffic) has no ports; AWS reports -1 for both.
        let all = m.get("ip_protocol").and_then(Value::as_str) == Some("-1");
        for k in ["from_port", "to_port"] {
            match m.get(k).map(Value::unmarked).cloned() {
                _ if all => {
                    m.insert(k.into(), Value::Number(-1.0));
                }
                Some(Value::String(s)) => {
                    if let Ok(n) = s.parse::<i64>() {
                        m.insert(k.into(), Value::Number(n as f64));
                    }
                }
                _ => {}
            }
        }
        if m.get("description").is_none_or(Value::is_null) {
            m.insert("description".into(), Value::str(""));
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
        let sources = SOURCES.iter().filter(|k| set(k)).count();
        if sources != 1 {
            errs.push(ProviderError::new(format!(
                "`{}` needs exactly one of {}, it has {sources}",
                self.name(),
                SOURCES.join(", ")
            )));
        }
        for (k, v6) in [("cidr_ipv4", false), ("cidr_ipv6", true)] {
            if let Some(c) = config.get_str(k) {
                let ok = matches!(
                    (c.parse::<ipnet::IpNet>(), v6),
                    (Ok(ipnet::IpNet::V4(_)), false) | (Ok(ipnet::IpNet::V6(_)), true)
                );
                if !ok {
                    errs.push(ProviderError::attr(k, format!("`{k}` is not a CIDR block of its kind: `{c}`")));
                }
            }
        }
        let all = config.get("ip_protocol").and_then(protocol_name).as_deref() == Some("-1");
        for k in ["from_port", "to_port"] {
            // A port known only later (`each.value`, another resource's
            // attribute) is set: only a missing or null one is an error.
            match config.get(k).map(Value::unmarked) {
                None | Some(Value::Null)
                    if !all && config.get("ip_protocol").is_some_and(Value::is_known) =>
                {
                    errs.push(ProviderError::attr(k, format!("`{k}` is required unless `ip_protocol` is \"-1\"")));
                }
                Some(Value::Number(n)) if n.fract() != 0.0 || !(-1.0..=65535.0).contains(n) => {
                    errs.push(ProviderError::attr(k, format!("`{k}` must be a port number (-1 to 65535), not {n}")));
                }
                _ => {}
            }
        }
        errs
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe(ec2, vec![filter("security-group-rule-id", ids)]),
            |r: &SecurityGroupRule| r.security_group_rule_id().map(str::to_string),
            |r, _prior| async move { Ok(state(&r)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, self.egress, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, _template: &Value) -> ProviderResult<Option<Value>> {
        let Some(id) = tagged_rule(ec2, ctx).await? else { return Ok(None) };
        Ok(describe(ec2, vec![filter("security-group-rule-id", [id])]).await?.first().map(state))
    }
}

/// The canonical protocol: AWS takes numbers and `all`, reports names.
fn protocol_name(v: &Value) -> Option<String> {
    let p = match v.unmarked() {
        Value::String(s) => s.to_ascii_lowercase(),
        Value::Number(n) => crate::value::format_number(*n),
        _ => return None,
    };
    Some(
        match p.as_str() {
            "all" | "-1" => "-1",
            "6" => "tcp",
            "17" => "udp",
            "1" => "icmp",
            "58" => "icmpv6",
            other => other,
        }
        .to_string(),
    )
}

async fn describe(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<SecurityGroupRule>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_security_group_rules().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(
            page.map_err(|e| sdk_error("DescribeSecurityGroupRules", &e))?.security_group_rules().iter().cloned(),
        );
    }
    Ok(out)
}

/// The rule one create attempt made, by its token tag: DescribeTags, since
/// not every EC2 endpoint filters rules by tag.
async fn tagged_rule(ec2: &Ec2, ctx: &OpContext) -> ProviderResult<Option<String>> {
    if ctx.token.is_empty() {
        return Ok(None);
    }
    let out = ec2
        .client
        .describe_tags()
        .filters(filter("key", [TOKEN_TAG]))
        .filters(filter("value", [client_token(ctx)]))
        .filters(filter("resource-type", ["security-group-rule"]))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTags", &e))?;
    Ok(out.tags().first().and_then(|t| t.resource_id()).map(str::to_string))
}

fn state(r: &SecurityGroupRule) -> Value {
    let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let port = |p: Option<i32>| Value::Number(f64::from(p.unwrap_or(-1)));
    let id = r.security_group_rule_id().unwrap_or_default();
    obj([
        ("id", Value::str(id)),
        ("security_group_rule_id", Value::str(id)),
        ("arn", s(r.security_group_rule_arn())),
        ("security_group_id", s(r.group_id())),
        ("ip_protocol", Value::str(protocol_name(&Value::str(r.ip_protocol().unwrap_or("-1"))).unwrap_or_default())),
        ("from_port", port(r.from_port())),
        ("to_port", port(r.to_port())),
        ("cidr_ipv4", s(r.cidr_ipv4())),
        ("cidr_ipv6", s(r.cidr_ipv6())),
        ("referenced_security_group_id", s(r.referenced_group_info().and_then(|g| g.group_id()))),
        ("prefix_list_id", s(r.prefix_list_id())),
        ("description", Value::str(r.description().unwrap_or_default())),
        ("tags", tags_value(r.tags())),
    ])
}

fn opt(v: &Value, k: &str) -> Option<String> {
    v.get_str(k).filter(|s| !s.is_empty()).map(str::to_string)
}

fn port(v: &Value, k: &str) -> Option<i32> {
    v.get(k).and_then(Value::as_f64).map(|n| n as i32)
}

fn permission(v: &Value) -> IpPermission {
    let desc = opt(v, "description");
    let mut p = IpPermission::builder().set_ip_protocol(opt(v, "ip_protocol"));
    if opt(v, "ip_protocol").as_deref() != Some("-1") {
        p = p.set_from_port(port(v, "from_port")).set_to_port(port(v, "to_port"));
    }
    if let Some(c) = opt(v, "cidr_ipv4") {
        p = p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(desc.clone()).build());
    }
    if let Some(c) = opt(v, "cidr_ipv6") {
        p = p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).set_description(desc.clone()).build());
    }
    if let Some(g) = opt(v, "referenced_security_group_id") {
        p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).set_description(desc.clone()).build());
    }
    if let Some(l) = opt(v, "prefix_list_id") {
        p = p.prefix_list_ids(PrefixListId::builder().prefix_list_id(l).set_description(desc).build());
    }
    p.build()
}

fn request(v: &Value) -> SecurityGroupRuleRequest {
    let all = opt(v, "ip_protocol").as_deref() == Some("-1");
    SecurityGroupRuleRequest::builder()
        .set_ip_protocol(opt(v, "ip_protocol"))
        .set_from_port(if all { None } else { port(v, "from_port") })
        .set_to_port(if all { None } else { port(v, "to_port") })
        .set_cidr_ipv4(opt(v, "cidr_ipv4"))
        .set_cidr_ipv6(opt(v, "cidr_ipv6"))
        .set_referenced_group_id(opt(v, "referenced_security_group_id"))
        .set_prefix_list_id(opt(v, "prefix_list_id"))
        .set_description(opt(v, "description"))
        .build()
}

async fn read(ec2: &Ec2, id: &str) -> ProviderResult<Option<Value>> {
    Ok(describe(ec2, vec![filter("security-group-rule-id", [id])]).await?.first().map(state))
}

async fn apply(ec2: &Ec2, egress: bool, op: ApplyOp) -> Result<Option<Value>, Failure> {
    let dir = if egress { "Egress" } else { "Ingress" };
    match op.kind {
        ChangeKind::Create { planned } => {
            let group = req_str(&planned, "security_group_id")?;
            let tags = tags_arg(planned.get("tags"))?;
            let spec = super::client::tag_spec(ResourceType::SecurityGroupRule, &op.ctx, &tags);
            let perm = permission(&planned);
            let action = format!("AuthorizeSecurityGroup{dir} on `{group}` for `{}`", op.ctx.addr);
            let answered: Result<Option<String>, (Option<String>, ProviderError)> = if egress {
                retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .authorize_security_group_egress()
                        .group_id(group)
                        .ip_permissions(perm.clone())
                        .tag_specifications(spec.clone())
                        .send()
                })
                .await
                .map(|o| o.security_group_rules().first().and_then(|r| r.security_group_rule_id()).map(str::to_string))
                .map_err(|e| (code_of(&e).map(str::to_string), sdk_error(&action, &e)))
            } else {
                retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .authorize_security_group_ingress()
                        .group_id(group)
                        .ip_permissions(perm.clone())
                        .tag_specifications(spec.clone())
                        .send()
                })
                .await
                .map(|o| o.security_group_rules().first().and_then(|r| r.security_group_rule_id()).map(str::to_string))
                .map_err(|e| (code_of(&e).map(str::to_string), sdk_error(&action, &e)))
            };
            let id = match answered {
                Ok(Some(id)) => id,
                Ok(None) => return Err(ProviderError::new(format!("{action} returned no rule id")).into()),
                // The resend of an authorize whose answer was lost meets the
                // rule it made, which carries this attempt's token.
                Err((Some(code), e)) if code == "InvalidPermission.Duplicate" => {
                    let mine = || async {
                        let Some(id) = tagged_rule(ec2, &op.ctx).await? else { return Ok(None) };
                        let found = describe(ec2, vec![filter("security-group-rule-id", [id.as_str()])]).await?;
                        Ok(found.first().filter(|r| owned_by_attempt(r.tags(), &op.ctx)).map(|_| id))
                    };
                    match poll_for(ec2.eventual.lost_answer(), &mine).await? {
                        Some(id) => id,
                        None => return Err(e.into()),
                    }
                }
                Err((_, e)) => return Err(e.into()),
            };
            match super::client::read_back(ec2, "security group rule", &id, || read(ec2, &id)).await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(partial_state(&planned, &id), e)),
            }
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let group = req_str(&prior, "security_group_id")?;
            let steps = async {
                let rule_changed = ["ip_protocol", "from_port", "to_port", "description"]
                    .iter()
                    .chain(SOURCES)
                    .any(|k| !prior.get(k).unwrap_or(&Value::Null).same_as(planned.get(k).unwrap_or(&Value::Null)));
                if rule_changed {
                    let update = SecurityGroupRuleUpdate::builder()
                        .security_group_rule_id(&id)
                        .security_group_rule(request(&planned))
                        .build();
                    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                        ec2.client
                            .modify_security_group_rules()
                            .group_id(group)
                            .security_group_rules(update.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| about("ip_protocol", sdk_error(&format!("ModifySecurityGroupRules `{id}`"), &e)))?;
                }
                if tags_changed(&prior, &planned) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                read(ec2, &id)
                    .await?
                    .ok_or_else(|| ProviderError::new(format!("security group rule `{id}` disappeared")))
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(Failure::with(read(ec2, &id).await.ok().flatten().unwrap_or_else(|| prior.clone()), e)),
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            let group = req_str(&prior, "security_group_id").map_err(|e| Failure::with(prior.clone(), e))?;
            let r = if egress {
                ec2.client
                    .revoke_security_group_egress()
                    .group_id(group)
                    .security_group_rule_ids(&id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (code_of(&e).map(str::to_string), sdk_error(&format!("RevokeSecurityGroupEgress `{id}`"), &e))
                    })
            } else {
                ec2.client
                    .revoke_security_group_ingress()
                    .group_id(group)
                    .security_group_rule_ids(&id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (code_of(&e).map(str::to_string), sdk_error(&format!("RevokeSecurityGroupIngress `{id}`"), &e))
                    })
            };
            match r {
                Ok(()) => Ok(None),
                Err((Some(c), _))
                    if matches!(
                        c.as_str(),
                        "InvalidSecurityGroupRuleId.NotFound" | "InvalidPermission.NotFound" | "InvalidGroup.NotFound"
                    ) =>
                {
                    Ok(None)
                }
                Err((_, e)) => Err(Failure::with(prior.clone(), e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_and_ports_unless_all_traffic() {
        let base = |extra: Vec<(&str, Value)>| {
            let mut m = obj([("security_group_id", Value::str("sg-1")), ("ip_protocol", Value::str("tcp"))])
                .as_map()
                .cloned()
                .unwrap();
            for (k, v) in extra {
                m.insert(k.into(), v);
            }
            Value::Map(m)
        };
        let ok = base(vec![
            ("from_port", Value::Number(443.0)),
            ("to_port", Value::Number(443.0)),
            ("cidr_ipv4", Value::str("0.0.0.0/0")),
        ]);
        assert!(INGRESS.validate(&ok).is_empty(), "{:?}", INGRESS.validate(&ok));
        let no_ports = base(vec![("cidr_ipv4", Value::str("0.0.0.0/0"))]);
        assert_eq!(INGRESS.validate(&no_ports).len(), 2);
        let mut all = base(vec![("cidr_ipv6", Value::str("::/0"))]);
        if let Value::Map(m) = &mut all {
            m.insert("ip_protocol".into(), Value::str("-1"));
        }
        assert!(EGRESS.validate(&all).is_empty());
        let wrong_kind = base(vec![
            ("from_port", Value::Number(1.0)),
            ("to_port", Value::Number(1.0)),
            ("cidr_ipv6", Value::str("10.0.0.0/8")),
        ]);
        assert_eq!(INGRESS.validate(&wrong_kind)[0].attribute.as_deref(), Some("cidr_ipv6"));
    }

    #[test]
    fn ports_known_only_later_are_set() {
        // `from_port = each.value` at validate time: unknown, not missing.
        let m = obj([
            ("security_group_id", Value::str("sg-1")),
            ("ip_protocol", Value::str("tcp")),
            ("from_port", Value::Unknown),
            ("to_port", Value::Unknown),
            ("cidr_ipv4", Value::str("0.0.0.0/0")),
        ]);
        assert!(INGRESS.validate(&m).is_empty(), "{:?}", INGRESS.validate(&m));
    }
}
