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
//!   always resolves. A request Route53 rejects as a whole is split in halves
//!   until the changes at fault are found, so one bad record does not fail
//!   the other 499.
//! - **Refresh** reads one listing per zone and reports the values found, so
//!   a record edited outside berth shows as drift and one deleted outside is
//!   created again.

use super::batch::{self, Weight};
use super::names;
use super::rdata::{self, RecordType};
use super::registry::{Claim, OWNER_TTL, Owner};
use super::{ApiError, Field, Route53, ZoneListing, bare_id, bool_field, field, lock, report, required, str_field};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, Attribute, ChangeKind, OpContext, Planned, ProviderError, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet};
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
        Attribute::arg("ttl"),
        Attribute::arg("records").required(),
        Attribute::arg("allow_overwrite"),
    ])
    .with_exported(&["id", "fqdn", "owner"])
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
    let records = match field(config, "records") {
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
    if errs.is_empty() {
        Ok(RecordArgs { zone_id, name, rtype, ttl, records, records_sensitive, allow_overwrite })
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
}

impl RecordSpec {
    fn label(&self) -> String {
        format!("`{}` {}", self.fqdn, self.rtype.as_str())
    }

    fn owner_name(&self) -> String {
        names::owner_name(&self.fqdn, self.rtype.as_str())
    }

    fn same_place(&self, other: &RecordSpec) -> bool {
        self.zone_id == other.zone_id && self.fqdn == other.fqdn && self.rtype == other.rtype
    }

    fn state(&self, owner: Value) -> Value {
        let records = Value::List(self.values.iter().map(|v| Value::str(v.clone())).collect());
        let mut m = Map::new();
        m.insert("zone_id".into(), Value::str(&self.zone_id));
        m.insert("name".into(), Value::str(&self.name));
        m.insert("type".into(), Value::str(self.rtype.as_str()));
        m.insert("ttl".into(), Value::from(self.ttl));
        m.insert("records".into(), records.mark_if(self.sensitive));
        m.insert("allow_overwrite".into(), Value::Bool(self.allow_overwrite));
        m.insert("id".into(), Value::String(record_id(&self.zone_id, &self.fqdn, self.rtype)));
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
        })
    }
}

fn record_id(zone_id: &str, fqdn: &str, t: RecordType) -> String {
    format!("{zone_id}_{fqdn}_{}", t.as_str())
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
}

/// The owner record of a record, as found in a listing.
struct OwnerRecord {
    value: String,
    /// Exactly as berth writes it (one value, [`OWNER_TTL`]), so berth can
    /// delete it without reading it again.
    exact: bool,
}

fn owner_record(listing: &ZoneListing, fqdn: &str, t: RecordType) -> Option<OwnerRecord> {
    let set = listing.get(&names::owner_name(fqdn, t.as_str()), "TXT")?;
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
}

/// Items as sent, with the change id Route53 gave them or its refusal.
pub(super) type Submitted = Vec<(Vec<Item>, Result<String, ApiError>)>;

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
            let owner = names::owner_name(f, t.as_str());
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
        after.insert(
            "ttl".into(),
            match args.ttl {
                Field::Known(n) => Value::from(n),
                Field::Absent => Value::from(DEFAULT_TTL),
                Field::Unknown => Value::Unknown,
            },
        );
        after.insert(
            "records".into(),
            match &args.records {
                Field::Known(v) => {
                    Value::List(v.iter().map(|s| Value::str(s.clone())).collect()).mark_if(args.records_sensitive)
                }
                _ => config.get("records").cloned().unwrap_or(Value::Unknown),
            },
        );
        after.insert(
            "allow_overwrite".into(),
            match args.allow_overwrite {
                Field::Unknown => Value::Unknown,
                _ => Value::Bool(allow_overwrite),
            },
        );
        let id = match (args.zone_id.as_known(), &fqdn, args.rtype.as_known()) {
            (Some(z), Some(f), Some(&t)) => Value::String(record_id(z, f, t)),
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
                if let (Some(zone_id), Some(f), Some(&t)) = (args.zone_id.as_known(), &fqdn, args.rtype.as_known()) {
                    let mode = self.plan_create(me, zone_id, f, t, allow_overwrite, &mut notes).await?;
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
        allow_overwrite: bool,
        notes: &mut Vec<String>,
    ) -> ProviderResult<CreateMode> {
        let listing = self.listing(zone_id, false).await.map_err(|e| zone_error(zone_id, e))?;
        let label = format!("`{fqdn}` {}", t.as_str());
        let owner_rr = owner_record(&listing, fqdn, t);
        let owner_name = names::owner_name(fqdn, t.as_str());
        let claim = Claim::of(owner_rr.as_ref().map(|o| o.value.as_str()), me);
        // An owner record that exists cannot be CREATEd again.
        let owner_action = if owner_rr.is_some() { ChangeAction::Upsert } else { ChangeAction::Create };
        let exists = listing.get(fqdn, t.as_str()).is_some();
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
        let values = args.records.known().ok_or_else(|| unknown("records"))?;
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
        })
    }

    async fn prepare(&self, index: usize, op: ApplyOp) -> Prepared {
        let addr = op.ctx.addr.to_string();
        let item = |spec: &RecordSpec, changes, deletes, ok, fail| {
            Prepared::Send(spec.zone_id.clone(), Item { index, label: spec.label(), changes, deletes, ok, fail })
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
                let changes = rrset_change(mode.record, &spec.fqdn, spec.rtype, spec.ttl, &spec.values)
                    .and_then(|r| Ok(vec![r, owner_change(mode.owner, &spec, &me)?]));
                match changes {
                    Ok(c) => item(&spec, c, false, Some(spec.state(Value::String(me.value()))), None),
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
                if before.as_ref().is_none_or(|b| b.ttl != spec.ttl || b.values != spec.values) {
                    match rrset_change(ChangeAction::Upsert, &spec.fqdn, spec.rtype, spec.ttl, &spec.values) {
                        Ok(c) => changes.push(c),
                        Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                    }
                }
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
                item(&spec, changes, false, Some(state), Some(prior))
            }
            ChangeKind::Delete { prior } => {
                let spec = match RecordSpec::from_state(&prior) {
                    Ok(s) => s,
                    Err(e) => return Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                };
                let me = Owner::new(&op.ctx.lineage, &addr, spec.rtype.as_str());
                let record = rrset_change(ChangeAction::Delete, &spec.fqdn, spec.rtype, spec.ttl, &spec.values);
                let changes = match Claim::of(prior.get_str("owner"), &me) {
                    Claim::Ours => record.and_then(|r| Ok(vec![r, owner_change(ChangeAction::Delete, &spec, &me)?])),
                    Claim::Unowned | Claim::Unreadable(_) => record.map(|r| vec![r]),
                    Claim::SameLineage(o) | Claim::OtherState(o) => {
                        // Someone else has taken the record over since: it is
                        // theirs to delete. Forget it.
                        tracing::warn!(
                            record = %spec.label(),
                            owner = %o.address,
                            "record is now owned elsewhere; removing it from the state without deleting it"
                        );
                        return Prepared::Done(ApplyOutcome::ok(None));
                    }
                };
                match changes {
                    Ok(c) => item(&spec, c, true, None, Some(prior)),
                    Err(e) => Prepared::Done(ApplyOutcome::failed(Some(prior), e)),
                }
            }
        }
    }

    pub(super) async fn apply_records(&self, ops: Vec<ApplyOp>, sink: ApplySink) {
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
        let failed = self.wait_for_sync(sent.iter().map(|(id, _)| id.clone()).collect()).await;
        for (id, items) in sent {
            for item in items {
                match failed.get(&id) {
                    None => report(&sink, item.index, ApplyOutcome::ok(item.ok)),
                    Some(e) => report(
                        &sink,
                        item.index,
                        ApplyOutcome::failed(item.ok, ProviderError::new(format!("record {}: {e}", item.label))),
                    ),
                }
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
                            let msg = format!("cannot change record {}: {e}", item.label);
                            report(sink, item.index, ApplyOutcome::failed(item.fail, ProviderError::new(msg)));
                        }
                    }
                }
            }
        }
        self.forget_listing(&zone);
        waiting
    }

    /// Sends one request. Route53 applies a request whole or not at all, so
    /// when it refuses the batch, the halves are sent apart, recursively,
    /// until the items at fault stand alone; the rest go through.
    ///
    /// A refusal can also be the request meeting itself: an attempt landed,
    /// its answer was lost (a dropped connection), and the SDK's retry of
    /// the CREATE found the record there. When every change of a refused
    /// request is already in effect, it is settled: its record sets are sent
    /// again as UPSERTs (which change nothing) for a change id to wait on.
    pub(super) fn submit<'a>(&'a self, zone: &'a str, items: Vec<Item>) -> BoxFuture<'a, Submitted> {
        self.submit_split(zone, items, true)
    }

    /// When every change is already in effect, the result of the request
    /// that made it so: a change id (or none, when there is nothing left to
    /// wait for). `None` when some change is not in effect.
    async fn settle_landed(&self, zone: &str, changes: &[Change]) -> Option<Result<String, ApiError>> {
        let listing = self.listing(zone, true).await.ok()?;
        let in_effect = changes.iter().all(|c| {
            let Some(want) = c.resource_record_set() else { return false };
            let have = listing.get(&names::from_api(want.name()), want.r#type().as_str());
            match c.action() {
                ChangeAction::Delete => have.is_none(),
                _ => have.is_some_and(|h| same_record_set(h, want)),
            }
        });
        if !in_effect {
            return None;
        }
        let upserts: Vec<Change> = changes
            .iter()
            .filter(|c| *c.action() != ChangeAction::Delete)
            .filter_map(|c| Change::builder().action(ChangeAction::Upsert).set_resource_record_set(c.resource_record_set().cloned()).build().ok())
            .collect();
        if upserts.is_empty() {
            return Some(Ok(String::new()));
        }
        let batch = ChangeBatch::builder().set_changes(Some(upserts)).build().ok()?;
        let sent = self.client.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await;
        Some(
            sent.map(|out| out.change_info().map(|c| bare_id(c.id())).unwrap_or_default())
                .map_err(|e| ApiError::new("ChangeResourceRecordSets", zone, e)),
        )
    }

    /// [`Self::submit`]; `whole` for the request as first sent (only the
    /// whole of it can have landed before), not for its halves.
    fn submit_split<'a>(&'a self, zone: &'a str, items: Vec<Item>, whole: bool) -> BoxFuture<'a, Submitted> {
        Box::pin(async move {
            let changes: Vec<Change> = items.iter().flat_map(|i| i.changes.iter().cloned()).collect();
            let batch = match ChangeBatch::builder().set_changes(Some(changes)).build() {
                Ok(b) => b,
                Err(e) => {
                    let err = ApiError {
                        op: "ChangeResourceRecordSets",
                        target: zone.to_string(),
                        code: None,
                        detail: e.to_string(),
                    };
                    return vec![(items, Err(err))];
                }
            };
            let sent = self.client.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await;
            match sent {
                Ok(out) => vec![(items, Ok(out.change_info().map(|c| bare_id(c.id())).unwrap_or_default()))],
                Err(e) => {
                    let e = ApiError::new("ChangeResourceRecordSets", zone, e);
                    let refused = e.is("InvalidChangeBatch") || e.is("InvalidInput");
                    if whole && refused {
                        let changes: Vec<Change> = items.iter().flat_map(|i| i.changes.iter().cloned()).collect();
                        if let Some(settled) = self.settle_landed(zone, &changes).await {
                            tracing::debug!(
                                zone,
                                "change batch refused, but every change is already in effect: an earlier attempt landed"
                            );
                            return vec![(items, settled)];
                        }
                    }
                    if items.len() > 1 && refused {
                        tracing::debug!(
                            zone,
                            items = items.len(),
                            "change batch refused; splitting it to find the culprit"
                        );
                        let mut left = items;
                        let right = left.split_off(left.len() / 2);
                        let mut out = self.submit_split(zone, left, false).await;
                        out.extend(self.submit_split(zone, right, false).await);
                        out
                    } else {
                        vec![(items, Err(e))]
                    }
                }
            }
        })
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
        let (Some(zone_id), Some(name), Some(&t)) =
            (args.zone_id.as_known(), args.name.as_known(), args.rtype.as_known())
        else {
            return Ok(None);
        };
        let fqdn = names::fqdn(name, &self.zone_name(zone_id).await.map_err(|e| zone_error(zone_id, e))?);
        let listing = self.listing(zone_id, true).await.map_err(|e| zone_error(zone_id, e))?;
        let Some(set) = listing.get(&fqdn, t.as_str()) else { return Ok(None) };
        let me = Owner::new(&ctx.lineage, &ctx.addr.to_string(), t.as_str());
        let Some(owner) = owner_record(&listing, &fqdn, t) else { return Ok(None) };
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
        };
        Ok(Some(spec.state(if owner.exact { Value::String(owner.value) } else { Value::Null })))
    }
}

fn refresh_one(listing: &ZoneListing, prior: &Value) -> Refreshed {
    let spec = RecordSpec::from_state(prior)?;
    let Some(set) = listing.get(&spec.fqdn, spec.rtype.as_str()) else {
        return Ok(None);
    };
    let mut m = prior.as_map().cloned().unwrap_or_default();
    let records = Value::List(found_values(set, spec.rtype).into_iter().map(Value::String).collect());
    m.insert("records".into(), records.mark_if(spec.sensitive));
    m.insert("ttl".into(), set.ttl().map(Value::from).unwrap_or(Value::Null));
    let owner = owner_record(listing, &spec.fqdn, spec.rtype).filter(|o| o.exact).map(|o| Value::String(o.value));
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
        };
        let c = rrset_change(ChangeAction::Upsert, &spec.fqdn, spec.rtype, spec.ttl, &spec.values).unwrap();
        assert_eq!(*c.action(), ChangeAction::Upsert);
        let state = spec.state(Value::Null);
        assert_eq!(state.get_str("id"), Some("Z1_micro-search.internal_A"));
    }
}
