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

mod support;

use support::aws::Aws;
use support::cli::{Run, Work};

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

/// What berth's ownership tags still mark in moto after a destroy.
async fn left_behind(aws: &Aws, lineage: &str) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let mine = aws_sdk_ec2::types::Filter::builder().name("tag:berth:lineage").values(lineage).build();
    let mut out = Vec::new();
    let instances = ec2.describe_instances().filters(mine.clone()).send().await.unwrap();
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        if i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated") {
            out.push(i.instance_id().unwrap_or_default().to_string());
        }
    }
    let tags =
        ec2.describe_tags().filters(aws_sdk_ec2::types::Filter::builder().name("key").values("berth:lineage").build());
    for t in tags.send().await.unwrap().tags() {
        let kind = t.resource_type().map(|r| r.as_str()).unwrap_or_default();
        // moto keeps a deleted key pair's tags: key pairs are listed below.
        if t.value() == Some(lineage) && !matches!(kind, "instance" | "key-pair") {
            out.push(t.resource_id().unwrap_or_default().to_string());
        }
    }
    let keys = ec2.describe_key_pairs().filters(mine).send().await.unwrap();
    out.extend(keys.key_pairs().iter().filter_map(|k| k.key_name()).map(str::to_string));
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
