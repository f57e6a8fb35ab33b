//! Placeholder until the function library lands (merged from its branch).
use crate::value::Value;
pub struct FuncContext<'a> { pub base_dir: &'a std::path::Path }
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FuncError(pub String);
pub fn exists(name: &str) -> bool { names().contains(&name) }
pub fn names() -> &'static [&'static str] { &["upper"] }
pub fn call(name: &str, args: Vec<Value>, _ctx: &FuncContext) -> Result<Value, FuncError> {
    if args.iter().any(|a| !a.is_known()) { return Ok(Value::Unknown); }
    let mut s = false;
    let args: Vec<Value> = args.into_iter().map(|a| { let (v, m) = a.into_unmarked(); s |= m; v }).collect();
    match (name, args.as_slice()) {
        ("upper", [Value::String(x)]) => Ok(Value::String(x.to_uppercase()).mark_if(s)),
        _ => Err(FuncError(format!("{name}: bad arguments"))),
    }
}
