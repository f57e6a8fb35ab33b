//! The provider families berth knows, and how to make an instance of one.
//!
//! The one place that names every implementation: the provider interface
//! ([`crate::providers`]) knows none of them, so each family imports the
//! interface and nothing imports a family but this table.

use super::{BlockSchema, Provider, ProviderError, aws, builtin, dns, local, null, random, time, tls};
use crate::value::Value;
use std::sync::Arc;

/// The provider families berth knows, by the prefix of their type names.
pub const KNOWN_PROVIDERS: &[&str] = &["aws", "berth", "dns", "local", "null", "random", "time", "tls"];

/// The block schema of a provider family; `None` for a family berth does
/// not know (configuring it reports that).
pub fn block_schema(name: &str) -> Option<&'static BlockSchema> {
    static EMPTY: BlockSchema = BlockSchema { args: &[], blocks: &[] };
    match name {
        "aws" => Some(&aws::BLOCK),
        "dns" => Some(&dns::config::BLOCK),
        "berth" | "random" | "tls" | "local" | "null" | "time" => Some(&EMPTY),
        _ => None,
    }
}

/// Builds a configured provider instance from its evaluated `provider` block
/// (an empty object when the configuration has none).
pub async fn configure(name: &str, config: &Value) -> Result<Arc<dyn Provider>, ProviderError> {
    match name {
        "aws" => Ok(Arc::new(aws::AwsProvider::from_config(config).await?)),
        "berth" => Ok(Arc::new(builtin::Builtin::default())),
        "dns" => Ok(Arc::new(dns::DnsProvider::configure(config)?)),
        "random" => Ok(Arc::new(random::Random)),
        "tls" => Ok(Arc::new(tls::Tls)),
        "local" => Ok(Arc::new(local::Local)),
        "null" => Ok(Arc::new(null::Null)),
        "time" => Ok(Arc::new(time::Time)),
        other => Err(ProviderError::new(format!(
            "unknown provider `{other}` (berth has: {})",
            KNOWN_PROVIDERS.join(", ")
        ))),
    }
}

/// A provider instance for `berth validate`: schemas and offline checks only,
/// configured with inert settings so that nothing is looked up or called.
pub async fn for_validation(name: &str) -> Result<Arc<dyn Provider>, ProviderError> {
    use crate::value::obj;
    let config = match name {
        "aws" => obj([
            ("region", Value::str("us-east-1")),
            ("access_key", Value::str("validate")),
            ("secret_key", Value::str("validate")),
            ("endpoint_url", Value::str("http://127.0.0.1:9")),
        ]),
        "dns" => obj([("update", Value::List(vec![obj([("server", Value::str("127.0.0.1"))])]))]),
        _ => Value::Map(Default::default()),
    };
    configure(name, &config).await
}
