//! `default_tags` and `ignore_tags` of the `aws` provider block, applied
//! around the members as Terraform's AWS provider does.
//!
//! The members (EC2, Route53) know one `tags` attribute: what the object
//! carries in AWS. [`AwsProvider`](super::AwsProvider) translates on the way
//! in and out, so no resource type needs to know about provider-level tags:
//!
//! - `tags` in configuration, plan and state is what the resource block
//!   says; `tags_all` (exported) is what the object carries: the default
//!   tags merged with `tags`, the resource's value winning on a conflict.
//! - A member plans, creates and updates with `tags_all` as its `tags`, so a
//!   default tag changed later is an in-place tag update like any other.
//! - On the way out, `tags_all` is what the member read; `tags` is the part
//!   of it that is not a default tag, plus every key the resource block
//!   itself sets. A tag added outside berth shows in both and is removed.
//! - A key matched by `ignore_tags` is dropped everywhere: never sent, never
//!   removed, never reported as drift.

use super::ec2::client::normalize_tags;
use crate::value::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The provider-level tag settings.
#[derive(Debug, Default, Clone)]
pub struct ProviderTags {
    /// `default_tags { tags = { ... } }`.
    pub defaults: BTreeMap<String, String>,
    /// `ignore_tags { keys = [...] }`.
    pub ignore_keys: BTreeSet<String>,
    /// `ignore_tags { key_prefixes = [...] }`.
    pub ignore_prefixes: Vec<String>,
}

/// The exported attribute holding every tag of the object.
pub const TAGS_ALL: &str = "tags_all";

fn keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_map).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

impl ProviderTags {
    /// Whether `ignore_tags` covers `key`.
    pub fn ignores(&self, key: &str) -> bool {
        self.ignore_keys.contains(key) || self.ignore_prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// A tags value without the ignored keys; anything but a map unchanged.
    fn without_ignored(&self, v: Value) -> Value {
        match v {
            Value::Map(m) => Value::Map(m.into_iter().filter(|(k, _)| !self.ignores(k)).collect()),
            other => other,
        }
    }

    /// A resource's configuration as its member plans it: `tags` is the
    /// default tags merged with the resource's own (which win).
    pub fn member_config(&self, config: &Value) -> Value {
        let Some(m) = config.as_map() else { return config.clone() };
        let mut m = m.clone();
        m.remove(TAGS_ALL);
        let merged = match normalize_tags(m.get("tags")) {
            Value::Map(own) => {
                let mut all: Map = self.defaults.iter().map(|(k, v)| (k.clone(), Value::str(v))).collect();
                all.extend(own);
                self.without_ignored(Value::Map(all))
            }
            // Unknown until apply: so is the merged map.
            other => other,
        };
        m.insert("tags".into(), merged);
        Value::Map(m)
    }

    /// A recorded state (or planned value) as its member knows it: `tags`
    /// is everything the object carries. A state written before `tags_all`
    /// existed holds it in `tags`.
    pub fn member_state(&self, v: &Value) -> Value {
        let Some(m) = v.as_map() else { return v.clone() };
        let mut m = m.clone();
        if let Some(all) = m.remove(TAGS_ALL) {
            m.insert("tags".into(), all);
        }
        Value::Map(m)
    }

    /// A member's plan, back in the provider's terms: `tags_all` is what the
    /// member planned, `tags` what the resource block says.
    pub fn planned(&self, after: Value, config: &Value) -> Value {
        let Value::Map(mut m) = after else { return after };
        let all = m.remove("tags").unwrap_or(Value::Null);
        m.insert(TAGS_ALL.into(), all);
        m.insert("tags".into(), self.without_ignored(normalize_tags(config.get("tags"))));
        Value::Map(m)
    }

    /// A state a member read or wrote, back in the provider's terms.
    /// `prior` is the state (or plan) in the provider's terms it started
    /// from: the keys its `tags` held stay visible in `tags`, and a key it
    /// held only in `tags_all` (a default tag since removed from the
    /// provider block) stays hidden, so that dropping a default tag shows
    /// as a change of `tags_all` only.
    pub fn state(&self, v: Value, prior: Option<&Value>) -> Value {
        let Value::Map(mut m) = v else { return v };
        let all = self.without_ignored(m.remove("tags").unwrap_or(Value::Null));
        let own = keys(prior.and_then(|p| p.get("tags")));
        let mut hidden: BTreeSet<String> = self.defaults.keys().cloned().collect();
        if let Some(p) = prior
            && p.get(TAGS_ALL).is_some()
        {
            hidden.extend(keys(p.get(TAGS_ALL)).into_iter().filter(|k| !own.contains(k)));
        }
        let tags = match &all {
            Value::Map(a) => Value::Map(
                a.iter()
                    .filter(|(k, _)| own.contains(*k) || !hidden.contains(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        m.insert("tags".into(), tags);
        m.insert(TAGS_ALL.into(), all);
        Value::Map(m)
    }

    /// A data source's value: ignored tags left out.
    pub fn data(&self, v: Value) -> Value {
        let Value::Map(mut m) = v else { return v };
        if let Some(t) = m.remove("tags") {
            m.insert("tags".into(), self.without_ignored(t));
        }
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    fn s(v: &str) -> Value {
        Value::str(v)
    }

    fn settings() -> ProviderTags {
        ProviderTags {
            defaults: [("env".to_string(), "prod".to_string()), ("team".to_string(), "ops".to_string())].into(),
            ignore_keys: ["kube".to_string()].into(),
            ignore_prefixes: vec!["aws:".into()],
        }
    }

    #[test]
    fn resource_tags_win_over_defaults_and_ignored_keys_are_dropped() {
        let t = settings();
        let config = obj([("cidr_block", s("10.0.0.0/16")), ("tags", obj([("team", s("web")), ("kube", s("x"))]))]);
        let member = t.member_config(&config);
        assert_eq!(member.get("tags"), Some(&obj([("env", s("prod")), ("team", s("web"))])));
        let after = t.planned(member, &config);
        assert_eq!(after.get("tags"), Some(&obj([("team", s("web"))])));
        assert_eq!(after.get(TAGS_ALL), Some(&obj([("env", s("prod")), ("team", s("web"))])));
        // No tags at all still gets the defaults.
        let config = obj([("tags", Value::Null)]);
        let after = t.planned(t.member_config(&config), &config);
        assert_eq!(after.get("tags"), Some(&obj::<&str>([])));
        assert_eq!(after.get(TAGS_ALL), Some(&obj([("env", s("prod")), ("team", s("ops"))])));
        // Unknown tags: the merged map is unknown too.
        let config = obj([("tags", Value::Unknown)]);
        assert_eq!(t.member_config(&config).get("tags"), Some(&Value::Unknown));
    }

    #[test]
    fn a_read_state_splits_into_own_and_all_tags() {
        let t = settings();
        let prior = obj([
            ("tags", obj([("Name", s("a"))])),
            (TAGS_ALL, obj([("Name", s("a")), ("env", s("prod")), ("team", s("ops"))])),
        ]);
        // AWS holds a changed default tag, an ignored tag and a tag added outside berth.
        let read = obj([(
            "tags",
            obj([
                ("Name", s("a")),
                ("env", s("staging")),
                ("team", s("ops")),
                ("kube", s("1")),
                ("aws:x", s("y")),
                ("extra", s("z")),
            ]),
        )]);
        let st = t.state(read, Some(&prior));
        assert_eq!(st.get("tags"), Some(&obj([("Name", s("a")), ("extra", s("z"))])));
        assert_eq!(
            st.get(TAGS_ALL),
            Some(&obj([("Name", s("a")), ("env", s("staging")), ("extra", s("z")), ("team", s("ops"))]))
        );
        // The member sees every tag again.
        assert_eq!(t.member_state(&st).get("tags"), st.get(TAGS_ALL));
        // A default dropped from the provider block stays out of `tags`.
        let fewer = ProviderTags { defaults: [("team".to_string(), "ops".to_string())].into(), ..settings() };
        let st = fewer.state(obj([("tags", obj([("Name", s("a")), ("env", s("prod"))]))]), Some(&prior));
        assert_eq!(st.get("tags"), Some(&obj([("Name", s("a"))])));
        // A resource tag equal to a default stays the resource's own.
        let prior = obj([("tags", obj([("env", s("prod"))])), (TAGS_ALL, obj([("env", s("prod"))]))]);
        let st = t.state(obj([("tags", obj([("env", s("prod"))]))]), Some(&prior));
        assert_eq!(st.get("tags"), Some(&obj([("env", s("prod"))])));
        // A state from before `tags_all`: its `tags` were everything.
        let old = obj([("tags", obj([("Name", s("a"))]))]);
        assert_eq!(t.member_state(&old).get("tags"), Some(&obj([("Name", s("a"))])));
    }
}
