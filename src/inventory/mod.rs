//! Server inventories: the last stage of the pipeline.
//!
//! After an apply, the engine builds an [`Inventory`] from the configuration
//! and the new state (which hosts play which role, the accessories, the DNS
//! records berth manages) and [`render`]s it in one of four [`Format`]s: a
//! Kamal destination file ([`kamal`]), an Ansible YAML inventory
//! ([`ansible`]), versioned JSON for scripts ([`json`], schema in
//! `docs/inventory-json-schema.md`) or an `/etc/hosts` block ([`hosts`]).
//!
//! Rendering is a pure function of the model and deterministic: roles keep
//! the order they are given in (Kamal's primary role comes first), everything
//! else is sorted, so regenerating an unchanged inventory yields the same
//! bytes and [`write_if_changed`] leaves the file alone. [`unified_diff`]
//! shows what a run would change. Rendering never fails: values that a format
//! cannot hold are quoted or, for `/etc/hosts`, skipped with a comment;
//! [`validate`] reports such problems, all at once, for the caller to show.

pub mod ansible;
pub mod hosts;
pub mod json;
pub mod kamal;

use crate::addr::{InstanceAddr, InstanceKey};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file format an inventory is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Kamal,
    Ansible,
    Json,
    Hosts,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Kamal, Format::Ansible, Format::Json, Format::Hosts];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Kamal => "kamal",
            Format::Ansible => "ansible",
            Format::Json => "json",
            Format::Hosts => "hosts",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = InventoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| InventoryError::UnknownFormat { given: s.to_string() })
    }
}

/// Which of a host's addresses deploy tools connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressKind {
    PrivateIp,
    PublicIp,
    Dns,
}

impl AddressKind {
    pub const ALL: [AddressKind; 3] = [AddressKind::PrivateIp, AddressKind::PublicIp, AddressKind::Dns];

    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::PrivateIp => "private_ip",
            AddressKind::PublicIp => "public_ip",
            AddressKind::Dns => "dns",
        }
    }
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AddressKind {
    type Err = InventoryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddressKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| InventoryError::UnknownAddressKind { given: s.to_string() })
    }
}

/// One server as deploy tools see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host {
    /// The resource address, `module.search.aws_instance.this[0]`.
    pub resource: String,
    /// Stable inventory name: the first DNS name if any, else one derived from
    /// the address ([`derived_name`]).
    pub name: String,
    /// What the deploy tool connects to, chosen by [`AddressKind`].
    pub address: String,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    /// Private DNS names berth manages that point at this host.
    pub dns_names: Vec<String>,
    pub instance_id: Option<String>,
    /// Kamal host tags; extra groups in Ansible. Order is kept: Kamal applies
    /// the env files of a host's tags in that order.
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub hosts: Vec<Host>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accessory {
    pub name: String,
    pub host: Host,
}

/// A DNS record berth manages, for the `hosts` format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub fqdn: String,
    pub addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    pub name: String,
    pub format: Format,
    pub path: PathBuf,
    pub roles: Vec<Role>,
    pub accessories: Vec<Accessory>,
    /// SSH proxy, `root@203.0.113.7`: Kamal `ssh.proxy`, Ansible `ProxyJump`.
    pub bastion: Option<String>,
    pub ssh_user: Option<String>,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("unknown inventory format `{given}` (expected `kamal`, `ansible`, `json` or `hosts`)")]
    UnknownFormat { given: String },
    #[error("unknown address kind `{given}` (expected `private_ip`, `public_ip` or `dns`)")]
    UnknownAddressKind { given: String },
    #[error("inventory `{inventory}`: `{attribute}` {problem}")]
    Invalid { inventory: String, attribute: String, problem: String },
    #[error("a `# BEGIN berth {name}` line has no `# END berth {name}` after it")]
    UnterminatedBlock { name: String },
}

/// Renders the inventory in its format. Deterministic: equal models give
/// equal bytes, whatever the order of hosts, accessories and records.
pub fn render(inv: &Inventory) -> String {
    match inv.format {
        Format::Kamal => kamal::render(inv),
        Format::Ansible => ansible::render(inv),
        Format::Json => json::render(inv),
        Format::Hosts => hosts::render(inv),
    }
}

/// Everything in `inv` that the formats cannot hold faithfully, all at once.
/// [`render`] still produces a file for such a model (quoting, merging or
/// skipping what it must); callers should refuse to write it, or warn.
pub fn validate(inv: &Inventory) -> Vec<InventoryError> {
    let mut problems = Vec::new();
    let mut bad = |attribute: String, problem: &str| {
        // Names can hold anything; an error message stays on one line.
        problems.push(InventoryError::Invalid {
            inventory: one_line(&inv.name),
            attribute: one_line(&attribute),
            problem: problem.to_string(),
        })
    };
    if inv.name.is_empty() || inv.name.chars().any(char::is_control) {
        bad("name".into(), "must be non-empty text on one line");
    }
    for (attr, value) in [("bastion", &inv.bastion), ("ssh_user", &inv.ssh_user)] {
        if let Some(v) = value
            && (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            bad(attr.into(), "must be non-empty and hold no spaces");
        }
    }

    let mut placed: Vec<(String, &Host)> = Vec::new();
    for role in &inv.roles {
        if role.name.is_empty() || role.name.chars().any(char::is_control) {
            bad(format!("roles[{:?}].name", role.name), "must be non-empty text on one line");
        }
        for h in &role.hosts {
            placed.push((format!("roles.{}", role.name), h));
        }
    }
    let mut accessory_hosts: Vec<(&str, &str)> = Vec::new();
    for acc in &inv.accessories {
        if acc.name.is_empty() || acc.name.chars().any(char::is_control) {
            bad(format!("accessories[{:?}].name", acc.name), "must be non-empty text on one line");
        }
        if let Some((_, other)) = accessory_hosts.iter().find(|(n, a)| *n == acc.name && *a != acc.host.address) {
            bad(
                format!("accessories.{}", acc.name),
                &format!("is given twice, on `{other}` and on `{}`", acc.host.address),
            );
        }
        accessory_hosts.push((&acc.name, &acc.host.address));
        placed.push((format!("accessories.{}", acc.name), &acc.host));
    }

    for (at, h) in &placed {
        if !is_host_name(&h.name) {
            bad(
                format!("{at}.hosts[{:?}].name", h.name),
                "must be a host name: letters, digits, `.`, `_` and `-` only",
            );
        }
        if h.address.is_empty() || h.address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bad(format!("{at}.hosts.{}.address", h.name), "must be a non-empty address with no spaces");
        }
        for t in &h.tags {
            if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bad(format!("{at}.hosts.{}.tags", h.name), "holds an empty tag or one with spaces");
            }
        }
    }
    // One name must mean one machine, or Ansible merges two hosts' variables.
    let mut by_name: Vec<&Host> = placed.iter().map(|(_, h)| *h).collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name).then(a.address.cmp(&b.address)));
    by_name.dedup_by(|a, b| a.name == b.name && a.address == b.address);
    for pair in by_name.windows(2) {
        if pair[0].name == pair[1].name {
            bad(
                format!("hosts.{}", pair[0].name),
                &format!("names two hosts: `{}` and `{}`", pair[0].address, pair[1].address),
            );
        }
    }

    if inv.format == Format::Ansible {
        for (group, sources) in ansible::group_clashes(inv) {
            bad(format!("group {group}"), &format!("is the Ansible group of several names: {}", backticked(&sources)));
        }
    }
    if inv.format == Format::Hosts {
        for r in &inv.records {
            if let Err(why) = hosts::check_record(&r.fqdn, &r.addresses) {
                bad(format!("records.{}", r.fqdn), &why);
            }
        }
    }
    problems
}

fn backticked(items: &[String]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A host name for an instance without DNS names: the module path, the
/// resource name and the key, lowercased and joined with `-`:
/// `aws_instance.web[0]` → `web-0`, `module.search.aws_instance.this["a"]` →
/// `search-this-a`.
pub fn derived_name(addr: &InstanceAddr) -> String {
    let mut parts: Vec<String> = addr.resource.module.clone();
    parts.push(addr.resource.name.clone());
    match &addr.key {
        InstanceKey::None => {}
        InstanceKey::Int(i) => parts.push(i.to_string()),
        InstanceKey::Str(s) => parts.push(s.clone()),
    }
    let mut out = String::new();
    for c in parts.join("-").chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() { "host".to_string() } else { trimmed.to_string() }
}

/// A unified diff of `old` → `new` with git's `a/` and `b/` headers; empty
/// when the two are equal.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// The file's content for an inventory: the whole file, or for `hosts` the
/// berth block spliced into what is there.
pub fn file_content(inv: &Inventory) -> Result<String, InventoryError> {
    let block = render(inv);
    if inv.format == Format::Hosts {
        let existing = std::fs::read_to_string(&inv.path).unwrap_or_default();
        return hosts::splice(&existing, &block, &inv.name);
    }
    Ok(block)
}

/// A path as messages show it: without a leading `./`.
pub fn display_path(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// Writes `content` to `path` unless the file already holds exactly that.
///
/// Returns `false`, and touches nothing (same inode, same mtime), when the
/// content is equal, so tools watching the file see no change. Otherwise the
/// content goes to a temporary file in the same directory, is synced and
/// renamed over `path` (mode 0644), and the directory is synced: a reader
/// sees the old file or the new one, never half of one, even after a crash.
/// Missing parent directories are created. A symlink at `path` is replaced by
/// the file, not followed.
pub fn write_if_changed(path: &Path, content: &str) -> io::Result<bool> {
    match std::fs::read(path) {
        Ok(old) if old == content.as_bytes() => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path(e, "read", path)),
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs_err::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".berth-inventory-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| with_path(e, "create a temporary file beside", path))?;
    let write = |tmp: &mut tempfile::NamedTempFile| -> io::Result<()> {
        // Set explicitly: the mode given at creation would be cut by the umask.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
        tmp.write_all(content.as_bytes())?;
        tmp.as_file().sync_all()
    };
    write(&mut tmp).map_err(|e| with_path(e, "write", path))?;
    tmp.persist(path).map_err(|e| with_path(e.error, "rename into", path))?;
    // The rename is only durable once the directory entry is.
    fs_err::File::open(dir)?.sync_all()?;
    Ok(true)
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} `{}`: {e}", path.display()))
}

// ---- Shared by the renderers -------------------------------------------

/// Orders addresses as IPs when both parse (so `10.0.1.9` < `10.0.1.10`),
/// else as text; a total order either way.
pub(crate) fn cmp_address(a: &str, b: &str) -> Ordering {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Hosts sorted by name, then address, then everything else (so the order
/// is total and input order never shows).
pub(crate) fn cmp_host(a: &Host, b: &Host) -> Ordering {
    a.name.cmp(&b.name).then_with(|| cmp_address(&a.address, &b.address)).then_with(|| a.cmp(b))
}

/// Roles with equal names merged (first position wins), their hosts sorted
/// and exact duplicates dropped. A map would not do: order is meaningful.
pub(crate) fn normalized_roles(inv: &Inventory) -> Vec<Role> {
    let mut out: Vec<Role> = Vec::new();
    for role in &inv.roles {
        match out.iter_mut().find(|r| r.name == role.name) {
            Some(r) => r.hosts.extend(role.hosts.iter().cloned()),
            None => out.push(role.clone()),
        }
    }
    for role in &mut out {
        role.hosts.sort_by(cmp_host);
        role.hosts.dedup();
    }
    out
}

/// Accessories sorted by name, then host.
pub(crate) fn sorted_accessories(inv: &Inventory) -> Vec<&Accessory> {
    let mut accs: Vec<&Accessory> = inv.accessories.iter().collect();
    accs.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| cmp_host(&a.host, &b.host)));
    accs.dedup();
    accs
}

/// Records merged by name and sorted, their addresses sorted and unique.
pub(crate) fn normalized_records(inv: &Inventory) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for r in &inv.records {
        match out.iter_mut().find(|o| o.fqdn == r.fqdn) {
            Some(o) => o.addresses.extend(r.addresses.iter().cloned()),
            None => out.push(r.clone()),
        }
    }
    out.sort_by(|a, b| a.fqdn.cmp(&b.fqdn));
    for r in &mut out {
        r.addresses.sort_by(|a, b| cmp_address(a, b));
        r.addresses.dedup();
    }
    out
}

/// `tags` without repeats, first occurrence kept.
pub(crate) fn unique_in_order(tags: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Text for a comment line: control characters (a newline would end the
/// comment and start YAML) become spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A YAML scalar that reads back as exactly the string `s`, in YAML 1.2
/// (yaml-rust2) and in YAML 1.1 (PyYAML for Ansible, Psych for Kamal), and
/// survives Kamal's ERB pass.
///
/// Written plain only when it is obviously a string in every reader: plain
/// text in a small character set that is no 1.1 boolean or null, starting
/// with a letter, or a dotted IPv4-like run of digits. Everything else is
/// double-quoted with escapes. The allowed characters include none of
/// `,[]{}`, so a plain scalar is safe inside a flow sequence too.
pub(crate) fn yaml_str(s: &str) -> Cow<'_, str> {
    if is_plain_safe(s) { Cow::Borrowed(s) } else { Cow::Owned(yaml_quoted(s)) }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '@')) {
        return false;
    }
    if first.is_ascii_alphabetic() {
        // YAML 1.1 reads these (in any case) as booleans or null.
        const RESERVED: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
        return !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    }
    // Digits first: only a.b.c(.d…), which no YAML reads as a number or date.
    first.is_ascii_digit() && {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() >= 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    }
}

fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            // `<` could open an ERB tag (`<%`) in a Kamal file.
            '<' => out.push_str("\\u003C"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A flow sequence, `[a, "b c"]`.
pub(crate) fn yaml_flow_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<Cow<'_, str>> = items.into_iter().map(|s| yaml_str(s)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_address_kind_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        for k in AddressKind::ALL {
            assert_eq!(k.to_string().parse::<AddressKind>().unwrap(), k);
        }
        let err = "yaml".parse::<Format>().unwrap_err();
        assert_eq!(err.to_string(), "unknown inventory format `yaml` (expected `kamal`, `ansible`, `json` or `hosts`)");
        let err = "ipv6".parse::<AddressKind>().unwrap_err();
        assert!(err.to_string().contains("`ipv6`"), "{err}");
    }

    #[test]
    fn yaml_str_quotes_what_a_reader_could_misread() {
        for plain in ["web", "10.0.1.5", "micro-search.internal", "root@203.0.113.7", "i-0abc123", "web-0"] {
            assert_eq!(yaml_str(plain), plain);
        }
        for quoted in [
            "",
            "yes",
            "No",
            "ON",
            "null",
            "true",
            "1.5",
            "10",
            "0x1f",
            "1e5",
            "10:00",
            "2001:db8::1",
            "a b",
            "-o",
            "#x",
            "a: b",
            "[x]",
            "~",
            ".inf",
            "2024-01-01",
            "1_000",
            "1.2.",
            "<%= x %>",
            "é",
        ] {
            assert!(yaml_str(quoted).starts_with('"'), "{quoted:?} should be quoted, got {}", yaml_str(quoted));
        }
        assert_eq!(yaml_str("a\"b\\c\nd<"), r#""a\"b\\c\nd\u003C""#);
    }

    #[test]
    fn yaml_str_reads_back_exactly() {
        let nasty = [
            "yes",
            "off",
            "10:00",
            "0o17",
            "0b1",
            "-",
            "?",
            "!tag",
            "&a",
            "*a",
            "|",
            ">",
            "%x",
            "@x",
            "`x",
            "a #b",
            "a\tb",
            "\u{7}",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "é",
            "日本",
            "😀",
            "'",
            "\"",
            "\\",
            "<%= 1 %>",
            " lead",
            "trail ",
            "",
        ];
        for s in nasty {
            let doc = format!("k: {}\nl: {}\n", yaml_str(s), yaml_flow_list(&[s.to_string(), "x".into()]));
            let docs = yaml_rust2::YamlLoader::load_from_str(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            let v = &docs[0];
            assert_eq!(v["k"].as_str(), Some(s), "{doc}");
            assert_eq!(v["l"][0].as_str(), Some(s), "{doc}");
        }
    }

    #[test]
    fn derived_names() {
        let n = |s: &str| derived_name(&s.parse().unwrap());
        assert_eq!(n("aws_instance.web[0]"), "web-0");
        assert_eq!(n("aws_instance.web"), "web");
        assert_eq!(n("module.search.aws_instance.this[2]"), "search-this-2");
        assert_eq!(n("aws_instance.web[\"Eu West/1\"]"), "web-eu-west-1");
        assert_eq!(n("aws_instance.web_a[\"--\"]"), "web-a");
    }

    #[test]
    fn address_order_is_numeric_for_ips() {
        let mut v = vec!["10.0.1.10", "b.internal", "10.0.1.9", "a.internal", "::1"];
        v.sort_by(|a, b| cmp_address(a, b));
        assert_eq!(v, ["a.internal", "b.internal", "10.0.1.9", "10.0.1.10", "::1"]);
    }

    #[test]
    fn unified_diff_shape() {
        assert_eq!(unified_diff("x.yml", "a\nb\n", "a\nb\n"), "");
        let d = unified_diff("config/deploy.production.yml", "a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(
            d,
            "--- a/config/deploy.production.yml\n+++ b/config/deploy.production.yml\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        let d = unified_diff("h", "", "x\n");
        assert_eq!(d, "--- a/h\n+++ b/h\n@@ -0,0 +1 @@\n+x\n");
    }

    #[test]
    fn validate_reports_every_problem() {
        let host = |name: &str, address: &str| Host {
            name: name.into(),
            address: address.into(),
            resource: format!("aws_instance.{name}"),
            ..Host::default()
        };
        let inv = Inventory {
            name: "prod".into(),
            format: Format::Ansible,
            path: "inv.yml".into(),
            roles: vec![
                Role { name: "search-api".into(), hosts: vec![host("web-0", "10.0.0.1"), host("bad name", "")] },
                Role { name: "search_api".into(), hosts: vec![host("web-0", "10.0.0.2")] },
            ],
            accessories: vec![
                Accessory { name: "db".into(), host: host("db", "10.0.0.3") },
                Accessory { name: "db".into(), host: host("db", "10.0.0.4") },
            ],
            bastion: Some("root@ 1.2.3.4".into()),
            ssh_user: None,
            records: vec![],
        };
        let msgs: Vec<String> = validate(&inv).iter().map(ToString::to_string).collect();
        let all = msgs.join("\n");
        for needle in [
            "`bastion` must be non-empty and hold no spaces",
            "`roles.search-api.hosts[\"bad name\"].name` must be a host name",
            "`roles.search-api.hosts.bad name.address` must be a non-empty address",
            "`hosts.web-0` names two hosts: `10.0.0.1` and `10.0.0.2`",
            "`accessories.db` is given twice, on `10.0.0.3` and on `10.0.0.4`",
            "`group search_api` is the Ansible group of several names: `search-api`, `search_api`",
            "`hosts.db` names two hosts",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(msgs.len(), 7, "{all}");
    }

    #[test]
    fn write_if_changed_creates_dirs_and_skips_equal_content() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/deep/deploy.production.yml");
        assert!(write_if_changed(&path, "one\n").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert!(!write_if_changed(&path, "one\n").unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), meta.ino());
        assert!(write_if_changed(&path, "two\n").unwrap());
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), meta.ino(), "replaced by rename, not rewritten");
        let leftovers: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("deploy.production.yml")]);
    }

    #[test]
    fn write_if_changed_names_the_path_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_if_changed(dir.path(), "x").unwrap_err();
        assert!(err.to_string().contains(&format!("`{}`", dir.path().display())), "{err}");
    }
}
