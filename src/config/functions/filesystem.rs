//! Functions that read files relative to the calling module's directory.

use super::*;

fn resolve(ctx: &FuncContext, path: &str) -> PathBuf {
    // Joining an absolute path yields that path.
    ctx.base_dir.join(path)
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
