//! The arguments of `aws_instance` beyond its image, type and network
//! placement: instance metadata (IMDS), detailed monitoring, the
//! source/destination check, termination protection, CPU credits, the IAM
//! instance profile and secondary private addresses. Each has a launch
//! parameter (or, for the source/destination check and secondary
//! addresses, a call right after the launch), an in-place update and a
//! reading back.
//!
//! What DescribeInstances reports is read back on every refresh at no extra
//! cost (metadata options, monitoring, the source/destination check, the
//! profile, addresses). Termination protection and CPU credits would cost a
//! call per instance (DescribeInstanceAttribute,
//! DescribeInstanceCreditSpecifications), so they are kept as configured:
//! a change made outside berth is not seen.

use super::super::client::{self, Ec2, opt_str};
use super::super::error::{about, sdk_error};
use super::super::retry::{self, retry_codes};
use crate::providers::{ProviderError, ProviderResult};
use crate::value::{Map, Value, obj};
use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, CreditSpecificationRequest, HttpTokensState, IamInstanceProfileSpecification, Instance,
    InstanceCreditSpecificationRequest, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceMetadataTagsState, Placement, RunInstancesMonitoringEnabled,
};

/// The fields of a `metadata_options` block, all optional: what is not set
/// is what AWS chose (the image decides whether IMDSv2 is required).
pub(super) const METADATA_FIELDS: &[&str] =
    &["http_endpoint", "http_tokens", "http_put_response_hop_limit", "instance_metadata_tags"];

/// Arguments whose default berth fills in, so a configuration that leaves
/// them out plans as no change against what AWS reports.
pub(super) const DEFAULTS: &[(&str, bool)] = &[
    ("source_dest_check", true),
    ("monitoring", false),
    ("disable_api_termination", false),
    ("user_data_replace_on_change", false),
];

/// The single block of a nested-block argument, as a map: `None` when unset.
pub(super) fn block(v: Option<&Value>) -> Option<&Map> {
    match v.map(Value::unmarked) {
        Some(Value::List(l)) => l.first().and_then(Value::as_map),
        Some(Value::Map(m)) => Some(m),
        _ => None,
    }
}

/// Checks the arguments of this module in a configuration.
pub(super) fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    let one_of = |attr: &str, field: &str, v: Option<&Value>, allowed: &[&str], errs: &mut Vec<ProviderError>| {
        if let Some(s) = v.and_then(Value::as_str)
            && !allowed.contains(&s)
        {
            let want = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" or ");
            errs.push(ProviderError::attr(attr, format!("`{attr}.{field}` must be {want}, not `{s}`")));
        }
    };
    if let Some(b) = block(config.get("metadata_options")) {
        if let Some(k) = b.keys().find(|k| !METADATA_FIELDS.contains(&k.as_str())) {
            errs.push(ProviderError::attr("metadata_options", format!("unknown argument `{k}` in `metadata_options`")));
        }
        let m = "metadata_options";
        one_of(m, "http_endpoint", b.get("http_endpoint"), &["enabled", "disabled"], &mut errs);
        one_of(m, "http_tokens", b.get("http_tokens"), &["optional", "required"], &mut errs);
        one_of(m, "instance_metadata_tags", b.get("instance_metadata_tags"), &["enabled", "disabled"], &mut errs);
        // "Possible values: Integers from 1 to 64" (InstanceMetadataOptionsRequest).
        match b.get("http_put_response_hop_limit").map(Value::unmarked) {
            None | Some(Value::Null | Value::Unknown) => {}
            Some(Value::Number(n)) if n.fract() == 0.0 && (1.0..=64.0).contains(n) => {}
            Some(other) => errs.push(ProviderError::attr(
                m,
                format!(
                    "`metadata_options.http_put_response_hop_limit` must be a whole number from 1 to 64, not {other}"
                ),
            )),
        }
    }
    if let Some(b) = block(config.get("credit_specification")) {
        if let Some(k) = b.keys().find(|k| *k != "cpu_credits") {
            errs.push(ProviderError::attr(
                "credit_specification",
                format!("unknown argument `{k}` in `credit_specification`"),
            ));
        }
        one_of("credit_specification", "cpu_credits", b.get("cpu_credits"), &["standard", "unlimited"], &mut errs);
    }
    if let Some(l) = config.get("secondary_private_ips").and_then(Value::as_list)
        && let Some(bad) = l.iter().filter_map(Value::as_str).find(|s| s.parse::<std::net::Ipv4Addr>().is_err())
    {
        errs.push(ProviderError::attr(
            "secondary_private_ips",
            format!("`secondary_private_ips` has `{bad}`, which is not an IPv4 address"),
        ));
    }
    errs
}

/// Defaults and canonical forms (sets sorted) of this module's arguments.
pub(super) fn normalize(m: &mut Map) {
    for (k, v) in DEFAULTS {
        client::default(m, k, Value::Bool(*v));
    }
    for k in ["secondary_private_ips", "security_groups"] {
        if m.get(k).is_some_and(|v| !v.is_null()) {
            let set = client::normalize_set(m.get(k));
            m.insert(k.into(), set);
        }
    }
    for k in ["metadata_options", "credit_specification"] {
        // A block given as an object (`metadata_options = { ... }`) is the
        // same as one block.
        if let Some(Value::Map(b)) = m.get(k).map(Value::unmarked) {
            let b = b.clone();
            m.insert(k.into(), Value::List(vec![Value::Map(b)]));
        }
    }
    if let Some(Value::List(l)) = m.get_mut("metadata_options")
        && let Some(Value::Map(b)) = l.first_mut()
        && let Some(Value::Number(n)) = b.get("http_put_response_hop_limit").map(Value::unmarked).cloned()
    {
        b.insert("http_put_response_hop_limit".into(), Value::Number(n));
    }
    if m.get("iam_instance_profile").and_then(Value::as_str) == Some("") {
        m.insert("iam_instance_profile".into(), Value::Null);
    }
}

/// The name of an instance profile from its ARN
/// (`arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME`): the last segment.
fn profile_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The primary interface of an instance: device index 0.
pub(super) fn primary_interface(i: &Instance) -> Option<&aws_sdk_ec2::types::InstanceNetworkInterface> {
    i.network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
        .or_else(|| i.network_interfaces().first())
}

/// This module's attributes of an instance as AWS reports it; `prior`
/// supplies what is kept as configured.
pub(super) fn read(i: &Instance, prior: &Value, out: &mut Map) {
    let carried_bool = |k: &str, default: bool| prior.get(k).and_then(Value::as_bool).unwrap_or(default);
    let meta = i.metadata_options();
    let s = |v: Option<&str>| v.map(Value::str).unwrap_or(Value::Null);
    out.insert(
        "metadata_options".into(),
        Value::List(vec![obj([
            ("http_endpoint", s(meta.and_then(|m| m.http_endpoint()).map(|e| e.as_str()))),
            ("http_tokens", s(meta.and_then(|m| m.http_tokens()).map(|e| e.as_str()))),
            (
                "http_put_response_hop_limit",
                meta.and_then(|m| m.http_put_response_hop_limit())
                    .map(|n| Value::Number(f64::from(n)))
                    .unwrap_or(Value::Null),
            ),
            ("instance_metadata_tags", s(meta.and_then(|m| m.instance_metadata_tags()).map(|e| e.as_str()))),
        ])]),
    );
    // `pending` is on its way to enabled.
    let monitored = i.monitoring().and_then(|m| m.state()).is_some_and(|s| matches!(s.as_str(), "enabled" | "pending"));
    out.insert("monitoring".into(), Value::Bool(monitored));
    out.insert("source_dest_check".into(), Value::Bool(i.source_dest_check().unwrap_or(true)));
    out.insert(
        "iam_instance_profile".into(),
        i.iam_instance_profile().and_then(|p| p.arn()).map(|a| Value::str(profile_name(a))).unwrap_or(Value::Null),
    );
    let secondary: Vec<Value> = primary_interface(i)
        .map(|n| {
            n.private_ip_addresses()
                .iter()
                .filter(|a| a.primary() != Some(true))
                .filter_map(|a| a.private_ip_address())
                .map(Value::str)
                .collect()
        })
        .unwrap_or_default();
    out.insert("secondary_private_ips".into(), Value::List(client::sorted_unique(secondary)));
    let names: Vec<Value> = i.security_groups().iter().filter_map(|g| g.group_name()).map(Value::str).collect();
    let names = if names.is_empty() {
        primary_interface(i)
            .map(|n| n.groups().iter().filter_map(|g| g.group_name()).map(Value::str).collect())
            .unwrap_or_default()
    } else {
        names
    };
    out.insert("security_groups".into(), Value::List(client::sorted_unique(names)));
    out.insert("disable_api_termination".into(), Value::Bool(carried_bool("disable_api_termination", false)));
    out.insert("user_data_replace_on_change".into(), Value::Bool(carried_bool("user_data_replace_on_change", false)));
    for k in ["credit_specification", "user_data_base64"] {
        out.insert(k.into(), prior.get(k).filter(|v| v.is_known()).cloned().unwrap_or(Value::Null));
    }
}

fn metadata_request(planned: &Value) -> Option<InstanceMetadataOptionsRequest> {
    let b = block(planned.get("metadata_options"))?;
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    Some(
        InstanceMetadataOptionsRequest::builder()
            .set_http_endpoint(s("http_endpoint").map(InstanceMetadataEndpointState::from))
            .set_http_tokens(s("http_tokens").map(HttpTokensState::from))
            .set_http_put_response_hop_limit(
                b.get("http_put_response_hop_limit").and_then(Value::as_f64).map(|n| n as i32),
            )
            .set_instance_metadata_tags(s("instance_metadata_tags").map(InstanceMetadataTagsState::from))
            .build(),
    )
}

fn cpu_credits(v: &Value) -> Option<&str> {
    block(v.get("credit_specification")).and_then(|b| b.get("cpu_credits")).and_then(Value::as_str)
}

/// This module's launch parameters on a RunInstances call.
pub(super) fn launch(call: RunInstancesFluentBuilder, planned: &Value) -> RunInstancesFluentBuilder {
    let names = client::strings(planned.get("security_groups"));
    call.set_metadata_options(metadata_request(planned))
        .monitoring(
            RunInstancesMonitoringEnabled::builder()
                .enabled(planned.get("monitoring").and_then(Value::as_bool) == Some(true))
                .build(),
        )
        .set_disable_api_termination(planned.get("disable_api_termination").and_then(Value::as_bool).filter(|b| *b))
        .set_credit_specification(
            cpu_credits(planned).map(|c| CreditSpecificationRequest::builder().cpu_credits(c).build()),
        )
        .set_iam_instance_profile(
            opt_str(planned, "iam_instance_profile")
                .map(|n| IamInstanceProfileSpecification::builder().name(n).build()),
        )
        .set_placement(opt_str(planned, "availability_zone").map(|z| Placement::builder().availability_zone(z).build()))
        .set_security_groups((!names.is_empty()).then_some(names))
}

fn changed(prior: &Value, planned: &Value, k: &str) -> bool {
    !prior.get(k).unwrap_or(&Value::Null).same_as(planned.get(k).unwrap_or(&Value::Null))
}

fn bool_attr(v: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(v).build()
}

/// The steps a launch cannot take itself, right after it: RunInstances has
/// no parameter for the source/destination check nor for secondary
/// addresses without a full interface specification. `prior` is what the
/// launch gave (the check on, no secondary addresses).
pub(super) async fn after_launch(ec2: &Ec2, id: &str, eni: Option<&str>, planned: &Value) -> ProviderResult<()> {
    let launched = obj([("source_dest_check", Value::Bool(true)), ("secondary_private_ips", Value::List(Vec::new()))]);
    let mut wanted = Map::new();
    for k in ["source_dest_check", "secondary_private_ips"] {
        wanted.insert(k.into(), planned.get(k).cloned().unwrap_or(Value::Null));
    }
    if planned.get("secondary_private_ips").is_none_or(|v| !v.is_known()) {
        wanted.insert("secondary_private_ips".into(), Value::List(Vec::new()));
    }
    if planned.get("source_dest_check").and_then(Value::as_bool).is_none() {
        wanted.insert("source_dest_check".into(), Value::Bool(true));
    }
    update(ec2, id, eni, &launched, &Value::Map(wanted)).await
}

/// Takes this module's attributes from `prior` to `planned` on a running
/// instance. `eni` is its primary interface, for secondary addresses.
pub(super) async fn update(
    ec2: &Ec2,
    id: &str,
    eni: Option<&str>,
    prior: &Value,
    planned: &Value,
) -> ProviderResult<()> {
    let modify = |attr: &'static str| {
        move |e: aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_ec2::operation::modify_instance_attribute::ModifyInstanceAttributeError,
            aws_smithy_runtime_api::http::Response,
        >| about(attr, sdk_error(&format!("ModifyInstanceAttribute `{attr}` on `{id}`"), &e))
    };
    if changed(prior, planned, "metadata_options")
        && let Some(m) = block(planned.get("metadata_options"))
            .filter(|_| planned.get("metadata_options").is_some_and(Value::is_known))
    {
        // Every field, every time: what a request leaves out may be reset.
        let s = |k: &str| m.get(k).and_then(Value::as_str);
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client
                .modify_instance_metadata_options()
                .instance_id(id)
                .set_http_endpoint(s("http_endpoint").map(InstanceMetadataEndpointState::from))
                .set_http_tokens(s("http_tokens").map(HttpTokensState::from))
                .set_http_put_response_hop_limit(
                    m.get("http_put_response_hop_limit").and_then(Value::as_f64).map(|n| n as i32),
                )
                .set_instance_metadata_tags(s("instance_metadata_tags").map(InstanceMetadataTagsState::from))
                .send()
        })
        .await
        .map_err(|e| about("metadata_options", sdk_error(&format!("ModifyInstanceMetadataOptions on `{id}`"), &e)))?;
    }
    if changed(prior, planned, "monitoring")
        && let Some(on) = planned.get("monitoring").and_then(Value::as_bool)
    {
        if on {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.monitor_instances().instance_ids(id).send()
            })
            .await
            .map_err(|e| about("monitoring", sdk_error(&format!("MonitorInstances `{id}`"), &e)))?;
        } else {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.unmonitor_instances().instance_ids(id).send()
            })
            .await
            .map_err(|e| about("monitoring", sdk_error(&format!("UnmonitorInstances `{id}`"), &e)))?;
        }
    }
    if changed(prior, planned, "source_dest_check")
        && let Some(on) = planned.get("source_dest_check").and_then(Value::as_bool)
    {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.modify_instance_attribute().instance_id(id).source_dest_check(bool_attr(on)).send()
        })
        .await
        .map_err(modify("source_dest_check"))?;
    }
    if changed(prior, planned, "disable_api_termination")
        && let Some(on) = planned.get("disable_api_termination").and_then(Value::as_bool)
    {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.modify_instance_attribute().instance_id(id).disable_api_termination(bool_attr(on)).send()
        })
        .await
        .map_err(modify("disable_api_termination"))?;
    }
    if changed(prior, planned, "credit_specification")
        && let Some(c) = cpu_credits(planned)
    {
        let spec = InstanceCreditSpecificationRequest::builder().instance_id(id).cpu_credits(c).build();
        let out = retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client.modify_instance_credit_specification().instance_credit_specifications(spec.clone()).send()
        })
        .await
        .map_err(|e| {
            about("credit_specification", sdk_error(&format!("ModifyInstanceCreditSpecification on `{id}`"), &e))
        })?;
        // The call answers 200 and lists what it could not change.
        if let Some(f) = out.unsuccessful_instance_credit_specifications().first() {
            let why = f.error().and_then(|e| e.message()).unwrap_or("no reason given");
            return Err(ProviderError::attr(
                "credit_specification",
                format!("ModifyInstanceCreditSpecification on `{id}` failed: {why}"),
            ));
        }
    }
    if changed(prior, planned, "iam_instance_profile") {
        set_profile(ec2, id, opt_str(planned, "iam_instance_profile")).await?;
    }
    if changed(prior, planned, "secondary_private_ips")
        && planned.get("secondary_private_ips").is_some_and(Value::is_known)
    {
        let eni = eni.ok_or_else(|| {
            ProviderError::attr(
                "secondary_private_ips",
                format!("instance `{id}` reports no primary network interface"),
            )
        })?;
        sync_secondary(ec2, eni, prior, planned).await?;
    }
    Ok(())
}

/// Assigns the secondary addresses `planned` has and the interface does
/// not, then unassigns those it no longer wants.
async fn sync_secondary(ec2: &Ec2, eni: &str, prior: &Value, planned: &Value) -> ProviderResult<()> {
    let have = client::strings(prior.get("secondary_private_ips"));
    let want = client::strings(planned.get("secondary_private_ips"));
    let add: Vec<String> = want.iter().filter(|a| !have.contains(a)).cloned().collect();
    let remove: Vec<String> = have.iter().filter(|a| !want.contains(a)).cloned().collect();
    if !add.is_empty() {
        retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
            ec2.client
                .assign_private_ip_addresses()
                .network_interface_id(eni)
                .set_private_ip_addresses(Some(add.clone()))
                .send()
        })
        .await
        .map_err(|e| about("secondary_private_ips", sdk_error(&format!("AssignPrivateIpAddresses on `{eni}`"), &e)))?;
    }
    if !remove.is_empty() {
        ec2.client
            .unassign_private_ip_addresses()
            .network_interface_id(eni)
            .set_private_ip_addresses(Some(remove))
            .send()
            .await
            .map_err(|e| {
                about("secondary_private_ips", sdk_error(&format!("UnassignPrivateIpAddresses on `{eni}`"), &e))
            })?;
    }
    Ok(())
}

/// Makes the instance's profile `want` (or none): an instance has at most
/// one profile association, replaced rather than removed and added.
async fn set_profile(ec2: &Ec2, id: &str, want: Option<&str>) -> ProviderResult<()> {
    let about_profile = |e| about("iam_instance_profile", e);
    let found = ec2
        .client
        .describe_iam_instance_profile_associations()
        .filters(client::filter("instance-id", [id]))
        .send()
        .await
        .map_err(|e| about_profile(sdk_error(&format!("DescribeIamInstanceProfileAssociations for `{id}`"), &e)))?;
    let current = found
        .iam_instance_profile_associations()
        .iter()
        .find(|a| a.state().is_some_and(|s| matches!(s.as_str(), "associating" | "associated")))
        .and_then(|a| a.association_id())
        .map(str::to_string);
    let spec = |n: &str| IamInstanceProfileSpecification::builder().name(n).build();
    match (current, want) {
        (None, None) => {}
        (None, Some(n)) => {
            retry_codes(retry::NOT_FOUND_AFTER_CREATE, ec2.eventual, || {
                ec2.client.associate_iam_instance_profile().instance_id(id).iam_instance_profile(spec(n)).send()
            })
            .await
            .map_err(|e| about_profile(sdk_error(&format!("AssociateIamInstanceProfile `{n}` with `{id}`"), &e)))?;
        }
        (Some(a), Some(n)) => {
            ec2.client
                .replace_iam_instance_profile_association()
                .association_id(&a)
                .iam_instance_profile(spec(n))
                .send()
                .await
                .map_err(|e| about_profile(sdk_error(&format!("ReplaceIamInstanceProfileAssociation `{a}`"), &e)))?;
        }
        (Some(a), None) => {
            ec2.client
                .disassociate_iam_instance_profile()
                .association_id(&a)
                .send()
                .await
                .map_err(|e| about_profile(sdk_error(&format!("DisassociateIamInstanceProfile `{a}`"), &e)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_argument() {
        let config = obj([
            ("metadata_options", Value::List(vec![obj([("http_tokens", Value::str("always"))])])),
            ("credit_specification", Value::List(vec![obj([("cpu_credits", Value::str("lots"))])])),
            ("secondary_private_ips", Value::List(vec![Value::str("10.0.0.300")])),
        ]);
        let errs = validate(&config);
        let attrs: Vec<_> = errs.iter().filter_map(|e| e.attribute.as_deref()).collect();
        assert_eq!(attrs, ["metadata_options", "credit_specification", "secondary_private_ips"], "{errs:?}");
        assert!(errs[0].message.contains("`optional` or `required`"), "{}", errs[0].message);
        let hops =
            obj([("metadata_options", Value::List(vec![obj([("http_put_response_hop_limit", Value::Number(65.0))])]))]);
        assert_eq!(validate(&hops).len(), 1);
    }

    #[test]
    fn profile_names_come_from_arns() {
        assert_eq!(profile_name("arn:aws:iam::123456789012:instance-profile/web"), "web");
        assert_eq!(profile_name("arn:aws:iam::123456789012:instance-profile/apps/web"), "web");
    }

    #[test]
    fn defaults_fill_in_and_sets_sort() {
        let mut m = obj([("secondary_private_ips", Value::List(vec![Value::str("10.0.0.9"), Value::str("10.0.0.7")]))])
            .as_map()
            .cloned()
            .unwrap();
        normalize(&mut m);
        assert_eq!(m["source_dest_check"], Value::Bool(true));
        assert_eq!(m["monitoring"], Value::Bool(false));
        assert_eq!(m["secondary_private_ips"], Value::List(vec![Value::str("10.0.0.7"), Value::str("10.0.0.9")]));
    }
}
