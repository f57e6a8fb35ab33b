//! A fault-injecting HTTP proxy on loopback in front of a real moto, for the
//! throttling and flaky-API suite (`tests/it/faults.rs`).
//!
//! berth talks to the proxy as if it were AWS (`AWS_ENDPOINT_URL`). For each
//! request a seeded PRNG decides what happens: forward it to moto untouched;
//! answer the throttling error of the request's protocol (EC2 query:
//! `RequestLimitExceeded` with HTTP 503; Route53 REST-XML: `Throttling` with
//! HTTP 400); answer a bare HTTP 503; or drop the connection without an
//! answer. Rules can also answer a *permanent* error (`UnauthorizedOperation`,
//! `InvalidParameterValue`, ...) to every request a predicate picks out, such
//! as the RunInstances of one address, and a rule can let chosen writes land
//! and then drop their answer, once each: the case a client must recognise
//! its own write when the retry meets it. Everything injected is counted, so
//! a test can show that faults really happened.
//!
//! Faults are decided first. What is not faulted goes through the strict
//! AWS layer ([`super::strict`]) to moto: [`FaultProxy::start`] runs with
//! every strict rule off (answers come from moto as they are), and
//! [`FaultProxy::start_layered`] with the rules given, which is how
//! [`super::aws::Aws`] serves every AWS suite.
//!
//! The seed is printed; `BERTH_FAULT_SEED=N` repeats a run's decisions (the
//! order of concurrent requests still varies from run to run).

use super::strict::{Decision, Outcome, Rules, Strict};
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server, StatusCode};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The API a request belongs to, from its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// EC2's query protocol: a form body with `Action=...`.
    Ec2,
    /// Route53's REST-XML protocol: paths under `/2013-04-01/`.
    Route53,
    /// Elastic Load Balancing v2: the query protocol, `Version=2015-12-01`.
    Elb,
    Other,
}

/// One request as the rules see it.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: Service,
    /// `RunInstances` for EC2; for Route53 the method and the path with ids
    /// left out (`POST hostedzone/rrset`).
    pub action: String,
    pub method: String,
    pub path: String,
    /// EC2's form parameters, decoded, in order.
    pub params: Vec<(String, String)>,
    pub body: String,
    /// `amz-sdk-invocation-id`: the same for every attempt of one SDK call.
    pub invocation: Option<String>,
}

impl Call {
    /// Whether the call only reads. A read may be dropped after moto has
    /// answered it; a write may not (see [`Fault::DropAfter`]).
    pub fn read_only(&self) -> bool {
        match self.service {
            Service::Ec2 | Service::Elb => ["Describe", "Get", "List"].iter().any(|p| self.action.starts_with(p)),
            Service::Route53 | Service::Other => self.method == "GET" || self.method == "HEAD",
        }
    }

    /// The value of EC2 form parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether an EC2 call tags what it creates with `key` = `value`
    /// (`TagSpecification.N.Tag.M.Key/Value`).
    pub fn has_tag(&self, key: &str, value: &str) -> bool {
        self.params.iter().any(|(k, v)| {
            v == key
                && k.starts_with("TagSpecification.")
                && k.ends_with(".Key")
                && self.param(&format!("{}.Value", &k[..k.len() - 4])) == Some(value)
        })
    }
}

/// What the proxy did with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The service's own throttling error.
    Throttle,
    /// A bare HTTP 503 with an empty body.
    Unavailable,
    /// The connection closed before the request reached moto.
    DropBefore,
    /// The connection closed after moto had carried out the request, before
    /// its answer reached berth. Only ever done to reads by chance; writes
    /// lose their answers through [`LandThenDrop`] rules, or the strict
    /// layer's [`Rule::LostCreateAnswers`](super::strict::Rule).
    DropAfter,
    /// A rule's permanent error.
    Permanent,
    /// A [`LandThenDrop`] rule: the write reached moto, its answer did not
    /// reach berth.
    Landed,
}

/// A permanent error for the requests a predicate picks out.
#[derive(Clone)]
pub struct Permanent {
    pub matches: Arc<dyn Fn(&Call) -> bool + Send + Sync>,
    /// `UnauthorizedOperation`, `InvalidParameterValue`, `InvalidInput`, ...
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl Permanent {
    pub fn new(
        code: &str,
        status: u16,
        message: &str,
        matches: impl Fn(&Call) -> bool + Send + Sync + 'static,
    ) -> Self {
        Permanent { matches: Arc::new(matches), code: code.into(), message: message.into(), status }
    }
}

/// Drops the answer to the first attempt of the first `times` calls a
/// predicate picks out, after moto has carried them out. Unlike the random drops this is done to
/// writes, so use it only for writes whose retry moto answers as AWS does
/// (a Route53 CREATE of a record that now exists: `InvalidChangeBatch`).
#[derive(Clone)]
pub struct LandThenDrop {
    pub matches: Arc<dyn Fn(&Call) -> bool + Send + Sync>,
    pub times: Arc<std::sync::atomic::AtomicU32>,
    /// Invocation ids already dropped once: their retries go through.
    done: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl LandThenDrop {
    pub fn new(times: u32, matches: impl Fn(&Call) -> bool + Send + Sync + 'static) -> Self {
        LandThenDrop { matches: Arc::new(matches), times: Arc::new(times.into()), done: Arc::default() }
    }
}

/// How often each kind of fault happens. The shares apply per request and
/// are tried in this order; the rest is forwarded.
#[derive(Clone)]
pub struct Faults {
    pub seed: u64,
    pub throttle: f64,
    pub unavailable: f64,
    pub drop: f64,
    /// At most this many attempts of one SDK call (one invocation id) are
    /// faulted in a row; then the next attempt is forwarded. A throttled API
    /// answers in the end, and the suite tests berth's retrying, not the odds
    /// of nine coin flips in a row. Kept well under berth's attempts, so a
    /// client that gives up early still fails.
    pub max_faults_per_call: u32,
    /// Kinds injected once each, on the first calls, before chance decides:
    /// so a short run still meets every kind and the test can say so.
    pub first: Vec<Fault>,
    pub permanent: Vec<Permanent>,
    pub land_then_drop: Vec<LandThenDrop>,
}

impl Faults {
    /// No random faults; the seed from `BERTH_FAULT_SEED` or fresh.
    pub fn none() -> Faults {
        let seed = std::env::var("BERTH_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        Faults {
            seed,
            throttle: 0.0,
            unavailable: 0.0,
            drop: 0.0,
            max_faults_per_call: 4,
            first: Vec::new(),
            permanent: Vec::new(),
            land_then_drop: Vec::new(),
        }
    }

    /// `share` of all requests faulted: half throttled, a quarter bare
    /// 503s, a quarter dropped; every kind at least once.
    pub fn flaky(share: f64) -> Faults {
        Faults {
            throttle: share / 2.0,
            unavailable: share / 4.0,
            drop: share / 4.0,
            first: vec![Fault::Throttle, Fault::Unavailable, Fault::DropBefore, Fault::DropAfter],
            ..Faults::none()
        }
    }

    pub fn with_permanent(mut self, p: Permanent) -> Faults {
        self.permanent.push(p);
        self
    }

    pub fn with_land_then_drop(mut self, rule: LandThenDrop) -> Faults {
        self.land_then_drop.push(rule);
        self
    }
}

/// What the proxy has done so far.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub forwarded: u64,
    /// Faults by kind.
    pub faults: BTreeMap<Fault, u64>,
    /// Faults by `service action`, for failure messages.
    pub by_action: BTreeMap<String, u64>,
    /// The strict layer's decisions by kind.
    pub strict: BTreeMap<Decision, u64>,
    /// The strict layer's decisions by `decision action`.
    pub strict_by_action: BTreeMap<String, u64>,
}

impl Stats {
    pub fn count(&self, f: Fault) -> u64 {
        self.faults.get(&f).copied().unwrap_or(0)
    }
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
    /// How often the strict layer made decision `d`.
    pub fn decided(&self, d: Decision) -> u64 {
        self.strict.get(&d).copied().unwrap_or(0)
    }
}

/// SplitMix64: small, seedable, and the same on every platform.
pub struct Prng(pub u64);

impl Prng {
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Shared {
    strict: Strict,
    faults: Mutex<Faults>,
    rng: Mutex<Prng>,
    /// What is left of [`Faults::first`].
    first: Mutex<Vec<Fault>>,
    stats: Mutex<Stats>,
    /// Faults in a row per invocation id.
    streaks: Mutex<BTreeMap<String, u32>>,
    request_ids: AtomicU64,
    /// While set, nothing is faulted (the strict rules still apply).
    paused: std::sync::atomic::AtomicBool,
}

/// The running proxy; stopped when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give it to berth as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    pub seed: u64,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (moto's endpoint), on its own
    /// runtime so it serves while the test blocks on a berth process, with
    /// every strict rule off.
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        FaultProxy::start_layered(upstream, faults, Rules::none())
    }

    /// Starts a proxy whose unfaulted requests go through the strict layer
    /// with `rules`.
    pub fn start_layered(upstream: &str, faults: Faults, rules: Rules) -> FaultProxy {
        let seed = faults.seed;
        if faults.throttle + faults.unavailable + faults.drop > 0.0 || !faults.first.is_empty() {
            eprintln!("fault proxy: seed {seed} (BERTH_FAULT_SEED={seed} repeats its decisions)");
        }
        if !rules.on.is_empty() {
            eprintln!("strict AWS layer: {} (BERTH_STRICT_SEED={} repeats its delays)", rules.describe(), rules.seed);
        }
        let shared = Arc::new(Shared {
            strict: Strict::new(upstream, rules),
            rng: Mutex::new(Prng(seed)),
            first: Mutex::new(faults.first.clone()),
            faults: Mutex::new(faults),
            stats: Mutex::default(),
            streaks: Mutex::default(),
            paused: Default::default(),
            request_ids: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("start the proxy's runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let s = shared.clone();
        runtime.spawn(async move {
            let make = make_service_fn(move |_conn| {
                let s = s.clone();
                async move { Ok::<_, Infallible>(service_fn(move |req| handle(s.clone(), req))) }
            });
            let server = Server::from_tcp(listener).expect("serve the proxy").http1_only(true).serve(make);
            if let Err(e) = server.await {
                eprintln!("fault proxy stopped: {e}");
            }
        });
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), seed, shared, runtime: Some(runtime) }
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.stats.lock().unwrap().clone();
        let strict = self.shared.strict.stats();
        stats.strict = strict.decisions;
        stats.strict_by_action = strict.by_action;
        stats
    }

    /// The strict layer's rules.
    pub fn rules(&self) -> &Rules {
        &self.shared.strict.rules
    }

    /// The strict layer, for its test controls ([`Strict::simulate_status`]).
    pub fn strict(&self) -> &Strict {
        &self.shared.strict
    }

    /// Injects other faults from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.first.lock().unwrap() = faults.first.clone();
        *self.shared.faults.lock().unwrap() = faults;
    }

    /// Stops or resumes injecting faults; the strict rules keep applying,
    /// with what they remember.
    pub fn pause_faults(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
    }

    /// Forgets the strict layer's state and every count, as when moto is reset.
    pub fn reset(&self) {
        self.shared.strict.reset();
        *self.shared.stats.lock().unwrap() = Stats::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Dropping the connection: hyper closes it without an answer when the
/// service fails.
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}
impl std::error::Error for Dropped {}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn classify(method: &str, path: &str, body: &str, invocation: Option<String>) -> Call {
    let mut call = Call {
        service: Service::Other,
        action: String::new(),
        method: method.to_string(),
        path: path.to_string(),
        params: Vec::new(),
        body: body.to_string(),
        invocation,
    };
    if let Some(rest) = path.strip_prefix("/2013-04-01/") {
        call.service = Service::Route53;
        // `hostedzone/Z123/rrset/` -> `hostedzone/rrset`: the words, not the ids.
        let words: Vec<&str> =
            rest.split(['/', '?']).enumerate().filter(|(i, w)| !w.is_empty() && i % 2 == 0).map(|(_, w)| w).collect();
        call.action = format!("{method} {}", words.join("/"));
    } else if method == "POST" && body.contains("Action=") {
        call.service = Service::Ec2;
        call.params = body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        call.action = call.param("Action").unwrap_or_default().to_string();
        if call.param("Version") == Some("2015-12-01") {
            call.service = Service::Elb;
        }
    } else {
        call.action = format!("{method} {path}");
    }
    call
}

fn error_response(call: &Call, status: u16, code: &str, message: &str, request_id: &str) -> Response<Body> {
    let body = match call.service {
        Service::Route53 => format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>{request_id}</RequestId></ErrorResponse>"
        ),
        Service::Elb => format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
             <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>{request_id}</RequestId></ErrorResponse>"
        ),
        Service::Ec2 | Service::Other => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/xml")
        .header("x-amzn-requestid", request_id)
        .body(Body::from(body))
        .expect("a valid error response")
}

impl Shared {
    /// Picks the fault for one request, or `None` to forward it.
    fn decide(&self, call: &Call) -> Option<Fault> {
        if self.paused.load(Ordering::SeqCst) {
            return None;
        }
        let faults = self.faults.lock().unwrap().clone();
        if faults.permanent.iter().any(|p| (p.matches)(call)) {
            return Some(Fault::Permanent);
        }
        for rule in &faults.land_then_drop {
            let take = |n: u32| n.checked_sub(1);
            let id = call.invocation.clone().unwrap_or_default();
            if (rule.matches)(call)
                && !rule.done.lock().unwrap().contains(&id)
                && rule.times.fetch_update(Ordering::SeqCst, Ordering::SeqCst, take).is_ok()
            {
                rule.done.lock().unwrap().insert(id);
                return Some(Fault::Landed);
            }
        }
        let f = &faults;
        let x = self.rng.lock().unwrap().next_f64();
        let mut fault = if x < f.throttle {
            Some(Fault::Throttle)
        } else if x < f.throttle + f.unavailable {
            Some(Fault::Unavailable)
        } else if x < f.throttle + f.unavailable + f.drop {
            Some(if call.read_only() && x < f.throttle + f.unavailable + f.drop / 2.0 {
                Fault::DropAfter
            } else {
                Fault::DropBefore
            })
        } else {
            None
        };
        let mut streaks = self.streaks.lock().unwrap();
        let streak = streaks.entry(call.invocation.clone().unwrap_or_default()).or_default();
        // The guaranteed kinds go to first attempts, one call each.
        let mut first = self.first.lock().unwrap();
        if *streak == 0
            && let Some(i) = first.iter().position(|k| *k != Fault::DropAfter || call.read_only())
        {
            fault = Some(first.remove(i));
        }
        if call.invocation.is_some() {
            if fault.is_some() && *streak >= f.max_faults_per_call {
                fault = None;
            }
            *streak = if fault.is_some() { *streak + 1 } else { 0 };
        }
        fault
    }

    fn count(&self, call: &Call, fault: Option<Fault>) {
        let mut s = self.stats.lock().unwrap();
        match fault {
            None => s.forwarded += 1,
            Some(f) => {
                *s.faults.entry(f).or_default() += 1;
                *s.by_action.entry(format!("{:?} {}", call.service, call.action)).or_default() += 1;
            }
        }
    }
}

/// Hands a request to the strict layer (and moto) in a task of its own: when
/// the client goes away (berth killed mid-call), hyper drops this service
/// future, but a request that reached moto must still be carried through,
/// as on AWS (its client token remembered, its new objects recorded).
async fn pass(s: &Arc<Shared>, call: Call, parts: hyper::http::request::Parts, body: hyper::body::Bytes) -> Outcome {
    let s = s.clone();
    tokio::spawn(async move { s.strict.handle(&call, &parts, body).await })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

async fn handle(
    s: Arc<Shared>,
    req: Request<Body>,
) -> Result<Response<Body>, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = req.into_parts();
    let body = hyper::body::to_bytes(body).await?;
    let invocation = parts.headers.get("amz-sdk-invocation-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let call = classify(parts.method.as_str(), path, &String::from_utf8_lossy(&body), invocation);
    let fault = s.decide(&call);
    s.count(&call, fault);
    let request_id = format!("fault-proxy-{}", s.request_ids.fetch_add(1, Ordering::Relaxed));
    match fault {
        None => match pass(&s, call, parts, body).await {
            Outcome::Answer(reply) => Ok(reply.into_response()),
            Outcome::Drop => Err(Box::new(Dropped)),
        },
        Some(Fault::Throttle) => Ok(match call.service {
            Service::Route53 => error_response(&call, 400, "Throttling", "Rate exceeded", &request_id),
            _ => error_response(&call, 503, "RequestLimitExceeded", "Request limit exceeded.", &request_id),
        }),
        Some(Fault::Unavailable) => Ok(Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::empty())
            .expect("a valid response")),
        Some(Fault::DropBefore) => Err(Box::new(Dropped)),
        Some(Fault::DropAfter | Fault::Landed) => {
            let _ = pass(&s, call, parts, body).await;
            Err(Box::new(Dropped))
        }
        Some(Fault::Permanent) => {
            let faults = s.faults.lock().unwrap().clone();
            let rule = faults.permanent.iter().find(|p| (p.matches)(&call)).expect("a matching rule");
            Ok(error_response(&call, rule.status, &rule.code, &rule.message, &request_id))
        }
    }
}
