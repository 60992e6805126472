//! Checkpoints of the chain head in S3 with Object Lock: the anchor that the bot's own role cannot move.
//!
//! The bot's role must be able to write the audit table, and IAM cannot make a `PutItem` conditional, so whoever
//! holds that role could rewrite entry N and re-hash every entry after it: the chain would still link. A checkpoint
//! records the head (`seq`, `hash`, time) outside the table, in a bucket with versioning and Object Lock, each object
//! locked in COMPLIANCE mode until a retention date. Under compliance mode no identity, the account root included,
//! can delete a locked version or shorten its retention; the bot's role may only add objects under `checkpoints/`
//! (see `manifests/iam/jitgate.yaml`). [`super::AuditLog::verify_anchored`] then checks that every checkpointed
//! entry still has the anchored hash, and that the head is not behind the last checkpoint.
//!
//! # Objects
//!
//! Key `checkpoints/<table>/<seq zero-padded to 20 digits>.json`, body (JSON):
//!
//! ```text
//! {"format":"jitgate.checkpoint.v1","table":"jitgate-audit","seq":42,"hash":"<64 hex>","at":"2026-11-30T12:00:00Z","jitgate_version":"0.1.0"}
//! ```
//!
//! Each is written once, with `If-None-Match: *` (an existing key is never overwritten) and
//! `x-amz-object-lock-mode: COMPLIANCE` plus a retain-until date. Writing the same `seq` again (another replica, a
//! restart) finds the object there, reads it back and accepts it when it holds the same hash: any replica may write
//! checkpoints. A reader takes the OLDEST version of each key: a later version can only come from a writer that
//! skipped `If-None-Match`, and it cannot replace the locked original.
//!
//! What checkpoints cannot show: entries after the last checkpoint are anchored by nothing yet, so a holder of the
//! bot's role can still rewrite those (see `docs/security.md`, "Audit trail anchor").

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tracing::{debug, error, info};

use super::chain::{format_timestamp, is_hash_shaped};
use crate::clock::SharedClock;

/// The `format` of every checkpoint body; a new layout must change it.
pub const CHECKPOINT_FORMAT: &str = "jitgate.checkpoint.v1";

/// Every checkpoint key starts with this; the bot's role may write nothing else in the bucket.
pub const CHECKPOINT_PREFIX: &str = "checkpoints/";

/// Checkpoint objects read at once while verifying.
const READ_CONCURRENCY: usize = 8;

/// The key of the checkpoint of entry `seq` of `table`: zero-padded so keys list in sequence order.
pub fn checkpoint_key(table: &str, seq: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{table}/{seq:020}.json")
}

/// True for a name S3 accepts for a new bucket: 3–63 lowercase letters, digits, dots and hyphens, starting and
/// ending with a letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

/// One checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: String,
    pub table: String,
    pub seq: u64,
    pub hash: String,
    /// When the checkpoint was written, RFC 3339 in UTC.
    pub at: String,
    pub jitgate_version: String,
}

/// What writing a checkpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A new object, locked until the retention date.
    New,
    /// The object was there already with the same hash (another replica, or a restart, wrote it).
    AlreadyThere,
}

/// Every checkpoint of one table, as [`Anchor::read_all`] found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    /// seq → the checkpoint (the oldest version of its key).
    pub by_seq: BTreeMap<u64, Checkpoint>,
    /// Objects under the table's prefix that are not sound checkpoints, or keys holding a later version that differs
    /// from the original: `(key, what is wrong)`. A sound writer produces neither.
    pub problems: Vec<(String, String)>,
}

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("access denied: jitgate's own role may not call S3 {operation} on checkpoint bucket `{bucket}`")]
    AccessDenied { bucket: String, operation: &'static str },

    #[error("S3 {operation} on checkpoint bucket `{bucket}` failed: {detail}")]
    S3 { bucket: String, operation: &'static str, detail: String },

    /// The key exists with another hash: the table disagrees with what was anchored for this entry.
    #[error(
        "checkpoint `{key}` in bucket `{bucket}` anchors hash {anchored} for entry {seq}, but the table now holds \
         {ours}: the audit table was rewritten. Run `jitgate audit verify`"
    )]
    Conflict { bucket: String, key: String, seq: u64, anchored: String, ours: String },

    #[error("checkpoint could not be encoded: {0}")]
    Encode(String),
}

/// The checkpoint bucket, written and read with the bot's own identity.
#[derive(Debug, Clone)]
pub struct Anchor {
    client: Client,
    bucket: String,
    retention: Duration,
    clock: SharedClock,
}

impl Anchor {
    /// Checkpoints in `bucket`, each locked for `retention` from when it is written.
    pub fn new(config: &SdkConfig, bucket: String, retention: Duration, clock: SharedClock) -> Anchor {
        // A local S3 (AWS_ENDPOINT_URL) has no per-bucket host names: address buckets by path there only.
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some()).build();
        Anchor { client: Client::from_conf(s3), bucket, retention, clock }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Writes the checkpoint of entry `seq` (whose hash is `hash`) of `table`, locked in compliance mode. Writing a
    /// checkpoint that is already there with the same hash is fine; with another hash it is a [`AnchorError::Conflict`].
    pub async fn write(&self, table: &str, seq: u64, hash: &str) -> Result<Written, AnchorError> {
        let now = self.clock.now();
        let checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            table: table.to_owned(),
            seq,
            hash: hash.to_owned(),
            at: format_timestamp(now).map_err(|e| AnchorError::Encode(e.to_string()))?,
            jitgate_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let body = serde_json::to_vec(&checkpoint).map_err(|e| AnchorError::Encode(e.to_string()))?;
        let retain_until = now + self.retention;
        let key = checkpoint_key(table, seq);
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            // Never replace an existing key: versioning would keep the original, but readers should not have to
            // choose between two versions a sound writer made.
            .if_none_match("*")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(retain_until.unix_timestamp()))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Written::New),
            Err(err) => err,
        };
        let status = err.raw_response().map(|r| r.status().as_u16());
        // 412: the key exists. 409: a concurrent conditional write of the same key is in flight (another replica).
        if status != Some(412) && status != Some(409) {
            return Err(self.sdk_error("PutObject", err));
        }
        let existing = self.read_oldest(&key).await?;
        match existing {
            Some(Ok(found)) if found.seq == seq && found.hash == hash => Ok(Written::AlreadyThere),
            Some(Ok(found)) => Err(AnchorError::Conflict {
                bucket: self.bucket.clone(),
                key,
                seq,
                anchored: found.hash,
                ours: hash.to_owned(),
            }),
            Some(Err(detail)) => Err(AnchorError::Conflict {
                bucket: self.bucket.clone(),
                key,
                seq,
                anchored: format!("(unreadable: {detail})"),
                ours: hash.to_owned(),
            }),
            // Still being written by the other writer: its write will land; nothing more to do here.
            None => Ok(Written::AlreadyThere),
        }
    }

    /// Every checkpoint of `table`, each from the oldest version of its key.
    pub async fn read_all(&self, table: &str) -> Result<Checkpoints, AnchorError> {
        let prefix = format!("{CHECKPOINT_PREFIX}{table}/");
        // key → version ids, newest first (the order S3 lists them in).
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|err| self.sdk_error("ListObjectVersions", err))?;
            for version in page.versions() {
                if let (Some(key), Some(id)) = (version.key(), version.version_id()) {
                    versions.entry(key.to_owned()).or_default().push(id.to_owned());
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            (key_marker, version_marker) = (page.next_key_marker, page.next_version_id_marker);
            if key_marker.is_none() {
                break;
            }
        }
        let reads = versions.into_iter().map(|(key, ids)| async move {
            let mut bodies = Vec::with_capacity(ids.len());
            // Oldest first: the original, then anything written over it.
            for id in ids.iter().rev() {
                bodies.push(self.get_version(&key, Some(id)).await?);
            }
            Ok::<_, AnchorError>((key, bodies))
        });
        let mut found = Checkpoints::default();
        let mut results = futures::stream::iter(reads).buffered(READ_CONCURRENCY);
        while let Some(result) = results.next().await {
            let (key, bodies) = result?;
            let Some(original) = bodies.first().and_then(Option::as_ref) else { continue };
            if bodies.iter().skip(1).any(|later| later.as_ref() != Some(original)) {
                found.problems.push((key.clone(), "a later version differs from the original".to_owned()));
            }
            match parse_checkpoint(original, &key, table) {
                Ok(checkpoint) => {
                    found.by_seq.insert(checkpoint.seq, checkpoint);
                }
                Err(detail) => found.problems.push((key, detail)),
            }
        }
        Ok(found)
    }

    /// The checkpoint of the highest entry of `table`, or `None` when there is none yet. Lists keys only (a
    /// thousand per request) and reads one object.
    pub async fn latest(&self, table: &str) -> Result<Option<Result<Checkpoint, String>>, AnchorError> {
        let prefix = format!("{CHECKPOINT_PREFIX}{table}/");
        let mut last_key: Option<String> = None;
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| self.sdk_error("ListObjectsV2", err))?;
            // Keys list in ascending order, and the zero-padded sequence numbers sort like numbers.
            if let Some(key) = page.contents().iter().filter_map(|o| o.key()).max() {
                last_key = Some(key.to_owned());
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => break,
            }
        }
        match last_key {
            Some(key) => self.read_oldest(&key).await,
            None => Ok(None),
        }
    }

    /// The oldest version of `key`, parsed; `None` when the key has no version.
    async fn read_oldest(&self, key: &str) -> Result<Option<Result<Checkpoint, String>>, AnchorError> {
        let listed = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|err| self.sdk_error("ListObjectVersions", err))?;
        let oldest =
            listed.versions().iter().filter(|v| v.key() == Some(key)).filter_map(|v| v.version_id()).next_back();
        let Some(id) = oldest else { return Ok(None) };
        let Some(body) = self.get_version(key, Some(id)).await? else { return Ok(None) };
        let table = key.trim_start_matches(CHECKPOINT_PREFIX).split('/').next().unwrap_or_default();
        Ok(Some(parse_checkpoint(&body, key, table)))
    }

    async fn get_version(&self, key: &str, version: Option<&str>) -> Result<Option<Vec<u8>>, AnchorError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(404) => return Ok(None),
            Err(err) => return Err(self.sdk_error("GetObject", err)),
        };
        let bytes = out.body.collect().await.map_err(|err| AnchorError::S3 {
            bucket: self.bucket.clone(),
            operation: "GetObject",
            detail: err.to_string(),
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    fn sdk_error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> AnchorError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if err.code() == Some("AccessDenied") || err.raw_response().map(|r| r.status().as_u16()) == Some(403) {
            return AnchorError::AccessDenied { bucket: self.bucket.clone(), operation };
        }
        AnchorError::S3 { bucket: self.bucket.clone(), operation, detail: DisplayErrorContext(&err).to_string() }
    }
}

/// A checkpoint body read from `key`: well formed, of this format and table, and stored under its own key.
fn parse_checkpoint(body: &[u8], key: &str, table: &str) -> Result<Checkpoint, String> {
    let checkpoint: Checkpoint = serde_json::from_slice(body).map_err(|e| format!("not a jitgate checkpoint ({e})"))?;
    if checkpoint.format != CHECKPOINT_FORMAT {
        return Err(format!("unknown format `{}`", checkpoint.format));
    }
    if checkpoint.table != table || checkpoint_key(table, checkpoint.seq) != key {
        return Err(format!("holds entry {} of table `{}`, not what its key names", checkpoint.seq, checkpoint.table));
    }
    if !is_hash_shaped(&checkpoint.hash) {
        return Err("its hash is not 64 lowercase hex digits".to_owned());
    }
    Ok(checkpoint)
}

/// Writes a checkpoint of the head every time it is asked to, when the head moved. One per replica; replicas
/// checkpointing the same head at once write the same object, which is fine.
#[derive(Debug)]
pub struct Checkpointer {
    log: super::AuditLog,
    anchor: Anchor,
    /// The last checkpoint this replica wrote or found: `(seq, hash)`.
    last: Option<(u64, String)>,
}

impl Checkpointer {
    pub fn new(log: super::AuditLog, anchor: Anchor) -> Checkpointer {
        Checkpointer { log, anchor, last: None }
    }

    /// Checkpoints the current head unless it is the last one checkpointed. Returns the entry anchored, if any.
    ///
    /// Before anchoring a new head it checks that the table still holds the hash this replica anchored last time:
    /// a table rewritten beneath an earlier checkpoint must not get a fresh checkpoint that seems to vouch for it.
    pub async fn tick(&mut self) -> Result<Option<(u64, Written)>, super::AuditError> {
        if self.last.is_none() {
            // After a (re)start, the bucket's last checkpoint is what the table must still agree with: a restart
            // must not be a way to have a rewritten chain anchored.
            self.last = match self.anchor.latest(self.log.table()).await? {
                None => None,
                Some(Ok(checkpoint)) => Some((checkpoint.seq, checkpoint.hash)),
                Some(Err(detail)) => {
                    return Err(AnchorError::S3 {
                        bucket: self.anchor.bucket.clone(),
                        operation: "GetObject",
                        detail: format!("the last checkpoint is not sound ({detail}); run `jitgate audit verify`"),
                    }
                    .into());
                }
            };
        }
        let Some((seq, hash)) = self.log.head().await? else { return Ok(None) };
        if let Some((last_seq, last_hash)) = &self.last {
            if *last_seq == seq {
                return Ok(None);
            }
            let stored = self.log.stored_hash(*last_seq).await?;
            if stored.as_deref() != Some(last_hash.as_str()) {
                error!(
                    table = %self.log.table(),
                    checkpoint_seq = last_seq,
                    "the audit table no longer holds the hash of the last checkpoint; not anchoring the rewritten \
                     chain. Run `jitgate audit verify`"
                );
                return Err(AnchorError::Conflict {
                    bucket: self.anchor.bucket.clone(),
                    key: checkpoint_key(self.log.table(), *last_seq),
                    seq: *last_seq,
                    anchored: last_hash.clone(),
                    ours: stored.unwrap_or_else(|| "(no entry)".to_owned()),
                }
                .into());
            }
        }
        let written = self.anchor.write(self.log.table(), seq, &hash).await?;
        match written {
            Written::New => {
                info!(table = %self.log.table(), seq, bucket = %self.anchor.bucket, "audit chain checkpointed")
            }
            Written::AlreadyThere => debug!(table = %self.log.table(), seq, "checkpoint already written"),
        }
        self.last = Some((seq, hash));
        Ok(Some((seq, written)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_sequence_numbers_and_name_the_table() {
        assert_eq!(checkpoint_key("jitgate-audit", 42), "checkpoints/jitgate-audit/00000000000000000042.json");
        assert!(checkpoint_key("t", 9) < checkpoint_key("t", 10));
    }

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("jitgate-audit-checkpoints-123456789012"));
        for bad in ["ab", "Upper", "-edge", "edge-", "a..b", "under_score", &"a".repeat(64)] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_sound_bodies_under_their_own_key_are_checkpoints() {
        let checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            table: "audit".into(),
            seq: 7,
            hash: "ab".repeat(32),
            at: "2026-11-30T12:00:00Z".into(),
            jitgate_version: "0.1.0".into(),
        };
        let body = serde_json::to_vec(&checkpoint).unwrap();
        assert_eq!(parse_checkpoint(&body, &checkpoint_key("audit", 7), "audit"), Ok(checkpoint.clone()));
        // Copied under another seq's key, or another table's: not a checkpoint of what the key names.
        assert!(parse_checkpoint(&body, &checkpoint_key("audit", 8), "audit").is_err());
        assert!(parse_checkpoint(&body, &checkpoint_key("other", 7), "other").is_err());
        let bad_hash = serde_json::to_vec(&Checkpoint { hash: "XY".into(), ..checkpoint }).unwrap();
        assert!(parse_checkpoint(&bad_hash, &checkpoint_key("audit", 7), "audit").unwrap_err().contains("hash"));
        assert!(parse_checkpoint(b"{}", &checkpoint_key("audit", 7), "audit").is_err());
    }
}
