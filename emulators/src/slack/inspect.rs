//! The test's reading side: recorded calls, and "next unread" helpers for messages, thread replies, updates,
//! ephemerals, uploads and modals. Every item is consumed once; whatever the bot produced that the test never
//! looked at fails the test when the fake is dropped ([`unread_failure`]), unless the test discards it by name
//! ([`FakeSlack::discard_unread`]).

use std::time::Duration;

use super::FakeSlack;
use super::records::{ApiCall, Ephemeral, Message, MessageUpdate, OpenedView, UploadedFile, ViewUpdate};
use super::state::State;

/// A channel given by id, `#name`, name, or a user id meaning the bot's DM with that user.
fn resolve_channel(state: &State, wanted: &str) -> Option<String> {
    if let Some(channel) = state.channel(wanted) {
        return Some(channel.id.clone());
    }
    state.channels.iter().find(|c| c.is_im && c.name == wanted).map(|c| c.id.clone())
}

impl FakeSlack {
    /// Every Web API call (and `response_url` post) so far, in order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.with(|state| state.calls.clone())
    }

    /// The calls to one method, in order.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        self.shared.with(|state| state.calls.iter().filter(|c| c.method == method).cloned().collect())
    }

    /// Waits for the next top-level message in `channel` (id, `#name`, or a user id for the bot's DM) that
    /// the test has not read yet, and marks it read.
    pub async fn next_message_in(&self, channel: &str) -> Message {
        self.shared
            .wait_for(
                || format!("a message in {channel}"),
                |state| {
                    let id = resolve_channel(state, channel)?;
                    let found = state
                        .messages
                        .iter_mut()
                        .find(|m| !m.read && m.item.channel == id && m.item.thread_ts.is_none())?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Waits for the first unread top-level message in `channel` whose text contains `needle`, and marks it read:
    /// one card among many posted at once (a load program finds each request's card by a token in its reason).
    pub async fn next_message_in_containing(&self, channel: &str, needle: &str) -> Message {
        self.shared
            .wait_for(
                || format!("a message in {channel} containing {needle:?}"),
                |state| {
                    let id = resolve_channel(state, channel)?;
                    let found = state.messages.iter_mut().find(|m| {
                        !m.read
                            && m.item.channel == id
                            && m.item.thread_ts.is_none()
                            && m.item.all_text().contains(needle)
                    })?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Waits for the next unread reply in the thread of `thread_ts` in `channel`, and marks it read.
    pub async fn next_thread_reply(&self, channel: &str, thread_ts: &str) -> Message {
        self.shared
            .wait_for(
                || format!("a reply in {channel} thread {thread_ts}"),
                |state| {
                    let id = resolve_channel(state, channel)?;
                    let found = state
                        .messages
                        .iter_mut()
                        .find(|m| !m.read && m.item.channel == id && m.item.thread_ts.as_deref() == Some(thread_ts))?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Waits for the next unread ephemeral message shown to `user` (any channel), and marks it read.
    pub async fn next_ephemeral_for(&self, user: &str) -> Ephemeral {
        self.shared
            .wait_for(
                || format!("an ephemeral message for {user}"),
                |state| {
                    let found = state.ephemerals.iter_mut().find(|e| !e.read && e.item.user == user)?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Waits for the next unread update (or deletion) of message `ts` in `channel`, and marks it read.
    pub async fn next_update_of(&self, channel: &str, ts: &str) -> MessageUpdate {
        self.shared
            .wait_for(
                || format!("an update of message {ts} in {channel}"),
                |state| {
                    let id = resolve_channel(state, channel)?;
                    let found =
                        state.updates.iter_mut().find(|u| !u.read && u.item.channel == id && u.item.ts == ts)?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// The unread updates of message `ts` in `channel` so far (no waiting), marked read.
    pub fn updates_of(&self, channel: &str, ts: &str) -> Vec<MessageUpdate> {
        self.shared.with(|state| {
            let Some(id) = resolve_channel(state, channel) else { return Vec::new() };
            state
                .updates
                .iter_mut()
                .filter(|u| !u.read && u.item.channel == id && u.item.ts == ts)
                .map(|u| {
                    u.read = true;
                    u.item.clone()
                })
                .collect()
        })
    }

    /// Message `ts` in `channel` as users see it now (updates applied; `None` if unknown or deleted). Does
    /// not mark anything read.
    pub fn message(&self, channel: &str, ts: &str) -> Option<Message> {
        self.shared.with(|state| {
            let id = resolve_channel(state, channel)?;
            match state.current_message(&id, ts)? {
                (message, false) => Some(message),
                (_, true) => None,
            }
        })
    }

    /// Waits for the next unread file shared into `channel` by `files.completeUploadExternal`, and marks it
    /// read.
    pub async fn next_upload_in(&self, channel: &str) -> UploadedFile {
        self.shared
            .wait_for(
                || format!("a file shared in {channel}"),
                |state| {
                    let id = resolve_channel(state, channel)?;
                    let found = state
                        .uploads
                        .iter_mut()
                        .find(|f| !f.read && f.item.completed && f.item.channel_id.as_deref() == Some(id.as_str()))?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Every upload not read yet (completed or not), marked read.
    pub fn uploaded_files(&self) -> Vec<UploadedFile> {
        self.shared.with(|state| {
            state
                .uploads
                .iter_mut()
                .filter(|f| !f.read)
                .map(|f| {
                    f.read = true;
                    f.item.clone()
                })
                .collect()
        })
    }

    /// Waits for the next unread modal opened for `user`, and marks it read.
    pub async fn next_view_opened_for(&self, user: &str) -> OpenedView {
        self.shared
            .wait_for(
                || format!("a modal opened for {user}"),
                |state| {
                    let found = state.opened_views.iter_mut().find(|v| !v.read && v.item.user == user)?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Waits for the next unread `views.update` of `view_id`, and marks it read.
    pub async fn next_view_update(&self, view_id: &str) -> ViewUpdate {
        self.shared
            .wait_for(
                || format!("an update of modal {view_id}"),
                |state| {
                    let found = state.view_updates.iter_mut().find(|v| !v.read && v.item.view_id == view_id)?;
                    found.read = true;
                    Some(found.item.clone())
                },
            )
            .await
    }

    /// Protocol findings not read yet (bad frames, acks for unknown envelopes, replies to replies, …), marked
    /// read: call it in a test that provokes one on purpose.
    pub fn take_findings(&self) -> Vec<String> {
        self.shared.with(|state| {
            state
                .findings
                .iter_mut()
                .filter(|f| !f.read)
                .map(|f| {
                    f.read = true;
                    f.item.clone()
                })
                .collect()
        })
    }

    /// One line per output the test has not consumed: what dropping the fake would fail the test with.
    pub fn unread(&self) -> Vec<String> {
        self.shared.with(|state| state.unread_report())
    }

    /// Marks everything produced so far read and returns what was unread (one line each, as [`unread`](Self::unread)
    /// reports it): the explicit step for a test that leaves output unread on purpose. Output produced later is
    /// checked again when the fake is dropped.
    pub fn discard_unread(&self) -> Vec<String> {
        self.shared.with(|state| {
            let unread = state.unread_report();
            state.mark_all_read();
            unread
        })
    }

    /// Makes every trigger issued so far older than Slack's exchange window, so the next `views.open` with it
    /// answers `expired_trigger_id` — without the test sleeping.
    pub fn expire_triggers(&self) {
        let age = self.shared.config.trigger_ttl + Duration::from_millis(1);
        self.shared.mutate(|state| {
            for trigger in state.triggers.values_mut() {
                if let Some(earlier) = trigger.issued.checked_sub(age) {
                    trigger.issued = earlier;
                }
            }
        });
    }
}

/// The failure for outputs nobody read (`unread` as [`FakeSlack::unread`] lists them), or `None` when there are
/// none. Dropping a [`FakeSlack`] panics with it.
pub fn unread_failure(unread: &[String]) -> Option<String> {
    if unread.is_empty() {
        return None;
    }
    Some(format!(
        "fake Slack: the bot produced output the test did not read:\n{}\n(read each with a next_* helper, or call \
         discard_unread() where leaving it unread is the point)",
        unread.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::unread_failure;

    #[test]
    fn nothing_unread_is_no_failure() {
        assert_eq!(unread_failure(&[]), None);
    }

    #[test]
    fn the_failure_names_every_unread_output() {
        let unread = ["  message in C0ONCALL ts=1.000001: hello".to_owned(), "  modal V1 opened for U0BOB".to_owned()];
        let failure = unread_failure(&unread).expect("a failure");
        assert!(failure.contains("did not read"), "{failure}");
        for line in &unread {
            assert!(failure.contains(line.as_str()), "{failure}");
        }
    }
}
