//! `berth apply` and `berth destroy`.

use super::plan::make_plan;
use super::*;
use crate::cli::{ApplyArgs, DestroyArgs, PlanFlags};
use crate::engine::{ApplyOptions, ApplyReport, StepRef};
use crate::plan::render;
use std::io::IsTerminal;

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
    let lock = lock(&env.interrupt, backend.as_ref(), op, flags.lock.lock_timeout).await?;
    let result = async {
        let (config, planned) = make_plan(env, flags, destroy, backend.as_ref()).await?;
        print(&render::human(&planned.plan));
        if !planned.plan.has_changes() {
            if !planned.settle {
                return Ok(0);
            }
            // Nothing to change, but the stored state is not what this
            // plan saw (an interrupted run's journal, adopted objects,
            // objects found gone or changed): record it.
            eprintln!("Recording the refreshed state.");
        } else if !auto_approve && !confirm(destroy)? {
            eprintln!("Apply cancelled.");
            return Ok(1);
        }
        let destroy = planned.plan.destroy;
        // The walk answers a first Ctrl-C itself: operations in flight finish.
        let graceful = env.interrupt.graceful();
        let applied = crate::engine::apply(
            &config,
            planned,
            backend.as_ref(),
            &ApplyOptions { parallelism: flags.parallelism, ..ApplyOptions::default() },
            &progress::Display::stderr(),
            &graceful.token(),
        )
        .await;
        drop(graceful);
        summarize(destroy, &applied?.0)
    }
    .await;
    lock.release().await?;
    result
}

async fn apply_saved(env: &Env, file: &std::path::Path, flags: &PlanFlags) -> CmdResult {
    let plan = crate::engine::saved_plan::open(file)?;
    let config = env.load_config()?;
    let backend = env.backend(Some(&config))?;
    let lock = lock(&env.interrupt, backend.as_ref(), "apply", flags.lock.lock_timeout).await?;
    let destroy = plan.destroy;
    let graceful = env.interrupt.graceful();
    let applied = crate::engine::apply_saved(
        &config,
        plan,
        backend.as_ref(),
        &ApplyOptions { parallelism: flags.parallelism, ..ApplyOptions::default() },
        &progress::Display::stderr(),
        &graceful.token(),
    )
    .await;
    drop(graceful);
    lock.release().await?;
    summarize(destroy, &applied?.0)
}

/// The addresses a run's skips name, for summaries.
fn addr_list(items: &[StepRef]) -> String {
    items.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
}

/// Shows how the apply went; an incomplete one is an error.
fn summarize(destroy: bool, report: &ApplyReport) -> CmdResult {
    let verb = if destroy { "Destroy" } else { "Apply" };
    for (step, w) in &report.warnings {
        eprintln!("Warning: `{step}`: {w}");
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
    for f in &report.failures {
        msg.push_str(&format!("\n  failed: `{}`: {}", f.subject, f.error));
    }
    if !report.skipped.is_empty() {
        msg.push_str(&format!("\n  skipped because something they depend on failed: {}", addr_list(&report.skipped)));
    }
    Err(err(msg))
}
