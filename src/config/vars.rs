//! Values of the root module's variables, from every source a user has:
//! `BERTH_VAR_<name>` environment variables (lowest precedence), the files
//! Terraform loads by itself (`terraform.tfvars`, `terraform.tfvars.json`,
//! then `*.auto.tfvars[.json]` in lexical order), `--var-file` files (HCL or
//! JSON) in order, then `--var k=v` flags in order, then the declared
//! default. Each value is converted to the declared type, marked if
//! the variable is sensitive, and checked against its `validation` blocks.

use super::eval::{self, Ctx, Scope};
use super::refs::Target;
use super::{Expr, Module, VariableDecl};
use crate::addr::ModulePath;
use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span, suggest};
use crate::value::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Where the raw inputs come from.
#[derive(Clone, Debug, Default)]
pub struct VarSources {
    /// `--var k=v`, in order.
    pub vars: Vec<String>,
    /// `--var-file FILE`, in order.
    pub files: Vec<std::path::PathBuf>,
    /// The variable files found in the configuration's folder
    /// ([`auto_files`]), read before `files`.
    pub auto_files: Vec<std::path::PathBuf>,
    /// `BERTH_VAR_<name>` pairs.
    pub env: Vec<(String, String)>,
}

impl VarSources {
    pub fn from_env(vars: Vec<String>, files: Vec<std::path::PathBuf>) -> Self {
        let env = std::env::vars().filter_map(|(k, v)| k.strip_prefix("BERTH_VAR_").map(|n| (n.to_string(), v))).collect();
        VarSources { vars, files, env, auto_files: Vec::new() }
    }

    /// Adds the variable files Terraform loads by itself from `dir`.
    pub fn with_auto_files(mut self, dir: &Path) -> Self {
        self.auto_files = auto_files(dir);
        self
    }
}

/// The variable files read without being named, in Terraform's order:
/// `terraform.tfvars`, `terraform.tfvars.json`, then every
/// `*.auto.tfvars` and `*.auto.tfvars.json` in lexical order of the names.
pub fn auto_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<std::path::PathBuf> =
        ["terraform.tfvars", "terraform.tfvars.json"].iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect();
    let mut auto: Vec<std::path::PathBuf> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                    (n.ends_with(".auto.tfvars") || n.ends_with(".auto.tfvars.json")) && p.is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    auto.sort();
    out.extend(auto);
    out
}

enum Raw {
    /// A string from the command line or environment: parsed according to the type.
    Text(String),
    Value(Value),
}

/// Resolves every root variable. All problems are reported together.
pub fn resolve(root: &Module, sources: &VarSources) -> Result<BTreeMap<String, Value>, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut raw: BTreeMap<String, (Raw, String)> = BTreeMap::new();
    let names: Vec<&str> = root.variables.keys().map(String::as_str).collect();
    let unknown = |name: &str, source: &str| {
        let mut d = Diagnostic::error(format!("{source}: no variable `{name}` is declared"));
        if let Some(s) = suggest(name, names.iter().copied()) {
            d = d.hint(format!("did you mean `{s}`?"));
        }
        d
    };

    for (name, text) in &sources.env {
        if root.variables.contains_key(name) {
            raw.insert(name.clone(), (Raw::Text(text.clone()), format!("environment variable `BERTH_VAR_{name}`")));
        }
    }
    // A file read without being named may hold values for variables this
    // configuration does not declare (a shared `terraform.tfvars`): as in
    // Terraform, that is a warning, not an error.
    for file in &sources.auto_files {
        match read_var_file(file) {
            Ok(values) => {
                for (name, (v, origin)) in values {
                    if root.variables.contains_key(&name) {
                        raw.insert(name, (Raw::Value(v), origin));
                    } else {
                        tracing::warn!("{origin}: a value for `{name}`, which is not a declared variable, is ignored");
                    }
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    for file in &sources.files {
        match read_var_file(file) {
            Ok(values) => {
                for (name, (v, origin)) in values {
                    if root.variables.contains_key(&name) {
                        raw.insert(name, (Raw::Value(v), origin));
                    } else {
                        diags.push(unknown(&name, &origin));
                    }
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    for kv in &sources.vars {
        let Some((name, text)) = kv.split_once('=') else {
            diags.push(Diagnostic::error(format!("`--var {kv}`: expected NAME=VALUE")));
            continue;
        };
        let name = name.trim();
        if root.variables.contains_key(name) {
            raw.insert(name.to_string(), (Raw::Text(text.to_string()), format!("`--var {name}=...`")));
        } else {
            diags.push(unknown(name, "--var"));
        }
    }

    let mut out = BTreeMap::new();
    for (name, decl) in &root.variables {
        let given = raw.remove(name);
        let value = match given {
            Some((Raw::Text(t), origin)) => parse_text(decl, &t, &origin),
            Some((Raw::Value(v), origin)) => Ok((v, origin)),
            None => match &decl.default {
                Some(d) => eval::constant(d).map(|v| (v, "the default".to_string())).map_err(Diagnostics::from),
                None => Err(Diagnostic::error(format!(
                    "no value for required variable `{name}`: set it with `--var {name}=...`, a `--var-file`, or `BERTH_VAR_{name}`"
                ))
                .at(decl.span.clone())
                .into()),
            },
        };
        // A default is checked where it is written; a value from outside the
        // configuration, at the variable's declaration.
        let at = match (&value, &decl.default) {
            (Ok((_, origin)), Some(d)) if origin == "the default" => d.span(),
            _ => decl.span.clone(),
        };
        match value.and_then(|(v, origin)| check_at(decl, v, &origin, at)) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(d) => diags.extend(d),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

fn parse_text(decl: &VariableDecl, text: &str, origin: &str) -> Result<(Value, String), Diagnostics> {
    if !decl.type_.is_complex() {
        return Ok((Value::String(text.to_string()), origin.to_string()));
    }
    let file = SourceFile::new(Path::new(origin), origin.to_string(), text.to_string());
    let expr = hcl_edit::parser::parse_expr(text).map_err(|e| {
        Diagnostics::from(Diagnostic::error(format!(
            "{origin}: `{text}` is not a valid HCL value for type {}: {}",
            decl.type_,
            e.message()
        ))
        // The text has no file of its own: point at the variable it is for.
        .at(decl.span.clone()))
    })?;
    let v = eval::constant(&Expr::new(expr, file)).map_err(Diagnostics::from)?;
    Ok((v, origin.to_string()))
}

/// Converts to the declared type, marks sensitive values, runs validations.
pub fn check(decl: &VariableDecl, v: Value, origin: &str) -> Result<Value, Diagnostics> {
    check_at(decl, v, origin, decl.span.clone())
}

/// [`check`], with type errors pointing at `at`: where the value is written.
pub fn check_at(decl: &VariableDecl, v: Value, origin: &str, at: Option<Span>) -> Result<Value, Diagnostics> {
    if v.is_null() && !decl.nullable {
        return Err(Diagnostic::error(format!("variable `{}` must not be null", decl.name)).at(at).into());
    }
    let v = decl.type_.convert(v).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(format!("invalid value for variable `{}` from {origin}: {e}", decl.name)).at(at.clone()),
        )
    })?;
    let v = v.mark_if(decl.sensitive);
    let mut diags = Diagnostics::new();
    for val in &decl.validations {
        struct One<'a>(&'a str, &'a Value);
        impl Scope for One<'_> {
            fn lookup(&self, _: &ModulePath, t: &Target, span: Option<&Span>) -> Result<Value, Diagnostic> {
                match t {
                    Target::Var(n) if n == self.0 => Ok(self.1.clone()),
                    _ => Err(Diagnostic::error("a validation condition may only refer to the variable itself").at(span.cloned())),
                }
            }
        }
        let scope = One(&decl.name, &v);
        let path = ModulePath::new();
        let ctx = Ctx::new(&scope, &path, Path::new("."));
        match eval::eval(&val.condition, &ctx) {
            Ok(c) if c.as_bool() == Some(true) => {}
            Ok(c) if c.as_bool() == Some(false) => {
                let msg = eval::eval(&val.error_message, &ctx)
                    .ok()
                    .and_then(|m| if m.is_sensitive() { None } else { m.as_str().map(str::to_string) })
                    .unwrap_or_else(|| "validation failed".into());
                diags.push(
                    Diagnostic::error(format!("invalid value for variable `{}` from {origin}: {msg}", decl.name))
                        .at(val.condition.span()),
                );
            }
            Ok(c) => diags.push(
                Diagnostic::error(format!("a validation condition must be true or false, not {}", c.type_name()))
                    .at(val.condition.span()),
            ),
            Err(e) => diags.push(e),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(v) }
}

/// Reads a `--var-file` (or a `--backend-config` file): JSON when it ends
/// in `.json`, HCL attributes otherwise.
pub fn read_var_file(path: &Path) -> Result<BTreeMap<String, (Value, String)>, Diagnostics> {
    let name = path.strip_prefix(".").unwrap_or(path).display().to_string();
    let text = fs_err::read_to_string(path)
        .map_err(|e| Diagnostics::from(Diagnostic::error(format!("cannot read variable file: {e}"))))?;
    let mut out = BTreeMap::new();
    if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Diagnostics::from(Diagnostic::error(format!(
                "{name}:{}:{}: invalid JSON: {e}",
                e.line(),
                e.column()
            )))
        })?;
        let serde_json::Value::Object(obj) = json else {
            return Err(Diagnostic::error(format!("{name}: a variable file holds one JSON object")).into());
        };
        for (k, v) in obj {
            out.insert(k.clone(), (Value::from_json(&v), format!("`{name}`")));
        }
        return Ok(out);
    }
    let file = SourceFile::new(path, name.clone(), text);
    let body = hcl_edit::parser::parse_body(&file.text).map_err(|e| {
        let off = e.location().offset();
        Diagnostics::from(Diagnostic::error(format!("syntax error: {}", e.message())).at(Some(Span::new(&file, off..off + 1))))
    })?;
    let mut diags = Diagnostics::new();
    for s in body.iter() {
        match s {
            hcl_edit::structure::Structure::Attribute(a) => {
                use hcl_edit::Span as _;
                let e = Expr::new(a.value.clone(), file.clone());
                let (l, _) = file.line_col(a.key.span().map(|r| r.start).unwrap_or(0));
                match eval::constant(&e) {
                    Ok(v) => {
                        out.insert(a.key.as_str().to_string(), (v, format!("`{name}` line {l}")));
                    }
                    Err(d) => diags.push(d),
                }
            }
            hcl_edit::structure::Structure::Block(b) => {
                use hcl_edit::Span as _;
                diags.push(
                    Diagnostic::error("a variable file holds only `name = value` lines")
                        .at(b.ident.span().map(|r| Span::new(&file, r))),
                );
            }
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}
