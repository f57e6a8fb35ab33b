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
