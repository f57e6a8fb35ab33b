//! Shared test harness: real tools started on loopback.
#![allow(dead_code)]

pub mod aws;
pub mod bind;
pub mod contract;
pub mod cli;
pub mod faultproxy;
pub mod http;
pub mod moto;
pub mod recording;
pub mod stats;
pub mod strict;
pub mod venv;
pub mod xml;
pub mod yaml;
