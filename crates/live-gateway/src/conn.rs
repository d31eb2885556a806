//! One WebSocket connection: its shared state, its writer, its reader and its request worker.
//!
//! Three tasks per connection, none of which waits on another's socket:
//! - the **writer** (the connection's own task) owns the socket's write half; it drains the
//!   outbound queue ([`Outbound`]) in batches (all queued frames encoded into one buffer, written
//!   until the socket accepts nothing for the slow-client timeout, then close 1008), sends the
//!   pings and `keepalive`s, and performs the close handshake;
//! - the **reader** owns fastwebsockets' read half. `read_frame` is not cancel-safe, so it runs
//!   in its own task and is never raced in a `select!`; obligated sends (close replies) and
//!   pongs are routed to the writer through the queue;
//! - the **worker** is spawned only while the client has subscribe/unsubscribe requests to
//!   handle (they await Directus and PostgreSQL), so requests of one connection are handled in
//!   order and an idle connection costs no task for it.
//!
//! Ordering rule: a subscription is registered as *pending* before the snapshot query; live
//! positions for a pending topic are buffered (conflated per device); when the snapshot is in,
//! `subscribed` is queued, then the buffered positions newer than the snapshot's — all under the
//! connection's lock, and the writer takes control messages before positions, so no position
//! of a topic precedes its `subscribed` and none falls in the gap.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use directus_auth::Credentials;
use fastwebsockets::{Frame, OpCode, WebSocketError, WebSocketRead};
use live_protocol::{
    ClientMessage, ErrorCode, InboundError, InboundErrorKind, MAX_INBOUND_MESSAGE_BYTES, MessageId,
    Position, ServerMessage, Topic, close, parse_client_message,
};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::hub::{Hub, LiveMetrics, event_key};
use crate::outbound::{Control, EventKey, Item, Outbound, Pushed, QueuedPosition};
use crate::ratelimit::{Bucket, Verdict};
use crate::snapshot;
use crate::wsframe;
use directus_auth::EventAccess;

/// Bytes the writer encodes before one `write_all`.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// A write buffer bigger than this is given back when the connection goes idle.
const IDLE_BUFFER_BYTES: usize = 16 * 1024;
/// How long a socket is kept after our Close when the peer's cannot be read.
const LINGER: Duration = Duration::from_millis(500);
/// Client requests waiting for the worker; more are answered `rate-limited`.
const MAX_PENDING_REQUESTS: usize = 64;
/// The Close reason sent to a client whose socket accepted nothing for the slow-client timeout.
const SLOW_CLIENT_REASON: &str = "slow client";

/// Why and how the writer closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseRequest {
    /// We close: send Close(code, reason), wait for the peer's Close (bounded), drop.
    Local {
        /// The close code.
        code: u16,
        /// A short reason (no secrets).
        reason: &'static str,
    },
    /// The peer closed: echo its Close payload, drop.
    Echo(Bytes),
}

/// A subscribe/unsubscribe request waiting for the worker.
#[derive(Debug)]
enum Request {
    Subscribe { topic: Topic, id: Option<MessageId> },
    Unsubscribe { topic: Topic, id: Option<MessageId> },
}

/// A topic's state on one connection.
#[derive(Debug)]
enum TopicState {
    /// Registered, snapshot in flight: live positions are buffered per device (ts, position).
    Pending(HashMap<Arc<str>, (i64, QueuedPosition)>),
    /// `subscribed` queued: live positions go to the outbound queue.
    Active,
}

#[derive(Debug)]
struct ConnState {
    out: Outbound,
    /// The latest unanswered ping's payload (only the latest needs a pong, RFC 6455 §5.5.3).
    pong: Option<Bytes>,
    topics: HashMap<EventKey, TopicState>,
    close: Option<CloseRequest>,
    requests: VecDeque<Request>,
    worker_running: bool,
    /// The connection is finished: nothing is queued or registered any more.
    shut: bool,
    /// The client is behind: its socket stopped accepting (a write is pending) since the
    /// queue was last empty. Positions are conflated only then (or when the queue is three
    /// quarters full), so a client that keeps up gets every record.
    congested: bool,
}

/// A connection's shared state (see the module doc).
pub(crate) struct Conn {
    /// Process-unique id.
    pub(crate) id: u64,
    /// The credentials the upgrade was authenticated with (re-validated, forwarded on
    /// subscribe). Never logged.
    pub(crate) credentials: Credentials,
    state: Mutex<ConnState>,
    wake: Notify,
    pong_seen: AtomicBool,
    reader_done: CancellationToken,
}

impl Conn {
    /// A new connection with an empty queue.
    pub(crate) fn new(id: u64, credentials: Credentials, max_queued_positions: usize) -> Self {
        Self {
            id,
            credentials,
            state: Mutex::new(ConnState {
                out: Outbound::new(max_queued_positions),
                pong: None,
                topics: HashMap::new(),
                close: None,
                requests: VecDeque::new(),
                worker_running: false,
                shut: false,
                congested: false,
            }),
            wake: Notify::new(),
            pong_seen: AtomicBool::new(false),
            reader_done: CancellationToken::new(),
        }
    }

    /// Wakes the writer (after the broadcaster's positions of a coalescing window are queued).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Offers a live position of `event` (called by the broadcaster; never blocks on I/O).
    /// The writer is not woken: the broadcaster calls [`Conn::wake`] when its coalescing
    /// window ends, so positions close together leave in one write.
    pub(crate) fn offer_position(
        &self,
        hub: &Hub,
        event: EventKey,
        device: &Arc<str>,
        ts: i64,
        bytes: &Bytes,
        redis_ms: u64,
    ) {
        let position = QueuedPosition {
            bytes: bytes.clone(),
            redis_ms,
        };
        let mut state = self.state.lock();
        if state.shut || state.close.is_some() {
            return;
        }
        let pushed = match state.topics.get_mut(&event) {
            None => return,
            Some(TopicState::Pending(buffer)) => {
                match buffer.insert(Arc::clone(device), (ts, position)) {
                    Some(_) => Pushed::Conflated,
                    None => Pushed::Queued,
                }
            }
            Some(TopicState::Active) => {
                let behind = state.congested
                    || state.out.positions_len() >= state.out.max_positions() / 4 * 3;
                state
                    .out
                    .push_position((event, Arc::clone(device)), position, behind)
            }
        };
        drop(state);
        count_push(&hub.metrics, pushed);
    }

    /// Queues a protocol message (never dropped).
    pub(crate) fn send(&self, message: &ServerMessage) {
        let bytes = message.to_bytes();
        let mut state = self.state.lock();
        if state.shut || state.close.is_some() {
            return;
        }
        state.out.push_control(Control::Text(bytes));
        drop(state);
        self.wake.notify_one();
    }

    /// Asks the writer to close the connection with `code` (the first request wins).
    pub(crate) fn request_close(&self, code: u16, reason: &'static str) {
        self.set_close(CloseRequest::Local { code, reason });
    }

    fn set_close(&self, request: CloseRequest) {
        let mut state = self.state.lock();
        if state.close.is_none() && !state.shut {
            state.close = Some(request);
        }
        drop(state);
        self.wake.notify_one();
    }

    fn push_pong(&self, payload: Bytes) {
        self.state.lock().pong = Some(payload);
        self.wake.notify_one();
    }

    /// Marks the connection finished and returns the events it was subscribed to.
    pub(crate) fn shut(&self) -> Vec<EventKey> {
        let mut state = self.state.lock();
        state.shut = true;
        state.requests.clear();
        state.out = Outbound::new(1);
        state.topics.drain().map(|(event, _)| event).collect()
    }

    /// Encodes queued items into `buf` (at most about [`MAX_BATCH_BYTES`]); the redis times of
    /// the positions go to `latencies`. Returns the number of messages and, when the connection
    /// is closing, the close request (then only control messages were taken).
    fn fill(&self, buf: &mut Vec<u8>, latencies: &mut Vec<u64>) -> (u64, Option<CloseRequest>) {
        let mut state = self.state.lock();
        let mut messages = 0;
        if let Some(payload) = state.pong.take() {
            wsframe::encode(buf, wsframe::OpCode::Pong, &payload);
        }
        if let Some(close) = state.close.clone() {
            while let Some(Control::Text(bytes)) = state.out.pop_control() {
                wsframe::encode(buf, wsframe::OpCode::Text, &bytes);
                messages += 1;
            }
            return (messages, Some(close));
        }
        while buf.len() < MAX_BATCH_BYTES {
            match state.out.pop() {
                Some(Item::Control(Control::Text(bytes))) => {
                    wsframe::encode(buf, wsframe::OpCode::Text, &bytes);
                }
                Some(Item::Position(position)) => {
                    wsframe::encode(buf, wsframe::OpCode::Text, &position.bytes);
                    latencies.push(position.redis_ms);
                }
                None => {
                    state.congested = false;
                    break;
                }
            }
            messages += 1;
        }
        (messages, None)
    }

    /// Queues a client request for the worker, spawning it when none runs. Gives the request
    /// back when too many requests are already waiting.
    fn enqueue(self: &Arc<Self>, hub: &Arc<Hub>, request: Request) -> Result<(), Request> {
        let spawn = {
            let mut state = self.state.lock();
            if state.shut || state.close.is_some() {
                return Ok(());
            }
            if state.requests.len() >= MAX_PENDING_REQUESTS {
                return Err(request);
            }
            state.requests.push_back(request);
            !std::mem::replace(&mut state.worker_running, true)
        };
        if spawn {
            tokio::spawn(run_worker(Arc::clone(self), Arc::clone(hub)));
        }
        Ok(())
    }
}

fn count_push(metrics: &LiveMetrics, pushed: Pushed) {
    match pushed {
        Pushed::Queued => {}
        Pushed::Conflated => metrics.conflated.increment(1),
        Pushed::Overflowed(n) => metrics.overflow.increment(n as u64),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// How a write attempt ended.
enum WriteEnd {
    Written,
    /// The socket accepted nothing (not one byte) for the whole limit.
    TimedOut,
    /// The socket is gone.
    Failed,
}

/// Writes `buf[*written..]`, giving up when the socket accepts nothing for `limit`: each byte
/// it takes restarts the clock ("accepts nothing for `LIVE_SLOW_CLIENT_TIMEOUT_MS`", not "takes
/// longer than that for a batch"). `written` tells how far it got, for the close that follows
/// a time-out.
async fn write_until_stalled<W: AsyncWrite + Unpin>(
    io: &mut W,
    buf: &[u8],
    written: &mut usize,
    limit: Duration,
) -> WriteEnd {
    while *written < buf.len() {
        // `write` is cancel-safe: on a time-out nothing of this call was written.
        match tokio::time::timeout(limit, io.write(&buf[*written..])).await {
            Ok(Ok(0) | Err(_)) => return WriteEnd::Failed,
            Ok(Ok(n)) => *written += n,
            Err(_) => return WriteEnd::TimedOut,
        }
    }
    WriteEnd::Written
}

/// [`write_until_stalled`] from the start of `buf`.
async fn write_bounded<W: AsyncWrite + Unpin>(io: &mut W, buf: &[u8], limit: Duration) -> WriteEnd {
    write_until_stalled(io, buf, &mut 0, limit).await
}

/// Writes a batch of data frames; when the socket does not take it at once, the connection is
/// marked congested (positions conflate from then on, until the queue is empty again).
async fn write_data<W: AsyncWrite + Unpin>(
    conn: &Conn,
    io: &mut W,
    buf: &[u8],
    written: &mut usize,
    limit: Duration,
) -> WriteEnd {
    // A socket that takes the whole batch without waiting is keeping up.
    while *written < buf.len() {
        match futures_util::FutureExt::now_or_never(io.write(&buf[*written..])) {
            Some(Ok(0) | Err(_)) => return WriteEnd::Failed,
            Some(Ok(n)) => *written += n,
            None => break,
        }
    }
    if *written == buf.len() {
        return WriteEnd::Written;
    }
    conn.state.lock().congested = true;
    write_until_stalled(io, buf, written, limit).await
}

/// A slow client's socket accepted nothing for `LIVE_SLOW_CLIENT_TIMEOUT_MS`: keep only the
/// rest of the frame it stopped in (`buf[written..]` up to that frame's end, so the stream stays
/// well-formed), ask for close 1008 (no more positions are queued) and return the close request
/// for the closing handshake, which writes the tail and the Close frame if the client reads
/// again within the close-handshake timeout.
fn slow_client_close(conn: &Conn, buf: &mut Vec<u8>, written: usize) -> CloseRequest {
    debug!(
        conn = conn.id,
        "slow client: nothing accepted within the timeout"
    );
    let end = wsframe::frame_end(buf, written);
    buf.truncate(end);
    buf.drain(..written);
    conn.request_close(close::POLICY, SLOW_CLIENT_REASON);
    CloseRequest::Local {
        code: close::POLICY,
        reason: SLOW_CLIENT_REASON,
    }
}

/// Runs the writer until the connection is closed. `shutdown` is the server's stop signal
/// (close 1001).
pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(
    conn: &Conn,
    hub: &Hub,
    mut io: W,
    shutdown: &CancellationToken,
) {
    let config = &hub.config;
    let metrics = &hub.metrics;
    let mut buf: Vec<u8> = Vec::new();
    let mut latencies: Vec<u64> = Vec::new();
    let start = tokio::time::Instant::now() + config.ping_interval;
    let mut ping = tokio::time::interval_at(start, config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    // The socket accepted nothing for the slow-client timeout (the close is then 1008).
    let mut stalled = false;
    let mut sent_since_ping = false;

    let close = 'run: loop {
        // Drain everything queued, batch by batch.
        loop {
            let (messages, closing) = conn.fill(&mut buf, &mut latencies);
            if let Some(close) = closing {
                if !buf.is_empty() {
                    // Best effort: control messages queued before the close (e.g. the
                    // `rate-limited` reply) go out first.
                    let limit = config
                        .close_handshake_timeout
                        .min(config.slow_client_timeout);
                    if !matches!(write_bounded(&mut io, &buf, limit).await, WriteEnd::Written) {
                        return;
                    }
                    metrics.messages_sent.increment(messages);
                    buf.clear();
                }
                break 'run close;
            }
            if buf.is_empty() {
                break;
            }
            let mut written = 0;
            match write_data(
                conn,
                &mut io,
                &buf,
                &mut written,
                config.slow_client_timeout,
            )
            .await
            {
                WriteEnd::Written => {}
                WriteEnd::Failed => return,
                WriteEnd::TimedOut => {
                    stalled = true;
                    break 'run slow_client_close(conn, &mut buf, written);
                }
            }
            metrics.messages_sent.increment(messages);
            if !latencies.is_empty() {
                let now = now_ms();
                for redis_ms in latencies.drain(..) {
                    let ms = now.saturating_sub(redis_ms);
                    metrics.delivery_latency.record(ms as f64 / 1000.0);
                }
            }
            sent_since_ping = true;
            buf.clear();
        }
        if buf.capacity() > IDLE_BUFFER_BYTES {
            buf = Vec::new();
        }
        if latencies.capacity() > 1024 {
            latencies = Vec::new();
        }

        tokio::select! {
            () = conn.wake.notified() => {}
            () = shutdown.cancelled() => {
                conn.request_close(close::GOING_AWAY, "server shutting down");
            }
            () = conn.reader_done.cancelled(), if !conn.has_close() => {
                // The peer went away without a close frame (or the reader asked for a close,
                // which `fill` picks up on the next turn).
                if !conn.has_close() {
                    return;
                }
            }
            _ = ping.tick() => {
                // Only a pong that arrived since the previous ping answers it: the flag is
                // cleared here, before the next ping leaves, so a pong sent before any ping
                // (unsolicited) does not count for the ping that follows.
                let answered = conn.pong_seen.swap(false, Ordering::AcqRel);
                if awaiting_pong && !answered {
                    conn.request_close(close::POLICY, "missed pong");
                    continue;
                }
                wsframe::encode(&mut buf, wsframe::OpCode::Ping, b"");
                let mut messages = 0;
                if !sent_since_ping {
                    let keepalive = ServerMessage::Keepalive { ts: now_ms() as i64 };
                    wsframe::encode(&mut buf, wsframe::OpCode::Text, &keepalive.to_json_vec());
                    messages = 1;
                }
                let mut written = 0;
                match write_until_stalled(&mut io, &buf, &mut written, config.slow_client_timeout)
                    .await
                {
                    WriteEnd::Written => {}
                    WriteEnd::Failed => return,
                    WriteEnd::TimedOut => {
                        stalled = true;
                        break 'run slow_client_close(conn, &mut buf, written);
                    }
                }
                metrics.messages_sent.increment(messages);
                buf.clear();
                awaiting_pong = true;
                sent_since_ping = false;
            }
        }
    };

    // Closing. `buf` is empty, or holds the rest of the frame a slow client's socket stopped in:
    // that client gets the close-handshake timeout to read again and see its 1008.
    let limit = if stalled {
        config.close_handshake_timeout
    } else {
        config
            .close_handshake_timeout
            .min(config.slow_client_timeout)
    };
    match &close {
        CloseRequest::Local { code, reason } => {
            wsframe::encode_close(&mut buf, *code, reason);
            if matches!(write_bounded(&mut io, &buf, limit).await, WriteEnd::Written) {
                if conn.reader_done.is_cancelled() {
                    // The reader stopped (a frame too big, a protocol error): the peer's
                    // Close cannot be seen. Send FIN and linger briefly so the peer reads our
                    // Close before the socket is dropped (dropping with unread input resets
                    // the connection, which may discard the Close in flight).
                    let _ = tokio::time::timeout(limit, io.shutdown()).await;
                    tokio::time::sleep(config.close_handshake_timeout.min(LINGER)).await;
                    return;
                }
                // Wait (bounded) for the peer's Close; its echo is dropped (we already sent
                // ours), then drop the socket.
                let _ = tokio::time::timeout(
                    config.close_handshake_timeout,
                    conn.reader_done.cancelled(),
                )
                .await;
            }
        }
        CloseRequest::Echo(payload) => {
            wsframe::encode(&mut buf, wsframe::OpCode::Close, payload);
            let _ = write_bounded(&mut io, &buf, limit).await;
        }
    }
    let _ = tokio::time::timeout(limit, io.shutdown()).await;
}

impl Conn {
    fn has_close(&self) -> bool {
        self.state.lock().close.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// The upgraded socket's read half, preceded by any bytes hyper had already read past the
/// HTTP request (a client may send its first frame right behind the upgrade request).
pub(crate) struct PrefixedRead {
    prefix: Bytes,
    inner: OwnedReadHalf,
}

impl PrefixedRead {
    /// Wraps `inner`, yielding `prefix` first.
    pub(crate) fn new(prefix: Bytes, inner: OwnedReadHalf) -> Self {
        Self { prefix, inner }
    }
}

impl AsyncRead for PrefixedRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// A message being reassembled from fragments.
struct Fragments {
    opcode: OpCode,
    data: Vec<u8>,
    len: usize,
}

/// Runs the reader until the peer closes, the socket fails, or a protocol error.
pub(crate) async fn run_reader<R: AsyncRead + Unpin>(
    conn: Arc<Conn>,
    hub: Arc<Hub>,
    mut ws: WebSocketRead<R>,
) {
    ws.set_auto_pong(false);
    // Close frames are checked and answered here (`close_reply`): with fastwebsockets' own
    // check, a Close whose reason is not UTF-8 and a text message that is not UTF-8 fail with
    // the same error, and only the first must close the connection.
    ws.set_auto_close(false);
    // fastwebsockets rejects `payload_len >= max`: a frame of `max_frame_bytes` (64 KiB) or
    // more is closed with 1009, as docs/live-protocol.md states.
    ws.set_max_message_size(hub.config.max_frame_bytes);
    let mut bucket = Bucket::new(hub.config.rate_limit, Instant::now());
    let mut fragments: Option<Fragments> = None;
    let obligated_conn = Arc::clone(&conn);
    let mut send_fn = move |frame: Frame<'_>| {
        // Nothing arrives here while auto-pong and auto-close are off (pongs and Close replies
        // go through the writer); kept so that a Close reply would still reach it.
        if frame.opcode == OpCode::Close {
            obligated_conn.set_close(CloseRequest::Echo(Bytes::copy_from_slice(&frame.payload)));
        }
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    };
    loop {
        let frame = match ws.read_frame(&mut send_fn).await {
            Ok(frame) => frame,
            Err(WebSocketError::FrameTooLarge) => {
                conn.request_close(close::TOO_BIG, "frame too big");
                break;
            }
            Err(WebSocketError::InvalidUTF8) => {
                // A final text frame that is not UTF-8 (Close frames are not checked by the
                // library: auto-close is off). Inside a fragmented message it is a protocol
                // error; alone, an unparseable message like any other: answered, kept.
                if fragments.is_some() {
                    conn.request_close(close::PROTOCOL_ERROR, "protocol error");
                    break;
                }
                answer_inbound(&conn, &hub, &mut bucket, Err(InboundError::not_utf8()));
                continue;
            }
            Err(
                WebSocketError::UnexpectedEOF
                | WebSocketError::IoError(_)
                | WebSocketError::ConnectionClosed,
            ) => break,
            Err(_) => {
                // Reserved bits, bad opcode, fragmented control frame, bad close code (its
                // 1002 reply was routed already): a protocol error.
                conn.request_close(close::PROTOCOL_ERROR, "protocol error");
                break;
            }
        };
        match frame.opcode {
            OpCode::Close => {
                conn.set_close(close_reply(&frame.payload));
                break;
            }
            OpCode::Pong => conn.pong_seen.store(true, Ordering::Release),
            OpCode::Ping => match bucket.take(Instant::now()) {
                Verdict::Accept => conn.push_pong(Bytes::copy_from_slice(&frame.payload)),
                Verdict::Limited => conn.send(&rate_limited(None, None)),
                Verdict::Close => conn.request_close(close::POLICY, "rate limit"),
            },
            OpCode::Text | OpCode::Binary => {
                if fragments.is_some() {
                    conn.request_close(close::PROTOCOL_ERROR, "protocol error");
                    break;
                }
                if frame.fin {
                    handle_message(
                        &conn,
                        &hub,
                        &mut bucket,
                        frame.opcode,
                        &frame.payload,
                        frame.payload.len(),
                    );
                } else {
                    let mut data = Vec::new();
                    let len = frame.payload.len();
                    if len <= MAX_INBOUND_MESSAGE_BYTES {
                        data.extend_from_slice(&frame.payload);
                    }
                    fragments = Some(Fragments {
                        opcode: frame.opcode,
                        data,
                        len,
                    });
                }
            }
            OpCode::Continuation => {
                let Some(mut current) = fragments.take() else {
                    conn.request_close(close::PROTOCOL_ERROR, "protocol error");
                    break;
                };
                current.len = current.len.saturating_add(frame.payload.len());
                if current.len <= MAX_INBOUND_MESSAGE_BYTES {
                    current.data.extend_from_slice(&frame.payload);
                } else {
                    // Over the limit: keep only the count, give the memory back.
                    current.data = Vec::new();
                }
                if frame.fin {
                    handle_message(
                        &conn,
                        &hub,
                        &mut bucket,
                        current.opcode,
                        &current.data,
                        current.len,
                    );
                } else {
                    fragments = Some(current);
                }
            }
        }
        if conn.has_close() {
            // Closing: keep reading only to see the peer's Close (bounded by the writer).
            continue;
        }
    }
    conn.reader_done.cancel();
    conn.wake.notify_one();
}

/// The `rate-limited` reply; like every error it names the request's topic (when valid) and
/// echoes its id (when given).
fn rate_limited(topic: Option<Topic>, id: Option<MessageId>) -> ServerMessage {
    ServerMessage::error(
        ErrorCode::RateLimited,
        topic,
        id,
        "over the inbound message rate",
    )
}

/// Handles one complete inbound message (`len` is its full size, `payload` empty when over
/// the size limit).
/// The reply to the peer's Close (RFC 6455 §5.5.1, §7.4): its payload echoed; Close 1002 for a
/// malformed one (one byte, or a code that may not be sent), 1007 for a reason that is not UTF-8.
fn close_reply(payload: &[u8]) -> CloseRequest {
    match payload {
        [] => CloseRequest::Echo(Bytes::new()),
        [hi, lo, reason @ ..] => {
            if !fastwebsockets::CloseCode::from(u16::from_be_bytes([*hi, *lo])).is_allowed() {
                CloseRequest::Local {
                    code: close::PROTOCOL_ERROR,
                    reason: "protocol error",
                }
            } else if std::str::from_utf8(reason).is_err() {
                CloseRequest::Local {
                    code: close::INVALID_DATA,
                    reason: "invalid utf-8",
                }
            } else {
                CloseRequest::Echo(Bytes::copy_from_slice(payload))
            }
        }
        [_] => CloseRequest::Local {
            code: close::PROTOCOL_ERROR,
            reason: "protocol error",
        },
    }
}

fn handle_message(
    conn: &Arc<Conn>,
    hub: &Arc<Hub>,
    bucket: &mut Bucket,
    opcode: OpCode,
    payload: &[u8],
    len: usize,
) {
    let parsed = if opcode != OpCode::Text {
        Err(InboundError::not_text())
    } else if len > MAX_INBOUND_MESSAGE_BYTES {
        Err(InboundError {
            id: None,
            kind: InboundErrorKind::TooLarge { len },
        })
    } else {
        parse_client_message(payload)
    };
    answer_inbound(conn, hub, bucket, parsed);
}

/// Acts on one inbound message (or its parse error): the rate limit first, then the request
/// goes to the worker, or the error is answered.
fn answer_inbound(
    conn: &Arc<Conn>,
    hub: &Arc<Hub>,
    bucket: &mut Bucket,
    parsed: Result<ClientMessage, InboundError>,
) {
    if conn.has_close() {
        return;
    }
    match bucket.take(Instant::now()) {
        Verdict::Accept => {}
        Verdict::Limited => {
            let (topic, id) = match &parsed {
                Ok(message) => (Some(message.topic().clone()), message.id().cloned()),
                Err(error) => (None, error.id.clone()),
            };
            conn.send(&rate_limited(topic, id));
            return;
        }
        Verdict::Close => {
            conn.request_close(close::POLICY, "rate limit exceeded");
            return;
        }
    }
    let request = match parsed {
        Ok(ClientMessage::Subscribe { topic, id }) => Request::Subscribe { topic, id },
        Ok(ClientMessage::Unsubscribe { topic, id }) => Request::Unsubscribe { topic, id },
        Ok(other) => {
            conn.send(&ServerMessage::error(
                ErrorCode::InvalidMessage,
                None,
                other.id().cloned(),
                "unsupported message type",
            ));
            return;
        }
        Err(error) => {
            if error.code() == ErrorCode::InvalidTopic {
                LiveMetrics::subscribe_result("invalid");
            }
            conn.send(&ServerMessage::from_inbound_error(&error));
            return;
        }
    };
    if let Err(request) = conn.enqueue(hub, request) {
        let (Request::Subscribe { topic, id } | Request::Unsubscribe { topic, id }) = request;
        conn.send(&rate_limited(Some(topic), id));
    }
}

// ---------------------------------------------------------------------------------------------
// Worker: subscribe / unsubscribe
// ---------------------------------------------------------------------------------------------

async fn run_worker(conn: Arc<Conn>, hub: Arc<Hub>) {
    loop {
        let request = {
            let mut state = conn.state.lock();
            if state.shut || state.close.is_some() {
                state.requests.clear();
                None
            } else {
                state.requests.pop_front()
            }
            .or_else(|| {
                state.worker_running = false;
                None
            })
        };
        let Some(request) = request else {
            return;
        };
        match request {
            Request::Subscribe { topic, id } => subscribe(&conn, &hub, topic, id).await,
            Request::Unsubscribe { topic, id } => unsubscribe(&conn, &hub, topic, id),
        }
    }
}

async fn subscribe(conn: &Arc<Conn>, hub: &Arc<Hub>, topic: Topic, id: Option<MessageId>) {
    let event = event_key(&topic);
    let over_limit = {
        let state = conn.state.lock();
        !state.topics.contains_key(&event) && state.topics.len() >= hub.config.max_subscriptions
    };
    if over_limit {
        LiveMetrics::subscribe_result("invalid");
        conn.send(&ServerMessage::error(
            ErrorCode::TooManySubscriptions,
            Some(topic),
            id,
            format!(
                "at most {} subscriptions per connection",
                hub.config.max_subscriptions
            ),
        ));
        return;
    }

    let access = hub
        .directus
        .may_see_event(&conn.credentials, topic.event_id())
        .await;
    let (code, result, message) = match access {
        Ok(EventAccess::Allowed) => (None, "ok", ""),
        Ok(EventAccess::Forbidden) => (
            Some(ErrorCode::Forbidden),
            "forbidden",
            "not allowed to view this event",
        ),
        Ok(EventAccess::NotFound) => (Some(ErrorCode::NotFound), "not_found", "no such event"),
        Ok(EventAccess::Unauthorized) => {
            LiveMetrics::subscribe_result("error");
            conn.request_close(close::SESSION_INVALID, "session no longer valid");
            return;
        }
        Err(error) => {
            debug!(conn = conn.id, %error, "directus could not answer a subscribe");
            (
                Some(ErrorCode::Error),
                "error",
                "authorization service unavailable, retry later",
            )
        }
    };
    if let Some(code) = code {
        LiveMetrics::subscribe_result(result);
        if matches!(code, ErrorCode::Forbidden | ErrorCode::NotFound) {
            // A final "no" to a re-subscribe ends the subscription already held: the client
            // is told it may not see the event, so it must stop receiving its positions.
            // (A Directus failure, `error`, keeps it: that is not an answer.)
            drop_subscription(conn, hub, event);
        }
        conn.send(&ServerMessage::error(code, Some(topic), id, message));
        return;
    }

    // Register as pending before the snapshot query: positions from now on are buffered.
    {
        let mut state = conn.state.lock();
        if state.shut || state.close.is_some() {
            return;
        }
        let fresh = state
            .topics
            .insert(event, TopicState::Pending(HashMap::new()))
            .is_none();
        if fresh {
            hub.register(event, &topic, conn);
            hub.metrics.subscriptions.increment(1.0);
        }
    }

    let started = Instant::now();
    let snapshot = match tokio::time::timeout(
        hub.config.snapshot_timeout,
        snapshot::query(&hub.pool, topic.event_id()),
    )
    .await
    {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(error)) => {
            tracing::warn!(topic = %topic, %error, "snapshot query failed; subscribing with an empty snapshot");
            hub.metrics.snapshot_errors.increment(1);
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(topic = %topic, "snapshot query timed out; subscribing with an empty snapshot");
            hub.metrics.snapshot_errors.increment(1);
            Vec::new()
        }
    };
    hub.metrics
        .snapshot_duration
        .record(started.elapsed().as_secs_f64());

    let newest: HashMap<String, i64> = snapshot
        .iter()
        .map(|p: &Position| (p.device_id.clone(), p.ts))
        .collect();
    let reply = ServerMessage::Subscribed {
        topic,
        id,
        snapshot,
    }
    .to_bytes();
    let mut pushes = Vec::new();
    {
        let mut state = conn.state.lock();
        if state.shut || state.close.is_some() {
            return;
        }
        let buffered = match state.topics.insert(event, TopicState::Active) {
            Some(TopicState::Pending(buffered)) => buffered,
            _ => HashMap::new(),
        };
        state.out.push_control(Control::Text(reply));
        for (device, (ts, position)) in buffered {
            if newest.get(&*device).is_some_and(|&snap_ts| snap_ts >= ts) {
                continue;
            }
            pushes.push(state.out.push_position((event, device), position, false));
        }
    }
    for pushed in pushes {
        count_push(&hub.metrics, pushed);
    }
    LiveMetrics::subscribe_result("ok");
    conn.wake.notify_one();
}

fn unsubscribe(conn: &Arc<Conn>, hub: &Arc<Hub>, topic: Topic, id: Option<MessageId>) {
    let event = event_key(&topic);
    let reply = ServerMessage::Unsubscribed { topic, id }.to_bytes();
    let mut state = conn.state.lock();
    if state.shut || state.close.is_some() {
        return;
    }
    remove_topic(&mut state, conn, hub, event);
    state.out.push_control(Control::Text(reply));
    drop(state);
    conn.wake.notify_one();
}

/// Ends `event`'s subscription on `conn` when held (no reply: the caller sends one).
fn drop_subscription(conn: &Arc<Conn>, hub: &Arc<Hub>, event: EventKey) {
    let mut state = conn.state.lock();
    if !state.shut {
        remove_topic(&mut state, conn, hub, event);
    }
}

/// Forgets a held topic: out of the connection, its queued positions and the registry.
fn remove_topic(state: &mut ConnState, conn: &Conn, hub: &Hub, event: EventKey) {
    if state.topics.remove(&event).is_some() {
        state.out.purge_event(event);
        hub.unregister(event, conn.id);
        hub.metrics.subscriptions.decrement(1.0);
    }
}
