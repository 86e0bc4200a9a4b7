//! Operator commands against a deployed stack (local or AWS):
//!
//! ```text
//! meterai-admin [--env-file .build/meterai-local.env] reseller create --name NAME [--webhook-url URL]
//! meterai-admin reseller issue-key --reseller RSL_ID
//! meterai-admin reseller revoke-key --reseller RSL_ID --key KEY_ID
//! meterai-admin reseller set-webhook --reseller RSL_ID [--url URL] [--rotate-secret]
//! meterai-admin reseller seal-secrets   (seal webhook secrets stored in clear, same values)
//! meterai-admin replay-webhooks [--max N]
//! meterai-admin account show --account ACCOUNT_ID [--ledger N] [--jobs N]   (balance, audit, latest movements and jobs)
//! meterai-admin account correct --account ACCOUNT_ID (--add N | --withdraw N) --ticket T --reason "..." --operator NAME
//! meterai-admin dead-letters count   (messages waiting in the jobs and webhooks DLQs)
//! meterai-admin dead-letters peek --queue jobs|webhooks [--max N]   (look, move nothing)
//! meterai-admin order show --order ORD_ID   (the order, its owner, and what the gateway says)
//! meterai-admin serial show --serial SERIAL   (its state, its job and the job's payer)
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
//! `meterai-admin --help` (and `<command> --help`) answers without any of
//! it; a mistyped option or a bad value is refused (exit 2) before anything
//! is read.

use clap::{Parser, Subcommand};
use meterai::{events, resellers, AwsClients};

/// Operator commands against a deployed meterai stack (local or AWS). Each
/// prints its answer as JSON; a refusal is JSON on stderr and exit 1.
#[derive(Debug, Parser)]
#[command(name = "meterai-admin", version)]
struct Cli {
    /// The stack's settings (as infra/deploy.sh writes them), read before the
    /// environment; a variable already set wins.
    #[arg(long, global = true, value_name = "FILE")]
    env_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One account: its balance, its audit against the ledger, its latest movements.
    #[command(subcommand)]
    Account(Account),
    /// The dead-letter queues.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Resellers: accounts, API keys, webhook endpoints and secrets.
    #[command(subcommand)]
    Reseller(Reseller),
    /// Move webhook events parked in the dead-letter queue back to delivery.
    ReplayWebhooks {
        /// At most this many events.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        max: u32,
    },
    /// The e-Meterai signing key.
    #[command(subcommand)]
    Signing(Signing),
    /// Payments.
    #[command(subcommand)]
    Payments(Payments),
    /// Orders.
    #[command(subcommand)]
    Order(OrderCommand),
    /// e-Meterai serial numbers.
    #[command(subcommand)]
    Serial(SerialCommand),
}

#[derive(Debug, Subcommand)]
enum OrderCommand {
    /// The order as recorded, its owner, and what the gateway says of it now.
    Show {
        #[arg(long, value_name = "ORD_ID")]
        order: String,
    },
}

#[derive(Debug, Subcommand)]
enum SerialCommand {
    /// The serial's state (reserved, bound, void), its job and who paid.
    Show {
        #[arg(long, value_name = "SERIAL", value_parser = serial_arg)]
        serial: meterai_core::Serial,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeadLetterQueue {
    Jobs,
    Webhooks,
}

#[derive(Debug, Subcommand)]
enum Account {
    /// The balance, whether it agrees with the ledger (purchased = available +
    /// reserved + spent + refunded + sold), and the latest ledger entries.
    Show {
        /// A portal account (the user's sub), `customer:<id>` or `reseller:<id>`.
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: String,
        /// How many of the latest ledger entries to show.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=100))]
        ledger: i32,
        /// How many of the latest jobs to show.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=100))]
        jobs: i32,
    },
    /// Correct the quota by hand: a ledger movement (grant or withdraw) with
    /// a reason and your name, applied once per ticket, audited after.
    /// Only available stamps can be withdrawn.
    #[command(group = clap::ArgGroup::new("change").required(true))]
    Correct {
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: String,
        /// Stamps to add (purchased and available grow).
        #[arg(long, group = "change", value_parser = clap::value_parser!(i64).range(1..=meterai_core::quota::MAX_CORRECTION))]
        add: Option<i64>,
        /// Unused stamps to take back (available and purchased shrink).
        #[arg(long, group = "change", value_parser = clap::value_parser!(i64).range(1..=meterai_core::quota::MAX_CORRECTION))]
        withdraw: Option<i64>,
        /// The support ticket: the correction's reference, applied once
        /// (letters' case does not matter).
        #[arg(long)]
        ticket: String,
        /// Why (10-500 characters). The account's owner sees it in their
        /// ledger: no internal notes, no one else's data.
        #[arg(long)]
        reason: String,
        /// Who you are.
        #[arg(long)]
        operator: String,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetters {
    /// How many messages wait in the jobs and webhooks dead-letter queues.
    Count,
    /// Look at up to --max messages of one dead-letter queue; nothing is
    /// moved or deleted (the jobs queue's are failed by the reconciler).
    Peek {
        #[arg(long, value_enum)]
        queue: DeadLetterQueue,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
        max: i32,
    },
}

#[derive(Debug, Subcommand)]
enum Reseller {
    /// Create a reseller: prints its id, first API key and webhook secret (once).
    Create {
        #[arg(long)]
        name: String,
        /// Where its events are sent (https://; loopback on the emulator only).
        #[arg(long, value_name = "URL")]
        webhook_url: Option<String>,
    },
    /// Issue another API key (printed once; stored as its hash).
    IssueKey {
        #[arg(long, value_name = "RSL_ID")]
        reseller: String,
    },
    /// Revoke an API key (it stops working within the authorizer's cache time).
    RevokeKey {
        #[arg(long, value_name = "RSL_ID")]
        reseller: String,
        #[arg(long, value_name = "KEY_ID")]
        key: String,
    },
    /// Set or re-enable the webhook endpoint; optionally rotate its secret.
    SetWebhook {
        #[arg(long, value_name = "RSL_ID")]
        reseller: String,
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        #[arg(long)]
        rotate_secret: bool,
    },
    /// Seal webhook secrets still stored in clear (the same values).
    SealSecrets,
}

#[derive(Debug, Subcommand)]
enum Signing {
    /// A PEM certificate request for a CA, signed by the KMS key.
    Csr {
        /// The subject, e.g. "CN=meterai,O=...,C=ID".
        #[arg(long)]
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
enum Payments {
    /// Ask the gateway about one order and act on the answer, as a notification would.
    Check {
        #[arg(long, value_name = "ORD_ID")]
        order: String,
    },
}

fn load_env_file(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", path.display());
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

/// `--serial`, checked by the parser (before any setting is read).
fn serial_arg(raw: &str) -> Result<meterai_core::Serial, String> {
    meterai_core::Serial::parse(raw).ok_or_else(|| format!("{raw:?} is not an e-Meterai serial"))
}

/// The payment gateway as the stack's settings name it.
async fn gateway(clients: &AwsClients) -> Result<meterai::midtrans::MidtransGateway, String> {
    let key = meterai::aws::secret_text(clients, &setting("METERAI_MIDTRANS_SERVER_KEY_SECRET"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(meterai::midtrans::MidtransGateway::new(
        &key,
        &setting("METERAI_MIDTRANS_SNAP_URL"),
        &setting("METERAI_MIDTRANS_API_URL"),
        std::time::Duration::from_secs(10),
    ))
}

/// A job as the operators see it: the API's view, and who pays and owns it.
fn job_json(job: &meterai_core::jobs::Job) -> serde_json::Value {
    let mut shown = serde_json::to_value(job.view(None)).expect("serializes");
    shown["account"] = job.account.as_str().into();
    shown["owner"] = job.owner.as_str().into();
    shown["channel"] = job.channel.as_str().into();
    shown
}

/// A replay's progress on standard error: a bar on a terminal, a line per
/// hundred elsewhere (a log keeps it readable).
fn progress(moved: usize, max: usize) {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        let width = 30;
        let filled = (moved * width / max.max(1)).min(width);
        eprint!(
            "\r[{}{}] {moved}/{max}",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
    } else if moved.is_multiple_of(100) {
        eprintln!("replayed {moved} of at most {max}");
    }
}

/// The correction the options describe, or exit 2 saying what is wrong.
fn checked_correction(
    account: &str,
    add: Option<i64>,
    withdraw: Option<i64>,
    ticket: &str,
    reason: &str,
    operator: &str,
) -> meterai_core::quota::Correction {
    let delta = match (add, withdraw) {
        (Some(add), _) => add,
        (None, Some(withdraw)) => -withdraw,
        (None, None) => unreachable!("clap requires --add or --withdraw"),
    };
    let Ok(id) = meterai_core::AccountId::parse(account) else {
        eprintln!("--account {account:?} is not an account id");
        std::process::exit(2)
    };
    meterai_core::quota::Correction::new(&id, delta, ticket, reason, operator).unwrap_or_else(|e| {
        eprintln!("{}", e.message());
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    // Parsed before anything is read: --help, a mistyped option or a bad
    // value is answered without any environment or AWS.
    let cli = Cli::parse();
    // A correction is checked whole (the reason, the ticket) before the
    // settings too.
    let correction = match &cli.command {
        Command::Account(Account::Correct {
            account,
            add,
            withdraw,
            ticket,
            reason,
            operator,
        }) => Some(checked_correction(
            account, *add, *withdraw, ticket, reason, operator,
        )),
        _ => None,
    };
    if let Some(path) = &cli.env_file {
        load_env_file(path);
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
    // Every command names the stack's table: missing, nothing is asked of AWS.
    let table = setting("METERAI_TABLE_NAME");
    let shared = aws_config::load_from_env().await;
    let clients = AwsClients::from_sdk_config(&shared, true);
    // Loopback webhook URLs only for a stack on the emulator (its endpoint
    // is in the env file), never for a stage that is merely named local.
    let local = std::env::var("METERAI_ENDPOINT_URL").is_ok_and(|u| !u.is_empty());
    let result = match cli.command {
        Command::Account(Account::Show {
            account,
            ledger,
            jobs,
        }) => {
            let Ok(id) = meterai_core::AccountId::parse(&account) else {
                eprintln!("--account {account:?} is not an account id");
                std::process::exit(2)
            };
            let shown = async {
                let audit = meterai::quota::audit(&clients, &table, &id).await?;
                let page = meterai::quota::ledger_page(&clients, &table, &id, ledger, None).await?;
                // The operator's name is kept from the account's owner,
                // not from the operators.
                let entries: Vec<_> = page
                    .items
                    .iter()
                    .map(|entry| {
                        let mut shown = serde_json::to_value(entry).expect("serializes");
                        if let Some(operator) = &entry.operator {
                            shown["operator"] = operator.as_str().into();
                        }
                        shown
                    })
                    .collect();
                let recent = meterai_app::ports::Jobs::list(
                    &meterai::stamping::DynamoJobs::new(clients.clone(), table.clone()),
                    &id,
                    jobs,
                    None,
                )
                .await?;
                Ok(serde_json::json!({
                    "account": account,
                    "balance": audit.balance,
                    "audit_holds": audit.holds(),
                    "audit": audit,
                    "latest_ledger_entries": entries,
                    "latest_jobs": recent.items.iter().map(job_json).collect::<Vec<_>>(),
                }))
            };
            shown.await
        }
        Command::Account(Account::Correct { account, .. }) => {
            let correction = correction.expect("checked before the settings");
            let corrections = meterai::quota::DynamoQuota {
                clients: clients.clone(),
                table: table.clone(),
            };
            meterai_app::quota::correct(&corrections, &meterai_app::ports::SystemClock, correction)
                .await
                .map(|done| {
                    serde_json::json!({
                        "account": account,
                        "movement": done.correction.movement.ledger_sk(),
                        "quantity": done.correction.movement.quantity,
                        "reason": done.correction.reason,
                        "operator": done.correction.operator,
                        "balance": done.audit.balance,
                        "audit_holds": done.audit.holds(),
                    })
                })
        }
        Command::DeadLetters(DeadLetters::Count) => {
            let waiting = |name: &str| {
                let url = setting(name);
                let clients = &clients;
                async move { meterai::aws::messages_waiting(clients, &url).await }
            };
            let counted = async {
                let jobs = waiting("METERAI_JOBS_DEAD_LETTER_QUEUE_URL").await?;
                let webhooks = waiting("METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL").await?;
                Ok(serde_json::json!({ "jobs": jobs, "webhooks": webhooks }))
            };
            counted.await
        }
        Command::DeadLetters(DeadLetters::Peek { queue, max }) => {
            let url = setting(match queue {
                DeadLetterQueue::Jobs => "METERAI_JOBS_DEAD_LETTER_QUEUE_URL",
                DeadLetterQueue::Webhooks => "METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL",
            });
            meterai::aws::peek(&clients, &url, max)
                .await
                .map(|messages| serde_json::json!({ "messages": messages }))
        }
        Command::Order(OrderCommand::Show { order: order_id }) => {
            let orders = meterai::orders::DynamoOrders {
                clients: clients.clone(),
                table: table.clone(),
            };
            let shown = async {
                let Some(order) = meterai_app::ports::Orders::load(&orders, &order_id).await?
                else {
                    return Err(meterai::Error::not_found(
                        meterai::error::codes::ORDER_NOT_FOUND,
                        format!("no order {order_id}"),
                    ));
                };
                let gateway_says = match gateway(&clients).await {
                    Ok(gateway) => meterai_app::ports::Gateway::status(&gateway, &order_id)
                        .await
                        .map(|a| serde_json::to_value(a).unwrap_or_default())
                        .unwrap_or_else(|e| e.to_string().into()),
                    Err(e) => e.into(),
                };
                Ok(serde_json::json!({
                    "order": order.view(meterai_core::time::now_ms()),
                    "account": order.account.as_str(),
                    "gateway_says": gateway_says,
                }))
            };
            shown.await
        }
        Command::Serial(SerialCommand::Show { serial }) => {
            let shown = async {
                let Some(state) =
                    meterai::verification::serial_state(&clients, &table, &serial).await?
                else {
                    return Err(meterai::Error::not_found(
                        meterai::error::codes::SERIAL_NOT_FOUND,
                        format!("no job ever claimed serial {serial}"),
                    ));
                };
                let jobs = meterai::stamping::DynamoJobs::new(clients.clone(), table.clone());
                let job = meterai_app::ports::Jobs::load(&jobs, &state.job_id).await?;
                Ok(serde_json::json!({
                    "serial": state,
                    "job": job.as_ref().map(job_json),
                }))
            };
            shown.await
        }
        Command::Reseller(Reseller::Create { name, webhook_url }) => resellers::create(
            &clients,
            &secrets(&clients),
            &table,
            &name,
            webhook_url.as_deref(),
            local,
        )
        .await
        .map(|c| serde_json::to_value(c).expect("serializes")),
        Command::Reseller(Reseller::IssueKey { reseller }) => {
            resellers::issue_key(&clients, &table, &reseller).await.map(
                |(key_id, api_key)| serde_json::json!({ "key_id": key_id, "api_key": api_key }),
            )
        }
        Command::Reseller(Reseller::RevokeKey { reseller, key }) => {
            resellers::revoke_key(&clients, &table, &reseller, &key)
                .await
                .map(|()| serde_json::json!({ "revoked": key }))
        }
        Command::Reseller(Reseller::SetWebhook {
            reseller,
            url,
            rotate_secret,
        }) => resellers::configure_webhook(
            &clients,
            &secrets(&clients),
            &table,
            &reseller,
            url.as_deref().filter(|u| !u.is_empty()),
            rotate_secret,
            local,
        )
        .await
        .map(|secret| serde_json::json!({ "webhook_enabled": true, "webhook_secret": secret })),
        Command::Reseller(Reseller::SealSecrets) => {
            resellers::seal_clear_secrets(&clients, &secrets(&clients), &table)
                .await
                .map(|sealed| serde_json::json!({ "sealed": sealed }))
        }
        Command::ReplayWebhooks { max } => {
            let max = max as usize;
            let replayed = events::replay_dead_letters(
                &clients,
                &setting("METERAI_WEBHOOKS_DEAD_LETTER_QUEUE_URL"),
                &setting("METERAI_WEBHOOKS_QUEUE_URL"),
                max,
                &|moved| progress(moved, max),
            )
            .await;
            eprintln!();
            replayed.map(|moved| serde_json::json!({ "replayed": moved }))
        }
        Command::Payments(Payments::Check { order: order_id }) => {
            // Asks the gateway about one order and acts on the answer, by
            // the same path as a notification; prints what it found.
            let gateway = gateway(&clients).await.unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            });
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
        Command::Signing(Signing::Csr { subject }) => {
            match meterai::kms::certificate_request(
                &clients.kms,
                &setting("METERAI_SIGNING_KEY_ID"),
                &subject,
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
