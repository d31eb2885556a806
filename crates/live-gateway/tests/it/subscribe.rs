//! Subscribe/unsubscribe: snapshot, authorization outcomes, strict parsing, limits.

use std::time::Duration;

use serde_json::json;

use crate::client::{Client, Options, connect};
use crate::common::{Env, SESSION, cookie, imei, metric, now_ms, test_config};

const WAIT: Duration = Duration::from_secs(5);

async fn client(env: &Env, addr: std::net::SocketAddr) -> Client {
    let _ = env;
    connect(addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_snapshot_then_live_position() {
    let Some(env) = Env::new().await else { return };
    let (a, b, c) = (imei(1, 1), imei(1, 2), imei(1, 3));
    let event = env.event("Rally Albania", &[&a, &b, &c]).await;
    env.position_row(
        &a,
        1_714_647_500_000,
        41.1,
        19.1,
        Some(80.0),
        Some(90.0),
        false,
    )
    .await;
    env.position_row(
        &a,
        1_714_647_600_000,
        41.3275,
        19.8187,
        Some(86.0),
        Some(270.0),
        false,
    )
    .await;
    env.position_row(&b, 1_714_647_600_500, 40.5, 20.5, None, None, false)
        .await;
    // c has no position: omitted from the snapshot.
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;

    ws.subscribe(&event, 1).await;
    let mut subscribed = ws.next_non_keepalive(WAIT).await;
    let snapshot = subscribed["snapshot"].as_array_mut().unwrap();
    snapshot.sort_by_key(|p| p["deviceId"].as_str().unwrap().to_owned());
    assert_eq!(
        subscribed,
        json!({
            "type": "subscribed",
            "topic": format!("event:{event}"),
            "id": 1,
            "snapshot": [
                {"deviceId": a, "ts": 1_714_647_600_000i64, "lat": 41.3275, "lon": 19.8187, "speed": 86, "course": 270},
                {"deviceId": b, "ts": 1_714_647_600_500i64, "lat": 40.5, "lon": 20.5},
            ]
        })
    );

    let ts = now_ms();
    let sent = std::time::Instant::now();
    env.xadd(&c, ts, 41.5, 19.5, 42, 180).await;
    let position = ws.next_non_keepalive(Duration::from_secs(1)).await;
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(
        position,
        json!({"type": "position", "topic": format!("event:{event}"), "deviceId": c, "ts": ts, "lat": 41.5, "lon": 19.5, "speed": 42, "course": 180})
    );
    // Speed and course 0 are omitted.
    env.xadd(&c, ts + 1000, 41.6, 19.6, 0, 0).await;
    let position = ws.next_non_keepalive(WAIT).await;
    assert_eq!(
        position,
        json!({"type": "position", "topic": format!("event:{event}"), "deviceId": c, "ts": ts + 1000, "lat": 41.6, "lon": 19.6})
    );
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_latest_position_is_skipped() {
    let Some(env) = Env::new().await else { return };
    let (a, b) = (imei(2, 1), imei(2, 2));
    let event = env.event("Enduro", &[&a, &b]).await;
    env.position_row(&a, 1_000_000, 1.0, 1.0, Some(10.0), None, false)
        .await;
    env.position_row(&a, 2_000_000, 2.0, 2.0, Some(20.0), None, true)
        .await;
    env.position_row(&b, 3_000_000, 3.0, 3.0, None, None, true)
        .await;
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;
    ws.subscribe(&event, 7).await;
    let subscribed = ws.next_non_keepalive(WAIT).await;
    assert_eq!(
        subscribed["snapshot"],
        json!([{"deviceId": a, "ts": 1_000_000, "lat": 1.0, "lon": 1.0, "speed": 10}])
    );
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_outcomes() {
    let Some(env) = Env::new().await else { return };
    let allowed = env.event("Allowed", &[&imei(3, 1)]).await;
    let seed = test_support::Seed::new(&env.pg).await;
    let org = seed.organization("other").await;
    let forbidden = seed.event(&org, "Forbidden").await;
    let missing = test_support::Seed::uuid();
    env.stub.mark_missing(&missing);
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;

    let before = metric("processor_live_subscribe_total", &["result=\"forbidden\""]);
    ws.subscribe(&forbidden, 1).await;
    assert_eq!(
        ws.next_non_keepalive(WAIT).await,
        json!({"type": "error", "code": "forbidden", "topic": format!("event:{forbidden}"), "id": 1, "message": "not allowed to view this event"})
    );
    assert!(metric("processor_live_subscribe_total", &["result=\"forbidden\""]) >= before + 1.0);

    ws.subscribe(&missing, 2).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["code"], "not-found");
    assert_eq!(reply["id"], 2);

    // Directus down: `error`, the connection stays.
    env.stub.set_failing(true);
    ws.send_text(&format!(
        r#"{{"type":"subscribe","topic":"event:{allowed}","id":"s3"}}"#
    ))
    .await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "error");
    assert_eq!(reply["id"], "s3");
    env.stub.set_failing(false);
    // Uppercase topic accepted and normalised.
    ws.send_text(&format!(
        r#"{{"type":"subscribe","topic":"event:{}","id":4}}"#,
        allowed.to_uppercase()
    ))
    .await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(reply["topic"], format!("event:{allowed}"));
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_are_answered_and_the_connection_kept() {
    let Some(env) = Env::new().await else { return };
    let event = env.event("Strict", &[&imei(4, 1)]).await;
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;

    let cases = [
        ("not json", "invalid-message", serde_json::Value::Null),
        (
            r#"{"type":"subscribe","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","id":5,"extra":1}"#,
            "invalid-message",
            json!(5),
        ),
        (r#"{"type":"dance","id":6}"#, "invalid-message", json!(6)),
        (
            r#"{"type":"subscribe","topic":"room:1","id":7}"#,
            "invalid-topic",
            json!(7),
        ),
        (
            r#"{"type":"subscribe","topic":"event:not-a-uuid","id":"x"}"#,
            "invalid-topic",
            json!("x"),
        ),
        (r#"[1,2]"#, "invalid-message", serde_json::Value::Null),
        // An id is a string or an integer: `null` is a wrong type.
        (
            r#"{"type":"unsubscribe","topic":"event:8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11","id":null}"#,
            "invalid-message",
            serde_json::Value::Null,
        ),
    ];
    for (text, code, id) in cases {
        ws.send_text(text).await;
        let reply = ws.next_non_keepalive(WAIT).await;
        assert_eq!(reply["type"], "error", "{text}");
        assert_eq!(reply["code"], code, "{text}");
        assert_eq!(reply["id"], id, "{text}");
    }
    // A text frame that is not UTF-8 → invalid-message, kept (whole or in fragments).
    ws.send_frame(fastwebsockets::Frame::text(fastwebsockets::Payload::Owned(
        b"{\"type\":\"\xff\xfe\"}".to_vec(),
    )))
    .await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["code"], "invalid-message");
    assert_eq!(reply["message"], "the text is not valid UTF-8");
    ws.send_frame(fastwebsockets::Frame::new(
        false,
        fastwebsockets::OpCode::Text,
        None,
        fastwebsockets::Payload::Owned(b"{\"type\":\"".to_vec()),
    ))
    .await;
    ws.send_frame(fastwebsockets::Frame::new(
        true,
        fastwebsockets::OpCode::Continuation,
        None,
        fastwebsockets::Payload::Owned(b"\xc3\"}".to_vec()),
    ))
    .await;
    assert_eq!(
        ws.next_non_keepalive(WAIT).await["message"],
        "the text is not valid UTF-8"
    );
    // Binary frame → invalid-message.
    ws.send_frame(fastwebsockets::Frame::binary(
        fastwebsockets::Payload::Owned(b"{}".to_vec()),
    ))
    .await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["code"], "invalid-message");
    // A message over 4 KiB (but under the frame limit) → invalid-message, kept.
    let big = format!(
        r#"{{"type":"subscribe","topic":"event:{event}","id":8,"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    ws.send_text(&big).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["code"], "invalid-message");
    // Still usable.
    ws.subscribe(&event, 9).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(reply["id"], 9);

    // The frame limit is 64 KiB: one byte below it is still just an over-long message…
    ws.send_text(&"x".repeat(64 * 1024 - 1)).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["code"], "invalid-message");
    // …a frame of exactly 64 KiB (or more) → close 1009.
    ws.send_text(&"x".repeat(64 * 1024)).await;
    assert_eq!(ws.closed(WAIT).await, 1009);
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_subscriptions() {
    let Some(env) = Env::new().await else { return };
    let e1 = env.event("One", &[&imei(5, 1)]).await;
    let e2 = env.event("Two", &[&imei(5, 2)]).await;
    let e3 = env.event("Three", &[&imei(5, 3)]).await;
    let mut config = test_config();
    config.max_subscriptions = 2;
    let server = env.start(config).await;
    let mut ws = client(&env, server.addr).await;
    for (i, e) in [&e1, &e2].into_iter().enumerate() {
        ws.subscribe(e, i as i64).await;
        assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    }
    // Re-subscribing a held topic is fine at the limit.
    ws.subscribe(&e1, 10).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    ws.subscribe(&e3, 11).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["code"], "too-many-subscriptions");
    assert_eq!(reply["id"], 11);
    // Freeing one makes room.
    ws.unsubscribe(&e2, 12).await;
    assert_eq!(
        ws.next_non_keepalive(WAIT).await,
        json!({"type": "unsubscribed", "topic": format!("event:{e2}"), "id": 12})
    );
    ws.subscribe(&e3, 13).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_then_closed_1008() {
    let Some(env) = Env::new().await else { return };
    let mut config = test_config();
    config.rate_limit = live_gateway::RateLimit {
        burst: 5,
        refill_every: Duration::from_secs(60),
        strikes: 3,
    };
    let server = env.start(config).await;
    let mut ws = client(&env, server.addr).await;
    let topic = "8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11";
    for id in 0..5 {
        ws.unsubscribe(topic, id).await;
        assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "unsubscribed");
    }
    ws.unsubscribe(topic, 5).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    // Like every error, it names the request's (valid) topic and echoes its id.
    assert_eq!(
        reply,
        json!({"type": "error", "code": "rate-limited", "topic": format!("event:{topic}"), "id": 5, "message": "over the inbound message rate"})
    );
    ws.unsubscribe(topic, 6).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["code"], "rate-limited");
    ws.unsubscribe(topic, 7).await;
    assert_eq!(ws.closed(WAIT).await, 1008);
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscribe_is_idempotent_and_unsubscribe_stops_delivery() {
    let Some(env) = Env::new().await else { return };
    let a = imei(6, 1);
    let event = env.event("Idem", &[&a]).await;
    env.position_row(&a, 5_000, 1.0, 2.0, None, None, false)
        .await;
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;
    ws.subscribe(&event, 1).await;
    assert_eq!(
        ws.next_non_keepalive(WAIT).await["snapshot"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ws.subscribe(&event, 2).await;
    let again = ws.next_non_keepalive(WAIT).await;
    assert_eq!(again["type"], "subscribed");
    assert_eq!(again["id"], 2);
    assert_eq!(again["snapshot"][0]["deviceId"], a.as_str());

    let ts = now_ms();
    env.xadd(&a, ts, 3.0, 4.0, 1, 1).await;
    let position = ws.next_non_keepalive(WAIT).await;
    assert_eq!(position["ts"], ts);
    // Exactly one frame for that record.
    let extra = ws.collect_for(Duration::from_millis(500)).await;
    assert!(extra.iter().all(|m| m["type"] == "keepalive"), "{extra:?}");

    ws.unsubscribe(&event, 3).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "unsubscribed");
    env.xadd(&a, ts + 1, 3.0, 4.0, 1, 1).await;
    let after = ws.collect_for(Duration::from_millis(700)).await;
    assert!(after.iter().all(|m| m["type"] != "position"), "{after:?}");
    // Unsubscribing a topic not held still answers.
    ws.unsubscribe(&event, 4).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["id"], 4);
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_failure_fails_open() {
    let Some(env) = Env::new().await else { return };
    let a = imei(7, 1);
    let event = env.event("Open", &[&a]).await;
    let server = env.start(test_config()).await;
    // Break the snapshot query (positions vanish) after the device map loaded.
    env.pg
        .execute("ALTER TABLE positions RENAME TO positions_gone")
        .await;
    let errors = metric("processor_live_snapshot_errors_total", &[]);
    let mut ws = client(&env, server.addr).await;
    ws.subscribe(&event, 1).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(
        reply,
        json!({"type": "subscribed", "topic": format!("event:{event}"), "id": 1, "snapshot": []})
    );
    assert!(metric("processor_live_snapshot_errors_total", &[]) >= errors + 1.0);
    // Live positions still flow.
    env.xadd(&a, now_ms(), 1.0, 1.0, 0, 0).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "position");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_resubscribe_ends_the_held_subscription() {
    let Some(env) = Env::new().await else { return };
    let a = imei(8, 1);
    let event = env.event("Revoked", &[&a]).await;
    let server = env.start(test_config()).await;
    let mut ws = client(&env, server.addr).await;
    ws.subscribe(&event, 1).await;
    assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");

    // The user loses access; a re-subscribe is refused…
    env.stub.disallow(&env.user.id, &event);
    ws.subscribe(&event, 2).await;
    let reply = ws.next_non_keepalive(WAIT).await;
    assert_eq!(reply["code"], "forbidden");
    assert_eq!(reply["id"], 2);
    // …and no position of that event reaches the client any more.
    env.xadd(&a, now_ms(), 1.0, 1.0, 5, 5).await;
    let after = ws.collect_for(Duration::from_millis(800)).await;
    assert!(after.iter().all(|m| m["type"] != "position"), "{after:?}");
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_close_frame_is_checked_before_it_is_echoed() {
    let Some(env) = Env::new().await else { return };
    let server = env.start(test_config()).await;
    let cases: [(u16, &[u8], u16); 4] = [
        (1000, b"bye", 1000),
        (4000, b"", 4000),
        // 1005 may not be sent in a Close frame: protocol error.
        (1005, b"", 1002),
        // A reason that is not UTF-8.
        (1000, b"\xff\xfe", 1007),
    ];
    for (code, reason, expected) in cases {
        let ws = client(&env, server.addr).await;
        ws.send_frame(fastwebsockets::Frame::close(code, reason))
            .await;
        let mut ws = ws;
        assert_eq!(ws.closed(WAIT).await, expected, "close {code} {reason:?}");
    }
    server.cancel.cancel();
}
