//! The applicants' web portal, same-origin with the API: the page, its
//! hashed files, and the session routes (`/auth/...`) between the browser
//! and the user pool.

include!(concat!(env!("OUT_DIR"), "/site.rs"));

fn route(app: &'static meterai::App, request: lambda_http::Request) -> meterai::lambda::Answer {
    Box::pin(meterai::routes::portal::handle(app, request, &SITE))
}

const FUNCTION: meterai::lambda::Http = meterai::lambda::Http {
    needs: meterai::config::Needs {
        identity: true,
        ..meterai::config::Needs::NONE
    },
    route,
};

fn main() -> Result<(), lambda_http::Error> {
    meterai::lambda::serve_http(FUNCTION)
}
