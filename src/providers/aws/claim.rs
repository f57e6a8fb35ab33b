//! Marking imported objects as berth's own.
//!
//! berth recognises what an interrupted create made by the ownership tags
//! every create writes (`berth:address`, `berth:lineage`,
//! `berth:generation`). An object brought under berth instead of created by
//! it (`berth import`, an `import` block, `berth state migrate-terraform`)
//! has none, so the first apply after the import writes them, as the update
//! the plan shows ("berth adds its ownership tags"): afterwards every object
//! berth manages carries them, whichever way it came in.
//!
//! EC2 objects take the marks as tags, with one CreateTags call before the
//! update of the object; load balancers, target groups and listeners with
//! one AddTags. The other AWS types take none here: a Route53
//! record's mark is its ownership TXT record, an attribute (`owner`) the
//! plan already diffs and the update writes; a hosted zone is known by the
//! caller reference it was created with, which cannot change; an
//! association has nothing to carry a mark.

use super::ec2::client::{ADDRESS_TAG, GENERATION_TAG, LINEAGE_TAG};
use super::ec2::error::sdk_error;
use super::ec2::Ec2;
use super::elb::Elb;
use crate::providers::{ApplyOp, ApplyOutcome, ApplySink, ChangeKind, OpContext, ProviderError, ProviderResult};
use crate::value::Value;
use aws_sdk_ec2::types::Tag;

/// What the plan says an imported object of an EC2 type gains.
pub(super) fn marks() -> String {
    format!("berth adds its ownership tags (`{ADDRESS_TAG}`, `{LINEAGE_TAG}`, `{GENERATION_TAG}`)")
}

/// The id EC2's tagging calls take for an object: a key pair is known by its
/// name in the state, but tagged by its `key-…` id.
fn tag_id(type_: &str, state: &Value) -> Option<String> {
    let attr = if type_ == "aws_key_pair" { "key_pair_id" } else { "id" };
    state.get_str(attr).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Writes the ownership tags on one object. The generation is the one its
/// create would have had: an imported object is recorded at generation 1,
/// as if created once, so a create-before-destroy replacement (generation
/// 1) is told apart from it.
async fn claim(ec2: &Ec2, ctx: &OpContext, type_: &str, state: &Value) -> ProviderResult<()> {
    let id = tag_id(type_, state)
        .ok_or_else(|| ProviderError::new(format!("`{}` has no id to write berth's ownership tags on", ctx.addr)))?;
    let tag = |k: &str, v: String| Tag::builder().key(k).value(v).build();
    ec2.client
        .create_tags()
        .resources(&id)
        .tags(tag(ADDRESS_TAG, ctx.addr.to_string()))
        .tags(tag(LINEAGE_TAG, ctx.lineage.clone()))
        .tags(tag(GENERATION_TAG, ctx.generation.saturating_sub(1).to_string()))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateTags (ownership) on `{id}`"), &e))?;
    Ok(())
}

/// Writes the ownership tags on one load balancer, target group or
/// listener: one AddTags on its ARN (its `id`), the generation as for EC2.
async fn claim_elb(elb: &Elb, ctx: &OpContext, state: &Value) -> ProviderResult<()> {
    let arn = state
        .get_str("id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::new(format!("`{}` has no ARN to write berth's ownership tags on", ctx.addr)))?;
    let tag = |k: &str, v: String| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build();
    elb.client
        .add_tags()
        .resource_arns(arn)
        .tags(tag(ADDRESS_TAG, ctx.addr.to_string()))
        .tags(tag(LINEAGE_TAG, ctx.lineage.clone()))
        .tags(tag(GENERATION_TAG, ctx.generation.saturating_sub(1).to_string()))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("AddTags (ownership) on `{arn}`"), &e))?;
    Ok(())
}

/// Which service's objects a claim writes tags on.
pub(super) enum Owner<'a> {
    Ec2(&'a Ec2),
    Elb(&'a Elb),
}

/// Writes the marks of every update in `ops` that claims its object, then
/// returns the operations to hand to the member, each with its index in
/// `ops`. A claim that fails fails its operation (the object is reported as
/// it was, still imported); the others go on.
pub(super) async fn claim_updates(
    owner: Owner<'_>,
    type_: &str,
    ops: Vec<ApplyOp>,
    sink: &ApplySink,
) -> Vec<(usize, ApplyOp)> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let claimed = match (op.ctx.claim, &op.kind, &owner) {
            (true, ChangeKind::Update { prior, .. }, Owner::Ec2(ec2)) => claim(ec2, &op.ctx, type_, prior).await,
            (true, ChangeKind::Update { prior, .. }, Owner::Elb(elb)) => claim_elb(elb, &op.ctx, prior).await,
            _ => Ok(()),
        };
        if let (Err(e), ChangeKind::Update { prior, .. }) = (claimed, &op.kind) {
            let _ = sink.send((i, ApplyOutcome::failed(Some(prior.clone()), e)));
            continue;
        }
        out.push((i, op));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn a_key_pair_is_tagged_by_its_key_pair_id() {
        let kp = obj([("id", Value::str("deploy")), ("key_pair_id", Value::str("key-0abc"))]);
        assert_eq!(tag_id("aws_key_pair", &kp).as_deref(), Some("key-0abc"));
        assert_eq!(tag_id("aws_vpc", &obj([("id", Value::str("vpc-1"))])).as_deref(), Some("vpc-1"));
        assert_eq!(tag_id("aws_vpc", &obj([("id", Value::str(""))])), None);
    }
}
