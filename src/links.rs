//! Signed, expiring links to a request's audit page (pure: no I/O, the time is passed in).
//!
//! The bot posts `{public_url}/audit/JIT-7Q2M4X?exp=<unix seconds>&sig=<hex>` in Slack. The page shows who asked
//! for what, the exact query and the evidence of its approval, so it is only served to someone holding a link
//! jitgate made:
//!
//! ```text
//! sig = lowercase hex of HMAC-SHA256(key = JITGATE_LINK_SECRET, message = "audit:v1:" || request id || ":" || exp)
//! ```
//!
//! The `audit:v1:` prefix separates these signatures from any other use of the same secret and versions the
//! message. A link is refused when its signature does not match (tampered, made for another request, or for other
//! times), when `exp` has passed, or when `exp` lies further ahead than the configured lifetime allows (so shortening
//! `http.audit_link_ttl` also shortens links already posted). Rotating the secret revokes every link at once.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::ids::RequestId;

/// The environment variable holding the signing secret.
pub const LINK_SECRET_ENV: &str = "JITGATE_LINK_SECRET";

/// The shortest secret `jitgate run` accepts: 32 bytes, e.g. the 64 hex digits of `openssl rand -hex 32`.
pub const MIN_SECRET_BYTES: usize = 32;

/// Domain and version of the signed message.
const MESSAGE_PREFIX: &str = "audit:v1:";

type HmacSha256 = Hmac<Sha256>;

/// Why a link was refused. The page a refused visitor sees does not say which: it would only help a forger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// `exp` or `sig` is missing or not of the right shape.
    Unsigned,
    /// The signature does not match this request and expiry.
    BadSignature,
    /// The link's time is over.
    Expired,
    /// `exp` is further ahead than links are made for: signed under a longer lifetime than is now configured.
    TooFarAhead,
}

impl fmt::Display for LinkRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkRefusal::Unsigned => "the link carries no valid exp and sig",
            LinkRefusal::BadSignature => "the link's signature does not match",
            LinkRefusal::Expired => "the link has expired",
            LinkRefusal::TooFarAhead => "the link expires later than links are issued for",
        })
    }
}

/// Makes and checks audit page links.
#[derive(Clone)]
pub struct AuditLinkSigner {
    secret: SecretString,
    ttl: Duration,
}

impl fmt::Debug for AuditLinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("AuditLinkSigner").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl AuditLinkSigner {
    /// A signer with `secret` (see [`check_secret`]) whose links live `ttl`.
    pub fn new(secret: SecretString, ttl: Duration) -> AuditLinkSigner {
        AuditLinkSigner { secret, ttl }
    }

    /// How long links live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The path and query of the audit page of `id`, valid from `now` for the configured lifetime, e.g.
    /// `/audit/JIT-7Q2M4X?exp=1795867200&sig=3f…`. Prefix it with the public URL.
    pub fn sign(&self, id: &RequestId, now: OffsetDateTime) -> String {
        let exp = now.unix_timestamp().saturating_add(ttl_seconds(self.ttl));
        let sig = hex::encode(self.mac(id, exp).finalize().into_bytes());
        format!("/audit/{id}?exp={exp}&sig={sig}")
    }

    /// The full link: `public_url` (with or without a trailing slash) followed by [`AuditLinkSigner::sign`].
    pub fn link(&self, public_url: &str, id: &RequestId, now: OffsetDateTime) -> String {
        format!("{}{}", public_url.trim_end_matches('/'), self.sign(id, now))
    }

    /// Checks a link's `exp` and `sig` for request `id` at `now`.
    ///
    /// The signature is checked before the times, so a forged link learns nothing about the clock; the comparison
    /// is constant-time (`Mac::verify_slice`), so response timing does not reveal how many leading bytes matched.
    pub fn verify(&self, id: &RequestId, exp: i64, sig: &str, now: OffsetDateTime) -> Result<(), LinkRefusal> {
        let Ok(sig) = hex::decode(sig) else {
            return Err(LinkRefusal::BadSignature);
        };
        self.mac(id, exp).verify_slice(&sig).map_err(|_| LinkRefusal::BadSignature)?;
        let now = now.unix_timestamp();
        if now >= exp {
            return Err(LinkRefusal::Expired);
        }
        if exp.saturating_sub(now) > ttl_seconds(self.ttl) {
            return Err(LinkRefusal::TooFarAhead);
        }
        Ok(())
    }

    /// [`AuditLinkSigner::verify`] on the query parameters as they came, either of which may be missing or junk.
    pub fn verify_query(
        &self,
        id: &RequestId,
        exp: Option<&str>,
        sig: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), LinkRefusal> {
        let (Some(exp), Some(sig)) = (exp, sig) else {
            return Err(LinkRefusal::Unsigned);
        };
        // Only the canonical decimal form is accepted: "+17" or "017" would sign differently anyway.
        let exp: i64 = exp.parse().map_err(|_| LinkRefusal::Unsigned)?;
        self.verify(id, exp, sig, now)
    }

    fn mac(&self, id: &RequestId, exp: i64) -> HmacSha256 {
        // HMAC takes a key of any length (longer ones are hashed first), so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(format!("{MESSAGE_PREFIX}{id}:{exp}").as_bytes());
        mac
    }
}

/// Checks a secret is long enough to sign with; the error names the variable and how to make one.
pub fn check_secret(secret: &SecretString) -> Result<(), String> {
    let len = secret.expose_secret().trim().len();
    if len < MIN_SECRET_BYTES {
        return Err(format!(
            "{LINK_SECRET_ENV} is {len} bytes long; use at least {MIN_SECRET_BYTES} random bytes, \
             e.g. `export {LINK_SECRET_ENV}=$(openssl rand -hex 32)`"
        ));
    }
    Ok(())
}

fn ttl_seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

    fn signer() -> AuditLinkSigner {
        AuditLinkSigner::new(SecretString::from("k".repeat(64)), Duration::from_secs(30 * 24 * 3600))
    }

    fn id(text: &str) -> RequestId {
        RequestId::parse(text).unwrap()
    }

    /// The link's `exp` and `sig`.
    fn parts(link: &str) -> (i64, String) {
        let query = link.split_once('?').unwrap().1;
        let (exp, sig) = query.split_once('&').unwrap();
        (exp.strip_prefix("exp=").unwrap().parse().unwrap(), sig.strip_prefix("sig=").unwrap().to_owned())
    }

    #[test]
    fn a_link_names_its_request_and_expiry() {
        let link = signer().sign(&id("JIT-7Q2M4X"), NOW);
        let (exp, sig) = parts(&link);
        assert!(link.starts_with("/audit/JIT-7Q2M4X?exp="), "{link}");
        assert_eq!(exp, NOW.unix_timestamp() + 30 * 24 * 3600);
        assert_eq!(sig.len(), 64);
        assert_eq!(
            signer().link("https://jitgate.example/", &id("JIT-7Q2M4X"), NOW),
            format!("https://jitgate.example{link}")
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_documented_message() {
        // Recomputed from the documented message with the hmac crate directly, not through the signer.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice("k".repeat(64).as_bytes()).unwrap();
        let exp = NOW.unix_timestamp() + 30 * 24 * 3600;
        mac.update(format!("audit:v1:JIT-7Q2M4X:{exp}").as_bytes());
        let (_, sig) = parts(&signer().sign(&id("JIT-7Q2M4X"), NOW));
        assert_eq!(sig, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn a_fresh_link_verifies_until_it_expires() {
        let (exp, sig) = parts(&signer().sign(&id("JIT-7Q2M4X"), NOW));
        let later = NOW + time::Duration::days(29);
        assert_eq!(signer().verify(&id("JIT-7Q2M4X"), exp, &sig, later), Ok(()));
        let over = NOW + time::Duration::days(30);
        assert_eq!(signer().verify(&id("JIT-7Q2M4X"), exp, &sig, over), Err(LinkRefusal::Expired));
    }

    #[test]
    fn tampering_is_refused() {
        let s = signer();
        let (exp, sig) = parts(&s.sign(&id("JIT-7Q2M4X"), NOW));
        // Another request's id, a later expiry, a flipped digit, junk, another key.
        assert_eq!(s.verify(&id("JIT-7Q2M4Y"), exp, &sig, NOW), Err(LinkRefusal::BadSignature));
        assert_eq!(s.verify(&id("JIT-7Q2M4X"), exp + 1, &sig, NOW), Err(LinkRefusal::BadSignature));
        let flipped = format!("{}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
        assert_eq!(s.verify(&id("JIT-7Q2M4X"), exp, &flipped, NOW), Err(LinkRefusal::BadSignature));
        assert_eq!(s.verify(&id("JIT-7Q2M4X"), exp, "zz", NOW), Err(LinkRefusal::BadSignature));
        assert_eq!(s.verify(&id("JIT-7Q2M4X"), exp, &sig[..32], NOW), Err(LinkRefusal::BadSignature));
        let other = AuditLinkSigner::new(SecretString::from("x".repeat(64)), s.ttl());
        assert_eq!(other.verify(&id("JIT-7Q2M4X"), exp, &sig, NOW), Err(LinkRefusal::BadSignature));
    }

    #[test]
    fn missing_or_malformed_parameters_are_unsigned() {
        let s = signer();
        let (exp, sig) = parts(&s.sign(&id("JIT-7Q2M4X"), NOW));
        let exp = exp.to_string();
        assert_eq!(s.verify_query(&id("JIT-7Q2M4X"), Some(&exp), Some(&sig), NOW), Ok(()));
        assert_eq!(s.verify_query(&id("JIT-7Q2M4X"), None, None, NOW), Err(LinkRefusal::Unsigned));
        assert_eq!(s.verify_query(&id("JIT-7Q2M4X"), Some(&exp), None, NOW), Err(LinkRefusal::Unsigned));
        assert_eq!(s.verify_query(&id("JIT-7Q2M4X"), Some("soon"), Some(&sig), NOW), Err(LinkRefusal::Unsigned));
    }

    #[test]
    fn shortening_the_lifetime_shortens_links_already_posted() {
        let (exp, sig) = parts(&signer().sign(&id("JIT-7Q2M4X"), NOW));
        let shorter = AuditLinkSigner::new(SecretString::from("k".repeat(64)), Duration::from_secs(7 * 24 * 3600));
        assert_eq!(shorter.verify(&id("JIT-7Q2M4X"), exp, &sig, NOW), Err(LinkRefusal::TooFarAhead));
        // Once inside the new lifetime, the old link works again until it expires.
        assert_eq!(shorter.verify(&id("JIT-7Q2M4X"), exp, &sig, NOW + time::Duration::days(24)), Ok(()));
    }

    #[test]
    fn short_secrets_are_refused_with_the_fix() {
        let err = check_secret(&SecretString::from("hunter2".to_owned())).unwrap_err();
        assert!(err.contains("JITGATE_LINK_SECRET is 7 bytes long"), "{err}");
        assert!(err.contains("openssl rand -hex 32"), "{err}");
        assert!(!err.contains("hunter2"));
        assert_eq!(check_secret(&SecretString::from("a".repeat(64))), Ok(()));
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", signer()).contains("kkkk"));
    }
}
