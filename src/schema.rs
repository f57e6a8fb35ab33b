//! Resource schemas: the arguments and exported attributes of each type, and
//! the default plan derived from them.
//!
//! A leaf under the providers and the engine alike: a provider declares its
//! types with these, the engine's evaluation checks configuration against
//! them, and neither needs the other to do so. It imports only [`value`].
//!
//! [`value`]: crate::value

use crate::value::Value;

/// One argument or exported attribute of a resource type.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: &'static str,
    /// Must be set in the configuration.
    pub required: bool,
    /// Set by the provider (exported); may also be an optional argument.
    pub computed: bool,
    /// Never printed.
    pub sensitive: bool,
    /// A change replaces the resource.
    pub force_new: bool,
    /// The argument is a nested block (`ingress { ... }`), given as a list of objects.
    pub block: bool,
    /// The argument is a number: a string that reads as one (`ttl =
    /// "300"`) is converted, as Terraform converts it.
    pub number: bool,
}

impl Attribute {
    pub const fn arg(name: &'static str) -> Self {
        Attribute { name, required: false, computed: false, sensitive: false, force_new: false, block: false, number: false }
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    pub const fn block(mut self) -> Self {
        self.block = true;
        self
    }
    pub const fn number(mut self) -> Self {
        self.number = true;
        self
    }
    /// Exported only: not accepted as an argument.
    pub const fn out(name: &'static str) -> Self {
        Attribute::arg(name).computed()
    }
}

/// The schema of a resource or data source type.
#[derive(Debug, Clone)]
pub struct Schema {
    pub attributes: Vec<Attribute>,
    /// Names of exported attributes only (computed and not an argument).
    pub exported_only: Vec<&'static str>,
    /// The attribute saying how many seconds resolvers may cache the
    /// object (a DNS record's `ttl`), and what it is when null: when a
    /// record switches away from an old host, the host is kept that long
    /// before it is destroyed.
    pub cache_ttl: Option<(&'static str, u64)>,
}

impl Schema {
    pub fn new(attributes: Vec<Attribute>) -> Self {
        Schema { attributes, exported_only: Vec::new(), cache_ttl: None }
    }
    /// Names the attribute holding the object's cache TTL in seconds (see [`Schema::cache_ttl`]).
    pub fn with_cache_ttl(mut self, name: &'static str, default: u64) -> Self {
        self.cache_ttl = Some((name, default));
        self
    }
    /// The cache TTL of an object of this type, in seconds, when the type
    /// has one and `v` knows it.
    pub fn cache_ttl_of(&self, v: &Value) -> Option<u64> {
        let (name, default) = self.cache_ttl?;
        match v.get(name).map(Value::unmarked) {
            None | Some(Value::Null) => Some(default),
            Some(Value::Number(n)) if *n >= 0.0 && n.is_finite() => Some(*n as u64),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }
    /// Declares attributes that cannot be set in configuration.
    pub fn with_exported(mut self, names: &[&'static str]) -> Self {
        for n in names {
            self.attributes.push(Attribute::out(n));
            self.exported_only.push(n);
        }
        self
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn is_argument(&self, name: &str) -> bool {
        self.attribute(name).is_some() && !self.exported_only.contains(&name)
    }
    pub fn arguments(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| !self.exported_only.contains(&a.name))
    }
}

/// A provider's plan for one instance.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The state the resource will have after apply, with unknowns.
    pub after: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<String>,
    /// Remarks the plan must show (ownership, drift corrections, ...).
    pub notes: Vec<String>,
}

/// The default plan: the configuration, with every computed attribute the
/// configuration leaves unset carried over from the prior state, or unknown on
/// create; `requires_replace` lists the changed `force_new` arguments.
pub fn plan_from_schema(schema: &Schema, prior: Option<&Value>, config: &Value) -> Planned {
    let mut after = config.as_map().cloned().unwrap_or_default();
    let mut requires_replace = Vec::new();
    for attr in &schema.attributes {
        let configured = after.get(attr.name).is_some_and(|v| !v.is_null());
        if attr.computed && !configured {
            let carried = match prior {
                Some(p) if !(attr.force_new && replace_pending(schema, p, config)) => {
                    p.get(attr.name).cloned().unwrap_or(Value::Null)
                }
                _ => Value::Unknown,
            };
            after.insert(attr.name.to_string(), carried);
        } else if !after.contains_key(attr.name) {
            after.insert(attr.name.to_string(), Value::Null);
        }
        if let Some(p) = prior
            && attr.force_new
            && !attr.computed
        {
            let before = p.get(attr.name).unwrap_or(&Value::Null);
            let now = after.get(attr.name).unwrap_or(&Value::Null);
            if !now.is_known() || !before.same_as(now) {
                requires_replace.push(attr.name.to_string());
            }
        }
    }
    if !requires_replace.is_empty() {
        // A replacement gets fresh computed attributes.
        for attr in &schema.attributes {
            let configured = config.get(attr.name).is_some_and(|v| !v.is_null());
            if attr.computed && !configured {
                after.insert(attr.name.to_string(), Value::Unknown);
            }
        }
    }
    Planned { after: Value::Map(after), requires_replace, notes: Vec::new() }
}

fn replace_pending(schema: &Schema, prior: &Value, config: &Value) -> bool {
    schema.arguments().any(|a| {
        a.force_new && !a.computed && {
            let before = prior.get(a.name).unwrap_or(&Value::Null);
            let now = config.get(a.name).unwrap_or(&Value::Null);
            !now.is_known() || !before.same_as(now)
        }
    })
}
