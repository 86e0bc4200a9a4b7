//! Verification on the in-memory ports, of files the stamping use cases
//! really stamped and signed: a stamped file is valid and exact; a file
//! changed after stamping is `modified`, one with an update appended is
//! `appended`; a serial not bound to a file is not found, a typo is refused
//! before any read, a serial nobody issued is `unknown`.

mod common;

use meterai_app::ports::Documents;
use meterai_app::stamping::{self, Actor, StampPorts, StampRequest};
use meterai_app::verification::{check_document, inspect, judge, lookup, parse_serial};
use meterai_app::Outcome;
use meterai_core::error::{codes, ErrorKind};
use meterai_core::jobs::Placement;
use meterai_core::{AccountId, Serial};
use meterai_memory::{
    ManualClock, MemoryDocuments, MemoryJobs, MemoryOutbox, MemoryQueue, MemoryRegistry, Store,
};
use meterai_pdf::signing::{LocalSigner, Signer};
use meterai_pdf::stamp::pdf::sample_pdf;
use meterai_pdf::verify::Integrity;

struct World {
    store: Store,
    jobs: MemoryJobs,
    registry: MemoryRegistry,
    queue: MemoryQueue,
    documents: MemoryDocuments,
    outbox: MemoryOutbox,
    clock: ManualClock,
    signer: LocalSigner,
}

impl World {
    fn new() -> Self {
        let store = Store::new();
        Self {
            jobs: store.jobs(),
            registry: store.registry(),
            store,
            queue: MemoryQueue::default(),
            documents: MemoryDocuments::default(),
            outbox: MemoryOutbox::default(),
            clock: ManualClock::at(1_795_400_000_000),
            signer: common::signer(),
        }
    }

    fn ports(&self) -> StampPorts<'_> {
        StampPorts {
            jobs: &self.jobs,
            queue: &self.queue,
            documents: &self.documents,
            outbox: &self.outbox,
            clock: &self.clock,
        }
    }

    /// Accepts a stamp job for a fresh document of `pages` pages (mark on the last).
    async fn accept(&self, pages: u32) -> String {
        let user = AccountId::parse("user-1").unwrap();
        common::credit(&self.store, &user, 1).await;
        let document_id = format!("doc_{}", meterai_core::ids::nonce());
        let key = self.documents.upload_key(&user, &document_id);
        self.documents
            .put(&key, sample_pdf(pages, [0, 0, 595, 842], None));
        let request = StampRequest {
            document_id,
            placement: Placement {
                page: pages,
                x: 300.0,
                y: 40.0,
                width: 100.0,
                height: 100.0,
            },
            reason: None,
            client_reference: None,
            customer_id: None,
        };
        stamping::accept(
            &self.ports(),
            &common::settings(),
            &Actor::portal(&user),
            &request,
            &meterai_core::ids::nonce(),
        )
        .await
        .unwrap()
        .job_id
    }

    async fn job(&self, job_id: &str) -> meterai_core::jobs::Job {
        meterai_app::ports::Jobs::load(&self.jobs, job_id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Stamps a fresh document as a portal user; the stored file and its serial.
    async fn stamp(&self, pages: u32) -> (Vec<u8>, Serial, String) {
        let job_id = self.accept(pages).await;
        let outcome =
            stamping::work(&self.ports(), &common::settings(), &self.signer, &job_id).await;
        assert_eq!(outcome, Outcome::Done);
        let job = self.job(&job_id).await;
        let stored = self
            .documents
            .get(job.stamped_key.as_deref().unwrap())
            .unwrap();
        (stored, job.serial, job.job_id)
    }
}

/// `bytes` with every `from` replaced by `to` (of the same length).
fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..].windows(from.len()).position(|w| w == from) {
        out[at + found..at + found + to.len()].copy_from_slice(to);
        at += found + to.len();
    }
    out
}

#[tokio::test]
async fn a_stamped_file_is_valid_exact_and_signed_by_us() {
    let w = World::new();
    let (stored, serial, _) = w.stamp(2).await;
    let report = check_document(&w.registry, w.signer.chain(), &stored)
        .await
        .unwrap();
    assert!(report.stamped);
    assert_eq!(report.bytes, stored.len());
    assert_eq!(report.stamps.len(), 1);
    let stamp = &report.stamps[0];
    assert_eq!(
        (stamp.serial.as_str(), stamp.status),
        (serial.as_str(), "valid")
    );
    assert_eq!(stamp.integrity, Some(Integrity::Exact));
    let record = stamp.record.as_ref().unwrap();
    assert_eq!((record.page, record.channel.as_str()), (2, "portal"));
    assert_eq!(record.sha256, report.sha256);
    let signature = stamp.signature.as_ref().unwrap();
    assert!(
        signature.intact && signature.signer_is_ours && signature.serial_matches,
        "{signature:?}"
    );

    let by_serial = lookup(&w.registry, &parse_serial(serial.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(&by_serial, record);
}

/// A registry whose table does not answer.
struct Unreachable;

#[async_trait::async_trait]
impl meterai_app::ports::Registry for Unreachable {
    async fn bound(
        &self,
        _: &Serial,
    ) -> meterai_core::Result<Option<meterai_core::serial::SerialRecord>> {
        Err(meterai_core::Error::table("timed out"))
    }
}

/// The file is read without the registry (the half the verify function
/// runs under its deadline), and the registry is asked after: a table that
/// does not answer is a dependency's failure, whatever the file.
#[tokio::test]
async fn reading_the_file_and_asking_the_registry_are_separate_halves() {
    let w = World::new();
    let (stored, serial, _) = w.stamp(1).await;
    let inspected = inspect(w.signer.chain(), &stored).unwrap();
    let down = judge(&Unreachable, inspected.clone()).await.unwrap_err();
    assert_eq!(
        (down.kind(), down.code()),
        (ErrorKind::Unavailable, "DEPENDENCY_UNAVAILABLE")
    );
    let report = judge(&w.registry, inspected).await.unwrap();
    assert_eq!(report.stamps[0].serial, serial.as_str());
    assert_eq!(report.stamps[0].status, "valid");
    assert_eq!(report.stamps[0].integrity, Some(Integrity::Exact));
    // Not a PDF: refused by the reading half, the registry never asked.
    let err = inspect(w.signer.chain(), b"GIF89a").unwrap_err();
    assert_eq!(err.code(), "NOT_A_PDF");
}

#[tokio::test]
async fn a_changed_file_is_modified_and_an_appended_one_is_appended() {
    let w = World::new();
    let (stored, _, _) = w.stamp(1).await;

    let mut changed = stored.clone();
    let at = changed
        .windows(11)
        .position(|w| w == b"Application")
        .unwrap();
    changed[at] = b'X';
    let report = check_document(&w.registry, w.signer.chain(), &changed)
        .await
        .unwrap();
    assert_eq!(report.stamps[0].integrity, Some(Integrity::Modified));
    assert!(!report.stamps[0].signature.as_ref().unwrap().intact);

    let mut appended = stored.clone();
    appended.extend_from_slice(b"\n% a later incremental update\n%%EOF\n");
    let report = check_document(&w.registry, w.signer.chain(), &appended)
        .await
        .unwrap();
    assert_eq!(report.stamps[0].integrity, Some(Integrity::Appended));
}

#[tokio::test]
async fn only_a_bound_serial_is_found_and_a_typo_is_refused_by_its_check_character() {
    let w = World::new();
    let (_, serial, _) = w.stamp(1).await;
    assert!(lookup(&w.registry, &serial).await.is_ok());

    // Reserved for a job that has not stamped yet, or never issued: no stamp.
    let pending = w.job(&w.accept(1).await).await.serial;
    for serial in [pending, Serial::generate()] {
        let err = lookup(&w.registry, &serial).await.unwrap_err();
        assert_eq!(err.code(), codes::SERIAL_NOT_FOUND);
    }

    let mut typo = serial.as_str().as_bytes().to_vec();
    typo[5] = if typo[5] == b'A' { b'B' } else { b'A' };
    let err = parse_serial(std::str::from_utf8(&typo).unwrap()).unwrap_err();
    assert_eq!(err.code(), codes::INVALID_SERIAL);
}

#[tokio::test]
async fn files_that_are_not_ours_say_so() {
    let w = World::new();
    let plain = sample_pdf(1, [0, 0, 595, 842], None);
    let report = check_document(&w.registry, w.signer.chain(), &plain)
        .await
        .unwrap();
    assert!(!report.stamped && report.stamps.is_empty());

    let err = check_document(&w.registry, w.signer.chain(), b"GIF89a")
        .await
        .unwrap_err();
    assert_eq!(err.code(), codes::NOT_A_PDF);

    // A stamp whose serial we never issued.
    let (stored, serial, _) = w.stamp(1).await;
    let stranger = Serial::generate();
    let forged = replace_bytes(
        &stored,
        serial.as_str().as_bytes(),
        stranger.as_str().as_bytes(),
    );
    let report = check_document(&w.registry, w.signer.chain(), &forged)
        .await
        .unwrap();
    assert_eq!(report.stamps[0].status, "unknown");
    assert!(report.stamps[0].record.is_none());
}
