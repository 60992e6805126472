//! The real client against the fake: slack-morphism 2.31's socket-mode listener (the one jitgate runs in
//! production) connects, receives commands, clicks and modal submissions through its callbacks and acks
//! them; its Web API client decodes every answer the fake gives. If these pass, the fake speaks what the
//! real client speaks.
//!
//! The wiring here is the reference for the bot's own transport: a hyper-rustls connector that allows plain
//! `http://` (a local Slack) as well as `https://`, the API base URL injected with `with_slack_api_url`,
//! plain-`fn` callbacks that only forward events, and shared state passed through `with_user_state`.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnectorBuilder;
use jitgate_emulators::slack::FakeSlack;
use serde_json::json;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use support::{ALICE, BOB, ONCALL, approval_card, world};
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A Slack Web API client for `api_base` (`https://slack.com/api` in production, no trailing slash: the
/// library appends `/<method>`).
fn slack_client(api_base: &str) -> Arc<SlackHyperClient> {
    let tls = match HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        // A container without a CA bundle can still reach a local, plain-http Slack.
        Err(_) => HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    };
    // slack-morphism's own `new()` is https-only and HTTP/2-only; a local Slack needs http and HTTP/1.
    let https = tls.https_or_http().enable_http1().enable_http2().build();
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_base);
    Arc::new(SlackClient::new(connector))
}

/// What the callbacks hand on: the transport only forwards, it decides nothing.
struct Inbox {
    commands: mpsc::UnboundedSender<SlackCommandEvent>,
    interactions: mpsc::UnboundedSender<SlackInteractionEvent>,
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let reply = format!("Working on {}", event.text.as_deref().unwrap_or_default());
    if let Some(inbox) = state.read().await.get_user_state::<Inbox>() {
        let _ = inbox.commands.send(event);
    }
    Ok(SlackCommandEventResponse::new(SlackMessageContent::new().with_text(reply))
        .with_response_type(SlackMessageResponseType::Ephemeral))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let Some(inbox) = state.read().await.get_user_state::<Inbox>() {
        let _ = inbox.interactions.send(event);
    }
    Ok(())
}

fn on_error(error: BoxError, _client: Arc<SlackHyperClient>, _state: SlackClientEventsUserState) -> HttpStatusCode {
    eprintln!("socket-mode listener error: {error}");
    HttpStatusCode::BAD_REQUEST
}

struct Bot {
    listener: SlackClientSocketModeListener<SlackClientHyperHttpsConnector>,
    commands: mpsc::UnboundedReceiver<SlackCommandEvent>,
    interactions: mpsc::UnboundedReceiver<SlackInteractionEvent>,
    client: Arc<SlackHyperClient>,
}

/// Starts the listener with two connections, as in production (both at once: no stagger in tests).
async fn start_bot(slack: &FakeSlack) -> Bot {
    let client = slack_client(&slack.api_base());
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (interactions_tx, interactions) = mpsc::unbounded_channel();
    let callbacks =
        SlackSocketModeListenerCallbacks::new().with_command_events(on_command).with_interaction_events(on_interaction);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client.clone())
            .with_error_handler(on_error)
            .with_user_state(Inbox { commands: commands_tx, interactions: interactions_tx }),
    );
    let config = SlackClientSocketModeConfig::new().with_max_connections_count(2).with_initial_backoff_in_seconds(0);
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    let app_token = SlackApiToken::new(slack.app_token().to_owned().into());
    listener.listen_for(&app_token).await.expect("listen_for");
    listener.start().await;
    Bot { listener, commands, interactions, client }
}

async fn next<T>(inbox: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await {
        Ok(Some(event)) => event,
        _ => panic!("the listener never delivered {what}"),
    }
}

#[tokio::test]
async fn slack_morphism_listener_receives_a_slash_command_and_the_fake_sees_its_ack() {
    let slack = FakeSlack::start(world()).await;
    let mut bot = start_bot(&slack).await;
    slack.wait_for_connections(2).await;

    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "query orders customer_id=C000042").await;
    let received = next(&mut bot.commands, "the slash command").await;
    assert_eq!(received.command.value(), "/jit");
    assert_eq!(received.text.as_deref(), Some("query orders customer_id=C000042"));
    assert_eq!((received.user_id.value().as_str(), received.channel_id.value().as_str()), (ALICE, ONCALL));

    let ack = command.ack().await.expect("slack-morphism acks at once");
    assert_eq!(
        ack.payload,
        Some(json!({"text": "Working on query orders customer_id=C000042", "response_type": "ephemeral"}))
    );

    bot.listener.shutdown().await;
}

#[tokio::test]
async fn slack_morphism_handles_clicks_modals_and_reconnects_after_disconnect() {
    let slack = FakeSlack::start(world()).await;
    let mut bot = start_bot(&slack).await;
    slack.wait_for_connections(2).await;
    let bot_token = SlackApiToken::new(slack.bot_token().to_owned().into());
    let session = bot.client.open_session(&bot_token);

    // The bot posts a card with its client; a user clicks Approve.
    let blocks: Vec<SlackBlock> = serde_json::from_value(approval_card("JIT-3")).expect("card blocks");
    let content = SlackMessageContent::new().with_text("JIT-3".into()).with_blocks(blocks);
    let posted =
        session.chat_post_message(&SlackApiChatPostMessageRequest::new(ONCALL.into(), content)).await.expect("posted");
    slack.next_message_in(ONCALL).await;
    let click = slack.send_block_action(BOB, ONCALL, posted.ts.value(), "approve", "JIT-3").await;
    let SlackInteractionEvent::BlockActions(action) = next(&mut bot.interactions, "the click").await else {
        panic!("expected block_actions")
    };
    let pressed = action.actions.unwrap_or_default();
    assert_eq!(pressed.first().map(|a| a.action_id.value().as_str()), Some("approve"));
    assert_eq!(action.message.map(|m| m.origin.ts), Some(posted.ts.clone()));
    assert_eq!(click.ack().await.expect("acked").payload, None);

    // A command's trigger opens a modal; the user submits it.
    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "query").await;
    let received = next(&mut bot.commands, "the command").await;
    command.ack().await.expect("acked");
    let modal: SlackView = serde_json::from_value(json!({"type": "modal", "callback_id": "reason",
        "title": {"type": "plain_text", "text": "Why?"}, "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Reason"},
                    "element": {"type": "plain_text_input", "action_id": "text"}}]}))
    .expect("modal");
    let opened =
        session.views_open(&SlackApiViewsOpenRequest::new(received.trigger_id, modal)).await.expect("views.open");
    slack.next_view_opened_for(ALICE).await;
    let values = json!({"why": {"text": {"type": "plain_text_input", "value": "INC-812"}}});
    let submission = slack.send_view_submission(ALICE, opened.view.state_params.id.value(), values).await;
    let SlackInteractionEvent::ViewSubmission(submitted) = next(&mut bot.interactions, "the submission").await else {
        panic!("expected view_submission")
    };
    let state = submitted.view.state_params.state.expect("state");
    let why = &state.values[&"why".into()][&"text".into()];
    assert_eq!(why.value.as_deref(), Some("INC-812"));
    submission.ack().await.expect("acked");

    // On `disconnect` the library replaces the connection at once.
    let dropped = slack.disconnect("refresh_requested");
    slack.wait_for_closed(dropped).await;
    let reopened = slack.wait_for_connections(2).await;
    assert!(!reopened.contains(&dropped));
    let after = slack.send_slash_command(ALICE, ONCALL, "/jit", "status").await;
    next(&mut bot.commands, "a command after the reconnect").await;
    after.ack().await.expect("acked");

    bot.listener.shutdown().await;
}

#[tokio::test]
async fn slack_morphism_web_client_decodes_every_answer() {
    let slack = FakeSlack::start(world()).await;
    let client = slack_client(&slack.api_base());
    let bot_token = SlackApiToken::new(slack.bot_token().to_owned().into());
    let session = client.open_session(&bot_token);

    let me = session.auth_test().await.expect("auth.test");
    assert_eq!(me.user_id.value(), "U0JITBOT");

    let content = SlackMessageContent::new().with_text("card".into());
    let posted =
        session.chat_post_message(&SlackApiChatPostMessageRequest::new(ONCALL.into(), content)).await.expect("post");
    let reply = SlackMessageContent::new().with_text("rows".into());
    let threaded = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(ONCALL.into(), reply).with_thread_ts(posted.ts.clone()))
        .await
        .expect("reply");
    let update = SlackMessageContent::new().with_text("card (approved)".into());
    session
        .chat_update(&SlackApiChatUpdateRequest::new(ONCALL.into(), update, posted.ts.clone()))
        .await
        .expect("update");
    let whisper = SlackMessageContent::new().with_text("psst".into());
    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(ONCALL.into(), ALICE.into(), whisper))
        .await
        .expect("ephemeral");
    let link = session
        .chat_get_permalink(&SlackApiChatGetPermalinkRequest::new(ONCALL.into(), posted.ts.clone()))
        .await
        .expect("permalink");
    assert!(link.permalink.as_str().starts_with("https://jitgate-demo.slack.com/archives/"));

    let alice = session.users_info(&SlackApiUsersInfoRequest::new(ALICE.into())).await.expect("users.info");
    assert_eq!(alice.user.name.as_deref(), Some("alice"));
    let by_email = session
        .users_lookup_by_email(&SlackApiUsersLookupByEmailRequest::new("alice@example.com".into()))
        .await
        .expect("users.lookupByEmail");
    assert_eq!(by_email.user.id.value(), ALICE);
    let channel =
        session.conversations_info(&SlackApiConversationsInfoRequest::new(ONCALL.into())).await.expect("info");
    assert_eq!(channel.channel.name.as_deref(), Some("oncall"));
    let dm = session
        .conversations_open(&SlackApiConversationsOpenRequest::new().with_users(vec![BOB.into()]))
        .await
        .expect("conversations.open");
    assert!(dm.channel.id.value().starts_with('D'));

    let csv = b"a,b\n1,2\n".to_vec();
    let url = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new("rows.csv".into(), csv.len()))
        .await
        .expect("getUploadURLExternal");
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(url.upload_url, csv.clone(), "text/csv".into()))
        .await
        .expect("upload");
    let done = session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                SlackApiFilesComplete::new(url.file_id.clone()).with_title("rows.csv".into()),
            ])
            .with_channel_id(ONCALL.into())
            .with_thread_ts(posted.ts.clone()),
        )
        .await
        .expect("completeUploadExternal");
    assert_eq!(done.files.first().map(|f| &f.id), Some(&url.file_id));

    slack.rate_limit_next("users.info", 7);
    match session.users_info(&SlackApiUsersInfoRequest::new(ALICE.into())).await {
        Err(SlackClientError::RateLimitError(limited)) => {
            assert_eq!(
                (limited.retry_after, limited.code.as_deref()),
                (Some(Duration::from_secs(7)), Some("ratelimited"))
            )
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    match session.users_info(&SlackApiUsersInfoRequest::new("U0NOBODY".into())).await {
        Err(SlackClientError::ApiError(error)) => assert_eq!(error.code, "user_not_found"),
        other => panic!("expected user_not_found, got {other:?}"),
    }

    slack.next_message_in(ONCALL).await;
    assert_eq!(slack.next_thread_reply(ONCALL, posted.ts.value()).await.ts, threaded.ts.value().as_str());
    slack.next_update_of(ONCALL, posted.ts.value()).await;
    slack.next_ephemeral_for(ALICE).await;
    assert_eq!(slack.next_upload_in(ONCALL).await.content, Some(csv));
}
