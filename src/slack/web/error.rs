//! Why a Slack Web API call failed: Slack's own error code kept verbatim, plus the fix in plain words where there is
//! one. No variant ever holds the bot token: errors end up in logs, audit entries and Slack replies.

use std::time::Duration;

/// A failed Web API call. Callers branch on [`code`](SlackError::code); people read [`user_hint`](SlackError::user_hint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `{"ok": false, "error": <error>}`.
    #[error("Slack refused {method}{}: {error}{}", about(.channel), extra(.needed, .details))]
    Api {
        /// The Web API method, e.g. `chat.postMessage`.
        method: String,
        /// Slack's error code, e.g. `not_in_channel`.
        error: String,
        /// The channel the call was about, when it was about one (for the hint).
        channel: Option<String>,
        /// The scope Slack says is missing (`needed`, sent with `missing_scope`).
        needed: Option<String>,
        /// Slack's explanations (`response_metadata.messages`, `errors`), e.g. which block is invalid.
        details: Vec<String>,
    },
    /// Slack kept answering HTTP 429 until the attempts or the time budget ran out.
    #[error("Slack is still rate limiting {method} after {attempts} attempt(s){}", wait_hint(.retry_after))]
    RateLimited {
        method: String,
        attempts: u32,
        /// The last wait Slack asked for.
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, DNS, TLS, timeout, or Slack answered 5xx.
    #[error("Slack is unreachable at {base_url} ({method}): {reason}")]
    Unreachable { method: String, base_url: String, reason: String },
    /// An answer that is not the Web API's: not JSON, an unexpected HTTP status, a missing field.
    #[error("Slack sent an unexpected answer to {method}: {reason}")]
    BadResponse { method: String, reason: String },
}

fn about(channel: &Option<String>) -> String {
    channel.as_ref().map(|c| format!(" in {c}")).unwrap_or_default()
}

fn extra(needed: &Option<String>, details: &[String]) -> String {
    let mut text = String::new();
    if let Some(scope) = needed {
        text.push_str(&format!(" (needs scope {scope})"));
    }
    if !details.is_empty() {
        text.push_str(&format!(" ({})", details.join("; ")));
    }
    text
}

fn wait_hint(retry_after: &Option<Duration>) -> String {
    retry_after.map(|d| format!(" (it asks to wait {} s)", d.as_secs())).unwrap_or_default()
}

impl SlackError {
    /// A short machine-readable code: Slack's error code for [`SlackError::Api`], else `ratelimited`,
    /// `unreachable` or `bad_response`.
    pub fn code(&self) -> &str {
        match self {
            SlackError::Api { error, .. } => error,
            SlackError::RateLimited { .. } => "ratelimited",
            SlackError::Unreachable { .. } => "unreachable",
            SlackError::BadResponse { .. } => "bad_response",
        }
    }

    /// The Web API method that failed.
    pub fn method(&self) -> &str {
        match self {
            SlackError::Api { method, .. }
            | SlackError::RateLimited { method, .. }
            | SlackError::Unreachable { method, .. }
            | SlackError::BadResponse { method, .. } => method,
        }
    }

    /// What to do about it, in plain words, when there is something to do. Suitable for an operator's log line or
    /// a refusal shown in Slack.
    pub fn user_hint(&self) -> Option<String> {
        match self {
            SlackError::Api { error, channel, needed, .. } => api_hint(error, channel.as_deref(), needed.as_deref()),
            SlackError::RateLimited { .. } => {
                Some("Slack is limiting how fast jitgate may call it: try again in a minute".to_owned())
            }
            SlackError::Unreachable { base_url, .. } => Some(format!(
                "jitgate cannot reach Slack at {base_url}: check the network path to Slack and SLACK_API_URL"
            )),
            SlackError::BadResponse { .. } => Some(
                "Slack's answer was not understood: check that SLACK_API_URL points at the Slack Web API \
                 (https://slack.com/api)"
                    .to_owned(),
            ),
        }
    }
}

/// The fix for one Slack error code. Codes from the method reference pages (chat.postMessage, chat.update,
/// chat.postEphemeral, views.open, users.lookupByEmail, files.*) and the generic list every method shares.
fn api_hint(code: &str, channel: Option<&str>, needed: Option<&str>) -> Option<String> {
    let place = channel.map(|c| format!("channel {c}")).unwrap_or_else(|| "the channel".to_owned());
    let hint = match code {
        "not_in_channel" => {
            format!("invite the jitgate app to {place}: type `/invite @jitgate` in the channel")
        }
        "channel_not_found" => format!(
            "{place} was not found: check the channel id in jitgate.toml; a private channel stays invisible until \
             the jitgate app is invited to it"
        ),
        "is_archived" | "is_inactive" => format!("{place} is archived: unarchive it or configure another channel"),
        "user_not_in_channel" => {
            format!("the user is not a member of {place}, so jitgate cannot show them a message there")
        }
        "posting_to_channel_denied"
        | "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel" => {
            format!(
                "{place} does not let the jitgate app post: allow it in the channel settings or use another channel"
            )
        }
        "invalid_blocks"
        | "invalid_blocks_format"
        | "msg_blocks_too_long"
        | "msg_too_long"
        | "no_text"
        | "too_many_attachments"
        | "block_mismatch" => {
            "Slack refused the message jitgate built; this is a bug in jitgate: please report it with the request id"
                .to_owned()
        }
        "cant_update_message" | "message_not_found" | "edit_window_closed" => {
            "the message cannot be changed any more: it was deleted, or it was not posted by this jitgate app"
                .to_owned()
        }
        "expired_trigger_id" | "exchanged_trigger_id" => {
            "Slack allows only 3 seconds to open a dialog and that window passed: run the command again".to_owned()
        }
        "users_not_found" | "user_not_found" => {
            "no Slack account matches: check the person's email in PagerDuty and in Slack".to_owned()
        }
        "missing_scope" => format!(
            "the Slack app lacks the scope {}: add it in manifests/slack-app.yaml, update the app from the manifest \
             and reinstall it to the workspace",
            needed.unwrap_or("this method needs")
        ),
        "not_authed" | "invalid_auth" | "token_revoked" | "token_expired" | "account_inactive" => {
            "Slack rejected the bot token: set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…) and check \
             that the app is still installed"
                .to_owned()
        }
        "not_allowed_token_type" => "SLACK_BOT_TOKEN holds the wrong kind of token: use the Bot User OAuth Token \
                                     (xoxb-…), not the app-level token (xapp-…)"
            .to_owned(),
        "file_uploads_disabled" | "file_upload_size_restricted" => {
            "file uploads are disabled or restricted in this workspace: a Slack admin must allow them".to_owned()
        }
        "missing_argument" => "Slack cannot take an empty file".to_owned(),
        "ratelimited" | "rate_limited" | "message_limit_exceeded" => {
            "Slack is limiting how fast jitgate may post: try again in a minute".to_owned()
        }
        "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
            "Slack had an internal problem: try again shortly".to_owned()
        }
        _ => return None,
    };
    Some(hint)
}
