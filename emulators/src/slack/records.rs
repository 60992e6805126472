//! What the fake recorded, as the test reads it: Web API calls, messages and their updates, ephemerals,
//! uploaded files and opened modals. Plain data; the reading order lives in `inspect.rs`.

use serde_json::Value;
use time::OffsetDateTime;

/// One Web API call, in arrival order.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// Method name, e.g. `chat.postMessage`.
    pub method: String,
    /// Query and body parameters merged into one JSON object; JSON-in-form fields (`blocks`, `view`, `files`,
    /// …) are parsed. The `token` parameter is never recorded.
    pub params: Value,
    /// When the call arrived.
    pub at: OffsetDateTime,
    /// What the fake answered.
    pub outcome: CallOutcome,
}

/// The answer the fake gave to a Web API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// `{"ok": true, …}`.
    Ok,
    /// `{"ok": false, "error": <code>}`.
    Error(String),
    /// HTTP 429 with `Retry-After`.
    RateLimited {
        /// The `Retry-After` value sent.
        retry_after_secs: u64,
    },
}

/// A message the bot posted (top-level or thread reply), as it was posted.
#[derive(Debug, Clone)]
pub struct Message {
    /// Channel id the message landed in (DMs: the `D…` id).
    pub channel: String,
    /// The message's `ts`.
    pub ts: String,
    /// Parent `ts` for a thread reply.
    pub thread_ts: Option<String>,
    /// Author: the bot user id.
    pub user: String,
    /// `text` parameter.
    pub text: Option<String>,
    /// `blocks` parameter.
    pub blocks: Option<Value>,
    /// `attachments` parameter.
    pub attachments: Option<Value>,
    /// Every parameter the bot sent.
    pub params: Value,
}

/// A change to a posted message: `chat.update`, or a `response_url` post with `replace_original` /
/// `delete_original`.
#[derive(Debug, Clone)]
pub struct MessageUpdate {
    /// Channel id.
    pub channel: String,
    /// `ts` of the updated message.
    pub ts: String,
    /// Text after the update (Slack's rules applied).
    pub text: Option<String>,
    /// Blocks after the update (Slack's rules applied: dropped when only `text` was sent).
    pub blocks: Option<Value>,
    /// Attachments after the update.
    pub attachments: Option<Value>,
    /// The message was deleted (`delete_original`).
    pub deleted: bool,
    /// Every parameter the bot sent.
    pub params: Value,
}

/// An ephemeral message, visible to one user only.
#[derive(Debug, Clone)]
pub struct Ephemeral {
    /// Channel id.
    pub channel: String,
    /// The one user who sees it.
    pub user: String,
    /// The `message_ts` Slack returned for it.
    pub message_ts: String,
    /// Thread it was shown in, if any.
    pub thread_ts: Option<String>,
    /// `text` parameter.
    pub text: Option<String>,
    /// `blocks` parameter.
    pub blocks: Option<Value>,
    /// Where it came from.
    pub via: EphemeralSource,
    /// Every parameter the bot sent.
    pub params: Value,
}

/// How an ephemeral message was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralSource {
    /// `chat.postEphemeral`.
    PostEphemeral,
    /// A POST to a payload's `response_url`.
    ResponseUrl,
}

/// A file uploaded through `files.getUploadURLExternal` → upload URL → `files.completeUploadExternal`.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// `F…` id handed out by `files.getUploadURLExternal`.
    pub file_id: String,
    /// `filename` given to `files.getUploadURLExternal`.
    pub filename: String,
    /// `length` given to `files.getUploadURLExternal`.
    pub declared_length: u64,
    /// The bytes POSTed to the upload URL (`None` while nothing was uploaded).
    pub content: Option<Vec<u8>>,
    /// Content type of the upload (the part's type for multipart uploads).
    pub content_type: Option<String>,
    /// `title` given to `files.completeUploadExternal`.
    pub title: Option<String>,
    /// Channel it was shared to (`None` = private file, or not completed).
    pub channel_id: Option<String>,
    /// Thread it was shared in.
    pub thread_ts: Option<String>,
    /// `initial_comment`.
    pub initial_comment: Option<String>,
    /// `files.completeUploadExternal` succeeded for it.
    pub completed: bool,
}

impl UploadedFile {
    /// The uploaded bytes as UTF-8 text (lossy), empty when nothing was uploaded.
    pub fn text(&self) -> String {
        self.content.as_deref().map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default()
    }
}

/// A modal opened with `views.open`.
#[derive(Debug, Clone)]
pub struct OpenedView {
    /// `V…` id.
    pub view_id: String,
    /// The user whose trigger opened it.
    pub user: String,
    /// The trigger it was opened with.
    pub trigger_id: String,
    /// The view as Slack stores it (the bot's view plus `id`, `hash`, `state`, …).
    pub view: Value,
}

/// A `views.update` of an open modal.
#[derive(Debug, Clone)]
pub struct ViewUpdate {
    /// `V…` id.
    pub view_id: String,
    /// The view after the update.
    pub view: Value,
}

/// A button found in a message's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// Enclosing block's `block_id`, if set.
    pub block_id: Option<String>,
    /// `action_id`.
    pub action_id: String,
    /// `value`.
    pub value: Option<String>,
    /// Label text.
    pub text: String,
    /// `style` (`primary`, `danger`).
    pub style: Option<String>,
}

impl Message {
    /// The text and every text found in the blocks and attachments, joined with newlines: handy for
    /// `contains` assertions that should not depend on the layout.
    pub fn all_text(&self) -> String {
        joined_text(self.text.as_deref(), self.blocks.as_ref(), self.attachments.as_ref())
    }

    /// The buttons in the blocks, in order.
    pub fn buttons(&self) -> Vec<Button> {
        self.blocks.as_ref().map(buttons_in).unwrap_or_default()
    }
}

impl MessageUpdate {
    /// Same as [`Message::all_text`], for the updated content.
    pub fn all_text(&self) -> String {
        joined_text(self.text.as_deref(), self.blocks.as_ref(), self.attachments.as_ref())
    }

    /// The buttons left after the update.
    pub fn buttons(&self) -> Vec<Button> {
        self.blocks.as_ref().map(buttons_in).unwrap_or_default()
    }
}

impl Ephemeral {
    /// Same as [`Message::all_text`].
    pub fn all_text(&self) -> String {
        joined_text(self.text.as_deref(), self.blocks.as_ref(), None)
    }

    /// The buttons in the blocks.
    pub fn buttons(&self) -> Vec<Button> {
        self.blocks.as_ref().map(buttons_in).unwrap_or_default()
    }
}

fn joined_text(text: Option<&str>, blocks: Option<&Value>, attachments: Option<&Value>) -> String {
    let mut parts: Vec<String> = text.map(|t| vec![t.to_owned()]).unwrap_or_default();
    for tree in [blocks, attachments].into_iter().flatten() {
        collect_texts(tree, &mut parts);
    }
    parts.join("\n")
}

/// Every string under a `text` key (Block Kit text objects) anywhere in the tree.
fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match child {
                    Value::String(s) if key == "text" => out.push(s.clone()),
                    _ => collect_texts(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_texts(item, out)),
        _ => {}
    }
}

/// Buttons in `actions` blocks and section accessories.
pub(crate) fn buttons_in(blocks: &Value) -> Vec<Button> {
    let mut found = Vec::new();
    for block in blocks.as_array().into_iter().flatten() {
        let block_id = block.get("block_id").and_then(Value::as_str).map(str::to_owned);
        let elements = block.get("elements").and_then(Value::as_array).into_iter().flatten();
        let accessory = block.get("accessory").into_iter();
        for element in elements.chain(accessory) {
            if element.get("type").and_then(Value::as_str) != Some("button") {
                continue;
            }
            let Some(action_id) = element.get("action_id").and_then(Value::as_str) else { continue };
            found.push(Button {
                block_id: block_id.clone(),
                action_id: action_id.to_owned(),
                value: element.get("value").and_then(Value::as_str).map(str::to_owned),
                text: element.pointer("/text/text").and_then(Value::as_str).unwrap_or_default().to_owned(),
                style: element.get("style").and_then(Value::as_str).map(str::to_owned),
            });
        }
    }
    found
}
