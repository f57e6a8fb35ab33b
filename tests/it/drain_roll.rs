//! Draining old hosts and rolling replacements (issue #18), in-process with
//! the recording provider (`rec_thing`'s `ttl` is a cache TTL, as a DNS
//! record's is) and through the `berth` binary with `berth_data`:
//!
//! - the old object of a create-before-destroy replacement is kept for the
//!   longest TTL of the records that switched away from it plus its
//!   `lifecycle { drain }`, and the plan says so;
//! - a `berth apply` killed during the drain leaves the old object and when
//!   its drain ends in the journal, and the next apply destroys it after
//!   the rest of the drain;
//! - `lifecycle { rolling { max_unavailable = N } }` replaces a counted
//!   resource wave by wave: create, switch the records that list every host,
//!   rewrite the inventories with exactly the live hosts, drain, destroy,
//!   then the next wave; a failed wave stops the roll.
//!
//! No test bounds a wait from above: each checks that a drain happened
//! (its event, and an elapsed time at least as long as it), never how fast.

use crate::engine_api::{Events, Run};
use crate::support;

use berth::engine::PlanOptions;
use berth::engine::Progress;
use berth::plan::{Action, Wave};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::cli::Work;
use support::recording::Answer;
use tokio_util::sync::CancellationToken;

/// A host replaced before it is destroyed, with a one-second drain, and a
/// record with a one-second TTL that points at it.
fn drained(triggers: &str) -> String {
    format!(
        r#"
resource "rec_thing" "host" {{
  input    = "host"
  triggers = "{triggers}"
  lifecycle {{
    create_before_destroy = true
    drain                 = "1s"
  }}
}}
resource "rec_thing" "record" {{
  input = rec_thing.host.id
  ttl   = 1
}}
resource "rec_thing" "plain" {{
  input    = "plain"
  triggers = "{triggers}"
  lifecycle {{ create_before_destroy = true }}
}}
"#
    )
}

/// The calls that change something, as `op addr`.
fn changes(run: &Run) -> Vec<String> {
    run.rec.calls().into_iter().filter(|c| matches!(c.op, "create" | "update" | "delete")).map(|c| format!("{} {}", c.op, c.addr)).collect()
}

#[tokio::test]
async fn the_old_host_goes_after_the_records_ttl_and_the_drain() {
    let run = Run::new();
    let (report, _) = run.apply(&drained("1"), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");

    let (config, planned) = run.plan(&drained("2")).await;
    let host = planned.plan.changes.iter().find(|c| c.addr.to_string() == "rec_thing.host").unwrap();
    assert_eq!(host.action, Action::CreateThenDelete);
    assert_eq!(host.drain_ms, Some(2000), "one second of TTL and one of drain");
    let plain = planned.plan.changes.iter().find(|c| c.addr.to_string() == "rec_thing.plain").unwrap();
    assert_eq!(plain.drain_ms, None, "nothing switches away from it and it has no drain");
    let text = berth::plan::render::human(&planned.plan);
    assert!(text.contains("old object destroyed after a 2 s drain"), "{text}");
    assert_eq!(berth::plan::render::json(&planned.plan)["resource_changes"][0]["drain_ms"], 2000);

    let before = changes(&run).len();
    let events = Events::default();
    let started = Instant::now();
    let (report, state) = run.apply_planned((config, planned), &CancellationToken::new(), &events).await;
    assert!(report.ok(), "{report:?}");
    assert!(started.elapsed() >= Duration::from_secs(2), "the drain was waited: {:?}", started.elapsed());
    assert_eq!(events.of("draining"), ["rec_thing.host (old object)"]);
    let calls = changes(&run)[before..].to_vec();
    let at = |s: &str| calls.iter().position(|c| c == s).unwrap_or_else(|| panic!("no `{s}` in {calls:?}"));
    assert!(at("create rec_thing.host") < at("update rec_thing.record"), "{calls:?}");
    assert!(at("update rec_thing.record") < at("delete rec_thing.host"), "{calls:?}");
    assert!(state.resources.values().all(|r| r.deposed.is_none()), "the old host is gone");
}

/// Three hosts rolled one at a time, a record listing all of them, and a
/// JSON inventory of them at `inventory`. Host i of `v1` has the address
/// `10.1.0.i+1`, of `v2` `10.2.0.i+1` (see [`ip`]).
fn fleet(triggers: &str, inventory: &str) -> String {
    fleet_with(triggers, inventory, true)
}

/// As [`fleet`], with or without `create_before_destroy`.
fn fleet_with(triggers: &str, inventory: &str, cbd: bool) -> String {
    let net = &triggers[1..];
    format!(
        r#"
resource "rec_thing" "web" {{
  count    = 3
  input    = {{ private_ip = "10.{net}.0.${{count.index + 1}}" }}
  triggers = "{triggers}"
  lifecycle {{
    create_before_destroy = {cbd}
    rolling {{ max_unavailable = 1 }}
  }}
}}
resource "rec_thing" "lb" {{
  input = join(",", rec_thing.web[*].id)
  ttl   = 0
}}
inventory "web" {{
  format = "json"
  path   = "{inventory}"
  role "web" {{
    hosts = [for w in rec_thing.web : merge(w.output, {{ id = w.id }})]
  }}
}}
"#
    )
}

/// The address of host `i` of version `v` in [`fleet`], quoted as JSON has it.
fn ip(v: u8, i: usize) -> String {
    format!("\"10.{v}.0.{}\"", i + 1)
}

/// The ids of the current `rec_thing.web` objects, by index.
fn web_ids(state: &berth::state::State) -> Vec<String> {
    (0..3)
        .map(|i| {
            let addr = format!("rec_thing.web[{i}]").parse().unwrap();
            state.get(&addr).unwrap().attributes.get_str("id").unwrap().to_string()
        })
        .collect()
}

/// Keeps a copy of the inventory file each time the apply rewrites it.
struct Inventories {
    path: std::path::PathBuf,
    seen: Mutex<Vec<String>>,
    events: Events,
}

impl Progress for Inventories {
    fn event(&self, e: berth::engine::Event<'_>) {
        if let berth::engine::Event::InventoryWritten { .. } = e {
            self.seen.lock().unwrap().push(std::fs::read_to_string(&self.path).unwrap());
        }
        self.events.event(e);
    }
}

#[tokio::test]
async fn a_rolling_replacement_goes_wave_by_wave() {
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.json");
    let inv = path.to_str().unwrap();
    let (report, _) = run.apply(&fleet("v1", inv), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");

    let (config, planned) = run.plan(&fleet("v2", inv)).await;
    let waves: Vec<(String, Option<Wave>)> =
        planned.plan.changes.iter().filter(|c| c.addr.resource.name == "web").map(|c| (c.addr.to_string(), c.wave)).collect();
    assert_eq!(
        waves,
        [
            ("rec_thing.web[0]".to_string(), Some(Wave { index: 1, of: 3 })),
            ("rec_thing.web[1]".to_string(), Some(Wave { index: 2, of: 3 })),
            ("rec_thing.web[2]".to_string(), Some(Wave { index: 3, of: 3 })),
        ]
    );
    let text = berth::plan::render::human(&planned.plan);
    assert!(text.contains("must be replaced (create before destroy), wave 2 of 3"), "{text}");
    assert!(text.contains("Rolling replacement of rec_thing.web, in 3 waves"), "{text}");
    assert!(text.contains("  wave 3 of 3: rec_thing.web[2]"), "{text}");

    let before = changes(&run).len();
    let progress = Inventories { path: path.clone(), seen: Mutex::new(Vec::new()), events: Events::default() };
    let opts = berth::engine::ApplyOptions { parallelism: 4, ..Default::default() };
    let cancel = CancellationToken::new();
    let (report, state) = berth::engine::apply(&config, planned, &run.backend, &opts, &progress, &cancel)
        .await
        .unwrap_or_else(|d| panic!("apply failed: {d}"));
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.added, report.changed, report.destroyed), (3, 1, 3));
    let calls = changes(&run)[before..].to_vec();
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(format!("create rec_thing.web[{i}]"));
        expected.push("update rec_thing.lb".to_string());
        expected.push(format!("delete rec_thing.web[{i}]"));
    }
    assert_eq!(calls, expected, "one wave at a time, the record switched in each");

    let new = web_ids(&state);
    let lb = state.get(&"rec_thing.lb".parse().unwrap()).unwrap().attributes.get_str("output").unwrap().to_string();
    assert_eq!(lb, new.join(","));
    // After each wave, the inventory lists the hosts that exist and serve:
    // the new ones of the waves done, the old ones of the waves to come.
    let seen = progress.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "rewritten once per wave: {seen:#?}");
    for (wave, file) in seen.iter().enumerate() {
        for i in 0..3 {
            let (live, gone) = if i <= wave { (ip(2, i), ip(1, i)) } else { (ip(1, i), ip(2, i)) };
            assert!(file.contains(&live) && !file.contains(&gone), "wave {}: host {i}: {file}", wave + 1);
        }
    }
}

#[tokio::test]
async fn a_failed_wave_stops_the_roll_and_leaves_the_rest() {
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("web.json");
    let inv = inv.to_str().unwrap();
    let (report, state) = run.apply(&fleet("v1", inv), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let old = web_ids(&state);

    run.rec.script("rec_thing.web[1]", [Answer::Fail("no capacity")]);
    let before = changes(&run).len();
    let (report, state) = run.apply(&fleet("v2", inv), &CancellationToken::new(), &Events::default()).await;
    assert!(!report.ok());
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let calls = changes(&run)[before..].to_vec();
    assert_eq!(
        calls,
        ["create rec_thing.web[0]", "update rec_thing.lb", "delete rec_thing.web[0]", "create rec_thing.web[1]"],
        "wave 3 never started"
    );
    let now = web_ids(&state);
    assert_ne!(now[0], old[0], "wave 1 went through");
    assert_eq!(now[1..], old[1..], "the failed wave and the next keep their hosts");
    let lb = state.get(&"rec_thing.lb".parse().unwrap()).unwrap().attributes.get_str("output").unwrap().to_string();
    assert_eq!(lb, now.join(","), "the record lists exactly the hosts that exist");
    assert!(state.resources.values().all(|r| r.deposed.is_none()));
    let file = std::fs::read_to_string(inv).unwrap();
    for (i, v) in [(0, 2), (1, 1), (2, 1)] {
        assert!(file.contains(&ip(v, i)), "host {i} is listed as it exists: {file}");
    }
}

#[tokio::test]
async fn a_destroy_then_create_roll_unlists_each_host_before_it_goes() {
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("web.json");
    let inv = inv.to_str().unwrap();
    let (report, _) = run.apply(&fleet_with("v1", inv, false), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let before = changes(&run).len();
    let progress = Inventories { path: inv.into(), seen: Mutex::new(Vec::new()), events: Events::default() };
    let (report, state) = run.apply(&fleet_with("v2", inv, false), &CancellationToken::new(), &progress).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.added, report.changed, report.destroyed), (3, 1, 3));
    // Before each wave's host goes, the inventory lists the others; at the
    // end, every new host.
    let seen = progress.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    for (wave, file) in seen.iter().enumerate() {
        for i in 0..3 {
            let (new, old) = (file.contains(&ip(2, i)), file.contains(&ip(1, i)));
            let want = match i.cmp(&wave) {
                std::cmp::Ordering::Less => (true, false),
                std::cmp::Ordering::Equal if wave < 3 => (false, false),
                _ if wave == 3 => (true, false),
                _ => (false, true),
            };
            assert_eq!((new, old), want, "write {}: host {i}: {file}", wave + 1);
        }
    }
    let calls = changes(&run)[before..].to_vec();
    let mut expected = Vec::new();
    for i in 0..3 {
        // The record drops the host, the host goes, comes back, and is listed again.
        expected.push("update rec_thing.lb".to_string());
        expected.push(format!("delete rec_thing.web[{i}]"));
        expected.push(format!("create rec_thing.web[{i}]"));
        expected.push("update rec_thing.lb".to_string());
    }
    assert_eq!(calls, expected);
    let lb = state.get(&"rec_thing.lb".parse().unwrap()).unwrap().attributes.get_str("output").unwrap().to_string();
    assert_eq!(lb, web_ids(&state).join(","));
}

#[tokio::test]
async fn replacing_one_host_of_many_unlists_it_first() {
    // No rolling: the one host replaced destroy-then-create still leaves
    // the record that lists every host before it goes.
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("web.json");
    let hcl = fleet_with("v1", inv.to_str().unwrap(), false).replace("rolling { max_unavailable = 1 }", "");
    let (report, _) = run.apply(&hcl, &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let before = changes(&run).len();
    let replace = vec!["rec_thing.web[1]".parse().unwrap()];
    let planned = run.plan_with(&hcl, PlanOptions { replace, ..Default::default() }).await;
    let (report, state) = run.apply_planned(planned, &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let calls = changes(&run)[before..].to_vec();
    assert_eq!(calls, ["update rec_thing.lb", "delete rec_thing.web[1]", "create rec_thing.web[1]", "update rec_thing.lb"]);
    let lb = state.get(&"rec_thing.lb".parse().unwrap()).unwrap().attributes.get_str("output").unwrap().to_string();
    assert_eq!(lb, web_ids(&state).join(","));
}

#[tokio::test]
async fn replace_with_a_splat_rolls_every_instance() {
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("web.json");
    let hcl = fleet("v1", inv.to_str().unwrap());
    let (report, _) = run.apply(&hcl, &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let replace = vec!["rec_thing.web".parse().unwrap()];
    let (_, planned) = run.plan_with(&hcl, PlanOptions { replace, ..Default::default() }).await;
    let waves: Vec<usize> = planned.plan.changes.iter().filter_map(|c| c.wave.map(|w| w.index)).collect();
    assert_eq!(waves, [1, 2, 3]);
}

/// A host whose old object is kept four seconds after its replacement.
const KILLED: &str = r#"
variable "gen" { default = "1" }
resource "berth_data" "host" {
  input            = "host"
  triggers_replace = var.gen
  lifecycle {
    create_before_destroy = true
    drain                 = "4s"
  }
}
resource "berth_data" "record" { input = berth_data.host.id }
"#;

#[test]
fn a_run_killed_during_the_drain_is_resumed_by_the_next() {
    use std::io::{BufRead, BufReader};
    let w = Work::new();
    w.write("main.hcl", KILLED);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--var", "gen=2"]);
    assert!(r.stdout.contains("old object destroyed after a 4 s drain"), "{}", r.stdout);

    let spawned = Instant::now();
    let mut child = w
        .cmd(&["apply", "--auto-approve", "--var", "gen=2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("draining for 4 s") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("berth_data.host (old object): draining for 4 s before it is destroyed"), "{seen}");
    child.kill().unwrap();
    child.wait().unwrap();
    // When the drain ends reached the journal before the wait began.
    let journal = w.read("state/default.journal");
    assert!(journal.lines().any(|l| l.contains(r#""deposed":"g1""#) && l.contains(r#""until":"#)), "{journal}");

    // The plan sees the old object, deposed, with the rest of its drain.
    let r = w.run(&["plan", "--var", "gen=2"]);
    r.assert_ok();
    assert!(r.stdout.contains("berth_data.host (deposed object g1) will be destroyed"), "{}", r.stdout);
    assert!(r.stdout.contains("the deposed object destroyed after a"), "{}", r.stdout);
    let r = w.run(&["apply", "--auto-approve", "--var", "gen=2"]);
    r.assert_ok();
    assert!(r.stderr.contains("berth_data.host (deposed g1): draining for"), "{}", r.stderr);
    assert!(r.stderr.contains("berth_data.host (deposed g1): Destruction complete"), "{}", r.stderr);
    // The drain began after the killed run started, and the old object
    // went only once it was over.
    assert!(spawned.elapsed() >= Duration::from_secs(4), "the rest of the drain was waited: {:?}", spawned.elapsed());
    let state = w.state();
    let hosts: Vec<&serde_json::Value> = state["resources"].as_array().unwrap().iter().filter(|r| r["addr"] == "berth_data.host").collect();
    assert_eq!(hosts.len(), 1, "the old object is gone, never lost: {hosts:?}");
    assert!(hosts[0]["drain"].is_null() && hosts[0]["deposed"].is_null());
}

#[test]
fn a_splat_replace_flag_and_the_rolling_plan() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "web" {
  count = 4
  input = "web-${count.index}"
  lifecycle {
    create_before_destroy = true
    drain                 = "1s"
    rolling {
      max_unavailable = 2
    }
  }
}
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--replace", "berth_data.web[*]"]);
    r.assert_ok();
    assert!(r.stdout.contains("Plan: 4 to add, 0 to change, 4 to destroy."), "{}", r.stdout);
    assert!(r.stdout.contains("  wave 1 of 2: berth_data.web[0], berth_data.web[1] (old hosts destroyed after a 1 s drain)"), "{}", r.stdout);
    assert!(r.stdout.contains("  wave 2 of 2: berth_data.web[2], berth_data.web[3]"), "{}", r.stdout);
    // `--rolling N` rolls a resource without a `rolling` block of its own.
    w.write("other.hcl", "resource \"berth_data\" \"db\" {\n  count = 2\n  input = count.index\n}\n");
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--replace", "berth_data.db", "--rolling", "1"]);
    assert!(r.stdout.contains("  wave 2 of 2: berth_data.db[1]"), "{}", r.stdout);
    let r = w.run(&["plan", "--replace", "berth_data.db"]);
    assert!(r.stdout.contains("berth_data.db[1] must be replaced") && !r.stdout.contains("wave 1 of 2: berth_data.db"), "{}", r.stdout);
    let r = w.run(&["plan", "--rolling", "0"]);
    r.assert_code(2);
    let r = w.run(&["apply", "--auto-approve", "--replace", "berth_data.web[*]"]);
    r.assert_ok();
    // Wave 2 starts after wave 1's old objects are gone.
    let gone = r.stderr.find("berth_data.web[1] (old object): Destruction complete").expect("wave 1 destroyed");
    let next = r.stderr.find("berth_data.web[2]: Creating").expect("wave 2 created");
    assert!(gone < next, "{}", r.stderr);
}

#[test]
fn a_health_check_turned_off_is_not_checked() {
    let w = Work::new();
    let hcl = |enabled: &str| {
        format!(
            "resource \"berth_data\" \"web\" {{\n  input = \"web\"\n  health_check {{\n    enabled = {enabled}\n    url     = \"ftp://${{self.input}}/up\"\n  }}\n}}\n"
        )
    };
    w.write("main.hcl", &hcl("false"));
    w.run(&["plan"]).assert_ok();
    // The same check turned on is refused at plan time, at its line.
    w.write("main.hcl", &hcl("true"));
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("main.hcl:5:15") && r.stderr.contains("must start with http:// or https://, got `ftp://web/up`"), "{}", r.stderr);
}

#[tokio::test]
async fn a_record_that_cannot_drop_a_host_keeps_it_and_the_inventory_too() {
    let run = Run::new();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("web.json");
    let inv = inv.to_str().unwrap();
    let (report, _) = run.apply(&fleet_with("v1", inv, false), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    run.rec.script("rec_thing.lb", [Answer::Fail("throttled")]);
    let before = changes(&run).len();
    let (report, _) = run.apply(&fleet_with("v2", inv, false), &CancellationToken::new(), &Events::default()).await;
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!(changes(&run)[before..], ["update rec_thing.lb"], "no host went");
    let file = std::fs::read_to_string(inv).unwrap();
    for i in 0..3 {
        assert!(file.contains(&ip(1, i)), "host {i} still exists and is listed: {file}");
    }
}

#[tokio::test]
async fn a_host_drains_for_the_records_that_name_it_not_for_its_siblings() {
    let run = Run::new();
    // Every record changes in the second plan (`v`), so the sibling's
    // record (7 s) switches too, but not away from `host[0]`.
    let hcl = |v: &str| {
        format!(
            r#"
resource "rec_thing" "host" {{
  count = 2
  input = "host-${{count.index}}"
  lifecycle {{ create_before_destroy = true }}
}}
resource "rec_thing" "record" {{
  count = 2
  input = "${{rec_thing.host[count.index].id}}-{v}"
  ttl   = count.index == 0 ? 5 : 7
}}
resource "rec_thing" "all" {{
  input = join(",", rec_thing.host[*].id)
  ttl   = 3
}}
"#
        )
    };
    let (report, _) = run.apply(&hcl("v1"), &CancellationToken::new(), &Events::default()).await;
    assert!(report.ok(), "{report:?}");
    let replace = vec!["rec_thing.host[0]".parse().unwrap()];
    let (_, planned) = run.plan_with(&hcl("v2"), PlanOptions { replace, ..Default::default() }).await;
    let change = |addr: &str| planned.plan.changes.iter().find(|c| c.addr.to_string() == addr).unwrap().clone();
    assert_eq!(change("rec_thing.record[1]").action, Action::Update);
    // Its own record (5 s) and the one listing every host (3 s), not its sibling's (7 s).
    assert_eq!(change("rec_thing.host[0]").drain_ms, Some(5000));
    assert_eq!(change("rec_thing.host[1]").drain_ms, None, "not replaced");
}
