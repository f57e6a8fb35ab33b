//! The network types real configurations add around hosts, changed in place
//! through the real `berth` binary against moto behind the strict AWS
//! layer: an Elastic IP moved from one host to another, a standalone route
//! pointed at another target, security group rules of both styles edited
//! (the same rule, not a new one), and creates whose answers were lost
//! found again instead of made twice.


use crate::support;
use crate::support::aws::Aws;
use crate::support::cli::{Run, Work};

fn config(v: &Vars) -> String {
    format!(
        r#"
provider "aws" {{
  region = "us-east-1"
}}

resource "aws_vpc" "main" {{
  cidr_block = "10.90.0.0/16"
}}

resource "aws_subnet" "hosts" {{
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.90.1.0/24"
  availability_zone = "us-east-1a"
}}

resource "aws_internet_gateway" "main" {{
  vpc_id = aws_vpc.main.id
}}

resource "aws_instance" "host" {{
  count         = 2
  ami           = "ami-04681a1dbd79675a5"
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.hosts.id
}}

resource "aws_eip" "public" {{
  domain   = "vpc"
  instance = aws_instance.host[{eip_host}].id
}}

resource "aws_route_table" "out" {{
  vpc_id = aws_vpc.main.id
}}

resource "aws_route" "out" {{
  route_table_id         = aws_route_table.out.id
  destination_cidr_block = "0.0.0.0/0"
  {route_target}
}}

resource "aws_security_group" "web" {{
  name   = "web"
  vpc_id = aws_vpc.main.id
}}

resource "aws_vpc_security_group_ingress_rule" "http" {{
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = {port}
  to_port           = {port}
  cidr_ipv4         = "10.0.0.0/8"
  description       = "{what}"
  tags = {{
    Rev = "{what}"
  }}
}}

resource "aws_security_group_rule" "ssh" {{
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  protocol          = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_blocks       = ["10.0.0.0/8", "192.168.0.0/16"]
  description       = "ssh {what}"
}}
"#,
        eip_host = v.eip_host,
        route_target = v.route_target,
        port = v.port,
        what = v.what,
    )
}

struct Vars {
    eip_host: usize,
    route_target: &'static str,
    port: u16,
    what: &'static str,
}

fn berth(w: &Work, aws: &Aws, args: &[&str]) -> Run {
    w.cmd(args)
        .env("AWS_ENDPOINT_URL", &aws.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run berth")
        .into()
}

fn attrs(w: &Work, addr: &str) -> serde_json::Value {
    w.state()["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["addr"] == addr))
        .map(|r| r["attributes"].clone())
        .unwrap_or_else(|| panic!("no `{addr}` in the state"))
}

fn apply(w: &Work, aws: &Aws) {
    let r = berth(w, aws, &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "apply\n{}\n{}\nlayer: {}", r.stdout, r.stderr, aws.report());
    let again = berth(w, aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "the plan after apply is not empty\n{}\n{}", again.stdout, again.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_routes_and_rules_change_in_place() {
    let aws = Aws::start();
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let w = Work::new();
    let v1 = Vars { eip_host: 0, route_target: "gateway_id = aws_internet_gateway.main.id", port: 80, what: "one" };
    w.write("main.hcl", &config(&v1));
    apply(&w, &aws);
    let eip = attrs(&w, "aws_eip.public");
    let rule = attrs(&w, "aws_vpc_security_group_ingress_rule.http");
    let ssh = attrs(&w, "aws_security_group_rule.ssh");
    let hosts = [attrs(&w, "aws_instance.host[0]")["id"].clone(), attrs(&w, "aws_instance.host[1]")["id"].clone()];

    let v2 = Vars {
        eip_host: 1,
        route_target: "network_interface_id = aws_instance.host[0].primary_network_interface_id",
        port: 8080,
        what: "two",
    };
    w.write("main.hcl", &config(&v2));
    let plan = berth(&w, &aws, &["plan"]);
    plan.assert_ok();
    for addr in
        ["aws_eip.public", "aws_route.out", "aws_vpc_security_group_ingress_rule.http", "aws_security_group_rule.ssh"]
    {
        assert!(plan.stdout.contains(&format!("{addr} will be updated in-place")), "{addr}\n{}", plan.stdout);
    }
    apply(&w, &aws);

    // The same objects, changed.
    assert_eq!(attrs(&w, "aws_eip.public")["id"], eip["id"]);
    let addr = ec2.describe_addresses().allocation_ids(eip["id"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(addr.addresses()[0].instance_id(), hosts[1].as_str(), "the address moved to the second host");
    let route = attrs(&w, "aws_route.out");
    assert_eq!(route["network_interface_id"], attrs(&w, "aws_instance.host[0]")["primary_network_interface_id"]);
    assert!(route["gateway_id"].is_null(), "{route}");
    let rule2 = attrs(&w, "aws_vpc_security_group_ingress_rule.http");
    assert_eq!(rule2["id"], rule["id"], "ModifySecurityGroupRules keeps the rule");
    assert_eq!((rule2["from_port"].as_f64(), rule2["description"].as_str()), (Some(8080.0), Some("two")));
    assert_eq!(rule2["tags"]["Rev"], "two");
    let ssh2 = attrs(&w, "aws_security_group_rule.ssh");
    assert_eq!(ssh2["id"], ssh["id"]);
    let rules = ec2
        .describe_security_group_rules()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(ssh["security_group_id"].as_str().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ssh_rules: Vec<_> = rules.security_group_rules().iter().filter(|r| r.from_port() == Some(22)).collect();
    assert_eq!(ssh_rules.len(), 2, "one AWS rule per source");
    assert!(ssh_rules.iter().all(|r| r.description() == Some("ssh two")), "{ssh_rules:?}");

    // A rule removed outside berth is put back; its group's other rules stay.
    ec2.revoke_security_group_ingress()
        .group_id(ssh["security_group_id"].as_str().unwrap())
        .security_group_rule_ids(ssh_rules[0].security_group_rule_id().unwrap())
        .send()
        .await
        .unwrap();
    let drift = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(drift.stdout.contains("aws_security_group_rule.ssh must be replaced"), "{}", drift.stdout);
    apply(&w, &aws);

    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
    let left = ec2.describe_addresses().send().await.unwrap();
    assert!(left.addresses().is_empty(), "the address is released: {:?}", left.addresses());
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_of_address_gateway_and_rule_creates_are_found_not_repeated() {
    let aws = Aws::builder()
        .rules(|r| {
            r.lose_answers_of(&[
                "AllocateAddress",
                "AssociateAddress",
                "CreateNatGateway",
                "CreateRoute",
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
            ])
        })
        .start();
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let w = Work::new();
    let src = support::venv::repo_root().join("tests/fixtures/configs/vpc-nat-eip/main.hcl");
    w.write("main.hcl", &std::fs::read_to_string(src).unwrap());
    apply(&w, &aws);
    let addresses = ec2.describe_addresses().send().await.unwrap();
    assert_eq!(addresses.addresses().len(), 2, "one address per `aws_eip`: {:?}", addresses.addresses());
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    let live: Vec<_> =
        nats.nat_gateways().iter().filter(|n| n.state().is_some_and(|s| s.as_str() == "available")).collect();
    assert_eq!(live.len(), 1, "{live:?}");
    let stats = aws.stats();
    let lost: u64 = stats.strict_by_action.iter().filter(|(k, _)| k.starts_with("AnswerLost")).map(|(_, n)| *n).sum();
    assert!(lost >= 6, "answers were lost: {:?}", stats.strict_by_action);
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
}

fn default_group_config(vpc: &str, extra_ingress: &str) -> String {
    format!(
        r#"
provider "aws" {{
  region = "us-east-1"
}}

resource "aws_default_security_group" "app" {{
  vpc_id = "{vpc}"

  ingress {{
    protocol  = "-1"
    from_port = 0
    to_port   = 0
    self      = true
  }}
  {extra_ingress}
  egress {{
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }}

  tags = {{
    Name = "app-default"
  }}
}}

# The region's default VPC: no blocks, no rules.
resource "aws_default_security_group" "region" {{}}
"#
    )
}

fn ec2_filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(name).values(value).build()
}

/// Ingress and egress rules of a group as (protocol, from port, sources).
async fn group_rules(ec2: &aws_sdk_ec2::Client, id: &str) -> (Vec<String>, Vec<String>) {
    let out = ec2.describe_security_groups().group_ids(id).send().await.unwrap();
    let g = &out.security_groups()[0];
    let show = |perms: &[aws_sdk_ec2::types::IpPermission]| {
        let mut v: Vec<String> = perms
            .iter()
            .flat_map(|p| {
                let head = format!("{}:{}", p.ip_protocol().unwrap_or_default(), p.from_port().unwrap_or(-1));
                let cidrs = p.ip_ranges().iter().map(|r| r.cidr_ip().unwrap_or_default().to_string());
                let groups = p.user_id_group_pairs().iter().map(|g| g.group_id().unwrap_or_default().to_string());
                cidrs.chain(groups).map(move |s| format!("{head}:{s}")).collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v
    };
    (show(g.ip_permissions()), show(g.ip_permissions_egress()))
}

#[tokio::test(flavor = "multi_thread")]
async fn default_security_groups_are_adopted_and_released_never_made_or_deleted() {
    let aws = Aws::start();
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    // A VPC of another team: berth manages its default group only.
    let vpc = ec2.create_vpc().cidr_block("10.77.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let w = Work::new();
    w.write("main.hcl", &default_group_config(&vpc, ""));
    apply(&w, &aws);
    let group = attrs(&w, "aws_default_security_group.app");
    let id = group["id"].as_str().unwrap().to_string();
    assert_eq!(group["name"], "default");
    assert_eq!(group["vpc_id"], vpc.as_str());
    // AWS's allow-all egress is gone; only the configuration's rules stay.
    let (ingress, egress) = group_rules(&ec2, &id).await;
    assert_eq!(ingress, [format!("-1:-1:{id}")]);
    assert_eq!(egress, ["tcp:443:0.0.0.0/0"]);
    let tags = ec2.describe_tags().filters(ec2_filter("resource-id", &id)).send().await.unwrap();
    let keys: Vec<&str> = tags.tags().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys, ["Name"], "no ownership tags on a group berth did not make");
    let region = attrs(&w, "aws_default_security_group.region");
    let default_vpc = ec2
        .describe_vpcs()
        .filters(ec2_filter("is-default", "true"))
        .send()
        .await
        .unwrap();
    assert_eq!(region["vpc_id"], default_vpc.vpcs()[0].vpc_id().unwrap());
    let (ingress, egress) = group_rules(&ec2, region["id"].as_str().unwrap()).await;
    assert!(ingress.is_empty() && egress.is_empty(), "no blocks, no rules: {ingress:?} {egress:?}");

    // A rule added in the configuration is added in place.
    let ssh = r#"ingress {
    protocol    = "tcp"
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["10.0.0.0/8"]
  }"#;
    w.write("main.hcl", &default_group_config(&vpc, ssh));
    let plan = berth(&w, &aws, &["plan"]);
    assert!(plan.stdout.contains("aws_default_security_group.app will be updated in-place"), "{}", plan.stdout);
    apply(&w, &aws);
    assert_eq!(attrs(&w, "aws_default_security_group.app")["id"], id.as_str());
    assert_eq!(group_rules(&ec2, &id).await.0.len(), 2);

    // A rule added outside berth is drift, and removed.
    ec2.authorize_security_group_ingress()
        .group_id(&id)
        .ip_protocol("tcp")
        .from_port(5432)
        .to_port(5432)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let drift = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    apply(&w, &aws);
    assert!(!group_rules(&ec2, &id).await.0.iter().any(|r| r.starts_with("tcp:5432")));

    // Destroy forgets the groups and, as Terraform does, leaves them and
    // their rules as they are.
    let before = group_rules(&ec2, &id).await;
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
    assert_eq!(group_rules(&ec2, &id).await, before, "a destroy changes no rule of a default group");
    assert!(w.state()["resources"].as_array().is_none_or(|r| r.is_empty()));
}
