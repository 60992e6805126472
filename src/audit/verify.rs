//! Checking the chain: the walk over entries in sequence order, and the report it ends in.
//!
//! The [`Walker`] is fed entries one sequence number at a time (the log fetches them in batches) and stops at the
//! first problem, so memory stays bounded by one batch whatever the length of the chain.

use std::collections::BTreeMap;
use std::fmt;

use super::chain::GENESIS_HASH;
use super::item::{Head, Item, StoredEntry, request_id_text};

/// What is wrong at the place a [`Finding`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry does not exist, though the head says the chain reaches `head_seq`: it was deleted.
    Missing { head_seq: u64 },
    /// An attribute is missing, of the wrong type, or does not parse.
    Malformed { detail: String },
    /// The stored hash is not the hash of the stored content: the entry was edited.
    Edited { stored: String, computed: String },
    /// The entry's `prev_hash` is not the previous entry's hash: an entry was replaced or re-hashed.
    BrokenLink { expected: String, found: String },
    /// The head's hash is not the last entry's hash.
    HeadMismatch { head_hash: String, last_hash: String },
    /// Entries exist but the head item does not.
    HeadMissing,
    /// The head item is not of the shape appends write.
    HeadMalformed { detail: String },
    /// An entry exists past the head: the head was moved back.
    BeyondHead { head_seq: u64 },
    /// A checkpointed entry no longer has the hash its checkpoint anchored, though the chain links: the chain was
    /// rewritten and re-hashed. The finding names the first entry after the last checkpoint that still matches
    /// (`last_matching`), where the rewrite may start; the checkpoint at `checkpoint_seq` proves it was rewritten by
    /// then.
    Rewritten { checkpoint_seq: u64, anchored: String, stored: String, last_matching: Option<u64> },
    /// The head is behind the last checkpoint: entries that were anchored are gone from the chain.
    BehindCheckpoint { head_seq: u64, checkpoint_seq: u64 },
    /// An object in the checkpoint bucket is not a sound checkpoint, or a checkpoint was written over.
    CheckpointTampered { key: String, detail: String },
}

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The entry concerned; `None` for a problem of the head alone.
    pub seq: Option<u64>,
    /// The request the entry belongs to, as stored, when it can be read.
    pub request_id: Option<String>,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "entry {seq}")?,
            None => f.write_str("the head")?,
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " (request {request_id})")?;
        }
        f.write_str(": ")?;
        match &self.problem {
            Problem::Missing { head_seq } if self.seq == Some(*head_seq) => {
                write!(f, "is missing, though the head says the chain ends there: the last entry was deleted")
            }
            Problem::Missing { head_seq } => {
                write!(f, "is missing, though the head says the chain has {head_seq} entries: it was deleted")
            }
            Problem::Malformed { detail } => write!(f, "is malformed: {detail}"),
            Problem::Edited { stored, computed } => write!(
                f,
                "content does not match its hash: it was edited (stored hash {stored}, content hashes to {computed})"
            ),
            Problem::BrokenLink { expected, found } => write!(
                f,
                "prev_hash {found} does not link to the previous entry's hash {expected}: \
                 an entry before it was replaced"
            ),
            Problem::HeadMismatch { head_hash, last_hash } => write!(
                f,
                "is the last entry, but the head's hash {head_hash} is not its hash {last_hash}: \
                 the head was changed or the tail was deleted"
            ),
            Problem::HeadMissing => write!(f, "is missing although entries exist: it was deleted"),
            Problem::HeadMalformed { detail } => write!(f, "is malformed: {detail}"),
            Problem::BeyondHead { head_seq } => {
                write!(f, "exists past the head (which says the chain ends at {head_seq}): the head was moved back")
            }
            Problem::Rewritten { checkpoint_seq, anchored, stored, last_matching } => {
                write!(
                    f,
                    "the chain was rewritten from here at the earliest: the checkpoint of entry {checkpoint_seq} \
                     anchored hash {anchored}, but the table now holds {stored}"
                )?;
                match last_matching {
                    Some(seq) => write!(f, "; entry {seq} still matches its checkpoint"),
                    None => f.write_str("; no earlier checkpoint matches"),
                }
            }
            Problem::BehindCheckpoint { head_seq, checkpoint_seq } => write!(
                f,
                "is missing: the head says the chain ends at {head_seq}, but entry {checkpoint_seq} was checkpointed: \
                 the head was moved back over anchored entries"
            ),
            Problem::CheckpointTampered { key, detail } => {
                write!(f, "checkpoint object `{key}` is not sound: {detail}")
            }
        }
    }
}

/// The outcome of [`super::AuditLog::verify`]: the chain is intact up to its head, or here is where it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub table: String,
    /// Entries checked and found sound (all of them when intact; those before the finding otherwise).
    pub verified: u64,
    /// The head's hash when the chain is intact and not empty: record it elsewhere to anchor the chain.
    pub head_hash: Option<String>,
    /// The first problem, or `None` when the chain is intact.
    pub finding: Option<Finding>,
    /// Whether the chain was checked against checkpoints, and what they covered.
    pub anchoring: Anchoring,
}

/// What anchored the chain during a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchoring {
    /// No checkpoint bucket was given: only the chain's own links were checked.
    Unanchored,
    /// Checked against the checkpoints in `bucket`: `count` of them, the last of entry `last_seq` written at
    /// `last_at` (`None` when there is no checkpoint yet).
    Checked { bucket: String, count: usize, last: Option<(u64, String)> },
}

impl VerifyReport {
    /// One line on what anchored the chain, for `jitgate audit verify` to print after the verdict.
    pub fn anchoring_line(&self) -> String {
        match &self.anchoring {
            Anchoring::Unanchored => "unanchored: no checkpoint bucket is configured ([audit] checkpoint_bucket), so \
                                      a rewrite of the chain by someone holding jitgate's role would not be seen"
                .to_owned(),
            Anchoring::Checked { bucket, last: None, .. } => {
                format!("unanchored: no checkpoint in bucket {bucket} yet, so a rewrite of the chain would not be seen")
            }
            Anchoring::Checked { bucket, count, last: Some((seq, at)) } => {
                let tail = match (self.finding.is_none(), self.verified) {
                    (true, head) if head > *seq => {
                        format!("; entries {} to {head} come after it and are not anchored yet", seq + 1)
                    }
                    (true, _) => "; every entry is anchored".to_owned(),
                    (false, _) => String::new(),
                };
                format!("anchored: {count} checkpoint(s) in bucket {bucket}, the last of entry {seq} at {at}{tail}")
            }
        }
    }
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.finding, &self.head_hash) {
            (None, Some(head)) => write!(f, "chain intact: {} entries, head {head}", self.verified),
            (None, None) => write!(f, "chain intact: no entries yet"),
            (Some(finding), _) => write!(
                f,
                "chain BROKEN in table {} at {finding} ({} entries before it verified)",
                self.table, self.verified
            ),
        }
    }
}

/// Walks entries 1, 2, 3, … checking each against the one before, and against the hashes checkpoints anchored.
#[derive(Debug)]
pub(super) struct Walker {
    next_seq: u64,
    prev_hash: String,
    /// seq → the hash a checkpoint anchored for it.
    anchors: BTreeMap<u64, String>,
    /// The last checkpointed entry found with its anchored hash.
    last_matching: Option<u64>,
}

impl Walker {
    #[cfg(test)]
    pub fn new() -> Walker {
        Walker::anchored(BTreeMap::new())
    }

    pub fn anchored(anchors: BTreeMap<u64, String>) -> Walker {
        Walker { next_seq: 1, prev_hash: GENESIS_HASH.to_owned(), anchors, last_matching: None }
    }

    /// Entries checked so far.
    pub fn verified(&self) -> u64 {
        self.next_seq - 1
    }

    /// Checks the next entry (`None`: there is no item at its key). `head_seq` is only for the report's wording.
    pub fn step(&mut self, item: Option<&Item>, head_seq: u64) -> Result<(), Finding> {
        let seq = self.next_seq;
        let Some(item) = item else {
            return Err(Finding { seq: Some(seq), request_id: None, problem: Problem::Missing { head_seq } });
        };
        let finding = |problem| Finding { seq: Some(seq), request_id: request_id_text(item), problem };
        let stored = StoredEntry::from_item(item).map_err(|detail| finding(Problem::Malformed { detail }))?;
        let computed = stored.computed_hash();
        if computed != stored.hash {
            return Err(finding(Problem::Edited { stored: stored.hash, computed }));
        }
        if stored.prev_hash != self.prev_hash {
            return Err(finding(Problem::BrokenLink { expected: self.prev_hash.clone(), found: stored.prev_hash }));
        }
        // The links hold, but a re-hashed chain links too: only an anchor outside the table tells the two apart.
        if let Some(anchored) = self.anchors.get(&seq) {
            if *anchored != stored.hash {
                // Entries up to the last matching checkpoint are proven original; the rewrite starts after it.
                let first = self.last_matching.map_or(1, |m| m + 1);
                return Err(Finding {
                    seq: Some(first),
                    request_id: None,
                    problem: Problem::Rewritten {
                        checkpoint_seq: seq,
                        anchored: anchored.clone(),
                        stored: stored.hash,
                        last_matching: self.last_matching,
                    },
                });
            }
            self.last_matching = Some(seq);
        }
        // The hash holds, so these bytes are what was written; an entry jitgate cannot read is still a finding.
        stored.parse().map_err(|detail| finding(Problem::Malformed { detail }))?;
        self.prev_hash = stored.hash;
        self.next_seq += 1;
        Ok(())
    }

    /// After the last entry: the head must carry its hash, and reach the last checkpoint.
    pub fn finish(&self, head: &Head) -> Result<(), Finding> {
        if head.hash != self.prev_hash {
            return Err(Finding {
                seq: Some(head.seq),
                request_id: None,
                problem: Problem::HeadMismatch { head_hash: head.hash.clone(), last_hash: self.prev_hash.clone() },
            });
        }
        match self.anchors.last_key_value() {
            Some((&checkpoint_seq, _)) if checkpoint_seq > head.seq => Err(Finding {
                seq: Some(head.seq + 1),
                request_id: None,
                problem: Problem::BehindCheckpoint { head_seq: head.seq, checkpoint_seq },
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::audit::chain::entry_hash;
    use crate::audit::item::{ACTOR, EVENT};

    fn entry(seq: u64, prev_hash: &str) -> StoredEntry {
        let event = format!(r#"{{"type":"failed","request":"JIT-7Q2M4X","reason":"step {seq}"}}"#);
        let at = "2026-11-28T12:00:00Z";
        let hash = entry_hash(prev_hash, seq, at, Some("JIT-7Q2M4X"), "jitgate", &event);
        StoredEntry {
            seq,
            at: at.into(),
            request_id: Some("JIT-7Q2M4X".into()),
            actor: "jitgate".into(),
            event,
            prev_hash: prev_hash.into(),
            hash,
        }
    }

    fn chain(len: u64) -> Vec<Item> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=len)
            .map(|seq| {
                let e = entry(seq, &prev);
                prev = e.hash.clone();
                e.to_item()
            })
            .collect()
    }

    fn walk(items: &[Option<Item>]) -> Result<Walker, Finding> {
        let mut walker = Walker::new();
        for item in items {
            walker.step(item.as_ref(), items.len() as u64)?;
        }
        Ok(walker)
    }

    #[test]
    fn a_sound_chain_walks_to_the_end() {
        let items: Vec<_> = chain(5).into_iter().map(Some).collect();
        let walker = walk(&items).unwrap();
        assert_eq!(walker.verified(), 5);
        let last = StoredEntry::from_item(items[4].as_ref().unwrap()).unwrap().hash;
        assert_eq!(walker.finish(&Head { seq: 5, hash: last }), Ok(()));
    }

    #[test]
    fn an_edited_event_is_named() {
        let mut items: Vec<_> = chain(5).into_iter().map(Some).collect();
        items[2].as_mut().unwrap().insert(EVENT.into(), AttributeValue::S("{}".into()));
        let finding = walk(&items).unwrap_err();
        assert_eq!(finding.seq, Some(3));
        assert!(matches!(finding.problem, Problem::Edited { .. }), "{finding}");
        assert_eq!(finding.request_id.as_deref(), Some("JIT-7Q2M4X"));
    }

    #[test]
    fn a_rehashed_entry_breaks_the_next_link() {
        let mut items: Vec<_> = chain(4).into_iter().map(Some).collect();
        let forged = entry(2, &"1".repeat(64));
        items[1] = Some(forged.to_item());
        let finding = walk(&items).unwrap_err();
        assert_eq!(finding.seq, Some(2));
        assert!(matches!(finding.problem, Problem::BrokenLink { .. }), "{finding}");
    }

    #[test]
    fn a_missing_entry_and_a_wrong_type_are_findings() {
        let mut items: Vec<_> = chain(4).into_iter().map(Some).collect();
        items[1] = None;
        assert_eq!(walk(&items).unwrap_err().problem, Problem::Missing { head_seq: 4 });

        let mut items: Vec<_> = chain(4).into_iter().map(Some).collect();
        items[3].as_mut().unwrap().insert(ACTOR.into(), AttributeValue::Bool(true));
        let finding = walk(&items).unwrap_err();
        assert_eq!(finding.seq, Some(4));
        assert_eq!(
            finding.problem,
            Problem::Malformed { detail: "attribute `actor` should be a string (S) but is a boolean (BOOL)".into() }
        );
    }

    #[test]
    fn a_head_that_disagrees_is_a_finding() {
        let items: Vec<_> = chain(3).into_iter().map(Some).collect();
        let walker = walk(&items).unwrap();
        let finding = walker.finish(&Head { seq: 3, hash: "2".repeat(64) }).unwrap_err();
        assert!(matches!(finding.problem, Problem::HeadMismatch { .. }));
    }

    #[test]
    fn a_consistently_rehashed_chain_is_caught_by_a_checkpoint_and_named_after_the_last_match() {
        let original: Vec<_> = chain(8).into_iter().map(Some).collect();
        let hash_of =
            |items: &[Option<Item>], seq: usize| StoredEntry::from_item(items[seq - 1].as_ref().unwrap()).unwrap().hash;
        let anchors = BTreeMap::from([(3, hash_of(&original, 3)), (6, hash_of(&original, 6))]);
        // Entry 5 rewritten, and 5..=8 re-hashed so every link holds.
        let mut forged = original[..4].to_vec();
        let mut prev = hash_of(&original, 4);
        for seq in 5..=8 {
            let mut e = entry(seq, &prev);
            if seq == 5 {
                e.event = r#"{"type":"failed","request":"JIT-7Q2M4X","reason":"nothing to see"}"#.into();
                e.hash = e.computed_hash();
            }
            prev = e.hash.clone();
            forged.push(Some(e.to_item()));
        }
        assert!(walk(&forged).is_ok(), "without anchors the forgery links");
        let mut walker = Walker::anchored(anchors.clone());
        let finding = forged.iter().try_for_each(|item| walker.step(item.as_ref(), 8)).unwrap_err();
        assert_eq!(finding.seq, Some(4), "the first entry after the last matching checkpoint");
        assert!(
            matches!(finding.problem, Problem::Rewritten { checkpoint_seq: 6, last_matching: Some(3), .. }),
            "{finding}"
        );

        // The original chain passes, and a head moved back below the last checkpoint does not.
        let mut walker = Walker::anchored(anchors);
        original[..5].iter().try_for_each(|item| walker.step(item.as_ref(), 5)).unwrap();
        let finding = walker.finish(&Head { seq: 5, hash: hash_of(&original, 5) }).unwrap_err();
        assert_eq!(finding.problem, Problem::BehindCheckpoint { head_seq: 5, checkpoint_seq: 6 });
    }

    #[test]
    fn reports_read_clearly() {
        let intact = VerifyReport {
            table: "audit".into(),
            verified: 80,
            head_hash: Some("ab".repeat(32)),
            finding: None,
            anchoring: Anchoring::Unanchored,
        };
        assert_eq!(intact.to_string(), format!("chain intact: 80 entries, head {}", "ab".repeat(32)));
        let broken = VerifyReport {
            table: "audit".into(),
            verified: 16,
            head_hash: None,
            finding: Some(Finding {
                seq: Some(17),
                request_id: Some("JIT-7Q2M4X".into()),
                problem: Problem::Missing { head_seq: 20 },
            }),
            anchoring: Anchoring::Unanchored,
        };
        assert_eq!(
            broken.to_string(),
            "chain BROKEN in table audit at entry 17 (request JIT-7Q2M4X): is missing, though the head says the \
             chain has 20 entries: it was deleted (16 entries before it verified)"
        );
    }
}
