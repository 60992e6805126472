//! The audit trail: an append-only, hash-chained log of every request event, kept in a DynamoDB table.
//!
//! jitgate writes one [`AuditEntry`] per [`AuditEvent`] (requested, approved, denied, refused, refusals_counted,
//! expired, cancelled, executed, failed) with the bot's own credentials, never with the temporary query
//! credentials. All requests share one chain, and every entry carries the hash of the one before it, so deleting
//! or editing an entry breaks the chain and [`AuditLog::verify`] names the first place where it breaks.
//!
//! # Table layout
//!
//! One table, partition key `pk` (S), no sort key, and a global secondary index `by-request` (partition key
//! `request_id` (S), sort key `seq` (N), all attributes projected). It holds two kinds of item:
//!
//! | `pk` | attributes |
//! |---|---|
//! | `HEAD` | `seq` (N): the last sequence number; `hash` (S): that entry's hash |
//! | `E#` + `seq` zero-padded to 20 digits, e.g. `E#00000000000000000042` | `seq` (N), `at` (S), `request_id` (S, absent for events of no request), `actor` (S), `event` (S), `prev_hash` (S), `hash` (S) |
//!
//! `at` is the time of the append from the injected clock, RFC 3339 in UTC (`…Z`). `actor` is a Slack user id or
//! `jitgate` for the bot itself. `event` is the event as compact JSON (see [`AuditEvent`]). `prev_hash` is the
//! previous entry's `hash`, or 64 `0` digits for entry 1.
//!
//! # Appending
//!
//! An append is ONE `TransactWriteItems`: a `Put` of entry `seq = head.seq + 1` conditioned on
//! `attribute_not_exists(pk)`, and an `Update` of `HEAD` conditioned on it still holding the `seq` and `hash` that
//! were read (or on `HEAD` not existing, for the first entry). Either both land or neither does, so entries are
//! never overwritten and the head never skips or repeats a number, whatever number of replicas append at once. A
//! writer that loses the race tries again on the new head (returned with the failed condition, or read again), a
//! bounded number of times with jittered backoff. A writer that finds the entry's key taken while the head still
//! holds the state it read stops with an error: the head is behind its entries, and nothing is overwritten.
//!
//! # Hash encoding (version 1)
//!
//! ```text
//! hash    = lowercase hex of SHA-256(message)
//! message = "jitgate.audit.v1\n"
//!           || field(prev_hash) || field(seq) || field(at) || field(request_id) || field(actor) || field(event)
//! field(x) = length of x in bytes as a 4-byte big-endian unsigned integer || the UTF-8 bytes of x
//! ```
//!
//! Every field is the attribute's text exactly as stored; `seq` is written in decimal without leading zeros;
//! `request_id` is the empty string when the attribute is absent. Because `event` is hashed as the stored string,
//! no JSON canonicalisation is needed to re-verify. In Python:
//!
//! ```text
//! def field(s): b = s.encode(); return len(b).to_bytes(4, "big") + b
//! msg = b"jitgate.audit.v1\n" + b"".join(field(x) for x in [prev_hash, str(seq), at, request_id or "", actor, event])
//! assert hashlib.sha256(msg).hexdigest() == item["hash"]
//! ```
//!
//! The chain is intact when entries `1..=HEAD.seq` all exist, each entry's `seq` matches its key, each `hash`
//! matches its content, each `prev_hash` equals the previous entry's `hash` (entry 1: the zero hash), `HEAD.hash`
//! equals the last entry's hash, and no entry exists past the head.
//!
//! What the chain cannot show by itself: someone able to rewrite the whole table can recompute every hash after the
//! entry they changed, or delete every item. Checkpoints of the head in an S3 bucket under Object Lock (`anchor`)
//! anchor the chain against that, up to the last checkpoint: see [`Anchor`] and [`AuditLog::verify_anchored`].

mod anchor;
mod chain;
mod error;
mod event;
mod item;
mod log;
mod verify;

pub use anchor::{
    Anchor, AnchorError, CHECKPOINT_FORMAT, CHECKPOINT_PREFIX, Checkpoint, Checkpointer, Checkpoints, Written,
    checkpoint_key, valid_bucket_name,
};
pub use chain::{GENESIS_HASH, HASH_DOMAIN, entry_hash, format_timestamp};
pub use error::AuditError;
pub use event::{Actor, AttemptedAction, AuditEntry, AuditEvent, CredentialEvidence, refusal_code};
pub use item::StoredEntry;
pub use log::{AppendRetry, AuditLog, REQUEST_INDEX, UnreadableEntry};
pub use verify::{Anchoring, Finding, Problem, VerifyReport};
