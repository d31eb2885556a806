//! Integration tests of `stream-consumer` against a real Redis (through `test-support`).
//!
//! One binary; each module covers one behaviour of the brief. Every test names its keys
//! through `TestRedis::unique_key`, so they run in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure should fail the test"
)]

mod consumer;
mod faults;
mod recorder;
mod tail;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::*;
use stream_consumer::{BatchHandler, ConsumerConfig, Disposition, StreamEntry};
use test_support::TestRedis;

/// A config for tests: short BLOCK, fast backoff, and a claim idle time long enough not to
/// interfere unless a test lowers it.
pub(crate) fn config(url: &str, stream: &str, consumer: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(url, stream, "g", consumer)
        .with_claim_min_idle(Duration::from_secs(3600));
    c.block = Duration::from_millis(200);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.command_timeout = Duration::from_secs(3);
    c
}

/// `XADD stream * device_id <i> payload {"n":<i>}` for each `i`, returning the ids.
pub(crate) async fn add(client: &Client, stream: &str, range: std::ops::Range<u32>) -> Vec<String> {
    let mut ids = Vec::new();
    for i in range {
        let id: String = client
            .xadd(
                stream,
                false,
                None::<()>,
                "*",
                vec![
                    ("device_id", i.to_string()),
                    ("payload", format!("{{\"n\":{i}}}")),
                ],
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// `XPENDING stream g` → total pending count.
pub(crate) async fn pending_count(client: &Client, stream: &str, group: &str) -> u64 {
    let summary: (u64, Option<String>, Option<String>, Value) =
        client.xpending(stream, group, ()).await.unwrap();
    summary.0
}

/// Every pending row `(id, consumer, idle_ms, deliveries)`.
pub(crate) async fn pending_rows(
    client: &Client,
    stream: &str,
    group: &str,
) -> Vec<(String, String, u64, u64)> {
    client
        .xpending(stream, group, ("-", "+", 10_000))
        .await
        .unwrap()
}

/// `[(stream, [(id, [(field, value)])])]`.
type ReadReply = Vec<(String, Vec<(String, Vec<(String, String)>)>)>;

/// Reads `n` new entries as consumer `name` and never acknowledges them (a consumer that
/// crashed mid-batch).
pub(crate) async fn read_as(
    client: &Client,
    stream: &str,
    group: &str,
    name: &str,
    n: u64,
) -> Vec<String> {
    let reply: ReadReply = client
        .xreadgroup(group, name, Some(n), None, false, stream, ">")
        .await
        .unwrap();
    reply
        .into_iter()
        .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
        .collect()
}

/// Waits until the group has nothing pending (the group must exist).
pub(crate) async fn wait_nothing_pending(client: &Client, stream: &str, timeout: Duration) {
    wait_until(timeout, "nothing pending", || async {
        pending_count(client, stream, "g").await == 0
    })
    .await;
}

/// Waits until `dlq` holds `n` entries.
pub(crate) async fn wait_dead_letters(client: &Client, dlq: &str, n: u64, timeout: Duration) {
    wait_until(timeout, "dead letters written", || async {
        let len: u64 = client.xlen(dlq).await.unwrap();
        len == n
    })
    .await;
}

/// Polls `check` every 20 ms until it is true; panics with `what` after `timeout`.
pub(crate) async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One call of the handler as observed: `(id, deliveries)` per entry.
pub(crate) type Call = Vec<(String, u64)>;

/// A handler that records every call and answers per entry through `decide`.
#[derive(Clone)]
pub(crate) struct Recording<F> {
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    decide: F,
}

impl<F> Recording<F>
where
    F: Fn(&StreamEntry) -> Disposition + Send + Sync + Clone + 'static,
{
    pub(crate) fn new(decide: F) -> Self {
        Self {
            calls: Arc::default(),
            decide,
        }
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Every `(id, deliveries)` seen, in order.
    pub(crate) fn seen(&self) -> Vec<(String, u64)> {
        self.calls().into_iter().flatten().collect()
    }

    /// The delivery count of each time entry `id` was handled, in order.
    pub(crate) fn deliveries_of(&self, id: &str) -> Vec<u64> {
        self.seen()
            .into_iter()
            .filter(|(seen, _)| seen == id)
            .map(|(_, n)| n)
            .collect()
    }
}

impl<F> BatchHandler for Recording<F>
where
    F: Fn(&StreamEntry) -> Disposition + Send + Sync + Clone + 'static,
{
    async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        assert!(!batch.is_empty(), "handlers never get an empty batch");
        self.calls
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| (e.id.clone(), e.deliveries)).collect());
        batch.iter().map(|e| (self.decide)(e)).collect()
    }
}

/// Acknowledges everything.
pub(crate) fn ack_all(_: &StreamEntry) -> Disposition {
    Disposition::Ack
}

/// A Redis for this test, or skip.
pub(crate) async fn redis() -> Option<(TestRedis, Client)> {
    let redis = test_support::redis().await?;
    let client = redis.client().await;
    Some((redis, client))
}
