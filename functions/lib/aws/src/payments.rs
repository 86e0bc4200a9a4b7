//! The record of every payment notification (`PAYMENT#{order}` /
//! `EVENT#{ms}#{nonce}`, kept 90 days): the DynamoDB adapter of
//! `meterai_app::ports::PaymentLog`. What a notification does is the use
//! case `meterai_app::payments`; the gateway's rules are `meterai_core::payments`.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use meterai_app::ports::{PaymentLog, PaymentRecord};

use crate::keys;
use crate::store::{n, s};
use crate::AwsClients;

pub use meterai_core::payments::{
    parse_rupiah, Midtrans, MidtransNotification, PaymentGateway, PaymentNotice, PaymentStatus,
};

/// How long a notification's record is kept.
const RECORD_TTL_SECONDS: i64 = 90 * 24 * 3600;

/// The payment records of one table.
#[derive(Debug, Clone)]
pub struct DynamoPaymentLog {
    pub clients: AwsClients,
    pub table: String,
}

#[async_trait]
impl PaymentLog for DynamoPaymentLog {
    async fn record(&self, record: &PaymentRecord) {
        let now = record.received_ms;
        let key = keys::payment_notification(&record.order_id, now, &meterai_core::ids::nonce());
        let mut item = key.with([
            ("gateway".to_string(), s(record.gateway)),
            ("outcome".to_string(), s(&record.outcome)),
            (
                "signature_valid".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::Bool(record.signature_valid),
            ),
            ("received_at".to_string(), n(now)),
            ("expires_at".to_string(), n(now / 1000 + RECORD_TTL_SECONDS)),
        ]);
        for (field, value) in &record.fields {
            item.insert(field.to_string(), s(value));
        }
        if let Err(e) = self
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
        {
            tracing::error!(order_id = %record.order_id, error = %DisplayErrorContext(e), "could not record the payment event");
        }
    }
}
