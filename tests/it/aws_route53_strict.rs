//! The Route53 provider against AWS's rules, not moto's leniency: every
//! test talks to the strict layer ([`support::aws`]) in front of moto, which
//! refuses a reused CallerReference, applies change batches all or nothing
//! with Route53's per-change messages, answers PENDING before INSYNC, limits
//! tag changes to 10 a call and throttles at 5 requests a second.
//!
//! - a zone destroyed and created again at the same address gets a new
//!   CallerReference, and adoption finds a zone by its create's token;
//! - a CreateHostedZone and an AssociateVPCWithHostedZone whose answers are
//!   lost are recognised on their retry;
//! - one refused change of a batch fails alone, with its owner named, while
//!   the rest of the batch is sent again, and berth's own record met by a
//!   CREATE is adopted;
//! - records edited outside berth, and owner records in an older format,
//!   are deleted as Route53 lists them, so the zone can be deleted after;
//! - a change accepted but slow to be INSYNC is a warning, not a failure;
//! - zone tags change 10 at a time;
//! - berth paces its calls under the account's rate.
//!
//! API counts are process-wide, and pacing is too: the tests run one at a
//! time (`support::stats::exclusive`).

use crate::support;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType, TagResourceType,
};
use berth::providers::aws::route53::{ASSOCIATION_TYPE, RECORD_TYPE, Route53, Route53Settings, ZONE_TYPE};
use berth::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Planned, Provider, ProviderErrorKind};
use berth::telemetry::api_stats;
use berth::value::{Value, obj};
use std::time::Duration;
use support::aws::Aws;
use support::faultproxy::{Call, Fault, Faults, LandThenDrop, Permanent, Service};
use support::strict::{Decision, Rule};

struct Env {
    aws: Aws,
    r53: Route53,
    /// Route53 as moto has it, past the layer.
    raw: aws_sdk_route53::Client,
    lineage: String,
}

/// The SDK set up as berth sets it up: standard retries, 9 attempts.
async fn sdk_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "berth-tests"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(9))
        .load()
        .await
}

fn fast() -> Route53Settings {
    Route53Settings { wait_for_sync: true, sync_timeout: Duration::from_secs(30), poll_interval: Duration::from_millis(50) }
}

impl Env {
    async fn start(aws: Aws) -> Env {
        Env::with_settings(aws, fast()).await
    }

    async fn with_settings(aws: Aws, settings: Route53Settings) -> Env {
        let r53 = Route53::new(&sdk_at(&aws.endpoint).await, Some(aws.endpoint.clone())).with_settings(settings);
        let raw = aws_sdk_route53::Client::new(&aws.moto_sdk_config().await);
        Env { aws, r53, raw, lineage: uuid::Uuid::new_v4().to_string() }
    }

    fn ctx(&self, addr: &str) -> OpContext {
        OpContext::new(addr.parse().unwrap(), self.lineage.clone(), 0).with_token(OpContext::fresh_token())
    }

    /// A VPC, made on moto directly.
    async fn vpc(&self, cidr: &str) -> String {
        let ec2 = aws_sdk_ec2::Client::new(&self.aws.moto_sdk_config().await);
        let out = ec2.create_vpc().cidr_block(cidr).send().await.expect("CreateVpc");
        out.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_string()
    }

    async fn zone(&self, addr: &str, name: &str, vpc: &str) -> Value {
        let c = self.ctx(addr);
        converge(&self.r53, ZONE_TYPE, &c, None, &private_zone(name, vpc)).await
    }

    /// Zones of a name in moto.
    async fn zones_named(&self, name: &str) -> Vec<String> {
        let out = self.raw.list_hosted_zones().send().await.expect("ListHostedZones");
        out.hosted_zones()
            .iter()
            .filter(|z| z.name().trim_end_matches('.') == name)
            .map(|z| z.id().rsplit('/').next().unwrap().to_string())
            .collect()
    }

    /// A record set as moto has it: (ttl, sorted values).
    async fn get(&self, zone: &str, name: &str, t: RrType) -> Option<(i64, Vec<String>)> {
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

    /// A change by hand, past the layer.
    async fn by_hand(&self, zone: &str, action: ChangeAction, name: &str, t: RrType, ttl: i64, values: &[&str]) {
        let mut set = ResourceRecordSet::builder().name(name).r#type(t).ttl(ttl);
        for v in values {
            set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
        }
        let change = Change::builder().action(action).resource_record_set(set.build().unwrap()).build().unwrap();
        self.raw
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
            .send()
            .await
            .expect("ChangeResourceRecordSets by hand");
    }

    fn owner(&self, addr: &str) -> String {
        format!("\"berth:{}:{addr}\"", &self.lineage[..8])
    }
}

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

async fn apply(p: &Route53, t: &str, ops: Vec<ApplyOp>) -> Vec<ApplyOutcome> {
    support::contract::Kit::new(p).apply(t, ops).await
}

fn create(ctx: &OpContext, planned: &Planned) -> ApplyOp {
    ApplyOp { ctx: ctx.clone(), kind: ChangeKind::Create { planned: planned.after.clone() } }
}

fn update(ctx: &OpContext, prior: Value, planned: &Planned) -> ApplyOp {
    ApplyOp { ctx: ctx.clone(), kind: ChangeKind::Update { prior, planned: planned.after.clone() } }
}

fn delete(ctx: &OpContext, prior: Value) -> ApplyOp {
    ApplyOp { ctx: ctx.clone(), kind: ChangeKind::Delete { prior } }
}

fn ok_state(o: ApplyOutcome) -> Option<Value> {
    if let Some(e) = o.error {
        panic!("apply failed: {e}");
    }
    assert!(o.warnings.is_empty(), "unexpected warnings: {:?}", o.warnings);
    o.state
}

async fn converge(p: &Route53, t: &str, ctx: &OpContext, prior: Option<Value>, cfg: &Value) -> Value {
    let planned = plan(p, t, ctx, prior.as_ref(), cfg).await;
    let op = match prior {
        None => create(ctx, &planned),
        Some(prior) => update(ctx, prior, &planned),
    };
    ok_state(apply(p, t, vec![op]).await.remove(0)).expect("a state")
}

fn record(zone_id: &str, name: &str, values: &[&str]) -> Value {
    obj([
        ("zone_id", Value::str(zone_id)),
        ("name", Value::str(name)),
        ("type", Value::str("A")),
        ("records", Value::List(values.iter().map(|v| Value::str(*v)).collect())),
    ])
}

fn private_zone(name: &str, vpc: &str) -> Value {
    obj([("name", Value::str(name)), ("vpc", Value::List(vec![obj([("vpc_id", Value::str(vpc))])]))])
}

fn zone_id(zone: &Value) -> String {
    zone.get_str("zone_id").unwrap().to_string()
}

#[tokio::test]
async fn a_zone_created_again_at_its_address_gets_a_new_caller_reference() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start(Aws::start()).await;
    let p = &env.r53;
    let vpc = env.vpc("10.10.0.0/16").await;
    let cfg = private_zone("again.internal", &vpc);

    let first = env.ctx("aws_route53_zone.z");
    let zone = converge(p, ZONE_TYPE, &first, None, &cfg).await;
    // What the planner does after a crash: adopt by the pending entry's
    // token, without the configuration.
    let found = p.adopt(&first, ZONE_TYPE, &Value::Null).await.unwrap().expect("found by its create's token");
    assert_eq!(found.get_str("zone_id"), zone.get_str("zone_id"));
    let other = first.clone().with_token(OpContext::fresh_token());
    assert_eq!(p.adopt(&other, ZONE_TYPE, &Value::Null).await.unwrap(), None, "another create's token finds nothing");

    // Destroyed, then created again at the same address and generation:
    // Route53 never takes a CallerReference twice, even once its zone is gone.
    let out = apply(p, ZONE_TYPE, vec![delete(&first, zone)]).await.remove(0);
    assert_eq!(ok_state(out), None);
    let second = env.ctx("aws_route53_zone.z");
    let zone = converge(p, ZONE_TYPE, &second, None, &cfg).await;
    assert_eq!(env.zones_named("again.internal").await, vec![zone_id(&zone)]);
    assert_eq!(p.adopt(&first, ZONE_TYPE, &Value::Null).await.unwrap(), None, "the first create's zone is gone");
    assert_eq!(env.aws.stats().decided(Decision::CallerReferenceReused), 0, "{}", env.aws.report());
}

#[tokio::test]
async fn a_lost_create_hosted_zone_answer_adopts_the_zone_it_made() {
    let _serial = support::stats::exclusive().await;
    let aws = Aws::builder().rules(|r| r.lose_answers_of(&["CreateHostedZone"])).start();
    let env = Env::start(aws).await;
    let vpc = env.vpc("10.11.0.0/16").await;
    let c = env.ctx("aws_route53_zone.z");
    let zone = converge(&env.r53, ZONE_TYPE, &c, None, &private_zone("lost.internal", &vpc)).await;
    // The first attempt landed; its retry met its own CallerReference.
    let s = env.aws.stats();
    assert_eq!(s.decided(Decision::AnswerLost), 1, "{}", env.aws.report());
    assert_eq!(s.decided(Decision::CallerReferenceReused), 1, "{}", env.aws.report());
    assert_eq!(env.zones_named("lost.internal").await, vec![zone_id(&zone)], "exactly one zone");
    assert_eq!(zone.get_str("name"), Some("lost.internal"));
}

#[tokio::test]
async fn a_create_whose_answer_never_comes_is_indeterminate() {
    let _serial = support::stats::exclusive().await;
    // Every attempt's connection drops: did the create land? No one knows.
    let faults = Faults { drop: 1.0, max_faults_per_call: u32::MAX, ..Faults::none() };
    let aws = Aws::builder().faults(faults).start();
    let mut env = Env::start(aws).await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "berth-tests"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    env.r53 = Route53::new(&sdk, Some(env.aws.endpoint.clone())).with_settings(fast());
    let vpc = env.vpc("10.12.0.0/16").await;
    let c = env.ctx("aws_route53_zone.z");
    let planned = plan(&env.r53, ZONE_TYPE, &c, None, &private_zone("void.internal", &vpc)).await;
    let out = apply(&env.r53, ZONE_TYPE, vec![create(&c, &planned)]).await.remove(0);
    let e = out.error.expect("no answer, no zone");
    assert_eq!(e.kind, ProviderErrorKind::Indeterminate, "{e}");
}

#[tokio::test]
async fn a_lost_association_answer_is_recognised_on_its_retry() {
    let _serial = support::stats::exclusive().await;
    let associate = |c: &Call| c.service == Service::Route53 && c.method == "POST" && c.path.contains("/associatevpc");
    // On AWS the retry of an association that landed meets it:
    // `ConflictingDomainExists` ("the VPC is already associated with a
    // hosted zone of this name"). moto would associate it again.
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    let conflict = Permanent::new("ConflictingDomainExists", 400, "The VPC is already associated", move |c: &Call| {
        associate(c) && !seen.lock().unwrap().insert(c.path.clone() + &c.body)
    });
    let faults = Faults::none().with_permanent(conflict).with_land_then_drop(LandThenDrop::new(1, associate));
    let env = Env::start(Aws::builder().faults(faults).start()).await;
    let (vpc1, vpc2) = (env.vpc("10.13.0.0/16").await, env.vpc("10.14.0.0/16").await);
    let zone = env.zone("aws_route53_zone.z", "assoc.internal", &vpc1).await;
    let a = env.ctx("aws_route53_zone_association.second");
    let cfg = obj([("zone_id", Value::str(zone_id(&zone))), ("vpc_id", Value::str(&vpc2))]);
    let planned = plan(&env.r53, ASSOCIATION_TYPE, &a, None, &cfg).await;
    let out = apply(&env.r53, ASSOCIATION_TYPE, vec![create(&a, &planned)]).await.remove(0);
    if out.error.is_some() {
        let hz = env.raw.get_hosted_zone().id(zone_id(&zone)).send().await.unwrap();
        panic!("{:?}\nvpcs {:?}\n{}", out.error, hz.vpcs(), env.aws.report());
    }
    let assoc = ok_state(out).unwrap();
    assert_eq!(assoc.get_str("vpc_id"), Some(vpc2.as_str()));
    let s = env.aws.stats();
    assert_eq!(s.count(Fault::Landed), 1, "{}", env.aws.report());
    assert_eq!(s.count(Fault::Permanent), 1, "the retry met the association: {}", env.aws.report());
}

#[tokio::test]
async fn one_refused_change_fails_alone_and_the_rest_is_sent_again() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start(Aws::start()).await;
    let p = &env.r53;
    let vpc = env.vpc("10.15.0.0/16").await;
    let zone = zone_id(&env.zone("aws_route53_zone.z", "batch.internal", &vpc).await);

    // Planned while the names were free...
    let mut ops = Vec::new();
    let mut ctxs = Vec::new();
    for (addr, name, ip) in [
        ("aws_route53_record.ok[0]", "ok-0", "10.15.0.10"),
        ("aws_route53_record.taken", "taken", "10.15.0.11"),
        ("aws_route53_record.ok[1]", "ok-1", "10.15.0.12"),
        ("aws_route53_record.mine", "mine", "10.15.0.13"),
    ] {
        let c = env.ctx(addr);
        let pl = plan(p, RECORD_TYPE, &c, None, &record(&zone, name, &[ip])).await;
        ops.push(create(&c, &pl));
        ctxs.push(c);
    }
    // ...then someone else takes `taken`, and `mine` turns out to be there
    // already, with berth's owner record for this address (a run that died
    // after its request landed).
    env.by_hand(&zone, ChangeAction::Create, "taken.batch.internal", RrType::A, 60, &["10.99.0.1"]).await;
    env.by_hand(&zone, ChangeAction::Create, "mine.batch.internal", RrType::A, 300, &["10.15.0.13"]).await;
    let owner = env.owner("aws_route53_record.mine");
    env.by_hand(&zone, ChangeAction::Create, "_berth-owner-a.mine.batch.internal", RrType::Txt, 300, &[&owner]).await;

    let before = calls("ChangeResourceRecordSets");
    let out = apply(p, RECORD_TYPE, ops).await;
    let sent = calls("ChangeResourceRecordSets") - before;

    let e = out[1].error.as_ref().expect("`taken` is refused");
    assert_eq!(
        e.message,
        "record `taken.batch.internal` A was created outside this run after it was planned, and is not managed by \
         berth; set allow_overwrite = true to take it over"
    );
    assert_eq!(e.kind, ProviderErrorKind::Conflict);
    assert_eq!(out[1].state, None, "nothing of `taken` was written");
    for i in [0, 2, 3] {
        assert!(out[i].error.is_none(), "{}: {:?}", ctxs[i].addr, out[i].error);
    }
    assert_eq!(env.get(&zone, "taken.batch.internal", RrType::A).await, Some((60, vec!["10.99.0.1".into()])));
    assert_eq!(env.get(&zone, "_berth-owner-a.taken.batch.internal", RrType::Txt).await, None);
    assert_eq!(env.get(&zone, "ok-0.batch.internal", RrType::A).await, Some((300, vec!["10.15.0.10".into()])));
    assert_eq!(env.get(&zone, "ok-1.batch.internal", RrType::A).await, Some((300, vec!["10.15.0.12".into()])));
    assert_eq!(env.get(&zone, "mine.batch.internal", RrType::A).await, Some((300, vec!["10.15.0.13".into()])));
    // One refused request, one resent: the changes at fault were named.
    assert_eq!(env.aws.stats().decided(Decision::BatchRefused), 1, "{}", env.aws.report());
    assert_eq!(sent, 2, "{}", env.aws.report());
}

#[tokio::test]
async fn records_edited_outside_berth_and_old_owner_records_are_deleted_as_listed() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start(Aws::start()).await;
    let p = &env.r53;
    let vpc = env.vpc("10.16.0.0/16").await;
    let zctx = env.ctx("aws_route53_zone.z");
    let zone = converge(p, ZONE_TYPE, &zctx, None, &private_zone("edit.internal", &vpc)).await;
    let z = zone_id(&zone);

    // A record berth made, then edited by hand: another TTL, a second value.
    let ectx = env.ctx("aws_route53_record.edited");
    let edited = converge(p, RECORD_TYPE, &ectx, None, &record(&z, "edited", &["10.16.0.5"])).await;
    env.by_hand(&z, ChangeAction::Upsert, "edited.edit.internal", RrType::A, 60, &["10.16.0.6", "10.16.0.5"]).await;

    // A record an older berth made: its owner in the older, longer format.
    let octx = env.ctx("aws_route53_record.old");
    env.by_hand(&z, ChangeAction::Create, "old.edit.internal", RrType::A, 300, &["10.16.0.7"]).await;
    let old_owner = format!("\"berth lineage={} address=aws_route53_record.old type=A\"", env.lineage);
    env.by_hand(&z, ChangeAction::Create, "_berth-owner-a.old.edit.internal", RrType::Txt, 300, &[&old_owner]).await;
    let old = p.adopt(&octx, RECORD_TYPE, &record(&z, "old", &["10.16.0.7"])).await.unwrap().expect("still berth's");

    // Deleted from a state that has not seen the edit.
    let out = apply(p, RECORD_TYPE, vec![delete(&ectx, edited), delete(&octx, old)]).await;
    for o in out {
        assert_eq!(ok_state(o), None);
    }
    for name in ["edited.edit.internal", "old.edit.internal"] {
        assert_eq!(env.get(&z, name, RrType::A).await, None, "{name}");
        assert_eq!(env.get(&z, &format!("_berth-owner-a.{name}"), RrType::Txt).await, None, "{name}");
    }
    // Nothing of berth's is left behind: the zone goes without force_destroy.
    let out = apply(p, ZONE_TYPE, vec![delete(&zctx, zone)]).await.remove(0);
    assert_eq!(ok_state(out), None);
    assert!(env.zones_named("edit.internal").await.is_empty());
}

#[tokio::test]
async fn a_change_slow_to_be_insync_is_a_warning_not_a_failure() {
    let _serial = support::stats::exclusive().await;
    let aws = Aws::builder()
        .rules(|mut r| {
            r.pending_polls = 1_000_000;
            r
        })
        .start();
    let settings = Route53Settings { sync_timeout: Duration::from_millis(400), ..fast() };
    let env = Env::with_settings(aws, settings).await;
    let p = &env.r53;
    let vpc = env.vpc("10.17.0.0/16").await;
    let zctx = env.ctx("aws_route53_zone.z");
    let planned = plan(p, ZONE_TYPE, &zctx, None, &private_zone("slow.internal", &vpc)).await;
    let out = apply(p, ZONE_TYPE, vec![create(&zctx, &planned)]).await.remove(0);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.warnings.iter().any(|w| w.contains("not INSYNC")), "{:?}", out.warnings);
    let zone = out.state.expect("the zone is recorded");

    let rctx = env.ctx("aws_route53_record.r");
    let planned = plan(p, RECORD_TYPE, &rctx, None, &record(&zone_id(&zone), "r", &["10.17.0.1"])).await;
    let out = apply(p, RECORD_TYPE, vec![create(&rctx, &planned)]).await.remove(0);
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.state.is_some());
    let w = out.warnings.join("\n");
    assert!(w.contains("record `r.slow.internal` A") && w.contains("route53_sync_timeout"), "{w}");
    assert!(env.aws.stats().decided(Decision::ChangePending) > 0);
}

#[tokio::test]
async fn zone_tags_change_ten_at_a_time() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start(Aws::start()).await;
    let p = &env.r53;
    let vpc = env.vpc("10.18.0.0/16").await;
    let zctx = env.ctx("aws_route53_zone.z");
    let tags = |prefix: &str, n: usize| {
        Value::Map((0..n).map(|i| (format!("{prefix}{i:02}"), Value::str(format!("v{i}")))).collect())
    };
    let mut cfg = private_zone("tags.internal", &vpc);
    let with_tags = |cfg: &Value, t: Value| {
        let mut m = cfg.as_map().cloned().unwrap();
        m.insert("tags".into(), t);
        Value::Map(m)
    };
    cfg = with_tags(&cfg, tags("a", 23));
    let zone = converge(p, ZONE_TYPE, &zctx, None, &cfg).await;
    // 23 removed, 12 added.
    let cfg = with_tags(&cfg, tags("b", 12));
    let zone = converge(p, ZONE_TYPE, &zctx, Some(zone), &cfg).await;
    let out = env
        .raw
        .list_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(zone_id(&zone))
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> =
        out.resource_tag_set().unwrap().tags().iter().map(|t| t.key().unwrap().to_string()).collect();
    keys.sort();
    assert_eq!(keys, (0..12).map(|i| format!("b{i:02}")).collect::<Vec<_>>());
    assert_eq!(env.aws.stats().decided(Decision::TagLimitExceeded), 0, "{}", env.aws.report());
}

#[tokio::test]
async fn calls_are_paced_under_the_account_rate() {
    let _serial = support::stats::exclusive().await;
    let env = Env::start(Aws::builder().rules(|r| r.without(Rule::PendingChanges)).start()).await;
    let p = &env.r53;
    let vpc = env.vpc("10.19.0.0/16").await;
    // Ten zones refreshed at once: a GetHostedZone, an apex read and the
    // tags of each, more than five a second unless berth paces itself.
    let mut items = Vec::new();
    for i in 0..10 {
        let c = env.ctx(&format!("aws_route53_zone.z[{i}]"));
        items.push((c.clone(), env.zone(&format!("aws_route53_zone.z[{i}]"), &format!("z{i}.internal"), &vpc).await));
    }
    let before = env.aws.stats().decided(Decision::Throttled);
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let got = p.refresh(ZONE_TYPE, items.clone()).await;
        assert!(got.iter().all(|r| matches!(r, Ok(Some(_)))), "{got:?}");
    }
    let throttled = env.aws.stats().decided(Decision::Throttled) - before;
    assert!(throttled <= 1, "{throttled} calls throttled in {:?}: {}", started.elapsed(), env.aws.report());
}

#[tokio::test]
async fn record_changes_whose_answers_were_lost_are_recognised_on_their_retry() {
    let _serial = support::stats::exclusive().await;
    let aws = Aws::builder().rules(|r| r.lose_answers_of(&["ChangeResourceRecordSets"])).start();
    let env = Env::start(aws).await;
    let p = &env.r53;
    let vpc = env.vpc("10.20.0.0/16").await;
    let zone = zone_id(&env.zone("aws_route53_zone.z", "lost-rr.internal", &vpc).await);
    let (a, b) = (env.ctx("aws_route53_record.a"), env.ctx("aws_route53_record.b"));
    let (pa, pb) = (
        plan(p, RECORD_TYPE, &a, None, &record(&zone, "a", &["10.20.0.1"])).await,
        plan(p, RECORD_TYPE, &b, None, &record(&zone, "b", &["10.20.0.2"])).await,
    );
    // CREATE: the retry meets both records and their owners.
    let out = apply(p, RECORD_TYPE, vec![create(&a, &pa), create(&b, &pb)]).await;
    let mut states = out.into_iter().map(|o| ok_state(o).unwrap());
    let (sa, sb) = (states.next().unwrap(), states.next().unwrap());
    // UPSERT: the retry writes the same again.
    let pa = plan(p, RECORD_TYPE, &a, Some(&sa), &record(&zone, "a", &["10.20.0.3"])).await;
    let sa = ok_state(apply(p, RECORD_TYPE, vec![update(&a, sa, &pa)]).await.remove(0)).unwrap();
    assert_eq!(env.get(&zone, "a.lost-rr.internal", RrType::A).await, Some((300, vec!["10.20.0.3".into()])));
    // DELETE: the retry finds them gone.
    for o in apply(p, RECORD_TYPE, vec![delete(&a, sa), delete(&b, sb)]).await {
        assert_eq!(ok_state(o), None);
    }
    for name in ["a.lost-rr.internal", "b.lost-rr.internal"] {
        assert_eq!(env.get(&zone, name, RrType::A).await, None, "{name}");
        assert_eq!(env.get(&zone, &format!("_berth-owner-a.{name}"), RrType::Txt).await, None, "{name}");
    }
    assert!(env.aws.stats().decided(Decision::AnswerLost) >= 3, "{}", env.aws.report());
}
