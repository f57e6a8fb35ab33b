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
//! - `K.lock` is the lock ([`lock`]): created with `If-None-Match: *`, so
//!   exactly one creator wins; it holds a [`LockInfo`] naming the holder.
//!   Unlike a `flock`, nothing frees it when its holder dies: `berth
//!   force-unlock` does, and [`Backend::releaser`] frees the locks of a run
//!   that is stopped ([`held_locks`]).
//! - `K.journal/<serial>/<seq>.json` are the journal ([`journal`]): S3 has no append, so
//!   each append is one object, created with `If-None-Match: *`. Every object
//!   starts with the run's `Begin` entry, so each names the state it applies
//!   to. `load` lists and replays them in order; a state write deletes them.
//! - `K.versions/<serial>.json` keep every version when the bucket has no
//!   versioning of its own (S3 answers a state write without a version id).

//!
//! The object calls themselves, with their conditions, are in [`objects`].
pub mod held_locks;
mod journal;
mod lock;
mod objects;

use crate::aws_sdk::{self, AssumeRole, SdkSettings};
use crate::state::journal::JournalEntry;
use crate::state::lock::LockInfo;
use crate::state::{Backend, State, StateError, check_workspace_name, valid_workspace};
use aws_sdk_s3::Client;
use objects::{Cond, Deleted, PutError, remote};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

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
    /// `encrypt = true`: every object is written with server-side
    /// encryption, SSE-KMS with `kms_key_id` when it is set, SSE-S3
    /// (AES256) otherwise. As in Terraform, `kms_key_id` needs `encrypt`.
    pub encrypt: bool,
    pub kms_key_id: Option<String>,
    /// `dynamodb_table` of a Terraform configuration: accepted and not
    /// used, since berth locks with an S3 conditional write (`KEY.lock`);
    /// kept so the command can say so.
    pub dynamodb_table: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("unknown setting `{0}` for the s3 backend (it takes: {known})", known = S3Settings::KEYS.join(", "))]
    Unknown(String),
    #[error("the s3 backend needs `{0}`: set it in the `backend \"s3\"` block or pass `--backend-config {0}=VALUE`")]
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
        "encrypt",
        "kms_key_id",
        "use_lockfile",
        "dynamodb_table",
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
        let (mut encrypt, mut kms_key_id, mut use_lockfile, mut dynamodb_table) = (None, None, None, None);
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
                "encrypt" => &mut encrypt,
                "kms_key_id" => &mut kms_key_id,
                "use_lockfile" => &mut use_lockfile,
                "dynamodb_table" => &mut dynamodb_table,
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
        let flag = |name: &'static str, v: Option<String>| match nonempty(v).as_deref().map(str::trim) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(SettingsError::Invalid { name, reason: format!("must be true or false, not `{other}`") }),
        };
        let encrypt = flag("encrypt", encrypt)?;
        // berth always locks, with a conditional write of `KEY.lock`:
        // `use_lockfile` (Terraform's opt-in to the same idea) changes
        // nothing, but must be a bool.
        flag("use_lockfile", use_lockfile)?;
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
            return Err(SettingsError::Invalid {
                name: "key",
                reason: format!("`{key}` must not start or end with `/`"),
            });
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
            encrypt,
            kms_key_id: nonempty(kms_key_id),
            dynamodb_table: nonempty(dynamodb_table),
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

    /// What a user should know about settings that berth accepts but
    /// treats otherwise than Terraform does.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.dynamodb_table {
            out.push(format!(
                "the s3 backend's `dynamodb_table = \"{t}\"` is not used: berth locks the state with a conditional \
                 write of `{}.lock` in the bucket (If-None-Match), so no DynamoDB table is needed",
                self.key
            ));
        }
        if self.kms_key_id.is_some() && !self.encrypt {
            out.push("the s3 backend's `kms_key_id` is not used without `encrypt = true` (as in Terraform)".into());
        }
        out
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
        e @ aws_sdk::LoadError::AssumeRole { .. } => remote(format!("the s3 backend: {e}"), e),
    })?;
    let endpoint = s
        .endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok().filter(|v| !v.is_empty()))
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
        .interceptor(crate::telemetry::api_stats::CountCalls)
        .retry_partition(aws_sdk::retry_partition("s3"));
    if let Some(url) = endpoint {
        // Emulators and self-hosted stores serve buckets under the path,
        // not as subdomains.
        conf = conf.endpoint_url(url).force_path_style(true);
    }
    Ok(Client::from_conf(conf.build()))
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
    run: Option<journal::Run>,
}

pub struct S3Backend {
    settings: S3Settings,
    workspace: String,
    key: String,
    client: tokio::sync::OnceCell<Client>,
    seen: Mutex<Seen>,
    lock: Mutex<Option<lock::Held>>,
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

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_workspace(&self) -> Result<(), StateError> {
        check_workspace_name(&self.workspace)
    }

    pub async fn client(&self) -> Result<&Client, StateError> {
        self.client.get_or_try_init(|| client(&self.settings)).await
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
        self.acquire(operation, timeout).await
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        self.release_lock(lock).await
    }

    async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        self.remove_lock(id).await
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StateError> {
        self.holder().await
    }

    async fn load(&self) -> Result<Option<State>, StateError> {
        self.check_workspace()?;
        let shown = self.describe();
        let got = self.get(&self.key).await?;
        let (state, etag) = match got {
            Some((bytes, etag)) => {
                let text = String::from_utf8(bytes).map_err(|_| StateError::Corrupt {
                    path: shown.clone(),
                    reason: "the object is not UTF-8".into(),
                })?;
                (Some(State::from_json(&shown, &text)?), etag)
            }
            None => (None, None),
        };
        self.replay(state, etag).await
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
        self.fold_journal().await;
        Ok(())
    }

    async fn append(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        self.append_entries(entries).await
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

    fn releaser(&self) -> Option<std::sync::Arc<dyn super::Releaser>> {
        Some(std::sync::Arc::new(StopLocks))
    }

    async fn read_beside(&self, name: &str) -> Result<Option<(String, String)>, StateError> {
        self.check_workspace()?;
        let key = format!("{}.{name}", self.key);
        let Some((bytes, etag)) = self.get(&key).await? else { return Ok(None) };
        let text = String::from_utf8(bytes)
            .map_err(|_| StateError::Corrupt { path: self.uri(&key), reason: "the object is not UTF-8".into() })?;
        Ok(Some((text, etag.unwrap_or_default())))
    }

    async fn write_beside(&self, name: &str, text: &str, version: Option<&str>) -> Result<bool, StateError> {
        self.check_workspace()?;
        let key = format!("{}.{name}", self.key);
        let cond = match version {
            Some(etag) => Cond::IfMatch(etag),
            None => Cond::IfNoneMatch,
        };
        match self.put(&key, text.as_bytes(), cond).await {
            Ok(_) => Ok(true),
            Err(PutError::Precondition) => Ok(false),
            Err(PutError::Failed(e)) => Err(e),
        }
    }
}

/// Frees this process's S3 locks on a hard stop (see [`held_locks`]).
struct StopLocks;

#[async_trait::async_trait]
impl super::Releaser for StopLocks {
    async fn release(&self) -> super::Released {
        let (freed, failed) = held_locks::stop().await;
        super::Released { freed, failed }
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
        let s = S3Settings::from_pairs(pairs(&[("bucket", "b"), ("key", "a/s.json"), ("bucket", "c"), ("region", "")]))
            .unwrap();
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
    fn terraform_settings_encrypt_and_locking() {
        let with = |extra: &[(&str, &str)]| S3Settings::from_pairs(pairs(&[&[("bucket", "b"), ("key", "k")][..], extra].concat()));
        let s = with(&[]).unwrap();
        assert!(!s.encrypt && s.kms_key_id.is_none() && s.notes().is_empty());
        let s = with(&[("encrypt", "true"), ("kms_key_id", "alias/state"), ("use_lockfile", "true")]).unwrap();
        assert!(s.encrypt);
        assert_eq!(s.kms_key_id.as_deref(), Some("alias/state"));
        assert!(s.notes().is_empty());
        // A key without `encrypt` is not used, as in Terraform: said, not silent.
        let s = with(&[("kms_key_id", "alias/state")]).unwrap();
        assert!(s.notes()[0].contains("`kms_key_id` is not used without `encrypt = true`"), "{:?}", s.notes());
        let s = with(&[("dynamodb_table", "tf-locks"), ("use_lockfile", "false")]).unwrap();
        let notes = s.notes();
        assert!(notes[0].contains("`dynamodb_table = \"tf-locks\"` is not used") && notes[0].contains("`k.lock`"), "{notes:?}");
        for (name, bad) in [("encrypt", "yes"), ("use_lockfile", "1")] {
            let err = with(&[(name, bad)]).unwrap_err();
            assert!(err.to_string().contains("must be true or false"), "{err}");
        }
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
        let e = with(&[
            ("assume_role.role_arn", "arn:aws:iam::123456789012:role/s"),
            ("assume_role.external_id", "no way!"),
        ])
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
