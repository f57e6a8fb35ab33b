//! The strict AWS layer (`tests/support/strict.rs`) rule by rule: each test
//! drives the layer with the AWS SDK, the way berth would, and shows that
//! the rule holds, reading moto directly where it matters what really exists.
//! Each test fails when its rule is switched off.

use crate::support;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType, TagResourceType,
};
use aws_smithy_types::retry::RetryConfig;
use std::time::{Duration, Instant};
use support::aws::Aws;
use support::strict::{Decision, Ec2Rates, Rule, Rules};

/// EC2 and Route53 clients on `endpoint`; `retries` false: one attempt per call.
async fn clients(endpoint: &str, retries: bool) -> (aws_sdk_ec2::Client, aws_sdk_route53::Client) {
    let sdk = support::moto::sdk_config_at(endpoint).await;
    let retry = if retries { RetryConfig::standard() } else { RetryConfig::disabled() };
    let ec2 =
        aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(&sdk).retry_config(retry.clone()).build());
    let r53 =
        aws_sdk_route53::Client::from_conf(aws_sdk_route53::config::Builder::from(&sdk).retry_config(retry).build());
    (ec2, r53)
}

/// The error code of a failed call, and its HTTP status.
fn failure<E: ProvideErrorMetadata>(
    r: Result<impl std::fmt::Debug, aws_sdk_ec2::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> (String, u16, String) {
    let e = r.expect_err("the call must fail");
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or_default();
    (e.code().unwrap_or("(no code)").to_string(), status, e.message().unwrap_or_default().to_string())
}

async fn ami(ec2: &aws_sdk_ec2::Client) -> String {
    let out = ec2
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("name").values("amzn2-ami-hvm-*-x86_64-gp2").build())
        .send()
        .await
        .expect("DescribeImages");
    out.images()[0].image_id().unwrap().to_string()
}

fn state_of(i: &aws_sdk_ec2::types::Instance) -> String {
    i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default()
}

/// Every instance moto has.
async fn moto_instances(moto: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Instance> {
    let out = moto.describe_instances().send().await.expect("DescribeInstances on moto");
    out.reservations().iter().flat_map(|r| r.instances().to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokens_are_idempotent() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::Idempotency).with_seed(r.seed)).start();
    let (ec2, _) = clients(&aws.endpoint, false).await;
    let (moto, _) = clients(&aws.moto_endpoint, false).await;
    let image = ami(&moto).await;
    let launch = |t: InstanceType| {
        ec2.run_instances().image_id(&image).instance_type(t).min_count(1).max_count(1).client_token("launch-1").send()
    };

    // The same token and parameters: the first launch's answer, no second instance.
    let first = launch(InstanceType::T3Micro).await.expect("first launch");
    let again = launch(InstanceType::T3Micro).await.expect("repeated launch");
    let id = first.instances()[0].instance_id().unwrap().to_string();
    assert_eq!(again.instances()[0].instance_id(), Some(id.as_str()));
    assert_eq!(again.reservation_id(), first.reservation_id());
    assert_eq!(moto_instances(&moto).await.len(), 1, "one instance on moto");

    // The same token, another parameter.
    let (code, status, _) = failure(launch(InstanceType::T3Small).await);
    assert_eq!((code.as_str(), status), ("IdempotentParameterMismatch", 400));

    // The token outlives the instance.
    moto.terminate_instances().instance_ids(&id).send().await.unwrap();
    let (code, status, _) = failure(launch(InstanceType::T3Micro).await);
    assert_eq!((code.as_str(), status), ("IdempotentInstanceTerminated", 400));
    assert_eq!(moto_instances(&moto).await.len(), 1, "still one instance on moto");

    // Any action with a client token: CreateRouteTable.
    let vpc = ec2.create_vpc().cidr_block("10.7.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let rt = |token: &str| ec2.create_route_table().vpc_id(&vpc).client_token(token).send();
    let a = rt("rt-1").await.unwrap().route_table().unwrap().route_table_id().unwrap().to_string();
    let b = rt("rt-1").await.unwrap().route_table().unwrap().route_table_id().unwrap().to_string();
    let c = rt("rt-2").await.unwrap().route_table().unwrap().route_table_id().unwrap().to_string();
    assert_eq!(a, b, "one route table per token");
    assert_ne!(a, c);

    let s = aws.stats();
    assert_eq!(s.decided(Decision::TokenReplayed), 2, "{}", aws.report());
    assert_eq!(s.decided(Decision::TokenMismatch), 1);
    assert_eq!(s.decided(Decision::TokenTerminated), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_references_are_never_reused() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::CallerReference).with_seed(r.seed)).start();
    let (_, r53) = clients(&aws.endpoint, false).await;
    let zone = r53.create_hosted_zone().name("one.internal").caller_reference("ref-1").send().await.unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().to_string();
    let reuse = || r53.create_hosted_zone().name("two.internal").caller_reference("ref-1").send();
    let (code, status, _) = failure(reuse().await);
    assert_eq!((code.as_str(), status), ("HostedZoneAlreadyExists", 409));
    // Not even once the zone is gone.
    r53.delete_hosted_zone().id(&zone_id).send().await.unwrap();
    let (code, status, _) = failure(reuse().await);
    assert_eq!((code.as_str(), status), ("HostedZoneAlreadyExists", 409));
    r53.create_hosted_zone().name("two.internal").caller_reference("ref-2").send().await.expect("a new reference");
    assert_eq!(aws.stats().decided(Decision::CallerReferenceReused), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_200_filter_values_are_refused() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::FilterLimit).with_seed(r.seed)).start();
    let (ec2, _) = clients(&aws.endpoint, false).await;
    let ids = |n: usize| (0..n).map(|i| format!("i-{i:017x}")).collect::<Vec<_>>();
    let by_ids = |n: usize| Filter::builder().name("instance-id").set_values(Some(ids(n))).build();
    ec2.describe_instances().filters(by_ids(200)).send().await.expect("200 values are allowed");
    let (code, status, message) = failure(ec2.describe_instances().filters(by_ids(201)).send().await);
    assert_eq!((code.as_str(), status), ("FilterLimitExceeded", 400));
    assert!(message.contains("200"), "{message}");
    // Across filters of one call.
    let two = ec2
        .describe_instances()
        .filters(by_ids(150))
        .filters(Filter::builder().name("tag:Name").set_values(Some(ids(51))).build())
        .send()
        .await;
    assert_eq!(failure(two).0, "FilterLimitExceeded");
    assert_eq!(aws.stats().decided(Decision::FilterLimitExceeded), 2);
}

fn tags(prefix: &str, n: usize) -> Vec<Tag> {
    (0..n).map(|i| Tag::builder().key(format!("{prefix}{i}")).value("v").build()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_limits() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::TagLimits).with_seed(r.seed)).start();
    let (ec2, r53) = clients(&aws.endpoint, false).await;
    let spec =
        |n: usize| TagSpecification::builder().resource_type(ResourceType::Vpc).set_tags(Some(tags("k", n))).build();

    // EC2: 50 tags on a resource, at creation or added later.
    let (code, status, _) =
        failure(ec2.create_vpc().cidr_block("10.8.0.0/16").tag_specifications(spec(51)).send().await);
    assert_eq!((code.as_str(), status), ("TagLimitExceeded", 400));
    let vpc = ec2.create_vpc().cidr_block("10.8.0.0/16").tag_specifications(spec(40)).send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let add = |n: usize| ec2.create_tags().resources(&vpc).set_tags(Some(tags("more", n))).send();
    assert_eq!(failure(add(11).await).0, "TagLimitExceeded", "40 + 11 tags");
    add(10).await.expect("40 + 10 tags");
    // Changing the value of a tag it has adds nothing.
    ec2.create_tags().resources(&vpc).set_tags(Some(tags("k", 5))).send().await.expect("retagging");

    // Route53: at most 10 tags added or removed in one call.
    let zone = r53.create_hosted_zone().name("tags.internal").caller_reference("tags").send().await.unwrap();
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let r53_tags = |n: usize| {
        (0..n)
            .map(|i| aws_sdk_route53::types::Tag::builder().key(format!("k{i}")).value("v").build())
            .collect::<Vec<_>>()
    };
    let change = |n: usize| {
        r53.change_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(&zone)
            .set_add_tags(Some(r53_tags(n)))
            .send()
    };
    let e = change(11).await.expect_err("11 tags in one call");
    assert_eq!(e.code(), Some("InvalidInput"));
    change(10).await.expect("10 tags in one call");
    let removes = (0..11).map(|i| format!("k{i}")).collect::<Vec<_>>();
    let e = r53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(&zone)
        .set_remove_tag_keys(Some(removes))
        .send()
        .await
        .expect_err("11 keys removed in one call");
    assert_eq!(e.code(), Some("InvalidInput"));
    assert_eq!(aws.stats().decided(Decision::TagLimitExceeded), 4);
}

fn rrset(name: &str, t: RrType, ttl: i64, values: &[&str]) -> ResourceRecordSet {
    let mut set = ResourceRecordSet::builder().name(name).r#type(t).ttl(ttl);
    for v in values {
        set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
    }
    set.build().unwrap()
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> Change {
    Change::builder().action(action).resource_record_set(set).build().unwrap()
}

async fn apply(r53: &aws_sdk_route53::Client, zone: &str, changes: Vec<Change>) -> Result<String, (String, String)> {
    r53.change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().set_changes(Some(changes)).build().unwrap())
        .send()
        .await
        .map(|o| o.change_info().unwrap().id().to_string())
        .map_err(|e| (e.code().unwrap_or_default().to_string(), e.message().unwrap_or_default().to_string()))
}

/// Every record set of a zone as moto has it: (name, type, ttl, values).
async fn sets(r53: &aws_sdk_route53::Client, zone: &str) -> Vec<(String, String, i64, Vec<String>)> {
    let out = r53.list_resource_record_sets().hosted_zone_id(zone).max_items(300).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .map(|s| {
            let mut v: Vec<String> = s.resource_records().iter().map(|r| r.value().to_string()).collect();
            v.sort();
            (s.name().to_string(), s.r#type().as_str().to_string(), s.ttl().unwrap_or_default(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn change_batches_are_all_or_nothing() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::AtomicBatches).with_seed(r.seed)).start();
    let (_, r53) = clients(&aws.endpoint, false).await;
    let (_, moto) = clients(&aws.moto_endpoint, false).await;
    let zone = r53.create_hosted_zone().name("batch.internal").caller_reference("b").send().await.unwrap();
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let a = || rrset("a.batch.internal", RrType::A, 300, &["10.0.0.1"]);
    apply(&r53, &zone, vec![change(ChangeAction::Create, a())]).await.expect("create a");
    let before = sets(&moto, &zone).await;

    // A good CREATE and a DELETE with the wrong value: neither happens.
    let bad_delete = rrset("a.batch.internal.", RrType::A, 300, &["10.0.0.2"]);
    let b = rrset("b.batch.internal", RrType::A, 300, &["10.0.0.3"]);
    let (code, message) =
        apply(&r53, &zone, vec![change(ChangeAction::Create, b.clone()), change(ChangeAction::Delete, bad_delete)])
            .await
            .unwrap_err();
    assert_eq!(code, "InvalidChangeBatch");
    assert_eq!(
        message,
        "[Tried to delete resource record set [name='a.batch.internal.', type='A'] but the values provided do not match the current values]"
    );
    assert_eq!(sets(&moto, &zone).await, before, "nothing of the batch was applied");

    // Another TTL does not match either; a missing set is not found; an
    // existing one is not created again, whatever the case of its name.
    let wrong_ttl = rrset("a.batch.internal", RrType::A, 60, &["10.0.0.1"]);
    let missing = rrset("nope.batch.internal", RrType::A, 300, &["10.0.0.9"]);
    let upper = rrset("A.Batch.Internal.", RrType::A, 300, &["10.0.0.1"]);
    let (_, message) = apply(
        &r53,
        &zone,
        vec![
            change(ChangeAction::Delete, wrong_ttl),
            change(ChangeAction::Delete, missing),
            change(ChangeAction::Create, upper),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        message,
        "[Tried to delete resource record set [name='a.batch.internal.', type='A'] but the values provided do not match \
         the current values, Tried to delete resource record set [name='nope.batch.internal.', type='A'] but it was not \
         found, Tried to create resource record set [name='a.batch.internal.', type='A'] but it already exists]"
    );
    assert_eq!(sets(&moto, &zone).await, before);

    // Changes apply in order: deleting then creating one set is fine, and
    // a batch that deletes a set twice is refused.
    apply(
        &r53,
        &zone,
        vec![change(ChangeAction::Delete, a()), change(ChangeAction::Create, a()), change(ChangeAction::Create, b)],
    )
    .await
    .expect("delete, create again, create");
    let twice = apply(&r53, &zone, vec![change(ChangeAction::Delete, a()), change(ChangeAction::Delete, a())]).await;
    assert!(twice.unwrap_err().1.contains("but it was not found"));

    // `\052` is `*`.
    let star = rrset("\\052.apps.batch.internal", RrType::A, 300, &["10.0.0.5"]);
    apply(&r53, &zone, vec![change(ChangeAction::Create, star)]).await.expect("a wildcard");
    let again = rrset("*.apps.batch.internal.", RrType::A, 300, &["10.0.0.5"]);
    let (_, message) = apply(&r53, &zone, vec![change(ChangeAction::Create, again)]).await.unwrap_err();
    assert!(message.contains("already exists"), "{message}");

    // Limits: 1000 records, UPSERT counting twice; 32,000 characters.
    let many = |action: ChangeAction, n: usize| {
        (0..n)
            .map(|i| change(action.clone(), rrset(&format!("n{i}.batch.internal"), RrType::A, 300, &["10.1.0.1"])))
            .collect()
    };
    let (code, message) = apply(&r53, &zone, many(ChangeAction::Upsert, 501)).await.unwrap_err();
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidChangeBatch", "[Number of records limit of 1000 exceeded.]")
    );
    let long = "x".repeat(250);
    let texts: Vec<Change> = (0..130)
        .map(|i| {
            change(
                ChangeAction::Create,
                rrset(&format!("t{i}.batch.internal"), RrType::Txt, 300, &[&format!("\"{long}\"")]),
            )
        })
        .collect();
    let (_, message) = apply(&r53, &zone, texts).await.unwrap_err();
    assert!(message.contains("32000"), "{message}");
    apply(&r53, &zone, many(ChangeAction::Create, 600)).await.expect("600 CREATEs are 600 records");

    let s = aws.stats();
    assert_eq!(s.decided(Decision::BatchRefused), 4, "{}", aws.report());
    assert_eq!(s.decided(Decision::BatchTooLarge), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_pending_before_insync() {
    let aws = Aws::builder()
        .rules(|r| Rules { pending_polls: 2, ..Rules::none().with(Rule::PendingChanges).with_seed(r.seed) })
        .start();
    let (_, r53) = clients(&aws.endpoint, false).await;
    let zone = r53.create_hosted_zone().name("sync.internal").caller_reference("s").send().await.unwrap();
    assert_eq!(zone.change_info().unwrap().status(), &ChangeStatus::Pending, "CreateHostedZone answers PENDING");
    let zone_id = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
    let set = || rrset("x.sync.internal", RrType::A, 300, &["10.0.0.1"]);
    let one = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(ChangeBatch::builder().changes(change(ChangeAction::Create, set())).build().unwrap())
        .send()
        .await
        .unwrap();
    let info = one.change_info().unwrap();
    assert_eq!(info.status(), &ChangeStatus::Pending);
    let two = apply(&r53, &zone_id, vec![change(ChangeAction::Upsert, set())]).await.unwrap();
    assert_ne!(info.id(), two, "every change has its own ID");
    let poll =
        || async { r53.get_change().id(info.id()).send().await.unwrap().change_info().unwrap().status().clone() };
    assert_eq!(poll().await, ChangeStatus::Pending);
    assert_eq!(poll().await, ChangeStatus::Pending);
    assert_eq!(poll().await, ChangeStatus::Insync);
    assert_eq!(poll().await, ChangeStatus::Insync);
    assert_eq!(aws.stats().decided(Decision::ChangePending), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_objects_are_not_found_at_first() {
    let aws = Aws::builder().rules(|r| Rules::none().with(Rule::EventualConsistency).with_seed(r.seed)).start();
    let (ec2, _) = clients(&aws.endpoint, false).await;
    let vpc = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let (code, status, message) = failure(ec2.describe_vpcs().vpc_ids(&vpc).send().await);
    assert_eq!((code.as_str(), status), ("InvalidVpcID.NotFound", 400));
    assert!(message.contains(&vpc), "{message}");
    assert_eq!(ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap().vpcs().len(), 1, "found the second time");

    // A listing leaves it out the first time.
    let other = ec2.create_vpc().cidr_block("10.10.0.0/16").send().await.unwrap();
    let other = other.vpc().unwrap().vpc_id().unwrap().to_string();
    let listed = || async {
        let f = Filter::builder().name("cidr").values("10.10.0.0/16").build();
        ec2.describe_vpcs().filters(f).send().await.unwrap().vpcs().len()
    };
    assert_eq!(listed().await, 0);
    assert_eq!(listed().await, 1);
    // Named by another create.
    let subnet = ec2.create_subnet().vpc_id(&vpc).cidr_block("10.9.1.0/24").send().await.unwrap();
    let subnet = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    let image = ami(&clients(&aws.moto_endpoint, false).await.0).await;
    let (code, ..) =
        failure(ec2.run_instances().image_id(&image).min_count(1).max_count(1).subnet_id(&subnet).send().await);
    assert_eq!(code, "InvalidSubnetID.NotFound");
    ec2.create_subnet().vpc_id(&other).cidr_block("10.10.1.0/24").send().await.expect("the listing saw it");

    // A gateway as a route target.
    let igw = ec2.create_internet_gateway().send().await.unwrap();
    let igw = igw.internet_gateway().unwrap().internet_gateway_id().unwrap().to_string();
    let rt = ec2.create_route_table().vpc_id(&vpc).send().await.unwrap();
    let rt = rt.route_table().unwrap().route_table_id().unwrap().to_string();
    let route = || ec2.create_route().route_table_id(&rt).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send();
    let (code, ..) = failure(ec2.describe_route_tables().route_table_ids(&rt).send().await);
    assert_eq!(code, "InvalidRouteTableID.NotFound");
    let (moto_ec2, _) = clients(&aws.moto_endpoint, false).await;
    moto_ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
    let (code, ..) = failure(route().await);
    assert_eq!(code, "InvalidGatewayID.NotFound", "a new gateway as a route target");
    route().await.expect("seen by now");

    // Instances: by ID, and when tagged.
    let launched = ec2.run_instances().image_id(&image).min_count(2).max_count(2).send().await.unwrap();
    let ids: Vec<String> = launched.instances().iter().map(|i| i.instance_id().unwrap().to_string()).collect();
    let (code, ..) = failure(ec2.describe_instances().instance_ids(&ids[0]).send().await);
    assert_eq!(code, "InvalidInstanceID.NotFound");
    let (code, ..) =
        failure(ec2.create_tags().resources(&ids[1]).tags(Tag::builder().key("a").value("b").build()).send().await);
    assert_eq!(code, "InvalidInstanceID.NotFound");
    ec2.create_tags()
        .resources(&ids[1])
        .tags(Tag::builder().key("a").value("b").build())
        .send()
        .await
        .expect("then found");
    assert_eq!(aws.stats().decided(Decision::NotYetVisible), 7, "{}", aws.report());
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_boot_before_they_run() {
    let aws = Aws::builder()
        .rules(|r| Rules {
            boot: Duration::from_secs(2),
            wind_down: Duration::from_secs(1),
            ..Rules::none().with(Rule::PendingInstances).with_seed(r.seed)
        })
        .start();
    let (ec2, _) = clients(&aws.endpoint, false).await;
    let (moto, _) = clients(&aws.moto_endpoint, false).await;
    let image = ami(&moto).await;
    let started = Instant::now();
    let out = ec2.run_instances().image_id(&image).min_count(1).max_count(1).send().await.unwrap();
    let launched = &out.instances()[0];
    let id = launched.instance_id().unwrap().to_string();
    assert_eq!(state_of(launched), "pending");
    assert_eq!(launched.public_ip_address(), None, "no public address at launch");
    let moto_view = moto.describe_instances().instance_ids(&id).send().await.unwrap();
    let public = moto_view.reservations()[0].instances()[0].public_ip_address().map(str::to_string);
    assert!(public.is_some(), "moto gives it a public address at once");

    let describe = || async {
        ec2.describe_instances().instance_ids(&id).send().await.unwrap().reservations()[0].instances()[0].clone()
    };
    let booting = describe().await;
    assert_eq!((state_of(&booting).as_str(), booting.public_ip_address()), ("pending", None));
    assert!(started.elapsed() < Duration::from_secs(2), "the check ran while it booted");
    let running = Filter::builder().name("instance-state-name").values("running").build();
    let listed = ec2.describe_instances().filters(running).send().await.unwrap();
    assert!(listed.reservations().is_empty(), "not listed as running while it boots");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = describe().await;
    assert_eq!(state_of(&running), "running");
    assert_eq!(running.public_ip_address().map(str::to_string), public, "the public address once it runs");

    ec2.stop_instances().instance_ids(&id).send().await.unwrap();
    assert_eq!(state_of(&describe().await), "stopping");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(state_of(&describe().await), "stopped");
    ec2.terminate_instances().instance_ids(&id).send().await.unwrap();
    assert_eq!(state_of(&describe().await), "shutting-down");
    assert_eq!(aws.stats().decided(Decision::InstanceInTransition), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits() {
    // Route53: five requests a second for the whole account.
    let aws = Aws::builder()
        .rules(|r| Rules::none().with(Rule::RateLimits).ec2_rates(Ec2Rates::aws().scaled(0.05)).with_seed(r.seed))
        .start();
    let (ec2, r53) = clients(&aws.endpoint, false).await;
    let calls = (0..6).map(|_| r53.list_hosted_zones().send());
    let results = futures::future::join_all(calls).await;
    let throttled: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert_eq!(throttled.len(), 1, "6 Route53 calls at once: one is throttled");
    let e = &throttled[0];
    assert_eq!(e.code(), Some("Throttling"));
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    tokio::time::sleep(Duration::from_millis(500)).await;
    r53.list_hosted_zones().send().await.expect("the bucket refills");

    // EC2, a twentieth of AWS's buckets: 5 DescribeVpcs at once, then 1 a
    // second; other actions have buckets of their own.
    let calls = (0..7).map(|_| ec2.describe_vpcs().send());
    let results = futures::future::join_all(calls).await;
    let throttled: Vec<_> = results.into_iter().filter_map(Result::err).collect();
    assert_eq!(throttled.len(), 2);
    assert_eq!(throttled[0].code(), Some("RequestLimitExceeded"));
    assert_eq!(throttled[0].raw_response().map(|r| r.status().as_u16()), Some(503));
    ec2.describe_subnets().send().await.expect("another action's bucket");
    assert_eq!(aws.stats().decided(Decision::Throttled), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_of_creates() {
    let aws = Aws::builder()
        .rules(|r| {
            Rules::none().with(Rule::Idempotency).lose_answers_of(&["RunInstances", "CreateVpc"]).with_seed(r.seed)
        })
        .start();
    let (ec2, _) = clients(&aws.endpoint, true).await;
    let (moto, _) = clients(&aws.moto_endpoint, false).await;
    let image = ami(&moto).await;
    // The SDK fills in a client token and retries with it: one instance.
    let out = ec2.run_instances().image_id(&image).min_count(1).max_count(1).send().await.expect("launch");
    assert_eq!(moto_instances(&moto).await.len(), 1);
    assert_eq!(moto_instances(&moto).await[0].instance_id(), out.instances()[0].instance_id());
    // CreateVpc takes no token: its retry makes a second VPC, as on AWS.
    ec2.create_vpc().cidr_block("10.11.0.0/16").send().await.expect("a VPC");
    let vpcs = moto
        .describe_vpcs()
        .filters(Filter::builder().name("cidr").values("10.11.0.0/16").build())
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 2);
    let s = aws.stats();
    assert_eq!(s.decided(Decision::AnswerLost), 2, "{}", aws.report());
    assert_eq!(s.decided(Decision::TokenReplayed), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_mode_takes_aws_times_scaled_down() {
    // 30-60 s times 0.02: 0.6 to 1.2 s to boot and to be INSYNC.
    let aws = Aws::builder()
        .rules(|r| {
            Rules::none().with(Rule::PendingChanges).with(Rule::PendingInstances).latency(0.02).with_seed(r.seed)
        })
        .start();
    let (ec2, r53) = clients(&aws.endpoint, false).await;
    let (moto, _) = clients(&aws.moto_endpoint, false).await;
    let image = ami(&moto).await;
    let t_zone = Instant::now();
    let zone = r53.create_hosted_zone().name("slow.internal").caller_reference("slow").send().await.unwrap();
    let change = zone.change_info().unwrap().id().to_string();
    let t_launch = Instant::now();
    let out = ec2.run_instances().image_id(&image).min_count(1).max_count(1).send().await.unwrap();
    let id = out.instances()[0].instance_id().unwrap().to_string();
    let (mut insync, mut running) = (None, None);
    while (insync.is_none() || running.is_none()) && t_zone.elapsed() < Duration::from_secs(10) {
        if insync.is_none()
            && r53.get_change().id(&change).send().await.unwrap().change_info().unwrap().status() == &ChangeStatus::Insync
        {
            insync = Some(t_zone.elapsed());
        }
        let i = ec2.describe_instances().instance_ids(&id).send().await.unwrap().reservations()[0].instances()[0].clone();
        if running.is_none() && state_of(&i) == "running" {
            running = Some(t_launch.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At least the scaled 30 s; at most the scaled 60 s and some slack for
    // a loaded machine.
    for (what, at) in [("INSYNC", insync), ("running", running)] {
        let at = at.unwrap_or_else(|| panic!("never {what}"));
        assert!(at >= Duration::from_millis(600) && at <= Duration::from_millis(3000), "{what} after {at:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_rule_off_it_is_moto() {
    let aws = Aws::builder().rules(|_| Rules::none()).start();
    let (ec2, r53) = clients(&aws.endpoint, false).await;
    let (moto, _) = clients(&aws.moto_endpoint, false).await;
    let image = ami(&moto).await;
    for _ in 0..2 {
        ec2.run_instances().image_id(&image).min_count(1).max_count(1).client_token("same").send().await.unwrap();
    }
    assert_eq!(moto_instances(&moto).await.len(), 2, "moto ignores the client token");
    for name in ["a.internal", "b.internal"] {
        r53.create_hosted_zone().name(name).caller_reference("same").send().await.expect("moto ignores the reference");
    }
    assert!(aws.stats().strict.is_empty());
}

/// An ELBv2 client on `endpoint`, one attempt per call.
async fn elb_client(endpoint: &str) -> aws_sdk_elasticloadbalancingv2::Client {
    let sdk = support::moto::sdk_config_at(endpoint).await;
    aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk).retry_config(RetryConfig::disabled()).build(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn load_balancing_names_limits_and_target_health() {
    use aws_sdk_elasticloadbalancingv2::types::{
        LoadBalancerSchemeEnum, ProtocolEnum, TargetDescription, TargetGroupAttribute,
    };
    let aws = Aws::builder().rules(|_| Rules::none().with(Rule::LoadBalancing)).start();
    let (moto_ec2, _) = clients(&aws.moto_endpoint, false).await;
    let elb = elb_client(&aws.endpoint).await;
    let moto_elb = elb_client(&aws.moto_endpoint).await;
    let vpc = moto_ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (z, cidr) in [("a", "10.9.1.0/24"), ("b", "10.9.2.0/24")] {
        let s = moto_ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(format!("us-east-1{z}"))
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }

    // The same name and settings: the existing load balancer; other
    // settings: the name is refused. moto alone makes a second one.
    let create = |scheme: LoadBalancerSchemeEnum| {
        elb.create_load_balancer().name("web").set_subnets(Some(subnets.clone())).scheme(scheme).send()
    };
    let first = create(LoadBalancerSchemeEnum::Internal).await.unwrap();
    let again = create(LoadBalancerSchemeEnum::Internal).await.unwrap();
    let arn = first.load_balancers()[0].load_balancer_arn().unwrap().to_string();
    assert_eq!(again.load_balancers()[0].load_balancer_arn(), Some(arn.as_str()));
    let (code, status, _) = failure(create(LoadBalancerSchemeEnum::InternetFacing).await);
    assert_eq!((code.as_str(), status), ("DuplicateLoadBalancerName", 400));
    assert_eq!(moto_elb.describe_load_balancers().send().await.unwrap().load_balancers().len(), 1);

    let tg = || {
        elb.create_target_group()
            .name("web")
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .health_check_interval_seconds(5)
            .send()
    };
    let tg_arn = tg().await.unwrap().target_groups()[0].target_group_arn().unwrap().to_string();
    assert_eq!(tg().await.unwrap().target_groups()[0].target_group_arn(), Some(tg_arn.as_str()), "moto refuses this");

    // A port holds one listener; moto alone makes a second.
    let listener = || {
        elb.create_listener()
            .load_balancer_arn(&arn)
            .port(80)
            .protocol(ProtocolEnum::Http)
            .default_actions(
                aws_sdk_elasticloadbalancingv2::types::Action::builder()
                    .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
    };
    listener().await.unwrap();
    let (code, ..) = failure(listener().await);
    assert_eq!(code, "DuplicateListener");
    let on_moto = moto_elb.describe_listeners().load_balancer_arn(&arn).send().await.unwrap();
    assert_eq!(on_moto.listeners().len(), 1);

    // "You can specify up to 20"; page sizes are 1 to 400.
    let arns: Vec<String> = (0..21).map(|i| format!("{arn}-{i}")).collect();
    let (code, ..) = failure(elb.describe_tags().set_resource_arns(Some(arns.clone())).send().await);
    assert_eq!(code, "ValidationError");
    let (code, ..) = failure(elb.describe_load_balancers().set_load_balancer_arns(Some(arns)).send().await);
    assert_eq!(code, "ValidationError");
    let (code, ..) = failure(elb.describe_load_balancers().page_size(401).send().await);
    assert_eq!(code, "ValidationError");
    elb.describe_tags().resource_arns(&arn).send().await.expect("one ARN is fine");

    // A target is `initial` before it is `healthy`, and `draining` for the
    // group's deregistration delay after it is deregistered.
    let image = ami(&moto_ec2).await;
    let run = moto_ec2.run_instances().image_id(&image).subnet_id(&subnets[0]).min_count(1).max_count(1).send();
    let id = run.await.unwrap().instances()[0].instance_id().unwrap().to_string();
    let target = TargetDescription::builder().id(&id).build();
    let state = || async {
        let h = elb.describe_target_health().target_group_arn(&tg_arn).targets(target.clone()).send().await.unwrap();
        h.target_health_descriptions()[0].target_health().unwrap().state().unwrap().as_str().to_string()
    };
    elb.modify_target_group_attributes()
        .target_group_arn(&tg_arn)
        .attributes(TargetGroupAttribute::builder().key("deregistration_delay.timeout_seconds").value("1").build())
        .send()
        .await
        .unwrap();
    elb.register_targets().target_group_arn(&tg_arn).targets(target.clone()).send().await.unwrap();
    assert_eq!([state().await, state().await, state().await], ["initial", "initial", "healthy"]);
    elb.deregister_targets().target_group_arn(&tg_arn).targets(target.clone()).send().await.unwrap();
    assert_eq!(state().await, "draining");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(state().await, "unused", "drained after the group's delay");

    let s = aws.stats();
    assert_eq!(s.decided(Decision::ElbNameReturned), 2, "{}", aws.report());
    assert_eq!(s.decided(Decision::ElbDuplicateName), 2);
    assert_eq!(s.decided(Decision::ElbLimitExceeded), 3);
    assert_eq!(s.decided(Decision::TargetInitial), 2);
    assert_eq!(s.decided(Decision::TargetDraining), 1);
}
