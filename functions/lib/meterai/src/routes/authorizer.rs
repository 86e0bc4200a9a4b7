//! API Gateway's Lambda REQUEST authorizer for every authenticated route:
//! the `Authorization` header is a Cognito access token or a reseller API
//! key. A request without the header is refused by API Gateway (401) before
//! anything runs; a refused credential reaches the function marked refused,
//! and the function answers 401 with the refusal's stable code before any
//! use case runs (a denial from an HTTP API authorizer is a bare 403 that
//! would lose the code). API Gateway caches the answer by that header for
//! the authorizer's TTL (see `infra/template.yaml`), which also spares a
//! table read per API-key call.

use std::collections::HashMap;

use aws_lambda_events::event::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::Value;

use crate::App;

/// The function: it checks tokens against the user pool.
pub const FUNCTION: crate::lambda::Authorizer = crate::lambda::Authorizer {
    needs: crate::config::Needs {
        identity: true,
        ..crate::config::Needs::NONE
    },
    handle,
};

/// One authorization decision.
pub fn handle(
    app: &'static App,
    request: ApiGatewayV2CustomAuthorizerV2Request,
) -> crate::lambda::Decision {
    Box::pin(async move {
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        decide(app.authorize(authorization).await)
    })
}

/// The authorizer's answer: the caller, or why not, in the context. When
/// our side could not decide (keys or table unreachable) the request goes
/// on marked undecided, and the function answers 503: a user is not told
/// their sign-in is wrong because of our outage.
pub fn decide(
    caller: crate::Result<crate::auth::Caller>,
) -> ApiGatewayV2CustomAuthorizerSimpleResponse<HashMap<String, Value>> {
    let mut answer = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
    match caller {
        Ok(caller) => {
            tracing::info!(account = %caller.account(), "caller authorized");
            answer.is_authorized = true;
            answer.context = crate::auth::context_of(&caller);
        }
        Err(e) if e.kind() == meterai_core::ErrorKind::Unavailable => {
            tracing::error!(error = %e, "credential not checked: a dependency is unavailable");
            answer.is_authorized = true;
            answer.context = crate::auth::undecided_context();
        }
        Err(e) => {
            tracing::info!(code = e.code(), "caller refused");
            answer.is_authorized = true;
            answer.context = crate::auth::refused_context(&e);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{codes, Dependency, Error};

    #[test]
    fn refusals_outages_and_callers_are_told_apart() {
        let refused = decide(Err(Error::unauthenticated(codes::INVALID_TOKEN, "no")));
        let err = crate::auth::caller_from_context(Some(&refused.context)).unwrap_err();
        assert_eq!(err.code(), codes::INVALID_TOKEN);

        let outage = decide(Err(Error::unavailable(Dependency::Table, "down")));
        assert!(outage.is_authorized);
        let err = crate::auth::caller_from_context(Some(&outage.context)).unwrap_err();
        assert_eq!(err.code(), codes::DEPENDENCY_UNAVAILABLE);

        let account = meterai_core::AccountId::parse("acct-1").unwrap();
        let portal = decide(Ok(crate::auth::Caller::Portal(account.clone())));
        assert!(portal.is_authorized);
        let caller = crate::auth::caller_from_context(Some(&portal.context)).unwrap();
        assert_eq!(caller.account(), account);

        let wire = serde_json::to_value(&portal).unwrap();
        assert_eq!(wire["isAuthorized"], true, "{wire}");
        assert_eq!(wire["context"]["caller"], "portal", "{wire}");
    }
}
