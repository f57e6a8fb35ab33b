//! The EC2 and VPC member of the `aws` provider: schemas and dispatch.
//!
//! [`Ec2`] implements [`Provider`] for the network types (in [`network`]),
//! security groups ([`security_group`]), instances ([`instance`]) and the
//! data sources `aws_ami`, `aws_vpc` and `aws_subnet` ([`data`]). Each type's
//! module reads objects in batches, plans from normalized values and applies
//! with the smallest set of calls that gets AWS to the planned state.
//!
//! [`network`]: super::network
//! [`security_group`]: super::security_group
//! [`instance`]: super::instance
//! [`data`]: super::data

use super::common::{self, Kind};
use super::retry::Backoff;
use super::{data, instance, network, security_group};
use crate::addr::Mode;
use crate::providers::{
    ApplyOp, ApplySink, Attribute, OpContext, Planned, Provider, ProviderError, ProviderResult, Refreshed, Schema,
    apply_each,
};
use crate::value::{Map, Value};
use async_trait::async_trait;
use std::sync::LazyLock;
use std::time::Duration;

const fn arg(name: &'static str) -> Attribute {
    Attribute::arg(name)
}

pub(crate) static VPC: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("cidr_block").required().force_new(),
        arg("enable_dns_support"),
        arg("enable_dns_hostnames"),
        arg("tags"),
    ])
    .with_exported(&["id", "arn"])
});

pub(crate) static SUBNET: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("vpc_id").required().force_new(),
        arg("cidr_block").required().force_new(),
        arg("availability_zone").computed().force_new(),
        arg("map_public_ip_on_launch"),
        arg("tags"),
    ])
    .with_exported(&["id", "arn"])
});

pub(crate) static INTERNET_GATEWAY: LazyLock<Schema> =
    LazyLock::new(|| Schema::new(vec![arg("vpc_id"), arg("tags")]).with_exported(&["id", "arn"]));

pub(crate) static ROUTE_TABLE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![arg("vpc_id").required().force_new(), arg("route").block(), arg("tags")])
        .with_exported(&["id", "arn"])
});

pub(crate) static ROUTE_TABLE_ASSOCIATION: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![arg("subnet_id").required().force_new(), arg("route_table_id").required()]).with_exported(&["id"])
});

pub(crate) static SECURITY_GROUP: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("name").computed().force_new(),
        arg("description").force_new(),
        arg("vpc_id").computed().force_new(),
        arg("ingress").block(),
        arg("egress").block(),
        arg("tags"),
    ])
    .with_exported(&["id", "arn", "owner_id"])
});

pub(crate) static KEY_PAIR: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![arg("key_name").required().force_new(), arg("public_key").required().force_new(), arg("tags")])
        .with_exported(&["id", "fingerprint", "key_pair_id"])
});

pub(crate) static INSTANCE: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("ami").required().force_new(),
        arg("instance_type").required(),
        arg("subnet_id").computed().force_new(),
        arg("vpc_security_group_ids").computed(),
        arg("key_name").computed().force_new(),
        arg("user_data").force_new(),
        arg("associate_public_ip_address").computed().force_new(),
        arg("private_ip").computed().force_new(),
        arg("tags"),
        arg("timeouts").block(),
    ])
    .with_exported(&[
        "id",
        "arn",
        "public_ip",
        "private_dns",
        "public_dns",
        "instance_state",
        "availability_zone",
    ])
});

pub(crate) static DATA_AMI: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("owners"),
        arg("filter").block(),
        arg("most_recent"),
        arg("name_regex"),
        arg("executable_users"),
    ])
    .with_exported(&[
        "id",
        "arn",
        "image_id",
        "name",
        "architecture",
        "creation_date",
        "description",
        "owner_id",
        "root_device_name",
        "root_device_type",
        "virtualization_type",
        "platform_details",
        "state",
        "tags",
    ])
});

pub(crate) static DATA_VPC: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("id").computed(),
        arg("cidr_block").computed(),
        arg("default").computed(),
        arg("tags").computed(),
        arg("filter").block(),
    ])
    .with_exported(&["arn", "owner_id", "enable_dns_support", "enable_dns_hostnames", "state"])
});

pub(crate) static DATA_SUBNET: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        arg("id").computed(),
        arg("vpc_id").computed(),
        arg("cidr_block").computed(),
        arg("availability_zone").computed(),
        arg("tags").computed(),
        arg("filter").block(),
    ])
    .with_exported(&["arn", "owner_id", "map_public_ip_on_launch", "available_ip_address_count", "state"])
});

const MANAGED: &[&str] = &[
    "aws_vpc",
    "aws_subnet",
    "aws_internet_gateway",
    "aws_route_table",
    "aws_route_table_association",
    "aws_security_group",
    "aws_key_pair",
    "aws_instance",
];
const DATA: &[&str] = &["aws_ami", "aws_vpc", "aws_subnet"];

/// The EC2 member: one client, shared by every type.
pub struct Ec2 {
    pub client: aws_sdk_ec2::Client,
    pub region: String,
    pub partition: &'static str,
    /// Retries of references to objects created moments ago.
    pub eventual: Backoff,
    /// Retries of deletes blocked by dependents still going away.
    pub dependents: Backoff,
    /// Retries of a launch whose fixed private address is not released yet.
    pub address_release: Backoff,
    /// The first pause between DescribeInstances polls while waiting for a
    /// state; later pauses grow up to `poll_max`.
    pub poll: Duration,
    pub poll_max: Duration,
}

impl Ec2 {
    pub fn new(client: aws_sdk_ec2::Client, region: &str) -> Ec2 {
        Ec2 {
            client,
            region: region.to_string(),
            partition: common::partition(region),
            eventual: Backoff::EVENTUAL,
            dependents: Backoff::DEPENDENTS,
            address_release: Backoff::ADDRESS_RELEASE,
            poll: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
        }
    }

    /// True for the types this member implements, managed or data.
    pub fn handles(type_: &str) -> bool {
        MANAGED.contains(&type_) || DATA.contains(&type_)
    }

    /// `arn:PARTITION:ec2:REGION:OWNER:KIND/ID`.
    pub fn arn(&self, owner: &str, kind: &str, id: &str) -> String {
        format!("arn:{}:ec2:{}:{}:{}/{}", self.partition, self.region, owner, kind, id)
    }

    fn schema_of(&self, mode: Mode, type_: &str) -> ProviderResult<&'static Schema> {
        schema_static(mode, type_)
            .ok_or_else(|| ProviderError::new(format!("the `aws` provider has no type `{type_}`")))
    }
}

fn schema_static(mode: Mode, type_: &str) -> Option<&'static Schema> {
    Some(match (mode, type_) {
        (Mode::Managed, "aws_vpc") => &VPC,
        (Mode::Managed, "aws_subnet") => &SUBNET,
        (Mode::Managed, "aws_internet_gateway") => &INTERNET_GATEWAY,
        (Mode::Managed, "aws_route_table") => &ROUTE_TABLE,
        (Mode::Managed, "aws_route_table_association") => &ROUTE_TABLE_ASSOCIATION,
        (Mode::Managed, "aws_security_group") => &SECURITY_GROUP,
        (Mode::Managed, "aws_key_pair") => &KEY_PAIR,
        (Mode::Managed, "aws_instance") => &INSTANCE,
        (Mode::Data, "aws_ami") => &DATA_AMI,
        (Mode::Data, "aws_vpc") => &DATA_VPC,
        (Mode::Data, "aws_subnet") => &DATA_SUBNET,
        _ => return None,
    })
}

/// The configuration as the planner wants it: every value in its canonical
/// form and defaults filled in, so it compares equal to a state read back.
fn normalize(type_: &str, config: &Value) -> ProviderResult<Map> {
    let mut m = config.as_map().cloned().unwrap_or_default();
    // Only arguments of the schema are planned; anything else is the
    // engine's business (count, depends_on, lifecycle).
    if type_ != "aws_route_table_association" {
        let tags = common::normalize_tags(m.get("tags"));
        m.insert("tags".into(), tags);
    }
    let default = |m: &mut Map, k: &str, v: Value| {
        if m.get(k).is_none_or(Value::is_null) {
            m.insert(k.to_string(), v);
        }
    };
    match type_ {
        "aws_vpc" => {
            default(&mut m, "enable_dns_support", Value::Bool(true));
            default(&mut m, "enable_dns_hostnames", Value::Bool(false));
        }
        "aws_subnet" => default(&mut m, "map_public_ip_on_launch", Value::Bool(false)),
        "aws_internet_gateway" | "aws_key_pair" => {}
        "aws_route_table" => {
            let routes = network::normalize_routes(m.get("route"))?;
            m.insert("route".into(), routes);
        }
        "aws_security_group" => {
            default(&mut m, "description", Value::str("Managed by berth"));
            for dir in ["ingress", "egress"] {
                let rules = security_group::normalize_rules(dir, m.get(dir))?;
                m.insert(dir.into(), rules);
            }
        }
        "aws_instance" => {
            if m.contains_key("vpc_security_group_ids") && !m["vpc_security_group_ids"].is_null() {
                let set = common::normalize_set(m.get("vpc_security_group_ids"));
                m.insert("vpc_security_group_ids".into(), set);
            }
            if m.get("user_data").and_then(Value::as_str) == Some("") {
                m.insert("user_data".into(), Value::Null);
            }
        }
        _ => {}
    }
    Ok(m)
}

fn validate_config(mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
    use Kind::*;
    let mut errs = Vec::new();
    if !matches!(config.unmarked(), Value::Map(_)) {
        errs.push(ProviderError::new(format!("the configuration of `{type_}` must be an object")));
        return errs;
    }
    let kinds: &[(&str, Kind)] = match (mode, type_) {
        (Mode::Managed, "aws_vpc") => {
            &[("cidr_block", Str), ("enable_dns_support", Bool), ("enable_dns_hostnames", Bool), ("tags", StrMap)]
        }
        (Mode::Managed, "aws_subnet") => &[
            ("vpc_id", Str),
            ("cidr_block", Str),
            ("availability_zone", Str),
            ("map_public_ip_on_launch", Bool),
            ("tags", StrMap),
        ],
        (Mode::Managed, "aws_internet_gateway") => &[("vpc_id", Str), ("tags", StrMap)],
        (Mode::Managed, "aws_route_table") => &[("vpc_id", Str), ("route", Blocks), ("tags", StrMap)],
        (Mode::Managed, "aws_route_table_association") => &[("subnet_id", Str), ("route_table_id", Str)],
        (Mode::Managed, "aws_security_group") => &[
            ("name", Str),
            ("description", Str),
            ("vpc_id", Str),
            ("ingress", Blocks),
            ("egress", Blocks),
            ("tags", StrMap),
        ],
        (Mode::Managed, "aws_key_pair") => &[("key_name", Str), ("public_key", Str), ("tags", StrMap)],
        (Mode::Managed, "aws_instance") => &[
            ("ami", Str),
            ("instance_type", Str),
            ("subnet_id", Str),
            ("vpc_security_group_ids", StrList),
            ("key_name", Str),
            ("user_data", Str),
            ("associate_public_ip_address", Bool),
            ("private_ip", Str),
            ("tags", StrMap),
        ],
        (Mode::Data, "aws_ami") => &[
            ("owners", StrList),
            ("filter", Blocks),
            ("most_recent", Bool),
            ("name_regex", Str),
            ("executable_users", StrList),
        ],
        (Mode::Data, "aws_vpc") => {
            &[("id", Str), ("cidr_block", Str), ("default", Bool), ("tags", StrMap), ("filter", Blocks)]
        }
        (Mode::Data, "aws_subnet") => &[
            ("id", Str),
            ("vpc_id", Str),
            ("cidr_block", Str),
            ("availability_zone", Str),
            ("tags", StrMap),
            ("filter", Blocks),
        ],
        _ => return errs,
    };
    common::check_types(config, kinds, &mut errs);
    if let Some(schema) = schema_static(mode, type_) {
        for a in schema.arguments().filter(|a| a.required) {
            if config.get(a.name).is_none_or(Value::is_null) {
                errs.push(ProviderError::attr(a.name, format!("`{type_}` requires `{}`", a.name)));
            }
        }
        if let Some(m) = config.as_map() {
            for k in m.keys() {
                if schema.attribute(k).is_some() && !schema.is_argument(k) {
                    errs.push(ProviderError::attr(k, format!("`{k}` of `{type_}` is read-only: it cannot be set")));
                }
            }
        }
    }
    if mode == Mode::Managed {
        match common::tags_arg(config.get("tags").filter(|v| v.is_known())) {
            Err(e) => errs.push(e),
            Ok(tags) if tags.len() > common::max_user_tags(type_) => errs.push(ProviderError::attr(
                "tags",
                format!(
                    "`tags` has {} tags; AWS allows {} per resource and berth adds {} of its own to `{type_}` \
                     (its ownership tags), so at most {} can be set",
                    tags.len(),
                    common::AWS_TAGS_PER_RESOURCE,
                    common::berth_tag_count(type_),
                    common::max_user_tags(type_)
                ),
            )),
            Ok(_) => {}
        }
        let more = match type_ {
            "aws_vpc" | "aws_subnet" => network::validate_cidr(config),
            "aws_route_table" => network::normalize_routes(config.get("route")).err().into_iter().collect(),
            "aws_security_group" => ["ingress", "egress"]
                .into_iter()
                .filter_map(|d| security_group::normalize_rules(d, config.get(d)).err())
                .collect(),
            "aws_instance" => common::create_timeout(config, Duration::ZERO).err().into_iter().collect(),
            _ => Vec::new(),
        };
        errs.extend(more);
    } else {
        errs.extend(data::validate(type_, config));
    }
    errs
}

#[async_trait]
impl Provider for Ec2 {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        schema_static(mode, type_)
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        match mode {
            Mode::Managed => MANAGED.to_vec(),
            Mode::Data => DATA.to_vec(),
        }
    }

    fn validate(&self, mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        validate_config(mode, type_, config)
    }

    async fn refresh(&self, type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        match type_ {
            "aws_vpc" => network::refresh_vpcs(self, &items).await,
            "aws_subnet" => network::refresh_subnets(self, &items).await,
            "aws_internet_gateway" => network::refresh_igws(self, &items).await,
            "aws_route_table" => network::refresh_route_tables(self, &items).await,
            "aws_route_table_association" => network::refresh_associations(self, &items).await,
            "aws_key_pair" => network::refresh_key_pairs(self, &items).await,
            "aws_security_group" => security_group::refresh(self, &items).await,
            "aws_instance" => instance::refresh(self, &items).await,
            other => {
                let e = ProviderError::new(format!("the `aws` provider has no type `{other}`"));
                items.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let schema = self.schema_of(Mode::Managed, type_)?;
        if let Some(e) = validate_config(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        let config = normalize(type_, config)?;
        let mut planned = common::plan_generic(schema, prior, &config);
        if type_ == "aws_instance" {
            instance::refine_plan(prior, &mut planned);
        }
        Ok(planned)
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        if type_ == "aws_instance" {
            return instance::apply(self, ops, sink).await;
        }
        // Network objects have no batch calls; a few in flight at once keeps
        // well under EC2's mutation rate limits.
        apply_each(ops, sink, 8, |op| async move {
            match type_ {
                "aws_security_group" => security_group::apply_one(self, op).await,
                _ => network::apply_one(self, type_, op).await,
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Value> {
        self.schema_of(Mode::Data, type_)?;
        if let Some(e) = validate_config(Mode::Data, type_, config).into_iter().next() {
            return Err(e);
        }
        data::read(self, type_, config).await
    }

    async fn adopt(&self, ctx: &OpContext, type_: &str, config: &Value) -> ProviderResult<Option<Value>> {
        self.schema_of(Mode::Managed, type_)?;
        // The configuration stands in for the prior state: it supplies what
        // AWS cannot report back (user_data, public_key, rule grouping).
        let template = Value::Map(normalize(type_, config)?);
        // The interrupted create may have made an object that listings do
        // not show yet (EC2 is eventually consistent, and the next run may
        // start at once): concluding it made none would create a second.
        // So an object not found is looked for again, for a bounded time.
        let backoff = self.eventual.lost_answer();
        let start = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            let found = match type_ {
                "aws_security_group" => security_group::adopt(self, ctx, &template).await?,
                "aws_instance" => instance::adopt(self, ctx, &template).await?,
                _ => network::adopt(self, ctx, type_, &template).await?,
            };
            // An association carries no tags: without its configuration
            // there is nothing to look for.
            if found.is_some() || type_ == "aws_route_table_association" {
                return Ok(found);
            }
            let delay = backoff.delay(attempt);
            if start.elapsed() + delay > backoff.deadline {
                return Ok(None);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// The state to record when a create succeeded but a later step failed:
/// the planned values with the new `id`, and nothing unknown left.
pub(crate) fn partial_state(planned: &Value, id: &str) -> Value {
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    m.insert("id".into(), Value::str(id));
    Value::Map(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn every_type_has_a_schema_with_id() {
        for t in MANAGED {
            assert!(schema_static(Mode::Managed, t).unwrap().attribute("id").is_some(), "{t}");
        }
        for t in DATA {
            assert!(schema_static(Mode::Data, t).unwrap().attribute("id").is_some(), "{t}");
        }
    }

    #[test]
    fn validation_names_attributes() {
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("cidr_block", Value::Number(10.0))]));
        assert_eq!(errs[0].attribute.as_deref(), Some("cidr_block"));
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("tags", Value::Null)]));
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("cidr_block")));
        let errs = validate_config(Mode::Managed, "aws_vpc", &obj([("cidr_block", Value::str("10.0.0.0/33"))]));
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("cidr_block")), "{errs:?}");
        let errs = validate_config(
            Mode::Managed,
            "aws_instance",
            &obj([("ami", Value::str("a")), ("instance_type", Value::str("t3.micro")), ("id", Value::str("i-1"))]),
        );
        assert!(errs.iter().any(|e| e.attribute.as_deref() == Some("id")), "{errs:?}");
        // Unknown values are skipped.
        assert!(
            validate_config(
                Mode::Managed,
                "aws_subnet",
                &obj([("vpc_id", Value::Unknown), ("cidr_block", Value::Unknown)])
            )
            .is_empty()
        );
    }

    #[test]
    fn too_many_tags_are_refused_before_any_call() {
        let tags = |n: usize| Value::Map((0..n).map(|i| (format!("k{i}"), Value::str("v"))).collect());
        let vpc = |n| obj([("cidr_block", Value::str("10.0.0.0/16")), ("tags", tags(n))]);
        assert!(validate_config(Mode::Managed, "aws_vpc", &vpc(46)).is_empty());
        let errs = validate_config(Mode::Managed, "aws_vpc", &vpc(47));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].attribute.as_deref(), Some("tags"));
        assert!(errs[0].message.contains("at most 46"), "{}", errs[0].message);
        let host = |n| obj([("ami", Value::str("ami-1")), ("instance_type", Value::str("t3.micro")), ("tags", tags(n))]);
        assert!(validate_config(Mode::Managed, "aws_instance", &host(47)).is_empty());
        assert!(!validate_config(Mode::Managed, "aws_instance", &host(48)).is_empty());
    }

    #[test]
    fn a_restart_plans_new_public_addresses() {
        let prior = obj([
            ("id", Value::str("i-1")),
            ("ami", Value::str("ami-1")),
            ("instance_type", Value::str("t3.micro")),
            ("instance_state", Value::str("running")),
            ("public_ip", Value::str("54.0.0.1")),
            ("public_dns", Value::str("ec2-54-0-0-1.compute-1.amazonaws.com")),
            ("private_ip", Value::str("10.0.0.5")),
            ("tags", obj::<&str>([])),
        ]);
        let plan = |type_: &str, prior: &Value| {
            let config = normalize(
                "aws_instance",
                &obj([("ami", Value::str("ami-1")), ("instance_type", Value::str(type_))]),
            )
            .unwrap();
            let mut p = common::plan_generic(&INSTANCE, Some(prior), &config);
            instance::refine_plan(Some(prior), &mut p);
            p
        };
        let p = plan("t3.small", &prior);
        assert_eq!(p.after.get("public_ip"), Some(&Value::Unknown));
        assert_eq!(p.after.get("public_dns"), Some(&Value::Unknown));
        assert_eq!(p.after.get_str("private_ip"), Some("10.0.0.5"));
        assert_eq!(plan("t3.micro", &prior).after.get_str("public_ip"), Some("54.0.0.1"));
        let mut stopped = prior.clone();
        if let Value::Map(m) = &mut stopped {
            m.insert("instance_state".into(), Value::str("stopped"));
        }
        assert_eq!(plan("t3.micro", &stopped).after.get("public_ip"), Some(&Value::Unknown));
    }

    #[test]
    fn unknown_force_new_argument_replaces() {
        let prior = obj([
            ("id", Value::str("subnet-1")),
            ("arn", Value::str("arn")),
            ("vpc_id", Value::str("vpc-1")),
            ("cidr_block", Value::str("10.0.1.0/24")),
            ("availability_zone", Value::str("us-east-1a")),
            ("map_public_ip_on_launch", Value::Bool(false)),
            ("tags", obj::<&str>([])),
        ]);
        let config =
            normalize("aws_subnet", &obj([("vpc_id", Value::Unknown), ("cidr_block", Value::str("10.0.1.0/24"))]))
                .unwrap();
        let p = common::plan_generic(&SUBNET, Some(&prior), &config);
        assert_eq!(p.requires_replace, vec!["vpc_id".to_string()]);
        assert_eq!(p.after.get("id"), Some(&Value::Unknown));
        assert_eq!(p.after.get("availability_zone"), Some(&Value::Unknown));

        let config =
            normalize("aws_subnet", &obj([("vpc_id", Value::str("vpc-1")), ("cidr_block", Value::str("10.0.1.0/24"))]))
                .unwrap();
        let p = common::plan_generic(&SUBNET, Some(&prior), &config);
        assert!(p.requires_replace.is_empty());
        assert_eq!(p.after, prior);
    }
}
