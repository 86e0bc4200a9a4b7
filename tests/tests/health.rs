//! `GET /v1/health` through the deployed API Gateway.

use e2e::Stack;

#[tokio::test]
async fn health_is_200_for_every_role_and_names_no_resource() {
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
    for role in ["table", "queue", "bucket", "signing_certificate"] {
        assert_eq!(resources[role]["reachable"], true, "{role} in {body}");
    }
    // An anonymous caller learns nothing of our resources: no table or bucket
    // name, no queue URL (it carries the account id), no S3 key.
    let text = body.to_string();
    for internal in [
        stack.get("METERAI_TABLE_NAME"),
        stack.get("METERAI_JOBS_QUEUE_URL"),
        stack.get("METERAI_BUCKET_NAME"),
        "signing/chain.pem",
        "000000000000",
    ] {
        assert!(!text.contains(internal), "{internal} in {text}");
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
