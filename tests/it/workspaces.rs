//! Workspaces on the local backend, through the real `berth` binary: one
//! state file per workspace, selection saved in `.berth/workspace`,
//! `BERTH_WORKSPACE` winning over it, and deletion that refuses to forget
//! objects unless forced. (The same commands on S3: `tests/state_s3.rs`.)

use crate::support;

use support::cli::{Run, Work};

const CONFIG: &str = r#"
resource "berth_data" "env" {
  input = terraform.workspace
}
output "env" { value = berth_data.env.output }
"#;

fn with_ws(w: &Work, ws: &str, args: &[&str]) -> Run {
    w.cmd(args).env("BERTH_WORKSPACE", ws).output().expect("run berth").into()
}

fn input_of(w: &Work, file: &str) -> String {
    let state: serde_json::Value = serde_json::from_str(&w.read(file)).expect("state JSON");
    state["resources"][0]["attributes"]["input"].as_str().unwrap_or_default().to_string()
}

#[test]
fn each_workspace_has_its_own_state_and_the_selection_is_saved() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let r = w.run(&["workspace", "list"]);
    r.assert_ok();
    assert_eq!(r.stdout, "* default\n");
    assert_eq!(w.run(&["workspace", "show"]).stdout, "default\n");

    w.run(&["apply", "--auto-approve"]).assert_ok();
    let r = w.run(&["workspace", "new", "staging"]);
    r.assert_ok();
    assert!(r.stderr.contains("Created and selected workspace `staging`"), "{}", r.stderr);
    assert_eq!(w.read(".berth/workspace"), "staging\n");
    let empty: serde_json::Value = serde_json::from_str(&w.read("state/staging.json")).unwrap();
    assert_eq!(empty["resources"], serde_json::json!([]));
    assert_eq!(empty["serial"], 0);

    // Commands now run in `staging`, with `terraform.workspace` to match.
    let r = w.run(&["plan"]);
    r.assert_ok();
    assert!(r.stdout.contains("Plan: 1 to add"), "{}", r.stdout);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(input_of(&w, "state/staging.json"), "staging");
    assert_eq!(input_of(&w, "state/default.json"), "default", "the default state is untouched");
    assert_eq!(w.run(&["output", "--raw", "env"]).stdout, "staging\n");

    let r = w.run(&["workspace", "list"]);
    assert_eq!(r.stdout, "  default\n* staging\n");

    // BERTH_WORKSPACE wins over the saved selection (CI selects this way).
    assert_eq!(with_ws(&w, "default", &["output", "--raw", "env"]).stdout, "default\n");
    assert_eq!(with_ws(&w, "default", &["workspace", "show"]).stdout, "default\n");
    let r = with_ws(&w, "production", &["workspace", "list"]);
    assert_eq!(r.stdout, "  default\n  staging\n");
    assert!(r.stderr.contains("`production` has no state yet"), "{}", r.stderr);

    w.run(&["workspace", "select", "default"]).assert_ok();
    assert_eq!(w.run(&["workspace", "show"]).stdout, "default\n");
    assert_eq!(w.run(&["output", "--raw", "env"]).stdout, "default\n");
}

#[test]
fn select_new_and_delete_refuse_what_would_go_wrong() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let r = w.run(&["workspace", "select", "prod"]);
    r.assert_code(1);
    assert!(r.stderr.contains("workspace `prod` does not exist") && r.stderr.contains("berth workspace new prod"), "{}", r.stderr);
    assert!(!w.path().join(".berth/workspace").exists(), "a failed select saves nothing");

    let r = w.run(&["workspace", "new", "../escape"]);
    r.assert_code(1);
    assert!(r.stderr.contains("invalid workspace name `../escape`"), "{}", r.stderr);

    w.run(&["workspace", "new", "prod"]).assert_ok();
    let r = w.run(&["workspace", "new", "prod"]);
    r.assert_code(1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    w.run(&["apply", "--auto-approve"]).assert_ok();

    let r = w.run(&["workspace", "delete", "prod"]);
    r.assert_code(1);
    assert!(r.stderr.contains("is selected"), "{}", r.stderr);
    let r = w.run(&["workspace", "delete", "default"]);
    r.assert_code(1);
    assert!(r.stderr.contains("cannot be deleted"), "{}", r.stderr);

    w.run(&["workspace", "select", "default"]).assert_ok();
    let r = w.run(&["workspace", "delete", "prod"]);
    r.assert_code(1);
    assert!(r.stderr.contains("still manages 1 object(s)") && r.stderr.contains("--force"), "{}", r.stderr);
    assert!(w.path().join("state/prod.json").exists(), "a refused delete changes nothing");

    let r = w.run(&["workspace", "delete", "--force", "prod"]);
    r.assert_ok();
    assert!(r.stderr.contains("1 object(s) forgotten"), "{}", r.stderr);
    assert!(!w.path().join("state/prod.json").exists());
    assert!(!w.path().join("state/prod.lock").exists(), "the lock was released");
    assert_eq!(w.run(&["workspace", "list"]).stdout, "* default\n");

    // An empty workspace goes without --force.
    w.run(&["workspace", "new", "scratch"]).assert_ok();
    w.run(&["workspace", "select", "default"]).assert_ok();
    w.run(&["workspace", "delete", "scratch"]).assert_ok();
    assert_eq!(w.run(&["workspace", "list"]).stdout, "* default\n");
}

#[test]
fn init_and_state_pull_push_work_on_the_local_backend() {
    let w = Work::new();
    w.write("main.hcl", CONFIG);
    let r = w.run(&["init"]);
    r.assert_ok();
    assert!(r.stderr.contains("Backend: local"), "{}", r.stderr);
    let r = w.run(&["init", "--migrate-state"]);
    r.assert_code(1);
    assert!(r.stderr.contains("nowhere to migrate to"), "{}", r.stderr);

    let r = w.run(&["state", "pull"]);
    r.assert_code(1);
    assert!(r.stderr.contains("there is no state"), "{}", r.stderr);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    let pulled = w.run(&["state", "pull"]);
    pulled.assert_ok();
    assert_eq!(pulled.stdout, w.read("state/default.json"));

    // Pushing into another workspace: a fresh state takes it as it is.
    let mut push = w.cmd(&["state", "push", "-"]);
    push.env("BERTH_WORKSPACE", "copy").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = push.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(pulled.stdout.as_bytes()).unwrap();
    let r: Run = child.wait_with_output().unwrap().into();
    r.assert_ok();
    assert_eq!(w.read("state/copy.json"), w.read("state/default.json"));

    w.write("bad.json", "{\"version\": 99}");
    let r = w.run(&["state", "push", "bad.json"]);
    r.assert_code(1);
    assert!(r.stderr.contains("format version 99"), "{}", r.stderr);
}
