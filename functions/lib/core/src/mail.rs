//! The e-mails a portal user gets: order paid (a receipt), stamp done, stamp
//! failed (why, and that the stamp was returned), refund done. Bahasa
//! Indonesia first, English second. Rendered from the same data a reseller's
//! webhook carries, so both channels tell the same story.

use crate::events::EventType;

/// One message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
}

fn rupiah(amount: i64) -> String {
    let digits = amount.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("Rp{grouped}")
}

/// The e-mail for an event of a portal user's account (`None` is kept for
/// events users will not be mailed about). `portal_url` is where links point: a user
/// is sent to the portal, never to a raw download URL.
pub fn render(kind: EventType, data: &serde_json::Value, portal_url: &str) -> Option<Mail> {
    let text = |name: &str| data.get(name).and_then(|v| v.as_str()).unwrap_or("-");
    let number = |name: &str| data.get(name).and_then(|v| v.as_i64()).unwrap_or(0);
    let portal = portal_url.trim_end_matches('/');
    let footer = "\n\n-- \nmeterai: e-Meterai tanpa antre. Surel ini dikirim otomatis; jangan dibalas.\n\
                  meterai: e-Meterai without the queue. This message was sent automatically; do not reply.\n";
    let mail = match kind {
        EventType::OrderPaid => Mail {
            subject: format!(
                "Pembayaran diterima: {} meterai (Payment received) {}",
                number("quantity"),
                text("order_id")
            ),
            text: format!(
                "Terima kasih. Pembayaran Anda sudah kami terima dan kuota meterai sudah masuk ke akun Anda.\n\n\
                 Kuitansi\n\
                 Nomor pesanan : {order}\n\
                 Jumlah        : {qty} meterai\n\
                 Total         : {total}\n\
                 Waktu bayar   : {paid}\n\
                 Metode        : {method}\n\n\
                 Thank you. We received your payment and the stamps are in your account.\n\
                 Receipt: order {order}, {qty} stamps, {total}, paid at {paid} by {method}.\n\n\
                 Lihat kuota Anda / See your quota: {portal}/#/kuota{footer}",
                order = text("order_id"),
                qty = number("quantity"),
                total = rupiah(number("total")),
                paid = crate::time::parse_rfc3339_utc(text("paid_at"))
                    .map_or_else(|| text("paid_at").to_string(), crate::time::wib_display),
                method = text("payment_method"),
            ),
        },
        EventType::StampCompleted => Mail {
            subject: format!("Meterai selesai dibubuhkan (Stamp done): {}", text("serial")),
            text: format!(
                "Dokumen Anda sudah dibubuhi e-Meterai bernomor seri {serial}.\n\
                 Unduh dokumennya di portal: {portal}/#/stamps/{job}\n\n\
                 Your document is stamped with e-Meterai serial {serial}.\n\
                 Download it from the portal: {portal}/#/stamps/{job}{footer}",
                serial = text("serial"),
                job = text("job_id"),
            ),
        },
        EventType::StampFailed => Mail {
            subject: format!("Meterai gagal dibubuhkan (Stamp failed): {}", text("job_id")),
            text: format!(
                "Maaf, dokumen Anda tidak dapat dibubuhi meterai ({code}: {why}).\n\
                 Kuota meterai untuk permintaan ini sudah dikembalikan ke akun Anda; tidak ada biaya.\n\
                 Periksa dokumen lalu coba lagi di portal: {portal}/#/stamps/{job}\n\n\
                 Sorry, your document could not be stamped ({code}: {why}).\n\
                 The stamp for this request was returned to your account; nothing was charged.\n\
                 Check the document and try again in the portal: {portal}/#/stamps/{job}{footer}",
                code = data
                    .pointer("/error/code")
                    .and_then(|v| v.as_str())
                    .unwrap_or("-"),
                why = data
                    .pointer("/error/message")
                    .and_then(|v| v.as_str())
                    .unwrap_or("-"),
                job = text("job_id"),
            ),
        },
        EventType::RefundCompleted => Mail {
            subject: format!(
                "Pengembalian dana selesai (Refund done): {}",
                text("refund_id")
            ),
            text: format!(
                "Pengembalian dana untuk {qty} meterai yang belum dipakai dari pesanan {order} sudah selesai: {amount}.\n\n\
                 The refund of {qty} unused stamps from order {order} is done: {amount}.\n\n\
                 Riwayat / History: {portal}/#/kuota{footer}",
                qty = number("quantity"),
                order = text("order_id"),
                amount = rupiah(number("amount")),
            ),
        },
    };
    Some(mail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_receipt_carries_the_order_in_both_languages() {
        let mail = render(
            EventType::OrderPaid,
            &json!({"order_id": "ord_1", "quantity": 5, "total": 50_000, "paid_at": "2026-11-23T10:00:00Z", "payment_method": "qris"}),
            "https://portal.test/",
        )
        .unwrap();
        assert!(mail.subject.starts_with("Pembayaran diterima"), "{mail:?}");
        for part in [
            "ord_1",
            "5 meterai",
            "Rp50.000",
            "23 Nov 2026, 17.00 WIB",
            "qris",
            "https://portal.test/#/kuota",
            "Receipt",
        ] {
            assert!(mail.text.contains(part), "{part} in {}", mail.text);
        }
        let bahasa = mail.text.find("Terima kasih").unwrap();
        let english = mail.text.find("Thank you").unwrap();
        assert!(bahasa < english, "Bahasa Indonesia first");
    }

    #[test]
    fn a_failed_stamp_says_why_and_that_the_stamp_came_back() {
        let mail = render(
            EventType::StampFailed,
            &json!({"job_id": "job_1", "error": {"code": "ENCRYPTED_PDF", "message": "the PDF is encrypted"}}),
            "https://portal.test",
        )
        .unwrap();
        assert!(mail.text.contains("ENCRYPTED_PDF: the PDF is encrypted"));
        assert!(mail.text.contains("sudah dikembalikan") && mail.text.contains("was returned"));
        assert!(mail.text.contains("https://portal.test/#/stamps/job_1"));
    }

    #[test]
    fn done_links_to_the_portal_and_refunds_show_the_amount() {
        let done = render(
            EventType::StampCompleted,
            &json!({"job_id": "job_2", "serial": "S1", "download_url": "https://bucket/x?X-Amz-Signature=y"}),
            "https://portal.test",
        )
        .unwrap();
        assert!(done.text.contains("https://portal.test/#/stamps/job_2"));
        assert!(!done.text.contains("X-Amz"), "no raw presigned URL");
        let refund = render(
            EventType::RefundCompleted,
            &json!({"refund_id": "ord_1-r1", "order_id": "ord_1", "quantity": 2, "amount": 20_000}),
            "https://portal.test",
        )
        .unwrap();
        assert!(refund.text.contains("Rp20.000") && refund.subject.contains("ord_1-r1"));
        assert_eq!(rupiah(1_234_567), "Rp1.234.567");
        assert_eq!(rupiah(100), "Rp100");
    }
}
