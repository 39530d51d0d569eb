//! The slack-oauth function: API Gateway HTTP API (payload 2.0) → `/slack/*` routes.

use automations::http::slack_router;
use automations::startup::{aws_app_from_env, init_tracing, or_exit};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = or_exit(aws_app_from_env().await);
    lambda_http::run(slack_router(app)).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automations::app::config::Config;
    use automations::ports::clock::{Clock, SystemClock};
    use automations::startup::{build_app, sqlite_ports};
    use tower::ServiceExt;

    /// An API Gateway HTTP API (payload format 2.0) event for `GET <path>?<query>`.
    fn event(path: &str, query: &str) -> String {
        r#"{
      "version": "2.0",
      "routeKey": "$default",
      "rawPath": "PATH",
      "rawQueryString": "QUERY",
      "headers": {"accept": "*/*", "host": "abc123.execute-api.eu-west-1.amazonaws.com",
                  "x-forwarded-proto": "https"},
      "requestContext": {
        "accountId": "123456789012", "apiId": "abc123",
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "domainPrefix": "abc123",
        "http": {"method": "GET", "path": "PATH", "protocol": "HTTP/1.1",
                 "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
        "requestId": "req-1", "routeKey": "$default", "stage": "$default",
        "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1795428000000
      },
      "isBase64Encoded": false
    }"#
        .replace("PATH", path)
        .replace("QUERY", query)
    }

    async fn app(dir: &std::path::Path) -> automations::app::App {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let config = Config::local("https://automations.example.com");
        let ports = sqlite_ports(dir, clock.clone(), &config).await.unwrap();
        build_app(ports, clock, config).unwrap()
    }

    #[tokio::test]
    async fn the_router_answers_an_api_gateway_v2_request() {
        let dir = tempfile::tempdir().unwrap();
        let request = lambda_http::request::from_str(&event("/healthz", "")).unwrap();

        let response = automations::http::slack_router(app(dir.path()).await).oneshot(request).await.unwrap();

        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn the_install_route_reads_the_query_of_an_api_gateway_v2_request() {
        let dir = tempfile::tempdir().unwrap();
        let request = lambda_http::request::from_str(&event("/slack/install", "ticket=unknown")).unwrap();

        let response = automations::http::slack_router(app(dir.path()).await).oneshot(request).await.unwrap();

        // 503 (no Slack app on a fresh store), not 400 (no ticket): the query string arrived.
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    }
}
