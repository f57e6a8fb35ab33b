//! Saved plans: `berth plan --out FILE`, then `berth apply FILE`.
//!
//! A plan file is applied exactly as it was shown, or not at all. Opening
//! one checks its format version before reading it as a plan (a plan of
//! another berth is refused by name, not as garbage) and refuses one that
//! errored; applying it checks, under the state lock, that neither the
//! configuration nor the state moved since ([`Plan::check_config`],
//! [`Plan::check_state`]).

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::{FORMAT_VERSION, Plan, Refusal};
use std::path::Path;

/// Reads a plan file: its format version first, then the plan; a plan that
/// errored is refused here, before anything else is loaded.
pub fn open(file: &Path) -> Result<Plan, Diagnostics> {
    let text = fs_err::read_to_string(file).map_err(|e| Diagnostic::error(format!("cannot read the plan: {e}")))?;
    let not_a_plan = |e: serde_json::Error| Diagnostic::error(format!("`{}` is not a berth plan file: {e}", file.display()));
    #[derive(serde::Deserialize)]
    struct Probe {
        format_version: Option<u32>,
    }
    let probe: Probe = serde_json::from_str(&text).map_err(not_a_plan)?;
    if let Some(found) = probe.format_version
        && found != FORMAT_VERSION
    {
        return Err(Diagnostic::from(Refusal::Format { file: file.display().to_string(), found }).into());
    }
    let plan: Plan = serde_json::from_str(&text).map_err(not_a_plan)?;
    if plan.errored {
        return Err(Diagnostic::from(Refusal::Errored).into());
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_format_is_refused_by_name_and_garbage_is_not_a_plan() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.berthplan");
        std::fs::write(&other, r#"{"format_version": 99, "changes": "whatever"}"#).unwrap();
        let e = open(&other).unwrap_err().to_string();
        assert!(e.contains("a plan of format 99") && e.contains("reads format 1"), "{e}");
        let garbage = dir.path().join("garbage.berthplan");
        std::fs::write(&garbage, "[1, 2]").unwrap();
        assert!(open(&garbage).unwrap_err().to_string().contains("is not a berth plan file"));
        let missing = dir.path().join("missing.berthplan");
        assert!(open(&missing).unwrap_err().to_string().contains("cannot read the plan"));
    }
}
