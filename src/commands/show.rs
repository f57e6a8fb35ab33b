//! `berth show`: a saved plan, or the state.

use super::*;
use crate::cli::{PlanFormat, ShowArgs};
use crate::plan::Plan;

pub async fn run(env: &Env, args: &ShowArgs) -> CmdResult {
    if let Some(file) = &args.planfile {
        let text = fs_err::read_to_string(file).map_err(|e| err(format!("cannot read the plan: {e}")))?;
        let plan: Plan = serde_json::from_str(&text).map_err(|e| err(format!("`{}` is not a berth plan file: {e}", file.display())))?;
        print(&super::plan::show_plan(&plan, PlanFormat::chosen(args.format, args.json)));
        return Ok(0);
    }
    let config = env.load_config().ok();
    let backend = env.backend(config.as_ref())?;
    if args.format == Some(PlanFormat::Markdown) {
        return Err(err("`--format markdown` shows a saved plan: `berth show --format markdown PLANFILE`"));
    }
    let Some(state) = load_state(backend.as_ref()).await? else {
        print("The state is empty.\n");
        return Ok(0);
    };
    if args.json || args.format == Some(PlanFormat::Json) {
        let resources: Vec<serde_json::Value> = state
            .resources
            .values()
            .map(|r| {
                serde_json::json!({
                    "address": r.addr.to_string(),
                    "deposed": r.deposed,
                    "provider": r.provider,
                    "values": super::state::redacted(&r.value()),
                    "sensitive_values": r.sensitive,
                    "tainted": r.tainted,
                    "depends_on": r.dependencies.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let j = serde_json::json!({"lineage": state.lineage, "serial": state.serial, "resources": resources});
        print(&format!("{}\n", serde_json::to_string_pretty(&j).unwrap_or_default()));
        return Ok(0);
    }
    let mut out = String::new();
    for r in state.resources.values() {
        out.push_str(&super::state::describe(r));
        out.push('\n');
    }
    print(&out);
    Ok(0)
}
