//! Client-side pacing of Route53 calls, so a large apply stays under the
//! account's request rate instead of living on `Throttling` answers.
//!
//! Route53 throttles per account, across every client and every operation:
//! AWS has long documented a hard limit of five requests per second per
//! account (HTTP 400, `Throttling`, "Rate exceeded"); its newer throttling
//! page raises the account bucket to a burst of 50 and 10 a second, with
//! smaller buckets for some operations (CreateHostedZone 2 a second). berth
//! keeps to the older, lower number, which fits both. One bucket serves
//! every Route53 client of the process, since aliased providers usually
//! share the account. A call still throttled (another tool on the same
//! account) is retried by the SDK with backoff, so pacing is a courtesy
//! that saves retries, never a condition for converging.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Requests a second, sustained: a little under the limit, so that network
/// jitter bunching two requests together does not cross it.
pub const RATE: f64 = 4.5;
/// Requests that may go at once after a quiet spell.
pub const BURST: f64 = 4.0;

/// A token bucket that hands out its tokens in order: a caller takes a
/// token at once, borrowing against the refill when the bucket is empty,
/// and sleeps until the borrowed token would have arrived.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Bucket {
        Bucket { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Takes a token; returns how long to wait before using it.
    pub fn reserve(&self) -> Duration {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = *st;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        let left = refilled - 1.0;
        *st = (left, now);
        if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / self.rate) }
    }

    /// Waits for a token.
    pub async fn take(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The process's Route53 bucket.
pub static ROUTE53: LazyLock<Bucket> = LazyLock::new(|| Bucket::new(RATE, BURST));

/// The client the SDK would build for itself (hyper, rustls with aws-lc,
/// proxies from the environment), built here because the SDK configuration
/// names none unless one was given, and pacing has to wrap one.
pub fn default_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            conn.set_sleep_impl(c.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// An HTTP client that takes a token from [`ROUTE53`] before every request
/// it sends: every attempt, the SDK's retries included, is paced, whatever
/// the call site.
#[derive(Debug, Clone)]
pub struct Paced(pub SharedHttpClient);

#[derive(Debug)]
struct PacedConnector(SharedHttpConnector);

impl HttpClient for Paced {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector(self.0.http_connector(settings, components)))
    }
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            ROUTE53.take().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let b = Bucket::new(5.0, 3.0);
        for _ in 0..3 {
            assert_eq!(b.reserve(), Duration::ZERO);
        }
        // The next ones wait one refill each, in order.
        let w1 = b.reserve();
        let w2 = b.reserve();
        assert!(w1 > Duration::from_millis(150) && w1 <= Duration::from_millis(200), "{w1:?}");
        assert!(w2 > Duration::from_millis(350) && w2 <= Duration::from_millis(400), "{w2:?}");
    }

    #[tokio::test]
    async fn no_window_of_a_second_holds_more_than_burst_plus_rate() {
        let b = Bucket::new(10.0, 2.0);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..15 {
            b.take().await;
            at.push(start.elapsed().as_secs_f64());
        }
        for (i, t) in at.iter().enumerate() {
            let within = at[i..].iter().filter(|u| **u < t + 0.5).count();
            assert!(within <= 2 + 5 + 1, "{within} calls within half a second: {at:?}");
        }
    }
}
