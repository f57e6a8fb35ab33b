//! Every provider held to the same contract (tests/support/contract.rs):
//! each operation of a batch reported once, refresh equals apply, a re-plan
//! is a no-op, a delete leaves nothing. The AWS types are held to it on the
//! strict layer in `aws_ec2` (the example network); here the others: the
//! utility providers in-process and RFC 2136 on a real BIND9.

use crate::support;

use berth::providers::families;
use berth::value::{Value, obj};
use support::bind::{Bind, KEY_NAME};
use support::contract::Kit;

fn s(v: &str) -> Value {
    Value::str(v)
}

fn n(v: i64) -> Value {
    Value::from(v)
}

#[tokio::test]
async fn the_utility_providers_keep_the_contract() {
    let random = families::configure("random", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(random.as_ref());
    let made = [
        kit.create_steady("random_id", &[("random_id.a", obj([("byte_length", n(8))])), ("random_id.b", obj([("byte_length", n(4))]))])
            .await,
        kit.create_steady("random_string", &[("random_string.s", obj([("length", n(16)), ("special", Value::Bool(false))]))]).await,
        kit.create_steady("random_password", &[("random_password.p", obj([("length", n(24))]))]).await,
        kit.create_steady("random_integer", &[("random_integer.port", obj([("min", n(1024)), ("max", n(65535))]))]).await,
        kit.create_steady("random_pet", &[("random_pet.name", obj([("length", n(3))]))]).await,
    ]
    .concat();
    // Random values are drawn once: distinct instances differ.
    assert_ne!(made[0].state.get("hex"), made[1].state.get("hex"));
    kit.delete_all(&made).await;

    let tls = families::configure("tls", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(tls.as_ref());
    let made = kit
        .create_steady(
            "tls_private_key",
            &[
                ("tls_private_key.ed", obj([("algorithm", s("ED25519"))])),
                ("tls_private_key.rsa", obj([("algorithm", s("RSA")), ("rsa_bits", n(2048))])),
            ],
        )
        .await;
    assert!(made[0].state.get_str("public_key_openssh").unwrap_or_default().starts_with("ssh-ed25519 "));
    kit.delete_all(&made).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.txt");
    let local = families::configure("local", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(local.as_ref());
    let config = obj([("filename", s(path.to_str().unwrap())), ("content", s("10.0.1.4 micro-search\n"))]);
    let made = kit.create_steady("local_file", &[("local_file.hosts", config)]).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "10.0.1.4 micro-search\n");
    kit.delete_all(&made).await;
    assert!(!path.exists(), "the deleted file is gone");

    let null = families::configure("null", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(null.as_ref());
    let triggers = obj([("triggers", obj([("host", s("i-1"))]))]);
    let made = kit.create_steady("null_resource", &[("null_resource.deploy", triggers.clone())]).await;
    assert!(made[0].state.get_str("id").is_some_and(|id| id.chars().all(|c| c.is_ascii_digit())));
    // A trigger changed replaces it; the same triggers plan nothing.
    let ctx = kit.ctx("null_resource.deploy");
    let new = obj([("triggers", obj([("host", s("i-2"))]))]);
    let planned = null.plan(&ctx, "null_resource", Some(&made[0].state), &new).await.unwrap();
    assert_eq!(planned.requires_replace, ["triggers"]);
    kit.delete_all(&made).await;

    let time = families::configure("time", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(time.as_ref());
    let before = chrono::Utc::now().timestamp();
    let made = kit
        .create_steady(
            "time_static",
            &[
                ("time_static.created", Value::Map(Default::default())),
                ("time_static.fixed", obj([("rfc3339", s("2026-01-02T03:04:05Z"))])),
            ],
        )
        .await;
    let unix = made[0].state.get("unix").and_then(Value::as_f64).unwrap() as i64;
    assert!(unix >= before && unix <= chrono::Utc::now().timestamp(), "fixed at create: {unix}");
    assert_eq!(made[1].state.get("year"), Some(&n(2026)));
    assert_eq!(made[1].state.get_str("id"), Some("2026-01-02T03:04:05Z"));
    let ctx = kit.ctx("time_static.fixed");
    let moved = obj([("rfc3339", s("2026-01-02T03:04:06Z"))]);
    let planned = time.plan(&ctx, "time_static", Some(&made[1].state), &moved).await.unwrap();
    assert_eq!(planned.requires_replace, ["rfc3339"], "another instant replaces");
    kit.delete_all(&made).await;
    let started = std::time::Instant::now();
    let made = kit
        .create_steady("time_sleep", &[("time_sleep.settle", obj([("create_duration", s("300ms")), ("destroy_duration", s("200ms"))]))])
        .await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300), "the create waits");
    let longer = kit.update("time_sleep", "time_sleep.settle", &made[0].state, &obj([("create_duration", s("1s")), ("destroy_duration", s("200ms"))])).await;
    assert_eq!(longer.get_str("create_duration"), Some("1s"), "a new duration is an update in place");
    let started = std::time::Instant::now();
    kit.delete("time_sleep", &[("time_sleep.settle", longer)]).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "the destroy waits");

    let berth = families::configure("berth", &Value::Map(Default::default())).await.unwrap();
    let kit = Kit::new(berth.as_ref());
    let made = kit.create_steady("berth_data", &[("berth_data.x", obj([("input", s("a"))]))]).await;
    let updated = kit.update("berth_data", "berth_data.x", &made[0].state, &obj([("input", s("b"))])).await;
    assert_eq!(updated.get_str("output"), Some("b"));
    kit.delete("berth_data", &[("berth_data.x", updated)]).await;
}

#[tokio::test]
async fn rfc2136_records_keep_the_contract() {
    let bind = Bind::start();
    let block = obj([(
        "update",
        Value::List(vec![obj([
            ("server", s("127.0.0.1")),
            ("port", (bind.port as i64).into()),
            ("key_name", s(KEY_NAME)),
            ("key_algorithm", s("hmac-sha256")),
            ("key_secret", Value::Sensitive(Box::new(s(&bind.key_secret)))),
        ])]),
    )]);
    let dns = families::configure("dns", &block).await.unwrap();
    let kit = Kit::new(dns.as_ref()).with_context(|| bind.log());
    let a = |name: &str, ip: &str| {
        obj([("zone", s("internal.")), ("name", s(name)), ("addresses", Value::List(vec![s(ip)])), ("ttl", n(60))])
    };
    let mut made = kit
        .create_steady(
            "dns_a_record_set",
            &[("dns_a_record_set.search", a("micro-search", "10.0.1.4")), ("dns_a_record_set.web", a("web", "10.0.1.5"))],
        )
        .await;
    made.extend(
        kit.create_steady(
            "dns_cname_record",
            &[("dns_cname_record.www", obj([("zone", s("internal.")), ("name", s("www")), ("cname", s("web.internal."))]))],
        )
        .await,
    );
    made.extend(
        kit.create_steady(
            "dns_txt_record_set",
            &[("dns_txt_record_set.v", obj([("zone", s("internal.")), ("name", s("v")), ("txt", Value::List(vec![s("v=1")]))]))],
        )
        .await,
    );
    assert_eq!(bind.dig("micro-search.internal", "A"), vec!["10.0.1.4"]);

    // A replaced host: the record follows in place, and the contract holds
    // for the new state too.
    let moved = kit.update("dns_a_record_set", "dns_a_record_set.search", &made[0].state, &a("micro-search", "10.0.1.9")).await;
    assert_eq!(bind.dig("micro-search.internal", "A"), vec!["10.0.1.9"]);
    made[0].state = moved;
    made[0].config = a("micro-search", "10.0.1.9");
    kit.check_steady(&made).await;

    kit.delete_all(&made).await;
    assert!(bind.dig("micro-search.internal", "A").is_empty());
}

/// The README names every resource and data source type of every provider
/// berth knows, in backticks, and every provider family.
#[tokio::test]
async fn the_readme_lists_every_type() {
    use berth::addr::Mode;
    let readme = std::fs::read_to_string(support::venv::repo_root().join("README.md")).unwrap();
    let mut missing = Vec::new();
    for name in families::KNOWN_PROVIDERS {
        let p = families::for_validation(name).await.unwrap();
        for mode in [Mode::Managed, Mode::Data] {
            for t in p.type_names(mode) {
                if !readme.contains(&format!("`{t}`")) {
                    missing.push(format!("{t} ({mode:?})"));
                }
            }
        }
        if !readme.contains(&format!("`{name}`")) {
            missing.push(format!("provider {name}"));
        }
    }
    assert!(missing.is_empty(), "the README does not name {missing:?}");
}
