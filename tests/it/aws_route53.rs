//! The Route53 provider against a real moto server behind the strict AWS
//! layer (`support::aws`): a private zone on a VPC, records that follow
//! hosts, drift, the ownership registry, batching and the API-call counts it
//! promises.
//!
//! API counts are process-wide, so the tests that talk to moto run one at a
//! time (`support::stats::exclusive`).

use crate::support;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_credential_types::Credentials;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType, TagResourceType,
};
use berth::addr::Mode;
use berth::providers::aws::route53::{ASSOCIATION_TYPE, RECORD_TYPE, Route53, ZONE_TYPE};
use berth::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Planned, Provider};
use berth::telemetry::api_stats;
use berth::value::{Value, obj};
use support::aws::Aws;
use support::strict::{Rule, Rules};

struct Env {
    _aws: Aws,
    r53: Route53,
    /// Route53 through the layer, for changes made by hand.
    by_hand: aws_sdk_route53::Client,
    /// moto itself, for reading what exists.
    raw: aws_sdk_route53::Client,
    ec2: aws_sdk_ec2::Client,
    lineage: String,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(|r| r).await
    }

    /// The tests that count berth's calls count attempts: a throttled call
    /// is retried, and its retry counted. They run without the rate limit
    /// (shown by `strict_layer::rate_limits` and `faults::converges_under_aws_rate_limits`).
    async fn counting() -> Env {
        Env::start_with(|r| r.without(Rule::RateLimits)).await
    }

    async fn start_with(rules: impl FnOnce(Rules) -> Rules) -> Env {
        let aws = Aws::builder().rules(rules).start();
        let sdk = sdk_config().await;
        let r53 = Route53::new(&sdk, Some(aws.endpoint.clone()));
        let client = |endpoint: &str| {
            aws_sdk_route53::Client::from_conf(aws_sdk_route53::config::Builder::from(&sdk).endpoint_url(endpoint).build())
        };
        let (by_hand, raw) = (client(&aws.endpoint), client(&aws.moto_endpoint));
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&sdk).endpoint_url(&aws.endpoint).build(),
        );
        Env { _aws: aws, r53, by_hand, raw, ec2, lineage: uuid::Uuid::new_v4().to_string() }
    }

    fn ctx(&self, addr: &str) -> OpContext {
        OpContext::new(addr.parse().unwrap(), self.lineage.clone(), 1).with_token(OpContext::fresh_token())
    }

    async fn vpc(&self, cidr: &str) -> String {
        let out = self.ec2.create_vpc().cidr_block(cidr).send().await.expect("CreateVpc");
        out.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_string()
    }

    /// A record set as Route53 has it: (ttl, values).
    async fn raw_get(&self, zone: &str, name: &str, t: RrType) -> Option<(i64, Vec<String>)> {
        let out = self
            .raw
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(t.clone())
            .max_items(1)
            .send()
            .await
            .expect("ListResourceRecordSets");
        let set = out.resource_record_sets().first()?;
        if set.name().trim_end_matches('.') != name || *set.r#type() != t {
            return None;
        }
        let mut values: Vec<String> = set.resource_records().iter().map(|r| r.value().to_string()).collect();
        values.sort();
        Some((set.ttl().unwrap_or_default(), values))
    }

    async fn raw_change(&self, zone: &str, action: ChangeAction, name: &str, t: RrType, ttl: i64, values: &[&str]) {
        let mut set = ResourceRecordSet::builder().name(name).r#type(t).ttl(ttl);
        for v in values {
            set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
        }
        let change = Change::builder().action(action).resource_record_set(set.build().unwrap()).build().unwrap();
        self.by_hand
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .expect("ChangeResourceRecordSets by hand");
    }

    async fn raw_count(&self, zone: &str) -> usize {
        let mut n = 0;
        let mut next: Option<(String, RrType)> = None;
        loop {
            let mut req = self.raw.list_resource_record_sets().hosted_zone_id(zone);
            if let Some((name, t)) = next.take() {
                req = req.start_record_name(name).start_record_type(t);
            }
            let out = req.send().await.unwrap();
            n += out.resource_record_sets().len();
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(name), Some(t)) => next = Some((name.to_string(), t.clone())),
                _ => return n,
            }
        }
    }

    fn owner_txt(&self, addr: &str, t: &str) -> String {
        let _ = t;
        format!("\"berth:{}:{addr}\"", &self.lineage[..8])
    }
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "berth-tests"))
        .load()
        .await
}

/// Calls of a Route53 operation so far, whatever the service key is spelled.
fn calls(op: &str) -> u64 {
    api_stats::snapshot()
        .iter()
        .filter(|(k, _)| k.starts_with("route") && k.ends_with(&format!(":{op}")))
        .map(|(_, v)| *v)
        .sum()
}

async fn plan(p: &Route53, t: &str, ctx: &OpContext, prior: Option<&Value>, cfg: &Value) -> Planned {
    p.plan(ctx, t, prior, cfg).await.unwrap_or_else(|e| panic!("plan of `{}` failed: {e}", ctx.addr))
}

/// Runs one apply batch and returns every outcome, by index, checking each
/// operation was reported exactly once.
async fn apply(p: &Route53, t: &str, ops: Vec<ApplyOp>) -> Vec<ApplyOutcome> {
    support::contract::Kit::new(p).apply(t, ops).await
}

fn op(ctx: &OpContext, prior: Option<Value>, planned: &Planned) -> ApplyOp {
    let planned = planned.after.clone();
    let kind = match prior {
        None => ChangeKind::Create { planned },
        Some(prior) => ChangeKind::Update { prior, planned },
    };
    ApplyOp { ctx: ctx.clone(), kind }
}

fn ok_state(o: ApplyOutcome) -> Option<Value> {
    if let Some(e) = o.error {
        panic!("apply failed: {e}");
    }
    o.state
}

/// Plans and applies one instance the way the engine does: create, or
/// update when the plan differs from the prior state.
async fn converge(p: &Route53, t: &str, ctx: &OpContext, prior: Option<Value>, cfg: &Value) -> Value {
    let planned = plan(p, t, ctx, prior.as_ref(), cfg).await;
    assert!(planned.requires_replace.is_empty(), "unexpected replacement: {:?}", planned.requires_replace);
    let outcome = apply(p, t, vec![op(ctx, prior, &planned)]).await.remove(0);
    ok_state(outcome).expect("a state")
}

async fn assert_no_change(p: &Route53, t: &str, ctx: &OpContext, prior: &Value, cfg: &Value) {
    let planned = plan(p, t, ctx, Some(prior), cfg).await;
    assert!(planned.requires_replace.is_empty(), "{}: replacement planned: {:?}", ctx.addr, planned.requires_replace);
    assert!(planned.after.same_as(prior), "{}: change planned\nprior: {prior}\nafter: {}", ctx.addr, planned.after);
}

async fn refresh(p: &Route53, t: &str, items: Vec<(OpContext, Value)>) -> Vec<Option<Value>> {
    p.refresh(t, items).await.into_iter().map(|r| r.unwrap_or_else(|e| panic!("refresh failed: {e}"))).collect()
}

fn record(zone_id: &str, name: &str, t: &str, values: &[&str]) -> Value {
    obj([
        ("zone_id", Value::str(zone_id)),
        ("name", Value::str(name)),
        ("type", Value::str(t)),
        ("records", Value::List(values.iter().map(|v| Value::str(*v)).collect())),
    ])
}

fn with(v: &Value, key: &str, x: Value) -> Value {
    let mut m = v.as_map().cloned().unwrap();
    m.insert(key.into(), x);
    Value::Map(m)
}

fn private_zone(name: &str, vpc: &str) -> Value {
    obj([("name", Value::str(name)), ("vpc", Value::List(vec![obj([("vpc_id", Value::str(vpc))])]))])
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

async fn zone_vpcs(env: &Env, zone_id: &str) -> Vec<String> {
    let hz = env.raw.get_hosted_zone().id(zone_id).send().await.unwrap();
    let mut v: Vec<String> = hz.vpcs().iter().filter_map(|v| v.vpc_id().map(str::to_string)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn private_zone_records_follow_hosts_and_respect_ownership() {
    let _serial = support::stats::exclusive().await;
    let env = Env::counting().await;
    let p = &env.r53;
    let vpc1 = env.vpc("10.0.0.0/16").await;
    let vpc2 = env.vpc("10.1.0.0/16").await;

    // A private zone on one VPC.
    let zctx = env.ctx("aws_route53_zone.internal");
    let zone_cfg = private_zone("internal", &vpc1);
    assert!(p.validate(Mode::Managed, ZONE_TYPE, &zone_cfg).is_empty());
    let zone = converge(p, ZONE_TYPE, &zctx, None, &zone_cfg).await;
    let zone_id = zone.get_str("zone_id").unwrap().to_string();
    assert_eq!(zone.get_str("id"), Some(zone_id.as_str()));
    assert_eq!(zone.get_str("name"), Some("internal"));
    assert_eq!(zone.get_str("arn").unwrap(), format!("arn:aws:route53:::hostedzone/{zone_id}"));
    assert!(!strings(zone.get("name_servers").unwrap()).is_empty());
    let hz = env.raw.get_hosted_zone().id(&zone_id).send().await.unwrap();
    assert!(hz.hosted_zone().unwrap().config().unwrap().private_zone());
    assert_eq!(zone_vpcs(&env, &zone_id).await, vec![vpc1.clone()]);

    // A run that died before recording the zone: the planner adopts while
    // it refreshes, before the configuration is evaluated, so adopt() gets
    // `Null` and finds the zone by its caller reference alone, VPC included.
    let adopted = p.adopt(&zctx, ZONE_TYPE, &Value::Null).await.unwrap().expect("found by its caller reference");
    assert!(adopted.same_as(&zone), "adopted {adopted}\nrecorded {zone}");
    let adopted = p.adopt(&zctx, ZONE_TYPE, &zone_cfg).await.unwrap().expect("found by name and caller reference");
    assert!(adopted.same_as(&zone), "adopted {adopted}\nrecorded {zone}");
    let next = OpContext { generation: 2, ..zctx.clone() };
    assert_eq!(p.adopt(&next, ZONE_TYPE, &Value::Null).await.unwrap(), None, "another create's zone");

    // A second VPC through an association resource.
    let actx = env.ctx("aws_route53_zone_association.second");
    let assoc_cfg = obj([("zone_id", Value::str(&zone_id)), ("vpc_id", Value::str(&vpc2))]);
    let assoc = converge(p, ASSOCIATION_TYPE, &actx, None, &assoc_cfg).await;
    assert_eq!(assoc.get_str("id").unwrap(), format!("{zone_id}:{vpc2}"));
    assert_eq!(assoc.get_str("vpc_region"), Some("eu-west-1"));
    let mut both = vec![vpc1.clone(), vpc2.clone()];
    both.sort();
    assert_eq!(zone_vpcs(&env, &zone_id).await, both);

    // Refreshing changes nothing; the association is not drift of the zone.
    let zone = refresh(p, ZONE_TYPE, vec![(zctx.clone(), zone)]).await.remove(0).expect("zone exists");
    assert_no_change(p, ZONE_TYPE, &zctx, &zone, &zone_cfg).await;
    let assoc = refresh(p, ASSOCIATION_TYPE, vec![(actx.clone(), assoc)]).await.remove(0).expect("association exists");
    assert_no_change(p, ASSOCIATION_TYPE, &actx, &assoc, &assoc_cfg).await;

    // Two A records, one relative and one absolute name, in one request.
    let sctx = env.ctx("aws_route53_record.search");
    let cctx = env.ctx("aws_route53_record.core");
    let search_cfg = record(&zone_id, "micro-search", "A", &["10.0.1.10"]);
    let core_cfg = record(&zone_id, "micro-core.internal", "A", &["10.0.1.20"]);
    let ps = plan(p, RECORD_TYPE, &sctx, None, &search_cfg).await;
    let pc = plan(p, RECORD_TYPE, &cctx, None, &core_cfg).await;
    assert_eq!(ps.after.get_str("fqdn"), Some("micro-search.internal"));
    assert_eq!(ps.after.get_str("id").unwrap(), format!("{zone_id}_micro-search.internal_A"));
    let before = calls("ChangeResourceRecordSets");
    let out = apply(p, RECORD_TYPE, vec![op(&sctx, None, &ps), op(&cctx, None, &pc)]).await;
    assert_eq!(calls("ChangeResourceRecordSets") - before, 1, "both records and their owners in one request");
    let mut states = out.into_iter().map(|o| ok_state(o).unwrap());
    let (search, core) = (states.next().unwrap(), states.next().unwrap());
    assert_eq!(core.get_str("fqdn"), Some("micro-core.internal"));
    assert_eq!(env.raw_get(&zone_id, "micro-search.internal", RrType::A).await, Some((300, vec!["10.0.1.10".into()])));
    assert_eq!(env.raw_get(&zone_id, "micro-core.internal", RrType::A).await, Some((300, vec!["10.0.1.20".into()])));
    assert_eq!(
        env.raw_get(&zone_id, "_berth-owner-a.micro-search.internal", RrType::Txt).await,
        Some((300, vec![env.owner_txt("aws_route53_record.search", "A")]))
    );

    // Refresh: no change.
    let lists = calls("ListResourceRecordSets");
    let refreshed = refresh(p, RECORD_TYPE, vec![(sctx.clone(), search), (cctx.clone(), core)]).await;
    assert_eq!(calls("ListResourceRecordSets") - lists, 1, "one listing for the zone, not one per record");
    let (search, core) = (refreshed[0].clone().unwrap(), refreshed[1].clone().unwrap());
    assert_no_change(p, RECORD_TYPE, &sctx, &search, &search_cfg).await;
    assert_no_change(p, RECORD_TYPE, &cctx, &core, &core_cfg).await;

    // A plan refreshes every type at once: the zone's name servers (a
    // private zone's apex NS) come from the scan its records' refresh makes.
    let lists = calls("ListResourceRecordSets");
    let (zones, records) = futures::join!(
        refresh(p, ZONE_TYPE, vec![(zctx.clone(), zone.clone())]),
        refresh(p, RECORD_TYPE, vec![(sctx.clone(), search.clone()), (cctx.clone(), core.clone())]),
    );
    assert_eq!(calls("ListResourceRecordSets") - lists, 1, "one scan for the zone and its records");
    assert_eq!(zones[0].as_ref().unwrap().get("name_servers"), zone.get("name_servers"));
    assert_eq!(records[0].as_ref(), Some(&search));

    // The search host is replaced: the record moves to the new IP in place.
    let search_cfg = record(&zone_id, "micro-search", "A", &["10.0.2.10"]);
    let planned = plan(p, RECORD_TYPE, &sctx, Some(&search), &search_cfg).await;
    assert!(planned.requires_replace.is_empty());
    assert_eq!(strings(planned.after.get("records").unwrap()), vec!["10.0.2.10"]);
    let before = calls("ChangeResourceRecordSets");
    let search = ok_state(apply(p, RECORD_TYPE, vec![op(&sctx, Some(search), &planned)]).await.remove(0)).unwrap();
    assert_eq!(calls("ChangeResourceRecordSets") - before, 1);
    assert_eq!(env.raw_get(&zone_id, "micro-search.internal", RrType::A).await, Some((300, vec!["10.0.2.10".into()])));
    assert_eq!(
        env.raw_get(&zone_id, "_berth-owner-a.micro-search.internal", RrType::Txt).await,
        Some((300, vec![env.owner_txt("aws_route53_record.search", "A")]))
    );

    // Someone edits micro-core by hand: refresh reports it, apply reverts it.
    env.raw_change(&zone_id, ChangeAction::Upsert, "micro-core.internal", RrType::A, 300, &["10.9.9.9"]).await;
    let core = refresh(p, RECORD_TYPE, vec![(cctx.clone(), core)]).await.remove(0).unwrap();
    assert_eq!(strings(core.get("records").unwrap()), vec!["10.9.9.9"]);
    let core = converge(p, RECORD_TYPE, &cctx, Some(core), &core_cfg).await;
    assert_eq!(strings(core.get("records").unwrap()), vec!["10.0.1.20"]);
    assert_eq!(env.raw_get(&zone_id, "micro-core.internal", RrType::A).await, Some((300, vec!["10.0.1.20".into()])));

    // Someone deletes it by hand: refresh finds nothing, and it is created
    // again, reusing its ownership record. (The host moves too: moto refuses
    // a CREATE identical to one in its change journal while any record sorts
    // after it, which real Route53 does not.)
    env.raw_change(&zone_id, ChangeAction::Delete, "micro-core.internal", RrType::A, 300, &["10.0.1.20"]).await;
    assert_eq!(refresh(p, RECORD_TYPE, vec![(cctx.clone(), core)]).await.remove(0), None);
    let core_cfg = record(&zone_id, "micro-core.internal", "A", &["10.0.1.21"]);
    let planned = plan(p, RECORD_TYPE, &cctx, None, &core_cfg).await;
    assert!(planned.notes.iter().any(|n| n.contains("reusing the ownership record")), "{:?}", planned.notes);
    let core = ok_state(apply(p, RECORD_TYPE, vec![op(&cctx, None, &planned)]).await.remove(0)).unwrap();
    assert_eq!(env.raw_get(&zone_id, "micro-core.internal", RrType::A).await, Some((300, vec!["10.0.1.21".into()])));

    // A record berth does not own is refused, then taken over on request.
    env.raw_change(&zone_id, ChangeAction::Create, "legacy.internal", RrType::A, 60, &["10.5.5.5"]).await;
    let lctx = env.ctx("aws_route53_record.legacy");
    let legacy_cfg = record(&zone_id, "legacy", "A", &["10.0.3.3"]);
    let err = p.plan(&lctx, RECORD_TYPE, None, &legacy_cfg).await.unwrap_err();
    assert_eq!(
        err.message,
        "record `legacy.internal` A already exists and is not managed by berth; \
         set allow_overwrite = true to take it over"
    );
    assert_eq!(err.attribute.as_deref(), Some("name"));
    assert_eq!(env.raw_get(&zone_id, "legacy.internal", RrType::A).await, Some((60, vec!["10.5.5.5".into()])));
    let legacy_cfg = with(&legacy_cfg, "allow_overwrite", Value::Bool(true));
    let planned = plan(p, RECORD_TYPE, &lctx, None, &legacy_cfg).await;
    assert!(planned.notes.iter().any(|n| n.contains("will be overwritten")), "{:?}", planned.notes);
    let legacy = ok_state(apply(p, RECORD_TYPE, vec![op(&lctx, None, &planned)]).await.remove(0)).unwrap();
    assert_eq!(env.raw_get(&zone_id, "legacy.internal", RrType::A).await, Some((300, vec!["10.0.3.3".into()])));
    assert_eq!(
        env.raw_get(&zone_id, "_berth-owner-a.legacy.internal", RrType::Txt).await,
        Some((300, vec![env.owner_txt("aws_route53_record.legacy", "A")]))
    );

    // Another state may not take micro-search.
    let other = OpContext { lineage: "other-lineage".into(), ..sctx.clone() };
    let err = p.plan(&other, RECORD_TYPE, None, &search_cfg).await.unwrap_err();
    assert!(
        err.message.contains(&format!("is managed by another berth state (lineage `{}`", &env.lineage[..8])),
        "{}",
        err.message
    );

    // A run that died after creating micro-search but before recording it:
    // adopt() finds it, and a plan without state adopts it too.
    let adopted = p.adopt(&sctx, RECORD_TYPE, &search_cfg).await.unwrap().expect("adoptable");
    assert!(adopted.same_as(&search), "adopted {adopted}\nrecorded {search}");
    // Without the configuration there is no zone to look in: the plan adopts.
    assert_eq!(p.adopt(&sctx, RECORD_TYPE, &Value::Null).await.unwrap(), None);
    let planned = plan(p, RECORD_TYPE, &sctx, None, &search_cfg).await;
    assert!(
        planned.notes.iter().any(|n| n == "adopting record `micro-search.internal` A left by an interrupted run"),
        "{:?}",
        planned.notes
    );
    let search = ok_state(apply(p, RECORD_TYPE, vec![op(&sctx, None, &planned)]).await.remove(0)).unwrap();
    assert_eq!(p.adopt(&other, RECORD_TYPE, &search_cfg).await.unwrap(), None, "not another state's to adopt");

    // Deleting the three records is one request and leaves no owner behind.
    let before = calls("ChangeResourceRecordSets");
    let deletes = [(&sctx, search), (&cctx, core), (&lctx, legacy)]
        .into_iter()
        .map(|(c, prior)| ApplyOp { ctx: c.clone(), kind: ChangeKind::Delete { prior } })
        .collect();
    for o in apply(p, RECORD_TYPE, deletes).await {
        assert_eq!(ok_state(o), None);
    }
    assert_eq!(calls("ChangeResourceRecordSets") - before, 1);
    for name in ["micro-search.internal", "micro-core.internal", "legacy.internal"] {
        assert_eq!(env.raw_get(&zone_id, name, RrType::A).await, None, "{name}");
        assert_eq!(env.raw_get(&zone_id, &format!("_berth-owner-a.{name}"), RrType::Txt).await, None, "{name}");
    }

    // The association goes; the zone keeps its own VPC.
    let out =
        apply(p, ASSOCIATION_TYPE, vec![ApplyOp { ctx: actx.clone(), kind: ChangeKind::Delete { prior: assoc } }])
            .await;
    assert_eq!(ok_state(out.into_iter().next().unwrap()), None);
    assert_eq!(zone_vpcs(&env, &zone_id).await, vec![vpc1.clone()]);

    // The zone's own blocks: add vpc2, a comment and tags, then drop vpc1.
    // (vpc2 is associated before vpc1 goes, so the zone always has a VPC.)
    let vpc_block = |id: &str| obj([("vpc_id", Value::str(id))]);
    let zone_cfg = obj([
        ("name", Value::str("internal")),
        ("vpc", Value::List(vec![vpc_block(&vpc2), vpc_block(&vpc1)])),
        ("comment", Value::str("private names")),
        ("tags", obj([("team", Value::str("search"))])),
    ]);
    let zone = converge(p, ZONE_TYPE, &zctx, Some(zone), &zone_cfg).await;
    assert_eq!(zone_vpcs(&env, &zone_id).await, both);
    let hz = env.raw.get_hosted_zone().id(&zone_id).send().await.unwrap();
    assert_eq!(hz.hosted_zone().unwrap().config().unwrap().comment(), Some("private names"));
    let tags = env
        .raw
        .list_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(&zone_id)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = tags
        .resource_tag_set()
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(tags, vec![("team".to_string(), "search".to_string())]);
    let zone = refresh(p, ZONE_TYPE, vec![(zctx.clone(), zone)]).await.remove(0).unwrap();
    assert_no_change(p, ZONE_TYPE, &zctx, &zone, &zone_cfg).await;
    let zone_cfg = with(&zone_cfg, "vpc", Value::List(vec![vpc_block(&vpc2)]));
    let zone = converge(p, ZONE_TYPE, &zctx, Some(zone), &zone_cfg).await;
    assert_eq!(zone_vpcs(&env, &zone_id).await, vec![vpc2.clone()]);
    // A private zone cannot become public in place.
    let public = obj([("name", Value::str("internal"))]);
    let planned = plan(p, ZONE_TYPE, &zctx, Some(&zone), &public).await;
    assert_eq!(planned.requires_replace, vec!["vpc".to_string()]);

    // A zone holding a record berth does not manage is not deleted...
    env.raw_change(&zone_id, ChangeAction::Create, "stray.internal", RrType::A, 60, &["10.7.7.7"]).await;
    let out =
        apply(p, ZONE_TYPE, vec![ApplyOp { ctx: zctx.clone(), kind: ChangeKind::Delete { prior: zone.clone() } }])
            .await
            .remove(0);
    let err = out.error.expect("delete refused");
    assert!(err.message.contains("`stray.internal` A") && err.message.contains("force_destroy"), "{}", err.message);
    assert!(out.state.is_some(), "the zone is still there");
    // ...unless force_destroy says so.
    let zone_cfg = with(&zone_cfg, "force_destroy", Value::Bool(true));
    let zone = converge(p, ZONE_TYPE, &zctx, Some(zone), &zone_cfg).await;
    assert_eq!(zone.get("force_destroy"), Some(&Value::Bool(true)));
    let out = apply(p, ZONE_TYPE, vec![ApplyOp { ctx: zctx.clone(), kind: ChangeKind::Delete { prior: zone } }]).await;
    assert_eq!(ok_state(out.into_iter().next().unwrap()), None);
    let gone = env.raw.get_hosted_zone().id(&zone_id).send().await.unwrap_err();
    assert_eq!(aws_sdk_route53::error::ProvideErrorMetadata::code(&gone), Some("NoSuchHostedZone"));
}

#[tokio::test]
async fn five_hundred_records_cost_the_minimum_of_requests() {
    let _serial = support::stats::exclusive().await;
    let env = Env::counting().await;
    let p = &env.r53;
    let vpc = env.vpc("10.2.0.0/16").await;
    let zctx = env.ctx("aws_route53_zone.bulk");
    let zone = converge(p, ZONE_TYPE, &zctx, None, &private_zone("bulk.internal", &vpc)).await;
    let zone_id = zone.get_str("zone_id").unwrap().to_string();

    const N: usize = 500;
    let ip = |i: usize, net: usize| format!("10.{net}.{}.{}", i / 250, i % 250 + 1);
    let items: Vec<(OpContext, Value)> = (0..N)
        .map(|i| {
            (
                env.ctx(&format!("aws_route53_record.node[{i}]")),
                record(&zone_id, &format!("node-{i}"), "A", &[&ip(i, 2)]),
            )
        })
        .collect();

    // 500 plans of creates share one listing of the zone.
    let lists = calls("ListResourceRecordSets");
    let planned = futures::future::join_all(items.iter().map(|(c, cfg)| plan(p, RECORD_TYPE, c, None, cfg))).await;
    assert_eq!(calls("ListResourceRecordSets") - lists, 1);

    // What Route53 counts for this batch: 1000 ResourceRecord elements
    // (500 records + 500 owners, CREATE counts once), and the characters of
    // every Value: short owner values keep the batch under 32,000
    // characters, so all of it is one request.
    let elements = 2 * N;
    let chars: usize =
        (0..N).map(|i| ip(i, 2).len() + env.owner_txt(&format!("aws_route53_record.node[{i}]"), "A").len()).sum();
    let minimum = (elements.div_ceil(1000)).max(chars.div_ceil(32_000));
    assert_eq!(minimum, 1, "{chars} characters");
    let before = calls("ChangeResourceRecordSets");
    let ops = items.iter().zip(&planned).map(|((c, _), pl)| op(c, None, pl)).collect();
    let states: Vec<Value> = apply(p, RECORD_TYPE, ops).await.into_iter().map(|o| ok_state(o).unwrap()).collect();
    assert_eq!(calls("ChangeResourceRecordSets") - before, minimum as u64);
    // Every record and its owner are there, besides the zone's SOA and NS.
    let total = env.raw_count(&zone_id).await;
    assert_eq!(total, 2 * N + 2);

    // A no-op refresh of 500 records: one paged scan, 300 sets a page.
    let lists = calls("ListResourceRecordSets");
    let prior: Vec<(OpContext, Value)> = items.iter().map(|(c, _)| c.clone()).zip(states).collect();
    let refreshed = refresh(p, RECORD_TYPE, prior.clone()).await;
    assert_eq!(calls("ListResourceRecordSets") - lists, total.div_ceil(300) as u64);
    assert_eq!(total.div_ceil(300), 4);
    for ((c, before), now) in prior.iter().zip(&refreshed) {
        let now = now.as_ref().unwrap_or_else(|| panic!("{} vanished", c.addr));
        assert!(now.same_as(before), "{}: {now} != {before}", c.addr);
    }

    // Every host replaced at once: 500 UPSERTs of the records alone (their
    // owners are right) are 1000 elements counted, one request.
    let planned = futures::future::join_all((0..N).map(|i| {
        let cfg = record(&zone_id, &format!("node-{i}"), "A", &[&ip(i, 3)]);
        let (c, prior) = &prior[i];
        async move { plan(p, RECORD_TYPE, c, Some(prior), &cfg).await }
    }))
    .await;
    let before = calls("ChangeResourceRecordSets");
    let ops = prior.iter().zip(&planned).map(|((c, pr), pl)| op(c, Some(pr.clone()), pl)).collect();
    for o in apply(p, RECORD_TYPE, ops).await {
        ok_state(o);
    }
    assert_eq!(calls("ChangeResourceRecordSets") - before, 1);
    for i in [0, 249, 250, 499] {
        let name = format!("node-{i}.bulk.internal");
        assert_eq!(env.raw_get(&zone_id, &name, RrType::A).await, Some((300, vec![ip(i, 3)])), "{name}");
    }
}

#[tokio::test]
async fn a_delete_from_a_stale_state_deletes_the_record_as_listed() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start().await;
    let p = &env.r53;
    let vpc = env.vpc("10.3.0.0/16").await;
    let zone = converge(p, ZONE_TYPE, &env.ctx("aws_route53_zone.z"), None, &private_zone("solo.internal", &vpc)).await;
    let zone_id = zone.get_str("zone_id").unwrap().to_string();
    let gctx = env.ctx("aws_route53_record.gone");
    let gone = converge(p, RECORD_TYPE, &gctx, None, &record(&zone_id, "gone", "A", &["10.3.0.9"])).await;
    // The state disagrees with Route53 (edited outside berth, not yet
    // refreshed): a DELETE must repeat the set as Route53 has it, so berth
    // deletes it as listed, in the same request as the creates.
    let mut stale = gone.as_map().cloned().unwrap();
    stale.insert("records".into(), Value::List(vec!["10.3.0.99".into()]));
    stale.insert("ttl".into(), Value::from(60));

    let mut ops = vec![ApplyOp { ctx: gctx.clone(), kind: ChangeKind::Delete { prior: Value::Map(stale) } }];
    for i in 0..3 {
        let c = env.ctx(&format!("aws_route53_record.ok[{i}]"));
        let pl = plan(p, RECORD_TYPE, &c, None, &record(&zone_id, &format!("ok-{i}"), "A", &["10.3.1.1"])).await;
        ops.push(op(&c, None, &pl));
    }
    let before = calls("ChangeResourceRecordSets");
    let out = apply(p, RECORD_TYPE, ops).await;
    assert_eq!(calls("ChangeResourceRecordSets") - before, 1);
    for o in out {
        assert!(o.error.is_none(), "{:?}", o.error);
    }
    for i in 0..3 {
        assert!(env.raw_get(&zone_id, &format!("ok-{i}.solo.internal"), RrType::A).await.is_some());
    }
    assert_eq!(env.raw_get(&zone_id, "gone.solo.internal", RrType::A).await, None);
    assert_eq!(env.raw_get(&zone_id, "_berth-owner-a.gone.solo.internal", RrType::Txt).await, None);
}

#[tokio::test]
async fn invalid_names_and_values_are_rejected_before_any_call() {
    let p = Route53::new(&sdk_config().await, Some("http://127.0.0.1:9".into()));
    let check = |name: &str, t: &str, values: &[&str]| {
        p.validate(Mode::Managed, RECORD_TYPE, &record("Z1", name, t, values))
            .into_iter()
            .map(|e| (e.attribute.unwrap_or_default(), e.message))
            .collect::<Vec<_>>()
    };
    let long = "a".repeat(64);
    let cases = [
        ("micro_search", "A", "label `micro_search` of `micro_search` contains `_`"),
        (long.as_str(), "A", "is 64 characters long; a label has at most 63"),
        ("-search.internal", "A", "label `-search` of `-search.internal` starts or ends with a hyphen"),
        ("search-.internal", "A", "label `search-`"),
        ("a.*.internal", "A", "`*` in `a.*.internal` is only allowed as the whole first label"),
        ("sea rch", "A", "label `sea rch` of `sea rch` contains ` `"),
        ("a..internal", "A", "empty label"),
    ];
    for (name, t, want) in cases {
        let errs = check(name, t, &["10.0.0.1"]);
        assert_eq!(errs.len(), 1, "{name}: {errs:?}");
        assert_eq!(errs[0].0, "name");
        assert!(errs[0].1.contains(want), "{name}: {}", errs[0].1);
    }
    let too_long = vec!["abcdefghij"; 25].join(".");
    let errs = check(&too_long, "A", &["10.0.0.1"]);
    assert!(errs[0].1.contains("274 characters long; a DNS name has at most 253"), "{errs:?}");

    // What is fine.
    assert!(check("*.apps", "A", &["10.0.0.1"]).is_empty());
    assert!(check("_sip._tcp", "SRV", &["10 5 5060 sip.internal"]).is_empty());
    assert!(check("_dmarc", "TXT", &["v=DMARC1; p=none"]).is_empty());
    assert!(check("v6", "AAAA", &["fd00::1"]).is_empty());
    assert!(check("mail", "MX", &["10 mx.internal"]).is_empty());

    // Values by type.
    let bad_values = [
        ("A", "fd00::1", "is not an IPv4 address"),
        ("AAAA", "10.0.0.1", "is not an IPv6 address"),
        ("MX", "mx.internal", "PRIORITY HOST"),
        ("SRV", "10 5 sip.internal", "PRIORITY WEIGHT PORT TARGET"),
    ];
    for (t, v, want) in bad_values {
        let errs = check("x", t, &[v]);
        assert_eq!(errs.len(), 1, "{t} {v}: {errs:?}");
        assert_eq!(errs[0].0, "records");
        assert!(errs[0].1.contains(want) && errs[0].1.contains("`records[0]`"), "{}", errs[0].1);
    }
    // Unknown values wait for apply.
    let cfg = obj([
        ("zone_id", Value::Unknown),
        ("name", Value::str("micro-search")),
        ("type", Value::str("A")),
        ("records", Value::List(vec![Value::Unknown])),
    ]);
    assert!(p.validate(Mode::Managed, RECORD_TYPE, &cfg).is_empty());
    // Zones too.
    let errs = p.validate(Mode::Managed, ZONE_TYPE, &obj([("name", Value::str("bad_zone"))]));
    assert!(errs[0].message.contains("`bad_zone`"), "{errs:?}");
}
