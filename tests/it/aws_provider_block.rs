//! The `aws` provider block's account-wide settings through the real CLI,
//! against moto: `assume_role` (STS through the same endpoint; every later
//! call signed with the role's credentials, seen on the wire by a recording
//! proxy), and `default_tags` / `ignore_tags` merged into every taggable
//! resource (a no-op re-plan, a default tag changed later as an in-place
//! update, an ignored tag left alone).

use crate::support;

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Client, Request, Response, Server};
use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use support::cli::{Run, Work};
use support::moto::Moto;

/// The caller's own keys. moto puts unknown keys in its default account.
const CALLER_KEY: &str = "AKIDCALLER0000000000";
const CALLER_SECRET: &str = "caller-secret-never-printed";
const CALLER_ACCOUNT: &str = "123456789012";

/// STS's answer to a caller the role does not trust.
const ACCESS_DENIED: &str = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
    <Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/ci is not \
    authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/deploy</Message></Error>\
    <RequestId>r-1</RequestId></ErrorResponse>";

/// One request as the recorder saw it.
#[derive(Debug, Clone)]
struct Seen {
    /// The service of the signature's credential scope (`ec2`, `sts`, ...).
    service: String,
    /// The access key id that signed it.
    key: String,
    /// The form body (query protocols) or the method and path.
    what: String,
    /// The answer's body, for STS.
    answer: String,
}

/// A recording HTTP proxy in front of moto: forwards everything and notes
/// who signed what.
struct Recorder {
    endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// `Credential=KEY/DATE/REGION/SERVICE/aws4_request` of a SigV4 header.
fn credential(auth: &str) -> Option<(String, String)> {
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    Some((parts.first()?.to_string(), parts.get(3)?.to_string()))
}

impl Recorder {
    fn start(upstream: &str) -> Recorder {
        Recorder::start_with(upstream, false)
    }

    /// With `refuse_sts`, STS calls are answered `AccessDenied`, as STS
    /// answers a caller the role does not trust.
    fn start_with(upstream: &str, refuse_sts: bool) -> Recorder {
        let upstream = upstream.trim_end_matches('/').to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the recorder's runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().unwrap().port();
        let (up, log) = (upstream.clone(), seen.clone());
        runtime.spawn(async move {
            let client = Client::new();
            let make = make_service_fn(move |_| {
                let (up, log, client) = (up.clone(), log.clone(), client.clone());
                async move {
                    Ok::<_, Infallible>(service_fn(move |req: Request<Body>| {
                        let (up, log, client) = (up.clone(), log.clone(), client.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = hyper::body::to_bytes(body).await?;
                            let auth = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                            let (key, service) = credential(auth).unwrap_or_default();
                            let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
                            let text = String::from_utf8_lossy(&body).into_owned();
                            let what = if text.contains("Action=") { text } else { format!("{} {pq}", parts.method) };
                            if refuse_sts && service == "sts" {
                                log.lock().unwrap().push(Seen { service, key, what, answer: String::new() });
                                return Ok(Response::builder()
                                    .status(403)
                                    .header("content-type", "text/xml")
                                    .body(Body::from(ACCESS_DENIED))
                                    .unwrap());
                            }
                            let mut fwd = Request::builder().method(parts.method.clone()).uri(format!("{up}{pq}"));
                            for (k, v) in &parts.headers {
                                if !["connection", "transfer-encoding"].contains(&k.as_str()) {
                                    fwd = fwd.header(k, v);
                                }
                            }
                            let resp = client.request(fwd.body(Body::from(body)).unwrap()).await?;
                            let (mut rparts, rbody) = resp.into_parts();
                            let bytes = hyper::body::to_bytes(rbody).await?;
                            rparts.headers.remove("transfer-encoding");
                            let answer = if service == "sts" {
                                String::from_utf8_lossy(&bytes).into_owned()
                            } else {
                                String::new()
                            };
                            log.lock().unwrap().push(Seen { service, key, what, answer });
                            Ok::<_, hyper::Error>(Response::from_parts(rparts, Body::from(bytes)))
                        }
                    }))
                }
            });
            let _ = Server::from_tcp(listener).expect("serve").http1_only(true).serve(make).await;
        });
        Recorder { endpoint: format!("http://127.0.0.1:{port}"), seen, runtime: Some(runtime) }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs berth with the caller's keys against `endpoint` (moto or the
/// recorder), with nothing of the developer's own AWS set-up.
fn berth(w: &Work, endpoint: &str, args: &[&str]) -> Run {
    w.write("aws-config", "");
    w.write("aws-credentials", "");
    let var = format!("aws_endpoint={endpoint}");
    let mut all = args.to_vec();
    all.extend(["--var", &var]);
    w.cmd(&all)
        .env("AWS_ACCESS_KEY_ID", CALLER_KEY)
        .env("AWS_SECRET_ACCESS_KEY", CALLER_SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", w.path().join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", w.path().join("aws-credentials"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .output()
        .expect("run berth")
        .into()
}

/// An attribute of a resource in the state.
fn attr(w: &Work, addr: &str, name: &str) -> serde_json::Value {
    let state = w.state();
    let r = state["resources"].as_array().and_then(|rs| rs.iter().find(|r| r["addr"] == addr)).cloned();
    r.unwrap_or_else(|| panic!("`{addr}` is not in the state: {state}"))["attributes"][name].clone()
}

/// An EC2 client with the caller's keys: it sees the caller's account.
async fn caller_ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(CALLER_KEY, CALLER_SECRET, None, None, "test"))
        .load()
        .await;
    aws_sdk_ec2::Client::new(&conf)
}

const ASSUMED: &str = r#"
variable "aws_endpoint" { type = string }

provider "aws" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint

  assume_role {
    role_arn     = "arn:aws:iam::111111111111:role/deploy"
    session_name = "berth-test"
    external_id  = "ext-12345"
    duration     = "1h"
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}

resource "aws_route53_zone" "internal" {
  name = "internal"
  vpc {
    vpc_id     = aws_vpc.main.id
    vpc_region = "us-east-1"
  }
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn assume_role_signs_every_call_with_the_roles_credentials() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.endpoint);
    let w = Work::new();
    w.write("main.hcl", ASSUMED);
    let r = berth(&w, &proxy.endpoint, &["apply", "--auto-approve"]);
    r.assert_ok();
    let seen = proxy.take();

    // One AssumeRole, signed by the caller, with the block's settings.
    let sts: Vec<&Seen> = seen.iter().filter(|s| s.service == "sts").collect();
    assert_eq!(sts.len(), 1, "one AssumeRole per run: {sts:#?}");
    let call = sts[0];
    assert_eq!(call.key, CALLER_KEY);
    for p in ["Action=AssumeRole", "RoleSessionName=berth-test", "ExternalId=ext-12345", "DurationSeconds=3600"] {
        assert!(call.what.contains(p), "AssumeRole lacks {p}: {}", call.what);
    }
    assert!(call.what.contains("role%2Fdeploy"), "{}", call.what);
    let role_key = call
        .answer
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|s| s.split("</AccessKeyId>").next())
        .unwrap_or_else(|| panic!("no AccessKeyId in the AssumeRole answer: {}", call.answer))
        .to_string();
    assert_ne!(role_key, CALLER_KEY);

    // Everything else: EC2 and Route53, each signed with the role's key.
    let rest: Vec<&Seen> = seen.iter().filter(|s| s.service != "sts").collect();
    assert!(rest.iter().any(|s| s.service == "ec2" && s.what.contains("Action=CreateVpc")), "{rest:#?}");
    assert!(rest.iter().any(|s| s.service == "route53" && s.what.starts_with("POST")), "{rest:#?}");
    for s in &rest {
        assert_eq!(s.key, role_key, "{} `{}` was not signed with the role's key", s.service, s.what);
    }

    // moto keeps what the role made in the role's account: the caller's
    // own account has no such VPC.
    let vpc_id = attr(&w, "aws_vpc.main", "id").as_str().expect("a VPC id").to_string();
    let own = caller_ec2(&moto).await.describe_vpcs().vpc_ids(&vpc_id).send().await;
    assert!(own.is_err(), "the VPC is in the caller's account {CALLER_ACCOUNT}: {own:?}");

    // A re-plan (a new AssumeRole) changes nothing; no secret is ever printed.
    let again = berth(&w, &proxy.endpoint, &["plan", "--detailed-exitcode"]);
    again.assert_code(0);
    assert_eq!(proxy.take().iter().filter(|s| s.service == "sts").count(), 1);
    for out in [&r.stdout, &r.stderr, &again.stdout, &again.stderr] {
        assert!(!out.contains(CALLER_SECRET) && !out.contains("ext-12345"), "a secret was printed:\n{out}");
    }
    let state = w.read("state/default.json");
    assert!(!state.contains(CALLER_SECRET) && !state.contains(&role_key), "credentials in the state");
}

#[test]
fn a_role_that_cannot_be_assumed_is_an_error_of_the_provider_block() {
    let moto = Moto::start();
    let w = Work::new();
    // Nothing is planned in the caller's own account instead; no secret is printed.
    let check = |r: &Run, at: &str, why: &str| {
        r.assert_code(1);
        let headline = format!(
            "Error: main.hcl:{at}: provider `aws`: cannot assume role `arn:aws:iam::111111111111:role/deploy`: "
        );
        let line = r.stderr.lines().find(|l| l.starts_with(&headline)).unwrap_or_else(|| panic!("{}", r.stderr));
        assert!(line.contains(why), "{line}");
        assert!(!r.stderr.contains(CALLER_SECRET) && !r.stderr.contains("ext-12345"), "{}", r.stderr);
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("DispatchFailure"), "{}", r.stderr);
        assert!(!w.path().join("state/default.json").exists(), "nothing was recorded");
    };
    // STS refuses the caller.
    let refusing = Recorder::start_with(&moto.endpoint, true);
    w.write("main.hcl", ASSUMED);
    let r = berth(&w, &refusing.endpoint, &["plan"]);
    check(&r, "9:20", "AccessDenied: User: arn:aws:iam::123456789012:user/ci is not authorized");
    let seen = refusing.take();
    assert!(seen.iter().all(|s| s.service == "sts"), "only STS was called: {seen:#?}");
    // STS unreachable.
    let config = ASSUMED.replace(
        "endpoint_url = var.aws_endpoint",
        "endpoint_url = var.aws_endpoint\n  max_retries = 0\n  endpoints { sts = \"http://127.0.0.1:9\" }",
    );
    w.write("main.hcl", &config);
    check(&berth(&w, &moto.endpoint, &["plan"]), "11:20", "Connection refused");
}

const TAGGED: &str = r#"
variable "aws_endpoint" { type = string }
variable "env" {
  type    = string
  default = "prod"
}

provider "aws" {
  region       = "us-east-1"
  endpoint_url = var.aws_endpoint

  default_tags {
    tags = {
      env  = var.env
      team = "platform"
    }
  }

  ignore_tags {
    keys         = ["kube"]
    key_prefixes = ["ops:"]
  }
}

data "aws_ami" "amzn2" {
  owners      = ["amazon"]
  most_recent = true
  filter {
    name   = "name"
    values = ["amzn2-ami-hvm-*-x86_64-gp2"]
  }
}

resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
  tags = {
    Name = "main"
    team = "search"
  }
}

resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}

resource "aws_instance" "web" {
  ami           = data.aws_ami.amzn2.id
  instance_type = "t3.micro"
  subnet_id     = aws_subnet.a.id
}

resource "aws_route53_zone" "internal" {
  name = "internal"
  vpc {
    vpc_id     = aws_vpc.main.id
    vpc_region = "us-east-1"
  }
}

output "vpc_tags_all" {
  value = aws_vpc.main.tags_all
}
"#;

async fn ec2_tags(client: &aws_sdk_ec2::Client, id: &str) -> std::collections::BTreeMap<String, String> {
    let out = client
        .describe_tags()
        .filters(aws_sdk_ec2::types::Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .expect("DescribeTags");
    out.tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .filter(|(k, _)| !k.starts_with("berth:"))
        .collect()
}

async fn zone_tags(moto: &Moto, zone_id: &str) -> std::collections::BTreeMap<String, String> {
    let r53 = aws_sdk_route53::Client::new(&moto.sdk_config().await);
    let out = r53
        .list_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
        .resource_id(zone_id.trim_start_matches("/hostedzone/"))
        .send()
        .await
        .expect("ListTagsForResource");
    out.resource_tag_set()
        .map(|s| s.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect())
        .unwrap_or_default()
}

fn map(items: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn default_tags_reach_every_taggable_resource_and_a_change_is_an_in_place_update() {
    let moto = Moto::start();
    let w = Work::new();
    w.write("main.hcl", TAGGED);
    berth(&w, &moto.endpoint, &["apply", "--auto-approve"]).assert_ok();
    let ec2 = caller_ec2(&moto).await;
    let vpc = attr(&w, "aws_vpc.main", "id").as_str().unwrap().to_string();
    let subnet = attr(&w, "aws_subnet.a", "id").as_str().unwrap().to_string();
    let web = attr(&w, "aws_instance.web", "id").as_str().unwrap().to_string();
    let zone = attr(&w, "aws_route53_zone.internal", "zone_id").as_str().unwrap().to_string();

    // The resource's own tags win; every taggable type gets the defaults.
    assert_eq!(ec2_tags(&ec2, &vpc).await, map(&[("Name", "main"), ("env", "prod"), ("team", "search")]));
    for id in [&subnet, &web] {
        assert_eq!(ec2_tags(&ec2, id).await, map(&[("env", "prod"), ("team", "platform")]), "{id}");
    }
    assert_eq!(zone_tags(&moto, &zone).await, map(&[("env", "prod"), ("team", "platform")]));
    // `tags` is what the block says, `tags_all` everything, as in Terraform.
    assert_eq!(attr(&w, "aws_vpc.main", "tags"), serde_json::json!({"Name": "main", "team": "search"}));
    assert_eq!(
        attr(&w, "aws_vpc.main", "tags_all"),
        serde_json::json!({"Name": "main", "env": "prod", "team": "search"})
    );
    assert_eq!(attr(&w, "aws_instance.web", "tags"), serde_json::json!({}));
    let out: support::cli::Run = w.cmd(&["output", "--json", "vpc_tags_all"]).output().unwrap().into();
    assert!(out.stdout.contains("\"env\":\"prod\""), "`tags_all` can be referenced: {}", out.stdout);

    // Tags under `ignore_tags`, set outside berth, are no drift.
    ec2.create_tags()
        .resources(&vpc)
        .tags(aws_sdk_ec2::types::Tag::builder().key("kube").value("owned").build())
        .tags(aws_sdk_ec2::types::Tag::builder().key("ops:backup").value("daily").build())
        .send()
        .await
        .unwrap();
    let r = berth(&w, &moto.endpoint, &["plan", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "a no-op plan expected:\n{}\n{}", r.stdout, r.stderr);

    // A default tag changed: an in-place tag update of every resource.
    let r = berth(&w, &moto.endpoint, &["plan", "--detailed-exitcode", "--var", "env=staging"]);
    assert_eq!(r.code, 2, "changes expected:\n{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("4 to change") && r.stdout.contains("0 to add") && r.stdout.contains("0 to destroy"),
        "{}",
        r.stdout
    );
    berth(&w, &moto.endpoint, &["apply", "--auto-approve", "--var", "env=staging"]).assert_ok();
    assert_eq!(attr(&w, "aws_instance.web", "id").as_str(), Some(web.as_str()), "the host was kept");
    assert_eq!(
        ec2_tags(&ec2, &vpc).await,
        map(&[("Name", "main"), ("env", "staging"), ("kube", "owned"), ("ops:backup", "daily"), ("team", "search")]),
        "the ignored tags stay"
    );
    assert_eq!(ec2_tags(&ec2, &web).await, map(&[("env", "staging"), ("team", "platform")]));
    assert_eq!(zone_tags(&moto, &zone).await, map(&[("env", "staging"), ("team", "platform")]));
    let r = berth(&w, &moto.endpoint, &["plan", "--detailed-exitcode", "--var", "env=staging"]);
    assert_eq!(r.code, 0, "converged:\n{}\n{}", r.stdout, r.stderr);

    // A tag added outside berth that is neither configured nor ignored is removed.
    ec2.create_tags()
        .resources(&web)
        .tags(aws_sdk_ec2::types::Tag::builder().key("stray").value("x").build())
        .send()
        .await
        .unwrap();
    let r = berth(&w, &moto.endpoint, &["plan", "--detailed-exitcode", "--var", "env=staging"]);
    assert_eq!(r.code, 2, "drift expected:\n{}\n{}", r.stdout, r.stderr);
    berth(&w, &moto.endpoint, &["apply", "--auto-approve", "--var", "env=staging"]).assert_ok();
    assert_eq!(ec2_tags(&ec2, &web).await, map(&[("env", "staging"), ("team", "platform")]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_state_backend_assumes_its_role_too() {
    let moto = Moto::start();
    let proxy = Recorder::start(&moto.endpoint);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.sdk_config().await).force_path_style(true).build(),
    );
    s3.create_bucket().bucket("berth-state").send().await.expect("create the bucket");
    let w = Work::new();
    // The role is in moto's default account, where the bucket is.
    w.write(
        "main.hcl",
        r#"
berth {
  backend "s3" {
    bucket = "berth-state"
    key    = "app/state.json"
    region = "us-east-1"
    max_retries = 2
    assume_role {
      role_arn     = "arn:aws:iam::123456789012:role/state"
      session_name = "berth-state"
    }
  }
}

resource "berth_data" "a" {
  input = "x"
}
"#,
    );
    let endpoint = format!("endpoint_url={}", proxy.endpoint);
    let sts = format!("sts_endpoint={}", proxy.endpoint);
    let run = |args: &[&str]| -> Run {
        let mut all = vec!["--backend-config", &endpoint, "--backend-config", &sts];
        all.extend(args);
        w.cmd(&all)
            .env("AWS_ACCESS_KEY_ID", CALLER_KEY)
            .env("AWS_SECRET_ACCESS_KEY", CALLER_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .expect("run berth")
            .into()
    };
    let r = run(&["apply", "--auto-approve"]);
    r.assert_ok();
    let seen = proxy.take();
    let sts: Vec<&Seen> = seen.iter().filter(|s| s.service == "sts").collect();
    assert!(!sts.is_empty() && sts.iter().all(|s| s.key == CALLER_KEY), "{sts:#?}");
    assert!(sts.iter().all(|s| s.what.contains("RoleSessionName=berth-state")), "{sts:#?}");
    let s3_calls: Vec<&Seen> = seen.iter().filter(|s| s.service == "s3").collect();
    assert!(s3_calls.iter().any(|s| s.what.starts_with("PUT")), "{s3_calls:#?}");
    for s in &s3_calls {
        assert!(s.key != CALLER_KEY && s.key.starts_with("ASIA"), "`{}` not signed with the role's key", s.what);
    }
    let state = s3.get_object().bucket("berth-state").key("app/state.json").send().await.expect("the state in S3");
    let text = String::from_utf8(state.body.collect().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("berth_data.a"), "{text}");
    assert!(!r.stderr.contains(CALLER_SECRET), "{}", r.stderr);
}
