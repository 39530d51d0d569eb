//! The local ingest worker keeps the queue order of messages that share an ordering key (rows
//! of one run), while handling different keys side by side.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use automations::app::worker::{MessageHandler, Outcome, run_local_worker};
use automations::ports::queue::{OutgoingMessage, ReceivedMessage};

use crate::common::app::TestApp;
use crate::common::stores::Backend;

/// Records the order it handled messages in, taking longer for some so that a worker that
/// ignored the keys would finish them out of order.
struct Recorder(Mutex<Vec<(String, u32)>>);

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &ReceivedMessage) -> Outcome {
        let (key, seq) = message.body.split_once(':').expect("key:seq");
        let seq: u32 = seq.parse().expect("seq");
        tokio::time::sleep(Duration::from_millis(u64::from((seq * 7) % 5))).await;
        self.0.lock().unwrap().push((key.to_owned(), seq));
        Outcome::Done
    }

    fn ordering_key(&self, message: &ReceivedMessage) -> Option<String> {
        message.body.split_once(':').map(|(k, _)| k.to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_one_key_are_handled_in_queue_order() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let messages: Vec<OutgoingMessage> = (0..40).map(|i| OutgoingMessage::new(format!("run{}:{i}", i % 4))).collect();
    t.app.events.send_batch(messages).await.unwrap();
    let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
    let worker = tokio::spawn(run_local_worker(
        t.app.events.clone(),
        t.app.events_dlq.clone(),
        recorder.clone(),
        10,
        true,
        t.shutdown.subscribe(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while recorder.0.lock().unwrap().len() < 40 {
        assert!(std::time::Instant::now() < deadline, "not all messages were handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.shutdown.send(true).unwrap();
    worker.await.unwrap();
    let handled = recorder.0.lock().unwrap().clone();
    for key in ["run0", "run1", "run2", "run3"] {
        let seqs: Vec<u32> = handled.iter().filter(|(k, _)| k == key).map(|(_, s)| *s).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "{key} out of order");
        assert_eq!(seqs.len(), 10);
    }
}
