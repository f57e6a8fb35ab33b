//! `berth output`: the root module's outputs from the state.

use super::*;
use crate::cli::OutputArgs;
use crate::value::Value;

pub async fn run(env: &Env, args: &OutputArgs) -> CmdResult {
    let config = env.load_config().ok();
    let backend = env.backend(config.as_ref())?;
    let state = load_state(backend.as_ref()).await?.unwrap_or_default();
    if let Some(name) = &args.name {
        let Some(o) = state.outputs.get(name) else {
            let mut d = Diagnostic::error(format!("no output `{name}` in the state"));
            if let Some(s) = crate::diag::suggest(name, state.outputs.keys().map(String::as_str)) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            return Err(d.into());
        };
        // Asking for one output by name shows it, as Terraform does.
        if args.json {
            print(&format!("{}\n", o.value.to_json()));
        } else if args.raw {
            match &o.value {
                Value::String(s) => print(&format!("{s}\n")),
                Value::Number(_) | Value::Bool(_) => print(&format!("{}\n", o.value)),
                _ => return Err(err("`--raw` prints only strings, numbers and bools; use `--json`")),
            }
        } else {
            print(&format!("{}\n", o.value));
        }
        return Ok(0);
    }
    if args.json {
        let m: serde_json::Map<String, serde_json::Value> = state
            .outputs
            .iter()
            .map(|(k, o)| {
                let v = if o.sensitive { serde_json::Value::Null } else { o.value.to_json() };
                (k.clone(), serde_json::json!({"value": v, "sensitive": o.sensitive}))
            })
            .collect();
        print(&format!("{}\n", serde_json::to_string_pretty(&m).unwrap_or_default()));
        return Ok(0);
    }
    let mut s = String::new();
    for (k, o) in &state.outputs {
        let v = if o.sensitive { "(sensitive value)".to_string() } else { o.value.to_string() };
        s.push_str(&format!("{k} = {v}\n"));
    }
    print(&s);
    Ok(0)
}
