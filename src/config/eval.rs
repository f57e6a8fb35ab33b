//! Expression evaluation.
//!
//! hcl-rs can evaluate expressions, but its values have no "unknown", so
//! berth walks hcl-edit's expression tree itself: every node keeps its span,
//! so an error points at the exact sub-expression, and [`Value::Unknown`] and
//! [`Value::Sensitive`] propagate through operators, functions and templates.
//!
//! References are resolved through a [`Scope`], which the planner and the
//! apply walk implement with the values they have at that point.

use super::refs::{Target, classify};
use super::template::{self, Kind, Node};
use super::types::{Type, unify};
use super::{Expr, functions};
use crate::addr::ModulePath;
use crate::diag::{Diagnostic, Span, suggest};
use crate::value::{BigNum, Map, Value, format_number};
use hcl_edit::expr::{BinaryOperator as B, Expression as E, ObjectKey, TraversalOperator as Op, UnaryOperator as U};
use hcl_edit::template::{Element, Template};
use unicode_normalization::UnicodeNormalization as _;
use std::path::Path;

/// Resolves references to values.
pub trait Scope {
    /// The value of a reference root in `module`: `var.x` is
    /// `Target::Var("x")`; `aws_instance.web` is the whole resource (an
    /// object, or a list/map of objects under `count`/`for_each`).
    fn lookup(&self, module: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic>;

    /// Part of a reference root, `target` followed by the first steps of
    /// `path`, when the scope can give it without copying the whole value:
    /// one instance of a counted resource rather than the list of all of
    /// them, one element of a memoized local rather than the local. Returns
    /// the value and how many steps it went through. `None` sends the
    /// caller to [`Scope::lookup`] and the steps, which also word every
    /// error.
    fn lookup_path(&self, _module: &ModulePath, _target: &Target, _path: &[PathStep<'_>]) -> Option<(Value, usize)> {
        None
    }
}

/// A step of a reference, known before its root is looked up.
#[derive(Debug)]
pub enum PathStep<'a> {
    /// `.name`
    Attr(&'a str),
    /// `[key]`, with the key evaluated (known, not sensitive).
    Index(Value),
}

/// Walks `path` into `v` by reference, as far as the steps are plain: an
/// attribute or key an object has, a whole-number index within a list. It
/// stops where a step needs more than that (a missing name, an index out of
/// range, a set, a sensitive or unknown value), for the caller's steps to
/// take with their errors and marks. Returns where it stopped and after how
/// many steps.
pub fn walk_path<'v>(mut v: &'v Value, path: &[PathStep<'_>]) -> (&'v Value, usize) {
    for (i, step) in path.iter().enumerate() {
        let next = match (v, step) {
            (Value::Map(m), PathStep::Attr(a)) => m.get(*a),
            (Value::Map(m), PathStep::Index(Value::String(k))) => m.get(k),
            (Value::List(l), PathStep::Index(Value::Number(n))) if n.fract() == 0.0 && *n >= 0.0 => l.get(*n as usize),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return (v, i),
        }
    }
    (v, path.len())
}

/// A scope with no references at all: for constants such as `lifecycle`
/// arguments and variable defaults.
pub struct NoRefs;

impl Scope for NoRefs {
    fn lookup(&self, _: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic> {
        let what = super::refs::Reference { target: target.clone(), span: None }.describe();
        Err(Diagnostic::error(format!("`{what}` cannot be used here: only constant values are allowed")).at(span.cloned()))
    }
}

/// Where an expression is evaluated.
pub struct Ctx<'a> {
    pub scope: &'a dyn Scope,
    pub module: &'a ModulePath,
    /// The module's directory, for `file()` and `path.module`.
    pub base_dir: &'a Path,
    pub count_index: Option<Value>,
    pub each: Option<(Value, Value)>,
    pub self_value: Option<Value>,
    /// Names bound by `for` expressions, innermost last.
    bound: std::cell::RefCell<Vec<(String, Value)>>,
}

impl<'a> Ctx<'a> {
    pub fn new(scope: &'a dyn Scope, module: &'a ModulePath, base_dir: &'a Path) -> Self {
        Ctx { scope, module, base_dir, count_index: None, each: None, self_value: None, bound: Default::default() }
    }

    pub fn with_bindings(mut self, vars: Vec<(String, Value)>) -> Self {
        self.bound = std::cell::RefCell::new(vars);
        self
    }

    /// A copy of this context with `name` bound as well: a `dynamic`
    /// block's iterator, seen by its `content`.
    pub fn with_binding(&self, name: String, value: Value) -> Ctx<'a> {
        let mut bound = self.bound.borrow().clone();
        bound.push((name, value));
        Ctx {
            scope: self.scope,
            module: self.module,
            base_dir: self.base_dir,
            count_index: self.count_index.clone(),
            each: self.each.clone(),
            self_value: self.self_value.clone(),
            bound: std::cell::RefCell::new(bound),
        }
    }
}

/// Evaluates a constant expression (no references).
pub fn constant(e: &Expr) -> Result<Value, Diagnostic> {
    let path = ModulePath::new();
    let ctx = Ctx::new(&NoRefs, &path, Path::new("."));
    eval(e, &ctx)
}

pub fn eval(e: &Expr, ctx: &Ctx) -> Result<Value, Diagnostic> {
    Evaluator { e, ctx }.expr(&e.expr)
}

/// Evaluates a template text (the contents of a `templatefile`).
pub fn eval_template_text(text: &str, name: &str, vars: Map, ctx: &Ctx) -> Result<Value, Diagnostic> {
    let file = crate::diag::SourceFile::new(Path::new(name), name.to_string(), text.to_string());
    let template = hcl_edit::parser::parse_template(text).map_err(|err| {
        let off = err.location().offset();
        Diagnostic::error(format!("template syntax error: {}", err.message())).at(Some(Span::new(&file, off..off + 1)))
    })?;
    let e = Expr::new(E::Null(hcl_edit::Decorated::new(hcl_edit::expr::Null)), file);
    let bindings: Vec<(String, Value)> = vars.into_iter().collect();
    let tctx = Ctx::new(&TemplateScope, ctx.module, ctx.base_dir).with_bindings(bindings);
    Evaluator { e: &e, ctx: &tctx }.template(&template, Kind::Lines, false)
}

/// Inside `templatefile`, only the given variables exist.
struct TemplateScope;
impl Scope for TemplateScope {
    fn lookup(&self, _: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic> {
        let what = super::refs::Reference { target: target.clone(), span: None }.describe();
        Err(Diagnostic::error(format!(
            "`{what}` is not defined in this template: templatefile() templates see only the variables passed to them"
        ))
        .at(span.cloned()))
    }
}

struct Evaluator<'a, 'b> {
    e: &'a Expr,
    ctx: &'a Ctx<'b>,
}

/// A string as HCL reads one from the source: in Unicode normal form C.
fn nfc(s: &str) -> String {
    if unicode_normalization::is_nfc_quick(s.chars()) == unicode_normalization::IsNormalized::Yes {
        s.to_string()
    } else {
        s.nfc().collect()
    }
}

/// Reads a bool as a condition or logical operand: `"true"` and `"false"`
/// convert, as in Terraform.
fn to_bool(v: &Value) -> Option<bool> {
    match v.unmarked() {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Reads a number operand: numbers, and strings that spell one.
fn to_num(v: &Value) -> Option<Value> {
    match v.unmarked() {
        n @ (Value::Number(_) | Value::BigNumber(_)) => Some(n.clone()),
        Value::String(s) => super::types::parse_number(s),
        _ => None,
    }
}

/// Arithmetic as Terraform does it, exactly; small whole numbers take a
/// fast path that needs no big numbers.
fn arith(op: B, a: &Value, b: &Value) -> Result<Value, &'static str> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        let (x, y) = (*x, *y);
        if x.fract() == 0.0 && y.fract() == 0.0 && x.abs() <= EXACT && y.abs() <= EXACT {
            let r = match op {
                B::Plus => Some(x + y),
                B::Minus => Some(x - y),
                B::Mul => Some(x * y),
                B::Div if y != 0.0 => short_quotient(x, y),
                B::Mod if y != 0.0 => Some(x % y),
                _ => None,
            };
            if let Some(r) = r.filter(|r| r.abs() <= EXACT) {
                return Ok(Value::Number(if r == 0.0 { 0.0 } else { r }));
            }
        }
    }
    let (x, y) = (a.as_big().unwrap_or_else(BigNum::zero), b.as_big().unwrap_or_else(BigNum::zero));
    let r = match op {
        B::Plus => x.add(&y),
        B::Minus => x.sub(&y),
        B::Mul => x.mul(&y),
        B::Div => {
            if y.is_zero() {
                return Err("division by zero");
            }
            x.div(&y)
        }
        B::Mod => x.rem(&y),
        _ => return Err("not an arithmetic operator"),
    };
    if r.is_inf() {
        return Err("the result is infinite");
    }
    Ok(r.into_value())
}

/// `x / y` of two whole numbers within 2^53, as an f64, when the exact
/// quotient is a decimal of at most 15 significant digits (`5 / 250` is
/// 0.02): such a decimal survives the round trip through an f64, so the
/// f64 stands for it exactly. `None` for a quotient that needs the big
/// numbers (`1 / 3`, or more digits). The fast path for ordinary numbers:
/// `count.index / 250` in every instance of a large count made the big
/// number conversion the hottest code of a plan.
fn short_quotient(x: f64, y: f64) -> Option<f64> {
    if x % y == 0.0 {
        return Some(x / y);
    }
    let (mut p, mut q) = (x.abs() as u64, y.abs() as u64);
    let g = gcd(p, q);
    (p, q) = (p / g, q / g);
    // The quotient is a finite decimal when q = 2^a 5^b; it then has
    // max(a, b) digits after the point.
    let (mut a, mut b) = (0u32, 0u32);
    while q % 2 == 0 {
        q /= 2;
        a += 1;
    }
    while q % 5 == 0 {
        q /= 5;
        b += 1;
    }
    if q != 1 {
        return None;
    }
    let k = a.max(b);
    let digits = (p as u128).checked_mul(2u128.checked_pow(k - a)?)?.checked_mul(5u128.checked_pow(k - b)?)?;
    (digits < 1_000_000_000_000_000).then_some(x / y)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn num_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        _ => match (a.as_big(), b.as_big()) {
            (Some(x), Some(y)) => x.cmp_num(&y),
            _ => std::cmp::Ordering::Equal,
        },
    }
}

fn marks(vals: &[&Value]) -> (bool, bool) {
    let unknown = vals.iter().any(|v| v.is_unknown());
    let sensitive = vals.iter().any(|v| matches!(v, Value::Sensitive(_)));
    (unknown, sensitive)
}

impl Evaluator<'_, '_> {
    fn span(&self, x: &impl hcl_edit::Span) -> Option<Span> {
        self.e.span_of(x)
    }

    fn err(&self, x: &impl hcl_edit::Span, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(msg).at(self.span(x))
    }

    fn expr(&self, x: &E) -> Result<Value, Diagnostic> {
        match x {
            E::Null(_) => Ok(Value::Null),
            E::Bool(b) => Ok(Value::Bool(*b.value())),
            E::Number(n) => {
                // Whole numbers an f64 holds exactly need no detour.
                if let Some(i) = n.value().as_i64().filter(|i| i.unsigned_abs() <= 1 << 53) {
                    return Ok(Value::Number(i as f64));
                }
                // Otherwise the literal's own text: an f64 would round it.
                let text = self.span(x).map(|sp| sp.file.text.get(sp.range.clone()).unwrap_or_default().trim().to_string());
                match text.as_deref().and_then(BigNum::parse) {
                    Some(b) => Ok(b.into_value()),
                    None => Ok(Value::Number(n.value().as_f64().unwrap_or(f64::NAN))),
                }
            }
            E::String(s) => Ok(Value::String(nfc(s.value()))),
            E::Array(a) => a.iter().map(|e| self.expr(e)).collect::<Result<Vec<_>, _>>().map(Value::List),
            E::Object(o) => {
                let mut m = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        // A bare `null` key is the name "null", as in Terraform.
                        ObjectKey::Expression(E::Null(_)) => "null".to_string(),
                        ObjectKey::Expression(ke @ E::Traversal(_)) => {
                            return Err(Diagnostic::error("ambiguous object key: a reference as a key needs parentheses, `(local.x) = ...`; a name with dots needs quotes")
                                .at(self.span(ke)));
                        }
                        ObjectKey::Expression(ke) => match self.expr(ke)?.into_unmarked().0 {
                            Value::String(s) => s,
                            Value::Number(n) => format_number(n),
                            Value::BigNumber(n) => n.to_text(),
                            Value::Bool(b) => b.to_string(),
                            Value::Unknown => return Ok(Value::Unknown),
                            other => return Err(self.err(ke, format!("an object key must be a string, not {}", other.type_name()))),
                        },
                    };
                    m.insert(key, self.expr(v.expr())?);
                }
                Ok(Value::Map(m))
            }
            E::StringTemplate(t) => self.template(t, Kind::Quoted, false),
            E::HeredocTemplate(h) => {
                let src = self.span(x).map(|sp| sp.file.text.get(sp.range.clone()).unwrap_or_default().to_string()).unwrap_or_default();
                let kind = if src.starts_with("<<-") { Kind::Flush } else { Kind::Lines };
                self.template(&h.template, kind, true)
            }
            E::Parenthesis(p) => self.expr(p.inner()),
            E::Variable(v) => self.root(x, v.as_str(), &[]),
            E::Traversal(t) => {
                let ops: Vec<&Op> = t.operators.iter().map(|o| o.value()).collect();
                match &t.expr {
                    E::Variable(v) => self.root(x, v.as_str(), &ops),
                    other => {
                        let base = self.expr(other)?;
                        self.apply_ops(x, base, &ops)
                    }
                }
            }
            E::Conditional(c) => {
                let cond = self.expr(&c.cond_expr)?;
                let (unknown, sensitive) = marks(&[&cond]);
                if unknown {
                    return Ok(Value::Unknown);
                }
                let b = match to_bool(&cond) {
                    Some(b) => b,
                    None => {
                        return Err(self.err(&c.cond_expr, format!("a condition must be true or false, not {}", cond.unmarked().type_name())));
                    }
                };
                // Both results are evaluated, as in Terraform: the result
                // has the type both unify to (`true ? 1 : "a"` is "1"); an
                // error in the result not taken does not count.
                let (taken, other) = if b { (&c.true_expr, &c.false_expr) } else { (&c.false_expr, &c.true_expr) };
                let v = self.expr(taken)?;
                let Ok(o) = self.expr(other) else { return Ok(v.mark_if(sensitive)) };
                if v.is_null() || o.is_null() || !v.is_known() || !o.is_known() {
                    return Ok(v.mark_if(sensitive));
                }
                let (tv, to) = (Type::of(&v), Type::of(&o));
                let Some(t) = unify(&[tv.clone(), to.clone()]) else {
                    let (tt, ft) = if b { (tv, to) } else { (to, tv) };
                    return Err(self.err(x, format!(
                        "the true and false results of a conditional must have consistent types: the true result is {}, the false result is {}",
                        tt.friendly(),
                        ft.friendly()
                    )));
                };
                let v = t.convert(v).map_err(|e| self.err(taken, format!("the conditional's result cannot take the type of the other result: {e}")))?;
                Ok(v.mark_if(sensitive))
            }
            E::FuncCall(f) => self.call(x, f),
            E::UnaryOp(u) => {
                let v = self.expr(&u.expr)?;
                let (unknown, sensitive) = marks(&[&v]);
                if unknown {
                    return Ok(Value::Unknown);
                }
                let r = match u.operator.value() {
                    U::Neg => match to_num(&v) {
                        Some(n) => arith(B::Minus, &Value::Number(0.0), &n).map_err(|e| self.err(x, e))?,
                        None => return Err(self.err(x, format!("`-` needs a number, not {}", v.unmarked().type_name()))),
                    },
                    U::Not => match to_bool(&v) {
                        Some(b) => Value::Bool(!b),
                        None => return Err(self.err(x, format!("`!` needs a bool, not {}", v.unmarked().type_name()))),
                    },
                };
                Ok(r.mark_if(sensitive))
            }
            E::BinaryOp(b) => self.binary(x, b),
            E::ForExpr(f) => self.for_expr(x, f),
        }
    }

    fn root(&self, x: &E, name: &str, ops: &[&Op]) -> Result<Value, Diagnostic> {
        let bound = self.ctx.bound.borrow().iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        if let Some(v) = bound {
            return self.apply_ops(x, v, ops);
        }
        let target = classify(name, ops);
        // `aws_instance.host[count.index].private_ip` reads one instance and
        // `local.ips[count.index]` one element: the cost of an expression
        // follows what it reads, never the size of what it names.
        // The steps that name a scope lookup's root (`local.ips`: one;
        // `module.m.out`, `data.t.n`: two; `terraform.workspace`: none).
        let root_steps = match &target {
            Target::Var(_) | Target::Local(_) | Target::Module(_, None) | Target::Resource(crate::addr::Mode::Managed, ..) => Some(1),
            Target::Module(_, Some(_)) | Target::Resource(crate::addr::Mode::Data, ..) => Some(2),
            Target::Workspace => Some(0),
            _ => None,
        };
        if let Some(consumed) = root_steps.filter(|c| *c > 0 && *c < ops.len()) {
            let path = self.known_steps(&ops[consumed..]);
            if !path.is_empty()
                && let Some((v, used)) = self.ctx.scope.lookup_path(self.ctx.module, &target, &path)
            {
                return self.apply_ops(x, v, &ops[consumed + used..]);
            }
        }
        let (value, consumed) = match &target {
            Target::Count => match &self.ctx.count_index {
                Some(i) => (crate::value::obj([("index", i.clone())]), 0),
                None => return Err(self.err(x, "`count.index` can only be used in a resource that sets `count`")),
            },
            Target::Each => match &self.ctx.each {
                Some((k, v)) => (crate::value::obj([("key", k.clone()), ("value", v.clone())]), 0),
                None => return Err(self.err(x, "`each` can only be used in a resource that sets `for_each`")),
            },
            Target::SelfRef => match &self.ctx.self_value {
                Some(v) => (v.clone(), 0),
                None => return Err(self.err(x, "`self` can only be used in `health_check`, provisioner and connection blocks")),
            },
            Target::Path => {
                let module = self.ctx.base_dir.display().to_string();
                let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
                (crate::value::obj([("module", module.into()), ("root", ".".into()), ("cwd", cwd.into())]), 0)
            }
            Target::Var(_) | Target::Local(_) | Target::Module(..) | Target::Resource(..) | Target::Workspace => {
                (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, root_steps.unwrap_or(0))
            }
            Target::Unknown(n) => {
                let mut d = Diagnostic::error(format!("unknown name `{n}`")).at(self.span(x));
                let known = ["var", "local", "module", "data", "count", "each", "self", "path"];
                if let Some(s) = suggest(n, known) {
                    d = d.hint(format!("did you mean `{s}`?"));
                } else if ops.is_empty() {
                    d = d.hint("a string needs quotes: \"...\"");
                }
                return Err(d);
            }
        };
        self.apply_ops(x, value, &ops[consumed.min(ops.len())..])
    }

    /// The leading attribute and index steps of `ops` whose keys are known
    /// now (an index that fails, is unknown or sensitive ends them: the
    /// steps taken on the looked-up value deal with it).
    fn known_steps<'o>(&self, ops: &[&'o Op]) -> Vec<PathStep<'o>> {
        let mut out = Vec::new();
        for op in ops {
            let step = match op {
                Op::GetAttr(a) => PathStep::Attr(a.as_str()),
                Op::Index(ie) => match self.expr(ie) {
                    Ok(k) if k.is_known() && !k.is_sensitive() && !k.is_null() => PathStep::Index(k),
                    _ => break,
                },
                Op::LegacyIndex(n) => PathStep::Index(Value::Number(*n.value() as f64)),
                _ => break,
            };
            out.push(step);
        }
        out
    }

    fn apply_ops(&self, x: &E, mut v: Value, ops: &[&Op]) -> Result<Value, Diagnostic> {
        for (i, op) in ops.iter().enumerate() {
            if v.is_unknown() {
                return Ok(Value::Unknown);
            }
            let sensitive = matches!(v, Value::Sensitive(_));
            let inner = v.into_unmarked_top();
            v = match op {
                Op::GetAttr(a) => self.get_attr(x, inner, a.as_str())?,
                Op::Index(ie) => {
                    let idx = self.expr(ie)?;
                    if idx.is_unknown() {
                        return Ok(Value::Unknown);
                    }
                    self.index(ie, inner, idx.unmarked())?
                }
                Op::LegacyIndex(n) => self.index(x, inner, &Value::Number(*n.value() as f64))?,
                Op::AttrSplat(_) | Op::FullSplat(_) => {
                    let items = match inner {
                        Value::List(l) | Value::Set(l) => l,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    // `[*]` applies every following step to each element;
                    // the legacy `.*` only the attribute steps, and what
                    // comes after (`.*.id[0]`) applies to the result.
                    let rest = &ops[i + 1..];
                    let each = match op {
                        Op::AttrSplat(_) => rest.iter().take_while(|o| matches!(o, Op::GetAttr(_))).count(),
                        _ => rest.len(),
                    };
                    let out = items
                        .into_iter()
                        .map(|item| self.apply_ops(x, item, &rest[..each]))
                        .collect::<Result<Vec<_>, _>>()?;
                    return self.apply_ops(x, Value::List(out).mark_if(sensitive), &rest[each..]);
                }
            }
            .mark_if(sensitive);
        }
        Ok(v)
    }

    fn get_attr(&self, x: &E, v: Value, name: &str) -> Result<Value, Diagnostic> {
        match v {
            Value::Map(mut m) => match m.remove(name) {
                Some(v) => Ok(v),
                None => {
                    let mut d = Diagnostic::error(format!("no attribute `{name}`")).at(self.span(x));
                    if let Some(s) = suggest(name, m.keys().map(String::as_str)) {
                        d = d.hint(format!("did you mean `{s}`?"));
                    } else if !m.is_empty() {
                        let names: Vec<&str> = m.keys().map(String::as_str).take(12).collect();
                        d = d.hint(format!("it has: {}", names.join(", ")));
                    }
                    Err(d)
                }
            },
            Value::Unknown => Ok(Value::Unknown),
            Value::Null => Err(self.err(x, format!("cannot read `{name}` of a null value"))),
            Value::Set(_) => Err(self.err(x, format!("cannot read `{name}` of a set: its elements have no names or indexes"))),
            Value::List(_) => Err(Diagnostic::error(format!("cannot read `{name}` of a list"))
                .at(self.span(x))
                .hint(format!("pick one element with `[0]`, or all of them with `[*].{name}`"))),
            other => Err(self.err(x, format!("cannot read `{name}` of a {}", other.type_name()))),
        }
    }

    fn index(&self, at: &impl hcl_edit::Span, v: Value, idx: &Value) -> Result<Value, Diagnostic> {
        if let Value::BigNumber(n) = idx {
            let f = n.to_f64();
            return self.index(at, v, &Value::Number(if n.is_int() { f } else { 0.5 }));
        }
        match (v, idx) {
            (Value::Set(_), _) => Err(self.err(
                at,
                "cannot index a set: its elements are identified only by their value; convert it with tolist() first",
            )),
            (Value::List(mut l), Value::Number(n)) => {
                if n.fract() != 0.0 || *n < 0.0 || (*n as usize) >= l.len() {
                    return Err(self.err(at, format!("index {} is out of range for a list of {} element(s)", format_number(*n), l.len())));
                }
                Ok(l.swap_remove(*n as usize))
            }
            (Value::List(l), Value::String(s)) => match s.parse::<f64>() {
                Ok(n) => self.index(at, Value::List(l), &Value::Number(n)),
                Err(_) => Err(self.err(at, format!("a list index must be a number, not `{s}`"))),
            },
            (Value::Map(mut m), Value::String(s)) => m.remove(s).ok_or_else(|| {
                let mut d = Diagnostic::error(format!("no key `{s}`")).at(self.span(at));
                if let Some(h) = suggest(s, m.keys().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{h}`?"));
                }
                d
            }),
            (Value::Map(m), Value::Number(n)) => {
                self.index(at, Value::Map(m), &Value::String(format_number(*n)))
            }
            (Value::Unknown, _) => Ok(Value::Unknown),
            (Value::Null, _) => Err(self.err(at, "cannot index a null value")),
            (v, i) => Err(self.err(at, format!("cannot index a {} with a {}", v.type_name(), i.type_name()))),
        }
    }

    fn call(&self, x: &E, f: &hcl_edit::expr::FuncCall) -> Result<Value, Diagnostic> {
        let name = f.name.name.as_str();
        // `core::` names Terraform's built-in functions; no other namespace
        // (provider functions) exists in berth.
        let namespace: Vec<&str> = f.name.namespace.iter().map(|n| n.as_str()).collect();
        if f.name.is_namespaced() && namespace != ["core"] {
            return Err(self.err(x, format!("namespaced functions (`{}::...`) are not supported", namespace.join("::"))));
        }
        let arg_exprs: Vec<&E> = f.args.iter().collect();
        match name {
            "try" => {
                let mut last = None;
                for a in &arg_exprs {
                    match self.expr(a) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(last.unwrap_or_else(|| self.err(x, "`try` needs at least one argument")));
            }
            "can" => {
                if arg_exprs.len() != 1 {
                    return Err(self.err(x, "`can` takes one argument"));
                }
                return Ok(Value::Bool(self.expr(arg_exprs[0]).is_ok()));
            }
            _ => {}
        }
        let mut args = Vec::with_capacity(arg_exprs.len());
        for a in &arg_exprs {
            args.push(self.expr(a)?);
        }
        if f.args.expand_final() {
            match args.pop().map(Value::into_unmarked) {
                Some((Value::List(l), _)) => args.extend(l),
                Some((Value::Unknown, _)) => return Ok(Value::Unknown),
                _ => return Err(self.err(x, "`...` expands a list: the last argument must be a list")),
            }
        }
        if name == "templatefile" {
            return self.templatefile(x, args);
        }
        if name == "templatestring" {
            return self.templatestring(x, &arg_exprs, args);
        }
        if !functions::exists(name) {
            let mut d = Diagnostic::error(format!("unknown function `{name}`")).at(self.span(x));
            let mut names: Vec<&str> = functions::names().to_vec();
            names.extend(["try", "can", "templatefile", "templatestring"]);
            if let Some(s) = suggest(name, names) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            return Err(d);
        }
        let fctx = functions::FuncContext { base_dir: self.ctx.base_dir };
        functions::call(name, args, &fctx).map_err(|e| self.err(x, e.to_string()))
    }

    fn templatefile(&self, x: &E, args: Vec<Value>) -> Result<Value, Diagnostic> {
        if args.len() != 2 {
            return Err(self.err(x, format!("templatefile: expects 2 arguments, got {}", args.len())));
        }
        let mut it = args.into_iter();
        let (path, vars) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
        if !path.is_known() || !vars.is_known() {
            return Ok(Value::Unknown);
        }
        let (path, s1) = path.into_unmarked();
        let (vars, s2) = vars.into_unmarked();
        let Value::String(path) = path else {
            return Err(self.err(x, "templatefile: the path must be a string"));
        };
        let Value::Map(vars) = vars else {
            return Err(self.err(x, "templatefile: the variables must be an object"));
        };
        let full = self.ctx.base_dir.join(&path);
        let text = std::fs::read_to_string(&full)
            .map_err(|e| self.err(x, format!("templatefile: cannot read `{}`: {e}", full.display())))?;
        let v = eval_template_text(&text, &full.display().to_string(), vars, self.ctx)?;
        Ok(v.mark_if(s1 || s2))
    }

    /// `templatestring(ref, vars)`: renders a template held in a string.
    /// As in Terraform, the first argument must be a reference to a value,
    /// not a literal template (that would be rendered before the call).
    fn templatestring(&self, x: &E, arg_exprs: &[&E], args: Vec<Value>) -> Result<Value, Diagnostic> {
        if args.len() != 2 {
            return Err(self.err(x, format!("templatestring: expects 2 arguments, got {}", args.len())));
        }
        if !matches!(arg_exprs[0], E::Variable(_) | E::Traversal(_)) {
            return Err(self.err(arg_exprs[0], "templatestring: the template must be a reference to a string, such as `local.template`, not a literal"));
        }
        let mut it = args.into_iter();
        let (text, vars) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
        if !text.is_known() || !vars.is_known() {
            return Ok(Value::Unknown);
        }
        let (text, s1) = text.into_unmarked();
        let (vars, s2) = vars.into_unmarked();
        let Value::String(text) = text else {
            return Err(self.err(x, "templatestring: the template must be a string"));
        };
        let Value::Map(vars) = vars else {
            return Err(self.err(x, "templatestring: the variables must be an object"));
        };
        let v = eval_template_text(&text, "templatestring", vars, self.ctx)?;
        Ok(v.mark_if(s1 || s2))
    }

    fn binary(&self, x: &E, b: &hcl_edit::expr::BinaryOp) -> Result<Value, Diagnostic> {
        let op = *b.operator.value();
        let l = self.expr(&b.lhs_expr)?;
        // Short-circuit like HCL: `false && x` and `true || x` skip x.
        if let (B::And, Some(false)) | (B::Or, Some(true)) = (op, l.as_bool()) {
            return Ok(l);
        }
        let r = self.expr(&b.rhs_expr)?;
        let (unknown, sensitive) = marks(&[&l, &r]);
        if unknown || !l.is_known() || !r.is_known() {
            return Ok(Value::Unknown);
        }
        let (l, _) = l.into_unmarked();
        let (r, _) = r.into_unmarked();
        let num = |v: &Value, side: &E| -> Result<Value, Diagnostic> {
            to_num(v).ok_or_else(|| match v {
                Value::String(_) => self.err(side, format!("`{}` needs numbers, got string {}", op.as_str(), v)),
                other => self.err(side, format!("`{}` needs numbers, got {}", op.as_str(), other.type_name())),
            })
        };
        let boolean = |v: &Value, side: &E| -> Result<bool, Diagnostic> {
            to_bool(v).ok_or_else(|| self.err(side, format!("`{}` needs bools, got {}", op.as_str(), v.type_name())))
        };
        let out = match op {
            B::Eq => Value::Bool(l.same_as(&r)),
            B::NotEq => Value::Bool(!l.same_as(&r)),
            B::And => Value::Bool(boolean(&l, &b.lhs_expr)? && boolean(&r, &b.rhs_expr)?),
            B::Or => Value::Bool(boolean(&l, &b.lhs_expr)? || boolean(&r, &b.rhs_expr)?),
            _ => {
                let (a, c) = (num(&l, &b.lhs_expr)?, num(&r, &b.rhs_expr)?);
                use std::cmp::Ordering::*;
                match op {
                    B::Less => Value::Bool(num_cmp(&a, &c) == Less),
                    B::LessEq => Value::Bool(num_cmp(&a, &c) != Greater),
                    B::Greater => Value::Bool(num_cmp(&a, &c) == Greater),
                    B::GreaterEq => Value::Bool(num_cmp(&a, &c) != Less),
                    _ => arith(op, &a, &c).map_err(|e| self.err(x, e))?,
                }
            }
        };
        Ok(out.mark_if(sensitive))
    }

    fn for_expr(&self, x: &E, f: &hcl_edit::expr::ForExpr) -> Result<Value, Diagnostic> {
        let coll = self.expr(&f.intro.collection_expr)?;
        if !coll.is_known() {
            return Ok(Value::Unknown);
        }
        let (coll, sensitive) = coll.into_unmarked();
        let pairs: Vec<(Value, Value)> = match coll {
            Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect(),
            // A set's elements have no index: the key is the value too.
            Value::Set(l) => l.into_iter().map(|v| (v.clone(), v)).collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            Value::Null => return Err(self.err(&f.intro.collection_expr, "cannot iterate over a null value")),
            other => {
                return Err(self.err(&f.intro.collection_expr, format!("cannot iterate over a {}", other.type_name())));
            }
        };
        let mut list = Vec::new();
        let mut map = Map::new();
        let mut groups: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
        for (k, v) in pairs {
            let n = self.ctx.bound.borrow().len();
            {
                let mut b = self.ctx.bound.borrow_mut();
                if let Some(kv) = &f.intro.key_var {
                    b.push((kv.as_str().to_string(), k));
                }
                b.push((f.intro.value_var.as_str().to_string(), v));
            }
            let result = (|| -> Result<(), Diagnostic> {
                if let Some(c) = &f.cond {
                    let cv = self.expr(&c.expr)?;
                    if cv.is_unknown() {
                        return Err(self.err(&c.expr, "the `if` clause of a `for` expression must be known at plan time"));
                    }
                    match to_bool(&cv) {
                        Some(true) => {}
                        Some(false) => return Ok(()),
                        None => return Err(self.err(&c.expr, "the `if` clause of a `for` expression must be true or false")),
                    }
                }
                let val = self.expr(&f.value_expr)?;
                match &f.key_expr {
                    Some(ke) => {
                        let key = match self.expr(ke)?.into_unmarked().0 {
                            Value::String(s) => s,
                            Value::Number(n) => format_number(n),
                            Value::BigNumber(n) => n.to_text(),
                            Value::Bool(b) => b.to_string(),
                            other => return Err(self.err(ke, format!("a key must be a string, not {}", other.type_name()))),
                        };
                        if f.grouping {
                            groups.entry(key).or_default().push(val);
                        } else if let std::collections::btree_map::Entry::Vacant(slot) = map.entry(key.clone()) {
                            slot.insert(val);
                        } else {
                            return Err(self.err(ke, format!("duplicate key `{key}`: use `...` after the value to group values by key")));
                        }
                    }
                    None => list.push(val),
                }
                Ok(())
            })();
            self.ctx.bound.borrow_mut().truncate(n);
            result?;
        }
        let _ = x;
        let out = if f.key_expr.is_some() {
            if f.grouping {
                Value::Map(groups.into_iter().map(|(k, v)| (k, Value::List(v))).collect())
            } else {
                Value::Map(map)
            }
        } else {
            Value::List(list)
        };
        Ok(out.mark_if(sensitive))
    }

    /// Renders a template. `raw` says to take literal text from the source
    /// (heredocs), before hcl-edit's own indentation handling.
    fn template(&self, t: &Template, kind: Kind, raw: bool) -> Result<Value, Diagnostic> {
        // A template that is one interpolation yields the value itself: "${var.list}" is a list.
        if let Some(Element::Interpolation(i)) = t.as_single_element() {
            return self.expr(&i.expr);
        }
        let raw_text = |el: &Element| -> Option<String> {
            if !raw {
                return None;
            }
            let Element::Literal(l) = el else { return None };
            let sp = self.span(l)?;
            sp.file.text.get(sp.range.clone()).map(template::unescape_raw)
        };
        let nodes = template::process(t, kind, &raw_text);
        let mut out = String::new();
        let mut unknown = false;
        let mut sensitive = false;
        self.render(&nodes, &mut out, &mut unknown, &mut sensitive)?;
        if unknown {
            return Ok(Value::Unknown);
        }
        Ok(Value::String(nfc(&out)).mark_if(sensitive))
    }

    fn render(&self, nodes: &[Node], out: &mut String, unknown: &mut bool, sensitive: &mut bool) -> Result<(), Diagnostic> {
        for node in nodes {
            match node {
                Node::Lit(s) => out.push_str(s),
                Node::Interp(e) => {
                    let v = self.expr(e)?;
                    let (v, s) = v.into_unmarked();
                    *sensitive |= s;
                    match v {
                        Value::Unknown => *unknown = true,
                        Value::String(s) => out.push_str(&s),
                        Value::Number(n) => out.push_str(&format_number(n)),
                        Value::BigNumber(n) => out.push_str(&n.to_text()),
                        Value::Bool(b) => out.push_str(&b.to_string()),
                        Value::Null => return Err(self.err(*e, "cannot interpolate a null value")),
                        other if !other.is_known() => *unknown = true,
                        other => {
                            return Err(Diagnostic::error(format!("cannot interpolate a {} into a string", other.type_name()))
                                .at(self.span(*e))
                                .hint("use join() or jsonencode() to turn it into a string"));
                        }
                    }
                }
                Node::If { cond, then, otherwise } => {
                    let c = self.expr(cond)?;
                    if c.is_unknown() {
                        *unknown = true;
                        continue;
                    }
                    *sensitive |= c.is_sensitive();
                    match to_bool(&c) {
                        Some(true) => self.render(then, out, unknown, sensitive)?,
                        Some(false) => self.render(otherwise, out, unknown, sensitive)?,
                        None => return Err(self.err(*cond, "an `if` condition must be true or false")),
                    }
                }
                Node::For { key, value, coll, body } => {
                    let c = self.expr(coll)?;
                    if !c.is_known() {
                        *unknown = true;
                        continue;
                    }
                    let (c, s) = c.into_unmarked();
                    *sensitive |= s;
                    let pairs: Vec<(Value, Value)> = match c {
                        Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect(),
                        Value::Set(l) => l.into_iter().map(|v| (v.clone(), v)).collect(),
                        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                        other => {
                            return Err(self.err(*coll, format!("cannot iterate over a {}", other.type_name())));
                        }
                    };
                    for (k, v) in pairs {
                        let n = self.ctx.bound.borrow().len();
                        {
                            let mut b = self.ctx.bound.borrow_mut();
                            if let Some(kv) = key {
                                b.push((kv.to_string(), k));
                            }
                            b.push((value.to_string(), v));
                        }
                        let r = self.render(body, out, unknown, sensitive);
                        self.ctx.bound.borrow_mut().truncate(n);
                        r?;
                    }
                }
            }
        }
        Ok(())
    }
}

trait UnmarkTop {
    fn into_unmarked_top(self) -> Value;
}
impl UnmarkTop for Value {
    /// Removes a top-level sensitive mark only (the caller re-applies it).
    fn into_unmarked_top(self) -> Value {
        match self {
            Value::Sensitive(v) => v.into_unmarked_top(),
            v => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;

    struct Vars(Map);
    impl Scope for Vars {
        fn lookup(&self, _: &ModulePath, t: &Target, _: Option<&Span>) -> Result<Value, Diagnostic> {
            match t {
                Target::Var(n) => self.0.get(n).cloned().ok_or_else(|| Diagnostic::error(format!("no var {n}"))),
                Target::Resource(_, ty, n) => Ok(Value::Map(
                    [(n.clone(), Value::Map([("id".to_string(), Value::Unknown), ("ty".to_string(), ty.as_str().into())].into()))]
                        .into_iter()
                        .collect(),
                ))
                .and_then(|m: Value| m.get(n).cloned().ok_or_else(|| Diagnostic::error("x"))),
                _ => Err(Diagnostic::error("unsupported")),
            }
        }
    }

    fn ev(src: &str) -> Result<Value, Diagnostic> {
        let vars = Vars(
            [
                ("n".to_string(), Value::Number(3.0)),
                ("list".to_string(), Value::List(vec!["a".into(), "b".into()])),
                ("secret".to_string(), Value::Sensitive(Box::new("hunter2".into()))),
                ("obj".to_string(), crate::value::obj([("k", "v".into())])),
            ]
            .into(),
        );
        let file = SourceFile::new(Path::new("t.hcl"), "t.hcl".into(), src.to_string());
        let expr = hcl_edit::parser::parse_expr(src).expect("parses");
        let e = Expr::new(expr, file);
        let path = ModulePath::new();
        eval(&e, &Ctx::new(&vars, &path, Path::new(".")))
    }

    #[test]
    fn short_quotients_take_the_fast_path_and_agree_with_the_big_numbers() {
        for (x, y) in [(5.0, 250.0), (1.0, 8.0), (-7.0, 4.0), (3.0, 1024.0), (1.0, 3.0), (2.0, 7.0), (1.0, 1_048_576.0), (1.0, 1_125_899_906_842_624.0), (10.0, 5.0)] {
            let fast = arith(B::Div, &Value::Number(x), &Value::Number(y)).unwrap();
            let big = BigNum::from_f64(x).div(&BigNum::from_f64(y)).into_value();
            assert_eq!(fast, big, "{x} / {y}");
        }
        assert_eq!(short_quotient(5.0, 250.0), Some(0.02));
        assert_eq!(short_quotient(1.0, 3.0), None);
        // 2^-20 is 9.5367431640625e-7, 14 significant digits; 2^-50 has 35.
        assert_eq!(short_quotient(1.0, 1_048_576.0), Some(9.5367431640625e-7));
        assert_eq!(short_quotient(1.0, 1_125_899_906_842_624.0), None);
    }

    #[test]
    fn arithmetic_templates_and_conditionals() {
        assert_eq!(ev("var.n * 2 + 1").unwrap(), Value::Number(7.0));
        assert_eq!(ev("\"n=${var.n}\"").unwrap(), Value::str("n=3"));
        assert_eq!(ev("var.n > 2 ? \"big\" : \"small\"").unwrap(), Value::str("big"));
        assert_eq!(ev("\"${var.list}\"").unwrap(), Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(ev("\"%{ for x in var.list }${x};%{ endfor }\"").unwrap(), Value::str("a;b;"));
    }

    #[test]
    fn for_expressions_and_splats() {
        assert_eq!(ev("[for s in var.list : upper(s)]").unwrap(), Value::List(vec!["A".into(), "B".into()]));
        assert_eq!(
            ev("{for i, s in var.list : s => i}").unwrap(),
            crate::value::obj([("a", 0i64.into()), ("b", 1i64.into())])
        );
        assert_eq!(ev("[var.obj, var.obj][*].k").unwrap(), Value::List(vec!["v".into(), "v".into()]));
    }

    #[test]
    fn unknown_and_sensitive_propagate() {
        assert_eq!(ev("\"id-${aws_instance.web.id}\"").unwrap(), Value::Unknown);
        assert_eq!(ev("aws_instance.web.id == \"x\"").unwrap(), Value::Unknown);
        let v = ev("\"pw=${var.secret}\"").unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_string(), "(sensitive value)");
        assert!(ev("upper(var.secret)").unwrap().is_sensitive());
    }

    #[test]
    fn errors_point_at_the_subexpression() {
        let e = ev("var.list[5]").unwrap_err();
        assert!(e.message.contains("out of range"), "{}", e.message);
        assert_eq!(e.span.unwrap().location(), "t.hcl:1:10");
        let e = ev("var.obj.kk").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `k`?"));
        let e = ev("uper(\"x\")").unwrap_err();
        assert!(e.hint.unwrap().contains("upper"));
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(ev("0.1 + 0.2").unwrap(), Value::Number(0.3));
        assert_eq!(ev("9007199254740993 + 1").unwrap().to_string(), "9007199254740994");
        assert_eq!(ev("1 / 3").unwrap().to_string(), format!("0.{}5", "3".repeat(154)));
        assert_eq!(ev("-7 % 3").unwrap(), Value::Number(-1.0));
        assert_eq!(ev("-\"5\"").unwrap(), Value::Number(-5.0));
        assert!(ev("1 / 0").unwrap_err().message.contains("division by zero"));
    }

    #[test]
    fn conditionals_unify_their_results() {
        assert_eq!(ev("true ? 1 : \"a\"").unwrap(), Value::str("1"));
        assert_eq!(ev("\"true\" ? [1] : [\"a\"]").unwrap(), Value::List(vec!["1".into()]));
        assert!(ev("true ? 1 : true").unwrap_err().message.contains("consistent types"));
        // An error in the result not taken does not count.
        assert_eq!(ev("true ? 1 : var.list[9]").unwrap(), Value::Number(1.0));
    }

    #[test]
    fn sets_have_no_index() {
        assert!(ev("toset(var.list)[0]").unwrap_err().message.contains("cannot index a set"));
        assert_eq!(ev("[for i, x in toset([\"b\", \"a\"]) : i]").unwrap(), Value::List(vec!["a".into(), "b".into()]));
        assert_eq!(ev("toset([\"a\"]) == [\"a\"]").unwrap(), Value::Bool(false));
    }

    #[test]
    fn legacy_splat_indexes_the_list() {
        assert_eq!(ev("[var.obj, {k = \"w\"}].*.k[1]").unwrap(), Value::str("w"));
        assert_eq!(ev("[var.obj, {k = \"w\"}][*].k").unwrap(), Value::List(vec!["v".into(), "w".into()]));
    }

    #[test]
    fn strip_markers_and_flush_heredocs_as_terraform() {
        assert_eq!(ev("\"x %{~ if true ~} y %{~ endif ~} z\"").unwrap(), Value::str("xyz"));
        let src = "<<-EOT\n  %{ for h in [\"web\", \"db\"] ~}\n  host ${h}\n  %{ endfor ~}\n  EOT";
        assert_eq!(ev(src).unwrap(), Value::str("  host web\n  host db\n"));
        let src = "<<-EOT\n    a\n      b\n    EOT";
        assert_eq!(ev(src).unwrap(), Value::str("a\n  b\n"));
        assert_eq!(ev("\"e\\u0301\"").unwrap(), Value::str("\u{e9}"));
    }

    #[test]
    fn try_and_can() {
        assert_eq!(ev("try(var.list[9], \"fallback\")").unwrap(), Value::str("fallback"));
        assert_eq!(ev("can(var.list[9])").unwrap(), Value::Bool(false));
    }
}
