//! The layering of `src/`, held by a test rather than by review.
//!
//! Imports run one way: `main → commands → engine → {config, graph, plan,
//! state, providers, inventory} → leaves`. This test reads every file under
//! `src/`, finds what each one imports from the crate (`use` trees, and
//! `crate::`, `super::`, `self::` and child-module paths in code; comments,
//! strings and `#[cfg(test)]` modules do not count), and fails when
//!
//! - a leaf (addr, value, diag, schema, telemetry, aws_sdk) imports anything
//!   of the crate but leaves;
//! - anything but `commands`, `main` and `lib` imports the engine;
//! - `state` imports providers, config, graph or the engine;
//! - `providers` imports config, graph or the engine;
//! - `plan` or `inventory` imports the engine, config or graph;
//! - files import each other in a cycle, unless every file of the cycle is
//!   inside one provider's folder (`src/providers/<name>/`). A part of a
//!   folder module using the folder's own `mod.rs` (`use super::*` in
//!   `state/journal.rs`) is how Rust makes a folder one module, and is not
//!   counted; a folder's face that needs a part which needs the face back
//!   through anything else is.
//!
//! The checker is tested on a small in-memory tree with one violation of
//! each kind, so it cannot pass by finding nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const LEAVES: &[&str] = &["addr", "value", "diag", "schema", "telemetry", "aws_sdk"];

/// Top-level modules each layer must not import.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("state", &["providers", "config", "graph", "engine"]),
    ("providers", &["config", "graph", "engine"]),
    ("plan", &["engine", "config", "graph"]),
    ("inventory", &["engine", "config", "graph"]),
];

/// Who may import the engine: the commands, and `watch`, whose loop calls
/// it as a library (plan, then apply under the lock) between commands and engine.
const ENGINE_USERS: &[&str] = &["commands", "main", "lib", "engine", "watch"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Punct(char),
}

/// Rust source without comments, strings and chars, as tokens.
fn tokens(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (b.get(i + 1) == Some(&'#') || b.get(i + 1) == Some(&'"')) && !prev_is_ident(&b, i) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(Tok::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else if b.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                i += 1;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(b[start..i].iter().collect()));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok::Path);
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push(Tok::Punct(c));
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// A file of the tree: its module path (`engine::apply` for
/// `engine/apply/mod.rs`; empty for `lib.rs`, `["main"]` for `main.rs`).
fn module_of(file: &str) -> Vec<String> {
    let f = file.strip_suffix(".rs").unwrap_or(file);
    if f == "lib" {
        return Vec::new();
    }
    let mut parts: Vec<String> = f.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The crate modules a file imports, as module paths (the module or item
/// named, not yet resolved to a file).
fn imports(file: &str, src: &str) -> BTreeSet<Vec<String>> {
    let toks = tokens(src);
    let own = module_of(file);
    // In `main.rs` the library is `berth`.
    let crate_names: &[&str] = if file == "main.rs" { &["crate", "berth"] } else { &["crate"] };
    // Child modules declared out of line (`mod x;`), nameable bare.
    let mut children = BTreeSet::new();
    for w in toks.windows(3) {
        if let [Tok::Ident(m), Tok::Ident(name), Tok::Punct(';')] = w
            && m == "mod"
        {
            children.insert(name.clone());
        }
    }
    let mut out = BTreeSet::new();
    // Inline modules we are in: (name, brace depth at which it closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let here = |inline: &Vec<(String, usize)>| -> Vec<String> {
        let mut m = if file == "main.rs" { Vec::new() } else { own.clone() };
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Punct('#') if is_cfg_test(&toks[i..]) => {
                // Skip the attribute and the item it guards (through its block or `;`).
                i = skip_item(&toks, i);
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(m) if m == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) = (toks.get(i + 1), toks.get(i + 2)) {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(u) if u == "use" => {
                let cur = here(&inline);
                let mut paths = Vec::new();
                let end = use_tree(&toks, i + 1, Vec::new(), &mut paths);
                for p in paths {
                    if let Some(r) = resolve(&p, &cur, crate_names, &children) {
                        out.insert(r);
                    }
                }
                i = end;
                continue;
            }
            Tok::Ident(first) if toks.get(i + 1) == Some(&Tok::Path) && !(i > 0 && toks[i - 1] == Tok::Path) => {
                let mut p = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Path) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(s)) => p.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if let Some(r) = resolve(&p, &here(&inline), crate_names, &children) {
                    out.insert(r);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn is_cfg_test(t: &[Tok]) -> bool {
    let want = [Tok::Punct('#'), Tok::Punct('['), Tok::Ident("cfg".into()), Tok::Punct('('), Tok::Ident("test".into()), Tok::Punct(')')];
    t.len() >= want.len() && t[..want.len()] == want
}

/// The index after the item that starts at `i` (an attribute, then
/// everything through its outermost block, or a `;` outside any block).
fn skip_item(t: &[Tok], mut i: usize) -> usize {
    // The attribute itself.
    while i < t.len() && t[i] != Tok::Punct(']') {
        i += 1;
    }
    i += 1;
    let mut depth = 0;
    while i < t.len() {
        match t[i] {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Parses a use tree from `i`, pushing every full path; returns the index
/// after the tree (after the `;` at the top level).
fn use_tree(t: &[Tok], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        match t.get(i) {
            Some(Tok::Ident(s)) if s == "as" => {
                i += 2; // `as name`
            }
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Path) => i += 1,
            Some(Tok::Punct('*')) => i += 1,
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    i = use_tree(t, i, path.clone(), out);
                    match t.get(i) {
                        Some(Tok::Punct(',')) => i += 1,
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        _ => break,
                    }
                    if t.get(i) == Some(&Tok::Punct('}')) {
                        i += 1;
                        break;
                    }
                }
                // A group ends this branch.
                return if t.get(i) == Some(&Tok::Punct(';')) { i + 1 } else { i };
            }
            Some(Tok::Punct(';')) => {
                out.push(path);
                return i + 1;
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// A path as a crate module path, or `None` when it leaves the crate.
fn resolve(p: &[String], here: &[String], crate_names: &[&str], children: &BTreeSet<String>) -> Option<Vec<String>> {
    let first = p.first()?;
    let mut base: Vec<String>;
    let mut rest = &p[1..];
    if crate_names.contains(&first.as_str()) {
        base = Vec::new();
    } else if first == "self" {
        base = here.to_vec();
    } else if first == "super" {
        base = here.to_vec();
        base.pop();
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
    } else if children.contains(first) {
        base = here.to_vec();
        base.push(first.clone());
    } else {
        return None;
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// The file a module path lands in: the longest prefix that is a file's module.
fn file_of<'a>(m: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a String> {
    (0..=m.len()).rev().find_map(|n| modules.get(&m[..n]))
}

fn top(file: &str) -> &str {
    let f = file.strip_suffix(".rs").unwrap_or(file);
    f.split('/').next().unwrap_or(f)
}

/// `src/providers/<name>/...` → `<name>`.
fn provider_folder(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("providers/")?;
    let (name, _) = rest.split_once('/')?;
    Some(name)
}

/// Every layering violation of a tree (paths relative to `src/`, with their text).
fn check(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeMap<Vec<String>, String> =
        files.keys().filter(|f| *f != "main.rs").map(|f| (module_of(f), f.clone())).collect();
    // Each file's imports by the file they land in, with the first path
    // that names it (for the message).
    let mut pairs: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for (file, src) in files {
        for m in imports(file, src) {
            // `crate::` alone, or the root's items: the crate root only.
            let Some(target) = file_of(&m, &modules).filter(|t| *t != file && !m.is_empty()) else { continue };
            pairs.entry((file.as_str(), target.as_str())).or_insert_with(|| m.join("::"));
        }
    }
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for ((file, target), named) in &pairs {
        // A part of a folder module using the folder's face (`use super::*`
        // in `state/journal.rs`) is how Rust makes a folder one module:
        // not an edge for cycles. Everything else is.
        let mut parent = module_of(file);
        parent.pop();
        if file_of(&parent, &modules).is_none_or(|p| p != *target) || parent != module_of(target) {
            edges.entry(file).or_default().insert(target);
        }
        let (from, to) = (top(file), top(target));
        if from == to {
            continue;
        }
        if LEAVES.contains(&from) && !LEAVES.contains(&to) {
            problems.push(format!("{file}: a leaf imports `crate::{named}`"));
        }
        if to == "engine" && !ENGINE_USERS.contains(&from) {
            problems.push(format!("{file}: only commands, main and lib may import the engine, not `{from}` (`crate::{named}`)"));
        }
        for (layer, banned) in FORBIDDEN {
            if from == *layer && banned.contains(&to) {
                problems.push(format!("{file}: `{layer}` must not import `{to}` (`crate::{named}`)"));
            }
        }
    }
    for cycle in cycles(&edges) {
        let folders: BTreeSet<Option<&str>> = cycle.iter().map(|f| provider_folder(f)).collect();
        if folders.len() == 1 && folders.iter().next().is_some_and(Option::is_some) {
            continue;
        }
        problems.push(format!("import cycle between {}", cycle.join(", ")));
    }
    problems
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct T<'a, 'e> {
        edges: &'e BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    impl<'a> T<'a, '_> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = T { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    let nodes: BTreeSet<&str> = edges.iter().flat_map(|(k, v)| std::iter::once(*k).chain(v.iter().copied())).collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn the_source_tree_keeps_its_layers() {
    let tree = read_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(tree.len() > 50 && tree.contains_key("engine/mod.rs"), "read the tree: {} files", tree.len());
    let problems = check(&tree);
    assert!(problems.is_empty(), "layering violations:\n  {}", problems.join("\n  "));
}

#[test]
fn the_checker_finds_each_kind_of_violation() {
    let files: BTreeMap<String, String> = [
        ("lib.rs", "pub mod addr; pub mod engine; pub mod state; pub mod providers; pub mod plan; pub mod config;"),
        // A leaf reaching up; the comment and the string must not count.
        ("addr.rs", "// crate::config is fine in a comment\nuse crate::engine::Walk;\nconst S: &str = \"crate::graph\";"),
        ("engine/mod.rs", "pub mod walk;\nuse crate::state::State;"),
        ("engine/walk.rs", "pub struct Walk;"),
        // state reaching for a provider, and a cycle between two state
        // files; their use of the folder's face (`super::State`) is no cycle.
        ("state/mod.rs", "mod local;\nmod journal;\npub use local::Local;\nfn f() { crate::providers::Registry::default(); }"),
        ("state/local.rs", "use super::{State, journal::Entry};\npub struct Local;"),
        ("state/journal.rs", "use crate::state::local::Local;\npub struct Entry;"),
        // providers must not see config; a cycle inside one provider's folder is its own business.
        ("providers/mod.rs", "pub mod aws;\nuse crate::config::{Config, eval::{self, Ctx}};"),
        ("providers/aws/mod.rs", "mod ec2;\nuse ec2::Ec2;\npub struct Aws;"),
        ("providers/aws/ec2.rs", "use super::Aws;\npub struct Ec2;"),
        // plan reaching the engine through `super` paths in code.
        ("plan/mod.rs", "fn f() -> super::engine::walk::Walk { todo!() }\n#[cfg(test)]\nmod tests { use crate::engine::Walk; }"),
        ("config/mod.rs", "pub struct Config;"),
        ("main.rs", "use berth::engine;"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let problems = check(&files);
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("addr.rs: a leaf imports `crate::engine::Walk`"), "{problems:#?}");
    assert!(has("addr.rs: only commands, main and lib may import the engine"), "{problems:#?}");
    assert!(has("state/mod.rs: `state` must not import `providers`"), "{problems:#?}");
    assert!(has("providers/mod.rs: `providers` must not import `config`"), "{problems:#?}");
    assert!(has("plan/mod.rs: `plan` must not import `engine`"), "{problems:#?}");
    assert!(has("import cycle between state/journal.rs, state/local.rs"), "{problems:#?}");
    assert!(!has("state/mod.rs,") && !has(", state/mod.rs"), "a part using its folder's face is no cycle: {problems:#?}");
    assert!(!has("providers/aws"), "a cycle inside one provider's folder is allowed: {problems:#?}");
    assert!(!has("crate::graph") && !has("crate::config is"), "comments and strings do not count: {problems:#?}");
    assert_eq!(problems.iter().filter(|p| p.starts_with("plan/")).count(), 2, "test modules do not count: {problems:#?}");
    assert!(!problems.iter().any(|p| p.starts_with("main.rs")), "{problems:#?}");
    assert_eq!(problems.len(), 7, "{problems:#?}");
}

#[test]
fn use_trees_and_paths_are_read_whole() {
    let src = "use crate::{a::{self, b as c}, d::*};\nuse super::e;\nfn f() { x::y(); crate::g::h(); <T as crate::i::J>::k(); }\nmod x;";
    let got: Vec<String> = imports("m/n.rs", src).into_iter().map(|p| p.join("::")).collect();
    assert_eq!(got, ["a", "a::b", "d", "g::h", "i::J", "m::e", "m::n::x::y"]);
}
