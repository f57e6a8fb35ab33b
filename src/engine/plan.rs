//! The planner: builds a [`Plan`] from a refreshed state — walks the
//! configuration in dependency order and asks each resource's provider what
//! would change — then runs the plan-wide [checks](crate::engine::checks),
//! gives old objects their drains and rolling replacements their waves,
//! and makes sure the apply can [order](crate::engine::order) the changes.

use crate::addr::{InstanceAddr, InstanceKey, Mode, ResourceAddr, TargetAddr};
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::refresh::Refreshed;
use crate::engine::scope::World;
use crate::graph::{Graph, Node};
use crate::plan::*;
use crate::providers::{OpContext, Registry};
use crate::state::{ResourceState, State};
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    pub destroy: bool,
    pub refresh: bool,
    pub targets: Vec<TargetAddr>,
    pub replace: Vec<InstanceAddr>,
    pub workspace: String,
    /// Providers the caller made, by key (`aws`, `aws.west`), used instead
    /// of configuring one from the configuration: for embedders and tests.
    pub providers: Registry,
    /// Objects to import besides the configuration's `import` blocks (`berth import`).
    pub imports: Vec<super::import::Request>,
    /// Write resource blocks for imports that have none (into
    /// [`Plan::generated_config`]) instead of failing on them.
    pub generate_config: bool,
    /// `--rolling N`: the rolling replacement of every counted or
    /// `for_each`'d resource without a `lifecycle { rolling }` of its own.
    pub rolling: Option<crate::config::Rolling>,
}

pub struct Planner<'a> {
    pub config: &'a Config,
    pub graph: &'a Graph,
    pub providers: &'a Registry,
    pub vars: BTreeMap<String, Value>,
    pub opts: PlanOptions,
}

impl Planner<'_> {
    /// Plans against a refreshed state. `prior_serial` is the serial of the
    /// stored state (`None` when there is none yet).
    pub async fn plan(&self, refreshed: &Refreshed, prior_serial: Option<u64>) -> Result<Plan, Diagnostics> {
        let state = &refreshed.state;
        let world = World::new(self.config, self.vars.clone(), &self.opts.workspace);
        for r in state.resources.values().filter(|r| r.deposed.is_none()) {
            world.set_instance(&r.addr.resource, r.addr.key.clone(), r.value());
        }
        let mut diags = Diagnostics::new();
        let mut changes: Vec<ResourceChange> = Vec::new();
        let mut data: Vec<DataRead> = Vec::new();
        let mut instance_dependencies: BTreeMap<InstanceAddr, Vec<InstanceAddr>> = BTreeMap::new();
        let mut generated_config = String::new();
        let targets: Option<BTreeSet<ResourceAddr>> = if self.opts.targets.is_empty() {
            None
        } else {
            let mut res: BTreeSet<ResourceAddr> = BTreeSet::new();
            for t in &self.opts.targets {
                let found: Vec<ResourceAddr> = match t {
                    TargetAddr::Instance(i) => {
                        let r = &i.resource;
                        let known = self.config.resource(r).is_some() || state.instances_of(r).next().is_some();
                        known.then(|| r.clone()).into_iter().collect()
                    }
                    // Every resource of the module instance (or of every
                    // instance of the call), configured or in the state.
                    TargetAddr::Module(m) => self
                        .config
                        .all_resources()
                        .map(|d| &d.addr)
                        .chain(state.resources.values().map(|r| &r.addr.resource))
                        .filter(|a| crate::addr::module_matches(&a.module, m))
                        .cloned()
                        .collect(),
                };
                if found.is_empty() {
                    diags.push(Diagnostic::error(format!("`--target {t}` matches nothing in the configuration or the state")));
                }
                res.extend(found);
            }
            Some(self.graph.with_dependencies(&res))
        };
        let in_target = |a: &InstanceAddr| -> bool {
            match &targets {
                None => true,
                Some(set) => {
                    set.contains(&a.resource)
                        && (self.opts.targets.iter().any(|t| t.selects(a))
                            || !self.opts.targets.iter().any(|t| matches!(t, TargetAddr::Instance(i) if i.resource == a.resource)))
                }
            }
        };
        for r in &self.opts.replace {
            if state.get(r).is_none() && self.config.resource(&r.resource).is_none() {
                diags.push(Diagnostic::error(format!("`--replace {r}` matches nothing in the configuration or the state")));
            }
        }

        if self.opts.destroy {
            for r in state.resources.values() {
                if !in_target(&r.addr) || r.addr.resource.mode == Mode::Data {
                    continue;
                }
                if let Some(d) = self.config.resource(&r.addr.resource)
                    && d.lifecycle.prevent_destroy
                {
                    diags.push(
                        Diagnostic::error(format!("`{}` has `lifecycle {{ prevent_destroy = true }}` and cannot be destroyed", r.addr))
                            .at(d.span.clone()),
                    );
                }
                changes.push(self.delete_change(r, Some("destroy requested".into())));
            }
        } else {
            let (imports, generated) =
                match super::import::resolve(self.config, &world, state, self.providers, &self.opts.imports, self.opts.generate_config).await {
                    Ok(found) => found,
                    Err(d) => {
                        diags.extend(d);
                        Default::default()
                    }
                };
            generated_config = generated;
            for node in &self.graph.order {
                let Node::Resource(addr) = node else { continue };
                let Some(decl) = self.config.resource(addr) else { continue };
                if let Some(t) = &targets
                    && !t.contains(addr)
                {
                    continue;
                }
                if let Err(d) = self
                    .plan_resource(decl, state, refreshed, &world, &imports, &mut changes, &mut data, &mut instance_dependencies, &in_target)
                    .await
                {
                    diags.extend(d);
                }
            }
            // Objects whose resource block is gone from the configuration.
            for r in state.resources.values() {
                if r.deposed.is_some() {
                    if in_target(&r.addr) {
                        changes.push(self.delete_change(r, Some("deposed object left by an interrupted replacement".into())));
                    }
                    continue;
                }
                if self.config.resource(&r.addr.resource).is_none() && in_target(&r.addr) && r.addr.resource.mode == Mode::Managed {
                    changes.push(self.delete_change(r, Some("no longer in the configuration".into())));
                }
            }
            crate::engine::checks::run(self.config, &mut changes, &mut diags);
            self.drains(&mut changes, &instance_dependencies, state);
            self.waves(&mut changes);
        }

        // Root outputs.
        let mut outputs = Vec::new();
        if !diags.has_errors() {
            for (name, decl) in &self.config.root().outputs {
                let before = state.outputs.get(name).map(|o| o.value.clone().mark_if(o.sensitive));
                let after = if self.opts.destroy {
                    None
                } else {
                    match world.output(&Vec::new(), name) {
                        Ok(v) => Some(v),
                        Err(d) => {
                            diags.push(d);
                            continue;
                        }
                    }
                };
                outputs.push(OutputChange { name: name.clone(), before, after, sensitive: decl.sensitive });
            }
            for (name, o) in &state.outputs {
                if !self.config.root().outputs.contains_key(name) {
                    outputs.push(OutputChange {
                        name: name.clone(),
                        before: Some(o.value.clone().mark_if(o.sensitive)),
                        after: None,
                        sensitive: o.sensitive,
                    });
                }
            }
        }

        let mut inventories = Vec::new();
        if !diags.has_errors() && !self.opts.destroy {
            for built in crate::engine::inventory::build_all(&world, self.config) {
                match built {
                    Ok(b) => inventories.push(inventory_change(b)),
                    Err(d) => diags.extend(d),
                }
            }
        }
        let dependencies = self
            .graph
            .resource_deps
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect();
        changes.sort_by(|a, b| (&a.addr, &a.deposed).cmp(&(&b.addr, &b.deposed)));
        let plan = Plan {
            format_version: FORMAT_VERSION,
            berth_version: env!("CARGO_PKG_VERSION").to_string(),
            lineage: state.lineage.clone(),
            prior_serial,
            config_digest: self.config.digest.clone(),
            workspace: self.opts.workspace.clone(),
            destroy: self.opts.destroy,
            targets: self.opts.targets.clone(),
            variables: self.vars.clone(),
            changes,
            data,
            outputs,
            inventories,
            dependencies,
            instance_dependencies,
            generated_config,
            errored: diags.has_errors(),
        };
        if diags.has_errors() {
            return Err(diags);
        }
        if let Err(d) = crate::engine::order::order_check(&plan, state) {
            return Err(d.into());
        }
        Ok(plan)
    }

    /// The instances one instance of `addr` depends on in place of whole
    /// resources (see [`Graph::keyed_deps`]): each key expression evaluated
    /// in the instance's context. A resource stays a whole dependency when a
    /// key is not known or names no instance it has.
    fn keyed_dependencies(&self, addr: &ResourceAddr, ctx: &crate::config::eval::Ctx, world: &World<'_>) -> Vec<InstanceAddr> {
        let mut out = Vec::new();
        for (dep, keys) in self.graph.keyed_deps.get(addr).into_iter().flatten() {
            let instances: Option<Vec<InstanceAddr>> = keys
                .iter()
                .map(|k| {
                    let key = crate::config::eval::eval(k, ctx).ok().as_ref().and_then(instance_key)?;
                    world.instance(dep, &key).is_some().then(|| dep.instance(key))
                })
                .collect();
            if let Some(mut instances) = instances {
                instances.sort();
                instances.dedup();
                out.extend(instances);
            }
        }
        out
    }

    /// The drain of every old object the plan destroys once its
    /// dependents have switched away from it: the longest cache TTL
    /// ([`Schema::cache_ttl`](crate::schema::Schema::cache_ttl)) of the
    /// changed objects that depend on it, plus its resource's
    /// `lifecycle { drain }`. A deposed object whose drain an earlier run
    /// recorded keeps that one (see [`Planner::delete_change`]).
    fn drains(&self, changes: &mut [ResourceChange], narrowed: &BTreeMap<InstanceAddr, Vec<InstanceAddr>>, state: &State) {
        let ttl_of = |d: &ResourceChange| -> Option<u64> {
            let schema = self.providers.get(&d.provider)?.schema(d.addr.resource.mode, &d.addr.resource.type_)?;
            [&d.before, &d.after].into_iter().flatten().filter_map(|v| schema.cache_ttl_of(v)).max()
        };
        // The longest TTL switching away from each resource, or from one
        // instance of it for a record that names that instance alone: one
        // pass over the changes, not one per old object.
        let mut by_resource: BTreeMap<&ResourceAddr, u64> = BTreeMap::new();
        let mut by_instance: BTreeMap<&InstanceAddr, u64> = BTreeMap::new();
        for d in changes.iter() {
            if d.deposed.is_some() || !matches!(d.action, Action::Update | Action::CreateThenDelete | Action::DeleteThenCreate) {
                continue;
            }
            let Some(ttl) = ttl_of(d) else { continue };
            let named = narrowed.get(&d.addr).map(Vec::as_slice).unwrap_or_default();
            for r in self.graph.resource_deps.get(&d.addr.resource).into_iter().flatten().filter(|r| **r != d.addr.resource) {
                let mut instances = named.iter().filter(|a| &a.resource == r).peekable();
                if instances.peek().is_none() {
                    let t = by_resource.entry(r).or_default();
                    *t = (*t).max(ttl);
                }
                for a in instances {
                    let t = by_instance.entry(a).or_default();
                    *t = (*t).max(ttl);
                }
            }
        }
        let mut drains = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let recorded = c.deposed.is_some() && state.resources.get(&(c.addr.clone(), c.deposed.clone())).is_some_and(|r| r.drain.is_some());
            let old_goes_after_switch = c.action == Action::CreateThenDelete || (c.action == Action::Delete && c.deposed.is_some());
            if !old_goes_after_switch || recorded {
                continue;
            }
            let margin = self.config.resource(&c.addr.resource).and_then(|d| d.lifecycle.drain).map_or(0, |d| d.as_millis() as u64);
            let ttl = if c.deposed.is_some() {
                // Its dependents switched in the run that deposed it.
                0
            } else {
                by_resource.get(&c.addr.resource).copied().max(by_instance.get(&c.addr).copied()).unwrap_or(0)
            };
            let ms = ttl.saturating_mul(1000).saturating_add(margin);
            if ms > 0 {
                drains.push((i, ms));
            }
        }
        for (i, ms) in drains {
            changes[i].drain_ms = Some(ms);
        }
    }

    /// Splits the replacements of each resource with `lifecycle { rolling }`
    /// into waves of `max_unavailable` instances, in key order.
    fn waves(&self, changes: &mut [ResourceChange]) {
        let mut by_resource: BTreeMap<&ResourceAddr, Vec<(InstanceAddr, usize)>> = BTreeMap::new();
        let rolling = |r: &ResourceAddr| {
            let d = self.config.resource(r)?;
            d.lifecycle.rolling.or(self.opts.rolling.filter(|_| d.count.is_some() || d.for_each.is_some()))
        };
        for (i, c) in changes.iter().enumerate() {
            if c.deposed.is_none() && c.action.is_replace() && rolling(&c.addr.resource).is_some() {
                by_resource.entry(&c.addr.resource).or_default().push((c.addr.clone(), i));
            }
        }
        let mut waves = Vec::new();
        for (r, mut members) in by_resource {
            let Some(roll) = rolling(r) else { continue };
            members.sort();
            let of = members.len().div_ceil(roll.max_unavailable.max(1));
            if of < 2 {
                continue;
            }
            for (n, chunk) in members.chunks(roll.max_unavailable.max(1)).enumerate() {
                waves.extend(chunk.iter().map(|(_, i)| (*i, Wave { index: n + 1, of })));
            }
        }
        for (i, w) in waves {
            changes[i].wave = Some(w);
        }
    }

    /// The `health_check` arguments of a planned instance that can be
    /// evaluated now (with `self` as planned), checked: a bad URL,
    /// duration or status is an error before any host is created for it.
    /// Arguments that cannot be evaluated yet are left to the apply.
    fn check_health_args(
        &self,
        decl: &crate::config::ResourceDecl,
        world: &World<'_>,
        inst: &InstanceAddr,
        after: &Value,
        seen: &mut BTreeSet<(String, String)>,
        diags: &mut Diagnostics,
    ) {
        let Some(block) = &decl.health_check else { return };
        let mut ctx = world.instance_ctx(&inst.resource.module, &inst.key, None);
        ctx.self_value = Some(after.clone());
        let enabled = block.body.attrs.get("enabled").map(|a| crate::config::eval::eval(&a.expr, &ctx));
        if matches!(enabled, Some(Ok(Value::Bool(false)))) {
            // A check turned off is never run, so never checked.
            return;
        }
        for (name, a) in &block.body.attrs {
            let Ok(v) = crate::config::eval::eval(&a.expr, &ctx) else { continue };
            if let Err(e) = crate::config::health::check_attr(name, &v)
                && seen.insert((name.clone(), e.clone()))
            {
                diags.push(Diagnostic::error(format!("`{inst}`: {e}")).at(a.expr.span()));
            }
        }
    }

    fn delete_change(&self, r: &ResourceState, reason: Option<String>) -> ResourceChange {
        ResourceChange {
            addr: r.addr.clone(),
            deposed: r.deposed.clone(),
            provider: r.provider.clone(),
            action: Action::Delete,
            before: Some(r.value()),
            after: None,
            replace_paths: Vec::new(),
            reason,
            notes: Vec::new(),
            create_before_destroy: r.create_before_destroy,
            generation: r.generation,
            import: None,
            // A drain an earlier run recorded goes on where it stopped.
            drain_ms: r.drain.filter(|_| r.deposed.is_some()).map(|d| d.remaining(crate::state::now_ms())).filter(|ms| *ms > 0),
            wave: None,
            gone: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_resource(
        &self,
        decl: &crate::config::ResourceDecl,
        state: &State,
        refreshed: &Refreshed,
        world: &World<'_>,
        imports: &BTreeMap<InstanceAddr, super::import::Request>,
        changes: &mut Vec<ResourceChange>,
        data: &mut Vec<DataRead>,
        instance_dependencies: &mut BTreeMap<InstanceAddr, Vec<InstanceAddr>>,
        in_target: &dyn Fn(&InstanceAddr) -> bool,
    ) -> Result<(), Diagnostics> {
        let addr = &decl.addr;
        let provider = self.providers.get(&decl.provider).ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(format!("provider `{}` is not configured", decl.provider)).at(decl.provider_span.clone()))
        })?;
        let Some(schema) = provider.schema(addr.mode, &addr.type_) else {
            let mut names = provider.type_names(addr.mode);
            names.sort();
            let mut d = Diagnostic::error(format!(
                "provider `{}` has no {} type `{}`",
                decl.provider,
                if addr.mode == Mode::Data { "data source" } else { "resource" },
                addr.type_
            ))
            .at(decl.span.clone());
            if let Some(s) = crate::diag::suggest(&addr.type_, names.iter().copied()) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            return Err(d.into());
        };
        let keys = match world.expand(decl) {
            Ok(k) => k,
            Err(d) => {
                world.clear_resource(addr);
                return Err(d.into());
            }
        };
        let mut diags = Diagnostics::new();
        let key_set: HashSet<InstanceKey> = keys.iter().map(|(k, _)| k.clone()).collect();
        let lineage = &state.lineage;

        // Evaluate every instance, then ask the provider about all of them concurrently.
        let mut work = Vec::new();
        for (key, each_value) in keys {
            let inst = addr.instance(key.clone());
            if !in_target(&inst) {
                continue;
            }
            let ctx = world.instance_ctx(&addr.module, &key, each_value);
            let narrowed = self.keyed_dependencies(addr, &ctx, world);
            if !narrowed.is_empty() {
                instance_dependencies.insert(inst.clone(), narrowed);
            }
            let what = format!("`{inst}`");
            let config = match world.eval_body(&decl.body, Some(schema), &ctx, &what, decl.span.as_ref()) {
                Ok(v) => v,
                Err(d) => {
                    diags.extend(d);
                    world.set_instance(addr, key.clone(), Value::Unknown);
                    continue;
                }
            };
            for e in provider.validate(addr.mode, &addr.type_, &config) {
                let span = e
                    .attribute
                    .as_ref()
                    .and_then(|a| decl.body.attrs.get(a).and_then(|x| x.expr.span()))
                    .or_else(|| decl.span.clone());
                diags.push(Diagnostic::error(format!("{what}: {}", e.message)).at(span));
            }
            if decl.lifecycle.create_before_destroy
                && addr.type_ == "aws_instance"
                && config.get("private_ip").is_some_and(|v| !v.is_null())
            {
                diags.push(
                    Diagnostic::error(format!(
                        "{what}: a fixed `private_ip` cannot be used with `create_before_destroy`: the new host would need the old host's address while it still exists"
                    ))
                    .at(decl.body.attrs.get("private_ip").and_then(|a| a.expr.span()))
                    .hint("remove `private_ip` and reach the host by its private DNS name, or turn off create_before_destroy"),
                );
            }
            let prior = state.get(&inst);
            work.push((inst, key, config, prior));
        }
        if diags.has_errors() {
            return Err(diags);
        }
        // Objects this plan imports: read by id, then planned as if in the state.
        let wanted = work.iter().filter(|w| w.3.is_none() && imports.contains_key(&w.0)).map(|w| (w.0.clone(), w.2.clone()));
        let (fresh, read_errors) =
            super::import::read_objects(provider.as_ref(), decl, lineage, imports, wanted.collect()).await;
        if read_errors.has_errors() {
            return Err(read_errors);
        }
        let work: Vec<_> = work.into_iter().map(|(i, k, c, p)| { let p = p.or_else(|| fresh.get(&i)); (i, k, c, p) }).collect();

        if addr.mode == Mode::Data {
            for (inst, key, config, _) in work {
                let ctx = OpContext::new(inst.clone(), lineage.clone(), 0);
                if config.is_known() {
                    match provider.read(&ctx, &addr.type_, &config).await {
                        Ok(v) => {
                            data.push(DataRead { addr: inst.clone(), provider: decl.provider.clone(), value: Some(v.clone()) });
                            world.set_instance(addr, key, v)
                        }
                        Err(e) => diags.push(Diagnostic::error(format!("reading `{inst}`: {}", e.message)).at(decl.span.clone())),
                    }
                } else {
                    world.set_instance(addr, key, Value::Unknown);
                    changes.push(ResourceChange {
                        addr: inst,
                        deposed: None,
                        provider: decl.provider.clone(),
                        action: Action::Read,
                        before: None,
                        after: Some(config),
                        replace_paths: Vec::new(),
                        reason: Some("configuration depends on values known only after apply".into()),
                        notes: Vec::new(),
                        create_before_destroy: false,
                        generation: 0,
                        import: None,
                        drain_ms: None,
                        wave: None,
                        gone: None,
                    });
                }
            }
            return if diags.has_errors() { Err(diags) } else { Ok(()) };
        }

        let futs = work.into_iter().map(|(inst, key, mut config, prior)| {
            let provider = provider.clone();
            if let Some(p) = prior {
                decl.lifecycle.keep_ignored(&mut config, &p.value());
            }
            let ctx = OpContext::new(inst.clone(), lineage.clone(), prior.map(|p| p.generation).unwrap_or(0));
            // A replacement forced by `--replace` or a taint is planned as a
            // fresh create, so attributes the provider computes are unknown
            // and everything that reads them is planned to follow.
            let forced = prior.is_some_and(|p| p.tainted) || self.opts.replace.iter().any(|r| inst.matches(r));
            async move {
                let prior_value = prior.map(|p| match p.imported {
                    true => super::import::reconcile(&addr.type_, p.value(), &config),
                    false => p.value(),
                });
                let plan_prior = if forced { None } else { prior_value.as_ref() };
                let planned = provider.plan(&ctx, &addr.type_, plan_prior, &config).await;
                (inst, key, prior, prior_value, config, planned)
            }
        });
        let results = futures::future::join_all(futs).await;
        let mut health_seen = BTreeSet::new();
        for (inst, key, prior, prior_value, _config, planned) in results {
            let planned = match planned {
                Ok(p) => p,
                Err(e) => {
                    let span = e
                        .attribute
                        .as_ref()
                        .and_then(|a| decl.body.attrs.get(a).and_then(|x| x.expr.span()))
                        .or_else(|| decl.span.clone());
                    diags.push(Diagnostic::error(format!("`{inst}`: {}", e.message)).at(span));
                    world.set_instance(addr, key, Value::Unknown);
                    continue;
                }
            };
            // Sensitive schema attributes are marked whatever the configuration says.
            let mut after = planned.after;
            if let Value::Map(m) = &mut after {
                for a in schema.attributes.iter().filter(|a| a.sensitive) {
                    if let Some(v) = m.remove(a.name) {
                        m.insert(a.name.to_string(), if v.is_null() { v } else { v.mark_if(true) });
                    }
                }
            }
            let forced = self.opts.replace.iter().any(|r| inst.matches(r));
            let tainted = prior.is_some_and(|p| p.tainted);
            let cbd = decl.lifecycle.create_before_destroy;
            let (mut action, reason) = match prior {
                None => {
                    let reason = if refreshed.gone.contains_key(&inst) {
                        Some("deleted outside berth: it will be created again".to_string())
                    } else {
                        None
                    };
                    (Action::Create, reason)
                }
                Some(_) if tainted => (replace_action(cbd), Some("tainted: it failed during a previous apply".to_string())),
                Some(_) if forced => (replace_action(cbd), Some("replacement requested with --replace".to_string())),
                Some(_) if !planned.requires_replace.is_empty() => (replace_action(cbd), None),
                Some(_) => {
                    let same = prior_value.as_ref().is_some_and(|p| p.same_as(&after) && p.is_known() == after.is_known());
                    if same { (Action::NoOp, None) } else { (Action::Update, None) }
                }
            };
            if action.deletes() && decl.lifecycle.prevent_destroy {
                diags.push(
                    Diagnostic::error(format!("`{inst}` has `lifecycle {{ prevent_destroy = true }}` but this plan would replace it"))
                        .at(decl.span.clone()),
                );
            }
            let mut notes = planned.notes;
            if prior.is_some_and(|p| p.imported) {
                action = super::import::claim(action, provider.ownership_marks(&addr.type_), &mut notes);
            }
            if action.creates() {
                self.check_health_args(decl, world, &inst, &after, &mut health_seen, &mut diags);
            }
            if action.creates() && decl.health_check.is_some() {
                notes.push(
                    "health-gated: what depends on it switches over, and any old object is destroyed, only after its health check passes"
                        .into(),
                );
            }
            if refreshed.adopted.contains(&inst) {
                notes.push("adopted: created by an interrupted run and found again by its ownership tags".into());
            }
            let import = fresh.get(&inst).and(imports.get(&inst)).map(|r| r.id.clone());
            world.set_instance(addr, key, if action == Action::NoOp { prior_value.clone().unwrap_or_default() } else { after.clone() });
            let gone = if action == Action::Create { refreshed.gone.get(&inst).cloned() } else { None };
            changes.push(ResourceChange {
                addr: inst,
                deposed: None,
                provider: decl.provider.clone(),
                action,
                before: prior_value,
                after: Some(after),
                replace_paths: planned.requires_replace,
                reason,
                notes,
                create_before_destroy: cbd,
                generation: prior.map(|p| p.generation).unwrap_or(0),
                import,
                drain_ms: None,
                wave: None,
                gone,
            });
        }
        // Instances that no longer exist in the expansion.
        let orphans: Vec<&ResourceState> = state.instances_of(addr).filter(|r| !key_set.contains(&r.addr.key)).collect();
        for r in orphans {
            world.remove_instance(addr, &r.addr.key);
            if !in_target(&r.addr) {
                continue;
            }
            if decl.lifecycle.prevent_destroy {
                diags.push(
                    Diagnostic::error(format!("`{}` has `lifecycle {{ prevent_destroy = true }}` but this plan would destroy it", r.addr))
                        .at(decl.span.clone()),
                );
            }
            let reason = match r.addr.key {
                InstanceKey::Int(_) => "its index is beyond the current `count`",
                InstanceKey::Str(_) => "its key is not in the current `for_each`",
                InstanceKey::None => "the resource now uses `count` or `for_each`",
            };
            changes.push(self.delete_change(r, Some(reason.into())));
        }
        if diags.has_errors() { Err(diags) } else { Ok(()) }
    }
}

/// The instance a key value names: a whole number for `count`, a string
/// for `for_each`.
fn instance_key(v: &Value) -> Option<InstanceKey> {
    match v.unmarked() {
        Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(InstanceKey::Int(*n as usize)),
        Value::String(s) => Some(InstanceKey::Str(s.clone())),
        _ => None,
    }
}

fn replace_action(cbd: bool) -> Action {
    if cbd { Action::CreateThenDelete } else { Action::DeleteThenCreate }
}

/// How an inventory file would change, from its evaluation at plan time.
fn inventory_change(b: crate::engine::inventory::Built) -> InventoryChange {
    use crate::engine::inventory::Built;
    use crate::inventory::{display_path, file_content};
    match b {
        Built::Pending { name, path } => InventoryChange { name, path: display_path(&path), diff: String::new(), pending: true },
        Built::Ready(inv) => {
            let path = display_path(&inv.path);
            let new = file_content(&inv).unwrap_or_default();
            let old = std::fs::read_to_string(&inv.path).unwrap_or_default();
            let diff = if old == new { String::new() } else { crate::inventory::unified_diff(&path, &old, &new) };
            InventoryChange { name: inv.name, path, diff, pending: false }
        }
    }
}
