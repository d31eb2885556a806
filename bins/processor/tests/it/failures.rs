//! Bad records and unavailable dependencies: malformed entries, rows PostgreSQL rejects, a
//! PostgreSQL outage, a Redis restart.

use std::time::Duration;

use teltonika_codec::stream_record::{EntryCodec, encode_entry};
use test_support::TcpProxy;
use test_support::local::{OwnedRedis, RedisOptions};

use crate::support::{self, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_entry_stays_pending_then_is_dead_lettered() {
    let Some(env) = Env::new().await else { return };
    let mut p = env
        .spawn(
            "malformed-1",
            &[
                ("REDIS_CLAIM_MIN_IDLE_MS", "1000"),
                ("REDIS_MAX_DELIVERIES", "3"),
            ],
        )
        .await;

    let good = support::record(3, 0);
    let mut fields = encode_entry(&good, EntryCodec::Codec8);
    let payload = fields.iter_mut().find(|(k, _)| *k == "payload").unwrap();
    payload.1 = payload.1.replace("41.3275", "91.5");
    let bad_id = env.add_raw(fields.clone()).await;
    env.add(&[support::record(3, 1)]).await;

    // First delivery: the good one is written, the bad one is left pending, counted, logged.
    env.wait_drained_rows(1).await;
    let line = p
        .child
        .wait_for_json(
            |v| v["message"] == "malformed stream entry left pending",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(line["entry_id"], bad_id.as_str(), "{line}");
    assert_eq!(line["field"], "latitude", "{line}");
    assert_eq!(line["level"], "WARN");
    assert_eq!(env.pending_entries().await, vec![(bad_id.clone(), 1)]);
    assert!(p.metric("processor_consumer_decode_errors_total").await >= Some(1.0));

    // Redelivered (reclaimed after 1 s idle) until the third delivery, then dead-lettered.
    assert!(
        support::eventually(Duration::from_secs(20), || async {
            env.pending().await == 0
        })
        .await,
        "still pending: {:?}",
        env.pending_entries().await
    );
    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields["source_id"], bad_id);
    assert!(fields["error"].contains("latitude"), "{fields:?}");
    assert!(
        fields["payload"].contains("91.5"),
        "original fields kept: {fields:?}"
    );
    assert_eq!(
        p.metric("processor_consumer_decode_errors_total").await,
        Some(3.0)
    );
    assert_eq!(
        p.metric("processor_consumer_dead_lettered_total").await,
        Some(1.0)
    );
    assert_eq!(env.rows().await, 1);
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_database_rejects_is_dead_lettered_and_the_rest_is_written() {
    let Some(env) = Env::new().await else { return };
    let mut p = env.spawn("reject-1", &[("REDIS_READ_COUNT", "500")]).await;
    // A constraint stands in for any data the database refuses (SQLSTATE class 23).
    env.pg
        .execute(
            "ALTER TABLE positions ADD CONSTRAINT no_probe CHECK (device_id <> '356307049999999')",
        )
        .await;

    let mut batch = support::records(10, 200);
    let mut refused = support::record(0, 10_000);
    refused.device_id = "356307049999999".to_owned();
    batch.insert(137, refused);
    let ids = env.add(&batch).await;
    env.wait_drained(200, Duration::from_secs(30)).await;

    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields["source_id"], ids[137]);
    assert!(
        fields["error"].contains("no_probe"),
        "the database's message: {fields:?}"
    );
    assert!(fields["error"].contains("23514"), "{fields:?}");
    assert_eq!(env.rows().await, 200);
    assert_eq!(
        p.metric("processor_consumer_dead_lettered_total").await,
        Some(1.0)
    );
    assert!(p.stop().await.success());
    // operations.md: every log line about a record names the stream entry id.
    for line in p.child.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line.text) else {
            continue;
        };
        let about_the_row = line.text.contains("356307049999999")
            || v["message"]
                .as_str()
                .is_some_and(|m| m.contains("rejected"));
        if about_the_row {
            assert_eq!(v["entry_id"], ids[137].as_str(), "{}", line.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_waited_out_without_loss_or_restart() {
    let Some(env) = Env::new().await else { return };
    let proxy = TcpProxy::start(env.pg.host_port()).await;
    let mut p = env
        .spawn(
            "pg-outage-1",
            &[
                ("DATABASE_URL", &env.pg.url_via(&proxy)),
                ("REDIS_READ_COUNT", "200"),
            ],
        )
        .await;
    let all = support::records(20, 3000);
    env.add(&all[..1000]).await;
    env.wait_drained(1000, Duration::from_secs(20)).await;
    assert_eq!(p.get("/readyz").await.0, 200);

    proxy.cut().await;
    let cut_at = std::time::Instant::now();
    // Records keep arriving during the outage.
    env.add(&all[1000..2000]).await;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            let (status, body) = p.get("/readyz").await;
            status == 503 && body.contains("\"postgres\"") && !body.contains("\"redis\"")
        })
        .await,
        "/readyz during the outage: {:?}",
        p.get("/readyz").await
    );
    env.add(&all[2000..]).await;
    assert!(
        env.pending().await > 0,
        "nothing may be ACKed while the database is down"
    );
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(cut_at.elapsed())).await;
    assert!(
        p.child.try_status().is_none(),
        "the processor must not exit during an outage"
    );
    proxy.restore().await;

    env.wait_drained(3000, Duration::from_secs(30)).await;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            p.get("/readyz").await.0 == 200
        })
        .await,
        "/readyz after the outage: {:?}",
        p.get("/readyz").await
    );
    assert_eq!(env.rows().await, 3000);
    assert_eq!(env.distinct_rows().await, 3000);
    assert!(env.dead_letters().await.is_empty());
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_postgres_outage_dead_letters_only_the_malformed_entry() {
    let Some(env) = Env::new().await else { return };
    let proxy = TcpProxy::start(env.pg.host_port()).await;
    // One delivery allowed: an entry judged failed is dead-lettered at its first delivery, so
    // a good record whose write the stop abandons must be answered as not judged.
    let mut p = env
        .spawn(
            "pg-outage-stop-1",
            &[
                ("DATABASE_URL", &env.pg.url_via(&proxy)),
                ("REDIS_MAX_DELIVERIES", "1"),
                ("SHUTDOWN_TIMEOUT_MS", "5000"),
            ],
        )
        .await;
    let all = support::records(5, 101);
    env.add(&all[..1]).await;
    env.wait_drained(1, Duration::from_secs(20)).await;

    proxy.cut().await;
    let mut fields = encode_entry(&support::record(9, 0), EntryCodec::Codec8);
    let payload = fields.iter_mut().find(|(k, _)| *k == "payload").unwrap();
    assert!(payload.1.contains("41.3275"), "{}", payload.1);
    payload.1 = payload.1.replace("41.3275", "91.5");
    let bad = env.add_raw(fields).await;
    let good = env.add(&all[1..]).await;
    // Entries are read in order, so the first read holds the malformed entry; the good
    // records in it wait out the outage inside the write.
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            env.pending().await > 0
        })
        .await,
        "nothing read"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = p.stop().await;
    assert_eq!(status.code(), Some(0), "{}", p.child.output());

    let dead = env.dead_letters().await;
    assert_eq!(dead.len(), 1, "only the malformed entry: {dead:?}");
    let fields: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(fields["source_id"], bad);
    let pending = env.pending_entries().await;
    assert!(
        !pending.is_empty() && pending.iter().all(|(id, _)| good.contains(id)),
        "the abandoned good records stay pending for the next start: {pending:?}"
    );

    proxy.restore().await;
    p.restart().await;
    env.wait_drained(101, Duration::from_secs(30)).await;
    assert_eq!(env.distinct_rows().await, 101);
    assert_eq!(env.dead_letters().await.len(), 1);
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_survived_by_reconnecting() {
    let Some(env) = Env::new().await else { return };
    // A proxy in front of Redis: cutting it drops every connection and refuses new ones,
    // as a restarting server does; the data (group, pending entries) stays on the server.
    let proxy = TcpProxy::start(env.redis.host_port()).await;
    let mut p = env
        .spawn(
            "redis-outage-1",
            &[
                ("REDIS_URL", &env.redis.url_via(&proxy)),
                ("REDIS_READ_COUNT", "200"),
            ],
        )
        .await;
    let all = support::records(20, 3000);
    env.add(&all[..1000]).await;
    env.wait_drained(1000, Duration::from_secs(20)).await;

    proxy.cut().await;
    env.add(&all[1000..2000]).await;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            let (status, body) = p.get("/readyz").await;
            status == 503 && body.contains("\"redis\"")
        })
        .await,
        "/readyz during the outage: {:?}",
        p.get("/readyz").await
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore().await;
    env.add(&all[2000..]).await;

    env.wait_drained(3000, Duration::from_secs(30)).await;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            p.get("/readyz").await.0 == 200
        })
        .await
    );
    assert_eq!(env.distinct_rows().await, 3000);
    assert_eq!(env.rows().await, 3000);
    assert!(p.child.try_status().is_none());
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived_and_pending_entries_are_kept() {
    let Some(mut server) = OwnedRedis::start(RedisOptions { appendonly: true }) else {
        return;
    };
    let Some(mut env) = Env::on_redis(&server.url()).await else {
        return;
    };
    let mut p = env
        .spawn("redis-restart-1", &[("REDIS_READ_COUNT", "200")])
        .await;
    let all = support::records(20, 4000);
    env.add(&all[..2000]).await;
    // Restart while the backlog is being worked on: some entries are pending at that moment.
    assert!(
        support::eventually(Duration::from_secs(20), || async {
            env.rows().await >= 200
        })
        .await
    );
    server.stop();
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            let (status, body) = p.get("/readyz").await;
            status == 503 && body.contains("\"redis\"")
        })
        .await,
        "/readyz while Redis is down: {:?}",
        p.get("/readyz").await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.start_again();
    env.reconnect().await;
    env.add(&all[2000..]).await;

    env.wait_drained(4000, Duration::from_secs(40)).await;
    assert_eq!(env.rows().await, 4000);
    assert_eq!(env.distinct_rows().await, 4000);
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            p.get("/readyz").await.0 == 200
        })
        .await
    );
    assert!(
        p.child.try_status().is_none(),
        "no restart of the processor needed"
    );
    assert!(p.stop().await.success());
}

/// Keeps the helper used by the tests above next to them.
impl Env {
    async fn wait_drained_rows(&self, rows: i64) {
        assert!(
            support::eventually(Duration::from_secs(20), || async {
                self.rows().await >= rows
            })
            .await,
            "rows: {}",
            self.rows().await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_only_postgres_while_the_start_up_waits_for_it() {
    let Some(env) = Env::new().await else { return };
    let proxy = TcpProxy::start(env.pg.host_port()).await;
    proxy.cut().await;
    let mut vars = env.env("startup-pg-down-1");
    vars.retain(|(name, _)| name != "DATABASE_URL");
    vars.push(("DATABASE_URL".to_owned(), env.pg.url_via(&proxy)));
    let mut child = test_support::ChildProcess::spawn(env!("CARGO_BIN_EXE_processor"), vars);
    let line = child
        .wait_for_json(
            |v| v["message"] == "metrics server listening",
            Duration::from_secs(30),
        )
        .await;
    let addr: std::net::SocketAddr = line["addr"].as_str().unwrap().parse().unwrap();

    // Redis is up: only PostgreSQL may be named while the migrations wait for it.
    let expected = r#"{"status":"unavailable","failing":["postgres"]}"#;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            support::http_get(addr, "/readyz").await == (503, expected.to_owned())
        })
        .await,
        "/readyz while PostgreSQL is down at start-up: {:?}",
        support::http_get(addr, "/readyz").await
    );

    proxy.restore().await;
    child
        .wait_for_json(
            |v| v["message"] == "processor running",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        support::eventually(Duration::from_secs(10), || async {
            support::http_get(addr, "/readyz").await.0 == 200
        })
        .await
    );
    child.sigterm();
    assert_eq!(child.wait(Duration::from_secs(30)).await.code(), Some(0));
}
