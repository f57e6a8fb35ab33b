//! `count` and `for_each` on module calls: instances addressed
//! `module.svc["a"]`, outputs as maps and lists, keys added and removed,
//! nested calls, and the errors of keys berth cannot use.

use crate::support;

use std::process::Command;
use support::cli::Work;

const SVC: &str = r#"
variable "name" { type = string }
variable "index" { type = number }
resource "berth_data" "host" { input = "${var.name}-${var.index}" }
output "host" { value = berth_data.host.output }
"#;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn for_each_instances_have_keyed_addresses_and_outputs() {
    let w = Work::new();
    w.write("svc/main.hcl", SVC);
    let main = |keys: &str| {
        format!(
            r#"
variable "keys" {{ default = {keys} }}
module "svc" {{
  source   = "./svc"
  for_each = var.keys
  name     = each.key
  index    = each.value
}}
output "all" {{ value = {{ for k, m in module.svc : k => m.host }} }}
output "a"   {{ value = try(module.svc["a"].host, "none") }}
output "n"   {{ value = length(module.svc) }}
"#
        )
    };
    w.write("main.hcl", &main("{ a = 1, b = 2 }"));
    w.run(&["validate"]).assert_ok();
    let r = w.run(&["plan"]);
    r.assert_ok();
    assert!(r.stdout.contains(r#"module.svc["a"].berth_data.host will be created"#), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy."), "{}", r.stdout);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(
        w.state_addresses(),
        sorted(vec![r#"module.svc["a"].berth_data.host"#.into(), r#"module.svc["b"].berth_data.host"#.into()])
    );
    let outputs = &w.state()["outputs"];
    assert_eq!(outputs["all"]["value"], serde_json::json!({"a": "a-1", "b": "b-2"}));
    assert_eq!(outputs["a"]["value"], "a-1");
    assert_eq!(outputs["n"]["value"], 2);
    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_code(0);

    // Dropping `a` destroys its instance; adding `c` creates one.
    w.write("main.hcl", &main("{ b = 2, c = 3 }"));
    let r = w.run(&["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("Apply complete! Resources: 1 added, 0 changed, 1 destroyed."), "{}", r.stdout);
    assert_eq!(
        w.state_addresses(),
        sorted(vec![r#"module.svc["b"].berth_data.host"#.into(), r#"module.svc["c"].berth_data.host"#.into()])
    );
    assert_eq!(w.state()["outputs"]["a"]["value"], "none");
    assert_eq!(w.state()["outputs"]["all"]["value"], serde_json::json!({"b": "b-2", "c": "c-3"}));

    // An instance that does not exist is an error where it is named.
    w.write("extra.hcl", "output \"zz\" { value = module.svc[\"zz\"].host }\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("module `svc` has no instance `zz`"), "{}", r.stderr);
    assert!(r.stderr.contains("extra.hcl:1:"), "{}", r.stderr);
}

#[test]
fn count_instances_grow_and_shrink() {
    let w = Work::new();
    w.write("svc/main.hcl", SVC);
    let main = |n: usize| {
        format!(
            r#"
module "svc" {{
  source = "./svc"
  count  = {n}
  name   = "h"
  index  = count.index
}}
output "hosts" {{ value = module.svc[*].host }}
output "first" {{ value = module.svc[0].host }}
resource "berth_data" "reader" {{
  count = {n}
  input = module.svc[count.index].host
}}
"#
        )
    };
    w.write("main.hcl", &main(3));
    // Through a saved plan with a module target: the apply expands the
    // calls again and applies exactly what was planned.
    w.run(&["plan", "--out", "p.plan", "--target", "module.svc[1]"]).assert_ok();
    let r = w.run(&["apply", "p.plan"]);
    r.assert_ok();
    assert_eq!(w.state_addresses(), vec!["module.svc[1].berth_data.host".to_string()]);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(w.state()["outputs"]["hosts"]["value"], serde_json::json!(["h-0", "h-1", "h-2"]));
    assert_eq!(w.state()["outputs"]["first"]["value"], "h-0");
    assert!(w.state_addresses().contains(&"module.svc[2].berth_data.host".to_string()));
    w.write("main.hcl", &main(1));
    let r = w.run(&["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("0 added, 0 changed, 4 destroyed."), "{}", r.stdout);
    assert_eq!(w.state()["outputs"]["hosts"]["value"], serde_json::json!(["h-0"]));
    assert_eq!(w.state_addresses(), sorted(vec!["berth_data.reader[0]".into(), "module.svc[0].berth_data.host".into()]));
}

#[test]
fn nested_for_each_inside_for_each() {
    let w = Work::new();
    w.write("svc/main.hcl", SVC);
    w.write(
        "region/main.hcl",
        r#"
variable "region" { type = string }
variable "hosts" { type = map(number) }
module "svc" {
  source   = "../svc"
  for_each = var.hosts
  name     = "${var.region}-${each.key}"
  index    = each.value
}
output "hosts" { value = { for k, m in module.svc : k => m.host } }
"#,
    );
    w.write(
        "main.hcl",
        r#"
module "region" {
  source   = "./region"
  for_each = toset(["eu", "us"])
  region   = each.value
  hosts    = { web = 1, db = 2 }
}
output "us_db" { value = module.region["us"].hosts["db"] }
output "all" { value = { for r, m in module.region : r => m.hosts } }
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(w.state_addresses().len(), 4);
    assert!(w.state_addresses().contains(&r#"module.region["eu"].module.svc["web"].berth_data.host"#.to_string()));
    assert_eq!(w.state()["outputs"]["us_db"]["value"], "us-db-2");
    assert_eq!(w.state()["outputs"]["all"]["value"]["eu"]["web"], "eu-web-1");
    let r = w.run(&["state", "show", r#"module.region["us"].module.svc["web"].berth_data.host"#]);
    r.assert_ok();
    assert!(r.stdout.contains("us-web-1"), "{}", r.stdout);
}

#[test]
fn keys_must_be_a_known_map_or_set() {
    let w = Work::new();
    w.write("svc/main.hcl", SVC);
    w.write(
        "main.hcl",
        r#"
module "svc" {
  source   = "./svc"
  for_each = ["a", "b"]
  name     = each.key
  index    = 1
}
"#,
    );
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the `for_each` of `module.svc` is a list or tuple"), "{}", r.stderr);
    assert!(r.stderr.contains("main.hcl:4:14"), "{}", r.stderr);
    assert!(r.stderr.contains("toset"), "{}", r.stderr);

    w.write(
        "main.hcl",
        r#"
resource "berth_data" "k" { input = "x" }
module "svc" {
  source   = "./svc"
  for_each = toset([berth_data.k.id])
  name     = each.key
  index    = 1
}
"#,
    );
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("depends on values known only after apply"), "{}", r.stderr);
    assert!(r.stderr.contains("main.hcl:5:"), "{}", r.stderr);
    assert!(!w.path().join("state/default.json").exists());

    // A counted resource is not an empty list before it is read.
    w.write(
        "main.hcl",
        r#"
resource "berth_data" "k" {
  count = 2
  input = "x"
}
module "svc" {
  source = "./svc"
  count  = length(berth_data.k)
  name   = "x"
  index  = 1
}
"#,
    );
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the `count` of `module.svc` depends on values known only after apply"), "{}", r.stderr);

    w.write(
        "main.hcl",
        r#"
module "svc" {
  source   = "./svc"
  count    = 1
  for_each = {}
  name     = "x"
  index    = 1
}
"#,
    );
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`count` or `for_each`, not both"), "{}", r.stderr);
}

#[test]
fn each_is_not_visible_inside_the_module() {
    let w = Work::new();
    w.write(
        "svc/main.hcl",
        r#"
variable "name" { type = string }
resource "berth_data" "host" { input = each.key }
"#,
    );
    w.write("main.hcl", "module \"svc\" {\n  source   = \"./svc\"\n  for_each = toset([\"a\"])\n  name     = each.key\n}\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`each` can only be used in a resource that sets `for_each`"), "{}", r.stderr);
    assert!(r.stderr.contains("svc/main.hcl:3:"), "{}", r.stderr);
}

#[test]
fn addresses_in_plan_state_list_and_target() {
    let w = Work::new();
    w.write("svc/main.hcl", SVC);
    w.write(
        "main.hcl",
        r#"
module "svc" {
  source   = "./svc"
  for_each = { a = 1, b = 2 }
  name     = each.key
  index    = each.value
}
"#,
    );
    let r = w.run(&["apply", "--auto-approve", "--target", r#"module.svc["a"].berth_data.host"#]);
    r.assert_ok();
    assert_eq!(w.state_addresses(), vec![r#"module.svc["a"].berth_data.host"#.to_string()]);
    let r = w.run(&["plan", "--target", r#"module.svc["b"]"#]);
    r.assert_ok();
    assert!(r.stdout.contains(r#"module.svc["b"].berth_data.host will be created"#), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 1 to add"), "{}", r.stdout);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["state", "list"]);
    r.assert_ok();
    assert_eq!(r.stdout, "module.svc[\"a\"].berth_data.host\nmodule.svc[\"b\"].berth_data.host\n");
    let r = w.run(&["plan", "--replace", r#"module.svc["b"].berth_data.host"#]);
    r.assert_ok();
    assert!(r.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{}", r.stdout);
}

/// The same configuration through Terraform 1.11 (when `terraform` is on
/// PATH): the outputs agree. Only `terraform_data`, locals and outputs, so
/// Terraform's `init` downloads nothing.
#[test]
fn outputs_match_terraform() {
    let files: &[(&str, &str)] = &[
        (
            "svc/main.tf",
            r#"
variable "name" { type = string }
variable "index" { type = number }
resource "terraform_data" "host" { input = "${var.name}-${var.index}" }
output "host" { value = terraform_data.host.output }
output "index" { value = var.index }
"#,
        ),
        (
            "region/main.tf",
            r#"
variable "region" { type = string }
variable "sizes" { type = map(number) }
module "svc" {
  source   = "../svc"
  for_each = var.sizes
  name     = "${var.region}-${each.key}"
  index    = each.value
}
output "hosts" { value = { for k, m in module.svc : k => m.host } }
"#,
        ),
        (
            "main.tf",
            r#"
locals {
  sizes = { web = 2, db = 1 }
}
module "keyed" {
  source   = "./svc"
  for_each = local.sizes
  name     = each.key
  index    = each.value * 10
}
module "counted" {
  source = "./svc"
  count  = 3
  name   = "n"
  index  = count.index
}
module "region" {
  source   = "./region"
  for_each = toset(["eu", "us"])
  region   = each.value
  sizes    = local.sizes
}
module "none" {
  source = "./svc"
  count  = 0
  name   = "x"
  index  = 0
}
output "v" {
  value = {
    keyed      = module.keyed
    one        = module.keyed["db"].host
    counted    = module.counted[*].host
    second     = module.counted[1].index
    count_len  = length(module.counted)
    keys       = keys(module.keyed)
    nested     = module.region["us"].hosts["web"]
    regions    = { for r, m in module.region : r => m.hosts }
    none       = length(module.none)
  }
}
"#,
        ),
    ];
    let w = Work::new();
    for (name, text) in files {
        w.write(name, text);
    }
    let berth = {
        w.run(&["apply", "--auto-approve"]).assert_ok();
        let r = w.run(&["output", "--json", "v"]);
        r.assert_ok();
        serde_json::from_str::<serde_json::Value>(&r.stdout).expect("berth output json")
    };
    assert_eq!(berth["one"], "db-10");
    assert_eq!(berth["counted"], serde_json::json!(["n-0", "n-1", "n-2"]));
    assert_eq!(berth["nested"], "us-web-2");
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!("skipping the comparison with Terraform: `terraform` is not on PATH");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let run = |args: &[&str]| {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(dir.path())
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform");
        assert!(out.status.success(), "terraform {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["init", "-input=false", "-no-color"]);
    run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let tf: serde_json::Value = serde_json::from_slice(&run(&["output", "-json", "v"])).expect("terraform output json");
    assert_eq!(berth, tf);
}

#[test]
fn a_mistake_inside_a_module_called_n_times_is_reported_once() {
    let w = Work::new();
    w.write(
        "svc/main.hcl",
        r#"
variable "index" { type = number }
resource "berth_data" "host" { input = berth_data.missing.output }
"#,
    );
    w.write(
        "main.hcl",
        r#"
module "svc" {
  source   = "./svc"
  for_each = { a = 1, b = 2, c = 3 }
  index    = each.value
}
"#,
    );
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert_eq!(r.stderr.matches("reference to undeclared resource `berth_data.missing`").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("svc/main.hcl:3"), "{}", r.stderr);
}
