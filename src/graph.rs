//! The dependency graph of a configuration.
//!
//! Nodes are declarations — variables, locals, resources, outputs — of every
//! module; an edge `a → b` means `b` refers to `a` (or lists it in
//! `depends_on`), so a topological order visits dependencies first. A cycle is
//! an error listing its members with their locations. Resources' dependencies
//! on other resources (through any chain of locals, variables and outputs)
//! drive the plan and the parallel apply walk.
//!
//! A resource whose arguments name one instance of another by a key fixed
//! per instance (`records = [aws_instance.host[count.index].private_ip]`)
//! depends on that instance only: [`Graph::keyed_deps`] keeps those key
//! expressions, the planner evaluates them for each instance, and the apply
//! walk lets `aws_route53_record.host[0]` go ahead while
//! `aws_instance.host[2]` fails.

use crate::addr::{Mode, ModulePath, ResourceAddr};
use crate::config::refs::{Reference, Target, references, resource_references};
use crate::config::{Config, Expr};
use crate::diag::{Diagnostic, Diagnostics, Span, suggest};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Var(ModulePath, String),
    Local(ModulePath, String),
    Resource(ResourceAddr),
    Output(ModulePath, String),
}

fn prefix(m: &ModulePath) -> String {
    m.iter().map(|n| format!("module.{n}.")).collect()
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Var(m, n) => write!(f, "{}var.{n}", prefix(m)),
            Node::Local(m, n) => write!(f, "{}local.{n}", prefix(m)),
            Node::Resource(r) => write!(f, "{r}"),
            Node::Output(m, n) => write!(f, "{}output.{n}", prefix(m)),
        }
    }
}

pub struct Graph {
    pub graph: DiGraph<Node, ()>,
    index: HashMap<Node, NodeIndex>,
    spans: HashMap<Node, Option<Span>>,
    /// Every resource's direct resource dependencies (through non-resource nodes).
    pub resource_deps: BTreeMap<ResourceAddr, BTreeSet<ResourceAddr>>,
    /// For a resource, the dependencies it reaches only through references
    /// to one instance by a key fixed per instance (`count.index`,
    /// `each.key`, variables, constants), with those key expressions. Any
    /// other way of depending on a resource (a whole-resource reference, a
    /// local, `depends_on`) keeps the dependency on every instance.
    pub keyed_deps: BTreeMap<ResourceAddr, BTreeMap<ResourceAddr, Vec<Expr>>>,
    /// Declarations in dependency order.
    pub order: Vec<Node>,
}

impl Graph {
    pub fn build(config: &Config) -> Result<Graph, Diagnostics> {
        let mut b = Builder {
            config,
            graph: DiGraph::new(),
            index: HashMap::new(),
            spans: HashMap::new(),
            edge_set: HashSet::new(),
            diags: Diagnostics::new(),
        };
        b.nodes();
        b.edges();
        let Builder { graph, index, spans, mut diags, .. } = b;
        let mut g =
            Graph { graph, index, spans, resource_deps: BTreeMap::new(), keyed_deps: BTreeMap::new(), order: Vec::new() };
        if let Some(d) = g.cycles() {
            diags.extend(d);
        }
        if diags.has_errors() {
            return Err(diags);
        }
        g.order = petgraph::algo::toposort(&g.graph, None)
            .map_err(|_| Diagnostics::from(Diagnostic::error("dependency cycle")))?
            .into_iter()
            .map(|i| g.graph[i].clone())
            .collect();
        g.resource_deps = g.compute_resource_deps();
        g.keyed_deps = g.compute_keyed_deps(config);
        Ok(g)
    }

    /// See [`Graph::keyed_deps`].
    fn compute_keyed_deps(&self, config: &Config) -> BTreeMap<ResourceAddr, BTreeMap<ResourceAddr, Vec<Expr>>> {
        let resource_in = |module: &ModulePath, r: &Reference| match &r.target {
            Target::Resource(mode, t, n) => Some(ResourceAddr::new(module.clone(), *mode, t, n)),
            _ => None,
        };
        let fixed_per_instance =
            |k: &Expr| references(k).iter().all(|r| matches!(r.target, Target::Count | Target::Each | Target::Var(_)));
        let mut out = BTreeMap::new();
        for m in config.modules.values() {
            let path = &m.path;
            for r in m.resources.values() {
                // Dependencies by any other way than the resource's own arguments.
                let mut other = self.indirect_resource_deps(&r.addr);
                let side = r.count.iter().chain(r.for_each.iter()).chain(r.depends_on.iter());
                other.extend(side.flat_map(references).filter_map(|x| resource_in(path, &x)));
                for i in 0..path.len() {
                    let parent = path[..i].to_vec();
                    let Some(call) = config.modules.get(&parent).and_then(|pm| pm.calls.get(crate::addr::split_step(&path[i]).0)) else { continue };
                    other.extend(call.depends_on.iter().flat_map(references).filter_map(|x| resource_in(&parent, &x)));
                }
                let mut exprs: Vec<&Expr> = r.body.exprs();
                if let Some(h) = &r.health_check {
                    exprs.extend(h.body.exprs());
                }
                let mut keyed: BTreeMap<ResourceAddr, Option<Vec<Expr>>> = BTreeMap::new();
                for (reference, key) in exprs.into_iter().flat_map(resource_references) {
                    let Some(d) = resource_in(path, &reference) else { continue };
                    let entry = keyed.entry(d).or_insert_with(|| Some(Vec::new()));
                    match (entry.as_mut(), key) {
                        (Some(keys), Some(k)) if fixed_per_instance(&k) => keys.push(k),
                        _ => *entry = None,
                    }
                }
                let narrowed: BTreeMap<ResourceAddr, Vec<Expr>> = keyed
                    .into_iter()
                    .filter_map(|(d, keys)| Some((d, keys?)))
                    .filter(|(d, _)| !other.contains(d) && *d != r.addr)
                    .collect();
                if !narrowed.is_empty() {
                    out.insert(r.addr.clone(), narrowed);
                }
            }
        }
        out
    }

    /// The resources `addr` depends on through locals, variables, outputs
    /// or module calls, rather than by naming them itself.
    fn indirect_resource_deps(&self, addr: &ResourceAddr) -> BTreeSet<ResourceAddr> {
        let Some(&idx) = self.index.get(&Node::Resource(addr.clone())) else { return BTreeSet::new() };
        self.resources_behind(
            self.graph.neighbors_directed(idx, petgraph::Incoming).filter(|i| !matches!(self.graph[*i], Node::Resource(_))),
        )
    }

    /// The resources reached walking dependencies back from `start`, each
    /// walk stopping at the first resource it meets.
    fn resources_behind(&self, start: impl IntoIterator<Item = NodeIndex>) -> BTreeSet<ResourceAddr> {
        let mut deps = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = start.into_iter().collect();
        let mut seen: BTreeSet<NodeIndex> = BTreeSet::new();
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            match &self.graph[i] {
                Node::Resource(r) => {
                    deps.insert(r.clone());
                }
                _ => stack.extend(self.graph.neighbors_directed(i, petgraph::Incoming)),
            }
        }
        deps
    }

    fn cycles(&self) -> Option<Diagnostics> {
        let mut diags = Diagnostics::new();
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let mut members: Vec<&Node> = scc.iter().map(|i| &self.graph[*i]).collect();
            members.sort();
            let list: Vec<String> = members
                .iter()
                .map(|n| match self.spans.get(*n).and_then(|s| s.as_ref()) {
                    Some(s) => format!("`{n}` ({})", s.location()),
                    None => format!("`{n}`"),
                })
                .collect();
            let first = members.first().and_then(|n| self.spans.get(*n).cloned().flatten());
            let msg = if self_loop {
                format!("{} refers to itself", list[0])
            } else {
                format!("dependency cycle between {}", list.join(", "))
            };
            diags.push(Diagnostic::error(msg).at(first).hint("break the cycle by removing one of the references"));
        }
        if diags.is_empty() { None } else { Some(diags) }
    }

    fn compute_resource_deps(&self) -> BTreeMap<ResourceAddr, BTreeSet<ResourceAddr>> {
        let mut out = BTreeMap::new();
        for (node, &idx) in &self.index {
            let Node::Resource(addr) = node else { continue };
            out.insert(addr.clone(), self.resources_behind(self.graph.neighbors_directed(idx, petgraph::Incoming)));
        }
        out
    }

    pub fn span(&self, n: &Node) -> Option<Span> {
        self.spans.get(n).cloned().flatten()
    }

    /// Every resource that `targets` depend on, transitively, plus the targets.
    pub fn with_dependencies(&self, targets: &BTreeSet<ResourceAddr>) -> BTreeSet<ResourceAddr> {
        let mut out = BTreeSet::new();
        let mut stack: Vec<ResourceAddr> = targets.iter().cloned().collect();
        while let Some(r) = stack.pop() {
            if out.insert(r.clone())
                && let Some(deps) = self.resource_deps.get(&r)
            {
                stack.extend(deps.iter().cloned());
            }
        }
        out
    }

    /// The resource graph in Graphviz dot.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph berth {\n  rankdir = \"RL\";\n  node [shape = box];\n");
        for r in self.resource_deps.keys() {
            s.push_str(&format!("  \"{r}\";\n"));
        }
        for (r, deps) in &self.resource_deps {
            for d in deps {
                s.push_str(&format!("  \"{r}\" -> \"{d}\";\n"));
            }
        }
        s.push_str("}\n");
        s
    }

    /// The resource graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let ids: BTreeMap<&ResourceAddr, String> =
            self.resource_deps.keys().enumerate().map(|(i, r)| (r, format!("n{i}"))).collect();
        let mut s = String::from("flowchart RL\n");
        for (r, id) in &ids {
            s.push_str(&format!("  {id}[\"{r}\"]\n"));
        }
        for (r, deps) in &self.resource_deps {
            for d in deps {
                s.push_str(&format!("  {} --> {}\n", ids[r], ids[d]));
            }
        }
        s
    }
}

struct Builder<'a> {
    config: &'a Config,
    graph: DiGraph<Node, ()>,
    index: HashMap<Node, NodeIndex>,
    spans: HashMap<Node, Option<Span>>,
    /// Edges added so far: petgraph's `update_edge` scans a node's edges,
    /// which made a fan-out of N quadratic.
    edge_set: HashSet<(NodeIndex, NodeIndex)>,
    diags: Diagnostics,
}

impl Builder<'_> {
    fn add(&mut self, n: Node, span: Option<Span>) {
        let i = self.graph.add_node(n.clone());
        self.index.insert(n.clone(), i);
        self.spans.insert(n, span);
    }

    fn nodes(&mut self) {
        for m in self.config.modules.values() {
            for v in m.variables.values() {
                self.add(Node::Var(m.path.clone(), v.name.clone()), v.span.clone());
            }
            for l in m.locals.values() {
                self.add(Node::Local(m.path.clone(), l.name.clone()), l.expr.span());
            }
            for r in m.resources.values() {
                self.add(Node::Resource(r.addr.clone()), r.span.clone());
            }
            for o in m.outputs.values() {
                self.add(Node::Output(m.path.clone(), o.name.clone()), o.span.clone());
            }
        }
    }

    fn edge(&mut self, from: &Node, to: &Node) {
        if let (Some(&a), Some(&b)) = (self.index.get(from), self.index.get(to))
            && self.edge_set.insert((a, b))
        {
            self.graph.add_edge(a, b, ());
        }
    }

    /// Resolves a reference made in `module` to graph nodes, reporting
    /// references to things that don't exist.
    fn targets(&mut self, module: &ModulePath, r: &Reference) -> Vec<Node> {
        let m = &self.config.modules[module];
        let err = |msg: String, candidates: Vec<String>, what: &str| {
            let mut d = Diagnostic::error(msg).at(r.span.clone());
            let name = r.describe();
            if let Some(s) = suggest(&name, candidates.iter().map(String::as_str)) {
                d = d.hint(format!("did you mean `{s}`?"));
            } else if candidates.is_empty() {
                d = d.hint(format!("no {what} is declared here"));
            }
            d
        };
        match &r.target {
            Target::Var(n) => {
                if m.variables.contains_key(n) {
                    return vec![Node::Var(module.clone(), n.clone())];
                }
                let c = m.variables.keys().map(|k| format!("var.{k}")).collect();
                self.diags.push(err(format!("reference to undeclared variable `var.{n}`"), c, "variable"));
            }
            Target::Local(n) => {
                if m.locals.contains_key(n) {
                    return vec![Node::Local(module.clone(), n.clone())];
                }
                let c = m.locals.keys().map(|k| format!("local.{k}")).collect();
                self.diags.push(err(format!("reference to undeclared local value `local.{n}`"), c, "local value"));
            }
            Target::Resource(mode, t, n) => {
                let addr = ResourceAddr::new(module.clone(), *mode, t, n);
                if m.resources.contains_key(&addr) {
                    return vec![Node::Resource(addr)];
                }
                let c = m
                    .resources
                    .keys()
                    .filter(|a| a.mode == *mode)
                    .map(|a| if *mode == Mode::Data { format!("data.{}.{}", a.type_, a.name) } else { format!("{}.{}", a.type_, a.name) })
                    .collect();
                let what = if *mode == Mode::Data { "data source" } else { "resource" };
                self.diags.push(err(format!("reference to undeclared {what} `{}`", r.describe()), c, what));
            }
            Target::Module(name, _) if let Some(call) = m.calls.get(name).filter(|c| c.instances.is_some()) => {
                // A call with instances: what reads it waits for every
                // instance's outputs.
                let mut nodes = Vec::new();
                for child in call.instance_paths(module) {
                    if let Some(cm) = self.config.modules.get(&child) {
                        nodes.extend(cm.outputs.keys().map(|o| Node::Output(child.clone(), o.clone())));
                    }
                }
                return nodes;
            }
            Target::Module(name, out) if m.calls.get(name).is_some_and(|c| c.count.is_some() || c.for_each.is_some()) => {
                // Not expanded (`berth validate`): `out` may be a key.
                let mut child = module.clone();
                child.push(name.clone());
                let Some(cm) = self.config.modules.get(&child) else { return vec![] };
                match out {
                    Some(o) if cm.outputs.contains_key(o) => return vec![Node::Output(child, o.clone())],
                    _ => return cm.outputs.keys().map(|o| Node::Output(child.clone(), o.clone())).collect(),
                }
            }
            Target::Module(name, out) => {
                let mut child = module.clone();
                child.push(name.clone());
                let Some(cm) = self.config.modules.get(&child) else {
                    let c = m.calls.keys().map(|k| format!("module.{k}")).collect();
                    let name_only = Reference { target: Target::Module(name.clone(), None), span: r.span.clone() };
                    let mut d = err(format!("reference to undeclared module `module.{name}`"), c, "module");
                    d.message = format!("reference to undeclared module `{}`", name_only.describe());
                    self.diags.push(d);
                    return vec![];
                };
                match out {
                    Some(o) if cm.outputs.contains_key(o) => return vec![Node::Output(child, o.clone())],
                    Some(o) => {
                        let c = cm.outputs.keys().map(|k| format!("module.{name}.{k}")).collect();
                        self.diags.push(err(format!("module `{name}` has no output `{o}`"), c, "output"));
                    }
                    None => return cm.outputs.keys().map(|o| Node::Output(child.clone(), o.clone())).collect(),
                }
            }
            Target::Unknown(n) => {
                let known = ["var", "local", "module", "data", "count", "each", "self", "path"];
                let mut d = Diagnostic::error(format!("unknown name `{n}`")).at(r.span.clone());
                if let Some(s) = suggest(n, known) {
                    d = d.hint(format!("did you mean `{s}`?"));
                } else {
                    d = d.hint("a reference looks like `var.NAME`, `local.NAME`, `TYPE.NAME` or `module.NAME.OUTPUT`; a string needs quotes");
                }
                self.diags.push(d);
            }
            Target::Count | Target::Each | Target::SelfRef | Target::Path | Target::Workspace => {}
        }
        vec![]
    }

    fn depend(&mut self, node: &Node, module: &ModulePath, exprs: &[&Expr]) {
        for e in exprs {
            for r in references(e) {
                for t in self.targets(module, &r) {
                    self.edge(&t, node);
                }
            }
        }
    }

    fn edges(&mut self) {
        let config = self.config;
        for m in config.modules.values() {
            let path = &m.path;
            for l in m.locals.values() {
                self.depend(&Node::Local(path.clone(), l.name.clone()), path, &[&l.expr]);
            }
            for r in m.resources.values() {
                let node = Node::Resource(r.addr.clone());
                let mut exprs: Vec<&Expr> = r.body.exprs();
                if let Some(h) = &r.health_check {
                    exprs.extend(h.body.exprs());
                }
                exprs.extend(r.count.iter());
                exprs.extend(r.for_each.iter());
                exprs.extend(r.depends_on.iter());
                self.depend(&node, path, &exprs);
                if r.count.is_none() {
                    self.forbid(&exprs, Target::Count, "`count.index` can only be used in a resource that sets `count`");
                }
                if r.for_each.is_none() {
                    self.forbid(&exprs, Target::Each, "`each` can only be used in a resource that sets `for_each`");
                }
            }
            for o in m.outputs.values() {
                let mut exprs = vec![&o.value];
                exprs.extend(o.depends_on.iter());
                self.depend(&Node::Output(path.clone(), o.name.clone()), path, &exprs);
            }
            for (call, child) in m.calls.values().flat_map(|c| c.instance_paths(path).into_iter().map(move |p| (c, p))) {
                let Some(cm) = config.modules.get(&child) else { continue };
                if call.instances.is_none() {
                    let side: Vec<&Expr> = call.count.iter().chain(call.for_each.iter()).collect();
                    for e in side {
                        // The keys are read before the walk: what they read
                        // is checked here like any reference.
                        for r in references(e) {
                            self.targets(path, &r);
                        }
                    }
                }
                for (arg, a) in &call.args {
                    if !cm.variables.contains_key(arg) {
                        let mut d = Diagnostic::error(format!("module `{}` has no variable `{arg}`", call.name)).at(a.key_span.clone());
                        if let Some(s) = suggest(arg, cm.variables.keys().map(String::as_str)) {
                            d = d.hint(format!("did you mean `{s}`?"));
                        }
                        self.diags.push(d);
                        continue;
                    }
                    let mut exprs = vec![&a.expr];
                    exprs.extend(call.depends_on.iter());
                    self.depend(&Node::Var(child.clone(), arg.clone()), path, &exprs);
                }
                for (name, v) in &cm.variables {
                    if v.default.is_none() && !call.args.contains_key(name) {
                        self.diags.push(
                            Diagnostic::error(format!("module `{}` needs a value for its variable `{name}`", call.name))
                                .at(call.span.clone()),
                        );
                    }
                }
                if !call.depends_on.is_empty() {
                    // Everything inside the module waits for the module's depends_on.
                    let inner: Vec<Node> = config
                        .modules
                        .values()
                        .filter(|mm| mm.path.starts_with(&child))
                        .flat_map(|mm| mm.resources.keys().map(|a| Node::Resource(a.clone())))
                        .collect();
                    for n in inner {
                        let deps: Vec<&Expr> = call.depends_on.iter().collect();
                        self.depend(&n, path, &deps);
                    }
                }
            }
        }
    }

    fn forbid(&mut self, exprs: &[&Expr], target: Target, msg: &str) {
        for e in exprs {
            for r in references(e) {
                if r.target == target {
                    self.diags.push(Diagnostic::error(msg.to_string()).at(r.span.clone()));
                }
            }
        }
    }
}
