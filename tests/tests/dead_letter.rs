//! Job messages through the deployed queue, worker and dead-letter consumer:
//! a poison message reaches the dead-letter queue after `maxReceiveCount`
//! receives and is recorded there, while the job messages delivered in the same
//! batch (second deliveries of finished jobs) are acknowledged, not failed, and
//! spend nothing twice. The operators' alarm on dead-lettered jobs goes
//! from OK to ALARM and tells the alarm topic.

use std::time::Duration;

use aws_sdk_cloudwatch::types::HistoryItemType;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use e2e::{assert_audit, eventually, unique, Portal, Stack};
use meterai_pdf::stamp::pdf::sample_pdf;
use serde_json::json;

#[tokio::test]
async fn poison_message_reaches_the_dlq_and_duplicate_deliveries_spend_once() {
    let stack = Stack::load();
    let sqs = stack.sqs().await;
    let dynamodb = stack.dynamodb().await;
    let queue = stack.get("METERAI_JOBS_QUEUE_URL");
    let table = stack.get("METERAI_TABLE_NAME");

    // Two real jobs, stamped once.
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let doc = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let mut jobs = Vec::new();
    for x in [10.0, 200.0] {
        let accepted = user.stamp(&doc, 1, x, 10.0).await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        let job = user
            .wait_job(accepted.body["job_id"].as_str().unwrap())
            .await;
        assert_eq!(job["status"], "done");
        jobs.push(job);
    }

    let redrive = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .expect("queue attributes");
    let redrive: serde_json::Value = serde_json::from_str(
        redrive
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .expect("a redrive policy"),
    )
    .unwrap();
    let max_receives = redrive["maxReceiveCount"]
        .as_i64()
        .or_else(|| {
            redrive["maxReceiveCount"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .expect("maxReceiveCount");

    // The alarm starts OK, whatever an earlier run left it in.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&stack.sdk_config().await);
    let alarm = format!("{}-jobs-dead-lettered", stack.get("METERAI_STACK"));
    stack.reset_alarm("jobs-dead-lettered").await;
    let reset_at = std::time::SystemTime::now();

    // One batch: the two jobs delivered again, and a poison message between them.
    let poison = format!("this is not a job message {}", unique("poison"));
    let bodies = [
        json!({"job_id": jobs[0]["job_id"]}).to_string(),
        poison.clone(),
        json!({"job_id": jobs[1]["job_id"]}).to_string(),
    ];
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body)
                .build()
                .unwrap()
        })
        .collect();
    let sent = sqs
        .send_message_batch()
        .queue_url(queue)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("batch sent");
    assert!(sent.failed().is_empty(), "{:?}", sent.failed());
    let poison_id = sent
        .successful()
        .iter()
        .find(|e| e.id() == "m1")
        .unwrap()
        .message_id()
        .to_string();

    // The dead-letter consumer records the poison message once it lands in the DLQ.
    let record = eventually(
        "the poison message's dead-letter record",
        Duration::from_secs(240),
        || async {
            dynamodb
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(format!("DEADLETTER#{poison_id}")))
                .key("sk", AttributeValue::S("DEADLETTER".into()))
                .consistent_read(true)
                .send()
                .await
                .expect("get item")
                .item
        },
    )
    .await;
    assert_eq!(record["body"].as_s().unwrap(), &poison);
    assert!(record["outcome"].as_s().unwrap().starts_with("unparseable"));
    let receives: i64 = record["receive_count"].as_n().unwrap().parse().unwrap();
    assert!(
        receives >= max_receives,
        "dead-lettered after {receives} receives, maxReceiveCount is {max_receives}"
    );

    // The reconciler counted it, and the alarm went to ALARM on its own.
    let alarmed = stack
        .alarmed("jobs-dead-lettered", Duration::from_secs(60))
        .await;
    assert_eq!(alarmed.namespace(), Some("meterai"));
    assert_eq!(alarmed.metric_name(), Some("jobs_dead_lettered"));
    assert!(
        alarmed
            .state_reason()
            .is_some_and(|r| r.contains("Threshold Crossed")),
        "{alarmed:?}"
    );
    assert!(
        alarmed
            .alarm_actions()
            .iter()
            .any(|a| a.contains(":sns:") && a.ends_with("-alarms")),
        "it tells the alarm topic: {alarmed:?}"
    );
    let history = cloudwatch
        .describe_alarm_history()
        .alarm_name(&alarm)
        .history_item_type(HistoryItemType::StateUpdate)
        .start_date(reset_at.into())
        .send()
        .await
        .expect("alarm history");
    assert!(
        history.alarm_history_items().iter().any(|h| h
            .history_summary()
            .is_some_and(|s| s.contains("OK to ALARM"))),
        "{history:?}"
    );

    // The duplicates changed nothing: still done, one spend each, nothing reserved.
    for job in &jobs {
        let again = user
            .get(&format!("/v1/stamps/{}", job["job_id"].as_str().unwrap()))
            .await;
        assert_eq!(again.body["status"], "done");
        assert_eq!(
            again.body["sha256"], job["sha256"],
            "one stamped document per job"
        );
    }
    assert_eq!(
        user.quota().await,
        json!({"purchased": 2, "available": 0, "reserved": 0, "spent": 2, "refunded": 0, "sold": 0})
    );
    assert_audit(&stack, &user).await;
}
