//! Public verification through the deployed API: by serial (JSON and HTML)
//! and by file (exact, appended, modified, unstamped), no login.

use e2e::{send_patiently, Portal, Stack};
use meterai_pdf::stamp::pdf::sample_pdf;
use meterai_pdf::stamp::Serial;

async fn get(stack: &Stack, path: &str, accept: &str) -> (u16, String, String) {
    let response = send_patiently(
        stack
            .http()
            .get(format!("{}{path}", stack.api_url()))
            .header("accept", accept),
    )
    .await;
    let status = response.status().as_u16();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn anyone_can_verify_a_serial_and_a_file() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 1).await;
    let original = sample_pdf(2, [0, 0, 595, 842], None);
    let document = user.upload(&original).await;
    let accepted = user.stamp(&document, 2, 300.0, 300.0).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job = user
        .wait_job(accepted.body["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let serial = job["serial"].as_str().unwrap();
    let stamped = user.download(&job).await;

    // By serial, as an API client: the public record and nothing personal.
    let (status, kind, text) =
        get(&stack, &format!("/v1/verify/{serial}"), "application/json").await;
    assert_eq!((status, kind.as_str()), (200, "application/json"), "{text}");
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["valid"], true);
    assert_eq!(record["serial"], serial);
    assert_eq!(record["sha256"], job["sha256"]);
    assert_eq!(
        record["sha256"],
        meterai_core::ids::sha256_hex(&stamped).as_str()
    );
    assert_eq!(
        (record["page"].as_i64(), record["channel"].as_str()),
        (Some(2), Some("portal"))
    );
    assert!(
        !text.contains(&user.account) && !text.contains("job_"),
        "{text}"
    );
    // Lower case is read as the same serial.
    let (status, _, _) = get(
        &stack,
        &format!("/v1/verify/{}", serial.to_lowercase()),
        "*/*",
    )
    .await;
    assert_eq!(status, 200);
    // As a browser (the QR code): sent to the portal's verification page.
    let browser = stack.http_without_redirects();
    let answer = send_patiently(
        browser
            .get(format!("{}/v1/verify/{serial}", stack.api_url()))
            .header("accept", "text/html,*/*"),
    )
    .await;
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(
        answer.headers()["location"].to_str().unwrap(),
        format!("/#/verifikasi/{serial}")
    );

    // A well-formed serial never issued: 404; a typo: 400 by its check character.
    let random = Serial::generate();
    let (status, _, text) = get(&stack, &format!("/v1/verify/{random}"), "application/json").await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("SERIAL_NOT_FOUND"));
    let mut typo = serial.as_bytes().to_vec();
    typo[5] = if typo[5] == b'7' { b'8' } else { b'7' };
    let typo = String::from_utf8(typo).unwrap();
    let (status, _, text) = get(&stack, &format!("/v1/verify/{typo}"), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("INVALID_SERIAL"));

    // By file: the stamped file is exactly the registered document.
    let (status, report) = stack.verify_file(stamped.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["stamped"], true);
    assert_eq!(report["stamps"][0]["serial"], serial);
    assert_eq!(report["stamps"][0]["status"], "valid");
    assert_eq!(report["stamps"][0]["integrity"], "exact");
    // A later incremental update (as a signature after stamping adds).
    let mut appended = stamped.clone();
    appended.extend_from_slice(b"% a later revision\nstartxref\n0\n%%EOF\n");
    let (_, report) = stack.verify_file(appended).await;
    assert_eq!(report["stamps"][0]["integrity"], "appended", "{report}");
    // One byte changed after stamping, inside the original content.
    let mut changed = stamped.clone();
    let at = original.len() / 2;
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    let (_, report) = stack.verify_file(changed).await;
    assert_eq!(report["stamps"][0]["integrity"], "modified", "{report}");
    assert_eq!(report["stamps"][0]["status"], "valid");
    // A file too large for a request body goes through an anonymous upload.
    let http = stack.http();
    let ticket: serde_json::Value = send_patiently(
        http.post(format!("{}/v1/verify/uploads", stack.api_url()))
            .header("content-type", "application/json")
            .body(serde_json::json!({"size": stamped.len()}).to_string()),
    )
    .await
    .json()
    .await
    .unwrap();
    let put = http
        .put(ticket["upload_url"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .body(stamped.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let by_upload = |id: String| {
        let http = http.clone();
        let url = format!("{}/v1/verify", stack.api_url());
        async move {
            let response = send_patiently(
                http.post(url)
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "upload_id": id }).to_string()),
            )
            .await;
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let (status, report) = by_upload(ticket["upload_id"].as_str().unwrap().to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["stamps"][0]["integrity"], "exact", "{report}");
    let (status, report) = by_upload(format!("vup_{}", "0".repeat(26))).await;
    assert_eq!(
        (status, report["error"]["code"].as_str()),
        (404, Some("DOCUMENT_NOT_FOUND"))
    );

    // A file with no stamp is a report, not an error; a non-PDF is 422.
    let (status, report) = stack.verify_file(original.clone()).await;
    assert_eq!(
        (status, report["stamped"].as_bool()),
        (200, Some(false)),
        "{report}"
    );
    let (status, report) = stack.verify_file(b"hello, not a pdf".to_vec()).await;
    assert_eq!(
        (status, report["error"]["code"].as_str()),
        (422, Some("NOT_A_PDF"))
    );
}
