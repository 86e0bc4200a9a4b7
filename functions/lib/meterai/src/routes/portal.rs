//! The applicants' web portal, same-origin with the API: `GET /` (the page),
//! `GET /assets/{hashed name}` (scripts, styles, pdf.js; immutable), and the
//! session routes under `/auth/` that stand between the browser and the
//! user pool, so that the refresh token lives only in an `HttpOnly` cookie
//! no script can read. The page's script keeps the 15-minute access token
//! in memory and asks `/auth/refresh` for a new one.

use lambda_http::{http::Method, Body, Request, Response};
use meterai_app::accounts;
use meterai_app::ports::Session;
use serde::Deserialize;

use crate::error::{codes, Error};
use crate::http;
use crate::{request, App, Result};

/// One file of the portal, named by its content's hash.
#[derive(Debug)]
pub struct Asset {
    /// `/assets/app.3f2a1b0c.js`
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzipped, for browsers that accept it (all do).
    pub gzip: &'static [u8],
}

/// The page and its files, built into the portal function's binary.
#[derive(Debug)]
pub struct Site {
    pub index: &'static [u8],
    pub assets: &'static [Asset],
}

/// The cookie holding the refresh token (sent only to `/auth/`).
const SESSION_COOKIE: &str = "meterai_session";
/// As long as the pool's refresh tokens live.
const SESSION_MAX_AGE_SECONDS: u32 = 30 * 24 * 3600;

/// Headers every portal answer carries. The policy allows no inline script
/// and no framing; `connect` is this origin plus the bucket the browser
/// uploads to (given by the deployment).
fn secured(
    builder: lambda_http::http::response::Builder,
    app: &App,
) -> lambda_http::http::response::Builder {
    // The deployment's settings do not change while the function is warm.
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let connect = app.config.portal_connect_src.as_deref().unwrap_or("");
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             worker-src 'self' blob:; connect-src 'self' {connect}; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'; object-src 'none'"
        )
    });
    builder
        .header("content-security-policy", policy.as_str())
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        )
}

/// The portal function's routes over `site`.
pub async fn handle(
    app: &'static App,
    request: Request,
    site: &'static Site,
) -> Result<Response<Body>> {
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::GET, "/") => Ok(secured(Response::builder(), app)
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .header("cache-control", "no-cache")
            .body(Body::Binary(site.index.to_vec()))
            .expect("static headers build")),
        (Method::GET, p) if p.starts_with("/assets/") => {
            let asset = site
                .assets
                .iter()
                .find(|a| a.path == p)
                .ok_or_else(|| Error::not_found(codes::NOT_FOUND, "no such file"))?;
            let gzipped = http::header(&request, "accept-encoding").is_some_and(accepts_gzip);
            let builder = secured(Response::builder(), app)
                .status(200)
                .header("content-type", asset.content_type)
                .header("cache-control", "public, max-age=31536000, immutable")
                .header("vary", "accept-encoding");
            Ok(match gzipped {
                true => builder
                    .header("content-encoding", "gzip")
                    .body(Body::Binary(asset.gzip.to_vec())),
                false => builder.body(Body::Binary(asset.body.to_vec())),
            }
            .expect("static headers build"))
        }
        (Method::POST, p) if p.starts_with("/auth/") => session_route(app, &request, &p[6..]).await,
        _ => Err(http::no_route(&request)),
    }
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

async fn session_route(
    app: &'static App,
    request: &Request,
    action: &str,
) -> Result<Response<Body>> {
    from_the_portal(request, app.config.portal_url.as_deref())?;
    let pool = app.accounts()?;
    let body = if http::body(request).iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        request::json_body(http::body(request))?
    };
    let given: Credentials = serde_json::from_value(body).map_err(|_| {
        Error::invalid(
            codes::BAD_REQUEST,
            "username, password and code are strings",
        )
    })?;
    let secure = !app.on_emulator();
    match action {
        "sign-up" => {
            let sent = accounts::sign_up(pool, &given.username, &given.password).await?;
            Ok(http::json_response(
                201,
                &serde_json::json!({ "code_sent_to": sent }),
            ))
        }
        "confirm" => {
            accounts::confirm(pool, &given.username, &given.code).await?;
            Ok(http::json_response(
                200,
                &serde_json::json!({ "confirmed": true }),
            ))
        }
        "resend-code" => {
            let sent = accounts::resend_code(pool, &given.username).await?;
            Ok(http::json_response(
                200,
                &serde_json::json!({ "code_sent_to": sent }),
            ))
        }
        "forgot-password" => {
            let sent = accounts::forgot_password(pool, &given.username).await?;
            Ok(http::json_response(
                200,
                &serde_json::json!({ "code_sent_to": sent }),
            ))
        }
        "reset-password" => {
            accounts::reset_password(pool, &given.username, &given.code, &given.password).await?;
            Ok(http::json_response(
                200,
                &serde_json::json!({ "reset": true }),
            ))
        }
        "sign-in" => {
            let session = accounts::sign_in(pool, &given.username, &given.password).await?;
            let cookie = session
                .refresh_token
                .as_deref()
                .map(|token| session_cookie(token, SESSION_MAX_AGE_SECONDS, secure));
            Ok(with_cookie(session_answer(&session), cookie))
        }
        "refresh" => {
            let token = cookie(request, SESSION_COOKIE)
                .ok_or_else(|| Error::unauthenticated(codes::SESSION_ENDED, "not signed in"))?;
            match accounts::refresh(pool, token).await {
                Ok(session) => Ok(session_answer(&session)),
                Err(e) if e.code() == codes::SESSION_ENDED => {
                    let mut answer = crate::http::error_response(&e, "");
                    answer.headers_mut().append(
                        "set-cookie",
                        session_cookie("", 0, secure)
                            .parse()
                            .expect("cookie is a header value"),
                    );
                    Ok(answer)
                }
                Err(e) => Err(e),
            }
        }
        "sign-out" => {
            if let Some(token) = cookie(request, SESSION_COOKIE) {
                // Signed out here whatever the pool says: the cookie goes.
                if let Err(e) = accounts::sign_out(pool, token).await {
                    tracing::warn!(code = e.code(), error = %e, "refresh token not revoked");
                }
            }
            Ok(with_cookie(
                http::json_response(200, &serde_json::json!({ "signed_out": true })),
                Some(session_cookie("", 0, secure)),
            ))
        }
        _ => Err(http::no_route(request)),
    }
}

/// Whether an `Accept-Encoding` value takes gzip: named (any case) or `*`,
/// with a weight above zero (`gzip;q=0` refuses it).
fn accepts_gzip(accepted: &str) -> bool {
    accepted.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .next()
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && weight > 0.0
    })
}

/// Only the portal's own calls: JSON, from this origin. A form on another
/// site can post here without asking (a `text/plain` body needs no CORS
/// preflight), and the answer's cookie would sign the visitor in to the
/// sender's account (login CSRF); SameSite does not stop a cookie being set.
///
/// The portal's own origin is the request's host, or `portal_url`'s when the
/// portal has an address of its own (behind the edge, CloudFront sends the
/// API's host, not the one the browser shows).
fn from_the_portal(request: &Request, portal_url: Option<&str>) -> Result<()> {
    let json = http::header(request, "content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Error::invalid(
            codes::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        ));
    }
    let fetched_from_elsewhere = http::header(request, "sec-fetch-site")
        .is_some_and(|site| site == "cross-site" || site == "same-site");
    let portal_origin = portal_url.map(|url| url.trim_end_matches('/'));
    let other_origin = http::header(request, "origin").is_some_and(|origin| {
        let host = http::header(request, "host").unwrap_or("");
        origin.split_once("://").map(|(_, h)| h) != Some(host) && Some(origin) != portal_origin
    });
    if fetched_from_elsewhere || other_origin {
        return Err(Error::invalid(
            codes::CROSS_SITE_REQUEST,
            "sign-in is only taken from the portal's own pages",
        ));
    }
    Ok(())
}

fn session_answer(session: &Session) -> Response<Body> {
    http::json_response(
        200,
        &serde_json::json!({
            "access_token": session.access_token,
            "expires_in": session.expires_in_seconds,
        }),
    )
}

fn with_cookie(mut response: Response<Body>, cookie: Option<String>) -> Response<Body> {
    if let Some(cookie) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().append("set-cookie", cookie);
    }
    response
}

/// The refresh token's cookie: `HttpOnly` (no script reads it),
/// `SameSite=Strict` (no other site's page sends it), only for `/auth/`.
fn session_cookie(value: &str, max_age: u32, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/auth/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A cookie's value from the request (API Gateway 2.0 may join cookies in
/// one header or keep several).
fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 8192)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&str]) -> Request {
        let mut builder = lambda_http::http::Request::builder().uri("/auth/refresh");
        for v in values {
            builder = builder.header("cookie", *v);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn gzip_is_sent_only_to_those_who_take_it() {
        for taken in [
            "gzip",
            "GZIP",
            "br, gzip",
            "gzip;q=0.5",
            "*",
            "deflate, *;q=0.1",
        ] {
            assert!(accepts_gzip(taken), "{taken}");
        }
        for refused in [
            "gzip;q=0",
            "gzip; q=0.0, identity",
            "gzipfoo",
            "br",
            "",
            "identity",
        ] {
            assert!(!accepts_gzip(refused), "{refused}");
        }
    }

    fn auth_request(headers: &[(&str, &str)]) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/auth/sign-in");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn only_the_portals_own_json_calls_reach_the_pool() {
        let host = ("host", "api.example");
        let json = ("content-type", "application/json; charset=utf-8");
        assert!(from_the_portal(&auth_request(&[host, json]), None).is_ok());
        assert!(from_the_portal(
            &auth_request(&[
                host,
                json,
                ("origin", "https://api.example"),
                ("sec-fetch-site", "same-origin"),
            ]),
            None
        )
        .is_ok());
        // Behind the edge: the browser's origin is the portal's address.
        let edge = [host, json, ("origin", "https://meterai.example")];
        assert!(from_the_portal(&auth_request(&edge), Some("https://meterai.example/")).is_ok());
        assert!(from_the_portal(&auth_request(&edge), None).is_err());
        assert!(from_the_portal(&auth_request(&edge), Some("https://other.example")).is_err());
        // A form on another site: text/plain, or JSON claimed from elsewhere.
        for (headers, code) in [
            (
                vec![host, ("content-type", "text/plain")],
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (vec![host], "UNSUPPORTED_MEDIA_TYPE"),
            (
                vec![host, json, ("origin", "https://evil.example")],
                "CROSS_SITE_REQUEST",
            ),
            (vec![host, json, ("origin", "null")], "CROSS_SITE_REQUEST"),
            (
                vec![host, json, ("sec-fetch-site", "cross-site")],
                "CROSS_SITE_REQUEST",
            ),
            (
                vec![host, json, ("sec-fetch-site", "same-site")],
                "CROSS_SITE_REQUEST",
            ),
        ] {
            let refused = from_the_portal(&auth_request(&headers), Some("https://meterai.example"))
                .unwrap_err();
            assert_eq!(refused.code(), code, "{headers:?}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_however_cookies_arrive() {
        let joined = with_cookies(&["lang=en; meterai_session=abc.def; x=1"]);
        assert_eq!(cookie(&joined, SESSION_COOKIE), Some("abc.def"));
        let separate = with_cookies(&["lang=en", "meterai_session=tok"]);
        assert_eq!(cookie(&separate, SESSION_COOKIE), Some("tok"));
        assert_eq!(
            cookie(&with_cookies(&["meterai_session="]), SESSION_COOKIE),
            None
        );
        assert_eq!(
            cookie(&with_cookies(&["other_meterai_session=x"]), SESSION_COOKIE),
            None
        );
        let huge = format!("meterai_session={}", "a".repeat(9000));
        assert_eq!(cookie(&with_cookies(&[&huge]), SESSION_COOKIE), None);
    }

    #[test]
    fn the_cookie_is_out_of_reach_of_scripts_and_other_sites() {
        let c = session_cookie("tok", 60, true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/auth/",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{part} in {c}");
        }
        assert!(!session_cookie("", 0, false).contains("Secure"));
    }
}
