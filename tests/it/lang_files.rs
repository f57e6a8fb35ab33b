//! Terraform's files, blocks and meta-arguments in berth (#16, part 2):
//! `*.tf` files, automatically loaded variable files, the `terraform {}`
//! block, `terraform_data`/`null_resource`, `dynamic` blocks, and what
//! Terraform refuses. Driven through the `berth` binary with the built-in
//! resources; where the language alone decides (variable files), the same
//! folder also goes through `terraform` when it is on PATH.

use crate::support;

use std::process::Command;
use support::cli::Work;

fn have_terraform() -> bool {
    Command::new("terraform").arg("version").output().is_ok_and(|o| o.status.success())
}

fn terraform_output(dir: &std::path::Path, apply_args: &[&str], name: &str) -> serde_json::Value {
    let run = |args: &[&str]| {
        Command::new("terraform")
            .args(args)
            .current_dir(dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("run terraform")
    };
    let mut args = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
    args.extend_from_slice(apply_args);
    let applied = run(&args);
    assert!(applied.status.success(), "terraform apply: {}", String::from_utf8_lossy(&applied.stderr));
    let out = run(&["output", "-json", name]);
    serde_json::from_slice(&out.stdout).expect("terraform output json")
}

fn berth_output(w: &Work, apply_args: &[&str], name: &str) -> serde_json::Value {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(apply_args);
    w.run(&args).assert_ok();
    let r = w.run(&["output", "--json", name]);
    r.assert_ok();
    serde_json::from_str(&r.stdout).expect("berth output json")
}

#[test]
fn tf_and_hcl_files_are_one_configuration() {
    let w = Work::new();
    w.write("main.tf", "resource \"berth_data\" \"a\" { input = \"from-tf\" }\n");
    w.write("more.hcl", "output \"both\" { value = \"${berth_data.a.output}+${module.m.x}\" }\nmodule \"m\" { source = \"./mod\" }\n");
    w.write("mod/outputs.tf", "output \"x\" { value = local.y }\n");
    w.write("mod/locals.hcl", "locals { y = \"mod\" }\n");
    // Variable files are not configuration.
    w.write("dev.vars.hcl", "not = valid = configuration\n");
    w.write("terraform.tfvars", "");
    assert_eq!(berth_output(&w, &[], "both"), "from-tf+mod");
}

#[test]
fn an_empty_folder_names_the_files_berth_reads() {
    let w = Work::new();
    w.write("terraform.tfvars", "a = 1\n");
    w.write("main.tf.json", "{}\n");
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("no configuration files"), "{}", r.stderr);
    assert!(r.stderr.contains("`*.hcl` and `*.tf`"), "{}", r.stderr);
}

/// Terraform's precedence: `terraform.tfvars`, `terraform.tfvars.json`,
/// `*.auto.tfvars[.json]` in lexical order, then `--var-file`, then `--var`.
#[test]
fn variable_files_load_in_terraforms_order() {
    let files: &[(&str, &str)] = &[
        (
            "main.tf",
            r#"
variable "a" { default = "default" }
variable "b" { default = "default" }
variable "c" { default = "default" }
variable "d" { default = "default" }
variable "e" { default = "default" }
variable "f" { default = "default" }
variable "n" { type = number }
variable "g" { default = "default" }
output "v" { value = [var.a, var.b, var.c, var.d, var.e, var.f, var.g, var.n + 1] }
"#,
        ),
        ("terraform.tfvars", "a = \"tfvars\"\nb = \"tfvars\"\nc = \"tfvars\"\nd = \"tfvars\"\ne = \"tfvars\"\nf = \"tfvars\"\nn = 41\nundeclared = 1\n"),
        ("terraform.tfvars.json", r#"{"b": "tfvars.json", "c": "tfvars.json", "d": "tfvars.json", "e": "tfvars.json", "f": "tfvars.json"}"#),
        ("b.auto.tfvars.json", r#"{"c": "b.auto.json", "d": "b.auto.json", "e": "b.auto.json", "f": "b.auto.json"}"#),
        ("z.auto.tfvars", "d = \"z.auto\"\ne = \"z.auto\"\nf = \"z.auto\"\n"),
        ("extra.tfvars", "e = \"var-file\"\nf = \"var-file\"\n"),
        // Not loaded by itself: only `terraform.tfvars` and `*.auto.tfvars`.
        ("other.tfvars", "g = \"other\"\n"),
    ];
    let w = Work::new();
    for (name, text) in files {
        w.write(name, text);
    }
    let berth = berth_output(&w, &["--var-file", "extra.tfvars", "--var", "f=flag"], "v");
    assert_eq!(
        berth,
        serde_json::json!(["tfvars", "tfvars.json", "b.auto.json", "z.auto", "var-file", "flag", "default", 42])
    );
    if !have_terraform() {
        eprintln!("skipping the comparison with Terraform: `terraform` is not on PATH");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let tf = terraform_output(dir.path(), &["-var-file=extra.tfvars", "-var", "f=flag"], "v");
    assert_eq!(berth, tf);
}

#[test]
fn a_bad_auto_loaded_file_is_an_error_at_its_line() {
    let w = Work::new();
    w.write("main.tf", "variable \"a\" { type = number }\noutput \"a\" { value = var.a }\n");
    w.write("terraform.tfvars", "a = 1\nb = = 2\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("terraform.tfvars:2:"), "{}", r.stderr);
    w.write("terraform.tfvars", "a = \"x\"\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("terraform.tfvars"), "{}", r.stderr);
    assert!(!w.path().join("state/default.json").exists());
}

#[test]
fn terraform_data_and_null_resource_are_built_in() {
    let w = Work::new();
    let cfg = |rev: &str| {
        format!(
            r#"
variable "rev" {{ default = "{rev}" }}
resource "terraform_data" "build" {{
  input            = {{ image = "web", rev = var.rev }}
  triggers_replace = [var.rev]
}}
resource "null_resource" "hook" {{
  triggers = {{ image = terraform_data.build.output.image, rev = var.rev }}
}}
resource "null_resource" "plain" {{}}
output "image" {{ value = terraform_data.build.output.image }}
output "hook_id" {{ value = null_resource.hook.id }}
"#
        )
    };
    w.write("main.tf", &cfg("1"));
    w.run(&["validate"]).assert_ok();
    let r = w.run(&["apply", "--auto-approve"]);
    r.assert_ok();
    assert!(r.stdout.contains("3 added"), "{}", r.stdout);
    assert_eq!(w.state()["outputs"]["image"]["value"], "web");
    let first_id = w.state()["outputs"]["hook_id"]["value"].as_str().expect("an id").to_string();
    w.run(&["plan", "--detailed-exitcode"]).assert_code(0);
    // A new revision replaces both: `triggers_replace` and `triggers` force it.
    w.write("main.tf", &cfg("2"));
    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_code(2);
    assert!(r.stdout.contains("Plan: 2 to add, 0 to change, 2 to destroy."), "{}", r.stdout);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_ne!(w.state()["outputs"]["hook_id"]["value"].as_str(), Some(first_id.as_str()));
    // Terraform's schemas: no `triggers` on terraform_data, no `input` on null_resource.
    w.write("main.tf", "resource \"terraform_data\" \"x\" { triggers = {} }\nresource \"null_resource\" \"y\" { input = 1 }\n");
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("main.tf:1:"), "{}", r.stderr);
    assert!(r.stderr.contains("main.tf:2:"), "{}", r.stderr);
}

#[test]
fn terraform_block_is_checked_where_it_means_something() {
    let w = Work::new();
    w.write("main.tf", "resource \"terraform_data\" \"a\" { input = 1 }\n");
    // What Terraform configurations carry: accepted.
    w.write(
        "versions.tf",
        r#"terraform {
  required_version = "~> 1.9"
  required_providers {
    aws  = { source = "hashicorp/aws", version = ">= 5.0" }
    null = "~> 3.0"
  }
}
"#,
    );
    w.run(&["validate"]).assert_ok();
    // berth implements Terraform 1.11's language; a constraint that
    // excludes every 1.11 release is refused where it is written.
    w.write("versions.tf", "terraform {\n  required_version = \">= 1.12\"\n}\n");
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("versions.tf:2:22"), "{}", r.stderr);
    assert!(r.stderr.contains("excludes Terraform 1.11"), "{}", r.stderr);
    w.write("versions.tf", "terraform {\n  required_version = \"at least 1\"\n}\n");
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("not a version constraint"), "{}", r.stderr);
    // A backend berth does not have: an error at its line, nothing written.
    w.write("versions.tf", "terraform {\n  backend \"gcs\" {\n    bucket = \"x\"\n  }\n}\n");
    for cmd in [&["validate"][..], &["plan"][..], &["apply", "--auto-approve"][..]] {
        let r = w.run(cmd);
        r.assert_code(1);
        assert!(r.stderr.contains("unknown backend `gcs`"), "{}", r.stderr);
        assert!(r.stderr.contains("versions.tf:2:"), "{}", r.stderr);
    }
    assert!(!w.path().join("state").exists());
    // A `--backend-config` file that is not there, or a bad setting in one.
    w.write("versions.tf", "terraform {\n  backend \"s3\" {}\n}\n");
    let r = w.run(&["plan", "-backend-config=missing.tfbackend"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`--backend-config missing.tfbackend`: no such file"), "{}", r.stderr);
    w.write("bad.tfbackend", "bucket = \"b\"\nkey = \"k\"\nencrypt = \"perhaps\"\n");
    let r = w.run(&["plan", "-backend-config=bad.tfbackend"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`encrypt` must be true or false"), "{}", r.stderr);
}

/// Plans `hcl` in-process with the recording provider (`rec_thing`, whose
/// `rule` is a nested block) and answers each planned object by address.
fn planned_after(hcl: &str, vars: &[&str]) -> Result<std::collections::BTreeMap<String, berth::value::Value>, String> {
    use berth::config::vars::VarSources;
    use berth::engine::{self, PlanOptions};
    let rec = support::recording::Recording::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = berth::state::local::LocalBackend::new(dir.path().join("state"), "default");
    let config = berth::config::load_str("main.tf", hcl).map_err(|d| d.to_string())?;
    let opts = PlanOptions { refresh: true, workspace: "default".into(), providers: rec.registry(), ..Default::default() };
    let sources = VarSources { vars: vars.iter().map(|v| v.to_string()).collect(), ..Default::default() };
    struct Quiet;
    impl engine::Progress for Quiet {
        fn event(&self, _: engine::Event<'_>) {}
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let planned = rt.block_on(engine::plan(&config, &sources, &backend, &opts, &Quiet)).map_err(|d| d.to_string())?;
    Ok(planned.plan.changes.into_iter().map(|c| (c.addr.to_string(), c.after.unwrap_or_default())).collect())
}

/// A `dynamic` block is the blocks Terraform's documentation says it
/// stands for: one per element, in the collection's order, `ITER.key` the
/// index (list), the element (set) or the key (map), mixed with static
/// blocks in source order, nested dynamic blocks expanded inside.
#[test]
fn dynamic_blocks_expand_as_terraform_documents() {
    let dynamic = r#"
variable "ports" {
  default = [
    { port = 22, cidrs = ["10.0.0.0/8"] },
    { port = 443, cidrs = ["0.0.0.0/0", "::/0"] },
  ]
}
locals {
  named = { web = 80, admin = 8080 }
}
resource "rec_thing" "sg" {
  input = "sg"
  rule {
    port = 1
    kind = "static-first"
  }
  dynamic "rule" {
    for_each = var.ports
    content {
      port = rule.value.port
      kind = "list-${rule.key}"
      dynamic "cidr" {
        for_each = rule.value.cidrs
        iterator = c
        content {
          block = c.value
          of    = rule.value.port
        }
      }
    }
  }
  dynamic "rule" {
    for_each = local.named
    iterator = r
    content {
      port = r.value
      kind = "map-${r.key}"
    }
  }
  dynamic "rule" {
    for_each = toset(["b", "a"])
    content {
      port = 0
      kind = "set-${rule.key}-${rule.value}"
    }
  }
  dynamic "rule" {
    for_each = []
    content {
      port = 9
      kind = "never"
    }
  }
  rule {
    port = 2
    kind = "static-last"
  }
}
"#;
    let written_out = r#"
resource "rec_thing" "sg" {
  input = "sg"
  rule {
    port = 1
    kind = "static-first"
  }
  rule {
    port = 22
    kind = "list-0"
    cidr {
      block = "10.0.0.0/8"
      of    = 22
    }
  }
  rule {
    port = 443
    kind = "list-1"
    cidr {
      block = "0.0.0.0/0"
      of    = 443
    }
    cidr {
      block = "::/0"
      of    = 443
    }
  }
  rule {
    port = 8080
    kind = "map-admin"
  }
  rule {
    port = 80
    kind = "map-web"
  }
  rule {
    port = 0
    kind = "set-a-a"
  }
  rule {
    port = 0
    kind = "set-b-b"
  }
  rule {
    port = 2
    kind = "static-last"
  }
}
"#;
    let got = planned_after(dynamic, &[]).expect("plan the dynamic configuration");
    let want = planned_after(written_out, &[]).expect("plan the written-out configuration");
    assert_eq!(got, want);
    let rules = got["rec_thing.sg"].get("rule").and_then(|r| r.as_list().map(|l| l.len()));
    assert_eq!(rules, Some(8));
    // A dynamic block over nothing makes none; with no static ones, an empty list.
    let none = "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = {}\n    content {\n      port = 1\n    }\n  }\n}\n";
    let got = planned_after(none, &[]).expect("plan");
    assert_eq!(got["rec_thing.x"].get("rule").and_then(|r| r.as_list().map(|l| l.len())), Some(0));
}

#[test]
fn dynamic_blocks_refuse_what_terraform_refuses() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    content {}\n  }\n}\n",
            "main.tf:2:3",
            "needs `for_each`",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = [1]\n  }\n}\n",
            "main.tf:2:3",
            "needs a `content` block",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = [1]\n    iterator = \"r\"\n    content {}\n  }\n}\n",
            "main.tf:4:16",
            "`iterator` is a name",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = [1]\n    content {}\n    port = 1\n  }\n}\n",
            "main.tf:5:5",
            "unsupported argument `port` in a `dynamic` block",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rules\" {\n    for_each = [1]\n    content {}\n  }\n}\n",
            "main.tf:2:3",
            "unsupported block `rules`",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = 3\n    content {}\n  }\n}\n",
            "main.tf:3:16",
            "needs a collection",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"rule\" {\n    for_each = [1]\n    content {\n      port = rule.value.nope\n    }\n  }\n}\n",
            "main.tf:5:",
            "nope",
        ),
        (
            "resource \"rec_thing\" \"x\" {\n  dynamic \"lifecycle\" {\n    for_each = [1]\n    content {}\n  }\n}\n",
            "main.tf:2:3",
            "cannot be `dynamic`",
        ),
    ];
    for (hcl, at, msg) in cases {
        let err = planned_after(hcl, &[]).expect_err(hcl);
        assert!(err.contains(at) && err.contains(msg), "{hcl}\nwanted {at} and {msg:?} in:\n{err}");
    }
}

/// A string where a number is expected converts as Terraform converts it;
/// one that is no number is an error where it is written.
#[test]
fn strings_convert_where_a_number_is_expected() {
    let got = planned_after("resource \"rec_thing\" \"x\" {\n  size = \"300\"\n}\n", &[]).expect("plan");
    assert_eq!(got["rec_thing.x"].get("size"), Some(&berth::value::Value::Number(300.0)));
    let got = planned_after("variable \"n\" { type = string }\nresource \"rec_thing\" \"x\" {\n  size = var.n\n}\n", &["n=1.5e3"])
        .expect("plan");
    assert_eq!(got["rec_thing.x"].get("size"), Some(&berth::value::Value::Number(1500.0)));
    // Not a number: refused at the value.
    let err = planned_after("resource \"rec_thing\" \"x\" {\n  size = \"300s\"\n}\n", &[]).expect_err("a bad number");
    assert!(err.contains("main.tf:2:10") && err.contains("`size` must be a number"), "{err}");
    // Other arguments keep their strings.
    let got = planned_after("resource \"rec_thing\" \"x\" {\n  input = \"300\"\n}\n", &[]).expect("plan");
    assert_eq!(got["rec_thing.x"].get("input"), Some(&berth::value::Value::String("300".into())));
}

/// Meta-arguments where berth and Terraform must agree, each case run
/// through both (Terraform's built-in `terraform_data` needs no download):
/// accepted with the same number of instances, or refused by both.
#[test]
fn meta_arguments_agree_with_terraform() {
    let cases: &[(&str, Option<usize>)] = &[
        ("resource \"terraform_data\" \"a\" {\n  for_each = [\"a\", \"b\"]\n  input = each.key\n}\n", None),
        ("resource \"terraform_data\" \"a\" {\n  for_each = tolist([\"a\"])\n}\n", None),
        ("resource \"terraform_data\" \"a\" {\n  for_each = toset([\"a\", \"b\", \"a\"])\n  input = each.value\n}\n", Some(2)),
        ("resource \"terraform_data\" \"a\" {\n  for_each = { x = 1, y = 2 }\n  input = each.value\n}\n", Some(2)),
        ("resource \"terraform_data\" \"a\" {\n  for_each = toset([1, 2])\n}\n", None),
        ("resource \"terraform_data\" \"a\" {\n  for_each = []\n}\n", None),
        ("resource \"terraform_data\" \"a\" {\n  for_each = toset([])\n}\n", Some(0)),
        ("resource \"terraform_data\" \"a\" {\n  count = \"3\"\n  input = count.index\n}\n", Some(3)),
        ("resource \"terraform_data\" \"a\" {\n  count = \"three\"\n}\n", None),
        ("resource \"terraform_data\" \"a\" {}\nresource \"terraform_data\" \"b\" {\n  depends_on = [terraform_data.a]\n}\n", Some(2)),

        ("resource \"terraform_data\" \"a\" {\n  triggers = {}\n}\n", None),
        ("resource \"terraform_data\" \"a\" {\n  input = 1\n  triggers_replace = [2]\n}\nterraform {\n  required_version = \"~> 1.9\"\n}\n", Some(1)),
        ("resource \"terraform_data\" \"a\" {}\nterraform {\n  required_version = \">= 1.12\"\n}\n", None),
        // Keys known at plan, values not: a resource's instances, and their number.
        (
            "resource \"terraform_data\" \"x\" {\n  for_each = toset([\"a\", \"b\"])\n  input = each.key\n}\nresource \"terraform_data\" \"y\" {\n  for_each = terraform_data.x\n  input = each.value.id\n}\nresource \"terraform_data\" \"c\" {\n  count = length(terraform_data.x)\n  input = keys(terraform_data.y)[count.index]\n}\n",
            Some(6),
        ),
        (
            "resource \"terraform_data\" \"x\" {\n  input = \"a\"\n}\nresource \"terraform_data\" \"y\" {\n  for_each = toset([terraform_data.x.id])\n}\n",
            None,
        ),
    ];
    // The one deliberate difference: Terraform 1.11 still takes a quoted
    // address in `depends_on` (deprecated since 0.12, with a warning);
    // berth refuses it and says how to write it.
    let quoted = "resource \"terraform_data\" \"a\" {}\nresource \"terraform_data\" \"b\" {\n  depends_on = [\"terraform_data.a\"]\n}\n";
    let planned = |out: &str| -> Option<usize> {
        if out.lines().any(|l| l.starts_with("No changes.")) {
            return Some(0);
        }
        let line = out.lines().find(|l| l.starts_with("Plan: "))?;
        line.trim_start_matches("Plan: ").split(' ').next()?.parse().ok()
    };
    let tf = have_terraform();
    if !tf {
        eprintln!("skipping the comparison with Terraform: `terraform` is not on PATH");
    }
    let cases = cases.iter().copied().chain([(quoted, None)]);
    for (hcl, want) in cases {
        let w = Work::new();
        w.write("main.tf", hcl);
        let r = w.run(&["plan", "-no-color"]);
        let berth = if r.code == 0 { planned(&r.stdout) } else { None };
        assert_eq!(berth, want, "berth on:\n{hcl}\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        if r.code != 0 {
            assert!(r.stderr.contains("main.tf:"), "an error names the place:\n{}", r.stderr);
        }
        if !tf {
            continue;
        }
        let run = |args: &[&str]| {
            Command::new("terraform")
                .args(args)
                .current_dir(w.path())
                .env("TF_IN_AUTOMATION", "1")
                .env("CHECKPOINT_DISABLE", "1")
                .output()
                .expect("run terraform")
        };
        std::fs::remove_dir_all(w.path().join("state")).ok();
        let init = run(&["init", "-input=false", "-no-color", "-backend=false"]);
        let terraform = if init.status.success() {
            let plan = run(&["plan", "-input=false", "-no-color"]);
            if plan.status.success() { planned(&String::from_utf8_lossy(&plan.stdout)) } else { None }
        } else {
            None
        };
        if hcl == quoted {
            assert_eq!(terraform, Some(2), "terraform took a quoted address until now:\n{hcl}");
            continue;
        }
        assert_eq!(berth, terraform, "berth and terraform disagree on:\n{hcl}");
    }
}

/// The common case: security group rules from a variable, checked by
/// `berth validate` against the AWS schema (offline).
#[test]
fn dynamic_ingress_validates_against_the_aws_schema() {
    let w = Work::new();
    let cfg = |block: &str| {
        format!(
            r#"
variable "ingress" {{
  type    = map(object({{ port = number, cidrs = list(string) }}))
  default = {{ ssh = {{ port = 22, cidrs = ["10.0.0.0/8"] }}, https = {{ port = 443, cidrs = ["0.0.0.0/0"] }} }}
}}
resource "aws_security_group" "web" {{
  name = "web"
  dynamic "{block}" {{
    for_each = var.ingress
    iterator = rule
    content {{
      description = rule.key
      from_port   = rule.value.port
      to_port     = rule.value.port
      protocol    = "tcp"
      cidr_blocks = rule.value.cidrs
    }}
  }}
}}
"#
        )
    };
    w.write("main.tf", &cfg("ingress"));
    w.run(&["validate"]).assert_ok();
    w.write("main.tf", &cfg("ingres"));
    let r = w.run(&["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("unsupported block `ingres`") && r.stderr.contains("did you mean `ingress`?"), "{}", r.stderr);
    assert!(r.stderr.contains("main.tf:8:3"), "{}", r.stderr);
}
