//! A fresh PostgreSQL database per test, migrations, and the Directus schema/seed helpers.
//!
//! Each [`TestPostgres`] is a database `t_<pid>_<counter>_<random>` created on the provider's
//! server, commented with its creator (host, pid, time) and dropped `WITH (FORCE)` on drop.
//! Databases left by killed test processes are dropped by the next process that starts on
//! the same server (creator pid gone on this host, or older than six hours).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

use crate::provider::{self, Provider, Service};
use crate::proxy::TcpProxy;

/// Stale test databases older than this are dropped whoever created them.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);
/// The marker at the start of a test database's comment.
const COMMENT_TAG: &str = "test-support";

/// An isolated database for one test; dropped (`WITH (FORCE)`) when this value is dropped.
#[derive(Debug)]
pub struct TestPostgres {
    url: String,
    admin_url: String,
    database: String,
    provider: Provider,
}

impl TestPostgres {
    /// Creates a fresh database on the process's server (see the crate docs for providers).
    pub(crate) async fn create() -> Option<Self> {
        let server = provider::server_or_skip(Service::Postgres)?;
        clean_stale_once(&server.url).await;
        let database = unique_database_name();
        let admin = connect(&server.url).await;
        let comment = format!(
            "{COMMENT_TAG} host={} pid={} created={}",
            hostname(),
            std::process::id(),
            unix_now()
        );
        let mut attempt = 0;
        loop {
            // Concurrent CREATE DATABASE from the same template can fail with 55006
            // (template in use) on older servers: retry a few times.
            match admin
                .batch_execute(&format!("CREATE DATABASE \"{database}\""))
                .await
            {
                Ok(()) => break,
                Err(error) if attempt < 20 && is_object_in_use(&error) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("test-support: CREATE DATABASE {database}: {error:?}"),
            }
        }
        admin
            .batch_execute(&format!(
                "COMMENT ON DATABASE \"{database}\" IS '{comment}'"
            ))
            .await
            .unwrap_or_else(|error| panic!("test-support: COMMENT ON DATABASE: {error}"));
        Some(Self {
            url: crate::url::with_path(&server.url, &database),
            admin_url: server.url,
            database,
            provider: server.provider,
        })
    }

    /// The URL of this test's database (`postgres://…/t_…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this test's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The URL of the server's maintenance database (shared by every test: do not write).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The provider the server came from.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The server's `host:port`, e.g. as a [`TcpProxy`] target.
    pub fn host_port(&self) -> String {
        crate::url::host_port(&self.url, 5432)
    }

    /// This test's database URL routed through `proxy` (whose target must be [`Self::host_port`]).
    pub fn url_via(&self, proxy: &TcpProxy) -> String {
        crate::url::via(&self.url, proxy)
    }

    /// A connected client on this test's database; its connection task runs on the current
    /// runtime. Panics when the server cannot be reached.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Runs `sql` (several statements allowed) on this test's database; panics on error.
    pub async fn execute(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("test-support: executing SQL failed: {error:?}"));
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let database = self.database.clone();
        let dropped = crate::blocking::run_on_side_thread(move || async move {
            drop_database(&admin_url, &database).await
        });
        if !matches!(dropped, Some(Ok(()))) {
            eprintln!(
                "test-support: could not drop database {} ({dropped:?}); the next run removes it",
                self.database
            );
        }
    }
}

async fn drop_database(admin_url: &str, database: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
    let task = tokio::spawn(connection);
    let result = client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await;
    drop(client);
    let _ = task.await;
    result
}

/// Connects to `url`, spawning the connection on the current runtime; panics on failure
/// with the (password-redacted) URL.
pub(crate) async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "test-support: connecting to {}: {error}",
                crate::url::redact(url)
            )
        });
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn is_object_in_use(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
}

fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t_{}_{n}_{}", std::process::id(), random_suffix())
}

/// Eight random lowercase hex digits (std's per-process random hasher keys; no rand crate).
pub(crate) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:08x}", hasher.finish() as u32)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Drops test databases whose creator is gone, once per process and server.
async fn clean_stale_once(admin_url: &str) {
    static DONE: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    {
        let mut done = DONE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if done.iter().any(|url| url == admin_url) {
            return;
        }
        done.push(admin_url.to_owned());
    }
    let Ok((client, connection)) = tokio_postgres::connect(admin_url, NoTls).await else {
        return;
    };
    let task = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') \
             FROM pg_database WHERE datname LIKE 't\\_%'",
            &[],
        )
        .await
        .unwrap_or_default();
    let me = hostname();
    let now = unix_now();
    for row in rows {
        let name: String = row.get(0);
        let comment: String = row.get(1);
        if is_stale(&comment, &me, now) {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    drop(client);
    let _ = task.await;
}

/// A database is stale when its comment says this host created it and that process is gone,
/// or it is older than [`STALE_AFTER`]. Databases without our comment are never touched.
fn is_stale(comment: &str, me: &str, now: u64) -> bool {
    let Some(rest) = comment.strip_prefix(COMMENT_TAG) else {
        return false;
    };
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    let (Some(host), Some(pid), Some(created)) = (field("host"), field("pid"), field("created"))
    else {
        return false;
    };
    let (Ok(pid), Ok(created)) = (pid.parse::<u32>(), created.parse::<u64>()) else {
        return false;
    };
    (host == me && !pid_alive(pid)) || now.saturating_sub(created) > STALE_AFTER.as_secs()
}

/// The workspace root (this crate lives at `crates/test-support`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Executes the top-level `migrations/*.sql` on `pg`, in file-name order, each as one batch.
///
/// This is a plain loader for tests of crates that may not depend on `position-writer` (whose
/// runner records versions and checksums); it does not create `schema_migrations`.
pub async fn apply_migrations(pg: &TestPostgres) {
    let dir = workspace_root().join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("test-support: reading {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let client = pg.client().await;
    for file in files {
        let sql = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("test-support: reading {}: {error}", file.display()));
        client.batch_execute(&sql).await.unwrap_or_else(|error| {
            panic!(
                "test-support: migration {} failed: {error:?}",
                file.display()
            )
        });
    }
}

/// Creates the Directus-managed tables the Processor reads (`fixtures/directus-schema.sql`).
pub async fn load_directus_schema(pg: &TestPostgres) {
    let file = workspace_root().join("fixtures/directus-schema.sql");
    let sql = std::fs::read_to_string(&file)
        .unwrap_or_else(|error| panic!("test-support: reading {}: {error}", file.display()));
    pg.execute(&sql).await;
}

/// Seeds Directus rows (after [`load_directus_schema`]): organisations, events, entries,
/// devices. Ids are UUID strings; every insert returns the id it used.
pub struct Seed<'a> {
    client: Client,
    _pg: &'a TestPostgres,
}

impl<'a> Seed<'a> {
    /// A seeder on `pg`'s database.
    pub async fn new(pg: &'a TestPostgres) -> Self {
        Self {
            client: pg.client().await,
            _pg: pg,
        }
    }

    /// A fresh random UUID string (v4 layout) for ids.
    pub fn uuid() -> String {
        let hex: String = (0..4).map(|_| random_suffix()).collect();
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    async fn insert(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) {
        self.client
            .execute(sql, params)
            .await
            .unwrap_or_else(|error| panic!("test-support: seed `{sql}` failed: {error:?}"));
    }

    /// Inserts an organisation; returns its id.
    pub async fn organization(&self, name: &str) -> String {
        let id = Self::uuid();
        self.insert(
            "INSERT INTO organizations (id, name, slug) VALUES ($1::text::uuid, $2, $2)",
            &[&id, &name],
        )
        .await;
        id
    }

    /// Inserts an event of `organization_id`; returns its id.
    pub async fn event(&self, organization_id: &str, name: &str) -> String {
        let id = Self::uuid();
        self.insert(
            "INSERT INTO events (id, organization_id, name, slug) \
             VALUES ($1::text::uuid, $2::text::uuid, $3, $3)",
            &[&id, &organization_id, &name],
        )
        .await;
        id
    }

    /// Inserts an entry (a competitor) in `event_id`; returns its id.
    pub async fn entry(&self, event_id: &str, race_number: &str) -> String {
        let id = Self::uuid();
        self.insert(
            "INSERT INTO entries (id, event_id, race_number) \
             VALUES ($1::text::uuid, $2::text::uuid, $3)",
            &[&id, &event_id, &race_number],
        )
        .await;
        id
    }

    /// Inserts a device with `imei`; returns its id.
    pub async fn device(&self, imei: &str) -> String {
        let id = Self::uuid();
        self.insert(
            "INSERT INTO devices (id, imei) VALUES ($1::text::uuid, $2)",
            &[&id, &imei],
        )
        .await;
        id
    }

    /// Registers `device_id` to `entry_id` (an `entry_devices` row); returns its id.
    pub async fn entry_device(&self, entry_id: &str, device_id: &str) -> String {
        let id = Self::uuid();
        self.insert(
            "INSERT INTO entry_devices (id, entry_id, device_id) \
             VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid)",
            &[&id, &entry_id, &device_id],
        )
        .await;
        id
    }

    /// Shortcut: an organisation, an event, and one entry + device per IMEI registered to it.
    /// Returns the event id.
    pub async fn event_with_devices(&self, name: &str, imeis: &[&str]) -> String {
        let organization = self.organization(&format!("{name} organisers")).await;
        let event = self.event(&organization, name).await;
        for (number, imei) in imeis.iter().enumerate() {
            let entry = self.entry(&event, &(number + 1).to_string()).await;
            let device = self.device(imei).await;
            self.entry_device(&entry, &device).await;
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_rules() {
        let me = "box";
        let now = 10_000_000;
        // A live creator on this host: kept.
        let live = format!(
            "test-support host=box pid={} created={now}",
            std::process::id()
        );
        assert!(!is_stale(&live, me, now));
        // A dead creator on this host: stale. (pid 0 has no /proc entry; u32::MAX neither.)
        assert!(is_stale(
            &format!("test-support host=box pid={} created={now}", u32::MAX),
            me,
            now
        ));
        // Another host, recent: kept; old: stale.
        assert!(!is_stale(
            &format!("test-support host=x pid=1 created={now}"),
            me,
            now
        ));
        assert!(is_stale("test-support host=x pid=1 created=1", me, now));
        // Not ours: never.
        assert!(!is_stale("somebody's db", me, now));
        assert!(!is_stale("", me, now));
    }

    #[test]
    fn names_and_uuids() {
        let a = unique_database_name();
        let b = unique_database_name();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("t_{}_", std::process::id())));
        let uuid = Seed::uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.matches('-').count(), 4);
    }
}
