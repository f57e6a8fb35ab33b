//! The EC2 and VPC types over a workspace's whole life, through the real
//! `berth` binary: destroy and apply again, `count` down and up, a host
//! terminated outside berth, a failed resize, writes whose answers were
//! lost, and a configuration with more tags than AWS allows.
//!
//! Every run goes through the strict AWS layer in front of moto
//! ([`support::strict`]) and a [`FaultProxy`](support::faultproxy) that
//! records each EC2 request. AWS remembers a client token and refuses it for
//! another create (`IdempotentParameterMismatch`) or for one whose instances
//! are gone (`IdempotentInstanceTerminated`); the strict layer does too, and
//! the tests also check what it implies: every create presents its own
//! token, every retry of one create the same one.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use support::cli::{Run, Work};
use support::faultproxy::{Call, Fault, FaultProxy, Faults, LandThenDrop, Permanent, Service};
use support::moto::Moto;
use support::strict::{Decision, Rules};

/// A VPC with a public subnet, a gateway and its route, a security group, a
/// key pair and `hosts` hosts with public addresses (so each is launched
/// through an interface specification).
const CONFIG: &str = r#"
variable "hosts" {
  type    = number
  default = 2
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

provider "aws" {
  region = "us-east-1"
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
  cidr_block = "10.50.0.0/16"
  tags       = { Name = "lifecycle" }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.50.1.0/24"
  availability_zone = "us-east-1a"
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "hosts" {
  name   = "lifecycle-hosts"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_key_pair" "deployer" {
  key_name   = "lifecycle"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbv5gNJcQU6GwJ+dfxZUCKtwWHtb/K9ncklbTa4A5j8 lifecycle"
}

resource "aws_instance" "host" {
  count                       = var.hosts
  ami                         = data.aws_ami.base.id
  instance_type               = var.instance_type
  subnet_id                   = aws_subnet.public.id
  vpc_security_group_ids      = [aws_security_group.hosts.id]
  key_name                    = aws_key_pair.deployer.key_name
  associate_public_ip_address = true
  tags                        = { Name = "host-${count.index}" }
}
"#;

/// Every EC2 request the proxy saw (refused ones once, forwarded ones once).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    /// Records what no refusal took: it goes last among the rules.
    fn rule(&self) -> Permanent {
        let calls = self.0.clone();
        Permanent::new("Unused", 400, "unused", move |c: &Call| {
            if c.service == Service::Ec2 {
                calls.lock().unwrap().push(c.clone());
            }
            false
        })
    }

    fn calls(&self, action: &str) -> Vec<Call> {
        self.0.lock().unwrap().iter().filter(|c| c.action == action).cloned().collect()
    }
}

/// The tag `key` a create call puts on what it makes.
fn created_tag<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.params.iter().find_map(|(k, v)| {
        (v == key && k.starts_with("TagSpecification.") && k.ends_with(".Key"))
            .then(|| c.param(&format!("{}.Value", &k[..k.len() - 4])))
            .flatten()
    })
}

struct Lab {
    moto: Moto,
    proxy: FaultProxy,
    rec: Recorder,
    w: Work,
}

impl Lab {
    fn start(faults: Faults) -> Lab {
        Lab::start_with(faults, Rules::test())
    }

    fn start_with(faults: Faults, rules: Rules) -> Lab {
        let moto = Moto::start();
        let rec = Recorder::default();
        let proxy = FaultProxy::start_layered(&moto.endpoint, faults.with_permanent(rec.rule()), rules);
        let w = Work::new();
        w.write("main.hcl", CONFIG);
        Lab { moto, proxy, rec, w }
    }

    /// berth through the proxy.
    fn berth(&self, args: &[&str]) -> Run {
        self.run(&self.proxy.endpoint, args)
    }

    /// berth with no faults (the strict rules still apply).
    fn direct(&self, args: &[&str]) -> Run {
        self.proxy.pause_faults(true);
        let r = self.run(&self.proxy.endpoint, args);
        self.proxy.pause_faults(false);
        r
    }

    fn run(&self, endpoint: &str, args: &[&str]) -> Run {
        self.w
            .cmd(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("BERTH_LOG", "berth=debug")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run berth")
            .into()
    }

    fn apply(&self, hosts: usize) {
        let var = format!("hosts={hosts}");
        let r = self.berth(&["apply", "--auto-approve", "--var", &var]);
        assert_eq!(r.code, 0, "apply of {hosts} hosts\nstdout:\n{}\nstderr:\n{}", r.stdout, tail(&r.stderr, 40));
        // Nothing is left to do: the state reads back as applied (the hosts'
        // groups too, though they are launched through an interface).
        let r = self.direct(&["plan", "--detailed-exitcode", "--var", &var]);
        assert_eq!(r.code, 0, "a plan after the apply changes something:\n{}", r.stdout);
    }

    fn destroy(&self, hosts: usize) {
        let var = format!("hosts={hosts}");
        let r = self.berth(&["destroy", "--auto-approve", "--var", &var]);
        assert_eq!(r.code, 0, "destroy\nstdout:\n{}\nstderr:\n{}", r.stdout, tail(&r.stderr, 40));
    }

    async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.moto.sdk_config().await)
    }

    /// Live instances by `berth:address`.
    async fn hosts(&self) -> BTreeMap<String, Vec<String>> {
        let out = self.ec2().await.describe_instances().send().await.unwrap();
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            if i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "terminated") {
                continue;
            }
            let addr = i.tags().iter().find(|t| t.key() == Some("berth:address")).and_then(|t| t.value());
            by.entry(addr.unwrap_or("(untagged)").into()).or_default().push(i.instance_id().unwrap().into());
        }
        by
    }

    async fn assert_one_host_each(&self, hosts: usize) {
        let by = self.hosts().await;
        let want: BTreeSet<String> = (0..hosts).map(|i| format!("aws_instance.host[{i}]")).collect();
        assert_eq!(by.keys().cloned().collect::<BTreeSet<_>>(), want, "{by:?}");
        assert!(by.values().all(|ids| ids.len() == 1), "one live instance per address: {by:?}");
    }

    /// The client tokens of `action`'s calls: every SDK invocation (a call
    /// and its retries) presents one token, and no two invocations share
    /// one. Returns (address, token) per invocation, in order.
    fn tokens(&self, action: &str) -> Vec<(String, String)> {
        let mut by_invocation: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut order = Vec::new();
        for c in self.rec.calls(action) {
            let inv = c.invocation.clone().expect("the SDK names each invocation");
            let token = c.param("ClientToken").unwrap_or_else(|| panic!("{action} without a ClientToken")).to_string();
            if !by_invocation.contains_key(&inv) {
                order.push((inv.clone(), created_tag(&c, "berth:address").unwrap_or_default().to_string()));
            }
            by_invocation.entry(inv).or_default().insert(token);
        }
        for (inv, tokens) in &by_invocation {
            assert_eq!(tokens.len(), 1, "the retries of one {action} ({inv}) changed its token: {tokens:?}");
        }
        let out: Vec<(String, String)> =
            order.into_iter().map(|(inv, addr)| (addr, by_invocation[&inv].iter().next().unwrap().clone())).collect();
        let distinct: BTreeSet<&String> = out.iter().map(|(_, t)| t).collect();
        assert_eq!(distinct.len(), out.len(), "a client token was presented by two creates: {out:?}");
        out
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Throttling on a share of the requests, so some creates are retried by
/// the SDK: their retries must present the same token.
fn throttled() -> Faults {
    Faults { throttle: 0.15, first: vec![Fault::Throttle], ..Faults::none() }
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_apply_destroy_apply_in_one_workspace() {
    let lab = Lab::start(throttled());
    lab.apply(2);
    lab.destroy(2);
    lab.apply(2);
    lab.destroy(2);
    lab.apply(2);
    lab.assert_one_host_each(2).await;
    let launches = lab.tokens("RunInstances");
    assert_eq!(launches.len(), 6, "three applies of two hosts: {launches:?}");
    let tables = lab.tokens("CreateRouteTable");
    assert_eq!(tables.len(), 3, "{tables:?}");
    let stats = lab.proxy.stats();
    assert!(stats.count(Fault::Throttle) > 0);
    assert_eq!(stats.decided(Decision::TokenMismatch) + stats.decided(Decision::TokenTerminated), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn count_down_and_up_again() {
    let lab = Lab::start(throttled());
    lab.apply(4);
    lab.apply(3);
    lab.assert_one_host_each(3).await;
    lab.apply(4);
    lab.assert_one_host_each(4).await;
    let launches = lab.tokens("RunInstances");
    let of_3: Vec<_> = launches.iter().filter(|(a, _)| a == "aws_instance.host[3]").collect();
    assert_eq!(of_3.len(), 2, "host 3 launched twice, with two tokens: {launches:?}");
    assert_eq!(launches.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_terminated_outside_berth_is_recreated() {
    let lab = Lab::start(throttled());
    lab.apply(2);
    let gone = lab.hosts().await["aws_instance.host[0]"][0].clone();
    let ec2 = lab.ec2().await;
    ec2.terminate_instances().instance_ids(&gone).send().await.unwrap();
    let r = lab.direct(&["plan", "--var", "hosts=2"]);
    assert!(r.stdout.contains("aws_instance.host[0]") && r.stdout.contains("will be created"), "{}", r.stdout);
    lab.apply(2);
    lab.assert_one_host_each(2).await;
    assert_ne!(lab.hosts().await["aws_instance.host[0]"][0], gone);
    let launches = lab.tokens("RunInstances");
    assert_eq!(launches.iter().filter(|(a, _)| a == "aws_instance.host[0]").count(), 2, "{launches:?}");
}

/// A resize refused by AWS: the apply fails naming it, the host runs again
/// with its old type, it is not marked for replacement, and the next plan
/// proposes the resize again in place.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_resize_is_proposed_again_in_place() {
    let refuse = Permanent::new("InvalidParameterValue", 400, "Invalid value 't3.small' for instanceType.", |c: &Call| {
        c.service == Service::Ec2 && c.action == "ModifyInstanceAttribute" && c.param("InstanceType.Value").is_some()
    });
    let lab = Lab::start(Faults::none().with_permanent(refuse));
    lab.apply(1);
    let r = lab.berth(&["apply", "--auto-approve", "--var", "hosts=1", "--var", "instance_type=t3.small"]);
    r.assert_code(1);
    let out = format!("{}\n{}", r.stdout, r.stderr);
    assert!(
        out.lines().any(|l| l.contains("aws_instance.host[0]") && l.contains("InvalidParameterValue")),
        "the error names the host and the cause:\n{}",
        tail(&r.stderr, 30)
    );
    let state = lab.w.state();
    let host = state["resources"].as_array().unwrap().iter().find(|r| r["addr"] == "aws_instance.host[0]").unwrap();
    assert_ne!(host["tainted"], serde_json::json!(true), "a failed update never taints: {host}");
    let ec2 = lab.ec2().await;
    let id = host["attributes"]["id"].as_str().unwrap();
    let i = ec2.describe_instances().instance_ids(id).send().await.unwrap().reservations()[0].instances()[0].clone();
    assert_eq!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"), "the host runs again");
    assert_eq!(i.instance_type().map(|t| t.as_str()), Some("t3.micro"));
    let r = lab.direct(&["plan", "--detailed-exitcode", "--var", "hosts=1", "--var", "instance_type=t3.small"]);
    r.assert_code(2);
    assert!(r.stdout.contains("will be updated in-place"), "{}", r.stdout);
    assert!(!r.stdout.contains("must be replaced"), "{}", r.stdout);
    let r = lab.direct(&["apply", "--auto-approve", "--var", "hosts=1", "--var", "instance_type=t3.small"]);
    r.assert_ok();
}

/// Every create, attach, associate, authorize and route of the workspace
/// lands and loses its answer once: the apply recognises each, leaves one
/// object per address and nothing to do. (Not ImportKeyPair: see
/// `the_strict_layers_lost_answers_leave_one_object_per_address`.)
#[tokio::test(flavor = "multi_thread")]
async fn every_write_whose_answer_is_lost_is_recognised() {
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
        "RunInstances",
    ];
    let mut faults = Faults::none();
    for a in lost {
        faults = faults.with_land_then_drop(LandThenDrop::new(1, move |c: &Call| c.service == Service::Ec2 && c.action == a));
    }
    let lab = Lab::start(faults);
    lab.apply(2);
    let stats = lab.proxy.stats();
    assert_eq!(stats.count(Fault::Landed), lost.len() as u64, "each lost once: {:?}", stats.by_action);
    lab.assert_one_host_each(2).await;
    let ec2 = lab.ec2().await;
    assert_eq!(ec2.describe_vpcs().send().await.unwrap().vpcs().iter().filter(|v| v.cidr_block() == Some("10.50.0.0/16")).count(), 1);
    let gws = ec2.describe_internet_gateways().send().await.unwrap();
    assert_eq!(gws.internet_gateways().len(), 1, "{gws:?}");
    let groups = ec2.describe_security_groups().send().await.unwrap();
    assert_eq!(groups.security_groups().iter().filter(|g| g.group_name() == Some("lifecycle-hosts")).count(), 1);
    lab.destroy(2);
}

/// The strict layer loses the first answer of every create of the
/// workspace, client-token creates included: one object per address, and
/// nothing left to do.
#[tokio::test(flavor = "multi_thread")]
async fn the_strict_layers_lost_answers_leave_one_object_per_address() {
    // Not ImportKeyPair: the layer takes its resend's `KeyName` for a
    // reference to the new key (`InvalidKeyPair.NotFound`), which AWS does
    // not do for an import; `a_lost_key_import_is_found_not_repeated` in
    // tests/aws_ec2_faults.rs covers it.
    let creates: Vec<&str> = support::strict::CREATES.iter().copied().filter(|a| *a != "ImportKeyPair").collect();
    let lab = Lab::start_with(Faults::none(), Rules::test().lose_answers_of(&creates));
    lab.apply(2);
    let stats = lab.proxy.stats();
    assert!(stats.decided(Decision::AnswerLost) >= 10, "{:?}", stats.strict_by_action);
    lab.assert_one_host_each(2).await;
    let ec2 = lab.ec2().await;
    assert_eq!(ec2.describe_internet_gateways().send().await.unwrap().internet_gateways().len(), 1);
    let tables = ec2.describe_route_tables().send().await.unwrap();
    assert_eq!(tables.route_tables().iter().filter(|t| t.tags().iter().any(|t| t.key() == Some("berth:address"))).count(), 1);
    lab.destroy(2);
}

/// More user tags than AWS's 50 per resource leave room for (berth adds its
/// own) is a validation error at the tags' place in the file.
#[test]
fn too_many_tags_is_a_validation_error_at_its_place() {
    let w = Work::new();
    let tags: Vec<String> = (0..47).map(|i| format!("    k{i} = \"v\"")).collect();
    w.write(
        "main.hcl",
        &format!(
            "provider \"aws\" {{\n  region = \"us-east-1\"\n}}\n\nresource \"aws_vpc\" \"main\" {{\n  cidr_block = \"10.0.0.0/16\"\n  tags = {{\n{}\n  }}\n}}\n",
            tags.join("\n")
        ),
    );
    let r = w.run(&["validate"]);
    r.assert_code(1);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("main.hcl:"), "the error names its place:\n{out}");
    assert!(out.contains("at most 46"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}
