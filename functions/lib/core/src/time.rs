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

/// Epoch milliseconds of a UTC RFC 3339 time as [`rfc3339`] writes it
/// (`2026-11-23T10:00:00Z`, with or without a fraction); `None` otherwise.
pub fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .filter(|t| t.offset().is_utc() && text.ends_with('Z'))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `24 Nov 2026, 06.00 WIB`: a time as an Indonesian reader expects it.
pub fn wib_display(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
    ];
    let t = wib(ms);
    format!(
        "{} {} {}, {:02}.{:02} WIB",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute()
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
    fn reads_back_what_it_writes_and_shows_wib() {
        for ms in [0, 1_500, 1_795_475_208_000, 1_795_475_208_123] {
            assert_eq!(parse_rfc3339_utc(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:00:00+07:00",
            "2026-13-23T10:00:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T1a:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_utc(bad), None, "{bad}");
        }
        assert_eq!(wib_display(1_795_475_208_000), "24 Nov 2026, 06.06 WIB");
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
