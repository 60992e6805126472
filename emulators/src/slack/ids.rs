//! Random identifiers in Slack's formats: envelope ids (UUID v4), trigger ids, tickets, hashes.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// A UUID v4 in its usual 8-4-4-4-12 form, like Slack's `envelope_id`.
pub(crate) fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// `n` random lowercase hex digits.
pub(crate) fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect()
}

/// `n` random decimal digits, not starting with 0.
pub(crate) fn digits(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|i| char::from_digit(rng.random_range(u32::from(i == 0)..10), 10).unwrap_or('1')).collect()
}

/// A trigger id shaped like Slack's (`<digits>.<digits>.<hex>`).
pub(crate) fn trigger_id() -> String {
    format!("{}.{}.{}", digits(13), digits(13), hex(32))
}

/// A view `hash` shaped like Slack's (`<unix seconds>.<random>`).
pub(crate) fn view_hash() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    format!("{secs}.{}", hex(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_v4_shaped_and_fresh() {
        let a = uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_ne!(a, uuid());
    }

    #[test]
    fn trigger_id_has_three_dotted_parts() {
        let t = trigger_id();
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3, "{t}");
        assert!(parts[0].chars().all(|c| c.is_ascii_digit()));
    }
}
