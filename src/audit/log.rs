//! The audit table in DynamoDB: append to the chain, read entries back, verify the whole chain.
//!
//! Built from the bot's own [`SdkConfig`], never from a request's temporary credentials: those may only run the one
//! approved query, and the audit trail must not depend on what a request was allowed to do.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TableDescription, TransactWriteItem, Update,
};
use rand::Rng;
use tracing::{debug, warn};

use super::anchor::Anchor;
use super::chain::{GENESIS_HASH, HEAD_KEY, entry_key, format_timestamp};
use super::error::AuditError;
use super::event::{AuditEntry, AuditEvent};
use super::item::{HASH, Head, Item, PK, REQUEST_ID, SEQ, StoredEntry};
use super::verify::{Anchoring, Finding, Problem, VerifyReport, Walker};
use crate::clock::SharedClock;
use crate::ids::RequestId;

/// The global secondary index on `request_id` (sort key `seq`) that [`AuditLog::entries_for`] reads.
pub const REQUEST_INDEX: &str = "by-request";

/// Entries fetched per `BatchGetItem` while verifying (DynamoDB's maximum).
const VERIFY_BATCH: u64 = 100;

/// Rounds of `UnprocessedKeys` a batch read may take before giving up.
const MAX_BATCH_ROUNDS: u32 = 10;

/// An event's JSON must leave room in DynamoDB's 400 KB item for the other attributes.
const MAX_EVENT_BYTES: usize = 350 * 1024;

/// How long [`AuditLog::ensure_table`] waits for a new table to become active.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// An item of a request's trail that could not be read as an entry at all (an attribute missing or of the wrong
/// type), as [`AuditLog::stored_entries_for`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableEntry {
    /// The item's `seq`, when that much can be read.
    pub seq: Option<u64>,
    pub problem: String,
}

/// How hard an append tries when other writers keep appending first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendRetry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles per attempt up to `max_delay`. Each sleep is drawn uniformly
    /// below the bound ("full jitter") so writers that collided do not collide again in lockstep.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for AppendRetry {
    fn default() -> Self {
        // Each round of a race lands exactly one writer, so a writer among n busy ones loses a round with odds of
        // about (n-1)/n: 50 attempts make giving up vanishingly rare for the few replicas jitgate runs, and the
        // small cap keeps the worst case to a few seconds.
        AppendRetry { max_attempts: 50, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(100) }
    }
}

impl AppendRetry {
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(16);
        let bound = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// What one transactional append attempt came to.
enum Attempt {
    Appended,
    /// Another writer appended first: the head moved. Try again on the new head, which DynamoDB returns with the
    /// failed condition (saving a read under contention); `None` when it did not, and the head must be read.
    LostRace(Option<Head>),
    /// The entry's key was taken while the head condition held: either a race seen mid-flight or a head behind
    /// its entries. Which one is told by reading both.
    EntryTaken,
}

/// The audit table: append-only, one hash chain across all requests and replicas.
#[derive(Debug, Clone)]
pub struct AuditLog {
    client: Client,
    table: String,
    clock: SharedClock,
    retry: AppendRetry,
    /// Counts appends that fail for good (`jitgate_audit_append_failures_total`), what operators alert on.
    metrics: Option<crate::telemetry::Metrics>,
}

impl AuditLog {
    /// An audit log on `table`, using the bot's own AWS identity from `config`; timestamps come from `clock`.
    pub fn new(config: &SdkConfig, table: String, clock: SharedClock) -> AuditLog {
        AuditLog { client: Client::new(config), table, clock, retry: AppendRetry::default(), metrics: None }
    }

    /// The same log, counting and timing its calls to the audit table in `metrics` (service `audit`).
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> AuditLog {
        let config = self
            .client
            .config()
            .to_builder()
            .interceptor(crate::telemetry::CallMetrics::new(metrics.clone(), "audit"))
            .build();
        self.client = Client::from_conf(config);
        self.metrics = Some(metrics);
        self
    }

    /// Replaces the append retry policy.
    pub fn with_retry(mut self, retry: AppendRetry) -> AuditLog {
        self.retry = retry;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (with its request index) if it does not exist and waits until it is active; checks the
    /// layout of one that does. For local stacks and tests: production tables come from the deployment template.
    pub async fn ensure_table(&self) -> Result<(), AuditError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(out) => return self.check_layout(out.table()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => {}
            Err(err) => return Err(self.sdk_error("DescribeTable", err)),
        }
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK, ScalarAttributeType::S)?)
            .attribute_definitions(attribute(REQUEST_ID, ScalarAttributeType::S)?)
            .attribute_definitions(attribute(SEQ, ScalarAttributeType::N)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(REQUEST_INDEX)
                    .key_schema(key(REQUEST_ID, KeyType::Hash)?)
                    .key_schema(key(SEQ, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another replica created it between our describe and create: fine, wait for it like our own.
            Err(err) if err.code() == Some("ResourceInUseException") => {}
            Err(err) => return Err(self.sdk_error("CreateTable", err)),
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(TABLE_READY_TIMEOUT)
            .await
            .map_err(|err| self.sdk_error_text("DescribeTable", DisplayErrorContext(&err).to_string()))?;
        Ok(())
    }

    /// Appends one event as the next entry of the chain and returns the entry as written.
    ///
    /// The entry and the head move together in one transaction conditioned on the head read just before, so of
    /// several writers racing for the same sequence number exactly one lands and the others retry on the new head.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let appended = self.append_once(event).await;
        if let (Err(_), Some(metrics)) = (&appended, &self.metrics) {
            metrics.audit_append_failure();
        }
        appended
    }

    /// [`AuditLog::append`], uncounted.
    async fn append_once(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let event_json = encode_event(&event)?;
        let request_id = event.request_id().cloned();
        let actor = event.actor();
        let mut attempt = 0;
        let mut known_head = None;
        loop {
            attempt += 1;
            let head = match known_head.take() {
                Some(head) => Some(head),
                None => self.read_head().await?,
            };
            let (prev_seq, prev_hash) = match &head {
                Some(head) => (head.seq, head.hash.clone()),
                None => (0, GENESIS_HASH.to_owned()),
            };
            let seq = prev_seq.checked_add(1).ok_or_else(|| self.corrupt("the head", "its seq cannot grow"))?;
            // Read the clock per attempt, so timestamps follow the order entries actually land in.
            let at = self.clock.now();
            let at_text = format_timestamp(at).map_err(|e| AuditError::Encode(format!("timestamp {at}: {e}")))?;
            let mut stored = StoredEntry {
                seq,
                at: at_text,
                request_id: request_id.as_ref().map(|id| id.as_str().to_owned()),
                actor: actor.as_str().to_owned(),
                event: event_json.clone(),
                prev_hash,
                hash: String::new(),
            };
            stored.hash = stored.computed_hash();
            match self.try_append(&stored, head.as_ref()).await? {
                Attempt::Appended => {
                    debug!(table = %self.table, seq, kind = event.kind(), request_id = ?request_id, "audit entry appended");
                    return Ok(AuditEntry {
                        seq,
                        at: at.to_offset(time::UtcOffset::UTC),
                        request_id,
                        actor,
                        event,
                        prev_hash: stored.prev_hash,
                        hash: stored.hash,
                    });
                }
                Attempt::LostRace(head) => known_head = head,
                Attempt::EntryTaken => {
                    if let Some(head_seq) = self.head_behind(seq).await? {
                        // Never overwrite: a head behind its entries means the table was changed by hand.
                        warn!(table = %self.table, head_seq, entry_seq = seq, "audit head is behind its entries");
                        return Err(AuditError::HeadBehind { table: self.table.clone(), head_seq, entry_seq: seq });
                    }
                }
            }
            if attempt >= self.retry.max_attempts {
                return Err(AuditError::Contention { table: self.table.clone(), attempts: attempt });
            }
            debug!(table = %self.table, seq, attempt, "another writer appended first; retrying on the new head");
            // Counted so contention on the chain's head (several replicas appending at once) is visible.
            if let Some(metrics) = &self.metrics {
                metrics.audit_append_retry();
            }
            tokio::time::sleep(self.retry.backoff(attempt)).await;
        }
    }

    /// Every entry of one request, in chain order. Each entry's own hash is checked; an entry that fails the check
    /// is an error, never returned as if sound. (Links between entries are [`AuditLog::verify`]'s job.)
    pub async fn entries_for(&self, request_id: &RequestId) -> Result<Vec<AuditEntry>, AuditError> {
        let items = self.request_items(request_id).await?;
        let mut entries = items.iter().map(|item| self.decode_entry(item)).collect::<Result<Vec<_>, _>>()?;
        // The index is ordered by seq already; sorting keeps the promise even if pages ever came back otherwise.
        entries.sort_by_key(|entry| entry.seq);
        Ok(entries)
    }

    /// Every entry of one request as stored, in chain order, WITHOUT checking hashes: for readers that show what
    /// is wrong with a damaged entry instead of refusing the whole trail. The caller checks each entry (with
    /// [`StoredEntry::computed_hash`] or [`super::entry_hash`]) before trusting it.
    pub async fn stored_entries_for(
        &self,
        request_id: &RequestId,
    ) -> Result<Vec<Result<StoredEntry, UnreadableEntry>>, AuditError> {
        let items = self.request_items(request_id).await?;
        let mut entries: Vec<Result<StoredEntry, UnreadableEntry>> = items
            .iter()
            .map(|item| {
                StoredEntry::from_item(item).map_err(|problem| UnreadableEntry {
                    seq: item.get(SEQ).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()),
                    problem,
                })
            })
            .collect();
        entries.sort_by_key(|entry| match entry {
            Ok(stored) => Some(stored.seq),
            Err(unreadable) => unreadable.seq,
        });
        Ok(entries)
    }

    /// The `hash` attribute of entry `seq` exactly as stored (unchecked), or `None` when the entry does not exist
    /// or has no readable hash: what the next entry's `prev_hash` must equal.
    pub async fn stored_hash(&self, seq: u64) -> Result<Option<String>, AuditError> {
        Ok(self.get_item(&entry_key(seq)).await?.and_then(|item| item.get(HASH).and_then(|v| v.as_s().ok()).cloned()))
    }

    /// A cheap readiness check: the table exists, this identity may describe it, and it is laid out as jitgate
    /// expects. One `DescribeTable`, no reads of entries.
    pub async fn check(&self) -> Result<(), AuditError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|err| self.sdk_error("DescribeTable", err))?;
        self.check_layout(out.table())
    }

    /// The raw items of one request from the request index, all pages.
    async fn request_items(&self, request_id: &RequestId) -> Result<Vec<Item>, AuditError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(REQUEST_INDEX)
                .key_condition_expression("#rid = :rid")
                .expression_attribute_names("#rid", REQUEST_ID)
                .expression_attribute_values(":rid", AttributeValue::S(request_id.as_str().to_owned()))
                .scan_index_forward(true)
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|err| self.sdk_error("Query", err))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every entry from 1 to the head, in chain order, handed to `each` one batch at a time (memory stays bounded
    /// however long the chain). Each entry's own hash is checked; a missing entry is an error (run `verify` to
    /// find out more). Returns how many entries were read.
    pub async fn for_each_entry(&self, mut each: impl FnMut(AuditEntry)) -> Result<u64, AuditError> {
        let Some(head) = self.read_head().await? else { return Ok(0) };
        let mut first = 1;
        while first <= head.seq {
            let last = head.seq.min(first.saturating_add(VERIFY_BATCH - 1));
            let mut batch = self.batch_get(first, last).await?;
            for seq in first..=last {
                let item =
                    batch.remove(&entry_key(seq)).ok_or_else(|| self.corrupt(&format!("entry {seq}"), "is missing"))?;
                each(self.decode_entry(&item)?);
            }
            first = last + 1;
        }
        Ok(head.seq)
    }

    /// Entry `seq`, or `None` when there is no such entry. Its own hash is checked.
    pub async fn get(&self, seq: u64) -> Result<Option<AuditEntry>, AuditError> {
        match self.get_item(&entry_key(seq)).await? {
            Some(item) => self.decode_entry(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Walks the chain from entry 1 to the head, fetching entries in batches, and reports the first problem.
    ///
    /// The chain is checked as of the head read at the start: entries appended meanwhile are not walked, and are
    /// not mistaken for entries past the head.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        self.verify_anchored(None).await
    }

    /// [`AuditLog::verify`], and with an `anchor` also against its checkpoints: each checkpointed entry must hold
    /// exactly the anchored hash, and the head must not be behind the last checkpoint. A chain rewritten and
    /// re-hashed by someone holding jitgate's role links, but is caught here up to the last checkpoint.
    pub async fn verify_anchored(&self, anchor: Option<&Anchor>) -> Result<VerifyReport, AuditError> {
        // Checkpoints are read BEFORE the head: every one of them was written from a head that existed before this
        // read, so a head behind one means entries were taken back, not that a checkpoint was written meanwhile.
        let (anchors, anchoring, tampered): (std::collections::BTreeMap<u64, String>, _, _) = match anchor {
            None => (Default::default(), Anchoring::Unanchored, None),
            Some(anchor) => {
                let found = anchor.read_all(&self.table).await?;
                let last = found.by_seq.last_key_value().map(|(seq, c)| (*seq, c.at.clone()));
                let anchoring =
                    Anchoring::Checked { bucket: anchor.bucket().to_owned(), count: found.by_seq.len(), last };
                let tampered = found.problems.first().map(|(key, detail)| Finding {
                    seq: None,
                    request_id: None,
                    problem: Problem::CheckpointTampered { key: key.clone(), detail: detail.clone() },
                });
                let anchors = found.by_seq.into_iter().map(|(seq, c)| (seq, c.hash)).collect();
                (anchors, anchoring, tampered)
            }
        };
        let report = |verified, head_hash, finding| VerifyReport {
            table: self.table.clone(),
            verified,
            head_hash,
            finding,
            anchoring: anchoring.clone(),
        };
        let head = match self.get_item(HEAD_KEY).await? {
            None => {
                // No head: a sound chain is empty, so any entry 1 means the head was deleted.
                let finding = self.get_item(&entry_key(1)).await?.map(|_| Finding {
                    seq: None,
                    request_id: None,
                    problem: Problem::HeadMissing,
                });
                // Nor may an empty chain have checkpoints: the anchored entries are gone.
                let emptied = anchors.last_key_value().map(|(&checkpoint_seq, _)| Finding {
                    seq: Some(1),
                    request_id: None,
                    problem: Problem::BehindCheckpoint { head_seq: 0, checkpoint_seq },
                });
                return Ok(report(0, None, finding.or(emptied).or(tampered)));
            }
            Some(item) => match Head::from_item(&item) {
                Ok(head) => head,
                Err(detail) => {
                    let problem = Problem::HeadMalformed { detail };
                    return Ok(report(0, None, Some(Finding { seq: None, request_id: None, problem })));
                }
            },
        };

        let mut walker = Walker::anchored(anchors);
        let mut first = 1;
        while first <= head.seq {
            let last = head.seq.min(first.saturating_add(VERIFY_BATCH - 1));
            let mut batch = self.batch_get(first, last).await?;
            for seq in first..=last {
                if let Err(finding) = walker.step(batch.remove(&entry_key(seq)).as_ref(), head.seq) {
                    return Ok(report(walker.verified(), None, Some(finding)));
                }
            }
            first = last + 1;
        }
        if let Err(finding) = walker.finish(&head) {
            return Ok(report(walker.verified(), None, Some(finding)));
        }

        // An entry past the head is normal only if it was appended after we read the head; an append moves entry
        // and head together, so reading the entry first and the head second tells the two apart.
        let next = head.seq.saturating_add(1);
        if self.get_item(&entry_key(next)).await?.is_some() {
            let head_now = self.read_head().await?.map(|h| h.seq).unwrap_or(0);
            if head_now < next {
                let problem = Problem::BeyondHead { head_seq: head.seq };
                return Ok(report(
                    walker.verified(),
                    None,
                    Some(Finding { seq: Some(next), request_id: None, problem }),
                ));
            }
        }
        if let Some(finding) = tampered {
            return Ok(report(walker.verified(), None, Some(finding)));
        }
        Ok(report(walker.verified(), Some(head.hash), None))
    }

    /// The head: the last entry's `seq` and `hash`, or `None` for an empty chain.
    pub async fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        Ok(self.read_head().await?.map(|head| (head.seq, head.hash)))
    }

    /// One append attempt: the entry `Put` and the head `Update` in a single transaction.
    async fn try_append(&self, entry: &StoredEntry, head: Option<&Head>) -> Result<Attempt, AuditError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(entry.to_item()))
            // Never overwrite an entry, whatever the head says.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_error)?;
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(HEAD_KEY.to_owned()))
            .update_expression("SET #seq = :seq, #hash = :hash")
            .expression_attribute_names("#seq", SEQ)
            .expression_attribute_names("#hash", HASH)
            .expression_attribute_values(":seq", AttributeValue::N(entry.seq.to_string()))
            .expression_attribute_values(":hash", AttributeValue::S(entry.hash.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        // The head moves only from exactly the state this entry was chained to.
        let update = match head {
            None => update.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", PK),
            Some(head) => update
                .condition_expression("#seq = :prev_seq AND #hash = :prev_hash")
                .expression_attribute_values(":prev_seq", AttributeValue::N(head.seq.to_string()))
                .expression_attribute_values(":prev_hash", AttributeValue::S(head.hash.clone())),
        }
        .build()
        .map_err(build_error)?;

        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Attempt::Appended),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
            return Err(self.sdk_error("TransactWriteItems", err));
        };
        // One reason per item, in request order: [entry put, head update]. "None" means that item was fine.
        let reasons = cancelled.cancellation_reasons();
        let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
        let retryable = |code: &str| {
            matches!(
                code,
                "None"
                    | "ConditionalCheckFailed"
                    | "TransactionConflict"
                    | "ThrottlingError"
                    | "ProvisionedThroughputExceeded"
            )
        };
        if !codes.iter().all(|code| retryable(code)) {
            let detail = format!("transaction cancelled: {}", codes.join(", "));
            return Err(self.sdk_error_text("TransactWriteItems", detail));
        }
        Ok(match codes.as_slice() {
            ["ConditionalCheckFailed", "None"] => Attempt::EntryTaken,
            _ => {
                // Only a head that reads cleanly is reused; anything else is read again and judged there.
                let current = reasons.get(1).and_then(|r| r.item()).and_then(|item| Head::from_item(item).ok());
                Attempt::LostRace(current)
            }
        })
    }

    /// `Some(head seq)` when entry `seq` exists although the head is before it. The entry is read first: an append
    /// writes entry and head atomically, so a head read afterwards includes any append that wrote the entry.
    async fn head_behind(&self, seq: u64) -> Result<Option<u64>, AuditError> {
        if self.get_item(&entry_key(seq)).await?.is_none() {
            return Ok(None);
        }
        let head_seq = self.read_head().await?.map(|h| h.seq).unwrap_or(0);
        Ok((head_seq < seq).then_some(head_seq))
    }

    async fn read_head(&self) -> Result<Option<Head>, AuditError> {
        match self.get_item(HEAD_KEY).await? {
            Some(item) => Head::from_item(&item).map(Some).map_err(|problem| self.corrupt("the head", &problem)),
            None => Ok(None),
        }
    }

    /// A strongly consistent read of one item: the chain must never be extended from a stale head.
    async fn get_item(&self, pk: &str) -> Result<Option<Item>, AuditError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| self.sdk_error("GetItem", err))?;
        Ok(out.item)
    }

    /// Entries `first..=last` (at most [`VERIFY_BATCH`]), keyed by `pk`; absent entries are simply not in the map.
    async fn batch_get(&self, first: u64, last: u64) -> Result<HashMap<String, Item>, AuditError> {
        let keys: Vec<Item> =
            (first..=last).map(|seq| HashMap::from([(PK.to_owned(), AttributeValue::S(entry_key(seq)))])).collect();
        let mut request =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(build_error)?;
        let mut found = HashMap::new();
        for round in 1..=MAX_BATCH_ROUNDS {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|err| self.sdk_error("BatchGetItem", err))?;
            for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                if let Some(AttributeValue::S(pk)) = item.get(PK) {
                    found.insert(pk.clone(), item);
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    // DynamoDB returns unprocessed keys when throttled; back off before asking again.
                    request = rest;
                    tokio::time::sleep(self.retry.backoff(round)).await;
                }
                _ => return Ok(found),
            }
        }
        Err(self.sdk_error_text("BatchGetItem", format!("keys still unprocessed after {MAX_BATCH_ROUNDS} rounds")))
    }

    /// An entry read for a caller: well formed and matching its own hash, or an error naming it.
    fn decode_entry(&self, item: &Item) -> Result<AuditEntry, AuditError> {
        let location = match item.get(SEQ).and_then(|v| v.as_n().ok()) {
            Some(seq) => format!("entry {seq}"),
            None => "an entry".to_owned(),
        };
        let stored = StoredEntry::from_item(item).map_err(|problem| self.corrupt(&location, &problem))?;
        let computed = stored.computed_hash();
        if computed != stored.hash {
            return Err(self.corrupt(&location, "its content does not match its hash (it was edited)"));
        }
        stored.parse().map_err(|problem| self.corrupt(&location, &problem))
    }

    fn check_layout(&self, table: Option<&TableDescription>) -> Result<(), AuditError> {
        let problem = |problem: &str| AuditError::TableSchema { table: self.table.clone(), problem: problem.into() };
        let Some(table) = table else {
            return Err(problem("DescribeTable returned no description"));
        };
        let keys: Vec<(&str, &KeyType)> =
            table.key_schema().iter().map(|k| (k.attribute_name(), k.key_type())).collect();
        if keys != [(PK, &KeyType::Hash)] {
            return Err(problem(&format!("its primary key must be `{PK}` (partition key) alone")));
        }
        let index = table.global_secondary_indexes().iter().find(|i| i.index_name() == Some(REQUEST_INDEX));
        let index_keys: Option<Vec<(&str, &KeyType)>> =
            index.map(|i| i.key_schema().iter().map(|k| (k.attribute_name(), k.key_type())).collect());
        if index_keys.as_deref() != Some(&[(REQUEST_ID, &KeyType::Hash), (SEQ, &KeyType::Range)][..]) {
            return Err(problem(&format!(
                "it needs a global secondary index `{REQUEST_INDEX}` on `{REQUEST_ID}` (partition) and `{SEQ}` (sort)"
            )));
        }
        Ok(())
    }

    fn corrupt(&self, location: &str, problem: &str) -> AuditError {
        AuditError::Corrupt { table: self.table.clone(), location: location.to_owned(), problem: problem.to_owned() }
    }

    /// Maps an SDK error: a missing table and a denial get their own variants (a denial from IAM comes back as
    /// HTTP 403, sometimes without an error code, so the status decides).
    fn sdk_error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> AuditError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if err.code() == Some("ResourceNotFoundException") {
            return AuditError::TableMissing { table: self.table.clone() };
        }
        let denied =
            err.code() == Some("AccessDeniedException") || err.raw_response().map(|r| r.status().as_u16()) == Some(403);
        if denied {
            return AuditError::AccessDenied { table: self.table.clone(), operation };
        }
        self.sdk_error_text(operation, DisplayErrorContext(&err).to_string())
    }

    fn sdk_error_text(&self, operation: &'static str, detail: String) -> AuditError {
        AuditError::Dynamo { table: self.table.clone(), operation, detail }
    }
}

/// The event as the JSON text that is stored and hashed. Refuses what would not read back as the same event
/// (a NaN capacity would be written as `null`), and what would not fit in an item.
fn encode_event(event: &AuditEvent) -> Result<String, AuditError> {
    let json = serde_json::to_string(event).map_err(|e| AuditError::Encode(format!("{} event: {e}", event.kind())))?;
    match serde_json::from_str::<AuditEvent>(&json) {
        Ok(back) if &back == event => {}
        _ => return Err(AuditError::Encode(format!("{} event does not read back as written", event.kind()))),
    }
    if json.len() > MAX_EVENT_BYTES {
        return Err(AuditError::Encode(format!(
            "{} event is {} bytes, more than the {MAX_EVENT_BYTES} an audit entry holds",
            event.kind(),
            json.len()
        )));
    }
    Ok(json)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, AuditError> {
    AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(build_error)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, AuditError> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(build_error)
}

/// A request builder missing a required field: a bug here, reported rather than panicking.
fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> AuditError {
    AuditError::Encode(format!("DynamoDB request could not be built: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::CredentialEvidence;
    use crate::request::ExecutionSummary;
    use crate::runbook::Fingerprint;

    fn executed(consumed_capacity: f64) -> AuditEvent {
        let fingerprint: Fingerprint = serde_json::from_value(serde_json::json!("ab".repeat(32))).unwrap();
        AuditEvent::Executed {
            request: RequestId::parse("JIT-7Q2M4X").unwrap(),
            fingerprint,
            summary: ExecutionSummary {
                row_count: 1,
                truncated: false,
                consumed_capacity,
                result_sha256: "00".into(),
                write: None,
                unmasked: vec![],
            },
            credentials: CredentialEvidence {
                assumed_role_id: "AROAEXAMPLE:jit".into(),
                access_key_id: "ASIAEXAMPLE".into(),
                expires_at: time::macros::datetime!(2026-11-28 12:15 UTC),
                session_policy: "{}".into(),
            },
        }
    }

    #[test]
    fn events_are_stored_only_if_they_read_back_the_same() {
        assert!(encode_event(&executed(0.5)).unwrap().contains(r#""consumed_capacity":0.5"#));
        // serde_json writes NaN as null, which would not read back: refused before anything is hashed.
        let err = encode_event(&executed(f64::NAN)).unwrap_err();
        assert!(err.to_string().contains("does not read back as written"), "{err}");
    }

    #[test]
    fn oversized_events_are_refused_with_their_size() {
        let event = AuditEvent::Failed {
            request: RequestId::parse("JIT-7Q2M4X").unwrap(),
            code: None,
            reason: "x".repeat(MAX_EVENT_BYTES),
        };
        let err = encode_event(&event).unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
    }

    #[test]
    fn backoff_starts_small_and_is_capped() {
        let retry = AppendRetry::default();
        assert!((0..100).all(|_| retry.backoff(1) <= retry.base_delay));
        // Far past the point where doubling would overflow, the delay is still bounded by the cap.
        assert!((1..=200).all(|attempt| retry.backoff(attempt) <= retry.max_delay));
    }
}
