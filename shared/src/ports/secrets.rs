//! The secret store contract, and a short-lived cache in front of it.
//!
//! Names are paths without the deployment prefix: `<team>/<name>`, `<team>/slack/<id>`,
//! `<team>/webhook-signing/<id>`, `system/admin-token`, `system/slack-app`,
//! `system/oauth-state-key`. Secret names contain no `/` or `-`, so these never collide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::error::StoreResult;
use crate::domain::secret::SecretValue;

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates the secret or replaces its value.
    async fn put(&self, name: &str, value: &SecretValue) -> StoreResult<()>;
    async fn get(&self, name: &str) -> StoreResult<Option<SecretValue>>;
    /// Deletes at once, so the name can be reused; deleting nothing is fine.
    async fn delete(&self, name: &str) -> StoreResult<()>;
}

/// How long a cached value may be served: Secrets Manager charges per call, and a rotation
/// made elsewhere takes effect within this time.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Caches values (and absences) for at most `ttl`; writes through and forgets what it wrote,
/// so a rotation through this process takes effect at once.
pub struct CachingSecretStore {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<SecretValue>)>>,
}

impl CachingSecretStore {
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        Self { inner, ttl, cache: Mutex::new(HashMap::new()) }
    }

    fn forget(&self, name: &str) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

#[async_trait]
impl SecretStore for CachingSecretStore {
    async fn put(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        self.forget(name);
        let result = self.inner.put(name, value).await;
        self.forget(name);
        result
    }

    async fn get(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        if let Some((at, value)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(name)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.inner.get(name).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        self.forget(name);
        let result = self.inner.delete(name).await;
        self.forget(name);
        result
    }
}
