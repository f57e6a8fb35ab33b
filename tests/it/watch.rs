//! `berth watch` against moto behind the strict AWS layer: drift happens
//! out of band (a host terminated, a record edited, a status check that
//! fails), and one cycle (`watch --once --json`, its events as JSON lines)
//! detects, heals within the guards, or says why not. DescribeInstanceStatus
//! failures and scheduled events are what the layer's test control
//! ([`Strict::simulate_status`]) makes AWS report; moto never reports them.
//!
//! The guards' arithmetic (grace, budget windows, reminders, quarantine
//! within an hour) is tested with a hand-moved clock in `src/watch/`; these
//! tests show each guard on a real fleet.

use crate::support;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use support::aws::Aws;
use support::cli::{Run, Work};
use support::strict::SimulatedStatus;

/// `hosts` web hosts with a private record each, a Kamal inventory of them.
fn config(hosts: usize, watch: &str) -> String {
    format!(
        r#"
variable "aws_endpoint" {{
  type = string
}}

variable "up_url" {{
  type    = string
  default = ""
}}

provider "aws" {{
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint
  access_key   = "testing"
  secret_key   = "testing"
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
  cidr_block = "10.70.0.0/16"
}}

resource "aws_subnet" "hosts" {{
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.70.0.0/20"
}}

resource "aws_route53_zone" "internal" {{
  name = "fleet.internal"
  vpc {{
    vpc_id = aws_vpc.main.id
  }}
}}

resource "aws_instance" "web" {{
  count         = {hosts}
  ami           = data.aws_ami.base.id
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.hosts.id
  tags          = {{ Name = "web-${{count.index}}" }}

  lifecycle {{
    create_before_destroy = true
  }}

  health_check {{
    enabled  = var.up_url != ""
    url      = var.up_url != "" ? var.up_url : "http://127.0.0.1:9/up"
    timeout  = "3s"
    interval = "1s"
  }}
}}

resource "aws_route53_record" "web" {{
  count   = {hosts}
  zone_id = aws_route53_zone.internal.zone_id
  name    = "web-${{count.index}}.fleet.internal"
  type    = "A"
  ttl     = 30
  records = [aws_instance.web[count.index].private_ip]
}}

inventory "web" {{
  format = "kamal"
  path   = "config/deploy.production.yml"
  role "web" {{
    hosts = aws_instance.web[*]
  }}
}}

watch {{
{watch}
}}
"#
    )
}

fn setup(aws: &Aws, hosts: usize, watch: &str) -> Work {
    let w = Work::new();
    w.write("main.hcl", &config(hosts, watch));
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    w
}

/// One cycle, and its events.
fn watch_once(aws: &Aws, w: &Work, extra: &[&str]) -> (Run, Vec<Json>) {
    let mut args = vec!["watch", "--once", "--json"];
    args.extend(extra);
    let r = aws.berth(w, None, &args);
    let events = r.stdout.lines().filter_map(|l| serde_json::from_str::<Json>(l).ok()).collect();
    (r, events)
}

fn of<'a>(events: &'a [Json], kind: &str) -> Vec<&'a Json> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn kinds(events: &[Json]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap_or_default().to_string()).collect()
}

/// An attribute of a resource instance in the state.
fn attr(w: &Work, addr: &str, key: &str) -> String {
    w.state()["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["addr"] == addr && r["deposed"].is_null())
        .map(|r| r["attributes"][key].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

async fn ec2(aws: &Aws) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await)
}

async fn terminate(aws: &Aws, id: &str) {
    ec2(aws).await.terminate_instances().instance_ids(id).send().await.expect("TerminateInstances at moto");
}

/// Instances at moto that are not terminated (or on their way).
async fn live(aws: &Aws) -> Vec<String> {
    let out = ec2(aws).await.describe_instances().send().await.expect("DescribeInstances at moto");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|n| !matches!(n.as_str(), "terminated" | "shutting-down")))
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// Every record set of the zone at moto: (name, type) → values.
async fn records(aws: &Aws, zone: &str) -> BTreeMap<(String, String), Vec<String>> {
    let r53 = aws_sdk_route53::Client::new(&aws.moto_sdk_config().await);
    let out = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.expect("list records");
    out.resource_record_sets()
        .iter()
        .map(|s| {
            (
                (s.name().trim_end_matches('.').to_string(), s.r#type().as_str().to_string()),
                s.resource_records().iter().map(|r| r.value().to_string()).collect(),
            )
        })
        .collect()
}

fn a_record(all: &BTreeMap<(String, String), Vec<String>>, name: &str) -> Vec<String> {
    all.get(&(name.to_string(), "A".to_string())).cloned().unwrap_or_default()
}

/// Upserts a record through the layer, as anyone with the console would.
async fn upsert(aws: &Aws, zone: &str, name: &str, type_: &str, value: &str) {
    use aws_sdk_route53::types::*;
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(type_))
        .ttl(30)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().unwrap();
    aws_sdk_route53::Client::new(&aws.sdk_config().await)
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("ChangeResourceRecordSets");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_host_is_replaced_and_its_record_and_kamal_file_follow() {
    let aws = Aws::start();
    let w = setup(&aws, 2, r#"mode = "heal""#);
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id");
    let old_id = attr(&w, "aws_instance.web[0]", "id");
    let old_ip = attr(&w, "aws_instance.web[0]", "private_ip");
    let other_id = attr(&w, "aws_instance.web[1]", "id");
    assert!(w.read("config/deploy.production.yml").contains(&old_ip));

    terminate(&aws, &old_id).await;
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(
        kinds(&events),
        ["drift_detected", "heal_started", "heal_succeeded", "drift_resolved"],
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    let found = &events[0];
    assert_eq!(found["class"], "instance_missing");
    assert_eq!(found["address"], "aws_instance.web[0]");
    assert_eq!(found["id"], old_id.as_str());
    assert_eq!(found["name"], "web-0.fleet.internal", "the private name that points at the host");
    assert_eq!(found["action"], "replace");
    assert_eq!((found["role"].as_str(), found["destination"].as_str()), (Some("web"), Some("production")), "{found}");
    assert_eq!(events[1]["heal_id"], events[2]["heal_id"]);

    let new_id = attr(&w, "aws_instance.web[0]", "id");
    let new_ip = attr(&w, "aws_instance.web[0]", "private_ip");
    assert!(!new_id.is_empty() && new_id != old_id);
    assert_eq!(attr(&w, "aws_instance.web[1]", "id"), other_id, "the healthy host is untouched");
    let all = records(&aws, &zone).await;
    assert_eq!(a_record(&all, "web-0.fleet.internal"), [new_ip.clone()], "the private record follows");
    let kamal = w.read("config/deploy.production.yml");
    assert!(kamal.contains(&new_ip) && !kamal.contains(&old_ip), "the Kamal file is rewritten: {kamal}");
    let mut running = live(&aws).await;
    running.sort();
    let mut want = vec![new_id.clone(), other_id.clone()];
    want.sort();
    assert_eq!(running, want, "one replacement, no duplicate");

    // Converged: the next cycle finds nothing and says nothing.
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(0);
    assert!(events.is_empty(), "{}", r.stdout);
    aws.berth(&w, None, &["plan", "--detailed-exitcode"]).assert_code(0);

    // The budget (1 per 60m) is spent: the second host's heal is skipped,
    // with the reason, once.
    terminate(&aws, &other_id).await;
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}", r.stdout);
    assert_eq!(events[1]["reason"], "budget");
    assert!(events[1]["message"].as_str().unwrap().contains("1 of 1 per 1h"), "{}", events[1]);
    let (_, events) = watch_once(&aws, &w, &[]);
    assert!(events.is_empty(), "announced once, not every cycle: {events:?}");
    assert_eq!(attr(&w, "aws_instance.web[1]", "id"), other_id, "nothing was healed");
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_mode_reports_once_and_changes_nothing() {
    let aws = Aws::start();
    let w = setup(&aws, 2, "");
    let old_id = attr(&w, "aws_instance.web[0]", "id");
    let before = w.read("state/default.json");
    let kamal = w.read("config/deploy.production.yml");
    terminate(&aws, &old_id).await;

    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected"], "{}", r.stdout);
    assert_eq!(events[0]["class"], "instance_missing");
    assert_eq!(events[0]["severity"], "critical");
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert!(events.is_empty(), "notified once, then only on the reminder: {}", r.stdout);
    assert_eq!(w.read("state/default.json"), before, "the state is not written");
    assert_eq!(w.read("config/deploy.production.yml"), kamal);
    assert_eq!(live(&aws).await.len(), 1, "nothing launched");

    // A dry run in heal mode says what it would do, and does nothing.
    let (r, events) = watch_once(&aws, &w, &["--mode", "heal", "--dry-run"]);
    r.assert_code(2);
    assert!(events.iter().all(|e| e["event"] != "heal_started"), "{}", r.stdout);
    assert!(r.stderr.contains("dry run: would replace `aws_instance.web[0]`"), "{}", r.stderr);
    assert_eq!(live(&aws).await.len(), 1, "nothing launched");

    // The host comes back (by an apply): resolved.
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(0);
    assert_eq!(kinds(&events), ["drift_resolved"], "{}", r.stdout);
}

/// The loop as a library: a hand-moved clock shows the reminder rhythm of
/// an open drift (announced when found, again after 6 h, not in between).
#[tokio::test(flavor = "multi_thread")]
async fn open_drift_is_announced_again_once_per_reminder_period() {
    use berth::watch::clock::ManualClock;
    use berth::watch::recorder::Recorder;
    use berth::watch::{EventKind, Sink, WatchSettings, Watcher};
    use std::sync::Arc;
    use std::time::Duration;
    let _calls = support::stats::shared().await;
    let aws = Aws::start();
    let w = setup(&aws, 1, "");
    terminate(&aws, &attr(&w, "aws_instance.web[0]", "id")).await;

    let config = berth::config::load(w.path()).unwrap();
    let vars = berth::config::vars::VarSources::from_env(vec![format!("aws_endpoint={}", aws.endpoint)], Vec::new());
    let backend = berth::state::local::LocalBackend::new(w.path().join("state"), "default");
    let settings = WatchSettings::from_block(config.root().watch.as_ref()).unwrap();
    let clock = ManualClock::at_str("2026-12-02T10:00:00Z");
    let recorder = Arc::new(Recorder::default());
    let sinks: Vec<Arc<dyn Sink>> = vec![recorder.clone()];
    let watcher = Watcher {
        config: &config,
        vars: &vars,
        backend: &backend,
        settings: &settings,
        plan_opts: berth::engine::PlanOptions { workspace: "default".into(), ..Default::default() },
        clock: &clock,
        sinks: &sinks,
        progress: &berth::engine::Quiet,
        cancel: tokio_util::sync::CancellationToken::new(),
        dry_run: false,
        plan_dir: w.path().join("plans"),
        parallelism: 4,
    };
    let mut announced = Vec::new();
    for step in [0u64, 1, 4, 1, 1, 6] {
        clock.advance(Duration::from_secs(step * 3600));
        let report = watcher.cycle().await;
        assert!(report.ok, "{:?}", report.error);
        announced.push(recorder.of(EventKind::DriftDetected).len());
        let summary = recorder.cycles();
        assert_eq!(summary.len(), 1, "one summary per cycle");
        assert_eq!(summary[0].drifted, [(berth::watch::DriftClass::InstanceMissing, 1)]);
        recorder.clear();
    }
    // Hours 0, 1, 5, 6, 7, 13: found at 0, reminded at 6 and 12+.
    assert_eq!(announced, [1, 0, 0, 1, 0, 1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_record_is_put_back_and_a_foreign_one_is_left_alone() {
    let aws = Aws::start();
    let w = setup(&aws, 1, r#"mode = "heal""#);
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id");
    let ip = attr(&w, "aws_instance.web[0]", "private_ip");
    upsert(&aws, &zone, "web-0.fleet.internal", "A", "10.9.9.9").await;
    // Someone else's records, one with the same name.
    upsert(&aws, &zone, "web-0.fleet.internal", "TXT", "\"owned by someone else\"").await;
    upsert(&aws, &zone, "mail.fleet.internal", "A", "10.8.8.8").await;

    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "heal_started", "heal_succeeded", "drift_resolved"], "{}\n{}", r.stdout, r.stderr);
    assert_eq!(events[0]["class"], "dns_record");
    assert_eq!(events[0]["action"], "upsert");
    assert!(events[0]["after"].to_string().contains("10.9.9.9"), "{}", events[0]);
    let all = records(&aws, &zone).await;
    assert_eq!(a_record(&all, "web-0.fleet.internal"), [ip], "put back");
    assert_eq!(all.get(&("web-0.fleet.internal".into(), "TXT".into())), Some(&vec!["\"owned by someone else\"".to_string()]));
    assert_eq!(a_record(&all, "mail.fleet.internal"), ["10.8.8.8"]);
    let (r, _) = watch_once(&aws, &w, &[]);
    r.assert_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_dead_hosts_at_once_heal_nothing_and_alert_once() {
    let aws = Aws::start();
    let w = setup(&aws, 2, "mode = \"heal\"\nmax_replacements = \"5/60m\"");
    let ids = [attr(&w, "aws_instance.web[0]", "id"), attr(&w, "aws_instance.web[1]", "id")];
    for id in &ids {
        terminate(&aws, id).await;
    }
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "drift_detected", "heal_skipped"], "{}", r.stdout);
    let alert = &events[2];
    assert_eq!(alert["reason"], "short_circuit");
    assert_eq!(alert["severity"], "critical");
    assert!(alert["message"].as_str().unwrap().contains("2 hosts look dead"), "{alert}");
    let (_, events) = watch_once(&aws, &w, &[]);
    assert!(events.is_empty(), "one alert, not one per cycle: {events:?}");
    assert!(live(&aws).await.is_empty(), "nothing launched");
    assert_eq!(attr(&w, "aws_instance.web[0]", "id"), ids[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn three_failed_heals_quarantine_until_released() {
    let aws = Aws::start();
    let w = setup(&aws, 1, "mode = \"heal\"\nmax_replacements = \"10/60m\"");
    terminate(&aws, &attr(&w, "aws_instance.web[0]", "id")).await;
    // Every new host fails its health gate.
    let down = format!("up_url=http://127.0.0.1:{}/up", support::http::status_server(500));
    let mut failed = 0;
    let mut quarantined = Vec::new();
    for _ in 0..3 {
        let (r, events) = watch_once(&aws, &w, &["--var", &down]);
        r.assert_code(2);
        failed += of(&events, "heal_failed").len();
        quarantined.extend(of(&events, "quarantined").into_iter().cloned());
    }
    assert_eq!(failed, 3);
    assert_eq!(quarantined.len(), 1, "quarantined on the third failure");
    assert_eq!(quarantined[0]["command"], "berth watch release aws_instance.web[0]");
    let (r, events) = watch_once(&aws, &w, &["--var", &down]);
    assert_eq!(kinds(&events), ["heal_skipped"], "no more attempts: {}", r.stdout);
    assert_eq!(events[0]["reason"], "quarantined");
    let (_, events) = watch_once(&aws, &w, &["--var", &down]);
    assert!(events.is_empty(), "said once: {events:?}");

    w.run(&["watch", "release", "aws_instance.web[0]"]).assert_ok();
    let up = format!("up_url=http://127.0.0.1:{}/up", support::http::status_server(200));
    let (r, events) = watch_once(&aws, &w, &["--var", &up]);
    assert_eq!(of(&events, "heal_succeeded").len(), 1, "{}\n{}", r.stdout, r.stderr);
    let (r, _) = watch_once(&aws, &w, &["--var", &up]);
    r.assert_code(0);
    assert_eq!(live(&aws).await.len(), 1, "failed hosts are not left running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_lock_skips_the_heal_and_of_two_watchers_one_heals() {
    let aws = Aws::start();
    let w = setup(&aws, 2, r#"mode = "heal""#);
    let old_id = attr(&w, "aws_instance.web[0]", "id");
    terminate(&aws, &old_id).await;

    // A running `berth apply` holds the lock.
    let backend = berth::state::local::LocalBackend::new(w.path().join("state"), "default");
    let held = berth::state::Backend::lock(&backend, "apply", std::time::Duration::ZERO).await.unwrap();
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}", r.stdout);
    assert_eq!(events[1]["reason"], "lock");
    assert!(events[1]["message"].as_str().unwrap().contains("operation `apply`"), "{}", events[1]);
    assert_eq!(attr(&w, "aws_instance.web[0]", "id"), old_id);
    assert!(w.path().join("state/default.lock").exists(), "never forced open");
    berth::state::Backend::unlock(&backend, &held).await.unwrap();

    // Two watchers at once: one heals, the other skips (or finds it healed).
    let spawn = || {
        let var = format!("aws_endpoint={}", aws.endpoint);
        w.cmd(&["watch", "--once", "--json", "--var", &var])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let started: usize = outs.iter().map(|o| String::from_utf8_lossy(&o.stdout).matches("\"heal_started\"").count()).sum();
    assert_eq!(started, 1, "{:?}", outs.iter().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).collect::<Vec<_>>());
    assert_eq!(live(&aws).await.len(), 2, "one replacement, no duplicate");
    aws.berth(&w, None, &["plan", "--detailed-exitcode"]).assert_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_by_command_or_by_tag_is_not_healed_until_resumed() {
    let aws = Aws::start();
    let w = setup(&aws, 2, "mode = \"heal\"\nmax_replacements = \"5/60m\"\nunhealthy_after = 1\ngrace = \"0s\"");
    let first = attr(&w, "aws_instance.web[0]", "id");
    w.run(&["watch", "pause", "aws_instance.web[0]", "--for", "2h", "--reason", "disk swap"]).assert_ok();
    terminate(&aws, &first).await;
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}", r.stdout);
    assert_eq!(events[1]["reason"], "paused");
    assert!(events[1]["message"].as_str().unwrap().contains("disk swap"), "{}", events[1]);
    assert_eq!(events[1]["command"], "berth watch resume aws_instance.web[0]");
    w.run(&["watch", "resume", "aws_instance.web[0]"]).assert_ok();
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(of(&events, "heal_succeeded").len(), 1, "{}\n{}", r.stdout, r.stderr);

    // The tag a human sets in the console, on a host whose status checks fail.
    let second = attr(&w, "aws_instance.web[1]", "id");
    use aws_sdk_ec2::types::Tag;
    let tag = || Tag::builder().key("berth:watch").value("paused").build();
    ec2(&aws).await.create_tags().resources(&second).tags(tag()).send().await.unwrap();
    aws.proxy.strict().simulate_status(&second, SimulatedStatus { impaired: true, event: None });
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}\n{}", r.stdout, r.stderr);
    assert_eq!(events[0]["class"], "instance_impaired");
    assert_eq!(events[1]["reason"], "paused");
    assert!(events[1]["message"].as_str().unwrap().contains("berth:watch=paused"), "{}", events[1]);
    assert_eq!(attr(&w, "aws_instance.web[1]", "id"), second);
    ec2(&aws).await.delete_tags().resources(&second).tags(tag()).send().await.unwrap();
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(of(&events, "heal_succeeded").len(), 1, "{}\n{}", r.stdout, r.stderr);
    let replaced = attr(&w, "aws_instance.web[1]", "id");
    assert_ne!(replaced, second, "the impaired host was replaced");
    assert!(!live(&aws).await.contains(&second), "and the old one destroyed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_retirement_is_replaced_and_notify_only_hosts_never_are() {
    let aws = Aws::start();
    let w = Work::new();
    let text = config(1, "mode = \"heal\"\nmax_replacements = \"5/60m\"").replace(
        "  lifecycle {\n    create_before_destroy = true\n  }",
        "  lifecycle {\n    create_before_destroy = true\n    watch = var.notify_only ? \"notify\" : \"heal\"\n  }",
    );
    // `lifecycle` takes constants: write the two variants instead.
    let heal = text.replace("var.notify_only ? \"notify\" : \"heal\"", "\"heal\"");
    let notify = text.replace("var.notify_only ? \"notify\" : \"heal\"", "\"notify\"");
    w.write("main.hcl", &notify);
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let id = attr(&w, "aws_instance.web[0]", "id");
    let retiring = SimulatedStatus { impaired: false, event: Some(("instance-retirement".into(), "The instance is running on degraded hardware".into())) };
    aws.proxy.strict().simulate_status(&id, retiring);
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}\n{}", r.stdout, r.stderr);
    assert_eq!(events[0]["class"], "instance_retiring");
    assert!(events[0]["message"].as_str().unwrap().contains("degraded hardware"), "{}", events[0]);
    assert_eq!(events[1]["reason"], "notify_only");
    assert_eq!(attr(&w, "aws_instance.web[0]", "id"), id);

    w.write("main.hcl", &heal);
    let (r, events) = watch_once(&aws, &w, &[]);
    assert_eq!(of(&events, "heal_succeeded").len(), 1, "{}\n{}", r.stdout, r.stderr);
    assert_ne!(attr(&w, "aws_instance.web[0]", "id"), id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_killed_mid_heal_leaves_no_duplicate_host() {
    use std::io::BufRead;
    let aws = Aws::start();
    let w = setup(&aws, 2, "mode = \"heal\"\nmax_replacements = \"5/60m\"");
    terminate(&aws, &attr(&w, "aws_instance.web[0]", "id")).await;
    let var = format!("aws_endpoint={}", aws.endpoint);
    let mut child = w
        .cmd(&["watch", "--once", "--json", "--var", &var])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("\"heal_started\""));
    assert!(started, "the heal started");
    // Killed once the launch is on its way (journaled as pending).
    let journal = w.path().join("state/default.journal");
    for _ in 0..200 {
        if std::fs::read_to_string(&journal).is_ok_and(|j| j.contains("pending") || j.contains("Pending")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(journal.exists(), "killed in the middle of the heal's apply (its journal is not folded yet)");

    let (r, _) = watch_once(&aws, &w, &[]);
    assert!(r.code == 0 || r.code == 2, "{}\n{}", r.stdout, r.stderr);
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    aws.berth(&w, None, &["plan", "--detailed-exitcode"]).assert_code(0);
    assert_eq!(live(&aws).await.len(), 2, "converged, no duplicate host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_a_hundred_hosts_and_records_costs_a_handful_of_calls() {
    const N: usize = 100;
    let aws = Aws::start();
    let w = setup(&aws, N, "");
    let stats = w.path().join("api-stats.json");
    let count = |args: &[&str]| -> (Run, BTreeMap<String, u64>) {
        let _ = std::fs::remove_file(&stats);
        let var = format!("aws_endpoint={}", aws.endpoint);
        let mut all = args.to_vec();
        all.extend(["--var", &var]);
        let r: Run = w
            .cmd(&all)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env("BERTH_API_STATS", &stats)
            .output()
            .unwrap()
            .into();
        let counts = std::fs::read_to_string(&stats).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        (r, counts)
    };
    let (r, plan) = count(&["plan", "--detailed-exitcode"]);
    r.assert_code(0);
    let (r, cycle) = count(&["watch", "--once"]);
    r.assert_code(0);
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    assert_eq!(get(&cycle, "ec2:DescribeInstances"), 1, "{cycle:?}");
    assert_eq!(get(&cycle, "ec2:DescribeInstanceStatus"), 1, "100 hosts, one status call: {cycle:?}");
    assert_eq!(get(&cycle, "ec2:DescribeTags"), 1, "one listing of the pause tag: {cycle:?}");
    let writes: u64 = cycle
        .iter()
        .filter(|(k, _)| {
            let op = k.split(':').nth(1).unwrap_or_default();
            !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(writes, 0, "an observing cycle writes nothing: {cycle:?}");
    let total: u64 = cycle.values().sum();
    let plan_total: u64 = plan.values().sum();
    // The two extra reads (status checks, the pause tag) plus one: the
    // Route53 zone's own reads (GetHostedZone, ListTagsForResources) vary
    // by one call between two runs of the same no-op plan since the
    // routing-policy and load-balancer merges — an open bug (stop 24 note),
    // a constant, not a per-host cost: the per-host calls are pinned above.
    assert!(total <= plan_total + 3, "a cycle costs the no-op plan's calls and two more: {cycle:?} vs {plan:?}");
    let route53: u64 = cycle.iter().filter(|(k, _)| k.starts_with("route 53:")).map(|(_, v)| v).sum();
    // A one-minute interval stays far under Route53's 5 requests a second.
    assert!(route53 <= 10, "{cycle:?}");
}

#[test]
fn a_bad_watch_block_is_an_error_at_its_place() {
    let w = Work::new();
    w.write("main.hcl", "variable \"x\" {\n  default = 1\n}\n\nwatch {\n  mode = \"fix\"\n}\n");
    let r = w.run(&["watch", "--once"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`mode` must be \"observe\" or \"heal\"") && r.stderr.contains("main.hcl:6:"), "{}", r.stderr);
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("Error: main.hcl:6:10: `mode` must be"), "{}", r.stderr);
    let r = w.run(&["watch", "pause", "--for", "1h", "--reason", "x"]);
    assert_ne!(r.code, 0, "an address or --all is required");
    let r = w.run(&["watch", "resume", "aws_instance.web[0]"]);
    r.assert_code(1);
    assert!(r.stderr.contains("is not paused"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_approval_saves_the_plan_and_sends_the_command_that_applies_it() {
    let aws = Aws::start();
    let w = setup(&aws, 1, "mode = \"heal\"\napprove = \"manual\"");
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id");
    let ip = attr(&w, "aws_instance.web[0]", "private_ip");
    upsert(&aws, &zone, "web-0.fleet.internal", "A", "10.9.9.9").await;

    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}", r.stdout);
    assert_eq!(events[1]["reason"], "approval");
    let command = events[1]["command"].as_str().unwrap().to_string();
    let file = command.strip_prefix("berth apply ").expect("an apply of a saved plan").to_string();
    assert!(w.path().join(&file).is_file(), "{command}");
    assert_eq!(a_record(&records(&aws, &zone).await, "web-0.fleet.internal"), ["10.9.9.9"], "nothing healed yet");
    let (_, events) = watch_once(&aws, &w, &[]);
    assert!(events.is_empty(), "asked once: {events:?}");

    // A human applies exactly that plan.
    aws.berth(&w, None, &["apply", &file]).assert_ok();
    assert_eq!(a_record(&records(&aws, &zone).await, "web-0.fleet.internal"), [ip]);
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(0);
    assert_eq!(kinds(&events), ["drift_resolved"], "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loop_runs_cycle_after_cycle_until_stopped() {
    use std::io::BufRead;
    let aws = Aws::start();
    let w = setup(&aws, 1, "interval = \"1s\"\nlisten = \"127.0.0.1:0\"");
    let var = format!("aws_endpoint={}", aws.endpoint);
    let mut child = w
        .cmd(&["watch", "--json", "--var", &var])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // A few quiet cycles, then the host goes away under the running loop.
    let ledger = w.path().join("state/default.watch");
    for _ in 0..600 {
        if ledger.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ledger.exists(), "a cycle ran and remembered");
    terminate(&aws, &attr(&w, "aws_instance.web[0]", "id")).await;
    let line = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the loop noticed");
    let ev: Json = serde_json::from_str(&line).unwrap();
    assert_eq!((ev["event"].as_str(), ev["class"].as_str()), (Some("drift_detected"), Some("instance_missing")), "{line}");
    // The cycle's memory is written when it ends: it shows the drift open.
    let mut status = w.run(&["watch", "status"]);
    for _ in 0..600 {
        if status.stdout.contains("drift: aws_instance.web[0]") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        status = w.run(&["watch", "status"]);
    }
    status.assert_ok();
    assert!(status.stdout.contains("drift: aws_instance.web[0]: instance_missing since"), "{}", status.stdout);
    // Cycles go on, and say nothing more about it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("berth watch: mode observe, every 1s"), "{stderr}");
    assert!(stderr.matches("Refreshing").count() >= 3, "cycle after cycle: {stderr}");
    let more: Vec<String> = rx.try_iter().collect();
    assert!(more.iter().all(|l| !l.contains("drift_detected")), "announced once across cycles: {more:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_and_renamed_hosts_are_only_reported_and_records_all_gone_at_once_are_a_broken_read() {
    use aws_sdk_route53::types::*;
    let aws = Aws::start();
    let w = setup(&aws, 2, r#"mode = "heal""#);
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id");
    let first = attr(&w, "aws_instance.web[0]", "id");
    ec2(&aws).await.stop_instances().instance_ids(&first).send().await.expect("StopInstances at moto");
    // Someone renames the other host in the console.
    let second = attr(&w, "aws_instance.web[1]", "id");
    let renamed = aws_sdk_ec2::types::Tag::builder().key("Name").value("renamed").build();
    ec2(&aws).await.create_tags().resources(&second).tags(renamed).send().await.expect("CreateTags at moto");
    // Both records vanish at once: what an empty listing would look like.
    let mut changes = Vec::new();
    for i in 0..2 {
        let set = ResourceRecordSet::builder()
            .name(format!("web-{i}.fleet.internal."))
            .r#type(RrType::A)
            .ttl(30)
            .resource_records(ResourceRecord::builder().value(attr(&w, &format!("aws_instance.web[{i}]"), "private_ip")).build().unwrap())
            .build()
            .unwrap();
        changes.push(Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().unwrap());
    }
    aws_sdk_route53::Client::new(&aws.moto_sdk_config().await)
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build().unwrap())
        .send()
        .await
        .expect("delete the records at moto");

    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(
        kinds(&events),
        ["drift_detected", "drift_detected", "drift_detected", "drift_detected", "heal_skipped", "heal_skipped"],
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(events[0]["class"], "instance_stopped");
    assert_eq!(events[0]["action"], "none");
    assert_eq!((events[1]["class"].as_str(), events[1]["address"].as_str()), (Some("attr_drift"), Some("aws_instance.web[1]")));
    assert!(events[1]["after"].to_string().contains("renamed"), "{}", events[1]);
    assert_eq!((events[2]["class"].as_str(), events[3]["class"].as_str()), (Some("dns_record"), Some("dns_record")));
    assert!(events[4..].iter().all(|e| e["reason"] == "partial_read"), "{events:?}");
    assert_eq!(attr(&w, "aws_instance.web[0]", "id"), first);
    assert!(a_record(&records(&aws, &zone).await, "web-0.fleet.internal").is_empty(), "nothing put back on a doubtful read");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_healed_inside_a_deny_window() {
    let aws = Aws::start();
    // A window that opens every minute for an hour: always inside.
    let w = setup(&aws, 1, "mode = \"heal\"\ndeny_window {\n  cron = \"* * * * *\"\n  duration = \"1h\"\n  time_zone = \"Europe/Berlin\"\n}");
    let id = attr(&w, "aws_instance.web[0]", "id");
    terminate(&aws, &id).await;
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(kinds(&events), ["drift_detected", "heal_skipped"], "{}", r.stdout);
    assert_eq!(events[1]["reason"], "window");
    assert!(events[1]["message"].as_str().unwrap().contains("Europe/Berlin"), "{}", events[1]);
    assert_eq!(attr(&w, "aws_instance.web[0]", "id"), id);
    assert!(live(&aws).await.is_empty(), "nothing launched");
}

#[tokio::test(flavor = "multi_thread")]
async fn healing_one_object_leaves_the_drift_it_does_not_heal_alone() {
    let aws = Aws::start();
    let w = setup(&aws, 2, r#"mode = "heal""#);
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id");
    let first = attr(&w, "aws_instance.web[0]", "id");
    let ip = attr(&w, "aws_instance.web[1]", "private_ip");
    ec2(&aws).await.stop_instances().instance_ids(&first).send().await.expect("StopInstances at moto");
    upsert(&aws, &zone, "web-1.fleet.internal", "A", "10.9.9.9").await;
    // An edit of the configuration nobody applied yet is no heal's to apply.
    w.write("main.hcl", &config(2, r#"mode = "heal""#).replace("t3.micro", "t3.small"));
    let second = attr(&w, "aws_instance.web[1]", "id");

    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert_eq!(
        kinds(&events),
        ["drift_detected", "drift_detected", "heal_started", "heal_succeeded", "drift_resolved"],
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(events[0]["class"], "instance_stopped");
    assert_eq!(events[2]["address"], "aws_route53_record.web[1]");
    assert_eq!(a_record(&records(&aws, &zone).await, "web-1.fleet.internal"), [ip], "the record is put back");
    let state = ec2(&aws).await.describe_instances().instance_ids(&first).send().await.unwrap();
    let name = state.reservations()[0].instances()[0].state().and_then(|s| s.name()).map(|n| n.as_str().to_string());
    assert_eq!(name.as_deref(), Some("stopped"), "the stopped host is not started by the record's heal");
    let other = ec2(&aws).await.describe_instances().instance_ids(&second).send().await.unwrap();
    let type_ = other.reservations()[0].instances()[0].instance_type().map(|t| t.as_str().to_string());
    assert_eq!(type_.as_deref(), Some("t3.micro"), "the unapplied edit stays unapplied");
    // The heal recorded the host as stopped; its drift stays open all the same.
    let (r, events) = watch_once(&aws, &w, &[]);
    r.assert_code(2);
    assert!(events.is_empty(), "{}", r.stdout);
    assert!(w.run(&["watch", "status"]).stdout.contains("drift: aws_instance.web[0]: instance_stopped"));
}

/// A receiver of webhooks on loopback: every request's headers and body.
fn webhook_receiver() -> (u16, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = std::io::BufReader::new(stream);
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((head, body));
        }
    });
    (port, rx)
}

/// The running loop, wired as a user runs it: a host dies, the heal is
/// announced to a webhook (signed with the notifier's secret), the
/// `on_replace` hook runs with the new host in its environment, and the
/// loop's `/metrics` counts the heal.
#[tokio::test(flavor = "multi_thread")]
async fn the_loop_heals_and_tells_the_webhook_the_hook_and_the_metrics() {
    use hmac::{Hmac, KeyInit, Mac};
    let aws = Aws::start();
    let w = setup(&aws, 1, "mode = \"heal\"\ninterval = \"1s\"\nlisten = \"127.0.0.1:0\"");
    let (port, received) = webhook_receiver();
    w.write(
        "sinks.hcl",
        &format!(
            r#"
notify "webhook" {{
  url    = "http://127.0.0.1:{port}/berth"
  secret = "s3cret-key"
  events = ["heal_succeeded"]
}}

hook "on_replace" {{
  command = ["sh", "-c", "env | grep '^BERTH_' | sort > hook.env"]
}}
"#
        ),
    );
    let old_id = attr(&w, "aws_instance.web[0]", "id");
    let var = format!("aws_endpoint={}", aws.endpoint);
    let mut child = w
        .cmd(&["watch", "--var", &var])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The address the metrics are served on, from the loop's first lines.
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let metrics_at = loop {
        let line = lines.recv_timeout(std::time::Duration::from_secs(120)).expect("the loop starts");
        if let Some(rest) = line.split("/readyz on ").nth(1) {
            break rest.trim().to_string();
        }
        seen.push(line);
    };
    terminate(&aws, &old_id).await;
    let (head, body) = received.recv_timeout(std::time::Duration::from_secs(300)).expect("the heal is announced");
    let payload: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["event"], "heal_succeeded", "{payload}");
    assert_eq!(payload["address"], "aws_instance.web[0]");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-key").unwrap();
    mac.update(&body);
    let want = format!("x-berth-signature: sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert!(head.to_ascii_lowercase().contains(&want), "signed with the secret: {head}");

    let new_id = attr(&w, "aws_instance.web[0]", "id");
    assert!(!new_id.is_empty() && new_id != old_id);
    let env = w.read("hook.env");
    assert!(env.contains(&format!("BERTH_OLD_ID={old_id}")) && env.contains(&format!("BERTH_NEW_ID={new_id}")), "{env}");
    assert!(env.contains("BERTH_ADDRESS=aws_instance.web[0]"), "{env}");

    let metrics = reqwest::get(format!("{metrics_at}/metrics")).await.unwrap().text().await.unwrap();
    let heals: Vec<&str> = metrics.lines().filter(|l| l.starts_with("berth_watch_heals_total{")).collect();
    assert!(
        heals.iter().any(|l| l.contains("result=\"succeeded\"") && l.contains("instance_missing") && l.ends_with(" 1")),
        "{metrics}"
    );
    let ready = reqwest::get(format!("{metrics_at}/readyz")).await.unwrap().status();
    assert_eq!(ready.as_u16(), 200);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{seen:?}");
}
