//! Mints a development bearer token for the local stack.
//!
//!     target/release/meterai-token <account-id> [ttl-seconds]
//!
//! Reads the stack's development secret from `.build/meterai-local.env`
//! (or `$METERAI_STACK_ENV`). Production tokens come from the identity provider.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(account) = args.next() else {
        eprintln!("usage: meterai-token <account-id> [ttl-seconds]");
        std::process::exit(2);
    };
    let ttl = match args.next().map(|t| t.parse::<i64>()) {
        None => 3600,
        Some(Ok(ttl)) => ttl,
        Some(Err(_)) => {
            eprintln!("ttl-seconds must be a whole number");
            std::process::exit(2);
        }
    };
    if meterai_core::AccountId::parse(&account).is_err() {
        eprintln!("account id must be 1-128 characters of A-Z a-z 0-9 _ . @ : | -");
        std::process::exit(2);
    }
    println!("{}", e2e::Stack::load().authenticator().mint(&account, ttl));
}
