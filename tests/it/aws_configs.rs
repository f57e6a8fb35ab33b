//! Whole configurations of the kind berth's users write (a Kamal host, a
//! VPC with public and private subnets, utility providers), each in
//! `tests/fixtures/configs/NAME/`, through the real `berth` binary against
//! moto behind the strict AWS layer: `validate`, `plan` (changes),
//! `apply`, `plan` again (no changes), `destroy`, and then nothing of the
//! run is left in AWS.
//!
//! The fixtures are berth's own, written to use the features public
//! configurations of this kind use; `setup` makes what a fixture names but
//! berth does not manage (an IAM instance profile).


use crate::support;
use crate::support::aws::Aws;
use crate::support::cli::{Run, Work};

/// Copies a fixture into a scratch directory.
fn fixture(name: &str) -> Work {
    let w = Work::new();
    let src = support::venv::repo_root().join("tests/fixtures/configs").join(name);
    for e in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("fixture {name}: {e}")) {
        let p = e.unwrap().path();
        if p.is_file() {
            w.write(p.file_name().unwrap().to_str().unwrap(), &std::fs::read_to_string(&p).unwrap());
        }
    }
    w
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
