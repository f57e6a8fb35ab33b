//! Health gates: `health_check { url, expect_status, timeout, interval }`.
//!
//! After a resource with a health check is created (or replaced), the apply
//! walk polls `url` until it answers `expect_status`. Only then do its
//! dependents run — the DNS records switch to the new host — and only then is
//! the old object of a create-before-destroy replacement destroyed. If the
//! check never passes, the new object is kept and marked tainted, the old one
//! and the records stay as they were, and the run fails with the reason.

use crate::config::Config;
use crate::engine::scope::World;
use crate::plan::ResourceChange;
use crate::value::Value;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    pub url: String,
    pub expect_status: u16,
    pub timeout: Duration,
    pub interval: Duration,
}

impl HealthCheck {
    /// Reads an evaluated `health_check` block; `None` when `enabled = false`.
    /// The arguments follow [`crate::config::health`]'s rules.
    pub fn from_value(v: &Value) -> Result<Option<HealthCheck>, String> {
        use crate::config::health as rules;
        if v.get("enabled").and_then(Value::as_bool) == Some(false) {
            return Ok(None);
        }
        let null = Value::Null;
        let arg = |name: &str| v.get(name).unwrap_or(&null);
        let url = rules::url(arg("url"))?.ok_or("health_check: `url` must be a string")?;
        Ok(Some(HealthCheck {
            url,
            expect_status: rules::expect_status(arg("expect_status"))?.unwrap_or(200),
            timeout: rules::duration(arg("timeout"), "timeout")?.unwrap_or(Duration::from_secs(300)),
            interval: rules::duration(arg("interval"), "interval")?.unwrap_or(Duration::from_secs(5)),
        }))
    }

    /// Polls until the URL answers the expected status, or the timeout passes.
    pub async fn wait(&self) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(self.interval.max(Duration::from_secs(1)).min(Duration::from_secs(30)))
            .build()
            .map_err(|e| format!("health check: {e}"))?;
        let start = Instant::now();
        loop {
            let last = match client.get(&self.url).send().await {
                Ok(r) if r.status().as_u16() == self.expect_status => return Ok(()),
                Ok(r) => format!("answered {}", r.status().as_u16()),
                Err(e) => format!("request failed: {}", describe(&e)),
            };
            if start.elapsed() + self.interval > self.timeout {
                return Err(format!(
                    "health check failed: GET {} did not answer {} within {} (last: {last})",
                    self.url,
                    self.expect_status,
                    humantime::format_duration(self.timeout)
                ));
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

/// The evaluated health check of a created object, if its resource has one:
/// `Err` when the block cannot be evaluated, `Some(Err)` when its values are
/// not a valid check (both fail the step).
/// `me` is the new object, which `self` names.
pub(super) fn gate(config: &Config, world: &World<'_>, c: &ResourceChange, me: Value) -> Result<Option<Result<HealthCheck, String>>, String> {
    let Some(decl) = config.resource(&c.addr.resource) else { return Ok(None) };
    let Some(block) = &decl.health_check else { return Ok(None) };
    let mut ctx = world.instance_ctx(&c.addr.resource.module, &c.addr.key, None);
    ctx.self_value = Some(me);
    let mut m = crate::value::Map::new();
    for (k, a) in &block.body.attrs {
        let v = crate::config::eval::eval(&a.expr, &ctx).map_err(|d| d.to_string())?;
        m.insert(k.clone(), v);
    }
    match HealthCheck::from_value(&Value::Map(m)) {
        Ok(Some(h)) => Ok(Some(Ok(h))),
        Ok(None) => Ok(None),
        Err(e) => Ok(Some(Err(e))),
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused or unreachable".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn reads_the_block() {
        let h = HealthCheck::from_value(&obj([("url", "http://10.0.0.1/up".into()), ("timeout", "1m".into())])).unwrap().unwrap();
        assert_eq!(h.expect_status, 200);
        assert_eq!(h.timeout, Duration::from_secs(60));
        assert_eq!(h.interval, Duration::from_secs(5));
        assert!(HealthCheck::from_value(&obj([("url", "ftp://x".into())])).is_err());
        assert_eq!(HealthCheck::from_value(&obj([("url", "http://x".into()), ("enabled", false.into())])).unwrap(), None);
    }
}
