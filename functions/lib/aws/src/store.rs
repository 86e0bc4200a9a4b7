//! Small helpers for reading and writing DynamoDB items. The table's key
//! layout is [`crate::keys`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub type Item = HashMap<String, AttributeValue>;

pub const GSI1: &str = "gsi1";

/// A conditional write's answer: `Ok(true)` if it was written, `Ok(false)`
/// if its condition did not hold (an outcome, not a failure), else the
/// table's error with its cause for the logs.
pub fn condition_held<O, E, R>(
    result: std::result::Result<O, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> crate::Result<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(crate::Error::table(
            aws_sdk_dynamodb::error::DisplayErrorContext(e),
        )),
    }
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A zero-padded millisecond timestamp, so sort keys order by time as strings.
pub fn sortable_ms(ms: i64) -> String {
    format!("{ms:013}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_sort_as_numbers() {
        let mut keys = vec![
            sortable_ms(1_000),
            sortable_ms(999),
            sortable_ms(1_700_000_000_000),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                sortable_ms(999),
                sortable_ms(1_000),
                sortable_ms(1_700_000_000_000)
            ]
        );
    }

    #[test]
    fn reads_typed_attributes() {
        let item: Item = HashMap::from([("a".to_string(), s("x")), ("b".to_string(), n(42))]);
        assert_eq!(get_s(&item, "a"), Some("x"));
        assert_eq!(get_n(&item, "b"), Some(42));
        assert_eq!(get_n(&item, "a"), None);
        assert_eq!(get_s(&item, "missing"), None);
    }
}
