//! Serialisation cost of a `position` frame: the fast writer vs serde_json (baseline), same run.
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]
#![allow(clippy::expect_used, reason = "a benchmark: fixed, valid inputs")]

use criterion::{Criterion, criterion_group, criterion_main};
use live_protocol::{Position, ServerMessage, Topic, write_position};
use std::hint::black_box;

fn position_frame(c: &mut Criterion) {
    let topic = Topic::for_event("8d1f0c2a-5b7e-4c1d-9a3f-2e6b8c0d4f11").expect("valid topic");
    let position = Position {
        device_id: "356307042441013".to_owned(),
        ts: 1_714_647_600_000,
        lat: 41.327_512_3,
        lon: 19.818_734_5,
        speed: Some(86),
        course: Some(270),
    };
    let message = ServerMessage::Position {
        topic: topic.clone(),
        position: position.clone(),
    };
    let mut group = c.benchmark_group("position_frame");
    group.bench_function("serde_json_to_vec (baseline)", |b| {
        b.iter(|| serde_json::to_vec(black_box(&message)).expect("serialises"))
    });
    group.bench_function("write_position", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            write_position(&mut out, black_box(&topic), black_box(position.as_view()));
            black_box(out.len())
        })
    });
    group.bench_function("parse_client_message", |b| {
        let text =
            br#"{"type":"subscribe","topic":"event:8D1F0C2A-5B7E-4C1D-9A3F-2E6B8C0D4F11","id":1}"#;
        b.iter(|| live_protocol::parse_client_message(black_box(text)).is_ok())
    });
    group.finish();
}

criterion_group!(benches, position_frame);
criterion_main!(benches);
