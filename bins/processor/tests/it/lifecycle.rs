//! Process lifecycle: a crash (SIGKILL) mid-stream and a graceful stop (SIGTERM) mid-stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{self, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_stream_loses_nothing_and_writes_nothing_twice() {
    let Some(env) = Env::new().await else { return };
    const TOTAL: u32 = 100_000;
    let mut p = env.spawn("crash-1", &[("REDIS_READ_COUNT", "500")]).await;
    let env = Arc::new(env);

    let producer = {
        let env = Arc::clone(&env);
        tokio::spawn(async move {
            let all = support::records(500, TOTAL);
            for chunk in all.chunks(5000) {
                env.add(chunk).await;
            }
        })
    };
    // Kill it while it is busy: some rows written, the stream still filling.
    assert!(
        support::eventually(Duration::from_secs(30), || async {
            env.rows().await >= 5000
        })
        .await,
        "no progress before the crash"
    );
    p.child.sigkill();
    let status = p.child.wait(Duration::from_secs(10)).await;
    assert!(!status.success());
    let written_before = env.rows().await;
    assert!(
        written_before < i64::from(TOTAL),
        "the crash came too late to mean anything"
    );

    p.restart().await;
    producer.await.unwrap();
    env.wait_drained(i64::from(TOTAL), Duration::from_secs(90))
        .await;
    assert_eq!(env.rows().await, i64::from(TOTAL));
    assert_eq!(env.distinct_rows().await, i64::from(TOTAL));
    assert_eq!(env.pending().await, 0);
    assert!(env.dead_letters().await.is_empty());
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_0_in_time_and_acks_the_batch_in_flight() {
    let Some(env) = Env::new().await else { return };
    let timeout_ms = 5000;
    let mut p = env
        .spawn(
            "sigterm-1",
            &[
                ("REDIS_READ_COUNT", "200"),
                ("SHUTDOWN_TIMEOUT_MS", &timeout_ms.to_string()),
            ],
        )
        .await;
    let env = Arc::new(env);
    let all = Arc::new(support::records(50, 20_000));
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (env, all, producing) = (Arc::clone(&env), Arc::clone(&all), Arc::clone(&producing));
        tokio::spawn(async move {
            // A steady stream: 500 records every 50 ms until told to stop, then the rest.
            let mut chunks = all.chunks(500);
            while producing.load(Ordering::Relaxed) {
                let Some(chunk) = chunks.next() else { break };
                env.add(chunk).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for chunk in chunks {
                env.add(chunk).await;
            }
        })
    };
    assert!(
        support::eventually(Duration::from_secs(20), || async {
            env.rows().await >= 2000
        })
        .await
    );

    let asked = Instant::now();
    let status = p.stop().await;
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "{}", p.child.output());
    assert!(took < Duration::from_millis(timeout_ms), "took {took:?}");
    // Every batch delivered to the stopped consumer was finished and acknowledged.
    assert_eq!(env.pending().await, 0, "left pending after a clean stop");
    let output = p.child.output();
    assert!(output.contains("processor stopped"), "{output}");

    producing.store(false, Ordering::Relaxed);
    producer.await.unwrap();
    p.restart().await;
    env.wait_drained(20_000, Duration::from_secs(60)).await;
    assert_eq!(env.distinct_rows().await, 20_000);
    assert_eq!(env.rows().await, 20_000);
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_stages_in_the_contract_order() {
    let Some(env) = Env::new().await else { return };
    let mut p = env.spawn("order-1", &[]).await;
    env.add(&support::records(5, 50)).await;
    env.wait_drained(50, Duration::from_secs(20)).await;
    assert_eq!(p.stop().await.code(), Some(0), "{}", p.child.output());

    // operations.md: … durable consumer → metrics server → Redis → PostgreSQL pool.
    let messages: Vec<String> = p
        .child
        .lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line.text).ok())
        .filter_map(|v| v["message"].as_str().map(str::to_owned))
        .collect();
    let at = |message: &str| {
        messages
            .iter()
            .position(|m| m == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {messages:#?}"))
    };
    let consumer = at("stream consumer stopped");
    let metrics = at("metrics server stopped");
    let redis = at("redis closed");
    let postgres = at("postgres pool closed");
    assert!(
        consumer < metrics && metrics < redis && redis < postgres,
        "wrong shutdown order: {messages:#?}"
    );
}
