//! State locks: who holds one, since when, for what.
//!
//! The local backend locks with `flock(2)` on `<workspace>.lock`. The kernel
//! drops a `flock` when its holder dies, so a `kill -9` never leaves a stale
//! lock behind; the [`LockInfo`] written into the file is only there to tell
//! a waiting user who is in the way. Unlocking removes the file before
//! releasing the lock, so whoever opened the old file must check, after
//! locking it, that the path still names that file (else it locked a
//! ghost and tries again).

use super::StateError;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    pub id: String,
    pub operation: String,
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339.
    pub created: String,
    /// CI job id (`CI_JOB_ID`, `GITHUB_RUN_ID`) when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
}

impl LockInfo {
    /// A fresh lock description for this process.
    pub fn new(operation: &str) -> LockInfo {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_string(),
            who: env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| "unknown".into()),
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "unknown".into()),
            pid: std::process::id(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ci_job: env("CI_JOB_ID").or_else(|| env("GITHUB_RUN_ID")),
        }
    }

    /// The "locked" error a waiter gets, naming the holder and the way out.
    pub fn locked_error(&self, state: &str) -> StateError {
        let age = chrono::DateTime::parse_from_rfc3339(&self.created)
            .map(|t| format!(", {}", ago(chrono::Utc::now().signed_duration_since(t))))
            .unwrap_or_default();
        let ci = self.ci_job.as_ref().map(|j| format!(", CI job `{j}`")).unwrap_or_default();
        StateError::Locked(format!(
            "state `{state}` is locked by {}@{} (pid {}, operation `{}`, since {}{age}{ci}, lock id `{}`); \
             wait with --lock-timeout or run `berth force-unlock {}`",
            self.who, self.host, self.pid, self.operation, self.created, self.id, self.id
        ))
    }
}

fn ago(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// An exclusive `flock` on a lock file, held until dropped.
#[derive(Debug)]
pub struct HeldFile {
    guard: Flock<File>,
}

impl HeldFile {
    /// One non-blocking try: `None` when someone else holds the lock.
    pub fn try_acquire(path: &Path) -> Result<Option<HeldFile>, StateError> {
        let io_err = |source| StateError::Write { path: path.display().to_string(), source };
        // Each retry means another process unlinked the file between our open
        // and our lock; that settles quickly, so a bound only guards against
        // a pathological loop.
        for _ in 0..100 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io_err)?;
            let guard = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(g) => g,
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => return Err(io_err(e.into())),
            };
            let held = HeldFile { guard };
            if held.is_current(path)? {
                return Ok(Some(held));
            }
        }
        Ok(None)
    }

    /// True while `path` still names the locked file.
    pub fn is_current(&self, path: &Path) -> Result<bool, StateError> {
        let mine = self.guard.metadata().map_err(|source| StateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        match std::fs::metadata(path) {
            Ok(m) => Ok(m.dev() == mine.dev() && m.ino() == mine.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StateError::Read { path: path.display().to_string(), source }),
        }
    }

    /// Replaces the file's contents with `info`.
    pub fn write_info(&mut self, path: &Path, info: &LockInfo) -> Result<(), StateError> {
        let io_err = |source| StateError::Write { path: path.display().to_string(), source };
        let text = serde_json::to_string_pretty(info).expect("lock info serializes");
        let f: &mut File = &mut self.guard;
        f.set_len(0).map_err(io_err)?;
        f.seek(SeekFrom::Start(0)).map_err(io_err)?;
        f.write_all(format!("{text}\n").as_bytes()).map_err(io_err)?;
        f.sync_data().map_err(io_err)
    }

    /// Removes the file (if it is still ours) and then releases the lock, in
    /// that order: a waiter that opened the file before the unlink sees the
    /// path now names another file, and retries.
    pub fn release(self, path: &Path) -> Result<(), StateError> {
        // A `force-unlock` may have removed our file and another process
        // made a new one; that one is not ours to remove.
        if self.is_current(path)? {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StateError::Write { path: path.display().to_string(), source }),
            }
        }
        drop(self);
        Ok(())
    }
}

/// What a held lock file says about its holder.
#[derive(Debug, PartialEq)]
pub enum Holder {
    Info(LockInfo),
    /// The file holds no readable [`LockInfo`]; the reason says why.
    Unknown(String),
    /// The file is gone: the holder let go meanwhile.
    Gone,
}

/// Reads the holder's [`LockInfo`] from a lock file someone holds.
///
/// The holder writes the info just after taking the lock, so an empty or
/// half-written file is retried for a moment before giving up; a holder
/// that never writes one is another program calling `flock` on the file.
pub async fn read_holder(path: &Path) -> Result<Holder, StateError> {
    let mut last = String::new();
    for attempt in 0..10 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut text = String::new();
        match File::open(path) {
            Ok(mut f) => f
                .read_to_string(&mut text)
                .map_err(|source| StateError::Read { path: path.display().to_string(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holder::Gone),
            Err(source) => return Err(StateError::Read { path: path.display().to_string(), source }),
        };
        match serde_json::from_str::<LockInfo>(&text) {
            Ok(info) => return Ok(Holder::Info(info)),
            Err(_) if text.trim().is_empty() => last = "the file is empty".into(),
            Err(e) => last = e.to_string(),
        }
    }
    Ok(Holder::Unknown(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_on_an_unlinked_file_is_not_current() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("default.lock");
        let ghost = HeldFile::try_acquire(&path).unwrap().expect("free lock");
        assert!(ghost.is_current(&path).unwrap());
        assert!(HeldFile::try_acquire(&path).unwrap().is_none(), "flock excludes a second open");

        std::fs::remove_file(&path).unwrap();
        assert!(!ghost.is_current(&path).unwrap());
        // A newcomer locks the new file while the ghost is still held…
        let fresh = HeldFile::try_acquire(&path).unwrap().expect("new file is free");
        assert!(!ghost.is_current(&path).unwrap());
        // …and the ghost's release leaves the newcomer's file alone.
        ghost.release(&path).unwrap();
        assert!(path.exists() && fresh.is_current(&path).unwrap());
        fresh.release(&path).unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn holder_info_round_trips_and_empty_files_name_no_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("default.lock");
        assert_eq!(read_holder(&path).await.unwrap(), Holder::Gone);

        let mut held = HeldFile::try_acquire(&path).unwrap().unwrap();
        assert!(matches!(read_holder(&path).await.unwrap(), Holder::Unknown(why) if why.contains("empty")));
        let info = LockInfo::new("apply");
        held.write_info(&path, &info).unwrap();
        // A shorter rewrite must not leave the old tail behind.
        let short = LockInfo { operation: "x".into(), ..info.clone() };
        held.write_info(&path, &short).unwrap();
        assert_eq!(read_holder(&path).await.unwrap(), Holder::Info(short));
    }

    #[test]
    fn locked_error_names_holder_age_and_way_out() {
        let created = (chrono::Utc::now() - chrono::TimeDelta::seconds(150))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let info = LockInfo {
            id: "ID".into(),
            operation: "apply".into(),
            who: "root".into(),
            host: "host".into(),
            pid: 123,
            created: created.clone(),
            ci_job: None,
        };
        assert_eq!(
            info.locked_error("state/default.json").to_string(),
            format!(
                "state `state/default.json` is locked by root@host (pid 123, operation `apply`, since {created}, \
                 2m ago, lock id `ID`); wait with --lock-timeout or run `berth force-unlock ID`"
            )
        );
    }

    #[test]
    fn new_info_describes_this_process() {
        let info = LockInfo::new("plan");
        assert_eq!(info.pid, std::process::id());
        assert!(chrono::DateTime::parse_from_rfc3339(&info.created).is_ok());
        assert_eq!(uuid::Uuid::parse_str(&info.id).unwrap().get_version_num(), 4);
        assert!(!info.host.is_empty() && info.host != "unknown");
    }
}
