//! Carries out a plan.
//!
//! The changes form a graph: a change waits for the changes of what it depends
//! on; destroys run in reverse dependency order; a destroy-then-create
//! replacement destroys first; a create-before-destroy replacement creates the
//! new object, lets every dependent switch to it, then destroys the old one
//! (kept meanwhile as a "deposed" object). The walk is parallel, bounded by
//! `--parallelism`, and hands providers batches: every change of one type that
//! is ready at the same step goes to the provider in one call.
//!
//! Every create is recorded in the state journal as pending before it starts
//! (write-ahead), and every result before anything that depends on it
//! starts; the journal is folded into the state file once at the end. What
//! concerns objects outside berth is forced to disk at once; what concerns
//! the built-in, state-only resources only reaches the kernel (which keeps it
//! if berth is killed) and goes to disk with the next synced write. A failure
//! skips only what depends on it.

pub mod health;

use crate::addr::{InstanceKey, ResourceAddr};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::plan::{Action, Plan, ResourceChange};
use crate::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Registry};
use crate::state::{Backend, JournalEntry, OutputState, PendingCreate, ResourceState, State};
use crate::value::Value;
use crate::engine::scope::World;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    /// Create, update, read, or the create half of a replacement.
    Change(usize),
    /// Delete, or the destroy half of a replacement.
    Destroy(usize),
}

/// What the walk reports as it goes; the CLI prints it to stderr.
pub trait Progress: Send + Sync {
    fn started(&self, addr: &str, verb: &str);
    fn finished(&self, addr: &str, verb: &str, detail: &str, elapsed: std::time::Duration);
    fn failed(&self, addr: &str, verb: &str, error: &str);
    fn message(&self, msg: &str);
}

/// A progress sink that prints nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: &str, _: std::time::Duration) {}
    fn failed(&self, _: &str, _: &str, _: &str) {}
    fn message(&self, _: &str) {}
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
    pub failures: Vec<(String, String)>,
    /// Operations that succeeded with a caveat, by address.
    pub warnings: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub interrupted: bool,
    /// Inventory files rewritten (their content changed).
    pub inventories: Vec<String>,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty() && !self.interrupted
    }
}

fn deps_of<'a>(plan: &'a Plan, r: &ResourceAddr) -> impl Iterator<Item = &'a ResourceAddr> + 'a {
    plan.dependencies.get(r).into_iter().flatten()
}

/// Builds the order of a plan's changes. Errors when they cannot be ordered
/// (a cycle through create-before-destroy and destroy-then-create replacements).
fn build(plan: &Plan, state: &State) -> Result<(DiGraph<Step, ()>, HashMap<Step, NodeIndex>), Diagnostic> {
    let mut g = DiGraph::new();
    let mut seen = HashSet::new();
    let mut idx = HashMap::new();
    let mut changes_of: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    let mut destroys_of: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.action == Action::NoOp {
            continue;
        }
        if matches!(c.action, Action::Create | Action::Update | Action::Read) || c.action.is_replace() {
            let n = g.add_node(Step::Change(i));
            idx.insert(Step::Change(i), n);
            changes_of.entry(&c.addr.resource).or_default().push(n);
        }
        if c.action.deletes() {
            let n = g.add_node(Step::Destroy(i));
            idx.insert(Step::Destroy(i), n);
            destroys_of.entry(&c.addr.resource).or_default().push(n);
        }
    }
    // What each resource depended on when its objects were created (for destroy order).
    let mut state_deps: HashMap<&ResourceAddr, BTreeSet<&ResourceAddr>> = HashMap::new();
    for r in state.resources.values() {
        state_deps.entry(&r.addr.resource).or_default().extend(r.dependencies.iter());
    }
    let destroy_deps = |r: &ResourceAddr| -> BTreeSet<&ResourceAddr> {
        let mut s: BTreeSet<&ResourceAddr> = deps_of(plan, r).collect();
        if let Some(d) = state_deps.get(r) {
            s.extend(d.iter().copied());
        }
        s
    };
    // The create/update steps of each resource's dependents (by the plan or
    // by the state), computed once: looking them up per destroy made a wide
    // destroy quadratic.
    let mut dependent_changes: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    for (j, other) in plan.changes.iter().enumerate() {
        let Some(&m) = idx.get(&Step::Change(j)) else { continue };
        let on = &other.addr.resource;
        let mut deps: BTreeSet<&ResourceAddr> = deps_of(plan, on).collect();
        deps.extend(state_deps.get(on).into_iter().flatten().copied());
        for d in deps.into_iter().filter(|d| *d != on) {
            dependent_changes.entry(d).or_default().push(m);
        }
    }
    for (i, c) in plan.changes.iter().enumerate() {
        let res = &c.addr.resource;
        if let Some(&n) = idx.get(&Step::Change(i)) {
            // The instances of a dependency this instance names by key, when
            // the plan narrowed it to them; otherwise all of them.
            let narrowed = plan.instance_dependencies.get(&c.addr);
            for d in deps_of(plan, res) {
                let keys: Vec<&InstanceKey> =
                    narrowed.into_iter().flatten().filter(|a| &a.resource == d).map(|a| &a.key).collect();
                for &m in changes_of.get(d).into_iter().flatten() {
                    let named = match g[m] {
                        Step::Change(j) => keys.is_empty() || keys.contains(&&plan.changes[j].addr.key),
                        Step::Destroy(_) => true,
                    };
                    if m != n && named {
                        link(&mut g, &mut seen, m, n);
                    }
                }
            }
        }
        if let Some(&n) = idx.get(&Step::Destroy(i)) {
            // Dependents are destroyed first.
            for d in destroy_deps(res) {
                for &m in destroys_of.get(d).into_iter().flatten() {
                    if m != n {
                        link(&mut g, &mut seen, n, m);
                    }
                }
            }
            match c.action {
                Action::DeleteThenCreate => {
                    link(&mut g, &mut seen, n, idx[&Step::Change(i)]);
                }
                _ => {
                    if c.action == Action::CreateThenDelete {
                        link(&mut g, &mut seen, idx[&Step::Change(i)], n);
                    }
                    // The old object goes only once every dependent has moved on.
                    for &m in dependent_changes.get(res).into_iter().flatten() {
                        link(&mut g, &mut seen, m, n);
                    }
                }
            }
        }
    }
    if petgraph::algo::is_cyclic_directed(&g) {
        let cyc: Vec<String> = petgraph::algo::tarjan_scc(&g)
            .into_iter()
            .find(|s| s.len() > 1)
            .unwrap_or_default()
            .into_iter()
            .map(|n| match g[n] {
                Step::Change(i) => format!("create/update `{}`", plan.changes[i].addr),
                Step::Destroy(i) => format!("destroy `{}`", plan.changes[i].addr),
            })
            .collect();
        return Err(Diagnostic::error(format!("the changes cannot be ordered: {}", cyc.join(" → ")))
            .hint("mixing create_before_destroy and destroy-then-create replacements of dependent resources can do this; set create_before_destroy on both"));
    }
    Ok((g, idx))
}

/// Adds the edge `a → b` once. petgraph's `update_edge` scans `a`'s edges,
/// which made a step with N dependents quadratic: `seen` remembers them.
fn link(g: &mut DiGraph<Step, ()>, seen: &mut HashSet<(NodeIndex, NodeIndex)>, a: NodeIndex, b: NodeIndex) {
    if seen.insert((a, b)) {
        g.add_edge(a, b, ());
    }
}

/// Checks at plan time that apply will be able to order the changes.
pub fn order_check(plan: &Plan, state: &State) -> Result<(), Diagnostic> {
    build(plan, state).map(|_| ())
}

pub struct ApplyOptions {
    pub parallelism: usize,
}

enum Msg {
    /// A provider finished an operation.
    Done { step: Step, outcome: ApplyOutcome },
    /// A health check finished.
    Health { step: Step, result: Result<(), String> },
}

/// Applies `plan` to `state`, journaling every result through `backend`, and
/// writes the final state. `state` must be the state the plan was made from.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    plan: &Plan,
    config: &Config,
    mut state: State,
    state_exists: bool,
    providers: &Registry,
    backend: &dyn Backend,
    opts: &ApplyOptions,
    progress: Arc<dyn Progress>,
) -> Result<(ApplyReport, State), Diagnostic> {
    let (g, _idx) = build(plan, &state)?;
    let world = World::new(config, plan.variables.clone(), &plan.workspace);
    for r in state.resources.values().filter(|r| r.deposed.is_none()) {
        world.set_instance(&r.addr.resource, r.addr.key.clone(), r.value());
    }
    for c in &plan.changes {
        if c.action == Action::Delete && c.deposed.is_none() {
            world.remove_instance(&c.addr.resource, &c.addr.key);
        }
    }
    // Data sources as the plan read them.
    let mut data_entries = Vec::new();
    for d in plan.data.iter().filter(|_| !plan.destroy) {
        let Some(v) = &d.value else { continue };
        world.set_instance(&d.addr.resource, d.addr.key.clone(), v.clone());
        let (bare, _) = v.clone().into_unmarked();
        let rs = ResourceState {
            addr: d.addr.clone(),
            deposed: None,
            provider: d.provider.clone(),
            attributes: bare,
            sensitive: v.sensitive_paths(),
            dependencies: deps_of(plan, &d.addr.resource).cloned().collect(),
            tainted: false,
            create_before_destroy: false,
            generation: 0,
        };
        if state.get(&d.addr) != Some(&rs) {
            data_entries.push(JournalEntry::Put(Box::new(rs.clone())));
            state.put(rs);
        }
    }
    // Data sources no longer in the configuration leave the state.
    let stale_data: Vec<_> = state
        .resources
        .keys()
        .filter(|(a, _)| a.resource.mode == crate::addr::Mode::Data && (plan.destroy || config.resource(&a.resource).is_none()))
        .cloned()
        .collect();
    for k in stale_data {
        state.remove(&k);
        data_entries.push(JournalEntry::Remove { addr: k.0, deposed: None });
    }
    if !state_exists {
        state.lineage = plan.lineage.clone();
    }
    let mut journal_begun = false;
    let begin = JournalEntry::Begin { lineage: state.lineage.clone(), serial: state.serial };
    if !data_entries.is_empty() {
        data_entries.insert(0, begin.clone());
        journal_begun = true;
        backend.append(&data_entries).await.map_err(|e| Diagnostic::error(e.to_string()))?;
    }

    let mut indeg: Vec<usize> = g.node_indices().map(|n| g.neighbors_directed(n, petgraph::Incoming).count()).collect();
    let mut ready: Vec<NodeIndex> = g.node_indices().filter(|n| indeg[n.index()] == 0).collect();
    let mut blocked = vec![false; g.node_count()];
    let mut report = ApplyReport::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let sem = Arc::new(tokio::sync::Semaphore::new(opts.parallelism.max(1)));
    let mut inflight = 0usize;
    let mut started: HashMap<Step, Instant> = HashMap::new();
    let mut expansions: HashMap<ResourceAddr, Vec<(InstanceKey, Option<Value>)>> = HashMap::new();
    let mut cancelled = false;
    // Registered now, so a signal at any moment of the walk is caught.
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    // Planned values of successful changes, for sensitive marks of the results.
    let mut planned_after: HashMap<Step, Value> = HashMap::new();

    loop {
        if !cancelled && !ready.is_empty() {
            let batch = std::mem::take(&mut ready);
            // Old objects of replacements go only after the inventories point at their successors.
            let replacing = batch.iter().any(|n| match g[*n] {
                Step::Destroy(i) => plan.changes[i].action == Action::CreateThenDelete || plan.changes[i].deposed.is_some(),
                Step::Change(_) => false,
            });
            if replacing && !plan.destroy {
                write_inventories(config, &world, progress.as_ref(), &mut report);
            }
            let mut groups: BTreeMap<(String, String, bool), Vec<(Step, ApplyOp)>> = BTreeMap::new();
            let mut remote_pending = false;
            let mut entries = Vec::new();
            let mut failed_now = Vec::new();
            for n in batch {
                let step = g[n];
                match prepare(step, plan, config, &world, &state, providers, &mut expansions).await {
                    Ok(Prepared::Op { provider, type_, op, after }) => {
                        // Write-ahead: a create is journaled before it starts,
                        // and forced to disk when its object is outside berth.
                        if let ChangeKind::Create { .. } = op.kind {
                            remote_pending |= !local_only(providers, &provider);
                            entries.push(JournalEntry::Pending(PendingCreate {
                                addr: op.ctx.addr.clone(),
                                provider: provider.clone(),
                                generation: op.ctx.generation,
                                token: op.ctx.token.clone(),
                            }));
                        }
                        planned_after.insert(step, after);
                        groups.entry((provider, type_, matches!(step, Step::Destroy(_)))).or_default().push((step, op));
                    }
                    Ok(Prepared::Read { value }) => {
                        let Step::Change(i) = step else { unreachable!() };
                        let c = &plan.changes[i];
                        world.set_instance(&c.addr.resource, c.addr.key.clone(), value);
                        report_done(&g, n, &mut indeg, &mut ready, &blocked);
                    }
                    Err(e) => failed_now.push((n, e)),
                }
            }
            for (n, e) in failed_now {
                let (addr, verb) = describe(plan, g[n]);
                progress.failed(&addr, verb, &e.to_string());
                report.failures.push((addr, e.to_string()));
                block(&g, n, &mut blocked, &mut report, plan);
            }
            if !entries.is_empty() {
                if !journal_begun {
                    entries.insert(0, begin.clone());
                    journal_begun = true;
                }
                for e in &entries {
                    if let JournalEntry::Pending(p) = e {
                        state.pending.insert(p.addr.clone(), p.clone());
                    }
                }
                let appended =
                    if remote_pending { backend.append(&entries).await } else { backend.append_local(&entries).await };
                appended.map_err(|e| Diagnostic::error(e.to_string()))?;
            }
            for ((pkey, type_, _), items) in groups {
                let provider = providers.get(&pkey).cloned().ok_or_else(|| Diagnostic::error(format!("provider `{pkey}` is not configured")))?;
                let steps: Vec<Step> = items.iter().map(|(s, _)| *s).collect();
                for s in &steps {
                    let (addr, verb) = describe(plan, *s);
                    progress.started(&addr, verb);
                    started.insert(*s, Instant::now());
                }
                inflight += steps.len();
                let ops: Vec<ApplyOp> = items.into_iter().map(|(_, o)| o).collect();
                let tx = tx.clone();
                let sem = sem.clone();
                tokio::spawn(async move {
                    let _permit = sem.acquire().await;
                    let (sink, mut results) = tokio::sync::mpsc::unbounded_channel();
                    let n = ops.len();
                    let forward = async {
                        let mut seen = vec![false; n];
                        while let Some((i, outcome)) = results.recv().await {
                            if let Some(&step) = steps.get(i) {
                                seen[i] = true;
                                let _ = tx.send(Msg::Done { step, outcome });
                            }
                        }
                        // A provider that dropped an operation without an answer: report it, never hang.
                        for (i, s) in seen.iter().enumerate() {
                            if !s {
                                let _ = tx.send(Msg::Done {
                                    step: steps[i],
                                    outcome: ApplyOutcome::failed(None, crate::providers::ProviderError::new("the provider returned no result")),
                                });
                            }
                        }
                    };
                    let work = provider.apply(&type_, ops, sink);
                    tokio::join!(work, forward);
                });
            }
        }
        if inflight == 0 && (ready.is_empty() || cancelled) {
            break;
        }
        if inflight == 0 {
            continue;
        }
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = next_signal(&mut sigint, &mut sigterm), if !cancelled => {
                cancelled = true;
                report.interrupted = true;
                progress.message(&format!("Interrupt received: waiting for {inflight} operation(s) in flight to finish; nothing new will start."));
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while let Ok(o) = rx.try_recv() {
            batch.push(o);
        }
        let mut entries = Vec::new();
        if !journal_begun {
            entries.push(begin.clone());
            journal_begun = true;
        }
        let mut completed = Vec::new();
        // Whether this batch holds a result of an object outside berth.
        let mut remote = false;
        for msg in batch {
            inflight -= 1;
            let (step, outcome) = match msg {
                Msg::Done { step, outcome } => (step, outcome),
                Msg::Health { step, result } => {
                    let Step::Change(i) = step else { continue };
                    let c = &plan.changes[i];
                    remote |= !local_only(providers, &c.provider);
                    let (addr, verb) = describe(plan, step);
                    match result {
                        Ok(()) => {
                            progress.message(&format!("{addr}: healthy"));
                            completed.push(step);
                        }
                        Err(e) => {
                            if let Some(mut r) = state.get(&c.addr).cloned() {
                                r.tainted = true;
                                entries.push(JournalEntry::Put(Box::new(r.clone())));
                                state.put(r);
                            }
                            // What is served stays the old object: inventories keep it.
                            if let Some(old) = state.resources.get(&(c.addr.clone(), Some(deposed_key(c)))) {
                                world.set_instance(&c.addr.resource, c.addr.key.clone(), old.value());
                            }
                            let msg = format!("{e}; the new object is kept and marked tainted, and nothing that depends on it was changed");
                            progress.failed(&addr, verb, &msg);
                            report.failures.push((addr, msg));
                            block(&g, _idx[&step], &mut blocked, &mut report, plan);
                        }
                    }
                    continue;
                }
            };
            let elapsed = started.get(&step).map(|t| t.elapsed()).unwrap_or_default();
            let (addr, verb) = describe(plan, step);
            let (i, destroying) = match step {
                Step::Change(i) => (i, false),
                Step::Destroy(i) => (i, true),
            };
            let c = &plan.changes[i];
            remote |= !local_only(providers, &c.provider);
            let schema_sensitive = sensitive_attrs(providers, c);
            for w in outcome.warnings {
                progress.message(&format!("{addr}: warning: {w}"));
                report.warnings.push((addr.clone(), w));
            }
            match (destroying, outcome.state, outcome.error) {
                (true, None, None) => {
                    let deposed = if c.action == Action::CreateThenDelete { Some(deposed_key(c)) } else { c.deposed.clone() };
                    state.remove(&(c.addr.clone(), deposed.clone()));
                    entries.push(JournalEntry::Remove { addr: c.addr.clone(), deposed });
                    report.destroyed += 1;
                    progress.finished(&addr, verb, "", elapsed);
                    completed.push(step);
                }
                (true, _, err) => {
                    let msg = err.map(|e| e.message).unwrap_or_else(|| "the object still exists".into());
                    progress.failed(&addr, verb, &msg);
                    report.failures.push((addr, msg));
                    block(&g, _idx[&step], &mut blocked, &mut report, plan);
                }
                (false, new_state, err) => {
                    if let Some(v) = new_state {
                        if c.action == Action::CreateThenDelete
                            && let Some(mut old) = state.get(&c.addr).cloned()
                        {
                            // The old object stays, deposed, until its dependents have switched.
                            old.deposed = Some(deposed_key(c));
                            entries.push(JournalEntry::Put(Box::new(old.clone())));
                            state.put(old);
                        }
                        let planned = planned_after.get(&step);
                        let marked = mark_like(v, planned, &schema_sensitive);
                        let (bare, _) = marked.clone().into_unmarked();
                        let rs = ResourceState {
                            addr: c.addr.clone(),
                            deposed: None,
                            provider: c.provider.clone(),
                            attributes: bare,
                            sensitive: marked.sensitive_paths(),
                            dependencies: deps_of(plan, &c.addr.resource).cloned().collect(),
                            // Only a create that failed half-way taints: a failed
                            // update leaves the object as it is, to be updated again.
                            tainted: err.is_some() && c.action.creates(),
                            create_before_destroy: c.create_before_destroy,
                            generation: if c.action.creates() { c.generation + 1 } else { c.generation },
                        };
                        entries.push(JournalEntry::Put(Box::new(rs.clone())));
                        state.put(rs);
                        world.set_instance(&c.addr.resource, c.addr.key.clone(), marked);
                    } else if c.action.creates() && !err.as_ref().is_some_and(|e| e.is_indeterminate()) {
                        // Nothing was created: the create is no longer pending.
                        state.pending.remove(&c.addr);
                        if state.get(&c.addr).is_none() {
                            entries.push(JournalEntry::Remove { addr: c.addr.clone(), deposed: None });
                        }
                    }
                    // A create whose request may have landed stays pending:
                    // the next run looks for its object by its token.
                    // A health gate holds the step open until the new object answers.
                    let gate = if err.is_none() && c.action.creates() {
                        match health_gate(config, &world, c) {
                            Ok(g) => g,
                            Err(e) => Some(Err(e)),
                        }
                    } else {
                        None
                    };
                    match (err, gate) {
                        (None, Some(gate)) => {
                            match c.action {
                                Action::Create | Action::DeleteThenCreate | Action::CreateThenDelete => report.added += 1,
                                _ => {}
                            }
                            let (a, v) = describe(plan, step);
                            progress.finished(&a, v, "", elapsed);
                            inflight += 1;
                            let tx = tx.clone();
                            match gate {
                                Ok(h) => {
                                    progress.message(&format!("{a}: waiting for GET {} to answer {}", h.url, h.expect_status));
                                    tokio::spawn(async move {
                                        let result = h.wait().await;
                                        let _ = tx.send(Msg::Health { step, result });
                                    });
                                }
                                Err(e) => {
                                    let _ = tx.send(Msg::Health { step, result: Err(e) });
                                }
                            }
                        }
                        (None, None) => {
                            match c.action {
                                Action::Create | Action::DeleteThenCreate | Action::CreateThenDelete => report.added += 1,
                                Action::Update => report.changed += 1,
                                _ => {}
                            }
                            let id = state.get(&c.addr).and_then(|r| r.attributes.get_str("id").map(str::to_string));
                            progress.finished(&addr, verb, &id.map(|i| format!("id={i}")).unwrap_or_default(), elapsed);
                            completed.push(step);
                        }
                        (Some(e), _) => {
                            let tainted = if state.get(&c.addr).is_some_and(|r| r.tainted) { " (the object exists and is marked tainted)" } else { "" };
                            let msg = format!("{}{tainted}", e.message);
                            progress.failed(&addr, verb, &msg);
                            report.failures.push((addr, msg));
                            block(&g, _idx[&step], &mut blocked, &mut report, plan);
                        }
                    }
                }
            }
        }
        let appended = if remote { backend.append(&entries).await } else { backend.append_local(&entries).await };
        appended.map_err(|e| Diagnostic::error(e.to_string()))?;
        for step in completed {
            report_done(&g, _idx[&step], &mut indeg, &mut ready, &blocked);
        }
    }
    if cancelled {
        for n in g.node_indices() {
            let step = g[n];
            if !blocked[n.index()] && indeg[n.index()] != usize::MAX && !started.contains_key(&step) {
                let (addr, _) = describe(plan, step);
                report.skipped.push(addr);
            }
        }
    }

    // Outputs, from whatever now exists.
    if !plan.destroy {
        let outputs = world.existing_only(|| {
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
        });
        state.outputs = outputs;
    } else {
        state.outputs.clear();
    }
    // Inventory files, from what exists now (also after a partial failure).
    if !plan.destroy {
        write_inventories(config, &world, progress.as_ref(), &mut report);
    }
    let entries = vec![JournalEntry::Outputs { outputs: state.outputs.clone() }];
    if journal_begun {
        backend.append(&entries).await.map_err(|e| Diagnostic::error(e.to_string()))?;
    }
    state.serial += 1;
    backend.write(&state).await.map_err(|e| Diagnostic::error(e.to_string()))?;
    report.skipped.sort();
    report.skipped.dedup();
    Ok((report, state))
}

/// Whether a provider's objects exist only in berth's state (see
/// [`Provider::local_only`](crate::providers::Provider::local_only)).
fn local_only(providers: &Registry, key: &str) -> bool {
    providers.get(key).is_some_and(|p| p.local_only())
}

fn deposed_key(c: &ResourceChange) -> String {
    format!("g{}", c.generation)
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

fn describe(plan: &Plan, step: Step) -> (String, &'static str) {
    match step {
        Step::Change(i) => {
            let c = &plan.changes[i];
            let verb = match c.action {
                Action::Update => "update",
                Action::Read => "read",
                _ => "create",
            };
            (c.addr.to_string(), verb)
        }
        Step::Destroy(i) => {
            let c = &plan.changes[i];
            let addr = match (&c.deposed, c.action) {
                (Some(d), _) => format!("{} (deposed {d})", c.addr),
                (None, Action::CreateThenDelete) => format!("{} (old object)", c.addr),
                _ => c.addr.to_string(),
            };
            (addr, "destroy")
        }
    }
}

fn report_done(g: &DiGraph<Step, ()>, n: NodeIndex, indeg: &mut [usize], ready: &mut Vec<NodeIndex>, blocked: &[bool]) {
    for m in g.neighbors_directed(n, petgraph::Outgoing) {
        let d = &mut indeg[m.index()];
        *d = d.saturating_sub(1);
        if *d == 0 && !blocked[m.index()] {
            ready.push(m);
        }
    }
}

/// Marks everything downstream of a failed step as skipped.
fn block(g: &DiGraph<Step, ()>, n: NodeIndex, blocked: &mut [bool], report: &mut ApplyReport, plan: &Plan) {
    let mut stack: Vec<NodeIndex> = g.neighbors_directed(n, petgraph::Outgoing).collect();
    blocked[n.index()] = true;
    while let Some(m) = stack.pop() {
        if blocked[m.index()] {
            continue;
        }
        blocked[m.index()] = true;
        report.skipped.push(describe(plan, g[m]).0);
        stack.extend(g.neighbors_directed(m, petgraph::Outgoing));
    }
}

enum Prepared {
    Op { provider: String, type_: String, op: ApplyOp, after: Value },
    Read { value: Value },
}

/// Turns a step into a provider operation, re-evaluating the configuration
/// now that everything it depends on exists.
async fn prepare(
    step: Step,
    plan: &Plan,
    config: &Config,
    world: &World<'_>,
    state: &State,
    providers: &Registry,
    expansions: &mut HashMap<ResourceAddr, Vec<(InstanceKey, Option<Value>)>>,
) -> Result<Prepared, String> {
    let (i, destroying) = match step {
        Step::Change(i) => (i, false),
        Step::Destroy(i) => (i, true),
    };
    let c = &plan.changes[i];
    let provider = providers.get(&c.provider).ok_or_else(|| format!("provider `{}` is not configured", c.provider))?;
    let lineage = state.lineage.clone();
    let ctx = OpContext::new(c.addr.clone(), lineage, c.generation);
    if destroying {
        let prior = match (&c.deposed, c.action) {
            (Some(d), _) => state.resources.get(&(c.addr.clone(), Some(d.clone()))).map(|r| r.value()),
            (None, Action::CreateThenDelete) => state.resources.get(&(c.addr.clone(), Some(deposed_key(c)))).map(|r| r.value()),
            _ => state.get(&c.addr).map(|r| r.value()),
        }
        .or_else(|| c.before.clone())
        .ok_or_else(|| "nothing to destroy".to_string())?;
        let prior = prior.into_unmarked().0;
        return Ok(Prepared::Op {
            provider: c.provider.clone(),
            type_: c.addr.resource.type_.clone(),
            op: ApplyOp { ctx, kind: ChangeKind::Delete { prior } },
            after: Value::Null,
        });
    }
    let decl = config.resource(&c.addr.resource).ok_or_else(|| format!("`{}` is not in the configuration", c.addr.resource))?;
    if !expansions.contains_key(&c.addr.resource) {
        let e = world.expand(decl).map_err(|d| d.to_string())?;
        expansions.insert(c.addr.resource.clone(), e);
    }
    let each_value = expansions[&c.addr.resource].iter().find(|(k, _)| k == &c.addr.key).and_then(|(_, v)| v.clone());
    world.forget_derived();
    let ectx = world.instance_ctx(&c.addr.resource.module, &c.addr.key, each_value);
    let schema = provider.schema(c.addr.resource.mode, &c.addr.resource.type_);
    let mut cfg = world
        .eval_body(&decl.body, schema, &ectx, &format!("`{}`", c.addr), decl.span.as_ref())
        .map_err(|d| d.to_string())?;
    if !cfg.is_known() {
        return Err("the configuration still has unknown values after its dependencies were applied".into());
    }
    if c.action == Action::Read {
        let v = provider.read(&ctx, &c.addr.resource.type_, &cfg).await.map_err(|e| e.message)?;
        return Ok(Prepared::Read { value: v });
    }
    let prior = if c.action == Action::Update { c.before.clone().or_else(|| state.get(&c.addr).map(|r| r.value())) } else { None };
    if let Some(p) = &prior {
        decl.lifecycle.keep_ignored(&mut cfg, p);
    }
    let planned = provider
        .plan(&ctx, &c.addr.resource.type_, prior.as_ref(), &cfg)
        .await
        .map_err(|e| e.message)?;
    let after = planned.after.clone();
    let bare = planned.after.into_unmarked().0;
    let (kind, ctx) = match prior {
        Some(p) => (ChangeKind::Update { prior: p.into_unmarked().0, planned: bare }, ctx),
        // Each create attempt gets its own token, journaled with the pending entry.
        None => (ChangeKind::Create { planned: bare }, ctx.with_token(OpContext::fresh_token())),
    };
    Ok(Prepared::Op { provider: c.provider.clone(), type_: c.addr.resource.type_.clone(), op: ApplyOp { ctx, kind }, after })
}

/// The addresses a plan's failures and skips name, for summaries.
pub fn addr_list(items: &[String]) -> String {
    items.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
}

/// The evaluated health check of a created object, if its resource has one.
fn health_gate(
    config: &Config,
    world: &World<'_>,
    c: &ResourceChange,
) -> Result<Option<Result<crate::engine::apply::health::HealthCheck, String>>, String> {
    let Some(decl) = config.resource(&c.addr.resource) else { return Ok(None) };
    let Some(block) = &decl.health_check else { return Ok(None) };
    let me = world.instance(&c.addr.resource, &c.addr.key).unwrap_or_default();
    world.forget_derived();
    let mut ctx = world.instance_ctx(&c.addr.resource.module, &c.addr.key, None);
    ctx.self_value = Some(me);
    let mut m = crate::value::Map::new();
    for (k, a) in &block.body.attrs {
        let v = crate::config::eval::eval(&a.expr, &ctx).map_err(|d| d.to_string())?;
        m.insert(k.clone(), v);
    }
    match crate::engine::apply::health::HealthCheck::from_value(&Value::Map(m)) {
        Ok(Some(h)) => Ok(Some(Ok(h))),
        Ok(None) => Ok(None),
        Err(e) => Ok(Some(Err(e))),
    }
}

/// Rewrites every inventory file whose content changed, from the walk's values.
fn write_inventories(config: &Config, world: &World<'_>, progress: &dyn Progress, report: &mut ApplyReport) {
    use crate::engine::inventory::{Built, build_all, file_content};
    for built in world.existing_only(|| build_all(world, config)) {
        match built {
            Ok(Built::Ready(inv)) => {
                let path = crate::engine::plan::display(&inv.path);
                match file_content(&inv)
                    .map_err(|e| e.to_string())
                    .and_then(|c| crate::inventory::write_if_changed(&inv.path, &c).map_err(|e| e.to_string()))
                {
                    Ok(true) => {
                        progress.message(&format!("inventory `{}`: wrote `{path}`", inv.name));
                        if !report.inventories.contains(&path) {
                            report.inventories.push(path);
                        }
                    }
                    Ok(false) => {}
                    Err(e) => report.failures.push((format!("inventory `{}`", inv.name), format!("cannot write `{path}`: {e}"))),
                }
            }
            Ok(Built::Pending { name, .. }) => {
                report.failures.push((format!("inventory `{name}`"), "its hosts are not all known (something they depend on failed)".into()));
            }
            Err(d) => report.failures.push(("inventory".into(), d.to_string())),
        }
    }
}

/// Waits for SIGINT or SIGTERM (forever when neither could be registered).
async fn next_signal(
    a: &mut Option<tokio::signal::unix::Signal>,
    b: &mut Option<tokio::signal::unix::Signal>,
) {
    async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    tokio::select! {
        _ = one(a) => {}
        _ = one(b) => {}
    }
}
