//! Bad input: a clear error with file:line:column, exit code 1, no panic,
//! and the state byte-for-byte unchanged.

use crate::support;

use support::cli::Work;

fn applied() -> Work {
    let w = Work::new();
    w.write("main.hcl", "resource \"berth_data\" \"search\" { input = \"x\" }\n");
    w.run(&["apply", "--auto-approve"]).assert_ok();
    w
}

fn expect_error(w: &Work, args: &[&str], needles: &[&str]) {
    let before = w.read("state/default.json");
    let r = w.run(args);
    r.assert_code(1);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "missing `{n}` in:\n{}", r.stderr);
    }
    assert_eq!(before, w.read("state/default.json"), "state changed");
}

#[test]
fn syntax_error_names_file_line_column() {
    let w = applied();
    w.write("broken.hcl", "resource \"berth_data\" \"x\" {\n  input = \n}\n");
    expect_error(&w, &["plan"], &["broken.hcl:2:11", "syntax error"]);
}

#[test]
fn typo_in_reference_gets_a_suggestion() {
    let w = applied();
    w.write("main.hcl", "resource \"berth_data\" \"search\" { input = \"x\" }\nresource \"berth_data\" \"core\" {\n  input = berth_data.serch.id\n}\n");
    expect_error(&w, &["plan"], &["main.hcl:3:11", "undeclared resource `berth_data.serch`", "did you mean `berth_data.search`?"]);
    expect_error(&w, &["validate"], &["main.hcl:3:11"]);
}

#[test]
fn cycles_list_their_members_with_locations() {
    let w = applied();
    w.write(
        "main.hcl",
        "resource \"berth_data\" \"a\" { input = berth_data.b.id }\nresource \"berth_data\" \"b\" { input = local.x }\nlocals { x = berth_data.a.id }\n",
    );
    expect_error(&w, &["plan"], &["dependency cycle", "`berth_data.a` (main.hcl:1:1)", "`berth_data.b` (main.hcl:2:1)", "`local.x` (main.hcl:3:"]);
}

#[test]
fn all_errors_are_reported_together() {
    let w = applied();
    w.write(
        "main.hcl",
        "resource \"berth_data\" \"a\" { input = var.nope }\nresource \"berth_data\" \"b\" { inptu = 1 }\nresourc \"x\" \"y\" {}\n",
    );
    expect_error(&w, &["validate"], &["main.hcl:3:1", "did you mean `resource`?"]);
    w.write("main.hcl", "resource \"berth_data\" \"a\" { input = var.nope }\nresource \"berth_data\" \"b\" { inptu = 1 }\n");
    expect_error(&w, &["validate"], &["undeclared variable `var.nope`", "main.hcl:1:37", "unsupported argument `inptu`", "did you mean `input`?"]);
}

#[test]
fn bad_variable_values_are_type_checked() {
    let w = applied();
    w.write(
        "main.hcl",
        "variable \"n\" {\n  type = number\n  validation {\n    condition     = var.n < 10\n    error_message = \"n must be below 10\"\n  }\n}\nresource \"berth_data\" \"search\" { input = var.n }\n",
    );
    expect_error(&w, &["plan", "--var", "n=abc"], &["invalid value for variable `n`", "a number is required", "main.hcl:1:1"]);
    expect_error(&w, &["plan", "--var", "n=12"], &["n must be below 10", "main.hcl:4:21"]);
    expect_error(&w, &["plan", "--var", "m=1"], &["no variable `m` is declared"]);
    let r = w.cmd(&["plan"]).env("BERTH_VAR_n", "3").output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    w.write("vars.json", "{\"n\": 4}");
    w.run(&["plan", "--var-file", "vars.json"]).assert_ok();
    w.write("prod.vars.hcl", "n = \"five\"\n");
    expect_error(&w, &["plan", "--var-file", "prod.vars.hcl"], &["`prod.vars.hcl` line 1", "a number is required"]);
}

#[test]
fn count_and_for_each_together_is_an_error() {
    let w = applied();
    w.write("main.hcl", "resource \"berth_data\" \"search\" {\n  count = 1\n  for_each = toset([])\n}\n");
    expect_error(&w, &["validate"], &["sets both `count` and `for_each`", "main.hcl:1:1"]);
}

#[test]
fn missing_module_source_is_reported() {
    let w = applied();
    w.write("main.hcl", "module \"net\" {\n  source = \"./nowhere\"\n}\n");
    expect_error(&w, &["plan"], &["source `./nowhere` not found", "main.hcl:2:12"]);
}

#[test]
fn fixed_private_ip_with_create_before_destroy_is_refused_at_plan_time() {
    let w = applied();
    w.write(
        "main.hcl",
        r#"
provider "aws" {
  region       = "us-east-1"
  endpoint_url = "http://127.0.0.1:9"
  access_key   = "x"
  secret_key   = "y"
}
resource "berth_data" "search" { input = "x" }
resource "aws_instance" "search" {
  ami           = "ami-123"
  instance_type = "t3.small"
  subnet_id     = "subnet-1"
  private_ip    = "10.0.1.20"
  lifecycle { create_before_destroy = true }
}
"#,
    );
    expect_error(&w, &["plan"], &["fixed `private_ip` cannot be used with `create_before_destroy`", "main.hcl:13:19"]);
}
