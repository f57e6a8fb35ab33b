//! The ownership registry, after external-dns's TXT registry: each record
//! berth manages has a companion TXT record (named by
//! [`names::owner_name`](super::names::owner_name)) whose value says which
//! state and which resource address own it:
//!
//! ```text
//! _berth-owner-a.micro-search.internal. 300 TXT "berth:3f0c1a2b:aws_route53_record.search"
//! ```
//!
//! The value names berth, the state (the first 8 hex digits of its lineage)
//! and the resource address; the record type is in the owner record's name.
//! It is kept short on purpose: Route53 allows 32,000 characters of values
//! per request, and a short owner lets 500 records and their 500 owners go
//! out as one request.
//!
//! The owner record is written, changed and deleted in the same change batch
//! as its record, so Route53's all-or-nothing batches keep the two together.
//! Before creating a record over an existing one, berth reads the owner: its
//! own (same lineage and address) is adopted, anything else is refused unless
//! `allow_overwrite` is set.

/// The TTL of owner records. Fixed, so a DELETE (which must repeat the
/// record exactly) can be built without reading the record first.
pub const OWNER_TTL: i64 = 300;

/// The short form of a lineage that owner values carry.
fn short(lineage: &str) -> &str {
    let end = lineage.char_indices().nth(8).map(|(i, _)| i).unwrap_or(lineage.len());
    &lineage[..end]
}

/// Who claims a record, as read from its owner TXT value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lineage: String,
    pub address: String,
    pub rtype: String,
}

impl Owner {
    /// `lineage` may be a whole lineage or its short form; only the short
    /// form (first 8 characters) is kept.
    pub fn new(lineage: &str, address: &str, rtype: &str) -> Owner {
        Owner { lineage: short(lineage).to_string(), address: address.to_string(), rtype: rtype.to_string() }
    }

    /// The TXT value, unquoted.
    pub fn value(&self) -> String {
        format!("berth:{}:{}", self.lineage, self.address)
    }

    /// Parses an unquoted owner value; `None` when it is not one of berth's.
    /// The address may itself hold `:` or spaces (`x.y["a:b"]`), so it is
    /// everything after the lineage. The longer form berth wrote before
    /// (`berth lineage=<lineage> address=<address> type=<type>`) still
    /// reads, so the records it marked are still berth's to update and
    /// delete.
    pub fn parse(value: &str) -> Option<Owner> {
        if let Some(rest) = value.strip_prefix("berth lineage=") {
            let (lineage, rest) = rest.split_once(" address=")?;
            let (address, rtype) = rest.rsplit_once(" type=")?;
            if lineage.is_empty() || address.is_empty() || lineage.contains(' ') {
                return None;
            }
            return Some(Owner::new(lineage, address, rtype));
        }
        let rest = value.strip_prefix("berth:")?;
        let (lineage, address) = rest.split_once(':')?;
        if lineage.is_empty() || address.is_empty() || lineage.contains(' ') {
            return None;
        }
        Some(Owner::new(lineage, address, ""))
    }

    fn same_owner(&self, other: &Owner) -> bool {
        self.lineage == other.lineage && self.address == other.address
    }
}

/// What the owner record of an existing record says about it, from the
/// point of view of one resource instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No owner record.
    Unowned,
    /// Owned by this state and this address.
    Ours,
    /// Owned by this state under another address (a `moved` resource).
    SameLineage(Owner),
    /// Owned by another berth state.
    OtherState(Owner),
    /// An owner-named TXT record berth did not write.
    Unreadable(String),
}

impl Claim {
    /// Classifies the decoded value of an owner record (`None` when absent).
    pub fn of(found: Option<&str>, me: &Owner) -> Claim {
        match found {
            None => Claim::Unowned,
            Some(v) => match Owner::parse(v) {
                Some(o) if o.same_owner(me) => Claim::Ours,
                Some(o) if o.lineage == me.lineage => Claim::SameLineage(o),
                Some(o) => Claim::OtherState(o),
                None => Claim::Unreadable(v.to_string()),
            },
        }
    }

    /// Words for error messages: "is not managed by berth", "is managed by
    /// another berth state (...)".
    pub fn describe(&self) -> String {
        match self {
            Claim::Unowned | Claim::Unreadable(_) => "is not managed by berth".into(),
            Claim::Ours => "is managed by this resource".into(),
            Claim::SameLineage(o) => format!("is managed by `{}` in this state", o.address),
            Claim::OtherState(o) => {
                format!("is managed by another berth state (lineage `{}`, address `{}`)", o.lineage, o.address)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_values_round_trip_even_with_spaces_in_addresses() {
        let o = Owner::new("3f0c1a2b-9999-4444-8888-000000000000", "aws_route53_record.r[\"a: b\"]", "");
        assert_eq!(o.value(), "berth:3f0c1a2b:aws_route53_record.r[\"a: b\"]");
        assert_eq!(Owner::parse(&o.value()), Some(o));
        assert_eq!(Owner::parse("heritage=external-dns"), None);
        // The long form of earlier versions.
        let old = Owner::parse("berth lineage=3f0c1a2b-9999-4444-8888-000000000000 address=aws_route53_record.r type=A");
        assert_eq!(old.map(|o| o.value()), Some("berth:3f0c1a2b:aws_route53_record.r".to_string()));
    }

    #[test]
    fn claims() {
        let me = Owner::new("L", "aws_route53_record.a", "A");
        assert_eq!(Claim::of(None, &me), Claim::Unowned);
        assert_eq!(Claim::of(Some(&me.value()), &me), Claim::Ours);
        let moved = Owner::new("L", "aws_route53_record.b", "");
        assert_eq!(Claim::of(Some(&moved.value()), &me), Claim::SameLineage(moved));
        let other = Owner::new("M", "aws_route53_record.a", "A");
        assert!(Claim::of(Some(&other.value()), &me).describe().contains("lineage `M`"));
        assert_eq!(Claim::of(Some("hello"), &me), Claim::Unreadable("hello".into()));
    }
}
