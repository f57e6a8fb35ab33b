//! Template whitespace as Terraform produces it, byte for byte.
//!
//! hcl-edit parses templates, but strip markers (`~`) and flush heredocs
//! (`<<-`) are whitespace rules HCL applies to the *tokens* of a template, and
//! user data and YAML files depend on their exact result. So the parsed
//! template is flattened back into HCL's token stream here: literal text
//! split after each newline (in heredocs and template files), interpolations
//! and directive markers in between. Then, as HCL does:
//!
//! 1. a `~` beside a marker trims the whitespace of the one literal token
//!    next to it (in a heredoc that is at most the rest of a line);
//! 2. a flush heredoc removes from every literal token that starts a line the
//!    smallest indentation of those lines, counting a line that starts with
//!    an interpolation or directive as not indented, and skipping blank
//!    lines — after stripping, so a line whose newline was stripped away no
//!    longer starts the next one.
//!
//! The result is a small tree the evaluator walks ([`Node`]).

use hcl_edit::expr::Expression;
use hcl_edit::template::{Directive, Element, Strip, Template};
use unicode_segmentation::UnicodeSegmentation;

/// How a template's text was written.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// A quoted string: no line splitting.
    Quoted,
    /// `<<EOT` or a template file: literal tokens end after each newline.
    Lines,
    /// `<<-EOT`: as `Lines`, then the common indentation goes.
    Flush,
}

/// A template after whitespace processing.
pub enum Node<'a> {
    Lit(String),
    Interp(&'a Expression),
    If {
        cond: &'a Expression,
        then: Vec<Node<'a>>,
        otherwise: Vec<Node<'a>>,
    },
    For {
        key: Option<&'a str>,
        value: &'a str,
        coll: &'a Expression,
        body: Vec<Node<'a>>,
    },
}

enum Tok<'a> {
    Lit(String),
    Interp(&'a Expression, Strip),
    IfOpen(&'a Expression, Strip),
    Else(Strip),
    EndIf(Strip),
    ForOpen(Option<&'a str>, &'a str, &'a Expression, Strip),
    EndFor(Strip),
}

impl Tok<'_> {
    fn strip(&self) -> Option<Strip> {
        match self {
            Tok::Lit(_) => None,
            Tok::Interp(_, s)
            | Tok::IfOpen(_, s)
            | Tok::Else(s)
            | Tok::EndIf(s)
            | Tok::ForOpen(.., s)
            | Tok::EndFor(s) => Some(*s),
        }
    }
}

fn strips_before(s: Strip) -> bool {
    matches!(s, Strip::Start | Strip::Both)
}

fn strips_after(s: Strip) -> bool {
    matches!(s, Strip::End | Strip::Both)
}

/// Processes `t`. `raw` gives a literal's source text for heredocs and
/// template files (where hcl-edit has already changed the parsed text);
/// `None` keeps the parsed text.
pub fn process<'a>(
    t: &'a Template,
    kind: Kind,
    raw: &dyn Fn(&hcl_edit::template::Element) -> Option<String>,
) -> Vec<Node<'a>> {
    let mut toks = Vec::new();
    flatten(t, kind, raw, &mut toks);
    // 1. Strip markers trim the neighbouring literal token.
    for i in 0..toks.len() {
        let Some(strip) = toks[i].strip() else {
            continue;
        };
        if strips_before(strip)
            && i > 0
            && let Tok::Lit(s) = &mut toks[i - 1]
        {
            let n = s.trim_end().len();
            s.truncate(n);
        }
        if strips_after(strip)
            && i + 1 < toks.len()
            && let Tok::Lit(s) = &mut toks[i + 1]
        {
            *s = s.trim_start().to_string();
        }
    }
    // 2. Flush heredocs lose their common indentation.
    if kind == Kind::Flush {
        flush(&mut toks);
    }
    let mut pos = 0;
    build(&toks, &mut pos)
}

fn flatten<'a>(
    t: &'a Template,
    kind: Kind,
    raw: &dyn Fn(&Element) -> Option<String>,
    out: &mut Vec<Tok<'a>>,
) {
    for el in t.iter() {
        match el {
            Element::Literal(l) => {
                let text = raw(el).unwrap_or_else(|| l.value().to_string());
                if kind == Kind::Quoted {
                    out.push(Tok::Lit(text));
                } else {
                    for line in text.split_inclusive('\n') {
                        out.push(Tok::Lit(line.to_string()));
                    }
                }
            }
            Element::Interpolation(i) => out.push(Tok::Interp(&i.expr, i.strip)),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(d) => {
                    out.push(Tok::IfOpen(&d.if_expr.cond_expr, d.if_expr.strip));
                    flatten(&d.if_expr.template, kind, raw, out);
                    if let Some(e) = &d.else_expr {
                        out.push(Tok::Else(e.strip));
                        flatten(&e.template, kind, raw, out);
                    }
                    out.push(Tok::EndIf(d.endif_expr.strip));
                }
                Directive::For(d) => {
                    let f = &d.for_expr;
                    out.push(Tok::ForOpen(
                        f.key_var.as_ref().map(|k| k.as_str()),
                        f.value_var.as_str(),
                        &f.collection_expr,
                        f.strip,
                    ));
                    flatten(&f.template, kind, raw, out);
                    out.push(Tok::EndFor(d.endfor_expr.strip));
                }
            },
        }
    }
}

fn flush(toks: &mut [Tok]) {
    let mut min = usize::MAX;
    let mut newline = true;
    let mut adjust = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if newline {
            newline = false;
            match t {
                Tok::Lit(s) => {
                    let trimmed = s.trim_start();
                    if !(trimmed.is_empty() && s.ends_with('\n')) {
                        let spaces = s[..s.len() - trimmed.len()].graphemes(true).count();
                        min = min.min(spaces);
                        adjust.push(i);
                    }
                }
                _ => min = 0,
            }
        }
        if let Tok::Lit(s) = t
            && s.ends_with('\n')
        {
            newline = true;
        }
    }
    if min == usize::MAX {
        return;
    }
    for i in adjust {
        if let Tok::Lit(s) = &mut toks[i] {
            let cut: usize = s.graphemes(true).take(min).map(str::len).sum();
            *s = s[cut..].to_string();
        }
    }
}

fn build<'a>(toks: &[Tok<'a>], pos: &mut usize) -> Vec<Node<'a>> {
    let mut out = Vec::new();
    while *pos < toks.len() {
        match &toks[*pos] {
            Tok::Lit(s) => {
                if !s.is_empty() {
                    out.push(Node::Lit(s.clone()));
                }
                *pos += 1;
            }
            Tok::Interp(e, _) => {
                out.push(Node::Interp(e));
                *pos += 1;
            }
            Tok::IfOpen(cond, _) => {
                *pos += 1;
                let then = build(toks, pos);
                let mut otherwise = Vec::new();
                if matches!(toks.get(*pos), Some(Tok::Else(_))) {
                    *pos += 1;
                    otherwise = build(toks, pos);
                }
                // The `endif`.
                *pos += 1;
                out.push(Node::If {
                    cond,
                    then,
                    otherwise,
                });
            }
            Tok::ForOpen(key, value, coll, _) => {
                *pos += 1;
                let body = build(toks, pos);
                *pos += 1;
                out.push(Node::For {
                    key: *key,
                    value,
                    coll,
                    body,
                });
            }
            Tok::Else(_) | Tok::EndIf(_) | Tok::EndFor(_) => return out,
        }
    }
    out
}

/// A heredoc or template literal's source text with `$${` and `%%{`
/// unescaped: the text before hcl-edit's own indentation handling.
pub fn unescape_raw(src: &str) -> String {
    src.replace("$${", "${").replace("%%{", "%{")
}
