//! The provider contract, as one kit every provider suite drives.
//!
//! The engine relies on a few promises of every [`Provider`], whatever
//! service it talks to:
//! - **every operation of a batch is reported exactly once** on the sink
//!   (never twice, never dropped), by its index in the batch;
//! - **a create leaves a known state** (no unknowns once the object exists);
//! - **refresh equals apply**: reading an object straight after the apply
//!   gives back the state the apply reported, so the next plan starts from
//!   the truth and not from a guess;
//! - **a re-plan is a no-op**: planning the same configuration against the
//!   refreshed state proposes nothing;
//! - **a delete leaves nothing**: its outcome has no state, and a refresh
//!   finds the object gone (where the object lives outside berth's state).
//!
//! [`Kit`] runs the engine's calls the way the engine makes them and holds
//! the provider to each promise, with the failing address and attribute in
//! the message. Suites build their objects with it (AWS on the strict layer,
//! RFC 2136 on BIND, the utility providers in-process) instead of each
//! keeping its own batch runner.

use berth::addr::InstanceAddr;
use berth::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Provider};
use berth::value::Value;

pub struct Kit<'a> {
    pub p: &'a dyn Provider,
    pub lineage: String,
    /// What to print with a failure (a server's log), when there is one.
    pub context: Box<dyn Fn() -> String + 'a>,
}

/// One object the kit made: what it was configured with and what it is.
#[derive(Clone, Debug)]
pub struct Made {
    pub type_: String,
    pub addr: String,
    pub config: Value,
    pub state: Value,
}

impl<'a> Kit<'a> {
    pub fn new(p: &'a dyn Provider) -> Kit<'a> {
        Kit { p, lineage: uuid::Uuid::new_v4().to_string(), context: Box::new(String::new) }
    }

    /// Adds what to print with a failure.
    pub fn with_context(mut self, f: impl Fn() -> String + 'a) -> Kit<'a> {
        self.context = Box::new(f);
        self
    }

    /// The context of one operation on `addr`, as the engine gives it: a
    /// fresh create token for every call.
    pub fn ctx(&self, addr: &str) -> OpContext {
        let a: InstanceAddr = addr.parse().unwrap_or_else(|e| panic!("`{addr}` is not an address: {e:?}"));
        OpContext::new(a, self.lineage.clone(), 1).with_token(OpContext::fresh_token())
    }

    fn fail(&self, what: String) -> ! {
        let context = (self.context)();
        if context.is_empty() { panic!("{what}") } else { panic!("{what}\n--- context ---\n{context}") }
    }

    /// Applies a batch and returns the outcomes in batch order. Holds the
    /// provider to reporting each operation exactly once.
    pub async fn apply(&self, type_: &str, ops: Vec<ApplyOp>) -> Vec<ApplyOutcome> {
        let n = ops.len();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        self.p.apply(type_, ops, tx).await;
        let mut out: Vec<Option<ApplyOutcome>> = vec![None; n];
        while let Some((i, o)) = rx.recv().await {
            if i >= n {
                self.fail(format!("{type_}: outcome for operation {i} of a batch of {n}"));
            }
            if out[i].is_some() {
                self.fail(format!("{type_}: operation {i} reported twice"));
            }
            out[i] = Some(o);
        }
        out.into_iter()
            .enumerate()
            .map(|(i, o)| o.unwrap_or_else(|| self.fail(format!("{type_}: operation {i} never reported"))))
            .collect()
    }

    /// Plans and creates a batch of one type, as one batch; returns the new
    /// states, each known.
    pub async fn create(&self, type_: &str, items: &[(&str, Value)]) -> Vec<Value> {
        let ctxs = items.iter().map(|(a, _)| self.ctx(a)).collect();
        self.create_as(type_, items, ctxs).await
    }

    /// Like [`Kit::create`], with the create attempts' contexts given.
    pub async fn create_as(&self, type_: &str, items: &[(&str, Value)], ctxs: Vec<OpContext>) -> Vec<Value> {
        let mut ops = Vec::new();
        for ((addr, config), ctx) in items.iter().zip(ctxs) {
            let planned = match self.p.plan(&ctx, type_, None, config).await {
                Ok(p) => p,
                Err(e) => self.fail(format!("plan {addr}: {e}")),
            };
            if !planned.requires_replace.is_empty() {
                self.fail(format!("plan {addr}: a create requires replacement of {:?}", planned.requires_replace));
            }
            ops.push(ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.after } });
        }
        let outcomes = self.apply(type_, ops).await;
        outcomes
            .into_iter()
            .zip(items)
            .map(|(o, (addr, _))| {
                if let Some(e) = o.error {
                    self.fail(format!("create {addr}: {e}"));
                }
                let state = o.state.unwrap_or_else(|| self.fail(format!("create {addr} returned no state")));
                if !state.is_known() {
                    self.fail(format!("{addr}: the state after create has unknowns: {state}"));
                }
                state
            })
            .collect()
    }

    pub async fn create_one(&self, type_: &str, addr: &str, config: Value) -> Value {
        self.create(type_, &[(addr, config)]).await.remove(0)
    }

    /// Creates a batch and holds it to the contract at once (refresh equals
    /// apply, re-plan is a no-op); returns what was made.
    pub async fn create_steady(&self, type_: &str, items: &[(&str, Value)]) -> Vec<Made> {
        let states = self.create(type_, items).await;
        let made: Vec<Made> = items
            .iter()
            .zip(states)
            .map(|((addr, config), state)| Made {
                type_: type_.to_string(),
                addr: addr.to_string(),
                config: config.clone(),
                state,
            })
            .collect();
        self.check_steady(&made).await;
        made
    }

    /// Plans an in-place update from `prior` and applies it; returns the new
    /// state.
    pub async fn update(&self, type_: &str, addr: &str, prior: &Value, config: &Value) -> Value {
        let ctx = self.ctx(addr);
        let planned = match self.p.plan(&ctx, type_, Some(prior), config).await {
            Ok(p) => p,
            Err(e) => self.fail(format!("plan {addr}: {e}")),
        };
        if !planned.requires_replace.is_empty() {
            self.fail(format!("{addr}: unexpected replacement for {:?}", planned.requires_replace));
        }
        let kind = ChangeKind::Update { prior: prior.clone(), planned: planned.after };
        let o = self.apply(type_, vec![ApplyOp { ctx, kind }]).await.remove(0);
        if let Some(e) = o.error {
            self.fail(format!("update {addr}: {e}"));
        }
        o.state.unwrap_or_else(|| self.fail(format!("update {addr} returned no state")))
    }

    /// Refreshes a batch of one type.
    pub async fn refresh(&self, type_: &str, items: &[(&str, Value)]) -> Vec<Option<Value>> {
        let batch = items.iter().map(|(a, v)| (self.ctx(a), v.clone())).collect();
        let out = self.p.refresh(type_, batch).await;
        if out.len() != items.len() {
            self.fail(format!("refresh {type_}: {} answers for {} objects", out.len(), items.len()));
        }
        out.into_iter()
            .zip(items)
            .map(|(r, (addr, _))| r.unwrap_or_else(|e| self.fail(format!("refresh {addr}: {e}"))))
            .collect()
    }

    /// Refresh equals apply, and a re-plan of the same configuration is a
    /// no-op, for every object (refreshed in one batch per type).
    pub async fn check_steady(&self, made: &[Made]) {
        let mut types: Vec<&str> = made.iter().map(|m| m.type_.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        for type_ in types {
            let of_type: Vec<&Made> = made.iter().filter(|m| m.type_ == type_).collect();
            let items: Vec<(&str, Value)> = of_type.iter().map(|m| (m.addr.as_str(), m.state.clone())).collect();
            let refreshed = self.refresh(type_, &items).await;
            for (m, now) in of_type.iter().zip(refreshed) {
                let now = now.unwrap_or_else(|| self.fail(format!("{}: refresh finds nothing after apply", m.addr)));
                if let Some(d) = first_difference(&m.state, &now, "") {
                    self.fail(format!("{}: refresh differs from apply at {d}", m.addr));
                }
                let planned = match self.p.plan(&self.ctx(&m.addr), type_, Some(&now), &m.config).await {
                    Ok(p) => p,
                    Err(e) => self.fail(format!("re-plan {}: {e}", m.addr)),
                };
                if !planned.requires_replace.is_empty() {
                    self.fail(format!("{}: re-plan replaces for {:?}", m.addr, planned.requires_replace));
                }
                if let Some(d) = first_difference(&now, &planned.after, "") {
                    self.fail(format!("{}: re-plan is not a no-op at {d}", m.addr));
                }
                if !planned.notes.is_empty() {
                    self.fail(format!("{}: a no-op re-plan has notes {:?}", m.addr, planned.notes));
                }
            }
        }
    }

    /// Deletes a batch of one type; each outcome has no state and a refresh
    /// finds each object gone.
    pub async fn delete(&self, type_: &str, items: &[(&str, Value)]) {
        let ops = items
            .iter()
            .map(|(a, v)| ApplyOp { ctx: self.ctx(a), kind: ChangeKind::Delete { prior: v.clone() } })
            .collect();
        for (o, (addr, _)) in self.apply(type_, ops).await.into_iter().zip(items) {
            if let Some(e) = o.error {
                self.fail(format!("delete {addr}: {e}"));
            }
            if let Some(s) = o.state {
                self.fail(format!("delete {addr} left a state: {s}"));
            }
        }
        // An object kept only in berth's state (a random value) has nothing
        // outside to look for: its refresh is the state it is given.
        if self.p.local_only() {
            return;
        }
        for (now, (addr, _)) in self.refresh(type_, items).await.into_iter().zip(items) {
            if let Some(s) = now {
                self.fail(format!("{addr}: refresh still finds it after delete: {s}"));
            }
        }
    }

    /// Deletes what was made, last made first, one batch per run of a type.
    pub async fn delete_all(&self, made: &[Made]) {
        let mut i = made.len();
        while i > 0 {
            let type_ = made[i - 1].type_.as_str();
            let mut j = i;
            while j > 0 && made[j - 1].type_ == type_ {
                j -= 1;
            }
            let items: Vec<(&str, Value)> = made[j..i].iter().map(|m| (m.addr.as_str(), m.state.clone())).collect();
            self.delete(type_, &items).await;
            i = j;
        }
    }
}

/// Where two values first differ (as the plan compares them: marks aside),
/// as `path: a → b`; `None` when they are the same.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    if a.same_as(b) && a.is_known() == b.is_known() {
        return None;
    }
    let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (a.unmarked(), b.unmarked()) {
        (Value::Map(x), Value::Map(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &at(k)) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{}: {v} → (absent)", at(k))),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    return Some(format!("{}: (absent) → {w}", at(k)));
                }
            }
            Some(format!("{}: {a} → {b}", if path.is_empty() { "(the object)" } else { path }))
        }
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            Some(format!("{path}: {a} → {b}"))
        }
        _ => Some(format!("{}: {a} → {b}", if path.is_empty() { "(the object)" } else { path })),
    }
}
