//! Throttling and flaky APIs (issue #8): the fleet workload
//! (`tests/fixtures/fleet`: a VPC, subnet, security group, private zone, N
//! hosts and a private record per host) applied through
//! [`FaultProxy`](support::faultproxy), a fault-injecting HTTP proxy on
//! loopback in front of a real moto.
//!
//! - `writes_that_landed_before_the_connection_dropped_are_recognised`: a
//!   write reaches moto and its answer is dropped, so the SDK's retry meets
//!   the write's own result (a record that exists, a security group name
//!   taken, an object already deleted); the apply and the destroy succeed.
//! - `sustained_throttling_does_not_exhaust_the_retry_quota`: 200 calls
//!   through berth's EC2 client with 60% of attempts faulted all succeed
//!   (the SDK's retry quota would have stopped some).
//!
//! Each run prints its seed; `BERTH_FAULT_SEED=N` repeats the proxy's
//! decisions.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use support::cli::{Run, Work};
use support::faultproxy::{Call, Fault, FaultProxy, Faults, LandThenDrop, Service, Stats};
use support::moto::Moto;

const FLEET: &str = include_str!("fixtures/fleet/main.hcl");

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

/// What moto holds, read directly (not through the proxy).
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

async fn world(moto: &Moto) -> World {
    let sdk = moto.sdk_config().await;
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

fn report(stats: &Stats) -> String {
    format!("forwarded {}, faults {:?}, by action {:?}", stats.forwarded, stats.faults, stats.by_action)
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
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint, Faults::flaky(0.6));
    let provider = berth::providers::aws::AwsProvider::from_config(&berth::value::obj([
        ("region", berth::value::Value::str("us-east-1")),
        ("access_key", berth::value::Value::str("testing")),
        ("secret_key", berth::value::Value::str("testing")),
        ("endpoint_url", berth::value::Value::str(&proxy.endpoint)),
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
    let stats = proxy.stats();
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
        proxy.seed,
        failed.first().map(String::as_str).unwrap_or_default()
    );
    assert!(stats.total_faults() as f64 > calls as f64 * 0.5, "{}", report(&stats));
}

/// A write lands and its answer is lost; the SDK sends it again and the
/// retry meets the write's own result. Done here to the writes whose retry
/// moto answers as AWS does: a Route53 change batch that CREATEs records
/// (`InvalidChangeBatch`: it already exists) and CreateSecurityGroup
/// (`InvalidGroup.Duplicate`). berth must recognise its own work, not fail.
#[tokio::test(flavor = "multi_thread")]
async fn writes_that_landed_before_the_connection_dropped_are_recognised() {
    let hosts = 3;
    let moto = Moto::start();
    let faults = Faults::none()
        .with_land_then_drop(LandThenDrop::new(1, |c: &Call| {
            c.service == Service::Route53 && c.action == "POST hostedzone/rrset"
        }))
        .with_land_then_drop(LandThenDrop::new(1, |c: &Call| {
            c.service == Service::Ec2 && c.action == "CreateSecurityGroup"
        }));
    let proxy = FaultProxy::start(&moto.endpoint, faults);
    let (w, var) = fleet(hosts);
    let r = berth(&w, &proxy.endpoint, &["apply", "--auto-approve", "--var", &var]);
    keep_log("landed", &r);
    let stats = proxy.stats();
    assert_eq!(stats.count(Fault::Landed), 2, "{}", report(&stats));
    assert_eq!(r.code, 0, "the apply must recognise its own writes\n{}", tail(&r.stderr, 40));
    berth(&w, &moto.endpoint, &["plan", "--detailed-exitcode", "--var", &var]).assert_code(0);
    assert_converged(&world(&moto).await, hosts);

    // And deletes: their retries find the object already gone (EC2 and
    // DeleteHostedZone answer NotFound as AWS does; moto accepts a retried
    // record DELETE that AWS would refuse, so that case is not exercised).
    let deletes = |c: &Call| {
        (c.service == Service::Ec2 && c.action.starts_with("Delete"))
            || (c.service == Service::Route53 && matches!(c.action.as_str(), "POST hostedzone/rrset" | "DELETE hostedzone"))
    };
    let proxy = FaultProxy::start(&moto.endpoint, Faults::none().with_land_then_drop(LandThenDrop::new(10, deletes)));
    let r = berth(&w, &proxy.endpoint, &["destroy", "--auto-approve", "--var", &var]);
    keep_log("landed-destroy", &r);
    let stats = proxy.stats();
    assert!(stats.count(Fault::Landed) >= 4, "{}", report(&stats));
    assert_eq!(r.code, 0, "the destroy must recognise its own deletes\n{}", tail(&r.stderr, 40));
    let seen = world(&moto).await;
    assert!(seen.instances.is_empty() && seen.zones.is_empty(), "left: {:?} {:?}", seen.instances, seen.zones);
    assert_eq!((seen.vpcs, seen.subnets, seen.groups), (0, 0, 0), "network objects left");
}
