//! Request bodies: bounded, parsed, and refused with a stable code when they
//! are not what a route reads.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::status_of;

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
}
