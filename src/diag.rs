//! Diagnostics with source spans.
//!
//! Every stage reports problems as [`Diagnostic`]s that accumulate, so a run
//! shows all of them at once. A diagnostic may point into a configuration
//! file; rendering (with miette) happens only at the edge, in `main`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configuration file's text, shared by every span that points into it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user should see it (relative to the working directory
    /// where possible).
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: &Path, name: String, text: String) -> Arc<SourceFile> {
        Arc::new(SourceFile { name, path: path.to_path_buf(), text })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A byte range in a configuration file.
#[derive(Clone)]
pub struct Span {
    pub file: Arc<SourceFile>,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: &Arc<SourceFile>, range: Range<usize>) -> Span {
        Span { file: file.clone(), range }
    }

    /// `file:line:column` of the span's start.
    pub fn location(&self) -> String {
        let (l, c) = self.file.line_col(self.range.start);
        format!("{}:{}:{}", self.file.name, l, c)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    /// A suggestion: "did you mean `aws_instance.search`?"
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, message: message.into(), span: None, hint: None }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, message: message.into(), span: None, hint: None }
    }

    pub fn at(mut self, span: Option<Span>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders for a terminal: a headline with `file:line:column`, then the
    /// source excerpt (miette), with colour only when `color` is set.
    pub fn render(&self, color: bool) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme};
        let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        let kind = match self.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        match &self.span {
            Some(span) => out.push_str(&format!("{kind}: {}: {}\n", span.location(), self.message)),
            None => out.push_str(&format!("{kind}: {}\n", self.message)),
        }
        if self.span.is_some() {
            let named = self.span.as_ref().map(|s| miette::NamedSource::new(&s.file.name, s.file.text.clone()));
            let report = MietteView(self, named);
            let mut body = String::new();
            if handler.render_report(&mut body, &report).is_ok() {
                // The headline already says what is wrong; keep miette's excerpt
                // and hint, which start after its first line.
                let excerpt: Vec<&str> = body.lines().skip(1).collect();
                out.push_str(&excerpt.join("\n"));
                out.push('\n');
            }
        } else if let Some(h) = &self.hint {
            out.push_str(&format!("  help: {h}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = &self.span {
            write!(f, "{}: ", span.location())?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

struct MietteView<'a>(&'a Diagnostic, Option<miette::NamedSource<String>>);

impl fmt::Debug for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}
impl fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}
impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.0.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.hint.as_ref().map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.1.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.0.span.as_ref()?;
        let len = span.range.end.saturating_sub(span.range.start).max(1);
        let label = miette::LabeledSpan::new(Some("here".into()), span.range.start, len);
        Some(Box::new(std::iter::once(label)))
    }
}

/// A list of diagnostics; an `Err(Diagnostics)` holds at least one error.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d)
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0)
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `Ok(())` when there are no errors.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() { Err(self) } else { Ok(()) }
    }
    pub fn render(&self, color: bool) -> String {
        self.0.iter().map(|d| d.render(color)).collect::<Vec<_>>().join("\n")
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate by edit distance, for "did you mean" hints.
pub fn suggest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(input, c);
        // Measured on the shorter name: `search` is not a typo of `each`.
        let limit = (input.len().min(c.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Edit distance where swapping two neighbouring characters counts as one
/// edit (optimal string alignment), so `inptu` is close to `input`.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new(Path::new("a.hcl"), "a.hcl".into(), "ab\ncdé\nx".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(8), (3, 1));
        assert_eq!(Span::new(&f, 4..5).location(), "a.hcl:2:2");
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(suggest("serch", ["search", "core"]), Some("search".into()));
        assert_eq!(suggest("zzzzzz", ["search", "core"]), None);
        assert_eq!(suggest("inptu", ["input", "triggers_replace"]), Some("input".into()));
        assert_eq!(suggest("search", ["each", "self", "path"]), None);
    }

    #[test]
    fn render_names_the_location() {
        let f = SourceFile::new(Path::new("main.hcl"), "main.hcl".into(), "x = 1\ny = foo\n".into());
        let d = Diagnostic::error("unknown variable `foo`").at(Some(Span::new(&f, 10..13))).hint("did you mean `x`?");
        let r = d.render(false);
        assert!(r.starts_with("Error: main.hcl:2:5: unknown variable `foo`"), "{r}");
        assert!(r.contains("did you mean"), "{r}");
    }
}
