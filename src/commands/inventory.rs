//! `berth inventory`: render inventories from the state, with no API calls.
//!
//! - `berth inventory` rewrites every inventory file the configuration names;
//! - `berth inventory NAME` prints one to stdout (`--out FILE` writes it,
//!   `--format F` renders another format);
//! - `berth inventory --check` exits 1 with a unified diff when a file on
//!   disk differs from what the state says: a CI gate for committed files.

use super::*;
use crate::cli::InventoryArgs;
use crate::config::vars::{self, VarSources};
use crate::engine::inventory::{Built, from_state};
use crate::inventory::{display_path, file_content};

pub async fn run(env: &Env, args: &InventoryArgs) -> CmdResult {
    let config = env.load_config()?;
    crate::graph::Graph::build(&config)?;
    let backend = env.backend(Some(&config))?;
    let state = load_state(backend.as_ref()).await?.unwrap_or_default();
    let sources = VarSources::from_env(args.vars.vars.clone(), args.vars.var_files.clone()).with_auto_files(&env.dir);
    let vars = vars::resolve(config.root(), &sources)?;
    if config.root().inventories.is_empty() {
        return Err(err("the configuration has no `inventory` blocks"));
    }
    if let Some(name) = &args.name
        && !config.root().inventories.contains_key(name)
    {
        let mut d = Diagnostic::error(format!("no inventory `{name}`"));
        if let Some(s) = crate::diag::suggest(name, config.root().inventories.keys().map(String::as_str)) {
            d = d.hint(format!("did you mean `{s}`?"));
        }
        return Err(d.into());
    }
    let mut diags = Diagnostics::new();
    let mut differs = 0;
    for built in from_state(&config, vars, &env.workspace, &state) {
        let mut inv = match built {
            Ok(Built::Ready(inv)) => inv,
            Ok(Built::Pending { name, .. }) => {
                diags.push(Diagnostic::error(format!("inventory `{name}` refers to values the state does not have yet: run `berth apply`")));
                continue;
            }
            Err(d) => {
                diags.extend(d);
                continue;
            }
        };
        if args.name.as_ref().is_some_and(|n| n != &inv.name) {
            continue;
        }
        if let Some(f) = &args.format {
            inv.format = f.parse().map_err(|e: crate::inventory::InventoryError| err(e.to_string()))?;
        }
        if let Some(out) = &args.out {
            inv.path = out.clone();
        }
        let content = file_content(&inv).map_err(|e| err(e.to_string()))?;
        let path = display_path(&inv.path);
        if args.check {
            let on_disk = std::fs::read_to_string(&inv.path).unwrap_or_default();
            if on_disk != content {
                differs += 1;
                print(&crate::inventory::unified_diff(&path, &on_disk, &content));
            }
            continue;
        }
        if args.name.is_some() && args.out.is_none() {
            print(&content);
            continue;
        }
        match crate::inventory::write_if_changed(&inv.path, &content) {
            Ok(true) => eprintln!("inventory `{}`: wrote `{path}`", inv.name),
            Ok(false) => eprintln!("inventory `{}`: `{path}` is up to date", inv.name),
            Err(e) => diags.push(Diagnostic::error(format!("cannot write `{path}`: {e}"))),
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    if args.check && differs > 0 {
        eprintln!("{differs} inventory file(s) differ from the state: run `berth inventory` to rewrite them");
        return Ok(1);
    }
    Ok(0)
}
