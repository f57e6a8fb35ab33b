//! The S3 state backend: state, lock and journal as objects in a bucket, so
//! that ephemeral CI runners share one state and one lock.
//!
//! For a workspace whose state key is `K` (the backend's `key` for the
//! `default` workspace, `<workspace_key_prefix>/<workspace>/<key>` for the
//! others):
//!
//! - `K` holds the state. A write is a PUT conditioned on the ETag this
//!   process read (`If-Match`), or on there being no state (`If-None-Match:
//!   *`): a writer whose view is stale is refused and nothing is overwritten.
//! - `K.lock` is the lock: created with `If-None-Match: *`, so exactly one
//!   creator wins; it holds a [`LockInfo`] naming the holder. Unlike a
//!   `flock`, nothing frees it when its holder dies: `berth force-unlock`
//!   does, and a signal handler ([`interrupt`]) frees the locks of a run that
//!   is stopped.
//! - `K.journal/<serial>/<seq>.json` are the journal: S3 has no append, so
//!   each append is one object, created with `If-None-Match: *`. Every object
//!   starts with the run's `Begin` entry, so each names the state it applies
//!   to. `load` lists and replays them in order; a state write deletes them.
//! - `K.versions/<serial>.json` keep every version when the bucket has no
//!   versioning of its own (S3 answers a state write without a version id).

use super::journal::{self, JournalEntry};
use super::lock::LockInfo;
use super::{Backend, State, StateError, check_workspace_name, valid_workspace};
use crate::aws_sdk::{self, AssumeRole, SdkSettings};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LOCK_POLL: Duration = Duration::from_secs(1);
/// S3 answers 409 to a conditional write racing another on the same key;
/// the loser may simply try again.
const CONFLICT_RETRIES: u32 = 5;
/// Journal objects fetched at once by `load`.
const LOAD_CONCURRENCY: usize = 16;

pub const DEFAULT_WORKSPACE_KEY_PREFIX: &str = "env:";

/// Where the state lives, from the `backend "s3"` block and `--backend-config`.
#[derive(Clone, Debug, PartialEq)]
pub struct S3Settings {
    pub bucket: String,
    /// The `default` workspace's state key.
    pub key: String,
    pub region: Option<String>,
    /// A custom endpoint (moto, MinIO); path-style addressing is used with it.
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub workspace_key_prefix: String,
    /// Retries after the first attempt; `None`: the provider's default
    /// ([`aws_sdk::DEFAULT_MAX_RETRIES`]).
    pub max_retries: Option<u32>,
    /// Where the AssumeRole call goes, when not the SDK's default.
    pub sts_endpoint: Option<String>,
    /// `assume_role { ... }`: the role whose credentials read and write the
    /// state, as in Terraform's S3 backend. Boxed: settings travel by value.
    pub assume_role: Option<Box<AssumeRole>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("unknown setting `{0}` for the s3 backend (it takes: {known})", known = S3Settings::KEYS.join(", "))]
    Unknown(String),
    #[error(
        "the s3 backend needs `{0}`: set it in the `backend \"s3\"` block or pass `--backend-config {0}=VALUE`"
    )]
    Missing(&'static str),
    #[error("`{name}` {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl S3Settings {
    /// Every setting. `assume_role.NAME` is `NAME` in the block's
    /// `assume_role { ... }` (and `--backend-config assume_role.NAME=VALUE`).
    pub const KEYS: &'static [&'static str] = &[
        "bucket",
        "key",
        "region",
        "endpoint_url",
        "profile",
        "workspace_key_prefix",
        "max_retries",
        "sts_endpoint",
        "assume_role.role_arn",
        "assume_role.session_name",
        "assume_role.external_id",
        "assume_role.duration",
        "assume_role.policy",
    ];

    /// Builds settings from `name = value` pairs; a later pair overrides an
    /// earlier one, so `--backend-config` values go last.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<S3Settings, SettingsError> {
        let (mut bucket, mut key, mut region, mut endpoint_url, mut profile, mut prefix) =
            (None, None, None, None, None, None);
        let (mut max_retries, mut sts_endpoint) = (None, None);
        let (mut role_arn, mut session_name, mut external_id, mut duration, mut policy) =
            (None, None, None, None, None);
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "bucket" => &mut bucket,
                "key" => &mut key,
                "region" => &mut region,
                "endpoint_url" => &mut endpoint_url,
                "profile" => &mut profile,
                "workspace_key_prefix" => &mut prefix,
                "max_retries" => &mut max_retries,
                "sts_endpoint" => &mut sts_endpoint,
                "assume_role.role_arn" => &mut role_arn,
                "assume_role.session_name" => &mut session_name,
                "assume_role.external_id" => &mut external_id,
                "assume_role.duration" => &mut duration,
                "assume_role.policy" => &mut policy,
                _ => return Err(SettingsError::Unknown(name)),
            };
            *slot = Some(value);
        }
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let limit = aws_sdk::MAX_RETRIES_LIMIT;
        let max_retries = match nonempty(max_retries) {
            None => None,
            Some(n) => match n.trim().parse::<u32>() {
                Ok(v) if v <= limit => Some(v),
                _ => {
                    let reason = format!("must be a whole number from 0 to {limit}, not `{n}`");
                    return Err(SettingsError::Invalid { name: "max_retries", reason });
                }
            },
        };
        let invalid = |name: &'static str| move |reason: String| SettingsError::Invalid { name, reason };
        // An empty role ARN assumes nothing, as in Terraform.
        let assume_role = match nonempty(role_arn) {
            None => {
                if [&session_name, &external_id, &duration, &policy]
                    .iter()
                    .any(|v| v.as_ref().is_some_and(|s| !s.is_empty()))
                {
                    return Err(SettingsError::Missing("assume_role.role_arn"));
                }
                None
            }
            Some(role_arn) => {
                aws_sdk::check_role_arn(&role_arn).map_err(invalid("assume_role.role_arn"))?;
                let session_name = nonempty(session_name);
                if let Some(n) = &session_name {
                    aws_sdk::check_session_name(n).map_err(invalid("assume_role.session_name"))?;
                }
                let external_id = nonempty(external_id);
                if let Some(id) = &external_id {
                    aws_sdk::check_external_id(id).map_err(invalid("assume_role.external_id"))?;
                }
                let duration = match nonempty(duration) {
                    None => None,
                    Some(d) => Some(aws_sdk::parse_duration(&d).map_err(invalid("assume_role.duration"))?),
                };
                Some(Box::new(AssumeRole {
                    role_arn,
                    session_name,
                    external_id,
                    duration,
                    policy: nonempty(policy),
                    ..AssumeRole::default()
                }))
            }
        };
        let bucket = nonempty(bucket).ok_or(SettingsError::Missing("bucket"))?;
        let key = nonempty(key).ok_or(SettingsError::Missing("key"))?;
        if key.starts_with('/') || key.ends_with('/') {
            return Err(SettingsError::Invalid { name: "key", reason: format!("`{key}` must not start or end with `/`") });
        }
        let workspace_key_prefix = nonempty(prefix).unwrap_or_else(|| DEFAULT_WORKSPACE_KEY_PREFIX.into());
        if workspace_key_prefix.contains('/') {
            return Err(SettingsError::Invalid {
                name: "workspace_key_prefix",
                reason: format!("`{workspace_key_prefix}` must not contain `/`"),
            });
        }
        Ok(S3Settings {
            bucket,
            key,
            region: nonempty(region),
            endpoint_url: nonempty(endpoint_url),
            profile: nonempty(profile),
            workspace_key_prefix,
            max_retries,
            sts_endpoint: nonempty(sts_endpoint),
            assume_role,
        })
    }

    /// What the shared loader needs. `endpoint_url` is S3's alone (a MinIO
    /// endpoint is no STS endpoint), so it is applied to the S3 client only.
    fn sdk_settings(&self) -> SdkSettings {
        SdkSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
            assume_role: self.assume_role.as_deref().cloned(),
            max_retries: self.max_retries,
            ..SdkSettings::default()
        }
    }

    /// The state key of a workspace.
    pub fn state_key(&self, workspace: &str) -> String {
        if workspace == "default" {
            self.key.clone()
        } else {
            format!("{}/{workspace}/{}", self.workspace_key_prefix, self.key)
        }
    }
}

/// Builds an S3 client from the settings and the standard AWS chain
/// (environment, profile, SSO, instance metadata) for what they leave open,
/// through the loader the `aws` provider uses too: the same `assume_role`
/// and the same retry policy (`max_retries`, default 8, no retry quota).
pub async fn client(s: &S3Settings) -> Result<Client, StateError> {
    let sdk = aws_sdk::load(&s.sdk_settings()).await.map_err(|e| match e {
        aws_sdk::LoadError::NoRegion => StateError::Other(
            "no AWS region for the s3 backend: set `region` in the `backend \"s3\"` block, pass \
             `--backend-config region=NAME`, or set `AWS_REGION`"
                .into(),
        ),
        e @ aws_sdk::LoadError::AssumeRole { .. } => StateError::Other(format!("the s3 backend: {e}")),
    })?;
    let endpoint = s
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok().filter(|v| !v.is_empty()))
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        .interceptor(crate::providers::api_stats::CountCalls)
        .retry_partition(aws_sdk::retry_partition("s3"));
    if let Some(url) = endpoint {
        // Emulators and self-hosted stores serve buckets under the path,
        // not as subdomains.
        conf = conf.endpoint_url(url).force_path_style(true);
    }
    Ok(Client::from_conf(conf.build()))
}

fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// An SDK error as one line: the service's code and message when it
/// answered, the whole cause chain when it did not.
fn explain<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

fn is_missing_key<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e.code() {
        Some("NoSuchKey") => true,
        Some("NoSuchBucket") => false,
        _ => status(e) == Some(404),
    }
}

enum Cond<'a> {
    IfNoneMatch,
    IfMatch(&'a str),
}

struct Put {
    etag: Option<String>,
    version_id: Option<String>,
}

enum PutError {
    /// The condition did not hold: the object exists, or changed.
    Precondition,
    Failed(StateError),
}

enum Deleted {
    Yes,
    /// `If-Match` did not hold: the object changed since it was read.
    Changed,
}

#[derive(Debug)]
struct Run {
    lineage: String,
    serial: u64,
    next: u64,
}

/// What this process knows of the state as stored.
#[derive(Debug, Default)]
struct Seen {
    /// The ETag of the state as this process last read or wrote it; `None`
    /// when there was none (or it was never read), so a write must create.
    etag: Option<String>,
    /// Journal objects a state write folds in, and so removes.
    journal_keys: BTreeSet<String>,
    /// The last load found journal objects (see [`Backend::found_journal`]).
    found_journal: bool,
    run: Option<Run>,
}

#[derive(Debug)]
struct Held {
    info: LockInfo,
    etag: Option<String>,
}

pub struct S3Backend {
    settings: S3Settings,
    workspace: String,
    key: String,
    client: tokio::sync::OnceCell<Client>,
    seen: Mutex<Seen>,
    lock: Mutex<Option<Held>>,
}

impl S3Backend {
    pub fn new(settings: S3Settings, workspace: &str) -> S3Backend {
        let key = settings.state_key(workspace);
        S3Backend {
            settings,
            workspace: workspace.to_string(),
            key,
            client: tokio::sync::OnceCell::new(),
            seen: Mutex::new(Seen::default()),
            lock: Mutex::new(None),
        }
    }

    /// Uses a client built elsewhere (tests, or several workspaces at once).
    pub fn with_client(settings: S3Settings, workspace: &str, client: Client) -> S3Backend {
        let b = S3Backend::new(settings, workspace);
        let _ = b.client.set(client);
        b
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// The state object's key.
    pub fn state_key(&self) -> &str {
        &self.key
    }

    pub fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    pub fn journal_prefix(&self) -> String {
        format!("{}.journal/", self.key)
    }

    pub fn versions_prefix(&self) -> String {
        format!("{}.versions/", self.key)
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.settings.bucket)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_workspace(&self) -> Result<(), StateError> {
        check_workspace_name(&self.workspace)
    }

    pub async fn client(&self) -> Result<&Client, StateError> {
        self.client.get_or_try_init(|| client(&self.settings)).await
    }

    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, StateError> {
        let client = self.client().await?;
        match client.get_object().bucket(&self.settings.bucket).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let bytes = out.body.collect().await.map_err(|e| {
                    StateError::Other(format!("cannot read `{}`: {}", self.uri(key), DisplayErrorContext(&e)))
                })?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e) if is_missing_key(&e) => Ok(None),
            Err(e) => Err(StateError::Other(format!("cannot read `{}`: {}", self.uri(key), explain(&e)))),
        }
    }

    /// Reads several objects at once, answering in the order asked.
    async fn get_all(&self, keys: &[String]) -> Vec<Result<Option<(Vec<u8>, Option<String>)>, StateError>> {
        let reads: Vec<_> = keys.iter().map(|k| self.get(k)).collect();
        futures::stream::iter(reads).buffered(LOAD_CONCURRENCY).collect().await
    }

    /// Writes an object; answers its ETag and version id (`None`, or
    /// `"null"`, when the bucket keeps no versions).
    async fn put(&self, key: &str, body: &[u8], cond: Cond<'_>) -> Result<Put, PutError> {
        if interrupt::stopping() {
            return Err(PutError::Failed(StateError::Other(format!(
                "not writing `{}`: the run is being stopped",
                self.uri(key)
            ))));
        }
        let client = self.client().await.map_err(PutError::Failed)?;
        let mut attempt = 0;
        loop {
            let mut req = client
                .put_object()
                .bucket(&self.settings.bucket)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.to_vec()));
            req = match cond {
                Cond::IfNoneMatch => req.if_none_match("*"),
                Cond::IfMatch(etag) => req.if_match(etag),
            };
            match req.send().await {
                Ok(out) => {
                    return Ok(Put {
                        etag: out.e_tag().map(str::to_string),
                        version_id: out.version_id().map(str::to_string),
                    });
                }
                Err(e) if status(&e) == Some(412) => return Err(PutError::Precondition),
                // A missing object fails `If-Match` with 404 on some stores.
                Err(e) if matches!(cond, Cond::IfMatch(_)) && is_missing_key(&e) => return Err(PutError::Precondition),
                Err(e) if status(&e) == Some(409) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    return Err(PutError::Failed(StateError::Other(format!(
                        "cannot write `{}`: {}",
                        self.uri(key),
                        explain(&e)
                    ))));
                }
            }
        }
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<Deleted, StateError> {
        let client = self.client().await?;
        let mut req = client.delete_object().bucket(&self.settings.bucket).key(key);
        if let Some(etag) = if_match {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(Deleted::Yes),
            Err(e) if status(&e) == Some(412) => Ok(Deleted::Changed),
            Err(e) if is_missing_key(&e) => Ok(Deleted::Yes),
            Err(e) => Err(StateError::Other(format!("cannot delete `{}`: {}", self.uri(key), explain(&e)))),
        }
    }

    async fn delete_many(&self, keys: impl IntoIterator<Item = String>) -> Result<(), StateError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let keys: Vec<String> = keys.into_iter().collect();
        if keys.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StateError::Other(e.to_string()))?;
            let delete =
                Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(|e| StateError::Other(e.to_string()))?;
            let out = client
                .delete_objects()
                .bucket(&self.settings.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| StateError::Other(format!("cannot delete objects in `s3://{}`: {}", self.settings.bucket, explain(&e))))?;
            if let Some(err) = out.errors().first() {
                return Err(StateError::Other(format!(
                    "cannot delete `{}`: {}",
                    self.uri(err.key().unwrap_or_default()),
                    err.message().or(err.code()).unwrap_or("unknown error")
                )));
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let client = self.client().await?;
        let mut pages = client.list_objects_v2().bucket(&self.settings.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StateError::Other(format!("cannot list `{}`: {}", self.uri(prefix), explain(&e))))?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        Ok(keys)
    }

    /// Journal objects as `(serial, seq, key)`, in replay order.
    async fn journal_objects(&self) -> Result<Vec<(u64, u64, String)>, StateError> {
        let prefix = self.journal_prefix();
        let mut out: Vec<(u64, u64, String)> = self
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| {
                let rest = k.strip_prefix(&prefix)?;
                let (serial, seq) = rest.strip_suffix(".json")?.split_once('/')?;
                Some((serial.parse().ok()?, seq.parse().ok()?, k))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn journal_key(&self, serial: u64, seq: u64) -> String {
        format!("{}{serial:010}/{seq:08}.json", self.journal_prefix())
    }

    /// The `Begin` of a journal object.
    async fn journal_begin(&self, key: &str) -> Result<Option<(String, u64)>, StateError> {
        Ok(self.get(key).await?.and_then(|(bytes, _)| journal::peek_begin(&bytes)))
    }

    /// Starts (or continues) the journal of a run on `(lineage, serial)`:
    /// objects of an interrupted run on the same base state are kept and
    /// continued; any other journal is stale and removed.
    async fn start_run(&self, lineage: &str, serial: u64) -> Result<(), StateError> {
        let objects = self.journal_objects().await?;
        let mut next = 0;
        let mut stale = Vec::new();
        let mut kept = Vec::new();
        // Every run deletes the stale journals before it writes, so the
        // objects of one serial share one lineage: one read tells.
        let same_serial = objects.iter().find(|(s, _, _)| *s == serial);
        let same_lineage = match same_serial {
            Some((_, _, key)) => self.journal_begin(key).await?.is_some_and(|(l, _)| l == lineage),
            None => false,
        };
        for (s, seq, key) in objects {
            if s == serial && same_lineage {
                next = next.max(seq + 1);
                kept.push(key);
            } else {
                stale.push(key);
            }
        }
        if !stale.is_empty() {
            tracing::warn!(journal = %self.uri(&self.journal_prefix()), objects = stale.len(), "discarding a stale journal");
            self.delete_many(stale).await?;
        }
        let mut seen = self.seen();
        seen.journal_keys.extend(kept);
        seen.run = Some(Run { lineage: lineage.to_string(), serial, next });
        Ok(())
    }

    /// Continues the newest journal, for an append without `Begin` from a
    /// process that has not started one.
    async fn resume_run(&self) -> Result<(), StateError> {
        let objects = self.journal_objects().await?;
        let Some((serial, _, key)) = objects.last().cloned() else {
            return Err(StateError::Other(format!(
                "journal `{}` has no `begin` entry; the first append of a run must start with one",
                self.uri(&self.journal_prefix())
            )));
        };
        let Some((lineage, _)) = self.journal_begin(&key).await? else {
            return Err(StateError::Corrupt { path: self.uri(&key), reason: "it does not start with a `begin` entry".into() });
        };
        self.start_run(&lineage, serial).await
    }

    /// Whether the bucket keeps every version of the state itself;
    /// `None` when it cannot be read (no permission, or a store that
    /// answers oddly). Writes do not depend on it: each one tells.
    pub async fn bucket_versioning(&self) -> Result<Option<bool>, StateError> {
        self.check_bucket().await?;
        let client = self.client().await?;
        match client.get_bucket_versioning().bucket(&self.settings.bucket).send().await {
            Ok(out) => Ok(Some(matches!(out.status(), Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled)))),
            Err(e) => {
                tracing::debug!(error = %DisplayErrorContext(&e), "cannot read the bucket's versioning");
                Ok(None)
            }
        }
    }

    /// Checks the bucket exists and these credentials reach it.
    pub async fn check_bucket(&self) -> Result<(), StateError> {
        let client = self.client().await?;
        client.head_bucket().bucket(&self.settings.bucket).send().await.map_err(|e| {
            let why = match status(&e) {
                Some(404) => "the bucket does not exist".to_string(),
                Some(403) => "access denied".to_string(),
                _ => explain(&e),
            };
            StateError::Other(format!("cannot use bucket `{}`: {why}", self.settings.bucket))
        })?;
        Ok(())
    }

    /// Keeps a copy of a state version, for buckets without versioning.
    async fn keep_version(&self, state: &State, body: &[u8]) {
        let key = format!("{}{:010}.json", self.versions_prefix(), state.serial);
        let result = match self.put(&key, body, Cond::IfNoneMatch).await {
            // A forced push can repeat a serial: keep both.
            Err(PutError::Precondition) => {
                let key = format!("{}{:010}-{}.json", self.versions_prefix(), state.serial, chrono::Utc::now().timestamp_millis());
                self.put(&key, body, Cond::IfNoneMatch).await
            }
            other => other,
        };
        match result {
            Ok(_) => {}
            Err(PutError::Precondition) => tracing::warn!(serial = state.serial, "a copy of this state version already exists"),
            Err(PutError::Failed(e)) => tracing::warn!(error = %e, "the state was written, but its version copy was not"),
        }
    }

    /// Reads the lock object: its holder (or why it names none) and ETag.
    async fn read_lock(&self) -> Result<Option<(Result<LockInfo, String>, Option<String>)>, StateError> {
        let key = self.lock_key();
        Ok(self.get(&key).await?.map(|(bytes, etag)| {
            let info = serde_json::from_slice::<LockInfo>(&bytes).map_err(|e| {
                if bytes.iter().all(u8::is_ascii_whitespace) { "the object is empty".to_string() } else { e.to_string() }
            });
            (info, etag)
        }))
    }

    fn unknown_holder(&self, why: &str) -> StateError {
        StateError::Locked(format!(
            "state `{}` is locked through `{}`, which names no holder ({why}); another program holds it",
            self.describe(),
            self.uri(&self.lock_key())
        ))
    }

    /// Deletes this workspace's state and journal. Its version copies stay:
    /// they are history, kept on purpose. The caller holds the lock and has
    /// loaded the state (a state changed since is not deleted).
    pub async fn delete_state(&self) -> Result<(), StateError> {
        self.check_workspace()?;
        let etag = self.seen().etag.clone();
        if let Deleted::Changed = self.delete(&self.key, etag.as_deref()).await? {
            return Err(StateError::Other(format!(
                "state `{}` changed since this run read it: nothing was deleted",
                self.describe()
            )));
        }
        let journal: Vec<String> = self.journal_objects().await?.into_iter().map(|(_, _, k)| k).collect();
        self.delete_many(journal).await?;
        let mut seen = self.seen();
        seen.etag = None;
        seen.journal_keys.clear();
        seen.run = None;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for S3Backend {
    fn describe(&self) -> String {
        self.uri(&self.key)
    }

    async fn lock(&self, operation: &str, timeout: Duration) -> Result<LockInfo, StateError> {
        self.check_workspace()?;
        if let Some(h) = &*self.held() {
            return Err(StateError::Locked(format!(
                "state `{}` is already locked by this process (lock id `{}`)",
                self.describe(),
                h.info.id
            )));
        }
        let client = self.client().await?.clone();
        let info = LockInfo::new(operation);
        let body = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        let key = self.lock_key();
        // Registered before the first PUT: a run stopped while that PUT is
        // in flight may own the lock without knowing it.
        interrupt::register(interrupt::HeldLock {
            client,
            bucket: self.settings.bucket.clone(),
            key: key.clone(),
            id: info.id.clone(),
            etag: None,
        });
        let start = Instant::now();
        let result = loop {
            match self.put(&key, &body, Cond::IfNoneMatch).await {
                Ok(Put { etag, .. }) => {
                    interrupt::set_etag(&info.id, etag.clone());
                    *self.held() = Some(Held { info: info.clone(), etag });
                    return Ok(info);
                }
                Err(PutError::Failed(e)) => break Err(e),
                Err(PutError::Precondition) => {}
            }
            let holder = self.read_lock().await;
            let elapsed = start.elapsed();
            match holder {
                Err(e) => break Err(e),
                // Our own lock: a PUT that landed but whose answer was lost, then
                // retried by the SDK into a 412. We hold it.
                Ok(Some((Ok(holder), etag))) if holder.id == info.id => {
                    interrupt::set_etag(&info.id, etag.clone());
                    *self.held() = Some(Held { info: info.clone(), etag });
                    return Ok(info);
                }
                // Released between our PUT and our read: try again soon.
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(Some(_)) if elapsed < timeout => tokio::time::sleep(LOCK_POLL.min(timeout - elapsed)).await,
                Ok(Some((Ok(holder), _))) => break Err(holder.locked_error(&self.describe())),
                Ok(Some((Err(why), _))) => break Err(self.unknown_holder(&why)),
            }
        };
        interrupt::forget(&info.id);
        result
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        let held = {
            let mut slot = self.held();
            match slot.take() {
                Some(h) if h.info.id == lock.id => h,
                other => {
                    let holds = other.as_ref().map(|h| format!(" (it holds `{}`)", h.info.id)).unwrap_or_default();
                    *slot = other;
                    return Err(StateError::Other(format!("lock `{}` is not held by this process{holds}", lock.id)));
                }
            }
        };
        let result = release(self, &held.info.id, held.etag.as_deref()).await;
        interrupt::forget(&held.info.id);
        result
    }

    async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        self.check_workspace()?;
        let no_lock = || StateError::Other(format!("no lock held on state `{}`", self.describe()));
        let Some((holder, etag)) = self.read_lock().await? else {
            return Err(no_lock());
        };
        match holder {
            Ok(info) if info.id == id => {}
            Ok(info) => {
                return Err(StateError::Other(format!(
                    "lock id `{id}` does not match the lock on state `{}`, whose id is `{}` ({}@{}, pid {}, operation `{}`)",
                    self.describe(),
                    info.id,
                    info.who,
                    info.host,
                    info.pid,
                    info.operation
                )));
            }
            Err(why) => {
                return Err(StateError::Other(format!(
                    "the lock `{}` names no holder ({why}); remove the object by hand if no run holds it",
                    self.uri(&self.lock_key())
                )));
            }
        }
        match self.delete(&self.lock_key(), etag.as_deref()).await? {
            Deleted::Yes => {
                let mut slot = self.held();
                if slot.as_ref().is_some_and(|h| h.info.id == id) {
                    *slot = None;
                }
                interrupt::forget(id);
                Ok(())
            }
            Deleted::Changed => Err(StateError::Other(format!(
                "the lock on state `{}` changed while it was being removed; look again with `berth plan`",
                self.describe()
            ))),
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StateError> {
        self.check_workspace()?;
        if let Some(h) = &*self.held() {
            return Ok(Some(h.info.clone()));
        }
        match self.read_lock().await? {
            None => Ok(None),
            Some((Ok(info), _)) => Ok(Some(info)),
            Some((Err(why), _)) => Err(self.unknown_holder(&why)),
        }
    }

    async fn load(&self) -> Result<Option<State>, StateError> {
        self.check_workspace()?;
        let shown = self.describe();
        let got = self.get(&self.key).await?;
        let (state, etag) = match got {
            Some((bytes, etag)) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| StateError::Corrupt { path: shown.clone(), reason: "the object is not UTF-8".into() })?;
                (Some(State::from_json(&shown, &text)?), etag)
            }
            None => (None, None),
        };
        let objects = self.journal_objects().await?;
        let keys: Vec<String> = objects.iter().map(|(_, _, k)| k.clone()).collect();
        let bodies = self.get_all(&keys).await;
        let wanted = |l: &str, s: u64| match &state {
            Some(st) => st.lineage == l && st.serial == s,
            // The first apply died before its first state write.
            None => s == 0,
        };
        let mut lineage: Option<String> = None;
        let mut entries = Vec::new();
        let mut keys = BTreeSet::new();
        let mut stale = 0usize;
        for ((serial, _, key), body) in objects.iter().zip(bodies) {
            // Deleted since the listing: a writer folded it meanwhile.
            let Some((bytes, _)) = body? else { continue };
            keys.insert(key.clone());
            let j = journal::parse(&self.uri(key), &bytes)?;
            match j.begin {
                Some((l, s)) if s == *serial && wanted(&l, s) && lineage.as_ref().is_none_or(|b| *b == l) => {
                    lineage = Some(l);
                    entries.extend(j.entries);
                }
                _ => stale += 1,
            }
        }
        if stale > 0 {
            tracing::warn!(journal = %self.uri(&self.journal_prefix()), objects = stale, "ignoring a stale journal that does not match the state");
        }
        {
            let mut seen = self.seen();
            seen.etag = etag;
            seen.found_journal = !keys.is_empty();
            seen.journal_keys = keys;
        }
        let Some(lineage) = lineage else { return Ok(state) };
        let mut base = state.unwrap_or_else(|| State { lineage, serial: 0, ..State::new() });
        for e in entries {
            base.apply_entry(e);
        }
        Ok(Some(base))
    }

    async fn write(&self, state: &State) -> Result<(), StateError> {
        self.check_workspace()?;
        let body = state.to_json().into_bytes();
        let etag = self.seen().etag.clone();
        let cond = match &etag {
            Some(e) => Cond::IfMatch(e),
            None => Cond::IfNoneMatch,
        };
        let versioned = match self.put(&self.key, &body, cond).await {
            Ok(put) => {
                self.seen().etag = put.etag;
                put.version_id.is_some_and(|v| v != "null")
            }
            // The condition fails against our own write when an attempt
            // landed and its answer was lost: the SDK's retry then meets the
            // object that attempt wrote. The same bytes mean it is ours (as
            // for a journal object); the version copy is kept as usual,
            // since this path cannot tell whether the bucket versions.
            Err(PutError::Precondition)
                if let Some((bytes, etag)) = self.get(&self.key).await?
                    && bytes == body =>
            {
                tracing::debug!(state = %self.describe(), "the state write met itself: an earlier attempt landed");
                self.seen().etag = etag;
                false
            }
            Err(PutError::Precondition) => {
                return Err(StateError::Other(format!(
                    "the state `{}` changed since this run read it (another writer, or a lock forced open): \
                     nothing was overwritten. Run `berth plan` to see where things stand",
                    self.describe()
                )));
            }
            Err(PutError::Failed(e)) => return Err(e),
        };
        if !versioned {
            self.keep_version(state, &body).await;
        }
        let folded = {
            let mut seen = self.seen();
            seen.run = None;
            std::mem::take(&mut seen.journal_keys)
        };
        // The journal's objects are stale now that the state holds them (its
        // serial moved on), so a failure here only leaves litter behind.
        if let Err(e) = self.delete_many(folded).await {
            tracing::warn!(error = %e, "the folded journal was not removed; the next run discards it");
        }
        Ok(())
    }

    async fn append(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_workspace()?;
        let rest = match entries[0].begin_of() {
            Some((lineage, serial)) => {
                self.start_run(lineage, serial).await?;
                &entries[1..]
            }
            None => {
                if self.seen().run.is_none() {
                    self.resume_run().await?;
                }
                entries
            }
        };
        if rest.is_empty() {
            return Ok(());
        }
        let (lineage, serial, seq) = {
            let seen = self.seen();
            let run = seen.run.as_ref().expect("a run was started above");
            (run.lineage.clone(), run.serial, run.next)
        };
        let key = self.journal_key(serial, seq);
        let mut body = journal::encode(&[JournalEntry::Begin { lineage, serial }]);
        body.extend(journal::encode(rest));
        match self.put(&key, &body, Cond::IfNoneMatch).await {
            Ok(_) => {}
            // An earlier attempt whose answer was lost may have landed.
            Err(PutError::Precondition) if self.get(&key).await?.is_some_and(|(b, _)| b == body) => {}
            Err(PutError::Precondition) => {
                return Err(StateError::Other(format!(
                    "journal object `{}` was written by another run: is a run using this state without its lock?",
                    self.uri(&key)
                )));
            }
            Err(PutError::Failed(e)) => return Err(e),
        }
        let mut seen = self.seen();
        seen.journal_keys.insert(key);
        if let Some(run) = seen.run.as_mut() {
            run.next = seq + 1;
        }
        Ok(())
    }

    fn found_journal(&self) -> bool {
        self.seen().found_journal
    }

    async fn workspaces(&self) -> Result<Vec<String>, StateError> {
        let prefix = format!("{}/", self.settings.workspace_key_prefix);
        let suffix = format!("/{}", self.settings.key);
        let mut names = vec!["default".to_string()];
        for key in self.list(&prefix).await? {
            if let Some(ws) = key.strip_prefix(&prefix).and_then(|r| r.strip_suffix(&suffix))
                && valid_workspace(ws)
            {
                names.push(ws.to_string());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Deletes the lock object if it is still the one this process created.
async fn release(b: &S3Backend, id: &str, etag: Option<&str>) -> Result<(), StateError> {
    let etag = match etag {
        Some(e) => e.to_string(),
        // A store that returned no ETag: check the holder by reading.
        None => match b.read_lock().await? {
            Some((Ok(info), Some(etag))) if info.id == id => etag,
            _ => {
                tracing::warn!(lock = id, "the state lock was removed by someone else before this run released it");
                return Ok(());
            }
        },
    };
    match b.delete(&b.lock_key(), Some(&etag)).await? {
        Deleted::Yes => Ok(()),
        Deleted::Changed => {
            tracing::warn!(lock = id, "the state lock was forced open and taken by another run; leaving it alone");
            Ok(())
        }
    }
}

/// Stopping a run cleanly on SIGINT and SIGTERM.
///
/// A lock in S3 outlives its holder, so a run stopped by a signal must free
/// it before it exits, with requests of its own (not ones tied to the
/// cancelled command: opentofu#3661 and #3669 are that bug). The binary
/// waits on [`Stopper::wait`] beside each command; when a signal comes,
/// [`stop`] refuses further writes and frees the locks, and the process exits.
///
/// The apply walk handles the first Ctrl-C itself: it lets operations in
/// flight finish and records them. It runs inside [`graceful`], during which
/// the first SIGINT is left to it and only a second one (or a SIGTERM, which
/// CI runners send when they give up waiting) stops the run at once.
pub mod interrupt {
    use aws_sdk_s3::Client;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A lock this process holds (or may hold: its PUT was sent).
    pub struct HeldLock {
        pub client: Client,
        pub bucket: String,
        pub key: String,
        pub id: String,
        pub etag: Option<String>,
    }

    static HELD: Mutex<Vec<HeldLock>> = Mutex::new(Vec::new());
    static GRACEFUL: AtomicUsize = AtomicUsize::new(0);
    static STOPPING: AtomicBool = AtomicBool::new(false);

    /// True once the run is being stopped: nothing more may be written.
    pub fn stopping() -> bool {
        STOPPING.load(Ordering::SeqCst)
    }

    fn held() -> std::sync::MutexGuard<'static, Vec<HeldLock>> {
        HELD.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn register(lock: HeldLock) {
        held().push(lock);
    }

    pub(super) fn set_etag(id: &str, etag: Option<String>) {
        if let Some(l) = held().iter_mut().find(|l| l.id == id) {
            l.etag = etag;
        }
    }

    pub(super) fn forget(id: &str) {
        held().retain(|l| l.id != id);
    }

    /// The ids of the S3 locks this process holds.
    pub fn held_ids() -> Vec<String> {
        held().iter().map(|l| l.id.clone()).collect()
    }

    /// Stops the run's writes and frees every S3 lock it still holds. The
    /// command itself cannot be cancelled from here (it may be blocked, or
    /// not `Send`), so its writes are refused from now on: nothing new
    /// starts after a lock is gone. Returns the locks freed (as
    /// `s3://bucket/key`) and those that could not be, with why.
    pub async fn stop() -> (Vec<String>, Vec<String>) {
        STOPPING.store(true, Ordering::SeqCst);
        release_held_locks().await
    }

    async fn release_held_locks() -> (Vec<String>, Vec<String>) {
        let locks: Vec<HeldLock> = std::mem::take(&mut *held());
        let mut freed = Vec::new();
        let mut failed = Vec::new();
        for l in locks {
            let uri = format!("s3://{}/{}", l.bucket, l.key);
            match release_one(&l).await {
                Ok(true) => freed.push(uri),
                Ok(false) => {}
                Err(e) => failed.push(format!("`{uri}` (lock id `{}`): {e}", l.id)),
            }
        }
        (freed, failed)
    }

    async fn release_one(l: &HeldLock) -> Result<bool, String> {
        let etag = match &l.etag {
            Some(e) => e.clone(),
            None => {
                // The PUT may or may not have landed: it is ours only if it
                // carries our id.
                let out = match l.client.get_object().bucket(&l.bucket).key(&l.key).send().await {
                    Ok(out) => out,
                    Err(e) if super::is_missing_key(&e) => return Ok(false),
                    Err(e) => return Err(super::explain(&e)),
                };
                let etag = out.e_tag().map(str::to_string);
                let bytes = out.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
                let ours = serde_json::from_slice::<super::LockInfo>(&bytes).is_ok_and(|i| i.id == l.id);
                match (ours, etag) {
                    (true, Some(e)) => e,
                    _ => return Ok(false),
                }
            }
        };
        match l.client.delete_object().bucket(&l.bucket).key(&l.key).if_match(etag).send().await {
            Ok(_) => Ok(true),
            Err(e) if super::status(&e) == Some(412) || super::is_missing_key(&e) => Ok(false),
            Err(e) => Err(super::explain(&e)),
        }
    }

    /// Runs `f` as a stretch that handles the first Ctrl-C itself.
    pub async fn graceful<F: std::future::Future>(f: F) -> F::Output {
        struct Scope;
        impl Drop for Scope {
            fn drop(&mut self) {
                GRACEFUL.fetch_sub(1, Ordering::SeqCst);
            }
        }
        GRACEFUL.fetch_add(1, Ordering::SeqCst);
        let _scope = Scope;
        f.await
    }

    /// Which signal stopped the run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Stop {
        Interrupted,
        Terminated,
    }

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                Stop::Interrupted => "Interrupted",
                Stop::Terminated => "Terminated",
            })
        }
    }

    impl Stop {
        /// The conventional exit code: 128 + the signal's number.
        pub fn exit_code(self) -> i32 {
            match self {
                Stop::Interrupted => 130,
                Stop::Terminated => 143,
            }
        }
    }

    /// Listens for SIGINT and SIGTERM from the moment it is installed.
    pub struct Stopper {
        int: tokio::signal::unix::Signal,
        term: tokio::signal::unix::Signal,
    }

    impl Stopper {
        /// Must run inside a tokio runtime. Once installed, these signals
        /// no longer end the process by themselves: [`Stopper::wait`] must
        /// be raced against the work.
        pub fn install() -> std::io::Result<Stopper> {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stopper { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
        }

        /// Resolves when the run must stop now.
        pub async fn wait(mut self) -> Stop {
            let mut deferred = false;
            loop {
                tokio::select! {
                    _ = self.term.recv() => return Stop::Terminated,
                    _ = self.int.recv() => {
                        if deferred || GRACEFUL.load(Ordering::SeqCst) == 0 {
                            return Stop::Interrupted;
                        }
                        // The walk saw this one too and is winding down.
                        deferred = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn settings_need_bucket_and_key_and_later_pairs_win() {
        assert_eq!(S3Settings::from_pairs(pairs(&[("key", "k")])), Err(SettingsError::Missing("bucket")));
        assert_eq!(S3Settings::from_pairs(pairs(&[("bucket", "b")])), Err(SettingsError::Missing("key")));
        let s = S3Settings::from_pairs(pairs(&[("bucket", "b"), ("key", "a/s.json"), ("bucket", "c"), ("region", "")])).unwrap();
        assert_eq!((s.bucket.as_str(), s.key.as_str(), s.region.as_deref()), ("c", "a/s.json", None));
        assert_eq!(s.workspace_key_prefix, "env:");
        let err = S3Settings::from_pairs(pairs(&[("bucket", "b"), ("key", "k"), ("buckett", "x")])).unwrap_err();
        assert_eq!(err, SettingsError::Unknown("buckett".into()));
        assert!(err.to_string().contains("`buckett`") && err.to_string().contains("bucket, key"), "{err}");
        assert!(matches!(
            S3Settings::from_pairs(pairs(&[("bucket", "b"), ("key", "dir/")])),
            Err(SettingsError::Invalid { name: "key", .. })
        ));
    }

    #[test]
    fn assume_role_and_retries_are_settings() {
        let base = [("bucket", "b"), ("key", "k")];
        let with = |extra: &[(&str, &str)]| S3Settings::from_pairs(pairs(&[&base[..], extra].concat()));
        let s = with(&[
            ("assume_role.role_arn", "arn:aws:iam::123456789012:role/state"),
            ("assume_role.external_id", "the-external-id"),
            ("assume_role.duration", "30m"),
            ("max_retries", "3"),
        ])
        .unwrap();
        let role = s.assume_role.as_ref().expect("a role");
        assert_eq!(role.duration, Some(Duration::from_secs(1800)));
        assert_eq!(s.max_retries, Some(3));
        assert!(!format!("{s:?}").contains("the-external-id"), "Debug must hide the external id");
        assert!(with(&[("assume_role.role_arn", "")]).unwrap().assume_role.is_none());
        assert_eq!(with(&[("assume_role.session_name", "ci")]), Err(SettingsError::Missing("assume_role.role_arn")));
        assert!(matches!(
            with(&[("assume_role.role_arn", "deploy")]),
            Err(SettingsError::Invalid { name: "assume_role.role_arn", .. })
        ));
        let e = with(&[("assume_role.role_arn", "arn:aws:iam::123456789012:role/s"), ("assume_role.external_id", "no way!")])
            .unwrap_err();
        assert!(!e.to_string().contains("no way"), "{e}");
        assert!(matches!(with(&[("max_retries", "many")]), Err(SettingsError::Invalid { name: "max_retries", .. })));
        // The shared loader gets the backend's retry policy, not S3's endpoint.
        let s = with(&[("endpoint_url", "http://127.0.0.1:9000"), ("max_retries", "2")]).unwrap();
        let sdk = s.sdk_settings();
        assert_eq!((sdk.max_retries, sdk.endpoint_url), (Some(2), None));
    }

    #[test]
    fn workspaces_live_under_the_prefix() {
        let s = S3Settings::from_pairs(pairs(&[("bucket", "b"), ("key", "app/state.json")])).unwrap();
        assert_eq!(s.state_key("default"), "app/state.json");
        assert_eq!(s.state_key("staging"), "env:/staging/app/state.json");
        let b = S3Backend::new(s, "staging");
        assert_eq!(b.describe(), "s3://b/env:/staging/app/state.json");
        assert_eq!(b.lock_key(), "env:/staging/app/state.json.lock");
        assert_eq!(b.journal_key(3, 7), "env:/staging/app/state.json.journal/0000000003/00000007.json");
    }
}
