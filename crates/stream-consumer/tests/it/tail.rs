//! The live path's tail reader.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use stream_consumer::{TailConfig, TailEntry, TailReader};
use test_support::TcpProxy;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{add, pending_count, redis, wait_until};

const WAIT: Duration = Duration::from_secs(15);

fn tail_config(url: &str, stream: &str) -> TailConfig {
    let mut c = TailConfig::new(url, stream, "i1");
    c.block = Duration::from_millis(200);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.command_timeout = Duration::from_secs(3);
    c
}

/// Receives until `n` entries arrived (panics after `WAIT`).
async fn receive(rx: &mut mpsc::Receiver<Vec<TailEntry>>, n: usize) -> Vec<TailEntry> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("timed out waiting for tail entries")
            .expect("tail reader ended");
        got.extend(batch);
    }
    got
}

fn ids(entries: &[TailEntry]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

async fn group_exists(client: &Client, stream: &str, group: &str) -> bool {
    let groups: Result<Vec<HashMap<String, Value>>, _> = client.xinfo_groups(stream).await;
    groups.is_ok_and(|g| {
        g.iter()
            .any(|g| g.get("name").and_then(Value::as_string).as_deref() == Some(group))
    })
}

#[tokio::test]
async fn starts_at_the_tail_and_leaves_nothing_pending() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    add(&client, &stream, 0..5).await; // history

    let reader = TailReader::new(tail_config(redis.url(), &stream)).unwrap();
    let health = reader.health();
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reader.run(tx, cancel.clone()));
    wait_until(WAIT, "tail reader up", || async { health.is_up() }).await;

    let before_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let fresh = add(&client, &stream, 5..8).await;
    let got = receive(&mut rx, 3).await;
    assert_eq!(ids(&got), fresh, "only entries written after the start");
    assert_eq!(got[0].field("device_id"), Some(&b"5"[..]));
    assert!(got[0].redis_timestamp_ms >= before_ms.saturating_sub(5));
    assert_eq!(
        pending_count(&client, &stream, "live-broadcast-i1").await,
        0,
        "NOACK"
    );

    cancel.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Written while the instance is down: history, not news, for the next start.
    add(&client, &stream, 8..10).await;
    let reader = TailReader::new(tail_config(redis.url(), &stream)).unwrap();
    let health = reader.health();
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reader.run(tx, cancel.clone()));
    wait_until(WAIT, "tail reader up again", || async { health.is_up() }).await;
    let fresh = add(&client, &stream, 10..11).await;
    let got = receive(&mut rx, 1).await;
    assert_eq!(ids(&got), fresh, "the restart skipped to the tail");
    cancel.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn survives_a_cut_and_a_deleted_stream() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let proxy = TcpProxy::start(redis.host_port()).await;
    let reader = TailReader::new(tail_config(&redis.url_via(&proxy), &stream)).unwrap();
    let health = reader.health();
    let (tx, mut rx) = mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(reader.run(tx, cancel.clone()));
    wait_until(WAIT, "up", || async { health.is_up() }).await;
    let a = add(&client, &stream, 0..2).await;
    assert_eq!(ids(&receive(&mut rx, 2).await), a);

    proxy.cut().await;
    wait_until(WAIT, "down", || async { !health.is_up() }).await;
    // Written during a short outage: still delivered once back (no SETID on reconnect).
    let during = add(&client, &stream, 2..3).await;
    proxy.restore().await;
    let after = add(&client, &stream, 3..4).await;
    let got = receive(&mut rx, 2).await;
    assert_eq!(ids(&got), [during, after].concat());

    // The stream is deleted and recreated: the group comes back at the tail.
    let _: i64 = client.del(&stream).await.unwrap();
    let _ = add(&client, &stream, 4..5).await;
    wait_until(WAIT, "group recreated", || async {
        group_exists(&client, &stream, "live-broadcast-i1").await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = add(&client, &stream, 5..6).await;
    let got = receive(&mut rx, 1).await;
    assert_eq!(ids(&got).last(), last.last());

    cancel.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn ends_when_the_receiver_is_dropped() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let reader = TailReader::new(tail_config(redis.url(), &stream)).unwrap();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let task = tokio::spawn(reader.run(tx, CancellationToken::new()));
    add(&client, &stream, 0..1).await;
    tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
