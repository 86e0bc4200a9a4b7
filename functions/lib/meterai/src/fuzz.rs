//! A deterministic mutation fuzz of every parser an outsider can reach:
//! Standard Webhooks headers, listing cursors, JSON request bodies, payment
//! notifications (through the use case, on the in-memory ports) and files to
//! verify. Over a million inputs, all from a fixed seed, so a failure
//! reproduces; each must end in a value or a 4xx error with a stable code,
//! never a panic or a 5xx. (A coverage-guided fuzzer needs a nightly
//! toolchain; this one runs in the test command.)

use std::panic::{catch_unwind, AssertUnwindSafe};

use meterai_core::error::codes;
use meterai_core::Error;

/// xorshift64: fast, deterministic, good enough to pick mutations.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One to four of: a byte replaced, a cut, a range copied elsewhere, a
    /// token planted, a byte removed.
    fn mutate(&mut self, seed: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(5) {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.truncate(at),
                2 if !out.is_empty() => {
                    let from = self.below(out.len());
                    let len = self.below(32).min(out.len() - from);
                    let piece = out[from..from + len].to_vec();
                    out.splice(at..at, piece);
                }
                3 => {
                    let token = tokens[self.below(tokens.len())];
                    out.splice(at..at, token.iter().copied());
                }
                _ if at < out.len() => {
                    out.remove(at);
                }
                _ => {}
            }
        }
        out
    }
}

/// A refusal must be the client's (4xx) with a code.
fn assert_refusal(error: &Error, what: &str, input: &[u8]) {
    assert!(
        error.is_client_error() && !error.code().is_empty(),
        "{what}: {error:?} for {:?}",
        String::from_utf8_lossy(input)
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn webhook_headers_and_bodies() {
    use meterai_core::webhooks::{verify, Headers, Secret};
    let secret = Secret::generate();
    let now = 1_795_400_000;
    let body = br#"{"type":"sale.completed","reseller_id":"rsl_1","data":{"customer_id":"cus_1","quantity":2,"sale_id":"S-1"}}"#;
    let signature = secret.sign("msg_1", now, body);
    let tokens: [&[u8]; 8] = [
        b"v1,",
        b" ",
        b",",
        b"-",
        b"9223372036854775807",
        b"=",
        b"\xff",
        b"v1a,",
    ];
    let mut m = Mutator(0x5eed_0001);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..400_000 {
        let id = text(&m.mutate(b"msg_1", &tokens));
        let timestamp = text(&m.mutate(now.to_string().as_bytes(), &tokens));
        let sig = text(&m.mutate(signature.as_bytes(), &tokens));
        let which = m.below(4);
        let headers = Headers {
            id: (which != 0).then_some(id.as_str()),
            timestamp: Some(timestamp.as_str()),
            signature: Some(sig.as_str()),
        };
        let payload = if which == 3 {
            m.mutate(body, &tokens)
        } else {
            body.to_vec()
        };
        match catch_unwind(|| verify(&secret, &headers, &payload, now)) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(e)) => {
                assert_refusal(&e, "webhook", sig.as_bytes());
                refused += 1;
            }
            Err(_) => panic!("webhook verify panicked: {id:?} {timestamp:?} {sig:?}"),
        }
    }
    assert!(refused > 390_000, "{accepted} accepted, {refused} refused");
}

#[test]
fn listing_cursors() {
    use crate::paging::{decode_cursor, encode_cursor};
    use crate::store::s;
    let key = crate::keys::job("job_01").with([
        ("gsi1pk".to_string(), s("JOBS#user-1")),
        ("gsi1sk".to_string(), s("0000000000042#job_01")),
    ]);
    let cursor = encode_cursor(&key).expect("a cursor");
    let tokens: [&[u8]; 6] = [b"A", b"_", b"-", b"=", b"eyJ", b"\x00"];
    let mut m = Mutator(0x5eed_0002);
    for _ in 0..300_000 {
        let input = m.mutate(cursor.as_bytes(), &tokens);
        let raw = text(&input);
        match catch_unwind(|| decode_cursor(&raw, "JOBS#user-1")) {
            Ok(Ok(item)) => {
                // Whatever decodes stays in the caller's own listing.
                let partition = item.get("gsi1pk").and_then(|v| v.as_s().ok());
                assert_eq!(
                    partition.map(String::as_str),
                    Some("JOBS#user-1"),
                    "{raw:?}"
                );
            }
            Ok(Err(e)) => assert_eq!(e.code(), codes::INVALID_CURSOR, "{raw:?}"),
            Err(_) => panic!("cursor decode panicked on {raw:?}"),
        }
    }
}

#[test]
fn json_request_bodies() {
    use crate::request;
    let rules = meterai_core::orders::OrderRules::default();
    let seeds: [&[u8]; 5] = [
        br#"{"quantity": 5}"#,
        br#"{"document_id":"doc_01M91GTCDQX3RHEYFHG6HV6EJ2","page":1,"x":10.5,"y":20,"width":100,"reason":"CPNS"}"#,
        br#"{"filename":"surat.pdf","size":12345}"#,
        br#"{"reference":"toko-1"}"#,
        br#"{"type":"sale.completed","reseller_id":"rsl_1","data":{"customer_id":"cus_1","quantity":2,"sale_id":"S-1"}}"#,
    ];
    let tokens: [&[u8]; 10] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"1e309",
        b"-0",
        b"null",
        b"\\u0000",
        b"9007199254740993",
    ];
    let mut m = Mutator(0x5eed_0003);
    for round in 0..250_000 {
        let input = m.mutate(seeds[round % seeds.len()], &tokens);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let body = request::json_body(&input)?;
            let _ = request::order_quantity(&body, &rules);
            let _ = request::refund_quantity(&body);
            let _ = request::stamp_request(&body);
            let _ = request::upload(&body, 10 * 1024 * 1024);
            let _ = request::customer_reference(&body);
            request::sale_event(&body).map(|_| ())
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => assert_refusal(&e, "request body", &input),
            Err(_) => panic!("a request parser panicked on {:?}", text(&input)),
        }
    }
}

#[tokio::test]
async fn payment_notifications() {
    use meterai_app::payments::{handle_notification, PaymentPorts};
    use meterai_core::payments::Midtrans;
    use meterai_memory::{ManualClock, MemoryGateway, MemoryOutbox, MemoryPaymentLog, Store};
    let store = Store::new();
    let orders = store.orders();
    let (log, outbox, gateway) = (
        MemoryPaymentLog::default(),
        MemoryOutbox::default(),
        MemoryGateway::default(),
    );
    let clock = ManualClock::at(1_795_400_000_000);
    let ports = PaymentPorts {
        orders: &orders,
        log: &log,
        outbox: &outbox,
        clock: &clock,
        gateway: &gateway,
    };
    let buyer = meterai_core::AccountId::parse("user-1").unwrap();
    let order = meterai_app::orders::create(
        &orders,
        &gateway,
        &clock,
        &meterai_core::orders::OrderRules::default(),
        &buyer,
        2,
    )
    .await
    .unwrap();
    let midtrans = Midtrans::new("SB-Mid-server-fuzz");
    let note = midtrans.notification(&order.order_id, "settlement", order.total, "tx-1");
    let seed = serde_json::to_vec(&note).unwrap();
    let tokens: [&[u8]; 8] = [
        b"\"settlement\"",
        b"\"capture\"",
        b"\"200\"",
        b"\"",
        b"{",
        b"}",
        b".00",
        b"null",
    ];
    let mut m = Mutator(0x5eed_0004);
    for _ in 0..50_000 {
        let input = m.mutate(&seed, &tokens);
        // A panic fails the test as it is (the input is deterministic).
        if let Err(e) = handle_notification(&ports, &midtrans, &input).await {
            assert_refusal(&e, "notification", &input);
        }
    }
    // The gateway never said paid: nothing was credited, whatever was sent.
    assert_eq!(store.balance(&buyer).await.purchased, 0);
}

#[test]
fn files_to_verify() {
    use meterai_pdf::stamp::pdf::sample_pdf;
    use meterai_pdf::stamp::signatures::SignedFile;
    use meterai_pdf::stamp::{stamp, Limits, MarkText, Placement};
    use meterai_pdf::verify::{revision_hashes, stamp_serials};
    let serial = meterai_core::Serial::generate();
    let url = format!("https://meterai.test/v1/verify/{serial}");
    let signer = meterai_pdf::signing::LocalSigner::from_pem(
        include_str!("../../pdf/testdata/signing/signer.key.pem"),
        include_bytes!("../../pdf/testdata/signing/chain.pem"),
    )
    .unwrap();
    let stamped = stamp(
        &sample_pdf(2, [0, 0, 595, 842], None),
        &Placement {
            page: 1,
            x: 10.0,
            y: 10.0,
            width: 100.0,
            height: 100.0,
        },
        &MarkText {
            serial: serial.as_str(),
            verify_url: &url,
        },
        &Limits::default(),
        &signer,
    )
    .unwrap()
    .bytes;
    let tokens: [&[u8]; 8] = [
        b"%%EOF",
        b"/ByteRange [0 1 2 3]",
        b" 0 R ",
        b"<<",
        b">>",
        b"e-meterai-",
        b"/NM (",
        b"stream\n",
    ];
    let limits = Limits::default();
    let mut m = Mutator(0x5eed_0005);
    for round in 0..20_000 {
        let input = m.mutate(&stamped, &tokens);
        let outcome = catch_unwind(|| {
            let hashes = revision_hashes(&input);
            let file = SignedFile::parse(&input, &limits);
            let signatures = file
                .as_ref()
                .map(SignedFile::signatures)
                .unwrap_or_default();
            let (serials, malformed) = stamp_serials(&input, &signatures);
            // The whole reading half of POST /v1/verify, signatures checked.
            let _ = meterai_app::verification::inspect(
                meterai_pdf::signing::Signer::chain(&signer),
                &input,
            );
            (hashes.len(), serials.len(), malformed.len())
        });
        let (hashes, serials, malformed) =
            outcome.unwrap_or_else(|_| panic!("verification panicked on round {round}"));
        assert!(
            hashes <= meterai_pdf::verify::MAX_REVISIONS + 1,
            "round {round}"
        );
        assert!(
            serials + malformed <= meterai_pdf::verify::MAX_SERIALS * 2,
            "round {round}"
        );
    }
}
