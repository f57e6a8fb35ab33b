//! Checks that need several resources at once, run on a finished plan:
//! no provider sees more than one resource, so what AWS refuses (or
//! silently ignores) across resources is caught here, before any call, and
//! pointed at the configuration line that causes it.
//!
//! - A private Route53 zone answers only in VPCs whose `enableDnsHostnames`
//!   and `enableDnsSupport` are both true (Route53 developer guide,
//!   "Considerations when working with a private hosted zone"). A zone, or
//!   an association, on a VPC of this configuration with either false is
//!   a warning: everything applies, and no name resolves.
//! - Route53 lets one VPC see only one private zone of a name (the second
//!   association fails with `ConflictingDomainExists`). A
//!   `create_before_destroy` replacement of a private zone whose new zone
//!   has the same name on one of the same VPCs would create that second
//!   zone while the first still exists: refused at plan time.

use crate::plan::{Action, ResourceChange};
use crate::addr::{InstanceAddr, Mode, ModulePath, ResourceAddr};
use crate::config::{Config, Expr};
use crate::config::refs::{Target, resource_references};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::value::Value;
use std::collections::BTreeMap;

const ZONE: &str = "aws_route53_zone";
const ASSOCIATION: &str = "aws_route53_zone_association";
const VPC: &str = "aws_vpc";
const DNS_ATTRS: [&str; 2] = ["enable_dns_hostnames", "enable_dns_support"];

/// Runs every check on the changes of a plan: warnings become notes of the
/// change they concern, refusals become errors in `diags`.
pub fn run(config: &Config, changes: &mut [ResourceChange], diags: &mut Diagnostics) {
    private_dns_needs_vpc_dns(config, changes);
    no_second_private_zone_of_a_name(config, changes, diags);
}

/// The VPCs an `vpc_id` expression of `decl` names, as resources of the
/// configuration, with the span of each reference.
fn vpc_references(module: &ModulePath, expr: &Expr) -> Vec<(ResourceAddr, Option<Span>)> {
    resource_references(expr)
        .into_iter()
        .filter_map(|(r, _)| match &r.target {
            Target::Resource(Mode::Managed, t, name) if t == VPC => {
                Some((ResourceAddr::new(module.clone(), Mode::Managed, VPC, name), r.span.clone()))
            }
            _ => None,
        })
        .collect()
}

fn private_dns_needs_vpc_dns(config: &Config, changes: &mut [ResourceChange]) {
    // What each VPC instance will be after this plan.
    let vpcs: BTreeMap<InstanceAddr, Value> = changes
        .iter()
        .filter(|c| c.addr.resource.type_ == VPC && c.deposed.is_none() && c.action != Action::Delete)
        .filter_map(|c| Some((c.addr.clone(), c.after.clone()?)))
        .collect();
    if vpcs.is_empty() {
        return;
    }
    for change in changes.iter_mut() {
        let type_ = change.addr.resource.type_.as_str();
        if !(type_ == ZONE || type_ == ASSOCIATION) || change.deposed.is_some() || change.action == Action::Delete {
            continue;
        }
        let Some(decl) = config.resource(&change.addr.resource) else { continue };
        let exprs: Vec<&Expr> = if type_ == ZONE {
            decl.body.blocks.iter().filter(|b| b.kind == "vpc").filter_map(|b| b.body.attrs.get("vpc_id")).map(|a| &a.expr).collect()
        } else {
            decl.body.attrs.get("vpc_id").map(|a| &a.expr).into_iter().collect()
        };
        let zone = match change.after.as_ref().and_then(|a| a.get_str("name")) {
            Some(n) => format!("private zone `{n}`"),
            None => "the private zone".to_string(),
        };
        for expr in exprs {
            for (vpc, span) in vpc_references(&decl.addr.module, expr) {
                for (addr, value) in vpcs.iter().filter(|(a, _)| a.resource == vpc) {
                    let off: Vec<String> = DNS_ATTRS
                        .iter()
                        .filter(|a| value.get(a).and_then(Value::as_bool) == Some(false))
                        .map(|a| format!("`{a}`"))
                        .collect();
                    if off.is_empty() {
                        continue;
                    }
                    let at = span.as_ref().map(|s| format!("{}: ", s.location())).unwrap_or_default();
                    change.notes.push(format!(
                        "warning: {at}{zone} answers in VPC `{addr}`, whose {} {} false: names of a private zone \
                         resolve only in VPCs with both `enable_dns_hostnames` and `enable_dns_support` true",
                        off.join(" and "),
                        if off.len() == 1 { "is" } else { "are" }
                    ));
                }
            }
        }
    }
}

/// The VPC ids of a zone's `vpc` blocks, as far as they are known.
fn vpc_ids(v: &Value) -> Vec<String> {
    v.get("vpc")
        .and_then(Value::as_list)
        .map(|l| l.iter().filter_map(|b| b.get_str("vpc_id").map(str::to_string)).collect())
        .unwrap_or_default()
}

fn no_second_private_zone_of_a_name(config: &Config, changes: &[ResourceChange], diags: &mut Diagnostics) {
    for change in changes {
        if change.addr.resource.type_ != ZONE || change.action != Action::CreateThenDelete {
            continue;
        }
        let (Some(before), Some(after)) = (&change.before, &change.after) else { continue };
        let (Some(old_name), Some(new_name)) = (before.get_str("name"), after.get_str("name")) else { continue };
        let same_name = old_name.trim_end_matches('.').eq_ignore_ascii_case(new_name.trim_end_matches('.'));
        let old_vpcs = vpc_ids(before);
        let shared: Vec<String> = vpc_ids(after).into_iter().filter(|v| old_vpcs.contains(v)).collect();
        if !same_name || shared.is_empty() {
            continue;
        }
        let decl = config.resource(&change.addr.resource);
        let span = decl.and_then(|d| d.body.attrs.get("name").and_then(|a| a.expr.span()).or_else(|| d.span.clone()));
        diags.push(
            Diagnostic::error(format!(
                "`{}`: `create_before_destroy` cannot replace private zone `{new_name}`: the new zone would have the \
                 same name on VPC `{}` while the old one still exists, and Route53 lets a VPC see only one private \
                 zone of a name",
                change.addr, shared[0]
            ))
            .at(span)
            .hint("turn off create_before_destroy for the zone (it is then destroyed before it is created again), or give the new zone another name or VPC"),
        );
    }
}
