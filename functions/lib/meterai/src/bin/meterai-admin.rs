//! Operator commands against a deployed stack (local or AWS):
//!
//! ```text
//! meterai-admin [--env-file .build/meterai-local.env] reseller create --name NAME [--webhook-url URL]
//! meterai-admin reseller issue-key --reseller RSL_ID
//! meterai-admin reseller revoke-key --reseller RSL_ID --key KEY_ID
//! meterai-admin reseller set-webhook --reseller RSL_ID [--url URL] [--rotate-secret]
//! meterai-admin reseller seal-secrets   (seal webhook secrets stored in clear, same values)
//! meterai-admin replay-webhooks [--max N]
//! meterai-admin signing csr --subject "CN=...,O=...,C=ID"   (PEM request for a CA)
//! meterai-admin payments check --order ORD_ID   (ask the gateway, credit if paid)
//! ```
//!
//! The stack is named by `METERAI_TABLE_NAME`, `METERAI_STAGE`,
//! `METERAI_WEBHOOKS_QUEUE_URL`, `METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL` and
//! `METERAI_SECRETS_KEY_ID` (as `infra/deploy.sh` writes them to its env
//! file); AWS credentials and `AWS_ENDPOINT_URL` come from the usual places.
//! Secrets are printed once, as JSON, and not stored in clear: API keys as
//! their hash, the webhook secret (which signs) sealed by the secrets key
//! (`seal-secrets` seals those of resellers made before sealing).

use std::collections::HashMap;

use meterai::{events, resellers, AwsClients};

fn usage() -> ! {
    eprintln!(
        "{}",
        include_str!("meterai-admin.rs")
            .lines()
            .skip(3)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//! "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::process::exit(2)
}

/// `--name value` pairs and bare `--flag`s after the command words.
fn options(args: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let Some(name) = args[i].strip_prefix("--") else {
            usage()
        };
        match args.get(i + 1).filter(|v| !v.starts_with("--")) {
            Some(value) => {
                out.insert(name.to_string(), value.clone());
                i += 2;
            }
            None => {
                out.insert(name.to_string(), String::new());
                i += 1;
            }
        }
    }
    out
}

fn load_env_file(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2)
    });
    for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
        if std::env::var_os(key.trim()).is_none() {
            std::env::set_var(key.trim(), value.trim());
        }
    }
}

fn setting(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set (pass --env-file, or export it)");
        std::process::exit(2)
    })
}

/// The key that seals webhook secrets.
fn secrets(clients: &AwsClients) -> meterai::secrets::WebhookSecrets {
    meterai::secrets::WebhookSecrets::new(clients.kms.clone(), setting("METERAI_SECRETS_KEY_ID"))
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--env-file") && args.len() >= 2 {
        load_env_file(&args[1]);
        args.drain(..2);
    }
    // The emulator's endpoint, when the env file names one.
    if let Ok(endpoint) = std::env::var("METERAI_ENDPOINT_URL") {
        if !endpoint.is_empty() && std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            std::env::set_var("AWS_ENDPOINT_URL", endpoint);
            for (k, v) in [
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ] {
                if std::env::var_os(k).is_none() {
                    std::env::set_var(k, v);
                }
            }
        }
    }
    let shared = aws_config::load_from_env().await;
    let clients = AwsClients::from_sdk_config(&shared, true);
    let table = setting("METERAI_TABLE_NAME");
    // Loopback webhook URLs only for a stack on the emulator (its endpoint
    // is in the env file), never for a stage that is merely named local.
    let local = std::env::var("METERAI_ENDPOINT_URL").is_ok_and(|u| !u.is_empty());
    let words: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let opts = options(&args[words.len()..]);
    let need = |name: &str| {
        opts.get(name)
            .cloned()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| usage())
    };
    let result = match words.as_slice() {
        ["reseller", "create"] => resellers::create(
            &clients,
            &secrets(&clients),
            &table,
            &need("name"),
            opts.get("webhook-url").map(String::as_str),
            local,
        )
        .await
        .map(|c| serde_json::to_value(c).expect("serializes")),
        ["reseller", "issue-key"] => resellers::issue_key(&clients, &table, &need("reseller"))
            .await
            .map(|(key_id, api_key)| serde_json::json!({ "key_id": key_id, "api_key": api_key })),
        ["reseller", "revoke-key"] => {
            resellers::revoke_key(&clients, &table, &need("reseller"), &need("key"))
                .await
                .map(|()| serde_json::json!({ "revoked": need("key") }))
        }
        ["reseller", "set-webhook"] => resellers::configure_webhook(
            &clients,
            &secrets(&clients),
            &table,
            &need("reseller"),
            opts.get("url")
                .map(String::as_str)
                .filter(|u| !u.is_empty()),
            opts.contains_key("rotate-secret"),
            local,
        )
        .await
        .map(|secret| serde_json::json!({ "webhook_enabled": true, "webhook_secret": secret })),
        ["reseller", "seal-secrets"] => {
            resellers::seal_clear_secrets(&clients, &secrets(&clients), &table)
                .await
                .map(|sealed| serde_json::json!({ "sealed": sealed }))
        }
        ["replay-webhooks"] => {
            let max = opts.get("max").and_then(|m| m.parse().ok()).unwrap_or(1000);
            events::replay_dead_letters(
                &clients,
                &setting("METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL"),
                &setting("METERAI_WEBHOOKS_QUEUE_URL"),
                max,
            )
            .await
            .map(|moved| serde_json::json!({ "replayed": moved }))
        }
        ["payments", "check"] => {
            // Asks the gateway about one order and acts on the answer, by
            // the same path as a notification; prints what it found.
            let key = match meterai::aws::secret_text(
                &clients,
                &setting("METERAI_MIDTRANS_SERVER_KEY_SECRET"),
            )
            .await
            {
                Ok(key) => key,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1)
                }
            };
            let gateway = meterai::midtrans::MidtransGateway::new(
                &key,
                &setting("METERAI_MIDTRANS_SNAP_URL"),
                &setting("METERAI_MIDTRANS_API_URL"),
                std::time::Duration::from_secs(10),
            );
            let orders = meterai::orders::DynamoOrders {
                clients: clients.clone(),
                table: table.clone(),
            };
            let log = meterai::payments::DynamoPaymentLog {
                clients: clients.clone(),
                table: table.clone(),
            };
            let outbox = meterai::events::DynamoOutbox {
                clients: clients.clone(),
                outbox: std::env::var("METERAI_WEBHOOKS_QUEUE_URL")
                    .ok()
                    .map(|queue_url| meterai::events::Outbox {
                        table: table.clone(),
                        queue_url,
                    }),
                mail_queue_url: std::env::var("METERAI_MAIL_QUEUE_URL").ok(),
            };
            let ports = meterai_app::payments::PaymentPorts {
                orders: &orders,
                log: &log,
                outbox: &outbox,
                clock: &meterai_app::ports::SystemClock,
                gateway: &gateway,
            };
            let order_id = need("order");
            let asked = meterai_app::ports::Gateway::status(&gateway, &order_id).await;
            let result = meterai_app::payments::check_order(&ports, &order_id).await;
            Ok(serde_json::json!({
                "order_id": order_id,
                "gateway_says": asked.map(|a| serde_json::to_value(a).unwrap_or_default()).unwrap_or_else(|e| e.to_string().into()),
                "result": match result {
                    Ok(receipt) => receipt.result.as_str().to_string(),
                    Err(e) => e.code().to_string(),
                },
            }))
        }
        ["signing", "csr"] => {
            match meterai::kms::certificate_request(
                &clients.kms,
                &setting("METERAI_SIGNING_KEY_ID"),
                &need("subject"),
            )
            .await
            {
                Ok(pem) => {
                    print!("{pem}");
                    return;
                }
                Err(e) => Err(meterai::Error::Misconfigured(e.to_string())),
            }
        }
        _ => usage(),
    };
    match result {
        Ok(value) => println!("{value}"),
        Err(e) => {
            // The operator sees the whole cause (a client never does).
            let body =
                serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } });
            eprintln!("{body}");
            std::process::exit(1)
        }
    }
}
