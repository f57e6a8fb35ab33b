//! Notifiers: a [`Sink`] per `notify` block, which POSTs the events it is
//! given to a webhook, as the versioned JSON of [`WatchEvent`] or as a
//! Slack message.
//!
//! The loop must never wait for a receiver: [`Notifier::event`] renders the
//! body and queues it (a bounded queue: when full, the oldest delivery is
//! dropped and counted), and one background task per notifier delivers in
//! order, retrying with exponential backoff (`5xx`, `408`, `429`, timeouts
//! and connection errors; any other `4xx` is final). A JSON body is signed
//! with `X-Berth-Signature: sha256=<hex HMAC-SHA256 of the exact body
//! bytes>` when the block has a `secret`.
//!
//! A webhook URL is a credential (Slack's path is its token) and so is the
//! secret: neither is ever written to a log, a `Debug` output or an error.
//! Messages name a notifier by its scheme and host only ([`redact_url`]),
//! and transport errors are scrubbed of both before they are logged.

use super::event::{EventKind, Severity, Sink, WatchEvent};
use crate::addr::ModulePath;
use crate::config::eval::{self, Ctx, Scope};
use crate::config::refs::Target;
use crate::config::{Expr, NotifyDecl, NotifyFormat};
use crate::diag::{Diagnostic, Span};
use crate::value::Value;
use hmac::{KeyInit, Mac};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Berth-Signature";
/// The header carrying the event's name (`heal_succeeded`).
pub const EVENT_HEADER: &str = "X-Berth-Event";
/// The header carrying a delivery's id: the same on every retry of one
/// event, so a receiver can drop duplicates.
pub const DELIVERY_HEADER: &str = "X-Berth-Delivery";

/// How a failed delivery is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long one attempt may take.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    /// About four minutes of retries (2 s, 4 s, ... capped at 2 min): a
    /// receiver restarting is waited for, a dead one is given up on before
    /// the queue fills.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(120),
            request_timeout: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry): doubling,
    /// capped, with up to a tenth of jitter so that notifiers restarted
    /// together do not retry in step.
    pub fn delay(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(30);
        let base = self.initial_delay.saturating_mul(1u32 << doublings).min(self.max_delay);
        base + base.mul_f64(rand::random::<f64>() / 10.0)
    }
}

/// A notifier's settings, evaluated. `Debug` shows neither the URL's path
/// nor the secret.
#[derive(Clone)]
pub struct NotifierConfig {
    /// What messages call it: `webhook https://hooks.example.com/…`.
    pub label: String,
    url: String,
    secret: Option<Vec<u8>>,
    /// Events sent; empty for all.
    pub events: Vec<EventKind>,
    pub format: NotifyFormat,
    pub retry: RetryPolicy,
    /// Deliveries waiting at most; the oldest goes when one more comes.
    pub capacity: usize,
}

impl fmt::Debug for NotifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierConfig")
            .field("label", &self.label)
            .field("url", &"[redacted]")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("events", &self.events)
            .field("format", &self.format)
            .field("retry", &self.retry)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Why a notifier cannot be set up. Never holds the URL or the secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier `{label}`: `url` {why}")]
    BadUrl { label: String, why: String },
    #[error("notifiers need a Tokio runtime to deliver from")]
    NoRuntime,
    #[error("notifiers: cannot make an HTTP client: {0}")]
    Client(String),
}

impl NotifierConfig {
    /// A notifier of `format` posting to `url`, signing with `secret`.
    pub fn new(
        kind: &str,
        url: &str,
        secret: Option<&str>,
        events: Vec<EventKind>,
        format: NotifyFormat,
    ) -> Result<NotifierConfig, NotifyError> {
        let label = format!("{kind} {}", redact_url(url));
        let parsed = reqwest::Url::parse(url).map_err(|e| NotifyError::BadUrl { label: label.clone(), why: format!("is not a valid URL: {e}") })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
            return Err(NotifyError::BadUrl { label, why: "must be an `https://` or `http://` URL with a host".into() });
        }
        Ok(NotifierConfig {
            label,
            url: url.to_string(),
            secret: secret.filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()),
            events,
            format,
            retry: RetryPolicy::default(),
            capacity: 1000,
        })
    }

    /// Evaluates a `notify` block: `url` and `secret` may name root
    /// variables (`var.alerts_url`), whose values come from `vars`.
    pub fn from_decl(decl: &NotifyDecl, vars: &BTreeMap<String, Value>, dir: &Path) -> Result<NotifierConfig, Diagnostic> {
        let url = eval_string(&decl.url, "url", vars, dir)?;
        let secret = match &decl.secret {
            Some(e) => Some(eval_string(e, "secret", vars, dir)?),
            None => None,
        };
        let events = decl.events.iter().filter_map(|e| EventKind::parse(e)).collect();
        NotifierConfig::new(&decl.kind, &url, secret.as_deref(), events, decl.format)
            .map_err(|e| Diagnostic::error(e.to_string()).at(decl.url.span()))
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    /// `text` without the URL, its path and query, or the secret.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.url, "[redacted]");
        if let Ok(u) = reqwest::Url::parse(&self.url) {
            let path = u.path();
            if path.len() > 1 {
                out = out.replace(path, "/[redacted]");
            }
            if let Some(q) = u.query().filter(|q| !q.is_empty()) {
                out = out.replace(q, "[redacted]");
            }
        }
        if let Some(s) = self.secret.as_deref().and_then(|s| std::str::from_utf8(s).ok()).filter(|s| !s.is_empty()) {
            out = out.replace(s, "[redacted]");
        }
        out
    }
}

/// Starts a notifier for each of the configuration's `notify` blocks
/// (`config.root().notifiers`), with the root variables' values. Every
/// problem is reported, none of the notifiers starts if there is one.
pub fn start_all(decls: &[NotifyDecl], vars: &BTreeMap<String, Value>, dir: &Path) -> Result<Vec<Arc<Notifier>>, crate::diag::Diagnostics> {
    let mut diags = crate::diag::Diagnostics::new();
    let mut configs = Vec::new();
    for d in decls {
        match NotifierConfig::from_decl(d, vars, dir) {
            Ok(c) => configs.push(c),
            Err(e) => diags.push(e),
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    configs.into_iter().map(|c| Notifier::start(c).map_err(|e| Diagnostic::error(e.to_string()).into())).collect()
}

/// Only variables: what a `notify` block's `url` and `secret` may name.
struct Vars<'a>(&'a BTreeMap<String, Value>);

impl Scope for Vars<'_> {
    fn lookup(&self, _: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic> {
        match target {
            Target::Var(name) => {
                self.0.get(name).cloned().ok_or_else(|| Diagnostic::error(format!("no variable `{name}` is declared")).at(span.cloned()))
            }
            _ => Err(Diagnostic::error("a `notify` block may only refer to variables (`var.NAME`)").at(span.cloned())),
        }
    }
}

fn eval_string(e: &Expr, what: &str, vars: &BTreeMap<String, Value>, dir: &Path) -> Result<String, Diagnostic> {
    let module = ModulePath::new();
    let scope = Vars(vars);
    let ctx = Ctx::new(&scope, &module, dir);
    let v = eval::eval(e, &ctx)?;
    match v.into_unmarked().0 {
        Value::String(s) => Ok(s),
        other => Err(Diagnostic::error(format!("`{what}` must be a string, not {}", other.type_name())).at(e.span())),
    }
}

/// A URL as messages may show it: its scheme, host and port, never its
/// user, path or query (a Slack webhook's path is its token).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() { "/…" } else { "" };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "[unparsable URL]".to_string(),
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `key`, as
/// [`SIGNATURE_HEADER`] carries it.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body a notifier of `format` sends for `ev`.
pub fn render(format: NotifyFormat, ev: &WatchEvent) -> Vec<u8> {
    match format {
        NotifyFormat::Json => serde_json::to_vec(ev).unwrap_or_default(),
        NotifyFormat::Slack => serde_json::to_vec(&serde_json::json!({ "text": slack_text(ev) })).unwrap_or_default(),
    }
}

/// A Slack message: what happened to which host (role, destination, DNS
/// name), what berth did, the DNS caveat when a record moved, and the one
/// command that undoes, releases or approves.
pub fn slack_text(ev: &WatchEvent) -> String {
    let icon = match ev.severity {
        Severity::Info => ":white_check_mark:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let what = ev.event.as_str().replace('_', " ");
    let mut head = format!("{icon} *berth watch: {what}*");
    if let Some(a) = &ev.address {
        head.push_str(&format!(" `{a}`"));
    }
    let mut lines = vec![head, ev.message.clone()];
    let mut facts = Vec::new();
    match (&ev.role, &ev.destination) {
        (Some(r), Some(d)) => facts.push(format!("*Role:* {r} ({d})")),
        (Some(r), None) => facts.push(format!("*Role:* {r}")),
        (None, Some(d)) => facts.push(format!("*Destination:* {d}")),
        (None, None) => {}
    }
    if let Some(id) = &ev.id {
        facts.push(format!("*Host:* `{id}`"));
    }
    if let Some(n) = &ev.name {
        facts.push(format!("*DNS:* `{n}`"));
    }
    if let Some(c) = ev.class {
        facts.push(format!("*Drift:* {}", c.as_str().replace('_', " ")));
    }
    if let Some(r) = ev.reason {
        facts.push(format!("*Skipped:* {}", r.as_str().replace('_', " ")));
    }
    if let Some(a) = &ev.action {
        facts.push(format!("*Action:* {a}"));
    }
    if let Some(n) = ev.attempt {
        facts.push(format!("*Attempt:* {n}"));
    }
    if !facts.is_empty() {
        lines.push(facts.join("  |  "));
    }
    let moved_dns = ev.name.is_some() && matches!(ev.event, EventKind::HealSucceeded) && ev.action.as_deref() != Some("none");
    if moved_dns {
        lines.push(
            "_DNS caveat: resolvers may keep answering with the old address until the record's TTL runs out._".to_string(),
        );
    }
    if let Some(cmd) = &ev.command {
        lines.push(format!("To undo or approve: `{cmd}`"));
    }
    lines.join("\n")
}

/// One event, rendered, waiting to go.
struct Delivery {
    event: EventKind,
    id: String,
    body: Vec<u8>,
}

struct Inner {
    cfg: NotifierConfig,
    queue: Mutex<VecDeque<Delivery>>,
    wake: Notify,
    /// Signalled whenever the queue is empty and nothing is in flight.
    idle: Notify,
    busy: AtomicBool,
    dropped: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    attempts: AtomicU64,
    waiting: AtomicUsize,
}

/// A `notify` block at work: a [`Sink`] that queues, and a task that
/// delivers. Dropping it stops the task (what is queued is lost: call
/// [`Notifier::flush`] first to wait for it).
pub struct Notifier {
    inner: Arc<Inner>,
    _stop: DropGuard,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").field("label", &self.inner.cfg.label).finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts the delivery task on the current Tokio runtime.
    pub fn start(cfg: NotifierConfig) -> Result<Arc<Notifier>, NotifyError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        // rustls with aws-lc (the AWS clients' TLS stack), proxies from
        // `HTTPS_PROXY`/`NO_PROXY`; no redirects: a webhook that moved
        // is a configuration to fix, not a place to send signed events.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        let inner = Arc::new(Inner {
            cfg,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            idle: Notify::new(),
            busy: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let task = deliver_loop(inner.clone(), client, stop.clone());
        handle.spawn(task);
        Ok(Arc::new(Notifier { inner, _stop: stop.drop_guard() }))
    }

    pub fn label(&self) -> &str {
        &self.inner.cfg.label
    }

    /// Deliveries dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Deliveries a receiver accepted.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Deliveries given up on (a final status, or every retry failed).
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Requests sent, retries included.
    pub fn attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::Relaxed)
    }

    /// Deliveries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Waits until everything queued so far was delivered or given up on.
    pub async fn flush(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.waiting.load(Ordering::SeqCst) == 0 && !self.inner.busy.load(Ordering::SeqCst) {
                return;
            }
            idle.await;
        }
    }
}

impl Sink for Notifier {
    fn event(&self, ev: &WatchEvent) {
        let cfg = &self.inner.cfg;
        if !cfg.wants(ev.event) {
            return;
        }
        let delivery = Delivery { event: ev.event, id: uuid::Uuid::new_v4().to_string(), body: render(cfg.format, ev) };
        let dropped = {
            let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.push_back(delivery);
            let mut dropped = 0;
            while q.len() > cfg.capacity {
                q.pop_front();
                dropped += 1;
            }
            self.inner.waiting.store(q.len(), Ordering::SeqCst);
            dropped
        };
        if dropped > 0 {
            let before = self.inner.dropped.fetch_add(dropped, Ordering::Relaxed);
            let total = before + dropped;
            // The first drop, then one line per hundred: a dead receiver
            // must not flood the log.
            if before == 0 || before / 100 != total / 100 {
                tracing::warn!(
                    "notifier `{}`: queue full ({} waiting): dropped the oldest event ({total} dropped so far)",
                    cfg.label,
                    cfg.capacity
                );
            }
        }
        self.inner.wake.notify_one();
    }

    fn cycle(&self, _: &super::event::CycleSummary) {}
}

/// The notifier's task: takes deliveries in order and sends each until it
/// lands or its retries run out.
async fn deliver_loop(inner: Arc<Inner>, client: reqwest::Client, stop: CancellationToken) {
    loop {
        let next = {
            let mut q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            let d = q.pop_front();
            if d.is_some() {
                inner.busy.store(true, Ordering::SeqCst);
            }
            inner.waiting.store(q.len(), Ordering::SeqCst);
            d
        };
        let Some(d) = next else {
            inner.busy.store(false, Ordering::SeqCst);
            inner.idle.notify_waiters();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = inner.wake.notified() => continue,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = deliver(&inner, &client, &d) => {}
        }
        inner.busy.store(false, Ordering::SeqCst);
    }
}

/// What one attempt came to.
enum Attempt {
    Ok,
    /// Worth another try.
    Retry(String),
    /// Not: the receiver refused the request itself.
    Final(String),
}

async fn deliver(inner: &Inner, client: &reqwest::Client, d: &Delivery) {
    let cfg = &inner.cfg;
    let mut attempt = 1;
    loop {
        inner.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(cfg.retry.request_timeout, request(client, cfg, d).send()).await {
            Err(_) => Attempt::Retry(format!("no answer within {}", humantime::format_duration(cfg.retry.request_timeout))),
            // reqwest names the URL in its errors: never shown.
            Ok(Err(e)) => Attempt::Retry(cfg.scrub(&error_chain(&e.without_url()))),
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Attempt::Ok,
                    408 | 429 | 500..=599 => Attempt::Retry(format!("status {status}")),
                    _ => Attempt::Final(format!("status {status}")),
                }
            }
        };
        match outcome {
            Attempt::Ok => {
                inner.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("notifier `{}`: delivered `{}` ({})", cfg.label, d.event.as_str(), d.id);
                return;
            }
            Attempt::Final(why) => {
                inner.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("notifier `{}`: `{}` refused ({why}); not retried", cfg.label, d.event.as_str());
                return;
            }
            Attempt::Retry(why) if attempt >= cfg.retry.max_attempts => {
                inner.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("notifier `{}`: gave up on `{}` after {attempt} attempt(s): {why}", cfg.label, d.event.as_str());
                return;
            }
            Attempt::Retry(why) => {
                attempt += 1;
                let wait = cfg.retry.delay(attempt);
                tracing::info!(
                    "notifier `{}`: `{}` not delivered ({why}); attempt {attempt} in {}",
                    cfg.label,
                    d.event.as_str(),
                    humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn request(client: &reqwest::Client, cfg: &NotifierConfig, d: &Delivery) -> reqwest::RequestBuilder {
    let mut req = client
        .post(cfg.url.as_str())
        .header("content-type", "application/json")
        .header(EVENT_HEADER, d.event.as_str())
        .header(DELIVERY_HEADER, d.id.as_str())
        .body(d.body.clone());
    if let Some(key) = &cfg.secret {
        req = req.header(SIGNATURE_HEADER, signature(key, &d.body));
    }
    req
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_shows_its_host_only() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T0/B0/XYZ"), "https://hooks.slack.com/…");
        assert_eq!(redact_url("http://user:pw@127.0.0.1:8080/hook?token=abc"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("https://example.com"), "https://example.com");
        assert_eq!(redact_url("not a url"), "[unparsable URL]");
    }

    #[test]
    fn debug_and_errors_hide_the_url_and_secret() {
        let cfg = NotifierConfig::new("webhook", "https://h.example/p/TOKEN123?k=QSECRET", Some("hmackey"), vec![], NotifyFormat::Json)
            .unwrap();
        let shown = format!("{cfg:?}");
        for secret in ["TOKEN123", "QSECRET", "hmackey"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let scrubbed = cfg.scrub("error sending to https://h.example/p/TOKEN123?k=QSECRET: hmackey /p/TOKEN123");
        for secret in ["TOKEN123", "QSECRET", "hmackey"] {
            assert!(!scrubbed.contains(secret), "{scrubbed}");
        }
        let err = NotifierConfig::new("webhook", "ftp://h.example/TOKEN123", None, vec![], NotifyFormat::Json).unwrap_err();
        assert!(!err.to_string().contains("TOKEN123"), "{err}");
    }

    #[tokio::test]
    async fn blocks_start_with_their_variables() {
        let cfg = crate::config::load_str(
            "main.hcl",
            "variable \"u\" {\n  type = string\n}\nnotify \"slack\" {\n  url    = var.u\n  events = [\"heal_failed\"]\n}\nnotify \"webhook\" {\n  url = \"https://h.example/x\"\n  secret = var.u\n}\n",
        )
        .unwrap();
        let decls = &cfg.root().notifiers;
        let vars = BTreeMap::from([("u".to_string(), Value::String("https://hooks.example/T/SECRET".into()).mark_paths(&[String::new()]))]);
        let started = start_all(decls, &vars, Path::new(".")).unwrap();
        assert_eq!(started.iter().map(|n| n.label()).collect::<Vec<_>>(), ["slack https://hooks.example/…", "webhook https://h.example/…"]);
        assert_eq!(started[0].inner.cfg.events, [EventKind::HealFailed]);
        assert_eq!(started[0].inner.cfg.format, NotifyFormat::Slack);
        assert!(started[1].inner.cfg.secret.is_some());
        let bad = BTreeMap::from([("u".to_string(), Value::String("ftp://h.example/T/SECRET".into()))]);
        let e = start_all(decls, &bad, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("must be an `https://` or `http://` URL") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy { initial_delay: Duration::from_secs(1), max_delay: Duration::from_secs(5), ..RetryPolicy::default() };
        let base = |n| {
            let d = p.delay(n);
            // Jitter adds at most a tenth.
            (d.as_millis() as f64 / 1.1).ceil() as u128..=d.as_millis()
        };
        assert!(base(2).contains(&1000));
        assert!(base(3).contains(&2000));
        assert!(base(4).contains(&4000));
        assert!(base(5).contains(&5000));
        assert!(base(40).contains(&5000));
    }

    #[test]
    fn slack_text_names_the_host_and_the_way_back() {
        let mut ev = WatchEvent::new(EventKind::HealSucceeded, Severity::Info, "replaced the impaired host");
        ev.address = Some("module.search.aws_instance.this".into());
        ev.role = Some("web".into());
        ev.destination = Some("production".into());
        ev.id = Some("i-0123".into());
        ev.name = Some("micro-search.internal".into());
        ev.action = Some("replace".into());
        ev.command = Some("berth watch pause module.search.aws_instance.this".into());
        let t = slack_text(&ev);
        for want in ["heal succeeded", "web (production)", "i-0123", "micro-search.internal", "replace", "TTL", "berth watch pause"] {
            assert!(t.contains(want), "{want}: {t}");
        }
    }
}
