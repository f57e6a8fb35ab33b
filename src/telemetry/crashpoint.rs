//! Test hook: a reproducible `kill -9` at a chosen moment of a run.
//!
//! The crash suite (`tests/crash_kill9.rs`) needs to kill berth at the
//! nastiest moments and to kill it at the same moment again when a seed is
//! replayed; a timer alone gives neither. Two environment variables, read
//! once, make the process send itself a real `SIGKILL` (no unwinding, no
//! destructors, no flush: what a crash or the OOM killer does):
//!
//! - `BERTH_TEST_KILL_AFTER_CALLS=N`: right after the N-th AWS API request
//!   (retries count) has been transmitted and its response has arrived, but
//!   before berth has read it. The call took effect; berth never learns of it.
//!   `BERTH_TEST_KILL_AFTER_CALLS=ec2:RunInstances:N` counts only the calls
//!   of that operation (spelled as in `BERTH_API_STATS`).
//! - `BERTH_TEST_KILL_AFTER_WRITES=N`: right after the N-th durable state
//!   write of the local backend: a journal append once it is fsynced, or a
//!   new state file once it is renamed into place (before the journal it
//!   folds in is removed). `journal:N` and `state:N` count one kind only.
//!
//! Calls run in parallel, so which operation is the N-th can vary between
//! runs; the hook names it on stderr (`berth: test hook: SIGKILL after ...`)
//! just before the kill. Unset (the normal case), a hook costs one atomic
//! load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const KILL_AFTER_CALLS: &str = "BERTH_TEST_KILL_AFTER_CALLS";
pub const KILL_AFTER_WRITES: &str = "BERTH_TEST_KILL_AFTER_WRITES";

/// Where to die: after the `nth` hit, of `only` this kind when set.
struct Target {
    nth: u64,
    only: Option<String>,
}

struct Counter {
    env: &'static str,
    target: OnceLock<Option<Target>>,
    seen: AtomicU64,
}

impl Counter {
    const fn new(env: &'static str) -> Counter {
        Counter { env, target: OnceLock::new(), seen: AtomicU64::new(0) }
    }

    fn hit(&self, what: &dyn Fn() -> String) {
        let Some(target) = self.target.get_or_init(|| parse(&std::env::var(self.env).ok()?)) else {
            return;
        };
        if let Some(only) = &target.only {
            let w = what();
            // The kind is what comes before any ` (details)`.
            if w.split(" (").next() != Some(only.as_str()) {
                return;
            }
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == target.nth {
            kill_self(&format!("{} {n}: {}", self.env, what()));
        }
    }
}

/// `N`, or `KIND:N` where KIND may itself hold `:` (`ec2:RunInstances:3`).
fn parse(spec: &str) -> Option<Target> {
    let spec = spec.trim();
    match spec.rsplit_once(':') {
        Some((only, n)) => Some(Target { nth: n.parse().ok()?, only: Some(only.to_string()) }),
        None => Some(Target { nth: spec.parse().ok()?, only: None }),
    }
}

static CALLS: Counter = Counter::new(KILL_AFTER_CALLS);
static WRITES: Counter = Counter::new(KILL_AFTER_WRITES);

/// An AWS API request was transmitted and its response is about to be read.
pub fn after_api_call(what: &dyn Fn() -> String) {
    CALLS.hit(what);
}

/// A state write became durable. `what` starts with its kind, `journal` or
/// `state`, then details in parentheses.
pub fn after_state_write(what: &dyn Fn() -> String) {
    WRITES.hit(what);
}

fn kill_self(point: &str) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "berth: test hook: SIGKILL after {point}");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    // SIGKILL cannot be caught; nothing may run on meanwhile.
    loop {
        std::thread::park();
    }
}
