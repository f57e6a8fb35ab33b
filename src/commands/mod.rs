//! One small module per subcommand. Each resolves its settings, calls the
//! library, and prints through the views here: data to stdout, progress and
//! diagnostics to stderr.

pub mod apply;
pub mod fmt;
pub mod graph;
pub mod import;
pub mod inventory;
pub mod init;
pub mod migrate_terraform;
pub mod output;
pub mod plan;
pub mod progress;
pub mod show;
pub mod state;
pub mod state_transfer;
pub mod validate;
pub mod watch;
pub mod workspace;

use crate::config::{self, Config};
use crate::diag::{Diagnostic, Diagnostics};
use crate::interrupt::Interrupt;
use crate::state::s3::{S3Backend, S3Settings};
use crate::state::{Backend, LockInfo, State, local::LocalBackend};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// What every command needs to know about its surroundings.
pub struct Env {
    pub dir: PathBuf,
    pub color: bool,
    pub workspace: String,
    /// `--backend-config KEY=VALUE` values, overriding the `backend` block.
    pub backend_config: Vec<String>,
    /// Signals, as the commands see them: the soft-stop token, and the
    /// locks to free on a hard stop.
    pub interrupt: Interrupt,
}

pub type CmdResult = Result<i32, Diagnostics>;

/// A state backend's error, as a command's.
pub fn state_err(e: crate::state::StateError) -> Diagnostics {
    e.into()
}

pub fn err(msg: impl Into<String>) -> Diagnostics {
    Diagnostic::error(msg).into()
}

impl Env {
    pub fn from_env(no_color: bool) -> Env {
        let color = !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let dir = PathBuf::from(".");
        let workspace = std::env::var("BERTH_WORKSPACE")
            .ok()
            .filter(|w| !w.is_empty())
            .or_else(|| workspace::selected(&dir))
            .unwrap_or_else(|| "default".into());
        Env { dir, color, workspace, backend_config: Vec::new(), interrupt: Interrupt::default() }
    }

    pub fn load_config(&self) -> Result<Config, Diagnostics> {
        config::load(&self.dir)
    }

    /// The state backend the configuration names (local `state/` by default).
    pub fn backend(&self, config: Option<&Config>) -> Result<Box<dyn Backend>, Diagnostics> {
        Ok(self.backend_kind(config)?.open(&self.workspace))
    }

    /// Where the state lives: the `backend` block with `--backend-config`
    /// values laid over it.
    pub fn backend_kind(&self, config: Option<&Config>) -> Result<BackendKind, Diagnostics> {
        let mut overrides = Vec::new();
        for kv in &self.backend_config {
            match kv.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => overrides.push((k.trim().to_string(), v.to_string())),
                // As in Terraform, a value without `=` names a file of
                // `name = value` lines (or a JSON object).
                None if !kv.trim().is_empty() => overrides.extend(backend_config_file(&self.dir, kv)?),
                _ => return Err(err(format!("`--backend-config {kv}`: expected KEY=VALUE or a file"))),
            }
        }
        let decl = config.and_then(|c| c.root().backend.as_ref());
        let string_attr = |a: &crate::config::AttrDecl, name: &str| match config::eval::constant(&a.expr)? {
            crate::value::Value::String(s) => Ok(s),
            // `max_retries = 3` reads as `--backend-config max_retries=3` does.
            crate::value::Value::Number(n) => Ok(crate::value::format_number(n)),
            crate::value::Value::Bool(b) => Ok(b.to_string()),
            _ => Err(Diagnostics::from(Diagnostic::error(format!("`{name}` must be a string")).at(a.expr.span()))),
        };
        match decl {
            None if overrides.is_empty() => Ok(BackendKind::Local(self.dir.join("state"))),
            None => Err(err("`--backend-config` needs a `backend` block in the configuration, e.g. `berth { backend \"s3\" {} }`")),
            Some(b) if b.kind == "local" => {
                let mut path = self.dir.join("state");
                for (name, a) in &b.body.attrs {
                    match name.as_str() {
                        "path" => path = self.dir.join(string_attr(a, name)?),
                        other => {
                            return Err(Diagnostic::error(format!("unsupported argument `{other}` in the local backend"))
                                .at(a.key_span.clone())
                                .into());
                        }
                    }
                }
                for (k, v) in overrides {
                    match k.as_str() {
                        "path" => path = self.dir.join(v),
                        other => return Err(err(format!("`--backend-config`: the local backend has no setting `{other}` (it takes: path)"))),
                    }
                }
                Ok(BackendKind::Local(path))
            }
            Some(b) if b.kind == "s3" => {
                let mut pairs = Vec::new();
                // The role's settings `assume_role.NAME`, from `assume_role
                // = { ... }` (Terraform's S3 backend) or `assume_role { ... }`.
                let role_arg = |name: &str, span: Option<crate::diag::Span>| {
                    let key = format!("assume_role.{name}");
                    if S3Settings::KEYS.contains(&key.as_str()) {
                        return Ok(key);
                    }
                    let known = S3Settings::KEYS.iter().filter_map(|k| k.strip_prefix("assume_role."));
                    let mut d =
                        Diagnostic::error(format!("unsupported argument `{name}` in `assume_role` of the s3 backend"))
                            .at(span);
                    if let Some(h) = crate::diag::suggest(name, known) {
                        d = d.hint(format!("did you mean `{h}`?"));
                    }
                    Err(Diagnostics::from(d))
                };
                for (name, a) in &b.body.attrs {
                    if name == "assume_role" {
                        let at = || a.expr.span();
                        let crate::value::Value::Map(m) = config::eval::constant(&a.expr)? else {
                            return Err(Diagnostic::error("`assume_role` must be an object").at(at()).into());
                        };
                        for (k, v) in m {
                            let text = match v {
                                crate::value::Value::String(s) => s,
                                crate::value::Value::Number(n) => crate::value::format_number(n),
                                _ => {
                                    let msg = format!("`assume_role.{k}` must be a string");
                                    return Err(Diagnostic::error(msg).at(at()).into());
                                }
                            };
                            pairs.push((role_arg(&k, at())?, text));
                        }
                        continue;
                    }
                    if !S3Settings::KEYS.contains(&name.as_str()) {
                        let mut d = Diagnostic::error(format!(
                            "unsupported argument `{name}` in the s3 backend (it takes: {})",
                            S3Settings::KEYS.join(", ")
                        ))
                        .at(a.key_span.clone());
                        let top = S3Settings::KEYS.iter().copied().filter(|k| !k.contains('.')).chain(["assume_role"]);
                        if let Some(h) = crate::diag::suggest(name, top) {
                            d = d.hint(format!("did you mean `{h}`?"));
                        }
                        return Err(d.into());
                    }
                    pairs.push((name.clone(), string_attr(a, name)?));
                }
                // `assume_role { ... }` is the only block.
                for blk in &b.body.blocks {
                    if blk.kind != "assume_role" {
                        let mut d = Diagnostic::error(format!("unsupported block `{}` in the s3 backend", blk.kind))
                            .at(blk.span.clone());
                        if crate::diag::suggest(&blk.kind, ["assume_role"]).is_some() {
                            d = d.hint("did you mean `assume_role`?");
                        }
                        return Err(d.into());
                    }
                    if let Some(inner) = blk.body.blocks.first() {
                        return Err(Diagnostic::error(format!("unsupported block `{}` in `assume_role`", inner.kind))
                            .at(inner.span.clone())
                            .into());
                    }
                    for (name, a) in &blk.body.attrs {
                        let key = role_arg(name, a.key_span.clone())?;
                        pairs.push((key, string_attr(a, name)?));
                    }
                }
                let given: Vec<String> = overrides.iter().map(|(k, _)| k.clone()).collect();
                pairs.extend(overrides);
                match S3Settings::from_pairs(pairs) {
                    Ok(s) => {
                        for note in s.notes() {
                            eprintln!("Note: {note}.");
                        }
                        Ok(BackendKind::S3(s))
                    }
                    Err(e @ crate::state::s3::SettingsError::Unknown(_)) => Err(err(format!("`--backend-config`: {e}"))),
                    Err(e) => {
                        let d = Diagnostic::error(e.to_string()).at(b.span.clone());
                        Err(if given.is_empty() { d } else { d.hint(format!("`--backend-config` gave: {}", given.join(", "))) }.into())
                    }
                }
            }
            Some(b) => Err(Diagnostic::error(format!("unknown backend `{}` (berth has: local, s3)", b.kind)).at(b.span.clone()).into()),
        }
    }
}

/// The settings of a `--backend-config FILE`, as `name` / `value` text
/// (an `assume_role = { ... }` object gives `assume_role.NAME` pairs).
fn backend_config_file(dir: &std::path::Path, file: &str) -> Result<Vec<(String, String)>, Diagnostics> {
    use crate::value::Value;
    let path = dir.join(file);
    if !path.is_file() {
        return Err(err(format!("`--backend-config {file}`: no such file (a setting is written KEY=VALUE)")));
    }
    let text = |name: &str, v: Value| match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(crate::value::format_number(n)),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(err(format!("`{file}`: `{name}` must be a string, not {}", other.type_name()))),
    };
    let mut out = Vec::new();
    for (name, (value, _origin)) in config::vars::read_var_file(&path)? {
        match value {
            Value::Map(m) if name == "assume_role" => {
                for (k, v) in m {
                    let key = format!("assume_role.{k}");
                    out.push((key.clone(), text(&key, v)?));
                }
            }
            v => out.push((name.clone(), text(&name, v)?)),
        }
    }
    Ok(out)
}

/// Where the states live, before a workspace's is opened.
#[derive(Clone, Debug)]
pub enum BackendKind {
    /// The folder holding one `<workspace>.json` per workspace.
    Local(PathBuf),
    S3(S3Settings),
}

impl BackendKind {
    pub fn open(&self, workspace: &str) -> Box<dyn Backend> {
        match self {
            BackendKind::Local(dir) => Box::new(LocalBackend::new(dir.clone(), workspace)),
            BackendKind::S3(settings) => Box::new(S3Backend::new(settings.clone(), workspace)),
        }
    }
}

/// A held state lock, released on drop of the run (explicitly, so errors surface).
pub struct Locked<'a> {
    pub backend: &'a dyn Backend,
    pub info: LockInfo,
}

/// Takes the state lock. A hard stop (see [`crate::interrupt`]) frees it
/// from the moment it is asked for.
pub async fn lock<'a>(interrupt: &Interrupt, backend: &'a dyn Backend, op: &str, timeout: Duration) -> Result<Locked<'a>, Diagnostics> {
    interrupt.watch_locks(backend);
    let info = backend.lock(op, timeout).await?;
    Ok(Locked { backend, info })
}

impl Locked<'_> {
    pub async fn release(self) -> Result<(), Diagnostics> {
        Ok(self.backend.unlock(&self.info).await?)
    }
}

/// Loads the state; `None` when there is none yet.
pub async fn load_state(backend: &dyn Backend) -> Result<Option<State>, Diagnostics> {
    Ok(backend.load().await?)
}

/// Prints data to stdout (never progress).
pub fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

/// Writes a file atomically with mode 0600 (plans may hold sensitive values).
pub fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("berth"), std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

