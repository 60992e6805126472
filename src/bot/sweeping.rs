//! The background sweep, safe on every replica at once (each step is a compare-and-set in the engine): expire what
//! is due, fail runs (and approved requests never started) whose replica died, count what is pending, remind
//! half-way, and append the summaries of counted refusals.

use super::Bot;
use super::announce::Happened;
use crate::messages;
use crate::request::{FailureReason, Status, escalation_level};

/// Requests the sweeper handles per pass.
const SWEEP_BATCH: usize = 100;

impl Bot {
    /// One pass of the background sweeper.
    pub async fn sweep_once(&self) -> anyhow::Result<()> {
        for request in self.engine.expire_due(SWEEP_BATCH).await? {
            self.announce(&request, Happened::Changed).await;
        }
        for request in self.engine.fail_stuck(SWEEP_BATCH).await? {
            // A run cut short may have held credentials; a request never started did not.
            if matches!(&request.status, Status::Failed { reason: FailureReason::Interrupted, .. }) {
                self.raise_alert(&request, "stuck_run", messages::stuck_run_alert(&request)).await;
            }
            self.announce(&request, Happened::Changed).await;
        }
        for widened in self.engine.escalate_due(SWEEP_BATCH).await? {
            let request = &widened.request;
            let report = self.roster.roster_at(&request.policy, escalation_level(request)).await.ok();
            let approvers = Self::approvers_now(report.as_ref(), &request.requester);
            self.refresh_card(request, report.as_ref()).await;
            self.post_in_thread(request, &messages::escalated(request, &approvers, widened.at_max)).await;
        }
        for request in self.engine.unreviewed_due(self.settings.break_glass.review_within, SWEEP_BATCH).await? {
            let alert = messages::break_glass_unreviewed_alert(&request, self.settings.break_glass_mention.as_deref());
            self.raise_alert(&request, "break_glass_unreviewed", alert).await;
        }
        self.engine.summarise_counted_refusals(SWEEP_BATCH).await?;
        self.settings.metrics.pending(self.engine.pending_count().await?);
        for request in self.engine.remind_due(SWEEP_BATCH).await? {
            if request.card.is_none() {
                continue;
            }
            let report = self.roster.roster_at(&request.policy, escalation_level(&request)).await.ok();
            let approvers = Self::approvers_now(report.as_ref(), &request.requester);
            self.post_in_thread(&request, &messages::reminder(&request, &approvers)).await;
        }
        Ok(())
    }
}
