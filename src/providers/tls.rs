//! The `tls` provider's `tls_private_key`, spelt as Terraform's: a key made
//! once and kept in the state, typically the SSH key of a Kamal host (its
//! public half goes to `aws_key_pair`, its private half to a
//! `local_sensitive_file`).
//!
//! `algorithm` is `RSA` (default, `rsa_bits` 2048, 3072 or 4096), `ECDSA`
//! (`ecdsa_curve` P256 or P384) or `ED25519`. Keys come from aws-lc-rs,
//! AWS's libcrypto, already in berth for TLS. The private key is exported
//! as PEM (PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for Ed25519, as
//! Terraform does), as PKCS#8 PEM and in OpenSSH's format; the public key
//! as PEM (SubjectPublicKeyInfo) and in `authorized_keys` form, with its MD5
//! and SHA-256 fingerprints. Every private form is sensitive: never in a
//! plan, marked sensitive in the state. Nothing exists outside the state,
//! so the provider is [`Provider::local_only`].

use super::*;
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::signature::KeyPair;
use base64::Engine;
use sha2::Digest;
use std::sync::LazyLock;

const KEY: &str = "tls_private_key";

const PRIVATE: &[&str] = &["private_key_pem", "private_key_pem_pkcs8", "private_key_openssh"];

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let mut s = Schema::new(vec![
        Attribute::arg("algorithm").force_new(),
        Attribute::arg("rsa_bits").number().force_new(),
        Attribute::arg("ecdsa_curve").force_new(),
    ])
    .with_exported(&[
        "id",
        "private_key_pem",
        "private_key_pem_pkcs8",
        "private_key_openssh",
        "public_key_pem",
        "public_key_openssh",
        "public_key_fingerprint_md5",
        "public_key_fingerprint_sha256",
    ]);
    for a in s.attributes.iter_mut().filter(|a| PRIVATE.contains(&a.name)) {
        a.sensitive = true;
    }
    s
});

#[derive(Default)]
pub struct Tls;

fn with_defaults(config: &Value) -> Value {
    let mut m = config.as_map().cloned().unwrap_or_default();
    let mut default = |k: &str, v: Value| {
        if m.get(k).is_none_or(Value::is_null) {
            m.insert(k.into(), v);
        }
    };
    default("algorithm", Value::str("RSA"));
    default("rsa_bits", Value::Number(2048.0));
    default("ecdsa_curve", Value::str("P256"));
    Value::Map(m)
}

fn validate(config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    if let Some(a) = config.get_str("algorithm")
        && !["RSA", "ECDSA", "ED25519"].contains(&a)
    {
        errs.push(ProviderError::attr(
            "algorithm",
            format!("`algorithm` must be `RSA`, `ECDSA` or `ED25519`, not `{a}`"),
        ));
    }
    if let Some(n) = config.get("rsa_bits").and_then(Value::as_f64)
        && ![2048.0, 3072.0, 4096.0].contains(&n)
    {
        errs.push(ProviderError::attr("rsa_bits", format!("`rsa_bits` must be 2048, 3072 or 4096, not {n}")));
    }
    if let Some(c) = config.get_str("ecdsa_curve")
        && !["P256", "P384"].contains(&c)
    {
        errs.push(ProviderError::attr(
            "ecdsa_curve",
            format!("`ecdsa_curve` must be `P256` or `P384` (berth makes no P224 or P521 keys), not `{c}`"),
        ));
    }
    errs
}

fn failed(what: &str) -> ProviderError {
    ProviderError::new(format!("cannot make the key: {what}"))
}

/// PEM: the DER in base64, 64 characters a line, between the labels.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element at the start of `der`: its tag, its content and the rest.
fn der_next(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The private key inside a PKCS#8 PrivateKeyInfo (its OCTET STRING).
fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
    let (_, info, _) = der_next(der)?;
    let (_, _, rest) = der_next(info)?; // version
    let (_, _, rest) = der_next(rest)?; // algorithm
    let (tag, key, _) = der_next(rest)?;
    (tag == 0x04).then_some(key)
}

/// The INTEGERs of a DER SEQUENCE, big-endian.
fn integers(der: &[u8]) -> Option<Vec<&[u8]>> {
    let (_, mut body, _) = der_next(der)?;
    let mut out = Vec::new();
    while !body.is_empty() {
        let (tag, v, rest) = der_next(body)?;
        if tag == 0x02 {
            out.push(v);
        }
        body = rest;
    }
    Some(out)
}

/// SSH wire format: a string is its length and bytes.
fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u32).to_be_bytes());
    out.extend(s);
}

/// An SSH `mpint`: big-endian, no leading zeros, a zero byte before a set
/// high bit.
fn ssh_mpint(out: &mut Vec<u8>, n: &[u8]) {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    let mut v = Vec::with_capacity(n.len() + 1);
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend(n);
    ssh_string(out, &v);
}

/// What an algorithm's key gives the exports.
struct Made {
    /// The private key as Terraform's `private_key_pem` has it.
    pem_label: &'static str,
    pem_der: Vec<u8>,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
    /// OpenSSH: the key type, the public blob and the private fields.
    ssh_type: String,
    ssh_public: Vec<u8>,
    ssh_private: Vec<u8>,
}

fn make(config: &Value) -> ProviderResult<Made> {
    match config.get_str("algorithm").unwrap_or("RSA") {
        "ED25519" => {
            let key = aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(|_| failed("Ed25519"))?;
            let pkcs8 = key.to_pkcs8v1().map_err(|_| failed("Ed25519 PKCS#8"))?.as_ref().to_vec();
            let public = key.public_key().as_ref().to_vec();
            let seed = key.seed().map_err(|_| failed("Ed25519 seed"))?;
            let seed = AsBigEndian::as_be_bytes(&seed).map_err(|_| failed("Ed25519 seed"))?;
            let spki = key.public_key().as_der().map_err(|_| failed("Ed25519 public key"))?.as_ref().to_vec();
            let ssh_type = "ssh-ed25519".to_string();
            let mut ssh_public = Vec::new();
            ssh_string(&mut ssh_public, ssh_type.as_bytes());
            ssh_string(&mut ssh_public, &public);
            let mut ssh_private = Vec::new();
            ssh_string(&mut ssh_private, ssh_type.as_bytes());
            ssh_string(&mut ssh_private, &public);
            ssh_string(&mut ssh_private, &[seed.as_ref(), &public].concat());
            Ok(Made {
                pem_label: "PRIVATE KEY",
                pem_der: pkcs8.clone(),
                pkcs8,
                spki,
                ssh_type,
                ssh_public,
                ssh_private,
            })
        }
        "ECDSA" => {
            let (alg, curve) = match config.get_str("ecdsa_curve").unwrap_or("P256") {
                "P384" => (&aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING, "nistp384"),
                _ => (&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING, "nistp256"),
            };
            let key = aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(|_| failed("ECDSA"))?;
            let pkcs8 = key.to_pkcs8v1().map_err(|_| failed("ECDSA PKCS#8"))?.as_ref().to_vec();
            let sec1 = AsDer::as_der(&key.private_key()).map_err(|_| failed("ECDSA SEC1"))?.as_ref().to_vec();
            let d = AsBigEndian::as_be_bytes(&key.private_key()).map_err(|_| failed("ECDSA scalar"))?.as_ref().to_vec();
            let q = key.public_key().as_ref().to_vec();
            let spki = key.public_key().as_der().map_err(|_| failed("ECDSA public key"))?.as_ref().to_vec();
            let ssh_type = format!("ecdsa-sha2-{curve}");
            let mut ssh_public = Vec::new();
            ssh_string(&mut ssh_public, ssh_type.as_bytes());
            ssh_string(&mut ssh_public, curve.as_bytes());
            ssh_string(&mut ssh_public, &q);
            let mut ssh_private = Vec::new();
            ssh_string(&mut ssh_private, ssh_type.as_bytes());
            ssh_string(&mut ssh_private, curve.as_bytes());
            ssh_string(&mut ssh_private, &q);
            ssh_mpint(&mut ssh_private, &d);
            Ok(Made { pem_label: "EC PRIVATE KEY", pem_der: sec1, pkcs8, spki, ssh_type, ssh_public, ssh_private })
        }
        _ => {
            let size = match config.get("rsa_bits").and_then(Value::as_f64).unwrap_or(2048.0) as u32 {
                3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                _ => aws_lc_rs::rsa::KeySize::Rsa2048,
            };
            let key = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|_| failed("RSA"))?;
            let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().map_err(|_| failed("RSA PKCS#8"))?;
            let pkcs8 = pkcs8.as_ref().to_vec();
            let pkcs1 = pkcs8_inner(&pkcs8).ok_or_else(|| failed("RSA PKCS#1"))?.to_vec();
            // RSAPrivateKey: version, n, e, d, p, q, dp, dq, qinv.
            let ints = integers(&pkcs1).filter(|i| i.len() >= 9).ok_or_else(|| failed("RSA fields"))?;
            let (n, e, d, p, q, qinv) = (ints[1], ints[2], ints[3], ints[4], ints[5], ints[8]);
            let spki = key.public_key().as_der().map_err(|_| failed("RSA public key"))?.as_ref().to_vec();
            let ssh_type = "ssh-rsa".to_string();
            let mut ssh_public = Vec::new();
            ssh_string(&mut ssh_public, ssh_type.as_bytes());
            ssh_mpint(&mut ssh_public, e);
            ssh_mpint(&mut ssh_public, n);
            let mut ssh_private = Vec::new();
            ssh_string(&mut ssh_private, ssh_type.as_bytes());
            for v in [n, e, d, qinv, p, q] {
                ssh_mpint(&mut ssh_private, v);
            }
            Ok(Made { pem_label: "RSA PRIVATE KEY", pem_der: pkcs1, pkcs8, spki, ssh_type, ssh_public, ssh_private })
        }
    }
}

/// The private key in OpenSSH's format (`openssh-key-v1`, not encrypted).
fn openssh_private(m: &Made) -> String {
    use rand::RngExt;
    let check: u32 = rand::rng().random();
    let mut private = Vec::new();
    private.extend(check.to_be_bytes());
    private.extend(check.to_be_bytes());
    private.extend(&m.ssh_private);
    ssh_string(&mut private, b"");
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut out = b"openssh-key-v1\0".to_vec();
    ssh_string(&mut out, b"none");
    ssh_string(&mut out, b"none");
    ssh_string(&mut out, b"");
    out.extend(1u32.to_be_bytes());
    ssh_string(&mut out, &m.ssh_public);
    ssh_string(&mut out, &private);
    // OpenSSH writes this format 70 characters a line.
    let b64 = base64::engine::general_purpose::STANDARD.encode(out);
    let mut text = "-----BEGIN OPENSSH PRIVATE KEY-----\n".to_string();
    for chunk in b64.as_bytes().chunks(70) {
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    text
}

fn create(planned: &Value) -> ProviderResult<Value> {
    let made = make(planned)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let md5: Vec<String> = md5::Md5::digest(&made.ssh_public).iter().map(|b| format!("{b:02x}")).collect();
    let sha256 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(&made.ssh_public));
    let secret = |s: String| Value::Sensitive(Box::new(Value::String(s)));
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    m.insert("id".into(), Value::String(hex::encode(sha2::Sha256::digest(&made.spki))));
    m.insert("private_key_pem".into(), secret(pem(made.pem_label, &made.pem_der)));
    m.insert("private_key_pem_pkcs8".into(), secret(pem("PRIVATE KEY", &made.pkcs8)));
    m.insert("private_key_openssh".into(), secret(openssh_private(&made)));
    m.insert("public_key_pem".into(), Value::String(pem("PUBLIC KEY", &made.spki)));
    m.insert("public_key_openssh".into(), Value::String(format!("{} {}\n", made.ssh_type, b64(&made.ssh_public))));
    m.insert("public_key_fingerprint_md5".into(), Value::String(md5.join(":")));
    m.insert("public_key_fingerprint_sha256".into(), Value::String(format!("SHA256:{sha256}")));
    Ok(Value::Map(m))
}

#[async_trait]
impl Provider for Tls {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        (mode == Mode::Managed && type_ == KEY).then_some(&*SCHEMA)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { vec![KEY] } else { Vec::new() }
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, _mode: Mode, _type_: &str, config: &Value) -> Vec<ProviderError> {
        validate(config)
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        items.into_iter().map(|(_, v)| Ok(Some(v))).collect()
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        if type_ != KEY {
            return Err(ProviderError::new(format!("the `tls` provider has no type `{type_}`")));
        }
        if let Some(e) = validate(config).into_iter().next() {
            return Err(e);
        }
        Ok(plan_from_schema(&SCHEMA, prior, &with_defaults(config)))
    }

    async fn apply(&self, _type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        // RSA key generation takes a while: off the async threads.
        apply_each(ops, sink, 4, |op| async move {
            match op.kind {
                ChangeKind::Create { planned } => match tokio::task::spawn_blocking(move || create(&planned)).await {
                    Ok(Ok(v)) => ApplyOutcome::ok(Some(v)),
                    Ok(Err(e)) => ApplyOutcome::failed(None, e),
                    Err(e) => ApplyOutcome::failed(None, ProviderError::new(format!("key generation stopped: {e}"))),
                },
                ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
                ChangeKind::Delete { .. } => ApplyOutcome::ok(None),
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the `tls` provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn key(alg: &str) -> Value {
        create(&with_defaults(&obj([("algorithm", Value::str(alg))]))).unwrap()
    }

    #[test]
    fn every_algorithm_gives_every_form() {
        for (alg, label, ssh) in [
            ("ED25519", "PRIVATE KEY", "ssh-ed25519 "),
            ("ECDSA", "EC PRIVATE KEY", "ecdsa-sha2-nistp256 "),
            ("RSA", "RSA PRIVATE KEY", "ssh-rsa "),
        ] {
            let k = key(alg);
            let private = |a: &str| match k.get(a) {
                Some(Value::Sensitive(v)) => v.as_str().unwrap().to_string(),
                other => panic!("{alg} {a} is not sensitive: {other:?}"),
            };
            assert!(private("private_key_pem").starts_with(&format!("-----BEGIN {label}-----\n")), "{alg}");
            assert!(private("private_key_pem_pkcs8").starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert!(private("private_key_openssh").starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
            assert!(k.get_str("public_key_openssh").unwrap().starts_with(ssh), "{alg}");
            assert!(k.get_str("public_key_pem").unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
            assert!(k.get_str("public_key_fingerprint_sha256").unwrap().starts_with("SHA256:"));
            assert_eq!(k.get_str("public_key_fingerprint_md5").unwrap().split(':').count(), 16);
        }
        assert_ne!(key("ED25519").get_str("id"), key("ED25519").get_str("id"), "every key is new");
    }

    #[test]
    fn mpints_and_der_read_as_ssh_and_asn1_want() {
        let mut out = Vec::new();
        ssh_mpint(&mut out, &[0x00, 0x80, 0x01]);
        assert_eq!(out, [0, 0, 0, 3, 0x00, 0x80, 0x01]);
        let mut out = Vec::new();
        ssh_mpint(&mut out, &[0x00, 0x00, 0x7f]);
        assert_eq!(out, [0, 0, 0, 1, 0x7f]);
        // SEQUENCE { INTEGER 5, INTEGER 300 }
        let der = [0x30, 0x07, 0x02, 0x01, 0x05, 0x02, 0x02, 0x01, 0x2c];
        assert_eq!(integers(&der).unwrap(), vec![&[5u8][..], &[1, 0x2c][..]]);
        assert!(validate(&obj([("ecdsa_curve", Value::str("P224"))]))[0].message.contains("P224"));
    }
}
