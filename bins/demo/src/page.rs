//! The map page's origin: `/` (sets the demo session cookie), `/map.js`, `/config.json`,
//! `/users/me` (so the page can tell "logged out" from "processor unreachable"), `/stats`
//! (what the simulator published, for the browser test).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

const INDEX_HTML: &str = include_str!("../web/index.html");
const MAP_JS: &str = include_str!("../web/map.js");

/// What the page needs to know, and the simulator's counter.
pub(crate) struct PageConfig {
    pub(crate) ws_url: String,
    pub(crate) topic: String,
    pub(crate) cookie: String,
    pub(crate) stage: Vec<(f64, f64)>,
    pub(crate) published: Arc<AtomicU64>,
}

/// Serves the page until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, config: Arc<PageConfig>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let config = Arc::clone(&config);
                async move { Ok::<_, Infallible>(handle(&config, &request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    if let Ok(value) = "no-store".parse() {
        response
            .headers_mut()
            .insert(hyper::header::CACHE_CONTROL, value);
    }
    response
}

fn has_cookie(request: &Request<Incoming>, cookie: &str) -> bool {
    let wanted = format!("{}={cookie}", test_support::directus_stub::SESSION_COOKIE);
    request
        .headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(';').any(|pair| pair.trim() == wanted))
}

fn handle(config: &PageConfig, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/" | "/index.html" => {
            let mut page = response(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML);
            // The demo "login": the session cookie Directus would set. Cookies are not
            // port-scoped, so it rides along on the WebSocket upgrade to the processor.
            let cookie = format!(
                "{}={}; Path=/; SameSite=Lax; HttpOnly",
                test_support::directus_stub::SESSION_COOKIE,
                config.cookie
            );
            if let Ok(value) = cookie.parse() {
                page.headers_mut().insert(hyper::header::SET_COOKIE, value);
            }
            page
        }
        "/map.js" => response(StatusCode::OK, "text/javascript; charset=utf-8", MAP_JS),
        "/config.json" => {
            let body = serde_json::json!({
                "wsUrl": config.ws_url,
                "topic": config.topic,
                "stage": config.stage,
            });
            response(StatusCode::OK, "application/json", body.to_string())
        }
        "/users/me" => {
            if has_cookie(request, &config.cookie) {
                response(
                    StatusCode::OK,
                    "application/json",
                    r#"{"data":{"id":"demo"}}"#,
                )
            } else {
                response(
                    StatusCode::UNAUTHORIZED,
                    "application/json",
                    r#"{"errors":[{"message":"Invalid user credentials."}]}"#,
                )
            }
        }
        "/stats" => {
            let body = serde_json::json!({
                "published": config.published.load(Ordering::Relaxed),
            });
            response(StatusCode::OK, "application/json", body.to_string())
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}
