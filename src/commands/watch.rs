//! `berth watch`: the loop (or `--once`, one cycle), and `pause`, `resume`,
//! `release`, `status`, which edit or show the watcher's ledger. The loop
//! itself is the library's ([`crate::watch`]); this is settings, sinks and
//! exit codes.

use super::*;
use crate::cli::{WatchAction, WatchArgs, WatchRunArgs};
use crate::config::vars::VarSources;
use crate::engine::PlanOptions;
use crate::watch::clock::{Clock, SystemClock, plus, stamp};
use crate::watch::config::{Mode, WatchSettings};
use crate::watch::ledger::{self, Ledger, Pause};
use crate::watch::{CycleReport, Sink, Watcher, WatchEvent};
use std::sync::Arc;

pub async fn run(env: &Env, args: &WatchArgs) -> CmdResult {
    match &args.action {
        None => watch(env, &args.run).await,
        Some(WatchAction::Pause { address, all: _, duration, reason }) => pause(env, address.clone(), *duration, reason).await,
        Some(WatchAction::Resume { address, all: _ }) => resume(env, address.as_deref()).await,
        Some(WatchAction::Release { address }) => release(env, address).await,
        Some(WatchAction::Status { json }) => status(env, *json).await,
    }
}

/// The configuration's `watch` block with the flags laid over it.
fn settings(config: &Config, args: &WatchRunArgs) -> Result<WatchSettings, Diagnostics> {
    let mut s = WatchSettings::from_block(config.root().watch.as_ref())?;
    if let Some(m) = &args.mode {
        s.mode = m.parse::<Mode>().map_err(|e| err(format!("`--mode`: {e}")))?;
    }
    if let Some(i) = args.interval {
        if i < std::time::Duration::from_secs(1) {
            return Err(err("`--interval` must be at least 1s"));
        }
        s.interval = i;
    }
    if let Some(l) = args.listen {
        s.listen = l;
    }
    Ok(s)
}

/// Prints each event: one human line on stderr, or with `--json` the
/// webhook's payload as one JSON line on stdout.
struct Log {
    json: bool,
}

impl Sink for Log {
    fn event(&self, ev: &WatchEvent) {
        if self.json {
            print(&format!("{}\n", serde_json::to_string(ev).unwrap_or_default()));
            return;
        }
        let reason = ev.reason.map(|r| format!(" [{}]", r.as_str())).unwrap_or_default();
        let command = ev.command.as_ref().map(|c| format!("\n  run: {c}")).unwrap_or_default();
        eprintln!("{} {}{reason}: {}{command}", ev.timestamp, ev.event.as_str(), ev.message);
    }

    fn cycle(&self, _summary: &crate::watch::CycleSummary) {}
}

/// Where events go: the log, the notifiers of the configuration's
/// `notify` blocks, and the Prometheus metrics (served on `listen` by the
/// loop). Made once when the watcher starts.
struct Sinks {
    all: Vec<Arc<dyn Sink>>,
    notifiers: Vec<Arc<crate::watch::notify::Notifier>>,
    metrics: Arc<crate::watch::metrics::Metrics>,
}

fn sinks(env: &Env, config: &Config, args: &WatchRunArgs) -> Result<Sinks, Diagnostics> {
    let sources = VarSources::from_env(args.vars.vars.clone(), args.vars.var_files.clone()).with_auto_files(&env.dir);
    let vars = crate::config::vars::resolve(config.root(), &sources)?;
    let notifiers = crate::watch::notify::start_all(&config.root().notifiers, &vars, &config.dir)?;
    let metrics = Arc::new(crate::watch::metrics::Metrics::new());
    let mut all: Vec<Arc<dyn Sink>> = vec![Arc::new(Log { json: args.json }), metrics.clone()];
    all.extend(notifiers.iter().map(|n| n.clone() as Arc<dyn Sink>));
    Ok(Sinks { all, notifiers, metrics })
}

impl Sinks {
    /// Lets the notifiers deliver what is queued, for at most `limit`: a
    /// `--once` run or a stopping loop exits with its events sent.
    async fn flush(&self, limit: std::time::Duration) {
        let all = futures::future::join_all(self.notifiers.iter().map(|n| n.flush()));
        if tokio::time::timeout(limit, all).await.is_err() {
            eprintln!("berth watch: some notifications were still undelivered after {}", humantime::format_duration(limit));
        }
    }
}

/// How long a stopping watcher waits for its notifications to go out.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn one_cycle(env: &Env, args: &WatchRunArgs, sinks: &[Arc<dyn Sink>], clock: &dyn Clock) -> Result<(CycleReport, WatchSettings), Diagnostics> {
    let config = env.load_config()?;
    let settings = settings(&config, args)?;
    let backend = env.backend(Some(&config))?;
    env.interrupt.watch_locks(backend.as_ref());
    let vars = VarSources::from_env(args.vars.vars.clone(), args.vars.var_files.clone()).with_auto_files(&env.dir);
    let progress = progress::Display::stderr();
    let watcher = Watcher {
        config: &config,
        vars: &vars,
        backend: backend.as_ref(),
        settings: &settings,
        plan_opts: PlanOptions { workspace: env.workspace.clone(), ..PlanOptions::default() },
        clock,
        sinks,
        progress: &progress,
        cancel: env.interrupt.token(),
        dry_run: args.dry_run,
        plan_dir: env.dir.join(&args.plan_dir),
        parallelism: args.parallelism,
    };
    Ok((watcher.cycle().await, settings))
}

async fn watch(env: &Env, args: &WatchRunArgs) -> CmdResult {
    let config = env.load_config()?;
    let first = settings(&config, args)?;
    let made = sinks(env, &config, args)?;
    drop(config);
    let sinks = &made.all;
    let clock = SystemClock;
    if args.once {
        let cycle = one_cycle(env, args, sinks, &clock).await;
        made.flush(FLUSH_LIMIT).await;
        let (report, settings) = cycle?;
        for (addr, action) in &report.would_heal {
            eprintln!("dry run: would {action} `{addr}`");
        }
        if let Some(e) = report.error {
            return Err(err(e));
        }
        if settings.mode == Mode::Observe || args.dry_run {
            eprintln!("{} drifted object(s); mode {}{}.", report.findings.len(), settings.mode.as_str(), if args.dry_run { ", dry run" } else { "" });
        }
        return Ok(if report.drift_found() { 2 } else { 0 });
    }
    // The configuration is read again every cycle: an edit applies from
    // the next one (the sinks stay as they started). One that does not
    // load is reported and retried.
    eprintln!("berth watch: mode {}, every {} (±10%)", first.mode.as_str(), humantime::format_duration(first.interval));
    let stop = env.interrupt.token();
    let server = crate::watch::server::Server::bind(first.listen, made.metrics.clone(), first.interval)
        .await
        .map_err(|e| err(format!("`listen`: cannot listen on `{}`: {e}", first.listen)))?;
    eprintln!("berth watch: /metrics, /healthz and /readyz on http://{}", server.local_addr().map(|a| a.to_string()).unwrap_or_default());
    let served = tokio::spawn(server.serve(stop.clone()));
    let fallback = std::sync::Mutex::new(first);
    let (clock, fallback) = (&clock, &fallback);
    crate::watch::run_loop(&stop, move || async move {
        match one_cycle(env, args, sinks, clock).await {
            Ok((report, s)) => {
                *fallback.lock().unwrap_or_else(|p| p.into_inner()) = s.clone();
                (report, s)
            }
            Err(d) => {
                let ev = WatchEvent::new(crate::watch::EventKind::WatchError, crate::watch::Severity::Critical, d.to_string().trim().to_string());
                for s in sinks {
                    s.event(&ev);
                }
                let report = CycleReport { error: Some(d.to_string()), consecutive_errors: 1, ..CycleReport::default() };
                (report, fallback.lock().unwrap_or_else(|p| p.into_inner()).clone())
            }
        }
    })
    .await;
    made.flush(FLUSH_LIMIT).await;
    if let Ok(Err(e)) = served.await {
        eprintln!("berth watch: the metrics server stopped: {e}");
    }
    Ok(0)
}

async fn ledger_backend(env: &Env) -> Result<Box<dyn Backend>, Diagnostics> {
    let config = env.load_config()?;
    env.backend(Some(&config))
}

fn who() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown".into())
}

async fn pause(env: &Env, address: Option<String>, duration: std::time::Duration, reason: &str) -> CmdResult {
    if let Some(a) = &address {
        a.parse::<crate::addr::InstanceAddr>().map_err(|e| err(format!("`{a}`: {e}")))?;
    }
    if reason.trim().is_empty() {
        return Err(err("`--reason` must say why, for the people the pause is announced to"));
    }
    let backend = ledger_backend(env).await?;
    let now = SystemClock.now();
    let p = Pause { address: address.clone(), until: plus(now, duration), reason: reason.to_string(), by: who(), at: now, announced: now };
    let shown = Ledger::describe_pause(&p);
    ledger::update(backend.as_ref(), |l| {
        l.pauses.retain(|q| q.address != p.address);
        l.pauses.push(p.clone());
    })
    .await?;
    eprintln!("Paused: {shown}. Drift is still reported; `berth watch resume{}` ends it.", address.map(|a| format!(" {a}")).unwrap_or_else(|| " --all".into()));
    Ok(0)
}

async fn resume(env: &Env, address: Option<&str>) -> CmdResult {
    let backend = ledger_backend(env).await?;
    let ended = ledger::update(backend.as_ref(), |l| {
        let before = l.pauses.len();
        match address {
            Some(a) => l.pauses.retain(|p| p.address.as_deref() != Some(a)),
            None => l.pauses.clear(),
        }
        before - l.pauses.len()
    })
    .await?;
    match (ended, address) {
        (0, Some(a)) => Err(err(format!("`{a}` is not paused (a pause of everything is ended with `--all`)"))),
        (0, None) => Err(err("nothing is paused")),
        (n, _) => {
            eprintln!("Resumed: {n} pause(s) ended; the next cycle heals again.");
            Ok(0)
        }
    }
}

async fn release(env: &Env, address: &str) -> CmdResult {
    let backend = ledger_backend(env).await?;
    let released = ledger::update(backend.as_ref(), |l| {
        let found = l.quarantined.remove(address).is_some();
        // Its failures are forgiven too, or the next failure would
        // quarantine it again at once.
        if found {
            l.heals.retain(|h| h.address != address || h.outcome != ledger::Outcome::Failed);
        }
        found
    })
    .await?;
    if !released {
        return Err(err(format!("`{address}` is not quarantined")));
    }
    eprintln!("Released `{address}`: the watcher may heal it again.");
    Ok(0)
}

async fn status(env: &Env, json: bool) -> CmdResult {
    let backend = ledger_backend(env).await?;
    let (l, _) = ledger::load(backend.as_ref()).await?;
    if json {
        print(&format!("{}\n", serde_json::to_string_pretty(&l).unwrap_or_default()));
        return Ok(0);
    }
    let mut out = String::new();
    if l.open.is_empty() {
        out.push_str("No open drift.\n");
    }
    for (addr, d) in &l.open {
        out.push_str(&format!("drift: {addr}: {} since {}\n", d.class, stamp(d.since)));
    }
    for p in &l.pauses {
        out.push_str(&format!("pause: {}\n", Ledger::describe_pause(p)));
    }
    for (addr, q) in &l.quarantined {
        out.push_str(&format!("quarantined: {addr} since {} after {} failed heals (last: {})\n", stamp(q.since), q.failures, q.last_error));
    }
    for h in l.heals.iter().rev().take(10) {
        out.push_str(&format!("heal: {} {} {} ({:?})\n", stamp(h.at), h.address, h.class, h.outcome));
    }
    print(&out);
    Ok(0)
}
