//! The `time` provider, spelt as Terraform's: `time_static`, an instant
//! fixed when it is created (or given as `rfc3339`) and kept in the state
//! until a `triggers` value changes; `time_sleep`, a pause of
//! `create_duration` after it is created and of `destroy_duration` before
//! it is destroyed, so that what depends on it waits (an IAM profile that
//! AWS has not spread yet, a host that is still booting).
//!
//! Both exist only in the state, so the provider is
//! [`Provider::local_only`]. (berth's own `berth_sleep` is the same pause
//! under berth's name.)

use super::*;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use std::sync::LazyLock;
use std::time::Duration;

const STATIC: &str = "time_static";
const SLEEP: &str = "time_sleep";

static STATIC_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![Attribute::arg("rfc3339").computed().force_new(), Attribute::arg("triggers").force_new()])
        .with_exported(&["id", "year", "month", "day", "hour", "minute", "second", "unix"])
});

static SLEEP_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("create_duration"),
        Attribute::arg("destroy_duration"),
        Attribute::arg("triggers").force_new(),
    ])
    .with_exported(&["id"])
});

#[derive(Default)]
pub struct Time;

/// A duration as Terraform's time provider writes them (`30s`, `1m30s`,
/// `2h`), which `humantime` reads.
fn duration(config: &Value, k: &str) -> ProviderResult<Duration> {
    match config.get(k).filter(|v| v.is_known() && !v.is_null()).map(Value::unmarked) {
        None => Ok(Duration::ZERO),
        Some(Value::String(s)) => humantime::parse_duration(s).map_err(|e| {
            ProviderError::attr(k, format!("`{k}` is not a duration such as \"30s\" or \"2m\": `{s}` ({e})"))
        }),
        Some(other) => {
            Err(ProviderError::attr(k, format!("`{k}` must be a string such as \"30s\", not {}", other.type_name())))
        }
    }
}

fn instant(s: &str) -> ProviderResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ProviderError::attr("rfc3339", format!("`rfc3339` is not an RFC 3339 time: `{s}` ({e})")))
}

/// A `time_static` as the state keeps it: the instant and its parts (UTC).
fn fixed(planned: &Value, at: DateTime<Utc>) -> Value {
    let text = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    m.insert("id".into(), Value::str(&text));
    m.insert("rfc3339".into(), Value::str(&text));
    for (k, n) in [
        ("year", i64::from(at.year())),
        ("month", i64::from(at.month())),
        ("day", i64::from(at.day())),
        ("hour", i64::from(at.hour())),
        ("minute", i64::from(at.minute())),
        ("second", i64::from(at.second())),
        ("unix", at.timestamp()),
    ] {
        m.insert(k.into(), Value::from(n));
    }
    Value::Map(m)
}

fn triggers_errors(config: &Value) -> Option<ProviderError> {
    match config.get("triggers").map(Value::unmarked) {
        None | Some(Value::Null | Value::Unknown | Value::Map(_)) => None,
        Some(other) => Some(ProviderError::attr(
            "triggers",
            format!("`triggers` must be a map of strings, not {}", other.type_name()),
        )),
    }
}

#[async_trait]
impl Provider for Time {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match (mode, type_) {
            (Mode::Managed, STATIC) => Some(&STATIC_SCHEMA),
            (Mode::Managed, SLEEP) => Some(&SLEEP_SCHEMA),
            _ => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { vec![SLEEP, STATIC] } else { Vec::new() }
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, _mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        let mut errs: Vec<ProviderError> = triggers_errors(config).into_iter().collect();
        match type_ {
            SLEEP => {
                for k in ["create_duration", "destroy_duration"] {
                    errs.extend(duration(config, k).err());
                }
            }
            STATIC => {
                if let Some(s) = config.get_str("rfc3339") {
                    errs.extend(instant(s).err());
                }
            }
            _ => {}
        }
        errs
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        // Nothing outside berth holds these: the state is the truth.
        items.into_iter().map(|(_, v)| Ok(Some(v))).collect()
    }

    async fn plan(&self, _ctx: &OpContext, type_: &str, prior: Option<&Value>, config: &Value)
        -> ProviderResult<Planned> {
        let schema = self
            .schema(Mode::Managed, type_)
            .ok_or_else(|| ProviderError::new(format!("the `time` provider has no type `{type_}`")))?;
        if let Some(e) = self.validate(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        let mut planned = plan_from_schema(schema, prior, config);
        if type_ == STATIC {
            // `rfc3339` is computed when left out, so the schema does not
            // compare it: a given instant that differs replaces.
            let given = config.get("rfc3339").filter(|v| !v.is_null());
            if let (Some(p), Some(now)) = (prior, given)
                && (!now.is_known() || p.get("rfc3339").is_none_or(|b| !b.same_as(now)))
                && planned.requires_replace.is_empty()
            {
                planned.requires_replace.push("rfc3339".into());
                if let Value::Map(m) = &mut planned.after {
                    for k in ["id", "year", "month", "day", "hour", "minute", "second", "unix"] {
                        m.insert(k.into(), Value::Unknown);
                    }
                }
            }
            // A given instant's parts are known at plan time.
            if let (Some(s), Value::Map(_)) = (config.get_str("rfc3339"), &planned.after) {
                planned.after = fixed(&planned.after, instant(s)?);
            }
        }
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 64, |op| async move {
            match (type_, op.kind) {
                (STATIC, ChangeKind::Create { planned }) => {
                    let at = match planned.get_str("rfc3339") {
                        Some(s) => match instant(s) {
                            Ok(t) => t,
                            Err(e) => return ApplyOutcome::failed(None, e),
                        },
                        None => Utc::now(),
                    };
                    ApplyOutcome::ok(Some(fixed(&planned, at)))
                }
                (SLEEP, ChangeKind::Create { planned }) => {
                    match duration(&planned, "create_duration") {
                        Ok(d) => tokio::time::sleep(d).await,
                        Err(e) => return ApplyOutcome::failed(None, e),
                    }
                    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
                    m.insert("id".into(), Value::str(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)));
                    ApplyOutcome::ok(Some(Value::Map(m)))
                }
                // A new duration applies to the next create or destroy; it
                // does not wait now, as in Terraform.
                (_, ChangeKind::Update { planned, .. }) => ApplyOutcome::ok(Some(planned)),
                (SLEEP, ChangeKind::Delete { prior }) => match duration(&prior, "destroy_duration") {
                    Ok(d) => {
                        tokio::time::sleep(d).await;
                        ApplyOutcome::ok(None)
                    }
                    Err(e) => ApplyOutcome::failed(Some(prior), e),
                },
                (_, ChangeKind::Delete { .. }) => ApplyOutcome::ok(None),
                (t, _) => {
                    ApplyOutcome::failed(None, ProviderError::new(format!("the `time` provider has no type `{t}`")))
                }
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the `time` provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn a_given_instant_is_split_into_its_parts() {
        let v = fixed(&Value::Map(Default::default()), instant("2026-03-04T05:06:07+01:00").unwrap());
        assert_eq!(v.get_str("rfc3339"), Some("2026-03-04T04:06:07Z"), "kept in UTC");
        assert_eq!(v.get("hour"), Some(&Value::from(4i64)));
        assert_eq!(v.get("unix"), Some(&Value::from(1772597167i64)));
        assert_eq!(v.get_str("id"), v.get_str("rfc3339"));
    }

    #[test]
    fn bad_durations_and_instants_name_their_argument() {
        let errs = Time.validate(Mode::Managed, SLEEP, &obj([("create_duration", Value::str("soon"))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("create_duration"));
        let errs = Time.validate(Mode::Managed, STATIC, &obj([("rfc3339", Value::str("yesterday"))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("rfc3339"));
        assert!(Time.validate(Mode::Managed, SLEEP, &obj([("destroy_duration", Value::str("1m30s"))])).is_empty());
    }
}
