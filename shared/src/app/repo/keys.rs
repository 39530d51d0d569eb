//! Storage keys (DESIGN §10), written in one place. Every part taken from a user is a
//! validated name or id, so none contains the `#` separator.

use crate::domain::names::{EventId, ObjectId, ProjectName, SecretName, TeamName, UserName, WebhookName};
use crate::ports::table::Key;

pub const META: &str = "META";

pub fn team(team: &TeamName) -> String {
    format!("TEAM#{team}")
}
pub fn team_meta(t: &TeamName) -> Key {
    Key::new(team(t), META)
}
pub fn member(t: &TeamName, user: &UserName) -> Key {
    Key::new(team(t), format!("MEMBER#{user}"))
}
pub const MEMBER_PREFIX: &str = "MEMBER#";
pub fn user(user: &UserName) -> Key {
    Key::new(format!("USER#{user}"), META)
}
/// A token is found by the SHA-256 of its text; the text itself is never stored.
pub fn token(hash_hex: &str) -> Key {
    Key::new(format!("TOKEN#{hash_hex}"), META)
}
pub fn secret(t: &TeamName, name: &SecretName) -> Key {
    Key::new(team(t), format!("SECRET#{name}"))
}
pub const SECRET_PREFIX: &str = "SECRET#";
pub fn webhook(t: &TeamName, id: &ObjectId) -> Key {
    Key::new(team(t), format!("WEBHOOK#{id}"))
}
pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";
pub fn webhook_name(t: &TeamName, name: &WebhookName) -> Key {
    Key::new(team(t), format!("WEBHOOKNAME#{name}"))
}
pub fn slack(t: &TeamName, id: &ObjectId) -> Key {
    Key::new(team(t), format!("SLACK#{id}"))
}
pub const SLACK_PREFIX: &str = "SLACK#";
pub fn slack_channel(t: &TeamName, slack_team: &str, channel_id: &str) -> Key {
    Key::new(team(t), format!("SLACKCHAN#{slack_team}#{channel_id}"))
}
pub fn automation(t: &TeamName, id: &ObjectId) -> Key {
    Key::new(team(t), format!("AUTO#{id}"))
}
pub const AUTOMATION_PREFIX: &str = "AUTO#";
/// Automation names are free text: the guard key holds their SHA-256, so any text is safe.
pub fn automation_name(t: &TeamName, name: &str) -> Key {
    Key::new(team(t), format!("AUTONAME#{}", crate::app::auth::sha256_hex(name)))
}
/// The gsi1 partition of the automations that see a project's events.
pub fn scope(t: &TeamName, project: &ProjectName) -> String {
    format!("SCOPE#{t}#{project}")
}
pub fn event_seen(t: &TeamName, id: &EventId) -> Key {
    Key::new(format!("EVENT#{t}#{id}"), "SEEN")
}
/// Run ids are checked at parse time to hold no `#`; the metric name comes last, so it may.
pub fn metric_window(t: &TeamName, project: &ProjectName, run: &str, metric: &str) -> Key {
    Key::new(format!("RUN#{t}#{project}#{run}"), format!("METRIC#{metric}"))
}
pub fn cooldown(automation: &ObjectId, run: &str) -> Key {
    Key::new(format!("COOLDOWN#{automation}#{run}"), META)
}
pub fn run_state_fired(automation: &ObjectId, run: &str, state: &str) -> Key {
    Key::new(format!("COOLDOWN#{automation}#{run}"), format!("STATE#{state}"))
}
pub fn execution(id: &ObjectId) -> Key {
    Key::new(format!("EXEC#{id}"), META)
}
pub fn attempt(id: &ObjectId, n: u32) -> Key {
    Key::new(format!("EXEC#{id}"), format!("ATTEMPT#{n:05}"))
}
pub const ATTEMPT_PREFIX: &str = "ATTEMPT#";
/// The gsi1 partition of an automation's executions (sorted by creation time).
pub fn executions_of(automation: &ObjectId) -> String {
    format!("AUTO#{automation}")
}
pub fn ticket(hash_hex: &str) -> Key {
    Key::new(format!("TICKET#{hash_hex}"), META)
}
pub fn oauth_state(nonce: &str) -> Key {
    Key::new(format!("OAUTHSTATE#{nonce}"), META)
}

/// Secret store paths (the deployment prefix is added by the backend).
pub mod secret_path {
    use crate::domain::names::{ObjectId, SecretName, TeamName};

    pub fn team_secret(t: &TeamName, name: &SecretName) -> String {
        format!("{t}/{name}")
    }
    pub fn slack(t: &TeamName, id: &ObjectId) -> String {
        format!("{t}/slack/{id}")
    }
    pub fn webhook_signing(t: &TeamName, id: &ObjectId) -> String {
        format!("{t}/webhook-signing/{id}")
    }
    pub const ADMIN_TOKEN: &str = "system/admin-token";
    pub const SLACK_APP: &str = "system/slack-app";
    pub const OAUTH_STATE_KEY: &str = "system/oauth-state-key";
}
