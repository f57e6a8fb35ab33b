//! `berth state list | show | rm | mv` and `berth force-unlock`.

use super::*;
use crate::addr::InstanceAddr;
use crate::cli::StateCommand;
use crate::state::ResourceState;
use crate::value::Value;

/// JSON with sensitive values replaced by null.
pub fn redacted(v: &Value) -> serde_json::Value {
    match v {
        Value::Sensitive(_) => serde_json::Value::Null,
        Value::List(l) | Value::Set(l) => serde_json::Value::Array(l.iter().map(redacted).collect()),
        Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), redacted(v))).collect()),
        other => other.to_json(),
    }
}

/// An object as `berth state show` prints it.
pub fn describe(r: &ResourceState) -> String {
    let mut s = format!("# {}", r.addr);
    if let Some(d) = &r.deposed {
        s.push_str(&format!(" (deposed {d})"));
    }
    if r.tainted {
        s.push_str(" (tainted)");
    }
    s.push_str(&format!(
        "\nresource \"{}\" \"{}\" {{\n",
        r.addr.resource.type_, r.addr.resource.name
    ));
    let v = r.value();
    if let Some(m) = v.as_map() {
        let w = m.iter().filter(|(_, x)| !x.is_null()).map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, x) in m {
            if !x.is_null() {
                s.push_str(&format!("    {k:<w$} = {x}\n"));
            }
        }
    }
    s.push_str("}\n");
    s
}

fn parse(a: &str) -> Result<InstanceAddr, Diagnostics> {
    a.parse().map_err(|e: crate::addr::AddrParseError| err(e.to_string()))
}

pub async fn run(env: &Env, cmd: &StateCommand) -> CmdResult {
    let config = env.load_config().ok();
    let backend = env.backend(config.as_ref())?;
    match cmd {
        StateCommand::List => {
            let state = load_state(backend.as_ref()).await?.unwrap_or_default();
            let mut s = String::new();
            for r in state.resources.values() {
                match &r.deposed {
                    Some(d) => s.push_str(&format!("{} (deposed {d})\n", r.addr)),
                    None => s.push_str(&format!("{}\n", r.addr)),
                }
            }
            print(&s);
            Ok(0)
        }
        StateCommand::Show { address } => {
            let addr = parse(address)?;
            let state = load_state(backend.as_ref()).await?.unwrap_or_default();
            let Some(r) = state.get(&addr) else {
                let names: Vec<String> = state.resources.keys().map(|(a, _)| a.to_string()).collect();
                let mut d = Diagnostic::error(format!("no object `{addr}` in the state"));
                if let Some(h) = crate::diag::suggest(address, names.iter().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{h}`?"));
                }
                return Err(d.into());
            };
            print(&describe(r));
            Ok(0)
        }
        StateCommand::Rm { addresses, lock: l } => {
            let addrs: Vec<InstanceAddr> = addresses.iter().map(|a| parse(a)).collect::<Result<_, _>>()?;
            let held = lock(&env.interrupt, backend.as_ref(), "state rm", l.lock_timeout).await?;
            let result = async {
                let mut state = load_state(backend.as_ref()).await?.ok_or_else(|| err("there is no state"))?;
                let keys: Vec<_> = state.resources.keys().filter(|(a, _)| addrs.iter().any(|t| a.matches(t))).cloned().collect();
                if keys.is_empty() {
                    return Err(err(format!("no object matches {}", addresses.join(", "))));
                }
                for k in &keys {
                    state.remove(k);
                    eprintln!("Removed `{}` from the state (the object itself was not destroyed).", k.0);
                }
                state.serial += 1;
                backend.write(&state).await?;
                Ok(0)
            }
            .await;
            held.release().await?;
            result
        }
        StateCommand::Mv { from, to, lock: l } => {
            let (from, to) = (parse(from)?, parse(to)?);
            let held = lock(&env.interrupt, backend.as_ref(), "state mv", l.lock_timeout).await?;
            let result = async {
                let mut state = load_state(backend.as_ref()).await?.ok_or_else(|| err("there is no state"))?;
                if state.get(&to).is_some() {
                    return Err(err(format!("`{to}` already exists in the state")));
                }
                let Some(mut r) = state.remove(&(from.clone(), None)) else {
                    return Err(err(format!("no object `{from}` in the state")));
                };
                r.addr = to.clone();
                state.put(r);
                state.serial += 1;
                backend.write(&state).await?;
                eprintln!("Moved `{from}` to `{to}`.");
                Ok(0)
            }
            .await;
            held.release().await?;
            result
        }
    }
}

pub async fn force_unlock(env: &Env, id: &str) -> CmdResult {
    let config = env.load_config().ok();
    let backend = env.backend(config.as_ref())?;
    backend.force_unlock(id).await?;
    eprintln!("The state lock `{id}` was removed.");
    Ok(0)
}
