//! Run on a schedule (EventBridge): every order still pending a few minutes
//! after it was created is checked with the gateway and, if paid, credited
//! exactly once by the same path as a notification. "Paid, but the quota
//! stayed 0" cannot outlast one run after the gateway answers.

use crate::App;

/// The function: it asks the gateway, and emits a reseller's `order.paid`.
pub const FUNCTION: crate::lambda::Scheduled = crate::lambda::Scheduled {
    needs: crate::config::Needs {
        payment_gateway: true,
        events: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One scheduled run; its report is the function's answer (and its log).
pub fn handle(app: &'static App, _event: serde_json::Value) -> crate::lambda::Run {
    Box::pin(async move {
        let grace_ms = i64::try_from(app.config.settle_after.as_millis()).unwrap_or(i64::MAX);
        let report = meterai_app::payments::reconcile(
            &app.payment_ports(),
            grace_ms,
            app.config.settle_batch,
        )
        .await?;
        Ok(serde_json::to_value(report).unwrap_or_default())
    })
}
