//! The EBS volumes of `aws_instance`: `root_block_device`,
//! `ebs_block_device` and `volume_tags`.
//!
//! Volumes are given to RunInstances as block device mappings (the root
//! one under the image's root device name, read with one DescribeImages)
//! and tagged in the launch itself. DescribeInstances names an instance's
//! volumes but not their size, type or tags, so those cost a
//! DescribeVolumes, 200 volumes per call: berth reads volumes only for
//! instances whose configuration manages them, and a refresh of hosts that
//! leave them to the image costs nothing more.
//!
//! Fields a block leaves out are whatever AWS chose (the image's size, the
//! region's default type) and are never planned as a change. The root
//! volume's size, type, IOPS and throughput change in place with
//! ModifyVolume (berth waits until the change takes effect, which AWS calls
//! `optimizing`), and its `delete_on_termination` with
//! ModifyInstanceAttribute; a change of its encryption replaces the host,
//! as does any change of `ebs_block_device`. AWS allows one modification of
//! a volume per six hours.

use super::super::client::{self, Ec2, filter, tags_arg, tags_value};
use super::super::error::{about, sdk_error};
use super::super::retry::{self, retry_codes};
use crate::providers::{ProviderError, ProviderResult};
use crate::value::{Map, Value};
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, EbsInstanceBlockDeviceSpecification, Instance,
    InstanceBlockDeviceMappingSpecification, ResourceType, Tag, TagSpecification, Volume, VolumeType,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The fields of a `root_block_device` block that can be set.
pub(super) const ROOT_FIELDS: &[&str] =
    &["volume_size", "volume_type", "encrypted", "delete_on_termination", "iops", "throughput", "kms_key_id"];
/// The fields of an `ebs_block_device` block that can be set.
pub(super) const EBS_FIELDS: &[&str] = &[
    "device_name",
    "volume_size",
    "volume_type",
    "encrypted",
    "delete_on_termination",
    "iops",
    "throughput",
    "kms_key_id",
    "snapshot_id",
];
/// What AWS reports on top: the volume, and for the root, its device.
pub(super) const ROOT_COMPUTED: &[&str] = &["volume_id", "device_name"];
pub(super) const EBS_COMPUTED: &[&str] = &["volume_id"];
/// EBS volume types (`VolumeType` in the EC2 API reference).
const VOLUME_TYPES: &[&str] = &["standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"];
/// The root volume's fields ModifyVolume changes in place.
const MODIFIABLE: &[&str] = &["volume_size", "volume_type", "iops", "throughput"];
/// The root volume's fields whose change replaces the host.
pub(super) const ROOT_REPLACING: &[&str] = &["encrypted", "kms_key_id"];

/// Volumes by id.
pub(super) type Volumes = HashMap<String, Volume>;

/// The blocks of a block argument, as maps (one object counts as one block).
pub(super) fn blocks(v: Option<&Value>) -> Vec<&Map> {
    match v.map(Value::unmarked) {
        Some(Value::List(l)) => l.iter().filter_map(Value::as_map).collect(),
        Some(Value::Map(m)) => vec![m],
        _ => Vec::new(),
    }
}

fn check_block(attr: &str, b: &Map, fields: &[&str], errs: &mut Vec<ProviderError>) {
    if let Some(k) = b.keys().find(|k| !fields.contains(&k.as_str())) {
        errs.push(ProviderError::attr(attr, format!("unknown argument `{k}` in `{attr}`")));
    }
    for k in ["volume_size", "iops", "throughput"] {
        match b.get(k).map(Value::unmarked) {
            None | Some(Value::Null | Value::Unknown) => {}
            Some(Value::Number(n)) if n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(i32::MAX) => {}
            Some(other) => errs
                .push(ProviderError::attr(attr, format!("`{attr}.{k}` must be a positive whole number, not {other}"))),
        }
    }
    for k in ["encrypted", "delete_on_termination"] {
        if let Some(v) = b.get(k).map(Value::unmarked).filter(|v| !v.is_null() && v.is_known())
            && !matches!(v, Value::Bool(_))
        {
            errs.push(ProviderError::attr(attr, format!("`{attr}.{k}` must be a bool, not {}", v.type_name())));
        }
    }
    if let Some(t) = b.get("volume_type").and_then(Value::as_str)
        && !VOLUME_TYPES.contains(&t)
    {
        errs.push(ProviderError::attr(
            attr,
            format!("`{attr}.volume_type` must be one of {}, not `{t}`", VOLUME_TYPES.join(", ")),
        ));
    }
    if b.get("throughput").is_some_and(|v| !v.is_null())
        && b.get("volume_type").and_then(Value::as_str).is_some_and(|t| t != "gp3")
    {
        errs.push(ProviderError::attr(attr, format!("`{attr}.throughput` applies to `gp3` volumes only")));
    }
}

/// Checks the volume arguments of a configuration.
pub(super) fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    let roots = blocks(config.get("root_block_device"));
    if roots.len() > 1 {
        errs.push(ProviderError::attr("root_block_device", "an instance has one `root_block_device` block"));
    }
    for b in roots {
        check_block("root_block_device", b, ROOT_FIELDS, &mut errs);
    }
    let mut seen = std::collections::BTreeSet::new();
    for b in blocks(config.get("ebs_block_device")) {
        check_block("ebs_block_device", b, EBS_FIELDS, &mut errs);
        match b.get("device_name").map(Value::unmarked) {
            Some(Value::String(d)) if !d.is_empty() => {
                if !seen.insert(d.clone()) {
                    errs.push(ProviderError::attr(
                        "ebs_block_device",
                        format!("two `ebs_block_device` blocks for `{d}`"),
                    ));
                }
            }
            Some(Value::Unknown) => {}
            _ => errs
                .push(ProviderError::attr("ebs_block_device", "each `ebs_block_device` block requires `device_name`")),
        }
    }
    errs
}

/// Canonical forms: blocks as lists, `ebs_block_device` sorted by device.
pub(super) fn normalize(m: &mut Map) {
    for k in ["root_block_device", "ebs_block_device"] {
        if let Some(Value::Map(b)) = m.get(k).map(Value::unmarked) {
            let b = b.clone();
            m.insert(k.into(), Value::List(vec![Value::Map(b)]));
        }
    }
    if let Some(Value::List(l)) = m.get("ebs_block_device").map(Value::unmarked) {
        let mut l = l.clone();
        l.sort_by(|a, b| a.get_str("device_name").cmp(&b.get_str("device_name")));
        m.insert("ebs_block_device".into(), Value::List(l));
    }
    if m.get("ebs_block_device").is_none_or(Value::is_null) {
        m.insert("ebs_block_device".into(), Value::List(Vec::new()));
    }
}

/// A configured block with what it leaves out filled in: from `prior` (the
/// same volume as it is) when there is one, unknown otherwise.
pub(super) fn fill(block: &Map, prior: Option<&Map>, fields: &[&str], computed: &[&str]) -> Value {
    let mut out = Map::new();
    for k in fields.iter().chain(computed) {
        let configured = block.get(*k).filter(|v| !v.is_null()).cloned();
        let v = configured.unwrap_or_else(|| match prior {
            Some(p) => p.get(*k).cloned().unwrap_or(Value::Null),
            None => Value::Unknown,
        });
        out.insert(k.to_string(), v);
    }
    Value::Map(out)
}

/// The planned `root_block_device` and `ebs_block_device` of `config`,
/// filled in from `prior` (`None` on create or replacement).
pub(super) fn plan(config: &Map, prior: Option<&Value>, after: &mut Map) {
    if let Some(b) = blocks(config.get("root_block_device")).first() {
        let p = prior.and_then(|p| blocks(p.get("root_block_device")).first().copied());
        after.insert("root_block_device".into(), Value::List(vec![fill(b, p, ROOT_FIELDS, ROOT_COMPUTED)]));
    }
    let prior_ebs: BTreeMap<&str, &Map> = prior
        .map(|p| blocks(p.get("ebs_block_device")))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|b| Some((b.get("device_name")?.as_str()?, b)))
        .collect();
    let ebs: Vec<Value> = blocks(config.get("ebs_block_device"))
        .into_iter()
        .map(|b| {
            let p = b.get("device_name").and_then(Value::as_str).and_then(|d| prior_ebs.get(d).copied());
            fill(b, p, EBS_FIELDS, EBS_COMPUTED)
        })
        .collect();
    after.insert("ebs_block_device".into(), Value::List(ebs));
}

/// Whether an instance's configuration (or state) manages its volumes, so
/// they must be read.
pub(super) fn managed(v: &Value) -> bool {
    !blocks(v.get("root_block_device")).is_empty()
        || !blocks(v.get("ebs_block_device")).is_empty()
        || v.get("volume_tags").is_some_and(|t| !t.is_null())
}

/// The EBS volumes attached to an instance, with their devices.
fn attached(i: &Instance) -> Vec<(&str, &str, Option<bool>)> {
    i.block_device_mappings()
        .iter()
        .filter_map(|m| {
            let ebs = m.ebs()?;
            Some((m.device_name()?, ebs.volume_id()?, ebs.delete_on_termination()))
        })
        .collect()
}

/// The ids of an instance's volumes.
pub(super) fn volume_ids(i: &Instance) -> Vec<String> {
    attached(i).into_iter().map(|(_, v, _)| v.to_string()).collect()
}

/// Reads volumes by id, 200 per DescribeVolumes call (filtered, so a volume
/// gone meanwhile is left out rather than failing the call).
pub(super) async fn describe(ec2: &Ec2, ids: &[String]) -> ProviderResult<Volumes> {
    let mut out = Volumes::new();
    let mut ids: Vec<&String> = ids.iter().collect();
    ids.sort();
    ids.dedup();
    for chunk in ids.chunks(client::MAX_FILTER_VALUES) {
        let mut pages = ec2
            .client
            .describe_volumes()
            .filters(filter("volume-id", chunk.iter().map(|s| s.as_str())))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for v in page.map_err(|e| sdk_error("DescribeVolumes", &e))?.volumes() {
                if let Some(id) = v.volume_id() {
                    out.insert(id.to_string(), v.clone());
                }
            }
        }
    }
    Ok(out)
}

fn number(n: Option<i32>) -> Value {
    n.map(|n| Value::Number(f64::from(n))).unwrap_or(Value::Null)
}

fn volume_block(v: Option<&Volume>, id: &str, device: &str, delete: Option<bool>, root: bool) -> Value {
    let mut m = Map::new();
    let s = |x: Option<&str>| x.filter(|s| !s.is_empty()).map(Value::str).unwrap_or(Value::Null);
    m.insert("volume_id".into(), Value::str(id));
    m.insert("device_name".into(), Value::str(device));
    m.insert("volume_size".into(), number(v.and_then(Volume::size)));
    m.insert("volume_type".into(), s(v.and_then(|v| v.volume_type()).map(VolumeType::as_str)));
    m.insert("encrypted".into(), Value::Bool(v.and_then(Volume::encrypted).unwrap_or(false)));
    m.insert("delete_on_termination".into(), Value::Bool(delete.unwrap_or(root)));
    m.insert("iops".into(), number(v.and_then(Volume::iops)));
    m.insert("throughput".into(), number(v.and_then(Volume::throughput)));
    m.insert("kms_key_id".into(), s(v.and_then(Volume::kms_key_id)));
    if !root {
        m.insert("snapshot_id".into(), s(v.and_then(Volume::snapshot_id)));
    }
    Value::Map(m)
}

/// The volume attributes of an instance as AWS reports it, for a state
/// whose configuration (`prior`) manages them; otherwise as `prior` has
/// them (nothing). `volumes` must hold the instance's volumes.
pub(super) fn read(i: &Instance, volumes: &Volumes, prior: &Value, out: &mut Map) {
    if !managed(prior) {
        out.insert("root_block_device".into(), Value::Null);
        out.insert("ebs_block_device".into(), Value::List(Vec::new()));
        out.insert("volume_tags".into(), Value::Null);
        return;
    }
    let root_name = i.root_device_name().unwrap_or_default();
    let mut root = Value::Null;
    let mut ebs = Vec::new();
    for (device, id, delete) in attached(i) {
        let v = volumes.get(id);
        if device == root_name {
            root = Value::List(vec![volume_block(v, id, device, delete, true)]);
        } else {
            ebs.push(volume_block(v, id, device, delete, false));
        }
    }
    if blocks(prior.get("root_block_device")).is_empty() {
        root = Value::Null;
    }
    ebs.sort_by(|a, b| a.get_str("device_name").cmp(&b.get_str("device_name")));
    out.insert("root_block_device".into(), root);
    out.insert("ebs_block_device".into(), Value::List(ebs));
    // The tags of the root volume (of the first one without a root) stand
    // for all: berth sets the same on every volume.
    let all = attached(i);
    let first =
        all.iter().find(|(d, _, _)| *d == root_name).or_else(|| all.first()).and_then(|(_, id, _)| volumes.get(*id));
    let tags = match (prior.get("volume_tags"), first) {
        (Some(t), Some(v)) if !t.is_null() => tags_value(v.tags()),
        _ => Value::Null,
    };
    out.insert("volume_tags".into(), tags);
}

fn ebs_spec(b: &Map, root: bool) -> EbsBlockDevice {
    let int = |k: &str| b.get(k).and_then(Value::as_f64).map(|n| n as i32);
    let s = |k: &str| b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    EbsBlockDevice::builder()
        .set_volume_size(int("volume_size"))
        .set_volume_type(s("volume_type").map(|t| VolumeType::from(t.as_str())))
        .set_iops(int("iops"))
        .set_throughput(int("throughput"))
        .set_encrypted(b.get("encrypted").and_then(Value::as_bool))
        .set_kms_key_id(s("kms_key_id"))
        .set_snapshot_id(if root { None } else { s("snapshot_id") })
        // AWS's default is true for the root volume and for volumes given
        // at launch alike; said explicitly so the state never guesses.
        .delete_on_termination(b.get("delete_on_termination").and_then(Value::as_bool).unwrap_or(true))
        .build()
}

/// The image's root device name, for the root volume's mapping.
pub(super) async fn root_device_name(ec2: &Ec2, ami: &str) -> ProviderResult<String> {
    let out = ec2
        .client
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map_err(|e| about("root_block_device", sdk_error(&format!("DescribeImages `{ami}`"), &e)))?;
    out.images()
        .first()
        .and_then(|i| i.root_device_name())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::attr("root_block_device", format!("image `{ami}` reports no root device name")))
}

/// This module's launch parameters: the block device mappings and the
/// volumes' tags. `root_device` is the image's root device name, needed
/// when a `root_block_device` is configured.
pub(super) fn launch(
    call: RunInstancesFluentBuilder,
    planned: &Value,
    root_device: Option<&str>,
) -> ProviderResult<RunInstancesFluentBuilder> {
    let mut call = call;
    if let (Some(b), Some(device)) = (blocks(planned.get("root_block_device")).first(), root_device) {
        call = call.block_device_mappings(
            BlockDeviceMapping::builder().device_name(device).ebs(ebs_spec(&known(b), true)).build(),
        );
    }
    for b in blocks(planned.get("ebs_block_device")) {
        let b = known(b);
        let device = b.get("device_name").and_then(Value::as_str).unwrap_or_default().to_string();
        call = call
            .block_device_mappings(BlockDeviceMapping::builder().device_name(device).ebs(ebs_spec(&b, false)).build());
    }
    let tags = tags_arg(planned.get("volume_tags").filter(|v| v.is_known()))?;
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Volume);
        for (k, v) in &tags {
            spec = spec.tags(Tag::builder().key(k).value(v).build());
        }
        call = call.tag_specifications(spec.build());
    }
    Ok(call)
}

/// A planned block without its unknown fields (what AWS will choose).
fn known(b: &Map) -> Map {
    b.iter().filter(|(_, v)| v.is_known() && !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn changed(prior: &Map, planned: &Map, k: &str) -> bool {
    let known = planned.get(k).filter(|v| v.is_known() && !v.is_null());
    known.is_some_and(|v| !prior.get(k).unwrap_or(&Value::Null).same_as(v))
}

/// Takes the volumes from `prior` to `planned` on an instance whose
/// volumes are `i`'s: the root volume's modifiable fields, its
/// `delete_on_termination`, and `volume_tags` on every volume.
pub(super) async fn update(
    ec2: &Ec2,
    i: &Instance,
    prior: &Value,
    planned: &Value,
    timeout: Duration,
) -> ProviderResult<()> {
    let id = i.instance_id().unwrap_or_default();
    if let (Some(old), Some(new)) =
        (blocks(prior.get("root_block_device")).first(), blocks(planned.get("root_block_device")).first())
    {
        let volume = old.get("volume_id").and_then(Value::as_str).unwrap_or_default().to_string();
        if MODIFIABLE.iter().any(|k| changed(old, new, k)) {
            modify_volume(ec2, &volume, old, new, timeout).await?;
        }
        if changed(old, new, "delete_on_termination")
            && let (Some(device), Some(delete)) = (
                old.get("device_name").and_then(Value::as_str),
                new.get("delete_on_termination").and_then(Value::as_bool),
            )
        {
            let mapping = InstanceBlockDeviceMappingSpecification::builder()
                .device_name(device)
                .ebs(EbsInstanceBlockDeviceSpecification::builder().delete_on_termination(delete).build())
                .build();
            ec2.client
                .modify_instance_attribute()
                .instance_id(id)
                .block_device_mappings(mapping)
                .send()
                .await
                .map_err(|e| {
                    about("root_block_device", sdk_error(&format!("ModifyInstanceAttribute `{device}` on `{id}`"), &e))
                })?;
        }
    }
    let old_tags = prior.get("volume_tags").cloned().unwrap_or(Value::Null);
    let new_tags = planned.get("volume_tags").cloned().unwrap_or(Value::Null);
    if !old_tags.same_as(&new_tags) && new_tags.is_known() {
        for volume in volume_ids(i) {
            client::sync_tags(ec2, &volume, Some(&old_tags), Some(&new_tags))
                .await
                .map_err(|e| about("volume_tags", e))?;
        }
    }
    Ok(())
}

/// ModifyVolume, then a wait until the change has taken effect (the
/// modification is `optimizing` or `completed`).
async fn modify_volume(ec2: &Ec2, volume: &str, old: &Map, new: &Map, timeout: Duration) -> ProviderResult<()> {
    let int = |k: &str| if changed(old, new, k) { new.get(k).and_then(Value::as_f64).map(|n| n as i32) } else { None };
    let kind = if changed(old, new, "volume_type") { new.get("volume_type").and_then(Value::as_str) } else { None };
    retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
        ec2.client
            .modify_volume()
            .volume_id(volume)
            .set_size(int("volume_size"))
            .set_volume_type(kind.map(VolumeType::from))
            .set_iops(int("iops"))
            .set_throughput(int("throughput"))
            .send()
    })
    .await
    .map_err(|e| about("root_block_device", sdk_error(&format!("ModifyVolume `{volume}`"), &e)))?;
    let deadline = Instant::now() + timeout;
    let mut pause = ec2.poll;
    loop {
        let out = ec2.client.describe_volumes_modifications().volume_ids(volume).send().await.map_err(|e| {
            about("root_block_device", sdk_error(&format!("DescribeVolumesModifications `{volume}`"), &e))
        })?;
        let state =
            out.volumes_modifications().last().and_then(|m| m.modification_state()).map(|s| s.as_str().to_string());
        match state.as_deref() {
            Some("optimizing" | "completed") => return Ok(()),
            Some("failed") => {
                let why =
                    out.volumes_modifications().last().and_then(|m| m.status_message()).unwrap_or("no reason given");
                return Err(ProviderError::attr(
                    "root_block_device",
                    format!("the modification of `{volume}` failed: {why}"),
                ));
            }
            _ if Instant::now() >= deadline => {
                return Err(ProviderError::attr(
                    "root_block_device",
                    format!(
                        "the modification of `{volume}` did not take effect within {}",
                        humantime::format_duration(timeout)
                    ),
                ));
            }
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(ec2.poll_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn unset_fields_come_from_the_volume_as_it_is() {
        let config = obj([("volume_size", Value::Number(30.0))]);
        let prior = obj([
            ("volume_id", Value::str("vol-1")),
            ("device_name", Value::str("/dev/xvda")),
            ("volume_size", Value::Number(8.0)),
            ("volume_type", Value::str("gp3")),
        ]);
        let filled = fill(config.as_map().unwrap(), prior.as_map(), ROOT_FIELDS, ROOT_COMPUTED);
        assert_eq!(filled.get("volume_size"), Some(&Value::Number(30.0)));
        assert_eq!(filled.get_str("volume_type"), Some("gp3"));
        assert_eq!(filled.get_str("volume_id"), Some("vol-1"));
        let created = fill(config.as_map().unwrap(), None, ROOT_FIELDS, ROOT_COMPUTED);
        assert_eq!(created.get("volume_type"), Some(&Value::Unknown));
    }

    #[test]
    fn bad_blocks_name_the_argument() {
        let config = obj([
            (
                "root_block_device",
                Value::List(vec![obj([("volume_type", Value::str("ssd")), ("size", Value::Number(1.0))])]),
            ),
            ("ebs_block_device", Value::List(vec![obj([("volume_size", Value::Number(10.0))])])),
        ]);
        let errs = validate(&config);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("unknown argument `size`")));
        assert!(errs.iter().any(|e| e.message.contains("gp3") && e.message.contains("`ssd`")));
        assert!(errs.iter().any(|e| e.message.contains("requires `device_name`")));
    }
}
