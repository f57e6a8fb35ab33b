//! The `local` provider, spelt as Terraform's: `local_file` and
//! `local_sensitive_file` write a file on the machine berth runs on (a
//! Kamal `deploy.yml` fragment, the SSH key of the hosts), with the
//! permissions asked for (default `0777` and `0700` for the sensitive one,
//! as in Terraform; the process umask applies on top), directories made as
//! needed. The content is `content`, `content_base64` or `source` (a file
//! to copy); `local_sensitive_file.content` is sensitive in plan and state.
//!
//! Every argument replaces the file. A file deleted or edited outside berth
//! refreshes as gone (its content no longer matches the state's digest) and
//! is written again. The file lives outside the state, so this provider is
//! not [`Provider::local_only`]: its creates are journaled to disk first.

use super::*;
use base64::Engine;
use sha2::Digest;
use std::path::Path;
use std::sync::LazyLock;

const FILE: &str = "local_file";
const SENSITIVE_FILE: &str = "local_sensitive_file";

fn file_schema(sensitive: bool) -> Schema {
    let content = if sensitive {
        Attribute::arg("content").force_new().sensitive()
    } else {
        Attribute::arg("content").force_new()
    };
    let mut attrs = vec![
        Attribute::arg("filename").required().force_new(),
        content,
        Attribute::arg("content_base64").force_new(),
        Attribute::arg("source").force_new(),
        Attribute::arg("file_permission").force_new(),
        Attribute::arg("directory_permission").force_new(),
    ];
    if !sensitive {
        attrs.push(Attribute::arg("sensitive_content").force_new().sensitive());
    }
    if sensitive && let Some(a) = attrs.iter_mut().find(|a| a.name == "content_base64") {
        a.sensitive = true;
    }
    Schema::new(attrs).with_exported(&["id", "content_md5", "content_sha1", "content_sha256", "content_base64sha256"])
}

static FILE_SCHEMA: LazyLock<Schema> = LazyLock::new(|| file_schema(false));
static SENSITIVE_SCHEMA: LazyLock<Schema> = LazyLock::new(|| file_schema(true));

#[derive(Default)]
pub struct Local;

fn schema_of(type_: &str) -> Option<&'static Schema> {
    match type_ {
        FILE => Some(&FILE_SCHEMA),
        SENSITIVE_FILE => Some(&SENSITIVE_SCHEMA),
        _ => None,
    }
}

const CONTENT_ARGS: &[&str] = &["content", "sensitive_content", "content_base64", "source"];

fn with_defaults(type_: &str, config: &Value) -> Value {
    let mut m = config.as_map().cloned().unwrap_or_default();
    let mode = if type_ == SENSITIVE_FILE { "0700" } else { "0777" };
    for k in ["file_permission", "directory_permission"] {
        if m.get(k).is_none_or(Value::is_null) {
            m.insert(k.into(), Value::str(mode));
        }
    }
    Value::Map(m)
}

/// A permission string (`"0644"`, `"644"`) as a mode.
fn mode(v: Option<&str>, k: &str) -> ProviderResult<u32> {
    let s = v.unwrap_or("0777");
    if s.is_empty() || s.len() > 4 || !s.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(ProviderError::attr(k, format!("`{k}` must be an octal mode such as \"0644\", not `{s}`")));
    }
    u32::from_str_radix(s, 8).map_err(|e| ProviderError::attr(k, format!("`{k}`: {e}")))
}

/// The bytes the file must hold.
fn content(v: &Value) -> ProviderResult<Vec<u8>> {
    if let Some(s) = v.get("content").or_else(|| v.get("sensitive_content")).and_then(Value::as_str) {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(b) = v.get_str("content_base64") {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| ProviderError::attr("content_base64", format!("`content_base64` is not base64: {e}")));
    }
    if let Some(src) = v.get_str("source") {
        return fs_err::read(src).map_err(|e| ProviderError::attr("source", format!("cannot read `source`: {e}")));
    }
    Ok(Vec::new())
}

/// The digests Terraform exports; `id` is the SHA-1 in hex.
fn digests(bytes: &[u8]) -> Vec<(&'static str, Value)> {
    let sha1 = sha1_hex(bytes);
    let sha256 = sha2::Sha256::digest(bytes);
    vec![
        ("id", Value::str(&sha1)),
        ("content_sha1", Value::String(sha1)),
        ("content_md5", Value::String(hex::encode(md5::Md5::digest(bytes)))),
        ("content_sha256", Value::String(hex::encode(sha256))),
        ("content_base64sha256", Value::String(base64::engine::general_purpose::STANDARD.encode(sha256))),
    ]
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(bytes))
}

fn write(planned: &Value) -> ProviderResult<Value> {
    let filename =
        planned.get_str("filename").ok_or_else(|| ProviderError::attr("filename", "`filename` is required"))?;
    let bytes = content(planned)?;
    let file_mode = mode(planned.get_str("file_permission"), "file_permission")?;
    let dir_mode = mode(planned.get_str("directory_permission"), "directory_permission")?;
    let path = Path::new(filename);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)
            .map_err(|e| ProviderError::attr("filename", format!("cannot make `{}`: {e}", dir.display())))?;
    }
    // Written beside and renamed over, so a reader never sees half a file.
    let tmp =
        path.with_file_name(format!(".{}.berth-tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file")));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(file_mode)
            .open(&tmp)
            .map_err(|e| ProviderError::attr("filename", format!("cannot write `{filename}`: {e}")))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| ProviderError::attr("filename", format!("cannot write `{filename}`: {e}")))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| ProviderError::attr("filename", format!("cannot write `{filename}`: {e}")))?;
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    for (k, v) in digests(&bytes) {
        m.insert(k.into(), v);
    }
    Ok(Value::Map(m))
}

#[async_trait]
impl Provider for Local {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        if mode == Mode::Managed { schema_of(type_) } else { None }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { vec![FILE, SENSITIVE_FILE] } else { Vec::new() }
    }

    fn validate(&self, _mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        let set: Vec<&str> =
            CONTENT_ARGS.iter().copied().filter(|k| config.get(k).is_some_and(|v| !v.is_null())).collect();
        if set.len() > 1 {
            errs.push(ProviderError::attr(
                set[1],
                format!("set one of {}, not {}", CONTENT_ARGS.join(", "), set.join(" and ")),
            ));
        }
        if config.is_known() && set.is_empty() && type_ == FILE {
            errs.push(ProviderError::new(format!("`{type_}` needs `content`, `content_base64` or `source`")));
        }
        for k in ["file_permission", "directory_permission"] {
            if let Some(s) = config.get_str(k)
                && let Err(e) = mode(Some(s), k)
            {
                errs.push(e);
            }
        }
        errs
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        items
            .into_iter()
            .map(|(_, prior)| {
                let Some(name) = prior.get_str("filename") else { return Ok(None) };
                // Gone, or changed outside berth: written again.
                match std::fs::read(name) {
                    Ok(bytes) if Some(sha1_hex(&bytes).as_str()) == prior.get_str("id") => Ok(Some(prior)),
                    _ => Ok(None),
                }
            })
            .collect()
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let schema = schema_of(type_)
            .ok_or_else(|| ProviderError::new(format!("the `local` provider has no type `{type_}`")))?;
        if let Some(e) = self.validate(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        Ok(plan_from_schema(schema, prior, &with_defaults(type_, config)))
    }

    async fn apply(&self, _type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 16, |op| async move {
            match op.kind {
                ChangeKind::Create { planned } => match write(&planned) {
                    Ok(v) => ApplyOutcome::ok(Some(v)),
                    Err(e) => ApplyOutcome::failed(None, e),
                },
                ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
                ChangeKind::Delete { prior } => match prior.get_str("filename").map(std::fs::remove_file) {
                    None | Some(Ok(())) => ApplyOutcome::ok(None),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => ApplyOutcome::ok(None),
                    Some(Err(e)) => {
                        let name = prior.get_str("filename").unwrap_or_default().to_string();
                        ApplyOutcome::failed(
                            Some(prior),
                            ProviderError::attr("filename", format!("cannot delete `{name}`: {e}")),
                        )
                    }
                },
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the `local` provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn files_are_written_with_their_mode_and_digests() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join("keys/id_ed25519");
        let planned = with_defaults(
            SENSITIVE_FILE,
            &obj([("filename", Value::str(name.to_str().unwrap())), ("content", Value::str("secret\n"))]),
        );
        let st = write(&planned).unwrap();
        assert_eq!(std::fs::read_to_string(&name).unwrap(), "secret\n");
        let file_mode = std::fs::metadata(&name).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode & 0o077, 0, "a sensitive file is the owner's alone: {file_mode:o}");
        assert_eq!(st.get_str("id"), Some(sha1_hex(b"secret\n").as_str()));
        assert_eq!(st.get_str("content_md5"), Some("dd02c7c2232759874e1c205587017bed"));
        assert!(SENSITIVE_SCHEMA.attribute("content").unwrap().sensitive);
        let two = obj([("filename", Value::str("x")), ("content", Value::str("a")), ("source", Value::str("b"))]);
        assert_eq!(Local.validate(Mode::Managed, FILE, &two).len(), 1);
        assert_eq!(mode(Some("0644"), "file_permission").unwrap(), 0o644);
        assert!(mode(Some("rw-r--r--"), "file_permission").is_err());
    }
}
