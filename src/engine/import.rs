//! Objects berth did not create: imported (`berth import`, `import` blocks)
//! or migrated from a Terraform state.
//!
//! Such an object is in the state with `imported` set until the first apply
//! after it came in. Two things differ for it:
//!
//! - Its recorded values may be written the way another tool writes them,
//!   where berth cannot read the real value back to compare: Terraform keeps
//!   an instance's `user_data` as a SHA-1 of it, a key pair's `public_key`
//!   trimmed, a record's `name` as it was written. [`reconcile`] takes the
//!   configuration's value when it is provably the same (the hash matches,
//!   the text matches but for whitespace, the name is the same DNS name), so
//!   the plan shows real differences only, never a replacement for a
//!   spelling.
//! - It does not carry berth's ownership marks yet. When its provider has
//!   some for the type ([`Provider::ownership_marks`]), the plan makes it an
//!   update that writes them, with a note saying so ([`claim`]), and the
//!   apply sets [`OpContext::claim`](crate::providers::OpContext::claim).
//!
//!
//! Objects come in three ways. `berth state migrate-terraform` writes them
//! into the state directly (`state::terraform`). `import { to, id }` blocks
//! (with `for_each`) and `berth import ADDR ID` are [`Request`]s the
//! planner reads by id: the provider's refresh of a prior state holding
//! only the id ([`seed`] adds what a type's read needs besides it, and the
//! configuration's values the read cannot report back, as an adoption
//! does), then planned like an object of the state, with `import` set on
//! its change. An import whose address has no resource block yet can have
//! one generated ([`generate_block`], `plan --generate-config-out`).
//!
//! [`Provider::ownership_marks`]: crate::providers::Provider::ownership_marks

use crate::addr::{InstanceAddr, InstanceKey, Mode, ResourceAddr};
use crate::config::eval::{self, Ctx};
use crate::config::{Config, Expr};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::engine::scope::World;
use crate::plan::Action;
use crate::providers::{OpContext, Provider, Registry};
use crate::schema::Schema;
use crate::state::{ResourceState, State};
use crate::value::{Map, Value};
use sha1::Digest;
use std::collections::{BTreeMap, HashMap};

/// One object to bring under berth at `to`.
#[derive(Clone, Debug)]
pub struct Request {
    pub to: InstanceAddr,
    pub id: String,
    /// The provider configuration (`aws.west`), when not the type's default.
    pub provider: Option<String>,
    /// The `import` block it comes from (none for `berth import`).
    pub span: Option<Span>,
}

/// The configuration's `import` blocks, evaluated: one request per block,
/// or per element of its `for_each`. Their `id` and `for_each` must be
/// known when planning.
pub fn requests(config: &Config, world: &World<'_>) -> Result<Vec<Request>, Diagnostics> {
    let mut out = Vec::new();
    let mut diags = Diagnostics::new();
    let root = Vec::new();
    for decl in &config.root().imports {
        let contexts: Vec<Ctx<'_>> = match &decl.for_each {
            None => vec![world.instance_ctx(&root, &InstanceKey::None, None)],
            Some(f) => match eval::eval(f, &world.instance_ctx(&root, &InstanceKey::None, None)) {
                Ok(v) if !v.is_known() => {
                    diags.push(
                        Diagnostic::error("the `for_each` of an `import` block must be known when planning")
                            .at(f.span()),
                    );
                    continue;
                }
                Ok(Value::Map(m)) => {
                    m.into_iter().map(|(k, v)| world.instance_ctx(&root, &InstanceKey::Str(k), Some(v))).collect()
                }
                Ok(Value::List(l)) => l
                    .into_iter()
                    .map(|v| {
                        let k = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                        world.instance_ctx(&root, &InstanceKey::Str(k), Some(v))
                    })
                    .collect(),
                Ok(other) => {
                    let msg =
                        format!("the `for_each` of an `import` block needs a map or a list, not {}", other.type_name());
                    diags.push(Diagnostic::error(msg).at(f.span()));
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
        };
        for ctx in contexts {
            let to = match address(&decl.to, &ctx) {
                Ok(a) => a,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let id = match eval::eval(&decl.id, &ctx) {
                Ok(Value::String(s)) if !s.is_empty() => s,
                Ok(v) if !v.is_known() => {
                    diags.push(
                        Diagnostic::error(format!("the `id` to import at `{to}` must be known when planning"))
                            .at(decl.id.span()),
                    );
                    continue;
                }
                Ok(v) => {
                    let msg = format!("the `id` to import at `{to}` must be a non-empty string, not {}", v.type_name());
                    diags.push(Diagnostic::error(msg).at(decl.id.span()));
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            if let Some(dup) = out.iter().find(|r: &&Request| r.to == to) {
                let at = dup.span.as_ref().map(|s| s.location()).unwrap_or_default();
                diags
                    .push(Diagnostic::error(format!("`{to}` is imported twice (first at {at})")).at(decl.span.clone()));
                continue;
            }
            out.push(Request { to, id, provider: decl.provider.clone(), span: decl.span.clone() });
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// The import requests a plan carries out: the configuration's `import`
/// blocks and `extra` ones (`berth import`), less those whose object the
/// state already manages at that address (an import done before; another
/// object there is an error). A request whose address has no resource block
/// is an error, unless `generate`: then the object is read and a block is
/// written for it (returned as HCL), and the request is left for the plan
/// made once that block is in the configuration.
pub async fn resolve(
    config: &Config,
    world: &World<'_>,
    state: &State,
    providers: &Registry,
    extra: &[Request],
    generate: bool,
) -> Result<(BTreeMap<InstanceAddr, Request>, String), Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut all = requests(config, world).unwrap_or_else(|d| {
        diags.extend(d);
        Vec::new()
    });
    all.extend(extra.iter().cloned());
    let mut out = BTreeMap::new();
    let mut generated = String::new();
    for r in all {
        if let Some(have) = state.get(&r.to) {
            if have.attributes.get_str("id") != Some(r.id.as_str()) {
                let msg = format!(
                    "cannot import `{}` at `{}`: the state already manages `{}` there",
                    r.id,
                    r.to,
                    have.attributes.get_str("id").unwrap_or("an object")
                );
                diags.push(
                    Diagnostic::error(msg)
                        .at(r.span.clone())
                        .hint("`berth state rm` it first, or import at another address"),
                );
            }
            continue;
        }
        let Some(decl) = config.resource(&r.to.resource) else {
            if !generate {
                diags.push(
                    Diagnostic::error(format!(
                        "no resource block `{}` in the configuration to import `{}` into",
                        r.to.resource, r.id
                    ))
                    .at(r.span.clone())
                    .hint("write one, or let berth write it: `berth plan --generate-config-out=generated.hcl`"),
                );
                continue;
            }
            let key = r.provider.clone().unwrap_or_else(|| r.to.resource.provider_name().to_string());
            let Some(provider) = providers.get(&key) else {
                diags.push(Diagnostic::error(format!("provider `{key}` is not configured")).at(r.span.clone()));
                continue;
            };
            let Some(schema) = provider.schema(Mode::Managed, &r.to.resource.type_) else {
                diags.push(
                    Diagnostic::error(format!("provider `{key}` has no resource type `{}`", r.to.resource.type_))
                        .at(r.span.clone()),
                );
                continue;
            };
            let items = [(r.to.clone(), r.id.clone(), None)];
            let read = read(provider.as_ref(), &r.to.resource.type_, &state.lineage, &items).await.remove(0);
            match read.and_then(|v| generate_block(&r.to, &r.id, schema, &v)) {
                Ok(hcl) => {
                    if !generated.is_empty() {
                        generated.push('\n');
                    }
                    generated.push_str(&hcl);
                }
                Err(e) => diags.push(Diagnostic::error(format!("importing `{}`: {e}", r.to)).at(r.span.clone())),
            }
            continue;
        };
        if let Some(p) = &r.provider
            && p != &decl.provider
        {
            let msg = format!("`{}` uses provider `{}`, the import names `{p}`", r.to.resource, decl.provider);
            diags.push(Diagnostic::error(msg).at(r.span.clone()));
            continue;
        }
        out.insert(r.to.clone(), r);
    }
    if diags.has_errors() { Err(diags) } else { Ok((out, generated)) }
}

/// Reads the objects of one resource block that `imports` names and the
/// state does not hold: `wanted` are the instances (address and evaluated
/// configuration). Each becomes a state object marked `imported`.
pub async fn read_objects(
    provider: &dyn Provider,
    decl: &crate::config::ResourceDecl,
    lineage: &str,
    imports: &BTreeMap<InstanceAddr, Request>,
    wanted: Vec<(InstanceAddr, Value)>,
) -> (HashMap<InstanceAddr, ResourceState>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut out = HashMap::new();
    let items: Vec<(InstanceAddr, String, Option<Value>)> =
        wanted.into_iter().filter_map(|(a, config)| imports.get(&a).map(|r| (a, r.id.clone(), Some(config)))).collect();
    if items.is_empty() {
        return (out, diags);
    }
    let results = read(provider, &decl.addr.type_, lineage, &items).await;
    for ((addr, _, _), r) in items.into_iter().zip(results) {
        match r {
            Ok(v) => {
                let sensitive = v.sensitive_paths();
                let (bare, _) = v.into_unmarked();
                let rs = ResourceState {
                    addr: addr.clone(),
                    deposed: None,
                    provider: decl.provider.clone(),
                    attributes: bare,
                    sensitive,
                    dependencies: Vec::new(),
                    tainted: false,
                    create_before_destroy: decl.lifecycle.create_before_destroy,
                    // As if berth had created it once.
                    generation: 1,
                    imported: true,
                    drain: None,
                };
                out.insert(addr, rs);
            }
            Err(e) => {
                let span = imports.get(&addr).and_then(|r| r.span.clone()).or_else(|| decl.span.clone());
                diags.push(Diagnostic::error(format!("importing `{addr}`: {e}")).at(span));
            }
        }
    }
    (out, diags)
}

/// The address an import's `to` names: `TYPE.NAME`, `module.M.TYPE.NAME`,
/// with an instance key that may be an expression (`[each.key]`).
fn address(to: &Expr, ctx: &Ctx<'_>) -> Result<InstanceAddr, Diagnostic> {
    use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
    let bad = || {
        Diagnostic::error("`to` must be a resource address: `aws_instance.web`, `aws_instance.web[\"key\"]`, `module.app.aws_vpc.main`")
            .at(to.span())
    };
    let E::Traversal(t) = &*to.expr else { return Err(bad()) };
    let E::Variable(root) = &t.expr else { return Err(bad()) };
    let mut names = vec![root.as_str().to_string()];
    let mut key = InstanceKey::None;
    let ops: Vec<&Op> = t.operators.iter().map(|o| o.value()).collect();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::GetAttr(a) => names.push(a.as_str().to_string()),
            Op::Index(_) | Op::LegacyIndex(_) if i + 1 == ops.len() => {
                let v = match op {
                    Op::Index(e) => eval::eval(&Expr::new(e.clone(), to.file.clone()), ctx)?,
                    Op::LegacyIndex(n) => Value::Number(*n.value() as f64),
                    _ => return Err(bad()),
                };
                key = match v.unmarked() {
                    Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => InstanceKey::Int(*n as usize),
                    Value::String(s) => InstanceKey::Str(s.clone()),
                    other => {
                        return Err(Diagnostic::error(format!(
                            "the instance key in `to` must be a whole number or a string, not {}",
                            other.type_name()
                        ))
                        .at(to.span()));
                    }
                };
            }
            _ => return Err(bad()),
        }
    }
    let mut module = Vec::new();
    let mut rest = names.as_slice();
    while let [m, name, tail @ ..] = rest
        && m == "module"
        && tail.len() >= 2
    {
        module.push(name.clone());
        rest = tail;
    }
    match rest {
        [type_, name] if type_ != "data" => {
            Ok(InstanceAddr { resource: ResourceAddr::new(module, Mode::Managed, type_, name), key })
        }
        _ => Err(bad()),
    }
}

/// The prior state a type's read (its provider's refresh) starts from for
/// the object `id`: the id, what the read needs besides it (a record's zone,
/// name and type come from its id `ZONE_NAME_TYPE`), and the arguments of
/// the configuration (`template`), which stand in for what a read cannot
/// report back (an instance's `user_data`, a key pair's `public_key`, how a
/// security group's rules are grouped) as they do when berth adopts an
/// object after a crash.
pub fn seed(type_: &str, id: &str, template: Option<&Value>) -> Result<Value, String> {
    let mut m: Map = template.and_then(|t| t.unknown_as_null().as_map().cloned()).unwrap_or_default();
    m.insert("id".into(), Value::str(id));
    match type_ {
        "aws_route53_record" => {
            let (zone, rest) =
                id.split_once('_').ok_or_else(|| format!("`{id}` is not a record id: `ZONEID_NAME_TYPE`"))?;
            let (name, rtype) =
                rest.rsplit_once('_').ok_or_else(|| format!("`{id}` is not a record id: `ZONEID_NAME_TYPE`"))?;
            let fqdn = dns_name(name);
            m.insert("zone_id".into(), Value::str(zone));
            m.insert("fqdn".into(), Value::str(&fqdn));
            m.entry("name".into()).or_insert_with(|| Value::str(&fqdn));
            m.insert("type".into(), Value::str(rtype.to_ascii_uppercase()));
            m.insert("id".into(), Value::String(format!("{zone}_{fqdn}_{}", rtype.to_ascii_uppercase())));
            m.entry("allow_overwrite".into()).or_insert(Value::Bool(false));
        }
        "aws_route53_zone_association" => {
            let mut parts = id.split(':');
            let (Some(zone), Some(vpc)) = (parts.next(), parts.next()) else {
                return Err(format!("`{id}` is not a zone association id: `ZONEID:VPCID`"));
            };
            m.insert("zone_id".into(), Value::str(zone));
            m.insert("vpc_id".into(), Value::str(vpc));
            if let Some(region) = parts.next() {
                m.insert("vpc_region".into(), Value::str(region));
            }
            m.insert("id".into(), Value::String(format!("{zone}:{vpc}")));
        }
        "aws_route53_zone" => {
            // A zone's read keeps the VPCs its blocks name, by id.
            if let Some(Value::List(blocks)) = m.get_mut("vpc") {
                for b in blocks.iter_mut() {
                    if let Value::Map(v) = b {
                        v.entry("vpc_region".into())
                            .and_modify(|r| {
                                if r.is_null() {
                                    *r = Value::str("")
                                }
                            })
                            .or_insert(Value::str(""));
                    }
                }
            }
            let bare = id.trim_start_matches("/hostedzone/");
            m.insert("id".into(), Value::str(bare));
            m.insert("zone_id".into(), Value::str(bare));
        }
        "aws_key_pair" => {
            m.insert("key_name".into(), Value::str(id));
        }
        "aws_route_table_association" if !id.starts_with("rtbassoc-") => {
            return Err(format!(
                "`{id}`: a route table association is imported by its association id (`rtbassoc-...`)"
            ));
        }
        _ => {}
    }
    Ok(Value::Map(m))
}

/// Reads objects of one type by id: `items` are each an address, an id and
/// the configuration (when there is one). An object not found is an error.
pub async fn read(
    provider: &dyn Provider,
    type_: &str,
    lineage: &str,
    items: &[(InstanceAddr, String, Option<Value>)],
) -> Vec<Result<Value, String>> {
    let mut out: Vec<Option<Result<Value, String>>> = vec![None; items.len()];
    let mut batch = Vec::new();
    let mut at = Vec::new();
    // The configuration in the provider's canonical form (rules as sets of
    // full blocks, a zone's VPCs with their regions), as a plan of a new
    // object makes it, which asks nothing of the cloud for most types;
    // where it does and fails (a record that exists), the configuration as
    // written.
    let templates = futures::future::join_all(items.iter().map(|(addr, _, config)| async move {
        let config = config.as_ref()?;
        let ctx = OpContext::new(addr.clone(), lineage, 1);
        Some(provider.plan(&ctx, type_, None, config).await.map(|p| p.after).unwrap_or_else(|_| config.clone()))
    }))
    .await;
    for (i, ((addr, id, _), template)) in items.iter().zip(templates).enumerate() {
        match seed(type_, id, template.as_ref()) {
            Ok(prior) => {
                batch.push((OpContext::new(addr.clone(), lineage, 1), prior));
                at.push(i);
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    if !batch.is_empty() {
        let results = provider.refresh(type_, batch).await;
        for (j, r) in results.into_iter().enumerate() {
            let Some(&i) = at.get(j) else { break };
            let (_, id, _) = &items[i];
            out[i] = Some(match r {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(format!("there is no `{type_}` with id `{id}` to import")),
                Err(e) => Err(format!("reading `{type_}` `{id}`: {}", e.message)),
            });
        }
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Err("the provider returned no result".into()))).collect()
}

/// HCL for an imported object that has no resource block yet: its
/// arguments as read (nested blocks as blocks), sensitive ones left for
/// the user to fill in. Only root addresses without a key can have a
/// block of their own.
pub fn generate_block(addr: &InstanceAddr, id: &str, schema: &Schema, value: &Value) -> Result<String, String> {
    if !addr.resource.module.is_empty() || addr.key != InstanceKey::None {
        return Err(format!(
            "berth generates configuration only for a root address without a key (`TYPE.NAME`), not `{addr}`: write its block by hand"
        ));
    }
    let mut out = format!(
        "# Generated by berth from `{}` `{id}`: review it before applying.\nresource {} {} {{\n",
        addr.resource.type_,
        hcl_string(&addr.resource.type_),
        hcl_string(&addr.resource.name)
    );
    for a in schema.arguments() {
        let Some(v) = value.get(a.name) else { continue };
        if v.is_null() || matches!(v, Value::Map(m) if m.is_empty()) || matches!(v, Value::List(l) if l.is_empty()) {
            continue;
        }
        if a.sensitive || v.is_sensitive() {
            out.push_str(&format!("  {} = null # sensitive: set it\n", a.name));
            continue;
        }
        match v {
            Value::List(blocks) if a.block => {
                for b in blocks {
                    out.push_str(&format!("  {} {{\n", a.name));
                    for (k, x) in b.as_map().into_iter().flatten() {
                        if !x.is_null() {
                            out.push_str(&format!("    {k} = {}\n", hcl_value(x, 4)));
                        }
                    }
                    out.push_str("  }\n");
                }
            }
            _ => out.push_str(&format!("  {} = {}\n", a.name, hcl_value(v, 2))),
        }
    }
    out.push_str("}\n");
    crate::config::fmt::format_source(&out)
        .map_err(|e| format!("the generated configuration for `{addr}` does not parse: {e}"))
}

fn hcl_string(s: &str) -> String {
    // JSON escapes are HCL's; `${` and `%{` would start a template.
    serde_json::Value::String(s.to_string()).to_string().replace("${", "$${").replace("%{", "%%{")
}

fn hcl_value(v: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    match v {
        Value::Null | Value::Unknown | Value::Sensitive(_) => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => crate::value::format_number(*n),
        Value::BigNumber(n) => n.to_text(),
        Value::String(s) if s.contains('\n') && !s.contains("EOT") => {
            let mut h = String::from("<<-EOT\n");
            for line in s.lines() {
                h.push_str(&format!("{pad}  {}\n", line.replace("${", "$${").replace("%{", "%%{")));
            }
            h.push_str(&format!("{pad}EOT"));
            h
        }
        Value::String(s) => hcl_string(s),
        Value::List(l) | Value::Set(l) => format!("[{}]", l.iter().map(|x| hcl_value(x, indent)).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => {
            let mut s = String::from("{\n");
            for (k, x) in m {
                let key = if crate::config::is_name(k) { k.clone() } else { hcl_string(k) };
                s.push_str(&format!("{pad}  {key} = {}\n", hcl_value(x, indent + 2)));
            }
            s.push_str(&format!("{pad}}}"));
            s
        }
    }
}

/// How Terraform's AWS provider records `user_data`: the hex SHA-1 of the
/// data, base64-decoded first when it is valid base64.
fn terraform_user_data_hash(user_data: &str) -> String {
    use base64::Engine;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(user_data).unwrap_or_else(|_| user_data.as_bytes().to_vec());
    hex::encode(sha1::Sha1::digest(&bytes))
}

fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A DNS name compared the way Route53 does: lowercase, no trailing dot.
fn dns_name(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

/// The prior value of an imported object, with the values recorded in
/// another tool's spelling replaced by the configuration's where they are
/// provably the same object (see the module documentation).
pub fn reconcile(type_: &str, prior: Value, config: &Value) -> Value {
    let Value::Map(mut m) = prior else { return prior };
    let configured = |k: &str| config.get(k).and_then(|v| v.unmarked().as_str()).map(str::to_string);
    match type_ {
        "aws_instance" => {
            if let (Some(recorded), Some(want)) = (m.get("user_data").and_then(Value::as_str), configured("user_data"))
                && is_sha1_hex(recorded)
                && recorded.eq_ignore_ascii_case(&terraform_user_data_hash(&want))
            {
                m.insert("user_data".into(), Value::String(want));
            }
        }
        "aws_key_pair" => {
            if let (Some(recorded), Some(want)) =
                (m.get("public_key").and_then(Value::as_str), configured("public_key"))
                && recorded.trim() == want.trim()
            {
                m.insert("public_key".into(), Value::String(want));
            }
        }
        "aws_route53_record" => {
            if let (Some(fqdn), Some(want)) = (m.get("fqdn").and_then(Value::as_str).map(dns_name), configured("name"))
            {
                let w = dns_name(&want);
                // The same name written in full, or relative to the zone.
                if w == fqdn || fqdn.strip_prefix(&w).is_some_and(|rest| rest.starts_with('.')) {
                    m.insert("name".into(), Value::String(want));
                }
            }
        }
        _ => {}
    }
    Value::Map(m)
}

/// The action for an imported object whose planned action is `action`:
/// an object that would stay as it is becomes an update when its provider
/// has ownership `marks` to write, and the plan says so in `notes`.
pub fn claim(action: Action, marks: Option<String>, notes: &mut Vec<String>) -> Action {
    match marks {
        Some(m) if matches!(action, Action::NoOp | Action::Update) => {
            notes.push(format!("imported: {m} on the next apply"));
            Action::Update
        }
        // The type keeps its mark in an attribute (a record's `owner`),
        // which the plan diffs and notes, or has none.
        _ => action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn a_terraform_user_data_hash_is_taken_only_when_it_matches() {
        let script = "#!/bin/sh\necho hi\n";
        let hash = terraform_user_data_hash(script);
        assert_eq!(hash.len(), 40);
        let prior = obj([("user_data", Value::str(&hash))]);
        let same = reconcile("aws_instance", prior.clone(), &obj([("user_data", Value::str(script))]));
        assert_eq!(same.get_str("user_data"), Some(script));
        let other = reconcile("aws_instance", prior, &obj([("user_data", Value::str("#!/bin/sh\necho bye\n"))]));
        assert_eq!(other.get_str("user_data"), Some(hash.as_str()));
        // Base64 user data hashes as what it decodes to.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(script);
        assert_eq!(terraform_user_data_hash(&b64), hash);
    }

    #[test]
    fn names_and_keys_spelled_differently_are_the_same_object() {
        let rec = obj([("name", Value::str("search.internal")), ("fqdn", Value::str("search.internal"))]);
        let r = reconcile("aws_route53_record", rec.clone(), &obj([("name", Value::str("search"))]));
        assert_eq!(r.get_str("name"), Some("search"));
        let r = reconcile("aws_route53_record", rec, &obj([("name", Value::str("other"))]));
        assert_eq!(r.get_str("name"), Some("search.internal"));
        let kp = obj([("public_key", Value::str("ssh-ed25519 AAAA x"))]);
        let r = reconcile("aws_key_pair", kp, &obj([("public_key", Value::str("ssh-ed25519 AAAA x\n"))]));
        assert_eq!(r.get_str("public_key"), Some("ssh-ed25519 AAAA x\n"));
    }

    #[test]
    fn an_unchanged_import_is_an_update_only_when_there_are_marks_to_write() {
        let mut notes = Vec::new();
        assert_eq!(claim(Action::NoOp, Some("tags".into()), &mut notes), Action::Update);
        assert_eq!(notes, ["imported: tags on the next apply"]);
        let mut notes = Vec::new();
        assert_eq!(claim(Action::NoOp, None, &mut notes), Action::NoOp);
        assert_eq!(claim(Action::DeleteThenCreate, Some("tags".into()), &mut notes), Action::DeleteThenCreate);
        assert!(notes.is_empty(), "{notes:?}");
    }
}
