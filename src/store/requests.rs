//! Access-request records: create once, load, compare-and-set transitions, and the sweeper's pending index.
//!
//! A record is a hash with `state`, `version` and `body` (the JSON of the [`AccessRequest`]). `state` and
//! `version` mirror the body so the scripts can compare them without decoding JSON. The key's expiry follows
//! the state, computed from the record's own timestamps (see [`expiry_deadline_ms`]):
//!
//! | state                | key expires at                                  |
//! |----------------------|-------------------------------------------------|
//! | pending              | `expires_at` + `pending_grace`                  |
//! | approved / running   | time of entering the state + `active_retention` |
//! | finished             | time of finishing + `finished_retention`        |

use std::sync::LazyLock;

use redis::Script;
use time::OffsetDateTime;

use super::{RequestStore, StoreError, add_ms, unix_ms};
use crate::ids::{RequestId, SlackUserId};
use crate::request::{AccessRequest, RequestState, Status};

/// What [`RequestStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The record is stored.
    Inserted,
    /// A record with this id already exists and was left alone; create the request again with a fresh id.
    IdTaken,
}

/// What [`RequestStore::transition`] did.
// The conflict carries the current record so the caller can tell the user what happened; it is returned once
// and consumed at once, so boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The record was `from` and is now `to`.
    Applied,
    /// The record was no longer `from` (someone else changed it first, or it is gone): nothing was written.
    Conflict { current: Option<AccessRequest> },
}

/// Inserts a record unless its key exists. KEYS[1] = request key; ARGV = state, version, body, expire-at (ms).
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'version', ARGV[2], 'body', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
",
    )
});

/// Compare-and-set. KEYS[1] = request key; ARGV = expected state, expected version, new state, new version,
/// new body, new expire-at (ms). Replies {1} when written, else {0, state, version, body} as now stored
/// (false, i.e. nil, for each when the key is gone).
static TRANSITION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HMGET', KEYS[1], 'state', 'version', 'body')
if current[1] == ARGV[1] and current[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'state', ARGV[3], 'version', ARGV[4], 'body', ARGV[5])
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  return {1}
end
return {0, current[1], current[2], current[3]}
",
    )
});

type Fields = (Option<String>, Option<String>, Option<String>);

impl RequestStore {
    /// Stores a new request, never overwriting one with the same id.
    ///
    /// A pending request is also listed in the pending index for the sweeper. The index is written first: an
    /// index entry whose record never got written is harmless (the sweeper finds nothing and drops it), while a
    /// pending record missing from the index would never be reported as expired.
    pub async fn create(&self, request: &AccessRequest) -> Result<Created, StoreError> {
        let body = encode(request)?;
        if request.state() == RequestState::Pending {
            // `LT`: on an id collision keep the earlier deadline, so the index never points later than a record's
            // real expiry (an early entry only costs the sweeper one extra look).
            // The reminder index likewise, so the sweeper reads only the requests due a reminder, not every
            // pending one. Two keys, two separate commands (not a script, not a pipeline): on Redis Cluster they
            // may live on different nodes, which a pipeline refuses (CROSSSLOT), and neither needs to change with
            // the other atomically.
            let mut pending = redis::cmd("ZADD");
            pending.arg(self.keys.pending_index()).arg("LT").arg(unix_ms(request.expires_at)).arg(request.id.as_str());
            let _: i64 = self.query(pending).await?;
            let mut reminder = redis::cmd("ZADD");
            reminder.arg(self.keys.reminder_index()).arg("LT");
            reminder.arg(unix_ms(crate::request::reminder_due_at(request))).arg(request.id.as_str());
            let _: i64 = self.query(reminder).await?;
            // And the escalation index, for runbooks that escalate: the sweeper reads only what is due to widen.
            if let Some(due) = crate::request::escalation_due_at(request) {
                self.list_for_escalation(&request.id, due).await?;
            }
        }
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .key(self.keys.request(&request.id))
            .arg(request.state().as_str())
            .arg(request.version)
            .arg(body)
            .arg(self.expiry_deadline_ms(request));
        let inserted: i64 = self.invoke(invocation).await?;
        if inserted != 1 {
            return Ok(Created::IdTaken);
        }
        self.list_for_requester(request).await;
        Ok(Created::Inserted)
    }

    /// Adds the request to its requester's list for `/jit status`. Best effort: the list only helps people find
    /// their requests again; the record itself is the truth.
    async fn list_for_requester(&self, request: &AccessRequest) {
        let key = self.keys.user_requests(&request.requester);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg(&key).arg(unix_ms(request.created_at)).arg(request.id.as_str()).ignore();
        // Entries older than the retention point at records that are gone.
        let retention_ms = i64::try_from(self.settings.finished_retention.as_millis()).unwrap_or(i64::MAX);
        let horizon = unix_ms(request.created_at).saturating_sub(retention_ms);
        pipe.cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(horizon).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(retention_ms).ignore();
        if let Err(err) = self.query_pipe::<()>(pipe).await {
            tracing::warn!(request_id = %request.id, error = %err, "could not list the request under its requester");
        }
    }

    /// The requester's most recent requests, newest first (ids only; load each for its state).
    pub async fn requests_of(&self, user: &SlackUserId, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.user_requests(user)).arg(0).arg(limit - 1).arg("REV");
        let members: Vec<String> = self.query(cmd).await?;
        Ok(members.iter().filter_map(|m| RequestId::parse(m)).collect())
    }

    /// The stored record, or `None` when there is none (never created, or its key expired).
    pub async fn load(&self, id: &RequestId) -> Result<Option<AccessRequest>, StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.request(id)).arg("state").arg("version").arg("body");
        let fields: Fields = self.query(cmd).await?;
        decode(id, fields)
    }

    /// Writes `to` in place of `from` if, and only if, the stored record still has `from`'s state and version;
    /// sets the key's expiry for the new state. One script, so of any number of racing transitions from the same
    /// record exactly one is [`Transition::Applied`].
    ///
    /// `to` must be what the state machine made of `from`: same id, version one higher. Anything else is a bug and
    /// is refused with [`StoreError::InvalidTransition`] before Redis is touched.
    pub async fn transition(&self, from: &AccessRequest, to: &AccessRequest) -> Result<Transition, StoreError> {
        if to.id != from.id {
            return Err(StoreError::InvalidTransition {
                id: from.id.to_string(),
                detail: format!("the new record is for {}", to.id),
            });
        }
        if Some(to.version) != from.version.checked_add(1) {
            return Err(StoreError::InvalidTransition {
                id: from.id.to_string(),
                detail: format!("version {} does not follow {}", to.version, from.version),
            });
        }
        if let Status::Approved { at: since } | Status::Running { since } = &to.status {
            // Indexed before the write, as pending requests are: a stale entry (the write lost its race) costs the
            // sweeper one look, while an approved or running request missing from the index could never be found
            // again if its replica died. Approved requests share the running index: both are started, or about to.
            let mut index = redis::cmd("ZADD");
            index.arg(self.keys.running_index()).arg(unix_ms(*since)).arg(from.id.as_str());
            let _: i64 = self.query(index).await?;
        }
        let mut invocation = TRANSITION.prepare_invoke();
        invocation
            .key(self.keys.request(&from.id))
            .arg(from.state().as_str())
            .arg(from.version)
            .arg(to.state().as_str())
            .arg(to.version)
            .arg(encode(to)?)
            .arg(self.expiry_deadline_ms(to));
        let reply: Vec<Option<String>> = self.invoke(invocation).await?;
        match reply.as_slice() {
            [Some(applied)] if applied == "1" => {
                if from.state() == RequestState::Pending && to.state() != RequestState::Pending {
                    self.unindex_best_effort(&from.id).await;
                }
                if is_started(from.state())
                    && !is_started(to.state())
                    && let Err(err) = self.forget_running(&from.id).await
                {
                    tracing::warn!(request_id = %from.id, error = %err, "could not remove the request from the running index");
                }
                Ok(Transition::Applied)
            }
            [Some(conflict), state, version, body] if conflict == "0" => {
                let current = decode(&from.id, (state.clone(), version.clone(), body.clone()))?;
                // A record that left Pending (or is gone) never needs the sweeper again.
                if current.as_ref().is_none_or(|c| c.state() != RequestState::Pending) {
                    self.unindex_best_effort(&from.id).await;
                }
                Ok(Transition::Conflict { current })
            }
            other => Err(StoreError::Corrupt {
                what: format!("the transition reply for {}", from.id),
                detail: format!("unexpected shape {other:?}"),
            }),
        }
    }

    /// Up to `limit` requests whose approval window ended at or before `now`, earliest first, from the pending
    /// index. The index is a separate key, written apart from the records, so it is only a hint: the sweeper
    /// loads each record, asks `request::expire` and writes with [`RequestStore::transition`], whose
    /// compare-and-set makes a stale or duplicate entry harmless.
    pub async fn due_for_expiry(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.due_in(self.keys.pending_index(), now, limit).await
    }

    /// Up to `limit` request ids that the sorted set `index` scores at or before `up_to`, earliest first. Each of
    /// the sweeper's indexes is read this way.
    pub(super) async fn due_in(
        &self,
        index: String,
        up_to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&index).arg("-inf").arg(unix_ms(up_to)).arg("BYSCORE").arg("LIMIT").arg(0).arg(limit);
        let members: Vec<String> = self.query(cmd).await?;
        let mut ids = Vec::with_capacity(members.len());
        for member in members {
            match RequestId::parse(&member) {
                Some(id) => ids.push(id),
                None => tracing::warn!(index, member = %member, "an index holds something that is not a request id"),
            }
        }
        Ok(ids)
    }

    /// Drops request `id` from the sorted set `index`.
    pub(super) async fn forget_in(&self, index: String, id: &RequestId) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(index).arg(id.as_str());
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// Up to `limit` requests whose reminder is due at `now`, earliest first. A hint: each is re-checked.
    pub async fn due_for_reminder(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.due_in(self.keys.reminder_index(), now, limit).await
    }

    /// Drops a request from the reminder index: reminded, or no longer pending.
    pub async fn forget_reminder(&self, id: &RequestId) -> Result<(), StoreError> {
        self.forget_in(self.keys.reminder_index(), id).await
    }

    /// Lists a request in the escalation index, due at `due`. `GT`: a listing only moves later (the next level),
    /// so a sweeper that read the record before another widened it cannot move it back.
    pub async fn list_for_escalation(&self, id: &RequestId, due: OffsetDateTime) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.escalation_index()).arg("GT").arg(unix_ms(due)).arg(id.as_str());
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// Up to `limit` requests whose next escalation level is due at `now`, earliest first. A hint: each is
    /// re-checked.
    pub async fn due_for_escalation(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.due_in(self.keys.escalation_index(), now, limit).await
    }

    /// Drops a request from the escalation index: at its deepest level, or no longer pending.
    pub async fn forget_escalation(&self, id: &RequestId) -> Result<(), StoreError> {
        self.forget_in(self.keys.escalation_index(), id).await
    }

    /// How many requests the pending index lists (a hint, as the index is): one `ZCARD`, whatever the count.
    pub async fn pending_count(&self) -> Result<usize, StoreError> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(self.keys.pending_index());
        self.query(cmd).await
    }

    /// Drops a request from the pending index, for the sweeper when the record is gone (its key expired after the
    /// grace) or is no longer pending.
    pub async fn forget_pending(&self, id: &RequestId) -> Result<(), StoreError> {
        self.forget_in(self.keys.pending_index(), id).await
    }

    /// Up to `limit` requests that entered Approved or Running at or before `started_before`, oldest first:
    /// candidates for the sweeper when the replica starting or running them may have died. A hint, like the
    /// pending index.
    pub async fn running_since_before(
        &self,
        started_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<RequestId>, StoreError> {
        self.due_in(self.keys.running_index(), started_before, limit).await
    }

    /// Drops a request from the running index.
    pub async fn forget_running(&self, id: &RequestId) -> Result<(), StoreError> {
        self.forget_in(self.keys.running_index(), id).await
    }

    /// The index is only a hint, so failing to clean it is logged and left to the sweeper.
    async fn unindex_best_effort(&self, id: &RequestId) {
        if let Err(err) = self.forget_pending(id).await {
            tracing::warn!(request_id = %id, error = %err, "could not remove the request from the pending index");
        }
    }

    /// When the key of `request` should expire, in ms since the epoch (see the table in the module header).
    fn expiry_deadline_ms(&self, request: &AccessRequest) -> i64 {
        let settings = &self.settings;
        match &request.status {
            Status::Pending => add_ms(unix_ms(request.expires_at), settings.pending_grace),
            Status::Approved { at } | Status::Running { since: at } => add_ms(unix_ms(*at), settings.active_retention),
            Status::Succeeded { at, .. }
            | Status::Failed { at, .. }
            | Status::Denied { at, .. }
            | Status::Expired { at }
            | Status::Cancelled { at } => add_ms(unix_ms(*at), settings.finished_retention),
        }
    }
}

/// Approved or Running: listed in the running index.
fn is_started(state: RequestState) -> bool {
    matches!(state, RequestState::Approved | RequestState::Running)
}

fn encode(request: &AccessRequest) -> Result<String, StoreError> {
    // Serializing plain data cannot fail in practice; if it ever does, it is a bug, not a Redis problem.
    serde_json::to_string(request)
        .map_err(|err| StoreError::Corrupt { what: format!("request {}", request.id), detail: err.to_string() })
}

/// Turns the stored fields into a record, checking that they agree with each other and with the key.
fn decode(id: &RequestId, (state, version, body): Fields) -> Result<Option<AccessRequest>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { what: format!("request {id}"), detail };
    let (state, version, body) = match (state, version, body) {
        (None, None, None) => return Ok(None),
        (Some(state), Some(version), Some(body)) => (state, version, body),
        _ => return Err(corrupt("the record lacks its state, version or body field".to_owned())),
    };
    let request: AccessRequest =
        serde_json::from_str(&body).map_err(|err| corrupt(format!("the body does not parse: {err}")))?;
    if &request.id != id {
        return Err(corrupt(format!("the body is for {}", request.id)));
    }
    if request.state().as_str() != state || request.version.to_string() != version {
        return Err(corrupt(format!(
            "fields say {state} v{version}, the body says {} v{}",
            request.state().as_str(),
            request.version
        )));
    }
    Ok(Some(request))
}
