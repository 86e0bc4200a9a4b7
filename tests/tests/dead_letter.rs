//! Job messages through the deployed queue and worker: a poison message ends in
//! the dead-letter queue, while the good messages sent in the same batch are
//! worked on exactly once and never fail with it.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use e2e::{eventually, unique, Stack};

#[tokio::test]
async fn poison_message_reaches_the_dlq_and_its_batch_neighbours_do_not() {
    let stack = Stack::load();
    let sqs = stack.sqs().await;
    let dynamodb = stack.dynamodb().await;
    let queue = stack.get("METERAI_JOBS_QUEUE_URL");
    let dlq = stack.get("METERAI_JOBS_DEAD_LETTER_QUEUE_URL");
    let table = stack.get("METERAI_TABLE_NAME");

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
            .expect("the jobs queue has a redrive policy"),
    )
    .expect("redrive policy is JSON");
    let max_receives: u64 = redrive["maxReceiveCount"]
        .as_u64()
        .or_else(|| {
            redrive["maxReceiveCount"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .expect("maxReceiveCount is set");

    let good: Vec<String> = (0..3).map(|i| unique(&format!("good{i}"))).collect();
    let poison = format!("this is not a job message {}", unique("poison"));
    let mut entries: Vec<SendMessageBatchRequestEntry> = good
        .iter()
        .enumerate()
        .map(|(i, job_id)| {
            SendMessageBatchRequestEntry::builder()
                .id(format!("good{i}"))
                .message_body(serde_json::json!({ "job_id": job_id }).to_string())
                .build()
                .unwrap()
        })
        .collect();
    entries.insert(
        1,
        SendMessageBatchRequestEntry::builder()
            .id("poison")
            .message_body(&poison)
            .build()
            .unwrap(),
    );
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
        .find(|e| e.id() == "poison")
        .map(|e| e.message_id().to_string())
        .expect("poison message accepted");

    // Every good job is worked on once: its delivery record counts one delivery.
    for job_id in &good {
        let deliveries = eventually(
            &format!("job {job_id} worked on"),
            Duration::from_secs(90),
            || async {
                let item = dynamodb
                    .get_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
                    .key("sk", AttributeValue::S("DELIVERY".into()))
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("get item")
                    .item
                    .clone()?;
                item.get("deliveries")?.as_n().ok()?.parse::<u64>().ok()
            },
        )
        .await;
        assert_eq!(
            deliveries, 1,
            "job {job_id} was delivered {deliveries} times"
        );
    }

    // The poison message lands in the dead-letter queue after maxReceiveCount receives.
    let dead = eventually(
        "the poison message in the DLQ",
        Duration::from_secs(240),
        || async {
            let received = sqs
                .receive_message()
                .queue_url(dlq)
                .max_number_of_messages(10)
                .visibility_timeout(20)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive from DLQ");
            received
                .messages()
                .iter()
                .find(|m| m.body() == Some(poison.as_str()))
                .cloned()
        },
    )
    .await;
    assert_eq!(dead.message_id(), Some(poison_id.as_str()));
    let receives: u64 = dead
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .expect("receive count attribute");
    assert!(
        receives >= max_receives,
        "moved after {receives} receives, maxReceiveCount is {max_receives}"
    );
    sqs.delete_message()
        .queue_url(dlq)
        .receipt_handle(dead.receipt_handle().expect("receipt handle"))
        .send()
        .await
        .expect("delete the poison message");

    // None of the good messages was dragged into the DLQ, and still one delivery each.
    let peek = sqs
        .receive_message()
        .queue_url(dlq)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive from DLQ");
    for message in peek.messages() {
        for job_id in &good {
            assert!(
                !message.body().unwrap_or_default().contains(job_id.as_str()),
                "good job {job_id} reached the DLQ"
            );
        }
    }
    for job_id in &good {
        let item = dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
            .key("sk", AttributeValue::S("DELIVERY".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
            .expect("delivery record");
        assert_eq!(item["deliveries"].as_n().unwrap(), "1", "job {job_id}");
    }
}
