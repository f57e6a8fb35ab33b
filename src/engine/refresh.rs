//! Refresh: read every object of the state through its provider, and adopt
//! the objects of creates an interrupted run started but never recorded.
//!
//! Refresh hands each provider one batch per resource type (all types at
//! once), so reading 1000 hosts can be one call. Adoption runs even when a
//! refresh is turned off: creating those objects again would make duplicates.

use crate::addr::{InstanceAddr, Mode};
use crate::diag::{Diagnostic, Diagnostics};
use crate::providers::{OpContext, Registry};
use crate::state::{ObjectKey, ResourceState, State};
use crate::value::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What refresh did to the state: the refreshed state, the objects found
/// gone (for "deleted outside berth" reasons), and the objects adopted.
pub struct Refreshed {
    pub state: State,
    pub gone: HashMap<InstanceAddr, Value>,
    pub adopted: HashSet<InstanceAddr>,
}

/// Reads every object of the state through its provider, in batches of one
/// type, all types concurrently; adopts objects whose create was started but
/// never recorded.
pub async fn refresh(state: &State, providers: &Registry) -> Result<Refreshed, Diagnostics> {
    let mut state = state.clone();
    // By provider and type: each object's context, value and key.
    type Batch = Vec<(OpContext, Value, ObjectKey)>;
    let mut groups: BTreeMap<(String, String), Batch> = BTreeMap::new();
    for r in state.resources.values() {
        if r.addr.resource.mode == Mode::Data {
            continue;
        }
        let ctx = OpContext::new(r.addr.clone(), state.lineage.clone(), r.generation);
        groups.entry((r.provider.clone(), r.addr.resource.type_.clone())).or_default().push((ctx, r.value(), r.key()));
    }
    let mut futs = Vec::new();
    for ((pkey, type_), items) in groups {
        let Some(p) = providers.get(&pkey).cloned() else {
            return Err(Diagnostic::error(format!("provider `{pkey}` is not configured")).into());
        };
        futs.push(async move {
            let keys: Vec<ObjectKey> = items.iter().map(|(_, _, k)| k.clone()).collect();
            let batch: Vec<(OpContext, Value)> = items.into_iter().map(|(c, v, _)| (c, v)).collect();
            let results = p.refresh(&type_, batch).await;
            (type_, keys, results)
        });
    }
    let mut diags = Diagnostics::new();
    let mut gone = HashMap::new();
    for (type_, keys, results) in futures::future::join_all(futs).await {
        if results.len() != keys.len() {
            diags.push(Diagnostic::error(format!("provider returned {} results for {} `{type_}` objects", results.len(), keys.len())));
            continue;
        }
        for (key, res) in keys.into_iter().zip(results) {
            match res {
                Ok(Some(v)) => {
                    if let Some(r) = state.resources.get_mut(&key) {
                        let (bare, _) = v.into_unmarked();
                        r.attributes = bare;
                    }
                }
                Ok(None) => {
                    if let Some(r) = state.resources.remove(&key)
                        && key.1.is_none()
                    {
                        gone.insert(key.0, r.value());
                    }
                }
                Err(e) => diags.push(Diagnostic::error(format!("refreshing `{}`: {}", key.0, e.message))),
            }
        }
    }
    let adopted = adopt_pending(&mut state, providers, &mut diags).await;
    if diags.has_errors() { Err(diags) } else { Ok(Refreshed { state, gone, adopted }) }
}

/// Looks for the objects of creates that were started and never recorded
/// (`state.pending`), puts those found into `state` and returns their
/// addresses. Every pending entry leaves `state`: a create not found is
/// planned again.
pub async fn adopt_pending(state: &mut State, providers: &Registry, diags: &mut Diagnostics) -> HashSet<InstanceAddr> {
    let mut adopted = HashSet::new();
    // The Put that records a create drops its pending entry, so every entry
    // left names a create that may have happened unrecorded. An object still
    // recorded at the address is the one a create-before-destroy replacement
    // was replacing: the provider tells the two apart by the generation.
    let lineage = state.lineage.clone();
    let lookups = std::mem::take(&mut state.pending).into_values().filter_map(|p| {
        let provider = providers.get(&p.provider)?.clone();
        let ctx = OpContext::new(p.addr.clone(), lineage.clone(), p.generation).with_token(p.token.clone());
        Some(async move {
            let found = provider.adopt(&ctx, &p.addr.resource.type_, &Value::Null).await;
            (p, found)
        })
    });
    for (p, found) in futures::future::join_all(lookups).await {
        match found {
            Ok(Some(v)) => {
                let (bare, _) = v.into_unmarked();
                adopted.insert(p.addr.clone());
                // The replaced object becomes deposed, as the interrupted
                // apply would have made it, and this plan destroys it.
                let old = state.resources.remove(&(p.addr.clone(), None));
                let (dependencies, create_before_destroy) =
                    old.as_ref().map(|o| (o.dependencies.clone(), o.create_before_destroy)).unwrap_or_default();
                if let Some(mut old) = old {
                    old.deposed = Some(format!("g{}", old.generation));
                    state.put(old);
                }
                state.put(ResourceState {
                    addr: p.addr.clone(),
                    deposed: None,
                    provider: p.provider.clone(),
                    attributes: bare,
                    sensitive: Vec::new(),
                    dependencies,
                    tainted: false,
                    create_before_destroy,
                    // What the interrupted create would have recorded: the
                    // next create of the address gets a fresh token.
                    generation: p.generation + 1,
                    imported: false,
                    drain: None,
                });
            }
            Ok(None) => {}
            Err(e) => diags.push(Diagnostic::error(format!("looking for `{}` left by an interrupted run: {}", p.addr, e.message))),
        }
    }
    adopted
}
