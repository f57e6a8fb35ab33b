//! The one place berth turns AWS settings into an SDK configuration.
//!
//! The `aws` provider and the S3 state backend both load theirs through
//! [`load`], so both get the same credentials chain, `assume_role`, endpoint
//! handling and retry policy: standard mode with jittered exponential
//! backoff, `max_retries` (default [`DEFAULT_MAX_RETRIES`]) and no retry
//! quota ([`retry_partition`]).
//!
//! A leaf: it knows nothing of providers, state or configuration files.
//! Callers check their own blocks and hand over [`SdkSettings`]; the checks
//! every caller shares (a role ARN, a session duration) live here.
//!
//! Secrets (a secret key, an external id, the credentials STS hands back)
//! never reach a `Debug` output or an error message built here.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_types::retry::RetryConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Retries after the first attempt when the configuration says nothing.
/// Higher than the SDK's default of 2: a large apply meets throttling, and
/// giving up half-way costs more than waiting.
pub const DEFAULT_MAX_RETRIES: u32 = 8;

/// The most `max_retries` may ask for.
pub const MAX_RETRIES_LIMIT: u32 = 100;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The arguments of an `assume_role` block, as Terraform's AWS provider and
/// S3 backend spell them.
pub const ASSUME_ROLE_ARGS: &[&str] =
    &["role_arn", "session_name", "external_id", "duration", "policy", "policy_arns", "tags"];

/// The retry policy of every AWS client berth builds: standard mode (which
/// retries throttling, 5xx answers and dropped connections with jittered
/// exponential backoff), `max_retries` retries after the first attempt.
pub fn retry_config(max_retries: u32) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(max_retries + 1).with_max_backoff(MAX_BACKOFF)
}

/// The retry quota of a service's clients: none. The SDK's standard mode
/// also bounds retries with a token bucket of 500 per service that every
/// retry after the first of a call drains for good (5 for throttling, 10 for
/// a 503 or a dropped connection); it stops retry storms in long-lived
/// services, but in a large apply under sustained throttling it runs dry and
/// calls fail half-way with attempts left (Terraform's AWS provider met the
/// same: "retry quota exceeded"). berth is a bounded batch: `max_retries`
/// and the exponential backoff are the bounds. `name` is the service.
pub fn retry_partition(name: &'static str) -> aws_sdk_ec2::config::retry::RetryPartition {
    use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(name).token_bucket(TokenBucket::unlimited()).build()
}

/// An access key pair written in configuration. `Debug` hides the secret.
#[derive(Clone, PartialEq)]
pub struct StaticKeys {
    pub access_key: String,
    pub secret_key: String,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys").field("access_key", &self.access_key).field("secret_key", &"(sensitive)").finish()
    }
}

/// A role to assume with STS before any other call. `Debug` hides the
/// external id, which works like a shared password.
#[derive(Clone, PartialEq, Default)]
pub struct AssumeRole {
    pub role_arn: String,
    /// `None`: `berth-<unix time>`, so CloudTrail shows who acted.
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    /// `None`: STS's default of one hour.
    pub duration: Option<Duration>,
    /// An inline session policy (JSON).
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    /// Session tags.
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for AssumeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRole")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("external_id", &self.external_id.as_ref().map(|_| "(sensitive)"))
            .field("duration", &self.duration)
            .field("policy", &self.policy.as_ref().map(|_| "(set)"))
            .field("policy_arns", &self.policy_arns)
            .field("tags", &self.tags)
            .finish()
    }
}

/// Checks a role ARN: `arn:PARTITION:iam::ACCOUNT:role/NAME`. STS would
/// refuse a malformed one too, but only after a call, and emulators accept
/// anything; berth says what is wrong before any call.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| {
                    let name = name.rsplit('/').next().unwrap_or("");
                    !name.is_empty()
                        && name.len() <= 64
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
                })
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("`{arn}` is not an IAM role ARN (`arn:aws:iam::123456789012:role/NAME`)")) }
}

/// Checks a role session name: 2 to 64 of letters, digits and `+=,.@_-`.
pub fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok { Ok(()) } else { Err(format!("`{name}` must be 2 to 64 letters, digits or `+=,.@_-`")) }
}

/// Checks an external id without quoting it: 2 to 1224 of letters, digits
/// and `+=,.@:/_-`.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let ok = (2..=1224).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/_-".contains(c));
    if ok { Ok(()) } else { Err("must be 2 to 1224 letters, digits or `+=,.@:/_-`".to_string()) }
}

/// A session duration such as `1h` or `90m`: STS takes 15 minutes to 12
/// hours (the role's own maximum may be lower).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration such as `1h` or `30m`"))?;
    if d < Duration::from_secs(15 * 60) || d > Duration::from_secs(12 * 3600) || d.subsec_nanos() != 0 {
        return Err(format!("`{text}` must be whole seconds from 15m to 12h"));
    }
    Ok(d)
}

/// Everything [`load`] needs. Unset fields fall back to the SDK's own
/// resolution (environment, shared config files, SSO, instance metadata).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SdkSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// One endpoint for every service (moto serves them all on one port).
    pub endpoint_url: Option<String>,
    /// Where STS calls go for `assume_role`, when not `endpoint_url`.
    pub sts_endpoint: Option<String>,
    pub keys: Option<StaticKeys>,
    pub assume_role: Option<AssumeRole>,
    /// `None`: [`DEFAULT_MAX_RETRIES`].
    pub max_retries: Option<u32>,
}

/// Why a configuration could not be loaded. Never quotes a secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LoadError {
    #[error("no AWS region")]
    NoRegion,
    #[error("cannot assume role `{role_arn}`: {reason}")]
    AssumeRole { role_arn: String, reason: String },
}

/// Loads an SDK configuration. With `assume_role`, the role is assumed here,
/// once, so that a role berth may not assume is an error of the
/// configuration, before any plan; the clients built from the result sign
/// with the role's credentials (and renew them when they expire).
pub async fn load(s: &SdkSettings) -> Result<SdkConfig, LoadError> {
    let retry = retry_config(s.max_retries.unwrap_or(DEFAULT_MAX_RETRIES));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    if let Some(region) = &s.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &s.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &s.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(k) = &s.keys {
        loader = loader.credentials_provider(Credentials::new(
            k.access_key.clone(),
            k.secret_key.clone(),
            None,
            None,
            "berth-configuration",
        ));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(LoadError::NoRegion);
    }
    match &s.assume_role {
        None => Ok(sdk),
        Some(role) => assume(sdk, role, s.sts_endpoint.as_deref()).await,
    }
}

async fn assume(sdk: SdkConfig, role: &AssumeRole, sts_endpoint: Option<&str>) -> Result<SdkConfig, LoadError> {
    let fail = |reason: String| LoadError::AssumeRole { role_arn: role.role_arn.clone(), reason };
    check_role_arn(&role.role_arn).map_err(fail)?;
    // The STS client is built from the caller's configuration: its
    // credentials sign AssumeRole.
    let sts_conf = match sts_endpoint {
        Some(url) => sdk.clone().into_builder().endpoint_url(url).build(),
        None => sdk.clone(),
    };
    let session_name = role.session_name.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        format!("berth-{secs}")
    });
    let mut b = AssumeRoleProvider::builder(role.role_arn.clone()).session_name(session_name).configure(&sts_conf);
    if let Some(id) = &role.external_id {
        b = b.external_id(id.clone());
    }
    if let Some(d) = role.duration {
        b = b.session_length(d);
    }
    if let Some(p) = &role.policy {
        b = b.policy(p.clone());
    }
    if !role.policy_arns.is_empty() {
        b = b.policy_arns(role.policy_arns.clone());
    }
    if !role.tags.is_empty() {
        b = b.tags(role.tags.clone());
    }
    let provider = b.build().await;
    let first = provider.provide_credentials().await.map_err(|e| fail(causes(&e)))?;
    let creds = Prefetched { first: Mutex::new(Some(first)), inner: provider };
    Ok(sdk.into_builder().credentials_provider(SharedCredentialsProvider::new(creds)).build())
}

/// An error and its causes on one line (`dispatch failure: io error: ...:
/// Connection refused`), or the service's `CODE: message` when it answered,
/// without the Debug dump that `DisplayErrorContext` appends.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        // A service's refusal: its code and message say it all.
        if let Some(meta) = err.downcast_ref::<aws_smithy_types::error::ErrorMetadata>()
            && let Some(code) = meta.code()
        {
            return format!("{code}: {}", meta.message().unwrap_or("(no message)"));
        }
        let text = err.to_string();
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The assumed role's credentials: the first answer, fetched by [`load`] to
/// check the role, then fresh AssumeRole calls whenever the SDK's identity
/// cache finds them expired.
struct Prefetched {
    first: Mutex<Option<Credentials>>,
    inner: AssumeRoleProvider,
}

impl fmt::Debug for Prefetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AssumedRoleCredentials")
    }
}

impl ProvideCredentials for Prefetched {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(c) => future::ProvideCredentials::ready(Ok(c)),
            None => self.inner.provide_credentials(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_checked() {
        assert!(check_role_arn("arn:aws:iam::123456789012:role/deploy").is_ok());
        assert!(check_role_arn("arn:aws-us-gov:iam::123456789012:role/path/to/deploy").is_ok());
        for bad in [
            "deploy",
            "arn:aws:iam::12345:role/deploy",
            "arn:aws:iam::123456789012:user/deploy",
            "arn:aws:sts::123456789012:role/deploy",
            "arn:aws:iam::123456789012:role/",
        ] {
            let e = check_role_arn(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn durations_are_whole_seconds_from_15m_to_12h() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10m").is_err());
        assert!(parse_duration("13h").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("`soon`"));
    }

    #[test]
    fn debug_hides_secrets() {
        let s = SdkSettings {
            keys: Some(StaticKeys { access_key: "AKIDEXAMPLE".into(), secret_key: "s3cr3t-key".into() }),
            assume_role: Some(AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/x".into(),
                external_id: Some("shared-pass".into()),
                ..AssumeRole::default()
            }),
            ..SdkSettings::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("s3cr3t-key") && !d.contains("shared-pass"), "{d}");
        assert!(d.contains("role/x"), "{d}");
        assert!(check_external_id("bad id!").unwrap_err().find("bad id").is_none());
    }

    #[tokio::test]
    async fn load_sets_the_retry_policy_and_needs_a_region() {
        let s = SdkSettings {
            region: Some("eu-west-1".into()),
            keys: Some(StaticKeys { access_key: "a".into(), secret_key: "b".into() }),
            ..SdkSettings::default()
        };
        let sdk = load(&s).await.unwrap();
        let retry = sdk.retry_config().expect("a retry config");
        assert_eq!(retry.mode(), aws_smithy_types::retry::RetryMode::Standard);
        assert_eq!(retry.max_attempts(), DEFAULT_MAX_RETRIES + 1);
        let sdk = load(&SdkSettings { max_retries: Some(2), ..s.clone() }).await.unwrap();
        assert_eq!(sdk.retry_config().unwrap().max_attempts(), 3);
    }

    #[tokio::test]
    async fn a_malformed_role_fails_before_any_call() {
        let s = SdkSettings {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            keys: Some(StaticKeys { access_key: "a".into(), secret_key: "b".into() }),
            assume_role: Some(AssumeRole { role_arn: "deploy".into(), ..AssumeRole::default() }),
            max_retries: Some(0),
            ..SdkSettings::default()
        };
        let e = load(&s).await.unwrap_err();
        assert!(matches!(&e, LoadError::AssumeRole { role_arn, .. } if role_arn == "deploy"), "{e}");
        assert!(e.to_string().contains("is not an IAM role ARN"), "{e}");
    }
}
