//! berth: a provisioner for the layer under Kamal.
//!
//! Data flows one way: configuration → dependency graph → engine {refresh →
//! plan → apply} → state → inventory. Imports follow it: `main → commands →
//! engine → {config, graph, plan, state, providers, inventory} → leaves`,
//! and `tests/it/architecture.rs` holds them to it. The modules, in that order:
//!
//! - [`cli`]: the command line's clap types: data, no logic.
//! - [`interrupt`]: SIGINT/SIGTERM → a soft cancellation token, or a hard
//!   stop that frees the state locks; nothing else listens for signals.
//! - [`commands`]: one small adapter per subcommand: settings → engine → a view.
//! - [`watch`]: `berth watch`'s reconcile loop, a library user of the engine
//!   like the commands: refresh + plan, classify drift, heal within guards.
//! - [`ci`]: what changes on a CI runner: GitHub annotations and the step summary.
//! - [`engine`]: the only module that sees configuration, providers and
//!   state together: evaluation scope, provider setup, refresh, plan, step
//!   order, the generic walk, apply, inventory evaluation, validation.
//! - [`config`]: `*.hcl` files with spans, modules, variables, functions, `fmt`.
//! - [`graph`]: the dependency graph from references, and cycle reports.
//! - [`plan`]: the plan value: serializable, with its own apply rules, and rendering.
//! - [`state`]: the state model, its journal, locks, and backends (local, S3).
//! - [`providers`]: the provider interface, its registry of families, and the
//!   families (`aws`, `dns`, the built-in `berth`).
//! - [`inventory`]: pure renderers of an inventory model (Kamal, Ansible, JSON, hosts).
//! - Leaves, which import nothing of the crate but other leaves: [`addr`]
//!   (typed addresses), [`value`] (values with unknowns and sensitive
//!   marks), [`diag`] (diagnostics with source spans), [`schema`] (resource
//!   schemas), [`telemetry`] (API call counts, the crash-point hook),
//!   [`aws_sdk`] (the one AWS SDK loader and retry policy).

pub mod addr;
pub mod aws_sdk;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diag;
pub mod engine;
pub mod graph;
pub mod interrupt;
pub mod inventory;
pub mod plan;
pub mod providers;
pub mod schema;
pub mod state;
pub mod telemetry;
pub mod value;
pub mod watch;
