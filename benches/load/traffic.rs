//! One request's story under load, as people play it in Slack: a requester types `/jit query …`, the card lands in
//! the approval channel (found among the others by a token in its reason), and it is approved in one of four ways —
//! one click, two approvers clicking at once, the same approver clicking twice at once, or one click whose envelope
//! Slack delivers again to another replica — until the rows land in the card's thread.

use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use jitgate::ids::RequestId;
use jitgate::messages::{APPROVE_ACTION, button_value};
use jitgate_emulators::slack::{EnvelopeHandle, FakeSlack};
use jitgate_emulators::world::{BOB, CAROL, DEV, ONCALL};

/// How a request is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// One click, by Bob or Carol.
    One(&'static str),
    /// Bob and Carol click Approve at the same moment.
    TwoApprovers,
    /// Bob clicks Approve twice at once (a double click, or two open clients).
    ClickedTwice,
    /// Bob clicks once; Slack delivers the same envelope again to another connection, i.e. another replica.
    Redelivered,
}

impl Approval {
    /// The mix: 2 in 10 by two approvers, 2 in 10 clicked twice, 2 in 10 redelivered, the rest one click.
    pub fn for_request(index: usize) -> Approval {
        match index % 10 {
            0 | 5 => Approval::TwoApprovers,
            1 | 6 => Approval::ClickedTwice,
            2 | 7 => Approval::Redelivered,
            3 | 8 => Approval::One(CAROL),
            _ => Approval::One(BOB),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Approval::One(_) => "one click",
            Approval::TwoApprovers => "two approvers at once",
            Approval::ClickedTwice => "clicked twice",
            Approval::Redelivered => "redelivered",
        }
    }
}

/// One planned request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub user: String,
    /// Unique in the run; the reason carries it, so the card can be told apart from the others.
    pub token: String,
    pub text: String,
    pub approval: Approval,
}

/// What happened to it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub id: RequestId,
    pub card_ts: String,
    pub to_card: Duration,
    pub to_rows: Duration,
    /// The first reply in the card's thread, as text (for the report when the request did not run).
    pub reply: String,
}

/// `user` asks for customer `customer`'s orders over one day of January, with `token` in the reason.
pub fn plan(index: usize, user: &str, customer: u32, run: &str) -> Plan {
    let token = format!("load-{run}-{index:03}");
    let day = 1 + index % 28;
    let text = format!(
        "query orders-by-customer customer_id={} from=2026-01-{day:02} until=2026-01-{:02} --reason \"{token}\"",
        jitgate::aws::demo_table::demo_customer_id(customer),
        day + 1
    );
    Plan { user: user.to_owned(), token, text, approval: Approval::for_request(index) }
}

/// Plays the plan; an error names the step that went wrong.
pub async fn play(slack: &FakeSlack, plan: Plan) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let envelope = slack.send_slash_command(&plan.user, DEV, "/jit", &plan.text).await;
    envelope.ack().await.map_err(|e| anyhow!("the slash command was not acked: {e:?}"))?;
    let card = slack.next_message_in_containing(ONCALL, &plan.token).await;
    let to_card = started.elapsed();
    let value = card
        .buttons()
        .iter()
        .find(|b| b.action_id == APPROVE_ACTION)
        .and_then(|b| b.value.clone())
        .with_context(|| format!("the card has no Approve button: {}", card.all_text()))?;
    let (id, _) = button_value(&value).with_context(|| format!("the Approve button's value {value:?}"))?;

    let started = Instant::now();
    let click = |who: &'static str| slack.send_block_action(who, ONCALL, &card.ts, APPROVE_ACTION, &value);
    match plan.approval {
        Approval::One(who) => acked(click(who).await).await?,
        Approval::TwoApprovers => {
            let (bob, carol) = tokio::join!(click(BOB), click(CAROL));
            let (bob, carol) = tokio::join!(acked(bob), acked(carol));
            bob.and(carol)?;
        }
        Approval::ClickedTwice => {
            let (first, second) = tokio::join!(click(BOB), click(BOB));
            let (first, second) = tokio::join!(acked(first), acked(second));
            first.and(second)?;
        }
        Approval::Redelivered => {
            let envelope = click(BOB).await;
            slack.send_duplicate(&envelope);
            acked(envelope).await?;
        }
    }
    let reply = slack.next_thread_reply(ONCALL, &card.ts).await.all_text();
    let to_rows = started.elapsed();
    Ok(Outcome { plan, id, card_ts: card.ts, to_card, to_rows, reply })
}

async fn acked(envelope: EnvelopeHandle) -> anyhow::Result<()> {
    envelope.ack().await.map(|_| ()).map_err(|e| anyhow!("a click was not acked: {e:?}"))
}
