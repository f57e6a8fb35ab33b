//! Counts the API calls berth makes, per service and operation.
//!
//! Every AWS client berth builds carries the [`CountCalls`] interceptor, which
//! records each attempt (retries included: they are real calls). Tests and the
//! benchmarks read the counts to hold berth to the physical minimum of the
//! APIs (a no-op plan of N hosts costs ceil(N/200) DescribeInstances calls).
//! The local state backend records its durable writes the same way
//! (`local:AppendJournal`, `local:WriteState`), so the crash suite knows how
//! many moments it can kill at. With `BERTH_API_STATS=FILE` set, the CLI
//! writes the counts to FILE as JSON when it exits.
//!
//! The interceptor also makes retries visible: with `BERTH_LOG=berth=debug`
//! each retry of a call is logged with its attempt number and what went wrong
//! with the previous attempt (`RequestLimitExceeded (HTTP 503)`, a dropped
//! connection), without the SDK's own, much noisier, debug output.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::RetryConfig;
use std::collections::BTreeMap;
use std::sync::Mutex;

static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static THROTTLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Attempts the services answered "slow down" so far, process-wide (the
/// SDK retries them): `berth watch` reports them per cycle.
pub fn throttled() -> u64 {
    THROTTLED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether an AWS error code says the request was throttled.
pub fn is_throttling(code: &str) -> bool {
    matches!(code, "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "RequestThrottled" | "TooManyRequestsException" | "SlowDown")
}

/// Records one call of `service`'s `operation` (`ec2`, `DescribeInstances`).
pub fn record(service: &str, operation: &str) {
    let mut c = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    *c.entry(format!("{service}:{operation}")).or_default() += 1;
}

/// The counts so far, keyed `service:Operation`.
pub fn snapshot() -> BTreeMap<String, u64> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Calls of one operation so far (`"ec2:DescribeInstances"`).
pub fn count(key: &str) -> u64 {
    snapshot().get(key).copied().unwrap_or(0)
}

/// Writes the counts as JSON to `$BERTH_API_STATS` when it is set, and the
/// engine's work counts ([`super::work`]) to `$BERTH_WORK_STATS`.
pub fn write_if_requested() {
    super::work::write_if_requested();
    if let Ok(path) = std::env::var("BERTH_API_STATS") {
        let json = serde_json::to_string_pretty(&snapshot()).unwrap_or_default();
        let _ = std::fs::write(path, json);
    }
}

/// The interceptor that feeds [`record`]; attach it to every AWS client.
#[derive(Debug, Default, Clone)]
pub struct CountCalls;

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "berth-api-stats"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let service = m.service().to_ascii_lowercase();
            let attempt = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
            if attempt > 1 {
                let max = cfg.load::<RetryConfig>().map_or(1, RetryConfig::max_attempts);
                let cause = cfg.load::<FailedAttempt>().map_or("an error", |f| f.0.as_str());
                tracing::debug!(
                    service = %service,
                    operation = m.name(),
                    "retrying: attempt {attempt} of {max} after {cause}"
                );
            } else {
                tracing::debug!(service = %service, operation = m.name(), "api call");
            }
            record(&service, m.name());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(e)) = ctx.output_or_error() {
            let cause = match ctx.response() {
                Some(r) => {
                    let code = r.body().bytes().and_then(error_code);
                    if code.as_deref().is_some_and(is_throttling) {
                        THROTTLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    match code {
                        Some(code) => format!("{code} (HTTP {})", r.status().as_u16()),
                        None => format!("HTTP {}", r.status().as_u16()),
                    }
                }
                None if e.is_timeout_error() => "a timeout".to_string(),
                None => match e.as_connector_error() {
                    Some(c) => format!("a connection error ({})", DisplayErrorContext(c)),
                    None => format!("an error ({e})"),
                },
            };
            cfg.interceptor_state().store_put(FailedAttempt(cause));
        }
        Ok(())
    }

    /// The request landed and its response arrived, unread: the moment the
    /// crash suite's `BERTH_TEST_KILL_AFTER_CALLS` kills at (see
    /// [`crate::telemetry::crashpoint`]).
    fn read_after_transmit(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        crate::telemetry::crashpoint::after_api_call(&|| {
            cfg.load::<Metadata>()
                .map(|m| format!("{}:{}", m.service().to_ascii_lowercase(), m.name()))
                .unwrap_or_else(|| "unknown call".into())
        });
        Ok(())
    }
}

/// What went wrong with the previous attempt of a call, for the retry's log
/// line.
#[derive(Debug, Clone)]
struct FailedAttempt(String);

impl Storable for FailedAttempt {
    type Storer = StoreReplace<Self>;
}

/// The error code of an AWS error body: `<Code>` in the XML protocols (EC2,
/// Route53, S3), `__type` in the JSON ones.
fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if let Some(start) = text.find("<Code>") {
        let rest = &text[start + "<Code>".len()..];
        return rest.find("</Code>").map(|end| rest[..end].trim().to_string()).filter(|c| !c.is_empty());
    }
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = json.get("__type").or_else(|| json.get("code"))?.as_str()?;
    // `com.amazonaws.service#ThrottlingException` -> the name only.
    Some(t.rsplit('#').next().unwrap_or(t).to_string())
}

#[cfg(test)]
mod tests {
    use super::{error_code, is_throttling};

    #[test]
    fn error_codes_of_the_protocols() {
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message></Error></Errors></Response>";
        assert_eq!(error_code(ec2).as_deref(), Some("RequestLimitExceeded"));
        let r53 = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code></Error></ErrorResponse>";
        assert_eq!(error_code(r53).as_deref(), Some("Throttling"));
        assert_eq!(error_code(br#"{"__type":"com.amazon#ThrottlingException"}"#).as_deref(), Some("ThrottlingException"));
        assert!(is_throttling("RequestLimitExceeded") && is_throttling("Throttling"));
        assert!(!is_throttling("InvalidInstanceID.NotFound"));
        assert_eq!(error_code(b""), None);
        assert_eq!(error_code(b"<html>503</html>"), None);
    }
}
