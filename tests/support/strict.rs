//! The strict AWS layer: the part of the loopback proxy in front of moto
//! that enforces what AWS documents and moto does not.
//!
//! moto is lenient where AWS is strict. It ignores RunInstances'
//! `ClientToken` and Route53's `CallerReference`, applies a Route53 change
//! batch one change at a time, answers INSYNC at once, has no filter-value,
//! tag-count or rate limits, starts instances `running`, and is consistent
//! the moment it answers. A test that passes on bare moto proves little about
//! AWS. Every request that [`super::faultproxy`] does not fault comes here:
//! the rules below decide first, then moto answers, then the rules rewrite
//! the answer where AWS's would differ.
//!
//! Each rule is a few lines of state, can be switched off on its own
//! ([`Rules::without`]), and counts every decision it makes ([`Decision`]),
//! so a test can show that it happened. The AWS fact behind each rule is
//! named next to it; the rules never go beyond what AWS documents.
//!
//! | rule | what the layer does |
//! |---|---|
//! | [`Rule::Idempotency`] | EC2 `ClientToken`: the first answer is kept and returned again; other parameters: `IdempotentParameterMismatch`; a RunInstances whose instances are terminated: `IdempotentInstanceTerminated` |
//! | [`Rule::CallerReference`] | a Route53 `CallerReference` is never reusable: `HostedZoneAlreadyExists` |
//! | [`Rule::FilterLimit`] | more than 200 filter values in one EC2 call: `FilterLimitExceeded` |
//! | [`Rule::TagLimits`] | more than 50 tags on an EC2 resource: `TagLimitExceeded`; more than 10 AddTags or RemoveTagKeys in a Route53 ChangeTagsForResource: `InvalidInput` |
//! | [`Rule::AtomicBatches`] | a Route53 change batch is checked against the zone as a whole, all or nothing: `InvalidChangeBatch` |
//! | [`Rule::PendingChanges`] | Route53 changes are `PENDING` for the first polls (or, in latency mode, 30-60 s scaled) |
//! | [`Rule::EventualConsistency`] | an EC2 object just created is not found by the first requests that name it or list it |
//! | [`Rule::PendingInstances`] | instances are `pending` (no public address) while they boot, `stopping` and `shutting-down` on the way down |
//! | [`Rule::RateLimits`] | Route53: 5 requests per second per account (`Throttling`); EC2: AWS's token buckets when given ([`Ec2Rates`]) |
//! | [`Rule::LostCreateAnswers`] | the first attempt of each chosen create lands and its answer is lost |
//! | [`Rule::LoadBalancing`] | ELBv2: a create with a load balancer's or target group's name answers with the existing object for the same settings, `DuplicateLoadBalancerName`/`DuplicateTargetGroupName` for others; a second listener on a port: `DuplicateListener`; more than 20 ARNs in DescribeTags or DescribeLoadBalancers, or a `PageSize` outside 1-400: `ValidationError`; a target just registered is `initial` for the first health polls, a target deregistered is `draining` for the group's deregistration delay |
//!
//! Where moto is wrong rather than lenient, the layer answers as AWS does,
//! always ([`Strict::correct_moto`]): after ReplaceIamInstanceProfileAssociation
//! DescribeInstances shows the new profile (moto keeps showing the old one),
//! and a subnet's IPv6 association state is a plain string.
//!
//! Test controls, not rules: [`Strict::simulate_status`] makes
//! DescribeInstanceStatus report chosen instances as AWS reports a host
//! whose status checks fail or that AWS scheduled for retirement, which
//! moto never does (its checks always pass and it schedules nothing).
//!
//! Latency mode ([`Rules::latency`], `BERTH_STRICT_LATENCY_SCALE`) replaces
//! the test-speed delays with AWS's usual ones, scaled down: 30-60 s for an
//! instance to boot and for a Route53 change to be INSYNC.

use super::faultproxy::{Call, Prng, Service};
use super::xml::{self, Element};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Body, Client, Method, Request, Response, StatusCode};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One rule of the layer, to switch it off or on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Idempotency,
    CallerReference,
    FilterLimit,
    TagLimits,
    AtomicBatches,
    PendingChanges,
    EventualConsistency,
    PendingInstances,
    RateLimits,
    LostCreateAnswers,
    LoadBalancing,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::Idempotency,
        Rule::CallerReference,
        Rule::FilterLimit,
        Rule::TagLimits,
        Rule::AtomicBatches,
        Rule::PendingChanges,
        Rule::EventualConsistency,
        Rule::PendingInstances,
        Rule::RateLimits,
        Rule::LostCreateAnswers,
        Rule::LoadBalancing,
    ];

    /// The name `BERTH_STRICT_OFF` takes: `idempotency`, `pending-changes`, ...
    pub fn name(self) -> &'static str {
        match self {
            Rule::Idempotency => "idempotency",
            Rule::CallerReference => "caller-reference",
            Rule::FilterLimit => "filter-limit",
            Rule::TagLimits => "tag-limits",
            Rule::AtomicBatches => "atomic-batches",
            Rule::PendingChanges => "pending-changes",
            Rule::EventualConsistency => "eventual-consistency",
            Rule::PendingInstances => "pending-instances",
            Rule::RateLimits => "rate-limits",
            Rule::LostCreateAnswers => "lost-create-answers",
            Rule::LoadBalancing => "load-balancing",
        }
    }
}

/// What the layer did to one request, counted in the proxy's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// A repeated `ClientToken` with the same parameters: the first answer again.
    TokenReplayed,
    /// `IdempotentParameterMismatch`.
    TokenMismatch,
    /// `IdempotentInstanceTerminated`.
    TokenTerminated,
    /// `HostedZoneAlreadyExists` for a used `CallerReference`.
    CallerReferenceReused,
    /// `FilterLimitExceeded`.
    FilterLimitExceeded,
    /// `TagLimitExceeded` (EC2) or a Route53 tag change over 10 keys.
    TagLimitExceeded,
    /// A change batch refused as a whole (`InvalidChangeBatch`).
    BatchRefused,
    /// A change batch over 1000 records or 32,000 characters.
    BatchTooLarge,
    /// A GetChange answered `PENDING`.
    ChangePending,
    /// A new object not found (`*.NotFound`) or left out of a listing.
    NotYetVisible,
    /// An instance shown `pending`, `stopping` or `shutting-down`.
    InstanceInTransition,
    /// `Throttling` (Route53) or `RequestLimitExceeded` (EC2).
    Throttled,
    /// A create that landed and whose answer was dropped.
    AnswerLost,
    /// An ELBv2 create with a name in use and the same settings: the
    /// existing object, as AWS answers.
    ElbNameReturned,
    /// `DuplicateLoadBalancerName` or `DuplicateTargetGroupName`.
    ElbDuplicateName,
    /// Too many ARNs, or a page size out of range: `ValidationError`.
    ElbLimitExceeded,
    /// A target shown `initial` (registration in progress).
    TargetInitial,
    /// A target shown `draining` (deregistration in progress).
    TargetDraining,
}

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub capacity: f64,
    pub per_second: f64,
}

/// EC2's throttling, as AWS documents it ("Request throttling for the Amazon
/// EC2 API"): a token bucket per API action, sized by the action's category,
/// plus resource buckets for RunInstances and TerminateInstances counted in
/// instances.
#[derive(Debug, Clone, Copy)]
pub struct Ec2Rates {
    /// `Describe*` and other reads: 100 tokens, 20 a second.
    pub non_mutating: Bucket,
    /// Writes: 50 tokens, 5 a second.
    pub mutating: Bucket,
    /// Instances launched: 1000, 2 a second.
    pub run_instances: Bucket,
    /// Instances terminated: 1000, 20 a second.
    pub terminate_instances: Bucket,
}

impl Ec2Rates {
    /// AWS's default numbers.
    pub fn aws() -> Ec2Rates {
        Ec2Rates {
            non_mutating: Bucket { capacity: 100.0, per_second: 20.0 },
            mutating: Bucket { capacity: 50.0, per_second: 5.0 },
            run_instances: Bucket { capacity: 1000.0, per_second: 2.0 },
            terminate_instances: Bucket { capacity: 1000.0, per_second: 20.0 },
        }
    }

    /// Every bucket and rate times `f`: a small fleet meets the limits a
    /// large one would.
    pub fn scaled(self, f: f64) -> Ec2Rates {
        let s = |b: Bucket| Bucket { capacity: (b.capacity * f).max(1.0), per_second: b.per_second * f };
        Ec2Rates {
            non_mutating: s(self.non_mutating),
            mutating: s(self.mutating),
            run_instances: s(self.run_instances),
            terminate_instances: s(self.terminate_instances),
        }
    }
}

/// The creates [`Rule::LostCreateAnswers`] applies to by default.
pub const CREATES: &[&str] = &[
    "CreateVpc",
    "CreateSubnet",
    "CreateInternetGateway",
    "CreateRouteTable",
    "CreateRoute",
    "AssociateRouteTable",
    "AttachInternetGateway",
    "ImportKeyPair",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RunInstances",
    "AllocateAddress",
    "AssociateAddress",
    "CreateNatGateway",
    "CreateHostedZone",
    "ChangeResourceRecordSets",
    "CreateLoadBalancer",
    "CreateTargetGroup",
    "CreateListener",
];

/// Which rules are on and their numbers.
#[derive(Debug, Clone)]
pub struct Rules {
    pub on: BTreeSet<Rule>,
    /// [`Rule::FilterLimit`]: filter values allowed in one call.
    pub filter_values: usize,
    /// [`Rule::TagLimits`]: tags on one EC2 resource.
    pub ec2_tags: usize,
    /// [`Rule::TagLimits`]: AddTags or RemoveTagKeys in one Route53 call.
    pub route53_tag_changes: usize,
    /// [`Rule::PendingChanges`]: GetChange polls answered PENDING per change.
    pub pending_polls: u32,
    /// [`Rule::EventualConsistency`]: requests that do not see a new object.
    pub unseen_references: u32,
    /// [`Rule::PendingInstances`]: how long an instance boots.
    pub boot: Duration,
    /// [`Rule::PendingInstances`]: how long `stopping` and `shutting-down` last.
    pub wind_down: Duration,
    /// [`Rule::RateLimits`]: Route53's account-wide bucket (`None`: none).
    pub route53_rate: Option<Bucket>,
    /// [`Rule::RateLimits`]: EC2's buckets (`None`: none).
    pub ec2_rate: Option<Ec2Rates>,
    /// [`Rule::LostCreateAnswers`]: the actions whose first answer is lost.
    pub lost_creates: BTreeSet<String>,
    /// Latency mode: AWS's usual delays times this factor.
    pub latency: Option<f64>,
    pub seed: u64,
    /// [`Rule::LoadBalancing`]: health polls a new target is `initial` for.
    pub initial_polls: u32,
}

impl Rules {
    /// Everything off: a plain proxy.
    pub fn none() -> Rules {
        Rules {
            on: BTreeSet::new(),
            filter_values: 200,
            ec2_tags: 50,
            route53_tag_changes: 10,
            pending_polls: 1,
            unseen_references: 1,
            boot: Duration::from_millis(2500),
            wind_down: Duration::from_millis(1500),
            route53_rate: Some(Bucket { capacity: 5.0, per_second: 5.0 }),
            ec2_rate: None,
            lost_creates: CREATES.iter().map(|s| s.to_string()).collect(),
            latency: None,
            seed: 0,
            initial_polls: 2,
        }
    }

    /// The rules every AWS suite runs under: all of them but
    /// [`Rule::LostCreateAnswers`] (a fault, switched on by the suites that
    /// inject faults), at test speed: a change is PENDING for one poll, a new
    /// object is not seen by the first request that names it, an instance
    /// boots in 2.5 s, Route53 allows 5 requests a second and EC2 is not
    /// throttled. `BERTH_STRICT_LATENCY_SCALE=F` turns on latency mode,
    /// `BERTH_STRICT_SEED=N` fixes the random delays, and
    /// `BERTH_STRICT_OFF=rule,rule` switches rules off by name.
    pub fn test() -> Rules {
        let mut r = Rules::none();
        r.on = Rule::ALL.iter().copied().filter(|r| *r != Rule::LostCreateAnswers).collect();
        r.seed = std::env::var("BERTH_STRICT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
        if let Some(scale) = std::env::var("BERTH_STRICT_LATENCY_SCALE").ok().and_then(|s| s.parse::<f64>().ok()) {
            r.latency = Some(scale);
        }
        if let Ok(off) = std::env::var("BERTH_STRICT_OFF") {
            for name in off.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let rule = Rule::ALL.iter().find(|r| r.name() == name);
                let rule = rule.unwrap_or_else(|| panic!("BERTH_STRICT_OFF: no rule `{name}`"));
                r.on.remove(rule);
            }
        }
        r
    }

    pub fn without(mut self, rule: Rule) -> Rules {
        self.on.remove(&rule);
        self
    }

    pub fn with(mut self, rule: Rule) -> Rules {
        self.on.insert(rule);
        self
    }

    pub fn with_seed(mut self, seed: u64) -> Rules {
        self.seed = seed;
        self
    }

    pub fn is_on(&self, rule: Rule) -> bool {
        self.on.contains(&rule)
    }

    /// Latency mode at `scale` (1.0: AWS's own delays).
    pub fn latency(mut self, scale: f64) -> Rules {
        self.latency = Some(scale);
        self
    }

    /// Throttles EC2 with these buckets (and turns rate limits on).
    pub fn ec2_rates(mut self, rates: Ec2Rates) -> Rules {
        self.ec2_rate = Some(rates);
        self.with(Rule::RateLimits)
    }

    /// Loses the first answer of these creates (and turns the rule on).
    pub fn lose_answers_of(mut self, actions: &[&str]) -> Rules {
        self.lost_creates = actions.iter().map(|s| s.to_string()).collect();
        self.with(Rule::LostCreateAnswers)
    }

    pub fn describe(&self) -> String {
        let on: Vec<&str> = self.on.iter().map(|r| r.name()).collect();
        let mut s = format!("rules [{}], seed {}", on.join(", "), self.seed);
        if let Some(l) = self.latency {
            s.push_str(&format!(", latency mode x{l}"));
        }
        s
    }
}

/// What the layer has done, by decision.
#[derive(Debug, Default, Clone)]
pub struct StrictStats {
    pub decisions: BTreeMap<Decision, u64>,
    /// `Decision action` -> count, for failure messages.
    pub by_action: BTreeMap<String, u64>,
}

/// An answer on its way back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn into_response(self) -> Response<Body> {
        let mut resp = Response::builder().status(self.status);
        for (k, v) in &self.headers {
            if !["connection", "keep-alive", "transfer-encoding", "content-length"].contains(&k.as_str()) {
                resp = resp.header(k, v);
            }
        }
        resp.body(Body::from(self.body)).expect("a valid response")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn ok(&self) -> bool {
        self.status.is_success()
    }
}

/// What becomes of a request.
pub enum Outcome {
    Answer(Reply),
    /// Carried out, and the connection is closed without an answer.
    Drop,
}

#[derive(Clone)]
struct Remembered {
    params: Vec<(String, String)>,
    reply: Reply,
    instances: Vec<String>,
}

struct Change {
    polls_left: u32,
    insync_at: Option<Instant>,
    submitted: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Vpc,
    Subnet,
    InternetGateway,
    RouteTable,
    Group,
    Instance,
    KeyPair,
}

struct Transition {
    shown: &'static str,
    code: &'static str,
    /// moto's state that the transition hides.
    target: &'static str,
    until: Instant,
}

struct TokenBucket {
    tokens: f64,
    at: Instant,
    spec: Bucket,
}

impl TokenBucket {
    fn new(spec: Bucket) -> TokenBucket {
        TokenBucket { tokens: spec.capacity, at: Instant::now(), spec }
    }

    fn take(&mut self, n: f64) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.spec.per_second).min(self.spec.capacity);
        self.at = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
struct State {
    /// Rule 1: `action \n token` -> the first successful answer.
    tokens: HashMap<String, Remembered>,
    /// Rule 2: every CallerReference that created a zone.
    caller_refs: HashSet<String>,
    /// Rule 5: every CREATE sent to moto, as `zone \n <Change>`.
    created: HashSet<String>,
    /// Rule 6: the layer's change ids.
    changes: HashMap<String, Change>,
    /// Rule 7: new objects and how many more requests do not see them.
    fresh: HashMap<String, (Kind, u32)>,
    /// Rule 8: instances on their way up or down.
    transitions: HashMap<String, Transition>,
    /// Rule 9.
    route53_bucket: Option<TokenBucket>,
    ec2_buckets: HashMap<String, TokenBucket>,
    /// Rule 10: invocations whose answer was dropped once.
    lost: HashSet<String>,
    /// Corrections: instance -> the ARN of the profile a replacement gave it.
    profiles: HashMap<String, String>,
    /// Rule 11: `action \n name` -> the settings of the create that made
    /// the object, its first answer, and the object's ARN.
    elb_names: HashMap<String, (Vec<(String, String)>, Reply, String)>,
    /// Rule 11: `load balancer \n port` -> the ARN of its listener.
    listeners: HashMap<String, String>,
    /// Rule 11: target group ARN -> deregistration delay.
    tg_delays: HashMap<String, u64>,
    /// Rule 11: `(target group, target)` -> health polls still `initial`.
    initial: HashMap<(String, String), u32>,
    /// Rule 11: `(target group, target)` -> `draining` until then.
    draining: HashMap<(String, String), Instant>,
}

/// What [`Strict::simulate_status`] makes DescribeInstanceStatus report
/// for one instance, in AWS's words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedStatus {
    /// The system and instance status checks answer `impaired`.
    pub impaired: bool,
    /// A scheduled event: its code (`instance-retirement`,
    /// `system-reboot`) and description.
    pub event: Option<(String, String)>,
}

/// The layer: its rules, its state, and the way to moto.
pub struct Strict {
    pub rules: Rules,
    /// Test controls: simulated status checks and events, by instance id.
    simulated: Mutex<HashMap<String, SimulatedStatus>>,
    upstream: String,
    client: Client<hyper::client::HttpConnector>,
    state: Mutex<State>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    stats: Mutex<StrictStats>,
    rng: Mutex<Prng>,
    ids: AtomicU64,
}

const R53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";
const ELB_NS: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

impl Strict {
    pub fn new(upstream: &str, rules: Rules) -> Strict {
        Strict {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::new(),
            state: Mutex::default(),
            locks: Mutex::default(),
            stats: Mutex::default(),
            rng: Mutex::new(Prng(rules.seed)),
            ids: AtomicU64::new(0),
            simulated: Mutex::default(),
            rules,
        }
    }

    /// From now on, DescribeInstanceStatus reports `instance_id` as
    /// `status` says (a default `SimulatedStatus` restores moto's answer):
    /// what AWS reports for a host whose hardware failed or that it will
    /// retire. A test control, not a rule.
    pub fn simulate_status(&self, instance_id: &str, status: SimulatedStatus) {
        let mut sim = self.simulated.lock().unwrap();
        if status == SimulatedStatus::default() {
            sim.remove(instance_id);
        } else {
            sim.insert(instance_id.to_string(), status);
        }
    }

    /// DescribeInstanceStatus with the simulated statuses laid over moto's.
    fn simulated_status(&self, call: &Call, reply: &mut Reply) {
        if call.action != "DescribeInstanceStatus" {
            return;
        }
        let sim = self.simulated.lock().unwrap().clone();
        if sim.is_empty() {
            return;
        }
        let Ok(mut doc) = xml::parse(&reply.text()) else { return };
        let Some(set) = doc.child_mut("instanceStatusSet") else { return };
        for item in set.elements_mut() {
            let Some(s) = item.child_text("instanceId").and_then(|id| sim.get(&id).cloned()) else { continue };
            if s.impaired {
                for check in ["systemStatus", "instanceStatus"] {
                    if item.child(check).is_none() {
                        item.push(xml::Element::new(check));
                    }
                    if let Some(c) = item.child_mut(check) {
                        c.set_child_text("status", "impaired");
                    }
                }
            }
            if let Some((code, description)) = &s.event {
                item.remove_children("eventsSet");
                let mut events = xml::Element::new("eventsSet");
                let mut e = xml::Element::new("item");
                e.push(xml::Element::with_text("code", code));
                e.push(xml::Element::with_text("description", description));
                e.push(xml::Element::with_text("notBefore", "2030-01-01T00:00:00.000Z"));
                events.push(e);
                item.push(events);
            }
        }
        reply.body = Bytes::from(doc.to_document());
    }

    pub fn stats(&self) -> StrictStats {
        self.stats.lock().unwrap().clone()
    }

    /// Forgets everything, as when moto is reset.
    pub fn reset(&self) {
        *self.state.lock().unwrap() = State::default();
        *self.stats.lock().unwrap() = StrictStats::default();
    }

    fn on(&self, rule: Rule) -> bool {
        self.rules.is_on(rule)
    }

    fn count(&self, d: Decision, action: &str) {
        let mut s = self.stats.lock().unwrap();
        *s.decisions.entry(d).or_default() += 1;
        *s.by_action.entry(format!("{d:?} {action}")).or_default() += 1;
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap().entry(key.to_string()).or_default().clone()
    }

    fn request_id(&self) -> String {
        format!("strict-layer-{}", self.ids.fetch_add(1, Ordering::Relaxed))
    }

    /// A delay of AWS's usual 30-60 s times the latency scale.
    fn aws_delay(&self, scale: f64) -> Duration {
        let x = self.rng.lock().unwrap().next_f64();
        Duration::from_secs_f64((30.0 + 30.0 * x) * scale)
    }

    fn boot_time(&self) -> Duration {
        match self.rules.latency {
            Some(scale) => self.aws_delay(scale),
            None => self.rules.boot,
        }
    }

    fn wind_down_time(&self) -> Duration {
        match self.rules.latency {
            Some(scale) => self.aws_delay(scale),
            None => self.rules.wind_down,
        }
    }

    fn ec2_error(&self, status: u16, code: &str, message: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{}</Message>\
             </Error></Errors><RequestID>{}</RequestID></Response>",
            xml::escape(message),
            self.request_id()
        );
        reply(status, body)
    }

    fn r53_error(&self, status: u16, code: &str, message: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{R53_NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml::escape(message),
            self.request_id()
        );
        reply(status, body)
    }

    /// Sends a request to moto as it is, or with another body.
    async fn send(&self, method: &Method, path: &str, headers: &HeaderMap, body: Bytes) -> Reply {
        let mut req = Request::builder().method(method.clone()).uri(format!("{}{path}", self.upstream));
        for (k, v) in headers {
            let skip = [
                "connection",
                "keep-alive",
                "proxy-connection",
                "te",
                "trailer",
                "transfer-encoding",
                "upgrade",
                "content-length",
            ];
            if !skip.contains(&k.as_str()) {
                req = req.header(k, v);
            }
        }
        let req = req.body(Body::from(body)).expect("a valid upstream request");
        let result = async {
            let resp = self.client.request(req).await?;
            // Read the whole answer: moto has finished the request only then.
            let (parts, body) = resp.into_parts();
            let bytes = hyper::body::to_bytes(body).await?;
            Ok::<_, hyper::Error>(Reply { status: parts.status, headers: parts.headers, body: bytes })
        };
        result.await.unwrap_or_else(|e| reply(502, format!("strict layer: moto did not answer: {e}")))
    }

    /// Handles one request that the fault injection let through.
    pub async fn handle(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Outcome {
        if let Some(throttled) = self.throttle(call) {
            return Outcome::Answer(throttled);
        }
        let lose = self.loses_answer(call);
        let reply = match call.service {
            Service::Ec2 => self.ec2(call, parts, body).await,
            Service::Route53 => self.route53(call, parts, body).await,
            Service::Elb => self.elb(call, parts, body).await,
            Service::Other => {
                let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                self.send(&parts.method, pq, &parts.headers, body).await
            }
        };
        if lose && reply.ok() {
            self.count(Decision::AnswerLost, &call.action);
            return Outcome::Drop;
        }
        Outcome::Answer(reply)
    }

    // ---- Rule 9: rate limits -------------------------------------------

    fn throttle(&self, call: &Call) -> Option<Reply> {
        if !self.on(Rule::RateLimits) {
            return None;
        }
        let mut st = self.state.lock().unwrap();
        match call.service {
            // Route53 quotas: all requests, five a second per account; above
            // that, HTTP 400 with `Throttling` and "Rate exceeded".
            Service::Route53 => {
                let spec = self.rules.route53_rate?;
                let bucket = st.route53_bucket.get_or_insert_with(|| TokenBucket::new(spec));
                if bucket.take(1.0) {
                    return None;
                }
                drop(st);
                self.count(Decision::Throttled, &call.action);
                Some(self.r53_error(400, "Throttling", "Rate exceeded"))
            }
            // EC2 request throttling: a token bucket per API action, sized
            // by category (mutating or not), and resource buckets counted in
            // instances for RunInstances and TerminateInstances; above them
            // `RequestLimitExceeded` (HTTP 503, as the SDKs see it).
            Service::Ec2 => {
                let rates = self.rules.ec2_rate?;
                let reads = ["Describe", "Get", "List"].iter().any(|p| call.action.starts_with(p));
                let spec = if reads { rates.non_mutating } else { rates.mutating };
                let mut ok =
                    st.ec2_buckets.entry(call.action.clone()).or_insert_with(|| TokenBucket::new(spec)).take(1.0);
                let resource = match call.action.as_str() {
                    "RunInstances" => {
                        Some((rates.run_instances, call.param("MaxCount").and_then(|n| n.parse().ok()).unwrap_or(1.0)))
                    }
                    "TerminateInstances" => Some((
                        rates.terminate_instances,
                        call.params.iter().filter(|(k, _)| k.starts_with("InstanceId.")).count() as f64,
                    )),
                    _ => None,
                };
                if let (true, Some((spec, n))) = (ok, resource) {
                    let key = format!("{} instances", call.action);
                    ok = st.ec2_buckets.entry(key).or_insert_with(|| TokenBucket::new(spec)).take(n);
                }
                drop(st);
                if ok {
                    return None;
                }
                self.count(Decision::Throttled, &call.action);
                Some(self.ec2_error(503, "RequestLimitExceeded", "Request limit exceeded."))
            }
            Service::Elb | Service::Other => None,
        }
    }

    // ---- Rule 10: lost answers -----------------------------------------

    /// Whether the answer to this request is to be lost: the first attempt
    /// of one of the chosen creates. The SDK's retry of it (the same
    /// invocation id) gets its answer.
    fn loses_answer(&self, call: &Call) -> bool {
        if !self.on(Rule::LostCreateAnswers) {
            return false;
        }
        let name = match (call.service, call.method.as_str(), call.path.split('?').next().unwrap_or_default()) {
            (Service::Ec2 | Service::Elb, _, _) => call.action.clone(),
            (Service::Route53, "POST", p) if p.trim_end_matches('/') == "/2013-04-01/hostedzone" => {
                "CreateHostedZone".into()
            }
            (Service::Route53, "POST", p) if p.trim_end_matches('/').ends_with("/rrset") => {
                "ChangeResourceRecordSets".into()
            }
            _ => return false,
        };
        if !self.rules.lost_creates.contains(&name) {
            return false;
        }
        let id = call.invocation.clone().unwrap_or_else(|| format!("{}\n{}", call.path, call.body));
        self.state.lock().unwrap().lost.insert(id)
    }

    // ---- Rule 11: Elastic Load Balancing v2 ----------------------------

    fn elb_error(&self, status: u16, code: &str, message: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{ELB_NS}\"><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml::escape(message),
            self.request_id()
        );
        reply(status, body)
    }

    async fn elb_forward(&self, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        self.send(&parts.method, pq, &parts.headers, body).await
    }

    /// ELBv2, where moto differs from the API reference:
    /// - CreateLoadBalancer and CreateTargetGroup: "If you attempt to create
    ///   multiple load balancers [target groups] with the same settings, each
    ///   call succeeds"; with other settings the name is refused
    ///   (`DuplicateLoadBalancerName`, `DuplicateTargetGroupName`). moto makes
    ///   a second load balancer of the same name, and refuses every second
    ///   target group of a name.
    /// - CreateListener: a port of a load balancer holds one listener
    ///   (`DuplicateListener`); moto makes a second one.
    /// - DescribeTags and DescribeLoadBalancers' `LoadBalancerArns`: "You can
    ///   specify up to 20"; `PageSize` is 1 to 400. moto takes any number.
    /// - Target health: a target just registered is `initial`
    ///   (`Elb.RegistrationInProgress`) until it passes its first checks, and
    ///   a target deregistered is `draining` (`Target.DeregistrationInProgress`)
    ///   for the group's deregistration delay. moto reports `healthy` at once
    ///   and forgets a deregistered target at once. The layer shows
    ///   `initial` for the first [`Rules::initial_polls`] polls that name the
    ///   target, then moto's state; and `draining` for the delay the group's
    ///   attributes set (300 s unless ModifyTargetGroupAttributes set
    ///   another), when the target is asked about by id. A listing of all
    ///   the group's targets leaves a draining target out, as moto does: AWS
    ///   lists it, and berth counts a draining target as gone either way.
    async fn elb(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        if !self.on(Rule::LoadBalancing) {
            return self.elb_forward(parts, body).await;
        }
        let members = |prefix: &str| call.params.iter().filter(|(k, _)| k.starts_with(prefix) && !k[prefix.len()..].contains('.')).count();
        let too_many = match call.action.as_str() {
            "DescribeTags" => Some(("resourceArns", members("ResourceArns.member."))),
            "DescribeLoadBalancers" => Some(("loadBalancerArns", members("LoadBalancerArns.member."))),
            _ => None,
        };
        if let Some((field, n)) = too_many
            && n > 20
        {
            self.count(Decision::ElbLimitExceeded, &call.action);
            let msg = format!("1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to 20 (it has {n})");
            return self.elb_error(400, "ValidationError", &msg);
        }
        if let Some(size) = call.param("PageSize")
            && !size.parse::<i64>().is_ok_and(|n| (1..=400).contains(&n))
        {
            self.count(Decision::ElbLimitExceeded, &call.action);
            let msg = format!("1 validation error detected: Value '{size}' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and 400");
            return self.elb_error(400, "ValidationError", &msg);
        }
        let action = call.action.clone();
        match action.as_str() {
            "CreateLoadBalancer" | "CreateTargetGroup" => {
                let name = call.param("Name").unwrap_or_default().to_string();
                let key = format!("{action}\n{name}");
                let lock = self.lock_for(&key);
                let _held = lock.lock().await;
                // Tags are not settings: the same call with other tags still
                // returns the existing object (whose tags berth then checks).
                let settings: Vec<(String, String)> =
                    comparable(&call.params).into_iter().filter(|(k, _)| !k.starts_with("Tags.")).collect();
                let known = self.state.lock().unwrap().elb_names.get(&key).cloned();
                if let Some((first, answer, _)) = known {
                    if first == settings {
                        self.count(Decision::ElbNameReturned, &action);
                        return answer;
                    }
                    self.count(Decision::ElbDuplicateName, &action);
                    let (code, what) = if action == "CreateLoadBalancer" {
                        ("DuplicateLoadBalancerName", "A load balancer")
                    } else {
                        ("DuplicateTargetGroupName", "A target group")
                    };
                    return self.elb_error(400, code, &format!("{what} with the same name '{name}' exists, but with different settings"));
                }
                let answer = self.elb_forward(parts, body).await;
                if answer.ok()
                    && let Ok(doc) = xml::parse(&answer.text())
                {
                    let (list, arn) = if action == "CreateLoadBalancer" {
                        ("LoadBalancers", "LoadBalancerArn")
                    } else {
                        ("TargetGroups", "TargetGroupArn")
                    };
                    let result = format!("{action}Result");
                    if let Some(a) = doc.at(&[&result, list, "member", arn]).map(Element::text) {
                        self.state.lock().unwrap().elb_names.insert(key, (settings, answer.clone(), a));
                    }
                }
                answer
            }
            "CreateListener" => {
                let key = format!("{}\n{}", call.param("LoadBalancerArn").unwrap_or_default(), call.param("Port").unwrap_or_default());
                let lock = self.lock_for(&key);
                let _held = lock.lock().await;
                if self.state.lock().unwrap().listeners.contains_key(&key) {
                    self.count(Decision::ElbDuplicateName, &action);
                    return self.elb_error(400, "DuplicateListener", "A listener already exists on this port for this load balancer");
                }
                let answer = self.elb_forward(parts, body).await;
                if answer.ok()
                    && let Ok(doc) = xml::parse(&answer.text())
                    && let Some(a) = doc.at(&["CreateListenerResult", "Listeners", "member", "ListenerArn"]).map(Element::text)
                {
                    self.state.lock().unwrap().listeners.insert(key, a);
                }
                answer
            }
            "DeleteListener" => {
                let arn = call.param("ListenerArn").unwrap_or_default().to_string();
                let answer = self.elb_forward(parts, body).await;
                if answer.ok() {
                    self.state.lock().unwrap().listeners.retain(|_, a| *a != arn);
                }
                answer
            }
            "DeleteLoadBalancer" | "DeleteTargetGroup" => {
                let arn = call.param("LoadBalancerArn").or(call.param("TargetGroupArn")).unwrap_or_default().to_string();
                let answer = self.elb_forward(parts, body).await;
                if answer.ok() {
                    let mut st = self.state.lock().unwrap();
                    st.elb_names.retain(|_, (_, _, a)| *a != arn);
                    st.listeners.retain(|k, _| !k.starts_with(&format!("{arn}\n")));
                    st.tg_delays.remove(&arn);
                }
                answer
            }
            "ModifyTargetGroupAttributes" => {
                let tg = call.param("TargetGroupArn").unwrap_or_default().to_string();
                let answer = self.elb_forward(parts, body).await;
                if answer.ok() {
                    for (k, v) in &call.params {
                        if v == "deregistration_delay.timeout_seconds"
                            && let Some(n) = call.param(&k.replace(".Key", ".Value")).and_then(|n| n.parse().ok())
                        {
                            self.state.lock().unwrap().tg_delays.insert(tg.clone(), n);
                        }
                    }
                }
                answer
            }
            "RegisterTargets" | "DeregisterTargets" => {
                let tg = call.param("TargetGroupArn").unwrap_or_default().to_string();
                let ids: Vec<String> = call
                    .params
                    .iter()
                    .filter(|(k, _)| k.starts_with("Targets.member.") && k.ends_with(".Id"))
                    .map(|(_, v)| v.clone())
                    .collect();
                let answer = self.elb_forward(parts, body).await;
                if answer.ok() {
                    let mut st = self.state.lock().unwrap();
                    let delay = Duration::from_secs(st.tg_delays.get(&tg).copied().unwrap_or(300));
                    for id in ids {
                        let key = (tg.clone(), id);
                        if action == "RegisterTargets" {
                            st.draining.remove(&key);
                            st.initial.insert(key, self.rules.initial_polls);
                        } else {
                            st.initial.remove(&key);
                            st.draining.insert(key, Instant::now() + delay);
                        }
                    }
                }
                answer
            }
            "DescribeTargetHealth" => {
                let tg = call.param("TargetGroupArn").unwrap_or_default().to_string();
                let mut answer = self.elb_forward(parts, body).await;
                if answer.ok() {
                    self.target_health(&tg, &mut answer);
                }
                answer
            }
            _ => self.elb_forward(parts, body).await,
        }
    }

    /// Rewrites moto's target health as AWS reports it (see [`Strict::elb`]).
    fn target_health(&self, tg: &str, answer: &mut Reply) {
        let Ok(mut doc) = xml::parse(&answer.text()) else { return };
        let Some(list) = doc.at_mut(&["DescribeTargetHealthResult", "TargetHealthDescriptions"]) else { return };
        let mut decisions = Vec::new();
        {
            let mut st = self.state.lock().unwrap();
            let now = Instant::now();
            for m in list.elements_mut() {
                let Some(id) = m.at(&["Target", "Id"]).map(Element::text) else { continue };
                let key = (tg.to_string(), id);
                let shown = m.at(&["TargetHealth", "State"]).map(Element::text).unwrap_or_default();
                let draining = st.draining.get(&key).is_some_and(|until| now < *until);
                let rewrite = if draining {
                    decisions.push(Decision::TargetDraining);
                    Some(("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"))
                } else if shown == "healthy"
                    && let Some(left) = st.initial.get_mut(&key)
                    && *left > 0
                {
                    *left -= 1;
                    decisions.push(Decision::TargetInitial);
                    Some(("initial", "Elb.RegistrationInProgress", "Target registration is in progress"))
                } else {
                    None
                };
                if let Some((state, reason, description)) = rewrite {
                    let mut h = Element::new("TargetHealth");
                    h.push(Element::with_text("State", state));
                    h.push(Element::with_text("Reason", reason));
                    h.push(Element::with_text("Description", description));
                    m.remove_children("TargetHealth");
                    m.push(h);
                }
            }
        }
        for d in decisions {
            self.count(d, "DescribeTargetHealth");
        }
        answer.body = Bytes::from(doc.to_document());
    }

    // ---- EC2 -----------------------------------------------------------

    async fn ec2(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        // Rule 3. EC2's error codes: `FilterLimitExceeded`, "The request uses
        // too many filters or too many filter values"; AWS's message names
        // the limit, 200 filter values in one call, whatever the filters.
        if self.on(Rule::FilterLimit) {
            let values = call.params.iter().filter(|(k, _)| is_filter_value(k)).count();
            if values > self.rules.filter_values {
                self.count(Decision::FilterLimitExceeded, &call.action);
                let msg = format!(
                    "The maximum number of filter values specified on a single call is {}",
                    self.rules.filter_values
                );
                return self.ec2_error(400, "FilterLimitExceeded", &msg);
            }
        }
        if self.on(Rule::EventualConsistency)
            && let Some(not_found) = self.unseen_reference(call)
        {
            return not_found;
        }
        if self.on(Rule::TagLimits)
            && let Some(refused) = self.ec2_tag_limit(call, parts).await
        {
            return refused;
        }
        if self.on(Rule::Idempotency)
            && let Some(token) = call.param("ClientToken")
        {
            return self.idempotent(call, parts, body, token).await;
        }
        self.ec2_forward(call, parts, body).await
    }

    async fn ec2_forward(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut reply = self.send(&parts.method, pq, &parts.headers, body).await;
        if reply.ok() {
            self.after_ec2(call, &mut reply);
            self.correct_moto(call, &mut reply);
            self.simulated_status(call, &mut reply);
        }
        reply
    }

    /// What moto gets wrong, answered as AWS does. ReplaceIamInstanceProfileAssociation
    /// changes the association's profile, and DescribeInstances then shows
    /// it on the instance ("Replaces an IAM instance profile for the
    /// specified running instance"); moto keeps the old one there.
    fn correct_moto(&self, call: &Call, reply: &mut Reply) {
        let Ok(mut doc) = xml::parse(&reply.text()) else { return };
        let mut st = self.state.lock().unwrap();
        match call.action.as_str() {
            "ReplaceIamInstanceProfileAssociation" => {
                let a = doc.child("iamInstanceProfileAssociation");
                let instance = a.and_then(|a| a.child_text("instanceId"));
                let arn = a.and_then(|a| a.at(&["iamInstanceProfile", "arn"])).map(Element::text);
                if let (Some(i), Some(arn)) = (instance, arn) {
                    st.profiles.insert(i, arn);
                }
            }
            "AssociateIamInstanceProfile" | "DisassociateIamInstanceProfile" => {
                if let Some(i) = doc.at(&["iamInstanceProfileAssociation", "instanceId"]).map(Element::text) {
                    st.profiles.remove(&i);
                }
            }
            // A subnet's IPv6 association: moto writes the state as a Python
            // dict (`<state>{'State': 'associated'}</state>`), which no SDK
            // reads as a state; AWS writes `<state>associated</state>`.
            "DescribeSubnets" | "CreateSubnet" | "AssociateSubnetCidrBlock" => {
                fn flatten(e: &mut Element) -> bool {
                    let mut changed = false;
                    if e.local() == "ipv6CidrBlockState"
                        && let Some(state) = e.child_mut("state")
                    {
                        let text = state.text().replace("&apos;", "'");
                        if text.starts_with('{')
                            && let Some(inner) = text.split('\'').nth(3)
                        {
                            state.set_text(inner);
                            changed = true;
                        }
                    }
                    for c in e.elements_mut() {
                        changed |= flatten(c);
                    }
                    changed
                }
                if flatten(&mut doc) {
                    reply.body = Bytes::from(doc.to_document());
                }
            }
            "DescribeInstances" if !st.profiles.is_empty() => {
                let mut changed = false;
                for r in doc.child_mut("reservationSet").into_iter().flat_map(|s| s.elements_mut()) {
                    for item in r.child_mut("instancesSet").into_iter().flat_map(|s| s.elements_mut()) {
                        let Some(arn) = item.child_text("instanceId").and_then(|i| st.profiles.get(&i)) else {
                            continue;
                        };
                        if let Some(a) = item.at_mut(&["iamInstanceProfile", "arn"]) {
                            a.set_text(arn);
                            changed = true;
                        }
                    }
                }
                if changed {
                    reply.body = Bytes::from(doc.to_document());
                }
            }
            _ => {}
        }
    }

    /// Rule 1. EC2 idempotency: a client token is valid for the same action
    /// and parameters; a retry with the same token and parameters returns
    /// the first call's result without doing anything again; with other
    /// parameters it fails with `IdempotentParameterMismatch`. For
    /// RunInstances the token outlives the instance (at least 24 hours after
    /// its termination), and a launch with the token of a terminated
    /// instance fails with `IdempotentInstanceTerminated`. Tokens here live
    /// as long as the proxy. Only a successful first call binds a token.
    async fn idempotent(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes, token: &str) -> Reply {
        let key = format!("{}\n{token}", call.action);
        let lock = self.lock_for(&format!("token\n{key}"));
        let _held = lock.lock().await;
        let params = comparable(&call.params);
        let known = self.state.lock().unwrap().tokens.get(&key).cloned();
        if let Some(first) = known {
            if first.params != params {
                self.count(Decision::TokenMismatch, &call.action);
                return self.ec2_error(
                    400,
                    "IdempotentParameterMismatch",
                    "The request uses the same client token as a previous, but non-identical request.",
                );
            }
            if call.action == "RunInstances"
                && !first.instances.is_empty()
                && self.all_terminated(parts, &first.instances).await
            {
                self.count(Decision::TokenTerminated, &call.action);
                return self.ec2_error(
                    400,
                    "IdempotentInstanceTerminated",
                    "The request to launch an instance uses the same client token as a previous request for which \
                     the instance has been terminated.",
                );
            }
            self.count(Decision::TokenReplayed, &call.action);
            return first.reply;
        }
        let reply = self.ec2_forward(call, parts, body).await;
        if reply.ok() {
            let instances = if call.action == "RunInstances" {
                xml::parse(&reply.text())
                    .map(|d| d.all(&["instancesSet", "item", "instanceId"]).iter().map(|e| e.text()).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            self.state.lock().unwrap().tokens.insert(key, Remembered { params, reply: reply.clone(), instances });
        }
        reply
    }

    /// Whether moto has every one of `ids` terminated.
    async fn all_terminated(&self, parts: &hyper::http::request::Parts, ids: &[String]) -> bool {
        let mut body = String::from("Action=DescribeInstances&Version=2016-11-15");
        for (i, id) in ids.iter().enumerate() {
            body.push_str(&format!("&InstanceId.{}={id}", i + 1));
        }
        let r = self.send(&Method::POST, "/", &parts.headers, Bytes::from(body)).await;
        if !r.ok() {
            // moto forgot them: as good as terminated.
            return true;
        }
        let Ok(doc) = xml::parse(&r.text()) else { return false };
        let states: Vec<String> = doc
            .all(&["reservationSet", "item", "instancesSet", "item", "instanceState", "name"])
            .iter()
            .map(|e| e.text())
            .collect();
        states.iter().all(|s| s == "terminated")
    }

    /// Rule 4, EC2. Tag restrictions: at most 50 user tags per resource
    /// (`aws:` tags do not count); over it EC2 answers `TagLimitExceeded`.
    /// Counted on a create's TagSpecification and, for CreateTags, on the
    /// union of the resource's current tags (moto's DescribeTags) and the new
    /// keys.
    async fn ec2_tag_limit(&self, call: &Call, parts: &hyper::http::request::Parts) -> Option<Reply> {
        let limit = self.rules.ec2_tags;
        let user = |k: &str| !k.starts_with("aws:");
        let mut per_spec: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (k, v) in &call.params {
            if let Some(rest) = k.strip_prefix("TagSpecification.")
                && k.ends_with(".Key")
                && rest.contains(".Tag.")
                && user(v)
            {
                per_spec.entry(rest.split('.').next().unwrap_or_default()).or_default().insert(v);
            }
        }
        let mut over = per_spec.values().any(|keys| keys.len() > limit);
        if !over && call.action == "CreateTags" {
            let new: BTreeSet<&str> = call
                .params
                .iter()
                .filter(|(k, v)| k.starts_with("Tag.") && k.ends_with(".Key") && user(v))
                .map(|(_, v)| v.as_str())
                .collect();
            let resources: Vec<&str> =
                call.params.iter().filter(|(k, _)| k.starts_with("ResourceId.")).map(|(_, v)| v.as_str()).collect();
            if !new.is_empty() && !resources.is_empty() {
                let current = self.current_tags(parts, &resources).await;
                over = resources.iter().any(|r| {
                    let mut keys: BTreeSet<&str> = new.clone();
                    keys.extend(current.get(*r).into_iter().flatten().map(String::as_str).filter(|k| user(k)));
                    keys.len() > limit
                });
            }
        }
        if !over {
            return None;
        }
        self.count(Decision::TagLimitExceeded, &call.action);
        Some(self.ec2_error(
            400,
            "TagLimitExceeded",
            &format!("You've reached the limit on the number of tags ({limit}) that you can assign to the specified resource."),
        ))
    }

    async fn current_tags(
        &self,
        parts: &hyper::http::request::Parts,
        resources: &[&str],
    ) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in resources.chunks(200) {
            let mut body = String::from("Action=DescribeTags&Version=2016-11-15&Filter.1.Name=resource-id");
            for (i, r) in chunk.iter().enumerate() {
                body.push_str(&format!("&Filter.1.Value.{}={r}", i + 1));
            }
            let r = self.send(&Method::POST, "/", &parts.headers, Bytes::from(body)).await;
            if let Ok(doc) = xml::parse(&r.text()) {
                for item in doc.all(&["tagSet", "item"]) {
                    if let (Some(id), Some(key)) = (item.child_text("resourceId"), item.child_text("key")) {
                        out.entry(id).or_default().push(key);
                    }
                }
            }
        }
        out
    }

    /// Rule 7, references. EC2 eventual consistency: right after a create,
    /// requests that name the new object may answer its `*.NotFound` error
    /// (`InvalidVpcID.NotFound`, `InvalidInstanceID.NotFound` after
    /// RunInstances, ...). Here the first `unseen_references` requests that
    /// name a new object by ID (not in a filter or a tag) get that error, and
    /// are not carried out. As a route target the gateway is
    /// `InvalidGatewayID.NotFound`.
    fn unseen_reference(&self, call: &Call) -> Option<Reply> {
        let mut st = self.state.lock().unwrap();
        if st.fresh.is_empty() {
            return None;
        }
        let mut first: Option<(String, Kind, String)> = None;
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in &call.params {
            if !names_an_object(k) {
                continue;
            }
            let Some((kind, _)) = st.fresh.get(v) else { continue };
            // A key pair is referred to by name, except by the calls that
            // make one: an import's `KeyName` names the key it creates, and
            // the resend of one whose answer was lost meets
            // `InvalidKeyPair.Duplicate`, not `NotFound`.
            if *kind == Kind::KeyPair
                && (!(k == "KeyName" || k.starts_with("KeyName."))
                    || matches!(call.action.as_str(), "ImportKeyPair" | "CreateKeyPair"))
            {
                continue;
            }
            if !seen.contains(v) {
                seen.push(v.clone());
            }
            if first.is_none() {
                first = Some((v.clone(), *kind, k.clone()));
            }
        }
        let (id, kind, param) = first?;
        for v in &seen {
            if let Some((_, left)) = st.fresh.get_mut(v) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    st.fresh.remove(v);
                }
            }
        }
        drop(st);
        self.count(Decision::NotYetVisible, &call.action);
        let route_target = matches!(call.action.as_str(), "CreateRoute" | "ReplaceRoute") && param == "GatewayId";
        let (code, message) = match kind {
            Kind::InternetGateway if route_target => {
                ("InvalidGatewayID.NotFound", format!("The gateway ID '{id}' does not exist"))
            }
            Kind::Vpc => ("InvalidVpcID.NotFound", format!("The vpc ID '{id}' does not exist")),
            Kind::Subnet => ("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist")),
            Kind::InternetGateway => {
                ("InvalidInternetGatewayID.NotFound", format!("The internetGateway ID '{id}' does not exist"))
            }
            Kind::RouteTable => ("InvalidRouteTableID.NotFound", format!("The routeTable ID '{id}' does not exist")),
            Kind::Group => ("InvalidGroup.NotFound", format!("The security group '{id}' does not exist")),
            Kind::Instance => ("InvalidInstanceID.NotFound", format!("The instance ID '{id}' does not exist")),
            Kind::KeyPair => ("InvalidKeyPair.NotFound", format!("The key pair '{id}' does not exist")),
        };
        Some(self.ec2_error(400, code, &message))
    }

    /// What moto answered to a successful EC2 call, made as AWS would have
    /// answered: new objects recorded (rule 7), instances in transition
    /// (rule 8), new objects left out of listings (rule 7).
    fn after_ec2(&self, call: &Call, reply: &mut Reply) {
        let eventual = self.on(Rule::EventualConsistency);
        let transitions = self.on(Rule::PendingInstances);
        let interesting = call.action == "DescribeInstances"
            || LISTINGS.iter().any(|(a, _, _)| *a == call.action)
            || CREATED.iter().any(|(a, _, _)| *a == call.action)
            || ["StartInstances", "StopInstances", "TerminateInstances"].contains(&call.action.as_str());
        if !(eventual || transitions) || !interesting {
            return;
        }
        let Ok(mut doc) = xml::parse(&reply.text()) else { return };
        let mut changed = false;
        let now = Instant::now();
        if eventual && let Some((_, path, kind)) = CREATED.iter().find(|(a, _, _)| *a == call.action) {
            let ids: Vec<String> = doc.all(path).iter().map(|e| e.text()).filter(|s| !s.is_empty()).collect();
            let mut st = self.state.lock().unwrap();
            for id in ids {
                st.fresh.insert(id, (*kind, self.rules.unseen_references));
            }
        }
        if transitions {
            let moves: &[(&str, &str, &str, &str)] = &[
                // (action, shown, code, what moto has under it)
                ("RunInstances", "pending", "0", "running"),
                ("StartInstances", "pending", "0", "running"),
                ("StopInstances", "stopping", "64", "stopped"),
                ("TerminateInstances", "shutting-down", "32", "terminated"),
            ];
            if let Some((_, shown, code, target)) = moves.iter().find(|(a, ..)| *a == call.action) {
                let ids: Vec<String> =
                    doc.all(&["instancesSet", "item", "instanceId"]).iter().map(|e| e.text()).collect();
                let mut st = self.state.lock().unwrap();
                for id in ids {
                    let until = now + if *shown == "pending" { self.boot_time() } else { self.wind_down_time() };
                    st.transitions.insert(id, Transition { shown, code, target, until });
                }
            }
        }
        match call.action.as_str() {
            "RunInstances" if transitions => {
                // RunInstances answers before the instance has a public
                // address: `pending`, no public IP or DNS name yet.
                if let Some(set) = doc.child_mut("instancesSet") {
                    for item in set.elements_mut() {
                        set_state(item, "pending", "0");
                        strip_public_address(item);
                    }
                    changed = true;
                }
            }
            "DescribeInstances" => {
                let mut shown = 0;
                // An `instance-state-name` filter matches the state shown.
                let wanted: Vec<&str> = (1..)
                    .map_while(|i| call.param(&format!("Filter.{i}.Name")).map(|n| (i, n)))
                    .filter(|(_, n)| *n == "instance-state-name")
                    .flat_map(|(i, _)| (1..).map_while(move |j| call.param(&format!("Filter.{i}.Value.{j}"))))
                    .collect();
                if let Some(reservations) = doc.child_mut("reservationSet") {
                    for r in reservations.elements_mut() {
                        if let Some(set) = r.child_mut("instancesSet") {
                            if eventual {
                                changed |= self.leave_out_new(set, "instanceId");
                            }
                            if transitions {
                                for item in set.elements_mut() {
                                    if self.in_transition(item, now) {
                                        shown += 1;
                                    }
                                }
                                if !wanted.is_empty() {
                                    set.children.retain(|n| match n {
                                        xml::Node::El(i) => i
                                            .at(&["instanceState", "name"])
                                            .is_none_or(|s| wanted.contains(&s.text().as_str())),
                                        xml::Node::Text(_) => true,
                                    });
                                }
                            }
                        }
                    }
                    // A reservation whose instances are all left out is not listed.
                    reservations.children.retain(|n| match n {
                        xml::Node::El(r) => r.child("instancesSet").is_none_or(|s| s.elements().next().is_some()),
                        xml::Node::Text(_) => true,
                    });
                }
                if shown > 0 {
                    changed = true;
                    for _ in 0..shown {
                        self.count(Decision::InstanceInTransition, &call.action);
                    }
                }
            }
            a if eventual => {
                if let Some((_, path, id)) = LISTINGS.iter().find(|(x, _, _)| *x == a)
                    && let Some(set) = doc.at_mut(path)
                {
                    changed |= self.leave_out_new(set, id);
                }
            }
            _ => {}
        }
        if changed {
            reply.body = Bytes::from(doc.to_document());
        }
    }

    /// Rule 7, listings: a new object is left out of the listings that
    /// would show it, for as many requests as it is not found by ID.
    fn leave_out_new(&self, set: &mut Element, id_name: &str) -> bool {
        let mut st = self.state.lock().unwrap();
        if st.fresh.is_empty() {
            return false;
        }
        let before = set.children.len();
        let mut left_out = 0;
        set.children.retain(|n| {
            let xml::Node::El(item) = n else { return true };
            let Some(id) = item.child_text(id_name) else { return true };
            let Some((_, left)) = st.fresh.get_mut(&id) else { return true };
            *left = left.saturating_sub(1);
            if *left == 0 {
                st.fresh.remove(&id);
            }
            left_out += 1;
            false
        });
        drop(st);
        for _ in 0..left_out {
            self.count(Decision::NotYetVisible, "listing");
        }
        set.children.len() != before
    }

    /// Rule 8. An instance is `pending` from launch until it runs, with no
    /// public IP or DNS name until then; StopInstances goes through
    /// `stopping` and TerminateInstances through `shutting-down` (EC2
    /// instance lifecycle). Returns whether `item` was shown in transition.
    fn in_transition(&self, item: &mut Element, now: Instant) -> bool {
        let Some(id) = item.child_text("instanceId") else { return false };
        let st = self.state.lock().unwrap();
        let Some(t) = st.transitions.get(&id) else { return false };
        let moto_has = item.at(&["instanceState", "name"]).map(Element::text).unwrap_or_default();
        if now >= t.until || moto_has != t.target {
            return false;
        }
        let (shown, code) = (t.shown, t.code);
        drop(st);
        set_state(item, shown, code);
        if shown == "pending" {
            strip_public_address(item);
        }
        true
    }

    // ---- Route53 -------------------------------------------------------

    async fn route53(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        let path = parts.uri.path();
        let rest = path.strip_prefix("/2013-04-01/").unwrap_or_default().trim_end_matches('/');
        let segs: Vec<&str> = rest.split('/').collect();
        match (parts.method.as_str(), segs.as_slice()) {
            ("GET", ["change", id]) if self.on(Rule::PendingChanges) => {
                if let Some(r) = self.get_change(call, id) {
                    return r;
                }
            }
            ("POST", ["hostedzone"]) if self.on(Rule::CallerReference) => {
                return self.create_zone(call, parts, body).await;
            }
            ("POST", ["hostedzone", zone, "rrset"]) if self.on(Rule::AtomicBatches) => {
                return self.change_batch(call, parts, body, zone).await;
            }
            ("POST", ["tags", _, _]) if self.on(Rule::TagLimits) => {
                if let Some(refused) = self.route53_tag_limit(call, &body) {
                    return refused;
                }
            }
            _ => {}
        }
        self.r53_forward(parts, body).await
    }

    async fn r53_forward(&self, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut reply = self.send(&parts.method, pq, &parts.headers, body).await;
        if reply.ok() && self.on(Rule::PendingChanges) {
            self.pending_change_info(&mut reply);
        }
        reply
    }

    /// Rule 6, the answers. ChangeResourceRecordSets (and CreateHostedZone,
    /// DeleteHostedZone, AssociateVPCWithHostedZone, ...) answer a ChangeInfo
    /// whose status is `PENDING` until the change has reached every Route53
    /// server; then GetChange says `INSYNC`. moto says INSYNC at once, and
    /// gives every change of one kind the same ID: the layer gives each its
    /// own ID and answers GetChange for it.
    fn pending_change_info(&self, reply: &mut Reply) {
        let Ok(mut doc) = xml::parse(&reply.text()) else { return };
        let Some(info) = doc.child_mut("ChangeInfo") else { return };
        let id = format!("C{:012X}STRICT", self.ids.fetch_add(1, Ordering::Relaxed));
        let submitted = info.child_text("SubmittedAt").unwrap_or_default();
        info.set_child_text("Id", &format!("/change/{id}"));
        info.set_child_text("Status", "PENDING");
        let change = match self.rules.latency {
            Some(scale) => Change { polls_left: 0, insync_at: Some(Instant::now() + self.aws_delay(scale)), submitted },
            None => Change { polls_left: self.rules.pending_polls, insync_at: None, submitted },
        };
        self.state.lock().unwrap().changes.insert(id, change);
        reply.body = Bytes::from(doc.to_document());
    }

    /// Rule 6, GetChange: `PENDING` for the first `pending_polls` polls of a
    /// change (latency mode: until its 30-60 s, scaled, have passed), then
    /// `INSYNC`. Changes the layer did not number go to moto.
    fn get_change(&self, call: &Call, id: &str) -> Option<Reply> {
        let id = id.trim_start_matches("change/");
        let mut st = self.state.lock().unwrap();
        let change = st.changes.get_mut(id)?;
        let pending = match change.insync_at {
            Some(at) => Instant::now() < at,
            None if change.polls_left > 0 => {
                change.polls_left -= 1;
                true
            }
            None => false,
        };
        let submitted = change.submitted.clone();
        drop(st);
        if pending {
            self.count(Decision::ChangePending, &call.action);
        }
        let status = if pending { "PENDING" } else { "INSYNC" };
        Some(reply(
            200,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetChangeResponse xmlns=\"{R53_NS}\"><ChangeInfo>\
                 <Id>/change/{id}</Id><Status>{status}</Status><SubmittedAt>{submitted}</SubmittedAt></ChangeInfo>\
                 </GetChangeResponse>"
            ),
        ))
    }

    /// Rule 2. CreateHostedZone: a CallerReference must be unique every
    /// time; a request with one already used (even by a zone since deleted)
    /// fails with `HostedZoneAlreadyExists`, HTTP 409.
    async fn create_zone(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes) -> Reply {
        let reference = xml::parse(&call.body).ok().and_then(|d| d.child_text("CallerReference"));
        let Some(reference) = reference else { return self.r53_forward(parts, body).await };
        let lock = self.lock_for("caller-reference");
        let _held = lock.lock().await;
        if self.state.lock().unwrap().caller_refs.contains(&reference) {
            self.count(Decision::CallerReferenceReused, &call.action);
            return self.r53_error(
                409,
                "HostedZoneAlreadyExists",
                &format!("A hosted zone has already been created with the specified caller reference `{reference}`."),
            );
        }
        let reply = self.r53_forward(parts, body).await;
        if reply.ok() {
            self.state.lock().unwrap().caller_refs.insert(reference);
        }
        reply
    }

    /// Rule 4, Route53. ChangeTagsForResource takes at most 10 AddTags and at
    /// most 10 RemoveTagKeys; more fails validation (`InvalidInput`).
    fn route53_tag_limit(&self, call: &Call, body: &Bytes) -> Option<Reply> {
        let doc = xml::parse(&String::from_utf8_lossy(body)).ok()?;
        let max = self.rules.route53_tag_changes;
        let adds = doc.all(&["AddTags", "Tag"]).len();
        let removes = doc.all(&["RemoveTagKeys", "Key"]).len();
        let field = if adds > max {
            "addTags"
        } else if removes > max {
            "removeTagKeys"
        } else {
            return None;
        };
        self.count(Decision::TagLimitExceeded, &call.action);
        Some(self.r53_error(
            400,
            "InvalidInput",
            &format!("1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"),
        ))
    }

    /// Rule 5. ChangeResourceRecordSets is transactional: Route53 validates
    /// every change against the zone, in order, and makes all of them or
    /// none. A CREATE of a set that exists, a DELETE of one that does not, or
    /// a DELETE whose TTL or values differ from the current ones refuses the
    /// whole batch with `InvalidChangeBatch` (HTTP 400), one message per
    /// refused change, in the standard error shape with the messages as a
    /// bracketed list (as Route53 answers since 2024). A batch holds at most
    /// 1000 ResourceRecord elements and 32,000 characters of values, UPSERT
    /// counting twice (Route53 quotas). Names compare case-insensitively,
    /// with or without the final dot, `\052` being `*`.
    ///
    /// What passes is sent on to moto, but a CREATE identical to one sent
    /// before (the set was deleted since) goes as an UPSERT: it has been
    /// checked, and moto's change journal refuses such a CREATE whenever any
    /// set sorts after it. Batches for one zone are checked and sent one at a
    /// time.
    async fn change_batch(&self, call: &Call, parts: &hyper::http::request::Parts, body: Bytes, zone: &str) -> Reply {
        let Ok(mut doc) = xml::parse(&String::from_utf8_lossy(&body)) else {
            return self.r53_forward(parts, body).await;
        };
        let lock = self.lock_for(&format!("zone\n{zone}"));
        let _held = lock.lock().await;
        let changes: Vec<RecordChange> =
            doc.all(&["ChangeBatch", "Changes", "Change"]).into_iter().map(RecordChange::from_xml).collect();
        let (mut records, mut chars) = (0usize, 0usize);
        for c in &changes {
            let weight = if c.action == "UPSERT" { 2 } else { 1 };
            records += weight * c.set.values.len();
            chars += weight * c.set.values.iter().map(|v| v.chars().count()).sum::<usize>();
        }
        if records > 1000 || chars > 32_000 {
            self.count(Decision::BatchTooLarge, &call.action);
            let msg = if records > 1000 {
                "Number of records limit of 1000 exceeded."
            } else {
                "Number of characters limit of 32000 exceeded."
            };
            return self.r53_error(400, "InvalidChangeBatch", &format!("[{msg}]"));
        }
        let Some((apex, mut current)) = self.record_sets(parts, zone).await else {
            // moto does not know the zone: let it say so.
            return self.r53_forward(parts, body).await;
        };
        let mut refused = Vec::new();
        for c in &changes {
            let key = c.set.key();
            let shown = c.set.shown();
            let name = norm_name(&c.set.name);
            if name != apex && !name.ends_with(&format!(".{apex}")) {
                refused.push(format!("RRSet with DNS name {} is not permitted in zone {apex}.", c.set.name));
                continue;
            }
            match c.action.as_str() {
                "CREATE" if current.contains_key(&key) => {
                    refused.push(format!("Tried to create resource record set {shown} but it already exists"));
                }
                "CREATE" | "UPSERT" => {
                    current.insert(key, c.set.clone());
                }
                "DELETE" => match current.get(&key) {
                    None => refused.push(format!("Tried to delete resource record set {shown} but it was not found")),
                    Some(have) if !have.same_data(&c.set) => refused.push(format!(
                        "Tried to delete resource record set {shown} but the values provided do not match the current values"
                    )),
                    Some(_) => {
                        current.remove(&key);
                    }
                },
                other => refused.push(format!("Invalid action `{other}`: expected CREATE, DELETE or UPSERT")),
            }
        }
        if !refused.is_empty() {
            self.count(Decision::BatchRefused, &call.action);
            return self.r53_error(400, "InvalidChangeBatch", &format!("[{}]", refused.join(", ")));
        }
        let mut rewritten = false;
        if let Some(list) = doc.at_mut(&["ChangeBatch", "Changes"]) {
            let mut st = self.state.lock().unwrap();
            for change in list.elements_mut() {
                if change.child_text("Action").as_deref() != Some("CREATE") {
                    continue;
                }
                let mut text = String::new();
                change.write(&mut text);
                if !st.created.insert(format!("{zone}\n{text}")) {
                    change.set_child_text("Action", "UPSERT");
                    rewritten = true;
                }
            }
        }
        let body = if rewritten { Bytes::from(doc.to_document()) } else { body };
        self.r53_forward(parts, body).await
    }

    /// The zone's apex and record sets, read from moto.
    async fn record_sets(
        &self,
        parts: &hyper::http::request::Parts,
        zone: &str,
    ) -> Option<(String, HashMap<SetKey, RecordSet>)> {
        let mut sets = HashMap::new();
        let mut apex = None;
        let mut next: Option<(String, String, Option<String>)> = None;
        loop {
            let mut path = format!("/2013-04-01/hostedzone/{zone}/rrset?maxitems=300");
            if let Some((name, t, id)) = next.take() {
                path.push_str(&format!("&name={}&type={t}", urlencode(&name)));
                if let Some(id) = id {
                    path.push_str(&format!("&identifier={}", urlencode(&id)));
                }
            }
            let r = self.send(&Method::GET, &path, &parts.headers, Bytes::new()).await;
            if !r.ok() {
                return None;
            }
            let doc = xml::parse(&r.text()).ok()?;
            for e in doc.all(&["ResourceRecordSets", "ResourceRecordSet"]) {
                let set = RecordSet::from_xml(e);
                if set.rtype == "SOA" {
                    apex = Some(norm_name(&set.name));
                }
                sets.insert(set.key(), set);
            }
            if doc.child_text("IsTruncated").as_deref() != Some("true") {
                break;
            }
            let name = doc.child_text("NextRecordName")?;
            let t = doc.child_text("NextRecordType")?;
            next = Some((name, t, doc.child_text("NextRecordIdentifier")));
        }
        Some((apex?, sets))
    }
}

fn reply(status: u16, body: String) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "text/xml".parse().unwrap());
    Reply { status: StatusCode::from_u16(status).expect("a status code"), headers, body: Bytes::from(body) }
}

/// `Filter.N.Value.M`.
fn is_filter_value(k: &str) -> bool {
    k.starts_with("Filter.") && k.contains(".Value.")
}

/// Whether an EC2 parameter can name an object by ID: not a filter value,
/// a tag, a description or the call's own bookkeeping.
fn names_an_object(k: &str) -> bool {
    !(["Action", "Version", "ClientToken", "DryRun", "Description", "GroupDescription", "GroupName"].contains(&k)
        || k.starts_with("Filter.")
        || k.starts_with("TagSpecification.")
        || k.starts_with("Tag."))
}

/// The parameters a client token is bound to, in a stable order.
fn comparable(params: &[(String, String)]) -> Vec<(String, String)> {
    let volatile = |k: &str| {
        k.starts_with("X-Amz-")
            || matches!(
                k,
                "Signature" | "SignatureMethod" | "SignatureVersion" | "Timestamp" | "Expires" | "AWSAccessKeyId"
            )
    };
    let mut p: Vec<(String, String)> = params.iter().filter(|(k, _)| !volatile(k)).cloned().collect();
    p.sort();
    p
}

/// The creates whose new objects rule 7 hides: action, path to the new ID in
/// the answer, kind.
const CREATED: &[(&str, &[&str], Kind)] = &[
    ("CreateVpc", &["vpc", "vpcId"], Kind::Vpc),
    ("CreateSubnet", &["subnet", "subnetId"], Kind::Subnet),
    ("CreateInternetGateway", &["internetGateway", "internetGatewayId"], Kind::InternetGateway),
    ("CreateRouteTable", &["routeTable", "routeTableId"], Kind::RouteTable),
    ("CreateSecurityGroup", &["groupId"], Kind::Group),
    ("RunInstances", &["instancesSet", "item", "instanceId"], Kind::Instance),
    ("ImportKeyPair", &["keyName"], Kind::KeyPair),
    ("CreateKeyPair", &["keyName"], Kind::KeyPair),
];

/// The listings rule 7 leaves new objects out of: action, path to the list,
/// the element holding an item's ID.
const LISTINGS: &[(&str, &[&str], &str)] = &[
    ("DescribeVpcs", &["vpcSet"], "vpcId"),
    ("DescribeSubnets", &["subnetSet"], "subnetId"),
    ("DescribeInternetGateways", &["internetGatewaySet"], "internetGatewayId"),
    ("DescribeRouteTables", &["routeTableSet"], "routeTableId"),
    ("DescribeSecurityGroups", &["securityGroupInfo"], "groupId"),
    ("DescribeKeyPairs", &["keySet"], "keyName"),
];

fn set_state(item: &mut Element, name: &str, code: &str) {
    if let Some(s) = item.child_mut("instanceState") {
        s.set_child_text("code", code);
        s.set_child_text("name", name);
    }
}

/// A booting instance has no public IP or public DNS name yet.
fn strip_public_address(item: &mut Element) {
    item.remove_children("ipAddress");
    if let Some(d) = item.child_mut("dnsName") {
        d.set_text("");
    }
    if let Some(nics) = item.child_mut("networkInterfaceSet") {
        nics.remove_descendants("association");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A DNS name as Route53 compares them: `\ddd` escapes decoded, lower case,
/// no final dot.
pub fn norm_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(code) = name.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out.to_ascii_lowercase().trim_end_matches('.').to_string()
}

type SetKey = (String, String, Option<String>);

#[derive(Debug, Clone)]
struct RecordSet {
    name: String,
    rtype: String,
    set_id: Option<String>,
    ttl: Option<String>,
    values: Vec<String>,
    /// (DNS name, zone, evaluate health) of an alias.
    alias: Option<(String, String, String)>,
}

impl RecordSet {
    fn from_xml(e: &Element) -> RecordSet {
        RecordSet {
            name: e.child_text("Name").unwrap_or_default(),
            rtype: e.child_text("Type").unwrap_or_default(),
            set_id: e.child_text("SetIdentifier"),
            ttl: e.child_text("TTL"),
            values: e.all(&["ResourceRecords", "ResourceRecord", "Value"]).iter().map(|v| v.text()).collect(),
            alias: e.child("AliasTarget").map(|a| {
                (
                    norm_name(&a.child_text("DNSName").unwrap_or_default()),
                    a.child_text("HostedZoneId").unwrap_or_default(),
                    a.child_text("EvaluateTargetHealth").unwrap_or_default(),
                )
            }),
        }
    }

    fn key(&self) -> SetKey {
        (norm_name(&self.name), self.rtype.to_ascii_uppercase(), self.set_id.clone())
    }

    /// `[name='a.example.com.', type='A']`, as Route53 names a set (it
    /// keeps names in lower case).
    fn shown(&self) -> String {
        let lower = self.name.to_ascii_lowercase();
        let name = if lower.ends_with('.') { lower } else { format!("{lower}.") };
        match &self.set_id {
            Some(id) => format!("[name='{name}', type='{}', set-identifier='{id}']", self.rtype),
            None => format!("[name='{name}', type='{}']", self.rtype),
        }
    }

    /// The same TTL, values (in any order) and alias.
    fn same_data(&self, other: &RecordSet) -> bool {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        self.ttl == other.ttl && sorted(&self.values) == sorted(&other.values) && self.alias == other.alias
    }
}

struct RecordChange {
    action: String,
    set: RecordSet,
}

impl RecordChange {
    fn from_xml(e: &Element) -> RecordChange {
        let set = e.child("ResourceRecordSet").map(RecordSet::from_xml).unwrap_or_else(|| RecordSet {
            name: String::new(),
            rtype: String::new(),
            set_id: None,
            ttl: None,
            values: Vec::new(),
            alias: None,
        });
        RecordChange { action: e.child_text("Action").unwrap_or_default(), set }
    }
}
