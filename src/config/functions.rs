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
//! error messages). `try`, `can` and `templatefile` are not here: they need
//! unevaluated expressions, so the evaluator owns them.

use crate::value::{Map, Value, format_number};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;
use sha2::Digest as _;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

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
    find(name).is_some()
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
    f("abs", Exactly(1), abs),
    f("alltrue", Exactly(1), alltrue),
    f("anytrue", Exactly(1), anytrue),
    f("base64decode", Exactly(1), base64decode),
    f("base64encode", Exactly(1), base64encode),
    f("base64sha256", Exactly(1), base64sha256),
    f("base64sha512", Exactly(1), base64sha512),
    f("ceil", Exactly(1), ceil),
    f("chomp", Exactly(1), chomp),
    f("chunklist", Exactly(2), chunklist),
    f("cidrhost", Exactly(2), cidrhost),
    f("cidrnetmask", Exactly(1), cidrnetmask),
    f("cidrsubnet", Exactly(3), cidrsubnet),
    f("cidrsubnets", AtLeast(1), cidrsubnets),
    f("coalesce", AtLeast(1), coalesce),
    f("coalescelist", AtLeast(1), coalescelist),
    f("compact", Exactly(1), compact),
    f("concat", AtLeast(1), concat),
    f("contains", Exactly(2), contains),
    f("distinct", Exactly(1), distinct),
    f("element", Exactly(2), element),
    f("endswith", Exactly(2), endswith),
    f("file", Exactly(1), file),
    f("filebase64", Exactly(1), filebase64),
    f("fileexists", Exactly(1), fileexists),
    f("flatten", Exactly(1), flatten),
    f("floor", Exactly(1), floor),
    f("format", AtLeast(1), format),
    f("formatlist", AtLeast(1), formatlist),
    f("indent", Exactly(2), indent),
    f("index", Exactly(2), index),
    f("join", AtLeast(2), join),
    f("jsondecode", Exactly(1), jsondecode),
    f("jsonencode", Exactly(1), jsonencode),
    f("keys", Exactly(1), keys),
    f("length", Exactly(1), length),
    f("log", Exactly(2), log),
    f("lookup", Between(2, 3), lookup),
    f("lower", Exactly(1), lower),
    f("max", AtLeast(1), max),
    f("merge", AtLeast(0), merge),
    f("min", AtLeast(1), min),
    f("nonsensitive", Exactly(1), passthrough),
    f("one", Exactly(1), one),
    f("parseint", Exactly(2), parseint),
    f("pow", Exactly(2), pow),
    f("range", Between(1, 3), range),
    f("regex", Exactly(2), regex_fn),
    f("regexall", Exactly(2), regexall),
    f("replace", Exactly(3), replace),
    f("reverse", Exactly(1), reverse),
    f("sensitive", Exactly(1), passthrough),
    f("setintersection", AtLeast(1), setintersection),
    f("setsubtract", Exactly(2), setsubtract),
    f("setunion", AtLeast(1), setunion),
    f("sha256", Exactly(1), sha256),
    f("sha512", Exactly(1), sha512),
    f("signum", Exactly(1), signum),
    f("slice", Exactly(3), slice),
    f("sort", Exactly(1), sort),
    f("split", Exactly(2), split),
    f("startswith", Exactly(2), startswith),
    f("strcontains", Exactly(2), strcontains),
    f("strrev", Exactly(1), strrev),
    f("substr", Exactly(3), substr),
    f("sum", Exactly(1), sum),
    f("title", Exactly(1), title),
    f("tobool", Exactly(1), tobool),
    f("tolist", Exactly(1), tolist),
    f("tomap", Exactly(1), tomap),
    f("tonumber", Exactly(1), tonumber),
    f("toset", Exactly(1), toset),
    f("tostring", Exactly(1), tostring),
    f("trim", Exactly(2), trim),
    f("trimprefix", Exactly(2), trimprefix),
    f("trimspace", Exactly(1), trimspace),
    f("trimsuffix", Exactly(2), trimsuffix),
    f("upper", Exactly(1), upper),
    f("urlencode", Exactly(1), urlencode),
    f("values", Exactly(1), values),
    f("zipmap", Exactly(2), zipmap),
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
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
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
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(format!("{what} must not be null")),
        other => Err(format!("{what} must be a string, got {}", type_name(other))),
    }
}

/// Numbers, and strings holding a number.
fn to_number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => Ok(*n),
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
        Value::List(l) => Ok(l),
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
    match (a, b) {
        (Value::String(s), o @ (Value::Number(_) | Value::Bool(_)))
        | (o @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => {
            to_string(o, "").is_ok_and(|t| &t == s)
        }
        (a, b) => a == b,
    }
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

fn abs(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.abs())
}

fn ceil(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.ceil())
}

fn floor(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.floor())
}

fn log(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let (n, base) = (a.number(0)?, a.number(1)?);
    finite(n.log(base))
}

fn pow(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    finite(a.number(0)?.powf(a.number(1)?))
}

fn signum(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let n = a.number(0)?;
    // f64::signum says 1 for zero; Terraform says 0.
    Ok(Value::Number(if n > 0.0 {
        1.0
    } else if n < 0.0 {
        -1.0
    } else {
        0.0
    }))
}

fn numbers(a: &Args) -> Result<Vec<f64>, String> {
    (0..a.len())
        .map(|i| match a.arg(i) {
            Value::List(_) => Err(format!(
                "{} must be a number, got list (expand a list with `...`)",
                arg_name(i)
            )),
            _ => a.number(i),
        })
        .collect()
}

fn max(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Number(
        numbers(a)?.into_iter().fold(f64::NEG_INFINITY, f64::max),
    ))
}

fn min(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Number(
        numbers(a)?.into_iter().fold(f64::INFINITY, f64::min),
    ))
}

fn parseint(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let base = a.int(1)?;
    if !(2..=62).contains(&base) {
        return Err(format!("base {} must be between 2 and 62", qn(base)));
    }
    let fail = || format!("cannot parse {} as a base-{base} integer", q(&s));
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty() {
        return Err(fail());
    }
    let mut n: i128 = 0;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i64 - '0' as i64,
            'a'..='z' => c as i64 - 'a' as i64 + 10,
            // Up to base 36 letters are case-blind; above it capitals come
            // after the small letters, as in Go's big.Int.
            'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
            'A'..='Z' => c as i64 - 'A' as i64 + 36,
            _ => return Err(fail()),
        };
        if d >= base {
            return Err(fail());
        }
        n = n
            .checked_mul(i128::from(base))
            .and_then(|n| n.checked_add(i128::from(d)))
            .filter(|n| *n as f64 <= MAX_SAFE_INT)
            .ok_or_else(|| format!("{} is too large", q(&s)))?;
    }
    Ok(Value::Number(if neg { -(n as f64) } else { n as f64 }))
}

fn range(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let nums = (0..a.len())
        .map(|i| a.number(i))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, limit, step) = match nums[..] {
        [limit] => (0.0, limit, if limit >= 0.0 { 1.0 } else { -1.0 }),
        [start, limit] => (start, limit, if limit >= start { 1.0 } else { -1.0 }),
        [start, limit, step] => (start, limit, step),
        _ => return Err(format!("expects 1 to 3 arguments, got {}", nums.len())),
    };
    if ![start, limit, step].iter().all(|n| n.is_finite()) {
        return Err("arguments must be finite numbers".into());
    }
    if step == 0.0 {
        return Err("step must not be zero".into());
    }
    let too_many = || format!("the result would have more than {MAX_RANGE} elements");
    if ((limit - start) / step).ceil() > MAX_RANGE as f64 {
        return Err(too_many());
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0.0 && n < limit) || (step < 0.0 && n > limit) {
        // A step too small to move a large start never ends otherwise.
        if out.len() >= MAX_RANGE {
            return Err(too_many());
        }
        out.push(Value::Number(n));
        n += step;
    }
    Ok(Value::List(out))
}

fn sum(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    if l.is_empty() {
        return Err("cannot sum an empty list".into());
    }
    let mut total = 0.0;
    for (j, v) in l.iter().enumerate() {
        total += to_number(v, &elem_name(j, 0))?;
    }
    finite(total)
}

// ---------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------

fn chomp(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        a.string(0)?.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

fn endswith(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.ends_with(&a.string(1)?)))
}

fn startswith(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.starts_with(&a.string(1)?)))
}

fn strcontains(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.contains(&a.string(1)?)))
}

fn indent(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let n = a.int(0)?;
    let s = a.string(1)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_PAD)
        .ok_or_else(|| {
            format!(
                "the number of spaces must be between 0 and {MAX_PAD}, got {}",
                qn(n)
            )
        })?;
    Ok(Value::String(
        s.replace('\n', &format!("\n{}", " ".repeat(n))),
    ))
}

fn join(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let sep = a.string(0)?;
    let mut parts = Vec::new();
    for i in 1..a.len() {
        for (j, v) in a.list(i)?.iter().enumerate() {
            parts.push(to_string(v, &elem_name(j, i))?);
        }
    }
    Ok(Value::String(parts.join(&sep)))
}

fn lower(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(a.string(0)?.to_lowercase()))
}

fn upper(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(a.string(0)?.to_uppercase()))
}

fn title(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // Word boundaries as Go's strings.Title, which Terraform uses: ASCII
    // letters, digits and `_` and any Unicode letter or digit continue a
    // word; other ASCII and Unicode spaces end one.
    fn ends_word(c: char) -> bool {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    }
    let s = a.string(0)?;
    let mut out = String::with_capacity(s.len());
    let mut boundary = true;
    for c in s.chars() {
        if boundary {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        boundary = ends_word(c);
    }
    Ok(Value::String(out))
}

fn replace(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let pattern = a.string(1)?;
    let with = a.string(2)?;
    if pattern.len() > 1 && pattern.starts_with('/') && pattern.ends_with('/') {
        let re = compile(&pattern[1..pattern.len() - 1])?;
        return Ok(Value::String(
            re.replace_all(&s, with.as_str()).into_owned(),
        ));
    }
    Ok(Value::String(s.replace(&pattern, &with)))
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        // The full message repeats the pattern; keep only the reason.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        format!("invalid regular expression {}: {reason}", q(pattern))
    })
}

/// What `regex` returns for one match: the whole match without groups, a list
/// for numbered groups, a map for named ones.
fn match_value(re: &regex::Regex, caps: &regex::Captures) -> Value {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let group = |i: usize| caps.get(i).map_or(Value::Null, |m| Value::str(m.as_str()));
    if names.is_empty() {
        group(0)
    } else if names.iter().all(Option::is_some) {
        Value::Map(
            names
                .iter()
                .flatten()
                .map(|n| {
                    (
                        n.to_string(),
                        caps.name(n).map_or(Value::Null, |m| Value::str(m.as_str())),
                    )
                })
                .collect(),
        )
    } else {
        Value::List((1..=names.len()).map(group).collect())
    }
}

fn compile_groups(pattern: &str) -> Result<regex::Regex, String> {
    let re = compile(pattern)?;
    let named = re.capture_names().skip(1).filter(Option::is_some).count();
    if named > 0 && named < re.captures_len() - 1 {
        return Err(format!(
            "pattern {} mixes named and unnamed capture groups",
            q(pattern)
        ));
    }
    Ok(re)
}

fn regex_fn(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let pattern = a.string(0)?;
    let s = a.string(1)?;
    let re = compile_groups(&pattern)?;
    match re.captures(&s) {
        Some(caps) => Ok(match_value(&re, &caps)),
        None => Err(format!("pattern {} does not match {}", q(&pattern), q(&s))),
    }
}

fn regexall(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let pattern = a.string(0)?;
    let s = a.string(1)?;
    let re = compile_groups(&pattern)?;
    Ok(Value::List(
        re.captures_iter(&s).map(|c| match_value(&re, &c)).collect(),
    ))
}

fn split(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let sep = a.string(0)?;
    let s = a.string(1)?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str()).map(Value::str).collect()
    };
    Ok(Value::List(parts))
}

fn strrev(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(a.string(0)?.chars().rev().collect()))
}

fn substr(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let offset = a.int(1)?;
    let length = a.int(2)?;
    let chars: Vec<char> = s.chars().collect();
    let total = chars.len() as i64;
    let start = if offset < 0 {
        (offset + total).max(0)
    } else {
        offset
    };
    if start >= total {
        return Ok(Value::str(""));
    }
    let rest = &chars[start as usize..];
    // Any negative length means "to the end", as in Terraform.
    let take = if length < 0 {
        rest.len()
    } else {
        (length as usize).min(rest.len())
    };
    Ok(Value::String(rest[..take].iter().collect()))
}

fn trim(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let cutset = a.string(1)?;
    Ok(Value::str(s.trim_matches(|c| cutset.contains(c))))
}

fn trimprefix(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let prefix = a.string(1)?;
    Ok(Value::str(s.strip_prefix(prefix.as_str()).unwrap_or(&s)))
}

fn trimsuffix(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let suffix = a.string(1)?;
    Ok(Value::str(s.strip_suffix(suffix.as_str()).unwrap_or(&s)))
}

fn trimspace(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::str(a.string(0)?.trim()))
}

// ---------------------------------------------------------------------------
// format and formatlist
// ---------------------------------------------------------------------------

fn format(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let spec = a.string(0)?;
    Ok(Value::String(format_values(
        &spec,
        a.0.get(1..).unwrap_or_default(),
    )?))
}

fn formatlist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let spec = a.string(0)?;
    let rest = a.0.get(1..).unwrap_or_default();
    // Lists are iterated in step; anything else repeats on every line.
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        if let Value::List(l) = v {
            match len {
                Some((n, first)) if n != l.len() => {
                    return Err(format!(
                        "argument {} has {} but argument {} has {}",
                        i + 2,
                        count(l.len(), "element"),
                        first + 2,
                        count(n, "element")
                    ));
                }
                Some(_) => {}
                None => len = Some((l.len(), i)),
            }
        }
    }
    let n = len.map_or(1, |(n, _)| n);
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let row: Vec<Value> = rest
            .iter()
            .map(|v| match v {
                Value::List(l) => l.get(k).cloned().unwrap_or_default(),
                v => v.clone(),
            })
            .collect();
        let line = format_values(&spec, &row).map_err(|e| format!("element {k}: {e}"))?;
        out.push(Value::String(line));
    }
    Ok(Value::List(out))
}

#[derive(Default)]
struct Verb {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

/// Go-style formatting as Terraform's `format`: `%v %#v %s %q %t %d %b %o %x
/// %X %e %E %f %F %g %G %%`, flags `- + space 0 #`, width, precision and
/// explicit argument indexes (`%[2]s`).
fn format_values(spec: &str, args: &[Value]) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut next = 0usize;
    let mut used = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut v = Verb::default();
        while let Some(&flag) = chars.get(i) {
            match flag {
                '-' => v.minus = true,
                '+' => v.plus = true,
                ' ' => v.space = true,
                '0' => v.zero = true,
                '#' => v.sharp = true,
                _ => break,
            }
            i += 1;
        }
        let so_far = |i: usize| -> String { chars[start..i.min(chars.len())].iter().collect() };
        if chars.get(i) == Some(&'[') {
            let close = chars[i..].iter().position(|&c| c == ']').map(|p| i + p);
            let index = close.and_then(|close| {
                let digits: String = chars[i + 1..close].iter().collect();
                digits
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=args.len().max(1)).contains(n))
            });
            match (close, index) {
                (Some(close), Some(n)) => {
                    next = n - 1;
                    i = close + 1;
                }
                _ => {
                    return Err(format!(
                        "invalid argument index in {}",
                        q(&so_far(close.map_or(i + 1, |c| c + 1)))
                    ));
                }
            }
        }
        v.width = pad_number(&chars, &mut i)
            .map_err(|_| format!("width in {} is too large", q(&so_far(i))))?;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let p = pad_number(&chars, &mut i)
                .map_err(|_| format!("precision in {} is too large", q(&so_far(i))))?;
            v.prec = Some(p.unwrap_or(0));
        }
        let Some(&verb) = chars.get(i) else {
            return Err(format!(
                "incomplete verb {} at the end of the format string",
                q(&so_far(i))
            ));
        };
        i += 1;
        v.verb = verb;
        let text = so_far(i);
        let Some(arg) = args.get(next) else {
            let given = match args.len() {
                1 => "1 value was".to_string(),
                k => format!("{k} values were"),
            };
            return Err(format!(
                "not enough arguments: {} needs value {} but {given} given",
                q(&text),
                next + 1
            ));
        };
        next += 1;
        used = used.max(next);
        let (prefix, body, numeric) = render_verb(&v, arg, &text)?;
        let len = prefix.chars().count() + body.chars().count();
        let fill = v.width.unwrap_or(0).saturating_sub(len);
        if v.minus {
            out.push_str(&prefix);
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if v.zero && numeric {
            out.push_str(&prefix);
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(&prefix);
            out.push_str(&body);
        }
    }
    if used < args.len() {
        return Err(format!(
            "too many arguments: the format string uses {} of {}",
            count(used, "value"),
            args.len()
        ));
    }
    Ok(out)
}

/// Reads a width or precision; `Err` when it is above [`MAX_PAD`].
fn pad_number(chars: &[char], i: &mut usize) -> Result<Option<usize>, ()> {
    let mut n: Option<usize> = None;
    let mut too_large = false;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        let v = n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize);
        too_large |= v > MAX_PAD;
        n = Some(v.min(MAX_PAD + 1));
        *i += 1;
    }
    if too_large { Err(()) } else { Ok(n) }
}

/// One verb's text, split into a sign/radix prefix and the body so zero
/// padding can go between them.
fn render_verb(v: &Verb, arg: &Value, text: &str) -> Result<(String, String, bool), String> {
    let what = format!("the value for {}", q(text));
    let sign = |negative: bool| -> String {
        if negative {
            "-".into()
        } else if v.plus {
            "+".into()
        } else if v.space {
            " ".into()
        } else {
            String::new()
        }
    };
    match v.verb {
        'v' => {
            let s = match arg {
                _ if v.sharp => json_text(arg)?,
                Value::String(s) => s.clone(),
                Value::Number(n) => format_number(*n),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".into(),
                other => json_text(other)?,
            };
            Ok((String::new(), s, false))
        }
        's' => {
            let s = to_string(arg, &what)?;
            let s = match v.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            Ok((String::new(), s, false))
        }
        'q' => Ok((
            String::new(),
            serde_json::Value::String(to_string(arg, &what)?).to_string(),
            false,
        )),
        't' => Ok((String::new(), to_bool(arg, &what)?.to_string(), false)),
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = to_number(arg, &what)?;
            if !n.is_finite() || n.fract() != 0.0 {
                return Err(format!(
                    "{what} must be a whole number, got {}",
                    q(&format_number(n))
                ));
            }
            let mag = n.abs();
            let mut digits = if mag < 1.8e19 {
                let u = mag as u64;
                match v.verb {
                    'b' => format!("{u:b}"),
                    'o' => format!("{u:o}"),
                    'x' => format!("{u:x}"),
                    'X' => format!("{u:X}"),
                    _ => u.to_string(),
                }
            } else if v.verb == 'd' {
                format!("{mag:.0}")
            } else {
                return Err(format!("{what} is too large, got {}", q(&format_number(n))));
            };
            if let Some(p) = v.prec
                && digits.len() < p
            {
                digits.insert_str(0, &"0".repeat(p - digits.len()));
            }
            let radix = match (v.sharp, v.verb) {
                (true, 'b') => "0b",
                (true, 'o') => "0",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                _ => "",
            };
            // Go ignores the 0 flag when a precision is given.
            Ok((sign(n < 0.0) + radix, digits, v.prec.is_none()))
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let n = to_number(arg, &what)?;
            let mag = n.abs();
            let upper = v.verb.is_ascii_uppercase();
            let body = if mag.is_nan() {
                "NaN".to_string()
            } else if mag.is_infinite() {
                "Inf".to_string()
            } else {
                match v.verb {
                    'f' | 'F' => format!("{:.*}", v.prec.unwrap_or(6), mag),
                    'e' | 'E' => exp_form(mag, v.prec.unwrap_or(6), upper),
                    _ => general_form(mag, v.prec, upper, v.sharp),
                }
            };
            Ok((sign(n < 0.0), body, true))
        }
        _ => Err(format!("unrecognized verb {}", q(text))),
    }
}

/// `1.234560e+03`, as Go prints `%e`: a sign and at least two exponent digits.
fn exp_form(m: f64, prec: usize, upper: bool) -> String {
    let s = format!("{m:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    join_exp(mant, exp.parse().unwrap_or(0), upper)
}

fn join_exp(mant: &str, exp: i32, upper: bool) -> String {
    let e = if upper { 'E' } else { 'e' };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}{e}{sign}{:02}", exp.unsigned_abs())
}

/// Go's `%g`: the shorter of `%e` and `%f`, without trailing zeros.
fn general_form(m: f64, prec: Option<usize>, upper: bool, keep_zeros: bool) -> String {
    if m == 0.0 {
        return "0".into();
    }
    let strip = |s: String| -> String {
        if keep_zeros || !s.contains('.') {
            s
        } else {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    };
    match prec {
        None => {
            let s = format!("{m:e}");
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            // Go switches to the exponent form at 1e21 for shortest output.
            if !(-4..21).contains(&exp) {
                join_exp(mant, exp, upper)
            } else {
                format!("{m}")
            }
        }
        Some(p) => {
            let p = p.max(1);
            let s = format!("{:.*e}", p - 1, m);
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            if exp < -4 || exp >= p as i32 {
                join_exp(&strip(mant.to_string()), exp, upper)
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                strip(format!("{m:.decimals$}"))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------

fn alltrue(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let mut all = true;
    for (j, v) in l.iter().enumerate() {
        all &= to_bool(v, &elem_name(j, 0))?;
    }
    Ok(Value::Bool(all))
}

fn anytrue(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let mut any = false;
    for (j, v) in l.iter().enumerate() {
        any |= to_bool(v, &elem_name(j, 0))?;
    }
    Ok(Value::Bool(any))
}

fn chunklist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let size = a.int(1)?;
    if size < 0 {
        return Err(format!(
            "the chunk size must not be negative, got {}",
            qn(size)
        ));
    }
    if l.is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    // Terraform: size 0 means one chunk holding everything.
    if size == 0 {
        return Ok(Value::List(vec![Value::List(l.to_vec())]));
    }
    Ok(Value::List(
        l.chunks(size as usize)
            .map(|c| Value::List(c.to_vec()))
            .collect(),
    ))
}

fn coalesce(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let found =
        a.0.iter()
            .find(|v| !matches!(v, Value::Null) && v.as_str() != Some(""));
    let Some(v) = found else {
        return Err("all arguments are null or empty strings".into());
    };
    // Terraform unifies the arguments' types first: with any string among
    // them, a number or bool comes back as a string.
    let any_string = a.0.iter().any(|v| matches!(v, Value::String(_)));
    match v {
        Value::Number(_) | Value::Bool(_) if any_string => Ok(Value::String(to_string(v, "")?)),
        v => Ok(v.clone()),
    }
}

fn coalescelist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    for (i, v) in a.0.iter().enumerate() {
        match v {
            Value::Null => {}
            Value::List(l) if l.is_empty() => {}
            Value::List(_) => return Ok(v.clone()),
            other => {
                return Err(format!(
                    "{} must be a list, got {}",
                    arg_name(i),
                    type_name(other)
                ));
            }
        }
    }
    Err("all arguments are empty lists".into())
}

fn compact(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Vec::new();
    for (j, v) in a.list(0)?.iter().enumerate() {
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            v => out.push(Value::String(to_string(v, &elem_name(j, 0))?)),
        }
    }
    Ok(Value::List(out))
}

fn concat(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend_from_slice(a.list(i)?);
    }
    Ok(Value::List(out))
}

fn contains(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let needle = a.arg(1);
    Ok(Value::Bool(a.list(0)?.iter().any(|v| loose_eq(v, needle))))
}

fn distinct(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut seen = HashSet::new();
    Ok(Value::List(
        a.list(0)?
            .iter()
            .filter(|v| seen.insert(canon(v)))
            .cloned()
            .collect(),
    ))
}

fn element(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let index = a.int(1)?;
    if l.is_empty() {
        return Err("cannot take an element of an empty list".into());
    }
    if index < 0 {
        return Err(format!("the index must not be negative, got {}", qn(index)));
    }
    Ok(l[index as usize % l.len()].clone())
}

fn flatten(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    fn walk(l: &[Value], out: &mut Vec<Value>) {
        for v in l {
            match v {
                Value::List(inner) => walk(inner, out),
                v => out.push(v.clone()),
            }
        }
    }
    let mut out = Vec::new();
    walk(a.list(0)?, &mut out);
    Ok(Value::List(out))
}

fn index(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let needle = a.arg(1);
    match a.list(0)?.iter().position(|v| loose_eq(v, needle)) {
        Some(i) => Ok(Value::Number(i as f64)),
        None => Err(format!("item {} not found", qv(needle))),
    }
}

fn keys(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(
        a.map(0)?.keys().map(|k| Value::str(k.as_str())).collect(),
    ))
}

fn values(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(a.map(0)?.values().cloned().collect()))
}

fn length(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let n = match a.arg(0) {
        Value::String(s) => s.chars().count(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Null => return Err("argument 1 must not be null".into()),
        other => {
            return Err(format!(
                "argument 1 must be a string, list or map, got {}",
                type_name(other)
            ));
        }
    };
    Ok(Value::Number(n as f64))
}

fn lookup(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let key = a.string(1)?;
    if let Some(v) = a.map(0)?.get(&key) {
        return Ok(v.clone());
    }
    if a.len() == 3 {
        return Ok(a.take(2));
    }
    Err(format!("key {} not found and no default given", q(&key)))
}

fn merge(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Map::new();
    for i in 0..a.len() {
        match a.take(i) {
            Value::Null => {}
            Value::Map(m) => out.extend(m),
            other => {
                return Err(format!(
                    "{} must be a map, got {}",
                    arg_name(i),
                    type_name(&other)
                ));
            }
        }
    }
    Ok(Value::Map(out))
}

fn one(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.list(0)? {
        [] => Ok(Value::Null),
        [v] => Ok(v.clone()),
        l => Err(format!(
            "the list must have at most one element, got {}",
            l.len()
        )),
    }
}

fn reverse(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(a.list(0)?.iter().rev().cloned().collect()))
}

fn slice(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let (start, end) = (a.int(1)?, a.int(2)?);
    if start < 0 {
        return Err(format!(
            "the start index must not be negative, got {}",
            qn(start)
        ));
    }
    if end as i128 > l.len() as i128 {
        return Err(format!(
            "the end index {} is beyond the end of the list (length {})",
            qn(end),
            l.len()
        ));
    }
    if start > end {
        return Err(format!(
            "the start index {} is greater than the end index {}",
            qn(start),
            qn(end)
        ));
    }
    Ok(Value::List(l[start as usize..end as usize].to_vec()))
}

fn sort(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut items = a
        .list(0)?
        .iter()
        .enumerate()
        .map(|(j, v)| to_string(v, &elem_name(j, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    items.sort();
    Ok(Value::List(items.into_iter().map(Value::String).collect()))
}

fn zipmap(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let keys = a.list(0)?;
    let values = a.list(1)?;
    if keys.len() != values.len() {
        return Err(format!(
            "argument 1 has {} but argument 2 has {}",
            count(keys.len(), "key"),
            count(values.len(), "value")
        ));
    }
    let mut out = Map::new();
    for (j, (k, v)) in keys.iter().zip(values).enumerate() {
        out.insert(to_string(k, &elem_name(j, 0))?, v.clone());
    }
    Ok(Value::Map(out))
}

/// A set as berth stores it: a list without duplicates, strings and numbers
/// in order, as Terraform iterates its sets.
fn normalize_set(items: Vec<Value>) -> Vec<Value> {
    let primitive = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    let mixed_with_strings = items.iter().all(primitive)
        && items.iter().any(|v| matches!(v, Value::String(_)))
        && !items.iter().all(|v| matches!(v, Value::String(_)));
    let items: Vec<Value> = if mixed_with_strings {
        // Terraform converts a set of mixed primitives to a set of strings.
        items
            .into_iter()
            .map(|v| to_string(&v, "").map_or(v, Value::String))
            .collect()
    } else {
        items
    };
    let mut seen = HashSet::new();
    let mut out: Vec<Value> = items
        .into_iter()
        .filter(|v| seen.insert(canon(v)))
        .collect();
    if out.iter().all(|v| matches!(v, Value::String(_))) {
        out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    } else if out.iter().all(|v| matches!(v, Value::Number(_))) {
        out.sort_by(|a, b| {
            a.as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0))
        });
    } else if out.iter().all(|v| matches!(v, Value::Bool(_))) {
        out.sort_by_key(|v| v.as_bool());
    }
    out
}

fn setunion(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut all = Vec::new();
    for i in 0..a.len() {
        all.extend_from_slice(a.list(i)?);
    }
    Ok(Value::List(normalize_set(all)))
}

fn setintersection(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let first = normalize_set(a.list(0)?.to_vec());
    let mut others = Vec::new();
    for i in 1..a.len() {
        others.push(
            normalize_set(a.list(i)?.to_vec())
                .iter()
                .map(canon)
                .collect::<HashSet<_>>(),
        );
    }
    Ok(Value::List(
        first
            .into_iter()
            .filter(|v| others.iter().all(|o| o.contains(&canon(v))))
            .collect(),
    ))
}

fn setsubtract(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let first = normalize_set(a.list(0)?.to_vec());
    let minus: HashSet<String> = normalize_set(a.list(1)?.to_vec())
        .iter()
        .map(canon)
        .collect();
    Ok(Value::List(
        first
            .into_iter()
            .filter(|v| !minus.contains(&canon(v)))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------
// Type conversions and marks
// ---------------------------------------------------------------------------

fn passthrough(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // `call` handles `sensitive` and `nonsensitive` before getting here.
    Ok(a.take(0))
}

fn tostring(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.arg(0) {
        Value::Null => Ok(Value::Null),
        v @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => {
            Ok(Value::String(to_string(v, "")?))
        }
        other => Err(format!("cannot convert a {} to a string", type_name(other))),
    }
}

fn tonumber(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.arg(0) {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(s) => match parse_number(s) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(format!("cannot convert {} to a number", q(s))),
        },
        other => Err(format!("cannot convert a {} to a number", type_name(other))),
    }
}

fn tobool(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
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

fn tolist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.take(0) {
        v @ (Value::Null | Value::List(_)) => Ok(v),
        other => Err(format!("cannot convert a {} to a list", type_name(&other))),
    }
}

fn toset(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.take(0) {
        Value::Null => Ok(Value::Null),
        Value::List(l) => Ok(Value::List(normalize_set(l))),
        other => Err(format!("cannot convert a {} to a set", type_name(&other))),
    }
}

fn tomap(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.take(0) {
        v @ (Value::Null | Value::Map(_)) => Ok(v),
        other => Err(format!("cannot convert a {} to a map", type_name(&other))),
    }
}

// ---------------------------------------------------------------------------
// Encodings and hashes
// ---------------------------------------------------------------------------

fn base64encode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(BASE64.encode(a.string(0)?)))
}

fn base64decode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let bytes = BASE64
        .decode(a.string(0)?)
        .map_err(|_| "argument 1 is not valid base64".to_string())?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not valid UTF-8".to_string())
}

fn base64sha256(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(sha2::Sha256::digest(a.string(0)?)),
    ))
}

fn base64sha512(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(sha2::Sha512::digest(a.string(0)?)),
    ))
}

fn sha256(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(sha2::Sha256::digest(
        a.string(0)?,
    ))))
}

fn sha512(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(sha2::Sha512::digest(
        a.string(0)?,
    ))))
}

fn urlencode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // As Go's url.QueryEscape: unreserved bytes stay, space becomes `+`.
    let s = a.string(0)?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(Value::String(out))
}

fn jsonencode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(json_text(a.arg(0))?))
}

/// JSON with sorted keys and whole numbers without `.0`; `<`, `>`, `&`,
/// U+2028 and U+2029 escaped, as Terraform does so the output is safe to
/// embed in HTML and JavaScript.
fn json_text(v: &Value) -> Result<String, String> {
    fn check(v: &Value) -> Result<(), String> {
        match v {
            Value::Number(n) if !n.is_finite() => Err(format!(
                "cannot encode the non-finite number {} as JSON",
                q(&format_number(*n))
            )),
            Value::List(l) => l.iter().try_for_each(check),
            Value::Map(m) => m.values().try_for_each(check),
            _ => Ok(()),
        }
    }
    fn string(s: &str, out: &mut String) {
        for c in serde_json::Value::from(s).to_string().chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
    }
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Null | Value::Unknown => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // Whole numbers in full up to 1e21, as Terraform prints them;
            // beyond that, and for fractions, the shortest exact form.
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e21 => {
                out.push_str(&format!("{n:.0}"))
            }
            Value::Number(n) => out.push_str(&serde_json::Value::from(*n).to_string()),
            Value::String(s) => string(s, out),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(k, out);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Sensitive(v) => write(v, out),
        }
    }
    check(v)?;
    let mut out = String::new();
    write(v, &mut out);
    Ok(out)
}

fn jsondecode(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // Not Value::from_json: that would turn `{"$berth": "unknown"}` in a
    // user's document into an unknown.
    fn convert(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Number),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(l) => Value::List(l.into_iter().map(convert).collect()),
            serde_json::Value::Object(m) => {
                Value::Map(m.into_iter().map(|(k, v)| (k, convert(v))).collect())
            }
        }
    }
    let s = a.string(0)?;
    // serde_json's messages give a position, never the text itself.
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|e| format!("argument 1 is not valid JSON: {e}"))?;
    Ok(convert(j))
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

fn resolve(ctx: &FuncContext, path: &str) -> PathBuf {
    // Joining an absolute path yields that path.
    ctx.base_dir.join(path)
}

fn read_bytes(ctx: &FuncContext, a: &Args) -> Result<(PathBuf, Vec<u8>), String> {
    let path = resolve(ctx, &a.string(0)?);
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no file exists at {}", qp(&path)))
        }
        Err(e) => Err(format!("cannot read {}: {e}", qp(&path))),
    }
}

fn file(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let (path, bytes) = read_bytes(ctx, a)?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| {
        format!(
            "the contents of {} are not valid UTF-8; use `filebase64` for binary files",
            qp(&path)
        )
    })
}

fn filebase64(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let (_, bytes) = read_bytes(ctx, a)?;
    Ok(Value::String(BASE64.encode(bytes)))
}

fn fileexists(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let path = resolve(ctx, &a.string(0)?);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", qp(&path))),
        Ok(_) => Err(format!("{} is not a regular file", qp(&path))),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Value::Bool(false))
        }
        Err(e) => Err(format!("cannot check {}: {e}", qp(&path))),
    }
}

// ---------------------------------------------------------------------------
// IP networks
// ---------------------------------------------------------------------------

/// A prefix as integers: IPv4 addresses live in the low 32 bits.
struct Cidr {
    addr: u128,
    len: u32,
    /// 32 or 128.
    bits: u32,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let net: IpNet = s
            .parse()
            .ok()
            .or_else(|| without_leading_zeros(s)?.parse().ok())
            .ok_or_else(|| format!("prefix {} is not a valid CIDR", q(s)))?;
        // Host bits in the prefix are ignored, as Go's ParseCIDR does.
        Ok(match net.trunc() {
            IpNet::V4(n) => Cidr {
                addr: u128::from(u32::from(n.addr())),
                len: u32::from(n.prefix_len()),
                bits: 32,
            },
            IpNet::V6(n) => Cidr {
                addr: u128::from(n.addr()),
                len: u32::from(n.prefix_len()),
                bits: 128,
            },
        })
    }

    fn host_bits(&self) -> u32 {
        self.bits - self.len
    }

    fn family(&self) -> &'static str {
        if self.bits == 32 { "IPv4" } else { "IPv6" }
    }

    fn show_addr(&self, addr: u128) -> String {
        if self.bits == 32 {
            Ipv4Addr::from(addr as u32).to_string()
        } else {
            Ipv6Addr::from(addr).to_string()
        }
    }
}

/// Terraform reads IPv4 octets with leading zeros as decimal; Rust's parser
/// refuses them.
fn without_leading_zeros(s: &str) -> Option<String> {
    let (addr, len) = s.split_once('/')?;
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| match p.trim_start_matches('0') {
            "" => "0",
            t => t,
        })
        .collect();
    Some(format!("{}/{len}", parts.join(".")))
}

/// The lowest `bits` bits set.
fn low_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn cidrhost(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let hostnum = a.int(1)?;
    let host_bits = net.host_bits();
    let mask = low_mask(host_bits);
    let magnitude = u128::from(hostnum.unsigned_abs());
    // Negative numbers count back from the end: -1 is the last address.
    let fits = if hostnum >= 0 {
        magnitude <= mask
    } else {
        magnitude - 1 <= mask
    };
    if !fits {
        return Err(format!(
            "host number {} does not fit in the {} host bits of {}",
            qn(hostnum),
            host_bits,
            q(&prefix)
        ));
    }
    let offset = if hostnum >= 0 {
        magnitude
    } else {
        magnitude.wrapping_neg() & mask
    };
    Ok(Value::String(net.show_addr(net.addr | offset)))
}

fn cidrnetmask(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    if net.bits != 32 {
        return Err(format!(
            "only IPv4 prefixes have a netmask, and {} is IPv6",
            q(&prefix)
        ));
    }
    let mask = !low_mask(net.host_bits()) & low_mask(32);
    Ok(Value::String(net.show_addr(mask)))
}

fn cidrsubnet(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let newbits = a.int(1)?;
    let netnum = a.int(2)?;
    if newbits < 0 {
        return Err(format!("newbits must not be negative, got {}", qn(newbits)));
    }
    if netnum < 0 {
        return Err(format!("netnum must not be negative, got {}", qn(netnum)));
    }
    let new_len = u64::from(net.len) + newbits as u64;
    if new_len > u64::from(net.bits) {
        return Err(format!(
            "cannot extend {} by {} bits: an {} prefix has at most {} bits",
            q(&prefix),
            qn(newbits),
            net.family(),
            net.bits
        ));
    }
    let newbits = newbits as u32;
    if netnum as u128 > low_mask(newbits) {
        return Err(format!(
            "netnum {} does not fit in {} new bits (the largest is {})",
            qn(netnum),
            qn(newbits),
            qn(low_mask(newbits))
        ));
    }
    let new_len = new_len as u32;
    let offset = (netnum as u128)
        .checked_shl(net.bits - new_len)
        .unwrap_or(0);
    Ok(Value::String(format!(
        "{}/{new_len}",
        net.show_addr(net.addr | offset)
    )))
}

fn cidrsubnets(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let prefix = a.string(0)?;
    let net = Cidr::parse(&prefix)?;
    let last_offset = low_mask(net.host_bits());
    // The next free offset inside the prefix; None once the space is used up
    // to its very last address.
    let mut next: Option<u128> = Some(0);
    let mut out = Vec::new();
    for i in 1..a.len() {
        let newbits = a.int(i)?;
        if newbits < 0 {
            return Err(format!(
                "{} (newbits) must not be negative, got {}",
                arg_name(i),
                qn(newbits)
            ));
        }
        let new_len = u64::from(net.len) + newbits as u64;
        if new_len > u64::from(net.bits) {
            return Err(format!(
                "{} would extend {} to a /{} prefix, longer than an {} address",
                arg_name(i),
                q(&prefix),
                new_len,
                net.family()
            ));
        }
        let new_len = new_len as u32;
        let size_mask = low_mask(net.bits - new_len);
        // Each subnet starts at the next address aligned to its own size.
        let start = next.and_then(|p| {
            if p & size_mask == 0 {
                Some(p)
            } else {
                (p | size_mask).checked_add(1)
            }
        });
        let end = start
            .and_then(|s| s.checked_add(size_mask))
            .filter(|e| *e <= last_offset);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(format!(
                "not enough address space left in {} for a /{} subnet ({})",
                q(&prefix),
                new_len,
                arg_name(i)
            ));
        };
        out.push(Value::String(format!(
            "{}/{new_len}",
            net.show_addr(net.addr | start)
        )));
        next = end.checked_add(1);
    }
    Ok(Value::List(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn run(name: &str, args: Vec<Value>) -> Result<Value, FuncError> {
        call(
            name,
            args,
            &FuncContext {
                base_dir: Path::new("."),
            },
        )
    }

    #[track_caller]
    fn ok(name: &str, args: Vec<Value>) -> Value {
        match run(name, args) {
            Ok(v) => v,
            Err(e) => panic!("{name} failed: {e}"),
        }
    }

    #[track_caller]
    fn err(name: &str, args: Vec<Value>) -> String {
        match run(name, args) {
            Ok(v) => panic!("{name} succeeded with {v:?}, expected an error"),
            Err(e) => e.0,
        }
    }

    fn s(x: &str) -> Value {
        Value::str(x)
    }
    fn n(x: f64) -> Value {
        Value::Number(x)
    }
    fn l(items: Vec<Value>) -> Value {
        Value::List(items)
    }
    fn ls(items: &[&str]) -> Value {
        l(items.iter().map(|x| s(x)).collect())
    }
    fn ln(items: &[f64]) -> Value {
        l(items.iter().map(|x| n(*x)).collect())
    }
    fn secret(v: Value) -> Value {
        Value::Sensitive(Box::new(v))
    }

    // --- registry -----------------------------------------------------------

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
        for name in ["try", "can", "templatefile", "uuid", "timestamp"] {
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

    // --- marks ----------------------------------------------------------------

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
        assert_eq!(ok("length", vec![l(vec![Value::Unknown])]), Value::Unknown);
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

    // --- networks -------------------------------------------------------------

    #[test]
    fn cidrsubnet_matches_terraform_examples() {
        assert_eq!(
            ok("cidrsubnet", vec![s("172.16.0.0/12"), n(4.0), n(2.0)]),
            s("172.18.0.0/16")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("10.1.2.0/24"), n(4.0), n(15.0)]),
            s("10.1.2.240/28")
        );
        assert_eq!(
            ok(
                "cidrsubnet",
                vec![s("fd00:fd12:3456:7890::/56"), n(16.0), n(162.0)]
            ),
            s("fd00:fd12:3456:7800:a200::/72")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("10.0.0.0/8"), n(8.0), n(2.0)]),
            s("10.2.0.0/16")
        );
        // Numbers given as strings convert, as in Terraform.
        assert_eq!(
            ok("cidrsubnet", vec![s("10.0.0.0/8"), s("8"), s("2")]),
            s("10.2.0.0/16")
        );
        // Host bits in the prefix are dropped.
        assert_eq!(
            ok("cidrsubnet", vec![s("10.1.2.99/24"), n(0.0), n(0.0)]),
            s("10.1.2.0/24")
        );
        // Leading zeros are decimal.
        assert_eq!(
            ok("cidrsubnet", vec![s("010.001.0.0/16"), n(8.0), n(1.0)]),
            s("10.1.1.0/24")
        );
        // Edges of the address space.
        assert_eq!(
            ok("cidrsubnet", vec![s("::/0"), n(128.0), n(5.0)]),
            s("::5/128")
        );
        assert_eq!(
            ok("cidrsubnet", vec![s("0.0.0.0/0"), n(32.0), n(4294967295.0)]),
            s("255.255.255.255/32")
        );
        assert_eq!(ok("cidrsubnet", vec![s("::/0"), n(0.0), n(0.0)]), s("::/0"));
    }

    #[test]
    fn cidrsubnet_errors() {
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/33"), n(1.0), n(0.0)]),
            "cidrsubnet: prefix `10.0.0.0/33` is not a valid CIDR"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0"), n(1.0), n(0.0)]),
            "cidrsubnet: prefix `10.0.0.0` is not a valid CIDR"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/30"), n(4.0), n(0.0)]),
            "cidrsubnet: cannot extend `10.0.0.0/30` by `4` bits: an IPv4 prefix has at most 32 bits"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(4.0), n(16.0)]),
            "cidrsubnet: netnum `16` does not fit in `4` new bits (the largest is `15`)"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(-1.0), n(0.0)]),
            "cidrsubnet: newbits must not be negative, got `-1`"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(4.0), n(-1.0)]),
            "cidrsubnet: netnum must not be negative, got `-1`"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("10.0.0.0/8"), n(1.5), n(0.0)]),
            "cidrsubnet: argument 2 must be a whole number, got `1.5`"
        );
        assert_eq!(
            err("cidrsubnet", vec![l(vec![]), n(1.0), n(0.0)]),
            "cidrsubnet: argument 1 must be a string, got list"
        );
        assert_eq!(
            err("cidrsubnet", vec![s("::/0"), n(129.0), n(0.0)]),
            "cidrsubnet: cannot extend `::/0` by `129` bits: an IPv6 prefix has at most 128 bits"
        );
    }

    #[test]
    fn cidrhost_matches_terraform_examples() {
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(16.0)]),
            s("10.12.112.16")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(268.0)]),
            s("10.12.113.12")
        );
        assert_eq!(
            ok(
                "cidrhost",
                vec![s("fd00:fd12:3456:7890:00a2::/72"), n(34.0)]
            ),
            s("fd00:fd12:3456:7890::22")
        );
        assert_eq!(ok("cidrhost", vec![s("10.0.0.0/8"), n(2.0)]), s("10.0.0.2"));
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/8"), n(-2.0)]),
            s("10.255.255.254")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.12.112.0/20"), n(-2.0)]),
            s("10.12.127.254")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/24"), n(-256.0)]),
            s("10.0.0.0")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.0/24"), n(255.0)]),
            s("10.0.0.255")
        );
        assert_eq!(
            ok("cidrhost", vec![s("10.0.0.7/32"), n(0.0)]),
            s("10.0.0.7")
        );
        assert_eq!(
            ok("cidrhost", vec![s("::/0"), n(-1.0)]),
            s("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn cidrhost_errors() {
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.0/24"), n(256.0)]),
            "cidrhost: host number `256` does not fit in the 8 host bits of `10.0.0.0/24`"
        );
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.0/24"), n(-257.0)]),
            "cidrhost: host number `-257` does not fit in the 8 host bits of `10.0.0.0/24`"
        );
        assert_eq!(
            err("cidrhost", vec![s("10.0.0.1/32"), n(1.0)]),
            "cidrhost: host number `1` does not fit in the 0 host bits of `10.0.0.1/32`"
        );
        assert_eq!(
            err("cidrhost", vec![s("nonsense"), n(1.0)]),
            "cidrhost: prefix `nonsense` is not a valid CIDR"
        );
    }

    #[test]
    fn cidrnetmask_works_for_ipv4_only() {
        assert_eq!(
            ok("cidrnetmask", vec![s("172.16.0.0/12")]),
            s("255.240.0.0")
        );
        assert_eq!(
            ok("cidrnetmask", vec![s("10.0.0.0/32")]),
            s("255.255.255.255")
        );
        assert_eq!(ok("cidrnetmask", vec![s("0.0.0.0/0")]), s("0.0.0.0"));
        assert_eq!(
            err("cidrnetmask", vec![s("fd00::/8")]),
            "cidrnetmask: only IPv4 prefixes have a netmask, and `fd00::/8` is IPv6"
        );
    }

    #[test]
    fn cidrsubnets_matches_terraform_examples() {
        assert_eq!(
            ok(
                "cidrsubnets",
                vec![s("10.1.0.0/16"), n(4.0), n(4.0), n(8.0), n(4.0)]
            ),
            ls(&[
                "10.1.0.0/20",
                "10.1.16.0/20",
                "10.1.32.0/24",
                "10.1.48.0/20"
            ])
        );
        assert_eq!(
            ok(
                "cidrsubnets",
                vec![
                    s("fd00:fd12:3456:7890::/56"),
                    n(16.0),
                    n(16.0),
                    n(16.0),
                    n(32.0)
                ]
            ),
            ls(&[
                "fd00:fd12:3456:7800::/72",
                "fd00:fd12:3456:7800:100::/72",
                "fd00:fd12:3456:7800:200::/72",
                "fd00:fd12:3456:7800:300::/88",
            ])
        );
        assert_eq!(ok("cidrsubnets", vec![s("10.0.0.0/8")]), l(vec![]));
        assert_eq!(
            ok("cidrsubnets", vec![s("::/0"), n(1.0), n(1.0)]),
            ls(&["::/1", "8000::/1"])
        );
        assert_eq!(
            ok("cidrsubnets", vec![s("0.0.0.0/0"), n(0.0)]),
            ls(&["0.0.0.0/0"])
        );
        // A small subnet followed by a large one skips to the next boundary.
        assert_eq!(
            ok("cidrsubnets", vec![s("10.0.0.0/24"), n(4.0), n(1.0)]),
            ls(&["10.0.0.0/28", "10.0.0.128/25"])
        );
    }

    #[test]
    fn cidrsubnets_errors() {
        assert_eq!(
            err(
                "cidrsubnets",
                vec![s("10.0.0.0/24"), n(1.0), n(1.0), n(1.0)]
            ),
            "cidrsubnets: not enough address space left in `10.0.0.0/24` for a /25 subnet (argument 4)"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("::/0"), n(1.0), n(1.0), n(1.0)]),
            "cidrsubnets: not enough address space left in `::/0` for a /1 subnet (argument 4)"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("10.0.0.0/24"), n(9.0)]),
            "cidrsubnets: argument 2 would extend `10.0.0.0/24` to a /33 prefix, longer than an IPv4 address"
        );
        assert_eq!(
            err("cidrsubnets", vec![s("10.0.0.0/24"), n(-1.0)]),
            "cidrsubnets: argument 2 (newbits) must not be negative, got `-1`"
        );
    }

    // --- format ---------------------------------------------------------------

    fn fmt(spec: &str, args: Vec<Value>) -> Value {
        let mut all = vec![s(spec)];
        all.extend(args);
        ok("format", all)
    }

    fn fmt_err(spec: &str, args: Vec<Value>) -> String {
        let mut all = vec![s(spec)];
        all.extend(args);
        err("format", all)
    }

    #[test]
    fn format_verbs() {
        assert_eq!(fmt("Hello, %s!", vec![s("Ander")]), s("Hello, Ander!"));
        assert_eq!(
            fmt("There are %d lights", vec![n(4.0)]),
            s("There are 4 lights")
        );
        assert_eq!(
            fmt(
                "%v %v %v %v",
                vec![s("a"), n(1.5), Value::Bool(true), Value::Null]
            ),
            s("a 1.5 true null")
        );
        assert_eq!(
            fmt("%v", vec![obj([("b", n(1.0)), ("a", ls(&["x"]))])]),
            s(r#"{"a":["x"],"b":1}"#)
        );
        assert_eq!(fmt("%#v", vec![s("a")]), s(r#""a""#));
        assert_eq!(fmt("%q", vec![s("a\"b")]), s(r#""a\"b""#));
        assert_eq!(fmt("%t", vec![Value::Bool(false)]), s("false"));
        assert_eq!(fmt("%t", vec![s("true")]), s("true"));
        assert_eq!(fmt("%f", vec![n(1.23456)]), s("1.234560"));
        assert_eq!(fmt("%.2f", vec![n(1.23456)]), s("1.23"));
        assert_eq!(fmt("%.0f", vec![n(2.5)]), s("2"));
        assert_eq!(fmt("%e", vec![n(1234.5678)]), s("1.234568e+03"));
        assert_eq!(fmt("%E", vec![n(0.000123)]), s("1.230000E-04"));
        assert_eq!(fmt("%g", vec![n(1234.5)]), s("1234.5"));
        assert_eq!(fmt("%g", vec![n(1e21)]), s("1e+21"));
        assert_eq!(fmt("%g", vec![n(0.00001)]), s("1e-05"));
        assert_eq!(fmt("%.3g", vec![n(1234.5)]), s("1.23e+03"));
        assert_eq!(fmt("%.3g", vec![n(1.5)]), s("1.5"));
        assert_eq!(
            fmt("%b %o %x %X", vec![n(5.0), n(8.0), n(255.0), n(255.0)]),
            s("101 10 ff FF")
        );
        assert_eq!(
            fmt("%#x %#o %#b", vec![n(255.0), n(8.0), n(2.0)]),
            s("0xff 010 0b10")
        );
        assert_eq!(fmt("%d", vec![n(-42.0)]), s("-42"));
        assert_eq!(fmt("%d", vec![s("7")]), s("7"));
        assert_eq!(fmt("%s", vec![n(7.0)]), s("7"));
        assert_eq!(fmt("%d", vec![n(1e20)]), s("100000000000000000000"));
        assert_eq!(fmt("100%%", vec![]), s("100%"));
        assert_eq!(fmt("%[2]s %[1]s", vec![s("a"), s("b")]), s("b a"));
        assert_eq!(fmt("ünïcødé %s", vec![s("🤔")]), s("ünïcødé 🤔"));
    }

    #[test]
    fn format_flags_width_and_precision() {
        assert_eq!(fmt("[%5s]", vec![s("ab")]), s("[   ab]"));
        assert_eq!(fmt("[%-5s]", vec![s("ab")]), s("[ab   ]"));
        assert_eq!(
            fmt("[%5s]", vec![s("ü")]),
            s("[    ü]"),
            "width counts characters"
        );
        assert_eq!(fmt("[%.2s]", vec![s("abcdef")]), s("[ab]"));
        assert_eq!(fmt("[%05d]", vec![n(-42.0)]), s("[-0042]"));
        assert_eq!(fmt("[%+d]", vec![n(42.0)]), s("[+42]"));
        assert_eq!(fmt("[% d]", vec![n(42.0)]), s("[ 42]"));
        assert_eq!(fmt("[%6.2f]", vec![n(1.23456)]), s("[  1.23]"));
        assert_eq!(fmt("[%06.2f]", vec![n(-1.23456)]), s("[-01.23]"));
        assert_eq!(fmt("[%.3d]", vec![n(7.0)]), s("[007]"));
        assert_eq!(fmt("[%-4d]", vec![n(7.0)]), s("[7   ]"));
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            fmt_err("%s %s", vec![s("a")]),
            "format: not enough arguments: `%s` needs value 2 but 1 value was given"
        );
        assert_eq!(
            fmt_err("%s", vec![]),
            "format: not enough arguments: `%s` needs value 1 but 0 values were given"
        );
        assert_eq!(
            fmt_err("%s", vec![s("a"), s("b")]),
            "format: too many arguments: the format string uses 1 value of 2"
        );
        assert_eq!(
            fmt_err("plain", vec![s("a")]),
            "format: too many arguments: the format string uses 0 values of 1"
        );
        assert_eq!(
            fmt_err("%d", vec![n(1.5)]),
            "format: the value for `%d` must be a whole number, got `1.5`"
        );
        assert_eq!(
            fmt_err("%d", vec![s("x")]),
            "format: the value for `%d` must be a number, got `x`"
        );
        assert_eq!(
            fmt_err("%s", vec![ls(&["a"])]),
            "format: the value for `%s` must be a string, got list"
        );
        assert_eq!(
            fmt_err("%s", vec![Value::Null]),
            "format: the value for `%s` must not be null"
        );
        assert_eq!(
            fmt_err("%t", vec![n(1.0)]),
            "format: the value for `%t` must be a bool, got number"
        );
        assert_eq!(
            fmt_err("%y", vec![s("a")]),
            "format: unrecognized verb `%y`"
        );
        assert_eq!(
            fmt_err("abc %", vec![]),
            "format: incomplete verb `%` at the end of the format string"
        );
        assert_eq!(
            fmt_err("%-5", vec![]),
            "format: incomplete verb `%-5` at the end of the format string"
        );
        assert_eq!(
            fmt_err("%[3]s", vec![s("a")]),
            "format: invalid argument index in `%[3]`"
        );
        assert_eq!(
            fmt_err("%[x", vec![s("a")]),
            "format: invalid argument index in `%[`"
        );
        assert_eq!(
            fmt_err("%99999s", vec![s("a")]),
            "format: width in `%99999` is too large"
        );
        assert_eq!(
            fmt_err("%.99999f", vec![n(1.0)]),
            "format: precision in `%.99999` is too large"
        );
        assert_eq!(
            fmt_err("%x", vec![n(1e20)]),
            "format: the value for `%x` is too large, got `100000000000000000000`"
        );
        assert_eq!(
            err("format", vec![ls(&[])]),
            "format: argument 1 must be a string, got list"
        );
    }

    #[test]
    fn formatlist_iterates_lists_in_step() {
        assert_eq!(
            ok(
                "formatlist",
                vec![
                    s("Hello, %s!"),
                    ls(&["Valentina", "Ander", "Olivia", "Sam"])
                ]
            ),
            ls(&[
                "Hello, Valentina!",
                "Hello, Ander!",
                "Hello, Olivia!",
                "Hello, Sam!"
            ])
        );
        assert_eq!(
            ok(
                "formatlist",
                vec![s("%s, %s!"), s("Salutations"), ls(&["Valentina", "Ander"])]
            ),
            ls(&["Salutations, Valentina!", "Salutations, Ander!"])
        );
        assert_eq!(
            ok(
                "formatlist",
                vec![s("%s=%d"), ls(&["a", "b"]), ln(&[1.0, 2.0])]
            ),
            ls(&["a=1", "b=2"])
        );
        assert_eq!(ok("formatlist", vec![s("%s"), s("x")]), ls(&["x"]));
        assert_eq!(ok("formatlist", vec![s("%s"), ls(&[])]), l(vec![]));
        assert_eq!(
            err("formatlist", vec![s("%s%s"), ls(&["a", "b"]), ls(&["a"])]),
            "formatlist: argument 3 has 1 element but argument 2 has 2 elements"
        );
        assert_eq!(
            err("formatlist", vec![s("%d"), ls(&["1", "x"])]),
            "formatlist: element 1: the value for `%d` must be a number, got `x`"
        );
    }

    // --- strings ----------------------------------------------------------------

    #[test]
    fn string_functions() {
        assert_eq!(
            ok("join", vec![s(", "), ls(&["foo", "bar", "baz"])]),
            s("foo, bar, baz")
        );
        assert_eq!(
            ok("join", vec![s(","), ls(&["a"]), ln(&[1.0, 2.5])]),
            s("a,1,2.5")
        );
        assert_eq!(ok("join", vec![s(","), ls(&[])]), s(""));
        assert_eq!(
            ok("split", vec![s(","), s("foo,bar,baz")]),
            ls(&["foo", "bar", "baz"])
        );
        assert_eq!(ok("split", vec![s(","), s("")]), ls(&[""]));
        assert_eq!(ok("split", vec![s(""), s("aü")]), ls(&["a", "ü"]));
        assert_eq!(ok("lower", vec![s("HELLO Ünï")]), s("hello ünï"));
        assert_eq!(ok("upper", vec![s("hello ünï")]), s("HELLO ÜNÏ"));
        assert_eq!(
            ok("upper", vec![n(1.5)]),
            s("1.5"),
            "numbers convert to strings"
        );
        assert_eq!(ok("upper", vec![Value::Bool(true)]), s("TRUE"));
        assert_eq!(ok("title", vec![s("hello world")]), s("Hello World"));
        assert_eq!(
            ok("title", vec![s("hello-world foo_bar ünï")]),
            s("Hello-World Foo_bar Ünï")
        );
        assert_eq!(
            ok("replace", vec![s("1 + 2 + 3"), s("+"), s("-")]),
            s("1 - 2 - 3")
        );
        assert_eq!(
            ok(
                "replace",
                vec![s("hello world"), s("/w.*d/"), s("everybody")]
            ),
            s("hello everybody")
        );
        assert_eq!(
            ok("replace", vec![s("a1b22"), s("/([0-9]+)/"), s("<$1>")]),
            s("a<1>b<22>")
        );
        assert_eq!(
            ok("replace", vec![s("a/b"), s("/"), s("|")]),
            s("a|b"),
            "a lone slash is plain"
        );
        assert_eq!(ok("trimspace", vec![s("  hello\n\t")]), s("hello"));
        assert_eq!(ok("trim", vec![s("?!hello?!"), s("!?")]), s("hello"));
        assert_eq!(
            ok("trimprefix", vec![s("helloworld"), s("hello")]),
            s("world")
        );
        assert_eq!(
            ok("trimprefix", vec![s("helloworld"), s("cat")]),
            s("helloworld")
        );
        assert_eq!(
            ok("trimsuffix", vec![s("helloworld"), s("world")]),
            s("hello")
        );
        assert_eq!(
            ok("startswith", vec![s("hello world"), s("hello")]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("endswith", vec![s("hello world"), s("hello")]),
            Value::Bool(false)
        );
        assert_eq!(
            ok("strcontains", vec![s("hello world"), s("o w")]),
            Value::Bool(true)
        );
        assert_eq!(ok("chomp", vec![s("hello\r\n\n")]), s("hello"));
        assert_eq!(ok("strrev", vec![s("héllo")]), s("olléh"));
        assert_eq!(
            ok("indent", vec![n(2.0), s("[\n  foo,\n]")]),
            s("[\n    foo,\n  ]")
        );
    }

    #[test]
    fn substr_follows_terraform() {
        assert_eq!(
            ok("substr", vec![s("hello world"), n(1.0), n(4.0)]),
            s("ello")
        );
        assert_eq!(ok("substr", vec![s("🤔🤷"), n(0.0), n(1.0)]), s("🤔"));
        assert_eq!(
            ok("substr", vec![s("hello world"), n(-5.0), n(-1.0)]),
            s("world")
        );
        assert_eq!(ok("substr", vec![s("hello"), n(10.0), n(2.0)]), s(""));
        assert_eq!(ok("substr", vec![s("hello"), n(-10.0), n(2.0)]), s("he"));
        assert_eq!(ok("substr", vec![s("hello"), n(1.0), n(100.0)]), s("ello"));
        assert_eq!(ok("substr", vec![s(""), n(0.0), n(1.0)]), s(""));
    }

    #[test]
    fn regex_functions() {
        assert_eq!(
            ok(
                "regex",
                vec![s("[a-z]+"), s("53453453.345345aaabbbccc23454")]
            ),
            s("aaabbbccc")
        );
        assert_eq!(
            ok(
                "regex",
                vec![s(r"(\d\d\d\d)-(\d\d)-(\d\d)"), s("2019-02-01")]
            ),
            ls(&["2019", "02", "01"])
        );
        assert_eq!(
            ok(
                "regex",
                vec![
                    s(r"^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?"),
                    s("https://terraform.io/docs/")
                ]
            ),
            obj([("authority", s("terraform.io")), ("scheme", s("https"))])
        );
        assert_eq!(
            ok("regexall", vec![s("[a-z]+"), s("1234abcd5678efgh9")]),
            ls(&["abcd", "efgh"])
        );
        assert_eq!(ok("regexall", vec![s("[a-z]+"), s("123")]), l(vec![]));
        assert_eq!(
            err("regex", vec![s("[a-z]+"), s("123")]),
            "regex: pattern `[a-z]+` does not match `123`"
        );
        assert_eq!(
            err("regex", vec![s("(a"), s("a")]),
            "regex: invalid regular expression `(a`: unclosed group"
        );
        assert_eq!(
            err("regex", vec![s("(?P<x>a)(b)"), s("ab")]),
            "regex: pattern `(?P<x>a)(b)` mixes named and unnamed capture groups"
        );
        assert_eq!(
            err("replace", vec![s("a"), s("/(/"), s("b")]),
            "replace: invalid regular expression `(`: unclosed group"
        );
    }

    #[test]
    fn string_errors() {
        assert_eq!(
            err("upper", vec![ls(&[])]),
            "upper: argument 1 must be a string, got list"
        );
        assert_eq!(
            err("upper", vec![Value::Null]),
            "upper: argument 1 must not be null"
        );
        assert_eq!(
            err("lower", vec![obj([("a", n(1.0))])]),
            "lower: argument 1 must be a string, got map"
        );
        assert_eq!(
            err("join", vec![s(","), l(vec![s("a"), Value::Null])]),
            "join: element 1 of argument 2 must not be null"
        );
        assert_eq!(
            err("join", vec![s(","), s("a")]),
            "join: argument 2 must be a list, got string"
        );
        assert_eq!(
            err("indent", vec![n(-1.0), s("a")]),
            "indent: the number of spaces must be between 0 and 10000, got `-1`"
        );
        assert_eq!(
            err("indent", vec![n(1e15), s("a")]),
            "indent: the number of spaces must be between 0 and 10000, got `1000000000000000`"
        );
        assert_eq!(
            err("substr", vec![s("a"), n(0.5), n(1.0)]),
            "substr: argument 2 must be a whole number, got `0.5`"
        );
        assert_eq!(
            err("substr", vec![s("a"), n(1e20), n(1.0)]),
            "substr: argument 2 is out of range, got `100000000000000000000`"
        );
        let long = err("upper", vec![s(&"x".repeat(1000)).clone(), s("y")]);
        assert_eq!(long, "upper: expects 1 argument, got 2");
        let e = err("tonumber", vec![s(&"x".repeat(1000))]);
        assert!(e.len() < 200 && e.contains("x…`"), "long data is cut: {e}");
    }

    // --- numbers ----------------------------------------------------------------

    #[test]
    fn number_functions() {
        assert_eq!(ok("min", vec![n(12.0), n(54.0), n(3.0)]), n(3.0));
        assert_eq!(ok("max", vec![n(12.0), n(54.0), n(3.0)]), n(54.0));
        assert_eq!(
            ok("max", vec![s("12"), n(5.0)]),
            n(12.0),
            "numeric strings convert"
        );
        assert_eq!(ok("abs", vec![n(-12.4)]), n(12.4));
        assert_eq!(ok("ceil", vec![n(4.1)]), n(5.0));
        assert_eq!(ok("floor", vec![n(4.9)]), n(4.0));
        assert_eq!(ok("floor", vec![n(-4.1)]), n(-5.0));
        assert_eq!(ok("pow", vec![n(3.0), n(2.0)]), n(9.0));
        assert_eq!(ok("pow", vec![n(4.0), n(0.0)]), n(1.0));
        assert_eq!(ok("log", vec![n(16.0), n(2.0)]), n(4.0));
        assert_eq!(ok("signum", vec![n(-13.0)]), n(-1.0));
        assert_eq!(ok("signum", vec![n(0.0)]), n(0.0));
        assert_eq!(ok("parseint", vec![s("100"), n(10.0)]), n(100.0));
        assert_eq!(ok("parseint", vec![s("FF"), n(16.0)]), n(255.0));
        assert_eq!(ok("parseint", vec![s("-10"), n(16.0)]), n(-16.0));
        assert_eq!(
            ok("parseint", vec![s("1011111011101111"), n(2.0)]),
            n(48879.0)
        );
        assert_eq!(
            ok("parseint", vec![s("aA"), n(62.0)]),
            n(10.0 * 62.0 + 36.0)
        );
        assert_eq!(ok("sum", vec![ln(&[10.0, 13.0, 6.0, 4.5])]), n(33.5));
        assert_eq!(ok("sum", vec![ls(&["1", "2"])]), n(3.0));
    }

    #[test]
    fn number_errors() {
        assert_eq!(
            err("abs", vec![s("x")]),
            "abs: argument 1 must be a number, got `x`"
        );
        assert_eq!(
            err("abs", vec![s(" 1")]),
            "abs: argument 1 must be a number, got ` 1`"
        );
        assert_eq!(
            err("abs", vec![s("inf")]),
            "abs: argument 1 must be a number, got `inf`"
        );
        assert_eq!(
            err("abs", vec![Value::Bool(true)]),
            "abs: argument 1 must be a number, got bool"
        );
        assert_eq!(
            err("pow", vec![n(10.0), n(400.0)]),
            "pow: the result is not a finite number"
        );
        assert_eq!(
            err("log", vec![n(-1.0), n(10.0)]),
            "log: the result is not a finite number"
        );
        assert_eq!(
            err("max", vec![ln(&[1.0, 2.0])]),
            "max: argument 1 must be a number, got list (expand a list with `...`)"
        );
        assert_eq!(err("sum", vec![ln(&[])]), "sum: cannot sum an empty list");
        assert_eq!(
            err("sum", vec![ln(&[1e308, 1e308])]),
            "sum: the result is not a finite number"
        );
        assert_eq!(
            err("sum", vec![l(vec![n(1.0), s("x")])]),
            "sum: element 1 of argument 1 must be a number, got `x`"
        );
        assert_eq!(
            err("parseint", vec![s("12"), n(1.0)]),
            "parseint: base `1` must be between 2 and 62"
        );
        assert_eq!(
            err("parseint", vec![s("12G"), n(16.0)]),
            "parseint: cannot parse `12G` as a base-16 integer"
        );
        assert_eq!(
            err("parseint", vec![s(""), n(10.0)]),
            "parseint: cannot parse `` as a base-10 integer"
        );
        assert_eq!(
            err("parseint", vec![s("99999999999999999999"), n(10.0)]),
            "parseint: `99999999999999999999` is too large"
        );
    }

    #[test]
    fn range_follows_terraform() {
        assert_eq!(ok("range", vec![n(3.0)]), ln(&[0.0, 1.0, 2.0]));
        assert_eq!(ok("range", vec![n(1.0), n(4.0)]), ln(&[1.0, 2.0, 3.0]));
        assert_eq!(
            ok("range", vec![n(1.0), n(8.0), n(2.0)]),
            ln(&[1.0, 3.0, 5.0, 7.0])
        );
        assert_eq!(
            ok("range", vec![n(1.0), n(4.0), n(0.5)]),
            ln(&[1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
        );
        assert_eq!(ok("range", vec![n(4.0), n(1.0)]), ln(&[4.0, 3.0, 2.0]));
        assert_eq!(
            ok("range", vec![n(10.0), n(5.0), n(-2.0)]),
            ln(&[10.0, 8.0, 6.0])
        );
        assert_eq!(ok("range", vec![n(0.0)]), ln(&[]));
        assert_eq!(ok("range", vec![n(-3.0)]), ln(&[0.0, -1.0, -2.0]));
        assert_eq!(
            ok("range", vec![n(1.0), n(4.0), n(-1.0)]),
            ln(&[]),
            "a step away from the limit gives nothing"
        );
        assert_eq!(
            err("range", vec![n(1.0), n(4.0), n(0.0)]),
            "range: step must not be zero"
        );
        assert_eq!(
            err("range", vec![n(1e18)]),
            "range: the result would have more than 1000000 elements"
        );
        assert_eq!(
            err("range", vec![n(1e18), n(1e18 + 256.0), n(1.0)]),
            "range: the result would have more than 1000000 elements"
        );
        assert_eq!(
            ok("range", vec![n(1_000_000.0)]).as_list().map(Vec::len),
            Some(1_000_000)
        );
    }

    // --- collections ----------------------------------------------------------

    #[test]
    fn lookup_merge_concat_length() {
        let m = obj([("a", s("ay")), ("b", s("bee"))]);
        assert_eq!(ok("lookup", vec![m.clone(), s("a"), s("what?")]), s("ay"));
        assert_eq!(
            ok("lookup", vec![m.clone(), s("c"), s("what?")]),
            s("what?")
        );
        assert_eq!(
            ok("lookup", vec![m.clone(), s("c"), Value::Null]),
            Value::Null
        );
        assert_eq!(
            err("lookup", vec![m.clone(), s("c")]),
            "lookup: key `c` not found and no default given"
        );
        assert_eq!(
            err("lookup", vec![ls(&["a"]), s("a")]),
            "lookup: argument 1 must be a map, got list"
        );
        assert_eq!(
            ok(
                "merge",
                vec![
                    obj([("a", s("b")), ("c", s("d"))]),
                    obj([("e", s("f")), ("c", s("z"))])
                ]
            ),
            obj([("a", s("b")), ("c", s("z")), ("e", s("f"))])
        );
        assert_eq!(ok("merge", vec![]), obj::<&str>([]));
        assert_eq!(
            ok("merge", vec![Value::Null, obj([("a", n(1.0))])]),
            obj([("a", n(1.0))])
        );
        assert_eq!(
            err("merge", vec![obj([("a", n(1.0))]), ls(&[])]),
            "merge: argument 2 must be a map, got list"
        );
        assert_eq!(
            ok("concat", vec![ls(&["a", ""]), ls(&["b", "c"])]),
            ls(&["a", "", "b", "c"])
        );
        assert_eq!(
            err("concat", vec![ls(&["a"]), s("b")]),
            "concat: argument 2 must be a list, got string"
        );
        assert_eq!(ok("length", vec![ls(&[])]), n(0.0));
        assert_eq!(ok("length", vec![ls(&["a", "b"])]), n(2.0));
        assert_eq!(ok("length", vec![s("hello")]), n(5.0));
        assert_eq!(ok("length", vec![s("🤔🤷")]), n(2.0));
        assert_eq!(ok("length", vec![obj([("a", s("b"))])]), n(1.0));
        assert_eq!(
            err("length", vec![n(5.0)]),
            "length: argument 1 must be a string, list or map, got number"
        );
        assert_eq!(
            err("length", vec![Value::Null]),
            "length: argument 1 must not be null"
        );
    }

    #[test]
    fn keys_values_element_index() {
        let m = obj([("d", n(3.0)), ("a", n(1.0)), ("c", n(2.0))]);
        assert_eq!(ok("keys", vec![m.clone()]), ls(&["a", "c", "d"]));
        assert_eq!(ok("values", vec![m]), ln(&[1.0, 2.0, 3.0]));
        assert_eq!(
            err("keys", vec![ls(&[])]),
            "keys: argument 1 must be a map, got list"
        );
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(1.0)]), s("b"));
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(3.0)]), s("a"));
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(1e15)]), s("b"));
        assert_eq!(
            err("element", vec![ls(&[]), n(0.0)]),
            "element: cannot take an element of an empty list"
        );
        assert_eq!(
            err("element", vec![ls(&["a"]), n(-1.0)]),
            "element: the index must not be negative, got `-1`"
        );
        assert_eq!(ok("index", vec![ls(&["a", "b", "c"]), s("b")]), n(1.0));
        assert_eq!(
            ok("index", vec![ln(&[1.0, 2.0]), s("2")]),
            n(1.0),
            "a numeric string finds the number"
        );
        assert_eq!(
            err("index", vec![ls(&["a"]), s("z")]),
            "index: item `z` not found"
        );
        assert_eq!(
            err("index", vec![ls(&["a"]), ln(&[1.0])]),
            "index: item `[1]` not found"
        );
    }

    #[test]
    fn coalesce_and_friends() {
        assert_eq!(ok("coalesce", vec![s("a"), s("b")]), s("a"));
        assert_eq!(ok("coalesce", vec![s(""), s("b")]), s("b"));
        assert_eq!(ok("coalesce", vec![Value::Null, n(1.0), n(2.0)]), n(1.0));
        assert_eq!(
            ok("coalesce", vec![n(1.0), s("two")]),
            s("1"),
            "mixed types unify to string"
        );
        assert_eq!(
            err("coalesce", vec![Value::Null, s("")]),
            "coalesce: all arguments are null or empty strings"
        );
        assert_eq!(
            ok("coalescelist", vec![ls(&["a", "b"]), ls(&["c", "d"])]),
            ls(&["a", "b"])
        );
        assert_eq!(
            ok("coalescelist", vec![ls(&[]), ls(&["c", "d"])]),
            ls(&["c", "d"])
        );
        assert_eq!(
            err("coalescelist", vec![ls(&[]), ls(&[])]),
            "coalescelist: all arguments are empty lists"
        );
        assert_eq!(
            err("coalescelist", vec![s("a")]),
            "coalescelist: argument 1 must be a list, got string"
        );
        assert_eq!(
            ok(
                "compact",
                vec![l(vec![s("a"), s(""), s("b"), Value::Null, s("c")])]
            ),
            ls(&["a", "b", "c"])
        );
        assert_eq!(
            err("compact", vec![l(vec![ls(&[])])]),
            "compact: element 0 of argument 1 must be a string, got list"
        );
        assert_eq!(
            ok("contains", vec![ls(&["a", "b", "c"]), s("a")]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("contains", vec![ls(&["a", "b", "c"]), s("d")]),
            Value::Bool(false)
        );
        assert_eq!(ok("contains", vec![ls(&["1"]), n(1.0)]), Value::Bool(true));
        assert_eq!(
            ok("contains", vec![l(vec![ls(&["x"])]), ls(&["x"])]),
            Value::Bool(true)
        );
        assert_eq!(
            err("contains", vec![s("abc"), s("a")]),
            "contains: argument 1 must be a list, got string"
        );
    }

    #[test]
    fn list_shaping_functions() {
        assert_eq!(
            ok(
                "flatten",
                vec![l(vec![ls(&["a", "b"]), ls(&[]), ls(&["c"])])]
            ),
            ls(&["a", "b", "c"])
        );
        assert_eq!(
            ok(
                "flatten",
                vec![l(vec![
                    l(vec![s("a"), l(vec![s("b")])]),
                    s("c"),
                    obj([("k", n(1.0))])
                ])]
            ),
            l(vec![s("a"), s("b"), s("c"), obj([("k", n(1.0))])])
        );
        assert_eq!(
            ok("distinct", vec![ls(&["a", "b", "a", "c", "d", "b"])]),
            ls(&["a", "b", "c", "d"])
        );
        assert_eq!(
            ok("distinct", vec![l(vec![n(1.0), n(1.0), s("1")])]),
            l(vec![n(1.0), s("1")])
        );
        assert_eq!(
            ok("sort", vec![ls(&["e", "d", "a", "x"])]),
            ls(&["a", "d", "e", "x"])
        );
        assert_eq!(
            ok("sort", vec![ln(&[10.0, 9.0])]),
            ls(&["10", "9"]),
            "sort is lexical"
        );
        assert_eq!(
            err("sort", vec![l(vec![Value::Null])]),
            "sort: element 0 of argument 1 must not be null"
        );
        assert_eq!(
            ok("reverse", vec![ln(&[1.0, 2.0, 3.0])]),
            ln(&[3.0, 2.0, 1.0])
        );
        assert_eq!(
            ok("slice", vec![ls(&["a", "b", "c", "d"]), n(1.0), n(3.0)]),
            ls(&["b", "c"])
        );
        assert_eq!(ok("slice", vec![ls(&["a"]), n(1.0), n(1.0)]), ls(&[]));
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(1.0), n(3.0)]),
            "slice: the end index `3` is beyond the end of the list (length 2)"
        );
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(2.0), n(1.0)]),
            "slice: the start index `2` is greater than the end index `1`"
        );
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(-1.0), n(1.0)]),
            "slice: the start index must not be negative, got `-1`"
        );
        assert_eq!(
            ok("zipmap", vec![ls(&["a", "b"]), l(vec![n(1.0), ls(&["x"])])]),
            obj([("a", n(1.0)), ("b", ls(&["x"]))])
        );
        assert_eq!(
            err("zipmap", vec![ls(&["a", "b"]), ln(&[1.0])]),
            "zipmap: argument 1 has 2 keys but argument 2 has 1 value"
        );
        assert_eq!(ok("one", vec![ls(&[])]), Value::Null);
        assert_eq!(ok("one", vec![ls(&["hello"])]), s("hello"));
        assert_eq!(
            err("one", vec![ls(&["a", "b"])]),
            "one: the list must have at most one element, got 2"
        );
        assert_eq!(
            ok("chunklist", vec![ls(&["a", "b", "c", "d", "e"]), n(2.0)]),
            l(vec![ls(&["a", "b"]), ls(&["c", "d"]), ls(&["e"])])
        );
        assert_eq!(
            ok("chunklist", vec![ls(&["a", "b"]), n(0.0)]),
            l(vec![ls(&["a", "b"])])
        );
        assert_eq!(ok("chunklist", vec![ls(&[]), n(3.0)]), l(vec![]));
        assert_eq!(
            err("chunklist", vec![ls(&["a"]), n(-1.0)]),
            "chunklist: the chunk size must not be negative, got `-1`"
        );
        assert_eq!(
            ok("alltrue", vec![l(vec![Value::Bool(true), s("true")])]),
            Value::Bool(true)
        );
        assert_eq!(ok("alltrue", vec![ls(&[])]), Value::Bool(true));
        assert_eq!(
            ok(
                "alltrue",
                vec![l(vec![Value::Bool(true), Value::Bool(false)])]
            ),
            Value::Bool(false)
        );
        assert_eq!(
            ok("anytrue", vec![l(vec![Value::Bool(false), s("true")])]),
            Value::Bool(true)
        );
        assert_eq!(ok("anytrue", vec![ls(&[])]), Value::Bool(false));
        assert_eq!(
            err("alltrue", vec![l(vec![s("yes")])]),
            "alltrue: element 0 of argument 1 must be a bool, got `yes`"
        );
    }

    #[test]
    fn set_functions() {
        assert_eq!(
            ok("toset", vec![ls(&["c", "b", "b", "a"])]),
            ls(&["a", "b", "c"])
        );
        assert_eq!(ok("toset", vec![ln(&[10.0, 2.0, 2.0])]), ln(&[2.0, 10.0]));
        assert_eq!(
            ok("toset", vec![l(vec![s("a"), n(1.0), Value::Bool(true)])]),
            ls(&["1", "a", "true"])
        );
        assert_eq!(
            ok(
                "setunion",
                vec![ls(&["a", "b"]), ls(&["b", "c"]), ls(&["d"])]
            ),
            ls(&["a", "b", "c", "d"])
        );
        assert_eq!(
            ok(
                "setintersection",
                vec![ls(&["a", "b"]), ls(&["b", "c"]), ls(&["b", "d"])]
            ),
            ls(&["b"])
        );
        assert_eq!(
            ok("setintersection", vec![ls(&["b", "a", "a"])]),
            ls(&["a", "b"])
        );
        assert_eq!(
            ok("setsubtract", vec![ls(&["a", "b", "c"]), ls(&["a", "c"])]),
            ls(&["b"])
        );
        assert_eq!(
            err("setunion", vec![ls(&["a"]), s("b")]),
            "setunion: argument 2 must be a list, got string"
        );
    }

    // --- conversions ------------------------------------------------------------

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

    // --- encodings ----------------------------------------------------------------

    #[test]
    fn json_round_trips() {
        assert_eq!(
            ok("jsonencode", vec![obj([("hello", s("world"))])]),
            s(r#"{"hello":"world"}"#)
        );
        assert_eq!(
            ok(
                "jsonencode",
                vec![obj([
                    ("b", n(1.0)),
                    ("a", l(vec![n(2.5), Value::Bool(true), Value::Null]))
                ])]
            ),
            s(r#"{"a":[2.5,true,null],"b":1}"#)
        );
        assert_eq!(ok("jsonencode", vec![Value::Null]), s("null"));
        assert_eq!(
            ok("jsonencode", vec![s("<a & b>")]),
            s(r#""\u003ca \u0026 b\u003e""#)
        );
        assert_eq!(ok("jsonencode", vec![n(1e20)]), s("100000000000000000000"));
        assert_eq!(ok("jsonencode", vec![n(-0.5)]), s("-0.5"));
        assert_eq!(ok("jsonencode", vec![n(1e300)]), s("1e+300"));
        assert_eq!(
            ok("jsonencode", vec![s("tab\t\"q\" \u{2028}")]),
            s(r#""tab\t\"q\" \u2028""#)
        );
        assert_eq!(
            err("jsonencode", vec![n(f64::INFINITY)]),
            "jsonencode: cannot encode the non-finite number `inf` as JSON"
        );
        assert_eq!(
            ok("jsondecode", vec![s(r#"{"hello": "world"}"#)]),
            obj([("hello", s("world"))])
        );
        assert_eq!(ok("jsondecode", vec![s("true")]), Value::Bool(true));
        assert_eq!(ok("jsondecode", vec![s("[1, 2.5]")]), ln(&[1.0, 2.5]));
        // The plan's unknown sentinel is ordinary data here.
        assert_eq!(
            ok("jsondecode", vec![s(r#"{"$berth": "unknown"}"#)]),
            obj([("$berth", s("unknown"))])
        );
        let e = err("jsondecode", vec![s("{nope")]);
        assert!(
            e.starts_with("jsondecode: argument 1 is not valid JSON: "),
            "{e}"
        );
        let deep = "[".repeat(10_000);
        assert!(
            err("jsondecode", vec![s(&deep)])
                .starts_with("jsondecode: argument 1 is not valid JSON")
        );
    }

    #[test]
    fn base64_hashes_and_urls() {
        assert_eq!(
            ok("base64encode", vec![s("Hello World")]),
            s("SGVsbG8gV29ybGQ=")
        );
        assert_eq!(
            ok("base64decode", vec![s("SGVsbG8gV29ybGQ=")]),
            s("Hello World")
        );
        assert_eq!(
            err("base64decode", vec![s("!!!")]),
            "base64decode: argument 1 is not valid base64"
        );
        assert_eq!(
            err("base64decode", vec![s("/w==")]),
            "base64decode: the decoded bytes are not valid UTF-8"
        );
        assert_eq!(
            ok("sha256", vec![s("hello world")]),
            s("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
        assert_eq!(
            ok("base64sha256", vec![s("hello world")]),
            s("uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=")
        );
        assert_eq!(ok("sha512", vec![s("")]).as_str().map(str::len), Some(128));
        assert_eq!(
            ok("urlencode", vec![s("Hello World!")]),
            s("Hello+World%21")
        );
        assert_eq!(ok("urlencode", vec![s("ü/~")]), s("%C3%BC%2F~"));
    }

    // --- files ----------------------------------------------------------------------

    #[test]
    fn files_are_read_relative_to_the_module() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hello.txt"), "Hello World").expect("write");
        std::fs::write(dir.path().join("bin"), [0xff, 0x00]).expect("write");
        let ctx = FuncContext {
            base_dir: dir.path(),
        };
        let c = |name: &str, path: &str| call(name, vec![s(path)], &ctx);
        assert_eq!(c("file", "hello.txt").expect("file"), s("Hello World"));
        let abs = dir.path().join("hello.txt").display().to_string();
        assert_eq!(c("file", &abs).expect("absolute file"), s("Hello World"));
        assert_eq!(c("filebase64", "bin").expect("filebase64"), s("/wA="));
        assert_eq!(
            c("fileexists", "hello.txt").expect("fileexists"),
            Value::Bool(true)
        );
        assert_eq!(
            c("fileexists", "nope.txt").expect("fileexists"),
            Value::Bool(false)
        );
        assert_eq!(
            c("fileexists", "hello.txt/x").expect("fileexists"),
            Value::Bool(false)
        );

        let missing = dir.path().join("nope.txt").display().to_string();
        assert_eq!(
            c("file", "nope.txt").unwrap_err().0,
            format!("file: no file exists at `{missing}`")
        );
        let bin = dir.path().join("bin").display().to_string();
        assert_eq!(
            c("file", "bin").unwrap_err().0,
            format!(
                "file: the contents of `{bin}` are not valid UTF-8; use `filebase64` for binary files"
            )
        );
        let here = dir.path().join("").display().to_string();
        assert_eq!(
            c("fileexists", "").unwrap_err().0,
            format!("fileexists: `{here}` is a directory, not a file")
        );
        let e = c("file", "").unwrap_err().0;
        assert!(
            e.starts_with(&format!("file: cannot read `{here}`: ")),
            "{e}"
        );
    }

    // --- robustness ---------------------------------------------------------------

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
