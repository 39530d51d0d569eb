//! Webhook signatures: Standard Webhooks (`webhook-signature`) and the W&B compatible
//! `X-Wandb-Signature`.
//!
//! Standard Webhooks: the signed content is `"{msg_id}.{timestamp}.{body}"`, the key is the
//! base64-decoded part of the `whsec_` secret, the header value is `v1,<base64 HMAC-SHA256>`
//! and may carry several space-separated signatures (during a key rotation).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret (what Svix and the spec's examples use).
const GENERATED_KEY_LEN: usize = 24;
/// The spec asks for keys between 24 and 64 bytes.
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signing secret must start with \"whsec_\"")]
    MissingPrefix,
    #[error("signing secret is not valid base64 after \"whsec_\"")]
    InvalidBase64,
    #[error("signing secret key must be {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes, got {0}")]
    InvalidLength(usize),
    #[error("no system random number generator available")]
    Random,
}

/// Standard Webhooks signing secret: `"whsec_" + base64(24 random bytes)`.
/// Debug prints no key material.
#[derive(Clone)]
pub struct SigningSecret {
    encoded: String,
    key: Vec<u8>,
}

impl SigningSecret {
    /// A fresh secret from the OS random number generator.
    ///
    /// # Panics
    /// When the OS has no random number generator, which leaves nothing sensible to do;
    /// use [`SigningSecret::try_generate`] to handle that case.
    pub fn generate() -> SigningSecret {
        match Self::try_generate() {
            Ok(secret) => secret,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_generate() -> Result<SigningSecret, SignatureError> {
        let mut key = vec![0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| SignatureError::Random)?;
        let encoded = format!("{PREFIX}{}", BASE64.encode(&key));
        Ok(SigningSecret { encoded, key })
    }

    pub fn parse(s: &str) -> Result<SigningSecret, SignatureError> {
        let b64 = s.strip_prefix(PREFIX).ok_or(SignatureError::MissingPrefix)?;
        let key = BASE64.decode(b64).map_err(|_| SignatureError::InvalidBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(SignatureError::InvalidLength(key.len()));
        }
        Ok(SigningSecret { encoded: s.to_owned(), key })
    }

    /// The `whsec_` string, for the create/rotate answers and for storage.
    pub fn expose(&self) -> &str {
        &self.encoded
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_***)")
    }
}

fn standard_webhooks_mac(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`.
pub fn standard_webhooks_signature(secret: &SigningSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = standard_webhooks_mac(secret, msg_id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", BASE64.encode(tag))
}

/// True when any `v1,` entry of the (space-separated) header matches. Compares in constant time.
/// The timestamp tolerance is the receiver's business and is not checked here.
pub fn verify_standard_webhooks(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let mac = standard_webhooks_mac(secret, msg_id, timestamp, body);
    header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        // Evaluate every entry so the time taken does not say which one matched.
        .fold(false, |found, tag| mac.clone().verify_slice(&tag).is_ok() | found)
}

/// The `X-Wandb-Signature` header value: `base64(HMAC-SHA256(key = secret value, body))`.
pub fn wandb_signature(secret_value: &[u8], body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(secret_value) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(standard_webhooks_signature(&secret(), MSG_ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn verify_accepts_the_test_vector() {
        assert!(verify_standard_webhooks(&secret(), MSG_ID, TS, BODY, EXPECTED));
    }

    #[test]
    fn verify_rejects_a_wrong_secret() {
        let other = SigningSecret::generate();
        assert!(!verify_standard_webhooks(&other, MSG_ID, TS, BODY, EXPECTED));
    }

    #[test]
    fn verify_rejects_a_tampered_body_id_or_timestamp() {
        assert!(!verify_standard_webhooks(&secret(), MSG_ID, TS, br#"{"test": 2432232315}"#, EXPECTED));
        assert!(!verify_standard_webhooks(&secret(), "msg_other", TS, BODY, EXPECTED));
        assert!(!verify_standard_webhooks(&secret(), MSG_ID, TS + 1, BODY, EXPECTED));
    }

    #[test]
    fn verify_accepts_any_of_several_signatures() {
        let other = standard_webhooks_signature(&SigningSecret::generate(), MSG_ID, TS, BODY);
        let header = format!("{other} v2,abc {EXPECTED}");
        assert!(verify_standard_webhooks(&secret(), MSG_ID, TS, BODY, &header));
        let header = format!("{EXPECTED} {other}");
        assert!(verify_standard_webhooks(&secret(), MSG_ID, TS, BODY, &header));
    }

    #[test]
    fn verify_rejects_garbage_headers() {
        for header in [
            "",
            "v1,",
            "v1,not-base64!",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert!(!verify_standard_webhooks(&secret(), MSG_ID, TS, BODY, header), "{header}");
        }
    }

    #[test]
    fn generated_secrets_parse_back_and_differ() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.expose().len(), "whsec_".len() + 32);
        assert_ne!(a.expose(), b.expose());
        let parsed = SigningSecret::parse(a.expose()).unwrap();
        let sig = standard_webhooks_signature(&a, MSG_ID, TS, BODY);
        assert!(verify_standard_webhooks(&parsed, MSG_ID, TS, BODY, &sig));
    }

    #[test]
    fn parse_rejects_malformed_secrets() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SignatureError::MissingPrefix
        );
        assert_eq!(SigningSecret::parse("whsec_%%%").unwrap_err(), SignatureError::InvalidBase64);
        assert_eq!(SigningSecret::parse("whsec_AAAA").unwrap_err(), SignatureError::InvalidLength(3));
    }

    #[test]
    fn debug_prints_no_key_material() {
        let s = format!("{:?}", secret());
        assert!(!s.contains("MfKQ9r8"), "{s}");
    }

    #[test]
    fn wandb_signature_is_base64_hmac_of_the_body() {
        // Reference: python3 -c 'import hmac,hashlib,base64;
        //   print(base64.b64encode(hmac.new(b"my-secret", b"{\"a\":1}", hashlib.sha256).digest()).decode())'
        assert_eq!(wandb_signature(b"my-secret", br#"{"a":1}"#), WANDB_REFERENCE);
        assert_ne!(wandb_signature(b"other", br#"{"a":1}"#), WANDB_REFERENCE);
    }

    const WANDB_REFERENCE: &str = "l/byqsBzjM83cL1uPn+JhR7QaV3d+gvmazPkSNfuBe0=";
}
