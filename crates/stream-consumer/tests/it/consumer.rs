//! The group consumer's lifecycle: group creation, own pending list first, acknowledgement,
//! dead-lettering, reclaiming, trimmed entries, stop, and bounded read-ahead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use stream_consumer::metric_names::{
    ACKS_TOTAL, CLAIMED_TOTAL, DEAD_LETTERED_TOTAL, RECORDS_TOTAL, TRIMMED_TOTAL,
};
use stream_consumer::{BatchHandler, Consumer, Disposition, StreamEntry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    Recording, ack_all, add, config, pending_count, pending_rows, read_as, recorder, redis,
    wait_dead_letters, wait_nothing_pending, wait_until,
};

const WAIT: Duration = Duration::from_secs(10);

/// Starts `consumer` with `handler` on a task; returns the token and the task.
fn start<H: BatchHandler + 'static>(
    consumer: Consumer,
    handler: H,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<stream_consumer::Result<()>>,
) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(consumer.run(handler, cancel.clone()));
    (cancel, task)
}

async fn stop(
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<stream_consumer::Result<()>>,
) {
    cancel.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("consumer did not stop")
        .expect("consumer task panicked")
        .expect("consumer returned an error");
}

async fn groups(client: &Client, stream: &str) -> Vec<HashMap<String, Value>> {
    client.xinfo_groups(stream).await.unwrap()
}

#[tokio::test]
async fn group_creation_is_idempotent_and_makes_the_stream() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let h = Recording::new(ack_all);

    // Stream absent: MKSTREAM creates it with the group at 0.
    let consumer = Consumer::new(config(redis.url(), &stream, "c1")).unwrap();
    let health = consumer.health();
    assert!(!health.is_up(), "down before run");
    let (cancel, task) = start(consumer, h.clone());
    wait_until(WAIT, "health up", || async { health.is_up() }).await;
    let ids = add(&client, &stream, 0..3).await;
    wait_until(WAIT, "3 handled", || async { h.seen().len() == 3 }).await;
    stop(cancel, task).await;
    assert!(!health.is_up(), "down after stop");

    // Second start: BUSYGROUP is fine, the group keeps its position (nothing re-read).
    let (cancel, task) = start(
        Consumer::new(config(redis.url(), &stream, "c1")).unwrap(),
        h.clone(),
    );
    add(&client, &stream, 3..4).await;
    wait_until(WAIT, "4th handled", || async { h.seen().len() == 4 }).await;
    stop(cancel, task).await;

    let g = groups(&client, &stream).await;
    assert_eq!(g.len(), 1);
    assert_eq!(
        g[0].get("name").and_then(Value::as_string).as_deref(),
        Some("g")
    );
    let seen: Vec<String> = h.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(&seen[..3], &ids[..]);
    assert_eq!(pending_count(&client, &stream, "g").await, 0);
}

#[tokio::test]
async fn own_pending_entries_come_before_new_ones_after_a_restart() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let _: Value = client.xgroup_create(&stream, "g", "0", true).await.unwrap();
    let old = add(&client, &stream, 0..4).await;
    // "c1" read them and crashed.
    assert_eq!(read_as(&client, &stream, "g", "c1", 4).await, old);
    let new = add(&client, &stream, 4..7).await;

    let h = Recording::new(ack_all);
    let (cancel, task) = start(
        Consumer::new(config(redis.url(), &stream, "c1")).unwrap(),
        h.clone(),
    );
    wait_until(WAIT, "7 handled", || async { h.seen().len() == 7 }).await;
    stop(cancel, task).await;

    let seen = h.seen();
    let expected: Vec<(String, u64)> = old
        .iter()
        .map(|id| (id.clone(), 2))
        .chain(new.iter().map(|id| (id.clone(), 1)))
        .collect();
    assert_eq!(seen, expected, "own pending (2nd delivery) first, then new");
    // The pending entries came as their own batch, not mixed with new ones.
    assert_eq!(h.calls()[0].len(), 4);
    assert_eq!(pending_count(&client, &stream, "g").await, 0);
}

/// `cmdstat_<cmd>:calls=N` from `INFO commandstats` (0 when never called).
async fn command_calls(client: &Client, cmd: &str) -> u64 {
    let info: String = client
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .unwrap();
    let prefix = format!("cmdstat_{cmd}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn each_batch_is_acknowledged_in_one_xack() {
    // A server of its own, so its command statistics count only this test's calls.
    let Some(server) = test_support::local::OwnedRedis::start(Default::default()) else {
        return;
    };
    let client = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    recorder::install();
    let acks_before = recorder::counter(ACKS_TOTAL, "");
    let stream = "telemetry:teltonika";
    add(&client, stream, 0..25).await;
    let mut cfg = config(&server.url(), stream, "c1");
    cfg.read_count = 10;
    let h = Recording::new(ack_all);
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_until(WAIT, "25 handled", || async { h.seen().len() == 25 }).await;
    wait_until(WAIT, "acked", || async {
        pending_count(&client, stream, "g").await == 0
    })
    .await;
    stop(cancel, task).await;
    let sizes: Vec<usize> = h.calls().iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(
        command_calls(&client, "xack").await,
        3,
        "one XACK per batch"
    );
    assert!(recorder::counter(ACKS_TOTAL, "") - acks_before >= 25);
}

#[tokio::test]
async fn left_pending_entries_are_dead_lettered_after_max_deliveries() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let dlq = redis.unique_key("dead");
    recorder::install();
    let dead_before = recorder::counter(DEAD_LETTERED_TOTAL, "");
    let ids = add(&client, &stream, 0..3).await;
    let poison = ids[1].clone();

    let mut cfg =
        config(redis.url(), &stream, "c1").with_claim_min_idle(Duration::from_millis(100));
    cfg.max_deliveries = 3;
    cfg.dead_letter_stream = dlq.clone();
    let p = poison.clone();
    let h = Recording::new(move |e: &StreamEntry| {
        if e.id == p {
            Disposition::LeavePending {
                reason: "payload: expected value at line 1".into(),
            }
        } else {
            Disposition::Ack
        }
    });
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_dead_letters(&client, &dlq, 1, WAIT).await;
    wait_nothing_pending(&client, &stream, WAIT).await;
    stop(cancel, task).await;

    assert_eq!(
        h.deliveries_of(&poison),
        vec![1, 2, 3],
        "delivered max_deliveries times, then dead-lettered"
    );

    let entries: Vec<(String, Vec<(String, String)>)> =
        client.xrange(&dlq, "-", "+", None).await.unwrap();
    assert_eq!(entries.len(), 1);
    let fields = &entries[0].1;
    assert_eq!(
        fields,
        &vec![
            ("device_id".to_owned(), "1".to_owned()),
            ("payload".to_owned(), "{\"n\":1}".to_owned()),
            (
                "error".to_owned(),
                "payload: expected value at line 1".to_owned()
            ),
            ("source_id".to_owned(), poison.clone()),
        ]
    );
    assert!(recorder::counter(DEAD_LETTERED_TOTAL, "") - dead_before >= 1);
}

#[tokio::test]
async fn a_handler_can_dead_letter_at_once() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let dlq = redis.unique_key("dead");
    let ids = add(&client, &stream, 0..2).await;
    let mut cfg = config(redis.url(), &stream, "c1");
    cfg.dead_letter_stream = dlq.clone();
    let rejected = ids[0].clone();
    let r = rejected.clone();
    let h = Recording::new(move |e: &StreamEntry| {
        if e.id == r {
            Disposition::DeadLetter {
                error: "value too long for type character varying(15)".into(),
            }
        } else {
            Disposition::Ack
        }
    });
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_dead_letters(&client, &dlq, 1, WAIT).await;
    wait_nothing_pending(&client, &stream, WAIT).await;
    stop(cancel, task).await;
    assert_eq!(h.seen().len(), 2, "each entry handled once");
    let entries: Vec<(String, HashMap<String, String>)> =
        client.xrange(&dlq, "-", "+", None).await.unwrap();
    assert_eq!(entries[0].1["source_id"], rejected);
    assert_eq!(
        entries[0].1["error"],
        "value too long for type character varying(15)"
    );
    assert_eq!(entries[0].1["device_id"], "0");
}

#[tokio::test]
async fn a_dead_consumers_entries_are_claimed_after_the_idle_time() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    recorder::install();
    let claimed_before = recorder::counter(CLAIMED_TOTAL, "");
    let _: Value = client.xgroup_create(&stream, "g", "0", true).await.unwrap();
    let ids = add(&client, &stream, 0..3).await;
    assert_eq!(read_as(&client, &stream, "g", "dead", 3).await, ids);
    let claimed_at = Instant::now();

    let cfg = config(redis.url(), &stream, "alive").with_claim_min_idle(Duration::from_millis(300));
    let h = Recording::new(ack_all);
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_until(WAIT, "3 claimed and handled", || async {
        h.seen().len() == 3
    })
    .await;
    assert!(
        claimed_at.elapsed() >= Duration::from_millis(300),
        "not before the idle time"
    );
    wait_until(WAIT, "acked", || async {
        pending_count(&client, &stream, "g").await == 0
    })
    .await;
    stop(cancel, task).await;
    assert_eq!(
        h.seen(),
        ids.iter().map(|id| (id.clone(), 2)).collect::<Vec<_>>()
    );
    assert!(recorder::counter(CLAIMED_TOTAL, "") - claimed_before >= 3);
}

#[tokio::test]
async fn a_trimmed_pending_entry_is_counted_and_dropped_when_claimed() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    recorder::install();
    let trimmed_before = recorder::counter(TRIMMED_TOTAL, "");
    let _: Value = client.xgroup_create(&stream, "g", "0", true).await.unwrap();
    let ids = add(&client, &stream, 0..3).await;
    read_as(&client, &stream, "g", "dead", 3).await;
    let _: u64 = client.xdel(&stream, &ids[0]).await.unwrap();

    let cfg = config(redis.url(), &stream, "alive").with_claim_min_idle(Duration::from_millis(100));
    let h = Recording::new(ack_all);
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_until(WAIT, "2 handled", || async { h.seen().len() == 2 }).await;
    wait_nothing_pending(&client, &stream, WAIT).await;
    stop(cancel, task).await;
    let seen: Vec<String> = h.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(seen, ids[1..].to_vec());
    assert!(recorder::counter(TRIMMED_TOTAL, "") - trimmed_before >= 1);
}

#[tokio::test]
async fn a_deleted_entry_in_the_own_pending_list_is_acked_and_counted() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    recorder::install();
    let trimmed_before = recorder::counter(TRIMMED_TOTAL, "");
    let records_before = recorder::counter(RECORDS_TOTAL, "");
    let _: Value = client.xgroup_create(&stream, "g", "0", true).await.unwrap();
    let ids = add(&client, &stream, 0..3).await;
    read_as(&client, &stream, "g", "c1", 3).await;
    let _: u64 = client.xdel(&stream, &ids[1]).await.unwrap();

    let h = Recording::new(ack_all);
    let (cancel, task) = start(
        Consumer::new(config(redis.url(), &stream, "c1")).unwrap(),
        h.clone(),
    );
    wait_nothing_pending(&client, &stream, WAIT).await;
    stop(cancel, task).await;
    let seen: Vec<String> = h.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(seen, vec![ids[0].clone(), ids[2].clone()]);
    assert!(recorder::counter(TRIMMED_TOTAL, "") - trimmed_before >= 1);
    assert!(
        recorder::counter(RECORDS_TOTAL, "") - records_before >= 3,
        "re-reads counted"
    );
}

#[tokio::test]
async fn stop_finishes_the_batch_in_flight_and_reads_nothing_new() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let ids = add(&client, &stream, 0..12).await;
    let mut cfg = config(redis.url(), &stream, "c1");
    cfg.read_count = 5;

    let h = Gate::default();
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    // The first batch is being handled (and the next one read ahead meanwhile).
    h.entered.notified().await;
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.release.notify_one();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let handled = h.ids.lock().unwrap().clone();
    // Handled: the batch in flight and at most the one already read ahead; both acked.
    assert!(
        handled.len() == 5 || handled.len() == 10,
        "handled {}",
        handled.len()
    );
    assert_eq!(handled, ids[..handled.len()].to_vec());
    assert_eq!(
        pending_count(&client, &stream, "g").await,
        0,
        "in-flight batches acked"
    );
    // Nothing beyond them was delivered.
    let g = groups(&client, &stream).await;
    let last = g[0]
        .get("last-delivered-id")
        .and_then(Value::as_string)
        .unwrap();
    assert_eq!(last, handled[handled.len() - 1]);
}

/// Blocks in its first call until released; acks everything.
#[derive(Clone, Default)]
struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
    calls: Arc<AtomicU64>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl BatchHandler for Gate {
    async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.ids
            .lock()
            .unwrap()
            .extend(batch.iter().map(|e| e.id.clone()));
        vec![Disposition::Ack; batch.len()]
    }
}

#[tokio::test]
async fn stop_wakes_a_blocked_read() {
    let Some((redis, _client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let mut cfg = config(redis.url(), &stream, "c1");
    cfg.block = Duration::from_secs(30);
    let consumer = Consumer::new(cfg).unwrap();
    let health = consumer.health();
    let (cancel, task) = start(consumer, Recording::new(ack_all));
    wait_until(WAIT, "health up", || async { health.is_up() }).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // now blocked in XREADGROUP
    let t = Instant::now();
    stop(cancel, task).await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn read_ahead_is_at_most_one_batch() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    add(&client, &stream, 0..60).await;
    let mut cfg = config(redis.url(), &stream, "c1");
    cfg.read_count = 10;
    let h = Probe {
        client: redis.client().await,
        stream: stream.clone(),
        samples: Arc::default(),
    };
    let samples = h.samples.clone();
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h);
    wait_until(WAIT, "60 handled", || async {
        samples.lock().unwrap().len() == 6
    })
    .await;
    wait_until(WAIT, "acked", || async {
        pending_count(&client, &stream, "g").await == 0
    })
    .await;
    stop(cancel, task).await;
    let samples = samples.lock().unwrap().clone();
    // While a batch of 10 is handled, at most one more batch is delivered and unacked.
    assert!(
        samples.iter().all(|&p| (10..=20).contains(&p)),
        "pending while handling: {samples:?}"
    );
    // And the read-ahead does happen (pipelining): some batch saw the next one delivered.
    assert!(samples.contains(&20), "no read-ahead observed: {samples:?}");
}

/// Sleeps in each call, then samples the group's pending count.
struct Probe {
    client: Client,
    stream: String,
    samples: Arc<Mutex<Vec<u64>>>,
}

impl BatchHandler for Probe {
    async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let p = pending_count(&self.client, &self.stream, "g").await;
        self.samples.lock().unwrap().push(p);
        vec![Disposition::Ack; batch.len()]
    }
}

#[tokio::test]
async fn entries_left_pending_stay_pending_below_max_deliveries() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let dlq = redis.unique_key("dead");
    let ids = add(&client, &stream, 0..2).await;
    let mut cfg = config(redis.url(), &stream, "c1");
    cfg.dead_letter_stream = dlq.clone();
    let h = Recording::new(|_: &StreamEntry| Disposition::LeavePending {
        reason: "db down".into(),
    });
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    wait_until(WAIT, "handled", || async { h.seen().len() == 2 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(cancel, task).await;
    let rows = pending_rows(&client, &stream, "g").await;
    assert_eq!(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), ids);
    assert!(rows.iter().all(|r| r.1 == "c1" && r.3 == 1));
    let n: u64 = client.xlen(&dlq).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn retried_entries_are_redelivered_and_never_dead_lettered() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let dlq = redis.unique_key("dead");
    let ids = add(&client, &stream, 0..3).await;
    let (good, bad) = (ids[..2].to_vec(), ids[2].clone());

    // One delivery allowed: a `LeavePending` is dead-lettered at once, a `Retry` never is.
    let mut cfg =
        config(redis.url(), &stream, "c1").with_claim_min_idle(Duration::from_millis(100));
    cfg.max_deliveries = 1;
    cfg.dead_letter_stream = dlq.clone();
    let b = bad.clone();
    let h = Recording::new(move |e: &StreamEntry| {
        if e.id == b {
            Disposition::LeavePending {
                reason: "malformed".into(),
            }
        } else if e.deliveries < 4 {
            // e.g. the database is down: not this entry's fault.
            Disposition::Retry
        } else {
            Disposition::Ack
        }
    });
    let (cancel, task) = start(Consumer::new(cfg).unwrap(), h.clone());
    // The group exists once the first batch was handled.
    wait_until(WAIT, "first batch handled", || async {
        !h.calls().is_empty()
    })
    .await;
    wait_nothing_pending(&client, &stream, WAIT).await;
    stop(cancel, task).await;

    for id in &good {
        assert_eq!(
            h.deliveries_of(id),
            vec![1, 2, 3, 4],
            "retried past max_deliveries, then acknowledged"
        );
    }
    let dead: Vec<(String, HashMap<String, String>)> =
        client.xrange(&dlq, "-", "+", None).await.unwrap();
    assert_eq!(dead.len(), 1, "only the malformed entry: {dead:?}");
    assert_eq!(dead[0].1["source_id"], bad);
    assert_eq!(dead[0].1["error"], "malformed");
}

#[tokio::test]
async fn connect_before_run_and_close_after_it_when_kept_open() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let h = Recording::new(ack_all);
    let mut consumer = Consumer::new(config(redis.url(), &stream, "c1"))
        .unwrap()
        .keep_open_on_stop();
    let health = consumer.health();
    let closer = consumer.closer();

    // `connect` alone: Redis reported up and the group made, nothing read yet.
    assert!(consumer.connect(&CancellationToken::new()).await);
    assert!(health.is_up(), "up after connect, before run");
    assert_eq!(groups(&client, &stream).await.len(), 1);
    let ids = add(&client, &stream, 0..2).await;
    assert!(h.seen().is_empty());

    let (cancel, task) = start(consumer, h.clone());
    wait_until(WAIT, "2 handled", || async { h.seen().len() == 2 }).await;
    stop(cancel, task).await;
    assert!(health.is_up(), "kept open after run returned");
    closer.close().await;
    assert!(!health.is_up(), "down once closed");
    let seen: Vec<String> = h.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(seen, ids);
}
