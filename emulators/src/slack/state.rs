//! The fake's one shared state: the world, everything recorded, socket connections and envelopes. One mutex
//! guards it (critical sections are short and never await); a `watch` counter bumps on every change so test
//! helpers wait for events instead of polling.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::config::{Channel, SlackConfig, User};
use super::records::{ApiCall, Ephemeral, Message, MessageUpdate, OpenedView, UploadedFile, ViewUpdate};
use super::socket::{Connection, ConnectionId, EnvelopeRecord};

/// State shared by the HTTP handlers, the socket tasks and the test-facing handle.
pub(crate) struct Shared {
    /// The configuration the fake was started with (the world in it is only the initial one).
    pub config: SlackConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    /// Flips to `true` when the [`FakeSlack`](super::FakeSlack) is dropped: socket tasks close, ack watchers stop.
    pub shutdown: watch::Sender<bool>,
}

/// An item plus whether the test has consumed it.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<T> {
    pub item: T,
    pub read: bool,
}

impl<T> Tracked<T> {
    pub fn new(item: T) -> Self {
        Tracked { item, read: false }
    }
}

/// A `trigger_id` handed out with an interaction.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub user: String,
    pub issued: Instant,
    pub used: bool,
}

/// A fault queued by `fail_next` / `rate_limit_next` / `hold_next`.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    Error(String),
    RateLimit(u64),
    /// Answered normally once the sender says so (or is dropped).
    Hold(tokio::sync::watch::Receiver<bool>),
}

/// The view as it currently stands, for `views.update` and view submissions.
#[derive(Debug, Clone)]
pub(crate) struct LiveView {
    pub user: String,
    pub view: serde_json::Value,
}

/// Where a `response_url` points back to.
#[derive(Debug, Clone)]
pub(crate) struct ResponseTarget {
    pub channel: String,
    pub user: String,
    /// The message the interaction came from (block actions), for `replace_original`.
    pub message_ts: Option<String>,
    pub message_is_ephemeral: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub users: Vec<User>,
    pub channels: Vec<Channel>,
    pub ts_clock: TsClock,
    pub next_id: u64,
    pub calls: Vec<ApiCall>,
    pub messages: Vec<Tracked<Message>>,
    pub updates: Vec<Tracked<MessageUpdate>>,
    pub ephemerals: Vec<Tracked<Ephemeral>>,
    pub uploads: Vec<Tracked<UploadedFile>>,
    pub opened_views: Vec<Tracked<OpenedView>>,
    pub view_updates: Vec<Tracked<ViewUpdate>>,
    pub live_views: HashMap<String, LiveView>,
    pub triggers: HashMap<String, Trigger>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// Added to every Web API call before it is answered (benchmarks: Slack's real round trip, ~150 ms).
    pub latency: std::time::Duration,
    pub response_targets: HashMap<String, ResponseTarget>,
    pub tickets: HashSet<String>,
    pub connections: BTreeMap<ConnectionId, Connection>,
    pub next_connection: u64,
    pub round_robin: u64,
    pub envelopes: Vec<EnvelopeRecord>,
    /// Protocol errors and suspicious requests (bad frames, unknown acks, replies to replies, …): reported as
    /// unread when the fake is dropped, so they cannot go unnoticed.
    pub findings: Vec<Tracked<String>>,
}

impl Shared {
    pub fn new(config: SlackConfig, base_url: String) -> Self {
        let mut users = config.users.clone();
        if !users.iter().any(|u| u.id == config.bot.user_id) {
            users.push(
                User { real_name: config.bot.name.clone(), ..User::new(&config.bot.user_id, &config.bot.name) }
                    .with_email(None)
                    .bot(),
            );
        }
        let state = State { users, channels: config.channels.clone(), ..State::default() };
        let (changed, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        Shared { config, base_url, state: Mutex::new(state), changed, shutdown }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a bug in the fake itself; the data is still the
        // best record of what happened, so keep serving it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads (or marks read) without waking waiters.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// Changes the state and wakes every waiter.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let result = f(&mut self.lock());
        self.changed.send_modify(|version| *version = version.wrapping_add(1));
        result
    }

    /// A receiver that sees every later change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Waits until `check` returns `Some`, re-checking after every change, until the configured deadline;
    /// then panics naming `what` and listing everything the test has not read yet (the usual reason for the
    /// wait: the bot said something else).
    pub async fn wait_for<T>(&self, what: impl Fn() -> String, check: impl FnMut(&mut State) -> Option<T>) -> T {
        self.wait_for_within(self.config.wait_deadline, what, check).await
    }

    /// [`wait_for`](Self::wait_for) with an explicit deadline.
    pub async fn wait_for_within<T>(
        &self,
        within: Duration,
        what: impl Fn() -> String,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        // Subscribing before the first check means no change between check and wait can be missed.
        let mut changes = self.changed.subscribe();
        loop {
            if let Some(found) = self.with(&mut check) {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as `self`; a closed channel cannot happen while we hold `&self`.
                Ok(Err(_)) => panic!("fake Slack state dropped while waiting for {}", what()),
                Err(_) => {
                    let unread = self.with(|state| state.unread_report());
                    panic!(
                        "fake Slack: timed out after {:?} waiting for {}.\nUnread output so far:\n{}",
                        within,
                        what(),
                        if unread.is_empty() { "  (nothing)".to_owned() } else { unread.join("\n") }
                    );
                }
            }
        }
    }

    /// A fresh id with the given prefix, e.g. `F0000000012`.
    pub fn fresh_id(&self, prefix: &str) -> String {
        self.mutate(|state| state.fresh_id(prefix))
    }
}

impl State {
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:010}", self.next_id)
    }

    /// Finds a channel by id, `#name` or name.
    pub fn channel(&self, id_or_name: &str) -> Option<&Channel> {
        let name = id_or_name.trim_start_matches('#');
        self.channels.iter().find(|c| c.id == id_or_name).or_else(|| self.channels.iter().find(|c| c.name == name))
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The DM channel between the bot and `user`, created on first use like Slack's `conversations.open`.
    pub fn dm_with(&mut self, user: &str) -> (String, bool) {
        if let Some(existing) = self.channels.iter().find(|c| c.is_im && c.name == user) {
            return (existing.id.clone(), true);
        }
        let id = self.fresh_id("D");
        self.channels.push(Channel {
            id: id.clone(),
            name: user.to_owned(),
            bot_is_member: true,
            is_private: true,
            is_archived: false,
            is_im: true,
            members: Some(vec![user.to_owned()]),
        });
        (id, false)
    }

    /// The message `ts` in `channel`, with every update applied: what a user sees now.
    pub fn current_message(&self, channel: &str, ts: &str) -> Option<(Message, bool)> {
        let mut message = self.messages.iter().find(|m| m.item.channel == channel && m.item.ts == ts)?.item.clone();
        let mut deleted = false;
        for update in self.updates.iter().filter(|u| u.item.channel == channel && u.item.ts == ts) {
            message.text = update.item.text.clone();
            message.blocks = update.item.blocks.clone();
            message.attachments = update.item.attachments.clone();
            deleted = update.item.deleted;
        }
        Some((message, deleted))
    }

    pub fn finding(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!(finding = %text, "fake Slack finding");
        self.findings.push(Tracked::new(text));
    }

    /// Marks every output read: messages, updates, ephemerals, uploads, modals, ack payloads and findings.
    pub fn mark_all_read(&mut self) {
        self.messages.iter_mut().for_each(|m| m.read = true);
        self.updates.iter_mut().for_each(|u| u.read = true);
        self.ephemerals.iter_mut().for_each(|e| e.read = true);
        self.uploads.iter_mut().for_each(|f| f.read = true);
        self.opened_views.iter_mut().for_each(|v| v.read = true);
        self.view_updates.iter_mut().for_each(|v| v.read = true);
        self.envelopes.iter_mut().for_each(|e| e.ack_inspected = true);
        self.findings.iter_mut().for_each(|f| f.read = true);
    }

    /// One line per item the test has not consumed.
    pub fn unread_report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for m in self.messages.iter().filter(|m| !m.read) {
            let m = &m.item;
            let place = match &m.thread_ts {
                Some(parent) => format!("thread reply in {} (thread {parent})", m.channel),
                None => format!("message in {}", m.channel),
            };
            lines.push(format!("  {place} ts={}: {}", m.ts, short(&m.all_text())));
        }
        for u in self.updates.iter().filter(|u| !u.read) {
            let u = &u.item;
            let what = if u.deleted { "deletion".to_owned() } else { short(&u.all_text()) };
            lines.push(format!("  update of {} ts={}: {what}", u.channel, u.ts));
        }
        for e in self.ephemerals.iter().filter(|e| !e.read) {
            let e = &e.item;
            lines.push(format!("  ephemeral for {} in {}: {}", e.user, e.channel, short(&e.all_text())));
        }
        for f in self.uploads.iter().filter(|f| !f.read) {
            let f = &f.item;
            let mut line = format!("  file {} {:?}", f.file_id, f.filename);
            match (&f.channel_id, f.completed) {
                (Some(channel), true) => {
                    let _ = write!(line, " shared in {channel}");
                }
                (None, true) => line.push_str(" completed without a channel"),
                (_, false) => line.push_str(" uploaded but never completed"),
            }
            lines.push(line);
        }
        for v in self.opened_views.iter().filter(|v| !v.read) {
            lines.push(format!("  modal {} opened for {}", v.item.view_id, v.item.user));
        }
        for v in self.view_updates.iter().filter(|v| !v.read) {
            lines.push(format!("  modal {} updated", v.item.view_id));
        }
        for e in self.envelopes.iter().filter(|e| e.ack_payload_unread()) {
            lines.push(format!("  ack payload for {} never inspected: {}", e.summary, e.first_ack_payload_text()));
        }
        for f in self.findings.iter().filter(|f| !f.read) {
            lines.push(format!("  protocol finding: {}", f.item));
        }
        lines
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 200;
    let one_line = text.replace('\n', " ⏎ ");
    match one_line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Hands out message timestamps the way Slack does (`<unix seconds>.<6 digits>`), strictly increasing even
/// when two messages arrive in the same microsecond.
#[derive(Default)]
pub(crate) struct TsClock {
    last_micros: u128,
}

impl TsClock {
    pub fn next(&mut self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros();
        let micros = now.max(self.last_micros + 1);
        self.last_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_is_slack_shaped_and_strictly_increasing() {
        let mut clock = TsClock::default();
        let stamps: Vec<String> = (0..1000).map(|_| clock.next()).collect();
        for pair in stamps.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let parse = |s: &str| -> (u64, u32) {
                let (secs, frac) = s.split_once('.').expect("ts has a dot");
                assert_eq!(frac.len(), 6, "ts {s} has six fractional digits");
                (secs.parse().expect("seconds"), frac.parse().expect("fraction"))
            };
            assert!(parse(a) < parse(b), "{a} < {b}");
        }
    }
}
