//! Crash safety (DESIGN §10): the Nth table write fails, the message is received again on a
//! healthy table, for every N. Exactly the expected executions exist and each has its job;
//! nothing is doubled. Jobs are compared as distinct (execution, attempt) pairs: a failure of
//! the last write (the seen mark) comes after the jobs were sent, so the replay sends them
//! again, which delivery absorbs by its idempotency on (execution, attempt).

use std::collections::BTreeSet;

use automations::app::jobs::DeliveryTask;
use automations::app::worker::{MessageHandler, Outcome};
use automations::domain::execution::ExecutionStatus;
use automations::domain::names::ObjectId;
use serde_json::{Value, json};

use super::support::*;

/// Processes `event` with the Nth write failing, then (if it failed) again on a healthy table.
/// Returns false when the event needed fewer than N writes (nothing failed).
async fn fail_then_replay(ctx: &Ctx, event: &Value, n: usize, mode: FailMode) -> bool {
    let failing = FailingTable::new(ctx.app().repo.table.clone(), n, mode);
    let outcome = ctx.handler_over(failing.clone()).handle(&message(event.to_string())).await;
    if !failing.failed() {
        assert_eq!(outcome, Outcome::Done);
        return false;
    }
    assert_eq!(outcome, Outcome::Retry { after: None }, "write {n} failed ({mode:?})");
    ctx.ingest(event.clone()).await;
    true
}

/// Checks the executions `event` fired among `automations` and the jobs on the queue.
async fn check(ctx: &Ctx, event: &str, fired: &[(&ObjectId, ExecutionStatus)], silent: &[&ObjectId], label: &str) {
    let mut expected_jobs = BTreeSet::new();
    for (automation, status) in fired {
        let ex = ctx.execution_for(event, automation).await.unwrap_or_else(|| panic!("{label}: no execution"));
        assert_eq!(ex.status, *status, "{label}");
        let of_event = ctx.executions(automation).await.into_iter().filter(|e| e.event_id.as_str() == event).count();
        assert_eq!(of_event, 1, "{label}");
        if *status == ExecutionStatus::Pending {
            expected_jobs.insert(ex.id.to_string());
        }
    }
    for automation in silent {
        assert!(ctx.execution_for(event, automation).await.is_none(), "{label}: fired an automation that must not");
    }
    let jobs: BTreeSet<String> = ctx
        .jobs()
        .await
        .into_iter()
        .map(|task| match task {
            DeliveryTask::Deliver { team: t, execution_id, attempt } => {
                assert_eq!((t, attempt), (team(), 1), "{label}");
                execution_id.to_string()
            }
            other => panic!("{label}: ingest only makes first deliveries, not {other:?}"),
        })
        .collect();
    assert_eq!(jobs, expected_jobs, "{label}");
}

/// Metric automations on one row that updates two windows and fires four automations.
async fn metric_row_survives_a_failure_at_every_write(ctx: &Ctx, mode: FailMode) {
    let metric = |kind: &str, m: Value| json!({"type": kind, "metric": m});
    let above = metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 1}));
    let a1 = ctx.automation(spec("above", project("llm"), above.clone())).await;
    let a2 = ctx
        .automation(spec(
            "rise",
            project("llm"),
            metric(
                "RUN_METRIC_CHANGE",
                json!({"name": "loss", "change_type": "ABSOLUTE", "change_dir": "INCREASE", "amount": 0.5}),
            ),
        ))
        .await;
    let mut no_op = spec("try", project("llm"), above);
    no_op["action"] = json!({"type": "no_op"});
    let a3 = ctx.automation(no_op).await;
    let a4 = ctx
        .automation(spec(
            "acc",
            project("llm"),
            metric("RUN_METRIC", json!({"name": "acc", "window": 1, "cmp": "$gt", "threshold": 0})),
        ))
        .await;
    let a5 = ctx
        .automation(spec(
            "never",
            project("llm"),
            metric("RUN_METRIC", json!({"name": "loss", "window": 1, "cmp": "$gt", "threshold": 100})),
        ))
        .await;
    for n in 1..=40 {
        let run = format!("run-{n}");
        ctx.ingest(row(&format!("before-{n}"), &run, 1, json!({"loss": 0.5}))).await;
        let target = format!("row-{n}");
        let failed = fail_then_replay(ctx, &row(&target, &run, 2, json!({"loss": 2.0, "acc": 1.0})), n, mode).await;
        let label = format!("write {n} failing {mode:?}");
        let pending = ExecutionStatus::Pending;
        check(
            ctx,
            &target,
            &[(&a1, pending), (&a2, pending), (&a3, ExecutionStatus::Skipped), (&a4, pending)],
            &[&a5],
            &label,
        )
        .await;
        // The claims were kept: the next firing row of the run is within every cooldown.
        let after = format!("after-{n}");
        ctx.ingest(row(&after, &run, 3, json!({"loss": 3.0, "acc": 2.0}))).await;
        check(ctx, &after, &[], &[&a1, &a2, &a3, &a4, &a5], &label).await;
        // A third receive of the interrupted message changes nothing.
        ctx.ingest(row(&target, &run, 2, json!({"loss": 2.0, "acc": 1.0}))).await;
        assert!(ctx.jobs().await.is_empty(), "{label}");
        if !failed {
            assert!(n > 10, "every write of the row was failed once ({} writes)", n - 1);
            return;
        }
    }
    panic!("the row kept writing beyond 40 writes");
}

per_backend! {
    async fn a_metric_row_refused_at_any_write_fires_exactly_once_on_replay(backend) {
        metric_row_survives_a_failure_at_every_write(&Ctx::new(backend).await, FailMode::Before).await;
    }
}

per_backend! {
    async fn a_metric_row_whose_write_answer_is_lost_at_any_write_fires_exactly_once_on_replay(backend) {
        metric_row_survives_a_failure_at_every_write(&Ctx::new(backend).await, FailMode::After).await;
    }
}

/// RUN_STATE and artifact automations on one project, fired by two kinds of events.
async fn state_and_artifact_events_survive_a_failure_at_every_write(ctx: &Ctx, mode: FailMode) {
    let failed_state =
        ctx.automation(spec("failed", project("llm"), json!({"type": "RUN_STATE", "states": ["FAILED"]}))).await;
    let mut no_op = spec("try", project("llm"), json!({"type": "RUN_STATE", "states": ["FAILED"]}));
    no_op["action"] = json!({"type": "no_op"});
    let tried = ctx.automation(no_op).await;
    let finished =
        ctx.automation(spec("finished", project("llm"), json!({"type": "RUN_STATE", "states": ["FINISHED"]}))).await;
    let created = ctx.automation(spec("created", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
    let created_too = ctx.automation(spec("created too", project("llm"), json!({"type": "CREATE_ARTIFACT"}))).await;
    for kind in ["state", "artifact"] {
        let mut n = 1;
        loop {
            let label = format!("{kind}: write {n} failing {mode:?}");
            let id = format!("{kind}-{n}");
            let failed = if kind == "state" {
                let event = run_state(&id, &format!("run-{n}"), "baseline", "CRASHED");
                let failed = fail_then_replay(ctx, &event, n, mode).await;
                check(
                    ctx,
                    &id,
                    &[(&failed_state, ExecutionStatus::Pending), (&tried, ExecutionStatus::Skipped)],
                    &[&finished, &created],
                    &label,
                )
                .await;
                // Once per run and state: a second FAILED of the run fires nothing.
                let again = format!("again-{n}");
                ctx.ingest(run_state(&again, &format!("run-{n}"), "baseline", "FAILED")).await;
                check(ctx, &again, &[], &[&failed_state, &tried], &label).await;
                failed
            } else {
                let event = artifact_event(&id, "CREATE_ARTIFACT", "llm", "ckpt");
                let failed = fail_then_replay(ctx, &event, n, mode).await;
                let pending = ExecutionStatus::Pending;
                check(ctx, &id, &[(&created, pending), (&created_too, pending)], &[&failed_state], &label).await;
                failed
            };
            if !failed {
                break;
            }
            n += 1;
            assert!(n < 30, "{label}: too many writes");
        }
        assert!(n > 3, "{kind}: every write was failed once");
    }
}

per_backend! {
    async fn run_state_and_artifact_events_refused_at_any_write_fire_exactly_once_on_replay(backend) {
        state_and_artifact_events_survive_a_failure_at_every_write(&Ctx::new(backend).await, FailMode::Before).await;
    }
}

per_backend! {
    async fn run_state_and_artifact_events_whose_write_answer_is_lost_fire_exactly_once_on_replay(backend) {
        state_and_artifact_events_survive_a_failure_at_every_write(&Ctx::new(backend).await, FailMode::After).await;
    }
}

per_backend! {
    async fn a_row_interrupted_after_its_window_update_fires_on_replay_after_later_rows(backend) {
        let ctx = Ctx::new(backend).await;
        let jump = json!({"type": "RUN_METRIC_CHANGE",
                          "metric": {"name": "loss", "change_type": "ABSOLUTE", "change_dir": "ANY", "amount": 1}});
        let auto = ctx.automation(spec("jump", project("llm"), jump)).await;
        ctx.ingest(row("s1", "r1", 1, json!({"loss": 0}))).await;
        // Write 1 is the window update; write 2, the cooldown claim, fails.
        let interrupted = row("s2", "r1", 2, json!({"loss": 5}));
        let failing = FailingTable::new(ctx.app().repo.table.clone(), 2, FailMode::Before);
        let outcome = ctx.handler_over(failing).handle(&message(interrupted.to_string())).await;
        assert_eq!(outcome, Outcome::Retry { after: None });
        // Later rows move the window on before the message is received again.
        ctx.ingest(row("s3", "r1", 3, json!({"loss": 5}))).await;
        ctx.ingest(row("s4", "r1", 4, json!({"loss": 5.5}))).await;
        assert!(ctx.executions(&auto).await.is_empty());
        ctx.ingest(interrupted).await;
        let executions = ctx.executions(&auto).await;
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].event_id.as_str(), "s2");
        assert_eq!(executions[0].metric.as_ref().unwrap().value, "5");
        assert_eq!(ctx.jobs().await.len(), 1);
    }
}
