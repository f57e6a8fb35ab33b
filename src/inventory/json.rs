//! The JSON renderer: a versioned document for scripts.
//!
//! The schema is documented in `docs/inventory-json-schema.md`; [`VERSION`]
//! changes only when a field is removed, renamed or changes meaning, never
//! when one is added. Each machine appears once in `hosts`, with every role
//! and accessory it serves, so a script needs no de-duplication. Optional
//! values are `null` rather than absent, so every key is always there.

use super::{Host, Inventory, cmp_address, normalized_records, normalized_roles, sorted_accessories, unique_in_order};
use serde::Serialize;

/// The schema version written in `"version"`.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    inventory: &'a str,
    roles: Vec<String>,
    hosts: Vec<HostEntry>,
    accessories: Vec<AccessoryEntry<'a>>,
    ssh: Ssh<'a>,
    records: Vec<RecordEntry>,
}

#[derive(Serialize)]
struct HostEntry {
    name: String,
    address: String,
    resource: String,
    roles: Vec<String>,
    accessories: Vec<String>,
    tags: Vec<String>,
    private_ip: Option<String>,
    public_ip: Option<String>,
    dns_names: Vec<String>,
    instance_id: Option<String>,
}

#[derive(Serialize)]
struct AccessoryEntry<'a> {
    name: &'a str,
    host: &'a str,
    address: &'a str,
}

#[derive(Serialize)]
struct Ssh<'a> {
    user: Option<&'a str>,
    proxy: Option<&'a str>,
}

#[derive(Serialize)]
struct RecordEntry {
    fqdn: String,
    addresses: Vec<String>,
}

pub fn render(inv: &Inventory) -> String {
    let roles = normalized_roles(inv);
    let accessories = sorted_accessories(inv);
    let mut hosts: Vec<HostEntry> = Vec::new();
    for role in &roles {
        for h in &role.hosts {
            let e = entry(&mut hosts, h);
            if !e.roles.contains(&role.name) {
                e.roles.push(role.name.clone());
            }
            e.tags = unique_in_order(e.tags.drain(..).chain(h.tags.iter().cloned()));
        }
    }
    for acc in &accessories {
        let e = entry(&mut hosts, &acc.host);
        if !e.accessories.contains(&acc.name) {
            e.accessories.push(acc.name.clone());
        }
    }
    hosts.sort_by(|a, b| {
        a.name.cmp(&b.name).then_with(|| cmp_address(&a.address, &b.address)).then_with(|| a.resource.cmp(&b.resource))
    });

    let doc = Document {
        version: VERSION,
        inventory: &inv.name,
        roles: roles.iter().map(|r| r.name.clone()).collect(),
        hosts,
        accessories: accessories
            .iter()
            .map(|a| AccessoryEntry { name: &a.name, host: &a.host.name, address: &a.host.address })
            .collect(),
        ssh: Ssh { user: inv.ssh_user.as_deref(), proxy: inv.bastion.as_deref() },
        records: normalized_records(inv)
            .into_iter()
            .map(|r| RecordEntry { fqdn: r.fqdn, addresses: r.addresses })
            .collect(),
    };
    // Serializing plain structs of strings cannot fail.
    let mut out = serde_json::to_string_pretty(&doc).expect("inventory JSON");
    out.push('\n');
    out
}

/// The entry for the machine `h` is, added on first sight.
fn entry<'a>(hosts: &'a mut Vec<HostEntry>, h: &Host) -> &'a mut HostEntry {
    let same = |e: &HostEntry| e.name == h.name && e.address == h.address && e.resource == h.resource;
    let i = match hosts.iter().position(same) {
        Some(i) => i,
        None => {
            hosts.push(HostEntry {
                name: h.name.clone(),
                address: h.address.clone(),
                resource: h.resource.clone(),
                roles: Vec::new(),
                accessories: Vec::new(),
                tags: Vec::new(),
                private_ip: h.private_ip.clone(),
                public_ip: h.public_ip.clone(),
                dns_names: unique_in_order(h.dns_names.iter().cloned()),
                instance_id: h.instance_id.clone(),
            });
            hosts.len() - 1
        }
    };
    &mut hosts[i]
}
