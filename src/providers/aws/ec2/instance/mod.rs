//! `aws_instance`: hosts, launched, waited for, refreshed and terminated in
//! batches.
//!
//! - **Create** calls RunInstances once per instance with the create
//!   attempt's ClientToken (the SDK's resend of a launch whose answer was
//!   lost returns the first call's instance), then waits for `running` with
//!   one DescribeInstances per poll for the whole batch, polls further and
//!   further apart, and reports each instance the moment it runs, so
//!   dependents (DNS records, inventories) read its addresses: an instance
//!   is `pending`, with no public address yet, while it boots.
//!   `timeouts { create = "10m" }` bounds the wait; an instance that never
//!   runs is reported failed *with* its state, so it is recorded (tainted)
//!   rather than orphaned. A fixed `private_ip` still held by the interface
//!   of the host being replaced (`InvalidIPAddress.InUse`) is waited for.
//! - **Update in place**: `tags`, `vpc_security_group_ids` and the
//!   arguments of [`args`] and [`devices`] change on the running instance.
//!   A new `instance_type` or user data stops the instance, changes them
//!   with ModifyInstanceAttribute and starts it again: expect a short outage
//!   and, without an Elastic IP, a new public address (planned as known
//!   after apply). When a change or the start fails, the old values are put
//!   back and the host started again before the error is reported. A failed
//!   update reports the host as a fresh read shows it. Changing `ami`,
//!   `availability_zone`, `subnet_id`, `private_ip`, `key_name`,
//!   `security_groups` or `associate_public_ip_address` replaces the
//!   instance, and so does new user data with
//!   `user_data_replace_on_change`, a changed `ebs_block_device` or root
//!   volume encryption ([`refine_plan`]).
//! - **Drift**: an instance terminated outside berth refreshes as gone; one
//!   stopped outside berth plans `instance_state = "running"` and is started.
//! - **Refresh** of N instances costs ceil(N/200) DescribeInstances calls
//!   (EC2 takes 200 filter values per call), plus ceil(V/200)
//!   DescribeVolumes for the V volumes of hosts that manage volumes.
//!   `user_data` is not read back (DescribeInstanceAttribute would cost a
//!   call per instance); it cannot change without a stop anyway.
//! - **Adoption** after a crash finds the launch by its client token, which
//!   every instance reports; an instance launched before tokens were
//!   journaled, by its ownership tags. Terminated instances are never taken.

mod args;
mod devices;

use devices::Volumes;

use super::client::{
    self, ADDRESS_TAG, Ec2, Failure, GENERATION_TAG, Kind, LINEAGE_TAG, MAX_FILTER_VALUES, MAX_RESULTS, Resource,
    at_most_one, client_token, create_timeout, filter, id_of, instance_tag_spec, opt_bool, opt_str, partial_state,
    req_str, sync_tags, tags_arg, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::{self, retry_codes};
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, Attribute, ChangeKind, OpContext, Planned, ProviderError, ProviderResult,
    Refreshed, Schema,
};
use crate::value::{Map, Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeValue, Filter, Instance, InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType,
};
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("ami").required().force_new(),
        Attribute::arg("instance_type").required(),
        Attribute::arg("availability_zone").computed().force_new(),
        Attribute::arg("subnet_id").computed().force_new(),
        Attribute::arg("vpc_security_group_ids").computed(),
        Attribute::arg("security_groups").computed().force_new(),
        Attribute::arg("key_name").computed().force_new(),
        // In place (stop, change, start) unless `user_data_replace_on_change`.
        Attribute::arg("user_data"),
        Attribute::arg("user_data_base64"),
        Attribute::arg("user_data_replace_on_change"),
        Attribute::arg("associate_public_ip_address").computed().force_new(),
        Attribute::arg("private_ip").computed().force_new(),
        Attribute::arg("secondary_private_ips").computed(),
        Attribute::arg("iam_instance_profile"),
        Attribute::arg("metadata_options").block().computed(),
        Attribute::arg("root_block_device").block(),
        // Any change replaces the host, decided in `refine_plan` once the
        // blocks are filled in from the volumes as they are.
        Attribute::arg("ebs_block_device").block(),
        Attribute::arg("volume_tags"),
        Attribute::arg("source_dest_check"),
        Attribute::arg("monitoring"),
        Attribute::arg("disable_api_termination"),
        Attribute::arg("credit_specification").block(),
        Attribute::arg("tags"),
        Attribute::arg("timeouts").block(),
    ])
    .with_exported(&[
        "id",
        "arn",
        "public_ip",
        "private_dns",
        "public_dns",
        "instance_state",
        "primary_network_interface_id",
    ])
});

pub(crate) struct AwsInstance;

#[async_trait]
impl Resource for AwsInstance {
    fn name(&self) -> &'static str {
        "aws_instance"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        use Kind::*;
        &[
            ("ami", Str),
            ("instance_type", Str),
            ("availability_zone", Str),
            ("subnet_id", Str),
            ("vpc_security_group_ids", StrList),
            ("security_groups", StrList),
            ("key_name", Str),
            ("user_data", Str),
            ("user_data_base64", Str),
            ("user_data_replace_on_change", Bool),
            ("associate_public_ip_address", Bool),
            ("private_ip", Str),
            ("secondary_private_ips", StrList),
            ("iam_instance_profile", Str),
            ("metadata_options", Blocks),
            ("root_block_device", Blocks),
            ("ebs_block_device", Blocks),
            ("volume_tags", StrMap),
            ("source_dest_check", Bool),
            ("monitoring", Bool),
            ("disable_api_termination", Bool),
            ("credit_specification", Blocks),
            ("tags", StrMap),
        ]
    }

    fn normalize(&self, m: &mut Map) -> ProviderResult<()> {
        if m.contains_key("vpc_security_group_ids") && !m["vpc_security_group_ids"].is_null() {
            let set = client::normalize_set(m.get("vpc_security_group_ids"));
            m.insert("vpc_security_group_ids".into(), set);
        }
        for k in ["user_data", "user_data_base64"] {
            if m.get(k).and_then(Value::as_str) == Some("") {
                m.insert(k.into(), Value::Null);
            }
        }
        if m.get("volume_tags").is_some_and(|v| !v.is_null()) {
            let tags = client::normalize_tags(m.get("volume_tags"));
            m.insert("volume_tags".into(), tags);
        }
        args::normalize(m);
        devices::normalize(m);
        Ok(())
    }

    fn validate(&self, config: &Value) -> Vec<ProviderError> {
        let mut errs: Vec<ProviderError> = create_timeout(config, Duration::ZERO).err().into_iter().collect();
        let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
        if set("user_data") && set("user_data_base64") {
            errs.push(ProviderError::attr("user_data_base64", "set `user_data` or `user_data_base64`, not both"));
        }
        // "User data is limited to 16 KB, in raw form, before it is
        // base64-encoded" (EC2 User Guide, instance user data).
        if let Some(u) = config.get_str("user_data")
            && u.len() > USER_DATA_LIMIT
        {
            errs.push(ProviderError::attr(
                "user_data",
                format!("`user_data` is {} bytes; AWS takes at most {USER_DATA_LIMIT}", u.len()),
            ));
        }
        if let Some(u) = config.get_str("user_data_base64") {
            match base64::engine::general_purpose::STANDARD.decode(u) {
                Err(e) => {
                    errs.push(ProviderError::attr("user_data_base64", format!("`user_data_base64` is not base64: {e}")))
                }
                Ok(raw) if raw.len() > USER_DATA_LIMIT => errs.push(ProviderError::attr(
                    "user_data_base64",
                    format!("`user_data_base64` decodes to {} bytes; AWS takes at most {USER_DATA_LIMIT}", raw.len()),
                )),
                Ok(_) => {}
            }
        }
        if let Some(t) = config.get("volume_tags").filter(|v| v.is_known())
            && let Err(e) = tags_arg(Some(t))
        {
            errs.push(about("volume_tags", e));
        }
        errs.extend(args::validate(config));
        errs.extend(devices::validate(config));
        errs
    }

    fn refine_plan(&self, prior: Option<&Value>, config: &Map, planned: &mut Planned) {
        refine_plan(prior, config, planned)
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh(ec2, items).await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply(ec2, ops, sink).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        adopt(ec2, ctx, template).await
    }
}

/// Default for `timeouts { create }`, as in Terraform.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(600);
const DELETE_TIMEOUT: Duration = Duration::from_secs(1200);
/// TerminateInstances takes up to 1000 IDs per call.
const TERMINATE_BATCH: usize = 1000;

pub const STOPPED_NOTE: &str = "instance was stopped outside berth; it will be started";
pub const RESIZE_NOTE: &str = "changing `instance_type` stops the instance, changes its type and starts it again";
pub const USER_DATA_NOTE: &str = "changing `user_data` stops the instance, changes it and starts it again; most images \
     run user data on the first boot only (set `user_data_replace_on_change = true` to replace the host instead)";

/// AWS's limit on user data, before base64.
const USER_DATA_LIMIT: usize = 16 * 1024;

/// An instance and the account that owns it (for its ARN).
pub(crate) type Found = (Instance, String);

fn state_name(i: &Instance) -> &str {
    i.state().and_then(|s| s.name()).map(InstanceStateName::as_str).unwrap_or("unknown")
}

fn is_gone(i: &Instance) -> bool {
    matches!(state_name(i), "terminated" | "shutting-down")
}

/// The planned state beyond the generic plan: nested blocks filled in from
/// the host as it is, the replacements the schema cannot say (a changed
/// `ebs_block_device`, root volume encryption, user data with
/// `user_data_replace_on_change`), and berth's wish for running hosts.
fn refine_plan(prior: Option<&Value>, config: &Map, planned: &mut Planned) {
    fill_blocks(config, prior.filter(|_| planned.requires_replace.is_empty()), planned);
    if let Some(p) = prior.filter(|_| planned.requires_replace.is_empty()) {
        let after = &planned.after;
        let differs = |k: &str| {
            let now = after.get(k).unwrap_or(&Value::Null);
            now.is_known() && !p.get(k).unwrap_or(&Value::Null).same_as(now) || !now.is_known()
        };
        let mut reasons = Vec::new();
        // A state written before berth knew `ebs_block_device` has none:
        // the same as no volumes.
        let ebs =
            |v: &Value| v.get("ebs_block_device").filter(|e| !e.is_null()).cloned().unwrap_or(Value::List(Vec::new()));
        let ebs_now = ebs(after);
        if !ebs_now.is_known() || !ebs(p).same_as(&ebs_now) {
            reasons.push("ebs_block_device");
        }
        let root = |v: &Value| devices::blocks(v.get("root_block_device")).first().map(|b| (*b).clone());
        if let (Some(old), Some(new)) = (root(p), root(after))
            && devices::ROOT_REPLACING.iter().any(|k| {
                let now = new.get(*k).unwrap_or(&Value::Null);
                !now.is_null() && !old.get(*k).unwrap_or(&Value::Null).same_as(now)
            })
        {
            reasons.push("root_block_device");
        }
        if after.get("user_data_replace_on_change").and_then(Value::as_bool) == Some(true) {
            reasons.extend(["user_data", "user_data_base64"].into_iter().filter(|k| differs(k)));
        }
        if !reasons.is_empty() {
            for r in reasons {
                client::replace_because(&SCHEMA, config, planned, r);
            }
            fill_blocks(config, None, planned);
        }
    }
    let replacing = !planned.requires_replace.is_empty();
    if let Value::Map(m) = &mut planned.after {
        m.insert("instance_state".into(), Value::str("running"));
    }
    let Some(prior) = prior.filter(|_| !replacing) else { return };
    let stopped = matches!(prior.get_str("instance_state"), Some("stopped" | "stopping"));
    if stopped {
        planned.notes.push(STOPPED_NOTE.into());
    }
    let changes = |k: &str| !prior.get(k).unwrap_or(&Value::Null).same_as(planned.after.get(k).unwrap_or(&Value::Null));
    let type_changes = changes("instance_type");
    if type_changes {
        planned.notes.push(RESIZE_NOTE.into());
    }
    let user_data_changes = changes("user_data") || changes("user_data_base64");
    if user_data_changes {
        planned.notes.push(USER_DATA_NOTE.into());
    }
    // A start gives a host without an Elastic IP a new public address and
    // name: what reads them must wait for the apply.
    if (stopped || type_changes || user_data_changes)
        && let Value::Map(m) = &mut planned.after
    {
        for k in RESTART_CHANGES {
            m.insert(k.to_string(), Value::Unknown);
        }
    }
}

/// The nested blocks of the plan, what the configuration leaves out taken
/// from `prior` (unknown without one).
fn fill_blocks(config: &Map, prior: Option<&Value>, planned: &mut Planned) {
    let Value::Map(after) = &mut planned.after else { return };
    devices::plan(config, prior, after);
    if let Some(b) = args::block(config.get("metadata_options")) {
        let p = prior.and_then(|p| args::block(p.get("metadata_options")));
        after.insert("metadata_options".into(), Value::List(vec![devices::fill(b, p, args::METADATA_FIELDS, &[])]));
    }
}

/// What a stop and start of an instance changes: its public address and
/// name (the private ones stay with its interface).
pub const RESTART_CHANGES: &[&str] = &["public_ip", "public_dns"];

pub(crate) async fn describe(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<Found>> {
    let mut out = Vec::new();
    // With filters (not InstanceIds) a missing instance is left out instead
    // of failing the call, and MaxResults may be set: 1000 per page.
    let mut pages =
        ec2.client.describe_instances().set_filters(Some(filters)).max_results(MAX_RESULTS).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("DescribeInstances", &e))?;
        for r in page.reservations() {
            let owner = r.owner_id().unwrap_or_default().to_string();
            out.extend(r.instances().iter().map(|i| (i.clone(), owner.clone())));
        }
    }
    Ok(out)
}

/// Looks up instances by ID, 200 per call.
async fn describe_ids(ec2: &Ec2, ids: &[String]) -> ProviderResult<HashMap<String, Found>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(MAX_FILTER_VALUES) {
        for f in describe(ec2, vec![filter("instance-id", chunk.iter().cloned())]).await? {
            if let Some(id) = f.0.instance_id() {
                out.insert(id.to_string(), f);
            }
        }
    }
    Ok(out)
}

/// The state of an instance. `prior` supplies what AWS does not report
/// back: `user_data`, `timeouts`, and `associate_public_ip_address` as
/// configured, and whether volumes are managed; `volumes` holds the
/// instance's volumes when they are.
fn state(ec2: &Ec2, (i, owner): &Found, prior: &Value, volumes: &Volumes) -> Value {
    let id = i.instance_id().unwrap_or_default();
    let opt = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    let mut groups: Vec<Value> = i.security_groups().iter().filter_map(|g| g.group_id()).map(Value::str).collect();
    if groups.is_empty() {
        // An instance launched with an interface specification (to set
        // `associate_public_ip_address`) may report its groups only on that
        // interface; the primary interface's groups are the instance's.
        let primary = i
            .network_interfaces()
            .iter()
            .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
            .or_else(|| i.network_interfaces().first());
        groups = primary
            .map(|n| n.groups().iter().filter_map(|g| g.group_id()).map(Value::str).collect())
            .unwrap_or_default();
    }
    let public_ip = opt(i.public_ip_address());
    let associate = match prior.get("associate_public_ip_address").and_then(Value::as_bool) {
        Some(b) => Value::Bool(b),
        None => Value::Bool(!public_ip.is_null()),
    };
    let carried = |k: &str| prior.get(k).filter(|v| v.is_known()).cloned().unwrap_or(Value::Null);
    let mut out = obj([
        ("id", Value::str(id)),
        ("arn", Value::str(ec2.arn(owner, "instance", id))),
        ("ami", Value::str(i.image_id().unwrap_or_default())),
        ("instance_type", Value::str(i.instance_type().map(InstanceType::as_str).unwrap_or_default())),
        ("subnet_id", opt(i.subnet_id())),
        ("vpc_security_group_ids", Value::List(client::sorted_unique(groups))),
        ("key_name", opt(i.key_name())),
        ("user_data", carried("user_data")),
        ("associate_public_ip_address", associate),
        ("private_ip", opt(i.private_ip_address())),
        ("tags", tags_value(i.tags())),
        ("timeouts", carried("timeouts")),
        ("public_ip", public_ip),
        ("private_dns", opt(i.private_dns_name())),
        ("public_dns", opt(i.public_dns_name())),
        ("instance_state", Value::str(state_name(i))),
        ("availability_zone", opt(i.placement().and_then(|p| p.availability_zone()))),
        ("primary_network_interface_id", opt(args::primary_interface(i).and_then(|n| n.network_interface_id()))),
    ]);
    if let Value::Map(m) = &mut out {
        args::read(i, prior, m);
        devices::read(i, volumes, prior, m);
    }
    out
}

/// An instance as the `aws_instance` data source shows it: what berth's
/// state of it would hold, with nothing carried from a configuration.
pub(crate) fn data_state(ec2: &Ec2, found: &Found) -> Value {
    state(ec2, found, &Value::Null, &Volumes::new())
}

/// The volumes of the instances whose configuration (`prior`) manages
/// them: one DescribeVolumes per 200, none when no host manages volumes.
async fn volumes_of<'a>(
    ec2: &Ec2,
    hosts: impl IntoIterator<Item = (&'a Instance, &'a Value)>,
) -> ProviderResult<Volumes> {
    let ids: Vec<String> =
        hosts.into_iter().filter(|(_, p)| devices::managed(p)).flat_map(|(i, _)| devices::volume_ids(i)).collect();
    if ids.is_empty() {
        return Ok(Volumes::new());
    }
    devices::describe(ec2, &ids).await
}

async fn refresh(ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
    let refreshed = client::refresh_batch_with(
        items,
        |ids| async move {
            // Terminated instances linger in DescribeInstances for a while;
            // for berth they are gone.
            Ok(describe(ec2, vec![filter("instance-id", ids)]).await?.into_iter().filter(|f| !is_gone(&f.0)).collect())
        },
        |f: &Found| f.0.instance_id().map(str::to_string),
        |f, prior| async move { Ok((f, prior)) },
    )
    .await;
    // Volumes are read once for the whole batch, after the instances.
    let found: Vec<(&Instance, &Value)> = refreshed
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|o| o.as_ref()))
        .map(|(f, prior): &(Found, Value)| (&f.0, prior))
        .collect();
    let volumes = match volumes_of(ec2, found).await {
        Ok(v) => v,
        Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
    };
    refreshed.into_iter().map(|r| r.map(|o| o.map(|(f, prior)| state(ec2, &f, &prior, &volumes)))).collect()
}

/// The instance one create attempt launched, after a crash. Live instances
/// of the address are listed once; the one that reports this attempt's
/// client token is it. Without such an instance (an attempt journaled
/// before tokens were), the one tagged with the attempt's generation.
/// Terminated and shutting-down instances are never taken.
///
/// The token is matched on the instances' `clientToken` rather than with
/// DescribeInstances' `client-token` filter: the same single call on AWS,
/// and moto, which has no such filter, answers it too.
async fn adopt(ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
    let filters = vec![
        filter(&format!("tag:{ADDRESS_TAG}"), [ctx.addr.to_string()]),
        filter(&format!("tag:{LINEAGE_TAG}"), [ctx.lineage.clone()]),
        filter("instance-state-name", ["pending", "running", "stopping", "stopped"]),
    ];
    let found = describe(ec2, filters).await?;
    let token = (!ctx.token.is_empty()).then(|| client_token(ctx));
    let by_token = token.and_then(|t| found.iter().find(|f| f.0.client_token() == Some(t.as_str())).cloned());
    let mine = match by_token {
        Some(f) => Some(f),
        None => {
            let generation = ctx.generation.to_string();
            let tagged: Vec<Found> = found
                .into_iter()
                .filter(|f| {
                    f.0.tags().iter().any(|t| t.key() == Some(GENERATION_TAG) && t.value() == Some(&generation))
                })
                .collect();
            at_most_one("instance", ctx, tagged, |f| f.0.instance_id().unwrap_or_default().to_string())?
        }
    };
    let Some(f) = mine else { return Ok(None) };
    let volumes = volumes_of(ec2, [(&f.0, template)]).await?;
    Ok(Some(state(ec2, &f, template, &volumes)))
}

/// The pause before poll number `n` (0-based) of a wait for instances:
/// growing from `ec2.poll` by half each time up to `ec2.poll_max`, so a
/// quick boot is seen quickly and a slow one costs few calls.
fn poll_delay(ec2: &Ec2, n: u32) -> Duration {
    ec2.poll.mul_f64(1.5f64.powi(n.min(20) as i32)).min(ec2.poll_max)
}

/// Waits for a batch of instances, one DescribeInstances per poll (per
/// 1000). `decide` sees each pending instance (or `None` while it is not
/// visible) and whether its deadline passed; it returns `Some(outcome)` when
/// the instance is settled, and the outcome is reported at once. When the
/// poll itself fails, every pending instance fails with the state `keep`
/// gives for it. The volumes of the running instances `plans` says manage
/// volumes are read in the same poll, one DescribeVolumes per 200.
async fn wait_batch<D, K>(
    ec2: &Ec2,
    mut pending: BTreeMap<String, (usize, Instant)>,
    sink: &ApplySink,
    plans: &HashMap<String, Value>,
    mut decide: D,
    keep: K,
) where
    D: FnMut(&str, Option<&Found>, bool, &Volumes) -> Option<ApplyOutcome>,
    K: Fn(&str) -> Option<Value>,
{
    let mut polls = 0;
    while !pending.is_empty() {
        let ids: Vec<String> = pending.keys().cloned().collect();
        let polled = match describe_ids(ec2, &ids).await {
            Ok(found) => {
                let running = found
                    .iter()
                    .filter(|(_, f)| state_name(&f.0) == "running")
                    .filter_map(|(id, f)| Some((&f.0, plans.get(id)?)));
                volumes_of(ec2, running).await.map(|v| (found, v))
            }
            Err(e) => Err(e),
        };
        match polled {
            Ok((found, volumes)) => {
                let now = Instant::now();
                pending.retain(|id, (index, deadline)| match decide(id, found.get(id), now >= *deadline, &volumes) {
                    Some(outcome) => {
                        let _ = sink.send((*index, outcome));
                        false
                    }
                    None => true,
                });
            }
            Err(e) => {
                // The SDK already retried throttling and 5xx; what is left
                // will not heal by polling harder.
                for (id, (index, _)) in std::mem::take(&mut pending) {
                    let _ = sink.send((index, ApplyOutcome::failed(keep(&id), e.clone())));
                }
                return;
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(poll_delay(ec2, polls)).await;
            polls += 1;
        }
    }
}

/// The RunInstances call for one planned instance: the new instance's id
/// and its primary network interface.
async fn run_instance(ec2: &Ec2, ctx: &OpContext, planned: &Value) -> ProviderResult<(String, Option<String>)> {
    let ami = req_str(planned, "ami")?;
    let instance_type = req_str(planned, "instance_type")?;
    let tags = tags_arg(planned.get("tags"))?;
    let groups = client::strings(planned.get("vpc_security_group_ids"));
    let groups = (!groups.is_empty()).then_some(groups);
    let subnet = opt_str(planned, "subnet_id").map(str::to_string);
    let private_ip = opt_str(planned, "private_ip").map(str::to_string);
    let user_data = match opt_str(planned, "user_data_base64") {
        Some(b) => Some(b.to_string()),
        None => opt_str(planned, "user_data").map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
    };
    let root_device = match devices::blocks(planned.get("root_block_device")).is_empty() {
        true => None,
        false => Some(devices::root_device_name(ec2, ami).await?),
    };
    // The attempt's token: the SDK's resend of a launch that landed gets the
    // first call's instance, and the next run after a crash finds it.
    let token = client_token(ctx);
    let mut call = ec2
        .client
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::from(instance_type))
        .min_count(1)
        .max_count(1)
        .client_token(&token)
        .set_key_name(opt_str(planned, "key_name").map(str::to_string))
        .set_user_data(user_data)
        .tag_specifications(instance_tag_spec(ctx, &tags));
    call = match opt_bool(planned, "associate_public_ip_address") {
        // Only an interface specification can ask for (or refuse) a public
        // address; the subnet, groups and address then move into it.
        Some(associate) => call.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .associate_public_ip_address(associate)
                .set_subnet_id(subnet)
                .set_groups(groups)
                .set_private_ip_address(private_ip)
                .build(),
        ),
        None => call.set_subnet_id(subnet).set_security_group_ids(groups).set_private_ip_address(private_ip),
    };
    let call = devices::launch(args::launch(call, planned), planned, root_device.as_deref())?;
    // Both retried sends are refused requests (a reference not visible yet,
    // an address not released yet), so sending them again with the same
    // token and parameters is the same launch.
    let out = retry_codes(retry::ADDRESS_IN_USE, ec2.address_release, || {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || call.clone().send())
    })
    .await
    .map_err(|e| sdk_error(&format!("RunInstances for `{}`", ctx.addr), &e))?;
    let i = out
        .instances()
        .first()
        .ok_or_else(|| ProviderError::new(format!("RunInstances for `{}` returned no instance", ctx.addr)))?;
    let id = i
        .instance_id()
        .ok_or_else(|| ProviderError::new(format!("RunInstances for `{}` returned no instance id", ctx.addr)))?;
    Ok((id.to_string(), args::primary_interface(i).and_then(|n| n.network_interface_id()).map(str::to_string)))
}

async fn create_batch(ec2: &Ec2, creates: Vec<(usize, ApplyOp)>, sink: &ApplySink) {
    use futures::StreamExt;
    let mut launches = futures::stream::iter(creates.into_iter().map(|(index, op)| async move {
        let ChangeKind::Create { planned } = op.kind else { unreachable!("only creates are passed") };
        let r = match create_timeout(&planned, DEFAULT_CREATE_TIMEOUT) {
            Ok(t) => run_instance(ec2, &op.ctx, &planned).await.map(|(id, eni)| (id, eni, t)),
            Err(e) => Err(e),
        };
        // What the launch could not set is set at once; when that fails,
        // the host is recorded (and replaced by the next apply).
        let r = match r {
            Ok((id, eni, t)) => match args::after_launch(ec2, &id, eni.as_deref(), &planned).await {
                Ok(()) => Ok((id, t)),
                Err(e) => Err((Some(id), e)),
            },
            Err(e) => Err((None, e)),
        };
        (index, planned, r)
    }))
    .buffer_unordered(16);
    let mut pending = BTreeMap::new();
    let mut plans = HashMap::new();
    let mut timeouts = HashMap::new();
    while let Some((index, planned, r)) = launches.next().await {
        match r {
            Ok((id, timeout)) => {
                pending.insert(id.clone(), (index, Instant::now() + timeout));
                plans.insert(id.clone(), planned);
                timeouts.insert(id, timeout);
            }
            Err((Some(id), e)) => {
                let _ = sink.send((index, ApplyOutcome::failed(Some(partial_state(&planned, &id)), e)));
            }
            // Nothing was launched: report at once, nothing to wait for.
            Err((None, e)) => {
                let _ = sink.send((index, ApplyOutcome::failed(None, e)));
            }
        }
    }
    wait_batch(
        ec2,
        pending,
        sink,
        &plans,
        |id, found, timed_out, volumes| {
            let (planned, timeout) = (&plans[id], &timeouts[id]);
            match found {
                Some(f) if state_name(&f.0) == "running" => {
                    Some(ApplyOutcome::ok(Some(state(ec2, f, planned, volumes))))
                }
                Some(f) if is_gone(&f.0) => {
                    let reason = f.0.state_reason().and_then(|r| r.message()).unwrap_or("no reason given");
                    Some(ApplyOutcome::failed(
                        None,
                        ProviderError::new(format!("instance `{id}` terminated while starting: {reason}")),
                    ))
                }
                Some(f) if timed_out => Some(ApplyOutcome::failed(
                    Some(state(ec2, f, planned, volumes)),
                    ProviderError::new(format!(
                        "instance `{id}` did not reach `running` within {} (it is `{}`)",
                        humantime::format_duration(*timeout),
                        state_name(&f.0)
                    )),
                )),
                None if timed_out => Some(ApplyOutcome::failed(
                    Some(partial_state(planned, id)),
                    ProviderError::new(format!(
                        "instance `{id}` was launched but not visible within {}",
                        humantime::format_duration(*timeout)
                    )),
                )),
                _ => None,
            }
        },
        |id| Some(partial_state(&plans[id], id)),
    )
    .await;
}

/// Waits for one instance to reach `target`.
async fn wait_one(ec2: &Ec2, id: &str, target: &str, timeout: Duration) -> ProviderResult<Found> {
    let deadline = Instant::now() + timeout;
    let mut polls = 0;
    loop {
        let found = describe_ids(ec2, &[id.to_string()]).await?;
        match found.get(id) {
            Some(f) if state_name(&f.0) == target => return Ok(f.clone()),
            Some(f) if is_gone(&f.0) => {
                return Err(ProviderError::new(format!(
                    "instance `{id}` was terminated while berth waited for `{target}`"
                )));
            }
            other => {
                if Instant::now() >= deadline {
                    let now = other.map(|f| state_name(&f.0)).unwrap_or("not visible");
                    return Err(ProviderError::new(format!(
                        "instance `{id}` did not reach `{target}` within {} (it is `{now}`)",
                        humantime::format_duration(timeout)
                    )));
                }
            }
        }
        tokio::time::sleep(poll_delay(ec2, polls)).await;
        polls += 1;
    }
}

async fn start(ec2: &Ec2, id: &str, timeout: Duration) -> ProviderResult<Found> {
    ec2.client
        .start_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("StartInstances `{id}`"), &e))?;
    wait_one(ec2, id, "running", timeout).await
}

async fn stop(ec2: &Ec2, id: &str, timeout: Duration) -> ProviderResult<Found> {
    ec2.client
        .stop_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("StopInstances `{id}`"), &e))?;
    wait_one(ec2, id, "stopped", timeout).await
}

async fn set_type(ec2: &Ec2, id: &str, instance_type: &str) -> ProviderResult<()> {
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client
            .modify_instance_attribute()
            .instance_id(id)
            .instance_type(AttributeValue::builder().value(instance_type).build())
            .send()
    })
    .await
    .map_err(|e| {
        about("instance_type", sdk_error(&format!("ModifyInstanceAttribute `{id}` to `{instance_type}`"), &e))
    })?;
    Ok(())
}

/// What changes only while the host is stopped: its type, its user data.
struct WhileStopped<'a> {
    instance_type: Option<(&'a str, &'a str)>,
    /// Old and new user data, raw (not base64).
    user_data: Option<(Vec<u8>, Vec<u8>)>,
}

impl WhileStopped<'_> {
    fn is_empty(&self) -> bool {
        self.instance_type.is_none() && self.user_data.is_none()
    }

    /// Sets the new values, stopping at the first failure: how many were
    /// set, and the failure.
    async fn set(&self, ec2: &Ec2, id: &str) -> (usize, ProviderResult<()>) {
        let mut done = 0;
        if let Some((_, new)) = self.instance_type {
            if let Err(e) = set_type(ec2, id, new).await {
                return (done, Err(e));
            }
            done += 1;
        }
        if let Some((_, new)) = &self.user_data {
            if let Err(e) = set_user_data(ec2, id, new).await {
                return (done, Err(e));
            }
            done += 1;
        }
        (done, Ok(()))
    }

    /// Puts the first `done` changes back.
    async fn undo(&self, ec2: &Ec2, id: &str, done: usize) -> ProviderResult<()> {
        let mut left = done;
        if let Some((old, _)) = self.instance_type
            && left > 0
        {
            set_type(ec2, id, old).await?;
            left -= 1;
        }
        if let Some((old, _)) = &self.user_data
            && left > 0
        {
            set_user_data(ec2, id, old).await?;
        }
        Ok(())
    }

    fn describe_old(&self) -> String {
        match self.instance_type {
            Some((old, _)) => format!("`{old}`"),
            None => "it was".into(),
        }
    }
}

async fn set_user_data(ec2: &Ec2, id: &str, raw: &[u8]) -> ProviderResult<()> {
    // The attribute's value is the user data in base64, as at launch; the
    // SDK encodes the blob once more for the wire (the AWS CLI's
    // `modify-instance-attribute --user-data` wants base64 text for the
    // same reason).
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
    let value = aws_sdk_ec2::types::SecureBlobAttributeValue::builder()
        .value(aws_smithy_types::Blob::new(encoded.into_bytes()))
        .build();
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client.modify_instance_attribute().instance_id(id).user_data(value.clone()).send()
    })
    .await
    .map_err(|e| about("user_data", sdk_error(&format!("ModifyInstanceAttribute `userData` on `{id}`"), &e)))?;
    Ok(())
}

/// Changes what `changes` says on a stopped instance and starts it. When a
/// change or the start fails, the old values are put back (when they had
/// changed) and the host started again, once, before the first failure is
/// reported: a failed resize leaves the host running as it was, not
/// stopped.
async fn change_and_start(ec2: &Ec2, id: &str, changes: &WhileStopped<'_>, timeout: Duration) -> ProviderResult<Found> {
    let (error, done, started) = match changes.set(ec2, id).await {
        (done, Err(e)) => (e, done, false),
        (done, Ok(())) => match start(ec2, id, timeout).await {
            Ok(found) => return Ok(found),
            Err(e) => (e, done, true),
        },
    };
    tracing::debug!(id, "change of a stopped host failed ({}); putting the host back as it was", error.message);
    let rollback = async {
        if done > 0 {
            if started {
                // A start refused for capacity leaves the host stopped; one
                // that timed out may still be on its way.
                let now = describe_ids(ec2, &[id.to_string()]).await?.remove(id);
                match now.as_ref().map(|f| state_name(&f.0)) {
                    Some("stopped") => {}
                    Some("running" | "pending") => {
                        stop(ec2, id, timeout).await?;
                    }
                    _ => {
                        wait_one(ec2, id, "stopped", timeout).await?;
                    }
                }
            }
            changes.undo(ec2, id, done).await?;
        }
        start(ec2, id, timeout).await
    };
    let mut error = error;
    if let Err(e) = rollback.await {
        error.message =
            format!("{}; putting the host back as {} failed too: {}", error.message, changes.describe_old(), e.message);
    }
    Err(error)
}

/// The user data of a planned or prior state, raw.
fn user_data_of(v: &Value) -> Vec<u8> {
    match (v.get_str("user_data_base64"), v.get_str("user_data")) {
        (Some(b), _) if !b.is_empty() => base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default(),
        (_, Some(u)) => u.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// The steps of an update, ending with the instance as it now is.
async fn update_steps(ec2: &Ec2, id: &str, prior: &Value, planned: &Value) -> ProviderResult<Found> {
    let timeout = create_timeout(planned, DEFAULT_CREATE_TIMEOUT)?;
    let changed = |k: &str| !prior.get(k).unwrap_or(&Value::Null).same_as(planned.get(k).unwrap_or(&Value::Null));
    if changed("vpc_security_group_ids") && planned.get("vpc_security_group_ids").is_some_and(Value::is_known) {
        let groups = client::strings(planned.get("vpc_security_group_ids"));
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.modify_instance_attribute().instance_id(id).set_groups(Some(groups.clone())).send()
        })
        .await
        .map_err(|e| about("vpc_security_group_ids", sdk_error(&format!("ModifyInstanceAttribute `{id}`"), &e)))?;
    }
    if changed("tags") {
        sync_tags(ec2, id, prior.get("tags"), planned.get("tags")).await?;
    }
    let current = describe_ids(ec2, &[id.to_string()])
        .await?
        .remove(id)
        .ok_or_else(|| ProviderError::new(format!("instance `{id}` disappeared during the update")))?;
    let eni = args::primary_interface(&current.0).and_then(|n| n.network_interface_id()).map(str::to_string);
    args::update(ec2, id, eni.as_deref(), prior, planned).await?;
    let mut prior_volumes = prior.clone();
    if devices::managed(planned) && !devices::managed(prior) {
        // Volumes managed from now on: compare with them as they are.
        let volumes = volumes_of(ec2, [(&current.0, planned)]).await?;
        prior_volumes = state(ec2, &current, planned, &volumes);
    }
    devices::update(ec2, &current.0, &prior_volumes, planned, timeout).await?;
    let (old_data, new_data) = (user_data_of(prior), user_data_of(planned));
    let changes = WhileStopped {
        instance_type: match changed("instance_type") {
            true => Some((req_str(prior, "instance_type")?, req_str(planned, "instance_type")?)),
            false => None,
        },
        user_data: (old_data != new_data).then_some((old_data, new_data)),
    };
    let now = prior.get_str("instance_state").unwrap_or("running");
    if !changes.is_empty() {
        match now {
            "running" | "pending" => {
                stop(ec2, id, timeout).await?;
            }
            "stopped" => {}
            _ => {
                wait_one(ec2, id, "stopped", timeout).await?;
            }
        }
        return change_and_start(ec2, id, &changes, timeout).await;
    }
    match now {
        "running" => describe_ids(ec2, &[id.to_string()])
            .await?
            .remove(id)
            .ok_or_else(|| ProviderError::new(format!("instance `{id}` disappeared during the update"))),
        "pending" => wait_one(ec2, id, "running", timeout).await,
        "stopping" => {
            wait_one(ec2, id, "stopped", timeout).await?;
            start(ec2, id, timeout).await
        }
        _ => start(ec2, id, timeout).await,
    }
}

/// An in-place update. When it fails, the instance is reported as a fresh
/// read shows it (the prior state when even that fails), never tainted: the
/// next plan proposes the rest of the update again.
async fn update(ec2: &Ec2, prior: &Value, planned: &Value) -> Result<Value, Failure> {
    let id = id_of(prior)?;
    let done = async {
        let found = update_steps(ec2, &id, prior, planned).await?;
        let volumes = volumes_of(ec2, [(&found.0, planned)]).await?;
        Ok(state(ec2, &found, planned, &volumes))
    };
    match done.await {
        Ok(v) => Ok(v),
        Err(e) => {
            let now = async {
                let f = describe_ids(ec2, std::slice::from_ref(&id)).await.ok()?.remove(&id)?;
                let volumes = volumes_of(ec2, [(&f.0, prior)]).await.ok()?;
                Some(state(ec2, &f, prior, &volumes))
            };
            Err(Failure::with(now.await.unwrap_or_else(|| prior.clone()), e))
        }
    }
}

async fn terminate(ec2: &Ec2, ids: &[String]) -> ProviderResult<()> {
    for chunk in ids.chunks(TERMINATE_BATCH) {
        match ec2.client.terminate_instances().set_instance_ids(Some(chunk.to_vec())).send().await {
            Ok(_) => {}
            // One ID already gone fails the whole call: fall back to one call
            // per instance, where "gone" is success.
            Err(e) if code_of(&e) == Some("InvalidInstanceID.NotFound") => {
                for id in chunk {
                    match ec2.client.terminate_instances().instance_ids(id).send().await {
                        Ok(_) => {}
                        Err(e) if code_of(&e) == Some("InvalidInstanceID.NotFound") => {}
                        Err(e) => return Err(sdk_error(&format!("TerminateInstances `{id}`"), &e)),
                    }
                }
            }
            // Termination protection: AWS refuses the whole call.
            Err(e) if code_of(&e) == Some("OperationNotPermitted") => {
                let mut err = about("disable_api_termination", sdk_error("TerminateInstances", &e));
                err.message.push_str(
                    "; the instance has termination protection: apply `disable_api_termination = false` first",
                );
                return Err(err);
            }
            Err(e) => return Err(sdk_error("TerminateInstances", &e)),
        }
    }
    Ok(())
}

async fn delete_batch(ec2: &Ec2, deletes: Vec<(usize, Value)>, sink: &ApplySink) {
    let mut ids = Vec::new();
    let mut priors = HashMap::new();
    for (index, prior) in deletes {
        match id_of(&prior) {
            Ok(id) => {
                ids.push(id.clone());
                priors.insert(id, (index, prior));
            }
            Err(e) => {
                let _ = sink.send((index, ApplyOutcome::failed(Some(prior), e)));
            }
        }
    }
    if let Err(e) = terminate(ec2, &ids).await {
        for (index, prior) in priors.into_values() {
            let _ = sink.send((index, ApplyOutcome::failed(Some(prior), e.clone())));
        }
        return;
    }
    // Subnets and security groups can only go once their instances have
    // terminated, so a delete is done when the instance is.
    let deadline = Instant::now() + DELETE_TIMEOUT;
    let pending = priors.iter().map(|(id, (index, _))| (id.clone(), (*index, deadline))).collect();
    wait_batch(
        ec2,
        pending,
        sink,
        &HashMap::new(),
        |id, found, timed_out, _| match found {
            None => Some(ApplyOutcome::ok(None)),
            Some(f) if state_name(&f.0) == "terminated" => Some(ApplyOutcome::ok(None)),
            Some(f) if timed_out => Some(ApplyOutcome::failed(
                Some(priors[id].1.clone()),
                ProviderError::new(format!("instance `{id}` did not terminate in time (it is `{}`)", state_name(&f.0))),
            )),
            _ => None,
        },
        |id| Some(priors[id].1.clone()),
    )
    .await;
}

async fn apply(ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
    let (mut creates, mut updates, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for (index, op) in ops.into_iter().enumerate() {
        match op.kind {
            ChangeKind::Create { .. } => creates.push((index, op)),
            ChangeKind::Update { prior, planned } => updates.push((index, prior, planned)),
            ChangeKind::Delete { prior } => deletes.push((index, prior)),
        }
    }
    let updates = async {
        use futures::StreamExt;
        let mut stream = futures::stream::iter(
            updates
                .into_iter()
                .map(|(index, prior, planned)| async move { (index, update(ec2, &prior, &planned).await) }),
        )
        .buffer_unordered(8);
        while let Some((index, r)) = stream.next().await {
            let _ = sink.send((index, client::outcome(r.map(Some))));
        }
    };
    tokio::join!(create_batch(ec2, creates, &sink), updates, delete_batch(ec2, deletes, &sink));
}
