//! API call counts are process-wide (`berth::telemetry::api_stats`), and every
//! suite is a module of one test binary, so tests that count and tests that
//! call share a lock: a test that asserts on counts holds [`exclusive`] while
//! it counts; every other test that calls AWS from this process holds
//! [`shared`]. Tests that run the `berth` binary count in that process and
//! need neither.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static CALLS: RwLock<()> = RwLock::const_new(());

/// No other test calls AWS from this process while this is held.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CALLS.write().await
}

/// This test calls AWS from this process; no count is being taken.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    CALLS.read().await
}
