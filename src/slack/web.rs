//! The Slack Web API client: the calls the bot makes, each with small typed answers.
//!
//! Every call is a POST to `<base URL>/<method>` with `Authorization: Bearer <bot token>`; write methods send JSON,
//! read methods a form body. Answers of `{"ok": false}` become [`SlackError::Api`] with Slack's code kept, HTTP 429
//! is waited out (bounded, see [`WebSettings`]) and everything else becomes an error that names the fix. The token
//! lives in one sensitive header value and never appears in errors, logs or `Debug` output.

mod call;
mod error;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use error::SlackError;

use self::call::{Body, Call, bad_response, describe};
use super::SlackMessage;
use crate::ids::SlackUserId;
use crate::pause::{Pause, TokioPause};

/// The Web API base URL of slack.com (`SLACK_API_URL` overrides it, e.g. for a local emulator).
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The bot scopes the client needs, one entry per method family. `manifests/slack-app.yaml` must request exactly
/// these (a test compares them). Each [`Method`] declares the scopes it uses: every call asserts in debug builds
/// that they are listed here, and a unit test checks that every entry here is used by some method, so a call
/// without its scope, or a scope without a call, fails the tests.
pub const REQUIRED_BOT_SCOPES: &[&str] = &[
    // The `/jit` slash command (delivered over socket mode, no Web API method).
    "commands",
    // chat.postMessage, chat.update, chat.postEphemeral.
    "chat:write",
    // Slack grants users:read.email only together with users:read.
    "users:read",
    // users.lookupByEmail: PagerDuty on-call people are found in Slack by email.
    "users:read.email",
    // conversations.open for direct messages.
    "im:write",
    // files.getUploadURLExternal and files.completeUploadExternal (CSV results).
    "files:write",
    // conversations.info on a public channel: the approval channel exists and the bot is in it (checked by
    // `jitgate run` at start-up and by `jitgate check --live`).
    "channels:read",
    // conversations.info on a private channel (the same check).
    "groups:read",
];

/// The Web API methods the client calls. Adding one forces its scopes to be declared in [`Method::scopes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    AuthTest,
    ChatPostMessage,
    ChatUpdate,
    ChatPostEphemeral,
    ChatGetPermalink,
    ConversationsOpen,
    ConversationsInfo,
    ViewsOpen,
    ViewsUpdate,
    UsersLookupByEmail,
    FilesGetUploadUrlExternal,
    FilesCompleteUploadExternal,
}

impl Method {
    #[cfg(test)]
    const ALL: &[Method] = &[
        Method::AuthTest,
        Method::ChatPostMessage,
        Method::ChatUpdate,
        Method::ChatPostEphemeral,
        Method::ChatGetPermalink,
        Method::ConversationsOpen,
        Method::ConversationsInfo,
        Method::ViewsOpen,
        Method::ViewsUpdate,
        Method::UsersLookupByEmail,
        Method::FilesGetUploadUrlExternal,
        Method::FilesCompleteUploadExternal,
    ];

    fn name(self) -> &'static str {
        match self {
            Method::AuthTest => "auth.test",
            Method::ChatPostMessage => "chat.postMessage",
            Method::ChatUpdate => "chat.update",
            Method::ChatPostEphemeral => "chat.postEphemeral",
            Method::ChatGetPermalink => "chat.getPermalink",
            Method::ConversationsOpen => "conversations.open",
            Method::ConversationsInfo => "conversations.info",
            Method::ViewsOpen => "views.open",
            Method::ViewsUpdate => "views.update",
            Method::UsersLookupByEmail => "users.lookupByEmail",
            Method::FilesGetUploadUrlExternal => "files.getUploadURLExternal",
            Method::FilesCompleteUploadExternal => "files.completeUploadExternal",
        }
    }

    /// The bot scopes the method needs, from each method's reference page.
    fn scopes(self) -> &'static [&'static str] {
        match self {
            // auth.test, chat.getPermalink and views.* need no scope (views.* are authorised by the trigger).
            Method::AuthTest | Method::ChatGetPermalink | Method::ViewsOpen | Method::ViewsUpdate => &[],
            Method::ChatPostMessage | Method::ChatUpdate | Method::ChatPostEphemeral => &["chat:write"],
            Method::ConversationsOpen => &["im:write"],
            Method::ConversationsInfo => &["channels:read", "groups:read"],
            Method::UsersLookupByEmail => &["users:read", "users:read.email"],
            Method::FilesGetUploadUrlExternal | Method::FilesCompleteUploadExternal => &["files:write"],
        }
    }
}

/// Limits of one client. The defaults let a handler ride out a short rate limit without hanging on a long one.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Bound on one HTTP request (connect + answer), including a file upload.
    pub request_timeout: Duration,
    /// Attempts per call while Slack answers HTTP 429.
    pub max_attempts: u32,
    /// Longest single wait honoured: a longer `Retry-After` ends the call with [`SlackError::RateLimited`] at once.
    pub max_retry_wait: Duration,
    /// Bound on the waits and attempts of one call.
    pub total_budget: Duration,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            max_retry_wait: Duration::from_secs(30),
            total_budget: Duration::from_secs(45),
        }
    }
}

/// A posted message: the channel it landed in (a `D…` id for a DM) and its `ts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    pub channel: String,
    pub ts: String,
}

/// Who the bot token belongs to (`auth.test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's user id: messages it posts carry it, and it must never count as a requester or approver.
    pub user_id: SlackUserId,
    /// The bot id (`B…`).
    pub bot_id: Option<String>,
    /// The workspace id (`T…`).
    pub team_id: String,
    /// The workspace name.
    pub team: String,
}

/// A conversation as the bot sees it (`conversations.info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    /// Name without `#`.
    pub name: String,
    pub is_private: bool,
    /// Whether the bot is a member (it can only post where it is).
    pub is_member: bool,
    pub is_archived: bool,
}

/// The Slack Web API client of one workspace, authenticated with the bot token.
#[derive(Clone)]
pub struct SlackWeb {
    http: reqwest::Client,
    base_url: String,
    /// `Bearer <token>`, marked sensitive so the HTTP stack never prints it. The only copy of the token we keep.
    authorization: HeaderValue,
    settings: WebSettings,
    pause: Arc<dyn Pause>,
    /// Where each call is counted and timed (`service="slack"`, `op` = the method).
    metrics: Option<crate::telemetry::Metrics>,
}

impl fmt::Debug for SlackWeb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackWeb")
            .field("base_url", &self.base_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SlackWeb {
    /// A client of the Web API at `base_url` (`https://slack.com/api`, with or without a trailing slash).
    pub fn new(base_url: &str, bot_token: SecretString, settings: WebSettings) -> anyhow::Result<SlackWeb> {
        let parsed = url::Url::parse(base_url.trim()).context("SLACK_API_URL is not a URL")?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "https" | "http"),
            "SLACK_API_URL must start with https:// (or http:// for a local emulator)"
        );
        // Checked here so a misconfigured token fails at start-up, not on the first approval.
        let token = bot_token.expose_secret().trim();
        anyhow::ensure!(
            !token.is_empty(),
            "SLACK_BOT_TOKEN is empty: set it to the app's Bot User OAuth Token (xoxb-…)"
        );
        anyhow::ensure!(
            !token.starts_with("xapp-"),
            "SLACK_BOT_TOKEN holds an app-level token (xapp-…): use the Bot User OAuth Token (xoxb-…); the app-level \
             token belongs in SLACK_APP_TOKEN"
        );
        // The error deliberately says nothing about the value.
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("SLACK_BOT_TOKEN contains characters an HTTP header cannot hold"))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .build()
            .context("building the Slack HTTP client")?;
        Ok(SlackWeb {
            http,
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            authorization,
            settings,
            pause: Arc::new(TokioPause),
            metrics: None,
        })
    }

    /// Counts and times every Web API call in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> SlackWeb {
        self.metrics = Some(metrics);
        self
    }

    /// Replaces how the client waits before retrying after HTTP 429.
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> SlackWeb {
        self.pause = pause;
        self
    }

    /// The base URL, without trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Posts `message` into `channel` (an id), as a reply in the thread of `thread_ts` when given (the parent's
    /// `ts`, never a reply's).
    pub async fn post_message(
        &self,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
    ) -> Result<MessageRef, SlackError> {
        let mut body = json!({ "channel": channel, "text": message.text });
        // Without blocks the text is the message; an empty `blocks` array is left out rather than risk
        // `invalid_blocks`.
        if !message.blocks.is_empty() {
            body["blocks"] = Value::from(message.blocks.clone());
        }
        if let Some(parent) = thread_ts {
            body["thread_ts"] = Value::from(parent);
        }
        let posted: Posted =
            self.call(Call { method: Method::ChatPostMessage, body: Body::Json(body), channel: Some(channel) }).await?;
        Ok(MessageRef { channel: posted.channel, ts: posted.ts })
    }

    /// Replaces the text and blocks of a message the bot posted.
    pub async fn update_message(&self, target: &MessageRef, message: &SlackMessage) -> Result<(), SlackError> {
        // chat.update keeps or drops the old blocks depending on which fields are sent; sending both, with `[]`
        // for no blocks (Slack's way to remove them), makes the message exactly `message`.
        let body =
            json!({ "channel": target.channel, "ts": target.ts, "text": message.text, "blocks": message.blocks });
        let _: Ignored = self
            .call(Call { method: Method::ChatUpdate, body: Body::Json(body), channel: Some(&target.channel) })
            .await?;
        Ok(())
    }

    /// Shows `message` to `user` only, in `channel` (they must be a member of it).
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &SlackUserId,
        message: &SlackMessage,
    ) -> Result<(), SlackError> {
        let mut body = json!({ "channel": channel, "user": user.as_str(), "text": message.text });
        if !message.blocks.is_empty() {
            body["blocks"] = Value::from(message.blocks.clone());
        }
        let _: Ignored = self
            .call(Call { method: Method::ChatPostEphemeral, body: Body::Json(body), channel: Some(channel) })
            .await?;
        Ok(())
    }

    /// Sends `message` to `user` in a direct message from the bot.
    pub async fn send_dm(&self, user: &SlackUserId, message: &SlackMessage) -> Result<MessageRef, SlackError> {
        let body = json!({ "users": user.as_str() });
        let opened: Opened =
            self.call(Call { method: Method::ConversationsOpen, body: Body::Json(body), channel: None }).await?;
        self.post_message(&opened.channel.id, message, None).await
    }

    /// Opens a modal with the `trigger_id` of an interaction (valid about 3 s, once). Returns the view id.
    pub async fn open_view(&self, trigger_id: &str, view: Value) -> Result<String, SlackError> {
        let body = json!({ "trigger_id": trigger_id, "view": view });
        let opened: ViewAnswer =
            self.call(Call { method: Method::ViewsOpen, body: Body::Json(body), channel: None }).await?;
        Ok(opened.view.id)
    }

    /// Replaces the content of an open modal.
    pub async fn update_view(&self, view_id: &str, view: Value) -> Result<(), SlackError> {
        let body = json!({ "view_id": view_id, "view": view });
        let _: ViewAnswer =
            self.call(Call { method: Method::ViewsUpdate, body: Body::Json(body), channel: None }).await?;
        Ok(())
    }

    /// The active Slack account with this email, or `None` when there is none (or it is deactivated).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<SlackUserId>, SlackError> {
        Ok(self.account_by_email(email).await?.filter(|account| !account.deleted).map(|account| account.id))
    }

    /// The Slack account with this email, whatever its kind (guest, bot, deactivated), or `None` when there is
    /// none.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<SlackAccount>, SlackError> {
        let call = Call {
            method: Method::UsersLookupByEmail,
            body: Body::Form(vec![("email", email.to_owned())]),
            channel: None,
        };
        let found: UserAnswer = match self.call(call).await {
            Ok(found) => found,
            // The plural is users.lookupByEmail's code for "no such account": an answer, not a failure.
            Err(SlackError::Api { error, .. }) if error == "users_not_found" => return Ok(None),
            Err(other) => return Err(other),
        };
        let user = found.user;
        let id = SlackUserId::parse(&user.id).ok_or_else(|| {
            bad_response(Method::UsersLookupByEmail.name(), format!("user id {:?} is not a user id", user.id))
        })?;
        Ok(Some(SlackAccount {
            id,
            deleted: user.deleted,
            is_bot: user.is_bot,
            is_app_user: user.is_app_user,
            is_restricted: user.is_restricted,
            is_ultra_restricted: user.is_ultra_restricted,
        }))
    }

    /// Who the token belongs to; also proves the token works.
    pub async fn auth_test(&self) -> Result<BotIdentity, SlackError> {
        let answer: AuthAnswer =
            self.call(Call { method: Method::AuthTest, body: Body::Form(Vec::new()), channel: None }).await?;
        let user_id = SlackUserId::parse(&answer.user_id).ok_or_else(|| {
            bad_response(Method::AuthTest.name(), format!("user_id {:?} is not a user id", answer.user_id))
        })?;
        Ok(BotIdentity { user_id, bot_id: answer.bot_id, team_id: answer.team_id, team: answer.team })
    }

    /// The conversation `channel` (an id), or `None` when it does not exist, or is private and the bot is not in
    /// it (Slack shows both the same way).
    pub async fn conversation_info(&self, channel: &str) -> Result<Option<Conversation>, SlackError> {
        let call = Call {
            method: Method::ConversationsInfo,
            body: Body::Form(vec![("channel", channel.to_owned())]),
            channel: Some(channel),
        };
        match self.call::<ChannelAnswer>(call).await {
            Ok(answer) => {
                let c = answer.channel;
                Ok(Some(Conversation {
                    id: c.id,
                    name: c.name.unwrap_or_default(),
                    is_private: c.is_private,
                    is_member: c.is_member,
                    is_archived: c.is_archived,
                }))
            }
            Err(SlackError::Api { error, .. }) if error == "channel_not_found" => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// A link to the message that opens it in Slack (in its thread for a reply).
    pub async fn permalink(&self, message: &MessageRef) -> Result<String, SlackError> {
        let call = Call {
            method: Method::ChatGetPermalink,
            body: Body::Form(vec![("channel", message.channel.clone()), ("message_ts", message.ts.clone())]),
            channel: Some(&message.channel),
        };
        let answer: PermalinkAnswer = self.call(call).await?;
        Ok(answer.permalink)
    }

    /// Uploads `content` as file `filename` and shares it into `channel` (in the thread of `thread_ts` when given).
    /// Returns the file id.
    ///
    /// Slack's external upload flow: `files.getUploadURLExternal` (filename, length) hands out an upload URL and a
    /// file id, the bytes are POSTed to that URL, and `files.completeUploadExternal` shares the file; until then it
    /// is invisible, and Slack discards it if the flow is not completed.
    pub async fn upload_file(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        filename: &str,
        title: &str,
        content: UploadContent,
    ) -> Result<String, SlackError> {
        let call = Call {
            method: Method::FilesGetUploadUrlExternal,
            body: Body::Form(vec![("filename", filename.to_owned()), ("length", content.len().to_string())]),
            channel: Some(channel),
        };
        let ticket: UploadTicket = self.call(call).await?;
        self.send_content(&ticket.upload_url, content).await?;

        let mut body = json!({ "files": [ { "id": ticket.file_id, "title": title } ], "channel_id": channel });
        if let Some(parent) = thread_ts {
            body["thread_ts"] = Value::from(parent);
        }
        let _: Ignored = self
            .call(Call { method: Method::FilesCompleteUploadExternal, body: Body::Json(body), channel: Some(channel) })
            .await?;
        Ok(ticket.file_id)
    }

    /// POSTs the content to an upload URL, a file streamed from disk as it is sent.
    ///
    /// No bot token goes with them: the URL itself authorises the upload, and the token must never be sent to a
    /// host we did not choose. Query results must not travel in clear text either, so an `https` API demands an
    /// `https` upload URL.
    async fn send_content(&self, upload_url: &str, content: UploadContent) -> Result<(), SlackError> {
        const STEP: &str = "file upload";
        let url =
            url::Url::parse(upload_url).map_err(|_| bad_response(STEP, "the upload URL is not a URL".to_owned()))?;
        let wants_tls = self.base_url.starts_with("https://");
        if url.scheme() != "https" && (wants_tls || url.scheme() != "http") {
            return Err(bad_response(STEP, format!("refusing to upload over {}://", url.scheme())));
        }
        let len = content.len();
        let body = match content {
            UploadContent::Bytes(bytes) => reqwest::Body::from(bytes),
            UploadContent::File { file, .. } => reqwest::Body::from(tokio::fs::File::from_std(file)),
        };
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            // A streamed body has no length of its own; the declared one keeps it from being sent chunked.
            .header(CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(STEP, describe(e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() {
            Err(self.unreachable(STEP, format!("the upload URL answered HTTP {status}")))
        } else {
            Err(bad_response(STEP, format!("the upload URL answered HTTP {status}")))
        }
    }
}

/// What an upload sends: bytes in memory, or a file read while it is sent (a large result, never in memory whole).
pub enum UploadContent {
    Bytes(Vec<u8>),
    /// A file positioned at its start, and how many bytes of it to send.
    File {
        file: std::fs::File,
        len: u64,
    },
}

impl UploadContent {
    /// How many bytes are sent: what `files.getUploadURLExternal` is told.
    pub fn len(&self) -> u64 {
        match self {
            UploadContent::Bytes(bytes) => bytes.len() as u64,
            UploadContent::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Success answers: only the fields the bot uses; Slack adds fields freely.
#[derive(Debug, Deserialize)]
struct Posted {
    channel: String,
    ts: String,
}

#[derive(Debug, Deserialize)]
struct Ignored {}

#[derive(Debug, Deserialize)]
struct Opened {
    channel: IdOnly,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ViewAnswer {
    view: IdOnly,
}

#[derive(Debug, Deserialize)]
struct UserAnswer {
    user: WireUser,
}

#[derive(Debug, Deserialize)]
struct WireUser {
    id: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    is_app_user: bool,
    #[serde(default)]
    is_restricted: bool,
    #[serde(default)]
    is_ultra_restricted: bool,
}

/// A Slack account as `users.lookupByEmail` describes it: its id and the flags that say what kind of account it
/// is (a guest is `is_restricted`, a single-channel guest also `is_ultra_restricted`; a missing flag reads false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackAccount {
    pub id: SlackUserId,
    /// Deactivated.
    pub deleted: bool,
    pub is_bot: bool,
    pub is_app_user: bool,
    pub is_restricted: bool,
    pub is_ultra_restricted: bool,
}

#[derive(Debug, Deserialize)]
struct AuthAnswer {
    user_id: String,
    #[serde(default)]
    bot_id: Option<String>,
    team_id: String,
    #[serde(default)]
    team: String,
}

#[derive(Debug, Deserialize)]
struct ChannelAnswer {
    channel: WireChannel,
}

#[derive(Debug, Deserialize)]
struct WireChannel {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    is_private: bool,
    #[serde(default)]
    is_member: bool,
    #[serde(default)]
    is_archived: bool,
}

#[derive(Debug, Deserialize)]
struct PermalinkAnswer {
    permalink: String,
}

#[derive(Debug, Deserialize)]
struct UploadTicket {
    upload_url: String,
    file_id: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The scope list is exactly what the methods use, plus `commands` for the slash command.
    #[test]
    fn required_scopes_are_exactly_the_scopes_of_the_methods_called() {
        let mut used: BTreeSet<&str> = Method::ALL.iter().flat_map(|m| m.scopes().iter().copied()).collect();
        used.insert("commands");
        let required: BTreeSet<&str> = REQUIRED_BOT_SCOPES.iter().copied().collect();
        assert_eq!(required.len(), REQUIRED_BOT_SCOPES.len(), "REQUIRED_BOT_SCOPES has duplicates");
        assert_eq!(required, used);
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let web = SlackWeb::new(DEFAULT_API_URL, SecretString::from("xoxb-very-secret"), WebSettings::default())
            .expect("a client");
        let shown = format!("{web:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("https://slack.com/api"), "{shown}");
    }

    #[test]
    fn configuration_mistakes_are_refused_with_the_fix_and_without_the_value() {
        let refuse = |url: &str, token: &str| {
            SlackWeb::new(url, SecretString::from(token.to_owned()), WebSettings::default())
                .expect_err("refused")
                .to_string()
        };
        assert!(refuse("slack.com/api", "xoxb-1").contains("SLACK_API_URL"));
        assert!(refuse("ftp://slack.com/api", "xoxb-1").contains("https://"));
        assert!(refuse(DEFAULT_API_URL, "  ").contains("SLACK_BOT_TOKEN is empty"));
        let app_token = refuse(DEFAULT_API_URL, "xapp-1-A0-secretpart");
        assert!(app_token.contains("SLACK_APP_TOKEN") && !app_token.contains("secretpart"), "{app_token}");
        let broken = refuse(DEFAULT_API_URL, "xoxb-secret\npart");
        assert!(broken.contains("header") && !broken.contains("secret"), "{broken}");
    }

    #[test]
    fn base_url_is_accepted_with_or_without_trailing_slash() {
        for url in ["https://slack.com/api", "https://slack.com/api/", " https://slack.com/api/ "] {
            let web = SlackWeb::new(url, SecretString::from("xoxb-1"), WebSettings::default()).expect("a client");
            assert_eq!(web.base_url(), "https://slack.com/api");
        }
    }
}
