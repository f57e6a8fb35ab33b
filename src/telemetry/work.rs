//! Counts the engine's evaluation work, for the regression guard that keeps
//! it linear.
//!
//! Seconds are the wrong measure in a test (they vary with the machine and
//! its load); work is not. The engine counts two things an expression can
//! cost: **instance values copied** out of the walk's scope (one for
//! `aws_instance.host[count.index]`, one per instance for a reference to the
//! whole resource), **values copied** out of memoized locals, variables and
//! outputs (by their number of elements: `local.ips[count.index]` copies
//! one, `local.ips` all of them), and **memoized evaluations** (a local,
//! module variable or output evaluated, not found in the memo); and one
//! thing ordering costs:
//! the **edges of the step graph** an apply or destroy walks. A guard runs the same shape at
//! two sizes and holds each count to grow no faster than the size
//! (tests/it/linear_work.rs). With `BERTH_WORK_STATS=FILE` the CLI writes
//! them to FILE as JSON when it exits, as `engine:InstanceCopies`,
//! `engine:ValuesCopied`, `engine:Evaluations` and `engine:StepEdges` (apart
//! from the API counts of `BERTH_API_STATS`, which tools sum as calls).

use std::sync::atomic::{AtomicU64, Ordering};

static INSTANCE_COPIES: AtomicU64 = AtomicU64::new(0);
static EVALUATIONS: AtomicU64 = AtomicU64::new(0);
static STEP_EDGES: AtomicU64 = AtomicU64::new(0);
static VALUES_COPIED: AtomicU64 = AtomicU64::new(0);

/// `n` instance values were copied into an expression.
pub fn instances_copied(n: usize) {
    INSTANCE_COPIES.fetch_add(n as u64, Ordering::Relaxed);
}

/// One memoized value was evaluated.
pub fn evaluated() {
    EVALUATIONS.fetch_add(1, Ordering::Relaxed);
}

/// A value of `size` elements was copied out of the walk's scope (a
/// memoized local or output, or part of one, or part of an instance).
pub fn values_copied(size: usize) {
    VALUES_COPIED.fetch_add(size as u64, Ordering::Relaxed);
}

/// One edge was added to a step graph.
pub fn step_edge() {
    STEP_EDGES.fetch_add(1, Ordering::Relaxed);
}

/// The counts so far, keyed as the API counts are.
pub fn snapshot() -> [(&'static str, u64); 4] {
    [
        ("engine:ValuesCopied", VALUES_COPIED.load(Ordering::Relaxed)),
        ("engine:InstanceCopies", INSTANCE_COPIES.load(Ordering::Relaxed)),
        ("engine:Evaluations", EVALUATIONS.load(Ordering::Relaxed)),
        ("engine:StepEdges", STEP_EDGES.load(Ordering::Relaxed)),
    ]
}

/// Writes the counts as JSON to `$BERTH_WORK_STATS` when it is set.
pub fn write_if_requested() {
    if let Ok(path) = std::env::var("BERTH_WORK_STATS") {
        let counts: std::collections::BTreeMap<&str, u64> = snapshot().into_iter().collect();
        let _ = std::fs::write(path, serde_json::to_string_pretty(&counts).unwrap_or_default());
    }
}
