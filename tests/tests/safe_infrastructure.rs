//! What the deployed stack keeps from a mistaken deletion (the template's
//! side, retention and recovery, is held by `infra/check_policies.py`).

use e2e::Stack;

#[tokio::test]
async fn the_ledger_table_refuses_to_be_deleted() {
    let stack = Stack::load();
    let dynamodb = stack.dynamodb().await;
    let table = stack.get("METERAI_TABLE_NAME");
    let described = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("the table is there");
    // Checked first, so a table without protection fails here and is not
    // deleted under the other tests.
    assert_eq!(
        described
            .table()
            .and_then(|t| t.deletion_protection_enabled()),
        Some(true),
        "{described:?}"
    );
    let refused = dynamodb.delete_table().table_name(table).send().await;
    assert!(refused.is_err(), "a protected table was deleted");
    let still = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .expect("the table is still there");
    assert_eq!(
        still
            .table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str()),
        Some("ACTIVE")
    );
}
