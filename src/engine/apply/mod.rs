//! Carries out a plan.
//!
//! The changes form a step graph ([`crate::engine::order`]): a change
//! waits for the changes of what it depends on; destroys run in reverse
//! dependency order; a destroy-then-create replacement destroys first; a
//! create-before-destroy replacement creates the new object, lets every
//! dependent switch to it, then destroys the old one (kept meanwhile as a
//! "deposed" object). The walk ([`crate::engine::walk`]) is parallel, bounded
//! by `--parallelism`, and cancellable; this module is its visitor, and
//! hands providers batches: every change of one type that is ready at the
//! same step goes to the provider in one call.
//!
//! Every create is recorded in the state journal as pending before it starts
//! (write-ahead), and every result before anything that depends on it
//! starts; the journal is folded into the state file once at the end
//! (`record.rs`). What concerns objects outside berth is forced to disk at
//! once; what concerns the built-in, state-only resources only reaches the
//! kernel (which keeps it if berth is killed) and goes to disk with the next
//! synced write. A failure skips only what depends on it; a created object
//! with a [`health`] check holds its dependents until it answers, and is
//! seen by them (and by inventories) only once it has. The destroy of an old
//! object with a drain (see [`ResourceChange::drain_ms`]) first journals
//! when the drain ends, waits for it, then destroys: a killed run leaves the
//! object and the rest of its drain to the next.
//!
//! The jobs, in the order an apply does them: order the steps, seed the
//! evaluation scope, record the data sources, walk, then outputs, inventory
//! files, the final state write, and the `on_replace` [`hook`]s.

pub mod health;
pub mod hook;
mod record;

use crate::addr::{InstanceKey, ResourceAddr};
use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::engine::order::{self, Step};
use crate::engine::progress::{Event, Progress, StepRef, Subject};
use crate::engine::scope::World;
use crate::engine::walk::{self, Outcome, Visitor, Work};
use crate::plan::{Action, Plan, ResourceChange};
use crate::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, ProviderError, Registry};
use crate::state::{Backend, JournalEntry, OutputState, PendingCreate, State};
use crate::value::Value;
use petgraph::graph::{DiGraph, NodeIndex};
use record::{Recorder, deposed_key};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A failure, and what it is about.
#[derive(Clone, Debug)]
pub struct Failure {
    pub subject: Subject,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    pub failures: Vec<Failure>,
    /// Operations that succeeded with a caveat.
    pub warnings: Vec<(StepRef, String)>,
    /// Steps not started: downstream of a failure, or after an interrupt.
    pub skipped: Vec<StepRef>,
    pub interrupted: bool,
    /// Inventory files rewritten (their content changed).
    pub inventories: Vec<String>,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty() && !self.interrupted
    }

    fn fail(&mut self, subject: Subject, error: impl Into<String>) {
        self.failures.push(Failure { subject, error: error.into() });
    }
}

#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// How many provider calls may run at once (at least one).
    pub parallelism: usize,
    /// For a saved plan, as [`PlanOptions::providers`](crate::engine::PlanOptions::providers).
    pub providers: Registry,
}

/// Applies `plan` to `state`, journaling every result through `backend`, and
/// writes the final state. `state` must be the state the plan was made from.
/// When `cancel` fires, the operations in flight finish and are recorded,
/// and nothing new starts.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    plan: &Plan,
    config: &Config,
    state: State,
    state_exists: bool,
    providers: &Registry,
    backend: &dyn Backend,
    opts: &ApplyOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(ApplyReport, State), Diagnostic> {
    let g = order::build(plan, &state)?;
    if cancel.is_cancelled() {
        // Stopped before anything started: nothing is recorded either.
        progress.event(Event::Interrupted { in_flight: 0 });
        let mut skipped: Vec<StepRef> = g.node_weights().filter_map(|s| step_ref(plan, *s)).collect();
        skipped.sort_by_cached_key(|s| s.to_string());
        return Ok((ApplyReport { interrupted: true, skipped, ..ApplyReport::default() }, state));
    }
    let world = seed_scope(plan, config, &state);
    let rec = Recorder::start(plan, config, state, state_exists, backend).await?;
    let mut applier = Applier {
        plan,
        config,
        world: &world,
        providers,
        progress,
        g: &g,
        rec,
        report: ApplyReport::default(),
        started: vec![None; g.node_count()],
        planned_after: HashMap::new(),
        expansions: HashMap::new(),
        cancel,
        drained: HashSet::new(),
        rewaved: HashSet::new(),
        awaiting_health: HashMap::new(),
    };
    let walked = walk::walk(&g, opts.parallelism, cancel, &mut applier).await?;
    let Applier { rec, mut report, .. } = applier;
    report.skipped.extend(walked.skipped.into_iter().filter_map(|n| step_ref(plan, g[n])));
    report.skipped.sort_by_cached_key(|s| s.to_string());
    report.skipped.dedup();

    let outputs = if plan.destroy { BTreeMap::new() } else { outputs(config, &world, &rec.state) };
    // Inventory files, from what exists now (also after a partial failure).
    if !plan.destroy {
        write_inventories(config, &world, progress, &mut report);
    }
    let state = rec.finish(outputs).await?;
    // Last, with the state written: a failing hook loses nothing that was built.
    hook::run_after_apply(config, &world, plan, &state, &mut report, progress, cancel).await;
    Ok((report, state))
}

/// The evaluation scope the walk starts from: every current object of the
/// state, less what the plan deletes, and the data sources as the plan read
/// them.
fn seed_scope<'c>(plan: &Plan, config: &'c Config, state: &State) -> World<'c> {
    let world = World::new(config, plan.variables.clone(), &plan.workspace);
    for r in state.resources.values().filter(|r| r.deposed.is_none()) {
        world.set_instance(&r.addr.resource, r.addr.key.clone(), r.value());
    }
    for c in &plan.changes {
        if c.action == Action::Delete && c.deposed.is_none() {
            world.remove_instance(&c.addr.resource, &c.addr.key);
        }
        // An object the plan imports exists already, as read.
        if let (Some(_), Some(before)) = (&c.import, &c.before) {
            world.set_instance(&c.addr.resource, c.addr.key.clone(), before.clone());
        }
    }
    for d in plan.data.iter().filter(|_| !plan.destroy) {
        if let Some(v) = &d.value {
            world.set_instance(&d.addr.resource, d.addr.key.clone(), v.clone());
        }
    }
    world
}

/// The root outputs, from whatever now exists; an output that cannot be
/// known keeps its old value.
fn outputs(config: &Config, world: &World<'_>, state: &State) -> BTreeMap<String, OutputState> {
    world.existing_only(|| {
        let mut outputs = BTreeMap::new();
        for (name, decl) in &config.root().outputs {
            match world.output(&Vec::new(), name) {
                Ok(v) if v.is_known() => {
                    let sensitive = decl.sensitive || v.is_sensitive();
                    outputs.insert(name.clone(), OutputState { value: v.into_unmarked().0, sensitive });
                }
                _ => {
                    if let Some(old) = state.outputs.get(name) {
                        outputs.insert(name.clone(), old.clone());
                    }
                }
            }
        }
        outputs
    })
}

/// The step as reports name it; `None` for a join, which has no work.
fn step_ref(plan: &Plan, step: Step) -> Option<StepRef> {
    let (i, destroy) = match step {
        Step::Change(i) | Step::Rewave { change: i, .. } | Step::Unlist { change: i, .. } => (i, false),
        Step::Destroy(i) => (i, true),
        Step::Join => return None,
    };
    let c = &plan.changes[i];
    Some(StepRef { addr: c.addr.clone(), action: c.action, destroy, deposed: c.deposed.clone() })
}

/// What the walk's tasks report.
enum Msg {
    /// A provider finished an operation.
    Done { node: NodeIndex, outcome: ApplyOutcome },
    /// A health check finished.
    Health { node: NodeIndex, result: Result<(), String> },
    /// The drain before a destroy ended: `done` when it ran its course,
    /// not when the run was interrupted during it.
    Drained { node: NodeIndex, done: bool },
}

/// The apply's side of the walk.
struct Applier<'a> {
    plan: &'a Plan,
    config: &'a Config,
    world: &'a World<'a>,
    providers: &'a Registry,
    progress: &'a dyn Progress,
    g: &'a DiGraph<Step, ()>,
    rec: Recorder<'a>,
    report: ApplyReport,
    /// When each step was handed to its provider.
    started: Vec<Option<Instant>>,
    /// Planned values of the operations started, for the sensitive marks of their results.
    planned_after: HashMap<NodeIndex, Value>,
    expansions: HashMap<ResourceAddr, HashMap<InstanceKey, Option<Value>>>,
    /// Ends drains early when the run is interrupted.
    cancel: &'a CancellationToken,
    /// Destroy steps whose drain is over.
    drained: HashSet<NodeIndex>,
    /// Changes a [`Step::Rewave`] updated already: their object in the
    /// state, not the plan's `before`, is what they update from.
    rewaved: HashSet<usize>,
    /// New objects waiting for their health gate: what they are becomes
    /// visible (to dependents, inventories) only once they are healthy.
    awaiting_health: HashMap<NodeIndex, Value>,
}

impl Visitor for Applier<'_> {
    type Msg = Msg;
    type Error = Diagnostic;

    async fn start(&mut self, ready: Vec<NodeIndex>, work: &mut Work<Msg>) -> Result<Vec<(NodeIndex, Outcome)>, Diagnostic> {
        self.launch(ready, work).await
    }

    async fn finish(&mut self, msgs: Vec<Msg>, work: &mut Work<Msg>) -> Result<Vec<(NodeIndex, Outcome)>, Diagnostic> {
        let mut entries = Vec::new();
        let mut settled = Vec::new();
        let mut drained = Vec::new();
        // Whether this batch holds a result of an object outside berth.
        let mut remote = false;
        for msg in msgs {
            let (node, outcome) = match msg {
                Msg::Done { node, outcome } => (node, outcome),
                Msg::Health { node, result } => {
                    remote |= self.health_result(node, result, &mut entries, &mut settled);
                    continue;
                }
                Msg::Drained { node, done } => {
                    if done && !self.cancel.is_cancelled() {
                        self.drained.insert(node);
                        drained.push(node);
                    } else {
                        // Interrupted: the old object stays, with the rest of its drain journaled.
                        self.report.skipped.push(work_ref(self.plan, self.g[node]));
                        settled.push((node, Outcome::Failed));
                    }
                    continue;
                }
            };
            remote |= self.result(node, outcome, &mut entries, &mut settled, work);
        }
        self.rec.append(entries, remote).await?;
        if !drained.is_empty() {
            settled.extend(self.launch(drained, work).await?);
        }
        Ok(settled)
    }

    fn cancelled(&mut self, in_flight: usize) {
        self.report.interrupted = true;
        self.progress.event(Event::Interrupted { in_flight });
    }
}

impl Applier<'_> {
    /// Starts steps that are ready: hands their operations to the
    /// providers in batches, or, for the destroy of an old object with a
    /// drain left, starts the drain (the destroy follows it).
    async fn launch(&mut self, ready: Vec<NodeIndex>, work: &mut Work<Msg>) -> Result<Vec<(NodeIndex, Outcome)>, Diagnostic> {
        let plan = self.plan;
        // Old objects of replacements go only after the inventories point
        // at their successors (or, destroyed first, no longer list them).
        let replacing = ready.iter().any(|n| match self.g[*n] {
            Step::Destroy(i) => plan.changes[i].action.is_replace() || plan.changes[i].deposed.is_some(),
            Step::Change(_) | Step::Rewave { .. } | Step::Unlist { .. } | Step::Join => false,
        });
        if replacing && !plan.destroy {
            write_inventories(self.config, self.world, self.progress, &mut self.report);
        }
        let mut groups: BTreeMap<(String, String, bool), Vec<(NodeIndex, ApplyOp)>> = BTreeMap::new();
        let mut remote_pending = false;
        let mut entries = Vec::new();
        let mut settled = Vec::new();
        let mut failed_now = Vec::new();
        let mut draining = Vec::new();
        let mut drain_entries = Vec::new();
        for n in ready {
            let step = self.g[n];
            if step == Step::Join {
                settled.push((n, Outcome::Done));
                continue;
            }
            if let Step::Destroy(i) = step
                && !plan.destroy
                && !self.drained.contains(&n)
                && let Some(ms) = self.rec.start_drain(&plan.changes[i], crate::state::now_ms(), &mut drain_entries)
            {
                draining.push((n, ms));
                continue;
            }
            match self.prepare(step).await {
                Ok(Prepared::Op { provider, type_, op, after }) => {
                    // Write-ahead: a create is journaled before it starts,
                    // and forced to disk when its object is outside berth.
                    if let ChangeKind::Create { .. } = op.kind {
                        remote_pending |= !local_only(self.providers, &provider);
                        entries.push(JournalEntry::Pending(PendingCreate {
                            addr: op.ctx.addr.clone(),
                            provider: provider.clone(),
                            generation: op.ctx.generation,
                            token: op.ctx.token.clone(),
                        }));
                    }
                    self.planned_after.insert(n, after);
                    groups.entry((provider, type_, matches!(step, Step::Destroy(_)))).or_default().push((n, op));
                }
                Ok(Prepared::Read { value }) => {
                    let c = &plan.changes[change_index(step)];
                    self.world.set_instance(&c.addr.resource, c.addr.key.clone(), value);
                    settled.push((n, Outcome::Done));
                }
                Ok(Prepared::Unchanged) => {
                    if let Step::Change(i) = step
                        && plan.changes[i].action == Action::Update
                    {
                        // Its waves updated it already.
                        self.report.changed += 1;
                    }
                    settled.push((n, Outcome::Done));
                }
                Err(e) => failed_now.push((n, e)),
            }
        }
        for (n, e) in failed_now {
            self.relist(self.g[n]);
            let step = work_ref(plan, self.g[n]);
            let error = e.to_string();
            self.progress.event(Event::Failed { step: &step, error: &error });
            self.report.fail(Subject::Step(step), error);
            settled.push((n, Outcome::Failed));
        }
        if !entries.is_empty() {
            self.rec.pending(&entries);
            self.rec.append(entries, remote_pending).await?;
        }
        if !drain_entries.is_empty() {
            // When each drain ends is on disk before it starts: a killed run resumes it.
            self.rec.append(drain_entries, true).await?;
        }
        for (n, ms) in draining {
            self.progress.event(Event::Draining { step: &work_ref(plan, self.g[n]), ms });
            let cancel = self.cancel.clone();
            work.spawn(1, move |tx| async move {
                let done = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
                    _ = cancel.cancelled() => false,
                };
                let _ = tx.send(Msg::Drained { node: n, done });
            });
        }
        for ((pkey, type_, _), items) in groups {
            let provider = self
                .providers
                .get(&pkey)
                .cloned()
                .ok_or_else(|| Diagnostic::error(format!("provider `{pkey}` is not configured")))?;
            let nodes: Vec<NodeIndex> = items.iter().map(|(n, _)| *n).collect();
            for &n in &nodes {
                self.progress.event(Event::Started(&work_ref(plan, self.g[n])));
                self.started[n.index()] = Some(Instant::now());
            }
            let ops: Vec<ApplyOp> = items.into_iter().map(|(_, o)| o).collect();
            work.spawn_bounded(nodes.len(), move |tx| async move {
                let (sink, mut results) = tokio::sync::mpsc::unbounded_channel();
                let forward = async {
                    let mut seen = vec![false; nodes.len()];
                    while let Some((i, outcome)) = results.recv().await {
                        // Only the first answer for an operation counts.
                        if let Some(&node) = nodes.get(i)
                            && !std::mem::replace(&mut seen[i], true)
                        {
                            let _ = tx.send(Msg::Done { node, outcome });
                        }
                    }
                    // A provider that dropped an operation without an answer: report it, never hang.
                    for (i, s) in seen.iter().enumerate() {
                        if !s {
                            let outcome = ApplyOutcome::failed(None, ProviderError::new("the provider returned no result"));
                            let _ = tx.send(Msg::Done { node: nodes[i], outcome });
                        }
                    }
                };
                tokio::join!(provider.apply(&type_, ops, sink), forward);
            });
        }
        Ok(settled)
    }

    /// Records a provider's answer for one step; answers whether it concerns
    /// an object outside berth.
    fn result(
        &mut self,
        node: NodeIndex,
        outcome: ApplyOutcome,
        entries: &mut Vec<JournalEntry>,
        settled: &mut Vec<(NodeIndex, Outcome)>,
        work: &mut Work<Msg>,
    ) -> bool {
        let plan = self.plan;
        let step = self.g[node];
        let elapsed = self.started[node.index()].map(|t| t.elapsed()).unwrap_or_default();
        let sref = work_ref(plan, step);
        let c = &plan.changes[change_index(step)];
        let remote = !local_only(self.providers, &c.provider);
        for w in outcome.warnings {
            self.progress.event(Event::Warning { step: &sref, warning: &w });
            self.report.warnings.push((sref.clone(), w));
        }
        let destroying = matches!(step, Step::Destroy(_));
        match (destroying, outcome.state, outcome.error) {
            (true, None, None) => {
                self.rec.destroyed(c, entries);
                self.report.destroyed += 1;
                self.progress.event(Event::Finished { step: &sref, id: None, elapsed });
                settled.push((node, Outcome::Done));
            }
            (true, _, err) => {
                let msg = err.map(|e| e.message).unwrap_or_else(|| "the object still exists".into());
                self.progress.event(Event::Failed { step: &sref, error: &msg });
                self.report.fail(Subject::Step(sref), msg);
                settled.push((node, Outcome::Failed));
            }
            (false, new_state, err) => {
                let rewave = matches!(step, Step::Rewave { .. } | Step::Unlist { .. });
                let mut gate = None;
                if let Some(v) = new_state {
                    let schema_sensitive = sensitive_attrs(self.providers, c);
                    let marked = mark_like(v, self.planned_after.get(&node), &schema_sensitive);
                    self.rec.object(plan, c, &marked, err.is_some(), entries);
                    // A health gate holds the step open until the new object
                    // answers; until then what is served stays the old object.
                    if err.is_none() && c.action.creates() {
                        gate = match health::gate(self.config, self.world, c, marked.clone()) {
                            Ok(g) => g,
                            Err(e) => Some(Err(e)),
                        };
                    }
                    if gate.is_some() {
                        self.awaiting_health.insert(node, marked);
                    } else {
                        self.world.set_instance(&c.addr.resource, c.addr.key.clone(), marked);
                    }
                    if rewave {
                        self.rewaved.insert(change_index(step));
                    }
                } else if c.action.creates() && !err.as_ref().is_some_and(|e| e.is_indeterminate()) {
                    self.rec.nothing_created(c, entries);
                }
                // A create whose request may have landed stays pending:
                // the next run looks for its object by its token.
                match (err, gate) {
                    (None, Some(gate)) => {
                        if c.action.creates() {
                            self.report.added += 1;
                        }
                        self.progress.event(Event::Finished { step: &sref, id: None, elapsed });
                        match gate {
                            Ok(h) => {
                                self.progress.event(Event::HealthWaiting { step: &sref, url: &h.url, expect_status: h.expect_status });
                                work.spawn(1, move |tx| async move {
                                    let result = h.wait().await;
                                    let _ = tx.send(Msg::Health { node, result });
                                });
                            }
                            Err(e) => work.send(Msg::Health { node, result: Err(e) }),
                        }
                    }
                    (None, None) => {
                        match c.action {
                            Action::Create | Action::DeleteThenCreate | Action::CreateThenDelete => self.report.added += 1,
                            // An update after a wave is one of several of the change's.
                            Action::Update if !rewave => self.report.changed += 1,
                            _ => {}
                        }
                        let id = self.rec.state.get(&c.addr).and_then(|r| r.attributes.get_str("id").map(str::to_string));
                        self.progress.event(Event::Finished { step: &sref, id: id.as_deref(), elapsed });
                        settled.push((node, Outcome::Done));
                    }
                    (Some(e), _) => {
                        self.relist(step);
                        let tainted = if self.rec.state.get(&c.addr).is_some_and(|r| r.tainted) {
                            " (the object exists and is marked tainted)"
                        } else {
                            ""
                        };
                        let msg = format!("{}{tainted}", e.message);
                        self.progress.event(Event::Failed { step: &sref, error: &msg });
                        self.report.fail(Subject::Step(sref), msg);
                        settled.push((node, Outcome::Failed));
                    }
                }
            }
        }
        remote
    }

    /// Records the end of a health gate; answers whether it concerns an
    /// object outside berth.
    fn health_result(
        &mut self,
        node: NodeIndex,
        result: Result<(), String>,
        entries: &mut Vec<JournalEntry>,
        settled: &mut Vec<(NodeIndex, Outcome)>,
    ) -> bool {
        let step = self.g[node];
        let c = &self.plan.changes[change_index(step)];
        let sref = work_ref(self.plan, step);
        let new = self.awaiting_health.remove(&node);
        match result {
            Ok(()) => {
                if let Some(v) = new {
                    self.world.set_instance(&c.addr.resource, c.addr.key.clone(), v);
                }
                self.progress.event(Event::Healthy(&sref));
                settled.push((node, Outcome::Done));
            }
            Err(e) => {
                self.rec.taint(c, entries);
                // What is served stays the old object: inventories and
                // multi-value records keep it, and never list the new one.
                // Without an old object (it went first), there is none.
                match self.rec.state.resources.get(&(c.addr.clone(), Some(deposed_key(c)))) {
                    Some(old) if c.action == Action::CreateThenDelete => {
                        self.world.set_instance(&c.addr.resource, c.addr.key.clone(), old.value())
                    }
                    _ => self.world.remove_instance(&c.addr.resource, &c.addr.key),
                }
                let msg = format!("{e}; the new object is kept and marked tainted, and nothing that depends on it was changed");
                self.progress.event(Event::Failed { step: &sref, error: &msg });
                self.report.fail(Subject::Step(sref), msg);
                settled.push((node, Outcome::Failed));
            }
        }
        !local_only(self.providers, &c.provider)
    }

    /// The hosts of a group a failed [`Step::Unlist`] dropped: they are not
    /// destroyed after all, so what lists them (inventories) lists them again.
    fn relist(&self, step: Step) {
        let Step::Unlist { of, wave, .. } = step else { return };
        for m in unlisted(self.plan, of, wave) {
            if let Some(r) = self.rec.state.get(&m.addr) {
                self.world.set_instance(&m.addr.resource, m.addr.key.clone(), r.value());
            }
        }
    }

    /// Turns a step into a provider operation, re-evaluating the configuration
    /// now that everything it depends on exists.
    async fn prepare(&mut self, step: Step) -> Result<Prepared, StepError> {
        let (plan, world, state) = (self.plan, self.world, &self.rec.state);
        let c = &plan.changes[change_index(step)];
        let provider = self
            .providers
            .get(&c.provider)
            .ok_or_else(|| StepError::Other(format!("provider `{}` is not configured", c.provider)))?;
        // An imported object takes berth's ownership marks with its update.
        let claim = c.action == Action::Update && state.get(&c.addr).is_some_and(|r| r.imported);
        let ctx = OpContext::new(c.addr.clone(), state.lineage.clone(), c.generation).claiming(claim);
        if let Step::Destroy(_) = step {
            let prior = match (&c.deposed, c.action) {
                (Some(d), _) => state.resources.get(&(c.addr.clone(), Some(d.clone()))).map(|r| r.value()),
                (None, Action::CreateThenDelete) => state.resources.get(&(c.addr.clone(), Some(deposed_key(c)))).map(|r| r.value()),
                _ => state.get(&c.addr).map(|r| r.value()),
            }
            .or_else(|| c.before.clone())
            .ok_or_else(|| StepError::Other("nothing to destroy".into()))?;
            let prior = prior.into_unmarked().0;
            return Ok(Prepared::Op {
                provider: c.provider.clone(),
                type_: c.addr.resource.type_.clone(),
                op: ApplyOp { ctx, kind: ChangeKind::Delete { prior } },
                after: Value::Null,
            });
        }
        let decl = self
            .config
            .resource(&c.addr.resource)
            .ok_or_else(|| StepError::Other(format!("`{}` is not in the configuration", c.addr.resource)))?;
        if !self.expansions.contains_key(&c.addr.resource) {
            let e = world.expand(decl).map_err(Diagnostics::from)?;
            self.expansions.insert(c.addr.resource.clone(), e.into_iter().collect());
        }
        let each_value = self.expansions[&c.addr.resource].get(&c.addr.key).cloned().flatten();
        let ectx = world.instance_ctx(&c.addr.resource.module, &c.addr.key, each_value);
        if let Step::Unlist { of, wave, .. } = step {
            // The hosts about to be destroyed are no longer listed.
            for m in unlisted(plan, of, wave) {
                world.remove_instance(&m.addr.resource, &m.addr.key);
            }
        }
        let schema = provider.schema(c.addr.resource.mode, &c.addr.resource.type_);
        let eval = || world.eval_body(&decl.body, schema, &ectx, &format!("`{}`", c.addr), decl.span.as_ref());
        // Without the hosts unlisted, a list of every host is of those left.
        let mut cfg = if matches!(step, Step::Unlist { .. }) { world.existing_only(eval) } else { eval() }?;
        if !cfg.is_known() {
            return Err(StepError::Other("the configuration still has unknown values after its dependencies were applied".into()));
        }
        if c.action == Action::Read {
            let v = provider.read(&ctx, &c.addr.resource.type_, &cfg).await?;
            return Ok(Prepared::Read { value: v });
        }
        // An update a wave already applied goes on from the object it left.
        let again = matches!(step, Step::Rewave { .. } | Step::Unlist { .. }) || self.rewaved.contains(&change_index(step));
        let prior = match c.action {
            Action::Update if again => state.get(&c.addr).map(|r| r.value()).or_else(|| c.before.clone()),
            Action::Update => c.before.clone().or_else(|| state.get(&c.addr).map(|r| r.value())),
            _ => None,
        };
        if let Some(p) = &prior {
            decl.lifecycle.keep_ignored(&mut cfg, p);
        }
        let planned = provider.plan(&ctx, &c.addr.resource.type_, prior.as_ref(), &cfg).await?;
        if again && prior.as_ref().is_some_and(|p| p.same_as(&planned.after) && planned.after.is_known()) {
            return Ok(Prepared::Unchanged);
        }
        let after = planned.after.clone();
        let bare = planned.after.into_unmarked().0;
        let (kind, ctx) = match prior {
            Some(p) => (ChangeKind::Update { prior: p.into_unmarked().0, planned: bare }, ctx),
            // Each create attempt gets its own token, journaled with the pending entry.
            None => (ChangeKind::Create { planned: bare }, ctx.with_token(OpContext::fresh_token())),
        };
        Ok(Prepared::Op { provider: c.provider.clone(), type_: c.addr.resource.type_.clone(), op: ApplyOp { ctx, kind }, after })
    }
}

// Made once per step and consumed at once: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Op { provider: String, type_: String, op: ApplyOp, after: Value },
    Read { value: Value },
    /// An update after a wave with nothing left to change.
    Unchanged,
}

/// Why a step could not be handed to its provider.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Config(#[from] Diagnostics),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    Other(String),
}

/// A step with work to do, as reports name it. Joins are settled as soon
/// as they are ready, so no work is ever started, failed or finished for
/// one.
fn work_ref(plan: &Plan, step: Step) -> StepRef {
    step_ref(plan, step).unwrap_or_else(|| unreachable!("a join has no work"))
}

/// The changes whose old objects a [`Step::Unlist`] drops: the
/// destroy-then-create replacements of change `of`'s resource in `wave`
/// (0: those of no wave).
fn unlisted(plan: &Plan, of: usize, wave: usize) -> impl Iterator<Item = &ResourceChange> {
    let group = &plan.changes[of].addr.resource;
    plan.changes.iter().filter(move |m| {
        &m.addr.resource == group && m.deposed.is_none() && m.action == Action::DeleteThenCreate && m.wave.map_or(0, |w| w.index) == wave
    })
}

/// The change a step belongs to (see [`work_ref`]).
fn change_index(step: Step) -> usize {
    match step {
        Step::Change(i) | Step::Destroy(i) | Step::Rewave { change: i, .. } | Step::Unlist { change: i, .. } => i,
        Step::Join => unreachable!("a join has no change"),
    }
}

/// Whether a provider's objects exist only in berth's state (see
/// [`Provider::local_only`](crate::providers::Provider::local_only)).
fn local_only(providers: &Registry, key: &str) -> bool {
    providers.get(key).is_some_and(|p| p.local_only())
}

fn sensitive_attrs(providers: &Registry, c: &ResourceChange) -> Vec<&'static str> {
    providers
        .get(&c.provider)
        .and_then(|p| p.schema(c.addr.resource.mode, &c.addr.resource.type_))
        .map(|s| s.attributes.iter().filter(|a| a.sensitive).map(|a| a.name).collect())
        .unwrap_or_default()
}

/// Puts the sensitive marks of the planned value (and of sensitive schema
/// attributes) onto a provider's result.
fn mark_like(v: Value, planned: Option<&Value>, schema_sensitive: &[&str]) -> Value {
    let mut paths = planned.map(|p| p.sensitive_paths()).unwrap_or_default();
    for a in schema_sensitive {
        if v.get(a).is_some_and(|x| !x.is_null()) {
            paths.push(a.to_string());
        }
    }
    v.mark_paths(&paths)
}

/// Rewrites every inventory file whose content changed, from the walk's values.
fn write_inventories(config: &Config, world: &World<'_>, progress: &dyn Progress, report: &mut ApplyReport) {
    use crate::engine::inventory::{Built, build_all};
    use crate::inventory::{display_path, file_content, write_if_changed};
    for built in world.existing_only(|| build_all(world, config)) {
        match built {
            Ok(Built::Ready(inv)) => {
                let path = display_path(&inv.path);
                let written = match file_content(&inv) {
                    Ok(content) => write_if_changed(&inv.path, &content).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match written {
                    Ok(true) => {
                        progress.event(Event::InventoryWritten { name: &inv.name, path: &path });
                        if !report.inventories.contains(&path) {
                            report.inventories.push(path);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => report.fail(Subject::Inventory(Some(inv.name)), format!("cannot write `{path}`: {e}")),
                }
            }
            Ok(Built::Pending { name, .. }) => {
                report.fail(Subject::Inventory(Some(name)), "its hosts are not all known (something they depend on failed)")
            }
            Err(d) => report.fail(Subject::Inventory(None), d.to_string()),
        }
    }
}
