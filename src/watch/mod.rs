//! `berth watch`: the control loop of a Kamal fleet. Each cycle refreshes
//! and plans through the engine, classifies what drifted, heals what is
//! safe to heal (in `heal` mode, within its guards), and reports through
//! [`event::Sink`]s: notifiers ([`notify`]), the Prometheus metrics
//! ([`metrics`], served by [`server`]), a test's recorder.
//!
//! - [`config`]: the `watch { ... }` block → [`WatchSettings`];
//! - [`classify`]: refreshed state + plan → drift by class;
//! - [`guards`]: budget, grace, quarantine, pause, deny windows, short-circuit;
//! - [`ledger`]: what the watcher remembers, beside the state;
//! - [`cycle`]: one cycle ([`Watcher::cycle`]);
//! - [`clock`]: injectable time; [`recorder`]: a sink that keeps events.
//!
//! The loop itself (waits with jitter, back-off after errors) is
//! [`run_loop`]; the CLI edge is `commands::watch`.

pub mod classify;
pub mod clock;
pub mod config;
pub mod cycle;
pub mod event;
pub mod guards;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod recorder;
pub mod server;

pub use config::WatchSettings;
pub use cycle::{CycleReport, Watcher};
pub use event::{CycleSummary, DriftClass, EventKind, Severity, Sink, SkipReason, WatchEvent};

/// Runs cycles until `stop` fires: each followed by a wait of `interval`
/// ±10%, or after an error, the retry interval doubled per error in a row.
/// `reload` gives each cycle a fresh watcher (the configuration may have
/// changed on disk); it returns the settings the wait is computed from.
pub async fn run_loop<F, Fut>(stop: &tokio_util::sync::CancellationToken, mut one: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (CycleReport, WatchSettings)>,
{
    loop {
        if stop.is_cancelled() {
            return;
        }
        let (report, settings) = one().await;
        let wait = settings.next_wait(report.consecutive_errors, rand::random::<f64>());
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
