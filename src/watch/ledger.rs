//! The watcher's memory across cycles and restarts: open drift and when it
//! was last announced, the status-check counters, when each host was first
//! seen, the heals made (the budget and the quarantine count them), pauses,
//! quarantines and open alerts.
//!
//! It is one JSON document kept beside the state through the backend
//! ([`Backend::read_beside`]), so it lives wherever the state does (a local
//! folder, S3) and every watcher of a state shares it. It takes no state
//! lock: writes are conditional on the version read, and a writer that
//! lost the race reads again and redoes its change ([`update`]). The
//! commands `berth watch pause`, `resume` and `release` write it the same way.

use super::clock::stamp;
use crate::state::{Backend, StateError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The document's name beside the state (`state/default.watch`).
pub const NAME: &str = "watch";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub version: u32,
    /// Open drift, by resource instance address.
    #[serde(default)]
    pub open: BTreeMap<String, OpenDrift>,
    /// Cycles in a row each host (by cloud id) failed its status checks.
    #[serde(default)]
    pub impaired: BTreeMap<String, u32>,
    /// When the watcher first saw each host (by cloud id): the grace
    /// period after a host's creation counts from here.
    #[serde(default)]
    pub first_seen: BTreeMap<String, DateTime<Utc>>,
    /// Heals, oldest first; those older than a day are dropped.
    #[serde(default)]
    pub heals: Vec<HealRecord>,
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// Quarantined addresses: no heal until `berth watch release`.
    #[serde(default)]
    pub quarantined: BTreeMap<String, Quarantine>,
    /// Open alerts not about one object (`short_circuit`, `watch_error`,
    /// `partial_read`, `lock`), with when they were last announced.
    #[serde(default)]
    pub alerts: BTreeMap<String, DateTime<Utc>>,
    /// Failed cycles in a row.
    #[serde(default)]
    pub errors: u32,
    /// The quarantined addresses as read, so a merge tells a release
    /// (gone from the fresh ledger) from a quarantine this cycle added.
    #[serde(skip)]
    pub read_quarantined: std::collections::BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenDrift {
    /// The drift class's name (`instance_missing`).
    pub class: String,
    pub since: DateTime<Utc>,
    /// When it was last announced (found, or reminded).
    pub notified: DateTime<Utc>,
    /// The last reason its heal was skipped for, and when that was announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<(String, DateTime<Utc>)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Begun and not (yet) finished: a watcher killed mid-heal leaves it so.
    Started,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealRecord {
    pub heal_id: String,
    pub address: String,
    pub class: String,
    pub at: DateTime<Utc>,
    /// The heal replaces a host: it counts against `max_replacements`.
    pub replaces: bool,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// `None`: everything.
    pub address: Option<String>,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
    /// When it was last announced.
    pub announced: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    pub since: DateTime<Utc>,
    pub failures: u32,
    pub last_error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the watch ledger beside `{state}` is not valid: {reason}")]
    Corrupt { state: String, reason: String },
    #[error("the watch ledger beside `{state}` kept changing under this write; try again")]
    Contended { state: String },
}

impl From<LedgerError> for crate::diag::Diagnostics {
    fn from(e: LedgerError) -> Self {
        crate::diag::Diagnostic::error(e.to_string()).into()
    }
}

impl Ledger {
    /// The active pause covering `address` at `now`, if any.
    pub fn pause_of(&self, address: &str, now: DateTime<Utc>) -> Option<&Pause> {
        self.pauses.iter().find(|p| p.until > now && p.address.as_deref().is_none_or(|a| a == address))
    }

    /// Drops what no longer matters: expired pauses, heals older than a day.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.pauses.retain(|p| p.until > now);
        let day_ago = now - chrono::TimeDelta::days(1);
        self.heals.retain(|h| h.at > day_ago);
    }

    /// Lays the changes humans make (pauses, releases) and other watchers'
    /// heals from `fresh` over this cycle's ledger, after a lost write race.
    pub fn merge_from(&mut self, fresh: &Ledger) {
        self.pauses = fresh.pauses.clone();
        let read = std::mem::take(&mut self.read_quarantined);
        self.quarantined.retain(|k, _| !read.contains(k) || fresh.quarantined.contains_key(k));
        for (k, q) in &fresh.quarantined {
            self.quarantined.entry(k.clone()).or_insert_with(|| q.clone());
        }
        self.read_quarantined = fresh.quarantined.keys().cloned().collect();
        for h in &fresh.heals {
            match self.heals.iter_mut().find(|m| m.heal_id == h.heal_id && m.address == h.address) {
                Some(m) if m.outcome == Outcome::Started => *m = h.clone(),
                Some(_) => {}
                None => self.heals.push(h.clone()),
            }
        }
        self.heals.sort_by_key(|h| h.at);
    }

    pub fn describe_pause(p: &Pause) -> String {
        let what = p.address.as_deref().map(|a| format!("`{a}`")).unwrap_or_else(|| "everything".into());
        format!("{what} paused until {} by {}: {}", stamp(p.until), p.by, p.reason)
    }
}

/// Reads the ledger and its version (an empty ledger and `None` when there
/// is none yet).
pub async fn load(backend: &dyn Backend) -> Result<(Ledger, Option<String>), LedgerError> {
    match backend.read_beside(NAME).await? {
        None => Ok((Ledger { version: VERSION, ..Ledger::default() }, None)),
        Some((text, version)) => {
            let mut ledger: Ledger = serde_json::from_str(&text)
                .map_err(|e| LedgerError::Corrupt { state: backend.describe(), reason: e.to_string() })?;
            ledger.read_quarantined = ledger.quarantined.keys().cloned().collect();
            if ledger.version > VERSION {
                return Err(LedgerError::Corrupt {
                    state: backend.describe(),
                    reason: format!("it has version {}; this berth reads version {VERSION}", ledger.version),
                });
            }
            Ok((ledger, Some(version)))
        }
    }
}

fn to_text(l: &Ledger) -> String {
    let mut s = serde_json::to_string_pretty(l).expect("the ledger serializes");
    s.push('\n');
    s
}

/// Writes `ledger` if the stored one is still at `version`; `false` if not.
pub async fn save(backend: &dyn Backend, ledger: &Ledger, version: Option<&str>) -> Result<bool, LedgerError> {
    let mut l = ledger.clone();
    l.version = VERSION;
    Ok(backend.write_beside(NAME, &to_text(&l), version).await?)
}

/// Saves a cycle's ledger; after a lost race, merges the fresh one in
/// ([`Ledger::merge_from`]) and tries again.
pub async fn save_merging(backend: &dyn Backend, ledger: &mut Ledger, mut version: Option<String>) -> Result<Option<String>, LedgerError> {
    for _ in 0..8 {
        if save(backend, ledger, version.as_deref()).await? {
            return Ok(backend.read_beside(NAME).await?.map(|(_, v)| v));
        }
        let (fresh, v) = load(backend).await?;
        ledger.merge_from(&fresh);
        version = v;
    }
    Err(LedgerError::Contended { state: backend.describe() })
}

/// Reads, changes with `f` and writes the ledger, again from a fresh read
/// whenever another writer got there first. Returns what `f` returned.
pub async fn update<T>(backend: &dyn Backend, mut f: impl FnMut(&mut Ledger) -> T) -> Result<T, LedgerError> {
    for _ in 0..8 {
        let (mut ledger, version) = load(backend).await?;
        let out = f(&mut ledger);
        if save(backend, &ledger, version.as_deref()).await? {
            return Ok(out);
        }
    }
    Err(LedgerError::Contended { state: backend.describe() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::local::LocalBackend;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[tokio::test]
    async fn a_lost_race_redoes_the_change_on_the_fresh_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("state"), "default");
        let (first, v0) = load(&b).await.unwrap();
        assert!(v0.is_none() && first.open.is_empty());
        let pause = |a: &str| Pause {
            address: Some(a.into()),
            until: t("2026-12-02T12:00:00Z"),
            reason: "r".into(),
            by: "me".into(),
            at: t("2026-12-02T10:00:00Z"),
            announced: t("2026-12-02T10:00:00Z"),
        };
        update(&b, |l| l.pauses.push(pause("aws_instance.a"))).await.unwrap();
        // A writer holding the old version loses, and its stale write is refused.
        assert!(!save(&b, &first, None).await.unwrap());
        let (_, v1) = load(&b).await.unwrap();
        update(&b, |l| l.pauses.push(pause("aws_instance.b"))).await.unwrap();
        let mut cycle = Ledger { errors: 2, ..Ledger::default() };
        save_merging(&b, &mut cycle, v1).await.unwrap();
        let (now, _) = load(&b).await.unwrap();
        assert_eq!(now.errors, 2);
        assert_eq!(now.pauses.len(), 2, "both pauses kept: {:?}", now.pauses);
    }

    #[test]
    fn a_merge_keeps_new_quarantines_and_honours_releases() {
        let q = || Quarantine { since: t("2026-12-02T10:00:00Z"), failures: 3, last_error: "x".into() };
        let mut mine = Ledger::default();
        mine.quarantined.insert("aws_instance.old".into(), q());
        mine.read_quarantined.insert("aws_instance.old".into());
        // This cycle quarantines another; meanwhile a human released the old one.
        mine.quarantined.insert("aws_instance.new".into(), q());
        let fresh = Ledger::default();
        mine.merge_from(&fresh);
        assert_eq!(mine.quarantined.keys().collect::<Vec<_>>(), ["aws_instance.new"]);
    }

    #[test]
    fn pauses_cover_their_address_or_everything_until_they_end() {
        let mut l = Ledger::default();
        let p = |a: Option<&str>, until| Pause {
            address: a.map(str::to_string),
            until: t(until),
            reason: String::new(),
            by: String::new(),
            at: t("2026-12-02T00:00:00Z"),
            announced: t("2026-12-02T00:00:00Z"),
        };
        l.pauses.push(p(Some("aws_instance.a"), "2026-12-02T02:00:00Z"));
        let now = t("2026-12-02T01:00:00Z");
        assert!(l.pause_of("aws_instance.a", now).is_some());
        assert!(l.pause_of("aws_instance.b", now).is_none());
        assert!(l.pause_of("aws_instance.a", t("2026-12-02T02:00:00Z")).is_none(), "ended");
        l.pauses.push(p(None, "2026-12-02T03:00:00Z"));
        assert!(l.pause_of("aws_instance.b", now).is_some());
        l.prune(t("2026-12-02T02:30:00Z"));
        assert_eq!(l.pauses.len(), 1);
    }

    #[tokio::test]
    async fn a_corrupt_ledger_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("state"), "default");
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(dir.path().join("state/default.watch"), "{ not json").unwrap();
        let e = load(&b).await.unwrap_err().to_string();
        assert!(e.contains("not valid"), "{e}");
    }
}
