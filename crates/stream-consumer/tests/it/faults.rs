//! Failures the consumer recovers from by itself: the stream deleted (`NOGROUP`) and the
//! connection cut.

use std::collections::HashSet;
use std::time::Duration;

use stream_consumer::{Consumer, metric_names::READS_TOTAL};
use test_support::TcpProxy;
use tokio_util::sync::CancellationToken;

use crate::{Recording, ack_all, add, config, pending_count, recorder, redis, wait_until};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_group_is_recreated_when_the_stream_is_deleted() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let h = Recording::new(ack_all);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(config(redis.url(), &stream, "c1"))
            .unwrap()
            .run(h.clone(), cancel.clone()),
    );
    add(&client, &stream, 0..3).await;
    wait_until(WAIT, "first 3", || async { h.seen().len() == 3 }).await;

    let _: i64 = fred::prelude::KeysInterface::del(&client, &stream)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stream comes back without the group; the consumer must recreate it (at 0).
    let again = add(&client, &stream, 3..6).await;
    wait_until(WAIT, "3 more after NOGROUP", || async {
        h.seen().len() == 6
    })
    .await;
    wait_until(WAIT, "acked", || async {
        pending_count(&client, &stream, "g").await == 0
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    let seen: Vec<String> = h.seen().into_iter().skip(3).map(|(id, _)| id).collect();
    assert_eq!(seen, again);
}

#[tokio::test]
async fn a_cut_connection_is_resumed_and_nothing_is_lost() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    recorder::install();
    let errors_before = recorder::counter(READS_TOTAL, ",result=error");
    let proxy = TcpProxy::start(redis.host_port()).await;
    let mut cfg = config(&redis.url_via(&proxy), &stream, "c1");
    cfg.read_count = 7;
    let consumer = Consumer::new(cfg).unwrap();
    let health = consumer.health();
    let h = Recording::new(ack_all);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(consumer.run(h.clone(), cancel.clone()));

    let mut all = add(&client, &stream, 0..20).await;
    wait_until(WAIT, "first 20", || async { h.seen().len() >= 20 }).await;

    proxy.cut().await;
    // Written while the consumer cannot reach Redis (this client talks to Redis directly).
    all.extend(add(&client, &stream, 20..40).await);
    wait_until(WAIT, "health down", || async { !health.is_up() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.restore().await;

    all.extend(add(&client, &stream, 40..50).await);
    wait_until(WAIT, "health up again", || async { health.is_up() }).await;
    wait_until(WAIT, "every entry handled", || async {
        let seen: HashSet<String> = h.seen().into_iter().map(|(id, _)| id).collect();
        all.iter().all(|id| seen.contains(id))
    })
    .await;
    wait_until(WAIT, "all acked", || async {
        pending_count(&client, &stream, "g").await == 0
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert!(
        recorder::counter(READS_TOTAL, ",result=error") > errors_before,
        "the cut showed up as a read error"
    );
}

#[tokio::test]
async fn a_consumer_started_while_redis_is_down_connects_when_it_comes_up() {
    let Some((redis, client)) = redis().await else {
        return;
    };
    let stream = redis.unique_key("s");
    let proxy = TcpProxy::start(redis.host_port()).await;
    proxy.cut().await;
    let consumer = Consumer::new(config(&redis.url_via(&proxy), &stream, "c1")).unwrap();
    let health = consumer.health();
    let h = Recording::new(ack_all);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(consumer.run(h.clone(), cancel.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!health.is_up());
    proxy.restore().await;
    wait_until(WAIT, "health up", || async { health.is_up() }).await;
    add(&client, &stream, 0..2).await;
    wait_until(WAIT, "2 handled", || async { h.seen().len() == 2 }).await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived() {
    let options = test_support::local::RedisOptions { appendonly: true };
    let Some(mut server) = test_support::local::OwnedRedis::start(options) else {
        return;
    };
    let stream = "telemetry:teltonika";
    let client = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(&server.url()).unwrap(),
    )
    .set_policy(fred::prelude::ReconnectPolicy::new_constant(0, 100))
    .build()
    .unwrap();
    fred::prelude::ClientLike::init(&client).await.unwrap();
    let consumer = Consumer::new(config(&server.url(), stream, "c1")).unwrap();
    let health = consumer.health();
    let h = Recording::new(ack_all);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(consumer.run(h.clone(), cancel.clone()));
    let mut all = add(&client, stream, 0..5).await;
    wait_until(WAIT, "first 5", || async { h.seen().len() >= 5 }).await;

    tokio::task::block_in_place(|| server.kill());
    wait_until(WAIT, "health down", || async { !health.is_up() }).await;
    tokio::task::block_in_place(|| server.start_again());
    wait_until(WAIT, "health up", || async { health.is_up() }).await;
    all.extend(add(&client, stream, 5..10).await);
    wait_until(WAIT, "every entry handled", || async {
        let seen: HashSet<String> = h.seen().into_iter().map(|(id, _)| id).collect();
        all.iter().all(|id| seen.contains(id))
    })
    .await;
    wait_until(WAIT, "all acked", || async {
        pending_count(&client, stream, "g").await == 0
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}
