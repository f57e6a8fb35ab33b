//! What berth does differently when it runs in a CI job.
//!
//! berth runs mostly in CI: `plan` on every pull request, `apply` on merge.
//! On GitHub Actions (`GITHUB_ACTIONS=true`) two things make its output
//! land where reviewers look:
//!
//! - configuration errors are also printed as workflow commands
//!   (`::error file=…,line=…,col=…::message`), which GitHub turns into
//!   annotations on the lines of the pull request's diff;
//! - `plan` appends its Markdown summary ([`crate::plan::markdown`]) to the
//!   file `$GITHUB_STEP_SUMMARY` names, so the run's page shows it.
//!
//! A leaf: it formats and writes, and knows nothing of the engine.

use crate::diag::{Diagnostic, Diagnostics, Severity};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether this process runs as a GitHub Actions step.
pub fn github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// The message part of a workflow command, escaped as the runner reads it
/// back: `%`, CR and LF.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A property value of a workflow command: as data, plus `:` and `,`,
/// which separate properties.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The path GitHub needs to place an annotation: relative to the checkout
/// (`GITHUB_WORKSPACE`), whatever directory berth ran in (`-C infra`).
fn repo_path(file: &Path, shown: &str) -> String {
    let workspace = std::env::var_os("GITHUB_WORKSPACE").map(PathBuf::from);
    let (Some(ws), Ok(abs)) = (workspace, std::fs::canonicalize(file)) else { return shown.to_string() };
    match std::fs::canonicalize(&ws).ok().and_then(|ws| abs.strip_prefix(ws).ok().map(Path::to_path_buf)) {
        Some(rel) => rel.to_string_lossy().into_owned(),
        None => shown.to_string(),
    }
}

/// One diagnostic as a workflow command line.
pub fn annotation(d: &Diagnostic) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut message = d.message.clone();
    if let Some(h) = &d.hint {
        message.push_str(&format!("\n{h}"));
    }
    let props = match &d.span {
        Some(span) => {
            let (line, col) = span.file.line_col(span.range.start);
            let (end_line, end_col) = span.file.line_col(span.range.end.max(span.range.start));
            let file = repo_path(&span.file.path, &span.file.name);
            let mut p = format!("file={},line={line},col={col}", escape_property(&file));
            // GitHub takes an end column only on a one-line annotation.
            if end_line == line {
                p.push_str(&format!(",endColumn={end_col}"));
            } else {
                p.push_str(&format!(",endLine={end_line}"));
            }
            format!(" {p},title=berth")
        }
        None => " title=berth".to_string(),
    };
    format!("::{kind}{props}::{}\n", escape_data(&message))
}

/// Every diagnostic as a workflow command, one per line.
pub fn annotations(diags: &Diagnostics) -> String {
    diags.0.iter().map(annotation).collect()
}

/// Prints `diags` as annotations on stderr when running on GitHub Actions
/// (the runner reads workflow commands from both streams; stdout stays data).
pub fn annotate(diags: &Diagnostics) {
    if github_actions() && !diags.0.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(annotations(diags).as_bytes());
        let _ = err.flush();
    }
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY` on GitHub Actions. A
/// summary that cannot be written is a warning, never a failed plan.
pub fn append_step_summary(markdown: &str) {
    if !github_actions() {
        return;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return };
    let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| {
        f.write_all(markdown.as_bytes())?;
        if !markdown.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        Ok(())
    });
    if let Err(e) = written {
        eprintln!("Warning: cannot append the plan to the step summary `{}`: {e}", Path::new(&path).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{SourceFile, Span};

    #[test]
    fn annotations_escape_what_the_runner_would_misread() {
        let file = SourceFile::new(Path::new("/nowhere/main.tf"), "main.tf".into(), "a = 1\nb = x,y\n".into());
        let d = Diagnostic::error("50% of `b`:\nbad").at(Some(Span::new(&file, 10..13))).hint("did you mean `a`?");
        assert_eq!(
            annotation(&d),
            "::error file=main.tf,line=2,col=5,endColumn=8,title=berth::50%25 of `b`:%0Abad%0Adid you mean `a`?\n"
        );
        assert_eq!(annotation(&Diagnostic::warning("w")), "::warning title=berth::w\n");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
