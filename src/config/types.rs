//! Type constraints of `variable` blocks and the conversions HCL allows
//! (a number given where a string is expected becomes a string, `"3"` where a
//! number is expected becomes 3, and so on).

use super::Expr;
use crate::diag::Diagnostic;
use crate::value::{Map, Value, format_number};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, (Type, bool)>),
    Tuple(Vec<Type>),
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object(fields) => {
                f.write_str("object({")?;
                for (i, (k, (t, optional))) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if *optional {
                        write!(f, "{k} = optional({t})")?;
                    } else {
                        write!(f, "{k} = {t}")?;
                    }
                }
                f.write_str("})")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

impl Type {
    /// Parses a type expression: `string`, `list(string)`, `object({ a = number })`.
    pub fn parse(e: &Expr) -> Result<Type, Diagnostic> {
        parse_expr(e, &e.expr)
    }

    /// Converts `v` to this type, or says why it cannot be, as Terraform
    /// converts: a number or bool where a string is wanted becomes a string,
    /// a string where a number or bool is wanted is read as one, and a
    /// collection of `any` first unifies its elements' types
    /// (`tolist([1, "a"])` is `["1", "a"]`).
    pub fn convert(&self, v: Value) -> Result<Value, String> {
        if let Value::Sensitive(inner) = v {
            return self.convert(*inner).map(|v| v.mark_if(true));
        }
        if matches!(v, Value::Unknown | Value::Null) {
            return Ok(v);
        }
        match self {
            Type::Any => Ok(v),
            Type::String => match v {
                Value::String(_) => Ok(v),
                Value::Number(n) => Ok(Value::String(format_number(n))),
                Value::BigNumber(n) => Ok(Value::String(n.to_text())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                other => Err(format!("a string is required, got {}", other.type_name())),
            },
            Type::Number => match &v {
                Value::Number(_) | Value::BigNumber(_) => Ok(v),
                Value::String(s) => parse_number(s)
                    .ok_or_else(|| format!("a number is required, got string {}", Value::String(s.clone()))),
                other => Err(format!("a number is required, got {}", other.type_name())),
            },
            Type::Bool => match &v {
                Value::Bool(_) => Ok(v),
                Value::String(s) if s == "true" => Ok(Value::Bool(true)),
                Value::String(s) if s == "false" => Ok(Value::Bool(false)),
                other => Err(format!("a bool is required, got {}", describe(other))),
            },
            Type::List(t) | Type::Set(t) => {
                let is_set = matches!(self, Type::Set(_));
                let items = match v {
                    Value::List(l) | Value::Set(l) => l,
                    other => {
                        let want = if is_set { "a set" } else { "a list" };
                        return Err(format!("{want} is required, got {}", other.type_name()));
                    }
                };
                let elem = element_type(t, &items, "tuple", if is_set { "set" } else { "list" })?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    out.push(elem.convert(item).map_err(|e| format!("element {i}: {e}"))?);
                }
                Ok(if is_set { crate::value::set_of(out) } else { Value::List(out) })
            }
            Type::Map(t) => {
                let m = match v {
                    Value::Map(m) => m,
                    other => return Err(format!("a map is required, got {}", other.type_name())),
                };
                let vals: Vec<Value> = m.values().cloned().collect();
                let elem = element_type(t, &vals, "object", "map")?;
                let mut out = Map::new();
                for (k, item) in m {
                    let c = elem.convert(item).map_err(|e| format!("element `{k}`: {e}"))?;
                    out.insert(k, c);
                }
                Ok(Value::Map(out))
            }
            Type::Object(fields) => {
                let mut m = match v {
                    Value::Map(m) => m,
                    other => return Err(format!("an object is required, got {}", other.type_name())),
                };
                let mut out = Map::new();
                for (k, (t, optional)) in fields {
                    match m.remove(k) {
                        Some(item) => {
                            out.insert(k.clone(), t.convert(item).map_err(|e| format!("attribute `{k}`: {e}"))?);
                        }
                        None if *optional => {
                            out.insert(k.clone(), Value::Null);
                        }
                        None => return Err(format!("attribute `{k}` is required")),
                    }
                }
                if let Some(extra) = m.keys().next() {
                    return Err(format!("unexpected attribute `{extra}`"));
                }
                Ok(Value::Map(out))
            }
            Type::Tuple(ts) => {
                let items = match v {
                    Value::List(l) => l,
                    other => return Err(format!("a tuple is required, got {}", other.type_name())),
                };
                if items.len() != ts.len() {
                    return Err(format!("a tuple of {} elements is required, got {}", ts.len(), items.len()));
                }
                let mut out = Vec::new();
                for (i, (t, item)) in ts.iter().zip(items).enumerate() {
                    out.push(t.convert(item).map_err(|e| format!("element {i}: {e}"))?);
                }
                Ok(Value::List(out))
            }
        }
    }

    /// The type Terraform gives a value. berth keeps no list/tuple or
    /// map/object distinction in values, so a list is seen as a tuple and a
    /// map as an object: the most precise reading of the value.
    pub fn of(v: &Value) -> Type {
        match v {
            Value::Null | Value::Unknown => Type::Any,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) | Value::BigNumber(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(l) => Type::Tuple(l.iter().map(Type::of).collect()),
            Value::Set(l) => {
                let tys: Vec<Type> = l.iter().map(Type::of).collect();
                Type::Set(Box::new(unify(&tys).unwrap_or(Type::Any)))
            }
            Value::Map(m) => Type::Object(m.iter().map(|(k, v)| (k.clone(), (Type::of(v), false))).collect()),
            Value::Sensitive(v) => Type::of(v),
        }
    }

    /// A short name for messages: `tuple`, `object`, `list of string`.
    pub fn friendly(&self) -> String {
        match self {
            Type::Any => "dynamic".into(),
            Type::Tuple(_) => "tuple".into(),
            Type::Object(_) => "object".into(),
            Type::List(t) => format!("list of {}", t.friendly()),
            Type::Set(t) => format!("set of {}", t.friendly()),
            Type::Map(t) => format!("map of {}", t.friendly()),
            t => t.to_string(),
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Type::Any => 0,
            Type::String | Type::Number | Type::Bool => 1,
            Type::List(_) => 2,
            Type::Set(_) => 3,
            Type::Map(_) => 4,
            Type::Object(_) => 5,
            Type::Tuple(_) => 6,
        }
    }
    /// True when a value given on the command line should be parsed as an
    /// HCL expression rather than taken as a literal string.
    pub fn is_complex(&self) -> bool {
        !matches!(self, Type::String | Type::Number | Type::Bool | Type::Any)
    }
}

/// Reads a number from a string as Terraform converts one: decimal, an
/// optional sign and exponent, no spaces.
pub fn parse_number(s: &str) -> Option<Value> {
    let n = crate::value::BigNum::parse(s)?;
    (!n.is_inf()).then(|| n.into_value())
}

/// The element type a collection of `want` gets from these elements: `want`
/// itself, or the unification of the elements' types when `want` is `any`.
fn element_type(want: &Type, items: &[Value], from: &str, to: &str) -> Result<Type, String> {
    if *want != Type::Any || items.is_empty() {
        return Ok(want.clone());
    }
    let tys: Vec<Type> = items.iter().map(Type::of).collect();
    match unify(&tys) {
        Some(t) => Ok(t),
        None => Err(format!("cannot convert {from} to {to} of any single type")),
    }
}

/// The single type all of `types` convert to, as Terraform's unification
/// chooses it (the unsafe kind, which lets a string stand for a number or a
/// bool), or `None` when there is none.
pub fn unify(types: &[Type]) -> Option<Type> {
    if types.is_empty() {
        return Some(Type::Any);
    }
    let count = |k: u8| types.iter().filter(|t| t.kind() == k).count();
    let (dynamic, list, set, map, object, tuple) = (count(0), count(2), count(3), count(4), count(5), count(6));
    let n = types.len();
    let elems = |t: &Type| -> Vec<Type> {
        match t {
            Type::List(e) | Type::Set(e) | Type::Map(e) => vec![(**e).clone()],
            Type::Tuple(ts) => ts.clone(),
            Type::Object(fs) => fs.values().map(|(t, _)| t.clone()).collect(),
            _ => vec![],
        }
    };
    if map > 0 && map + dynamic == n {
        return Some(Type::Map(Box::new(unify(&types.iter().flat_map(elems).collect::<Vec<_>>())?)));
    }
    if map > 0
        && map + object + dynamic == n
        && let Some(e) = unify(&types.iter().flat_map(elems).collect::<Vec<_>>())
    {
        return Some(Type::Map(Box::new(e)));
    }
    if list > 0 && list + dynamic == n {
        return Some(Type::List(Box::new(unify(&types.iter().flat_map(elems).collect::<Vec<_>>())?)));
    }
    if list > 0
        && list + tuple + dynamic == n
        && let Some(e) = unify(&types.iter().flat_map(elems).collect::<Vec<_>>())
    {
        return Some(Type::List(Box::new(e)));
    }
    if set > 0 && set + dynamic == n {
        return Some(Type::Set(Box::new(unify(&types.iter().flat_map(elems).collect::<Vec<_>>())?)));
    }
    if object > 0 && object + dynamic == n {
        if dynamic > 0 {
            return Some(Type::Any);
        }
        let first: Vec<&String> = match &types[0] {
            Type::Object(f) => f.keys().collect(),
            _ => vec![],
        };
        let same = types.iter().all(|t| matches!(t, Type::Object(f) if f.keys().collect::<Vec<_>>() == first));
        if !same {
            return Some(Type::Map(Box::new(unify(&types.iter().flat_map(elems).collect::<Vec<_>>())?)));
        }
        let mut fields = BTreeMap::new();
        for k in first {
            let tys: Vec<Type> = types
                .iter()
                .filter_map(|t| match t {
                    Type::Object(f) => f.get(k).map(|(t, _)| t.clone()),
                    _ => None,
                })
                .collect();
            fields.insert(k.clone(), (unify(&tys)?, false));
        }
        return Some(Type::Object(fields));
    }
    if tuple > 0 && tuple + dynamic == n {
        if dynamic > 0 {
            return Some(Type::Any);
        }
        let len = match &types[0] {
            Type::Tuple(t) => t.len(),
            _ => 0,
        };
        if !types.iter().all(|t| matches!(t, Type::Tuple(ts) if ts.len() == len)) {
            return Some(Type::List(Box::new(unify(&types.iter().flat_map(elems).collect::<Vec<_>>())?)));
        }
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            let tys: Vec<Type> = types
                .iter()
                .filter_map(|t| match t {
                    Type::Tuple(ts) => ts.get(i).cloned(),
                    _ => None,
                })
                .collect();
            out.push(unify(&tys)?);
        }
        return Some(Type::Tuple(out));
    }
    if object > 0 && tuple > 0 {
        return None;
    }
    // The most general type that every other converts to.
    let mut order: Vec<&Type> = types.iter().collect();
    order.sort_by_key(|t| generality(t));
    order.into_iter().find(|want| types.iter().all(|t| can_convert(t, want))).cloned()
}

/// Lower is preferred as a unification result: `string` above the other
/// primitives, `any` last.
fn generality(t: &Type) -> u8 {
    match t {
        Type::String => 0,
        Type::Any => 9,
        Type::List(_) | Type::Map(_) | Type::Set(_) => 1,
        _ => 2,
    }
}

/// True when a value of type `from` may convert to `to` (the unsafe kind:
/// strings may become numbers and bools, and fail only on their value).
pub fn can_convert(from: &Type, to: &Type) -> bool {
    match (from, to) {
        (_, Type::Any) | (Type::Any, _) => true,
        (a, b) if a == b => true,
        (Type::Number | Type::Bool, Type::String) => true,
        (Type::String, Type::Number | Type::Bool) => true,
        (Type::List(a) | Type::Set(a), Type::List(b) | Type::Set(b)) => can_convert(a, b),
        (Type::Tuple(ts), Type::List(b) | Type::Set(b)) => {
            if **b == Type::Any { unify(ts).is_some() } else { ts.iter().all(|t| can_convert(t, b)) }
        }
        (Type::Map(a), Type::Map(b)) => can_convert(a, b),
        (Type::Object(fs), Type::Map(b)) => {
            let ts: Vec<Type> = fs.values().map(|(t, _)| t.clone()).collect();
            if **b == Type::Any { unify(&ts).is_some() } else { ts.iter().all(|t| can_convert(t, b)) }
        }
        (Type::Tuple(a), Type::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| can_convert(x, y)),
        (Type::Object(a), Type::Object(b)) => {
            b.iter().all(|(k, (t, opt))| match a.get(k) {
                Some((f, _)) => can_convert(f, t),
                None => *opt,
            })
        }
        _ => false,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {}", Value::String(s.clone())),
        other => other.type_name().to_string(),
    }
}

fn parse_expr(e: &Expr, x: &hcl_edit::expr::Expression) -> Result<Type, Diagnostic> {
    use hcl_edit::expr::{Expression as E, ObjectKey};
    let bad = |msg: &str| Diagnostic::error(msg.to_string()).at(e.span_of(x));
    match x {
        E::Variable(v) => match v.as_str() {
            "any" => Ok(Type::Any),
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "list" => Ok(Type::List(Box::new(Type::Any))),
            "map" => Ok(Type::Map(Box::new(Type::Any))),
            "set" => Ok(Type::Set(Box::new(Type::Any))),
            other => Err(bad(&format!(
                "unknown type `{other}`: use string, number, bool, any, list(T), set(T), map(T), object({{...}}) or tuple([...])"
            ))),
        },
        E::FuncCall(f) => {
            let name = f.name.name.as_str();
            let args: Vec<&E> = f.args.iter().collect();
            let one = || -> Result<&E, Diagnostic> {
                if args.len() == 1 { Ok(args[0]) } else { Err(bad(&format!("`{name}(...)` takes one argument"))) }
            };
            match name {
                "list" => Ok(Type::List(Box::new(parse_expr(e, one()?)?))),
                "set" => Ok(Type::Set(Box::new(parse_expr(e, one()?)?))),
                "map" => Ok(Type::Map(Box::new(parse_expr(e, one()?)?))),
                "optional" => parse_expr(e, one()?),
                "tuple" => match one()? {
                    E::Array(a) => Ok(Type::Tuple(a.iter().map(|t| parse_expr(e, t)).collect::<Result<_, _>>()?)),
                    _ => Err(bad("`tuple` takes a list of types: `tuple([string, number])`")),
                },
                "object" => match one()? {
                    E::Object(o) => {
                        let mut fields = BTreeMap::new();
                        for (k, v) in o.iter() {
                            let key = match k {
                                ObjectKey::Ident(i) => i.as_str().to_string(),
                                ObjectKey::Expression(E::String(s)) => s.as_str().to_string(),
                                _ => return Err(bad("object type attribute names must be identifiers")),
                            };
                            let optional = matches!(v.expr(), E::FuncCall(f) if f.name.name.as_str() == "optional");
                            fields.insert(key, (parse_expr(e, v.expr())?, optional));
                        }
                        Ok(Type::Object(fields))
                    }
                    _ => Err(bad("`object` takes an object of attribute types: `object({ name = string })`")),
                },
                other => Err(bad(&format!("unknown type constructor `{other}`"))),
            }
        }
        _ => Err(bad("expected a type such as `string`, `list(string)` or `object({ name = string })`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_like_hcl() {
        assert_eq!(Type::String.convert(3i64.into()), Ok(Value::str("3")));
        assert_eq!(Type::Number.convert("4".into()), Ok(Value::Number(4.0)));
        assert!(Type::Number.convert("four".into()).unwrap_err().contains("number is required"));
        assert_eq!(
            Type::Set(Box::new(Type::String)).convert(Value::List(vec!["a".into(), "a".into(), "b".into()])),
            Ok(Value::Set(vec!["a".into(), "b".into()]))
        );
        let t = Type::Object([("a".to_string(), (Type::Number, false))].into());
        assert!(t.convert(crate::value::obj([("b", 1i64.into())])).is_err());
    }
}
