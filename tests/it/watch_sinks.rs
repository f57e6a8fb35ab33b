//! What receives the watcher's events: webhook and Slack notifiers posting
//! to a local receiver (signatures, retries, a full queue, redaction), the
//! Prometheus metrics and the health endpoints served over HTTP, and the
//! checks `berth validate` makes of `notify` and `hook` blocks.

use crate::support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use berth::config::NotifyFormat;
use berth::watch::metrics::Metrics;
use berth::watch::notify::{Notifier, NotifierConfig, RetryPolicy};
use berth::watch::server::Server;
use berth::watch::{CycleSummary, DriftClass, EventKind, Severity, Sink, SkipReason, WatchEvent};
use hmac::{KeyInit, Mac};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::cli::Work;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// One request the receiver got.
struct Got {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once they run out.
    statuses: Mutex<VecDeque<u16>>,
    /// When set, the first request waits for it before being answered.
    hold_first: Option<Arc<Notify>>,
    seen: Mutex<usize>,
}

struct Receiver {
    addr: SocketAddr,
    got: mpsc::UnboundedReceiver<Got>,
    /// Told when a request arrives (before it is held).
    arrived: mpsc::UnboundedReceiver<()>,
    _stop: tokio_util::sync::DropGuard,
}

impl Receiver {
    /// The next request, waiting as long as it takes (the guard only turns
    /// a hang into a failure).
    async fn next(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(120), self.got.recv()).await.expect("a delivery").expect("receiver open")
    }
}

type Shared = (Arc<Script>, mpsc::UnboundedSender<Got>, mpsc::UnboundedSender<()>);

async fn receive(State((script, tx, arrived)): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let first = {
        let mut seen = script.seen.lock().unwrap();
        *seen += 1;
        *seen == 1
    };
    let _ = arrived.send(());
    if first && let Some(hold) = &script.hold_first {
        hold.notified().await;
    }
    let status = script.statuses.lock().unwrap().pop_front().unwrap_or(200);
    let _ = tx.send(Got { headers, body: body.to_vec() });
    StatusCode::from_u16(status).unwrap()
}

async fn receiver(script: Script) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, got) = mpsc::unbounded_channel();
    let (atx, arrived) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(receive).with_state((Arc::new(script), tx, atx));
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
    });
    Receiver { addr, got, arrived, _stop: stop.drop_guard() }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        request_timeout: Duration::from_secs(30),
    }
}

fn heal_succeeded() -> WatchEvent {
    let mut ev = WatchEvent::new(EventKind::HealSucceeded, Severity::Info, "replaced the missing search host");
    ev.address = Some("module.search.aws_instance.this".into());
    ev.kind = Some("aws_instance".into());
    ev.class = Some(DriftClass::InstanceMissing);
    ev.id = Some("i-0new".into());
    ev.name = Some("micro-search.internal".into());
    ev.role = Some("web".into());
    ev.destination = Some("production".into());
    ev.action = Some("replace".into());
    ev.heal_id = Some("heal-1".into());
    ev.attempt = Some(1);
    ev.before = Some(serde_json::json!({"id": "i-0old"}));
    ev.after = Some(serde_json::json!({"id": "i-0new"}));
    ev.command = Some("berth watch pause module.search.aws_instance.this".into());
    ev
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn heal_succeeded_reaches_the_receiver_signed() {
    let mut r = receiver(Script::default()).await;
    let url = format!("http://{}/hooks/berth", r.addr);
    let cfg = NotifierConfig::new("webhook", &url, Some("s3cret"), vec![EventKind::HealSucceeded, EventKind::HealFailed], NotifyFormat::Json)
        .unwrap()
        .with_retry(fast());
    let n = Notifier::start(cfg).unwrap();
    let metrics = Arc::new(Metrics::new());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), metrics.clone(), Duration::from_secs(3600)).await.unwrap();
    let metrics_url = format!("http://{}/metrics", server.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(server.serve(stop.clone()));
    // As the loop reports: every event to every sink.
    let sinks: Vec<Arc<dyn Sink>> = vec![n.clone(), metrics.clone()];
    // Not in the notifier's `events`: never sent.
    for ev in [WatchEvent::new(EventKind::DriftDetected, Severity::Warning, "drift"), heal_succeeded()] {
        for s in &sinks {
            s.event(&ev);
        }
    }
    let got = r.next().await;
    let (status, text) = get(&metrics_url).await;
    assert_eq!(status, 200);
    let line = r#"berth_watch_heals_total{class="instance_missing",action="replace",result="succeeded"} 1"#;
    assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
    stop.cancel();
    n.flush().await;
    assert_eq!(n.delivered(), 1);
    assert!(r.got.try_recv().is_err(), "only the heal was sent");

    let sig = got.header("x-berth-signature").expect("signed");
    assert_eq!(sig, format!("sha256={}", hmac_hex(b"s3cret", &got.body)));
    assert_ne!(sig, format!("sha256={}", hmac_hex(b"other", &got.body)), "the key matters");
    assert_eq!(got.header("x-berth-event"), Some("heal_succeeded"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    let v = got.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["event"], "heal_succeeded");
    assert_eq!(v["severity"], "info");
    assert_eq!(v["address"], "module.search.aws_instance.this");
    assert_eq!(v["class"], "instance_missing");
    assert_eq!(v["role"], "web");
    assert_eq!(v["destination"], "production");
    assert_eq!(v["name"], "micro-search.internal");
    assert_eq!(v["action"], "replace");
    assert_eq!(v["heal_id"], "heal-1");
    assert_eq!(v["attempt"], 1);
    assert_eq!(v["before"]["id"], "i-0old");
    assert_eq!(v["after"]["id"], "i-0new");
    assert!(chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).is_ok(), "{v}");
}

#[tokio::test]
async fn a_500_is_retried_until_it_lands() {
    let mut r = receiver(Script { statuses: Mutex::new(VecDeque::from([500, 503])), ..Script::default() }).await;
    let cfg = NotifierConfig::new("webhook", &format!("http://{}/h", r.addr), Some("k"), vec![], NotifyFormat::Json)
        .unwrap()
        .with_retry(fast());
    let n = Notifier::start(cfg).unwrap();
    n.event(&heal_succeeded());
    let (a, b, c) = (r.next().await, r.next().await, r.next().await);
    n.flush().await;
    assert_eq!((n.attempts(), n.delivered(), n.failed()), (3, 1, 0));
    assert_eq!(a.body, b.body, "a retry sends the same bytes");
    assert_eq!(b.body, c.body);
    assert_eq!(a.header("x-berth-delivery"), c.header("x-berth-delivery"), "and the same delivery id");
    assert_eq!(a.header("x-berth-signature"), c.header("x-berth-signature"));

    // A 4xx other than 408/429 is the receiver refusing: not retried.
    let mut r = receiver(Script { statuses: Mutex::new(VecDeque::from([404])), ..Script::default() }).await;
    let cfg = NotifierConfig::new("webhook", &format!("http://{}/h", r.addr), None, vec![], NotifyFormat::Json).unwrap().with_retry(fast());
    let n = Notifier::start(cfg).unwrap();
    n.event(&heal_succeeded());
    let got = r.next().await;
    n.flush().await;
    assert_eq!((n.attempts(), n.delivered(), n.failed()), (1, 0, 1));
    assert!(got.header("x-berth-signature").is_none(), "no secret, no signature");
}

/// `event()` never waits: with the receiver holding the first request and
/// the queue full, events keep being taken, and the oldest queued go.
/// On one thread, so the delivery task runs only when the test awaits.
#[tokio::test(flavor = "current_thread")]
async fn a_hanging_receiver_never_blocks_the_loop() {
    let hold = Arc::new(Notify::new());
    let mut r = receiver(Script { hold_first: Some(hold.clone()), ..Script::default() }).await;
    let cfg = NotifierConfig::new("webhook", &format!("http://{}/h", r.addr), None, vec![], NotifyFormat::Json)
        .unwrap()
        .with_retry(fast())
        .with_capacity(4);
    let n = Notifier::start(cfg).unwrap();
    let ev = |i: usize| WatchEvent::new(EventKind::DriftDetected, Severity::Warning, format!("event {i}"));
    // Nothing has run yet: the queue keeps the newest four.
    for i in 0..20 {
        n.event(&ev(i));
    }
    assert_eq!((n.queued(), n.dropped()), (4, 16));
    // The task sends `event 16`, which the receiver holds.
    r.arrived.recv().await.unwrap();
    for i in 20..30 {
        n.event(&ev(i));
    }
    assert_eq!((n.queued(), n.dropped()), (4, 16 + 9), "17, 18, 19 and six of the new ones went");
    hold.notify_one();
    let mut messages = Vec::new();
    for _ in 0..5 {
        messages.push(r.next().await.json()["message"].as_str().unwrap().to_string());
    }
    n.flush().await;
    assert_eq!(messages, ["event 16", "event 26", "event 27", "event 28", "event 29"]);
    assert_eq!(n.delivered(), 5);
}

#[tokio::test]
async fn the_slack_format_is_a_text_message() {
    let mut r = receiver(Script::default()).await;
    let cfg = NotifierConfig::new("slack", &format!("http://{}/services/T/B/X", r.addr), None, vec![], NotifyFormat::Slack)
        .unwrap()
        .with_retry(fast());
    let n = Notifier::start(cfg).unwrap();
    n.event(&heal_succeeded());
    let v = r.next().await.json();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["text"], "{v}");
    let text = v["text"].as_str().unwrap();
    for want in [
        "heal succeeded",
        "`module.search.aws_instance.this`",
        "web (production)",
        "`i-0new`",
        "`micro-search.internal`",
        "*Action:* replace",
        "TTL",
        "`berth watch pause module.search.aws_instance.this`",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

/// A writer for a tracing subscriber that keeps everything.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of every crate, at TRACE, while deliveries succeed, are
/// retried, refused and fail to connect: the URL's path and query and the
/// HMAC key never show, the notifier's host does. On one thread, so the
/// subscriber (set for this thread) sees the delivery tasks too.
#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (token, query, key) = ("T0KEN-path-9f8e7d", "QUERY-secret-1a2b", "HMAC-key-5c6d");
    let mut r = receiver(Script { statuses: Mutex::new(VecDeque::from([500, 404])), ..Script::default() }).await;
    let url = format!("http://{}/services/{token}?k={query}", r.addr);
    let cfg = NotifierConfig::new("webhook", &url, Some(key), vec![], NotifyFormat::Json).unwrap().with_retry(fast());
    assert!(!format!("{cfg:?}").contains(token));
    let n = Notifier::start(cfg).unwrap();
    n.event(&heal_succeeded());
    r.next().await;
    r.next().await;
    n.flush().await;
    // Nobody listens there any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = NotifierConfig::new("webhook", &format!("http://{closed}/services/{token}?k={query}"), Some(key), vec![], NotifyFormat::Json)
        .unwrap()
        .with_retry(fast());
    let dead = Notifier::start(cfg).unwrap();
    dead.event(&heal_succeeded());
    dead.flush().await;
    assert_eq!(dead.failed(), 1);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains(&format!("notifier `webhook http://{}/…`", r.addr)), "{text}");
    assert!(text.contains("status 500") && text.contains("status 404"), "{text}");
    assert!(text.contains("gave up"), "{text}");
    for secret in [token, query, key] {
        assert!(!text.contains(secret), "`{secret}` logged:\n{text}");
    }
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("GET");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_and_readiness_are_served() {
    let metrics = Arc::new(Metrics::new());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), metrics.clone(), Duration::from_secs(3600)).await.unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(server.serve(stop.clone()));

    assert_eq!(get(&format!("{base}/readyz")).await.0, 503, "no cycle yet");
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200, "a new watcher has two intervals");
    let sink: &dyn Sink = &*metrics;
    sink.event(&heal_succeeded());
    let mut skipped = WatchEvent::new(EventKind::HealSkipped, Severity::Warning, "budget used up");
    skipped.reason = Some(SkipReason::Budget);
    sink.event(&skipped);
    sink.cycle(&CycleSummary { ok: false, consecutive_errors: 1, ..CycleSummary::default() });
    assert_eq!(get(&format!("{base}/readyz")).await.0, 503, "only failed cycles so far");
    sink.cycle(&CycleSummary {
        ok: true,
        duration: Duration::from_secs(3),
        drifted: vec![(DriftClass::InstanceImpaired, 1)],
        paused: 2,
        throttled: 5,
        ..CycleSummary::default()
    });
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);

    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        r#"berth_watch_heals_total{class="instance_missing",action="replace",result="succeeded"} 1"#,
        r#"berth_watch_heals_skipped_total{reason="budget"} 1"#,
        r#"berth_watch_heals_skipped_total{reason="window"} 0"#,
        r#"berth_watch_reconciles_total{result="ok"} 1"#,
        r#"berth_watch_reconciles_total{result="error"} 1"#,
        r#"berth_watch_drifted_resources{class="instance_impaired"} 1"#,
        r#"berth_watch_events_total{event="heal_succeeded"} 1"#,
        "berth_watch_paused_resources 2",
        "berth_watch_quarantined_resources 0",
        "berth_watch_provider_throttled_total 5",
        "berth_watch_consecutive_errors 0",
        "berth_watch_reconcile_duration_seconds_count 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
    }
    assert!(text.contains("# TYPE berth_watch_last_success_timestamp_seconds gauge"), "{text}");
    assert_eq!(get(&format!("{base}/nothing")).await.0, 404);
    stop.cancel();
}

#[tokio::test]
async fn healthz_fails_when_no_cycle_ended_for_two_intervals() {
    let interval = Duration::from_millis(300);
    let metrics = Arc::new(Metrics::new());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), metrics.clone(), interval).await.unwrap();
    let url = format!("http://{}/healthz", server.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(server.serve(stop.clone()));
    // Right after a cycle it is alive. A check that took longer than two
    // intervals (a loaded machine) proves nothing, and is made again.
    loop {
        let t0 = Instant::now();
        metrics.cycle(&CycleSummary { ok: true, ..CycleSummary::default() });
        let (status, _) = get(&url).await;
        if t0.elapsed() < interval * 2 {
            assert_eq!(status, 200);
            break;
        }
    }
    tokio::time::sleep(interval * 2 + Duration::from_millis(200)).await;
    let (status, body) = get(&url).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no cycle ended"), "{body}");
    metrics.cycle(&CycleSummary { ok: false, ..CycleSummary::default() });
    // A failed cycle is still the loop running.
    loop {
        let t0 = Instant::now();
        metrics.cycle(&CycleSummary { ok: false, ..CycleSummary::default() });
        let (status, _) = get(&url).await;
        if t0.elapsed() < interval * 2 {
            assert_eq!(status, 200);
            break;
        }
    }
    stop.cancel();
}

#[test]
fn validate_checks_notify_and_hook_blocks() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"resource "berth_data" "x" { input = "a" }

notify "webhook" {
  url    = "ftp://hooks.example/T/SECRET"
  events = ["heal_succeded"]
}

notify "webhook" {
  url    = "https://hooks.example/ok"
  format = "xml"
}

notify "pager" {
  url = "https://hooks.example/ok"
}

hook "on_replaced" {
  command = "true"
}

hook "on_replace" {
  command = 3
  timeout = "soon"
}
"#,
    );
    let r = w.run(&["validate"]);
    r.assert_code(1);
    let out = format!("{}{}", r.stdout, r.stderr);
    for want in [
        "main.hcl:4:12: `url` must start with `https://` or `http://`, not `ftp:`",
        "main.hcl:5:12: unknown event `heal_succeded`",
        "did you mean `heal_succeeded`?",
        "main.hcl:10:12: unknown notification format `xml` (expected `json` or `slack`)",
        "main.hcl:13:1: unknown notifier `pager` (expected `webhook` or `slack`)",
        "main.hcl:17:1: unknown hook `on_replaced` (expected `on_replace`)",
        "main.hcl:22:13: `command` is a list of strings",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }

    let w = Work::new();
    w.write(
        "main.hcl",
        r#"variable "alerts_url" {
  type      = string
  sensitive = true
}
resource "berth_data" "x" { input = "a" }
notify "slack" {
  url    = var.alerts_url
  events = ["heal_succeeded", "heal_failed", "quarantined"]
}
notify "webhook" {
  url    = "https://hooks.example/berth"
  secret = "k"
}
hook "on_replace" {
  command     = ["kamal", "setup", "-d", "production"]
  timeout     = "15m"
  known_hosts = "~/.ssh/known_hosts"
}
"#,
    );
    w.run(&["validate"]).assert_ok();
    // Nothing of it changes a plan or an apply without replacements, and
    // the most verbose logs do not show the URL.
    let token = "T0KEN-in-the-path-77aa";
    let r: support::cli::Run = w
        .cmd(&["apply", "--auto-approve"])
        .env("BERTH_VAR_alerts_url", format!("https://hooks.example/services/{token}"))
        .env("BERTH_LOG", "trace")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap()
        .into();
    r.assert_ok();
    assert!(!r.stderr.contains(token) && !r.stdout.contains(token), "{}{}", r.stdout, r.stderr);

    // A `notify` block sees variables only, and declared ones.
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"resource "berth_data" "x" { input = "a" }
notify "webhook" {
  url    = var.hook_url
  secret = berth_data.x.output
}
"#,
    );
    let r = w.run(&["validate"]);
    r.assert_code(1);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("main.hcl:3:12: no variable `hook_url` is declared"), "{out}");
    assert!(out.contains("main.hcl:4:12: `berth_data.x` cannot be used in a `notify` block"), "{out}");
}
