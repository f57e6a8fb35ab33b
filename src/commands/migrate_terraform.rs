//! `berth state migrate-terraform PATH|-`: a Terraform state becomes this
//! workspace's berth state, so a fleet Terraform manages moves to berth
//! without recreating anything.
//!
//! The reading is [`crate::state::terraform`]'s; this adapter asks the
//! providers which types berth has (their schemas, without calling
//! anything), refuses to overwrite a berth state that already manages
//! objects unless `--force`, writes the new state under the lock, and lists
//! what was and was not migrated.

use super::*;
use crate::addr::Mode;
use crate::cli::MigrateTerraformArgs;
use crate::providers::Provider;
use crate::providers::families::{KNOWN_PROVIDERS, for_validation};
use crate::state::terraform::TerraformState;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::sync::Arc;

pub async fn run(env: &Env, args: &MigrateTerraformArgs) -> CmdResult {
    let (source, text) = if args.path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| err(format!("cannot read the Terraform state from stdin: {e}")))?;
        ("<stdin>".to_string(), text)
    } else {
        let text =
            fs_err::read_to_string(&args.path).map_err(|e| err(format!("cannot read the Terraform state: {e}")))?;
        (args.path.display().to_string(), text)
    };
    let tf = TerraformState::read(&source, &text)?;
    let mut families: BTreeMap<&str, Arc<dyn Provider>> = BTreeMap::new();
    for f in KNOWN_PROVIDERS {
        let p = for_validation(f).await.map_err(|e| err(format!("provider `{f}`: {e}")))?;
        families.insert(f, p);
    }
    let attributes = |family: &str, type_: &str| -> Option<Vec<String>> {
        let schema = families.get(family)?.schema(Mode::Managed, type_)?;
        Some(schema.attributes.iter().map(|a| a.name.to_string()).collect())
    };
    let migration = tf.migrate(&attributes);

    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    drop(config);
    let held = lock(&env.interrupt, backend.as_ref(), "state migrate-terraform", args.lock.lock_timeout).await?;
    let result = async {
        let at = backend.describe();
        let mut state = migration.state;
        if let Some(current) = load_state(backend.as_ref()).await? {
            let live = current.resources.values().filter(|r| r.addr.resource.mode == Mode::Managed).count();
            if live > 0 && !args.force {
                return Err(Diagnostic::error(format!(
                    "refusing to migrate into `{at}`: that berth state already manages {live} object(s), and the migrated state would replace it"
                ))
                .hint("migrate into a new workspace (`berth workspace new NAME`), or pass `--force` to replace it (the replaced version stays in the backend's history)")
                .into());
            }
            // Saved plans made against the replaced state go stale.
            state.serial = current.serial + 1;
        } else {
            state.serial = 1;
        }
        backend.write(&state).await?;
        Ok::<_, Diagnostics>(at)
    }
    .await;
    held.release().await?;
    let at = result?;

    let mut out = String::new();
    let version = if tf.terraform_version().is_empty() {
        String::new()
    } else {
        format!(", Terraform {}", tf.terraform_version())
    };
    let _ = writeln!(
        out,
        "Migrated {} object(s) from `{source}` (serial {}{version}) into `{at}`:",
        migration.migrated.len(),
        tf.serial()
    );
    let width = migration.migrated.iter().map(|(a, _)| a.to_string().len()).max().unwrap_or(0);
    for (addr, id) in &migration.migrated {
        let _ = writeln!(out, "  {:<width$}  {id}", addr.to_string());
    }
    if !migration.skipped.is_empty() {
        let _ = writeln!(
            out,
            "\nNot migrated ({}): berth does not manage them; they are left as they are:",
            migration.skipped.len()
        );
        for s in &migration.skipped {
            let _ = writeln!(out, "  {}: {}", s.address, s.reason);
        }
    }
    if !migration.data_sources.is_empty() {
        let _ = writeln!(
            out,
            "\nData sources are not migrated; the next plan reads them again: {}",
            migration.data_sources.join(", ")
        );
    }
    if !migration.hints.is_empty() {
        let _ = writeln!(out, "\nBefore planning, in the configuration:");
        for h in &migration.hints {
            let _ = writeln!(out, "  - {h}");
        }
    }
    let _ = writeln!(
        out,
        "\nNext: `berth plan` on the same configuration (its `.tf` files are read as they are). It should show berth's ownership tags being \
         added to each migrated object and nothing else; the first `berth apply` writes them."
    );
    print(&out);
    Ok(0)
}
