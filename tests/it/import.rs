//! Bringing objects berth did not create under berth: `import` blocks (with
//! `for_each`) for every AWS type berth has, `berth import ADDR ID`, and
//! `plan --generate-config-out` for an import without a resource block.
//!
//! The objects are made through the strict AWS layer by the test (as
//! another tool would have made them), then imported. Each import's plan
//! must show the import, berth's ownership marks being added, and nothing
//! else; after the apply, AWS has the marks and the next plan is empty.

use crate::support;
use crate::terraform_migration::{DNS_MODULE, config, create_fleet, eventually};

use support::aws::Aws;
use support::cli::Work;

/// Import blocks for every object of the fleet, the hosts and the records
/// by `for_each`, and a zone association to a second VPC.
fn imports(f: &crate::terraform_migration::Fleet, vpc2: &str) -> String {
    let records: Vec<String> =
        (0..f.hosts.len()).map(|i| format!("    \"host-{i}\" = \"{}_host-{i}.internal_A\"", f.zone)).collect();
    format!(
        r#"
variable "host_ids" {{
  type    = list(string)
  default = ["{h0}", "{h1}"]
}}

resource "aws_vpc" "other" {{
  cidr_block = "10.61.0.0/16"
}}

resource "aws_route53_zone_association" "other" {{
  zone_id = aws_route53_zone.internal.zone_id
  vpc_id  = aws_vpc.other.id
}}

import {{
  to = aws_vpc.main
  id = "{vpc}"
}}
import {{
  to = aws_vpc.other
  id = "{vpc2}"
}}
import {{
  to = aws_subnet.public
  id = "{subnet}"
}}
import {{
  to = aws_internet_gateway.gw
  id = "{igw}"
}}
import {{
  to = aws_route_table.public
  id = "{rtb}"
}}
import {{
  to = aws_route_table_association.public
  id = "{assoc}"
}}
import {{
  to = aws_security_group.hosts
  id = "{sg}"
}}
import {{
  to = aws_key_pair.deployer
  id = "fleet"
}}
import {{
  for_each = [0, 1]
  to       = aws_instance.host[each.value]
  id       = var.host_ids[each.value]
}}
import {{
  to = aws_route53_zone.internal
  id = "{zone}"
}}
import {{
  to = aws_route53_zone_association.other
  id = "{zone}:{vpc2}"
}}
import {{
  for_each = {{
{records}
  }}
  to = module.dns.aws_route53_record.host[each.key]
  id = each.value
}}
"#,
        h0 = f.hosts[0].0,
        h1 = f.hosts[1].0,
        vpc = f.vpc,
        subnet = f.subnet,
        igw = f.igw,
        rtb = f.rtb,
        assoc = f.assoc,
        sg = f.sg,
        zone = f.zone,
        records = records.join("\n"),
    )
}

/// Reads a new VPC back until EC2 shows it, as the tool that made it would.
async fn seen(ec2: &aws_sdk_ec2::Client, vpc: &str) {
    for _ in 0..40 {
        let found = ec2.describe_vpcs().vpc_ids(vpc).send().await;
        if found.is_ok_and(|f| !f.vpcs().is_empty()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{vpc} never became visible");
}

async fn second_vpc(aws: &Aws, zone: &str) -> String {
    let conf = aws.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let vpc = ec2.create_vpc().cidr_block("10.61.0.0/16").send().await.expect("CreateVpc");
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    seen(&ec2, &vpc).await;
    let r53 = aws_sdk_route53::Client::new(&conf);
    eventually("AssociateVPCWithHostedZone", || {
        r53.associate_vpc_with_hosted_zone()
            .hosted_zone_id(zone)
            .vpc(
                aws_sdk_route53::types::Vpc::builder()
                    .vpc_id(&vpc)
                    .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                    .build(),
            )
            .send()
    })
    .await;
    vpc
}

#[tokio::test(flavor = "multi_thread")]
async fn import_blocks_bring_every_type_under_berth() {
    let aws = Aws::start();
    let fleet = create_fleet(&aws).await;
    let vpc2 = second_vpc(&aws, &fleet.zone).await;
    let w = Work::new();
    // The configuration a team writes for what exists, plus the import blocks.
    w.write("main.hcl", &config(&fleet.ami));
    w.write("imports.hcl", &imports(&fleet, &vpc2));
    w.write("modules/dns/main.hcl", DNS_MODULE);

    let r = aws.berth(&w, None, &["plan", "--no-color", "--out", "import.plan"]);
    r.assert_ok();
    let plan = &r.stdout;
    assert!(plan.contains("Plan: 14 to import, 0 to add, 11 to change, 0 to destroy."), "{plan}");
    for bad in ["must be replaced", "will be created", "will be destroyed"] {
        assert!(!plan.contains(bad), "`{bad}`:\n{plan}");
    }
    for (addr, id) in [
        ("aws_vpc.main", fleet.vpc.as_str()),
        ("aws_instance.host[1]", fleet.hosts[1].0.as_str()),
        ("aws_route_table_association.public", fleet.assoc.as_str()),
    ] {
        assert!(
            plan.contains(&format!("# {addr} will be updated in-place\n  # (imported from \"{id}\")"))
                || plan.contains(&format!("# {addr} will be imported")),
            "{addr}:\n{plan}"
        );
    }
    assert!(plan.contains("# aws_route53_zone_association.other will be imported"), "{plan}");
    assert!(plan.contains("# module.dns.aws_route53_record.host[\"host-1\"] will be updated in-place"), "{plan}");
    assert_eq!(plan.matches("imported: berth adds its ownership tags").count(), 9, "{plan}");
    let resources = plan.split("Changes to outputs:").next().unwrap_or_default();
    let changed: Vec<&str> = resources
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("~ ") || l.starts_with("+ ") || l.starts_with("- "))
        .filter(|l| !l.contains(" resource \""))
        .collect();
    assert!(changed.iter().all(|l| l.starts_with("+ owner")), "{changed:#?}\n{plan}");
    // Nothing is written by planning.
    assert!(w.state_addresses().is_empty(), "{:?}", w.state_addresses());

    // The saved plan applies: the imports are recorded, the marks written.
    let r = aws.berth(&w, None, &["apply", "import.plan"]);
    r.assert_ok();
    assert_eq!(w.state_addresses().len(), 14, "{:?}", w.state_addresses());
    let moto = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let sgs = moto.describe_security_groups().group_ids(&fleet.sg).send().await.unwrap();
    let tags = sgs.security_groups()[0].tags();
    assert!(
        tags.iter().any(|t| t.key() == Some("berth:address") && t.value() == Some("aws_security_group.hosts")),
        "{tags:?}"
    );
    let kps = moto.describe_key_pairs().key_names("fleet").send().await.unwrap();
    assert!(
        kps.key_pairs()[0].tags().iter().any(|t| t.key() == Some("berth:address")),
        "{:?}",
        kps.key_pairs()[0].tags()
    );

    // The import blocks stay: they now name what the state manages.
    let r = aws.berth(&w, None, &["plan", "--detailed-exitcode", "--no-color"]);
    r.assert_code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
}

const ONE_VPC: &str = r#"
variable "aws_endpoint" {
  type    = string
  default = null
}

provider "aws" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}

resource "aws_vpc" "legacy" {
  cidr_block = "10.70.0.0/16"
  tags       = { Name = "legacy" }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn berth_import_reads_one_object_into_the_state() {
    let aws = Aws::start();
    let ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.70.0.0/16")
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
                .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value("legacy").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    seen(&ec2, &vpc).await;
    let w = Work::new();
    w.write("main.hcl", ONE_VPC);

    // Bad input: no block, no such object; nothing is written.
    let r = aws.berth(&w, None, &["import", "aws_vpc.nope", &vpc]);
    r.assert_code(1);
    assert!(r.stderr.contains("no resource block `aws_vpc.nope`"), "{}", r.stderr);
    let r = aws.berth(&w, None, &["import", "aws_vpc.legacy", "vpc-0000000000000000"]);
    r.assert_code(1);
    assert!(r.stderr.contains("there is no `aws_vpc` with id `vpc-0000000000000000`"), "{}", r.stderr);
    let r = aws.berth(&w, None, &["import", "aws_vpc.legacy[", &vpc]);
    r.assert_code(1);
    assert!(w.state_addresses().is_empty());

    let r = aws.berth(&w, None, &["import", "aws_vpc.legacy", &vpc]);
    r.assert_ok();
    assert!(r.stdout.contains(&format!("Imported `aws_vpc.legacy` (`{vpc}`)")), "{}", r.stdout);
    assert_eq!(w.state_addresses(), ["aws_vpc.legacy"]);
    assert_eq!(w.state()["resources"][0]["imported"], true);
    let again = aws.berth(&w, None, &["import", "aws_vpc.legacy", &vpc]);
    again.assert_code(1);
    assert!(again.stderr.contains("already in the state"), "{}", again.stderr);

    let r = aws.berth(&w, None, &["plan", "--no-color"]);
    r.assert_ok();
    assert!(r.stdout.contains("imported: berth adds its ownership tags"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{}", r.stdout);
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    aws.berth(&w, None, &["plan", "--detailed-exitcode"]).assert_code(0);
    assert!(w.state()["resources"][0].get("imported").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_configuration_round_trips() {
    let aws = Aws::start();
    let fleet = create_fleet(&aws).await;
    let w = Work::new();
    w.write("main.hcl", ONE_VPC.replace("resource \"aws_vpc\" \"legacy\" {\n  cidr_block = \"10.70.0.0/16\"\n  tags       = { Name = \"legacy\" }\n}\n", "").as_str());
    w.write(
        "imports.hcl",
        &format!(
            "import {{\n  to = aws_vpc.fleet\n  id = \"{}\"\n}}\nimport {{\n  to = aws_security_group.hosts\n  id = \"{}\"\n}}\nimport {{\n  to = aws_subnet.public\n  id = \"{}\"\n}}\n",
            fleet.vpc, fleet.sg, fleet.subnet
        ),
    );
    // Without a block and without generation: an error at the import block.
    let r = aws.berth(&w, None, &["plan", "--no-color"]);
    r.assert_code(1);
    assert!(r.stderr.contains("imports.hcl:1:1") && r.stderr.contains("--generate-config-out"), "{}", r.stderr);

    let r = aws.berth(&w, None, &["plan", "--no-color", "--generate-config-out=generated.hcl"]);
    r.assert_ok();
    let hcl = w.read("generated.hcl");
    assert!(hcl.contains("resource \"aws_vpc\" \"fleet\" {") && hcl.contains("cidr_block"), "{hcl}");
    assert!(hcl.contains("ingress {") && hcl.contains("from_port"), "{hcl}");
    assert!(r.stdout.contains("Plan: 3 to import, 0 to add, 3 to change, 0 to destroy."), "{}\n{hcl}", r.stdout);
    // The file is never overwritten.
    let r = aws.berth(&w, None, &["plan", "--generate-config-out=generated.hcl"]);
    r.assert_code(1);

    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let r = aws.berth(&w, None, &["plan", "--detailed-exitcode", "--no-color"]);
    assert_eq!(r.code, 0, "{}\n{hcl}", r.stdout);
}

/// The network extras of a Kamal fleet, made by "another tool": a NAT
/// gateway with its address, a public host's address, a route to the NAT,
/// and security group rules of both kinds, in a VPC whose route table and
/// group declare no inline routes or rules (so the separate resources own
/// them).
struct Extras {
    subnet: String,
    rtb: String,
    sg: String,
    host: String,
    nat_eip: String,
    nat: String,
    host_eip: String,
    host_assoc: String,
    sgr: String,
}

async fn create_extras(aws: &Aws) -> Extras {
    use aws_sdk_ec2::types::*;
    let ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    let vpc = ec2.create_vpc().cidr_block("10.62.0.0/16").send().await.expect("CreateVpc");
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    seen(&ec2, &vpc).await;
    let subnet = crate::terraform_migration::eventually("CreateSubnet", || {
        ec2.create_subnet().vpc_id(&vpc).cidr_block("10.62.1.0/24").availability_zone("us-east-1a").send()
    })
    .await;
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let rtb = crate::terraform_migration::eventually("CreateRouteTable", || ec2.create_route_table().vpc_id(&vpc).send()).await;
    let rtb = rtb.route_table().unwrap().route_table_id().unwrap().to_string();
    let sg = crate::terraform_migration::eventually("CreateSecurityGroup", || {
        ec2.create_security_group().group_name("extras").description("extras").vpc_id(&vpc).send()
    })
    .await;
    let sg = sg.group_id().unwrap().to_string();
    let ami = crate::terraform_migration::amazon_linux_ami(&ec2).await;
    let run = crate::terraform_migration::eventually("RunInstances", || {
        ec2.run_instances()
            .image_id(&ami)
            .instance_type(InstanceType::T3Micro)
            .subnet_id(&subnet)
            .min_count(1)
            .max_count(1)
            .send()
    })
    .await;
    let host = run.instances()[0].instance_id().unwrap().to_string();
    // The address association needs the host running.
    for _ in 0..60 {
        let d = ec2.describe_instances().instance_ids(&host).send().await;
        let running = d.ok().and_then(|d| {
            d.reservations().first()?.instances().first()?.state()?.name().map(|n| *n == InstanceStateName::Running)
        });
        if running == Some(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let alloc = |_: ()| ec2.allocate_address().domain(DomainType::Vpc).send();
    let nat_eip = alloc(()).await.expect("AllocateAddress").allocation_id().unwrap().to_string();
    let host_eip = alloc(()).await.expect("AllocateAddress").allocation_id().unwrap().to_string();
    let nat = crate::terraform_migration::eventually("CreateNatGateway", || {
        ec2.create_nat_gateway().subnet_id(&subnet).allocation_id(&nat_eip).send()
    })
    .await;
    let nat = nat.nat_gateway().unwrap().nat_gateway_id().unwrap().to_string();
    let host_assoc = crate::terraform_migration::eventually("AssociateAddress", || {
        ec2.associate_address().allocation_id(&host_eip).instance_id(&host).send()
    })
    .await;
    let host_assoc = host_assoc.association_id().unwrap().to_string();
    crate::terraform_migration::eventually("CreateRoute", || {
        ec2.create_route().route_table_id(&rtb).destination_cidr_block("10.99.0.0/16").nat_gateway_id(&nat).send()
    })
    .await;
    let rule = |port: i32| {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port)
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build()
    };
    crate::terraform_migration::eventually("AuthorizeSecurityGroupIngress", || {
        ec2.authorize_security_group_ingress().group_id(&sg).ip_permissions(rule(8080)).send()
    })
    .await;
    let sgr = crate::terraform_migration::eventually("AuthorizeSecurityGroupIngress", || {
        ec2.authorize_security_group_ingress().group_id(&sg).ip_permissions(rule(9090)).send()
    })
    .await;
    let sgr = sgr.security_group_rules()[0].security_group_rule_id().unwrap().to_string();
    Extras { subnet, rtb, sg, host, nat_eip, nat, host_eip, host_assoc, sgr }
}

fn extras_config(e: &Extras) -> String {
    format!(
        r#"
variable "aws_endpoint" {{
  type    = string
  default = null
}}

provider "aws" {{
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}}

resource "aws_eip" "nat" {{
  domain = "vpc"
}}

resource "aws_nat_gateway" "main" {{
  subnet_id     = "{subnet}"
  allocation_id = aws_eip.nat.id
}}

resource "aws_route" "to_nat" {{
  route_table_id         = "{rtb}"
  destination_cidr_block = "10.99.0.0/16"
  nat_gateway_id         = aws_nat_gateway.main.id
}}

resource "aws_eip" "web" {{
  domain = "vpc"
}}

resource "aws_eip_association" "web" {{
  allocation_id = aws_eip.web.id
  instance_id   = "{host}"
}}

resource "aws_security_group_rule" "app" {{
  type              = "ingress"
  security_group_id = "{sg}"
  protocol          = "tcp"
  from_port         = 8080
  to_port           = 8080
  cidr_blocks       = ["10.0.0.0/8"]
}}

resource "aws_vpc_security_group_ingress_rule" "metrics" {{
  security_group_id = "{sg}"
  ip_protocol       = "tcp"
  from_port         = 9090
  to_port           = 9090
  cidr_ipv4         = "10.0.0.0/8"
}}

import {{
  to = aws_eip.nat
  id = "{nat_eip}"
}}
import {{
  to = aws_nat_gateway.main
  id = "{nat}"
}}
import {{
  to = aws_route.to_nat
  id = "{rtb}_10.99.0.0/16"
}}
import {{
  to = aws_eip.web
  id = "{host_eip}"
}}
import {{
  to = aws_eip_association.web
  id = "{host_assoc}"
}}
import {{
  to = aws_security_group_rule.app
  id = "{sg}_ingress_tcp_8080_8080_10.0.0.0/8"
}}
import {{
  to = aws_vpc_security_group_ingress_rule.metrics
  id = "{sgr}"
}}
"#,
        subnet = e.subnet,
        rtb = e.rtb,
        host = e.host,
        sg = e.sg,
        nat_eip = e.nat_eip,
        nat = e.nat,
        host_eip = e.host_eip,
        host_assoc = e.host_assoc,
        sgr = e.sgr,
    )
}

/// The types a Kamal fleet adds around its hosts, imported by the ids
/// Terraform's documentation gives them: each is read, planned with no
/// difference from its configuration (taggable ones take berth's marks),
/// recorded by the apply, and planned empty afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn import_blocks_bring_the_network_extras_under_berth() {
    let aws = Aws::start();
    let e = create_extras(&aws).await;
    let w = Work::new();
    w.write("main.hcl", &extras_config(&e));

    let r = aws.berth(&w, None, &["plan", "--no-color", "--out", "import.plan"]);
    r.assert_ok();
    let plan = &r.stdout;
    assert!(plan.contains("Plan: 7 to import, 0 to add, 4 to change, 0 to destroy."), "{plan}");
    // The taggable ones (the addresses, the NAT gateway, the VPC rule) take
    // berth's marks; routes, old-style rules and associations have none.
    assert_eq!(plan.matches("imported: berth adds its ownership tags").count(), 4, "{plan}");
    for bad in ["must be replaced", "will be created", "will be destroyed"] {
        assert!(!plan.contains(bad), "`{bad}`:\n{plan}");
    }
    let changed: Vec<&str> = plan
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("~ ") || l.starts_with("+ ") || l.starts_with("- "))
        .filter(|l| !l.contains(" resource \""))
        .collect();
    assert!(changed.is_empty(), "an import shows no attribute changes: {changed:#?}\n{plan}");
    assert!(w.state_addresses().is_empty(), "{:?}", w.state_addresses());

    let r = aws.berth(&w, None, &["apply", "import.plan"]);
    r.assert_ok();
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(
        addrs,
        [
            "aws_eip.nat",
            "aws_eip.web",
            "aws_eip_association.web",
            "aws_nat_gateway.main",
            "aws_route.to_nat",
            "aws_security_group_rule.app",
            "aws_vpc_security_group_ingress_rule.metrics"
        ]
    );
    let state = w.state();
    let by_addr = |a: &str| {
        state["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["addr"] == a))
            .cloned()
            .unwrap_or_else(|| panic!("{a} not in the state: {state}"))
    };
    let nat = by_addr("aws_nat_gateway.main");
    assert!(nat.to_string().contains(&e.nat), "{nat}");
    let assoc = by_addr("aws_eip_association.web");
    assert!(assoc.to_string().contains(&e.host), "{assoc}");

    // Taggable objects carry berth's marks now.
    let moto = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let addrs = moto.describe_addresses().allocation_ids(&e.nat_eip).send().await.unwrap();
    assert!(
        addrs.addresses()[0].tags().iter().any(|t| t.key() == Some("berth:address") && t.value() == Some("aws_eip.nat")),
        "{:?}",
        addrs.addresses()[0].tags()
    );

    let r = aws.berth(&w, None, &["plan", "--detailed-exitcode", "--no-color"]);
    r.assert_code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
}
