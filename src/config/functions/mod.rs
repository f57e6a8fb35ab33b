//! The function library of berth's expression language: `cidrsubnet`,
//! `format`, `merge`, `jsonencode` and the other Terraform functions a
//! configuration may call.
//!
//! It sits inside configuration evaluation. The evaluator resolves a call's
//! arguments to [`Value`]s and hands them to [`call`], which returns a value
//! or an error that starts with the function's name. Semantics follow
//! Terraform and OpenTofu. Marks are handled here once, for every function:
//! an argument holding an unknown anywhere makes the result unknown, and a
//! sensitive argument makes the result sensitive (and keeps its value out of
//! error messages). `try`, `can`, `templatefile` and `templatestring` are
//! not here: they need unevaluated expressions or the template evaluator, so
//! the evaluator owns them. `sensitive`, `nonsensitive` and `issensitive`
//! work on the marks themselves, so `call` answers them before the rule.
//!
//! This file holds the registry, the dispatch and the argument helpers every
//! family shares; each family of functions lives in a file of its own.

use crate::config::types::Type;
use crate::value::{Map, Value, format_number};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;
use sha2::Digest as _;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

mod collection;
mod conversion;
mod datetime;
mod encoding;
mod filesystem;
mod format;
mod hash_crypto;
mod network;
mod numeric;
mod string;
mod yaml;

/// What a function may know about where it is called from.
pub struct FuncContext<'a> {
    /// The module's directory: `file("x")` reads `base_dir/x`.
    pub base_dir: &'a Path,
}

/// A failed call. The message starts with the function's name, e.g.
/// ``element: cannot take an element of an empty list``.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FuncError(pub String);

/// Calls the function `name`.
pub fn call(name: &str, args: Vec<Value>, ctx: &FuncContext) -> Result<Value, FuncError> {
    let name = base_name(name);
    let Some(func) = find(name) else {
        return Err(FuncError(format!("unknown function `{name}`")));
    };
    if let Some(msg) = func.arity.check(args.len()) {
        return Err(FuncError(format!("{name}: {msg}")));
    }
    // These two exist to change marks, so the general rule below must not
    // apply to them.
    match name {
        "sensitive" => return Ok(args.into_iter().next().unwrap_or_default().mark_if(true)),
        // Only a mark on the value itself counts, not one inside it.
        "issensitive" => {
            return Ok(Value::Bool(matches!(
                args.first(),
                Some(Value::Sensitive(_))
            )));
        }
        // berth has no ephemeral values, so every value passes as it is.
        "ephemeralasnull" => return Ok(args.into_iter().next().unwrap_or_default()),
        "nonsensitive" => {
            return Ok(args
                .into_iter()
                .next()
                .unwrap_or_default()
                .into_unmarked()
                .0);
        }
        _ => {}
    }
    let sensitive = args.iter().any(Value::is_sensitive);
    // The number and the keys of a list or map are known when its elements
    // are not yet (`count = length(aws_subnet.x)` while the subnets are
    // planned), as in Terraform. A set's length is not: its unknown elements
    // may turn out equal.
    if let [only] = args.as_slice()
        && !only.is_known()
    {
        match (base_name(name), only.unmarked()) {
            ("length", Value::List(l)) => return Ok(Value::Number(l.len() as f64).mark_if(sensitive)),
            ("length", Value::Map(m)) => return Ok(Value::Number(m.len() as f64).mark_if(sensitive)),
            ("keys", Value::Map(m)) => {
                return Ok(Value::List(m.keys().map(|k| Value::String(k.clone())).collect()).mark_if(sensitive));
            }
            _ => {}
        }
    }
    if !args.iter().all(Value::is_known) {
        // Once known, the value will derive from the sensitive argument too.
        return Ok(Value::Unknown.mark_if(sensitive));
    }
    let mut args = Args(args.into_iter().map(|v| v.into_unmarked().0).collect());
    match (func.body)(&mut args, ctx) {
        Ok(v) => Ok(v.mark_if(sensitive)),
        Err(msg) => Err(FuncError(format!("{name}: {}", reveal(&msg, sensitive)))),
    }
}

/// True when [`call`] knows `name`.
pub fn exists(name: &str) -> bool {
    find(base_name(name)).is_some()
}

/// The function name without Terraform's `core::` namespace, which names
/// the same built-in functions.
pub fn base_name(name: &str) -> &str {
    name.strip_prefix("core::").unwrap_or(name)
}

/// Every function name, sorted, for "did you mean" hints.
pub fn names() -> &'static [&'static str] {
    NAMES.as_slice()
}

static NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| FUNCS.iter().map(|f| f.name).collect());

fn find(name: &str) -> Option<&'static Func> {
    FUNCS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .and_then(|i| FUNCS.get(i))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// A function body gets bare arguments (no unknowns, no marks) and returns
/// the result or a message without the function name.
type Body = fn(&mut Args, &FuncContext) -> Result<Value, String>;

struct Func {
    name: &'static str,
    arity: Arity,
    body: Body,
}

#[derive(Clone, Copy)]
enum Arity {
    Exactly(usize),
    Between(usize, usize),
    AtLeast(usize),
}
use Arity::{AtLeast, Between, Exactly};

impl Arity {
    fn check(self, got: usize) -> Option<String> {
        let (ok, want) = match self {
            Exactly(n) => (got == n, count(n, "argument")),
            Between(lo, hi) if hi == lo + 1 => {
                (lo <= got && got <= hi, format!("{lo} or {hi} arguments"))
            }
            Between(lo, hi) => (lo <= got && got <= hi, format!("{lo} to {hi} arguments")),
            AtLeast(n) => (got >= n, format!("at least {}", count(n, "argument"))),
        };
        (!ok).then(|| format!("expects {want}, got {got}"))
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

const fn f(name: &'static str, arity: Arity, body: Body) -> Func {
    Func { name, arity, body }
}

/// Sorted by name: [`find`] searches it by bisection, and a test checks the
/// order.
static FUNCS: &[Func] = &[
    f("abs", Exactly(1), numeric::abs),
    f("abspath", Exactly(1), filesystem::abspath),
    f("alltrue", Exactly(1), collection::alltrue),
    f("anytrue", Exactly(1), collection::anytrue),
    f("base64decode", Exactly(1), encoding::base64decode),
    f("base64encode", Exactly(1), encoding::base64encode),
    f("base64gzip", Exactly(1), encoding::base64gzip),
    f("base64sha256", Exactly(1), hash_crypto::base64sha256),
    f("base64sha512", Exactly(1), hash_crypto::base64sha512),
    f("basename", Exactly(1), filesystem::basename),
    f("bcrypt", Between(1, 2), hash_crypto::bcrypt),
    f("ceil", Exactly(1), numeric::ceil),
    f("chomp", Exactly(1), string::chomp),
    f("chunklist", Exactly(2), collection::chunklist),
    f("cidrhost", Exactly(2), network::cidrhost),
    f("cidrnetmask", Exactly(1), network::cidrnetmask),
    f("cidrsubnet", Exactly(3), network::cidrsubnet),
    f("cidrsubnets", AtLeast(1), network::cidrsubnets),
    f("coalesce", AtLeast(1), collection::coalesce),
    f("coalescelist", AtLeast(1), collection::coalescelist),
    f("compact", Exactly(1), collection::compact),
    f("concat", AtLeast(1), collection::concat),
    f("contains", Exactly(2), collection::contains),
    f("csvdecode", Exactly(1), encoding::csvdecode),
    f("dirname", Exactly(1), filesystem::dirname),
    f("distinct", Exactly(1), collection::distinct),
    f("element", Exactly(2), collection::element),
    f("endswith", Exactly(2), string::endswith),
    f("ephemeralasnull", Exactly(1), conversion::passthrough),
    f("file", Exactly(1), filesystem::file),
    f("filebase64", Exactly(1), filesystem::filebase64),
    f("filebase64sha256", Exactly(1), filesystem::filebase64sha256),
    f("filebase64sha512", Exactly(1), filesystem::filebase64sha512),
    f("fileexists", Exactly(1), filesystem::fileexists),
    f("filemd5", Exactly(1), filesystem::filemd5),
    f("fileset", Exactly(2), filesystem::fileset),
    f("filesha1", Exactly(1), filesystem::filesha1),
    f("filesha256", Exactly(1), filesystem::filesha256),
    f("filesha512", Exactly(1), filesystem::filesha512),
    f("flatten", Exactly(1), collection::flatten),
    f("floor", Exactly(1), numeric::floor),
    f("format", AtLeast(1), format::format),
    f("formatdate", Exactly(2), datetime::formatdate),
    f("formatlist", AtLeast(1), format::formatlist),
    f("indent", Exactly(2), string::indent),
    f("index", Exactly(2), collection::index),
    f("issensitive", Exactly(1), conversion::passthrough),
    f("join", AtLeast(2), string::join),
    f("jsondecode", Exactly(1), encoding::jsondecode),
    f("jsonencode", Exactly(1), encoding::jsonencode),
    f("keys", Exactly(1), collection::keys),
    f("length", Exactly(1), collection::length),
    f("log", Exactly(2), numeric::log),
    f("lookup", Between(2, 3), collection::lookup),
    f("lower", Exactly(1), string::lower),
    f("matchkeys", Exactly(3), collection::matchkeys),
    f("max", AtLeast(1), numeric::max),
    f("md5", Exactly(1), hash_crypto::md5),
    f("merge", AtLeast(0), collection::merge),
    f("min", AtLeast(1), numeric::min),
    f("nonsensitive", Exactly(1), conversion::passthrough),
    f("one", Exactly(1), collection::one),
    f("parseint", Exactly(2), numeric::parseint),
    f("pathexpand", Exactly(1), filesystem::pathexpand),
    f("plantimestamp", Exactly(0), datetime::plantimestamp),
    f("pow", Exactly(2), numeric::pow),
    f("range", Between(1, 3), numeric::range),
    f("regex", Exactly(2), string::regex_fn),
    f("regexall", Exactly(2), string::regexall),
    f("replace", Exactly(3), string::replace),
    f("reverse", Exactly(1), collection::reverse),
    f("rsadecrypt", Exactly(2), hash_crypto::rsadecrypt),
    f("sensitive", Exactly(1), conversion::passthrough),
    f("setintersection", AtLeast(1), collection::setintersection),
    f("setproduct", AtLeast(1), collection::setproduct),
    f("setsubtract", Exactly(2), collection::setsubtract),
    f("setunion", AtLeast(1), collection::setunion),
    f("sha1", Exactly(1), hash_crypto::sha1),
    f("sha256", Exactly(1), hash_crypto::sha256),
    f("sha512", Exactly(1), hash_crypto::sha512),
    f("signum", Exactly(1), numeric::signum),
    f("slice", Exactly(3), collection::slice),
    f("sort", Exactly(1), collection::sort),
    f("split", Exactly(2), string::split),
    f("startswith", Exactly(2), string::startswith),
    f("strcontains", Exactly(2), string::strcontains),
    f("strrev", Exactly(1), string::strrev),
    f("substr", Exactly(3), string::substr),
    f("sum", Exactly(1), numeric::sum),
    f("textdecodebase64", Exactly(2), encoding::textdecodebase64),
    f("textencodebase64", Exactly(2), encoding::textencodebase64),
    f("timeadd", Exactly(2), datetime::timeadd),
    f("timecmp", Exactly(2), datetime::timecmp),
    f("timestamp", Exactly(0), datetime::timestamp),
    f("title", Exactly(1), string::title),
    f("tobool", Exactly(1), conversion::tobool),
    f("tolist", Exactly(1), conversion::tolist),
    f("tomap", Exactly(1), conversion::tomap),
    f("tonumber", Exactly(1), conversion::tonumber),
    f("toset", Exactly(1), conversion::toset),
    f("tostring", Exactly(1), conversion::tostring),
    f("transpose", Exactly(1), collection::transpose),
    f("trim", Exactly(2), string::trim),
    f("trimprefix", Exactly(2), string::trimprefix),
    f("trimspace", Exactly(1), string::trimspace),
    f("trimsuffix", Exactly(2), string::trimsuffix),
    f("upper", Exactly(1), string::upper),
    f("urlencode", Exactly(1), encoding::urlencode),
    f("uuid", Exactly(0), hash_crypto::uuid),
    f("uuidv5", Exactly(2), hash_crypto::uuidv5),
    f("values", Exactly(1), collection::values),
    f("yamldecode", Exactly(1), yaml::yamldecode),
    f("yamlencode", Exactly(1), yaml::yamlencode),
    f("zipmap", Exactly(2), collection::zipmap),
];

// ---------------------------------------------------------------------------
// Arguments, conversions and messages
// ---------------------------------------------------------------------------

/// Longest range() result; beyond it a typo like `range(1e9)` would eat memory.
const MAX_RANGE: usize = 1_000_000;
/// Largest width, precision or indent; keeps `format("%999999999d")` small.
const MAX_PAD: usize = 10_000;
/// 2^53: above it an f64 no longer holds every integer.
const MAX_SAFE_INT: f64 = 9_007_199_254_740_992.0;

static NULL: Value = Value::Null;

struct Args(Vec<Value>);

impl Args {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn arg(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&NULL)
    }
    fn take(&mut self, i: usize) -> Value {
        self.0.get_mut(i).map(std::mem::take).unwrap_or_default()
    }
    fn string(&self, i: usize) -> Result<String, String> {
        to_string(self.arg(i), &arg_name(i))
    }
    fn number(&self, i: usize) -> Result<f64, String> {
        to_number(self.arg(i), &arg_name(i))
    }
    fn int(&self, i: usize) -> Result<i64, String> {
        to_int(self.arg(i), &arg_name(i))
    }
    fn list(&self, i: usize) -> Result<&[Value], String> {
        to_list(self.arg(i), &arg_name(i))
    }
    fn map(&self, i: usize) -> Result<&Map, String> {
        match self.arg(i) {
            Value::Map(m) => Ok(m),
            Value::Null => Err(format!("{} must not be null", arg_name(i))),
            other => Err(format!(
                "{} must be a map, got {}",
                arg_name(i),
                type_name(other)
            )),
        }
    }
}

fn arg_name(i: usize) -> String {
    format!("argument {}", i + 1)
}

fn elem_name(j: usize, i: usize) -> String {
    format!("element {j} of argument {}", i + 1)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) | Value::BigNumber(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Unknown => "unknown",
        Value::Sensitive(v) => type_name(v),
    }
}

/// Strings, and numbers and bools as Terraform converts them.
fn to_string(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(format_number(*n)),
        Value::BigNumber(n) => Ok(n.to_text()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!("{what} must be a string, got {}", type_name(other))),
    }
}

/// Numbers, and strings holding a number.
fn to_number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::BigNumber(n) => Ok(n.to_f64()),
        Value::String(s) => {
            parse_number(s).ok_or_else(|| format!("{what} must be a number, got {}", q(s)))
        }
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!("{what} must be a number, got {}", type_name(other))),
    }
}

fn to_int(v: &Value, what: &str) -> Result<i64, String> {
    let n = to_number(v, what)?;
    if !n.is_finite() || n.fract() != 0.0 {
        return Err(format!(
            "{what} must be a whole number, got {}",
            q(&format_number(n))
        ));
    }
    if n.abs() > MAX_SAFE_INT {
        return Err(format!(
            "{what} is out of range, got {}",
            q(&format_number(n))
        ));
    }
    Ok(n as i64)
}

fn to_bool(v: &Value, what: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        Value::String(s) => Err(format!("{what} must be a bool, got {}", q(s))),
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!("{what} must be a bool, got {}", type_name(other))),
    }
}

fn to_list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], String> {
    match v {
        Value::List(l) | Value::Set(l) => Ok(l),
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!("{what} must be a list, got {}", type_name(other))),
    }
}

/// Parses a decimal number the way HCL writes one; rejects `inf`, `NaN`,
/// hex and surrounding spaces, which Rust's parser would take.
fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_end = digits_from(i);
    let mut digits = int_end - i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits_from(i + 1);
        digits += frac_end - (i + 1);
        i = frac_end;
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits_from(i);
        if exp_end == i {
            return None;
        }
        i = exp_end;
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn finite(n: f64) -> Result<Value, String> {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        Err("the result is not a finite number".into())
    }
}

// User data in messages is wrapped in these private-use characters instead of
// backticks, so `reveal` can blank it when an argument was sensitive.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';
const QUOTE_MAX: usize = 120;

/// Quotes user data for a message; long data is cut.
fn q(s: &str) -> String {
    let mut out = String::new();
    out.push(OPEN);
    for (i, c) in s.chars().filter(|c| *c != OPEN && *c != CLOSE).enumerate() {
        if i == QUOTE_MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.push(CLOSE);
    out
}

fn qn(n: impl std::fmt::Display) -> String {
    q(&n.to_string())
}

/// Quotes a value: strings bare, everything else as HCL prints it.
fn qv(v: &Value) -> String {
    match v {
        Value::String(s) => q(s),
        v => q(&v.to_string()),
    }
}

fn qp(p: &Path) -> String {
    q(&p.display().to_string())
}

fn reveal(msg: &str, sensitive: bool) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut hidden = false;
    for c in msg.chars() {
        match c {
            OPEN if sensitive => {
                out.push_str("(sensitive value)");
                hidden = true;
            }
            CLOSE if sensitive => hidden = false,
            OPEN | CLOSE => out.push('`'),
            c if !hidden => out.push(c),
            _ => {}
        }
    }
    out
}

/// A key that is equal for equal values, for sets and `distinct`.
fn canon(v: &Value) -> String {
    v.to_json().to_string()
}

/// Equality that lets a string match the number or bool it spells, as
/// Terraform's type unification does for `contains` and `index`.
fn loose_eq(a: &Value, b: &Value) -> bool {
    // Terraform's equality: values of different types are never equal, so
    // `contains([1], "1")` is false.
    a.same_as(b)
}

#[cfg(test)]
pub(crate) mod test_support {
    pub use super::*;
    pub use crate::value::obj;

    pub fn run(name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        call(
            name,
            args,
            &FuncContext {
                base_dir: Path::new("."),
            },
        )
    }

    #[track_caller]
    pub fn ok(name: &str, args: Vec<Value>) -> Value {
        match run(name, args) {
            Ok(v) => v,
            Err(e) => panic!("{name} failed: {e}"),
        }
    }

    #[track_caller]
    pub fn err(name: &str, args: Vec<Value>) -> String {
        match run(name, args) {
            Ok(v) => panic!("{name} succeeded with {v:?}, expected an error"),
            Err(e) => e.0,
        }
    }

    pub fn s(x: &str) -> Value {
        Value::str(x)
    }
    pub fn n(x: f64) -> Value {
        Value::Number(x)
    }
    pub fn l(items: Vec<Value>) -> Value {
        Value::List(items)
    }
    pub fn ls(items: &[&str]) -> Value {
        l(items.iter().map(|x| s(x)).collect())
    }
    pub fn ln(items: &[f64]) -> Value {
        l(items.iter().map(|x| n(*x)).collect())
    }
    pub fn secret(v: Value) -> Value {
        Value::Sensitive(Box::new(v))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn table_is_sorted_and_names_are_unique() {
        for pair in FUNCS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "`{}` must come before `{}`",
                pair[1].name,
                pair[0].name
            );
        }
        assert_eq!(names().len(), FUNCS.len());
    }

    #[test]
    fn exists_and_names_cover_the_required_functions() {
        for name in [
            "cidrsubnet",
            "cidrhost",
            "cidrnetmask",
            "cidrsubnets",
            "format",
            "formatlist",
            "join",
            "split",
            "lookup",
            "merge",
            "concat",
            "length",
            "lower",
            "upper",
            "title",
            "replace",
            "trimspace",
            "trim",
            "trimprefix",
            "trimsuffix",
            "substr",
            "startswith",
            "endswith",
            "strcontains",
            "tostring",
            "tonumber",
            "tobool",
            "toset",
            "tolist",
            "tomap",
            "keys",
            "values",
            "element",
            "index",
            "coalesce",
            "coalescelist",
            "contains",
            "jsonencode",
            "jsondecode",
            "file",
            "fileexists",
            "min",
            "max",
            "abs",
            "ceil",
            "floor",
            "pow",
            "range",
            "flatten",
            "distinct",
            "compact",
            "sort",
            "reverse",
            "slice",
            "zipmap",
            "one",
            "sum",
            "alltrue",
            "anytrue",
            "chunklist",
            "setunion",
            "setintersection",
            "setsubtract",
            "indent",
            "base64encode",
            "base64decode",
            "sha256",
        ] {
            assert!(exists(name), "`{name}` is missing");
            assert!(names().contains(&name));
        }
        // The evaluator owns these: they need unevaluated arguments.
        for name in ["try", "can", "templatefile", "templatestring"] {
            assert!(!exists(name), "`{name}` must not be here");
        }
        assert_eq!(err("nope", vec![]), "unknown function `nope`");
    }

    #[test]
    fn arity_errors_name_the_function_and_the_counts() {
        assert_eq!(
            err("join", vec![s(",")]),
            "join: expects at least 2 arguments, got 1"
        );
        assert_eq!(err("upper", vec![]), "upper: expects 1 argument, got 0");
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8")]),
            "cidrsubnet: expects 3 arguments, got 1"
        );
        assert_eq!(
            err("lookup", vec![obj([("a", n(1.0))])]),
            "lookup: expects 2 or 3 arguments, got 1"
        );
        assert_eq!(
            err("range", vec![n(1.0); 4]),
            "range: expects 1 to 3 arguments, got 4"
        );
        assert_eq!(
            err("min", vec![]),
            "min: expects at least 1 argument, got 0"
        );
    }

    #[test]
    fn unknown_anywhere_makes_the_result_unknown() {
        assert_eq!(ok("upper", vec![Value::Unknown]), Value::Unknown);
        assert_eq!(
            ok("join", vec![s(","), l(vec![s("a"), Value::Unknown])]),
            Value::Unknown
        );
        assert_eq!(
            ok("merge", vec![obj([("a", obj([("b", Value::Unknown)]))])]),
            Value::Unknown
        );
        // Except the number and the keys of a collection, as in Terraform:
        // `count = length(aws_subnet.x)` is known while the subnets are planned.
        assert_eq!(ok("length", vec![l(vec![Value::Unknown, s("b")])]), Value::Number(2.0));
        assert_eq!(ok("length", vec![obj([("a", Value::Unknown)])]), Value::Number(1.0));
        assert_eq!(ok("keys", vec![obj([("b", Value::Unknown), ("a", s("x"))])]), l(vec![s("a"), s("b")]));
        assert_eq!(ok("length", vec![Value::Set(vec![Value::Unknown])]), Value::Unknown);
        assert_eq!(ok("length", vec![Value::Unknown]), Value::Unknown);
        assert_eq!(ok("values", vec![obj([("a", Value::Unknown)])]), Value::Unknown);
        // Arity is still checked first.
        assert_eq!(
            err("upper", vec![Value::Unknown, s("x")]),
            "upper: expects 1 argument, got 2"
        );
        // An unknown derived from a secret stays secret.
        let v = ok("upper", vec![secret(Value::Unknown)]);
        assert!(v.is_unknown() && v.is_sensitive());
    }

    #[test]
    fn sensitive_arguments_make_a_sensitive_result() {
        assert_eq!(ok("upper", vec![secret(s("abc"))]), secret(s("ABC")));
        let v = ok("join", vec![s("-"), l(vec![s("a"), secret(s("b"))])]);
        assert_eq!(v, secret(s("a-b")));
        let v = ok(
            "merge",
            vec![obj([("a", n(1.0))]), obj([("b", secret(n(2.0)))])],
        );
        assert!(matches!(v, Value::Sensitive(_)));
        assert_eq!(v.unmarked(), &obj([("a", n(1.0)), ("b", n(2.0))]));
        assert_eq!(
            ok("upper", vec![s("x")]),
            s("X"),
            "no mark without a sensitive argument"
        );
    }

    #[test]
    fn sensitive_values_never_appear_in_errors() {
        let e = err("lookup", vec![obj([("a", n(1.0))]), secret(s("hunter2"))]);
        assert_eq!(
            e,
            "lookup: key (sensitive value) not found and no default given"
        );
        let e = err("tonumber", vec![secret(s("hunter2"))]);
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("cidrhost", vec![secret(s("10.0.0.0/99")), n(1.0)]);
        assert!(!e.contains("10.0.0.0"), "{e}");
        let e = err("regex", vec![secret(s("(hunter2")), s("x")]);
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("index", vec![ls(&["a"]), secret(s("hunter2"))]);
        assert!(!e.contains("hunter2"), "{e}");
        // Without marks the same data is shown in backticks.
        assert_eq!(
            err("lookup", vec![obj([("a", n(1.0))]), s("x")]),
            "lookup: key `x` not found and no default given"
        );
    }

    #[test]
    fn sensitive_and_nonsensitive_change_marks() {
        assert_eq!(ok("sensitive", vec![s("a")]), secret(s("a")));
        assert_eq!(ok("nonsensitive", vec![secret(s("a"))]), s("a"));
        assert_eq!(
            ok("nonsensitive", vec![l(vec![secret(s("a"))])]),
            ls(&["a"])
        );
        assert_eq!(ok("nonsensitive", vec![s("a")]), s("a"));
        assert_eq!(
            ok("sensitive", vec![Value::Unknown]),
            secret(Value::Unknown)
        );
    }

    /// Every function against odd arguments: each call must return, never
    /// panic, and errors must name the function.
    #[test]
    fn no_function_panics_on_odd_arguments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = FuncContext {
            base_dir: dir.path(),
        };
        let odd = vec![
            Value::Null,
            l(vec![]),
            obj::<&str>([]),
            s(""),
            s("ünï🤔\u{E000}`%"),
            s("%[0]s%-099999.99999d%"),
            s("/(?P<a>x)(y/"),
            s("::/0"),
            s("255.255.255.255/32"),
            n(0.0),
            n(-1.0),
            n(1e18),
            n(-1e300),
            n(0.5),
            n(f64::NAN),
            n(f64::INFINITY),
            Value::Bool(true),
            l(vec![
                Value::Null,
                s("a"),
                n(1.0),
                l(vec![]),
                obj([("k", s("v"))]),
            ]),
            obj([("k", l(vec![n(-3.0)]))]),
        ];
        let mut panics = Vec::new();
        let mut calls = 0usize;
        let mut try_call = |name: &str, args: Vec<Value>| {
            calls += 1;
            let shown = format!("{name}({args:?})");
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(name, args, &ctx)));
            match result {
                Err(_) => panics.push(shown),
                Ok(Err(e)) => assert!(
                    e.0.starts_with(name),
                    "`{}` does not name the function",
                    e.0
                ),
                Ok(Ok(_)) => {}
            }
        };
        for &name in names() {
            try_call(name, vec![]);
            for a in &odd {
                try_call(name, vec![a.clone()]);
                try_call(name, vec![a.clone(), Value::Unknown]);
                try_call(name, vec![secret(a.clone())]);
                for b in &odd {
                    try_call(name, vec![a.clone(), b.clone()]);
                }
            }
            // Three and four arguments: a sample, to keep the test quick.
            for (i, a) in odd.iter().enumerate() {
                for (j, b) in odd.iter().enumerate().skip(i % 3).step_by(3) {
                    let c = &odd[(i + j) % odd.len()];
                    try_call(name, vec![a.clone(), b.clone(), c.clone()]);
                    try_call(name, vec![a.clone(), b.clone(), c.clone(), a.clone()]);
                }
            }
        }
        assert!(calls > 10_000);
        assert!(
            panics.is_empty(),
            "{} calls panicked, e.g. {:?}",
            panics.len(),
            panics.first()
        );
    }
}
