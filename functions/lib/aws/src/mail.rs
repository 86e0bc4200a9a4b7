//! Portal users' e-mail: queued by the outbox in the path that caused it
//! (`queue`), sent later by the mailer function (`deliver`): the user's
//! address from the user pool, the message rendered by
//! `meterai_core::mail`, sent by SES. A failed send is retried by the queue
//! and never touches quota.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use meterai_core::events::{event_id, EventType};
use meterai_core::AccountId;
use serde::{Deserialize, Serialize};

use crate::error::{Dependency, Error, Result};
use crate::keys;
use crate::store::{n, s};
use crate::AwsClients;

/// Kept a week: long enough to absorb the queue's redeliveries.
const SENT_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// One e-mail waiting on the mail queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MailMessage {
    /// The event's id (of kind and reference): one e-mail per event,
    /// however often it is queued.
    pub mail_id: String,
    pub account: String,
    pub kind: EventType,
    pub data: serde_json::Value,
}

/// Queues the e-mail of `kind` about `reference` to the user `account`.
pub async fn queue(
    clients: &AwsClients,
    queue_url: &str,
    account: &AccountId,
    kind: EventType,
    reference: &str,
    data: serde_json::Value,
) -> Result<()> {
    let message = MailMessage {
        mail_id: event_id(kind, reference),
        account: account.as_str().to_string(),
        kind,
        data,
    };
    clients
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(serde_json::to_string(&message).expect("a mail message serializes"))
        .send()
        .await
        .map_err(|e| Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    tracing::info!(mail_id = %message.mail_id, kind = kind.as_str(), "e-mail queued");
    Ok(())
}

/// Where the mailer sends from and links to.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub table: String,
    pub user_pool_id: String,
    pub from: String,
    pub portal_url: String,
}

/// What became of one queued e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// Sent before (a redelivered message).
    AlreadySent,
    /// The user has no e-mail address (signed up by phone) or is gone.
    NoAddress,
}

/// How long a mailer holds its claim on a message: longer than the mailer
/// may run (20 s), shorter than the queue hides a message (60 s), so a
/// redelivery after a crash always finds the claim lapsed.
const CLAIM_MS: i64 = 40_000;

/// Sends one queued e-mail, once. Before sending, the message is claimed in
/// the table (a conditional put): of two mailers holding the same message
/// (the queue delivers at least once) only one sends; the other is told to
/// try later and finds it sent. The claim becomes "sent" once SES took the
/// message; a mailer that dies in between leaves a claim that lapses. Only
/// that crash can send a message twice.
pub async fn deliver(
    clients: &AwsClients,
    settings: &MailSettings,
    body: &str,
) -> Result<Delivered> {
    let message: MailMessage = serde_json::from_str(body)
        .map_err(|e| Error::Misconfigured(format!("mail message is not understood: {e}")))?;
    let key = keys::mail_sent(&message.mail_id);
    let now_ms = meterai_core::time::now_ms();
    match claim(clients, settings, &key, now_ms).await? {
        Claim::Ours => {}
        Claim::Done => return Ok(Delivered::AlreadySent),
        Claim::Held => {
            return Err(Error::unavailable(
                Dependency::Mail,
                "another mailer is sending this message",
            ))
        }
    }
    let rendered = match address_of(clients, &settings.user_pool_id, &message.account).await {
        Ok(Some(address)) => {
            meterai_core::mail::render(message.kind, &message.data, &settings.portal_url)
                .map(|mail| (address, mail))
        }
        Ok(None) => None,
        Err(e) => {
            release(clients, settings, &key, now_ms).await;
            return Err(e);
        }
    };
    let Some((address, mail)) = rendered else {
        tracing::info!(mail_id = %message.mail_id, "no e-mail address; nothing sent");
        finish(clients, settings, &key, message.kind, MailState::NoAddress).await?;
        return Ok(Delivered::NoAddress);
    };
    let content = |text: &str| {
        Content::builder()
            .data(text)
            .charset("UTF-8")
            .build()
            .expect("content is complete")
    };
    let sent = clients
        .ses
        .send_email()
        .from_email_address(&settings.from)
        .destination(Destination::builder().to_addresses(&address).build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content(&mail.subject))
                        .body(Body::builder().text(content(&mail.text)).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    if let Err(e) = sent {
        release(clients, settings, &key, now_ms).await;
        return Err(Error::unavailable(
            Dependency::Mail,
            aws_sdk_sesv2::error::DisplayErrorContext(e),
        ));
    }
    finish(clients, settings, &key, message.kind, MailState::Sent).await?;
    tracing::info!(mail_id = %message.mail_id, kind = message.kind.as_str(), "e-mail sent");
    Ok(Delivered::Sent)
}

/// Where a message's record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MailState {
    /// Claimed by a mailer until `lease_until`.
    Sending,
    Sent,
    NoAddress,
}

impl MailState {
    fn as_str(self) -> &'static str {
        match self {
            MailState::Sending => "sending",
            MailState::Sent => "sent",
            MailState::NoAddress => "no_address",
        }
    }
}

/// What claiming a message found.
enum Claim {
    /// This mailer may send it.
    Ours,
    /// Sent (or settled) before.
    Done,
    /// Another mailer's claim has not lapsed.
    Held,
}

async fn claim(
    clients: &AwsClients,
    settings: &MailSettings,
    key: &keys::Key,
    now_ms: i64,
) -> Result<Claim> {
    let now_s = now_ms / 1000;
    let put = clients
        .dynamodb
        .put_item()
        .table_name(&settings.table)
        .set_item(Some(key.with([
            ("state".to_string(), s(MailState::Sending.as_str())),
            ("lease_until".to_string(), n(now_ms + CLAIM_MS)),
            ("expires_at".to_string(), n(now_s + SENT_TTL_SECONDS)),
        ])))
        .condition_expression(
            "attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":sending", s(MailState::Sending.as_str()))
        .expression_attribute_values(":now", n(now_ms))
        .send()
        .await;
    if crate::store::condition_held(put)? {
        return Ok(Claim::Ours);
    }
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&settings.table)
        .set_key(Some(key.map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?
        .item;
    let sending = item.as_ref().and_then(|i| crate::store::get_s(i, "state"))
        == Some(MailState::Sending.as_str());
    Ok(if sending { Claim::Held } else { Claim::Done })
}

/// Gives a claim back after a failed attempt, so the queue's next delivery
/// need not wait for it to lapse. Best effort: a lapsed claim does the same.
async fn release(clients: &AwsClients, settings: &MailSettings, key: &keys::Key, claimed_ms: i64) {
    let result = clients
        .dynamodb
        .delete_item()
        .table_name(&settings.table)
        .set_key(Some(key.map()))
        .condition_expression("#state = :sending AND lease_until = :lease")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":sending", s(MailState::Sending.as_str()))
        .expression_attribute_values(":lease", n(claimed_ms + CLAIM_MS))
        .send()
        .await;
    if let Err(e) = crate::store::condition_held(result) {
        tracing::warn!(error = %e, "mail claim not released; it lapses");
    }
}

/// Records how the message ended; it is not sent again.
async fn finish(
    clients: &AwsClients,
    settings: &MailSettings,
    key: &keys::Key,
    kind: EventType,
    state: MailState,
) -> Result<()> {
    let now_s = meterai_core::time::now_ms() / 1000;
    clients
        .dynamodb
        .put_item()
        .table_name(&settings.table)
        .set_item(Some(key.with([
            ("state".to_string(), s(state.as_str())),
            ("sent_at".to_string(), n(now_s)),
            ("kind".to_string(), s(kind.as_str())),
            ("expires_at".to_string(), n(now_s + SENT_TTL_SECONDS)),
        ])))
        .send()
        .await
        .map_err(|e| Error::table(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// The user's verified e-mail address, if they have one. With e-mail or
/// phone as the sign-in name, the pool's user name is the user's `sub`.
async fn address_of(clients: &AwsClients, pool: &str, account: &str) -> Result<Option<String>> {
    let user = clients
        .cognito
        .admin_get_user()
        .user_pool_id(pool)
        .username(account)
        .send()
        .await;
    let user = match user {
        Ok(user) => user,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_user_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(Error::unavailable(
                Dependency::IdentityProvider,
                aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e),
            ))
        }
    };
    let attribute = |name: &str| {
        user.user_attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    Ok(attribute("email").filter(|_| attribute("email_verified").as_deref() != Some("false")))
}
