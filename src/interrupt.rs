//! SIGINT and SIGTERM: the one place berth listens for signals.
//!
//! A run can be stopped two ways. Softly: a [`CancellationToken`] fires, and
//! the engine lets the operations in flight finish, records them and starts
//! nothing new; the engine sees only the token and never a signal, so a
//! library caller (a `watch` loop, a test) cancels it the same way. At once:
//! the binary frees the state locks the run holds and exits, because a lock
//! in S3 outlives its holder and nothing else would free it.
//!
//! Which one a signal means: a first SIGINT during a [`Graceful`] stretch
//! (the apply walk) fires the token; any other SIGINT, a second one, or a
//! SIGTERM (what CI runners send when they give up waiting) stops at once.
//! Locks are freed through each backend's [`Releaser`], registered by the
//! command before it takes a lock ([`Interrupt::watch_locks`]), so a run on
//! the local backend (whose `flock` dies with the process) has nothing to free.

use crate::state::{Backend, Released, Releaser};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Which signal stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Interrupted,
    Terminated,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::Interrupted => "Interrupted",
            Stop::Terminated => "Terminated",
        })
    }
}

impl Stop {
    /// The conventional exit code: 128 + the signal's number.
    pub fn exit_code(self) -> i32 {
        match self {
            Stop::Interrupted => 130,
            Stop::Terminated => 143,
        }
    }
}

#[derive(Default)]
struct Shared {
    soft: CancellationToken,
    graceful: AtomicUsize,
    releasers: Mutex<Vec<Arc<dyn Releaser>>>,
}

/// The commands' handle on interruption: the soft token, graceful stretches,
/// and the locks to free on a hard stop. Cheap to clone.
#[derive(Clone, Default)]
pub struct Interrupt {
    shared: Arc<Shared>,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM (inside a tokio runtime).
    /// From then on these signals no longer end the process by themselves:
    /// the caller must wait on the returned [`Stopper`] beside the work.
    pub fn install() -> std::io::Result<(Interrupt, Stopper)> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = Interrupt::default();
        let stopper = Stopper {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            shared: interrupt.shared.clone(),
        };
        Ok((interrupt, stopper))
    }

    /// The soft stop: fires on a first SIGINT during a [`Graceful`] stretch.
    pub fn token(&self) -> CancellationToken {
        self.shared.soft.clone()
    }

    /// Marks a stretch that answers a first SIGINT through the token, until
    /// the returned guard is dropped.
    pub fn graceful(&self) -> Graceful {
        self.shared.graceful.fetch_add(1, Ordering::SeqCst);
        Graceful { shared: self.shared.clone() }
    }

    /// Has `backend`'s locks freed on a hard stop. Call it before taking a
    /// lock: a run stopped while its lock request is in flight may hold the
    /// lock without knowing it.
    pub fn watch_locks(&self, backend: &dyn Backend) {
        if let Some(r) = backend.releaser() {
            self.releasers().push(r);
        }
    }

    fn releasers(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Releaser>>> {
        self.shared.releasers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// See [`Interrupt::graceful`].
pub struct Graceful {
    shared: Arc<Shared>,
}

impl Graceful {
    /// The token the stretch's work watches.
    pub fn token(&self) -> CancellationToken {
        self.shared.soft.clone()
    }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        self.shared.graceful.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The binary's side: waits for the signal that stops the run at once, then
/// frees the registered locks.
pub struct Stopper {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    shared: Arc<Shared>,
}

impl Stopper {
    /// Resolves when the run must stop now. A first SIGINT during a graceful
    /// stretch fires the soft token instead.
    pub async fn wait(&mut self) -> Stop {
        let mut deferred = false;
        loop {
            tokio::select! {
                _ = self.term.recv() => return Stop::Terminated,
                _ = self.int.recv() => {
                    if deferred || self.shared.graceful.load(Ordering::SeqCst) == 0 {
                        return Stop::Interrupted;
                    }
                    deferred = true;
                    self.shared.soft.cancel();
                }
            }
        }
    }

    /// Frees every registered backend's locks (each refuses further writes
    /// first): the locks freed, and those that could not be, with why.
    pub async fn release_locks(&self) -> Released {
        let releasers: Vec<Arc<dyn Releaser>> =
            std::mem::take(&mut *self.shared.releasers.lock().unwrap_or_else(|p| p.into_inner()));
        let mut all = Released::default();
        for r in releasers {
            let one = r.release().await;
            all.freed.extend(one.freed);
            all.failed.extend(one.failed);
        }
        all
    }
}
