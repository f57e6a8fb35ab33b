//! The CI examples of `examples/ci/` (issue #20): the workflow files checked
//! against GitHub's and GitLab's own schemas (and a broken copy shown to fail
//! the same check), and the berth commands they run exercised for real on
//! moto behind the strict AWS layer, with the state in moto's S3 as in CI:
//! the pull-request plan (saved plan, Markdown comment, step summary), the
//! apply of the reviewed plan on merge and the refusal of a stale one
//! (`scripts/apply-merged`), the drift check, and two pull-request
//! environments side by side, one torn down without touching the other.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::aws::Aws;
use support::cli::{Run, Work};

const BUCKET: &str = "acme-berth-state";

fn examples() -> PathBuf {
    support::venv::repo_root().join("examples/ci")
}

/// `check-jsonschema --builtin-schema SCHEMA FILE`.
fn schema_check(schema: &str, file: &Path) -> Run {
    Command::new(support::venv::check_jsonschema())
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("run check-jsonschema")
        .into()
}

fn workflows() -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(examples().join("github")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            out.push((p, "vendor.github-workflows"));
        }
    }
    out.sort();
    assert_eq!(out.len(), 4, "plan, apply, drift, PR environment: {out:?}");
    out.push((examples().join("gitlab/.gitlab-ci.yml"), "vendor.gitlab-ci"));
    out
}

#[test]
fn every_workflow_validates_against_its_schema() {
    for (file, schema) in workflows() {
        let r = schema_check(schema, &file);
        assert_eq!(r.code, 0, "{} does not validate:\n{}{}", file.display(), r.stdout, r.stderr);
        assert!(r.stdout.contains("ok -- validation done"), "{}", r.stdout);
    }
}

/// The check above could pass for the wrong reason (a schema that accepts
/// anything, a tool that exits 0): a broken copy of each file must fail it.
#[test]
fn a_broken_workflow_is_rejected() {
    let w = Work::new();
    let github = std::fs::read_to_string(examples().join("github/berth-plan.yml")).unwrap();
    assert!(github.contains("    runs-on: ubuntu-latest\n"));
    w.write("github.yml", &github.replace("    runs-on: ubuntu-latest\n", "    runs-on: ubuntu-latest\n    timeout-minutes: soon\n"));
    let r = schema_check("vendor.github-workflows", &w.path().join("github.yml"));
    assert_eq!(r.code, 1, "a job with `timeout-minutes: soon` passed:\n{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("timeout-minutes"), "{}", r.stdout);

    // The mistake YAML invites in a GitLab script: `KEY: value` in an
    // unquoted line is a mapping, not a command.
    let gitlab = std::fs::read_to_string(examples().join("gitlab/.gitlab-ci.yml")).unwrap();
    let quoted = r#"  - 'auth="PRIVATE-TOKEN: $GITLAB_API_TOKEN"'"#;
    assert!(gitlab.contains(quoted));
    w.write("gitlab.yml", &gitlab.replace(quoted, r#"  - auth="PRIVATE-TOKEN: $GITLAB_API_TOKEN""#));
    let r = schema_check("vendor.gitlab-ci", &w.path().join("gitlab.yml"));
    assert_eq!(r.code, 1, "a script line that is a mapping passed:\n{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is not of type 'string'"), "{}", r.stdout);
}

/// Every shell snippet of the workflows (`run:` steps, GitLab `script:`
/// lines) and `scripts/apply-merged` parse as bash, and the JavaScript of
/// the `actions/github-script` step parses under node (as the action runs it,
/// in an async function). The snippets are pulled out with the venv's
/// PyYAML, as the runners read them.
#[test]
fn every_shell_and_script_snippet_parses() {
    let extract = r#"
import sys, yaml
def flat(x, lines):
    if isinstance(x, list):
        for y in x: flat(y, lines)
    else:
        lines.append(x)
def walk(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "run" and isinstance(v, str):
                out.append("sh\n" + v)
            elif k == "with" and isinstance(v, dict):
                if "script" in v:
                    out.append("js\n" + v["script"])
            elif k in ("script", "before_script", "after_script"):
                lines = []
                flat(v, lines)
                out.append("sh\n" + "\n".join(lines))
            else:
                walk(v, out)
    elif isinstance(node, list):
        for v in node:
            walk(v, out)
out = []
walk(yaml.safe_load(open(sys.argv[1])), out)
print("\n#--8<--\n".join(out))
"#;
    let python = support::venv::venv_bin().join("python");
    let (mut shell, mut js) = (0, 0);
    for (file, _) in workflows() {
        let out = Command::new(&python).args(["-c", extract]).arg(&file).output().expect("run python");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for snippet in String::from_utf8(out.stdout).unwrap().split("\n#--8<--\n") {
            let (kind, code) = snippet.split_once('\n').unwrap();
            let r: Run = if kind == "js" {
                js += 1;
                let w = Work::new();
                w.write("step.js", &format!("(async () => {{\n{code}\n}})();\n"));
                Command::new("node").arg("--check").arg(w.path().join("step.js")).output().expect("run node").into()
            } else {
                shell += 1;
                Command::new("bash").args(["-n", "-c", code]).output().unwrap().into()
            };
            assert_eq!(r.code, 0, "{}: this {kind} snippet does not parse:\n{code}\n{}", file.display(), r.stderr);
        }
    }
    assert!(shell >= 20, "only {shell} shell snippets found");
    assert_eq!(js, 1, "the comment step");
    let r: Run = Command::new("bash").arg("-n").arg(examples().join("scripts/apply-merged")).output().unwrap().into();
    r.assert_ok();
}

/// A working copy of `examples/ci` as a team lays it out: the configuration
/// in `infra/`, the apply script in `ci/`, and a bucket for the state.
struct Repo {
    work: Work,
    aws: Aws,
}

impl Repo {
    async fn new() -> Repo {
        let work = Work::new();
        let src = examples().join("infra");
        for e in std::fs::read_dir(&src).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap();
            work.write(&format!("infra/{name}"), &std::fs::read_to_string(&p).unwrap());
        }
        work.write("ci/apply-merged", &std::fs::read_to_string(examples().join("scripts/apply-merged")).unwrap());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path().join("ci/apply-merged"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let aws = Aws::start();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&aws.moto_sdk_config().await).force_path_style(true).build(),
        );
        s3.create_bucket().bucket(BUCKET).send().await.expect("create the state bucket");
        Repo { work, aws }
    }

    fn infra(&self) -> PathBuf {
        self.work.path().join("infra")
    }

    /// What a CI job's environment gives berth: credentials, the endpoint
    /// (moto, through the variable the configuration declares for it), the
    /// workspace; berth itself on PATH for the scripts.
    fn env(&self, c: &mut Command, workspace: Option<&str>) {
        let bin_dir = support::cli::bin().parent().unwrap().to_path_buf();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        c.current_dir(self.infra())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env("BERTH_VAR_aws_endpoint", &self.aws.endpoint)
            // The strict layer has no S3 rules: the state goes to moto itself.
            .env("AWS_ENDPOINT_URL_S3", &self.aws.moto_endpoint)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("BERTH_ON_STALE");
        match workspace {
            Some(ws) => c.env("BERTH_WORKSPACE", ws),
            None => c.env_remove("BERTH_WORKSPACE"),
        };
    }

    fn berth_in(&self, workspace: Option<&str>, args: &[&str]) -> Run {
        let mut c = self.work.cmd(args);
        self.env(&mut c, workspace);
        c.output().expect("run berth").into()
    }

    fn berth(&self, args: &[&str]) -> Run {
        self.berth_in(None, args)
    }

    /// A step's shell script, run in `infra/` as the workflows run it.
    fn sh(&self, script: &str, extra: &[(&str, &str)]) -> Run {
        let mut c = Command::new("bash");
        c.args(["-c", script]);
        self.env(&mut c, None);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("run bash").into()
    }

    fn state_pull(&self, workspace: Option<&str>) -> String {
        let r = self.berth_in(workspace, &["state", "pull"]);
        r.assert_ok();
        r.stdout
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.infra().join(name)).unwrap_or_default()
    }
}

fn serial(state: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(state).unwrap()["serial"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_plan_apply_on_merge_stale_plans_and_drift() {
    let repo = Repo::new().await;

    // berth-plan.yml: one plan, saved and rendered as the comment, with the
    // step summary written on GitHub Actions.
    let summary = repo.work.path().join("step-summary.md");
    let r = repo.sh(
        "berth plan -out=plan.berthplan --format markdown --lock-timeout 5m > plan.md",
        &[("GITHUB_ACTIONS", "true"), ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    r.assert_ok();
    let md = repo.read("plan.md");
    assert_eq!(md.lines().next(), Some("<!-- berth-plan workspace=default -->"), "the marker the comment step finds:\n{md}");
    assert!(md.contains("**Plan: 9 to add, 0 to change, 0 to destroy.**"), "{md}");
    assert!(md.contains("config/deploy.production.yml"), "the Kamal destination's diff:\n{md}");
    assert!(md.chars().count() <= 65_536, "{} characters", md.chars().count());
    let summary = std::fs::read_to_string(&summary).expect("the step summary was written");
    assert!(summary.contains("**Plan: 9 to add, 0 to change, 0 to destroy.**"), "{summary}");
    let shown = repo.berth(&["show", "--format", "markdown", "plan.berthplan"]);
    shown.assert_ok();
    assert_eq!(shown.stdout, md, "`show` renders the saved plan as `plan` did");
    // A second plan of the same moment: stale once the first is applied.
    repo.berth(&["plan", "-out=stale.berthplan"]).assert_ok();

    // berth-apply.yml: the reviewed plan applied as it is.
    let r = repo.sh("../ci/apply-merged plan.berthplan", &[]);
    r.assert_ok();
    assert!(r.stdout.contains("Apply complete! Resources: 9 added"), "{}", r.stdout);
    assert!(!r.stderr.contains("planning again"), "{}", r.stderr);
    let kamal = repo.read("config/deploy.production.yml");
    assert!(kamal.contains("servers:") && kamal.contains("web:"), "{kamal}");
    let applied = repo.state_pull(None);

    // A stale plan is refused, and nothing changes.
    let r = repo.berth(&["apply", "stale.berthplan"]);
    r.assert_code(1);
    assert!(r.stderr.contains("the saved plan is stale"), "{}", r.stderr);
    assert_eq!(repo.state_pull(None), applied);
    let r = repo.sh("../ci/apply-merged stale.berthplan", &[("BERTH_ON_STALE", "fail")]);
    r.assert_code(1);
    assert!(r.stderr.contains("stale and BERTH_ON_STALE=fail: nothing was applied"), "{}", r.stderr);
    assert_eq!(repo.state_pull(None), applied);

    // With the default policy the merged configuration (main moved: one
    // more resource) is planned again and applied.
    repo.work.write("infra/release.hcl", "resource \"berth_data\" \"release\" {\n  input = \"merged\"\n}\n");
    let r = repo.sh("../ci/apply-merged stale.berthplan", &[]);
    r.assert_ok();
    assert!(r.stderr.contains("The reviewed plan is stale: planning again"), "{}", r.stderr);
    assert!(r.stdout.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."), "{}", r.stdout);
    let after = repo.state_pull(None);
    assert!(serial(&after) > serial(&applied));
    assert!(after.contains("berth_data.release"), "{after}");

    // An apply that fails for another reason is not retried as a replan.
    repo.work.write("broken.berthplan", "not a plan");
    let r = repo.sh("../ci/apply-merged ../broken.berthplan", &[]);
    r.assert_code(1);
    assert!(!r.stderr.contains("planning again"), "{}", r.stderr);
    assert_eq!(repo.state_pull(None), after);

    // berth-drift.yml: 0 while nothing drifted, 2 once a host is
    // terminated outside berth.
    repo.berth(&["plan", "--detailed-exitcode"]).assert_code(0);
    let state: serde_json::Value = serde_json::from_str(&after).unwrap();
    let host = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == "aws_instance.web")
        .and_then(|r| r["attributes"]["id"].as_str())
        .unwrap()
        .to_string();
    let ec2 = aws_sdk_ec2::Client::new(&repo.aws.sdk_config().await);
    ec2.terminate_instances().instance_ids(&host).send().await.unwrap();
    let r = repo.sh(
        r#"set +e; berth plan --detailed-exitcode --format markdown --lock-timeout 10m > drift.md; code=$?; set -e
           echo "exitcode=$code"; [ "$code" = 0 ] || [ "$code" = 2 ]"#,
        &[],
    );
    r.assert_ok();
    assert!(r.stdout.contains("exitcode=2"), "{}\n{}", r.stdout, r.stderr);
    let drift = repo.read("drift.md");
    assert!(drift.contains("aws_instance.web") && drift.contains("1 to add"), "{drift}");
    assert_eq!(repo.state_pull(None), after, "the drift check changes nothing");
}

/// The live VPCs tagged `env = ENV` (the provider's `default_tags`).
async fn vpcs_of(ec2: &aws_sdk_ec2::Client, env: &str) -> Vec<String> {
    let out = ec2
        .describe_vpcs()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:env").values(env).build())
        .send()
        .await
        .unwrap();
    out.vpcs().iter().filter_map(|v| v.vpc_id().map(str::to_string)).collect()
}

async fn zone_names(route53: &aws_sdk_route53::Client) -> Vec<String> {
    let out = route53.list_hosted_zones().send().await.unwrap();
    let mut names: Vec<String> = out.hosted_zones().iter().map(|z| z.name().to_string()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_request_environments_live_side_by_side_and_go_alone() {
    let repo = Repo::new().await;
    let moto = repo.aws.moto_sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&moto);
    let route53 = aws_sdk_route53::Client::new(&moto);

    // berth-pr-env.yml on two pull requests: same configuration, same
    // account, one workspace each.
    for ws in ["pr-1", "pr-2"] {
        let r = repo.berth_in(Some(ws), &["apply", "--auto-approve", "--lock-timeout", "5m"]);
        r.assert_ok();
        assert!(r.stdout.contains("Apply complete! Resources: 9 added"), "{ws}: {}", r.stdout);
    }
    let k1 = repo.read("config/deploy.pr-1.yml");
    let k2 = repo.read("config/deploy.pr-2.yml");
    assert!(k1.contains("servers:") && k2.contains("servers:"), "{k1}\n{k2}");
    assert_ne!(k1, k2, "each destination names its own host");
    assert!(!repo.infra().join("config/deploy.production.yml").exists());
    assert_eq!(zone_names(&route53).await, ["pr-1.internal.", "pr-2.internal."]);
    assert_eq!(vpcs_of(&ec2, "pr-1").await.len(), 1);
    assert_eq!(vpcs_of(&ec2, "pr-2").await.len(), 1);
    for ws in ["pr-1", "pr-2"] {
        let r = repo.berth_in(Some(ws), &["output", "--raw", "web_dns_name"]);
        r.assert_ok();
        assert_eq!(r.stdout.trim_end_matches('.').trim(), format!("web.{ws}.internal"));
        repo.berth_in(Some(ws), &["plan", "--detailed-exitcode"]).assert_code(0);
    }
    let pr2_state = repo.state_pull(Some("pr-2"));
    let list = repo.berth(&["workspace", "list"]);
    assert_eq!(list.stdout, "* default\n  pr-1\n  pr-2\n");

    // Closed: destroy, then delete the workspace from the default one.
    let r = repo.berth_in(Some("pr-1"), &["destroy", "--auto-approve", "--lock-timeout", "5m"]);
    r.assert_ok();
    assert!(r.stdout.contains("Destroy complete! Resources: 0 added, 0 changed, 9 destroyed."), "{}", r.stdout);
    let r = repo.sh(r#"BERTH_WORKSPACE=default berth workspace delete "pr-1""#, &[]);
    r.assert_ok();
    assert_eq!(repo.berth(&["workspace", "list"]).stdout, "* default\n  pr-2\n");

    // pr-2 is untouched: its objects, its state, its destination, no drift.
    assert!(vpcs_of(&ec2, "pr-1").await.is_empty());
    assert_eq!(vpcs_of(&ec2, "pr-2").await.len(), 1);
    assert_eq!(zone_names(&route53).await, ["pr-2.internal."]);
    assert_eq!(repo.state_pull(Some("pr-2")), pr2_state);
    assert_eq!(repo.read("config/deploy.pr-2.yml"), k2);
    repo.berth_in(Some("pr-2"), &["plan", "--detailed-exitcode"]).assert_code(0);
}
