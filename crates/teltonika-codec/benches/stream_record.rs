//! Stream-record decode throughput: the crate's simd-json tape decoder against a plain
//! serde_json (`Value` + `time`'s RFC 3339 parser) implementation of the same decode, in the
//! same run, plus allocations per decode counted by a wrapping global allocator.
//!
//! Run: `cargo bench -p teltonika-codec --bench stream_record`. Target: ≥ 1 M records/s on
//! one core for typical payloads. Figures: `BENCHMARKS-stream-record.md`.
#![allow(
    clippy::expect_used,
    missing_docs,
    reason = "a bench: invalid fixtures must abort it; criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use teltonika_codec::stream_record::{
    AttributeValue, Decoder, EntryCodec, StreamRecord, decode_entry, encode_entry,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[path = "common/measure.rs"]
mod measure;

use measure::{allocations, thread_cpu_ns};

type Entry = Vec<(String, String)>;

/// Typical entries: a Codec 8 FMB920 record (18 IO elements, one 8-byte), a Codec 8E record
/// with two NX buffers, and a bare position without attributes — in the proportions a rally
/// fleet sends them (mostly the first).
fn typical_entries() -> Vec<Entry> {
    let base = |i: i64| {
        let mut r = StreamRecord::new(
            format!("3563070424410{:02}", i % 100),
            OffsetDateTime::from_unix_timestamp(1_777_719_600 + i).expect("in range")
                + time::Duration::milliseconds(i * 37 % 1000),
            (413_275_123 + i * 17) as f64 / 1e7,
            (198_187_456 - i * 13) as f64 / 1e7,
        );
        r.priority = Some((i % 2) as u8);
        r.altitude = Some(112 + (i % 50) as i16);
        r.angle = Some((i * 7 % 361) as u16);
        r.satellites = Some(11);
        r.speed = Some((i * 3 % 180) as u16);
        r.event_io_id = Some(0);
        r
    };
    let fmb920 = |i: i64| {
        let mut r = base(i);
        r.attributes = [
            (1, 1),
            (21, 4),
            (24, 86),
            (66, 12_450 + i),
            (67, 4_012),
            (68, 0),
            (69, 1),
            (80, 1),
            (113, 87),
            (181, 9),
            (182, 7),
            (199, i * 11),
            (200, 0),
            (205, 3_412),
            (206, 17),
            (239, 1),
            (240, 1),
            (241, 27_602),
        ]
        .into_iter()
        .map(|(id, v)| (id, AttributeValue::Number(v)))
        .chain([(16, AttributeValue::BigInt(i128::from(123_456_789 + i)))])
        .collect();
        r.attributes.sort_by_key(|(id, _)| *id);
        r
    };
    let codec8e = |i: i64| {
        let mut r = fmb920(i);
        r.attributes
            .push((385, AttributeValue::Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8])));
        r.attributes
            .push((10_001, AttributeValue::Bytes((0..40).collect())));
        r
    };
    (0..100)
        .map(|i| match i % 10 {
            0 => encode_entry(&codec8e(i), EntryCodec::Codec8E),
            1 => encode_entry(&base(i), EntryCodec::Codec8),
            _ => encode_entry(&fmb920(i), EntryCodec::Codec8),
        })
        .map(|fields| fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        .collect()
}

fn field<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The same decode, written the plain way: `serde_json::Value`, `time`'s RFC 3339 parser.
/// Checks the same rules on valid input (duplicates are invisible to `Value`, the one
/// difference, which only makes the baseline cheaper).
fn decode_serde_json(entry: &Entry) -> Result<StreamRecord, String> {
    use serde_json::Value;
    let device_id = field(entry, "device_id").ok_or("device_id")?;
    let payload: Value = serde_json::from_str(field(entry, "payload").ok_or("payload")?)
        .map_err(|e| e.to_string())?;
    let obj = payload.as_object().ok_or("payload")?;
    let get = |a: &str, b: &str| obj.get(a).or_else(|| obj.get(b)).filter(|v| !v.is_null());
    let id = get("device_id", "deviceId")
        .and_then(Value::as_str)
        .ok_or("device_id")?;
    if id.is_empty() || id != device_id {
        return Err("device_id".into());
    }
    let ts = get("timestamp", "ts")
        .and_then(Value::as_str)
        .ok_or("timestamp")?;
    let timestamp = OffsetDateTime::parse(ts, &Rfc3339)
        .map_err(|e| e.to_string())?
        .to_offset(time::UtcOffset::UTC);
    if let Some(entry_ts) = field(entry, "ts") {
        let t = OffsetDateTime::parse(entry_ts, &Rfc3339).map_err(|e| e.to_string())?;
        if t.unix_timestamp_nanos() / 1_000_000 != timestamp.unix_timestamp_nanos() / 1_000_000 {
            return Err("ts".into());
        }
    }
    let coord = |k: &str, lim: f64| -> Result<f64, String> {
        let v = obj.get(k).and_then(Value::as_f64).ok_or(k)?;
        if v.is_finite() && v.abs() <= lim {
            Ok(v)
        } else {
            Err(k.into())
        }
    };
    let int = |k: &str, min: i64, max: i64| -> Result<Option<i64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or(k)?;
                if (min..=max).contains(&n) {
                    Ok(Some(n))
                } else {
                    Err(k.into())
                }
            }
        }
    };
    let mut attributes = Vec::new();
    if let Some(Value::Object(attrs)) = obj.get("attributes") {
        for (k, v) in attrs {
            let id: u16 = k.parse().map_err(|_| "attributes")?;
            let value = match v {
                Value::Number(n) => AttributeValue::Number(n.as_i64().ok_or("attr")?),
                Value::Object(o) if o.len() == 1 => match o.iter().next() {
                    Some((k, Value::String(s))) if k == "__bigint" => {
                        AttributeValue::BigInt(s.parse().map_err(|_| "bigint")?)
                    }
                    Some((k, Value::String(s))) if k == "__buffer_b64" => {
                        use base64::Engine as _;
                        AttributeValue::Bytes(
                            base64::engine::general_purpose::STANDARD
                                .decode(s)
                                .map_err(|e| e.to_string())?,
                        )
                    }
                    _ => return Err("sentinel".into()),
                },
                _ => return Err("attr".into()),
            };
            attributes.push((id, value));
        }
        attributes.sort_by_key(|(id, _)| *id);
    }
    Ok(StreamRecord {
        device_id: id.to_owned(),
        timestamp,
        priority: int("priority", 0, 2)?.map(|v| v as u8),
        latitude: coord("latitude", 90.0)?,
        longitude: coord("longitude", 180.0)?,
        altitude: int("altitude", -32768, 32767)?.map(|v| v as i16),
        angle: int("angle", 0, 360)?.map(|v| v as u16),
        satellites: int("satellites", 0, 255)?.map(|v| v as u8),
        speed: int("speed", 0, 65535)?.map(|v| v as u16),
        event_io_id: int("event_io_id", 0, 65535)?.map(|v| v as u16),
        attributes,
    })
}

fn as_pairs(entry: &Entry) -> impl Iterator<Item = (&str, &str)> {
    entry.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn allocations_per_decode(entries: &[Entry], mut decode: impl FnMut(&Entry)) -> f64 {
    for e in entries {
        decode(e); // warm the reusable buffers
    }
    let before = allocations();
    for e in entries {
        decode(e);
    }
    (allocations() - before) as f64 / entries.len() as f64
}

/// Records decoded per second of this thread's CPU time, over `rounds` passes of `entries`.
fn records_per_cpu_second(
    entries: &[Entry],
    rounds: usize,
    mut decode: impl FnMut(&Entry),
) -> Option<f64> {
    let before = thread_cpu_ns()?;
    for _ in 0..rounds {
        for e in entries {
            decode(e);
        }
    }
    let spent = thread_cpu_ns()?.checked_sub(before)?;
    Some((rounds * entries.len()) as f64 / (spent as f64 / 1e9))
}

fn bench(c: &mut Criterion) {
    let entries = typical_entries();
    let bytes: usize = entries
        .iter()
        .map(|e| field(e, "payload").map_or(0, str::len))
        .sum();
    // Both implementations must agree before they are timed.
    for e in &entries {
        let fast = decode_entry(as_pairs(e)).expect("typical entries are valid");
        let plain = decode_serde_json(e).expect("typical entries are valid");
        assert_eq!(fast.device_id, plain.device_id);
        assert_eq!(fast.timestamp, plain.timestamp);
        assert_eq!(fast.attributes, plain.attributes);
    }

    let mut decoder = Decoder::new();
    eprintln!(
        "stream_record: {} entries, mean payload {} bytes; allocations per decode: simd-json {:.2}, serde_json {:.2}",
        entries.len(),
        bytes / entries.len(),
        allocations_per_decode(&entries, |e| {
            black_box(decoder.decode_entry(as_pairs(e)).ok());
        }),
        allocations_per_decode(&entries, |e| {
            black_box(decode_serde_json(e).ok());
        }),
    );

    // Per CPU-second (immune to other processes sharing the cores), interleaved three times.
    let mut fast = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..3 {
        fast.extend(records_per_cpu_second(&entries, 3000, |e| {
            black_box(decoder.decode_entry(as_pairs(black_box(e))).ok());
        }));
        plain.extend(records_per_cpu_second(&entries, 1000, |e| {
            black_box(decode_serde_json(black_box(e)).ok());
        }));
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    if !fast.is_empty() && !plain.is_empty() {
        eprintln!(
            "stream_record: per CPU-second (best of 3): simd-json {:.0} records/s, serde_json {:.0} records/s, ratio {:.2}x",
            best(&fast),
            best(&plain),
            best(&fast) / best(&plain)
        );
    }

    let mut group = c.benchmark_group("stream_record_decode");
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.bench_function("simd_json_tape", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(decode_entry(as_pairs(black_box(e))).ok());
            }
        });
    });
    // The floor: simd-json's tape parse of the payload alone, no validation, no record.
    let mut scratch = Vec::new();
    let mut buffers = simd_json::Buffers::default();
    let mut tape = simd_json::Tape::null();
    group.bench_function("simd_json_tape_parse_only", |b| {
        b.iter(|| {
            for e in &entries {
                let payload = field(e, "payload").unwrap_or_default().as_bytes();
                scratch.clear();
                scratch.extend_from_slice(payload);
                scratch.resize(payload.len() + simd_json::INPUT_PADDING, 0);
                let mut t = std::mem::replace(&mut tape, simd_json::Tape::null()).reset();
                black_box(
                    simd_json::fill_tape_padded(&mut scratch, payload.len(), &mut buffers, &mut t)
                        .is_ok(),
                );
                black_box(t.0.len());
                tape = t.reset();
            }
        });
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            for e in &entries {
                black_box(decode_serde_json(black_box(e)).ok());
            }
        });
    });
    group.finish();

    let records: Vec<StreamRecord> = entries
        .iter()
        .filter_map(|e| decode_entry(as_pairs(e)).ok())
        .collect();
    let mut group = c.benchmark_group("stream_record_encode");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("encode_entry", |b| {
        b.iter(|| {
            for r in &records {
                black_box(encode_entry(black_box(r), EntryCodec::Codec8));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
