//! The four `dns_*` record types: their schemas, validation, and the
//! translation between berth values and DNS resource records.
//!
//! A resource is one RRset, named by `zone` (fully qualified, `internal.`)
//! and `name` (relative to the zone; empty or absent for the apex), and its
//! id is the fully qualified owner name (`micro-search.internal.`). Sets
//! (`addresses`, `txt`) are kept sorted and canonical, both when planning and
//! when reading back, so that an unchanged set never shows as a diff.

use crate::providers::ProviderError;
use crate::schema::{Attribute, Schema};
use crate::value::{Map, Value};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

/// What `ttl` is when the configuration leaves it out, as in hashicorp/dns.
pub const DEFAULT_TTL: u32 = 3600;

/// A character-string inside TXT RDATA holds at most 255 bytes; longer values
/// are split across several strings of one record and joined when read.
const TXT_CHUNK: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    A,
    Aaaa,
    Cname,
    Txt,
}

pub const TYPE_NAMES: &[&str] = &["dns_a_record_set", "dns_aaaa_record_set", "dns_cname_record", "dns_txt_record_set"];

fn record_schema(values: Attribute) -> Schema {
    Schema::new(vec![
        Attribute::arg("zone").required().force_new(),
        Attribute::arg("name").force_new(),
        values,
        Attribute::arg("ttl").number(),
    ])
    .with_exported(&["id"])
    .with_cache_ttl("ttl", DEFAULT_TTL as u64)
}

static A_SCHEMA: LazyLock<Schema> = LazyLock::new(|| record_schema(Attribute::arg("addresses").required()));
static AAAA_SCHEMA: LazyLock<Schema> = LazyLock::new(|| record_schema(Attribute::arg("addresses").required()));
static CNAME_SCHEMA: LazyLock<Schema> = LazyLock::new(|| record_schema(Attribute::arg("cname").required()));
static TXT_SCHEMA: LazyLock<Schema> = LazyLock::new(|| record_schema(Attribute::arg("txt").required()));

impl Kind {
    pub fn from_type(type_: &str) -> Option<Kind> {
        match type_ {
            "dns_a_record_set" => Some(Kind::A),
            "dns_aaaa_record_set" => Some(Kind::Aaaa),
            "dns_cname_record" => Some(Kind::Cname),
            "dns_txt_record_set" => Some(Kind::Txt),
            _ => None,
        }
    }

    pub fn schema(self) -> &'static Schema {
        match self {
            Kind::A => &A_SCHEMA,
            Kind::Aaaa => &AAAA_SCHEMA,
            Kind::Cname => &CNAME_SCHEMA,
            Kind::Txt => &TXT_SCHEMA,
        }
    }

    pub fn record_type(self) -> RecordType {
        match self {
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
            Kind::Cname => RecordType::CNAME,
            Kind::Txt => RecordType::TXT,
        }
    }

    /// The attribute holding the record data.
    pub fn values_attr(self) -> &'static str {
        match self {
            Kind::A | Kind::Aaaa => "addresses",
            Kind::Cname => "cname",
            Kind::Txt => "txt",
        }
    }
}

/// Where one resource lives: everything needed to address its RRset.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The zone, fully qualified: `internal.`.
    pub zone: String,
    /// The owner name, fully qualified: `micro-search.internal.`.
    pub fqdn: String,
}

impl Owner {
    pub fn zone_name(&self) -> Result<Name, ProviderError> {
        Name::from_ascii(&self.zone)
            .map_err(|e| ProviderError::attr("zone", format!("`zone` `{}` is not a DNS name: {e}", self.zone)))
    }
    pub fn owner_name(&self) -> Result<Name, ProviderError> {
        Name::from_ascii(&self.fqdn)
            .map_err(|e| ProviderError::attr("name", format!("`{}` is not a DNS name: {e}", self.fqdn)))
    }
}

/// The owner of a resource from its (known) `zone` and `name`. `None` when
/// either is still unknown.
pub fn owner(value: &Value) -> Result<Option<Owner>, ProviderError> {
    let zone = match value.get("zone") {
        Some(z) if z.is_unknown() => return Ok(None),
        Some(z) => z.as_str().ok_or_else(|| ProviderError::attr("zone", "`zone` must be a string"))?,
        None => return Err(ProviderError::attr("zone", "`zone` is required")),
    };
    let name = match value.get("name") {
        Some(n) if n.is_unknown() => return Ok(None),
        None => "",
        Some(n) if n.is_null() => "",
        Some(n) => n.as_str().ok_or_else(|| ProviderError::attr("name", "`name` must be a string"))?,
    };
    check_zone(zone)?;
    check_relative_name(name)?;
    let fqdn = if name.is_empty() { zone.to_string() } else { format!("{name}.{zone}") };
    if fqdn.len() - 1 > 253 {
        return Err(ProviderError::attr(
            "name",
            format!("`{fqdn}` is {} characters long; a DNS name has at most 253", fqdn.len() - 1),
        ));
    }
    Ok(Some(Owner { zone: zone.to_string(), fqdn }))
}

fn check_label(label: &str, attr: &str, whole: &str) -> Result<(), ProviderError> {
    let bad = |why: String| Err(ProviderError::attr(attr, format!("`{attr}` `{whole}` is not a valid DNS name: {why}")));
    if label.is_empty() {
        return bad("it has an empty label".into());
    }
    if label.len() > 63 {
        return bad(format!("label `{label}` is {} characters long; a label has at most 63", label.len()));
    }
    // Underscores are allowed beside letters, digits and hyphens: service
    // labels such as `_acme-challenge` are what TXT sets are mostly for.
    if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return bad(format!("label `{label}` contains `{c}`; use letters, digits and `-`"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return bad(format!("label `{label}` starts or ends with `-`"));
    }
    Ok(())
}

fn check_zone(zone: &str) -> Result<(), ProviderError> {
    let Some(bare) = zone.strip_suffix('.') else {
        return Err(ProviderError::attr(
            "zone",
            format!("`zone` must be fully qualified with a final dot: `{zone}.`, not `{zone}`"),
        ));
    };
    if bare.is_empty() {
        return Err(ProviderError::attr("zone", "`zone` cannot be the root zone `.`"));
    }
    if bare.len() > 253 {
        return Err(ProviderError::attr("zone", format!("`zone` `{zone}` is longer than 253 characters")));
    }
    bare.split('.').try_for_each(|l| check_label(l, "zone", zone))
}

fn check_relative_name(name: &str) -> Result<(), ProviderError> {
    if name.is_empty() {
        return Ok(());
    }
    if name.ends_with('.') {
        return Err(ProviderError::attr(
            "name",
            format!("`name` is relative to `zone` and must not end with a dot: `{}`", name.trim_end_matches('.')),
        ));
    }
    name.split('.').try_for_each(|l| check_label(l, "name", name))
}

fn check_fqdn_target(target: &str) -> Result<(), ProviderError> {
    let Some(bare) = target.strip_suffix('.') else {
        return Err(ProviderError::attr(
            "cname",
            format!("`cname` must be fully qualified with a final dot: `{target}.`, not `{target}`"),
        ));
    };
    if bare.is_empty() || bare.len() > 253 {
        return Err(ProviderError::attr("cname", format!("`cname` `{target}` is not a valid DNS name")));
    }
    bare.split('.').try_for_each(|l| check_label(l, "cname", target))
}

/// Checks a configuration; unknown values are skipped.
pub fn validate(kind: Kind, config: &Value) -> Vec<ProviderError> {
    let mut errs = Vec::new();
    if let Err(e) = owner(config) {
        errs.push(e);
    }
    // Both `zone` and `name` are checked even when the first already failed,
    // so one run shows every problem.
    if let Some(n) = config.get("name").filter(|n| n.is_known() && !n.is_null())
        && let Some(n) = n.as_str()
        && let Err(e) = check_relative_name(n)
        && !errs.iter().any(|x| x.attribute.as_deref() == Some("name"))
    {
        errs.push(e);
    }
    if let Some(ttl) = config.get("ttl").filter(|t| t.is_known() && !t.is_null())
        && let Err(e) = ttl_of(ttl)
    {
        errs.push(e);
    }
    let attr = kind.values_attr();
    match config.get(attr) {
        None => errs.push(ProviderError::attr(attr, format!("`{attr}` is required"))),
        Some(v) if v.is_null() => errs.push(ProviderError::attr(attr, format!("`{attr}` is required"))),
        Some(v) if v.is_unknown() => {}
        Some(v) => errs.extend(check_values(kind, v).err()),
    }
    errs
}

fn ttl_of(v: &Value) -> Result<u32, ProviderError> {
    match v.unmarked() {
        Value::Number(n) if n.fract() == 0.0 && *n >= 1.0 && *n <= i32::MAX as f64 => Ok(*n as u32),
        Value::Number(n) => Err(ProviderError::attr(
            "ttl",
            format!("`ttl` must be a whole number of seconds from 1 to {}, not {}", i32::MAX, crate::value::format_number(*n)),
        )),
        // HCL may hand a number over as a string (`ttl = "300"`).
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => ttl_of(&Value::Number(n)),
            Err(_) => Err(ProviderError::attr("ttl", format!("`ttl` must be a number, not `{s}`"))),
        },
        other => Err(ProviderError::attr("ttl", format!("`ttl` must be a number, not {}", other.type_name()))),
    }
}

/// The configured data in canonical form: sorted, deduplicated addresses in
/// their shortest spelling; sorted TXT strings; the CNAME target as given.
/// Unknown elements are kept in place (after the known ones).
fn check_values(kind: Kind, v: &Value) -> Result<Value, ProviderError> {
    let attr = kind.values_attr();
    match kind {
        Kind::Cname => match v.unmarked() {
            Value::String(s) => {
                check_fqdn_target(s)?;
                Ok(Value::String(s.clone()))
            }
            other => Err(ProviderError::attr(attr, format!("`cname` must be a string, not {}", other.type_name()))),
        },
        Kind::A | Kind::Aaaa | Kind::Txt => {
            let items = v
                .as_list()
                .ok_or_else(|| ProviderError::attr(attr, format!("`{attr}` must be a set, not {}", v.type_name())))?;
            if items.is_empty() {
                return Err(ProviderError::attr(attr, format!("`{attr}` must hold at least one value")));
            }
            let mut unknown = 0;
            let mut texts = Vec::new();
            let mut ips = Vec::new();
            for item in items {
                if item.is_unknown() {
                    unknown += 1;
                    continue;
                }
                let s = item.as_str().ok_or_else(|| {
                    ProviderError::attr(attr, format!("`{attr}` holds strings, not {}", item.type_name()))
                })?;
                match kind {
                    Kind::A => ips.push(IpAddr::V4(s.trim().parse::<Ipv4Addr>().map_err(|_| {
                        ProviderError::attr(attr, format!("`{attr}`: `{s}` is not an IPv4 address"))
                    })?)),
                    Kind::Aaaa => ips.push(IpAddr::V6(s.trim().parse::<Ipv6Addr>().map_err(|_| {
                        ProviderError::attr(attr, format!("`{attr}`: `{s}` is not an IPv6 address"))
                    })?)),
                    _ => {
                        if s.len() > 4000 {
                            return Err(ProviderError::attr(
                                attr,
                                format!("`txt`: a value of {} bytes is too long for one record (at most 4000)", s.len()),
                            ));
                        }
                        texts.push(s.to_string())
                    }
                }
            }
            ips.sort();
            ips.dedup();
            texts.sort();
            texts.dedup();
            let mut out: Vec<Value> = if kind == Kind::Txt {
                texts.into_iter().map(Value::String).collect()
            } else {
                ips.into_iter().map(|ip| Value::String(ip.to_string())).collect()
            };
            out.extend(std::iter::repeat_n(Value::Unknown, unknown));
            Ok(Value::List(out))
        }
    }
}

/// Completes a planned value: the default `ttl`, canonical sets, and the id,
/// which is known as soon as `zone` and `name` are.
pub fn normalize_planned(kind: Kind, after: &mut Map) -> Result<(), ProviderError> {
    if after.get("ttl").is_none_or(Value::is_null) {
        after.insert("ttl".into(), Value::Number(DEFAULT_TTL as f64));
    } else if let Some(t) = after.get("ttl").filter(|t| t.is_known()) {
        let ttl = ttl_of(t)?;
        after.insert("ttl".into(), Value::Number(ttl as f64));
    }
    let attr = kind.values_attr();
    if let Some(v) = after.get(attr).filter(|v| !v.is_unknown() && !v.is_null()) {
        let canon = check_values(kind, v)?;
        after.insert(attr.into(), canon);
    }
    let as_value = Value::Map(after.clone());
    let id = match owner(&as_value)? {
        Some(o) => Value::String(o.fqdn),
        None => Value::Unknown,
    };
    after.insert("id".into(), id);
    Ok(())
}

/// A fully known resource, ready to be written to the server.
#[derive(Debug, Clone)]
pub struct RecordSetSpec {
    pub owner: Owner,
    pub ttl: u32,
    pub rdata: Vec<RData>,
    /// The data in the canonical form the state keeps.
    pub values: Value,
}

/// Builds the records of a planned value. Fails when anything is unknown.
pub fn spec(kind: Kind, planned: &Value) -> Result<RecordSetSpec, ProviderError> {
    let owner = owner(planned)?.ok_or_else(|| {
        ProviderError::attr("name", "`zone` and `name` must be known before the record can be written")
    })?;
    let attr = kind.values_attr();
    let raw = planned.get(attr).filter(|v| !v.is_null()).ok_or_else(|| {
        ProviderError::attr(attr, format!("`{attr}` is required"))
    })?;
    if !raw.is_known() {
        return Err(ProviderError::attr(attr, format!("`{attr}` is still unknown at apply time")));
    }
    let values = check_values(kind, raw)?;
    let ttl = match planned.get("ttl").filter(|t| !t.is_null()) {
        None => DEFAULT_TTL,
        Some(t) if !t.is_known() => {
            return Err(ProviderError::attr("ttl", "`ttl` is still unknown at apply time"));
        }
        Some(t) => ttl_of(t)?,
    };
    let strings: Vec<&str> = match &values {
        Value::List(l) => l.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    };
    let mut rdata = Vec::with_capacity(strings.len());
    for s in strings {
        rdata.push(match kind {
            Kind::A => RData::A(A(s.parse().map_err(|_| ProviderError::attr(attr, format!("`{s}` is not an IPv4 address")))?)),
            Kind::Aaaa => {
                RData::AAAA(AAAA(s.parse().map_err(|_| ProviderError::attr(attr, format!("`{s}` is not an IPv6 address")))?))
            }
            Kind::Cname => RData::CNAME(CNAME(
                Name::from_ascii(s).map_err(|e| ProviderError::attr(attr, format!("`cname` `{s}` is not a DNS name: {e}")))?,
            )),
            Kind::Txt => {
                let chunks: Vec<&[u8]> =
                    if s.is_empty() { vec![&[][..]] } else { s.as_bytes().chunks(TXT_CHUNK).collect() };
                RData::TXT(TXT::from_bytes(chunks))
            }
        });
    }
    Ok(RecordSetSpec { owner, ttl, rdata, values })
}

/// What the server holds for one RRset: the data in canonical form and the
/// TTL. `None` when the answer holds no record of the kind at that name.
pub fn read_back(kind: Kind, fqdn: &str, answers: &[Record]) -> Option<(Value, u32)> {
    let want = fqdn.trim_end_matches('.').to_ascii_lowercase();
    let mut ttl = None;
    let mut ips = Vec::new();
    let mut texts = Vec::new();
    let mut target = None;
    for r in answers {
        if r.record_type() != kind.record_type()
            || r.name.to_ascii().trim_end_matches('.').to_ascii_lowercase() != want
        {
            continue;
        }
        ttl = Some(ttl.map_or(r.ttl, |t: u32| t.min(r.ttl)));
        match &r.data {
            RData::A(a) => ips.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => ips.push(IpAddr::V6(a.0)),
            RData::CNAME(c) => target = Some(c.0.to_ascii()),
            RData::TXT(t) => {
                let joined: Vec<u8> = t.txt_data.iter().flat_map(|c| c.iter().copied()).collect();
                texts.push(String::from_utf8_lossy(&joined).into_owned());
            }
            _ => {}
        }
    }
    let ttl = ttl?;
    ips.sort();
    ips.dedup();
    texts.sort();
    texts.dedup();
    let values = match kind {
        Kind::A | Kind::Aaaa => Value::List(ips.into_iter().map(|ip| Value::String(ip.to_string())).collect()),
        Kind::Txt => Value::List(texts.into_iter().map(Value::String).collect()),
        Kind::Cname => Value::String(target?),
    };
    Some((values, ttl))
}

/// True when two data values name the same records (CNAME targets compare
/// without regard to case, as DNS names do).
pub fn same_values(kind: Kind, a: &Value, b: &Value) -> bool {
    match kind {
        Kind::Cname => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => false,
        },
        _ => a.same_as(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::obj;

    #[test]
    fn every_record_type_names_its_ttl_for_the_drain_of_the_hosts_it_leaves() {
        for s in [&*A_SCHEMA, &*AAAA_SCHEMA, &*CNAME_SCHEMA, &*TXT_SCHEMA] {
            assert_eq!(s.cache_ttl_of(&cfg("z.", "a", &["10.0.0.1"])), Some(60));
            assert_eq!(s.cache_ttl_of(&obj([("ttl", Value::Null)])), Some(DEFAULT_TTL as u64));
        }
    }

    fn cfg(zone: &str, name: &str, addrs: &[&str]) -> Value {
        obj([
            ("zone", zone.into()),
            ("name", name.into()),
            ("addresses", Value::List(addrs.iter().map(|a| Value::from(*a)).collect())),
            ("ttl", 60i64.into()),
        ])
    }

    #[test]
    fn owner_joins_name_and_zone() {
        let o = owner(&cfg("internal.", "micro-search", &[])).unwrap().unwrap();
        assert_eq!(o.fqdn, "micro-search.internal.");
        let apex = owner(&obj([("zone", "internal.".into())])).unwrap().unwrap();
        assert_eq!(apex.fqdn, "internal.");
        let unknown = owner(&obj([("zone", "internal.".into()), ("name", Value::Unknown)])).unwrap();
        assert_eq!(unknown, None);
    }

    #[test]
    fn validation_names_each_bad_attribute() {
        let long = "a".repeat(64);
        let cases: Vec<(Value, &str, &str)> = vec![
            (cfg("internal", "x", &["10.0.0.1"]), "zone", "final dot"),
            (cfg("internal.", "x.", &["10.0.0.1"]), "name", "must not end with a dot"),
            (cfg("internal.", &long, &["10.0.0.1"]), "name", "at most 63"),
            (cfg("internal.", "a b", &["10.0.0.1"]), "name", "contains ` `"),
            (cfg("internal.", "-x", &["10.0.0.1"]), "name", "starts or ends"),
            (cfg("internal.", "x", &["10.0.0.300"]), "addresses", "`10.0.0.300` is not an IPv4"),
            (cfg("internal.", "x", &[]), "addresses", "at least one"),
        ];
        for (config, attr, needle) in cases {
            let errs = validate(Kind::A, &config);
            assert!(
                errs.iter().any(|e| e.attribute.as_deref() == Some(attr) && e.message.contains(needle)),
                "{attr}/{needle}: {errs:?}"
            );
        }
        let mut bad_ttl = cfg("internal.", "x", &["10.0.0.1"]);
        if let Value::Map(m) = &mut bad_ttl {
            m.insert("ttl".into(), Value::Number(0.0));
        }
        assert_eq!(validate(Kind::A, &bad_ttl)[0].attribute.as_deref(), Some("ttl"));
        let total = format!("{}.{}", vec!["a".repeat(60); 4].join("."), "x");
        assert!(validate(Kind::A, &cfg("internal.", &total, &["10.0.0.1"])).iter().any(|e| e.message.contains("253")));
        assert!(validate(Kind::A, &cfg("internal.", "ok", &["10.0.0.1"])).is_empty());
        let v6 = obj([("zone", "internal.".into()), ("addresses", Value::List(vec!["10.0.0.1".into()]))]);
        assert!(validate(Kind::Aaaa, &v6)[0].message.contains("not an IPv6"));
        let cname = obj([("zone", "internal.".into()), ("name", "w".into()), ("cname", "host.internal".into())]);
        assert!(validate(Kind::Cname, &cname)[0].message.contains("final dot"));
    }

    #[test]
    fn unknowns_are_not_validated() {
        let config = obj([
            ("zone", "internal.".into()),
            ("name", Value::Unknown),
            ("addresses", Value::List(vec![Value::Unknown, "10.0.0.1".into()])),
            ("ttl", Value::Unknown),
        ]);
        assert!(validate(Kind::A, &config).is_empty());
    }

    #[test]
    fn planned_sets_are_canonical_and_the_id_is_the_fqdn() {
        let mut m = cfg("internal.", "web", &["10.0.0.2", "10.0.0.10", "10.0.0.2"]).as_map().cloned().unwrap();
        m.remove("ttl");
        normalize_planned(Kind::A, &mut m).unwrap();
        assert_eq!(m["addresses"], Value::List(vec!["10.0.0.2".into(), "10.0.0.10".into()]));
        assert_eq!(m["ttl"], Value::Number(3600.0));
        assert_eq!(m["id"], Value::from("web.internal."));

        let mut v6 = obj([("zone", "internal.".into()), ("addresses", Value::List(vec!["2001:DB8:0::1".into()]))])
            .as_map()
            .cloned()
            .unwrap();
        normalize_planned(Kind::Aaaa, &mut v6).unwrap();
        assert_eq!(v6["addresses"], Value::List(vec!["2001:db8::1".into()]));
    }

    #[test]
    fn long_txt_values_split_into_chunks_and_join_back() {
        let long = "x".repeat(600);
        let planned = obj([
            ("zone", "internal.".into()),
            ("name", "_acme-challenge".into()),
            ("txt", Value::List(vec![long.clone().into(), "short".into()])),
        ]);
        let s = spec(Kind::Txt, &planned).unwrap();
        assert_eq!(s.ttl, DEFAULT_TTL);
        let records: Vec<Record> = s
            .rdata
            .iter()
            .map(|r| Record::from_rdata(s.owner.owner_name().unwrap(), 60, r.clone()))
            .collect();
        let chunks: Vec<usize> =
            s.rdata.iter().map(|r| if let RData::TXT(t) = r { t.txt_data.len() } else { 0 }).collect();
        assert_eq!(chunks, vec![1, 3]);
        let (values, ttl) = read_back(Kind::Txt, "_acme-challenge.internal.", &records).unwrap();
        assert_eq!(ttl, 60);
        assert!(values.same_as(&s.values));
    }

    #[test]
    fn unknown_data_cannot_be_written() {
        let planned = obj([("zone", "internal.".into()), ("addresses", Value::List(vec![Value::Unknown]))]);
        let err = spec(Kind::A, &planned).unwrap_err();
        assert_eq!(err.attribute.as_deref(), Some("addresses"));
    }
}
