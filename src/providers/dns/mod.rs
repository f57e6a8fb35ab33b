//! The `dns` provider: record sets on any server that accepts RFC 2136
//! dynamic updates (BIND, Knot, PowerDNS, Windows DNS), signed with TSIG.
//!
//! It is how berth keeps private names such as `micro-search.internal`
//! pointing at the current host. Types and arguments follow the hashicorp/dns
//! Terraform provider (`dns_a_record_set`, `dns_aaaa_record_set`,
//! `dns_cname_record`, `dns_txt_record_set`; `provider "dns" { update {...} }`)
//! so configurations port over.
//!
//! Refresh asks the server for each RRset (one query each, a bounded number
//! in flight). Apply sends one UPDATE per resource that deletes the RRset and
//! adds the new records, which the server applies atomically, then reads the
//! RRset back: a server silently ignores an add that clashes with a CNAME
//! (RFC 2136 §3.4.2.2), and berth must not record what is not there.

pub mod client;
pub mod config;
pub mod records;

use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplyOutcome, ApplySink, ChangeKind, OpContext, Provider, ProviderError, ProviderResult, Refreshed,
    apply_each,
};
use crate::schema::{Planned, Schema, plan_from_schema};
use crate::value::Value;
use async_trait::async_trait;
use client::{Answer, Client, DnsError};
use config::UpdateConfig;
use records::{Kind, Owner};
use std::fmt;

/// How many queries or updates one batch keeps in flight. BIND serializes
/// updates per zone anyway; more would only queue on the server.
const IN_FLIGHT: usize = 16;

/// The configured `dns` provider.
pub struct DnsProvider {
    client: Client,
}

impl fmt::Debug for DnsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsProvider").field("client", &self.client).finish()
    }
}

impl From<DnsError> for ProviderError {
    fn from(e: DnsError) -> Self {
        ProviderError::new(e.to_string())
    }
}

impl DnsProvider {
    /// Builds the provider from its evaluated block (`{"update": [{...}]}`),
    /// with the `DNS_UPDATE_*` environment variables as fallbacks.
    pub fn configure(block: &Value) -> Result<DnsProvider, ProviderError> {
        Self::from_config(UpdateConfig::from_provider_block(block).map_err(config_error)?)
    }

    pub fn from_config(config: UpdateConfig) -> Result<DnsProvider, ProviderError> {
        let client = Client::new(config).map_err(|e| ProviderError::new(format!("provider `dns`: {e}")))?;
        Ok(DnsProvider { client })
    }

    pub fn config(&self) -> &UpdateConfig {
        self.client.config()
    }

    /// What the server holds for one resource, merged into its prior value.
    async fn refresh_one(&self, kind: Kind, prior: Value) -> Refreshed {
        let owner = records::owner(&prior)?
            .ok_or_else(|| ProviderError::new("the state of this record has no known `zone` and `name`"))?;
        let Some((values, ttl)) = self.read_rrset(kind, &owner).await? else {
            return Ok(None);
        };
        let mut m = prior.as_map().cloned().unwrap_or_default();
        m.insert(kind.values_attr().into(), values);
        m.insert("ttl".into(), Value::Number(ttl as f64));
        m.insert("id".into(), Value::String(owner.fqdn));
        Ok(Some(Value::Map(m)))
    }

    async fn read_rrset(&self, kind: Kind, owner: &Owner) -> ProviderResult<Option<(Value, u32)>> {
        let name = owner.owner_name()?;
        match self.client.query(&name, kind.record_type()).await? {
            Answer::NoSuchName => Ok(None),
            Answer::Records(answers) => Ok(records::read_back(kind, &owner.fqdn, &answers)),
        }
    }

    async fn apply_one(&self, kind: Kind, op: ApplyOp) -> ApplyOutcome {
        match op.kind {
            ChangeKind::Create { planned } => self.write(kind, None, planned).await,
            ChangeKind::Update { prior, planned } => self.write(kind, Some(prior), planned).await,
            ChangeKind::Delete { prior } => {
                let owner = match records::owner(&prior) {
                    Ok(Some(o)) => o,
                    Ok(None) => {
                        return ApplyOutcome::failed(
                            Some(prior),
                            ProviderError::new("the state of this record has no known `zone` and `name`"),
                        );
                    }
                    Err(e) => return ApplyOutcome::failed(Some(prior), e),
                };
                match self.delete(kind, &owner).await {
                    Ok(()) => ApplyOutcome::ok(None),
                    Err(e) => ApplyOutcome::failed(Some(prior), e),
                }
            }
        }
    }

    async fn delete(&self, kind: Kind, owner: &Owner) -> ProviderResult<()> {
        let (zone, name) = (owner.zone_name()?, owner.owner_name()?);
        self.client.replace_rrset(&zone, &name, kind.record_type(), 0, Vec::new()).await?;
        Ok(())
    }

    /// Creates or replaces the RRset of `planned`. On failure the outcome
    /// carries what exists: nothing new for a create, the prior for an update
    /// (the server applied none of the UPDATE).
    async fn write(&self, kind: Kind, prior: Option<Value>, planned: Value) -> ApplyOutcome {
        let spec = match records::spec(kind, &planned) {
            Ok(s) => s,
            Err(e) => return ApplyOutcome::failed(prior, e),
        };
        let names = spec.owner.zone_name().and_then(|z| Ok((z, spec.owner.owner_name()?)));
        let (zone, name) = match names {
            Ok(n) => n,
            Err(e) => return ApplyOutcome::failed(prior, e),
        };
        if let Err(e) = self.client.replace_rrset(&zone, &name, kind.record_type(), spec.ttl, spec.rdata.clone()).await
        {
            return ApplyOutcome::failed(prior, e.into());
        }

        let mut state = planned.as_map().cloned().unwrap_or_default();
        state.insert(kind.values_attr().into(), spec.values.clone());
        state.insert("ttl".into(), Value::Number(spec.ttl as f64));
        state.insert("id".into(), Value::String(spec.owner.fqdn.clone()));

        match self.read_rrset(kind, &spec.owner).await {
            Ok(Some((values, ttl))) if records::same_values(kind, &values, &spec.values) && ttl == spec.ttl => {
                ApplyOutcome::ok(Some(Value::Map(state)))
            }
            Ok(found) => {
                let shown = match &found {
                    Some((v, ttl)) => format!("{v} with ttl {ttl}"),
                    None => "nothing".into(),
                };
                let err = ProviderError::attr(
                    kind.values_attr(),
                    format!(
                        "DNS server {} accepted the update for `{}` but now serves {shown}; \
                         a name that has a CNAME can hold no other records, and a CNAME cannot join other records",
                        self.client.config().server_display(),
                        spec.owner.fqdn
                    ),
                );
                let now = found.map(|(values, ttl)| {
                    state.insert(kind.values_attr().into(), values);
                    state.insert("ttl".into(), Value::Number(ttl as f64));
                    Value::Map(state)
                });
                ApplyOutcome::failed(now, err)
            }
            Err(e) => {
                // The server took the update; only the check failed to read it.
                tracing::warn!(fqdn = %spec.owner.fqdn, error = %e.message, "cannot read back a DNS record after updating it");
                ApplyOutcome::ok(Some(Value::Map(state)))
            }
        }
    }
}

fn config_error(e: config::ConfigError) -> ProviderError {
    ProviderError { attribute: e.attribute(), message: e.to_string(), kind: Default::default() }
}

fn kind_of(type_: &str) -> ProviderResult<Kind> {
    Kind::from_type(type_).ok_or_else(|| {
        ProviderError::new(format!("the dns provider has no resource type `{type_}` (it has: {})", records::TYPE_NAMES.join(", ")))
    })
}

#[async_trait]
impl Provider for DnsProvider {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        match mode {
            Mode::Managed => Kind::from_type(type_).map(Kind::schema),
            Mode::Data => None,
        }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => records::TYPE_NAMES.to_vec(),
            Mode::Data => Vec::new(),
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        match (mode, Kind::from_type(type_)) {
            (Mode::Managed, Some(kind)) => records::validate(kind, config),
            _ => vec![ProviderError::new(format!("the dns provider has no {} type `{type_}`", match mode {
                Mode::Managed => "resource",
                Mode::Data => "data source",
            }))],
        }
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        use futures::StreamExt;
        let kind = match kind_of(type_) {
            Ok(k) => k,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        futures::stream::iter(items.into_iter().map(|(_, prior)| self.refresh_one(kind, prior)))
            .buffered(IN_FLIGHT)
            .collect()
            .await
    }

    async fn plan(&self, _ctx: &OpContext, type_: &str, prior: Option<&Value>, config: &Value)
        -> ProviderResult<Planned> {
        let kind = kind_of(type_)?;
        let mut planned = plan_from_schema(kind.schema(), prior, config);
        if let Value::Map(m) = &mut planned.after {
            records::normalize_planned(kind, m)?;
        }
        // `name = ""` and no `name` both mean the apex, and DNS names ignore
        // case: only a different owner is a replacement.
        if let Some(prior) = prior
            && let (Ok(Some(before)), Ok(Some(after))) = (records::owner(prior), records::owner(&planned.after))
            && before.fqdn.eq_ignore_ascii_case(&after.fqdn)
        {
            planned.requires_replace.retain(|a| a != "zone" && a != "name");
        }
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        let kind = match kind_of(type_) {
            Ok(k) => k,
            Err(e) => {
                for (i, op) in ops.into_iter().enumerate() {
                    let state = match op.kind {
                        ChangeKind::Create { .. } => None,
                        ChangeKind::Update { prior, .. } | ChangeKind::Delete { prior } => Some(prior),
                    };
                    let _ = sink.send((i, ApplyOutcome::failed(state, e.clone())));
                }
                return;
            }
        };
        apply_each(ops, sink, IN_FLIGHT, |op| self.apply_one(kind, op)).await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the dns provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn provider() -> DnsProvider {
        let block = obj([("update", Value::List(vec![obj([("server", "127.0.0.1".into())])]))]);
        DnsProvider::from_config(UpdateConfig::from_provider_block_with(&block, |_| None).unwrap()).unwrap()
    }

    fn ctx() -> OpContext {
        OpContext::new("dns_a_record_set.web".parse().unwrap(), "l", 0)
    }

    #[tokio::test]
    async fn plan_fills_the_id_and_default_ttl_and_replaces_on_a_new_name() {
        let p = provider();
        let config = obj([
            ("zone", "internal.".into()),
            ("name", "web".into()),
            ("addresses", Value::List(vec!["10.0.0.9".into(), "10.0.0.1".into()])),
        ]);
        let planned = p.plan(&ctx(), "dns_a_record_set", None, &config).await.unwrap();
        assert_eq!(planned.after.get_str("id"), Some("web.internal."));
        assert_eq!(planned.after.get("ttl"), Some(&Value::Number(3600.0)));
        assert_eq!(planned.after.get("addresses"), Some(&Value::List(vec!["10.0.0.1".into(), "10.0.0.9".into()])));

        let prior = planned.after.clone();
        let renamed = obj([
            ("zone", "internal.".into()),
            ("name", "web2".into()),
            ("addresses", Value::List(vec!["10.0.0.1".into()])),
        ]);
        let again = p.plan(&ctx(), "dns_a_record_set", Some(&prior), &renamed).await.unwrap();
        assert_eq!(again.requires_replace, vec!["name".to_string()]);
        assert_eq!(again.after.get_str("id"), Some("web2.internal."));

        let apex = obj([("zone", "internal.".into()), ("addresses", Value::List(vec!["10.0.0.1".into()]))]);
        let apex_prior = p.plan(&ctx(), "dns_a_record_set", None, &apex).await.unwrap().after;
        let mut empty_name = apex.as_map().cloned().unwrap();
        empty_name.insert("name".into(), "".into());
        let again = p.plan(&ctx(), "dns_a_record_set", Some(&apex_prior), &Value::Map(empty_name)).await.unwrap();
        assert!(again.requires_replace.is_empty(), "{:?}", again.requires_replace);

        let same = p.plan(&ctx(), "dns_a_record_set", Some(&prior), &config).await.unwrap();
        assert!(same.requires_replace.is_empty());
        assert!(same.after.same_as(&prior));
    }

    #[test]
    fn unknown_types_are_named() {
        let p = provider();
        let errs = p.validate(Mode::Managed, "dns_mx_record_set", &Value::Null);
        assert!(errs[0].message.contains("`dns_mx_record_set`"));
        assert!(p.schema(Mode::Managed, "dns_txt_record_set").is_some());
    }
}
