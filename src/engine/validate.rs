//! Validation: everything that can be checked without touching state or the
//! cloud — syntax, references, cycles, types, provider arguments — for
//! `berth validate`. Every variable is unknown here, so only the shape of
//! the configuration is checked; values are checked when planning.

use crate::addr::Mode;
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::scope::World;
use crate::graph::Graph;
use crate::providers::Registry;
use crate::value::Value;

/// Every problem `berth validate` reports, all at once: references and
/// cycles first, then `settings` (what the caller found wrong in settings it
/// resolves itself, such as the backend block), then variable defaults,
/// provider blocks and resource arguments. The same problem found twice is
/// reported once. Warnings come back with the errors.
pub async fn validate(config: &Config, settings: Diagnostics) -> Diagnostics {
    // Reference and cycle errors and argument errors are reported together.
    let mut diags = match Graph::build(config) {
        Ok(_) => Diagnostics::new(),
        Err(d) => d,
    };
    diags.extend(settings);
    diags.extend(check_settings(config));
    diags.extend(check_notifiers(config));
    diags.extend(check_resources(config).await);
    dedup(&mut diags);
    diags
}

/// Checks what needs no values at all: the types of root variables'
/// defaults, the names in provider blocks, and that every provider alias in
/// use is configured.
fn check_settings(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::new();
    for decl in config.root().variables.values() {
        let Some(default) = &decl.default else { continue };
        match crate::config::eval::constant(default) {
            Ok(v) => {
                if let Err(d) = crate::config::vars::check_at(decl, v, "the default", default.span()) {
                    diags.extend(d);
                }
            }
            Err(d) => diags.push(d),
        }
    }
    // Provider blocks: every name known (values need variables: plan checks them).
    for decl in config.root().providers.values() {
        diags.extend(crate::engine::providers::check_block(decl));
    }
    for r in config.all_resources() {
        if let Some((name, alias)) = r.provider.split_once('.')
            && !config.root().providers.contains_key(&r.provider)
        {
            diags.push(
                Diagnostic::error(format!(
                    "provider `{}` is used but not configured: add `provider \"{name}\" {{ alias = \"{alias}\" }}`",
                    r.provider
                ))
                .at(r.provider_span.clone().or(r.span.clone())),
            );
        }
    }
    diags
}

/// `notify` blocks: `url` and `secret` may refer to declared root
/// variables and nothing else (the watcher evaluates them with only the
/// variables at hand).
fn check_notifiers(config: &Config) -> Diagnostics {
    use crate::config::refs::{Target, references};
    let mut diags = Diagnostics::new();
    let root = config.root();
    for n in &root.notifiers {
        for e in std::iter::once(&n.url).chain(n.secret.as_ref()) {
            for r in references(e) {
                match &r.target {
                    Target::Var(name) if root.variables.contains_key(name) => {}
                    Target::Var(name) => {
                        diags.push(Diagnostic::error(format!("no variable `{name}` is declared")).at(r.span.clone()))
                    }
                    _ => diags.push(
                        Diagnostic::error(format!(
                            "`{}` cannot be used in a `notify` block: only variables (`var.NAME`) can",
                            r.describe()
                        ))
                        .at(r.span.clone()),
                    ),
                }
            }
        }
    }
    diags
}

/// The same problem found twice (a local used by two resources) is shown once.
fn dedup(diags: &mut Diagnostics) {
    let mut seen = std::collections::HashSet::new();
    diags.0.retain(|d| seen.insert((d.span.as_ref().map(|s| s.location()), d.message.clone())));
}

/// Checks resource arguments against provider schemas, `count` and
/// `for_each` where they are known, and root outputs, with unknown values
/// for everything that needs variables or other resources.
async fn check_resources(config: &Config) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let mut registry = Registry::default();
    for r in config.all_resources() {
        let name = r.provider.split('.').next().unwrap_or(&r.provider).to_string();
        if registry.get(&name).is_none() {
            match crate::providers::families::for_validation(&name).await {
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
    // A sensitive variable stays marked, so outputs that show it are caught.
    let vars = config.root().variables.iter().map(|(k, d)| (k.clone(), Value::Unknown.mark_if(d.sensitive))).collect();
    let mut world = World::new(config, vars, "default");
    world.lenient = true;
    for r in config.all_resources() {
        check_expansion(&world, r, &mut diags);
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
    for name in config.root().outputs.keys() {
        if let Err(d) = world.output(&Vec::new(), name) {
            diags.push(d);
        }
    }
    diags
}

/// `count` and `for_each` are checked like the planner does once their
/// value is known (a literal, or built from literals).
fn check_expansion(world: &World, r: &crate::config::ResourceDecl, diags: &mut Diagnostics) {
    let (e, what) = match (&r.count, &r.for_each) {
        (Some(c), _) => (c, "count"),
        (None, Some(f)) => (f, "for_each"),
        (None, None) => return,
    };
    let ctx = world.instance_ctx(&r.addr.module, &crate::addr::InstanceKey::None, None);
    match crate::config::eval::eval(e, &ctx) {
        Ok(v) if v.is_sensitive() => {
            diags.push(Diagnostic::error(format!("`{what}` cannot be a sensitive value")).at(e.span()));
        }
        Ok(v) if v.is_known() => {
            if let Err(d) = world.expand(r) {
                diags.push(d);
            }
        }
        Ok(_) => {}
        Err(d) => diags.push(d),
    }
}
