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
