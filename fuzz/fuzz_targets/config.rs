//! Fuzz target: configuration loading and evaluation.
//!
//! The input is one `main.hcl`. It is loaded with [`berth::config::load_str`],
//! turned into a dependency graph, and then everything `berth validate`
//! evaluates is evaluated the same way — every local, output, `count` /
//! `for_each` and resource body, against a lenient world where whatever is
//! not known yet is unknown — and every diagnostic is rendered, since
//! rendering slices the source by span. Errors are expected; a panic, a
//! stack overflow, a hang or a runaway allocation is a bug.

#![no_main]

use berth::config::refs::Target;
use berth::config::eval::Scope;
use berth::diag::Diagnostics;
use berth::providers::Provider;
use berth::value::Value;
use berth::engine::scope::World;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// At most this many instances of a resource are evaluated: enough to reach
/// `count.index` and `each` paths without making a large `count` slow.
const MAX_INSTANCES: usize = 3;

fn render(d: &Diagnostics) {
    // Both renderings index into the source text by span.
    let _ = d.render(false);
    let _ = d.to_string();
}

fn isolate() {
    // Module sources and `file()` resolve against the working directory:
    // make it an empty one so the input is the only configuration there is.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("berth-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::env::set_current_dir(&dir);
    });
}

fuzz_target!(|data: &[u8]| {
    isolate();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match berth::config::load_str("main.hcl", text) {
        Ok(c) => c,
        Err(d) => return render(&d),
    };
    if let Err(d) = berth::graph::Graph::build(&config) {
        render(&d);
    }
    let vars: BTreeMap<String, Value> =
        match berth::config::vars::resolve(config.root(), &berth::config::vars::VarSources::default()) {
            Ok(v) => v,
            Err(d) => {
                render(&d);
                config.root().variables.keys().map(|k| (k.clone(), Value::Unknown)).collect()
            }
        };
    let mut world = World::new(&config, vars, "default");
    world.lenient = true;
    let builtin = berth::providers::builtin::Builtin;
    for module in config.modules.values() {
        let path = &module.path;
        for name in module.locals.keys() {
            if let Err(d) = world.lookup(path, &Target::Local(name.clone()), None) {
                render(&d.into());
            }
        }
        for name in module.outputs.keys() {
            if let Err(d) = world.output(path, name) {
                render(&d.into());
            }
        }
        for r in module.resources.values() {
            let keys = match world.expand(r) {
                Ok(k) => k,
                Err(d) => {
                    render(&d.into());
                    continue;
                }
            };
            let schema = builtin.schema(r.addr.mode, &r.addr.type_);
            for (key, each) in keys.into_iter().take(MAX_INSTANCES) {
                let ctx = world.instance_ctx(path, &key, each);
                let what = format!("`{}`", r.addr.instance(key.clone()));
                match world.eval_body(&r.body, schema, &ctx, &what, r.span.as_ref()) {
                    Ok(v) => {
                        let _ = v.to_string();
                        let _ = v.to_json();
                        if schema.is_some() {
                            let _ = builtin.validate(r.addr.mode, &r.addr.type_, &v);
                        }
                    }
                    Err(d) => render(&d),
                }
            }
        }
    }
});
