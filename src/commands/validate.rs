//! `berth validate`: everything that can be checked without touching state
//! or the cloud — syntax, references, cycles, types, provider arguments.

use super::*;
use crate::addr::Mode;
use crate::graph::Graph;
use crate::providers::Registry;
use crate::value::Value;
use crate::world::World;

pub async fn run(env: &Env) -> CmdResult {
    let config = env.load_config()?;
    // Reference and cycle errors and argument errors are reported together.
    let mut diags = match Graph::build(&config) {
        Ok(_) => Diagnostics::new(),
        Err(d) => d,
    };
    diags.extend(check_resources(&config).await);
    if diags.has_errors() {
        return Err(std::mem::take(&mut diags));
    }
    for w in diags.0.iter() {
        eprint!("{}", w.render(env.color));
    }
    print("The configuration is valid.\n");
    Ok(0)
}

/// Checks resource arguments against provider schemas, with unknown values
/// for everything that needs variables or other resources.
async fn check_resources(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let mut registry = Registry::default();
    for r in config.all_resources() {
        let name = r.provider.split('.').next().unwrap_or(&r.provider).to_string();
        if registry.get(&name).is_none() {
            match crate::providers::for_validation(&name).await {
                Ok(p) => {
                    registry.providers.insert(name.clone(), p);
                }
                Err(e) => {
                    diags.push(Diagnostic::error(e.message).at(r.span.clone()));
                    continue;
                }
            }
        }
    }
    // Every variable unknown: only the shape of the configuration is checked.
    let vars = config.root().variables.keys().map(|k| (k.clone(), Value::Unknown)).collect();
    let mut world = World::new(config, vars, "default");
    world.lenient = true;
    for r in config.all_resources() {
        let name = r.provider.split('.').next().unwrap_or(&r.provider);
        let Some(p) = registry.get(name) else { continue };
        let Some(schema) = p.schema(r.addr.mode, &r.addr.type_) else {
            let kind = if r.addr.mode == Mode::Data { "data source" } else { "resource" };
            let mut d = Diagnostic::error(format!("provider `{name}` has no {kind} type `{}`", r.addr.type_)).at(r.span.clone());
            if let Some(s) = crate::diag::suggest(&r.addr.type_, p.type_names(r.addr.mode)) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            continue;
        };
        let key = if r.count.is_some() {
            crate::addr::InstanceKey::Int(0)
        } else if r.for_each.is_some() {
            crate::addr::InstanceKey::Str("key".into())
        } else {
            crate::addr::InstanceKey::None
        };
        let ctx = world.instance_ctx(&r.addr.module, &key, Some(Value::Unknown));
        match world.eval_body(&r.body, Some(schema), &ctx, &format!("`{}`", r.addr), r.span.as_ref()) {
            Ok(v) => {
                for e in p.validate(r.addr.mode, &r.addr.type_, &v) {
                    let span = e.attribute.as_ref().and_then(|a| r.body.attrs.get(a)).and_then(|a| a.expr.span()).or(r.span.clone());
                    diags.push(Diagnostic::error(format!("`{}`: {}", r.addr, e.message)).at(span));
                }
            }
            Err(d) => {
                // Errors about unknown values are not errors here; the rest are.
                diags.extend(d)
            }
        }
    }
    diags
}
