//! Module calls with `count` or `for_each`: one module per instance.
//!
//! Before a plan or an apply, the engine evaluates the keys of every such
//! call and copies the called module (with the modules it calls) once per
//! key, under the path step `svc["a"]` or `svc[0]`. Everything downstream
//! (the graph, the planner, the apply walk, state addresses) then sees
//! ordinary modules. The keys must be known when planning, as for a
//! resource's: they are read from variables, locals and constants.

use super::scope::World;
use crate::addr::{ModulePath, module_step};
use crate::config::{Config, Module};
use crate::diag::Diagnostics;
use crate::value::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `config` with every call that has `count` or `for_each` expanded into
/// its instances; borrowed unchanged when there is none.
pub fn expand<'c>(config: &'c Config, vars: &BTreeMap<String, Value>, workspace: &str) -> Result<Cow<'c, Config>, Diagnostics> {
    if !keyed(config) {
        return Ok(Cow::Borrowed(config));
    }
    let mut out = config.clone();
    // Level by level: a nested call's keys may read its module's variables,
    // which the level above sets.
    while keyed(&out) {
        let mut found = Vec::new();
        {
            // Resources are not read yet: lenient, every one is unknown
            // (not an empty list), so keys that read one are an error
            // rather than no instances. The graph has reported bad
            // references already.
            let mut world = World::new(&out, vars.clone(), workspace);
            world.lenient = true;
            let mut diags = Diagnostics::new();
            for m in out.modules.values() {
                for call in m.calls.values() {
                    if call.instances.is_some() || (call.count.is_none() && call.for_each.is_none()) {
                        continue;
                    }
                    let mut what = m.path.clone();
                    what.push(call.name.clone());
                    let shown = Shown(&what);
                    match world.expand_meta(&m.path, call.count.as_ref(), call.for_each.as_ref(), &shown) {
                        Ok(keys) => found.push((m.path.clone(), call.name.clone(), keys)),
                        Err(d) => diags.push(d),
                    }
                }
            }
            if diags.has_errors() {
                return Err(diags);
            }
        }
        for (parent, name, keys) in found {
            let mut call_path = parent.clone();
            call_path.push(name.clone());
            // The called module and everything under it, not yet expanded.
            let subtree: Vec<Module> = out
                .modules
                .keys()
                .filter(|p| p.starts_with(&call_path))
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(|p| out.modules.shift_remove(&p))
                .collect();
            let mut instances = BTreeMap::new();
            for (key, each) in keys {
                let mut prefix = parent.clone();
                prefix.push(module_step(&name, &key));
                for m in &subtree {
                    let copy = moved(m, &call_path, &prefix);
                    out.modules.insert(copy.path.clone(), copy);
                }
                instances.insert(key, each.unwrap_or(Value::Null));
            }
            if let Some(call) = out.modules.get_mut(&parent).and_then(|m| m.calls.get_mut(&name)) {
                call.instances = Some(instances);
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Whether `config` has a call with `count` or `for_each` not yet expanded.
pub fn keyed(config: &Config) -> bool {
    config.modules.values().any(|m| m.calls.values().any(|c| (c.count.is_some() || c.for_each.is_some()) && c.instances.is_none()))
}

/// A copy of `m` whose path starts with `to` instead of `from`.
fn moved(m: &Module, from: &ModulePath, to: &ModulePath) -> Module {
    let rebase = |p: &ModulePath| -> ModulePath { to.iter().chain(p[from.len()..].iter()).cloned().collect() };
    let path = rebase(&m.path);
    // Every field but the resources is copied as is; the resources once,
    // re-addressed (cloning `m` whole would copy them twice).
    let resources = m
        .resources
        .iter()
        .map(|(a, d)| {
            let mut a = a.clone();
            a.module = path.clone();
            let mut d = d.clone();
            d.addr.module = path.clone();
            (a, d)
        })
        .collect();
    let Module { path: _, resources: _, dir, variables, locals, outputs, calls, providers, inventories, backend, imports, notifiers, hooks, watch } = m;
    Module {
        path,
        resources,
        dir: dir.clone(),
        variables: variables.clone(),
        locals: locals.clone(),
        outputs: outputs.clone(),
        calls: calls.clone(),
        providers: providers.clone(),
        inventories: inventories.clone(),
        backend: backend.clone(),
        imports: imports.clone(),
        notifiers: notifiers.clone(),
        hooks: hooks.clone(),
        watch: watch.clone(),
    }
}

/// `module.a.module.b` for messages.
struct Shown<'a>(&'a ModulePath);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self.0.iter().map(|s| format!("module.{s}")).collect();
        f.write_str(&steps.join("."))
    }
}
