//! The live path's load client, run by `cargo xtask bench live` (not a test: it prints figures).
//!
//! Provisions its own database and stream key (via `test-support`), a Directus stub holding one
//! session cookie allowed to one event of `--devices` devices, spawns the release `processor`
//! (`--processor PATH`) with the live path on a loopback port, then:
//!
//! 1. **idle**: `VmRSS` of the processor before and after `--connections` authenticated, idle
//!    WebSocket connections (after 50 warm-up connections), per connection;
//! 2. **delivery**: `--clients` clients subscribed to the event; a publisher XADDs one record
//!    per device per second (the record's timestamp is the publish time, so latency is
//!    `receive time − ts`); delivered frames/s and latency p50/p99/max. The clients are cheap
//!    so that they measure the gateway, not themselves: a hand-made handshake on a plain
//!    `TcpStream`, frames parsed in place from each read (no channel, no allocation, no JSON
//!    parse per frame: only `"deviceId":` and `"ts":` are found), one receive time per read,
//!    a per-task histogram whose touched buckets are added to the shared one after each read;
//!    the publisher pipelines XADDs every `--publish-tick-ms` (1 ms: records spread as
//!    independent trackers send them), owing records by elapsed time so a step keeps
//!    its nominal rate;
//! 3. **ceiling**: the record rate raised step by step until p99 passes 100 ms (bounded steps);
//! 4. throughout, every client checks that no position is older than one it already has for
//!    that device (`order violations`, must be 0).
//!
//! Everything runs over loopback; each phase is bounded in time; the processor is killed on
//! exit (the child handle's drop) and the stream key deleted. NOT for correctness testing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fred::prelude::*;
use live_protocol::Topic;
use live_protocol::client::{Auth, ClientConfig, ClientEvent, ClientHandle, spawn};
use teltonika_codec::stream_record::{EntryCodec, StreamRecord, encode_entry};
use test_support::{ChildProcess, DirectusStub, Seed, StubUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Latency histogram resolution: 1 ms buckets up to this, one overflow bucket above.
const BUCKETS: usize = 5_000;

struct Options {
    processor: String,
    connections: usize,
    clients: usize,
    devices: usize,
    step_secs: u64,
    max_steps: usize,
    /// `LIVE_COALESCE_WINDOW_MS` values: the delivery and ceiling phases run once per value,
    /// each against a fresh processor, so they compare within one run.
    coalesce_ms: Vec<u32>,
    /// The publisher sends what it owes every this many milliseconds (one pipeline each).
    /// 1 ms spreads records as independent trackers do; a longer tick hands the gateway
    /// ready-made batches.
    publish_tick_ms: u64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        processor: String::new(),
        connections: 10_000,
        clients: 1_000,
        devices: 200,
        step_secs: 8,
        max_steps: 11,
        coalesce_ms: vec![0, 20],
        publish_tick_ms: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("missing value for {arg}"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("bad value for {arg}: {e}"))
        };
        match arg.as_str() {
            "--processor" => o.processor.clone_from(&value),
            "--connections" => o.connections = number()?,
            "--clients" => o.clients = number()?.max(1),
            "--devices" => o.devices = number()?.max(1),
            "--step-secs" => o.step_secs = number()?.max(3) as u64,
            "--max-steps" => o.max_steps = number()?,
            "--publish-tick-ms" => o.publish_tick_ms = number()?.max(1) as u64,
            "--coalesce-ms" => {
                o.coalesce_ms = value
                    .split(',')
                    .map(|v| v.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("bad value for {arg}: {e}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.processor.is_empty() {
        return Err("--processor PATH is required".into());
    }
    Ok(o)
}

fn now_ms() -> i64 {
    // The clock is after 1970 (invariant of any machine running this).
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_secs(pid: u32) -> f64 {
    // Fields 14 and 15 of /proc/pid/stat (utime, stime) in clock ticks (100 Hz on Linux).
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Shared receive statistics (atomics: the client tasks run on several threads).
struct Stats {
    frames: AtomicU64,
    violations: AtomicU64,
    max_ms: AtomicU64,
    histogram: Vec<AtomicU64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            frames: AtomicU64::new(0),
            violations: AtomicU64::new(0),
            max_ms: AtomicU64::new(0),
            histogram: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.histogram
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// Percentile (ms) of the difference of two histogram snapshots.
fn percentile(before: &[u64], after: &[u64], p: f64) -> Option<usize> {
    let diff: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let total: u64 = diff.iter().sum();
    if total == 0 {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank within a u64 count"
    )]
    let rank = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut seen = 0;
    diff.iter().position(|&n| {
        seen += n;
        seen >= rank
    })
}

/// The opening bytes of a `position` frame.
const POSITION_PREFIX: &[u8] = b"{\"type\":\"position\"";

/// The `deviceId` and `ts` of a raw `position` frame (the gateway's fixed field order).
fn device_and_ts(frame: &[u8]) -> Option<(&[u8], i64)> {
    let find = |needle: &[u8], from: usize| {
        frame[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| from + p + needle.len())
    };
    let d = find(b"\"deviceId\":\"", 0)?;
    let d_end = d + frame[d..].iter().position(|&b| b == b'"')?;
    let t = find(b"\"ts\":", d_end)?;
    let t_end = t + frame[t..].iter().position(|&b| !b.is_ascii_digit())?;
    let ts = std::str::from_utf8(&frame[t..t_end]).ok()?.parse().ok()?;
    Some((&frame[d..d_end], ts))
}

fn client_config(port: u16, raw: bool) -> ClientConfig {
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"));
    config.auth = Some(Auth::Cookie("directus_session_token=bench".to_owned()));
    config.raw_positions = raw;
    config.connect_timeout = Duration::from_secs(30);
    config.idle_timeout = Duration::from_secs(600);
    config
}

/// Opens `n` idle connections (64 at a time); returns the handles and receivers.
async fn open_idle(
    port: u16,
    n: usize,
) -> Result<Vec<(ClientHandle, mpsc::Receiver<ClientEvent>)>, String> {
    let mut all = Vec::with_capacity(n);
    let mut pending = Vec::new();
    for i in 0..n {
        let mut config = client_config(port, false);
        config.event_capacity = 4;
        pending.push(spawn(config));
        if pending.len() == 64 || i + 1 == n {
            for (handle, mut events) in pending.drain(..) {
                match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
                    Ok(Some(ClientEvent::Connected)) => all.push((handle, events)),
                    other => return Err(format!("connection {i}: {other:?}")),
                }
            }
        }
    }
    Ok(all)
}

async fn close_all(clients: Vec<(ClientHandle, mpsc::Receiver<ClientEvent>)>) {
    for (handle, _events) in &clients {
        let _ = handle.close().await;
    }
    drop(clients);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// One complete server frame at the start of `buf`: `(opcode, payload range, frame length)`.
/// Server frames are unmasked; `None` until the whole frame is buffered.
fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, header) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let total = header + len;
    (buf.len() >= total).then_some((b0 & 0x0f, header..total, total))
}

/// A masked client frame (the mask key is zero: the payload goes as it is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        // Lengths checked by the match arms.
        #[allow(clippy::cast_possible_truncation, reason = "checked < 126")]
        n if n < 126 => frame.push(0x80 | n as u8),
        #[allow(clippy::cast_possible_truncation, reason = "checked <= u16::MAX")]
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

/// Reads more bytes into `buf`; an error at end of stream.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let old = buf.len();
    if buf.capacity() - old < 16 * 1024 {
        buf.reserve(64 * 1024);
    }
    buf.resize(buf.capacity(), 0);
    let n = stream
        .read(&mut buf[old..])
        .await
        .map_err(|e| e.to_string());
    buf.truncate(old + *n.as_ref().unwrap_or(&0));
    match n? {
        0 => Err("connection closed".into()),
        _ => Ok(()),
    }
}

/// Opens a WebSocket on a plain `TcpStream` (handshake by hand, session cookie), subscribes
/// to `topic` and waits for `subscribed`; returns the stream and the bytes read past it.
async fn raw_subscribe(port: u16, topic: &Topic) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Cookie: directus_session_token=bench\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let head_end = loop {
        fill(&mut stream, &mut buf).await?;
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "handshake refused: {}",
            String::from_utf8_lossy(&buf[..head_end])
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    buf.drain(..head_end);
    let subscribe = format!(r#"{{"type":"subscribe","topic":"{topic}","id":1}}"#);
    stream
        .write_all(&client_frame(0x1, subscribe.as_bytes()))
        .await
        .map_err(|e| e.to_string())?;
    // Snapshot frames may come before the acknowledgement; they are dropped here.
    loop {
        while let Some((opcode, payload, total)) = parse_frame(&buf) {
            let body = &buf[payload];
            if opcode == 0x1 && body.starts_with(b"{\"type\":\"subscribed\"") {
                buf.drain(..total);
                return Ok((stream, buf));
            }
            if opcode == 0x8 || body.starts_with(b"{\"type\":\"error\"") {
                return Err(format!("refused: {}", String::from_utf8_lossy(body)));
            }
            buf.drain(..total);
        }
        fill(&mut stream, &mut buf).await?;
    }
}

/// One subscribed client: parses the frames of each read in place (no allocation, no channel
/// per frame), takes one receive time per read, keeps a local histogram and publishes only
/// its touched buckets to the shared one after each read; answers pings; checks order.
async fn raw_reader(mut stream: TcpStream, mut buf: Vec<u8>, stats: Arc<Stats>) {
    let mut local = vec![0_u64; BUCKETS + 1];
    let mut touched: Vec<usize> = Vec::with_capacity(64);
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    loop {
        let received = now_ms();
        let (mut frames, mut violations, mut max) = (0_u64, 0_u64, 0_u64);
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        let mut consumed = 0;
        while let Some((opcode, payload, total)) = parse_frame(&buf[consumed..]) {
            let body = &buf[consumed + payload.start..consumed + payload.end];
            consumed += total;
            match opcode {
                0x1 if body.starts_with(POSITION_PREFIX) => {
                    let Some((device, ts)) = device_and_ts(body) else {
                        continue;
                    };
                    let ms = u64::try_from((received - ts).max(0)).unwrap_or(0);
                    let bucket = usize::try_from(ms).unwrap_or(BUCKETS).min(BUCKETS);
                    if local[bucket] == 0 {
                        touched.push(bucket);
                    }
                    local[bucket] += 1;
                    frames += 1;
                    max = max.max(ms);
                    match latest.get_mut(device) {
                        Some(last) if ts < *last => violations += 1,
                        Some(last) => *last = ts,
                        None => {
                            latest.insert(device.to_vec(), ts);
                        }
                    }
                }
                0x8 => return,
                0x9 => pongs.push(client_frame(0xa, body)),
                _ => {}
            }
        }
        buf.drain(..consumed);
        if frames > 0 {
            stats.frames.fetch_add(frames, Ordering::Relaxed);
            stats.max_ms.fetch_max(max, Ordering::Relaxed);
            if violations > 0 {
                stats.violations.fetch_add(violations, Ordering::Relaxed);
            }
            for b in touched.drain(..) {
                stats.histogram[b].fetch_add(local[b], Ordering::Relaxed);
                local[b] = 0;
            }
        }
        for pong in pongs {
            if stream.write_all(&pong).await.is_err() {
                return;
            }
        }
        if fill(&mut stream, &mut buf).await.is_err() {
            return;
        }
    }
}

fn record(imei: &str, ts_ms: i64, step: u32) -> StreamRecord {
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    StreamRecord {
        device_id: imei.to_owned(),
        timestamp: ts,
        priority: Some(0),
        latitude: 41.3 + f64::from(step % 1000) * 1e-5,
        longitude: 19.8,
        altitude: Some(100),
        angle: Some(90),
        satellites: Some(9),
        speed: Some(80),
        event_io_id: Some(0),
        attributes: Vec::new(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_live: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&o).await {
        eprintln!("bench_live: {e}");
        std::process::exit(1);
    }
}

/// What every phase needs: the provisioned services, the event and its devices.
struct Setup {
    redis: test_support::TestRedis,
    pg: test_support::TestPostgres,
    stub: DirectusStub,
    imeis: Vec<String>,
    topic: Topic,
}

/// A running processor under test.
struct Processor {
    child: ChildProcess,
    pid: u32,
    port: u16,
    stream: String,
}

impl Processor {
    /// Spawns the release processor with the live path on a free loopback port, reading a
    /// fresh stream key, with `LIVE_COALESCE_WINDOW_MS=coalesce_ms`.
    async fn spawn(
        o: &Options,
        setup: &Setup,
        run: usize,
        coalesce_ms: u32,
    ) -> Result<Self, String> {
        let stream = setup.redis.unique_key(&format!("bench-live-{run}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let env: Vec<(String, String)> = [
            ("INSTANCE_ID", "bench-live"),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info"),
            ("REDIS_URL", setup.redis.url()),
            ("REDIS_TELEMETRY_STREAM", &stream),
            ("DATABASE_URL", setup.pg.url()),
            ("METRICS_HOST", "127.0.0.1"),
            ("METRICS_PORT", "0"),
            ("LIVE_ENABLED", "true"),
            ("LIVE_WS_HOST", "127.0.0.1"),
            ("LIVE_WS_PORT", &port.to_string()),
            ("LIVE_MAX_CONNECTIONS", "20000"),
            ("LIVE_COALESCE_WINDOW_MS", &coalesce_ms.to_string()),
            ("DIRECTUS_URL", &setup.stub.url()),
            ("DIRECTUS_CACHE_TTL_MS", "600000"),
            ("SHUTDOWN_TIMEOUT_MS", "5000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut child = ChildProcess::spawn(&o.processor, env);
        child
            .wait_for_json(
                |v| v["message"] == "processor running",
                Duration::from_secs(60),
            )
            .await;
        let pid = child.id().ok_or("processor exited")?;
        Ok(Self {
            child,
            pid,
            port,
            stream,
        })
    }

    /// SIGTERM, wait, delete the stream keys.
    async fn stop(mut self, setup: &Setup) -> Result<(), String> {
        self.child.sigterm();
        let status = self.child.wait(Duration::from_secs(15)).await;
        println!("processor exit: {status}");
        let client = setup.redis.client().await;
        let _: Result<i64, _> = client.del(&self.stream).await;
        let _: Result<i64, _> = client.del(format!("{}:dead", self.stream)).await;
        Ok(())
    }
}

async fn run(o: &Options) -> Result<(), String> {
    let Some(redis) = test_support::redis().await else {
        return Err("Redis unavailable".into());
    };
    let Some(pg) = test_support::postgres().await else {
        return Err("PostgreSQL unavailable".into());
    };
    test_support::load_directus_schema(&pg).await;
    let imeis: Vec<String> = (0..o.devices).map(|i| format!("35630704{i:07}")).collect();
    let imei_refs: Vec<&str> = imeis.iter().map(String::as_str).collect();
    let event = Seed::new(&pg)
        .await
        .event_with_devices("Bench rally", &imei_refs)
        .await;
    let stub = DirectusStub::start().await;
    let user = StubUser::new(Seed::uuid(), "bench@example.com");
    stub.add_cookie("bench", &user);
    stub.allow(&user.id, &event);
    let topic = Topic::for_event(&event).map_err(|e| e.to_string())?;
    let setup = Setup {
        redis,
        pg,
        stub,
        imeis,
        topic,
    };

    for (index, &coalesce_ms) in o.coalesce_ms.iter().enumerate() {
        let mut processor = Processor::spawn(o, &setup, index, coalesce_ms).await?;
        println!(
            "\n== LIVE_COALESCE_WINDOW_MS={coalesce_ms}: processor pid {}, live port {}, load average {}",
            processor.pid,
            processor.port,
            loadavg()
        );
        if index == 0 && o.connections > 0 {
            idle_phase(o, &processor).await?;
        }
        let result = delivery_phase(o, &setup, &mut processor).await;
        processor.stop(&setup).await?;
        result?;
    }
    Ok(())
}

/// Phase 1: RSS per idle authenticated connection.
#[allow(clippy::cast_precision_loss, reason = "figures printed as floats")]
async fn idle_phase(o: &Options, processor: &Processor) -> Result<(), String> {
    let (pid, port) = (processor.pid, processor.port);
    let warm = open_idle(port, 50).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let started = Instant::now();
    let idle = open_idle(port, o.connections).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 / o.connections as f64;
    println!(
        "idle: {} connections in {connect_secs:.1} s; VmRSS {before} KiB -> {after} KiB = {per:.2} KiB/connection (target <= 16); load average {}",
        o.connections,
        loadavg()
    );
    close_all(idle).await;
    close_all(warm).await;
    Ok(())
}

/// Phases 2 and 3: delivery at one record per device per second, then the ceiling.
#[allow(
    clippy::too_many_lines,
    clippy::cast_precision_loss,
    reason = "one linear script of steps; figures printed as floats"
)]
async fn delivery_phase(
    o: &Options,
    setup: &Setup,
    processor: &mut Processor,
) -> Result<(), String> {
    let (pid, port, stream) = (processor.pid, processor.port, &processor.stream);
    let stats = Arc::new(Stats::new());
    let mut readers = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let (tcp, leftover) =
            tokio::time::timeout(Duration::from_secs(30), raw_subscribe(port, &setup.topic))
                .await
                .map_err(|_| format!("client {i}: no subscribed reply"))?
                .map_err(|e| format!("client {i}: {e}"))?;
        readers.push(tokio::spawn(raw_reader(tcp, leftover, Arc::clone(&stats))));
    }
    println!("{} clients subscribed to {}", o.clients, setup.topic);

    let publisher =
        Builder::from_config(Config::from_url(setup.redis.url()).map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| e.to_string())?;
    publisher.init().await.map_err(|e| e.to_string())?;

    // Records per second per step: 1 per device per second first, then raised.
    let base = o.devices as u64;
    // Fine steps past 1 000 records/s, where the ceiling of this machine lies.
    let multipliers = [1_u64, 2, 3, 5, 6, 7, 8, 10, 12, 16, 24];
    let mut last_ts: Vec<i64> = vec![0; o.devices];
    let mut next_device = 0_usize;
    let mut counter = 0_u32;
    println!(
        "step | records/s | offered frames/s | delivered frames/s | ratio | p50 ms | p99 ms | max ms | processor CPU | load average"
    );
    for (step, m) in multipliers.iter().take(o.max_steps.max(1)).enumerate() {
        let rate = base * m;
        let tick = Duration::from_millis(o.publish_tick_ms);
        let mut sent_in_step = 0_u64;
        let settle = Duration::from_secs(2);
        let total = Duration::from_secs(o.step_secs);
        let started = Instant::now();
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut measure: Option<(Instant, u64, Vec<u64>, f64)> = None;
        let mut published_measured = 0_u64;
        stats.max_ms.store(0, Ordering::Relaxed);
        while started.elapsed() < total {
            interval.tick().await;
            if measure.is_none() && started.elapsed() >= settle {
                stats.max_ms.store(0, Ordering::Relaxed);
                measure = Some((
                    Instant::now(),
                    stats.frames.load(Ordering::Relaxed),
                    stats.snapshot(),
                    cpu_secs(pid),
                ));
            }
            // Owed by elapsed time, not by ticks: a slow pipeline round trip (or a skipped tick)
            // is made up in the next batch, so the step keeps its nominal rate.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a small positive count"
            )]
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            let n = usize::try_from(due.saturating_sub(sent_in_step)).unwrap_or(0);
            sent_in_step += n as u64;
            if n == 0 {
                continue;
            }
            let pipe = publisher.pipeline();
            for _ in 0..n {
                let d = next_device;
                next_device = (next_device + 1) % o.devices;
                // Strictly increasing per device, as a tracker's own timestamps are.
                let ts = now_ms().max(last_ts[d] + 1);
                last_ts[d] = ts;
                counter = counter.wrapping_add(1);
                let fields =
                    encode_entry(&record(&setup.imeis[d], ts, counter), EntryCodec::Codec8E);
                let _: () = pipe
                    .xadd(stream, false, None, "*", fields)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let _: Vec<Value> = pipe.all().await.map_err(|e| e.to_string())?;
            if measure.is_some() {
                published_measured += n as u64;
            }
        }
        // Let frames in flight arrive (bounded) before the closing snapshot.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some((t0, frames0, hist0, cpu0)) = measure else {
            continue;
        };
        let elapsed = t0.elapsed().as_secs_f64();
        let frames = stats.frames.load(Ordering::Relaxed) - frames0;
        let hist1 = stats.snapshot();
        // Same window for both: frames in flight at the window's start are counted as those
        // in flight at its end (the 300 ms drain) are not.
        let offered = published_measured as f64 * o.clients as f64 / (elapsed - 0.3);
        let delivered = frames as f64 / (elapsed - 0.3);
        let p50 = percentile(&hist0, &hist1, 0.50);
        let p99 = percentile(&hist0, &hist1, 0.99);
        let max = stats.max_ms.load(Ordering::Relaxed);
        let cpu = (cpu_secs(pid) - cpu0) / elapsed;
        let show = |p: Option<usize>| {
            p.map_or("-".to_owned(), |v| {
                if v >= BUCKETS {
                    format!(">{BUCKETS}")
                } else {
                    v.to_string()
                }
            })
        };
        println!(
            "{} | {rate} | {offered:.0} | {delivered:.0} | {:.2} | {} | {} | {max} | {:.0} % | {}",
            step + 1,
            delivered / offered.max(1.0),
            show(p50),
            show(p99),
            cpu * 100.0,
            loadavg()
        );
        if p99.is_none_or(|v| v > 100) {
            println!("p99 passed 100 ms (or nothing delivered): ceiling reached");
            break;
        }
        if processor.child.try_status().is_some() {
            return Err(format!("processor exited:\n{}", processor.child.output()));
        }
    }
    println!(
        "order violations (a position older than one already received for that device): {}",
        stats.violations.load(Ordering::Relaxed)
    );
    for reader in &readers {
        reader.abort();
    }
    let _ = publisher.quit().await;
    Ok(())
}
