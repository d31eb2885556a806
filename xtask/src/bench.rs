//! `cargo xtask bench <what>`: end-to-end benchmarks against the local Redis and PostgreSQL.
//!
//! - `pipeline`: pre-loads a stream with realistic records (10 % duplicates), runs the
//!   release `processor` on it as a child process, and times it until every row is in
//!   `positions` and nothing is pending; in the same run, measures the ceiling — a plain
//!   `COPY` of the same unique rows into an empty copy of the table — and reports the ratio,
//!   the processor's peak RSS (`VmHWM`) and its CPU time.
//!
//! - `live`: the live path (idle memory per connection, delivery latency, ceiling); see
//!   `bench_live.rs`.
//!
//! Not a test: nothing here asserts; it prints figures (recorded in `docs/operations.md`).
//! It talks to the services through `redis-cli` and `psql` to keep xtask light, uses its own
//! database (`processor_bench`) and stream key, and removes both afterwards.
//!
//! Options (`pipeline`): `--records N` (default 1 000 000), `--dup-pct P` (10), `--devices D`
//! (5 000), `--no-build`. `BENCH_REDIS_URL` / `BENCH_DATABASE_URL` (an admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) pick the servers; `WRITE_BATCH_SIZE`,
//! `DATABASE_POOL_SIZE`, `REDIS_READ_COUNT` are passed to the processor when set.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ci::project_root;
use teltonika_codec::stream_record::{
    AttributeValue, EntryCodec, StreamRecord, encode_entry, format_timestamp,
};

const DATABASE: &str = "processor_bench";
const STREAM: &str = "bench:pipeline:telemetry";
const COLUMNS: &str = "device_id, ts, latitude, longitude, altitude, angle, speed, satellites, priority, event_io_id, attributes";

/// Dispatches `cargo xtask bench <what>`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("pipeline") => pipeline(&args[1..]),
        Some("live") => crate::bench_live::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench pipeline [--records N] [--dup-pct P] [--devices D] [--no-build]\n       cargo xtask bench live [--connections N] [--clients N] [--devices N] [--step-secs S] [--max-steps N] [--no-build]"
        ),
    }
}

struct Options {
    records: u32,
    dup_pct: u32,
    devices: u32,
    build: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        records: 1_000_000,
        dup_pct: 10,
        devices: 5_000,
        build: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || -> anyhow::Result<u32> {
            it.next()
                .context("missing value")?
                .parse()
                .with_context(|| format!("bad value for {arg}"))
        };
        match arg.as_str() {
            "--records" => o.records = value()?,
            "--dup-pct" => o.dup_pct = value()?.min(100),
            "--devices" => o.devices = value()?.max(1),
            "--no-build" => o.build = false,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

fn pipeline(args: &[String]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let root = project_root();
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let bench_url = with_database(&admin_url, DATABASE);

    if o.build {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "processor"])
            .current_dir(&root)
            .status()?;
        if !status.success() {
            bail!("cargo build --release -p processor failed");
        }
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), PathBuf::from);
    let binary = target.join("release").join("processor");

    let work = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run_pipeline(&o, &binary, &redis_url, &admin_url, &bench_url, &work);
    // Clean up whatever happened.
    let _ = psql(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
    );
    let _ = redis(&redis_url, &["DEL", STREAM, &format!("{STREAM}:dead")]);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_pipeline(
    o: &Options,
    binary: &Path,
    redis_url: &str,
    admin_url: &str,
    bench_url: &str,
    work: &Path,
) -> anyhow::Result<()> {
    psql(
        admin_url,
        &format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
    )?;
    psql(admin_url, &format!("CREATE DATABASE {DATABASE}"))?;
    redis(redis_url, &["DEL", STREAM, &format!("{STREAM}:dead")])?;

    // 1. Generate and pre-load (not timed against the processor).
    println!(
        "generating {} records ({} % duplicates, {} devices)",
        o.records, o.dup_pct, o.devices
    );
    let records = generate(o);
    let unique: HashSet<(String, i64)> = records
        .iter()
        .map(|r| (r.device_id.clone(), r.timestamp_ms()))
        .collect();
    let unique_rows = unique.len();
    let resp = work.join("load.resp");
    write_resp(&records, &resp)?;
    let loaded = Instant::now();
    let status = Command::new("redis-cli")
        .args(["-u", redis_url, "--pipe"])
        .stdin(std::fs::File::open(&resp)?)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("redis-cli --pipe failed");
    }
    println!(
        "pre-loaded in {:.1} s ({unique_rows} unique rows)",
        loaded.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&resp)?;

    // 2. The processor, timed until the group has no lag and nothing pending.
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs([
            ("INSTANCE_ID", "bench-1"),
            ("REDIS_URL", redis_url),
            ("REDIS_TELEMETRY_STREAM", STREAM),
            ("DATABASE_URL", bench_url),
            ("LIVE_ENABLED", "false"),
            ("METRICS_HOST", "127.0.0.1"),
            ("METRICS_PORT", "0"),
            ("LOG_LEVEL", "info"),
        ])
        .envs(
            ["WRITE_BATCH_SIZE", "DATABASE_POOL_SIZE", "REDIS_READ_COUNT"]
                .iter()
                .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
        )
        .current_dir(work)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning {}", binary.display()))?;
    let pid = child.id();
    let lines = pump_lines(&mut child);
    let spawned = Instant::now();
    wait_for_line(&lines, "processor running", Duration::from_secs(60))?;
    let started = Instant::now();
    let cpu_before = process_cpu_ticks(pid)?;
    let total_before = total_busy_ticks()?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(status) = child.try_wait()? {
            bail!("the processor exited early: {status}");
        }
        let (lag, pending) = group_state(redis_url)?;
        if lag == Some(0) && pending == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("not drained after 30 minutes (lag {lag:?}, pending {pending})");
        }
    }
    let took = started.elapsed();
    let cpu = process_cpu_ticks(pid)? - cpu_before;
    let total = total_busy_ticks()? - total_before;
    let hwm_kb = vm_hwm_kb(pid)?;
    let _ = Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status();
    let exit = child.wait()?;
    let rows: u64 = psql(bench_url, "SELECT count(*) FROM positions")?
        .trim()
        .parse()?;
    if rows != unique_rows as u64 {
        bail!("positions holds {rows} rows, expected {unique_rows}");
    }

    // 3. The ceiling: COPY of the same unique rows into an empty copy of the table.
    let csv = work.join("rows.csv");
    write_csv(&records, &csv)?;
    psql(
        bench_url,
        "CREATE TABLE positions_copy (LIKE positions INCLUDING ALL)",
    )?;
    psql(bench_url, "CHECKPOINT")?;
    let copy_started = Instant::now();
    psql(
        bench_url,
        &format!(
            "\\copy positions_copy ({COLUMNS}) FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ),
    )?;
    let copy_took = copy_started.elapsed();

    let ticks_per_s = clock_ticks()?;
    let cpu_s = cpu as f64 / ticks_per_s;
    let secs = took.as_secs_f64();
    println!();
    println!(
        "processor: {} records ({unique_rows} rows) in {secs:.2} s (start-up {:.2} s, exit {exit})",
        o.records,
        (started - spawned).as_secs_f64()
    );
    println!(
        "  {:.0} records/s, {:.0} rows/s",
        f64::from(o.records) / secs,
        unique_rows as f64 / secs
    );
    println!(
        "COPY ceiling: {unique_rows} rows in {:.2} s = {:.0} rows/s",
        copy_took.as_secs_f64(),
        unique_rows as f64 / copy_took.as_secs_f64()
    );
    println!(
        "ratio to the ceiling (rows/s): {:.0} %",
        100.0 * copy_took.as_secs_f64() / secs
    );
    println!(
        "processor peak RSS (VmHWM): {:.1} MB",
        hwm_kb as f64 / 1024.0
    );
    println!(
        "processor CPU: {cpu_s:.2} s = {:.3} s per 100k records; {:.0} % of all CPU busy time during the run",
        cpu_s / (f64::from(o.records) / 100_000.0),
        100.0 * cpu as f64 / total.max(1) as f64
    );
    Ok(())
}

/// Deterministic records: `devices` trackers, one fix every 10 s each; `dup_pct` % of the
/// records repeat one of the previous 10 000 (inside and across batches).
fn generate(o: &Options) -> Vec<StreamRecord> {
    let base = time::OffsetDateTime::from_unix_timestamp(1_777_712_400)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut out: Vec<StreamRecord> = Vec::with_capacity(o.records as usize);
    let mut fresh = 0u32;
    for _ in 0..o.records {
        if !out.is_empty() && next() % 100 < u64::from(o.dup_pct) {
            let back = (next() % 10_000) as usize % out.len();
            let copy = out[out.len() - 1 - back].clone();
            out.push(copy);
            continue;
        }
        let device = fresh % o.devices;
        let step = fresh / o.devices;
        fresh += 1;
        let mut r = StreamRecord::new(
            format!("35630704{device:07}"),
            base + time::Duration::seconds(i64::from(step) * 10),
            41.3275 + f64::from(step % 10_000) * 1e-5,
            19.8187 + f64::from(device % 1000) * 1e-5,
        );
        r.priority = Some(1);
        r.altitude = Some(112);
        r.angle = Some((step % 360) as u16);
        r.satellites = Some(11);
        r.speed = Some((step % 180) as u16);
        r.event_io_id = Some(0);
        r.attributes = vec![
            (16, AttributeValue::BigInt(i128::from(step) * 1_000)),
            (21, AttributeValue::Number(4)),
            (66, AttributeValue::Number(12_450)),
            (67, AttributeValue::Number(4_100)),
            (239, AttributeValue::Number(1)),
            (240, AttributeValue::Number(1)),
        ];
        out.push(r);
    }
    out
}

/// The records as `XADD` commands in the Redis protocol, for `redis-cli --pipe`.
fn write_resp(records: &[StreamRecord], path: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut buf = String::new();
    for record in records {
        let fields = encode_entry(record, EntryCodec::Codec8E);
        buf.clear();
        let args = 3 + 2 * fields.len();
        write!(
            buf,
            "*{args}\r\n$4\r\nXADD\r\n${}\r\n{STREAM}\r\n$1\r\n*\r\n",
            STREAM.len()
        )?;
        for (k, v) in &fields {
            write!(buf, "${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len())?;
        }
        out.write_all(buf.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The unique rows as CSV in the column order of [`COLUMNS`] (first occurrence wins, as in
/// the processor).
fn write_csv(records: &[StreamRecord], path: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut seen = HashSet::new();
    let mut line = String::new();
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in records {
        if !seen.insert((r.device_id.clone(), r.timestamp_ms())) {
            continue;
        }
        line.clear();
        let ts = format_timestamp(r.timestamp);
        let mut attributes = serde_json::Map::new();
        for (id, value) in &r.attributes {
            let v = match value {
                AttributeValue::Number(n) => serde_json::Value::from(*n),
                AttributeValue::BigInt(n) => serde_json::Value::from(n.to_string()),
                AttributeValue::Bytes(b) => serde_json::Value::from(base64(b)),
            };
            attributes.insert(id.to_string(), v);
        }
        let json = serde_json::Value::Object(attributes)
            .to_string()
            .replace('"', "\"\"");
        writeln!(
            line,
            "{},{ts},{},{},{},{},{},{},{},{},\"{json}\"",
            r.device_id,
            r.latitude,
            r.longitude,
            opt(r.altitude.map(|v| v.to_string())),
            opt(r.angle.map(|v| v.to_string())),
            opt(r.speed.map(|v| v.to_string())),
            opt(r.satellites.map(|v| v.to_string())),
            opt(r.priority.map(|v| v.to_string())),
            opt(r.event_io_id.map(|v| v.to_string())),
        )?;
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn pump_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    needle: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("the processor did not log {needle:?} within {timeout:?}"),
        }
    }
}

/// (`lag`, `pending`) of the `processor` group, from `XINFO GROUPS`.
fn group_state(redis_url: &str) -> anyhow::Result<(Option<u64>, u64)> {
    let out = redis(redis_url, &["XINFO", "GROUPS", STREAM])?;
    let words: Vec<&str> = out.lines().map(str::trim).collect();
    let value = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    let lag = value("lag").and_then(|v| v.parse().ok());
    let pending = value("pending")
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    Ok((lag, pending))
}

fn redis(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()?;
    if !out.status.success() {
        bail!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

fn process_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc/pid/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, i.e. 12 and 13 after the ')'.
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn total_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    Ok(v.iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| x)
        .sum())
}

fn vm_hwm_kb(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

fn clock_ticks() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(&[1, 2, 3, 4]), "AQIDBA==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn generated_records_have_the_requested_duplicates() {
        let o = Options {
            records: 20_000,
            dup_pct: 10,
            devices: 50,
            build: false,
        };
        let records = generate(&o);
        let unique: HashSet<_> = records
            .iter()
            .map(|r| (r.device_id.clone(), r.timestamp_ms()))
            .collect();
        let dups = records.len() - unique.len();
        assert!((1500..2500).contains(&dups), "{dups}");
    }
}
