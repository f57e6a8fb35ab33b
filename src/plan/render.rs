//! Shows a plan: human text like Terraform's, and a documented JSON form
//! (`docs/plan-json.md`). Sensitive values print as `(sensitive value)` and
//! are never written to JSON; multi-line strings are shown as unified diffs.

use super::*;
use crate::value::Value;
use std::fmt::Write;

fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// One value on one line.
fn show(v: &Value) -> String {
    match v {
        Value::Sensitive(_) => "(sensitive value)".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::String(s) if s.contains('\n') => format!("<<-EOT ({} lines)", s.lines().count()),
        other => other.to_string(),
    }
}

fn multiline(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) if s.contains('\n') => Some(s),
        _ => None,
    }
}

fn text_diff(before: &str, after: &str, indent: &str) -> String {
    let diff = similar::TextDiff::from_lines(before, after);
    let mut out = String::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                let line = change.value();
                let _ = write!(out, "{indent}{sign} {}", line.trim_end_matches('\n'));
                out.push('\n');
            }
        }
    }
    out
}

fn header(c: &ResourceChange) -> String {
    let addr = match &c.deposed {
        Some(d) => format!("{} (deposed object {d})", c.addr),
        None => c.addr.to_string(),
    };
    let what = match c.action {
        Action::Create => "will be created".to_string(),
        Action::Read => "will be read during apply".to_string(),
        Action::Update => "will be updated in-place".to_string(),
        Action::DeleteThenCreate => "must be replaced".to_string(),
        Action::CreateThenDelete => "must be replaced (create before destroy)".to_string(),
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp if c.import.is_some() => "will be imported".to_string(),
        Action::NoOp => "has no changes".to_string(),
    };
    let mut s = format!("  # {addr} {what}");
    if let Some(w) = c.wave {
        let _ = write!(s, ", wave {} of {}", w.index, w.of);
    }
    if let (Some(id), false) = (&c.import, c.action == Action::NoOp) {
        let _ = write!(s, "\n  # (imported from {})", q(id));
    }
    if let Some(r) = &c.reason {
        let _ = write!(s, "\n  # ({r})");
    }
    s
}

/// The body of one resource change: its header, notes, and the attribute
/// diff. Nested values (security group rules, routes, `vpc` blocks, tag
/// maps) are shown one attribute per line, as Terraform does, so a change to
/// one rule reads as one line rather than as two long ones.
pub(crate) fn render_change(out: &mut String, c: &ResourceChange) {
    let _ = writeln!(out, "{}", header(c));
    for n in &c.notes {
        let _ = writeln!(out, "  # note: {n}");
    }
    if let Some(ms) = c.drain_ms {
        let what = if c.deposed.is_some() { "the deposed object" } else { "old object" };
        let _ = writeln!(out, "  # note: {what} destroyed after a {} drain (clients may still use the addresses it served)", drain_text(ms));
    }
    let kind = if c.addr.resource.mode == crate::addr::Mode::Data { "data" } else { "resource" };
    let _ = writeln!(
        out,
        "{:>3} {kind} {} {} {{",
        c.action.symbol(),
        q(&c.addr.resource.type_),
        q(&c.addr.resource.name)
    );
    let empty = crate::value::Map::new();
    let before = c.before.as_ref().and_then(|v| v.as_map()).unwrap_or(&empty);
    let after = c.after.as_ref().and_then(|v| v.as_map()).unwrap_or(&empty);
    let forces = |k: &str| if c.replace_paths.iter().any(|p| p == k) { " # forces replacement" } else { "" };
    match c.action {
        Action::Create | Action::Read => whole_fields(out, 6, "+", after),
        Action::Delete => whole_fields(out, 6, "-", before),
        _ => {
            let unchanged = changed_fields(out, 6, before, after, &forces);
            if unchanged > 0 {
                let _ = writeln!(out, "        # ({unchanged} unchanged attribute{} hidden)", plural(unchanged));
            }
        }
    }
    let _ = writeln!(out, "    }}");
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A list of objects: nested blocks (`ingress`, `route`, `vpc`), one block each.
fn is_blocks(v: &Value) -> bool {
    matches!(v, Value::List(l) if !l.is_empty() && l.iter().all(|e| matches!(e, Value::Map(_))))
}

fn is_object(v: &Value) -> bool {
    matches!(v, Value::Map(m) if !m.is_empty())
}

/// A key as printed: bare when it is an identifier, quoted otherwise (tag
/// names such as `"kubernetes.io/role"`).
fn key_text(k: &str) -> String {
    let mut chars = k.chars();
    let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ident { k.to_string() } else { q(k) }
}

/// The width `=` signs align to: the longest key shown that is not a block.
fn width<'a>(keys: impl Iterator<Item = (&'a String, &'a Value, &'a Value)>) -> usize {
    keys.filter(|(_, b, a)| !(b.is_null() && a.is_null()) && !is_blocks(b) && !is_blocks(a))
        .map(|(k, _, _)| key_text(k).chars().count())
        .max()
        .unwrap_or(0)
}

fn same(a: &Value, b: &Value) -> bool {
    a.same_as(b) && a.is_sensitive() == b.is_sensitive() && a.is_known() == b.is_known()
}

/// Every non-null field of an object shown whole with one sign.
fn whole_fields(out: &mut String, pad: usize, sign: &str, m: &crate::value::Map) {
    let w = width(m.iter().map(|(k, v)| (k, v, &Value::Null)));
    for (k, v) in m {
        if !v.is_null() {
            whole(out, pad, sign, &key_text(k), w, v, "");
        }
    }
}

/// One value shown whole (created or destroyed): an object opens a brace
/// with one field per line, each block of a list of blocks is its own
/// `NAME { ... }`, anything else is one line.
fn whole(out: &mut String, pad: usize, sign: &str, key: &str, w: usize, v: &Value, tail: &str) {
    let p = " ".repeat(pad);
    match v {
        Value::List(l) if is_blocks(v) => {
            for e in l {
                let _ = writeln!(out, "{p}{sign} {key} {{{tail}");
                if let Value::Map(m) = e {
                    whole_fields(out, pad + 4, sign, m);
                }
                let _ = writeln!(out, "{p}  }}");
            }
        }
        Value::Map(m) if is_object(v) => {
            let _ = writeln!(out, "{p}{sign} {key:<w$} = {{{tail}");
            whole_fields(out, pad + 4, sign, m);
            let _ = writeln!(out, "{p}  }}");
        }
        _ => {
            let _ = writeln!(out, "{p}{sign} {key:<w$} = {}{tail}", show(v));
        }
    }
}

/// The fields of an object that changed, one per line, nested objects and
/// blocks opened; returns how many stayed the same (hidden).
fn changed_fields(
    out: &mut String,
    pad: usize,
    before: &crate::value::Map,
    after: &crate::value::Map,
    forces: &dyn Fn(&str) -> &'static str,
) -> usize {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let get = |m: &'_ crate::value::Map, k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let pairs: Vec<(&String, Value, Value)> = keys.iter().map(|k| (*k, get(before, k), get(after, k))).collect();
    // Aligned over the lines shown, not the hidden ones.
    let w = width(pairs.iter().filter(|(_, b, a)| !same(a, b)).map(|(k, b, a)| (*k, b, a)));
    let p = " ".repeat(pad);
    let mut unchanged = 0;
    for (k, b, a) in &pairs {
        if same(a, b) {
            if !(a.is_null() && b.is_null()) {
                unchanged += 1;
            }
            continue;
        }
        let key = key_text(k);
        let f = forces(k);
        if b.is_null() {
            whole(out, pad, "+", &key, w, a, f);
        } else if a.is_null() && !is_blocks(b) && !is_object(b) {
            let _ = writeln!(out, "{p}- {key:<w$} = {} -> null{f}", show(b));
        } else if a.is_null() {
            whole(out, pad, "-", &key, w, b, f);
        } else {
            changed_value(out, pad, &key, w, b, a, f);
        }
    }
    unchanged
}

/// One field whose value changed.
fn changed_value(out: &mut String, pad: usize, key: &str, w: usize, b: &Value, a: &Value, forces: &str) {
    let p = " ".repeat(pad);
    let blocks = |v: &Value| is_blocks(v) || matches!(v, Value::List(l) if l.is_empty());
    if let (Value::Map(bm), Value::Map(am)) = (b, a)
        && (is_object(b) || is_object(a))
    {
        let _ = writeln!(out, "{p}~ {key:<w$} = {{{forces}");
        let unchanged = changed_fields(out, pad + 4, bm, am, &|_| "");
        if unchanged > 0 {
            let _ = writeln!(out, "{p}      # ({unchanged} unchanged element{} hidden)", plural(unchanged));
        }
        let _ = writeln!(out, "{p}  }}");
        return;
    }
    if let (Value::List(bl), Value::List(al)) = (b, a)
        && blocks(b)
        && blocks(a)
    {
        // Blocks compare as a set, as rules and routes do: a block that
        // changed shows as the old one removed and the new one added.
        let mut unchanged = 0;
        for e in bl {
            if al.iter().any(|x| same(x, e)) {
                unchanged += 1;
            } else {
                whole(out, pad, "-", key, 0, &Value::List(vec![e.clone()]), forces);
            }
        }
        for e in al.iter().filter(|e| !bl.iter().any(|x| same(x, e))) {
            whole(out, pad, "+", key, 0, &Value::List(vec![e.clone()]), forces);
        }
        if unchanged > 0 {
            let _ = writeln!(out, "{p}  # ({unchanged} unchanged `{key}` block{} hidden)", plural(unchanged));
        }
        return;
    }
    if let (Some(bt), Some(at)) = (multiline(b), multiline(a))
        && !a.is_sensitive()
        && !b.is_sensitive()
    {
        let _ = writeln!(out, "{p}~ {key:<w$} = <<-EOT{forces}");
        out.push_str(&text_diff(bt, at, &" ".repeat(pad + 4)));
        let _ = writeln!(out, "{p}  EOT");
        return;
    }
    let _ = writeln!(out, "{p}~ {key:<w$} = {} -> {}{forces}", show(b), show(a));
}

/// The human plan, as `berth plan` prints it.
pub fn human(plan: &Plan) -> String {
    let mut out = String::new();
    let changes: Vec<&ResourceChange> =
        plan.changes.iter().filter(|c| c.action != Action::NoOp || c.import.is_some()).collect();
    let output_changes: Vec<&OutputChange> = plan
        .outputs
        .iter()
        .filter(|o| match (&o.before, &o.after) {
            (Some(a), Some(b)) => !a.same_as(b) || a.is_known() != b.is_known(),
            (None, None) => false,
            _ => true,
        })
        .collect();
    let inv: Vec<&InventoryChange> = plan.inventories.iter().filter(|i| !i.diff.is_empty() || i.pending).collect();
    if changes.is_empty() && output_changes.is_empty() && inv.is_empty() {
        out.push_str("No changes. The infrastructure matches the configuration.\n");
        return out;
    }
    if !changes.is_empty() {
        out.push_str("berth will perform the following actions:\n\n");
        for c in &changes {
            render_change(&mut out, c);
            out.push('\n');
        }
        let order: Vec<&ResourceChange> =
            changes.iter().copied().filter(|c| c.action == Action::CreateThenDelete).collect();
        if !order.is_empty() {
            out.push_str("Order of create-before-destroy replacements: new object created (and healthy, where it has a health check), dependents switched to it, inventory files rewritten, then the old object destroyed (after its drain, where it has one).\n\n");
        }
        rolls(&mut out, &changes);
    }
    if !output_changes.is_empty() {
        out.push_str("Changes to outputs:\n");
        for o in output_changes {
            let show_o = |v: &Value| if o.sensitive { "(sensitive value)".to_string() } else { show(v) };
            let line = match (&o.before, &o.after) {
                (None, Some(a)) => format!("  + {} = {}", o.name, show_o(a)),
                (Some(b), None) => format!("  - {} = {} -> null", o.name, show_o(b)),
                (Some(b), Some(a)) => format!("  ~ {} = {} -> {}", o.name, show_o(b), show_o(a)),
                (None, None) => continue,
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    if !inv.is_empty() {
        out.push_str("Changes to inventory files:\n");
        for i in inv {
            if i.pending {
                let _ = writeln!(out, "  ~ {} ({}): rewritten after apply with values known only then", i.path, i.name);
            }
            if !i.diff.is_empty() {
                let _ = writeln!(out, "  ~ {} ({}):", i.path, i.name);
                for l in i.diff.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        out.push('\n');
    }
    let s = plan.summary();
    let _ = writeln!(out, "Plan: {}.", s.counts());
    out
}

/// The waves of every rolling replacement, in order.
fn rolls(out: &mut String, changes: &[&ResourceChange]) {
    use std::collections::BTreeMap;
    let mut by_resource: BTreeMap<&crate::addr::ResourceAddr, BTreeMap<usize, Vec<&ResourceChange>>> = BTreeMap::new();
    for c in changes {
        if let Some(w) = c.wave {
            by_resource.entry(&c.addr.resource).or_default().entry(w.index).or_default().push(c);
        }
    }
    for (r, waves) in by_resource {
        let _ = writeln!(out, "Rolling replacement of {r}, in {} waves (each created, healthy, switched over, written to the inventories and drained before the next begins; a failed wave stops the roll):", waves.len());
        for (n, members) in &waves {
            let names: Vec<String> = members.iter().map(|c| c.addr.to_string()).collect();
            let drain = members.iter().filter_map(|c| c.drain_ms).max();
            let tail = drain.map(|ms| format!(" (old hosts destroyed after a {} drain)", drain_text(ms))).unwrap_or_default();
            let _ = writeln!(out, "  wave {n} of {}: {}{tail}", waves.len(), names.join(", "));
        }
        out.push('\n');
    }
}

/// The JSON plan (`berth plan --json`, `berth show --json`). Schema in
/// `docs/plan-json.md`. Sensitive values are replaced by null and flagged in
/// `*_sensitive`; unknowns are null and flagged in `after_unknown`.
pub fn json(plan: &Plan) -> serde_json::Value {
    fn redact(v: &Value) -> serde_json::Value {
        match v {
            Value::Sensitive(_) | Value::Unknown => serde_json::Value::Null,
            Value::List(l) | Value::Set(l) => serde_json::Value::Array(l.iter().map(redact).collect()),
            Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
            other => other.to_json(),
        }
    }
    fn mask(v: &Value, f: &dyn Fn(&Value) -> bool) -> serde_json::Value {
        match v {
            Value::List(l) | Value::Set(l) if !f(v) => {
                let inner: Vec<serde_json::Value> = l.iter().map(|x| mask(x, f)).collect();
                if inner.iter().all(|x| x == &serde_json::Value::Bool(false)) {
                    serde_json::Value::Bool(false)
                } else {
                    serde_json::Value::Array(inner)
                }
            }
            Value::Map(m) if !f(v) => {
                let inner: serde_json::Map<String, serde_json::Value> =
                    m.iter().map(|(k, x)| (k.clone(), mask(x, f))).filter(|(_, x)| x != &serde_json::Value::Bool(false)).collect();
                if inner.is_empty() { serde_json::Value::Bool(false) } else { serde_json::Value::Object(inner) }
            }
            other => serde_json::Value::Bool(f(other)),
        }
    }
    let is_unknown = |v: &Value| matches!(v, Value::Unknown);
    let is_sensitive = |v: &Value| matches!(v, Value::Sensitive(_));
    let changes: Vec<serde_json::Value> = plan
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "address": c.addr.to_string(),
                "module_address": c.addr.resource.module.iter().map(|m| format!("module.{m}")).collect::<Vec<_>>().join("."),
                "mode": if c.addr.resource.mode == crate::addr::Mode::Data { "data" } else { "managed" },
                "type": c.addr.resource.type_,
                "name": c.addr.resource.name,
                "index": match &c.addr.key {
                    crate::addr::InstanceKey::None => serde_json::Value::Null,
                    crate::addr::InstanceKey::Int(i) => serde_json::json!(i),
                    crate::addr::InstanceKey::Str(s) => serde_json::json!(s),
                },
                "deposed": c.deposed,
                "provider": c.provider,
                "action": c.action,
                "before": c.before.as_ref().map(redact),
                "after": c.after.as_ref().map(redact),
                "after_unknown": c.after.as_ref().map(|v| mask(v, &is_unknown)).unwrap_or(serde_json::Value::Bool(false)),
                "before_sensitive": c.before.as_ref().map(|v| mask(v, &is_sensitive)).unwrap_or(serde_json::Value::Bool(false)),
                "after_sensitive": c.after.as_ref().map(|v| mask(v, &is_sensitive)).unwrap_or(serde_json::Value::Bool(false)),
                "replace_paths": c.replace_paths,
                "reason": c.reason,
                "notes": c.notes,
                "import_id": c.import,
                "drain_ms": c.drain_ms,
                "wave": c.wave,
            })
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = plan
        .outputs
        .iter()
        .map(|o| {
            let v = |x: &Option<Value>| match x {
                Some(_) if o.sensitive => serde_json::Value::Null,
                Some(v) => redact(v),
                None => serde_json::Value::Null,
            };
            (
                o.name.clone(),
                serde_json::json!({
                    "before": v(&o.before),
                    "after": v(&o.after),
                    "after_unknown": o.after.as_ref().is_some_and(|a| !a.is_known()),
                    "sensitive": o.sensitive,
                }),
            )
        })
        .collect();
    let s = plan.summary();
    serde_json::json!({
        "format_version": "1",
        "berth_version": plan.berth_version,
        "lineage": plan.lineage,
        "prior_serial": plan.prior_serial,
        "workspace": plan.workspace,
        "destroy": plan.destroy,
        "errored": plan.errored,
        "resource_changes": changes,
        "output_changes": outputs,
        "inventory_changes": plan.inventories,
        "summary": {"import": s.import, "add": s.add, "change": s.change, "destroy": s.destroy},
    })
}
