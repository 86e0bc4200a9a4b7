//! Portal accounts in the Cognito user pool, through the portal's app client
//! (public: no secret, as in a browser): the `meterai_app::ports::Accounts`
//! adapter. The pool's errors become domain errors with stable codes; its
//! English text never reaches a user.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, CodeDeliveryDetailsType,
};
use meterai_app::ports::{Accounts, CodeSentTo, Session};
use meterai_core::accounts::Username;
use meterai_core::error::codes;

use crate::error::{Dependency, Error, Result};
use crate::AwsClients;

/// The user pool's portal client.
#[derive(Debug, Clone)]
pub struct CognitoAccounts {
    pub clients: AwsClients,
    pub client_id: String,
}

/// What the pool said, in our words. `during` tells apart the cases where
/// one pool error means different things (a wrong code vs a wrong password).
fn pool_error<E>(error: aws_sdk_cognitoidentityprovider::error::SdkError<E>, during: Step) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("");
    match (code, during) {
        ("UsernameExistsException" | "AliasExistsException", _) => Error::conflict(
            codes::ACCOUNT_EXISTS,
            "an account with this name exists; sign in",
        ),
        ("InvalidPasswordException", _) => Error::invalid(
            codes::WEAK_PASSWORD,
            "the password does not meet the policy",
        ),
        ("CodeMismatchException" | "ExpiredCodeException", _) => {
            Error::invalid(codes::WRONG_CODE, "the code is wrong or has expired")
        }
        ("UserNotConfirmedException", _) => Error::conflict(
            codes::ACCOUNT_NOT_CONFIRMED,
            "confirm the account with the code we sent first",
        ),
        ("NotAuthorizedException", Step::Refresh) => {
            Error::unauthenticated(codes::SESSION_ENDED, "the session has ended; sign in again")
        }
        // An unknown user is told the same as a wrong password: the answer
        // must not reveal who has an account.
        ("NotAuthorizedException" | "UserNotFoundException", Step::SignIn) => {
            Error::unauthenticated(codes::WRONG_CREDENTIALS, "wrong name or password")
        }
        ("UserNotFoundException", Step::Code) => {
            Error::invalid(codes::WRONG_CODE, "the code is wrong or has expired")
        }
        ("NotAuthorizedException", Step::Code) => Error::conflict(
            codes::ACCOUNT_EXISTS,
            "this account is already confirmed; sign in",
        ),
        ("InvalidParameterException", _) => Error::invalid(
            codes::BAD_REQUEST,
            "the identity provider refused the request",
        ),
        _ => Error::unavailable(Dependency::IdentityProvider, DisplayErrorContext(error)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    SignUp,
    Code,
    SignIn,
    Refresh,
}

fn sent_to(details: Option<&CodeDeliveryDetailsType>) -> CodeSentTo {
    CodeSentTo {
        medium: details
            .and_then(|d| d.delivery_medium())
            .map_or(
                "email",
                |m| if m.as_str() == "SMS" { "sms" } else { "email" },
            )
            .to_string(),
        destination: details
            .and_then(|d| d.destination())
            .unwrap_or_default()
            .to_string(),
    }
}

fn session(result: Option<&AuthenticationResultType>) -> Result<Session> {
    let result = result.ok_or_else(|| {
        Error::unavailable(
            Dependency::IdentityProvider,
            "the pool asked for a challenge the portal does not run",
        )
    })?;
    let access_token = result.access_token().unwrap_or_default().to_string();
    if access_token.is_empty() {
        return Err(Error::unavailable(
            Dependency::IdentityProvider,
            "no access token in the pool's answer",
        ));
    }
    Ok(Session {
        access_token,
        expires_in_seconds: i64::from(result.expires_in()),
        refresh_token: result.refresh_token().map(str::to_string),
    })
}

impl CognitoAccounts {
    /// One `InitiateAuth` of the portal client: a session, or why not.
    async fn initiate(
        &self,
        flow: AuthFlowType,
        parameters: &[(&str, &str)],
        step: Step,
    ) -> Result<Session> {
        let mut request = self
            .clients
            .cognito
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(flow);
        for (name, value) in parameters {
            request = request.auth_parameters(*name, *value);
        }
        let out = request.send().await.map_err(|e| pool_error(e, step))?;
        session(out.authentication_result())
    }
}

#[async_trait]
impl Accounts for CognitoAccounts {
    async fn sign_up(&self, username: &Username, password: &str) -> Result<CodeSentTo> {
        let attribute = match username {
            Username::Email(email) => ("email", email),
            Username::Phone(phone) => ("phone_number", phone),
        };
        let out = self
            .clients
            .cognito
            .sign_up()
            .client_id(&self.client_id)
            .username(username.as_str())
            .password(password)
            .user_attributes(
                AttributeType::builder()
                    .name(attribute.0)
                    .value(attribute.1)
                    .build()
                    .expect("attribute is complete"),
            )
            .send()
            .await
            .map_err(|e| pool_error(e, Step::SignUp))?;
        Ok(sent_to(out.code_delivery_details()))
    }

    async fn confirm(&self, username: &Username, code: &str) -> Result<()> {
        self.clients
            .cognito
            .confirm_sign_up()
            .client_id(&self.client_id)
            .username(username.as_str())
            .confirmation_code(code)
            .send()
            .await
            .map_err(|e| pool_error(e, Step::Code))?;
        Ok(())
    }

    async fn resend_code(&self, username: &Username) -> Result<CodeSentTo> {
        let out = self
            .clients
            .cognito
            .resend_confirmation_code()
            .client_id(&self.client_id)
            .username(username.as_str())
            .send()
            .await
            .map_err(|e| pool_error(e, Step::Code))?;
        Ok(sent_to(out.code_delivery_details()))
    }

    async fn sign_in(&self, username: &Username, password: &str) -> Result<Session> {
        self.initiate(
            AuthFlowType::UserPasswordAuth,
            &[("USERNAME", username.as_str()), ("PASSWORD", password)],
            Step::SignIn,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Session> {
        self.initiate(
            AuthFlowType::RefreshTokenAuth,
            &[("REFRESH_TOKEN", refresh_token)],
            Step::Refresh,
        )
        .await
    }

    async fn sign_out(&self, refresh_token: &str) -> Result<()> {
        self.clients
            .cognito
            .revoke_token()
            .client_id(&self.client_id)
            .token(refresh_token)
            .send()
            .await
            .map_err(|e| pool_error(e, Step::Refresh))?;
        Ok(())
    }

    async fn forgot_password(&self, username: &Username) -> Result<CodeSentTo> {
        let out = self
            .clients
            .cognito
            .forgot_password()
            .client_id(&self.client_id)
            .username(username.as_str())
            .send()
            .await
            .map_err(|e| pool_error(e, Step::Code))?;
        Ok(sent_to(out.code_delivery_details()))
    }

    async fn reset_password(&self, username: &Username, code: &str, password: &str) -> Result<()> {
        self.clients
            .cognito
            .confirm_forgot_password()
            .client_id(&self.client_id)
            .username(username.as_str())
            .confirmation_code(code)
            .password(password)
            .send()
            .await
            .map_err(|e| pool_error(e, Step::Code))?;
        Ok(())
    }
}
