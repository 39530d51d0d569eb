//! The `Queue` contract (SQS semantics).

use std::collections::BTreeSet;
use std::time::Duration;

use automations::ports::queue::{OutgoingMessage, ReceivedMessage};

use crate::common::stores::MAX_RECEIVES;

const NO_WAIT: Duration = Duration::ZERO;

async fn receive_one(
    queue: &dyn automations::ports::queue::Queue,
    wait: Duration,
    visibility: Option<Duration>,
) -> Option<ReceivedMessage> {
    let mut got = queue.receive(1, wait, visibility).await.unwrap();
    assert!(got.len() <= 1);
    got.pop()
}

on_both_backends! {
    async fn a_batch_of_25_is_sent_and_received_whole(stores) {
        let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
        stores.queue.send_batch(bodies.iter().map(OutgoingMessage::new).collect()).await.unwrap();
        let mut got = BTreeSet::new();
        for _ in 0..20 {
            for m in stores.queue.receive(10, Duration::from_secs(1), None).await.unwrap() {
                assert_eq!(m.receive_count, 1);
                stores.queue.delete(&m.receipt).await.unwrap();
                got.insert(m.body);
            }
            if got.len() == 25 {
                break;
            }
        }
        assert_eq!(got, bodies.into_iter().collect());
    }
}

on_both_backends! {
    async fn attributes_travel_with_the_message(stores) {
        stores.queue.send(OutgoingMessage::new("x").with_attribute("reason", "not JSON")).await.unwrap();
        let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("message");
        assert_eq!(m.attributes.get("reason").map(String::as_str), Some("not JSON"));
    }
}

on_both_backends! {
    async fn a_message_not_deleted_comes_back_after_its_visibility_timeout(stores) {
        stores.queue.send(OutgoingMessage::new("again")).await.unwrap();
        let first = receive_one(stores.queue.as_ref(), Duration::from_secs(2), Some(Duration::from_secs(1))).await.expect("first");
        assert_eq!(first.receive_count, 1);
        assert!(receive_one(stores.queue.as_ref(), NO_WAIT, None).await.is_none(), "invisible while in flight");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("redelivered");
        assert_eq!(second.body, "again");
        assert_eq!(second.receive_count, 2);
    }
}

on_both_backends! {
    async fn a_deleted_message_never_comes_back(stores) {
        stores.queue.send(OutgoingMessage::new("once")).await.unwrap();
        let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), Some(Duration::from_secs(1))).await.expect("message");
        stores.queue.delete(&m.receipt).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(receive_one(stores.queue.as_ref(), NO_WAIT, None).await.is_none());
    }
}

on_both_backends! {
    async fn change_visibility_delays_the_next_receive(stores) {
        stores.queue.send(OutgoingMessage::new("later")).await.unwrap();
        let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("message");
        stores.queue.change_visibility(&m.receipt, Duration::from_secs(2)).await.unwrap();
        assert!(receive_one(stores.queue.as_ref(), Duration::from_secs(1), None).await.is_none(), "hidden for 2 s");
        let again = receive_one(stores.queue.as_ref(), Duration::from_secs(3), None).await.expect("visible after 2 s");
        assert_eq!(again.body, "later");
    }
}

on_both_backends! {
    async fn change_visibility_to_zero_releases_at_once(stores) {
        stores.queue.send(OutgoingMessage::new("now")).await.unwrap();
        let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("message");
        stores.queue.change_visibility(&m.receipt, Duration::ZERO).await.unwrap();
        let again = receive_one(stores.queue.as_ref(), Duration::from_secs(1), None).await.expect("released");
        assert_eq!(again.receive_count, 2);
    }
}

on_both_backends! {
    async fn visibility_beyond_12_hours_is_refused(stores) {
        stores.queue.send(OutgoingMessage::new("x")).await.unwrap();
        let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("message");
        assert!(stores.queue.change_visibility(&m.receipt, Duration::from_secs(12 * 3600 + 1)).await.is_err());
        // SQS counts the 12 h from the receive, so a full 12 h after it is refused too: 11 h is safe.
        stores.queue.change_visibility(&m.receipt, Duration::from_secs(11 * 3600)).await.unwrap();
    }
}

on_both_backends! {
    async fn a_message_received_more_than_max_times_moves_to_the_dead_letter_queue(stores) {
        let body = r#"{"poison":true,"text":"kept as sent"}"#;
        stores.queue.send(OutgoingMessage::new(body)).await.unwrap();
        for n in 1..=MAX_RECEIVES {
            let m = receive_one(stores.queue.as_ref(), Duration::from_secs(2), None).await.expect("received");
            assert_eq!(m.receive_count, n);
            stores.queue.change_visibility(&m.receipt, Duration::ZERO).await.unwrap();
        }
        assert!(receive_one(stores.queue.as_ref(), Duration::from_secs(1), None).await.is_none(), "moved away");
        let dead = receive_one(stores.dlq.as_ref(), Duration::from_secs(2), None).await.expect("in the DLQ");
        assert_eq!(dead.body, body);
    }
}

on_both_backends! {
    async fn a_delayed_message_stays_hidden_until_its_delay_passes(stores) {
        let m = OutgoingMessage { delay: Duration::from_secs(2), ..OutgoingMessage::new("delayed") };
        stores.queue.send(m).await.unwrap();
        assert!(receive_one(stores.queue.as_ref(), Duration::from_secs(1), None).await.is_none());
        assert!(receive_one(stores.queue.as_ref(), Duration::from_secs(3), None).await.is_some());
    }
}
