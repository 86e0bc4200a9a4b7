//! API Gateway's authorizer: a Cognito access token or a reseller API key.

fn main() -> Result<(), lambda_runtime::Error> {
    meterai::lambda::serve_authorizer(meterai::routes::authorizer::FUNCTION)
}
