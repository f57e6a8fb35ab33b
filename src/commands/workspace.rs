//! `berth workspace list | show | new | select | delete`: one state per
//! workspace, so one configuration serves several environments (Kamal's
//! destinations: staging, production).
//!
//! The selected workspace is `BERTH_WORKSPACE` when set, else the name
//! `berth workspace select` saved in `.berth/workspace`, else `default`. Both
//! backends keep one state per workspace: `state/<name>.json` locally,
//! `<workspace_key_prefix>/<name>/<key>` in S3.

use super::*;
use crate::cli::WorkspaceCommand;
use crate::state::StateError;
use crate::state::s3::S3Backend;
use std::path::Path;

const SELECTED: &str = ".berth/workspace";

/// The workspace `berth workspace select` saved under `dir`, if any.
pub fn selected(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(SELECTED)).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn save_selected(dir: &Path, name: &str) -> Result<(), Diagnostics> {
    let path = dir.join(SELECTED);
    let fail = |e: std::io::Error| err(format!("cannot save the selected workspace in `{}`: {e}", path.display()));
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(fail)?;
    }
    write_private(&path, &format!("{name}\n")).map_err(fail)
}

fn check_name(name: &str) -> Result<(), Diagnostics> {
    crate::state::check_workspace_name(name).map_err(state_err)
}

fn overridden_note(name: &str) {
    if let Ok(env_ws) = std::env::var("BERTH_WORKSPACE")
        && !env_ws.is_empty()
        && env_ws != name
    {
        eprintln!("Note: `BERTH_WORKSPACE={env_ws}` is set and wins over the selection in this environment.");
    }
}

pub async fn run(env: &Env, cmd: &WorkspaceCommand) -> CmdResult {
    let config = env.load_config()?;
    let kind = env.backend_kind(Some(&config))?;
    drop(config);
    let names = async || kind.open("default").workspaces().await.map_err(state_err);
    match cmd {
        WorkspaceCommand::List => {
            let names = names().await?;
            let mut out = String::new();
            for n in &names {
                let mark = if *n == env.workspace { "*" } else { " " };
                out.push_str(&format!("{mark} {n}\n"));
            }
            print(&out);
            if !names.contains(&env.workspace) {
                eprintln!("The selected workspace `{}` has no state yet.", env.workspace);
            }
            Ok(0)
        }
        WorkspaceCommand::Show => {
            print(&format!("{}\n", env.workspace));
            Ok(0)
        }
        WorkspaceCommand::New { name } => {
            check_name(name)?;
            if names().await?.contains(name) {
                return Err(err(format!("workspace `{name}` already exists; select it with `berth workspace select {name}`")));
            }
            // Never read, so the write only creates: a workspace made
            // meanwhile by someone else is not overwritten.
            kind.open(name).write(&State::new()).await.map_err(state_err)?;
            save_selected(&env.dir, name)?;
            eprintln!("Created and selected workspace `{name}`.");
            overridden_note(name);
            Ok(0)
        }
        WorkspaceCommand::Select { name } => {
            check_name(name)?;
            if !names().await?.contains(name) {
                return Err(Diagnostic::error(format!("workspace `{name}` does not exist"))
                    .hint(format!("create it with `berth workspace new {name}`"))
                    .into());
            }
            save_selected(&env.dir, name)?;
            eprintln!("Selected workspace `{name}`.");
            overridden_note(name);
            Ok(0)
        }
        WorkspaceCommand::Delete { name, force, lock: l } => {
            check_name(name)?;
            if name == "default" {
                return Err(err("the `default` workspace cannot be deleted"));
            }
            if *name == env.workspace {
                return Err(err(format!("workspace `{name}` is selected; select another one before deleting it")));
            }
            if !names().await?.contains(name) {
                return Err(err(format!("workspace `{name}` does not exist")));
            }
            let opened = Opened::new(&kind, name);
            let backend = opened.backend();
            let held = lock(&env.interrupt, backend, "workspace delete", l.lock_timeout).await?;
            let result: Result<usize, Diagnostics> = async {
                let state = load_state(backend).await?.unwrap_or_default();
                let count = state.resources.len();
                if count > 0 && !*force {
                    return Err(Diagnostic::error(format!(
                        "workspace `{name}` still manages {count} object(s); deleting its state would forget them"
                    ))
                    .hint(format!("destroy them first (`BERTH_WORKSPACE={name} berth destroy`), or pass `--force` to forget them"))
                    .into());
                }
                opened.delete_state().await.map_err(state_err)?;
                Ok(count)
            }
            .await;
            held.release().await?;
            let count = result?;
            let forgotten = if count > 0 { format!(" ({count} object(s) forgotten, not destroyed)") } else { String::new() };
            eprintln!("Deleted workspace `{name}`{forgotten}.");
            Ok(0)
        }
    }
}

/// A workspace's backend, concrete: deleting a state is no part of the
/// [`Backend`] trait, which every run goes through.
enum Opened {
    Local(Box<LocalBackend>),
    S3(Box<S3Backend>),
}

impl Opened {
    fn new(kind: &BackendKind, workspace: &str) -> Opened {
        match kind {
            BackendKind::Local(dir) => Opened::Local(Box::new(LocalBackend::new(dir.clone(), workspace))),
            BackendKind::S3(s) => Opened::S3(Box::new(S3Backend::new(s.clone(), workspace))),
        }
    }

    fn backend(&self) -> &dyn Backend {
        match self {
            Opened::Local(b) => b.as_ref(),
            Opened::S3(b) => b.as_ref(),
        }
    }

    /// Removes the state and its journal. The local backup (and S3's
    /// version copies) stay, as the last word on what was there.
    async fn delete_state(&self) -> Result<(), StateError> {
        match self {
            Opened::S3(b) => b.delete_state().await,
            Opened::Local(b) => {
                for path in [b.state_path(), b.journal_path()] {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(StateError::Write { path: path.display().to_string(), source }),
                    }
                }
                Ok(())
            }
        }
    }
}
