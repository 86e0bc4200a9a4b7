//! Request bodies: bounded, parsed, and refused with a stable code when they
//! are not what a route reads.

use meterai_app::stamping::StampRequest;
use meterai_core::jobs::{Placement, DEFAULT_SIZE, MAX_SIZE, MIN_SIZE};
use meterai_core::orders::OrderRules;
use meterai_core::resellers::Sale;

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

/// The body of a route whose body is optional: none (or only whitespace)
/// is `{}`.
pub fn optional_json_body(bytes: &[u8]) -> Result<serde_json::Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(serde_json::json!({}))
    } else {
        json_body(bytes)
    }
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

/// A JSON number that is a whole number, however it is written (`3`, `3.0`,
/// `3e0`: JSON does not tell integers apart), exactly representable.
fn whole(value: &serde_json::Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
            .map(|f| f as i64)
    })
}

/// Parses the `limit` query parameter (1..=100, default 20).
pub fn limit(raw: Option<&str>) -> Result<i32> {
    use meterai_core::quota::{DEFAULT_PAGE_SIZE as DEFAULT_LIMIT, MAX_PAGE_SIZE as MAX_LIMIT};
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                Error::invalid(
                    codes::INVALID_LIMIT,
                    format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// Validates the body of `POST /v1/orders`: `{"quantity": n}`, 1 <= n <= max.
pub fn order_quantity(body: &serde_json::Value, rules: &OrderRules) -> Result<i64> {
    let object = json_object(body, &["quantity"])?;
    rules.check_quantity(object.get("quantity").and_then(whole))
}

/// Validates the optional body of a refund: `{}` (refund every unused stamp)
/// or `{"quantity": n}` with n >= 1.
pub fn refund_quantity(body: &serde_json::Value) -> Result<Option<i64>> {
    let object = json_object(body, &["quantity"])?;
    match object.get("quantity") {
        None => Ok(None),
        Some(q) => whole(q).filter(|q| *q >= 1).map(Some).ok_or_else(|| {
            Error::invalid(
                codes::INVALID_QUANTITY,
                "quantity must be a whole number of at least 1",
            )
        }),
    }
}

/// Validates the body of `POST /v1/documents`: `{"filename": ..., "size": n}`
/// (1 to 255 characters, no control characters; the file's size in bytes,
/// within the limit).
pub fn upload(body: &serde_json::Value, max_bytes: usize) -> Result<(&str, u64)> {
    json_object(body, &["filename", "size"])?;
    let filename = body.get("filename").and_then(|f| f.as_str()).unwrap_or("");
    let length = filename.chars().count();
    if length == 0 || length > 255 || filename.chars().any(char::is_control) {
        return Err(Error::invalid(
            codes::INVALID_FILENAME,
            "filename must be 1 to 255 characters",
        ));
    }
    Ok((filename, upload_size(body, max_bytes)?))
}

/// Reads `size` (bytes, > 0) of an upload request and checks it against the limit.
pub fn upload_size(body: &serde_json::Value, max_bytes: usize) -> Result<u64> {
    let size = body
        .get("size")
        .and_then(whole)
        .and_then(|s| u64::try_from(s).ok())
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            Error::invalid(
                codes::BAD_REQUEST,
                "size must be the file's size in bytes (> 0)",
            )
        })?;
    meterai_app::stamping::check_pdf_size(size, max_bytes)?;
    Ok(size)
}

/// Parses `{document_id, page, x, y, width?, height?, reason?,
/// client_reference?, customer_id?}`.
pub fn stamp_request(body: &serde_json::Value) -> Result<StampRequest> {
    const FIELDS: [&str; 9] = [
        "customer_id",
        "document_id",
        "page",
        "x",
        "y",
        "width",
        "height",
        "reason",
        "client_reference",
    ];
    let object = json_object(body, &FIELDS)?;
    let document_id = object
        .get("document_id")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if !meterai_core::ids::is_id(document_id, "doc_") {
        return Err(Error::not_found(
            codes::DOCUMENT_NOT_FOUND,
            format!("no document {document_id:?}"),
        ));
    }
    let bad = |m: &str| Error::invalid(codes::INVALID_PLACEMENT, m.to_string());
    let page = object
        .get("page")
        .and_then(whole)
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p >= 1)
        .ok_or_else(|| bad("page must be a whole number from 1"))?;
    let coordinate = |name: &str, default: Option<f64>, min: f64, max: f64| -> Result<f64> {
        match object.get(name) {
            None => default.ok_or_else(|| bad(&format!("{name} is required"))),
            Some(v) => v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= min && *f <= max)
                .ok_or_else(|| bad(&format!("{name} must be a number from {min} to {max}"))),
        }
    };
    let placement = Placement {
        page,
        x: coordinate("x", None, 0.0, 14_400.0)?,
        y: coordinate("y", None, 0.0, 14_400.0)?,
        width: coordinate("width", Some(DEFAULT_SIZE), MIN_SIZE, MAX_SIZE)?,
        height: coordinate("height", Some(DEFAULT_SIZE), MIN_SIZE, MAX_SIZE)?,
    };
    let text = |name: &str| -> Result<Option<String>> {
        match object.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(v)) if v.len() <= 200 => Ok(Some(v.clone())),
            Some(_) => Err(Error::invalid(
                codes::BAD_REQUEST,
                format!("{name} must be a string of at most 200 characters"),
            )),
        }
    };
    Ok(StampRequest {
        document_id: document_id.to_string(),
        placement,
        reason: text("reason")?,
        client_reference: text("client_reference")?,
        customer_id: text("customer_id")?,
    })
}

/// Validates the body of `POST /v1/customers`: `{}` or `{"reference": ...}`,
/// the reseller's own id for the customer (1 to 200 characters).
pub fn customer_reference(body: &serde_json::Value) -> Result<Option<String>> {
    let object = json_object(body, &["reference"])?;
    match object.get("reference") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(r)) if (1..=200).contains(&r.chars().count()) => {
            Ok(Some(r.clone()))
        }
        Some(_) => Err(Error::invalid(
            codes::BAD_REQUEST,
            "reference must be a string of 1 to 200 characters",
        )),
    }
}

/// Reads an inbound event of a reseller's shop: `{"type": "sale.completed",
/// "reseller_id", "data": {customer_id, quantity, sale_id}}` (the only type).
pub fn sale_event(body: &serde_json::Value) -> Result<Sale> {
    let bad = |m: &str| Error::invalid(codes::BAD_REQUEST, m.to_string());
    match body.get("type").and_then(|t| t.as_str()) {
        Some("sale.completed") => {}
        Some(other) => {
            return Err(Error::invalid(
                codes::UNKNOWN_EVENT_TYPE,
                format!("unknown event type {other:?}"),
            ))
        }
        None => return Err(bad("type is required")),
    }
    let data = body.get("data").ok_or_else(|| bad("data is required"))?;
    let text = |name: &str| {
        data.get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_string)
            .ok_or_else(|| {
                bad(&format!(
                    "data.{name} must be a string of 1 to 200 characters"
                ))
            })
    };
    let quantity = data
        .get("quantity")
        .and_then(whole)
        .filter(|q| (1..=1_000_000).contains(q))
        .ok_or_else(|| {
            Error::invalid(
                codes::INVALID_QUANTITY,
                "data.quantity must be 1 to 1000000",
            )
        })?;
    let sale_id = text("sale_id")?;
    if !sale_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
    {
        return Err(bad("data.sale_id may hold letters, digits and _ . : -"));
    }
    Ok(Sale {
        sale_id,
        customer_id: text("customer_id")?,
        quantity,
    })
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
        // JSON does not tell 190 from 190.0.
        assert_eq!(
            order_quantity(&json!({"quantity": 190.0}), &rules).unwrap(),
            190
        );
        for bad in [
            json!({"quantity": 0}),
            json!({"quantity": -1}),
            json!({"quantity": 1.5}),
            json!({"quantity": 1e300}),
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
    #[test]
    fn parses_a_stamp_request_with_defaults() {
        let id = format!("doc_{}", meterai_core::ids::nonce());
        let r = stamp_request(&json!({"document_id": id, "page": 2, "x": 400, "y": 50.5, "client_reference": "cpns-2024"})).unwrap();
        assert_eq!(
            r.placement,
            Placement {
                page: 2,
                x: 400.0,
                y: 50.5,
                width: 100.0,
                height: 100.0
            }
        );
        assert_eq!(r.client_reference.as_deref(), Some("cpns-2024"));
    }

    #[test]
    fn bad_pages_and_positions_are_400() {
        let id = format!("doc_{}", meterai_core::ids::nonce());
        for body in [
            json!({"document_id": id, "page": 0, "x": 1, "y": 1}),
            json!({"document_id": id, "page": -1, "x": 1, "y": 1}),
            json!({"document_id": id, "page": 1.5, "x": 1, "y": 1}),
            json!({"document_id": id, "page": 1, "x": -5, "y": 1}),
            json!({"document_id": id, "page": 1, "x": "1", "y": 1}),
            json!({"document_id": id, "page": 1, "x": 1}),
            json!({"document_id": id, "page": 1, "x": 1, "y": 1, "width": 5}),
        ] {
            let err = stamp_request(&body).unwrap_err();
            assert_eq!(
                (status_of(&err), err.code()),
                (400, codes::INVALID_PLACEMENT),
                "{body}"
            );
        }
        let err = stamp_request(&json!({"document_id": "../../etc", "page": 1, "x": 1, "y": 1}))
            .unwrap_err();
        assert_eq!(err.code(), codes::DOCUMENT_NOT_FOUND);
        let err =
            stamp_request(&json!({"document_id": id, "page": 1, "x": 1, "y": 1, "colour": "red"}))
                .unwrap_err();
        assert_eq!(err.code(), codes::BAD_REQUEST);
    }

    #[test]
    fn uploads_need_a_name_and_a_size_within_the_limit() {
        assert!(upload(&json!({"filename": "cv.pdf", "size": 10}), 100).is_ok());
        let code = |body: serde_json::Value| upload(&body, 100).unwrap_err().code();
        assert_eq!(code(json!({"size": 10})), codes::INVALID_FILENAME);
        assert_eq!(
            code(json!({"filename": "a\nb", "size": 10})),
            codes::INVALID_FILENAME
        );
        assert_eq!(code(json!({"filename": "cv.pdf"})), codes::BAD_REQUEST);
        assert_eq!(
            code(json!({"filename": "cv.pdf", "size": 1, "owner": "x"})),
            codes::BAD_REQUEST
        );
        // Characters, not bytes; C1 controls are controls.
        assert!(upload(&json!({"filename": "é".repeat(255), "size": 10.0}), 100).is_ok());
        assert_eq!(
            code(json!({"filename": "é".repeat(256), "size": 10})),
            codes::INVALID_FILENAME
        );
        assert_eq!(
            code(json!({"filename": "a\u{9a}b", "size": 10})),
            codes::INVALID_FILENAME
        );
        assert_eq!(
            code(json!({"filename": "cv.pdf", "size": 0})),
            codes::BAD_REQUEST
        );
        assert_eq!(
            code(json!({"filename": "cv.pdf", "size": 101})),
            codes::DOCUMENT_TOO_LARGE
        );
    }

    #[test]
    fn sale_events_are_validated() {
        let ok = json!({"type": "sale.completed", "reseller_id": "r", "data": {"customer_id": "cus_1", "quantity": 3, "sale_id": "S-1"}});
        assert_eq!(
            sale_event(&ok).unwrap(),
            Sale {
                sale_id: "S-1".into(),
                customer_id: "cus_1".into(),
                quantity: 3
            }
        );
        let code = |v: serde_json::Value| sale_event(&v).unwrap_err().code();
        assert_eq!(
            code(json!({"type": "sale.refunded", "data": {}})),
            codes::UNKNOWN_EVENT_TYPE
        );
        assert_eq!(
            code(
                json!({"type": "sale.completed", "data": {"customer_id": "c", "quantity": 0, "sale_id": "s"}})
            ),
            codes::INVALID_QUANTITY
        );
        assert_eq!(
            code(
                json!({"type": "sale.completed", "data": {"customer_id": "c", "quantity": 1, "sale_id": "a b"}})
            ),
            codes::BAD_REQUEST
        );
        assert_eq!(code(json!({"type": "sale.completed"})), codes::BAD_REQUEST);
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(limit(None).unwrap(), 20);
        assert_eq!(limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            assert_eq!(
                limit(Some(bad)).unwrap_err().code(),
                codes::INVALID_LIMIT,
                "{bad}"
            );
        }
    }
}
