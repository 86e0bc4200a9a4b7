//! Where a reseller's webhook endpoint may be: the URL's form and the
//! addresses a public endpoint may have.

use std::net::IpAddr;

use crate::error::{codes, Error, Result};

/// Whether an address is one a public endpoint may have: not loopback,
/// private, link-local, shared (CGNAT), unspecified, multicast, documentation
/// or otherwise reserved, for IPv4, IPv6, and IPv4 mapped into IPv6.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            // An IPv4 address carried inside an IPv6 one is judged as IPv4:
            // mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), translated
            // (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4
            // (2002:aabb:ccdd::).
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                ))
            };
            if let Some(v4) = v6.to_ipv4() {
                return !v6.is_loopback() && is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
                // NAT64, and IPv4-translated (::ffff:0:a.b.c.d).
                return is_public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x64 && s[1] == 0xff9b) // local-use NAT64 (64:ff9b:1::/48)
                || (first == 0x100 && s[1..4] == [0, 0, 0]) // discard-only
                || (first == 0x2001 && s[1] == 0) // Teredo (an IPv4 inside, obfuscated)
                || (first == 0x2001 && s[1] == 2 && s[2] == 0) // benchmarking
                || (first == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID (deprecated)
                || (first == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// Where deliveries may go: public addresses only, or loopback as well on
/// the local stage.
pub fn allowed_target(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && ip.is_loopback())
}

/// Checks a webhook endpoint's form: `https://` with a host; plain `http://`
/// only to a loopback address when `allow_loopback` (the local stage). Where
/// the host resolves is checked again at every delivery.
pub fn check_webhook_url(raw: &str, allow_loopback: bool) -> Result<url::Url> {
    let bad = |m: &str| Error::invalid(codes::INVALID_WEBHOOK_URL, m.to_string());
    if raw.len() > 2048 {
        return Err(bad("the webhook URL is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("the webhook URL does not parse"))?;
    let host = url
        .host_str()
        .ok_or_else(|| bad("the webhook URL has no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the webhook URL may not carry credentials"));
    }
    let url = match url.scheme() {
        "https" => url,
        "http" if allow_loopback && is_loopback_host(host) => url,
        _ => return Err(bad("the webhook URL must be https://")),
    };
    // A literal address (in any of the forms the URL standard reads: dotted,
    // a single number, hexadecimal, IPv6 with IPv4 inside) is judged now; a
    // name is judged again where it resolves, at every delivery.
    if literal_ip(&url).is_some_and(|ip| !allowed_target(ip, allow_loopback)) {
        return Err(bad("the webhook URL's address is not a public one"));
    }
    Ok(url)
}

/// The address of a URL whose host is a literal IP (which no resolver sees).
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Where a delivery may be sent: a well-formed endpoint URL whose host, if
/// it is a literal address (which no resolver sees), is allowed. Hosts that
/// are names are checked again at connection time by the client's resolver.
pub fn check_delivery_target(
    raw: &str,
    allow_loopback: bool,
) -> std::result::Result<url::Url, String> {
    let parsed = check_webhook_url(raw, allow_loopback).map_err(|e| e.to_string())?;
    if literal_ip(&parsed).is_some_and(|ip| !allowed_target(ip, allow_loopback)) {
        return Err(format!("{raw} is not a public address"));
    }
    Ok(parsed)
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_deliverable() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::808:808",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "fec0::1",
            "100::1",
            "::ffff:0:a9fe:a9fe",
            "2001:2::1",
            "2001:10::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "203.0.114.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "::ffff:0:808:808",
            "2001:1::1",
            "2001:3::1",
            "2001:20::1",
            "2001:4:112::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(allowed_target("127.0.0.1".parse().unwrap(), true));
        assert!(!allowed_target("10.0.0.1".parse().unwrap(), true));
    }

    #[test]
    fn literal_private_targets_are_refused_even_over_https() {
        assert!(check_delivery_target("https://169.254.169.254/latest", false).is_err());
        assert!(check_delivery_target("https://[::1]/hook", false).is_err());
        assert!(check_delivery_target("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_delivery_target("https://shop.example/hook", false).is_ok());
        assert!(check_delivery_target("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_delivery_target("https://10.0.0.1/hook", true).is_err());
    }

    #[test]
    fn non_public_literal_addresses_are_refused_when_the_url_is_set() {
        for hidden in [
            "https://10.0.0.1/",
            "https://[::ffff:169.254.169.254]/",
            "https://2852039166/",
            "https://[fd00::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a9fe:a9fe::]/",
        ] {
            for local in [false, true] {
                let refused = check_webhook_url(hidden, local).map(|u| u.to_string());
                assert_eq!(
                    refused.map_err(|e| e.code()),
                    Err(codes::INVALID_WEBHOOK_URL),
                    "{hidden} (local: {local})"
                );
            }
        }
        assert!(check_webhook_url("https://8.8.8.8/hook", false).is_ok());
        assert!(check_webhook_url("https://[2606:4700::1111]/hook", false).is_ok());
        // Loopback only on the emulator.
        assert!(check_webhook_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_webhook_url("https://127.0.0.1/hook", false).is_err());
        for loopback in [
            "https://[::1]/hook",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
        ] {
            assert!(check_webhook_url(loopback, false).is_err(), "{loopback}");
        }
    }

    #[test]
    fn webhook_urls_must_be_https_except_loopback_locally() {
        assert!(check_webhook_url("https://shop.example/hooks/meterai", false).is_ok());
        for bad in [
            "http://shop.example/hook",
            "ftp://shop.example/hook",
            "https://user:pw@shop.example/hook",
            "not a url",
            "http://127.0.0.1:8080/hook",
        ] {
            assert_eq!(
                check_webhook_url(bad, false).unwrap_err().code(),
                codes::INVALID_WEBHOOK_URL,
                "{bad}"
            );
        }
        assert!(check_webhook_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_webhook_url("http://[::1]:8080/hook", true).is_ok());
        assert!(check_webhook_url("http://10.0.0.5/hook", true).is_err());
        let url = check_webhook_url("https://[2606:4700::1111]/hook", false).unwrap();
        assert_eq!(literal_ip(&url), Some("2606:4700::1111".parse().unwrap()));
    }
}
