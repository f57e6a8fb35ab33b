//! Counts the API calls berth makes, per service and operation.
//!
//! Every AWS client berth builds carries the [`CountCalls`] interceptor, which
//! records each attempt (retries included: they are real calls). Tests and the
//! benchmarks read the counts to hold berth to the physical minimum of the
//! APIs (a no-op plan of N hosts costs ceil(N/1000) DescribeInstances calls).
//! The local state backend records its durable writes the same way
//! (`local:AppendJournal`, `local:WriteState`), so the crash suite knows how
//! many moments it can kill at. With `BERTH_API_STATS=FILE` set, the CLI
//! writes the counts to FILE as JSON when it exits.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::Mutex;

static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

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

/// Writes the counts as JSON to `$BERTH_API_STATS` when it is set.
pub fn write_if_requested() {
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
            tracing::debug!(service = %service, operation = m.name(), "api call");
            record(&service, m.name());
        }
        Ok(())
    }

    /// The request landed and its response arrived, unread: the moment the
    /// crash suite's `BERTH_TEST_KILL_AFTER_CALLS` kills at (see
    /// [`crate::crashpoint`]).
    fn read_after_transmit(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        crate::crashpoint::after_api_call(&|| {
            cfg.load::<Metadata>()
                .map(|m| format!("{}:{}", m.service().to_ascii_lowercase(), m.name()))
                .unwrap_or_else(|| "unknown call".into())
        });
        Ok(())
    }
}
