//! `berth apply` and `berth destroy`.

use super::plan::{Planned, make_plan};
use super::*;
use crate::engine::apply::{ApplyOptions, addr_list};
use crate::cli::{ApplyArgs, DestroyArgs, PlanFlags};
use crate::plan::{Plan, render};
use std::io::IsTerminal;
use std::sync::Arc;

pub async fn run(env: &Env, args: &ApplyArgs) -> CmdResult {
    match &args.planfile {
        Some(file) => apply_saved(env, file, &args.flags).await,
        None => plan_and_apply(env, &args.flags, args.destroy, args.auto_approve).await,
    }
}

pub async fn destroy(env: &Env, args: &DestroyArgs) -> CmdResult {
    plan_and_apply(env, &args.flags, true, args.auto_approve).await
}

fn confirm(destroy: bool) -> Result<bool, Diagnostics> {
    if !std::io::stdin().is_terminal() {
        return Err(err(
            "no terminal to ask for confirmation: run `berth apply --auto-approve`, or save a plan with `berth plan --out FILE` and apply that file",
        ));
    }
    let what = if destroy { "destroy all these objects" } else { "perform these actions" };
    eprint!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| err(e.to_string()))?;
    Ok(line.trim() == "yes")
}

async fn plan_and_apply(env: &Env, flags: &PlanFlags, destroy: bool, auto_approve: bool) -> CmdResult {
    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    drop(config);
    let op = if destroy { "destroy" } else { "apply" };
    let lock = lock(backend.as_ref(), op, flags.lock.lock_timeout).await?;
    let result = async {
        let planned = make_plan(env, flags, destroy, backend.as_ref()).await?;
        print(&render::human(&planned.plan));
        if !planned.plan.has_changes() {
            if planned.settle {
                // Nothing to change, but the stored state is not what this
                // plan saw (an interrupted run's journal, adopted objects,
                // objects found gone or changed): record it.
                eprintln!("Recording the refreshed state.");
                return execute(planned, backend.as_ref(), flags.parallelism).await;
            }
            return Ok(0);
        }
        if !auto_approve && !confirm(destroy)? {
            eprintln!("Apply cancelled.");
            return Ok(1);
        }
        execute(planned, backend.as_ref(), flags.parallelism).await
    }
    .await;
    lock.release().await?;
    result
}

async fn apply_saved(env: &Env, file: &std::path::Path, flags: &PlanFlags) -> CmdResult {
    let text = fs_err::read_to_string(file).map_err(|e| err(format!("cannot read the plan: {e}")))?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| err(format!("`{}` is not a berth plan file: {e}", file.display())))?;
    if plan.errored {
        return Err(err("this plan has errors and cannot be applied: fix them and plan again"));
    }
    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    let lock = lock(backend.as_ref(), "apply", flags.lock.lock_timeout).await?;
    let result = async {
        if config.digest != plan.config_digest {
            return Err(err("the saved plan is stale: the configuration changed since it was made; run `berth plan` again"));
        }
        let stored = load_state(backend.as_ref()).await?;
        let stale = match (&stored, plan.prior_serial) {
            (None, None) => false,
            (Some(s), Some(serial)) => s.lineage != plan.lineage || s.serial != serial,
            _ => true,
        };
        if stale {
            let now = stored.as_ref().map(|s| format!("serial {} of lineage {}", s.serial, s.lineage)).unwrap_or_else(|| "no state".into());
            let then = plan.prior_serial.map(|s| format!("serial {s} of lineage {}", plan.lineage)).unwrap_or_else(|| "no state".into());
            return Err(err(format!(
                "the saved plan is stale: it was made against {then}, and the state is now {now}; run `berth plan` again"
            )));
        }
        let state_exists = stored.is_some();
        let mut state = stored.unwrap_or_default();
        let providers = crate::providers::setup(&config, &plan.variables, &crate::engine::plan::needed_providers(&config, &state)).await?;
        if !state.pending.is_empty() {
            // The plan adopted what an interrupted run created: so must the
            // apply, or it would neither see nor record those objects.
            let mut diags = Diagnostics::new();
            crate::engine::plan::adopt_pending(&mut state, &providers, &mut diags).await;
            if diags.has_errors() {
                return Err(diags);
            }
        }
        execute(Planned { plan, config, providers, state, state_exists, settle: false }, backend.as_ref(), flags.parallelism).await
    }
    .await;
    lock.release().await?;
    result
}

async fn execute(planned: Planned, backend: &dyn Backend, parallelism: usize) -> CmdResult {
    let Planned { plan, config, providers, state, state_exists, .. } = planned;
    let progress = Arc::new(StderrProgress::new());
    // The walk answers the first Ctrl-C itself (see `state::s3::interrupt`).
    let (report, _state) = crate::state::s3::interrupt::graceful(crate::engine::apply::apply(
        &plan,
        &config,
        state,
        state_exists,
        &providers,
        backend,
        &ApplyOptions { parallelism },
        progress,
    ))
    .await
    .map_err(Diagnostics::from)?;
    let verb = if plan.destroy { "Destroy" } else { "Apply" };
    for (addr, w) in &report.warnings {
        eprintln!("Warning: `{addr}`: {w}");
    }
    if report.ok() {
        eprintln!();
        print(&format!(
            "{verb} complete! Resources: {} added, {} changed, {} destroyed.\n",
            report.added, report.changed, report.destroyed
        ));
        return Ok(0);
    }
    let mut msg = format!(
        "{verb} incomplete. Resources: {} added, {} changed, {} destroyed.",
        report.added, report.changed, report.destroyed
    );
    if report.interrupted {
        msg.push_str("\nInterrupted: operations in flight finished and were recorded; nothing else was started.");
    }
    for (addr, e) in &report.failures {
        msg.push_str(&format!("\n  failed: `{addr}`: {e}"));
    }
    if !report.skipped.is_empty() {
        msg.push_str(&format!("\n  skipped because something they depend on failed: {}", addr_list(&report.skipped)));
    }
    Err(err(msg))
}
