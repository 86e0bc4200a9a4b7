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
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
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
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_loopback && is_loopback_host(host) => Ok(url),
        _ => Err(bad("the webhook URL must be https://")),
    }
}

/// The address of a URL whose host is a literal IP (which no resolver sees).
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    url.host_str().and_then(|h| {
        h.trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .ok()
    })
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
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "203.0.114.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
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
        let url = check_webhook_url("https://[::1]/hook", false).unwrap();
        assert_eq!(literal_ip(&url), Some("::1".parse().unwrap()));
    }
}
