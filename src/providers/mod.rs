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

pub mod api_stats;
pub mod aws;
pub mod builtin;
pub mod dns;
pub mod local;
pub mod random;
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

/// One argument or exported attribute of a resource type.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    /// Must be set in the configuration.
    pub required: bool,
    /// Set by the provider (exported); may also be an optional argument.
    pub computed: bool,
    /// Never printed.
    pub sensitive: bool,
    /// A change replaces the resource.
    pub force_new: bool,
    /// The argument is a nested block (`ingress { ... }`), given as a list of objects.
    pub block: bool,
}

impl Attribute {
    pub const fn arg(name: &'static str) -> Self {
        Attribute { name, required: false, computed: false, sensitive: false, force_new: false, block: false }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    pub const fn block(mut self) -> Self {
        self.block = true;
        self
    }
    /// Exported only: not accepted as an argument.
    pub const fn out(name: &'static str) -> Self {
        Attribute::arg(name).computed()
    }
}

/// The schema of a resource or data source type.
#[derive(Debug, Clone)]
pub struct Schema {
    pub attributes: Vec<Attribute>,
    /// Names of exported attributes only (computed and not an argument).
    pub exported_only: Vec<&'static str>,
}

impl Schema {
    pub fn new(attributes: Vec<Attribute>) -> Self {
        Schema { attributes, exported_only: Vec::new() }
    }
    /// Declares attributes that cannot be set in configuration.
    pub fn with_exported(mut self, names: &[&'static str]) -> Self {
        for n in names {
            self.attributes.push(Attribute::out(n));
            self.exported_only.push(n);
        }
        self
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn is_argument(&self, name: &str) -> bool {
        self.attribute(name).is_some() && !self.exported_only.contains(&name)
    }
    pub fn arguments(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| !self.exported_only.contains(&a.name))
    }
}

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
}

impl OpContext {
    pub fn new(addr: InstanceAddr, lineage: impl Into<String>, generation: u64) -> Self {
        OpContext { addr, lineage: lineage.into(), generation, token: String::new() }
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

/// A provider's plan for one instance.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The state the resource will have after apply, with unknowns.
    pub after: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<String>,
    /// Remarks the plan must show (ownership, drift corrections, ...).
    pub notes: Vec<String>,
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
}

/// The default plan: the configuration, with every computed attribute the
/// configuration leaves unset carried over from the prior state, or unknown on
/// create; `requires_replace` lists the changed `force_new` arguments.
pub fn plan_from_schema(schema: &Schema, prior: Option<&Value>, config: &Value) -> Planned {
    let mut after = config.as_map().cloned().unwrap_or_default();
    let mut requires_replace = Vec::new();
    for attr in &schema.attributes {
        let configured = after.get(attr.name).is_some_and(|v| !v.is_null());
        if attr.computed && !configured {
            let carried = match prior {
                Some(p) if !(attr.force_new && replace_pending(schema, p, config)) => {
                    p.get(attr.name).cloned().unwrap_or(Value::Null)
                }
                _ => Value::Unknown,
            };
            after.insert(attr.name.to_string(), carried);
        } else if !after.contains_key(attr.name) {
            after.insert(attr.name.to_string(), Value::Null);
        }
        if let Some(p) = prior
            && attr.force_new
            && !attr.computed
        {
            let before = p.get(attr.name).unwrap_or(&Value::Null);
            let now = after.get(attr.name).unwrap_or(&Value::Null);
            if !now.is_known() || !before.same_as(now) {
                requires_replace.push(attr.name.to_string());
            }
        }
    }
    if !requires_replace.is_empty() {
        // A replacement gets fresh computed attributes.
        for attr in &schema.attributes {
            let configured = config.get(attr.name).is_some_and(|v| !v.is_null());
            if attr.computed && !configured {
                after.insert(attr.name.to_string(), Value::Unknown);
            }
        }
    }
    Planned { after: Value::Map(after), requires_replace, notes: Vec::new() }
}

fn replace_pending(schema: &Schema, prior: &Value, config: &Value) -> bool {
    schema.arguments().any(|a| {
        a.force_new && !a.computed && {
            let before = prior.get(a.name).unwrap_or(&Value::Null);
            let now = config.get(a.name).unwrap_or(&Value::Null);
            !now.is_known() || !before.same_as(now)
        }
    })
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

/// The provider families berth knows, by the prefix of their type names.
pub const KNOWN_PROVIDERS: &[&str] = &["aws", "berth", "dns", "local", "random", "tls"];

/// The names a provider block takes: its arguments and its nested blocks,
/// each with its own names. The block as written is held to it before
/// anything is evaluated ([`check_block`]), so a misspelt name is an error
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

    fn block(&self, name: &str) -> Option<&'static BlockSchema> {
        self.blocks.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}

/// The block schema of a provider family; `None` for a family berth does
/// not know (configuring it reports that).
pub fn block_schema(name: &str) -> Option<&'static BlockSchema> {
    static EMPTY: BlockSchema = BlockSchema { args: &[], blocks: &[] };
    match name {
        "aws" => Some(&aws::BLOCK),
        "dns" => Some(&dns::config::BLOCK),
        "berth" | "random" | "tls" | "local" => Some(&EMPTY),
        _ => None,
    }
}

/// Holds a written provider block to its family's [`BlockSchema`]: every
/// argument or block it does not know is an error at its location, with a
/// "did you mean" when a known name is close.
pub fn check_block(decl: &crate::config::ProviderDecl) -> crate::diag::Diagnostics {
    let mut diags = crate::diag::Diagnostics::new();
    if let Some(schema) = block_schema(&decl.name) {
        check_body(&decl.body, schema, &format!("provider `{}`", decl.key), &mut diags);
    }
    diags
}

fn check_body(body: &crate::config::BodyDecl, schema: &BlockSchema, what: &str, diags: &mut crate::diag::Diagnostics) {
    use crate::diag::{Diagnostic, suggest};
    for (name, a) in &body.attrs {
        if !schema.knows(name) {
            let mut d = Diagnostic::error(format!("unsupported argument `{name}` in {what}")).at(a.key_span.clone());
            if let Some(h) = suggest(name, schema.names()) {
                d = d.hint(format!("did you mean `{h}`?"));
            }
            diags.push(d);
        }
    }
    for b in &body.blocks {
        match schema.block(&b.kind) {
            Some(inner) => check_body(&b.body, inner, &format!("the `{}` block of {what}", b.kind), diags),
            None => {
                let mut d = Diagnostic::error(format!("unsupported block `{}` in {what}", b.kind)).at(b.span.clone());
                if let Some(h) = suggest(&b.kind, schema.blocks.iter().map(|(n, _)| *n)) {
                    d = d.hint(format!("did you mean `{h}`?"));
                } else if schema.args.contains(&b.kind.as_str()) {
                    d = d.hint(format!("`{}` is an argument: `{} = ...`", b.kind, b.kind));
                }
                diags.push(d);
            }
        }
    }
}

/// Where an error about `path` (`region`, `assume_role.role_arn`) points in
/// a written provider block: the argument's value, else the nearest
/// enclosing block that exists.
fn attribute_span(body: &crate::config::BodyDecl, path: &str) -> Option<crate::diag::Span> {
    let (first, rest) = match path.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (path, None),
    };
    if let Some(a) = body.attrs.get(first) {
        return a.expr.span().or_else(|| a.key_span.clone());
    }
    let b = body.blocks.iter().find(|b| b.kind == first)?;
    rest.and_then(|r| attribute_span(&b.body, r)).or_else(|| b.span.clone())
}

/// Builds a configured provider instance from its evaluated `provider` block
/// (an empty object when the configuration has none).
pub async fn configure(name: &str, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
    match name {
        "aws" => Ok(Arc::new(aws::AwsProvider::from_config(config).await?)),
        "berth" => Ok(Arc::new(builtin::Builtin::default())),
        "dns" => Ok(Arc::new(dns::DnsProvider::configure(config)?)),
        "random" => Ok(Arc::new(random::Random)),
        "tls" => Ok(Arc::new(tls::Tls)),
        "local" => Ok(Arc::new(local::Local)),
        other => Err(ProviderError::new(format!(
            "unknown provider `{other}` (berth has: {})",
            KNOWN_PROVIDERS.join(", ")
        ))),
    }
}

/// A provider instance for `berth validate`: schemas and offline checks only,
/// configured with inert settings so that nothing is looked up or called.
pub async fn for_validation(name: &str) -> Result<Arc<dyn Provider>, ProviderError> {
    use crate::value::obj;
    let config = match name {
        "aws" => obj([
            ("region", Value::str("us-east-1")),
            ("access_key", Value::str("validate")),
            ("secret_key", Value::str("validate")),
            ("endpoint_url", Value::str("http://127.0.0.1:9")),
        ]),
        "dns" => obj([("update", Value::List(vec![obj([("server", Value::str("127.0.0.1"))])]))]),
        _ => Value::Map(Default::default()),
    };
    configure(name, &config).await
}

/// Where the configuration first uses a provider: the resource's `provider`
/// argument, or the resource itself when the provider is implied by its type.
fn first_use(config: &crate::config::Config, key: &str) -> Option<crate::diag::Span> {
    config.all_resources().find(|r| r.provider == key).and_then(|r| r.provider_span.clone().or_else(|| r.span.clone()))
}

/// Configures every provider the configuration and the state need: the root
/// module's `provider` blocks (evaluated against root variables), and an
/// empty configuration for a provider used without a block.
pub async fn setup(
    config: &crate::config::Config,
    vars: &BTreeMap<String, Value>,
    needed: &std::collections::BTreeSet<String>,
) -> Result<Registry, crate::diag::Diagnostics> {
    use crate::config::eval::{self, Ctx};
    use crate::diag::{Diagnostic, Diagnostics};
    let world = crate::world::World::new(config, vars.clone(), "");
    let root = config.root();
    let mut registry = Registry::default();
    let mut diags = Diagnostics::new();
    let mut keys: std::collections::BTreeSet<String> = needed.clone();
    keys.extend(root.providers.keys().cloned());
    keys.insert("berth".into());
    for key in keys {
        let name = key.split('.').next().unwrap_or(&key).to_string();
        let (value, span) = match root.providers.get(&key) {
            Some(decl) => {
                let unknown = check_block(decl);
                if !unknown.is_empty() {
                    diags.extend(unknown);
                    continue;
                }
                let path = Vec::new();
                let ctx = Ctx::new(&world, &path, &root.dir);
                let mut m = crate::value::Map::new();
                let mut ok = true;
                for (n, a) in &decl.body.attrs {
                    match eval::eval(&a.expr, &ctx) {
                        Ok(v) if v.is_known() => {
                            m.insert(n.clone(), v);
                        }
                        Ok(_) => {
                            diags.push(
                                Diagnostic::error(format!("provider `{key}`: `{n}` must be known before planning"))
                                    .at(a.expr.span()),
                            );
                            ok = false;
                        }
                        Err(d) => {
                            diags.push(d);
                            ok = false;
                        }
                    }
                }
                match world.eval_body(
                    &crate::config::BodyDecl { attrs: Default::default(), blocks: decl.body.blocks.clone() },
                    None,
                    &ctx,
                    &format!("provider `{key}`"),
                    decl.span.as_ref(),
                ) {
                    Ok(Value::Map(blocks)) => m.extend(blocks),
                    Ok(_) => {}
                    Err(d) => {
                        diags.extend(d);
                        ok = false;
                    }
                }
                if !ok {
                    continue;
                }
                (Value::Map(m), decl.span.clone())
            }
            None if key.contains('.') => {
                diags.push(Diagnostic::error(format!("provider `{key}` is used but not configured: add `provider \"{name}\" {{ alias = \"{}\" }}`", &key[name.len() + 1..])).at(first_use(config, &key)));
                continue;
            }
            // Without a block, an error is about the first resource that needs the provider.
            None => (Value::Map(Default::default()), first_use(config, &key)),
        };
        match configure(&name, &value).await {
            Ok(p) => {
                registry.providers.insert(key, p);
            }
            Err(e) => {
                // Point at the argument the error is about when it is written.
                let at = e
                    .attribute
                    .as_deref()
                    .and_then(|a| root.providers.get(&key).and_then(|d| attribute_span(&d.body, a)));
                diags.push(Diagnostic::error(format!("provider `{key}`: {}", e.message)).at(at.or(span)))
            }
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(registry) }
}
