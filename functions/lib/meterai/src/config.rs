//! Configuration comes from environment variables set by the CloudFormation
//! template. It is read once, in `main`, and passed down.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Error, Result};
use meterai_core::orders::OrderRules;

/// What every function needs to know about its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The single DynamoDB table (orders, quota, jobs, ledger, idempotency).
    pub table_name: String,
    /// The durable queue that stamp jobs travel on.
    pub jobs_queue_url: String,
    /// The private bucket holding uploads and stamped documents.
    pub bucket_name: String,
    /// Emulators serve S3 on one host, so buckets go in the path there.
    pub s3_force_path_style: bool,
    /// Deployment stage (`local` on the emulator, anything else on AWS).
    pub stage: String,
    /// Per-dependency deadline of a health probe; a probe that takes longer
    /// reports the resource as unreachable rather than hanging the request.
    pub probe_timeout: Duration,
    /// First delay before a failed job message is tried again; it doubles on
    /// every receive up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The queue's `maxReceiveCount`: after that many receives a failed message
    /// moves to the dead-letter queue, so waiting before the last move is pointless.
    pub max_receive_count: u32,
    /// The Cognito user pool and app client whose access tokens the
    /// authorizer accepts (the authorizer only).
    pub user_pool_id: Option<String>,
    pub user_pool_client_id: Option<String>,
    /// The region the functions run in (the user pool's, for its issuer).
    pub region: String,
    /// Set on an emulator (it serves the user pool's keys itself); unset on AWS.
    pub aws_endpoint_url: Option<String>,
    /// Midtrans server key: the functions that talk to the gateway. Read
    /// at cold start from the Secrets Manager secret named by
    /// `MIDTRANS_SERVER_KEY_SECRET`, never from a plain variable.
    pub midtrans_server_key: Option<String>,
    pub midtrans_server_key_secret: Option<String>,
    /// Base URLs of Snap and of the status API (sandbox by default; the
    /// local simulator on the local stage).
    pub midtrans_snap_url: String,
    pub midtrans_api_url: String,
    /// Origins the portal's page may connect to besides its own (the
    /// bucket it uploads to), for its content security policy.
    pub portal_connect_src: Option<String>,
    /// How old a pending order must be before the reconciler asks about it,
    /// and how many it asks about per run.
    pub settle_after: Duration,
    pub settle_batch: usize,
    pub order_rules: OrderRules,
    /// Largest PDF accepted for stamping, and most pages.
    pub max_document_bytes: usize,
    pub max_pages: u32,
    /// Base of the public verification URL in every QR code (the API's URL).
    pub verify_base_url: String,
    /// Lifetime of presigned upload and download URLs.
    pub url_ttl: Duration,
    /// Bound on stamping one document.
    pub stamp_timeout: Duration,
    /// Local stage only: lets a test or the chaos run inject a fault into
    /// one job (see `meterai_app::stamping::Fault`).
    pub fault_injection: bool,
    /// The queue of outbound webhook events to resellers (functions that emit
    /// events, and the deliverer); unset: no events are emitted.
    pub webhooks_queue_url: Option<String>,
    /// Where portal users' e-mails are queued (functions that cause any).
    pub mail_queue_url: Option<String>,
    /// The mailer's sender address and the portal its links point to.
    pub mail_from: Option<String>,
    pub portal_url: Option<String>,
    /// On AWS behind the edge (infra/edge.yaml): the secret CloudFront sends
    /// as `x-meterai-edge`; a request without it did not pass the WAF.
    pub edge_secret: Option<String>,
    /// Where undeliverable events wait for an admin's replay (the deliverer).
    pub webhooks_dead_letter_queue_url: Option<String>,
    /// Deadline of one webhook delivery.
    pub webhook_timeout: Duration,
    /// The KMS signing key (the worker only).
    pub signing_key_id: Option<String>,
    /// The KMS key that seals the resellers' webhook secrets.
    pub secrets_key_id: Option<String>,
    /// Bucket key of the signing certificate chain (PEM, signer first).
    pub signing_chain_key: String,
    /// How long a function uses the chain it read before reading it again.
    pub signing_chain_ttl: Duration,
}

impl Config {
    /// Whether the function runs on the emulator: the template sets
    /// `AWS_ENDPOINT_URL` only there. What only the emulator may allow
    /// (loopback webhooks, cookies without `Secure`, the chaos switch) is
    /// decided by this, never by the stage's name, which defaults to `local`.
    pub fn on_emulator(&self) -> bool {
        self.aws_endpoint_url
            .as_deref()
            .is_some_and(|u| !u.is_empty())
    }

    /// Reads the process environment. Call once per cold start.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Builds a configuration from a map of variables (testable without touching
    /// the process environment).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self> {
        let required = |name: &str| -> Result<String> {
            vars.get(name)
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .ok_or_else(|| {
                    Error::Misconfigured(format!("environment variable {name} is not set"))
                })
        };
        let optional = |name: &str| -> Option<String> {
            vars.get(name).filter(|v| !v.trim().is_empty()).cloned()
        };
        let number = |name: &str, default: u64| -> Result<u64> {
            match vars.get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| Error::Misconfigured(format!("{name} is not a number: {v}"))),
            }
        };
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            jobs_queue_url: required("JOBS_QUEUE_URL")?,
            bucket_name: required("BUCKET_NAME")?,
            s3_force_path_style: vars
                .get("S3_FORCE_PATH_STYLE")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            stage: vars.get("STAGE").cloned().unwrap_or_else(|| "local".into()),
            probe_timeout: Duration::from_millis(number("PROBE_TIMEOUT_MS", 2_000)?),
            retry_base: Duration::from_secs(number("RETRY_BASE_SECONDS", 2)?),
            retry_max: Duration::from_secs(number("RETRY_MAX_SECONDS", 300)?),
            max_receive_count: u32::try_from(number("MAX_RECEIVE_COUNT", 5)?)
                .map_err(|_| Error::Misconfigured("MAX_RECEIVE_COUNT is too large".into()))?,
            user_pool_id: optional("USER_POOL_ID"),
            user_pool_client_id: optional("USER_POOL_CLIENT_ID"),
            region: optional("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            aws_endpoint_url: optional("AWS_ENDPOINT_URL"),
            midtrans_server_key: None,
            midtrans_server_key_secret: optional("MIDTRANS_SERVER_KEY_SECRET"),
            midtrans_snap_url: optional("MIDTRANS_SNAP_URL")
                .unwrap_or_else(|| "https://app.sandbox.midtrans.com".into()),
            portal_connect_src: optional("PORTAL_CONNECT_SRC"),
            midtrans_api_url: optional("MIDTRANS_API_URL")
                .unwrap_or_else(|| "https://api.sandbox.midtrans.com".into()),
            settle_after: Duration::from_secs(number("SETTLE_AFTER_SECONDS", 180)?),
            settle_batch: number("SETTLE_BATCH", 500)? as usize,
            order_rules: OrderRules {
                unit_price: number("UNIT_PRICE_RUPIAH", 10_000)? as i64,
                max_quantity: number("ORDER_MAX_QUANTITY", 1_000)? as i64,
                payment_window_ms: number("ORDER_PAYMENT_WINDOW_MINUTES", 24 * 60)? as i64 * 60_000,
                refund_window_ms: number("REFUND_WINDOW_DAYS", 30)? as i64 * 24 * 3_600_000,
            },
            max_document_bytes: number("MAX_DOCUMENT_BYTES", 10 * 1024 * 1024)? as usize,
            max_pages: number("MAX_PAGES", 500)? as u32,
            verify_base_url: vars.get("VERIFY_BASE_URL").cloned().unwrap_or_default(),
            url_ttl: Duration::from_secs(number("URL_TTL_SECONDS", 900)?),
            stamp_timeout: Duration::from_secs(number("STAMP_TIMEOUT_SECONDS", 20)?),
            // Never on AWS, whatever the variable says.
            fault_injection: vars.get("FAULT_INJECTION").is_some_and(|v| v == "true")
                && vars.get("AWS_ENDPOINT_URL").is_some_and(|u| !u.is_empty()),
            webhooks_queue_url: vars
                .get("WEBHOOKS_QUEUE_URL")
                .filter(|v| !v.is_empty())
                .cloned(),
            mail_queue_url: optional("MAIL_QUEUE_URL"),
            mail_from: optional("MAIL_FROM"),
            portal_url: optional("PORTAL_URL"),
            edge_secret: optional("EDGE_SECRET"),
            webhooks_dead_letter_queue_url: vars
                .get("WEBHOOKS_DEAD_LETTER_QUEUE_URL")
                .filter(|v| !v.is_empty())
                .cloned(),
            webhook_timeout: Duration::from_secs(number("WEBHOOK_TIMEOUT_SECONDS", 5)?),
            signing_key_id: vars
                .get("SIGNING_KEY_ID")
                .filter(|v| !v.trim().is_empty())
                .cloned(),
            secrets_key_id: vars
                .get("SECRETS_KEY_ID")
                .filter(|v| !v.trim().is_empty())
                .cloned(),
            signing_chain_key: vars
                .get("SIGNING_CHAIN_KEY")
                .cloned()
                .unwrap_or_else(|| "signing/chain.pem".into()),
            signing_chain_ttl: Duration::from_secs(number("SIGNING_CHAIN_TTL_SECONDS", 600)?),
        })
    }
}

/// The settings a function cannot work without, beyond those every function
/// has (table, bucket, jobs queue). Each function declares its own (see
/// `routes`), and its cold start stops with the missing variable's name, so
/// a deployment that forgot one fails at once instead of on some request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The user pool whose tokens it checks (`USER_POOL_ID`,
    /// `USER_POOL_CLIENT_ID`): the authorizer.
    pub identity: bool,
    /// The payment gateway's key (the secret `MIDTRANS_SERVER_KEY_SECRET` names).
    pub payment_gateway: bool,
    /// The KMS signing key (`SIGNING_KEY_ID`).
    pub signing_key: bool,
    /// The webhooks queue its reseller events go to (`WEBHOOKS_QUEUE_URL`).
    pub events: bool,
    /// Where undeliverable events wait (`WEBHOOKS_DEAD_LETTER_QUEUE_URL`).
    pub event_dead_letters: bool,
    /// The mailer's sender and user pool (`MAIL_FROM`, `USER_POOL_ID`).
    pub mail: bool,
    /// The key that opens the resellers' webhook secrets (`SECRETS_KEY_ID`).
    pub webhook_secrets: bool,
}

impl Needs {
    /// Nothing beyond the common settings.
    pub const NONE: Needs = Needs {
        identity: false,
        payment_gateway: false,
        signing_key: false,
        events: false,
        event_dead_letters: false,
        mail: false,
        webhook_secrets: false,
    };
}

impl Config {
    /// Checks that this function's own settings are there (at cold start).
    pub fn check(&self, needs: Needs) -> Result<()> {
        let missing = [
            (
                needs.identity && self.user_pool_id.is_none(),
                "USER_POOL_ID",
            ),
            (
                needs.identity && self.user_pool_client_id.is_none(),
                "USER_POOL_CLIENT_ID",
            ),
            (
                needs.payment_gateway && self.midtrans_server_key_secret.is_none(),
                "MIDTRANS_SERVER_KEY_SECRET",
            ),
            (
                needs.signing_key && self.signing_key_id.is_none(),
                "SIGNING_KEY_ID",
            ),
            (
                needs.events && self.webhooks_queue_url.is_none(),
                "WEBHOOKS_QUEUE_URL",
            ),
            (
                needs.event_dead_letters && self.webhooks_dead_letter_queue_url.is_none(),
                "WEBHOOKS_DEAD_LETTER_QUEUE_URL",
            ),
            (needs.mail && self.mail_from.is_none(), "MAIL_FROM"),
            (needs.mail && self.user_pool_id.is_none(), "USER_POOL_ID"),
            (
                needs.webhook_secrets && self.secrets_key_id.is_none(),
                "SECRETS_KEY_ID",
            ),
        ];
        if let Some((_, name)) = missing.iter().find(|(gone, _)| *gone) {
            return Err(Error::Misconfigured(format!(
                "environment variable {name} is not set, and this function needs it"
            )));
        }
        // The signer draws the QR code: a URL too long for it would make
        // marks that do not decode at their smallest size.
        if needs.signing_key
            && !meterai_core::jobs::verify_base_fits_the_mark(&self.verify_base_url)
        {
            return Err(Error::Misconfigured(format!(
                "VERIFY_BASE_URL is too long for the mark's QR code (at most {} bytes with the path and serial)",
                meterai_core::jobs::MAX_QR_URL
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_every_setting() {
        let config = Config::from_vars(&vars(&[
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", "http://q"),
            ("BUCKET_NAME", "b"),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("STAGE", "prod"),
            ("PROBE_TIMEOUT_MS", "500"),
            ("RETRY_BASE_SECONDS", "1"),
            ("RETRY_MAX_SECONDS", "20"),
            ("MAX_RECEIVE_COUNT", "3"),
            ("USER_POOL_ID", "ap-southeast-3_Pool"),
            ("USER_POOL_CLIENT_ID", "client-1"),
            ("AWS_REGION", "ap-southeast-3"),
            ("MIDTRANS_SERVER_KEY_SECRET", "meterai/midtrans"),
            ("ORDER_MAX_QUANTITY", "50"),
            ("REFUND_WINDOW_DAYS", "7"),
        ]))
        .unwrap();
        assert_eq!(config.table_name, "t");
        assert_eq!(config.jobs_queue_url, "http://q");
        assert_eq!(config.bucket_name, "b");
        assert!(config.s3_force_path_style);
        assert_eq!(config.stage, "prod");
        assert_eq!(config.probe_timeout, Duration::from_millis(500));
        assert_eq!(config.retry_base, Duration::from_secs(1));
        assert_eq!(config.retry_max, Duration::from_secs(20));
        assert_eq!(config.max_receive_count, 3);
        assert_eq!(config.user_pool_id.as_deref(), Some("ap-southeast-3_Pool"));
        assert_eq!(config.user_pool_client_id.as_deref(), Some("client-1"));
        assert_eq!(config.region, "ap-southeast-3");
        assert_eq!(config.aws_endpoint_url, None);
        assert_eq!(
            config.midtrans_server_key_secret.as_deref(),
            Some("meterai/midtrans")
        );
        assert_eq!(
            config.midtrans_server_key, None,
            "read from the secret, not a variable"
        );
        assert_eq!(config.order_rules.max_quantity, 50);
        assert_eq!(config.order_rules.refund_window_ms, 7 * 24 * 3_600_000);
        assert_eq!(config.order_rules.unit_price, 10_000);
    }

    #[test]
    fn missing_or_blank_setting_is_named() {
        let err = Config::from_vars(&vars(&[
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", " "),
            ("BUCKET_NAME", "b"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JOBS_QUEUE_URL"), "{err}");
    }

    #[test]
    fn only_the_emulators_endpoint_makes_a_deployment_local() {
        let base = [
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("BUCKET_NAME", "b"),
            ("FAULT_INJECTION", "true"),
        ];
        // A stage named (or defaulting to) "local" on AWS is not the emulator.
        for stage in ["local", "prod"] {
            let mut on_aws = base.to_vec();
            on_aws.push(("STAGE", stage));
            let config = Config::from_vars(&vars(&on_aws)).unwrap();
            assert!(!config.on_emulator(), "{stage}");
            assert!(!config.fault_injection, "{stage}");
        }
        let mut empty = base.to_vec();
        empty.push(("AWS_ENDPOINT_URL", ""));
        assert!(!Config::from_vars(&vars(&empty)).unwrap().on_emulator());
        let mut emulator = base.to_vec();
        emulator.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"));
        let config = Config::from_vars(&vars(&emulator)).unwrap();
        assert!(config.on_emulator());
        assert!(config.fault_injection);
    }

    #[test]
    fn defaults_are_virtual_hosted_s3_and_local_stage() {
        let config = Config::from_vars(&vars(&[
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("BUCKET_NAME", "b"),
        ]))
        .unwrap();
        assert!(!config.s3_force_path_style);
        assert_eq!(config.stage, "local");
        assert_eq!(config.probe_timeout, Duration::from_secs(2));
        assert_eq!(config.retry_base, Duration::from_secs(2));
        assert_eq!(config.retry_max, Duration::from_secs(300));
        assert_eq!(config.max_receive_count, 5);
        assert_eq!(config.user_pool_id, None);
        assert_eq!(config.midtrans_server_key, None);
        assert_eq!(config.order_rules, OrderRules::default());
        assert!(
            !config.fault_injection,
            "fault injection is off unless asked for"
        );
    }

    #[test]
    fn bad_timeout_is_rejected() {
        let err = Config::from_vars(&vars(&[
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("BUCKET_NAME", "b"),
            ("PROBE_TIMEOUT_MS", "soon"),
        ]))
        .unwrap_err();
        assert!(matches!(err, Error::Misconfigured(_)));
    }

    #[test]
    fn a_function_without_its_own_settings_stops_at_cold_start() {
        let vars: HashMap<String, String> = [
            ("TABLE_NAME", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("BUCKET_NAME", "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::from_vars(&vars).unwrap();
        assert!(config.check(Needs::NONE).is_ok());
        for (needs, variable) in [
            (
                Needs {
                    identity: true,
                    ..Needs::NONE
                },
                "USER_POOL_ID",
            ),
            (
                Needs {
                    payment_gateway: true,
                    ..Needs::NONE
                },
                "MIDTRANS_SERVER_KEY_SECRET",
            ),
            (
                Needs {
                    signing_key: true,
                    ..Needs::NONE
                },
                "SIGNING_KEY_ID",
            ),
            (
                Needs {
                    events: true,
                    ..Needs::NONE
                },
                "WEBHOOKS_QUEUE_URL",
            ),
            (
                Needs {
                    event_dead_letters: true,
                    ..Needs::NONE
                },
                "WEBHOOKS_DEAD_LETTER_QUEUE_URL",
            ),
            (
                Needs {
                    webhook_secrets: true,
                    ..Needs::NONE
                },
                "SECRETS_KEY_ID",
            ),
        ] {
            let err = config.check(needs).unwrap_err();
            assert!(
                matches!(&err, Error::Misconfigured(m) if m.contains(variable)),
                "{err:?}"
            );
        }
        let mut all = vars.clone();
        for name in [
            "USER_POOL_ID",
            "USER_POOL_CLIENT_ID",
            "MIDTRANS_SERVER_KEY_SECRET",
            "SIGNING_KEY_ID",
            "WEBHOOKS_QUEUE_URL",
            "WEBHOOKS_DEAD_LETTER_QUEUE_URL",
            "MAIL_FROM",
            "SECRETS_KEY_ID",
        ] {
            all.insert(name.to_string(), "set".to_string());
        }
        let every = Needs {
            identity: true,
            payment_gateway: true,
            signing_key: true,
            events: true,
            event_dead_letters: true,
            mail: true,
            webhook_secrets: true,
        };
        assert!(Config::from_vars(&all).unwrap().check(every).is_ok());
        // The signer's QR code carries the verification URL: an AWS API's
        // default endpoint fits, a longer base refuses to start.
        let signer = Needs {
            signing_key: true,
            ..Needs::NONE
        };
        let aws = "https://a1b2c3d4e5.execute-api.ap-southeast-3.amazonaws.com";
        all.insert("VERIFY_BASE_URL".into(), aws.into());
        assert!(Config::from_vars(&all).unwrap().check(signer).is_ok());
        all.insert(
            "VERIFY_BASE_URL".into(),
            format!("{aws}/{}", "x".repeat(20)),
        );
        let err = Config::from_vars(&all).unwrap().check(signer).unwrap_err();
        assert!(
            matches!(&err, Error::Misconfigured(m) if m.contains("VERIFY_BASE_URL")),
            "{err:?}"
        );
    }
}
