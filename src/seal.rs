//! Seals for what jitgate keeps in Redis: an HMAC-SHA256 under a key Redis never sees, so that whoever can write
//! to Redis (any pod that reaches it, anyone on the wire) cannot change a pending request's query, its approval
//! policy or its approvals, nor add an approver to a cached roster, without jitgate noticing.
//!
//! The key is derived from `JITGATE_LINK_SECRET` (which only jitgate's replicas hold) with a purpose label, so one
//! secret serves the audit links and the seals without either key being usable for the other:
//! `key = HMAC-SHA256(link secret, "jitgate:seal:v1:" + purpose)`. Rotating the secret invalidates every seal:
//! pending requests then fail closed (they are refused and must be asked again) and cached rosters are re-fetched.
//!
//! A seal proves a record was written by jitgate, not that it is the latest one jitgate wrote: replaying an older
//! sealed record is stopped elsewhere (the compare-and-set versions, and the audit trail check before a query
//! runs; see `docs/security.md`).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a seal protects; each purpose has its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPurpose {
    /// Access-request records.
    Request,
    /// Cached on-call rosters.
    Roster,
}

impl SealPurpose {
    fn label(self) -> &'static str {
        match self {
            SealPurpose::Request => "request",
            SealPurpose::Roster => "roster",
        }
    }
}

/// Signs and checks seals for one purpose. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    key: std::sync::Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    /// The sealer for `purpose`, keyed from the link secret.
    pub fn derive(secret: &SecretString, purpose: SealPurpose) -> Sealer {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"jitgate:seal:v1:");
        mac.update(purpose.label().as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Sealer { key: std::sync::Arc::new(SecretBox::new(Box::new(key))) }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(self.key.expose_secret()).expect("HMAC takes keys of any length")
    }

    /// The seal of `bytes`, as lowercase hex.
    pub fn seal(&self, bytes: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `seal` is the seal of `bytes` (compared in constant time).
    pub fn verify(&self, bytes: &[u8], seal: &str) -> bool {
        let Ok(expected) = hex::decode(seal) else { return false };
        let mut mac = self.mac();
        mac.update(bytes);
        mac.verify_slice(&expected).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn a_seal_verifies_only_the_bytes_it_was_made_for() {
        let sealer = Sealer::derive(&secret(&"k".repeat(64)), SealPurpose::Request);
        let seal = sealer.seal(b"customer_id=C000042");
        assert!(sealer.verify(b"customer_id=C000042", &seal));
        assert!(!sealer.verify(b"customer_id=C000043", &seal));
        assert!(!sealer.verify(b"customer_id=C000042", "not hex"));
        assert!(!sealer.verify(b"customer_id=C000042", &seal[..62]));
    }

    #[test]
    fn each_purpose_and_each_secret_has_its_own_key() {
        let request = Sealer::derive(&secret(&"k".repeat(64)), SealPurpose::Request);
        let roster = Sealer::derive(&secret(&"k".repeat(64)), SealPurpose::Roster);
        let other = Sealer::derive(&secret(&"j".repeat(64)), SealPurpose::Request);
        let seal = request.seal(b"record");
        assert!(!roster.verify(b"record", &seal));
        assert!(!other.verify(b"record", &seal));
    }

    #[test]
    fn the_key_is_hmac_of_the_documented_label() {
        // Pinned so that replicas of different versions agree on the key for as long as the label says v1.
        let sealer = Sealer::derive(&secret("secret"), SealPurpose::Request);
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"secret").unwrap();
        mac.update(b"jitgate:seal:v1:request");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        let mut expected = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        expected.update(b"x");
        assert_eq!(sealer.seal(b"x"), hex::encode(expected.finalize().into_bytes()));
        assert!(!format!("{sealer:?}").contains("secret"));
    }
}
