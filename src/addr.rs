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
/// `["core"]` is `module.core`.
pub type ModulePath = Vec<String>;

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

impl FromStr for InstanceAddr {
    type Err = AddrParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError { input: input.to_string(), reason: reason.to_string() };
        let (body, key) = match input.find('[') {
            Some(i) if input.ends_with(']') => {
                let inner = &input[i + 1..input.len() - 1];
                let key = if let Ok(n) = inner.parse::<usize>() {
                    InstanceKey::Int(n)
                } else if inner.starts_with('"') {
                    let s: String =
                        serde_json::from_str(inner).map_err(|_| err("the key is not a valid quoted string"))?;
                    InstanceKey::Str(s)
                } else {
                    return Err(err("an instance key is a number or a quoted string"));
                };
                (&input[..i], key)
            }
            Some(_) => return Err(err("missing `]`")),
            None => (input, InstanceKey::None),
        };
        let parts: Vec<&str> = body.split('.').collect();
        let mut module = Vec::new();
        let mut i = 0;
        while i + 1 < parts.len() && parts[i] == "module" {
            if !is_ident(parts[i + 1]) {
                return Err(err("a module name must be an identifier"));
            }
            module.push(parts[i + 1].to_string());
            i += 2;
        }
        let rest = &parts[i..];
        let (mode, rest) = match rest {
            ["data", rest @ ..] => (Mode::Data, rest),
            rest => (Mode::Managed, rest),
        };
        match rest {
            [type_, name] if is_ident(type_) && is_ident(name) => Ok(InstanceAddr {
                resource: ResourceAddr::new(module, mode, type_, name),
                key,
            }),
            _ => Err(err("expected `TYPE.NAME`, optionally after `module.NAME.` and `data.`")),
        }
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
        ] {
            let a: InstanceAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "aws_instance", "a.b.c", "x.y[", "x.y[abc]", "module..x.y", "1x.y"] {
            assert!(s.parse::<InstanceAddr>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn bare_resource_matches_all_instances() {
        let all: InstanceAddr = "berth_data.n".parse().unwrap();
        let one: InstanceAddr = "berth_data.n[3]".parse().unwrap();
        assert!(one.matches(&all));
        assert!(!all.matches(&one));
    }
}
