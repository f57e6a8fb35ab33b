//! `aws_key_pair`: an SSH public key imported under a name.
//!
//! A key name is unique, so ImportKeyPair cannot make a second key: the
//! SDK's resend of an import that landed is refused with
//! `InvalidKeyPair.Duplicate` by the attempt's own key, which is then found
//! by its token tag and used. AWS keeps the fingerprint, not the key as
//! given, so `public_key` is carried over from the prior state.

use super::client::{
    self, Ec2, Failure, Kind, Resource, apply_one_by_one, as_it_is, at_most_one, attempt_filters, filter, read_back,
    refresh_batch, req_str, sync_tags, tag_spec, tags_arg, tags_value,
};
use super::error::{about, code_of, sdk_error};
use super::retry::poll_for;
use crate::providers::{
    ApplyOp, ApplySink, Attribute, ChangeKind, OpContext, ProviderError, ProviderResult, Refreshed, Schema,
};
use crate::value::{Value, obj};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, KeyPairInfo, ResourceType};
use std::sync::LazyLock;

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("key_name").required().force_new(),
        Attribute::arg("public_key").required().force_new(),
        Attribute::arg("tags"),
    ])
    .with_exported(&["id", "fingerprint", "key_pair_id"])
});

pub(crate) struct AwsKeyPair;

#[async_trait]
impl Resource for AwsKeyPair {
    fn name(&self) -> &'static str {
        "aws_key_pair"
    }

    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn kinds(&self) -> &'static [(&'static str, Kind)] {
        &[("key_name", Kind::Str), ("public_key", Kind::Str), ("tags", Kind::StrMap)]
    }

    async fn refresh(&self, ec2: &Ec2, items: &[(OpContext, Value)]) -> Vec<Refreshed> {
        refresh_batch(
            items,
            |names| describe_key_pairs(ec2, vec![filter("key-name", names)]),
            |k: &KeyPairInfo| k.key_name().map(str::to_string),
            |k, prior| async move { Ok(key_pair_state(&k, &prior)) },
        )
        .await
    }

    async fn apply(&self, ec2: &Ec2, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_one_by_one(ops, sink, |op| apply(ec2, op)).await
    }

    async fn adopt(&self, ec2: &Ec2, ctx: &OpContext, template: &Value) -> ProviderResult<Option<Value>> {
        let found = describe_key_pairs(ec2, attempt_filters(ctx)).await?;
        Ok(at_most_one("key pair", ctx, found, |k| k.key_name().unwrap_or_default().to_string())?
            .map(|k| key_pair_state(&k, template)))
    }
}

async fn describe_key_pairs(ec2: &Ec2, filters: Vec<Filter>) -> ProviderResult<Vec<KeyPairInfo>> {
    // DescribeKeyPairs does not paginate.
    let out = ec2
        .client
        .describe_key_pairs()
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| sdk_error("DescribeKeyPairs", &e))?;
    Ok(out.key_pairs().to_vec())
}

fn key_pair_state(k: &KeyPairInfo, prior: &Value) -> Value {
    // AWS keeps the fingerprint, not the key as given: carry it over.
    let public_key = prior.get("public_key").cloned().unwrap_or(Value::Null);
    let name = k.key_name().unwrap_or_default();
    obj([
        ("id", Value::str(name)),
        ("key_name", Value::str(name)),
        ("public_key", public_key),
        ("fingerprint", Value::str(k.key_fingerprint().unwrap_or_default())),
        ("key_pair_id", Value::str(k.key_pair_id().unwrap_or_default())),
        ("tags", tags_value(k.tags())),
    ])
}

async fn apply(ec2: &Ec2, op: ApplyOp) -> Result<Option<Value>, Failure> {
    match op.kind {
        ChangeKind::Create { planned } => {
            let name = req_str(&planned, "key_name")?;
            let key = req_str(&planned, "public_key")?;
            let tags = tags_arg(planned.get("tags"))?;
            let imported = ec2
                .client
                .import_key_pair()
                .key_name(name)
                .public_key_material(aws_smithy_types::Blob::new(key.as_bytes()))
                .tag_specifications(tag_spec(ResourceType::KeyPair, &op.ctx, &tags))
                .send()
                .await;
            let action = || format!("ImportKeyPair `{name}` for `{}`", op.ctx.addr);
            let (fingerprint, key_pair_id) = match imported {
                Ok(out) => (
                    out.key_fingerprint().unwrap_or_default().to_string(),
                    out.key_pair_id().unwrap_or_default().to_string(),
                ),
                // A key name is unique: when an import landed and its answer
                // was lost, the SDK's resend is refused by that very key. It
                // is this create's when it carries the attempt's token.
                Err(e) if code_of(&e) == Some("InvalidKeyPair.Duplicate") => {
                    let mine = || async {
                        let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                        Ok(found.into_iter().find(|k| client::owned_by_attempt(k.tags(), &op.ctx)).map(|k| {
                            format!(
                                "{}\n{}",
                                k.key_fingerprint().unwrap_or_default(),
                                k.key_pair_id().unwrap_or_default()
                            )
                        }))
                    };
                    match poll_for(ec2.eventual.lost_answer(), &mine).await? {
                        Some(found) => {
                            tracing::debug!(
                                name,
                                "ImportKeyPair: the name is taken by this create's own key; using it"
                            );
                            let (f, id) = found.split_once('\n').unwrap_or_default();
                            (f.to_string(), id.to_string())
                        }
                        None => return Err(about("key_name", sdk_error(&action(), &e)).into()),
                    }
                }
                Err(e) => return Err(about("public_key", sdk_error(&action(), &e)).into()),
            };
            // Read back until the key is visible, as for every other type: a
            // refresh that does not see it yet would plan it again.
            let read = || async {
                let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                Ok(found.first().map(|k| key_pair_state(k, &planned)))
            };
            match read_back(ec2, "key pair", name, read).await {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    let mut m = planned.as_map().cloned().unwrap_or_default();
                    m.insert("id".into(), Value::str(name));
                    m.insert("fingerprint".into(), Value::str(fingerprint));
                    m.insert("key_pair_id".into(), Value::str(key_pair_id));
                    Err(Failure::with(Value::Map(m), e))
                }
            }
        }
        ChangeKind::Update { prior, planned } => {
            let steps = async {
                let target = prior.get_str("key_pair_id").filter(|s| !s.is_empty()).map(str::to_string);
                let target = match target {
                    Some(t) => t,
                    None => return Err(ProviderError::attr("key_pair_id", "the state has no `key_pair_id`")),
                };
                sync_tags(ec2, &target, prior.get("tags"), planned.get("tags")).await?;
                let mut m = prior.as_map().cloned().unwrap_or_default();
                m.insert("tags".into(), planned.get("tags").cloned().unwrap_or(Value::Null));
                Ok(Some(Value::Map(m)))
            };
            match steps.await {
                Ok(v) => Ok(v),
                Err(e) => {
                    let read = async {
                        let name = req_str(&prior, "key_name")?;
                        let found = describe_key_pairs(ec2, vec![filter("key-name", [name])]).await?;
                        Ok(found.first().map(|k| key_pair_state(k, &prior)))
                    };
                    Err(Failure::with(as_it_is(read, &prior).await, e))
                }
            }
        }
        ChangeKind::Delete { prior } => {
            let name = req_str(&prior, "key_name").map_err(|e| Failure::with(prior.clone(), e))?;
            // DeleteKeyPair succeeds for a name that does not exist.
            ec2.client
                .delete_key_pair()
                .key_name(name)
                .send()
                .await
                .map(|_| None)
                .map_err(|e| Failure::with(prior.clone(), sdk_error(&format!("DeleteKeyPair `{name}`"), &e)))
        }
    }
}
