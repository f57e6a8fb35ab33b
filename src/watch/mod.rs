//! `berth watch`: the control loop of a Kamal fleet. Each cycle refreshes
//! and plans through the engine, classifies what drifted, heals what is
//! safe to heal (in `heal` mode, within its guards), and reports through
//! [`event::Sink`]s: notifiers ([`notify`]), the Prometheus metrics
//! ([`metrics`], served by [`server`]), a test's recorder.

pub mod event;
pub mod metrics;
pub mod notify;
pub mod server;

pub use event::{CycleSummary, DriftClass, EventKind, Severity, Sink, SkipReason, WatchEvent};
