//! The seed scenario end to end, on moto behind the strict AWS layer
//! (`support::aws`): two services on their own hosts, private DNS names that
//! follow the hosts, Kamal inventories that follow too, and health-gated
//! replacement.

use crate::support;

use support::aws::Aws;
use support::cli::{Run, Work};

fn setup(w: &Work) {
    let root = support::venv::repo_root();
    let copy = |from: &std::path::Path, to: &str| {
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "hcl") {
                w.write(&format!("{to}/{}", p.file_name().unwrap().to_str().unwrap()), &std::fs::read_to_string(&p).unwrap());
            }
        }
    };
    copy(&root.join("examples/kamal-microservices"), "examples/kamal-microservices");
    copy(&root.join("modules/kamal-host"), "modules/kamal-host");
    copy(&root.join("modules/private-network"), "modules/private-network");
}

fn berth(w: &Work, moto: &Aws, args: &[&str]) -> Run {
    // Health gates against local endpoints give up quickly in tests.
    let args: Vec<&str> = if args.iter().any(|a| a.starts_with("health_check_url")) {
        args.iter().copied().chain(["--var", "health_check_timeout=4s"]).collect()
    } else {
        args.to_vec()
    };
    moto.berth(w, Some("examples/kamal-microservices"), &args)
}

/// A client on moto itself: what really exists. (The hand edit below goes
/// through the layer, as anyone else's would.)
async fn route53(moto: &Aws) -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&moto.moto_sdk_config().await)
}

/// What `micro-search.internal` resolves to in the private zone.
async fn record(client: &aws_sdk_route53::Client, zone: &str, name: &str) -> Vec<String> {
    let out = client.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == "A")
        .flat_map(|r| r.resource_records().iter().map(|v| v.value().to_string()))
        .collect()
}

fn attr(w: &Work, addr: &str, key: &str) -> String {
    let s = w.read("examples/kamal-microservices/state/default.json");
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == addr && r["deposed"].is_null())
        .map(|r| r["attributes"][key].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_and_inventories_follow_a_replaced_host() {
    let moto = Aws::start();
    let w = Work::new();
    setup(&w);
    let up = format!("health_check_url=http://127.0.0.1:{}/up", support::http::status_server(200));
    let r = berth(&w, &moto, &["apply", "--auto-approve", "--var", &up]);
    r.assert_ok();
    let zone = attr(&w, "module.network.aws_route53_zone.private", "zone_id");
    let client = route53(&moto).await;
    let search_ip = attr(&w, "module.search.aws_instance.this", "private_ip");
    let core_ip = attr(&w, "module.core.aws_instance.this", "private_ip");
    assert_eq!(record(&client, &zone, "micro-search.internal").await, std::slice::from_ref(&search_ip));
    assert_eq!(record(&client, &zone, "micro-core.internal").await, std::slice::from_ref(&core_ip));
    let kamal = w.read("examples/kamal-microservices/search/config/deploy.production.yml");
    assert!(kamal.contains(&format!("- {search_ip}")), "{kamal}");

    // Replace the search host: the record moves to the new host in the same run.
    let r = berth(&w, &moto, &["plan", "--replace", "module.search.aws_instance.this", "--var", &up]);
    assert!(r.stdout.contains("must be replaced (create before destroy)"), "{}", r.stdout);
    assert!(r.stdout.contains("module.search.aws_route53_record.this will be updated in-place"), "{}", r.stdout);
    let r = berth(&w, &moto, &["apply", "--auto-approve", "--replace", "module.search.aws_instance.this", "--var", &up]);
    r.assert_ok();
    let new_ip = attr(&w, "module.search.aws_instance.this", "private_ip");
    assert_ne!(new_ip, search_ip);
    assert_eq!(record(&client, &zone, "micro-search.internal").await, std::slice::from_ref(&new_ip));
    assert_eq!(record(&client, &zone, "micro-core.internal").await, std::slice::from_ref(&core_ip), "core untouched");
    let e = &r.stderr;
    let healthy = e.find("module.search.aws_instance.this: healthy").expect("health gate");
    let switched = e.find("module.search.aws_route53_record.this: Modifications complete").expect("record switched");
    let inventory = e.find("inventory `search`: wrote").expect("inventory rewritten");
    let destroyed = e.find("module.search.aws_instance.this (old object): Destruction complete").expect("old destroyed");
    assert!(healthy < switched && switched < inventory && inventory < destroyed, "{e}");
    let kamal = w.read("examples/kamal-microservices/search/config/deploy.production.yml");
    assert!(kamal.contains(&format!("- {new_ip}")) && !kamal.contains(&format!("- {search_ip}")), "{kamal}");
    berth(&w, &moto, &["plan", "--detailed-exitcode", "--var", &up]).assert_code(0);

    // A record edited through the Route53 API is put back by the next apply.
    use aws_sdk_route53::types::*;
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(
            ResourceRecordSet::builder()
                .name("micro-search.internal.")
                .r#type(RrType::A)
                .ttl(30)
                .resource_records(ResourceRecord::builder().value("10.9.9.9").build().unwrap())
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    aws_sdk_route53::Client::new(&moto.sdk_config().await)
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
    let r = berth(&w, &moto, &["plan", "--detailed-exitcode", "--var", &up]);
    r.assert_code(2);
    assert!(r.stdout.contains("10.9.9.9"), "{}", r.stdout);
    berth(&w, &moto, &["apply", "--auto-approve", "--var", &up]).assert_ok();
    assert_eq!(record(&client, &zone, "micro-search.internal").await, std::slice::from_ref(&new_ip));

    // A health gate that never passes: the old host and the record stay.
    let down = format!("health_check_url=http://127.0.0.1:{}/up", support::http::status_server(500));
    let r = berth(&w, &moto, &["apply", "--auto-approve", "--replace", "module.search.aws_instance.this", "--var", &down]);
    r.assert_code(1);
    assert!(r.stderr.contains("health check failed"), "{}", r.stderr);
    assert_eq!(record(&client, &zone, "micro-search.internal").await, std::slice::from_ref(&new_ip), "the record still points at the healthy host");
    let kamal = w.read("examples/kamal-microservices/search/config/deploy.production.yml");
    assert!(kamal.contains(&format!("- {new_ip}")), "inventory unchanged: {kamal}");

    berth(&w, &moto, &["destroy", "--auto-approve", "--var", &up]).assert_ok();
}

/// The watch file shipped beside the example (`watch.hcl.example`, not read
/// until renamed) is valid configuration once renamed: the `watch` block,
/// both notifiers and the hook.
#[test]
fn the_example_watch_file_validates_once_renamed() {
    let w = Work::new();
    setup(&w);
    let root = support::venv::repo_root();
    let text = std::fs::read_to_string(root.join("examples/kamal-microservices/watch.hcl.example")).unwrap();
    w.write("examples/kamal-microservices/watch.hcl", &text);
    let r = w
        .cmd(&["validate"])
        .current_dir(w.path().join("examples/kamal-microservices"))
        .output()
        .expect("berth runs");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // And a mistake in it is caught: the watch block is really read.
    w.write("examples/kamal-microservices/watch.hcl", &text.replace("max_unhealthy    = 1", "max_unhealthy    = \"many\""));
    let r = w
        .cmd(&["validate"])
        .current_dir(w.path().join("examples/kamal-microservices"))
        .output()
        .expect("berth runs");
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("watch.hcl:"), "{}", String::from_utf8_lossy(&r.stderr));
}
