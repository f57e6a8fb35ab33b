//! `required_version` constraints (`">= 1.5, < 2.0"`, `"~> 1.9"`), as
//! Terraform writes them, checked when the configuration is loaded.
//!
//! In a `terraform {}` block the constraint is about the language: berth
//! speaks Terraform 1.11's, so it is met when some 1.11 release meets it
//! (the language does not change between patch releases). In a `berth {}`
//! block it is about berth itself, and is checked against berth's version.

/// The Terraform release line whose language berth implements.
pub const TERRAFORM_LANGUAGE: (u64, u64) = (1, 11);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `~>`: the last given part may grow.
    Pessimistic,
}

#[derive(Clone, Debug, PartialEq)]
struct Constraint {
    op: Op,
    /// The version as written: one to three parts.
    parts: Vec<u64>,
}

/// Parses `">= 1.2.0, < 2"`; the error says what is wrong.
fn parse(text: &str) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for piece in text.split(',') {
        let piece = piece.trim();
        let ops = [("~>", Op::Pessimistic), (">=", Op::Ge), ("<=", Op::Le), ("!=", Op::Ne), (">", Op::Gt), ("<", Op::Lt), ("=", Op::Eq)];
        let (op, rest) = ops
            .iter()
            .find_map(|(s, op)| piece.strip_prefix(s).map(|r| (*op, r)))
            .unwrap_or((Op::Eq, piece));
        let rest = rest.trim().trim_start_matches('v');
        // A pre-release or build suffix names no other language.
        let numeric = rest.split(['-', '+']).next().unwrap_or("");
        let parts: Result<Vec<u64>, _> = numeric.split('.').map(str::parse::<u64>).collect();
        match parts {
            Ok(p) if (1..=3).contains(&p.len()) => out.push(Constraint { op, parts: p }),
            _ => return Err(format!("`{piece}` is not a version constraint such as `>= 1.5` or `~> 1.9.0`")),
        }
    }
    Ok(out)
}

fn full(parts: &[u64]) -> [u64; 3] {
    [parts.first().copied().unwrap_or(0), parts.get(1).copied().unwrap_or(0), parts.get(2).copied().unwrap_or(0)]
}

impl Constraint {
    fn allows(&self, v: [u64; 3]) -> bool {
        let c = full(&self.parts);
        match self.op {
            Op::Eq => v == c,
            Op::Ne => v != c,
            Op::Gt => v > c,
            Op::Ge => v >= c,
            Op::Lt => v < c,
            Op::Le => v <= c,
            Op::Pessimistic => {
                // `~> 1.2.3`: >= 1.2.3, < 1.3; `~> 1.2` and `~> 1`: >= 1.2, < 2.
                let keep = self.parts.len().saturating_sub(1).max(1);
                v >= c && v[..keep] == c[..keep]
            }
        }
    }
}

/// Checks a `terraform { required_version }` constraint against berth's
/// language level; the error explains the comparison.
pub fn check_terraform(text: &str) -> Result<(), String> {
    let cs = parse(text)?;
    let (major, minor) = TERRAFORM_LANGUAGE;
    // Patch releases up to a generous bound: any one of them will do.
    if (0..=99).any(|patch| cs.iter().all(|c| c.allows([major, minor, patch]))) {
        Ok(())
    } else {
        Err(format!(
            "`required_version = \"{text}\"` excludes Terraform {major}.{minor}, the language berth implements"
        ))
    }
}

/// Checks a `berth { required_version }` constraint against this berth.
pub fn check_berth(text: &str) -> Result<(), String> {
    let cs = parse(text)?;
    let own = env!("CARGO_PKG_VERSION");
    let v: Vec<u64> = own.split(['-', '+']).next().unwrap_or("").split('.').filter_map(|p| p.parse().ok()).collect();
    if cs.iter().all(|c| c.allows(full(&v))) {
        Ok(())
    } else {
        Err(format!("`required_version = \"{text}\"` excludes this berth, version {own}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_terraform_users_write() {
        for ok in [">= 1.0", ">= 1.5, < 2.0", "~> 1.9", "~> 1.11.0", "1.11.2", ">= 0.13", "~> 1", "!= 1.10.0", "> 1.10.5", "v1.11.1", ">= 1.11.0-beta1"] {
            assert_eq!(check_terraform(ok), Ok(()), "{ok}");
        }
        for bad in [">= 1.12", "~> 1.10.0", "< 1.11", "= 1.10.3", "~> 0.15", ">= 2.0", ">1.11.99"] {
            assert!(check_terraform(bad).is_err(), "{bad}");
        }
        assert!(check_terraform(">= one").unwrap_err().contains("not a version constraint"));
        assert!(check_terraform("").is_err());
    }

    #[test]
    fn pessimistic_operator_grows_the_last_part() {
        let c = &parse("~> 1.2.3").unwrap()[0];
        assert!(c.allows([1, 2, 9]) && !c.allows([1, 3, 0]) && !c.allows([1, 2, 2]));
        let c = &parse("~> 1.2").unwrap()[0];
        assert!(c.allows([1, 9, 0]) && !c.allows([2, 0, 0]) && !c.allows([1, 1, 9]));
    }

    #[test]
    fn berth_block_checks_berth_itself() {
        assert_eq!(check_berth(&format!(">= {}", env!("CARGO_PKG_VERSION"))), Ok(()));
        assert!(check_berth(">= 999.0").unwrap_err().contains("excludes this berth"));
    }
}
