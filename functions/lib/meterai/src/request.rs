//! Request bodies: bounded, parsed, and refused with a stable code when they
//! are not what a route reads.

use meterai_core::orders::OrderRules;

use crate::error::{codes, Error, Result};

/// Largest JSON body the API reads (larger ones are 413).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Parses a JSON body of at most [`JSON_BODY_LIMIT`] bytes.
pub fn json_body(bytes: &[u8]) -> Result<serde_json::Value> {
    if bytes.len() > JSON_BODY_LIMIT {
        return Err(Error::too_large(
            codes::PAYLOAD_TOO_LARGE,
            format!(
                "body is {} bytes; the limit is {JSON_BODY_LIMIT}",
                bytes.len()
            ),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(codes::INVALID_JSON, format!("body is not valid JSON: {e}")))
}

/// A JSON body that must be an object with no fields but `allowed` (unknown
/// fields are refused, as Stripe does, rather than silently ignored).
pub fn json_object<'a>(
    body: &'a serde_json::Value,
    allowed: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    let object = body
        .as_object()
        .ok_or_else(|| Error::invalid(codes::BAD_REQUEST, "body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid(
            codes::BAD_REQUEST,
            format!("unknown field {unknown:?}"),
        ));
    }
    Ok(object)
}

/// Validates the body of `POST /v1/orders`: `{"quantity": n}`, 1 <= n <= max.
pub fn order_quantity(body: &serde_json::Value, rules: &OrderRules) -> Result<i64> {
    let object = json_object(body, &["quantity"])?;
    rules.check_quantity(object.get("quantity").and_then(|q| q.as_i64()))
}

/// Validates the optional body of a refund: `{}` (refund every unused stamp)
/// or `{"quantity": n}` with n >= 1.
pub fn refund_quantity(body: &serde_json::Value) -> Result<Option<i64>> {
    let object = json_object(body, &["quantity"])?;
    match object.get("quantity") {
        None => Ok(None),
        Some(q) => q.as_i64().filter(|q| *q >= 1).map(Some).ok_or_else(|| {
            Error::invalid(
                codes::INVALID_QUANTITY,
                "quantity must be a whole number of at least 1",
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::status_of;
    use serde_json::json;

    #[test]
    fn json_bodies_are_bounded_and_parsed() {
        assert_eq!(json_body(br#"{"quantity":1}"#).unwrap()["quantity"], 1);
        let err = json_body(b"{nope").unwrap_err();
        assert_eq!((status_of(&err), err.code()), (400, codes::INVALID_JSON));
        let err = json_body(b"").unwrap_err();
        assert_eq!(err.code(), codes::INVALID_JSON);
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(JSON_BODY_LIMIT));
        let err = json_body(big.as_bytes()).unwrap_err();
        assert_eq!(
            (status_of(&err), err.code()),
            (413, codes::PAYLOAD_TOO_LARGE)
        );
    }

    #[test]
    fn quantity_must_be_a_whole_number_in_range() {
        let rules = OrderRules::default();
        assert_eq!(order_quantity(&json!({"quantity": 3}), &rules).unwrap(), 3);
        assert_eq!(
            order_quantity(&json!({"quantity": 1000}), &rules).unwrap(),
            1000
        );
        for bad in [
            json!({"quantity": 0}),
            json!({"quantity": -1}),
            json!({"quantity": 1.5}),
            json!({"quantity": "3"}),
            json!({"quantity": 1001}),
            json!({}),
            json!({"quantity": null}),
        ] {
            let err = order_quantity(&bad, &rules).unwrap_err();
            assert_eq!(err.code(), codes::INVALID_QUANTITY, "{bad}");
            assert_eq!(status_of(&err), 400);
        }
        assert_eq!(
            order_quantity(&json!([1]), &rules).unwrap_err().code(),
            codes::BAD_REQUEST
        );
        assert_eq!(
            order_quantity(&json!({"quantity": 1, "price": 1}), &rules)
                .unwrap_err()
                .code(),
            codes::BAD_REQUEST
        );
    }

    #[test]
    fn refund_body_is_empty_or_a_positive_quantity() {
        assert_eq!(refund_quantity(&json!({})).unwrap(), None);
        assert_eq!(refund_quantity(&json!({"quantity": 2})).unwrap(), Some(2));
        for bad in [
            json!({"quantity": 0}),
            json!({"quantity": -2}),
            json!({"quantity": 0.5}),
        ] {
            assert_eq!(
                refund_quantity(&bad).unwrap_err().code(),
                codes::INVALID_QUANTITY,
                "{bad}"
            );
        }
        assert_eq!(
            refund_quantity(&json!({"amount": 1})).unwrap_err().code(),
            codes::BAD_REQUEST
        );
    }
}
