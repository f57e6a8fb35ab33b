//! Terraform's state (format version 4) read into a berth state, for
//! `berth state migrate-terraform`.
//!
//! A team moving a live fleet from Terraform must not recreate it. The
//! state Terraform writes (`terraform.tfstate`, or `terraform state pull`)
//! already says which real object each address is; this module reads it —
//! `version: 4`, resources with their module path, mode, type, name and
//! provider configuration, and their instances with the `index_key` of
//! `count` or `for_each`, `attributes`, `sensitive_attributes`,
//! `dependencies`, `status`, `deposed` and `create_before_destroy` — and
//! builds the berth state that names the same objects at the same
//! addresses. Nothing here talks to a cloud: the first `berth plan`
//! afterwards refreshes every object from its id.
//!
//! What cannot come across is listed, never dropped silently: a resource
//! type berth does not have, an object written by a Terraform
//! older than 0.12 (flat attributes). Data sources are not migrated: the
//! next plan reads them again.
//!
//! Every migrated object is marked `imported`: the first apply writes
//! berth's ownership marks on it (see `engine::import`). Attributes are kept
//! as berth's schema names them, with the few shapes that differ in
//! Terraform's AWS provider brought to berth's (listed in [`fix_shape`]).
//!
//! This module knows the file format, not the providers: the caller says
//! which types berth has and what their attributes are.

use super::{OutputState, ResourceState, State, StateError};
use crate::addr::{InstanceAddr, InstanceKey, Mode, ModulePath, ResourceAddr};
use crate::value::{Map, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct FileV4 {
    version: u32,
    #[serde(default)]
    terraform_version: String,
    #[serde(default)]
    serial: u64,
    #[serde(default)]
    lineage: String,
    #[serde(default)]
    outputs: BTreeMap<String, OutputV4>,
    #[serde(default)]
    resources: Vec<ResourceV4>,
}

#[derive(Deserialize)]
struct OutputV4 {
    value: serde_json::Value,
    #[serde(default)]
    sensitive: bool,
}

#[derive(Deserialize)]
struct ResourceV4 {
    #[serde(default)]
    module: String,
    mode: String,
    #[serde(rename = "type")]
    type_: String,
    name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    instances: Vec<InstanceV4>,
}

#[derive(Deserialize)]
struct InstanceV4 {
    #[serde(default)]
    index_key: Option<serde_json::Value>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    deposed: String,
    #[serde(default)]
    attributes: Option<serde_json::Value>,
    #[serde(default)]
    attributes_flat: Option<serde_json::Value>,
    #[serde(default)]
    sensitive_attributes: Option<serde_json::Value>,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    create_before_destroy: bool,
}

/// A Terraform state, read and checked.
pub struct TerraformState {
    file: FileV4,
}

/// An object that was not migrated, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// Its Terraform address: `module.app.aws_iam_role.deploy[0]`.
    pub address: String,
    pub reason: String,
}

/// What [`TerraformState::migrate`] made.
#[derive(Debug)]
pub struct Migration {
    pub state: State,
    /// Each migrated object's address and id, in state order.
    pub migrated: Vec<(InstanceAddr, String)>,
    pub skipped: Vec<Skipped>,
    /// Data sources, by address: the next plan reads them again.
    pub data_sources: Vec<String>,
    /// Things to set in the configuration so the next plan keeps objects as
    /// they are (defaults that differ between Terraform and berth).
    pub hints: Vec<String>,
}

/// What the caller knows of berth's providers: for a provider family
/// (`aws`) and a managed type, the names of the type's attributes, or
/// `None` when berth has no such type.
pub type Attributes<'a> = &'a dyn Fn(&str, &str) -> Option<Vec<String>>;

impl TerraformState {
    /// Reads `text` (`source` names it in errors). Only format version 4
    /// (Terraform 0.12 and later) is read.
    pub fn read(source: &str, text: &str) -> Result<TerraformState, StateError> {
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u32>,
        }
        let corrupt = |reason: String| StateError::Corrupt { path: source.into(), reason };
        let probe: Probe = serde_json::from_str(text).map_err(|e| corrupt(format!("not a Terraform state: {e}")))?;
        match probe.version {
            Some(4) => {}
            Some(v) => {
                return Err(corrupt(format!(
                    "Terraform state format version {v}; berth reads version 4 (Terraform 0.12 and later): \
                     run `terraform state pull` with a current Terraform first"
                )));
            }
            None => return Err(corrupt("no `version`: not a Terraform state".into())),
        }
        let file: FileV4 = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        debug_assert_eq!(file.version, 4);
        Ok(TerraformState { file })
    }

    pub fn terraform_version(&self) -> &str {
        &self.file.terraform_version
    }

    pub fn serial(&self) -> u64 {
        self.file.serial
    }

    pub fn lineage(&self) -> &str {
        &self.file.lineage
    }

    /// Builds the berth state: every managed object of a type berth has,
    /// at the same address; the rest listed in [`Migration::skipped`].
    pub fn migrate(&self, attributes: Attributes<'_>) -> Migration {
        let mut state = State::new();
        if uuid::Uuid::parse_str(&self.file.lineage).is_ok() {
            // The same lineage: what the ownership marks will carry.
            state.lineage = self.file.lineage.clone();
        }
        let mut m =
            Migration { state, migrated: Vec::new(), skipped: Vec::new(), data_sources: Vec::new(), hints: Vec::new() };
        for r in &self.file.resources {
            let tf_addr = |key: &Option<serde_json::Value>| {
                let mut a = String::new();
                if !r.module.is_empty() {
                    a.push_str(&r.module);
                    a.push('.');
                }
                if r.mode == "data" {
                    a.push_str("data.");
                }
                a.push_str(&format!("{}.{}", r.type_, r.name));
                match key {
                    Some(serde_json::Value::String(s)) => {
                        a.push_str(&format!("[{}]", serde_json::Value::String(s.clone())))
                    }
                    Some(k) if !k.is_null() => a.push_str(&format!("[{k}]")),
                    _ => {}
                }
                a
            };
            let skip = |m: &mut Migration, key: &Option<serde_json::Value>, reason: String| {
                m.skipped.push(Skipped { address: tf_addr(key), reason })
            };
            match r.mode.as_str() {
                "managed" => {}
                "data" => {
                    m.data_sources.push(tf_addr(&None));
                    continue;
                }
                other => {
                    skip(&mut m, &None, format!("unknown resource mode `{other}`"));
                    continue;
                }
            }
            let module = match module_path(&r.module) {
                Ok(p) => p,
                Err(reason) => {
                    for i in &r.instances {
                        skip(&mut m, &i.index_key, reason.clone());
                    }
                    continue;
                }
            };
            let (family, key) = provider_key(&r.provider, &r.type_);
            let Some(names) = attributes(&family, &r.type_) else {
                for i in &r.instances {
                    skip(&mut m, &i.index_key, format!("berth has no resource type `{}`", r.type_));
                }
                continue;
            };
            let resource = ResourceAddr {
                module: module.clone(),
                mode: Mode::Managed,
                type_: r.type_.clone(),
                name: r.name.clone(),
            };
            for i in &r.instances {
                let inst_key = match &i.index_key {
                    None | Some(serde_json::Value::Null) => InstanceKey::None,
                    Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
                        InstanceKey::Int(n.as_u64().unwrap_or_default() as usize)
                    }
                    Some(serde_json::Value::String(s)) => InstanceKey::Str(s.clone()),
                    Some(other) => {
                        skip(&mut m, &i.index_key, format!("instance key `{other}` is neither a number nor a string"));
                        continue;
                    }
                };
                let attrs = match (&i.attributes, &i.attributes_flat) {
                    (Some(serde_json::Value::Object(a)), _) => a,
                    (_, Some(_)) => {
                        skip(&mut m, &i.index_key, "written by Terraform before 0.12 (flat attributes): refresh it with a current Terraform first".into());
                        continue;
                    }
                    _ => {
                        skip(&mut m, &i.index_key, "the instance has no attributes".into());
                        continue;
                    }
                };
                let mut value: Map = attrs
                    .iter()
                    .filter(|(k, _)| names.iter().any(|n| n == *k))
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect();
                if let Err(reason) = fix_shape(&r.type_, attrs, &mut value, &mut m.hints, &tf_addr(&i.index_key)) {
                    skip(&mut m, &i.index_key, reason);
                    continue;
                }
                let id = value.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                if id.is_empty() {
                    skip(&mut m, &i.index_key, "the object has no `id`".into());
                    continue;
                }
                let sensitive = i.sensitive_attributes.as_ref().map(sensitive_paths).unwrap_or_default();
                let addr = InstanceAddr { resource: resource.clone(), key: inst_key };
                let rs = ResourceState {
                    addr: addr.clone(),
                    deposed: (!i.deposed.is_empty()).then(|| format!("tf-{}", i.deposed)),
                    provider: key.clone(),
                    attributes: Value::Map(value),
                    sensitive,
                    dependencies: i.dependencies.iter().filter_map(|d| d.parse::<ResourceAddr>().ok()).collect(),
                    tainted: i.status == "tainted",
                    create_before_destroy: i.create_before_destroy,
                    // As if berth had created it once (see `engine::import`).
                    generation: 1,
                    imported: true,
                    drain: None,
                };
                if rs.deposed.is_none() {
                    m.migrated.push((addr, id));
                }
                m.state.put(rs);
            }
        }
        m.migrated.sort();
        for (name, o) in &self.file.outputs {
            m.state
                .outputs
                .insert(name.clone(), OutputState { value: Value::from_json(&o.value), sensitive: o.sensitive });
        }
        m.hints.sort();
        m.hints.dedup();
        m
    }
}

/// `module.a.module.b` → `["a", "b"]`; `module.a["k"]` (a call with
/// `for_each`) keeps its key.
fn module_path(s: &str) -> Result<ModulePath, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    crate::addr::parse_module_path(s).map_err(|_| format!("`{s}` is not a module address"))
}

/// The provider family (`aws`) and berth's provider key (`aws`, `aws.west`)
/// of Terraform's provider configuration address:
/// `provider["registry.terraform.io/hashicorp/aws"].west`, or the older
/// `provider.aws.west`, possibly after a module path.
fn provider_key(s: &str, type_: &str) -> (String, String) {
    let from_type = || type_.split('_').next().unwrap_or(type_).to_string();
    let Some(at) = s.find("provider") else {
        let f = from_type();
        return (f.clone(), f);
    };
    let rest = &s[at + "provider".len()..];
    let (family, alias) = if let Some(quoted) = rest.strip_prefix("[\"") {
        let end = quoted.find("\"]").unwrap_or(quoted.len());
        let source = &quoted[..end];
        let family = source.rsplit('/').next().unwrap_or(source).to_string();
        let alias = quoted.get(end + 2..).and_then(|a| a.strip_prefix('.')).map(str::to_string);
        (family, alias)
    } else {
        let mut parts = rest.trim_start_matches('.').splitn(2, '.');
        let family = parts.next().filter(|f| !f.is_empty()).map(str::to_string).unwrap_or_else(from_type);
        (family, parts.next().map(str::to_string))
    };
    let key = match alias.filter(|a| !a.is_empty()) {
        Some(a) => format!("{family}.{a}"),
        None => family.clone(),
    };
    (family, key)
}

/// Terraform's `sensitive_attributes` (paths of `get_attr` and `index`
/// steps) as berth's sensitive paths (`a.b`, `a[0]`).
fn sensitive_paths(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for path in v.as_array().into_iter().flatten() {
        let mut p = String::new();
        let mut ok = true;
        for step in path.as_array().into_iter().flatten() {
            match (step["type"].as_str(), &step["value"]) {
                (Some("get_attr"), serde_json::Value::String(name)) => {
                    if !p.is_empty() {
                        p.push('.');
                    }
                    p.push_str(name);
                }
                (Some("index"), idx) => match &idx["value"] {
                    serde_json::Value::Number(n) => p.push_str(&format!("[{n}]")),
                    serde_json::Value::String(k) => {
                        if !p.is_empty() {
                            p.push('.');
                        }
                        p.push_str(k);
                    }
                    _ => ok = false,
                },
                _ => ok = false,
            }
        }
        if ok && !p.is_empty() {
            out.push(p);
        }
    }
    out
}

/// The keys of berth's blocks where Terraform's AWS provider has more.
const RULE_KEYS: &[&str] =
    &["from_port", "to_port", "protocol", "cidr_blocks", "ipv6_cidr_blocks", "security_groups", "self", "description"];
const ROUTE_KEYS: &[&str] =
    &["cidr_block", "gateway_id", "nat_gateway_id", "instance_id", "network_interface_id", "vpc_peering_connection_id"];

fn keep_keys(v: Option<&mut Value>, keys: &[&str]) {
    if let Some(Value::List(blocks)) = v {
        for b in blocks {
            if let Value::Map(m) = b {
                m.retain(|k, _| keys.contains(&k.as_str()));
            }
        }
    }
}

/// The shapes in which Terraform's AWS provider and berth differ, brought to
/// berth's; `Err` for an object berth cannot manage as it is.
///
/// - security group rules and route table routes: only the keys berth's
///   blocks have (`prefix_list_ids`, `carrier_gateway_id`... are Terraform's);
/// - a Route53 record's id is `ZONE_fqdn_TYPE` for berth (Terraform writes
///   the name as configured); alias records and routing policies are not
///   berth's;
/// - a zone association's id is `ZONE:VPC` (Terraform may add the region);
/// - a route table association with a gateway instead of a subnet is not
///   berth's.
fn fix_shape(
    type_: &str,
    tf: &serde_json::Map<String, serde_json::Value>,
    v: &mut Map,
    hints: &mut Vec<String>,
    address: &str,
) -> Result<(), String> {
    let s = |k: &str| tf.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let present = |k: &str| tf.get(k).is_some_and(|x| !x.is_null() && x.as_array().is_none_or(|a| !a.is_empty()));
    match type_ {
        "aws_security_group" => {
            keep_keys(v.get_mut("ingress"), RULE_KEYS);
            keep_keys(v.get_mut("egress"), RULE_KEYS);
            if s("description") == "Managed by Terraform" {
                hints.push(format!(
                    "`{address}`: set `description = \"Managed by Terraform\"` in its block (berth's default \
                     description differs, and a changed description replaces a security group)"
                ));
            }
        }
        "aws_route_table" => keep_keys(v.get_mut("route"), ROUTE_KEYS),
        "aws_route53_zone" => {
            if s("comment") == "Managed by Terraform" {
                hints.push(format!(
                    "`{address}`: set `comment = \"Managed by Terraform\"` in its block, or the next apply changes \
                     it to berth's default"
                ));
            }
        }
        "aws_route53_record" => {
            if present("alias") || !s("set_identifier").is_empty() {
                return Err("alias records and routing policies are not berth's `aws_route53_record`".into());
            }
            let fqdn = s("fqdn").trim_end_matches('.').to_ascii_lowercase();
            let fqdn = if fqdn.is_empty() { s("name").trim_end_matches('.').to_ascii_lowercase() } else { fqdn };
            v.insert("fqdn".into(), Value::String(fqdn.clone()));
            // Unset in Terraform means what it does in berth: no overwrite.
            if v.get("allow_overwrite").is_none_or(Value::is_null) {
                v.insert("allow_overwrite".into(), Value::Bool(false));
            }
            v.insert("id".into(), Value::String(format!("{}_{}_{}", s("zone_id"), fqdn, s("type"))));
        }
        "aws_route53_zone_association" => {
            let id = format!("{}:{}", s("zone_id"), s("vpc_id"));
            v.insert("id".into(), Value::String(id));
        }
        "aws_route_table_association" if s("subnet_id").is_empty() => {
            return Err("a route table association with a gateway is not berth's (only subnets)".into());
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(_family: &str, type_: &str) -> Option<Vec<String>> {
        let names: &[&str] = match type_ {
            "aws_vpc" => &["id", "arn", "cidr_block", "enable_dns_support", "enable_dns_hostnames", "tags", "tags_all"],
            "aws_route53_record" => {
                &["id", "zone_id", "name", "type", "ttl", "records", "fqdn", "owner", "allow_overwrite"]
            }
            "aws_security_group" => &["id", "name", "description", "vpc_id", "ingress", "egress", "tags"],
            _ => return None,
        };
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    const STATE: &str = r#"{
      "version": 4, "terraform_version": "1.11.0", "serial": 7,
      "lineage": "0f8a3c52-7d7e-4c9a-9a43-3f1f3b0b6a11",
      "outputs": {"vpc": {"value": "vpc-1", "type": "string"}},
      "resources": [
        {"mode": "managed", "type": "aws_vpc", "name": "main",
         "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
         "instances": [{"schema_version": 1, "attributes": {"id": "vpc-1", "cidr_block": "10.0.0.0/16",
            "instance_tenancy": "default", "tags": {"Name": "main"}}, "sensitive_attributes": []}]},
        {"module": "module.dns", "mode": "managed", "type": "aws_route53_record", "name": "host",
         "provider": "provider[\"registry.terraform.io/hashicorp/aws\"].west",
         "instances": [{"index_key": "search", "schema_version": 2, "attributes": {"id": "Z1_search_A",
            "zone_id": "Z1", "name": "search", "fqdn": "search.internal", "type": "A", "ttl": 60,
            "records": ["10.0.1.4"], "alias": [], "set_identifier": ""},
            "sensitive_attributes": [[{"type": "get_attr", "value": "records"}]],
            "dependencies": ["aws_vpc.main"]}]},
        {"mode": "managed", "type": "aws_security_group", "name": "web", "provider": "provider.aws",
         "instances": [{"index_key": 0, "attributes": {"id": "sg-1", "description": "Managed by Terraform",
           "ingress": [{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"],
             "prefix_list_ids": [], "self": false, "description": "", "ipv6_cidr_blocks": [], "security_groups": []}]}}]},
        {"mode": "managed", "type": "aws_iam_role", "name": "deploy", "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
         "instances": [{"attributes": {"id": "deploy"}}]},
        {"module": "module.app[0]", "mode": "managed", "type": "aws_vpc", "name": "x", "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
         "instances": [{"attributes": {"id": "vpc-2"}}]},
        {"mode": "data", "type": "aws_ami", "name": "debian", "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
         "instances": [{"attributes": {"id": "ami-1"}}]}
      ]
    }"#;

    #[test]
    fn keeps_addresses_keys_ids_and_lists_what_it_cannot_take() {
        let tf = TerraformState::read("terraform.tfstate", STATE).unwrap();
        let m = tf.migrate(&schema);
        let addrs: Vec<String> = m.migrated.iter().map(|(a, id)| format!("{a}={id}")).collect();
        assert_eq!(
            addrs,
            [
                "aws_security_group.web[0]=sg-1",
                "aws_vpc.main=vpc-1",
                "module.app[0].aws_vpc.x=vpc-2",
                "module.dns.aws_route53_record.host[\"search\"]=Z1_search.internal_A",
            ]
        );
        assert_eq!(m.state.lineage, "0f8a3c52-7d7e-4c9a-9a43-3f1f3b0b6a11");
        let rec = m.state.get(&"module.dns.aws_route53_record.host[\"search\"]".parse().unwrap()).unwrap();
        assert_eq!(rec.provider, "aws.west");
        assert_eq!(rec.sensitive, ["records"]);
        assert!(rec.value().get("records").unwrap().is_sensitive());
        assert_eq!(rec.dependencies, ["aws_vpc.main".parse::<ResourceAddr>().unwrap()]);
        assert!(rec.imported && rec.generation == 1);
        let vpc = m.state.get(&"aws_vpc.main".parse().unwrap()).unwrap();
        assert!(vpc.attributes.get("instance_tenancy").is_none(), "not berth's attribute");
        let sg = m.state.get(&"aws_security_group.web[0]".parse().unwrap()).unwrap();
        let rule = &sg.attributes.get("ingress").unwrap().as_list().unwrap()[0];
        assert!(rule.get("prefix_list_ids").is_none() && rule.get("from_port").is_some());
        let skipped: Vec<&str> = m.skipped.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(skipped, ["aws_iam_role.deploy"]);
        assert!(m.skipped[0].reason.contains("no resource type `aws_iam_role`"));
        assert_eq!(m.data_sources, ["data.aws_ami.debian"]);
        assert!(m.hints.iter().any(|h| h.contains("aws_security_group.web[0]")), "{:?}", m.hints);
        assert_eq!(m.state.outputs["vpc"].value, Value::str("vpc-1"));
    }

    #[test]
    fn other_versions_and_garbage_are_refused_with_the_reason() {
        let e = TerraformState::read("s", r#"{"version": 3, "modules": []}"#).err().unwrap().to_string();
        assert!(e.contains("version 3") && e.contains("version 4"), "{e}");
        assert!(TerraformState::read("s", "not json").is_err());
        assert!(TerraformState::read("s", r#"{"serial": 1}"#).is_err());
        assert!(TerraformState::read("s", r#"{"version": 4, "resources": [{"mode": 1}]}"#).is_err());
    }

    #[test]
    fn module_instance_paths_keep_their_keys() {
        assert_eq!(module_path("module.svc[\"a\"].module.x[0]").unwrap(), vec!["svc[\"a\"]".to_string(), "x[0]".into()]);
        assert!(module_path("module.").is_err());
    }

    #[test]
    fn provider_addresses() {
        assert_eq!(
            provider_key("provider[\"registry.terraform.io/hashicorp/aws\"]", "aws_vpc"),
            ("aws".into(), "aws".into())
        );
        assert_eq!(provider_key("provider[\"registry.terraform.io/hashicorp/aws\"].west", "aws_vpc").1, "aws.west");
        assert_eq!(provider_key("module.a.provider.aws.east", "aws_vpc").1, "aws.east");
        assert_eq!(provider_key("", "aws_vpc").1, "aws");
    }
}
