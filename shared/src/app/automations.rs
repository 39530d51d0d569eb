//! Automations: create, read, replace, patch, delete (DESIGN §5, §8).
//!
//! A spec is checked in two steps: `AutomationSpecIn::validate` (structure, names, metric
//! parameters) and [`App::check_automation`] here (filter, regexes, templates, references), so
//! everything ingest will compile later is known to compile now.

use regex::RegexBuilder;
use serde::Deserialize;
use serde_json::Value;

use super::App;
use super::auth::Access;
use super::error::{AppError, AppResult};
use super::repo::{Listed, Versioned};
use super::webhooks::{from_merged, merge_patch, patch_object};
use crate::domain::automation::{Action, Automation, AutomationSpec, AutomationSpecIn, EventSpec, Scope};
use crate::domain::error::{FieldError, Invalid, join_path};
use crate::domain::names::{ObjectId, ProjectName, TeamName};
use crate::domain::team::{Principal, Role};
use crate::engine::filter::Filter;
use crate::render::template::{Template, TextTemplate};

/// The largest compiled `alias_regex` / `tag_regex`, the same bound the filter engine puts on
/// `$regex`: a hostile pattern is refused at save time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Fields an automation answer has that a spec does not; a PATCH ignores them.
const READ_ONLY_FIELDS: &[&str] = &["id", "created_by", "created_at", "updated_at"];

/// `GET /v1/teams/{team}/automations?project=&registry=`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutomationFilter {
    /// Automations that see this project's events (for a registry project
    /// `wandb-registry-R`, also those scoped to the registry and its collections).
    pub project: Option<String>,
    /// Automations scoped to this registry or its collections (and to its project).
    pub registry: Option<String>,
}

/// May the caller manage at least some automations: team admins, and members who administer a
/// registry. Everyone else is refused before their body is even looked at.
fn may_manage_some(access: &Access) -> AppResult<()> {
    match access {
        Access::System => Ok(()),
        Access::Member(m) if m.role == Role::Admin => Ok(()),
        Access::Member(m) if m.role == Role::Member && !m.registries.is_empty() => Ok(()),
        Access::Member(m) if m.role == Role::Producer => {
            Err(AppError::forbidden("a producer token may only post events"))
        }
        Access::Member(_) => Err(AppError::forbidden("managing automations needs the team's admin role or a registry")),
    }
}

/// Team admins manage every automation; registry admins those scoped to their registries.
fn require_scope_admin(access: &Access, scope: &Scope) -> AppResult<()> {
    match scope.registry() {
        None => access.require_admin(),
        Some(registry) => access.require_registry_admin(registry),
    }
}

fn check_regex(field: &str, pattern: &str, faults: &mut Vec<FieldError>) {
    if let Err(e) = RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build() {
        faults.push(FieldError::new(field, format!("is not a valid regular expression: {e}")));
    }
}

fn parse_name(field: &str, value: &str) -> AppResult<ProjectName> {
    ProjectName::parse(value).map_err(|e| AppError::Invalid(e.under(field)))
}

impl App {
    /// Save-time checks beyond the spec's structure: the filter parses, regexes and templates
    /// compile, and the webhook or Slack integration exists in the team. Every fault is
    /// reported, each at its JSON path.
    pub async fn check_automation(&self, team: &TeamName, spec: &AutomationSpec) -> AppResult<()> {
        let mut faults = Vec::new();
        if let Some(filter) = spec.event.filter()
            && let Err(e) = Filter::parse(filter)
        {
            faults.push(FieldError::new(join_path("event.filter", &e.path), e.message));
        }
        match &spec.event {
            EventSpec::AddArtifactAlias { alias_regex, .. } => {
                check_regex("event.alias_regex", alias_regex, &mut faults)
            }
            EventSpec::AddArtifactTag { tag_regex, .. } => check_regex("event.tag_regex", tag_regex, &mut faults),
            _ => {}
        }
        match &spec.action {
            Action::Webhook { webhook_id, payload } => match self.repo.webhook(team, webhook_id).await? {
                None => faults.push(FieldError::new("action.webhook_id", "no webhook with this id in this team")),
                Some(webhook) => {
                    if let Some(payload) = payload
                        && let Err(errors) = Template::compile(
                            payload,
                            &crate::app::deliver::request::template_secret_names(&webhook.value),
                        )
                    {
                        faults.extend(
                            errors
                                .into_iter()
                                .map(|e| FieldError::new(join_path("action.payload", &e.path), e.message)),
                        );
                    }
                }
            },
            Action::Slack { integration_id, title, message, .. } => {
                if self.repo.slack(team, integration_id).await?.is_none() {
                    faults.push(FieldError::new(
                        "action.integration_id",
                        "no Slack integration with this id in this team",
                    ));
                }
                for (field, text) in [("action.title", title), ("action.message", message)] {
                    if let Err(e) = TextTemplate::compile(text) {
                        faults.push(FieldError::new(field, e.message));
                    }
                }
            }
            Action::NoOp => {}
        }
        if faults.is_empty() { Ok(()) } else { Err(AppError::Invalid(Invalid(faults))) }
    }

    async fn existing_automation(&self, team: &TeamName, id: &ObjectId) -> AppResult<Versioned<Automation>> {
        self.repo.automation(team, id).await?.ok_or_else(|| AppError::not_found(format!("automation {id}")))
    }

    /// Validates and checks a spec the caller may save at its scope.
    async fn accepted_spec(
        &self,
        access: &Access,
        team: &TeamName,
        input: AutomationSpecIn,
    ) -> AppResult<AutomationSpec> {
        let spec = input.validate()?;
        require_scope_admin(access, &spec.scope)?;
        self.check_automation(team, &spec).await?;
        Ok(spec)
    }

    #[tracing::instrument(skip_all, fields(team = %team))]
    pub async fn create_automation(
        &self,
        who: &Principal,
        team: &TeamName,
        input: AutomationSpecIn,
    ) -> AppResult<Automation> {
        let access = self.access(who, team).await?;
        may_manage_some(&access)?;
        let spec = self.accepted_spec(&access, team, input).await?;
        let now = self.clock.now();
        let automation = Automation {
            id: ObjectId::generate("au"),
            spec,
            created_by: who.name().to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.repo.create_automation(team, &automation).await?;
        Ok(automation)
    }

    pub async fn get_automation(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<Automation> {
        self.access(who, team).await?.require_reader()?;
        Ok(self.existing_automation(team, id).await?.value)
    }

    /// All automations of the team, or (through the scope index) those that see one project's
    /// or one registry's events.
    pub async fn list_automations(
        &self,
        who: &Principal,
        team: &TeamName,
        filter: &AutomationFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> AppResult<Listed<Automation>> {
        self.access(who, team).await?.require_reader()?;
        let project = match (&filter.project, &filter.registry) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid("registry", "give either project or registry, not both"));
            }
            (Some(project), None) => Some(parse_name("project", project)?),
            (None, Some(registry)) => {
                let registry = parse_name("registry", registry)?;
                Some(ProjectName::of_registry(&registry).map_err(|e| AppError::Invalid(e.under("registry")))?)
            }
            (None, None) => None,
        };
        match project {
            Some(project) => self.repo.automations_of_project(team, &project, limit, cursor).await,
            None => self.repo.automations(team, limit, cursor).await,
        }
    }

    /// PUT: replaces the spec (read-only fields in the body are ignored). The caller must be
    /// allowed at both the old and the new scope.
    #[tracing::instrument(skip_all, fields(team = %team, automation_id = %id))]
    pub async fn replace_automation(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
        input: AutomationSpecIn,
    ) -> AppResult<Automation> {
        let access = self.access(who, team).await?;
        may_manage_some(&access)?;
        let old = self.existing_automation(team, id).await?;
        require_scope_admin(&access, &old.value.spec.scope)?;
        let spec = self.accepted_spec(&access, team, input).await?;
        self.save_replacement(team, old, spec).await
    }

    /// PATCH: JSON Merge Patch applied to the stored spec, then validated as a whole, so
    /// `{"enabled": false}` pauses and `{"event": {"filter": null}}` drops the filter.
    #[tracing::instrument(skip_all, fields(team = %team, automation_id = %id))]
    pub async fn patch_automation(
        &self,
        who: &Principal,
        team: &TeamName,
        id: &ObjectId,
        patch: Value,
    ) -> AppResult<Automation> {
        let access = self.access(who, team).await?;
        may_manage_some(&access)?;
        let patch = patch_object(patch, READ_ONLY_FIELDS)?;
        let old = self.existing_automation(team, id).await?;
        require_scope_admin(&access, &old.value.spec.scope)?;
        let mut merged = serde_json::to_value(&old.value.spec)
            .map_err(|e| AppError::Internal(format!("automation {id} does not encode: {e}")))?;
        merge_patch(&mut merged, &patch);
        let input: AutomationSpecIn = from_merged(merged)?;
        let spec = self.accepted_spec(&access, team, input).await?;
        self.save_replacement(team, old, spec).await
    }

    async fn save_replacement(
        &self,
        team: &TeamName,
        old: Versioned<Automation>,
        spec: AutomationSpec,
    ) -> AppResult<Automation> {
        let new = Automation { spec, updated_at: self.clock.now(), ..old.value.clone() };
        self.repo.update_automation(team, &old, &new).await?;
        Ok(new)
    }

    #[tracing::instrument(skip_all, fields(team = %team, automation_id = %id))]
    pub async fn delete_automation(&self, who: &Principal, team: &TeamName, id: &ObjectId) -> AppResult<()> {
        let access = self.access(who, team).await?;
        may_manage_some(&access)?;
        let old = self.existing_automation(team, id).await?;
        require_scope_admin(&access, &old.value.spec.scope)?;
        self.repo.delete_automation(team, &old).await
    }
}
