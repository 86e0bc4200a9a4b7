//! Portal accounts: sign up, confirm, sign in, refresh, sign out, reset a
//! forgotten password. What the user typed is checked here (in their
//! language, by code) before the identity provider is asked.

use meterai_core::accounts::{check_code, check_password, Username};
use meterai_core::Result;

use crate::ports::{Accounts, CodeSentTo, Session};

pub async fn sign_up(
    accounts: &dyn Accounts,
    username: &str,
    password: &str,
) -> Result<CodeSentTo> {
    let username = Username::parse(username)?;
    check_password(password)?;
    accounts.sign_up(&username, password).await
}

pub async fn confirm(accounts: &dyn Accounts, username: &str, code: &str) -> Result<()> {
    let username = Username::parse(username)?;
    accounts.confirm(&username, check_code(code)?).await
}

pub async fn resend_code(accounts: &dyn Accounts, username: &str) -> Result<CodeSentTo> {
    accounts.resend_code(&Username::parse(username)?).await
}

pub async fn sign_in(accounts: &dyn Accounts, username: &str, password: &str) -> Result<Session> {
    let username = Username::parse(username)?;
    accounts.sign_in(&username, password).await
}

pub async fn refresh(accounts: &dyn Accounts, refresh_token: &str) -> Result<Session> {
    accounts.refresh(refresh_token).await
}

pub async fn sign_out(accounts: &dyn Accounts, refresh_token: &str) -> Result<()> {
    accounts.sign_out(refresh_token).await
}

pub async fn forgot_password(accounts: &dyn Accounts, username: &str) -> Result<CodeSentTo> {
    accounts.forgot_password(&Username::parse(username)?).await
}

pub async fn reset_password(
    accounts: &dyn Accounts,
    username: &str,
    code: &str,
    password: &str,
) -> Result<()> {
    let username = Username::parse(username)?;
    check_password(password)?;
    accounts
        .reset_password(&username, check_code(code)?, password)
        .await
}
