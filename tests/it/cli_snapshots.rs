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

/// A configuration whose plan has nested values (objects, lists of
/// blocks), a destroy and a replacement, for the human and Markdown views.
const NESTED: &str = r#"
variable "rules" {
  type    = list(number)
  default = [22, 443]
}
resource "berth_data" "firewall" {
  input = {
    name    = "web"
    ingress = [for p in var.rules : { from_port = p, to_port = p, cidr_blocks = ["10.0.0.0/16"] }]
    tags    = { Name = "web", "kubernetes.io/role" = "edge" }
  }
}
resource "berth_data" "gone" { input = "bye" }
resource "berth_data" "pinned" {
  input            = "same"
  triggers_replace = var.rules
}
"#;

#[test]
fn plan_nested_blocks_and_markdown() {
    let w = Work::new();
    w.write("main.hcl", NESTED);
    let r = w.run(&["plan"]);
    r.assert_ok();
    redacted(|| insta::assert_snapshot!("plan_nested_create", r.stdout));
    w.run(&["apply", "--auto-approve"]).assert_ok();
    // One rule changes, one resource goes, one is replaced.
    let changed = NESTED.replace("default = [22, 443]", "default = [22, 8443]").replace(
        "resource \"berth_data\" \"gone\" { input = \"bye\" }\n",
        "",
    );
    w.write("main.hcl", &changed);
    let r = w.run(&["plan"]);
    r.assert_ok();
    redacted(|| insta::assert_snapshot!("plan_nested_update", r.stdout));
    let r = w.run(&["plan", "--format", "markdown", "--out", "pr.plan"]);
    r.assert_ok();
    redacted(|| insta::assert_snapshot!("plan_markdown", r.stdout));
    // `show` renders the saved plan the same way.
    let shown = w.run(&["show", "--format", "markdown", "pr.plan"]);
    shown.assert_ok();
    assert_eq!(shown.stdout, r.stdout);
    let r = w.run(&["plan", "--format", "markdown", "--var", "rules=[22, 443]"]);
    assert!(r.stdout.contains("**Plan: 0 to add, 0 to change, 1 to destroy.**"), "{}{}", r.stdout, r.stderr);
}

#[test]
fn markdown_of_a_plan_too_long_for_a_comment_is_cut_with_a_note() {
    let w = Work::new();
    w.write(
        "main.hcl",
        "resource \"berth_data\" \"n\" {\n  count = 300\n  input = \"${count.index}-${join(\"\", [for i in range(60) : \"xxxxx\"])}\"\n}\n",
    );
    let r = w.run(&["plan", "--format", "markdown"]);
    r.assert_ok();
    assert!(r.stdout.chars().count() <= 65_536, "{} characters", r.stdout.chars().count());
    assert!(r.stdout.contains("**Plan: 300 to add, 0 to change, 0 to destroy.**"));
    assert!(r.stdout.contains("too long for a GitHub comment"), "no truncation note");
    assert!(r.stdout.contains("`berth-plan` artifact"));
    assert_eq!(r.stdout.matches("<details>").count(), r.stdout.matches("</details>").count());
}

#[test]
fn on_github_actions_errors_are_annotations_and_the_plan_goes_to_the_step_summary() {
    let w = Work::new();
    w.write("infra/main.hcl", "resource \"berth_data\" \"a\" { input = 1 }\nresource \"berth_data\" \"b\" {\n  input = berth_data.c.id\n}\n");
    let summary = w.path().join("summary.md");
    let gha = |args: &[&str]| -> support::cli::Run {
        w.cmd(args)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", w.path())
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .expect("run berth")
            .into()
    };
    let r = gha(&["-C", "infra", "plan"]);
    r.assert_code(1);
    // Placed on the diff line: the path is the repository's, not `-C`'s.
    let line = r.stderr.lines().find(|l| l.starts_with("::error ")).unwrap_or_else(|| panic!("no annotation:\n{}", r.stderr));
    assert!(line.starts_with("::error file=infra/main.hcl,line=3,col=11,"), "{line}");
    assert!(line.contains("::") && line.contains("berth_data.c"), "{line}");
    // The human error is still there, and nothing went to the summary.
    assert!(r.stderr.contains("Error: main.hcl:3:11"), "{}", r.stderr);
    assert!(!summary.exists());
    // Without GITHUB_ACTIONS: no workflow commands.
    let plain = w.run(&["-C", "infra", "plan"]);
    assert!(!plain.stderr.contains("::error"), "{}", plain.stderr);

    w.write("infra/main.hcl", "resource \"berth_data\" \"a\" { input = 1 }\n");
    let r = gha(&["-C", "infra", "plan", "--detailed-exitcode"]);
    r.assert_code(2);
    let md = std::fs::read_to_string(&summary).expect("a step summary");
    assert!(md.contains("<!-- berth-plan workspace=default -->"), "{md}");
    assert!(md.contains("**Plan: 1 to add, 0 to change, 0 to destroy.**"), "{md}");
    // Appended, never overwritten: a second plan adds its own.
    gha(&["-C", "infra", "plan"]).assert_ok();
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("<!-- berth-plan").count(), 2, "{md}");
}
