//! Drain rate of the group consumer, and the cost of parsing field values as `Bytes` vs
//! `String`.
//!
//! - `parse_500`: converting one 500-entry `XREADGROUP` reply (4 fields, ~300-byte payload)
//!   into `Bytes` values (what the crate does) vs `String` values (the baseline).
//! - `drain_20k` (needs Redis: `TEST_REDIS_URL` or a local `redis-server` via test-support):
//!   a 20 000-entry backlog drained at COUNT 500 with a no-op handler by `Consumer::run`
//!   (pipelined reads, one XACK per batch) vs a naive baseline loop in the same run
//!   (`XREADGROUP >` then `XACK`, sequential). Criterion reports time per 20 000 records;
//!   records/s = 20 000 / time. The consumer's time runs from `Consumer::new` (connect and
//!   group check included) until its handler has the last entry; its stop is not timed.

#![allow(
    clippy::unwrap_used,
    reason = "bench code: any failure should abort the run"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented functions"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fred::prelude::*;
use stream_consumer::{BatchHandler, Consumer, ConsumerConfig, Disposition, StreamEntry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const PAYLOAD: &str = r#"{"device_id":"356307042441013","timestamp":"2026-05-02T11:00:00.000Z","priority":1,"latitude":41.3275,"longitude":19.8187,"altitude":112,"angle":270,"satellites":11,"speed":86,"event_io_id":0,"attributes":{"21":4,"66":12450,"16":{"__bigint":"18446744073709551615"},"385":{"__buffer_b64":"AQIDBA=="}}}"#;

fn fields(i: usize) -> Vec<(&'static str, String)> {
    vec![
        ("ts", "2026-05-02T11:00:00.000Z".to_owned()),
        ("device_id", format!("35630704244{i:04}")),
        ("codec", "8E".to_owned()),
        ("payload", PAYLOAD.to_owned()),
    ]
}

fn reply(n: usize) -> Value {
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            let flat: Vec<Value> = fields(i)
                .into_iter()
                .flat_map(|(k, v)| [Value::from(k), Value::from(v)])
                .collect();
            Value::Array(vec![
                Value::from(format!("1714647600000-{i}")),
                Value::Array(flat),
            ])
        })
        .collect();
    Value::Array(vec![Value::Array(vec![
        Value::from("telemetry:teltonika"),
        Value::Array(entries),
    ])])
}

type BytesReply = Vec<(String, Vec<(String, Vec<(Bytes, Bytes)>)>)>;
type StringReply = Vec<(String, Vec<(String, Vec<(String, String)>)>)>;

fn parse(c: &mut Criterion) {
    let value = reply(500);
    let mut g = c.benchmark_group("parse_500");
    g.throughput(Throughput::Elements(500));
    g.bench_function("bytes", |b| {
        b.iter_batched(
            || value.clone(),
            |v| black_box(v.convert::<BytesReply>().unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("string_baseline", |b| {
        b.iter_batched(
            || value.clone(),
            |v| black_box(v.convert::<StringReply>().unwrap()),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

const BACKLOG: usize = 20_000;

struct Noop {
    seen: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl BatchHandler for Noop {
    async fn handle(&mut self, batch: &[StreamEntry]) -> Vec<Disposition> {
        if self.seen.fetch_add(batch.len(), Ordering::SeqCst) + batch.len() >= BACKLOG {
            self.done.notify_one();
        }
        vec![Disposition::Ack; batch.len()]
    }
}

async fn fill(client: &Client, stream: &str) {
    let _: i64 = client.del(stream).await.unwrap();
    for chunk in 0..BACKLOG / 1000 {
        let p = client.pipeline();
        for i in 0..1000 {
            let _: () = p
                .xadd(stream, false, None::<()>, "*", fields(chunk * 1000 + i))
                .await
                .unwrap();
        }
        let _: Vec<Value> = p.all().await.unwrap();
    }
    let _: Value = client.xgroup_create(stream, "g", "0", false).await.unwrap();
}

async fn drain_with_consumer(url: &str, stream: &str) -> Duration {
    let mut cfg = ConsumerConfig::new(url, stream, "g", "bench");
    cfg.read_count = 500;
    cfg.block = Duration::from_millis(100);
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let handler = Noop {
        seen: seen.clone(),
        done: done.clone(),
    };
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(Consumer::new(cfg).unwrap().run(handler, cancel.clone()));
    done.notified().await;
    // The drain ends when the handler has the last entry; the stop that follows is not part
    // of it (it waits for the read ahead, a BLOCK on the now empty stream, to be unblocked
    // or to time out: up to `block` more, which the baseline loop never pays).
    let drained = start.elapsed();
    cancel.cancel();
    task.await.unwrap().unwrap();
    drained
}

async fn drain_naive(client: &Client, stream: &str) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    while n < BACKLOG {
        let r: BytesReply = client
            .xreadgroup("g", "naive", Some(500), None, false, stream, ">")
            .await
            .unwrap();
        let ids: Vec<String> = r
            .into_iter()
            .flat_map(|(_, e)| e.into_iter().map(|(id, _)| id))
            .collect();
        n += ids.len();
        let _: u64 = client.xack(stream, "g", ids).await.unwrap();
    }
    start.elapsed()
}

fn drain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(redis) = rt.block_on(test_support::redis()) else {
        return;
    };
    let client = rt.block_on(redis.client());
    let stream = redis.unique_key("bench");
    let mut g = c.benchmark_group("drain_20k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(BACKLOG as u64));
    g.bench_function("consumer_count_500", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill(&client, &stream).await;
                    total += drain_with_consumer(redis.url(), &stream).await;
                }
                total
            })
        });
    });
    g.bench_function("naive_baseline_count_500", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    fill(&client, &stream).await;
                    total += drain_naive(&client, &stream).await;
                }
                total
            })
        });
    });
    g.finish();
    rt.block_on(async {
        let _: i64 = client.del(&stream).await.unwrap();
    });
}

criterion_group!(benches, parse, drain);
criterion_main!(benches);
