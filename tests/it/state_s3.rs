//! The S3 state backend against moto's S3 (a real server on loopback): the
//! real `berth` binary with `backend "s3"`, and the backend's own calls.
//!
//! Covers two applies racing for the lock, a killed apply whose lock is
//! reported and forced open and whose journal keeps what it completed, a
//! stale writer refused, locks freed on errors and signals, every version
//! kept, `state pull`/`push`, workspaces, and migration from local state.
//!
//! This suite stays on bare moto: the strict AWS layer (`support::aws`) has
//! rules for EC2 and Route53 only, and would pass S3 through untouched.

use crate::support;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use berth::state::s3::{S3Backend, S3Settings};
use berth::state::{Backend, JournalEntry, ResourceState, State};
use berth::value::{Value, obj};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::cli::{Run, Work};
use support::moto::Moto;

const BUCKET: &str = "berth-state";
const KEY: &str = "app/state.json";

const BACKEND: &str = r#"
berth {
  backend "s3" {
    bucket = "berth-state"
    key    = "app/state.json"
    region = "us-east-1"
  }
}
"#;

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

fn settings() -> S3Settings {
    S3Settings::from_pairs([("bucket".to_string(), BUCKET.to_string()), ("key".to_string(), KEY.to_string())]).unwrap()
}

/// A moto server with the bucket made, a scratch directory, and a runtime
/// for looking at the bucket from the test's side.
struct S3Work {
    moto: Moto,
    work: Work,
    rt: tokio::runtime::Runtime,
    s3: Client,
}

impl S3Work {
    fn new(config: &str) -> S3Work {
        let moto = Moto::start();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let s3 = client(&moto.endpoint);
        rt.block_on(s3.create_bucket().bucket(BUCKET).send()).expect("create the bucket");
        let work = Work::new();
        work.write("backend.hcl", BACKEND);
        // Empty AWS files keep the developer's own profiles out of the tests.
        work.write("aws-config", "");
        work.write("aws-credentials", "");
        work.write("main.hcl", config);
        S3Work { moto, work, rt, s3 }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.work.cmd(&["--backend-config", &format!("endpoint_url={}", self.moto.endpoint)]);
        c.args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", self.work.path().join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.work.path().join("aws-credentials"))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_S3");
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).output().expect("run berth").into()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn berth")
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self.rt.block_on(self.s3.list_objects_v2().bucket(BUCKET).prefix(prefix).send()).expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }

    fn get(&self, key: &str) -> Option<String> {
        let out = self.rt.block_on(self.s3.get_object().bucket(BUCKET).key(key).send()).ok()?;
        let bytes = self.rt.block_on(out.body.collect()).expect("read body").into_bytes();
        Some(String::from_utf8(bytes.to_vec()).expect("utf-8"))
    }

    fn state(&self, key: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(key).unwrap_or_else(|| panic!("no object `{key}`"))).expect("state JSON")
    }

    /// `(address, input)` of every resource in a state object.
    fn inputs(&self, key: &str) -> Vec<(String, serde_json::Value)> {
        self.state(key)["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["addr"].as_str().unwrap().to_string(), r["attributes"]["input"].clone()))
            .collect()
    }

    fn lock_exists(&self) -> bool {
        self.get(&format!("{KEY}.lock")).is_some()
    }

    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\nmoto log:\n{}", self.moto.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the journal objects hold, concatenated.
    fn journal_text(&self) -> String {
        self.keys(&format!("{KEY}.journal/")).iter().filter_map(|k| self.get(k)).collect()
    }
}

fn finish(child: Child) -> Run {
    child.wait_with_output().expect("wait for berth").into()
}

fn lock_id(stderr: &str) -> String {
    let re = regex::Regex::new(r"lock id `([^`]+)`").unwrap();
    re.captures(stderr).unwrap_or_else(|| panic!("no lock id in:\n{stderr}"))[1].to_string()
}

const THREE: &str = r#"
variable "who" {
  type    = string
  default = "nobody"
}
resource "berth_data" "x" {
  count = 3
  input = "${var.who}-${count.index}"
}
resource "berth_sleep" "hold" {
  create_duration = "2s"
  triggers        = { who = var.who }
}
"#;

#[test]
fn apply_keeps_state_and_every_version_in_s3_and_leaves_no_lock() {
    let w = S3Work::new(THREE);
    w.run(&["apply", "--auto-approve", "--var", "who=a"]).assert_ok();
    let inputs = w.inputs(KEY);
    assert_eq!(inputs.iter().filter(|(a, _)| a.starts_with("berth_data.x")).count(), 3, "{inputs:?}");
    assert_eq!(w.state(KEY)["serial"], 1);
    assert!(!w.lock_exists(), "the lock is released");
    assert!(w.keys(&format!("{KEY}.journal/")).is_empty(), "the journal is folded and removed");
    assert!(w.work.read("state/default.json").is_empty(), "nothing is written locally");

    w.run(&["apply", "--auto-approve", "--var", "who=b"]).assert_ok();
    assert_eq!(w.state(KEY)["serial"], 2);
    // The bucket has no versioning: berth keeps serial-numbered copies.
    let versions = w.keys(&format!("{KEY}.versions/"));
    assert_eq!(
        versions,
        [format!("{KEY}.versions/0000000001.json"), format!("{KEY}.versions/0000000002.json")],
        "{versions:?}"
    );
    let v1: serde_json::Value = serde_json::from_str(&w.get(&versions[0]).unwrap()).unwrap();
    assert_eq!(v1["resources"][0]["attributes"]["input"], "a-0");

    let pulled = w.run(&["state", "pull"]);
    pulled.assert_ok();
    let pulled: serde_json::Value = serde_json::from_str(&pulled.stdout).unwrap();
    assert_eq!(pulled, w.state(KEY));
    let r = w.run(&["plan", "--detailed-exitcode", "--var", "who=b"]);
    r.assert_ok();
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
}

#[test]
fn with_bucket_versioning_s3_keeps_the_versions() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let w = S3Work::new(THREE);
    let on = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    w.rt.block_on(w.s3.put_bucket_versioning().bucket(BUCKET).versioning_configuration(on).send()).unwrap();
    // moto answers GetBucketVersioning with a root element the SDK rejects,
    // so `init` cannot tell here; the writes themselves can (a version id).
    w.run(&["init"]).assert_ok();
    w.run(&["apply", "--auto-approve", "--var", "who=a"]).assert_ok();
    w.run(&["apply", "--auto-approve", "--var", "who=b"]).assert_ok();
    assert!(w.keys(&format!("{KEY}.versions/")).is_empty(), "no copies when S3 keeps versions");
    let out = w.rt.block_on(w.s3.list_object_versions().bucket(BUCKET).prefix(KEY).send()).unwrap();
    let state_versions = out.versions().iter().filter(|v| v.key() == Some(KEY)).count();
    assert_eq!(state_versions, 2);
}

/// Starts an apply, and a second one once the first holds the lock.
///
/// Not both at the same instant: moto checks `If-None-Match` and stores the
/// object in two steps, so two creates in the same few milliseconds can both
/// succeed there (S3 itself decides atomically). Started this way, the second
/// run still contends for a lock that is held, which is what is tested.
fn two_applies(w: &S3Work, extra: &[&str]) -> (Run, Run) {
    let args = |who: &'static str| {
        let mut a = vec!["apply", "--auto-approve", "--var", who];
        a.extend_from_slice(extra);
        a
    };
    let first = w.spawn(&args("who=a"));
    w.wait_for("the first apply to hold the lock", || w.lock_exists());
    let second = w.spawn(&args("who=b"));
    (finish(first), finish(second))
}

/// Two applies contend for the lock with no timeout: the second fails
/// naming the holder, and the state holds exactly the first one's work.
#[test]
fn concurrent_applies_one_fails_naming_the_holder_and_the_state_is_one_runs() {
    let w = S3Work::new(THREE);
    let (first, second) = two_applies(&w, &[]);
    first.assert_ok();
    assert!(first.stdout.contains("4 added, 0 changed, 0 destroyed"), "{}", first.stdout);
    second.assert_code(1);
    assert!(second.stderr.contains("is locked by"), "{}", second.stderr);
    assert!(second.stderr.contains("operation `apply`") && second.stderr.contains("berth force-unlock"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("s3://{BUCKET}/{KEY}")), "{}", second.stderr);
    let mut inputs: Vec<_> = w.inputs(KEY).into_iter().filter(|(a, _)| a.starts_with("berth_data")).collect();
    inputs.sort_by(|x, y| x.0.cmp(&y.0));
    let expected: Vec<_> =
        (0..3).map(|i| (format!("berth_data.x[{i}]"), serde_json::Value::String(format!("a-{i}")))).collect();
    assert_eq!(inputs, expected, "the state holds exactly the first run's work");
    assert_eq!(w.state(KEY)["serial"], 1);
    assert!(!w.lock_exists());
}

/// With `--lock-timeout` the second apply waits, then plans against the
/// first one's state: the state holds both runs' work, one after the other.
#[test]
fn concurrent_applies_with_lock_timeout_run_one_after_the_other() {
    let w = S3Work::new(THREE);
    let (first, second) = two_applies(&w, &["--lock-timeout", "60s"]);
    first.assert_ok();
    second.assert_ok();
    assert!(first.stdout.contains("4 added, 0 changed, 0 destroyed"), "{}", first.stdout);
    assert!(second.stdout.contains("3 changed"), "the second run saw the first one's objects:\n{}", second.stdout);
    let state = w.state(KEY);
    assert_eq!(state["serial"], 2);
    for (addr, input) in w.inputs(KEY).into_iter().filter(|(a, _)| a.starts_with("berth_data")) {
        assert!(input.as_str().unwrap().starts_with('b'), "{addr} = {input}");
    }
    assert_eq!(w.keys(&format!("{KEY}.versions/")).len(), 2);
}

const KILLABLE: &str = r#"
variable "slow" {
  type    = string
  default = "60s"
}
resource "berth_data" "fast" {
  count = 3
  input = "fast-${count.index}"
}
resource "berth_sleep" "slow" {
  create_duration = var.slow
}
"#;

#[test]
fn a_killed_apply_leaves_its_lock_which_is_reported_and_forced_open_and_loses_nothing() {
    let w = S3Work::new(KILLABLE);
    let mut child = w.spawn(&["apply", "--auto-approve"]);
    w.wait_for("the three fast objects in the journal", || w.journal_text().matches("\"op\":\"put\"").count() >= 3);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(w.lock_exists(), "SIGKILL gives no chance to release the lock");

    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("is locked by"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("pid {}", child.id())), "the holder is named: {}", r.stderr);
    assert!(r.stderr.contains("operation `apply`") && r.stderr.contains("ago"), "holder and age: {}", r.stderr);
    let id = lock_id(&r.stderr);

    let r = w.run(&["force-unlock", "not-the-id"]);
    r.assert_code(1);
    assert!(r.stderr.contains(&format!("whose id is `{id}`")), "{}", r.stderr);
    assert!(w.lock_exists());
    w.run(&["force-unlock", &id]).assert_ok();
    assert!(!w.lock_exists());

    // The journal tells the next run what completed.
    let listed = w.run(&["state", "list"]);
    listed.assert_ok();
    for i in 0..3 {
        assert!(listed.stdout.contains(&format!("berth_data.fast[{i}]")), "{}", listed.stdout);
    }
    let pulled: serde_json::Value = serde_json::from_str(&w.run(&["state", "pull"]).stdout).unwrap();
    let ids: Vec<String> = pulled["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["addr"].as_str().unwrap().starts_with("berth_data.fast"))
        .map(|r| r["attributes"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    let r = w.run(&["plan", "--detailed-exitcode", "--var", "slow=0s"]);
    r.assert_code(2);
    assert!(r.stdout.contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{}", r.stdout);

    w.run(&["apply", "--auto-approve", "--var", "slow=0s"]).assert_ok();
    let state = w.state(KEY);
    assert_eq!(state["resources"].as_array().unwrap().len(), 4);
    for id in &ids {
        assert!(state.to_string().contains(id.as_str()), "`{id}` kept its identity");
    }
    assert!(w.keys(&format!("{KEY}.journal/")).is_empty(), "the journal was folded");
    assert!(!w.lock_exists());
}

#[test]
fn errors_and_signals_release_the_lock_and_never_someone_elses() {
    let w = S3Work::new(
        r#"
variable "ok" {
  type    = bool
  default = true
}
variable "slow" {
  type    = string
  default = "0s"
}
resource "berth_data" "a" { input = "a" }
resource "berth_assert" "check" {
  condition = var.ok
  message   = "the check failed"
}
resource "berth_sleep" "slow" {
  create_duration = var.slow
  triggers        = { slow = var.slow }
}
"#,
    );
    // A failed apply.
    let r = w.run(&["apply", "--auto-approve", "--var", "ok=false"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the check failed"), "{}", r.stderr);
    assert!(!w.lock_exists(), "released after a failed apply");
    assert_eq!(w.inputs(KEY).iter().filter(|(a, _)| a == "berth_data.a").count(), 1, "what succeeded was kept");
    // A plan that fails after taking the lock.
    let r = w.run(&["plan", "--var", "ok=notabool"]);
    r.assert_code(1);
    assert!(!w.lock_exists(), "released after a failed plan");

    // SIGTERM in the middle of an apply: stopped at once, lock released.
    let child = w.spawn(&["apply", "--auto-approve", "--var", "slow=60s"]);
    w.wait_for("the sleep to start", || w.journal_text().contains("berth_sleep.slow"));
    let started = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let r = finish(child);
    assert!(started.elapsed() < Duration::from_secs(20), "stopped promptly");
    r.assert_code(143);
    assert!(r.stderr.contains("Released the state lock"), "{}", r.stderr);
    assert!(!w.lock_exists(), "released on SIGTERM");

    // Ctrl-C in the walk: the sleep in flight finishes and is recorded.
    let pending = || w.journal_text().matches("\"op\":\"pending\"").count();
    let before = pending();
    let child = w.spawn(&["apply", "--auto-approve", "--var", "slow=3s"]);
    w.wait_for("the sleep to start", || pending() > before);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let r = finish(child);
    r.assert_code(1);
    assert!(r.stderr.contains("Interrupt received"), "{}", r.stderr);
    assert!(!w.lock_exists(), "released after a graceful Ctrl-C");
    assert!(w.inputs(KEY).iter().any(|(a, _)| a == "berth_sleep.slow"), "the operation in flight was recorded");

    // Someone else holds the lock: a waiting run stopped by Ctrl-C leaves it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = S3Backend::with_client(settings(), "default", client(&w.moto.endpoint));
    let held = rt.block_on(other.lock("apply", Duration::ZERO)).unwrap();
    let child = w.spawn(&["plan", "--lock-timeout", "60s"]);
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let r = finish(child);
    r.assert_code(130);
    assert!(!r.stderr.contains("Released the state lock"), "{}", r.stderr);
    let holder = rt.block_on(other.lock_holder()).unwrap().expect("still locked");
    assert_eq!(holder.id, held.id, "the other run's lock is untouched");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains(&held.id), "{}", r.stderr);
    rt.block_on(other.unlock(&held)).unwrap();
    assert!(!w.lock_exists());
}

#[test]
fn state_push_refuses_an_older_serial_or_another_lineage_without_force() {
    let w = S3Work::new(THREE.replace("2s", "0s").as_str());
    w.run(&["apply", "--auto-approve", "--var", "who=a"]).assert_ok();
    w.run(&["apply", "--auto-approve", "--var", "who=b"]).assert_ok();
    let v1 = w.get(&format!("{KEY}.versions/0000000001.json")).unwrap();
    w.work.write("v1.json", &v1);

    let r = w.run(&["state", "push", "v1.json"]);
    r.assert_code(1);
    assert!(r.stderr.contains("serial 1, older than serial 2"), "{}", r.stderr);
    assert_eq!(w.state(KEY)["serial"], 2, "nothing was pushed");

    let mut other: serde_json::Value = serde_json::from_str(&v1).unwrap();
    other["lineage"] = "another-lineage".into();
    other["serial"] = 7.into();
    w.work.write("other.json", &other.to_string());
    let r = w.run(&["state", "push", "other.json"]);
    r.assert_code(1);
    assert!(r.stderr.contains("lineage `another-lineage`"), "{}", r.stderr);

    // Pulling and pushing back the same state changes nothing.
    let current = w.run(&["state", "pull"]).stdout;
    w.work.write("current.json", &current);
    let r = w.run(&["state", "push", "current.json"]);
    r.assert_ok();
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);

    // Forced, the old version comes back with a serial that moves forward.
    w.run(&["state", "push", "--force", "v1.json"]).assert_ok();
    let state = w.state(KEY);
    assert_eq!(state["serial"], 3);
    assert_eq!(state["resources"][0]["attributes"]["input"], "a-0");
    assert_eq!(w.keys(&format!("{KEY}.versions/")).len(), 3, "the replaced version is kept");
    let r = w.run(&["state", "push", "-"]);
    r.assert_code(1);
}

#[test]
fn workspaces_keep_one_state_each_in_s3() {
    let w = S3Work::new(
        r#"
resource "berth_data" "env" { input = terraform.workspace }
"#,
    );
    w.run(&["apply", "--auto-approve"]).assert_ok();
    w.run(&["workspace", "new", "staging"]).assert_ok();
    let staging_key = format!("env:/staging/{KEY}");
    assert_eq!(w.state(&staging_key)["resources"].as_array().unwrap().len(), 0);
    w.run(&["apply", "--auto-approve"]).assert_ok();
    assert_eq!(w.inputs(&staging_key), [("berth_data.env".to_string(), serde_json::json!("staging"))]);
    assert_eq!(w.inputs(KEY), [("berth_data.env".to_string(), serde_json::json!("default"))]);

    let r = w.run(&["workspace", "list"]);
    r.assert_ok();
    assert_eq!(r.stdout, "  default\n* staging\n");
    let r = w.run(&["workspace", "new", "staging"]);
    r.assert_code(1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);

    // BERTH_WORKSPACE wins over the selection.
    let out: Run = w.cmd(&["state", "show", "berth_data.env"]).env("BERTH_WORKSPACE", "default").output().unwrap().into();
    assert!(out.stdout.contains("default") && !out.stdout.contains("staging"), "{}", out.stdout);

    let r = w.run(&["workspace", "delete", "staging"]);
    r.assert_code(1);
    assert!(r.stderr.contains("is selected"), "{}", r.stderr);
    w.run(&["workspace", "select", "default"]).assert_ok();
    let r = w.run(&["workspace", "delete", "staging"]);
    r.assert_code(1);
    assert!(r.stderr.contains("still manages 1 object(s)"), "{}", r.stderr);
    w.run(&["workspace", "delete", "--force", "staging"]).assert_ok();
    assert!(w.get(&staging_key).is_none());
    assert!(w.get(&format!("{staging_key}.lock")).is_none());
    assert_eq!(w.run(&["workspace", "list"]).stdout, "* default\n");
}

#[test]
fn init_migrate_state_moves_every_workspace_and_resource() {
    let w = S3Work::new(
        r#"
resource "berth_data" "a" {
  count = 4
  input = "${terraform.workspace}-${count.index}"
}
output "first" { value = berth_data.a[0].output }
"#,
    );
    // Start local: no backend block yet.
    let backend = w.work.read("backend.hcl");
    std::fs::remove_file(w.work.path().join("backend.hcl")).unwrap();
    let local_run = |args: &[&str], ws: &str| -> Run {
        w.work.cmd(args).env("BERTH_WORKSPACE", ws).output().unwrap().into()
    };
    local_run(&["apply", "--auto-approve"], "default").assert_ok();
    local_run(&["apply", "--auto-approve"], "staging").assert_ok();
    let local_default = w.work.read("state/default.json");
    let local_staging = w.work.read("state/staging.json");
    assert!(!local_default.is_empty() && !local_staging.is_empty());

    w.work.write("backend.hcl", &backend);
    let r = w.run(&["init"]);
    r.assert_ok();
    assert!(r.stderr.contains("--migrate-state"), "{}", r.stderr);
    let r = w.run(&["init", "--migrate-state"]);
    r.assert_ok();
    assert!(r.stderr.contains("Moved workspace `default` (4 object(s)"), "{}", r.stderr);
    assert!(r.stderr.contains("Moved workspace `staging` (4 object(s)"), "{}", r.stderr);

    let norm = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v.as_object_mut().unwrap().remove("berth_version");
        v
    };
    assert_eq!(norm(&w.get(KEY).unwrap()), norm(&local_default), "the default state moved as it was");
    assert_eq!(norm(&w.get(&format!("env:/staging/{KEY}")).unwrap()), norm(&local_staging));
    assert!(!w.work.path().join("state/default.json").exists(), "the local copy is retired");
    assert!(w.work.path().join("state/default.json.migrated").exists());

    let r = w.run(&["plan", "--detailed-exitcode"]);
    r.assert_ok();
    assert!(r.stdout.contains("No changes"), "{}", r.stdout);
    let r: Run = w.cmd(&["output", "--raw", "first"]).env("BERTH_WORKSPACE", "staging").output().unwrap().into();
    assert_eq!(r.stdout.trim(), "staging-0");
    // A second migration finds nothing left to move.
    let r = w.run(&["init", "--migrate-state"]);
    r.assert_ok();
    assert!(r.stderr.contains("nothing to migrate"), "{}", r.stderr);
}

#[test]
fn backend_settings_errors_name_the_setting() {
    let w = Work::new();
    w.write("main.hcl", "berth {\n  backend \"s3\" {\n    key = \"k\"\n    colour = \"blue\"\n  }\n}\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("unsupported argument `colour` in the s3 backend"), "{}", r.stderr);
    w.write("main.hcl", "berth {\n  backend \"s3\" {\n    key = \"k\"\n  }\n}\n");
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the s3 backend needs `bucket`"), "{}", r.stderr);
    let r = w.run(&["plan", "--backend-config", "buckett=x"]);
    r.assert_code(1);
    assert!(r.stderr.contains("unknown setting `buckett`"), "{}", r.stderr);
    // Without `=`, as in Terraform, the value names a file of settings.
    let r = w.run(&["plan", "--backend-config", "novalue"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`--backend-config novalue`: no such file"), "{}", r.stderr);
    assert!(r.stderr.contains("KEY=VALUE"), "{}", r.stderr);
}

// The backend's own calls, without the binary.

fn resource(n: usize) -> ResourceState {
    ResourceState {
        addr: format!("berth_data.n[{n}]").parse().unwrap(),
        deposed: None,
        provider: "berth".into(),
        attributes: obj([("id", Value::str(format!("n-{n}")))]),
        sensitive: Vec::new(),
        dependencies: Vec::new(),
        tainted: false,
        create_before_destroy: false,
        generation: 1,
        imported: false,
        drain: None,
    }
}

fn put(n: usize) -> JournalEntry {
    JournalEntry::Put(Box::new(resource(n)))
}

struct Lib {
    moto: Moto,
    client: Client,
}

impl Lib {
    async fn start() -> Lib {
        let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
        let client = client(&moto.endpoint);
        client.create_bucket().bucket(BUCKET).send().await.unwrap();
        Lib { moto, client }
    }

    fn backend(&self) -> S3Backend {
        S3Backend::with_client(settings(), "default", self.client.clone())
    }

    async fn journal_keys(&self) -> Vec<String> {
        let out = self.client.list_objects_v2().bucket(BUCKET).prefix(format!("{KEY}.journal/")).send().await.unwrap();
        out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_writer_is_refused_and_nothing_is_overwritten() {
    let lib = Lib::start().await;
    let (a, b) = (lib.backend(), lib.backend());
    let mut s = State::new();
    s.put(resource(0));
    a.write(&s).await.unwrap();

    let mut seen_by_a = a.load().await.unwrap().unwrap();
    let mut seen_by_b = b.load().await.unwrap().unwrap();
    seen_by_b.put(resource(1));
    seen_by_b.serial += 1;
    b.write(&seen_by_b).await.unwrap();

    seen_by_a.put(resource(2));
    seen_by_a.serial += 1;
    let e = a.write(&seen_by_a).await.unwrap_err().to_string();
    assert!(e.contains("changed since this run read it") && e.contains("nothing was overwritten"), "{e}");
    assert_eq!(lib.backend().load().await.unwrap(), Some(seen_by_b.clone()));

    // A writer that never read cannot create over an existing state.
    let blind = lib.backend();
    assert!(blind.write(&State::new()).await.unwrap_err().to_string().contains("changed since"));
    // Having read the new version, the same writer may write.
    let fresh = a.load().await.unwrap().unwrap();
    a.write(&State { serial: fresh.serial + 1, ..fresh }).await.unwrap();
    drop(lib.moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_is_replayed_continued_and_folded() {
    let lib = Lib::start().await;
    let first = lib.backend();
    assert_eq!(first.load().await.unwrap(), None);
    let lineage = "L-1".to_string();
    let begin = JournalEntry::Begin { lineage: lineage.clone(), serial: 0 };
    first.append(&[begin.clone(), put(0)]).await.unwrap();
    first.append(&[put(1)]).await.unwrap();
    drop(first); // killed before writing the state

    let second = lib.backend();
    let loaded = second.load().await.unwrap().expect("the journal alone makes a state");
    assert_eq!((loaded.lineage.as_str(), loaded.serial, loaded.resources.len()), ("L-1", 0, 2));
    assert!(second.found_journal(), "a run without changes must still write this state");
    // The next run continues that journal.
    second.append(&[begin.clone(), put(2)]).await.unwrap();
    let keys = lib.journal_keys().await;
    assert_eq!(
        keys,
        ["00000000", "00000001", "00000002"].map(|s| format!("{KEY}.journal/0000000000/{s}.json")),
        "one object per append, in order"
    );
    let third = lib.backend();
    let state = third.load().await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 3);

    // A journal for another state is stale: ignored, then discarded.
    second.write(&State { serial: 1, ..state.clone() }).await.unwrap();
    assert!(lib.journal_keys().await.is_empty(), "the write folded the journal");
    let stale = lib.backend();
    stale.append(&[JournalEntry::Begin { lineage: "other".into(), serial: 9 }, put(7)]).await.unwrap();
    let now = lib.backend();
    let loaded = now.load().await.unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 3, "the stale journal is not replayed");
    assert!(now.found_journal(), "a stale journal is garbage a write clears");
    now.append(&[JournalEntry::Begin { lineage: "L-1".into(), serial: 1 }, put(3)]).await.unwrap();
    assert_eq!(lib.journal_keys().await, [format!("{KEY}.journal/0000000001/00000000.json")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_exclude_wait_and_name_their_holder() {
    let lib = Lib::start().await;
    let (a, b) = (lib.backend(), lib.backend());
    let held = a.lock("apply", Duration::ZERO).await.unwrap();
    let e = b.lock("plan", Duration::ZERO).await.unwrap_err().to_string();
    assert!(e.contains(&format!("lock id `{}`", held.id)) && e.contains("operation `apply`"), "{e}");
    assert_eq!(b.lock_holder().await.unwrap(), Some(held.clone()));

    // A waiter gets the lock once the holder lets go.
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let info = b.lock("plan", Duration::from_secs(30)).await.unwrap();
        (b, info, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.unlock(&held).await.unwrap();
    let (b, info, waited) = waiter.await.unwrap();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert_eq!(a.lock_holder().await.unwrap().map(|h| h.id), Some(info.id.clone()));

    // Forced open under its holder: the holder's release leaves the new lock alone.
    a.force_unlock(&info.id).await.unwrap();
    let c = lib.backend();
    let third = c.lock("apply", Duration::ZERO).await.unwrap();
    b.unlock(&info).await.unwrap();
    assert_eq!(a.lock_holder().await.unwrap().map(|h| h.id), Some(third.id.clone()));
    c.unlock(&third).await.unwrap();
    assert_eq!(a.lock_holder().await.unwrap(), None);
    assert!(a.force_unlock("x").await.unwrap_err().to_string().contains("no lock held"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_write_whose_answer_was_lost_is_recognised_as_its_own() {
    use support::faultproxy::{Call, Fault, FaultProxy, Faults, LandThenDrop};
    let lib = Lib::start().await;
    // The PUT of the state object reaches S3, and its answer is dropped:
    // the SDK's retry meets the object its first attempt wrote, and its
    // condition (`If-None-Match: *`, then `If-Match` on the old ETag) fails.
    let state_put =
        |c: &Call| c.method == "PUT" && c.path.split('?').next() == Some(format!("/{BUCKET}/{KEY}").as_str());
    let faults = Faults::none().with_land_then_drop(LandThenDrop::new(2, state_put));
    let proxy = tokio::task::spawn_blocking({
        let upstream = lib.moto.endpoint.clone();
        move || FaultProxy::start(&upstream, faults)
    })
    .await
    .unwrap();
    let b = S3Backend::with_client(settings(), "default", client(&proxy.endpoint));
    let mut s = State::new();
    s.put(resource(0));
    b.write(&s).await.expect("the first write (If-None-Match) is recognised");
    s.serial += 1;
    s.put(resource(1));
    b.write(&s).await.expect("the next write (If-Match) is recognised");
    assert_eq!(proxy.stats().count(Fault::Landed), 2, "both answers were lost");
    assert_eq!(lib.backend().load().await.unwrap(), Some(s.clone()));

    // Another writer's state is still refused: the content differs.
    let other = lib.backend();
    let mut theirs = other.load().await.unwrap().unwrap();
    theirs.serial += 1;
    theirs.put(resource(2));
    other.write(&theirs).await.unwrap();
    s.serial += 1;
    let e = b.write(&s).await.unwrap_err().to_string();
    assert!(e.contains("changed since this run read it"), "{e}");
    drop(proxy);
}

/// A Terraform configuration's `terraform {}` block: its `backend "s3"`
/// is berth's S3 backend; `encrypt` writes with SSE, `dynamodb_table` is
/// explained; `-backend-config=FILE` fills in what the block leaves out.
#[test]
fn terraform_block_backend_with_a_backend_config_file() {
    let w = S3Work::new("resource \"terraform_data\" \"a\" { input = \"x\" }\n");
    std::fs::remove_file(w.work.path().join("backend.hcl")).expect("remove backend.hcl");
    w.work.write(
        "versions.tf",
        r#"
terraform {
  required_version = ">= 1.5, < 2.0"
  required_providers {
    null = { source = "hashicorp/null", version = "~> 3.2" }
  }
  backend "s3" {
    key            = "app/state.json"
    region         = "us-east-1"
    encrypt        = true
    use_lockfile   = true
    dynamodb_table = "tf-locks"
  }
}
"#,
    );
    w.work.write("prod.s3.tfbackend", "bucket = \"berth-state\"\n");
    let r = w.run(&["apply", "-auto-approve", "-backend-config=prod.s3.tfbackend"]);
    r.assert_ok();
    assert!(r.stderr.contains("`dynamodb_table = \"tf-locks\"` is not used"), "{}", r.stderr);
    assert!(r.stderr.contains("conditional"), "{}", r.stderr);
    assert_eq!(w.inputs(KEY), [("terraform_data.a".to_string(), serde_json::json!("x"))]);
    let head = w.rt.block_on(w.s3.head_object().bucket(BUCKET).key(KEY).send()).expect("head the state");
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("AES256"));
    // The lock is gone once the run ends.
    assert!(w.keys(&format!("{KEY}.lock")).is_empty());
    // Without the file, the bucket is missing, and the message says how to give it.
    let r = w.run(&["plan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("needs `bucket`"), "{}", r.stderr);
}

/// The watcher's ledger lives beside the state in S3 (`KEY.watch`), and its
/// writes are conditional: a writer holding an old version loses, and
/// `ledger::update` redoes its change on the fresh one.
#[tokio::test(flavor = "multi_thread")]
async fn the_watch_ledger_lives_beside_the_state_and_refuses_stale_writes() {
    use berth::watch::ledger;
    let lib = Lib::start().await;
    let (a, b) = (lib.backend(), lib.backend());
    let (fresh, none) = ledger::load(&a).await.unwrap();
    assert!(none.is_none());
    ledger::update(&a, |l| l.errors = 1).await.unwrap();
    let (_, v1) = ledger::load(&b).await.unwrap();
    assert!(!ledger::save(&b, &fresh, None).await.unwrap(), "a create over an existing ledger is refused");
    ledger::update(&a, |l| l.errors += 1).await.unwrap();
    assert!(!ledger::save(&b, &fresh, v1.as_deref()).await.unwrap(), "a stale version is refused");
    ledger::update(&b, |l| l.errors += 1).await.unwrap();
    assert_eq!(ledger::load(&a).await.unwrap().0.errors, 3);
    let keys = lib.client.list_objects_v2().bucket(BUCKET).prefix(KEY).send().await.unwrap();
    let keys: Vec<&str> = keys.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&format!("{KEY}.watch").as_str()), "{keys:?}");
    assert_eq!(a.workspaces().await.unwrap(), ["default"], "the ledger is no workspace");
    drop(lib.moto);
}
