//! Configuration: the `*.hcl` files of a directory and the modules they call.
//!
//! Loading parses every file with hcl-edit (which keeps byte spans), turns
//! blocks into declarations ([`Module`]) and leaves every expression
//! unevaluated ([`Expr`]): evaluation happens later, during the walk, against
//! values from upstream (see [`eval`]). Problems are collected, not returned
//! one by one, so `berth validate` shows them all.

pub mod eval;
pub mod fmt;
pub mod functions;
pub mod health;
mod load;
pub mod refs;

mod syntax;
pub mod template;
pub mod types;
pub mod vars;
pub mod version;

use crate::addr::{Mode, ModulePath, ResourceAddr};
use crate::diag::{SourceFile, Span};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use load::{load, load_str};
pub(crate) use load::is_name;

/// An unevaluated expression and the file it came from. The syntax tree is
/// shared: copies of a declaration (a module called N times has N) cost a
/// reference count, not a tree.
#[derive(Clone, Debug)]
pub struct Expr {
    pub expr: Arc<hcl_edit::expr::Expression>,
    pub file: Arc<SourceFile>,
    /// Names the enclosing `dynamic` blocks bind (their iterators), which
    /// are no references to resources: `ingress.value.port` in `content`.
    pub bound: Vec<String>,
}

impl Expr {
    pub fn new(expr: hcl_edit::expr::Expression, file: Arc<SourceFile>) -> Expr {
        Expr { expr: Arc::new(expr), file, bound: Vec::new() }
    }

    pub fn span(&self) -> Option<Span> {
        use hcl_edit::Span as _;
        self.expr.span().map(|r| Span::new(&self.file, r))
    }

    /// Span of any sub-expression of this one.
    pub fn span_of(&self, e: &impl hcl_edit::Span) -> Option<Span> {
        e.span().map(|r| Span::new(&self.file, r))
    }
}

/// The arguments and nested blocks of a block body, unevaluated.
#[derive(Clone, Debug, Default)]
pub struct BodyDecl {
    pub attrs: IndexMap<String, AttrDecl>,
    pub blocks: Vec<BlockDecl>,
}

#[derive(Clone, Debug)]
pub struct AttrDecl {
    pub name: String,
    pub expr: Expr,
    pub key_span: Option<Span>,
}

#[derive(Clone, Debug)]
pub struct BlockDecl {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: BodyDecl,
    pub span: Option<Span>,
    /// For `dynamic "NAME"`: how to expand it into `NAME` blocks.
    pub dynamic: Option<Box<DynamicDecl>>,
}

/// A `dynamic "NAME" { for_each, iterator, content { ... } }` block: one
/// `NAME` block per element of `for_each`, its body `content` evaluated with
/// `ITERATOR.key` and `ITERATOR.value` (the iterator is named `NAME` unless
/// `iterator` says otherwise).
#[derive(Clone, Debug)]
pub struct DynamicDecl {
    /// The kind of the blocks it makes.
    pub name: String,
    pub for_each: Expr,
    pub iterator: String,
    pub content: BodyDecl,
}

impl BodyDecl {
    /// All expressions inside, nested blocks included.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = self.attrs.values().map(|a| &a.expr).collect();
        for b in &self.blocks {
            match &b.dynamic {
                Some(d) => {
                    out.push(&d.for_each);
                    out.extend(d.content.exprs());
                }
                None => out.extend(b.body.exprs()),
            }
        }
        out
    }
}

#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    pub create_before_destroy: bool,
    pub prevent_destroy: bool,
    /// Attribute names; `["*"]` for `ignore_changes = all`.
    pub ignore_changes: Vec<String>,
    /// `watch = "notify"`: `berth watch` reports this resource's drift and
    /// never heals it (a database or accessory host with local data).
    pub watch_notify_only: bool,
    /// `drain = "30s"`: how long, beyond the longest TTL of the DNS records
    /// that switched away from it, the old object of a create-before-destroy
    /// replacement is kept before it is destroyed (clients cache addresses
    /// longer than resolvers should).
    pub drain: Option<std::time::Duration>,
    /// `rolling { max_unavailable = N }`: the instances of a counted or
    /// `for_each`'d resource are replaced in waves of N, one after another.
    pub rolling: Option<Rolling>,
}

/// `lifecycle { rolling { max_unavailable = N } }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rolling {
    /// How many instances one wave replaces (at least one).
    pub max_unavailable: usize,
}

impl Lifecycle {
    /// Keeps the prior values of the attributes listed in `ignore_changes`.
    pub fn keep_ignored(&self, config: &mut crate::value::Value, prior: &crate::value::Value) {
        let crate::value::Value::Map(m) = config else { return };
        for attr in &self.ignore_changes {
            if attr == "*" {
                for (k, v) in m.iter_mut() {
                    if let Some(old) = prior.get(k) {
                        *v = old.clone();
                    }
                }
            } else if let Some(old) = prior.get(attr) {
                m.insert(attr.clone(), old.clone());
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct ResourceDecl {
    pub addr: ResourceAddr,
    pub span: Option<Span>,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    /// Provider configuration address: `aws`, `aws.west`.
    pub provider: String,
    pub provider_span: Option<Span>,
    pub depends_on: Vec<Expr>,
    pub lifecycle: Lifecycle,
    /// `health_check { url, expect_status, timeout, interval, enabled }`:
    /// evaluated with `self` once the object exists; dependents wait for it.
    pub health_check: Option<BlockDecl>,
    pub body: BodyDecl,
}

#[derive(Clone, Debug)]
pub struct VariableDecl {
    pub name: String,
    pub span: Option<Span>,
    pub type_: types::Type,
    pub default: Option<Expr>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub nullable: bool,
    pub validations: Vec<Validation>,
}

#[derive(Clone, Debug)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
}

#[derive(Clone, Debug)]
pub struct OutputDecl {
    pub name: String,
    pub span: Option<Span>,
    pub value: Expr,
    pub sensitive: bool,
    pub description: Option<String>,
    pub depends_on: Vec<Expr>,
}

#[derive(Clone, Debug)]
pub struct LocalDecl {
    pub name: String,
    pub expr: Expr,
}

#[derive(Clone, Debug)]
pub struct ModuleCall {
    pub name: String,
    pub span: Option<Span>,
    pub source: String,
    pub dir: PathBuf,
    pub args: IndexMap<String, AttrDecl>,
    pub depends_on: Vec<Expr>,
    pub count: Option<Expr>,
    pub for_each: Option<Expr>,
    /// For a call with `count` or `for_each`, once the engine has expanded
    /// the configuration: each instance's key with its `each.value` (null
    /// for `count`). The modules of the instances are then keyed by
    /// [`crate::addr::module_step`].
    pub instances: Option<std::collections::BTreeMap<crate::addr::InstanceKey, crate::value::Value>>,
}

impl ModuleCall {
    /// The module paths of this call's instances, called from `parent`.
    pub fn instance_paths(&self, parent: &ModulePath) -> Vec<ModulePath> {
        let one = |step: String| {
            let mut p = parent.clone();
            p.push(step);
            p
        };
        match &self.instances {
            Some(keys) => keys.keys().map(|k| one(crate::addr::module_step(&self.name, k))).collect(),
            None => vec![one(self.name.clone())],
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProviderDecl {
    /// `aws` or `aws.west`.
    pub key: String,
    pub name: String,
    pub span: Option<Span>,
    pub body: BodyDecl,
}

#[derive(Clone, Debug)]
pub struct BackendDecl {
    pub kind: String,
    pub span: Option<Span>,
    pub body: BodyDecl,
}

/// An `inventory "NAME"` block, evaluated after apply (see [`crate::inventory`]).
#[derive(Clone, Debug)]
pub struct InventoryDecl {
    pub name: String,
    pub span: Option<Span>,
    pub body: BodyDecl,
}

/// An `import { to = ADDR, id = "..." }` block (root module only): bring
/// an existing object under berth at `to`, optionally once per `for_each`
/// element. Evaluated when planning (`engine::import`).
#[derive(Clone, Debug)]
pub struct ImportDecl {
    pub span: Option<Span>,
    /// The address, as written: `aws_instance.web[each.key]`.
    pub to: Expr,
    pub id: Expr,
    pub for_each: Option<Expr>,
    /// `provider = aws.west`, when not the type's default.
    pub provider: Option<String>,
}

/// A `notify "webhook"` or `notify "slack"` block (root module only): where
/// `berth watch` sends its events. `url` and `secret` stay expressions (a
/// `var.*` holding a secret, typically): the watcher evaluates them against
/// the variables; a constant `url` is checked when loading.
#[derive(Clone)]
pub struct NotifyDecl {
    /// `webhook` or `slack`, the block's label.
    pub kind: String,
    pub span: Option<Span>,
    pub url: Expr,
    /// The HMAC-SHA256 key of `X-Berth-Signature`.
    pub secret: Option<Expr>,
    /// Event names (`heal_succeeded`, ...); empty for every event.
    pub events: Vec<String>,
    /// The payload: `json` (the versioned event) or `slack` (a text message).
    pub format: NotifyFormat,
}

/// What a notifier sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    Json,
    Slack,
}

// By hand: the URL and the secret are sensitive, and a derived `Debug`
// would print them.
impl std::fmt::Debug for NotifyDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyDecl")
            .field("kind", &self.kind)
            .field("span", &self.span)
            .field("events", &self.events)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// A `hook "on_replace"` block (root module only): a command run after an
/// apply replaced a host (see `engine::apply::hook`).
#[derive(Clone, Debug)]
pub struct HookDecl {
    /// `on_replace`, the block's label.
    pub event: String,
    pub span: Option<Span>,
    pub command: HookCommand,
    /// How long the command may run before it is killed (default 10 minutes).
    pub timeout: std::time::Duration,
    /// The SSH `known_hosts` file whose entries for the replaced host's
    /// names and addresses are removed, as written (`~/` allowed).
    pub known_hosts: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookCommand {
    /// `command = ["kamal", "setup", ...]`: run as is, without a shell.
    Argv(Vec<String>),
    /// `command = "kamal setup -h $BERTH_NEW_HOST"`: run by `sh -c`.
    Shell(String),
}

/// One module: the root directory, or a called one.
#[derive(Clone, Debug, Default)]
pub struct Module {
    pub path: ModulePath,
    pub dir: PathBuf,
    pub variables: IndexMap<String, VariableDecl>,
    pub locals: IndexMap<String, LocalDecl>,
    pub resources: IndexMap<ResourceAddr, ResourceDecl>,
    pub outputs: IndexMap<String, OutputDecl>,
    pub calls: IndexMap<String, ModuleCall>,
    pub providers: IndexMap<String, ProviderDecl>,
    pub inventories: IndexMap<String, InventoryDecl>,
    pub backend: Option<BackendDecl>,
    pub imports: Vec<ImportDecl>,
    pub notifiers: Vec<NotifyDecl>,
    pub hooks: Vec<HookDecl>,
    /// The root module's `watch { ... }` block, unevaluated: `berth watch`
    /// reads it (see `crate::watch::config`).
    pub watch: Option<BlockDecl>,
}

impl Module {
    pub fn resource(&self, mode: Mode, type_: &str, name: &str) -> Option<&ResourceDecl> {
        self.resources.get(&ResourceAddr::new(self.path.clone(), mode, type_, name))
    }
}

/// A loaded configuration: every module by path.
#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub modules: IndexMap<ModulePath, Module>,
    pub files: Vec<Arc<SourceFile>>,
    /// sha256 of every file's name and text, for stale-plan checks.
    pub digest: String,
}

impl Config {
    pub fn root(&self) -> &Module {
        &self.modules[&ModulePath::new()]
    }

    pub fn module(&self, path: &ModulePath) -> Option<&Module> {
        self.modules.get(path)
    }

    /// The call that made the module instance `path`, with the instance's key.
    pub fn call_of(&self, path: &ModulePath) -> Option<(&ModuleCall, crate::addr::InstanceKey)> {
        let (last, parent) = path.split_last()?;
        let (name, key) = crate::addr::split_step(last);
        self.modules.get(parent)?.calls.get(name).map(|c| (c, key))
    }

    pub fn resource(&self, addr: &ResourceAddr) -> Option<&ResourceDecl> {
        self.modules.get(&addr.module).and_then(|m| m.resources.get(addr))
    }

    /// Every resource declaration of every module.
    pub fn all_resources(&self) -> impl Iterator<Item = &ResourceDecl> {
        self.modules.values().flat_map(|m| m.resources.values())
    }
}

/// The name a user sees for a file: relative to `base` when possible.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}
