//! The engine: the only module that sees configuration, providers and state
//! together.
//!
//! Everything else is either upstream of it (the configuration and its
//! [graph](crate::graph)), a value it produces ([plans](crate::plan),
//! [inventories](crate::inventory)), or something it drives through a narrow
//! interface ([providers](crate::providers), [state backends](crate::state)).
//! The pipeline, by module:
//!
//! - [`scope`]: the values expressions see during a walk;
//! - [`providers`]: `provider` blocks → configured providers;
//! - [`refresh`]: read the state's objects, adopt what an interrupted run left;
//! - [`import`]: objects berth did not create, and the marks they take;
//! - [`mod@plan`] (with [`checks`]): what each resource's provider would change;
//! - [`order`]: the step graph of a plan;
//! - [`walk`]: a generic bounded, cancellable walk of a graph;
//! - [`mod@apply`]: the walk's visitor, which journals and records the results;
//! - [`inventory`]: `inventory` blocks → the inventory model;
//! - [`validate`] and [`saved_plan`]: checks without a walk.
//!
//! The entry points ([`validate()`], [`plan()`], [`apply()`],
//! [`apply_saved`]) take plain inputs — a loaded configuration, a backend
//! whose lock the caller holds, options, a [`Progress`] hook, a
//! [`CancellationToken`] — and return values. They never print or read the
//! environment, so they can run in a loop inside one process.

pub mod apply;
pub mod checks;
pub mod import;
pub mod inventory;
pub mod modules;
pub mod order;
pub mod plan;
pub mod progress;
pub mod providers;
pub mod refresh;
pub mod saved_plan;
pub mod scope;
mod validate;
pub mod walk;

pub use apply::{ApplyOptions, ApplyReport, Failure};
pub use plan::PlanOptions;
pub use progress::{Event, Progress, Quiet, StepRef, Subject, Verb};
pub use validate::validate;

use crate::config::Config;
use crate::config::vars::{self, VarSources};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::Graph;
use crate::plan::Plan;
use crate::providers::Registry;
use crate::state::{Backend, State};
use tokio_util::sync::CancellationToken;

/// A plan, with what applying it needs.
pub struct Planned {
    pub plan: Plan,
    pub providers: Registry,
    /// The state the plan was made from: the stored one, refreshed, with
    /// the objects of creates an interrupted run left unrecorded adopted.
    /// The apply starts from it, so it evaluates the configuration against
    /// the values the plan saw, and records the adoptions and the objects
    /// found gone.
    pub state: State,
    pub state_exists: bool,
    /// `state` is not what is stored (an interrupted run left a journal, or
    /// the refresh found something different): an apply writes it even when
    /// the plan has no changes.
    pub settle: bool,
}

/// Plans `config` against the state in `backend` (whose lock the caller
/// holds): resolves the variables, configures the providers, refreshes (or,
/// with `opts.refresh` off, only adopts what an interrupted run created),
/// and asks every provider what would change.
pub async fn plan(
    config: &Config,
    vars: &VarSources,
    backend: &dyn Backend,
    opts: &PlanOptions,
    progress: &dyn Progress,
) -> Result<Planned, Diagnostics> {
    let graph = graph_of_expanded(config, vars, &opts.workspace)?;
    let (graph, vars, expanded) = graph;
    let config = &*expanded;
    let stored = backend.load().await.map_err(Diagnostics::from)?;
    let state_exists = stored.is_some();
    let state = stored.unwrap_or_default();
    let needed = providers::needed_providers(config, &state);
    let providers = providers::setup(config, &vars, &opts.workspace, &needed, &opts.providers).await?;
    let refreshed = if opts.refresh && !state.resources.is_empty() {
        progress.event(Event::Refreshing { objects: state.resources.len() });
        refresh::refresh(&state, &providers).await?
    } else {
        // Objects an interrupted run created are looked for even without a
        // refresh (and before the first object was recorded): creating
        // them again would make duplicates.
        let mut fresh = state.clone();
        let mut diags = Diagnostics::new();
        let adopted = refresh::adopt_pending(&mut fresh, &providers, &mut diags).await;
        if diags.has_errors() {
            return Err(diags);
        }
        refresh::Refreshed { state: fresh, gone: Default::default(), adopted }
    };
    let settle = refreshed.state != state || backend.found_journal();
    let planner = plan::Planner { config, graph: &graph, providers: &providers, vars, opts: opts.clone() };
    let prior_serial = state_exists.then_some(state.serial);
    let plan = planner.plan(&refreshed, prior_serial).await?;
    Ok(Planned { plan, providers, state: refreshed.state, state_exists, settle })
}

/// The variables, `config` with its keyed module calls expanded, and the
/// graph of that. The graph is built once: of the expanded configuration
/// when there is one (a module called N times has N copies of every node).
/// Its errors are reported from the configuration as written, so a mistake
/// inside a module called N times is reported once, not N times.
fn graph_of_expanded<'c>(
    config: &'c Config,
    vars: &VarSources,
    workspace: &str,
) -> Result<(Graph, std::collections::BTreeMap<String, crate::value::Value>, std::borrow::Cow<'c, Config>), Diagnostics> {
    let unexpanded_errors = |d: Diagnostics| Graph::build(config).err().unwrap_or(d);
    if !modules::keyed(config) {
        let graph = Graph::build(config)?;
        let vars = vars::resolve(config.root(), vars)?;
        return Ok((graph, vars, std::borrow::Cow::Borrowed(config)));
    }
    let vars = vars::resolve(config.root(), vars).map_err(unexpanded_errors)?;
    let expanded = modules::expand(config, &vars, workspace).map_err(unexpanded_errors)?;
    let graph = Graph::build(&expanded).map_err(unexpanded_errors)?;
    Ok((graph, vars, expanded))
}

/// Applies a plan made by [`plan()`] from the same `config` and backend.
/// When `cancel` fires, the operations in flight finish and are recorded,
/// and nothing new starts.
pub async fn apply(
    config: &Config,
    planned: Planned,
    backend: &dyn Backend,
    opts: &ApplyOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(ApplyReport, State), Diagnostics> {
    let Planned { plan, providers, state, state_exists, .. } = planned;
    let expanded = modules::expand(config, &plan.variables, &plan.workspace)?;
    let config = &*expanded;
    let applied =
        apply::apply(&plan, config, state, state_exists, &providers, backend, opts, progress, cancel).await?;
    Ok(applied)
}

/// Applies a saved plan (see [`saved_plan::open`]), refusing it when the
/// configuration or the state in `backend` (whose lock the caller holds)
/// moved since it was made.
pub async fn apply_saved(
    config: &Config,
    plan: Plan,
    backend: &dyn Backend,
    opts: &ApplyOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(ApplyReport, State), Diagnostics> {
    plan.check_config(&config.digest).map_err(Diagnostic::from)?;
    let stored = backend.load().await.map_err(Diagnostics::from)?;
    plan.check_state(stored.as_ref().map(|s| (s.lineage.as_str(), s.serial))).map_err(Diagnostic::from)?;
    let state_exists = stored.is_some();
    let mut state = stored.unwrap_or_default();
    let needed = providers::needed_providers(config, &state);
    let providers = providers::setup(config, &plan.variables, &plan.workspace, &needed, &opts.providers).await?;
    if !state.pending.is_empty() {
        // The plan adopted what an interrupted run created: so must the
        // apply, or it would neither see nor record those objects.
        let mut diags = Diagnostics::new();
        refresh::adopt_pending(&mut state, &providers, &mut diags).await;
        if diags.has_errors() {
            return Err(diags);
        }
    }
    apply(config, Planned { plan, providers, state, state_exists, settle: false }, backend, opts, progress, cancel).await
}
