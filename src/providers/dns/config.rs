//! The `dns` provider's `update { ... }` block: which server RFC 2136 updates
//! go to and the TSIG key that signs them.
//!
//! Arguments are named as in the hashicorp/dns Terraform provider so existing
//! configurations port over, and like it an argument left unset falls back to
//! an environment variable (`DNS_UPDATE_SERVER`, `DNS_UPDATE_PORT`,
//! `DNS_UPDATE_KEYNAME`, `DNS_UPDATE_KEYALGORITHM`, `DNS_UPDATE_KEYSECRET`).
//! The key secret is held in [`Secret`], whose `Debug` never shows it, and no
//! error built here quotes it.

use crate::value::Value;
use base64::Engine as _;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use std::fmt;
use std::time::Duration;

/// The names the `dns` provider block takes, held to it before it is
/// evaluated so a misspelt one is an error at its location.
pub static BLOCK: crate::providers::BlockSchema =
    crate::providers::BlockSchema { args: &[], blocks: &[("update", &UPDATE_BLOCK)] };
static UPDATE_BLOCK: crate::providers::BlockSchema = crate::providers::BlockSchema {
    args: &["server", "port", "key_name", "key_algorithm", "key_secret", "transport", "timeout", "retries"],
    blocks: &[],
};

const DEFAULT_PORT: u16 = 53;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRIES: u32 = 3;

/// Why an `update` block cannot be used. Every variant names the argument.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("provider `dns`: `update.{attr}` is not set and `{env}` is empty")]
    Missing { attr: &'static str, env: &'static str },
    #[error("provider `dns`: `update.{attr}` {reason}")]
    Invalid { attr: &'static str, reason: String },
    #[error("provider `dns`: at most one `update` block is allowed, found {0}")]
    TooManyBlocks(usize),
    #[error("provider `dns`: `update` must be a block, not {0}")]
    NotABlock(&'static str),
}

impl ConfigError {
    /// The argument the error is about, as the engine points at it.
    pub fn attribute(&self) -> Option<String> {
        match self {
            ConfigError::Missing { attr, .. } | ConfigError::Invalid { attr, .. } => Some(format!("update.{attr}")),
            ConfigError::TooManyBlocks(_) | ConfigError::NotABlock(_) => Some("update".into()),
        }
    }
}

/// How messages travel to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    /// UDP, falling back to TCP for a truncated answer.
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// Key material that must never be printed.
#[derive(Clone, PartialEq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive value)")
    }
}

/// A TSIG key (RFC 8945).
#[derive(Clone, PartialEq)]
pub struct TsigKey {
    /// The key's name as the server knows it, fully qualified (`berth-key.`).
    pub name: String,
    pub algorithm: TsigAlgorithm,
    pub secret: Secret,
}

impl TsigKey {
    /// The name as people write it in `named.conf`: without the final dot.
    pub fn display_name(&self) -> &str {
        self.name.strip_suffix('.').unwrap_or(&self.name)
    }
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The evaluated `update` block.
#[derive(Clone, PartialEq)]
pub struct UpdateConfig {
    /// Host name or address, as configured.
    pub server: String,
    pub port: u16,
    /// `None` sends unsigned updates, for servers that allow them by address.
    pub key: Option<TsigKey>,
    pub transport: Transport,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many more times to try after a timeout or a connection failure.
    pub retries: u32,
}

impl fmt::Debug for UpdateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("key", &self.key)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl UpdateConfig {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn server_display(&self) -> String {
        if self.server.contains(':') {
            format!("[{}]:{}", self.server, self.port)
        } else {
            format!("{}:{}", self.server, self.port)
        }
    }

    /// Reads the evaluated provider block (`{"update": [ {...} ]}`), falling
    /// back to the process environment for unset arguments.
    pub fn from_provider_block(block: &Value) -> Result<UpdateConfig, ConfigError> {
        Self::from_provider_block_with(block, |name| std::env::var(name).ok())
    }

    /// Like [`UpdateConfig::from_provider_block`] with the environment given
    /// as a function, so tests need not touch the process environment.
    pub fn from_provider_block_with(
        block: &Value,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<UpdateConfig, ConfigError> {
        let empty = crate::value::Map::new();
        let update = match block.get("update").map(Value::unmarked) {
            None | Some(Value::Null) => &empty,
            Some(Value::List(items)) => match items.as_slice() {
                [] => &empty,
                [one] => one.as_map().ok_or(ConfigError::NotABlock(one.type_name()))?,
                more => return Err(ConfigError::TooManyBlocks(more.len())),
            },
            // Accept an object too: `update = { ... }` reads the same.
            Some(Value::Map(m)) => m,
            Some(other) => return Err(ConfigError::NotABlock(other.type_name())),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let arg = |attr: &'static str, env_name: Option<&'static str>| -> Result<Option<String>, ConfigError> {
            match update.get(attr) {
                Some(v) if !v.is_null() => scalar_text(attr, v).map(Some),
                _ => Ok(env_name.and_then(&env)),
            }
        };

        let server = arg("server", Some("DNS_UPDATE_SERVER"))?
            .ok_or(ConfigError::Missing { attr: "server", env: "DNS_UPDATE_SERVER" })?;
        let server = server.trim().trim_start_matches('[').trim_end_matches(']').to_string();
        if server.is_empty() || server.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(ConfigError::Invalid {
                attr: "server",
                reason: format!("`{server}` is not a host name or address"),
            });
        }

        let port = match arg("port", Some("DNS_UPDATE_PORT"))? {
            None => DEFAULT_PORT,
            Some(p) => p.trim().parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| ConfigError::Invalid {
                attr: "port",
                reason: format!("must be a port number from 1 to 65535, not `{p}`"),
            })?,
        };

        let key_name = arg("key_name", Some("DNS_UPDATE_KEYNAME"))?;
        let key_algorithm = arg("key_algorithm", Some("DNS_UPDATE_KEYALGORITHM"))?;
        let key_secret = arg("key_secret", Some("DNS_UPDATE_KEYSECRET"))?;
        let key = match (key_name, key_secret) {
            (None, None) => {
                if key_algorithm.is_some() {
                    return Err(ConfigError::Invalid {
                        attr: "key_algorithm",
                        reason: "is set but `key_name` and `key_secret` are not".into(),
                    });
                }
                None
            }
            (Some(_), None) => {
                return Err(ConfigError::Missing { attr: "key_secret", env: "DNS_UPDATE_KEYSECRET" });
            }
            (None, Some(_)) => return Err(ConfigError::Missing { attr: "key_name", env: "DNS_UPDATE_KEYNAME" }),
            (Some(name), Some(secret)) => Some(TsigKey {
                name: key_name_fqdn(&name)?,
                algorithm: parse_algorithm(key_algorithm.as_deref())?,
                secret: decode_secret(&secret)?,
            }),
        };

        let transport = match arg("transport", None)?.map(|t| t.trim().to_ascii_lowercase()) {
            None => Transport::Tcp,
            Some(t) if t == "tcp" => Transport::Tcp,
            Some(t) if t == "udp" => Transport::Udp,
            Some(t) => {
                return Err(ConfigError::Invalid {
                    attr: "transport",
                    reason: format!("must be `tcp` or `udp`, not `{t}`"),
                });
            }
        };

        let timeout = match arg("timeout", None)? {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_timeout(&t)?,
        };

        let retries = match arg("retries", None)? {
            None => DEFAULT_RETRIES,
            Some(r) => r.trim().parse::<u32>().ok().filter(|r| *r <= 100).ok_or_else(|| ConfigError::Invalid {
                attr: "retries",
                reason: format!("must be a whole number from 0 to 100, not `{r}`"),
            })?,
        };

        Ok(UpdateConfig { server, port, key, transport, timeout, retries })
    }
}

/// The text of a string or number argument. Never quotes the value in an
/// error: it may be the secret.
fn scalar_text(attr: &'static str, v: &Value) -> Result<String, ConfigError> {
    match v.unmarked() {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(crate::value::format_number(*n)),
        Value::Unknown => Err(ConfigError::Invalid {
            attr,
            reason: "must be known when the provider is configured, not computed during apply".into(),
        }),
        other => Err(ConfigError::Invalid { attr, reason: format!("must be a string, not {}", other.type_name()) }),
    }
}

fn key_name_fqdn(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    let bare = name.strip_suffix('.').unwrap_or(name);
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !ok {
        return Err(ConfigError::Invalid {
            attr: "key_name",
            reason: format!("`{name}` is not a valid key name (letters, digits, `-`, `_` and dots)"),
        });
    }
    Ok(format!("{bare}."))
}

fn parse_algorithm(alg: Option<&str>) -> Result<TsigAlgorithm, ConfigError> {
    let Some(alg) = alg else { return Ok(TsigAlgorithm::HmacSha256) };
    let norm = alg.trim().trim_end_matches('.').to_ascii_lowercase();
    match norm.as_str() {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        "hmac-md5" | "hmac-md5.sig-alg.reg.int" | "hmac-sha1" | "hmac-sha224" => Err(ConfigError::Invalid {
            attr: "key_algorithm",
            reason: format!("`{alg}` is not supported: use `hmac-sha256`, `hmac-sha384` or `hmac-sha512`"),
        }),
        _ => Err(ConfigError::Invalid {
            attr: "key_algorithm",
            reason: format!("`{alg}` is not a TSIG algorithm: use `hmac-sha256`, `hmac-sha384` or `hmac-sha512`"),
        }),
    }
}

fn decode_secret(secret: &str) -> Result<Secret, ConfigError> {
    // BIND's key files sometimes wrap the secret; whitespace is not part of it.
    let compact: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ConfigError::Invalid { attr: "key_secret", reason: "is not valid base64".into() })?;
    if bytes.is_empty() {
        return Err(ConfigError::Invalid { attr: "key_secret", reason: "is empty".into() });
    }
    Ok(Secret(bytes))
}

/// `10`, `10s`, `500ms`, `1m`: a plain number is seconds, as in hashicorp/dns.
fn parse_timeout(t: &str) -> Result<Duration, ConfigError> {
    let t = t.trim();
    let parsed = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => Some(Duration::from_secs_f64(secs)),
        Ok(_) => None,
        Err(_) => humantime::parse_duration(t).ok().filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600)),
    };
    parsed.ok_or_else(|| ConfigError::Invalid {
        attr: "timeout",
        reason: format!("must be a duration between 1ms and 1h such as `10s` or `500ms`, not `{t}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;
    use std::collections::HashMap;

    const SECRET: &str = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs=";

    fn block(items: Vec<(&str, Value)>) -> Value {
        obj([("update", Value::List(vec![obj(items)]))])
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn reads_a_full_block_with_defaults() {
        let cfg = UpdateConfig::from_provider_block_with(
            &block(vec![
                ("server", "127.0.0.1".into()),
                ("key_name", "berth-key".into()),
                ("key_secret", Value::Sensitive(Box::new(SECRET.into()))),
            ]),
            no_env,
        )
        .unwrap();
        assert_eq!(cfg.port, 53);
        assert_eq!(cfg.transport, Transport::Tcp);
        assert_eq!(cfg.timeout, Duration::from_secs(10));
        let key = cfg.key.as_ref().unwrap();
        assert_eq!(key.name, "berth-key.");
        assert_eq!(key.display_name(), "berth-key");
        assert_eq!(key.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(cfg.server_display(), "127.0.0.1:53");
    }

    #[test]
    fn falls_back_to_the_environment() {
        let env: HashMap<&str, &str> = [
            ("DNS_UPDATE_SERVER", "::1"),
            ("DNS_UPDATE_PORT", "5353"),
            ("DNS_UPDATE_KEYNAME", "k."),
            ("DNS_UPDATE_KEYALGORITHM", "HMAC-SHA512."),
            ("DNS_UPDATE_KEYSECRET", SECRET),
        ]
        .into();
        let cfg = UpdateConfig::from_provider_block_with(&obj::<&str>([]), |n| env.get(n).map(|s| s.to_string()))
            .unwrap();
        assert_eq!(cfg.server_display(), "[::1]:5353");
        assert_eq!(cfg.key.unwrap().algorithm, TsigAlgorithm::HmacSha512);

        // An argument wins over its variable.
        let cfg = UpdateConfig::from_provider_block_with(&block(vec![("port", 1053i64.into())]), |n| {
            env.get(n).map(|s| s.to_string())
        })
        .unwrap();
        assert_eq!(cfg.port, 1053);
    }

    #[test]
    fn errors_name_the_argument_and_never_the_secret() {
        let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
            (vec![], "update.server"),
            (vec![("server", "h".into()), ("port", "99999".into())], "update.port"),
            (vec![("server", "h".into()), ("key_name", "k".into())], "update.key_secret"),
            (
                vec![("server", "h".into()), ("key_name", "k".into()), ("key_secret", "not base64!!".into())],
                "update.key_secret",
            ),
            (
                vec![
                    ("server", "h".into()),
                    ("key_name", "k".into()),
                    ("key_secret", SECRET.into()),
                    ("key_algorithm", "hmac-sha1".into()),
                ],
                "update.key_algorithm",
            ),
            (vec![("server", "h".into()), ("transport", "quic".into())], "update.transport"),
            (vec![("server", "h".into()), ("timeout", "soon".into())], "update.timeout"),
            (vec![("server", Value::Unknown)], "update.server"),
        ];
        for (items, attr) in cases {
            let err = UpdateConfig::from_provider_block_with(&block(items), no_env).unwrap_err();
            assert_eq!(err.attribute().as_deref(), Some(attr), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{attr}`")), "{msg}");
            assert!(!msg.contains(SECRET) && !msg.contains("not base64!!"), "{msg}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let cfg = UpdateConfig::from_provider_block_with(
            &block(vec![("server", "h".into()), ("key_name", "k".into()), ("key_secret", SECRET.into())]),
            no_env,
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        let raw = String::from_utf8_lossy(cfg.key.as_ref().unwrap().secret.bytes()).to_string();
        assert!(!shown.contains(SECRET) && !shown.contains(&raw), "{shown}");
        assert!(shown.contains("(sensitive value)"), "{shown}");
    }

    #[test]
    fn timeouts_accept_numbers_and_durations() {
        for (t, d) in [("5", Duration::from_secs(5)), ("500ms", Duration::from_millis(500)), ("1m", Duration::from_secs(60))] {
            let cfg =
                UpdateConfig::from_provider_block_with(&block(vec![("server", "h".into()), ("timeout", t.into())]), no_env)
                    .unwrap();
            assert_eq!(cfg.timeout, d);
        }
    }
}
