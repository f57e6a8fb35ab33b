//! The append-only journal of an apply: one JSON entry per line.
//!
//! Each result is appended and fsynced the moment it lands (grouped: all the
//! results of one step of the walk share one fsync), so a `kill -9` at any
//! instant loses nothing the next run would not know about. The first entry
//! names the state (lineage, serial) the journal applies to; a journal whose
//! `Begin` does not match the state it sits beside is stale and ignored. A
//! torn last line (a crash mid-write) is ignored too.

use super::{OutputState, PendingCreate, ResourceState, StateError};
use crate::addr::InstanceAddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum JournalEntry {
    Begin { lineage: String, serial: u64 },
    Put(Box<ResourceState>),
    Remove { addr: InstanceAddr, deposed: Option<String> },
    Pending(PendingCreate),
    Outputs { outputs: BTreeMap<String, OutputState> },
}

impl JournalEntry {
    /// The `(lineage, serial)` a `Begin` names.
    pub fn begin_of(&self) -> Option<(&str, u64)> {
        match self {
            JournalEntry::Begin { lineage, serial } => Some((lineage, *serial)),
            _ => None,
        }
    }
}

/// One line per entry, each ending in `\n`, ready for a single write.
pub fn encode(entries: &[JournalEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 256);
    for e in entries {
        // Entries are plain data (strings, numbers, maps with string keys),
        // which serde_json always serializes.
        serde_json::to_writer(&mut out, e).expect("journal entry serializes");
        out.push(b'\n');
    }
    out
}

/// A journal as read back from disk.
#[derive(Debug, Default, PartialEq)]
pub struct ParsedJournal {
    /// The `(lineage, serial)` of the leading `Begin`; `None` for an empty
    /// journal (or one whose only line was torn).
    pub begin: Option<(String, u64)>,
    /// The entries after the `Begin`, in order.
    pub entries: Vec<JournalEntry>,
    /// Bytes worth keeping: everything up to the end of the last good entry.
    /// A writer continuing this journal truncates to here first, so a torn
    /// tail never ends up in the middle of the file.
    pub valid_len: u64,
    /// The last good entry is complete but lacks its `\n` (the crash came
    /// between the two); a writer continuing the journal adds one first.
    pub needs_newline: bool,
    /// A torn last line was dropped.
    pub torn: bool,
}

impl ParsedJournal {
    pub fn matches(&self, lineage: &str, serial: u64) -> bool {
        matches!(&self.begin, Some((l, s)) if l == lineage && *s == serial)
    }
}

/// The `(lineage, serial)` of the leading `Begin`, read without parsing the
/// rest: a stale journal is skipped whatever state its other lines are in.
pub fn peek_begin(bytes: &[u8]) -> Option<(String, u64)> {
    let line = bytes.split(|&b| b == b'\n').find(|l| !l.iter().all(u8::is_ascii_whitespace))?;
    match serde_json::from_slice(line).ok()? {
        JournalEntry::Begin { lineage, serial } => Some((lineage, serial)),
        _ => None,
    }
}

/// Parses a journal. `path` only names the file in errors.
///
/// The last line may be torn by a crash mid-write and is then dropped; an
/// unreadable line anywhere else means the file was damaged some other way,
/// and replaying around it could silently lose a resource, so it is an error.
pub fn parse(path: &str, bytes: &[u8]) -> Result<ParsedJournal, StateError> {
    let corrupt = |line: usize, reason: String| StateError::Corrupt {
        path: path.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let mut out = ParsedJournal::default();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < bytes.len() {
        line_no += 1;
        let (line, terminated, next) = match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[offset..offset + i], true, offset + i + 1),
            None => (&bytes[offset..], false, bytes.len()),
        };
        let is_last = next >= bytes.len();
        // Blank lines carry nothing; a hand edit may leave one.
        if line.iter().all(u8::is_ascii_whitespace) {
            if terminated {
                out.valid_len = next as u64;
            }
            offset = next;
            continue;
        }
        let entry = match serde_json::from_slice::<JournalEntry>(line) {
            Ok(e) => e,
            Err(_) if is_last => {
                out.torn = true;
                break;
            }
            Err(e) => return Err(corrupt(line_no, e.to_string())),
        };
        // A complete JSON object cannot be a prefix of a longer one, so a
        // parseable last line without `\n` is a whole entry: keep it.
        out.valid_len = next as u64;
        out.needs_newline = !terminated;
        match (&out.begin, entry) {
            (None, JournalEntry::Begin { lineage, serial }) => out.begin = Some((lineage, serial)),
            (None, _) => return Err(corrupt(line_no, "the journal does not start with a `begin` entry".into())),
            (Some((l, s)), JournalEntry::Begin { lineage, serial }) => {
                if *l != lineage || *s != serial {
                    return Err(corrupt(
                        line_no,
                        format!("a second `begin` names lineage `{lineage}` serial {serial}, the first `{l}` serial {s}"),
                    ));
                }
            }
            (Some(_), e) => out.entries.push(e),
        }
        offset = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin() -> JournalEntry {
        JournalEntry::Begin { lineage: "L".into(), serial: 3 }
    }

    fn pending(n: usize) -> JournalEntry {
        JournalEntry::Pending(PendingCreate {
            addr: format!("berth_data.n[{n}]").parse().unwrap(),
            provider: "berth".into(),
            generation: 1,
            token: "t1".into(),
        })
    }

    #[test]
    fn encode_parse_round_trip() {
        let entries = vec![begin(), pending(1), pending(2)];
        let bytes = encode(&entries);
        let j = parse("j", &bytes).unwrap();
        assert_eq!(j.begin, Some(("L".into(), 3)));
        assert_eq!(j.entries, entries[1..]);
        assert_eq!(j.valid_len, bytes.len() as u64);
        assert!(!j.torn && !j.needs_newline);
        assert!(j.matches("L", 3) && !j.matches("L", 4) && !j.matches("M", 3));
        let mut damaged = b"\n".to_vec();
        damaged.extend(encode(&entries[..1]));
        damaged.extend_from_slice(b"garbage\n\n");
        assert_eq!(peek_begin(&damaged), Some(("L".into(), 3)));
        assert_eq!(peek_begin(b"garbage\n"), None);
        assert_eq!(peek_begin(&encode(&entries[1..])), None);
    }

    #[test]
    fn torn_tail_is_dropped_and_trimmed() {
        let good = encode(&[begin(), pending(1)]);
        let mut bytes = good.clone();
        bytes.extend_from_slice(br#"{"op":"pending","addr":"berth_da"#);
        let j = parse("j", &bytes).unwrap();
        assert!(j.torn);
        assert_eq!(j.entries, vec![pending(1)]);
        assert_eq!(j.valid_len, good.len() as u64);
    }

    #[test]
    fn complete_entry_without_newline_is_kept() {
        let mut bytes = encode(&[begin(), pending(1)]);
        bytes.pop();
        let j = parse("j", &bytes).unwrap();
        assert!(!j.torn && j.needs_newline);
        assert_eq!(j.entries, vec![pending(1)]);
        assert_eq!(j.valid_len, bytes.len() as u64);
    }

    #[test]
    fn bad_middle_line_names_file_and_line() {
        let mut bytes = encode(&[begin()]);
        bytes.extend_from_slice(b"{not json}\n");
        bytes.extend(encode(&[pending(1)]));
        let err = parse("state/default.journal", &bytes).unwrap_err().to_string();
        assert!(err.contains("`state/default.journal`") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn must_start_with_begin_and_keep_one_lineage() {
        let err = parse("j", &encode(&[pending(1), begin()])).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("`begin`"), "{err}");
        let other = JournalEntry::Begin { lineage: "L".into(), serial: 4 };
        let err = parse("j", &encode(&[begin(), pending(1), other])).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        // The same `begin` again is harmless.
        assert_eq!(parse("j", &encode(&[begin(), begin(), pending(1)])).unwrap().entries, vec![pending(1)]);
    }

    #[test]
    fn empty_and_blank_journals_have_no_begin() {
        assert_eq!(parse("j", b"").unwrap().begin, None);
        assert_eq!(parse("j", b"\n \n").unwrap().begin, None);
        let torn_begin = parse("j", br#"{"op":"begin","lin"#).unwrap();
        assert!(torn_begin.torn && torn_begin.begin.is_none() && torn_begin.valid_len == 0);
    }
}
