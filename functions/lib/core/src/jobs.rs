//! Stamp jobs: the states a job goes through and the moves between them.
//!
//! `queued` -> `processing` (a worker took it; again after a worker died) ->
//! `done` (stored, stamp spent) or `failed` (stamp returned). `queued` may
//! also fail directly (the message could not be sent, or it was
//! dead-lettered). `done` and `failed` are final.

use serde::{Deserialize, Serialize};

use crate::{AccountId, Serial};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Done,
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Done,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }

    /// The states a job may move to `next` from (the condition of that write).
    pub fn sources_of(next: JobStatus) -> &'static [JobStatus] {
        match next {
            JobStatus::Queued => &[],
            // A worker that died mid-job leaves `processing`: the next delivery takes it again.
            JobStatus::Processing => &[JobStatus::Queued, JobStatus::Processing],
            JobStatus::Done => &[JobStatus::Processing],
            JobStatus::Failed => &[JobStatus::Queued, JobStatus::Processing],
        }
    }

    pub fn can_move_to(self, next: JobStatus) -> bool {
        Self::sources_of(next).contains(&self)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the mark goes: page (1-based) and the lower-left corner in points,
/// measured on the page as it is displayed (after `/Rotate`), from its
/// visible lower-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub page: u32,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The mark's side, in points, when a request does not say.
pub const DEFAULT_SIZE: f64 = 100.0;
/// The smallest mark, in points (28 mm): its QR code of a verification URL
/// of up to `MAX_QR_URL` bytes still decodes from a 150 dpi scan or screen
/// (tested at this size, through poppler's rendering and zbar).
pub const MIN_SIZE: f64 = 80.0;
/// The largest mark, in points.
pub const MAX_SIZE: f64 = 600.0;
/// The longest verification URL a mark's QR code carries (QR version 5 at
/// level L): a longer one would shrink the modules below what `MIN_SIZE`
/// was chosen for. A deployment whose URL is longer refuses to start.
pub const MAX_QR_URL: usize = 106;

/// The public verification URL of `serial` under the API's base URL: what
/// the mark's QR code carries.
pub fn verify_url(base: &str, serial: &str) -> String {
    format!("{}/v1/verify/{serial}", base.trim_end_matches('/'))
}

/// Whether marks made under this base URL carry a QR code that decodes at
/// [`MIN_SIZE`].
pub fn verify_base_fits_the_mark(base: &str) -> bool {
    verify_url(base, &"0".repeat(crate::serial::SERIAL_LEN)).len() <= MAX_QR_URL
}

/// A stamp job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    /// Whose quota pays.
    pub account: AccountId,
    /// Who sees the job (the reseller's pool for reseller jobs).
    pub owner: AccountId,
    /// What verification shows as the channel (`portal` or the reseller's name).
    pub channel: String,
    pub reseller_id: Option<String>,
    pub customer_id: Option<String>,
    pub document_id: String,
    pub status: JobStatus,
    pub serial: Serial,
    /// Where the uploaded document is (the document store's key).
    pub source_key: String,
    /// The version (S3 ETag) of the upload that was accepted: the worker
    /// stamps exactly that one, never a file put there afterwards.
    pub source_version: Option<String>,
    pub placement: Placement,
    pub reason: Option<String>,
    pub client_reference: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub stamped_key: Option<String>,
    pub sha256: Option<String>,
    /// Attempts started before this one.
    pub attempts: i64,
    /// When the API promised, at the accept, that the job would be final
    /// (see [`promised_within_ms`]); absent on jobs accepted before the
    /// promise was made.
    pub done_by_ms: Option<i64>,
}

impl Job {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// As the API shows it, with a download URL when there is one.
    pub fn view(&self, download_url: Option<String>) -> JobView {
        JobView {
            job_id: self.job_id.clone(),
            status: self.status,
            serial: self.serial.to_string(),
            page: self.placement.page,
            created_at: crate::time::rfc3339(self.created_ms),
            finished_at: self.finished_ms.map(crate::time::rfc3339),
            error: self.error_code.as_ref().map(|code| JobError {
                code: code.clone(),
                message: self.error_message.clone(),
            }),
            sha256: self.sha256.clone(),
            download_url,
            client_reference: self.client_reference.clone(),
            customer_id: self.customer_id.clone(),
            done_by: self.done_by_ms.map(crate::time::rfc3339),
            queue_position: None,
            poll_after_seconds: None,
        }
    }
}

/// The id of the job a request makes, from what identifies the request
/// (`seed`: its caller, idempotency key, fingerprint and place in a batch):
/// a retry after a crash, a lost answer or a queue that refused finds the
/// first attempt's job instead of reserving a second stamp. Shaped like
/// every other id.
pub fn job_id_for(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("job_{}", ulid::Ulid::from_bytes(bytes))
}

/// How long an unfinished job may go without news before the schedule puts
/// its message on the queue again (a message lost between the accept and
/// the queue, or an accept that died before sending it). Longer than a job
/// normally waits, so a busy queue is rarely doubled; the worker takes a
/// second message for a job once.
pub const RESEND_AFTER_MS: i64 = 15 * 60 * 1000;

/// Jobs ended per minute lately, from the counts of the last whole minute
/// and of the current one (`into_minute_ms` into it): the current pace when
/// it is faster (a deadline's ramp shows there first), judged on at least 10
/// seconds of it.
pub fn drain_per_minute(last_minute: u64, this_minute: u64, into_minute_ms: i64) -> u64 {
    let seconds = (into_minute_ms / 1000).clamp(10, 60) as u64;
    last_minute.max(this_minute * 60 / seconds)
}

/// How long a job being stamped usually takes to finish from here.
pub const PROCESSING_POLL_SECONDS: u32 = 2;
/// The longest a client is told to wait between two reads of a job: also
/// how late, at worst, a client following the advice sees its job end.
pub const MAX_POLL_SECONDS: u32 = 15;

/// When a client following a job should read it again, in seconds (`None`
/// once it is final). A queued job's wait is its queue position over the
/// measured drain (`drain_per_minute`, jobs ended per minute); it is read
/// again at half that wait, so its change is seen soon after it happens,
/// between 1 and [`MAX_POLL_SECONDS`]. With no measured drain (idle, or stalled),
/// a tenth of a second per job ahead.
pub fn poll_after_seconds(
    status: JobStatus,
    queue_position: Option<i64>,
    drain_per_minute: Option<u64>,
) -> Option<u32> {
    match status {
        JobStatus::Done | JobStatus::Failed => None,
        JobStatus::Processing => Some(PROCESSING_POLL_SECONDS),
        JobStatus::Queued => {
            let ahead = queue_position.unwrap_or(0).max(0) as f64;
            let wait = match drain_per_minute {
                Some(finished) if finished > 0 => ahead / (finished as f64 / 60.0),
                _ => ahead / 10.0,
            };
            Some(((wait / 2.0).ceil() as u32).clamp(1, MAX_POLL_SECONDS))
        }
    }
}

/// The least time a job is promised: a job is fetched, stamped, signed and
/// stored in well under a second, but the worker's scale-out at a deadline
/// takes tens of seconds on AWS (the jobs mapping adds pollers each minute).
pub const PROMISE_FLOOR_MS: i64 = 60_000;
/// The most time a job is promised: beyond it the schedule would send the
/// job's message again ([`RESEND_AFTER_MS`]), so a later promise would count
/// on a path meant for lost messages.
pub const PROMISE_CAP_MS: i64 = RESEND_AFTER_MS;

/// How long after its accept the API promises a job to be final (done, or
/// failed with its stamp returned): [`PROMISE_FLOOR_MS`] plus twice the
/// wait its place in the queue predicts at the measured drain, at most
/// [`PROMISE_CAP_MS`]. With no drain measured (an idle queue, or one that
/// stalled), ten jobs a second are assumed, as for polling. Twice, because
/// the drain is the last minute's and a deadline's ramp outruns it before
/// the workers scale out. It assumes no worker dies on the job: a crashed
/// invocation's message comes back only after the queue's visibility
/// timeout (180 s), and that job can end past its promise (an incident,
/// not a deadline's load).
pub fn promised_within_ms(queue_position: i64, drain_per_minute: Option<u64>) -> i64 {
    let ahead = queue_position.max(0) as f64;
    let per_second = match drain_per_minute {
        Some(finished) if finished > 0 => finished as f64 / 60.0,
        _ => 10.0,
    };
    let expected_ms = ahead / per_second * 1000.0;
    (PROMISE_FLOOR_MS as f64 + 2.0 * expected_ms).min(PROMISE_CAP_MS as f64) as i64
}

/// Why a job failed, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobError {
    pub code: String,
    pub message: Option<String>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    pub serial: String,
    pub page: u32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// When the API promised, at the accept, that the job would be final.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    /// While queued: about how many jobs wait or are being stamped now (the
    /// queue's own estimate; the queue is not first-in-first-out, so this
    /// is the wait to expect, not a place in a line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i64>,
    /// Until the job is final: when to read it again, in seconds (also sent
    /// as `Retry-After`), from its place in the queue and the measured drain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_after_seconds: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_job_and_only_its_job() {
        let id = job_id_for("user-1|stamps|key-1|hash|0");
        assert_eq!(id, job_id_for("user-1|stamps|key-1|hash|0"));
        assert!(crate::ids::is_id(&id, "job_"), "{id}");
        let others = [
            job_id_for("user-2|stamps|key-1|hash|0"),
            job_id_for("user-1|stamps|key-2|hash|0"),
            job_id_for("user-1|stamps|key-1|hash|1"),
        ];
        for other in others {
            assert_ne!(id, other);
        }
    }

    #[test]
    fn a_job_is_promised_its_queue_wait_twice_over_a_floor_and_never_past_a_resend() {
        // Nothing ahead: the floor, whatever the drain.
        assert_eq!(promised_within_ms(0, None), PROMISE_FLOOR_MS);
        assert_eq!(promised_within_ms(-3, Some(600)), PROMISE_FLOOR_MS);
        // 600 ahead at 600 a minute is a 60 s wait: promised 60 + 120 s.
        assert_eq!(promised_within_ms(600, Some(600)), 180_000);
        // A faster drain promises sooner; an unmeasured one assumes 10/s.
        assert!(promised_within_ms(600, Some(6_000)) < promised_within_ms(600, Some(600)));
        assert_eq!(promised_within_ms(600, None), 180_000);
        assert_eq!(promised_within_ms(600, Some(0)), 180_000);
        // A queue too long for the promise is capped at the resend.
        assert_eq!(promised_within_ms(1_000_000, Some(60)), RESEND_AFTER_MS);
    }

    #[test]
    fn clients_are_told_when_to_ask_again_from_the_queue_and_its_drain() {
        use JobStatus::*;
        assert_eq!(poll_after_seconds(Done, None, Some(600)), None);
        assert_eq!(poll_after_seconds(Failed, None, None), None);
        assert_eq!(poll_after_seconds(Processing, None, None), Some(2));
        // 600 jobs a minute drain 10 a second: 100 ahead is a 10 s wait,
        // read again in 5 s; 4 ahead, in 1 s.
        assert_eq!(poll_after_seconds(Queued, Some(100), Some(600)), Some(5));
        assert_eq!(poll_after_seconds(Queued, Some(4), Some(600)), Some(1));
        // A slow drain is waited out, up to the cap.
        assert_eq!(poll_after_seconds(Queued, Some(100), Some(60)), Some(15));
        assert_eq!(poll_after_seconds(Queued, Some(20), Some(60)), Some(10));
        // Nothing measured: a tenth of a second per job ahead.
        assert_eq!(poll_after_seconds(Queued, Some(100), Some(0)), Some(5));
        assert_eq!(poll_after_seconds(Queued, None, None), Some(1));
        assert_eq!(poll_after_seconds(Queued, Some(-3), None), Some(1));
    }

    #[test]
    fn the_drain_is_the_faster_of_the_last_minute_and_the_current_pace() {
        assert_eq!(drain_per_minute(120, 0, 5_000), 120);
        // 50 in the first 15 s of this minute: 200 a minute.
        assert_eq!(drain_per_minute(120, 50, 15_000), 200);
        // Judged on at least 10 s: 5 in the first 2 s is 30 a minute.
        assert_eq!(drain_per_minute(0, 5, 2_000), 30);
        assert_eq!(drain_per_minute(0, 0, 30_000), 0);
    }

    #[test]
    fn final_states_never_move() {
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                if from.is_final() {
                    assert!(!from.can_move_to(to), "{from} -> {to}");
                }
            }
            assert_eq!(JobStatus::parse(from.as_str()), Some(from));
        }
        assert!(JobStatus::Queued.can_move_to(JobStatus::Processing));
        assert!(JobStatus::Processing.can_move_to(JobStatus::Processing));
        assert!(JobStatus::Processing.can_move_to(JobStatus::Done));
        assert!(
            !JobStatus::Queued.can_move_to(JobStatus::Done),
            "a job is stored before it is done"
        );
        assert!(JobStatus::Queued.can_move_to(JobStatus::Failed));
        assert_eq!(JobStatus::parse("lost"), None);
    }
}

/// The name a stamped document downloads as: the user's file name with
/// `-meterai` before its extension (`surat-lamaran.pdf` ->
/// `surat-lamaran-meterai.pdf`). Folders, control characters and quotes
/// are dropped; no usable name gives `dokumen-meterai.pdf`.
pub fn stamped_filename(uploaded: Option<&str>) -> String {
    let base = uploaded
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && !is_direction_mark(*c))
        .collect::<String>();
    let stem = base
        .strip_suffix(".pdf")
        .or_else(|| base.strip_suffix(".PDF"))
        .unwrap_or(&base)
        .trim();
    let stem: String = stem.chars().take(200).collect();
    if stem.is_empty() {
        return "dokumen-meterai.pdf".to_string();
    }
    format!("{stem}-meterai.pdf")
}

/// Unicode's invisible direction controls: in a file name they can make
/// `tagihan\u{202E}fdp.exe` read as `tagihanexe.pdf`, so they are dropped.
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `Content-Disposition` of a download named `filename`: an ASCII fallback
/// and the exact name in UTF-8 (RFC 6266, RFC 8187).
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn a_stamped_file_keeps_the_users_name() {
        assert_eq!(
            stamped_filename(Some("surat-lamaran.pdf")),
            "surat-lamaran-meterai.pdf"
        );
        assert_eq!(stamped_filename(Some("CV Budi.PDF")), "CV Budi-meterai.pdf");
        assert_eq!(
            stamped_filename(Some("../../etc/kontrak.pdf")),
            "kontrak-meterai.pdf"
        );
        assert_eq!(
            stamped_filename(Some("C:\\Users\\x\\ijazah.pdf")),
            "ijazah-meterai.pdf"
        );
        assert_eq!(stamped_filename(Some("a\"b\u{7}.pdf")), "ab-meterai.pdf");
        assert_eq!(
            stamped_filename(Some("tagihan\u{202E}fdp.exe.pdf")),
            "tagihanfdp.exe-meterai.pdf"
        );
        assert_eq!(stamped_filename(Some(".pdf")), "dokumen-meterai.pdf");
        assert_eq!(stamped_filename(None), "dokumen-meterai.pdf");
    }

    #[test]
    fn the_disposition_carries_ascii_and_utf8_names() {
        assert_eq!(
            content_disposition("surat-lamaran-meterai.pdf"),
            "attachment; filename=\"surat-lamaran-meterai.pdf\"; filename*=UTF-8''surat-lamaran-meterai.pdf"
        );
        let unicode = content_disposition("surat ñ-meterai.pdf");
        assert!(
            unicode.contains("filename=\"surat _-meterai.pdf\""),
            "{unicode}"
        );
        assert!(
            unicode.contains("filename*=UTF-8''surat%20%C3%B1-meterai.pdf"),
            "{unicode}"
        );
    }
}
