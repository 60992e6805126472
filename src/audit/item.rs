//! DynamoDB items ⇄ audit entries. Reading never panics: an item of the wrong shape is described, not trusted.
//!
//! [`StoredEntry`] holds an entry's attributes as the stored text, which is exactly what the hash covers; turning
//! it into a typed [`AuditEntry`] is a separate, later step, so a verifier can check the hash of an entry it could
//! not otherwise read.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{entry_hash, entry_key, is_hash_shaped};
use super::event::{Actor, AuditEntry, AuditEvent};
use crate::ids::RequestId;

/// A raw DynamoDB item.
pub(super) type Item = HashMap<String, AttributeValue>;

/// Attribute names. `hash` is a DynamoDB reserved word: expressions always refer to attributes through `#names`.
pub(super) const PK: &str = "pk";
pub(super) const SEQ: &str = "seq";
pub(super) const AT: &str = "at";
pub(super) const REQUEST_ID: &str = "request_id";
pub(super) const ACTOR: &str = "actor";
pub(super) const EVENT: &str = "event";
pub(super) const PREV_HASH: &str = "prev_hash";
pub(super) const HASH: &str = "hash";

/// One entry's attributes exactly as stored: the text its hash covers, before any check. Readers that must show a
/// damaged entry rather than refuse it (the audit page) get these from [`super::AuditLog::stored_entries_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub at: String,
    pub request_id: Option<String>,
    pub actor: String,
    pub event: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEntry {
    /// Reads an entry item's attributes, checking only their types and that the key matches `seq`.
    pub(super) fn from_item(item: &Item) -> Result<StoredEntry, String> {
        let seq = number_attr(item, SEQ)?;
        let pk = string_attr(item, PK)?;
        if pk != entry_key(seq) {
            return Err(format!("its key `{pk}` does not match its `seq` {seq}"));
        }
        let request_id = match item.get(REQUEST_ID) {
            None => None,
            Some(_) => Some(string_attr(item, REQUEST_ID)?.to_owned()),
        };
        Ok(StoredEntry {
            seq,
            at: string_attr(item, AT)?.to_owned(),
            request_id,
            actor: string_attr(item, ACTOR)?.to_owned(),
            event: string_attr(item, EVENT)?.to_owned(),
            prev_hash: string_attr(item, PREV_HASH)?.to_owned(),
            hash: string_attr(item, HASH)?.to_owned(),
        })
    }

    /// The item to write.
    pub(super) fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(PK.into(), AttributeValue::S(entry_key(self.seq)));
        item.insert(SEQ.into(), AttributeValue::N(self.seq.to_string()));
        item.insert(AT.into(), AttributeValue::S(self.at.clone()));
        if let Some(request_id) = &self.request_id {
            // Absent (not empty) for events of no request: the request index is sparse and skips them.
            item.insert(REQUEST_ID.into(), AttributeValue::S(request_id.clone()));
        }
        item.insert(ACTOR.into(), AttributeValue::S(self.actor.clone()));
        item.insert(EVENT.into(), AttributeValue::S(self.event.clone()));
        item.insert(PREV_HASH.into(), AttributeValue::S(self.prev_hash.clone()));
        item.insert(HASH.into(), AttributeValue::S(self.hash.clone()));
        item
    }

    /// The hash this entry's content and `prev_hash` call for.
    pub fn computed_hash(&self) -> String {
        entry_hash(&self.prev_hash, self.seq, &self.at, self.request_id.as_deref(), &self.actor, &self.event)
    }

    /// The typed entry. Fails when a field does not parse, or when the `request_id` and `actor` attributes (which
    /// the request index and readers rely on) disagree with the event they were derived from.
    pub fn parse(&self) -> Result<AuditEntry, String> {
        if !is_hash_shaped(&self.prev_hash) {
            return Err("`prev_hash` is not 64 lowercase hex digits".into());
        }
        if !is_hash_shaped(&self.hash) {
            return Err("`hash` is not 64 lowercase hex digits".into());
        }
        let at = OffsetDateTime::parse(&self.at, &Rfc3339)
            .map_err(|e| format!("`at` is not an RFC 3339 time ({e}): `{}`", self.at))?;
        let request_id = match &self.request_id {
            None => None,
            Some(text) => match RequestId::parse(text) {
                Some(id) if id.as_str() == text => Some(id),
                _ => return Err(format!("`request_id` is not a request id: `{text}`")),
            },
        };
        let actor = Actor::parse(&self.actor).ok_or_else(|| format!("`actor` is not an actor: `{}`", self.actor))?;
        let event: AuditEvent =
            serde_json::from_str(&self.event).map_err(|e| format!("`event` is not a jitgate audit event: {e}"))?;
        if event.request_id() != request_id.as_ref() {
            return Err("`request_id` disagrees with the event's request".into());
        }
        if event.actor() != actor {
            return Err("`actor` disagrees with the event's actor".into());
        }
        Ok(AuditEntry {
            seq: self.seq,
            at,
            request_id,
            actor,
            event,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// The head item: where the chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    pub fn from_item(item: &Item) -> Result<Head, String> {
        let seq = number_attr(item, SEQ)?;
        let hash = string_attr(item, HASH)?.to_owned();
        if seq == 0 || !is_hash_shaped(&hash) {
            return Err(format!("it says seq {seq} with hash `{hash}`, which no append writes"));
        }
        Ok(Head { seq, hash })
    }
}

/// The `request_id` text of an item, if it has one of the right type: for naming the request in a finding.
pub(super) fn request_id_text(item: &Item) -> Option<String> {
    item.get(REQUEST_ID).and_then(|v| v.as_s().ok()).cloned()
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        None => Err(format!("attribute `{name}` is missing")),
        Some(AttributeValue::S(text)) => Ok(text),
        Some(other) => Err(format!("attribute `{name}` should be a string (S) but is {}", type_name(other))),
    }
}

fn number_attr(item: &Item, name: &str) -> Result<u64, String> {
    match item.get(name) {
        None => Err(format!("attribute `{name}` is missing")),
        Some(AttributeValue::N(text)) => {
            text.parse().map_err(|_| format!("attribute `{name}` should be a whole number but is `{text}`"))
        }
        Some(other) => Err(format!("attribute `{name}` should be a number (N) but is {}", type_name(other))),
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::B(_) => "binary (B)",
        AttributeValue::Bool(_) => "a boolean (BOOL)",
        AttributeValue::Bs(_) => "a binary set (BS)",
        AttributeValue::L(_) => "a list (L)",
        AttributeValue::M(_) => "a map (M)",
        AttributeValue::N(_) => "a number (N)",
        AttributeValue::Ns(_) => "a number set (NS)",
        AttributeValue::Null(_) => "null (NULL)",
        AttributeValue::S(_) => "a string (S)",
        AttributeValue::Ss(_) => "a string set (SS)",
        // The SDK's enum is non-exhaustive: a type added later is still just "another type".
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::GENESIS_HASH;

    fn stored() -> StoredEntry {
        let mut entry = StoredEntry {
            seq: 3,
            at: "2026-11-28T12:00:00Z".into(),
            request_id: Some("JIT-7Q2M4X".into()),
            actor: "jitgate".into(),
            event: r#"{"type":"expired","request":"JIT-7Q2M4X"}"#.into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    #[test]
    fn items_round_trip() {
        let entry = stored();
        let item = entry.to_item();
        assert_eq!(item.get(PK), Some(&AttributeValue::S("E#00000000000000000003".into())));
        assert_eq!(StoredEntry::from_item(&item), Ok(entry.clone()));
        let typed = entry.parse().unwrap();
        assert_eq!(typed.actor, Actor::System);
        assert_eq!(typed.request_id.unwrap().as_str(), "JIT-7Q2M4X");
    }

    #[test]
    fn wrong_types_are_described_not_trusted() {
        let mut item = stored().to_item();
        item.insert(ACTOR.into(), AttributeValue::N("7".into()));
        assert_eq!(
            StoredEntry::from_item(&item),
            Err("attribute `actor` should be a string (S) but is a number (N)".into())
        );
        item.insert(SEQ.into(), AttributeValue::N("-1".into()));
        assert_eq!(StoredEntry::from_item(&item), Err("attribute `seq` should be a whole number but is `-1`".into()));
        item.remove(SEQ);
        assert_eq!(StoredEntry::from_item(&item), Err("attribute `seq` is missing".into()));
    }

    #[test]
    fn an_entry_moved_to_another_key_is_refused() {
        let mut item = stored().to_item();
        item.insert(PK.into(), AttributeValue::S(entry_key(4)));
        assert!(StoredEntry::from_item(&item).unwrap_err().contains("does not match its `seq` 3"));
    }

    #[test]
    fn index_attributes_must_agree_with_the_event() {
        let mut entry = stored();
        entry.request_id = Some("JIT-7Q2M4Y".into());
        assert_eq!(entry.parse().unwrap_err(), "`request_id` disagrees with the event's request");
        let mut entry = stored();
        entry.actor = "UBOB".into();
        assert_eq!(entry.parse().unwrap_err(), "`actor` disagrees with the event's actor");
    }
}
