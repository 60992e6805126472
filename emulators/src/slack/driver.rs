//! The user's side of socket mode: typing a slash command, clicking a button, submitting or closing a modal.
//! Each builds the envelope Slack would send (fresh `envelope_id`, fresh `trigger_id` and `response_url`)
//! and delivers it to one open connection. A test can only do what a user could: click a button that is in
//! the message, submit a modal that is open for that user.

use std::time::Instant;

use serde_json::{Value, json};

use super::FakeSlack;
use super::config::{Channel, SlackConfig, User};
use super::ids;
use super::records::{Button, buttons_in};
use super::socket::{self, Actor, ClickedMessage, EnvelopeHandle};
use super::state::{ResponseTarget, State, Trigger};
use super::web::message_json;

/// Another workspace and app, for envelopes that are not for the bot's installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// The workspace id the payload names (`team_id`, `team.id`, `user.team_id`).
    pub team_id: String,
    /// The app id the payload names (`api_app_id`, `view.app_id`).
    pub app_id: String,
}

impl Elsewhere {
    /// Rewrites every workspace and app id an envelope's payload carries.
    fn rewrite(&self, envelope: &mut Value) {
        let Some(payload) = envelope.get_mut("payload").and_then(Value::as_object_mut) else { return };
        if payload.contains_key("team_id") {
            payload.insert("team_id".into(), json!(self.team_id));
        }
        if payload.contains_key("api_app_id") {
            payload.insert("api_app_id".into(), json!(self.app_id));
        }
        for (object, key, value) in
            [("team", "id", &self.team_id), ("user", "team_id", &self.team_id), ("view", "app_id", &self.app_id)]
        {
            if let Some(fields) = payload.get_mut(object).and_then(Value::as_object_mut)
                && fields.contains_key(key)
            {
                fields.insert(key.into(), json!(value));
            }
        }
    }
}

impl FakeSlack {
    /// `user` types `<command> <text>` in `channel` (id, `#name` or name). Returns the envelope to check its
    /// ack.
    pub async fn send_slash_command(&self, user: &str, channel: &str, command: &str, text: &str) -> EnvelopeHandle {
        self.send_slash_command_from(None, user, channel, command, text).await
    }

    /// As [`send_slash_command`](Self::send_slash_command), with the payload naming another workspace and app
    /// when `elsewhere` is given: what a bot sees if Slack (or whoever reaches its socket) hands it an envelope
    /// that is not for its installation.
    pub async fn send_slash_command_from(
        &self,
        elsewhere: Option<&Elsewhere>,
        user: &str,
        channel: &str,
        command: &str,
        text: &str,
    ) -> EnvelopeHandle {
        let (user, channel) = self.actor_and_channel(user, channel);
        let trigger_id = self.issue_trigger(&user.id);
        let response_url = self.issue_response_url("commands", &channel.id, &user.id, None, false);
        let actor = Actor { config: &self.shared.config, user: &user };
        let mut envelope = socket::slash_command(&actor, &channel, command, text, &response_url, &trigger_id);
        if let Some(elsewhere) = elsewhere {
            elsewhere.rewrite(&mut envelope);
        }
        let summary =
            format!("slash command {:?} from {} in {}", format!("{command} {text}").trim(), user.id, channel.id);
        socket::deliver_new(&self.shared, "slash_commands", envelope, summary).await
    }

    /// `user` clicks the button `action_id` on message `message_ts` in `channel` (a channel message or an
    /// ephemeral shown to that user). Panics if no version of that message has such a button, or if its
    /// `value` differs from `value`: a user cannot click what the bot did not render.
    pub async fn send_block_action(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> EnvelopeHandle {
        self.send_block_action_from(None, user, channel, message_ts, action_id, value).await
    }

    /// As [`send_block_action`](Self::send_block_action), with the payload naming another workspace and app when
    /// `elsewhere` is given.
    pub async fn send_block_action_from(
        &self,
        elsewhere: Option<&Elsewhere>,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> EnvelopeHandle {
        let (user, channel) = self.actor_and_channel(user, channel);
        let config = &self.shared.config;
        let found = self.shared.with(|state| find_clicked(state, config, &channel, &user.id, message_ts));
        let Some((clicked_message, is_ephemeral, versions)) = found else {
            panic!("fake Slack: no message {message_ts} in {} that {} can see", channel.id, user.id)
        };
        let buttons: Vec<Button> = versions.iter().flat_map(buttons_in).collect();
        let Some(button) = buttons.iter().find(|b| b.action_id == action_id).cloned() else {
            let known: Vec<&str> = buttons.iter().map(|b| b.action_id.as_str()).collect();
            panic!("fake Slack: message {message_ts} in {} has no button {action_id:?}; buttons: {known:?}", channel.id)
        };
        if button.value.as_deref().unwrap_or_default() != value {
            panic!("fake Slack: button {action_id:?} on {message_ts} has value {:?}, not {value:?}", button.value)
        }
        let clicked = ClickedMessage {
            message: clicked_message,
            is_ephemeral,
            channel: channel.clone(),
            ts: message_ts.to_owned(),
        };
        let trigger_id = self.issue_trigger(&user.id);
        let response_url =
            self.issue_response_url("actions", &channel.id, &user.id, Some(message_ts), clicked.is_ephemeral);
        let action_ts = self.shared.mutate(|state| state.ts_clock.next());
        let actor = Actor { config: &self.shared.config, user: &user };
        let mut envelope = socket::block_actions(&actor, &clicked, &button, &response_url, &trigger_id, &action_ts);
        if let Some(elsewhere) = elsewhere {
            elsewhere.rewrite(&mut envelope);
        }
        let summary = format!("click on {action_id:?} by {} on {message_ts} in {}", user.id, channel.id);
        socket::deliver_new(&self.shared, "interactive", envelope, summary).await
    }

    /// `user` submits the open modal `view_id` with these input values (`{block_id: {action_id: {"type": …,
    /// "value": …}}}`, Slack's `view.state.values`). Panics if the modal is not open for that user.
    pub async fn send_view_submission(&self, user: &str, view_id: &str, values: Value) -> EnvelopeHandle {
        let (user, mut view) = self.open_view_of(user, view_id);
        if let Some(fields) = view.as_object_mut() {
            fields.insert("state".into(), json!({ "values": values }));
        }
        let trigger_id = self.issue_trigger(&user.id);
        let actor = Actor { config: &self.shared.config, user: &user };
        let envelope = socket::view_submission(&actor, view, &trigger_id);
        let summary = format!("submission of modal {view_id} by {}", user.id);
        socket::deliver_new(&self.shared, "interactive", envelope, summary).await
    }

    /// `user` closes the modal `view_id` with Cancel / ×. Slack only tells the app when the view was opened
    /// with `notify_on_close: true`; this panics otherwise.
    pub async fn send_view_closed(&self, user: &str, view_id: &str) -> EnvelopeHandle {
        let (user, view) = self.open_view_of(user, view_id);
        assert!(
            view.get("notify_on_close").and_then(Value::as_bool) == Some(true),
            "fake Slack: modal {view_id} was not opened with notify_on_close, so Slack would not send view_closed"
        );
        self.shared.mutate(|state| state.live_views.remove(view_id));
        let actor = Actor { config: &self.shared.config, user: &user };
        let envelope = socket::view_closed(&actor, view);
        let summary = format!("close of modal {view_id} by {}", user.id);
        socket::deliver_new(&self.shared, "interactive", envelope, summary).await
    }

    fn actor_and_channel(&self, user: &str, channel: &str) -> (User, Channel) {
        self.shared.with(|state| {
            let Some(found_user) = state.user(user).cloned() else { panic!("fake Slack: no user {user:?}") };
            let Some(found_channel) = state
                .channel(channel)
                .cloned()
                .or_else(|| state.channels.iter().find(|c| c.is_im && c.name == user).cloned())
            else {
                panic!("fake Slack: no channel {channel:?}")
            };
            (found_user, found_channel)
        })
    }

    fn open_view_of(&self, user: &str, view_id: &str) -> (User, Value) {
        self.shared.with(|state| {
            let Some(found_user) = state.user(user).cloned() else { panic!("fake Slack: no user {user:?}") };
            match state.live_views.get(view_id) {
                Some(live) if live.user == user => (found_user, live.view.clone()),
                Some(live) => panic!("fake Slack: modal {view_id} is open for {}, not {user}", live.user),
                None => panic!("fake Slack: no open modal {view_id}"),
            }
        })
    }

    fn issue_trigger(&self, user: &str) -> String {
        let trigger_id = ids::trigger_id();
        let trigger = Trigger { user: user.to_owned(), issued: Instant::now(), used: false };
        self.shared.mutate(|state| state.triggers.insert(trigger_id.clone(), trigger));
        trigger_id
    }

    fn issue_response_url(
        &self,
        kind: &str,
        channel: &str,
        user: &str,
        message_ts: Option<&str>,
        message_is_ephemeral: bool,
    ) -> String {
        let team = &self.shared.config.team.id;
        let url = format!("{}/hooks/{kind}/{team}/{}/{}", self.shared.base_url, ids::digits(13), ids::hex(24));
        let target = ResponseTarget {
            channel: channel.to_owned(),
            user: user.to_owned(),
            message_ts: message_ts.map(str::to_owned),
            message_is_ephemeral,
        };
        self.shared.mutate(|state| state.response_targets.insert(url.clone(), target));
        url
    }
}

/// The clicked message: as Slack includes it in the payload (`None` for ephemerals, which have no `message`
/// in the payload), whether it is ephemeral, and the blocks of every version the user may have seen (a
/// stale client can still show an older version).
fn find_clicked(
    state: &State,
    config: &SlackConfig,
    channel: &Channel,
    user: &str,
    ts: &str,
) -> Option<(Option<Value>, bool, Vec<Value>)> {
    if state.messages.iter().any(|m| m.item.channel == channel.id && m.item.ts == ts) {
        let (current, deleted) = state.current_message(&channel.id, ts)?;
        if deleted {
            return None;
        }
        let original = state.messages.iter().filter(|m| m.item.channel == channel.id && m.item.ts == ts);
        let updates = state.updates.iter().filter(|u| u.item.channel == channel.id && u.item.ts == ts);
        let versions = original
            .filter_map(|m| m.item.blocks.clone())
            .chain(updates.filter_map(|u| u.item.blocks.clone()))
            .collect();
        return Some((Some(message_json(config, &current)), false, versions));
    }
    let ephemeral = state
        .ephemerals
        .iter()
        .find(|e| e.item.channel == channel.id && e.item.user == user && e.item.message_ts == ts)?;
    Some((None, true, ephemeral.item.blocks.iter().cloned().collect()))
}
