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
//! - an owner value is 68 characters plus the resource address
//!   (`"berth lineage=<36-char uuid> address=aws_route53_record.r[12] type=A"`),
//!   so the 32,000-character limit binds first: about 300 new A records per
//!   request (fewer with long addresses). 500 new A records take two requests;
//! - switching records to new values (the common case: hosts replaced) is an
//!   UPSERT of the record only, because the owner record is already right:
//!   2 elements per single-value record, so 500 records switch in one request.
//!
//! Packing is greedy in order, an item (one resource's changes) is never
//! split across requests, and an item too big for any request is returned
//! apart so it can fail alone.

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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet, RrType};

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
