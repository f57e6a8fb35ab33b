//! The engine called in-process — `engine::plan`, then `engine::apply` — with
//! the recording provider (`support::recording`): the cases a real provider
//! cannot produce on demand (a dropped operation, a failed health gate, a
//! cancellation while an operation is in flight, a failed update), checked
//! through the values the engine returns and the typed events it reports.

use crate::support;

use berth::config::vars::VarSources;
use berth::engine::{self, ApplyOptions, ApplyReport, Event, PlanOptions, Progress, StepRef, Subject};
use berth::plan::Action;
use berth::state::local::LocalBackend;
use berth::state::{Backend, State};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::recording::{Answer, Recording};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The events of a run, kept as their kind and step.
#[derive(Default)]
pub(crate) struct Events(Mutex<Vec<(&'static str, Option<StepRef>)>>);

impl Progress for Events {
    fn event(&self, e: Event<'_>) {
        let kept = match e {
            Event::Started(s) => ("started", Some(s.clone())),
            Event::Finished { step, .. } => ("finished", Some(step.clone())),
            Event::Failed { step, .. } => ("failed", Some(step.clone())),
            Event::Healthy(s) => ("healthy", Some(s.clone())),
            Event::Draining { step, .. } => ("draining", Some(step.clone())),
            Event::HealthWaiting { step, .. } => ("health-waiting", Some(step.clone())),
            Event::Interrupted { .. } => ("interrupted", None),
            Event::Warning { step, .. } => ("warning", Some(step.clone())),
            Event::Refreshing { .. } => ("refreshing", None),
            Event::InventoryWritten { .. } => ("inventory", None),
            Event::KnownHostsUpdated { .. } => ("known-hosts", None),
            Event::HookStarted { .. } => ("hook-started", None),
            Event::HookFinished { .. } => ("hook-finished", None),
        };
        self.0.lock().unwrap().push(kept);
    }
}

impl Events {
    /// The addresses of the steps of one kind of event, in order.
    pub(crate) fn of(&self, kind: &str) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|(k, _)| *k == kind).filter_map(|(_, s)| s.as_ref().map(|s| s.to_string())).collect()
    }
}

pub(crate) struct Run {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) rec: Recording,
    pub(crate) backend: LocalBackend,
}

impl Run {
    pub(crate) fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("state"), "default");
        Run { _dir: dir, rec: Recording::new(), backend }
    }

    pub(crate) async fn plan(&self, hcl: &str) -> (berth::config::Config, engine::Planned) {
        self.plan_with(hcl, PlanOptions::default()).await
    }

    /// As [`Run::plan`], with `opts` (its provider registry, workspace and
    /// refresh set here).
    pub(crate) async fn plan_with(&self, hcl: &str, opts: PlanOptions) -> (berth::config::Config, engine::Planned) {
        let config = berth::config::load_str("main.hcl", hcl).expect("a valid configuration");
        let opts = PlanOptions { refresh: true, workspace: "default".into(), providers: self.rec.registry(), ..opts };
        let planned = engine::plan(&config, &VarSources::default(), &self.backend, &opts, &Events::default())
            .await
            .unwrap_or_else(|d| panic!("plan failed: {d}"));
        (config, planned)
    }

    /// Plans and applies `hcl`, bounded in time: an engine that hangs fails the test.
    pub(crate) async fn apply(&self, hcl: &str, cancel: &CancellationToken, events: &dyn Progress) -> (ApplyReport, State) {
        let planned = self.plan(hcl).await;
        self.apply_planned(planned, cancel, events).await
    }

    /// Applies a plan made by [`Run::plan_with`], bounded in time as [`Run::apply`].
    pub(crate) async fn apply_planned(
        &self,
        (config, planned): (berth::config::Config, engine::Planned),
        cancel: &CancellationToken,
        events: &dyn Progress,
    ) -> (ApplyReport, State) {
        let opts = ApplyOptions { parallelism: 4, ..Default::default() };
        let run = engine::apply(&config, planned, &self.backend, &opts, events, cancel);
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the apply finished")
            .unwrap_or_else(|d| panic!("apply failed: {d}"))
    }

    pub(crate) async fn stored(&self) -> State {
        self.backend.load().await.unwrap().expect("a state")
    }
}

fn addrs(state: &State) -> Vec<String> {
    state.resources.values().filter(|r| r.deposed.is_none()).map(|r| r.addr.to_string()).collect()
}

fn failed_steps(report: &ApplyReport) -> Vec<String> {
    report
        .failures
        .iter()
        .map(|f| match &f.subject {
            Subject::Step(s) => s.to_string(),
            other => panic!("unexpected failure of {other}: {}", f.error),
        })
        .collect()
}

fn skipped(report: &ApplyReport) -> Vec<String> {
    report.skipped.iter().map(|s| s.to_string()).collect()
}

const THREE: &str = r#"
resource "rec_thing" "a" { input = "a" }
resource "rec_thing" "b" { input = "b" }
resource "rec_thing" "c" { input = rec_thing.b.output }
"#;

#[tokio::test]
async fn a_dropped_operation_fails_its_step_and_skips_only_its_dependents() {
    let run = Run::new();
    run.rec.script("rec_thing.b", [Answer::Drop]);
    let events = Events::default();
    let (report, state) = run.apply(THREE, &CancellationToken::new(), &events).await;
    assert_eq!(failed_steps(&report), ["rec_thing.b"]);
    assert_eq!(report.failures[0].error, "the provider returned no result");
    assert_eq!(skipped(&report), ["rec_thing.c"]);
    assert_eq!(report.added, 1);
    assert_eq!(addrs(&state), ["rec_thing.a"]);
    assert!(state.pending.is_empty(), "a create that surely made nothing is no longer pending: {:?}", state.pending);
    assert_eq!(addrs(&run.stored().await), ["rec_thing.a"], "what the apply returns is what it stored");
    let mut created = run.rec.addrs("create");
    created.sort();
    assert_eq!(created, ["rec_thing.a", "rec_thing.b"], "the dependent was never asked for");
    assert_eq!(events.of("failed"), ["rec_thing.b"]);
    // Typed events: the step names its address and action, not a string.
    let failed = events.0.lock().unwrap().iter().find(|(k, _)| *k == "failed").and_then(|(_, s)| s.clone()).unwrap();
    assert_eq!((failed.addr.to_string(), failed.action, failed.destroy), ("rec_thing.b".into(), Action::Create, false));
}

/// An HTTP server on loopback answering every request with `status`.
async fn http_server(status: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    port
}

#[tokio::test]
async fn a_failed_health_gate_taints_the_new_object_and_holds_its_dependents() {
    let port = http_server(503).await;
    let hcl = format!(
        r#"
resource "rec_thing" "web" {{
  input = "v1"
  health_check {{
    url      = "http://127.0.0.1:{port}/up"
    timeout  = "1s"
    interval = "100ms"
  }}
}}
resource "rec_thing" "dns" {{ input = rec_thing.web.id }}
resource "rec_thing" "other" {{ input = "x" }}
"#
    );
    let run = Run::new();
    let events = Events::default();
    let (report, state) = run.apply(&hcl, &CancellationToken::new(), &events).await;
    assert_eq!(failed_steps(&report), ["rec_thing.web"]);
    let error = &report.failures[0].error;
    assert!(error.contains("health check failed") && error.contains("answered 503") && error.contains("tainted"), "{error}");
    assert_eq!(skipped(&report), ["rec_thing.dns"]);
    let web = state.resources.values().find(|r| r.addr.to_string() == "rec_thing.web").expect("the new object is kept");
    assert!(web.tainted);
    assert_eq!(addrs(&state), ["rec_thing.other", "rec_thing.web"]);
    assert!(!run.rec.addrs("create").contains(&"rec_thing.dns".to_string()));
    assert_eq!(events.of("health-waiting"), ["rec_thing.web"]);
    assert!(events.of("healthy").is_empty());
}

#[tokio::test]
async fn cancelling_mid_apply_lets_the_operation_in_flight_finish_and_starts_nothing_new() {
    let hcl = r#"
resource "rec_thing" "slow" { input = "slow" }
resource "rec_thing" "after" { input = rec_thing.slow.output }
resource "rec_thing" "quick" { input = "quick" }
"#;
    let run = Run::new();
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    run.rec.script("rec_thing.slow", [Answer::Hold { started: started.clone(), release: release.clone() }]);
    let cancel = CancellationToken::new();
    let events = Events::default();
    let (result, ()) = tokio::join!(run.apply(hcl, &cancel, &events), async {
        started.notified().await;
        cancel.cancel();
        // The engine notices before the held operation answers.
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.notify_one();
    });
    let (report, state) = result;
    assert!(report.interrupted);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(skipped(&report), ["rec_thing.after"]);
    assert_eq!(addrs(&state), ["rec_thing.quick", "rec_thing.slow"], "the operation in flight was recorded");
    assert!(!run.rec.addrs("create").contains(&"rec_thing.after".to_string()), "nothing new started");
    assert_eq!(events.0.lock().unwrap().iter().filter(|(k, _)| *k == "interrupted").count(), 1, "noticed once");
    // The next run picks up what was skipped.
    let (_, planned) = run.plan(hcl).await;
    let pending: Vec<String> =
        planned.plan.changes.iter().filter(|c| c.action != Action::NoOp).map(|c| c.addr.to_string()).collect();
    assert_eq!(pending, ["rec_thing.after"]);
}

#[tokio::test]
async fn a_failed_update_keeps_the_object_untainted_and_is_planned_again() {
    let v = |input: &str| format!("resource \"rec_thing\" \"a\" {{ input = \"{input}\" }}\nresource \"rec_thing\" \"b\" {{ input = rec_thing.a.output }}\n");
    let run = Run::new();
    let (report, _) = run.apply(&v("one"), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{:?}", report.failures);
    run.rec.script("rec_thing.a", [Answer::FailWithState("the update was refused")]);
    let (report, state) = run.apply(&v("two"), &CancellationToken::new(), &Events::default()).await;
    assert_eq!(failed_steps(&report), ["rec_thing.a"]);
    assert_eq!(report.failures[0].error, "the update was refused");
    assert_eq!(skipped(&report), ["rec_thing.b"]);
    let a = state.resources.values().find(|r| r.addr.to_string() == "rec_thing.a").unwrap();
    assert!(!a.tainted, "a failed update never taints");
    assert_eq!(a.attributes.get_str("input"), Some("one"), "the object is recorded as it still is");
    let (_, planned) = run.plan(&v("two")).await;
    let actions: Vec<(String, Action)> = planned.plan.changes.iter().map(|c| (c.addr.to_string(), c.action)).collect();
    assert_eq!(
        actions,
        [("rec_thing.a".to_string(), Action::Update), ("rec_thing.b".to_string(), Action::Update)],
        "the same update again, never a replacement"
    );
    let (report, _) = run.apply(&v("two"), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok() && report.changed == 2, "{report:?}");
}

#[tokio::test]
async fn a_cancelled_token_before_the_apply_records_nothing() {
    let run = Run::new();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (report, _) = run.apply(THREE, &cancel, &Events::default()).await;
    assert!(report.interrupted);
    assert_eq!(skipped(&report), ["rec_thing.a", "rec_thing.b", "rec_thing.c"]);
    assert!(run.rec.addrs("create").is_empty());
    assert!(run.backend.load().await.unwrap().is_none(), "no state was written");
}
