//! The `dns` provider against a real BIND9: records written with RFC 2136
//! updates signed by TSIG are checked with `dig`, drift is made with
//! `nsupdate`, and key and policy failures come back as clear errors.

use crate::support;

use berth::providers::dns::DnsProvider;
use berth::providers::{ApplyOp, ApplyOutcome, ChangeKind, OpContext, Provider};
use berth::value::{Value, obj};
use support::bind::{Bind, KEY_NAME};

fn block(bind: &Bind, extra: Vec<(&str, Value)>) -> Value {
    let mut items = vec![
        ("server", Value::from("127.0.0.1")),
        ("port", Value::from(bind.port as i64)),
        ("key_name", Value::from(KEY_NAME)),
        ("key_algorithm", Value::from("hmac-sha256")),
        ("key_secret", Value::Sensitive(Box::new(bind.key_secret.clone().into()))),
    ];
    for (k, v) in extra {
        items.retain(|(name, _)| *name != k);
        if !v.is_null() {
            items.push((k, v));
        }
    }
    obj([("update", Value::List(vec![obj(items)]))])
}

fn provider(bind: &Bind) -> DnsProvider {
    DnsProvider::configure(&block(bind, vec![])).expect("configure dns provider")
}

fn ctx(type_: &str, name: &str) -> OpContext {
    OpContext::new(format!("{type_}.{name}").parse().unwrap(), "test", 1)
}

fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

fn a_config(name: &str, addresses: &[&str], ttl: i64) -> Value {
    obj([
        ("zone", "internal.".into()),
        ("name", name.into()),
        ("addresses", strings(addresses)),
        ("ttl", ttl.into()),
    ])
}

/// Runs one batch and returns the outcomes in batch order, checking that
/// every operation reported exactly once.
async fn apply(p: &DnsProvider, type_: &str, ops: Vec<ApplyOp>) -> Vec<ApplyOutcome> {
    support::contract::Kit::new(p).apply(type_, ops).await
}

async fn create(p: &DnsProvider, type_: &str, name: &str, config: &Value) -> ApplyOutcome {
    let c = ctx(type_, name);
    let planned = p.plan(&c, type_, None, config).await.expect("plan").after;
    apply(p, type_, vec![ApplyOp { ctx: c, kind: ChangeKind::Create { planned } }]).await.remove(0)
}

async fn refresh_one(p: &DnsProvider, type_: &str, state: &Value) -> Option<Value> {
    p.refresh(type_, vec![(ctx(type_, "r"), state.clone())]).await.remove(0).expect("refresh")
}

#[tokio::test]
async fn an_a_record_lives_through_create_update_drift_and_delete() {
    let bind = Bind::start();
    let p = provider(&bind);
    let t = "dns_a_record_set";

    let created = create(&p, t, "search", &a_config("micro-search", &["10.0.0.5"], 60)).await;
    assert!(created.error.is_none(), "{:?}\n{}", created.error, bind.log());
    let state = created.state.expect("state after create");
    assert_eq!(state.get_str("id"), Some("micro-search.internal."));
    assert_eq!(bind.dig("micro-search.internal", "A"), vec!["10.0.0.5"]);
    assert_eq!(bind.dig_ttl("micro-search.internal", "A"), 60);

    // Refresh reads the same thing back: no diff.
    let refreshed = refresh_one(&p, t, &state).await.expect("record exists");
    assert!(refreshed.same_as(&state), "{refreshed} != {state}");

    // Update: the host moved; two addresses, a new TTL.
    let c = ctx(t, "search");
    let config = a_config("micro-search", &["10.0.0.7", "10.0.0.6"], 120);
    let planned = p.plan(&c, t, Some(&refreshed), &config).await.unwrap();
    assert!(planned.requires_replace.is_empty());
    let out = apply(&p, t, vec![ApplyOp { ctx: c, kind: ChangeKind::Update { prior: refreshed, planned: planned.after } }])
        .await
        .remove(0);
    assert!(out.error.is_none(), "{:?}", out.error);
    let state = out.state.unwrap();
    assert_eq!(bind.dig("micro-search.internal", "A"), vec!["10.0.0.6", "10.0.0.7"]);
    assert_eq!(bind.dig_ttl("micro-search.internal", "A"), 120);
    assert_eq!(state.get("addresses"), Some(&strings(&["10.0.0.6", "10.0.0.7"])));

    // Someone else changes the record: refresh sees the drift.
    bind.nsupdate("update delete micro-search.internal. A\nupdate add micro-search.internal. 30 A 10.9.9.9");
    let drifted = refresh_one(&p, t, &state).await.expect("record exists");
    assert_eq!(drifted.get("addresses"), Some(&strings(&["10.9.9.9"])));
    assert_eq!(drifted.get("ttl"), Some(&Value::Number(30.0)));
    // ... and the next plan wants to put it back.
    let replan = p.plan(&ctx(t, "search"), t, Some(&drifted), &config).await.unwrap();
    assert!(!replan.after.same_as(&drifted));

    // Delete: the name is gone.
    let out = apply(&p, t, vec![ApplyOp { ctx: ctx(t, "search"), kind: ChangeKind::Delete { prior: drifted.clone() } }])
        .await
        .remove(0);
    assert!(out.error.is_none() && out.state.is_none(), "{:?}", out.error);
    assert_eq!(bind.dig_status("micro-search.internal", "A"), "NXDOMAIN");
    assert_eq!(refresh_one(&p, t, &drifted).await, None);
}

#[tokio::test]
async fn a_wrong_secret_is_a_clear_error_that_never_shows_the_secret() {
    use base64::Engine as _;
    let bind = Bind::start();
    let wrong = base64::engine::general_purpose::STANDARD.encode(b"definitely-not-the-right-key-000");
    let p = DnsProvider::configure(&block(&bind, vec![("key_secret", Value::Sensitive(Box::new(wrong.clone().into())))]))
        .unwrap();

    let out = create(&p, "dns_a_record_set", "search", &a_config("micro-search", &["10.0.0.5"], 60)).await;
    let err = out.error.expect("a wrong key must fail");
    assert!(out.state.is_none());
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "DNS server {} refused the update for `micro-search.internal.`: TSIG key `berth-key` was not accepted (NOTAUTH, BADSIG)",
            bind.addr()
        )),
        "{msg}"
    );
    assert!(!msg.contains(&wrong) && !msg.contains(&bind.key_secret), "{msg}");
    assert!(!format!("{p:?}").contains(&wrong), "Debug shows the secret");
    assert_eq!(bind.dig_status("micro-search.internal", "A"), "NXDOMAIN");

    // Refresh queries are signed too, and fail the same way.
    let state = a_config("micro-search", &["10.0.0.5"], 60);
    let err = p.refresh("dns_a_record_set", vec![(ctx("dns_a_record_set", "s"), state)]).await.remove(0).unwrap_err();
    assert!(err.message.contains("TSIG key `berth-key` was not accepted"), "{}", err.message);
}

#[tokio::test]
async fn an_unknown_key_name_is_badkey_and_unsigned_updates_are_refused() {
    let bind = Bind::start();
    let p = DnsProvider::configure(&block(&bind, vec![("key_name", "nobody-key".into())])).unwrap();
    let err = create(&p, "dns_a_record_set", "x", &a_config("x", &["10.0.0.1"], 60)).await.error.unwrap();
    assert!(err.message.contains("TSIG key `nobody-key` was not accepted (NOTAUTH, BADKEY)"), "{}", err.message);

    let unsigned = DnsProvider::configure(&block(
        &bind,
        vec![("key_name", Value::Null), ("key_algorithm", Value::Null), ("key_secret", Value::Null)],
    ))
    .unwrap();
    let err = create(&unsigned, "dns_a_record_set", "x", &a_config("x", &["10.0.0.1"], 60)).await.error.unwrap();
    assert!(err.message.contains("(REFUSED)") && err.message.contains("`allow-update`"), "{}", err.message);
    assert_eq!(bind.dig_status("x.internal", "A"), "NXDOMAIN");
}

#[tokio::test]
async fn a_zone_the_server_does_not_serve_is_named() {
    let bind = Bind::start();
    let p = provider(&bind);
    let config = obj([("zone", "elsewhere.".into()), ("name", "x".into()), ("addresses", strings(&["10.0.0.1"]))]);
    let err = create(&p, "dns_a_record_set", "x", &config).await.error.unwrap();
    assert!(err.message.contains("`x.elsewhere.`") && err.message.contains("NOTAUTH"), "{}", err.message);
    assert!(err.message.contains("zone `elsewhere.`"), "{}", err.message);
}

#[tokio::test]
async fn cname_txt_and_aaaa_round_trip() {
    let bind = Bind::start();
    let p = provider(&bind);

    let cname = obj([("zone", "internal.".into()), ("name", "www".into()), ("cname", "micro-search.internal.".into())]);
    let out = create(&p, "dns_cname_record", "www", &cname).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let state = out.state.unwrap();
    assert_eq!(bind.dig("www.internal", "CNAME"), vec!["micro-search.internal."]);
    assert_eq!(bind.dig_ttl("www.internal", "CNAME"), 3600, "the default TTL");
    let back = refresh_one(&p, "dns_cname_record", &state).await.unwrap();
    assert!(back.same_as(&state), "{back} != {state}");

    let long = "v=long;".repeat(60); // 420 bytes: split across character-strings
    let txt = obj([
        ("zone", "internal.".into()),
        ("name", "_acme-challenge".into()),
        ("txt", strings(&["hello world", "with \"quotes\"", &long])),
        ("ttl", 300i64.into()),
    ]);
    let out = create(&p, "dns_txt_record_set", "acme", &txt).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let state = out.state.unwrap();
    let dug = bind.dig("_acme-challenge.internal", "TXT");
    assert_eq!(dug.len(), 3, "{dug:?}");
    assert!(dug.contains(&"\"hello world\"".to_string()), "{dug:?}");
    assert!(dug.contains(&"\"with \\\"quotes\\\"\"".to_string()), "{dug:?}");
    let back = refresh_one(&p, "dns_txt_record_set", &state).await.unwrap();
    assert!(back.same_as(&state), "{back} != {state}");

    let v6 = obj([
        ("zone", "internal.".into()),
        ("name", "micro-search".into()),
        ("addresses", strings(&["2001:DB8::10", "2001:db8::2"])),
    ]);
    let out = create(&p, "dns_aaaa_record_set", "search6", &v6).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let state = out.state.unwrap();
    assert_eq!(bind.dig("micro-search.internal", "AAAA"), vec!["2001:db8::10", "2001:db8::2"]);
    let back = refresh_one(&p, "dns_aaaa_record_set", &state).await.unwrap();
    assert!(back.same_as(&state), "{back} != {state}");
}

#[tokio::test]
async fn an_update_the_server_ignores_is_not_recorded_as_done() {
    // RFC 2136 §3.4.2.2: a CNAME added where other data exists is silently
    // ignored. berth reads back and reports it instead of believing it.
    let bind = Bind::start();
    let p = provider(&bind);
    assert!(create(&p, "dns_a_record_set", "a", &a_config("busy", &["10.0.0.1"], 60)).await.error.is_none());
    let cname = obj([("zone", "internal.".into()), ("name", "busy".into()), ("cname", "other.internal.".into())]);
    let out = create(&p, "dns_cname_record", "busy", &cname).await;
    let err = out.error.expect("the ignored CNAME must be reported");
    assert!(err.message.contains("accepted the update for `busy.internal.` but now serves nothing"), "{}", err.message);
    assert!(out.state.is_none());
    assert_eq!(bind.dig("busy.internal", "A"), vec!["10.0.0.1"]);
}

#[tokio::test]
async fn a_batch_of_fifty_records_applies_concurrently() {
    let bind = Bind::start();
    let p = provider(&bind);
    let t = "dns_a_record_set";
    let mut ops = Vec::new();
    for i in 0..50 {
        let c = ctx(t, &format!("host{i}"));
        let config = a_config(&format!("host-{i}"), &[&format!("10.1.0.{}", i + 1)], 60);
        let planned = p.plan(&c, t, None, &config).await.unwrap().after;
        ops.push(ApplyOp { ctx: c, kind: ChangeKind::Create { planned } });
    }
    let outcomes = apply(&p, t, ops).await;
    let mut states = Vec::new();
    for (i, out) in outcomes.into_iter().enumerate() {
        assert!(out.error.is_none(), "host-{i}: {:?}\n{}", out.error, bind.log());
        states.push(out.state.unwrap());
    }
    for i in [0, 17, 49] {
        assert_eq!(bind.dig(&format!("host-{i}.internal"), "A"), vec![format!("10.1.0.{}", i + 1)]);
    }
    // One refresh batch reads them all back, in order.
    let items = states.iter().enumerate().map(|(i, s)| (ctx(t, &format!("host{i}")), s.clone())).collect();
    let refreshed = p.refresh(t, items).await;
    assert_eq!(refreshed.len(), 50);
    for (i, r) in refreshed.into_iter().enumerate() {
        let r = r.expect("refresh").expect("exists");
        assert!(r.same_as(&states[i]), "host-{i}: {r} != {}", states[i]);
    }
}

#[tokio::test]
async fn udp_transport_works_too() {
    let bind = Bind::start();
    let p = DnsProvider::configure(&block(&bind, vec![("transport", "udp".into())])).unwrap();
    let out = create(&p, "dns_a_record_set", "u", &a_config("over-udp", &["10.2.0.1"], 60)).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(bind.dig("over-udp.internal", "A"), vec!["10.2.0.1"]);
    assert!(refresh_one(&p, "dns_a_record_set", &out.state.unwrap()).await.is_some());
}

#[tokio::test]
async fn a_silent_server_times_out_with_its_address_named() {
    // A listener that accepts and never answers: the timeout path, no DNS involved.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let cfg = obj([(
        "update",
        Value::List(vec![obj([
            ("server", "127.0.0.1".into()),
            ("port", (port as i64).into()),
            ("timeout", "300ms".into()),
            ("retries", 1i64.into()),
        ])]),
    )]);
    let p = DnsProvider::configure(&cfg).unwrap();
    let err = create(&p, "dns_a_record_set", "x", &a_config("x", &["10.0.0.1"], 60)).await.error.unwrap();
    assert_eq!(
        err.message,
        format!(
            "DNS server 127.0.0.1:{port} did not answer the update for `x.internal.` within 300ms (2 attempts over tcp)"
        )
    );
    hold.abort();
}
