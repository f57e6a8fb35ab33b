//! The engine: the only module that sees configuration, providers and state
//! together.

pub mod apply;
pub mod checks;
pub mod inventory;
pub mod plan;
pub mod scope;
mod validate;

pub use validate::validate;
