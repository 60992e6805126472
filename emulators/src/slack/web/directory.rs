//! Workspace directory and session methods: `auth.test`, `apps.connections.open`, `users.info`,
//! `users.lookupByEmail`, `conversations.info`, `conversations.open`. Objects carry the same keys as the
//! samples from Slack's API spec.

use serde_json::{Value, json};

use super::{Params, Reply, error, error_with, ok};
use crate::slack::config::{Channel, User};
use crate::slack::ids;
use crate::slack::state::Shared;

pub(super) fn auth_test(shared: &Shared, _params: &Params) -> Reply {
    let config = &shared.config;
    ok(json!({
        "url": format!("https://{}.slack.com/", config.team.domain),
        "team": config.team.name,
        "user": config.bot.name,
        "team_id": config.team.id,
        "user_id": config.bot.user_id,
        "bot_id": config.bot.bot_id,
        "is_enterprise_install": false,
    }))
}

/// Hands out a single-use WebSocket URL on this server (Slack: `wss://wss-…slack.com/link/?ticket=…`).
pub(super) fn apps_connections_open(shared: &Shared, _params: &Params) -> Reply {
    let ticket = ids::uuid();
    shared.mutate(|state| state.tickets.insert(ticket.clone()));
    let ws_base = shared.base_url.replacen("http://", "ws://", 1);
    ok(json!({ "url": format!("{ws_base}/link/?ticket={ticket}&app_id={}", shared.config.app_id) }))
}

pub(super) fn users_info(shared: &Shared, params: &Params) -> Reply {
    let Some(id) = params.str("user") else { return error("user_not_found") };
    shared.with(|state| match state.user(id) {
        Some(user) => ok(json!({ "user": user_json(user, &shared.config.team.id) })),
        None => error("user_not_found"),
    })
}

pub(super) fn users_lookup_by_email(shared: &Shared, params: &Params) -> Reply {
    let Some(email) = params.str("email") else { return error("users_not_found") };
    shared.with(|state| {
        let found = state.users.iter().find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)));
        match found {
            Some(user) => ok(json!({ "user": user_json(user, &shared.config.team.id) })),
            // Note the plural: users.lookupByEmail says `users_not_found`, users.info `user_not_found`.
            None => error("users_not_found"),
        }
    })
}

pub(super) fn conversations_info(shared: &Shared, params: &Params) -> Reply {
    let Some(id) = params.str("channel") else { return error("channel_not_found") };
    shared.with(|state| {
        // Slack hides private conversations the bot is not in: they look like they do not exist.
        match state.channels.iter().find(|c| c.id == id) {
            Some(channel) if !channel.is_private || channel.bot_is_member => {
                ok(json!({ "channel": channel_json(channel, &shared.config.bot.user_id) }))
            }
            _ => error("channel_not_found"),
        }
    })
}

/// Opens (or finds) the bot's DM with one user. Group DMs are not emulated.
pub(super) fn conversations_open(shared: &Shared, params: &Params) -> Reply {
    if let Some(channel) = params.str("channel") {
        return shared.with(|state| match state.channels.iter().find(|c| c.id == channel && c.is_im) {
            Some(c) => ok(json!({"no_op": true, "already_open": true, "channel": {"id": c.id}})),
            None => error("channel_not_found"),
        });
    }
    let Some(users) = params.list("users").filter(|users| !users.is_empty()) else {
        return error_with(
            "invalid_arguments",
            json!({"response_metadata": {"messages": ["users or channel required"]}}),
        );
    };
    let [user] = users.as_slice() else {
        return error_with(
            "invalid_arguments",
            json!({"response_metadata": {"messages": ["the fake only opens one-to-one DMs"]}}),
        );
    };
    let bot_id = shared.config.bot.user_id.clone();
    let return_im = params.flag("return_im");
    shared.mutate(|state| {
        if state.user(user).is_none() {
            return error("user_not_found");
        }
        let (id, already_open) = state.dm_with(user);
        let channel = match state.channels.iter().find(|c| c.id == id) {
            Some(c) if return_im => channel_json(c, &bot_id),
            _ => json!({ "id": id }),
        };
        ok(json!({ "no_op": already_open, "already_open": already_open, "channel": channel }))
    })
}

/// A user object with every key of Slack's `users.info` example.
pub(crate) fn user_json(user: &User, team_id: &str) -> Value {
    let avatar = format!("https://avatars.slack-edge.com/{}_192.png", user.id);
    let mut profile = json!({
        "avatar_hash": format!("g{}", &ids::hex(6)),
        "display_name": user.name,
        "display_name_normalized": user.name,
        "image_192": avatar, "image_24": avatar, "image_32": avatar, "image_48": avatar,
        "image_512": avatar, "image_72": avatar, "image_original": avatar,
        "real_name": user.real_name,
        "real_name_normalized": user.real_name,
        "status_emoji": "",
        "status_text": "",
        "team": team_id,
    });
    if let (Some(email), Some(fields)) = (&user.email, profile.as_object_mut()) {
        fields.insert("email".into(), json!(email));
    }
    json!({
        "color": "9f69e7",
        "deleted": user.deleted,
        "has_2fa": false,
        "id": user.id,
        "is_admin": false,
        "is_app_user": user.is_app_user,
        "is_bot": user.is_bot,
        "is_owner": false,
        "is_primary_owner": false,
        "is_restricted": user.is_restricted,
        "is_ultra_restricted": user.is_ultra_restricted,
        "name": user.name,
        "profile": profile,
        "real_name": user.real_name,
        "team_id": team_id,
        "tz": "Europe/London",
        "tz_label": "Greenwich Mean Time",
        "tz_offset": 0,
        "updated": 1_700_000_000,
    })
}

/// A conversation object with every key of Slack's `conversations.info` example.
pub(crate) fn channel_json(channel: &Channel, creator: &str) -> Value {
    json!({
        "created": 1_700_000_000,
        "creator": creator,
        "id": channel.id,
        "is_archived": channel.is_archived,
        "is_channel": !channel.is_private && !channel.is_im,
        "is_ext_shared": false,
        "is_general": false,
        "is_group": channel.is_private && !channel.is_im,
        "is_im": channel.is_im,
        "is_member": channel.bot_is_member,
        "is_mpim": false,
        "is_org_shared": false,
        "is_pending_ext_shared": false,
        "is_private": channel.is_private,
        "is_read_only": false,
        "is_shared": false,
        "last_read": "0000000000.000000",
        "locale": "en-US",
        "name": channel.name,
        "name_normalized": channel.name,
        "parent_conversation": null,
        "pending_shared": [],
        "previous_names": [],
        "purpose": {"creator": "", "last_set": 0, "value": ""},
        "topic": {"creator": "", "last_set": 0, "value": ""},
        "unlinked": 0,
    })
}
