//! The append-only journal of an apply: one JSON entry per line.
//!
//! Each result is appended and fsynced the moment it lands (grouped: all the
//! results of one step of the walk share one fsync), so a `kill -9` at any
//! instant loses nothing the next run would not know about. The first entry
//! names the state (lineage, serial) the journal applies to; a journal whose
//! `Begin` does not match the state it sits beside is stale and ignored. A
//! torn last line (a crash mid-write) is ignored too.

use super::{OutputState, PendingCreate, ResourceState};
use crate::addr::InstanceAddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum JournalEntry {
    Begin { lineage: String, serial: u64 },
    Put(Box<ResourceState>),
    Remove { addr: InstanceAddr, deposed: Option<String> },
    Pending(PendingCreate),
    Outputs { outputs: BTreeMap<String, OutputState> },
}
