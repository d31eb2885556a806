//! Fan-out: several clients, several events per device, orphans, undecodable records.

use std::time::Duration;

use crate::client::{Options, connect};
use crate::common::{Env, SESSION, cookie, imei, metric, now_ms, test_config};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_both_receive_and_orphans_reach_no_one() {
    let Some(env) = Env::new().await else { return };
    let a = imei(10, 1);
    let event = env.event("Both", &[&a]).await;
    let server = env.start(test_config()).await;
    let mut one = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    let mut two = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    for ws in [&mut one, &mut two] {
        ws.subscribe(&event, 1).await;
        assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    }
    let orphans = metric("processor_live_broadcast_orphan_records_total", &[]);
    let decode_errors = metric("processor_live_decode_errors_total", &[]);
    let records = metric("processor_live_broadcast_records_total", &[]);

    // An orphan and an undecodable record first, then a real one: only the real one arrives.
    env.xadd(&imei(10, 999), now_ms(), 1.0, 1.0, 0, 0).await;
    env.xadd_raw(vec![
        ("device_id", a.clone()),
        ("payload", "{not json".to_owned()),
    ])
    .await;
    let ts = now_ms();
    env.xadd(&a, ts, 2.0, 2.0, 5, 5).await;
    for ws in [&mut one, &mut two] {
        let position = ws.next_non_keepalive(WAIT).await;
        assert_eq!(position["deviceId"], a.as_str());
        assert_eq!(position["ts"], ts);
        let rest = ws.collect_for(Duration::from_millis(300)).await;
        assert!(rest.iter().all(|m| m["type"] == "keepalive"), "{rest:?}");
    }
    assert!(metric("processor_live_broadcast_orphan_records_total", &[]) >= orphans + 1.0);
    assert!(metric("processor_live_decode_errors_total", &[]) >= decode_errors + 1.0);
    assert!(metric("processor_live_broadcast_records_total", &[]) >= records + 3.0);
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_in_two_events_reaches_both_topics() {
    let Some(env) = Env::new().await else { return };
    let a = imei(11, 1);
    let e1 = env.event("Stage one", &[&a]).await;
    let e2 = env.event("Stage two", &[]).await;
    env.register_existing(&e2, &a).await;
    let server = env.start(test_config()).await;
    let mut ws = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    let mut other = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    ws.subscribe(&e1, 1).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    ws.subscribe(&e2, 2).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    other.subscribe(&e2, 1).await;
    assert_eq!(other.next_non_keepalive(WAIT).await["type"], "subscribed");

    let ts = now_ms();
    env.xadd(&a, ts, 1.0, 1.0, 0, 0).await;
    let mut topics = vec![
        ws.next_non_keepalive(WAIT).await["topic"]
            .as_str()
            .unwrap()
            .to_owned(),
        ws.next_non_keepalive(WAIT).await["topic"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    topics.sort();
    let mut expected = vec![format!("event:{e1}"), format!("event:{e2}")];
    expected.sort();
    assert_eq!(topics, expected);
    assert_eq!(
        other.next_non_keepalive(WAIT).await["topic"],
        format!("event:{e2}")
    );
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_close_together_wait_for_the_coalescing_window_and_none_is_stranded() {
    let Some(env) = Env::new().await else { return };
    let a = imei(12, 1);
    let event = env.event("Coalesced", &[&a]).await;
    let window = Duration::from_millis(1500);
    let config = live_gateway::LiveConfig {
        coalesce_window: window,
        ..test_config()
    };
    let server = env.start(config).await;
    let mut ws = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    ws.subscribe(&event, 1).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");

    // After a quiet period the first position goes out at once…
    let first = now_ms();
    let xadd_at = std::time::Instant::now();
    env.xadd(&a, first, 1.0, 1.0, 0, 0).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["ts"], first);
    assert!(
        xadd_at.elapsed() < window,
        "the first position waited {:?}, a full window",
        xadd_at.elapsed()
    );
    // …the next ones, within the window, wait for its end (no later record flushes them: the
    // window's timer must), and arrive in order.
    let second = first + 1;
    let third = first + 2;
    env.xadd(&a, second, 2.0, 2.0, 0, 0).await;
    env.xadd(&a, third, 3.0, 3.0, 0, 0).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["ts"], second);
    let waited = xadd_at.elapsed();
    assert_eq!(ws.next_non_keepalive(WAIT).await["ts"], third);
    assert!(
        waited >= window - Duration::from_millis(200),
        "the second position arrived after {waited:?}, inside the {window:?} window"
    );
    server.cancel.cancel();
}
