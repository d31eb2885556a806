//! A raw WebSocket test client (fastwebsockets, client role) with knobs the real client has
//! not: no pong answers, paused reading, a small receive buffer, raw frames, and a plain HTTP
//! request for refused upgrades.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketWrite};
use http_body_util::Empty;
use hyper::Request;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, watch};

/// What the reader task saw.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A text message, parsed as JSON.
    Message(Value),
    /// A ping from the server.
    Ping,
    /// The server's close frame code.
    Close(u16),
    /// The stream ended (error or EOF) without a close frame.
    Ended(String),
}

/// Client knobs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Answer pings (default true).
    pub(crate) auto_pong: bool,
    /// SO_RCVBUF for the client socket (a slow client's small window).
    pub(crate) recv_buffer: Option<u32>,
    /// Extra request headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Request path.
    pub(crate) path: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auto_pong: true,
            recv_buffer: None,
            headers: Vec::new(),
            path: "/ws".to_owned(),
        }
    }
}

impl Options {
    /// Options with one `Cookie` header.
    pub(crate) fn cookie(cookie: &str) -> Self {
        Self {
            headers: vec![("cookie".to_owned(), cookie.to_owned())],
            ..Self::default()
        }
    }
}

type Writer = WebSocketWrite<WriteHalf<TokioIo<Upgraded>>>;

/// A connected client.
pub(crate) struct Client {
    writer: Arc<Mutex<Writer>>,
    events: mpsc::UnboundedReceiver<Event>,
    paused: watch::Sender<bool>,
}

struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

async fn tcp(addr: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects; `Err` carries the handshake error (e.g. a refused status).
pub(crate) async fn connect(addr: SocketAddr, options: Options) -> Result<Client, String> {
    let stream = tcp(addr, options.recv_buffer)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = Request::builder()
        .method("GET")
        .uri(format!("http://{addr}{}", options.path))
        .header("host", addr.to_string())
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header(
            "sec-websocket-key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("sec-websocket-version", "13");
    for (name, value) in &options.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let (ws, _response) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut read, write) = ws.split(tokio::io::split);
    // Pings are answered here (not by fastwebsockets) so the test sees them.
    read.set_auto_pong(false);
    let answer_pings = options.auto_pong;
    read.set_auto_close(true);
    let writer = Arc::new(Mutex::new(write));
    let (tx, events) = mpsc::unbounded_channel();
    let (paused, mut paused_rx) = watch::channel(false);
    let obligated = Arc::clone(&writer);
    let obligated_pong = Arc::clone(&writer);
    tokio::spawn(async move {
        loop {
            // Paused: stop reading from the socket altogether (a slow client).
            while *paused_rx.borrow() {
                if paused_rx.changed().await.is_err() {
                    return;
                }
            }
            let obligated = Arc::clone(&obligated);
            let mut send_fn = move |frame: Frame<'_>| {
                let owned = Frame::new(
                    true,
                    frame.opcode,
                    None,
                    Payload::Owned(frame.payload.to_vec()),
                );
                let writer = Arc::clone(&obligated);
                async move {
                    // The server may already be gone (e.g. after a 1009): the close frame it
                    // sent is what the test wants to see, not the failed echo.
                    let _ = writer.lock().await.write_frame(owned).await;
                    Ok::<(), std::convert::Infallible>(())
                }
            };
            match read.read_frame(&mut send_fn).await {
                Ok(frame) => match frame.opcode {
                    OpCode::Text => {
                        let value: Value = serde_json::from_slice(&frame.payload)
                            .unwrap_or_else(|e| panic!("server sent non-JSON text: {e}"));
                        let _ = tx.send(Event::Message(value));
                    }
                    OpCode::Ping => {
                        if answer_pings {
                            let pong = Frame::pong(Payload::Owned(frame.payload.to_vec()));
                            let _ = obligated_pong.lock().await.write_frame(pong).await;
                        }
                        let _ = tx.send(Event::Ping);
                    }
                    OpCode::Close => {
                        let code = if frame.payload.len() >= 2 {
                            u16::from_be_bytes([frame.payload[0], frame.payload[1]])
                        } else {
                            1005
                        };
                        let _ = tx.send(Event::Close(code));
                        return;
                    }
                    _ => {}
                },
                Err(error) => {
                    let _ = tx.send(Event::Ended(error.to_string()));
                    return;
                }
            }
        }
    });
    Ok(Client {
        writer,
        events,
        paused,
    })
}

impl Client {
    /// Sends a text frame.
    pub(crate) async fn send_text(&self, text: &str) {
        self.writer
            .lock()
            .await
            .write_frame(Frame::text(Payload::Owned(text.as_bytes().to_vec())))
            .await
            .unwrap();
    }

    /// Sends any frame.
    pub(crate) async fn send_frame(&self, frame: Frame<'static>) {
        let _ = self.writer.lock().await.write_frame(frame).await;
    }

    /// Sends a `subscribe` for `event_id` with integer `id`.
    pub(crate) async fn subscribe(&self, event_id: &str, id: i64) {
        self.send_text(&format!(
            r#"{{"type":"subscribe","topic":"event:{event_id}","id":{id}}}"#
        ))
        .await;
    }

    /// Sends an `unsubscribe` for `event_id` with integer `id`.
    pub(crate) async fn unsubscribe(&self, event_id: &str, id: i64) {
        self.send_text(&format!(
            r#"{{"type":"unsubscribe","topic":"event:{event_id}","id":{id}}}"#
        ))
        .await;
    }

    /// Stops (true) or resumes (false) reading from the socket.
    pub(crate) fn pause(&self, paused: bool) {
        let _ = self.paused.send(paused);
    }

    /// The next event within `within`, or `None`.
    pub(crate) async fn next_event(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next JSON message within `within` (pings are skipped); panics on close or timeout.
    pub(crate) async fn next_message(&mut self, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Message(value)) => return value,
                Some(Event::Ping) => {}
                other => panic!("expected a message within {within:?}, got {other:?}"),
            }
        }
    }

    /// The next message that is not a `keepalive` (pings skipped).
    pub(crate) async fn next_non_keepalive(&mut self, within: Duration) -> Value {
        loop {
            let value = self.next_message(within).await;
            if value["type"] != "keepalive" {
                return value;
            }
        }
    }

    /// Waits for the server's close frame; returns its code.
    pub(crate) async fn closed(&mut self, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Close(code)) => return code,
                Some(Event::Ended(error)) => panic!("stream ended without close: {error}"),
                Some(_) => {}
                None => panic!("no close within {within:?}"),
            }
        }
    }

    /// Everything received within `within` (messages only).
    pub(crate) async fn collect_for(&mut self, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Message(value)) => out.push(value),
                Some(Event::Ping) => {}
                Some(other) => panic!("unexpected {other:?}"),
                None => return out,
            }
        }
    }
}

/// A raw HTTP/1.1 response: status, headers (lowercase names), body.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl RawResponse {
    /// The first header called `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a WebSocket upgrade request (or a plain GET when `upgrade` is false) as raw bytes and
/// reads the whole response (the server closes refused connections).
pub(crate) async fn raw_request(
    addr: SocketAddr,
    path: &str,
    upgrade: bool,
    headers: &[(&str, &str)],
) -> RawResponse {
    send_raw(addr, "GET", path, upgrade, headers).await
}

/// An upgrade request (all the WebSocket headers) with another method than GET.
pub(crate) async fn raw_method_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut with_length = headers.to_vec();
    with_length.push(("content-length", "0"));
    send_raw(addr, method, path, true, &with_length).await
}

async fn send_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    upgrade: bool,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut stream = tcp(addr, None).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    if upgrade {
        request.push_str(
            "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}
