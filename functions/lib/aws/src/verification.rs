//! Public verification's adapters: the serial registry in the table
//! ([`DynamoRegistry`]) and anonymous uploads of files to verify. The checks
//! themselves are `meterai_app::verification`; the HTML page a browser gets
//! from the QR code is the edge's (`meterai::routes::verify`).

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde::Serialize;

use crate::error::{codes, Error, Result};
use crate::keys;
use crate::store::{get_n, get_s};
use crate::AwsClients;
use meterai_app::ports::Registry;
use meterai_core::serial::SerialRecord;
use meterai_core::Serial;

/// The serial registry in the table (`SERIAL#{serial}`), read only.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    pub clients: AwsClients,
    pub table: String,
}

#[async_trait::async_trait]
impl Registry for DynamoRegistry {
    async fn bound(&self, serial: &Serial) -> Result<Option<SerialRecord>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(keys::serial(serial.as_str()).map()))
            .send()
            .await
            .map_err(|e| Error::table(DisplayErrorContext(e)))?;
        Ok(out
            .item()
            .filter(|i| get_s(i, "status") == Some("bound"))
            .map(|item| SerialRecord {
                serial: serial.to_string(),
                valid: true,
                stamped_at: meterai_core::time::rfc3339(get_n(item, "stamped_at").unwrap_or(0)),
                sha256: get_s(item, "sha256").unwrap_or_default().to_string(),
                page: get_n(item, "page")
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
                channel: get_s(item, "channel").unwrap_or("portal").to_string(),
            }))
    }
}

/// Where a file to verify is uploaded: `verify/{upload_id}.pdf`, anonymous,
/// deleted after a day (lifecycle).
fn verify_key(upload_id: &str) -> String {
    format!("verify/{upload_id}.pdf")
}

/// The answer to `POST /v1/verify/uploads`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyUpload {
    pub upload_id: String,
    pub upload_url: String,
    pub method: &'static str,
    pub expires_at: String,
    pub max_bytes: usize,
}

/// Presigns an anonymous upload of a file to verify, for files larger than a
/// request body may be (Lambda takes at most 6 MB in a request), of exactly
/// `size` bytes (checked at the edge).
pub async fn new_upload(
    clients: &AwsClients,
    bucket: &str,
    max_bytes: usize,
    ttl: std::time::Duration,
    size: u64,
) -> Result<VerifyUpload> {
    let upload_id = format!("vup_{}", meterai_core::ids::nonce());
    let key = verify_key(&upload_id);
    let (upload_url, expires_at) =
        crate::stamping::presign_pdf_put(clients, bucket, &key, ttl, size).await?;
    Ok(VerifyUpload {
        upload_id,
        upload_url,
        method: "PUT",
        expires_at,
        max_bytes,
    })
}

/// Reads an uploaded file to verify (404 if there is none, 413 if too large).
pub async fn read_upload(
    clients: &AwsClients,
    bucket: &str,
    upload_id: &str,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    let not_found =
        || Error::not_found(codes::DOCUMENT_NOT_FOUND, format!("no upload {upload_id}"));
    if !meterai_core::ids::is_id(upload_id, "vup_") {
        return Err(not_found());
    }
    let object = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(verify_key(upload_id))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                not_found()
            } else {
                Error::bucket(aws_sdk_s3::error::DisplayErrorContext(e))
            }
        })?;
    crate::stamping::check_pdf_size(object.content_length().unwrap_or(0) as u64, max_bytes)?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(Error::bucket)?
        .into_bytes();
    Ok(bytes.to_vec())
}

/// A serial's record as the operators see it: whatever its state (reserved
/// by an accepted job, bound to a stamped file, void), and the job.
#[derive(Debug, Clone, Serialize)]
pub struct SerialState {
    pub serial: String,
    pub status: String,
    pub job_id: String,
    pub page: i64,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stamped_at: Option<String>,
}

/// The serial's record, or `None` if no job ever claimed it.
pub async fn serial_state(
    clients: &AwsClients,
    table: &str,
    serial: &Serial,
) -> Result<Option<SerialState>> {
    let out = clients
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(keys::serial(serial.as_str()).map()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::table(DisplayErrorContext(e)))?;
    Ok(out.item().map(|item| SerialState {
        serial: serial.to_string(),
        status: get_s(item, "status").unwrap_or_default().to_string(),
        job_id: get_s(item, "job_id").unwrap_or_default().to_string(),
        page: get_n(item, "page").unwrap_or(0),
        channel: get_s(item, "channel").unwrap_or_default().to_string(),
        sha256: get_s(item, "sha256").map(str::to_string),
        stamped_at: get_n(item, "stamped_at").map(meterai_core::time::rfc3339),
    }))
}
