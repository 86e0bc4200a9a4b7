//! Payment-gateway notification rules: a raw notification becomes a verified
//! [`PaymentNotice`] behind the small [`PaymentGateway`] trait; [`Midtrans`]
//! implements its documented HTTP notification (signature formula, amounts,
//! what each transaction status means). What is done with a notice (matching
//! the order, crediting exactly once, recording) is the same for every gateway.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{codes, Error, Result};
use crate::orders::OrderStatus;

/// What the gateway says happened to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Money received: credit the order.
    Paid,
    /// Still waiting (or under fraud review): change nothing.
    Pending,
    /// The payment will not happen: close a pending order.
    Closed(OrderStatus),
    /// Money went back through the gateway (its own refund): recorded; our
    /// refunds go through `POST /v1/orders/{id}/refund`.
    Ignored,
    /// A chargeback: the buyer's bank took the money back. Recorded and
    /// alerted for an operator (the stamps may have been spent); never
    /// silently ignored, never an automatic debit of quota.
    Chargeback,
}

/// A verified notification, whatever the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotice {
    pub gateway: &'static str,
    pub order_id: String,
    pub transaction_id: String,
    /// Whole rupiah.
    pub amount: i64,
    pub status: PaymentStatus,
    /// The gateway's own words, for the event record.
    pub raw_status: String,
    /// How the buyer paid (`qris`, `bank_transfer`, `cstore`, ...), if known.
    pub payment_type: String,
}

pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Authenticates a notification body and returns the order it names:
    /// all a notification is trusted for. Its status and amount are only
    /// hints (Midtrans' signature does not cover `transaction_status`), so
    /// they are not even parsed: an unknown status or an odd amount in a
    /// signed notification still makes us ask the gateway.
    fn verify(&self, body: &[u8]) -> Result<String>;
}

/// Midtrans HTTP notification (Snap / Core API).
#[derive(Clone)]
pub struct Midtrans {
    server_key: String,
}

impl std::fmt::Debug for Midtrans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Midtrans { .. }")
    }
}

/// The fields of a Midtrans notification that we use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MidtransNotification {
    pub order_id: String,
    pub status_code: String,
    pub gross_amount: String,
    pub transaction_status: String,
    #[serde(default)]
    pub fraud_status: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    pub signature_key: String,
}

impl Midtrans {
    pub fn new(server_key: impl Into<String>) -> Self {
        Self {
            server_key: server_key.into(),
        }
    }

    /// `hex(SHA-512(order_id + status_code + gross_amount + server_key))`, as
    /// Midtrans documents it.
    pub fn signature(&self, order_id: &str, status_code: &str, gross_amount: &str) -> String {
        let mut hasher = Sha512::new();
        for part in [order_id, status_code, gross_amount, &self.server_key] {
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// A correctly signed notification (the local payment simulator uses it).
    pub fn notification(
        &self,
        order_id: &str,
        transaction_status: &str,
        gross_amount: i64,
        transaction_id: &str,
    ) -> MidtransNotification {
        let status_code = match transaction_status {
            "settlement" | "capture" => "200",
            "pending" => "201",
            _ => "202",
        };
        let gross_amount = format!("{gross_amount}.00");
        MidtransNotification {
            signature_key: self.signature(order_id, status_code, &gross_amount),
            order_id: order_id.to_string(),
            status_code: status_code.to_string(),
            gross_amount,
            transaction_status: transaction_status.to_string(),
            fraud_status: Some("accept".to_string()),
            transaction_id: Some(transaction_id.to_string()),
        }
    }
}

/// What a Midtrans transaction status (and fraud status) means for an order.
pub fn status_of(transaction_status: &str, fraud_status: Option<&str>) -> Result<PaymentStatus> {
    let fraud = fraud_status.unwrap_or("accept");
    Ok(match transaction_status {
        "settlement" => PaymentStatus::Paid,
        "capture" if fraud == "accept" => PaymentStatus::Paid,
        // A card payment under fraud review: wait for the gateway's decision.
        "capture" | "pending" | "authorize" => PaymentStatus::Pending,
        "expire" => PaymentStatus::Closed(OrderStatus::Expired),
        "cancel" => PaymentStatus::Closed(OrderStatus::Cancelled),
        "deny" | "failure" => PaymentStatus::Closed(OrderStatus::Denied),
        "refund" | "partial_refund" => PaymentStatus::Ignored,
        "chargeback" | "partial_chargeback" => PaymentStatus::Chargeback,
        other => {
            return Err(Error::invalid(
                codes::UNKNOWN_TRANSACTION_STATUS,
                format!("unknown transaction_status {other:?}"),
            ))
        }
    })
}

/// How much later than the next run a pending order is looked at again,
/// by its age: a buyer paying now is checked every run; an order left for
/// hours (a virtual account paid tomorrow, or never) every ten minutes, then
/// hourly. Old orders cannot crowd out new ones however many pile up.
pub fn recheck_delay_ms(age_ms: i64) -> i64 {
    const HOUR: i64 = 3_600_000;
    match age_ms {
        a if a < HOUR => 0,
        a if a < 24 * HOUR => 10 * 60_000,
        _ => HOUR,
    }
}

/// The gateway's answer to "what happened to this order's payment?"
/// (Midtrans `GET /v2/{order_id}/status`), the fields we act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct GatewayStatus {
    pub status_code: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub transaction_status: Option<String>,
    #[serde(default)]
    pub fraud_status: Option<String>,
    #[serde(default)]
    pub gross_amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub payment_type: Option<String>,
}

/// The `raw_status` of an order the gateway has no transaction for (the
/// buyer has not chosen how to pay).
pub const NO_TRANSACTION: &str = "not_found";

/// Judges the gateway's status answer for an order of `total` rupiah: the
/// only thing a credit or a close is ever based on (a notification's body is
/// a hint to ask, never the answer). Status code, transaction status, fraud
/// status, order id, amount and currency must all agree, or nothing is done.
pub fn judge(order_id: &str, total: i64, answer: &GatewayStatus) -> Result<PaymentNotice> {
    // 404: the buyer has not chosen a payment method yet.
    if answer.status_code == "404" {
        return Ok(PaymentNotice {
            gateway: "midtrans",
            order_id: order_id.to_string(),
            transaction_id: String::new(),
            amount: total,
            status: PaymentStatus::Pending,
            raw_status: NO_TRANSACTION.into(),
            payment_type: String::new(),
        });
    }
    let disagree = |what: &str| {
        Error::rejected(
            codes::GATEWAY_STATUS_INCONSISTENT,
            format!("the gateway's status answer is inconsistent: {what}"),
        )
    };
    if answer.order_id.as_deref() != Some(order_id) {
        return Err(disagree("another order"));
    }
    let raw = answer
        .transaction_status
        .as_deref()
        .ok_or_else(|| disagree("no transaction_status"))?;
    let status = status_of(raw, answer.fraud_status.as_deref())?;
    let expected_code = match status {
        PaymentStatus::Paid | PaymentStatus::Ignored | PaymentStatus::Chargeback => "200",
        PaymentStatus::Pending if raw == "pending" => "201",
        PaymentStatus::Pending => "201|200",
        PaymentStatus::Closed(_) => "200|202|407",
    };
    if !expected_code.split('|').any(|c| c == answer.status_code) {
        return Err(disagree("status_code does not match transaction_status"));
    }
    if answer.currency.as_deref().unwrap_or("IDR") != "IDR" {
        return Err(Error::rejected(
            codes::AMOUNT_MISMATCH,
            "the payment is not in rupiah",
        ));
    }
    let amount = answer
        .gross_amount
        .as_deref()
        .and_then(parse_rupiah)
        .ok_or_else(|| disagree("gross_amount is not a rupiah amount"))?;
    if amount != total {
        return Err(Error::rejected(
            codes::AMOUNT_MISMATCH,
            format!("paid {amount} but order {order_id} costs {total}"),
        ));
    }
    Ok(PaymentNotice {
        gateway: "midtrans",
        order_id: order_id.to_string(),
        transaction_id: answer.transaction_id.clone().unwrap_or_default(),
        amount,
        status,
        raw_status: raw.to_string(),
        payment_type: answer.payment_type.clone().unwrap_or_default(),
    })
}

/// Parses Midtrans's decimal string ("150000.00") into whole rupiah; a
/// fraction other than zero is not an amount we could have asked for.
pub fn parse_rupiah(raw: &str) -> Option<i64> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b == b'0')
    {
        return None;
    }
    whole.parse().ok()
}

impl PaymentGateway for Midtrans {
    fn name(&self) -> &'static str {
        "midtrans"
    }

    fn verify(&self, body: &[u8]) -> Result<String> {
        let note: MidtransNotification = serde_json::from_slice(body).map_err(|e| {
            Error::invalid(
                codes::INVALID_JSON,
                format!("not a Midtrans notification: {e}"),
            )
        })?;
        let expected = self.signature(&note.order_id, &note.status_code, &note.gross_amount);
        let given = note.signature_key.to_ascii_lowercase();
        if given.is_empty() || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(Error::unauthenticated(
                codes::INVALID_SIGNATURE,
                "signature_key does not match",
            ));
        }
        Ok(note.order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway() -> Midtrans {
        Midtrans::new("SB-Mid-server-test")
    }

    fn body(note: &MidtransNotification) -> Vec<u8> {
        serde_json::to_vec(note).unwrap()
    }

    #[test]
    fn signature_follows_the_documented_formula() {
        // sha512("ord_1" + "200" + "10000.00" + "SB-Mid-server-test")
        let mut h = Sha512::new();
        h.update(b"ord_120010000.00SB-Mid-server-test");
        assert_eq!(
            gateway().signature("ord_1", "200", "10000.00"),
            hex::encode(h.finalize())
        );
    }

    #[test]
    fn a_signed_notification_is_trusted_for_its_order_id_only() {
        let note = gateway().notification("ord_1", "settlement", 30_000, "tx-1");
        assert_eq!(gateway().verify(&body(&note)).unwrap(), "ord_1");
        // A status we do not know is still a reason to ask the gateway.
        let odd = gateway().notification("ord_2", "teleported", 10_000, "tx");
        assert_eq!(gateway().verify(&body(&odd)).unwrap(), "ord_2");
    }

    #[test]
    fn what_each_status_means() {
        let cases = [
            ("settlement", None, PaymentStatus::Paid),
            ("capture", Some("accept"), PaymentStatus::Paid),
            ("capture", Some("challenge"), PaymentStatus::Pending),
            ("pending", None, PaymentStatus::Pending),
            ("expire", None, PaymentStatus::Closed(OrderStatus::Expired)),
            (
                "cancel",
                None,
                PaymentStatus::Closed(OrderStatus::Cancelled),
            ),
            ("deny", None, PaymentStatus::Closed(OrderStatus::Denied)),
            ("failure", None, PaymentStatus::Closed(OrderStatus::Denied)),
            ("refund", None, PaymentStatus::Ignored),
            ("partial_refund", None, PaymentStatus::Ignored),
            ("chargeback", None, PaymentStatus::Chargeback),
        ];
        for (status, fraud, expected) in cases {
            assert_eq!(status_of(status, fraud).unwrap(), expected, "{status}");
        }
    }

    #[test]
    fn forged_or_empty_signatures_are_rejected() {
        let mut note = gateway().notification("ord_1", "settlement", 10_000, "tx");
        note.gross_amount = "1000000.00".into(); // amount changed after signing
        assert_eq!(
            gateway().verify(&body(&note)).unwrap_err().code(),
            codes::INVALID_SIGNATURE
        );
        note.signature_key = String::new();
        assert_eq!(
            gateway().verify(&body(&note)).unwrap_err().code(),
            codes::INVALID_SIGNATURE
        );
        let other_key =
            Midtrans::new("another-key").notification("ord_1", "settlement", 10_000, "tx");
        let err = gateway().verify(&body(&other_key)).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_SIGNATURE);
        assert_eq!(err.kind(), crate::ErrorKind::Unauthenticated);
    }

    #[test]
    fn unknown_status_and_bad_json_are_4xx() {
        let err = status_of("teleported", None).unwrap_err();
        assert_eq!(err.code(), codes::UNKNOWN_TRANSACTION_STATUS);
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        assert_eq!(
            gateway().verify(b"{not json").unwrap_err().code(),
            codes::INVALID_JSON
        );
        assert_eq!(
            gateway().verify(br#"{"order_id":"x"}"#).unwrap_err().code(),
            codes::INVALID_JSON
        );
    }

    fn answer(status: &str, code: &str, amount: &str) -> GatewayStatus {
        GatewayStatus {
            status_code: code.into(),
            order_id: Some("ord_1".into()),
            transaction_status: Some(status.into()),
            fraud_status: Some("accept".into()),
            gross_amount: Some(amount.into()),
            currency: Some("IDR".into()),
            transaction_id: Some("tx-1".into()),
            payment_type: Some("qris".into()),
        }
    }

    #[test]
    fn the_status_answer_decides_and_must_agree_with_itself() {
        let paid = judge("ord_1", 30_000, &answer("settlement", "200", "30000.00")).unwrap();
        assert_eq!(paid.status, PaymentStatus::Paid);
        assert_eq!(paid.transaction_id, "tx-1");
        let mut challenged = answer("capture", "200", "30000.00");
        challenged.fraud_status = Some("challenge".into());
        assert_eq!(
            judge("ord_1", 30_000, &challenged).unwrap().status,
            PaymentStatus::Pending
        );
        for (status, code, expected) in [
            ("pending", "201", PaymentStatus::Pending),
            ("expire", "407", PaymentStatus::Closed(OrderStatus::Expired)),
            (
                "cancel",
                "202",
                PaymentStatus::Closed(OrderStatus::Cancelled),
            ),
            ("deny", "202", PaymentStatus::Closed(OrderStatus::Denied)),
            ("failure", "202", PaymentStatus::Closed(OrderStatus::Denied)),
            ("refund", "200", PaymentStatus::Ignored),
            ("partial_refund", "200", PaymentStatus::Ignored),
            ("chargeback", "200", PaymentStatus::Chargeback),
        ] {
            let judged = judge("ord_1", 30_000, &answer(status, code, "30000.00")).unwrap();
            assert_eq!(judged.status, expected, "{status}");
        }
        let unknown = GatewayStatus {
            status_code: "404".into(),
            ..GatewayStatus::default()
        };
        assert_eq!(
            judge("ord_1", 30_000, &unknown).unwrap().status,
            PaymentStatus::Pending
        );
    }

    #[test]
    fn a_disagreeing_answer_credits_nothing() {
        let mismatch = [
            (
                "settlement",
                "201",
                "30000.00",
                codes::GATEWAY_STATUS_INCONSISTENT,
            ),
            ("settlement", "200", "3000.00", codes::AMOUNT_MISMATCH),
            (
                "settlement",
                "200",
                "30000.50",
                codes::GATEWAY_STATUS_INCONSISTENT,
            ),
        ];
        for (status, code, amount, expected) in mismatch {
            let err = judge("ord_1", 30_000, &answer(status, code, amount)).unwrap_err();
            assert_eq!(err.code(), expected, "{status} {code} {amount}");
        }
        let mut dollars = answer("settlement", "200", "30000.00");
        dollars.currency = Some("USD".into());
        assert_eq!(
            judge("ord_1", 30_000, &dollars).unwrap_err().code(),
            codes::AMOUNT_MISMATCH
        );
        let mut other = answer("settlement", "200", "30000.00");
        other.order_id = Some("ord_2".into());
        assert_eq!(
            judge("ord_1", 30_000, &other).unwrap_err().code(),
            codes::GATEWAY_STATUS_INCONSISTENT
        );
    }

    #[test]
    fn rupiah_amounts() {
        assert_eq!(parse_rupiah("150000.00"), Some(150_000));
        assert_eq!(parse_rupiah("150000"), Some(150_000));
        assert_eq!(parse_rupiah("150000.50"), None);
        assert_eq!(parse_rupiah("-5.00"), None);
        assert_eq!(parse_rupiah("1e5"), None);
        assert_eq!(parse_rupiah(""), None);
    }
}
