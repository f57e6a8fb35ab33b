//! `berth init`: checks that the configured backend is usable, and with
//! `--migrate-state` moves every workspace's local state into it.
//!
//! A migration holds both locks of a workspace while it copies, reads the
//! copy back to check it, and only then renames the local state to
//! `<workspace>.json.migrated`, so that nothing goes on using it by mistake.
//! A workspace the backend already holds is skipped when identical and
//! refused otherwise (unless `--force`; the replaced version stays in the
//! bucket's history).

use super::*;
use crate::cli::InitArgs;
use crate::state::s3::{self, S3Backend, S3Settings};
use std::path::Path;

pub async fn run(env: &Env, args: &InitArgs) -> CmdResult {
    let config = env.load_config()?;
    let kind = env.backend_kind(Some(&config))?;
    drop(config);
    match (&kind, args.migrate_state) {
        (BackendKind::Local(dir), false) => {
            let names = kind.open("default").workspaces().await.map_err(state_err)?;
            eprintln!("Backend: local, states in `{}`; workspaces: {}.", dir.display(), names.join(", "));
            Ok(0)
        }
        (BackendKind::Local(_), true) => Err(err(
            "the configured backend is local: there is nowhere to migrate to; add `berth { backend \"s3\" { ... } }` first",
        )),
        (BackendKind::S3(s), false) => check_s3(env, s).await,
        (BackendKind::S3(s), true) => {
            let from = args.from.clone().unwrap_or_else(|| env.dir.join("state"));
            migrate(&env.interrupt, s, &from, args.force, args.lock.lock_timeout).await
        }
    }
}

async fn check_s3(env: &Env, s: &S3Settings) -> CmdResult {
    let client = s3::client(s).await.map_err(state_err)?;
    let backend = S3Backend::with_client(s.clone(), &env.workspace, client);
    let versioning = backend.bucket_versioning().await.map_err(state_err)?;
    let names = backend.workspaces().await.map_err(state_err)?;
    eprintln!("Backend: `{}` (workspace `{}`).", backend.describe(), env.workspace);
    match versioning {
        Some(true) => eprintln!("The bucket keeps every state version (versioning is enabled)."),
        Some(false) => eprintln!(
            "The bucket has no versioning: berth keeps each state version as a copy under `{}`.",
            backend.versions_prefix()
        ),
        None => eprintln!(
            "The bucket's versioning could not be read: berth keeps a copy of each state version under `{}` \
             whenever S3 does not keep it.",
            backend.versions_prefix()
        ),
    }
    eprintln!("Workspaces: {}.", names.join(", "));
    let local = env.dir.join("state");
    let local_names = LocalBackend::new(local.clone(), "default").workspaces().await.map_err(state_err)?;
    let with_state: Vec<&String> =
        local_names.iter().filter(|n| local.join(format!("{n}.json")).exists()).collect();
    if !with_state.is_empty() {
        eprintln!(
            "Local states in `{}` ({}) are not used by this backend: move them with `berth init --migrate-state`.",
            local.display(),
            with_state.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(0)
}

async fn migrate(interrupt: &Interrupt, s: &S3Settings, from: &Path, force: bool, timeout: std::time::Duration) -> CmdResult {
    if !from.is_dir() {
        return Err(err(format!("no local states to migrate: `{}` is not a directory", from.display())));
    }
    let client = s3::client(s).await.map_err(state_err)?;
    let names = LocalBackend::new(from.to_path_buf(), "default").workspaces().await.map_err(state_err)?;
    let mut moved = 0;
    for ws in names {
        let local = LocalBackend::new(from.to_path_buf(), &ws);
        if !local.state_path().exists() && !local.journal_path().exists() {
            continue;
        }
        let remote = S3Backend::with_client(s.clone(), &ws, client.clone());
        let local_lock = lock(interrupt, &local, "init --migrate-state", timeout).await?;
        let result = async {
            let Some(state) = load_state(&local).await? else { return Ok(None) };
            let remote_lock = lock(interrupt, &remote, "init --migrate-state", timeout).await?;
            let copied = copy(&state, &remote, force).await;
            remote_lock.release().await?;
            copied.map(|written| Some((state, written)))
        }
        .await;
        local_lock.release().await?;
        let Some((state, written)) = result? else { continue };
        retire(&local)?;
        let verb = if written { "Moved" } else { "Already in the bucket:" };
        eprintln!(
            "{verb} workspace `{ws}` ({} object(s), serial {}) to `{}`; the local copy is now `{}.migrated`.",
            state.resources.len(),
            state.serial,
            remote.describe(),
            local.state_path().display()
        );
        moved += 1;
    }
    if moved == 0 {
        eprintln!("No local state in `{}`: nothing to migrate.", from.display());
    }
    Ok(0)
}

/// Writes `state` to `remote` and reads it back; `false` when the remote
/// already held exactly this state.
async fn copy(state: &State, remote: &S3Backend, force: bool) -> Result<bool, Diagnostics> {
    let at = remote.describe();
    let written = match load_state(remote).await? {
        Some(existing) if existing == *state => false,
        Some(existing) if !force => {
            return Err(Diagnostic::error(format!(
                "`{at}` already holds a state (lineage `{}`, serial {}), unlike the local one (lineage `{}`, serial {})",
                existing.lineage, existing.serial, state.lineage, state.serial
            ))
            .hint("pass `--force` to replace it (the replaced version stays in the bucket's history)")
            .into());
        }
        _ => {
            remote.write(state).await.map_err(state_err)?;
            true
        }
    };
    match load_state(remote).await? {
        Some(back) if back == *state => Ok(written),
        _ => Err(err(format!("the state read back from `{at}` differs from the local one; the local state was kept"))),
    }
}

/// Moves the local state out of the way (and drops its journal, which the
/// migrated state holds) so the local backend no longer sees it.
fn retire(local: &LocalBackend) -> Result<(), Diagnostics> {
    let path = local.state_path();
    if path.exists() {
        let to = path.with_extension("json.migrated");
        fs_err::rename(&path, &to).map_err(|e| err(format!("the state was migrated, but the local copy was not renamed: {e}")))?;
    }
    match std::fs::remove_file(local.journal_path()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(format!("the state was migrated, but its local journal was not removed: {e}"))),
    }
}
