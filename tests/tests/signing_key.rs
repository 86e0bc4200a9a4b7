//! The signing key unusable (disabled in KMS): an accepted job is retried,
//! not failed on the first error; when its message reaches the dead-letter
//! queue the job fails and its stamp comes back. With the key enabled again,
//! stamping works. (Its own test binary: nothing else stamps meanwhile.)

use std::panic::AssertUnwindSafe;

use e2e::{assert_audit, Portal, Stack};
use futures::FutureExt;
use meterai_pdf::stamp::pdf::sample_pdf;

#[tokio::test]
async fn a_disabled_signing_key_fails_the_job_only_after_retries_and_returns_the_stamp() {
    let stack = Stack::load();
    let kms = stack.clients().await.kms;
    let key = stack.get("METERAI_SIGNING_KEY_ID");
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let document = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;

    kms.disable_key()
        .key_id(key)
        .send()
        .await
        .expect("disables the key");
    let outcome = AssertUnwindSafe(async {
        let accepted = user.stamp(&document, 1, 10.0, 10.0).await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        let job = user
            .wait_job(accepted.body["job_id"].as_str().unwrap())
            .await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["error"]["code"], "DELIVERY_FAILED", "{job}");
        let quota = user.quota().await;
        assert_eq!(
            (&quota["available"], &quota["reserved"], &quota["spent"]),
            (&2.into(), &0.into(), &0.into()),
            "{quota}"
        );
    })
    .catch_unwind()
    .await;
    kms.enable_key()
        .key_id(key)
        .send()
        .await
        .expect("enables the key");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }

    let accepted = user.stamp(&document, 1, 10.0, 10.0).await;
    let job = user
        .wait_job(accepted.body["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "done", "{job}");
    assert_audit(&stack, &user).await;
}
