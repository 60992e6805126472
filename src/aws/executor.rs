//! The DynamoDB executor: runs one approved query with its temporary credentials, and only those.
//!
//! Before anything it checks that the query still hashes to the fingerprint the approvers saw. Before every call
//! it checks the credentials against the injected clock, with a safety margin: the SDK would happily sign with
//! expired credentials (and local servers accept them), so jitgate's 15-minute promise is kept here. `Query` and
//! `Scan` page with `ExclusiveStartKey` until the runbook's item cap or the end, asking each page for no more than
//! what is still missing. Masked attributes are replaced before a row leaves this module, and the SHA-256 of the
//! delivered rows goes to the audit trail. Each page is handed to a [`RowsWriter`] as it arrives, which keeps the
//! first rows in memory and the rest in an unlinked temporary file, so a large result is never in memory whole.
//! Rows are never logged. A write (`UpdateItem`) sends its precondition as the `ConditionExpression` and delivers
//! the item's written attributes before and after.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::IdentityCache;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity, ReturnValue, Select};
use secrecy::ExposeSecret;
use time::Duration;

use super::credentials::TemporaryCredentials;
use super::error::{AwsFailure, ErrorFacts, is_denial_code, is_throttling_code};
use super::value::row_from_item;
use crate::clock::SharedClock;
use crate::request::ApprovedQuery;
use crate::request::result::{ExecutionResult, Row, WriteDiff};
use crate::result_rows::{ResultRows, RowsWriter};
use crate::runbook::{BoundValue, Operation, RenderedQuery};
use crate::telemetry::CallMetrics;

/// Credentials must stay valid at least this long after a call starts; closer to expiry they are not used. This
/// covers the call's own duration, the SDK's retries and a little clock skew.
pub const EXPIRY_SAFETY_MARGIN: Duration = Duration::seconds(30);

type Item = HashMap<String, AttributeValue>;

/// Runs approved queries.
#[derive(Debug, Clone)]
pub struct Executor {
    base: SdkConfig,
    clock: SharedClock,
    page_size: Option<NonZeroU32>,
    /// Where large results wait for delivery; `None`: the temporary directory (`TMPDIR`, else `/tmp`).
    spill_dir: Option<PathBuf>,
    metrics: Option<crate::telemetry::Metrics>,
}

/// The operations that page.
#[derive(Debug, Clone, Copy)]
enum Paged {
    Query,
    Scan,
}

/// One page of a `Query` or `Scan`.
struct Page {
    items: Vec<Item>,
    last_key: Option<Item>,
    capacity: f64,
}

impl Executor {
    /// An executor that takes region, endpoint, HTTP and retry settings from `base` — never its credentials — and
    /// judges credential expiry by `clock`.
    pub fn new(base: SdkConfig, clock: SharedClock) -> Self {
        Executor { base, clock, page_size: None, spill_dir: None, metrics: None }
    }

    /// Counts and times the DynamoDB calls of every run in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Keeps large results in `dir` instead of the temporary directory.
    pub fn with_spill_dir(mut self, dir: PathBuf) -> Self {
        self.spill_dir = Some(dir);
        self
    }

    /// A writer for one run's rows.
    fn rows_writer(&self) -> RowsWriter {
        match &self.spill_dir {
            Some(dir) => RowsWriter::in_dir(dir),
            None => RowsWriter::new(),
        }
    }

    /// Asks DynamoDB for at most `page_size` items per call (by default only the item cap and DynamoDB's 1 MB page
    /// limit apply). Smaller pages mean more calls, each preceded by an expiry check.
    pub fn with_page_size(mut self, page_size: NonZeroU32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Runs `approved` with `credentials`, which are dropped when the run ends, whatever its outcome.
    pub async fn run(
        &self,
        approved: &ApprovedQuery,
        credentials: TemporaryCredentials,
    ) -> Result<ExecutionResult, AwsFailure> {
        // What runs must be exactly what was approved.
        if !approved.is_intact() {
            return Err(AwsFailure::FingerprintMismatch {
                approved: approved.approved_fingerprint().clone(),
                actual: approved.query().fingerprint(),
            });
        }
        self.ensure_fresh(&credentials)?;
        let run = Run { executor: self, client: self.client_for(&credentials), credentials: &credentials };
        let query = approved.query();
        let mut write = None;
        let outcome = match query.operation {
            Operation::GetItem => run.get_item(query).await,
            Operation::Query => run.paginate(query, Paged::Query).await,
            Operation::Scan => run.paginate(query, Paged::Scan).await,
            Operation::UpdateItem => match run.update_item(query).await {
                Ok((diff, capacity)) => {
                    let after = diff.after.clone();
                    write = Some(diff);
                    keep(self.rows_writer(), vec![after]).await.map(|rows| (rows, false, capacity, 1))
                }
                Err(failure) => Err(failure),
            },
        };
        drop(run);
        drop(credentials);
        let (rows, truncated, consumed_capacity, pages) = outcome?;
        let (rows, result_sha256) = finish(rows).await?;
        let result = ExecutionResult {
            row_count: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            result_sha256,
            rows,
            truncated,
            consumed_capacity,
            pages,
            write,
            unmasked: query.unmasked_attributes.clone(),
        };
        tracing::info!(
            request_id = %approved.request_id(),
            rows = result.row_count,
            truncated = result.truncated,
            pages = result.pages,
            consumed_capacity = result.consumed_capacity,
            "query executed"
        );
        Ok(result)
    }

    /// A DynamoDB client signing with `credentials` only.
    fn client_for(&self, credentials: &TemporaryCredentials) -> aws_sdk_dynamodb::Client {
        let static_credentials = aws_credential_types::Credentials::new(
            credentials.access_key_id().expose_secret(),
            credentials.secret_access_key().expose_secret(),
            Some(credentials.session_token().expose_secret().to_owned()),
            Some(SystemTime::from(credentials.expiration())),
            "jitgate-assumed-role",
        );
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.base)
            // Replaces the base config's provider: the bot's own identity must never sign a data call.
            .credentials_provider(static_credentials)
            // Nothing to cache for static credentials, and nothing should outlive this client.
            .identity_cache(IdentityCache::no_cache());
        if let Some(metrics) = &self.metrics {
            config = config.interceptor(CallMetrics::new(metrics.clone(), "dynamodb"));
        }
        let config = config.build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// Refuses credentials that are expired or expire within [`EXPIRY_SAFETY_MARGIN`].
    fn ensure_fresh(&self, credentials: &TemporaryCredentials) -> Result<(), AwsFailure> {
        if self.clock.now() + EXPIRY_SAFETY_MARGIN >= credentials.expiration() {
            return Err(AwsFailure::CredentialsExpired { expired_at: credentials.expiration() });
        }
        Ok(())
    }
}

/// One execution in progress: the client and the credentials it signs with.
struct Run<'a> {
    executor: &'a Executor,
    client: aws_sdk_dynamodb::Client,
    credentials: &'a TemporaryCredentials,
}

/// Rows, truncated, consumed capacity, pages.
type Collected = (RowsWriter, bool, f64, u32);

/// Adds `rows` to `writer` on the blocking pool: a page is up to 1 MB to translate and, past the first rows, to
/// write to the spill file, which must not hold up the runtime's workers (socket-mode acks run there).
async fn keep(mut writer: RowsWriter, rows: Vec<Row>) -> Result<RowsWriter, AwsFailure> {
    tokio::task::spawn_blocking(move || {
        for row in rows {
            writer.push(row)?;
        }
        Ok(writer)
    })
    .await
    .map_err(|e| AwsFailure::ResultNotKept { detail: e.to_string() })?
    .map_err(|e: std::io::Error| AwsFailure::ResultNotKept { detail: e.to_string() })
}

/// The delivered rows and the SHA-256 of their canonical JSON.
async fn finish(writer: RowsWriter) -> Result<(ResultRows, String), AwsFailure> {
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| AwsFailure::ResultNotKept { detail: e.to_string() })?
        .map_err(|e| AwsFailure::ResultNotKept { detail: e.to_string() })
}

impl Run<'_> {
    async fn get_item(&self, q: &RenderedQuery) -> Result<Collected, AwsFailure> {
        if q.item_cap == 0 {
            return Ok((self.executor.rows_writer(), false, 0.0, 0));
        }
        self.executor.ensure_fresh(self.credentials)?;
        let key: Item = q.key.iter().map(|k| (k.attribute.clone(), attribute(&k.value))).collect();
        let output = self
            .client
            .get_item()
            .table_name(&q.table)
            .set_key(Some(key))
            .set_projection_expression(q.projection_expression.clone())
            .set_expression_attribute_names(names(q))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| self.failure(e, "GetItem", q))?;
        let capacity = capacity_units(output.consumed_capacity());
        let rows = output.item.into_iter().map(|item| row_from_item(item, &q.masked_attributes)).collect();
        Ok((keep(self.executor.rows_writer(), rows).await?, false, capacity, 1))
    }

    /// The approved write: `UpdateItem` with the precondition as `ConditionExpression`, asking for the old values
    /// of the attributes written (`UPDATED_OLD`, what the session policy pins). The new values are the ones the
    /// approvers saw, so before and after are both known without reading anything else.
    async fn update_item(&self, q: &RenderedQuery) -> Result<(WriteDiff, f64), AwsFailure> {
        let update = q.update.as_ref().ok_or_else(|| AwsFailure::Validation {
            message: "an update_item request without its update".to_owned(),
        })?;
        self.executor.ensure_fresh(self.credentials)?;
        let key: Item = q.key.iter().map(|k| (k.attribute.clone(), attribute(&k.value))).collect();
        let output = self
            .client
            .update_item()
            .table_name(&q.table)
            .set_key(Some(key.clone()))
            .update_expression(&update.update_expression)
            .condition_expression(&update.condition_expression)
            .set_expression_attribute_names(names(q))
            .set_expression_attribute_values(values(q))
            .return_values(ReturnValue::from(update.return_values.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => AwsFailure::PreconditionFailed,
                _ => self.failure(e, "UpdateItem", q),
            })?;
        let capacity = capacity_units(output.consumed_capacity());
        let mut before = key.clone();
        before.extend(
            output.attributes.unwrap_or_default().into_iter().filter(|(name, _)| update.written().contains(name)),
        );
        let mut after = key;
        after.extend(update.set.iter().map(|(name, value)| (name.clone(), attribute(value))));
        let diff = WriteDiff {
            before: row_from_item(before, &q.masked_attributes),
            after: row_from_item(after, &q.masked_attributes),
            written: update.written(),
        };
        Ok((diff, capacity))
    }

    async fn paginate(&self, q: &RenderedQuery, op: Paged) -> Result<Collected, AwsFailure> {
        let cap = usize::try_from(q.item_cap).unwrap_or(usize::MAX);
        let mut rows = self.executor.rows_writer();
        let (mut capacity, mut pages) = (0.0, 0u32);
        if cap == 0 {
            return Ok((rows, false, capacity, pages));
        }
        let mut start: Option<Item> = None;
        loop {
            let page = self.page(q, op, self.limit(cap - rows.len()), start.take()).await?;
            pages += 1;
            capacity += page.capacity;
            let wanted = cap - rows.len();
            let beyond_cap = page.items.len() > wanted;
            // Translated here, so only this page's items are ever held; the writer keeps or spills them.
            let page_rows =
                page.items.into_iter().take(wanted).map(|item| row_from_item(item, &q.masked_attributes)).collect();
            rows = keep(rows, page_rows).await?;
            if beyond_cap {
                // The server sent more than the Limit asked for: there is more, and the extra is not delivered.
                return Ok((rows, true, capacity, pages));
            }
            match page.last_key {
                None => return Ok((rows, false, capacity, pages)),
                Some(key) if rows.len() >= cap => {
                    // DynamoDB returns a LastEvaluatedKey whenever Limit stopped it, even when nothing is left.
                    // One more look tells whether the result really was cut.
                    let (more, probe_capacity, probe_pages) = self.more_after(q, op, key).await?;
                    return Ok((rows, more, capacity + probe_capacity, pages + probe_pages));
                }
                Some(key) => start = Some(key),
            }
        }
    }

    /// Whether any matching item follows `start`. Items read here are dropped unread: they are beyond the cap.
    async fn more_after(&self, q: &RenderedQuery, op: Paged, start: Item) -> Result<(bool, f64, u32), AwsFailure> {
        // Without a filter every evaluated item matches, so one item answers the question. With a filter, Limit
        // counts evaluated items before filtering, so look a page at a time.
        let limit = if q.filter_expression.is_none() { 1 } else { self.limit(usize::MAX) };
        let (mut capacity, mut pages, mut start) = (0.0, 0u32, start);
        loop {
            let page = self.page(q, op, limit, Some(start)).await?;
            pages += 1;
            capacity += page.capacity;
            match (page.items.is_empty(), page.last_key) {
                (false, _) => return Ok((true, capacity, pages)),
                (true, None) => return Ok((false, capacity, pages)),
                (true, Some(key)) => start = key,
            }
        }
    }

    /// The `Limit` for a page when `remaining` items are still wanted.
    fn limit(&self, remaining: usize) -> i32 {
        let page = self.executor.page_size.map_or(usize::MAX, |p| usize::try_from(p.get()).unwrap_or(usize::MAX));
        i32::try_from(remaining.min(page)).unwrap_or(i32::MAX)
    }

    async fn page(&self, q: &RenderedQuery, op: Paged, limit: i32, start: Option<Item>) -> Result<Page, AwsFailure> {
        // Checked before every call: a long pagination must not outlive the credentials.
        self.executor.ensure_fresh(self.credentials)?;
        let select = q.projection_expression.as_ref().map(|_| Select::SpecificAttributes);
        match op {
            Paged::Query => {
                let output = self
                    .client
                    .query()
                    .table_name(&q.table)
                    .set_index_name(q.index.clone())
                    .set_key_condition_expression(q.key_condition_expression.clone())
                    .set_filter_expression(q.filter_expression.clone())
                    .set_projection_expression(q.projection_expression.clone())
                    .set_select(select)
                    .set_expression_attribute_names(names(q))
                    .set_expression_attribute_values(values(q))
                    .limit(limit)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| self.failure(e, "Query", q))?;
                Ok(Page {
                    capacity: capacity_units(output.consumed_capacity()),
                    items: output.items.unwrap_or_default(),
                    last_key: output.last_evaluated_key,
                })
            }
            Paged::Scan => {
                let output = self
                    .client
                    .scan()
                    .table_name(&q.table)
                    .set_index_name(q.index.clone())
                    .set_filter_expression(q.filter_expression.clone())
                    .set_projection_expression(q.projection_expression.clone())
                    .set_select(select)
                    .set_expression_attribute_names(names(q))
                    .set_expression_attribute_values(values(q))
                    .limit(limit)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| self.failure(e, "Scan", q))?;
                Ok(Page {
                    capacity: capacity_units(output.consumed_capacity()),
                    items: output.items.unwrap_or_default(),
                    last_key: output.last_evaluated_key,
                })
            }
        }
    }

    /// Classifies a DynamoDB error.
    fn failure<E>(&self, err: SdkError<E>, operation: &'static str, q: &RenderedQuery) -> AwsFailure
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let service = "DynamoDB";
        let (status, code, message) = match ErrorFacts::of(&err) {
            ErrorFacts::Service { status, code, message } => (status, code, message),
            ErrorFacts::TimedOut { detail } => return AwsFailure::TimedOut { service, operation, detail },
            ErrorFacts::Transport { detail } => return AwsFailure::Unreachable { service, operation, detail },
        };
        match code.as_deref() {
            Some(c) if is_throttling_code(c) => AwsFailure::Throttled { service, operation, code: c.to_owned() },
            _ if status == 429 => AwsFailure::Throttled { service, operation, code: "HTTP 429".into() },
            Some("ExpiredTokenException") => {
                AwsFailure::CredentialsExpired { expired_at: self.credentials.expiration() }
            }
            Some(c) if is_denial_code(c) => AwsFailure::AccessDenied { service, operation, code: code.clone() },
            // Denials rendered as XML reach us without a code: the status is the evidence.
            _ if status == 403 => AwsFailure::AccessDenied { service, operation, code },
            Some("ValidationException") => AwsFailure::Validation { message: message.unwrap_or_default() },
            Some("ResourceNotFoundException") => {
                AwsFailure::NotFound { resource: resource_name(q), message: message.unwrap_or_default() }
            }
            Some(c) => AwsFailure::Other { service, operation, code: c.to_owned(), message },
            None => AwsFailure::Other { service, operation, code: format!("HTTP {status}"), message },
        }
    }
}

/// "table `Orders`" or "index `x` of table `Orders`".
fn resource_name(q: &RenderedQuery) -> String {
    match &q.index {
        Some(index) => format!("index `{index}` of table `{}`", q.table),
        None => format!("table `{}`", q.table),
    }
}

fn attribute(value: &BoundValue) -> AttributeValue {
    match value {
        BoundValue::S(s) => AttributeValue::S(s.clone()),
        BoundValue::N(n) => AttributeValue::N(n.clone()),
    }
}

/// DynamoDB rejects empty expression maps, so an empty map is sent as no map.
fn names(q: &RenderedQuery) -> Option<HashMap<String, String>> {
    (!q.expression_attribute_names.is_empty())
        .then(|| q.expression_attribute_names.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn values(q: &RenderedQuery) -> Option<HashMap<String, AttributeValue>> {
    (!q.expression_attribute_values.is_empty())
        .then(|| q.expression_attribute_values.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

fn capacity_units(consumed: Option<&ConsumedCapacity>) -> f64 {
    consumed.and_then(ConsumedCapacity::capacity_units).unwrap_or(0.0)
}
