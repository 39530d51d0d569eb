//! Webhooks: create, read, patch, delete, signing secrets, the test request, and
//! the webhook test endpoint, which signs through `app::deliver::request` like every delivery (DESIGN §3, §7).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::App;
use super::error::{AppError, AppResult};
use super::repo::keys::secret_path;
use super::repo::{Listed, Versioned};
use crate::app::deliver::request::{redact, signed_webhook_request, template_secret_names};
use crate::delivery::retry::{TransportErrorKind, Verdict, classify};
use crate::delivery::signature::SigningSecret;
use crate::domain::error::{FieldError, Invalid, join_path};
use crate::domain::names::{ObjectId, SecretName, TeamName, WebhookName};
use crate::domain::secret::SecretValue;
use crate::domain::team::Principal;
use crate::domain::webhook::{Webhook, validate_url};
use crate::render::template::Template;
use crate::render::variables::{RenderContext, Variables};

/// `POST /v1/teams/{team}/webhooks`, and the shape a PATCH is applied to.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    pub name: WebhookName,
    /// http(s); where it may point is checked when a request is sent.
    pub url: String,
    /// Team secret sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub access_token_secret: Option<SecretName>,
    /// Team secret that signs bodies (`X-Wandb-Signature`) and is usable as `$NAME`.
    #[serde(default)]
    pub secret: Option<SecretName>,
}

/// A created webhook: the only answers that carry the signing secret are this one, the
/// rotation and `GET .../signing-secret`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: verifies the Standard Webhooks `webhook-signature` header.
    pub signing_secret: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SigningSecretOut {
    pub signing_secret: String,
}

/// `POST .../webhooks/{id}/test`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTestIn {
    /// A payload template (§6), rendered against a sample event; without one a small test body.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: Option<Value>,
}

/// What the receiver answered to the test request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookTestOut {
    /// The receiver answered 2xx.
    pub ok: bool,
    pub status: Option<u16>,
    /// The response body, at most 16 KiB.
    pub body: String,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// Fields of a webhook a client may send back from a GET; a PATCH ignores them.
const READ_ONLY_FIELDS: &[&str] = &["id", "created_at", "updated_at"];
const EDITABLE_FIELDS: &[&str] = &["name", "url", "access_token_secret", "secret"];

// ---- JSON Merge Patch (RFC 7396) ----------------------------------------------------------

/// Applies `patch` to `target` as RFC 7396 says: objects merge key by key, `null` removes a key,
/// anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Reads a merged document as the input type, with the errors a body would get: unknown fields
/// 400, everything else 422 at its path (a field the patch removed is "required").
pub fn from_merged<T: serde::de::DeserializeOwned>(value: Value) -> AppResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        if message.starts_with("unknown field") {
            return AppError::BadRequest {
                message: format!("{path}: {message}"),
                errors: vec![FieldError::new(path, message)],
            };
        }
        // serde names a missing field in the message, at the path of its parent.
        if let Some(field) = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            return AppError::invalid(join_path(&path, field), "is required");
        }
        AppError::invalid(path, message)
    })
}

/// Checks that a patch is an object; returns it without the read-only fields a client may
/// have copied from a GET.
pub fn patch_object(patch: Value, read_only: &[&str]) -> AppResult<Value> {
    let Value::Object(mut fields) = patch else {
        return Err(AppError::invalid("", "a JSON Merge Patch of this resource must be an object"));
    };
    fields.retain(|k, _| !read_only.contains(&k.as_str()));
    Ok(Value::Object(fields))
}

// ---- use cases ----------------------------------------------------------------------------

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn new_signing_secret() -> AppResult<(SigningSecret, SecretValue)> {
    let signing = SigningSecret::try_generate().map_err(internal)?;
    let value = SecretValue::new(signing.expose()).map_err(internal)?;
    Ok((signing, value))
}

impl App {
    /// URL shape and referenced secrets of a webhook about to be saved.
    async fn check_webhook(&self, team: &TeamName, input: &WebhookIn) -> AppResult<()> {
        let mut faults = Vec::new();
        if let Err(Invalid(errors)) = validate_url(&input.url) {
            faults.extend(errors);
        }
        for (field, name) in [("access_token_secret", &input.access_token_secret), ("secret", &input.secret)] {
            if let Some(name) = name
                && self.repo.secret_meta(team, name).await?.is_none()
            {
                faults.push(FieldError::new(field, format!("no secret named {name} in this team")));
            }
        }
        if faults.is_empty() { Ok(()) } else { Err(AppError::Invalid(Invalid(faults))) }
    }

    async fn existing_webhook(&self, team: &TeamName, id: &ObjectId) -> AppResult<Versioned<Webhook>> {
        self.repo.webhook(team, id).await?.ok_or_else(|| AppError::not_found(format!("webhook {id}")))
    }

    #[tracing::instrument(skip_all, fields(team = %team))]
    pub async fn create_webhook(
        &self,
        who: &Principal,
        team: &TeamName,
        input: WebhookIn,
    ) -> AppResult<WebhookCreated> {
        self.access(who, team).await?.require_admin()?;
        self.check_webhook(team, &input).await?;
        let now = self.clock.now();
        let webhook = Webhook {
            id: ObjectId::generate("wh"),
            name: input.name,
            url: input.url,
            access_token_secret: input.access_token_secret,
            secret: input.secret,
            created_at: now,
            updated_at: now,
        };
        let (signing, value) = new_signing_secret()?;
        let path = secret_path::webhook_signing(team, &webhook.id);
        // The key first (under a fresh id, so it overwrites nothing): a stored webhook always has one.
        self.secrets.put(&path, &value).await?;
        if let Err(e) = self.repo.create_webhook(team, &webhook).await {
            if let Err(undo) = self.secrets.delete(&path).await {
                tracing::warn!(error = %undo, "could not remove the signing key of a webhook that was not created");
            }
            return Err(e);
        }
        Ok(WebhookCreated { webhook, signing_secret: signing.expose().to_owned() })
    }

    pub async fn get_webhook(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<Webhook> {
        self.access(who, team).await?.require_reader()?;
        Ok(self.existing_webhook(team, id).await?.value)
    }

    pub async fn list_webhooks(
        &self,
        who: &Principal,
        team: &TeamName,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Webhook>> {
        self.access(who, team).await?.require_reader()?;
        self.repo.webhooks(team, limit, cursor).await
    }

    /// JSON Merge Patch of `{name, url, access_token_secret, secret}`; `null` clears an
    /// optional secret. The result is validated as a whole, like a create.
    #[tracing::instrument(skip_all, fields(team = %team, webhook_id = %id))]
    pub async fn patch_webhook(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
        patch: Value,
    ) -> AppResult<Webhook> {
        self.access(who, team).await?.require_admin()?;
        let patch = patch_object(patch, READ_ONLY_FIELDS)?;
        if let Some(unknown) = patch.as_object().and_then(|p| p.keys().find(|k| !EDITABLE_FIELDS.contains(&k.as_str())))
        {
            return Err(AppError::BadRequest {
                message: format!(
                    "unknown field `{unknown}`: a webhook patch may change {}",
                    EDITABLE_FIELDS.join(", ")
                ),
                errors: vec![FieldError::new(unknown.clone(), "unknown field")],
            });
        }
        let old = self.existing_webhook(team, id).await?;
        let current = WebhookIn {
            name: old.value.name.clone(),
            url: old.value.url.clone(),
            access_token_secret: old.value.access_token_secret.clone(),
            secret: old.value.secret.clone(),
        };
        let mut merged = serde_json::to_value(&current).map_err(internal)?;
        merge_patch(&mut merged, &patch);
        let input: WebhookIn = from_merged(merged)?;
        self.check_webhook(team, &input).await?;
        let new = Webhook {
            name: input.name,
            url: input.url,
            access_token_secret: input.access_token_secret,
            secret: input.secret,
            updated_at: self.clock.now(),
            ..old.value.clone()
        };
        self.repo.update_webhook(team, &old, &new).await?;
        Ok(new)
    }

    /// Deletes a webhook no automation uses (409 otherwise, naming them), and its signing key.
    #[tracing::instrument(skip_all, fields(team = %team, webhook_id = %id))]
    pub async fn delete_webhook(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<()> {
        self.access(who, team).await?.require_admin()?;
        let webhook = self.existing_webhook(team, id).await?;
        let users = self
            .automations_using(
                team,
                |a| matches!(a, crate::domain::automation::Action::Webhook { webhook_id, .. } if webhook_id == id),
            )
            .await?;
        if !users.is_empty() {
            return Err(AppError::conflict(format!(
                "webhook {id} is used by automation {}; change or delete the automation first",
                users.join(", ")
            )));
        }
        self.repo.delete_webhook(team, &webhook).await?;
        self.secrets.delete(&secret_path::webhook_signing(team, id)).await?;
        Ok(())
    }

    /// Replaces the Standard Webhooks signing key at once and returns the new one.
    #[tracing::instrument(skip_all, fields(team = %team, webhook_id = %id))]
    pub async fn rotate_signing_secret(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
    ) -> AppResult<SigningSecretOut> {
        self.access(who, team).await?.require_admin()?;
        self.existing_webhook(team, id).await?;
        let (signing, value) = new_signing_secret()?;
        self.secrets.put(&secret_path::webhook_signing(team, id), &value).await?;
        Ok(SigningSecretOut { signing_secret: signing.expose().to_owned() })
    }

    pub async fn signing_secret(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<SigningSecretOut> {
        self.access(who, team).await?.require_admin()?;
        self.existing_webhook(team, id).await?;
        let signing = self.signing_key(team, id).await?;
        Ok(SigningSecretOut { signing_secret: signing.expose().to_owned() })
    }

    async fn signing_key(&self, team: &TeamName, id: &ObjectId) -> AppResult<SigningSecret> {
        let value = self
            .secrets
            .get(&secret_path::webhook_signing(team, id))
            .await?
            .ok_or_else(|| AppError::Internal(format!("webhook {id} has no signing key")))?;
        SigningSecret::parse(value.expose()).map_err(|e| AppError::Internal(format!("webhook {id} signing key: {e}")))
    }

    /// Sends one signed request to the webhook, through the shared SSRF-guarded sender, and
    /// reports what came back. Nothing is recorded.
    #[tracing::instrument(skip_all, fields(team = %team, webhook_id = %id))]
    pub async fn test_webhook(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
        input: WebhookTestIn,
    ) -> AppResult<WebhookTestOut> {
        self.access(who, team).await?.require_admin()?;
        let webhook = self.existing_webhook(team, id).await?.value;
        let url = validate_url(&webhook.url)?;
        let now = self.clock.now();
        let template = match &input.payload {
            Some(payload) => Some(Template::compile(payload, &template_secret_names(&webhook)).map_err(|errors| {
                Invalid(errors.into_iter().map(|e| FieldError::new(join_path("payload", &e.path), e.message)).collect())
            })?),
            None => None,
        };
        // A referenced secret without a value (removed behind the API's back) is a conflict the
        // team admin can fix.
        let secrets = self.webhook_secrets(team, &webhook).await?.map_err(AppError::conflict)?;
        let body = match template {
            Some(template) => {
                let event = sample_event(team, who, now);
                let ctx = RenderContext {
                    automation_name: "webhook test",
                    event_type: "",
                    metric_name: None,
                    metric_value: None,
                };
                template.render(&Variables::from_event(&event, &ctx), &|name| secrets.value_of(name))
            }
            None => json!({
                "test": true,
                "message": format!("A test request for webhook {:?} of team {team}.", webhook.name.as_str()),
                "entity_name": team,
                "webhook_id": webhook.id,
                "webhook_name": webhook.name,
                "sent_at": now.to_string(),
            }),
        };
        let body = serde_json::to_vec(&body).map_err(internal)?;
        let message_id = format!("msg_{}", ulid::Ulid::generate());
        let request = signed_webhook_request(url, &message_id, now.as_second(), body, &secrets.keys());
        let result = self.sender.send(&request).await;
        let error = match (&result.error, result.status) {
            // "not sent: <why>" says the request never left; other errors have more detail.
            (Some(kind @ TransportErrorKind::Refused { .. }), _) => Some(kind.to_string()),
            (Some(kind), _) => Some(result.error_message.clone().unwrap_or_else(|| kind.to_string())),
            (None, Some(status)) => match classify(Some(status), None, None) {
                Verdict::Delivered => None,
                Verdict::Failed { reason } => Some(reason),
                Verdict::Retry { .. } => Some(format!("HTTP {status}: deliveries would be retried")),
            },
            (None, None) => Some("no response".to_owned()),
        };
        // A receiver may echo the request back: its answer is masked like an attempt record's.
        let values = secrets.values();
        Ok(WebhookTestOut {
            ok: result.error.is_none() && result.status.is_some_and(|s| (200..300).contains(&s)),
            status: result.status,
            body: redact(&result.body, &values),
            duration_ms: u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
            error: error.map(|e| redact(&e, &values)),
        })
    }

    /// `"name" (id)` of each automation of the team whose action `uses`.
    pub(crate) async fn automations_using(
        &self,
        team: &TeamName,
        uses: impl Fn(&crate::domain::automation::Action) -> bool,
    ) -> AppResult<Vec<String>> {
        Ok(self
            .repo
            .all_automations(team)
            .await?
            .into_iter()
            .filter(|a| uses(&a.spec.action))
            .map(|a| format!("{:?} ({})", a.spec.name.as_str(), a.id))
            .collect())
    }
}

/// The event a test payload is rendered against: an alias added to a registry model, so the
/// artifact variables have values.
fn sample_event(team: &TeamName, who: &Principal, now: jiff::Timestamp) -> Value {
    json!({
        "v": 1,
        "id": format!("test_{}", ulid::Ulid::generate()),
        "type": "ADD_ARTIFACT_ALIAS",
        "time": now.to_string(),
        "team": team,
        "project": "wandb-registry-models",
        "author": who.name(),
        "artifact": {
            "collection": "example-model",
            "version": "v1",
            "type": "model",
            "aliases": ["latest", "production"],
            "tags": [],
            "metadata": {}
        },
        "alias": "production"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1, 2]});
        merge_patch(&mut doc, &json!({"a": [3], "n": {"x": null, "y": 1}}));
        assert_eq!(doc, json!({"a": [3], "n": {"y": 1}}));
    }

    #[test]
    fn merged_documents_name_missing_and_unknown_fields() {
        let missing = from_merged::<WebhookIn>(json!({"url": "https://x"})).unwrap_err();
        assert!(matches!(&missing, AppError::Invalid(Invalid(f)) if f[0].field == "name"));
        let unknown = from_merged::<WebhookIn>(json!({"name": "a", "url": "u", "bogus": 1})).unwrap_err();
        assert!(matches!(unknown, AppError::BadRequest { .. }));
    }
}
