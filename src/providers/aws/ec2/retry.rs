//! Bounded retries for EC2's eventual consistency, and the follow-up of a
//! create whose answer was lost.
//!
//! EC2 answers `InvalidVpcID.NotFound` for a VPC it created a moment ago,
//! and `DependencyViolation` for a subnet whose last instance is still
//! shutting down. Both go away by themselves, but the SDK's retry classifier
//! rightly sees them as client errors and gives up at once. [`retry_codes`]
//! retries only the codes it is given, with exponential backoff and full
//! jitter, and gives up after a deadline so a genuinely wrong ID still fails
//! in bounded time. Throttling is not handled here: the SDK's standard retry
//! mode already does it.
//!
//! The SDK also resends a request whose connection dropped. For a create
//! that takes no idempotency token and whose object has no unique name
//! (CreateVpc, CreateInternetGateway) that resend makes a second object when
//! the first request landed. Those creates carry [`NoBlindRetry`], which
//! stops the SDK there, and go through [`create_or_find`], which looks for
//! the attempt's object by its tags before it sends the create again.

use super::error::{failure_cause, may_have_landed, sdk_error};
use crate::providers::ProviderResult;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use std::future::Future;
use std::time::{Duration, Instant};

/// Right after a create, references to the new object may not resolve yet:
/// the object's own ID, and as a route's target, a gateway, NAT gateway,
/// instance, interface or peering connection (EC2's "Eventual consistency"
/// section of the API reference: "If you create a resource and then
/// immediately run a command that uses it, the command might fail").
pub const NOT_FOUND_AFTER_CREATE: &[&str] = &[
    "InvalidInstanceID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidKeyPair.NotFound",
    "InvalidGatewayID.NotFound",
    "InvalidNatGatewayID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidVpcPeeringConnectionID.NotFound",
    "InvalidAllocationID.NotFound",
];

/// A dependent object is still going away (an instance terminating).
pub const STILL_IN_USE: &[&str] = &["DependencyViolation", "InvalidNetworkInterfaceID.NotFound"];

/// A fixed private address still held by the interface of the instance it
/// belonged to: a host replaced with the same `private_ip` launches while
/// the old interface is being released.
pub const ADDRESS_IN_USE: &[&str] = &["InvalidIPAddress.InUse"];

/// How long and how fast to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max_delay: Duration,
    /// No new attempt starts after this much time.
    pub deadline: Duration,
}

impl Backoff {
    /// For references to objects just created: EC2 usually converges within
    /// seconds; a minute covers the slow tail without hiding a typo for long.
    pub const EVENTUAL: Backoff = Backoff {
        initial: Duration::from_millis(250),
        max_delay: Duration::from_secs(5),
        deadline: Duration::from_secs(60),
    };

    /// For deletes blocked by dependents that are still shutting down.
    pub const DEPENDENTS: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max_delay: Duration::from_secs(10),
        deadline: Duration::from_secs(300),
    };

    /// For an address that a terminated instance's interface still holds:
    /// released within a minute or two; longer means someone else has it.
    pub const ADDRESS_RELEASE: Backoff = Backoff {
        initial: Duration::from_secs(1),
        max_delay: Duration::from_secs(10),
        deadline: Duration::from_secs(180),
    };

    /// How long to look for the object of a create whose answer was lost
    /// before sending the create again: new objects show in tag-filtered
    /// listings within seconds. At most `self`'s deadline, so tests that
    /// shorten the eventual-consistency deadline shorten this too.
    pub fn lost_answer(&self) -> Backoff {
        Backoff {
            initial: self.initial,
            max_delay: Duration::from_secs(2),
            deadline: self.deadline.min(Duration::from_secs(10)),
        }
    }

    /// The delay before retry number `attempt` (0-based): full jitter over an
    /// exponentially growing cap, so many callers don't retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.initial.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let fraction: f64 = rand::random::<f64>();
        cap.mul_f64(fraction).max(Duration::from_millis(10))
    }
}

/// Runs `op` until it succeeds, fails with a code not in `codes`, or the
/// backoff's deadline passes; returns the last result.
pub async fn retry_codes<T, E, F, Fut>(codes: &[&str], backoff: Backoff, mut op: F) -> Result<T, E>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let retryable = e.code().is_some_and(|c| codes.contains(&c));
                let delay = backoff.delay(attempt);
                if !retryable || start.elapsed() + delay > backoff.deadline {
                    return Err(e);
                }
                tracing::debug!(code = e.code().unwrap_or_default(), attempt, "eventual consistency: retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// The SDK retry classifier for creates whose resend could make a second
/// object: it forbids the SDK's retry after an attempt that may have landed
/// (no answer, or HTTP 500), and leaves every other decision (throttling,
/// 503) to the standard classifiers. It runs after them.
#[derive(Debug, Clone, Copy)]
pub struct NoBlindRetry;

impl ClassifyRetry for NoBlindRetry {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(e)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        let lost = e.is_timeout_error()
            || e.is_response_error()
            || e.as_connector_error().is_some_and(|c| !c.is_user())
            || ctx.response().is_some_and(|r| r.status().as_u16() == 500);
        if lost { RetryAction::RetryForbidden } else { RetryAction::NoActionIndicated }
    }

    fn name(&self) -> &'static str {
        "berth-no-blind-retry"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// How a create ended: with its answer, or with the ID of the object an
/// attempt whose answer was lost had made.
pub enum Created<T> {
    Answered(T),
    Found(String),
}

/// Sends a create (built with [`NoBlindRetry`]) at most three times. When an
/// attempt may have landed, `lookup` (the attempt's object by its tags) is
/// polled for `backoff`; what it finds is the create's object. Only when it
/// finds nothing is the create sent again. When the last attempt may have
/// landed too, the error is `Indeterminate`: the engine keeps the create
/// pending and the next run adopts what it made.
pub async fn create_or_find<T, E, S, SF, L, LF>(
    action: &str,
    backoff: Backoff,
    mut send: S,
    lookup: L,
) -> ProviderResult<Created<T>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    S: FnMut() -> SF,
    SF: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    L: Fn() -> LF,
    LF: Future<Output = ProviderResult<Option<String>>>,
{
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        let err = match send().await {
            Ok(v) => return Ok(Created::Answered(v)),
            Err(e) => e,
        };
        if !may_have_landed(&err) {
            return Err(sdk_error(action, &err));
        }
        let cause = failure_cause(&err);
        tracing::debug!("{action}: no answer ({cause}); looking for the object it may have made");
        if let Some(id) = poll_for(backoff, &lookup).await? {
            tracing::debug!(id, "{action}: the attempt whose answer was lost made it; using it");
            return Ok(Created::Found(id));
        }
        if attempt == ATTEMPTS {
            return Err(sdk_error(action, &err));
        }
        attempt += 1;
        tracing::debug!("{action}: retrying: attempt {attempt} of {ATTEMPTS} after {cause}");
    }
}

/// Calls `lookup` until it finds something or `backoff`'s deadline passes.
pub async fn poll_for<L, LF>(backoff: Backoff, lookup: &L) -> ProviderResult<Option<String>>
where
    L: Fn() -> LF,
    LF: Future<Output = ProviderResult<Option<String>>>,
{
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        if let Some(id) = lookup().await? {
            return Ok(Some(id));
        }
        let delay = backoff.delay(attempt);
        if start.elapsed() + delay > backoff.deadline {
            return Ok(None);
        }
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::ErrorMetadata;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message("test").build()
    }

    const FAST: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        deadline: Duration::from_secs(2),
    };

    #[tokio::test]
    async fn retries_listed_codes_until_success() {
        let calls = AtomicU32::new(0);
        let r: Result<u32, ErrorMetadata> = retry_codes(NOT_FOUND_AFTER_CREATE, FAST, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 { Err(err("InvalidVpcID.NotFound")) } else { Ok(n) }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }

    #[tokio::test]
    async fn other_codes_fail_at_once() {
        let calls = AtomicU32::new(0);
        let r: Result<(), ErrorMetadata> = retry_codes(NOT_FOUND_AFTER_CREATE, FAST, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err("InvalidParameterValue"))
        })
        .await;
        assert_eq!(r.unwrap_err().code(), Some("InvalidParameterValue"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let short = Backoff { deadline: Duration::from_millis(50), ..FAST };
        let start = Instant::now();
        let r: Result<(), ErrorMetadata> =
            retry_codes(STILL_IN_USE, short, || async { Err(err("DependencyViolation")) }).await;
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn delay_is_capped() {
        for attempt in 0..40 {
            assert!(Backoff::EVENTUAL.delay(attempt) <= Backoff::EVENTUAL.max_delay);
        }
    }
}
