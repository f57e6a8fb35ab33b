//! The write-ahead journal of the S3 backend. S3 has no append, so each
//! append is one object `K.journal/<serial>/<seq>.json`, created with
//! `If-None-Match: *`; every object starts with the run's `Begin` entry, so
//! each names the state it applies to. `load` lists and replays them in
//! order, and a state write deletes them (they are folded into it).
//!
//! A run continues the journal of an interrupted run on the same base state
//! (same lineage and serial) and discards any other as stale.

use super::S3Backend;
use super::objects::{Cond, PutError};
use crate::state::journal::{self, JournalEntry};
use crate::state::{State, StateError};
use std::collections::BTreeSet;

/// The journal this process writes: the base state it applies to and the
/// next object's sequence number.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) lineage: String,
    pub(super) serial: u64,
    pub(super) next: u64,
}

impl S3Backend {
    /// Journal objects as `(serial, seq, key)`, in replay order.
    pub(super) async fn journal_objects(&self) -> Result<Vec<(u64, u64, String)>, StateError> {
        let prefix = self.journal_prefix();
        let mut out: Vec<(u64, u64, String)> = self
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| {
                let rest = k.strip_prefix(&prefix)?;
                let (serial, seq) = rest.strip_suffix(".json")?.split_once('/')?;
                Some((serial.parse().ok()?, seq.parse().ok()?, k))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub(super) fn journal_key(&self, serial: u64, seq: u64) -> String {
        format!("{}{serial:010}/{seq:08}.json", self.journal_prefix())
    }

    /// The `Begin` of a journal object.
    pub(super) async fn journal_begin(&self, key: &str) -> Result<Option<(String, u64)>, StateError> {
        Ok(self.get(key).await?.and_then(|(bytes, _)| journal::peek_begin(&bytes)))
    }

    /// Starts (or continues) the journal of a run on `(lineage, serial)`:
    /// objects of an interrupted run on the same base state are kept and
    /// continued; any other journal is stale and removed.
    pub(super) async fn start_run(&self, lineage: &str, serial: u64) -> Result<(), StateError> {
        let objects = self.journal_objects().await?;
        let mut next = 0;
        let mut stale = Vec::new();
        let mut kept = Vec::new();
        // Every run deletes the stale journals before it writes, so the
        // objects of one serial share one lineage: one read tells.
        let same_serial = objects.iter().find(|(s, _, _)| *s == serial);
        let same_lineage = match same_serial {
            Some((_, _, key)) => self.journal_begin(key).await?.is_some_and(|(l, _)| l == lineage),
            None => false,
        };
        for (s, seq, key) in objects {
            if s == serial && same_lineage {
                next = next.max(seq + 1);
                kept.push(key);
            } else {
                stale.push(key);
            }
        }
        if !stale.is_empty() {
            tracing::warn!(journal = %self.uri(&self.journal_prefix()), objects = stale.len(), "discarding a stale journal");
            self.delete_many(stale).await?;
        }
        let mut seen = self.seen();
        seen.journal_keys.extend(kept);
        seen.run = Some(Run { lineage: lineage.to_string(), serial, next });
        Ok(())
    }

    /// Continues the newest journal, for an append without `Begin` from a
    /// process that has not started one.
    pub(super) async fn resume_run(&self) -> Result<(), StateError> {
        let objects = self.journal_objects().await?;
        let Some((serial, _, key)) = objects.last().cloned() else {
            return Err(StateError::Other(format!(
                "journal `{}` has no `begin` entry; the first append of a run must start with one",
                self.uri(&self.journal_prefix())
            )));
        };
        let Some((lineage, _)) = self.journal_begin(&key).await? else {
            return Err(StateError::Corrupt {
                path: self.uri(&key),
                reason: "it does not start with a `begin` entry".into(),
            });
        };
        self.start_run(&lineage, serial).await
    }

    /// Replays the journal objects of `state` (read with `etag`) onto it:
    /// those whose `Begin` names the state's lineage and serial, or, with no
    /// state yet, serial 0 (the first apply died before its first state
    /// write). Objects of any other run are stale and ignored. Remembers the
    /// objects a state write folds in.
    pub(super) async fn replay(&self, state: Option<State>, etag: Option<String>) -> Result<Option<State>, StateError> {
        let objects = self.journal_objects().await?;
        let keys: Vec<String> = objects.iter().map(|(_, _, k)| k.clone()).collect();
        let bodies = self.get_all(&keys).await;
        let wanted = |l: &str, s: u64| match &state {
            Some(st) => st.lineage == l && st.serial == s,
            // The first apply died before its first state write.
            None => s == 0,
        };
        let mut lineage: Option<String> = None;
        let mut entries = Vec::new();
        let mut keys = BTreeSet::new();
        let mut stale = 0usize;
        for ((serial, _, key), body) in objects.iter().zip(bodies) {
            // Deleted since the listing: a writer folded it meanwhile.
            let Some((bytes, _)) = body? else { continue };
            keys.insert(key.clone());
            let j = journal::parse(&self.uri(key), &bytes)?;
            match j.begin {
                Some((l, s)) if s == *serial && wanted(&l, s) && lineage.as_ref().is_none_or(|b| *b == l) => {
                    lineage = Some(l);
                    entries.extend(j.entries);
                }
                _ => stale += 1,
            }
        }
        if stale > 0 {
            tracing::warn!(journal = %self.uri(&self.journal_prefix()), objects = stale, "ignoring a stale journal that does not match the state");
        }
        {
            let mut seen = self.seen();
            seen.etag = etag;
            seen.found_journal = !keys.is_empty();
            seen.journal_keys = keys;
        }
        let Some(lineage) = lineage else { return Ok(state) };
        let mut base = state.unwrap_or_else(|| State { lineage, serial: 0, ..State::new() });
        for e in entries {
            base.apply_entry(e);
        }
        Ok(Some(base))
    }

    pub(super) async fn append_entries(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_workspace()?;
        let rest = match entries[0].begin_of() {
            Some((lineage, serial)) => {
                self.start_run(lineage, serial).await?;
                &entries[1..]
            }
            None => {
                if self.seen().run.is_none() {
                    self.resume_run().await?;
                }
                entries
            }
        };
        if rest.is_empty() {
            return Ok(());
        }
        let (lineage, serial, seq) = {
            let seen = self.seen();
            let run = seen.run.as_ref().expect("a run was started above");
            (run.lineage.clone(), run.serial, run.next)
        };
        let key = self.journal_key(serial, seq);
        let mut body = journal::encode(&[JournalEntry::Begin { lineage, serial }]);
        body.extend(journal::encode(rest));
        match self.put(&key, &body, Cond::IfNoneMatch).await {
            Ok(_) => {}
            // An earlier attempt whose answer was lost may have landed.
            Err(PutError::Precondition) if self.get(&key).await?.is_some_and(|(b, _)| b == body) => {}
            Err(PutError::Precondition) => {
                return Err(StateError::Other(format!(
                    "journal object `{}` was written by another run: is a run using this state without its lock?",
                    self.uri(&key)
                )));
            }
            Err(PutError::Failed(e)) => return Err(e),
        }
        let mut seen = self.seen();
        seen.journal_keys.insert(key);
        if let Some(run) = seen.run.as_mut() {
            run.next = seq + 1;
        }
        Ok(())
    }

    /// After a state write: the journal's objects are folded into the state,
    /// so they go.
    pub(super) async fn fold_journal(&self) {
        let folded = {
            let mut seen = self.seen();
            seen.run = None;
            std::mem::take(&mut seen.journal_keys)
        };
        // The journal's objects are stale now that the state holds them (its
        // serial moved on), so a failure here only leaves litter behind.
        if let Err(e) = self.delete_many(folded).await {
            tracing::warn!(error = %e, "the folded journal was not removed; the next run discards it");
        }
    }
}
