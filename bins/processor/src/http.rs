//! The metrics and health server on `METRICS_HOST:METRICS_PORT` (hyper 1, HTTP/1.1).
//!
//! - `GET /metrics`: Prometheus text exposition of the global `metrics` recorder.
//! - `GET /healthz`: 200 while the process's loops are alive ([`Liveness`]), else 503.
//! - `GET /readyz`: 200 when every readiness [`Probe`] passes (the durable path's Redis
//!   connection, a cached `SELECT 1` on PostgreSQL); else 503 with
//!   `{"status":"unavailable","failing":["postgres"]}` naming each failing dependency.
//! - anything else: 404 (405 for a known path with a method other than GET/HEAD).
//!
//! Not for: the WebSocket server (that is `live-gateway`, on its own port).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// How long a scrape connection may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bucket bounds (seconds) for the `*_duration_seconds` / `*_latency_seconds` histograms.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder as the global `metrics` recorder and returns the handle
/// that renders it. Call once, before any crate's `describe_metrics()`.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)?
        .install_recorder()?;
    Ok(handle)
}

/// Runs the recorder's upkeep (histogram bucket rotation) until `shutdown`.
pub async fn run_upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// A future returned by a [`Probe`].
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// One readiness dependency (Redis, PostgreSQL).
pub trait Probe: Send + Sync + 'static {
    /// The name reported in the 503 body, e.g. `"postgres"`.
    fn name(&self) -> &'static str;
    /// True when the dependency is usable right now. Must be cheap (cached where needed).
    fn check(&self) -> ProbeFuture<'_>;
}

/// Liveness: `/healthz` turns 503 once any loop has died while the process was not
/// shutting down.
#[derive(Debug, Clone, Default)]
pub struct Liveness(Arc<AtomicBool>);

impl Liveness {
    /// Records that a loop ended unexpectedly.
    pub fn mark_dead(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True until [`Liveness::mark_dead`] was called.
    pub fn is_alive(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
    }
}

/// Everything the handlers read.
pub struct State {
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// `/healthz`.
    pub liveness: Liveness,
    /// `/readyz`, checked in order.
    pub probes: Vec<Box<dyn Probe>>,
}

/// Serves on an already-bound `listener` until `shutdown` is cancelled, then lets open
/// connections finish their current request and returns.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Accept errors (EMFILE, ECONNABORTED) are transient: back off briefly.
                warn!(error = %e, "metrics server accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, &req).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    info!("metrics server stopped");
}

/// Binds `addr` (port 0: any free port) and logs the bound address as the `addr` field.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind the metrics server to {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    info!(addr = %bound, "metrics server listening");
    Ok(listener)
}

async fn handle(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.render(),
        ),
        "/healthz" => {
            if state.liveness.is_alive() {
                text(StatusCode::OK, "application/json", r#"{"status":"ok"}"#)
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    r#"{"status":"dead"}"#,
                )
            }
        }
        _ => readiness(state).await,
    }
}

async fn readiness(state: &State) -> Response<Full<Bytes>> {
    let mut failing = Vec::new();
    for probe in &state.probes {
        if !probe.check().await {
            failing.push(probe.name());
        }
    }
    if failing.is_empty() {
        text(StatusCode::OK, "application/json", r#"{"status":"ready"}"#)
    } else {
        // Written by hand to keep the documented key order (status first).
        let failing = serde_json::Value::from(failing);
        let body = format!(r#"{{"status":"unavailable","failing":{failing}}}"#);
        text(StatusCode::SERVICE_UNAVAILABLE, "application/json", body)
    }
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed(&'static str, Arc<AtomicBool>);

    impl Probe for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn check(&self) -> ProbeFuture<'_> {
            let up = self.1.load(Ordering::Relaxed);
            Box::pin(async move { up })
        }
    }

    async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (status, body)
    }

    #[tokio::test]
    async fn endpoints_answer_per_contract() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("processor_test_total", "result" => "ok").increment(0);
        });
        let redis_up = Arc::new(AtomicBool::new(true));
        let pg_up = Arc::new(AtomicBool::new(false));
        let liveness = Liveness::default();
        let state = Arc::new(State {
            metrics: handle,
            liveness: liveness.clone(),
            probes: vec![
                Box::new(Fixed("redis", Arc::clone(&redis_up))),
                Box::new(Fixed("postgres", Arc::clone(&pg_up))),
            ],
        });
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, state, shutdown.clone()));

        let (status, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("processor_test_total{result=\"ok\"} 0"),
            "{body}"
        );

        assert_eq!(get(addr, "GET", "/healthz").await.0, 200);
        let (status, body) = get(addr, "GET", "/readyz").await;
        assert_eq!(status, 503);
        assert_eq!(body, r#"{"status":"unavailable","failing":["postgres"]}"#);
        redis_up.store(false, Ordering::Relaxed);
        let (_, body) = get(addr, "GET", "/readyz").await;
        assert_eq!(
            body,
            r#"{"status":"unavailable","failing":["redis","postgres"]}"#
        );
        redis_up.store(true, Ordering::Relaxed);
        pg_up.store(true, Ordering::Relaxed);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);

        assert_eq!(get(addr, "GET", "/nope").await.0, 404);
        assert_eq!(get(addr, "POST", "/metrics").await.0, 405);

        liveness.mark_dead();
        assert_eq!(get(addr, "GET", "/healthz").await.0, 503);

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
