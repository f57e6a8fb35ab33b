//! Internal load balancers (`aws_lb`, `aws_lb_target_group`,
//! `aws_lb_listener`, `aws_lb_target_group_attachment`) against moto behind
//! the strict AWS layer, driven through the `Provider` trait with the
//! contract kit: create, refresh equals apply, a re-plan is a no-op, update
//! in place, delete leaves nothing. The layer holds berth to what moto does
//! not model: a target is `initial` before it is `healthy`, `draining`
//! after its deregistration, and a create by name returns the existing
//! object.

use crate::support;

use aws_sdk_ec2::types::Filter;
use berth::providers::aws::AwsProvider;
use berth::providers::{ApplyOp, ChangeKind, OpContext, Provider};
use berth::telemetry::api_stats;
use berth::value::{Value, obj};
use support::aws::Aws;
use support::contract::{Kit, Made};
use support::strict::{Decision, Rules};

struct Env {
    aws: Aws,
    p: AwsProvider,
    lineage: String,
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn n(v: i64) -> Value {
    Value::from(v)
}

async fn env_with(rules: impl FnOnce(Rules) -> Rules) -> Env {
    let aws = Aws::builder().rules(rules).start();
    let p = AwsProvider::from_config(&obj([
        ("region", s("us-east-1")),
        ("endpoint_url", s(&aws.endpoint)),
        ("access_key", s("testing")),
        ("secret_key", Value::Sensitive(Box::new(s("testing")))),
        ("max_retries", Value::Number(2.0)),
    ]))
    .await
    .expect("configure the aws provider");
    Env { aws, p, lineage: uuid::Uuid::new_v4().to_string() }
}

impl Env {
    fn kit(&self) -> Kit<'_> {
        Kit { p: &self.p, lineage: self.lineage.clone(), context: Box::new(|| self.aws.report()) }
    }

    /// moto's own ELBv2, without the layer.
    async fn moto_elb(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.aws.moto_sdk_config().await)
    }

    fn decisions(&self, d: Decision) -> u64 {
        self.aws.stats().decided(d)
    }
}

/// A VPC with two subnets in two zones, a security group and one running
/// host, made through the provider as a configuration would make them.
struct Network {
    made: Vec<Made>,
    vpc: String,
    subnets: Vec<String>,
    sg: String,
    host: Value,
}

async fn network(env: &Env) -> Network {
    let kit = env.kit();
    let vpc_cfg = obj([("cidr_block", s("10.20.0.0/16"))]);
    let vpc = kit.create_one("aws_vpc", "aws_vpc.main", vpc_cfg.clone()).await;
    let vpc_id = vpc.get_str("id").unwrap().to_string();
    let mut made = vec![Made { type_: "aws_vpc".into(), addr: "aws_vpc.main".into(), config: vpc_cfg, state: vpc }];
    let subnet_cfgs: Vec<(String, Value)> = [("a", "10.20.1.0/24"), ("b", "10.20.2.0/24")]
        .iter()
        .map(|(z, cidr)| {
            (
                format!("aws_subnet.private[\"{z}\"]"),
                obj([
                    ("vpc_id", s(&vpc_id)),
                    ("cidr_block", s(cidr)),
                    ("availability_zone", s(&format!("us-east-1{z}"))),
                ]),
            )
        })
        .collect();
    let items: Vec<(&str, Value)> = subnet_cfgs.iter().map(|(a, c)| (a.as_str(), c.clone())).collect();
    let subnets = kit.create("aws_subnet", &items).await;
    for ((a, c), st) in subnet_cfgs.iter().zip(&subnets) {
        made.push(Made { type_: "aws_subnet".into(), addr: a.clone(), config: c.clone(), state: st.clone() });
    }
    let sg_cfg =
        obj([("name", s("lb-internal")), ("description", s("internal load balancer")), ("vpc_id", s(&vpc_id))]);
    let sg = kit.create_one("aws_security_group", "aws_security_group.lb", sg_cfg.clone()).await;
    made.push(Made {
        type_: "aws_security_group".into(),
        addr: "aws_security_group.lb".into(),
        config: sg_cfg,
        state: sg.clone(),
    });
    let moto_ec2 = aws_sdk_ec2::Client::new(&env.aws.moto_sdk_config().await);
    let images = moto_ec2
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("name").values("amzn2-ami-hvm-*-x86_64-gp2").build())
        .send()
        .await
        .expect("DescribeImages");
    let ami = images.images()[0].image_id().unwrap().to_string();
    let host_cfg =
        obj([("ami", s(&ami)), ("instance_type", s("t3.micro")), ("subnet_id", s(subnets[0].get_str("id").unwrap()))]);
    let host = kit.create_one("aws_instance", "aws_instance.web[0]", host_cfg.clone()).await;
    made.push(Made {
        type_: "aws_instance".into(),
        addr: "aws_instance.web[0]".into(),
        config: host_cfg,
        state: host.clone(),
    });
    Network {
        made,
        vpc: vpc_id,
        subnets: subnets.iter().map(|s| s.get_str("id").unwrap().to_string()).collect(),
        sg: sg.get_str("id").unwrap().to_string(),
        host,
    }
}

fn lb_cfg(net: &Network) -> Value {
    obj([
        ("name", s("web-internal")),
        ("internal", Value::Bool(true)),
        ("load_balancer_type", s("application")),
        ("subnets", Value::List(net.subnets.iter().map(|x| s(x)).collect())),
        ("security_groups", Value::List(vec![s(&net.sg)])),
        ("tags", obj([("Role", s("web"))])),
    ])
}

fn tg_cfg(net: &Network, interval: i64) -> Value {
    obj([
        ("name_prefix", s("web-")),
        ("port", n(80)),
        ("protocol", s("HTTP")),
        ("vpc_id", s(&net.vpc)),
        (
            "health_check",
            Value::List(vec![obj([
                ("path", s("/up")),
                ("healthy_threshold", n(2)),
                ("interval", n(interval)),
                ("timeout", n(2)),
            ])]),
        ),
        // Small, so a deregistration drains in a test's time.
        ("deregistration_delay", n(1)),
    ])
}

fn listener_cfg(lb: &Value, tg: &Value, port: i64) -> Value {
    obj([
        ("load_balancer_arn", s(lb.get_str("arn").unwrap())),
        ("port", n(port)),
        ("protocol", s("HTTP")),
        (
            "default_action",
            Value::List(vec![obj([("type", s("forward")), ("target_group_arn", s(tg.get_str("arn").unwrap()))])]),
        ),
    ])
}

#[tokio::test]
async fn an_internal_load_balancer_keeps_the_contract() {
    let _guard = support::stats::shared().await;
    let env = env_with(|r| r).await;
    let net = network(&env).await;
    let kit = env.kit();

    let made_lb = kit.create_steady("aws_lb", &[("aws_lb.web", lb_cfg(&net))]).await;
    let lb = made_lb[0].state.clone();
    assert_eq!(lb.get("internal"), Some(&Value::Bool(true)));
    assert_eq!(lb.get_str("vpc_id"), Some(net.vpc.as_str()));
    assert!(!lb.get_str("dns_name").unwrap().is_empty() && !lb.get_str("zone_id").unwrap().is_empty(), "{lb}");
    assert_eq!(lb.get("tags"), Some(&obj([("Role", s("web"))])), "berth's tags stay out of `tags`");

    let made_tg = kit.create_steady("aws_lb_target_group", &[("aws_lb_target_group.web", tg_cfg(&net, 5))]).await;
    let tg = made_tg[0].state.clone();
    let tg_name = tg.get_str("name").unwrap();
    assert!(tg_name.starts_with("web-") && tg_name.len() <= 32, "{tg_name}");
    assert_eq!(tg.get("deregistration_delay"), Some(&n(1)));

    let made_listener =
        kit.create_steady("aws_lb_listener", &[("aws_lb_listener.web", listener_cfg(&lb, &tg, 80))]).await;

    // The attachment's create returns only once the group finds the host
    // healthy: the layer showed it `initial` first.
    let initial_before = env.decisions(Decision::TargetInitial);
    let attach_cfg = obj([
        ("target_group_arn", s(tg.get_str("arn").unwrap())),
        ("target_id", s(net.host.get_str("id").unwrap())),
        ("port", n(8080)),
    ]);
    let made_attach = kit
        .create_steady("aws_lb_target_group_attachment", &[("aws_lb_target_group_attachment.web[0]", attach_cfg)])
        .await;
    assert!(
        env.decisions(Decision::TargetInitial) > initial_before,
        "the attachment never saw its target `initial`: {}",
        env.aws.report()
    );
    let moto = env.moto_elb().await;
    let health = moto.describe_target_health().target_group_arn(tg.get_str("arn").unwrap()).send().await.unwrap();
    let states: Vec<_> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            (
                d.target().and_then(|t| t.port()),
                d.target_health().and_then(|h| h.state()).map(|s| s.as_str().to_string()),
            )
        })
        .collect();
    assert_eq!(states, vec![(Some(8080), Some("healthy".to_string()))]);

    // In place: the health check, the delay, the listener's port, tags.
    let tg2 = kit.update("aws_lb_target_group", "aws_lb_target_group.web", &tg, &tg_cfg(&net, 10)).await;
    assert_eq!(tg2.get_str("arn"), tg.get_str("arn"), "a health check change is not a replacement");
    assert_eq!(tg2.get("health_check").and_then(|h| h.as_list()).and_then(|l| l[0].get("interval")), Some(&n(10)));
    let listener = made_listener[0].state.clone();
    let l2 = kit.update("aws_lb_listener", "aws_lb_listener.web", &listener, &listener_cfg(&lb, &tg, 8000)).await;
    assert_eq!(l2.get("port"), Some(&n(8000)));
    let mut retagged = lb_cfg(&net);
    if let Value::Map(m) = &mut retagged {
        m.insert("tags".into(), obj([("Role", s("web")), ("Tier", s("internal"))]));
    }
    let lb2 = kit.update("aws_lb", "aws_lb.web", &lb, &retagged).await;
    assert_eq!(lb2.get("tags"), Some(&obj([("Role", s("web")), ("Tier", s("internal"))])));

    let mut made: Vec<Made> = net.made.clone();
    made.push(Made { state: lb2, config: retagged, ..made_lb[0].clone() });
    made.push(Made { state: tg2, config: tg_cfg(&net, 10), ..made_tg[0].clone() });
    made.push(Made { state: l2, config: listener_cfg(&lb, &tg, 8000), ..made_listener[0].clone() });
    made.extend(made_attach);
    kit.check_steady(&made[made.len() - 4..]).await;

    // The attachment's delete waits while the target drains.
    let draining_before = env.decisions(Decision::TargetDraining);
    kit.delete_all(&made).await;
    assert!(
        env.decisions(Decision::TargetDraining) > draining_before,
        "the deregistration never saw its target `draining`: {}",
        env.aws.report()
    );
    let left = moto.describe_load_balancers().send().await.unwrap();
    assert!(left.load_balancers().is_empty(), "{:?}", left.load_balancers());
    let left = moto.describe_target_groups().send().await.unwrap();
    assert!(left.target_groups().is_empty(), "{:?}", left.target_groups());
}

/// The first answer of each create is lost: the SDK sends it again, and
/// the layer answers as AWS does (the same load balancer and target group
/// by name; `DuplicateListener` for the port). One of each exists after,
/// and a crash before any answer is recorded finds them by their tags.
#[tokio::test]
async fn lost_answers_make_no_second_object_and_adoption_finds_it() {
    let _guard = support::stats::shared().await;
    let env = env_with(|r| r.lose_answers_of(&["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"])).await;
    let net = network(&env).await;
    let kit = env.kit();
    let lb_ctx = kit.ctx("aws_lb.web");
    let lb = kit.create_as("aws_lb", &[("aws_lb.web", lb_cfg(&net))], vec![lb_ctx.clone()]).await.remove(0);
    let tg_ctx = kit.ctx("aws_lb_target_group.web");
    let mut unnamed = tg_cfg(&net, 5);
    if let Value::Map(m) = &mut unnamed {
        m.remove("name_prefix");
    }
    let tg = kit
        .create_as("aws_lb_target_group", &[("aws_lb_target_group.web", unnamed)], vec![tg_ctx.clone()])
        .await
        .remove(0);
    let l_ctx = kit.ctx("aws_lb_listener.web");
    let listener = kit
        .create_as("aws_lb_listener", &[("aws_lb_listener.web", listener_cfg(&lb, &tg, 80))], vec![l_ctx.clone()])
        .await
        .remove(0);
    assert!(env.decisions(Decision::AnswerLost) >= 3, "{}", env.aws.report());
    assert!(env.decisions(Decision::ElbNameReturned) >= 2, "{}", env.aws.report());

    let moto = env.moto_elb().await;
    assert_eq!(moto.describe_load_balancers().send().await.unwrap().load_balancers().len(), 1);
    assert_eq!(moto.describe_target_groups().send().await.unwrap().target_groups().len(), 1);
    let listeners = moto.describe_listeners().load_balancer_arn(lb.get_str("arn").unwrap()).send().await.unwrap();
    assert_eq!(listeners.listeners().len(), 1);

    // After a crash the engine asks with the pending create's context and
    // no configuration: each object is found by its ownership tags, and
    // another attempt of the same address finds nothing.
    for (type_, ctx, st) in
        [("aws_lb", &lb_ctx, &lb), ("aws_lb_target_group", &tg_ctx, &tg), ("aws_lb_listener", &l_ctx, &listener)]
    {
        let found =
            env.p.adopt(ctx, type_, &Value::Null).await.unwrap().unwrap_or_else(|| panic!("{type_} not adopted"));
        assert_eq!(found.get_str("arn"), st.get_str("arn"), "{type_}");
        let other = OpContext::new(ctx.addr.clone(), env.lineage.clone(), 1).with_token(OpContext::fresh_token());
        assert!(env.p.adopt(&other, type_, &Value::Null).await.unwrap().is_none(), "{type_}");
    }
    // An import knows a listener by its ARN alone.
    let by_arn = [("aws_lb_listener.web", obj([("id", s(listener.get_str("arn").unwrap()))]))];
    let imported = kit.refresh("aws_lb_listener", &by_arn).await.remove(0);
    assert_eq!(imported.as_ref(), Some(&listener));
    // An adopted load balancer plans as a no-op, though AWS reports no
    // `name_prefix` for a generated name.
    let adopted = env.p.adopt(&tg_ctx, "aws_lb_target_group", &Value::Null).await.unwrap().unwrap();
    let mut prefixed = tg_cfg(&net, 5);
    if let Value::Map(m) = &mut prefixed {
        m.insert("name_prefix".into(), s("berth-"));
    }
    let planned = env.p.plan(&tg_ctx, "aws_lb_target_group", Some(&adopted), &prefixed).await.unwrap();
    assert!(planned.requires_replace.is_empty(), "{:?}", planned.requires_replace);
}

/// A name taken by somebody else's load balancer with the same settings is
/// answered with that load balancer: berth refuses it instead of taking it
/// over. With other settings AWS refuses the name itself.
#[tokio::test]
async fn a_name_taken_by_another_load_balancer_is_a_conflict() {
    let _guard = support::stats::shared().await;
    let env = env_with(|r| r).await;
    let net = network(&env).await;
    // Made by "somebody else": another lineage.
    let foreign = Kit { p: &env.p, lineage: "another-state".into(), context: Box::new(String::new) };
    foreign.create_one("aws_lb", "aws_lb.web", lb_cfg(&net)).await;
    let ctx = env.kit().ctx("aws_lb.web");
    let planned = env.p.plan(&ctx, "aws_lb", None, &lb_cfg(&net)).await.unwrap();
    let o = env
        .kit()
        .apply("aws_lb", vec![ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.after } }])
        .await
        .remove(0);
    let e = o.error.expect("the create must fail");
    assert!(e.message.contains("does not belong to `aws_lb.web` of this state"), "{e}");
    assert_eq!(e.attribute.as_deref(), Some("name"));
    assert!(o.state.is_none());
    let mut internet = lb_cfg(&net);
    if let Value::Map(m) = &mut internet {
        m.insert("internal".into(), Value::Bool(false));
    }
    let ctx = env.kit().ctx("aws_lb.web");
    let planned = env.p.plan(&ctx, "aws_lb", None, &internet).await.unwrap();
    let o = env
        .kit()
        .apply("aws_lb", vec![ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.after } }])
        .await
        .remove(0);
    let e = o.error.expect("the create must fail");
    assert!(e.message.contains("other settings"), "{e}");
    assert_eq!(env.moto_elb().await.describe_load_balancers().send().await.unwrap().load_balancers().len(), 1);
}

/// A refresh reads load balancers by the page and their tags twenty at a
/// time: 25 load balancers are one DescribeLoadBalancers and two
/// DescribeTags, not 25 of each.
#[tokio::test]
async fn refresh_of_25_load_balancers_is_one_page_and_two_tag_calls() {
    let env = env_with(|r| r).await;
    let net = {
        let _guard = support::stats::shared().await;
        network(&env).await
    };
    let moto = env.moto_elb().await;
    let mut batch = Vec::new();
    for i in 0..25 {
        let out = moto
            .create_load_balancer()
            .name(format!("fleet-{i}"))
            .set_subnets(Some(net.subnets.clone()))
            .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
            .send()
            .await
            .unwrap();
        let arn = out.load_balancers()[0].load_balancer_arn().unwrap().to_string();
        batch.push((format!("aws_lb.fleet[{i}]"), obj([("id", s(&arn))])));
    }
    let items: Vec<(&str, Value)> = batch.iter().map(|(a, v)| (a.as_str(), v.clone())).collect();
    let count = |op: &str| -> u64 {
        api_stats::snapshot().iter().filter(|(k, _)| k.ends_with(&format!(":{op}"))).map(|(_, v)| v).sum()
    };
    let _guard = support::stats::exclusive().await;
    let (lbs, tags) = (count("DescribeLoadBalancers"), count("DescribeTags"));
    let refreshed = env.kit().refresh("aws_lb", &items).await;
    let (lbs, tags) = (count("DescribeLoadBalancers") - lbs, count("DescribeTags") - tags);
    drop(_guard);
    assert_eq!((lbs, tags), (1, 2), "25 load balancers took {lbs} DescribeLoadBalancers and {tags} DescribeTags");
    for (r, (addr, _)) in refreshed.iter().zip(&batch) {
        let r = r.as_ref().unwrap_or_else(|| panic!("{addr} not found"));
        assert_eq!(r.get("internal"), Some(&Value::Bool(true)), "{addr}");
    }
}

/// The index of the first output line that names `addr` and says `what`.
fn line_of(out: &str, addr: &str, what: &str) -> usize {
    out.lines()
        .position(|l| l.starts_with(addr) && l.contains(what))
        .unwrap_or_else(|| panic!("no line `{addr}` ... `{what}` in:\n{out}"))
}

/// `examples/aws-internal-lb` through the CLI: apply, a no-op re-plan, a
/// new release that replaces both hosts, and a clean destroy. The replaced
/// hosts are switched in the order a load balancer needs: each new host's
/// registration is healthy before its name moves, and the old host is
/// deregistered (drained) before it is destroyed.
#[tokio::test(flavor = "multi_thread")]
async fn the_internal_lb_example_replaces_hosts_behind_the_load_balancer() {
    let aws = Aws::start();
    let w = support::cli::Work::new();
    let src = support::venv::repo_root().join("examples/aws-internal-lb/main.hcl");
    w.write("main.hcl", &std::fs::read_to_string(src).unwrap());
    aws.berth(&w, None, &["apply", "--auto-approve"]).assert_ok();
    let out = w.run(&["output", "--json", "lb_dns_name"]);
    out.assert_ok();
    assert!(out.stdout.contains("web-internal"), "{}", out.stdout);
    aws.berth(&w, None, &["plan", "--detailed-exitcode"]).assert_code(0);

    let r = aws.berth(&w, None, &["apply", "--auto-approve", "--var", "release=2"]);
    r.assert_ok();
    let all = format!("{}\n{}", r.stderr, r.stdout);
    for i in 0..2 {
        let attach = format!("aws_lb_target_group_attachment.web[{i}]");
        let host = format!("aws_instance.web[{i}]");
        let record = format!("aws_route53_record.host[{i}]");
        let registered = line_of(&all, &attach, "Creation complete");
        assert!(registered < line_of(&all, &record, "Modifying..."), "{record} moved before {attach} was healthy:\n{all}");
        let drained = line_of(&all, &attach, "Destruction complete");
        assert!(drained < line_of(&all, &host, "Destroying..."), "{host} destroyed before it was drained:\n{all}");
    }
    for i in 0..2 {
        // The new registration is in before the old one goes.
        let attach = format!("aws_lb_target_group_attachment.web[{i}]");
        assert!(line_of(&all, &attach, "Creation complete") < line_of(&all, &attach, "Destroying..."), "{all}");
    }
    assert!(aws.stats().decided(Decision::TargetDraining) > 0, "{}", aws.report());
    // Kamal's inventory lists each new host, not the load balancer.
    let ips = w.run(&["output", "--json", "host_ips"]);
    ips.assert_ok();
    let ips: Vec<String> = serde_json::from_str(&ips.stdout).unwrap_or_else(|e| panic!("{e}: {}", ips.stdout));
    let kamal = w.read("config/deploy.yml");
    for ip in &ips {
        assert!(kamal.contains(ip.as_str()), "{ip} not in the Kamal inventory:\n{kamal}");
    }
    assert!(!kamal.contains("elb.amazonaws.com"), "{kamal}");
    aws.berth(&w, None, &["plan", "--detailed-exitcode", "--var", "release=2"]).assert_code(0);

    aws.berth(&w, None, &["destroy", "--auto-approve", "--var", "release=2"]).assert_ok();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&aws.moto_sdk_config().await);
    assert!(elb.describe_load_balancers().send().await.unwrap().load_balancers().is_empty());
    assert!(elb.describe_target_groups().send().await.unwrap().target_groups().is_empty());
}

/// A target that never becomes healthy fails its attachment's create once
/// the group's health check has had twice its time: the registration is
/// reported (the engine records it tainted, to be replaced), and nothing
/// ordered after it moves.
#[tokio::test]
async fn a_target_that_never_becomes_healthy_fails_its_attachment() {
    let _guard = support::stats::shared().await;
    // The layer keeps the target `initial` for good.
    let mut env = env_with(|mut r| {
        r.initial_polls = u32::MAX;
        r
    })
    .await;
    env.p = env.p.with_health_grace(std::time::Duration::ZERO);
    let net = network(&env).await;
    let kit = env.kit();
    let tg = kit.create_one("aws_lb_target_group", "aws_lb_target_group.web", tg_cfg(&net, 5)).await;
    let lb = kit.create_one("aws_lb", "aws_lb.web", lb_cfg(&net)).await;
    kit.create_one("aws_lb_listener", "aws_lb_listener.web", listener_cfg(&lb, &tg, 80)).await;
    let cfg = obj([("target_group_arn", s(tg.get_str("arn").unwrap())), ("target_id", s(net.host.get_str("id").unwrap()))]);
    let ctx = kit.ctx("aws_lb_target_group_attachment.web[0]");
    let planned = env.p.plan(&ctx, "aws_lb_target_group_attachment", None, &cfg).await.unwrap();
    let o = kit
        .apply("aws_lb_target_group_attachment", vec![ApplyOp { ctx, kind: ChangeKind::Create { planned: planned.after } }])
        .await
        .remove(0);
    let e = o.error.expect("the create must fail");
    assert!(e.message.contains("did not become healthy") && e.message.contains("`initial`"), "{e}");
    let st = o.state.expect("the registration is reported");
    assert_eq!(st.get_str("target_id"), net.host.get_str("id"));
    assert_eq!(st.get("port"), Some(&n(80)), "the group's port");
}

/// An imported load balancer carries none of berth's tags; the first update
/// of it writes them (the plan's "berth adds its ownership tags"), so it
/// is found by them like any object berth made.
#[tokio::test]
async fn an_imported_load_balancer_takes_the_ownership_tags() {
    let _guard = support::stats::shared().await;
    let env = env_with(|r| r).await;
    let net = network(&env).await;
    let moto = env.moto_elb().await;
    let out = moto
        .create_load_balancer()
        .name("web-internal")
        .set_subnets(Some(net.subnets.clone()))
        .set_security_groups(Some(vec![net.sg.clone()]))
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .send()
        .await
        .unwrap();
    let arn = out.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    assert!(env.p.ownership_marks("aws_lb").is_some());
    let kit = env.kit();
    let found = kit.refresh("aws_lb", &[("aws_lb.web", obj([("id", s(&arn))]))]).await.remove(0).unwrap();
    let ctx = kit.ctx("aws_lb.web").claiming(true);
    let planned = env.p.plan(&ctx, "aws_lb", Some(&found), &lb_cfg(&net)).await.unwrap();
    assert!(planned.requires_replace.is_empty(), "{:?}", planned.requires_replace);
    let kind = ChangeKind::Update { prior: found, planned: planned.after };
    let o = kit.apply("aws_lb", vec![ApplyOp { ctx: ctx.clone(), kind }]).await.remove(0);
    assert!(o.error.is_none(), "{:?}", o.error);
    let tags = moto.describe_tags().resource_arns(&arn).send().await.unwrap();
    let tags: Vec<(String, String)> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
        .collect();
    assert!(tags.contains(&("berth:address".into(), "aws_lb.web".into())), "{tags:?}");
    assert!(tags.contains(&("berth:lineage".into(), env.lineage.clone())), "{tags:?}");
    assert!(tags.contains(&("Role".into(), "web".into())), "the update's own tags too: {tags:?}");
}
