//! Route53: private hosted zones, their VPC associations, and DNS records
//! with an ownership registry. This is where `micro-search.internal` is made
//! to follow the host that currently serves it.
//!
//! Three resource types, all batched the way Route53's API allows:
//! - `aws_route53_zone` and `aws_route53_zone_association` ([`zones`]);
//! - `aws_route53_record` ([`records`]): every change of an apply batch goes
//!   out as one ChangeResourceRecordSets request per zone (split only at the
//!   API's limits, see [`batch`]), a refresh is one paged
//!   ListResourceRecordSets scan per zone, and each record travels with an
//!   ownership TXT record ([`registry`]) so berth never overwrites or deletes
//!   a record it does not own.
//!
//! Every request goes through a client-side token bucket ([`pace`]) that
//! keeps the process under Route53's per-account request rate, and waiting
//! for INSYNC is bounded: a change still PENDING at `route53_sync_timeout`
//! is a warning, never a failure.
//!
//! The provider keeps three small caches for the life of one run: zone names
//! by id (they never change), zone listings (shared by the many `plan` calls
//! of one zone, dropped after an apply touches the zone or after a minute),
//! and the create mode each planned create needs (plain CREATE, or UPSERT of
//! a record the plan decided to adopt or take over).

mod batch;
mod data;
mod names;
mod pace;
mod rdata;
mod records;
mod registry;
mod zones;

use crate::addr::Mode;
use crate::telemetry::api_stats::CountCalls;
use crate::providers::{
    ApplyOp, ApplySink, OpContext, Planned, Provider, ProviderError, ProviderErrorKind, ProviderResult, Refreshed,
    Schema,
};
use crate::value::Value;
use async_trait::async_trait;
use aws_sdk_route53::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError;
use aws_sdk_route53::types::{ChangeStatus, ResourceRecordSet, RrType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

pub use records::RECORD_TYPE;
pub use zones::{ASSOCIATION_TYPE, ZONE_TYPE};

/// Provider-level settings (arguments of the `aws` provider block).
#[derive(Debug, Clone)]
pub struct Route53Settings {
    /// Wait until changes are INSYNC (propagated to every Route53 server)
    /// before reporting them done. `route53_wait_for_sync`, default true.
    pub wait_for_sync: bool,
    /// How long to wait for INSYNC before warning and going on.
    /// `route53_sync_timeout`, default 10m.
    pub sync_timeout: Duration,
    /// The first pause between GetChange polls; it doubles up to 10 s.
    pub poll_interval: Duration,
}

impl Default for Route53Settings {
    fn default() -> Self {
        Route53Settings {
            wait_for_sync: true,
            sync_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl Route53Settings {
    /// Reads `route53_wait_for_sync` (bool) and `route53_sync_timeout` (a
    /// duration such as `"5m"`) from an evaluated provider block; other
    /// attributes are left to the caller.
    pub fn from_provider_config(config: &Value) -> ProviderResult<Route53Settings> {
        let mut s = Route53Settings::default();
        match config.get("route53_wait_for_sync").map(Value::unmarked) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => s.wait_for_sync = *b,
            Some(v) => {
                return Err(ProviderError::attr(
                    "route53_wait_for_sync",
                    format!("`route53_wait_for_sync` must be a bool, not {}", v.type_name()),
                ));
            }
        }
        match config.get("route53_sync_timeout").map(Value::unmarked) {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => {
                s.sync_timeout = humantime::parse_duration(t).map_err(|e| {
                    ProviderError::attr("route53_sync_timeout", format!("invalid `route53_sync_timeout` `{t}`: {e}"))
                })?
            }
            Some(v) => {
                return Err(ProviderError::attr(
                    "route53_sync_timeout",
                    format!("`route53_sync_timeout` must be a duration string such as \"5m\", not {}", v.type_name()),
                ));
            }
        }
        Ok(s)
    }
}

/// A failed Route53 call, with the API's error code kept for decisions.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Route53 `{op}` for `{target}` failed: {detail}")]
pub struct ApiError {
    pub op: &'static str,
    pub target: String,
    pub code: Option<String>,
    pub detail: String,
    /// What the failure means for the engine; see [`ApiError::kind_of`].
    pub kind: ProviderErrorKind,
    /// The per-change messages of an `InvalidChangeBatch`, one for each
    /// change Route53 refused (see [`batch::refusals`]).
    pub messages: Vec<String>,
}

impl ApiError {
    fn new<E>(op: &'static str, target: &str, err: SdkError<E>) -> ApiError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let detail = match (err.code(), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        let kind = Self::kind_of(&err);
        let messages = err.message().map(|m| vec![m.to_string()]).unwrap_or_default();
        ApiError { op, target: target.to_string(), code, detail, kind, messages }
    }

    /// A refused ChangeResourceRecordSets, with every message Route53 gave
    /// for the changes it refused (a list of them, or one bracketed line).
    fn from_change(target: &str, err: SdkError<ChangeResourceRecordSetsError>) -> ApiError {
        let listed: Vec<String> = match err.as_service_error() {
            Some(ChangeResourceRecordSetsError::InvalidChangeBatch(e)) => e.messages().to_vec(),
            _ => Vec::new(),
        };
        let mut e = ApiError::new("ChangeResourceRecordSets", target, err);
        e.messages.extend(listed);
        e
    }

    /// What a failed call means. A request that may have reached Route53
    /// (no answer, a timeout, a 5xx) is `Indeterminate`: a create that
    /// fails so may exist. Codes from the Route53 API reference.
    fn kind_of<E: ProvideErrorMetadata>(err: &SdkError<E>) -> ProviderErrorKind {
        match err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                ProviderErrorKind::Indeterminate
            }
            SdkError::ServiceError(s) => match err.code() {
                Some("Throttling" | "ThrottlingException" | "PriorRequestNotComplete") => ProviderErrorKind::Throttled,
                Some("NoSuchHostedZone" | "NoSuchChange" | "VPCAssociationNotFound") => ProviderErrorKind::NotFound,
                Some(
                    "HostedZoneAlreadyExists" | "ConflictingDomainExists" | "HostedZoneNotEmpty" | "LastVPCAssociation"
                    | "ConflictingTypes",
                ) => ProviderErrorKind::Conflict,
                Some(
                    "InvalidChangeBatch" | "InvalidInput" | "InvalidDomainName" | "InvalidVPCId" | "InvalidArgument"
                    | "TooManyTagKeys",
                ) => ProviderErrorKind::Invalid,
                _ if s.raw().status().is_server_error() => ProviderErrorKind::Indeterminate,
                _ => ProviderErrorKind::Other,
            },
            _ => ProviderErrorKind::Other,
        }
    }

    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl From<ApiError> for ProviderError {
    fn from(e: ApiError) -> Self {
        let kind = e.kind;
        ProviderError::new(e.to_string()).with_kind(kind)
    }
}

/// How long a zone listing read by one `plan` serves the next ones.
const LISTING_MAX_AGE: Duration = Duration::from_secs(60);
/// ListResourceRecordSets returns at most 300 record sets per page.
const PAGE_SIZE: i32 = 300;

/// Every record set of a zone, indexed by (name, type).
pub(crate) struct ZoneListing {
    pub sets: Vec<ResourceRecordSet>,
    index: HashMap<(String, String), usize>,
    /// The sets with an identifier, by (name, type, identifier).
    by_set: HashMap<(String, String, String), usize>,
    fetched: Instant,
}

impl ZoneListing {
    fn new(sets: Vec<ResourceRecordSet>) -> ZoneListing {
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut by_set = HashMap::new();
        for (i, s) in sets.iter().enumerate() {
            let key = (names::from_api(s.name()), s.r#type().as_str().to_string());
            if let Some(id) = s.set_identifier() {
                by_set.insert((key.0.clone(), key.1.clone(), id.to_string()), i);
            }
            // Of several sets with one name and type (routing policies),
            // prefer the plain one: that is the only kind berth writes.
            match index.get(&key) {
                Some(&j) if sets[j].set_identifier().is_none() => {}
                _ if s.set_identifier().is_some() && index.contains_key(&key) => {}
                _ => {
                    index.insert(key, i);
                }
            }
        }
        ZoneListing { sets, index, by_set, fetched: Instant::now() }
    }

    pub fn get(&self, fqdn: &str, rtype: &str) -> Option<&ResourceRecordSet> {
        self.index.get(&(fqdn.to_string(), rtype.to_string())).map(|&i| &self.sets[i])
    }

    /// The set of a name and type with this set identifier; without one,
    /// as [`ZoneListing::get`].
    pub fn find(&self, fqdn: &str, rtype: &str, set_id: Option<&str>) -> Option<&ResourceRecordSet> {
        let Some(id) = set_id else { return self.get(fqdn, rtype) };
        self.by_set.get(&(fqdn.to_string(), rtype.to_string(), id.to_string())).map(|&i| &self.sets[i])
    }
}

type Shared<T> = Mutex<HashMap<String, Arc<OnceCell<T>>>>;

pub struct Route53 {
    client: aws_sdk_route53::Client,
    /// The default `vpc_region` of zones and associations.
    region: String,
    settings: Route53Settings,
    zone_names: Shared<String>,
    listings: Shared<Arc<ZoneListing>>,
    create_modes: Mutex<HashMap<String, records::CreateMode>>,
}

/// Route53 ids come back as `/hostedzone/Z123` or `/change/C123`; berth
/// stores the bare id.
fn bare_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Route53 {
    /// A provider for `sdk_config`'s account. `endpoint` overrides the API
    /// endpoint (moto in tests).
    pub fn new(sdk_config: &aws_config::SdkConfig, endpoint: Option<String>) -> Route53 {
        let mut b = aws_sdk_route53::config::Builder::from(sdk_config)
            .interceptor(CountCalls)
            .retry_partition(super::retry_partition("route53"));
        if let Some(e) = endpoint {
            b = b.endpoint_url(e);
        }
        // Paced below the account's request rate (see [`pace`]).
        b = b.http_client(pace::Paced(sdk_config.http_client().unwrap_or_else(pace::default_client)));
        Route53 {
            client: aws_sdk_route53::Client::from_conf(b.build()),
            region: sdk_config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
            settings: Route53Settings::default(),
            zone_names: Mutex::default(),
            listings: Mutex::default(),
            create_modes: Mutex::default(),
        }
    }

    pub fn with_settings(mut self, settings: Route53Settings) -> Route53 {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> &Route53Settings {
        &self.settings
    }

    /// The name of a zone (`internal`), read once per run.
    async fn zone_name(&self, zone_id: &str) -> Result<String, ApiError> {
        let cell = lock(&self.zone_names).entry(zone_id.to_string()).or_default().clone();
        cell.get_or_try_init(|| async {
            let out = self
                .client
                .get_hosted_zone()
                .id(zone_id)
                .send()
                .await
                .map_err(|e| ApiError::new("GetHostedZone", zone_id, e))?;
            Ok(out.hosted_zone().map(|z| names::from_api(z.name())).unwrap_or_default())
        })
        .await
        .cloned()
    }

    /// Every record set of a zone, one paged scan. `fresh` forces a new
    /// scan (refresh always reads the truth); otherwise a listing younger
    /// than [`LISTING_MAX_AGE`] that no apply has touched is shared.
    async fn listing(&self, zone_id: &str, fresh: bool) -> Result<Arc<ZoneListing>, ApiError> {
        let cell = {
            let mut map = lock(&self.listings);
            let stale = map
                .get(zone_id)
                .is_none_or(|c| c.get().is_some_and(|l| fresh || l.fetched.elapsed() > LISTING_MAX_AGE));
            if stale {
                map.insert(zone_id.to_string(), Arc::default());
            }
            map[zone_id].clone()
        };
        cell.get_or_try_init(|| async { self.scan(zone_id).await.map(Arc::new) }).await.cloned()
    }

    /// The zone's listing when one is being read or was read recently (and
    /// no apply touched the zone since): a zone's refresh then reads its
    /// apex from the scan its records' refresh makes, instead of a call of
    /// its own. `None` when there is none to share.
    async fn shared_listing(&self, zone_id: &str) -> Option<Arc<ZoneListing>> {
        let cell = lock(&self.listings)
            .get(zone_id)
            .filter(|c| c.get().is_none_or(|l| l.fetched.elapsed() <= LISTING_MAX_AGE))
            .cloned()?;
        cell.get_or_try_init(|| async { self.scan(zone_id).await.map(Arc::new) }).await.ok().cloned()
    }

    fn forget_listing(&self, zone_id: &str) {
        lock(&self.listings).remove(zone_id);
    }

    async fn scan(&self, zone_id: &str) -> Result<ZoneListing, ApiError> {
        let mut sets = Vec::new();
        let mut next: Option<(String, RrType, Option<String>)> = None;
        loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(zone_id).max_items(PAGE_SIZE);
            if let Some((name, t, ident)) = next.take() {
                req = req.start_record_name(name).start_record_type(t).set_start_record_identifier(ident);
            }
            let out = req.send().await.map_err(|e| ApiError::new("ListResourceRecordSets", zone_id, e))?;
            sets.extend(out.resource_record_sets().iter().cloned());
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(n), Some(t)) => {
                    next = Some((n.to_string(), t.clone(), out.next_record_identifier().map(str::to_string)))
                }
                _ => break,
            }
        }
        tracing::debug!(zone = zone_id, sets = sets.len(), "listed zone");
        Ok(ZoneListing::new(sets))
    }

    /// Waits until every change in `ids` is INSYNC, polling them in one
    /// loop with a pause that doubles up to 10 s, for at most
    /// `route53_sync_timeout`. Route53 answers PENDING until a change has
    /// reached every one of its DNS servers, usually within a minute.
    /// Returns, for the changes that did not get there (or whose status
    /// could not be read), what to warn about: the change was accepted and
    /// will complete, so this is never a failure of what made it.
    async fn wait_for_sync(&self, ids: Vec<String>) -> HashMap<String, String> {
        let mut slow = HashMap::new();
        if !self.settings.wait_for_sync {
            return slow;
        }
        let mut pending: Vec<String> = ids.into_iter().filter(|i| !i.is_empty()).collect();
        pending.sort();
        pending.dedup();
        let deadline = Instant::now() + self.settings.sync_timeout;
        let mut pause = self.settings.poll_interval;
        while !pending.is_empty() {
            let mut still = Vec::new();
            for id in pending {
                match self.client.get_change().id(&id).send().await {
                    Ok(out) if out.change_info().is_some_and(|c| *c.status() == ChangeStatus::Insync) => {}
                    Ok(_) => still.push(id),
                    Err(e) => {
                        let e = ApiError::new("GetChange", &id, e);
                        slow.insert(
                            id.clone(),
                            format!("Route53 accepted change `{id}`, but its status could not be read ({}); it may still be propagating", e.detail),
                        );
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() + pause > deadline {
                for id in pending {
                    slow.insert(
                        id.clone(),
                        format!(
                            "Route53 accepted change `{id}`, but it was not INSYNC after {}; it will still \
                             complete (set `route53_sync_timeout` to wait longer)",
                            humantime::format_duration(self.settings.sync_timeout)
                        ),
                    );
                }
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
        slow
    }
}

#[async_trait]
impl Provider for Route53 {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match (mode, type_) {
            (Mode::Managed, ZONE_TYPE) => Some(&zones::ZONE),
            (Mode::Managed, ASSOCIATION_TYPE) => Some(&zones::ASSOCIATION),
            (Mode::Managed, RECORD_TYPE) => Some(&records::RECORD),
            (Mode::Data, data::TYPE) => Some(&data::ZONE),
            _ => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => vec![ZONE_TYPE, ASSOCIATION_TYPE, RECORD_TYPE],
            Mode::Data => vec![data::TYPE],
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        match (mode, type_) {
            (Mode::Managed, ZONE_TYPE) => zones::validate_zone(config),
            (Mode::Managed, ASSOCIATION_TYPE) => zones::validate_association(config),
            (Mode::Managed, RECORD_TYPE) => records::validate_record(config),
            (Mode::Data, data::TYPE) => data::validate(config),
            _ => vec![unknown_type(type_)],
        }
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        match type_ {
            ZONE_TYPE => self.refresh_zones(items).await,
            ASSOCIATION_TYPE => self.refresh_associations(items).await,
            RECORD_TYPE => self.refresh_records(items).await,
            t => items.iter().map(|_| Err(unknown_type(t))).collect(),
        }
    }

    async fn plan(
        &self,
        ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        match type_ {
            ZONE_TYPE => self.plan_zone(prior, config),
            ASSOCIATION_TYPE => self.plan_association(prior, config),
            RECORD_TYPE => self.plan_record(ctx, prior, config).await,
            t => Err(unknown_type(t)),
        }
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        match type_ {
            ZONE_TYPE => self.apply_zones(ops, sink).await,
            ASSOCIATION_TYPE => self.apply_associations(ops, sink).await,
            RECORD_TYPE => self.apply_records(ops, sink).await,
            t => {
                for (i, _) in ops.iter().enumerate() {
                    let _ = sink.send((i, crate::providers::ApplyOutcome::failed(None, unknown_type(t))));
                }
            }
        }
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        match type_ {
            data::TYPE => {
                if let Some(e) = data::validate(config).into_iter().next() {
                    return Err(e);
                }
                self.read_zone_data(config).await
            }
            _ => Err(ProviderError::new(format!("the Route53 provider has no data source `{type_}`"))),
        }
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Option<Value>> {
        match type_ {
            ZONE_TYPE => self.adopt_zone(ctx, config).await,
            ASSOCIATION_TYPE => self.adopt_association(config).await,
            RECORD_TYPE => self.adopt_record(ctx, config).await,
            t => Err(unknown_type(t)),
        }
    }
}

fn unknown_type(t: &str) -> ProviderError {
    ProviderError::new(format!(
        "the Route53 provider has no resource type `{t}` (it has `{ZONE_TYPE}`, `{ASSOCIATION_TYPE}`, `{RECORD_TYPE}`)"
    ))
}

/// A configuration attribute that may not be known yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<T> {
    Absent,
    Unknown,
    Known(T),
}

impl<T> Field<T> {
    fn known(self) -> Option<T> {
        match self {
            Field::Known(v) => Some(v),
            _ => None,
        }
    }
    fn as_known(&self) -> Option<&T> {
        match self {
            Field::Known(v) => Some(v),
            _ => None,
        }
    }
}

fn field<'a>(config: &'a Value, attr: &str) -> Field<&'a Value> {
    match config.get(attr) {
        None => Field::Absent,
        Some(v) if v.is_null() => Field::Absent,
        Some(v) if v.is_unknown() => Field::Unknown,
        Some(v) => Field::Known(v),
    }
}

fn str_field(config: &Value, attr: &str) -> ProviderResult<Field<String>> {
    Ok(match field(config, attr) {
        Field::Known(v) => match v.as_str() {
            Some(s) => Field::Known(s.to_string()),
            None => return Err(ProviderError::attr(attr, format!("`{attr}` must be a string, not {}", v.type_name()))),
        },
        Field::Unknown => Field::Unknown,
        Field::Absent => Field::Absent,
    })
}

fn bool_field(config: &Value, attr: &str) -> ProviderResult<Field<bool>> {
    Ok(match field(config, attr) {
        Field::Known(v) => match v.as_bool() {
            Some(b) => Field::Known(b),
            None => return Err(ProviderError::attr(attr, format!("`{attr}` must be a bool, not {}", v.type_name()))),
        },
        Field::Unknown => Field::Unknown,
        Field::Absent => Field::Absent,
    })
}

fn required(attr: &str) -> ProviderError {
    ProviderError::attr(attr, format!("`{attr}` is required"))
}

/// Sends each outcome of a batch on the sink; the engine may have stopped
/// listening (cancelled run), which is not this provider's error.
fn report(sink: &ApplySink, index: usize, outcome: crate::providers::ApplyOutcome) {
    let _ = sink.send((index, outcome));
}
