//! What a watcher reports: events (delivered by notifiers, counted by the
//! metrics) and one summary per cycle. The reconcile loop produces them;
//! the sinks ([`Sink`]) consume them and never block the loop.

use serde::Serialize;
use std::time::Duration;

/// The version of the JSON payload a webhook receives.
pub const PAYLOAD_VERSION: u32 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    DriftDetected,
    DriftResolved,
    HealStarted,
    HealSucceeded,
    HealFailed,
    HealSkipped,
    Quarantined,
    WatchError,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::DriftDetected,
        EventKind::DriftResolved,
        EventKind::HealStarted,
        EventKind::HealSucceeded,
        EventKind::HealFailed,
        EventKind::HealSkipped,
        EventKind::Quarantined,
        EventKind::WatchError,
    ];

    /// The name in payloads, metrics and `notify { events = [...] }`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::DriftDetected => "drift_detected",
            EventKind::DriftResolved => "drift_resolved",
            EventKind::HealStarted => "heal_started",
            EventKind::HealSucceeded => "heal_succeeded",
            EventKind::HealFailed => "heal_failed",
            EventKind::HealSkipped => "heal_skipped",
            EventKind::Quarantined => "quarantined",
            EventKind::WatchError => "watch_error",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// The kind of drift a cycle found on one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftClass {
    /// A record berth owns was changed or deleted outside berth.
    DnsRecord,
    /// An instance was terminated, or is gone.
    InstanceMissing,
    /// EC2 status checks failed for several consecutive cycles.
    InstanceImpaired,
    /// A scheduled retirement or system reboot.
    InstanceRetiring,
    /// Stopped outside berth.
    InstanceStopped,
    /// Any other attribute differs from the configuration.
    AttrDrift,
}

impl DriftClass {
    pub const ALL: [DriftClass; 6] = [
        DriftClass::DnsRecord,
        DriftClass::InstanceMissing,
        DriftClass::InstanceImpaired,
        DriftClass::InstanceRetiring,
        DriftClass::InstanceStopped,
        DriftClass::AttrDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftClass::DnsRecord => "dns_record",
            DriftClass::InstanceMissing => "instance_missing",
            DriftClass::InstanceImpaired => "instance_impaired",
            DriftClass::InstanceRetiring => "instance_retiring",
            DriftClass::InstanceStopped => "instance_stopped",
            DriftClass::AttrDrift => "attr_drift",
        }
    }
}

/// Why a heal that was due did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Paused by `berth watch pause` or the `berth:watch=paused` tag.
    Paused,
    /// Inside a deny window.
    Window,
    /// `max_replacements` used up in the current window.
    Budget,
    /// More objects looked dead at once than `max_unhealthy`.
    ShortCircuit,
    /// Someone else holds the state lock.
    Lock,
    /// `approve = "manual"`: a plan file was saved instead.
    Approval,
    /// Quarantined after repeated failed heals.
    Quarantined,
    /// `lifecycle { watch = "notify" }`, or a class that is never healed.
    NotifyOnly,
    /// The refresh failed or read less than it should: nothing is healed.
    PartialRead,
}

impl SkipReason {
    pub const ALL: [SkipReason; 9] = [
        SkipReason::Paused,
        SkipReason::Window,
        SkipReason::Budget,
        SkipReason::ShortCircuit,
        SkipReason::Lock,
        SkipReason::Approval,
        SkipReason::Quarantined,
        SkipReason::NotifyOnly,
        SkipReason::PartialRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Paused => "paused",
            SkipReason::Window => "window",
            SkipReason::Budget => "budget",
            SkipReason::ShortCircuit => "short_circuit",
            SkipReason::Lock => "lock",
            SkipReason::Approval => "approval",
            SkipReason::Quarantined => "quarantined",
            SkipReason::NotifyOnly => "notify_only",
            SkipReason::PartialRead => "partial_read",
        }
    }
}

/// One event, as a webhook receives it (the JSON payload is this struct,
/// with `version` = [`PAYLOAD_VERSION`]). Values marked sensitive never
/// reach `before`/`after`: the producer redacts them.
#[derive(Clone, Debug, Serialize)]
pub struct WatchEvent {
    pub version: u32,
    pub event: EventKind,
    pub severity: Severity,
    /// The resource instance address (`aws_instance.search`), when the
    /// event is about one object.
    pub address: Option<String>,
    /// The resource type (`aws_instance`).
    pub kind: Option<String>,
    pub class: Option<DriftClass>,
    /// The cloud id (`i-…`, a record's `ZONE_NAME_TYPE`).
    pub id: Option<String>,
    /// The object's private DNS name (`micro-search.internal`), where an
    /// owned record points at it.
    pub name: Option<String>,
    /// The Kamal role and destination an inventory lists the host under.
    pub role: Option<String>,
    pub destination: Option<String>,
    pub reason: Option<SkipReason>,
    pub message: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// What was (or would have been) done: `replace`, `upsert`, `none`.
    pub action: Option<String>,
    /// The same for every event of one heal.
    pub heal_id: Option<String>,
    pub attempt: Option<u32>,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// The exact command a human runs to undo, release or approve.
    pub command: Option<String>,
}

impl WatchEvent {
    /// An event with only its kind, severity and message set, stamped now.
    pub fn new(event: EventKind, severity: Severity, message: impl Into<String>) -> WatchEvent {
        WatchEvent {
            version: PAYLOAD_VERSION,
            event,
            severity,
            address: None,
            kind: None,
            class: None,
            id: None,
            name: None,
            role: None,
            destination: None,
            reason: None,
            message: message.into(),
            before: None,
            after: None,
            action: None,
            heal_id: None,
            attempt: None,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: None,
        }
    }
}

/// One reconcile cycle, for the metrics.
#[derive(Clone, Debug, Default)]
pub struct CycleSummary {
    pub ok: bool,
    pub duration: Duration,
    /// Open drift after the cycle, by class.
    pub drifted: Vec<(DriftClass, usize)>,
    pub paused: usize,
    pub quarantined: usize,
    /// Provider calls answered "throttled" during the cycle.
    pub throttled: u64,
    pub consecutive_errors: u32,
}

/// Where events and cycle summaries go: notifiers, the metrics registry, a
/// test's recorder. Implementations return at once (a slow webhook is
/// retried in the background, never inside the loop).
pub trait Sink: Send + Sync {
    fn event(&self, ev: &WatchEvent);
    fn cycle(&self, summary: &CycleSummary);
}
