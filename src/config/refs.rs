//! References between declarations, found by walking expressions.
//!
//! The dependency graph's edges come from here: `aws_instance.web.private_ip`
//! is a reference to the resource `aws_instance.web`, `var.region` to a
//! variable, `module.core.vpc_id` to an output of a called module. Names bound
//! by `for` expressions and template `for` directives shadow references.

use super::Expr;
use crate::addr::Mode;
use crate::diag::Span;
use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
use hcl_edit::template::{Directive, Element, Template};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Var(String),
    Local(String),
    Resource(Mode, String, String),
    /// `module.NAME.OUTPUT`, or the whole module's outputs when `None`.
    Module(String, Option<String>),
    Count,
    Each,
    SelfRef,
    Path,
    Workspace,
    /// A root name that means nothing (`foo.bar` with no resource type `foo`
    /// is still a resource reference; this is for bare names like `foo`).
    Unknown(String),
}

#[derive(Clone, Debug)]
pub struct Reference {
    pub target: Target,
    pub span: Option<Span>,
}

impl Reference {
    /// How the reference reads in the source: `aws_instance.web`, `var.x`.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Var(n) => format!("var.{n}"),
            Target::Local(n) => format!("local.{n}"),
            Target::Resource(Mode::Managed, t, n) => format!("{t}.{n}"),
            Target::Resource(Mode::Data, t, n) => format!("data.{t}.{n}"),
            Target::Module(m, Some(o)) => format!("module.{m}.{o}"),
            Target::Module(m, None) => format!("module.{m}"),
            Target::Count => "count".into(),
            Target::Each => "each".into(),
            Target::SelfRef => "self".into(),
            Target::Path => "path".into(),
            Target::Workspace => "terraform.workspace".into(),
            Target::Unknown(n) => n.clone(),
        }
    }
}

/// All references in an expression.
pub fn references(e: &Expr) -> Vec<Reference> {
    let mut w = Walker { expr: e, bound: e.bound.clone(), out: Vec::new(), keys: Vec::new() };
    w.expr(&e.expr);
    w.out
}

/// Every reference to a resource in an expression, with the expression that
/// picks one instance when the reference has one: `count.index` in
/// `aws_instance.web[count.index].private_ip`, `0` in `aws_instance.web.0`.
/// `None` for a reference to the whole resource (`aws_instance.web[*].id`,
/// `aws_instance.web`, or a single-instance resource's attribute).
pub fn resource_references(e: &Expr) -> Vec<(Reference, Option<Expr>)> {
    let mut w = Walker { expr: e, bound: e.bound.clone(), out: Vec::new(), keys: Vec::new() };
    w.expr(&e.expr);
    w.out
        .into_iter()
        .zip(w.keys)
        .filter(|(r, _)| matches!(r.target, Target::Resource(..)))
        .map(|(r, k)| (r, k.map(|k| Expr { expr: std::sync::Arc::new(k), file: e.file.clone(), bound: e.bound.clone() })))
        .collect()
}

struct Walker<'a> {
    expr: &'a Expr,
    bound: Vec<String>,
    out: Vec<Reference>,
    /// For each of `out`, the instance key expression of a resource reference.
    keys: Vec<Option<E>>,
}

fn attr_name(op: &Op) -> Option<String> {
    match op {
        Op::GetAttr(a) => Some(a.as_str().to_string()),
        Op::Index(E::String(s)) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// Classifies a root name with the operators that follow it.
pub fn classify(root: &str, ops: &[&Op]) -> Target {
    let a0 = ops.first().and_then(|o| attr_name(o));
    let a1 = ops.get(1).and_then(|o| attr_name(o));
    match root {
        "var" => a0.map(Target::Var).unwrap_or(Target::Unknown("var".into())),
        "local" => a0.map(Target::Local).unwrap_or(Target::Unknown("local".into())),
        "module" => match a0 {
            Some(m) => Target::Module(m, a1),
            None => Target::Unknown("module".into()),
        },
        "data" => match (a0, a1) {
            (Some(t), Some(n)) => Target::Resource(Mode::Data, t, n),
            _ => Target::Unknown("data".into()),
        },
        "count" => Target::Count,
        "each" => Target::Each,
        "self" => Target::SelfRef,
        "path" => Target::Path,
        "terraform" | "berth" => Target::Workspace,
        t => match a0 {
            Some(n) => Target::Resource(Mode::Managed, t.to_string(), n),
            None => Target::Unknown(t.to_string()),
        },
    }
}

impl Walker<'_> {
    fn root(&mut self, name: &str, ops: &[&Op], span: Option<Span>) {
        if self.bound.iter().any(|b| b == name) {
            return;
        }
        let target = classify(name, ops);
        // The operator after `TYPE.NAME` (`data.TYPE.NAME`) picks the instance.
        let key_op = match &target {
            Target::Resource(Mode::Managed, ..) => ops.get(1),
            Target::Resource(Mode::Data, ..) => ops.get(2),
            _ => None,
        };
        let key = key_op.and_then(|op| match op {
            Op::Index(e) => Some(e.clone()),
            Op::LegacyIndex(n) => Some(E::from(*n.value())),
            _ => None,
        });
        self.out.push(Reference { target, span });
        self.keys.push(key);
    }

    fn expr(&mut self, x: &E) {
        match x {
            E::Null(_) | E::Bool(_) | E::Number(_) | E::String(_) => {}
            E::Array(a) => a.iter().for_each(|e| self.expr(e)),
            E::Object(o) => {
                for (k, v) in o.iter() {
                    if let hcl_edit::expr::ObjectKey::Expression(k) = k {
                        // A bare identifier in parentheses or a traversal used as a key is an expression.
                        if !matches!(k, E::Variable(_)) {
                            self.expr(k);
                        }
                    }
                    self.expr(v.expr());
                }
            }
            E::StringTemplate(t) => self.template(t),
            E::HeredocTemplate(h) => self.template(&h.template),
            E::Parenthesis(p) => self.expr(p.inner()),
            E::Variable(v) => self.root(v.as_str(), &[], self.expr.span_of(x)),
            E::Conditional(c) => {
                self.expr(&c.cond_expr);
                self.expr(&c.true_expr);
                self.expr(&c.false_expr);
            }
            E::FuncCall(f) => f.args.iter().for_each(|a| self.expr(a)),
            E::Traversal(t) => {
                let ops: Vec<&Op> = t.operators.iter().map(|o| o.value()).collect();
                match &t.expr {
                    E::Variable(v) => self.root(v.as_str(), &ops, self.expr.span_of(x)),
                    other => self.expr(other),
                }
                for op in ops {
                    if let Op::Index(i) = op {
                        self.expr(i);
                    }
                }
            }
            E::UnaryOp(u) => self.expr(&u.expr),
            E::BinaryOp(b) => {
                self.expr(&b.lhs_expr);
                self.expr(&b.rhs_expr);
            }
            E::ForExpr(f) => {
                self.expr(&f.intro.collection_expr);
                let n = self.bound.len();
                if let Some(k) = &f.intro.key_var {
                    self.bound.push(k.as_str().to_string());
                }
                self.bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    self.expr(k);
                }
                self.expr(&f.value_expr);
                if let Some(c) = &f.cond {
                    self.expr(&c.expr);
                }
                self.bound.truncate(n);
            }
        }
    }

    fn template(&mut self, t: &Template) {
        for el in t.iter() {
            match el {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        self.expr(&d.if_expr.cond_expr);
                        self.template(&d.if_expr.template);
                        if let Some(e) = &d.else_expr {
                            self.template(&e.template);
                        }
                    }
                    Directive::For(d) => {
                        self.expr(&d.for_expr.collection_expr);
                        let n = self.bound.len();
                        if let Some(k) = &d.for_expr.key_var {
                            self.bound.push(k.as_str().to_string());
                        }
                        self.bound.push(d.for_expr.value_var.as_str().to_string());
                        self.template(&d.for_expr.template);
                        self.bound.truncate(n);
                    }
                },
            }
        }
    }
}
