//! `berth fmt`: rewrite `*.hcl` and `*.tf` files in the canonical format.

use super::*;
use crate::cli::FmtArgs;
use std::path::Path;

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs_err::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if p.is_file() && p.extension().is_some_and(|e| e == "hcl" || e == "tf") && !hidden {
                out.push(p);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

pub fn run(env: &Env, args: &FmtArgs) -> CmdResult {
    let mut files = Vec::new();
    let roots = if args.paths.is_empty() { vec![env.dir.clone()] } else { args.paths.clone() };
    for r in &roots {
        collect(r, &mut files).map_err(|e| err(format!("cannot read `{}`: {e}", r.display())))?;
    }
    let mut diags = Diagnostics::new();
    let mut unformatted = 0;
    for f in files {
        let name = f.strip_prefix("./").unwrap_or(&f).display().to_string();
        let text = match fs_err::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::error(e.to_string()));
                continue;
            }
        };
        let formatted = match crate::config::fmt::format_source(&text) {
            Ok(s) => s,
            Err(e) => {
                let file = crate::diag::SourceFile::new(&f, name.clone(), text.clone());
                let span = crate::diag::Span::new(&file, e.offset..e.offset + 1);
                diags.push(Diagnostic::error(format!("syntax error: {}", e.message)).at(Some(span)));
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted += 1;
        print(&format!("{name}\n"));
        if args.diff {
            print(&crate::inventory::unified_diff(&name, &text, &formatted));
        }
        if !args.check {
            write_keeping_mode(&f, &formatted).map_err(|e| err(format!("cannot write `{name}`: {e}")))?;
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(if args.check && unformatted > 0 { 1 } else { 0 })
}

fn write_keeping_mode(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(content.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
