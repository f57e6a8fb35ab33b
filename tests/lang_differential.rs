//! The differential test of berth's expression language against Terraform.
//!
//! berth promises that a Terraform user is at home, so its expressions must
//! give Terraform's values. Terraform itself is the oracle: a configuration
//! of only `locals` and `output` blocks needs no provider, so `terraform
//! apply` + `terraform output -json` gives Terraform's value for any
//! expression. Every expression of the corpus (`tests/lang/corpus/*.txt`, one
//! per line; a heredoc runs to its closing marker) goes through both, and
//! the values are compared; an expression Terraform rejects must be
//! rejected by berth too. The corpus may use `local.NAME` from
//! `tests/lang/prelude.tf` and read files under `files/`.
//!
//! Terraform's answers are cached under the target directory, keyed by a
//! hash of the corpus, the prelude, the files and Terraform's version, so a
//! rerun costs only berth's side. Expressions Terraform rejects are found
//! from its diagnostics (each case lives in a file of its own, so every
//! diagnostic names its case), and by bisection when an error names none.
//!
//! The deliberate differences are listed in `tests/lang/DIFFERENCES.md`;
//! they are reported, not counted. The test fails below 99% agreement, when
//! a listed difference agrees again (the list must stay short and true), or
//! when a Terraform built-in function has no case in the corpus. Without
//! `terraform` on PATH it says so and passes.

use berth::addr::ModulePath;
use berth::config::eval::{Ctx, Scope, eval};
use berth::config::refs::Target;
use berth::diag::{Diagnostic, Span};
use berth::value::Value;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

const LANG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lang");
const TARGET: f64 = 99.0;

/// One expression of the corpus.
#[derive(Clone, Debug)]
struct Case {
    /// `numbers.txt:12`
    origin: String,
    expr: String,
}

/// What an implementation said about an expression.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Value(J),
    Rejected(String),
}

/// A JSON value that keeps numbers as their exact text: Terraform prints
/// arbitrary-precision numbers, which an f64 would round.
#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

impl std::fmt::Display for J {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            J::Null => f.write_str("null"),
            J::Bool(b) => write!(f, "{b}"),
            J::Num(n) => f.write_str(n),
            J::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            J::Arr(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            J::Obj(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", serde_json::Value::String(k.clone()))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A small JSON reader that keeps number literals as text.
struct JsonReader<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonReader<'_> {
    fn parse(text: &str) -> Result<J, String> {
        let mut r = JsonReader {
            s: text.as_bytes(),
            i: 0,
        };
        let v = r.value()?;
        r.ws();
        if r.i != r.s.len() {
            return Err(format!("trailing data at {}", r.i));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<J, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.eat("}") {
                    return Ok(J::Obj(m));
                }
                loop {
                    self.ws();
                    let J::Str(k) = self.string()? else {
                        unreachable!()
                    };
                    self.ws();
                    if !self.eat(":") {
                        return Err(format!("expected `:` at {}", self.i));
                    }
                    let v = self.value()?;
                    m.insert(k, v);
                    self.ws();
                    if self.eat("}") {
                        return Ok(J::Obj(m));
                    }
                    if !self.eat(",") {
                        return Err(format!("expected `,` at {}", self.i));
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(J::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    if self.eat("]") {
                        return Ok(J::Arr(items));
                    }
                    if !self.eat(",") {
                        return Err(format!("expected `,` at {}", self.i));
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') if self.eat("true") => Ok(J::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(J::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(J::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                Ok(J::Num(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            _ => Err(format!("unexpected input at {}", self.i)),
        }
    }

    fn string(&mut self) -> Result<J, String> {
        let start = self.i;
        if !self.eat("\"") {
            return Err(format!("expected a string at {}", self.i));
        }
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let text =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                    let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
                    return Ok(J::Str(s));
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated string".into())
    }
}

fn read_corpus() -> Vec<Case> {
    let dir = Path::new(LANG_DIR).join("corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/lang/corpus")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let heredoc = regex::Regex::new(r"<<-?([A-Za-z_][A-Za-z0-9_]*)\s*$").expect("regex");
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("corpus file");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let origin = format!("{name}:{}", i + 1);
            i += 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut expr = line.to_string();
            // A heredoc runs to its closing marker, and an expression that
            // opens a call around one runs to the line closing it.
            if let Some(m) = heredoc.captures(line) {
                let marker = m[1].to_string();
                while i < lines.len() {
                    expr.push('\n');
                    expr.push_str(lines[i]);
                    i += 1;
                    if lines[i - 1].trim() == marker {
                        break;
                    }
                }
                let open = expr.matches('(').count();
                while expr.matches(')').count() < open && i < lines.len() {
                    expr.push('\n');
                    expr.push_str(lines[i]);
                    i += 1;
                }
            }
            cases.push(Case { origin, expr });
        }
    }
    cases
}

/// The expressions DIFFERENCES.md lists, each as `` - `EXPR`: why ``.
fn documented_differences() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(LANG_DIR).join("DIFFERENCES.md"))
        .expect("DIFFERENCES.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once("`:").map(|(e, _)| e.to_string()))
        .collect()
}

fn output_block(id: usize, expr: &str) -> String {
    // `sensitive = true` lets a case return a sensitive value; the value is
    // still in `terraform output -json`.
    format!("output \"c_{id:04}\" {{\n  sensitive = true\n  value = {expr}\n}}\n")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// A directory holding the prelude and `files/`, where expressions run.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(LANG_DIR).join("files"),
        &dir.path().join("files"),
    );
    std::fs::copy(
        Path::new(LANG_DIR).join("prelude.tf"),
        dir.path().join("prelude.tf"),
    )
    .expect("prelude");
    dir
}

fn hash_dir(h: &mut sha2::Sha256, dir: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        h.update(p.file_name().expect("name").as_encoded_bytes());
        if p.is_dir() {
            hash_dir(h, &p);
        } else {
            h.update(std::fs::read(&p).expect("read"));
        }
    }
}

fn terraform(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("run terraform")
}

/// Error diagnostics as (file name, message), from `validate -json` or the
/// JSON lines of `apply -json`.
fn error_diagnostics(json: &serde_json::Value, out: &mut Vec<(Option<String>, String)>) {
    let diags: Vec<&serde_json::Value> = match json.get("diagnostics") {
        Some(serde_json::Value::Array(d)) => d.iter().collect(),
        _ => json.get("diagnostic").into_iter().collect(),
    };
    for d in diags {
        if d.get("severity").and_then(|s| s.as_str()) != Some("error") {
            continue;
        }
        let file = d
            .pointer("/range/filename")
            .and_then(|f| f.as_str())
            .map(str::to_string);
        let summary = d
            .get("summary")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        let detail = d.get("detail").and_then(|s| s.as_str()).unwrap_or_default();
        out.push((file, format!("{summary}: {detail}")));
    }
}

/// Terraform's answers for `ids` (indexes into `cases`).
fn terraform_answers(cases: &[Case], ids: &[usize], answers: &mut HashMap<usize, Answer>) {
    let mut live: BTreeSet<usize> = ids.iter().copied().collect();
    for _round in 0..50 {
        if live.is_empty() {
            return;
        }
        let dir = workdir();
        for &id in &live {
            std::fs::write(
                dir.path().join(format!("c_{id:04}.tf")),
                output_block(id, &cases[id].expr),
            )
            .expect("write");
        }
        let mut errors = Vec::new();
        let validate = terraform(dir.path(), &["validate", "-json", "-no-color"]);
        if let Ok(j) = serde_json::from_slice::<serde_json::Value>(&validate.stdout) {
            error_diagnostics(&j, &mut errors);
        }
        let applied = if errors.is_empty() {
            let apply = terraform(
                dir.path(),
                &[
                    "apply",
                    "-json",
                    "-no-color",
                    "-input=false",
                    "-auto-approve",
                ],
            );
            for line in String::from_utf8_lossy(&apply.stdout).lines() {
                if let Ok(j) = serde_json::from_str::<serde_json::Value>(line) {
                    error_diagnostics(&j, &mut errors);
                }
            }
            if !apply.status.success() && errors.is_empty() {
                errors.push((None, String::from_utf8_lossy(&apply.stderr).into_owned()));
            }
            apply.status.success() && errors.is_empty()
        } else {
            false
        };
        if applied {
            let out = terraform(dir.path(), &["output", "-json", "-no-color"]);
            let text = String::from_utf8(out.stdout).expect("utf-8 output");
            let J::Obj(outputs) = JsonReader::parse(&text).expect("terraform output -json") else {
                panic!("terraform output -json is not an object: {text}")
            };
            for &id in &live {
                let o = outputs.get(&format!("c_{id:04}"));
                let value = match o {
                    Some(J::Obj(o)) => o.get("value").cloned().unwrap_or(J::Null),
                    _ => J::Null,
                };
                answers.insert(id, Answer::Value(value));
            }
            return;
        }
        let mut named = false;
        for (file, msg) in &errors {
            let id = file
                .as_deref()
                .and_then(|f| f.strip_prefix("c_"))
                .and_then(|f| f.strip_suffix(".tf"))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(id) = id.filter(|id| live.contains(id)) {
                answers.insert(id, Answer::Rejected(msg.clone()));
                live.remove(&id);
                named = true;
            } else if file.as_deref() == Some("prelude.tf") {
                panic!("tests/lang/prelude.tf is rejected by Terraform: {msg}");
            }
        }
        if !named {
            // An error that names no case: bisect.
            let all: Vec<usize> = live.iter().copied().collect();
            if all.len() == 1 {
                let msg = errors.first().map(|e| e.1.clone()).unwrap_or_default();
                answers.insert(all[0], Answer::Rejected(msg));
                return;
            }
            let (a, b) = all.split_at(all.len() / 2);
            terraform_answers(cases, a, answers);
            terraform_answers(cases, b, answers);
            return;
        }
    }
    panic!("terraform kept rejecting cases after 50 rounds");
}

/// Terraform's answers for the whole corpus, from the cache when the corpus
/// has not changed.
fn terraform_answers_cached(cases: &[Case]) -> Vec<Answer> {
    let version = terraform(Path::new("."), &["version"]);
    let mut h = sha2::Sha256::new();
    h.update(&version.stdout);
    h.update(std::fs::read(Path::new(LANG_DIR).join("prelude.tf")).expect("prelude"));
    hash_dir(&mut h, &Path::new(LANG_DIR).join("files"));
    for c in cases {
        h.update(c.expr.as_bytes());
        h.update([0]);
    }
    let key = hex::encode(h.finalize());
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lang-differential-{}.json", &key[..16]));
    if let Ok(text) = std::fs::read_to_string(&cache) {
        let stored: Vec<serde_json::Value> = serde_json::from_str(&text).expect("cache");
        return stored
            .iter()
            .map(|a| match a.get("rejected").and_then(|r| r.as_str()) {
                Some(msg) => Answer::Rejected(msg.to_string()),
                None => Answer::Value(
                    JsonReader::parse(a["value"].as_str().expect("value text"))
                        .expect("cached value"),
                ),
            })
            .collect();
    }
    eprintln!(
        "asking Terraform about {} expressions (cached afterwards in {})",
        cases.len(),
        cache.display()
    );
    let mut answers = HashMap::new();
    let ids: Vec<usize> = (0..cases.len()).collect();
    terraform_answers(cases, &ids, &mut answers);
    let list: Vec<Answer> = (0..cases.len())
        .map(|i| {
            answers
                .remove(&i)
                .unwrap_or(Answer::Rejected("no answer".into()))
        })
        .collect();
    let stored: Vec<serde_json::Value> = list
        .iter()
        .map(|a| match a {
            Answer::Rejected(m) => serde_json::json!({ "rejected": m }),
            Answer::Value(v) => serde_json::json!({ "value": v.to_string() }),
        })
        .collect();
    std::fs::create_dir_all(cache.parent().expect("parent")).expect("mkdir");
    std::fs::write(&cache, serde_json::to_string(&stored).expect("json")).expect("write cache");
    list
}

/// Resolves `local.NAME` from the prelude, as berth's engine would.
struct Locals<'a> {
    locals: &'a indexmap::IndexMap<String, berth::config::LocalDecl>,
    depth: std::cell::Cell<usize>,
}

impl Scope for Locals<'_> {
    fn lookup(
        &self,
        module: &ModulePath,
        target: &Target,
        span: Option<&Span>,
    ) -> Result<Value, Diagnostic> {
        let Target::Local(name) = target else {
            return Err(Diagnostic::error("only locals exist in the corpus").at(span.cloned()));
        };
        let Some(decl) = self.locals.get(name) else {
            return Err(Diagnostic::error(format!("no local `{name}`")).at(span.cloned()));
        };
        if self.depth.get() > 20 {
            return Err(Diagnostic::error("locals nest too deep"));
        }
        self.depth.set(self.depth.get() + 1);
        let v = eval(&decl.expr, &Ctx::new(self, module, Path::new(".")));
        self.depth.set(self.depth.get() - 1);
        v
    }
}

fn to_j(v: &Value) -> Result<J, String> {
    Ok(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::String(s) => J::Str(s.clone()),
        Value::Map(m) => J::Obj(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), to_j(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Unknown => return Err("berth says the value is unknown".into()),
        Value::Sensitive(v) => to_j(v)?,
        v => match v.as_list() {
            Some(items) => J::Arr(items.iter().map(to_j).collect::<Result<_, _>>()?),
            // Numbers, whatever their representation, print as Terraform
            // writes them in JSON.
            None => J::Num(v.to_string()),
        },
    })
}

fn berth_answer(case: &Case, id: usize) -> Answer {
    let prelude = std::fs::read_to_string(Path::new(LANG_DIR).join("prelude.tf")).expect("prelude");
    let text = format!("{prelude}\n{}", output_block(id, &case.expr));
    let config = match berth::config::load_str(&format!("c_{id:04}.tf"), &text) {
        Ok(c) => c,
        Err(d) => return Answer::Rejected(format!("{d:?}")),
    };
    let root = config.root();
    let Some(out) = root.outputs.get(&format!("c_{id:04}")) else {
        return Answer::Rejected("the output is missing".into());
    };
    // berth's validation refuses a reference to an undeclared local before
    // evaluating anything; so does this harness.
    for r in berth::config::refs::references(&out.value) {
        if let Target::Local(name) = &r.target
            && !root.locals.contains_key(name)
        {
            return Answer::Rejected(format!("no local `{name}`"));
        }
    }
    let scope = Locals {
        locals: &root.locals,
        depth: Default::default(),
    };
    let path = ModulePath::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eval(&out.value, &Ctx::new(&scope, &path, Path::new(".")))
    }));
    match result {
        Err(_) => Answer::Rejected("PANIC".into()),
        Ok(Err(d)) => Answer::Rejected(d.message),
        Ok(Ok(v)) => match to_j(&v) {
            Ok(j) => Answer::Value(j),
            Err(e) => Answer::Rejected(e),
        },
    }
}

fn terraform_functions() -> Vec<String> {
    let out = terraform(Path::new("."), &["metadata", "functions", "-json"]);
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("terraform metadata functions -json");
    j["function_signatures"]
        .as_object()
        .expect("function_signatures")
        .keys()
        .filter(|k| !k.contains("::"))
        .cloned()
        .collect()
}

fn show(a: &Answer) -> String {
    let s = match a {
        Answer::Value(v) => v.to_string(),
        Answer::Rejected(m) => format!("rejected ({})", m.replace('\n', " ")),
    };
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

#[test]
fn berth_agrees_with_terraform() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!(
            "SKIPPED: `terraform` is not on PATH, so the differential test of the language cannot run"
        );
        return;
    }
    let cases = read_corpus();
    assert!(
        cases.len() >= 300,
        "the corpus has only {} expressions",
        cases.len()
    );

    let corpus_text: String = cases
        .iter()
        .map(|c| c.expr.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<String> = terraform_functions()
        .into_iter()
        .filter(|f| !corpus_text.contains(&format!("{f}(")))
        .collect();
    assert!(missing.is_empty(), "the corpus calls no {missing:?}");

    let tf = terraform_answers_cached(&cases);
    let documented = documented_differences();

    // berth evaluates relative paths from the current directory, as
    // Terraform does; this binary has this one test, so it may move there.
    let dir = workdir();
    std::env::set_current_dir(dir.path()).expect("chdir");

    let mut agree = 0usize;
    let mut counted = 0usize;
    let mut mismatches = Vec::new();
    let mut stale = Vec::new();
    let mut tf_rejected = 0usize;
    for (id, case) in cases.iter().enumerate() {
        let ours = berth_answer(case, id);
        let same = match (&tf[id], &ours) {
            (Answer::Value(a), Answer::Value(b)) => a == b,
            (Answer::Rejected(_), Answer::Rejected(m)) => m != "PANIC",
            _ => false,
        };
        if matches!(tf[id], Answer::Rejected(_)) {
            tf_rejected += 1;
        }
        if documented.contains(&case.expr) {
            if same {
                stale.push(case.expr.clone());
            }
            continue;
        }
        counted += 1;
        if same {
            agree += 1;
        } else {
            mismatches.push(format!(
                "{}: {}\n    terraform: {}\n    berth:     {}",
                case.origin,
                case.expr.replace('\n', "\n    "),
                show(&tf[id]),
                show(&ours)
            ));
        }
    }
    let pct = 100.0 * agree as f64 / counted.max(1) as f64;
    for m in &mismatches {
        eprintln!("MISMATCH {m}");
    }
    eprintln!(
        "lang differential: {agree}/{counted} expressions agree ({pct:.2}%); Terraform rejects {tf_rejected}; {} documented differences",
        documented.len()
    );
    assert!(
        stale.is_empty(),
        "these listed differences agree now, remove them from DIFFERENCES.md: {stale:?}"
    );
    assert!(
        pct >= TARGET,
        "agreement {pct:.2}% is below {TARGET}%: {} mismatches",
        mismatches.len()
    );
}
