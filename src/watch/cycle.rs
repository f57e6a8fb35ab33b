//! One reconcile cycle: refresh and plan through the engine (no lock), find
//! the drift ([`classify`]) and the hosts whose status checks fail or that
//! AWS will retire ([`Provider::health`](crate::providers::Provider::health)),
//! announce what changed since the last cycle, and in heal mode heal what
//! the guards allow, under the state lock, through the engine again
//! (`replace` and `targets`, then apply: create, health-gate, switch DNS,
//! rewrite inventories, destroy). Everything the watcher must remember goes
//! to the [ledger](super::ledger).
//!
//! Never heal on doubt: a refresh that failed or read only part of the
//! fleet stops the cycle before any heal; more dead hosts at once than
//! `max_unhealthy` heals nothing and alerts once; a lock held by someone
//! else skips the heal (it is never forced).

use super::classify::{self, Finding, INSTANCE};
use super::clock::{Clock, plus, stamp};
use super::config::{Approve, Mode, WatchSettings};
use super::event::{CycleSummary, DriftClass, EventKind, Severity, Sink, SkipReason, WatchEvent};
use super::guards::{self, Check};
use super::ledger::{self, HealRecord, Ledger, OpenDrift, Outcome, Quarantine};
use crate::addr::{InstanceAddr, InstanceKey, ResourceAddr, TargetAddr};
use crate::config::Config;
use crate::config::vars::VarSources;
use crate::engine::{self, ApplyOptions, PlanOptions, Progress};
use crate::providers::{Health, OpContext};
use crate::state::{Backend, StateError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Everything a cycle runs with. The caller loads the configuration; the
/// backend is the state's (a heal takes its lock).
pub struct Watcher<'a> {
    pub config: &'a Config,
    pub vars: &'a VarSources,
    pub backend: &'a dyn Backend,
    pub settings: &'a WatchSettings,
    /// The workspace, and providers made by the caller (tests), as for a plan.
    pub plan_opts: PlanOptions,
    pub clock: &'a dyn Clock,
    pub sinks: &'a [Arc<dyn Sink>],
    pub progress: &'a dyn Progress,
    pub cancel: CancellationToken,
    /// Decide and report, change nothing (no heal, no ledger write).
    pub dry_run: bool,
    /// Where `approve = "manual"` saves the plans it asks a human to apply.
    pub plan_dir: PathBuf,
    pub parallelism: usize,
}

/// What one cycle found and did.
#[derive(Debug, Default)]
pub struct CycleReport {
    pub ok: bool,
    /// The drift found this cycle.
    pub findings: Vec<Finding>,
    /// Addresses healed this cycle.
    pub healed: Vec<String>,
    /// Heals the guards allowed but a dry run did not carry out: address and action.
    pub would_heal: Vec<(String, &'static str)>,
    /// Every event emitted, in order.
    pub events: Vec<WatchEvent>,
    pub error: Option<String>,
    pub consecutive_errors: u32,
    /// Hosts carrying the cloud's pause tag (`berth:watch=paused`).
    pub tag_paused: usize,
}

impl CycleReport {
    pub fn drift_found(&self) -> bool {
        !self.findings.is_empty()
    }
}

/// The events and their sinks for one cycle.
struct Out<'a> {
    sinks: &'a [Arc<dyn Sink>],
    now: DateTime<Utc>,
    events: Mutex<Vec<WatchEvent>>,
}

impl Out<'_> {
    fn emit(&self, mut ev: WatchEvent) {
        ev.timestamp = stamp(self.now);
        for s in self.sinks {
            s.event(&ev);
        }
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(ev);
    }
}

fn about(kind: EventKind, severity: Severity, f: &Finding, message: impl Into<String>) -> WatchEvent {
    let mut ev = WatchEvent::new(kind, severity, message);
    ev.address = Some(f.addr.to_string());
    ev.kind = Some(f.addr.resource.type_.clone());
    ev.class = Some(f.class);
    ev.id = f.id.clone();
    ev.name = f.name.clone();
    ev.role = f.role.clone();
    ev.destination = f.destination.clone();
    ev.action = Some(f.action().to_string());
    ev
}

/// The role (and for Kamal, the destination: `production` of
/// `deploy.production.yml`) each host is listed under, by resource
/// instance address: the first inventory listing it wins.
fn roles(config: &Config, vars: &BTreeMap<String, crate::value::Value>, workspace: &str, state: &crate::state::State) -> HashMap<String, (String, Option<String>)> {
    use crate::engine::inventory::{Built, from_state};
    let mut out = HashMap::new();
    for built in from_state(config, vars.clone(), workspace, state) {
        let Ok(Built::Ready(inv)) = built else { continue };
        let destination = (inv.format == crate::inventory::Format::Kamal)
            .then(|| inv.path.file_name()?.to_str()?.strip_prefix("deploy.")?.rsplit_once('.').map(|(d, _)| d.to_string()))
            .flatten();
        let listed = inv.roles.iter().flat_map(|r| r.hosts.iter().map(move |h| (&h.resource, &r.name)));
        let accessories = inv.accessories.iter().map(|a| (&a.host.resource, &a.name));
        for (resource, role) in listed.chain(accessories) {
            out.entry(resource.clone()).or_insert_with(|| (role.clone(), destination.clone()));
        }
    }
    out
}

fn skip_event(f: &Finding, reason: SkipReason, message: &str) -> WatchEvent {
    let severity = match reason {
        SkipReason::Quarantined | SkipReason::ShortCircuit | SkipReason::PartialRead => Severity::Critical,
        _ => Severity::Warning,
    };
    let mut ev = about(EventKind::HealSkipped, severity, f, format!("not healing `{}`: {message}", f.addr));
    ev.reason = Some(reason);
    ev
}

fn drift_severity(class: DriftClass) -> Severity {
    match class {
        DriftClass::InstanceMissing | DriftClass::InstanceImpaired => Severity::Critical,
        _ => Severity::Warning,
    }
}

impl Watcher<'_> {
    /// Runs one cycle. Errors are reported as `watch_error` events and in
    /// the report, never returned: the loop goes on.
    pub async fn cycle(&self) -> CycleReport {
        let started = Instant::now();
        let throttled_before = crate::telemetry::api_stats::throttled();
        let now = self.clock.now();
        let out = Out { sinks: self.sinks, now, events: Mutex::new(Vec::new()) };
        let mut report = CycleReport::default();
        let (mut ledger, version) = match ledger::load(self.backend).await {
            Ok(l) => l,
            Err(e) => {
                out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, e.to_string()));
                report.error = Some(e.to_string());
                report.consecutive_errors = 1;
                let summary = CycleSummary { ok: false, duration: started.elapsed(), consecutive_errors: 1, ..CycleSummary::default() };
                for s in self.sinks {
                    s.cycle(&summary);
                }
                report.events = out.events.into_inner().unwrap_or_default();
                return report;
            }
        };
        ledger.prune(now);
        match self.run(&out, &mut ledger, &mut report).await {
            Ok(()) => {
                report.ok = true;
                ledger.errors = 0;
                if ledger.alerts.remove("watch_error").is_some() {
                    out.emit(WatchEvent::new(EventKind::DriftResolved, Severity::Info, "the watcher reads the fleet again"));
                }
            }
            Err(msg) => {
                ledger.errors += 1;
                let due = ledger.alerts.get("watch_error").is_none_or(|t| now >= plus(*t, self.settings.reminder));
                if due {
                    ledger.alerts.insert("watch_error".into(), now);
                    let mut ev = WatchEvent::new(EventKind::WatchError, Severity::Critical, msg.clone());
                    ev.attempt = Some(ledger.errors);
                    out.emit(ev);
                }
                report.error = Some(msg);
            }
        }
        report.consecutive_errors = ledger.errors;
        if !self.dry_run
            && let Err(e) = ledger::save_merging(self.backend, &mut ledger, version).await
        {
            out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, e.to_string()));
            report.ok = false;
            report.error.get_or_insert(e.to_string());
        }
        let mut drifted: BTreeMap<DriftClass, usize> = BTreeMap::new();
        for d in ledger.open.values() {
            if let Some(c) = super::config::parse_class(&d.class) {
                *drifted.entry(c).or_default() += 1;
            }
        }
        let summary = CycleSummary {
            ok: report.ok,
            duration: started.elapsed(),
            drifted: drifted.into_iter().collect(),
            paused: ledger.pauses.iter().filter(|p| p.until > now).count() + report.tag_paused,
            quarantined: ledger.quarantined.len(),
            throttled: crate::telemetry::api_stats::throttled().saturating_sub(throttled_before),
            consecutive_errors: ledger.errors,
        };
        for s in self.sinks {
            s.cycle(&summary);
        }
        report.events = out.events.into_inner().unwrap_or_default();
        report
    }

    async fn run(&self, out: &Out<'_>, ledger: &mut Ledger, report: &mut CycleReport) -> Result<(), String> {
        let now = out.now;
        let stored = self.backend.load().await.map_err(|e| e.to_string())?.unwrap_or_default();
        let opts = PlanOptions { refresh: true, ..self.plan_opts.clone() };
        let planned = engine::plan(self.config, self.vars, self.backend, &opts, self.progress)
            .await
            .map_err(|d| format!("the refresh and plan failed, so nothing is healed: {}", d.to_string().trim()))?;
        let mut findings = classify::classify(&stored, &planned.state, &planned.plan, self.config);

        // Status checks and scheduled events, one batched read per provider.
        let mut health: HashMap<InstanceAddr, Health> = HashMap::new();
        let mut health_error = None;
        let mut groups: BTreeMap<String, Vec<(OpContext, crate::value::Value)>> = BTreeMap::new();
        for r in planned.state.resources.values().filter(|r| r.deposed.is_none() && r.addr.resource.type_ == INSTANCE) {
            let ctx = OpContext::new(r.addr.clone(), planned.state.lineage.clone(), r.generation);
            groups.entry(r.provider.clone()).or_default().push((ctx, r.attributes.clone()));
        }
        for (pkey, items) in &groups {
            let Some(p) = planned.providers.get(pkey) else { continue };
            match p.health(INSTANCE, items).await {
                None => {}
                Some(Ok(answers)) if answers.len() == items.len() => {
                    for ((ctx, _), h) in items.iter().zip(answers) {
                        if let Some(h) = h {
                            health.insert(ctx.addr.clone(), h);
                        }
                    }
                }
                Some(Ok(_)) => health_error = Some(format!("provider `{pkey}` answered the health of too few hosts")),
                Some(Err(e)) => health_error = Some(format!("reading the hosts' status checks failed: {}", e.message)),
            }
        }
        report.tag_paused = health.values().filter(|h| h.paused).count();
        if let Some(e) = &health_error
            && ledger.alerts.get("partial_read").is_none_or(|t| now >= plus(*t, self.settings.reminder))
        {
            ledger.alerts.insert("partial_read".into(), now);
            out.emit(WatchEvent::new(EventKind::WatchError, Severity::Warning, format!("{e}; impaired and retiring hosts are not healed this cycle")));
        } else if health_error.is_none() {
            ledger.alerts.remove("partial_read");
        }

        // Hosts: first seen, status-check counters, retirement.
        let live: BTreeMap<String, &crate::state::ResourceState> = planned
            .state
            .resources
            .values()
            .filter(|r| r.deposed.is_none() && r.addr.resource.type_ == INSTANCE)
            .filter_map(|r| Some((r.attributes.get_str("id")?.to_string(), r)))
            .collect();
        if health_error.is_none() {
            ledger.first_seen.retain(|id, _| live.contains_key(id));
            ledger.impaired.retain(|id, _| live.contains_key(id));
        }
        for (id, r) in &live {
            let first = *ledger.first_seen.entry(id.clone()).or_insert(now);
            if findings.iter().any(|f| f.addr == r.addr) {
                continue;
            }
            let Some(h) = health.get(&r.addr) else { continue };
            let notify_only = self.config.resource(&r.addr.resource).is_some_and(|d| d.lifecycle.watch_notify_only);
            let finding = |class, message: String| Finding {
                addr: r.addr.clone(),
                class,
                id: Some(id.clone()),
                name: classify::name_pointing_at(&planned.state, r),
                message,
                before: None,
                after: Some(serde_json::json!({ "status": h.detail })),
                notify_only,
                role: None,
                destination: None,
            };
            if h.ok == Some(false) {
                let n = ledger.impaired.entry(id.clone()).or_insert(0);
                *n += 1;
                if guards::impaired_is_drift(self.settings, *n, first, now) {
                    findings.push(finding(
                        DriftClass::InstanceImpaired,
                        format!("`{}` ({id}) failed its status checks {n} cycles in a row ({})", r.addr, h.detail),
                    ));
                    continue;
                }
            } else if health_error.is_none() {
                ledger.impaired.remove(id);
            }
            if let Some(ev) = h.scheduled.first() {
                let when = ev.not_before.as_deref().map(|t| format!(" from {t}")).unwrap_or_default();
                findings.push(finding(
                    DriftClass::InstanceRetiring,
                    format!("`{}` ({id}) has a scheduled `{}`{when}: {}", r.addr, ev.code, ev.description),
                ));
            }
        }
        // Drift stays open while the plan still wants to change the object:
        // a heal of something else records the refreshed state (a stopped
        // host as stopped), after which the record matches reality.
        let pending: BTreeSet<String> = planned
            .plan
            .changes
            .iter()
            .filter(|c| c.deposed.is_none() && !matches!(c.action, crate::plan::Action::NoOp | crate::plan::Action::Read))
            .map(|c| c.addr.to_string())
            .collect();
        for (addr, open) in &ledger.open {
            let Some(class) = super::config::parse_class(&open.class) else { continue };
            if matches!(class, DriftClass::InstanceImpaired | DriftClass::InstanceRetiring)
                || !pending.contains(addr)
                || findings.iter().any(|f| f.addr.to_string() == *addr)
            {
                continue;
            }
            let Ok(a) = addr.parse::<InstanceAddr>() else { continue };
            let notify_only = self.config.resource(&a.resource).is_some_and(|d| d.lifecycle.watch_notify_only);
            let id = planned.state.get(&a).and_then(|r| r.attributes.get_str("id")).map(str::to_string);
            findings.push(Finding {
                message: format!("`{addr}` still differs from its configuration"),
                addr: a,
                class,
                id,
                name: None,
                before: None,
                after: None,
                notify_only,
                role: None,
                destination: None,
            });
        }
        findings.sort_by(|a, b| a.addr.cmp(&b.addr));
        if !findings.is_empty() {
            let listed = roles(self.config, &planned.plan.variables, &self.plan_opts.workspace, &stored);
            for f in &mut findings {
                if let Some((role, destination)) = listed.get(&f.addr.to_string()) {
                    f.role = Some(role.clone());
                    f.destination = destination.clone();
                }
            }
        }

        // Transitions: found, reminded, resolved.
        let found: BTreeMap<String, &Finding> = findings.iter().map(|f| (f.addr.to_string(), f)).collect();
        for (addr, f) in &found {
            match ledger.open.get_mut(addr) {
                Some(open) if open.class == f.class.as_str() => {
                    if now >= plus(open.notified, self.settings.reminder) {
                        open.notified = now;
                        let since = stamp(open.since);
                        out.emit(about(EventKind::DriftDetected, drift_severity(f.class), f, format!("still drifted since {since}: {}", f.message)));
                    }
                }
                _ => {
                    ledger.open.insert(addr.clone(), OpenDrift { class: f.class.as_str().into(), since: now, notified: now, skipped: None });
                    let mut ev = about(EventKind::DriftDetected, drift_severity(f.class), f, f.message.clone());
                    ev.before = f.before.clone();
                    ev.after = f.after.clone();
                    out.emit(ev);
                }
            }
        }
        let resolved: Vec<String> = ledger.open.keys().filter(|a| !found.contains_key(*a)).cloned().collect();
        for addr in resolved {
            if let Some(open) = ledger.open.remove(&addr) {
                let mut ev = WatchEvent::new(EventKind::DriftResolved, Severity::Info, format!("`{addr}` matches its record again"));
                ev.address = Some(addr.clone());
                ev.class = super::config::parse_class(&open.class);
                out.emit(ev);
            }
        }

        self.announce_pauses(out, ledger);
        report.findings = findings.clone();
        if self.settings.mode == Mode::Heal {
            self.heal(out, ledger, report, &findings, &health, health_error.is_some(), &stored).await;
        }
        Ok(())
    }

    /// Pauses in force are announced again once a day.
    fn announce_pauses(&self, out: &Out<'_>, ledger: &mut Ledger) {
        for p in ledger.pauses.iter_mut().filter(|p| p.until > out.now) {
            if out.now >= plus(p.announced, self.settings.pause_reminder) {
                p.announced = out.now;
                let mut ev = WatchEvent::new(EventKind::HealSkipped, Severity::Info, format!("still {}", Ledger::describe_pause(p)));
                ev.address = p.address.clone();
                ev.reason = Some(SkipReason::Paused);
                ev.command = Some(match &p.address {
                    Some(a) => format!("berth watch resume {a}"),
                    None => "berth watch resume --all".into(),
                });
                out.emit(ev);
            }
        }
    }

    /// Records a skip on the object's open drift, announcing it when the
    /// reason changed or the reminder is due.
    fn skip(&self, out: &Out<'_>, ledger: &mut Ledger, f: &Finding, reason: SkipReason, message: &str, command: Option<String>) {
        let now = out.now;
        let Some(open) = ledger.open.get_mut(&f.addr.to_string()) else { return };
        let due = match &open.skipped {
            Some((r, at)) => r != reason.as_str() || now >= plus(*at, self.settings.reminder),
            None => true,
        };
        if due {
            open.skipped = Some((reason.as_str().to_string(), now));
            let mut ev = skip_event(f, reason, message);
            ev.command = command;
            out.emit(ev);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn heal(
        &self,
        out: &Out<'_>,
        ledger: &mut Ledger,
        report: &mut CycleReport,
        findings: &[Finding],
        health: &HashMap<InstanceAddr, Health>,
        health_failed: bool,
        stored: &crate::state::State,
    ) {
        let now = out.now;
        let healable: Vec<&Finding> = findings.iter().filter(|f| self.settings.heal.contains(&f.class)).collect();
        // An outage or a broken read, not a dead host.
        let dead = findings.iter().filter(|f| classify::looks_dead(f.class)).count();
        if guards::short_circuit(self.settings, dead) {
            if ledger.alerts.get("short_circuit").is_none_or(|t| now >= plus(*t, self.settings.reminder)) {
                ledger.alerts.insert("short_circuit".into(), now);
                let mut ev = WatchEvent::new(
                    EventKind::HealSkipped,
                    Severity::Critical,
                    format!(
                        "{dead} hosts look dead at once (more than max_unhealthy = {}): an outage or a broken read, not a dead host; nothing is healed",
                        self.settings.max_unhealthy
                    ),
                );
                ev.reason = Some(SkipReason::ShortCircuit);
                out.emit(ev);
            }
            return;
        }
        ledger.alerts.remove("short_circuit");
        // Every record of a type gone at once reads like an empty listing.
        let mut gone_records: BTreeMap<&str, usize> = BTreeMap::new();
        for f in findings.iter().filter(|f| f.class == DriftClass::DnsRecord && f.after.is_none()) {
            *gone_records.entry(f.addr.resource.type_.as_str()).or_default() += 1;
        }
        let all_gone = |type_: &str| {
            let n = gone_records.get(type_).copied().unwrap_or(0);
            n >= 2 && n == stored.resources.values().filter(|r| r.deposed.is_none() && r.addr.resource.type_ == type_).count()
        };

        let mut chosen: Vec<&Finding> = Vec::new();
        let mut replacing = 0;
        for f in healable {
            let addr = f.addr.to_string();
            if f.notify_only {
                self.skip(out, ledger, f, SkipReason::NotifyOnly, "its `lifecycle { watch = \"notify\" }` says report only", None);
                continue;
            }
            if health_failed && matches!(f.class, DriftClass::InstanceImpaired | DriftClass::InstanceRetiring) {
                self.skip(out, ledger, f, SkipReason::PartialRead, "the status checks could not be read this cycle", None);
                continue;
            }
            if f.class == DriftClass::DnsRecord && f.after.is_none() && all_gone(&f.addr.resource.type_) {
                self.skip(out, ledger, f, SkipReason::PartialRead, "every record of its type reads as gone at once: a broken read, not a deletion", None);
                continue;
            }
            let replaces = classify::replaces(f.class);
            let check = Check {
                settings: self.settings,
                ledger,
                now,
                address: &addr,
                tagged_paused: health.get(&f.addr).is_some_and(|h| h.paused),
                replaces,
                replacing,
            };
            match check.verdict() {
                Ok(()) => {
                    if replaces {
                        replacing += 1;
                    }
                    chosen.push(f);
                }
                Err((reason, msg)) => {
                    let command = match reason {
                        SkipReason::Quarantined => Some(format!("berth watch release {addr}")),
                        SkipReason::Paused if !check.tagged_paused => Some(format!("berth watch resume {addr}")),
                        _ => None,
                    };
                    self.skip(out, ledger, f, reason, &msg, command);
                }
            }
        }
        if chosen.is_empty() {
            return;
        }
        if self.dry_run {
            report.would_heal = chosen.iter().map(|f| (f.addr.to_string(), f.action())).collect();
            return;
        }

        let heal_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let opts = self.heal_options(&chosen);
        if self.settings.approve == Approve::Manual {
            self.ask_approval(out, ledger, &chosen, &opts, &heal_id).await;
            return;
        }

        // The same lock as `berth apply`, tried once, never forced.
        let lock = match self.backend.lock("watch heal", std::time::Duration::ZERO).await {
            Ok(l) => l,
            Err(StateError::Locked(who)) => {
                if ledger.alerts.get("lock").is_none_or(|t| now >= plus(*t, self.settings.reminder)) {
                    ledger.alerts.insert("lock".into(), now);
                    let mut ev = WatchEvent::new(EventKind::HealSkipped, Severity::Warning, format!("not healing this cycle: {who}"));
                    ev.reason = Some(SkipReason::Lock);
                    out.emit(ev);
                }
                return;
            }
            Err(e) => {
                out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, format!("cannot take the state lock: {e}")));
                return;
            }
        };
        ledger.alerts.remove("lock");
        let result = self.heal_locked(out, ledger, report, &chosen, &opts, &heal_id).await;
        if let Err(e) = self.backend.unlock(&lock).await {
            out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, format!("cannot release the state lock: {e}")));
        }
        if let Err(e) = result {
            out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, e));
        }
    }

    /// The heal's plan options: hosts to replace, and the healed objects
    /// with everything depending on them as targets (a record follows its
    /// host; nothing else is touched).
    fn heal_options(&self, chosen: &[&Finding]) -> PlanOptions {
        let replace: Vec<InstanceAddr> = chosen
            .iter()
            .filter(|f| matches!(f.class, DriftClass::InstanceImpaired | DriftClass::InstanceRetiring))
            .map(|f| f.addr.clone())
            .collect();
        let mut targets: Vec<TargetAddr> = chosen.iter().map(|f| TargetAddr::Instance(f.addr.clone())).collect();
        if let Ok(graph) = crate::graph::Graph::build(self.config) {
            let mut dependents: BTreeMap<&ResourceAddr, Vec<&ResourceAddr>> = BTreeMap::new();
            for (r, deps) in &graph.resource_deps {
                for d in deps {
                    dependents.entry(d).or_default().push(r);
                }
            }
            let mut seen: BTreeSet<&ResourceAddr> = BTreeSet::new();
            let mut stack: Vec<&ResourceAddr> = chosen.iter().map(|f| &f.addr.resource).collect();
            while let Some(r) = stack.pop() {
                for d in dependents.get(r).into_iter().flatten() {
                    if seen.insert(d) {
                        stack.push(d);
                    }
                }
            }
            let own: BTreeSet<&ResourceAddr> = chosen.iter().map(|f| &f.addr.resource).collect();
            for r in seen.into_iter().filter(|r| !own.contains(r)) {
                targets.push(TargetAddr::Instance(InstanceAddr { resource: r.clone(), key: InstanceKey::None }));
            }
        }
        PlanOptions { refresh: true, replace, targets, ..self.plan_opts.clone() }
    }

    async fn ask_approval(&self, out: &Out<'_>, ledger: &mut Ledger, chosen: &[&Finding], opts: &PlanOptions, heal_id: &str) {
        let pending: Vec<&Finding> = chosen
            .iter()
            .copied()
            .filter(|f| ledger.open.get(&f.addr.to_string()).is_none_or(|o| o.skipped.as_ref().is_none_or(|(r, at)| r != "approval" || out.now >= plus(*at, self.settings.reminder))))
            .collect();
        if pending.is_empty() {
            return;
        }
        let mut planned = match engine::plan(self.config, self.vars, self.backend, opts, self.progress).await {
            Ok(p) => p,
            Err(d) => {
                out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, format!("planning the heal failed: {}", d.to_string().trim())));
                return;
            }
        };
        // The plan a human approves holds the heal and nothing else.
        let wanted: BTreeSet<&InstanceAddr> = chosen.iter().map(|f| &f.addr).collect();
        let keep = needed(&planned.plan, &wanted);
        planned.plan.changes.retain(|c| c.action == crate::plan::Action::NoOp || keep.contains(&c.addr));
        let path = self.plan_dir.join(format!("heal-{heal_id}.plan"));
        if let Err(e) = write_private(&path, &planned.plan.to_file()) {
            out.emit(WatchEvent::new(EventKind::WatchError, Severity::Critical, format!("cannot save the heal's plan `{}`: {e}", path.display())));
            return;
        }
        let command = format!("berth apply {}", path.display());
        for f in pending {
            let mut ev = skip_event(f, SkipReason::Approval, &format!("approval needed; review and apply the saved plan with `{command}`"));
            ev.heal_id = Some(heal_id.to_string());
            ev.command = Some(command.clone());
            if let Some(open) = ledger.open.get_mut(&f.addr.to_string()) {
                open.skipped = Some(("approval".into(), out.now));
            }
            out.emit(ev);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn heal_locked(
        &self,
        out: &Out<'_>,
        ledger: &mut Ledger,
        report: &mut CycleReport,
        chosen: &[&Finding],
        opts: &PlanOptions,
        heal_id: &str,
    ) -> Result<(), String> {
        let now = out.now;
        // Again under the lock: another watcher (or a human) may have fixed it.
        let mut planned = engine::plan(self.config, self.vars, self.backend, opts, self.progress)
            .await
            .map_err(|d| format!("planning the heal failed: {}", d.to_string().trim()))?;
        let wanted: BTreeSet<&InstanceAddr> = chosen.iter().map(|f| &f.addr).collect();
        let keep = needed(&planned.plan, &wanted);
        planned.plan.changes.retain(|c| c.action == crate::plan::Action::NoOp || keep.contains(&c.addr));
        if !planned.plan.changes.iter().any(|c| wanted.contains(&c.addr) && c.action != crate::plan::Action::NoOp) {
            return Ok(());
        }
        // Written before the heal starts: a watcher killed mid-heal leaves it
        // counted against the budget, and the next cycle's refresh adopts
        // whatever the interrupted apply created.
        for f in chosen {
            let attempt = guards::failures_within(ledger, self.settings, &f.addr.to_string(), now) + 1;
            ledger.heals.push(HealRecord {
                heal_id: heal_id.to_string(),
                address: f.addr.to_string(),
                class: f.class.as_str().into(),
                at: now,
                replaces: classify::replaces(f.class),
                outcome: Outcome::Started,
                error: None,
            });
            let mut ev = about(EventKind::HealStarted, Severity::Info, f, format!("healing `{}`: {}", f.addr, f.action()));
            ev.heal_id = Some(heal_id.to_string());
            ev.attempt = Some(attempt);
            out.emit(ev);
        }
        let started: Vec<HealRecord> = ledger.heals.iter().filter(|h| h.heal_id == heal_id).cloned().collect();
        ledger::update(self.backend, |l| l.heals.extend(started.iter().cloned())).await.map_err(|e| e.to_string())?;
        let applied = engine::apply(
            self.config,
            planned,
            self.backend,
            &ApplyOptions { parallelism: self.parallelism.max(1), ..ApplyOptions::default() },
            self.progress,
            &self.cancel,
        )
        .await;
        let error = match &applied {
            Ok((r, _)) if r.ok() => None,
            Ok((r, _)) => {
                let mut parts: Vec<String> = r.failures.iter().map(|f| format!("`{}`: {}", f.subject, f.error)).collect();
                if r.interrupted {
                    parts.push("interrupted".into());
                }
                if !r.skipped.is_empty() {
                    parts.push(format!("{} steps skipped", r.skipped.len()));
                }
                Some(parts.join("; "))
            }
            Err(d) => Some(d.to_string().trim().to_string()),
        };
        for f in chosen {
            let addr = f.addr.to_string();
            if let Some(h) = ledger.heals.iter_mut().find(|h| h.heal_id == heal_id && h.address == addr) {
                h.outcome = if error.is_none() { Outcome::Succeeded } else { Outcome::Failed };
                h.error = error.clone();
            }
            match &error {
                None => {
                    report.healed.push(addr.clone());
                    let mut ev = about(EventKind::HealSucceeded, Severity::Info, f, format!("healed `{addr}` ({})", f.action()));
                    ev.heal_id = Some(heal_id.to_string());
                    out.emit(ev);
                    if let Some(open) = ledger.open.remove(&addr) {
                        let mut ev = about(EventKind::DriftResolved, Severity::Info, f, format!("`{addr}` healed; drifted since {}", stamp(open.since)));
                        ev.heal_id = Some(heal_id.to_string());
                        out.emit(ev);
                    }
                }
                Some(e) => {
                    let failures = guards::failures_within(ledger, self.settings, &addr, now);
                    let mut ev = about(EventKind::HealFailed, Severity::Critical, f, format!("healing `{addr}` failed: {e}"));
                    ev.heal_id = Some(heal_id.to_string());
                    ev.attempt = Some(failures);
                    out.emit(ev);
                    if failures >= self.settings.quarantine_after && !ledger.quarantined.contains_key(&addr) {
                        ledger.quarantined.insert(addr.clone(), Quarantine { since: now, failures, last_error: e.clone() });
                        let mut ev = about(
                            EventKind::Quarantined,
                            Severity::Critical,
                            f,
                            format!("`{addr}` is quarantined after {failures} failed heals within {}: no more attempts until a human releases it", humantime::format_duration(self.settings.quarantine_window)),
                        );
                        ev.command = Some(format!("berth watch release {addr}"));
                        out.emit(ev);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The changes a heal carries out: those of the healed objects (`chosen`)
/// and of everything depending on them, transitively (a record following
/// its new host). The rest of a targeted plan stays undone: another
/// object's drift the watcher only reports (a stopped host the plan would
/// start), or a configuration edit not applied yet.
fn needed(plan: &crate::plan::Plan, chosen: &BTreeSet<&InstanceAddr>) -> BTreeSet<InstanceAddr> {
    let mut needed: BTreeSet<InstanceAddr> = chosen.iter().map(|a| (*a).clone()).collect();
    loop {
        let mut grew = false;
        for c in plan.changes.iter().filter(|c| c.action != crate::plan::Action::NoOp) {
            if needed.contains(&c.addr) {
                continue;
            }
            let keyed = plan.instance_dependencies.get(&c.addr);
            let keyed_hit = keyed.is_some_and(|deps| deps.iter().any(|d| needed.contains(d)));
            let resource_hit = plan.dependencies.get(&c.addr.resource).is_some_and(|deps| {
                needed.iter().any(|d| {
                    deps.contains(&d.resource) && !keyed.is_some_and(|k| k.iter().any(|x| x.resource == d.resource))
                })
            });
            if keyed_hit || resource_hit {
                needed.insert(c.addr.clone());
                grew = true;
            }
        }
        if !grew {
            return needed;
        }
    }
}

/// Writes a file with mode 0600 (a plan may hold sensitive values).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
