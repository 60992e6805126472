//! Identifier newtypes shared by every module.
//!
//! Ids are plain strings on the wire, but inside jitgate each kind has its own type so a requester can never be
//! passed where a request id is expected. Constructors validate the shape, so a value that exists is well formed.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Crockford base32 without I, L, O, U: unambiguous when read aloud or typed from a screenshot.
const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const REQUEST_ID_PREFIX: &str = "JIT-";
/// 6 symbols of base32 = 2^30 ids; creation uses `SET NX`, so a rare collision is retried, never overwritten.
const REQUEST_ID_LEN: usize = 6;

/// The id of one access request, e.g. `JIT-7Q2M4X`. Shown in Slack, used in Redis keys and in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let body: String =
            (0..REQUEST_ID_LEN).map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char).collect();
        RequestId(format!("{REQUEST_ID_PREFIX}{body}"))
    }

    /// Parses what a user typed: case-insensitive, the `JIT-` prefix optional.
    pub fn parse(input: &str) -> Option<Self> {
        let upper = input.trim().to_ascii_uppercase();
        let body = upper.strip_prefix(REQUEST_ID_PREFIX).unwrap_or(&upper);
        let well_formed = body.len() == REQUEST_ID_LEN && body.bytes().all(|b| ID_ALPHABET.contains(&b));
        well_formed.then(|| RequestId(format!("{REQUEST_ID_PREFIX}{body}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RequestId::parse(&value).ok_or_else(|| format!("`{value}` is not a request id like JIT-7Q2M4X"))
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Slack user id (`U…` or `W…` for Enterprise Grid).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlackUserId(String);

impl SlackUserId {
    pub fn parse(input: &str) -> Option<Self> {
        let well_formed = input.len() >= 3
            && input.len() <= 32
            && matches!(input.as_bytes()[0], b'U' | b'W')
            && input.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        well_formed.then(|| SlackUserId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SlackUserId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SlackUserId::parse(&value).ok_or_else(|| format!("`{value}` is not a Slack user id like U012AB3CD"))
    }
}

impl From<SlackUserId> for String {
    fn from(id: SlackUserId) -> String {
        id.0
    }
}

impl fmt::Display for SlackUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A runbook's id: lowercase letters, digits and dashes, as typed after `/jit query`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunbookId(String);

impl RunbookId {
    pub fn parse(input: &str) -> Option<Self> {
        let bytes = input.as_bytes();
        let well_formed = !bytes.is_empty()
            && bytes.len() <= 64
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        well_formed.then(|| RunbookId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunbookId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RunbookId::parse(&value).ok_or_else(|| {
            format!("`{value}` is not a valid runbook id: use lowercase letters, digits and dashes (e.g. orders-by-customer)")
        })
    }
}

impl From<RunbookId> for String {
    fn from(id: RunbookId) -> String {
        id.0
    }
}

impl fmt::Display for RunbookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_request_ids_parse_back() {
        for _ in 0..100 {
            let id = RequestId::generate();
            assert_eq!(RequestId::parse(id.as_str()), Some(id.clone()));
        }
    }

    #[test]
    fn request_id_parse_accepts_typed_forms_and_rejects_junk() {
        assert_eq!(RequestId::parse("jit-7q2m4x").unwrap().as_str(), "JIT-7Q2M4X");
        assert_eq!(RequestId::parse("7Q2M4X").unwrap().as_str(), "JIT-7Q2M4X");
        assert_eq!(RequestId::parse("JIT-7Q2M"), None);
        assert_eq!(RequestId::parse("JIT-7Q2MIL"), None, "I and L are not in the alphabet");
        assert_eq!(RequestId::parse("JIT-7Q2M4X; DEL *"), None);
    }

    #[test]
    fn slack_user_and_runbook_ids_validate_shape() {
        assert!(SlackUserId::parse("U012AB3CD").is_some());
        assert!(SlackUserId::parse("W012AB3CD").is_some());
        assert!(SlackUserId::parse("u012").is_none());
        assert!(SlackUserId::parse("<@U012>").is_none());
        assert!(RunbookId::parse("orders-by-customer").is_some());
        assert!(RunbookId::parse("Orders").is_none());
        assert!(RunbookId::parse("-x").is_none());
        assert!(RunbookId::parse("").is_none());
    }
}
