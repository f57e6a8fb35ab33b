//! The health of EC2 instances, for `berth watch` ([`Provider::health`]):
//! status checks, scheduled events, and the `berth:watch=paused` tag an
//! operator sets in the console.
//!
//! Batched like a refresh: DescribeInstanceStatus by instance id, 100 ids a
//! call (AWS's limit for explicit ids), with `IncludeAllInstances` so a
//! stopped host answers too; and one DescribeTags listing of every instance
//! carrying the pause tag (a filter on the key, not one call per host).
//! A fleet of N hosts costs ceil(N/100) + 1 calls.
//!
//! [`Provider::health`]: crate::providers::Provider::health

use super::client::{Ec2, MAX_RESULTS, filter};
use super::error::sdk_error;
use crate::providers::{Health, OpContext, ProviderResult, Scheduled};
use crate::value::Value;
use aws_sdk_ec2::types::{InstanceStatus, SummaryStatus};
use std::collections::{HashMap, HashSet};

/// The tag an operator sets on an instance (`berth:watch` = `paused`) to
/// keep `berth watch` from healing it.
pub const PAUSE_TAG: &str = "berth:watch";
pub const PAUSE_VALUE: &str = "paused";

/// DescribeInstanceStatus takes at most 100 explicit instance ids.
const IDS_PER_CALL: usize = 100;

/// The health of each item (by its refreshed `id`), in order.
pub async fn instances(ec2: &Ec2, items: &[(OpContext, Value)]) -> ProviderResult<Vec<Option<Health>>> {
    let ids: Vec<String> = items.iter().filter_map(|(_, v)| v.get_str("id").map(str::to_string)).collect();
    let mut statuses: HashMap<String, InstanceStatus> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        match ec2.client.describe_instance_status().set_instance_ids(Some(chunk.to_vec())).include_all_instances(true).send().await {
            Ok(out) => statuses.extend(out.instance_statuses().iter().filter_map(|s| Some((s.instance_id()?.to_string(), s.clone())))),
            // One id gone since the refresh fails the whole call: list the
            // region's statuses instead (1000 a page) and keep ours.
            Err(e) if e.as_service_error().and_then(|s| aws_sdk_ec2::error::ProvideErrorMetadata::code(s)).is_some_and(|c| c.starts_with("InvalidInstanceID")) => {
                let wanted: HashSet<&String> = chunk.iter().collect();
                let mut pages = ec2.client.describe_instance_status().include_all_instances(true).max_results(MAX_RESULTS).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk_error("DescribeInstanceStatus", &e))?;
                    for s in page.instance_statuses() {
                        if let Some(id) = s.instance_id().filter(|id| wanted.contains(&id.to_string())) {
                            statuses.insert(id.to_string(), s.clone());
                        }
                    }
                }
            }
            Err(e) => return Err(sdk_error("DescribeInstanceStatus", &e)),
        }
    }
    let paused = paused_instances(ec2).await?;
    Ok(items
        .iter()
        .map(|(_, v)| {
            let id = v.get_str("id")?;
            let mut h = statuses.get(id).map(health_of).unwrap_or_default();
            h.paused = paused.contains(id);
            (statuses.contains_key(id) || h.paused).then_some(h)
        })
        .collect())
}

/// Every instance whose `berth:watch` tag says `paused`: one listing.
async fn paused_instances(ec2: &Ec2) -> ProviderResult<HashSet<String>> {
    let mut out = HashSet::new();
    let mut pages = ec2
        .client
        .describe_tags()
        .filters(filter("key", [PAUSE_TAG]))
        .filters(filter("resource-type", ["instance"]))
        .max_results(MAX_RESULTS)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("DescribeTags", &e))?;
        for t in page.tags() {
            if t.key() == Some(PAUSE_TAG) && t.value().is_some_and(|v| v.eq_ignore_ascii_case(PAUSE_VALUE)) {
                out.extend(t.resource_id().map(str::to_string));
            }
        }
    }
    Ok(out)
}

fn health_of(s: &InstanceStatus) -> Health {
    let word = |st: Option<&SummaryStatus>| st.map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".into());
    let system = word(s.system_status().and_then(|x| x.status()));
    let instance = word(s.instance_status().and_then(|x| x.status()));
    let ok = match (system.as_str(), instance.as_str()) {
        ("impaired", _) | (_, "impaired") => Some(false),
        ("ok", "ok") => Some(true),
        // `initializing`, `insufficient-data`, `not-applicable` (a stopped
        // host): no verdict.
        _ => None,
    };
    let scheduled = s
        .events()
        .iter()
        // AWS keeps completed events, their description prefixed `[Completed]`.
        .filter(|e| !e.description().unwrap_or_default().starts_with("[Completed]") && !e.description().unwrap_or_default().starts_with("[Canceled]"))
        .map(|e| Scheduled {
            code: e.code().map(|c| c.as_str().to_string()).unwrap_or_default(),
            description: e.description().unwrap_or_default().to_string(),
            not_before: e.not_before().and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        })
        .collect();
    Health { ok, detail: format!("system: {system}, instance: {instance}"), scheduled, paused: false }
}
