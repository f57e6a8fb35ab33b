//! From `inventory` blocks to the [`Inventory`] model, against the values of
//! a walk (the planner's, the apply's, or the state's for `berth inventory`). The
//! renderers in [`crate::inventory`] never see configuration: this is where
//! the blocks are evaluated into their model.
//!
//! ```hcl
//! inventory "production" {
//!   format   = "kamal"                        # kamal | ansible | json | hosts
//!   path     = "config/deploy.production.yml"
//!   address  = "private_ip"                   # private_ip (default) | public_ip | dns
//!   ssh_user = "deploy"                       # optional
//!   bastion  = aws_instance.bastion.public_ip # optional: Kamal ssh.proxy, Ansible ProxyJump
//!
//!   role "web" {
//!     hosts = aws_instance.web[*]             # host objects, or { host = ..., tags = [...] }
//!     tags  = ["blue"]                        # optional: added to every host of the role
//!   }
//!   accessory "db" { host = aws_instance.db }
//! }
//! ```
//!
//! A host object is a resource instance's value (anything with `private_ip`
//! or `public_ip`); berth finds its resource address by `id`, and its DNS names
//! among the A records it manages that point at the host.

use crate::inventory::*;
use crate::addr::{InstanceAddr, Mode};
use crate::config::eval::{self, Ctx};
use crate::config::{BodyDecl, Config, InventoryDecl};
use crate::diag::{Diagnostic, Diagnostics};
use crate::value::Value;
use crate::engine::scope::World;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The result of evaluating one inventory block.
pub enum Built {
    Ready(Inventory),
    /// Depends on values known only after apply.
    Pending { name: String, path: PathBuf },
}

/// DNS records berth manages, from a walk's values: fqdn → addresses.
fn managed_records(world: &World) -> Vec<Record> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (addr, _key, v) in world.all_instances() {
        if addr.mode != Mode::Managed {
            continue;
        }
        let (fqdn, addrs) = match addr.type_.as_str() {
            "aws_route53_record" if matches!(v.get_str("type"), Some("A") | Some("AAAA")) => {
                (v.get_str("fqdn").map(str::to_string), v.get("records"))
            }
            "dns_a_record_set" | "dns_aaaa_record_set" => (v.get_str("id").map(str::to_string), v.get("addresses")),
            _ => continue,
        };
        let (Some(fqdn), Some(Value::List(list))) = (fqdn, addrs.map(|a| a.unmarked())) else { continue };
        let fqdn = fqdn.trim_end_matches('.').to_string();
        let entry = out.entry(fqdn).or_default();
        entry.extend(list.iter().filter_map(|x| x.as_str().map(str::to_string)));
        entry.sort();
        entry.dedup();
    }
    out.into_iter().map(|(fqdn, addresses)| Record { fqdn, addresses }).collect()
}

struct Ctx2<'a> {
    world: &'a World<'a>,
    records: Vec<Record>,
    /// Each address's records, by their index in `records`: a host finds its
    /// names by lookup, not by a scan of every record (N hosts × N records).
    by_address: HashMap<String, Vec<usize>>,
    by_id: BTreeMap<String, InstanceAddr>,
}

fn string(v: &Value, what: &str) -> Result<Option<String>, String> {
    match v.unmarked() {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(format!("`{what}` must be a string, not {}", other.type_name())),
    }
}

impl Ctx2<'_> {
    fn host(&self, v: &Value, kind: AddressKind, extra_tags: &[String], what: &str) -> Result<Host, String> {
        let (obj, mut tags) = match v.get("host") {
            Some(h) if v.get("private_ip").is_none() && v.get("public_ip").is_none() => {
                let tags = match v.get("tags").map(|t| t.unmarked()) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::List(l) | Value::Set(l)) => l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    Some(other) => return Err(format!("{what}: `tags` must be a list of strings, not {}", other.type_name())),
                };
                (h, tags)
            }
            _ => (v, Vec::new()),
        };
        if obj.as_map().is_none() {
            return Err(format!("{what}: a host is a resource such as `aws_instance.web` (an object with `private_ip`), not {}", obj.type_name()));
        }
        tags.extend(extra_tags.iter().cloned());
        tags.sort();
        tags.dedup();
        let private_ip = string(obj.get("private_ip").unwrap_or(&Value::Null), "private_ip")?;
        let public_ip = string(obj.get("public_ip").unwrap_or(&Value::Null), "public_ip")?;
        let id = string(obj.get("id").unwrap_or(&Value::Null), "id")?;
        let resource = id.as_ref().and_then(|i| self.by_id.get(i));
        let mut found: Vec<usize> = [&private_ip, &public_ip]
            .into_iter()
            .flatten()
            .filter_map(|ip| self.by_address.get(ip))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        // A record that lists several hosts (a role's round-robin name,
        // `records = aws_instance.web[*].private_ip`) resolves to this host
        // but names none of them: the host's own names come first, and only
        // they name it.
        found.sort_by_key(|i| self.records[*i].addresses.len() != 1);
        let own = found.iter().take_while(|i| self.records[**i].addresses.len() == 1).count();
        let dns_names: Vec<String> = found.into_iter().map(|i| self.records[i].fqdn.clone()).collect();
        let own_name = dns_names[..own].first();
        let address = match kind {
            AddressKind::PrivateIp => private_ip.clone().ok_or_else(|| format!("{what}: the host has no `private_ip`"))?,
            AddressKind::PublicIp => public_ip.clone().ok_or_else(|| format!("{what}: the host has no `public_ip`"))?,
            AddressKind::Dns => own_name.cloned().ok_or_else(|| {
                format!("{what}: `address = \"dns\"` but no DNS record managed by berth names this host alone")
            })?,
        };
        let name = match (own_name, resource) {
            (Some(n), _) => n.clone(),
            (None, Some(a)) => derived_name(a),
            (None, None) => address.clone(),
        };
        let instance_id = match resource {
            Some(a) if a.resource.type_ == "aws_instance" => id.clone(),
            _ => id.clone().filter(|i| i.starts_with("i-")),
        };
        Ok(Host {
            resource: resource.map(|a| a.to_string()).unwrap_or_default(),
            name,
            address,
            private_ip,
            public_ip,
            dns_names,
            instance_id,
            tags,
        })
    }
}

fn eval_body(world: &World, body: &BodyDecl, ctx: &Ctx) -> Result<BTreeMap<String, Value>, Diagnostics> {
    let mut out = BTreeMap::new();
    let mut diags = Diagnostics::new();
    for (k, a) in &body.attrs {
        match eval::eval(&a.expr, ctx) {
            Ok(v) => {
                out.insert(k.clone(), v);
            }
            Err(d) => diags.push(d),
        }
    }
    let _ = world;
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// Evaluates one `inventory` block.
pub fn build(world: &World, decl: &InventoryDecl, base: &Path) -> Result<Built, Diagnostics> {
    let root = Vec::new();
    let dir = world.config.root().dir.clone();
    let ctx = Ctx::new(world, &root, &dir);
    let name = decl.name.clone();
    let err = |msg: String, span: Option<crate::diag::Span>| -> Diagnostics {
        Diagnostic::error(format!("inventory `{name}`: {msg}")).at(span).into()
    };
    let attrs = eval_body(world, &decl.body, &ctx)?;
    for k in attrs.keys() {
        if !["format", "path", "address", "ssh_user", "bastion"].contains(&k.as_str()) {
            let span = decl.body.attrs.get(k).and_then(|a| a.key_span.clone());
            let mut d = Diagnostic::error(format!("inventory `{name}`: unsupported argument `{k}`")).at(span);
            if let Some(s) = crate::diag::suggest(k, ["format", "path", "address", "ssh_user", "bastion"]) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            return Err(d.into());
        }
    }
    let span_of = |k: &str| decl.body.attrs.get(k).and_then(|a| a.expr.span()).or(decl.span.clone());
    let format: Format = match attrs.get("format").and_then(|v| v.as_str()) {
        Some(f) => f.parse().map_err(|e: InventoryError| err(e.to_string(), span_of("format")))?,
        None => return Err(err("`format` is required (`kamal`, `ansible`, `json` or `hosts`)".into(), decl.span.clone())),
    };
    let path = match attrs.get("path") {
        Some(Value::Unknown) => return Ok(Built::Pending { name, path: PathBuf::new() }),
        Some(v) => match v.as_str() {
            Some(p) => base.join(p),
            None => return Err(err("`path` must be a string".into(), span_of("path"))),
        },
        None => return Err(err("`path` is required".into(), decl.span.clone())),
    };
    let kind: AddressKind = match attrs.get("address").and_then(|v| v.as_str()) {
        Some(a) => a.parse().map_err(|e: InventoryError| err(e.to_string(), span_of("address")))?,
        None => AddressKind::PrivateIp,
    };
    let mut pending = false;
    let mut get_str = |k: &str| -> Result<Option<String>, Diagnostics> {
        match attrs.get(k) {
            None => Ok(None),
            Some(v) if !v.is_known() => {
                pending = true;
                Ok(None)
            }
            Some(v) => string(v, k).map_err(|m| err(m, span_of(k))),
        }
    };
    let ssh_user = get_str("ssh_user")?;
    let bastion = get_str("bastion")?;

    let by_id: BTreeMap<String, InstanceAddr> = world
        .all_instances()
        .into_iter()
        .filter(|(a, _, _)| a.mode == Mode::Managed)
        .filter_map(|(a, k, v)| v.get_str("id").map(|id| (id.to_string(), a.instance(k))))
        .collect();
    let records = managed_records(world);
    let mut by_address: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for a in &r.addresses {
            by_address.entry(a.clone()).or_default().push(i);
        }
    }
    let c2 = Ctx2 { world, records, by_address, by_id };
    let _ = c2.world;
    let mut roles = Vec::new();
    let mut accessories = Vec::new();
    for b in &decl.body.blocks {
        let label = b.labels.first().cloned().unwrap_or_default();
        let battrs = eval_body(world, &b.body, &ctx)?;
        match b.kind.as_str() {
            "role" => {
                if b.labels.len() != 1 {
                    return Err(err("a `role` block needs one label: `role \"web\" { hosts = ... }`".into(), b.span.clone()));
                }
                let tags: Vec<String> = match battrs.get("tags").map(|t| t.unmarked()) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::List(l) | Value::Set(l)) => l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                    Some(other) => return Err(err(format!("role `{label}`: `tags` must be a list of strings, not {}", other.type_name()), b.span.clone())),
                };
                let hosts_v = battrs.get("hosts").cloned().ok_or_else(|| err(format!("role `{label}` needs `hosts`"), b.span.clone()))?;
                if !hosts_v.is_known() {
                    pending = true;
                    continue;
                }
                let items = match hosts_v.unmarked() {
                    Value::List(l) | Value::Set(l) => l.clone(),
                    Value::Map(m) if m.contains_key("private_ip") || m.contains_key("public_ip") || m.contains_key("host") => vec![hosts_v.clone()],
                    // for_each resources: a map of hosts.
                    Value::Map(m) => m.values().cloned().collect(),
                    Value::Null => Vec::new(),
                    other => return Err(err(format!("role `{label}`: `hosts` must be a list of hosts, not {}", other.type_name()), b.span.clone())),
                };
                let mut hosts = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let h = c2.host(item, kind, &tags, &format!("role `{label}` host {i}")).map_err(|m| err(m, b.span.clone()))?;
                    hosts.push(h);
                }
                roles.push(Role { name: label, hosts });
            }
            "accessory" => {
                let hv = battrs.get("host").cloned().ok_or_else(|| err(format!("accessory `{label}` needs `host`"), b.span.clone()))?;
                if !hv.is_known() {
                    pending = true;
                    continue;
                }
                let host = c2.host(&hv, kind, &[], &format!("accessory `{label}`")).map_err(|m| err(m, b.span.clone()))?;
                accessories.push(Accessory { name: label, host });
            }
            other => return Err(err(format!("unsupported block `{other}` (expected `role` or `accessory`)"), b.span.clone())),
        }
    }
    if pending {
        return Ok(Built::Pending { name, path });
    }
    let records = if format == Format::Hosts { c2.records.clone() } else { Vec::new() };
    let inv = Inventory { name, format, path, roles, accessories, bastion, ssh_user, records };
    let problems = validate(&inv);
    if let Some(p) = problems.first() {
        return Err(Diagnostic::error(p.to_string()).at(decl.span.clone()).into());
    }
    Ok(Built::Ready(inv))
}

/// Every inventory of the configuration.
pub fn build_all(world: &World, config: &Config) -> Vec<Result<Built, Diagnostics>> {
    let base = config.dir.clone();
    config.root().inventories.values().map(|d| build(world, d, &base)).collect()
}

/// Every inventory of the configuration, from what `state` records (for
/// `berth inventory`: no provider is called).
pub fn from_state(config: &Config, vars: BTreeMap<String, Value>, workspace: &str, state: &crate::state::State) -> Vec<Result<Built, Diagnostics>> {
    let expanded = match super::modules::expand(config, &vars, workspace) {
        Ok(c) => c,
        Err(d) => return vec![Err(d)],
    };
    let config = &*expanded;
    let world = World::new(config, vars, workspace);
    for r in state.resources.values().filter(|r| r.deposed.is_none()) {
        world.set_instance(&r.addr.resource, r.addr.key.clone(), r.value());
    }
    build_all(&world, config)
}
