//! Hashes of strings: SHA-2 digests in hex and base64.

use super::*;

pub(super) fn base64sha256(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(sha2::Sha256::digest(a.string(0)?)),
    ))
}

pub(super) fn base64sha512(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(sha2::Sha512::digest(a.string(0)?)),
    ))
}

pub(super) fn sha256(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(sha2::Sha256::digest(
        a.string(0)?,
    ))))
}

pub(super) fn sha512(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(sha2::Sha512::digest(
        a.string(0)?,
    ))))
}

pub(super) fn md5(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(md5::Md5::digest(a.string(0)?))))
}

pub(super) fn sha1(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(sha1::Sha1::digest(a.string(0)?))))
}

/// A random version 4 UUID: a new one on every call, as in Terraform.
pub(super) fn uuid(_: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(uuid::Uuid::new_v4().to_string()))
}

/// A name-based version 5 UUID in the namespace `dns`, `url`, `oid`,
/// `x500` or a UUID given in full.
pub(super) fn uuidv5(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let ns = a.string(0)?;
    let namespace = match ns.as_str() {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other).map_err(|_| {
            format!(
                "the namespace must be `dns`, `url`, `oid`, `x500` or a UUID, got {}",
                q(other)
            )
        })?,
    };
    Ok(Value::String(
        uuid::Uuid::new_v5(&namespace, a.string(1)?.as_bytes()).to_string(),
    ))
}

/// A bcrypt hash with a random salt (so a new value on every call), cost 10
/// unless given. Terraform writes the `$2a$` variant.
pub(super) fn bcrypt(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let password = a.string(0)?;
    let cost = if a.len() > 1 { a.int(1)? } else { 10 };
    // As Terraform: a cost below the minimum means the default.
    let cost = if cost < 4 { 10 } else { cost };
    if cost > 31 {
        return Err(format!("the cost must be at most 31, got {}", qn(cost)));
    }
    let hash = ::bcrypt::hash_with_result(password, cost as u32)
        .map_err(|e| format!("cannot hash: {e}"))?;
    Ok(Value::String(
        hash.format_for_version(::bcrypt::Version::TwoA),
    ))
}

/// Decrypts a base64 RSA PKCS #1 v1.5 ciphertext with a PEM private key
/// (PKCS #1 or PKCS #8).
pub(super) fn rsadecrypt(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let cipher = BASE64
        .decode(a.string(0)?.trim())
        .map_err(|_| "argument 1 is not valid base64".to_string())?;
    let pem = a.string(1)?;
    let key = rsa::PrivateKey::from_pkcs1_pem(&pem)
        .or_else(|_| rsa::PrivateKey::from_pkcs8_pem(&pem))
        .map_err(|_| "argument 2 is not a PEM RSA private key".to_string())?;
    let plain = key
        .decrypt(rsa::Pkcs1v15Encrypt, &cipher)
        .map_err(|_| "the ciphertext cannot be decrypted with this key".to_string())?;
    String::from_utf8(plain)
        .map(Value::String)
        .map_err(|_| "the decrypted text is not valid UTF-8".to_string())
}
