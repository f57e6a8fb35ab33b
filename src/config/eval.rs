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
use super::{Expr, functions};
use crate::addr::ModulePath;
use crate::diag::{Diagnostic, Span, suggest};
use crate::value::{Map, Value, format_number};
use hcl_edit::expr::{BinaryOperator as B, Expression as E, ObjectKey, TraversalOperator as Op, UnaryOperator as U};
use hcl_edit::template::{Directive, Element, Strip, Template};
use std::path::Path;

/// Resolves references to values.
pub trait Scope {
    /// The value of a reference root in `module`: `var.x` is
    /// `Target::Var("x")`; `aws_instance.web` is the whole resource (an
    /// object, or a list/map of objects under `count`/`for_each`).
    fn lookup(&self, module: &ModulePath, target: &Target, span: Option<&Span>) -> Result<Value, Diagnostic>;
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
    let e = Expr { expr: E::Null(hcl_edit::Decorated::new(hcl_edit::expr::Null)), file };
    let bindings: Vec<(String, Value)> = vars.into_iter().collect();
    let tctx = Ctx::new(&TemplateScope, ctx.module, ctx.base_dir).with_bindings(bindings);
    Evaluator { e: &e, ctx: &tctx }.template(&template)
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
            E::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(f64::NAN))),
            E::String(s) => Ok(Value::String(s.value().clone())),
            E::Array(a) => a.iter().map(|e| self.expr(e)).collect::<Result<Vec<_>, _>>().map(Value::List),
            E::Object(o) => {
                let mut m = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(ke) => match self.expr(ke)?.into_unmarked().0 {
                            Value::String(s) => s,
                            Value::Number(n) => format_number(n),
                            Value::Bool(b) => b.to_string(),
                            Value::Unknown => return Ok(Value::Unknown),
                            other => return Err(self.err(ke, format!("an object key must be a string, not {}", other.type_name()))),
                        },
                    };
                    m.insert(key, self.expr(v.expr())?);
                }
                Ok(Value::Map(m))
            }
            E::StringTemplate(t) => self.template(t),
            E::HeredocTemplate(h) => self.template(&h.template),
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
                let b = match cond.unmarked() {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    other => {
                        return Err(self.err(&c.cond_expr, format!("a condition must be true or false, not {}", other.type_name())));
                    }
                };
                let v = if b { self.expr(&c.true_expr)? } else { self.expr(&c.false_expr)? };
                Ok(v.mark_if(sensitive))
            }
            E::FuncCall(f) => self.call(x, f),
            E::UnaryOp(u) => {
                let v = self.expr(&u.expr)?;
                let (unknown, sensitive) = marks(&[&v]);
                if unknown {
                    return Ok(Value::Unknown);
                }
                let r = match (u.operator.value(), v.unmarked()) {
                    (U::Neg, Value::Number(n)) => Value::Number(-n),
                    (U::Not, Value::Bool(b)) => Value::Bool(!b),
                    (U::Neg, other) => return Err(self.err(x, format!("`-` needs a number, not {}", other.type_name()))),
                    (U::Not, other) => return Err(self.err(x, format!("`!` needs a bool, not {}", other.type_name()))),
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
            Target::Var(_) | Target::Local(_) => (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 1),
            Target::Module(_, Some(_)) => (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 2),
            Target::Module(_, None) => (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 1),
            Target::Resource(crate::addr::Mode::Data, ..) => {
                (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 2)
            }
            Target::Resource(..) => (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 1),
            Target::Workspace => (self.ctx.scope.lookup(self.ctx.module, &target, self.span(x).as_ref())?, 0),
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
                        Value::List(l) => l,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    let rest = &ops[i + 1..];
                    let out = items
                        .into_iter()
                        .map(|item| self.apply_ops(x, item, rest))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(Value::List(out).mark_if(sensitive));
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
            Value::List(_) => Err(Diagnostic::error(format!("cannot read `{name}` of a list"))
                .at(self.span(x))
                .hint(format!("pick one element with `[0]`, or all of them with `[*].{name}`"))),
            other => Err(self.err(x, format!("cannot read `{name}` of a {}", other.type_name()))),
        }
    }

    fn index(&self, at: &impl hcl_edit::Span, v: Value, idx: &Value) -> Result<Value, Diagnostic> {
        match (v, idx) {
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
        if f.name.is_namespaced() {
            return Err(self.err(x, format!("namespaced functions (`{}::...`) are not supported", f.name.namespace.iter().map(|n| n.as_str()).collect::<Vec<_>>().join("::"))));
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
        if !functions::exists(name) {
            let mut d = Diagnostic::error(format!("unknown function `{name}`")).at(self.span(x));
            let mut names: Vec<&str> = functions::names().to_vec();
            names.extend(["try", "can", "templatefile"]);
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
        let num = |v: &Value, side: &E| -> Result<f64, Diagnostic> {
            match v {
                Value::Number(n) => Ok(*n),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| self.err(side, format!("`{}` needs numbers, got string {}", op.as_str(), v))),
                other => Err(self.err(side, format!("`{}` needs numbers, got {}", op.as_str(), other.type_name()))),
            }
        };
        let boolean = |v: &Value, side: &E| -> Result<bool, Diagnostic> {
            v.as_bool().ok_or_else(|| self.err(side, format!("`{}` needs bools, got {}", op.as_str(), v.type_name())))
        };
        let out = match op {
            B::Eq => Value::Bool(l.same_as(&r)),
            B::NotEq => Value::Bool(!l.same_as(&r)),
            B::And => Value::Bool(boolean(&l, &b.lhs_expr)? && boolean(&r, &b.rhs_expr)?),
            B::Or => Value::Bool(boolean(&l, &b.lhs_expr)? || boolean(&r, &b.rhs_expr)?),
            _ => {
                let (a, c) = (num(&l, &b.lhs_expr)?, num(&r, &b.rhs_expr)?);
                match op {
                    B::Plus => Value::Number(a + c),
                    B::Minus => Value::Number(a - c),
                    B::Mul => Value::Number(a * c),
                    B::Div => {
                        if c == 0.0 {
                            return Err(self.err(x, "division by zero"));
                        }
                        Value::Number(a / c)
                    }
                    B::Mod => {
                        if c == 0.0 {
                            return Err(self.err(x, "modulo by zero"));
                        }
                        Value::Number(a % c)
                    }
                    B::Less => Value::Bool(a < c),
                    B::LessEq => Value::Bool(a <= c),
                    B::Greater => Value::Bool(a > c),
                    B::GreaterEq => Value::Bool(a >= c),
                    _ => unreachable!("handled above"),
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
                    match cv.as_bool() {
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
                            Value::Bool(b) => b.to_string(),
                            other => return Err(self.err(ke, format!("a key must be a string, not {}", other.type_name()))),
                        };
                        if f.grouping {
                            groups.entry(key).or_default().push(val);
                        } else if map.contains_key(&key) {
                            return Err(self.err(ke, format!("duplicate key `{key}`: use `...` after the value to group values by key")));
                        } else {
                            map.insert(key, val);
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

    fn template(&self, t: &Template) -> Result<Value, Diagnostic> {
        // A template that is one interpolation yields the value itself: "${var.list}" is a list.
        if let Some(Element::Interpolation(i)) = t.as_single_element() {
            return self.expr(&i.expr);
        }
        let mut out = String::new();
        let mut unknown = false;
        let mut sensitive = false;
        self.template_into(t, &mut out, &mut unknown, &mut sensitive, &mut false)?;
        if unknown {
            return Ok(Value::Unknown);
        }
        Ok(Value::String(out).mark_if(sensitive))
    }

    fn template_into(
        &self,
        t: &Template,
        out: &mut String,
        unknown: &mut bool,
        sensitive: &mut bool,
        strip_next: &mut bool,
    ) -> Result<(), Diagnostic> {
        fn strip_start(s: Strip) -> bool {
            matches!(s, Strip::Start | Strip::Both)
        }
        fn strip_end(s: Strip) -> bool {
            matches!(s, Strip::End | Strip::Both)
        }
        for el in t.iter() {
            match el {
                Element::Literal(l) => {
                    let text: &str = l.value();
                    if *strip_next {
                        out.push_str(text.trim_start());
                    } else {
                        out.push_str(text);
                    }
                    *strip_next = false;
                }
                Element::Interpolation(i) => {
                    if strip_start(i.strip) {
                        let n = out.trim_end().len();
                        out.truncate(n);
                    }
                    let v = self.expr(&i.expr)?;
                    let (v, s) = v.into_unmarked();
                    *sensitive |= s;
                    match v {
                        Value::Unknown => *unknown = true,
                        Value::String(s) => out.push_str(&s),
                        Value::Number(n) => out.push_str(&format_number(n)),
                        Value::Bool(b) => out.push_str(&b.to_string()),
                        Value::Null => return Err(self.err(&i.expr, "cannot interpolate a null value")),
                        other if !other.is_known() => *unknown = true,
                        other => {
                            return Err(Diagnostic::error(format!("cannot interpolate a {} into a string", other.type_name()))
                                .at(self.span(&i.expr))
                                .hint("use join() or jsonencode() to turn it into a string"));
                        }
                    }
                    *strip_next = strip_end(i.strip);
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        if strip_start(d.if_expr.strip) {
                            let n = out.trim_end().len();
                            out.truncate(n);
                        }
                        *strip_next = strip_end(d.if_expr.strip);
                        let c = self.expr(&d.if_expr.cond_expr)?;
                        if c.is_unknown() {
                            *unknown = true;
                            continue;
                        }
                        match c.as_bool() {
                            Some(true) => self.template_into(&d.if_expr.template, out, unknown, sensitive, strip_next)?,
                            Some(false) => {
                                if let Some(e) = &d.else_expr {
                                    self.template_into(&e.template, out, unknown, sensitive, strip_next)?
                                }
                            }
                            None => return Err(self.err(&d.if_expr.cond_expr, "an `if` condition must be true or false")),
                        }
                        *strip_next = strip_end(d.endif_expr.strip);
                    }
                    Directive::For(d) => {
                        if strip_start(d.for_expr.strip) {
                            let n = out.trim_end().len();
                            out.truncate(n);
                        }
                        let coll = self.expr(&d.for_expr.collection_expr)?;
                        if !coll.is_known() {
                            *unknown = true;
                            continue;
                        }
                        let (coll, s) = coll.into_unmarked();
                        *sensitive |= s;
                        let pairs: Vec<(Value, Value)> = match coll {
                            Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v)).collect(),
                            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                            other => {
                                return Err(self.err(&d.for_expr.collection_expr, format!("cannot iterate over a {}", other.type_name())));
                            }
                        };
                        for (k, v) in pairs {
                            *strip_next = strip_end(d.for_expr.strip);
                            let n = self.ctx.bound.borrow().len();
                            {
                                let mut b = self.ctx.bound.borrow_mut();
                                if let Some(kv) = &d.for_expr.key_var {
                                    b.push((kv.as_str().to_string(), k));
                                }
                                b.push((d.for_expr.value_var.as_str().to_string(), v));
                            }
                            let r = self.template_into(&d.for_expr.template, out, unknown, sensitive, strip_next);
                            self.ctx.bound.borrow_mut().truncate(n);
                            r?;
                            if strip_start(d.endfor_expr.strip) {
                                let n = out.trim_end().len();
                                out.truncate(n);
                            }
                        }
                        *strip_next = strip_end(d.endfor_expr.strip);
                    }
                },
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
        let e = Expr { expr, file };
        let path = ModulePath::new();
        eval(&e, &Ctx::new(&vars, &path, Path::new(".")))
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
    fn try_and_can() {
        assert_eq!(ev("try(var.list[9], \"fallback\")").unwrap(), Value::str("fallback"));
        assert_eq!(ev("can(var.list[9])").unwrap(), Value::Bool(false));
    }
}
