//! A Redis server per test run with a unique key prefix per test.
//!
//! Tests share the server and stay apart by naming every key through
//! [`TestRedis::unique_key`] (`test:<pid>.<n>.<random>:<name>`). On drop, every key under the
//! prefix is deleted; keys of killed test processes are deleted by the next process that
//! starts on the same server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface};

use crate::provider::{self, Provider, Service};
use crate::proxy::TcpProxy;

/// Every test key starts with this.
pub const KEY_ROOT: &str = "test:";

/// A Redis server plus this test's key prefix; the prefix's keys are deleted on drop.
#[derive(Debug)]
pub struct TestRedis {
    url: String,
    prefix: String,
    provider: Provider,
}

impl TestRedis {
    pub(crate) async fn create() -> Option<Self> {
        let server = provider::server_or_skip(Service::Redis)?;
        clean_stale_once(&server.url).await;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!(
            "{KEY_ROOT}{}.{n}.{}:",
            std::process::id(),
            crate::postgres::random_suffix()
        );
        Some(Self {
            url: server.url,
            prefix,
            provider: server.provider,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The provider the server came from.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// This test's key prefix (`test:<pid>.<n>.<random>:`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A key name unique to this test: `<prefix><name>`. Deleted when `self` is dropped.
    pub fn unique_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The server's `host:port`, e.g. as a [`TcpProxy`] target.
    pub fn host_port(&self) -> String {
        crate::url::host_port(&self.url, 6379)
    }

    /// The server's URL routed through `proxy` (whose target must be [`Self::host_port`]).
    pub fn url_via(&self, proxy: &TcpProxy) -> String {
        crate::url::via(&self.url, proxy)
    }

    /// A connected fred client (no reconnect policy); panics when the server is unreachable.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Deletes every key under this test's prefix now (also done on drop).
    pub async fn clear(&self) {
        let client = self.client().await;
        delete_matching(&client, &format!("{}*", self.prefix)).await;
        let _ = client.quit().await;
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        let done = crate::blocking::run_on_side_thread(move || async move {
            let client = try_connect(&url).await.ok()?;
            delete_matching(&client, &pattern).await;
            let _ = client.quit().await;
            Some(())
        });
        if done.flatten().is_none() {
            eprintln!(
                "test-support: could not delete keys {}* (server down?); the next run removes them",
                self.prefix
            );
        }
    }
}

/// Connects a fred client to `url`; panics on failure with the redacted URL.
pub(crate) async fn connect(url: &str) -> Client {
    try_connect(url).await.unwrap_or_else(|error| {
        panic!(
            "test-support: connecting to {}: {error}",
            crate::url::redact(url)
        )
    })
}

pub(crate) async fn try_connect(url: &str) -> Result<Client, fred::error::Error> {
    let config = Config::from_url(url)?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.internal_command_timeout = Duration::from_secs(5);
        })
        .build()?;
    client.init().await?;
    Ok(client)
}

async fn delete_matching(client: &Client, pattern: &str) {
    let mut cursor = "0".to_owned();
    loop {
        let page: Result<(String, Vec<String>), _> = client
            .scan_page(cursor.clone(), pattern.to_owned(), Some(1000), None)
            .await;
        let Ok((next, keys)) = page else { return };
        if !keys.is_empty() {
            let _: Result<i64, _> = client.del(keys).await;
        }
        if next == "0" {
            return;
        }
        cursor = next;
    }
}

/// Deletes keys of test processes that are gone (same host), once per process and server.
async fn clean_stale_once(url: &str) {
    static DONE: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    {
        let mut done = DONE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if done.iter().any(|seen| seen == url) {
            return;
        }
        done.push(url.to_owned());
    }
    let Ok(client) = try_connect(url).await else {
        return;
    };
    let mut cursor = "0".to_owned();
    let mut dead_prefixes = Vec::new();
    loop {
        let page: Result<(String, Vec<String>), _> = client
            .scan_page(cursor.clone(), format!("{KEY_ROOT}*"), Some(1000), None)
            .await;
        let Ok((next, keys)) = page else { break };
        for key in keys {
            if let Some(pid) = key_owner_pid(&key)
                && !crate::postgres::pid_alive(pid)
            {
                dead_prefixes.push(key);
            }
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    if !dead_prefixes.is_empty() {
        let _: Result<i64, _> = client.del(dead_prefixes).await;
    }
    let _ = client.quit().await;
}

/// The pid in `test:<pid>.<n>.<random>:…`, if the key has that shape.
fn key_owner_pid(key: &str) -> Option<u32> {
    let rest = key.strip_prefix(KEY_ROOT)?;
    let (owner, _) = rest.split_once(':')?;
    let mut parts = owner.split('.');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    let random = parts.next()?;
    (random.len() == 8 && parts.next().is_none()).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parsing() {
        assert_eq!(key_owner_pid("test:123.4.deadbeef:stream"), Some(123));
        assert_eq!(key_owner_pid("test:123.4.deadbeef:a:b"), Some(123));
        assert_eq!(key_owner_pid("test:abc.4.deadbeef:stream"), None);
        assert_eq!(key_owner_pid("test:123.4:stream"), None);
        assert_eq!(key_owner_pid("telemetry:teltonika"), None);
    }
}
