//! The S3 locks this process holds, for freeing them when the run is
//! stopped at once.
//!
//! A lock in S3 outlives its holder, so a run stopped by a signal must free
//! it before it exits, with requests of its own (not ones tied to the
//! abandoned command: opentofu#3661 and #3669 are that bug). A lock is
//! registered before its PUT is sent, since a run stopped while that PUT is
//! in flight may own the lock without knowing it. [`stop`] refuses further
//! writes and frees them; the binary calls it through
//! [`Backend::releaser`](crate::state::Backend::releaser) (see
//! `crate::interrupt`), and nothing here listens for signals.

use aws_sdk_s3::Client;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// A lock this process holds (or may hold: its PUT was sent).
pub struct HeldLock {
    pub client: Client,
    pub bucket: String,
    pub key: String,
    pub id: String,
    pub etag: Option<String>,
}

static HELD: Mutex<Vec<HeldLock>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<HeldLock>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn register(lock: HeldLock) {
    held().push(lock);
}

pub(super) fn set_etag(id: &str, etag: Option<String>) {
    if let Some(l) = held().iter_mut().find(|l| l.id == id) {
        l.etag = etag;
    }
}

pub(super) fn forget(id: &str) {
    held().retain(|l| l.id != id);
}

/// The ids of the S3 locks this process holds.
pub fn held_ids() -> Vec<String> {
    held().iter().map(|l| l.id.clone()).collect()
}

/// Stops the run's writes and frees every S3 lock it still holds. The
/// command itself cannot be cancelled from here (it may be blocked, or
/// not `Send`), so its writes are refused from now on: nothing new
/// starts after a lock is gone. Returns the locks freed (as
/// `s3://bucket/key`) and those that could not be, with why.
pub async fn stop() -> (Vec<String>, Vec<String>) {
    super::objects::STOPPING.store(true, Ordering::SeqCst);
    release_held_locks().await
}

async fn release_held_locks() -> (Vec<String>, Vec<String>) {
    let locks: Vec<HeldLock> = std::mem::take(&mut *held());
    let mut freed = Vec::new();
    let mut failed = Vec::new();
    for l in locks {
        let uri = format!("s3://{}/{}", l.bucket, l.key);
        match release_one(&l).await {
            Ok(true) => freed.push(uri),
            Ok(false) => {}
            Err(e) => failed.push(format!("`{uri}` (lock id `{}`): {e}", l.id)),
        }
    }
    (freed, failed)
}

async fn release_one(l: &HeldLock) -> Result<bool, String> {
    let etag = match &l.etag {
        Some(e) => e.clone(),
        None => {
            // The PUT may or may not have landed: it is ours only if it
            // carries our id.
            let out = match l.client.get_object().bucket(&l.bucket).key(&l.key).send().await {
                Ok(out) => out,
                Err(e) if super::objects::is_missing_key(&e) => return Ok(false),
                Err(e) => return Err(super::objects::explain(&e)),
            };
            let etag = out.e_tag().map(str::to_string);
            let bytes = out.body.collect().await.map_err(|e| e.to_string())?.into_bytes();
            let ours = serde_json::from_slice::<crate::state::lock::LockInfo>(&bytes).is_ok_and(|i| i.id == l.id);
            match (ours, etag) {
                (true, Some(e)) => e,
                _ => return Ok(false),
            }
        }
    };
    match l.client.delete_object().bucket(&l.bucket).key(&l.key).if_match(etag).send().await {
        Ok(_) => Ok(true),
        Err(e) if super::objects::status(&e) == Some(412) || super::objects::is_missing_key(&e) => Ok(false),
        Err(e) => Err(super::objects::explain(&e)),
    }
}
