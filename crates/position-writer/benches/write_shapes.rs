//! Measures the three statement shapes of docs/database.md against a real PostgreSQL.
//!
//! `cargo bench -p position-writer --bench write_shapes` (set `BENCH_DATABASE_URL`, else
//! `TEST_DATABASE_URL`, else the local `postgres://postgres@127.0.0.1:5432/postgres`). It
//! creates a scratch database, writes the same 200 000 input rows (2 000 devices, ~10 %
//! duplicates of one of the previous 10 000 rows, so inside and across batches) with every
//! shape at batch sizes 500 and 5 000, one transaction per batch through `PositionWriter`
//! (sorting, encoding, round trips and the durable commit all timed), and prints one
//! Markdown table: input rows/s and the ratio to the best of the same batch size, measured
//! in this one run. The table lives in the crate README and docs/database.md.
//!
//! Not criterion: each measurement is one run over a table whose state (duplicates)
//! depends on what was written before, which criterion's repeated iterations would skew.
//! `ROWS=…` changes the row count. Without `--bench` (as `cargo test --benches` runs it)
//! it only writes a few rows, to check it still works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness: any failure must abort the run loudly"
)]

use std::time::Instant;

use position_writer::{
    PoolConfig, PositionWriter, StatementShape, WriterConfig, attributes_json, create_pool, migrate,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use teltonika_codec::stream_record::{AttributeValue, StreamRecord};
use time::OffsetDateTime;
use tokio_postgres::NoTls;

const SHAPES: [(StatementShape, &str); 4] = [
    (StatementShape::Values, "multi-row VALUES"),
    (
        StatementShape::ValuesReturning,
        "multi-row VALUES … RETURNING",
    ),
    (StatementShape::Unnest, "INSERT … SELECT FROM unnest"),
    (
        StatementShape::CopyStage,
        "binary COPY to stage + INSERT … SELECT",
    ),
];

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rows: usize = match std::env::var("ROWS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("ROWS={v} is not a count")),
        Err(_) if full => 200_000,
        Err(_) => 2_000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(rows));
}

async fn run(rows: usize) {
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (admin, conn) = tokio_postgres::connect(&admin_url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("write_shapes needs PostgreSQL (BENCH_DATABASE_URL / TEST_DATABASE_URL): {e}")
        });
    tokio::spawn(conn);
    let db = format!("position_writer_bench_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => panic!("database URL without a path"),
    };

    let pool = create_pool(&PoolConfig::new(url, 2)).unwrap();
    migrate(&pool).await.unwrap();
    let client = pool.get().await.unwrap();
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get(0);

    let data = generate(rows);
    let unique = {
        let mut keys: Vec<(&str, OffsetDateTime)> = data
            .iter()
            .map(|r| (r.device_id.as_str(), r.timestamp))
            .collect();
        keys.sort();
        keys.dedup();
        keys.len() as u64
    };

    let mut results = Vec::new();
    for batch in [500usize, 5_000] {
        for (shape, name) in SHAPES {
            client
                .batch_execute("TRUNCATE positions; CHECKPOINT")
                .await
                .unwrap();
            let config = WriterConfig {
                batch_size: batch,
                shape,
                ..WriterConfig::default()
            };
            let writer = PositionWriter::new(pool.clone(), config).unwrap();
            let started = Instant::now();
            let (mut inserted, mut duplicates) = (0, 0);
            for chunk in data.chunks(batch) {
                let outcome = writer.write_batch(chunk).await.unwrap();
                assert!(outcome.rejected.is_empty());
                inserted += outcome.inserted;
                duplicates += outcome.duplicates;
            }
            let secs = started.elapsed().as_secs_f64();
            // Correct before fast: every shape must store exactly the unique rows.
            assert_eq!(inserted, unique, "{name} at {batch}");
            assert_eq!(inserted + duplicates, rows as u64);
            let stored: i64 = client
                .query_one("SELECT count(*) FROM positions", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(stored as u64, unique);
            results.push((batch, name, rows as f64 / secs));
        }
    }
    drop(client);
    pool.close();
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();

    println!(
        "\nStatement shapes, {} ({rows} input rows, {} duplicates, PostgreSQL {version}, {} CPUs):\n",
        OffsetDateTime::now_utc().date(),
        rows as u64 - unique,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("| batch | shape | input rows/s | vs best |");
    println!("|---:|---|---:|---:|");
    for &(batch, name, rate) in &results {
        let best = results
            .iter()
            .filter(|r| r.0 == batch)
            .map(|r| r.2)
            .fold(0.0, f64::max);
        println!("| {batch} | {name} | {rate:.0} | {:.2} |", rate / best);
    }
    encode_comparison(&data);
}

/// The `attributes` text: written directly vs built as a `serde_json::Value` and serialised
/// (what binding a `Value` as jsonb costs), over the same records.
fn encode_comparison(data: &[StreamRecord]) {
    let started = Instant::now();
    let mut direct_len = 0;
    let mut text = String::new();
    for r in data {
        text.clear();
        attributes_json(&r.attributes, &mut text);
        direct_len += text.len();
    }
    let direct = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut value_len = 0;
    for r in data {
        let mut map = serde_json::Map::new();
        for (id, v) in &r.attributes {
            let v = match v {
                AttributeValue::Number(n) => serde_json::Value::from(*n),
                AttributeValue::BigInt(n) => serde_json::Value::String(n.to_string()),
                AttributeValue::Bytes(b) => {
                    use base64::Engine as _;
                    serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
                }
            };
            map.insert(id.to_string(), v);
        }
        value_len += serde_json::to_vec(&serde_json::Value::Object(map))
            .unwrap()
            .len();
    }
    let value = started.elapsed().as_secs_f64();
    assert_eq!(direct_len, value_len);
    println!(
        "\nattributes JSON for {} records: direct text {:.0} ns/record, serde_json::Value {:.0} ns/record ({:.1}x)",
        data.len(),
        direct * 1e9 / data.len() as f64,
        value * 1e9 / data.len() as f64,
        value / direct
    );
}

/// `rows` records from 2 000 devices, ts advancing 10 s per device, 6 IO elements each;
/// ~10 % are exact copies of one of the previous 10 000 rows. Deterministic.
fn generate(rows: usize) -> Vec<StreamRecord> {
    let mut rng = StdRng::seed_from_u64(20_260_502);
    let start = OffsetDateTime::from_unix_timestamp(1_777_000_000).unwrap();
    let mut out: Vec<StreamRecord> = Vec::with_capacity(rows);
    let mut fresh = 0usize;
    for _ in 0..rows {
        if !out.is_empty() && rng.random_bool(0.10) {
            let back = rng.random_range(1..=out.len().min(10_000));
            let copy = out[out.len() - back].clone();
            out.push(copy);
            continue;
        }
        let device = fresh % 2_000;
        let step = (fresh / 2_000) as i64;
        fresh += 1;
        let mut r = StreamRecord::new(
            format!("35630704{device:07}"),
            start + time::Duration::seconds(step * 10),
            41.0 + rng.random_range(0.0..0.5),
            19.0 + rng.random_range(0.0..0.5),
        );
        r.priority = Some(1);
        r.altitude = Some(rng.random_range(0..2000));
        r.angle = Some(rng.random_range(0..=360));
        r.satellites = Some(rng.random_range(4..20));
        r.speed = Some(rng.random_range(0..200));
        r.event_io_id = Some(0);
        r.attributes = vec![
            (1, AttributeValue::Number(1)),
            (21, AttributeValue::Number(rng.random_range(1..6))),
            (66, AttributeValue::Number(rng.random_range(11_000..14_000))),
            (67, AttributeValue::Number(rng.random_range(3_900..4_200))),
            (239, AttributeValue::Number(1)),
            (
                16,
                AttributeValue::BigInt(rng.random_range(0..i128::from(u32::MAX))),
            ),
        ];
        out.push(r);
    }
    out
}
