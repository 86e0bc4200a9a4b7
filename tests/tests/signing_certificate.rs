//! The production certificate path, end to end: a chain from another CA for
//! the KMS key's public key (from `infra/signing-cert.sh public-key`) is
//! installed with `infra/signing-cert.sh install`, and once the functions'
//! chain TTL has passed, stamps carry it and validate against that CA. A
//! chain for another key is refused. The development chain is restored after.
//! (Its own test binary: nothing else stamps meanwhile.)

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::oracles::{assert_signatures_valid, pyhanko_validate, run, s, Scratch};
use e2e::{Portal, Stack};
use futures::FutureExt;
use meterai_pdf::stamp::pdf::sample_pdf;

fn signing_cert(args: &[&str]) -> (bool, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/signing-cert.sh");
    run(s(&script), args)
}

fn openssl(args: &[&str]) {
    let (ok, text) = run("openssl", args);
    assert!(ok, "openssl {args:?}: {text}");
}

/// A CA, and a certificate it issues for `public_key`, as `chain.pem`.
fn chain_from_new_ca(scratch: &Scratch, public_key: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (ca_key, ca) = (
        scratch.path(&format!("{name}-ca.key")),
        scratch.path(&format!("{name}-ca.pem")),
    );
    let subject = format!("/O=meterai tests/CN={name} CA");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&ca_key),
        "-out",
        s(&ca),
        "-days",
        "2",
        "-subj",
        &subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    let ext = scratch.write(
        "leaf.ext",
        b"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
    );
    let leaf = scratch.path(&format!("{name}-leaf.pem"));
    let leaf_subject = format!("/O=meterai tests/CN={name} signer");
    openssl(&[
        "x509",
        "-new",
        "-force_pubkey",
        s(public_key),
        "-subj",
        &leaf_subject,
        "-CA",
        s(&ca),
        "-CAkey",
        s(&ca_key),
        "-days",
        "2",
        "-extfile",
        s(&ext),
        "-out",
        s(&leaf),
    ]);
    let chain = scratch.write(
        &format!("{name}-chain.pem"),
        &[std::fs::read(&leaf).unwrap(), std::fs::read(&ca).unwrap()].concat(),
    );
    (chain, ca)
}

#[tokio::test]
async fn a_renewed_certificate_installed_for_the_kms_key_is_used_after_the_ttl() {
    let stack = Stack::load();
    let ttl: u64 = stack
        .get("METERAI_SIGNING_CHAIN_TTL_SECONDS")
        .parse()
        .unwrap();
    assert!(
        ttl <= 10,
        "the test stack is deployed with a short chain TTL (scripts/test)"
    );
    let wait = Duration::from_secs(ttl + 1);
    let scratch = Scratch::new("renewed-certificate");
    let (ok, public) = signing_cert(&["public-key"]);
    assert!(ok && public.contains("BEGIN PUBLIC KEY"), "{public}");
    let public_key = scratch.write("kms-public.pem", public.as_bytes());

    // A chain for some other key is refused, and nothing changes.
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        s(&scratch.path("other.key")),
    ]);
    openssl(&[
        "pkey",
        "-in",
        s(&scratch.path("other.key")),
        "-pubout",
        "-out",
        s(&scratch.path("other.pub")),
    ]);
    let (wrong, _) = chain_from_new_ca(&scratch, &scratch.path("other.pub"), "Wrong");
    let (ok, text) = signing_cert(&["install", s(&wrong)]);
    assert!(!ok && text.contains("is not for KMS key"), "{text}");

    // A stamp first, so the worker holds the development chain when the
    // renewed one is installed (it must read it again, not start with it).
    let user = Portal::new(&stack).await;
    user.buy(&stack, 2).await;
    let document = user.upload(&sample_pdf(1, [0, 0, 595, 842], None)).await;
    let stamp = || async {
        let accepted = user.stamp(&document, 1, 10.0, 10.0).await;
        let job = user
            .wait_job(accepted.body["job_id"].as_str().unwrap())
            .await;
        assert_eq!(job["status"], "done", "{job}");
        user.download(&job).await
    };
    let before = scratch.write("before.pdf", &stamp().await);
    let dev_ca = PathBuf::from(stack.get("METERAI_SIGNING_TRUST"));
    assert_signatures_valid(&before, &[&dev_ca], 1);

    let (renewed, renewed_ca) = chain_from_new_ca(&scratch, &public_key, "Renewed");
    let (ok, text) = signing_cert(&["install", s(&renewed)]);
    assert!(ok, "install: {text}");
    let outcome = AssertUnwindSafe(async {
        tokio::time::sleep(wait).await;
        let bytes = stamp().await;
        let file = scratch.write("stamped.pdf", &bytes);
        // Valid against the new CA; the development CA no longer vouches for it.
        assert_signatures_valid(&file, &[&renewed_ca], 1);
        let (_, pdfsig) = run("pdfsig", &[s(&file)]);
        assert!(pdfsig.contains("Renewed signer"), "{pdfsig}");
        let dev_only = pyhanko_validate(&file, &[&dev_ca]);
        assert!(!dev_only.contains("judged VALID"), "{dev_only}");
        // The verify function reads the new chain too: the signer is ours.
        let (status, report) = stack.verify_file(bytes).await;
        assert_eq!(status, 200);
        assert_eq!(
            report["stamps"][0]["signature"]["status"], "valid",
            "{report}"
        );
    })
    .catch_unwind()
    .await;
    // Restore the development chain (reissued: the stored one is not the dev CA's).
    let (ok, text) = signing_cert(&["dev"]);
    assert!(ok, "dev: {text}");
    tokio::time::sleep(wait).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
