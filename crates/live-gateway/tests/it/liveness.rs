//! Heartbeats, session re-validation and shutdown.

use std::time::Duration;

use crate::client::{Event, Options, connect};
use crate::common::{Env, SESSION, cookie, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_gets_ping_and_keepalive() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(300);
    let server = env.start(config).await;
    let mut ws = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    let mut pings = 0;
    let mut keepalives = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline && (pings < 2 || keepalives < 2) {
        match ws.next_event(Duration::from_secs(2)).await {
            Some(Event::Ping) => pings += 1,
            Some(Event::Message(message)) => {
                assert_eq!(message["type"], "keepalive");
                assert!(message["ts"].as_i64().unwrap() > 1_600_000_000_000);
                assert_eq!(message.as_object().unwrap().len(), 2);
                keepalives += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        pings >= 2 && keepalives >= 2,
        "pings {pings}, keepalives {keepalives}"
    );
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_connection_gets_no_keepalive() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(400);
    let server = env.start(config).await;
    let mut ws = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    // Keep the connection busy with replies: one message every 100 ms.
    let mut keepalives = 0;
    for id in 0..15 {
        ws.unsubscribe("8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11", id)
            .await;
        let deadline = std::time::Instant::now() + Duration::from_millis(100);
        while let Some(event) = ws
            .next_event(deadline.saturating_duration_since(std::time::Instant::now()))
            .await
        {
            if let Event::Message(message) = event
                && message["type"] == "keepalive"
            {
                keepalives += 1;
            }
        }
    }
    // The first interval may start before the first message; after that, never.
    assert!(keepalives <= 1, "keepalives while busy: {keepalives}");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_pong_closes_1008() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(300);
    let server = env.start(config).await;
    let mut options = Options::cookie(&cookie(SESSION));
    options.auto_pong = false;
    let mut silent = connect(server.addr, options).await.unwrap();
    let mut polite = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    assert_eq!(silent.closed(Duration::from_secs(5)).await, 1008);
    // The one answering pings stays.
    let events = polite.collect_for(Duration::from_millis(800)).await;
    assert!(events.iter().all(|m| m["type"] == "keepalive"));
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pong_sent_before_the_ping_does_not_answer_it() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.ping_interval = Duration::from_millis(300);
    let server = env.start(config).await;
    let mut options = Options::cookie(&cookie(SESSION));
    options.auto_pong = false;
    let mut ws = connect(server.addr, options).await.unwrap();
    // An unsolicited pong at once, then silence: the first ping is never answered, so the
    // tick after it closes the connection (not one interval later).
    ws.send_frame(fastwebsockets::Frame::pong(fastwebsockets::Payload::Owned(
        Vec::new(),
    )))
    .await;
    let mut pings = 0;
    let code = loop {
        match ws.next_event(Duration::from_secs(5)).await {
            Some(Event::Ping) => pings += 1,
            Some(Event::Message(message)) => assert_eq!(message["type"], "keepalive"),
            Some(Event::Close(code)) => break code,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, 1008);
    assert_eq!(pings, 1, "closed after {pings} unanswered pings");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_closes_4401_when_the_session_is_revoked() {
    let Some(env) = Env::new().await else { return };
    env.stub.add_cookie("session-bob", &env.user);
    let mut config = test_config();
    config.revalidate_interval = Some(Duration::from_millis(300));
    let server = env.start(config).await;
    let mut ana = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();
    let mut bob = connect(server.addr, Options::cookie(&cookie("session-bob")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.stub.revoke("session-bob");
    assert_eq!(bob.closed(Duration::from_secs(5)).await, 4401);
    let events = ana.collect_for(Duration::from_millis(800)).await;
    assert!(events.iter().all(|m| m["type"] == "keepalive"));
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_is_not_hidden_by_the_directus_cache() {
    let Some(env) = Env::new().await else { return };
    env.stub.add_cookie("session-cat", &env.user);
    let mut config = test_config();
    config.revalidate_interval = Some(Duration::from_millis(300));
    // The upgrade's answer stays cached far longer than the re-validation interval.
    let server = env.start_with(config, Duration::from_secs(60)).await;
    let mut cat = connect(server.addr, Options::cookie(&cookie("session-cat")))
        .await
        .unwrap();
    env.stub.revoke("session-cat");
    assert_eq!(cat.closed(Duration::from_secs(5)).await, 4401);
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_1001_to_everyone_and_returns() {
    let Some(env) = Env::new().await else { return };
    let server = env.start(test_config()).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(
            connect(server.addr, Options::cookie(&cookie(SESSION)))
                .await
                .unwrap(),
        );
    }
    server.cancel.cancel();
    for ws in &mut clients {
        assert_eq!(ws.closed(Duration::from_secs(5)).await, 1001);
    }
    let result = tokio::time::timeout(Duration::from_secs(10), server.task).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "serve did not return cleanly: {result:?}"
    );
    // No longer accepting.
    assert!(
        connect(server.addr, Options::cookie(&cookie(SESSION)))
            .await
            .is_err()
    );
}
