//! Fixture tests for `berth fmt`'s formatter.
//!
//! Each `tests/fmt/NAME.in.hcl` is unformatted input and `NAME.out.hcl` the
//! exact expected result. For every fixture the formatter must produce the
//! expected text, leave that text unchanged when run on it again, and keep
//! the meaning: hcl-rs must read input and output as equal bodies. Run with
//! `BERTH_BLESS=1` to write missing `.out.hcl` files after a deliberate
//! change to the rules; review them before committing.

use berth::config::fmt::format_source;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fmt")
}

/// Every `NAME.in.hcl` with its `NAME.out.hcl`, sorted by name.
fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let mut out: Vec<_> = fs_err::read_dir(fixture_dir())
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(".in.hcl")?.to_string();
            let expected = path.with_file_name(format!("{name}.out.hcl"));
            Some((name, path, expected))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 8, "fixtures missing from {}", fixture_dir().display());
    out
}

fn read(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap()
}

#[test]
fn fixtures_format_to_expected_output() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, input, expected) in fixtures() {
        let got = format_source(&read(&input)).unwrap_or_else(|e| panic!("{name}: {e}"));
        if bless && !expected.exists() {
            fs_err::write(&expected, &got).unwrap();
            continue;
        }
        let want = read(&expected);
        if got != want {
            failures.push(format!("--- {name}: expected\n{want}--- got\n{got}---"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn formatting_is_idempotent() {
    for (name, input, expected) in fixtures() {
        let once = format_source(&read(&input)).unwrap();
        let twice = format_source(&once).unwrap();
        assert_eq!(once, twice, "{name}: formatting the output changed it again");
        if expected.exists() {
            let want = read(&expected);
            assert_eq!(format_source(&want).unwrap(), want, "{name}.out.hcl is not a fixed point");
        }
    }
}

#[test]
fn formatting_keeps_the_meaning() {
    for (name, input, _) in fixtures() {
        let src = read(&input);
        let out = format_source(&src).unwrap();
        let before = hcl::from_str::<hcl::Body>(&src).unwrap_or_else(|e| panic!("{name}: input: {e}"));
        let after = hcl::from_str::<hcl::Body>(&out).unwrap_or_else(|e| panic!("{name}: output: {e}"));
        assert_eq!(before, after, "{name}: formatting changed the parsed body");
    }
}

/// Comments carry no meaning to the parser, so the semantic check cannot
/// see a lost one: every comment of the input must appear in the output.
#[test]
fn formatting_keeps_every_comment() {
    for (name, input, _) in fixtures() {
        let src = read(&input);
        let out = format_source(&src).unwrap();
        for line in src.lines() {
            for marker in ["#", "//", "/*"] {
                // Only lines whose comment starts outside a string: the
                // fixtures keep such lines free of quotes before the marker.
                if let Some(pos) = line.find(marker)
                    && !line[..pos].contains('"')
                    && !line[..pos].contains("<<")
                {
                    let comment = line[pos..].trim_end();
                    assert!(out.contains(comment), "{name}: lost comment `{comment}`");
                }
            }
        }
    }
}

#[test]
fn heredoc_and_string_contents_are_untouched() {
    let src = read(&fixture_dir().join("heredocs.in.hcl"));
    let out = format_source(&src).unwrap();
    // Trailing blanks and odd indentation inside a heredoc are content.
    assert!(out.contains("   echo \"indented stays\"   \n"), "{out}");
    assert!(out.contains("\n      line one\n        line two\n      EOS\n"), "{out}");
    let src = read(&fixture_dir().join("templates.in.hcl"));
    let out = format_source(&src).unwrap();
    for s in ["\"${ {a = 1}[\"a\"] }\"", "\"  keep   these   spaces  \"", "%{ if var.x }yes%{ else }no%{ endif }"] {
        assert!(out.contains(s), "`{s}` changed:\n{out}");
    }
}

#[test]
fn output_has_no_trailing_whitespace_outside_heredocs() {
    for (name, input, _) in fixtures() {
        if name == "heredocs" {
            continue;
        }
        let out = format_source(&read(&input)).unwrap();
        for (n, line) in out.lines().enumerate() {
            assert_eq!(line, line.trim_end(), "{name}: trailing whitespace on output line {}", n + 1);
        }
        assert!(out.is_empty() || (out.ends_with('\n') && !out.ends_with("\n\n")), "{name}: bad file ending");
        assert!(!out.contains("\n\n\n"), "{name}: more than one blank line in a row");
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset];
    (before.matches('\n').count() + 1, before.rsplit('\n').next().unwrap().chars().count() + 1)
}

#[test]
fn syntax_errors_point_at_the_offending_line() {
    let cases: &[(&str, usize)] = &[
        // A missing `]`: the parser notices at the next attribute.
        ("a = 1\nb = [1,\n  2\nc = 3\n", 4),
        // A stray token after a value.
        ("locals {\n  a = 1\n  b = 2 3\n}\n", 3),
        // An unterminated block: the end of input, reported at the end of
        // the last line.
        ("x {\n  y = 1\n", 2),
        // A bad character.
        ("a = 1\n\n\nb = @\n", 4),
        // An unterminated string.
        ("a = \"abc\nb = 2\n", 1),
    ];
    for (src, want_line) in cases {
        let err = format_source(src).expect_err(src);
        let (line, col) = line_col(src, err.offset.min(src.len()));
        assert_eq!(line, *want_line, "{src:?}: {err:?}");
        assert_eq!((err.line, err.column), (line, col), "{src:?}: offset and line/column disagree: {err:?}");
        assert!(!err.message.is_empty());
        assert!(err.to_string().starts_with(&format!("{line}:{col}: ")), "{err}");
    }
}

/// Odd but valid inputs that have no expected-output fixture: each must
/// format, be a fixed point after one pass, and keep its meaning.
#[test]
fn odd_inputs_are_stable_and_keep_their_meaning() {
    let cases = [
        "x = (\na + b\n)\n",
        "x = var.a ? (\n1\n) : 2\n",
        "x = (\n  a\n  ? b\n  : c\n)\n",
        "x = \"${\nfoo\n}\"\n",
        "a /* c */ = 1\nbb = 2\n",
        "f = foo(# first\n1, // second\n2 /* third */,\n)\n",
        "x = [for v in [\n1,\n2,\n] : v # c\n]\n",
        "ünï = 1\nb = \"ü\" # c\nccc = 2 # d\n",
        "x = {\n\"a\": 1,\nb: 2\n}\n",
        "x = [\n<<EOF\na\nEOF\n,\n<<-EOT\n  b\n  EOT\n]\n",
        "a\t=\t1\n\tb\t{\tc = 2 }\n",
        "x = a.0.b\ny = a[0][\"k\"]\n",
        "x = -(-1)\ny = !!true\nz = 1 - -1\n",
        "block {\n\n\n  a = 1\n\n\n}\n",
        "a = 1 # c1\n# own line\nb = 2 # c2\n",
        "empty {\n}\none_line { a = 1 }\n",
        "x = provider::aws::arn_parse(\"a\").account\n",
        "x = {\n  for k, v in m :\n  k => v...\n  if v != null\n}\n",
        "/* only a comment */\n",
        "# only\n# comments\n",
        "x = tomap({\n  a = 1\n})[\"a\"]\n",
        "x = 1\r\ny = [\r\n1,\r\n]\r\n",
    ];
    for src in cases {
        let once = format_source(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(format_source(&once).unwrap(), once, "{src:?} is not stable:\n{once}");
        let before = hcl::from_str::<hcl::Body>(src).unwrap();
        let after = hcl::from_str::<hcl::Body>(&once).unwrap();
        assert_eq!(before, after, "{src:?} changed meaning:\n{once}");
    }
}

/// Re-indents every line outside heredocs and block comments (whose insides
/// are content) at random, sprinkles trailing blanks and doubles blank
/// lines: none of that may change the result, since the layout is computed
/// from the tokens alone.
#[test]
fn result_does_not_depend_on_input_layout() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for (name, input, _) in fixtures() {
        let src = read(&input);
        let want = format_source(&src).unwrap();
        for round in 0..5 {
            let mut mangled = String::new();
            let mut heredoc_end: Option<String> = None;
            let mut in_block_comment = false;
            for line in src.lines() {
                if in_block_comment {
                    mangled.push_str(line);
                    mangled.push('\n');
                    in_block_comment = !line.contains("*/");
                    continue;
                }
                if let Some(end) = &heredoc_end {
                    mangled.push_str(line);
                    mangled.push('\n');
                    if line.trim_start() == end {
                        heredoc_end = None;
                    }
                    continue;
                }
                if let Some(pos) = line.find("<<") {
                    let marker = line[pos + 2..].trim_start_matches('-');
                    let marker: String = marker.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    heredoc_end = Some(marker);
                }
                if let Some(pos) = line.find("/*") {
                    in_block_comment = !line[pos..].contains("*/");
                }
                let indent = ["", " ", "\t", "      ", " \t  "][next(5) as usize];
                let trailing = ["", " ", "\t  "][next(3) as usize];
                mangled.push_str(indent);
                mangled.push_str(line.trim_start());
                if heredoc_end.is_none() {
                    mangled.push_str(trailing);
                }
                mangled.push('\n');
                if line.trim().is_empty() && next(2) == 0 {
                    mangled.push('\n');
                }
            }
            let got = format_source(&mangled).unwrap_or_else(|e| panic!("{name} round {round}: {e}\n{mangled}"));
            assert_eq!(got, want, "{name} round {round}: layout of the input leaked into the output:\n{mangled}");
        }
    }
}
