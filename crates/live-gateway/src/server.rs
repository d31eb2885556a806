//! The HTTP side: accept loop, the upgrade checks in the protocol's order, connection tasks,
//! and the drain on shutdown.
//!
//! Refusals (docs/live-protocol.md): other path 404, not a GET upgrade 426, over capacity 503,
//! cross-site `Origin` 403, no or rejected credentials 401, Directus unable to answer 503. Each
//! with `Connection: close` and a short JSON body. hyper's graceful shutdown does not follow
//! upgraded connections, so every connection task is spawned on a [`TaskTracker`] that the
//! drain waits for.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use directus_auth::{Credentials, Identity};
use fastwebsockets::upgrade::{UpgradeFut, is_upgrade_request, upgrade};
use fastwebsockets::{Role, after_handshake_split};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::conn::{Conn, PrefixedRead, run_reader, run_writer};
use crate::hub::{Hub, LiveMetrics};
use crate::origin::origin_allowed;

type Body = Either<Empty<Bytes>, Full<Bytes>>;

/// Gives the connection slot back when dropped (unless the slot was handed on).
struct Slot {
    hub: Arc<Hub>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.release_slot();
    }
}

/// Accepts connections until `cancel`, then closes every WebSocket with 1001 and waits for
/// them (at most `shutdown_timeout`).
pub(crate) async fn accept_loop(hub: Arc<Hub>, listener: TcpListener, cancel: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                // Latency over throughput: positions are small and must go out at once.
                let _ = stream.set_nodelay(true);
                tracker.spawn(serve_http(
                    Arc::clone(&hub),
                    stream,
                    cancel.clone(),
                    tracker.clone(),
                ));
            }
            Err(error) => {
                // EMFILE and friends: back off a little instead of spinning.
                warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let open = hub.connection_count();
    info!(
        connections = open,
        "live server stopping: closing connections with 1001"
    );
    tracker.close();
    if tokio::time::timeout(hub.config.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = hub.connection_count(),
            "live connections not drained within the shutdown timeout"
        );
    }
}

async fn serve_http(
    hub: Arc<Hub>,
    stream: TcpStream,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let service = {
        let hub = Arc::clone(&hub);
        let cancel = cancel.clone();
        service_fn(move |request| {
            handle(Arc::clone(&hub), request, cancel.clone(), tracker.clone())
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(hub.config.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                debug!(%error, "http connection ended with an error");
            }
        }
        () = cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(hub.config.close_handshake_timeout, connection).await;
        }
    }
}

fn refusal(status: StatusCode, error: &'static str) -> Response<Body> {
    let body = format!("{{\"error\":\"{error}\"}}");
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UPGRADE_REQUIRED {
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    response
}

async fn handle(
    hub: Arc<Hub>,
    mut request: Request<Incoming>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> Result<Response<Body>, Infallible> {
    if request.uri().path() != hub.config.ws_path {
        return Ok(refusal(StatusCode::NOT_FOUND, "not-found"));
    }
    // A WebSocket upgrade is a GET (RFC 6455 §4.1): anything else on the path is not one.
    if request.method() != Method::GET || !is_upgrade_request(&request) {
        return Ok(refusal(StatusCode::UPGRADE_REQUIRED, "upgrade-required"));
    }
    if cancel.is_cancelled() {
        return Ok(refusal(StatusCode::SERVICE_UNAVAILABLE, "shutting-down"));
    }
    // 1. Capacity.
    if !hub.try_reserve_slot() {
        LiveMetrics::connection_result("over_capacity");
        return Ok(refusal(StatusCode::SERVICE_UNAVAILABLE, "over-capacity"));
    }
    let slot = Slot {
        hub: Arc::clone(&hub),
    };
    // 2. Origin.
    let headers = request.headers();
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin_allowed(origin, host, &hub.config.allowed_origins) {
        LiveMetrics::connection_result("forbidden_origin");
        return Ok(refusal(StatusCode::FORBIDDEN, "forbidden-origin"));
    }
    // 3. Credentials, checked by Directus.
    let Some(credentials) = Credentials::from_headers(headers) else {
        LiveMetrics::connection_result("unauthorized");
        return Ok(refusal(StatusCode::UNAUTHORIZED, "unauthorized"));
    };
    match hub.directus.who_is(&credentials).await {
        Ok(Identity::User(_)) => {}
        Ok(Identity::Unauthorized) => {
            LiveMetrics::connection_result("unauthorized");
            return Ok(refusal(StatusCode::UNAUTHORIZED, "unauthorized"));
        }
        Err(error) => {
            debug!(%error, "directus could not answer an upgrade");
            LiveMetrics::connection_result("unavailable");
            return Ok(refusal(StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        }
    }
    // 4. Handshake.
    let (response, upgrade_fut) = match upgrade(&mut request) {
        Ok(parts) => parts,
        Err(error) => {
            debug!(%error, "bad websocket handshake");
            return Ok(refusal(StatusCode::BAD_REQUEST, "bad-handshake"));
        }
    };
    LiveMetrics::connection_result("accepted");
    tracker.spawn(connection_task(hub, upgrade_fut, credentials, slot, cancel));
    Ok(response.map(Either::Left))
}

async fn connection_task(
    hub: Arc<Hub>,
    upgrade_fut: UpgradeFut,
    credentials: Credentials,
    slot: Slot,
    cancel: CancellationToken,
) {
    let ws = match upgrade_fut.await {
        Ok(ws) => ws,
        Err(error) => {
            debug!(%error, "websocket upgrade did not complete");
            return;
        }
    };
    // Take the TCP stream back from hyper's `Upgraded` so the halves need no lock between
    // them; bytes hyper read past the request are replayed first.
    let upgraded = ws.into_inner().into_inner();
    let parts = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => parts,
        Err(_) => {
            // Invariant: serve_http always serves a TokioIo<TcpStream>.
            warn!("upgraded connection is not a TCP stream");
            return;
        }
    };
    let (read_half, write_half) = parts.io.into_inner().into_split();
    // `read_buf` may be a view into hyper's whole read buffer: copy the (usually empty)
    // remainder so that buffer is freed — an idle connection must stay small.
    let leftover = Bytes::copy_from_slice(&parts.read_buf);
    drop(parts.read_buf);
    let (ws_read, _unused_write) = after_handshake_split(
        PrefixedRead::new(leftover, read_half),
        tokio::io::sink(),
        Role::Server,
    );
    let conn = Arc::new(Conn::new(
        hub.next_conn_id(),
        credentials,
        hub.config.max_queued_positions,
    ));
    hub.add_connection(&conn);
    let reader = tokio::spawn(run_reader(Arc::clone(&conn), Arc::clone(&hub), ws_read));
    run_writer(&conn, &hub, write_half, &cancel).await;
    // The reader may still wait on a socket nobody will write to: stop it (cancelling
    // `read_frame` is fine here, the stream is discarded).
    reader.abort();
    hub.remove_connection(&conn);
    drop(slot);
}
