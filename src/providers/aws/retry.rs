//! Bounded retries for EC2's eventual consistency.
//!
//! EC2 answers `InvalidVpcID.NotFound` for a VPC it created a moment ago,
//! and `DependencyViolation` for a subnet whose last instance is still
//! shutting down. Both go away by themselves, but the SDK's retry classifier
//! rightly sees them as client errors and gives up at once. [`retry_codes`]
//! retries only the codes it is given, with exponential backoff and full
//! jitter, and gives up after a deadline so a genuinely wrong ID still fails
//! in bounded time. Throttling is not handled here: the SDK's standard retry
//! mode already does it.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use std::future::Future;
use std::time::{Duration, Instant};

/// Right after a create, references to the new object may not resolve yet.
pub const NOT_FOUND_AFTER_CREATE: &[&str] = &[
    "InvalidInstanceID.NotFound",
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidKeyPair.NotFound",
];

/// A dependent object is still going away (an instance terminating).
pub const STILL_IN_USE: &[&str] = &["DependencyViolation", "InvalidNetworkInterfaceID.NotFound"];

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
