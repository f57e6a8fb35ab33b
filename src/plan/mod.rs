//! The plan: a serializable value saying what apply will do.
//!
//! A plan names the state it was made against (lineage and serial) and a
//! digest of the configuration; `berth apply PLANFILE` refuses a plan whose
//! state or configuration moved since ("stale"), or one that errored: the
//! rules live here, next to the value ([`Plan::can_apply`]).
//!
//! The engine ([`crate::engine::plan()`]) builds plans; [`render`] shows them,
//! and [`markdown`] shows them to the reviewers of a pull request.
//! This module is the value only: it imports the leaves (addresses, values)
//! and nothing of the engine, configuration or state.

pub mod markdown;
pub mod render;

use crate::addr::{InstanceAddr, ResourceAddr};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Read,
    Update,
    /// Replace: destroy the old object, then create the new one.
    DeleteThenCreate,
    /// Replace under `create_before_destroy`: create, switch dependents, destroy.
    CreateThenDelete,
    Delete,
}

impl Action {
    pub fn is_replace(self) -> bool {
        matches!(self, Action::DeleteThenCreate | Action::CreateThenDelete)
    }
    pub fn creates(self) -> bool {
        matches!(self, Action::Create | Action::DeleteThenCreate | Action::CreateThenDelete)
    }
    pub fn deletes(self) -> bool {
        matches!(self, Action::Delete | Action::DeleteThenCreate | Action::CreateThenDelete)
    }
    /// The symbol plans print: `+`, `~`, `-/+`, `+/-`, `-`, `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Read => "<=",
            Action::Update => "~",
            Action::DeleteThenCreate => "-/+",
            Action::CreateThenDelete => "+/-",
            Action::Delete => "-",
        }
    }
}

/// A value with its sensitive marks stored beside it, so plan files can hold
/// marked values without ever writing a mark into the value.
mod marked {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Repr {
        value: Value,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sensitive: Vec<String>,
    }

    pub fn serialize<S: Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(|v| Repr { value: v.clone(), sensitive: v.sensitive_paths() }).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        let r: Option<Repr> = Option::deserialize(d)?;
        Ok(r.map(|r| r.value.mark_paths(&r.sensitive)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceChange {
    pub addr: InstanceAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<String>,
    pub provider: String,
    pub action: Action,
    #[serde(with = "marked", default)]
    pub before: Option<Value>,
    #[serde(with = "marked", default)]
    pub after: Option<Value>,
    /// Attributes whose change forces the replacement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_paths: Vec<String>,
    /// Why this change happens, when not obvious from the diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default)]
    pub create_before_destroy: bool,
    /// The generation the prior object had (0 when there is none).
    #[serde(default)]
    pub generation: u64,
    /// The id of the object this change brings under berth (an `import`
    /// block, `berth import`): `before` is the object as read, which the
    /// apply records first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
    /// For a change that destroys an old object after its dependents
    /// switched away from it (a create-before-destroy replacement, a
    /// deposed object): how long, in milliseconds, the old object is kept
    /// first — the longest TTL of the DNS records that switched, plus the
    /// resource's `lifecycle { drain }`. Clients keep resolved addresses
    /// that long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_ms: Option<u64>,
    /// The wave of a rolling replacement (`lifecycle { rolling }`) this
    /// change belongs to: a wave starts once the one before it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<Wave>,
    /// For a create of an object found deleted outside berth: that object
    /// as last recorded. The create replaces it, as far as anything that
    /// followed the old object is concerned (the `on_replace` hooks, a
    /// watcher's heal).
    #[serde(with = "marked", default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<Value>,
}

/// One wave of a rolling replacement: `index` of `of`, counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub index: usize,
    pub of: usize,
}

/// A drain as plans and progress show it: `60 s`, `1.5 s`, `2 min 5 s`.
pub fn drain_text(ms: u64) -> String {
    let (min, rest) = (ms / 60_000, ms % 60_000);
    let secs = if rest % 1000 == 0 { format!("{} s", rest / 1000) } else { format!("{} s", rest as f64 / 1000.0) };
    match (min, rest) {
        (0, _) => secs,
        (m, 0) => format!("{m} min"),
        (m, _) => format!("{m} min {secs}"),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataRead {
    pub addr: InstanceAddr,
    pub provider: String,
    #[serde(with = "marked", default)]
    pub value: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    #[serde(with = "marked", default)]
    pub before: Option<Value>,
    #[serde(with = "marked", default)]
    pub after: Option<Value>,
    pub sensitive: bool,
}

/// How an inventory file will change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InventoryChange {
    pub name: String,
    pub path: String,
    /// Unified diff; empty when the file's content stays the same.
    pub diff: String,
    /// True when the content can only be known after apply.
    pub pending: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub berth_version: String,
    pub lineage: String,
    /// Serial of the state the plan was made against; `None` when there was no state yet.
    pub prior_serial: Option<u64>,
    pub config_digest: String,
    pub workspace: String,
    pub destroy: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::addr::TargetAddr>,
    /// Root variable values the plan was made with; apply uses the same.
    #[serde(default, with = "marked_map")]
    pub variables: BTreeMap<String, Value>,
    pub changes: Vec<ResourceChange>,
    /// Data sources read while planning, with their providers: apply uses
    /// exactly these values and records them in the state.
    #[serde(default)]
    pub data: Vec<DataRead>,
    pub outputs: Vec<OutputChange>,
    #[serde(default)]
    pub inventories: Vec<InventoryChange>,
    /// Resource-level dependencies of every resource the plan touches, for the apply order.
    #[serde(default)]
    pub dependencies: BTreeMap<ResourceAddr, Vec<ResourceAddr>>,
    /// Narrower dependencies of single instances: for an instance, the
    /// instances it names of a resource it refers to only by a key fixed per
    /// instance (`aws_instance.host[count.index]`). The apply walk waits for
    /// those instances of that resource and no others, so a failed
    /// `aws_instance.host[2]` skips `aws_route53_record.host[2]` only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_dependencies: BTreeMap<InstanceAddr, Vec<InstanceAddr>>,
    /// Resource blocks written for imported objects that had none
    /// (`plan --generate-config-out`), as HCL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generated_config: String,
    pub errored: bool,
}

mod marked_map {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Repr {
        value: Value,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sensitive: Vec<String>,
    }

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Value>, s: S) -> Result<S::Ok, S::Error> {
        let r: BTreeMap<&String, Repr> =
            m.iter().map(|(k, v)| (k, Repr { value: v.clone(), sensitive: v.sensitive_paths() })).collect();
        r.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
        let r: BTreeMap<String, Repr> = BTreeMap::deserialize(d)?;
        Ok(r.into_iter().map(|(k, r)| (k, r.value.mark_paths(&r.sensitive))).collect())
    }
}

/// Counts for the closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Objects brought under berth (`import` blocks, `berth import`).
    pub import: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Summary {
    /// `1 to import, 2 to add, 0 to change, 1 to destroy`, as Terraform
    /// words it (imports only when there are some).
    pub fn counts(&self) -> String {
        let imports = if self.import > 0 { format!("{} to import, ", self.import) } else { String::new() };
        format!("{imports}{} to add, {} to change, {} to destroy", self.add, self.change, self.destroy)
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            if c.import.is_some() {
                s.import += 1;
            }
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::DeleteThenCreate | Action::CreateThenDelete => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::NoOp | Action::Read => {}
            }
        }
        s
    }

    /// True when apply would change anything (resources, outputs or inventories).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp || c.import.is_some())
            || self.outputs.iter().any(|o| match (&o.before, &o.after) {
                (Some(a), Some(b)) => !a.same_as(b) || a.is_sensitive() != b.is_sensitive(),
                (None, None) => false,
                _ => true,
            })
            || self.inventories.iter().any(|i| !i.diff.is_empty() || i.pending)
    }

    pub fn to_file(&self) -> String {
        serde_json::to_string(self).expect("plan serializes")
    }

    /// Whether this plan may be applied to the configuration of digest
    /// `config_digest` and the stored state (`None` when there is none, else
    /// its lineage and serial): only when it did not error and neither moved
    /// since it was made.
    pub fn can_apply(&self, config_digest: &str, state: Option<(&str, u64)>) -> Result<(), Refusal> {
        if self.errored {
            return Err(Refusal::Errored);
        }
        self.check_config(config_digest)?;
        self.check_state(state)
    }

    /// Refuses the plan when the configuration changed since it was made.
    pub fn check_config(&self, config_digest: &str) -> Result<(), Refusal> {
        if config_digest != self.config_digest {
            return Err(Refusal::ConfigChanged);
        }
        Ok(())
    }

    /// Refuses the plan when the state (its lineage and serial, `None` when
    /// there is none) is not the one it was made against.
    pub fn check_state(&self, state: Option<(&str, u64)>) -> Result<(), Refusal> {
        let stale = match (state, self.prior_serial) {
            (None, None) => false,
            (Some((lineage, serial)), Some(prior)) => lineage != self.lineage || serial != prior,
            _ => true,
        };
        if stale {
            let now = state.map(|(l, s)| format!("serial {s} of lineage {l}")).unwrap_or_else(|| "no state".into());
            let then = self.prior_serial.map(|s| format!("serial {s} of lineage {}", self.lineage)).unwrap_or_else(|| "no state".into());
            return Err(Refusal::StateMoved { then, now });
        }
        Ok(())
    }
}

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this plan has errors and cannot be applied: fix them and plan again")]
    Errored,
    #[error("the saved plan is stale: the configuration changed since it was made; run `berth plan` again")]
    ConfigChanged,
    #[error("the saved plan is stale: it was made against {then}, and the state is now {now}; run `berth plan` again")]
    StateMoved { then: String, now: String },
    #[error("`{file}` is a plan of format {found}, and this berth reads format {FORMAT_VERSION}: make the plan again with this berth")]
    Format { file: String, found: u32 },
}

impl From<Refusal> for crate::diag::Diagnostic {
    fn from(r: Refusal) -> Self {
        crate::diag::Diagnostic::error(r.to_string())
    }
}
