//! Throttling and flaky APIs (issue #8): the fleet workload
//! (`tests/fixtures/fleet`: a VPC, subnet, security group, private zone, N
//! hosts and a private record per host) applied through
//! [`FaultProxy`](support::faultproxy), a fault-injecting HTTP proxy on
//! loopback in front of a real moto. What the faults let through goes
//! through the strict AWS layer ([`support::strict`]) with every rule on, so
//! a retry meets what AWS would answer it (the first launch for a repeated
//! client token, `InvalidChangeBatch` for a record created twice, ...).
//!
//! - `throttled_apply_converges`: a share of the requests is answered with
//!   the service's throttling error (EC2 `RequestLimitExceeded`/503, Route53
//!   `Throttling`/400), bare 503s, or a dropped connection. The apply still
//!   converges: exit 0, a fault-free plan shows no changes, moto has exactly
//!   one instance per address and exactly the records, and the debug log
//!   shows the retries.
//! - `permanent_error_stops_only_dependents`: one host's RunInstances is
//!   refused for good. The apply exits 1 naming it; its record is skipped;
//!   every other host and record is created; a later apply converges.
//! - `permanent_error_in_a_shared_dependency`: the security group is refused
//!   for good: every host and record waits on it and is skipped, while the
//!   VPC, subnet and zone are created.
//! - `writes_that_landed_before_the_connection_dropped_are_recognised`: a
//!   write reaches moto and its answer is dropped, so the SDK's retry meets
//!   the write's own result (a record that exists, a security group name
//!   taken, an object already deleted); the apply and the destroy succeed.
//! - `sustained_throttling_does_not_exhaust_the_retry_quota`: 200 calls
//!   through berth's EC2 client with 60% of attempts faulted all succeed
//!   (the SDK's retry quota would have stopped some).
//! - `every_create_answer_lost_once`: the first answer of every create is
//!   lost after it landed (the strict layer's `LostCreateAnswers`); the
//!   apply must still converge without duplicates, and destroy leave nothing.
//! - `converges_under_aws_rate_limits`: 30 hosts and records under AWS's own
//!   rate limits (EC2's token buckets, Route53's five requests a second).
//!
//! Both throttled applies are followed by a destroy through the same faults
//! that must leave nothing behind.
//!
//! Quick variants (a few hosts) run in `cargo test`. The full variant, 30
//! hosts and 30 records with more faults, is ignored by default:
//! `cargo test --test it faults::throttled_apply_converges_full -- --ignored`.
//! Each run prints its seed;
//! `BERTH_FAULT_SEED=N` repeats the proxy's decisions.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use support::aws::Aws;
use support::cli::{Run, Work};
use support::faultproxy::{Call, Fault, Faults, LandThenDrop, Permanent, Service, Stats};
use support::strict::{CREATES, Decision, Ec2Rates};

const FLEET: &str = include_str!("../fixtures/fleet/main.hcl");

/// Runs berth in `w` against `endpoint` (the proxy or moto) with debug logs.
fn berth(w: &Work, endpoint: &str, args: &[&str]) -> Run {
    w.cmd(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("BERTH_LOG", "debug")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run berth")
        .into()
}

fn fleet(hosts: usize) -> (Work, String) {
    let w = Work::new();
    w.write("main.hcl", FLEET);
    (w, format!("hosts={hosts}"))
}

/// What moto holds, read directly (not through the proxy and the layer).
struct World {
    /// Live (not terminated) instances per `berth:address` tag: their
    /// private addresses.
    instances: BTreeMap<String, Vec<String>>,
    vpcs: usize,
    subnets: usize,
    groups: usize,
    /// Zone name -> A records (name -> values).
    zones: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

async fn world(aws: &Aws) -> World {
    let sdk = aws.moto_sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let mut instances: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let out = ec2.describe_instances().send().await.expect("DescribeInstances");
    for i in out.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "terminated") {
            continue;
        }
        let addr = i.tags().iter().find(|t| t.key() == Some("berth:address")).and_then(|t| t.value());
        instances
            .entry(addr.unwrap_or("(untagged)").to_string())
            .or_default()
            .push(i.private_ip_address().unwrap_or_default().to_string());
    }
    let fleet_vpcs: Vec<String> = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()
        .iter()
        .filter(|v| v.cidr_block() == Some("10.40.0.0/16"))
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let subnets = ec2.describe_subnets().send().await.expect("DescribeSubnets");
    let subnets = subnets.subnets().iter().filter(|s| fleet_vpcs.iter().any(|v| s.vpc_id() == Some(v))).count();
    let groups = ec2.describe_security_groups().send().await.expect("DescribeSecurityGroups");
    let groups = groups.security_groups().iter().filter(|g| g.group_name() == Some("fleet-hosts")).count();
    let mut zones = BTreeMap::new();
    let listed = r53.list_hosted_zones().send().await.expect("ListHostedZones");
    for z in listed.hosted_zones() {
        let sets = r53.list_resource_record_sets().hosted_zone_id(z.id()).send().await.expect("ListResourceRecordSets");
        let a: BTreeMap<String, Vec<String>> = sets
            .resource_record_sets()
            .iter()
            .filter(|s| s.r#type().as_str() == "A")
            .map(|s| (s.name().to_string(), s.resource_records().iter().map(|r| r.value().to_string()).collect()))
            .collect();
        // Two zones of one name would be a duplicate create: keep both.
        let key = if zones.contains_key(z.name()) { format!("{} ({})", z.name(), z.id()) } else { z.name().to_string() };
        zones.insert(key, a);
    }
    World { instances, vpcs: fleet_vpcs.len(), subnets, groups, zones }
}

fn host(i: usize) -> String {
    format!("aws_instance.host[{i}]")
}

fn record_name(i: usize) -> String {
    format!("host-{i}.fleet.internal.")
}

/// The fleet of `hosts` exactly: one of each network object, one live
/// instance per address, one record per host pointing at it, nothing else.
fn assert_converged(w: &World, hosts: usize) {
    assert_eq!((w.vpcs, w.subnets, w.groups), (1, 1, 1), "one VPC, subnet and security group");
    let want: BTreeSet<String> = (0..hosts).map(host).collect();
    let have: BTreeSet<String> = w.instances.keys().cloned().collect();
    assert_eq!(have, want, "instances by address: {:?}", w.instances);
    for (addr, ips) in &w.instances {
        assert_eq!(ips.len(), 1, "`{addr}` has {} live instances: {ips:?}", ips.len());
    }
    assert_eq!(w.zones.keys().collect::<Vec<_>>(), vec!["fleet.internal."], "one zone");
    let records = &w.zones["fleet.internal."];
    let want: BTreeMap<String, Vec<String>> = (0..hosts).map(|i| (record_name(i), w.instances[&host(i)].clone())).collect();
    assert_eq!(records, &want, "A records of the zone");
}

/// Lines of the debug log where berth reports a retry of an AWS call.
fn retry_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("berth::") && l.contains("retrying: attempt")).collect()
}

fn report(stats: &Stats) -> String {
    format!(
        "forwarded {}, faults {:?}, by action {:?}, strict layer {:?}",
        stats.forwarded, stats.faults, stats.by_action, stats.strict_by_action
    )
}

/// Applies `hosts` hosts through a proxy faulting `share` of the requests,
/// and checks that it converged.
async fn throttled_apply(hosts: usize, share: f64) {
    let aws = Aws::builder().faults(Faults::flaky(share)).start();
    let (w, var) = fleet(hosts);
    let start = Instant::now();
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    let elapsed = start.elapsed();
    let stats = aws.stats();
    keep_log(&format!("throttled-{hosts}"), &r);
    eprintln!("apply of {hosts} hosts through {share:.0}% faults: {elapsed:?}; {}", report(&stats), share = share * 100.0);
    assert_eq!(
        r.code,
        0,
        "the apply must converge through the faults (seed {})\n{}\nstdout:\n{}\nstderr (last lines):\n{}",
        aws.proxy.seed,
        report(&stats),
        r.stdout,
        tail(&r.stderr, 60)
    );
    assert!(stats.count(Fault::Throttle) > 0, "no throttling was injected: {}", report(&stats));
    assert!(stats.count(Fault::Unavailable) > 0, "no 503 was injected: {}", report(&stats));
    assert!(
        stats.count(Fault::DropBefore) + stats.count(Fault::DropAfter) > 0,
        "no connection was dropped: {}",
        report(&stats)
    );
    // Every fault is retried, and every retry is in the log.
    let retries = retry_lines(&r.stderr);
    assert!(
        retries.len() as u64 >= stats.total_faults(),
        "the debug log shows {} retries for {} faults:\n{}",
        retries.len(),
        stats.total_faults(),
        retries.join("\n")
    );
    for cause in ["after RequestLimitExceeded (HTTP 503)", "after HTTP 503", "after a connection error"] {
        assert!(retries.iter().any(|l| l.contains(cause)), "no retry `{cause}` in the log:\n{}", retries.join("\n"));
    }
    assert!(r.stderr.contains("; retrying after"), "the SDK's own retry lines are in the debug log too");
    // Without faults, nothing is left to do.
    aws.pause_faults(true);
    let r = berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]);
    aws.pause_faults(false);
    r.assert_code(0);
    assert_converged(&world(&aws).await, hosts);
    let inventory: serde_json::Value = serde_json::from_str(&w.read("inventory/hosts.json")).expect("inventory JSON");
    assert!(inventory.to_string().matches("10.40.").count() >= hosts, "inventory lists the hosts: {inventory}");

    // Tearing down through the same faults leaves nothing behind.
    let before = aws.stats().total_faults();
    let r = berth(&w, &aws.endpoint, &["destroy", "--auto-approve", "--var", &var]);
    keep_log(&format!("throttled-{hosts}-destroy"), &r);
    let stats = aws.stats();
    eprintln!("destroy: {} more faults; {}", stats.total_faults() - before, report(&stats));
    assert_eq!(r.code, 0, "destroy through the faults (seed {})\nstderr (last lines):\n{}", aws.proxy.seed, tail(&r.stderr, 60));
    let seen = world(&aws).await;
    assert!(seen.instances.is_empty(), "live instances left: {:?}", seen.instances);
    assert_eq!((seen.vpcs, seen.subnets, seen.groups), (0, 0, 0), "network objects left");
    assert!(seen.zones.is_empty(), "zones left: {:?}", seen.zones);
}

/// Keeps a run's log in the target directory for a look after the test.
fn keep_log(name: &str, r: &Run) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{name}.log"));
    if std::fs::write(&path, format!("{}\n--- stdout ---\n{}", r.stderr, r.stdout)).is_ok() {
        eprintln!("berth's log: {}", path.display());
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_apply_converges() {
    throttled_apply(6, 0.25).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the full variant: 30 hosts and 30 records; cargo test --test it faults::throttled_apply_converges_full -- --ignored"]
async fn throttled_apply_converges_full() {
    throttled_apply(30, 0.35).await;
}

/// The RunInstances that launches `addr`.
fn launches(addr: &'static str) -> impl Fn(&Call) -> bool + Send + Sync {
    move |c| c.service == Service::Ec2 && c.action == "RunInstances" && c.has_tag("berth:address", addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_error_stops_only_dependents() {
    let hosts = 5;
    let refuse = Permanent::new(
        "UnauthorizedOperation",
        403,
        "You are not authorized to perform this operation.",
        launches("aws_instance.host[2]"),
    );
    let aws = Aws::builder().faults(Faults::flaky(0.1).with_permanent(refuse)).start();
    let (w, var) = fleet(hosts);
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    keep_log("permanent-host", &r);
    let stats = aws.stats();
    r.assert_code(1);
    assert!(stats.count(Fault::Permanent) >= 1, "{}", report(&stats));
    // The refusal is not retried: it is not throttling.
    assert_eq!(stats.count(Fault::Permanent), 1, "a permanent error must not be retried: {}", report(&stats));
    let out = format!("{}\n{}", r.stdout, r.stderr);
    assert!(
        out.lines().any(|l| l.contains("aws_instance.host[2]") && l.contains("UnauthorizedOperation")),
        "the error names the resource and the cause:\n{}",
        tail(&r.stderr, 40)
    );
    assert!(out.contains("aws_route53_record.host[2]"), "the skipped record is named:\n{}", tail(&r.stderr, 40));

    // The state has everything but host 2 and its record.
    let state = w.state_addresses();
    for i in 0..hosts {
        let (h, rec) = (host(i), format!("aws_route53_record.host[{i}]"));
        assert_eq!(state.contains(&h), i != 2, "{h} in state: {state:?}");
        assert_eq!(state.contains(&rec), i != 2, "{rec} in state: {state:?}");
    }
    for a in ["aws_vpc.main", "aws_subnet.hosts", "aws_security_group.hosts", "aws_route53_zone.internal"] {
        assert!(state.iter().any(|s| s == a), "{a} in state: {state:?}");
    }
    // And so has moto.
    let seen = world(&aws).await;
    assert!(!seen.instances.contains_key(&host(2)), "{:?}", seen.instances);
    assert_eq!(seen.instances.len(), hosts - 1, "{:?}", seen.instances);
    let records = &seen.zones["fleet.internal."];
    assert!(!records.contains_key(&record_name(2)), "{records:?}");
    assert_eq!(records.len(), hosts - 1, "{records:?}");
    // Each record points at its own host, not at a neighbour of the gap.
    for i in (0..hosts).filter(|i| *i != 2) {
        assert_eq!(records.get(&record_name(i)), seen.instances.get(&host(i)), "record {i}: {records:?}");
    }

    // Without the fault, the next apply finishes the job.
    aws.pause_faults(true);
    berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]).assert_ok();
    berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    assert_converged(&world(&aws).await, hosts);
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_error_in_a_shared_dependency() {
    let hosts = 3;
    let refuse = Permanent::new(
        "InvalidParameterValue",
        400,
        "Value (fleet-hosts) for parameter GroupName is invalid.",
        |c: &Call| c.service == Service::Ec2 && c.action == "CreateSecurityGroup",
    );
    let aws = Aws::builder().faults(Faults::none().with_permanent(refuse)).start();
    let (w, var) = fleet(hosts);
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    r.assert_code(1);
    assert!(
        r.stderr.lines().any(|l| l.contains("aws_security_group.hosts") && l.contains("InvalidParameterValue")),
        "the error names the resource and the cause:\n{}",
        tail(&r.stderr, 40)
    );
    let state = w.state_addresses();
    for a in ["aws_vpc.main", "aws_subnet.hosts", "aws_route53_zone.internal"] {
        assert!(state.iter().any(|s| s == a), "{a} in state: {state:?}");
    }
    assert!(
        !state.iter().any(|s| s.starts_with("aws_security_group.") || s.contains(".host[")),
        "nothing that needs the group was created: {state:?}"
    );
    let seen = world(&aws).await;
    assert!(seen.instances.is_empty(), "{:?}", seen.instances);
    assert_eq!((seen.vpcs, seen.subnets, seen.groups), (1, 1, 0));
    assert_eq!(seen.zones.get("fleet.internal.").map(|r| r.len()), Some(0));

    aws.pause_faults(true);
    berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]).assert_ok();
    berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    assert_converged(&world(&aws).await, hosts);
}

/// A long run under sustained throttling: 200 calls through berth's own EC2
/// client with 60% of all attempts faulted (at most 4 in a row, so each
/// call needs at most 5 of berth's 9 attempts). None may give up. The SDK's
/// standard retry mode also has a retry quota, a token bucket of 500 that
/// every retry after the first of a call drains for good (5 tokens for
/// throttling, 10 for a 503 or a dropped connection); it is meant to stop
/// retry storms in long-lived services, and with it a large apply under
/// heavy throttling fails half-way with attempts left.
#[tokio::test(flavor = "multi_thread")]
async fn sustained_throttling_does_not_exhaust_the_retry_quota() {
    use futures::StreamExt;
    let _calls = support::stats::shared().await;
    let aws = Aws::builder().faults(Faults::flaky(0.6)).start();
    let provider = berth::providers::aws::AwsProvider::from_config(&berth::value::obj([
        ("region", berth::value::Value::str("us-east-1")),
        ("access_key", berth::value::Value::str("testing")),
        ("secret_key", berth::value::Value::str("testing")),
        ("endpoint_url", berth::value::Value::str(&aws.endpoint)),
    ]))
    .await
    .expect("the provider");
    let ec2 = provider.ec2_client().clone();
    let calls = 200;
    let start = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..calls)
        .map(|_| {
            let ec2 = ec2.clone();
            async move { ec2.describe_vpcs().send().await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let stats = aws.stats();
    eprintln!("{calls} calls in {:?}: {}", start.elapsed(), report(&stats));
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| aws_smithy_types::error::display::DisplayErrorContext(e).to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {calls} calls gave up (seed {}); the first: {}",
        failed.len(),
        aws.proxy.seed,
        failed.first().map(String::as_str).unwrap_or_default()
    );
    assert!(stats.total_faults() as f64 > calls as f64 * 0.5, "{}", report(&stats));
}

/// A write lands and its answer is lost; the SDK sends it again and the
/// retry meets the write's own result: a Route53 change batch that CREATEs
/// records (`InvalidChangeBatch`: it already exists) and CreateSecurityGroup
/// (`InvalidGroup.Duplicate`). berth must recognise its own work, not fail.
#[tokio::test(flavor = "multi_thread")]
async fn writes_that_landed_before_the_connection_dropped_are_recognised() {
    let hosts = 3;
    let faults = Faults::none()
        .with_land_then_drop(LandThenDrop::new(1, |c: &Call| {
            c.service == Service::Route53 && c.action == "POST hostedzone/rrset"
        }))
        .with_land_then_drop(LandThenDrop::new(1, |c: &Call| {
            c.service == Service::Ec2 && c.action == "CreateSecurityGroup"
        }));
    let aws = Aws::builder().faults(faults).start();
    let (w, var) = fleet(hosts);
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    keep_log("landed", &r);
    let stats = aws.stats();
    assert_eq!(stats.count(Fault::Landed), 2, "{}", report(&stats));
    assert_eq!(r.code, 0, "the apply must recognise its own writes\n{}", tail(&r.stderr, 40));
    aws.pause_faults(true);
    berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    aws.pause_faults(false);
    assert_converged(&world(&aws).await, hosts);

    // And deletes: their retries find the object already gone (EC2 and
    // DeleteHostedZone answer NotFound, and a record DELETE
    // `InvalidChangeBatch`: not found).
    let deletes = |c: &Call| {
        (c.service == Service::Ec2 && c.action.starts_with("Delete"))
            || (c.service == Service::Route53 && matches!(c.action.as_str(), "POST hostedzone/rrset" | "DELETE hostedzone"))
    };
    aws.proxy.set_faults(Faults::none().with_land_then_drop(LandThenDrop::new(10, deletes)));
    let before = aws.stats().count(Fault::Landed);
    let r = berth(&w, &aws.endpoint, &["destroy", "--auto-approve", "--var", &var]);
    keep_log("landed-destroy", &r);
    let stats = aws.stats();
    assert!(stats.count(Fault::Landed) - before >= 4, "{}", report(&stats));
    assert_eq!(r.code, 0, "the destroy must recognise its own deletes\n{}", tail(&r.stderr, 40));
    let seen = world(&aws).await;
    assert!(seen.instances.is_empty() && seen.zones.is_empty(), "left: {:?} {:?}", seen.instances, seen.zones);
    assert_eq!((seen.vpcs, seen.subnets, seen.groups), (0, 0, 0), "network objects left");
}

/// Every create's first answer is lost after the create landed (the strict
/// layer's `LostCreateAnswers`): the SDK's retry meets what AWS answers a
/// repeated create. RunInstances (with its client token) gets the first
/// launch back; CreateSecurityGroup finds the name taken, a record CREATE
/// finds the record, CreateHostedZone finds its caller reference used; a
/// CreateVpc or CreateSubnet without a token makes a second object or
/// conflicts with the first. The apply must converge with one of each, and
/// the destroy leave nothing.
#[tokio::test(flavor = "multi_thread")]
async fn every_create_answer_lost_once() {
    let hosts = 3;
    let aws = Aws::builder().rules(|r| r.lose_answers_of(CREATES)).start();
    let (w, var) = fleet(hosts);
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    keep_log("lost-answers", &r);
    let stats = aws.stats();
    eprintln!("{}", report(&stats));
    assert!(stats.decided(Decision::AnswerLost) >= 6, "{}", report(&stats));
    assert_eq!(r.code, 0, "the apply must converge when create answers are lost\n{}", tail(&r.stderr, 40));
    berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    assert_converged(&world(&aws).await, hosts);
    let r = berth(&w, &aws.endpoint, &["destroy", "--auto-approve", "--var", &var]);
    assert_eq!(r.code, 0, "destroy\n{}", tail(&r.stderr, 40));
    let seen = world(&aws).await;
    assert!(seen.instances.is_empty() && seen.zones.is_empty(), "left: {:?} {:?}", seen.instances, seen.zones);
    assert_eq!((seen.vpcs, seen.subnets, seen.groups), (0, 0, 0), "network objects left");
}

/// 30 hosts and their records under AWS's real rate limits: EC2's token
/// buckets per action (100 and 20 a second for reads, 50 and 5 for writes,
/// 1000 instances and 2 a second for RunInstances) and Route53's five
/// requests a second. The apply and the destroy converge; the throttling
/// met is in the report.
#[tokio::test(flavor = "multi_thread")]
async fn converges_under_aws_rate_limits() {
    let hosts = 30;
    let aws = Aws::builder().rules(|r| r.ec2_rates(Ec2Rates::aws())).start();
    let (w, var) = fleet(hosts);
    let start = Instant::now();
    let r = berth(&w, &aws.endpoint, &["apply", "--auto-approve", "--var", &var]);
    keep_log("rate-limits", &r);
    let stats = aws.stats();
    eprintln!("apply of {hosts} hosts under AWS's rate limits: {:?}; {}", start.elapsed(), report(&stats));
    assert_eq!(r.code, 0, "the apply must converge under AWS's rate limits\n{}", tail(&r.stderr, 40));
    berth(&w, &aws.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    assert_converged(&world(&aws).await, hosts);
    let r = berth(&w, &aws.endpoint, &["destroy", "--auto-approve", "--var", &var]);
    assert_eq!(r.code, 0, "destroy\n{}", tail(&r.stderr, 40));
    eprintln!("after the destroy: {}", report(&aws.stats()));
}
