//! Shared test harness: real tools started on loopback.
#![allow(dead_code)]

pub mod moto;
pub mod venv;
