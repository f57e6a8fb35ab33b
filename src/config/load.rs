//! Reads the `*.hcl` and `*.tf` files of a folder into [`Module`]
//! declarations, following module calls. Both spellings are one language:
//! a configuration ported from Terraform keeps its `.tf` names.

use super::*;
use crate::diag::{Diagnostic, Diagnostics, suggest};
use crate::value::Value;
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use sha2::{Digest, Sha256};

/// Resource types whose own argument is a `health_check` block (Terraform's
/// `aws_lb_target_group`): there the block is the provider's, not berth's
/// post-apply check (which needs a `url` such a type has no use for).
const PROVIDER_HEALTH_CHECKS: &[&str] = &["aws_lb_target_group"];

const BLOCK_KINDS: &[&str] =
    &["berth", "terraform", "provider", "variable", "locals", "resource", "data", "output", "module", "inventory", "import", "notify", "hook", "watch"];
const MAX_MODULE_DEPTH: usize = 16;

/// Loads the configuration in `dir` and every module it calls. All problems
/// found are returned together.
pub fn load(dir: &Path) -> Result<Config, Diagnostics> {
    let loader = Loader { base: dir.to_path_buf(), diags: Diagnostics::new(), files: Vec::new(), modules: IndexMap::new(), root_text: None };
    loader.run(dir)
}

/// Loads a root module from one file's text, as if it were the only file of
/// the current directory (modules it calls are still read from disk).
/// The fuzz target's entry point: no file system needed for the root.
pub fn load_str(name: &str, text: &str) -> Result<Config, Diagnostics> {
    let dir = Path::new(".");
    let loader = Loader {
        base: dir.to_path_buf(),
        diags: Diagnostics::new(),
        files: Vec::new(),
        modules: IndexMap::new(),
        root_text: Some((name.to_string(), text.to_string())),
    };
    loader.run(dir)
}

impl Loader {
    fn run(mut self, dir: &Path) -> Result<Config, Diagnostics> {
        self.load_module(dir, ModulePath::new(), &mut Vec::new(), None);
        if self.modules.get(&ModulePath::new()).is_some_and(|m| {
            m.resources.is_empty() && m.variables.is_empty() && m.outputs.is_empty() && m.calls.is_empty()
                && m.locals.is_empty() && m.providers.is_empty() && m.inventories.is_empty()
        }) && self.files.is_empty()
            && !self.diags.has_errors()
        {
            self.diags.push(
                Diagnostic::error(format!("no configuration files in `{}`", dir.display()))
                    .hint("berth reads `*.hcl` and `*.tf` files (not `*.vars.hcl`, `*.tfvars` or `*.tf.json`)"),
            );
        }
        if self.diags.has_errors() {
            return Err(self.diags);
        }
        let mut hasher = Sha256::new();
        for f in &self.files {
            hasher.update(f.name.as_bytes());
            hasher.update([0]);
            hasher.update(f.text.as_bytes());
            hasher.update([0]);
        }
        Ok(Config { dir: dir.to_path_buf(), modules: self.modules, files: self.files, digest: hex::encode(hasher.finalize()) })
    }
}

struct Loader {
    base: PathBuf,
    diags: Diagnostics,
    files: Vec<Arc<SourceFile>>,
    modules: IndexMap<ModulePath, Module>,
    /// For [`load_str`]: the root module's only file, instead of the directory.
    root_text: Option<(String, String)>,
}

fn label_str(l: &BlockLabel) -> String {
    l.as_str().to_string()
}

fn label_span(file: &Arc<SourceFile>, l: &BlockLabel) -> Option<Span> {
    use hcl_edit::Span as _;
    let range = match l {
        BlockLabel::Ident(i) => i.span(),
        BlockLabel::String(s) => s.span(),
    };
    range.map(|r| Span::new(file, r))
}

fn block_span(file: &Arc<SourceFile>, b: &Block) -> Option<Span> {
    use hcl_edit::Span as _;
    // Point at the block header, not the whole block.
    b.ident.span().or_else(|| b.span()).map(|r| Span::new(file, r))
}

impl Loader {
    fn err(&mut self, msg: impl Into<String>, span: Option<Span>) {
        self.diags.push(Diagnostic::error(msg).at(span));
    }

    fn read_files(&mut self, dir: &Path) -> Vec<(Arc<SourceFile>, Body)> {
        let mut paths: Vec<PathBuf> = match fs_err::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                // `*.vars.hcl` files hold variable values for `--var-file`, not configuration.
                .filter(|p| is_config_file(p) && p.is_file())
                .collect(),
            Err(e) => {
                self.err(format!("cannot read configuration directory: {e}"), None);
                return Vec::new();
            }
        };
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            let name = display_path(&p, &self.base);
            let text = match fs_err::read(&p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(e) => {
                        // Point at the first bad byte: the valid prefix gives its line and column.
                        let at = e.utf8_error().valid_up_to();
                        let bytes = e.into_bytes();
                        let lossy = String::from_utf8_lossy(&bytes[..at]).into_owned();
                        let file = SourceFile::new(&p, name.clone(), lossy);
                        self.err(
                            format!("`{name}` is not valid UTF-8: save it as UTF-8"),
                            Some(Span::new(&file, at..at)),
                        );
                        continue;
                    }
                },
                Err(e) => {
                    self.err(format!("cannot read `{name}`: {e}"), None);
                    continue;
                }
            };
            out.extend(self.parse_file(&p, name, text));
        }
        out
    }

    fn parse_file(&mut self, path: &Path, name: String, text: String) -> Option<(Arc<SourceFile>, Body)> {
        let file = SourceFile::new(path, name, text);
        self.files.push(file.clone());
        match hcl_edit::parser::parse_body(&file.text) {
            Ok(body) => Some((file, body)),
            Err(e) => {
                let offset = e.location().offset();
                let (offset, message) =
                    super::syntax::refine(&file.text, offset).unwrap_or_else(|| (offset, e.message().to_string()));
                let span = Span::new(&file, offset..offset + 1);
                self.err(format!("syntax error: {message}"), Some(span));
                None
            }
        }
    }

    fn load_module(&mut self, dir: &Path, path: ModulePath, stack: &mut Vec<PathBuf>, call_span: Option<Span>) {
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if stack.contains(&canon) || path.len() > MAX_MODULE_DEPTH {
            let addr: Vec<String> = path.iter().map(|m| format!("module.{m}")).collect();
            self.err(format!("`{}` calls itself (directly or through other modules)", addr.join(".")), call_span);
            return;
        }
        stack.push(canon);
        let files = if path.is_empty()
            && let Some((name, text)) = self.root_text.take()
        {
            self.parse_file(&dir.join(&name), name, text).into_iter().collect()
        } else {
            self.read_files(dir)
        };
        let mut module = Module { path: path.clone(), dir: dir.to_path_buf(), ..Default::default() };
        for (file, body) in &files {
            for s in body.iter() {
                match s {
                    Structure::Attribute(a) => {
                        use hcl_edit::Span as _;
                        let span = a.key.span().map(|r| Span::new(file, r));
                        self.err(format!("unexpected argument `{}` outside of any block", a.key.as_str()), span);
                    }
                    Structure::Block(b) => self.block(&mut module, file, b),
                }
            }
        }
        if !path.is_empty() {
            for (kind, present) in [("berth", module.backend.is_some())] {
                if present {
                    self.diags.push(
                        Diagnostic::warning(format!("a `{kind}` block in a called module is ignored"))
                            .at(module.backend.as_ref().and_then(|b| b.span.clone())),
                    );
                }
            }
        }
        let calls: Vec<(String, PathBuf, Option<Span>)> =
            module.calls.values().map(|c| (c.name.clone(), c.dir.clone(), c.span.clone())).collect();
        self.modules.insert(path.clone(), module);
        for (name, child_dir, span) in calls {
            let mut child = path.clone();
            child.push(name);
            self.load_module(&child_dir, child, stack, span);
        }
        stack.pop();
    }

    fn labels(&mut self, file: &Arc<SourceFile>, b: &Block, want: &[&str]) -> Option<Vec<String>> {
        if b.labels.len() != want.len() {
            let kind = b.ident.as_str();
            let shape = want.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" ");
            self.err(
                format!("a `{kind}` block needs {} label(s): `{kind} {shape} {{ ... }}`", want.len()),
                block_span(file, b),
            );
            return None;
        }
        let labels: Vec<String> = b.labels.iter().map(label_str).collect();
        for (l, label) in labels.iter().zip(&b.labels) {
            if !is_name(l) {
                self.err(
                    format!("invalid name `{l}`: a name starts with a letter or `_` and holds letters, digits, `_` and `-`"),
                    label_span(file, label).or_else(|| block_span(file, b)),
                );
                return None;
            }
        }
        Some(labels)
    }

    fn body(&mut self, file: &Arc<SourceFile>, body: &Body) -> BodyDecl {
        self.body_in(file, body, &[])
    }

    /// A body inside `content` of `dynamic` blocks that bind `bound`.
    fn body_in(&mut self, file: &Arc<SourceFile>, body: &Body, bound: &[String]) -> BodyDecl {
        use hcl_edit::Span as _;
        let mut decl = BodyDecl::default();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str().to_string();
                    let key_span = a.key.span().map(|r| Span::new(file, r));
                    if decl.attrs.contains_key(&name) {
                        self.err(format!("argument `{name}` is set twice"), key_span);
                        continue;
                    }
                    let expr = Expr { expr: Arc::new(a.value.clone()), file: file.clone(), bound: bound.to_vec() };
                    decl.attrs.insert(name.clone(), AttrDecl { name, expr, key_span });
                }
                Structure::Block(b) if b.ident.as_str() == "dynamic" => {
                    if let Some(d) = self.dynamic(file, b, bound) {
                        decl.blocks.push(d);
                    }
                }
                Structure::Block(b) => {
                    let inner = self.body_in(file, &b.body, bound);
                    decl.blocks.push(BlockDecl {
                        kind: b.ident.as_str().to_string(),
                        labels: b.labels.iter().map(label_str).collect(),
                        body: inner,
                        span: block_span(file, b),
                        dynamic: None,
                    });
                }
            }
        }
        decl
    }

    /// `dynamic "NAME" { for_each = ..., iterator = it, content { ... } }`,
    /// checked as Terraform checks it; `None` after an error.
    fn dynamic(&mut self, file: &Arc<SourceFile>, b: &Block, bound: &[String]) -> Option<BlockDecl> {
        use hcl_edit::Span as _;
        let span = block_span(file, b);
        let [label] = b.labels.as_slice() else {
            self.err("a `dynamic` block needs one label, the kind of block it makes: `dynamic \"ingress\" { ... }`", span);
            return None;
        };
        let name = label_str(label);
        let (mut for_each, mut iterator, mut content) = (None, None, None);
        let mut ok = true;
        for s in b.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let at = a.key.span().map(|r| Span::new(file, r));
                    match a.key.as_str() {
                        "for_each" => for_each = Some(Expr { expr: Arc::new(a.value.clone()), file: file.clone(), bound: bound.to_vec() }),
                        "iterator" => match &a.value {
                            hcl_edit::expr::Expression::Variable(v) => iterator = Some(v.as_str().to_string()),
                            other => {
                                let at = other.span().map(|r| Span::new(file, r)).or(at);
                                self.err("`iterator` is a name, not an expression: `iterator = rule`", at);
                                ok = false;
                            }
                        },
                        "labels" => {
                            self.err("`labels` in a `dynamic` block is not supported by berth: no block berth knows takes labels", at);
                            ok = false;
                        }
                        other => {
                            let mut d = Diagnostic::error(format!("unsupported argument `{other}` in a `dynamic` block")).at(at);
                            if let Some(s) = suggest(other, ["for_each", "iterator", "labels"]) {
                                d = d.hint(format!("did you mean `{s}`?"));
                            }
                            self.diags.push(d);
                            ok = false;
                        }
                    }
                }
                Structure::Block(c) if c.ident.as_str() == "content" && c.labels.is_empty() => {
                    if content.is_some() {
                        self.err("a `dynamic` block has one `content` block", block_span(file, c));
                        ok = false;
                    }
                    content = Some(c);
                }
                Structure::Block(c) => {
                    let msg = format!(
                        "unexpected block `{}` in a `dynamic` block: its blocks go inside `content {{ ... }}`",
                        c.ident.as_str()
                    );
                    self.err(msg, block_span(file, c));
                    ok = false;
                }
            }
        }
        let Some(for_each) = for_each else {
            self.err(format!("`dynamic \"{name}\"` needs `for_each`"), span);
            return None;
        };
        let Some(content) = content else {
            self.err(format!("`dynamic \"{name}\"` needs a `content` block"), span);
            return None;
        };
        let iterator = iterator.unwrap_or_else(|| name.clone());
        let mut inner = bound.to_vec();
        inner.push(iterator.clone());
        let content = self.body_in(file, &content.body, &inner);
        ok.then(|| BlockDecl {
            kind: name.clone(),
            labels: Vec::new(),
            body: BodyDecl::default(),
            span,
            dynamic: Some(Box::new(DynamicDecl { name, for_each, iterator, content })),
        })
    }

    fn constant(&mut self, attr: &AttrDecl) -> Option<Value> {
        match eval::constant(&attr.expr) {
            Ok(v) => Some(v),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn bool_attr(&mut self, body: &BodyDecl, name: &str) -> bool {
        let Some(attr) = body.attrs.get(name) else { return false };
        match self.constant(attr) {
            Some(Value::Bool(b)) => b,
            Some(v) => {
                self.err(format!("`{name}` must be true or false, not {}", v.type_name()), attr.expr.span());
                false
            }
            None => false,
        }
    }

    fn string_attr(&mut self, body: &BodyDecl, name: &str) -> Option<String> {
        let attr = body.attrs.get(name)?;
        match self.constant(attr)? {
            Value::String(s) => Some(s),
            v => {
                self.err(format!("`{name}` must be a string, not {}", v.type_name()), attr.expr.span());
                None
            }
        }
    }

    fn only(&mut self, body: &BodyDecl, kind: &str, attrs: &[&str], blocks: &[&str]) {
        for a in body.attrs.values() {
            if !attrs.contains(&a.name.as_str()) {
                let mut d = Diagnostic::error(format!("unsupported argument `{}` in a `{kind}` block", a.name))
                    .at(a.key_span.clone());
                if let Some(s) = suggest(&a.name, attrs.iter().copied()) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
            }
        }
        for b in &body.blocks {
            if !blocks.contains(&b.kind.as_str()) {
                self.err(format!("unsupported block `{}` in a `{kind}` block", b.kind), b.span.clone());
            }
        }
    }

    fn block(&mut self, module: &mut Module, file: &Arc<SourceFile>, b: &Block) {
        let kind = b.ident.as_str();
        let span = block_span(file, b);
        match kind {
            "resource" | "data" => {
                let Some(labels) = self.labels(file, b, &["TYPE", "NAME"]) else { return };
                let mode = if kind == "data" { Mode::Data } else { Mode::Managed };
                let addr = ResourceAddr::new(module.path.clone(), mode, &labels[0], &labels[1]);
                if let Some(prev) = module.resources.get(&addr) {
                    let at = prev.span.as_ref().map(|s| s.location()).unwrap_or_default();
                    self.err(format!("`{addr}` is declared twice (first at {at})"), span);
                    return;
                }
                let mut body = self.body(file, &b.body);
                let count = body.attrs.shift_remove("count").map(|a| a.expr);
                let for_each = body.attrs.shift_remove("for_each").map(|a| a.expr);
                if count.is_some() && for_each.is_some() {
                    self.err(format!("`{addr}` sets both `count` and `for_each`; use one"), span.clone());
                }
                let (provider, provider_span) = match body.attrs.shift_remove("provider") {
                    Some(a) => match provider_ref(&a.expr) {
                        Some(p) => (p, a.expr.span()),
                        None => {
                            self.err("`provider` must be a provider reference such as `aws` or `aws.west`", a.expr.span());
                            (addr.provider_name().to_string(), None)
                        }
                    },
                    None => (addr.provider_name().to_string(), None),
                };
                let depends_on = self.depends_on(&mut body);
                let mut lifecycle = Lifecycle::default();
                let mut health_check = None;
                let mut rest = Vec::new();
                for blk in std::mem::take(&mut body.blocks) {
                    if blk.dynamic.is_some() && matches!(blk.kind.as_str(), "lifecycle" | "health_check") {
                        self.err(format!("a `{}` block cannot be `dynamic`", blk.kind), blk.span.clone());
                    } else if blk.kind == "lifecycle" {
                        self.only(&blk.body, "lifecycle", &["create_before_destroy", "prevent_destroy", "ignore_changes", "drain", "watch"], &["rolling"]);
                        lifecycle.create_before_destroy = self.bool_attr(&blk.body, "create_before_destroy");
                        if let Some(a) = blk.body.attrs.get("watch") {
                            match self.string_attr(&blk.body, "watch").as_deref() {
                                Some("notify") => lifecycle.watch_notify_only = true,
                                Some("heal") => {}
                                Some(other) => self.err(
                                    format!("`watch` must be \"notify\" (report drift, never heal) or \"heal\", not `{other}`"),
                                    a.expr.span(),
                                ),
                                None => {}
                            }
                        }
                        lifecycle.prevent_destroy = self.bool_attr(&blk.body, "prevent_destroy");
                        if let Some(a) = blk.body.attrs.get("ignore_changes") {
                            lifecycle.ignore_changes = self.ignore_changes(a);
                        }
                        if let Some(a) = blk.body.attrs.get("drain") {
                            lifecycle.drain = self.duration_attr(a);
                        }
                        for r in blk.body.blocks.iter().filter(|r| r.kind == "rolling") {
                            if lifecycle.rolling.is_some() {
                                self.err("only one `rolling` block is allowed", r.span.clone());
                            }
                            lifecycle.rolling = self.rolling(r);
                        }
                    } else if blk.kind == "health_check"
                        && mode == Mode::Managed
                        && !PROVIDER_HEALTH_CHECKS.contains(&addr.type_.as_str())
                    {
                        self.only(&blk.body, "health_check", &["url", "expect_status", "timeout", "interval", "enabled"], &[]);
                        if !blk.body.attrs.contains_key("url") {
                            self.err("a `health_check` block needs `url`", blk.span.clone());
                        }
                        self.health_constants(&blk.body);
                        if health_check.is_some() {
                            self.err("only one `health_check` block is allowed", blk.span.clone());
                        }
                        health_check = Some(blk);
                    } else {
                        rest.push(blk);
                    }
                }
                body.blocks = rest;
                module.resources.insert(
                    addr.clone(),
                    ResourceDecl { addr, span, count, for_each, provider, provider_span, depends_on, lifecycle, health_check, body },
                );
            }
            "variable" => {
                let Some(labels) = self.labels(file, b, &["NAME"]) else { return };
                let name = labels[0].clone();
                let body = self.body(file, &b.body);
                self.only(&body, "variable", &["type", "default", "description", "sensitive", "nullable"], &["validation"]);
                let type_ = match body.attrs.get("type") {
                    Some(a) => match types::Type::parse(&a.expr) {
                        Ok(t) => t,
                        Err(d) => {
                            self.diags.push(d);
                            types::Type::Any
                        }
                    },
                    None => types::Type::Any,
                };
                let mut validations = Vec::new();
                for v in &body.blocks {
                    self.only(&v.body, "validation", &["condition", "error_message"], &[]);
                    match (v.body.attrs.get("condition"), v.body.attrs.get("error_message")) {
                        (Some(c), Some(m)) => {
                            validations.push(Validation { condition: c.expr.clone(), error_message: m.expr.clone() })
                        }
                        _ => self.err("a `validation` block needs `condition` and `error_message`", v.span.clone()),
                    }
                }
                if module.variables.contains_key(&name) {
                    self.err(format!("variable `{name}` is declared twice"), span);
                    return;
                }
                let decl = VariableDecl {
                    name: name.clone(),
                    span,
                    type_,
                    default: body.attrs.get("default").map(|a| a.expr.clone()),
                    description: self.string_attr(&body, "description"),
                    sensitive: self.bool_attr(&body, "sensitive"),
                    nullable: body.attrs.get("nullable").is_none() || self.bool_attr(&body, "nullable"),
                    validations,
                };
                module.variables.insert(name, decl);
            }
            "locals" => {
                if !b.labels.is_empty() {
                    self.err("a `locals` block has no labels", span);
                }
                let body = self.body(file, &b.body);
                for blk in &body.blocks {
                    self.err(format!("unexpected block `{}` in `locals`", blk.kind), blk.span.clone());
                }
                for (name, a) in body.attrs {
                    if module.locals.contains_key(&name) {
                        self.err(format!("local `{name}` is declared twice"), a.key_span.clone());
                        continue;
                    }
                    module.locals.insert(name.clone(), LocalDecl { name, expr: a.expr });
                }
            }
            "output" => {
                let Some(labels) = self.labels(file, b, &["NAME"]) else { return };
                let name = labels[0].clone();
                let mut body = self.body(file, &b.body);
                self.only(&body, "output", &["value", "sensitive", "description", "depends_on"], &[]);
                let depends_on = self.depends_on(&mut body);
                let Some(value) = body.attrs.get("value") else {
                    self.err(format!("output `{name}` has no `value`"), span);
                    return;
                };
                if module.outputs.contains_key(&name) {
                    self.err(format!("output `{name}` is declared twice"), span);
                    return;
                }
                let decl = OutputDecl {
                    name: name.clone(),
                    span,
                    value: value.expr.clone(),
                    sensitive: self.bool_attr(&body, "sensitive"),
                    description: self.string_attr(&body, "description"),
                    depends_on,
                };
                module.outputs.insert(name, decl);
            }
            "module" => {
                let Some(labels) = self.labels(file, b, &["NAME"]) else { return };
                let name = labels[0].clone();
                let mut body = self.body(file, &b.body);
                let depends_on = self.depends_on(&mut body);
                for blk in &body.blocks {
                    self.err(format!("unexpected block `{}` in a `module` block", blk.kind), blk.span.clone());
                }
                if let (Some(_), Some(f)) = (body.attrs.get("count"), body.attrs.get("for_each")) {
                    self.err("a module call takes `count` or `for_each`, not both", f.key_span.clone());
                }
                let count = body.attrs.shift_remove("count").map(|a| a.expr);
                let for_each = body.attrs.shift_remove("for_each").map(|a| a.expr);
                for meta in ["providers", "version"] {
                    if let Some(a) = body.attrs.get(meta) {
                        self.err(format!("`{meta}` on a module call is not supported by berth yet"), a.key_span.clone());
                    }
                }
                let Some(source) = self.string_attr(&body, "source") else {
                    self.err(format!("module `{name}` has no `source`"), span);
                    return;
                };
                let Some(dir) = resolve_source(&module.dir, &source) else {
                    let src_span = body.attrs.get("source").and_then(|a| a.expr.span()).or(span.clone());
                    self.err(
                        format!(
                            "module `{name}`: source `{source}` not found (a local path starting with `./` or `../`, or the name of a folder under a `modules/` directory above the configuration)"
                        ),
                        src_span,
                    );
                    return;
                };
                if module.calls.contains_key(&name) {
                    self.err(format!("module `{name}` is declared twice"), span);
                    return;
                }
                body.attrs.shift_remove("source");
                module.calls.insert(name.clone(), ModuleCall { name, span, source, dir, args: body.attrs, depends_on, count, for_each, instances: None });
            }
            "provider" => {
                let Some(labels) = self.labels(file, b, &["NAME"]) else { return };
                let mut body = self.body(file, &b.body);
                let alias = self.string_attr(&body, "alias");
                body.attrs.shift_remove("alias");
                let key = match &alias {
                    Some(a) => format!("{}.{a}", labels[0]),
                    None => labels[0].clone(),
                };
                if module.providers.contains_key(&key) {
                    self.err(format!("provider `{key}` is configured twice; use `alias` for a second configuration"), span);
                    return;
                }
                module.providers.insert(key.clone(), ProviderDecl { key, name: labels[0].clone(), span, body });
            }
            "berth" | "terraform" => {
                let body = self.body(file, &b.body);
                self.only(&body, kind, &["required_version"], &["backend", "required_providers"]);
                if let Some(a) = body.attrs.get("required_version")
                    && let Some(text) = self.string_attr(&body, "required_version")
                {
                    let checked =
                        if kind == "terraform" { version::check_terraform(&text) } else { version::check_berth(&text) };
                    if let Err(e) = checked {
                        self.err(e, a.expr.span());
                    }
                }
                for blk in body.blocks.iter().filter(|b| b.kind == "required_providers") {
                    self.required_providers(blk);
                }
                for blk in body.blocks {
                    if blk.kind == "backend" {
                        if blk.labels.len() != 1 {
                            self.err("a `backend` block needs one label: `backend \"local\" { ... }`", blk.span.clone());
                            continue;
                        }
                        if module.backend.is_some() {
                            self.err("the backend is configured twice", blk.span.clone());
                            continue;
                        }
                        module.backend = Some(BackendDecl { kind: blk.labels[0].clone(), span: blk.span.clone(), body: blk.body });
                    }
                }
            }
            "inventory" => {
                let Some(labels) = self.labels(file, b, &["NAME"]) else { return };
                let body = self.body(file, &b.body);
                if module.inventories.contains_key(&labels[0]) {
                    self.err(format!("inventory `{}` is declared twice", labels[0]), span);
                    return;
                }
                module.inventories.insert(labels[0].clone(), InventoryDecl { name: labels[0].clone(), span, body });
            }
            "watch" => {
                if !b.labels.is_empty() {
                    self.err("a `watch` block has no labels", span.clone());
                }
                if !module.path.is_empty() {
                    self.diags.push(Diagnostic::warning("a `watch` block in a called module is ignored").at(span));
                    return;
                }
                if let Some(prev) = &module.watch {
                    let at = prev.span.as_ref().map(|s| s.location()).unwrap_or_default();
                    self.err(format!("`watch` is configured twice (first at {at})"), span);
                    return;
                }
                let body = self.body(file, &b.body);
                module.watch = Some(BlockDecl { kind: "watch".into(), labels: Vec::new(), body, span, dynamic: None });
            }
            "import" => {
                if !b.labels.is_empty() {
                    self.err("an `import` block has no labels", span.clone());
                }
                let body = self.body(file, &b.body);
                self.only(&body, "import", &["to", "id", "for_each", "provider"], &[]);
                if !module.path.is_empty() {
                    self.err("`import` blocks belong in the root module", span);
                    return;
                }
                let (Some(to), Some(id)) = (body.attrs.get("to"), body.attrs.get("id")) else {
                    self.err("an `import` block needs `to` (the address) and `id` (the object's id)", span);
                    return;
                };
                let provider = match body.attrs.get("provider") {
                    Some(a) => match provider_ref(&a.expr) {
                        Some(p) => Some(p),
                        None => {
                            self.err("`provider` must be a provider reference such as `aws` or `aws.west`", a.expr.span());
                            None
                        }
                    },
                    None => None,
                };
                module.imports.push(ImportDecl {
                    span,
                    to: to.expr.clone(),
                    id: id.expr.clone(),
                    for_each: body.attrs.get("for_each").map(|a| a.expr.clone()),
                    provider,
                });
            }
            "notify" => {
                let Some(labels) = self.labels(file, b, &["KIND"]) else { return };
                let body = self.body(file, &b.body);
                if !module.path.is_empty() {
                    self.err("`notify` blocks belong in the root module", span);
                    return;
                }
                if let Some(decl) = self.notify(&labels[0], body, span) {
                    module.notifiers.push(decl);
                }
            }
            "hook" => {
                let Some(labels) = self.labels(file, b, &["EVENT"]) else { return };
                let body = self.body(file, &b.body);
                if !module.path.is_empty() {
                    self.err("`hook` blocks belong in the root module", span);
                    return;
                }
                if let Some(decl) = self.hook(&labels[0], body, span) {
                    module.hooks.push(decl);
                }
            }
            other => {
                let mut d = Diagnostic::error(format!("unknown block type `{other}`")).at(span);
                if let Some(s) = suggest(other, BLOCK_KINDS.iter().copied()) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
            }
        }
    }

    /// `notify "webhook" { url, secret, events, format }` and `notify
    /// "slack" { ... }`. Names and formats are checked here; so is a
    /// constant `url`. No message quotes the URL: it may hold a token.
    fn notify(&mut self, kind: &str, body: BodyDecl, span: Option<Span>) -> Option<NotifyDecl> {
        const KINDS: [&str; 2] = ["webhook", "slack"];
        self.only(&body, "notify", &["url", "secret", "events", "format"], &[]);
        if !KINDS.contains(&kind) {
            let mut d = Diagnostic::error(format!("unknown notifier `{kind}` (expected `webhook` or `slack`)")).at(span);
            if let Some(s) = suggest(kind, KINDS) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
            return None;
        }
        let mut format = if kind == "slack" { NotifyFormat::Slack } else { NotifyFormat::Json };
        if let Some(a) = body.attrs.get("format")
            && let Some(f) = self.string_attr(&body, "format")
        {
            format = match f.as_str() {
                "json" => NotifyFormat::Json,
                "slack" => NotifyFormat::Slack,
                other => {
                    let mut d = Diagnostic::error(format!("unknown notification format `{other}` (expected `json` or `slack`)"))
                        .at(a.expr.span());
                    if let Some(s) = suggest(other, ["json", "slack"]) {
                        d = d.hint(format!("did you mean `{s}`?"));
                    }
                    self.diags.push(d);
                    return None;
                }
            };
        }
        let mut events = Vec::new();
        if let Some(a) = body.attrs.get("events") {
            match self.constant(a) {
                Some(Value::List(items) | Value::Set(items)) => {
                    for item in items {
                        match item.as_str() {
                            Some(name) if crate::watch::event::EventKind::parse(name).is_some() => events.push(name.to_string()),
                            Some(name) => {
                                let all = crate::watch::event::EventKind::ALL.map(|k| k.as_str());
                                let mut d = Diagnostic::error(format!(
                                    "unknown event `{name}` (expected one of {})",
                                    all.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                                ))
                                .at(a.expr.span());
                                if let Some(s) = suggest(name, all) {
                                    d = d.hint(format!("did you mean `{s}`?"));
                                }
                                self.diags.push(d);
                            }
                            None => self.err(format!("`events` lists event names, not {}", item.type_name()), a.expr.span()),
                        }
                    }
                }
                Some(v) => self.err(format!("`events` must be a list of event names, not {}", v.type_name()), a.expr.span()),
                None => {}
            }
        }
        let Some(url) = body.attrs.get("url") else {
            self.err(format!("a `notify \"{kind}\"` block needs `url`"), span);
            return None;
        };
        // A reference (`var.hook_url`) is evaluated by the watcher; a constant is checked now.
        if let Ok(v) = eval::constant(&url.expr) {
            match v.unmarked() {
                Value::String(s) => {
                    if let Err(why) = check_url(s) {
                        self.err(format!("`url` {why}"), url.expr.span());
                    }
                }
                other => self.err(format!("`url` must be a string, not {}", other.type_name()), url.expr.span()),
            }
        }
        if let Some(a) = body.attrs.get("secret")
            && let Ok(v) = eval::constant(&a.expr)
            && !matches!(v.unmarked(), Value::String(_))
        {
            self.err(format!("`secret` must be a string, not {}", v.type_name()), a.expr.span());
        }
        Some(NotifyDecl {
            kind: kind.to_string(),
            span,
            url: url.expr.clone(),
            secret: body.attrs.get("secret").map(|a| a.expr.clone()),
            events,
            format,
        })
    }

    /// `hook "on_replace" { command, timeout, known_hosts }`: constants only.
    fn hook(&mut self, event: &str, body: BodyDecl, span: Option<Span>) -> Option<HookDecl> {
        const EVENTS: [&str; 1] = ["on_replace"];
        self.only(&body, "hook", &["command", "timeout", "known_hosts"], &[]);
        if !EVENTS.contains(&event) {
            let mut d = Diagnostic::error(format!("unknown hook `{event}` (expected `on_replace`)")).at(span);
            if let Some(s) = suggest(event, EVENTS) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            self.diags.push(d);
            return None;
        }
        let Some(a) = body.attrs.get("command") else {
            self.err(format!("a `hook \"{event}\"` block needs `command`"), span);
            return None;
        };
        let shape = "`command` is a list of strings (`[\"kamal\", \"setup\"]`, run without a shell) or one string (run by `sh -c`)";
        let command = match self.constant(a)? {
            Value::String(s) if !s.trim().is_empty() => HookCommand::Shell(s),
            Value::List(items) if !items.is_empty() && items.iter().all(|i| i.as_str().is_some()) => {
                HookCommand::Argv(items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect())
            }
            _ => {
                self.err(shape, a.expr.span());
                return None;
            }
        };
        let mut timeout = std::time::Duration::from_secs(600);
        if let Some(t) = body.attrs.get("timeout")
            && let Some(text) = self.string_attr(&body, "timeout")
        {
            match humantime::parse_duration(&text) {
                Ok(d) if !d.is_zero() => timeout = d,
                _ => self.err(format!("`timeout` must be a duration such as \"10m\", not `{text}`"), t.expr.span()),
            }
        }
        let known_hosts = self.string_attr(&body, "known_hosts");
        if let (Some(k), Some(a)) = (&known_hosts, body.attrs.get("known_hosts"))
            && k.trim().is_empty()
        {
            self.err("`known_hosts` must be a file path", a.expr.span());
        }
        Some(HookDecl { event: event.to_string(), span, command, timeout, known_hosts })
    }

    /// `required_providers { aws = { source = "hashicorp/aws", version =
    /// "~> 5.0" } }`: accepted for the configurations Terraform reads.
    /// berth's providers are built in, so a version is not looked up; only
    /// the shape is checked.
    fn required_providers(&mut self, blk: &BlockDecl) {
        for inner in &blk.body.blocks {
            self.err(format!("unexpected block `{}` in `required_providers`", inner.kind), inner.span.clone());
        }
        use hcl_edit::expr::{Expression as E, ObjectKey};
        for a in blk.body.attrs.values() {
            // Looked at as written: `configuration_aliases` holds references.
            let ok = match &*a.expr.expr {
                E::String(_) => true,
                E::Object(o) => o.iter().all(|(k, v)| {
                    let key = match k {
                        ObjectKey::Ident(i) => i.as_str().to_string(),
                        ObjectKey::Expression(E::String(s)) => s.as_str().to_string(),
                        ObjectKey::Expression(_) => String::new(),
                    };
                    match key.as_str() {
                        "source" | "version" => matches!(v.expr(), E::String(_) | E::StringTemplate(_)),
                        "configuration_aliases" => true,
                        _ => false,
                    }
                }),
                _ => false,
            };
            if !ok {
                self.err(
                    format!(
                        "`{}` in `required_providers` is `{{ source = \"...\", version = \"...\" }}` or a version string",
                        a.name
                    ),
                    a.expr.span(),
                );
            }
        }
    }

    fn depends_on(&mut self, body: &mut BodyDecl) -> Vec<Expr> {
        let Some(a) = body.attrs.shift_remove("depends_on") else { return Vec::new() };
        use hcl_edit::expr::Expression as E;
        match &*a.expr.expr {
            E::Array(arr) => {
                let mut out = Vec::new();
                for e in arr.iter() {
                    let item = Expr::new(e.clone(), a.expr.file.clone());
                    match e {
                        E::Variable(_) | E::Traversal(_) => out.push(item),
                        // Terraform refuses a quoted address too (its 0.11 spelling).
                        E::String(s) => self.diags.push(
                            Diagnostic::error("`depends_on` lists references, not strings")
                                .at(item.span())
                                .hint(format!("write it without quotes: `depends_on = [{}]`", s.as_str())),
                        ),
                        _ => self.err("`depends_on` lists references to resources, data sources or modules", item.span()),
                    }
                }
                out
            }
            _ => {
                self.err("`depends_on` must be a list of references: `depends_on = [aws_vpc.main]`", a.expr.span());
                Vec::new()
            }
        }
    }

    /// A duration argument written as a constant: `"30s"`, `"1m30s"`, or a
    /// number of seconds.
    fn duration_attr(&mut self, a: &AttrDecl) -> Option<std::time::Duration> {
        match self.constant(a)? {
            Value::String(s) => match humantime::parse_duration(&s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err(format!("`{}`: `{s}` is not a duration such as \"30s\" or \"2m\": {e}", a.name), a.expr.span());
                    None
                }
            },
            Value::Number(n) if n >= 0.0 && n.is_finite() => Some(std::time::Duration::from_secs_f64(n)),
            v => {
                self.err(format!("`{}` must be a duration such as \"30s\", not {}", a.name, v.type_name()), a.expr.span());
                None
            }
        }
    }

    /// `rolling { max_unavailable = N }`.
    fn rolling(&mut self, b: &BlockDecl) -> Option<Rolling> {
        self.only(&b.body, "rolling", &["max_unavailable"], &[]);
        let Some(a) = b.body.attrs.get("max_unavailable") else {
            self.err("a `rolling` block needs `max_unavailable` (how many instances one wave replaces)", b.span.clone());
            return None;
        };
        match self.constant(a)? {
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Some(Rolling { max_unavailable: n as usize }),
            v => {
                self.err(format!("`max_unavailable` must be a whole number of at least 1, not {v}"), a.expr.span());
                None
            }
        }
    }

    /// The `health_check` arguments written as constants, checked now
    /// rather than after a host was created. Those that refer to anything
    /// (`self.private_ip`) are checked at plan time, once known.
    fn health_constants(&mut self, body: &BodyDecl) {
        if body.attrs.get("enabled").is_some_and(|a| refs::references(&a.expr).is_empty() && eval::constant(&a.expr).ok() == Some(Value::Bool(false))) {
            // A check turned off is never run, so never checked.
            return;
        }
        for a in body.attrs.values() {
            if !refs::references(&a.expr).is_empty() {
                continue;
            }
            let Some(v) = self.constant(a) else { continue };
            if let Err(e) = health::check_attr(&a.name, &v) {
                self.err(e, a.expr.span());
            }
        }
    }

    fn ignore_changes(&mut self, a: &AttrDecl) -> Vec<String> {
        use hcl_edit::expr::Expression as E;
        match &*a.expr.expr {
            E::Variable(v) if v.as_str() == "all" => vec!["*".into()],
            E::Array(arr) => {
                let mut out = Vec::new();
                for e in arr.iter() {
                    match e {
                        E::Variable(v) => out.push(v.as_str().to_string()),
                        E::String(s) => out.push(s.as_str().to_string()),
                        _ => self.err("`ignore_changes` lists attribute names: `ignore_changes = [tags, ami]`", a.expr.span()),
                    }
                }
                out
            }
            _ => {
                self.err("`ignore_changes` is `all` or a list of attribute names", a.expr.span());
                Vec::new()
            }
        }
    }
}

/// Why a notifier's URL cannot be used; the message never repeats the URL.
fn check_url(s: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must start with `https://` or `http://`, not `{}:`", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

/// A configuration file: `*.hcl` or `*.tf`, but not a `*.vars.hcl`
/// variable file.
pub(crate) fn is_config_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    (name.ends_with(".hcl") && !name.ends_with(".vars.hcl")) || name.ends_with(".tf")
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

/// `aws` or `aws.west` from a `provider = aws.west` expression.
fn provider_ref(e: &Expr) -> Option<String> {
    use hcl_edit::expr::{Expression as E, TraversalOperator as Op};
    match &*e.expr {
        E::Variable(v) => Some(v.as_str().to_string()),
        E::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
            (E::Variable(v), [op]) => match op.value() {
                Op::GetAttr(a) => Some(format!("{}.{}", v.as_str(), a.as_str())),
                _ => None,
            },
            _ => None,
        },
        E::String(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// Finds a module's directory: a path relative to the caller (`./x`, `../x`),
/// or a name looked up in the nearest `modules/` folder above the caller
/// (the repository's shipped modules).
fn resolve_source(caller: &Path, source: &str) -> Option<PathBuf> {
    if source.starts_with("./") || source.starts_with("../") || source.starts_with('/') {
        let p = normalize(&caller.join(source));
        return p.is_dir().then_some(p);
    }
    let caller = caller.canonicalize().ok()?;
    for dir in caller.ancestors() {
        let p = dir.join("modules").join(source);
        if p.is_dir() {
            return Some(p);
        }
    }
    None
}

/// Resolves `.` and `..` without touching the file system, so file names in
/// messages read `b/main.hcl` rather than `a/../b/main.hcl`.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component as C;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            C::CurDir => {}
            C::ParentDir if matches!(out.components().next_back(), Some(C::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}
