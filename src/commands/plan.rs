//! `berth plan`, and the planning every command that changes things shares.

use super::*;
use crate::addr::InstanceAddr;
use crate::cli::{PlanArgs, PlanFlags};
use crate::config::vars::VarSources;
use crate::engine::{PlanOptions, Planned};
use crate::plan::render;

fn parse_addrs(list: &[String], flag: &str) -> Result<Vec<InstanceAddr>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut out = Vec::new();
    for s in list {
        match s.parse::<InstanceAddr>() {
            Ok(a) => out.push(a),
            Err(e) => diags.push(Diagnostic::error(format!("`--{flag}`: {e}"))),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// The planning options and variable sources the flags give.
pub fn options(env: &Env, flags: &PlanFlags, destroy: bool) -> Result<(PlanOptions, VarSources), Diagnostics> {
    let targets = parse_addrs(&flags.targets, "target")?;
    let replace = parse_addrs(&flags.replace, "replace")?;
    let sources = VarSources::from_env(flags.vars.vars.clone(), flags.vars.var_files.clone());
    let opts = PlanOptions { destroy, refresh: flags.refresh, targets, replace, workspace: env.workspace.clone(), ..PlanOptions::default() };
    Ok((opts, sources))
}

/// Loads the configuration (again: the caller holds the state lock now)
/// and makes a plan of it.
pub async fn make_plan(env: &Env, flags: &PlanFlags, destroy: bool, backend: &dyn Backend) -> Result<(Config, Planned), Diagnostics> {
    let config = env.load_config()?;
    let (opts, sources) = options(env, flags, destroy)?;
    let planned = crate::engine::plan(&config, &sources, backend, &opts, &StderrProgress::new()).await?;
    Ok((config, planned))
}

pub async fn run(env: &Env, args: &PlanArgs) -> CmdResult {
    let config_for_backend = env.load_config()?;
    let backend = env.backend(Some(&config_for_backend))?;
    drop(config_for_backend);
    let lock = lock(&env.interrupt, backend.as_ref(), "plan", args.flags.lock.lock_timeout).await?;
    let result = make_plan(env, &args.flags, args.destroy, backend.as_ref()).await;
    lock.release().await?;
    let (_, planned) = result?;
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&render::json(&planned.plan)).unwrap_or_default()));
    } else {
        print(&render::human(&planned.plan));
    }
    if let Some(out) = &args.out {
        write_private(out, &planned.plan.to_file()).map_err(|e| err(format!("cannot write plan `{}`: {e}", out.display())))?;
        if !args.json {
            print(&format!("\nSaved the plan to `{}`. Apply exactly this plan with: berth apply {}\n", out.display(), out.display()));
        }
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() { 2 } else { 0 })
}
