//! `berth plan`, and the planning every command that changes things shares.

use super::*;
use crate::addr::InstanceAddr;
use crate::cli::{PlanArgs, PlanFlags};
use crate::config::vars::{self, VarSources};
use crate::graph::Graph;
use crate::engine::plan::{self as planner, PlanOptions, Planner, Refreshed};
use crate::plan::{Plan, render};
use crate::providers::Registry;
use std::collections::HashSet;

pub struct Planned {
    pub plan: Plan,
    pub config: Config,
    pub providers: Registry,
    /// The state the plan was made from: the stored one, refreshed, with
    /// the objects of creates an interrupted run left unrecorded adopted.
    /// The apply starts from it, so it evaluates the configuration against
    /// the values the plan saw, and records the adoptions and the objects
    /// found gone.
    pub state: State,
    pub state_exists: bool,
    /// `state` is not what is stored (an interrupted run left a journal, or
    /// the refresh found something different): an apply writes it even when
    /// the plan has no changes.
    pub settle: bool,
}

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

/// Loads everything and makes a plan. The caller holds the state lock.
pub async fn make_plan(env: &Env, flags: &PlanFlags, destroy: bool, backend: &dyn Backend) -> Result<Planned, Diagnostics> {
    let config = env.load_config()?;
    let graph = Graph::build(&config)?;
    let targets = parse_addrs(&flags.targets, "target")?;
    let replace = parse_addrs(&flags.replace, "replace")?;
    let sources = VarSources::from_env(flags.vars.vars.clone(), flags.vars.var_files.clone());
    let vars = vars::resolve(config.root(), &sources)?;
    let stored = load_state(backend).await?;
    let state_exists = stored.is_some();
    let state = stored.unwrap_or_default();
    let providers = crate::providers::setup(&config, &vars, &planner::needed_providers(&config, &state)).await?;
    let refreshed = if flags.refresh && !state.resources.is_empty() {
        eprintln!("Refreshing {} object(s)...", state.resources.len());
        planner::refresh(&state, &providers).await?
    } else {
        // Objects an interrupted run created are looked for even without a
        // refresh (and before the first object was recorded): creating
        // them again would make duplicates.
        let mut fresh = state.clone();
        let mut diags = Diagnostics::new();
        let adopted = planner::adopt_pending(&mut fresh, &providers, &mut diags).await;
        if diags.has_errors() {
            return Err(diags);
        }
        Refreshed { state: fresh, gone: HashSet::new(), adopted }
    };
    let settle = refreshed.state != state || backend.found_journal();
    let planner = Planner {
        config: &config,
        graph: &graph,
        providers: &providers,
        vars,
        opts: PlanOptions { destroy, refresh: flags.refresh, targets, replace, workspace: env.workspace.clone() },
    };
    let prior_serial = state_exists.then_some(state.serial);
    let plan = planner.plan(&refreshed, prior_serial).await?;
    Ok(Planned { plan, config, providers, state: refreshed.state, state_exists, settle })
}

pub async fn run(env: &Env, args: &PlanArgs) -> CmdResult {
    let config_for_backend = env.load_config()?;
    let backend = env.backend(Some(&config_for_backend))?;
    drop(config_for_backend);
    let lock = lock(backend.as_ref(), "plan", args.flags.lock.lock_timeout).await?;
    let result = make_plan(env, &args.flags, args.destroy, backend.as_ref()).await;
    lock.release().await?;
    let planned = result?;
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
