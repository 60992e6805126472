//! Our own event type: what a Slack envelope means to jitgate, free of any client library's types.
//!
//! The socket-mode transport serialises whatever its library handed it back to Slack's wire JSON and calls the
//! functions here, so translation is tested against the recorded Slack payloads in `samples/slack/`
//! and handlers never see library types. Payloads we do not act on translate to `None` (acked and ignored).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ids::SlackUserId;

/// Something a user did in Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackEvent {
    SlashCommand(SlashCommand),
    Click(Click),
    ViewSubmitted(ViewSubmission),
    ViewClosed(ViewClosed),
}

impl SlackEvent {
    /// The user who acted.
    pub fn user(&self) -> &SlackUserId {
        match self {
            SlackEvent::SlashCommand(c) => &c.user,
            SlackEvent::Click(c) => &c.user,
            SlackEvent::ViewSubmitted(v) => &v.user,
            SlackEvent::ViewClosed(v) => &v.user,
        }
    }

    /// A key that is the same on every delivery of one user action (Slack redelivers the same payload), used
    /// to handle each action once across replicas.
    pub fn delivery_key(&self) -> String {
        match self {
            SlackEvent::SlashCommand(c) => format!("cmd:{}", c.trigger_id),
            SlackEvent::Click(c) => format!("click:{}:{}", c.trigger_id, c.action_ts),
            // Not the view hash: a form resubmitted after validation errors keeps its hash but gets a new trigger.
            SlackEvent::ViewSubmitted(v) => format!("view:{}:{}", v.view_id, v.trigger_id),
            SlackEvent::ViewClosed(v) => format!("closed:{}", v.view_id),
        }
    }
}

/// `/jit …` typed by `user` in `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub user: SlackUserId,
    pub channel: String,
    pub command: String,
    pub text: String,
    pub trigger_id: String,
}

/// A button click on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub user: SlackUserId,
    pub channel: String,
    pub message_ts: String,
    pub action_id: String,
    pub value: String,
    pub trigger_id: String,
    pub action_ts: String,
}

/// A modal submitted: one value per input block, keyed by block id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSubmission {
    pub user: SlackUserId,
    pub view_id: String,
    /// Fresh for every submission, identical in redeliveries of one.
    pub trigger_id: String,
    pub callback_id: String,
    pub private_metadata: String,
    pub values: BTreeMap<String, String>,
}

/// A modal closed without submitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewClosed {
    pub user: SlackUserId,
    pub view_id: String,
    pub callback_id: String,
    pub private_metadata: String,
}

/// The installation jitgate serves: its workspace (from `auth.test` at start-up) and its app. Envelopes whose
/// payload names another workspace or app are not acted on.
///
/// `auth.test` answers the workspace (`team_id`) but not the app; the app id is read from the app-level token,
/// `xapp-1-<app id>-…`, the same id Slack's `hello` reports as `connection_info.app_id`. Where it cannot be read,
/// only the workspace is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub team_id: String,
    pub app_id: Option<String>,
}

impl Origin {
    /// `None` when `payload` (a slash command's or an interaction's, as the transport hands it on) is for this
    /// workspace and app; otherwise what it names instead. A payload naming no workspace is refused too: every
    /// slash command and interaction Slack sends names one, so its absence means it was not built by Slack.
    ///
    /// The app is checked where the payload names one: slack-morphism keeps `api_app_id` on block actions, and a
    /// view carries its `app_id`; it drops it from slash commands, which arrive only on this app's socket anyway.
    pub fn foreign(&self, payload: &Value) -> Option<String> {
        let team = text(payload, "/team_id").or_else(|| text(payload, "/team/id"));
        match team {
            None => return Some("no workspace".to_owned()),
            Some(team) if team != self.team_id => return Some(format!("workspace {team}")),
            Some(_) => {}
        }
        let app = text(payload, "/api_app_id").or_else(|| text(payload, "/view/app_id"));
        match (&self.app_id, app) {
            (Some(ours), Some(theirs)) if *ours != theirs => Some(format!("app {theirs}")),
            _ => None,
        }
    }
}

/// The app id in an app-level token (`xapp-1-A0123ABCD-…`), if it has the documented shape.
pub fn app_id_of_app_token(token: &str) -> Option<String> {
    let mut parts = token.split('-');
    let (Some("xapp"), Some(_version), Some(app)) = (parts.next(), parts.next(), parts.next()) else { return None };
    (app.starts_with('A') && app.len() > 1 && app.chars().all(|c| c.is_ascii_alphanumeric())).then(|| app.to_owned())
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

fn user_at(value: &Value, pointer: &str) -> Option<SlackUserId> {
    SlackUserId::parse(value.pointer(pointer)?.as_str()?)
}

/// A slash-command payload (the envelope's `payload`).
pub fn from_command(payload: &Value) -> Option<SlackEvent> {
    Some(SlackEvent::SlashCommand(SlashCommand {
        user: user_at(payload, "/user_id")?,
        channel: text(payload, "/channel_id")?,
        command: text(payload, "/command")?,
        text: text(payload, "/text").unwrap_or_default(),
        trigger_id: text(payload, "/trigger_id")?,
    }))
}

/// An interactive payload: button clicks, modal submissions and closes; `None` for anything else.
pub fn from_interaction(payload: &Value) -> Option<SlackEvent> {
    match payload.get("type")?.as_str()? {
        "block_actions" => {
            let action = payload.pointer("/actions/0")?;
            Some(SlackEvent::Click(Click {
                user: user_at(payload, "/user/id")?,
                channel: text(payload, "/channel/id").or_else(|| text(payload, "/container/channel_id"))?,
                message_ts: text(payload, "/container/message_ts").or_else(|| text(payload, "/message/ts"))?,
                action_id: text(action, "/action_id")?,
                value: text(action, "/value").unwrap_or_default(),
                trigger_id: text(payload, "/trigger_id")?,
                action_ts: text(action, "/action_ts").unwrap_or_default(),
            }))
        }
        "view_submission" => Some(SlackEvent::ViewSubmitted(ViewSubmission {
            user: user_at(payload, "/user/id")?,
            view_id: text(payload, "/view/id")?,
            trigger_id: text(payload, "/trigger_id").unwrap_or_default(),
            callback_id: text(payload, "/view/callback_id").unwrap_or_default(),
            private_metadata: text(payload, "/view/private_metadata").unwrap_or_default(),
            values: state_values(payload.pointer("/view/state/values")),
        })),
        "view_closed" => Some(SlackEvent::ViewClosed(ViewClosed {
            user: user_at(payload, "/user/id")?,
            view_id: text(payload, "/view/id")?,
            callback_id: text(payload, "/view/callback_id").unwrap_or_default(),
            private_metadata: text(payload, "/view/private_metadata").unwrap_or_default(),
        })),
        _ => None,
    }
}

/// `view.state.values` is `{block_id: {action_id: {type, value | selected_option | selected_date …}}}`; jitgate
/// puts one input in each block, so each block yields one text value. Empty inputs are left out.
fn state_values(values: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(blocks) = values.and_then(Value::as_object) else { return out };
    for (block_id, actions) in blocks {
        let Some(element) = actions.as_object().and_then(|a| a.values().next()) else { continue };
        let value = text(element, "/value")
            .or_else(|| text(element, "/selected_option/value"))
            .or_else(|| text(element, "/selected_date"))
            .or_else(|| element.get("selected_date_time").and_then(Value::as_i64).map(|t| t.to_string()));
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            out.insert(block_id.clone(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/slack").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn recorded_payloads_are_checked_against_the_installation() {
        let ours = Origin { team_id: "T111".into(), app_id: Some("A111".into()) };
        let command = sample("slash_commands.envelope.python-sdk.json")["payload"].clone();
        let click = sample("interactive.block_actions.envelope.wrapped-bolt.json")["payload"].clone();
        let view = sample("interactive.view_submission.envelope.wrapped-bolt.json")["payload"].clone();
        for payload in [&command, &click, &view] {
            assert_eq!(ours.foreign(payload), None, "{payload}");
        }
        let elsewhere = Origin { team_id: "T999".into(), ..ours.clone() };
        for payload in [&command, &click, &view] {
            assert_eq!(elsewhere.foreign(payload).as_deref(), Some("workspace T111"));
        }
        let other_app = Origin { app_id: Some("A999".into()), ..ours.clone() };
        assert_eq!(other_app.foreign(&click).as_deref(), Some("app A111"));
        // Without a known app id only the workspace is checked; without a workspace nothing is accepted.
        assert_eq!(Origin { app_id: None, ..other_app }.foreign(&click), None);
        let mut anonymous = command.clone();
        anonymous.as_object_mut().unwrap().remove("team_id");
        assert_eq!(ours.foreign(&anonymous).as_deref(), Some("no workspace"));
    }

    #[test]
    fn the_app_id_is_read_from_an_app_level_token() {
        assert_eq!(app_id_of_app_token("xapp-1-A0JITGATE-0000000000000-localapptoken").as_deref(), Some("A0JITGATE"));
        for token in ["xoxb-1-A0JITGATE-1", "xapp-1", "xapp-1-B0NOTANAPP-1", "xapp-1--1", "xapp-1-A0/../-1"] {
            assert_eq!(app_id_of_app_token(token), None, "{token}");
        }
    }

    #[test]
    fn recorded_slash_command_translates() {
        let envelope = sample("slash_commands.envelope.python-sdk.json");
        let Some(SlackEvent::SlashCommand(command)) = from_command(&envelope["payload"]) else { panic!() };
        assert_eq!(command.user.as_str(), "U111");
        assert_eq!(
            (command.channel.as_str(), command.command.as_str(), command.text.as_str()),
            ("C111", "/hello-socket-mode", "")
        );
        assert_eq!(command.trigger_id, "111.222.xxx");
    }

    #[test]
    fn recorded_block_action_translates() {
        let Some(SlackEvent::Click(click)) = from_interaction(&sample("block_actions.payload.bolt-python.json")) else {
            panic!()
        };
        assert_eq!(click.user.as_str(), "W111");
        assert_eq!((click.channel.as_str(), click.message_ts.as_str()), ("C111", "111.222"));
        assert_eq!((click.action_id.as_str(), click.value.as_str()), ("a", "click_me_123"));
    }

    #[test]
    fn recorded_view_submission_translates() {
        let Some(SlackEvent::ViewSubmitted(view)) =
            from_interaction(&sample("view_submission.payload.bolt-python.json"))
        else {
            panic!()
        };
        assert_eq!((view.view_id.as_str(), view.callback_id.as_str()), ("V111", "view-id"));
        assert_eq!(view.private_metadata, "This is for you!");
        assert_eq!(view.values, BTreeMap::from([("hspI".to_owned(), "test".to_owned())]));
    }

    #[test]
    fn wrapped_envelopes_translate_and_unknown_payloads_are_ignored() {
        let envelope = sample("interactive.block_actions.envelope.wrapped-bolt.json");
        assert!(matches!(from_interaction(&envelope["payload"]), Some(SlackEvent::Click(_))));
        let envelope = sample("interactive.view_submission.envelope.wrapped-bolt.json");
        assert!(matches!(from_interaction(&envelope["payload"]), Some(SlackEvent::ViewSubmitted(_))));
        assert_eq!(from_interaction(&serde_json::json!({"type": "shortcut"})), None);
        assert_eq!(from_interaction(&serde_json::json!({"no": "type"})), None);
        assert_eq!(from_command(&serde_json::json!({"user_id": "not a user"})), None);
    }
}
