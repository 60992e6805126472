//! `views.open` and `views.update`: modals opened with a trigger the fake issued (single use, short-lived),
//! stored the way Slack returns them (`id`, `hash`, `state`, `root_view_id`, …).

use serde_json::{Map, Value, json};

use super::blocks::{self, BlocksError};
use super::{Params, Reply, error, error_with, ok};
use crate::slack::ids;
use crate::slack::records::{OpenedView, ViewUpdate};
use crate::slack::state::{LiveView, Shared, Tracked};

pub(super) fn open(shared: &Shared, params: &Params) -> Reply {
    let view = match check_view(params) {
        Ok(view) => view,
        Err(reply) => return reply,
    };
    let ttl = shared.config.trigger_ttl;
    shared.mutate(|state| {
        let trigger_id = params.str("trigger_id").unwrap_or_default().to_owned();
        let Some(trigger) = state.triggers.get_mut(&trigger_id) else {
            return error_with(
                "invalid_arguments",
                json!({"response_metadata": {"messages": ["invalid `trigger_id`"]}}),
            );
        };
        if trigger.used {
            return error("exchanged_trigger_id");
        }
        if trigger.issued.elapsed() > ttl {
            return error("expired_trigger_id");
        }
        trigger.used = true;
        let user = trigger.user.clone();
        let view_id = state.fresh_id("V");
        let stored = stored_view(shared, &view, &view_id, None);
        state.live_views.insert(view_id.clone(), LiveView { user: user.clone(), view: stored.clone() });
        state.opened_views.push(Tracked::new(OpenedView { view_id, user, trigger_id, view: stored.clone() }));
        ok(json!({ "view": stored }))
    })
}

pub(super) fn update(shared: &Shared, params: &Params) -> Reply {
    let view = match check_view(params) {
        Ok(view) => view,
        Err(reply) => return reply,
    };
    shared.mutate(|state| {
        let found = match (params.str("view_id"), params.str("external_id")) {
            (Some(id), _) => state.live_views.get(id).map(|live| (id.to_owned(), live.clone())),
            (None, Some(external)) => state
                .live_views
                .iter()
                .find(|(_, live)| live.view.get("external_id").and_then(Value::as_str) == Some(external))
                .map(|(id, live)| (id.clone(), live.clone())),
            (None, None) => None,
        };
        let Some((view_id, live)) = found else { return error("not_found") };
        // The hash guards against overwriting a newer version of the view (Slack: `hash_conflict`).
        if let Some(hash) = params.str("hash")
            && live.view.get("hash").and_then(Value::as_str) != Some(hash)
        {
            return error("hash_conflict");
        }
        let stored = stored_view(shared, &view, &view_id, Some(&live.view));
        state.live_views.insert(view_id.clone(), LiveView { user: live.user, view: stored.clone() });
        state.view_updates.push(Tracked::new(ViewUpdate { view_id, view: stored.clone() }));
        ok(json!({ "view": stored }))
    })
}

/// The `view` parameter must be a modal with a title and at most 100 valid blocks.
fn check_view(params: &Params) -> Result<Map<String, Value>, Reply> {
    let invalid =
        |message: &str| error_with("invalid_arguments", json!({"response_metadata": {"messages": [message]}}));
    let Some(Value::Object(view)) = params.get("view") else {
        return Err(invalid("[ERROR] missing required field: view"));
    };
    if view.get("type").and_then(Value::as_str) != Some("modal") {
        return Err(invalid("[ERROR] must be `modal` [json-pointer:/view/type]"));
    }
    if view.get("title").is_none() {
        return Err(invalid("[ERROR] missing required field: title [json-pointer:/view]"));
    }
    if !view.get("blocks").is_some_and(Value::is_array) {
        return Err(invalid("[ERROR] must be an array of blocks [json-pointer:/view/blocks]"));
    }
    match blocks::validate_view(&Value::Object(view.clone()), "/view") {
        Ok(()) => Ok(view.clone()),
        Err(BlocksError::Format) => Err(invalid("[ERROR] must be an array of blocks [json-pointer:/view/blocks]")),
        Err(BlocksError::TooLong) => Err(error("msg_blocks_too_long")),
        Err(BlocksError::Invalid(problems)) => {
            let messages: Vec<String> = problems.iter().map(|p| format!("[ERROR] {p}")).collect();
            Err(error_with("invalid_arguments", json!({"response_metadata": {"messages": messages}})))
        }
    }
}

/// The view as Slack stores and returns it: the app's fields plus Slack's own.
fn stored_view(shared: &Shared, view: &Map<String, Value>, id: &str, previous: Option<&Value>) -> Value {
    let config = &shared.config;
    let field = |key: &str, default: Value| view.get(key).cloned().unwrap_or(default);
    let mut stored = json!({
        "id": id,
        "team_id": config.team.id,
        "type": "modal",
        "blocks": field("blocks", json!([])),
        "private_metadata": field("private_metadata", json!("")),
        "callback_id": field("callback_id", json!("")),
        "state": previous.and_then(|p| p.get("state").cloned()).unwrap_or(json!({"values": {}})),
        "hash": ids::view_hash(),
        "title": field("title", Value::Null),
        "clear_on_close": field("clear_on_close", json!(false)),
        "notify_on_close": field("notify_on_close", json!(false)),
        "previous_view_id": null,
        "root_view_id": previous.and_then(|p| p.get("root_view_id").cloned()).unwrap_or(json!(id)),
        "app_id": config.app_id,
        "external_id": field("external_id", json!("")),
        "app_installed_team_id": config.team.id,
        "bot_id": config.bot.bot_id,
    });
    if let Some(fields) = stored.as_object_mut() {
        for key in ["close", "submit"] {
            if let Some(value) = view.get(key) {
                fields.insert(key.into(), value.clone());
            }
        }
    }
    stored
}
