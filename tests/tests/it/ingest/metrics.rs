//! RUN_HISTORY rows: threshold, change and z-score windows, NaN, cooldowns, replays.

use std::time::Duration;

use automations::app::repo::keys;
use automations::app::worker::{MessageHandler, Outcome};
use automations::domain::execution::FiredMetric;
use automations::domain::names::ProjectName;
use serde_json::{Value, json};

use super::support::*;

fn metric(kind: &str, metric: Value) -> Value {
    json!({"type": kind, "metric": metric})
}

/// Feeds `values` of metric `loss` as rows 1, 2, … of `run` (event ids `<run>-<step>`) and
/// returns the metric of each execution `auto` fired, by step.
async fn feed(
    ctx: &Ctx,
    auto: &automations::domain::names::ObjectId,
    run: &str,
    values: &[Value],
) -> Vec<(i64, FiredMetric)> {
    let mut fired = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let step = i as i64 + 1;
        let id = format!("{run}-{step}");
        ctx.ingest(row(&id, run, step, json!({ "loss": value }))).await;
        if let Some(ex) = ctx.execution_for(&id, auto).await {
            fired.push((step, ex.metric.expect("metric executions name their metric")));
        }
    }
    fired
}

fn fired(step: i64, value: &str) -> (i64, FiredMetric) {
    (step, FiredMetric { name: "loss".into(), value: value.into() })
}

per_backend! {
    async fn an_average_threshold_fires_once_the_window_is_full_and_above(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("diverged", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "agg": "AVERAGE", "window": 3, "cmp": "$gt", "threshold": 4.0}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(6), json!(6), json!(1.5)]).await;
        assert_eq!(got, [fired(3, "4.5")]);
        let jobs = ctx.jobs().await;
        assert_eq!(jobs.len(), 1);
    }
}

per_backend! {
    async fn a_max_threshold_fires_on_the_largest_value_of_the_window(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("spike", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "agg": "MAX", "window": 2, "cmp": "$gte", "threshold": 10}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(1), json!(2), json!(10)]).await;
        assert_eq!(got, [fired(3, "10")]);
    }
}

per_backend! {
    async fn a_min_threshold_fires_on_the_smallest_value_of_the_window(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("converged", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "agg": "MIN", "window": 2, "cmp": "$lt", "threshold": 0.1}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(0.2), json!(0.3), json!(0.05)]).await;
        assert_eq!(got, [fired(3, "0.05")]);
    }
}

per_backend! {
    async fn an_absolute_decrease_fires_when_a_block_drops_by_the_amount(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("drop", project("llm"), metric("RUN_METRIC_CHANGE", json!({"name": "loss", "current_window": 1, "change_type": "ABSOLUTE", "change_dir": "DECREASE", "amount": 0.1}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(1.0), json!(0.96875), json!(0.75)]).await;
        assert_eq!(got, [fired(3, "-0.21875")]);
    }
}

per_backend! {
    async fn a_relative_increase_compares_with_the_prior_block(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("jump", project("llm"), metric("RUN_METRIC_CHANGE", json!({"name": "loss", "current_window": 1, "change_type": "RELATIVE", "change_dir": "INCREASE", "amount": 0.5}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(2), json!(2.5), json!(4)]).await;
        assert_eq!(got, [fired(3, "0.6")]);
    }
}

per_backend! {
    async fn a_zscore_fires_on_an_outlier_of_the_previous_window(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("outlier", project("llm"), metric("RUN_METRIC_ZSCORE", json!({"name": "loss", "window": 4, "threshold": 2, "change_dir": "INCREASE"}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(1), json!(2), json!(1), json!(2), json!(10)]).await;
        assert_eq!(got, [fired(5, "17")]);
    }
}

per_backend! {
    async fn isnan_fires_when_the_loss_goes_nan(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("nan", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$isnan"}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(1.0), json!("NaN")]).await;
        assert_eq!(got, [fired(2, "NaN")]);
    }
}

per_backend! {
    async fn a_metric_automation_fires_once_per_run_within_its_cooldown(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("high", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 1}))))
            .await;
        assert_eq!(feed(&ctx, &auto, "r1", &[json!(2), json!(3), json!(4)]).await, [fired(1, "2")]);
        assert_eq!(feed(&ctx, &auto, "r2", &[json!(5)]).await, [fired(1, "5")]);
        assert_eq!(ctx.jobs().await.len(), 2);
    }
}

per_backend! {
    async fn a_metric_automation_fires_again_once_its_cooldown_has_passed(backend) {
        let ctx = Ctx::new(backend).await;
        let mut s = spec("high", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 1})));
        s["cooldown_seconds"] = json!(1);
        let auto = ctx.automation(s).await;
        ctx.ingest(row("a", "r1", 1, json!({"loss": 2}))).await;
        ctx.ingest(row("b", "r1", 2, json!({"loss": 2}))).await;
        // The cooldown's expiry is epoch seconds: two seconds later it has certainly passed.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        ctx.ingest(row("c", "r1", 3, json!({"loss": 2}))).await;
        let mut fired: Vec<String> = ctx.executions(&auto).await.into_iter().map(|e| e.event_id.to_string()).collect();
        fired.sort();
        assert_eq!(fired, ["a", "c"]);
    }
}

per_backend! {
    async fn a_null_value_is_not_counted_in_the_window(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("full", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 2, "cmp": "$gt", "threshold": 1}))))
            .await;
        let got = feed(&ctx, &auto, "r1", &[json!(5), Value::Null, json!(5)]).await;
        assert_eq!(got, [fired(3, "5")]);
    }
}

per_backend! {
    async fn a_row_resent_under_another_id_is_not_counted_twice(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("full", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 2, "cmp": "$gt", "threshold": 4}))))
            .await;
        ctx.ingest(row("a", "r1", 1, json!({"loss": 5}))).await;
        ctx.ingest(row("a-again", "r1", 1, json!({"loss": 5}))).await;
        assert!(ctx.executions(&auto).await.is_empty(), "a repeated step must not fill the window");
        ctx.ingest(row("b", "r1", 2, json!({"loss": 5}))).await;
        assert_eq!(ctx.executions(&auto).await.len(), 1);
    }
}

per_backend! {
    async fn a_filter_on_the_run_name_selects_which_runs_a_metric_automation_watches(backend) {
        let ctx = Ctx::new(backend).await;
        let mut s = spec("ablations", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 1})));
        s["event"]["filter"] = json!({"run.name": {"$regex": "^name-ablation"}});
        let auto = ctx.automation(s).await;
        ctx.ingest(row("a", "baseline", 1, json!({"loss": 2}))).await;
        ctx.ingest(row("b", "ablation-1", 1, json!({"loss": 2}))).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "b");
    }
}

per_backend! {
    async fn only_metrics_an_enabled_automation_watches_keep_a_window(backend) {
        let ctx = Ctx::new(backend).await;
        ctx.automation(spec("loss", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 3, "cmp": "$gt", "threshold": 1})))).await;
        let mut paused = spec("acc", project("llm"), metric("RUN_METRIC", json!({"name": "acc", "window": 3, "cmp": "$gt", "threshold": 1})));
        paused["enabled"] = json!(false);
        ctx.automation(paused).await;
        ctx.ingest(row("a", "r1", 1, json!({"loss": 2, "acc": 0.5, "lr": 0.1}))).await;
        let llm = ProjectName::parse("llm").unwrap();
        let window = |m: &str| keys::metric_window(&team(), &llm, "r1", m);
        let table = &ctx.app().repo.table;
        assert!(table.get(&window("loss")).await.unwrap().is_some());
        assert!(table.get(&window("acc")).await.unwrap().is_none());
        assert!(table.get(&window("lr")).await.unwrap().is_none());
    }
}

per_backend! {
    async fn two_firing_rows_processed_at_once_fire_once_within_the_cooldown(backend) {
        let ctx = Ctx::new(backend).await;
        let auto = ctx
            .automation(spec("high", project("llm"), metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 1}))))
            .await;
        let first = message(row("a", "r1", 1, json!({"loss": 2})).to_string());
        let second = message(row("b", "r1", 2, json!({"loss": 3})).to_string());
        let (x, y) = tokio::join!(ctx.handler.handle(&first), ctx.handler.handle(&second));
        assert_eq!((x, y), (Outcome::Done, Outcome::Done));
        assert_eq!(ctx.executions(&auto).await.len(), 1);
        assert_eq!(ctx.jobs().await.len(), 1);
    }
}
