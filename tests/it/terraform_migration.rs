//! Moving a Terraform-managed fleet to berth without recreating anything.
//!
//! "Terraform" here is the test: it creates a VPC, subnet, gateway, route
//! table, security group, key pair, two hosts, a private zone and a record
//! per host (in a module, with `for_each`) through the strict AWS layer,
//! then writes the state Terraform's AWS provider would have written for
//! them, in Terraform's documented format version 4 (attributes as that
//! provider records them: `user_data` as a SHA-1, the default description
//! "Managed by Terraform", routes and rules with Terraform's extra keys, a
//! record's name as configured), plus a resource of a type berth does not
//! have and a data source. `berth state migrate-terraform` makes the berth
//! state of it; the next `berth plan` with the same configuration must
//! replace, create and destroy nothing, and change nothing but berth's
//! ownership marks; the apply writes them, and the plan after that is empty.

use crate::support;

use serde_json::json;
use sha1::Digest;
use support::aws::Aws;
use support::cli::{Run, Work};

pub(crate) const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbv5gNJcQU6GwJ+dfxZUCKtwWHtb/K9ncklbTa4A5j8 fleet";

pub(crate) fn config(ami: &str) -> String {
    format!(
        r##"
variable "aws_endpoint" {{
  type    = string
  default = null
}}

provider "aws" {{
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
}}

resource "aws_vpc" "main" {{
  cidr_block           = "10.60.0.0/16"
  enable_dns_hostnames = true
  tags                 = {{ Name = "fleet" }}
}}

resource "aws_subnet" "public" {{
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.60.1.0/24"
  availability_zone = "us-east-1a"
  tags              = {{ Name = "public" }}
}}

resource "aws_internet_gateway" "gw" {{
  vpc_id = aws_vpc.main.id
}}

resource "aws_route_table" "public" {{
  vpc_id = aws_vpc.main.id
  route {{
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }}
}}

resource "aws_route_table_association" "public" {{
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}}

resource "aws_security_group" "hosts" {{
  name        = "fleet-hosts"
  description = "Managed by Terraform"
  vpc_id      = aws_vpc.main.id
  ingress {{
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }}
  egress {{
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }}
}}

resource "aws_key_pair" "deployer" {{
  key_name   = "fleet"
  public_key = "{KEY}\n"
}}

resource "aws_instance" "host" {{
  count                  = 2
  ami                    = "{ami}"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.hosts.id]
  key_name               = aws_key_pair.deployer.key_name
  user_data              = "#!/bin/sh\necho host-${{count.index}}\n"
  tags                   = {{ Name = "host-${{count.index}}" }}
}}

resource "aws_route53_zone" "internal" {{
  name    = "internal"
  comment = "Managed by Terraform"
  vpc {{
    vpc_id = aws_vpc.main.id
  }}
}}

output "vpc_id" {{
  value = aws_vpc.main.id
}}

module "dns" {{
  source  = "./modules/dns"
  zone_id = aws_route53_zone.internal.zone_id
  hosts   = {{ for i, h in aws_instance.host : "host-${{i}}" => h.private_ip }}
}}
"##
    )
}

pub(crate) const DNS_MODULE: &str = r#"
variable "zone_id" { type = string }
variable "hosts" { type = map(string) }

resource "aws_route53_record" "host" {
  for_each = var.hosts
  zone_id  = var.zone_id
  name     = each.key
  type     = "A"
  ttl      = 60
  records  = [each.value]
}
"#;

/// Retries a call the strict layer refuses while a new object is not yet
/// visible (EC2 is eventually consistent; Terraform retries these too).
pub(crate) async fn eventually<T, E: std::fmt::Debug, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last = None;
    for _ in 0..40 {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                let text = format!("{e:?}");
                assert!(text.contains("NotFound") || text.contains("DependencyViolation"), "{what}: {text}");
                last = Some(text);
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }
    panic!("{what}: still failing: {last:?}");
}

/// What Terraform's AWS provider records for `user_data`.
fn tf_user_data(script: &str) -> String {
    hex::encode(sha1::Sha1::digest(script.as_bytes()))
}

/// The ids of what "Terraform" created.
pub(crate) struct Fleet {
    pub ami: String,
    pub vpc: String,
    pub subnet: String,
    pub igw: String,
    pub rtb: String,
    pub assoc: String,
    pub sg: String,
    pub key_pair_id: String,
    pub hosts: Vec<(String, String)>,
    pub zone: String,
}

/// The Amazon Linux 2 image moto lists, as "another tool" would find it.
pub(crate) async fn amazon_linux_ami(ec2: &aws_sdk_ec2::Client) -> String {
    let images = ec2
        .describe_images()
        .owners("amazon")
        .filters(aws_sdk_ec2::types::Filter::builder().name("name").values("amzn2-ami-hvm-*-x86_64-gp2").build())
        .send()
        .await
        .expect("DescribeImages");
    images.images()[0].image_id().unwrap().to_string()
}

pub(crate) async fn create_fleet(aws: &Aws) -> Fleet {
    use aws_sdk_ec2::types::*;
    let conf = aws.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let tags =
        |t: ResourceType, name: &str| TagSpecification::builder().resource_type(t).tags(tag("Name", name)).build();

    let ami = amazon_linux_ami(&ec2).await;

    let vpc =
        ec2.create_vpc().cidr_block("10.60.0.0/16").tag_specifications(tags(ResourceType::Vpc, "fleet")).send().await;
    let vpc = vpc.expect("CreateVpc").vpc().unwrap().vpc_id().unwrap().to_string();
    eventually("ModifyVpcAttribute", || {
        ec2.modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
    })
    .await;
    let subnet = eventually("CreateSubnet", || {
        ec2.create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.60.1.0/24")
            .availability_zone("us-east-1a")
            .tag_specifications(tags(ResourceType::Subnet, "public"))
            .send()
    })
    .await;
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let igw = ec2.create_internet_gateway().send().await.expect("CreateInternetGateway");
    let igw = igw.internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    eventually("AttachInternetGateway", || ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send())
        .await;
    let rtb = eventually("CreateRouteTable", || ec2.create_route_table().vpc_id(&vpc).send()).await;
    let rtb = rtb.route_table().unwrap().route_table_id().unwrap().to_string();
    eventually("CreateRoute", || {
        ec2.create_route().route_table_id(&rtb).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send()
    })
    .await;
    let assoc = eventually("AssociateRouteTable", || {
        ec2.associate_route_table().route_table_id(&rtb).subnet_id(&subnet).send()
    })
    .await;
    let assoc = assoc.association_id().unwrap().to_string();
    let sg = eventually("CreateSecurityGroup", || {
        ec2.create_security_group().group_name("fleet-hosts").description("Managed by Terraform").vpc_id(&vpc).send()
    })
    .await;
    let sg = sg.group_id().unwrap().to_string();
    eventually("AuthorizeSecurityGroupIngress", || {
        ec2.authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
                    .build(),
            )
            .send()
    })
    .await;
    let kp = ec2
        .import_key_pair()
        .key_name("fleet")
        .public_key_material(aws_smithy_types::Blob::new(KEY.as_bytes()))
        .send()
        .await
        .expect("ImportKeyPair");
    let key_pair_id = kp.key_pair_id().unwrap().to_string();
    let mut hosts = Vec::new();
    for i in 0..2 {
        use base64::Engine;
        let script = format!("#!/bin/sh\necho host-{i}\n");
        let run = eventually("RunInstances", || {
            ec2.run_instances()
                .image_id(&ami)
                .instance_type(InstanceType::T3Micro)
                .min_count(1)
                .max_count(1)
                .subnet_id(&subnet)
                .security_group_ids(&sg)
                .key_name("fleet")
                .user_data(base64::engine::general_purpose::STANDARD.encode(&script))
                .client_token(format!("terraform-host-{i}"))
                .tag_specifications(tags(ResourceType::Instance, &format!("host-{i}")))
                .send()
        })
        .await;
        let inst = &run.instances()[0];
        hosts.push((inst.instance_id().unwrap().to_string(), inst.private_ip_address().unwrap().to_string()));
    }
    // Terraform waits for each host to run before it records it.
    for (id, _) in &hosts {
        let mut running = false;
        for _ in 0..60 {
            let found = ec2.describe_instances().instance_ids(id).send().await;
            let state = found.ok().and_then(|f| {
                f.reservations().first()?.instances().first()?.state()?.name().map(|n| n.as_str().to_string())
            });
            if state.as_deref() == Some("running") {
                running = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert!(running, "{id} never ran");
    }

    let zone = r53
        .create_hosted_zone()
        .name("internal")
        .caller_reference("terraform-20261202")
        .hosted_zone_config(
            aws_sdk_route53::types::HostedZoneConfig::builder()
                .comment("Managed by Terraform")
                .private_zone(true)
                .build(),
        )
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(&vpc)
                .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                .build(),
        )
        .send()
        .await
        .expect("CreateHostedZone");
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    {
        use aws_sdk_route53::types::*;
        let mut batch = ChangeBatch::builder();
        for (i, (_, ip)) in hosts.iter().enumerate() {
            let set = ResourceRecordSet::builder()
                .name(format!("host-{i}.internal"))
                .r#type(RrType::A)
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(ip).build().unwrap())
                .build()
                .unwrap();
            batch =
                batch.changes(Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap());
        }
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(batch.build().unwrap())
            .send()
            .await
            .expect("records");
    }
    Fleet { ami, vpc, subnet, igw, rtb, assoc, sg, key_pair_id, hosts, zone }
}

/// The state Terraform's AWS provider would have written for the fleet:
/// format version 4, its attribute names and spellings.
fn terraform_state(f: &Fleet) -> serde_json::Value {
    let aws = r#"provider["registry.terraform.io/hashicorp/aws"]"#;
    let res = |module: Option<&str>, type_: &str, name: &str, instances: Vec<serde_json::Value>| {
        let mut r = json!({"mode": "managed", "type": type_, "name": name, "provider": aws, "instances": instances});
        if let Some(m) = module {
            r["module"] = json!(m);
        }
        r
    };
    let inst = |attrs: serde_json::Value, deps: &[&str]| json!({"schema_version": 1, "attributes": attrs, "sensitive_attributes": [], "dependencies": deps});
    let route_keys = json!({
        "carrier_gateway_id": "", "core_network_arn": "", "destination_prefix_list_id": "", "egress_only_gateway_id": "",
        "ipv6_cidr_block": "", "local_gateway_id": "", "nat_gateway_id": "", "network_interface_id": "",
        "transit_gateway_id": "", "vpc_endpoint_id": "", "vpc_peering_connection_id": ""
    });
    let mut route = route_keys.clone();
    route["cidr_block"] = json!("0.0.0.0/0");
    route["gateway_id"] = json!(f.igw);
    let rule = |from: i64, to: i64, proto: &str, cidr: &str| {
        json!({"cidr_blocks": [cidr], "description": "", "from_port": from, "ipv6_cidr_blocks": [], "prefix_list_ids": [],
               "protocol": proto, "security_groups": [], "self": false, "to_port": to})
    };
    let hosts: Vec<serde_json::Value> = f
        .hosts
        .iter()
        .enumerate()
        .map(|(i, (id, ip))| {
            let mut v = inst(
                json!({
                    "id": id, "ami": f.ami, "instance_type": "t3.micro", "subnet_id": f.subnet,
                    "vpc_security_group_ids": [f.sg], "key_name": "fleet",
                    "user_data": tf_user_data(&format!("#!/bin/sh\necho host-{i}\n")),
                    "user_data_base64": null, "associate_public_ip_address": false, "private_ip": ip,
                    "public_ip": "", "tags": {"Name": format!("host-{i}")}, "tags_all": {"Name": format!("host-{i}")},
                    "instance_state": "running", "availability_zone": "us-east-1a", "monitoring": false,
                    "ebs_optimized": false, "timeouts": null
                }),
                &["aws_key_pair.deployer", "aws_security_group.hosts", "aws_subnet.public"],
            );
            v["index_key"] = json!(i);
            v
        })
        .collect();
    let records: Vec<serde_json::Value> = f
        .hosts
        .iter()
        .enumerate()
        .map(|(i, (_, ip))| {
            let name = format!("host-{i}");
            let mut v = inst(
                json!({
                    "id": format!("{}_{name}_A", f.zone), "zone_id": f.zone, "name": name,
                    "fqdn": format!("{name}.internal"), "type": "A", "ttl": 60, "records": [ip],
                    "alias": [], "set_identifier": "", "health_check_id": "", "allow_overwrite": null,
                    "weighted_routing_policy": [], "multivalue_answer_routing_policy": false
                }),
                &["aws_instance.host", "aws_route53_zone.internal"],
            );
            v["index_key"] = json!(name);
            v["schema_version"] = json!(2);
            v
        })
        .collect();
    json!({
        "version": 4,
        "terraform_version": "1.11.0",
        "serial": 14,
        "lineage": "6b0b3f4e-2f7a-4d6e-9a51-1c2d3e4f5a6b",
        "outputs": {"vpc_id": {"value": f.vpc, "type": "string"}},
        "resources": [
            {"mode": "data", "type": "aws_availability_zones", "name": "all", "provider": aws,
             "instances": [{"schema_version": 0, "attributes": {"id": "us-east-1"}}]},
            res(None, "aws_iam_role", "deploy", vec![inst(json!({"id": "fleet-deploy", "name": "fleet-deploy"}), &[])]),
            res(None, "aws_instance", "host", hosts),
            res(None, "aws_internet_gateway", "gw", vec![inst(json!({"id": f.igw, "vpc_id": f.vpc, "tags": {}, "tags_all": {}}), &["aws_vpc.main"])]),
            res(None, "aws_key_pair", "deployer", vec![inst(json!({
                "id": "fleet", "key_name": "fleet", "key_name_prefix": "", "key_pair_id": f.key_pair_id,
                "public_key": KEY, "tags": {}, "tags_all": {}}), &[])]),
            res(None, "aws_route53_zone", "internal", vec![inst(json!({
                "id": f.zone, "zone_id": f.zone, "name": "internal", "comment": "Managed by Terraform",
                "delegation_set_id": "", "force_destroy": false, "name_servers": [], "tags": {}, "tags_all": {},
                "vpc": [{"vpc_id": f.vpc, "vpc_region": "us-east-1"}]}), &["aws_vpc.main"])]),
            res(None, "aws_route_table", "public", vec![inst(json!({
                "id": f.rtb, "vpc_id": f.vpc, "route": [route], "propagating_vgws": [], "tags": {}, "tags_all": {}}),
                &["aws_internet_gateway.gw", "aws_vpc.main"])]),
            res(None, "aws_route_table_association", "public", vec![inst(json!({
                "id": f.assoc, "subnet_id": f.subnet, "route_table_id": f.rtb, "gateway_id": ""}),
                &["aws_route_table.public", "aws_subnet.public"])]),
            res(None, "aws_security_group", "hosts", vec![inst(json!({
                "id": f.sg, "name": "fleet-hosts", "name_prefix": "", "description": "Managed by Terraform", "vpc_id": f.vpc,
                "ingress": [rule(22, 22, "tcp", "10.0.0.0/8")], "egress": [rule(0, 0, "-1", "0.0.0.0/0")],
                "revoke_rules_on_delete": false, "tags": {}, "tags_all": {}}), &["aws_vpc.main"])]),
            res(None, "aws_subnet", "public", vec![inst(json!({
                "id": f.subnet, "vpc_id": f.vpc, "cidr_block": "10.60.1.0/24", "availability_zone": "us-east-1a",
                "map_public_ip_on_launch": false, "tags": {"Name": "public"}, "tags_all": {"Name": "public"}}), &["aws_vpc.main"])]),
            res(None, "aws_vpc", "main", vec![inst(json!({
                "id": f.vpc, "cidr_block": "10.60.0.0/16", "enable_dns_support": true, "enable_dns_hostnames": true,
                "instance_tenancy": "default", "tags": {"Name": "fleet"}, "tags_all": {"Name": "fleet"}}), &[])]),
            res(Some("module.dns"), "aws_route53_record", "host", records),
        ]
    })
}

fn berth(aws: &Aws, w: &Work, args: &[&str]) -> Run {
    aws.berth(w, None, args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terraform_fleet_moves_to_berth_with_nothing_replaced() {
    let aws = Aws::start();
    let fleet = create_fleet(&aws).await;
    let w = Work::new();
    w.write("main.hcl", &config(&fleet.ami));
    w.write("modules/dns/main.hcl", DNS_MODULE);
    w.write("terraform.tfstate", &serde_json::to_string_pretty(&terraform_state(&fleet)).unwrap());

    let r = w.run(&["state", "migrate-terraform", "terraform.tfstate"]);
    r.assert_ok();
    for addr in [
        "aws_vpc.main",
        "aws_instance.host[0]",
        "aws_instance.host[1]",
        "module.dns.aws_route53_record.host[\"host-0\"]",
        "aws_route_table_association.public",
    ] {
        assert!(r.stdout.contains(addr), "{addr} not listed as migrated:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("Migrated 12 object(s)"), "{}", r.stdout);
    assert!(r.stdout.contains("aws_iam_role.deploy: berth has no resource type `aws_iam_role`"), "{}", r.stdout);
    assert!(r.stdout.contains("data.aws_availability_zones.all"), "{}", r.stdout);
    let state = w.state();
    assert_eq!(state["lineage"], "6b0b3f4e-2f7a-4d6e-9a51-1c2d3e4f5a6b");
    assert_eq!(w.state_addresses().len(), 12);

    // A second migration would replace a state that manages objects.
    let again = w.run(&["state", "migrate-terraform", "terraform.tfstate"]);
    again.assert_code(1);
    assert!(again.stderr.contains("already manages 12 object(s)"), "{}", again.stderr);

    let r = berth(&aws, &w, &["plan", "--no-color"]);
    r.assert_ok();
    let plan = &r.stdout;
    for bad in ["must be replaced", "will be created", "will be destroyed", "forces replacement"] {
        assert!(!plan.contains(bad), "`{bad}` in the plan after migrating:\n{plan}");
    }
    assert!(plan.contains("Plan: 0 to add, 10 to change, 0 to destroy."), "{plan}");
    // The EC2 objects change by their ownership tags only, the records by their ownership record only.
    assert_eq!(plan.matches("imported: berth adds its ownership tags").count(), 8, "{plan}");
    let changed: Vec<&str> = plan
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("~ ") || l.starts_with("+ ") || l.starts_with("- "))
        .filter(|l| !l.contains(" resource \""))
        .collect();
    assert!(changed.iter().all(|l| l.starts_with("+ owner")), "changes other than ownership: {changed:#?}\n{plan}");
    assert_eq!(changed.len(), 2, "{plan}");

    let r = berth(&aws, &w, &["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("0 added, 10 changed, 0 destroyed"), "{}", r.stdout);

    // What AWS has now: the same objects, carrying berth's marks.
    let moto = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let vpcs = moto.describe_vpcs().vpc_ids(&fleet.vpc).send().await.unwrap();
    let tags = vpcs.vpcs()[0].tags();
    let has = |k: &str, v: &str| tags.iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
    assert!(
        has("berth:address", "aws_vpc.main") && has("berth:lineage", "6b0b3f4e-2f7a-4d6e-9a51-1c2d3e4f5a6b"),
        "{tags:?}"
    );
    assert!(has("Name", "fleet"), "the user's tags stay: {tags:?}");
    let insts = moto.describe_instances().instance_ids(&fleet.hosts[1].0).send().await.unwrap();
    let i = &insts.reservations()[0].instances()[0];
    assert!(i.tags().iter().any(|t| t.key() == Some("berth:address") && t.value() == Some("aws_instance.host[1]")));
    assert_eq!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"), "the host was never replaced");
    let after = w.state();
    assert!(
        after["resources"].as_array().unwrap().iter().all(|r| r.get("imported").is_none()
            || matches!(r["addr"].as_str(), Some("aws_route53_zone.internal" | "aws_route_table_association.public"))),
        "objects still marked imported after the apply: {after:#}"
    );

    let r = berth(&aws, &w, &["plan", "--detailed-exitcode", "--no-color"]);
    r.assert_code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);

    // `--force` replaces the state, with a newer serial.
    let serial = w.state()["serial"].as_u64().unwrap();
    w.run(&["state", "migrate-terraform", "--force", "terraform.tfstate"]).assert_ok();
    assert!(w.state()["serial"].as_u64().unwrap() > serial);
}
