//! The watcher's HTTP endpoint (`watch { listen = "127.0.0.1:9469" }`):
//!
//! - `/metrics`: [`Metrics`] in the Prometheus text format;
//! - `/healthz`: 200 while the loop is alive, that is while the last cycle
//!   ended less than two intervals ago (a new watcher has two intervals for
//!   its first), else 503 — for a supervisor that restarts a stuck process;
//! - `/readyz`: 200 once a cycle has succeeded, else 503.
//!
//! It listens on loopback unless told otherwise: the metrics name no
//! secrets, but what drifts and when is nobody else's business.

use super::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The default `listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    interval: Duration,
}

/// A bound listener, not yet serving: the caller learns the address (port
/// 0 picks one) before it starts.
pub struct Server {
    listener: tokio::net::TcpListener,
    shared: Shared,
}

/// Whether a loop whose cycles are `interval` apart, and whose last one
/// ended (or which started) at `last`, is alive at `now`.
pub fn alive(last: Instant, now: Instant, interval: Duration) -> bool {
    now.saturating_duration_since(last) <= interval.saturating_mul(2)
}

impl Server {
    pub async fn bind(listen: SocketAddr, metrics: Arc<Metrics>, interval: Duration) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        Ok(Server { listener, shared: Shared { metrics, interval } })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` fires.
    pub async fn serve(self, stop: CancellationToken) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(self.shared);
        axum::serve(self.listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await
    }
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.encode())
}

async fn healthz(State(s): State<Shared>) -> impl IntoResponse {
    let last = s.metrics.last_cycle_or_start();
    if alive(last, Instant::now(), s.interval) {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        let ago = humantime::format_duration(Duration::from_secs(last.elapsed().as_secs()));
        (StatusCode::SERVICE_UNAVAILABLE, format!("no cycle ended in the last {ago} (two intervals)\n"))
    }
}

async fn readyz(State(s): State<Shared>) -> impl IntoResponse {
    if s.metrics.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no cycle has succeeded yet\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_within_two_intervals() {
        let t0 = Instant::now();
        let i = Duration::from_secs(60);
        assert!(alive(t0, t0 + Duration::from_secs(119), i));
        assert!(alive(t0, t0 + Duration::from_secs(120), i));
        assert!(!alive(t0, t0 + Duration::from_secs(121), i));
        // A clock read before the last cycle ended is not a stall.
        assert!(alive(t0 + Duration::from_secs(5), t0, i));
    }
}
