//! YAML read back in tests, through yaml-rust2 (serde_yaml is archived):
//! one document as serde_json, so assertions index it like the JSON files.

use serde_json::{Map, Number, Value as Json};
use yaml_rust2::{Yaml, YamlLoader};

/// The single document of `text`, as JSON; panics with the text when it is
/// not YAML or holds no document.
pub fn parse(text: &str) -> Json {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    let doc = docs.into_iter().next().unwrap_or_else(|| panic!("no YAML document in:\n{text}"));
    to_json(doc)
}

fn to_json(y: Yaml) -> Json {
    match y {
        Yaml::Null | Yaml::BadValue => Json::Null,
        Yaml::Boolean(b) => Json::Bool(b),
        Yaml::Integer(i) => Json::from(i),
        Yaml::Real(r) => r.parse::<f64>().ok().and_then(Number::from_f64).map(Json::Number).unwrap_or(Json::String(r)),
        Yaml::String(s) => Json::String(s),
        Yaml::Array(a) => Json::Array(a.into_iter().map(to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s,
                    other => match to_json(other) {
                        Json::String(s) => s,
                        j => j.to_string(),
                    },
                };
                m.insert(key, to_json(v));
            }
            Json::Object(m)
        }
        Yaml::Alias(_) => panic!("YAML aliases are not expected in berth's output"),
    }
}
