//! The AWS example through the real CLI, against moto behind the strict AWS
//! layer (`support::aws`): apply, a no-op re-plan, a host terminated behind
//! berth's back recreated, and a clean destroy that leaves nothing tagged by
//! berth.

use crate::support;

use support::aws::Aws;
use support::cli::Work;

fn copy_example(w: &Work, name: &str) {
    let src = support::venv::repo_root().join("examples").join(name);
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hcl") {
            w.write(p.file_name().unwrap().to_str().unwrap(), &std::fs::read_to_string(&p).unwrap());
        }
    }
}

fn berth(w: &Work, aws: &Aws, args: &[&str]) -> support::cli::Run {
    aws.berth(w, None, args)
}

/// A client on moto itself: what really exists.
async fn ec2(aws: &Aws) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await)
}

async fn live_tagged(client: &aws_sdk_ec2::Client, lineage: &str) -> Vec<String> {
    let out = client
        .describe_instances()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:berth:lineage").values(lineage).build())
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| n.as_str() != "terminated"))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn example_network_applies_replans_heals_and_destroys() {
    let moto = Aws::start();
    let w = Work::new();
    copy_example(&w, "aws-network");
    let r = berth(&w, &moto, &["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("Apply complete!"), "{}", r.stdout);
    let lineage = w.state()["lineage"].as_str().unwrap().to_string();
    let client = ec2(&moto).await;
    assert_eq!(live_tagged(&client, &lineage).await.len(), 3);

    let r = berth(&w, &moto, &["plan", "--detailed-exitcode"]);
    r.assert_code(0);

    // Terminate one host behind berth's back: the next plan recreates it.
    let victim = w.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == "aws_instance.web[1]")
        .map(|r| r["attributes"]["id"].as_str().unwrap().to_string())
        .unwrap();
    // Through the layer, as someone else would: AWS shows it shutting down.
    let layer = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
    layer.terminate_instances().instance_ids(&victim).send().await.unwrap();
    let r = berth(&w, &moto, &["plan", "--detailed-exitcode"]);
    r.assert_code(2);
    assert!(r.stdout.contains("aws_instance.web[1] will be created"), "{}", r.stdout);
    assert!(r.stdout.contains("deleted outside berth"), "{}", r.stdout);
    berth(&w, &moto, &["apply", "--auto-approve"]).assert_ok();
    let live = live_tagged(&client, &lineage).await;
    assert_eq!(live.len(), 3, "{live:?}");
    assert!(!live.contains(&victim));

    let r = berth(&w, &moto, &["destroy", "--auto-approve"]);
    r.assert_ok();
    assert!(live_tagged(&client, &lineage).await.is_empty());
    assert!(w.state_addresses().is_empty(), "{:?}", w.state_addresses());
}
