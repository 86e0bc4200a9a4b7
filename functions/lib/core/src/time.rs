//! Time as the domain counts it: milliseconds since the epoch, shown as RFC 3339.

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 rendering of epoch milliseconds, for API responses.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Western Indonesia Time (WIB, UTC+7): the clock of the buyer and of the
/// payment gateway.
pub fn wib(ms: i64) -> time::OffsetDateTime {
    let offset = time::UtcOffset::from_hms(7, 0, 0).expect("+07:00 is an offset");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

/// `2026-11-24 06:06:48 +0700`: the form Midtrans takes times in.
pub fn midtrans_time(ms: i64) -> String {
    let t = wib(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0700",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
        assert!(now_ms() > 1_700_000_000_000);
    }

    #[test]
    fn renders_gateway_times_in_wib() {
        // 2026-11-23T23:06:48Z is already the 24th in Jakarta.
        assert_eq!(
            midtrans_time(1_795_475_208_000),
            "2026-11-24 06:06:48 +0700"
        );
    }
}
