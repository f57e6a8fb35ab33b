//! The state model: what berth manages, as last seen.
//!
//! A state file is JSON with a format version, a lineage (a UUID fixed when
//! the state is born), a serial (bumped on every write), the resource
//! instances with their attributes and dependencies, and the outputs.
//!
//! Persistence cost grows with the change, not the state: during an apply,
//! each result is appended to a journal beside the state (see [`journal`])
//! before anything depending on it starts (forced to disk, unless it is the
//! result of a state-only built-in resource); the journal is folded
//! into the state file once at the end of the run, or by the next run after a
//! crash. Backends (local files, S3) implement [`Backend`].

pub mod journal;
pub mod local;
pub mod lock;
pub mod s3;
pub mod terraform;

use crate::addr::{InstanceAddr, InstanceKey, ResourceAddr};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use journal::JournalEntry;
pub use lock::LockInfo;

pub const FORMAT_VERSION: u32 = 1;

/// One object in the state. `deposed` is set for the old object of a
/// create-before-destroy replacement between the create and the destroy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResourceState {
    pub addr: InstanceAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<String>,
    /// The provider configuration that manages it: `aws`, `aws.west`, `berth`.
    pub provider: String,
    pub attributes: Value,
    /// Paths of sensitive attributes (see [`Value::sensitive_paths`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// Resources this one depends on directly, for destroy order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<ResourceAddr>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tainted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_before_destroy: bool,
    /// How many times this address has been created (idempotency tokens).
    #[serde(default)]
    pub generation: u64,
    /// Brought under berth rather than created by it (`berth import`, an
    /// `import` block, `berth state migrate-terraform`), and berth's
    /// ownership marks are not on the object yet: the next apply writes
    /// them (the plan shows it) and clears this.
    #[serde(default, skip_serializing_if = "is_false")]
    pub imported: bool,
    /// For an old object whose dependents switched away from it: how long
    /// it is kept before it is destroyed, and when that wait ends once it
    /// started. Journaled, so a run killed during the wait resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
}

/// The drain of an old object (see [`ResourceState::drain`]).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Drain {
    /// How long the wait is, in milliseconds.
    pub ms: u64,
    /// When it ends, in milliseconds since the Unix epoch; `None` until it
    /// starts (a run that stops before then waits the whole of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

impl Drain {
    /// How much of the wait is left at `now` (milliseconds since the Unix epoch).
    pub fn remaining(&self, now: u64) -> u64 {
        match self.until {
            Some(until) => until.saturating_sub(now).min(self.ms),
            None => self.ms,
        }
    }
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ResourceState {
    pub fn key(&self) -> ObjectKey {
        (self.addr.clone(), self.deposed.clone())
    }

    /// The attributes with their sensitive marks restored.
    pub fn value(&self) -> Value {
        self.attributes.clone().mark_paths(&self.sensitive)
    }
}

/// A create that was started and not yet recorded. If berth dies in between,
/// the next run asks the provider to find the object by its ownership tags
/// instead of creating a second one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingCreate {
    pub addr: InstanceAddr,
    pub provider: String,
    pub generation: u64,
    /// The create attempt's token (the providers' `OpContext::token`), so the next run looks for exactly the object this create made.
    /// Empty in journals written before tokens were per attempt.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputState {
    pub value: Value,
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
}

pub type ObjectKey = (InstanceAddr, Option<String>);

#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub lineage: String,
    pub serial: u64,
    pub resources: BTreeMap<ObjectKey, ResourceState>,
    pub outputs: BTreeMap<String, OutputState>,
    /// Creates started but not recorded as finished, by address (a map: a
    /// wide apply has thousands at once, and each result clears its own).
    pub pending: BTreeMap<InstanceAddr, PendingCreate>,
}

/// The file format. Resources are a sorted list so files diff cleanly.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    berth_version: String,
    lineage: String,
    serial: u64,
    resources: Vec<ResourceState>,
    #[serde(default)]
    outputs: BTreeMap<String, OutputState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<PendingCreate>,
}

/// Whether a workspace name is usable: backends make file names and object
/// keys of it, so it must not reach outside their folder or prefix, nor
/// collide with their temporary files.
pub fn valid_workspace(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// [`valid_workspace`], as the error every command reports.
pub fn check_workspace_name(name: &str) -> Result<(), StateError> {
    if valid_workspace(name) {
        Ok(())
    } else {
        Err(StateError::Other(format!(
            "invalid workspace name `{name}`: use letters, digits, `-`, `_` and `.`, not starting with `.`"
        )))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write state `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("state `{path}` is not valid: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("state `{path}` has format version {found}; this berth reads version {FORMAT_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{0}")]
    Locked(String),
    /// A remote backend's request failed: the message says what and why in
    /// one line, the client's error stays as the source.
    #[error("{message}")]
    Remote { message: String, source: Box<dyn std::error::Error + Send + Sync + 'static> },
    #[error("{0}")]
    Other(String),
}

impl From<StateError> for crate::diag::Diagnostic {
    fn from(e: StateError) -> Self {
        crate::diag::Diagnostic::error(e.to_string())
    }
}

impl From<StateError> for crate::diag::Diagnostics {
    fn from(e: StateError) -> Self {
        crate::diag::Diagnostic::from(e).into()
    }
}

impl State {
    pub fn new() -> State {
        State {
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, addr: &InstanceAddr) -> Option<&ResourceState> {
        self.resources.get(&(addr.clone(), None))
    }

    pub fn put(&mut self, r: ResourceState) {
        if r.deposed.is_none() {
            self.pending.remove(&r.addr);
        }
        self.resources.insert(r.key(), r);
    }

    pub fn remove(&mut self, key: &ObjectKey) -> Option<ResourceState> {
        self.resources.remove(key)
    }

    /// Every instance of a resource block. Keys order by resource first, so
    /// its instances sit together: a range, not a scan of the whole state
    /// (which made planning N blocks cost N² comparisons).
    pub fn instances_of<'a>(&'a self, res: &'a ResourceAddr) -> impl Iterator<Item = &'a ResourceState> + 'a {
        let first: ObjectKey = (InstanceAddr { resource: res.clone(), key: InstanceKey::None }, None);
        self.resources
            .range(first..)
            .map(|(_, r)| r)
            .take_while(move |r| &r.addr.resource == res)
            .filter(|r| r.deposed.is_none())
    }

    /// Applies one journal entry.
    pub fn apply_entry(&mut self, e: JournalEntry) {
        match e {
            JournalEntry::Begin { .. } => {}
            JournalEntry::Put(r) => self.put(*r),
            JournalEntry::Remove { addr, deposed } => {
                self.resources.remove(&(addr.clone(), deposed.clone()));
                if deposed.is_none() {
                    self.pending.remove(&addr);
                }
            }
            JournalEntry::Pending(p) => {
                self.pending.insert(p.addr.clone(), p);
            }
            JournalEntry::Outputs { outputs } => self.outputs = outputs,
        }
    }

    pub fn to_json(&self) -> String {
        let file = StateFile {
            version: FORMAT_VERSION,
            berth_version: env!("CARGO_PKG_VERSION").to_string(),
            lineage: self.lineage.clone(),
            serial: self.serial,
            resources: self.resources.values().cloned().collect(),
            outputs: self.outputs.clone(),
            pending: self.pending.values().cloned().collect(),
        };
        let mut s = serde_json::to_string_pretty(&file).expect("state serializes");
        s.push('\n');
        s
    }

    pub fn from_json(path: &str, text: &str) -> Result<State, StateError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe = serde_json::from_str(text)
            .map_err(|e| StateError::Corrupt { path: path.into(), reason: e.to_string() })?;
        if probe.version != FORMAT_VERSION {
            return Err(StateError::Version { path: path.into(), found: probe.version });
        }
        let file: StateFile = serde_json::from_str(text)
            .map_err(|e| StateError::Corrupt { path: path.into(), reason: e.to_string() })?;
        Ok(State {
            lineage: file.lineage,
            serial: file.serial,
            resources: file.resources.into_iter().map(|r| (r.key(), r)).collect(),
            outputs: file.outputs,
            pending: file.pending.into_iter().map(|p| (p.addr.clone(), p)).collect(),
        })
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Where a workspace's state lives.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// A human description: `state/default.json`, `s3://bucket/key`.
    fn describe(&self) -> String;

    /// Takes the lock, waiting up to `timeout` for a holder to release it.
    async fn lock(&self, operation: &str, timeout: std::time::Duration) -> Result<LockInfo, StateError>;

    /// Releases a lock this process holds.
    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError>;

    /// Removes a lock by id whoever holds it.
    async fn force_unlock(&self, id: &str) -> Result<(), StateError>;

    /// The lock's holder, if any.
    async fn lock_holder(&self) -> Result<Option<LockInfo>, StateError>;

    /// Reads the state with any journal left by an interrupted run folded
    /// in; `None` when there is no state yet.
    async fn load(&self) -> Result<Option<State>, StateError>;

    /// Whether the last [`load`](Backend::load) found a journal left by an
    /// interrupted run, replayed or stale: a run with nothing to change
    /// still writes the state, which clears it (and makes what a replay
    /// returned the stored state).
    fn found_journal(&self) -> bool {
        false
    }

    /// Writes a whole state atomically, keeping the previous version as a
    /// backup, and clears the journal.
    async fn write(&self, state: &State) -> Result<(), StateError>;

    /// Appends entries to the journal and makes them durable before returning.
    /// The first append of a run starts with [`JournalEntry::Begin`].
    async fn append(&self, entries: &[JournalEntry]) -> Result<(), StateError>;

    /// Appends entries about objects that exist only in the state (results of
    /// [`local_only`](crate::providers::Provider::local_only) providers): they
    /// must survive a killed berth, but need not be forced to disk, as losing
    /// them to a machine crash costs only a re-create of local values. A later
    /// [`append`](Backend::append) makes them durable with everything else.
    async fn append_local(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        self.append(entries).await
    }

    /// Names of the workspaces that have state.
    async fn workspaces(&self) -> Result<Vec<String>, StateError>;

    /// Reads a small document kept beside this workspace's state (`name`
    /// is `watch` for the watcher's ledger, see `crate::watch::ledger`),
    /// with its version for [`write_beside`](Backend::write_beside); `None`
    /// when there is none. It takes no state lock: the version check keeps
    /// concurrent writers from losing each other's changes.
    async fn read_beside(&self, name: &str) -> Result<Option<(String, String)>, StateError> {
        Err(StateError::Other(format!("the state backend `{}` cannot keep a `{name}` document", self.describe())))
    }

    /// Writes the document `name` if it is still at `version` (`None`: if
    /// there is none yet). `Ok(false)` when another writer got there first:
    /// read it again and redo the change.
    async fn write_beside(&self, name: &str, text: &str, version: Option<&str>) -> Result<bool, StateError> {
        let _ = (text, version);
        Err(StateError::Other(format!("the state backend `{}` cannot keep a `{name}` document", self.describe())))
    }

    /// What frees this backend's locks when the run is stopped at once (by
    /// a signal): the command holding them is abandoned, not unwound, so
    /// the release runs on requests of its own. `None` when a lock dies
    /// with the process (a `flock`).
    fn releaser(&self) -> Option<std::sync::Arc<dyn Releaser>> {
        None
    }
}

/// Frees the locks of a run that is being stopped; see [`Backend::releaser`].
#[async_trait::async_trait]
pub trait Releaser: Send + Sync {
    /// Refuses the backend's writes from now on, then frees every lock it
    /// holds, or may hold (its request was sent).
    async fn release(&self) -> Released;
}

/// What a [`Releaser`] freed (as URIs), and what it could not, with why.
#[derive(Debug, Default)]
pub struct Released {
    pub freed: Vec<String>,
    pub failed: Vec<String>,
}
