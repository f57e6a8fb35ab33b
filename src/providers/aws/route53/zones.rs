//! `aws_route53_zone` and `aws_route53_zone_association`: hosted zones and
//! the VPCs a private zone answers in.
//!
//! A zone with one or more `vpc { vpc_id, vpc_region }` blocks is private;
//! Route53 cannot turn a public zone private or back, so that change replaces
//! the zone. Changes to the set of VPCs associate the new ones before
//! disassociating the old, so a private zone never loses its last VPC on the
//! way. The zone's `vpc` attribute tracks only the VPCs its blocks name:
//! associations made by `aws_route53_zone_association` (or by hand) are left
//! alone instead of showing as drift to undo.
//!
//! A zone is created with a caller reference derived from the state's
//! lineage, the address, the generation and the create attempt's token
//! (Route53 never takes a reference twice, even once its zone is deleted),
//! which is how [`Route53::adopt_zone`] recognises a zone an interrupted run
//! created, and how a retry meeting `HostedZoneAlreadyExists` for its own
//! reference finds the zone its lost attempt made. Deleting a zone that still
//! holds records fails with the names of some of them, unless
//! `force_destroy` is set: then every record but the apex SOA and NS is
//! deleted first, in as few change requests as the limits allow.

use super::batch::{self, Weight};
use super::names;
use super::records::Item;
use super::{ApiError, Field, Route53, bare_id, bool_field, field, required, str_field};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, Attribute, ChangeKind, OpContext, Planned, ProviderError, ProviderErrorKind,
    ProviderResult, Refreshed, Schema, apply_each, plan_from_schema,
};
use crate::value::{Map, Value};
use aws_sdk_route53::operation::get_hosted_zone::GetHostedZoneOutput;
use aws_sdk_route53::types::{Change, ChangeAction, HostedZoneConfig, RrType, Tag, TagResourceType, Vpc, VpcRegion};
use futures::StreamExt;
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

pub const ZONE_TYPE: &str = "aws_route53_zone";
pub const ASSOCIATION_TYPE: &str = "aws_route53_zone_association";

const DEFAULT_COMMENT: &str = "Managed by berth";
/// ListTagsForResources takes at most 10 ids per call.
const TAG_BATCH: usize = 10;
/// ChangeTagsForResource takes at most 10 tags to add and 10 keys to remove
/// per call (Route53 API reference: `AddTags`, `RemoveTagKeys`).
const TAG_CHANGES: usize = 10;

/// An outcome with a warning for each change that was slow to propagate.
fn with_warnings(mut outcome: ApplyOutcome, what: &str, slow: std::collections::HashMap<String, String>) -> ApplyOutcome {
    for w in slow.into_values() {
        outcome = outcome.with_warning(format!("`{what}`: {w}"));
    }
    outcome
}

pub(super) static ZONE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("name").required().force_new(),
        Attribute::arg("vpc").block(),
        Attribute::arg("comment"),
        Attribute::arg("force_destroy"),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "zone_id", "name_servers", "arn"])
});

pub(super) static ASSOCIATION: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("zone_id").required().force_new(),
        Attribute::arg("vpc_id").required().force_new(),
        Attribute::arg("vpc_region").force_new().computed(),
    ])
    .with_exported(&["id"])
});

/// One `vpc` block, or an association.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct VpcRef {
    id: String,
    region: String,
}

impl VpcRef {
    fn value(&self) -> Value {
        let mut m = Map::new();
        m.insert("vpc_id".into(), Value::str(&self.id));
        m.insert("vpc_region".into(), Value::str(&self.region));
        Value::Map(m)
    }

    fn sdk(&self) -> Vpc {
        Vpc::builder().vpc_id(&self.id).vpc_region(VpcRegion::from(self.region.as_str())).build()
    }
}

/// The zone arguments, some possibly unknown.
struct ZoneArgs {
    name: Field<String>,
    /// `None` while some block is not known yet.
    vpcs: Option<Vec<VpcRef>>,
    /// How many blocks there are, known even when their contents are not.
    vpc_count: Option<usize>,
    comment: Field<String>,
    force_destroy: Field<bool>,
    tags: Field<BTreeMap<String, String>>,
}

fn parse_zone(config: &Value, default_region: &str) -> Result<ZoneArgs, Vec<ProviderError>> {
    let mut errs = Vec::new();
    let name = str_field(config, "name").unwrap_or_else(|e| {
        errs.push(e);
        Field::Unknown
    });
    match &name {
        Field::Known(n) => {
            if let Err(e) = names::validate(n, false) {
                errs.push(ProviderError::attr("name", format!("invalid zone `name`: {e}")));
            }
        }
        Field::Absent => errs.push(required("name")),
        Field::Unknown => {}
    }
    let (vpcs, vpc_count) = match field(config, "vpc") {
        Field::Absent => (Some(Vec::new()), Some(0)),
        Field::Unknown => (None, None),
        Field::Known(v) => match v.as_list() {
            None => {
                errs.push(ProviderError::attr("vpc", format!("`vpc` must be blocks, not {}", v.type_name())));
                (None, None)
            }
            Some(blocks) => {
                let mut out = Some(Vec::new());
                for (i, b) in blocks.iter().enumerate() {
                    if b.is_unknown() {
                        out = None;
                        continue;
                    }
                    let id = str_field(b, "vpc_id").unwrap_or_else(|e| {
                        errs.push(ProviderError::attr("vpc", format!("`vpc[{i}]`: {}", e.message)));
                        Field::Unknown
                    });
                    let region = str_field(b, "vpc_region").unwrap_or_else(|e| {
                        errs.push(ProviderError::attr("vpc", format!("`vpc[{i}]`: {}", e.message)));
                        Field::Unknown
                    });
                    match (id, region) {
                        (Field::Absent, _) => {
                            errs.push(ProviderError::attr("vpc", format!("`vpc[{i}].vpc_id` is required")))
                        }
                        (Field::Known(id), Field::Known(region)) => {
                            if let Some(o) = out.as_mut() {
                                o.push(VpcRef { id, region });
                            }
                        }
                        (Field::Known(id), Field::Absent) => {
                            if let Some(o) = out.as_mut() {
                                o.push(VpcRef { id, region: default_region.to_string() });
                            }
                        }
                        _ => out = None,
                    }
                }
                let out = out.map(|mut o| {
                    o.sort();
                    o.dedup();
                    o
                });
                (out, Some(blocks.len()))
            }
        },
    };
    let comment = str_field(config, "comment").unwrap_or_else(|e| {
        errs.push(e);
        Field::Unknown
    });
    let force_destroy = bool_field(config, "force_destroy").unwrap_or_else(|e| {
        errs.push(e);
        Field::Unknown
    });
    let tags = match field(config, "tags") {
        Field::Absent => Field::Known(BTreeMap::new()),
        Field::Unknown => Field::Unknown,
        Field::Known(v) => match v.as_map() {
            None => {
                errs.push(ProviderError::attr(
                    "tags",
                    format!("`tags` must be a map of strings, not {}", v.type_name()),
                ));
                Field::Unknown
            }
            Some(m) if !m.values().all(Value::is_known) => Field::Unknown,
            Some(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    match v.as_str() {
                        Some(s) => {
                            out.insert(k.clone(), s.to_string());
                        }
                        None => errs.push(ProviderError::attr(
                            "tags",
                            format!("tag `{k}` must be a string, not {}", v.type_name()),
                        )),
                    }
                }
                Field::Known(out)
            }
        },
    };
    if errs.is_empty() { Ok(ZoneArgs { name, vpcs, vpc_count, comment, force_destroy, tags }) } else { Err(errs) }
}

pub(super) fn validate_zone(config: &Value) -> Vec<ProviderError> {
    parse_zone(config, "us-east-1").err().unwrap_or_default()
}

pub(super) fn validate_association(config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    for a in ["zone_id", "vpc_id"] {
        match str_field(config, a) {
            Err(e) => errs.push(e),
            Ok(Field::Absent) => errs.push(required(a)),
            Ok(_) => {}
        }
    }
    if let Err(e) = str_field(config, "vpc_region") {
        errs.push(e);
    }
    errs
}

fn first(errs: Vec<ProviderError>) -> ProviderError {
    errs.into_iter().next().unwrap_or_else(|| ProviderError::new("invalid zone configuration"))
}

pub(super) fn tags_value(tags: &BTreeMap<String, String>) -> Value {
    Value::Map(tags.iter().map(|(k, v)| (k.clone(), Value::str(v))).collect())
}

fn vpcs_value(vpcs: &[VpcRef]) -> Value {
    Value::List(vpcs.iter().map(VpcRef::value).collect())
}

/// The VPCs recorded in a zone's state or planned value.
fn vpcs_of(v: &Value) -> Vec<VpcRef> {
    v.get("vpc")
        .and_then(Value::as_list)
        .map(|l| {
            l.iter()
                .filter_map(|b| {
                    Some(VpcRef { id: b.get_str("vpc_id")?.to_string(), region: b.get_str("vpc_region")?.to_string() })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tags_of(v: &Value) -> BTreeMap<String, String> {
    v.get("tags")
        .and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// The idempotency token of a zone create attempt ([`OpContext::token`]):
/// the retries of one create share it, so an interrupted create can be
/// found; Route53 never accepts a CallerReference twice, even after its zone
/// was deleted, so every create attempt has its own.
fn caller_reference(ctx: &OpContext) -> String {
    let digest =
        sha2::Sha256::digest(format!("{}\n{}\n{}\n{}", ctx.lineage, ctx.addr, ctx.generation, ctx.token).as_bytes());
    format!("berth-{}", hex::encode(digest))
}

pub(super) fn arn(zone_id: &str) -> String {
    format!("arn:aws:route53:::hostedzone/{zone_id}")
}

fn zone_id_of(v: &Value) -> ProviderResult<String> {
    v.get_str("zone_id")
        .or_else(|| v.get_str("id"))
        .map(str::to_string)
        .ok_or_else(|| ProviderError::attr("zone_id", "the recorded state has no `zone_id`"))
}

impl Route53 {
    pub(super) fn plan_zone(&self, prior: Option<&Value>, config: &Value) -> ProviderResult<Planned> {
        let args = parse_zone(config, &self.region).map_err(first)?;
        let mut planned = plan_from_schema(&ZONE, prior, config);
        let Value::Map(after) = &mut planned.after else {
            return Err(ProviderError::new("zone configuration is not an object"));
        };
        if let Field::Known(n) = &args.name {
            after.insert("name".into(), Value::String(names::normalize(n)));
        }
        if let Some(v) = &args.vpcs {
            after.insert("vpc".into(), vpcs_value(v));
        }
        let comment = match args.comment {
            Field::Known(c) => Value::String(c),
            Field::Absent => Value::str(DEFAULT_COMMENT),
            Field::Unknown => Value::Unknown,
        };
        after.insert("comment".into(), comment);
        let force_destroy = match args.force_destroy {
            Field::Known(b) => Value::Bool(b),
            Field::Absent => Value::Bool(false),
            Field::Unknown => Value::Unknown,
        };
        after.insert("force_destroy".into(), force_destroy);
        if let Field::Known(t) = &args.tags {
            after.insert("tags".into(), tags_value(t));
        }

        // plan_from_schema compared names as written; compare as DNS does.
        planned.requires_replace.retain(|a| a != "name");
        let mut replace = Vec::new();
        if let Some(p) = prior {
            let prior_name = p.get_str("name").map(names::normalize);
            if args.name.as_known().is_none_or(|n| Some(names::normalize(n)) != prior_name) {
                replace.push("name".to_string());
            }
            let was_private = !vpcs_of(p).is_empty();
            if let Some(count) = args.vpc_count
                && (count > 0) != was_private
            {
                replace.push("vpc".to_string());
                planned.notes.push(if was_private {
                    "a private zone cannot become public: the zone is replaced".to_string()
                } else {
                    "a public zone cannot become private: the zone is replaced".to_string()
                });
            }
        }
        if !replace.is_empty() {
            for a in ["id", "zone_id", "name_servers", "arn"] {
                after.insert(a.into(), Value::Unknown);
            }
        }
        planned.requires_replace.extend(replace);
        Ok(planned)
    }

    pub(super) fn plan_association(&self, prior: Option<&Value>, config: &Value) -> ProviderResult<Planned> {
        if let Some(e) = validate_association(config).into_iter().next() {
            return Err(e);
        }
        let mut with_region = config.as_map().cloned().unwrap_or_default();
        if config.get("vpc_region").is_none_or(Value::is_null) {
            with_region.insert("vpc_region".into(), Value::str(&self.region));
        }
        let config = Value::Map(with_region);
        let mut planned = plan_from_schema(&ASSOCIATION, prior, &config);
        if let Value::Map(after) = &mut planned.after {
            let id = match (config.get_str("zone_id"), config.get_str("vpc_id")) {
                (Some(z), Some(v)) => Value::String(format!("{z}:{v}")),
                _ => Value::Unknown,
            };
            after.insert("id".into(), id);
        }
        Ok(planned)
    }

    pub(super) async fn get_zone(&self, zone_id: &str) -> Result<GetHostedZoneOutput, ApiError> {
        self.client.get_hosted_zone().id(zone_id).send().await.map_err(|e| ApiError::new("GetHostedZone", zone_id, e))
    }

    /// Tags of up to many zones, [`TAG_BATCH`] per call.
    pub(super) async fn zone_tags(&self, zone_ids: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, ApiError> {
        let mut out = BTreeMap::new();
        for chunk in zone_ids.chunks(TAG_BATCH) {
            let res = self
                .client
                .list_tags_for_resources()
                .resource_type(TagResourceType::Hostedzone)
                .set_resource_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| ApiError::new("ListTagsForResources", &chunk.join(","), e))?;
            for set in res.resource_tag_sets() {
                let tags = set
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                out.insert(set.resource_id().map(bare_id).unwrap_or_default(), tags);
            }
        }
        Ok(out)
    }

    /// Name servers: the delegation set of a public zone, the apex NS record
    /// of a private one (Route53 gives private zones no delegation set).
    pub(super) async fn name_servers(
        &self,
        zone_id: &str,
        zone_name: &str,
        got: &GetHostedZoneOutput,
    ) -> Result<Vec<String>, ApiError> {
        let apex = |set: &aws_sdk_route53::types::ResourceRecordSet| -> Vec<String> {
            set.resource_records().iter().map(|r| names::normalize(r.value())).collect()
        };
        let mut ns: Vec<String> = match got.delegation_set() {
            Some(d) => d.name_servers().iter().map(|n| names::normalize(n)).collect(),
            // Private: the apex NS, from a scan the zone's records are
            // refreshed with when there is one, else a one-item read.
            None => match self.shared_listing(zone_id).await {
                Some(l) => l.get(zone_name, "NS").map(apex).unwrap_or_default(),
                None => {
                    let out = self
                        .client
                        .list_resource_record_sets()
                        .hosted_zone_id(zone_id)
                        .start_record_name(zone_name)
                        .start_record_type(RrType::Ns)
                        .max_items(1)
                        .send()
                        .await
                        .map_err(|e| ApiError::new("ListResourceRecordSets", zone_id, e))?;
                    out.resource_record_sets()
                        .iter()
                        .filter(|s| *s.r#type() == RrType::Ns && names::from_api(s.name()) == zone_name)
                        .flat_map(apex)
                        .collect()
                }
            },
        };
        ns.sort();
        Ok(ns)
    }

    /// The state of a zone as Route53 has it. `managed` are the VPCs this
    /// resource's blocks name: other associations are not its business.
    async fn zone_state(
        &self,
        zone_id: &str,
        got: &GetHostedZoneOutput,
        tags: BTreeMap<String, String>,
        managed: &[VpcRef],
        force_destroy: bool,
    ) -> Result<Value, ApiError> {
        let hz = got.hosted_zone();
        let name = hz.map(|z| names::from_api(z.name())).unwrap_or_default();
        let comment = hz.and_then(|z| z.config()).and_then(|c| c.comment()).unwrap_or_default();
        let mut vpcs: Vec<VpcRef> = got
            .vpcs()
            .iter()
            .filter_map(|v| {
                let id = v.vpc_id()?.to_string();
                let region = v.vpc_region().map(|r| r.as_str().to_string()).unwrap_or_default();
                managed.iter().any(|m| m.id == id).then_some(VpcRef { id, region })
            })
            .collect();
        vpcs.sort();
        let ns = self.name_servers(zone_id, &name, got).await?;
        let mut m = Map::new();
        m.insert("id".into(), Value::str(zone_id));
        m.insert("zone_id".into(), Value::str(zone_id));
        m.insert("name".into(), Value::String(name));
        m.insert("comment".into(), Value::str(comment));
        m.insert("vpc".into(), vpcs_value(&vpcs));
        m.insert("force_destroy".into(), Value::Bool(force_destroy));
        m.insert("tags".into(), tags_value(&tags));
        m.insert("name_servers".into(), Value::List(ns.into_iter().map(Value::String).collect()));
        m.insert("arn".into(), Value::String(arn(zone_id)));
        Ok(Value::Map(m))
    }

    async fn read_zone(&self, zone_id: &str, managed: &[VpcRef], force_destroy: bool) -> Result<Value, ApiError> {
        let got = self.get_zone(zone_id).await?;
        let tags = self.zone_tags(&[zone_id.to_string()]).await?.remove(zone_id).unwrap_or_default();
        self.zone_state(zone_id, &got, tags, managed, force_destroy).await
    }

    pub(super) async fn refresh_zones(&self, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        let ids: Vec<Option<String>> = items.iter().map(|(_, p)| zone_id_of(p).ok()).collect();
        let got: Vec<Result<Option<GetHostedZoneOutput>, ApiError>> = futures::stream::iter(ids)
            .map(|zone_id| async move {
                let Some(zone_id) = zone_id else { return Ok(None) };
                match self.get_zone(&zone_id).await {
                    Ok(g) => Ok(Some(g)),
                    Err(e) if e.is("NoSuchHostedZone") => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(8)
            .collect()
            .await;
        let found: Vec<String> = items
            .iter()
            .zip(&got)
            .filter(|(_, g)| matches!(g, Ok(Some(_))))
            .filter_map(|((_, p), _)| zone_id_of(p).ok())
            .collect();
        let tags = self.zone_tags(&found).await;
        let mut out = Vec::with_capacity(items.len());
        for ((_, prior), g) in items.iter().zip(got) {
            if let Err(e) = zone_id_of(prior) {
                out.push(Err(e));
                continue;
            }
            out.push(match (g, &tags) {
                (Err(e), _) => Err(e.into()),
                (Ok(None), _) => Ok(None),
                (Ok(Some(_)), Err(e)) => Err(e.clone().into()),
                (Ok(Some(g)), Ok(tags)) => {
                    let zone_id = zone_id_of(prior).unwrap_or_default();
                    let force_destroy = prior.get("force_destroy").and_then(Value::as_bool).unwrap_or(false);
                    let t = tags.get(&zone_id).cloned().unwrap_or_default();
                    self.zone_state(&zone_id, &g, t, &vpcs_of(prior), force_destroy).await.map(Some).map_err(Into::into)
                }
            });
        }
        out
    }

    pub(super) async fn apply_zones(&self, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 4, |op| self.apply_zone(op)).await
    }

    async fn apply_zone(&self, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => self.create_zone(&op.ctx, &planned).await,
            ChangeKind::Update { prior, planned } => self.update_zone(prior, &planned).await,
            ChangeKind::Delete { prior } => self.delete_zone(prior).await,
        }
    }

    async fn create_zone(&self, ctx: &OpContext, planned: &Value) -> ApplyOutcome {
        let args = match parse_zone(planned, &self.region) {
            Ok(a) => a,
            Err(e) => return ApplyOutcome::failed(None, first(e)),
        };
        let unknown = |a: &str| {
            ApplyOutcome::failed(None, ProviderError::attr(a, format!("`{a}` is still unknown at apply time")))
        };
        let Some(name) = args.name.known() else { return unknown("name") };
        let Some(vpcs) = args.vpcs else { return unknown("vpc") };
        let Field::Known(tags) = args.tags else { return unknown("tags") };
        let comment = match args.comment {
            Field::Known(c) => c,
            _ => DEFAULT_COMMENT.to_string(),
        };
        let force_destroy = args.force_destroy.known().unwrap_or(false);
        let config = HostedZoneConfig::builder().comment(comment).private_zone(!vpcs.is_empty()).build();
        let reference = caller_reference(ctx);
        let mut req =
            self.client.create_hosted_zone().name(&name).caller_reference(&reference).hosted_zone_config(config);
        if let Some(v) = vpcs.first() {
            req = req.vpc(v.sdk());
        }
        let (zone_id, mut changes) = match req.send().await {
            Ok(out) => match out.hosted_zone().map(|z| bare_id(z.id())) {
                Some(id) => (id, out.change_info().map(|c| bare_id(c.id())).into_iter().collect::<Vec<_>>()),
                None => {
                    return ApplyOutcome::failed(
                        None,
                        ProviderError::new(format!("CreateHostedZone for `{name}` returned no zone")),
                    );
                }
            },
            Err(e) => {
                let e = ApiError::new("CreateHostedZone", &name, e);
                // Route53 never accepts a caller reference twice: a retry
                // that meets its own reference is the answer to an attempt
                // that landed but whose answer was lost. Find that zone.
                if !e.is("HostedZoneAlreadyExists") {
                    return ApplyOutcome::failed(None, e.into());
                }
                match self.zone_by_reference_and_name(&reference, &names::normalize(&name)).await {
                    Ok(Some(id)) => {
                        tracing::debug!(zone = %id, "CreateHostedZone met its own caller reference: an earlier attempt landed");
                        (id, Vec::new())
                    }
                    Ok(None) => return ApplyOutcome::failed(None, e.into()),
                    // The zone exists but could not be found just now: the
                    // next run looks for it by the same reference.
                    Err(_) => {
                        let e = ProviderError::from(e).with_kind(ProviderErrorKind::Indeterminate);
                        return ApplyOutcome::failed(None, e);
                    }
                }
            }
        };
        // From here on the zone exists: every failure reports what is there.
        let partial = |e: ProviderError| {
            let mut m = Map::new();
            m.insert("id".into(), Value::str(&zone_id));
            m.insert("zone_id".into(), Value::str(&zone_id));
            m.insert("name".into(), Value::str(names::normalize(&name)));
            m.insert("vpc".into(), vpcs_value(&vpcs[..1.min(vpcs.len())]));
            m.insert("force_destroy".into(), Value::Bool(force_destroy));
            m.insert("arn".into(), Value::String(arn(&zone_id)));
            ApplyOutcome::failed(Some(Value::Map(m)), e)
        };
        for v in vpcs.iter().skip(1) {
            match self.associate(&zone_id, v).await {
                Ok(id) => changes.extend(id),
                Err(e) => return partial(e.into()),
            }
        }
        if let Err(e) = self.change_tags(&zone_id, &BTreeMap::new(), &tags).await {
            return partial(e.into());
        }
        // The zone is made; a change slow to propagate is only a warning:
        // a zone is never replaced because Route53 was slow.
        let slow = self.wait_for_sync(changes).await;
        match self.read_zone(&zone_id, &vpcs, force_destroy).await {
            Ok(state) => with_warnings(ApplyOutcome::ok(Some(state)), &name, slow),
            Err(e) => partial(e.into()),
        }
    }

    async fn update_zone(&self, prior: Value, planned: &Value) -> ApplyOutcome {
        let fail = |prior: Value, e: ProviderError| ApplyOutcome::failed(Some(prior), e);
        let zone_id = match zone_id_of(&prior) {
            Ok(z) => z,
            Err(e) => return fail(prior, e),
        };
        let args = match parse_zone(planned, &self.region) {
            Ok(a) => a,
            Err(e) => return fail(prior, first(e)),
        };
        let Some(new_vpcs) = args.vpcs else {
            return fail(prior, ProviderError::attr("vpc", "`vpc` is still unknown at apply time"));
        };
        let Field::Known(new_tags) = args.tags else {
            return fail(prior, ProviderError::attr("tags", "`tags` is still unknown at apply time"));
        };
        let comment = match args.comment {
            Field::Known(c) => c,
            _ => DEFAULT_COMMENT.to_string(),
        };
        let force_destroy = args.force_destroy.known().unwrap_or(false);
        let old_vpcs = vpcs_of(&prior);
        let mut changes = Vec::new();
        let result: Result<(), ApiError> = async {
            if prior.get_str("comment") != Some(comment.as_str()) {
                self.client
                    .update_hosted_zone_comment()
                    .id(&zone_id)
                    .comment(&comment)
                    .send()
                    .await
                    .map_err(|e| ApiError::new("UpdateHostedZoneComment", &zone_id, e))?;
            }
            let old_ids: BTreeSet<&str> = old_vpcs.iter().map(|v| v.id.as_str()).collect();
            let new_ids: BTreeSet<&str> = new_vpcs.iter().map(|v| v.id.as_str()).collect();
            // Associate first: a private zone must keep at least one VPC.
            for v in new_vpcs.iter().filter(|v| !old_ids.contains(v.id.as_str())) {
                changes.extend(self.associate(&zone_id, v).await?);
            }
            for v in old_vpcs.iter().filter(|v| !new_ids.contains(v.id.as_str())) {
                changes.extend(self.disassociate(&zone_id, v).await?);
            }
            self.change_tags(&zone_id, &tags_of(&prior), &new_tags).await
        }
        .await;
        if let Err(e) = result {
            // Some steps may have gone through: report what is there now.
            let now = self.read_zone(&zone_id, &new_vpcs, force_destroy).await.unwrap_or(prior);
            return ApplyOutcome::failed(Some(now), e.into());
        }
        let slow = self.wait_for_sync(changes).await;
        let name = prior.get_str("name").unwrap_or_default().to_string();
        match self.read_zone(&zone_id, &new_vpcs, force_destroy).await {
            Ok(state) => with_warnings(ApplyOutcome::ok(Some(state)), &name, slow),
            Err(e) => fail(prior, e.into()),
        }
    }

    async fn delete_zone(&self, prior: Value) -> ApplyOutcome {
        let zone_id = match zone_id_of(&prior) {
            Ok(z) => z,
            Err(e) => return ApplyOutcome::failed(Some(prior), e),
        };
        let name = prior.get_str("name").unwrap_or_default().to_string();
        if prior.get("force_destroy").and_then(Value::as_bool) == Some(true)
            && let Err(e) = self.empty_zone(&zone_id, &name).await
        {
            return ApplyOutcome::failed(Some(prior), e);
        }
        let res = self.client.delete_hosted_zone().id(&zone_id).send().await;
        self.forget_listing(&zone_id);
        match res.map_err(|e| ApiError::new("DeleteHostedZone", &zone_id, e)) {
            Ok(_) => ApplyOutcome::ok(None),
            Err(e) if e.is("NoSuchHostedZone") => ApplyOutcome::ok(None),
            Err(e) if e.is("HostedZoneNotEmpty") => {
                let left = self.leftover_names(&zone_id, &name).await;
                ApplyOutcome::failed(
                    Some(prior),
                    ProviderError::attr(
                        "force_destroy",
                        format!(
                            "hosted zone `{name}` (`{zone_id}`) still holds records berth does not manage{left}; \
                             delete them, or set force_destroy = true to delete them with the zone"
                        ),
                    ),
                )
            }
            Err(e) => ApplyOutcome::failed(Some(prior), e.into()),
        }
    }

    /// A few names of the records that keep a zone from being deleted.
    async fn leftover_names(&self, zone_id: &str, zone_name: &str) -> String {
        let Ok(listing) = self.listing(zone_id, true).await else { return String::new() };
        let left: Vec<String> = listing
            .sets
            .iter()
            .filter(|s| !is_apex_soa_ns(s, zone_name))
            .map(|s| format!("`{}` {}", names::from_api(s.name()), s.r#type().as_str()))
            .collect();
        match left.len() {
            0 => String::new(),
            n if n <= 5 => format!(" ({})", left.join(", ")),
            n => format!(" ({} and {} more)", left[..5].join(", "), n - 5),
        }
    }

    /// Deletes every record of a zone but its apex SOA and NS, batched.
    async fn empty_zone(&self, zone_id: &str, zone_name: &str) -> ProviderResult<()> {
        let listing = self.listing(zone_id, true).await.map_err(ProviderError::from)?;
        let mut items = Vec::new();
        for set in listing.sets.iter().filter(|s| !is_apex_soa_ns(s, zone_name)) {
            let change = Change::builder()
                .action(ChangeAction::Delete)
                .resource_record_set(set.clone())
                .build()
                .map_err(|e| ProviderError::new(format!("cannot build a Route53 request: {e}")))?;
            let w = Weight::of_change(&change);
            let label = format!("`{}` {}", names::from_api(set.name()), set.r#type().as_str());
            let item = Item { index: 0, label, changes: vec![change], deletes: true, ok: None, fail: None, owner: None };
            items.push((item, w));
        }
        let (requests, too_big) = batch::pack(items);
        if let Some((item, _)) = too_big.first() {
            return Err(ProviderError::new(format!("record {} is too big to delete in one request", item.label)));
        }
        for request in requests {
            for (items, result) in self.submit(zone_id, request).await {
                if let Err(e) = result {
                    let labels: Vec<&str> = items.iter().take(3).map(|i| i.label.as_str()).collect();
                    return Err(ProviderError::new(format!(
                        "cannot empty hosted zone `{zone_name}` for force_destroy (at {}): {e}",
                        labels.join(", ")
                    )));
                }
            }
        }
        self.forget_listing(zone_id);
        Ok(())
    }

    /// Returns the change id to wait for (`None` when there is none).
    ///
    /// A retry whose earlier attempt landed (its answer lost) meets the
    /// association it made: Route53 answers `ConflictingDomainExists` (the
    /// VPC is already associated with a zone of this name, this one) or
    /// `InvalidVPCId`/`InvalidInput` naming the association. Read back: a
    /// VPC associated with this zone is the success it looks like.
    async fn associate(&self, zone_id: &str, vpc: &VpcRef) -> Result<Option<String>, ApiError> {
        let target = format!("{zone_id}:{}", vpc.id);
        let sent = self.client.associate_vpc_with_hosted_zone().hosted_zone_id(zone_id).vpc(vpc.sdk()).send().await;
        match sent.map_err(|e| ApiError::new("AssociateVPCWithHostedZone", &target, e)) {
            Ok(out) => Ok(out.change_info().map(|c| bare_id(c.id()))),
            Err(e) if e.is("ConflictingDomainExists") || e.is("InvalidVPCId") || e.is("InvalidInput") => {
                let got = self.get_zone(zone_id).await?;
                if got.vpcs().iter().any(|v| v.vpc_id() == Some(vpc.id.as_str())) {
                    tracing::debug!(zone = zone_id, vpc = %vpc.id, "the VPC is already associated: an earlier attempt landed");
                    return Ok(None);
                }
                let mut e = e;
                if e.is("ConflictingDomainExists") {
                    e.detail = format!(
                        "{}: VPC `{}` is already associated with another private zone of this name \
                         (Route53 allows one private zone of a name per VPC)",
                        e.detail, vpc.id
                    );
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn disassociate(&self, zone_id: &str, vpc: &VpcRef) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .disassociate_vpc_from_hosted_zone()
            .hosted_zone_id(zone_id)
            .vpc(vpc.sdk())
            .send()
            .await
            .map_err(|e| ApiError::new("DisassociateVPCFromHostedZone", &format!("{zone_id}:{}", vpc.id), e))?;
        Ok(out.change_info().map(|c| bare_id(c.id())))
    }

    async fn change_tags(
        &self,
        zone_id: &str,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let add: Vec<Tag> = new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let remove: Vec<String> = old.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
        // At most TAG_CHANGES of each per call: as many calls as the longer needs.
        let (mut add, mut remove) = (add.chunks(TAG_CHANGES), remove.chunks(TAG_CHANGES));
        loop {
            let (a, r) = (add.next(), remove.next());
            if a.is_none() && r.is_none() {
                return Ok(());
            }
            self.client
                .change_tags_for_resource()
                .resource_type(TagResourceType::Hostedzone)
                .resource_id(zone_id)
                .set_add_tags(a.map(<[Tag]>::to_vec))
                .set_remove_tag_keys(r.map(<[String]>::to_vec))
                .send()
                .await
                .map_err(|e| ApiError::new("ChangeTagsForResource", zone_id, e))?;
        }
    }

    /// Finds the zone an interrupted create of `ctx` made, by its caller
    /// reference. The planner adopts while it refreshes, before the
    /// configuration is evaluated, and passes `Null`: then every zone is
    /// listed; with a known `name`, only the zones of that name.
    pub(super) async fn adopt_zone(&self, ctx: &OpContext, config: &Value) -> ProviderResult<Option<Value>> {
        let args = if config.is_null() { None } else { Some(parse_zone(config, &self.region).map_err(first)?) };
        let reference = caller_reference(ctx);
        let found = match args.as_ref().and_then(|a| a.name.as_known().cloned()) {
            Some(name) => self.zone_by_reference_and_name(&reference, &names::normalize(&name)).await?,
            None => self.zone_by_reference(&reference).await?,
        };
        let Some(zone_id) = found else { return Ok(None) };
        let got = self.get_zone(&zone_id).await?;
        // Without the configuration, the zone's VPCs are the ones its
        // blocks named: the create associated exactly those.
        let managed = match args.as_ref().and_then(|a| a.vpcs.clone()) {
            Some(v) => v,
            None => got
                .vpcs()
                .iter()
                .filter_map(|v| {
                    Some(VpcRef {
                        id: v.vpc_id()?.to_string(),
                        region: v.vpc_region().map(|r| r.as_str().to_string()).unwrap_or_else(|| self.region.clone()),
                    })
                })
                .collect(),
        };
        let force_destroy = args.as_ref().and_then(|a| a.force_destroy.as_known().copied()).unwrap_or(false);
        let tags = self.zone_tags(std::slice::from_ref(&zone_id)).await?.remove(&zone_id).unwrap_or_default();
        Ok(Some(self.zone_state(&zone_id, &got, tags, &managed, force_destroy).await?))
    }

    async fn zone_by_reference_and_name(&self, reference: &str, name: &str) -> Result<Option<String>, ApiError> {
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(name)
            .max_items(100)
            .send()
            .await
            .map_err(|e| ApiError::new("ListHostedZonesByName", name, e))?;
        // Zones come sorted by name from `name` on: stop at the first other name.
        Ok(out
            .hosted_zones()
            .iter()
            .take_while(|z| names::from_api(z.name()) == name)
            .find(|z| z.caller_reference() == reference)
            .map(|z| bare_id(z.id())))
    }

    async fn zone_by_reference(&self, reference: &str) -> Result<Option<String>, ApiError> {
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_hosted_zones()
                .set_marker(marker.take())
                .max_items(100)
                .send()
                .await
                .map_err(|e| ApiError::new("ListHostedZones", "hosted zones", e))?;
            if let Some(z) = out.hosted_zones().iter().find(|z| z.caller_reference() == reference) {
                return Ok(Some(bare_id(z.id())));
            }
            match out.next_marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_string()),
                _ => return Ok(None),
            }
        }
    }

    pub(super) async fn refresh_associations(&self, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        // One GetHostedZone per zone, however many associations it has.
        let zones: BTreeSet<String> =
            items.iter().filter_map(|(_, p)| p.get_str("zone_id").map(str::to_string)).collect();
        let got: BTreeMap<String, Result<Option<GetHostedZoneOutput>, ApiError>> = futures::stream::iter(zones)
            .map(|z| async move {
                let r = match self.get_zone(&z).await {
                    Ok(g) => Ok(Some(g)),
                    Err(e) if e.is("NoSuchHostedZone") => Ok(None),
                    Err(e) => Err(e),
                };
                (z, r)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        items
            .iter()
            .map(|(_, prior)| {
                let (Some(zone), Some(vpc)) = (prior.get_str("zone_id"), prior.get_str("vpc_id")) else {
                    return Err(ProviderError::new("the recorded association has no `zone_id` or `vpc_id`"));
                };
                match got.get(zone) {
                    None | Some(Ok(None)) => Ok(None),
                    Some(Err(e)) => Err(e.clone().into()),
                    Some(Ok(Some(g))) => Ok(g.vpcs().iter().find(|v| v.vpc_id() == Some(vpc)).map(|v| {
                        let mut m = prior.as_map().cloned().unwrap_or_default();
                        if let Some(r) = v.vpc_region() {
                            m.insert("vpc_region".into(), Value::str(r.as_str()));
                        }
                        Value::Map(m)
                    })),
                }
            })
            .collect()
    }

    pub(super) async fn apply_associations(&self, ops: Vec<ApplyOp>, sink: ApplySink) {
        // Each association is its own API call; Route53 has no batch form.
        apply_each(ops, sink, 4, |op| self.apply_association(op)).await
    }

    async fn apply_association(&self, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => {
                let (Some(zone), Some(vpc_id)) = (planned.get_str("zone_id"), planned.get_str("vpc_id")) else {
                    return ApplyOutcome::failed(
                        None,
                        ProviderError::new("`zone_id` and `vpc_id` must be known at apply time"),
                    );
                };
                let vpc = VpcRef {
                    id: vpc_id.to_string(),
                    region: planned.get_str("vpc_region").unwrap_or(&self.region).to_string(),
                };
                let change = match self.associate(zone, &vpc).await {
                    Ok(c) => c,
                    Err(e) => return ApplyOutcome::failed(None, e.into()),
                };
                let mut m = planned.as_map().cloned().unwrap_or_default();
                m.insert("id".into(), Value::String(format!("{zone}:{vpc_id}")));
                m.insert("vpc_region".into(), Value::str(&vpc.region));
                let state = Value::Map(m);
                let slow = self.wait_for_sync(change.into_iter().collect()).await;
                with_warnings(ApplyOutcome::ok(Some(state)), zone, slow)
            }
            // Every argument forces a new association: nothing to update.
            ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
            ChangeKind::Delete { prior } => {
                let (Some(zone), Some(vpc_id)) = (prior.get_str("zone_id"), prior.get_str("vpc_id")) else {
                    return ApplyOutcome::failed(
                        Some(prior),
                        ProviderError::new("the recorded association has no `zone_id` or `vpc_id`"),
                    );
                };
                let vpc = VpcRef {
                    id: vpc_id.to_string(),
                    region: prior.get_str("vpc_region").unwrap_or(&self.region).to_string(),
                };
                match self.disassociate(zone, &vpc).await {
                    Ok(_) => ApplyOutcome::ok(None),
                    Err(e) if e.is("NoSuchHostedZone") || e.is("VPCAssociationNotFound") => ApplyOutcome::ok(None),
                    Err(e) if e.is("LastVPCAssociation") => {
                        let msg = format!(
                            "cannot disassociate VPC `{vpc_id}` from hosted zone `{zone}`: it is the zone's last VPC, \
                             and a private zone needs one (delete the zone instead, or associate another VPC first)"
                        );
                        ApplyOutcome::failed(Some(prior), ProviderError::new(msg))
                    }
                    Err(e) => ApplyOutcome::failed(Some(prior), e.into()),
                }
            }
        }
    }

    pub(super) async fn adopt_association(&self, config: &Value) -> ProviderResult<Option<Value>> {
        let (Some(zone), Some(vpc_id)) = (config.get_str("zone_id"), config.get_str("vpc_id")) else {
            return Ok(None);
        };
        let got = match self.get_zone(zone).await {
            Ok(g) => g,
            Err(e) if e.is("NoSuchHostedZone") => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // An association carries no owner mark, but it is exactly what the
        // configuration asks for: taking it over is harmless.
        Ok(got.vpcs().iter().find(|v| v.vpc_id() == Some(vpc_id)).map(|v| {
            let mut m = Map::new();
            m.insert("id".into(), Value::String(format!("{zone}:{vpc_id}")));
            m.insert("zone_id".into(), Value::str(zone));
            m.insert("vpc_id".into(), Value::str(vpc_id));
            let region = v.vpc_region().map(|r| r.as_str().to_string()).unwrap_or_else(|| self.region.clone());
            m.insert("vpc_region".into(), Value::String(region));
            Value::Map(m)
        }))
    }
}

fn is_apex_soa_ns(set: &aws_sdk_route53::types::ResourceRecordSet, zone_name: &str) -> bool {
    matches!(set.r#type(), RrType::Soa | RrType::Ns) && names::from_api(set.name()) == names::normalize(zone_name)
}
