//! `aws_security_group_rule`: one rule of a security group, managed apart
//! from the group (whose `ingress`/`egress` blocks are then left unset).
//!
//! AWS stores a rule per source, so a rule with three CIDR blocks is three
//! AWS rules; berth flattens it as the group does ([`super::security_group`])
//! and authorizes them in one call. A rule has no tags in this form: the
//! group and the rule's own protocol, ports and sources identify it, and
//! berth's id is a digest of them. The resend of an authorize whose answer
//! was lost meets its own rules (`InvalidPermission.Duplicate`): fine when
//! every one of them is in place. Refresh reads every group of a batch with
//! one DescribeSecurityGroups per 200 groups; a rule with none of its
//! sources left is gone. Only `description` changes in place.

use super::client::{Ec2, Failure, Kind, Resource, apply_one_by_one, filter, id_of, req_str};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, retry_codes};
use super::security_group::{
    self as group, Atom, RuleKey, block_atoms, normalize_rules, permission, permission_atoms, rule_key,
};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
#[cfg(test)]
use crate::value::obj;
use crate::value::{Map, Value};
use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, SecurityGroup};
use sha2::Digest;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("type").required().force_new(),
        Attribute::arg("security_group_id").required().force_new(),
        Attribute::arg("protocol").required().force_new(),
        Attribute::arg("from_port").number().required().force_new(),
        Attribute::arg("to_port").number().required().force_new(),
        Attribute::arg("cidr_blocks").force_new(),
        Attribute::arg("ipv6_cidr_blocks").force_new(),
        Attribute::arg("source_security_group_id").computed().force_new(),
        Attribute::arg("self").force_new(),
        Attribute::arg("description"),
    ])
    .with_exported(&["id"])
});

pub(crate) struct AwsSecurityGroupRule;

#[async_trait]
impl Resource for AwsSecurityGroupRule {
    fn name(&self) -> &'static str {
        "aws_security_group_rule"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("type", Str),
            ("security_group_id", Str),
            ("cidr_blocks", StrList),
            ("ipv6_cidr_blocks", StrList),
            ("source_security_group_id", Str),
            ("self", Bool),
            ("description", Str),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        let dir = direction(m.get("type"))?;
        if let Some(dir) = dir {
            // The same canonical forms as a group's inline blocks.
            let block = normalize_rules(dir, Some(&Value::List(vec![as_block(m)])))?;
            if let Some(b) = block.as_list().and_then(|l| l.first()).and_then(Value::as_map) {
                for (from, to) in [
                    ("protocol", "protocol"),
                    ("from_port", "from_port"),
                    ("to_port", "to_port"),
                    ("cidr_blocks", "cidr_blocks"),
                    ("ipv6_cidr_blocks", "ipv6_cidr_blocks"),
                    ("self", "self"),
                    ("description", "description"),
                ] {
                    if let Some(v) = b.get(from) {
                        m.insert(to.into(), v.clone());
                    }
                }
            }
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let m = config.as_map().cloned().unwrap_or_default();
        match direction(m.get("type")) {
            Err(e) => vec![e],
            Ok(None) => Vec::new(),
            Ok(Some(dir)) => normalize_rules(dir, Some(&Value::List(vec![as_block(&m)])))
                .err()
                .map(|e| ProviderError { attribute: None, ..e })
                .into_iter()
                .collect(),
        }
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        let mut ids: Vec<String> =
            items.iter().filter_map(|(_, p)| p.get_str("security_group_id").map(str::to_string)).collect();
        ids.sort();
        ids.dedup();
        let mut groups: HashMap<String, SecurityGroup> = HashMap::new();
        for chunk in ids.chunks(super::client::MAX_FILTER_VALUES) {
            match group::describe(ec2, vec![filter("group-id", chunk.iter().cloned())]).await {
                Ok(found) => groups.extend(found.into_iter().filter_map(|g| Some((g.group_id()?.to_string(), g)))),
                Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        items
            .iter()
            .map(|(_, prior)| {
                id_of(prior)?;
                let Some(g) = prior.get_str("security_group_id").and_then(|id| groups.get(id)) else { return Ok(None) };
                Ok(as_it_is(g, prior))
            })
            .collect()
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    /// A rule carries no tags: with its configuration at hand, its rules in
    /// place are it.
    async fn adopt(&self, ec2: &Ec2, _ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let Some(id) = template.get_str("security_group_id") else { return Ok(None) };
        let found = group::describe(ec2, vec![filter("group-id", [id])]).await?;
        let Some(g) = found.first() else { return Ok(None) };
        let mut m = template.as_map().cloned().unwrap_or_default();
        m.insert("id".into(), Value::str(rule_id(template)));
        let whole = Value::Map(m);
        Ok(as_it_is(g, &whole).filter(|v| v.same_as(&whole)))
    }

    fn adopt_looks_again(&self) -> bool {
        false
    }
}

fn direction(v: Option<&Value>) -> ProviderResult<Option<&'static str>> {
    match v.map(Value::unmarked) {
        Some(Value::String(s)) if s == "ingress" => Ok(Some("ingress")),
        Some(Value::String(s)) if s == "egress" => Ok(Some("egress")),
        None | Some(Value::Null | Value::Unknown) => Ok(None),
        Some(other) => Err(ProviderError::attr("type", format!("`type` must be `ingress` or `egress`, not {other}"))),
    }
}

/// The rule as an inline `ingress`/`egress` block of its group.
fn as_block(m: &Map) -> Value {
    let mut b = Map::new();
    for k in ["protocol", "from_port", "to_port", "cidr_blocks", "ipv6_cidr_blocks", "self", "description"] {
        if let Some(v) = m.get(k) {
            b.insert(k.into(), v.clone());
        }
    }
    if let Some(v) = m.get("source_security_group_id").filter(|v| !v.is_null()) {
        b.insert("security_groups".into(), Value::List(vec![v.clone()]));
    }
    Value::Map(b)
}

fn atoms(v: &Value) -> BTreeSet<Atom> {
    let own = v.get_str("security_group_id").unwrap_or_default();
    let m = v.as_map().cloned().unwrap_or_default();
    block_atoms(&as_block(&m), own)
}

fn is_ingress(v: &Value) -> bool {
    v.get_str("type") != Some("egress")
}

/// berth's id of a rule: its group, direction, protocol, ports and
/// sources, digested (AWS gives this kind of rule no id).
fn rule_id(v: &Value) -> String {
    let keys: BTreeSet<RuleKey> = atoms(v).iter().map(rule_key).collect();
    let text = format!("{}\n{}\n{keys:?}", v.get_str("security_group_id").unwrap_or_default(), is_ingress(v));
    format!("sgrule-{}", &hex::encode(sha2::Sha256::digest(text.as_bytes()))[..20])
}

/// The rule as group `g` has it: the sources still in place (none: gone),
/// the description AWS shows.
fn as_it_is(g: &SecurityGroup, prior: &Value) -> Option<Value> {
    let own = g.group_id().unwrap_or_default();
    let perms = if is_ingress(prior) { g.ip_permissions() } else { g.ip_permissions_egress() };
    let have: HashMap<RuleKey, Atom> = permission_atoms(perms, own).into_iter().map(|a| (rule_key(&a), a)).collect();
    let mine: Vec<Atom> = atoms(prior).iter().filter_map(|a| have.get(&rule_key(a)).cloned()).collect();
    if mine.is_empty() {
        return None;
    }
    let wanted = atoms(prior);
    let mut m = prior.as_map().cloned().unwrap_or_default();
    if mine.len() != wanted.len() {
        // Sources removed outside berth: the rule as it is differs, and the
        // plan replaces it.
        let keep: BTreeSet<RuleKey> = mine.iter().map(rule_key).collect();
        for (k, v4) in [("cidr_blocks", true), ("ipv6_cidr_blocks", false)] {
            let list: Vec<Value> = super::client::strings(prior.get(k))
                .into_iter()
                .filter(|c| {
                    wanted.iter().any(|a| {
                        keep.contains(&rule_key(a))
                            && matches!((&a.source, v4), (group::Source::V4(x), true) | (group::Source::V6(x), false) if x == c)
                    })
                })
                .map(Value::String)
                .collect();
            m.insert(k.into(), Value::List(list));
        }
    }
    let description = mine.first().map(|a| a.description.clone()).unwrap_or_default();
    m.insert("description".into(), Value::String(description));
    Some(Value::Map(m))
}

fn perms(v: &Value) -> Vec<IpPermission> {
    let own = v.get_str("security_group_id").unwrap_or_default();
    atoms(v).iter().map(|a| permission(a, own)).collect()
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let group_id = req_str(&planned, "security_group_id")?;
            let grant = perms(&planned);
            let ingress = is_ingress(&planned);
            let action =
                format!("AuthorizeSecurityGroup{} on `{group_id}`", if ingress { "Ingress" } else { "Egress" });
            let failed = |code: Option<&str>, e: ProviderError| (code.map(str::to_string), e);
            let r = if ingress {
                retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .authorize_security_group_ingress()
                        .group_id(group_id)
                        .set_ip_permissions(Some(grant.clone()))
                        .send()
                })
                .await
                .map(|_| ())
                .map_err(|e| failed(code_of(&e), sdk_error(&action, &e)))
            } else {
                retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                    ec2.client
                        .authorize_security_group_egress()
                        .group_id(group_id)
                        .set_ip_permissions(Some(grant.clone()))
                        .send()
                })
                .await
                .map(|_| ())
                .map_err(|e| failed(code_of(&e), sdk_error(&action, &e)))
            };
            let mut state = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
            state.insert("id".into(), Value::str(rule_id(&planned)));
            let state = Value::Map(state);
            match r {
                Ok(()) => Ok(Some(state)),
                // The resend of an authorize whose answer was lost meets its
                // own rules: fine when all of them are in place.
                Err((Some(code), e)) if code == "InvalidPermission.Duplicate" => {
                    let found = group::describe(ec2, vec![filter("group-id", [group_id])]).await?;
                    if found.first().and_then(|g| as_it_is(g, &state)).is_some_and(|v| v.same_as(&state)) {
                        return Ok(Some(state));
                    }
                    Err(about("type", e).into())
                }
                Err((_, e)) => Err(about("type", e).into()),
            }
        }
        ChangeKind::Update { prior, planned } => {
            // Only the description changes in place.
            let group_id = req_str(&prior, "security_group_id")?;
            let described = perms(&planned);
            let r = if is_ingress(&planned) {
                ec2.client
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(described))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&format!("UpdateSecurityGroupRuleDescriptionsIngress on `{group_id}`"), &e))
            } else {
                ec2.client
                    .update_security_group_rule_descriptions_egress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(described))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&format!("UpdateSecurityGroupRuleDescriptionsEgress on `{group_id}`"), &e))
            };
            r.map_err(|e| Failure::with(prior.clone(), about("description", e)))?;
            let mut m = prior.as_map().cloned().unwrap_or_default();
            m.insert("description".into(), planned.get("description").cloned().unwrap_or(Value::Null));
            Ok(Some(Value::Map(m)))
        }
        ChangeKind::Delete { prior } => {
            let group_id = req_str(&prior, "security_group_id").map_err(|e| Failure::with(prior.clone(), e))?;
            let revoke = perms(&prior);
            let r = if is_ingress(&prior) {
                ec2.client
                    .revoke_security_group_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(revoke))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            code_of(&e).map(str::to_string),
                            sdk_error(&format!("RevokeSecurityGroupIngress on `{group_id}`"), &e),
                        )
                    })
            } else {
                ec2.client
                    .revoke_security_group_egress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(revoke))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            code_of(&e).map(str::to_string),
                            sdk_error(&format!("RevokeSecurityGroupEgress on `{group_id}`"), &e),
                        )
                    })
            };
            match r {
                Ok(()) => Ok(None),
                // A rule (or group) already gone is what a revoke wants.
                Err((Some(c), _)) if matches!(c.as_str(), "InvalidPermission.NotFound" | "InvalidGroup.NotFound") => {
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

    fn rule(cidrs: &[&str]) -> Value {
        obj([
            ("type", Value::str("ingress")),
            ("security_group_id", Value::str("sg-1")),
            ("protocol", Value::str("tcp")),
            ("from_port", Value::Number(22.0)),
            ("to_port", Value::Number(22.0)),
            ("cidr_blocks", Value::List(cidrs.iter().map(|c| Value::str(*c)).collect())),
        ])
    }

    #[test]
    fn ids_ignore_order_and_description() {
        let mut a = rule(&["10.0.0.0/8", "192.168.0.0/16"]);
        let b = rule(&["192.168.0.0/16", "10.0.0.0/8"]);
        assert_eq!(rule_id(&a), rule_id(&b));
        if let Value::Map(m) = &mut a {
            m.insert("description".into(), Value::str("ssh"));
        }
        assert_eq!(rule_id(&a), rule_id(&b));
        assert_ne!(rule_id(&a), rule_id(&rule(&["10.0.0.0/8"])));
    }

    #[test]
    fn a_rule_needs_a_direction_and_a_source() {
        let mut bad = rule(&[]);
        if let Value::Map(m) = &mut bad {
            m.insert("type".into(), Value::str("inbound"));
        }
        assert_eq!(AwsSecurityGroupRule.validate(&bad)[0].attribute.as_deref(), Some("type"));
        assert!(!AwsSecurityGroupRule.validate(&rule(&[])).is_empty(), "no source");
        assert!(AwsSecurityGroupRule.validate(&rule(&["10.0.0.0/8"])).is_empty());
    }
}
