//! Latency of the worker's signing call against the deployed stack's KMS key:
//! `kms:Sign` of a SHA-256 digest (ECDSA P-256), and the whole CMS signature
//! around it, one call at a time; then calls per second with 16 in flight.
//!
//!     target/release/meterai-bench-kms [calls]      (default 200, at most 2000)
//!
//! On the emulator this measures MiniStack's KMS (Python `cryptography`), not
//! AWS; the capacity model (`infra/CAPACITY.md`) uses AWS's published quotas.

use std::time::Instant;

use e2e::Stack;
use meterai::kms::KmsSigner;
use meterai_pdf::signing::{sign_document, Chain, Signer};

fn summary(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<28} n={:<5} median {:>7.2} ms  p90 {:>7.2}  p99 {:>7.2}  max {:>7.2}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200)
        .clamp(10, 2000);
    let stack = Stack::load();
    let clients = stack.clients().await;
    let pem = stack.signing_chain_pem().await;
    let chain = Chain::from_pem(&pem).expect("a P-256 chain");
    let key_id = stack.get("METERAI_SIGNING_KEY_ID").to_string();
    let signer = KmsSigner::new(clients.kms.clone(), key_id, std::sync::Arc::new(chain));

    let digest = [0x5au8; 32];
    // Warm the connection first: the worker's calls after its first are like these.
    sign_document(&signer, &digest).await.expect("KMS signs");

    let mut sign = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        signer.sign(b"signed attributes").await.expect("KMS signs");
        sign.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    summary("kms:Sign (digest)", sign);

    let mut whole = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let cms = sign_document(&signer, &digest).await.expect("KMS signs");
        std::hint::black_box(cms);
        whole.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    summary("CMS signature via KMS", whole);

    let started = Instant::now();
    let signer = &signer;
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for _ in 0..calls {
        pending.push(async move { signer.sign(b"signed attributes").await });
        while pending.len() >= 16 {
            pending.next().await.unwrap().expect("KMS signs");
        }
    }
    while let Some(result) = pending.next().await {
        result.expect("KMS signs");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "kms:Sign, 16 in flight        {calls} calls in {seconds:.2} s = {:.0} signs/s",
        calls as f64 / seconds
    );
}
