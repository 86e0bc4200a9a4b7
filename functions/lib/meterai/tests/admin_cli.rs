//! The operator's tool answers help and refuses mistakes before it reads any
//! setting or calls AWS: run here with an empty environment.

use std::process::{Command, Output};

fn admin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meterai-admin"))
        .args(args)
        .env_clear()
        .output()
        .expect("meterai-admin runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_works_without_any_environment() {
    let top = admin(&["--help"]);
    assert!(top.status.success(), "{}", text(&top));
    for command in [
        "account",
        "dead-letters",
        "reseller",
        "replay-webhooks",
        "signing",
        "payments",
        "order",
        "serial",
        "--env-file",
    ] {
        assert!(text(&top).contains(command), "{command} in {}", text(&top));
    }
    let reseller = admin(&["reseller", "--help"]);
    assert!(reseller.status.success(), "{}", text(&reseller));
    for command in [
        "create",
        "issue-key",
        "revoke-key",
        "set-webhook",
        "seal-secrets",
    ] {
        assert!(
            text(&reseller).contains(command),
            "{command} in {}",
            text(&reseller)
        );
    }
}

#[test]
fn an_unknown_option_is_refused_and_the_right_one_suggested() {
    let out = admin(&["reseller", "create", "--nme", "Toko"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("--nme") && said.contains("--name"), "{said}");
    // Refused by the parser, not after reaching for the stack's settings.
    assert!(!said.contains("is not set"), "{said}");
}

#[test]
fn bad_values_and_missing_options_are_refused_with_their_names() {
    for (args, named) in [
        (&["replay-webhooks", "--max", "0"][..], "--max"),
        (&["replay-webhooks", "--max", "lots"][..], "--max"),
        (
            &["reseller", "revoke-key", "--reseller", "rsl_1"][..],
            "--key",
        ),
        (&["payments", "check"][..], "--order"),
        (&["reseller", "frobnicate"][..], "frobnicate"),
        (
            &["dead-letters", "peek", "--queue", "orders"][..],
            "--queue",
        ),
        (
            &["dead-letters", "peek", "--queue", "jobs", "--max", "11"][..],
            "--max",
        ),
        (&["order", "show"][..], "--order"),
        (&["serial", "show"][..], "--serial"),
        (
            &["serial", "show", "--serial", "not-a-serial"][..],
            "serial",
        ),
        (
            &["account", "show", "--account", "a", "--jobs", "0"][..],
            "--jobs",
        ),
        (
            &["account", "show", "--account", "a", "--ledger", "500"][..],
            "--ledger",
        ),
    ] {
        let out = admin(args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(named), "{args:?}: {said}");
        assert!(!said.contains("is not set"), "{args:?}: {said}");
    }
}

#[test]
fn a_correction_is_checked_whole_before_any_setting() {
    let reason = "credited short by one";
    // (which way, ticket, reason, operator; the option the refusal names)
    for (way, ticket, why, operator, named) in [
        (&[][..], "T-1", reason, "dewi", "--add"),
        (
            &["--add", "1", "--withdraw", "1"][..],
            "T-1",
            reason,
            "dewi",
            "--withdraw",
        ),
        (&["--add", "0"][..], "T-1", reason, "dewi", "--add"),
        (
            &["--withdraw", "10001"][..],
            "T-1",
            reason,
            "dewi",
            "--withdraw",
        ),
        (&["--add", "1"][..], "T-1", "oops", "dewi", "reason"),
        (&["--add", "1"][..], "T#1", reason, "dewi", "ticket"),
        (&["--add", "1"][..], "T-1", reason, " ", "operator"),
    ] {
        let mut args = vec!["account", "correct", "--account", "user-7"];
        args.extend(way);
        args.extend(["--ticket", ticket, "--reason", why, "--operator", operator]);
        let out = admin(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(named), "{args:?}: {said}");
        assert!(!said.contains("is not set"), "{args:?}: {said}");
    }
    let out = admin(&[
        "account",
        "correct",
        "--account",
        "user-7",
        "--add",
        "1",
        "--ticket",
        "T-1",
        "--operator",
        "dewi",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--reason"), "{}", text(&out));
}

#[test]
fn a_command_without_its_settings_says_which_is_missing() {
    let out = admin(&["reseller", "seal-secrets"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("METERAI_TABLE_NAME is not set"),
        "{}",
        text(&out)
    );
}
