//! The chain's arithmetic: the canonical bytes an entry's hash covers, the item keys, the timestamp text.
//!
//! Pure functions only; the encoding is specified in the module header of [`crate::audit`], and the pinned hash in
//! the tests below fails if it changes by accident.

use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Version and domain tag at the start of every hashed message: a new encoding must change every hash.
pub const HASH_DOMAIN: &[u8] = b"jitgate.audit.v1\n";

/// The `prev_hash` of entry 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Partition key of the head item.
pub(super) const HEAD_KEY: &str = "HEAD";

/// Prefix of entry partition keys.
const ENTRY_KEY_PREFIX: &str = "E#";

/// The partition key of entry `seq`: zero-padded to 20 digits (`u64::MAX` has 20), so keys sort like numbers.
pub(super) fn entry_key(seq: u64) -> String {
    format!("{ENTRY_KEY_PREFIX}{seq:020}")
}

/// The hash of one entry: SHA-256 over the domain tag and the length-prefixed fields, as lowercase hex.
///
/// Every argument is the attribute's text exactly as stored (`request_id` `None` when the attribute is absent), so
/// a verifier hashes what it reads without re-encoding anything.
pub fn entry_hash(
    prev_hash: &str,
    seq: u64,
    at: &str,
    request_id: Option<&str>,
    actor: &str,
    event_json: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    let seq = seq.to_string();
    for field in [prev_hash, seq.as_str(), at, request_id.unwrap_or(""), actor, event_json] {
        // A length prefix keeps field boundaries unambiguous whatever bytes a field holds. Items are capped at
        // 400 KB by DynamoDB, far below u32::MAX; saturating keeps this total even if that ever changed.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        hasher.update(len.to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The `at` text of an entry: RFC 3339 in UTC.
pub fn format_timestamp(at: OffsetDateTime) -> Result<String, time::error::Format> {
    at.to_offset(UtcOffset::UTC).format(&Rfc3339)
}

/// True for 64 lowercase hex digits, the only shape a stored hash may have.
pub(super) fn is_hash_shaped(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const EVENT: &str = r#"{"type":"expired","request":"JIT-7Q2M4X"}"#;

    #[test]
    fn encoding_is_pinned() {
        // Computed independently with the Python snippet in the module header. If this fails, the encoding changed:
        // every existing chain would stop verifying, so a change needs a new HASH_DOMAIN version instead.
        let hash = entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "jitgate", EVENT);
        assert_eq!(hash, "c9e4e4c3abfe217591bebe26e138c7447c9528df36ae1f5300d9fe7bee47ae33");
    }

    #[test]
    fn every_field_is_covered() {
        let base = entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "jitgate", EVENT);
        let other_prev = "1".repeat(64);
        let variants = [
            entry_hash(&other_prev, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "jitgate", EVENT),
            entry_hash(GENESIS_HASH, 2, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "jitgate", EVENT),
            entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:01Z", Some("JIT-7Q2M4X"), "jitgate", EVENT),
            entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4Y"), "jitgate", EVENT),
            entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", None, "jitgate", EVENT),
            entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "U012AB3CD", EVENT),
            entry_hash(GENESIS_HASH, 1, "2026-11-28T12:00:00Z", Some("JIT-7Q2M4X"), "jitgate", "{}"),
        ];
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(variant, &base, "variant {i} hashed like the original");
        }
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // Without length prefixes, moving text from one field to the next would keep the concatenation equal.
        let a = entry_hash(GENESIS_HASH, 1, "t", Some("JIT-7Q2M4X"), "ab", "c");
        let b = entry_hash(GENESIS_HASH, 1, "t", Some("JIT-7Q2M4X"), "a", "bc");
        assert_ne!(a, b);
    }

    #[test]
    fn keys_sort_like_sequence_numbers() {
        assert_eq!(entry_key(42), "E#00000000000000000042");
        assert!(entry_key(9) < entry_key(10));
        assert_eq!(entry_key(u64::MAX).len(), 22);
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let at = datetime!(2026-11-28 13:00:00.25 +01:00);
        assert_eq!(format_timestamp(at).unwrap(), "2026-11-28T12:00:00.25Z");
    }

    #[test]
    fn hash_shape() {
        assert!(is_hash_shaped(GENESIS_HASH));
        assert!(!is_hash_shaped(&"A".repeat(64)));
        assert!(!is_hash_shaped("abc"));
    }
}
