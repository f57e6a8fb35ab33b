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

    /// Converts `v` to this type, or says why it cannot be.
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
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                other => Err(format!("a string is required, got {}", other.type_name())),
            },
            Type::Number => match &v {
                Value::Number(_) => Ok(v),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .map(Value::Number)
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
                let items = match v {
                    Value::List(l) => l,
                    other => return Err(format!("a list is required, got {}", other.type_name())),
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    out.push(t.convert(item).map_err(|e| format!("element {i}: {e}"))?);
                }
                if matches!(self, Type::Set(_)) {
                    let mut dedup: Vec<Value> = Vec::new();
                    for v in out {
                        if !dedup.iter().any(|d| d.same_as(&v)) {
                            dedup.push(v);
                        }
                    }
                    out = dedup;
                }
                Ok(Value::List(out))
            }
            Type::Map(t) => {
                let m = match v {
                    Value::Map(m) => m,
                    other => return Err(format!("a map is required, got {}", other.type_name())),
                };
                let mut out = Map::new();
                for (k, item) in m {
                    let c = t.convert(item).map_err(|e| format!("element `{k}`: {e}"))?;
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

    /// True when a value given on the command line should be parsed as an
    /// HCL expression rather than taken as a literal string.
    pub fn is_complex(&self) -> bool {
        !matches!(self, Type::String | Type::Number | Type::Bool | Type::Any)
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
            Ok(Value::List(vec!["a".into(), "b".into()]))
        );
        let t = Type::Object([("a".to_string(), (Type::Number, false))].into());
        assert!(t.convert(crate::value::obj([("b", 1i64.into())])).is_err());
    }
}
