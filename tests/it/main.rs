//! berth's integration tests, one binary: each suite is a module, and the
//! helpers (real moto, BIND and ansible-inventory on loopback, the strict
//! AWS layer, the recording provider) live once in `tests/support/`.
//!
//! One binary links once instead of once per suite. Run a suite by its
//! module path (`cargo test --test it engine::`), one test by its full name
//! (`cargo test --test it crash_kill9::kill9_full -- --ignored`). The moto
//! server of the benchmarks' strict layer stays a target of its own
//! (`strict_aws_server`, no test harness).

#[path = "../support/mod.rs"]
mod support;

mod architecture;
mod aws_configs;
mod aws_ec2;
mod aws_ec2_faults;
mod aws_example;
mod aws_instance_args;
mod aws_lb;
mod aws_lifecycle;
mod aws_network_types;
mod aws_provider_block;
mod aws_rolling;
mod aws_route53;
mod aws_route53_plan;
mod aws_route53_policies;
mod aws_route53_strict;
mod aws_scale;
mod bad_input;
mod ci_examples;
mod cli_snapshots;
mod crash_kill9;
mod drain_roll;
mod dns_rfc2136;
mod engine;
mod engine_api;
mod errors;
mod faults;
mod fmt;
mod hooks;
mod import;
mod inventory_e2e;
mod inventory_formats;
mod kamal_example;
mod lang_differential;
mod lang_files;
mod linear_work;
mod module_instances;
mod provider_contract;
mod state_local;
mod state_s3;
mod strict_layer;
mod terraform_migration;
mod watch;
mod watch_sinks;
mod workspaces;
