//! The durable path's happy path and idempotency.

use std::time::Duration;

use base64::Engine as _;
use teltonika_codec::stream_record::{AttributeValue, StreamRecord};

use crate::support::{self, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attribute_form_lands_with_exact_values() {
    let Some(env) = Env::new().await else { return };
    let mut p = env.spawn("happy-1", &[]).await;

    let mut full = support::record(1, 0);
    full.attributes = vec![
        (1, AttributeValue::Number(0)),
        (21, AttributeValue::Number(-5)),
        (66, AttributeValue::Number(4_294_967_295)),
        (16, AttributeValue::BigInt(i128::from(u64::MAX))),
        (17, AttributeValue::BigInt(-9_007_199_254_740_993)),
        (385, AttributeValue::Bytes(vec![1, 2, 3, 4])),
        (386, AttributeValue::Bytes(Vec::new())),
        (387, AttributeValue::Bytes((0..=255).collect())),
    ];
    full.priority = Some(2);
    full.altitude = Some(-32768);
    full.angle = Some(360);
    full.satellites = Some(255);
    full.speed = Some(65535);
    full.event_io_id = Some(65535);
    full.latitude = -90.0;
    full.longitude = 179.999_999_9;
    let mut bare = StreamRecord::new("356307042441099", support::base_time(), 0.0, -180.0);
    bare.timestamp += time::Duration::milliseconds(123);
    let ids = env.add(&[full.clone(), bare.clone()]).await;
    env.wait_drained(2, Duration::from_secs(20)).await;

    let db = env.pg.client().await;
    let row = db
        .query_one(
            "SELECT ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes
             FROM positions WHERE device_id = $1",
            &[&full.device_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, time::OffsetDateTime>(0), full.timestamp);
    assert_eq!(row.get::<_, f64>(1), -90.0);
    assert_eq!(row.get::<_, f64>(2), 179.999_999_9);
    assert_eq!(row.get::<_, Option<f32>>(3), Some(-32768.0));
    assert_eq!(row.get::<_, Option<f32>>(4), Some(360.0));
    assert_eq!(row.get::<_, Option<f32>>(5), Some(65535.0));
    assert_eq!(row.get::<_, Option<i16>>(6), Some(255));
    assert_eq!(row.get::<_, Option<i16>>(7), Some(2));
    assert_eq!(row.get::<_, Option<i32>>(8), Some(65535));
    let attributes: serde_json::Value = row.get(9);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(
        attributes,
        serde_json::json!({
            "1": 0,
            "21": -5,
            "66": 4_294_967_295u64,
            "16": "18446744073709551615",
            "17": "-9007199254740993",
            "385": "AQIDBA==",
            "386": "",
            "387": b64(&(0..=255).collect::<Vec<u8>>()),
        })
    );

    let row = db
        .query_one(
            "SELECT ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes::text
             FROM positions WHERE device_id = $1",
            &[&bare.device_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, time::OffsetDateTime>(0), bare.timestamp);
    assert_eq!(row.get::<_, f64>(2), -180.0);
    for column in 3..=5 {
        assert_eq!(row.get::<_, Option<f32>>(column), None);
    }
    assert_eq!(row.get::<_, Option<i16>>(6), None);
    assert_eq!(row.get::<_, Option<i16>>(7), None);
    assert_eq!(row.get::<_, Option<i32>>(8), None);
    assert_eq!(row.get::<_, String>(9), "{}");

    assert_eq!(
        p.metric("processor_position_writes_total{status=\"inserted\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(p.metric("processor_acks_total").await, Some(2.0));
    assert_eq!(ids.len(), 2);
    assert!(p.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_position_twice_is_one_row_and_both_entries_are_acked() {
    let Some(env) = Env::new().await else { return };
    let mut p = env.spawn("idem-1", &[("REDIS_READ_COUNT", "100")]).await;

    // In one batch: the same (device_id, ts) twice, the second with other values.
    let first = support::record(7, 1);
    let mut again = first.clone();
    again.speed = Some(1);
    env.add(&[first.clone(), again, support::record(7, 2)])
        .await;
    env.wait_drained(2, Duration::from_secs(20)).await;
    // Across batches: the same position again, once the first batch is done.
    env.add(std::slice::from_ref(&first)).await;
    let duplicates = "processor_position_writes_total{status=\"duplicate\"}";
    assert!(
        support::eventually(Duration::from_secs(20), || async {
            p.metric(duplicates).await == Some(2.0) && env.pending().await == 0
        })
        .await,
        "duplicates: {:?}",
        p.metric(duplicates).await
    );
    assert_eq!(env.rows().await, 2);
    assert_eq!(env.distinct_rows().await, 2);
    // The first write wins: the row keeps the first record's values.
    let db = env.pg.client().await;
    let speed: Option<f32> = db
        .query_one(
            "SELECT speed FROM positions WHERE device_id = $1 AND ts = $2",
            &[&first.device_id, &first.timestamp],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(speed, first.speed.map(f32::from));
    assert_eq!(
        p.metric("processor_position_writes_total{status=\"inserted\"}")
            .await,
        Some(2.0)
    );
    assert_eq!(p.metric("processor_acks_total").await, Some(4.0));
    assert!(p.stop().await.success());
}
