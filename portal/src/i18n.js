// Words of the portal, Bahasa Indonesia first, English second, and the
// plain-language meaning of every error code the API can answer.

export const messages = {
  id: {
    lang_switch: "English", signin: "Masuk", signup: "Daftar", signout: "Keluar", dashboard: "Beranda",
    buy: "Beli meterai", stamp: "Bubuhkan meterai", history: "Riwayat", verify: "Verifikasi",
    username: "E-mail atau nomor HP (08…)", password: "Kata sandi", code: "Kode verifikasi (6 angka)",
    password_hint: "Minimal 8 karakter, dengan huruf kecil dan angka.",
    signup_title: "Buat akun", signin_title: "Masuk ke meterai", confirm_title: "Konfirmasi akun",
    code_sent: "Kode dikirim ke {to}.", confirm: "Konfirmasi", resend: "Kirim ulang kode",
    no_account: "Belum punya akun?", have_account: "Sudah punya akun?",
    confirmed: "Akun terkonfirmasi. Silakan masuk.", forgot: "Lupa kata sandi?",
    available: "Tersedia", reserved: "Diproses", spent: "Terpakai",
    quantity: "Jumlah meterai", price_each: "Harga per meterai {price}", total: "Total {total}",
    pay: "Lanjut ke pembayaran", order_pending: "Menunggu pembayaran…",
    order_crediting: "Pembayaran diterima, kuota sedang ditambahkan…", order_paid: "Pembayaran berhasil. {n} meterai masuk ke akun Anda.",
    order_closed: "Pesanan ditutup ({status}).", open_payment: "Buka halaman pembayaran",
    choose_pdf: "Pilih dokumen PDF (maks. {max})", uploading: "Mengunggah…", page: "Halaman",
    place_hint: "Ketuk atau geser kotak meterai ke tempat yang Anda inginkan.",
    stamp_now: "Bubuhkan meterai di sini", queued: "Dalam antrean: sekitar {n} dokumen sedang diproses atau menunggu.", processing: "Sedang dibubuhkan…", done_by: "Rampung paling lambat {when}.",
    done: "Selesai. Meterai {serial}.", download: "Unduh dokumen", failed: "Gagal: {why} Meterai Anda sudah dikembalikan.",
    orders: "Pesanan", jobs: "Dokumen bermeterai", refund: "Kembalikan meterai yang belum dipakai",
    refunded: "{n} meterai dikembalikan.", none: "Belum ada.",
    verify_title: "Periksa dokumen bermeterai", verify_file: "Pilih PDF bermeterai", serial: "Nomor seri",
    check: "Periksa", valid: "Meterai sah dan tanda tangan utuh.", changed: "Dokumen diubah setelah dibubuhi meterai.",
    not_ours: "Meterai ini tidak kami kenal.", serial_known: "Nomor seri ini kami terbitkan: dibubuhkan {when} pada halaman {page}.",
    serial_hint: "Untuk memastikan dokumennya tidak diubah, periksa berkas PDF-nya.", retrying: "Layanan sedang sibuk. Mencoba lagi dalam {s} detik…",
    waiting: "Antrean sedang ramai. Halaman ini mencoba lagi sendiri dalam {s} detik (percobaan ke-{n}). Jangan tutup halaman ini; permintaan Anda tidak akan terkirim dua kali.",
    session_ended: "Sesi Anda berakhir. Silakan masuk lagi.", too_large: "Berkas terlalu besar (maks. {max}).",
    not_pdf: "Berkas ini bukan PDF.", loading: "Memuat…", status_pending: "menunggu", status_paid: "dibayar",
    status_expired: "kedaluwarsa", status_cancelled: "dibatalkan", status_denied: "ditolak",
    job_queued: "antre", job_processing: "diproses", job_done: "selesai", job_failed: "gagal",
    ledger: "Mutasi kuota", move_credit: "pembelian", move_reserve: "dipesan untuk dokumen", move_spend: "terpakai",
    move_release: "dikembalikan (gagal)", move_refund: "dikembalikan (refund)", move_sell: "dijual", move_receive: "diterima",
    move_grant: "koreksi: ditambahkan", move_withdraw: "koreksi: ditarik",
    send_code: "Kirim kode", new_password: "Kata sandi baru", reset: "Simpan kata sandi baru",
    password_reset: "Kata sandi diganti. Silakan masuk.", cancel: "Batal",
    several: "Boleh beberapa dokumen sekaligus (maks. {n}); satu meterai per dokumen.",
    too_many: "Paling banyak {n} dokumen sekaligus.", stamp_all: "Bubuhkan meterai pada {n} dokumen",
    uploading_n: "Mengunggah dokumen {n} dari {of}…", document: "Dokumen",
    receipt: "Bukti pembayaran", order_number: "Nomor pesanan", payment_reference: "Referensi pembayaran",
    total_paid: "Total dibayar", paid_at: "Dibayar pada", refunded_quantity: "Dikembalikan", print_receipt: "Cetak bukti",
  },
  en: {
    lang_switch: "Bahasa Indonesia", signin: "Sign in", signup: "Sign up", signout: "Sign out", dashboard: "Home",
    buy: "Buy stamps", stamp: "Stamp a document", history: "History", verify: "Verify",
    username: "E-mail or mobile number (08…)", password: "Password", code: "Verification code (6 digits)",
    password_hint: "At least 8 characters, with a small letter and a digit.",
    signup_title: "Create an account", signin_title: "Sign in to meterai", confirm_title: "Confirm your account",
    code_sent: "Code sent to {to}.", confirm: "Confirm", resend: "Send the code again",
    no_account: "No account yet?", have_account: "Have an account?",
    confirmed: "Account confirmed. Please sign in.", forgot: "Forgot your password?",
    available: "Available", reserved: "In progress", spent: "Used",
    quantity: "Number of stamps", price_each: "{price} per stamp", total: "Total {total}",
    pay: "Continue to payment", order_pending: "Waiting for payment…",
    order_crediting: "Payment received, adding your stamps…", order_paid: "Paid. {n} stamps are in your account.",
    order_closed: "Order closed ({status}).", open_payment: "Open the payment page",
    choose_pdf: "Choose a PDF (up to {max})", uploading: "Uploading…", page: "Page",
    place_hint: "Tap or drag the stamp box to where you want it.",
    stamp_now: "Stamp here", queued: "Queued: about {n} documents are being stamped or waiting.", processing: "Stamping…", done_by: "Promised by {when}.",
    done: "Done. Stamp {serial}.", download: "Download", failed: "Failed: {why} Your stamp was returned.",
    orders: "Orders", jobs: "Stamped documents", refund: "Refund unused stamps",
    refunded: "{n} stamps refunded.", none: "Nothing yet.",
    verify_title: "Check a stamped document", verify_file: "Choose a stamped PDF", serial: "Serial number",
    check: "Check", valid: "The stamp is genuine and its signature intact.", changed: "The document was changed after it was stamped.",
    not_ours: "We do not know this stamp.", serial_known: "We issued this serial: stamped {when} on page {page}.",
    serial_hint: "To be sure the document was not changed, check its PDF file.", retrying: "The service is busy. Trying again in {s} seconds…",
    waiting: "It is busy right now. This page tries again by itself in {s} seconds (attempt {n}). Keep this page open; your request will not be sent twice.",
    session_ended: "Your session ended. Please sign in again.", too_large: "The file is too large (up to {max}).",
    not_pdf: "This file is not a PDF.", loading: "Loading…", status_pending: "pending", status_paid: "paid",
    status_expired: "expired", status_cancelled: "cancelled", status_denied: "denied",
    job_queued: "queued", job_processing: "processing", job_done: "done", job_failed: "failed",
    ledger: "Quota movements", move_credit: "purchase", move_reserve: "reserved for a document", move_spend: "used",
    move_release: "returned (failed)", move_refund: "returned (refund)", move_sell: "sold", move_receive: "received",
    move_grant: "correction: added", move_withdraw: "correction: taken back",
    send_code: "Send the code", new_password: "New password", reset: "Save the new password",
    password_reset: "Password changed. Please sign in.", cancel: "Cancel",
    several: "You may choose several documents at once (up to {n}); one stamp each.",
    too_many: "At most {n} documents at once.", stamp_all: "Stamp {n} documents",
    uploading_n: "Uploading document {n} of {of}…", document: "Document",
    receipt: "Receipt", order_number: "Order number", payment_reference: "Payment reference",
    total_paid: "Total paid", paid_at: "Paid on", refunded_quantity: "Refunded", print_receipt: "Print receipt",
  },
};

// Every code the API answers with, in plain words.
export const errors = {
  id: {
    BAD_REQUEST: "Permintaan tidak dapat diproses.", INVALID_JSON: "Permintaan tidak dapat dibaca.",
    PAYLOAD_TOO_LARGE: "Permintaan terlalu besar.", INVALID_QUANTITY: "Jumlah meterai 1 sampai 1.000.",
    INVALID_CURSOR: "Halaman daftar tidak valid.", INVALID_LIMIT: "Batas daftar tidak valid.",
    IDEMPOTENCY_KEY_MISSING: "Permintaan tidak lengkap. Muat ulang halaman.", IDEMPOTENCY_KEY_INVALID: "Permintaan tidak lengkap. Muat ulang halaman.",
    IDEMPOTENCY_KEY_REUSED: "Permintaan ini sudah dikirim dengan isi lain.", IDEMPOTENCY_IN_PROGRESS: "Permintaan yang sama sedang diproses.",
    UNAUTHENTICATED: "Silakan masuk dulu.", TOKEN_EXPIRED: "Sesi Anda berakhir. Silakan masuk lagi.", INVALID_TOKEN: "Sesi tidak valid. Silakan masuk lagi.",
    NOT_FOUND: "Tidak ditemukan.", ORDER_NOT_FOUND: "Pesanan tidak ditemukan.", ORDER_NOT_PAID: "Pesanan belum dibayar.",
    NOTHING_TO_REFUND: "Tidak ada meterai yang bisa dikembalikan.", REFUND_EXCEEDS_UNUSED: "Jumlah melebihi meterai yang belum dipakai.",
    REFUND_WINDOW_CLOSED: "Batas waktu pengembalian sudah lewat.", INSUFFICIENT_QUOTA: "Kuota meterai Anda habis. Beli dulu.",
    CORRECTION_EXISTS: "Koreksi dengan tiket ini sudah tercatat.",
    UNSUPPORTED_MEDIA_TYPE: "Permintaan harus berformat JSON.", CROSS_SITE_REQUEST: "Masuk hanya bisa dari halaman meterai sendiri.",
    INVALID_SIGNATURE: "Tanda tangan tidak valid.", AMOUNT_MISMATCH: "Jumlah pembayaran tidak sesuai.",
    UNKNOWN_TRANSACTION_STATUS: "Status pembayaran tidak dikenal.", GATEWAY_STATUS_INCONSISTENT: "Jawaban gerbang pembayaran tidak konsisten.",
    CONTENTION: "Sedang ramai. Coba lagi sebentar.", DOCUMENT_NOT_FOUND: "Dokumen tidak ditemukan; unggah lagi.",
    DOCUMENT_TOO_LARGE: "Dokumen terlalu besar.", NOT_A_PDF: "Berkas ini bukan PDF.", INVALID_PLACEMENT: "Letak meterai tidak valid.",
    INVALID_FILENAME: "Nama berkas tidak valid.", JOB_NOT_FOUND: "Pekerjaan tidak ditemukan.", TOO_MANY_ITEMS: "Terlalu banyak sekaligus.",
    DEPENDENCY_UNAVAILABLE: "Layanan sedang sibuk. Coba lagi sebentar.", MISCONFIGURED: "Layanan sedang bermasalah. Coba lagi nanti.",
    INVALID_API_KEY: "Kunci API tidak valid.", FORBIDDEN_FOR_CALLER: "Tidak diizinkan.", CUSTOMER_NOT_FOUND: "Pelanggan tidak ditemukan.",
    WEBHOOK_SIGNATURE_INVALID: "Tanda tangan webhook tidak valid.", WEBHOOK_TIMESTAMP_OUT_OF_RANGE: "Waktu webhook di luar batas.",
    WEBHOOK_HEADERS_MISSING: "Header webhook tidak lengkap.", UNKNOWN_EVENT_TYPE: "Jenis peristiwa tidak dikenal.",
    INVALID_SERIAL: "Nomor seri tidak valid (22 karakter).", SERIAL_NOT_FOUND: "Nomor seri tidak kami kenal.",
    INVALID_WEBHOOK_URL: "Alamat webhook tidak valid.", INVALID_USERNAME: "Masukkan e-mail atau nomor HP Indonesia (08… atau +62…).",
    WEAK_PASSWORD: "Kata sandi minimal 8 karakter, dengan huruf kecil dan angka.", WRONG_CODE: "Kode salah atau sudah kedaluwarsa.",
    ACCOUNT_EXISTS: "Akun ini sudah ada. Silakan masuk.", WRONG_CREDENTIALS: "E-mail/nomor HP atau kata sandi salah.",
    ACCOUNT_NOT_CONFIRMED: "Akun belum dikonfirmasi. Masukkan kode yang kami kirim.", SESSION_ENDED: "Sesi Anda berakhir. Silakan masuk lagi.",
    PAGE_OUT_OF_RANGE: "Halaman itu tidak ada di dokumen.", RECT_OFF_PAGE: "Meterai keluar dari halaman.",
    ENCRYPTED_PDF: "PDF terkunci kata sandi; buka kuncinya dulu.", MALFORMED_PDF: "PDF rusak.", DAMAGED_PDF: "PDF rusak.",
    NO_PAGES: "PDF tidak punya halaman.", TOO_MANY_PAGES: "PDF terlalu banyak halaman.", PDF_TOO_COMPLEX: "PDF terlalu rumit untuk diproses.",
    DOCUMENT_GONE: "Dokumen sudah terhapus; unggah lagi.", DOCUMENT_CHANGED: "Dokumen diganti setelah meterai diminta; unggah lagi.", VERIFIER_BUSY: "Pemeriksa sedang sibuk; coba lagi sebentar.", SIGNING_FAILED: "Penandatanganan gagal.", STAMP_CRASHED: "Pembubuhan gagal.",
    STAMP_TIMEOUT: "Pembubuhan terlalu lama.", QUEUE_UNAVAILABLE: "Antrean sedang tidak tersedia.", DELIVERY_FAILED: "Pengiriman gagal.",
    NETWORK: "Tidak ada koneksi. Periksa internet Anda.", UNKNOWN: "Terjadi kesalahan.",
  },
  en: {
    BAD_REQUEST: "The request could not be processed.", INVALID_JSON: "The request could not be read.",
    PAYLOAD_TOO_LARGE: "The request is too large.", INVALID_QUANTITY: "Between 1 and 1,000 stamps.",
    INVALID_CURSOR: "Invalid list page.", INVALID_LIMIT: "Invalid list size.",
    IDEMPOTENCY_KEY_MISSING: "Incomplete request. Reload the page.", IDEMPOTENCY_KEY_INVALID: "Incomplete request. Reload the page.",
    IDEMPOTENCY_KEY_REUSED: "This request was already sent with other contents.", IDEMPOTENCY_IN_PROGRESS: "The same request is being processed.",
    UNAUTHENTICATED: "Please sign in first.", TOKEN_EXPIRED: "Your session ended. Please sign in again.", INVALID_TOKEN: "Invalid session. Please sign in again.",
    NOT_FOUND: "Not found.", ORDER_NOT_FOUND: "Order not found.", ORDER_NOT_PAID: "The order is not paid.",
    NOTHING_TO_REFUND: "No stamps can be refunded.", REFUND_EXCEEDS_UNUSED: "More than the unused stamps.",
    REFUND_WINDOW_CLOSED: "The refund period is over.", INSUFFICIENT_QUOTA: "You have no stamps left. Buy some first.",
    CORRECTION_EXISTS: "A correction with this ticket is already recorded.",
    UNSUPPORTED_MEDIA_TYPE: "The request must be JSON.", CROSS_SITE_REQUEST: "Sign-in works only from meterai's own pages.",
    INVALID_SIGNATURE: "Invalid signature.", AMOUNT_MISMATCH: "The payment amount does not match.",
    UNKNOWN_TRANSACTION_STATUS: "Unknown payment status.", GATEWAY_STATUS_INCONSISTENT: "The payment gateway's answer is inconsistent.",
    CONTENTION: "Busy. Try again in a moment.", DOCUMENT_NOT_FOUND: "Document not found; upload it again.",
    DOCUMENT_TOO_LARGE: "The document is too large.", NOT_A_PDF: "This file is not a PDF.", INVALID_PLACEMENT: "Invalid stamp position.",
    INVALID_FILENAME: "Invalid file name.", JOB_NOT_FOUND: "Job not found.", TOO_MANY_ITEMS: "Too many at once.",
    DEPENDENCY_UNAVAILABLE: "The service is busy. Try again in a moment.", MISCONFIGURED: "The service has a problem. Try again later.",
    INVALID_API_KEY: "Invalid API key.", FORBIDDEN_FOR_CALLER: "Not allowed.", CUSTOMER_NOT_FOUND: "Customer not found.",
    WEBHOOK_SIGNATURE_INVALID: "Invalid webhook signature.", WEBHOOK_TIMESTAMP_OUT_OF_RANGE: "Webhook time out of range.",
    WEBHOOK_HEADERS_MISSING: "Webhook headers missing.", UNKNOWN_EVENT_TYPE: "Unknown event type.",
    INVALID_SERIAL: "Invalid serial number (22 characters).", SERIAL_NOT_FOUND: "We do not know this serial number.",
    INVALID_WEBHOOK_URL: "Invalid webhook address.", INVALID_USERNAME: "Enter an e-mail address or an Indonesian mobile number (08… or +62…).",
    WEAK_PASSWORD: "A password has at least 8 characters, with a small letter and a digit.", WRONG_CODE: "The code is wrong or has expired.",
    ACCOUNT_EXISTS: "This account exists. Please sign in.", WRONG_CREDENTIALS: "Wrong e-mail/mobile number or password.",
    ACCOUNT_NOT_CONFIRMED: "The account is not confirmed yet. Enter the code we sent.", SESSION_ENDED: "Your session ended. Please sign in again.",
    PAGE_OUT_OF_RANGE: "The document has no such page.", RECT_OFF_PAGE: "The stamp goes off the page.",
    ENCRYPTED_PDF: "The PDF is password-protected; unlock it first.", MALFORMED_PDF: "The PDF is damaged.", DAMAGED_PDF: "The PDF is damaged.",
    NO_PAGES: "The PDF has no pages.", TOO_MANY_PAGES: "The PDF has too many pages.", PDF_TOO_COMPLEX: "The PDF is too complex to process.",
    DOCUMENT_GONE: "The document was deleted; upload it again.", DOCUMENT_CHANGED: "The document was replaced after the stamp was requested; upload it again.", VERIFIER_BUSY: "The verifier is busy; try again shortly.", SIGNING_FAILED: "Signing failed.", STAMP_CRASHED: "Stamping failed.",
    STAMP_TIMEOUT: "Stamping took too long.", QUEUE_UNAVAILABLE: "The queue is unavailable.", DELIVERY_FAILED: "Delivery failed.",
    NETWORK: "No connection. Check your internet.", UNKNOWN: "Something went wrong.",
  },
};

// The chosen language is kept in the browser (nothing secret).
const store = globalThis.localStorage;
let lang = store?.getItem("lang") === "en" ? "en" : "id";
export const language = () => lang;
export function setLanguage(next) {
  lang = next === "en" ? "en" : "id";
  store?.setItem("lang", lang);
  if (globalThis.document) document.documentElement.lang = lang;
}

export function t(key, vars = {}) {
  const text = messages[lang][key] ?? messages.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function errorText(code) {
  return errors[lang][code] ?? errors[lang].UNKNOWN;
}

export const rupiah = (amount) =>
  new Intl.NumberFormat("id-ID", { style: "currency", currency: "IDR", maximumFractionDigits: 0 }).format(amount);

export const wib = (iso) =>
  new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "id-ID", {
    timeZone: "Asia/Jakarta", dateStyle: "medium", timeStyle: "short",
  }).format(new Date(iso)) + " WIB";

export const megabytes = (bytes) => `${Math.floor(bytes / 1_000_000)} MB`;
