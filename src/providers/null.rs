//! The `null` provider, spelt as Terraform's: `null_resource`, an object
//! that exists only in the state and is replaced whenever a value of its
//! `triggers` map changes. Configurations use it to hang a re-run on a
//! change (a new host id, a new config digest); berth has no provisioners,
//! so it is the replacement, not a command, that a trigger causes.
//!
//! Nothing exists outside the state, so the provider is
//! [`Provider::local_only`].

use super::*;
use rand::RngExt;
use std::sync::LazyLock;

const RESOURCE: &str = "null_resource";

static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![Attribute::arg("triggers").force_new()]).with_exported(&["id"]));

#[derive(Default)]
pub struct Null;

/// Terraform's id for a `null_resource`: a random decimal number.
fn new_id() -> Value {
    Value::str(rand::rng().random_range(1_000_000_000_000_000_000u64..10_000_000_000_000_000_000).to_string())
}

#[async_trait]
impl Provider for Null {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        (mode == Mode::Managed && type_ == RESOURCE).then_some(&*SCHEMA)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { vec![RESOURCE] } else { Vec::new() }
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, _mode: Mode, _type_: &str, config: &Value) -> Vec<ProviderError> {
        match config.get("triggers").map(Value::unmarked) {
            None | Some(Value::Null | Value::Unknown | Value::Map(_)) => Vec::new(),
            Some(other) => vec![ProviderError::attr(
                "triggers",
                format!("`triggers` must be a map of strings, not {}", other.type_name()),
            )],
        }
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        // Nothing outside berth holds these: the state is the truth.
        items.into_iter().map(|(_, v)| Ok(Some(v))).collect()
    }

    async fn plan(&self, _ctx: &OpContext, type_: &str, prior: Option<&Value>, config: &Value)
        -> ProviderResult<Planned> {
        let schema = self
            .schema(Mode::Managed, type_)
            .ok_or_else(|| ProviderError::new(format!("the `null` provider has no type `{type_}`")))?;
        if let Some(e) = self.validate(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        Ok(plan_from_schema(schema, prior, config))
    }

    async fn apply(&self, _type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 64, |op| async move {
            match op.kind {
                ChangeKind::Create { planned } => {
                    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
                    m.insert("id".into(), new_id());
                    ApplyOutcome::ok(Some(Value::Map(m)))
                }
                // `triggers` replaces; nothing else can change.
                ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
                ChangeKind::Delete { .. } => ApplyOutcome::ok(None),
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the `null` provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn triggers_must_be_a_map() {
        assert!(Null.validate(Mode::Managed, RESOURCE, &obj([("triggers", obj([("a", Value::str("1"))]))])).is_empty());
        let errs = Null.validate(Mode::Managed, RESOURCE, &obj([("triggers", Value::str("x"))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("triggers"));
        assert!(SCHEMA.attribute("triggers").unwrap().force_new);
    }

    #[test]
    fn ids_are_decimal_numbers() {
        let id = new_id();
        let s = id.as_str().unwrap();
        assert!(s.len() >= 19 && s.chars().all(|c| c.is_ascii_digit()), "{s}");
    }
}
