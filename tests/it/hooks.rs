//! `hook "on_replace"` on the Kamal example, on moto behind the strict AWS
//! layer: `berth apply --replace` of the search host runs the hook once,
//! after the DNS record and the inventory moved to the new host, with the
//! host's old and new ids and addresses, DNS name and Kamal role and
//! destination in its environment; the `known_hosts` file loses the lines
//! of the old and new addresses and of the name (hashed ones too) and
//! nothing else; a failing hook fails the apply but the new host stays
//! recorded.

use crate::support;

use std::collections::BTreeMap;
use support::aws::Aws;
use support::cli::{Run, Work};

const EXAMPLE: &str = "examples/kamal-microservices";
const SEARCH: &str = "module.search.aws_instance.this";

fn setup(w: &Work) {
    let root = support::venv::repo_root();
    for (from, to) in [(EXAMPLE, EXAMPLE), ("modules/kamal-host", "modules/kamal-host"), ("modules/private-network", "modules/private-network")] {
        for e in std::fs::read_dir(root.join(from)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "hcl") {
                w.write(&format!("{to}/{}", p.file_name().unwrap().to_str().unwrap()), &std::fs::read_to_string(&p).unwrap());
            }
        }
    }
}

fn berth(w: &Work, moto: &Aws, args: &[&str]) -> Run {
    let args: Vec<&str> = args.iter().copied().chain(["--var", "health_check=false"]).collect();
    moto.berth(w, Some(EXAMPLE), &args)
}

fn attr(w: &Work, addr: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&w.read(&format!("{EXAMPLE}/state/default.json"))).unwrap();
    v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == addr && r["deposed"].is_null())
        .map(|r| r["attributes"][key].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// `KEY=value` lines as a map.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A `known_hosts` line for `host` with its name hashed, as `ssh-keygen -H`
/// writes it; computed by hand when ssh-keygen is not installed.
fn hashed_line(dir: &std::path::Path, host: &str, key: &str) -> String {
    let plain = dir.join("to-hash");
    std::fs::write(&plain, format!("{host} {key}\n")).unwrap();
    let hashed = std::process::Command::new("ssh-keygen").arg("-H").arg("-f").arg(&plain).output();
    if hashed.is_ok_and(|o| o.status.success()) {
        let text = std::fs::read_to_string(&plain).unwrap();
        let line = text.lines().find(|l| l.starts_with("|1|")).expect("a hashed line").to_string();
        assert!(!line.contains(host), "{line}");
        return format!("{line}\n");
    }
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let salt = b"twenty bytes of salt";
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
    mac.update(host.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("|1|{}|{} {key}\n", b64.encode(salt), b64.encode(mac.finalize().into_bytes()))
}

const HOOK: &str = r#"
hook "on_replace" {
  # Its environment, and the inventory as the hook finds it.
  command     = "env | grep '^BERTH_' | sort > hook-$BERTH_NEW_ID.env && cp \"$BERTH_KAMAL_CONFIG\" hook-$BERTH_NEW_ID.yml"
  timeout     = "2m"
  known_hosts = "known_hosts"
}
"#;

#[test]
fn a_replaced_host_runs_the_hook_with_its_environment() {
    use std::os::unix::fs::PermissionsExt;
    let moto = Aws::start();
    let w = Work::new();
    setup(&w);
    w.write(&format!("{EXAMPLE}/hook.hcl"), HOOK);
    berth(&w, &moto, &["apply", "--auto-approve"]).assert_ok();
    let hook_files = || {
        std::fs::read_dir(w.path().join(EXAMPLE))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("hook-"))
            .count()
    };
    assert_eq!(hook_files(), 0, "nothing was replaced: no hook");

    let (old_id, old_ip) = (attr(&w, SEARCH, "id"), attr(&w, SEARCH, "private_ip"));
    let core_ip = attr(&w, "module.core.aws_instance.this", "private_ip");
    let dir = w.path().join(EXAMPLE);
    let known = format!(
        "# hosts I trust\n{old_ip} ssh-ed25519 AAAAold\n{core_ip} ssh-ed25519 AAAAcore\n{}",
        hashed_line(&dir, "micro-search.internal", "ssh-ed25519 AAAAname")
    );
    let known_path = dir.join("known_hosts");
    std::fs::write(&known_path, &known).unwrap();
    std::fs::set_permissions(&known_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let r = berth(&w, &moto, &["apply", "--auto-approve", "--replace", SEARCH]);
    r.assert_ok();
    let (new_id, new_ip) = (attr(&w, SEARCH, "id"), attr(&w, SEARCH, "private_ip"));
    assert_ne!(new_id, old_id);
    let env = env_file(&w.read(&format!("{EXAMPLE}/hook-{new_id}.env")));
    let want = [
        ("BERTH_HOOK", "on_replace"),
        ("BERTH_ADDRESS", SEARCH),
        ("BERTH_OLD_ID", &old_id),
        ("BERTH_NEW_ID", &new_id),
        ("BERTH_OLD_HOST", &old_ip),
        ("BERTH_NEW_HOST", &new_ip),
        ("BERTH_OLD_PRIVATE_IP", &old_ip),
        ("BERTH_NEW_PRIVATE_IP", &new_ip),
        ("BERTH_DNS_NAME", "micro-search.internal"),
        ("BERTH_KAMAL_ROLE", "web"),
        ("BERTH_KAMAL_DESTINATION", "production"),
        ("BERTH_KAMAL_CONFIG", "search/config/deploy.production.yml"),
    ];
    for (k, v) in want {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}: {env:?}");
    }
    assert_eq!(hook_files(), 2, "one run for the one replaced host");
    // It ran once the inventory named the new host.
    let inventory = w.read(&format!("{EXAMPLE}/hook-{new_id}.yml"));
    assert!(inventory.contains(&format!("- {new_ip}")) && !inventory.contains(&old_ip), "{inventory}");
    let e = &r.stderr;
    let wrote = e.find("inventory `search`: wrote").expect("inventory rewritten");
    let ran = e.find(&format!("hook `on_replace` for `{SEARCH}`: running")).expect("hook started");
    assert!(e.contains(&format!("hook `on_replace` for `{SEARCH}`: finished")), "{e}");
    assert!(wrote < ran, "{e}");
    assert!(e.contains("removed 2 line(s) of the replaced host"), "{e}");

    // Only the search host's lines went, the hashed one too; the mode stayed.
    assert_eq!(std::fs::read_to_string(&known_path).unwrap(), format!("# hosts I trust\n{core_ip} ssh-ed25519 AAAAcore\n"));
    assert_eq!(std::fs::metadata(&known_path).unwrap().permissions().mode() & 0o777, 0o600);

    // A failing hook fails the apply; what was built stays recorded.
    w.write(&format!("{EXAMPLE}/hook.hcl"), "hook \"on_replace\" {\n  command = [\"sh\", \"-c\", \"echo hook-says-no >&2; exit 3\"]\n}\n");
    let r = berth(&w, &moto, &["apply", "--auto-approve", "--replace", SEARCH]);
    r.assert_code(1);
    assert!(r.stderr.contains(&format!("failed: `hook `on_replace` for `{SEARCH}``: the `sh` failed with exit status 3")), "{}", r.stderr);
    assert!(r.stderr.contains("hook-says-no"), "its output shows: {}", r.stderr);
    let newest = attr(&w, SEARCH, "id");
    assert!(!newest.is_empty() && newest != new_id, "the new host is recorded");
    berth(&w, &moto, &["plan", "--detailed-exitcode"]).assert_code(0);

    berth(&w, &moto, &["destroy", "--auto-approve"]).assert_ok();
}
