//! `demo`: one command to see the Processor work (`cargo xtask demo`).
//!
//! Provisions Redis and PostgreSQL like the tests do (environment URLs, else Docker, else the
//! local binaries), seeds a demo organisation/event/entries/devices, starts a Directus
//! stand-in (test-support's stub) with a demo user, starts the real `processor` binary, runs
//! the rally simulator and serves the live map page. Ctrl-C stops everything and removes what
//! it created (the database, the Redis keys).
//!
//! It is NOT a production launcher: everything is local, the "login" is a fixed demo cookie.

mod e2e;
mod page;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use rally_sim::{Publisher, SimConfig, Simulator, decode_frame, encode_frame};
use test_support::{ChildProcess, DirectusStub, Seed, StubUser};

/// The demo user's session cookie value (the page sets it; the stand-in knows it).
const DEMO_COOKIE: &str = "demo-session-cookie";

const USAGE: &str = "demo [--cars N] [--rate HZ] [--port PORT] [--processor PATH] [--run-secs S]
  --cars N          number of cars (default 12)
  --rate HZ         reports per second of the fastest car (default 1)
  --port PORT       port of the map page (default 8080; 0 = any free port)
  --processor PATH  the processor binary (default: next to this binary)
  --run-secs S      stop by itself after S seconds (default: until Ctrl-C)
  --e2e             run the browser end-to-end test against the demo, then stop";

struct Args {
    cars: usize,
    rate: f64,
    port: u16,
    processor: Option<PathBuf>,
    run_secs: Option<u64>,
    e2e: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        cars: 12,
        rate: 1.0,
        port: 8080,
        processor: None,
        run_secs: None,
        e2e: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--cars" => args.cars = value()?.parse().context("--cars: a whole number")?,
            "--rate" => {
                args.rate = value()?
                    .parse()
                    .context("--rate: a number of reports per second")?
            }
            "--port" => args.port = value()?.parse().context("--port: a port number")?,
            "--processor" => args.processor = Some(PathBuf::from(value()?)),
            "--run-secs" => args.run_secs = Some(value()?.parse().context("--run-secs: seconds")?),
            "--e2e" => args.e2e = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if args.cars == 0 || args.cars > 10_000 {
        bail!("--cars must be 1..=10000");
    }
    if !(args.rate > 0.0 && args.rate <= 100.0) {
        bail!("--rate must be in (0, 100]");
    }
    Ok(args)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let processor_bin = match &args.processor {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the demo binary has no directory")?
            .join("processor"),
    };
    if !processor_bin.exists() {
        bail!(
            "{} not found: build it first (`cargo build -p processor`) or pass --processor",
            processor_bin.display()
        );
    }

    println!(
        "demo: provisioning Redis and PostgreSQL (TEST_REDIS_URL / TEST_DATABASE_URL, else Docker, else local binaries)…"
    );
    let install = "install Redis and PostgreSQL (Debian/Ubuntu: `apt-get install redis-server postgresql`; \
                   macOS: `brew install redis postgresql`), or Docker, or set TEST_REDIS_URL / TEST_DATABASE_URL";
    let Some(redis) = test_support::redis().await else {
        bail!("no Redis available: {install}")
    };
    let Some(pg) = test_support::postgres().await else {
        bail!("no PostgreSQL available: {install}")
    };

    // The Directus-managed tables, then the demo rally (the processor applies its own
    // migrations at start-up).
    test_support::load_directus_schema(&pg).await;
    let sim = Simulator::new(SimConfig {
        cars: args.cars,
        reports_per_second: args.rate,
        ..SimConfig::default()
    });
    let imeis = sim.imeis();
    let imei_refs: Vec<&str> = imeis.iter().map(String::as_str).collect();
    let event_id = Seed::new(&pg)
        .await
        .event_with_devices("Demo Rally", &imei_refs)
        .await;

    // The Directus stand-in: the demo user, allowed to see the demo event.
    let stub = DirectusStub::start().await;
    let user = StubUser::new(Seed::uuid(), "demo@example.invalid");
    stub.add_cookie(DEMO_COOKIE, &user);
    stub.allow(&user.id, &event_id);

    // The map page's listener first: its origin goes into LIVE_ALLOWED_ORIGINS.
    let page_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "binding the map page to 127.0.0.1:{} (try --port 0)",
                args.port
            )
        })?;
    let page_port = page_listener.local_addr()?.port();
    let origin = format!("http://127.0.0.1:{page_port}");
    let ws_port = free_port()?;
    let metrics_port = free_port()?;
    let stream = redis.unique_key("telemetry");

    let env: Vec<(String, String)> = [
        ("INSTANCE_ID", "demo-1".to_owned()),
        ("LOG_FORMAT", "pretty".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("REDIS_URL", redis.url().to_owned()),
        ("REDIS_TELEMETRY_STREAM", stream.clone()),
        ("REDIS_READ_BLOCK_MS", "500".to_owned()),
        ("DATABASE_URL", pg.url().to_owned()),
        ("DATABASE_POOL_SIZE", "4".to_owned()),
        ("METRICS_HOST", "127.0.0.1".to_owned()),
        ("METRICS_PORT", metrics_port.to_string()),
        ("LIVE_ENABLED", "true".to_owned()),
        ("LIVE_WS_HOST", "127.0.0.1".to_owned()),
        ("LIVE_WS_PORT", ws_port.to_string()),
        ("LIVE_ALLOWED_ORIGINS", origin.clone()),
        ("LIVE_DEVICE_EVENT_REFRESH_MS", "1000".to_owned()),
        // The shortest re-validation allowed: a revoked session (the e2e test's last step)
        // is closed 4401 within 10 s.
        ("LIVE_REVALIDATE_MS", "10000".to_owned()),
        ("DIRECTUS_URL", stub.url()),
        ("SHUTDOWN_TIMEOUT_MS", "5000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut processor = ChildProcess::spawn(&processor_bin, env);
    wait_for_port(ws_port, &mut processor).await?;

    // The simulator: encode → decode → XADD, as tcp-ingestion does.
    let control = SimulatorControl::default();
    let published = Arc::clone(&control.published);
    let publisher = Publisher::connect(redis.url(), &stream).await?;
    let stage: Vec<(f64, f64)> = sim
        .stage()
        .points()
        .iter()
        .map(|&(lat, lon, _)| (lat, lon))
        .collect();
    let sim_task = tokio::spawn(run_simulator(sim, publisher, control.clone()));

    let config = page::PageConfig {
        ws_url: format!("ws://127.0.0.1:{ws_port}/ws"),
        topic: format!("event:{event_id}"),
        cookie: DEMO_COOKIE.to_owned(),
        stage,
        published,
    };
    let page_task = tokio::spawn(page::serve(page_listener, Arc::new(config)));

    println!(
        "demo: {} cars at up to {} Hz on event {event_id}",
        args.cars, args.rate
    );
    println!("demo: open the map    {origin}/");
    println!("demo: metrics         http://127.0.0.1:{metrics_port}/metrics");
    println!("demo: readiness       http://127.0.0.1:{metrics_port}/readyz");
    println!("demo: Ctrl-C stops everything and removes what it created");

    let e2e_outcome = if args.e2e {
        let screenshot = workspace_target().join("e2e").join("map.png");
        let outcome = e2e::run(
            &format!("{origin}/"),
            args.cars,
            &mut processor,
            &control,
            (&stub, DEMO_COOKIE),
            &screenshot,
        )
        .await;
        match &outcome {
            Ok(()) => println!("e2e: PASSED"),
            Err(error) => println!("e2e: FAILED: {error:#}"),
        }
        Some(outcome)
    } else {
        None
    };

    let mut restarts = tokio::time::interval(Duration::from_millis(500));
    let stop = async {
        match args.run_secs {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    while e2e_outcome.is_none() {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = &mut stop => break,
            _ = restarts.tick() => {
                // The e2e test SIGKILLs the processor: bring it back like a supervisor would.
                if processor.try_status().is_some() {
                    println!("demo: processor exited; restarting it");
                    processor.restart().await;
                }
            }
        }
    }

    println!("demo: stopping…");
    sim_task.abort();
    page_task.abort();
    processor.sigterm();
    let status = processor.wait(Duration::from_secs(10)).await;
    println!("demo: processor exited ({status})");
    drop(stub);
    redis.clear().await;
    drop(redis);
    drop(pg);
    println!("demo: removed the demo database and Redis keys; bye");
    e2e_outcome.unwrap_or(Ok(()))
}

/// `<workspace>/target` (or `CARGO_TARGET_DIR`): where the e2e screenshot goes.
fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || test_support::postgres::workspace_root().join("target"),
        PathBuf::from,
    )
}

/// Shared between the simulator task and the e2e test: how many records were published, and
/// a pause switch (the test pauses publishing to compare counts exactly).
#[derive(Debug, Clone, Default)]
pub(crate) struct SimulatorControl {
    published: Arc<AtomicU64>,
    paused: Arc<AtomicBool>,
}

impl SimulatorControl {
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

/// Waits until the processor accepts connections on its WebSocket port (≤ 60 s).
async fn wait_for_port(port: u16, processor: &mut ChildProcess) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = processor.try_status() {
            bail!(
                "the processor exited ({status}) during start-up:\n{}",
                processor.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the processor did not listen on port {port} within 60 s:\n{}",
        processor.output()
    )
}

/// Advances the rally every 100 ms of wall time and publishes what the cars report.
async fn run_simulator(mut sim: Simulator, publisher: Publisher, control: SimulatorControl) {
    let step = Duration::from_millis(100);
    let mut ticker = tokio::time::interval(step);
    loop {
        ticker.tick().await;
        if control.is_paused() {
            continue;
        }
        let now = time::OffsetDateTime::now_utc();
        for (imei, records) in sim.advance(now, step) {
            let records = match encode_frame(&records).and_then(|frame| decode_frame(&imei, &frame))
            {
                Ok(records) => records,
                Err(error) => {
                    eprintln!("demo: simulator codec error for {imei}: {error}");
                    continue;
                }
            };
            match publisher.publish(&records).await {
                Ok(ids) => {
                    control
                        .published
                        .fetch_add(ids.len() as u64, Ordering::SeqCst);
                }
                Err(error) => eprintln!("demo: publishing failed (Redis down?): {error}"),
            }
        }
    }
}
