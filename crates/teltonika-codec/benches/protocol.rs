//! Binary-protocol benchmarks, with nom-teltonika 0.3.0 measured side by side in the same run
//! on the same bytes: real records from public captures (`fixtures/teltonika/vectors.json`).
//!
//! Inputs:
//! - `tcp_8e`: the real Codec 8 Extended records of the vectors packed into frames of at most
//!   1280 bytes (what a tracker with a backlog sends), back to back;
//! - `tcp_8e_captured`: the 17 valid 8E TCP frames of the vectors as captured (77 to 1073
//!   bytes), back to back;
//! - `udp_8e_4k`: one ~4 KB Codec 8E datagram made of those real records;
//! - `tcp_16`: the real 4-record Codec 16 frame (Traccar test, 911 bytes).
//!
//! Tiers, for both crates: `validate` (decode every frame: CRC, counts, records, IO groups),
//! `read_all` (validate, then read every field of every record and every IO value; both
//! sides sum what they read into a checksum, asserted equal before measuring), `owned` (build
//! owned values). Throughput is in records. `crc16` compares CRC implementations on a 1 KB
//! data field.
//!
//! Short measurement (3 s, 20 samples): the development machine has 2 shared cores. Because
//! it is shared, the bench also prints a table of records per second of the thread's own CPU
//! time (`/proc/thread-self/schedstat`), each tier run for both crates alternately three
//! times, best pass kept, with the ratio, and the heap allocations per record (counting
//! global allocator). That table is what the crate README reports.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    missing_docs,
    reason = "a bench: invalid fixtures must abort it; criterion's macros generate undocumented items"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use nom_teltonika::protocol::{FrameView as NomFrame, IoValueView as NomIo};
use teltonika_codec::{AvlCodec, AvlPacket, Datagram, IoValueView, TcpFrame, TcpFrameView};

#[path = "common/measure.rs"]
mod measure;

use measure::{allocations, thread_cpu_ns};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Vector {
    id: String,
    transport: String,
    codec: String,
    valid: bool,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/teltonika/vectors.json"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    json.as_array()
        .expect("array")
        .iter()
        .map(|v| Vector {
            id: v["id"].as_str().expect("id").to_owned(),
            transport: v["transport"].as_str().expect("transport").to_owned(),
            codec: v["codec"].as_str().expect("codec").to_owned(),
            valid: v["computed"]["strict_valid"] == true,
            bytes: hex(v["hex"].as_str().expect("hex")),
        })
        .collect()
}

// ---- the same checksum over what each crate reads --------------------------------------

fn mix(sum: u64, value: u64) -> u64 {
    sum.rotate_left(5) ^ value
}

fn ours_read_all_frames(mut input: &[u8]) -> u64 {
    let mut sum = 0;
    while !input.is_empty() {
        let (frame, consumed) = teltonika_codec::decode_tcp_frame(input).expect("valid");
        if let TcpFrameView::Avl(packet) = frame {
            sum = ours_read_packet(sum, packet);
        }
        input = &input[consumed..];
    }
    sum
}

fn ours_read_packet(mut sum: u64, packet: teltonika_codec::AvlPacketView<'_>) -> u64 {
    for record in packet.records() {
        let gps = record.gps();
        sum = mix(sum, record.timestamp_ms());
        sum = mix(sum, record.priority() as u64);
        sum = mix(sum, gps.longitude_raw as u64);
        sum = mix(sum, gps.latitude_raw as u64);
        sum = mix(sum, u64::from(gps.altitude as u16));
        sum = mix(sum, u64::from(gps.angle));
        sum = mix(sum, u64::from(gps.satellites));
        sum = mix(sum, u64::from(gps.speed));
        sum = mix(sum, u64::from(record.event_io_id()));
        sum = mix(sum, record.generation_type().map_or(99, |g| g as u64));
        for element in record.io() {
            sum = mix(sum, u64::from(element.id));
            sum = mix(
                sum,
                match element.value {
                    IoValueView::U8(v) => u64::from(v),
                    IoValueView::U16(v) => u64::from(v),
                    IoValueView::U32(v) => u64::from(v),
                    IoValueView::U64(v) => v,
                    IoValueView::Bytes(bytes) => bytes
                        .iter()
                        .fold(bytes.len() as u64, |s, &b| mix(s, u64::from(b))),
                },
            );
        }
    }
    sum
}

fn nom_read_all_frames(mut input: &[u8]) -> u64 {
    let mut sum = 0;
    while !input.is_empty() {
        if let NomFrame::Avl(packet) =
            nom_teltonika::decoder::take_frame(&mut input).expect("valid")
        {
            sum = nom_read_packet(sum, packet);
        }
    }
    sum
}

fn nom_read_packet(mut sum: u64, packet: nom_teltonika::protocol::AvlPacketView<'_>) -> u64 {
    for record in packet.records() {
        let gps = record.gps();
        sum = mix(sum, u64::from(record.timestamp()));
        sum = mix(sum, u64::from(u8::from(record.priority())));
        sum = mix(sum, gps.longitude_raw as u64);
        sum = mix(sum, gps.latitude_raw as u64);
        sum = mix(sum, u64::from(gps.altitude_meters));
        sum = mix(sum, u64::from(gps.angle_degrees));
        sum = mix(sum, u64::from(gps.satellites));
        sum = mix(sum, u64::from(gps.speed_kph));
        sum = mix(
            sum,
            record
                .event_io_id()
                .map_or(0, |id| u64::from(u16::from(id))),
        );
        sum = mix(
            sum,
            record
                .generation_type()
                .map_or(99, |g| u64::from(u8::from(g))),
        );
        for element in record.io_elements() {
            sum = mix(sum, u64::from(u16::from(element.id())));
            sum = mix(
                sum,
                match element.value() {
                    NomIo::U8(v) => u64::from(v),
                    NomIo::U16(v) => u64::from(v),
                    NomIo::U32(v) => u64::from(v),
                    NomIo::U64(v) => v,
                    NomIo::Bytes(bytes) => bytes
                        .iter()
                        .fold(bytes.len() as u64, |s, &b| mix(s, u64::from(b))),
                },
            );
        }
    }
    sum
}

// ---- tiers ------------------------------------------------------------------------------

type Tier = fn(&[u8]) -> u64;

fn ours_validate_frames(mut input: &[u8]) -> u64 {
    let mut frames = 0;
    while !input.is_empty() {
        let (frame, consumed) = teltonika_codec::decode_tcp_frame(input).expect("valid");
        black_box(frame);
        input = &input[consumed..];
        frames += 1;
    }
    frames
}

fn nom_validate_frames(mut input: &[u8]) -> u64 {
    let mut frames = 0;
    while !input.is_empty() {
        black_box(nom_teltonika::decoder::take_frame(&mut input).expect("valid"));
        frames += 1;
    }
    frames
}

fn ours_owned_frames(mut input: &[u8]) -> u64 {
    let mut records = 0;
    while !input.is_empty() {
        let (frame, consumed) = teltonika_codec::decode_tcp_frame(input).expect("valid");
        if let TcpFrame::Avl(packet) = black_box(frame.to_owned()) {
            records += packet.records.len() as u64;
        }
        input = &input[consumed..];
    }
    records
}

fn nom_owned_frames(mut input: &[u8]) -> u64 {
    let mut records = 0;
    while !input.is_empty() {
        let frame = black_box(
            nom_teltonika::decoder::take_frame(&mut input)
                .expect("valid")
                .evaluate(),
        );
        if let nom_teltonika::protocol::Frame::Avl(packet) = frame {
            records += packet.records().len() as u64;
        }
    }
    records
}

fn ours_validate_datagram(input: &[u8]) -> u64 {
    u64::from(
        teltonika_codec::decode_datagram(input)
            .expect("valid")
            .0
            .packet()
            .record_count(),
    )
}

fn nom_validate_datagram(mut input: &[u8]) -> u64 {
    nom_teltonika::decoder::take_datagram(&mut input)
        .expect("valid")
        .packet()
        .records()
        .len() as u64
}

fn ours_read_datagram(input: &[u8]) -> u64 {
    ours_read_packet(
        0,
        teltonika_codec::decode_datagram(input)
            .expect("valid")
            .0
            .packet(),
    )
}

fn nom_read_datagram(mut input: &[u8]) -> u64 {
    nom_read_packet(
        0,
        nom_teltonika::decoder::take_datagram(&mut input)
            .expect("valid")
            .packet(),
    )
}

fn ours_owned_datagram(input: &[u8]) -> u64 {
    black_box(
        teltonika_codec::decode_datagram(input)
            .expect("valid")
            .0
            .to_owned(),
    )
    .packet
    .records
    .len() as u64
}

fn nom_owned_datagram(mut input: &[u8]) -> u64 {
    black_box(
        nom_teltonika::decoder::take_datagram(&mut input)
            .expect("valid")
            .evaluate(),
    )
    .packet()
    .records()
    .len() as u64
}

const TCP_TIERS: [(&str, Tier, Tier); 3] = [
    ("validate", ours_validate_frames, nom_validate_frames),
    ("read_all", ours_read_all_frames, nom_read_all_frames),
    ("owned", ours_owned_frames, nom_owned_frames),
];

const UDP_TIERS: [(&str, Tier, Tier); 3] = [
    ("validate", ours_validate_datagram, nom_validate_datagram),
    ("read_all", ours_read_datagram, nom_read_datagram),
    ("owned", ours_owned_datagram, nom_owned_datagram),
];

struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    records: usize,
    tiers: [(&'static str, Tier, Tier); 3],
}

/// Records per CPU-second of `tier` on `input` over about 0.3 s, and allocations per record.
fn cpu_pass(input: &Input, tier: Tier) -> Option<(f64, f64)> {
    let rounds = (300_000_000 / input.bytes.len().max(1)).clamp(100, 200_000);
    let allocations_before = allocations();
    let before = thread_cpu_ns()?;
    for _ in 0..rounds {
        black_box(tier(black_box(&input.bytes)));
    }
    let spent = thread_cpu_ns()?.checked_sub(before)?;
    let allocated = allocations() - allocations_before;
    let records = (rounds * input.records) as f64;
    Some((records / (spent as f64 / 1e9), allocated as f64 / records))
}

fn cpu_table(inputs: &[Input]) {
    println!(
        "\n| input | tier | ours (records/CPU-s) | nom-teltonika | ratio | allocations/record ours / nom |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for input in inputs {
        for (tier, ours, nom) in input.tiers {
            let (mut best_ours, mut best_nom) = ((0.0, 0.0), (0.0, 0.0));
            for _ in 0..3 {
                let Some(o) = cpu_pass(input, ours) else {
                    return;
                };
                let Some(n) = cpu_pass(input, nom) else {
                    return;
                };
                if o.0 > best_ours.0 {
                    best_ours = o;
                }
                if n.0 > best_nom.0 {
                    best_nom = n;
                }
            }
            println!(
                "| {} | {tier} | {:.2} M | {:.2} M | {:.2}x | {:.2} / {:.2} |",
                input.name,
                best_ours.0 / 1e6,
                best_nom.0 / 1e6,
                best_ours.0 / best_nom.0,
                best_ours.1,
                best_nom.1
            );
        }
    }
}

fn configured<'a>(
    c: &'a mut Criterion,
    name: &str,
    records: usize,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);
    group.throughput(Throughput::Elements(records as u64));
    group
}

fn count_records(stream: &[u8]) -> usize {
    let mut input = stream;
    let mut records = 0;
    while !input.is_empty() {
        let (frame, consumed) = teltonika_codec::decode_tcp_frame(input).expect("valid");
        if let TcpFrameView::Avl(packet) = frame {
            records += usize::from(packet.record_count());
        }
        input = &input[consumed..];
    }
    records
}

fn real_8e_records(stream: &[u8]) -> Vec<teltonika_codec::AvlRecord> {
    let mut records = Vec::new();
    let mut input = stream;
    while !input.is_empty() {
        let (frame, consumed) = teltonika_codec::decode_tcp_frame(input).expect("valid");
        if let TcpFrame::Avl(packet) = frame.to_owned() {
            records.extend(packet.records);
        }
        input = &input[consumed..];
    }
    records
}

fn inputs() -> Vec<Input> {
    let vectors = vectors();
    let captured: Vec<u8> = vectors
        .iter()
        .filter(|v| v.transport == "tcp" && v.codec == "8E" && v.valid && v.bytes.len() <= 1280)
        .flat_map(|v| v.bytes.clone())
        .collect();
    let records = real_8e_records(&captured);

    // The same records packed into frames of at most 1280 bytes, 4 passes over them.
    let mut packed = Vec::new();
    let mut packet = AvlPacket {
        codec: AvlCodec::Codec8Ext,
        records: Vec::new(),
    };
    for record in records.iter().cycle().take(records.len() * 4) {
        packet.records.push(record.clone());
        if TcpFrame::Avl(packet.clone())
            .encode()
            .expect("encode")
            .len()
            > 1280
        {
            let last = packet.records.pop().expect("a record");
            TcpFrame::Avl(packet.clone())
                .encode_into(&mut packed)
                .expect("encode");
            packet.records = vec![last];
        }
    }
    TcpFrame::Avl(packet)
        .encode_into(&mut packed)
        .expect("encode");

    // One ~4 KB datagram of them.
    let mut datagram = Datagram {
        packet_id: 0xCAFE,
        not_usable: 1,
        avl_packet_id: 7,
        imei: "352093085698206".parse().expect("imei"),
        packet: AvlPacket {
            codec: AvlCodec::Codec8Ext,
            records: Vec::new(),
        },
    };
    for record in records.iter().cycle() {
        datagram.packet.records.push(record.clone());
        if datagram.encode().expect("encode").len() > 4096 {
            datagram.packet.records.pop();
            break;
        }
    }
    let udp = datagram.encode().expect("encode");
    let codec16 = vectors
        .iter()
        .find(|v| v.id == "traccar-L42")
        .expect("codec 16 frame")
        .bytes
        .clone();

    let mut inputs = vec![
        Input {
            name: "tcp_8e",
            records: count_records(&packed),
            bytes: packed,
            tiers: TCP_TIERS,
        },
        Input {
            name: "tcp_8e_captured",
            records: count_records(&captured),
            bytes: captured,
            tiers: TCP_TIERS,
        },
        Input {
            name: "udp_8e_4k",
            records: datagram.packet.records.len(),
            bytes: udp,
            tiers: UDP_TIERS,
        },
        Input {
            name: "tcp_16",
            records: count_records(&codec16),
            bytes: codec16,
            tiers: TCP_TIERS,
        },
    ];
    for input in &mut inputs {
        // Both crates must read the same values, and the owned tiers the same records.
        for (tier, ours, nom) in input.tiers {
            assert_eq!(
                ours(&input.bytes),
                nom(&input.bytes),
                "{} {tier}: the crates disagree",
                input.name
            );
        }
        eprintln!(
            "{}: {} records, {} bytes",
            input.name,
            input.records,
            input.bytes.len()
        );
    }
    inputs
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    for input in &inputs {
        let mut group = configured(c, input.name, input.records);
        for (tier, ours, nom) in input.tiers {
            group.bench_function(format!("{tier}/ours"), |b| {
                b.iter(|| ours(black_box(&input.bytes)))
            });
            group.bench_function(format!("{tier}/nom-teltonika"), |b| {
                b.iter(|| nom(black_box(&input.bytes)))
            });
        }
        group.finish();
    }

    // CRC-16/ARC alone, on the data field of the largest real 8E frame (~1 KB).
    let largest = vectors()
        .into_iter()
        .filter(|v| v.codec == "8E" && v.valid && v.transport == "tcp")
        .max_by_key(|v| v.bytes.len())
        .expect("a frame");
    let data = &largest.bytes[8..largest.bytes.len() - 4];
    const TABLE16: crc::Crc<u16, crc::Table<16>> =
        crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_ARC);
    assert_eq!(teltonika_codec::crc16(data), nom_teltonika::crc16(data));
    assert_eq!(teltonika_codec::crc16(data), TABLE16.checksum(data));
    let mut group = c.benchmark_group("crc16_1k");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("ours", |b| {
        b.iter(|| teltonika_codec::crc16(black_box(data)))
    });
    group.bench_function("crc-slice16", |b| {
        b.iter(|| TABLE16.checksum(black_box(data)))
    });
    group.bench_function("nom-teltonika-slice8", |b| {
        b.iter(|| nom_teltonika::crc16(black_box(data)))
    });
    group.finish();

    // Only under `cargo bench` (criterion's test mode, `cargo test --benches`, skips it).
    if std::env::args().any(|arg| arg == "--bench") {
        cpu_table(&inputs);
    }
}

criterion_group!(protocol, benches);
criterion_main!(protocol);
