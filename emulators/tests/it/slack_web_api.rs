//! The fake's Web API, driven with plain HTTP: every method's happy path and the errors Slack gives,
//! token checks, injected faults, and the recording a test reads.

use crate::support;

use std::panic::AssertUnwindSafe;

use jitgate_emulators::slack::{CallOutcome, EphemeralSource, FakeSlack, RESPONSE_URL_METHOD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{ALICE, Api, BOB, HIDDEN, OLD, ONCALL, RANDOM, SECRET, SocketClient, approval_card, world};

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

#[tokio::test]
async fn auth_test_accepts_the_bot_token_only() {
    let slack = FakeSlack::start(world()).await;

    let me = Api::bot(&slack).json("auth.test", json!({})).await;
    assert_eq!(me.ok()["user_id"], "U0JITBOT");
    assert_eq!(me.body["bot_id"], "B0JITBOT");
    assert_eq!(me.body["url"], "https://jitgate-demo.slack.com/");

    assert_eq!(Api::with_token(&slack, None).json("auth.test", json!({})).await.error(), "not_authed");
    assert_eq!(Api::with_token(&slack, Some("xoxb-stolen")).json("auth.test", json!({})).await.error(), "invalid_auth");
    assert_eq!(Api::app(&slack).json("auth.test", json!({})).await.error(), "not_allowed_token_type");
    // Slack also accepts the token as a POST parameter.
    let token = slack.bot_token().to_owned();
    let by_param = Api::with_token(&slack, None).form("auth.test", &[("token", &token)]).await;
    assert_eq!(by_param.ok()["user_id"], "U0JITBOT");
    // The token is never recorded.
    assert!(slack.calls().iter().all(|c| c.params.get("token").is_none()));
}

#[tokio::test]
async fn apps_connections_open_wants_the_app_token() {
    let slack = FakeSlack::start(world()).await;
    let opened = Api::app(&slack).form("apps.connections.open", &[]).await;
    let url = opened.ok()["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("ws://{}/link/?ticket=", slack.addr())), "{url}");
    assert_ne!(Api::app(&slack).json("apps.connections.open", json!({})).await.ok()["url"], url, "fresh each call");
    assert_eq!(Api::bot(&slack).json("apps.connections.open", json!({})).await.error(), "not_allowed_token_type");
    assert_eq!(Api::with_token(&slack, None).json("apps.connections.open", json!({})).await.error(), "not_authed");
}

#[tokio::test]
async fn base_url_works_with_and_without_trailing_slash() {
    let slack = FakeSlack::start(world()).await;
    assert!(slack.api_url().ends_with("/api/"));
    let client = reqwest::Client::new();
    for url in [
        format!("{}auth.test", slack.api_url()),
        format!("{}/auth.test", slack.api_base()),
        // What a client appending "/{method}" makes of a base URL that ends in a slash.
        format!("{}/auth.test", slack.api_url().trim_end_matches('/').to_owned() + "/"),
    ] {
        let answer = support::answer(client.post(&url).bearer_auth(slack.bot_token())).await;
        assert_eq!(answer.ok()["user_id"], "U0JITBOT", "{url}");
    }
}

#[tokio::test]
async fn unknown_methods_are_refused() {
    let slack = FakeSlack::start(world()).await;
    let answer = Api::bot(&slack).json("chat.teleport", json!({})).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.error(), "unknown_method");
}

#[tokio::test]
async fn posted_messages_land_in_the_channel_in_order() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);

    let first = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "first"})).await;
    let blocks = json!([section("*second*")]).to_string();
    let second = api.form("chat.postMessage", &[("channel", "#oncall"), ("text", "second"), ("blocks", &blocks)]).await;

    assert_eq!(first.ok()["channel"], ONCALL);
    assert_eq!(first.body["message"]["text"], "first");
    assert_eq!(first.body["message"]["ts"], first.body["ts"]);
    let (ts1, ts2) = (first.body["ts"].as_str().unwrap_or_default(), second.ok()["ts"].as_str().unwrap_or_default());
    assert!(ts1 < ts2, "ts increases: {ts1} < {ts2}");

    let read1 = slack.next_message_in("#oncall").await;
    assert_eq!((read1.ts.as_str(), read1.text.as_deref()), (ts1, Some("first")));
    let read2 = slack.next_message_in(ONCALL).await;
    assert_eq!(read2.ts, ts2);
    // Form-encoded blocks arrive parsed.
    assert_eq!(read2.blocks, Some(json!([section("*second*")])));
    assert_eq!(read2.all_text(), "second\n*second*");
}

#[tokio::test]
async fn posting_is_refused_where_slack_refuses_it() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let post = |channel: &str, extra: Value| {
        let mut body = json!({"channel": channel, "text": "hi"});
        if let (Some(fields), Value::Object(extra)) = (body.as_object_mut(), extra) {
            fields.extend(extra);
        }
        api.json("chat.postMessage", body)
    };
    assert_eq!(post("C0NOPE", json!({})).await.error(), "channel_not_found");
    assert_eq!(post(RANDOM, json!({})).await.error(), "not_in_channel");
    assert_eq!(post(OLD, json!({})).await.error(), "is_archived");
    assert_eq!(post(HIDDEN, json!({})).await.error(), "channel_not_found");
    assert_eq!(api.json("chat.postMessage", json!({"channel": ONCALL})).await.error(), "no_text");
    assert_eq!(post(ONCALL, json!({"text": "x".repeat(40_001)})).await.error(), "msg_too_long");

    let fifty_one: Vec<Value> = (0..51).map(|i| section(&format!("row {i}"))).collect();
    let too_many = post(ONCALL, json!({"blocks": fifty_one})).await;
    assert_eq!(too_many.error(), "invalid_blocks");
    assert_eq!(too_many.body["errors"], json!(["no more than 50 items allowed [json-pointer:/blocks]"]));
    assert_eq!(
        too_many.body["response_metadata"]["messages"],
        json!(["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"])
    );
    let long_section = post(ONCALL, json!({"blocks": [section(&"x".repeat(3001))]})).await;
    assert_eq!(long_section.error(), "invalid_blocks");
    let long_total: Vec<Value> = (0..5).map(|_| section(&"x".repeat(2900))).collect();
    assert_eq!(post(ONCALL, json!({"blocks": long_total})).await.error(), "msg_blocks_too_long");
    assert_eq!(post(ONCALL, json!({"blocks": "not blocks"})).await.error(), "invalid_blocks_format");
    let attachments: Vec<Value> = (0..101).map(|_| json!({"text": "a"})).collect();
    assert_eq!(post(ONCALL, json!({"attachments": attachments})).await.error(), "too_many_attachments");

    // Nothing was posted, and the private channel with Alice works.
    assert_eq!(post(SECRET, json!({})).await.ok()["channel"], SECRET);
    assert_eq!(slack.next_message_in(SECRET).await.text.as_deref(), Some("hi"));
}

#[tokio::test]
async fn thread_replies_are_read_per_thread() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let parent = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "card"})).await;
    let parent_ts = parent.ok()["ts"].as_str().unwrap_or_default().to_owned();
    let reply = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "rows", "thread_ts": parent_ts})).await;
    assert_eq!(reply.ok()["message"]["thread_ts"], parent_ts.as_str());
    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "next card"})).await.ok();

    assert_eq!(slack.next_message_in(ONCALL).await.text.as_deref(), Some("card"));
    // The reply is not a channel message: the next channel message is the second card.
    assert_eq!(slack.next_message_in(ONCALL).await.text.as_deref(), Some("next card"));
    let read = slack.next_thread_reply(ONCALL, &parent_ts).await;
    assert_eq!((read.text.as_deref(), read.thread_ts.as_deref()), (Some("rows"), Some(parent_ts.as_str())));

    // Replying to a reply is a bot bug: recorded as a finding.
    let reply_ts = read.ts.clone();
    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "oops", "thread_ts": reply_ts})).await.ok();
    slack.next_thread_reply(ONCALL, &reply_ts).await;
    let findings = slack.take_findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("is a reply"), "{findings:?}");
}

#[tokio::test]
async fn chat_update_follows_slacks_rules_for_blocks() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let posted = api
        .json("chat.postMessage", json!({"channel": ONCALL, "text": "card", "blocks": approval_card("JIT-1")}))
        .await;
    let ts = posted.ok()["ts"].as_str().unwrap_or_default().to_owned();
    slack.next_message_in(ONCALL).await;

    let updated = api.json("chat.update", json!({"channel": ONCALL, "ts": ts, "text": "Approved by bob"})).await;
    assert_eq!(updated.ok()["ts"], ts.as_str());
    assert_eq!(updated.body["text"], "Approved by bob");
    assert_eq!(updated.body["message"]["text"], "Approved by bob");
    let update = slack.next_update_of(ONCALL, &ts).await;
    // Text without blocks removes the old blocks (and with them the buttons).
    assert_eq!((update.text.as_deref(), update.blocks.as_ref()), (Some("Approved by bob"), None));
    assert!(update.buttons().is_empty());
    assert_eq!(slack.message(ONCALL, &ts).map(|m| m.text), Some(Some("Approved by bob".to_owned())));

    api.json("chat.update", json!({"channel": ONCALL, "ts": ts, "blocks": [section("final")]})).await.ok();
    let updates = slack.updates_of(ONCALL, &ts);
    assert_eq!(updates.len(), 1);
    assert_eq!(
        (updates[0].text.as_deref(), updates[0].all_text().as_str()),
        (Some("Approved by bob"), "Approved by bob\nfinal")
    );

    assert_eq!(
        api.json("chat.update", json!({"channel": ONCALL, "ts": "1.000001", "text": "x"})).await.error(),
        "message_not_found"
    );
    assert_eq!(
        api.json("chat.update", json!({"channel": ONCALL, "ts": ts, "text": "x".repeat(4001)})).await.error(),
        "msg_too_long"
    );
    assert_eq!(api.json("chat.update", json!({"channel": ONCALL, "ts": ts})).await.error(), "no_text");
    let ephemeral = api.json("chat.postEphemeral", json!({"channel": ONCALL, "user": ALICE, "text": "psst"})).await;
    let ephemeral_ts = ephemeral.ok()["message_ts"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        api.json("chat.update", json!({"channel": ONCALL, "ts": ephemeral_ts, "text": "x"})).await.error(),
        "message_not_found",
        "ephemeral messages cannot be updated"
    );
    slack.next_ephemeral_for(ALICE).await;
}

#[tokio::test]
async fn ephemerals_reach_one_member() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let sent = api.form("chat.postEphemeral", &[("channel", SECRET), ("user", ALICE), ("text", "only you")]).await;
    assert!(sent.ok()["message_ts"].as_str().is_some_and(|ts| ts.contains('.')));
    assert_eq!(
        api.form("chat.postEphemeral", &[("channel", SECRET), ("user", BOB), ("text", "x")]).await.error(),
        "user_not_in_channel"
    );
    assert_eq!(
        api.form("chat.postEphemeral", &[("channel", RANDOM), ("user", BOB), ("text", "x")]).await.error(),
        "not_in_channel"
    );

    let seen = slack.next_ephemeral_for(ALICE).await;
    assert_eq!(
        (seen.channel.as_str(), seen.text.as_deref(), seen.via),
        (SECRET, Some("only you"), EphemeralSource::PostEphemeral)
    );
}

#[tokio::test]
async fn permalinks_point_into_the_workspace() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let ts = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "x"})).await.ok()["ts"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let link = api.get("chat.getPermalink", &[("channel", ONCALL), ("message_ts", &ts)]).await;
    let expected = format!("https://jitgate-demo.slack.com/archives/{ONCALL}/p{}", ts.replace('.', ""));
    assert_eq!(link.ok()["permalink"], expected.as_str());
    assert_eq!(
        api.get("chat.getPermalink", &[("channel", ONCALL), ("message_ts", "9.9")]).await.error(),
        "message_not_found"
    );
    assert_eq!(
        api.get("chat.getPermalink", &[("channel", "C0NOPE"), ("message_ts", &ts)]).await.error(),
        "channel_not_found"
    );
    slack.next_message_in(ONCALL).await;
}

#[tokio::test]
async fn users_and_conversations_are_looked_up() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);

    let alice = api.get("users.info", &[("user", ALICE)]).await;
    assert_eq!(alice.ok()["user"]["name"], "alice");
    assert_eq!(alice.body["user"]["real_name"], "Alice Liddell");
    assert_eq!(alice.body["user"]["is_bot"], false);
    assert_eq!(api.get("users.info", &[("user", "U0NOBODY")]).await.error(), "user_not_found");

    let by_email = api.get("users.lookupByEmail", &[("email", "alice@example.COM")]).await;
    assert_eq!(by_email.ok()["user"]["id"], ALICE);
    assert_eq!(by_email.body["user"]["profile"]["email"], "Alice@Example.com");
    assert_eq!(api.get("users.lookupByEmail", &[("email", "nobody@example.com")]).await.error(), "users_not_found");

    let oncall = api.get("conversations.info", &[("channel", ONCALL)]).await;
    assert_eq!(oncall.ok()["channel"]["name"], "oncall");
    assert_eq!(oncall.body["channel"]["is_member"], true);
    assert_eq!(api.get("conversations.info", &[("channel", RANDOM)]).await.ok()["channel"]["is_member"], false);
    assert_eq!(api.get("conversations.info", &[("channel", HIDDEN)]).await.error(), "channel_not_found");
    assert_eq!(api.get("conversations.info", &[("channel", "C0NOPE")]).await.error(), "channel_not_found");

    let dm = api.json("conversations.open", json!({"users": BOB})).await;
    let dm_id = dm.ok()["channel"]["id"].as_str().unwrap_or_default().to_owned();
    assert!(dm_id.starts_with('D'), "{dm_id}");
    assert_eq!(dm.body["already_open"], false);
    let again = api.json("conversations.open", json!({"users": BOB})).await;
    assert_eq!(
        (again.ok()["channel"]["id"].as_str(), &again.body["already_open"]),
        (Some(dm_id.as_str()), &json!(true))
    );
    assert_eq!(api.json("conversations.open", json!({"users": "U0NOBODY"})).await.error(), "user_not_found");

    // Posting to the DM id, or to the user id, both land in the DM.
    api.json("chat.postMessage", json!({"channel": dm_id, "text": "your results"})).await.ok();
    assert_eq!(
        api.json("chat.postMessage", json!({"channel": BOB, "text": "more"})).await.ok()["channel"],
        dm_id.as_str()
    );
    assert_eq!(slack.next_message_in(BOB).await.text.as_deref(), Some("your results"));
    assert_eq!(slack.next_message_in(&dm_id).await.text.as_deref(), Some("more"));
}

#[tokio::test]
async fn modals_need_a_fresh_trigger_from_an_interaction() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let (mut socket, _hello) = SocketClient::connect(&slack).await;
    let modal = json!({"type": "modal", "callback_id": "reason", "title": {"type": "plain_text", "text": "Why?"},
        "submit": {"type": "plain_text", "text": "Send"}, "private_metadata": "JIT-1",
        "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Reason"},
                    "element": {"type": "plain_text_input", "action_id": "text"}}]});

    let invalid = api.json("views.open", json!({"trigger_id": "123.456.abc", "view": modal})).await;
    assert_eq!(invalid.error(), "invalid_arguments");
    assert_eq!(invalid.body["response_metadata"]["messages"], json!(["invalid `trigger_id`"]));

    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "query").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, None).await;
    command.ack().await.expect("acked");
    let trigger = command.trigger_id().expect("slash commands carry a trigger").to_owned();

    let opened = api.json("views.open", json!({"trigger_id": trigger, "view": modal})).await;
    let view = &opened.ok()["view"];
    let view_id = view["id"].as_str().unwrap_or_default().to_owned();
    assert!(view_id.starts_with('V'));
    assert_eq!(
        (&view["private_metadata"], &view["callback_id"], &view["state"]),
        (&json!("JIT-1"), &json!("reason"), &json!({"values": {}}))
    );
    assert_eq!(
        api.json("views.open", json!({"trigger_id": trigger, "view": modal})).await.error(),
        "exchanged_trigger_id"
    );
    let seen = slack.next_view_opened_for(ALICE).await;
    assert_eq!((seen.view_id.as_str(), seen.trigger_id.as_str()), (view_id.as_str(), trigger.as_str()));

    let later = slack.send_slash_command(ALICE, ONCALL, "/jit", "query").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, None).await;
    later.ack().await.expect("acked");
    slack.expire_triggers();
    let stale = later.trigger_id().unwrap_or_default();
    assert_eq!(api.json("views.open", json!({"trigger_id": stale, "view": modal})).await.error(), "expired_trigger_id");

    let hash = view["hash"].as_str().unwrap_or_default();
    let mut changed = modal.clone();
    changed["title"] = json!({"type": "plain_text", "text": "Really?"});
    assert_eq!(
        api.json("views.update", json!({"view_id": view_id, "hash": "0.stale", "view": changed})).await.error(),
        "hash_conflict"
    );
    let updated = api.json("views.update", json!({"view_id": view_id, "hash": hash, "view": changed})).await;
    assert_eq!(updated.ok()["view"]["title"]["text"], "Really?");
    assert_eq!(updated.body["view"]["id"], view_id.as_str());
    assert_eq!(slack.next_view_update(&view_id).await.view["title"]["text"], "Really?");
    assert_eq!(api.json("views.update", json!({"view_id": "V0NOPE", "view": changed})).await.error(), "not_found");
    assert_eq!(
        api.json("views.open", json!({"trigger_id": trigger, "view": {"type": "modal"}})).await.error(),
        "invalid_arguments"
    );
}

#[tokio::test]
async fn files_are_uploaded_in_three_steps_into_a_thread() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let parent = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "results"})).await;
    let thread = parent.ok()["ts"].as_str().unwrap_or_default().to_owned();
    let csv = b"order_id,total\nO-1,12.50\n".to_vec();

    // slack-morphism asks for the URL with GET + query.
    let length = csv.len().to_string();
    let got = api.get("files.getUploadURLExternal", &[("filename", "rows.csv"), ("length", &length)]).await;
    let upload_url = got.ok()["upload_url"].as_str().unwrap_or_default().to_owned();
    let file_id = got.body["file_id"].as_str().unwrap_or_default().to_owned();
    assert!(upload_url.starts_with(slack.base_url()), "{upload_url}");
    let uploaded = api.post_bytes(&upload_url, "text/csv", csv.clone()).await;
    assert_eq!(uploaded.status, StatusCode::OK);
    let done = api
        .json(
            "files.completeUploadExternal",
            json!({"files": [{"id": file_id, "title": "orders.csv"}], "channel_id": ONCALL, "thread_ts": thread}),
        )
        .await;
    assert_eq!(done.ok()["files"], json!([{"id": file_id, "title": "orders.csv"}]));

    let file = slack.next_upload_in(ONCALL).await;
    assert_eq!(
        (file.content.as_deref(), file.thread_ts.as_deref(), file.title.as_deref()),
        (Some(&csv[..]), Some(thread.as_str()), Some("orders.csv"))
    );
    assert_eq!(file.text(), "order_id,total\nO-1,12.50\n");
    assert_eq!(
        api.json("files.completeUploadExternal", json!({"files": [{"id": file_id}], "channel_id": ONCALL}))
            .await
            .error(),
        "file_not_found",
        "only once"
    );

    // A multipart upload, form-encoded get/complete.
    let got = api.form("files.getUploadURLExternal", &[("filename", "b.txt"), ("length", "5")]).await;
    let (url, id) = (
        got.ok()["upload_url"].as_str().unwrap_or_default().to_owned(),
        got.body["file_id"].as_str().unwrap_or_default().to_owned(),
    );
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("b.txt"));
    assert_eq!(support::answer(api.http().post(&url).multipart(form)).await.status, StatusCode::OK);
    let files = json!([{"id": id}]).to_string();
    api.form("files.completeUploadExternal", &[("files", &files), ("channel_id", ONCALL)]).await.ok();
    let second = slack.next_upload_in("#oncall").await;
    assert_eq!((second.text().as_str(), second.title.as_deref()), ("hello", Some("b.txt")));

    assert_eq!(
        api.get("files.getUploadURLExternal", &[("filename", "a"), ("length", "0")]).await.error(),
        "missing_argument"
    );
    assert_eq!(
        api.json("files.completeUploadExternal", json!({"files": [{"id": "F0NOPE"}]})).await.error(),
        "file_not_found"
    );
    let never = api.get("files.getUploadURLExternal", &[("filename", "c"), ("length", "3")]).await;
    let never_id = never.ok()["file_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        api.json("files.completeUploadExternal", json!({"files": [{"id": never_id}], "channel_id": RANDOM}))
            .await
            .error(),
        "not_in_channel"
    );
    assert_eq!(
        api.json("files.completeUploadExternal", json!({"files": [{"id": never_id}], "channel_id": ONCALL}))
            .await
            .error(),
        "file_not_found",
        "nothing uploaded"
    );

    slack.next_message_in(ONCALL).await;
    let leftovers = slack.uploaded_files();
    assert_eq!(leftovers.len(), 1);
    assert!(!leftovers[0].completed);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_once() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    slack.rate_limit_next("chat.postMessage", 7);

    let limited = api.json("chat.postMessage", json!({"channel": ONCALL, "text": "x"})).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    assert!(
        limited
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    );
    assert_eq!(limited.body, json!({"ok": false, "error": "ratelimited"}));

    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "retried"})).await.ok();
    let outcomes: Vec<CallOutcome> = slack.calls_to("chat.postMessage").into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, vec![CallOutcome::RateLimited { retry_after_secs: 7 }, CallOutcome::Ok]);
    assert_eq!(slack.next_message_in(ONCALL).await.text.as_deref(), Some("retried"));
}

#[tokio::test]
async fn fail_next_injects_errors_in_order_after_the_token_check() {
    let slack = FakeSlack::start(world()).await;
    slack.fail_next("users.info", "ratelimited");
    slack.fail_next("users.info", "internal_error");
    assert_eq!(
        Api::with_token(&slack, Some("xoxb-bad")).get("users.info", &[("user", ALICE)]).await.error(),
        "invalid_auth"
    );
    let api = Api::bot(&slack);
    assert_eq!(api.get("users.info", &[("user", ALICE)]).await.error(), "ratelimited");
    assert_eq!(api.get("users.info", &[("user", ALICE)]).await.error(), "internal_error");
    api.get("users.info", &[("user", ALICE)]).await.ok();
}

#[tokio::test]
async fn calls_are_recorded_in_order_with_parsed_parameters() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    api.get("users.info", &[("user", ALICE)]).await.ok();
    let blocks = json!([section("hi")]).to_string();
    api.form("chat.postMessage", &[("channel", ONCALL), ("blocks", &blocks)]).await.ok();
    let calls = slack.calls();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["users.info", "chat.postMessage"]);
    assert_eq!(calls[0].params, json!({"user": ALICE}));
    assert_eq!(calls[1].params["blocks"], json!([section("hi")]), "JSON-in-form is parsed");
    assert!(calls[0].at <= calls[1].at);
    slack.next_message_in(ONCALL).await;
}

#[tokio::test]
async fn dropping_the_fake_with_unread_output_fails_naming_it() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "Request JIT-7 denied"})).await.ok();
    api.json("chat.postEphemeral", json!({"channel": ONCALL, "user": BOB, "text": "You are not on call"})).await.ok();

    let failure = std::panic::catch_unwind(AssertUnwindSafe(move || drop(slack)))
        .expect_err("unread output must fail the test when the fake is dropped");
    let text = failure.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("message in C0ONCALL") && text.contains("Request JIT-7 denied"), "{text}");
    assert!(text.contains("ephemeral for U0BOB") && text.contains("You are not on call"), "{text}");
}

/// The same, the way a test meets it: the fake is dropped at the end of the test.
#[tokio::test]
#[should_panic(expected = "the bot produced output the test did not read")]
async fn a_test_that_leaves_a_message_unread_fails() {
    let slack = FakeSlack::start(world()).await;
    Api::bot(&slack).json("chat.postMessage", json!({"channel": ONCALL, "text": "nobody reads this"})).await.ok();
}

#[tokio::test]
async fn output_discarded_by_name_does_not_fail_the_test_but_later_output_does() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "left unread on purpose"})).await.ok();
    let discarded = slack.discard_unread();
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    assert!(discarded[0].contains("left unread on purpose"), "{discarded:?}");
    assert!(slack.unread().is_empty());

    api.json("chat.postMessage", json!({"channel": ONCALL, "text": "said afterwards"})).await.ok();
    let failure = std::panic::catch_unwind(AssertUnwindSafe(move || drop(slack))).expect_err("later output counts");
    let text = failure.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("said afterwards") && !text.contains("left unread on purpose"), "{text}");
}

#[tokio::test]
async fn waiting_for_output_that_never_comes_fails_naming_it_and_what_came_instead() {
    let slack = FakeSlack::start(world().with_wait_deadline(std::time::Duration::from_millis(200))).await;
    Api::bot(&slack)
        .json("chat.postMessage", json!({"channel": SECRET, "text": "posted in the wrong place"}))
        .await
        .ok();
    let waited = tokio::spawn(async move {
        slack.next_message_in(ONCALL).await;
    })
    .await
    .expect_err("waiting must fail");
    let panic = waited.into_panic();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("waiting for a message in C0ONCALL"), "{text}");
    assert!(text.contains("posted in the wrong place"), "{text}");
}

#[tokio::test]
async fn response_urls_show_replies_where_slack_shows_them() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let (mut socket, _) = SocketClient::connect(&slack).await;

    let command = slack.send_slash_command(BOB, ONCALL, "/jit", "status JIT-1").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, None).await;
    command.ack().await.expect("acked");
    let response_url = envelope["payload"]["response_url"].as_str().unwrap_or_default().to_owned();
    assert!(response_url.starts_with(&format!("{}/hooks/commands/", slack.base_url())), "{response_url}");

    let private = api
        .post_bytes(&response_url, "application/json", json!({"text": "JIT-1 is pending"}).to_string().into_bytes())
        .await;
    assert_eq!(private.status, StatusCode::OK);
    let seen = slack.next_ephemeral_for(BOB).await;
    assert_eq!((seen.text.as_deref(), seen.via), (Some("JIT-1 is pending"), EphemeralSource::ResponseUrl));
    let public = json!({"text": "JIT-1 approved", "response_type": "in_channel"}).to_string().into_bytes();
    api.post_bytes(&response_url, "application/json", public).await;
    assert_eq!(slack.next_message_in(ONCALL).await.text.as_deref(), Some("JIT-1 approved"));

    // A button click's response_url can replace the card it came from.
    let card = api
        .json("chat.postMessage", json!({"channel": ONCALL, "text": "JIT-2", "blocks": approval_card("JIT-2")}))
        .await;
    let card_ts = card.ok()["ts"].as_str().unwrap_or_default().to_owned();
    slack.next_message_in(ONCALL).await;
    let click = slack.send_block_action(ALICE, ONCALL, &card_ts, "approve", "JIT-2").await;
    let clicked = socket.next_frame().await;
    socket.ack(&clicked, None).await;
    click.ack().await.expect("acked");
    let action_url = clicked["payload"]["response_url"].as_str().unwrap_or_default().to_owned();
    let replace = json!({"replace_original": true, "text": "Approved by alice"}).to_string().into_bytes();
    api.post_bytes(&action_url, "application/json", replace).await;
    assert_eq!(slack.next_update_of(ONCALL, &card_ts).await.text.as_deref(), Some("Approved by alice"));

    let unknown =
        api.post_bytes(&format!("{}/hooks/commands/T/1/x", slack.base_url()), "application/json", b"{}".to_vec()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(slack.calls_to(RESPONSE_URL_METHOD).len(), 4);
}
