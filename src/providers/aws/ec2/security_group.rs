//! `aws_security_group`, with its `ingress` and `egress` rules managed as
//! sets.
//!
//! AWS stores rules as atoms (one protocol and port range, one source), and
//! groups them freely when it reports them. berth flattens both the
//! configuration and what AWS reports into atoms, authorizes the atoms only
//! the configuration has and revokes the atoms only AWS has, so adding one
//! rule is one AuthorizeSecurityGroupIngress of that rule. On refresh the
//! atoms are grouped back into blocks shaped like the prior state's, so a
//! group nobody touched plans as no change.
//!
//! As in Terraform, the allow-all egress rule AWS adds to a new group is
//! revoked unless the configuration has it, and after the create a
//! direction without blocks is left alone: standalone
//! `aws_security_group_rule` and `aws_vpc_security_group_*_rule` resources
//! (or another tool) manage it. `ingress = []` means no rules.
//!
//! AWS tells rules apart by protocol, ports and source; the description is
//! not part of a rule's identity (authorizing a rule that differs only in
//! its description is `InvalidPermission.Duplicate`). So a change of
//! description alone goes through UpdateSecurityGroupRuleDescriptions*, and
//! other changes authorize the new rules before they revoke the old ones:
//! traffic the old and new configurations both allow never loses its rule.
//! A failed change leaves the old rules in place, and the group is reported
//! as a fresh read shows it.

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, client_token, filter,
    id_of, one_id, opt_str, partial_state, refresh_batch, req_str, sync_tags, tag_spec, tags_arg, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, poll_for, retry_codes};
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, UserIdGroupPair};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("name").computed().force_new(),
        Attribute::arg("description").force_new(),
        Attribute::arg("vpc_id").computed().force_new(),
        Attribute::arg("ingress").block().computed(),
        Attribute::arg("egress").block().computed(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "arn", "owner_id"])
});

pub(crate) struct AwsSecurityGroup;

#[async_trait]
impl Resource for AwsSecurityGroup {
    fn name(&self) -> &'static str {
        "aws_security_group"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("name", Str),
            ("description", Str),
            ("vpc_id", Str),
            ("ingress", Blocks),
            ("egress", Blocks),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        client::default(m, "description", Value::str("Managed by berth"));
        // A direction without blocks is left alone (standalone rule
        // resources may manage it); `ingress = []` means no rules.
        for dir in ["ingress", "egress"] {
            if m.get(dir).is_some_and(|v| !v.is_null()) {
                let rules = normalize_rules(dir, m.get(dir))?;
                m.insert(dir.into(), rules);
            }
        }
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        ["ingress", "egress"].into_iter().filter_map(|d| normalize_rules(d, config.get(d)).err()).collect()
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |ids| describe(ec2, vec![filter("group-id", ids)]),
            |g: &SecurityGroup| g.group_id().map(str::to_string),
            |g, prior| async move { Ok(state(ec2, &g, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("security group", ctx, found, |g| g.group_id().unwrap_or_default().to_string())?
            .map(|g| state(ec2, &g, template)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    V4(String),
    V6(String),
    Group(String),
    /// The group itself, written `self = true`.
    SelfRef,
}

/// One rule as AWS stores it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Atom {
    pub(crate) protocol: String,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) source: Source,
    pub(crate) description: String,
}

const RULE_KEYS: &[&str] =
    &["from_port", "to_port", "protocol", "cidr_blocks", "ipv6_cidr_blocks", "security_groups", "self", "description"];

/// The canonical protocol name: AWS accepts numbers and `all`, reports names.
fn normalize_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "all" | "-1" => "-1".into(),
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "icmpv6".into(),
        other => other.to_string(),
    }
}

fn port(dir: &str, key: &str, v: Option<&Value>) -> ProviderResult<Value> {
    match v.map(Value::unmarked) {
        Some(Value::Number(n)) if n.fract() == 0.0 && (-1.0..=65535.0).contains(n) => Ok(Value::Number(*n)),
        Some(Value::String(s)) if s.parse::<i64>().is_ok_and(|n| (-1..=65535).contains(&n)) => {
            Ok(Value::Number(s.parse::<i64>().unwrap_or_default() as f64))
        }
        Some(Value::Unknown) => Ok(Value::Unknown),
        None | Some(Value::Null) => Err(ProviderError::attr(dir, format!("each `{dir}` block requires `{key}`"))),
        Some(other) => {
            Err(ProviderError::attr(dir, format!("`{dir}.{key}` must be a port number (-1 to 65535), not {other}")))
        }
    }
}

fn string_set(dir: &str, key: &str, v: Option<&Value>) -> ProviderResult<Value> {
    match v.map(Value::unmarked) {
        None | Some(Value::Null) => Ok(Value::List(Vec::new())),
        Some(Value::Unknown) => Ok(Value::Unknown),
        Some(Value::List(l)) => {
            if let Some(bad) = l.iter().find(|i| !matches!(i.unmarked(), Value::String(_) | Value::Unknown)) {
                return Err(ProviderError::attr(
                    dir,
                    format!("`{dir}.{key}` must list strings, not {}", bad.type_name()),
                ));
            }
            if key != "security_groups"
                && let Some(bad) = l.iter().filter_map(Value::as_str).find(|s| s.parse::<ipnet::IpNet>().is_err())
            {
                return Err(ProviderError::attr(dir, format!("`{dir}.{key}` has `{bad}`, which is not a CIDR block")));
            }
            Ok(Value::List(client::sorted_unique(l.clone())))
        }
        Some(other) => {
            Err(ProviderError::attr(dir, format!("`{dir}.{key}` must be a list, not {}", other.type_name())))
        }
    }
}

/// Normalizes `ingress`/`egress` blocks: every key present, protocol by
/// name, ports of all-protocol rules zero, sets sorted, blocks sorted.
pub(crate) fn normalize_rules(dir: &str, v: Option<&Value>) -> ProviderResult<Value> {
    let blocks = match v.map(Value::unmarked) {
        None | Some(Value::Null) => return Ok(Value::List(Vec::new())),
        Some(Value::Unknown) => return Ok(Value::Unknown),
        Some(Value::List(l)) => l,
        Some(other) => {
            return Err(ProviderError::attr(dir, format!("`{dir}` must be blocks, not {}", other.type_name())));
        }
    };
    let mut out = Vec::new();
    for b in blocks {
        let Some(m) = b.as_map() else {
            return Err(ProviderError::attr(dir, format!("each `{dir}` must be a block")));
        };
        if let Some(k) = m.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
            return Err(ProviderError::attr(dir, format!("unknown argument `{k}` in an `{dir}` block")));
        }
        let protocol = match m.get("protocol").map(Value::unmarked) {
            Some(Value::String(s)) => Value::str(normalize_protocol(s)),
            Some(Value::Number(n)) => Value::str(normalize_protocol(&crate::value::format_number(*n))),
            Some(Value::Unknown) => Value::Unknown,
            _ => return Err(ProviderError::attr(dir, format!("each `{dir}` block requires `protocol`"))),
        };
        let (mut from, mut to) = (port(dir, "from_port", m.get("from_port"))?, port(dir, "to_port", m.get("to_port"))?);
        if protocol.as_str() == Some("-1") {
            // AWS reports no ports for all-protocol rules.
            (from, to) = (Value::Number(0.0), Value::Number(0.0));
        }
        let self_ = match m.get("self").map(Value::unmarked) {
            None | Some(Value::Null) => Value::Bool(false),
            Some(v @ (Value::Bool(_) | Value::Unknown)) => v.clone(),
            Some(other) => {
                return Err(ProviderError::attr(
                    dir,
                    format!("`{dir}.self` must be a bool, not {}", other.type_name()),
                ));
            }
        };
        let description = match m.get("description").map(Value::unmarked) {
            None | Some(Value::Null) => Value::str(""),
            Some(v @ (Value::String(_) | Value::Unknown)) => v.clone(),
            Some(other) => {
                return Err(ProviderError::attr(
                    dir,
                    format!("`{dir}.description` must be a string, not {}", other.type_name()),
                ));
            }
        };
        let rule = obj([
            ("protocol", protocol),
            ("from_port", from),
            ("to_port", to),
            ("cidr_blocks", string_set(dir, "cidr_blocks", m.get("cidr_blocks"))?),
            ("ipv6_cidr_blocks", string_set(dir, "ipv6_cidr_blocks", m.get("ipv6_cidr_blocks"))?),
            ("security_groups", string_set(dir, "security_groups", m.get("security_groups"))?),
            ("self", self_),
            ("description", description),
        ]);
        if rule.is_known() && block_atoms(&rule, "").is_empty() {
            return Err(ProviderError::attr(
                dir,
                format!(
                    "an `{dir}` block needs a source: `cidr_blocks`, `ipv6_cidr_blocks`, `security_groups` or `self`"
                ),
            ));
        }
        out.push(rule);
    }
    Ok(Value::List(client::sorted_unique(out)))
}

/// The atoms of one normalized, known block. `own` is the group's ID, so a
/// rule naming the group itself compares equal to `self = true`.
pub(crate) fn block_atoms(block: &Value, own: &str) -> BTreeSet<Atom> {
    let num = |k: &str| block.get(k).and_then(Value::as_f64).unwrap_or(0.0) as i64;
    let base = Atom {
        protocol: block.get_str("protocol").unwrap_or_default().to_string(),
        from: num("from_port"),
        to: num("to_port"),
        source: Source::SelfRef,
        description: block.get_str("description").unwrap_or_default().to_string(),
    };
    let mut out = BTreeSet::new();
    let list = |k: &str| client::strings(block.get(k));
    for c in list("cidr_blocks") {
        out.insert(Atom { source: Source::V4(c), ..base.clone() });
    }
    for c in list("ipv6_cidr_blocks") {
        out.insert(Atom { source: Source::V6(c), ..base.clone() });
    }
    for g in list("security_groups") {
        let source = if !own.is_empty() && g == own { Source::SelfRef } else { Source::Group(g) };
        out.insert(Atom { source, ..base.clone() });
    }
    if block.get("self").and_then(Value::as_bool) == Some(true) {
        out.insert(Atom { source: Source::SelfRef, ..base });
    }
    out
}

pub(crate) fn rules_atoms(rules: Option<&Value>, own: &str) -> BTreeSet<Atom> {
    rules
        .and_then(Value::as_list)
        .into_iter()
        .flatten()
        .filter(|b| b.is_known())
        .flat_map(|b| block_atoms(b, own))
        .collect()
}

pub(crate) fn permission_atoms(perms: &[IpPermission], own: &str) -> BTreeSet<Atom> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = normalize_protocol(p.ip_protocol().unwrap_or("-1"));
        let (from, to) = if protocol == "-1" {
            (0, 0)
        } else {
            (p.from_port().unwrap_or(0) as i64, p.to_port().unwrap_or(0) as i64)
        };
        let atom = |source, description: Option<&str>| Atom {
            protocol: protocol.clone(),
            from,
            to,
            source,
            description: description.unwrap_or_default().to_string(),
        };
        for r in p.ip_ranges() {
            if let Some(c) = r.cidr_ip() {
                out.insert(atom(Source::V4(c.to_string()), r.description()));
            }
        }
        for r in p.ipv6_ranges() {
            if let Some(c) = r.cidr_ipv6() {
                out.insert(atom(Source::V6(c.to_string()), r.description()));
            }
        }
        for g in p.user_id_group_pairs() {
            if let Some(id) = g.group_id() {
                let source = if id == own { Source::SelfRef } else { Source::Group(id.to_string()) };
                out.insert(atom(source, g.description()));
            }
        }
    }
    out
}

/// Groups atoms back into blocks: first in the shape of `template` (the
/// prior state or configuration) wherever a template block is wholly
/// present, then the rest one block per protocol, ports and description.
fn regroup(mut atoms: BTreeSet<Atom>, template: Option<&Value>, own: &str) -> Value {
    let mut blocks = Vec::new();
    for t in template.and_then(Value::as_list).into_iter().flatten().filter(|b| b.is_known()) {
        let mine = block_atoms(t, own);
        if !mine.is_empty() && mine.is_subset(&atoms) {
            atoms.retain(|a| !mine.contains(a));
            blocks.push(t.clone());
        }
    }
    let mut rest: BTreeMap<(String, i64, i64, String), Vec<Source>> = BTreeMap::new();
    for a in atoms {
        rest.entry((a.protocol, a.from, a.to, a.description)).or_default().push(a.source);
    }
    for ((protocol, from, to, description), sources) in rest {
        let (mut v4, mut v6, mut groups, mut self_) = (Vec::new(), Vec::new(), Vec::new(), false);
        for s in sources {
            match s {
                Source::V4(c) => v4.push(Value::str(c)),
                Source::V6(c) => v6.push(Value::str(c)),
                Source::Group(g) => groups.push(Value::str(g)),
                Source::SelfRef => self_ = true,
            }
        }
        blocks.push(obj([
            ("protocol", Value::str(protocol)),
            ("from_port", Value::Number(from as f64)),
            ("to_port", Value::Number(to as f64)),
            ("cidr_blocks", Value::List(client::sorted_unique(v4))),
            ("ipv6_cidr_blocks", Value::List(client::sorted_unique(v6))),
            ("security_groups", Value::List(client::sorted_unique(groups))),
            ("self", Value::Bool(self_)),
            ("description", Value::str(description)),
        ]));
    }
    Value::List(client::sorted_unique(blocks))
}

pub(crate) fn permission(a: &Atom, own: &str) -> IpPermission {
    let desc = Some(a.description.clone()).filter(|d| !d.is_empty());
    let mut b = IpPermission::builder().ip_protocol(&a.protocol);
    if a.protocol != "-1" {
        b = b.from_port(a.from as i32).to_port(a.to as i32);
    }
    match &a.source {
        Source::V4(c) => b.ip_ranges(IpRange::builder().cidr_ip(c).set_description(desc).build()),
        Source::V6(c) => b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(c).set_description(desc).build()),
        Source::Group(g) => b.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).set_description(desc).build()),
        Source::SelfRef => {
            b.user_id_group_pairs(UserIdGroupPair::builder().group_id(own).set_description(desc).build())
        }
    }
    .build()
}

/// What makes a rule one rule for AWS: all but its description.
pub(crate) type RuleKey = (String, i64, i64, Source);

pub(crate) fn rule_key(a: &Atom) -> RuleKey {
    (a.protocol.clone(), a.from, a.to, a.source.clone())
}

/// The calls that take `have` to `want`, in order: the rules only `want`
/// has, the descriptions that changed, the rules only `have` has.
#[derive(Debug, Default, PartialEq)]
struct RuleChanges {
    authorize: Vec<Atom>,
    describe: Vec<Atom>,
    revoke: Vec<Atom>,
}

fn rule_changes(have: &BTreeSet<Atom>, want: &BTreeSet<Atom>) -> RuleChanges {
    let have_by: BTreeMap<RuleKey, &Atom> = have.iter().map(|a| (rule_key(a), a)).collect();
    let want_by: BTreeMap<RuleKey, &Atom> = want.iter().map(|a| (rule_key(a), a)).collect();
    let mut c = RuleChanges::default();
    for (k, a) in &want_by {
        match have_by.get(k) {
            None => c.authorize.push((*a).clone()),
            Some(old) if old.description != a.description => c.describe.push((*a).clone()),
            Some(_) => {}
        }
    }
    c.revoke = have_by.iter().filter(|(k, _)| !want_by.contains_key(*k)).map(|(_, a)| (*a).clone()).collect();
    c
}

/// Takes a group's rules of one direction from `have` to `want`: authorizes
/// the new rules first, then updates changed descriptions, then revokes the
/// rules no longer wanted, so no traffic both allow is ever refused.
pub(crate) async fn sync_rules(
    ec2: &Ec2,
    id: &str,
    ingress: bool,
    have: &BTreeSet<Atom>,
    want: &BTreeSet<Atom>,
) -> ProviderResult<()> {
    let changes = rule_changes(have, want);
    let dir = if ingress { "ingress" } else { "egress" };
    let action = |verb: &str| format!("{verb}SecurityGroup{} on `{id}`", if ingress { "Ingress" } else { "Egress" });
    let perms = |atoms: &[Atom]| atoms.iter().map(|a| permission(a, id)).collect::<Vec<IpPermission>>();
    // Each call's error as its code and berth's error (the SDK has one
    // error type per operation).
    fn failed<E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static>(
        what: &str,
        e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> (Option<String>, ProviderError) {
        (code_of(&e).map(str::to_string), sdk_error(what, &e))
    }
    if !changes.authorize.is_empty() {
        let grant = perms(&changes.authorize);
        let what = action("Authorize");
        let r = if ingress {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .authorize_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(grant.clone()))
                    .send()
            })
            .await
            .map(|_| ())
            .map_err(|e| failed(&what, e))
        } else {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.authorize_security_group_egress().group_id(id).set_ip_permissions(Some(grant.clone())).send()
            })
            .await
            .map(|_| ())
            .map_err(|e| failed(&what, e))
        };
        match r {
            Ok(()) => {}
            // The resend of an authorize whose answer was lost meets the
            // rules it added: fine when every one of them is in place.
            Err((Some(code), e)) if code == "InvalidPermission.Duplicate" => {
                let now = current_atoms(ec2, id, ingress).await?;
                let keys: BTreeSet<RuleKey> = now.iter().map(rule_key).collect();
                if !changes.authorize.iter().all(|a| keys.contains(&rule_key(a))) {
                    return Err(about(dir, e));
                }
                tracing::debug!(id, dir, "authorize: the rules are already in place");
            }
            Err((_, e)) => return Err(about(dir, e)),
        }
    }
    if !changes.describe.is_empty() {
        let described = perms(&changes.describe);
        let what =
            format!("UpdateSecurityGroupRuleDescriptions{} on `{id}`", if ingress { "Ingress" } else { "Egress" });
        let r = if ingress {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(described.clone()))
                    .send()
            })
            .await
            .map(|_| ())
            .map_err(|e| failed(&what, e))
        } else {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .update_security_group_rule_descriptions_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(described.clone()))
                    .send()
            })
            .await
            .map(|_| ())
            .map_err(|e| failed(&what, e))
        };
        r.map_err(|(_, e)| about(dir, e))?;
    }
    if !changes.revoke.is_empty() {
        let revoke = perms(&changes.revoke);
        let what = action("Revoke");
        let r = if ingress {
            let call = ec2.client.revoke_security_group_ingress().group_id(id).set_ip_permissions(Some(revoke));
            call.send().await.map(|_| ()).map_err(|e| failed(&what, e))
        } else {
            let call = ec2.client.revoke_security_group_egress().group_id(id).set_ip_permissions(Some(revoke));
            call.send().await.map(|_| ()).map_err(|e| failed(&what, e))
        };
        match r {
            // A rule already gone is what a revoke wants.
            Err((Some(code), _)) if code == "InvalidPermission.NotFound" => {}
            Err((_, e)) => return Err(about(dir, e)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// The rules of one direction as AWS has them now.
async fn current_atoms(ec2: &Ec2, id: &str, ingress: bool) -> ProviderResult<BTreeSet<Atom>> {
    let g =
        read_group(ec2, id).await?.ok_or_else(|| ProviderError::new(format!("security group `{id}` disappeared")))?;
    Ok(permission_atoms(if ingress { g.ip_permissions() } else { g.ip_permissions_egress() }, id))
}

pub(crate) async fn describe(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<SecurityGroup>> {
    let mut out = Vec::new();
    let mut pages = ec2.client.describe_security_groups().set_filters(Some(filters)).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.map_err(|e| sdk_error("DescribeSecurityGroups", &e))?.security_groups().iter().cloned());
    }
    Ok(out)
}

pub(crate) fn state(ec2: &Ec2, g: &SecurityGroup, template: &Value) -> Value {
    let id = g.group_id().unwrap_or_default();
    let owner = g.owner_id().unwrap_or_default();
    let arn = g.security_group_arn().map(str::to_string).unwrap_or_else(|| ec2.arn(owner, "security-group", id));
    obj([
        ("id", Value::str(id)),
        ("arn", Value::str(arn)),
        ("owner_id", Value::str(owner)),
        ("name", Value::str(g.group_name().unwrap_or_default())),
        ("description", Value::str(g.description().unwrap_or_default())),
        ("vpc_id", g.vpc_id().map(Value::str).unwrap_or(Value::Null)),
        ("ingress", regroup(permission_atoms(g.ip_permissions(), id), template.get("ingress"), id)),
        ("egress", regroup(permission_atoms(g.ip_permissions_egress(), id), template.get("egress"), id)),
        ("tags", tags_value(g.tags())),
    ])
}

pub(crate) async fn read_group(ec2: &Ec2, id: &str) -> ProviderResult<Option<SecurityGroup>> {
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(g) = describe(ec2, vec![filter("group-id", [id])]).await?.into_iter().next() {
            return Ok(Some(g));
        }
        let delay = ec2.eventual.delay(attempt);
        if start.elapsed() + delay > ec2.eventual.deadline {
            return Ok(None);
        }
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// The group of a create attempt, if it has made one: its tags are
/// eventually consistent, so a group created a moment ago may need a few
/// looks.
async fn created_by(ec2: &Ec2, ctx: &OpContext) -> ProviderResult<Option<String>> {
    let mine = || async {
        let found = describe(ec2, attempt_filters(ctx)).await?;
        one_id("security group", &found, SecurityGroup::group_id)
    };
    poll_for(ec2.eventual.lost_answer(), &mine).await
}

pub(crate) async fn reconcile(ec2: &Ec2, id: &str, planned: &Value) -> ProviderResult<Value> {
    let g = read_group(ec2, id)
        .await?
        .ok_or_else(|| ProviderError::new(format!("security group `{id}` was created but never became visible")))?;
    let want_in = rules_atoms(planned.get("ingress"), id);
    let want_out = rules_atoms(planned.get("egress"), id);
    sync_rules(ec2, id, true, &permission_atoms(g.ip_permissions(), id), &want_in).await?;
    sync_rules(ec2, id, false, &permission_atoms(g.ip_permissions_egress(), id), &want_out).await?;
    let g =
        read_group(ec2, id).await?.ok_or_else(|| ProviderError::new(format!("security group `{id}` disappeared")))?;
    Ok(state(ec2, &g, planned))
}

pub(crate) async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            // Terraform names unnamed groups uniquely; berth derives the name
            // from the create's idempotency token, so a retry reuses it.
            let name = match opt_str(&planned, "name") {
                Some(n) => n.to_string(),
                None => format!("berth-{}", &client_token(&op.ctx)[..24]),
            };
            let description = req_str(&planned, "description")?;
            let tags = tags_arg(planned.get("tags"))?;
            let created = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client
                    .create_security_group()
                    .group_name(&name)
                    .description(description)
                    .set_vpc_id(opt_str(&planned, "vpc_id").map(str::to_string))
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, &op.ctx, &tags))
                    .send()
            })
            .await;
            let id = match created {
                Ok(out) => out.group_id().unwrap_or_default().to_string(),
                // CreateSecurityGroup takes no client token: when an attempt
                // lands and its answer is lost, the SDK's retry finds the
                // name taken by that very group. It is ours if it carries
                // this create's token.
                Err(e) if code_of(&e) == Some("InvalidGroup.Duplicate") => match created_by(ec2, &op.ctx).await? {
                    Some(id) => {
                        tracing::debug!(
                            name,
                            id,
                            "CreateSecurityGroup: the name is taken by this create's own group; using it"
                        );
                        id
                    }
                    None => return Err(sdk_error(&format!("CreateSecurityGroup `{name}`"), &e).into()),
                },
                Err(e) => return Err(sdk_error(&format!("CreateSecurityGroup `{name}`"), &e).into()),
            };
            let mut partial = partial_state(&planned, &id);
            if let Value::Map(m) = &mut partial {
                m.insert("name".into(), Value::str(&name));
                // The rules are not known to be in place yet.
                m.insert("ingress".into(), Value::List(Vec::new()));
                m.insert("egress".into(), Value::List(Vec::new()));
            }
            reconcile(ec2, &id, &planned).await.map(Some).map_err(|e| Failure::with(partial, e))
        }
        ChangeKind::Update { prior, planned } => {
            let id = id_of(&prior)?;
            let steps = async {
                sync_rules(
                    ec2,
                    &id,
                    true,
                    &rules_atoms(prior.get("ingress"), &id),
                    &rules_atoms(planned.get("ingress"), &id),
                )
                .await?;
                sync_rules(
                    ec2,
                    &id,
                    false,
                    &rules_atoms(prior.get("egress"), &id),
                    &rules_atoms(planned.get("egress"), &id),
                )
                .await?;
                if !prior.get("tags").unwrap_or(&Value::Null).same_as(planned.get("tags").unwrap_or(&Value::Null)) {
                    sync_tags(ec2, &id, prior.get("tags"), planned.get("tags")).await?;
                }
                let g = read_group(ec2, &id)
                    .await?
                    .ok_or_else(|| ProviderError::new(format!("security group `{id}` disappeared")))?;
                Ok(state(ec2, &g, &planned))
            };
            match steps.await {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    let read = async {
                        let found = describe(ec2, vec![filter("group-id", [id.as_str()])]).await?;
                        Ok(found.first().map(|g| state(ec2, g, &prior)))
                    };
                    Err(Failure::with(as_it_is(read, &prior).await, e))
                }
            }
        }
        ChangeKind::Delete { prior } => {
            let id = id_of(&prior)?;
            // Instances still terminating keep the group in use for a while.
            match retry_codes(retry::STILL_IN_USE, ec2.dependents, || {
                ec2.client.delete_security_group().group_id(&id).send()
            })
            .await
            {
                Ok(_) => Ok(None),
                Err(e) if code_of(&e) == Some("InvalidGroup.NotFound") => Ok(None),
                Err(e) => Err(Failure::with(prior.clone(), sdk_error(&format!("DeleteSecurityGroup `{id}`"), &e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: f64, cidrs: &[&str]) -> Value {
        obj([
            ("protocol", Value::str("tcp")),
            ("from_port", Value::Number(from)),
            ("to_port", Value::Number(from)),
            ("cidr_blocks", Value::List(cidrs.iter().map(|c| Value::str(*c)).collect())),
        ])
    }

    #[test]
    fn normalization_is_order_independent() {
        let a = normalize_rules(
            "ingress",
            Some(&Value::List(vec![rule(22.0, &["10.0.0.0/8", "192.168.0.0/16"]), rule(443.0, &["0.0.0.0/0"])])),
        )
        .unwrap();
        let b = normalize_rules(
            "ingress",
            Some(&Value::List(vec![rule(443.0, &["0.0.0.0/0"]), rule(22.0, &["192.168.0.0/16", "10.0.0.0/8"])])),
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn bad_rules_name_the_block() {
        let no_source =
            obj([("protocol", Value::str("tcp")), ("from_port", Value::Number(1.0)), ("to_port", Value::Number(1.0))]);
        let e = normalize_rules("egress", Some(&Value::List(vec![no_source]))).unwrap_err();
        assert_eq!(e.attribute.as_deref(), Some("egress"));
        let e = normalize_rules("ingress", Some(&Value::List(vec![rule(70000.0, &["0.0.0.0/0"])]))).unwrap_err();
        assert!(e.message.contains("from_port"), "{}", e.message);
        let e = normalize_rules("ingress", Some(&Value::List(vec![rule(22.0, &["nonsense"])]))).unwrap_err();
        assert!(e.message.contains("`nonsense`"), "{}", e.message);
    }

    #[test]
    fn a_description_changes_in_place_and_new_rules_come_first() {
        let atoms =
            |r: Value| rules_atoms(Some(&normalize_rules("ingress", Some(&Value::List(vec![r]))).unwrap()), "sg-1");
        let mut described = rule(22.0, &["10.0.0.0/8"]);
        if let Value::Map(m) = &mut described {
            m.insert("description".into(), Value::str("ssh"));
        }
        let c = rule_changes(&atoms(rule(22.0, &["10.0.0.0/8"])), &atoms(described));
        assert_eq!((c.authorize.len(), c.describe.len(), c.revoke.len()), (0, 1, 0), "{c:?}");
        let c = rule_changes(&atoms(rule(22.0, &["10.0.0.0/8"])), &atoms(rule(2222.0, &["10.0.0.0/8"])));
        assert_eq!((c.authorize.len(), c.describe.len(), c.revoke.len()), (1, 0, 1), "{c:?}");
        assert_eq!(c.authorize[0].from, 2222);
        let same = atoms(rule(22.0, &["10.0.0.0/8"]));
        assert_eq!(rule_changes(&same, &same), RuleChanges::default());
    }

    #[test]
    fn regroup_follows_the_template_and_diffs_are_minimal() {
        let template =
            normalize_rules("ingress", Some(&Value::List(vec![rule(22.0, &["10.0.0.0/8", "192.168.0.0/16"])])))
                .unwrap();
        let mut atoms = rules_atoms(Some(&template), "sg-1");
        let extra = normalize_rules("ingress", Some(&Value::List(vec![rule(80.0, &["0.0.0.0/0"])]))).unwrap();
        atoms.extend(rules_atoms(Some(&extra), "sg-1"));
        let back = regroup(atoms.clone(), Some(&template), "sg-1");
        let both = normalize_rules(
            "ingress",
            Some(&Value::List(vec![rule(22.0, &["10.0.0.0/8", "192.168.0.0/16"]), rule(80.0, &["0.0.0.0/0"])])),
        )
        .unwrap();
        assert_eq!(back, both);
        let want = rules_atoms(Some(&both), "sg-1");
        assert_eq!(want, atoms);
        let have = rules_atoms(Some(&template), "sg-1");
        assert_eq!(want.difference(&have).count(), 1);
        assert_eq!(have.difference(&want).count(), 0);
    }
}
