//! The values expressions see during a walk.
//!
//! The planner and the apply walk both evaluate configuration against a
//! [`World`]: root variables, each resource instance's current value (from
//! state, from the plan, or from apply results), and lazily evaluated locals,
//! module variables and outputs. Lazy evaluation is sound because the walk
//! only evaluates a declaration after everything it depends on is settled.

use crate::addr::{InstanceKey, Mode, ModulePath, ResourceAddr};
use crate::config::eval::{self, Ctx, PathStep, Scope, walk_path};
use crate::config::refs::Target;
use crate::config::{BodyDecl, Config, DynamicDecl, ResourceDecl};
use crate::diag::{Diagnostic, Diagnostics, Span, suggest};
use crate::schema::Schema;
use crate::value::{Map, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::collections::{BTreeMap, HashMap, HashSet};

pub struct World<'a> {
    pub config: &'a Config,
    pub root_vars: BTreeMap<String, Value>,
    pub workspace: String,
    /// For `berth validate`: references the graph already reported resolve
    /// to unknown instead of failing again.
    pub lenient: bool,
    instances: RefCell<HashMap<ResourceAddr, BTreeMap<InstanceKey, Value>>>,
    /// Memoized locals, module variables and outputs, each with the
    /// resources its value was read from (directly or through other
    /// memoized values).
    cache: RefCell<HashMap<CacheKey, (Rc<Value>, Rc<HashSet<ResourceAddr>>)>>,
    /// For each resource, the memoized values read from it: what a change
    /// to one of its instances invalidates, and nothing else. A walk sets
    /// instances one by one while it evaluates the others, so forgetting
    /// every derived value on each change would re-evaluate a local that
    /// reads N hosts once per step: N² for one `local.ips[count.index]`.
    readers: RefCell<HashMap<ResourceAddr, HashSet<CacheKey>>>,
    /// The resources read by each memoized value under evaluation, innermost
    /// last.
    reading: RefCell<Vec<HashSet<ResourceAddr>>>,
    /// Declarations being evaluated right now: meeting one again means a
    /// reference cycle, which must be an error rather than endless recursion
    /// (`berth validate` evaluates even after the graph reported a cycle).
    busy: RefCell<HashSet<CacheKey>>,
    /// See [`World::existing_only`].
    existing_only: Cell<bool>,
}

/// How many locals, variables and outputs may be under evaluation at once,
/// each waiting on the next. Evaluation recurses through references, and a
/// chain a few hundred long overflows the stack of a debug build.
const MAX_DEPTH: usize = 100;

type CacheKey = (ModulePath, u8, String);

/// A copy of a value for an expression, counted by its size (the elements
/// of a list or map, one for anything else) for the linearity guard.
fn copied(v: &Value) -> Value {
    let size = match v {
        Value::List(l) | Value::Set(l) => l.len(),
        Value::Map(m) => m.len(),
        _ => 1,
    };
    crate::telemetry::work::values_copied(size);
    v.clone()
}

const VAR: u8 = 0;
const LOCAL: u8 = 1;
const OUTPUT: u8 = 2;

impl<'a> World<'a> {
    pub fn new(config: &'a Config, root_vars: BTreeMap<String, Value>, workspace: &str) -> Self {
        World {
            config,
            root_vars,
            workspace: workspace.to_string(),
            lenient: false,
            instances: RefCell::new(HashMap::new()),
            cache: RefCell::new(HashMap::new()),
            readers: RefCell::new(HashMap::new()),
            reading: RefCell::new(Vec::new()),
            busy: RefCell::new(HashSet::new()),
            existing_only: Cell::new(false),
        }
    }

    /// Runs `f` with a `count` resource seen as the list of the instances
    /// that exist, without the unknown placeholders of those that do not
    /// (yet): for the outputs and inventories written at the end of an
    /// apply, which list what exists even when some creates failed.
    pub fn existing_only<T>(&self, f: impl FnOnce() -> T) -> T {
        self.existing_only.set(true);
        self.forget_derived();
        let r = f();
        self.existing_only.set(false);
        self.forget_derived();
        r
    }

    pub fn set_instance(&self, addr: &ResourceAddr, key: InstanceKey, value: Value) {
        self.changed(addr);
        self.instances.borrow_mut().entry(addr.clone()).or_default().insert(key, value);
    }

    pub fn remove_instance(&self, addr: &ResourceAddr, key: &InstanceKey) {
        self.changed(addr);
        if let Some(m) = self.instances.borrow_mut().get_mut(addr) {
            m.remove(key);
        }
    }

    /// Forgets every instance of a resource (before its instances are re-planned).
    pub fn clear_resource(&self, addr: &ResourceAddr) {
        self.changed(addr);
        self.instances.borrow_mut().remove(addr);
    }

    /// Forgets the memoized values read from `addr`, which is changing.
    fn changed(&self, addr: &ResourceAddr) {
        let Some(keys) = self.readers.borrow_mut().remove(addr) else { return };
        let mut cache = self.cache.borrow_mut();
        for k in keys {
            cache.remove(&k);
        }
    }

    /// Notes that the memoized value under evaluation reads `addr`.
    fn note_read(&self, addr: &ResourceAddr) {
        if let Some(frame) = self.reading.borrow_mut().last_mut() {
            frame.insert(addr.clone());
        }
    }


    /// Every instance value the walk knows, in address order.
    pub fn all_instances(&self) -> Vec<(ResourceAddr, InstanceKey, Value)> {
        let inst = self.instances.borrow();
        let mut out: Vec<(ResourceAddr, InstanceKey, Value)> = inst
            .iter()
            .flat_map(|(a, m)| m.iter().map(move |(k, v)| (a.clone(), k.clone(), v.clone())))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    pub fn instance(&self, addr: &ResourceAddr, key: &InstanceKey) -> Option<Value> {
        self.instances.borrow().get(addr).and_then(|m| m.get(key).cloned())
    }

    fn ctx<'s>(&'s self, module: &'s ModulePath) -> Ctx<'s> {
        let dir = self.config.modules.get(module).map(|m| m.dir.as_path()).unwrap_or(std::path::Path::new("."));
        Ctx::new(self, module, dir)
    }

    /// A context for evaluating a resource instance's arguments.
    pub fn instance_ctx<'s>(&'s self, module: &'s ModulePath, key: &InstanceKey, each_value: Option<Value>) -> Ctx<'s> {
        let mut ctx = self.ctx(module);
        match key {
            InstanceKey::Int(i) => ctx.count_index = Some(Value::Number(*i as f64)),
            InstanceKey::Str(k) => ctx.each = Some((Value::String(k.clone()), each_value.unwrap_or(Value::Null))),
            InstanceKey::None => {}
        }
        ctx
    }

    /// Evaluates `count` / `for_each`: the instance keys, with `each.value`
    /// for `for_each`. Both must be known when planning.
    pub fn expand(&self, decl: &ResourceDecl) -> Result<Vec<(InstanceKey, Option<Value>)>, Diagnostic> {
        self.expand_meta(&decl.addr.module, decl.count.as_ref(), decl.for_each.as_ref(), &decl.addr)
    }

    /// [`World::expand`] for the `count` or `for_each` of anything
    /// (a resource, a module call) declared in `module`; `what` names it in
    /// messages.
    pub fn expand_meta(
        &self,
        module: &ModulePath,
        count: Option<&crate::config::Expr>,
        for_each: Option<&crate::config::Expr>,
        what: &dyn std::fmt::Display,
    ) -> Result<Vec<(InstanceKey, Option<Value>)>, Diagnostic> {
        let ctx = self.ctx(module);
        let decl_addr = what;
        if let Some(c) = count {
            let v = eval::eval(c, &ctx)?;
            if !v.is_known() {
                return Err(Diagnostic::error(format!(
                    "the `count` of `{}` depends on values known only after apply",
                    decl_addr
                ))
                .at(c.span())
                .hint("count must be known when planning: use values from variables or existing resources, or `--target` the dependencies first"));
            }
            if v.is_sensitive() {
                return Err(Diagnostic::error("`count` cannot be a sensitive value").at(c.span()));
            }
            // HCL converts a numeric string where a number is expected.
            let v = match v.unmarked() {
                Value::String(s) => s.trim().parse::<f64>().map(Value::Number).unwrap_or(v.clone()),
                _ => v,
            };
            let n = match v.unmarked() {
                Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n <= 100_000.0 => *n as usize,
                Value::Number(n) => {
                    return Err(Diagnostic::error(format!("`count` must be a whole number from 0 to 100000, not {n}")).at(c.span()));
                }
                other => return Err(Diagnostic::error(format!("`count` must be a number, not {}", other.type_name())).at(c.span())),
            };
            return Ok((0..n).map(|i| (InstanceKey::Int(i), None)).collect());
        }
        if let Some(f) = for_each {
            let v = eval::eval(f, &ctx)?;
            // Only the keys must be known, as in Terraform: a map's values
            // (`for_each = aws_instance.web`, each host's id still to come)
            // may be unknown; a list's or set's elements are its keys.
            let keys_known = match v.unmarked() {
                Value::Map(_) => true,
                Value::List(l) | Value::Set(l) => l.iter().all(Value::is_known),
                other => other.is_known(),
            };
            if !keys_known {
                return Err(Diagnostic::error(format!(
                    "the `for_each` of `{}` depends on values known only after apply",
                    decl_addr
                ))
                .at(f.span())
                .hint("the keys of for_each must be known when planning"));
            }
            if matches!(v, Value::Sensitive(_)) {
                return Err(Diagnostic::error("`for_each` cannot be a sensitive value").at(f.span()));
            }
            return match v {
                Value::Map(m) => Ok(m.into_iter().map(|(k, v)| (InstanceKey::Str(k), Some(v))).collect()),
                // As in Terraform: a list's elements may repeat and have an
                // order, so they make no keys.
                Value::List(_) => Err(Diagnostic::error(format!(
                    "the `for_each` of `{}` is a list or tuple; it needs a map or a set of strings",
                    decl_addr
                ))
                .at(f.span())
                .hint("convert it with `toset(...)`, or build a map with a `for` expression")),
                Value::Set(l) => {
                    let mut out = Vec::new();
                    let mut seen = HashSet::new();
                    for item in l {
                        match item.as_str() {
                            Some(s) => {
                                if seen.insert(s.to_string()) {
                                    out.push((InstanceKey::Str(s.to_string()), Some(item.clone())));
                                }
                            }
                            None => {
                                return Err(Diagnostic::error(format!(
                                    "`for_each` over a set needs strings, found a {}",
                                    item.type_name()
                                ))
                                .at(f.span())
                                .hint("use a map, or a set of strings"));
                            }
                        }
                    }
                    out.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(out)
                }
                Value::Null => Err(Diagnostic::error("`for_each` cannot be null").at(f.span())),
                other => Err(Diagnostic::error(format!("`for_each` needs a map or a set of strings, not {}", other.type_name())).at(f.span())),
            };
        }
        Ok(vec![(InstanceKey::None, None)])
    }

    /// Evaluates a resource body into an object, checking arguments against
    /// the schema. Nested blocks become lists of objects under their name.
    pub fn eval_body(&self, body: &BodyDecl, schema: Option<&Schema>, ctx: &Ctx, what: &str, span: Option<&Span>) -> Result<Value, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut m = Map::new();
        for (name, a) in &body.attrs {
            if let Some(s) = schema
                && !s.is_argument(name)
            {
                let mut d = Diagnostic::error(if s.attribute(name).is_some() {
                    format!("`{name}` is set by the provider and cannot be configured in {what}")
                } else {
                    format!("unsupported argument `{name}` in {what}")
                })
                .at(a.key_span.clone());
                if let Some(h) = suggest(name, s.arguments().map(|a| a.name)) {
                    d = d.hint(format!("did you mean `{h}`?"));
                }
                diags.push(d);
                continue;
            }
            match eval::eval(&a.expr, ctx) {
                Ok(v) => {
                    let v = match schema.and_then(|s| s.attribute(name)) {
                        Some(attr) if attr.number => match number_arg(name, v, a) {
                            Ok(v) => v,
                            Err(d) => {
                                diags.push(d);
                                continue;
                            }
                        },
                        _ => v,
                    };
                    // Providers take a set as the list of its elements.
                    m.insert(name.clone(), v.sets_as_lists());
                }
                Err(d) => diags.push(d),
            }
        }
        let mut blocks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        // Kinds of block whose number is unknown: a `dynamic` block over a
        // collection known only after apply.
        let mut unknown_blocks = std::collections::BTreeSet::new();
        for b in &body.blocks {
            if let Some(s) = schema {
                match s.attribute(&b.kind) {
                    Some(attr) if attr.block => {}
                    _ => {
                        let mut d = Diagnostic::error(format!("unsupported block `{}` in {what}", b.kind)).at(b.span.clone());
                        let names = s.arguments().filter(|a| a.block).map(|a| a.name);
                        if let Some(h) = suggest(&b.kind, names) {
                            d = d.hint(format!("did you mean `{h}`?"));
                        }
                        diags.push(d);
                        continue;
                    }
                }
            }
            if let Some(d) = &b.dynamic {
                match self.expand_dynamic(d, ctx, b.span.as_ref()) {
                    Ok(Some(vs)) => blocks.entry(b.kind.clone()).or_default().extend(vs),
                    Ok(None) => {
                        blocks.entry(b.kind.clone()).or_default();
                        unknown_blocks.insert(b.kind.clone());
                    }
                    Err(d) => diags.extend(d),
                }
                continue;
            }
            match self.eval_body(&b.body, None, ctx, &format!("a `{}` block", b.kind), b.span.as_ref()) {
                Ok(v) => blocks.entry(b.kind.clone()).or_default().push(v),
                Err(d) => diags.extend(d),
            }
        }
        for (k, v) in blocks {
            if m.contains_key(&k) {
                diags.push(Diagnostic::error(format!("`{k}` is set both as an argument and as blocks in {what}")).at(span.cloned()));
            }
            let v = if unknown_blocks.contains(&k) { Value::Unknown } else { Value::List(v) };
            m.insert(k, v);
        }
        if let Some(s) = schema {
            for a in s.arguments().filter(|a| a.required) {
                if m.get(a.name).is_none_or(|v| v.is_null()) {
                    diags.push(Diagnostic::error(format!("missing required argument `{}` in {what}", a.name)).at(span.cloned()));
                }
            }
        }
        if diags.has_errors() { Err(diags) } else { Ok(Value::Map(m)) }
    }

    /// The blocks a `dynamic` block makes, in Terraform's order: a list or
    /// tuple by index (`key` is the index), a set in its order (`key` is the
    /// element), a map or object by key. `None` when `for_each` is known
    /// only after apply (the content is still checked, with an unknown
    /// iterator).
    fn expand_dynamic(&self, d: &DynamicDecl, ctx: &Ctx, span: Option<&Span>) -> Result<Option<Vec<Value>>, Diagnostics> {
        let what = format!("a `{}` block", d.name);
        let coll = eval::eval(&d.for_each, ctx).map_err(Diagnostics::from)?;
        let sensitive = coll.is_sensitive();
        let items: Vec<(Value, Value)> = match coll.unmarked() {
            Value::Unknown => {
                let it = crate::value::obj([("key", Value::Unknown), ("value", Value::Unknown)]);
                let inner = ctx.with_binding(d.iterator.clone(), it);
                self.eval_body(&d.content, None, &inner, &what, span)?;
                return Ok(None);
            }
            Value::List(l) => l.iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v.clone())).collect(),
            Value::Set(l) => l.iter().map(|v| (v.clone(), v.clone())).collect(),
            Value::Map(m) => m.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect(),
            Value::Null => {
                return Err(Diagnostic::error(format!("the `for_each` of `dynamic \"{}\"` cannot be null", d.name))
                    .at(d.for_each.span())
                    .into());
            }
            other => {
                return Err(Diagnostic::error(format!(
                    "the `for_each` of `dynamic \"{}\"` needs a collection (list, set, map or object), not {}",
                    d.name,
                    other.type_name()
                ))
                .at(d.for_each.span())
                .into());
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut diags = Diagnostics::new();
        for (k, v) in items {
            let it = crate::value::obj([("key", k.mark_if(sensitive)), ("value", v.mark_if(sensitive))]);
            let inner = ctx.with_binding(d.iterator.clone(), it);
            match self.eval_body(&d.content, None, &inner, &what, span) {
                Ok(v) => out.push(v),
                Err(d) => diags.extend(d),
            }
        }
        if diags.has_errors() { Err(diags) } else { Ok(Some(out)) }
    }

    /// The value a reference to a whole resource yields.
    fn resource_value(&self, addr: &ResourceAddr) -> Option<Value> {
        let decl = self.config.resource(addr)?;
        self.note_read(addr);
        let inst = self.instances.borrow();
        let empty = BTreeMap::new();
        let m = inst.get(addr).unwrap_or(&empty);
        if self.lenient && m.is_empty() {
            // `berth validate`: nothing is expanded, so nothing is known.
            return Some(Value::Unknown);
        }
        crate::telemetry::work::instances_copied(m.len());
        Some(if decl.count.is_some() {
            let mut items: BTreeMap<usize, Value> = m
                .iter()
                .filter_map(|(k, v)| if let InstanceKey::Int(i) = k { Some((*i, v.clone())) } else { None })
                .collect();
            if self.existing_only.get() {
                Value::List(items.into_values().collect())
            } else {
                // Element i is instance i: one not created yet (or whose
                // create failed) is unknown, never filled by the next one,
                // so `aws_instance.host[3]` is host 3 while host 2 is still
                // starting.
                let len = items.keys().next_back().map_or(0, |i| i + 1);
                Value::List((0..len).map(|i| items.remove(&i).unwrap_or(Value::Unknown)).collect())
            }
        } else if decl.for_each.is_some() {
            Value::Map(
                m.iter()
                    .filter_map(|(k, v)| if let InstanceKey::Str(s) = k { Some((s.clone(), v.clone())) } else { None })
                    .collect(),
            )
        } else {
            m.get(&InstanceKey::None).cloned().unwrap_or(Value::Unknown)
        })
    }

    /// Part of a resource, `addr` followed by `path`, without building the
    /// list or map of all its instances: what `aws_instance.host[count.index]`
    /// and `aws_instance.host[each.key].private_ip` read. `None` where the
    /// whole value must be built (a key out of range or of the wrong type,
    /// whose error indexing the whole value words; the compacted lists of
    /// [`World::existing_only`]).
    fn resource_path(&self, addr: &ResourceAddr, path: &[PathStep<'_>]) -> Option<(Value, usize)> {
        let decl = self.config.resource(addr)?;
        let inst = self.instances.borrow();
        let m = inst.get(addr);
        if self.lenient && m.is_none_or(|m| m.is_empty()) {
            // `berth validate`: nothing is expanded, so nothing is known.
            self.note_read(addr);
            return Some((Value::Unknown, 1));
        }
        let (instance, rest) = if decl.count.is_some() || decl.for_each.is_some() {
            let key = match (path.first()?, decl.count.is_some()) {
                (PathStep::Index(Value::Number(n)), true) if !self.existing_only.get() => {
                    if n.fract() != 0.0 || *n < 0.0 || *n > usize::MAX as f64 {
                        return None;
                    }
                    InstanceKey::Int(*n as usize)
                }
                (PathStep::Index(Value::String(k)), false) => InstanceKey::Str(k.clone()),
                _ => return None,
            };
            let m = m?;
            match m.get(&key) {
                Some(v) => (v, &path[1..]),
                // Within the list (a later instance exists): not created yet.
                None if matches!(key, InstanceKey::Int(_))
                    && m.range(key..).any(|(k, _)| matches!(k, InstanceKey::Int(_))) =>
                {
                    self.note_read(addr);
                    return Some((Value::Unknown, 1));
                }
                None => return None,
            }
        } else {
            (m?.get(&InstanceKey::None)?, path)
        };
        let (v, used) = walk_path(instance, rest);
        let used = used + (path.len() - rest.len());
        if used == 0 {
            return None;
        }
        self.note_read(addr);
        crate::telemetry::work::instances_copied(1);
        Some((copied(v), used))
    }

    /// The memoized value of a local, module variable or output, evaluated
    /// by `f` the first time; shared, so that reading part of it copies only
    /// that part.
    fn cached(&self, module: &ModulePath, kind: u8, name: &str, f: impl FnOnce() -> Result<Value, Diagnostic>) -> Result<Rc<Value>, Diagnostic> {
        let key = (module.clone(), kind, name.to_string());
        if let Some((v, deps)) = self.cache.borrow().get(&key) {
            // What reads this reads its resources too.
            if let Some(frame) = self.reading.borrow_mut().last_mut() {
                frame.extend(deps.iter().cloned());
            }
            return Ok(v.clone());
        }
        if self.busy.borrow().len() >= MAX_DEPTH {
            return Err(Diagnostic::error(format!(
                "references nest more than {MAX_DEPTH} declarations deep (locals, variables and outputs referring to one another)"
            )));
        }
        if !self.busy.borrow_mut().insert(key.clone()) {
            if self.lenient {
                return Ok(Rc::new(Value::Unknown));
            }
            let what = match kind {
                VAR => "var",
                LOCAL => "local",
                _ => "output",
            };
            let prefix: String = module.iter().map(|m| format!("module.{m}.")).collect();
            return Err(Diagnostic::error(format!("`{prefix}{what}.{name}` depends on itself")));
        }
        crate::telemetry::work::evaluated();
        self.reading.borrow_mut().push(HashSet::new());
        let v = f();
        let deps = self.reading.borrow_mut().pop().unwrap_or_default();
        self.busy.borrow_mut().remove(&key);
        if let Some(frame) = self.reading.borrow_mut().last_mut() {
            frame.extend(deps.iter().cloned());
        }
        let v = v?;
        {
            let mut readers = self.readers.borrow_mut();
            for d in &deps {
                readers.entry(d.clone()).or_default().insert(key.clone());
            }
        }
        let v = Rc::new(v);
        self.cache.borrow_mut().insert(key, (v.clone(), Rc::new(deps)));
        Ok(v)
    }

    /// Drops every memoized local, module variable and output. Changes to
    /// instances invalidate what they must by themselves; this is for a
    /// change of how resources are seen ([`World::existing_only`]).
    pub fn forget_derived(&self) {
        self.cache.borrow_mut().clear();
        self.readers.borrow_mut().clear();
    }

    pub fn output(&self, module: &ModulePath, name: &str) -> Result<Value, Diagnostic> {
        self.output_rc(module, name).map(|v| copied(&v))
    }

    fn var_rc(&self, module: &ModulePath, n: &str, span: Option<&Span>) -> Result<Rc<Value>, Diagnostic> {
        self.cached(module, VAR, n, || {
                if module.is_empty() {
                    return match self.root_vars.get(n) {
                        Some(v) => Ok(v.clone()),
                        None if self.lenient => Ok(Value::Unknown),
                        None => Err(Diagnostic::error(format!("no value for variable `{n}`")).at(span.cloned())),
                    };
                }
                let parent = module[..module.len() - 1].to_vec();
                let call = self.config.call_of(module);
                let decl = self.config.modules.get(module).and_then(|child| child.variables.get(n));
                let (Some((call, key)), Some(decl)) = (call, decl) else {
                    if self.lenient {
                        return Ok(Value::Unknown);
                    }
                    return Err(Diagnostic::error(format!("no variable `{n}` in module")).at(span.cloned()));
                };
                // `each` and `count.index` of the instance, in the call's
                // arguments; unknown before the call is expanded (`validate`).
                let mut ctx = self.instance_ctx(&parent, &key, call.instances.as_ref().and_then(|i| i.get(&key).cloned()));
                if call.instances.is_none() {
                    if call.count.is_some() {
                        ctx.count_index = Some(Value::Unknown);
                    } else if call.for_each.is_some() {
                        ctx.each = Some((Value::Unknown, Value::Unknown));
                    }
                }
                let (v, at) = match call.args.get(n) {
                    Some(a) => (eval::eval(&a.expr, &ctx)?, a.expr.span()),
                    None => match &decl.default {
                        Some(d) => (eval::constant(d)?, d.span()),
                        None => return Err(Diagnostic::error(format!("module `{}` needs `{n}`", call.name)).at(call.span.clone())),
                    },
                };
                if !v.is_known() {
                    // Type checks wait until the value is known.
                    return Ok(v);
                }
                crate::config::vars::check_at(decl, v, &format!("module `{}`", call.name), at)
                    .map_err(|d| d.0.into_iter().next().unwrap_or_else(|| Diagnostic::error("invalid value")))
            })
        .map_err(|d| d.at(span.cloned()))
    }

    fn local_rc(&self, module: &ModulePath, n: &str, span: Option<&Span>) -> Result<Rc<Value>, Diagnostic> {
        self.cached(module, LOCAL, n, || {
                let l = match self.config.modules.get(module).and_then(|m| m.locals.get(n)) {
                    Some(l) => l,
                    None if self.lenient => return Ok(Value::Unknown),
                    None => return Err(Diagnostic::error(format!("no local `{n}`")).at(span.cloned())),
                };
                eval::eval(&l.expr, &self.ctx(module))
            })
        .map_err(|d| d.at(span.cloned()))
    }

    fn output_rc(&self, module: &ModulePath, name: &str) -> Result<Rc<Value>, Diagnostic> {
        self.cached(module, OUTPUT, name, || {
            let o = match self.config.modules.get(module).and_then(|m| m.outputs.get(name)) {
                Some(o) => o,
                // The graph has reported the missing module or output already.
                None if self.lenient => return Ok(Value::Unknown),
                None => return Err(Diagnostic::error(format!("no output `{name}`"))),
            };
            let v = eval::eval(&o.value, &self.ctx(module))?;
            if module.is_empty() && v.is_sensitive() && !o.sensitive {
                return Err(Diagnostic::error(format!("output `{name}` refers to sensitive values"))
                    .at(o.value.span())
                    .hint("add `sensitive = true` to the output block"));
            }
            Ok(v.mark_if(o.sensitive))
        })
    }
}

impl World<'_> {
    /// One module instance's outputs as an object.
    fn module_object(&self, child: &ModulePath) -> Result<Value, Diagnostic> {
        let names: Vec<String> =
            self.config.modules.get(child).map(|cm| cm.outputs.keys().cloned().collect()).unwrap_or_default();
        let mut out = Map::new();
        for name in names {
            out.insert(name.clone(), self.output(child, &name)?);
        }
        Ok(Value::Map(out))
    }

    /// `module.NAME[KEY]` followed by `path`: reads only the output the
    /// path names, so `module.svc[each.key].host` costs one output.
    /// `skipped` path steps were taken to pick the instance.
    fn module_instance_path(&self, module: &ModulePath, name: &str, key: InstanceKey, path: &[PathStep<'_>], skipped: usize) -> Option<(Value, usize)> {
        let mut child = module.clone();
        child.push(crate::addr::module_step(name, &key));
        self.config.modules.get(&child)?;
        let PathStep::Attr(o) = path.first()? else { return None };
        let memo = self.output_rc(&child, o).ok()?;
        let (v, used) = walk_path(&memo, &path[1..]);
        Some((copied(v), skipped + 1 + used))
    }
}

impl Scope for World<'_> {
    fn lookup_path(&self, module: &ModulePath, target: &Target, path: &[PathStep<'_>]) -> Option<(Value, usize)> {
        let memo = match target {
            Target::Resource(mode, t, n) => return self.resource_path(&ResourceAddr::new(module.clone(), *mode, t, n), path),
            Target::Var(n) => self.var_rc(module, n, None),
            Target::Local(n) => self.local_rc(module, n, None),
            Target::Module(m, o) => {
                let call = self.config.modules.get(module)?.calls.get(m)?;
                return match (&call.instances, o) {
                    (None, Some(o)) => {
                        let mut child = module.clone();
                        child.push(m.clone());
                        let memo = self.output_rc(&child, o).ok()?;
                        let (v, used) = walk_path(&memo, path);
                        Some((copied(v), used))
                    }
                    (None, None) => None,
                    // `module.svc["a"].host`: `o` is the key (a for_each).
                    (Some(_), Some(k)) if call.for_each.is_some() => {
                        self.module_instance_path(module, m, InstanceKey::Str(k.clone()), path, 0)
                    }
                    // `module.svc[0].host` (a count).
                    (Some(_), None) => match path.first()? {
                        PathStep::Index(Value::Number(n)) if call.count.is_some() && n.fract() == 0.0 && *n >= 0.0 => {
                            self.module_instance_path(module, m, InstanceKey::Int(*n as usize), &path[1..], 1)
                        }
                        // `module.svc[each.key].host`.
                        PathStep::Index(Value::String(k)) if call.for_each.is_some() => {
                            self.module_instance_path(module, m, InstanceKey::Str(k.clone()), &path[1..], 1)
                        }
                        _ => None,
                    },
                    _ => None,
                };
            }
            _ => return None,
        };
        // An error is worded (with its place) by the plain lookup.
        let memo = memo.ok()?;
        let (v, used) = walk_path(&memo, path);
        Some((copied(v), used))
    }

    fn lookup(&self, module: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic> {
        match target {
            Target::Var(n) => self.var_rc(module, n, span).map(|v| copied(&v)),
            Target::Local(n) => self.local_rc(module, n, span).map(|v| copied(&v)),
            Target::Resource(mode, t, n) => {
                let addr = ResourceAddr::new(module.clone(), *mode, t, n);
                if self.lenient && self.config.resource(&addr).is_none() {
                    return Ok(Value::Unknown);
                }
                self.resource_value(&addr).ok_or_else(|| {
                    let what = if *mode == Mode::Data { "data source" } else { "resource" };
                    Diagnostic::error(format!("reference to undeclared {what} `{addr}`")).at(span.cloned())
                })
            }
            Target::Module(m, o)
                if let Some(keys) = self.config.modules.get(module).and_then(|pm| pm.calls.get(m)).and_then(|c| c.instances.as_ref()) =>
            {
                let call = &self.config.modules[module].calls[m];
                let mut all = Map::new();
                let mut list = Vec::new();
                for key in keys.keys() {
                    let mut child = module.clone();
                    child.push(crate::addr::module_step(m, key));
                    let v = self.module_object(&child).map_err(|d| d.at(span.cloned()))?;
                    match key {
                        InstanceKey::Str(k) => {
                            all.insert(k.clone(), v);
                        }
                        _ => list.push(v),
                    }
                }
                let whole = if call.count.is_some() { Value::List(list) } else { Value::Map(all) };
                match o {
                    // `module.svc.a`, `module.svc["a"]`: one instance of a for_each.
                    Some(k) => match whole {
                        Value::Map(mut all) => all.remove(k).ok_or_else(|| {
                            Diagnostic::error(format!("module `{m}` has no instance `{k}`")).at(span.cloned())
                        }),
                        _ => Err(Diagnostic::error(format!("module `{m}` uses `count`: pick an instance by number, `module.{m}[0]`"))
                            .at(span.cloned())),
                    },
                    None => Ok(whole),
                }
            }
            Target::Module(m, Some(o)) => {
                let mut child = module.clone();
                child.push(m.clone());
                self.output(&child, o).map_err(|d| d.at(span.cloned()))
            }
            Target::Module(m, None) => {
                let mut child = module.clone();
                child.push(m.clone());
                let names: Vec<String> = self
                    .config
                    .modules
                    .get(&child)
                    .map(|cm| cm.outputs.keys().cloned().collect())
                    .unwrap_or_default();
                let mut out = Map::new();
                for name in names {
                    out.insert(name.clone(), self.output(&child, &name)?);
                }
                Ok(Value::Map(out))
            }
            Target::Workspace => Ok(crate::value::obj([("workspace", Value::String(self.workspace.clone()))])),
            other => Err(Diagnostic::error(format!("cannot resolve `{other:?}`")).at(span.cloned())),
        }
    }
}

/// A number argument's value: a string that reads as a number becomes that
/// number (`ttl = "300"`), as Terraform converts it; another string is an
/// error where it is written.
fn number_arg(name: &str, v: Value, a: &crate::config::AttrDecl) -> Result<Value, Diagnostic> {
    let sensitive = v.is_sensitive();
    match v.unmarked() {
        Value::String(s) => match crate::config::types::parse_number(s) {
            Some(n) => Ok(n.mark_if(sensitive)),
            None => {
                let shown = if sensitive { "(sensitive)".to_string() } else { format!("`\"{s}\"`") };
                Err(Diagnostic::error(format!("`{name}` must be a number: {shown} is not one")).at(a.expr.span()))
            }
        },
        _ => Ok(v),
    }
}
