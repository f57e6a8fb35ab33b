//! `berth import ADDRESS ID`: one existing object into the state, at an
//! address the configuration has a resource block for.
//!
//! The engine does the work: a plan targeted at ADDRESS with one import
//! request reads the object by id, as an `import` block would. This writes
//! that object (marked imported) into the stored state and nothing else;
//! the next plan shows berth's ownership marks being added and any
//! difference from the configuration, and the next apply carries them out.

use super::*;
use crate::addr::InstanceAddr;
use crate::cli::ImportArgs;
use crate::config::vars::VarSources;
use crate::engine::PlanOptions;
use crate::engine::import::Request;
use crate::state::ResourceState;

pub async fn run(env: &Env, args: &ImportArgs) -> CmdResult {
    let addr: InstanceAddr = args.address.parse().map_err(|e| err(format!("{e}")))?;
    let config = env.load_config()?;
    if config.resource(&addr.resource).is_none() {
        return Err(Diagnostic::error(format!("no resource block `{}` in the configuration to import into", addr.resource))
            .hint("write the block first (an `import` block with `berth plan --generate-config-out=FILE` can write it for you)")
            .into());
    }
    let backend = env.backend(Some(&config))?;
    let held = lock(&env.interrupt, backend.as_ref(), "import", args.lock.lock_timeout).await?;
    let result = async {
        let stored = load_state(backend.as_ref()).await?;
        if let Some(have) = stored.as_ref().and_then(|s| s.get(&addr)) {
            return Err(Diagnostic::error(format!(
                "`{addr}` is already in the state (`{}`)",
                have.attributes.get_str("id").unwrap_or("an object")
            ))
            .hint("`berth state rm` it first to import another object there")
            .into());
        }
        let sources = VarSources::from_env(args.vars.vars.clone(), args.vars.var_files.clone()).with_auto_files(&env.dir);
        let opts = PlanOptions {
            refresh: true,
            targets: vec![crate::addr::TargetAddr::Instance(addr.clone())],
            workspace: env.workspace.clone(),
            imports: vec![Request { to: addr.clone(), id: args.id.clone(), provider: None, span: None }],
            ..PlanOptions::default()
        };
        let planned =
            crate::engine::plan(&config, &sources, backend.as_ref(), &opts, &progress::Display::stderr()).await?;
        let change = planned.plan.changes.iter().find(|c| c.addr == addr && c.import.is_some()).ok_or_else(|| {
            err(format!("`{addr}` is not an instance of its resource block (check its `count` or `for_each` key)"))
        })?;
        let Some(before) = &change.before else { return Err(err("the import read nothing")) };
        let mut state = stored.unwrap_or_else(|| State { lineage: planned.plan.lineage.clone(), ..State::new() });
        state.put(ResourceState {
            addr: addr.clone(),
            deposed: None,
            provider: change.provider.clone(),
            attributes: before.clone().into_unmarked().0,
            sensitive: before.sensitive_paths(),
            dependencies: planned.plan.dependencies.get(&addr.resource).cloned().unwrap_or_default(),
            tainted: false,
            create_before_destroy: change.create_before_destroy,
            generation: change.generation,
            imported: true,
            drain: None,
        });
        state.serial += 1;
        backend.write(&state).await?;
        Ok::<_, Diagnostics>((change.action, change.notes.clone()))
    }
    .await;
    held.release().await?;
    let (action, notes) = result?;
    let mut out = format!("Imported `{addr}` (`{}`) into the state.\n", args.id);
    if action != crate::plan::Action::NoOp {
        out.push_str(&format!(
            "The next `berth plan` shows it {}, as it differs from the configuration or takes berth's ownership marks:\n",
            if action.is_replace() { "replaced" } else { "updated" }
        ));
        for n in notes {
            out.push_str(&format!("  - {n}\n"));
        }
    }
    print(&out);
    Ok(0)
}
