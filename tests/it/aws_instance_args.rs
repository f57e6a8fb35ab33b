//! The `aws_instance` arguments real configurations use, changed on a
//! running host through the real `berth` binary against moto behind the
//! strict AWS layer: what updates in place does (the same instance, AWS
//! showing the new value, a no-op plan after), and what must replace the
//! host does.


use aws_sdk_ec2::types::InstanceAttributeName;
use crate::support::aws::Aws;
use crate::support::cli::{Run, Work};

const AMI: &str = r#"
provider "aws" {
  region = "us-east-1"
}

data "aws_ami" "base" {
  owners      = ["137112412989"]
  most_recent = true
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.60.0.0/16"
}

resource "aws_subnet" "hosts" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.60.1.0/24"
  availability_zone = "us-east-1a"
}
"#;

/// A host whose every in-place argument is set by `vars`.
fn host(v: &Vars) -> String {
    format!(
        r#"{AMI}
resource "aws_instance" "app" {{
  ami                     = data.aws_ami.base.id
  instance_type           = "t3.micro"
  subnet_id               = aws_subnet.hosts.id
  iam_instance_profile    = "{profile}"
  source_dest_check       = {sdc}
  secondary_private_ips   = [{secondary}]
  user_data               = "{user_data}"
  disable_api_termination = {protected}

  metadata_options {{
    http_tokens = "{tokens}"
  }}

  root_block_device {{
    volume_size = {size}
  }}

  volume_tags = {{
    Backup = "{backup}"
  }}
}}
"#,
        profile = v.profile,
        sdc = v.source_dest_check,
        secondary = v.secondary.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "),
        user_data = v.user_data,
        protected = v.protected,
        tokens = v.tokens,
        size = v.size,
        backup = v.backup,
    )
}

#[derive(Clone)]
struct Vars {
    profile: &'static str,
    source_dest_check: bool,
    secondary: Vec<&'static str>,
    user_data: &'static str,
    protected: bool,
    tokens: &'static str,
    size: u32,
    backup: &'static str,
}

fn berth(w: &Work, aws: &Aws, args: &[&str]) -> Run {
    w.cmd(args)
        .env("AWS_ENDPOINT_URL", &aws.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run berth")
        .into()
}

fn app(w: &Work) -> serde_json::Value {
    w.state()["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["addr"] == "aws_instance.app"))
        .map(|r| r["attributes"].clone())
        .expect("aws_instance.app in the state")
}

fn apply(w: &Work, aws: &Aws) {
    let r = berth(w, aws, &["apply", "--auto-approve"]);
    assert_eq!(r.code, 0, "apply\n{}\n{}\nlayer: {}", r.stdout, r.stderr, aws.report());
    let again = berth(w, aws, &["plan", "--detailed-exitcode"]);
    if again.code != 0 {
        let json = berth(w, aws, &["plan", "--json"]);
        panic!("the plan after apply is not empty\n{}\n{}\n{}", again.stdout, again.stderr, json.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn arguments_change_in_place_on_the_same_host() {
    let aws = Aws::start();
    aws.create_instance_profile("app-v1");
    aws.create_instance_profile("app-v2");
    let ec2 = aws_sdk_ec2::Client::new(&aws.moto_sdk_config().await);
    let w = Work::new();
    let v1 = Vars {
        profile: "app-v1",
        source_dest_check: true,
        secondary: vec![],
        user_data: "#!/bin/sh\\necho one\\n",
        protected: false,
        tokens: "optional",
        size: 20,
        backup: "daily",
    };
    w.write("main.hcl", &host(&v1));
    berth(&w, &aws, &["validate"]).assert_ok();
    apply(&w, &aws);
    let before = app(&w);
    let id = before["id"].as_str().unwrap().to_string();
    assert_eq!(before["root_block_device"][0]["volume_size"], 20.0);
    assert_eq!(before["source_dest_check"], true);

    let v2 = Vars {
        profile: "app-v2",
        source_dest_check: false,
        secondary: vec!["10.60.1.50", "10.60.1.51"],
        user_data: "#!/bin/sh\\necho two\\n",
        protected: true,
        tokens: "required",
        size: 30,
        backup: "weekly",
    };
    w.write("main.hcl", &host(&v2));
    let plan = berth(&w, &aws, &["plan"]);
    plan.assert_ok();
    assert!(plan.stdout.contains("aws_instance.app will be updated in-place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("stops the instance"), "the user data change says it stops the host\n{}", plan.stdout);
    apply(&w, &aws);
    let after = app(&w);
    assert_eq!(after["id"], id.as_str(), "the same host");
    assert_eq!(after["iam_instance_profile"], "app-v2");
    assert_eq!(after["source_dest_check"], false);
    assert_eq!(after["secondary_private_ips"], serde_json::json!(["10.60.1.50", "10.60.1.51"]));
    assert_eq!(after["metadata_options"][0]["http_tokens"], "required");
    assert_eq!(after["root_block_device"][0]["volume_size"], 30.0);
    assert_eq!(after["volume_tags"]["Backup"], "weekly");

    // What AWS itself says, read from moto.
    let i = ec2.describe_instances().instance_ids(&id).send().await.unwrap();
    let i = &i.reservations()[0].instances()[0];
    assert_eq!(i.source_dest_check(), Some(false));
    assert_eq!(i.metadata_options().and_then(|m| m.http_tokens()).map(|t| t.as_str()), Some("required"));
    let ud = ec2.describe_instance_attribute().instance_id(&id).attribute(InstanceAttributeName::UserData).send();
    let ud = ud.await.unwrap().user_data().and_then(|u| u.value()).map(str::to_string).unwrap_or_default();
    use base64::Engine;
    let ud = base64::engine::general_purpose::STANDARD.decode(ud).unwrap();
    assert_eq!(String::from_utf8(ud).unwrap(), "#!/bin/sh\necho two\n");
    let root = after["root_block_device"][0]["volume_id"].as_str().unwrap();
    let vol = ec2.describe_volumes().volume_ids(root).send().await.unwrap();
    assert_eq!(vol.volumes()[0].size(), Some(30));

    // Termination protection holds: the destroy fails at the host, which
    // stays, and says what to do.
    let refused = berth(&w, &aws, &["destroy", "--auto-approve"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("disable_api_termination = false"), "{}", refused.stderr);
    assert_eq!(app(&w)["id"], id.as_str());

    // Back: fewer secondary addresses, protection off so the host can go.
    let v3 = Vars { secondary: vec!["10.60.1.51"], protected: false, ..v2.clone() };
    w.write("main.hcl", &host(&v3));
    apply(&w, &aws);
    assert_eq!(app(&w)["secondary_private_ips"], serde_json::json!(["10.60.1.51"]));
    assert_eq!(app(&w)["id"], id.as_str());

    // With `user_data_replace_on_change`, new user data is a new host.
    let replacing = host(&Vars { user_data: "#!/bin/sh\\necho three\\n", ..v3 })
        .replace("  user_data               =", "  user_data_replace_on_change = true\n  user_data =");
    w.write("main.hcl", &replacing);
    let plan = berth(&w, &aws, &["plan"]);
    assert!(plan.stdout.contains("aws_instance.app must be replaced"), "{}", plan.stdout);
    apply(&w, &aws);
    assert_ne!(app(&w)["id"], id.as_str());
    berth(&w, &aws, &["destroy", "--auto-approve"]).assert_ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_instance_arguments_are_refused_at_their_line() {
    let aws = Aws::start();
    let w = Work::new();
    let bad = format!(
        r#"{AMI}
resource "aws_instance" "app" {{
  ami           = data.aws_ami.base.id
  instance_type = "t3.micro"

  metadata_options {{
    http_tokens = "always"
  }}

  root_block_device {{
    volume_type = "ssd"
  }}
}}
"#
    );
    w.write("main.hcl", &bad);
    let r = berth(&w, &aws, &["validate"]);
    r.assert_code(1);
    assert!(r.stderr.contains("`metadata_options.http_tokens` must be `optional` or `required`"), "{}", r.stderr);
    assert!(r.stderr.contains("`root_block_device.volume_type`"), "{}", r.stderr);
    assert!(r.stderr.contains("main.hcl:"), "errors name their place\n{}", r.stderr);
}
