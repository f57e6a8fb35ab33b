//! Packs record changes into as few ChangeResourceRecordSets requests as
//! Route53's documented limits allow. A request may hold at most 1000
//! `ResourceRecord` elements, and the `Value` elements of a request may add
//! up to at most 32,000 characters; in both counts an UPSERT counts twice
//! (it is a delete and a create). The number of `Change` elements itself is
//! not limited any more.
//!
//! What that means for berth, whose every managed record travels with its
//! ownership TXT record (see the registry module):
//! - creating N single-value records is 2N elements, so up to 500 records
//!   fit the element limit of one request;
//! - an owner value is about 15 characters plus the resource address
//!   (`berth:3f0c1a2b:aws_route53_record.r[12]`, quoted), so 500 new A
//!   records and their owners stay under 32,000 characters: one request;
//! - switching records to new values (the common case: hosts replaced) is an
//!   UPSERT of the record only, because the owner record is already right:
//!   2 elements per single-value record, so 500 records switch in one request.
//!
//! Packing is greedy in order, an item (one resource's changes) is never
//! split across requests, and an item too big for any request is returned
//! apart so it can fail alone.
//!
//! A request is transactional: Route53 validates every change against the
//! zone and makes all of them or none. When one change is refused (a CREATE
//! of a set that exists, a DELETE of one that is gone or whose TTL or
//! values differ), the whole request fails with `InvalidChangeBatch` and one
//! message per refused change, naming it:
//! `Tried to create resource record set [name='x.internal.', type='A'] but
//! it already exists`. [`refusals`] reads those messages back, so the
//! changes at fault can be settled and the rest sent again.

use aws_sdk_route53::types::{Change, ChangeAction};

pub const MAX_ELEMENTS: usize = 1000;
pub const MAX_VALUE_CHARS: usize = 32_000;

/// The size of a change, or of several, as Route53 counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Weight {
    pub elements: usize,
    pub chars: usize,
}

impl Weight {
    pub fn of_change(change: &Change) -> Weight {
        let factor = if *change.action() == ChangeAction::Upsert { 2 } else { 1 };
        let records = change.resource_record_set().map(|r| r.resource_records()).unwrap_or_default();
        Weight {
            elements: records.len() * factor,
            chars: records.iter().map(|r| r.value().chars().count()).sum::<usize>() * factor,
        }
    }

    pub fn of_changes(changes: &[Change]) -> Weight {
        changes.iter().map(Weight::of_change).fold(Weight::default(), Weight::plus)
    }

    pub fn plus(self, other: Weight) -> Weight {
        Weight { elements: self.elements + other.elements, chars: self.chars + other.chars }
    }

    pub fn fits(self) -> bool {
        self.elements <= MAX_ELEMENTS && self.chars <= MAX_VALUE_CHARS
    }
}

/// Splits `items` into requests. Returns the requests and the items that do
/// not fit even alone.
pub fn pack<T>(items: Vec<(T, Weight)>) -> (Vec<Vec<T>>, Vec<(T, Weight)>) {
    let mut requests: Vec<Vec<T>> = Vec::new();
    let mut too_big = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut load = Weight::default();
    for (item, w) in items {
        if !w.fits() {
            too_big.push((item, w));
            continue;
        }
        if !load.plus(w).fits() {
            requests.push(std::mem::take(&mut current));
            load = Weight::default();
        }
        load = load.plus(w);
        current.push(item);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    (requests, too_big)
}

/// Why Route53 refused one change of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// A CREATE of a set that exists.
    Exists,
    /// A DELETE of a set that is not there.
    NotFound,
    /// A DELETE whose TTL or values are not the set's.
    Mismatch,
    /// Anything else Route53 says about one named change.
    Other(String),
}

/// One refused change, as Route53's message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `CREATE`, `DELETE`, `UPSERT`; `None` when the message does not say.
    pub action: Option<ChangeAction>,
    /// As in the message (`x.internal.`); compare through `names::from_api`.
    pub name: String,
    pub rtype: Option<String>,
    pub why: Why,
}

/// Reads the refused changes out of the messages of an `InvalidChangeBatch`
/// (or an `InvalidInput` that names its change). Returns `None` when some
/// message names no change (a limit exceeded, an unknown wording): then the
/// caller cannot tell which changes are at fault.
pub fn refusals(messages: &[String]) -> Option<Vec<Refusal>> {
    let mut out = Vec::new();
    for m in messages {
        let before = out.len();
        let mut rest = m.as_str();
        // `Tried to create resource record set [name='N', type='T'] but it already exists`
        while let Some(i) = rest.find("Tried to ") {
            rest = &rest[i + "Tried to ".len()..];
            let action = if rest.starts_with("create ") {
                ChangeAction::Create
            } else if rest.starts_with("delete ") {
                ChangeAction::Delete
            } else {
                continue;
            };
            let Some(name) = quoted(rest, "name='") else { continue };
            let rtype = quoted(rest, "type='");
            let end = rest.find("Tried to ").unwrap_or(rest.len());
            let tail = &rest[..end];
            let why = if tail.contains("already exists") {
                Why::Exists
            } else if tail.contains("was not found") {
                Why::NotFound
            } else if tail.contains("do not match") {
                Why::Mismatch
            } else {
                Why::Other(tail.trim_end_matches([',', ' ', ']']).to_string())
            };
            out.push(Refusal { action: Some(action), name, rtype, why });
        }
        // `... in Change with [Action=DELETE, Name=x.internal., Type=A, SetIdentifier=null]`
        if out.len() == before
            && let Some(i) = m.find("Change with [Action=")
        {
            let c = &m[i..];
            let field = |k: &str| {
                let from = c.find(k)? + k.len();
                let to = c[from..].find([',', ']']).map(|n| from + n).unwrap_or(c.len());
                Some(c[from..to].trim().to_string())
            };
            if let Some(name) = field("Name=") {
                let action = field("Action=").map(|a| ChangeAction::from(a.as_str()));
                out.push(Refusal { action, name, rtype: field("Type="), why: Why::Other(m.clone()) });
            }
        }
        // `RRSet of type CNAME with DNS name x.internal. is not permitted ...`
        if out.len() == before
            && let Some(i) = m.find("DNS name ")
        {
            let name: String = m[i + "DNS name ".len()..].split_whitespace().next().unwrap_or("").to_string();
            let rtype = m.find("of type ").and_then(|j| m[j + "of type ".len()..].split_whitespace().next()).map(str::to_string);
            if !name.is_empty() {
                out.push(Refusal { action: None, name, rtype, why: Why::Other(m.trim_matches(['[', ']']).to_string()) });
            }
        }
        if out.len() == before {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The text between `key` (`name='`) and the next `'`.
fn quoted(s: &str, key: &str) -> Option<String> {
    let from = s.find(key)? + key.len();
    let len = s[from..].find('\'')?;
    Some(s[from..from + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};

    #[test]
    fn refusals_name_each_change_at_fault() {
        let one = "[Tried to create resource record set [name='a.internal.', type='A'] but it already exists, \
                   Tried to delete resource record set [name='\\052.b.internal.', type='TXT'] but the values provided \
                   do not match the current values, Tried to delete resource record set [name='c.internal.', \
                   type='AAAA'] but it was not found]";
        let r = refusals(&[one.to_string()]).unwrap();
        let got: Vec<_> = r.iter().map(|r| (r.action.clone().unwrap(), r.name.as_str(), r.rtype.as_deref(), r.why.clone())).collect();
        assert_eq!(
            got,
            vec![
                (ChangeAction::Create, "a.internal.", Some("A"), Why::Exists),
                (ChangeAction::Delete, "\\052.b.internal.", Some("TXT"), Why::Mismatch),
                (ChangeAction::Delete, "c.internal.", Some("AAAA"), Why::NotFound),
            ]
        );
        // The older shape: one message per change.
        let listed = vec![
            "Tried to create resource record set [name='a.internal.', type='A'] but it already exists".to_string(),
            "Tried to delete resource record set [name='c.internal.', type='A'] but it was not found".to_string(),
        ];
        assert_eq!(refusals(&listed).unwrap().len(), 2);
        let input = "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or \
                     TrafficPolicyInstanceId], but found none in Change with [Action=DELETE, Name=d.internal., Type=A, \
                     SetIdentifier=null]";
        let r = refusals(&[input.to_string()]).unwrap();
        assert_eq!((r[0].action.clone(), r[0].name.as_str(), r[0].rtype.as_deref()), (Some(ChangeAction::Delete), "d.internal.", Some("A")));
        let cname = "[RRSet of type CNAME with DNS name www.internal. is not permitted as it conflicts with other records with the same DNS name in zone internal.]";
        let r = refusals(&[cname.to_string()]).unwrap();
        assert_eq!((r[0].action.clone(), r[0].name.as_str(), r[0].rtype.as_deref()), (None, "www.internal.", Some("CNAME")));
        // A message naming no change: the culprits are unknown.
        assert_eq!(refusals(&["[Number of records limit of 1000 exceeded.]".to_string()]), None);
        assert_eq!(refusals(&[]), None);
    }

    fn change(action: ChangeAction, values: &[&str]) -> Change {
        let mut set = ResourceRecordSet::builder().name("x.internal").r#type(RrType::A).ttl(300);
        for v in values {
            set = set.resource_records(ResourceRecord::builder().value(*v).build().unwrap());
        }
        Change::builder().action(action).resource_record_set(set.build().unwrap()).build().unwrap()
    }

    #[test]
    fn upsert_counts_twice() {
        let w = Weight::of_change(&change(ChangeAction::Upsert, &["10.0.0.1", "10.0.0.22"]));
        assert_eq!(w, Weight { elements: 4, chars: 2 * (8 + 9) });
        let w = Weight::of_change(&change(ChangeAction::Create, &["10.0.0.1"]));
        assert_eq!(w, Weight { elements: 1, chars: 8 });
    }

    #[test]
    fn five_hundred_pairs_fill_exactly_one_request_by_elements() {
        let items: Vec<(usize, Weight)> = (0..500).map(|i| (i, Weight { elements: 2, chars: 20 })).collect();
        let (reqs, big) = pack(items);
        assert_eq!(reqs.len(), 1);
        assert!(big.is_empty());
        let items: Vec<(usize, Weight)> = (0..501).map(|i| (i, Weight { elements: 2, chars: 20 })).collect();
        let (reqs, _) = pack(items);
        assert_eq!(reqs.iter().map(Vec::len).collect::<Vec<_>>(), vec![500, 1]);
    }

    #[test]
    fn characters_bind_too_and_oversized_items_stand_apart() {
        let items: Vec<(usize, Weight)> = (0..10).map(|i| (i, Weight { elements: 2, chars: 10_000 })).collect();
        let (reqs, _) = pack(items);
        assert_eq!(reqs.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
        let (reqs, big) = pack(vec![(0, Weight { elements: 1001, chars: 1 }), (1, Weight { elements: 1, chars: 1 })]);
        assert_eq!(reqs, vec![vec![1]]);
        assert_eq!(big.len(), 1);
    }
}
