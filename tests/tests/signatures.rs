//! Every stamp made by the deployed stack is a PAdES signature made by the
//! KMS key: pyHanko and pdfsig accept it against the stage's CA, a byte
//! changed breaks it for both tools and for `POST /v1/verify`, a signature
//! made before stamping survives, and one made after is an allowed change.

use std::path::PathBuf;

use e2e::oracles::{
    applicant_signed, assert_qpdf_clean, assert_signature_broken, assert_signatures_valid, run, s,
    Scratch,
};
use e2e::{Portal, Stack};
use meterai_pdf::stamp::pdf::sample_pdf;

/// The stage's CA certificate (the development CA on the local stage).
fn stage_ca(stack: &Stack) -> PathBuf {
    PathBuf::from(stack.get("METERAI_SIGNING_TRUST"))
}

/// Uploads, stamps page `page` through the API and the queue, downloads.
async fn stamped_by_stack(
    user: &Portal,
    original: &[u8],
    page: u32,
) -> (serde_json::Value, Vec<u8>) {
    let document = user.upload(original).await;
    let accepted = user.stamp(&document, page, 400.0, 40.0).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let job = user
        .wait_job(accepted.body["job_id"].as_str().unwrap())
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let bytes = user.download(&job).await;
    (job, bytes)
}

async fn verify_file(stack: &Stack, bytes: Vec<u8>) -> serde_json::Value {
    let (status, report) = stack.verify_file(bytes).await;
    assert_eq!(status, 200, "{report}");
    report
}

fn only_stamp(report: &serde_json::Value) -> &serde_json::Value {
    let stamps = report["stamps"].as_array().expect("stamps");
    assert_eq!(stamps.len(), 1, "{report}");
    &stamps[0]
}

#[tokio::test]
async fn stamps_from_the_stack_are_signatures_that_tools_and_verify_accept() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 1).await;
    let scratch = Scratch::new("e2e-signature");
    let original = sample_pdf(2, [0, 0, 595, 842], None);
    let (job, bytes) = stamped_by_stack(&user, &original, 2).await;
    let serial = job["serial"].as_str().unwrap();
    let file = scratch.write("stamped.pdf", &bytes);
    let input = scratch.write("original.pdf", &original);

    // The original is the untouched prefix, the structure is clean, and both
    // validators accept the KMS signature against the stage's CA.
    let (same, text) = run(
        "cmp",
        &["-n", &original.len().to_string(), s(&input), s(&file)],
    );
    assert!(same, "original bytes are the prefix: {text}");
    assert_qpdf_clean(&file);
    assert_signatures_valid(&file, &[&stage_ca(&stack)], 1);
    let (_, pdfsig) = run("pdfsig", &[s(&file)]);
    assert!(
        pdfsig.contains("ETSI.CAdES.detached") && pdfsig.contains("Total document signed"),
        "{pdfsig}"
    );
    let expected = format!("{}/v1/verify/{serial}", stack.api_url());
    let codes = e2e::oracles::qr_codes(&scratch, &file, 2);
    assert!(codes.contains(&expected), "QR codes: {codes:?}");

    // Our own verification: valid, ours, whole file.
    let report = verify_file(&stack, bytes.clone()).await;
    let stamp = only_stamp(&report);
    assert_eq!(stamp["serial"], serial);
    let signature = &stamp["signature"];
    assert_eq!(signature["status"], "valid", "{report}");
    assert_eq!(signature["signer_is_ours"], true);
    assert_eq!(signature["covers"], "whole_file");
    assert_eq!(signature["later_changes"], "none");

    // One byte of the applicant's text changed: every judge says so.
    let mut tampered = bytes.clone();
    let at = tampered.windows(6).position(|w| w == b"page 2").unwrap() + 5;
    tampered[at] = b'8';
    let tampered_file = scratch.write("tampered.pdf", &tampered);
    assert_signature_broken(&tampered_file, &[&stage_ca(&stack)]);
    let report = verify_file(&stack, tampered).await;
    let stamp = only_stamp(&report);
    assert_eq!(stamp["integrity"], "modified", "{report}");
    assert_eq!(stamp["signature"]["status"], "invalid", "{report}");
    assert_eq!(stamp["signature"]["intact"], false);

    // A registrar countersigns after us: both signatures valid, and ours is
    // judged valid with an allowed later change.
    let (countersigned, registrar) = e2e::oracles::pyhanko_signed(&scratch, &file, "Registrar");
    assert_signatures_valid(&countersigned, &[&stage_ca(&stack), &registrar], 2);
    let report = verify_file(&stack, std::fs::read(&countersigned).unwrap()).await;
    let stamp = only_stamp(&report);
    assert_eq!(stamp["integrity"], "appended", "{report}");
    assert_eq!(stamp["signature"]["status"], "valid", "{report}");
    assert_eq!(stamp["signature"]["covers"], "prefix");
    assert_eq!(stamp["signature"]["later_changes"], "allowed");
    e2e::assert_audit(&stack, &user).await;
}

#[tokio::test]
async fn a_document_signed_before_stamping_keeps_its_signature() {
    let stack = Stack::load();
    let user = Portal::new(&stack).await;
    user.buy(&stack, 1).await;
    let scratch = Scratch::new("e2e-presigned");
    let (signed, applicant) = applicant_signed(&scratch, &sample_pdf(1, [0, 0, 595, 842], None));
    let (_, bytes) = stamped_by_stack(&user, &std::fs::read(&signed).unwrap(), 1).await;
    let file = scratch.write("stamped.pdf", &bytes);
    assert_qpdf_clean(&file);
    assert_signatures_valid(&file, &[&applicant, &stage_ca(&stack)], 2);
    let report = verify_file(&stack, bytes).await;
    assert_eq!(
        only_stamp(&report)["signature"]["status"],
        "valid",
        "{report}"
    );
    e2e::assert_audit(&stack, &user).await;
}

/// The production path: a certificate request signed by the KMS key itself
/// (proof of possession for a CA), for the same public key as the chain the
/// stack signs with.
#[tokio::test]
async fn the_admin_tool_makes_a_certificate_request_signed_by_the_kms_key() {
    let stack = Stack::load();
    let scratch = Scratch::new("e2e-csr");
    let pem = e2e::admin_text(&[
        "signing",
        "csr",
        "--subject",
        "CN=meterai e-Meterai signer,O=Example Ltd,C=ID",
    ]);
    let csr = scratch.write("request.csr", pem.as_bytes());
    let (ok, text) = run(
        "openssl",
        &["req", "-in", s(&csr), "-verify", "-noout", "-subject"],
    );
    assert!(
        ok && text.contains("verify OK"),
        "openssl req -verify: {text}"
    );
    assert!(
        text.contains("CN = meterai e-Meterai signer") && text.contains("C = ID"),
        "{text}"
    );
    let (ok, requested) = run("openssl", &["req", "-in", s(&csr), "-noout", "-pubkey"]);
    assert!(ok, "{requested}");
    // The key in the stored chain's first certificate is the same key.
    let chain = stack.signing_chain_pem().await;
    let chain = scratch.write("chain.pem", &chain);
    let (ok, certified) = run("openssl", &["x509", "-in", s(&chain), "-noout", "-pubkey"]);
    assert!(ok, "{certified}");
    assert_eq!(requested, certified);
}
