//! The order of a plan's changes: the step graph the apply walks.
//!
//! A change waits for the changes of what it depends on; destroys run in
//! reverse dependency order (by the plan's dependencies and by those the
//! state recorded when each object was created); a destroy-then-create
//! replacement destroys first; a create-before-destroy replacement creates
//! the new object, lets every dependent switch to it, then destroys the old
//! one. A rolling replacement goes wave by wave: wave k+1 waits for every
//! step of wave k, and a dependent that lists every instance is updated
//! after each wave ([`Step::Rewave`]) and, for destroy-then-create waves,
//! before each wave's old objects go ([`Step::Unlist`]). The planner builds
//! the graph too ([`order_check`]), so a plan whose changes cannot be
//! ordered is refused before anything is applied.
//! One rule knows resource types: a record of a host behind a load
//! balancer waits for the host's target group attachments
//! ([`records_after_attachments`]).

use crate::addr::{InstanceAddr, InstanceKey, ResourceAddr};
use crate::diag::Diagnostic;
use crate::plan::{Action, Plan};
use crate::state::State;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One step of the apply: a change of the plan is one step, or two for a
/// replacement (its create half and its destroy half).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Create, update, read, or the create half of a replacement.
    Change(usize),
    /// Delete, or the destroy half of a replacement.
    Destroy(usize),
    /// A dependent's in-place update (the change's index) applied again
    /// after a wave of a rolling replacement (`wave`, from 1) of what it
    /// depends on, before that wave's old objects go: a record listing the
    /// hosts of a role follows the roll wave by wave. The last wave's
    /// update is the change's own [`Step::Change`].
    Rewave { change: usize, wave: usize },
    /// A dependent's in-place update (the change's index) applied before
    /// the destroy-then-create replacements of one group of what it
    /// depends on go (the wave `wave` of the resource of change `of`, or
    /// with `wave` 0 the resource's replacements when they are not all of
    /// its instances): a record listing the hosts of a role drops the
    /// hosts about to be destroyed first.
    Unlist { change: usize, of: usize, wave: usize },
    /// A join: no work of its own, done once every step it waits for is.
    /// Where every step of one group waits for every step of another (N
    /// records reading `local.ips` of N hosts; N hosts destroyed after N
    /// records), both groups link to one join instead of to each other:
    /// 2N edges where there were N², and the same order.
    Join,
}

/// Below this many steps on both sides, groups link directly: a join saves
/// nothing there, and small graphs stay easy to read.
const JOIN_MIN: usize = 8;

/// The joins of one graph, by the group they stand for.
#[derive(Default)]
struct Joins<'p> {
    /// After every change of a resource.
    changes: HashMap<&'p ResourceAddr, NodeIndex>,
    /// Before every destroy of a resource (after its dependents' destroys).
    before_destroys: HashMap<&'p ResourceAddr, NodeIndex>,
    /// After every change of a resource's dependents (before its destroys).
    after_dependents: HashMap<&'p ResourceAddr, NodeIndex>,
    /// After every change of every dependency of a resource that has many
    /// (N readers of N module instances, `module.svc[each.key].host`, each
    /// instance with a resource of its own); `None` for few.
    all_deps: HashMap<&'p ResourceAddr, Option<NodeIndex>>,
    /// Before every destroy of every dependency of a resource that has many.
    all_dep_destroys: HashMap<&'p ResourceAddr, Option<NodeIndex>>,
}

/// The resources `r` depends on, by the plan.
pub fn deps_of<'a>(plan: &'a Plan, r: &ResourceAddr) -> impl Iterator<Item = &'a ResourceAddr> + 'a {
    plan.dependencies.get(r).into_iter().flatten()
}

/// Builds the step graph of a plan's changes (edges point from a step to
/// the steps that wait for it). Errors when they cannot be ordered
/// (a cycle through create-before-destroy and destroy-then-create replacements).
pub fn build(plan: &Plan, state: &State) -> Result<DiGraph<Step, ()>, Diagnostic> {
    let mut g = DiGraph::new();
    let mut seen = HashSet::new();
    let mut idx = HashMap::new();
    let mut changes_of: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    // The same, by instance: an instance that names its dependency's
    // instances by key (`aws_instance.host[count.index]`) finds them by
    // lookup, never by a scan of all of them (N records × N hosts).
    let mut change_at: HashMap<(&ResourceAddr, &InstanceKey), NodeIndex> = HashMap::new();
    let mut destroys_of: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    let mut joins = Joins::default();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.action == Action::NoOp {
            continue;
        }
        if matches!(c.action, Action::Create | Action::Update | Action::Read) || c.action.is_replace() {
            let n = g.add_node(Step::Change(i));
            idx.insert(Step::Change(i), n);
            changes_of.entry(&c.addr.resource).or_default().push(n);
            change_at.insert((&c.addr.resource, &c.addr.key), n);
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
            let joined = if narrowed.is_none_or(|n| n.is_empty()) {
                *joins.all_deps.entry(res).or_insert_with(|| {
                    let deps: Vec<&ResourceAddr> = deps_of(plan, res).filter(|d| *d != res).collect();
                    if deps.len() < JOIN_MIN {
                        return None;
                    }
                    let j = g.add_node(Step::Join);
                    for d in deps {
                        for &m in changes_of.get(d).map(Vec::as_slice).unwrap_or_default() {
                            link(&mut g, &mut seen, m, j);
                        }
                    }
                    Some(j)
                })
            } else {
                None
            };
            if let Some(j) = joined {
                link(&mut g, &mut seen, j, n);
            }
            for d in deps_of(plan, res) {
                if joined.is_some() && d != res {
                    continue;
                }
                let keys: Vec<&InstanceKey> =
                    narrowed.into_iter().flatten().filter(|a| &a.resource == d).map(|a| &a.key).collect();
                if keys.is_empty() {
                    let all = changes_of.get(d).map(Vec::as_slice).unwrap_or_default();
                    if all.len() >= JOIN_MIN && d != res {
                        let j = join(&mut g, &mut seen, &mut joins.changes, d, all, Side::After);
                        link(&mut g, &mut seen, j, n);
                        continue;
                    }
                    for &m in all {
                        if m != n {
                            link(&mut g, &mut seen, m, n);
                        }
                    }
                } else {
                    for k in keys {
                        if let Some(&m) = change_at.get(&(d, k))
                            && m != n
                        {
                            link(&mut g, &mut seen, m, n);
                        }
                    }
                }
            }
        }
        if let Some(&n) = idx.get(&Step::Destroy(i)) {
            // Dependents are destroyed first.
            let joined = *joins.all_dep_destroys.entry(res).or_insert_with(|| {
                let deps: Vec<&ResourceAddr> = destroy_deps(res).into_iter().filter(|d| *d != res).collect();
                if deps.len() < JOIN_MIN {
                    return None;
                }
                let j = g.add_node(Step::Join);
                for d in deps {
                    for &m in destroys_of.get(d).map(Vec::as_slice).unwrap_or_default() {
                        link(&mut g, &mut seen, j, m);
                    }
                }
                Some(j)
            });
            if let Some(j) = joined {
                link(&mut g, &mut seen, n, j);
            }
            for d in destroy_deps(res) {
                if joined.is_some() && d != res {
                    continue;
                }
                let all = destroys_of.get(d).map(Vec::as_slice).unwrap_or_default();
                if all.len() >= JOIN_MIN && d != res {
                    let j = join(&mut g, &mut seen, &mut joins.before_destroys, d, all, Side::Before);
                    link(&mut g, &mut seen, n, j);
                    continue;
                }
                for &m in all {
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
                    if c.wave.is_some() && c.deposed.is_none() {
                        // Ordered wave by wave below.
                        continue;
                    }
                    // The old object goes only once every dependent has moved on.
                    let all = dependent_changes.get(res).map(Vec::as_slice).unwrap_or_default();
                    if all.len() >= JOIN_MIN {
                        let j = join(&mut g, &mut seen, &mut joins.after_dependents, res, all, Side::After);
                        link(&mut g, &mut seen, j, n);
                    } else {
                        for &m in all {
                            link(&mut g, &mut seen, m, n);
                        }
                    }
                }
            }
        }
    }
    waves(plan, &mut g, &mut seen, &idx, &changes_of, &dependent_changes);
    unlist_subsets(plan, &mut g, &mut seen, &idx, &changes_of, &dependent_changes);
    records_after_attachments(plan, &mut g, &mut seen, &idx);
    if petgraph::algo::is_cyclic_directed(&g) {
        let cyc: Vec<String> = petgraph::algo::tarjan_scc(&g)
            .into_iter()
            .find(|s| s.len() > 1)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| match g[n] {
                Step::Change(i) => Some(format!("create/update `{}`", plan.changes[i].addr)),
                Step::Destroy(i) => Some(format!("destroy `{}`", plan.changes[i].addr)),
                Step::Rewave { change, wave } => Some(format!("update `{}` after wave {wave}", plan.changes[change].addr)),
                Step::Unlist { change, .. } => Some(format!("update `{}` before a replacement", plan.changes[change].addr)),
                Step::Join => None,
            })
            .collect();
        return Err(Diagnostic::error(format!("the changes cannot be ordered: {}", cyc.join(" → ")))
            .hint("mixing create_before_destroy and destroy-then-create replacements of dependent resources can do this; set create_before_destroy on both"));
    }
    Ok(g)
}

/// Orders the rolling replacements (changes with a [`Wave`](crate::plan::Wave)):
/// every step of wave k+1 waits for every step of wave k — its creates, the
/// dependents' updates that follow them ([`Step::Rewave`]), its destroys with
/// their drains — so a roll has at most one wave of old objects going at a
/// time, and a failed wave skips the rest. A dependent that names one
/// instance (`aws_instance.web[count.index]`) switches with that instance's
/// wave; one that reads them all (`aws_instance.web[*].private_ip`) is
/// updated after every wave; one created or replaced by the plan waits for
/// the whole roll.
fn waves(
    plan: &Plan,
    g: &mut DiGraph<Step, ()>,
    seen: &mut HashSet<(NodeIndex, NodeIndex)>,
    idx: &HashMap<Step, NodeIndex>,
    changes_of: &HashMap<&ResourceAddr, Vec<NodeIndex>>,
    dependent_changes: &HashMap<&ResourceAddr, Vec<NodeIndex>>,
) {
    let mut rolls: BTreeMap<&ResourceAddr, BTreeMap<usize, Vec<usize>>> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if let (Some(w), None) = (c.wave, &c.deposed) {
            rolls.entry(&c.addr.resource).or_default().entry(w.index).or_default().push(i);
        }
    }
    for (r, waves) in rolls {
        let last = waves.keys().copied().max().unwrap_or(0);
        let mut dependents: Vec<usize> = dependent_changes
            .get(r)
            .into_iter()
            .flatten()
            .filter_map(|&m| match g[m] {
                Step::Change(j) => Some(j),
                _ => None,
            })
            .collect();
        dependents.sort_unstable();
        dependents.dedup();
        let mut prev_end: Option<NodeIndex> = None;
        for (k, members) in waves {
            let creates: Vec<NodeIndex> = members.iter().filter_map(|i| idx.get(&Step::Change(*i)).copied()).collect();
            let destroys: Vec<(usize, NodeIndex)> = members
                .iter()
                .filter(|i| plan.changes[**i].action == Action::CreateThenDelete)
                .filter_map(|i| idx.get(&Step::Destroy(*i)).map(|n| (*i, *n)))
                .collect();
            let all: Vec<NodeIndex> =
                members.iter().flat_map(|i| [Step::Change(*i), Step::Destroy(*i)]).filter_map(|s| idx.get(&s).copied()).collect();
            if let Some(p) = prev_end {
                for &s in &all {
                    link(g, seen, p, s);
                }
            }
            let end = g.add_node(Step::Join);
            for &s in &all {
                link(g, seen, s, end);
            }
            for &j in &dependents {
                let d = &plan.changes[j];
                let Some(&dn) = idx.get(&Step::Change(j)) else { continue };
                let named: Vec<&InstanceAddr> =
                    plan.instance_dependencies.get(&d.addr).into_iter().flatten().filter(|a| &a.resource == r).collect();
                if !named.is_empty() {
                    if members.iter().any(|i| named.contains(&&plan.changes[*i].addr)) {
                        for &(i, n) in &destroys {
                            if named.contains(&&plan.changes[i].addr) {
                                link(g, seen, dn, n);
                            }
                        }
                        link(g, seen, dn, end);
                    }
                    continue;
                }
                if d.action == Action::Update {
                    unlist(plan, g, seen, idx, changes_of, j, r, &members, k, prev_end, Some(end));
                }
                if k == last {
                    for &(_, n) in &destroys {
                        link(g, seen, dn, n);
                    }
                    continue;
                }
                if d.action != Action::Update {
                    continue;
                }
                let n = g.add_node(Step::Rewave { change: j, wave: k });
                for &m in &creates {
                    link(g, seen, m, n);
                }
                for dep in deps_of(plan, &d.addr.resource).filter(|dep| *dep != r && *dep != &d.addr.resource) {
                    for &m in changes_of.get(dep).map(Vec::as_slice).unwrap_or_default() {
                        link(g, seen, m, n);
                    }
                }
                if let Some(p) = prev_end {
                    link(g, seen, p, n);
                }
                for &(_, m) in &destroys {
                    link(g, seen, n, m);
                }
                link(g, seen, n, end);
            }
            prev_end = Some(end);
        }
    }
}

/// For the destroy-then-create replacements among `members` (changes of
/// `r`): the [`Step::Unlist`] of dependent change `j`, which they wait for.
#[allow(clippy::too_many_arguments)]
fn unlist(
    plan: &Plan,
    g: &mut DiGraph<Step, ()>,
    seen: &mut HashSet<(NodeIndex, NodeIndex)>,
    idx: &HashMap<Step, NodeIndex>,
    changes_of: &HashMap<&ResourceAddr, Vec<NodeIndex>>,
    j: usize,
    r: &ResourceAddr,
    members: &[usize],
    wave: usize,
    after: Option<NodeIndex>,
    before: Option<NodeIndex>,
) {
    let destroys: Vec<NodeIndex> = members
        .iter()
        .filter(|i| plan.changes[**i].action == Action::DeleteThenCreate)
        .filter_map(|i| idx.get(&Step::Destroy(*i)).copied())
        .collect();
    let Some(&of) = members.iter().find(|i| plan.changes[**i].action == Action::DeleteThenCreate) else { return };
    let d = &plan.changes[j];
    let n = g.add_node(Step::Unlist { change: j, of, wave });
    for dep in deps_of(plan, &d.addr.resource).filter(|dep| *dep != r && *dep != &d.addr.resource) {
        for &m in changes_of.get(dep).map(Vec::as_slice).unwrap_or_default() {
            link(g, seen, m, n);
        }
    }
    if let Some(p) = after {
        link(g, seen, p, n);
    }
    for m in destroys {
        link(g, seen, n, m);
    }
    if let Some(e) = before {
        link(g, seen, n, e);
    }
}

/// The destroy-then-create replacements of a resource that are not all of
/// its instances and roll in no waves: the dependents that list every
/// instance drop them before they go (see [`Step::Unlist`]).
fn unlist_subsets(
    plan: &Plan,
    g: &mut DiGraph<Step, ()>,
    seen: &mut HashSet<(NodeIndex, NodeIndex)>,
    idx: &HashMap<Step, NodeIndex>,
    changes_of: &HashMap<&ResourceAddr, Vec<NodeIndex>>,
    dependent_changes: &HashMap<&ResourceAddr, Vec<NodeIndex>>,
) {
    let mut replaced: BTreeMap<&ResourceAddr, Vec<usize>> = BTreeMap::new();
    let mut instances: HashMap<&ResourceAddr, usize> = HashMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.deposed.is_some() || c.action == Action::Delete {
            continue;
        }
        *instances.entry(&c.addr.resource).or_default() += 1;
        if c.action == Action::DeleteThenCreate && c.wave.is_none() {
            replaced.entry(&c.addr.resource).or_default().push(i);
        }
    }
    for (r, members) in replaced {
        if members.len() >= instances.get(r).copied().unwrap_or(0) {
            // All of them go at once: there is nothing to keep listing.
            continue;
        }
        let mut dependents: Vec<usize> = dependent_changes
            .get(r)
            .into_iter()
            .flatten()
            .filter_map(|&m| match g[m] {
                Step::Change(j) => Some(j),
                _ => None,
            })
            .filter(|&j| plan.changes[j].action == Action::Update && plan.changes[j].addr.resource != *r)
            .filter(|&j| !plan.instance_dependencies.get(&plan.changes[j].addr).into_iter().flatten().any(|a| &a.resource == r))
            .collect();
        dependents.sort_unstable();
        dependents.dedup();
        for j in dependents {
            unlist(plan, g, seen, idx, changes_of, j, r, &members, 0, None, None);
        }
    }
}

/// A host behind a load balancer is switched into DNS only once the load
/// balancer finds it healthy: every change of a record (`aws_route53_record`)
/// that depends on a host (`aws_instance`) waits for the changes of the
/// target group attachments (`aws_lb_target_group_attachment`) of that host,
/// whose create returns only when the target is healthy. The old host's
/// destroy already waits for its attachments' destroys (dependents go
/// first), which drain it.
fn records_after_attachments(
    plan: &Plan,
    g: &mut DiGraph<Step, ()>,
    seen: &mut HashSet<(NodeIndex, NodeIndex)>,
    idx: &HashMap<Step, NodeIndex>,
) {
    const RECORD: &str = "aws_route53_record";
    const ATTACHMENT: &str = "aws_lb_target_group_attachment";
    const HOST: &str = "aws_instance";
    let mut attachments_of: HashMap<&ResourceAddr, Vec<NodeIndex>> = HashMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.addr.resource.type_ != ATTACHMENT {
            continue;
        }
        let Some(&n) = idx.get(&Step::Change(i)) else { continue };
        for host in deps_of(plan, &c.addr.resource).filter(|d| d.type_ == HOST) {
            attachments_of.entry(host).or_default().push(n);
        }
    }
    if attachments_of.is_empty() {
        return;
    }
    for (i, c) in plan.changes.iter().enumerate() {
        if c.addr.resource.type_ != RECORD {
            continue;
        }
        let Some(&n) = idx.get(&Step::Change(i)) else { continue };
        for host in deps_of(plan, &c.addr.resource) {
            for &a in attachments_of.get(host).map(Vec::as_slice).unwrap_or_default() {
                link(g, seen, a, n);
            }
        }
    }
}

/// Which side of its group a join stands on.
#[derive(Clone, Copy)]
enum Side {
    /// Done once every member is.
    After,
    /// Every member waits for it.
    Before,
}

/// The join of one group (`members`, known by `key` in `joins`), made and
/// linked to every member the first time it is asked for.
fn join<'p>(
    g: &mut DiGraph<Step, ()>,
    seen: &mut HashSet<(NodeIndex, NodeIndex)>,
    joins: &mut HashMap<&'p ResourceAddr, NodeIndex>,
    key: &'p ResourceAddr,
    members: &[NodeIndex],
    side: Side,
) -> NodeIndex {
    if let Some(&j) = joins.get(key) {
        return j;
    }
    let j = g.add_node(Step::Join);
    for &m in members {
        match side {
            Side::After => link(g, seen, m, j),
            Side::Before => link(g, seen, j, m),
        }
    }
    joins.insert(key, j);
    j
}

/// Adds the edge `a → b` once. petgraph's `update_edge` scans `a`'s edges,
/// which made a step with N dependents quadratic: `seen` remembers them.
fn link(g: &mut DiGraph<Step, ()>, seen: &mut HashSet<(NodeIndex, NodeIndex)>, a: NodeIndex, b: NodeIndex) {
    if seen.insert((a, b)) {
        crate::telemetry::work::step_edge();
        g.add_edge(a, b, ());
    }
}

/// Checks at plan time that apply will be able to order the changes.
pub fn order_check(plan: &Plan, state: &State) -> Result<(), Diagnostic> {
    build(plan, state).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: &[(&str, &str)], deps: &[(&str, &[&str])]) -> Plan {
        let changes: Vec<serde_json::Value> = changes
            .iter()
            .map(|(addr, action)| serde_json::json!({ "addr": addr, "provider": "aws", "action": action }))
            .collect();
        let deps: serde_json::Map<String, serde_json::Value> =
            deps.iter().map(|(r, ds)| (r.to_string(), serde_json::json!(ds))).collect();
        serde_json::from_value(serde_json::json!({
            "format_version": 1, "berth_version": "test", "lineage": "l", "prior_serial": null,
            "config_digest": "", "workspace": "default", "destroy": false, "variables": {},
            "changes": changes, "outputs": [], "dependencies": deps, "errored": false,
        }))
        .expect("a plan")
    }

    fn waits_for(g: &DiGraph<Step, ()>, p: &Plan, later: &str, earlier: &str) -> bool {
        let node = |addr: &str| {
            let i = p.changes.iter().position(|c| c.addr.to_string() == addr).unwrap();
            g.node_indices().find(|&n| g[n] == Step::Change(i)).unwrap()
        };
        petgraph::algo::has_path_connecting(g, node(earlier), node(later), None)
    }

    #[test]
    fn a_record_of_a_host_behind_a_load_balancer_waits_for_its_attachment() {
        let p = plan(
            &[
                ("aws_instance.web[0]", "create-then-delete"),
                ("aws_lb_target_group_attachment.web[0]", "create-then-delete"),
                ("aws_route53_record.web", "update"),
                ("aws_route53_record.db", "update"),
            ],
            &[
                ("aws_lb_target_group_attachment.web", &["aws_instance.web", "aws_lb_target_group.web"]),
                ("aws_route53_record.web", &["aws_instance.web"]),
            ],
        );
        let g = build(&p, &State::new()).unwrap();
        assert!(waits_for(&g, &p, "aws_route53_record.web", "aws_lb_target_group_attachment.web[0]"));
        // Not a record of that host: no new edge.
        assert!(!waits_for(&g, &p, "aws_route53_record.db", "aws_lb_target_group_attachment.web[0]"));
        // Without attachments, a record waits for its host only.
        let bare = plan(
            &[("aws_instance.web[0]", "create-then-delete"), ("aws_route53_record.web", "update")],
            &[("aws_route53_record.web", &["aws_instance.web"])],
        );
        assert!(build(&bare, &State::new()).is_ok());
    }
}
