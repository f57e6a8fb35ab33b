//! `berth state pull` and `berth state push`: whole states in and out of the
//! backend, for backups, hand repairs and moves between backends.
//!
//! A push replaces the stored state, so it is refused when it would undo
//! work: a state of another lineage (a different infrastructure), an older
//! serial, or the same serial with other content. `--force` overrides; the
//! replaced version stays in the backend's history (S3 versions, or the
//! local backup).

use super::*;
use crate::cli::PushArgs;
use std::io::Read;

pub async fn pull(env: &Env) -> CmdResult {
    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    let Some(state) = load_state(backend.as_ref()).await? else {
        return Err(err(format!("there is no state at `{}`", backend.describe())));
    };
    print(&state.to_json());
    Ok(0)
}

fn read_input(file: &std::path::Path) -> Result<(String, String), Diagnostics> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| err(format!("cannot read the state from stdin: {e}")))?;
        return Ok(("<stdin>".into(), text));
    }
    let text = fs_err::read_to_string(file).map_err(|e| err(format!("cannot read the state to push: {e}")))?;
    Ok((file.display().to_string(), text))
}

/// Why pushing `new` over `current` would lose work, if it would.
fn refusal(current: &State, new: &State, at: &str) -> Option<String> {
    if current.lineage != new.lineage {
        return Some(format!(
            "the pushed state has lineage `{}`, the state at `{at}` lineage `{}`: they describe different infrastructure",
            new.lineage, current.lineage
        ));
    }
    if new.serial < current.serial {
        return Some(format!(
            "the pushed state has serial {}, older than serial {} at `{at}`: pushing it would undo later changes",
            new.serial, current.serial
        ));
    }
    if new.serial == current.serial && new != current {
        return Some(format!(
            "the pushed state has serial {} like the state at `{at}`, but other content: one of them was changed without bumping the serial",
            new.serial
        ));
    }
    None
}

pub async fn push(env: &Env, args: &PushArgs) -> CmdResult {
    let (name, text) = read_input(&args.file)?;
    let mut new = State::from_json(&name, &text)?;
    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    drop(config);
    let held = lock(&env.interrupt, backend.as_ref(), "state push", args.lock.lock_timeout).await?;
    let result = async {
        let at = backend.describe();
        if let Some(current) = load_state(backend.as_ref()).await? {
            if current == new {
                eprintln!("The state at `{at}` is already this one; nothing was pushed.");
                return Ok(0);
            }
            if let Some(why) = refusal(&current, &new, &at) {
                if !args.force {
                    return Err(Diagnostic::error(format!("refusing to push `{name}`: {why}"))
                        .hint("pass `--force` to push it anyway (the replaced version stays in the backend's history)")
                        .into());
                }
                // A forced push still moves the serial forward, so plans
                // saved against the replaced state are refused as stale.
                if new.serial <= current.serial {
                    new.serial = current.serial + 1;
                }
                eprintln!("Warning: {why}; pushing anyway (--force).");
            }
        }
        backend.write(&new).await?;
        eprintln!(
            "Pushed `{name}` to `{at}`: {} object(s), lineage `{}`, serial {}.",
            new.resources.len(),
            new.lineage,
            new.serial
        );
        Ok(0)
    }
    .await;
    held.release().await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_refuses_what_would_lose_work() {
        let mut cur = State::new();
        cur.serial = 5;
        let mut same = cur.clone();
        assert_eq!(refusal(&cur, &same, "s"), None);
        same.serial = 6;
        assert_eq!(refusal(&cur, &same, "s"), None, "a newer serial of the same lineage is fine");
        same.serial = 4;
        assert!(refusal(&cur, &same, "s").unwrap().contains("older than serial 5"));
        let other = State { serial: 9, ..State::new() };
        assert!(refusal(&cur, &other, "s").unwrap().contains("lineage"));
        let mut changed = cur.clone();
        changed.outputs.insert(
            "x".into(),
            crate::state::OutputState { value: crate::value::Value::str("y"), sensitive: false },
        );
        assert!(refusal(&cur, &changed, "s").unwrap().contains("other content"));
    }
}
