//! Identity through the deployed stack: the user pool (sign-up, confirmation
//! code by e-mail, sign-in, refresh) and API Gateway's authorizer in front of
//! every authenticated route: only the pool's access tokens for the portal's
//! app client, and active reseller API keys, get through.

use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, ExplicitAuthFlowsType};
use base64::Engine;
use e2e::{unique, Portal, Stack, TEST_PASSWORD};

fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sign_up_confirm_sign_in_refresh_and_call_the_api() {
    let stack = Stack::load();
    let cognito = stack.cognito().await;
    let client_id = stack.get("METERAI_USER_POOL_CLIENT_ID");
    let address = format!("{}@example.test", unique("pelamar"));

    let signed_up = cognito
        .sign_up()
        .client_id(client_id)
        .username(&address)
        .password(TEST_PASSWORD)
        .user_attributes(attribute("email", &address))
        .send()
        .await
        .expect("SignUp succeeds");
    assert!(!signed_up.user_confirmed(), "a new user must confirm first");
    let sub = signed_up.user_sub().to_string();

    // Not confirmed yet: no sign-in.
    let early = cognito
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", &address)
        .auth_parameters("PASSWORD", TEST_PASSWORD)
        .send()
        .await;
    assert!(early.is_err(), "an unconfirmed user signed in");

    let code = stack.code_mailed_to(&address).await;
    cognito
        .confirm_sign_up()
        .client_id(client_id)
        .username(&address)
        .confirmation_code(code)
        .send()
        .await
        .expect("ConfirmSignUp succeeds");

    let tokens = stack.sign_in(&address, TEST_PASSWORD).await;
    let user = Portal::with_credential(&stack, &sub, &tokens.access);
    let quota = user.get("/v1/quota").await;
    assert_eq!(quota.status, 200, "{:?}", quota.body);
    assert_eq!(quota.body["available"], 0);
    // The account the API acts for is the user's `sub` (read from the table).
    let order = user.order(2).await;
    let stored = meterai_app::ports::Orders::load(
        &meterai::orders::DynamoOrders {
            clients: stack.clients().await,
            table: stack.get("METERAI_TABLE_NAME").to_string(),
        },
        order["order_id"].as_str().unwrap(),
    )
    .await
    .unwrap()
    .expect("the order is stored");
    assert_eq!(stored.account.as_str(), sub, "{order}");

    // A refreshed access token works as well.
    let refreshed = cognito
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &tokens.refresh)
        .send()
        .await
        .expect("REFRESH_TOKEN_AUTH succeeds");
    let access = refreshed
        .authentication_result()
        .and_then(|r| r.access_token())
        .expect("a fresh access token");
    let again = Portal::with_credential(&stack, &sub, access);
    let listed = again
        .get(&format!(
            "/v1/orders/{}",
            order["order_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
}

#[tokio::test]
async fn a_mobile_number_is_a_username_too() {
    // The emulator sends no SMS, so the code is confirmed by an admin here
    // (`AdminConfirmSignUp`); on AWS the user types the SMS code.
    let stack = Stack::load();
    let cognito = stack.cognito().await;
    let digits = format!("{:09}", std::process::id() as u64 * 7919 % 1_000_000_000);
    let number = format!("+628{digits}");
    let signed_up = cognito
        .sign_up()
        .client_id(stack.get("METERAI_USER_POOL_CLIENT_ID"))
        .username(&number)
        .password(TEST_PASSWORD)
        .user_attributes(attribute("phone_number", &number))
        .send()
        .await
        .expect("SignUp with a +62 number succeeds");
    cognito
        .admin_confirm_sign_up()
        .user_pool_id(stack.get("METERAI_USER_POOL_ID"))
        .username(&number)
        .send()
        .await
        .expect("AdminConfirmSignUp succeeds");
    let tokens = stack.sign_in(&number, TEST_PASSWORD).await;
    let user = Portal::with_credential(&stack, signed_up.user_sub(), &tokens.access);
    assert_eq!(user.get("/v1/quota").await.status, 200);
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token whose payload is `change`d after signing (the signature stays).
fn tampered(token: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    change(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        base64url(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    )
}

#[tokio::test]
async fn foreign_forged_and_misused_tokens_get_401_and_nothing_runs() {
    let stack = Stack::load();
    let cognito = stack.cognito().await;
    let victim = Portal::new(&stack).await;
    let username = format!("{}@example.test", unique("attacker"));
    stack.create_user(&username, TEST_PASSWORD).await;
    let own = stack.sign_in(&username, TEST_PASSWORD).await;

    // Another app client of the same pool (not the portal's).
    let other_client = cognito
        .create_user_pool_client()
        .user_pool_id(stack.get("METERAI_USER_POOL_ID"))
        .client_name(unique("other-app"))
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .expect("CreateUserPoolClient succeeds");
    let other_client_id = other_client
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap()
        .to_string();
    let other_client_token = stack
        .sign_in_on(&other_client_id, &username, TEST_PASSWORD)
        .await
        .access;

    // Another user pool altogether (same emulator, same signing machinery).
    let other_pool = cognito
        .create_user_pool()
        .pool_name(unique("other-pool"))
        .send()
        .await
        .expect("CreateUserPool succeeds");
    let other_pool_id = other_pool
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_string();
    let other_pool_client = cognito
        .create_user_pool_client()
        .user_pool_id(&other_pool_id)
        .client_name("portal")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .send()
        .await
        .unwrap();
    let other_pool_client_id = other_pool_client
        .user_pool_client()
        .and_then(|c| c.client_id())
        .unwrap()
        .to_string();
    cognito
        .admin_create_user()
        .user_pool_id(&other_pool_id)
        .username(&username)
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    cognito
        .admin_set_user_password()
        .user_pool_id(&other_pool_id)
        .username(&username)
        .password(TEST_PASSWORD)
        .permanent(true)
        .send()
        .await
        .unwrap();
    let other_pool_token = stack
        .sign_in_on(&other_pool_client_id, &username, TEST_PASSWORD)
        .await
        .access;

    let as_victim = tampered(&own.access, |c| c["sub"] = victim.account.clone().into());
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        own.access.split('.').nth(1).unwrap()
    );
    for (name, token) in [
        ("ID token instead of the access token", own.id.clone()),
        ("access token of another app client", other_client_token),
        ("access token of another user pool", other_pool_token),
        ("payload edited to name the victim", as_victim),
        ("alg none", unsigned),
        ("garbage", "not-a-token".to_string()),
    ] {
        let attacker = Portal::with_credential(&stack, &victim.account, &token);
        let order = attacker
            .post(
                "/v1/orders",
                &serde_json::json!({"quantity": 1}),
                Some(&unique("k")),
            )
            .await;
        assert_eq!(order.status, 401, "{name}: {:?}", order.body);
        assert_eq!(order.code(), "INVALID_TOKEN", "{name}: {:?}", order.body);
        let quota = attacker.get("/v1/quota").await;
        assert_eq!(
            (quota.status, quota.code()),
            (401, "INVALID_TOKEN"),
            "{name}"
        );
    }
    // Nothing ran for the victim: no order was created in their name.
    let orders = victim.get("/v1/orders").await;
    assert_eq!(orders.status, 200);
    assert_eq!(
        orders.body["orders"].as_array().map(Vec::len),
        Some(0),
        "{:?}",
        orders.body
    );

    // No credential at all: API Gateway refuses before anything runs.
    let bare = stack
        .http()
        .get(format!("{}/v1/quota", stack.api_url()))
        .send()
        .await
        .expect("API answers");
    assert_eq!(bare.status().as_u16(), 401);
    // A header that is not a bearer credential: refused with our code.
    let basic = Portal::with_credential(&stack, &victim.account, "");
    let answer = basic.get("/v1/quota").await;
    assert_eq!((answer.status, answer.code()), (401, "UNAUTHENTICATED"));
    // Our own token still works, and only for its own account.
    let mine = Portal::with_credential(&stack, "attacker", &own.access);
    assert_eq!(mine.get("/v1/quota").await.status, 200);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_e_mailed_code_and_sign_out_ends_refresh() {
    let stack = Stack::load();
    let cognito = stack.cognito().await;
    let client_id = stack.get("METERAI_USER_POOL_CLIENT_ID");
    let user = Portal::new(&stack).await;
    cognito
        .forgot_password()
        .client_id(client_id)
        .username(&user.email)
        .send()
        .await
        .expect("ForgotPassword succeeds");
    // The emulator's reset code; on AWS the user reads it from the e-mail.
    let new_password = "Meterai-baru-2026!";
    cognito
        .confirm_forgot_password()
        .client_id(client_id)
        .username(&user.email)
        .confirmation_code("654321")
        .password(new_password)
        .send()
        .await
        .expect("ConfirmForgotPassword succeeds");
    let tokens = stack.sign_in(&user.email, new_password).await;
    let again = Portal::with_credential(&stack, &user.account, &tokens.access);
    assert_eq!(again.get("/v1/quota").await.status, 200);

    // Sign-out everywhere: the refresh token no longer gives new tokens.
    // (The emulator revokes tokens issued before the sign-out's second.)
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    cognito
        .global_sign_out()
        .access_token(&tokens.access)
        .send()
        .await
        .expect("GlobalSignOut succeeds");
    let refreshed = cognito
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &tokens.refresh)
        .send()
        .await;
    assert!(refreshed.is_err(), "a signed-out refresh token still works");
}
