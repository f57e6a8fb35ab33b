//! The value model shared by configuration, plan, state and providers.
//!
//! hcl-rs values cannot say "known after apply", so berth has its own:
//! [`Value::Unknown`] stands for a value a provider will only know once the
//! resource exists, and [`Value::Sensitive`] marks a value that must never be
//! printed. Both marks travel through expressions: a function applied to an
//! unknown argument is unknown, one applied to a sensitive argument is
//! sensitive.
//!
//! State and plan files hold values as JSON. Unknowns only ever live in a
//! plan, where they are written as `{"$berth": "unknown"}`; sensitivity is
//! stored beside a value as a list of paths, never inside it.
//!
//! Numbers are Terraform's arbitrary-precision numbers (see [`number`]):
//! ordinary ones stay an f64 in [`Value::Number`], the rest are boxed in
//! [`Value::BigNumber`], which keeps `Value` small. Sets are [`Value::Set`]:
//! no index, no duplicates, in Terraform's order. A list and a tuple are both
//! [`Value::List`], a map and an object both [`Value::Map`].

pub mod number;

pub use number::BigNum;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Objects and maps, ordered by key so every rendering is deterministic.
pub type Map = BTreeMap<String, Value>;

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Map(Map),
    /// Known only after apply.
    Unknown,
    /// A value that must never be shown.
    Sensitive(Box<Value>),
    /// A set: distinct elements in Terraform's order (see [`set_of`]).
    Set(Vec<Value>),
    /// A number an f64 does not hold as Terraform has it (see [`number`]).
    BigNumber(Box<BigNum>),
}

impl PartialEq for Value {
    /// Structural equality; numbers compare by value, whichever form they
    /// are in.
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) | (Value::Unknown, Value::Unknown) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Number(_) | Value::BigNumber(_), Value::Number(_) | Value::BigNumber(_)) => {
                self.as_big() == other.as_big()
            }
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Set(a), Value::Set(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Sensitive(a), Value::Sensitive(b)) => a == b,
            _ => false,
        }
    }
}

/// Sorts and deduplicates elements into a set as Terraform orders one:
/// strings by bytes, numbers by value, `false` before `true`; elements of
/// other types keep their first-seen order.
pub fn set_of(items: Vec<Value>) -> Value {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for v in items {
        if !out.iter().any(|o| o.same_as(&v)) {
            out.push(v);
        }
    }
    out.sort_by(set_order);
    Value::Set(out)
}

fn set_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.unmarked(), b.unmarked()) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (x @ (Value::Number(_) | Value::BigNumber(_)), y @ (Value::Number(_) | Value::BigNumber(_))) => {
            match (x.as_big(), y.as_big()) {
                (Some(x), Some(y)) => x.cmp_num(&y),
                _ => Ordering::Equal,
            }
        }
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        // Terraform puts unknowns and nulls last.
        (Value::Null | Value::Unknown, Value::Null | Value::Unknown) => Ordering::Equal,
        (Value::Null | Value::Unknown, _) => Ordering::Greater,
        (_, Value::Null | Value::Unknown) => Ordering::Less,
        _ => Ordering::Equal,
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) | Value::BigNumber(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
            Value::Sensitive(v) => v.type_name(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.unmarked(), Value::Null)
    }

    /// True when no unknown appears anywhere inside.
    pub fn is_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(l) | Value::Set(l) => l.iter().all(Value::is_known),
            Value::Map(m) => m.values().all(Value::is_known),
            Value::Sensitive(v) => v.is_known(),
            _ => true,
        }
    }

    /// True when the value itself (not what it contains) is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self.unmarked(), Value::Unknown)
    }

    /// True when a sensitive mark appears anywhere inside.
    pub fn is_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(l) | Value::Set(l) => l.iter().any(Value::is_sensitive),
            Value::Map(m) => m.values().any(Value::is_sensitive),
            _ => false,
        }
    }

    /// The value under a top-level sensitive mark.
    pub fn unmarked(&self) -> &Value {
        match self {
            Value::Sensitive(v) => v.unmarked(),
            v => v,
        }
    }

    /// Removes every sensitive mark, deeply. Returns the bare value and whether
    /// any mark was removed.
    pub fn into_unmarked(self) -> (Value, bool) {
        match self {
            Value::Sensitive(v) => (v.into_unmarked().0, true),
            Value::Set(l) => match Value::List(l).into_unmarked() {
                (Value::List(l), any) => (Value::Set(l), any),
                other => other,
            },
            Value::List(l) => {
                let mut any = false;
                let l = l
                    .into_iter()
                    .map(|v| {
                        let (v, s) = v.into_unmarked();
                        any |= s;
                        v
                    })
                    .collect();
                (Value::List(l), any)
            }
            Value::Map(m) => {
                let mut any = false;
                let m = m
                    .into_iter()
                    .map(|(k, v)| {
                        let (v, s) = v.into_unmarked();
                        any |= s;
                        (k, v)
                    })
                    .collect();
                (Value::Map(m), any)
            }
            v => (v, false),
        }
    }

    /// Wraps in a sensitive mark when `sensitive` is true (and not already marked).
    pub fn mark_if(self, sensitive: bool) -> Value {
        if sensitive && !matches!(self, Value::Sensitive(_)) {
            Value::Sensitive(Box::new(self))
        } else {
            self
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unmarked() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unmarked() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A number as the nearest f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self.unmarked() {
            Value::Number(n) => Some(*n),
            Value::BigNumber(n) => Some(n.to_f64()),
            _ => None,
        }
    }

    /// A number exactly, as Terraform has it.
    pub fn as_big(&self) -> Option<BigNum> {
        match self.unmarked() {
            Value::Number(n) => Some(BigNum::from_f64(*n)),
            Value::BigNumber(n) => Some((**n).clone()),
            _ => None,
        }
    }

    /// The elements of a list, a tuple or a set.
    pub fn as_list(&self) -> Option<&Vec<Value>> {
        match self.unmarked() {
            Value::List(l) | Value::Set(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self.unmarked() {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Attribute of an object, `None` when missing or not an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// A string attribute, `None` when missing, null or not a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Converts to JSON. Sensitive marks are dropped; unknowns become the plan
    /// sentinel `{"$berth":"unknown"}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::BigNumber(n) => number_to_json(n.to_f64()),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(l) | Value::Set(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
            Value::Unknown => serde_json::json!({"$berth": "unknown"}),
            Value::Sensitive(v) => v.to_json(),
        }
    }

    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                if o.len() == 1 && o.get("$berth").and_then(|v| v.as_str()) == Some("unknown") {
                    return Value::Unknown;
                }
                Value::Map(o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Paths (`a`, `a.b`, `a[0]`) of the sensitive marks inside, for storing
    /// beside the bare value.
    pub fn sensitive_paths(&self) -> Vec<String> {
        fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
            match v {
                Value::Sensitive(_) => out.push(path.to_string()),
                Value::List(l) | Value::Set(l) => {
                    for (i, v) in l.iter().enumerate() {
                        walk(v, &format!("{path}[{i}]"), out)
                    }
                }
                Value::Map(m) => {
                    for (k, v) in m {
                        let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                        walk(v, &p, out)
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, "", &mut out);
        out
    }

    /// Re-applies marks recorded by [`Value::sensitive_paths`].
    pub fn mark_paths(mut self, paths: &[String]) -> Value {
        for p in paths {
            if p.is_empty() {
                return self.mark_if(true);
            }
            if let Some(slot) = self.path_mut(p) {
                let v = std::mem::take(slot);
                *slot = v.mark_if(true);
            }
        }
        self
    }

    fn path_mut(&mut self, path: &str) -> Option<&mut Value> {
        let mut cur = self;
        for seg in split_path(path) {
            cur = match (cur, seg) {
                (Value::Map(m), PathSeg::Key(k)) => m.get_mut(k)?,
                (Value::List(l) | Value::Set(l), PathSeg::Index(i)) => l.get_mut(i)?,
                (Value::Sensitive(v), seg) => {
                    // Already marked at a shorter path: nothing more to do.
                    let _ = seg;
                    return Some(v);
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Replaces every unknown by null: what `--json` plans show beside their
    /// `after_unknown` mask.
    pub fn unknown_as_null(&self) -> Value {
        match self {
            Value::Unknown => Value::Null,
            Value::List(l) => Value::List(l.iter().map(Value::unknown_as_null).collect()),
            Value::Set(l) => Value::Set(l.iter().map(Value::unknown_as_null).collect()),
            Value::Map(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), v.unknown_as_null())).collect()),
            Value::Sensitive(v) => Value::Sensitive(Box::new(v.unknown_as_null())),
            v => v.clone(),
        }
    }

    /// Compares ignoring sensitive marks.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self.unmarked(), other.unmarked()) {
            (Value::List(a), Value::List(b)) | (Value::Set(a), Value::Set(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && va.same_as(vb))
            }
            (a, b) => a == b,
        }
    }
}

enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<PathSeg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(PathSeg::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(PathSeg::Index(i));
            }
        }
    }
    out
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::Number((n as i64).into())
    } else {
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Formats a number the way HCL prints it: integers without a fraction.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

impl fmt::Display for Value {
    /// An HCL-like rendering for plans and `berth output`. Sensitive values
    /// print as `(sensitive value)`, unknowns as `(known after apply)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::BigNumber(n) => f.write_str(&n.to_text()),
            Value::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::List(l) | Value::Set(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {v}")?;
                }
                f.write_str("}")
            }
            Value::Unknown => f.write_str("(known after apply)"),
            Value::Sensitive(_) => f.write_str("(sensitive value)"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = serde_json::Value::deserialize(d)?;
        Ok(Value::from_json(&j))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::List(l)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

/// Builds an object value: `obj([("a", 1.into())])`.
pub fn obj<K: Into<String>>(items: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Map(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_unknowns() {
        let v = obj([("a", Value::Unknown), ("b", Value::List(vec![1i64.into(), "x".into()]))]);
        let back = Value::from_json(&v.to_json());
        assert_eq!(v, back);
        assert!(!back.is_known());
    }

    #[test]
    fn sensitive_paths_round_trip() {
        let v = obj([
            ("user", "admin".into()),
            ("pass", Value::Sensitive(Box::new("hunter2".into()))),
            ("list", Value::List(vec![1i64.into(), Value::Sensitive(Box::new(2i64.into()))])),
        ]);
        let paths = v.sensitive_paths();
        assert_eq!(paths, vec!["list[1]".to_string(), "pass".to_string()]);
        let (bare, any) = v.clone().into_unmarked();
        assert!(any);
        assert!(!bare.is_sensitive());
        assert_eq!(bare.mark_paths(&paths), v);
    }

    #[test]
    fn value_stays_small() {
        // Every value in a plan or state is a Value: big numbers and sets
        // must not make all of them bigger.
        assert!(std::mem::size_of::<Value>() <= 32, "{}", std::mem::size_of::<Value>());
    }

    #[test]
    fn numbers_compare_by_value_and_sets_never_equal_lists() {
        let big = BigNum::parse("0.3").unwrap();
        assert_eq!(Value::BigNumber(Box::new(big)), Value::Number(0.3));
        assert_ne!(Value::Set(vec!["a".into()]), Value::List(vec!["a".into()]));
        assert_eq!(set_of(vec!["b".into(), "a".into(), "b".into()]), Value::Set(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn display_hides_sensitive_and_integers_have_no_fraction() {
        let v = obj([("n", 3i64.into()), ("s", Value::Sensitive(Box::new("x".into())))]);
        assert_eq!(v.to_string(), "{n = 3, s = (sensitive value)}");
    }
}
