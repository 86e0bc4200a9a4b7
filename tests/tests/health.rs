//! `GET /v1/health` through the deployed API Gateway.

use e2e::Stack;

#[tokio::test]
async fn health_is_200_and_names_table_queue_bucket_and_signing_certificate() {
    let stack = Stack::load();
    let response = stack
        .http()
        .get(format!("{}/v1/health", stack.api_url()))
        .send()
        .await
        .expect("API answers");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "health answers JSON"
    );
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "ok", "{body}");
    let resources = &body["resources"];
    for (role, name) in [
        ("table", stack.get("METERAI_TABLE_NAME")),
        ("queue", stack.get("METERAI_JOBS_QUEUE_URL")),
        ("bucket", stack.get("METERAI_BUCKET_NAME")),
        (
            "signing_certificate",
            &format!(
                "s3://{}/signing/chain.pem",
                stack.get("METERAI_BUCKET_NAME")
            ),
        ),
    ] {
        assert_eq!(resources[role]["name"], name, "{role} in {body}");
        assert_eq!(resources[role]["reachable"], true, "{role} in {body}");
    }
}

#[tokio::test]
async fn unknown_route_is_a_4xx_not_a_5xx() {
    let stack = Stack::load();
    let response = stack
        .http()
        .delete(format!("{}/v1/health", stack.api_url()))
        .send()
        .await
        .expect("API answers");
    assert!(
        response.status().is_client_error(),
        "got {}",
        response.status()
    );
}
