//! The EC2 and VPC types against what real AWS does and moto does not, one
//! behaviour per test, driven through the `Provider` trait with the strict
//! AWS layer in front of moto ([`support::strict`]: client tokens honoured,
//! 200 filter values per call, new objects not seen at once, instances
//! `pending` while they boot) and a [`FaultProxy`](support::faultproxy)
//! before it that records every call and answers chosen ones as AWS would:
//!
//! - at most 200 filter values per Describe call (`FilterLimitExceeded`);
//! - a failed in-place update (tags, resize, security group rules) reports
//!   the object as it now is, and leaves it as it was; a failed resize puts
//!   the old type back and starts the host;
//! - a create whose request landed and whose answer was lost is found
//!   again, not made twice; an attach, associate, authorize or route whose
//!   resend meets its own result succeeds;
//! - references to objects just created (`InvalidGatewayID.NotFound`) and
//!   addresses not yet released (`InvalidIPAddress.InUse`) are retried;
//! - a rule's description changes in place, and new rules are authorized
//!   before old ones are revoked;
//! - an instance launched through an interface specification reads back its
//!   groups;
//! - instances are waited for until `running`, and their public address is
//!   read then.
//!
//! Lost answers of the creates that take a client token (RunInstances,
//! CreateRouteTable) rely on the strict layer's idempotency: moto alone
//! would make a second object for the SDK's resend, and AWS does not.

use crate::support;

use berth::addr::InstanceAddr;
use berth::providers::aws::AwsProvider;
use berth::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Provider, ProviderErrorKind};
use berth::value::{Value, obj};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::faultproxy::{Call, FaultProxy, Faults, LandThenDrop, Permanent, Service};
use support::moto::Moto;
use support::strict::{Decision, Rules};

fn s(v: &str) -> Value {
    Value::str(v)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

/// Every EC2 call the proxy saw, in order, refused or forwarded.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    /// A rule that refuses nothing and records what no refusal took: it
    /// goes last. Refusals made with [`Recorder::refuse`] record their own.
    fn rule(&self) -> Permanent {
        let calls = self.0.clone();
        Permanent::new("Unused", 400, "unused", move |c: &Call| {
            if c.service == Service::Ec2 {
                calls.lock().unwrap().push(c.clone());
            }
            false
        })
    }

    /// A refusal with `code` for the first `times` requests `matches` picks
    /// out; the rest go through. The proxy asks a rule once when it decides
    /// and once more for the refusal it sends: a refusal is remembered until
    /// that second question, and recorded once.
    fn refuse(
        &self,
        times: u32,
        code: &str,
        status: u16,
        matches: impl Fn(&Call) -> bool + Send + Sync + 'static,
    ) -> Permanent {
        let left = Arc::new(Mutex::new((times, false)));
        let calls = self.0.clone();
        Permanent::new(code, status, "refused by the test", move |c: &Call| {
            if !matches(c) {
                return false;
            }
            let mut l = left.lock().unwrap();
            if l.1 {
                l.1 = false;
                return true;
            }
            if l.0 == 0 {
                return false;
            }
            l.0 -= 1;
            l.1 = true;
            calls.lock().unwrap().push(c.clone());
            true
        })
    }

    fn actions(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|c| c.action.clone()).collect()
    }

    fn calls(&self, action: &str) -> Vec<Call> {
        self.0.lock().unwrap().iter().filter(|c| c.action == action).cloned().collect()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// A switch a test turns on once its set-up is done.
#[derive(Clone, Default)]
struct Armed(Arc<std::sync::atomic::AtomicBool>);

impl Armed {
    fn arm(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn ec2_action(action: &'static str) -> impl Fn(&Call) -> bool + Send + Sync + 'static {
    move |c| c.service == Service::Ec2 && c.action == action
}

struct Env {
    /// This suite calls AWS from the test process (see `support::stats`).
    _calls: tokio::sync::RwLockReadGuard<'static, ()>,
    moto: Moto,
    _proxy: FaultProxy,
    p: AwsProvider,
    lineage: String,
    rec: Recorder,
    /// moto directly, for checks that must not go through the proxy.
    direct: aws_sdk_ec2::Client,
}

/// moto behind the strict layer and a proxy with `faults` (refusals made
/// with `rec`), and a provider whose eventual-consistency retries stop after
/// `deadline`.
async fn env_with(rec: Recorder, faults: Faults, deadline: std::time::Duration) -> Env {
    env_with_rules(rec, faults, Rules::test(), deadline).await
}

async fn env_with_rules(rec: Recorder, faults: Faults, rules: Rules, deadline: std::time::Duration) -> Env {
    let calls = support::stats::shared().await;
    let moto = Moto::start();
    let proxy = FaultProxy::start_layered(&moto.endpoint, faults.with_permanent(rec.rule()), rules);
    let p = AwsProvider::from_config(&obj([
        ("region", s("us-east-1")),
        ("endpoint_url", s(&proxy.endpoint)),
        ("access_key", s("testing")),
        ("secret_key", Value::Sensitive(Box::new(s("testing")))),
        ("max_retries", Value::Number(3.0)),
    ]))
    .await
    .expect("configure the aws provider")
    .with_consistency_deadline(deadline);
    let direct = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    Env { _calls: calls, moto, _proxy: proxy, p, lineage: uuid::Uuid::new_v4().to_string(), rec, direct }
}

impl Env {
    fn ctx(&self, addr: &str) -> OpContext {
        OpContext::new(addr.parse::<InstanceAddr>().unwrap(), self.lineage.clone(), 0).with_token(OpContext::fresh_token())
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>) -> Vec<ApplyOutcome> {
        let n = ops.len();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        self.p.apply(type_, ops, tx).await;
        let mut out: Vec<Option<ApplyOutcome>> = vec![None; n];
        while let Some((i, o)) = rx.recv().await {
            out[i] = Some(o);
        }
        out.into_iter().map(|o| o.expect("every operation reports")).collect()
    }

    /// Plans and applies one create; returns its outcome.
    async fn try_create(&self, type_: &str, addr: &str, config: &Value) -> ApplyOutcome {
        let ctx = self.ctx(addr);
        let planned = self.p.plan(&ctx, type_, None, config).await.unwrap_or_else(|e| panic!("plan {addr}: {e}"));
        self.apply(type_, vec![ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.after } }]).await.remove(0)
    }

    async fn create(&self, type_: &str, addr: &str, config: &Value) -> Value {
        let o = self.try_create(type_, addr, config).await;
        if let Some(e) = o.error {
            panic!("create {addr}: {e}\nmoto log:\n{}", tail(&self.moto.log(), 30));
        }
        o.state.expect("a create returns its state")
    }

    /// Plans an in-place update from `prior` and applies it.
    async fn try_update(&self, type_: &str, addr: &str, prior: &Value, config: &Value) -> ApplyOutcome {
        let ctx = self.ctx(addr);
        let planned = self.p.plan(&ctx, type_, Some(prior), config).await.unwrap();
        assert!(planned.requires_replace.is_empty(), "{addr}: unexpected replace {:?}", planned.requires_replace);
        let op = ApplyOp { ctx, kind: ChangeKind::Update { prior: prior.clone(), planned: planned.after } };
        self.apply(type_, vec![op]).await.remove(0)
    }

    async fn refresh(&self, type_: &str, addr: &str, prior: &Value) -> Option<Value> {
        self.p.refresh(type_, vec![(self.ctx(addr), prior.clone())]).await.remove(0).expect("refresh")
    }

    /// Refreshes `prior` and plans `config` on it: the plan must change
    /// nothing.
    async fn assert_no_op(&self, type_: &str, addr: &str, prior: &Value, config: &Value) {
        let now = self.refresh(type_, addr, prior).await.unwrap_or_else(|| panic!("{addr} is gone"));
        let p = self.p.plan(&self.ctx(addr), type_, Some(&now), config).await.unwrap();
        assert!(p.requires_replace.is_empty(), "{addr}: {:?}", p.requires_replace);
        assert_eq!(p.after, now, "{addr}: the next plan is not a no-op");
    }

    async fn ami(&self) -> String {
        let out = self.direct.describe_images().owners("amazon").send().await.unwrap();
        let mut images: Vec<_> = out
            .images()
            .iter()
            .filter(|i| i.name().is_some_and(|n| n.starts_with("amzn2-ami-hvm-") && n.ends_with("x86_64-gp2")))
            .collect();
        images.sort_by_key(|i| i.creation_date().map(str::to_string));
        images.last().and_then(|i| i.image_id()).expect("an amzn2 image in moto").to_string()
    }

    /// Live instances of this test's lineage.
    async fn live_instances(&self) -> Vec<aws_sdk_ec2::types::Instance> {
        let out = self.direct.describe_instances().filters(self.lineage_filter()).send().await.unwrap();
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated"))
            .cloned()
            .collect()
    }

    fn lineage_filter(&self) -> aws_sdk_ec2::types::Filter {
        aws_sdk_ec2::types::Filter::builder().name("tag:berth:lineage").values(&self.lineage).build()
    }
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How many filter values an EC2 call carries, over all its filters.
fn filter_values(c: &Call) -> usize {
    c.params.iter().filter(|(k, _)| k.starts_with("Filter.") && k.contains(".Value.")).count()
}

fn instance_config(ami: &str) -> Value {
    obj([("ami", s(ami)), ("instance_type", s("t3.micro")), ("tags", obj([("Name", s("host"))]))])
}

// ------------------------------------------------------- filter-value limit

/// EC2's `FilterLimitExceeded`: "The maximum number of filter values
/// specified on a single call is 200". A refresh of 300 instances and of
/// 201 security groups stays under it, in ceil(N/200) calls per type.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_stays_within_200_filter_values_per_call() {
    let limit = Permanent::new(
        "FilterLimitExceeded",
        400,
        "The maximum number of filter values specified on a single call is 200",
        |c: &Call| c.service == Service::Ec2 && filter_values(c) > 200,
    );
    let env = env_with(Recorder::default(), Faults::none().with_permanent(limit), DEADLINE).await;
    let ami = env.ami().await;
    let out = env
        .direct
        .run_instances()
        .image_id(&ami)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(300)
        .max_count(300)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = out.instances().iter().filter_map(|i| i.instance_id()).map(str::to_string).collect();
    let batch: Vec<(OpContext, Value)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (env.ctx(&format!("aws_instance.fleet[{i}]")), obj([("id", s(id))])))
        .collect();
    env.rec.clear();
    let refreshed = env.p.refresh("aws_instance", batch).await;
    for (r, id) in refreshed.iter().zip(&ids) {
        let r = r.as_ref().unwrap_or_else(|e| panic!("refresh: {e}"));
        assert_eq!(r.as_ref().and_then(|v| v.get_str("id")), Some(id.as_str()));
    }
    let calls = env.rec.calls("DescribeInstances");
    assert_eq!(calls.len(), 2, "ceil(300/200) calls: {:?}", calls.iter().map(filter_values).collect::<Vec<_>>());
    assert!(calls.iter().all(|c| filter_values(c) <= 200));

    let vpc = env.direct.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    let mut batch = Vec::new();
    for i in 0..201 {
        let g = env
            .direct
            .create_security_group()
            .group_name(format!("g{i}"))
            .description("many")
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        batch.push((env.ctx(&format!("aws_security_group.g[{i}]")), obj([("id", s(g.group_id().unwrap()))])));
    }
    env.rec.clear();
    let refreshed = env.p.refresh("aws_security_group", batch).await;
    assert!(refreshed.iter().all(|r| matches!(r, Ok(Some(_)))), "{:?}", refreshed.iter().find(|r| r.is_err()));
    assert_eq!(env.rec.calls("DescribeSecurityGroups").len(), 2);
}

// ------------------------------------------------- failed in-place updates

/// A VPC update whose DNS change lands and whose tag change is refused: the
/// outcome is the VPC as it now is (new DNS setting, old tags), and the
/// next plan proposes only the tags again, in place.
#[tokio::test(flavor = "multi_thread")]
async fn failed_vpc_tag_update_reports_the_vpc_as_it_is() {
    let rec = Recorder::default();
    let refuse = rec.refuse(u32::MAX, "UnauthorizedOperation", 403, ec2_action("CreateTags"));
    let env = env_with(rec, Faults::none().with_permanent(refuse), DEADLINE).await;
    let addr = "aws_vpc.main";
    let before = obj([("cidr_block", s("10.0.0.0/16")), ("tags", obj::<&str>([]))]);
    let vpc = env.create("aws_vpc", addr, &before).await;
    let after = obj([
        ("cidr_block", s("10.0.0.0/16")),
        ("enable_dns_hostnames", Value::Bool(true)),
        ("tags", obj([("Name", s("main"))])),
    ]);
    let o = env.try_update("aws_vpc", addr, &vpc, &after).await;
    let e = o.error.expect("the tag change is refused");
    assert!(e.message.contains("CreateTags") && e.message.contains("UnauthorizedOperation"), "{e}");
    let st = o.state.expect("a failed update reports the object");
    assert_eq!(st.get("enable_dns_hostnames"), Some(&Value::Bool(true)), "the DNS change landed: {st}");
    assert_eq!(st.get("tags"), Some(&obj::<&str>([])), "the tags did not: {st}");
    assert_eq!(env.refresh("aws_vpc", addr, &st).await.as_ref(), Some(&st), "the outcome is what a read shows");
    let p = env.p.plan(&env.ctx(addr), "aws_vpc", Some(&st), &after).await.unwrap();
    assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
    assert_eq!(p.after.get("tags"), Some(&obj([("Name", s("main"))])));
}

/// A resize whose ModifyInstanceAttribute is refused: the host is started
/// again with its old type, and the outcome says so.
#[tokio::test(flavor = "multi_thread")]
async fn failed_resize_starts_the_host_again() {
    let rec = Recorder::default();
    let refuse = rec.refuse(u32::MAX, "InvalidParameterValue", 400, |c: &Call| {
        c.service == Service::Ec2 && c.action == "ModifyInstanceAttribute" && c.param("InstanceType.Value").is_some()
    });
    let env = env_with(rec, Faults::none().with_permanent(refuse), DEADLINE).await;
    let ami = env.ami().await;
    let addr = "aws_instance.app";
    let host = env.create("aws_instance", addr, &instance_config(&ami)).await;
    let id = host.get_str("id").unwrap().to_string();
    let mut bigger = instance_config(&ami);
    if let Value::Map(m) = &mut bigger {
        m.insert("instance_type".into(), s("t3.small"));
    }
    let o = env.try_update("aws_instance", addr, &host, &bigger).await;
    let e = o.error.expect("the resize is refused");
    assert!(e.message.contains("InvalidParameterValue"), "{e}");
    assert_eq!(e.attribute.as_deref(), Some("instance_type"));
    let st = o.state.expect("the host as it is");
    assert_eq!(st.get_str("instance_state"), Some("running"), "{st}");
    assert_eq!(st.get_str("instance_type"), Some("t3.micro"), "{st}");
    let i = &env.live_instances().await[0];
    assert_eq!(i.instance_id(), Some(id.as_str()));
    assert_eq!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"), "the host runs again");
    let actions = env.rec.actions();
    let pos = |a: &str| actions.iter().position(|x| x == a);
    assert!(pos("StopInstances") < pos("StartInstances"), "{actions:?}");
    // The next plan proposes the resize again, in place.
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &bigger).await.unwrap();
    assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
    assert_eq!(p.after.get_str("instance_type"), Some("t3.small"));
}

/// A resize whose start with the new type is refused (no capacity for it):
/// the old type goes back and the host starts with it.
#[tokio::test(flavor = "multi_thread")]
async fn failed_start_after_resize_puts_the_old_type_back() {
    // EC2 answers a start it has no capacity for with 500
    // `InsufficientInstanceCapacity`, which the SDK retries: refuse more
    // than its attempts.
    let rec = Recorder::default();
    let refuse = rec.refuse(4, "InsufficientInstanceCapacity", 500, ec2_action("StartInstances"));
    let env = env_with(rec, Faults::none().with_permanent(refuse), DEADLINE).await;
    let ami = env.ami().await;
    let addr = "aws_instance.app";
    let host = env.create("aws_instance", addr, &instance_config(&ami)).await;
    let mut bigger = instance_config(&ami);
    if let Value::Map(m) = &mut bigger {
        m.insert("instance_type".into(), s("t3.small"));
    }
    let o = env.try_update("aws_instance", addr, &host, &bigger).await;
    let e = o.error.expect("the start is refused");
    assert!(e.message.contains("InsufficientInstanceCapacity"), "{e}");
    let st = o.state.expect("the host as it is");
    assert_eq!(st.get_str("instance_state"), Some("running"), "{st}");
    assert_eq!(st.get_str("instance_type"), Some("t3.micro"), "the old type is back: {st}");
    let i = &env.live_instances().await[0];
    assert_eq!(i.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    let types: Vec<String> = env
        .rec
        .calls("ModifyInstanceAttribute")
        .iter()
        .filter_map(|c| c.param("InstanceType.Value").map(str::to_string))
        .collect();
    assert_eq!(types, ["t3.small", "t3.micro"], "changed, then put back");
}

/// A rule change whose authorize is refused leaves the old rules in place
/// (nothing was revoked first) and reports the group as it is.
#[tokio::test(flavor = "multi_thread")]
async fn failed_rule_change_keeps_the_old_rules() {
    let rec = Recorder::default();
    let armed = Armed::default();
    let refuse = {
        let armed = armed.clone();
        rec.refuse(u32::MAX, "RulesPerSecurityGroupLimitExceeded", 400, move |c: &Call| {
            armed.on() && c.action == "AuthorizeSecurityGroupIngress"
        })
    };
    let env = env_with(rec, Faults::none().with_permanent(refuse), DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.1.0.0/16"))])).await;
    let rule = |port: f64| {
        obj([
            ("from_port", Value::Number(port)),
            ("to_port", Value::Number(port)),
            ("protocol", s("tcp")),
            ("cidr_blocks", list(&["10.0.0.0/8"])),
        ])
    };
    let cfg = |port: f64| {
        obj([("name", s("web")), ("vpc_id", s(vpc.get_str("id").unwrap())), ("ingress", Value::List(vec![rule(port)]))])
    };
    let addr = "aws_security_group.web";
    let sg = env.create("aws_security_group", addr, &cfg(22.0)).await;
    armed.arm();
    env.rec.clear();
    let o = env.try_update("aws_security_group", addr, &sg, &cfg(443.0)).await;
    let e = o.error.expect("the authorize is refused");
    assert_eq!(e.attribute.as_deref(), Some("ingress"), "{e}");
    assert!(!env.rec.actions().iter().any(|a| a.starts_with("Revoke")), "nothing revoked: {:?}", env.rec.actions());
    let st = o.state.expect("the group as it is");
    assert_eq!(st.get("ingress"), sg.get("ingress"), "the old rule is still there: {st}");
    let groups = env.direct.describe_security_groups().group_ids(sg.get_str("id").unwrap()).send().await.unwrap();
    let rules = groups.security_groups()[0].ip_permissions().to_vec();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].from_port(), Some(22), "port 22 is still open: {rules:?}");
    // The next plan proposes the change again, in place.
    let p = env.p.plan(&env.ctx(addr), "aws_security_group", Some(&st), &cfg(443.0)).await.unwrap();
    assert!(p.requires_replace.is_empty(), "{:?}", p.requires_replace);
}

// ------------------------------------------------------------ tokens

/// CreateRouteTable presents the create attempt's token: the same for a
/// resend of the attempt (the SDK's, or the next run's after a crash),
/// another for another attempt. So AWS answers a resend with the table the
/// attempt made.
#[tokio::test(flavor = "multi_thread")]
async fn route_table_creates_present_the_attempts_token() {
    let env = env_with(Recorder::default(), Faults::none(), DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.4.0.0/16"))])).await;
    let cfg = obj([("vpc_id", s(vpc.get_str("id").unwrap()))]);
    let addr = "aws_route_table.rt";
    let attempt = env.ctx(addr);
    let planned = env.p.plan(&attempt, "aws_route_table", None, &cfg).await.unwrap().after;
    for ctx in [attempt.clone(), attempt, env.ctx(addr)] {
        let op = ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.clone() } };
        let o = env.apply("aws_route_table", vec![op]).await.remove(0);
        assert!(o.error.is_none(), "{:?}", o.error);
    }
    let tokens: Vec<String> =
        env.rec.calls("CreateRouteTable").iter().map(|c| c.param("ClientToken").unwrap_or_default().to_string()).collect();
    assert_eq!(tokens.len(), 3);
    assert_eq!(tokens[0], tokens[1], "one attempt, one token");
    assert_ne!(tokens[0], tokens[2], "another attempt, another token");
    assert_eq!(tokens[0].len(), 64);
}

// ------------------------------------------------------------ lost answers

/// Each create (and attach, associate, authorize, route) whose request
/// lands and whose answer is lost: the apply finds its object, never makes
/// a second one, and a no-op plan follows.
#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_of_network_creates_are_found_not_repeated() {
    let lost = [
        "CreateVpc",
        "CreateSubnet",
        "CreateInternetGateway",
        "AttachInternetGateway",
        "CreateRouteTable",
        "CreateRoute",
        "AssociateRouteTable",
        "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "RunInstances",
    ];
    let mut faults = Faults::none();
    for a in lost {
        faults = faults.with_land_then_drop(LandThenDrop::new(1, ec2_action(a)));
    }
    // AWS refuses a second association of a subnet (moto returns the first
    // one): the resend of the lost AssociateRouteTable meets that refusal.
    let rec = Recorder::default();
    let seen = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let already = rec.refuse(1, "Resource.AlreadyAssociated", 400, move |c: &Call| {
        if c.action != "AssociateRouteTable" {
            return false;
        }
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(c.param("SubnetId").unwrap_or_default().to_string()).or_default();
        *n += 1;
        // The first call lands (and loses its answer); the resend is refused.
        *n >= 2
    });
    let env = env_with(rec, faults.with_permanent(already), DEADLINE).await;

    let vpc_cfg = obj([("cidr_block", s("10.5.0.0/16")), ("tags", obj([("Name", s("lost"))]))]);
    let vpc = env.create("aws_vpc", "aws_vpc.main", &vpc_cfg).await;
    let vpc_id = vpc.get_str("id").unwrap().to_string();
    let subnet_cfg = obj([("vpc_id", s(&vpc_id)), ("cidr_block", s("10.5.1.0/24")), ("availability_zone", s("us-east-1a"))]);
    let subnet = env.create("aws_subnet", "aws_subnet.a", &subnet_cfg).await;
    let igw_cfg = obj([("vpc_id", s(&vpc_id))]);
    let igw = env.create("aws_internet_gateway", "aws_internet_gateway.gw", &igw_cfg).await;
    assert_eq!(igw.get_str("vpc_id"), Some(vpc_id.as_str()));
    let rt_cfg = obj([
        ("vpc_id", s(&vpc_id)),
        ("route", Value::List(vec![obj([("cidr_block", s("0.0.0.0/0")), ("gateway_id", s(igw.get_str("id").unwrap()))])])),
    ]);
    let rt = env.create("aws_route_table", "aws_route_table.public", &rt_cfg).await;
    let assoc_cfg = obj([("subnet_id", s(subnet.get_str("id").unwrap())), ("route_table_id", s(rt.get_str("id").unwrap()))]);
    let assoc = env.create("aws_route_table_association", "aws_route_table_association.a", &assoc_cfg).await;
    assert!(assoc.get_str("id").unwrap().starts_with("rtbassoc-"), "{assoc}");
    let sg_cfg = obj([
        ("name", s("lost")),
        ("vpc_id", s(&vpc_id)),
        (
            "ingress",
            Value::List(vec![obj([
                ("from_port", Value::Number(22.0)),
                ("to_port", Value::Number(22.0)),
                ("protocol", s("tcp")),
                ("cidr_blocks", list(&["10.0.0.0/8"])),
            ])]),
        ),
        (
            "egress",
            Value::List(vec![obj([
                ("from_port", Value::Number(443.0)),
                ("to_port", Value::Number(443.0)),
                ("protocol", s("tcp")),
                ("cidr_blocks", list(&["0.0.0.0/0"])),
            ])]),
        ),
    ]);
    let sg = env.create("aws_security_group", "aws_security_group.web", &sg_cfg).await;
    let ami = env.ami().await;
    let mut host_cfg = instance_config(&ami);
    if let Value::Map(m) = &mut host_cfg {
        m.insert("subnet_id".into(), s(subnet.get_str("id").unwrap()));
        m.insert("vpc_security_group_ids".into(), list(&[sg.get_str("id").unwrap()]));
    }
    let host = env.create("aws_instance", "aws_instance.web", &host_cfg).await;

    // Every chosen call lost its answer once; the resends of the two with a
    // client token were answered with their first objects.
    let stats = env._proxy.stats();
    assert_eq!(stats.count(support::faultproxy::Fault::Landed), lost.len() as u64, "{:?}", stats.by_action);
    // Exactly one object of each, in moto.
    let f = || env.lineage_filter();
    let d = &env.direct;
    assert_eq!(d.describe_vpcs().filters(f()).send().await.unwrap().vpcs().len(), 1, "VPCs");
    assert_eq!(d.describe_subnets().filters(f()).send().await.unwrap().subnets().len(), 1, "subnets");
    assert_eq!(d.describe_internet_gateways().filters(f()).send().await.unwrap().internet_gateways().len(), 1, "gateways");
    assert_eq!(d.describe_security_groups().filters(f()).send().await.unwrap().security_groups().len(), 1, "groups");
    assert_eq!(d.describe_route_tables().filters(f()).send().await.unwrap().route_tables().len(), 1, "route tables");
    assert_eq!(env.live_instances().await.len(), 1, "instances");
    assert!(stats.decided(Decision::TokenReplayed) >= 2, "{:?}", stats.strict_by_action);
    // And nothing left to do.
    env.assert_no_op("aws_vpc", "aws_vpc.main", &vpc, &vpc_cfg).await;
    env.assert_no_op("aws_subnet", "aws_subnet.a", &subnet, &subnet_cfg).await;
    env.assert_no_op("aws_internet_gateway", "aws_internet_gateway.gw", &igw, &igw_cfg).await;
    env.assert_no_op("aws_route_table", "aws_route_table.public", &rt, &rt_cfg).await;
    env.assert_no_op("aws_route_table_association", "aws_route_table_association.a", &assoc, &assoc_cfg).await;
    env.assert_no_op("aws_security_group", "aws_security_group.web", &sg, &sg_cfg).await;
    env.assert_no_op("aws_instance", "aws_instance.web", &host, &host_cfg).await;
}

/// ImportKeyPair whose answer is lost: the SDK's resend meets
/// `InvalidKeyPair.Duplicate` from the key it made, which carries the
/// attempt's token; the read-back that follows may not see the key yet.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_key_import_is_found_not_repeated() {
    let faults = Faults::none().with_land_then_drop(LandThenDrop::new(1, ec2_action("ImportKeyPair")));
    let rules = Rules::test();
    let env = env_with_rules(Recorder::default(), faults, rules, DEADLINE).await;
    let key_cfg = obj([
        ("key_name", s("deployer")),
        ("public_key", s("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbv5gNJcQU6GwJ+dfxZUCKtwWHtb/K9ncklbTa4A5j8 lost")),
    ]);
    let key = env.create("aws_key_pair", "aws_key_pair.deployer", &key_cfg).await;
    assert!(!key.get_str("key_pair_id").unwrap_or_default().is_empty(), "{key}");
    assert_eq!(env._proxy.stats().count(support::faultproxy::Fault::Landed), 1);
    assert_eq!(env.rec.calls("ImportKeyPair").len(), 2, "the first landed, the resend was refused");
    assert_eq!(env.direct.describe_key_pairs().send().await.unwrap().key_pairs().len(), 1, "key pairs");
    env.assert_no_op("aws_key_pair", "aws_key_pair.deployer", &key, &key_cfg).await;
    // A key of the same name that is not this create's is still an error.
    let o = env.try_create("aws_key_pair", "aws_key_pair.other", &key_cfg).await;
    let e = o.error.expect("the name is taken by another address's key");
    assert!(e.message.contains("InvalidKeyPair.Duplicate"), "{e}");
}

/// The same, with the strict layer losing the first answer of every
/// create (its own rule, not the test's): one object per address.
#[tokio::test(flavor = "multi_thread")]
async fn the_strict_layers_lost_answers_are_found_not_repeated() {
    let rules = Rules::test().lose_answers_of(support::strict::CREATES);
    let env = env_with_rules(Recorder::default(), Faults::none(), rules, DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.main", &obj([("cidr_block", s("10.12.0.0/16"))])).await;
    let vpc_id = vpc.get_str("id").unwrap().to_string();
    let subnet_cfg =
        obj([("vpc_id", s(&vpc_id)), ("cidr_block", s("10.12.1.0/24")), ("availability_zone", s("us-east-1a"))]);
    let subnet = env.create("aws_subnet", "aws_subnet.a", &subnet_cfg).await;
    let igw = env.create("aws_internet_gateway", "aws_internet_gateway.gw", &obj([("vpc_id", s(&vpc_id))])).await;
    let rt_cfg = obj([
        ("vpc_id", s(&vpc_id)),
        ("route", Value::List(vec![obj([("cidr_block", s("0.0.0.0/0")), ("gateway_id", s(igw.get_str("id").unwrap()))])])),
    ]);
    let rt = env.create("aws_route_table", "aws_route_table.public", &rt_cfg).await;
    let assoc_cfg = obj([("subnet_id", s(subnet.get_str("id").unwrap())), ("route_table_id", s(rt.get_str("id").unwrap()))]);
    env.create("aws_route_table_association", "aws_route_table_association.a", &assoc_cfg).await;
    let sg = env.create("aws_security_group", "aws_security_group.g", &obj([("name", s("g")), ("vpc_id", s(&vpc_id))])).await;
    let ami = env.ami().await;
    let mut host_cfg = instance_config(&ami);
    if let Value::Map(m) = &mut host_cfg {
        m.insert("subnet_id".into(), s(subnet.get_str("id").unwrap()));
        m.insert("vpc_security_group_ids".into(), list(&[sg.get_str("id").unwrap()]));
    }
    let host = env.create("aws_instance", "aws_instance.web", &host_cfg).await;
    let stats = env._proxy.stats();
    assert!(stats.decided(Decision::AnswerLost) >= 8, "{:?}", stats.strict_by_action);
    let f = || env.lineage_filter();
    let d = &env.direct;
    assert_eq!(d.describe_vpcs().filters(f()).send().await.unwrap().vpcs().len(), 1, "VPCs");
    assert_eq!(d.describe_subnets().filters(f()).send().await.unwrap().subnets().len(), 1, "subnets");
    assert_eq!(d.describe_internet_gateways().filters(f()).send().await.unwrap().internet_gateways().len(), 1);
    assert_eq!(d.describe_route_tables().filters(f()).send().await.unwrap().route_tables().len(), 1, "route tables");
    assert_eq!(d.describe_security_groups().filters(f()).send().await.unwrap().security_groups().len(), 1, "groups");
    assert_eq!(env.live_instances().await.len(), 1, "instances");
    env.assert_no_op("aws_route_table", "aws_route_table.public", &rt, &rt_cfg).await;
    env.assert_no_op("aws_instance", "aws_instance.web", &host, &host_cfg).await;
}

/// A create whose every attempt loses its answer before reaching AWS (so
/// nothing exists to find) fails as `Indeterminate`: the engine keeps it
/// pending, and the next run looks for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_never_got_an_answer_is_indeterminate() {
    // HTTP 500 `InternalError`: the request may or may not have been carried
    // out. Here it never was.
    let rec = Recorder::default();
    let broken = rec.refuse(u32::MAX, "InternalError", 500, ec2_action("CreateVpc"));
    let env = env_with(rec, Faults::none().with_permanent(broken), std::time::Duration::from_secs(2)).await;
    let o = env.try_create("aws_vpc", "aws_vpc.main", &obj([("cidr_block", s("10.6.0.0/16"))])).await;
    let e = o.error.expect("the create fails");
    assert_eq!(e.kind, ProviderErrorKind::Indeterminate, "{e}");
    assert!(o.state.is_none());
    // berth itself sent it three times, looking for a VPC in between; the
    // SDK did not resend it blindly.
    assert_eq!(env.rec.calls("CreateVpc").len(), 3, "{:?}", env.rec.actions());
    assert!(env.rec.calls("DescribeVpcs").len() >= 2, "{:?}", env.rec.actions());
}

// ------------------------------------------------- eventual consistency

/// A route to a gateway created a moment ago may meet
/// `InvalidGatewayID.NotFound`; an instance replaced with the same fixed
/// address may meet `InvalidIPAddress.InUse`. Both are retried.
#[tokio::test(flavor = "multi_thread")]
async fn route_targets_and_addresses_not_yet_visible_are_retried() {
    let rec = Recorder::default();
    let faults = Faults::none()
        .with_permanent(rec.refuse(2, "InvalidGatewayID.NotFound", 400, ec2_action("CreateRoute")))
        .with_permanent(rec.refuse(2, "InvalidIPAddress.InUse", 400, ec2_action("RunInstances")));
    let env = env_with(rec, faults, DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.7.0.0/16"))])).await;
    let vpc_id = vpc.get_str("id").unwrap();
    let igw = env.create("aws_internet_gateway", "aws_internet_gateway.gw", &obj([("vpc_id", s(vpc_id))])).await;
    let rt_cfg = obj([
        ("vpc_id", s(vpc_id)),
        ("route", Value::List(vec![obj([("cidr_block", s("0.0.0.0/0")), ("gateway_id", s(igw.get_str("id").unwrap()))])])),
    ]);
    let rt = env.create("aws_route_table", "aws_route_table.rt", &rt_cfg).await;
    assert_eq!(rt.get("route").and_then(Value::as_list).map(Vec::len), Some(1), "{rt}");
    // Refused twice here, and maybe once more by the strict layer (the
    // table is new too), then made.
    assert!(env.rec.calls("CreateRoute").len() >= 3, "{:?}", env.rec.actions());

    let subnet = env
        .create(
            "aws_subnet",
            "aws_subnet.s",
            &obj([("vpc_id", s(vpc_id)), ("cidr_block", s("10.7.1.0/24")), ("availability_zone", s("us-east-1a"))]),
        )
        .await;
    let ami = env.ami().await;
    let mut cfg = instance_config(&ami);
    if let Value::Map(m) = &mut cfg {
        m.insert("subnet_id".into(), s(subnet.get_str("id").unwrap()));
        m.insert("private_ip".into(), s("10.7.1.10"));
    }
    let host = env.create("aws_instance", "aws_instance.fixed", &cfg).await;
    assert_eq!(host.get_str("private_ip"), Some("10.7.1.10"));
    let launches = env.rec.calls("RunInstances");
    assert!(launches.len() >= 3, "refused twice, then launched: {:?}", env.rec.actions());
    let tokens: std::collections::BTreeSet<_> = launches.iter().map(|c| c.param("ClientToken").map(str::to_string)).collect();
    assert_eq!(tokens.len(), 1, "one launch, one token: {tokens:?}");
    assert_eq!(env.live_instances().await.len(), 1);
}

// ------------------------------------------------------- security groups

/// A description-only change updates the description in place; a port
/// change authorizes the new rule before it revokes the old one.
#[tokio::test(flavor = "multi_thread")]
async fn rule_changes_never_leave_a_window_without_the_rule() {
    let env = env_with(Recorder::default(), Faults::none(), DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.8.0.0/16"))])).await;
    let rule = |port: f64, desc: &str| {
        obj([
            ("from_port", Value::Number(port)),
            ("to_port", Value::Number(port)),
            ("protocol", s("tcp")),
            ("cidr_blocks", list(&["10.0.0.0/8"])),
            ("description", s(desc)),
        ])
    };
    let cfg = |rules: Vec<Value>| {
        obj([
            ("name", s("web")),
            ("vpc_id", s(vpc.get_str("id").unwrap())),
            ("ingress", Value::List(rules.clone())),
            ("egress", Value::List(rules)),
        ])
    };
    let addr = "aws_security_group.web";
    let sg = env.create("aws_security_group", addr, &cfg(vec![rule(22.0, "ssh")])).await;

    env.rec.clear();
    let described = cfg(vec![rule(22.0, "ssh from the office")]);
    let o = env.try_update("aws_security_group", addr, &sg, &described).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    let sg2 = o.state.unwrap();
    let actions: Vec<String> = env.rec.actions().into_iter().filter(|a| !a.starts_with("Describe")).collect();
    assert_eq!(
        actions,
        ["UpdateSecurityGroupRuleDescriptionsIngress", "UpdateSecurityGroupRuleDescriptionsEgress"],
        "a description changes in place"
    );
    env.assert_no_op("aws_security_group", addr, &sg2, &described).await;

    env.rec.clear();
    let moved = cfg(vec![rule(2222.0, "ssh from the office")]);
    let o = env.try_update("aws_security_group", addr, &sg2, &moved).await;
    assert!(o.error.is_none(), "{:?}", o.error);
    let actions: Vec<String> = env.rec.actions().into_iter().filter(|a| !a.starts_with("Describe")).collect();
    assert_eq!(
        actions,
        [
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress",
            "AuthorizeSecurityGroupEgress",
            "RevokeSecurityGroupEgress"
        ],
        "new rules before old ones go"
    );
    env.assert_no_op("aws_security_group", addr, &o.state.unwrap(), &moved).await;
}

// ------------------------------------------------------------ read-back

/// `associate_public_ip_address` launches through an interface
/// specification; moto then reports the groups only on the interface. The
/// state reads them there, so the next plan changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn groups_of_an_instance_launched_with_an_interface_read_back() {
    let env = env_with(Recorder::default(), Faults::none(), DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.3.0.0/16"))])).await;
    let vpc_id = vpc.get_str("id").unwrap();
    let subnet = env
        .create(
            "aws_subnet",
            "aws_subnet.s",
            &obj([("vpc_id", s(vpc_id)), ("cidr_block", s("10.3.1.0/24")), ("availability_zone", s("us-east-1a"))]),
        )
        .await;
    let sg = env.create("aws_security_group", "aws_security_group.g", &obj([("name", s("g")), ("vpc_id", s(vpc_id))])).await;
    let ami = env.ami().await;
    let mut cfg = instance_config(&ami);
    if let Value::Map(m) = &mut cfg {
        m.insert("subnet_id".into(), s(subnet.get_str("id").unwrap()));
        m.insert("vpc_security_group_ids".into(), list(&[sg.get_str("id").unwrap()]));
        m.insert("associate_public_ip_address".into(), Value::Bool(true));
    }
    let addr = "aws_instance.public";
    let host = env.create("aws_instance", addr, &cfg).await;
    assert_eq!(host.get("vpc_security_group_ids"), Some(&list(&[sg.get_str("id").unwrap()])), "{host}");
    env.assert_no_op("aws_instance", addr, &host, &cfg).await;
}

// ------------------------------------------------------------ adoption

/// berth dies right after RunInstances: the next run's adoption lists the
/// address's instances, and the first listing after a launch may leave the
/// new instance out (the strict layer does, as EC2 may). It looks again
/// before concluding that the create made nothing, which would launch a
/// second instance.
#[tokio::test(flavor = "multi_thread")]
async fn adoption_looks_again_for_an_instance_not_listed_yet() {
    let rec = Recorder::default();
    let armed = Armed::default();
    // Nothing reads the launch back in the "killed" run.
    let blind = {
        let armed = armed.clone();
        rec.refuse(u32::MAX, "UnauthorizedOperation", 403, move |c: &Call| {
            armed.on() && c.action == "DescribeInstances"
        })
    };
    let env = env_with(rec, Faults::none().with_permanent(blind), std::time::Duration::from_secs(10)).await;
    let ami = env.ami().await;
    let addr = "aws_instance.web";
    let attempt = env.ctx(addr);
    let planned = env.p.plan(&attempt, "aws_instance", None, &instance_config(&ami)).await.unwrap().after;
    armed.arm();
    let op = ApplyOp { ctx: attempt.clone(), kind: ChangeKind::Create { planned } };
    let o = env.apply("aws_instance", vec![op]).await.remove(0);
    assert!(o.error.is_some(), "the read-back was refused");
    let launched = o.state.and_then(|s| s.get_str("id").map(str::to_string)).expect("the launch is known");
    env.rec.clear();
    // The next run: reads work again.
    armed.0.store(false, std::sync::atomic::Ordering::SeqCst);
    let found = env.p.adopt(&attempt, "aws_instance", &Value::Null).await.unwrap().expect("adopted");
    assert_eq!(found.get_str("id"), Some(launched.as_str()));
    let stats = env._proxy.stats();
    assert!(stats.decided(Decision::NotYetVisible) >= 1, "the first listing left it out: {:?}", stats.strict_by_action);
    assert!(env.rec.calls("DescribeInstances").len() >= 2, "{:?}", env.rec.actions());
}

// ------------------------------------------------------------ waiting

/// Instances boot `pending`, with no public address; berth polls, further
/// apart each time, until `running`, and reads the address then.
#[tokio::test(flavor = "multi_thread")]
async fn instances_are_waited_for_until_running() {
    let env = env_with(Recorder::default(), Faults::none(), DEADLINE).await;
    let vpc = env.create("aws_vpc", "aws_vpc.v", &obj([("cidr_block", s("10.13.0.0/16"))])).await;
    let subnet = env
        .create(
            "aws_subnet",
            "aws_subnet.s",
            &obj([
                ("vpc_id", s(vpc.get_str("id").unwrap())),
                ("cidr_block", s("10.13.1.0/24")),
                ("availability_zone", s("us-east-1a")),
            ]),
        )
        .await;
    let ami = env.ami().await;
    let mut cfg = instance_config(&ami);
    if let Value::Map(m) = &mut cfg {
        m.insert("subnet_id".into(), s(subnet.get_str("id").unwrap()));
        m.insert("associate_public_ip_address".into(), Value::Bool(true));
    }
    env.rec.clear();
    let started = std::time::Instant::now();
    let host = env.create("aws_instance", "aws_instance.web", &cfg).await;
    assert_eq!(host.get_str("instance_state"), Some("running"));
    assert!(host.get_str("public_ip").is_some_and(|ip| !ip.is_empty()), "the public address is read at `running`: {host}");
    let stats = env._proxy.stats();
    assert!(stats.decided(Decision::InstanceInTransition) >= 1, "the instance was seen pending: {:?}", stats.strict);
    let polls = env.rec.calls("DescribeInstances").len();
    // A 2.5 s boot: polls at about 0, 1, 2.5, 4.75 s.
    assert!((2..=6).contains(&polls), "{polls} polls in {:?}", started.elapsed());
}

// -------------------------------------------------------------- planning

/// A planned stop and start (a new type) leaves the public address and
/// name unknown until the apply: they change.
#[tokio::test(flavor = "multi_thread")]
async fn a_planned_restart_makes_public_addresses_unknown() {
    let env = env_with(Recorder::default(), Faults::none(), DEADLINE).await;
    let ami = env.ami().await;
    let addr = "aws_instance.app";
    let host = env.create("aws_instance", addr, &instance_config(&ami)).await;
    let mut bigger = instance_config(&ami);
    if let Value::Map(m) = &mut bigger {
        m.insert("instance_type".into(), s("t3.small"));
    }
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&host), &bigger).await.unwrap();
    assert_eq!(p.after.get("public_ip"), Some(&Value::Unknown));
    assert_eq!(p.after.get("public_dns"), Some(&Value::Unknown));
    assert_eq!(p.after.get("private_ip"), host.get("private_ip"), "the private address stays");
    // A tag change alone keeps them.
    let mut retagged = instance_config(&ami);
    if let Value::Map(m) = &mut retagged {
        m.insert("tags".into(), obj([("Name", s("renamed"))]));
    }
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&host), &retagged).await.unwrap();
    assert_eq!(p.after.get("public_ip"), host.get("public_ip"));
}
