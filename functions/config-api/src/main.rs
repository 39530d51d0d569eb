//! The config API behind API Gateway HTTP API (payload 2.0): the `/v1` router of `shared`.

use automations::startup::{aws_app_from_env, init_tracing, or_exit};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = or_exit(aws_app_from_env().await);
    lambda_http::run(automations::http::api_router(app)).await
}
