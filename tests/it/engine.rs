//! Engine tests with the built-in `berth_data` resource: no cloud needed.

use crate::support;

use support::cli::Work;

#[test]
fn fan_out_applies_and_replans_clean() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "root" { input = "root" }
resource "berth_data" "child" {
  count = 50
  input = "${berth_data.root.output}-${count.index}"
}
output "last" { value = berth_data.child[49].output }
"#,
    );
    let r = w.run(&["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("Apply complete! Resources: 51 added, 0 changed, 0 destroyed."), "{}", r.stdout);
    assert_eq!(w.state_addresses().len(), 51);
    assert_eq!(w.state()["outputs"]["last"]["value"], "root-49");
    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_code(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    // State is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.path().join("state/default.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn chain_changes_propagate_in_one_apply() {
    let w = Work::new();
    let mut cfg = String::from("variable \"seed\" { default = \"a\" }\nresource \"berth_data\" \"n0\" { input = var.seed }\n");
    for i in 1..30 {
        cfg.push_str(&format!("resource \"berth_data\" \"n{i}\" {{ input = \"${{berth_data.n{}.output}}+\" }}\n", i - 1));
    }
    cfg.push_str("output \"tail\" { value = berth_data.n29.output }\n");
    w.write("main.hcl", &cfg);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let expected = format!("a{}", "+".repeat(29));
    assert_eq!(w.state()["outputs"]["tail"]["value"], expected.as_str());
    let r = w.run(&["plan", "--detailed-exitcode", "--var", "seed=b"]);
    r.assert_code(2);
    assert!(r.stdout.contains("Plan: 0 to add, 30 to change, 0 to destroy."), "{}", r.stdout);
    w.run(&["apply", "--auto-approve", "--var", "seed=b"]).assert_ok();
    assert_eq!(w.state()["outputs"]["tail"]["value"], format!("b{}", "+".repeat(29)).as_str());
}

#[test]
fn count_and_for_each_shrink_and_grow() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "n" { type = number }
variable "names" { type = set(string) }
resource "berth_data" "c" {
  count = var.n
  input = count.index
}
resource "berth_data" "f" {
  for_each = var.names
  input    = upper(each.key)
}
"#,
    );
    w.run(&["apply", "--auto-approve", "--var", "n=3", "--var", r#"names=["a","b"]"#]).assert_ok();
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(addrs, ["berth_data.c[0]", "berth_data.c[1]", "berth_data.c[2]", "berth_data.f[\"a\"]", "berth_data.f[\"b\"]"]);
    let r = w.run(&["apply", "--auto-approve", "--var", "n=1", "--var", r#"names=["b","c"]"#]);
    r.assert_ok();
    assert!(r.stdout.contains("1 added, 0 changed, 3 destroyed"), "{}", r.stdout);
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(addrs, ["berth_data.c[0]", "berth_data.f[\"b\"]", "berth_data.f[\"c\"]"]);
}

#[test]
fn modules_pass_values_both_ways() {
    let w = Work::new();
    w.write(
        "modules/pair/main.hcl",
        r#"
variable "prefix" { type = string }
resource "berth_data" "a" { input = "${var.prefix}-a" }
output "a" { value = berth_data.a.output }
"#,
    );
    w.write(
        "main.hcl",
        r#"
module "one" {
  source = "./modules/pair"
  prefix = "x"
}
module "two" {
  source = "./modules/pair"
  prefix = module.one.a
}
output "two" { value = module.two.a }
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(w.state()["outputs"]["two"]["value"], "x-a-a");
    let addrs = w.state_addresses();
    assert!(addrs.contains(&"module.two.berth_data.a".to_string()), "{addrs:?}");
}

/// One instance of a `count` resource fails: only what names that instance
/// is skipped. `berth_data.record[3]` depends on `berth_assert.host[3]`
/// alone, so it is created, with host 3's id and not host 4's (the failed
/// host 2 leaves no gap that shifts the list). Whole-resource references
/// (a splat, `length`, a local, `depends_on`) still wait for every instance.
#[test]
fn a_failed_instance_skips_only_what_names_it() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "broken" { default = 2 }
resource "berth_assert" "host" {
  count     = 5
  condition = count.index != var.broken
  message   = "host ${count.index} cannot start"
}
resource "berth_data" "record" {
  count = 5
  input = berth_assert.host[count.index].id
}
resource "berth_data" "first" { input = berth_assert.host[0].id }
resource "berth_data" "splat" { input = join(",", berth_assert.host[*].id) }
resource "berth_data" "length" { input = length(berth_assert.host) }
locals { hosts = berth_assert.host }
resource "berth_data" "via_local" {
  count = 5
  input = local.hosts[count.index].id
}
resource "berth_data" "ordered" {
  count      = 5
  input      = berth_assert.host[count.index].id
  depends_on = [berth_assert.host]
}
"#,
    );
    // Through a saved plan: the narrowed dependencies survive the file.
    w.run(&["plan", "--out", "p.plan"]).assert_code(0);
    let r = w.run(&["apply", "p.plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("host 2 cannot start"), "{}", r.stderr);
    let addrs = w.state_addresses();
    for i in [0, 1, 3, 4] {
        assert!(addrs.contains(&format!("berth_data.record[{i}]")), "record {i} created: {addrs:?}");
    }
    assert!(addrs.contains(&"berth_data.first".to_string()), "{addrs:?}");
    for skipped in ["berth_data.record[2]", "berth_data.splat", "berth_data.length", "berth_data.via_local[0]", "berth_data.ordered[0]"] {
        assert!(!addrs.iter().any(|a| a == skipped), "`{skipped}` must wait for every host: {addrs:?}");
        assert!(r.stderr.contains(skipped), "`{skipped}` is reported skipped:\n{}", r.stderr);
    }
    let state = w.state();
    let id_of = |addr: &str, attr: &str| -> String {
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["addr"] == addr)
            .and_then(|r| r["attributes"][attr].as_str())
            .unwrap_or_else(|| panic!("no `{attr}` of `{addr}` in the state"))
            .to_string()
    };
    for i in [0, 1, 3, 4] {
        assert_eq!(id_of(&format!("berth_data.record[{i}]"), "output"), id_of(&format!("berth_assert.host[{i}]"), "id"));
    }
    // Once host 2 can start, the next apply finishes the rest.
    w.run(&["apply", "--auto-approve", "--var", "broken=-1"]).assert_ok();
    w.run(&["plan", "--detailed-exitcode", "--var", "broken=-1"]).assert_code(0);
    assert_eq!(w.state_addresses().len(), 5 + 5 + 1 + 1 + 1 + 5 + 5);
}

#[test]
fn a_failure_skips_only_its_dependents() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "ok" { input = "fine" }
resource "berth_data" "bad_input" { input = "x" }
resource "berth_assert" "gate" {
  condition = berth_data.bad_input.output == "y"
  message   = "the gate is closed"
}
resource "berth_data" "after_gate" { input = berth_assert.gate.id }
resource "berth_data" "independent" { input = berth_data.ok.output }
"#,
    );
    let r = w.run(&["apply", "--auto-approve"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the gate is closed"), "{}", r.stderr);
    assert!(r.stderr.contains("skipped") && r.stderr.contains("berth_data.after_gate"), "{}", r.stderr);
    let addrs = w.state_addresses();
    assert!(addrs.contains(&"berth_data.independent".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"berth_data.ok".to_string()));
    assert!(!addrs.contains(&"berth_data.after_gate".to_string()));
    assert!(!addrs.contains(&"berth_assert.gate".to_string()));
}

#[test]
fn saved_plans_apply_exactly_and_stale_ones_are_refused() {
    let w = Work::new();
    w.write("main.hcl", "resource \"berth_data\" \"a\" { input = 1 }\n");
    w.run(&["plan", "-out=first.plan"]).assert_ok();
    w.run(&["plan", "--out", "second.plan"]).assert_ok();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(w.path().join("first.plan")).unwrap().permissions().mode() & 0o777, 0o600);
    w.run(&["apply", "first.plan"]).assert_ok();
    let before = w.read("state/default.json");
    let r = w.run(&["apply", "second.plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("stale"), "{}", r.stderr);
    assert_eq!(before, w.read("state/default.json"), "a refused plan must not touch the state");
    // A configuration change also makes a plan stale.
    w.run(&["plan", "--out", "third.plan"]).assert_ok();
    w.write("main.hcl", "resource \"berth_data\" \"a\" { input = 2 }\n");
    let r = w.run(&["apply", "third.plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("configuration changed"), "{}", r.stderr);
}

#[test]
fn apply_without_a_terminal_refuses_rather_than_hangs() {
    let w = Work::new();
    w.write("main.hcl", "resource \"berth_data\" \"a\" { input = 1 }\n");
    let r = w.cmd(&["apply"]).stdin(std::process::Stdio::null()).output().unwrap();
    let r: support::cli::Run = r.into();
    r.assert_code(1);
    assert!(r.stderr.contains("--auto-approve"), "{}", r.stderr);
    assert!(w.state_addresses().is_empty());
}

#[test]
fn lock_contention_names_the_holder() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"berth_sleep\" \"slow\" { create_duration = \"3s\" }\n",
    );
    let mut holder = w.cmd(&["apply", "--auto-approve"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait until the first run holds the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !w.path().join("state/default.lock").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("locked"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pid {}", holder.id())), "{}", r.stderr);
    // With a timeout, the second run waits for the first.
    let r = w.run(&["plan", "--lock-timeout", "30s"]);
    r.assert_ok();
    assert!(holder.wait().unwrap().success());
}

#[test]
fn a_killed_apply_loses_nothing_that_completed() {
    let w = Work::new();
    let mut cfg = String::new();
    for i in 0..5 {
        cfg.push_str(&format!("resource \"berth_data\" \"fast{i}\" {{ input = {i} }}\n"));
    }
    cfg.push_str("resource \"berth_sleep\" \"slow\" { create_duration = \"30s\" }\n");
    w.write("main.hcl", &cfg);
    let mut child = w.cmd(&["apply", "--auto-approve"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Wait for the fast resources to be journaled, then SIGKILL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let j = std::fs::read_to_string(w.path().join("state/default.journal")).unwrap_or_default();
        if j.matches("\"op\":\"put\"").count() >= 5 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The next plan knows the five completed objects: only the slow one is left to create.
    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_code(2);
    assert!(r.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{}", r.stdout);
    assert!(r.stdout.contains("berth_sleep.slow"), "{}", r.stdout);
}

/// The journal a killed run leaves is folded (or, stale, removed) by the next
/// apply even when it has nothing to change.
#[test]
fn an_apply_with_nothing_to_change_clears_a_killed_runs_journal() {
    let w = Work::new();
    w.write("main.hcl", "resource \"berth_data\" \"a\" { input = 1 }\n");
    let journal = w.path().join("state/default.journal");
    // One object: its apply appends begin+pending, put, outputs. Killed
    // after the last append (replayed next time), and after the state write
    // but before the journal's removal (stale next time).
    for kill_at in ["journal:3", "state:1"] {
        let _ = std::fs::remove_dir_all(w.path().join("state"));
        let out = w.cmd(&["apply", "--auto-approve"]).env("BERTH_TEST_KILL_AFTER_WRITES", kill_at).output().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{kill_at}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(journal.exists(), "{kill_at}: the kill left a journal");
        let r = w.run(&["apply", "--auto-approve"]);
        r.assert_ok();
        assert!(r.stdout.contains("No changes."), "{kill_at}: {}", r.stdout);
        assert!(!journal.exists(), "{kill_at}: the journal is still there\n{}", r.stderr);
        assert_eq!(w.state_addresses(), ["berth_data.a"], "{kill_at}");
        w.run(&["plan", "--detailed-exitcode"]).assert_code(0);
    }
}

#[test]
fn destroy_goes_in_reverse_order_and_honours_prevent_destroy() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "base" { input = "b" }
resource "berth_data" "top" { input = berth_data.base.output }
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["destroy", "--auto-approve"]);
    r.assert_ok();
    let top = r.stderr.find("berth_data.top: Destruction complete").expect("top destroyed");
    let base = r.stderr.find("berth_data.base: Destroying").expect("base destroyed");
    assert!(top < base, "dependents go first:\n{}", r.stderr);
    assert!(w.state_addresses().is_empty());

    w.write(
        "main.hcl",
        "resource \"berth_data\" \"keep\" {\n  input = 1\n  lifecycle { prevent_destroy = true }\n}\n",
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["destroy", "--auto-approve"]);
    r.assert_code(1);
    assert!(r.stderr.contains("prevent_destroy"), "{}", r.stderr);
    assert_eq!(w.state_addresses(), ["berth_data.keep"]);
}

#[test]
fn create_before_destroy_switches_dependents_before_destroying() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "gen" { default = "1" }
resource "berth_data" "host" {
  input            = "host"
  triggers_replace = var.gen
  lifecycle { create_before_destroy = true }
}
resource "berth_data" "record" { input = berth_data.host.id }
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--var", "gen=2"]);
    assert!(r.stdout.contains("+/- resource \"berth_data\" \"host\""), "{}", r.stdout);
    assert!(r.stdout.contains("triggers_replace = \"1\" -> \"2\" # forces replacement"), "{}", r.stdout);
    let r = w.run(&["apply", "--auto-approve", "--var", "gen=2"]);
    r.assert_ok();
    let created = r.stderr.find("berth_data.host: Creation complete").expect("created");
    let switched = r.stderr.find("berth_data.record: Modifications complete").expect("record updated");
    let destroyed = r.stderr.find("berth_data.host (old object): Destruction complete").expect("old destroyed");
    assert!(created < switched && switched < destroyed, "{}", r.stderr);
}

#[test]
fn replace_and_target_flags() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "a" { input = "a" }
resource "berth_data" "b" { input = berth_data.a.output }
resource "berth_data" "c" { input = "c" }
"#,
    );
    let r = w.run(&["apply", "--auto-approve", "--target", "berth_data.b"]);
    r.assert_ok();
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(addrs, ["berth_data.a", "berth_data.b"]);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--replace", "berth_data.c"]);
    assert!(r.stdout.contains("replacement requested with --replace"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{}", r.stdout);
}

#[test]
fn sensitive_values_never_reach_plan_output() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "token" {
  type      = string
  sensitive = true
}
resource "berth_data" "a" { input = "token=${var.token}" }
output "t" {
  value     = berth_data.a.output
  sensitive = true
}
"#,
    );
    let r = w.cmd(&["plan", "--json"]).env("BERTH_VAR_token", "hunter2-secret").output().unwrap();
    let r: support::cli::Run = r.into();
    r.assert_ok();
    assert!(!r.stdout.contains("hunter2-secret"), "{}", r.stdout);
    let r = w.cmd(&["apply", "--auto-approve"]).env("BERTH_VAR_token", "hunter2-secret").env("BERTH_LOG", "trace").output().unwrap();
    let r: support::cli::Run = r.into();
    r.assert_ok();
    assert!(!r.stdout.contains("hunter2-secret") && !r.stderr.contains("hunter2-secret"));
    assert!(r.stdout.contains("(sensitive value)"), "{}", r.stdout);
    let r = w.run(&["output"]);
    assert!(r.stdout.contains("t = (sensitive value)"), "{}", r.stdout);
}

/// A tiny HTTP server on loopback answering every request with `status`.
fn http_server(status: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, hits)
}

fn gated_config(port: u16) -> String {
    format!(
        r#"
variable "gen" {{ default = "1" }}
resource "berth_data" "host" {{
  input            = "host"
  triggers_replace = var.gen
  lifecycle {{ create_before_destroy = true }}
  health_check {{
    url      = "http://127.0.0.1:{port}/up?id=${{self.id}}"
    timeout  = "2s"
    interval = "200ms"
  }}
}}
resource "berth_data" "record" {{ input = berth_data.host.id }}
"#
    )
}

#[test]
fn health_gate_passes_before_dependents_switch() {
    let (port, hits) = http_server(200);
    let w = Work::new();
    w.write("main.hcl", &gated_config(port));
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--var", "gen=2"]);
    assert!(r.stdout.contains("health-gated"), "{}", r.stdout);
    let r = w.run(&["apply", "--auto-approve", "--var", "gen=2"]);
    r.assert_ok();
    let healthy = r.stderr.find("berth_data.host: healthy").expect("health checked");
    let switched = r.stderr.find("berth_data.record: Modifications complete").expect("record switched");
    let destroyed = r.stderr.find("berth_data.host (old object): Destruction complete").expect("old destroyed");
    assert!(healthy < switched && switched < destroyed, "{}", r.stderr);
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn failing_health_gate_keeps_the_old_object_and_the_record() {
    let (port, _) = http_server(200);
    let w = Work::new();
    w.write("main.hcl", &gated_config(port));
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let old_id = w.state()["resources"].as_array().unwrap().iter().find(|r| r["addr"] == "berth_data.host").unwrap()["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (bad_port, _) = http_server(503);
    w.write("main.hcl", &gated_config(bad_port));
    let r = w.run(&["apply", "--auto-approve", "--var", "gen=2"]);
    r.assert_code(1);
    assert!(r.stderr.contains("health check failed") && r.stderr.contains("answered 503"), "{}", r.stderr);
    assert!(r.stderr.contains("tainted"), "{}", r.stderr);
    let state = w.state();
    let res = state["resources"].as_array().unwrap();
    let record = res.iter().find(|r| r["addr"] == "berth_data.record").unwrap();
    assert_eq!(record["attributes"]["output"], old_id.as_str(), "the record still points at the old host");
    let old = res.iter().find(|r| r["addr"] == "berth_data.host" && r["deposed"].is_string()).expect("old host kept");
    assert_eq!(old["attributes"]["id"], old_id.as_str());
    let new = res.iter().find(|r| r["addr"] == "berth_data.host" && r["deposed"].is_null()).unwrap();
    assert_eq!(new["tainted"], true);
}

#[test]
fn ignore_changes_and_provider_aliases() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
variable "v" { default = "one" }
provider "berth" {
  alias = "second"
}
resource "berth_data" "a" {
  input = var.v
  lifecycle { ignore_changes = [input] }
}
resource "berth_data" "b" {
  provider = berth.second
  input    = var.v
}
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let providers: Vec<String> = w.state()["resources"].as_array().unwrap().iter().map(|r| r["provider"].as_str().unwrap().to_string()).collect();
    assert!(providers.contains(&"berth.second".to_string()), "{providers:?}");
    let r = w.run(&["plan", "--var", "v=two"]);
    assert!(r.stdout.contains("berth_data.b will be updated"), "{}", r.stdout);
    assert!(!r.stdout.contains("berth_data.a will be updated"), "ignore_changes: {}", r.stdout);
    // An alias that is not configured is an error that says how to configure it.
    w.write("main.hcl", "resource \"berth_data\" \"c\" {\n  provider = berth.third\n  input    = 1\n}\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("provider `berth.third` is used but not configured"), "{}", r.stderr);
}

#[test]
fn sigint_lets_in_flight_work_finish_and_releases_the_lock() {
    use std::io::{BufRead, BufReader};
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_sleep" "a" { create_duration = "2s" }
resource "berth_sleep" "b" { create_duration = "2s" }
resource "berth_data" "after" { input = [berth_sleep.a.id, berth_sleep.b.id] }
"#,
    );
    let mut child = w.cmd(&["apply", "--auto-approve"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        let both = seen.contains("berth_sleep.a: Creating") && seen.contains("berth_sleep.b: Creating");
        line.clear();
        if both {
            break;
        }
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(rest.contains("Interrupt received"), "{rest}");
    let mut addrs = w.state_addresses();
    addrs.sort();
    assert_eq!(addrs, ["berth_sleep.a", "berth_sleep.b"], "in-flight work recorded, nothing new started");
    // The lock is free: a plan runs at once and has only `after` left.
    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_code(2);
    assert!(r.stdout.contains("Plan: 1 to add"), "{}", r.stdout);
}

/// Only a failed create taints (as in Terraform). A failed update leaves the
/// object recorded as it was, untainted, and the next plan proposes the same
/// update again, never a replacement.
#[test]
fn failed_update_never_taints_failed_create_does() {
    let w = Work::new();
    let cfg = |ok: bool| {
        format!(
            r#"
variable "ok" {{
  type    = bool
  default = {ok}
}}
resource "berth_assert" "gate" {{
  condition = var.ok
  message   = "the gate is closed"
}}
"#
        )
    };
    w.write("main.hcl", &cfg(true));
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let id = w.state()["resources"][0]["attributes"]["id"].as_str().unwrap().to_string();

    // The update fails: the object stays, as it was, and is not tainted.
    let r = w.run(&["apply", "--auto-approve", "--var", "ok=false"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the gate is closed"), "{}", r.stderr);
    let res = &w.state()["resources"][0];
    assert_eq!(res["attributes"]["id"], id.as_str(), "{res}");
    assert_eq!(res["attributes"]["condition"], true, "recorded as it is: {res}");
    assert!(res.get("tainted").is_none(), "a failed update must not taint: {res}");
    let r = w.run(&["plan", "--var", "ok=false"]);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{}", r.stdout);
    assert!(!r.stdout.contains("tainted"), "{}", r.stdout);

    // A failed create does taint what it left behind (nothing here: the
    // assertion leaves no object), and the run reports it.
    w.run(&["destroy", "--auto-approve"]).assert_ok();
    let r = w.run(&["apply", "--auto-approve", "--var", "ok=false"]);
    r.assert_code(1);
    assert!(w.state_addresses().is_empty(), "{:?}", w.state_addresses());
}

/// As in Terraform: `for_each` over another resource's instances, and
/// `count = length(...)` of them, plan while their ids are still unknown
/// (only the keys and the number must be known).
#[test]
fn for_each_and_count_over_instances_not_yet_made() {
    let w = Work::new();
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "host" {
  for_each = { web = "10.0.0.1", jobs = "10.0.0.2" }
  input    = each.value
}
resource "berth_data" "record" {
  for_each = berth_data.host
  input    = "${each.key}=${each.value.id}"
}
resource "berth_data" "slot" {
  count = length(berth_data.host)
  input = count.index
}
resource "berth_data" "pending" {
  for_each = toset([berth_data.host["web"].id])
  input    = each.key
}
"#,
    );
    let r = w.run(&["plan"]);
    assert_eq!(r.code, 1, "a set of unknown keys is still refused\n{}", r.stderr);
    assert!(r.stderr.contains("the `for_each` of `berth_data.pending` depends on values known only after apply"), "{}", r.stderr);
    let cfg = std::fs::read_to_string(w.path().join("main.hcl")).unwrap();
    w.write("main.hcl", cfg.split("resource \"berth_data\" \"pending\"").next().unwrap());
    let r = w.run(&["plan"]);
    r.assert_ok();
    assert!(r.stdout.contains("Plan: 6 to add, 0 to change, 0 to destroy."), "{}", r.stdout);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let state = w.state();
    let record = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == "berth_data.record[\"web\"]")
        .unwrap()["attributes"]["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(record.starts_with("web=") && record.len() > "web=".len(), "{record}");
    w.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}
