//! Database outages through test-support's TCP proxy: retry with backoff, never twice.

use std::time::Duration;

use position_writer::{Error, PositionWriter, migrate};
use test_support::TcpProxy;
use tokio_util::sync::CancellationToken;

use crate::common::{count, fast_config, pool, records};

/// A migrated database, a proxy in front of it and a writer going through the proxy.
async fn proxied(pg: &test_support::TestPostgres, batch_size: usize) -> (TcpProxy, PositionWriter) {
    migrate(&pool(pg.url(), 1)).await.unwrap();
    let proxy = TcpProxy::start(pg.host_port()).await;
    let writer =
        PositionWriter::new(pool(&pg.url_via(&proxy), 2), fast_config(batch_size)).unwrap();
    (proxy, writer)
}

#[tokio::test]
async fn the_retrying_writer_waits_out_an_outage_and_writes_once() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let (proxy, writer) = proxied(&pg, 500).await;
    let all = records(1_000, 50);
    let (first, second) = all.split_at(500);

    // Warm the pool: its connection will die with the cut.
    assert_eq!(writer.write_batch(first).await.unwrap().inserted, 500);
    proxy.cut().await;

    // The plain variant reports the outage as transient.
    let err = writer.write_batch(second).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    let cancel = CancellationToken::new();
    let task = {
        let (writer, batch, cancel) = (writer.clone(), second.to_vec(), cancel.clone());
        tokio::spawn(async move { writer.write_batch_retrying(&batch, &cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !task.is_finished(),
        "the retrying writer must wait while the database is away"
    );
    assert_eq!(count(&pg).await, 500);

    proxy.restore().await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("writes within 10 s of the restore")
        .unwrap()
        .unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (500, 0));
    assert_eq!(count(&pg).await, 1_000);
}

#[tokio::test]
async fn a_cut_during_a_write_is_retried_and_nothing_is_written_twice() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let (proxy, writer) = proxied(&pg, 10_000).await;
    for round in 0..3u64 {
        let batch: Vec<_> = records(10_000, 400)
            .into_iter()
            .map(|mut r| {
                r.device_id.push_str(&round.to_string());
                r
            })
            .collect();
        let cancel = CancellationToken::new();
        let task = {
            let (writer, cancel) = (writer.clone(), cancel.clone());
            tokio::spawn(async move { writer.write_batch_retrying(&batch, &cancel).await })
        };
        tokio::time::sleep(Duration::from_millis(5 + 20 * round)).await;
        proxy.cut().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.restore().await;
        let outcome = tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // If the commit landed just before the cut, the retry finds every row stored.
        assert_eq!(outcome.inserted + outcome.duplicates, 10_000);
        assert!(outcome.rejected.is_empty());
        assert_eq!(count(&pg).await, 10_000 * (round as i64 + 1));
    }
}

#[tokio::test]
async fn shutdown_interrupts_the_backoff() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let (proxy, writer) = proxied(&pg, 500).await;
    proxy.cut().await;
    let cancel = CancellationToken::new();
    let task = {
        let (writer, cancel) = (writer.clone(), cancel.clone());
        tokio::spawn(async move { writer.write_batch_retrying(&records(10, 2), &cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished());
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(count(&pg).await, 0);
}
