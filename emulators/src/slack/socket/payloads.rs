//! The JSON Slack sends over the socket: `hello`, `disconnect`, and envelopes for slash commands, block
//! actions, view submissions and view closes, each with the keys of the recorded samples
//! (`samples/slack/*.json`).

use serde_json::{Value, json};

use crate::slack::config::{Channel, SlackConfig, User};
use crate::slack::ids;
use crate::slack::records::Button;

/// `hello`: slack-morphism requires `connection_info.app_id`, `num_connections` and `debug_info.host`.
pub(crate) fn hello(app_id: &str, num_connections: usize, host: &str) -> Value {
    json!({
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": { "host": host, "build_number": 1, "approximate_connection_time": 18060 },
        "connection_info": { "app_id": app_id },
    })
}

/// `disconnect`: slack-morphism requires `reason` and `debug_info.host`.
pub(crate) fn disconnect_frame(reason: &str, host: &str) -> Value {
    json!({ "type": "disconnect", "reason": reason, "debug_info": { "host": host } })
}

/// Who acts, in which workspace.
pub(crate) struct Actor<'a> {
    pub config: &'a SlackConfig,
    pub user: &'a User,
}

impl Actor<'_> {
    fn user_json(&self) -> Value {
        json!({
            "id": self.user.id,
            "username": self.user.name,
            "name": self.user.name,
            "team_id": self.config.team.id,
        })
    }

    fn team_json(&self) -> Value {
        json!({ "id": self.config.team.id, "domain": self.config.team.domain })
    }
}

fn envelope(kind: &str, payload: Value, accepts_response_payload: bool) -> Value {
    json!({
        "envelope_id": ids::uuid(),
        "payload": payload,
        "type": kind,
        "accepts_response_payload": accepts_response_payload,
    })
}

/// A `slash_commands` envelope (sample: `slash_commands.envelope.python-sdk.json`).
pub(crate) fn slash_command(
    actor: &Actor<'_>,
    channel: &Channel,
    command: &str,
    text: &str,
    response_url: &str,
    trigger_id: &str,
) -> Value {
    let config = actor.config;
    let payload = json!({
        "token": config.verification_token,
        "team_id": config.team.id,
        "team_domain": config.team.domain,
        "channel_id": channel.id,
        "channel_name": if channel.is_im { "directmessage" } else { channel.name.as_str() },
        "user_id": actor.user.id,
        "user_name": actor.user.name,
        "command": command,
        "text": text,
        "api_app_id": config.app_id,
        "response_url": response_url,
        "trigger_id": trigger_id,
    });
    envelope("slash_commands", payload, true)
}

/// Where a clicked button lives.
pub(crate) struct ClickedMessage {
    pub channel: Channel,
    pub ts: String,
    pub is_ephemeral: bool,
    /// The message as Slack shows it (absent for ephemeral messages, as in the bolt sample).
    pub message: Option<Value>,
}

/// An `interactive` envelope with a `block_actions` payload (samples:
/// `interactive.block_actions.envelope.wrapped-bolt.json`, `block_actions.payload.bolt-python.json`).
pub(crate) fn block_actions(
    actor: &Actor<'_>,
    clicked: &ClickedMessage,
    button: &Button,
    response_url: &str,
    trigger_id: &str,
    action_ts: &str,
) -> Value {
    let config = actor.config;
    let mut action = json!({
        "action_id": button.action_id,
        "block_id": button.block_id.clone().unwrap_or_default(),
        "text": { "type": "plain_text", "text": button.text, "emoji": true },
        "value": button.value.clone().unwrap_or_default(),
        "type": "button",
        "action_ts": action_ts,
    });
    if let (Some(style), Some(fields)) = (&button.style, action.as_object_mut()) {
        fields.insert("style".into(), json!(style));
    }
    let mut payload = json!({
        "type": "block_actions",
        "user": actor.user_json(),
        "api_app_id": config.app_id,
        "token": config.verification_token,
        "container": {
            "type": "message",
            "message_ts": clicked.ts,
            "channel_id": clicked.channel.id,
            "is_ephemeral": clicked.is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": actor.team_json(),
        "channel": { "id": clicked.channel.id, "name": clicked.channel.name },
        "response_url": response_url,
        "actions": [action],
    });
    if let (Some(message), Some(fields)) = (&clicked.message, payload.as_object_mut()) {
        fields.insert("message".into(), message.clone());
    }
    // python-slack-sdk's mock (and the wrapped-bolt sample) deliver block actions with
    // `accepts_response_payload: false`.
    envelope("interactive", payload, false)
}

/// An `interactive` envelope with a `view_submission` payload (sample:
/// `interactive.view_submission.envelope.wrapped-bolt.json`).
pub(crate) fn view_submission(actor: &Actor<'_>, view: Value, trigger_id: &str) -> Value {
    let config = actor.config;
    let payload = json!({
        "type": "view_submission",
        "team": actor.team_json(),
        "user": actor.user_json(),
        "api_app_id": config.app_id,
        "token": config.verification_token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
    });
    envelope("interactive", payload, true)
}

/// An `interactive` envelope with a `view_closed` payload (sent only for views with `notify_on_close`).
pub(crate) fn view_closed(actor: &Actor<'_>, view: Value) -> Value {
    let config = actor.config;
    let payload = json!({
        "type": "view_closed",
        "team": actor.team_json(),
        "user": actor.user_json(),
        "api_app_id": config.app_id,
        "token": config.verification_token,
        "view": view,
        "is_cleared": false,
    });
    envelope("interactive", payload, false)
}
