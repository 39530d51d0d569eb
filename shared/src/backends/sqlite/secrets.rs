//! `SecretStore` on SQLite: values encrypted with XChaCha20-Poly1305 under a key file of mode
//! 0600 beside the database, each bound to its name so ciphertexts cannot be swapped.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rusqlite::{OptionalExtension, params};

use super::{SqliteDb, sql};
use crate::domain::secret::SecretValue;
use crate::ports::error::{StoreError, StoreResult};
use crate::ports::secrets::SecretStore;

/// The embedded secret store.
#[derive(Clone)]
pub struct SqliteSecrets {
    db: Arc<SqliteDb>,
    cipher: Arc<XChaCha20Poly1305>,
}

impl SqliteSecrets {
    /// Uses the key in `key_file`, creating it (32 random bytes, mode 0600) on first use.
    pub fn open(db: Arc<SqliteDb>, key_file: &Path) -> StoreResult<SqliteSecrets> {
        let key = load_or_create_key(key_file)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| StoreError::corrupt("secret key has the wrong length"))?;
        Ok(SqliteSecrets { db, cipher: Arc::new(cipher) })
    }
}

fn load_or_create_key(path: &Path) -> StoreResult<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if key.len() == 32 => return Ok(key),
        Ok(_) => return Err(StoreError::corrupt(format!("{} is not a 32-byte key", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::unavailable(format!("reading {}: {e}", path.display()))),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| StoreError::unavailable(format!("no randomness for a key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::unavailable(format!("writing {}: {e}", path.display())))?;
            Ok(key.to_vec())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(StoreError::unavailable(format!("creating {}: {e}", path.display()))),
    }
}

#[async_trait]
impl SecretStore for SqliteSecrets {
    async fn put(&self, name: &str, value: &SecretValue) -> StoreResult<()> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::unavailable(format!("no randomness for a nonce: {e}")))?;
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value.expose().as_bytes(), aad: name.as_bytes() })
            .map_err(|_| StoreError::corrupt("encryption failed"))?;
        let name = name.to_owned();
        self.db
            .call(move |conn, _| {
                conn.execute(
                    "INSERT INTO secrets (name, nonce, ciphertext) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(name) DO UPDATE SET nonce = ?2, ciphertext = ?3",
                    params![name, nonce.to_vec(), ciphertext],
                )
                .map_err(sql)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, name: &str) -> StoreResult<Option<SecretValue>> {
        let owned = name.to_owned();
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .db
            .call(move |conn, _| {
                conn.query_row("SELECT nonce, ciphertext FROM secrets WHERE name = ?1", params![owned], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql)
            })
            .await?;
        let Some((nonce, ciphertext)) = row else { return Ok(None) };
        if nonce.len() != 24 {
            return Err(StoreError::corrupt("secret nonce has the wrong length"));
        }
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: name.as_bytes() })
            .map_err(|_| StoreError::corrupt("a secret could not be decrypted with this key file"))?;
        let text = String::from_utf8(plain).map_err(|_| StoreError::corrupt("a secret is not UTF-8"))?;
        SecretValue::new(text).map(Some).map_err(|_| StoreError::corrupt("a stored secret is out of bounds"))
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.db
            .call(move |conn, _| {
                conn.execute("DELETE FROM secrets WHERE name = ?1", params![name]).map_err(sql)?;
                Ok(())
            })
            .await
    }
}
