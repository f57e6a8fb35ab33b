//! Typed resource addresses.
//!
//! Every stage after configuration names resources by address:
//! `aws_instance.search`, `data.aws_ami.debian`, `module.core.aws_instance.web[0]`,
//! `berth_data.node["a"]`. Addresses are values with `Display` and `FromStr`,
//! never strings passed around; state and plan files store their `Display` form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Managed,
    Data,
}

/// The key of one instance of a resource with `count` or `for_each`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum InstanceKey {
    #[default]
    None,
    Int(usize),
    Str(String),
}

/// A module's position in the tree of calls: `[]` is the root,
/// `["core"]` is `module.core`. A step of a call with `count` or
/// `for_each` names one instance: its call name followed by the key as
/// written in an address, `svc["a"]` or `svc[0]` (see [`module_step`] and
/// [`split_step`]); the configuration's own modules use the bare name.
pub type ModulePath = Vec<String>;

/// The path step of instance `key` of the module call `name`.
pub fn module_step(name: &str, key: &InstanceKey) -> String {
    format!("{name}{key}")
}

/// A path step's call name and instance key: `svc["a"]` → (`svc`, `"a"`).
pub fn split_step(step: &str) -> (&str, InstanceKey) {
    match step.find('[') {
        Some(i) => (&step[..i], parse_key(&step[i + 1..step.len() - 1]).unwrap_or_default()),
        None => (step, InstanceKey::None),
    }
}

/// The key inside `[...]`: a number or a JSON-quoted string.
fn parse_key(inner: &str) -> Option<InstanceKey> {
    if let Ok(n) = inner.parse::<usize>() {
        Some(InstanceKey::Int(n))
    } else if inner.starts_with('"') {
        serde_json::from_str(inner).ok().map(InstanceKey::Str)
    } else {
        None
    }
}

/// The configuration module a module instance path belongs to: its keys
/// dropped.
pub fn static_path(path: &ModulePath) -> ModulePath {
    path.iter().map(|s| split_step(s).0.to_string()).collect()
}

/// A resource block: all its instances.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddr {
    pub module: ModulePath,
    pub mode: Mode,
    pub type_: String,
    pub name: String,
}

/// One instance of a resource block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceAddr {
    pub resource: ResourceAddr,
    pub key: InstanceKey,
}

impl ResourceAddr {
    pub fn new(module: ModulePath, mode: Mode, type_: &str, name: &str) -> Self {
        ResourceAddr { module, mode, type_: type_.to_string(), name: name.to_string() }
    }

    pub fn instance(&self, key: InstanceKey) -> InstanceAddr {
        InstanceAddr { resource: self.clone(), key }
    }

    /// The provider name implied by the type: `aws_instance` → `aws`.
    pub fn provider_name(&self) -> &str {
        match self.type_.as_str() {
            // Terraform's built-in `terraform_data` and the null provider's
            // `null_resource` are berth's own built-ins.
            "terraform_data" | "null_resource" => "berth",
            t => t.split('_').next().unwrap_or(t),
        }
    }
}

impl InstanceAddr {
    /// True when `self` is `other`, or an instance of the resource `other` names
    /// without a key (how `--target aws_instance.web` selects every instance).
    pub fn matches(&self, other: &InstanceAddr) -> bool {
        self.resource == other.resource && (other.key == InstanceKey::None || self.key == other.key)
    }
}

fn write_module(f: &mut fmt::Formatter<'_>, module: &ModulePath) -> fmt::Result {
    for m in module {
        write!(f, "module.{m}.")?;
    }
    Ok(())
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_module(f, &self.module)?;
        if self.mode == Mode::Data {
            f.write_str("data.")?;
        }
        write!(f, "{}.{}", self.type_, self.name)
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::None => Ok(()),
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{}]", serde_json::Value::String(s.clone())),
        }
    }
}

impl fmt::Display for InstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.resource, self.key)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid resource address `{input}`: {reason}")]
pub struct AddrParseError {
    pub input: String,
    pub reason: String,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads `[KEY]` at the start of `rest`, returning the key and what
/// follows; `Ok(None)` when `rest` does not start with `[`.
fn take_key(rest: &str) -> Result<Option<(InstanceKey, &str)>, &'static str> {
    let Some(body) = rest.strip_prefix('[') else { return Ok(None) };
    // A quoted key may hold `]` and `.`: find the end of the JSON string.
    let end = if body.starts_with('"') {
        let mut escaped = false;
        let mut close = None;
        for (i, c) in body.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    close = Some(i + 1);
                    break;
                }
                _ => {}
            }
        }
        close.ok_or("the key is not a valid quoted string")?
    } else {
        body.find(']').ok_or("missing `]`")?
    };
    if !body[end..].starts_with(']') {
        return Err("missing `]`");
    }
    let inner = &body[..end];
    let key = parse_key(inner).ok_or(if inner.starts_with('"') {
        "the key is not a valid quoted string"
    } else {
        "an instance key is a number or a quoted string"
    })?;
    Ok(Some((key, &body[end + 1..])))
}

/// Reads an identifier at the start of `rest`.
fn take_ident(rest: &str) -> (&str, &str) {
    let end = rest.find(|c: char| c == '.' || c == '[').unwrap_or(rest.len());
    (&rest[..end], &rest[end..])
}

/// Reads `module.NAME[KEY].` steps; returns the module path and the rest.
fn take_module_path(input: &str) -> Result<(ModulePath, &str), &'static str> {
    let mut module = Vec::new();
    let mut rest = input;
    while let Some(after) = rest.strip_prefix("module.") {
        let (name, after) = take_ident(after);
        if !is_ident(name) {
            return Err("a module name must be an identifier");
        }
        let (step, after) = match take_key(after)? {
            Some((key, after)) => (module_step(name, &key), after),
            None => (name.to_string(), after),
        };
        module.push(step);
        match after.strip_prefix('.') {
            Some(a) => rest = a,
            None if after.is_empty() => return Ok((module, after)),
            None => return Err("expected `.` after a module step"),
        }
    }
    Ok((module, rest))
}

/// `module.a["k"].module.b` → `["a[\"k\"]", "b"]`, as Terraform's state
/// writes a module instance's address.
pub fn parse_module_path(input: &str) -> Result<ModulePath, AddrParseError> {
    let err = |reason: &str| AddrParseError { input: input.to_string(), reason: reason.to_string() };
    match take_module_path(input).map_err(err)? {
        (module, "") => Ok(module),
        _ => Err(err("expected `module.NAME`, optionally with `[KEY]`, repeated")),
    }
}

/// A `--target`: a resource instance, a resource, or a module instance
/// (`module.svc["a"]`, every resource in it) or module call (`module.svc`,
/// every instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetAddr {
    Instance(InstanceAddr),
    Module(ModulePath),
}

impl TargetAddr {
    /// True when the target selects `addr`.
    pub fn selects(&self, addr: &InstanceAddr) -> bool {
        match self {
            TargetAddr::Instance(t) => addr.matches(t),
            TargetAddr::Module(m) => module_matches(&addr.resource.module, m),
        }
    }
}

/// True when the module instance `path` is `target` or inside it; a step
/// of `target` without a key selects every instance of that call.
pub fn module_matches(path: &ModulePath, target: &ModulePath) -> bool {
    path.len() >= target.len()
        && path.iter().zip(target).all(|(p, t)| p == t || (!t.contains('[') && split_step(p).0 == t))
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Instance(a) => write!(f, "{a}"),
            TargetAddr::Module(m) => {
                let steps: Vec<String> = m.iter().map(|s| format!("module.{s}")).collect();
                f.write_str(&steps.join("."))
            }
        }
    }
}

impl FromStr for TargetAddr {
    type Err = AddrParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError { input: input.to_string(), reason: reason.to_string() };
        let (module, rest) = take_module_path(input).map_err(err)?;
        if rest.is_empty() && !module.is_empty() {
            return Ok(TargetAddr::Module(module));
        }
        input.parse().map(TargetAddr::Instance)
    }
}

impl FromStr for InstanceAddr {
    type Err = AddrParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError { input: input.to_string(), reason: reason.to_string() };
        let (module, rest) = take_module_path(input).map_err(err)?;
        let (mode, rest) = match rest.strip_prefix("data.") {
            Some(r) => (Mode::Data, r),
            None => (Mode::Managed, rest),
        };
        let (type_, rest) = take_ident(rest);
        let shape = "expected `TYPE.NAME`, optionally after `module.NAME.` and `data.`";
        let Some(rest) = rest.strip_prefix('.') else { return Err(err(shape)) };
        let (name, rest) = take_ident(rest);
        if !is_ident(type_) || !is_ident(name) {
            return Err(err(shape));
        }
        let (key, rest) = match take_key(rest).map_err(err)? {
            Some((k, r)) => (k, r),
            None => (InstanceKey::None, rest),
        };
        if !rest.is_empty() {
            return Err(err(if rest.starts_with('[') || key != InstanceKey::None { "unexpected text after the instance key" } else { shape }));
        }
        Ok(InstanceAddr { resource: ResourceAddr::new(module, mode, type_, name), key })
    }
}

impl FromStr for ResourceAddr {
    type Err = AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let inst: InstanceAddr = s.parse()?;
        if inst.key != InstanceKey::None {
            return Err(AddrParseError { input: s.to_string(), reason: "a resource address has no instance key".into() });
        }
        Ok(inst.resource)
    }
}

macro_rules! serde_via_display {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_display!(InstanceAddr);
serde_via_display!(ResourceAddr);
serde_via_display!(TargetAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "aws_instance.search",
            "data.aws_ami.debian",
            "module.core.aws_instance.web[0]",
            "module.a.module.b.data.x_y.z[\"k.e y\"]",
            "berth_data.n[12]",
            "module.svc[\"a.b]\"].berth_data.host",
            "module.svc[0].module.inner[\"x\"].berth_data.h[\"k\"]",
        ] {
            let a: InstanceAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "aws_instance", "a.b.c", "x.y[", "x.y[abc]", "module..x.y", "1x.y", "module.svc[a].x.y", "module.svc[\"a\".x.y", "x.y[0]z"] {
            assert!(s.parse::<InstanceAddr>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn module_targets() {
        let t: TargetAddr = "module.svc[\"a\"]".parse().unwrap();
        assert_eq!(t, TargetAddr::Module(vec!["svc[\"a\"]".into()]));
        let a: InstanceAddr = "module.svc[\"a\"].berth_data.h".parse().unwrap();
        let b: InstanceAddr = "module.svc[\"b\"].berth_data.h".parse().unwrap();
        assert!(t.selects(&a) && !t.selects(&b));
        let all: TargetAddr = "module.svc".parse().unwrap();
        assert!(all.selects(&a) && all.selects(&b));
        assert_eq!(parse_module_path("module.a[\"k.x\"].module.b").unwrap(), vec!["a[\"k.x\"]".to_string(), "b".into()]);
        assert!(parse_module_path("module.a.x").is_err());
        assert_eq!(split_step("svc[\"a\"]"), ("svc", InstanceKey::Str("a".into())));
        assert_eq!(static_path(&vec!["svc[0]".into(), "in".into()]), vec!["svc".to_string(), "in".into()]);
    }

    #[test]
    fn bare_resource_matches_all_instances() {
        let all: InstanceAddr = "berth_data.n".parse().unwrap();
        let one: InstanceAddr = "berth_data.n[3]".parse().unwrap();
        assert!(one.matches(&all));
        assert!(!all.matches(&one));
    }
}
