//! `berth fmt`: rewrites HCL source into its canonical layout, keeping comments.
//!
//! The rules follow `terraform fmt` (hclwrite's formatter): two-space
//! indentation by bracket nesting, one space around `=`, the `=` of
//! consecutive single-line attributes aligned, trailing `#`/`//` comments of
//! consecutive lines aligned, spacing between tokens normalised. Nothing is
//! reordered, and strings, templates and heredocs are copied byte for byte.
//! Unlike `terraform fmt`, which leaves vertical space alone, blank lines are
//! collapsed to one, leading and trailing ones are dropped, and the file ends
//! with exactly one newline.
//!
//! It sits beside the pipeline rather than in it: the `fmt` command reads a
//! file, calls [`format_source`] and writes the result back. hcl-edit parses
//! the file first, so bad input is reported with its position and never
//! reaches the formatter; the parse also tells where every string, template
//! and heredoc starts and ends, which is what lets a small tokenizer treat
//! them as opaque instead of re-implementing HCL's template grammar. The
//! formatter only ever changes whitespace between tokens, and as a last
//! guard the result is parsed again and must mean exactly what the input
//! meant; if it does not, the input is left alone and an error is returned.

use hcl_edit::Span as _;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{BlockLabel, Body};
use hcl_edit::visit::{self, Visit};
use std::collections::BTreeMap;

/// Why a source could not be formatted: almost always a syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct FormatError {
    /// Byte offset into the source where the problem is.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// 1-based column of `offset`, in characters.
    pub column: usize,
    pub message: String,
}

impl FormatError {
    fn at(src: &str, offset: usize, message: impl Into<String>) -> FormatError {
        let offset = offset.min(src.len());
        let mut start = offset;
        while !src.is_char_boundary(start) {
            start -= 1;
        }
        let before = &src[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        FormatError { offset, line, column, message: message.into() }
    }

    /// hcl-edit clamps an error at the end of input to the last byte, and
    /// then reports a column one past it; line and column are recomputed
    /// from the offset so that the three always agree.
    fn from_parse(src: &str, err: &hcl_edit::parser::Error) -> FormatError {
        FormatError::at(src, err.location().offset(), err.message())
    }
}

/// Formats one HCL file. The result is idempotent: formatting it again
/// returns it unchanged.
pub fn format_source(src: &str) -> Result<String, FormatError> {
    let body = hcl_edit::parser::parse_body(src).map_err(|e| FormatError::from_parse(src, &e))?;
    let opaque = opaque_spans(&body);
    let lines = tokenize(src, &opaque)?;
    let out = layout(lines);
    check_meaning(src, &out)?;
    Ok(out)
}

/// Refuses a result whose parsed body differs from the input's. Only a bug
/// in the formatter can trigger this, but a formatter that silently changes
/// what a configuration means is far worse than one that gives up.
fn check_meaning(src: &str, out: &str) -> Result<(), FormatError> {
    let bug = |what: &str| {
        FormatError::at(src, 0, format!("refusing to format: the result would {what} (this is a bug in berth)"))
    };
    match (hcl::parse(src), hcl::parse(out)) {
        (Ok(before), Ok(after)) if before == after => Ok(()),
        (Ok(_), Ok(_)) => Err(bug("change the meaning of the file")),
        (_, Err(_)) if hcl_edit::parser::parse_body(out).is_err() => Err(bug("produce unparsable output")),
        // hcl-rs refused the input even though hcl-edit accepted it; the
        // output still parses, which is all that can be checked then.
        (Err(_), _) => Ok(()),
        (Ok(_), Err(_)) => Err(bug("produce output hcl-rs cannot read")),
    }
}

/// Byte ranges of every string literal, string template and heredoc, keyed
/// by start. Their insides are never touched, so nested templates only need
/// their outermost range.
fn opaque_spans(body: &Body) -> BTreeMap<usize, usize> {
    struct Collector(BTreeMap<usize, usize>);
    impl Collector {
        fn add(&mut self, span: Option<std::ops::Range<usize>>) {
            if let Some(r) = span {
                let end = self.0.entry(r.start).or_insert(r.end);
                *end = (*end).max(r.end);
            }
        }
    }
    impl Visit for Collector {
        fn visit_expr(&mut self, expr: &Expression) {
            match expr {
                Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
                    self.add(expr.span())
                }
                _ => visit::visit_expr(self, expr),
            }
        }
        fn visit_block_label(&mut self, label: &BlockLabel) {
            if label.is_string() {
                self.add(label.span());
            }
        }
    }
    let mut c = Collector(BTreeMap::new());
    c.visit_body(body);
    c.0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    /// A quoted string or template, copied verbatim.
    Str,
    /// `<<EOF` through the closing marker, copied verbatim.
    Heredoc,
    LineComment,
    BlockComment,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    Equal,
    Comma,
    Dot,
    Ellipsis,
    Colon,
    DoubleColon,
    Question,
    FatArrow,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqOp,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl Kind {
    fn bracket_change(self) -> i32 {
        match self {
            Kind::OBrace | Kind::OBrack | Kind::OParen => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen => -1,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Tok {
    kind: Kind,
    text: String,
}

const PUNCT: &[(&str, Kind)] = &[
    ("...", Kind::Ellipsis),
    ("::", Kind::DoubleColon),
    ("==", Kind::EqOp),
    ("!=", Kind::NotEq),
    ("<=", Kind::Le),
    (">=", Kind::Ge),
    ("&&", Kind::And),
    ("||", Kind::Or),
    ("=>", Kind::FatArrow),
    ("{", Kind::OBrace),
    ("}", Kind::CBrace),
    ("[", Kind::OBrack),
    ("]", Kind::CBrack),
    ("(", Kind::OParen),
    (")", Kind::CParen),
    ("=", Kind::Equal),
    (",", Kind::Comma),
    (".", Kind::Dot),
    (":", Kind::Colon),
    ("?", Kind::Question),
    ("+", Kind::Plus),
    ("-", Kind::Minus),
    ("*", Kind::Star),
    ("/", Kind::Slash),
    ("%", Kind::Percent),
    ("!", Kind::Bang),
    ("<", Kind::Lt),
    (">", Kind::Gt),
];

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || (!c.is_ascii() && !c.is_whitespace())
}

/// Splits already-validated source into lines of tokens. Whitespace between
/// tokens is dropped (the layout decides it anew); newlines inside opaque
/// tokens and block comments do not end a line. An empty line is a blank one.
fn tokenize(src: &str, opaque: &BTreeMap<usize, usize>) -> Result<Vec<Vec<Tok>>, FormatError> {
    let bytes = src.as_bytes();
    let mut lines = vec![Vec::new()];
    let mut i = 0;
    let push = |lines: &mut Vec<Vec<Tok>>, kind, text: &str| {
        lines.last_mut().expect("there is always a current line").push(Tok { kind, text: text.to_string() });
    };
    while i < bytes.len() {
        if let Some(&end) = opaque.get(&i) {
            let kind = if src[i..].starts_with("<<") { Kind::Heredoc } else { Kind::Str };
            push(&mut lines, kind, &src[i..end]);
            i = end;
            continue;
        }
        let rest = &src[i..];
        let c = rest.chars().next().expect("i is below the length");
        match c {
            ' ' | '\t' => i += 1,
            '\r' if rest.starts_with("\r\n") => {
                lines.push(Vec::new());
                i += 2;
            }
            '\r' => i += 1,
            '\n' => {
                lines.push(Vec::new());
                i += 1;
            }
            '#' => i += line_comment(rest, &mut lines),
            '/' if rest.starts_with("//") => i += line_comment(rest, &mut lines),
            '/' if rest.starts_with("/*") => {
                let Some(close) = rest[2..].find("*/") else {
                    return Err(FormatError::at(src, i, "unterminated `/*` comment"));
                };
                let raw = &rest[..close + 4];
                // Trailing blanks inside a comment carry no meaning; stripping
                // them keeps the "no trailing whitespace" promise everywhere
                // except strings and heredocs.
                let text = raw.split('\n').map(str::trim_end).collect::<Vec<_>>().join("\n");
                push(&mut lines, Kind::BlockComment, &text);
                i += raw.len();
            }
            '0'..='9' => {
                let len = number_len(rest.as_bytes());
                push(&mut lines, Kind::Number, &rest[..len]);
                i += len;
            }
            c if is_ident_start(c) => {
                let len = rest.find(|c: char| !is_ident_continue(c)).unwrap_or(rest.len());
                push(&mut lines, Kind::Ident, &rest[..len]);
                i += len;
            }
            _ => {
                let Some(&(p, kind)) = PUNCT.iter().find(|(p, _)| rest.starts_with(p)) else {
                    return Err(FormatError::at(
                        src,
                        i,
                        format!("unexpected `{c}` while formatting (this is a bug in berth)"),
                    ));
                };
                push(&mut lines, kind, p);
                i += p.len();
            }
        }
    }
    Ok(lines)
}

/// Pushes a `#` or `//` comment without its line ending or trailing blanks
/// and returns how many bytes it took.
fn line_comment(rest: &str, lines: &mut [Vec<Tok>]) -> usize {
    let len = rest.find('\n').unwrap_or(rest.len());
    let text = rest[..len].trim_end();
    lines
        .last_mut()
        .expect("there is always a current line")
        .push(Tok { kind: Kind::LineComment, text: text.to_string() });
    len
}

/// Length of the number literal at the start of `b`: digits, an optional
/// fraction, an optional exponent.
fn number_len(b: &[u8]) -> usize {
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut n = digits(0);
    if b.get(n) == Some(&b'.') && b.get(n + 1).is_some_and(u8::is_ascii_digit) {
        n += 1 + digits(n + 1);
    }
    if matches!(b.get(n), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(n + 1), Some(b'+' | b'-')));
        if b.get(n + 1 + sign).is_some_and(u8::is_ascii_digit) {
            n += 1 + sign + digits(n + 1 + sign);
        }
    }
    n
}

/// Whether a space goes between `subject` and `after` on one line; `before`
/// is the token preceding `subject` in the same cell, if any. These are
/// hclwrite's rules, with two additions noted inline.
fn space_after(before: Option<Kind>, subject: &Tok, after: Kind) -> bool {
    use Kind::*;
    let s = subject.kind;
    match () {
        _ if s == Ident && after == OParen => false,
        _ if (s == Ident && after == DoubleColon) || (s == DoubleColon && after == Ident) => false,
        _ if s == Dot || after == Dot => false,
        _ if after == Comma || after == Ellipsis => false,
        _ if s == Comma => true,
        // `[for x in [a, b] : x]`: `in` is a keyword there, not a value
        // being indexed.
        _ if s == Ident && subject.text == "in" && before == Some(Ident) => true,
        // Addition: a string followed by `[` is an index, like `"ab"[0]`.
        _ if after == OBrack && (matches!(s, Ident | Number | Str) || s.bracket_change() < 0) => false,
        _ if s == Bang => false,
        // A minus after something that cannot end an operand is a negation
        // and stays glued to its operand. Addition: `=>` is such a thing.
        _ if s == Minus => !matches!(
            before,
            None | Some(
                OParen
                    | OBrace
                    | OBrack
                    | Equal
                    | Colon
                    | Comma
                    | Question
                    | FatArrow
                    | Plus
                    | Star
                    | Slash
                    | Percent
                    | Minus
                    | EqOp
                    | NotEq
                    | Gt
                    | Ge
                    | Lt
                    | Le
                    | And
                    | Or
                    | Bang
            )
        ),
        // Braces get spaces inside, `foo { a = 1 }`, except when empty: `foo {}`.
        _ if s == OBrace || after == CBrace => !(s == OBrace && after == CBrace),
        _ if s.bracket_change() > 0 => false,
        _ if after.bracket_change() < 0 => false,
        _ => true,
    }
}

/// One source line split into hclwrite's cells: everything up to the `=` of
/// a single-line attribute, the `=` and its value, and a trailing comment.
/// The first token of `assign` and of `comment` get their leading spaces
/// from the alignment pass.
#[derive(Default)]
struct Line {
    indent: usize,
    lead: Vec<Tok>,
    assign: Vec<Tok>,
    comment: Option<Tok>,
}

impl Line {
    fn is_blank(&self) -> bool {
        self.lead.is_empty() && self.assign.is_empty() && self.comment.is_none()
    }
}

/// Joins a cell's tokens with the spaces the rules ask for.
fn render_cell(toks: &[Tok], out: &mut String) {
    for (j, tok) in toks.iter().enumerate() {
        if j > 0 {
            let before = j.checked_sub(2).map(|k| toks[k].kind);
            if space_after(before, &toks[j - 1], tok.kind) {
                out.push(' ');
            }
        }
        out.push_str(&tok.text);
    }
}

/// The column just after `s` when it starts at column 0, counting
/// characters on its last line.
fn end_column(s: &str) -> usize {
    s.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

fn layout(raw: Vec<Vec<Tok>>) -> String {
    // Vertical space: no leading or trailing blank lines, at most one blank
    // line in a row.
    let mut rows: Vec<Vec<Tok>> = Vec::with_capacity(raw.len());
    for toks in raw {
        let blank = toks.is_empty();
        if blank && rows.last().is_none_or(Vec::is_empty) {
            continue;
        }
        rows.push(toks);
    }
    while rows.last().is_some_and(Vec::is_empty) {
        rows.pop();
    }

    let mut indents: Vec<i32> = Vec::new();
    let mut lines: Vec<Line> = Vec::with_capacity(rows.len());
    for mut lead in rows {
        if lead.is_empty() {
            lines.push(Line::default());
            continue;
        }
        // hclwrite's indent stack: a line that opens brackets indents the
        // following lines one level however many it opened, and closing
        // pops levels in the same groups, so `[{` ... `}]` costs one level.
        let net: i32 = lead.iter().map(|t| t.kind.bracket_change()).sum();
        if net < 0 {
            let mut closed = -net;
            while closed > 0 {
                let Some(top) = indents.last_mut() else { break };
                if closed >= *top {
                    closed -= *top;
                    indents.pop();
                } else {
                    *top -= closed;
                    closed = 0;
                }
            }
        }
        let indent = 2 * indents.len();
        if net > 0 {
            indents.push(net);
        }

        let comment =
            if lead.len() > 1 && lead.last().is_some_and(|t| t.kind == Kind::LineComment) { lead.pop() } else { None };
        // Only an `=` whose value closes every bracket it opens on this line
        // joins an alignment run; `tags = {` starts a multi-line value.
        let mut assign = Vec::new();
        if let Some(eq) = lead.iter().skip(1).position(|t| t.kind == Kind::Equal).map(|p| p + 1)
            && lead[eq..].iter().map(|t| t.kind.bracket_change()).sum::<i32>() == 0
        {
            assign = lead.split_off(eq);
        }
        lines.push(Line { indent, lead, assign, comment });
    }

    // Render each line's lead and assign cells, then align runs.
    let leads: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut s = " ".repeat(l.indent);
            render_cell(&l.lead, &mut s);
            s
        })
        .collect();
    let assigns: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut s = String::new();
            render_cell(&l.assign, &mut s);
            s
        })
        .collect();

    let mut pad_assign = vec![0usize; lines.len()];
    for run in runs(&lines, |l| !l.assign.is_empty()) {
        let width = run.clone().map(|i| end_column(&leads[i])).max().unwrap_or(0);
        for i in run {
            pad_assign[i] = width - end_column(&leads[i]) + 1;
        }
    }
    let bodies: Vec<String> = (0..lines.len())
        .map(|i| {
            if lines[i].assign.is_empty() {
                leads[i].clone()
            } else {
                format!("{}{}{}", leads[i], " ".repeat(pad_assign[i]), assigns[i])
            }
        })
        .collect();

    let mut pad_comment = vec![0usize; lines.len()];
    for run in runs(&lines, |l| l.comment.is_some()) {
        let width = run.clone().map(|i| end_column(&bodies[i])).max().unwrap_or(0);
        for i in run {
            pad_comment[i] = width - end_column(&bodies[i]) + 1;
        }
    }

    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.is_blank() {
            out.push_str(&bodies[i]);
            if let Some(c) = &line.comment {
                out.push_str(&" ".repeat(pad_comment[i]));
                out.push_str(&c.text);
            }
        }
        out.push('\n');
    }
    out
}

/// Maximal runs of consecutive lines satisfying `member`.
fn runs(lines: &[Line], member: impl Fn(&Line) -> bool) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        match (member(line), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..lines.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        format_source(s).unwrap()
    }

    #[test]
    fn spacing_follows_hclwrite() {
        assert_eq!(fmt("a=1"), "a = 1\n");
        assert_eq!(fmt("a=b[c]"), "a = b[c]\n");
        assert_eq!(fmt("a=b()[c]"), "a = b()[c]\n");
        assert_eq!(fmt("x = ( a+-2 )"), "x = (a + -2)\n");
        assert_eq!(fmt("x = foo(1, -2,a*b, b,c)"), "x = foo(1, -2, a * b, b, c)\n");
        assert_eq!(fmt("x = [ [ ] ]"), "x = [[]]\n");
        assert_eq!(fmt("b{}"), "b {}\n");
        assert_eq!(fmt("x = ! a&&b"), "x = !a && b\n");
        assert_eq!(fmt("x = a[ * ].b"), "x = a[*].b\n");
        assert_eq!(fmt("x = provider :: aws :: f(1)"), "x = provider::aws::f(1)\n");
        assert_eq!(fmt("x = [for v in [1,2]: v]"), "x = [for v in [1, 2] : v]\n");
        assert_eq!(fmt("x = {for k,v in m: k=>-v...}"), "x = { for k, v in m : k => -v... }\n");
        assert_eq!(fmt("x = a?b:c"), "x = a ? b : c\n");
        assert_eq!(fmt("x = \"ab\" [0]"), "x = \"ab\"[0]\n");
        assert_eq!(fmt("x = 1.5e+3-2"), "x = 1.5e+3 - 2\n");
        assert_eq!(fmt("x = a-b - c"), "x = a-b - c\n");
    }

    #[test]
    fn alignment_matches_hclwrite_examples() {
        assert_eq!(fmt("a = 1\nbungle = 2\n"), "a      = 1\nbungle = 2\n");
        assert_eq!(fmt("a = 1\n\nbungle = 2\n"), "a = 1\n\nbungle = 2\n");
        assert_eq!(
            fmt("a = 1 # foo\nbungle = \"bonce\" # baz\nzebra = \"striped\" # baz\n"),
            "a      = 1         # foo\nbungle = \"bonce\"   # baz\nzebra  = \"striped\" # baz\n"
        );
        assert_eq!(
            fmt("a=\"apple\"# foo\nbungle=(# woo parens\n\"bonce\"\n)# baz\nzebra=\"striped\"# baz\n"),
            "a = \"apple\" # foo\nbungle = (  # woo parens\n  \"bonce\"\n)                 # baz\nzebra = \"striped\" # baz\n"
        );
    }

    #[test]
    fn indentation_groups_brackets_opened_on_one_line() {
        assert_eq!(fmt("x = [[\n[\na\n]]\n]\n"), "x = [[\n  [\n    a\n  ]]\n]\n");
    }

    #[test]
    fn vertical_space() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n  \n"), "");
        assert_eq!(fmt("\n\na = 1\n\n\n\nb = 2\n\n\n"), "a = 1\n\nb = 2\n");
        assert_eq!(fmt("a = 1"), "a = 1\n");
        assert_eq!(fmt("a = 1\r\nbb = 2\r\n"), "a  = 1\nbb = 2\n");
    }

    #[test]
    fn meaning_guard_refuses_a_changed_or_broken_result() {
        assert!(check_meaning("a = 1\n", "a   =   1\n").is_ok());
        let changed = check_meaning("a = 1\n", "a = 2\n").unwrap_err();
        assert!(changed.message.contains("change the meaning"), "{changed}");
        let broken = check_meaning("a = [1]\n", "a = [1\n").unwrap_err();
        assert!(broken.message.contains("unparsable"), "{broken}");
    }

    #[test]
    fn syntax_error_points_at_the_line() {
        let err = format_source("a = 1\nb = [1,\n  2\nc = 3\n").unwrap_err();
        assert_eq!(err.line, 4, "{err:?}");
        assert_eq!(FormatError::at("a = 1\nb = [1,\n  2\nc = 3\n", err.offset, "").line, err.line);
    }
}
