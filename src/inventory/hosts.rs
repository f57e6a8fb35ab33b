//! The hosts renderer: an `/etc/hosts` block for the DNS records berth manages.
//!
//! For machines that should resolve `micro-search.internal` without asking
//! a DNS server (a CI runner, a laptop on a VPN), the block holds one
//! `ADDRESS  NAME` line per address of each record, sorted by name then
//! address, between `# BEGIN berth NAME` and `# END berth NAME` markers so
//! [`splice`] can replace it inside an existing hosts file and leave every
//! other line alone. `/etc/hosts` can only map names to IP addresses: a
//! record whose name is not a host name, or an address that is not an IP, is
//! written as a `# skipped` comment instead (and [`super::validate`] reports
//! it).

use super::{Inventory, InventoryError, normalized_records, one_line};
use std::fmt::Write;
use std::net::IpAddr;

pub fn render(inv: &Inventory) -> String {
    let name = one_line(&inv.name);
    let mut out = format!("{}\n", begin_marker(&name));
    for r in normalized_records(inv) {
        if let Err(why) = check_name(&r.fqdn) {
            writeln!(out, "# skipped {:?}: {why}", r.fqdn).unwrap();
            continue;
        }
        for a in &r.addresses {
            match a.parse::<IpAddr>() {
                Ok(_) => writeln!(out, "{a}  {}", r.fqdn).unwrap(),
                Err(_) => writeln!(out, "# skipped {:?} for {}: not an IP address", a, r.fqdn).unwrap(),
            }
        }
    }
    writeln!(out, "{}", end_marker(&name)).unwrap();
    out
}

fn begin_marker(name: &str) -> String {
    format!("# BEGIN berth {name}")
}

fn end_marker(name: &str) -> String {
    format!("# END berth {name}")
}

fn check_name(fqdn: &str) -> Result<(), String> {
    let ok = !fqdn.is_empty()
        && fqdn.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !fqdn.starts_with(['.', '-']);
    if ok { Ok(()) } else { Err("is not a host name".to_string()) }
}

/// Why a record cannot be written to `/etc/hosts` as given, if it cannot.
pub(crate) fn check_record(fqdn: &str, addresses: &[String]) -> Result<(), String> {
    check_name(fqdn)?;
    if addresses.is_empty() {
        return Err("has no addresses".to_string());
    }
    match addresses.iter().find(|a| a.parse::<IpAddr>().is_err()) {
        Some(a) => Err(format!("address `{a}` is not an IP address")),
        None => Ok(()),
    }
}

/// `existing` (a whole hosts file) with the `name` block replaced by `block`
/// (a [`render`]ed one), or `block` appended when the file has none. Every
/// line outside the markers is kept as it is. Stray extra blocks of the same
/// name are removed, so a file never holds two.
pub fn splice(existing: &str, block: &str, name: &str) -> Result<String, InventoryError> {
    let name = one_line(name);
    let (begin, end) = (begin_marker(&name), end_marker(&name));
    let mut out = String::with_capacity(existing.len() + block.len());
    let mut placed = false;
    let mut inside = false;
    for line in existing.split_inclusive('\n') {
        let bare = line.trim_end();
        if !inside && bare == begin {
            inside = true;
            if !placed {
                out.push_str(block);
                placed = true;
            }
        } else if inside && bare == end {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    if inside {
        // Replacing to the end of the file could delete the user's own lines.
        return Err(InventoryError::UnterminatedBlock { name });
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "# BEGIN berth prod\n10.0.1.5  a.internal\n# END berth prod\n";

    #[test]
    fn splice_appends_then_replaces_in_place() {
        let base = "127.0.0.1 localhost\n::1 localhost";
        let once = splice(base, BLOCK, "prod").unwrap();
        assert_eq!(once, format!("127.0.0.1 localhost\n::1 localhost\n{BLOCK}"));
        let with_tail = format!("{once}192.0.2.1 mine\n");
        let newer = BLOCK.replace("10.0.1.5", "10.0.1.6");
        let twice = splice(&with_tail, &newer, "prod").unwrap();
        assert_eq!(twice, format!("127.0.0.1 localhost\n::1 localhost\n{newer}192.0.2.1 mine\n"));
        assert_eq!(splice(&twice, &newer, "prod").unwrap(), twice);
    }

    #[test]
    fn splice_leaves_other_blocks_and_drops_duplicates() {
        let other = "# BEGIN berth staging\n10.9.9.9  s.internal\n# END berth staging\n";
        let existing = format!("{BLOCK}{other}{BLOCK}");
        let newer = BLOCK.replace("a.internal", "b.internal");
        assert_eq!(splice(&existing, &newer, "prod").unwrap(), format!("{newer}{other}"));
    }

    #[test]
    fn splice_refuses_an_unterminated_block() {
        let err = splice("x\n# BEGIN berth prod\n10.0.0.1 y\n", BLOCK, "prod").unwrap_err();
        assert_eq!(err.to_string(), "a `# BEGIN berth prod` line has no `# END berth prod` after it");
    }

    #[test]
    fn records_checked() {
        assert!(check_record("a.internal", &["10.0.0.1".into(), "fd00::1".into()]).is_ok());
        assert!(check_record("a.internal", &[]).unwrap_err().contains("no addresses"));
        assert!(check_record("a internal", &["10.0.0.1".into()]).is_err());
        assert!(check_record("-a", &["10.0.0.1".into()]).is_err());
        assert_eq!(
            check_record("a.internal", &["10.0.0.1".into(), "b.internal".into()]).unwrap_err(),
            "address `b.internal` is not an IP address"
        );
    }
}
