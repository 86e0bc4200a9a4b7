//! Cursor pagination over the `gsi1` index, newest first.
//!
//! A cursor is the DynamoDB `LastEvaluatedKey`, as URL-safe base64 of JSON. It
//! is checked on the way back in: it must decode, carry only string keys, and
//! belong to the partition being listed, so a cursor from another account's
//! listing cannot be replayed to read it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use base64::Engine;

use crate::error::{codes, Error, Result};
use crate::store::{s, Item, GSI1};
use crate::AwsClients;

const KEY_FIELDS: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];
const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode_cursor(key: &Item) -> Option<String> {
    let map: BTreeMap<&str, &str> = KEY_FIELDS
        .iter()
        .filter_map(|f| {
            key.get(*f)
                .and_then(|v| v.as_s().ok())
                .map(|v| (*f, v.as_str()))
        })
        .collect();
    if map.is_empty() {
        return None;
    }
    Some(ENGINE.encode(serde_json::to_vec(&map).ok()?))
}

pub fn decode_cursor(cursor: &str, partition: &str) -> Result<Item> {
    let invalid = || {
        Error::invalid(
            codes::INVALID_CURSOR,
            "cursor is not valid for this listing",
        )
    };
    let bytes = ENGINE.decode(cursor.as_bytes()).map_err(|_| invalid())?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if map.len() != KEY_FIELDS.len()
        || !KEY_FIELDS.iter().all(|f| map.contains_key(*f))
        || map["gsi1pk"] != partition
    {
        return Err(invalid());
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}

/// One page of a `gsi1` partition, newest first, and the next page's cursor.
pub async fn query_gsi1_desc(
    clients: &AwsClients,
    table: &str,
    partition: &str,
    limit: i32,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>)> {
    let start = cursor.map(|c| decode_cursor(c, partition)).transpose()?;
    let out = clients
        .dynamodb
        .query()
        .table_name(table)
        .index_name(GSI1)
        .key_condition_expression("gsi1pk = :p")
        .expression_attribute_values(":p", s(partition))
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    let next = out.last_evaluated_key().and_then(encode_cursor);
    Ok((out.items.unwrap_or_default(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: &str) -> Item {
        Item::from([
            ("pk".to_string(), s("LEDGER#a")),
            ("sk".to_string(), s("credit#ord_1")),
            ("gsi1pk".to_string(), s(partition)),
            ("gsi1sk".to_string(), s("0000000000001#credit#ord_1")),
        ])
    }

    #[test]
    fn cursor_round_trips_within_its_partition() {
        let cursor = encode_cursor(&key("LEDGER#a")).unwrap();
        assert_eq!(decode_cursor(&cursor, "LEDGER#a").unwrap(), key("LEDGER#a"));
    }

    #[test]
    fn foreign_or_garbled_cursors_are_rejected() {
        let other = encode_cursor(&key("LEDGER#b")).unwrap();
        for cursor in [other.as_str(), "!!!", "e30", "bm90IGpzb24"] {
            let err = decode_cursor(cursor, "LEDGER#a").unwrap_err();
            assert_eq!(err.code(), codes::INVALID_CURSOR, "{cursor}");
            assert_eq!(err.kind(), meterai_core::ErrorKind::Invalid);
        }
    }
}
