//! What users see: plan text, JSON plans, errors, graphs, state listings.
//! Snapshots (insta) with ids and lineages redacted.

use crate::support;

use support::cli::Work;

/// Snapshots with ids and lineages (UUIDs) redacted, by an insta filter.
fn redacted(f: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "[uuid]");
    settings.bind(f);
}

const CONFIG: &str = r#"
variable "env" { default = "production" }
variable "db_password" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
locals {
  hosts = ["core", "search"]
}
resource "berth_data" "network" {
  input = { cidr = cidrsubnet("10.0.0.0/16", 8, 1), env = var.env }
}
resource "berth_data" "host" {
  for_each = toset(local.hosts)
  input    = "${each.key}.${var.env}.internal"
}
resource "berth_data" "user_data" {
  input = <<-EOT
    #!/bin/sh
    echo ${var.env}
    echo done
  EOT
}
resource "berth_data" "db" { input = var.db_password }
output "names" { value = [for h in berth_data.host : h.output] }
"#;

#[test]
fn plan_text() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let r = w.run(&["plan"]);
    r.assert_ok();
    redacted(|| insta::assert_snapshot!("plan_create", r.stdout));
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["plan", "--var", "env=staging"]);
    r.assert_ok();
    redacted(|| insta::assert_snapshot!("plan_update", r.stdout));
}

#[test]
fn plan_json() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let r = w.run(&["plan", "--json"]);
    r.assert_ok();
    let mut j: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    j["lineage"] = "[lineage]".into();
    j["berth_version"] = "[version]".into();
    assert!(!r.stdout.contains("s3cret"));
    insta::assert_json_snapshot!("plan_json", j);
}

#[test]
fn errors_and_graph() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"berth_data\" \"search\" { input = 1 }\nresource \"berth_data\" \"core\" {\n  input = berth_data.serch.id\n}\n",
    );
    let r = w.run(&["validate"]);
    r.assert_code(1);
    insta::assert_snapshot!("error_typo", r.stderr);
    w.write("main.hcl", CONFIG);
    let r = w.run(&["graph", "--format", "mermaid"]);
    r.assert_ok();
    insta::assert_snapshot!("graph_mermaid", r.stdout);
    let r = w.run(&["graph"]);
    r.assert_ok();
    insta::assert_snapshot!("graph_dot", r.stdout);
}

#[test]
fn state_and_output_commands() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["state", "list"]);
    insta::assert_snapshot!("state_list", r.stdout);
    let r = w.run(&["state", "show", "berth_data.db"]);
    assert!(!r.stdout.contains("s3cret"), "{}", r.stdout);
    redacted(|| insta::assert_snapshot!("state_show_sensitive", r.stdout));
    let r = w.run(&["output", "--json"]);
    insta::assert_snapshot!("output_json", r.stdout);
    let r = w.run(&["state", "mv", "berth_data.db", "berth_data.database"]);
    r.assert_ok();
    let r = w.run(&["state", "rm", "berth_data.network"]);
    r.assert_ok();
    let r = w.run(&["state", "list"]);
    insta::assert_snapshot!("state_list_after_edits", r.stdout);
}
