//! String functions: trimming, case, `split`/`join`, `replace`, regular
//! expressions, `substr` and friends.

use super::*;

pub(super) fn chomp(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        a.string(0)?.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

pub(super) fn endswith(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.ends_with(&a.string(1)?)))
}

pub(super) fn startswith(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.starts_with(&a.string(1)?)))
}

pub(super) fn strcontains(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::Bool(a.string(0)?.contains(&a.string(1)?)))
}

pub(super) fn indent(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let n = a.int(0)?;
    let s = a.string(1)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_PAD)
        .ok_or_else(|| {
            format!(
                "the number of spaces must be between 0 and {MAX_PAD}, got {}",
                qn(n)
            )
        })?;
    Ok(Value::String(
        s.replace('\n', &format!("\n{}", " ".repeat(n))),
    ))
}

pub(super) fn join(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let sep = a.string(0)?;
    let mut parts = Vec::new();
    for i in 1..a.len() {
        for (j, v) in a.list(i)?.iter().enumerate() {
            parts.push(to_string(v, &elem_name(j, i))?);
        }
    }
    Ok(Value::String(parts.join(&sep)))
}

/// Case mapping one character at a time, as Go's `unicode.ToLower`: a
/// mapping to several characters (`İ` to `i̇`) keeps its first.
fn lower_char(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// As Go's `unicode.ToUpper`: a character whose capital is several
/// characters (`ß`, `ﬁ`) stays as it is.
fn upper_char(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// As Go's `unicode.ToTitle`: the title case of the four digraphs differs
/// from their capital.
fn title_char(c: char) -> char {
    match c {
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        c => upper_char(c),
    }
}

pub(super) fn lower(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        a.string(0)?.chars().map(lower_char).collect(),
    ))
}

pub(super) fn upper(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        a.string(0)?.chars().map(upper_char).collect(),
    ))
}

pub(super) fn title(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    // Word boundaries as Go's strings.Title, which Terraform uses: ASCII
    // letters, digits and `_` and any Unicode letter or digit continue a
    // word; other ASCII and Unicode spaces end one.
    fn ends_word(c: char) -> bool {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    }
    let s = a.string(0)?;
    let mut out = String::with_capacity(s.len());
    let mut boundary = true;
    for c in s.chars() {
        if boundary {
            out.push(title_char(c));
        } else {
            out.push(c);
        }
        boundary = ends_word(c);
    }
    Ok(Value::String(out))
}

pub(super) fn replace(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let pattern = a.string(1)?;
    let with = a.string(2)?;
    if pattern.len() > 1 && pattern.starts_with('/') && pattern.ends_with('/') {
        let re = compile(&pattern[1..pattern.len() - 1])?;
        return Ok(Value::String(
            re.replace_all(&s, with.as_str()).into_owned(),
        ));
    }
    Ok(Value::String(s.replace(&pattern, &with)))
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        // The full message repeats the pattern; keep only the reason.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let reason = reason.strip_prefix("error: ").unwrap_or(reason);
        format!("invalid regular expression {}: {reason}", q(pattern))
    })
}

/// What `regex` returns for one match: the whole match without groups, a list
/// for numbered groups, a map for named ones.
fn match_value(re: &regex::Regex, caps: &regex::Captures) -> Value {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let group = |i: usize| caps.get(i).map_or(Value::Null, |m| Value::str(m.as_str()));
    if names.is_empty() {
        group(0)
    } else if names.iter().all(Option::is_some) {
        Value::Map(
            names
                .iter()
                .flatten()
                .map(|n| {
                    (
                        n.to_string(),
                        caps.name(n).map_or(Value::Null, |m| Value::str(m.as_str())),
                    )
                })
                .collect(),
        )
    } else {
        Value::List((1..=names.len()).map(group).collect())
    }
}

fn compile_groups(pattern: &str) -> Result<regex::Regex, String> {
    let re = compile(pattern)?;
    let named = re.capture_names().skip(1).filter(Option::is_some).count();
    if named > 0 && named < re.captures_len() - 1 {
        return Err(format!(
            "pattern {} mixes named and unnamed capture groups",
            q(pattern)
        ));
    }
    Ok(re)
}

pub(super) fn regex_fn(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let pattern = a.string(0)?;
    let s = a.string(1)?;
    let re = compile_groups(&pattern)?;
    match re.captures(&s) {
        Some(caps) => Ok(match_value(&re, &caps)),
        None => Err(format!("pattern {} does not match {}", q(&pattern), q(&s))),
    }
}

pub(super) fn regexall(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let pattern = a.string(0)?;
    let s = a.string(1)?;
    let re = compile_groups(&pattern)?;
    Ok(Value::List(
        re.captures_iter(&s).map(|c| match_value(&re, &c)).collect(),
    ))
}

pub(super) fn split(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let sep = a.string(0)?;
    let s = a.string(1)?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str()).map(Value::str).collect()
    };
    Ok(Value::List(parts))
}

pub(super) fn strrev(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    use unicode_segmentation::UnicodeSegmentation as _;
    // Grapheme clusters, as Terraform: `👍🏽` stays one character.
    Ok(Value::String(a.string(0)?.graphemes(true).rev().collect()))
}

pub(super) fn substr(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let offset = a.int(1)?;
    let length = a.int(2)?;
    use unicode_segmentation::UnicodeSegmentation as _;
    let chars: Vec<&str> = s.graphemes(true).collect();
    let total = chars.len() as i64;
    let start = if offset < 0 {
        (offset + total).max(0)
    } else {
        offset
    };
    if start >= total {
        return Ok(Value::str(""));
    }
    let rest = &chars[start as usize..];
    // Any negative length means "to the end", as in Terraform.
    let take = if length < 0 {
        rest.len()
    } else {
        (length as usize).min(rest.len())
    };
    Ok(Value::String(rest[..take].concat()))
}

pub(super) fn trim(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let cutset = a.string(1)?;
    Ok(Value::str(s.trim_matches(|c| cutset.contains(c))))
}

pub(super) fn trimprefix(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let prefix = a.string(1)?;
    Ok(Value::str(s.strip_prefix(prefix.as_str()).unwrap_or(&s)))
}

pub(super) fn trimsuffix(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let s = a.string(0)?;
    let suffix = a.string(1)?;
    Ok(Value::str(s.strip_suffix(suffix.as_str()).unwrap_or(&s)))
}

pub(super) fn trimspace(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::str(a.string(0)?.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn string_functions() {
        assert_eq!(
            ok("join", vec![s(", "), ls(&["foo", "bar", "baz"])]),
            s("foo, bar, baz")
        );
        assert_eq!(
            ok("join", vec![s(","), ls(&["a"]), ln(&[1.0, 2.5])]),
            s("a,1,2.5")
        );
        assert_eq!(ok("join", vec![s(","), ls(&[])]), s(""));
        assert_eq!(
            ok("split", vec![s(","), s("foo,bar,baz")]),
            ls(&["foo", "bar", "baz"])
        );
        assert_eq!(ok("split", vec![s(","), s("")]), ls(&[""]));
        assert_eq!(ok("split", vec![s(""), s("aü")]), ls(&["a", "ü"]));
        assert_eq!(ok("lower", vec![s("HELLO Ünï")]), s("hello ünï"));
        assert_eq!(ok("upper", vec![s("hello ünï")]), s("HELLO ÜNÏ"));
        assert_eq!(
            ok("upper", vec![n(1.5)]),
            s("1.5"),
            "numbers convert to strings"
        );
        assert_eq!(ok("upper", vec![Value::Bool(true)]), s("TRUE"));
        assert_eq!(ok("title", vec![s("hello world")]), s("Hello World"));
        assert_eq!(
            ok("title", vec![s("hello-world foo_bar ünï")]),
            s("Hello-World Foo_bar Ünï")
        );
        assert_eq!(
            ok("replace", vec![s("1 + 2 + 3"), s("+"), s("-")]),
            s("1 - 2 - 3")
        );
        assert_eq!(
            ok(
                "replace",
                vec![s("hello world"), s("/w.*d/"), s("everybody")]
            ),
            s("hello everybody")
        );
        assert_eq!(
            ok("replace", vec![s("a1b22"), s("/([0-9]+)/"), s("<$1>")]),
            s("a<1>b<22>")
        );
        assert_eq!(
            ok("replace", vec![s("a/b"), s("/"), s("|")]),
            s("a|b"),
            "a lone slash is plain"
        );
        assert_eq!(ok("trimspace", vec![s("  hello\n\t")]), s("hello"));
        assert_eq!(ok("trim", vec![s("?!hello?!"), s("!?")]), s("hello"));
        assert_eq!(
            ok("trimprefix", vec![s("helloworld"), s("hello")]),
            s("world")
        );
        assert_eq!(
            ok("trimprefix", vec![s("helloworld"), s("cat")]),
            s("helloworld")
        );
        assert_eq!(
            ok("trimsuffix", vec![s("helloworld"), s("world")]),
            s("hello")
        );
        assert_eq!(
            ok("startswith", vec![s("hello world"), s("hello")]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("endswith", vec![s("hello world"), s("hello")]),
            Value::Bool(false)
        );
        assert_eq!(
            ok("strcontains", vec![s("hello world"), s("o w")]),
            Value::Bool(true)
        );
        assert_eq!(ok("chomp", vec![s("hello\r\n\n")]), s("hello"));
        assert_eq!(ok("strrev", vec![s("héllo")]), s("olléh"));
        assert_eq!(
            ok("indent", vec![n(2.0), s("[\n  foo,\n]")]),
            s("[\n    foo,\n  ]")
        );
    }

    #[test]
    fn substr_follows_terraform() {
        assert_eq!(
            ok("substr", vec![s("hello world"), n(1.0), n(4.0)]),
            s("ello")
        );
        assert_eq!(ok("substr", vec![s("🤔🤷"), n(0.0), n(1.0)]), s("🤔"));
        assert_eq!(
            ok("substr", vec![s("hello world"), n(-5.0), n(-1.0)]),
            s("world")
        );
        assert_eq!(ok("substr", vec![s("hello"), n(10.0), n(2.0)]), s(""));
        assert_eq!(ok("substr", vec![s("hello"), n(-10.0), n(2.0)]), s("he"));
        assert_eq!(ok("substr", vec![s("hello"), n(1.0), n(100.0)]), s("ello"));
        assert_eq!(ok("substr", vec![s(""), n(0.0), n(1.0)]), s(""));
    }

    #[test]
    fn regex_functions() {
        assert_eq!(
            ok(
                "regex",
                vec![s("[a-z]+"), s("53453453.345345aaabbbccc23454")]
            ),
            s("aaabbbccc")
        );
        assert_eq!(
            ok(
                "regex",
                vec![s(r"(\d\d\d\d)-(\d\d)-(\d\d)"), s("2019-02-01")]
            ),
            ls(&["2019", "02", "01"])
        );
        assert_eq!(
            ok(
                "regex",
                vec![
                    s(r"^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?"),
                    s("https://terraform.io/docs/")
                ]
            ),
            obj([("authority", s("terraform.io")), ("scheme", s("https"))])
        );
        assert_eq!(
            ok("regexall", vec![s("[a-z]+"), s("1234abcd5678efgh9")]),
            ls(&["abcd", "efgh"])
        );
        assert_eq!(ok("regexall", vec![s("[a-z]+"), s("123")]), l(vec![]));
        assert_eq!(
            err("regex", vec![s("[a-z]+"), s("123")]),
            "regex: pattern `[a-z]+` does not match `123`"
        );
        assert_eq!(
            err("regex", vec![s("(a"), s("a")]),
            "regex: invalid regular expression `(a`: unclosed group"
        );
        assert_eq!(
            err("regex", vec![s("(?P<x>a)(b)"), s("ab")]),
            "regex: pattern `(?P<x>a)(b)` mixes named and unnamed capture groups"
        );
        assert_eq!(
            err("replace", vec![s("a"), s("/(/"), s("b")]),
            "replace: invalid regular expression `(`: unclosed group"
        );
    }

    #[test]
    fn string_errors() {
        assert_eq!(
            err("upper", vec![ls(&[])]),
            "upper: argument 1 must be a string, got list"
        );
        assert_eq!(
            err("upper", vec![Value::Null]),
            "upper: argument 1 must not be null"
        );
        assert_eq!(
            err("lower", vec![obj([("a", n(1.0))])]),
            "lower: argument 1 must be a string, got map"
        );
        assert_eq!(
            err("join", vec![s(","), l(vec![s("a"), Value::Null])]),
            "join: element 1 of argument 2 must not be null"
        );
        assert_eq!(
            err("join", vec![s(","), s("a")]),
            "join: argument 2 must be a list, got string"
        );
        assert_eq!(
            err("indent", vec![n(-1.0), s("a")]),
            "indent: the number of spaces must be between 0 and 10000, got `-1`"
        );
        assert_eq!(
            err("indent", vec![n(1e15), s("a")]),
            "indent: the number of spaces must be between 0 and 10000, got `1000000000000000`"
        );
        assert_eq!(
            err("substr", vec![s("a"), n(0.5), n(1.0)]),
            "substr: argument 2 must be a whole number, got `0.5`"
        );
        assert_eq!(
            err("substr", vec![s("a"), n(1e20), n(1.0)]),
            "substr: argument 2 is out of range, got `100000000000000000000`"
        );
        let long = err("upper", vec![s(&"x".repeat(1000)).clone(), s("y")]);
        assert_eq!(long, "upper: expects 1 argument, got 2");
        let e = err("tonumber", vec![s(&"x".repeat(1000))]);
        assert!(e.len() < 200 && e.contains("x…`"), "long data is cut: {e}");
    }
}
