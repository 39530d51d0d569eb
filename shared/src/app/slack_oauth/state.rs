//! The OAuth `state` parameter: `base64url(JSON claims) "." base64url(HMAC-SHA256(key, first part))`.
//!
//! The state travels through the user's browser and Slack, so it is signed: a callback can
//! only name the team and user an install link was issued for. Its nonce is also kept in a
//! cookie (binding the callback to the browser that started the flow) and in the table (so
//! the state works once).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::names::{TeamName, UserName};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a freshly generated state key.
pub const STATE_KEY_BYTES: usize = 32;

/// The key states are signed with. Its `Debug` never shows it.
#[derive(Clone)]
pub struct StateKey(Vec<u8>);

impl StateKey {
    /// Accepts a key of at least 32 bytes (shorter ones weaken the signature).
    pub fn new(bytes: Vec<u8>) -> Option<StateKey> {
        (bytes.len() >= STATE_KEY_BYTES).then_some(StateKey(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<StateKey, getrandom::Error> {
        let mut bytes = vec![0u8; STATE_KEY_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(StateKey(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(***)")
    }
}

/// What a state says: who asked to connect which team, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    /// Random, also in the browser's cookie and in the table's single-use item.
    pub nonce: String,
    pub team: TeamName,
    /// The team admin who asked; `None` for the system admin.
    pub user: Option<UserName>,
    /// Epoch seconds after which the state is refused.
    pub exp: i64,
}

/// Why a state text was refused (before expiry and single use are looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is not in the signed form")]
    Malformed,
    #[error("the state's signature does not match")]
    BadSignature,
}

impl OAuthState {
    /// The signed text sent to Slack as `state`.
    pub fn sign(&self, key: &StateKey) -> String {
        // Serializing a struct of strings and an integer cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = key.mac();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The claims of a state this service signed with `key`. The signature is compared in
    /// constant time, and checked before the payload is parsed at all.
    pub fn verify(text: &str, key: &StateKey) -> Result<OAuthState, StateError> {
        let (payload, signature) = text.split_once('.').ok_or(StateError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| StateError::Malformed)?;
        let mut mac = key.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).map_err(|_| StateError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| StateError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| StateError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> OAuthState {
        OAuthState {
            nonce: "n0nce".into(),
            team: TeamName::parse("ml-team").unwrap(),
            user: Some(UserName::parse("alice").unwrap()),
            exp: 1_900_000_000,
        }
    }

    #[test]
    fn a_signed_state_verifies_to_its_claims() {
        let key = StateKey::generate().unwrap();
        let text = claims().sign(&key);
        assert_eq!(OAuthState::verify(&text, &key), Ok(claims()));
    }

    #[test]
    fn a_state_signed_with_another_key_is_refused() {
        let text = claims().sign(&StateKey::generate().unwrap());
        assert_eq!(OAuthState::verify(&text, &StateKey::generate().unwrap()), Err(StateError::BadSignature));
    }

    #[test]
    fn changing_the_claims_breaks_the_signature() {
        let key = StateKey::generate().unwrap();
        let text = claims().sign(&key);
        let (_, signature) = text.split_once('.').unwrap();
        let mut forged = claims();
        forged.team = TeamName::parse("other-team").unwrap();
        let forged_payload = forged.sign(&key).split_once('.').unwrap().0.to_owned();
        assert_eq!(OAuthState::verify(&format!("{forged_payload}.{signature}"), &key), Err(StateError::BadSignature));
    }

    #[test]
    fn texts_not_in_the_signed_form_are_malformed() {
        let key = StateKey::generate().unwrap();
        for text in ["", "abc", "abc.!!!", "."] {
            assert!(OAuthState::verify(text, &key).is_err(), "{text:?}");
        }
    }

    #[test]
    fn keys_shorter_than_32_bytes_are_refused_and_never_printed() {
        assert!(StateKey::new(vec![1; 31]).is_none());
        let key = StateKey::new(vec![7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "StateKey(***)");
    }
}
