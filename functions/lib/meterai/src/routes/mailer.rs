//! Subscribed to the mail queue: each message is one e-mail to a portal
//! user, sent once by SES (see `meterai_aws::mail`). A message that could
//! not be sent is reported back and comes again; after the queue's last
//! receive it waits in the mail dead-letter queue. Quota is never touched.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::Instrument;

use crate::App;

/// The function: it needs the sender address and the user pool.
pub const FUNCTION: crate::lambda::Queue = crate::lambda::Queue {
    needs: crate::config::Needs {
        mail: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One batch of e-mails.
pub fn handle(
    app: &'static App,
    event: SqsEvent,
    _deadline: std::time::Instant,
) -> crate::lambda::BatchAnswer {
    Box::pin(async move {
        let settings = meterai_aws::mail::MailSettings {
            table: app.config.table_name.clone(),
            user_pool_id: app.config.user_pool_id.clone().unwrap_or_default(),
            from: app.config.mail_from.clone().unwrap_or_default(),
            portal_url: app.config.portal_url.clone().unwrap_or_default(),
        };
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let message_id = message.message_id.clone().unwrap_or_default();
            let span = tracing::info_span!("mail", message_id = %message_id);
            let body = message.body.as_deref().unwrap_or("");
            let result = meterai_aws::mail::deliver(&app.clients, &settings, body)
                .instrument(span.clone())
                .await;
            match result {
                Ok(_) => {}
                // A message no mailer can read would only come back: logged, dropped.
                Err(crate::Error::Misconfigured(e)) if e.starts_with("mail message") => {
                    span.in_scope(|| tracing::error!(error = %e, "poison mail message dropped"));
                }
                Err(e) => {
                    span.in_scope(
                        || tracing::warn!(error = %e, "e-mail not sent; it will be retried"),
                    );
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = message_id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        response
    })
}
