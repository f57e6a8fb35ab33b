//! Type conversions (`tostring`, `tolist`, ...) and the mark functions
//! (`sensitive`, `nonsensitive`).

use super::*;

pub(super) fn passthrough(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // `call` handles `sensitive` and `nonsensitive` before getting here.
    Ok(a.take(0))
}

pub(super) fn tostring(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.arg(0) {
        Value::Null => Ok(Value::Null),
        v @ (Value::String(_) | Value::Number(_) | Value::BigNumber(_) | Value::Bool(_)) => {
            Ok(Value::String(to_string(v, "")?))
        }
        other => Err(format!("cannot convert a {} to a string", type_name(other))),
    }
}

pub(super) fn tonumber(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.take(0) {
        Value::Null => Ok(Value::Null),
        v @ (Value::Number(_) | Value::BigNumber(_)) => Ok(v),
        Value::String(s) => match crate::config::types::parse_number(&s) {
            Some(n) => Ok(n),
            None => Err(format!("cannot convert {} to a number", q(&s))),
        },
        other => Err(format!(
            "cannot convert a {} to a number",
            type_name(&other)
        )),
    }
}

pub(super) fn tobool(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.arg(0) {
        Value::Null => Ok(Value::Null),
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::String(s) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "cannot convert {} to a bool; only `true` and `false` are",
                q(s)
            )),
        },
        other => Err(format!("cannot convert a {} to a bool", type_name(other))),
    }
}

/// Converts to a collection type, unifying the element types as Terraform
/// does: `tolist([1, "a"])` is `["1", "a"]`.
fn to_collection(v: Value, ty: Type, what: &str) -> Result<Value, String> {
    let ok = match (&v, &ty) {
        (Value::Null, _) => return Ok(Value::Null),
        (Value::List(_) | Value::Set(_), Type::List(_) | Type::Set(_)) => true,
        (Value::Map(_), Type::Map(_)) => true,
        _ => false,
    };
    if !ok {
        return Err(format!("cannot convert a {} to a {what}", type_name(&v)));
    }
    let from = Type::of(&v).friendly();
    ty.convert(v).map_err(|e| {
        if e.contains("any single type") {
            format!("cannot convert {from} to {what} of any single type")
        } else {
            e
        }
    })
}

pub(super) fn tolist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    to_collection(a.take(0), Type::List(Box::new(Type::Any)), "list")
}

pub(super) fn toset(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    to_collection(a.take(0), Type::Set(Box::new(Type::Any)), "set")
}

pub(super) fn tomap(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    to_collection(a.take(0), Type::Map(Box::new(Type::Any)), "map")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn conversions() {
        assert_eq!(ok("tostring", vec![n(1.0)]), s("1"));
        assert_eq!(ok("tostring", vec![n(1.5)]), s("1.5"));
        assert_eq!(ok("tostring", vec![Value::Bool(true)]), s("true"));
        assert_eq!(ok("tostring", vec![Value::Null]), Value::Null);
        assert_eq!(
            err("tostring", vec![ls(&[])]),
            "tostring: cannot convert a list to a string"
        );
        assert_eq!(ok("tonumber", vec![s("1")]), n(1.0));
        assert_eq!(ok("tonumber", vec![s("-1.5e3")]), n(-1500.0));
        assert_eq!(ok("tonumber", vec![Value::Null]), Value::Null);
        assert_eq!(
            err("tonumber", vec![s("no")]),
            "tonumber: cannot convert `no` to a number"
        );
        assert_eq!(
            err("tonumber", vec![s("NaN")]),
            "tonumber: cannot convert `NaN` to a number"
        );
        assert_eq!(
            err("tonumber", vec![Value::Bool(true)]),
            "tonumber: cannot convert a bool to a number"
        );
        assert_eq!(ok("tobool", vec![s("true")]), Value::Bool(true));
        assert_eq!(ok("tobool", vec![Value::Bool(false)]), Value::Bool(false));
        assert_eq!(ok("tobool", vec![Value::Null]), Value::Null);
        assert_eq!(
            err("tobool", vec![s("yes")]),
            "tobool: cannot convert `yes` to a bool; only `true` and `false` are"
        );
        assert_eq!(
            err("tobool", vec![n(1.0)]),
            "tobool: cannot convert a number to a bool"
        );
        assert_eq!(ok("tolist", vec![ls(&["a", "b"])]), ls(&["a", "b"]));
        assert_eq!(
            err("tolist", vec![s("a")]),
            "tolist: cannot convert a string to a list"
        );
        assert_eq!(
            ok("tomap", vec![obj([("a", n(1.0))])]),
            obj([("a", n(1.0))])
        );
        assert_eq!(
            err("tomap", vec![ls(&[])]),
            "tomap: cannot convert a list to a map"
        );
        assert_eq!(
            err("toset", vec![obj([("a", n(1.0))])]),
            "toset: cannot convert a map to a set"
        );
    }
}
