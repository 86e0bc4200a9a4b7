//! The payment gateway over HTTP: Midtrans Snap (open a payment page) and
//! the Core API's status (`GET /v2/{order_id}/status`). The same code talks
//! to the sandbox, production or the local simulator; only the two base URLs
//! differ (`MIDTRANS_SNAP_URL`, `MIDTRANS_API_URL`).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use meterai_app::ports::Gateway;
use meterai_core::orders::{Order, PaymentLink};
use meterai_core::payments::GatewayStatus;

use crate::error::{Dependency, Error, Result};

/// Payment methods offered on the payment page: QRIS, the banks' virtual
/// accounts and the convenience stores.
const ENABLED_PAYMENTS: [&str; 9] = [
    "other_qris",
    "gopay",
    "bca_va",
    "bni_va",
    "bri_va",
    "permata_va",
    "echannel",
    "indomaret",
    "alfamart",
];

/// A gateway answer is small; anything larger is not the gateway.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Midtrans, as configured for this stage.
#[derive(Clone)]
pub struct MidtransGateway {
    http: reqwest::Client,
    server_key: String,
    snap_url: String,
    api_url: String,
    finish_url: Option<String>,
}

impl std::fmt::Debug for MidtransGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MidtransGateway")
            .field("snap_url", &self.snap_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

fn unavailable(detail: impl std::fmt::Display) -> Error {
    Error::unavailable(Dependency::PaymentGateway, detail)
}

impl MidtransGateway {
    pub fn new(server_key: &str, snap_url: &str, api_url: &str, timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("HTTP client builds"),
            server_key: server_key.to_string(),
            snap_url: snap_url.trim_end_matches('/').to_string(),
            api_url: api_url.trim_end_matches('/').to_string(),
            finish_url: None,
        }
    }

    /// Where the payment page sends the buyer when they are done: the
    /// portal's page of the order (`{portal}/#/pesanan/{order}`).
    pub fn finishing_at(mut self, portal_url: &str) -> Self {
        let portal = portal_url.trim_end_matches('/');
        self.finish_url = (!portal.is_empty()).then(|| portal.to_string());
        self
    }

    /// Midtrans authenticates us by HTTP Basic with the server key as the user.
    fn authorization(&self) -> String {
        let credential =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.server_key));
        format!("Basic {credential}")
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<(u16, serde_json::Value)> {
        let mut response = request
            .header("authorization", self.authorization())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unavailable(format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("answer failed: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(unavailable("answer is too large"));
            }
            body.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&body)
            .map_err(|_| unavailable(format!("answer {status} is not JSON")))?;
        Ok((status, json))
    }
}

#[async_trait]
impl Gateway for MidtransGateway {
    async fn open_payment(&self, order: &Order) -> Result<PaymentLink> {
        let mut body = serde_json::json!({
            "transaction_details": {
                "order_id": order.order_id,
                "gross_amount": order.total,
            },
            "item_details": [{
                "id": "e-meterai",
                "name": "e-Meterai Rp10.000",
                "price": order.unit_price,
                "quantity": order.quantity,
            }],
            "enabled_payments": ENABLED_PAYMENTS,
            // The window starts when the order did, not when Snap got the
            // request (a page opened late must not outlive the order), and
            // holds for every method: an unused virtual account closes too.
            "expiry": {
                "start_time": meterai_core::time::midtrans_time(order.created_ms),
                "unit": "minute",
                "duration": (order.pay_by_ms - order.created_ms) / 60_000,
            },
        });
        if let Some(portal) = &self.finish_url {
            body["callbacks"] =
                serde_json::json!({ "finish": format!("{portal}/#/pesanan/{}", order.order_id) });
        }
        let url = format!("{}/snap/v1/transactions", self.snap_url);
        let (status, answer) = self.json(self.http.post(url).json(&body)).await?;
        let text = |name: &str| {
            answer
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        match (status, text("token"), text("redirect_url")) {
            (200 | 201, Some(token), Some(redirect_url)) => Ok(PaymentLink {
                token,
                redirect_url,
            }),
            _ => Err(unavailable(format!(
                "Snap answered {status} without a token"
            ))),
        }
    }

    async fn status(&self, order_id: &str) -> Result<GatewayStatus> {
        let url = format!("{}/v2/{order_id}/status", self.api_url);
        let (status, answer) = self.json(self.http.get(url)).await?;
        if status == 401 || status == 403 {
            return Err(Error::Misconfigured(
                "the payment gateway refused our server key".into(),
            ));
        }
        if status >= 500 {
            return Err(unavailable(format!("status API answered {status}")));
        }
        let parsed: GatewayStatus = serde_json::from_value(answer)
            .map_err(|e| unavailable(format!("status answer is not understood: {e}")))?;
        // Midtrans puts its own code in the body; a 5xx there is its outage.
        if parsed.status_code.starts_with('5') {
            return Err(unavailable(format!(
                "status API says {}",
                parsed.status_code
            )));
        }
        Ok(parsed)
    }
}
