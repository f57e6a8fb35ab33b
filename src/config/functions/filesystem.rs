//! Functions that read files relative to the calling module's directory.

use super::*;

fn resolve(ctx: &FuncContext, path: &str) -> PathBuf {
    // Joining an absolute path yields that path; `~/x` is in the home
    // directory, as Terraform reads it.
    ctx.base_dir.join(expand_home(path))
}

fn read_bytes(ctx: &FuncContext, a: &Args) -> Result<(PathBuf, Vec<u8>), String> {
    let path = resolve(ctx, &a.string(0)?);
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no file exists at {}", qp(&path)))
        }
        Err(e) => Err(format!("cannot read {}: {e}", qp(&path))),
    }
}

pub(super) fn file(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let (path, bytes) = read_bytes(ctx, a)?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| {
        format!(
            "the contents of {} are not valid UTF-8; use `filebase64` for binary files",
            qp(&path)
        )
    })
}

pub(super) fn filebase64(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let (_, bytes) = read_bytes(ctx, a)?;
    Ok(Value::String(BASE64.encode(bytes)))
}

pub(super) fn fileexists(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let path = resolve(ctx, &a.string(0)?);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(m) if m.is_dir() => Err(format!("{} is a directory, not a file", qp(&path))),
        Ok(_) => Err(format!("{} is not a regular file", qp(&path))),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Value::Bool(false))
        }
        Err(e) => Err(format!("cannot check {}: {e}", qp(&path))),
    }
}

fn file_digest<D: sha2::Digest>(ctx: &FuncContext, a: &Args) -> Result<Vec<u8>, String> {
    let (_, bytes) = read_bytes(ctx, a)?;
    Ok(D::digest(bytes).to_vec())
}

pub(super) fn filemd5(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(file_digest::<md5::Md5>(ctx, a)?)))
}

pub(super) fn filesha1(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(file_digest::<sha1::Sha1>(
        ctx, a,
    )?)))
}

pub(super) fn filesha256(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(file_digest::<sha2::Sha256>(
        ctx, a,
    )?)))
}

pub(super) fn filesha512(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(hex::encode(file_digest::<sha2::Sha512>(
        ctx, a,
    )?)))
}

pub(super) fn filebase64sha256(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(file_digest::<sha2::Sha256>(ctx, a)?),
    ))
}

pub(super) fn filebase64sha512(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(
        BASE64.encode(file_digest::<sha2::Sha512>(ctx, a)?),
    ))
}

/// `~` at the start of a path is the home directory, as in a shell.
pub(super) fn expand_home(path: &str) -> String {
    let home = || std::env::var("HOME").unwrap_or_default();
    if path == "~" {
        home()
    } else if let Some(rest) = path.strip_prefix("~/") {
        clean(&format!("{}/{rest}", home().trim_end_matches('/')))
    } else {
        path.to_string()
    }
}

pub(super) fn pathexpand(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::String(expand_home(&a.string(0)?)))
}

/// Cleans a slash-separated path lexically, as Go's `path.Clean`.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

pub(super) fn abspath(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let p = a.string(0)?;
    let full = if p.starts_with('/') {
        p
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?;
        format!("{}/{p}", cwd.display())
    };
    Ok(Value::String(clean(&full)))
}

pub(super) fn basename(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let p = a.string(0)?;
    let trimmed = p.trim_end_matches('/');
    Ok(Value::String(if p.is_empty() {
        ".".into()
    } else if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
    }))
}

pub(super) fn dirname(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let p = a.string(0)?;
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    Ok(Value::String(clean(dir)))
}

/// The files under `dir` (relative to the module) whose path relative to
/// `dir` matches the glob `pattern` (`*`, `?`, `[...]`, `{a,b}`, `**`),
/// sorted; directories never match.
pub(super) fn fileset(a: &mut Args, ctx: &FuncContext) -> Result<Value, String> {
    let dir = a.string(0)?;
    let pattern = a.string(1)?;
    let root = resolve(ctx, &dir);
    let glob =
        Glob::parse(&pattern).map_err(|e| format!("invalid pattern {}: {e}", q(&pattern)))?;
    let mut found = Vec::new();
    let mut stack = vec![(root.clone(), String::new())];
    let mut seen = 0usize;
    while let Some((path, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > 100_000 {
                return Err(format!("more than 100000 files under {}", qp(&root)));
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(meta) = std::fs::metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push((e.path(), r));
            } else if glob.matches(&r) {
                found.push(Value::String(r));
            }
        }
    }
    Ok(crate::value::set_of(found))
}

/// A glob as Terraform's `fileset` reads one.
struct Glob {
    /// Alternatives from `{a,b}` expanded, each split at `/`.
    alts: Vec<Vec<String>>,
}

impl Glob {
    fn parse(p: &str) -> Result<Glob, String> {
        let mut alts = Vec::new();
        for alt in expand_braces(p)? {
            let segs: Vec<String> = alt.split('/').map(str::to_string).collect();
            for s in &segs {
                if s != "**" {
                    seg_match(s.as_bytes(), b"")?;
                }
            }
            alts.push(segs);
        }
        Ok(Glob { alts })
    }

    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        self.alts.iter().any(|segs| match_segs(segs, &parts))
    }
}

fn expand_braces(p: &str) -> Result<Vec<String>, String> {
    let Some(open) = p.find('{') else {
        return Ok(vec![p.to_string()]);
    };
    let close = p[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or("unclosed `{`")?;
    let mut out = Vec::new();
    for choice in p[open + 1..close].split(',') {
        for rest in expand_braces(&p[close + 1..])? {
            out.push(format!("{}{choice}{rest}", &p[..open]));
        }
    }
    Ok(out)
}

fn match_segs(segs: &[String], parts: &[&str]) -> bool {
    match segs.first() {
        None => parts.is_empty(),
        Some(s) if s == "**" => (0..=parts.len()).any(|i| match_segs(&segs[1..], &parts[i..])),
        Some(s) => {
            !parts.is_empty()
                && seg_match(s.as_bytes(), parts[0].as_bytes()).unwrap_or(false)
                && match_segs(&segs[1..], &parts[1..])
        }
    }
}

/// Matches one path segment; `Err` for a malformed pattern.
fn seg_match(p: &[u8], s: &[u8]) -> Result<bool, String> {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    let mut ok = true;
    // Validate the pattern's classes once, whatever the input.
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'[' {
            let end = p[i + 1..]
                .iter()
                .position(|c| *c == b']')
                .ok_or("unclosed `[`")?;
            i += end + 1;
        } else if p[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    while si < s.len() || pi < p.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' if si < s.len() => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' if si < s.len() => {
                    let end = pi + 1 + p[pi + 1..].iter().position(|c| *c == b']').unwrap_or(0);
                    let class = &p[pi + 1..end];
                    let (neg, class) = match class.first() {
                        Some(b'^' | b'!') => (true, &class[1..]),
                        _ => (false, class),
                    };
                    let c = s[si];
                    let mut hit = false;
                    let mut k = 0;
                    while k < class.len() {
                        if k + 2 < class.len() && class[k + 1] == b'-' {
                            hit |= class[k] <= c && c <= class[k + 2];
                            k += 3;
                        } else {
                            hit |= class[k] == c;
                            k += 1;
                        }
                    }
                    if hit != neg {
                        pi = end + 1;
                        si += 1;
                        continue;
                    }
                }
                c if si < s.len() && c == s[si] && c != b'?' && c != b'[' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) if ss < s.len() => {
                star = Some((sp, ss + 1));
                pi = sp + 1;
                si = ss + 1;
            }
            _ => {
                ok = false;
                break;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn files_are_read_relative_to_the_module() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hello.txt"), "Hello World").expect("write");
        std::fs::write(dir.path().join("bin"), [0xff, 0x00]).expect("write");
        let ctx = FuncContext {
            base_dir: dir.path(),
        };
        let c = |name: &str, path: &str| call(name, vec![s(path)], &ctx);
        assert_eq!(c("file", "hello.txt").expect("file"), s("Hello World"));
        let abs = dir.path().join("hello.txt").display().to_string();
        assert_eq!(c("file", &abs).expect("absolute file"), s("Hello World"));
        assert_eq!(c("filebase64", "bin").expect("filebase64"), s("/wA="));
        assert_eq!(
            c("fileexists", "hello.txt").expect("fileexists"),
            Value::Bool(true)
        );
        assert_eq!(
            c("fileexists", "nope.txt").expect("fileexists"),
            Value::Bool(false)
        );
        assert_eq!(
            c("fileexists", "hello.txt/x").expect("fileexists"),
            Value::Bool(false)
        );

        let missing = dir.path().join("nope.txt").display().to_string();
        assert_eq!(
            c("file", "nope.txt").unwrap_err().0,
            format!("file: no file exists at `{missing}`")
        );
        let bin = dir.path().join("bin").display().to_string();
        assert_eq!(
            c("file", "bin").unwrap_err().0,
            format!(
                "file: the contents of `{bin}` are not valid UTF-8; use `filebase64` for binary files"
            )
        );
        let here = dir.path().join("").display().to_string();
        assert_eq!(
            c("fileexists", "").unwrap_err().0,
            format!("fileexists: `{here}` is a directory, not a file")
        );
        let e = c("file", "").unwrap_err().0;
        assert!(
            e.starts_with(&format!("file: cannot read `{here}`: ")),
            "{e}"
        );
    }
}
