//! The ownership registry, after external-dns's TXT registry: each record
//! berth manages has a companion TXT record (named by
//! [`names::owner_name`](super::names::owner_name)) whose value says which
//! state and which resource address own it:
//!
//! ```text
//! _berth-owner-a.micro-search.internal. 300 TXT "berth lineage=3f0c… address=aws_route53_record.search type=A"
//! ```
//!
//! The owner record is written, changed and deleted in the same change batch
//! as its record, so Route53's all-or-nothing batches keep the two together.
//! Before creating a record over an existing one, berth reads the owner: its
//! own (same lineage and address) is adopted, anything else is refused unless
//! `allow_overwrite` is set.

/// The TTL of owner records. Fixed, so a DELETE (which must repeat the
/// record exactly) can be built without reading the record first.
pub const OWNER_TTL: i64 = 300;

/// Who claims a record, as read from its owner TXT value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lineage: String,
    pub address: String,
    pub rtype: String,
}

impl Owner {
    pub fn new(lineage: &str, address: &str, rtype: &str) -> Owner {
        Owner { lineage: lineage.to_string(), address: address.to_string(), rtype: rtype.to_string() }
    }

    /// The TXT value, unquoted.
    pub fn value(&self) -> String {
        format!("berth lineage={} address={} type={}", self.lineage, self.address, self.rtype)
    }

    /// Parses an unquoted owner value; `None` when it is not one of berth's.
    /// The address may itself hold spaces (`x.y["a b"]`), so the fields are
    /// found from both ends.
    pub fn parse(value: &str) -> Option<Owner> {
        let rest = value.strip_prefix("berth lineage=")?;
        let (lineage, rest) = rest.split_once(" address=")?;
        let (address, rtype) = rest.rsplit_once(" type=")?;
        if lineage.is_empty() || address.is_empty() || rtype.is_empty() || lineage.contains(' ') {
            return None;
        }
        Some(Owner::new(lineage, address, rtype))
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
                Some(o) if &o == me => Claim::Ours,
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
        let o = Owner::new("3f0c", "aws_route53_record.r[\"a b\"]", "A");
        assert_eq!(o.value(), "berth lineage=3f0c address=aws_route53_record.r[\"a b\"] type=A");
        assert_eq!(Owner::parse(&o.value()), Some(o));
        assert_eq!(Owner::parse("heritage=external-dns"), None);
    }

    #[test]
    fn claims() {
        let me = Owner::new("L", "aws_route53_record.a", "A");
        assert_eq!(Claim::of(None, &me), Claim::Unowned);
        assert_eq!(Claim::of(Some(&me.value()), &me), Claim::Ours);
        let moved = Owner::new("L", "aws_route53_record.b", "A");
        assert_eq!(Claim::of(Some(&moved.value()), &me), Claim::SameLineage(moved));
        let other = Owner::new("M", "aws_route53_record.a", "A");
        assert!(Claim::of(Some(&other.value()), &me).describe().contains("lineage `M`"));
        assert_eq!(Claim::of(Some("hello"), &me), Claim::Unreadable("hello".into()));
    }
}
