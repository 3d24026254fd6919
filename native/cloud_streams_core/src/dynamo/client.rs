//! DynamoDB clients, built once per configuration and reused (building one loads credentials
//! and sets up a connection pool).

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Where and how to reach DynamoDB. `None` fields fall back to the standard AWS chain
/// (environment variables, profiles, instance metadata). Explicit keys win over the chain.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ClientConfig {
    pub region: Option<String>,
    /// DynamoDB Local or another endpoint.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
    /// Attempts per request, the first included. Long scans need more than the SDK's 3.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub connect_timeout_ms: Option<u64>,
    pub operation_timeout_ms: Option<u64>,
}

// Never print credentials.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

static CLIENTS: OnceLock<Mutex<HashMap<ClientConfig, Client>>> = OnceLock::new();

/// The client for `config`, built on first use.
pub async fn client(config: &ClientConfig) -> Client {
    let clients = CLIENTS.get_or_init(Default::default);
    if let Some(client) = clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(config)
    {
        return client.clone();
    }
    let client = build(config).await;
    clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(config.clone())
        .or_insert(client)
        .clone()
}

async fn build(config: &ClientConfig) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(profile) = &config.profile {
        // The standard chain's order stands: AWS_* variables, when set, win over a profile.
        loader = loader.profile_name(profile);
    }
    if let (Some(key), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            key,
            secret,
            config.session_token.clone(),
            None,
            "cloud_streams",
        ));
    }
    let retry = RetryConfig::standard()
        .with_max_attempts(config.max_attempts.max(1))
        .with_initial_backoff(Duration::from_millis(config.initial_backoff_ms))
        .with_max_backoff(Duration::from_millis(config.max_backoff_ms));
    let mut timeouts = TimeoutConfig::builder();
    if let Some(ms) = config.connect_timeout_ms {
        timeouts = timeouts.connect_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = config.operation_timeout_ms {
        timeouts = timeouts.operation_timeout(Duration::from_millis(ms));
    }
    let sdk_config = loader
        .retry_config(retry)
        .timeout_config(timeouts.build())
        .load()
        .await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config);
    Client::from_conf(config.interceptor(super::attempts::CountAttempts).build())
}
