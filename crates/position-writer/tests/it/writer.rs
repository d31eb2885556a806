//! The batched writer: exact values, exact counts, poison rows, large batches, ordering.

use position_writer::{BatchOutcome, PositionWriter, StatementShape, WriterConfig};
use serde_json::json;
use teltonika_codec::stream_record::{AttributeValue, StreamRecord};

use crate::common::{at, count, fast_config, migrated_writer, record, records};

#[tokio::test]
async fn every_column_and_attribute_form_lands_exactly() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let writer = migrated_writer(&pg, fast_config(500)).await;

    let mut full = record("356307042441013", 0);
    full.priority = Some(2);
    full.latitude = -89.999_999_9;
    full.longitude = 179.999_999_9;
    full.altitude = Some(-32_768);
    full.angle = Some(360);
    full.satellites = Some(255);
    full.speed = Some(65_535);
    full.event_io_id = Some(65_535);
    full.attributes = vec![
        (0, AttributeValue::Number(0)),
        (1, AttributeValue::Number(-1)),
        (21, AttributeValue::Number(4)),
        (66, AttributeValue::Number(i64::from(u32::MAX))),
        (16, AttributeValue::BigInt(i128::from(u64::MAX))),
        (17, AttributeValue::BigInt(-42)),
        (18, AttributeValue::BigInt(i128::from(i64::MIN))),
        (385, AttributeValue::Bytes(vec![1, 2, 3, 4])),
        (386, AttributeValue::Bytes(Vec::new())),
        (65_535, AttributeValue::Bytes((0..=255).collect())),
    ];
    let mut sparse = record("356307042441014", 0);
    sparse.priority = None;
    sparse.altitude = None;
    sparse.angle = None;
    sparse.satellites = None;
    sparse.speed = None;
    sparse.event_io_id = None;
    sparse.attributes = Vec::new();

    let outcome = writer
        .write_batch(&[full.clone(), sparse.clone()])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        BatchOutcome {
            inserted: 2,
            duplicates: 0,
            rejected: vec![]
        }
    );

    let client = pg.client().await;
    let row = client
        .query_one(
            "SELECT ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes, faulty
             FROM positions WHERE device_id = '356307042441013'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, time::OffsetDateTime>(0), at(0));
    assert_eq!(row.get::<_, f64>(1), -89.999_999_9);
    assert_eq!(row.get::<_, f64>(2), 179.999_999_9);
    assert_eq!(row.get::<_, Option<f32>>(3), Some(-32_768.0));
    assert_eq!(row.get::<_, Option<f32>>(4), Some(360.0));
    assert_eq!(row.get::<_, Option<f32>>(5), Some(65_535.0));
    assert_eq!(row.get::<_, Option<i16>>(6), Some(255));
    assert_eq!(row.get::<_, Option<i16>>(7), Some(2));
    assert_eq!(row.get::<_, Option<i32>>(8), Some(65_535));
    let all_bytes: Vec<u8> = (0..=255).collect();
    use base64::Engine as _;
    let all_b64 = base64::engine::general_purpose::STANDARD.encode(&all_bytes);
    assert_eq!(
        row.get::<_, serde_json::Value>(9),
        json!({
            "0": 0, "1": -1, "21": 4, "66": 4_294_967_295_u64,
            "16": "18446744073709551615", "17": "-42", "18": "-9223372036854775808",
            "385": "AQIDBA==", "386": "", "65535": all_b64,
        })
    );
    assert!(!row.get::<_, bool>(10));

    let row = client
        .query_one(
            "SELECT altitude, angle, speed, satellites, priority, event_io_id, attributes::text
             FROM positions WHERE device_id = '356307042441014'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<f32>>(0), None);
    assert_eq!(row.get::<_, Option<f32>>(1), None);
    assert_eq!(row.get::<_, Option<f32>>(2), None);
    assert_eq!(row.get::<_, Option<i16>>(3), None);
    assert_eq!(row.get::<_, Option<i16>>(4), None);
    assert_eq!(row.get::<_, Option<i32>>(5), None);
    assert_eq!(row.get::<_, String>(6), "{}");
}

#[tokio::test]
async fn duplicates_are_counted_exactly_within_and_across_batches() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    for shape in [
        StatementShape::Unnest,
        StatementShape::Values,
        StatementShape::ValuesReturning,
        StatementShape::CopyStage,
    ] {
        pg.execute("DROP TABLE IF EXISTS positions; DROP TABLE IF EXISTS schema_migrations;")
            .await;
        let writer = migrated_writer(
            &pg,
            WriterConfig {
                shape,
                ..fast_config(500)
            },
        )
        .await;
        let (a, b, c, d) = (
            record("1", 0),
            record("2", 0),
            record("1", 10),
            record("3", 0),
        );

        let first = writer
            .write_batch(&[a.clone(), b.clone(), a.clone(), c.clone(), a.clone()])
            .await
            .unwrap();
        assert_eq!(
            first,
            BatchOutcome {
                inserted: 3,
                duplicates: 2,
                rejected: vec![]
            },
            "{shape:?}"
        );

        let second = writer
            .write_batch(&[a.clone(), b.clone(), d.clone()])
            .await
            .unwrap();
        assert_eq!(
            second,
            BatchOutcome {
                inserted: 1,
                duplicates: 2,
                rejected: vec![]
            },
            "{shape:?}"
        );

        // A record with the same key but other values is still the stored one's duplicate.
        let mut moved = a.clone();
        moved.latitude = 10.0;
        let third = writer.write_batch(&[moved]).await.unwrap();
        assert_eq!((third.inserted, third.duplicates), (0, 1), "{shape:?}");
        assert_eq!(count(&pg).await, 4, "{shape:?}");
        let lat: f64 = pg
            .client()
            .await
            .query_one(
                "SELECT latitude FROM positions WHERE device_id = '1' AND ts = $1",
                &[&at(0)],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(lat, a.latitude);

        assert_eq!(
            writer.write_batch(&[]).await.unwrap(),
            BatchOutcome::default()
        );
    }
}

#[tokio::test]
async fn rows_the_database_rejects_are_isolated_and_the_rest_is_written() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    for shape in [
        StatementShape::Auto,
        StatementShape::Unnest,
        StatementShape::Values,
        StatementShape::CopyStage,
    ] {
        pg.execute("DROP TABLE IF EXISTS positions; DROP TABLE IF EXISTS schema_migrations;")
            .await;
        rejected_rows_with(&pg, shape).await;
    }
}

async fn rejected_rows_with(pg: &test_support::TestPostgres, shape: StatementShape) {
    let writer = migrated_writer(
        pg,
        WriterConfig {
            shape,
            ..fast_config(500)
        },
    )
    .await;
    // A CHECK constraint the codec knows nothing about (class 23: 23514).
    pg.execute("ALTER TABLE positions ADD CONSTRAINT speed_plausible CHECK (speed < 400)")
        .await;

    let mut batch = records(40, 7);
    // PostgreSQL text cannot hold NUL: 22021 invalid byte sequence.
    batch[3].device_id = "35630704\u{0}2441013".to_owned();
    batch[17].device_id.push('\u{0}');
    batch[29].speed = Some(500);
    // A duplicate of a good row, to keep the counts honest under bisection.
    batch[39] = batch[0].clone();

    let outcome = writer.write_batch(&batch).await.unwrap();
    let rejected: Vec<(usize, &str)> = outcome
        .rejected
        .iter()
        .map(|r| (r.index, r.sqlstate.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [(3, "22021"), (17, "22021"), (29, "23514")],
        "{shape:?}"
    );
    assert!(
        outcome.rejected[0].message.contains("0x00"),
        "{:?}",
        outcome.rejected[0]
    );
    assert!(
        outcome.rejected[2].message.contains("speed_plausible"),
        "{:?}",
        outcome.rejected[2]
    );
    assert_eq!((outcome.inserted, outcome.duplicates), (36, 1), "{shape:?}");
    assert_eq!(count(pg).await, 36);

    // Every row but the rejected ones is stored.
    let client = pg.client().await;
    for (i, r) in batch.iter().enumerate() {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM positions WHERE device_id = $1 AND ts = $2",
                &[&r.device_id.replace('\u{0}', ""), &r.timestamp],
            )
            .await
            .unwrap()
            .get(0);
        let expected = i64::from(![3, 17, 29].contains(&i));
        assert_eq!(n, expected, "row {i} {shape:?}");
    }

    // A batch of nothing but bad rows: all reported, nothing written, no error.
    let bad: Vec<StreamRecord> = (0..3)
        .map(|i| {
            let mut r = record("x", 1000 + i);
            r.speed = Some(1000);
            r
        })
        .collect();
    let outcome = writer.write_batch(&bad).await.unwrap();
    assert_eq!(outcome.rejected.len(), 3);
    assert_eq!((outcome.inserted, outcome.duplicates), (0, 0));
}

#[tokio::test]
async fn ten_thousand_rows_in_one_batch_with_every_shape() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let mut batch = records(10_000, 250);
    // 10 % duplicates, inside the batch.
    for i in (0..10_000).step_by(10).skip(1) {
        batch[i] = batch[i - 7].clone();
    }
    let unique = 10_000 - 999;
    for shape in [
        StatementShape::Auto,
        StatementShape::Values,
        StatementShape::CopyStage,
    ] {
        pg.execute("DROP TABLE IF EXISTS positions; DROP TABLE IF EXISTS schema_migrations;")
            .await;
        let writer = migrated_writer(
            &pg,
            WriterConfig {
                shape,
                ..fast_config(10_000)
            },
        )
        .await;
        let outcome = writer.write_batch(&batch).await.unwrap();
        assert_eq!(
            (outcome.inserted, outcome.duplicates),
            (unique, 999),
            "{shape:?}"
        );
        assert_eq!(count(&pg).await, unique as i64, "{shape:?}");
    }
    // A batch larger than the statement size is split inside one transaction.
    pg.execute("DROP TABLE IF EXISTS positions; DROP TABLE IF EXISTS schema_migrations;")
        .await;
    let writer = migrated_writer(
        &pg,
        WriterConfig {
            shape: StatementShape::CopyStage,
            ..fast_config(777)
        },
    )
    .await;
    let outcome = writer.write_batch(&batch).await.unwrap();
    assert_eq!((outcome.inserted, outcome.duplicates), (unique, 999));
    assert!(PositionWriter::new(writer.pool().clone(), fast_config(10_001)).is_err());
    assert!(PositionWriter::new(writer.pool().clone(), fast_config(0)).is_err());
}

#[tokio::test]
async fn overlapping_batches_in_opposite_orders_do_not_deadlock() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let writer = migrated_writer(&pg, fast_config(10_000)).await;
    for round in 0..3 {
        let batch: Vec<StreamRecord> = records(3_000, 300)
            .into_iter()
            .map(|mut r| {
                r.timestamp += time::Duration::hours(round);
                r
            })
            .collect();
        let reversed: Vec<StreamRecord> = batch.iter().rev().cloned().collect();
        let (a, b) = tokio::join!(writer.write_batch(&batch), writer.write_batch(&reversed));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.inserted + b.inserted, 3_000);
        assert_eq!(a.duplicates + b.duplicates, 3_000);
    }
}
