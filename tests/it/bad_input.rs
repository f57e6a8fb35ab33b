//! The bad-input corpus: every folder under `tests/bad_input/` is a broken
//! configuration that berth must refuse cleanly.
//!
//! For each case the harness applies a small valid `berth_data`
//! configuration in a scratch directory (so there is a real state to
//! protect), swaps in the broken files, and runs `berth plan` and
//! `berth validate`. Each run must exit with code 1 without a panic, print an
//! `Error:` headline naming the exact `file:line:column` from the case's
//! `expect.txt` together with the expected message, and leave the `state/`
//! folder byte-for-byte as it was.
//!
//! A case folder holds the configuration (`main.hcl`, more files, module
//! folders), `expect.txt` and optionally `args.txt`:
//!
//! ```text
//! expect.txt   line 1: the location, `main.hcl:3:11`
//!              line 2: a substring of that error's message
//!              further lines: more substrings the error output must contain,
//!              or `skip validate: <why>` when `berth validate` does not
//!              apply (the error needs variable values or planned values)
//! args.txt     extra arguments for `berth plan`, one per line
//! ```
//!
//! Cases run in parallel; every failing case is reported, not just the first.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::cli::Work;

struct Case {
    name: String,
    dir: PathBuf,
    location: String,
    message: String,
    extra: Vec<String>,
    skip_validate: bool,
    plan_args: Vec<String>,
}

/// Files of the case folder that describe the case rather than configure berth.
const META: &[&str] = &["expect.txt", "args.txt"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input")
}

fn load_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad_input exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for dir in entries {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect = std::fs::read_to_string(dir.join("expect.txt"))
            .unwrap_or_else(|e| panic!("case `{name}` has no readable expect.txt: {e}"));
        let mut lines = expect.lines().map(str::trim_end).filter(|l| !l.is_empty());
        let location = lines.next().unwrap_or_else(|| panic!("case `{name}`: expect.txt needs a location")).to_string();
        let message = lines.next().unwrap_or_else(|| panic!("case `{name}`: expect.txt needs a message")).to_string();
        let mut extra = Vec::new();
        let mut skip_validate = false;
        for l in lines {
            if let Some(why) = l.strip_prefix("skip validate:") {
                assert!(!why.trim().is_empty(), "case `{name}`: say why validate is skipped");
                skip_validate = true;
            } else {
                extra.push(l.to_string());
            }
        }
        let plan_args = std::fs::read_to_string(dir.join("args.txt"))
            .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        assert!(
            location.rsplitn(3, ':').count() == 3,
            "case `{name}`: the first line of expect.txt must be `file:line:column`, not `{location}`"
        );
        cases.push(Case { name, dir, location, message, extra, skip_validate, plan_args });
    }
    cases
}

/// Every file under `dir`, by relative path, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_case(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("case dir").flatten() {
        let p = e.path();
        let name = e.file_name();
        let target = to.join(&name);
        if p.is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_case(&p, &target);
        } else if !META.iter().any(|m| name == *m) {
            std::fs::copy(&p, &target).expect("copy case file");
        }
    }
}

/// Runs one case; returns what went wrong, if anything.
fn run_case(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let w = Work::new();
    w.write("main.hcl", "resource \"berth_data\" \"search\" { input = \"x\" }\n");
    let applied = w.run(&["apply", "--auto-approve"]);
    if applied.code != 0 {
        return vec![format!("the valid set-up configuration failed to apply:\n{}", applied.stderr)];
    }
    std::fs::remove_file(w.path().join("main.hcl")).expect("remove set-up config");
    copy_case(&case.dir, w.path());
    let state_file = w.path().join("state/default.json");
    let before_file = std::fs::read(&state_file).expect("state/default.json after apply");
    let before = snapshot(&w.path().join("state"));

    let mut runs: Vec<Vec<&str>> = vec![std::iter::once("plan").chain(case.plan_args.iter().map(String::as_str)).collect()];
    if !case.skip_validate {
        runs.push(vec!["validate"]);
    }
    for args in runs {
        let cmd = args.join(" ");
        let r = w.run(&args);
        let out = format!("stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        if r.code != 1 {
            problems.push(format!("`berth {cmd}` exited with {} instead of 1\n{out}", r.code));
        }
        if r.stderr.contains("panicked") || r.stdout.contains("panicked") {
            problems.push(format!("`berth {cmd}` panicked\n{out}"));
        }
        let headline = format!("Error: {}: ", case.location);
        let named = r.stderr.lines().any(|l| l.starts_with(&headline) && l.contains(&case.message));
        if !named {
            problems.push(format!(
                "`berth {cmd}`: no `{headline}...` line containing `{}`\n{out}",
                case.message
            ));
        }
        for needle in &case.extra {
            if !r.stderr.contains(needle.as_str()) {
                problems.push(format!("`berth {cmd}`: stderr lacks `{needle}`\n{out}"));
            }
        }
        if std::fs::read(&state_file).ok().as_deref() != Some(before_file.as_slice()) {
            problems.push(format!("`berth {cmd}` changed state/default.json"));
        }
        if snapshot(&w.path().join("state")) != before {
            problems.push(format!("`berth {cmd}` added, removed or changed files under state/"));
        }
    }
    problems
}

#[test]
fn every_broken_configuration_is_refused_cleanly() {
    let cases = load_cases();
    assert!(cases.len() >= 50, "the corpus holds {} cases; it needs at least 50", cases.len());
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let problems = run_case(case);
                    if !problems.is_empty() {
                        failures.lock().unwrap().push(format!("── case `{}`:\n{}", case.name, problems.join("\n")));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(failures.is_empty(), "{} of {} case(s) failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn case_names_are_numbered_and_unique() {
    let cases = load_cases();
    let mut numbers = std::collections::BTreeSet::new();
    for c in &cases {
        let (num, rest) = c.name.split_once('-').unwrap_or_else(|| panic!("case `{}` is not `NN-short-name`", c.name));
        assert!(num.chars().all(|ch| ch.is_ascii_digit()) && !rest.is_empty(), "case `{}` is not `NN-short-name`", c.name);
        assert!(numbers.insert(num.to_string()), "case number {num} is used twice");
    }
}
