//! Finds the cause of a syntax error that hcl-edit reports far from it.
//!
//! hcl-edit says where its parser gave up. For an unterminated string that
//! is the start of the attribute (the parser backtracks), for an
//! unterminated heredoc the line after its opener, and for a block missing
//! its `}` the end of the file. A user needs the opening quote, the `<<EOT`
//! or the unclosed brace instead. A small scanner that knows strings,
//! templates, heredocs and comments finds the first such opener; the
//! diagnosis is only used when repairing it (closing the string, the heredoc
//! or the brackets) makes the parse get past that point, so an unrelated
//! error elsewhere keeps hcl-edit's own location.

/// What the scanner found left open.
#[derive(Debug, PartialEq)]
enum Open {
    /// A quoted string still open at the end of its line.
    String { at: usize, line_end: usize },
    /// A heredoc whose closing marker line never comes.
    Heredoc { at: usize, marker: String },
    /// Brackets still open at the end of the file, innermost last.
    Brackets(Vec<(u8, usize)>),
}

/// Where and why the text fails to parse, when the scanner can tell better
/// than the parser: `(byte offset, message)`.
pub(crate) fn refine(text: &str, parser_offset: usize) -> Option<(usize, String)> {
    match scan(text)? {
        Open::String { at, line_end } => {
            let mut fixed = String::with_capacity(text.len() + 1);
            fixed.push_str(&text[..line_end]);
            fixed.push('"');
            fixed.push_str(&text[line_end..]);
            if !repaired(&fixed, line_end + 1) || parser_offset > line_end {
                return None;
            }
            Some((at, "unterminated string: the `\"` opened here is not closed on its line".into()))
        }
        Open::Heredoc { at, marker } => {
            let fixed = format!("{text}\n{marker}\n");
            if !repaired(&fixed, text.len()) || parser_offset < at {
                return None;
            }
            Some((at, format!("unterminated heredoc: no line closes `<<{marker}` with `{marker}`")))
        }
        Open::Brackets(open) => {
            let &(b, at) = open.last()?;
            let mut fixed = text.to_string();
            fixed.push('\n');
            for &(b, _) in open.iter().rev() {
                fixed.push(closer(b) as char);
            }
            fixed.push('\n');
            if !repaired(&fixed, text.len()) || parser_offset < at {
                return None;
            }
            Some((at, format!("`{}` is never closed: add a `{}`", b as char, closer(b) as char)))
        }
    }
}

/// True when `fixed` parses, or fails only after `past`.
fn repaired(fixed: &str, past: usize) -> bool {
    match hcl_edit::parser::parse_body(fixed) {
        Ok(_) => true,
        Err(e) => e.location().offset() > past,
    }
}

fn closer(b: u8) -> u8 {
    match b {
        b'{' => b'}',
        b'(' => b')',
        _ => b']',
    }
}

enum Frame {
    /// Inside a quoted string (opened at the offset).
    Str(usize),
    /// Inside `${ ... }` or `%{ ... }`: the offset of the bracket stack
    /// where the interpolation started.
    Interp(usize),
}

/// Scans for the first thing left open. `None` when everything closes (or
/// the text is too confused to say, such as mismatched brackets).
fn scan(text: &str) -> Option<Open> {
    let b = text.as_bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut brackets: Vec<(u8, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(Frame::Str(open)) = frames.last() {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    frames.pop();
                }
                b'\n' => return Some(Open::String { at: *open, line_end: line_end(b, i) }),
                b'$' | b'%' if b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&b'{') => i += 2,
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    frames.push(Frame::Interp(brackets.len()));
                    brackets.push((b'{', i + 1));
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => match text[i + 2..].find("*/") {
                Some(n) => i += n + 3,
                None => return None,
            },
            b'"' => frames.push(Frame::Str(i)),
            b'<' if b.get(i + 1) == Some(&b'<') => {
                if let Some((marker, body)) = heredoc_opener(text, i) {
                    match closing_line(text, body, marker) {
                        Some(end) => i = end,
                        None => return Some(Open::Heredoc { at: i, marker: marker.to_string() }),
                    }
                    continue;
                }
            }
            b'{' | b'(' | b'[' => brackets.push((c, i)),
            b'}' | b')' | b']' => {
                let (open, _) = brackets.pop()?;
                if closer(open) != c {
                    return None;
                }
                if let Some(Frame::Interp(depth)) = frames.last()
                    && brackets.len() == *depth
                {
                    frames.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !frames.is_empty() {
        // A string or interpolation open at the very end: the bracket case
        // below would blame the wrong thing.
        return None;
    }
    (!brackets.is_empty()).then_some(Open::Brackets(brackets))
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| from + n)
}

/// `<<EOT` or `<<-EOT` at `at`, followed by a newline: the marker and where
/// the body starts.
fn heredoc_opener(text: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &text[at + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let start = text.len() - rest.len();
    let len = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-').count();
    if len == 0 || !rest.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    let after = &rest[len..];
    let nl = if after.starts_with("\r\n") { 2 } else if after.starts_with('\n') { 1 } else { return None };
    Some((&text[start..start + len], start + len + nl))
}

/// The offset just past the line that holds only `marker`, from `body` on.
fn closing_line(text: &str, body: usize, marker: &str) -> Option<usize> {
    let mut pos = body;
    for line in text[body..].split_inclusive('\n') {
        pos += line.len();
        if line.trim() == marker {
            return Some(pos);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<(usize, String)> {
        let e = hcl_edit::parser::parse_body(text).expect_err("the text must not parse");
        refine(text, e.location().offset())
    }

    #[test]
    fn an_unterminated_string_points_at_its_quote() {
        let text = "resource \"a\" \"b\" {\n  input = \"x\n}\n";
        let (off, msg) = at(text).expect("refined");
        assert_eq!(off, text.find("\"x").unwrap());
        assert!(msg.contains("unterminated string"), "{msg}");
    }

    #[test]
    fn a_block_without_its_brace_points_at_the_opening_brace() {
        let text = "resource \"a\" \"b\" {\n  input = \"x\"\n\nresource \"a\" \"c\" {\n  input = \"y\"\n}\n";
        let (off, msg) = at(text).expect("refined");
        assert_eq!(off, text.find('{').unwrap());
        assert!(msg.contains("`{` is never closed"), "{msg}");
    }

    #[test]
    fn an_unterminated_heredoc_points_at_its_opener() {
        let text = "locals {\n  x = <<EOT\nhello\n}\n";
        let (off, msg) = at(text).expect("refined");
        assert_eq!(off, text.find("<<").unwrap());
        assert!(msg.contains("`<<EOT`"), "{msg}");
    }

    #[test]
    fn templates_comments_and_closed_heredocs_are_skipped() {
        let ok = "# a \"quote\n/* { */ locals {\n  a = \"${ {b = \"}\"}.b } $${x} %%{y}\"\n  h = <<-EOT\n  \"{\n  EOT\n}\n";
        assert!(hcl_edit::parser::parse_body(ok).is_ok());
        assert_eq!(scan(ok), None);
    }

    #[test]
    fn an_unrelated_earlier_error_keeps_the_parser_location() {
        // The `@` comes first; the open string after it is not the cause.
        let text = "locals {\n  a = 1 @\n}\nlocals {\n  b = \"x\n}\n";
        assert_eq!(at(text), None);
    }
}
