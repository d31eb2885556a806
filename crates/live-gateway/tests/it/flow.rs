//! Ordering around the snapshot, and slow clients versus fast ones.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::client::{Event, Options, connect};
use crate::common::{Env, SESSION, cookie, imei, metric, now_ms, test_config};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_position_before_subscribed_and_none_lost_in_the_gap() {
    let Some(env) = Env::new().await else { return };
    let devices: Vec<String> = (0..5).map(|n| imei(20, n)).collect();
    let refs: Vec<&str> = devices.iter().map(String::as_str).collect();
    let event = env.event("Ordering", &refs).await;
    let server = env.start(test_config()).await;
    let mut ws = connect(server.addr, Options::cookie(&cookie(SESSION)))
        .await
        .unwrap();

    // Hold the snapshot query for a while: positions keep arriving during the pending phase.
    let blocker = env.pg.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE positions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    // A producer streams positions for every device, numbered by ts.
    let base = now_ms();
    let producer = {
        let env_stream = env.stream.clone();
        let client = env.redis.client().await;
        let devices = devices.clone();
        tokio::spawn(async move {
            for round in 0..60i64 {
                for device in &devices {
                    let fields = crate::common::record_fields(device, base + round, 1.0, 1.0, 1, 1);
                    let _: String = fred::prelude::StreamsInterface::xadd(
                        &client,
                        &env_stream,
                        false,
                        None,
                        "*",
                        fields,
                    )
                    .await
                    .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.subscribe(&event, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.batch_execute("COMMIT").await.unwrap();
    producer.await.unwrap();

    let first = ws.next_non_keepalive(WAIT).await;
    assert_eq!(
        first["type"], "subscribed",
        "a position came before subscribed: {first}"
    );
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for message in ws.collect_for(Duration::from_secs(1)).await {
        if message["type"] == "position" {
            seen.entry(message["deviceId"].as_str().unwrap().to_owned())
                .or_default()
                .push(message["ts"].as_i64().unwrap());
        }
    }
    for device in &devices {
        let got = seen
            .get(device)
            .unwrap_or_else(|| panic!("nothing for {device}"));
        // After the first position (the buffered, conflated one), every later record arrives,
        // in order, up to the last one produced.
        for pair in got.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "gap or reorder for {device}: {got:?}");
        }
        assert_eq!(
            *got.last().unwrap(),
            base + 59,
            "{device} did not end on the latest"
        );
        assert!(
            got[0] > base,
            "the pending phase buffered nothing for {device}: {got:?}"
        );
    }
    server.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_gets_latest_per_device_and_never_delays_a_fast_one() {
    let Some(env) = Env::new().await else { return };
    let devices: Vec<String> = (0..20).map(|n| imei(21, n)).collect();
    let refs: Vec<&str> = devices.iter().map(String::as_str).collect();
    let event = env.event("Slow", &refs).await;
    let mut config = test_config();
    config.slow_client_timeout = Duration::from_secs(300);
    // Room for a burst of whole consumer batches while a starved writer waits for a core.
    config.max_queued_positions = 8192;
    let server = env.start(config).await;
    // The fast client's socket can hold the whole burst: the server never waits for it (this
    // test's client parses every message in a debug build on a shared machine).
    let mut fast_options = Options::cookie(&cookie(SESSION));
    fast_options.recv_buffer = Some(4 << 20);
    let mut fast = connect(server.addr, fast_options).await.unwrap();
    let mut slow_options = Options::cookie(&cookie(SESSION));
    slow_options.recv_buffer = Some(4096);
    let mut slow = connect(server.addr, slow_options).await.unwrap();
    for ws in [&mut fast, &mut slow] {
        ws.subscribe(&event, 1).await;
        assert_eq!(ws.next_non_keepalive(WAIT).await["type"], "subscribed");
    }
    slow.pause(true);
    let conflated = metric(
        "processor_live_positions_dropped_total",
        &["reason=\"conflated\""],
    );
    let overflow = metric(
        "processor_live_positions_dropped_total",
        &["reason=\"overflow\""],
    );

    // Enough data to fill the slow client's socket buffers many times over.
    let rounds = 3000i64;
    let base = now_ms();
    publish_rounds(&env, &devices, rounds, base).await;
    let produced_at = Instant::now();

    // The fast client gets every record, in order, promptly.
    let mut fast_seen: HashMap<String, i64> = HashMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count < rounds as usize * devices.len() {
        assert!(
            Instant::now() < deadline,
            "fast client stalled after {count}"
        );
        let message = fast.next_non_keepalive(WAIT).await;
        if message["type"] == "position" {
            let device = message["deviceId"].as_str().unwrap().to_owned();
            let ts = message["ts"].as_i64().unwrap();
            if let Some(previous) = fast_seen.insert(device, ts) {
                assert_eq!(ts, previous + 1, "fast client missed or reordered");
            }
            count += 1;
        }
    }
    let fast_done = produced_at.elapsed();
    assert!(
        fast_done < Duration::from_secs(10),
        "fast client delayed: {fast_done:?}"
    );

    // The slow client resumes and ends with the latest position of every device.
    slow.pause(false);
    let mut latest: HashMap<String, i64> = HashMap::new();
    let mut slow_count = 0usize;
    loop {
        match slow.next_event(Duration::from_secs(2)).await {
            Some(Event::Message(message)) if message["type"] == "position" => {
                slow_count += 1;
                let device = message["deviceId"].as_str().unwrap().to_owned();
                let ts = message["ts"].as_i64().unwrap();
                let previous = latest.insert(device, ts);
                assert!(
                    previous.is_none_or(|p| p < ts),
                    "slow client went back in time"
                );
            }
            Some(Event::Message(_) | Event::Ping) => {}
            Some(other) => panic!("slow client: {other:?}"),
            None => break,
        }
    }
    for device in &devices {
        assert_eq!(
            latest.get(device),
            Some(&(base + rounds - 1)),
            "slow client lacks the latest of {device}"
        );
    }
    println!(
        "slow client received {slow_count} of {} positions",
        rounds as usize * devices.len()
    );
    assert!(
        slow_count < rounds as usize * devices.len(),
        "nothing was conflated ({slow_count})"
    );
    let dropped = metric(
        "processor_live_positions_dropped_total",
        &["reason=\"conflated\""],
    ) - conflated
        + metric(
            "processor_live_positions_dropped_total",
            &["reason=\"overflow\""],
        )
        - overflow;
    assert!(dropped > 0.0);
    server.cancel.cancel();
}

/// XADDs `rounds` positions of every device (`ts` = `base + round`), round after round.
async fn publish_rounds(env: &Env, devices: &[String], rounds: i64, base: i64) {
    let client = env.redis.client().await;
    // Ten rounds per pipeline: fred sends commands in call order, so per-device order holds.
    for chunk in 0..rounds / 10 {
        let mut pipeline = Vec::new();
        for device in devices.iter().cycle().take(devices.len() * 10) {
            let round = chunk * 10 + (pipeline.len() / devices.len()) as i64;
            let fields = crate::common::record_fields(device, base + round, 1.0, 1.0, 1, 1);
            pipeline.push(fred::prelude::StreamsInterface::xadd::<String, _, _, _, _>(
                &client,
                &env.stream,
                false,
                None,
                "*",
                fields,
            ));
        }
        for r in futures_util::future::join_all(pipeline).await {
            r.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_accepts_nothing_is_closed_1008_after_whole_frames() {
    let Some(env) = Env::new().await else { return };
    let devices: Vec<String> = (0..20).map(|n| imei(22, n)).collect();
    let refs: Vec<&str> = devices.iter().map(String::as_str).collect();
    let event = env.event("Stalled", &refs).await;
    let mut config = test_config();
    config.slow_client_timeout = Duration::from_secs(1);
    // The stalled client's time to read again and see its close (the burst below takes a few
    // seconds in a debug build, and the time-out may fire during it).
    config.close_handshake_timeout = Duration::from_secs(15);
    let server = env.start(config).await;
    let mut options = Options::cookie(&cookie(SESSION));
    options.recv_buffer = Some(4096);
    let mut stalled = connect(server.addr, options).await.unwrap();
    stalled.subscribe(&event, 1).await;
    assert_eq!(stalled.next_non_keepalive(WAIT).await["type"], "subscribed");
    stalled.pause(true);

    // Far more than the socket buffers hold: the writer stops in the middle of a batch, most
    // likely in the middle of a frame.
    publish_rounds(&env, &devices, 3000, now_ms()).await;
    // Past the slow-client time-out (the socket took nothing since the buffers filled).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Reading again: whole frames up to the close 1008, never a cut frame or a bare EOF.
    stalled.pause(false);
    let mut positions = 0;
    let code = loop {
        match stalled.next_event(Duration::from_secs(10)).await {
            Some(Event::Message(message)) => {
                if message["type"] == "position" {
                    positions += 1;
                }
            }
            Some(Event::Ping) => {}
            Some(Event::Close(code)) => break code,
            other => panic!("after {positions} positions: {other:?} instead of close 1008"),
        }
    };
    assert_eq!(code, 1008);
    assert!(positions > 0);
    server.cancel.cancel();
}
