//! 250 hosts and 250 private records through the strict AWS layer: apply, a
//! no-op plan and destroy succeed, and what they cost grows with
//! ceil(N/200), EC2's limit of filter values per Describe call.
//!
//! moto answers a `DescribeInstances` naming a thousand ids; AWS answers
//! `FilterLimitExceeded` above 200 values in one call's filters, and the
//! strict layer does too, so a berth that read every host in one call would
//! fail here. The layer also keeps every other rule on: instances boot
//! `pending`, new ids are not found at once, Route53 batches are atomic and
//! their changes `PENDING` for a few polls, and both services are rate
//! limited — all at once, at the size where the batching matters.

use crate::support;

use aws_sdk_ec2::types::Filter;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use support::aws::Aws;
use support::cli::{Run, Work};
use support::strict::Decision;

const N: usize = 250;

const CONFIG: &str = r#"
variable "hosts" {
  type = number
}

variable "aws_endpoint" {
  type = string
}

provider "aws" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}

data "aws_ami" "base" {
  owners      = ["amazon"]
  most_recent = true
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

resource "aws_vpc" "main" {
  cidr_block           = "10.60.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
}

resource "aws_subnet" "hosts" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.60.0.0/20"
}

resource "aws_security_group" "hosts" {
  name   = "scale-hosts"
  vpc_id = aws_vpc.main.id
}

resource "aws_instance" "host" {
  count                  = var.hosts
  ami                    = data.aws_ami.base.id
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.hosts.id
  vpc_security_group_ids = [aws_security_group.hosts.id]
  tags                   = { Name = "host-${count.index}" }
}

resource "aws_route53_zone" "internal" {
  name = "scale.internal"
  vpc {
    vpc_id = aws_vpc.main.id
  }
}

resource "aws_route53_record" "host" {
  count   = var.hosts
  zone_id = aws_route53_zone.internal.zone_id
  name    = "host-${count.index}.scale.internal"
  type    = "A"
  ttl     = 60
  records = [aws_instance.host[count.index].private_ip]
}
"#;

/// Runs berth against the layer with `BERTH_API_STATS`, returning the run
/// and the API calls it made (`service:Operation` → count, retries counted).
fn berth_counted(aws: &Aws, w: &Work, args: &[&str]) -> (Run, BTreeMap<String, u64>) {
    let stats = w.path().join("api-stats.json");
    let _ = std::fs::remove_file(&stats);
    let var = format!("aws_endpoint={}", aws.endpoint);
    let hosts = format!("hosts={N}");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--var", &var, "--var", &hosts]);
    let run: Run = w
        .cmd(&all)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env("BERTH_API_STATS", &stats)
        .output()
        .expect("run berth")
        .into();
    let counts = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|t| serde_json::from_str::<BTreeMap<String, u64>>(&t).ok())
        .unwrap_or_default();
    (run, counts)
}

fn calls(counts: &BTreeMap<String, u64>, key: &str) -> u64 {
    counts.get(key).copied().unwrap_or(0)
}

/// What moto holds, read past the layer: the instances not terminated.
async fn live_instances(aws: &Aws) -> Vec<(String, String)> {
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-state-name").values("pending").values("running").build())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for r in page.expect("describe instances at moto").reservations() {
            for i in r.instances() {
                out.push((
                    i.instance_id().unwrap_or_default().to_string(),
                    i.private_ip_address().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

/// How many instances moto holds, in any state.
async fn all_instances(aws: &Aws) -> usize {
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let mut n = 0;
    let mut pages = ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        n += page.expect("describe instances at moto").reservations().iter().map(|r| r.instances().len()).sum::<usize>();
    }
    n
}

/// The A records of the zone named `scale.internal.` at moto: name → value.
async fn a_records(aws: &Aws) -> BTreeMap<String, String> {
    let r53 = aws_sdk_route53::Client::new(&aws.moto_sdk_config().await);
    let zones = r53.list_hosted_zones().send().await.expect("list zones");
    let Some(zone) = zones.hosted_zones().iter().find(|z| z.name() == "scale.internal.") else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    let mut start: Option<(String, aws_sdk_route53::types::RrType)> = None;
    loop {
        let mut req = r53.list_resource_record_sets().hosted_zone_id(zone.id());
        if let Some((name, ty)) = start.take() {
            req = req.start_record_name(name).start_record_type(ty);
        }
        let page = req.send().await.expect("list records");
        for s in page.resource_record_sets() {
            if s.r#type() == &aws_sdk_route53::types::RrType::A {
                let v = s.resource_records().first().map(|r| r.value().to_string()).unwrap_or_default();
                out.insert(s.name().trim_end_matches('.').to_string(), v);
            }
        }
        if !page.is_truncated() {
            break;
        }
        start = page.next_record_name().map(|n| (n.to_string(), page.next_record_type().cloned().expect("type")));
    }
    out
}

fn ceil_div(a: usize, b: usize) -> u64 {
    a.div_ceil(b) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_hosts_and_records_apply_replan_and_destroy() {
    let aws = Aws::start();
    let w = Work::new();
    w.write("main.hcl", CONFIG);

    // Apply: every host and its record.
    let (run, applied) = berth_counted(&aws, &w, &["apply", "--auto-approve"]);
    run.assert_ok();
    let hosts = live_instances(&aws).await;
    assert_eq!(hosts.len(), N, "one instance per host, none twice; {}", aws.report());
    let records = a_records(&aws).await;
    assert_eq!(records.len(), N, "one A record per host");
    let ips: std::collections::BTreeSet<&str> = hosts.iter().map(|(_, ip)| ip.as_str()).collect();
    for i in 0..N {
        let v = records.get(&format!("host-{i}.scale.internal")).unwrap_or_else(|| panic!("host-{i} has no record"));
        assert!(ips.contains(v.as_str()), "host-{i} points at {v}, which is no live host");
    }
    // One launch per host: moto holds N instances in all, in any state (a
    // second launch for a host would be a live or a terminated extra). The
    // attempts may be a few more: one the rate limit refused launched
    // nothing, a retry with the same client token is answered with the
    // first launch, and the SDK resends one a server error answered.
    assert_eq!(all_instances(&aws).await, N, "an instance launched twice: {}", aws.report());
    let launches = calls(&applied, "ec2:RunInstances");
    assert!((N as u64..=N as u64 + 3).contains(&launches), "one launch per host, give or take a resend: {applied:?}\n{}", aws.report());
    // Every Describe call stayed within 200 filter values: AWS refuses the
    // others, so one refusal would mean berth sent one.
    assert_eq!(aws.stats().decided(Decision::FilterLimitExceeded), 0, "{}", aws.report());

    // A no-op plan: nothing to do, in ceil(N/200) reads of the hosts.
    let (run, planned) = berth_counted(&aws, &w, &["plan", "--detailed-exitcode"]);
    run.assert_code(0);
    assert!(run.stdout.contains("No changes"), "{}", run.stdout);
    assert_eq!(
        calls(&planned, "ec2:DescribeInstances"),
        ceil_div(N, 200),
        "a no-op plan reads {N} hosts in ceil({N}/200) calls: {planned:?}"
    );
    let writes: u64 = planned
        .iter()
        .filter(|(k, _)| {
            let op = k.split(':').nth(1).unwrap_or_default();
            !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(writes, 0, "a plan writes nothing: {planned:?}");
    let reads: u64 = planned.values().sum();
    assert!(reads <= 20, "a no-op plan of {N} hosts and records costs a handful of calls, not one per host: {planned:?}");
    assert_eq!(aws.stats().decided(Decision::FilterLimitExceeded), 0, "{}", aws.report());

    // Destroy: nothing left, the zone included.
    let (run, destroyed) = berth_counted(&aws, &w, &["destroy", "--auto-approve"]);
    run.assert_ok();
    assert!(live_instances(&aws).await.is_empty(), "every host is gone; {}", aws.report());
    assert!(a_records(&aws).await.is_empty(), "the zone is gone with its records");
    assert_eq!(calls(&destroyed, "route 53:DeleteHostedZone"), 1, "{destroyed:?}");
    assert_eq!(aws.stats().decided(Decision::FilterLimitExceeded), 0, "{}", aws.report());
    let state: Json = w.state();
    assert!(
        state["resources"].as_array().map(|a| a.is_empty()).unwrap_or(true),
        "the state is empty after destroy: {state}"
    );
}
