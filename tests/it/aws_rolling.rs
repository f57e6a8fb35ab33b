//! A rolling replacement of a role on moto behind the strict AWS layer
//! (issue #18): three health-gated hosts behind one multi-value A record
//! (`records = aws_instance.search[*].private_ip`, `ttl = 1`), replaced with
//! `--replace 'aws_instance.search[*]'` one wave at a time. Each wave's
//! new host answers its health check, the record lists it in place of the
//! old one, the inventory is rewritten, the old host is drained for the
//! record's TTL and destroyed, and only then does the next wave start. A
//! wave whose host fails its check stops the roll: that host is never
//! listed, and the hosts of the later waves are left alone.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use support::aws::Aws;
use support::cli::Work;

fn config(health: u16) -> String {
    format!(
        r#"
variable "aws_endpoint" {{
  type = string
}}

provider "aws" {{
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}}

data "aws_ami" "base" {{
  owners      = ["amazon"]
  most_recent = true
  filter {{
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }}
}}

resource "aws_vpc" "main" {{
  cidr_block           = "10.60.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
}}

resource "aws_subnet" "a" {{
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.60.1.0/24"
  availability_zone = "us-east-1a"
}}

resource "aws_route53_zone" "internal" {{
  name = "roll.internal"
  vpc {{
    vpc_id = aws_vpc.main.id
  }}
}}

resource "aws_instance" "search" {{
  count         = 3
  ami           = data.aws_ami.base.id
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.a.id
  tags          = {{ Name = "search-${{count.index}}" }}

  lifecycle {{
    create_before_destroy = true
    rolling {{
      max_unavailable = 1
    }}
  }}

  health_check {{
    url      = "http://127.0.0.1:{health}/up?id=${{self.id}}"
    timeout  = "2s"
    interval = "200ms"
  }}
}}

resource "aws_route53_record" "search" {{
  zone_id = aws_route53_zone.internal.zone_id
  name    = "search.roll.internal"
  type    = "A"
  ttl     = 1
  records = aws_instance.search[*].private_ip
}}

inventory "search" {{
  format = "json"
  path   = "inventory/search.json"
  role "search" {{
    hosts = aws_instance.search
  }}
}}
"#
    )
}

/// A health endpoint that answers 200 for the first `healthy` hosts (by the
/// `id` they ask with) and 503 for every later one.
fn health_server(healthy: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let id = req.split_once("id=").map(|(_, r)| r.split([' ', '&']).next().unwrap_or("").to_string()).unwrap_or_default();
            let mut seen = seen.lock().unwrap();
            if !seen.contains(&id) {
                seen.push(id.clone());
            }
            let status = if seen.iter().position(|s| *s == id).unwrap() < healthy { 200 } else { 503 };
            let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    port
}

/// The current and the deposed objects' attribute `key`, by address.
fn attrs(w: &Work, key: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let state = w.state();
    let (mut current, mut deposed) = (BTreeMap::new(), BTreeMap::new());
    for r in state["resources"].as_array().unwrap() {
        let Some(v) = r["attributes"][key].as_str() else { continue };
        let into = if r["deposed"].is_null() { &mut current } else { &mut deposed };
        into.insert(r["addr"].as_str().unwrap().to_string(), v.to_string());
    }
    (current, deposed)
}

fn search(w: &Work, key: &str) -> Vec<String> {
    let (current, _) = attrs(w, key);
    (0..3).map(|i| current[&format!("aws_instance.search[{i}]")].clone()).collect()
}

/// What `search.roll.internal` answers, as moto has it.
async fn record(aws: &Aws, zone: &str) -> BTreeSet<String> {
    let client = aws_sdk_route53::Client::new(&aws.moto_sdk_config().await);
    let out = client.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().trim_end_matches('.') == "search.roll.internal" && r.r#type().as_str() == "A")
        .flat_map(|r| r.resource_records().iter().map(|v| v.value().to_string()))
        .collect()
}

/// Where `needle`'s `n`-th occurrence (from 0) is in `hay`.
fn nth(hay: &str, needle: &str, n: usize) -> usize {
    hay.match_indices(needle).nth(n).unwrap_or_else(|| panic!("no occurrence {n} of `{needle}` in:\n{hay}")).0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_rolls_wave_by_wave_and_a_failed_wave_stops_the_roll() {
    let aws = Aws::start();
    let w = Work::new();
    // Three hosts at first, three more for the first roll, and the first
    // host of the second roll: the next is unhealthy.
    w.write("main.hcl", &config(health_server(7)));
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let zone = attrs(&w, "zone_id").0["aws_route53_zone.internal"].clone();
    let first = search(&w, "private_ip");
    assert_eq!(record(&aws, &zone).await, first.iter().cloned().collect());

    let r = aws.berth(&w, None, &["plan", "--replace", "aws_instance.search[*]"]);
    r.assert_ok();
    assert!(r.stdout.contains("Rolling replacement of aws_instance.search, in 3 waves"), "{}", r.stdout);
    assert!(r.stdout.contains("  wave 1 of 3: aws_instance.search[0] (old hosts destroyed after a 1 s drain)"), "{}", r.stdout);
    assert!(r.stdout.contains("aws_route53_record.search will be updated in-place"), "{}", r.stdout);

    let r = aws.berth(&w, None, &["apply", "--auto-approve", "--replace", "aws_instance.search[*]"]);
    r.assert_ok();
    let e = &r.stderr;
    let mut last = 0;
    for i in 0..3 {
        let host = format!("aws_instance.search[{i}]");
        let healthy = nth(e, &format!("{host}: healthy"), 0);
        let switched = nth(e, "aws_route53_record.search: Modifications complete", i);
        let written = nth(e, "inventory `search`: wrote", i);
        let draining = nth(e, &format!("{host} (old object): draining for 1 s"), 0);
        let gone = nth(e, &format!("{host} (old object): Destruction complete"), 0);
        assert!(last < healthy && healthy < switched && switched < written && written < draining && draining < gone, "wave {}:\n{e}", i + 1);
        last = gone;
    }
    let second = search(&w, "private_ip");
    assert!(second.iter().all(|ip| !first.contains(ip)), "{first:?} {second:?}");
    assert_eq!(record(&aws, &zone).await, second.iter().cloned().collect());
    let inventory = w.read("inventory/search.json");
    assert!(second.iter().all(|ip| inventory.contains(ip.as_str())) && !first.iter().any(|ip| inventory.contains(ip.as_str())), "{inventory}");

    // The second roll: wave 2's new host never becomes healthy.
    let ids = search(&w, "id");
    let r = aws.berth(&w, None, &["apply", "--auto-approve", "--replace", "aws_instance.search[*]"]);
    r.assert_code(1);
    assert!(r.stderr.contains("aws_instance.search[1]") && r.stderr.contains("health check failed"), "{}", r.stderr);
    assert!(!r.stderr.contains("aws_instance.search[2]: Creating"), "wave 3 never started:\n{}", r.stderr);
    let (current, deposed) = attrs(&w, "private_ip");
    let now: Vec<String> = (0..3).map(|i| current[&format!("aws_instance.search[{i}]")].clone()).collect();
    assert_ne!(now[0], second[0], "wave 1 went through");
    assert_eq!(search(&w, "id")[2], ids[2], "wave 3's host was left alone");
    assert_eq!(deposed.get("aws_instance.search[1]"), Some(&second[1]), "the failed wave's old host is kept");
    let serving: BTreeSet<String> = [now[0].clone(), second[1].clone(), second[2].clone()].into();
    assert_eq!(record(&aws, &zone).await, serving, "the unhealthy host {} is never listed", now[1]);
    let inventory = w.read("inventory/search.json");
    assert!(serving.iter().all(|ip| inventory.contains(ip.as_str())) && !inventory.contains(now[1].as_str()), "{inventory}");
}
