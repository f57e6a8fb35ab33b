//! `aws_route53_record`: DNS records in a hosted zone, batched and owned.
//!
//! - **Plan** computes the fqdn (a name without the zone's suffix is
//!   relative to the zone), the id `ZONEID_fqdn_TYPE` and the owner value.
//!   On create it looks at the zone (one shared listing for all the plans of
//!   a zone) and decides how the record will be written: CREATE when the name
//!   is free, UPSERT when the record is berth's own from an interrupted run
//!   (adopted), or a foreign record that `allow_overwrite` takes over; any
//!   other existing record is an error.
//! - **Apply** turns every change of the batch into Route53 changes, groups
//!   them by zone and sends one ChangeResourceRecordSets request per zone,
//!   split only at the API's limits. An update of `records` or `ttl` is an
//!   UPSERT, never a DELETE and a CREATE, so a name switched to a new host
//!   always resolves. A request Route53 refuses as a whole names the changes
//!   at fault: they are settled against a fresh listing and the rest is sent
//!   again, so one bad record does not fail the other 499 (a refusal that
//!   names no change falls back to splitting the request in halves). A
//!   DELETE repeats the set exactly as listed, whatever the state says.
//! - **Refresh** reads one listing per zone and reports the values found, so
//!   a record edited outside berth shows as drift and one deleted outside is
//!   created again.
//! - **Routing policies and aliases**, as Terraform's `aws_route53_record`
//!   has them: `set_identifier` with `weighted_routing_policy { weight }` or
//!   `multivalue_answer_routing_policy`, for several hosts behind one private
//!   name, each host's record set its own resource; and `alias { name,
//!   zone_id, evaluate_target_health }` in place of `records` and `ttl` (a
//!   load balancer's `dns_name` and `zone_id`). A record set is known by its
//!   name, type and set identifier, and each has its own ownership record
//!   (the set identifier's digest in its name, [`names::owner_name_for`]),
//!   so berth never touches another set of the same name and type.

use super::batch::{self, Refusal, Weight};
use super::names;
use super::rdata::{self, RecordType};
use super::registry::{Claim, OWNER_TTL, Owner};
use super::{ApiError, Field, Route53, ZoneListing, bare_id, bool_field, field, lock, report, required, str_field};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, Attribute, ChangeKind, OpContext, Planned, ProviderError, ProviderErrorKind,
    ProviderResult, Refreshed, Schema,
};
use crate::value::{Map, Value};
use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub const RECORD_TYPE: &str = "aws_route53_record";

/// Route53's TTL is a 32-bit signed count of seconds.
const MAX_TTL: i64 = 2_147_483_647;
const DEFAULT_TTL: i64 = 300;

pub(super) static RECORD: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("zone_id").required().force_new(),
        Attribute::arg("name").required().force_new(),
        Attribute::arg("type").required().force_new(),
        Attribute::arg("ttl").number(),
        // Required unless `alias` is set (checked by `parse_args`).
        Attribute::arg("records"),
        Attribute::arg("allow_overwrite"),
        Attribute::arg("set_identifier").force_new(),
        Attribute::arg("weighted_routing_policy").block(),
        Attribute::arg("multivalue_answer_routing_policy"),
        Attribute::arg("alias").block(),
    ])
    .with_exported(&["id", "fqdn", "owner"])
    .with_cache_ttl("ttl", DEFAULT_TTL as u64)
});

/// How a planned create writes the record and its owner: CREATE where the
/// name is free (Route53 then refuses if someone got there first), UPSERT
/// where the plan found something berth may replace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateMode {
    record: ChangeAction,
    owner: ChangeAction,
}

impl CreateMode {
    fn default_for(allow_overwrite: bool) -> CreateMode {
        let a = if allow_overwrite { ChangeAction::Upsert } else { ChangeAction::Create };
        CreateMode { record: a.clone(), owner: a }
    }
}

fn create_key(ctx: &OpContext, zone_id: &str, fqdn: &str, t: RecordType) -> String {
    format!("{}|{}|{zone_id}|{fqdn}|{}", ctx.lineage, ctx.addr, t.as_str())
}

/// An alias in place of values: another name's addresses, answered by
/// Route53 itself (a load balancer's `dns_name` in its `zone_id`).
#[derive(Debug, Clone, PartialEq)]
struct Alias {
    /// Lower case, without the final dot, as [`names::from_api`] spells it.
    name: String,
    zone_id: String,
    evaluate: bool,
}

/// Where a record set stands among the sets of its name and type, and what
/// it answers with besides values. The default is a plain record.
#[derive(Debug, Clone, PartialEq, Default)]
struct Policy {
    set_id: Option<String>,
    weight: Option<i64>,
    multivalue: bool,
    alias: Option<Alias>,
}

/// Route53's `SetIdentifier`: 1 to 128 characters.
const MAX_SET_ID: usize = 128;
/// Route53's weights: 0 to 255.
const MAX_WEIGHT: i64 = 255;

impl Policy {
    /// The attributes a state and a plan hold for it.
    fn attrs(&self) -> [(&'static str, Value); 4] {
        [
            ("set_identifier", self.set_id.as_deref().map(Value::str).unwrap_or(Value::Null)),
            (
                "weighted_routing_policy",
                self.weight
                    .map(|w| Value::List(vec![crate::value::obj([("weight", Value::from(w))])]))
                    .unwrap_or(Value::Null),
            ),
            ("multivalue_answer_routing_policy", if self.multivalue { Value::Bool(true) } else { Value::Null }),
            (
                "alias",
                self.alias
                    .as_ref()
                    .map(|a| {
                        Value::List(vec![crate::value::obj([
                            ("name", Value::str(&a.name)),
                            ("zone_id", Value::str(&a.zone_id)),
                            ("evaluate_target_health", Value::Bool(a.evaluate)),
                        ])])
                    })
                    .unwrap_or(Value::Null),
            ),
        ]
    }

    /// As a set lists it.
    fn of_set(set: &ResourceRecordSet) -> Policy {
        Policy {
            set_id: set.set_identifier().map(str::to_string),
            weight: set.weight(),
            multivalue: set.multi_value_answer() == Some(true),
            alias: set.alias_target().map(|a| Alias {
                name: names::from_api(a.dns_name()),
                zone_id: a.hosted_zone_id().to_string(),
                evaluate: a.evaluate_target_health(),
            }),
        }
    }

    /// As a state recorded it (no API call).
    fn of_state(v: &Value) -> Policy {
        let first = |attr: &str| v.get(attr).and_then(Value::as_list).and_then(|l| l.first()).cloned();
        Policy {
            // Terraform writes "" for none.
            set_id: v.get_str("set_identifier").filter(|s| !s.is_empty()).map(str::to_string),
            weight: first("weighted_routing_policy")
                .and_then(|b| b.get("weight").and_then(Value::as_f64))
                .map(|w| w as i64),
            multivalue: v.get("multivalue_answer_routing_policy").and_then(Value::as_bool).unwrap_or(false),
            alias: first("alias").map(|a| Alias {
                name: a.get_str("name").unwrap_or_default().to_string(),
                zone_id: a.get_str("zone_id").unwrap_or_default().to_string(),
                evaluate: a.get("evaluate_target_health").and_then(Value::as_bool).unwrap_or(false),
            }),
        }
    }
}

/// The one block of a nested block argument (`alias { ... }`), as written
/// (a list of one object) or as an object; `Err(())` when unknown.
fn one_block<'a>(config: &'a Value, attr: &str, errs: &mut Vec<ProviderError>) -> Result<Option<&'a Value>, ()> {
    match config.get(attr).map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Unknown) => Err(()),
        Some(Value::List(l)) if l.is_empty() => Ok(None),
        Some(Value::List(l)) => {
            if l.len() > 1 {
                let msg = format!("only one `{attr}` block is allowed; there are {}", l.len());
                errs.push(ProviderError::attr(attr, msg));
            }
            if l[0].is_unknown() { Err(()) } else { Ok(Some(&l[0])) }
        }
        Some(m @ Value::Map(_)) => Ok(Some(m)),
        Some(other) => {
            errs.push(ProviderError::attr(attr, format!("`{attr}` must be a block, not {}", other.type_name())));
            Ok(None)
        }
    }
}

/// Reads and checks the routing policy and alias arguments, as Terraform
/// and Route53 allow them together.
fn parse_policy(config: &Value, rtype: Option<RecordType>, errs: &mut Vec<ProviderError>) -> Field<Policy> {
    let mut unknown = false;
    let mut p = Policy::default();
    match str_field(config, "set_identifier") {
        Ok(Field::Known(id)) => {
            if id.is_empty() || id.len() > MAX_SET_ID {
                errs.push(ProviderError::attr(
                    "set_identifier",
                    format!("`set_identifier` must have 1 to {MAX_SET_ID} characters, not {}", id.len()),
                ));
            }
            p.set_id = Some(id);
        }
        Ok(Field::Unknown) => unknown = true,
        Ok(Field::Absent) => {}
        Err(e) => errs.push(e),
    }
    match one_block(config, "weighted_routing_policy", errs) {
        Err(()) => unknown = true,
        Ok(None) => {}
        Ok(Some(b)) => match b.get("weight").map(Value::unmarked) {
            Some(Value::Unknown) => unknown = true,
            Some(v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
                Some(w) if w.fract() == 0.0 && (0.0..=MAX_WEIGHT as f64).contains(&w) => p.weight = Some(w as i64),
                _ => errs.push(ProviderError::attr(
                    "weighted_routing_policy",
                    format!("`weighted_routing_policy.weight` must be a whole number from 0 to {MAX_WEIGHT}, not {v}"),
                )),
            },
            None => {
                errs.push(ProviderError::attr("weighted_routing_policy", "`weighted_routing_policy` requires `weight`"))
            }
        },
    }
    match bool_field(config, "multivalue_answer_routing_policy") {
        Ok(Field::Known(b)) => p.multivalue = b,
        Ok(Field::Unknown) => unknown = true,
        Ok(Field::Absent) => {}
        Err(e) => errs.push(e),
    }
    let alias_written = match one_block(config, "alias", errs) {
        Err(()) => {
            unknown = true;
            true
        }
        Ok(None) => false,
        Ok(Some(b)) => {
            let mut part = |k: &str| match b.get(k).map(Value::unmarked) {
                Some(Value::Unknown) => {
                    unknown = true;
                    None
                }
                None | Some(Value::Null) => {
                    errs.push(ProviderError::attr("alias", format!("`alias` requires `{k}`")));
                    None
                }
                Some(v) => Some(v.clone()),
            };
            let (name, zone_id, evaluate) = (part("name"), part("zone_id"), part("evaluate_target_health"));
            match (name, zone_id, evaluate) {
                (Some(Value::String(n)), Some(Value::String(z)), Some(Value::Bool(e))) => {
                    p.alias = Some(Alias { name: names::from_api(&n), zone_id: z, evaluate: e })
                }
                (n, z, e) => {
                    let parts =
                        [("name", n, "a string"), ("zone_id", z, "a string"), ("evaluate_target_health", e, "a bool")];
                    for (k, v, want) in parts {
                        if let Some(v) = v
                            && !matches!((want, &v), ("a string", Value::String(_)) | ("a bool", Value::Bool(_)))
                        {
                            let msg = format!("`alias.{k}` must be {want}, not {}", v.type_name());
                            errs.push(ProviderError::attr("alias", msg));
                        }
                    }
                }
            }
            true
        }
    };
    // As Terraform says: an alias has its target's addresses and TTL.
    if alias_written {
        for k in ["records", "ttl"] {
            if config.get(k).is_some_and(|v| !v.is_null()) {
                errs.push(ProviderError::attr(
                    k,
                    format!("`{k}` cannot be set with `alias`: an alias answers with its target's addresses and TTL"),
                ));
            }
        }
        if p.multivalue {
            errs.push(ProviderError::attr(
                "multivalue_answer_routing_policy",
                "`multivalue_answer_routing_policy` cannot be used with `alias`",
            ));
        }
    }
    if p.weight.is_some() && p.multivalue {
        errs.push(ProviderError::attr(
            "multivalue_answer_routing_policy",
            "`multivalue_answer_routing_policy` and `weighted_routing_policy` cannot both be set",
        ));
    }
    let policy = p.weight.is_some() || p.multivalue;
    if !unknown && policy && p.set_id.is_none() {
        errs.push(ProviderError::attr("set_identifier", "a routing policy requires `set_identifier`"));
    }
    if !unknown && !policy && p.set_id.is_some() {
        errs.push(ProviderError::attr(
            "set_identifier",
            "`set_identifier` requires a routing policy: `weighted_routing_policy` or `multivalue_answer_routing_policy`",
        ));
    }
    if p.multivalue && rtype == Some(RecordType::Cname) {
        errs.push(ProviderError::attr(
            "multivalue_answer_routing_policy",
            "a CNAME record cannot use `multivalue_answer_routing_policy`",
        ));
    }
    if unknown { Field::Unknown } else { Field::Known(p) }
}

/// Whether the configuration writes an `alias` block (known or not).
fn has_alias(config: &Value) -> bool {
    config.get("alias").is_some_and(|v| !v.is_null() && v.as_list().is_none_or(|l| !l.is_empty()))
}

/// The arguments of a record, some possibly unknown.
struct RecordArgs {
    zone_id: Field<String>,
    name: Field<String>,
    rtype: Field<RecordType>,
    ttl: Field<i64>,
    /// Canonical, sorted and deduplicated; known only when every value is.
    records: Field<Vec<String>>,
    records_sensitive: bool,
    allow_overwrite: Field<bool>,
    policy: Field<Policy>,
}

/// Reads and checks the arguments, collecting every problem.
fn parse_args(config: &Value) -> Result<RecordArgs, Vec<ProviderError>> {
    let mut errs = Vec::new();
    let mut keep = |r: ProviderResult<Field<String>>| {
        r.unwrap_or_else(|e| {
            errs.push(e);
            Field::Unknown
        })
    };
    let zone_id = keep(str_field(config, "zone_id"));
    let name = keep(str_field(config, "name"));
    let type_s = keep(str_field(config, "type"));
    if zone_id == Field::Absent {
        errs.push(required("zone_id"));
    }
    let rtype = match type_s {
        Field::Known(s) => match RecordType::parse(&s) {
            Some(t) => Field::Known(t),
            None => {
                errs.push(ProviderError::attr(
                    "type",
                    format!("record type `{s}` is not supported; `type` is one of {}", rdata::SUPPORTED),
                ));
                Field::Unknown
            }
        },
        Field::Absent => {
            errs.push(required("type"));
            Field::Unknown
        }
        Field::Unknown => Field::Unknown,
    };
    match &name {
        Field::Known(n) => {
            // Until the type is known, give `_` the benefit of the doubt.
            let underscore = rtype.as_known().is_none_or(|t| t.allows_underscore());
            if let Err(e) = names::validate(n, underscore) {
                errs.push(ProviderError::attr("name", format!("invalid `name`: {e}")));
            }
        }
        Field::Absent => errs.push(required("name")),
        Field::Unknown => {}
    }
    let ttl = match field(config, "ttl") {
        Field::Known(v) => match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (0.0..=MAX_TTL as f64).contains(&n) => Field::Known(n as i64),
            Some(n) => {
                errs.push(ProviderError::attr(
                    "ttl",
                    format!("`ttl` must be a whole number of seconds from 0 to {MAX_TTL}, not {n}"),
                ));
                Field::Unknown
            }
            None => {
                errs.push(ProviderError::attr("ttl", format!("`ttl` must be a number, not {}", v.type_name())));
                Field::Unknown
            }
        },
        Field::Unknown => Field::Unknown,
        Field::Absent => Field::Absent,
    };
    let records_sensitive = config.get("records").is_some_and(Value::is_sensitive);
    let alias = has_alias(config);
    let records = match field(config, "records") {
        Field::Absent if alias => Field::Absent,
        Field::Absent => {
            errs.push(required("records"));
            Field::Unknown
        }
        Field::Unknown => Field::Unknown,
        Field::Known(v) => match v.as_list() {
            None => {
                errs.push(ProviderError::attr(
                    "records",
                    format!("`records` must be a list of strings, not {}", v.type_name()),
                ));
                Field::Unknown
            }
            Some(list) => {
                let mut values = Vec::new();
                let mut all_known = true;
                for (i, item) in list.iter().enumerate() {
                    if !item.is_known() {
                        all_known = false;
                        continue;
                    }
                    let Some(s) = item.as_str() else {
                        errs.push(ProviderError::attr(
                            "records",
                            format!("`records[{i}]` must be a string, not {}", item.type_name()),
                        ));
                        continue;
                    };
                    match rtype.as_known() {
                        Some(&t) => match rdata::canonical(t, s) {
                            Ok(c) => values.push(c),
                            // Values may be sensitive: name the position, not the value.
                            Err(_) if item.is_sensitive() => errs.push(ProviderError::attr(
                                "records",
                                format!("`records[{i}]` is not a valid {} value", t.as_str()),
                            )),
                            Err(e) => errs.push(ProviderError::attr("records", format!("`records[{i}]`: {e}"))),
                        },
                        None => all_known = false,
                    }
                }
                if list.is_empty() {
                    errs.push(ProviderError::attr("records", "`records` needs at least one value"));
                }
                values.sort();
                values.dedup();
                if rtype.as_known() == Some(&RecordType::Cname) && values.len() > 1 {
                    errs.push(ProviderError::attr(
                        "records",
                        format!("a CNAME record holds exactly one value; `records` has {}", values.len()),
                    ));
                }
                if all_known { Field::Known(values) } else { Field::Unknown }
            }
        },
    };
    let allow_overwrite = bool_field(config, "allow_overwrite").unwrap_or_else(|e| {
        errs.push(e);
        Field::Unknown
    });
    let policy = parse_policy(config, rtype.as_known().copied(), &mut errs);
    if errs.is_empty() {
        Ok(RecordArgs { zone_id, name, rtype, ttl, records, records_sensitive, allow_overwrite, policy })
    } else {
        Err(errs)
    }
}

pub(super) fn validate_record(config: &Value) -> Vec<ProviderError> {
    parse_args(config).err().unwrap_or_default()
}

fn first(errs: Vec<ProviderError>) -> ProviderError {
    errs.into_iter().next().unwrap_or_else(|| ProviderError::new("invalid record configuration"))
}

/// Everything needed to write or delete one record.
#[derive(Debug, Clone)]
struct RecordSpec {
    zone_id: String,
    name: String,
    fqdn: String,
    rtype: RecordType,
    ttl: i64,
    values: Vec<String>,
    allow_overwrite: bool,
    sensitive: bool,
    policy: Policy,
}

impl RecordSpec {
    fn label(&self) -> String {
        format!("`{}` {}", self.fqdn, self.rtype.as_str())
    }

    fn owner_name(&self) -> String {
        names::owner_name_for(&self.fqdn, self.rtype.as_str(), self.set_id())
    }

    fn set_id(&self) -> Option<&str> {
        self.policy.set_id.as_deref()
    }

    fn same_place(&self, other: &RecordSpec) -> bool {
        self.zone_id == other.zone_id
            && self.fqdn == other.fqdn
            && self.rtype == other.rtype
            && self.policy.set_id == other.policy.set_id
    }

    /// Its set as a listing shows it.
    fn find<'l>(&self, listing: &'l ZoneListing) -> Option<&'l ResourceRecordSet> {
        listing.find(&self.fqdn, self.rtype.as_str(), self.set_id())
    }

    fn state(&self, owner: Value) -> Value {
        let records = Value::List(self.values.iter().map(|v| Value::str(v.clone())).collect());
        let mut m = Map::new();
        m.insert("zone_id".into(), Value::str(&self.zone_id));
        m.insert("name".into(), Value::str(&self.name));
        m.insert("type".into(), Value::str(self.rtype.as_str()));
        let alias = self.policy.alias.is_some();
        m.insert("ttl".into(), if alias { Value::Null } else { Value::from(self.ttl) });
        m.insert("records".into(), if alias { Value::Null } else { records.mark_if(self.sensitive) });
        m.insert("allow_overwrite".into(), Value::Bool(self.allow_overwrite));
        for (k, v) in self.policy.attrs() {
            m.insert(k.into(), v);
        }
        m.insert("id".into(), Value::String(record_id(&self.zone_id, &self.fqdn, self.rtype, self.set_id())));
        m.insert("fqdn".into(), Value::str(&self.fqdn));
        m.insert("owner".into(), owner);
        Value::Map(m)
    }

    /// Reads a record's state as berth stored it (no API call).
    fn from_state(v: &Value) -> ProviderResult<RecordSpec> {
        let missing = |a: &str| ProviderError::attr(a, format!("the recorded state has no `{a}`"));
        let rtype = v.get_str("type").and_then(RecordType::parse).ok_or_else(|| missing("type"))?;
        Ok(RecordSpec {
            zone_id: v.get_str("zone_id").ok_or_else(|| missing("zone_id"))?.to_string(),
            name: v.get_str("name").unwrap_or_default().to_string(),
            fqdn: v.get_str("fqdn").ok_or_else(|| missing("fqdn"))?.to_string(),
            rtype,
            ttl: v.get("ttl").and_then(Value::as_f64).map(|n| n as i64).unwrap_or(DEFAULT_TTL),
            values: v
                .get("records")
                .and_then(Value::as_list)
                .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            allow_overwrite: v.get("allow_overwrite").and_then(Value::as_bool).unwrap_or(false),
            sensitive: v.get("records").is_some_and(Value::is_sensitive),
            policy: Policy::of_state(v),
        })
    }
}

/// `ZONEID_fqdn_TYPE`, and `_SETID` for a set with an identifier, as
/// Terraform's ids.
fn record_id(zone_id: &str, fqdn: &str, t: RecordType, set_id: Option<&str>) -> String {
    match set_id {
        Some(id) => format!("{zone_id}_{fqdn}_{}_{id}", t.as_str()),
        None => format!("{zone_id}_{fqdn}_{}", t.as_str()),
    }
}

/// The change that writes a record set as its spec says: values and TTL,
/// or an alias; its set identifier and routing policy.
fn record_change(action: ChangeAction, spec: &RecordSpec) -> ProviderResult<Change> {
    let mut set = ResourceRecordSet::builder().name(&spec.fqdn).r#type(spec.rtype.sdk());
    match &spec.policy.alias {
        Some(a) => {
            let target =
                AliasTarget::builder().dns_name(&a.name).hosted_zone_id(&a.zone_id).evaluate_target_health(a.evaluate);
            set = set.alias_target(built(target.build())?);
        }
        None => {
            set = set.ttl(spec.ttl);
            for v in &spec.values {
                let value = rdata::to_api(spec.rtype, v);
                set = set.resource_records(built(ResourceRecord::builder().value(value).build())?);
            }
        }
    }
    if let Some(id) = spec.set_id() {
        set = set.set_identifier(id);
    }
    if let Some(w) = spec.policy.weight {
        set = set.weight(w);
    }
    if spec.policy.multivalue {
        set = set.multi_value_answer(true);
    }
    built(Change::builder().action(action).resource_record_set(built(set.build())?).build())
}

fn built<T>(r: Result<T, aws_sdk_route53::error::BuildError>) -> ProviderResult<T> {
    r.map_err(|e| ProviderError::new(format!("cannot build a Route53 request: {e}")))
}

fn rrset_change(
    action: ChangeAction,
    name: &str,
    t: RecordType,
    ttl: i64,
    values: &[String],
) -> ProviderResult<Change> {
    let mut set = ResourceRecordSet::builder().name(name).r#type(t.sdk()).ttl(ttl);
    for v in values {
        set = set.resource_records(built(ResourceRecord::builder().value(rdata::to_api(t, v)).build())?);
    }
    built(Change::builder().action(action).resource_record_set(built(set.build())?).build())
}

fn owner_change(action: ChangeAction, spec: &RecordSpec, owner: &Owner) -> ProviderResult<Change> {
    rrset_change(action, &spec.owner_name(), RecordType::Txt, OWNER_TTL, &[owner.value()])
}

/// Whether a record set as listed is the one a change sends: the same
/// TTL, values (in any order), alias and set identifier.
fn same_record_set(have: &ResourceRecordSet, want: &ResourceRecordSet) -> bool {
    let values = |s: &ResourceRecordSet| {
        let mut v: Vec<String> = s.resource_records().iter().map(|r| r.value().to_string()).collect();
        v.sort();
        v
    };
    have.ttl() == want.ttl()
        && values(have) == values(want)
        && have.alias_target() == want.alias_target()
        && have.set_identifier() == want.set_identifier()
        && have.weight() == want.weight()
        && have.multi_value_answer() == want.multi_value_answer()
}

/// The owner record of a record, as found in a listing.
struct OwnerRecord {
    value: String,
    /// Exactly as berth writes it (one value, [`OWNER_TTL`]), so berth can
    /// delete it without reading it again.
    exact: bool,
}

fn owner_record(listing: &ZoneListing, fqdn: &str, t: RecordType, set_id: Option<&str>) -> Option<OwnerRecord> {
    let set = listing.get(&names::owner_name_for(fqdn, t.as_str(), set_id), "TXT")?;
    let values: Vec<String> = set.resource_records().iter().map(|r| rdata::decode_txt(r.value())).collect();
    Some(OwnerRecord { exact: values.len() == 1 && set.ttl() == Some(OWNER_TTL), value: values.join(" ") })
}

fn found_values(set: &ResourceRecordSet, t: RecordType) -> Vec<String> {
    let mut v: Vec<String> = set.resource_records().iter().map(|r| rdata::from_api(t, r.value())).collect();
    v.sort();
    v.dedup();
    v
}

/// One resource's share of a change request.
pub(super) struct Item {
    pub index: usize,
    pub label: String,
    pub changes: Vec<Change>,
    pub deletes: bool,
    /// The state to report once the change is in.
    pub ok: Option<Value>,
    /// The state to report if it is refused (Route53 applies all of a
    /// request or none of it, so this is the state before).
    pub fail: Option<Value>,
    /// Who owns the record, for settling a refused CREATE (`None`: the
    /// change is not a managed record's, as when a zone is emptied).
    pub owner: Option<Owner>,
}

/// What became of a request: the change id Route53 gave it (empty when
/// there is nothing to wait for), or why it failed.
pub(super) type Sent = Result<String, ProviderError>;

/// Items as sent, with what became of them.
pub(super) type Submitted = Vec<(Vec<Item>, Sent)>;

/// What [`Route53::settle`] decided, by position in the refused request:
/// items finished (a change id to wait for, or the failure), and the
/// changes to send again for the others.
type Settled = (Vec<(usize, Sent)>, Vec<(usize, Vec<Change>)>);

/// Rounds of settling one request may take: each settles every change a
/// refusal named and every change already in effect, so more than a few
/// means the zone keeps changing under it.
const MAX_SETTLE_ROUNDS: u32 = 6;

/// Applies [`Settled`] to the items of a refused request: the finished ones
/// with their result, and the rest (those settled with new changes, and
/// those no refusal named) to send again.
fn split_settled(items: Vec<Item>, (done, again): Settled) -> (Vec<(Item, Sent)>, Vec<Item>) {
    let mut done: BTreeMap<usize, Sent> = done.into_iter().collect();
    let mut again: BTreeMap<usize, Vec<Change>> = again.into_iter().collect();
    let mut finished = Vec::new();
    let mut rest = Vec::new();
    for (i, mut item) in items.into_iter().enumerate() {
        if let Some(r) = done.remove(&i) {
            finished.push((item, r));
            continue;
        }
        if let Some(c) = again.remove(&i) {
            item.changes = c;
        }
        rest.push(item);
    }
    (finished, rest)
}

enum Prepared {
    Send(String, Item),
    Done(ApplyOutcome),
}

fn zone_error(zone_id: &str, e: ApiError) -> ProviderError {
    if e.is("NoSuchHostedZone") {
        ProviderError::attr("zone_id", format!("hosted zone `{zone_id}` does not exist"))
    } else {
        e.into()
    }
}

impl Route53 {
    pub(super) async fn plan_record(
        &self,
        ctx: &OpContext,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let args = parse_args(config).map_err(first)?;
        let allow_overwrite = args.allow_overwrite.as_known().copied().unwrap_or(false);
        let zone_name = match args.zone_id.as_known() {
            Some(z) => Some(self.zone_name(z).await.map_err(|e| zone_error(z, e))?),
            None => None,
        };
        let fqdn = match (&zone_name, args.name.as_known()) {
            (Some(zone), Some(n)) => Some(names::fqdn(n, zone)),
            _ => None,
        };
        if let (Some(f), Some(t)) = (&fqdn, args.rtype.as_known()) {
            names::validate(f, t.allows_underscore())
                .map_err(|e| ProviderError::attr("name", format!("invalid `name` in its zone: {e}")))?;
            let set_id = args.policy.as_known().and_then(|p| p.set_id.as_deref());
            let owner = names::owner_name_for(f, t.as_str(), set_id);
            if owner.len() > names::MAX_NAME {
                return Err(ProviderError::attr(
                    "name",
                    format!(
                        "`{f}` is too long for its ownership record `{owner}` ({} characters, at most {}); \
                         shorten the name",
                        owner.len(),
                        names::MAX_NAME
                    ),
                ));
            }
        }
        let me = args.rtype.as_known().map(|t| Owner::new(&ctx.lineage, &ctx.addr.to_string(), t.as_str()));

        let unknown_or = |o: Option<Value>| o.unwrap_or(Value::Unknown);
        let mut after = Map::new();
        after.insert("zone_id".into(), unknown_or(args.zone_id.as_known().map(Value::str)));
        after.insert("name".into(), unknown_or(args.name.as_known().map(Value::str)));
        after.insert("type".into(), unknown_or(args.rtype.as_known().map(|t| Value::str(t.as_str()))));
        let alias = has_alias(config);
        after.insert(
            "ttl".into(),
            match args.ttl {
                _ if alias => Value::Null,
                Field::Known(n) => Value::from(n),
                Field::Absent => Value::from(DEFAULT_TTL),
                Field::Unknown => Value::Unknown,
            },
        );
        after.insert(
            "records".into(),
            match &args.records {
                _ if alias => Value::Null,
                Field::Known(v) => {
                    Value::List(v.iter().map(|s| Value::str(s.clone())).collect()).mark_if(args.records_sensitive)
                }
                _ => config.get("records").cloned().unwrap_or(Value::Unknown),
            },
        );
        match &args.policy {
            Field::Known(p) => {
                for (k, v) in p.attrs() {
                    after.insert(k.into(), v);
                }
            }
            _ => {
                for k in ["set_identifier", "weighted_routing_policy", "multivalue_answer_routing_policy", "alias"] {
                    after.insert(k.into(), config.get(k).cloned().unwrap_or(Value::Null));
                }
            }
        }
        after.insert(
            "allow_overwrite".into(),
            match args.allow_overwrite {
                Field::Unknown => Value::Unknown,
                _ => Value::Bool(allow_overwrite),
            },
        );
        let id = match (args.zone_id.as_known(), &fqdn, args.rtype.as_known(), args.policy.as_known()) {
            (Some(z), Some(f), Some(&t), Some(p)) => Value::String(record_id(z, f, t, p.set_id.as_deref())),
            _ => Value::Unknown,
        };
        after.insert("id".into(), id);
        after.insert("fqdn".into(), unknown_or(fqdn.clone().map(Value::String)));
        after.insert("owner".into(), unknown_or(me.as_ref().map(|o| Value::String(o.value()))));

        let mut requires_replace = Vec::new();
        let mut notes = Vec::new();
        if let Some(p) = prior {
            let differs = |attr: &str, now: Option<&str>| now.is_none_or(|n| p.get_str(attr) != Some(n));
            if differs("zone_id", args.zone_id.as_known().map(String::as_str)) {
                requires_replace.push("zone_id".to_string());
            }
            if differs("fqdn", fqdn.as_deref()) {
                requires_replace.push("name".to_string());
            }
            if differs("type", args.rtype.as_known().map(|t| t.as_str())) {
                requires_replace.push("type".to_string());
            }
            // Another set identifier is another record set.
            match args.policy.as_known() {
                Some(pol) if pol.set_id.as_deref() == p.get_str("set_identifier").filter(|s| !s.is_empty()) => {}
                _ => requires_replace.push("set_identifier".to_string()),
            }
        }

        match (prior, &me) {
            (Some(p), Some(me)) if requires_replace.is_empty() => {
                let label = format!("`{}` {}", fqdn.as_deref().unwrap_or("?"), me.rtype);
                match Claim::of(p.get_str("owner"), me) {
                    Claim::Ours => {}
                    Claim::Unowned | Claim::Unreadable(_) => notes
                        .push(format!("the ownership record of {label} is missing or altered; berth writes it again")),
                    Claim::SameLineage(o) => notes
                        .push(format!("record {label} passes from `{}` to `{}` in this state", o.address, me.address)),
                    claim @ Claim::OtherState(_) => {
                        if !allow_overwrite {
                            return Err(ProviderError::attr(
                                "name",
                                format!(
                                    "record {label} {}; set allow_overwrite = true to take it back",
                                    claim.describe()
                                ),
                            ));
                        }
                        notes.push(format!(
                            "record {label} {}; it will be taken back (allow_overwrite)",
                            claim.describe()
                        ));
                    }
                }
            }
            (_, Some(me)) => {
                if let (Some(zone_id), Some(f), Some(&t), Some(pol)) =
                    (args.zone_id.as_known(), &fqdn, args.rtype.as_known(), args.policy.as_known())
                {
                    let set_id = pol.set_id.as_deref();
                    let mode = self.plan_create(me, zone_id, f, t, set_id, allow_overwrite, &mut notes).await?;
                    lock(&self.create_modes).insert(create_key(ctx, zone_id, f, t), mode);
                }
            }
            (_, None) => {}
        }
        Ok(Planned { after: Value::Map(after), requires_replace, notes })
    }

    /// Decides how a new record is written, refusing to take over a record
    /// berth does not own unless `allow_overwrite` says so.
    async fn plan_create(
        &self,
        me: &Owner,
        zone_id: &str,
        fqdn: &str,
        t: RecordType,
        set_id: Option<&str>,
        allow_overwrite: bool,
        notes: &mut Vec<String>,
    ) -> ProviderResult<CreateMode> {
        let listing = self.listing(zone_id, false).await.map_err(|e| zone_error(zone_id, e))?;
        let label = match set_id {
            Some(id) => format!("`{fqdn}` {} (set `{id}`)", t.as_str()),
            None => format!("`{fqdn}` {}", t.as_str()),
        };
        let owner_rr = owner_record(&listing, fqdn, t, set_id);
        let owner_name = names::owner_name_for(fqdn, t.as_str(), set_id);
        let claim = Claim::of(owner_rr.as_ref().map(|o| o.value.as_str()), me);
        // An owner record that exists cannot be CREATEd again.
        let owner_action = if owner_rr.is_some() { ChangeAction::Upsert } else { ChangeAction::Create };
        let exists = listing.find(fqdn, t.as_str(), set_id).is_some();
        let take_over = |what: String, notes: &mut Vec<String>| {
            if allow_overwrite {
                notes.push(format!("{what}; it will be overwritten (allow_overwrite = true)"));
                Ok(())
            } else {
                Err(ProviderError::attr("name", format!("{what}; set allow_overwrite = true to take it over")))
            }
        };
        match (exists, &claim) {
            (false, Claim::Unowned) => {}
            (false, Claim::Ours | Claim::SameLineage(_)) => {
                notes.push(format!("reusing the ownership record `{owner_name}` of {label} left by an interrupted run"))
            }
            (false, _) => take_over(format!("ownership record `{owner_name}` of {label} {}", claim.describe()), notes)?,
            (true, Claim::Ours) => notes.push(format!("adopting record {label} left by an interrupted run")),
            (true, _) => take_over(format!("record {label} already exists and {}", claim.describe()), notes)?,
        }
        let record = if exists { ChangeAction::Upsert } else { ChangeAction::Create };
        Ok(CreateMode { record, owner: owner_action })
    }

    /// The record a planned value describes, every argument known.
    async fn resolve_spec(&self, planned: &Value) -> ProviderResult<RecordSpec> {
        let args = parse_args(planned).map_err(first)?;
        let unknown = |a: &str| ProviderError::attr(a, format!("`{a}` is still unknown at apply time"));
        let zone_id = args.zone_id.known().ok_or_else(|| unknown("zone_id"))?;
        let name = args.name.known().ok_or_else(|| unknown("name"))?;
        let rtype = args.rtype.known().ok_or_else(|| unknown("type"))?;
        let policy = args.policy.known().ok_or_else(|| unknown("alias"))?;
        let values = match args.records {
            Field::Absent if policy.alias.is_some() => Vec::new(),
            r => r.known().ok_or_else(|| unknown("records"))?,
        };
        let ttl = match args.ttl {
            Field::Known(n) => n,
            Field::Absent => DEFAULT_TTL,
            Field::Unknown => return Err(unknown("ttl")),
        };
        let fqdn = match planned.get_str("fqdn") {
            Some(f) => f.to_string(),
            None => names::fqdn(&name, &self.zone_name(&zone_id).await.map_err(|e| zone_error(&zone_id, e))?),
        };
        Ok(RecordSpec {
            zone_id,
            name,
            fqdn,
            rtype,
            ttl,
            values,
            allow_overwrite: args.allow_overwrite.known().unwrap_or(false),
            sensitive: args.records_sensitive,
            policy,
        })
    }

    async fn prepare(&self, index: usize, op: ApplyOp) -> Prepared {
        let addr = op.ctx.addr.to_string();
        let item = |spec: &RecordSpec, me: &Owner, changes, deletes, ok, fail| {
            let owner = Some(me.clone());
            Prepared::Send(spec.zone_id.clone(), Item { index, label: spec.label(), changes, deletes, ok, fail, owner })
        };
        match op.kind {
            ChangeKind::Create { planned } => {
                let spec = match self.resolve_spec(&planned).await {
                    Ok(s) => s,
                    Err(e) => return Prepared::Done(ApplyOutcome::failed(None, e)),
                };
                let me = Owner::new(&op.ctx.lineage, &addr, spec.rtype.as_str());
                let key = create_key(&op.ctx, &spec.zone_id, &spec.fqdn, spec.rtype);
                let mode = lock(&self.create_modes)
                    .remove(&key)
                    .unwrap_or_else(|| CreateMode::default_for(spec.allow_overwrite));
                let changes = record_change(mode.record, &spec)
                    .and_then(|r| Ok(vec![r, owner_change(mode.owner, &spec, &me)?]));
                match changes {
                    Ok(c) => item(&spec, &me, c, false, Some(spec.state(Value::String(me.value()))), None),
                    Err(e) => Prepared::Done(ApplyOutcome::failed(None, e)),
                }
            }
            ChangeKind::Update { prior, planned } => {
                let spec = match self.resolve_spec(&planned).await {
                    Ok(s) => s,
                    Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                };
                let before = RecordSpec::from_state(&prior).ok();
                if before.as_ref().is_some_and(|b| !b.same_place(&spec)) {
                    return Prepared::Done(ApplyOutcome::failed(
                        Some(prior),
                        ProviderError::new(format!(
                            "record {} cannot move to another zone, name or type in place; it must be replaced",
                            spec.label()
                        )),
                    ));
                }
                let me = Owner::new(&op.ctx.lineage, &addr, spec.rtype.as_str());
                let mut changes = Vec::new();
                // Only what differs is sent: a host switch is one UPSERT of
                // the record, its owner record is already right.
                let differs = |b: &RecordSpec| b.ttl != spec.ttl || b.values != spec.values || b.policy != spec.policy;
                if before.as_ref().is_none_or(differs) {
                    match record_change(ChangeAction::Upsert, &spec) {
                        Ok(c) => changes.push(c),
                        Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                    }
                }
                // An owner in an older format is written again in today's.
                if prior.get_str("owner") != Some(me.value().as_str()) {
                    match owner_change(ChangeAction::Upsert, &spec, &me) {
                        Ok(c) => changes.push(c),
                        Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                    }
                }
                let state = spec.state(Value::String(me.value()));
                if changes.is_empty() {
                    return Prepared::Done(ApplyOutcome::ok(Some(state)));
                }
                item(&spec, &me, changes, false, Some(state), Some(prior))
            }
            ChangeKind::Delete { prior } => {
                let spec = match RecordSpec::from_state(&prior) {
                    Ok(s) => s,
                    Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                };
                let me = Owner::new(&op.ctx.lineage, &addr, spec.rtype.as_str());
                match self.delete_changes(&spec, &me, &prior).await {
                    Ok(None) => Prepared::Done(ApplyOutcome::ok(None)),
                    Ok(Some(c)) => item(&spec, &me, c, true, None, Some(prior)),
                    Err(e) => Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                }
            }
        }
    }

    /// The DELETEs that remove a record and its owner record, built from
    /// the sets as Route53 lists them: a DELETE must repeat the set exactly,
    /// and a set edited outside berth (another TTL, value order, case or
    /// escaping) or an owner written by an older berth (another value shape)
    /// would refuse one built from the state. `None` when nothing is left to
    /// delete. A record now owned elsewhere is theirs: it is forgotten.
    async fn delete_changes(&self, spec: &RecordSpec, me: &Owner, prior: &Value) -> ProviderResult<Option<Vec<Change>>> {
        let listing = match self.listing(&spec.zone_id, false).await {
            Ok(l) => l,
            // The zone is gone, and its records with it.
            Err(e) if e.is("NoSuchHostedZone") => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let owner = owner_record(&listing, &spec.fqdn, spec.rtype, spec.set_id());
        // The owner as listed decides; the recorded one when none is listed.
        let claim = Claim::of(owner.as_ref().map(|o| o.value.as_str()).or(prior.get_str("owner")), me);
        if let Claim::SameLineage(o) | Claim::OtherState(o) = &claim {
            tracing::warn!(
                record = %spec.label(),
                owner = %o.address,
                "record is now owned elsewhere; removing it from the state without deleting it"
            );
            return Ok(None);
        }
        let delete = |set: &ResourceRecordSet| {
            built(Change::builder().action(ChangeAction::Delete).resource_record_set(set.clone()).build())
        };
        let mut changes = Vec::new();
        if let Some(set) = spec.find(&listing) {
            changes.push(delete(set)?);
        }
        if claim == Claim::Ours
            && let Some(set) = listing.get(&spec.owner_name(), "TXT")
        {
            changes.push(delete(set)?);
        }
        Ok((!changes.is_empty()).then_some(changes))
    }

    pub(super) async fn apply_records(&self, ops: Vec<ApplyOp>, sink: ApplySink) {
        // Deletes are built from the sets as listed: one fresh scan of each
        // zone they touch, shared by all of them (a listing cached by the
        // plan may predate a record made since, which would then stay).
        let deleting: std::collections::BTreeSet<String> = ops
            .iter()
            .filter_map(|op| match &op.kind {
                ChangeKind::Delete { prior } => prior.get_str("zone_id").map(str::to_string),
                _ => None,
            })
            .collect();
        for zone in deleting {
            self.forget_listing(&zone);
        }
        let mut by_zone: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        for (index, op) in ops.into_iter().enumerate() {
            match self.prepare(index, op).await {
                Prepared::Send(zone, item) => by_zone.entry(zone).or_default().push(item),
                Prepared::Done(outcome) => report(&sink, index, outcome),
            }
        }
        let sent: Vec<(String, Vec<Item>)> = futures::stream::iter(by_zone)
            .map(|(zone, items)| self.send_zone(zone, items, &sink))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        // Route53 accepted every change here: one slow to propagate is a
        // warning, never a failure (a failed create would be replaced).
        let slow = self.wait_for_sync(sent.iter().map(|(id, _)| id.clone()).collect()).await;
        for (id, items) in sent {
            for item in items {
                let mut outcome = ApplyOutcome::ok(item.ok);
                if let Some(w) = slow.get(&id) {
                    outcome = outcome.with_warning(format!("record {}: {w}", item.label));
                }
                report(&sink, item.index, outcome);
            }
        }
    }

    /// Sends one zone's items in as few requests as the limits allow.
    /// Reports failures at once, and successes too when not waiting for
    /// sync; returns the rest by change id.
    async fn send_zone(&self, zone: String, mut items: Vec<Item>, sink: &ApplySink) -> Vec<(String, Vec<Item>)> {
        // Deletes first: a record replaced by one of another type at the
        // same name (A to CNAME) must be gone before its successor arrives.
        items.sort_by_key(|i| !i.deletes);
        let weighted = items
            .into_iter()
            .map(|i| {
                let w = Weight::of_changes(&i.changes);
                (i, w)
            })
            .collect();
        let (requests, too_big) = batch::pack(weighted);
        for (item, w) in too_big {
            let e = ProviderError::attr(
                "records",
                format!(
                    "record {} is too big for one Route53 request ({} records and {} characters counted; \
                     at most {} and {})",
                    item.label,
                    w.elements,
                    w.chars,
                    batch::MAX_ELEMENTS,
                    batch::MAX_VALUE_CHARS
                ),
            );
            report(sink, item.index, ApplyOutcome::failed(item.fail, e));
        }
        tracing::debug!(zone = %zone, requests = requests.len(), "sending record changes");
        let mut waiting = Vec::new();
        for request in requests {
            for (items, result) in self.submit(&zone, request).await {
                match result {
                    Ok(id) if self.settings.wait_for_sync && !id.is_empty() => waiting.push((id, items)),
                    Ok(_) => {
                        for item in items {
                            report(sink, item.index, ApplyOutcome::ok(item.ok));
                        }
                    }
                    Err(e) => {
                        for item in items {
                            let mut e = e.clone();
                            if !e.message.contains(&item.label) {
                                e.message = format!("cannot change record {}: {}", item.label, e.message);
                            }
                            report(sink, item.index, ApplyOutcome::failed(item.fail, e));
                        }
                    }
                }
            }
        }
        self.forget_listing(&zone);
        waiting
    }

    /// Sends one request and settles what Route53 refuses.
    ///
    /// A request is all or nothing, and a refusal names each change at
    /// fault (see [`batch::refusals`]). Those are settled against a fresh
    /// listing of the zone ([`Self::settle`]): a change already in effect
    /// (an earlier attempt landed and its answer was lost; a record deleted
    /// since) is done; a DELETE whose values were edited outside berth is
    /// sent again with the values as listed; a CREATE meeting berth's own
    /// record becomes an UPSERT; a CREATE meeting a record berth does not
    /// own fails alone, with the owner named. The rest of the request is
    /// sent again. When a refusal names no change, the request is split in
    /// halves until the changes at fault stand alone.
    pub(super) fn submit<'a>(&'a self, zone: &'a str, items: Vec<Item>) -> BoxFuture<'a, Submitted> {
        self.submit_round(zone, items, 0)
    }

    fn submit_round<'a>(&'a self, zone: &'a str, items: Vec<Item>, round: u32) -> BoxFuture<'a, Submitted> {
        Box::pin(async move {
            if items.is_empty() {
                return Vec::new();
            }
            let changes: Vec<Change> = items.iter().flat_map(|i| i.changes.iter().cloned()).collect();
            let batch = match ChangeBatch::builder().set_changes(Some(changes)).build() {
                Ok(b) => b,
                Err(e) => return vec![(items, Err(ProviderError::new(format!("cannot build a Route53 request: {e}"))))],
            };
            let sent = self.client.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await;
            let e = match sent {
                Ok(out) => return vec![(items, Ok(out.change_info().map(|c| bare_id(c.id())).unwrap_or_default()))],
                Err(e) => ApiError::from_change(zone, e),
            };
            if !(e.is("InvalidChangeBatch") || e.is("InvalidInput")) {
                return vec![(items, Err(e.into()))];
            }
            if round < MAX_SETTLE_ROUNDS
                && let Some(refused) = batch::refusals(&e.messages)
                && let Some(settled) = self.settle(zone, items.iter().collect(), &refused).await
            {
                tracing::debug!(zone, refused = refused.len(), "change batch refused; settling the changes at fault");
                let (done, again) = split_settled(items, settled);
                let mut out: Submitted = done.into_iter().map(|(item, r)| (vec![item], r)).collect();
                let weighted = again.into_iter().map(|i| {
                    let w = Weight::of_changes(&i.changes);
                    (i, w)
                });
                let (requests, too_big) = batch::pack(weighted.collect());
                for (item, _) in too_big {
                    let msg = format!("record {} is too big for one Route53 request", item.label);
                    out.push((vec![item], Err(ProviderError::attr("records", msg).with_kind(ProviderErrorKind::Invalid))));
                }
                for request in requests {
                    out.extend(self.submit_round(zone, request, round + 1).await);
                }
                return out;
            }
            if items.len() > 1 {
                tracing::debug!(zone, items = items.len(), "change batch refused; splitting it to find the culprit");
                let mut left = items;
                let right = left.split_off(left.len() / 2);
                let mut out = self.submit_round(zone, left, round + 1).await;
                out.extend(self.submit_round(zone, right, round + 1).await);
                return out;
            }
            vec![(items, Err(e.into()))]
        })
    }

    /// Settles the refused changes of `items` against a fresh listing.
    /// Returns, by position in `items`, the items that are finished (done,
    /// or failed with their reason) and the changes to send again for the
    /// others; `None` when a refusal names a change none of `items` holds
    /// (the caller then cannot tell the culprits) or the zone cannot be read.
    async fn settle(&self, zone: &str, items: Vec<&Item>, refused: &[Refusal]) -> Option<Settled> {
        let at = |r: &Refusal| -> Option<(usize, usize)> {
            let name = names::from_api(&r.name);
            items.iter().enumerate().find_map(|(i, item)| {
                item.changes.iter().position(|c| {
                    let Some(set) = c.resource_record_set() else { return false };
                    names::from_api(set.name()) == name
                        && r.rtype.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(set.r#type().as_str()))
                        && r.action.as_ref().is_none_or(|a| a == c.action())
                }).map(|j| (i, j))
            })
        };
        let located: Vec<((usize, usize), &Refusal)> =
            refused.iter().map(|r| at(r).map(|p| (p, r))).collect::<Option<_>>()?;
        self.forget_listing(zone);
        let listing = self.listing(zone, true).await.ok()?;
        let mut failed: BTreeMap<usize, ProviderError> = BTreeMap::new();
        let mut changes: BTreeMap<usize, Vec<Option<Change>>> = BTreeMap::new();
        for ((i, j), r) in located {
            let item = items[i];
            let slot = changes.entry(i).or_insert_with(|| item.changes.iter().cloned().map(Some).collect());
            let Some(want) = item.changes[j].resource_record_set() else { continue };
            let fqdn = names::from_api(want.name());
            let have = listing.find(&fqdn, want.r#type().as_str(), want.set_identifier());
            match (item.changes[j].action(), &r.why, have) {
                // Gone already: the DELETE is done.
                (ChangeAction::Delete, _, None) => slot[j] = None,
                // Edited outside berth since it was read: delete it as listed.
                (ChangeAction::Delete, _, Some(h)) if !same_record_set(h, want) => {
                    slot[j] = Change::builder().action(ChangeAction::Delete).resource_record_set(h.clone()).build().ok();
                }
                // Gone again since: send the CREATE as it was.
                (ChangeAction::Create, _, None) => {}
                (ChangeAction::Create, _, Some(h)) => match self.claim_of(&listing, item, want, h) {
                    // Ours (an earlier attempt landed, or a record this
                    // address owns): write it over, which changes nothing
                    // when it is already right.
                    None => {
                        slot[j] = Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(want.clone())
                            .build()
                            .ok();
                    }
                    Some(e) => {
                        failed.insert(i, e);
                    }
                },
                // Refused for a reason settling cannot remove.
                _ => {
                    let why = match &r.why {
                        batch::Why::Other(m) => m.clone(),
                        w => format!("{w:?}"),
                    };
                    let e = ProviderError::new(format!("Route53 refused the change of record {}: {why}", item.label))
                        .with_kind(ProviderErrorKind::Invalid);
                    failed.insert(i, e);
                }
            }
        }
        // The changes no refusal named: those already in effect are settled
        // the same way, so an attempt that landed whole (its answer lost) is
        // settled in one round, whether Route53 names every change it
        // refuses or, like some emulators, only the first.
        let named: std::collections::BTreeSet<(usize, usize)> = refused.iter().filter_map(at).collect();
        for (i, item) in items.iter().enumerate() {
            if failed.contains_key(&i) {
                continue;
            }
            for (j, c) in item.changes.iter().enumerate() {
                let Some(want) = c.resource_record_set() else { continue };
                if named.contains(&(i, j)) {
                    continue;
                }
                let have = listing.find(&names::from_api(want.name()), want.r#type().as_str(), want.set_identifier());
                let settled = match (c.action(), have) {
                    (ChangeAction::Delete, None) => Some(None),
                    (ChangeAction::Create, Some(h)) if same_record_set(h, want) => {
                        Some(Change::builder().action(ChangeAction::Upsert).resource_record_set(want.clone()).build().ok())
                    }
                    _ => None,
                };
                if let Some(new) = settled {
                    let slot = changes.entry(i).or_insert_with(|| item.changes.iter().cloned().map(Some).collect());
                    slot[j] = new;
                }
            }
        }
        let mut done = Vec::new();
        let mut again = Vec::new();
        for (i, slot) in changes {
            if let Some(e) = failed.remove(&i) {
                done.push((i, Err(e)));
                continue;
            }
            let left: Vec<Change> = slot.into_iter().flatten().collect();
            if left.is_empty() { done.push((i, Ok(String::new()))) } else { again.push((i, left)) }
        }
        Some((done, again))
    }

    /// Whether the set `have`, found where `item` wants to CREATE `want`,
    /// is berth's to write over: `None` when it is (identical, or owned by
    /// this item's address), else the error to fail the item with.
    fn claim_of(
        &self,
        listing: &ZoneListing,
        item: &Item,
        want: &ResourceRecordSet,
        have: &ResourceRecordSet,
    ) -> Option<ProviderError> {
        if same_record_set(have, want) {
            return None;
        }
        let me = item.owner.as_ref()?;
        let fqdn = names::from_api(want.name());
        let owner_value = if want.r#type().as_str() == "TXT" && fqdn.starts_with(names::OWNER_PREFIX) {
            // The owner record itself: its own value says who owns it.
            Some(have.resource_records().iter().map(|r| rdata::decode_txt(r.value())).collect::<Vec<_>>().join(" "))
        } else {
            let t = RecordType::parse(want.r#type().as_str())?;
            owner_record(listing, &fqdn, t, want.set_identifier()).map(|o| o.value)
        };
        match Claim::of(owner_value.as_deref(), me) {
            Claim::Ours => None,
            claim => Some(
                ProviderError::attr(
                    "name",
                    format!(
                        "record {} was created outside this run after it was planned, and {}; \
                         set allow_overwrite = true to take it over",
                        item.label,
                        claim.describe()
                    ),
                )
                .with_kind(ProviderErrorKind::Conflict),
            ),
        }
    }

    pub(super) async fn refresh_records(&self, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        let mut out: Vec<Option<Refreshed>> = vec![None; items.len()];
        let mut by_zone: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, prior)) in items.iter().enumerate() {
            match prior.get_str("zone_id") {
                Some(z) => by_zone.entry(z.to_string()).or_default().push(i),
                None => out[i] = Some(Err(ProviderError::attr("zone_id", "the recorded state has no `zone_id`"))),
            }
        }
        let listings: Vec<(Vec<usize>, Result<_, ApiError>)> = futures::stream::iter(by_zone)
            .map(|(zone, idx)| async move { (idx, self.listing(&zone, true).await) })
            .buffer_unordered(4)
            .collect()
            .await;
        for (idx, listing) in listings {
            for i in idx {
                out[i] = Some(match &listing {
                    // The zone is gone, and its records with it.
                    Err(e) if e.is("NoSuchHostedZone") => Ok(None),
                    Err(e) => Err(e.clone().into()),
                    Ok(l) => refresh_one(l, &items[i].1),
                });
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(ProviderError::new("record was not refreshed")))).collect()
    }

    pub(super) async fn adopt_record(&self, ctx: &OpContext, config: &Value) -> ProviderResult<Option<Value>> {
        // The planner adopts before the configuration is evaluated and
        // passes `Null`: without a zone there is nothing to look in. The
        // record's plan adopts it instead (an UPSERT over its own record).
        if config.is_null() {
            return Ok(None);
        }
        let args = parse_args(config).map_err(first)?;
        let (Some(zone_id), Some(name), Some(&t), Some(pol)) =
            (args.zone_id.as_known(), args.name.as_known(), args.rtype.as_known(), args.policy.as_known())
        else {
            return Ok(None);
        };
        let set_id = pol.set_id.as_deref();
        let fqdn = names::fqdn(name, &self.zone_name(zone_id).await.map_err(|e| zone_error(zone_id, e))?);
        let listing = self.listing(zone_id, true).await.map_err(|e| zone_error(zone_id, e))?;
        let Some(set) = listing.find(&fqdn, t.as_str(), set_id) else { return Ok(None) };
        let me = Owner::new(&ctx.lineage, &ctx.addr.to_string(), t.as_str());
        let Some(owner) = owner_record(&listing, &fqdn, t, set_id) else { return Ok(None) };
        if Claim::of(Some(&owner.value), &me) != Claim::Ours {
            return Ok(None);
        }
        let spec = RecordSpec {
            zone_id: zone_id.clone(),
            name: name.clone(),
            fqdn: fqdn.clone(),
            rtype: t,
            ttl: set.ttl().unwrap_or(DEFAULT_TTL),
            values: found_values(set, t),
            allow_overwrite: args.allow_overwrite.known().unwrap_or(false),
            sensitive: args.records_sensitive,
            policy: Policy::of_set(set),
        };
        Ok(Some(spec.state(if owner.exact { Value::String(owner.value) } else { Value::Null })))
    }
}

fn refresh_one(listing: &ZoneListing, prior: &Value) -> Refreshed {
    let spec = RecordSpec::from_state(prior)?;
    let Some(set) = spec.find(listing) else {
        return Ok(None);
    };
    let mut m = prior.as_map().cloned().unwrap_or_default();
    let policy = Policy::of_set(set);
    let records = Value::List(found_values(set, spec.rtype).into_iter().map(Value::String).collect());
    let alias = policy.alias.is_some();
    m.insert("records".into(), if alias { Value::Null } else { records.mark_if(spec.sensitive) });
    m.insert("ttl".into(), set.ttl().map(Value::from).unwrap_or(Value::Null));
    for (k, v) in policy.attrs() {
        m.insert(k.into(), v);
    }
    let owner = owner_record(listing, &spec.fqdn, spec.rtype, spec.set_id());
    let owner = owner.filter(|o| o.exact).map(|o| Value::String(o.value));
    m.insert("owner".into(), owner.unwrap_or(Value::Null));
    Ok(Some(Value::Map(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn config(name: &str, t: &str, records: Vec<Value>) -> Value {
        obj([
            ("zone_id", Value::str("Z1")),
            ("name", Value::str(name)),
            ("type", Value::str(t)),
            ("records", Value::List(records)),
        ])
    }

    #[test]
    fn a_record_names_its_ttl_for_the_drain_of_the_hosts_it_leaves() {
        let r = obj([("ttl", Value::Number(30.0))]);
        assert_eq!(RECORD.cache_ttl_of(&r), Some(30));
        // Route53's default when `ttl` is left out.
        assert_eq!(RECORD.cache_ttl_of(&obj([("ttl", Value::Null)])), Some(300));
        assert_eq!(RECORD.cache_ttl_of(&obj([("ttl", Value::Unknown)])), None);
    }

    #[test]
    fn validation_reports_every_problem_with_its_attribute() {
        let c = obj([
            ("zone_id", Value::str("Z1")),
            ("name", Value::str("bad_label.internal")),
            ("type", Value::str("A")),
            ("ttl", Value::str("soon")),
            ("records", Value::List(vec!["10.0.0.1".into(), "999.0.0.1".into()])),
        ]);
        let errs = validate_record(&c);
        let attrs: Vec<_> = errs.iter().map(|e| e.attribute.clone().unwrap_or_default()).collect();
        assert_eq!(attrs, vec!["name", "ttl", "records"], "{errs:?}");
        assert!(errs[0].message.contains("`bad_label`"), "{}", errs[0].message);
        assert!(errs[2].message.contains("`records[1]`") && errs[2].message.contains("`999.0.0.1`"));
    }

    #[test]
    fn unknown_values_are_skipped_and_underscores_allowed_for_srv() {
        assert!(validate_record(&config("svc", "A", vec![Value::Unknown])).is_empty());
        assert!(validate_record(&config("_sip._tcp", "SRV", vec!["10 5 5060 sip.internal".into()])).is_empty());
        let e = validate_record(&config("_sip._tcp", "A", vec!["10.0.0.1".into()]));
        assert_eq!(e.len(), 1);
        let e = validate_record(&config("x", "PTR", vec!["a".into()]));
        assert!(e[0].message.contains("`PTR`"));
        let e = validate_record(&config("x", "CNAME", vec!["a.internal".into(), "b.internal".into()]));
        assert!(e[0].message.contains("exactly one"));
    }

    #[test]
    fn sensitive_values_are_not_echoed_in_errors() {
        let c = config("x", "A", vec![Value::Sensitive(Box::new("not-an-ip".into()))]);
        let e = validate_record(&c);
        assert!(!e[0].message.contains("not-an-ip"), "{}", e[0].message);
    }

    #[test]
    fn a_policy_reads_back_from_its_state_and_is_sent_whole() {
        let policy = Policy {
            set_id: Some("blue".into()),
            weight: Some(10),
            multivalue: false,
            alias: Some(Alias { name: "internal-web-1.elb.amazonaws.com".into(), zone_id: "Z2".into(), evaluate: true }),
        };
        let v = Value::Map(policy.attrs().into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        assert_eq!(Policy::of_state(&v), policy);
        assert_eq!(Policy::of_state(&Value::Map(Map::new())), Policy::default());
        // Terraform's state writes "" and [] for none.
        let terraform = crate::value::obj([("set_identifier", Value::str("")), ("alias", Value::List(vec![]))]);
        assert_eq!(Policy::of_state(&terraform), Policy::default());
        let spec = RecordSpec {
            zone_id: "Z1".into(),
            name: "web".into(),
            fqdn: "web.internal".into(),
            rtype: RecordType::A,
            ttl: 60,
            values: Vec::new(),
            allow_overwrite: false,
            sensitive: false,
            policy,
        };
        let c = record_change(ChangeAction::Create, &spec).unwrap();
        let set = c.resource_record_set().unwrap();
        assert_eq!((set.set_identifier(), set.weight(), set.ttl()), (Some("blue"), Some(10), None));
        assert_eq!(set.alias_target().map(|a| a.dns_name()), Some("internal-web-1.elb.amazonaws.com"));
        assert!(set.resource_records().is_empty());
        let state = spec.state(Value::Null);
        assert_eq!(state.get_str("id"), Some("Z1_web.internal_A_blue"));
        assert_eq!((state.get("ttl"), state.get("records")), (Some(&Value::Null), Some(&Value::Null)));
        assert!(spec.owner_name().starts_with("_berth-owner-a-"), "{}", spec.owner_name());
    }

    #[test]
    fn updates_are_upserts() {
        let spec = RecordSpec {
            zone_id: "Z1".into(),
            name: "micro-search".into(),
            fqdn: "micro-search.internal".into(),
            rtype: RecordType::A,
            ttl: 60,
            values: vec!["10.0.1.9".into()],
            allow_overwrite: false,
            sensitive: false,
            policy: Policy::default(),
        };
        let c = rrset_change(ChangeAction::Upsert, &spec.fqdn, spec.rtype, spec.ttl, &spec.values).unwrap();
        assert_eq!(*c.action(), ChangeAction::Upsert);
        let state = spec.state(Value::Null);
        assert_eq!(state.get_str("id"), Some("Z1_micro-search.internal_A"));
    }
}
