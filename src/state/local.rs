//! The local state backend: one JSON file per workspace in a folder.
//!
//! `<dir>/<ws>.json` holds the state, `<ws>.json.backup` the version before
//! it, `<ws>.journal` the results of a running (or interrupted) apply, one
//! JSON line each, and `<ws>.lock` the `flock` that keeps two runs apart.
//! Every file is created with mode 0600: states hold secrets.
//!
//! A state write never leaves a moment without a complete state file: the
//! new version goes to a temporary file that is fsynced and renamed over the
//! old one, after the old one was hard-linked aside as the backup. The
//! journal is removed only once the new state is durable, so a crash at any
//! point leaves either the old state with its journal (replayed on the next
//! load) or the new state (beside which the journal is stale).
//!
//! File work here is blocking: it is a handful of small local writes per
//! step of an apply, cheaper than a hop to a blocking thread.

use super::journal::{self, JournalEntry};
use super::lock::{HeldFile, Holder, LockInfo};
use super::{Backend, State, StateError, check_workspace_name, valid_workspace};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LOCK_POLL: Duration = Duration::from_millis(200);

pub struct LocalBackend {
    dir: PathBuf,
    workspace: String,
    /// Kept open across appends so each group costs one write and one fsync.
    journal: Mutex<Option<File>>,
    lock: Mutex<Option<(HeldFile, LockInfo)>>,
    /// The last load found a journal (see [`Backend::found_journal`]).
    found_journal: AtomicBool,
}

impl LocalBackend {
    /// `dir` holds one state per workspace (by default `<workdir>/state`).
    pub fn new(dir: PathBuf, workspace: &str) -> LocalBackend {
        LocalBackend {
            dir,
            workspace: workspace.to_string(),
            journal: Mutex::new(None),
            lock: Mutex::new(None),
            found_journal: AtomicBool::new(false),
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.file("json")
    }

    pub fn backup_path(&self) -> PathBuf {
        self.file("json.backup")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.file("journal")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.file("lock")
    }

    fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.workspace))
    }

    /// Workspace names become file names, so they must not reach outside
    /// `dir` or collide with the temporary files.
    fn check_workspace(&self) -> Result<(), StateError> {
        check_workspace_name(&self.workspace)
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|source| StateError::Write { path: self.dir.display().to_string(), source })
    }

    fn sync_dir(&self) -> Result<(), StateError> {
        let wr = |source| StateError::Write { path: self.dir.display().to_string(), source };
        File::open(&self.dir).map_err(wr)?.sync_all().map_err(wr)
    }

    fn write_sync(&self, state: &State) -> Result<(), StateError> {
        self.check_workspace()?;
        self.ensure_dir()?;
        let state_path = self.state_path();
        let tmp = self.dir.join(format!(".{}.json.tmp-{}", self.workspace, uuid::Uuid::new_v4()));
        let result = (|| {
            let wr = |p: &Path| {
                let p = p.display().to_string();
                move |source| StateError::Write { path: p, source }
            };
            let mut f = create_private(&tmp).map_err(wr(&tmp))?;
            f.write_all(state.to_json().as_bytes()).map_err(wr(&tmp))?;
            f.sync_all().map_err(wr(&tmp))?;
            drop(f);
            self.keep_backup()?;
            std::fs::rename(&tmp, &state_path).map_err(wr(&state_path))?;
            self.sync_dir()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        crate::telemetry::api_stats::record("local", "WriteState");
        crate::telemetry::crashpoint::after_state_write(&|| format!("state (`{}` written, its journal not yet removed)", state_path.display()));
        // Only now is the journal folded into a durable state.
        self.journal.lock().unwrap_or_else(|p| p.into_inner()).take();
        match std::fs::remove_file(self.journal_path()) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Write { path: self.journal_path().display().to_string(), source }),
        }
    }

    /// Points `.backup` at the current state without ever unlinking the
    /// state itself: a second name for the same file, renamed into place.
    fn keep_backup(&self) -> Result<(), StateError> {
        let state_path = self.state_path();
        let backup = self.backup_path();
        let tmp = self.dir.join(format!(".{}.json.backup.tmp-{}", self.workspace, uuid::Uuid::new_v4()));
        let wr = |p: &Path| {
            let p = p.display().to_string();
            move |source| StateError::Write { path: p, source }
        };
        match std::fs::hard_link(&state_path, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            // Some filesystems have no hard links; a copy does as well, at
            // the price of reading the state once more.
            Err(_) => {
                let copy = (|| {
                    let mut out = create_private(&tmp)?;
                    std::io::copy(&mut File::open(&state_path)?, &mut out)?;
                    out.sync_all()
                })();
                if let Err(e) = copy {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(wr(&backup)(e));
                }
            }
        }
        // A state written by an older tool may be world-readable; the
        // backup (and the outgoing state it shares a file with) must not be.
        let result = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, &backup))
            .map_err(wr(&backup));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn append_sync(&self, entries: &[JournalEntry], sync: bool) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_workspace()?;
        let path = self.journal_path();
        let shown = path.display().to_string();
        let wr = |source| StateError::Write { path: shown.clone(), source };
        let mut slot = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let mut skip = 0;
        let mut prefix: Vec<u8> = Vec::new();
        if let Some((lineage, serial)) = entries[0].begin_of() {
            // A new run: continue the journal of an interrupted run on the
            // same base state, or start over from a stale one.
            *slot = None;
            self.ensure_dir()?;
            let existing = read_journal(&path, |l, s| l == lineage && s == serial)?;
            let f = open_journal(&path).map_err(wr)?;
            match existing {
                Existing::Usable(j) if j.begin.is_some() => {
                    f.set_len(j.valid_len).map_err(wr)?;
                    if j.needs_newline {
                        prefix.push(b'\n');
                    }
                    skip = 1;
                }
                Existing::Stale(l, s) => {
                    tracing::warn!(journal = %shown, lineage = %l, serial = s, "discarding a stale journal");
                    f.set_len(0).map_err(wr)?;
                }
                Existing::Usable(_) => f.set_len(0).map_err(wr)?,
                // A new file's name must be durable too, not just its data.
                Existing::Missing => self.sync_dir()?,
            }
            *slot = Some(f);
        } else if slot.is_none() {
            // Appending to a journal this process has not opened (a retry
            // after a failed write): trim a torn tail first.
            match read_journal(&path, |_, _| true)? {
                Existing::Usable(j) if j.begin.is_some() => {
                    let f = open_journal(&path).map_err(wr)?;
                    f.set_len(j.valid_len).map_err(wr)?;
                    if j.needs_newline {
                        prefix.push(b'\n');
                    }
                    *slot = Some(f);
                }
                _ => {
                    return Err(StateError::Other(format!(
                        "journal `{shown}` has no `begin` entry; the first append of a run must start with one"
                    )));
                }
            }
        }
        prefix.extend(journal::encode(&entries[skip..]));
        let f = slot.as_mut().expect("journal opened above");
        let result = f.write_all(&prefix).and_then(|()| if sync { f.sync_data() } else { Ok(()) });
        if let Err(e) = result {
            // The file may now end in a partial line; reopening trims it.
            *slot = None;
            return Err(wr(e));
        }
        crate::telemetry::api_stats::record("local", "AppendJournal");
        crate::telemetry::crashpoint::after_state_write(&|| format!("journal (append of {} entries)", entries.len()));
        Ok(())
    }

    fn load_sync(&self) -> Result<Option<State>, StateError> {
        self.check_workspace()?;
        self.found_journal.store(false, Ordering::Relaxed);
        let path = self.state_path();
        let shown = path.display().to_string();
        let state = match std::fs::read_to_string(&path) {
            Ok(text) => Some(State::from_json(&shown, &text)?),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(StateError::Corrupt { path: shown, reason: "the file is not UTF-8".into() });
            }
            Err(source) => return Err(StateError::Read { path: shown, source }),
        };
        let wanted = |l: &str, s: u64| match &state {
            Some(st) => st.lineage == l && st.serial == s,
            // The first apply died before its first state write.
            None => s == 0,
        };
        let existing = read_journal(&self.journal_path(), wanted)?;
        self.found_journal.store(!matches!(existing, Existing::Missing), Ordering::Relaxed);
        let j = match existing {
            Existing::Missing => return Ok(state),
            Existing::Stale(lineage, serial) => {
                tracing::warn!(
                    journal = %self.journal_path().display(),
                    lineage = %lineage,
                    serial,
                    "ignoring a stale journal that does not match the state"
                );
                return Ok(state);
            }
            Existing::Usable(j) => j,
        };
        let Some((lineage, _)) = j.begin.clone() else {
            return Ok(state);
        };
        let mut base = state.unwrap_or_else(|| State { lineage, serial: 0, ..State::new() });
        if j.torn {
            tracing::warn!(journal = %self.journal_path().display(), "ignoring a torn last journal line");
        }
        for e in j.entries {
            base.apply_entry(e);
        }
        Ok(Some(base))
    }

    fn workspaces_sync(&self) -> Result<Vec<String>, StateError> {
        let mut names = vec!["default".to_string()];
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(names),
            Err(source) => return Err(StateError::Read { path: self.dir.display().to_string(), source }),
        };
        for entry in rd {
            let entry = entry.map_err(|source| StateError::Read { path: self.dir.display().to_string(), source })?;
            let name = entry.file_name();
            if let Some(ws) = name.to_str().and_then(|n| n.strip_suffix(".json"))
                && valid_workspace(ws)
            {
                names.push(ws.to_string());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

fn open_journal(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o600).open(path)
}

/// A journal on disk, as far as the caller cares.
enum Existing {
    Missing,
    /// Its `Begin` names another base state; its other lines are not read.
    Stale(String, u64),
    /// A journal for the wanted base state, or one with no `Begin` at all.
    Usable(journal::ParsedJournal),
}

fn read_journal(path: &Path, wanted: impl Fn(&str, u64) -> bool) -> Result<Existing, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(source) => return Err(StateError::Read { path: path.display().to_string(), source }),
    };
    if let Some((lineage, serial)) = journal::peek_begin(&bytes)
        && !wanted(&lineage, serial)
    {
        return Ok(Existing::Stale(lineage, serial));
    }
    journal::parse(&path.display().to_string(), &bytes).map(Existing::Usable)
}

#[async_trait::async_trait]
impl Backend for LocalBackend {
    fn describe(&self) -> String {
        self.state_path().display().to_string()
    }

    async fn lock(&self, operation: &str, timeout: Duration) -> Result<LockInfo, StateError> {
        self.check_workspace()?;
        if let Some((_, info)) = &*self.lock.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(StateError::Locked(format!(
                "state `{}` is already locked by this process (lock id `{}`)",
                self.describe(),
                info.id
            )));
        }
        self.ensure_dir()?;
        let path = self.lock_path();
        let start = Instant::now();
        loop {
            if let Some(mut held) = HeldFile::try_acquire(&path)? {
                let info = LockInfo::new(operation);
                if let Err(e) = held.write_info(&path, &info) {
                    let _ = held.release(&path);
                    return Err(e);
                }
                *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = Some((held, info.clone()));
                return Ok(info);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(match super::lock::read_holder(&path).await? {
                    Holder::Info(info) => info.locked_error(&self.describe()),
                    Holder::Unknown(why) => StateError::Locked(format!(
                        "state `{}` is locked through `{}`, which names no holder ({why}); \
                         another program holds it. Wait with --lock-timeout",
                        self.describe(),
                        path.display()
                    )),
                    Holder::Gone => StateError::Locked(format!(
                        "state `{}` was locked until just now; try again",
                        self.describe()
                    )),
                });
            }
            tokio::time::sleep(LOCK_POLL.min(timeout - elapsed)).await;
        }
    }

    async fn unlock(&self, lock: &LockInfo) -> Result<(), StateError> {
        let mut slot = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some((held, info)) if info.id == lock.id => held.release(&self.lock_path()),
            other => {
                let held = other.as_ref().map(|(_, i)| format!(" (it holds `{}`)", i.id)).unwrap_or_default();
                *slot = other;
                Err(StateError::Other(format!("lock `{}` is not held by this process{held}", lock.id)))
            }
        }
    }

    async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        self.check_workspace()?;
        {
            let mut slot = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(&*slot, Some((_, info)) if info.id == id) {
                let (held, _) = slot.take().expect("matched above");
                return held.release(&self.lock_path());
            }
        }
        let path = self.lock_path();
        let no_lock = || StateError::Other(format!("no lock held on state `{}`", self.describe()));
        if !path.exists() {
            return Err(no_lock());
        }
        if let Some(free) = HeldFile::try_acquire(&path)? {
            // Left behind by a holder that died: the kernel already freed
            // the lock; tidy the file away.
            free.release(&path)?;
            return Err(no_lock());
        }
        match super::lock::read_holder(&path).await? {
            Holder::Info(info) if info.id == id => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StateError::Write { path: path.display().to_string(), source }),
            },
            Holder::Info(info) => Err(StateError::Other(format!(
                "lock id `{id}` does not match the lock on state `{}`, whose id is `{}` ({}@{}, pid {})",
                self.describe(),
                info.id,
                info.who,
                info.host,
                info.pid
            ))),
            Holder::Unknown(why) => Err(StateError::Other(format!(
                "the lock on state `{}` names no holder ({why}); it is held by another program",
                self.describe()
            ))),
            Holder::Gone => Err(no_lock()),
        }
    }

    async fn lock_holder(&self) -> Result<Option<LockInfo>, StateError> {
        self.check_workspace()?;
        if let Some((_, info)) = &*self.lock.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(Some(info.clone()));
        }
        let path = self.lock_path();
        if !path.exists() {
            return Ok(None);
        }
        if let Some(free) = HeldFile::try_acquire(&path)? {
            free.release(&path)?;
            return Ok(None);
        }
        match super::lock::read_holder(&path).await? {
            Holder::Info(info) => Ok(Some(info)),
            Holder::Gone => Ok(None),
            Holder::Unknown(why) => Err(StateError::Locked(format!(
                "state `{}` is locked through `{}`, which names no holder ({why}); another program holds it",
                self.describe(),
                path.display()
            ))),
        }
    }

    async fn load(&self) -> Result<Option<State>, StateError> {
        self.load_sync()
    }

    fn found_journal(&self) -> bool {
        self.found_journal.load(Ordering::Relaxed)
    }

    async fn write(&self, state: &State) -> Result<(), StateError> {
        self.write_sync(state)
    }

    async fn append(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        self.append_sync(entries, true)
    }

    async fn append_local(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        // Written to the kernel, which keeps it if berth is killed; the next
        // synced append or the state write forces it to disk.
        self.append_sync(entries, false)
    }

    async fn workspaces(&self) -> Result<Vec<String>, StateError> {
        self.workspaces_sync()
    }

    async fn read_beside(&self, name: &str) -> Result<Option<(String, String)>, StateError> {
        self.check_workspace()?;
        let path = self.file(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let version = beside_version(&text);
                Ok(Some((text, version)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read { path: path.display().to_string(), source }),
        }
    }

    async fn write_beside(&self, name: &str, text: &str, version: Option<&str>) -> Result<bool, StateError> {
        self.check_workspace()?;
        self.ensure_dir()?;
        let path = self.file(name);
        let lock_path = self.file(&format!("{name}.lock"));
        // A short exclusive section around compare-and-write; writers hold
        // it for one small write, so a short wait always ends.
        let held = loop {
            if let Some(h) = HeldFile::try_acquire(&lock_path)? {
                break h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let result = (|| {
            let current = match std::fs::read_to_string(&path) {
                Ok(t) => Some(beside_version(&t)),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(source) => return Err(StateError::Read { path: path.display().to_string(), source }),
            };
            if current.as_deref() != version {
                return Ok(false);
            }
            let wr = |source| StateError::Write { path: path.display().to_string(), source };
            let tmp = self.dir.join(format!(".{}.{name}.tmp-{}", self.workspace, uuid::Uuid::new_v4()));
            let written = (|| {
                let mut f = create_private(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written.map_err(wr)?;
            self.sync_dir()?;
            Ok(true)
        })();
        held.release(&lock_path)?;
        result
    }
}

/// The version of a document kept beside the state: a digest of its text.
fn beside_version(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
