//! Several hosts behind one private name (issue #18 part 3): Route53
//! record sets with `set_identifier` and a routing policy (weighted,
//! multivalue answer), each its own resource and owned on its own, and
//! alias records pointing at a load balancer; against moto behind the
//! strict AWS layer, held to the provider contract by the kit.

use crate::support;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use berth::providers::Provider;
use berth::providers::aws::AwsProvider;
use berth::value::{Value, obj};
use support::aws::Aws;
use support::contract::{Kit, Made};

fn s(v: &str) -> Value {
    Value::str(v)
}

struct Env {
    aws: Aws,
    p: AwsProvider,
    lineage: String,
}

async fn env() -> Env {
    let aws = Aws::start();
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

    async fn moto_r53(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.aws.moto_sdk_config().await)
    }

    /// Every set of `name` in the zone, as moto holds them: (type, set
    /// identifier, weight, values or alias target).
    async fn sets(&self, zone: &str, name: &str) -> Vec<(String, Option<String>, Option<i64>, Vec<String>)> {
        let out = self.moto_r53().await.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
        let mut v: Vec<_> = out
            .resource_record_sets()
            .iter()
            .filter(|r| r.name().trim_end_matches('.') == name)
            .map(|r| {
                let mut values: Vec<String> = r.resource_records().iter().map(|x| x.value().to_string()).collect();
                if let Some(a) = r.alias_target() {
                    values.push(format!("alias {} {}", a.dns_name().trim_end_matches('.'), a.evaluate_target_health()));
                }
                values.sort();
                (r.r#type().as_str().to_string(), r.set_identifier().map(str::to_string), r.weight(), values)
            })
            .collect();
        v.sort();
        v
    }
}

fn weighted(zone: &str, id: &str, weight: i64, ip: &str) -> Value {
    obj([
        ("zone_id", s(zone)),
        ("name", s("web")),
        ("type", s("A")),
        ("ttl", Value::from(60i64)),
        ("records", Value::List(vec![s(ip)])),
        ("set_identifier", s(id)),
        ("weighted_routing_policy", Value::List(vec![obj([("weight", Value::from(weight))])])),
    ])
}

async fn zone(env: &Env) -> (Made, String) {
    let cfg = obj([("name", s("policies.test"))]);
    let z = env.kit().create_one("aws_route53_zone", "aws_route53_zone.main", cfg.clone()).await;
    let id = z.get_str("zone_id").or(z.get_str("id")).unwrap().to_string();
    (Made { type_: "aws_route53_zone".into(), addr: "aws_route53_zone.main".into(), config: cfg, state: z }, id)
}

#[tokio::test]
async fn weighted_sets_of_one_name_are_owned_one_by_one() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let kit = env.kit();
    let (zone_made, zone_id) = zone(&env).await;
    let made = kit
        .create_steady(
            "aws_route53_record",
            &[
                ("aws_route53_record.web[\"blue\"]", weighted(&zone_id, "blue", 10, "10.0.1.1")),
                ("aws_route53_record.web[\"green\"]", weighted(&zone_id, "green", 20, "10.0.1.2")),
            ],
        )
        .await;
    assert_eq!(made[0].state.get_str("id"), Some(format!("{zone_id}_web.policies.test_A_blue").as_str()));
    // Somebody else's set of the same name and type.
    let foreign = ResourceRecordSet::builder()
        .name("web.policies.test")
        .r#type(RrType::A)
        .ttl(60)
        .set_identifier("red")
        .weight(5)
        .resource_records(ResourceRecord::builder().value("10.0.1.3").build().unwrap())
        .build()
        .unwrap();
    env.moto_r53()
        .await
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(Change::builder().action(ChangeAction::Create).resource_record_set(foreign).build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let a_sets = |v: Vec<(String, Option<String>, Option<i64>, Vec<String>)>| {
        v.into_iter()
            .filter(|(t, ..)| t == "A")
            .map(|(_, id, w, vals)| (id.unwrap_or_default(), w, vals))
            .collect::<Vec<_>>()
    };
    // Each set has its own ownership record; the foreign one has none.
    let owners: Vec<_> = env.sets(&zone_id, "web.policies.test").await;
    assert_eq!(a_sets(owners).len(), 3);

    // A weight changes in place, one set only; the refresh still sees each
    // of berth's sets as it is (the foreign one is no drift).
    let blue = kit
        .update(
            "aws_route53_record",
            "aws_route53_record.web[\"blue\"]",
            &made[0].state,
            &weighted(&zone_id, "blue", 50, "10.0.1.1"),
        )
        .await;
    assert_eq!(
        blue.get("weighted_routing_policy").and_then(Value::as_list).and_then(|l| l[0].get("weight")),
        Some(&Value::from(50i64))
    );
    let mut now = made.clone();
    now[0].state = blue;
    now[0].config = weighted(&zone_id, "blue", 50, "10.0.1.1");
    kit.check_steady(&now).await;

    // Deleting blue leaves green and the foreign red.
    kit.delete("aws_route53_record", &[(now[0].addr.as_str(), now[0].state.clone())]).await;
    let left = a_sets(env.sets(&zone_id, "web.policies.test").await);
    assert_eq!(
        left,
        vec![
            ("green".to_string(), Some(20), vec!["10.0.1.2".to_string()]),
            ("red".to_string(), Some(5), vec!["10.0.1.3".to_string()]),
        ]
    );
    kit.delete("aws_route53_record", &[(now[1].addr.as_str(), now[1].state.clone())]).await;
    assert_eq!(a_sets(env.sets(&zone_id, "web.policies.test").await).len(), 1, "the foreign set survives");
    let _ = zone_made;
}

#[tokio::test]
async fn multivalue_answers_and_an_alias_to_a_load_balancer() {
    let _guard = support::stats::shared().await;
    let env = env().await;
    let kit = env.kit();
    let (_, zone_id) = zone(&env).await;
    let multi = |id: &str, ip: &str| {
        obj([
            ("zone_id", s(&zone_id)),
            ("name", s("api")),
            ("type", s("A")),
            ("records", Value::List(vec![s(ip)])),
            ("set_identifier", s(id)),
            ("multivalue_answer_routing_policy", Value::Bool(true)),
        ])
    };
    let made = kit
        .create_steady(
            "aws_route53_record",
            &[
                ("aws_route53_record.api[0]", multi("api-0", "10.0.2.1")),
                ("aws_route53_record.api[1]", multi("api-1", "10.0.2.2")),
            ],
        )
        .await;
    assert_eq!(made[1].state.get("multivalue_answer_routing_policy"), Some(&Value::Bool(true)));

    // An internal load balancer, made on moto, and the private name an
    // alias of it.
    let ec2 = aws_sdk_ec2::Client::new(&env.aws.moto_sdk_config().await);
    let vpc =
        ec2.create_vpc().cidr_block("10.30.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (z, cidr) in [("a", "10.30.1.0/24"), ("b", "10.30.2.0/24")] {
        let out = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(format!("us-east-1{z}"))
            .send()
            .await
            .unwrap();
        subnets.push(out.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&env.aws.moto_sdk_config().await);
    let lb = elb
        .create_load_balancer()
        .name("api-internal")
        .set_subnets(Some(subnets))
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .send()
        .await
        .unwrap();
    let lb = lb.load_balancers()[0].clone();
    let dns = lb.dns_name().unwrap().to_lowercase();
    let alias = |evaluate: bool| {
        obj([
            ("zone_id", s(&zone_id)),
            ("name", s("lb")),
            ("type", s("A")),
            (
                "alias",
                Value::List(vec![obj([
                    ("name", s(&format!("{dns}."))),
                    ("zone_id", s(lb.canonical_hosted_zone_id().unwrap())),
                    ("evaluate_target_health", Value::Bool(evaluate)),
                ])]),
            ),
        ])
    };
    let made_alias = kit.create_steady("aws_route53_record", &[("aws_route53_record.lb", alias(true))]).await;
    let st = &made_alias[0].state;
    assert_eq!(st.get("records"), Some(&Value::Null));
    assert_eq!(st.get("ttl"), Some(&Value::Null));
    let sets = env.sets(&zone_id, "lb.policies.test").await;
    assert!(sets.contains(&("A".to_string(), None, None, vec![format!("alias {dns} true")])), "{sets:?}");
    let st = kit.update("aws_route53_record", "aws_route53_record.lb", st, &alias(false)).await;
    let sets = env.sets(&zone_id, "lb.policies.test").await;
    assert!(sets.contains(&("A".to_string(), None, None, vec![format!("alias {dns} false")])), "{sets:?}");
    kit.delete("aws_route53_record", &[("aws_route53_record.lb", st)]).await;
    assert!(env.sets(&zone_id, "lb.policies.test").await.is_empty());
    kit.delete_all(&made).await;
}

/// Terraform's rules for the arguments, before any call, each naming its
/// attribute (the engine adds the file:line:col).
#[tokio::test]
async fn routing_arguments_are_checked_together() {
    let env = env().await;
    let base = |extra: Vec<(&str, Value)>| {
        let mut m = obj([("zone_id", s("Z1")), ("name", s("web")), ("type", s("A"))]).as_map().cloned().unwrap();
        for (k, v) in extra {
            m.insert(k.to_string(), v);
        }
        Value::Map(m)
    };
    let records = ("records", Value::List(vec![s("10.0.0.1")]));
    let alias = (
        "alias",
        Value::List(vec![obj([
            ("name", s("x.elb.amazonaws.com")),
            ("zone_id", s("Z2")),
            ("evaluate_target_health", Value::Bool(true)),
        ])]),
    );
    let weight = |w: f64| ("weighted_routing_policy", Value::List(vec![obj([("weight", Value::Number(w))])]));
    let cases: Vec<(Value, &str, &str)> = vec![
        (base(vec![records.clone(), alias.clone()]), "records", "cannot be set with `alias`"),
        (base(vec![alias.clone(), ("ttl", Value::from(60i64))]), "ttl", "cannot be set with `alias`"),
        (base(vec![records.clone(), ("set_identifier", s("blue"))]), "set_identifier", "requires a routing policy"),
        (base(vec![records.clone(), weight(10.0)]), "set_identifier", "requires `set_identifier`"),
        (base(vec![records.clone(), weight(256.0), ("set_identifier", s("b"))]), "weighted_routing_policy", "0 to 255"),
        (
            base(vec![
                records.clone(),
                weight(1.0),
                ("set_identifier", s("b")),
                ("multivalue_answer_routing_policy", Value::Bool(true)),
            ]),
            "multivalue_answer_routing_policy",
            "cannot both be set",
        ),
        (base(vec![]), "records", "is required"),
    ];
    for (cfg, attr, says) in cases {
        let errs = env.p.validate(berth::addr::Mode::Managed, "aws_route53_record", &cfg);
        assert!(
            errs.iter().any(|e| e.attribute.as_deref() == Some(attr) && e.message.contains(says)),
            "{cfg}: wanted `{attr}`: {says}; got {errs:?}"
        );
    }
    assert!(env.p.validate(berth::addr::Mode::Managed, "aws_route53_record", &base(vec![alias])).is_empty());
    assert!(
        env.p
            .validate(
                berth::addr::Mode::Managed,
                "aws_route53_record",
                &base(vec![records, weight(0.0), ("set_identifier", s("b"))])
            )
            .is_empty()
    );
}
