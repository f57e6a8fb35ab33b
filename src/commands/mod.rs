//! One small module per subcommand. Each resolves its settings, calls the
//! library, and prints through the views here: data to stdout, progress and
//! diagnostics to stderr.

pub mod apply;
pub mod fmt;
pub mod graph;
pub mod inventory;
pub mod output;
pub mod plan;
pub mod show;
pub mod state;
pub mod validate;

use crate::config::{self, Config};
use crate::diag::{Diagnostic, Diagnostics};
use crate::state::{Backend, LockInfo, State, local::LocalBackend};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What every command needs to know about its surroundings.
pub struct Env {
    pub dir: PathBuf,
    pub color: bool,
    pub workspace: String,
}

pub type CmdResult = Result<i32, Diagnostics>;

pub fn err(msg: impl Into<String>) -> Diagnostics {
    Diagnostic::error(msg).into()
}

impl Env {
    pub fn from_env(no_color: bool) -> Env {
        let color = !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let workspace = std::env::var("BERTH_WORKSPACE").ok().filter(|w| !w.is_empty()).unwrap_or_else(|| "default".into());
        Env { dir: PathBuf::from("."), color, workspace }
    }

    pub fn load_config(&self) -> Result<Config, Diagnostics> {
        config::load(&self.dir)
    }

    /// The state backend the configuration names (local `state/` by default).
    pub fn backend(&self, config: Option<&Config>) -> Result<Box<dyn Backend>, Diagnostics> {
        let decl = config.and_then(|c| c.root().backend.as_ref());
        match decl {
            None => Ok(Box::new(LocalBackend::new(self.dir.join("state"), &self.workspace))),
            Some(b) if b.kind == "local" => {
                let mut path = self.dir.join("state");
                for (name, a) in &b.body.attrs {
                    match name.as_str() {
                        "path" => match config::eval::constant(&a.expr)? {
                            crate::value::Value::String(s) => path = self.dir.join(s),
                            _ => return Err(Diagnostic::error("`path` must be a string").at(a.expr.span()).into()),
                        },
                        other => {
                            return Err(Diagnostic::error(format!("unsupported argument `{other}` in the local backend"))
                                .at(a.key_span.clone())
                                .into());
                        }
                    }
                }
                Ok(Box::new(LocalBackend::new(path, &self.workspace)))
            }
            Some(b) => Err(Diagnostic::error(format!("unknown backend `{}` (berth has: local)", b.kind)).at(b.span.clone()).into()),
        }
    }
}

/// A held state lock, released on drop of the run (explicitly, so errors surface).
pub struct Locked<'a> {
    pub backend: &'a dyn Backend,
    pub info: LockInfo,
}

pub async fn lock<'a>(backend: &'a dyn Backend, op: &str, timeout: Duration) -> Result<Locked<'a>, Diagnostics> {
    let info = backend.lock(op, timeout).await.map_err(|e| err(e.to_string()))?;
    Ok(Locked { backend, info })
}

impl Locked<'_> {
    pub async fn release(self) -> Result<(), Diagnostics> {
        self.backend.unlock(&self.info).await.map_err(|e| err(e.to_string()))
    }
}

/// Loads the state; `None` when there is none yet.
pub async fn load_state(backend: &dyn Backend) -> Result<Option<State>, Diagnostics> {
    backend.load().await.map_err(|e| err(e.to_string()))
}

/// Apply progress on stderr, one line per event.
pub struct StderrProgress {
    out: Mutex<std::io::BufWriter<std::io::Stderr>>,
    start: Instant,
}

impl StderrProgress {
    pub fn new() -> Self {
        StderrProgress { out: Mutex::new(std::io::BufWriter::new(std::io::stderr())), start: Instant::now() }
    }
    fn line(&self, s: &str) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

fn gerund(verb: &str) -> &'static str {
    match verb {
        "create" => "Creating...",
        "update" => "Modifying...",
        "destroy" => "Destroying...",
        "read" => "Reading...",
        _ => "Working...",
    }
}

fn done(verb: &str) -> &'static str {
    match verb {
        "create" => "Creation complete",
        "update" => "Modifications complete",
        "destroy" => "Destruction complete",
        "read" => "Read complete",
        _ => "Complete",
    }
}

impl crate::apply::Progress for StderrProgress {
    fn started(&self, addr: &str, verb: &str) {
        self.line(&format!("{addr}: {}", gerund(verb)));
    }
    fn finished(&self, addr: &str, verb: &str, detail: &str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let detail = if detail.is_empty() { String::new() } else { format!(" [{detail}]") };
        self.line(&format!("{addr}: {} after {secs:.1}s{detail}", done(verb)));
    }
    fn failed(&self, addr: &str, verb: &str, error: &str) {
        self.line(&format!("{addr}: {verb} failed: {error}"));
    }
    fn message(&self, msg: &str) {
        let _ = self.start;
        self.line(msg);
    }
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

