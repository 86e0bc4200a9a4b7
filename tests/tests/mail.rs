//! Portal users' e-mails through the deployed stack: queued where they are
//! caused, sent once by the mailer through SES (read back from the
//! emulator's SES record), Bahasa Indonesia first, linking to the portal.

use std::time::Duration;

use e2e::{eventually, Portal, Stack};
use meterai_pdf::stamp::pdf::sample_pdf;

async fn mails_with(
    stack: &Stack,
    user: &Portal,
    subject: &str,
    count: usize,
) -> Vec<(String, String)> {
    eventually(
        &format!("{count} e-mail(s) '{subject}' to {}", user.email),
        Duration::from_secs(60),
        || async {
            let mails: Vec<_> = stack
                .mails_to(&user.email)
                .await
                .into_iter()
                .filter(|(s, _)| s.starts_with(subject))
                .collect();
            (mails.len() >= count).then_some(mails)
        },
    )
    .await
}

#[tokio::test]
async fn a_user_gets_a_receipt_a_stamp_notice_and_a_refund_notice_once_each() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let receipts = mails_with(&stack, &user, "Pembayaran diterima", 1).await;
    let (subject, text) = &receipts[0];
    assert!(subject.contains("2 meterai"), "{subject}");
    for part in ["Kuitansi", "Rp20.000", "Receipt", "Metode"] {
        assert!(text.contains(part), "{part} in {text}");
    }
    assert!(
        text.find("Terima kasih") < text.find("Thank you"),
        "Bahasa first"
    );

    // A stamp: done, with a link to the portal and no raw download URL.
    let pdf = sample_pdf(1, [0, 0, 595, 842], None);
    let document = user.upload(&pdf).await;
    let job = user.stamp(&document, 1, 400.0, 40.0).await;
    assert_eq!(job.status, 202, "{:?}", job.body);
    let job_id = job.body["job_id"].as_str().unwrap().to_string();
    let finished = user.wait_job(&job_id).await;
    assert_eq!(finished["status"], "done");
    // The stamped file downloads under the user's own name (uploaded as
    // letter.pdf), and every read of the job gives a fresh link.
    let download = reqwest::get(finished["download_url"].as_str().unwrap())
        .await
        .unwrap();
    let disposition = download
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        disposition.contains("letter-meterai.pdf"),
        "{disposition:?}"
    );
    let again = user.get(&format!("/v1/stamps/{job_id}")).await;
    assert!(again.body["download_url"].is_string(), "{:?}", again.body);
    let done = mails_with(&stack, &user, "Meterai selesai", 1).await;
    assert!(
        done[0].1.contains(&format!("#/stamps/{job_id}")),
        "{}",
        done[0].1
    );
    assert!(!done[0].1.contains("X-Amz-Signature"), "{}", done[0].1);

    // A stamp that cannot be placed (off the page): failed, and the e-mail
    // says why and that the stamp came back.
    let off_page = user.stamp(&document, 1, 560.0, 10.0).await;
    assert_eq!(off_page.status, 202, "{:?}", off_page.body);
    let failed_id = off_page.body["job_id"].as_str().unwrap().to_string();
    assert_eq!(user.wait_job(&failed_id).await["status"], "failed");
    let failed = mails_with(&stack, &user, "Meterai gagal", 1).await;
    for part in ["RECT_OFF_PAGE", "dikembalikan", "returned", &failed_id] {
        assert!(failed[0].1.contains(part), "{part} in {}", failed[0].1);
    }
    assert_eq!(user.quota().await["available"], 1, "the stamp came back");

    // A refund of the unused stamp.
    let orders = user.get("/v1/orders").await;
    let order_id = orders.body["orders"][0]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let refund = user
        .post(
            &format!("/v1/orders/{order_id}/refund"),
            &serde_json::json!({}),
            None,
        )
        .await;
    assert_eq!(refund.status, 201, "{:?}", refund.body);
    let refunds = mails_with(&stack, &user, "Pengembalian dana", 1).await;
    assert!(refunds[0].1.contains("Rp10.000"), "{}", refunds[0].1);

    // Each was sent once, whatever the queue redelivered.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = stack.mails_to(&user.email).await;
    for subject in [
        "Pembayaran diterima",
        "Meterai selesai",
        "Meterai gagal",
        "Pengembalian dana",
    ] {
        let sent = all.iter().filter(|(s, _)| s.starts_with(subject)).count();
        assert_eq!(sent, 1, "{subject}: {all:?}");
    }
}

#[tokio::test]
async fn two_mailers_holding_the_same_message_send_it_once() {
    use meterai::mail::{deliver, Delivered, MailMessage, MailSettings};
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    let clients = stack.clients().await;
    let settings = MailSettings {
        table: stack.get("METERAI_TABLE_NAME").to_string(),
        user_pool_id: stack.get("METERAI_USER_POOL_ID").to_string(),
        from: "no-reply@meterai.local".to_string(),
        portal_url: "http://127.0.0.1:8080".to_string(),
    };
    // One receipt the queue delivered twice, to two mailers at once.
    let order_id = format!("ord_race_{}", user.account);
    let message = MailMessage {
        mail_id: format!("evt_order.paid_{order_id}"),
        account: user.account.clone(),
        kind: meterai_core::events::EventType::OrderPaid,
        data: serde_json::json!({
            "order_id": order_id, "quantity": 1, "total": 10_000,
            "paid_at": "2026-11-24T06:00:00Z", "payment_method": "qris",
        }),
    };
    let body = serde_json::to_string(&message).unwrap();
    let (a, b) = tokio::join!(
        deliver(&clients, &settings, &body),
        deliver(&clients, &settings, &body)
    );
    let sent = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(Delivered::Sent)))
        .count();
    assert_eq!(sent, 1, "{a:?} {b:?}");
    // The other was told it was sent, or to come back later (the queue
    // redelivers it), and then finds it sent.
    assert_eq!(
        deliver(&clients, &settings, &body).await.unwrap(),
        Delivered::AlreadySent
    );
    let receipts: Vec<_> = stack
        .mails_to(&user.email)
        .await
        .into_iter()
        .filter(|(subject, _)| subject.contains(&order_id))
        .collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
}
