//! The world a test sets up before starting the fake: workspace, app, bot identity, tokens, users, channels,
//! and the knobs of Slack behaviour that tests need to turn (ack deadline, redeliveries, trigger lifetime).

use std::net::SocketAddr;
use std::time::Duration;

/// Everything [`FakeSlack::start`](super::FakeSlack::start) needs. Start from [`SlackConfig::default`] and add
/// users and channels with the `with_*` builders.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Address to bind; the default `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    /// The workspace the app is installed in.
    pub team: Team,
    /// The Slack app id (`A…`), reported in `hello` and in every payload's `api_app_id`.
    pub app_id: String,
    /// The bot user the bot token belongs to.
    pub bot: BotIdentity,
    /// Bot token (`xoxb-…`) accepted by the Web API methods.
    pub bot_token: String,
    /// App-level token (`xapp-…`) accepted by `apps.connections.open` only.
    pub app_token: String,
    /// The legacy verification token Slack still puts into every payload's `token` field.
    pub verification_token: String,
    /// Users of the workspace (the bot user is added automatically).
    pub users: Vec<User>,
    /// Channels of the workspace.
    pub channels: Vec<Channel>,
    /// Socket-mode behaviour (ack deadline, redelivery).
    pub socket: SocketModeConfig,
    /// How long a `trigger_id` stays exchangeable by `views.open` (Slack: about 3 s).
    pub trigger_ttl: Duration,
    /// How long the test-facing `next_*` / `wait_*` helpers wait before failing the test.
    pub wait_deadline: Duration,
    /// Whether dropping the fake panics when the bot produced output nobody read (see
    /// [`FakeSlack`](super::FakeSlack)). On by default; off only for a program that reports unread output
    /// itself.
    pub check_unread_on_drop: bool,
}

/// Socket-mode delivery behaviour.
#[derive(Debug, Clone)]
pub struct SocketModeConfig {
    /// An envelope not acknowledged within this time counts as missed (Slack: 3 s).
    pub ack_timeout: Duration,
    /// How many times a missed envelope is delivered again, preferring a different connection each time.
    pub redeliveries: u32,
}

/// The workspace.
#[derive(Debug, Clone)]
pub struct Team {
    /// Team id (`T…`).
    pub id: String,
    /// Display name, as `auth.test` reports it.
    pub name: String,
    /// Subdomain: `https://<domain>.slack.com/`.
    pub domain: String,
}

/// The bot user behind the bot token.
#[derive(Debug, Clone)]
pub struct BotIdentity {
    /// The bot's user id (`U…`), the `user` of every message it posts.
    pub user_id: String,
    /// The bot id (`B…`).
    pub bot_id: String,
    /// The bot user's name.
    pub name: String,
}

/// A workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id (`U…` or `W…`).
    pub id: String,
    /// Handle (`name` in the API).
    pub name: String,
    /// Full name (`real_name`).
    pub real_name: String,
    /// Profile email; `users.lookupByEmail` finds the user by it (case-insensitively).
    pub email: Option<String>,
    /// Whether this is a bot user.
    pub is_bot: bool,
    /// Deactivated users are still returned by `users.info`, with `deleted: true`.
    pub deleted: bool,
    /// A multi-channel guest (`is_restricted`).
    pub is_restricted: bool,
    /// A single-channel guest (`is_ultra_restricted`; Slack sets `is_restricted` too).
    pub is_ultra_restricted: bool,
    /// The user of an app (`is_app_user`).
    pub is_app_user: bool,
}

/// A conversation: public or private channel, or a DM (`D…`) opened with `conversations.open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Channel id (`C…`, `G…` or `D…`).
    pub id: String,
    /// Channel name without `#` (a DM's name is the other user's id).
    pub name: String,
    /// Whether the bot is a member: posting into a channel it is not in fails with `not_in_channel`.
    pub bot_is_member: bool,
    /// Private channel.
    pub is_private: bool,
    /// Archived channel: posting fails with `is_archived`.
    pub is_archived: bool,
    /// A direct-message conversation.
    pub is_im: bool,
    /// Human members. `None` means every user of the workspace is a member.
    pub members: Option<Vec<String>>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            team: Team { id: "T0JITGATE".into(), name: "jitgate demo".into(), domain: "jitgate-demo".into() },
            app_id: "A0JITGATE".into(),
            bot: BotIdentity { user_id: "U0JITBOT".into(), bot_id: "B0JITBOT".into(), name: "jitgate".into() },
            bot_token: "xoxb-0000000000-0000000000000-localbottoken".into(),
            app_token: "xapp-1-A0JITGATE-0000000000000-localapptoken".into(),
            verification_token: "verification-token".into(),
            users: Vec::new(),
            channels: Vec::new(),
            socket: SocketModeConfig { ack_timeout: Duration::from_secs(3), redeliveries: 2 },
            trigger_ttl: Duration::from_secs(3),
            wait_deadline: Duration::from_secs(10),
            check_unread_on_drop: true,
        }
    }
}

impl SlackConfig {
    /// Adds a user.
    pub fn with_user(mut self, user: User) -> Self {
        self.users.push(user);
        self
    }

    /// Adds a channel.
    pub fn with_channel(mut self, channel: Channel) -> Self {
        self.channels.push(channel);
        self
    }

    /// Sets the socket-mode ack deadline.
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.socket.ack_timeout = timeout;
        self
    }

    /// Sets how many times a missed envelope is delivered again.
    pub fn with_redeliveries(mut self, redeliveries: u32) -> Self {
        self.socket.redeliveries = redeliveries;
        self
    }

    /// Sets how long the test helpers wait before failing.
    pub fn with_wait_deadline(mut self, deadline: Duration) -> Self {
        self.wait_deadline = deadline;
        self
    }

    /// Turns off the check at drop that every output was read: for a program that is not a test and reports
    /// [`unread`](super::FakeSlack::unread) output its own way (the demo fails a step with it), where a panic in a
    /// destructor would only hide that report.
    pub fn without_unread_check(mut self) -> Self {
        self.check_unread_on_drop = false;
        self
    }

    /// Sets the bind address (the demo program uses a fixed port; tests keep port 0).
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }
}

impl User {
    /// A human user with id, handle and an `<name>@example.com` email.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        let name = name.into();
        User {
            id: id.into(),
            real_name: name.clone(),
            email: Some(format!("{name}@example.com")),
            name,
            is_bot: false,
            deleted: false,
            is_restricted: false,
            is_ultra_restricted: false,
            is_app_user: false,
        }
    }

    /// Replaces the email (or removes it with `None`).
    pub fn with_email(mut self, email: Option<&str>) -> Self {
        self.email = email.map(str::to_owned);
        self
    }

    /// Sets the full name.
    pub fn with_real_name(mut self, real_name: impl Into<String>) -> Self {
        self.real_name = real_name.into();
        self
    }

    /// Marks the user as a bot.
    pub fn bot(mut self) -> Self {
        self.is_bot = true;
        self
    }

    /// Marks the user as deactivated.
    pub fn deactivated(mut self) -> Self {
        self.deleted = true;
        self
    }

    /// Marks the user as a multi-channel guest.
    pub fn multi_channel_guest(mut self) -> Self {
        self.is_restricted = true;
        self
    }

    /// Marks the user as a single-channel guest (Slack flags both `is_restricted` and `is_ultra_restricted`).
    pub fn single_channel_guest(mut self) -> Self {
        self.is_restricted = true;
        self.is_ultra_restricted = true;
        self
    }

    /// Marks the user as an app's user.
    pub fn app_user(mut self) -> Self {
        self.is_app_user = true;
        self
    }
}

impl Channel {
    /// A public channel the bot is a member of, open to every user.
    pub fn public(id: impl Into<String>, name: impl Into<String>) -> Self {
        Channel {
            id: id.into(),
            name: name.into().trim_start_matches('#').to_owned(),
            bot_is_member: true,
            is_private: false,
            is_archived: false,
            is_im: false,
            members: None,
        }
    }

    /// A private channel the bot is a member of, with exactly these human members.
    pub fn private(id: impl Into<String>, name: impl Into<String>, members: &[&str]) -> Self {
        Channel {
            is_private: true,
            members: Some(members.iter().map(|m| (*m).to_owned()).collect()),
            ..Channel::public(id, name)
        }
    }

    /// The bot has not been invited.
    pub fn without_bot(mut self) -> Self {
        self.bot_is_member = false;
        self
    }

    /// The channel is archived.
    pub fn archived(mut self) -> Self {
        self.is_archived = true;
        self
    }

    /// Restricts the human members to these users.
    pub fn with_members(mut self, members: &[&str]) -> Self {
        self.members = Some(members.iter().map(|m| (*m).to_owned()).collect());
        self
    }

    /// Whether `user_id` is a member.
    pub fn has_member(&self, user_id: &str) -> bool {
        self.members.as_ref().is_none_or(|members| members.iter().any(|m| m == user_id))
    }
}
