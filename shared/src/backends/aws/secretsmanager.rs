//! `SecretStore` on AWS Secrets Manager: the secret `<prefix>/<name>` holds the value as its
//! SecretString. Values never enter an error message or a log line: errors name the secret and
//! the call, and service messages are scrubbed of the value before they are kept.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;

use crate::domain::secret::SecretValue;
use crate::ports::error::{StoreError, StoreResult};
use crate::ports::secrets::SecretStore;

/// How often `put` tries again while a just-deleted name is still being deleted. Secrets
/// Manager deletes asynchronously even without a recovery window: for a few seconds the name
/// can be neither created nor written.
const PUT_ATTEMPTS: u32 = 8;

/// Secrets Manager under one name prefix (`SECRETS_PREFIX`).
pub struct SecretsManagerStore {
    client: Client,
    prefix: String,
}

impl SecretsManagerStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix.into();
        Self { client, prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// The Secrets Manager name of a port-level name.
    pub fn secret_id(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn sdk_error<E, R>(&self, op: &str, id: &str, e: &SdkError<E, R>, value: Option<&SecretValue>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut text = format!("Secrets Manager {op} on {id} failed: {}", DisplayErrorContext(e));
        // A service message should never quote the value; if one ever did, it stops here.
        if let Some(v) = value.map(SecretValue::expose).filter(|v| !v.is_empty()) {
            text = text.replace(v, "***");
        }
        StoreError::Unavailable(text)
    }
}

/// Whether an InvalidRequestException is about the secret being (scheduled for) deletion.
fn about_deletion<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.message().is_some_and(|m| m.to_ascii_lowercase().contains("delet"))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    #[tracing::instrument(skip_all, fields(secret = %self.secret_id(name)))]
    async fn put(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        let id = self.secret_id(name);
        for attempt in 0..PUT_ATTEMPTS {
            let created = self.client.create_secret().name(&id).secret_string(value.expose()).send().await;
            let e = match created {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match e.as_service_error() {
                Some(CreateSecretError::ResourceExistsException(_)) => {}
                // The name is still being deleted: wait for it to free up.
                Some(CreateSecretError::InvalidRequestException(ire)) if about_deletion(ire) => {
                    backoff(attempt).await;
                    continue;
                }
                _ => return Err(self.sdk_error("CreateSecret", &id, &e, Some(value))),
            }

            let replaced = self.client.put_secret_value().secret_id(&id).secret_string(value.expose()).send().await;
            let e = match replaced {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match e.as_service_error() {
                // Deleted between the two calls: create it again.
                Some(PutSecretValueError::ResourceNotFoundException(_)) => {}
                // Scheduled for deletion (with a recovery window, by someone else): a put means
                // the secret is wanted, so cancel the deletion. A forced deletion cannot be
                // cancelled; then the name frees up shortly and the create succeeds.
                Some(PutSecretValueError::InvalidRequestException(ire)) if about_deletion(ire) => {
                    if let Err(e) = self.client.restore_secret().secret_id(&id).send().await {
                        tracing::debug!(error = %DisplayErrorContext(&e), "RestoreSecret failed");
                    }
                    backoff(attempt).await;
                }
                _ => return Err(self.sdk_error("PutSecretValue", &id, &e, Some(value))),
            }
        }
        Err(StoreError::Unavailable(format!(
            "Secrets Manager could not write {id}: the name stayed busy with a deletion after {PUT_ATTEMPTS} attempts"
        )))
    }

    #[tracing::instrument(skip_all, fields(secret = %self.secret_id(name)))]
    async fn get(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        let id = self.secret_id(name);
        let out = match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(out) => out,
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetSecretValueError::ResourceNotFoundException(_)) => Ok(None),
                    // A secret scheduled for deletion is gone as far as the service is concerned.
                    Some(GetSecretValueError::InvalidRequestException(ire)) if about_deletion(ire) => Ok(None),
                    _ => Err(self.sdk_error("GetSecretValue", &id, &e, None)),
                };
            }
        };
        let Some(text) = out.secret_string() else {
            return Err(StoreError::Corrupt(format!("secret {id} has no string value")));
        };
        SecretValue::new(text)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("secret {id} holds an unusable value")))
    }

    #[tracing::instrument(skip_all, fields(secret = %self.secret_id(name)))]
    async fn delete(&self, name: &str) -> StoreResult<()> {
        let id = self.secret_id(name);
        match self.client.delete_secret().secret_id(&id).force_delete_without_recovery(true).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(DeleteSecretError::ResourceNotFoundException(_)) => Ok(()),
                // Already being deleted: the outcome the caller asked for.
                Some(DeleteSecretError::InvalidRequestException(ire)) if about_deletion(ire) => Ok(()),
                _ => Err(self.sdk_error("DeleteSecret", &id, &e, None)),
            },
        }
    }
}
