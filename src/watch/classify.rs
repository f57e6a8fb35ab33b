//! What drifted, by class: the stored state against the refreshed one and
//! the plan made from it (the signals from status checks and scheduled
//! events are added by the cycle, which keeps their counters).
//!
//! Drift is reality moving away from what berth recorded: an object gone,
//! or read back different from its record, where the plan also wants to
//! change it (so a value that merely reads back in another form is not
//! drift). A plan change with no drift behind it is either a consequence
//! of drift upstream (a record following a host) or a configuration edit
//! not applied yet: neither is the watcher's to report.

use super::event::DriftClass;
use crate::addr::{InstanceAddr, Mode};
use crate::config::Config;
use crate::plan::{Action, Plan};
use crate::state::{ResourceState, State};
use crate::value::Value;
use std::collections::BTreeMap;

/// One drifted object.
#[derive(Clone, Debug)]
pub struct Finding {
    pub addr: InstanceAddr,
    pub class: DriftClass,
    /// The cloud id, as recorded.
    pub id: Option<String>,
    /// A DNS name: a record's own, or the one an owned record points at a host.
    pub name: Option<String>,
    pub message: String,
    /// The attributes that differ, as recorded and as read (sensitive
    /// values redacted).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// `lifecycle { watch = "notify" }`: reported, never healed.
    pub notify_only: bool,
    /// The inventory role a host is listed under, and its Kamal
    /// destination (filled in by the cycle).
    pub role: Option<String>,
    pub destination: Option<String>,
}

impl Finding {
    /// What healing it does: `replace`, `upsert`, or `none`.
    pub fn action(&self) -> &'static str {
        match self.class {
            DriftClass::DnsRecord => "upsert",
            c if replaces(c) => "replace",
            _ => "none",
        }
    }
}

/// Whether healing this class replaces a host (and so counts against the budget).
pub fn replaces(class: DriftClass) -> bool {
    matches!(class, DriftClass::InstanceMissing | DriftClass::InstanceImpaired | DriftClass::InstanceRetiring)
}

/// Whether a class means a host looks dead (for the short-circuit).
pub fn looks_dead(class: DriftClass) -> bool {
    matches!(class, DriftClass::InstanceMissing | DriftClass::InstanceImpaired)
}

/// A DNS record type, of any provider (`aws_route53_record`, `dns_a_record_set`).
pub fn is_record(type_: &str) -> bool {
    type_.contains("_record")
}

pub const INSTANCE: &str = "aws_instance";

/// The findings of one refresh and plan, sorted by address.
pub fn classify(stored: &State, refreshed: &State, plan: &Plan, config: &Config) -> Vec<Finding> {
    let changes: BTreeMap<&InstanceAddr, Action> = plan
        .changes
        .iter()
        .filter(|c| c.deposed.is_none() && !matches!(c.action, Action::NoOp | Action::Read))
        .map(|c| (&c.addr, c.action))
        .collect();
    let mut out = Vec::new();
    for r in stored.resources.values().filter(|r| r.deposed.is_none() && r.addr.resource.mode == Mode::Managed) {
        let Some(action) = changes.get(&r.addr) else { continue };
        let type_ = r.addr.resource.type_.as_str();
        let now = refreshed.get(&r.addr);
        let class = match now {
            None if type_ == INSTANCE => DriftClass::InstanceMissing,
            None if is_record(type_) => DriftClass::DnsRecord,
            None => DriftClass::AttrDrift,
            // A host a failed heal (or apply) left tainted: its replacement
            // is still due, so the drift stays open.
            Some(n) if n.attributes == r.attributes && r.tainted && action.is_replace() && type_ == INSTANCE => {
                DriftClass::InstanceImpaired
            }
            Some(n) if n.attributes == r.attributes => continue,
            Some(n) if type_ == INSTANCE && matches!(n.attributes.get_str("instance_state"), Some("stopped" | "stopping")) => {
                DriftClass::InstanceStopped
            }
            Some(_) if is_record(type_) => DriftClass::DnsRecord,
            Some(_) => DriftClass::AttrDrift,
        };
        let (before, after) = diff(r, now);
        let id = r.attributes.get_str("id").map(str::to_string);
        let message = match (class, now) {
            (DriftClass::InstanceImpaired, _) => {
                format!("`{}` ({}) is tainted: its create or health gate failed, and it is to be replaced", r.addr, id.as_deref().unwrap_or("?"))
            }
            (DriftClass::InstanceMissing, _) => format!("`{}` ({}) is terminated or gone", r.addr, id.as_deref().unwrap_or("?")),
            (DriftClass::InstanceStopped, _) => format!("`{}` ({}) was stopped outside berth", r.addr, id.as_deref().unwrap_or("?")),
            (DriftClass::DnsRecord, None) => format!("record `{}` was deleted outside berth", r.addr),
            (DriftClass::DnsRecord, Some(_)) => format!("record `{}` was changed outside berth", r.addr),
            (_, None) => format!("`{}` was deleted outside berth (the plan would {})", r.addr, verb(*action)),
            (_, Some(_)) => format!("`{}` differs from its configuration (the plan would {})", r.addr, verb(*action)),
        };
        let notify_only = config.resource(&r.addr.resource).is_some_and(|d| d.lifecycle.watch_notify_only);
        let name = record_name(&r.attributes).or_else(|| if type_ == INSTANCE { name_pointing_at(stored, r) } else { None });
        out.push(Finding { addr: r.addr.clone(), class, id, name, message, before, after, notify_only, role: None, destination: None });
    }
    out
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "create it again",
        Action::Update => "update it in place",
        Action::Delete => "delete it",
        a if a.is_replace() => "replace it",
        _ => "change it",
    }
}

fn record_name(v: &Value) -> Option<String> {
    v.get_str("fqdn").or_else(|| v.get_str("name")).map(|n| n.trim_end_matches('.').to_string())
}

/// The name of an owned record whose values include the host's private
/// address: the name its peers reach it by.
pub fn name_pointing_at(state: &State, host: &ResourceState) -> Option<String> {
    let ip = host.attributes.get_str("private_ip")?;
    state.resources.values().filter(|r| r.deposed.is_none() && is_record(&r.addr.resource.type_)).find_map(|r| {
        let values = r.attributes.get("records").or_else(|| r.attributes.get("addresses"))?;
        values.unmarked().as_list()?.iter().any(|v| v.unmarked().as_str() == Some(ip)).then(|| record_name(&r.attributes)).flatten()
    })
}

/// The top-level attributes that differ, recorded and read; sensitive ones
/// show as `(sensitive)`.
fn diff(stored: &ResourceState, now: Option<&ResourceState>) -> (Option<serde_json::Value>, Option<serde_json::Value>) {
    let shown = |r: &ResourceState, k: &str, v: &Value| -> serde_json::Value {
        let secret = v.is_sensitive() || r.sensitive.iter().any(|p| p == k || p.starts_with(&format!("{k}.")) || p.starts_with(&format!("{k}[")));
        if secret { serde_json::Value::String("(sensitive)".into()) } else { serde_json::to_value(v.unmarked()).unwrap_or_default() }
    };
    let Some(now) = now else {
        return (Some(serde_json::json!({ "id": stored.attributes.get_str("id") })), None);
    };
    let (Some(a), Some(b)) = (stored.attributes.as_map(), now.attributes.as_map()) else { return (None, None) };
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            before.insert(k.clone(), x.map(|v| shown(stored, k, v)).unwrap_or_default());
            after.insert(k.clone(), y.map(|v| shown(now, k, v)).unwrap_or_default());
        }
    }
    (Some(before.into()), Some(after.into()))
}
