//! `/slack/install` and `/slack/oauth/callback` (filled in by the Slack OAuth issue).

use axum::Router;

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
}
