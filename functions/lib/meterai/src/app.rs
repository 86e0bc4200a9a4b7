//! What a function holds for its whole life: configuration, AWS clients and
//! the adapters, built once per cold start.

use std::sync::Arc;

use crate::aws::AwsClients;
use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub clients: AwsClients,
    /// The payment gateway (the functions given its server key).
    gateway: Option<meterai_aws::midtrans::MidtransGateway>,
    /// The user pool's signing keys (the authorizer only).
    keys: Option<crate::auth::Keys>,
    /// The user pool's portal accounts (where the pool's client is set).
    accounts: Option<meterai_aws::accounts::CognitoAccounts>,
    stamp_settings: crate::stamping::StampSettings,
    /// Where reseller events go, when this function emits any.
    outbox: Option<crate::events::Outbox>,
    /// Opens (and seals) the resellers' webhook secrets, where the key is set.
    webhook_secrets: Option<meterai_aws::secrets::WebhookSecrets>,
    /// The ports' adapters (built once, with the app).
    orders: crate::orders::DynamoOrders,
    payment_log: crate::payments::DynamoPaymentLog,
    event_outbox: crate::events::DynamoOutbox,
    jobs: crate::stamping::DynamoJobs,
    job_queue: crate::stamping::SqsJobQueue,
    documents: crate::stamping::S3Documents,
    idempotency_keys: meterai_aws::idempotency::DynamoIdempotencyKeys,
    customers: crate::resellers::DynamoCustomers,
    registry: crate::verification::DynamoRegistry,
    /// Our signing certificate chain, read from the bucket on first use and
    /// again after `Config::signing_chain_ttl` (a renewed certificate
    /// installed with `infra/signing-cert.sh` reaches warm functions then).
    signing_chain:
        tokio::sync::Mutex<Option<(std::time::Instant, Arc<meterai_pdf::signing::Chain>)>>,
}

impl App {
    pub fn new(config: Config, clients: AwsClients) -> Self {
        let keys = config
            .user_pool_id
            .as_deref()
            .zip(config.user_pool_client_id.as_deref())
            .map(|(pool, client)| {
                crate::auth::Keys::new(
                    crate::auth::UserPool::new(
                        &config.region,
                        pool,
                        client,
                        config.aws_endpoint_url.as_deref(),
                    ),
                    config.probe_timeout,
                )
            });
        let accounts = config.user_pool_client_id.as_ref().map(|client_id| {
            meterai_aws::accounts::CognitoAccounts {
                clients: clients.clone(),
                client_id: client_id.clone(),
            }
        });
        let gateway = config.midtrans_server_key.as_deref().map(|key| {
            meterai_aws::midtrans::MidtransGateway::new(
                key,
                &config.midtrans_snap_url,
                &config.midtrans_api_url,
                std::time::Duration::from_secs(8),
            )
            .finishing_at(config.portal_url.as_deref().unwrap_or(""))
        });
        let stamp_settings = stamp_settings(&config);
        let outbox = config
            .webhooks_queue_url
            .as_ref()
            .map(|queue_url| crate::events::Outbox {
                table: config.table_name.clone(),
                queue_url: queue_url.clone(),
            });
        let webhook_secrets = config.secrets_key_id.as_ref().map(|key_id| {
            meterai_aws::secrets::WebhookSecrets::new(clients.kms.clone(), key_id.clone())
        });
        let table = config.table_name.clone();
        Self {
            jobs: crate::stamping::DynamoJobs::new(clients.clone(), table.clone()),
            job_queue: crate::stamping::SqsJobQueue::new(
                clients.clone(),
                config.jobs_queue_url.clone(),
            ),
            registry: crate::verification::DynamoRegistry {
                clients: clients.clone(),
                table: table.clone(),
            },
            customers: crate::resellers::DynamoCustomers {
                clients: clients.clone(),
                table: table.clone(),
            },
            idempotency_keys: meterai_aws::idempotency::DynamoIdempotencyKeys {
                clients: clients.clone(),
                table: table.clone(),
            },
            documents: crate::stamping::S3Documents {
                clients: clients.clone(),
                bucket: config.bucket_name.clone(),
            },
            orders: crate::orders::DynamoOrders {
                clients: clients.clone(),
                table: table.clone(),
            },
            payment_log: crate::payments::DynamoPaymentLog {
                clients: clients.clone(),
                table,
            },
            event_outbox: crate::events::DynamoOutbox {
                clients: clients.clone(),
                outbox: outbox.clone(),
                mail_queue_url: config.mail_queue_url.clone(),
            },
            outbox,
            webhook_secrets,
            config,
            clients,
            keys,
            accounts,
            gateway,
            stamp_settings,
            signing_chain: tokio::sync::Mutex::new(None),
        }
    }

    pub fn table(&self) -> &str {
        &self.config.table_name
    }

    /// The quota's corrections and audit reads, on this function's table.
    pub fn quota(&self) -> meterai_aws::quota::DynamoQuota {
        meterai_aws::quota::DynamoQuota {
            clients: self.clients.clone(),
            table: self.config.table_name.clone(),
        }
    }

    /// What the stamping side needs (built once, with the app).
    pub fn stamp_settings(&self) -> &crate::stamping::StampSettings {
        &self.stamp_settings
    }

    /// The process's CPU slot: one document parsed at a time (stamped or
    /// verified), a runaway parse keeping new ones off the CPU.
    pub fn cpu(&self) -> &meterai_app::cpu::Slot {
        &self.stamp_settings.slot
    }

    /// The ports stamping works with, on this function's table, queue and bucket.
    pub fn stamp_ports(&self) -> meterai_app::stamping::StampPorts<'_> {
        meterai_app::stamping::StampPorts {
            jobs: &self.jobs,
            queue: &self.job_queue,
            documents: &self.documents,
            outbox: &self.event_outbox,
            clock: &meterai_app::ports::SystemClock,
        }
    }

    /// Our signing certificate chain: one bucket read per TTL
    /// (concurrent callers wait for the one read). If a refresh fails, the
    /// chain read before stays in use.
    pub async fn signing_chain(&self) -> Result<Arc<meterai_pdf::signing::Chain>> {
        let mut cached = self.signing_chain.lock().await;
        if let Some((read_at, chain)) = cached.as_ref() {
            if read_at.elapsed() < self.config.signing_chain_ttl {
                return Ok(chain.clone());
            }
        }
        match self.read_signing_chain().await {
            Ok(chain) => {
                let chain = Arc::new(chain);
                *cached = Some((std::time::Instant::now(), chain.clone()));
                Ok(chain)
            }
            Err(e) => match cached.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "could not refresh the signing chain; using the one read before");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn read_signing_chain(&self) -> Result<meterai_pdf::signing::Chain> {
        meterai_aws::kms::read_chain(
            &self.clients,
            &self.config.bucket_name,
            &self.config.signing_chain_key,
        )
        .await
    }

    /// The KMS signer with our current chain (the worker).
    pub async fn signer(&self) -> Result<crate::kms::KmsSigner> {
        let key_id = self
            .config
            .signing_key_id
            .clone()
            .ok_or_else(|| Error::Misconfigured("SIGNING_KEY_ID is not set".into()))?;
        Ok(crate::kms::KmsSigner::new(
            self.clients.kms.clone(),
            key_id,
            self.signing_chain().await?,
        ))
    }

    /// Who presents `authorization` (the authorizer): a reseller when the
    /// bearer credential is an API key (one table read), else a portal user
    /// by Cognito access token.
    pub async fn authorize(&self, authorization: Option<&str>) -> Result<crate::auth::Caller> {
        let credential = crate::auth::bearer(authorization).ok_or_else(|| {
            Error::unauthenticated(
                crate::error::codes::UNAUTHENTICATED,
                "Authorization must be 'Bearer <access token or API key>'",
            )
        })?;
        if crate::resellers::is_api_key(credential) {
            return Ok(crate::auth::Caller::Reseller(
                crate::resellers::authenticate(&self.clients, self.table(), credential).await?,
            ));
        }
        let keys = self.keys.as_ref().ok_or_else(|| {
            Error::Misconfigured("USER_POOL_ID is not set for this function".into())
        })?;
        keys.verify(credential)
            .await
            .map(crate::auth::Caller::Portal)
    }

    /// The serial registry of this function's table.
    pub fn registry(&self) -> &crate::verification::DynamoRegistry {
        &self.registry
    }

    /// The resellers' webhook secrets (the functions that need them say so,
    /// so the key's absence stops their cold start).
    pub fn webhook_secrets(&self) -> Result<&meterai_aws::secrets::WebhookSecrets> {
        self.webhook_secrets
            .as_ref()
            .ok_or_else(|| Error::Misconfigured("SECRETS_KEY_ID is not set".into()))
    }

    /// The resellers' customers of this function's table.
    pub fn customers(&self) -> &crate::resellers::DynamoCustomers {
        &self.customers
    }

    /// The idempotency keys of this function's table.
    pub fn idempotency_keys(&self) -> &meterai_aws::idempotency::DynamoIdempotencyKeys {
        &self.idempotency_keys
    }

    /// The orders of this function's table.
    pub fn orders(&self) -> &crate::orders::DynamoOrders {
        &self.orders
    }

    /// The payment gateway; a function deployed without its server key
    /// answers MISCONFIGURED instead of calling it.
    /// The portal's accounts in the user pool.
    pub fn accounts(&self) -> crate::Result<&dyn meterai_app::ports::Accounts> {
        match &self.accounts {
            Some(accounts) => Ok(accounts),
            None => Err(crate::Error::Misconfigured(
                "USER_POOL_CLIENT_ID is not set for this function".into(),
            )),
        }
    }

    pub fn gateway(&self) -> &dyn meterai_app::ports::Gateway {
        match &self.gateway {
            Some(gateway) => gateway,
            None => &NoGateway,
        }
    }

    /// What payments work with, on this function's table and gateway.
    pub fn payment_ports(&self) -> meterai_app::payments::PaymentPorts<'_> {
        meterai_app::payments::PaymentPorts {
            orders: &self.orders,
            log: &self.payment_log,
            outbox: &self.event_outbox,
            clock: &meterai_app::ports::SystemClock,
            gateway: self.gateway(),
        }
    }

    /// Where payment notifications are recorded.
    pub fn payment_log(&self) -> &crate::payments::DynamoPaymentLog {
        &self.payment_log
    }

    /// The outbox port (emits nothing when this function has no webhooks queue).
    pub fn event_outbox(&self) -> &crate::events::DynamoOutbox {
        &self.event_outbox
    }

    /// Where reseller events go, when this function emits any.
    pub fn outbox(&self) -> Option<&crate::events::Outbox> {
        self.outbox.as_ref()
    }

    /// Whether this deployment runs on the emulator (loopback webhooks and
    /// plain-HTTP cookies allowed): decided by the emulator's endpoint being
    /// set, which the template does only there, never by the stage's name.
    pub fn on_emulator(&self) -> bool {
        self.config.on_emulator()
    }
}

/// The gateway of a function that was not given one.
struct NoGateway;

#[async_trait::async_trait]
impl meterai_app::ports::Gateway for NoGateway {
    async fn open_payment(
        &self,
        _: &meterai_core::orders::Order,
    ) -> Result<meterai_core::orders::PaymentLink> {
        Err(Error::Misconfigured(
            "MIDTRANS_SERVER_KEY is not set".into(),
        ))
    }
    async fn status(&self, _: &str) -> Result<meterai_core::payments::GatewayStatus> {
        Err(Error::Misconfigured(
            "MIDTRANS_SERVER_KEY is not set".into(),
        ))
    }
}

fn stamp_settings(c: &Config) -> crate::stamping::StampSettings {
    crate::stamping::StampSettings {
        limits: meterai_pdf::stamp::Limits {
            max_bytes: c.max_document_bytes,
            max_pages: c.max_pages,
            max_stream_bytes: meterai_pdf::stamp::pdf::DEFAULT_MAX_STREAM_BYTES,
        },
        verify_base_url: c.verify_base_url.clone(),
        url_ttl: c.url_ttl,
        stamp_timeout: c.stamp_timeout,
        fault_injection: c.fault_injection,
        slot: Default::default(),
    }
}
