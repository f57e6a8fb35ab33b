//! The provider interface: data in, data out.
//!
//! A provider manages the resources of one family (`aws_*`, `dns_*`,
//! `berth_*`). It never sees the graph: the engine hands it batches of
//! resource instances (everything of one type that is ready at the same step
//! of the walk) and records what comes back. Batching is the point: a refresh
//! of 1000 instances can be one DescribeInstances call, and 500 DNS records
//! one ChangeResourceRecordSets request.
//!
//! Values in and out are [`Value`] objects whose attributes follow the
//! resource's [`Schema`]. A planned value may contain [`Value::Unknown`] for
//! attributes only known after apply.

pub mod aws;
pub mod builtin;
pub mod dns;
pub mod families;
pub mod local;
pub mod null;
pub mod random;
pub mod time;
pub mod tls;

use crate::addr::{InstanceAddr, Mode};
use crate::value::Value;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What kind of failure a [`ProviderError`] is, for the engine's decisions
/// (is a create's outcome unknown? is it worth retrying later?).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderErrorKind {
    /// The object is not there.
    NotFound,
    /// The service kept refusing for its rate limits until retries ran out.
    Throttled,
    /// The request was refused as invalid: retrying it unchanged cannot help.
    Invalid,
    /// The request conflicts with what exists (a name taken, a dependency).
    Conflict,
    /// The request may have reached the service and been carried out, but
    /// its answer never came back (a dropped connection, a timeout). A
    /// create that fails this way stays pending in the journal, so the next
    /// run looks for its object instead of creating a second one.
    Indeterminate,
    #[default]
    Other,
}

/// What a provider reports when an operation fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub message: String,
    /// The attribute the error is about, when there is one, so the engine can
    /// point at it in the configuration.
    pub attribute: Option<String>,
    pub kind: ProviderErrorKind,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError { message: message.into(), attribute: None, kind: ProviderErrorKind::Other }
    }
    pub fn attr(attribute: &str, message: impl Into<String>) -> Self {
        ProviderError { message: message.into(), attribute: Some(attribute.to_string()), kind: ProviderErrorKind::Other }
    }
    pub fn with_kind(mut self, kind: ProviderErrorKind) -> Self {
        self.kind = kind;
        self
    }
    /// Whether the failed request may nevertheless have been carried out.
    pub fn is_indeterminate(&self) -> bool {
        self.kind == ProviderErrorKind::Indeterminate
    }
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// A provider's error as a diagnostic, without a location: where the error
/// points in the configuration (see [`ProviderError::attribute`]) is the
/// caller's to add.
impl From<ProviderError> for crate::diag::Diagnostic {
    fn from(e: ProviderError) -> Self {
        crate::diag::Diagnostic::error(e.message)
    }
}

// The provider interface speaks in the schema leaf's types.
pub use crate::schema::{Attribute, Planned, Schema, plan_from_schema};

/// The context of one plan or apply operation.
#[derive(Debug, Clone)]
pub struct OpContext {
    pub addr: InstanceAddr,
    /// The state's lineage, for ownership tags and idempotency tokens.
    pub lineage: String,
    /// How many times this address has been created; tells the object of a
    /// create-before-destroy replacement from the one it replaces.
    pub generation: u64,
    /// The create attempt's token: fresh for every create the engine starts,
    /// the same for every retry of that create, and kept in the write-ahead
    /// journal entry so the run after a crash looks for the same object.
    /// Idempotency tokens (EC2 `ClientToken`, Route53 `CallerReference`)
    /// derive from it: AWS never accepts one twice for different creates, so
    /// neither lineage, address nor generation alone can be the token (a
    /// destroyed address is created again at generation 0). Empty outside
    /// creates and adoptions.
    pub token: String,
    /// The object was imported and does not carry berth's ownership marks
    /// yet: an update writes them first (see [`Provider::ownership_marks`]).
    pub claim: bool,
}

impl OpContext {
    pub fn new(addr: InstanceAddr, lineage: impl Into<String>, generation: u64) -> Self {
        OpContext { addr, lineage: lineage.into(), generation, token: String::new(), claim: false }
    }
    /// An operation on an imported object that must take berth's marks.
    pub fn claiming(mut self, claim: bool) -> Self {
        self.claim = claim;
        self
    }
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }
    /// A fresh token for one create attempt.
    pub fn fresh_token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

/// One change for a provider to carry out.
#[derive(Debug, Clone)]
pub enum ChangeKind {
    Create { planned: Value },
    Update { prior: Value, planned: Value },
    Delete { prior: Value },
}

#[derive(Debug, Clone)]
pub struct ApplyOp {
    pub ctx: OpContext,
    pub kind: ChangeKind,
}

/// The result of one [`ApplyOp`]. `state` is what exists now, even when the
/// operation failed half-way: the engine records it. A create that failed
/// half-way (a host launched but never running) is recorded as tainted, to
/// be replaced; a failed update or delete leaves the object as `state` says
/// it is, untainted, and the next plan proposes the change again.
/// `warnings` are shown and reported without failing the operation (a
/// change AWS accepted but had not finished propagating in time).
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    pub state: Option<Value>,
    pub error: Option<ProviderError>,
    pub warnings: Vec<String>,
}

impl ApplyOutcome {
    pub fn ok(state: Option<Value>) -> Self {
        ApplyOutcome { state, error: None, warnings: Vec::new() }
    }
    pub fn failed(state: Option<Value>, error: ProviderError) -> Self {
        ApplyOutcome { state, error: Some(error), warnings: Vec::new() }
    }
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// Where a provider reports each operation's outcome the moment it lands, by
/// the operation's index in the batch, so the engine can journal it at once.
pub type ApplySink = tokio::sync::mpsc::UnboundedSender<(usize, ApplyOutcome)>;

/// What a refresh found for one instance: `None` when it no longer exists.
pub type Refreshed = ProviderResult<Option<Value>>;

/// What the cloud says about a live object's health, beyond its attributes:
/// the signals `berth watch` acts on ([`Provider::health`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// `Some(false)` when the cloud's own checks fail (EC2's instance or
    /// system status check `impaired`); `None` when it has no verdict yet
    /// (`initializing`, `insufficient-data`).
    pub ok: Option<bool>,
    /// The checks' words, for messages: `system: impaired, instance: ok`.
    pub detail: String,
    /// Maintenance the cloud scheduled on the object.
    pub scheduled: Vec<Scheduled>,
    /// An operator asked `berth watch` to leave this object alone from the
    /// cloud's console (EC2: the tag `berth:watch=paused`).
    pub paused: bool,
}

/// A maintenance event the cloud scheduled on an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// `instance-retirement`, `system-reboot`, `instance-stop`, ...
    pub code: String,
    pub description: String,
    /// RFC 3339, when known.
    pub not_before: Option<String>,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The schema of a type, `None` when this provider has no such type.
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema>;

    /// All type names of a mode, for "did you mean" hints.
    fn type_names(&self, mode: Mode) -> Vec<&'static str>;

    /// True when this provider's objects exist only in berth's state, with
    /// nothing outside berth to lose track of (the built-in resources). The
    /// apply then journals their creates and results without forcing them to
    /// disk: a killed berth still keeps them, and a machine crash can cost
    /// only a re-create of local values.
    fn local_only(&self) -> bool {
        false
    }

    /// Checks a configuration before any API call. Unknown values are allowed
    /// and are skipped.
    fn validate(&self, _mode: Mode, _type_: &str, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }

    /// Reads the current state of a batch of instances of one type.
    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed>;

    /// Plans one instance from its refreshed state and configuration.
    async fn plan(&self, ctx: &OpContext, type_: &str, prior: Option<&Value>, config: &Value)
        -> ProviderResult<Planned>;

    /// Carries out a batch of changes to instances of one type, reporting
    /// each outcome on `sink` as it lands.
    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink);

    /// Reads a data source.
    async fn read(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value>;

    /// What berth writes on an object of `type_` to mark it as its own,
    /// beyond its attributes (EC2's ownership tags), for the plan to show
    /// when an imported object takes them; `None` when the type carries no
    /// such marks (or keeps them in an attribute, which the plan diffs).
    /// An update whose [`OpContext::claim`] is set writes them.
    fn ownership_marks(&self, _type_: &str) -> Option<String> {
        None
    }

    /// After a crash between "create started" and "create recorded", looks for
    /// the object that create (`ctx.generation` of `ctx.addr` in this state)
    /// made, by its ownership marks, and returns its state. The planner
    /// adopts while refreshing, before the configuration is evaluated, so
    /// `config` is `Null` there: an adopt must find its object without it.
    /// An older object of the address (the one a create-before-destroy
    /// replacement replaces) must not be returned.
    async fn adopt(&self, _ctx: &OpContext, _type_: &str, _config: &Value) -> ProviderResult<Option<Value>> {
        Ok(None)
    }

    /// Reads the health of a batch of live objects of one type (their
    /// refreshed values), in as few calls as the cloud allows; `None` when
    /// the type has no health beyond existing. One answer per item, in
    /// order (`None` for an object the cloud reports nothing about); an
    /// error fails the whole read: a watcher never heals on half of one.
    async fn health(&self, _type_: &str, _items: &[(OpContext, Value)]) -> Option<ProviderResult<Vec<Option<Health>>>> {
        None
    }
}

/// Runs `op` for each item of a batch with at most `limit` in flight, sending
/// each outcome as it lands. For providers whose API has no batch call.
pub async fn apply_each<F, Fut>(ops: Vec<ApplyOp>, sink: ApplySink, limit: usize, op: F)
where
    F: Fn(ApplyOp) -> Fut,
    Fut: std::future::Future<Output = ApplyOutcome>,
{
    use futures::StreamExt;
    let mut stream = futures::stream::iter(ops.into_iter().enumerate().map(|(i, o)| {
        let fut = op(o);
        async move { (i, fut.await) }
    }))
    .buffer_unordered(limit.max(1));
    while let Some((i, outcome)) = stream.next().await {
        let _ = sink.send((i, outcome));
    }
}

/// The provider instances of a run, by configuration address
/// (`aws`, `aws.west`, `berth`).
#[derive(Clone, Default)]
pub struct Registry {
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
}

impl Registry {
    pub fn get(&self, key: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(key)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.providers.keys()).finish()
    }
}

/// The names a provider block takes: its arguments and its nested blocks,
/// each with its own names. The block as written is held to it before
/// anything is evaluated (`engine::providers::check_block`), so a misspelt name is an error
/// at its location and never silently dropped. A nested block may also be
/// written as an argument (`endpoints = { ... }`).
#[derive(Debug)]
pub struct BlockSchema {
    pub args: &'static [&'static str],
    pub blocks: &'static [(&'static str, &'static BlockSchema)],
}

impl BlockSchema {
    /// Every name, arguments and blocks.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.args.iter().copied().chain(self.blocks.iter().map(|(n, _)| *n))
    }

    pub fn knows(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// The schema of a nested block.
    pub fn block(&self, name: &str) -> Option<&'static BlockSchema> {
        self.blocks.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}
