//! `chat.*`: posting, updating, ephemerals and permalinks, with the checks Slack makes (channel exists, bot is
//! a member, channel not archived, Block Kit limits, text length) and the message shapes of its examples.

use serde_json::{Value, json};

use super::blocks::{self, BlocksError, Surface};
use super::{Params, Reply, error, error_with, ok};
use crate::slack::config::SlackConfig;
use crate::slack::records::{Ephemeral, EphemeralSource, Message, MessageUpdate};
use crate::slack::state::{Shared, State, Tracked};

/// `chat.postMessage` text beyond this is refused (Slack truncates beyond 40,000 characters).
const POST_TEXT_LIMIT: usize = 40_000;
/// `chat.update`: "The `text` field cannot exceed 4,000 characters".
const UPDATE_TEXT_LIMIT: usize = 4_000;
/// Maximum attachments per message (`too_many_attachments`).
const MAX_ATTACHMENTS: usize = 100;

pub(super) fn post_message(shared: &Shared, params: &Params) -> Reply {
    if let Err(reply) = check_content(params, POST_TEXT_LIMIT, true) {
        return reply;
    }
    let bot = &shared.config.bot;
    shared.mutate(|state| {
        let channel = match writable_channel(state, params.str("channel"), true) {
            Ok(channel) => channel,
            Err(reply) => return reply,
        };
        let thread_ts = params.str("thread_ts").map(str::to_owned);
        if let Some(parent) = &thread_ts {
            check_thread_parent(state, &channel, parent, "chat.postMessage");
        }
        let ts = state.ts_clock.next();
        let message = Message {
            channel: channel.clone(),
            ts: ts.clone(),
            thread_ts,
            user: bot.user_id.clone(),
            text: params.str("text").map(str::to_owned),
            blocks: params.get("blocks").cloned(),
            attachments: params.get("attachments").cloned(),
            params: params.to_json(),
        };
        let echoed = message_json(&shared.config, &message);
        state.messages.push(Tracked::new(message));
        ok(json!({ "channel": channel, "ts": ts, "message": echoed }))
    })
}

pub(super) fn update(shared: &Shared, params: &Params) -> Reply {
    if let Err(reply) = check_content(params, UPDATE_TEXT_LIMIT, false) {
        return reply;
    }
    let Some(ts) = params.str("ts") else { return error("message_not_found") };
    shared.mutate(|state| {
        let channel = match writable_channel(state, params.str("channel"), false) {
            Ok(channel) => channel,
            Err(reply) => return reply,
        };
        let Some((current, deleted)) = state.current_message(&channel, ts) else {
            // Also the answer for the ts of an ephemeral message: those cannot be updated.
            return error("message_not_found");
        };
        if deleted {
            return error("message_not_found");
        }
        if current.user != shared.config.bot.user_id {
            return error("cant_update_message");
        }
        // Slack's rules: without `blocks`, the old blocks survive only if `text` is not given either; an
        // empty `blocks` array removes them.
        let blocks = match params.get("blocks") {
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(given) => Some(given.clone()),
            None if params.has("text") => None,
            None => current.blocks.clone(),
        };
        let text = if params.has("text") { params.str("text").map(str::to_owned) } else { current.text.clone() };
        let attachments = params.get("attachments").cloned().or(current.attachments.clone());
        let update = MessageUpdate {
            channel: channel.clone(),
            ts: ts.to_owned(),
            text: text.clone(),
            blocks: blocks.clone(),
            attachments,
            deleted: false,
            params: params.to_json(),
        };
        state.updates.push(Tracked::new(update));
        let mut message = json!({
            "type": "message",
            "text": text.clone().unwrap_or_default(),
            "user": shared.config.bot.user_id,
            "bot_id": shared.config.bot.bot_id,
            "app_id": shared.config.app_id,
            "team": shared.config.team.id,
            "edited": {"user": shared.config.bot.user_id, "ts": state.ts_clock.next()},
        });
        if let (Some(blocks), Some(fields)) = (blocks, message.as_object_mut()) {
            fields.insert("blocks".into(), blocks);
        }
        ok(json!({ "channel": channel, "ts": ts, "text": text.unwrap_or_default(), "message": message }))
    })
}

pub(super) fn post_ephemeral(shared: &Shared, params: &Params) -> Reply {
    if let Err(reply) = check_content(params, POST_TEXT_LIMIT, true) {
        return reply;
    }
    shared.mutate(|state| {
        let channel = match writable_channel(state, params.str("channel"), true) {
            Ok(channel) => channel,
            Err(reply) => return reply,
        };
        let Some(user) = params.str("user") else { return error("user_not_in_channel") };
        let is_member =
            state.user(user).is_some() && state.channels.iter().any(|c| c.id == channel && c.has_member(user));
        if !is_member {
            return error("user_not_in_channel");
        }
        let message_ts = state.ts_clock.next();
        state.ephemerals.push(Tracked::new(Ephemeral {
            channel,
            user: user.to_owned(),
            message_ts: message_ts.clone(),
            thread_ts: params.str("thread_ts").map(str::to_owned),
            text: params.str("text").map(str::to_owned),
            blocks: params.get("blocks").cloned(),
            via: EphemeralSource::PostEphemeral,
            params: params.to_json(),
        }));
        ok(json!({ "message_ts": message_ts }))
    })
}

pub(super) fn get_permalink(shared: &Shared, params: &Params) -> Reply {
    let Some(ts) = params.str("message_ts") else { return error("message_not_found") };
    let domain = &shared.config.team.domain;
    shared.with(|state| {
        let Some(channel) = params.str("channel").and_then(|c| state.channels.iter().find(|ch| ch.id == c)) else {
            return error("channel_not_found");
        };
        let Some(message) = state.messages.iter().find(|m| m.item.channel == channel.id && m.item.ts == ts) else {
            return error("message_not_found");
        };
        let mut permalink = format!("https://{domain}.slack.com/archives/{}/p{}", channel.id, ts.replace('.', ""));
        if let Some(parent) = &message.item.thread_ts {
            permalink.push_str(&format!("?thread_ts={parent}&cid={}", channel.id));
        }
        ok(json!({ "channel": channel.id, "permalink": permalink }))
    })
}

/// Resolves `channel` (id, name, or a user id meaning the bot's DM with that user) and checks the bot may
/// post there.
fn writable_channel(state: &mut State, channel: Option<&str>, allow_user_id: bool) -> Result<String, Reply> {
    let Some(wanted) = channel else { return Err(error("channel_not_found")) };
    if allow_user_id && state.user(wanted).is_some() {
        return Ok(state.dm_with(wanted).0);
    }
    let Some(channel) = state.channel(wanted) else { return Err(error("channel_not_found")) };
    if channel.is_archived {
        return Err(error("is_archived"));
    }
    if !channel.bot_is_member {
        // Private channels the bot is not in are invisible to it.
        return Err(error(if channel.is_private { "channel_not_found" } else { "not_in_channel" }));
    }
    Ok(channel.id.clone())
}

/// Text, blocks and attachments checks shared by the posting methods.
fn check_content(params: &Params, text_limit: usize, needs_content: bool) -> Result<(), Reply> {
    let has_blocks = params.get("blocks").and_then(Value::as_array).is_some_and(|b| !b.is_empty());
    let has_attachments = params.get("attachments").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let has_text = params.str("text").is_some();
    if needs_content && !has_text && !has_blocks && !has_attachments {
        return Err(error("no_text"));
    }
    if !needs_content && !params.has("text") && !params.has("blocks") && !params.has("attachments") {
        return Err(error("no_text"));
    }
    if params.str("text").is_some_and(|t| t.chars().count() > text_limit) {
        return Err(error("msg_too_long"));
    }
    if let Some(attachments) = params.get("attachments") {
        match attachments.as_array() {
            Some(items) if items.len() > MAX_ATTACHMENTS => return Err(error("too_many_attachments")),
            Some(_) => {}
            None => return Err(error("invalid_attachments")),
        }
    }
    if let Some(blocks) = params.get("blocks") {
        check_blocks(blocks)?;
    }
    Ok(())
}

/// Block Kit validation answered in Slack's error shapes.
pub(crate) fn check_blocks(blocks: &Value) -> Result<(), Reply> {
    match blocks::validate(blocks, Surface::Message, "/blocks") {
        Ok(()) => Ok(()),
        Err(BlocksError::Format) => Err(error("invalid_blocks_format")),
        Err(BlocksError::TooLong) => Err(error("msg_blocks_too_long")),
        Err(BlocksError::Invalid(problems)) => Err(invalid_blocks(problems)),
    }
}

pub(crate) fn invalid_blocks(problems: Vec<String>) -> Reply {
    let messages: Vec<String> = problems.iter().map(|p| format!("[ERROR] {p}")).collect();
    error_with("invalid_blocks", json!({ "errors": problems, "response_metadata": { "messages": messages } }))
}

/// Slack threads a reply under the parent's `ts`; replying to a reply or to an unknown `ts` is a bot bug
/// whose exact Slack error is undocumented, so the fake records it as a finding instead of guessing.
pub(crate) fn check_thread_parent(state: &mut State, channel: &str, parent: &str, via: &str) {
    match state.messages.iter().find(|m| m.item.channel == channel && m.item.ts == parent) {
        None => state.finding(format!("{via}: thread_ts {parent} is not a message in {channel}")),
        Some(m) if m.item.thread_ts.is_some() => {
            state.finding(format!("{via}: thread_ts {parent} in {channel} is a reply; Slack wants the parent's ts"))
        }
        Some(_) => {}
    }
}

/// A posted message as Slack echoes it back (and includes it in `block_actions` payloads).
pub(crate) fn message_json(config: &SlackConfig, message: &Message) -> Value {
    let mut echoed = json!({
        "type": "message",
        "text": message.text.clone().unwrap_or_default(),
        "user": message.user,
        "bot_id": config.bot.bot_id,
        "app_id": config.app_id,
        "team": config.team.id,
        "ts": message.ts,
    });
    if let Some(fields) = echoed.as_object_mut() {
        if let Some(blocks) = &message.blocks {
            fields.insert("blocks".into(), blocks.clone());
        }
        if let Some(attachments) = &message.attachments {
            fields.insert("attachments".into(), attachments.clone());
        }
        if let Some(parent) = &message.thread_ts {
            fields.insert("thread_ts".into(), json!(parent));
            fields.insert("parent_user_id".into(), json!(message.user));
        }
    }
    echoed
}
