//! The `random` provider, spelt as Terraform's: values chosen once, at
//! create, and kept in the state until a `keepers` value (or another
//! argument) changes, which replaces them. `random_id` (bytes, shown as
//! base64url, hex and decimal), `random_string` and `random_password`
//! (characters from the classes asked for, each class's minimum met),
//! `random_integer` and `random_pet` (adjective-animal names for hosts).
//!
//! Values come from the operating system's generator through `rand`'s
//! thread-local CSPRNG. `random_password.result` is sensitive: never printed
//! in a plan, and marked sensitive in the state. Nothing exists outside the
//! state, so the provider is [`Provider::local_only`].

use super::*;
#[cfg(test)]
use crate::value::obj;
use base64::Engine;
use rand::RngExt;
use std::sync::LazyLock;

const ID: &str = "random_id";
const STRING: &str = "random_string";
const PASSWORD: &str = "random_password";
const INTEGER: &str = "random_integer";
const PET: &str = "random_pet";
const TYPES: &[&str] = &[ID, STRING, PASSWORD, INTEGER, PET];

static ID_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("byte_length").number().required().force_new(),
        Attribute::arg("prefix").force_new(),
        Attribute::arg("keepers").force_new(),
    ])
    .with_exported(&["id", "b64_url", "b64_std", "hex", "dec"])
});

/// The arguments of `random_string` and `random_password`.
fn string_args() -> Vec<Attribute> {
    [
        "length",
        "special",
        "upper",
        "lower",
        "numeric",
        "min_special",
        "min_upper",
        "min_lower",
        "min_numeric",
        "override_special",
        "keepers",
    ]
    .into_iter()
    .map(|n| if n == "length" { Attribute::arg(n).required().force_new() } else { Attribute::arg(n).force_new() })
    .collect()
}

static STRING_SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::new(string_args()).with_exported(&["id", "result"]));

static PASSWORD_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let mut s = Schema::new(string_args()).with_exported(&["id", "result"]);
    for a in s.attributes.iter_mut().filter(|a| a.name == "result") {
        a.sensitive = true;
    }
    s
});

static INTEGER_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("min").number().required().force_new(),
        Attribute::arg("max").number().required().force_new(),
        Attribute::arg("keepers").force_new(),
    ])
    .with_exported(&["id", "result"])
});

static PET_SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::new(vec![
        Attribute::arg("length").number().force_new(),
        Attribute::arg("separator").force_new(),
        Attribute::arg("prefix").force_new(),
        Attribute::arg("keepers").force_new(),
    ])
    .with_exported(&["id"])
});

/// The characters `special = true` draws from, as in Terraform.
const SPECIAL: &str = "!@#$%&*()-_=+[]{}<>:?";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const NUMERIC: &str = "0123456789";

/// berth's own word lists for `random_pet`: short, plain words that read
/// well in a host name.
const ADJECTIVES: &[&str] = &[
    "amber", "brave", "brisk", "calm", "clever", "cosy", "crisp", "daring", "eager", "fair", "fancy", "gentle", "glad",
    "golden", "grand", "happy", "hardy", "honest", "jolly", "keen", "kind", "lively", "lucky", "merry", "mighty",
    "modest", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid", "robust", "rosy", "sharp",
    "shiny", "silent", "sleek", "smart", "snappy", "solid", "steady", "sturdy", "sunny", "swift", "tidy", "trusty",
    "vivid", "warm", "wise", "witty", "zesty",
];
const ANIMALS: &[&str] = &[
    "badger", "beaver", "bison", "cobra", "condor", "crane", "dingo", "dolphin", "eagle", "falcon", "ferret", "finch",
    "gecko", "gibbon", "heron", "hornet", "ibis", "impala", "jackal", "koala", "lemur", "lynx", "magpie", "marten",
    "mole", "moose", "newt", "ocelot", "otter", "owl", "panda", "pelican", "puffin", "quail", "raven", "robin",
    "salmon", "seal", "shrew", "sloth", "stoat", "swan", "tapir", "tern", "toad", "trout", "turtle", "viper", "walrus",
    "weasel", "wombat", "wren", "yak", "zebra",
];

#[derive(Default)]
pub struct Random;

fn schema_of(type_: &str) -> Option<&'static Schema> {
    Some(match type_ {
        ID => &ID_SCHEMA,
        STRING => &STRING_SCHEMA,
        PASSWORD => &PASSWORD_SCHEMA,
        INTEGER => &INTEGER_SCHEMA,
        PET => &PET_SCHEMA,
        _ => return None,
    })
}

/// A whole number argument, when known.
fn int(config: &Value, k: &str) -> Option<f64> {
    config.get(k).and_then(Value::as_f64)
}

fn check_int(config: &Value, k: &str, min: f64, errs: &mut Vec<ProviderError>) {
    match config.get(k).map(Value::unmarked) {
        None | Some(Value::Null | Value::Unknown) => {}
        Some(Value::Number(n)) if n.fract() == 0.0 && *n >= min => {}
        Some(other) => {
            errs.push(ProviderError::attr(k, format!("`{k}` must be a whole number of at least {min}, not {other}")))
        }
    }
}

fn check_bool(config: &Value, k: &str, errs: &mut Vec<ProviderError>) {
    if let Some(v) = config.get(k).filter(|v| v.is_known() && !v.is_null())
        && v.as_bool().is_none()
    {
        errs.push(ProviderError::attr(k, format!("`{k}` must be a bool, not {}", v.type_name())));
    }
}

/// The configuration with Terraform's defaults filled in.
fn with_defaults(type_: &str, config: &Value) -> Value {
    let mut m = config.as_map().cloned().unwrap_or_default();
    let mut default = |k: &str, v: Value| {
        if m.get(k).is_none_or(Value::is_null) {
            m.insert(k.into(), v);
        }
    };
    match type_ {
        STRING | PASSWORD => {
            for k in ["special", "upper", "lower", "numeric"] {
                default(k, Value::Bool(true));
            }
            for k in ["min_special", "min_upper", "min_lower", "min_numeric"] {
                default(k, Value::Number(0.0));
            }
        }
        PET => {
            default("length", Value::Number(2.0));
            default("separator", Value::str("-"));
        }
        _ => {}
    }
    Value::Map(m)
}

/// `length` characters from the classes `config` allows, with each class's
/// minimum met, in random order.
fn random_string(config: &Value) -> ProviderResult<String> {
    let length = int(config, "length").unwrap_or(0.0) as usize;
    let on = |k: &str| config.get(k).and_then(Value::as_bool).unwrap_or(true);
    let special = config.get_str("override_special").unwrap_or(SPECIAL);
    let classes: Vec<(&str, usize)> = [
        ("upper", UPPER, "min_upper"),
        ("lower", LOWER, "min_lower"),
        ("numeric", NUMERIC, "min_numeric"),
        ("special", special, "min_special"),
    ]
    .into_iter()
    .filter(|(k, chars, _)| on(k) && !chars.is_empty())
    .map(|(_, chars, min)| (chars, int(config, min).unwrap_or(0.0) as usize))
    .collect();
    let minimum: usize = classes.iter().map(|(_, n)| n).sum();
    if classes.is_empty() {
        return Err(ProviderError::attr(
            "length",
            "no character class is allowed: set one of `upper`, `lower`, `numeric`, `special`",
        ));
    }
    if minimum > length {
        return Err(ProviderError::attr(
            "length",
            format!("`length` ({length}) is less than the minimums together ({minimum})"),
        ));
    }
    let mut rng = rand::rng();
    let pick = |chars: &str, rng: &mut rand::rngs::ThreadRng| {
        let c: Vec<char> = chars.chars().collect();
        c[rng.random_range(0..c.len())]
    };
    let mut out: Vec<char> = Vec::with_capacity(length);
    for (chars, n) in &classes {
        for _ in 0..*n {
            out.push(pick(chars, &mut rng));
        }
    }
    let all: String = classes.iter().map(|(c, _)| *c).collect();
    while out.len() < length {
        out.push(pick(&all, &mut rng));
    }
    // Fisher-Yates, so the minimums are not all at the front.
    for i in (1..out.len()).rev() {
        let j = rng.random_range(0..=i);
        out.swap(i, j);
    }
    Ok(out.into_iter().collect())
}

fn random_id(config: &Value) -> Value {
    let n = int(config, "byte_length").unwrap_or(0.0) as usize;
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    let prefix = config.get_str("prefix").unwrap_or_default();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let dec = decimal(&bytes);
    let mut m = config.as_map().cloned().unwrap_or_default();
    m.insert("id".into(), Value::str(&url));
    m.insert("b64_url".into(), Value::str(format!("{prefix}{url}")));
    m.insert(
        "b64_std".into(),
        Value::str(format!("{prefix}{}", base64::engine::general_purpose::STANDARD.encode(&bytes))),
    );
    m.insert("hex".into(), Value::str(format!("{prefix}{}", hex::encode(&bytes))));
    m.insert("dec".into(), Value::str(format!("{prefix}{dec}")));
    Value::Map(m)
}

/// The bytes as one big-endian number, in decimal (any length).
fn decimal(bytes: &[u8]) -> String {
    // Little-endian decimal digits, multiplied by 256 and added to per byte.
    let mut digits: Vec<u32> = vec![0];
    for b in bytes {
        let mut carry = u32::from(*b);
        for d in digits.iter_mut() {
            let v = *d * 256 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(carry % 10);
            carry /= 10;
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + *d as u8)).collect()
}

fn create(type_: &str, planned: &Value) -> ProviderResult<Value> {
    let mut m = planned.unknown_as_null().as_map().cloned().unwrap_or_default();
    match type_ {
        ID => return Ok(random_id(&Value::Map(m))),
        STRING | PASSWORD => {
            let s = random_string(planned)?;
            let result = if type_ == PASSWORD {
                Value::Sensitive(Box::new(Value::String(s.clone())))
            } else {
                Value::String(s.clone())
            };
            // Terraform's `random_string.id` is the result; a password's id
            // must not carry it.
            m.insert("id".into(), if type_ == PASSWORD { Value::str("none") } else { Value::String(s) });
            m.insert("result".into(), result);
        }
        INTEGER => {
            let (min, max) = (int(planned, "min").unwrap_or(0.0) as i64, int(planned, "max").unwrap_or(0.0) as i64);
            let n = rand::rng().random_range(min..=max);
            m.insert("id".into(), Value::str(n.to_string()));
            m.insert("result".into(), Value::Number(n as f64));
        }
        PET => {
            let words = int(planned, "length").unwrap_or(2.0) as usize;
            let sep = planned.get_str("separator").unwrap_or("-");
            let mut rng = rand::rng();
            let mut parts: Vec<&str> = Vec::new();
            if let Some(p) = planned.get_str("prefix").filter(|p| !p.is_empty()) {
                parts.push(p);
            }
            for _ in 1..words {
                parts.push(ADJECTIVES[rng.random_range(0..ADJECTIVES.len())]);
            }
            if words > 0 {
                parts.push(ANIMALS[rng.random_range(0..ANIMALS.len())]);
            }
            m.insert("id".into(), Value::String(parts.join(sep)));
        }
        other => return Err(ProviderError::new(format!("the `random` provider has no type `{other}`"))),
    }
    Ok(Value::Map(m))
}

#[async_trait]
impl Provider for Random {
    fn schema(&self, mode: Mode, type_: &str) -> Option<&Schema> {
        if mode == Mode::Managed { schema_of(type_) } else { None }
    }

    fn type_names(&self, mode: Mode) -> Vec<&'static str> {
        if mode == Mode::Managed { TYPES.to_vec() } else { Vec::new() }
    }

    fn local_only(&self) -> bool {
        true
    }

    fn validate(&self, _mode: Mode, type_: &str, config: &Value) -> Vec<ProviderError> {
        let mut errs = Vec::new();
        match type_ {
            ID => check_int(config, "byte_length", 1.0, &mut errs),
            STRING | PASSWORD => {
                check_int(config, "length", 1.0, &mut errs);
                for k in ["min_special", "min_upper", "min_lower", "min_numeric"] {
                    check_int(config, k, 0.0, &mut errs);
                }
                for k in ["special", "upper", "lower", "numeric"] {
                    check_bool(config, k, &mut errs);
                }
                if errs.is_empty() && config.is_known() {
                    errs.extend(random_string(&with_defaults(type_, config)).err());
                }
            }
            INTEGER => {
                for k in ["min", "max"] {
                    match config.get(k).map(Value::unmarked) {
                        None | Some(Value::Null | Value::Unknown) | Some(Value::Number(_)) => {}
                        Some(other) => {
                            errs.push(ProviderError::attr(k, format!("`{k}` must be a number, not {other}")))
                        }
                    }
                }
                if let (Some(min), Some(max)) = (int(config, "min"), int(config, "max"))
                    && min > max
                {
                    errs.push(ProviderError::attr("max", format!("`max` ({max}) is less than `min` ({min})")));
                }
            }
            PET => check_int(config, "length", 1.0, &mut errs),
            _ => {}
        }
        errs
    }

    async fn refresh(&self, _type_: &str, items: Vec<(OpContext, Value)>) -> Vec<Refreshed> {
        // Nothing outside berth holds these: the state is the truth.
        items.into_iter().map(|(_, v)| Ok(Some(v))).collect()
    }

    async fn plan(
        &self,
        _ctx: &OpContext,
        type_: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> ProviderResult<Planned> {
        let schema = schema_of(type_)
            .ok_or_else(|| ProviderError::new(format!("the `random` provider has no type `{type_}`")))?;
        if let Some(e) = self.validate(Mode::Managed, type_, config).into_iter().next() {
            return Err(e);
        }
        Ok(plan_from_schema(schema, prior, &with_defaults(type_, config)))
    }

    async fn apply(&self, type_: &str, ops: Vec<ApplyOp>, sink: ApplySink) {
        apply_each(ops, sink, 64, |op| async move {
            match op.kind {
                ChangeKind::Create { planned } => match create(type_, &planned) {
                    Ok(v) => ApplyOutcome::ok(Some(v)),
                    Err(e) => ApplyOutcome::failed(None, e),
                },
                // Every argument replaces; an update only renews what the
                // state keeps as configured.
                ChangeKind::Update { planned, .. } => ApplyOutcome::ok(Some(planned)),
                ChangeKind::Delete { .. } => ApplyOutcome::ok(None),
            }
        })
        .await
    }

    async fn read(&self, _ctx: &OpContext, type_: &str, _config: &Value) -> ProviderResult<Value> {
        Err(ProviderError::new(format!("the `random` provider has no data source `{type_}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_meet_their_minimums_and_classes() {
        let config = with_defaults(
            STRING,
            &obj([
                ("length", Value::Number(12.0)),
                ("special", Value::Bool(false)),
                ("min_numeric", Value::Number(4.0)),
                ("min_upper", Value::Number(3.0)),
            ]),
        );
        for _ in 0..50 {
            let s = random_string(&config).unwrap();
            assert_eq!(s.len(), 12);
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(s.chars().filter(|c| c.is_ascii_digit()).count() >= 4, "{s}");
            assert!(s.chars().filter(|c| c.is_ascii_uppercase()).count() >= 3, "{s}");
        }
        let impossible =
            with_defaults(STRING, &obj([("length", Value::Number(2.0)), ("min_upper", Value::Number(3.0))]));
        assert_eq!(random_string(&impossible).unwrap_err().attribute.as_deref(), Some("length"));
    }

    #[test]
    fn ids_agree_across_encodings() {
        let v = random_id(&obj([("byte_length", Value::Number(8.0)), ("prefix", Value::str("web-"))]));
        let hex = v.get_str("hex").unwrap().trim_start_matches("web-").to_string();
        let bytes = hex::decode(&hex).unwrap();
        let n = u64::from_be_bytes(bytes.try_into().unwrap());
        assert_eq!(v.get_str("dec"), Some(format!("web-{n}").as_str()));
        assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.get_str("id").unwrap()).unwrap().len(), 8);
    }

    #[test]
    fn passwords_are_sensitive_and_pets_have_their_words() {
        let p = create(PASSWORD, &with_defaults(PASSWORD, &obj([("length", Value::Number(20.0))]))).unwrap();
        assert!(matches!(p.get("result"), Some(Value::Sensitive(_))));
        assert_eq!(p.get_str("id"), Some("none"));
        assert!(PASSWORD_SCHEMA.attribute("result").unwrap().sensitive);
        let pet =
            create(PET, &with_defaults(PET, &obj([("length", Value::Number(3.0)), ("prefix", Value::str("web"))])))
                .unwrap();
        let name = pet.get_str("id").unwrap();
        assert_eq!(name.split('-').count(), 4, "{name}");
        assert!(name.starts_with("web-"));
    }
}
