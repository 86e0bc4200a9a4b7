//! An access token of the local stack's user pool, for trying the API by hand.
//!
//!     target/release/meterai-token <e-mail or +62 number> [password]
//!
//! Creates the user (confirmed) if the pool does not have it yet, signs in
//! as the portal does and prints the access token. Reads the stack from
//! `.build/meterai-local.env` (or `$METERAI_STACK_ENV`).

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(username) = args.next() else {
        eprintln!("usage: meterai-token <e-mail or +62 number> [password]");
        std::process::exit(2);
    };
    let password = args
        .next()
        .unwrap_or_else(|| e2e::TEST_PASSWORD.to_string());
    let stack = e2e::Stack::load();
    let exists = stack
        .cognito()
        .await
        .admin_get_user()
        .user_pool_id(stack.get("METERAI_USER_POOL_ID"))
        .username(&username)
        .send()
        .await
        .is_ok();
    if !exists {
        stack.create_user(&username, &password).await;
    }
    println!("{}", stack.sign_in(&username, &password).await.access);
}
