//! The AWS provider's EC2 and VPC types against a real moto server behind
//! the strict AWS layer (`support::aws`), driven through the `Provider` trait
//! the way the engine drives it: plan, apply a batch, refresh a batch, plan
//! again.

use crate::support;

use aws_sdk_ec2::types::{Filter, InstanceType, Tag};
use berth::providers::aws::AwsProvider;
use berth::providers::aws::ec2::instance::{RESIZE_NOTE, STOPPED_NOTE};
use berth::providers::{ApplyOp, ChangeKind, OpContext, Provider};
use berth::telemetry::api_stats;
use berth::value::{Value, obj};
use support::aws::Aws;
use support::contract::{Kit, Made};

const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbv5gNJcQU6GwJ+dfxZUCKtwWHtb/K9ncklbTa4A5j8 berth-example";

struct Env {
    moto: Aws,
    p: AwsProvider,
    lineage: String,
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

fn lineage_filter(lineage: &str) -> Filter {
    Filter::builder().name("tag:berth:lineage").values(lineage).build()
}

async fn env() -> Env {
    let moto = Aws::start();
    let p = AwsProvider::from_config(&obj([
        ("region", s("us-east-1")),
        ("endpoint_url", s(&moto.endpoint)),
        ("access_key", s("testing")),
        ("secret_key", Value::Sensitive(Box::new(s("testing")))),
        ("max_retries", Value::Number(2.0)),
    ]))
    .await
    .expect("configure the aws provider");
    Env { moto, p, lineage: uuid::Uuid::new_v4().to_string() }
}

impl Env {
    fn ctx(&self, addr: &str) -> OpContext {
        self.kit().ctx(addr)
    }

    fn ec2(&self) -> &aws_sdk_ec2::Client {
        self.p.ec2_client()
    }

    /// The provider contract kit on this provider, with moto's log for
    /// failures.
    fn kit(&self) -> Kit<'_> {
        Kit { p: &self.p, lineage: self.lineage.clone(), context: Box::new(|| self.moto.log()) }
    }

    async fn instance(&self, id: &str) -> aws_sdk_ec2::types::Instance {
        let out = self.ec2().describe_instances().instance_ids(id).send().await.unwrap();
        out.reservations()[0].instances()[0].clone()
    }

    async fn wait_state(&self, id: &str, want: &str) {
        for _ in 0..100 {
            let i = self.instance(id).await;
            if i.state().and_then(|s| s.name()).map(|n| n.as_str()) == Some(want) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("instance {id} never reached {want}");
    }
}

fn instance_config(ami: &str, name: &str) -> Value {
    obj([("ami", s(ami)), ("instance_type", s("t3.micro")), ("tags", obj([("Name", s(name))]))])
}

async fn moto_ami(env: &Env) -> String {
    let ami = env
        .p
        .read(
            &env.ctx("data.aws_ami.amzn2"),
            "aws_ami",
            &obj([
                ("owners", list(&["amazon"])),
                ("most_recent", Value::Bool(true)),
                (
                    "filter",
                    Value::List(vec![obj([("name", s("name")), ("values", list(&["amzn2-ami-hvm-*-x86_64-gp2"]))])]),
                ),
            ]),
        )
        .await
        .expect("read aws_ami");
    assert_eq!(ami.get_str("architecture"), Some("x86_64"));
    assert!(ami.get_str("name").unwrap().starts_with("amzn2-ami-hvm-"));
    ami.get_str("id").unwrap().to_string()
}


#[tokio::test]
async fn example_network_round_trip() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let mut made: Vec<Made> = Vec::new();
    let mut record = |type_: &'static str, addr: &str, config: &Value, state: &Value| {
        made.push(Made { type_: type_.into(), addr: addr.into(), config: config.clone(), state: state.clone() })
    };

    let vpc_cfg = obj([
        ("cidr_block", s("10.0.0.0/16")),
        ("enable_dns_hostnames", Value::Bool(true)),
        ("tags", obj([("Name", s("berth-test"))])),
    ]);
    let vpc = env.kit().create_one("aws_vpc", "aws_vpc.main", vpc_cfg.clone()).await;
    let vpc_id = vpc.get_str("id").unwrap().to_string();
    assert!(vpc.get_str("arn").unwrap().ends_with(&format!(":vpc/{vpc_id}")));
    assert_eq!(vpc.get("enable_dns_hostnames"), Some(&Value::Bool(true)));
    assert_eq!(vpc.get("tags"), Some(&obj([("Name", s("berth-test"))])), "berth's tags stay out of `tags`");
    record("aws_vpc", "aws_vpc.main", &vpc_cfg, &vpc);

    let subnet_cfg = |cidr: &str, public: bool| {
        obj([
            ("vpc_id", s(&vpc_id)),
            ("cidr_block", s(cidr)),
            ("availability_zone", s("us-east-1a")),
            ("map_public_ip_on_launch", Value::Bool(public)),
        ])
    };
    let subnet_cfgs = [
        ("aws_subnet.public", subnet_cfg("10.0.1.0/24", true)),
        ("aws_subnet.private", subnet_cfg("10.0.2.0/24", false)),
    ];
    let subnets = env.kit().create("aws_subnet", &subnet_cfgs).await;
    for ((addr, cfg), st) in subnet_cfgs.iter().zip(&subnets) {
        record("aws_subnet", addr, cfg, st);
    }
    assert_eq!(subnets[0].get("map_public_ip_on_launch"), Some(&Value::Bool(true)));
    let public_subnet = subnets[0].get_str("id").unwrap().to_string();
    let private_subnet = subnets[1].get_str("id").unwrap().to_string();

    let igw_cfg = obj([("vpc_id", s(&vpc_id))]);
    let igw = env.kit().create_one("aws_internet_gateway", "aws_internet_gateway.main", igw_cfg.clone()).await;
    let igw_id = igw.get_str("id").unwrap().to_string();
    assert_eq!(igw.get_str("vpc_id"), Some(vpc_id.as_str()));
    record("aws_internet_gateway", "aws_internet_gateway.main", &igw_cfg, &igw);

    let rt_cfg = obj([
        ("vpc_id", s(&vpc_id)),
        ("route", Value::List(vec![obj([("cidr_block", s("0.0.0.0/0")), ("gateway_id", s(&igw_id))])])),
    ]);
    let rt = env.kit().create_one("aws_route_table", "aws_route_table.public", rt_cfg.clone()).await;
    let rt_id = rt.get_str("id").unwrap().to_string();
    assert_eq!(rt.get("route").and_then(Value::as_list).map(Vec::len), Some(1), "only the user's route: {rt}");
    record("aws_route_table", "aws_route_table.public", &rt_cfg, &rt);

    let assoc_cfgs = [
        ("aws_route_table_association.public", obj([("subnet_id", s(&public_subnet)), ("route_table_id", s(&rt_id))])),
        (
            "aws_route_table_association.private",
            obj([("subnet_id", s(&private_subnet)), ("route_table_id", s(&rt_id))]),
        ),
    ];
    let assocs = env.kit().create("aws_route_table_association", &assoc_cfgs).await;
    for ((addr, cfg), st) in assoc_cfgs.iter().zip(&assocs) {
        assert!(st.get_str("id").unwrap().starts_with("rtbassoc-"));
        record("aws_route_table_association", addr, cfg, st);
    }

    let rule = |from: f64, cidr: &str, desc: Option<&str>| {
        let mut r = obj([
            ("from_port", Value::Number(from)),
            ("to_port", Value::Number(from)),
            ("protocol", s("tcp")),
            ("cidr_blocks", list(&[cidr])),
        ]);
        if let (Some(d), Value::Map(m)) = (desc, &mut r) {
            m.insert("description".into(), s(d));
        }
        r
    };
    let sg_cfg = obj([
        ("name", s("web")),
        ("description", s("web servers")),
        ("vpc_id", s(&vpc_id)),
        (
            "ingress",
            Value::List(vec![
                rule(22.0, "10.0.0.0/8", Some("ssh")),
                rule(80.0, "0.0.0.0/0", None),
                rule(443.0, "0.0.0.0/0", None),
            ]),
        ),
        (
            "egress",
            Value::List(vec![obj([
                ("from_port", Value::Number(0.0)),
                ("to_port", Value::Number(0.0)),
                ("protocol", s("-1")),
                ("cidr_blocks", list(&["0.0.0.0/0"])),
            ])]),
        ),
    ]);
    let sg = env.kit().create_one("aws_security_group", "aws_security_group.web", sg_cfg.clone()).await;
    let sg_id = sg.get_str("id").unwrap().to_string();
    assert_eq!(sg.get("ingress").and_then(Value::as_list).map(Vec::len), Some(3));
    record("aws_security_group", "aws_security_group.web", &sg_cfg, &sg);

    let key_cfg = obj([("key_name", s("deployer")), ("public_key", s(PUBLIC_KEY))]);
    let key = env.kit().create_one("aws_key_pair", "aws_key_pair.deployer", key_cfg.clone()).await;
    assert!(!key.get_str("fingerprint").unwrap().is_empty());
    record("aws_key_pair", "aws_key_pair.deployer", &key_cfg, &key);

    let ami = moto_ami(&env).await;
    let user_data = "#!/bin/sh\necho hello from berth\n";
    let web_cfg = |i: usize| {
        obj([
            ("ami", s(&ami)),
            ("instance_type", s("t3.micro")),
            ("subnet_id", s(&public_subnet)),
            ("vpc_security_group_ids", list(&[&sg_id])),
            ("key_name", s("deployer")),
            ("user_data", s(user_data)),
            ("tags", obj([("Name", s(&format!("web-{i}"))), ("Role", s("web"))])),
            ("timeouts", Value::List(vec![obj([("create", s("5m"))])])),
        ])
    };
    let addrs: Vec<String> = (0..3).map(|i| format!("aws_instance.web[{i}]")).collect();
    let web_cfgs: Vec<(&str, Value)> = addrs.iter().enumerate().map(|(i, a)| (a.as_str(), web_cfg(i))).collect();
    let webs = env.kit().create("aws_instance", &web_cfgs).await;
    for ((addr, cfg), st) in web_cfgs.iter().zip(&webs) {
        assert_eq!(st.get_str("instance_state"), Some("running"));
        assert!(st.get_str("private_ip").is_some_and(|ip| ip.starts_with("10.0.1.")), "{st}");
        assert!(st.get_str("private_dns").is_some(), "{st}");
        assert_eq!(st.get_str("user_data"), Some(user_data), "user_data is stored as given");
        assert_eq!(st.get_str("key_name"), Some("deployer"));
        record("aws_instance", addr, cfg, st);
    }
    // Base64 on the wire, plain text in the state.
    let id0 = webs[0].get_str("id").unwrap();
    let attr = env
        .ec2()
        .describe_instance_attribute()
        .instance_id(id0)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    use base64::Engine;
    let wire = attr.user_data().and_then(|u| u.value()).unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(wire).unwrap(), user_data.as_bytes());
    // Ownership tags are on the object itself.
    let tags = env.instance(id0).await.tags().to_vec();
    let tag = |k: &str| tags.iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(tag("berth:address").as_deref(), Some("aws_instance.web[0]"));
    assert_eq!(tag("berth:lineage"), Some(env.lineage.clone()));

    // Refresh, batched per type, returns what apply returned, and planning
    // from it with the same configuration changes nothing.
    env.kit().check_steady(&made).await;

    // The data sources find what was made, and refuse to guess.
    let ctx = env.ctx("data.aws_vpc.main");
    let found = env.p.read(&ctx, "aws_vpc", &obj([("tags", obj([("Name", s("berth-test"))]))])).await.unwrap();
    assert_eq!(found.get_str("id"), Some(vpc_id.as_str()));
    assert_eq!(found.get_str("cidr_block"), Some("10.0.0.0/16"));
    let ctx = env.ctx("data.aws_subnet.public");
    let found = env.p.read(&ctx, "aws_subnet", &obj([("id", s(&public_subnet))])).await.unwrap();
    assert_eq!(found.get_str("vpc_id"), Some(vpc_id.as_str()));
    let by_filter = obj([("filter", Value::List(vec![obj([("name", s("vpc-id")), ("values", list(&[&vpc_id]))])]))]);
    let e = env.p.read(&ctx, "aws_subnet", &by_filter).await.unwrap_err();
    assert!(e.message.contains("2 subnets match"), "{e}");
    let e = env.p.read(&ctx, "aws_subnet", &obj([("cidr_block", s("192.168.0.0/24"))])).await.unwrap_err();
    assert!(e.message.contains("no subnet matches"), "{e}");

    // Delete in reverse order, each type as one batch; refresh agrees that
    // everything is gone.
    env.kit().delete_all(&made).await;
    let f = || lineage_filter(&env.lineage);
    let ec2 = env.ec2();
    assert!(ec2.describe_vpcs().filters(f()).send().await.unwrap().vpcs().is_empty());
    assert!(ec2.describe_subnets().filters(f()).send().await.unwrap().subnets().is_empty());
    assert!(ec2.describe_internet_gateways().filters(f()).send().await.unwrap().internet_gateways().is_empty());
    assert!(ec2.describe_route_tables().filters(f()).send().await.unwrap().route_tables().is_empty());
    assert!(ec2.describe_security_groups().filters(f()).send().await.unwrap().security_groups().is_empty());
    assert!(ec2.describe_key_pairs().filters(f()).send().await.unwrap().key_pairs().is_empty());
    let left = ec2.describe_instances().filters(f()).send().await.unwrap();
    for i in left.reservations().iter().flat_map(|r| r.instances()) {
        assert_eq!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("terminated"));
    }
}

#[tokio::test]
async fn drift_terminated_stopped_and_retagged() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let ami = moto_ami(&env).await;
    let cfgs =
        [("aws_instance.drift[0]", instance_config(&ami, "a")), ("aws_instance.drift[1]", instance_config(&ami, "b"))];
    let states = env.kit().create("aws_instance", &cfgs).await;
    let (gone, kept) = (states[0].get_str("id").unwrap(), states[1].get_str("id").unwrap());

    // Terminated outside berth: gone.
    env.ec2().terminate_instances().instance_ids(gone).send().await.unwrap();
    env.wait_state(gone, "terminated").await;
    let r = env.kit().refresh("aws_instance", &[(cfgs[0].0, states[0].clone()), (cfgs[1].0, states[1].clone())]).await;
    assert!(r[0].is_none(), "a terminated instance refreshes as gone");
    assert!(r[1].is_some());

    // Stopped outside berth: the plan starts it.
    env.ec2().stop_instances().instance_ids(kept).send().await.unwrap();
    env.wait_state(kept, "stopped").await;
    let stopped = env.kit().refresh("aws_instance", &[(cfgs[1].0, states[1].clone())]).await.remove(0).unwrap();
    assert_eq!(stopped.get_str("instance_state"), Some("stopped"));
    let planned = env.p.plan(&env.ctx(cfgs[1].0), "aws_instance", Some(&stopped), &cfgs[1].1).await.unwrap();
    assert!(planned.requires_replace.is_empty());
    assert_eq!(planned.after.get_str("instance_state"), Some("running"));
    assert!(planned.notes.iter().any(|n| n == STOPPED_NOTE), "{:?}", planned.notes);
    let started = env.kit().update("aws_instance", cfgs[1].0, &stopped, &cfgs[1].1).await;
    assert_eq!(started.get_str("instance_state"), Some("running"));
    assert_eq!(env.instance(kept).await.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running"));

    // A tag changed outside berth: the plan changes it back.
    env.ec2()
        .create_tags()
        .resources(kept)
        .tags(Tag::builder().key("Name").value("hacked").build())
        .send()
        .await
        .unwrap();
    let drifted = env.kit().refresh("aws_instance", &[(cfgs[1].0, started.clone())]).await.remove(0).unwrap();
    assert_eq!(drifted.get("tags"), Some(&obj([("Name", s("hacked"))])));
    let planned = env.p.plan(&env.ctx(cfgs[1].0), "aws_instance", Some(&drifted), &cfgs[1].1).await.unwrap();
    assert_eq!(planned.after.get("tags"), Some(&obj([("Name", s("b"))])));
    assert_ne!(planned.after, drifted);
    let fixed = env.kit().update("aws_instance", cfgs[1].0, &drifted, &cfgs[1].1).await;
    assert_eq!(fixed.get("tags"), Some(&obj([("Name", s("b"))])));
    let tags = env.instance(kept).await.tags().to_vec();
    assert!(tags.iter().any(|t| t.key() == Some("Name") && t.value() == Some("b")));
    assert!(tags.iter().any(|t| t.key() == Some("berth:lineage")), "ownership tags survive");
}

#[tokio::test]
async fn ami_replaces_tags_and_type_update_in_place() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let ami = moto_ami(&env).await;
    let addr = "aws_instance.app";
    let cfg = instance_config(&ami, "app");
    let st = env.kit().create_one("aws_instance", addr, cfg.clone()).await;
    let id = st.get_str("id").unwrap().to_string();

    let mut other_ami = cfg.clone();
    if let Value::Map(m) = &mut other_ami {
        m.insert("ami".into(), s("ami-785db401"));
    }
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &other_ami).await.unwrap();
    assert_eq!(p.requires_replace, vec!["ami".to_string()]);
    assert_eq!(p.after.get("id"), Some(&Value::Unknown));

    // An AMI only known after apply (from a resource being replaced) also replaces.
    let mut unknown_ami = cfg.clone();
    if let Value::Map(m) = &mut unknown_ami {
        m.insert("ami".into(), Value::Unknown);
    }
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &unknown_ami).await.unwrap();
    assert_eq!(p.requires_replace, vec!["ami".to_string()]);

    let retagged = instance_config(&ami, "renamed");
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &retagged).await.unwrap();
    assert!(p.requires_replace.is_empty());
    assert_eq!(p.after.get_str("id"), Some(id.as_str()));
    let st = env.kit().update("aws_instance", addr, &st, &retagged).await;
    assert_eq!(st.get("tags"), Some(&obj([("Name", s("renamed"))])));

    let mut bigger = retagged.clone();
    if let Value::Map(m) = &mut bigger {
        m.insert("instance_type".into(), s("t3.small"));
    }
    let p = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &bigger).await.unwrap();
    assert!(p.requires_replace.is_empty());
    assert!(p.notes.iter().any(|n| n == RESIZE_NOTE), "{:?}", p.notes);
    let st = env.kit().update("aws_instance", addr, &st, &bigger).await;
    assert_eq!(st.get_str("id"), Some(id.as_str()), "resized in place");
    assert_eq!(st.get_str("instance_type"), Some("t3.small"));
    assert_eq!(st.get_str("instance_state"), Some("running"));
    let i = env.instance(&id).await;
    assert_eq!(i.instance_type(), Some(&InstanceType::T3Small));

    // Bad input is an error naming the attribute, before any API call.
    let bad = obj([("ami", s(&ami)), ("instance_type", Value::Number(3.0))]);
    let e = env.p.plan(&env.ctx(addr), "aws_instance", Some(&st), &bad).await.unwrap_err();
    assert_eq!(e.attribute.as_deref(), Some("instance_type"), "{e}");
    let e =
        env.p.plan(&env.ctx("aws_vpc.x"), "aws_vpc", None, &obj([("cidr_block", s("10.0.0.0/99"))])).await.unwrap_err();
    assert_eq!(e.attribute.as_deref(), Some("cidr_block"), "{e}");
}

/// EC2 takes at most 200 filter values per call: 300 instances are two.
#[tokio::test]
async fn refresh_of_300_instances_is_two_describe_calls() {
    let env = env().await;
    let ami = moto_ami(&env).await;
    // Launched on moto directly: instances that have run for a while, not
    // ones still booting behind the strict layer.
    let moto = aws_sdk_ec2::Client::new(&env.moto.moto_sdk_config().await);
    let out = moto
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::T3Micro)
        .min_count(300)
        .max_count(300)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = out.instances().iter().filter_map(|i| i.instance_id()).map(str::to_string).collect();
    assert_eq!(ids.len(), 300);
    let addrs: Vec<String> = (0..300).map(|i| format!("aws_instance.fleet[{i}]")).collect();
    let batch: Vec<(&str, Value)> = addrs.iter().zip(&ids).map(|(a, id)| (a.as_str(), obj([("id", s(id))]))).collect();

    let _guard = support::stats::exclusive().await;
    let before = api_stats::count("ec2:DescribeInstances");
    let refreshed = env.kit().refresh("aws_instance", &batch).await;
    let calls = api_stats::count("ec2:DescribeInstances") - before;
    drop(_guard);

    assert_eq!(calls, 2, "refreshing 300 instances took {calls} DescribeInstances calls, not ceil(300/200)");
    for (r, id) in refreshed.iter().zip(&ids) {
        let r = r.as_ref().unwrap_or_else(|| panic!("{id} not found"));
        assert_eq!(r.get_str("id"), Some(id.as_str()));
        assert_eq!(r.get_str("instance_state"), Some("running"));
    }
}

#[tokio::test]
async fn adopt_by_ownership_tags_and_client_token() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let ami = moto_ami(&env).await;
    let addr = "aws_instance.orphan";
    let cfg = instance_config(&ami, "orphan");
    let attempt = env.ctx(addr);
    let st = env.kit().create_as("aws_instance", &[(addr, cfg.clone())], vec![attempt.clone()]).await.remove(0);
    let id = st.get_str("id").unwrap();

    // berth died before recording the create: the next run adopts with the
    // attempt's journaled token, and finds the instance by its client token.
    let adopted = env.p.adopt(&attempt, "aws_instance", &cfg).await.unwrap().expect("adopted");
    assert_eq!(adopted, st);
    // Another state (lineage) or another address owns nothing here.
    let mut other = attempt.clone();
    other.lineage = "another-lineage".into();
    assert!(env.p.adopt(&other, "aws_instance", &cfg).await.unwrap().is_none());
    assert!(env.p.adopt(&env.ctx("aws_instance.nobody"), "aws_instance", &cfg).await.unwrap().is_none());
    // The planner adopts before the configuration is evaluated: `Null`.
    let bare = env.p.adopt(&attempt, "aws_instance", &Value::Null).await.unwrap().expect("adopted without config");
    assert_eq!(bare.get_str("id"), Some(id));
    // A create-before-destroy replacement's create (the next generation, its
    // own token) must not take the object it replaces for its own.
    let mut next = env.ctx(addr);
    next.generation = 2;
    assert!(env.p.adopt(&next, "aws_instance", &cfg).await.unwrap().is_none(), "the older object is not the replacement");
    // An attempt journaled before tokens existed: found by its generation.
    let mut untokened = attempt.clone();
    untokened.token = String::new();
    assert_eq!(env.p.adopt(&untokened, "aws_instance", &cfg).await.unwrap().unwrap().get_str("id"), Some(id));
    let instance = env.instance(id).await;
    let generation = instance.tags().iter().find(|t| t.key() == Some("berth:generation")).and_then(|t| t.value());
    assert_eq!(generation, Some("1"), "launched with its generation tag");

    // A second launch of the same address and generation by another attempt
    // (its answer was lost and never recorded): each attempt adopts its own
    // instance by client token, where ownership tags alone cannot tell them
    // apart.
    let second = env.ctx(addr);
    let st2 = env.kit().create_as("aws_instance", &[(addr, cfg.clone())], vec![second.clone()]).await.remove(0);
    assert_ne!(st2.get_str("id"), Some(id));
    assert_eq!(env.p.adopt(&attempt, "aws_instance", &cfg).await.unwrap().unwrap().get_str("id"), Some(id));
    assert_eq!(env.p.adopt(&second, "aws_instance", &cfg).await.unwrap().unwrap().get_str("id"), st2.get_str("id"));

    // The ClientToken berth sent is the attempt's: the same for a retried
    // create of the attempt, another for another attempt.
    let env = &env;
    let token_of = |id: &str| {
        let id = id.to_string();
        async move { env.instance(&id).await.client_token().unwrap_or_default().to_string() }
    };
    let (t1, t2) = (token_of(id).await, token_of(st2.get_str("id").unwrap()).await);
    assert_eq!(t1.len(), 64, "{t1}");
    assert_ne!(t1, t2, "two create attempts never share a client token");
    let planned = env.p.plan(&attempt, "aws_instance", None, &cfg).await.unwrap();
    let again = env
        .kit()
        .apply("aws_instance", vec![ApplyOp { ctx: attempt.clone(), kind: ChangeKind::Create { planned: planned.after } }])
        .await
        .remove(0);
    assert!(again.error.is_none());
    let again_id = again.state.unwrap().get_str("id").unwrap().to_string();
    // moto records ClientToken but does not deduplicate on it (AWS does):
    // what berth controls is that the retry presents the same token.
    assert_eq!(token_of(&again_id).await, t1, "a retried create presents the attempt's token");
}

#[tokio::test]
async fn security_group_rules_are_sets() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let vpc = env.kit().create_one("aws_vpc", "aws_vpc.sg", obj([("cidr_block", s("10.1.0.0/16"))])).await;
    let vpc_id = vpc.get_str("id").unwrap();
    let ssh = obj([
        ("from_port", Value::Number(22.0)),
        ("to_port", Value::Number(22.0)),
        ("protocol", s("tcp")),
        ("cidr_blocks", list(&["10.0.0.0/8"])),
    ]);
    let https = obj([
        ("from_port", Value::Number(443.0)),
        ("to_port", Value::Number(443.0)),
        ("protocol", s("6")),
        ("cidr_blocks", list(&["0.0.0.0/0"])),
        ("ipv6_cidr_blocks", list(&["::/0"])),
        ("description", s("https")),
    ]);
    let cfg1 = obj([("name", s("sets")), ("vpc_id", s(vpc_id)), ("ingress", Value::List(vec![ssh.clone()]))]);
    let addr = "aws_security_group.sets";
    let st = env.kit().create_one("aws_security_group", addr, cfg1).await;
    let sg_id = st.get_str("id").unwrap().to_string();

    let rules = || async {
        let out = env
            .ec2()
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(&sg_id).build())
            .send()
            .await
            .unwrap();
        out.security_group_rules().to_vec()
    };
    let before = rules().await;
    assert!(
        before.iter().all(|r| r.is_egress() == Some(false)),
        "the default allow-all egress rule is revoked: {before:?}"
    );
    assert_eq!(before.len(), 1);
    let ssh_rule_id = before[0].security_group_rule_id().unwrap().to_string();

    // Adding one rule (in a different order, with another spelling of tcp)
    // authorizes exactly that rule's atoms and revokes nothing.
    let cfg2 = obj([("name", s("sets")), ("vpc_id", s(vpc_id)), ("ingress", Value::List(vec![https, ssh]))]);
    let st2 = env.kit().update("aws_security_group", addr, &st, &cfg2).await;
    let after = rules().await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().any(|r| r.security_group_rule_id() == Some(&ssh_rule_id)), "the existing rule was kept");
    let new: Vec<_> = after.iter().filter(|r| r.security_group_rule_id() != Some(&ssh_rule_id)).collect();
    assert!(new.iter().all(|r| r.from_port() == Some(443) && r.description() == Some("https")), "{new:?}");
    assert!(new.iter().any(|r| r.cidr_ipv4() == Some("0.0.0.0/0")));
    assert!(new.iter().any(|r| r.cidr_ipv6() == Some("::/0")));

    let refreshed = env.kit().refresh("aws_security_group", &[(addr, st2.clone())]).await.remove(0).unwrap();
    assert_eq!(refreshed, st2);
    let again = env.p.plan(&env.ctx(addr), "aws_security_group", Some(&refreshed), &cfg2).await.unwrap();
    assert_eq!(again.after, refreshed, "rule order and protocol spelling are not changes");
}

#[tokio::test]
async fn a_failed_step_after_create_still_records_the_object() {
    let _guard = support::stats::shared().await;
    let mut env = env().await;
    env.p = env.p.with_consistency_deadline(std::time::Duration::from_secs(2));
    let addr = "aws_internet_gateway.lost";
    let ctx = env.ctx(addr);
    let cfg = obj([("vpc_id", s("vpc-0000dead"))]);
    let planned = env.p.plan(&ctx, "aws_internet_gateway", None, &cfg).await.unwrap();
    let o = env
        .kit()
        .apply(
            "aws_internet_gateway",
            vec![ApplyOp { ctx: ctx.clone(), kind: ChangeKind::Create { planned: planned.after } }],
        )
        .await
        .remove(0);
    let e = o.error.expect("attaching to a VPC that does not exist fails");
    assert!(e.message.contains("AttachInternetGateway") && e.message.contains("InvalidVpcID.NotFound"), "{e}");
    assert!(!e.message.contains("ServiceError"), "no Debug dumps: {e}");
    let st = o.state.expect("the gateway exists, so its state is recorded");
    let id = st.get_str("id").unwrap();
    assert!(id.starts_with("igw-"), "{st}");
    assert!(st.is_known());
    let adopted = env.p.adopt(&ctx, "aws_internet_gateway", &cfg).await.unwrap().expect("found by its tags");
    assert_eq!(adopted.get_str("id"), Some(id));
}

#[tokio::test]
async fn routes_gateways_and_key_tags_update_in_place() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let a = env.kit().create_one("aws_vpc", "aws_vpc.a", obj([("cidr_block", s("10.2.0.0/16"))])).await;
    let b = env.kit().create_one("aws_vpc", "aws_vpc.b", obj([("cidr_block", s("10.3.0.0/16"))])).await;
    let (a_id, b_id) = (a.get_str("id").unwrap(), b.get_str("id").unwrap());
    let igw = env.kit().create_one("aws_internet_gateway", "aws_internet_gateway.gw", obj([("vpc_id", s(a_id))])).await;
    let igw_id = igw.get_str("id").unwrap();

    let route = |cidr: &str| obj([("cidr_block", s(cidr)), ("gateway_id", s(igw_id))]);
    let rt_addr = "aws_route_table.rt";
    let one = obj([("vpc_id", s(a_id)), ("route", Value::List(vec![route("0.0.0.0/0")]))]);
    let rt = env.kit().create_one("aws_route_table", rt_addr, one).await;
    let two = obj([("vpc_id", s(a_id)), ("route", Value::List(vec![route("192.168.0.0/16"), route("0.0.0.0/0")]))]);
    let rt = env.kit().update("aws_route_table", rt_addr, &rt, &two).await;
    assert_eq!(rt.get("route").and_then(Value::as_list).map(Vec::len), Some(2), "{rt}");
    // No `route` blocks leaves the routes alone; `route = []` removes them.
    let unmanaged = obj([("vpc_id", s(a_id))]);
    let kept = env.p.plan(&env.ctx(rt_addr), "aws_route_table", Some(&rt), &unmanaged).await.unwrap();
    assert_eq!(kept.after.get("route"), rt.get("route"), "routes without blocks are not planned away");
    let none = obj([("vpc_id", s(a_id)), ("route", Value::List(vec![]))]);
    let rt = env.kit().update("aws_route_table", rt_addr, &rt, &none).await;
    assert_eq!(rt.get("route"), Some(&Value::List(vec![])));
    let described = env.ec2().describe_route_tables().route_table_ids(rt.get_str("id").unwrap()).send().await.unwrap();
    let routes = described.route_tables()[0].routes().to_vec();
    assert!(routes.iter().all(|r| r.gateway_id() == Some("local")), "only the local route is left: {routes:?}");

    // Moving the gateway detaches it from one VPC and attaches it to the other.
    let moved = env.kit().update("aws_internet_gateway", "aws_internet_gateway.gw", &igw, &obj([("vpc_id", s(b_id))])).await;
    assert_eq!(moved.get_str("vpc_id"), Some(b_id));
    let g = env.ec2().describe_internet_gateways().internet_gateway_ids(igw_id).send().await.unwrap();
    let attached: Vec<_> = g.internet_gateways()[0].attachments().iter().filter_map(|a| a.vpc_id()).collect();
    assert_eq!(attached, vec![b_id]);

    let key_cfg =
        |team: &str| obj([("key_name", s("ops")), ("public_key", s(PUBLIC_KEY)), ("tags", obj([("Team", s(team))]))]);
    let key = env.kit().create_one("aws_key_pair", "aws_key_pair.ops", key_cfg("a")).await;
    let key = env.kit().update("aws_key_pair", "aws_key_pair.ops", &key, &key_cfg("b")).await;
    let refreshed = env.kit().refresh("aws_key_pair", &[("aws_key_pair.ops", key.clone())]).await.remove(0).unwrap();
    assert_eq!(refreshed.get("tags"), Some(&obj([("Team", s("b"))])));
    assert_eq!(refreshed, key);
}
