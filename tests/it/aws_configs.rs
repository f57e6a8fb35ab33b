//! Whole configurations of the kind berth's users write (a Kamal host, a
//! VPC with public and private subnets, utility providers), each in
//! `tests/fixtures/configs/NAME/`, through the real `berth` binary against
//! moto behind the strict AWS layer: `validate`, `plan` (changes),
//! `apply`, `plan` again (no changes), `destroy`, and then nothing of the
//! run is left in AWS.
//!
//! The fixtures are berth's own, written to use the features public
//! configurations of this kind use (zones from `aws_availability_zones`,
//! NAT gateways or a NAT instance, rule resources, hosts with disks, IMDSv2
//! and user data from templates, Elastic IPs, private zones, random
//! suffixes, deploy keys, files for Kamal and ssh, count and for_each
//! fleets, local modules, the default security group, null and time); a
//! fixture's folders (`modules/`, `templates/`) come with it. `setup` makes
//! what a fixture names but berth does not manage (an IAM instance
//! profile).


use crate::support;
use crate::support::aws::Aws;
use crate::support::cli::{Run, Work};

/// Copies a fixture, with its folders (`modules/`, `templates/`), into a
/// scratch directory.
fn fixture(name: &str) -> Work {
    let w = Work::new();
    let src = support::venv::repo_root().join("tests/fixtures/configs").join(name);
    copy_into(&w, &src, "");
    w
}

fn copy_into(w: &Work, dir: &std::path::Path, prefix: &str) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("fixture {}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let name = format!("{prefix}{}", p.file_name().unwrap().to_str().unwrap());
        if p.is_dir() {
            copy_into(w, &p, &format!("{name}/"));
        } else if p.is_file() {
            w.write(&name, &std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// `berth ARGS` with the provider pointed at the layer through the
/// environment, as a CI job would point it at AWS: the fixtures stay as a
/// user writes them.
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

/// What berth's ownership tags still mark in moto after a destroy: every
/// kind of object berth makes, listed by its own Describe call (moto keeps
/// the tags of some deleted objects in DescribeTags).
async fn left_behind(aws: &Aws, lineage: &str) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let mine = || aws_sdk_ec2::types::Filter::builder().name("tag:berth:lineage").values(lineage).build();
    let mut out = Vec::new();
    let instances = ec2.describe_instances().filters(mine()).send().await.unwrap();
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated") {
            out.push(i.instance_id().unwrap_or_default().to_string());
        }
    }
    let vpcs = ec2.describe_vpcs().filters(mine()).send().await.unwrap();
    out.extend(vpcs.vpcs().iter().filter_map(|v| v.vpc_id()).map(str::to_string));
    let subnets = ec2.describe_subnets().filters(mine()).send().await.unwrap();
    out.extend(subnets.subnets().iter().filter_map(|v| v.subnet_id()).map(str::to_string));
    let groups = ec2.describe_security_groups().filters(mine()).send().await.unwrap();
    out.extend(groups.security_groups().iter().filter_map(|v| v.group_id()).map(str::to_string));
    let gateways = ec2.describe_internet_gateways().filters(mine()).send().await.unwrap();
    out.extend(gateways.internet_gateways().iter().filter_map(|v| v.internet_gateway_id()).map(str::to_string));
    let tables = ec2.describe_route_tables().filters(mine()).send().await.unwrap();
    out.extend(tables.route_tables().iter().filter_map(|v| v.route_table_id()).map(str::to_string));
    let keys = ec2.describe_key_pairs().filters(mine()).send().await.unwrap();
    out.extend(keys.key_pairs().iter().filter_map(|k| k.key_name()).map(str::to_string));
    let addresses = ec2.describe_addresses().filters(mine()).send().await.unwrap();
    out.extend(addresses.addresses().iter().filter_map(|a| a.allocation_id()).map(str::to_string));
    let nats = ec2.describe_nat_gateways().filter(mine()).send().await.unwrap();
    out.extend(
        nats.nat_gateways()
            .iter()
            .filter(|n| n.state().is_some_and(|s| !matches!(s.as_str(), "deleted" | "deleting")))
            .filter_map(|n| n.nat_gateway_id())
            .map(str::to_string),
    );
    out
}

/// The whole life of a fixture: validate, plan, apply, a no-op plan,
/// destroy, nothing left. Returns the applied state for further checks.
async fn cycle(name: &str, setup: impl FnOnce(&Aws)) -> serde_json::Value {
    cycle_checked(name, setup, |_, _| {}).await
}

/// [`cycle`], with `check` run on the work directory and the state between
/// the no-op plan and the destroy (for the files a fixture writes).
async fn cycle_checked(
    name: &str,
    setup: impl FnOnce(&Aws),
    check: impl FnOnce(&Work, &serde_json::Value),
) -> serde_json::Value {
    let aws = Aws::start();
    setup(&aws);
    let w = fixture(name);
    berth(&w, &aws, &["validate"]).assert_ok();
    let plan = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    let applied = berth(&w, &aws, &["apply", "--auto-approve"]);
    if applied.code != 0 {
        panic!("{name}: apply failed\n{}\n{}\nlayer: {}", applied.stdout, applied.stderr, aws.report());
    }
    let state = w.state();
    let again = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{name}: the plan after apply is not empty\n{}\n{}", again.stdout, again.stderr);
    check(&w, &state);
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
    let lineage = state["lineage"].as_str().unwrap_or_default();
    let left = left_behind(&aws, lineage).await;
    assert!(left.is_empty(), "{name}: destroy left {left:?}");
    state
}

/// The attributes of one resource instance of a state.
fn attributes<'a>(state: &'a serde_json::Value, addr: &str) -> &'a serde_json::Value {
    state["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["addr"] == addr))
        .map(|r| &r["attributes"])
        .unwrap_or_else(|| panic!("no `{addr}` in the state"))
}

#[tokio::test(flavor = "multi_thread")]
async fn kamal_web_host() {
    let state = cycle("kamal-web-host", |aws| aws.create_instance_profile("kamal-web")).await;
    let web = attributes(&state, "aws_instance.web");
    assert_eq!(web["iam_instance_profile"], "kamal-web");
    assert_eq!(web["metadata_options"][0]["http_tokens"], "required");
    assert_eq!(web["metadata_options"][0]["http_put_response_hop_limit"], 2.0);
    assert_eq!(web["metadata_options"][0]["http_endpoint"], "enabled", "a field left out is what AWS chose");
    let root = &web["root_block_device"][0];
    assert_eq!((root["volume_size"].as_f64(), root["volume_type"].as_str()), (Some(40.0), Some("gp3")));
    assert_eq!(root["encrypted"], true);
    assert!(root["volume_id"].as_str().is_some_and(|v| v.starts_with("vol-")), "{root}");
    assert_eq!(web["volume_tags"]["Name"], "kamal-web-root");
    assert_eq!(web["credit_specification"][0]["cpu_credits"], "unlimited");
}

/// Things made outside the configuration, for `lookups` to find: a bastion
/// and a second host of the platform team (launched by hand), and the
/// company's public zone.
async fn made_elsewhere(aws: &Aws) -> (String, String) {
    let sdk = aws.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let mut ids = Vec::new();
    for role in ["bastion", "jobs"] {
        let spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
            .tags(tag("Role", role))
            .tags(tag("Team", "platform"))
            .build();
        let out = ec2
            .run_instances()
            .image_id("ami-04681a1dbd79675a5")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec)
            .send()
            .await
            .unwrap();
        ids.push(out.instances()[0].instance_id().unwrap().to_string());
    }
    // Running, as AWS shows them, before the configuration looks.
    for _ in 0..100 {
        let out = ec2.describe_instances().set_instance_ids(Some(ids.clone())).send().await;
        let running = out.ok().is_some_and(|o| {
            let all: Vec<_> = o.reservations().iter().flat_map(|r| r.instances()).collect();
            all.len() == 2
                && all.iter().all(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() == "running"))
        });
        if running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r53 = aws_sdk_route53::Client::new(&sdk);
    r53.create_hosted_zone().name("example-corp.test").caller_reference("by-hand").send().await.unwrap();
    (ids[0].clone(), ids[1].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn lookups() {
    let aws = Aws::start();
    let (bastion, jobs) = made_elsewhere(&aws).await;
    let w = fixture("lookups");
    berth(&w, &aws, &["validate"]).assert_ok();
    berth(&w, &aws, &["apply", "--auto-approve"]).assert_ok();
    let again = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    let out = |name: &str| {
        let r = berth(&w, &aws, &["output", "--json", name]);
        r.assert_ok();
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    assert_eq!(out("region"), "us-east-1");
    assert_eq!(out("arn_prefix"), "arn:aws:ec2:us-east-1:123456789012");
    let zones = out("zones");
    assert!(zones.as_array().is_some_and(|z| z.len() >= 2 && z[0] == "us-east-1a"), "{zones}");
    assert_eq!(out("bastion"), bastion.as_str());
    let mut both = vec![bastion.clone(), jobs.clone()];
    both.sort();
    assert_eq!(out("running"), serde_json::json!(both));
    assert!(out("public_name_servers").as_array().is_some_and(|n| !n.is_empty()));
    let state = w.state();
    let internal = attributes(&state, "aws_route53_zone.internal");
    assert_eq!(out("internal_zone"), internal["zone_id"]);
    let subnets: Vec<&str> = ["aws_subnet.app[0]", "aws_subnet.app[1]"]
        .iter()
        .map(|a| attributes(&state, a)["availability_zone"].as_str().unwrap())
        .collect();
    assert_eq!(subnets, ["us-east-1a", "us-east-1b"]);
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
    let lineage = state["lineage"].as_str().unwrap();
    let left = left_behind(&aws, lineage).await;
    assert!(left.is_empty(), "destroy left {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vpc_nat_eip() {
    let state = cycle("vpc-nat-eip", |_| {}).await;
    let vpc = attributes(&state, "aws_vpc.main");
    assert!(vpc["ipv6_cidr_block"].as_str().is_some_and(|c| c.contains(':')), "{vpc}");
    assert_eq!(vpc["instance_tenancy"], "default");
    let nat = attributes(&state, "aws_nat_gateway.main");
    let nat_eip = attributes(&state, "aws_eip.nat");
    assert_eq!(nat["public_ip"], nat_eip["public_ip"], "the gateway goes out through its Elastic IP");
    let route = attributes(&state, "aws_route.private_default");
    assert_eq!(route["nat_gateway_id"], nat["id"]);
    let web_eip = attributes(&state, "aws_eip.web");
    let association = attributes(&state, "aws_eip_association.web");
    assert_eq!(association["public_ip"], web_eip["public_ip"]);
    assert_eq!(association["instance_id"], attributes(&state, "aws_instance.web")["id"]);
    let https = attributes(&state, "aws_vpc_security_group_ingress_rule.https");
    assert!(https["security_group_rule_id"].as_str().is_some_and(|id| id.starts_with("sgr-")), "{https}");
    let ssh = attributes(&state, "aws_security_group_rule.workers_ssh_from_web");
    assert!(ssh["id"].as_str().is_some_and(|id| id.starts_with("sgrule-")), "{ssh}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kamal_ssh_key() {
    let aws = Aws::start();
    let w = fixture("kamal-ssh-key");
    berth(&w, &aws, &["validate"]).assert_ok();
    let plan = berth(&w, &aws, &["plan"]);
    plan.assert_ok();
    assert!(
        plan.stdout.contains("private_key_openssh") && plan.stdout.contains("(sensitive value)"),
        "{}",
        plan.stdout
    );
    berth(&w, &aws, &["apply", "--auto-approve"]).assert_ok();
    let state = w.state();
    let key = attributes(&state, "tls_private_key.deploy");
    let private = key["private_key_openssh"].as_str().unwrap();
    let text = std::fs::read_to_string(w.path().join("state/default.json")).unwrap();
    assert!(text.contains("private_key_openssh"), "the state holds the key, marked sensitive");
    let marked = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == "tls_private_key.deploy")
        .map(|r| r["sensitive"].to_string())
        .unwrap();
    assert!(marked.contains("private_key_openssh") && marked.contains("private_key_pem"), "{marked}");
    let pw = attributes(&state, "random_password.registry");
    assert!(attributes_marked(&state, "random_password.registry", "result"), "the password is marked sensitive");
    assert_eq!(pw["result"].as_str().unwrap().len(), 24);
    // The key file is the key, usable by ssh, and the owner's alone.
    let file = w.path().join(".kamal/id_ed25519");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), private);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o077, 0);
    let derived = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&file).output().unwrap();
    assert!(derived.status.success(), "{}", String::from_utf8_lossy(&derived.stderr));
    let public = key["public_key_openssh"].as_str().unwrap();
    assert_eq!(String::from_utf8_lossy(&derived.stdout).trim(), public.trim());
    // The hosts carry the key and their random names.
    let pair = attributes(&state, "aws_key_pair.deploy");
    assert_eq!(pair["public_key"], public);
    let host = attributes(&state, "aws_instance.host[0]");
    assert_eq!(host["tags"]["Name"], attributes(&state, "random_pet.host[0]")["id"]);
    let hosts = std::fs::read_to_string(w.path().join(".kamal/hosts.yml")).unwrap();
    assert!(hosts.contains(host["private_ip"].as_str().unwrap()), "{hosts}");
    // Listed with the others, a sensitive output is not printed (asked for
    // by name, it is, as in Terraform).
    let out = berth(&w, &aws, &["output"]);
    assert!(out.stdout.contains("registry_password"), "{}", out.stdout);
    assert!(!out.stdout.contains(pw["result"].as_str().unwrap()), "a sensitive output is not printed: {}", out.stdout);
    let again = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    // A key file deleted behind berth's back is written again.
    std::fs::remove_file(&file).unwrap();
    let drift = berth(&w, &aws, &["plan", "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    berth(&w, &aws, &["apply", "--auto-approve"]).assert_ok();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), private, "the same key, from the state");
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
    assert!(!file.exists() && !w.path().join(".kamal/hosts.yml").exists(), "destroy removes the files");
    let left = left_behind(&aws, state["lineage"].as_str().unwrap()).await;
    assert!(left.is_empty(), "{left:?}");
}

/// Whether the state marks `attr` of `addr` sensitive.
fn attributes_marked(state: &serde_json::Value, addr: &str, attr: &str) -> bool {
    state["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["addr"] == addr))
        .and_then(|r| r["sensitive"].as_array())
        .is_some_and(|s| s.iter().any(|p| p.as_str().is_some_and(|p| p == attr || p.starts_with(&format!("{attr}.")))))
}

/// The text of a file a fixture wrote.
fn written(w: &Work, path: &str) -> String {
    std::fs::read_to_string(w.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_zone_fleet() {
    let state = cycle("two-zone-fleet", |_| {}).await;
    let zones: std::collections::BTreeSet<&str> = (0..3)
        .map(|i| attributes(&state, &format!("aws_instance.web[{i}]"))["availability_zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones.len(), 2, "the fleet spans two zones: {zones:?}");
    for i in 0..3 {
        let eip = attributes(&state, &format!("aws_eip.web[{i}]"));
        assert_eq!(eip["instance"], attributes(&state, &format!("aws_instance.web[{i}]"))["id"]);
        let record = attributes(&state, &format!("aws_route53_record.web[{i}]"));
        assert_eq!(record["fqdn"], format!("web-{}.shop.internal", i + 1));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_for_each() {
    cycle_checked("roles-for-each", |_| {}, |w, state| {
        let deploy = written(w, "config/deploy.production.yml");
        let web = attributes(state, "aws_instance.host[\"web\"]");
        let jobs = attributes(state, "aws_instance.host[\"jobs\"]");
        assert!(deploy.contains(&format!("      - {}\n", web["public_ip"].as_str().unwrap())), "{deploy}");
        assert!(deploy.contains(&format!("      - {}\n", jobs["private_ip"].as_str().unwrap())), "{deploy}");
        assert!(deploy.contains("redis://cache.roles.internal:6379/0"), "{deploy}");
        assert_eq!(jobs["root_block_device"][0]["volume_size"], 40.0);
        let rule = attributes(state, "aws_vpc_security_group_ingress_rule.cache_from_app[\"jobs\"]");
        assert_eq!(rule["referenced_security_group_id"], attributes(state, "aws_security_group.role[\"jobs\"]")["id"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn local_modules() {
    let state = cycle("local-modules", |_| {}).await;
    let web = attributes(&state, "module.web.aws_instance.this");
    let api = attributes(&state, "module.api.aws_instance.this");
    assert_ne!(web["availability_zone"], api["availability_zone"]);
    assert_eq!(attributes(&state, "module.api.aws_route53_record.this")["fqdn"], "api.staging.internal");
    let prefix = attributes(&state, "random_id.env")["hex"].as_str().unwrap().to_string();
    assert!(prefix.starts_with("staging-"), "{prefix}");
    assert_eq!(attributes(&state, "module.network.aws_vpc.this")["tags"]["Name"], prefix.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn bastion_nat() {
    cycle_checked("bastion-nat", |_| {}, |w, state| {
        let config = written(w, ".ssh/config");
        let bastion = attributes(state, "aws_eip.bastion")["public_ip"].as_str().unwrap().to_string();
        assert!(config.contains(&format!("HostName {bastion}")), "{config}");
        for i in 0..2 {
            let ip = attributes(state, &format!("aws_instance.app[{i}]"))["private_ip"].as_str().unwrap().to_string();
            assert!(config.contains(&format!("Host app-{i}\n  HostName {ip}\n  User ubuntu\n  ProxyJump bastion")), "{config}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.path().join(".ssh/deploy")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is the owner's alone");
        let app = attributes(state, "aws_instance.app[0]");
        assert_eq!(app["metadata_options"][0]["instance_metadata_tags"], "enabled");
        assert_eq!(app["public_ip"], serde_json::Value::Null, "{app}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn db_accessory() {
    let state = cycle("db-accessory", |aws| aws.create_instance_profile("db-backups")).await;
    let db = attributes(&state, "aws_instance.db");
    assert_eq!(db["private_ip"], "10.60.1.50");
    assert_eq!(db["monitoring"], true);
    let data = &db["ebs_block_device"][0];
    assert_eq!((data["device_name"].as_str(), data["volume_size"].as_f64()), (Some("/dev/sdf"), Some(100.0)));
    assert!(data["volume_id"].as_str().is_some_and(|v| v.starts_with("vol-")), "{data}");
    // The password reaches the host's user data, and the state marks the
    // user data sensitive as it derives from it.
    let password = attributes(&state, "random_password.postgres")["result"].as_str().unwrap().to_string();
    let user_data = db["user_data"].as_str().unwrap();
    assert!(user_data.contains(&format!("POSTGRES_PASSWORD={password}")), "{user_data}");
    assert!(attributes_marked(&state, "aws_instance.db", "user_data"), "user data that holds a password is sensitive");
}

#[tokio::test(flavor = "multi_thread")]
async fn dualstack() {
    let state = cycle("dualstack", |_| {}).await;
    let vpc = attributes(&state, "aws_vpc.v6")["ipv6_cidr_block"].as_str().unwrap().to_string();
    let vpc_net: ipnet::Ipv6Net = vpc.parse().unwrap();
    for i in 0..2 {
        let subnet = attributes(&state, &format!("aws_subnet.public[{i}]"));
        let net: ipnet::Ipv6Net = subnet["ipv6_cidr_block"].as_str().unwrap().parse().unwrap();
        assert_eq!(net.prefix_len(), 64);
        assert!(vpc_net.contains(&net), "{net} in {vpc_net}");
        assert_eq!(subnet["assign_ipv6_address_on_creation"], true);
    }
    assert_eq!(attributes(&state, "aws_route.v6")["destination_ipv6_cidr_block"], "::/0");
}

#[tokio::test(flavor = "multi_thread")]
async fn default_vpc_hosts() {
    cycle_checked("default-vpc-hosts", |_| {}, |w, state| {
        let hosts = written(w, "out/hosts");
        for (i, name) in ["alpha", "beta"].iter().enumerate() {
            let host = attributes(state, &format!("aws_instance.host[{i}]"));
            assert!(hosts.contains(&format!("{} {name}\n", host["private_ip"].as_str().unwrap())), "{hosts}");
            let group = attributes(state, "aws_security_group.kamal");
            assert_eq!(host["security_groups"], serde_json::json!([group["name"]]));
            assert!(host["user_data_base64"].as_str().is_some_and(|u| !u.is_empty()));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_dns_two_vpcs() {
    let aws_state = cycle("private-dns-two-vpcs", |_| {}).await;
    let assoc = attributes(&aws_state, "aws_route53_zone_association.tools");
    assert_eq!(assoc["vpc_id"], attributes(&aws_state, "aws_vpc.tools")["id"]);
    let primary = attributes(&aws_state, "aws_route53_record.primary");
    assert_eq!(primary["records"], serde_json::json!(["app-1.corp.internal"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn nat_per_zone() {
    let state = cycle("nat-per-zone", |_| {}).await;
    for i in 0..2 {
        let nat = attributes(&state, &format!("aws_nat_gateway.zone[{i}]"));
        let subnet = attributes(&state, &format!("aws_subnet.public[{i}]"));
        assert_eq!(nat["subnet_id"], subnet["id"]);
        let route = attributes(&state, &format!("aws_route.private_out[{i}]"));
        assert_eq!(route["nat_gateway_id"], nat["id"], "each zone's table goes out through its own gateway");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kamal_inventories() {
    cycle_checked("kamal-inventories", |_| {}, |w, state| {
        let kamal = written(w, "config/deploy.staging.yml");
        let ansible = written(w, "ansible/staging.yml");
        let hosts = written(w, "hosts/staging.hosts");
        for (addr, name) in [
            ("aws_instance.web[0]", "web-0"),
            ("aws_instance.web[1]", "web-1"),
            ("aws_instance.worker[\"mailer\"]", "mailer"),
        ] {
            let ip = attributes(state, addr)["private_ip"].as_str().unwrap().to_string();
            assert!(hosts.contains(&format!("{ip}  {name}.staging.internal\n")), "{addr} in {hosts}");
        }
        let web0 = attributes(state, "aws_instance.web[0]")["public_ip"].as_str().unwrap().to_string();
        assert!(kamal.contains(&web0), "{kamal}");
        assert!(ansible.contains("workers"), "{ansible}");
        let key = written(w, ".kamal/deploy_rsa");
        assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "a PKCS#1 PEM key");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nat_instance() {
    let state = cycle("nat-instance", |_| {}).await;
    let nat = attributes(&state, "aws_instance.nat");
    assert_eq!(nat["source_dest_check"], false);
    assert_eq!(nat["secondary_private_ips"], serde_json::json!(["10.130.0.20"]));
    let route = attributes(&state, "aws_route.private_out");
    assert_eq!(route["network_interface_id"], nat["primary_network_interface_id"]);
    assert_eq!(attributes(&state, "aws_eip_association.nat")["network_interface_id"], nat["primary_network_interface_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn null_time() {
    cycle_checked("null-time", |_| {}, |w, state| {
        let created = attributes(state, "time_static.created");
        let at = created["rfc3339"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        for i in 0..2 {
            assert_eq!(attributes(state, &format!("aws_instance.web[{i}]"))["tags"]["CreatedAt"], at);
        }
        let setup = attributes(state, "null_resource.kamal_setup");
        let ids = format!(
            "{},{}",
            attributes(state, "aws_instance.web[0]")["id"].as_str().unwrap(),
            attributes(state, "aws_instance.web[1]")["id"].as_str().unwrap()
        );
        assert_eq!(setup["triggers"]["hosts"], ids.as_str());
        let deploy = written(w, "config/deploy.yml");
        assert!(deploy.contains(at), "{deploy}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hardened_vpc() {
    let state = cycle("hardened-vpc", |_| {}).await;
    let group = attributes(&state, "aws_default_security_group.locked");
    assert_eq!(group["name"], "default");
    assert_eq!(group["vpc_id"], attributes(&state, "aws_vpc.main")["id"]);
    assert_eq!(group["egress"], serde_json::json!([]), "AWS's allow-all egress is revoked");
    assert_eq!(group["tags_all"]["Project"], "hardened");
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_private_name() {
    let state = cycle("weighted-private-name", |_| {}).await;
    for (i, weight) in [10, 10, 1].iter().enumerate() {
        let r = attributes(&state, &format!("aws_route53_record.api[{i}]"));
        assert_eq!(r["set_identifier"], format!("api-{i}"));
        assert_eq!(r["weighted_routing_policy"], serde_json::json!([{ "weight": weight }]));
        let host = attributes(&state, &format!("aws_instance.api[{i}]"));
        assert_eq!(r["records"], serde_json::json!([host["private_ip"]]));
    }
    let w = attributes(&state, "aws_route53_record.workers[1]");
    assert_eq!(w["multivalue_answer_routing_policy"], true);
}
