//! The four inventory formats, rendered from one sample model: snapshots,
//! determinism, and each file read back by what consumes it — Ansible's own
//! `ansible-inventory`, serde_yaml for Kamal's YAML, serde_json for scripts.

use crate::support;

use berth::inventory::{
    Accessory, Format, Host, Inventory, Record, Role, render, unified_diff, validate, write_if_changed,
};
use serde_json::{Value as Json, json};
use serde_yaml::Value as Yaml;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

#[allow(clippy::too_many_arguments)]
fn host(
    resource: &str,
    name: &str,
    address: &str,
    public_ip: Option<&str>,
    dns_names: &[&str],
    instance_id: &str,
    tags: &[&str],
) -> Host {
    Host {
        resource: resource.into(),
        name: name.into(),
        address: address.into(),
        private_ip: Some(address.into()),
        public_ip: public_ip.map(Into::into),
        dns_names: dns_names.iter().map(|s| s.to_string()).collect(),
        instance_id: Some(instance_id.into()),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    }
}

/// Three roles sharing hosts, an accessory, a bastion and DNS records: the
/// shape of a small real deployment.
fn sample(format: Format) -> Inventory {
    let search = |tags: &[&str]| {
        host(
            "module.search.aws_instance.this[0]",
            "micro-search.internal",
            "10.0.1.5",
            Some("203.0.113.10"),
            &["micro-search.internal"],
            "i-0a1b2c3d4e5f60001",
            tags,
        )
    };
    let web0 = host("aws_instance.web[0]", "web-0", "10.0.1.9", None, &[], "i-0a1b2c3d4e5f60002", &[]);
    let web1 =
        |tags: &[&str]| host("aws_instance.web[1]", "web-1", "10.0.1.10", None, &[], "i-0a1b2c3d4e5f60003", tags);
    let db = Host {
        public_ip: None,
        instance_id: None,
        ..host("aws_instance.db", "db.internal", "10.0.2.7", None, &["db.internal"], "", &[])
    };
    Inventory {
        name: "production".into(),
        format,
        path: "config/deploy.production.yml".into(),
        roles: vec![
            Role { name: "web".into(), hosts: vec![web1(&[]), search(&["canary"]), web0] },
            Role { name: "search-api".into(), hosts: vec![search(&["canary", "eu"])] },
            Role { name: "workers".into(), hosts: vec![web1(&["jobs"])] },
        ],
        accessories: vec![Accessory { name: "db".into(), host: db }],
        bastion: Some("root@203.0.113.7".into()),
        ssh_user: Some("deploy".into()),
        records: vec![
            Record { fqdn: "micro-search.internal".into(), addresses: vec!["10.0.1.5".into()] },
            Record { fqdn: "db.internal".into(), addresses: vec!["10.0.2.7".into()] },
            Record { fqdn: "api.internal".into(), addresses: vec!["10.0.1.10".into(), "10.0.1.9".into()] },
        ],
    }
}

#[test]
fn sample_is_valid_in_every_format() {
    for format in Format::ALL {
        assert_eq!(validate(&sample(format)), vec![], "{format}");
    }
}

#[test]
fn snapshots() {
    insta::assert_snapshot!("kamal", render(&sample(Format::Kamal)));
    insta::assert_snapshot!("ansible", render(&sample(Format::Ansible)));
    insta::assert_snapshot!("json", render(&sample(Format::Json)));
    insta::assert_snapshot!("hosts", render(&sample(Format::Hosts)));
}

/// A small deterministic Fisher–Yates, so a failure can be replayed by seed.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = ((*seed >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[test]
fn shuffled_input_renders_the_same() {
    for format in Format::ALL {
        let expected = render(&sample(format));
        for mut seed in 1..=40u64 {
            let mut inv = sample(format);
            for role in &mut inv.roles {
                shuffle(&mut role.hosts, &mut seed);
            }
            // Split a role in two: the same role given twice must merge.
            let extra = inv.roles[0].hosts.split_off(1);
            inv.roles.push(Role { name: "web".into(), hosts: extra });
            inv.accessories.push(inv.accessories[0].clone());
            shuffle(&mut inv.accessories, &mut seed);
            for r in &mut inv.records {
                shuffle(&mut r.addresses, &mut seed);
            }
            shuffle(&mut inv.records, &mut seed);
            assert_eq!(render(&inv), expected, "{format}, seed {seed}");
        }
    }
}

fn yaml(text: &str) -> Yaml {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

fn yaml_to_json(v: Yaml) -> Json {
    serde_json::to_value(v).unwrap()
}

#[test]
fn kamal_file_parses_back_to_the_destination_structure() {
    let text = render(&sample(Format::Kamal));
    assert!(
        text.starts_with(
            "# Generated by berth from inventory \"production\". Do not edit: run `berth apply` or `berth inventory`.\n"
        ),
        "{text}"
    );
    let doc = yaml_to_json(yaml(&text));
    assert_eq!(
        doc,
        json!({
            "servers": {
                "web": { "hosts": [ { "10.0.1.5": ["canary"] }, "10.0.1.9", "10.0.1.10" ] },
                "search-api": { "hosts": [ { "10.0.1.5": ["canary", "eu"] } ] },
                "workers": { "hosts": [ { "10.0.1.10": ["jobs"] } ] },
            },
            "ssh": { "proxy": "root@203.0.113.7", "user": "deploy" },
            "accessories": { "db": { "host": "10.0.2.7" } },
        })
    );
    // Role order is meaningful to Kamal (the primary role) and must survive.
    let roles: Vec<&str> = text.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")).collect();
    assert_eq!(roles[..3], ["  web:", "  search-api:", "  workers:"]);
}

#[test]
fn kamal_file_without_ssh_or_accessories_holds_only_servers() {
    let mut inv = sample(Format::Kamal);
    inv.bastion = None;
    inv.ssh_user = None;
    inv.accessories.clear();
    let doc = yaml_to_json(yaml(&render(&inv)));
    assert_eq!(doc.as_object().unwrap().keys().collect::<Vec<_>>(), ["servers"]);

    inv.roles.clear();
    assert_eq!(yaml_to_json(yaml(&render(&inv))), json!({ "servers": {} }));
}

/// Names and values that a careless YAML writer would turn into booleans,
/// numbers, nulls, comments or ERB tags.
fn awkward(format: Format) -> Inventory {
    let h = |name: &str, address: &str, tags: &[&str]| Host {
        resource: "module.x.aws_instance.y[\"a: b #c\"]".into(),
        name: name.into(),
        address: address.into(),
        private_ip: Some("010.0.0.1".into()),
        public_ip: Some("1e5".into()),
        dns_names: vec!["yes".into(), "null".into(), "10:00".into()],
        instance_id: Some("i-\"quoted\" 'single' <%= `rm` %> \\ é 😀\ttab".into()),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    };
    Inventory {
        name: "odd \"name\"\n<%= x %>".into(),
        format,
        path: "x".into(),
        roles: vec![
            Role { name: "on".into(), hosts: vec![h("yes", "10.0.0.1", &["no", "0x1F", "a b"])] },
            Role { name: "1st role".into(), hosts: vec![h("null", "2001:db8::1", &[])] },
            Role { name: "all".into(), hosts: vec![] },
        ],
        accessories: vec![Accessory { name: "true".into(), host: h("off", "10.0.0.2", &[]) }],
        bastion: Some("ops@[2001:db8::7]".into()),
        ssh_user: Some("~".into()),
        records: vec![],
    }
}

#[test]
fn kamal_quotes_what_yaml_or_erb_would_misread() {
    let text = render(&awkward(Format::Kamal));
    // Kamal runs the file through ERB first: every `<%` must be ERB's escaped `<%%`.
    assert!(text.match_indices("<%").all(|(i, _)| text[i + 2..].starts_with('%')), "an ERB tag would run:\n{text}");
    insta::assert_snapshot!("kamal_awkward", text);
    assert_eq!(text.lines().next().unwrap().matches('#').count(), 1, "the name stays inside the comment");
    let doc = yaml_to_json(yaml(&text));
    assert_eq!(
        doc,
        json!({
            "servers": {
                "on": { "hosts": [ { "10.0.0.1": ["no", "0x1F", "a b"] } ] },
                "1st role": { "hosts": [ "2001:db8::1" ] },
                "all": { "hosts": [] },
            },
            "ssh": { "proxy": "ops@[2001:db8::7]", "user": "~" },
            "accessories": { "true": { "host": "10.0.0.2" } },
        })
    );
}

fn ansible_inventory_list(text: &str) -> (Json, String) {
    let bin = support::venv::venv_bin();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.yml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin.join("ansible-inventory"))
        .arg("-i")
        .arg(&file)
        .arg("--list")
        // A file Ansible cannot parse must fail the run, not become a warning.
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ENABLED", "yaml")
        .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", dir.path().join("tmp"))
        .env("ANSIBLE_CONFIG", dir.path().join("no-ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .current_dir(dir.path())
        .output()
        .expect("run ansible-inventory");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ansible-inventory failed:\n{stderr}\n--- file:\n{text}");
    let list = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("ansible-inventory printed no JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    });
    (list, stderr)
}

fn group_hosts(list: &Json, group: &str) -> Vec<String> {
    let mut hosts: Vec<String> = list[group]["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no group `{group}` with hosts in {list:#}"))
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn ansible_inventory_reads_groups_hosts_and_hostvars() {
    let (list, stderr) = ansible_inventory_list(&render(&sample(Format::Ansible)));
    assert!(!stderr.contains("WARNING"), "ansible-inventory warned:\n{stderr}");

    let mut children: Vec<&str> =
        list["all"]["children"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    children.sort();
    assert_eq!(
        children,
        ["accessory_db", "search_api", "tag_canary", "tag_eu", "tag_jobs", "ungrouped", "web", "workers"]
    );
    assert_eq!(group_hosts(&list, "web"), ["micro-search.internal", "web-0", "web-1"]);
    assert_eq!(group_hosts(&list, "search_api"), ["micro-search.internal"]);
    assert_eq!(group_hosts(&list, "workers"), ["web-1"]);
    assert_eq!(group_hosts(&list, "accessory_db"), ["db.internal"]);
    assert_eq!(group_hosts(&list, "tag_canary"), ["micro-search.internal"]);
    assert_eq!(group_hosts(&list, "tag_eu"), ["micro-search.internal"]);
    assert_eq!(group_hosts(&list, "tag_jobs"), ["web-1"]);

    let hostvars = &list["_meta"]["hostvars"];
    assert_eq!(hostvars.as_object().unwrap().len(), 4, "{hostvars:#}");
    let search = &hostvars["micro-search.internal"];
    assert_eq!(search["ansible_host"], "10.0.1.5");
    assert_eq!(search["berth_address"], "10.0.1.5");
    assert_eq!(search["berth_resource"], "module.search.aws_instance.this[0]");
    assert_eq!(search["private_ip"], "10.0.1.5");
    assert_eq!(search["public_ip"], "203.0.113.10");
    assert_eq!(search["dns_names"], json!(["micro-search.internal"]));
    assert_eq!(search["instance_id"], "i-0a1b2c3d4e5f60001");
    // Group `all` variables reach every host.
    for name in ["micro-search.internal", "web-0", "web-1", "db.internal"] {
        assert_eq!(hostvars[name]["ansible_ssh_common_args"], "-o ProxyJump=root@203.0.113.7", "{name}");
        assert_eq!(hostvars[name]["ansible_user"], "deploy", "{name}");
    }
    let db = &hostvars["db.internal"];
    assert_eq!(db["ansible_host"], "10.0.2.7");
    assert!(db.get("public_ip").is_none() && db.get("instance_id").is_none(), "unknown values are left out: {db:#}");
    assert_eq!(hostvars["web-1"]["ansible_host"], "10.0.1.10");
}

#[test]
fn ansible_inventory_reads_awkward_values_back_exactly() {
    let inv = awkward(Format::Ansible);
    let text = render(&inv);
    insta::assert_snapshot!("ansible_awkward", text);
    let (list, _) = ansible_inventory_list(&text);
    assert_eq!(group_hosts(&list, "on"), ["yes"]);
    assert_eq!(group_hosts(&list, "_1st_role"), ["null"]);
    assert_eq!(group_hosts(&list, "accessory_true"), ["off"]);
    assert_eq!(group_hosts(&list, "tag_a_b"), ["yes"]);
    assert_eq!(group_hosts(&list, "tag_0x1F"), ["yes"]);
    assert!(list["all"]["children"].as_array().unwrap().contains(&json!("all_")), "{list:#}");

    let original = &inv.roles[0].hosts[0];
    let vars = &list["_meta"]["hostvars"]["yes"];
    assert_eq!(vars["ansible_host"], "10.0.0.1");
    assert_eq!(vars["berth_resource"], original.resource.as_str());
    assert_eq!(vars["instance_id"], original.instance_id.as_deref().unwrap());
    assert_eq!(vars["private_ip"], "010.0.0.1");
    assert_eq!(vars["public_ip"], "1e5");
    assert_eq!(vars["dns_names"], json!(["yes", "null", "10:00"]));
    assert_eq!(vars["ansible_user"], "~");
    assert_eq!(vars["ansible_ssh_common_args"], "-o ProxyJump=ops@[2001:db8::7]");
    assert_eq!(list["_meta"]["hostvars"]["null"]["ansible_host"], "2001:db8::1");
}

#[test]
fn json_document_follows_schema_version_1() {
    let doc: Json = serde_json::from_str(&render(&sample(Format::Json))).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["inventory"], "production");
    assert_eq!(doc["roles"], json!(["web", "search-api", "workers"]));
    let names: Vec<&str> = doc["hosts"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db.internal", "micro-search.internal", "web-0", "web-1"], "each machine once, sorted");
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(
        hosts[1],
        json!({
            "name": "micro-search.internal",
            "address": "10.0.1.5",
            "resource": "module.search.aws_instance.this[0]",
            "roles": ["web", "search-api"],
            "accessories": [],
            "tags": ["canary", "eu"],
            "private_ip": "10.0.1.5",
            "public_ip": "203.0.113.10",
            "dns_names": ["micro-search.internal"],
            "instance_id": "i-0a1b2c3d4e5f60001",
        })
    );
    assert_eq!(hosts[0]["roles"], json!([]));
    assert_eq!(hosts[0]["accessories"], json!(["db"]));
    assert_eq!(hosts[0]["public_ip"], Json::Null, "unknown values are null, never absent");
    assert_eq!(hosts[3]["roles"], json!(["web", "workers"]));
    assert_eq!(hosts[3]["tags"], json!(["jobs"]));
    assert_eq!(doc["accessories"], json!([{ "name": "db", "host": "db.internal", "address": "10.0.2.7" }]));
    assert_eq!(doc["ssh"], json!({ "user": "deploy", "proxy": "root@203.0.113.7" }));
    assert_eq!(
        doc["records"],
        json!([
            { "fqdn": "api.internal", "addresses": ["10.0.1.9", "10.0.1.10"] },
            { "fqdn": "db.internal", "addresses": ["10.0.2.7"] },
            { "fqdn": "micro-search.internal", "addresses": ["10.0.1.5"] },
        ])
    );
}

#[test]
fn hosts_block_lists_records_between_markers() {
    assert_eq!(
        render(&sample(Format::Hosts)),
        "# BEGIN berth production\n\
         10.0.1.9  api.internal\n\
         10.0.1.10  api.internal\n\
         10.0.2.7  db.internal\n\
         10.0.1.5  micro-search.internal\n\
         # END berth production\n"
    );
    let mut inv = sample(Format::Hosts);
    inv.records.push(Record { fqdn: "cname.internal".into(), addresses: vec!["target.example.".into()] });
    inv.records.push(Record { fqdn: "evil\n10.6.6.6 bank.example".into(), addresses: vec!["10.0.0.1".into()] });
    let text = render(&inv);
    assert!(text.contains("# skipped \"target.example.\" for cname.internal: not an IP address\n"), "{text}");
    assert!(text.contains("# skipped \"evil\\n10.6.6.6 bank.example\": is not a host name\n"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("10.6.6.6")), "{text}");
    assert_eq!(validate(&inv).len(), 2, "{:?}", validate(&inv));
}

fn old_mtime(path: &Path) {
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(past).unwrap();
}

#[test]
fn write_if_changed_is_a_no_op_for_equal_content_and_atomic_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config/deploy.production.yml");
    let text = render(&sample(Format::Kamal));

    assert!(write_if_changed(&path, &text).unwrap(), "a new file is a change");
    // Start from a restrictive mode and an old mtime so that any rewrite shows.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    old_mtime(&path);
    let before = std::fs::metadata(&path).unwrap();

    assert!(!write_if_changed(&path, &text).unwrap());
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!((after.ino(), after.mtime(), after.mode()), (before.ino(), before.mtime(), before.mode()));

    let mut inv = sample(Format::Kamal);
    inv.roles[0].hosts.pop();
    let changed = render(&inv);
    assert!(write_if_changed(&path, &changed).unwrap());
    let after = std::fs::metadata(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), changed);
    assert_ne!(after.ino(), before.ino(), "written beside and renamed over, not truncated in place");
    assert_eq!(after.mode() & 0o777, 0o644);
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["deploy.production.yml"], "no temporary file left behind");
}

#[test]
fn unified_diff_shows_a_changed_host() {
    let old = render(&sample(Format::Kamal));
    let mut inv = sample(Format::Kamal);
    inv.roles[0].hosts.retain(|h| h.name != "web-0");
    inv.roles[0].hosts.push(host("aws_instance.web[2]", "web-2", "10.0.1.11", None, &[], "i-0a1b2c3d4e5f60004", &[]));
    let new = render(&inv);
    let diff = unified_diff("config/deploy.production.yml", &old, &new);
    assert!(diff.starts_with("--- a/config/deploy.production.yml\n+++ b/config/deploy.production.yml\n@@ "), "{diff}");
    assert!(diff.lines().any(|l| l == "-      - 10.0.1.9"), "{diff}");
    assert!(diff.lines().any(|l| l == "+      - 10.0.1.11"), "{diff}");
    insta::assert_snapshot!("kamal_diff", diff);
    assert_eq!(unified_diff("config/deploy.production.yml", &new, &new), "");
}
