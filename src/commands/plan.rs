//! `berth plan`, and the planning every command that changes things shares.

use super::*;
use crate::cli::{PlanArgs, PlanFlags, PlanFormat};
use crate::plan::Plan;
use crate::config::vars::VarSources;
use crate::engine::{PlanOptions, Planned};
use crate::plan::render;

fn parse_addrs<A: std::str::FromStr<Err = crate::addr::AddrParseError>>(list: &[String], flag: &str) -> Result<Vec<A>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut out = Vec::new();
    for s in list {
        match s.parse::<A>() {
            Ok(a) => out.push(a),
            Err(e) => diags.push(Diagnostic::error(format!("`--{flag}`: {e}"))),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// The planning options and variable sources the flags give.
pub fn options(env: &Env, flags: &PlanFlags, destroy: bool) -> Result<(PlanOptions, VarSources), Diagnostics> {
    let targets = parse_addrs(&flags.targets, "target")?;
    // `aws_instance.web[*]`: every instance of the resource, as the bare
    // resource address already says.
    let replace: Vec<String> = flags.replace.iter().map(|s| s.strip_suffix("[*]").unwrap_or(s).to_string()).collect();
    let replace = parse_addrs(&replace, "replace")?;
    let sources = VarSources::from_env(flags.vars.vars.clone(), flags.vars.var_files.clone()).with_auto_files(&env.dir);
    let rolling = flags.rolling.map(|n| crate::config::Rolling { max_unavailable: n as usize });
    let opts = PlanOptions { destroy, refresh: flags.refresh, targets, replace, rolling, workspace: env.workspace.clone(), ..PlanOptions::default() };
    Ok((opts, sources))
}

/// Loads the configuration (again: the caller holds the state lock now)
/// and makes a plan of it.
pub async fn make_plan(env: &Env, flags: &PlanFlags, destroy: bool, backend: &dyn Backend) -> Result<(Config, Planned), Diagnostics> {
    let (opts, sources) = options(env, flags, destroy)?;
    plan_with(env, &opts, &sources, backend).await
}

/// Loads the configuration and plans it with `opts`.
async fn plan_with(env: &Env, opts: &PlanOptions, sources: &VarSources, backend: &dyn Backend) -> Result<(Config, Planned), Diagnostics> {
    let config = env.load_config()?;
    let planned = crate::engine::plan(&config, sources, backend, opts, &progress::Display::stderr()).await?;
    Ok((config, planned))
}

/// `--generate-config-out`: plans with blocks generated for imports that
/// have none, writes them to `file`, and plans again when the file is part
/// of the configuration (so the plan includes those imports).
async fn plan_generating(env: &Env, args: &PlanArgs, file: &std::path::Path, backend: &dyn Backend) -> Result<(Config, Planned), Diagnostics> {
    if file.exists() {
        return Err(err(format!("`{}` exists: `--generate-config-out` writes only a new file", file.display())));
    }
    let (mut opts, sources) = options(env, &args.flags, args.destroy)?;
    opts.generate_config = true;
    let (config, planned) = plan_with(env, &opts, &sources, backend).await?;
    if planned.plan.generated_config.is_empty() {
        return Ok((config, planned));
    }
    fs_err::write(file, &planned.plan.generated_config).map_err(|e| err(format!("cannot write the generated configuration: {e}")))?;
    eprintln!("Wrote a resource block for each imported object that had none to `{}`: review it.", file.display());
    let in_config = file.extension().is_some_and(|e| e == "hcl" || e == "tf")
        && std::fs::canonicalize(file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")))
            .ok()
            .zip(std::fs::canonicalize(&env.dir).ok())
            .is_some_and(|(a, b)| a == b);
    if !in_config {
        eprintln!("It is not part of the configuration: move it into the configuration's directory as `*.hcl` or `*.tf`, then plan again.");
        return Ok((config, planned));
    }
    opts.generate_config = false;
    plan_with(env, &opts, &sources, backend).await
}

pub async fn run(env: &Env, args: &PlanArgs) -> CmdResult {
    let config_for_backend = env.load_config()?;
    let backend = env.backend(Some(&config_for_backend))?;
    drop(config_for_backend);
    let lock = lock(&env.interrupt, backend.as_ref(), "plan", args.flags.lock.lock_timeout).await?;
    let result = match &args.generate_config_out {
        Some(file) => plan_generating(env, args, file, backend.as_ref()).await,
        None => make_plan(env, &args.flags, args.destroy, backend.as_ref()).await,
    };
    lock.release().await?;
    let (_, planned) = result?;
    let format = PlanFormat::chosen(args.format, args.json);
    print(&show_plan(&planned.plan, format));
    // On GitHub Actions the run's page shows the plan too.
    crate::ci::append_step_summary(&crate::plan::markdown::markdown(&planned.plan));
    if let Some(out) = &args.out {
        write_private(out, &planned.plan.to_file()).map_err(|e| err(format!("cannot write plan `{}`: {e}", out.display())))?;
        if format == PlanFormat::Human {
            print(&format!("\nSaved the plan to `{}`. Apply exactly this plan with: berth apply {}\n", out.display(), out.display()));
        }
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() { 2 } else { 0 })
}

/// A plan in the chosen format, as `plan` and `show` print it.
pub fn show_plan(plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Human => render::human(plan),
        PlanFormat::Json => format!("{}\n", serde_json::to_string_pretty(&render::json(plan)).unwrap_or_default()),
        PlanFormat::Markdown => crate::plan::markdown::markdown(plan),
    }
}
