//! The watcher's Prometheus metrics: a [`Sink`] that counts events and
//! records each cycle's summary in a `prometheus-client` registry, which
//! [`super::server`] serves at `/metrics` in the text format. It also keeps
//! when the last cycle ended and whether one ever succeeded, for
//! `/healthz` and `/readyz`.
//!
//! Every metric is named `berth_watch_*`; labels are the fixed names of
//! [`DriftClass`], [`SkipReason`] and the event's action, so no label takes
//! an unbounded set of values (no addresses, no ids).

use super::event::{CycleSummary, DriftClass, EventKind, Sink, SkipReason, WatchEvent};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

type Labels = Vec<(&'static str, String)>;

/// The registry and the metrics in it.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    drifted: Family<Labels, Gauge>,
    heals: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    paused: Gauge,
    quarantined: Gauge,
    throttled: Counter,
    consecutive_errors: Gauge,
    started: Instant,
    last_cycle: Mutex<Option<Instant>>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconciles = Family::<Labels, Counter>::default();
        // From 0.25 s to about 17 min: a cycle is a refresh and a plan, and
        // a heal waits for a new host's health check.
        let duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.25, 2.0, 13));
        let last_success = Gauge::<f64, AtomicU64>::default();
        let drifted = Family::<Labels, Gauge>::default();
        let heals = Family::<Labels, Counter>::default();
        let skipped = Family::<Labels, Counter>::default();
        let events = Family::<Labels, Counter>::default();
        let (paused, quarantined, consecutive_errors) = (Gauge::default(), Gauge::default(), Gauge::default());
        let throttled = Counter::default();
        // Counters are shown with `_total` appended.
        registry.register("berth_watch_reconciles", "Reconcile cycles run, by result (ok, error)", reconciles.clone());
        registry.register("berth_watch_reconcile_duration_seconds", "How long reconcile cycles took", duration.clone());
        registry.register(
            "berth_watch_last_success_timestamp_seconds",
            "When the last successful cycle ended (Unix time)",
            last_success.clone(),
        );
        registry.register("berth_watch_drifted_resources", "Objects with open drift after the last cycle, by class", drifted.clone());
        registry.register("berth_watch_heals", "Heals finished, by drift class, action and result", heals.clone());
        registry.register("berth_watch_heals_skipped", "Heals that were due but did not run, by reason", skipped.clone());
        registry.register("berth_watch_events", "Events reported, by kind", events.clone());
        registry.register("berth_watch_paused_resources", "Objects paused (not healed)", paused.clone());
        registry.register("berth_watch_quarantined_resources", "Objects quarantined after failed heals", quarantined.clone());
        registry.register("berth_watch_provider_throttled", "Provider calls answered \"throttled\"", throttled.clone());
        registry.register("berth_watch_consecutive_errors", "Cycles in a row that failed", consecutive_errors.clone());
        // Every class and reason shows from the start, at zero: a query for
        // one that never happened finds a series rather than nothing.
        for c in DriftClass::ALL {
            drifted.get_or_create(&vec![("class", c.as_str().to_string())]).set(0);
        }
        for r in SkipReason::ALL {
            let _ = skipped.get_or_create(&vec![("reason", r.as_str().to_string())]);
        }
        for k in EventKind::ALL {
            let _ = events.get_or_create(&vec![("event", k.as_str().to_string())]);
        }
        for result in ["ok", "error"] {
            let _ = reconciles.get_or_create(&vec![("result", result.to_string())]);
        }
        Metrics {
            registry,
            reconciles,
            duration,
            last_success,
            drifted,
            heals,
            skipped,
            events,
            paused,
            quarantined,
            throttled,
            consecutive_errors,
            started: Instant::now(),
            last_cycle: Mutex::new(None),
            ready: AtomicBool::new(false),
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// When the last cycle ended, or when the metrics were made if no
    /// cycle has yet: a new watcher has its first intervals to run one.
    pub fn last_cycle_or_start(&self) -> Instant {
        self.last_cycle.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(self.started)
    }

    /// Whether a cycle ever succeeded.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

impl Sink for Metrics {
    fn event(&self, ev: &WatchEvent) {
        self.events.get_or_create(&vec![("event", ev.event.as_str().to_string())]).inc();
        let class = ev.class.map(|c| c.as_str()).unwrap_or("none").to_string();
        let action = ev.action.clone().unwrap_or_else(|| "none".into());
        match ev.event {
            EventKind::HealSucceeded | EventKind::HealFailed => {
                let result = if ev.event == EventKind::HealSucceeded { "succeeded" } else { "failed" };
                self.heals
                    .get_or_create(&vec![("class", class), ("action", action), ("result", result.to_string())])
                    .inc();
            }
            EventKind::HealSkipped => {
                let reason = ev.reason.map(|r| r.as_str()).unwrap_or("unknown").to_string();
                self.skipped.get_or_create(&vec![("reason", reason)]).inc();
            }
            _ => {}
        }
    }

    fn cycle(&self, s: &CycleSummary) {
        let result = if s.ok { "ok" } else { "error" };
        self.reconciles.get_or_create(&vec![("result", result.to_string())]).inc();
        self.duration.observe(s.duration.as_secs_f64());
        for c in DriftClass::ALL {
            let n: usize = s.drifted.iter().filter(|(k, _)| *k == c).map(|(_, n)| n).sum();
            self.drifted.get_or_create(&vec![("class", c.as_str().to_string())]).set(n as i64);
        }
        self.paused.set(s.paused as i64);
        self.quarantined.set(s.quarantined as i64);
        self.throttled.inc_by(s.throttled);
        self.consecutive_errors.set(i64::from(s.consecutive_errors));
        if s.ok {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.last_success.set(now.as_secs_f64());
            self.ready.store(true, Ordering::SeqCst);
        }
        *self.last_cycle.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::Severity;
    use std::time::Duration;

    /// The value of the sample line `name{labels}` (labels as encoded).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
    }

    #[test]
    fn events_and_cycles_are_counted() {
        let m = Metrics::new();
        let text = m.encode();
        assert_eq!(sample(&text, r#"berth_watch_heals_skipped_total{reason="budget"}"#), Some(0.0), "{text}");
        let mut ev = WatchEvent::new(EventKind::HealSucceeded, Severity::Info, "replaced");
        ev.class = Some(DriftClass::InstanceMissing);
        ev.action = Some("replace".into());
        m.event(&ev);
        m.event(&ev);
        let mut skip = WatchEvent::new(EventKind::HealSkipped, Severity::Warning, "budget");
        skip.reason = Some(SkipReason::Budget);
        m.event(&skip);
        m.cycle(&CycleSummary {
            ok: true,
            duration: Duration::from_millis(1500),
            drifted: vec![(DriftClass::DnsRecord, 2)],
            paused: 1,
            quarantined: 3,
            throttled: 4,
            consecutive_errors: 0,
        });
        assert!(m.ready());
        let text = m.encode();
        let want = [
            (r#"berth_watch_heals_total{class="instance_missing",action="replace",result="succeeded"}"#, 2.0),
            (r#"berth_watch_heals_skipped_total{reason="budget"}"#, 1.0),
            (r#"berth_watch_reconciles_total{result="ok"}"#, 1.0),
            (r#"berth_watch_drifted_resources{class="dns_record"}"#, 2.0),
            (r#"berth_watch_drifted_resources{class="instance_missing"}"#, 0.0),
            ("berth_watch_paused_resources", 1.0),
            ("berth_watch_quarantined_resources", 3.0),
            ("berth_watch_provider_throttled_total", 4.0),
            ("berth_watch_reconcile_duration_seconds_count", 1.0),
        ];
        for (series, value) in want {
            assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
        }
        assert!(sample(&text, "berth_watch_last_success_timestamp_seconds").is_some_and(|t| t > 1.6e9), "{text}");
    }

    #[test]
    fn a_failed_cycle_does_not_make_it_ready() {
        let m = Metrics::new();
        m.cycle(&CycleSummary { ok: false, consecutive_errors: 2, ..CycleSummary::default() });
        assert!(!m.ready());
        let text = m.encode();
        assert_eq!(sample(&text, "berth_watch_consecutive_errors"), Some(2.0), "{text}");
        assert_eq!(sample(&text, r#"berth_watch_reconciles_total{result="error"}"#), Some(1.0), "{text}");
    }
}
