//! Provider setup: from the configuration's `provider` blocks to the
//! configured provider instances of a run.
//!
//! This is engine work, not the providers': a block is held to its family's
//! [`BlockSchema`] as written, then evaluated against the root variables,
//! and only the evaluated object reaches [`families::configure`]. So the
//! providers never see configuration syntax, and an error points at the
//! argument it is about.

use crate::config::{BodyDecl, Config, ProviderDecl};
use crate::diag::{Diagnostic, Diagnostics, Span, suggest};
use crate::engine::scope::World;
use crate::providers::families::{self, block_schema};
use crate::providers::{BlockSchema, Registry};
use crate::state::State;
use crate::value::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The provider keys a configuration and a state use.
pub fn needed_providers(config: &Config, state: &State) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = config.all_resources().map(|r| r.provider.clone()).collect();
    out.extend(state.resources.values().map(|r| r.provider.clone()));
    out.extend(state.pending.values().map(|p| p.provider.clone()));
    out
}

/// Holds a written provider block to its family's [`BlockSchema`]: every
/// argument or block it does not know is an error at its location, with a
/// "did you mean" when a known name is close.
pub fn check_block(decl: &ProviderDecl) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(schema) = block_schema(&decl.name) {
        check_body(&decl.body, schema, &format!("provider `{}`", decl.key), &mut diags);
    }
    diags
}

fn check_body(body: &BodyDecl, schema: &BlockSchema, what: &str, diags: &mut Diagnostics) {
    for (name, a) in &body.attrs {
        if !schema.knows(name) {
            let mut d = Diagnostic::error(format!("unsupported argument `{name}` in {what}")).at(a.key_span.clone());
            if let Some(h) = suggest(name, schema.names()) {
                d = d.hint(format!("did you mean `{h}`?"));
            }
            diags.push(d);
        }
    }
    for b in &body.blocks {
        match schema.block(&b.kind) {
            Some(inner) => check_body(&b.body, inner, &format!("the `{}` block of {what}", b.kind), diags),
            None => {
                let mut d = Diagnostic::error(format!("unsupported block `{}` in {what}", b.kind)).at(b.span.clone());
                if let Some(h) = suggest(&b.kind, schema.blocks.iter().map(|(n, _)| *n)) {
                    d = d.hint(format!("did you mean `{h}`?"));
                } else if schema.args.contains(&b.kind.as_str()) {
                    d = d.hint(format!("`{}` is an argument: `{} = ...`", b.kind, b.kind));
                }
                diags.push(d);
            }
        }
    }
}

/// Where an error about `path` (`region`, `assume_role.role_arn`) points in
/// a written provider block: the argument's value, else the nearest
/// enclosing block that exists.
fn attribute_span(body: &BodyDecl, path: &str) -> Option<Span> {
    let (first, rest) = match path.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (path, None),
    };
    if let Some(a) = body.attrs.get(first) {
        return a.expr.span().or_else(|| a.key_span.clone());
    }
    let b = body.blocks.iter().find(|b| b.kind == first)?;
    rest.and_then(|r| attribute_span(&b.body, r)).or_else(|| b.span.clone())
}

/// Where the configuration first uses a provider: the resource's `provider`
/// argument, or the resource itself when the provider is implied by its type.
fn first_use(config: &Config, key: &str) -> Option<Span> {
    config.all_resources().find(|r| r.provider == key).and_then(|r| r.provider_span.clone().or_else(|| r.span.clone()))
}

/// Configures every provider the configuration and the state need: the root
/// module's `provider` blocks (evaluated against root variables and the
/// workspace, so `default_tags` may carry `terraform.workspace`), and an
/// empty configuration for a provider used without a block. A provider in
/// `given` is taken as it is.
pub async fn setup(
    config: &Config,
    vars: &BTreeMap<String, Value>,
    workspace: &str,
    needed: &BTreeSet<String>,
    given: &Registry,
) -> Result<Registry, Diagnostics> {
    use crate::config::eval::{self, Ctx};
    let world = World::new(config, vars.clone(), workspace);
    let root = config.root();
    let mut registry = Registry::default();
    let mut diags = Diagnostics::new();
    let mut keys: BTreeSet<String> = needed.clone();
    keys.extend(root.providers.keys().cloned());
    keys.insert("berth".into());
    for key in keys {
        if let Some(p) = given.get(&key) {
            registry.providers.insert(key, p.clone());
            continue;
        }
        let name = key.split('.').next().unwrap_or(&key).to_string();
        let (value, span) = match root.providers.get(&key) {
            Some(decl) => {
                let unknown = check_block(decl);
                if !unknown.is_empty() {
                    diags.extend(unknown);
                    continue;
                }
                let path = Vec::new();
                let ctx = Ctx::new(&world, &path, &root.dir);
                let mut m = Map::new();
                let mut ok = true;
                for (n, a) in &decl.body.attrs {
                    match eval::eval(&a.expr, &ctx) {
                        Ok(v) if v.is_known() => {
                            m.insert(n.clone(), v);
                        }
                        Ok(_) => {
                            diags.push(
                                Diagnostic::error(format!("provider `{key}`: `{n}` must be known before planning"))
                                    .at(a.expr.span()),
                            );
                            ok = false;
                        }
                        Err(d) => {
                            diags.push(d);
                            ok = false;
                        }
                    }
                }
                match world.eval_body(
                    &BodyDecl { attrs: Default::default(), blocks: decl.body.blocks.clone() },
                    None,
                    &ctx,
                    &format!("provider `{key}`"),
                    decl.span.as_ref(),
                ) {
                    Ok(Value::Map(blocks)) => m.extend(blocks),
                    Ok(_) => {}
                    Err(d) => {
                        diags.extend(d);
                        ok = false;
                    }
                }
                if !ok {
                    continue;
                }
                (Value::Map(m), decl.span.clone())
            }
            None if key.contains('.') => {
                diags.push(Diagnostic::error(format!("provider `{key}` is used but not configured: add `provider \"{name}\" {{ alias = \"{}\" }}`", &key[name.len() + 1..])).at(first_use(config, &key)));
                continue;
            }
            // Without a block, an error is about the first resource that needs the provider.
            None => (Value::Map(Default::default()), first_use(config, &key)),
        };
        match families::configure(&name, &value).await {
            Ok(p) => {
                registry.providers.insert(key, p);
            }
            Err(e) => {
                // Point at the argument the error is about when it is written.
                let at = e
                    .attribute
                    .as_deref()
                    .and_then(|a| root.providers.get(&key).and_then(|d| attribute_span(&d.body, a)));
                diags.push(Diagnostic::error(format!("provider `{key}`: {}", e.message)).at(at.or(span)))
            }
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(registry) }
}
