//! Run on a schedule (EventBridge): every order still pending a few minutes
//! after it was created is checked with the gateway and, if paid, credited
//! exactly once by the same path as a notification; one still pending goes
//! to the back of the line, one abandoned is closed. "Paid, but the quota
//! stayed 0" cannot outlast one run after the gateway answers.
//!
//! The same run sends again the message of every stamp job left unfinished
//! without news for too long (a message lost between an accept and the
//! queue), so no stamp stays reserved for ever, and puts how many webhook
//! events wait in their dead-letter queue (`webhooks_dead_letters_waiting`)
//! for the operators' alarm.

use crate::App;

/// The function: it asks the gateway, and emits a reseller's `order.paid`.
pub const FUNCTION: crate::lambda::Scheduled = crate::lambda::Scheduled {
    needs: crate::config::Needs {
        payment_gateway: true,
        events: true,
        event_dead_letters: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// Checks in flight at once: the gateway answers in tens of milliseconds,
/// so eight get through a few thousand orders a minute without pressing it.
const CONCURRENCY: usize = 8;
/// No check starts after this much of a run: the function's timeout is 60 s
/// and one check may wait 8 s for the gateway.
const BUDGET_MS: i64 = 45_000;
/// Unfinished jobs sent again per run, at most (each is one read, one send
/// and one write; a lost message is rare).
const RESEND_BATCH: usize = 200;

/// One scheduled run; its report is the function's answer (and its log).
pub fn handle(app: &'static App, _event: serde_json::Value) -> crate::lambda::Run {
    Box::pin(async move {
        let limits = meterai_app::payments::ReconcileLimits {
            grace_ms: i64::try_from(app.config.settle_after.as_millis()).unwrap_or(i64::MAX),
            batch: app.config.settle_batch,
            concurrency: CONCURRENCY,
            budget_ms: BUDGET_MS,
        };
        // Both every run: one failing does not hold back the other.
        let (payments, stamping) = (app.payment_ports(), app.stamp_ports());
        let (orders, jobs, parked) = tokio::join!(
            meterai_app::payments::reconcile(&payments, limits),
            meterai_app::stamping::resend_unfinished(&stamping, RESEND_BATCH),
            put_parked_webhooks(app),
        );
        Ok(
            serde_json::json!({ "orders": orders?, "jobs_resent": jobs?, "webhooks_dead_letters_waiting": parked }),
        )
    })
}

/// Puts the webhook events waiting in their dead-letter queue (the replay is
/// an operator's act, so the number stays until someone acts). A failure is
/// logged and answered as `null`: the run's other work stands.
async fn put_parked_webhooks(app: &App) -> Option<i64> {
    let queue_url = app.config.webhooks_dead_letter_queue_url.as_deref()?;
    let put = async {
        let waiting = crate::aws::messages_waiting(&app.clients, queue_url).await?;
        let gauge = crate::metrics::count("webhooks_dead_letters_waiting", waiting.max(0) as u64);
        crate::metrics::put(&app.clients, vec![gauge]).await?;
        Ok::<_, crate::Error>(waiting)
    };
    put.await
        .inspect_err(|e| tracing::warn!(error = %e, "webhooks_dead_letters_waiting not put"))
        .ok()
}
