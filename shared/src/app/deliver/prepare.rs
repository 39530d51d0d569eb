//! Turns an execution into the request to send, with the automation's current action and
//! secrets: the stored request is masked, so it is never resent as is (DESIGN §7 Redeliver).

use serde_json::Value;
use url::Url;

use super::request::{
    CONTENT_TYPE, WebhookSecrets, masked_url, recorded_headers, signed_webhook_request, template_secret_names,
};
use crate::app::App;
use crate::app::error::AppResult;
use crate::app::repo::keys::secret_path;
use crate::delivery::sender::OutgoingRequest;
use crate::domain::automation::{Action, Automation, Severity};
use crate::domain::execution::{Execution, ExecutionStatus, RecordedRequest};
use crate::domain::names::ObjectId;
use crate::domain::slack::{IntegrationState, SlackCredentials};
use crate::render::slack::{SlackMessage, build_message, escape_mrkdwn};
use crate::render::template::{Template, TextTemplate, default_body};
use crate::render::variables::{RenderContext, Variables};

/// Where a request goes, which decides how its answer is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Webhook,
    Slack { integration_id: ObjectId },
}

/// A request ready to send, and what the execution record shows of it.
pub struct Prepared {
    pub request: OutgoingRequest,
    pub recorded: RecordedRequest,
    pub target: Target,
    /// Secret values used, masked in anything the receiver echoes back.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The request holds secret values (Authorization, a Slack URL): show the record only.
        f.debug_struct("Prepared").field("recorded", &self.recorded).field("target", &self.target).finish()
    }
}

/// What to do with an execution.
#[derive(Debug)]
pub enum Plan {
    Send(Box<Prepared>),
    /// Nothing can or need be sent: finish the execution with this status and reason.
    Finish {
        status: ExecutionStatus,
        reason: String,
    },
}

fn fail(reason: impl Into<String>) -> AppResult<Plan> {
    Ok(Plan::Finish { status: ExecutionStatus::Failed, reason: reason.into() })
}

/// The template variables of an execution's event for `automation`.
pub fn variables_of(execution: &Execution, automation: &Automation) -> Variables {
    let metric_value = execution.metric.as_ref().and_then(|m| m.value.parse::<f64>().ok());
    Variables::from_event(
        &execution.event,
        &RenderContext {
            automation_name: automation.spec.name.as_str(),
            event_type: &execution.event_type,
            metric_name: execution.metric.as_ref().map(|m| m.name.as_str()),
            metric_value,
        },
    )
}

fn event_text<'a>(event: &'a Value, path: &[&str]) -> &'a str {
    path.iter().try_fold(event, |value, key| value.get(key)).and_then(Value::as_str).unwrap_or_default()
}

impl App {
    /// Renders `execution` with its automation's current action. Configuration that has gone
    /// (automation, webhook, integration, secret) fails the execution with a reason that names
    /// what is missing; a store failure is an error, retried by the queue.
    pub(crate) async fn plan(&self, execution: &Execution) -> AppResult<Plan> {
        let team = &execution.team;
        let Some(automation) = self.repo.automation(team, &execution.automation_id).await? else {
            return fail("the automation no longer exists");
        };
        let automation = automation.value;
        let vars = variables_of(execution, &automation);
        match &automation.spec.action {
            Action::NoOp => Ok(Plan::Finish { status: ExecutionStatus::Skipped, reason: "no_op".to_owned() }),
            Action::Webhook { webhook_id, payload } => {
                self.plan_webhook(execution, webhook_id, payload.as_ref(), &vars).await
            }
            Action::Slack { integration_id, title, message, severity } => {
                self.plan_slack(execution, integration_id, title, message, *severity, &vars).await
            }
        }
    }

    async fn plan_webhook(
        &self,
        execution: &Execution,
        webhook_id: &ObjectId,
        payload: Option<&Value>,
        vars: &Variables,
    ) -> AppResult<Plan> {
        let team = &execution.team;
        let Some(webhook) = self.repo.webhook(team, webhook_id).await? else {
            return fail(format!("the webhook {webhook_id} no longer exists"));
        };
        let webhook = webhook.value;
        let Ok(url) = Url::parse(&webhook.url) else { return fail("the webhook's URL is not a valid URL") };
        let secrets: WebhookSecrets = match self.webhook_secrets(team, &webhook).await? {
            Ok(secrets) => secrets,
            Err(reason) => return fail(reason),
        };
        let (body, masked) = match payload {
            Some(payload) => {
                let names = template_secret_names(&webhook);
                // Compiled at save time too; compiling again catches a webhook that lost the
                // secret the payload refers to since then.
                let template = match Template::compile(payload, &names) {
                    Ok(template) => template,
                    Err(errors) => {
                        let faults: Vec<String> = errors.iter().map(ToString::to_string).collect();
                        return fail(format!("the payload no longer renders: {}", faults.join("; ")));
                    }
                };
                (template.render(vars, &|name| secrets.value_of(name)), template.render_masked(vars))
            }
            None => {
                let body = default_body(&execution.event, vars);
                (body.clone(), body)
            }
        };
        let Ok(bytes) = serde_json::to_vec(&body) else { return fail("the payload could not be serialized") };
        let timestamp = self.clock.now().as_second();
        let request = signed_webhook_request(url, execution.id.as_str(), timestamp, bytes, &secrets.keys());
        let recorded =
            RecordedRequest { url: webhook.url.clone(), headers: recorded_headers(&request.headers), body: masked };
        let secret_values = secrets.values().into_iter().map(str::to_owned).collect();
        Ok(Plan::Send(Box::new(Prepared { request, recorded, target: Target::Webhook, secrets: secret_values })))
    }

    async fn plan_slack(
        &self,
        execution: &Execution,
        integration_id: &ObjectId,
        title: &str,
        message: &str,
        severity: Severity,
        vars: &Variables,
    ) -> AppResult<Plan> {
        let team = &execution.team;
        let Some(integration) = self.repo.slack(team, integration_id).await? else {
            return fail(format!("the Slack integration {integration_id} no longer exists"));
        };
        let integration = integration.value;
        if integration.state == IntegrationState::Broken {
            let why = integration.broken_reason.as_deref().unwrap_or("broken");
            return fail(format!("the Slack integration is broken ({why}); reconnect the channel"));
        }
        let Some(credentials) = self.secrets.get(&secret_path::slack(team, integration_id)).await? else {
            return fail("the Slack integration's credentials are missing; reconnect the channel");
        };
        // The parse error is not quoted: serde may echo the value, which holds the secret URL.
        let Ok(credentials) = serde_json::from_str::<SlackCredentials>(credentials.expose()) else {
            return fail("the Slack integration's credentials are unreadable; reconnect the channel");
        };
        let Ok(url) = Url::parse(&credentials.incoming_webhook_url) else {
            return fail("the Slack integration's incoming-webhook URL is invalid; reconnect the channel");
        };

        let (title, message) = match (TextTemplate::compile(title), TextTemplate::compile(message)) {
            (Ok(t), Ok(m)) => (t.render(vars, str::to_owned), m.render(vars, escape_mrkdwn)),
            (Err(e), _) => return fail(format!("the Slack title no longer renders: {}", e.message)),
            (_, Err(e)) => return fail(format!("the Slack message no longer renders: {}", e.message)),
        };
        let event = &execution.event;
        let links = [
            ("View run", event_text(event, &["run", "url"])),
            ("View artifact", event_text(event, &["artifact", "url"])),
        ]
        .into_iter()
        .filter(|(_, url)| !url.is_empty())
        .map(|(label, url)| (label.to_owned(), url.to_owned()))
        .collect();
        let body = build_message(&SlackMessage {
            title: &title,
            message: &message,
            severity,
            team: team.as_str(),
            project: event_text(event, &["project"]),
            event_type: &execution.event_type,
            author: event_text(event, &["author"]),
            links,
        });
        let Ok(bytes) = serde_json::to_vec(&body) else { return fail("the Slack message could not be serialized") };

        let headers = vec![(CONTENT_TYPE.to_owned(), "application/json".to_owned())];
        let recorded = RecordedRequest { url: masked_url(&url), headers: recorded_headers(&headers), body };
        // A receiver may echo the URL or only its path; either is masked in what we keep.
        let mut secret_values = vec![credentials.incoming_webhook_url.clone(), credentials.access_token.clone()];
        if url.path().len() > 1 {
            secret_values.push(url.path().to_owned());
        }
        let request = OutgoingRequest { url, headers, body: bytes };
        Ok(Plan::Send(Box::new(Prepared {
            request,
            recorded,
            target: Target::Slack { integration_id: integration_id.clone() },
            secrets: secret_values,
        })))
    }
}
