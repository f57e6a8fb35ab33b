//! What a run reports about itself, for tests, benchmarks and logs: API call
//! counts ([`api_stats`]), the engine's evaluation work ([`work`]) and the
//! crash-point test hook ([`crashpoint`]).
//!
//! A leaf: the providers and the state backends report into it, and it
//! imports nothing of the crate, so both can use it without seeing each
//! other (the state backends once imported the providers for this alone).

pub mod api_stats;
pub mod crashpoint;
pub mod work;
