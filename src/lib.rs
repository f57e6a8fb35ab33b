//! berth: a provisioner for the layer under Kamal.
//!
//! The pipeline runs one way: configuration ([`config`]) → dependency graph
//! ([`graph`]) → plan ([`plan`]) → apply ([`apply`]) → state ([`state`]) →
//! inventory. Providers ([`providers`]) talk to the outside world; [`diag`]
//! carries errors with source spans to the edge.

pub mod addr;
pub mod aws_sdk;
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
