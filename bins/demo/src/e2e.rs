//! The browser end-to-end test (`cargo xtask e2e`, a step of `cargo xtask ci`): headless
//! Chromium, driven over WebDriver (chromedriver's HTTP JSON API), loads the live map of a
//! running demo and checks what a person would: every car drawn, cars moving, the page's
//! counter equal to what the simulator published, a reconnect after the processor is
//! SIGKILLed and restarted, and — once the session is revoked in the Directus stand-in — the
//! close 4401 shown as "log in again" with no reconnect. A screenshot is saved under
//! `target/e2e/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use test_support::{ChildProcess, DirectusStub};

use crate::SimulatorControl;

/// What the page exposes in `window.liveMapState`, as read by the test.
#[derive(Debug, Clone, Default)]
struct PageState {
    connected: bool,
    connects: u64,
    received: u64,
    /// The status line the page shows.
    status: String,
    /// The page gave up reconnecting (a close said reconnecting cannot help).
    stopped: bool,
    /// deviceId → (lat, lon)
    cars: std::collections::BTreeMap<String, (f64, f64)>,
}

const READ_STATE: &str = "const s = window.liveMapState; if (!s) return null; \
    return JSON.stringify({connected: s.connected, connects: s.connects, received: s.positionsReceived, \
    status: s.status, stopped: s.stopped, \
    cars: Object.fromEntries(Object.entries(s.cars).map(([k, v]) => [k, [v.lat, v.lon]]))});";

/// A WebDriver session on a chromedriver child process.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: tokio::process::Child,
}

impl Browser {
    async fn start(chromedriver: &Path, chromium: &Path, profile: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        // Unified workspace features build reqwest without a TLS provider; we speak plain
        // HTTP, but reqwest still wants one installed. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Self {
            http,
            base,
            session: String::new(),
            driver,
        };
        let ready = poll(Duration::from_secs(20), || async {
            let status = browser.call("GET", "/status", None).await.ok()?;
            status["ready"].as_bool().filter(|&ready| ready)
        })
        .await;
        if ready.is_none() {
            bail!("chromedriver did not become ready within 20 s");
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1200,800",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let created = browser.call("POST", "/session", Some(capabilities)).await?;
        browser.session = created["sessionId"]
            .as_str()
            .context("chromedriver returned no session id")?
            .to_owned();
        Ok(browser)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("WebDriver {method} {path}: not JSON: {text:.200}"))?;
        if !status.is_success() {
            bail!(
                "WebDriver {method} {path}: {status}: {:.300}",
                value["value"]
            );
        }
        Ok(value["value"].clone())
    }

    async fn open(&self, url: &str) -> anyhow::Result<()> {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    async fn state(&self) -> anyhow::Result<PageState> {
        let path = format!("/session/{}/execute/sync", self.session);
        let value = self
            .call(
                "POST",
                &path,
                Some(json!({"script": READ_STATE, "args": []})),
            )
            .await?;
        let Some(text) = value.as_str() else {
            return Ok(PageState::default());
        };
        let raw: Value = serde_json::from_str(text)?;
        let cars = raw["cars"]
            .as_object()
            .map(|cars| {
                cars.iter()
                    .filter_map(|(id, pair)| {
                        Some((id.clone(), (pair[0].as_f64()?, pair[1].as_f64()?)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(PageState {
            connected: raw["connected"].as_bool().unwrap_or(false),
            connects: raw["connects"].as_u64().unwrap_or(0),
            received: raw["received"].as_u64().unwrap_or(0),
            status: raw["status"].as_str().unwrap_or_default().to_owned(),
            stopped: raw["stopped"].as_bool().unwrap_or(false),
            cars,
        })
    }

    async fn screenshot(&self, to: &Path) -> anyhow::Result<()> {
        let path = format!("/session/{}/screenshot", self.session);
        let encoded = self.call("GET", &path, None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().context("screenshot is not a string")?)?;
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(to, png)?;
        Ok(())
    }

    async fn quit(mut self) {
        let path = format!("/session/{}", self.session);
        let _ = self.call("DELETE", &path, None).await;
        let _ = self.driver.kill().await;
    }
}

/// Polls `probe` every 200 ms until it returns `Some` or `limit` passes.
async fn poll<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Runs the browser test against the demo at `page_url` with `cars` cars.
pub(crate) async fn run(
    page_url: &str,
    cars: usize,
    processor: &mut ChildProcess,
    simulator: &SimulatorControl,
    session: (&DirectusStub, &str),
    screenshot: &Path,
) -> anyhow::Result<()> {
    let chromedriver =
        find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .context("chromedriver not found: `apt-get install chromium chromium-driver`")?;
    let chromium = find_program(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])
        .context("chromium not found: `apt-get install chromium chromium-driver`")?;
    let profile = tempfile_dir()?;
    let browser = Browser::start(&chromedriver, &chromium, &profile).await?;
    let outcome = check(&browser, page_url, cars, processor, simulator, session).await;
    // The screenshot is most useful when the test fails: take it either way.
    if let Err(error) = browser.screenshot(screenshot).await {
        eprintln!("e2e: no screenshot: {error:#}");
    } else {
        println!("e2e: screenshot saved to {}", screenshot.display());
    }
    browser.quit().await;
    let _ = std::fs::remove_dir_all(&profile);
    outcome
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("demo-e2e-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn check(
    browser: &Browser,
    page_url: &str,
    cars: usize,
    processor: &mut ChildProcess,
    simulator: &SimulatorControl,
    (directus, cookie): (&DirectusStub, &str),
) -> anyhow::Result<()> {
    browser.open(page_url).await?;

    // 1. Every car is drawn (snapshot or live positions).
    let state = poll(Duration::from_secs(30), || async {
        let state = browser.state().await.ok()?;
        (state.connected && state.cars.len() == cars).then_some(state)
    })
    .await;
    let Some(first) = state else {
        let last = browser.state().await.unwrap_or_default();
        bail!(
            "the page did not show all {cars} cars within 30 s (connected: {}, cars shown: {})",
            last.connected,
            last.cars.len()
        );
    };
    println!("e2e: page connected, {} cars drawn", first.cars.len());

    // 2. Cars move.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = browser.state().await?;
    let moved = moved_cars(&first, &later);
    if moved * 2 < cars {
        bail!("only {moved} of {cars} cars moved in 4 s");
    }
    println!("e2e: {moved} of {cars} cars moved in 4 s");

    // 3. The page's counter matches what was published: pause the simulator, let the
    //    pipeline drain, count, publish for a while, pause, drain, count again.
    simulator.pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (page_before, published_before) = (browser.state().await?.received, simulator.published());
    simulator.resume();
    tokio::time::sleep(Duration::from_secs(5)).await;
    simulator.pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (page_after, published_after) = (browser.state().await?.received, simulator.published());
    simulator.resume();
    let page_delta = page_after - page_before;
    let published_delta = published_after - published_before;
    if published_delta == 0 || page_delta != published_delta {
        bail!(
            "the page received {page_delta} positions while the simulator published {published_delta}"
        );
    }
    println!("e2e: the page received exactly the {published_delta} positions published");

    // 4. Kill the processor; the page reconnects to the restarted one and cars move again.
    let connects_before = browser.state().await?.connects;
    processor.sigkill();
    let _ = processor.wait(Duration::from_secs(10)).await;
    println!("e2e: processor SIGKILLed; restarting it");
    processor.restart().await;
    let reconnected = poll(Duration::from_secs(45), || async {
        let state = browser.state().await.ok()?;
        (state.connected && state.connects > connects_before).then_some(state)
    })
    .await;
    let Some(reconnected) = reconnected else {
        bail!("the page did not reconnect within 45 s of the processor's restart");
    };
    println!(
        "e2e: page reconnected (connection #{})",
        reconnected.connects
    );
    let moving_again = poll(Duration::from_secs(15), || async {
        let state = browser.state().await.ok()?;
        (state.received > reconnected.received && moved_cars(&reconnected, &state) * 2 >= cars)
            .then_some(())
    })
    .await;
    if moving_again.is_none() {
        bail!("cars did not move again within 15 s of the reconnect");
    }
    println!("e2e: cars move again after the reconnect");

    // 5. The session ends: the processor's re-validation (LIVE_REVALIDATE_MS) closes 4401, the
    //    page says "log in again" and does not reconnect.
    directus.revoke(cookie);
    let expired = poll(Duration::from_secs(30), || async {
        let state = browser.state().await.ok()?;
        (state.stopped && !state.connected).then_some(state)
    })
    .await;
    let Some(expired) = expired else {
        let last = browser.state().await.unwrap_or_default();
        bail!(
            "the page did not stop within 30 s of the session's revocation (status: {:?})",
            last.status
        );
    };
    if !expired.status.contains("log in again") {
        bail!("after the revocation the page shows {:?}", expired.status);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = browser.state().await?;
    if later.connects != expired.connects || later.connected {
        bail!(
            "the page reconnected after close 4401 (connection #{} → #{})",
            expired.connects,
            later.connects
        );
    }
    println!(
        "e2e: session revoked → close 4401 → the page says {:?} and stays closed",
        expired.status
    );
    Ok(())
}

fn moved_cars(before: &PageState, after: &PageState) -> usize {
    before
        .cars
        .iter()
        .filter(|(id, position)| after.cars.get(*id).is_some_and(|now| now != *position))
        .count()
}
