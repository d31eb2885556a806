//! A TCP proxy the test controls, to make a server unavailable and available again.
//!
//! [`TcpProxy::cut`] closes every proxied connection and stops listening (new connections
//! are refused: `ECONNREFUSED`, like a server that is down); [`TcpProxy::restore`] listens
//! again on the same port. It works for every provider, since it only needs an address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// A loopback TCP proxy to one target; aborts its tasks on drop.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    target: String,
    /// Incremented by every cut: connections opened before it close.
    generation: watch::Sender<u64>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<AtomicU64>,
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port forwarding to `target` (`host:port`).
    pub async fn start(target: impl Into<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("test-support: proxy bind: {error}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("local_addr: {error}"));
        let (generation, _) = watch::channel(0);
        let proxy = Self {
            addr,
            target: target.into(),
            generation,
            accept_task: Mutex::new(None),
            connections: Arc::new(AtomicU64::new(0)),
        };
        *proxy.accept_task.lock().await = Some(proxy.spawn_accept(listener));
        proxy
    }

    /// The proxy's listening address (connect here instead of the target).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The target `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// How many client connections the proxy has accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Makes the target unavailable: closes every open connection and refuses new ones.
    pub async fn cut(&self) {
        if let Some(task) = self.accept_task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Makes the target available again (listens on the same port). Idempotent.
    pub async fn restore(&self) {
        let mut task = self.accept_task.lock().await;
        if task.is_some() {
            return;
        }
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("test-support: proxy rebind {}: {error}", self.addr),
            }
        };
        *task = Some(self.spawn_accept(listener));
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target.clone();
        let generation = self.generation.subscribe();
        let connections = Arc::clone(&self.connections);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                connections.fetch_add(1, Ordering::Relaxed);
                let target = target.clone();
                let mut cut = generation.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let (mut client, mut upstream) = (client, upstream);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        _ = cut.changed() => {}
                    }
                    // Dropping both ends closes them: the client sees the connection die.
                });
            }
        })
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Ok(mut task) = self.accept_task.try_lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
        self.generation.send_modify(|generation| *generation += 1);
    }
}
