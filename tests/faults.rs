//! Throttling and flaky APIs (issue #8), through
//! [`FaultProxy`](support::faultproxy), a fault-injecting HTTP proxy on
//! loopback in front of a real moto.
//!
//! - `sustained_throttling_does_not_exhaust_the_retry_quota`: 200 calls
//!   through berth's EC2 client with 60% of attempts faulted all succeed
//!   (the SDK's retry quota would have stopped some).
//!
//! Each run prints its seed; `BERTH_FAULT_SEED=N` repeats the proxy's
//! decisions.

mod support;

use std::time::Instant;
use support::faultproxy::{FaultProxy, Faults, Stats};
use support::moto::Moto;

fn report(stats: &Stats) -> String {
    format!("forwarded {}, faults {:?}, by action {:?}", stats.forwarded, stats.faults, stats.by_action)
}

/// A long run under sustained throttling: 200 calls through berth's own EC2
/// client with 60% of all attempts faulted (at most 4 in a row, so each
/// call needs at most 5 of berth's 9 attempts). None may give up. The SDK's
/// standard retry mode also has a retry quota, a token bucket of 500 that
/// every retry after the first of a call drains for good (5 tokens for
/// throttling, 10 for a 503 or a dropped connection); it is meant to stop
/// retry storms in long-lived services, and with it a large apply under
/// heavy throttling fails half-way with attempts left.
#[tokio::test(flavor = "multi_thread")]
async fn sustained_throttling_does_not_exhaust_the_retry_quota() {
    use futures::StreamExt;
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Faults::flaky(0.6));
    let provider = berth::providers::aws::AwsProvider::from_config(&berth::value::obj([
        ("region", berth::value::Value::str("us-east-1")),
        ("access_key", berth::value::Value::str("testing")),
        ("secret_key", berth::value::Value::str("testing")),
        ("endpoint_url", berth::value::Value::str(&proxy.endpoint)),
    ]))
    .await
    .expect("the provider");
    let ec2 = provider.ec2_client().clone();
    let calls = 200;
    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..calls)
        .map(|_| {
            let ec2 = ec2.clone();
            async move { ec2.describe_vpcs().send().await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let stats = proxy.stats();
    eprintln!("{calls} calls in {:?}: {}", start.elapsed(), report(&stats));
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| aws_smithy_types::error::display::DisplayErrorContext(e).to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {calls} calls gave up (seed {}); the first: {}",
        failed.len(),
        proxy.seed,
        failed.first().map(String::as_str).unwrap_or_default()
    );
    assert!(stats.total_faults() as f64 > calls as f64 * 0.5, "{}", report(&stats));
}
