//! The built-in `berth` provider: resources that need no cloud.
//!
//! - `berth_data`, like Terraform's `terraform_data`: stores `input` and
//!   exports it as `output`; a change of `triggers_replace` replaces it.
//!   It is the engine's test subject and the benchmark workload.
//!   `terraform_data` is the same resource under Terraform's name.
//! - `null_resource`, as in Terraform's null provider: an `id` and
//!   `triggers` (a map of strings) whose change replaces it. berth has no
//!   `null` provider of its own, so it lives here.
//! - `berth_sleep`, like the time provider's `time_sleep`: waits
//!   `create_duration` on create and `destroy_duration` on destroy.
//! - `berth_assert`: fails at apply when `condition` is false, with
//!   `message`; for checks on values only known after apply.

use super::*;
use std::sync::LazyLock;
use std::time::Duration;

static DATA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![Attribute::arg("input"), Attribute::arg("triggers_replace").force_new()])
        .with_exported(&["id", "output"])
});
static NULL: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![Attribute::arg("triggers").force_new()]).with_exported(&["id"]));
static SLEEP: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("create_duration"),
        Attribute::arg("destroy_duration"),
        Attribute::arg("triggers").force_new(),
    ])
    .with_exported(&["id"])
});
static ASSERT: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![Attribute::arg("condition").required(), Attribute::arg("message")]).with_exported(&["id"])
});

#[derive(Default)]
pub struct Builtin;

fn new_id() -> Value {
    Value::String(uuid::Uuid::new_v4().to_string())
}

fn duration(v: Option<&Value>) -> ProviderResult<Duration> {
    match v.and_then(Value::as_str) {
        None => Ok(Duration::ZERO),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| ProviderError::new(format!("invalid duration `{s}`: {e}"))),
    }
}

impl Builtin {
    async fn apply_one(type_: &str, op: ApplyOp) -> ApplyOutcome {
        match (type_, op.kind) {
            ("berth_data" | "terraform_data", ChangeKind::Create { planned } | ChangeKind::Update { planned, .. }) => {
                let mut m = planned.as_map().cloned().unwrap_or_default();
                if m.get("id").is_none_or(|v| !v.is_known() || v.is_null()) {
                    m.insert("id".into(), new_id());
                }
                let input = m.get("input").cloned().unwrap_or(Value::Null);
                m.insert("output".into(), input);
                ApplyOutcome::ok(Some(Value::Map(m)))
            }
            ("null_resource", ChangeKind::Create { planned } | ChangeKind::Update { planned, .. }) => {
                let mut m = planned.as_map().cloned().unwrap_or_default();
                if m.get("id").is_none_or(|v| !v.is_known() || v.is_null()) {
                    m.insert("id".into(), new_id());
                }
                ApplyOutcome::ok(Some(Value::Map(m)))
            }
            ("berth_sleep", ChangeKind::Create { planned }) => {
                match duration(planned.get("create_duration")) {
                    Ok(d) => tokio::time::sleep(d).await,
                    Err(e) => return ApplyOutcome::failed(None, e),
                }
                let mut m = planned.as_map().cloned().unwrap_or_default();
                m.insert("id".into(), new_id());
                ApplyOutcome::ok(Some(Value::Map(m)))
            }
            ("berth_sleep", ChangeKind::Update { planned, .. }) => ApplyOutcome::ok(Some(planned)),
            ("berth_sleep", ChangeKind::Delete { prior }) => match duration(prior.get("destroy_duration")) {
                Ok(d) => {
                    tokio::time::sleep(d).await;
                    ApplyOutcome::ok(None)
                }
                Err(e) => ApplyOutcome::failed(Some(prior), e),
            },
            ("berth_assert", ChangeKind::Create { planned }) => Self::check(planned, None),
            // A failed check of an existing assertion leaves it as it was.
            ("berth_assert", ChangeKind::Update { prior, planned }) => Self::check(planned, Some(prior)),
            (_, ChangeKind::Delete { .. }) => ApplyOutcome::ok(None),
            (t, _) => ApplyOutcome::failed(None, ProviderError::new(format!("unknown type `{t}`"))),
        }
    }

    /// A `berth_assert` create or update: the planned object when the
    /// condition holds, otherwise a failure that leaves `prior` as it was.
    fn check(planned: Value, prior: Option<Value>) -> ApplyOutcome {
        if planned.get("condition").and_then(Value::as_bool) != Some(true) {
            let msg = planned.get_str("message").unwrap_or("assertion failed").to_string();
            return ApplyOutcome::failed(prior, ProviderError::attr("condition", msg));
        }
        let mut m = planned.as_map().cloned().unwrap_or_default();
        if m.get("id").is_none_or(|v| !v.is_known() || v.is_null()) {
            m.insert("id".into(), new_id());
        }
        ApplyOutcome::ok(Some(Value::Map(m)))
    }
}

#[async_trait]
impl Provider for Builtin {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match (mode, type_) {
            (Mode::Managed, "berth_data" | "terraform_data") => Some(&DATA),
            (Mode::Managed, "null_resource") => Some(&NULL),
            (Mode::Managed, "berth_sleep") => Some(&SLEEP),
            (Mode::Managed, "berth_assert") => Some(&ASSERT),
            _ => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => vec!["berth_data", "berth_sleep", "berth_assert", "terraform_data", "null_resource"],
            Mode::Data => vec![],
        }
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, _mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        if type_ == "berth_sleep" {
            for a in ["create_duration", "destroy_duration"] {
                if let Some(v) = config.get(a).filter(|v| v.is_known() && !v.is_null())
                    && let Err(e) = duration(Some(v))
                {
                    errs.push(ProviderError { attribute: Some(a.into()), ..e });
                }
            }
        }
        if type_ == "null_resource"
            && let Some(t) = config.get("triggers").filter(|v| v.is_known() && !v.is_null())
        {
            match t {
                Value::Map(_) => {}
                _ => errs.push(ProviderError::attr("triggers", format!("`triggers` must be a map of strings, not {}", t.type_name()))),
            }
        }
        if type_ == "berth_assert"
            && let Some(c) = config.get("condition").filter(|v| v.is_known() && !v.is_null())
            && c.as_bool().is_none()
        {
            errs.push(ProviderError::attr("condition", format!("`condition` must be a bool, not {}", c.type_name())));
        }
        errs
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        // Nothing outside berth can change these: the state is the truth.
        items.into_iter().map(|(_, v)| Ok(Some(v))).collect()
    }

    async fn plan(&self, _ctx: &OpContext, type_: &str, prior: Option<&Value>, config: &Value)
        -> ProviderResult<Planned> {
        let schema = self
            .schema(Mode::Managed, type_)
            .ok_or_else(|| ProviderError::new(format!("unknown type `{type_}`")))?;
        let mut planned = plan_from_schema(schema, prior, config);
        if matches!(type_, "berth_data" | "terraform_data")
            && let Value::Map(m) = &mut planned.after
        {
            let input = m.get("input").cloned().unwrap_or(Value::Null);
            m.insert("output".into(), input);
        }
        if type_ == "berth_assert"
            && let Value::Map(m) = &mut planned.after
            && prior.is_some()
            && planned.requires_replace.is_empty()
        {
            // A recheck never needs a new id.
            m.insert("id".into(), prior.and_then(|p| p.get("id")).cloned().unwrap_or(Value::Null));
        }
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 64, |op| Self::apply_one(type_, op)).await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the berth provider has no data source `{type_}`")))
    }
}
