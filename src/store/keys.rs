//! The Redis key scheme. Every key that a script touches carries a hash tag (`{…}`), so each script works on
//! one slot and the store runs unchanged on Redis Cluster.
//!
//! ```text
//! <prefix>:{JIT-7Q2M4X}:request      hash: state, version, body (JSON of the AccessRequest)
//! <prefix>:pending                   sorted set: request id → expires_at (ms); a hint for the sweeper
//! <prefix>:remind                    sorted set: request id → half-way point (ms), until reminded; a hint too
//! <prefix>:escalate                  sorted set: request id → when its next escalation level is due (ms), for
//!                                    runbooks that escalate; a hint too
//! <prefix>:running                   sorted set: request id → when it was approved or started (ms); a hint too
//! <prefix>:envelope:{<envelope id>}  string "1", SET NX with a TTL: envelope de-duplication
//! <prefix>:ratelimit:{U012AB3CD}     sorted set of admission times (ms) for one user's sliding window
//! <prefix>:refusals:{U012AB3CD}      hash: one user's refusal window (see `refusal_limit`)
//! <prefix>:refusals-due              sorted set: user → end of a window with counted refusals (ms)
//! <prefix>:break-glass:{U012AB3CD}:<day>  counter: one user's break-glass runs on one UTC day (YYYY-MM-DD)
//! <prefix>:break-glass-unreviewed    sorted set: request id → when its break-glass review is due (ms)
//! ```
//!
//! Request and user ids are validated newtypes and cannot contain braces. Envelope ids come from the wire, so
//! they are checked here: an id outside a small safe alphabet is replaced by its SHA-256, which keeps a hostile
//! id (`x}:{y`, newlines, `*`) from moving the hash tag or reaching into another key.

use sha2::{Digest, Sha256};

use super::StoreError;
use crate::ids::{RequestId, SlackUserId};

/// Slack envelope ids are UUIDs (36 characters); anything much longer did not come from Slack.
pub const MAX_ENVELOPE_ID_LEN: usize = 128;
/// Longest key prefix accepted.
const MAX_PREFIX_LEN: usize = 64;
/// Marks an escaped (hashed) envelope id. It is outside the safe alphabet, so an escaped id can never equal an
/// id that was used as it is.
const ESCAPED_MARK: char = '#';

/// Builds every key the store uses from one validated prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Accepts a prefix of letters, digits and `-_.:`; braces would change which part of a key is hashed.
    pub(crate) fn new(prefix: &str) -> Result<Keys, StoreError> {
        let well_formed = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !well_formed {
            return Err(StoreError::InvalidSettings(format!(
                "key_prefix must be 1 to {MAX_PREFIX_LEN} letters, digits, '-', '_', '.' or ':' (no braces)"
            )));
        }
        Ok(Keys { prefix: prefix.to_owned() })
    }

    pub(crate) fn request(&self, id: &RequestId) -> String {
        format!("{}:{{{}}}:request", self.prefix, id.as_str())
    }

    pub(crate) fn pending_index(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    pub(crate) fn reminder_index(&self) -> String {
        format!("{}:remind", self.prefix)
    }

    pub(crate) fn escalation_index(&self) -> String {
        format!("{}:escalate", self.prefix)
    }

    pub(crate) fn running_index(&self) -> String {
        format!("{}:running", self.prefix)
    }

    pub(crate) fn user_requests(&self, user: &SlackUserId) -> String {
        format!("{}:requests:{{{}}}", self.prefix, user.as_str())
    }

    pub(crate) fn rate_limit(&self, user: &SlackUserId) -> String {
        format!("{}:ratelimit:{{{}}}", self.prefix, user.as_str())
    }

    pub(crate) fn refusals(&self, user: &SlackUserId) -> String {
        format!("{}:refusals:{{{}}}", self.prefix, user.as_str())
    }

    pub(crate) fn refusals_due(&self) -> String {
        format!("{}:refusals-due", self.prefix)
    }

    pub(crate) fn break_glass_uses(&self, user: &SlackUserId, day: &str) -> String {
        format!("{}:break-glass:{{{}}}:{day}", self.prefix, user.as_str())
    }

    pub(crate) fn break_glass_unreviewed(&self) -> String {
        format!("{}:break-glass-unreviewed", self.prefix)
    }

    pub(crate) fn envelope(&self, envelope_id: &str) -> Result<String, StoreError> {
        Ok(format!("{}:envelope:{{{}}}", self.prefix, envelope_tag(envelope_id)?))
    }
}

/// The envelope id as it appears inside the hash tag: itself when it is made of safe characters, otherwise
/// `#` + the hex SHA-256 of it (injective in practice, and free of braces whatever the input).
fn envelope_tag(envelope_id: &str) -> Result<String, StoreError> {
    if envelope_id.is_empty() {
        // Accepting it would make every envelope without an id a duplicate of the first one.
        return Err(StoreError::InvalidEnvelopeId("it is empty".to_owned()));
    }
    if envelope_id.len() > MAX_ENVELOPE_ID_LEN {
        return Err(StoreError::InvalidEnvelopeId(format!(
            "it is {} bytes long; at most {MAX_ENVELOPE_ID_LEN} are accepted",
            envelope_id.len()
        )));
    }
    let safe = envelope_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if safe {
        Ok(envelope_id.to_owned())
    } else {
        Ok(format!("{ESCAPED_MARK}{}", hex::encode(Sha256::digest(envelope_id.as_bytes()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis Cluster hashes: the part between the first `{` and the next `}`, when not empty.
    fn hash_tag(key: &str) -> Option<&str> {
        let open = key.find('{')?;
        let close = key[open + 1..].find('}')? + open + 1;
        (close > open + 1).then(|| &key[open + 1..close])
    }

    fn keys() -> Keys {
        Keys::new("jitgate").unwrap()
    }

    #[test]
    fn request_keys_are_tagged_with_the_request_id() {
        let id = RequestId::parse("JIT-7Q2M4X").unwrap();
        assert_eq!(keys().request(&id), "jitgate:{JIT-7Q2M4X}:request");
        assert_eq!(hash_tag(&keys().request(&id)), Some("JIT-7Q2M4X"));
        let user = SlackUserId::parse("U012AB3CD").unwrap();
        assert_eq!(hash_tag(&keys().rate_limit(&user)), Some("U012AB3CD"));
    }

    #[test]
    fn a_slack_envelope_id_is_used_as_it_is() {
        let key = keys().envelope("dbdd0ef3-1543-4f94-bfb4-133d0e6c1545").unwrap();
        assert_eq!(key, "jitgate:envelope:{dbdd0ef3-1543-4f94-bfb4-133d0e6c1545}");
    }

    #[test]
    fn hostile_envelope_ids_cannot_break_out_of_their_hash_tag() {
        for hostile in ["x}:{y", "}", "{", "a b", "a\nb", "*", "jitgate:{JIT-7Q2M4X}:request", "é"] {
            let key = keys().envelope(hostile).unwrap();
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert_eq!(key.matches('}').count(), 1, "{key}");
            assert!(key.ends_with('}'), "{key}");
            let tag = hash_tag(&key).unwrap();
            assert!(tag.starts_with(ESCAPED_MARK) && tag.len() == 65, "{tag}");
        }
    }

    #[test]
    fn distinct_envelope_ids_get_distinct_keys() {
        let ids = ["x}", "x", "x{", "#x", "x.y", "x:y", "x y"];
        let mut seen = std::collections::BTreeSet::new();
        for id in ids {
            assert!(seen.insert(keys().envelope(id).unwrap()), "{id} collided");
        }
    }

    #[test]
    fn empty_and_overlong_envelope_ids_are_refused() {
        assert!(matches!(keys().envelope(""), Err(StoreError::InvalidEnvelopeId(_))));
        let long = "a".repeat(MAX_ENVELOPE_ID_LEN + 1);
        assert!(matches!(keys().envelope(&long), Err(StoreError::InvalidEnvelopeId(_))));
        assert!(keys().envelope(&"a".repeat(MAX_ENVELOPE_ID_LEN)).is_ok());
    }

    #[test]
    fn prefixes_with_braces_or_spaces_are_refused() {
        for bad in ["", "a{b", "a}b", "a b", "a\n", &"p".repeat(MAX_PREFIX_LEN + 1)] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
        assert!(Keys::new("jitgate-test_1.x:y").is_ok());
    }
}
