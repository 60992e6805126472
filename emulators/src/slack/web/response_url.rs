//! `response_url`s: every slash command and block action carries one pointing back at this server. A POST
//! there shows the reply the way Slack does: ephemeral to the user by default, `in_channel` as a channel
//! message, `replace_original` / `delete_original` on the message the interaction came from.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::chat::{check_blocks, check_thread_parent};
use super::{Reply, json_response};
use crate::slack::records::{ApiCall, CallOutcome, Ephemeral, EphemeralSource, Message, MessageUpdate};
use crate::slack::state::{Shared, Tracked};

/// "These responses can be sent up to 5 times within 30 minutes of receiving the payload."
const MAX_USES: usize = 5;

/// The pseudo method name under which `response_url` posts appear in [`calls`](crate::slack::FakeSlack::calls).
pub const RESPONSE_URL_METHOD: &str = "response_url";

pub(super) async fn respond(State(shared): State<Arc<Shared>>, OriginalUri(uri): OriginalUri, body: Bytes) -> Response {
    super::delay(&shared).await;
    let url = format!("{}{}", shared.base_url, uri.path());
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        record(&shared, json!({"url": url, "body": String::from_utf8_lossy(&body)}), "invalid_payload");
        return json_response(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": "invalid_payload"}));
    };
    let params = Value::Object(fields.clone());
    let text = fields.get("text").and_then(Value::as_str).map(str::to_owned);
    let blocks = fields.get("blocks").cloned();
    if let Some(blocks) = &blocks
        && let Err(Reply::Error(code, _)) = check_blocks(blocks)
    {
        record(&shared, params, &code);
        return json_response(StatusCode::BAD_REQUEST, &json!({"ok": false, "error": code}));
    }
    let flag = |key: &str| fields.get(key).and_then(Value::as_bool).unwrap_or(false);
    let thread_ts = fields.get("thread_ts").and_then(Value::as_str).map(str::to_owned);
    let in_channel = fields.get("response_type").and_then(Value::as_str) == Some("in_channel");
    let bot_user = shared.config.bot.user_id.clone();

    let handled = shared.mutate(|state| {
        let Some(target) = state.response_targets.get(&url).cloned() else { return false };
        let uses = state.calls.iter().filter(|c| c.method == RESPONSE_URL_METHOD && c.params["url"] == url).count();
        if uses >= MAX_USES {
            state.finding(format!("response_url {url} used more than {MAX_USES} times"));
        }
        let original = target.message_ts.clone().filter(|_| !target.message_is_ephemeral);
        match original {
            Some(ts) if flag("delete_original") || flag("replace_original") => {
                state.updates.push(Tracked::new(MessageUpdate {
                    channel: target.channel.clone(),
                    ts,
                    text: text.clone(),
                    blocks: blocks.clone(),
                    attachments: None,
                    deleted: flag("delete_original"),
                    params: params.clone(),
                }));
            }
            // An ephemeral original can only be replaced by another ephemeral (or silently deleted).
            _ if flag("delete_original") => {}
            _ if in_channel => {
                if let Some(parent) = &thread_ts {
                    check_thread_parent(state, &target.channel, parent, "response_url");
                }
                let ts = state.ts_clock.next();
                state.messages.push(Tracked::new(Message {
                    channel: target.channel.clone(),
                    ts,
                    thread_ts: thread_ts.clone(),
                    user: bot_user.clone(),
                    text: text.clone(),
                    blocks: blocks.clone(),
                    attachments: None,
                    params: params.clone(),
                }));
            }
            _ => {
                let message_ts = state.ts_clock.next();
                state.ephemerals.push(Tracked::new(Ephemeral {
                    channel: target.channel.clone(),
                    user: target.user.clone(),
                    message_ts,
                    thread_ts: thread_ts.clone(),
                    text: text.clone(),
                    blocks: blocks.clone(),
                    via: EphemeralSource::ResponseUrl,
                    params: params.clone(),
                }));
            }
        }
        true
    });
    let mut recorded = params.clone();
    if let Some(fields) = recorded.as_object_mut() {
        fields.insert("url".into(), json!(url));
    }
    if handled {
        record(&shared, recorded, "");
        json_response(StatusCode::OK, &json!({"ok": true}))
    } else {
        record(&shared, recorded, "no_service");
        json_response(StatusCode::NOT_FOUND, &json!({"ok": false, "error": "no_service"}))
    }
}

fn record(shared: &Shared, params: Value, error: &str) {
    let outcome = if error.is_empty() { CallOutcome::Ok } else { CallOutcome::Error(error.to_owned()) };
    let call = ApiCall { method: RESPONSE_URL_METHOD.to_owned(), params, at: OffsetDateTime::now_utc(), outcome };
    shared.mutate(|state| state.calls.push(call));
}
