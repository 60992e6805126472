//! The story the demo plays through the emulators' real wire formats, printing the conversation as it happens:
//! @alice asks for a runbook with `/jit query …`, @mallory (not on call) clicks Approve and is refused, @bob (on call)
//! approves, the card changes and the results arrive in the card's thread, with a signed audit link. Then a reviewed
//! write: @alice asks to cancel an order stuck in `paid`; it needs two approvers, @bob and @carol, and the thread
//! shows the order before and after. Then an incident-gated request: @alice names the open PagerDuty incident, the
//! card links it, @bob approves, and the incident's timeline gets notes (never rows). Last, break-glass: @bob, on
//! call, runs a runbook that allows it at once, loudly in #oncall, and @carol reviews it.
//!
//! Each step checks what a person would see and fails with the reason when it differs. The emulator's waits panic
//! on their deadline, as test helpers do; [`step`] turns that (and any other panic) into the step's failure.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures::FutureExt as _;
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::{Button, FakeSlack, Message};

use crate::render::{Names, message_lines};
use crate::world::{ALICE, BOB, CAROL, DEV, MALLORY, ONCALL, OPEN_INCIDENT};

/// What alice asks for: customer C000002's orders placed on 2 January 2026, 18 of the seeded rows.
pub const REQUEST: &str =
    "query orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

/// The reviewed write: seeded order 6 of customer 1 is `paid`; cancel it with a refund note.
pub const WRITE_REQUEST: &str = "query cancel-stuck-order order_id=O000010006 refund_note=\"INC-812 captured twice, refund in full\" --reason \"INC-812\"";

/// The incident-gated request: one order, under the open Orders incident.
pub const INCIDENT_REQUEST: &str =
    "query order-by-id-incident order_id=O000010001 --incident 1234 --reason \"INC-1234 orders stuck in paid\"";

/// The break-glass run: @bob, on call, needs one order now.
pub const BREAK_GLASS_REQUEST: &str =
    "query order-by-id-break-glass order_id=O000010001 --reason \"checkout down, INC-1234\" --break-glass";

/// Upper bound of one step; the emulator's own waits (a message, an update) fail sooner.
pub const STEP_DEADLINE: Duration = Duration::from_secs(60);

/// A step that did not go as the story says.
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub reason: String,
}

/// Runs one step within [`STEP_DEADLINE`]: its error, a panic inside it, or running out of time is its failure.
pub async fn step<T>(name: &str, body: impl Future<Output = anyhow::Result<T>>) -> Result<T, Failure> {
    let failure = |reason: String| Failure { step: name.to_owned(), reason };
    match tokio::time::timeout(STEP_DEADLINE, AssertUnwindSafe(body).catch_unwind()).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(err))) => Err(failure(format!("{err:#}"))),
        Ok(Err(panic)) => Err(failure(panic_text(panic.as_ref()))),
        Err(_) => Err(failure(format!("it did not finish within {STEP_DEADLINE:?}"))),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The conversation as text on stdout.
pub struct Transcript {
    pub names: Names,
}

impl Transcript {
    /// `[#channel] text`.
    fn line(&self, channel: &str, text: &str) {
        self.at(&self.names.channel(channel), text, &[]);
    }

    /// `[#channel] intro` then the message's lines, indented.
    fn message(&self, channel: &str, intro: &str, lines: &[String]) {
        self.at(&self.names.channel(channel), intro, lines);
    }

    fn at(&self, place: &str, intro: &str, lines: &[String]) {
        println!("[{place}] {intro}");
        for line in lines {
            println!("      {line}");
        }
    }
}

/// What the story learned that the steps after it need.
pub struct Outcome {
    pub request_id: String,
    pub audit_link: String,
}

/// Plays the story. `public_url` is jitgate's `http.public_url`, which its audit links start with.
pub async fn play(
    slack: &FakeSlack,
    pagerduty: &FakePagerDuty,
    out: &Transcript,
    public_url: &str,
) -> Result<Outcome, Failure> {
    let names = &out.names;
    let card = step("@alice asks for a runbook with /jit query", async {
        out.line(DEV, &format!("{}: /jit {REQUEST}", names.user(ALICE)));
        let envelope = slack.send_slash_command(ALICE, DEV, "/jit", REQUEST).await;
        let ack = envelope.ack().await?;
        if let Some(payload) = ack.payload.filter(|p| p.as_object().is_none_or(|o| !o.is_empty())) {
            bail!("jitgate answered in the command's ack instead of posting a card: {payload}");
        }
        let card = slack.next_message_in(ONCALL).await;
        let lines = message_lines(card.text.as_deref(), card.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate posts the approval card:", &lines);
        let confirmation = slack.next_ephemeral_for(ALICE).await;
        let lines = message_lines(confirmation.text.as_deref(), confirmation.blocks.as_ref(), names);
        out.message(&confirmation.channel, "jitgate, visible only to @alice:", &lines);
        ensure!(lines.join(" ").contains("submitted"), "the requester was not told the request was submitted");
        Ok(card)
    })
    .await?;
    let approve: Button = card
        .buttons()
        .into_iter()
        .find(|b| b.text == "Approve")
        .ok_or_else(|| Failure { step: "reading the card".into(), reason: "the card has no Approve button".into() })?;
    // Approve carries the request id and the fingerprint the card shows; a click sends the value back as it is.
    let approve_value = approve.value.clone().unwrap_or_default();
    let request_id = approve_value.split(' ').next().unwrap_or_default().to_owned();

    step("@mallory, not on call, clicks Approve and is refused", async {
        out.line(ONCALL, &format!("{} clicks [Approve]", names.user(MALLORY)));
        let click = slack.send_block_action(MALLORY, ONCALL, &card.ts, &approve.action_id, &approve_value).await;
        click.ack().await?;
        let refusal = slack.next_ephemeral_for(MALLORY).await;
        let lines = message_lines(refusal.text.as_deref(), refusal.blocks.as_ref(), names);
        out.message(&refusal.channel, "jitgate, visible only to @mallory:", &lines);
        ensure!(lines.join(" ").contains("not on call"), "the refusal does not say @mallory is not on call");
        let updates = slack.updates_of(ONCALL, &card.ts);
        ensure!(updates.is_empty(), "the card changed after a refused click: {updates:?}");
        Ok(())
    })
    .await?;

    let results = step("@bob, on call, approves; the card changes and the results arrive in the thread", async {
        out.line(ONCALL, &format!("{} clicks [Approve]", names.user(BOB)));
        let click = slack.send_block_action(BOB, ONCALL, &card.ts, &approve.action_id, &approve_value).await;
        click.ack().await?;
        let mut shown = message_lines(card.text.as_deref(), card.blocks.as_ref(), names);
        loop {
            let update = slack.next_update_of(ONCALL, &card.ts).await;
            let lines = message_lines(update.text.as_deref(), update.blocks.as_ref(), names);
            out.message(ONCALL, "jitgate updates the card:", &changes(&shown, &lines));
            let text = lines.join("\n");
            if let Some(failed) = lines.iter().find(|l| l.contains("Failed")) {
                bail!("the request failed instead of running: {failed} (is the Orders table seeded? make demo runs `jitgate seed-demo`)");
            }
            shown = lines;
            if text.contains("ran:") {
                break;
            }
        }
        let reply = slack.next_thread_reply(ONCALL, &card.ts).await;
        let lines = message_lines(reply.text.as_deref(), reply.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate replies in the card's thread:", &lines);
        ensure!(lines.join(" ").contains("18 rows"), "the thread reply does not hold the 18 rows asked for");
        let dm = slack.next_message_in(ALICE).await;
        let lines = message_lines(dm.text.as_deref(), dm.blocks.as_ref(), names);
        out.at(&format!("DM {}", names.user(ALICE)), "jitgate:", &lines);
        Ok(reply)
    })
    .await?;

    step("@alice asks for a reviewed write; @bob and @carol approve; the thread shows before and after", async {
        out.line(DEV, &format!("{}: /jit {WRITE_REQUEST}", names.user(ALICE)));
        let envelope = slack.send_slash_command(ALICE, DEV, "/jit", WRITE_REQUEST).await;
        envelope.ack().await?;
        let card = slack.next_message_in(ONCALL).await;
        let mut shown = message_lines(card.text.as_deref(), card.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate posts the approval card:", &shown);
        ensure!(shown.join(" ").contains("WRITE"), "the card does not say it is a write");
        let confirmation = slack.next_ephemeral_for(ALICE).await;
        let lines = message_lines(confirmation.text.as_deref(), confirmation.blocks.as_ref(), names);
        out.message(&confirmation.channel, "jitgate, visible only to @alice:", &lines);
        let approve = card.buttons().into_iter().find(|b| b.text == "Approve").context("no Approve button")?;
        let value = approve.value.clone().unwrap_or_default();
        for (who, until) in [(BOB, "1 of 2 approvals"), (CAROL, "wrote 1 item")] {
            out.line(ONCALL, &format!("{} clicks [Approve]", names.user(who)));
            slack.send_block_action(who, ONCALL, &card.ts, &approve.action_id, &value).await.ack().await?;
            loop {
                let update = slack.next_update_of(ONCALL, &card.ts).await;
                let lines = message_lines(update.text.as_deref(), update.blocks.as_ref(), names);
                out.message(ONCALL, "jitgate updates the card:", &changes(&shown, &lines));
                if let Some(failed) = lines.iter().find(|l| l.contains("Failed")) {
                    bail!("the write failed: {failed}");
                }
                let done = lines.join("\n").contains(until);
                shown = lines;
                if done {
                    break;
                }
            }
            let dm = slack.next_message_in(ALICE).await;
            let lines = message_lines(dm.text.as_deref(), dm.blocks.as_ref(), names);
            if who == CAROL {
                let reply = slack.next_thread_reply(ONCALL, &card.ts).await;
                let diff = message_lines(reply.text.as_deref(), reply.blocks.as_ref(), names);
                out.message(ONCALL, "jitgate replies in the card's thread:", &diff);
                ensure!(diff.join(" ").contains("cancelled"), "the thread does not show the order cancelled");
            }
            out.at(&format!("DM {}", names.user(ALICE)), "jitgate:", &lines);
        }
        Ok(())
    })
    .await?;

    step("@alice asks under an open incident; the card links it; @bob approves; the incident gets notes", async {
        out.line(DEV, &format!("{}: /jit {INCIDENT_REQUEST}", names.user(ALICE)));
        slack.send_slash_command(ALICE, DEV, "/jit", INCIDENT_REQUEST).await.ack().await?;
        let card = slack.next_message_in(ONCALL).await;
        let shown = message_lines(card.text.as_deref(), card.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate posts the approval card:", &shown);
        ensure!(
            shown.iter().any(|l| l.contains("Incident:") && l.contains(&format!("#{OPEN_INCIDENT}"))),
            "the card does not show the incident"
        );
        slack.next_ephemeral_for(ALICE).await;
        click_until(slack, out, &card, BOB, "Approve", shown, "ran:").await?;
        let reply = slack.next_thread_reply(ONCALL, &card.ts).await;
        out.message(
            ONCALL,
            "jitgate replies in the card's thread:",
            &message_lines(reply.text.as_deref(), reply.blocks.as_ref(), names),
        );
        slack.next_message_in(ALICE).await;
        // Notes are written off the critical path: wait for both, bounded like every other wait.
        let deadline = tokio::time::Instant::now() + STEP_DEADLINE / 2;
        let notes = loop {
            let notes = pagerduty.notes();
            if notes.len() >= 2 || tokio::time::Instant::now() > deadline {
                break notes;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let lines: Vec<String> = notes.iter().map(|n| n.content.clone()).collect();
        out.at(&format!("PagerDuty incident #{OPEN_INCIDENT} timeline"), "notes from jitgate:", &lines);
        ensure!(notes.len() == 2, "the incident got {} notes, not 2 (approved, finished)", notes.len());
        ensure!(!lines.join(" ").contains("customer"), "a note holds row data");
        Ok(())
    })
    .await?;

    step("@bob, on call, breaks glass: it runs at once, loudly; @carol reviews it", async {
        out.line(DEV, &format!("{}: /jit {BREAK_GLASS_REQUEST}", names.user(BOB)));
        slack.send_slash_command(BOB, DEV, "/jit", BREAK_GLASS_REQUEST).await.ack().await?;
        let card = slack.next_message_in(ONCALL).await;
        let shown = message_lines(card.text.as_deref(), card.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate posts the card:", &shown);
        ensure!(shown.join(" ").contains("BREAK-GLASS"), "the card does not say BREAK-GLASS");
        let confirmation = slack.next_ephemeral_for(BOB).await;
        let lines = message_lines(confirmation.text.as_deref(), confirmation.blocks.as_ref(), names);
        out.message(&confirmation.channel, "jitgate, visible only to @bob:", &lines);
        let mut shown = shown;
        loop {
            let update = slack.next_update_of(ONCALL, &card.ts).await;
            let lines = message_lines(update.text.as_deref(), update.blocks.as_ref(), names);
            out.message(ONCALL, "jitgate updates the card:", &changes(&shown, &lines));
            let done = lines.join("\n").contains("ran:");
            shown = lines;
            if done {
                break;
            }
        }
        let reply = slack.next_thread_reply(ONCALL, &card.ts).await;
        out.message(
            ONCALL,
            "jitgate replies in the card's thread:",
            &message_lines(reply.text.as_deref(), reply.blocks.as_ref(), names),
        );
        slack.next_message_in(BOB).await;
        ensure!(shown.join(" ").contains("Awaiting review"), "the run does not await review");
        click_until(slack, out, &card, CAROL, "Reviewed", shown, "Reviewed").await?;
        let reply = slack.next_thread_reply(ONCALL, &card.ts).await;
        let lines = message_lines(reply.text.as_deref(), reply.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate replies in the card's thread:", &lines);
        ensure!(lines.join(" ").contains("reviewed"), "the thread does not say it was reviewed");
        Ok(())
    })
    .await?;

    step("nothing else was posted", async {
        let unread = slack.unread();
        ensure!(unread.is_empty(), "jitgate posted more than the story expects:\n{}", unread.join("\n"));
        Ok(())
    })
    .await?;

    let audit_link = step("the thread links to the audit page", async {
        let text = results.all_text();
        let start = text.find(&format!("{public_url}/audit/")).context("no audit link in the results")?;
        let link: String = text[start..].chars().take_while(|c| !matches!(c, '|' | '>')).collect();
        Ok(link.replace("&amp;", "&"))
    })
    .await?;
    Ok(Outcome { request_id, audit_link })
}

/// `who` clicks the card's `button`; prints each card update as what changed, until one contains `until`.
async fn click_until(
    slack: &FakeSlack,
    out: &Transcript,
    card: &Message,
    who: &str,
    button: &str,
    mut shown: Vec<String>,
    until: &str,
) -> anyhow::Result<()> {
    let names = &out.names;
    let button =
        card.buttons().into_iter().find(|b| b.text == button).with_context(|| format!("no {button} button"))?;
    out.line(ONCALL, &format!("{} clicks [{}]", names.user(who), button.text));
    let value = button.value.clone().unwrap_or_default();
    slack.send_block_action(who, ONCALL, &card.ts, &button.action_id, &value).await.ack().await?;
    loop {
        let update = slack.next_update_of(ONCALL, &card.ts).await;
        let lines = message_lines(update.text.as_deref(), update.blocks.as_ref(), names);
        out.message(ONCALL, "jitgate updates the card:", &changes(&shown, &lines));
        if let Some(failed) = lines.iter().find(|l| l.contains("Failed")) {
            bail!("the request failed: {failed}");
        }
        let done = lines.join("\n").contains(until);
        shown = lines;
        if done {
            return Ok(());
        }
    }
}

/// What changed between two versions of a message: `- ` lines that went, `+ ` lines that came. Links count as
/// unchanged when only their URL changed: jitgate signs the card's audit link afresh on every update, with a new
/// expiry, which is no news to the reader.
fn changes(before: &[String], after: &[String]) -> Vec<String> {
    let before_keys: Vec<String> = before.iter().map(|l| without_urls(l)).collect();
    let after_keys: Vec<String> = after.iter().map(|l| without_urls(l)).collect();
    let gone = before.iter().zip(&before_keys).filter(|(_, k)| !after_keys.contains(k)).map(|(l, _)| format!("- {l}"));
    let came = after.iter().zip(&after_keys).filter(|(_, k)| !before_keys.contains(k)).map(|(l, _)| format!("+ {l}"));
    gone.chain(came).collect()
}

/// The line with every `(http…)` that [`render`](crate::render) made of a link's URL taken out.
fn without_urls(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("(http") {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_lines_that_went_and_came() {
        let before = ["a".to_owned(), "b".to_owned(), "[Approve] [Deny]".to_owned()];
        let after = ["a".to_owned(), "b · approved".to_owned()];
        assert_eq!(changes(&before, &after), ["- b", "- [Approve] [Deny]", "+ b · approved"]);
        let resigned = |exp: u32| vec![format!("Audit trail (http://x/audit/J?exp={exp}&sig=a) · end")];
        assert!(changes(&resigned(1), &resigned(2)).is_empty(), "a link signed afresh is no change");
        assert_eq!(without_urls("a (http://x) b (https://y"), "a  b (https://y");
    }

    #[tokio::test]
    async fn a_step_fails_with_its_error_or_its_panic() {
        let err = step("erring", async { Err::<(), _>(anyhow::anyhow!("it broke")) }).await.unwrap_err();
        assert_eq!((err.step.as_str(), err.reason.as_str()), ("erring", "it broke"));
        let wait = |found: bool| async move {
            if !found {
                panic!("timed out waiting for {}", "a message");
            }
            Ok(())
        };
        let err = step("panicking", wait(false)).await.unwrap_err();
        assert_eq!(err.reason, "timed out waiting for a message");
        assert_eq!(step("fine", async { Ok(7) }).await.unwrap(), 7);
    }
}
