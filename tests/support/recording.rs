//! A recording provider with scripted outcomes, for in-process engine tests.
//!
//! The engine's hard cases — a provider that drops an operation, a failed
//! update, a cancellation while an operation is in flight — cannot be had on
//! demand from a real cloud or from the built-in resources. This provider has
//! one resource type, `rec_thing` (`input` in, `id` and `output` out,
//! `triggers` forces a replacement, `rule { ... }` nested blocks, `size` a
//! number, `ttl` a cache TTL in seconds as a DNS record has), answers every operation as the test
//! scripted it for that address, and records every call, so a test can say
//! exactly what the engine asked for and in which order.
//!
//! Its key in a registry is `rec` (the prefix of its type name), so a test
//! passes it in `PlanOptions::providers` and the configuration needs no
//! provider block.

use async_trait::async_trait;
use berth::addr::Mode;
use berth::providers::{ApplyOp, ApplyOutcome, ApplySink, ChangeKind, OpContext, Provider, ProviderError, ProviderResult, Refreshed, Registry};
use berth::schema::{Attribute, Planned, Schema, plan_from_schema};
use berth::value::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::Notify;

pub const TYPE: &str = "rec_thing";

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("input"),
        Attribute::arg("triggers").force_new(),
        Attribute::arg("rule").block(),
        Attribute::arg("size").number(),
        Attribute::arg("ttl").number(),
    ])
    .with_exported(&["id", "output"])
    .with_cache_ttl("ttl", 0)
});

/// How the provider answers one operation.
#[derive(Clone)]
pub enum Answer {
    /// Carries it out: a create gets an id, an update takes the planned value,
    /// a delete removes the object.
    Ok,
    /// Fails with nothing to show (a create makes nothing; an update or delete
    /// leaves the object as it was, without saying so).
    Fail(&'static str),
    /// Fails half-way: a create leaves an object (with an id), an update leaves
    /// the prior object.
    FailWithState(&'static str),
    /// Never answers that operation (the provider returns without it).
    Drop,
    /// Announces `started`, waits for `release`, then carries it out.
    Hold { started: Arc<Notify>, release: Arc<Notify> },
}

/// One call the engine made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `refresh`, `plan`, `create`, `update` or `delete`.
    pub op: &'static str,
    pub addr: String,
}

#[derive(Default)]
struct Inner {
    script: Mutex<HashMap<String, VecDeque<Answer>>>,
    calls: Mutex<Vec<Call>>,
    next_id: Mutex<u64>,
}

#[derive(Clone, Default)]
pub struct Recording {
    inner: Arc<Inner>,
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answers to the next apply operations on `addr`, in order; once
    /// they are used up, every operation succeeds.
    pub fn script(&self, addr: &str, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().entry(addr.to_string()).or_default().extend(answers);
    }

    /// Every call so far, in the order they were made.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// The addresses of the calls of one kind, in order.
    pub fn addrs(&self, op: &str) -> Vec<String> {
        self.calls().into_iter().filter(|c| c.op == op).map(|c| c.addr).collect()
    }

    /// A registry holding this provider under `rec`.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.providers.insert("rec".into(), Arc::new(self.clone()));
        r
    }

    fn record(&self, op: &'static str, ctx: &OpContext) {
        self.inner.calls.lock().unwrap().push(Call { op, addr: ctx.addr.to_string() });
    }

    fn answer(&self, ctx: &OpContext) -> Answer {
        let addr = ctx.addr.to_string();
        self.inner.script.lock().unwrap().get_mut(&addr).and_then(VecDeque::pop_front).unwrap_or(Answer::Ok)
    }

    fn fresh_id(&self) -> Value {
        let mut n = self.inner.next_id.lock().unwrap();
        *n += 1;
        Value::String(format!("rec-{n}"))
    }

    /// The object a create or update leaves: the planned value with an id.
    fn object(&self, planned: &Value) -> Value {
        let mut m: Map = planned.as_map().cloned().unwrap_or_default();
        if m.get("id").is_none_or(|v| !v.is_known() || v.is_null()) {
            m.insert("id".into(), self.fresh_id());
        }
        Value::Map(m)
    }

    async fn one(&self, op: ApplyOp) -> Option<ApplyOutcome> {
        let name = match op.kind {
            ChangeKind::Create { .. } => "create",
            ChangeKind::Update { .. } => "update",
            ChangeKind::Delete { .. } => "delete",
        };
        self.record(name, &op.ctx);
        let answer = self.answer(&op.ctx);
        if let Answer::Hold { started, release } = &answer {
            started.notify_one();
            release.notified().await;
        }
        Some(match (answer, op.kind) {
            (Answer::Drop, _) => return None,
            (Answer::Ok | Answer::Hold { .. }, ChangeKind::Create { planned } | ChangeKind::Update { planned, .. }) => {
                ApplyOutcome::ok(Some(self.object(&planned)))
            }
            (Answer::Ok | Answer::Hold { .. }, ChangeKind::Delete { .. }) => ApplyOutcome::ok(None),
            (Answer::Fail(m), _) => ApplyOutcome::failed(None, ProviderError::new(m)),
            (Answer::FailWithState(m), ChangeKind::Create { planned }) => {
                ApplyOutcome::failed(Some(self.object(&planned)), ProviderError::new(m))
            }
            (Answer::FailWithState(m), ChangeKind::Update { prior, .. } | ChangeKind::Delete { prior }) => {
                ApplyOutcome::failed(Some(prior), ProviderError::new(m))
            }
        })
    }
}

#[async_trait]
impl Provider for Recording {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        (mode == Mode::Managed && type_ == TYPE).then_some(&*SCHEMA)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { vec![TYPE] } else { vec![] }
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        items
            .into_iter()
            .map(|(ctx, v)| {
                self.record("refresh", &ctx);
                Ok(Some(v))
            })
            .collect()
    }

    async fn plan(&self, ctx: &OpContext, _type_: &str, prior: Option<&Value>, config: &Value) -> ProviderResult<Planned> {
        self.record("plan", ctx);
        let mut planned = plan_from_schema(&SCHEMA, prior, config);
        if let Value::Map(m) = &mut planned.after {
            let input = m.get("input").cloned().unwrap_or(Value::Null);
            m.insert("output".into(), input);
        }
        Ok(planned)
    }

    async fn apply(&self, _type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        // All at once, each outcome reported the moment it lands.
        use futures::StreamExt;
        let mut running: futures::stream::FuturesUnordered<_> =
            ops.into_iter().enumerate().map(|(i, op)| async move { (i, self.one(op).await) }).collect();
        while let Some((i, outcome)) = running.next().await {
            if let Some(o) = outcome {
                let _ = sink.send((i, o));
            }
        }
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("no data source `{type_}`")))
    }
}
