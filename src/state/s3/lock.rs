//! The state lock of the S3 backend: an object `K.lock` created with
//! `If-None-Match: *`, so exactly one creator wins, holding a [`LockInfo`]
//! that names the holder.
//!
//! Unlike a `flock`, nothing frees it when its holder dies: `berth
//! force-unlock` does (a delete conditioned on the ETag read, so a lock taken
//! meanwhile by another run is left alone), and a run stopped by a signal
//! frees its own through [`held_locks`], where every lock is registered
//! before its PUT is sent.

use super::S3Backend;
use super::held_locks;
use super::objects::{Cond, Deleted, Put, PutError};
use crate::state::lock::LockInfo;
use crate::state::{Backend, StateError};
use std::time::{Duration, Instant};

/// How often a run waiting for the lock looks again.
const LOCK_POLL: Duration = Duration::from_secs(1);

/// The lock this backend holds, with the ETag its delete is conditioned on.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) info: LockInfo,
    pub(super) etag: Option<String>,
}

impl S3Backend {
    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the lock object: its holder (or why it names none) and ETag.
    pub(super) async fn read_lock(&self) -> Result<Option<(Result<LockInfo, String>, Option<String>)>, StateError> {
        let key = self.lock_key();
        Ok(self.get(&key).await?.map(|(bytes, etag)| {
            let info = serde_json::from_slice::<LockInfo>(&bytes).map_err(|e| {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    "the object is empty".to_string()
                } else {
                    e.to_string()
                }
            });
            (info, etag)
        }))
    }

    pub(super) fn unknown_holder(&self, why: &str) -> StateError {
        StateError::Locked(format!(
            "state `{}` is locked through `{}`, which names no holder ({why}); another program holds it",
            self.describe(),
            self.uri(&self.lock_key())
        ))
    }

    pub(super) async fn acquire(&self, operation: &str, timeout: Duration) -> Result<LockInfo, StateError> {
        self.check_workspace()?;
        if let Some(h) = &*self.held() {
            return Err(StateError::Locked(format!(
                "state `{}` is already locked by this process (lock id `{}`)",
                self.describe(),
                h.info.id
            )));
        }
        let client = self.client().await?.clone();
        let info = LockInfo::new(operation);
        let body = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        let key = self.lock_key();
        // Registered before the first PUT: a run stopped while that PUT is
        // in flight may own the lock without knowing it.
        held_locks::register(held_locks::HeldLock {
            client,
            bucket: self.settings.bucket.clone(),
            key: key.clone(),
            id: info.id.clone(),
            etag: None,
        });
        let start = Instant::now();
        let result = loop {
            match self.put(&key, &body, Cond::IfNoneMatch).await {
                Ok(Put { etag, .. }) => {
                    held_locks::set_etag(&info.id, etag.clone());
                    *self.held() = Some(Held { info: info.clone(), etag });
                    return Ok(info);
                }
                Err(PutError::Failed(e)) => break Err(e),
                Err(PutError::Precondition) => {}
            }
            let holder = self.read_lock().await;
            let elapsed = start.elapsed();
            match holder {
                Err(e) => break Err(e),
                // Our own lock: a PUT that landed but whose answer was lost, then
                // retried by the SDK into a 412. We hold it.
                Ok(Some((Ok(holder), etag))) if holder.id == info.id => {
                    held_locks::set_etag(&info.id, etag.clone());
                    *self.held() = Some(Held { info: info.clone(), etag });
                    return Ok(info);
                }
                // Released between our PUT and our read: try again soon.
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(Some(_)) if elapsed < timeout => tokio::time::sleep(LOCK_POLL.min(timeout - elapsed)).await,
                Ok(Some((Ok(holder), _))) => break Err(holder.locked_error(&self.describe())),
                Ok(Some((Err(why), _))) => break Err(self.unknown_holder(&why)),
            }
        };
        held_locks::forget(&info.id);
        result
    }

    pub(super) async fn release_lock(&self, lock: &LockInfo) -> Result<(), StateError> {
        let held = {
            let mut slot = self.held();
            match slot.take() {
                Some(h) if h.info.id == lock.id => h,
                other => {
                    let holds = other.as_ref().map(|h| format!(" (it holds `{}`)", h.info.id)).unwrap_or_default();
                    *slot = other;
                    return Err(StateError::Other(format!("lock `{}` is not held by this process{holds}", lock.id)));
                }
            }
        };
        let result = release(self, &held.info.id, held.etag.as_deref()).await;
        held_locks::forget(&held.info.id);
        result
    }

    pub(super) async fn remove_lock(&self, id: &str) -> Result<(), StateError> {
        self.check_workspace()?;
        let no_lock = || StateError::Other(format!("no lock held on state `{}`", self.describe()));
        let Some((holder, etag)) = self.read_lock().await? else {
            return Err(no_lock());
        };
        match holder {
            Ok(info) if info.id == id => {}
            Ok(info) => {
                return Err(StateError::Other(format!(
                    "lock id `{id}` does not match the lock on state `{}`, whose id is `{}` ({}@{}, pid {}, operation `{}`)",
                    self.describe(),
                    info.id,
                    info.who,
                    info.host,
                    info.pid,
                    info.operation
                )));
            }
            Err(why) => {
                return Err(StateError::Other(format!(
                    "the lock `{}` names no holder ({why}); remove the object by hand if no run holds it",
                    self.uri(&self.lock_key())
                )));
            }
        }
        match self.delete(&self.lock_key(), etag.as_deref()).await? {
            Deleted::Yes => {
                let mut slot = self.held();
                if slot.as_ref().is_some_and(|h| h.info.id == id) {
                    *slot = None;
                }
                held_locks::forget(id);
                Ok(())
            }
            Deleted::Changed => Err(StateError::Other(format!(
                "the lock on state `{}` changed while it was being removed; look again with `berth plan`",
                self.describe()
            ))),
        }
    }

    pub(super) async fn holder(&self) -> Result<Option<LockInfo>, StateError> {
        self.check_workspace()?;
        if let Some(h) = &*self.held() {
            return Ok(Some(h.info.clone()));
        }
        match self.read_lock().await? {
            None => Ok(None),
            Some((Ok(info), _)) => Ok(Some(info)),
            Some((Err(why), _)) => Err(self.unknown_holder(&why)),
        }
    }
}

/// Deletes the lock object if it is still the one this process created.
async fn release(b: &S3Backend, id: &str, etag: Option<&str>) -> Result<(), StateError> {
    let etag = match etag {
        Some(e) => e.to_string(),
        // A store that returned no ETag: check the holder by reading.
        None => match b.read_lock().await? {
            Some((Ok(info), Some(etag))) if info.id == id => etag,
            _ => {
                tracing::warn!(lock = id, "the state lock was removed by someone else before this run released it");
                return Ok(());
            }
        },
    };
    match b.delete(&b.lock_key(), Some(&etag)).await? {
        Deleted::Yes => Ok(()),
        Deleted::Changed => {
            tracing::warn!(lock = id, "the state lock was forced open and taken by another run; leaving it alone");
            Ok(())
        }
    }
}
