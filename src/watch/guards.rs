//! The guards of a healer, as pure decisions over the settings, the ledger
//! and the time: a heal runs only when none of them says no. A healer must
//! never make things worse, so every doubt is a skip with a reason.
//!
//! In order: quarantine (three failed heals within the hour: a human must
//! look), pause (by command or by the cloud tag), deny window, and for a
//! heal that replaces a host, the replacement budget. The grace period and
//! `unhealthy_after` decide earlier whether an impaired host is drift at
//! all ([`impaired_is_drift`]); the short-circuit is about a whole cycle
//! ([`short_circuit`]).

use super::clock::{minus, plus};
use super::config::WatchSettings;
use super::event::SkipReason;
use super::ledger::{Ledger, Outcome};
use chrono::{DateTime, Utc};

/// Replacements begun within the budget's window (failed ones count: they
/// may have launched a host too).
pub fn replacements_in_window(ledger: &Ledger, settings: &WatchSettings, now: DateTime<Utc>) -> u32 {
    let from = minus(now, settings.replacement_window);
    ledger.heals.iter().filter(|h| h.replaces && h.at > from).count() as u32
}

/// Failed heals of `address` within the quarantine window.
pub fn failures_within(ledger: &Ledger, settings: &WatchSettings, address: &str, now: DateTime<Utc>) -> u32 {
    let from = minus(now, settings.quarantine_window);
    ledger.heals.iter().filter(|h| h.address == address && h.outcome == Outcome::Failed && h.at > from).count() as u32
}

/// Whether a host that failed its status checks `cycles` times in a row,
/// first seen at `first_seen`, counts as impaired drift now.
pub fn impaired_is_drift(settings: &WatchSettings, cycles: u32, first_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    cycles >= settings.unhealthy_after && now >= plus(first_seen, settings.grace)
}

/// Whether more hosts look dead at once than `max_unhealthy`: an outage or
/// a broken read, not a dead host.
pub fn short_circuit(settings: &WatchSettings, dead: usize) -> bool {
    dead > settings.max_unhealthy
}

/// What one object's heal meets: `Ok` to heal, or why not.
pub struct Check<'a> {
    pub settings: &'a WatchSettings,
    pub ledger: &'a Ledger,
    pub now: DateTime<Utc>,
    pub address: &'a str,
    /// The cloud's own pause mark (`berth:watch=paused`) on the object.
    pub tagged_paused: bool,
    /// The heal replaces a host.
    pub replaces: bool,
    /// Replacements this cycle has already decided on.
    pub replacing: u32,
}

impl Check<'_> {
    pub fn verdict(&self) -> Result<(), (SkipReason, String)> {
        if let Some(q) = self.ledger.quarantined.get(self.address) {
            return Err((
                SkipReason::Quarantined,
                format!("quarantined since {} after {} failed heals; run `berth watch release {}`", super::clock::stamp(q.since), q.failures, self.address),
            ));
        }
        if let Some(p) = self.ledger.pause_of(self.address, self.now) {
            return Err((SkipReason::Paused, Ledger::describe_pause(p)));
        }
        if self.tagged_paused {
            return Err((SkipReason::Paused, "paused by its tag `berth:watch=paused`".into()));
        }
        if let Some(w) = self.settings.deny.iter().find(|w| w.contains(self.now)) {
            return Err((
                SkipReason::Window,
                format!("inside the deny window `{}` (for {}, {})", w.pattern, humantime::format_duration(w.duration), w.time_zone),
            ));
        }
        if self.replaces {
            let used = replacements_in_window(self.ledger, self.settings, self.now) + self.replacing;
            if used >= self.settings.max_replacements {
                return Err((
                    SkipReason::Budget,
                    format!(
                        "the replacement budget is used up: {used} of {} per {}",
                        self.settings.max_replacements,
                        humantime::format_duration(self.settings.replacement_window)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::ledger::{HealRecord, Pause, Quarantine};
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn heal(addr: &str, at: &str, outcome: Outcome) -> HealRecord {
        HealRecord {
            heal_id: at.into(),
            address: addr.into(),
            class: "instance_missing".into(),
            at: t(at),
            replaces: true,
            outcome,
            error: None,
        }
    }

    fn check<'a>(s: &'a WatchSettings, l: &'a Ledger, now: &str) -> Check<'a> {
        Check { settings: s, ledger: l, now: t(now), address: "aws_instance.a", tagged_paused: false, replaces: true, replacing: 0 }
    }

    #[test]
    fn the_budget_counts_replacements_inside_its_window() {
        let s = WatchSettings::default(); // 1 per 60m
        let mut l = Ledger::default();
        assert!(check(&s, &l, "2026-12-02T10:00:00Z").verdict().is_ok());
        l.heals.push(heal("aws_instance.b", "2026-12-02T09:30:00Z", Outcome::Succeeded));
        let (why, msg) = check(&s, &l, "2026-12-02T10:00:00Z").verdict().unwrap_err();
        assert_eq!(why, SkipReason::Budget);
        assert!(msg.contains("1 of 1 per 1h"), "{msg}");
        // A record's UPSERT replaces nothing and is not counted.
        assert!(Check { replaces: false, ..check(&s, &l, "2026-12-02T10:00:00Z") }.verdict().is_ok());
        // The window slides.
        assert!(check(&s, &l, "2026-12-02T10:30:01Z").verdict().is_ok());
        // What this cycle already decided counts too.
        let l = Ledger::default();
        assert_eq!(Check { replacing: 1, ..check(&s, &l, "2026-12-02T10:00:00Z") }.verdict().unwrap_err().0, SkipReason::Budget);
    }

    #[test]
    fn grace_and_consecutive_cycles_gate_impaired_hosts() {
        let s = WatchSettings::default(); // 3 cycles, 15m
        let born = t("2026-12-02T10:00:00Z");
        assert!(!impaired_is_drift(&s, 2, born, t("2026-12-02T11:00:00Z")));
        assert!(!impaired_is_drift(&s, 3, born, t("2026-12-02T10:14:59Z")));
        assert!(impaired_is_drift(&s, 3, born, t("2026-12-02T10:15:00Z")));
    }

    #[test]
    fn quarantine_then_pause_then_window_in_that_order() {
        let mut s = WatchSettings::default();
        let mut l = Ledger::default();
        l.quarantined.insert("aws_instance.a".into(), Quarantine { since: t("2026-12-02T09:00:00Z"), failures: 3, last_error: "x".into() });
        l.pauses.push(Pause {
            address: None,
            until: t("2026-12-02T12:00:00Z"),
            reason: "maintenance".into(),
            by: "ops".into(),
            at: t("2026-12-02T09:00:00Z"),
            announced: t("2026-12-02T09:00:00Z"),
        });
        let (why, msg) = check(&s, &l, "2026-12-02T10:00:00Z").verdict().unwrap_err();
        assert_eq!(why, SkipReason::Quarantined);
        assert!(msg.contains("berth watch release aws_instance.a"), "{msg}");
        l.quarantined.clear();
        let (why, msg) = check(&s, &l, "2026-12-02T10:00:00Z").verdict().unwrap_err();
        assert_eq!(why, SkipReason::Paused);
        assert!(msg.contains("maintenance"), "{msg}");
        l.pauses.clear();
        assert_eq!(Check { tagged_paused: true, ..check(&s, &l, "2026-12-02T10:00:00Z") }.verdict().unwrap_err().0, SkipReason::Paused);
        let block = r#"watch {
  deny_window {
    cron = "0 10 * * *"
    duration = "1h"
  }
}
variable "x" { default = 1 }"#;
        let config = crate::config::load_str("main.hcl", block).unwrap();
        s.deny = WatchSettings::from_block(config.root().watch.as_ref()).unwrap().deny;
        assert_eq!(check(&s, &l, "2026-12-02T10:30:00Z").verdict().unwrap_err().0, SkipReason::Window);
        assert!(check(&s, &l, "2026-12-02T11:00:00Z").verdict().is_ok());
    }

    #[test]
    fn failures_count_within_the_hour_only() {
        let s = WatchSettings::default();
        let mut l = Ledger::default();
        l.heals.push(heal("aws_instance.a", "2026-12-02T08:00:00Z", Outcome::Failed));
        l.heals.push(heal("aws_instance.a", "2026-12-02T09:30:00Z", Outcome::Failed));
        l.heals.push(heal("aws_instance.a", "2026-12-02T09:40:00Z", Outcome::Succeeded));
        l.heals.push(heal("aws_instance.b", "2026-12-02T09:45:00Z", Outcome::Failed));
        assert_eq!(failures_within(&l, &s, "aws_instance.a", t("2026-12-02T10:00:00Z")), 1);
        let _ = Duration::ZERO;
    }

    #[test]
    fn more_dead_hosts_than_allowed_short_circuit() {
        let s = WatchSettings::default();
        assert!(!short_circuit(&s, 1));
        assert!(short_circuit(&s, 2));
    }
}
