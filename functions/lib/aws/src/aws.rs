//! AWS clients, built once per cold start and passed to the domain functions.
//!
//! The endpoint comes from the standard `AWS_ENDPOINT_URL` variable (the
//! template sets it on the local stack, and leaves it out on AWS).

/// The clients every function shares. Cloning is cheap (they are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub ses: aws_sdk_sesv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsClients {
    /// Loads region, credentials and endpoint from the environment once
    /// (emulators serve S3 on one host: `s3_force_path_style` puts buckets
    /// in the path there).
    pub async fn load(s3_force_path_style: bool) -> Self {
        let shared = aws_config::from_env()
            .timeout_config(call_budget())
            .load()
            .await;
        Self::from_sdk_config(&shared, s3_force_path_style)
    }

    /// Clients from an already loaded SDK configuration (tools and tests that
    /// point at a stack from outside it).
    pub fn from_sdk_config(shared: &aws_config::SdkConfig, s3_force_path_style: bool) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(shared)
            .force_path_style(s3_force_path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            sqs: aws_sdk_sqs::Client::new(shared),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            kms: aws_sdk_kms::Client::new(shared),
            secrets: aws_sdk_secretsmanager::Client::new(shared),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(shared),
            ses: aws_sdk_sesv2::Client::new(shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(shared),
        }
    }
}

/// How long any one AWS call may take. Without it a call that hangs holds
/// the request until the function's own timeout, and the caller gets API
/// Gateway's 502/504 instead of our 503 with a code. The SDK's standard
/// retries (3 attempts) run inside the operation's bound; every call a
/// function makes is a few milliseconds to a few hundred when well.
pub fn call_budget() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(4))
        .operation_timeout(std::time::Duration::from_secs(8))
        .build()
}

/// A secret's text (Secrets Manager), read once per cold start. Its value
/// never appears in an error.
pub async fn secret_text(clients: &AwsClients, secret_id: &str) -> crate::Result<String> {
    let out = clients
        .secrets
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            crate::Error::Misconfigured(format!(
                "secret {secret_id} could not be read: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            ))
        })?;
    out.secret_string()
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| crate::Error::Misconfigured(format!("secret {secret_id} is empty")))
}

/// Messages waiting in a queue (the queue's own estimate), for an operator.
pub async fn messages_waiting(clients: &AwsClients, queue_url: &str) -> crate::Result<i64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| crate::Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    out.attributes()
        .and_then(|a| a.get(&A::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| crate::Error::queue("the queue did not say how many messages wait"))
}

/// A message looked at where it waits, left there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Peeked {
    pub message_id: String,
    pub receive_count: i64,
    pub sent_at: String,
    /// The first 500 characters.
    pub body: String,
}

/// Up to `max` (1-10) messages of a queue, made visible again at once: an
/// operator's look, which moves and deletes nothing (each look counts as a
/// receive).
pub async fn peek(clients: &AwsClients, queue_url: &str, max: i32) -> crate::Result<Vec<Peeked>> {
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    let out = clients
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(max.clamp(1, 10))
        .visibility_timeout(0)
        .wait_time_seconds(1)
        .message_system_attribute_names(A::ApproximateReceiveCount)
        .message_system_attribute_names(A::SentTimestamp)
        .send()
        .await
        .map_err(|e| crate::Error::queue(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    Ok(out
        .messages()
        .iter()
        .map(|m| {
            let attribute = |name: A| {
                m.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            Peeked {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receive_count: attribute(A::ApproximateReceiveCount),
                sent_at: meterai_core::time::rfc3339(attribute(A::SentTimestamp)),
                body: m.body().unwrap_or_default().chars().take(500).collect(),
            }
        })
        .collect())
}
