//! The migration runner: applies the SQL files of the top-level `migrations/` folder.
//!
//! The files are embedded at compile time (see `build.rs`), so the binary carries exactly the
//! schema it was built with and runs from any working directory. Rules (docs/database.md):
//! - migrations apply in file-name order, each in its own transaction together with its
//!   `schema_migrations (version, checksum, applied_at)` row, so a failed one leaves no trace;
//! - a session-level advisory lock serialises runners, so several instances may start at
//!   once: the first applies, the others wait and then find everything applied;
//! - an applied migration whose file changed since is an error ([`Error::MigrationChanged`]):
//!   fix forward with a new file, never edit an applied one.

use std::collections::HashMap;

use deadpool_postgres::{Object, Pool};
use tracing::{info, warn};

use crate::{Error, Result};

/// The key of the advisory lock the runners take (ASCII "pos-migr").
pub const MIGRATION_LOCK_KEY: i64 = 0x706f_732d_6d69_6772;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// One migration: its version (the file name without `.sql`) and its SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// `NNNN_name`, e.g. `0001_positions`.
    pub version: &'static str,
    /// The file's SQL, executed with the simple-query protocol (several statements, `DO`).
    pub sql: &'static str,
}

impl Migration {
    /// The checksum recorded for this migration (see [`checksum`]).
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

/// Every migration embedded from `migrations/`, in the order they apply.
///
/// ```
/// let versions: Vec<_> = position_writer::migrations().iter().map(|m| m.version).collect();
/// assert_eq!(&versions[..2], ["0001_positions", "0002_positions_faulty"]);
/// ```
pub fn migrations() -> &'static [Migration] {
    static ALL: std::sync::OnceLock<Vec<Migration>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        embedded::EMBEDDED
            .iter()
            .map(|&(version, sql)| Migration { version, sql })
            .collect()
    })
}

/// CRC-64/XZ of the SQL with line endings normalised to `\n` (a Windows checkout must not
/// look like an edit), as `crc64:<16 hex digits>`.
pub fn checksum(sql: &str) -> String {
    const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
    let mut digest = CRC.digest();
    let mut rest = sql;
    while let Some(pos) = rest.find("\r\n") {
        digest.update(&rest.as_bytes()[..pos]);
        digest.update(b"\n");
        rest = &rest[pos + 2..];
    }
    digest.update(rest.as_bytes());
    format!("crc64:{:016x}", digest.finalize())
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<String>,
    /// Versions found already applied (checksum verified).
    pub skipped: Vec<String>,
    /// Of `timescaledb` and `postgis`, those installed in the database after the run.
    pub extensions: Vec<String>,
}

/// Applies the embedded migrations using one connection taken from the pool.
///
/// The connection is closed afterwards rather than returned to the pool, so no session
/// state (the advisory lock included) can leak into the writer's connections.
pub async fn migrate(pool: &Pool) -> Result<MigrationReport> {
    let mut object = pool.get().await.map_err(Error::Pool)?;
    let result = run_migrations(&mut object, migrations()).await;
    drop(Object::take(object));
    result
}

/// Applies `list` (normally [`migrations()`]) on `client`, holding the advisory lock.
pub async fn run_migrations(
    client: &mut tokio_postgres::Client,
    list: &[Migration],
) -> Result<MigrationReport> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(|err| Error::db("take the migration lock", err))?;
    let result = apply_locked(client, list).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    match (result, unlocked) {
        (Err(err), _) => Err(err),
        (Ok(_), Err(err)) => Err(Error::db("release the migration lock", err)),
        (Ok(report), Ok(_)) => Ok(report),
    }
}

async fn apply_locked(
    client: &mut tokio_postgres::Client,
    list: &[Migration],
) -> Result<MigrationReport> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
               version    text PRIMARY KEY,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|err| Error::db("create schema_migrations", err))?;
    let rows = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await
        .map_err(|err| Error::db("read schema_migrations", err))?;
    let mut applied: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for row in rows {
        let version: String = row
            .try_get(0)
            .map_err(|err| Error::db("read schema_migrations", err))?;
        let sum: Option<String> = row
            .try_get(1)
            .map_err(|err| Error::db("read schema_migrations", err))?;
        applied.insert(version, sum.unwrap_or_default());
    }

    let mut report = MigrationReport::default();
    for migration in list {
        let file_sum = migration.checksum();
        if let Some(applied_sum) = applied.remove(migration.version) {
            if applied_sum != file_sum {
                return Err(Error::MigrationChanged {
                    version: migration.version.to_owned(),
                    applied: applied_sum,
                    file: file_sum,
                });
            }
            report.skipped.push(migration.version.to_owned());
            continue;
        }
        let context = format!("apply migration {}", migration.version);
        let tx = client
            .transaction()
            .await
            .map_err(|err| Error::db(context.clone(), err))?;
        tx.batch_execute(migration.sql)
            .await
            .map_err(|err| Error::db(context.clone(), err))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, checksum, applied_at) VALUES ($1, $2, now())",
            &[&migration.version, &file_sum],
        )
        .await
        .map_err(|err| Error::db(context.clone(), err))?;
        tx.commit()
            .await
            .map_err(|err| Error::db(context.clone(), err))?;
        info!(version = migration.version, checksum = %file_sum, "migration applied");
        report.applied.push(migration.version.to_owned());
    }
    for version in applied.keys() {
        // A newer binary applied it (rolling deploy): harmless for this one, worth a look.
        warn!(version = %version, "schema_migrations lists a migration this binary does not know");
    }

    let rows = client
        .query(
            "SELECT extname::text FROM pg_extension WHERE extname IN ('timescaledb', 'postgis') ORDER BY 1",
            &[],
        )
        .await
        .map_err(|err| Error::db("list extensions", err))?;
    for row in rows {
        report.extensions.push(
            row.try_get(0)
                .map_err(|err| Error::db("list extensions", err))?,
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_ignores_line_endings_only() {
        assert_eq!(checksum("a;\nb;\n"), checksum("a;\r\nb;\r\n"));
        assert_ne!(checksum("a;\nb;\n"), checksum("a;\nb; \n"));
        assert!(checksum("").starts_with("crc64:"));
        assert_eq!(checksum("x").len(), "crc64:".len() + 16);
    }

    #[test]
    fn embedded_list_matches_the_migrations_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let version = p.file_stem().unwrap().to_str().unwrap().to_owned();
                (version, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = migrations()
            .iter()
            .map(|m| (m.version.to_owned(), m.sql.to_owned()))
            .collect();
        assert_eq!(embedded, on_disk);
        assert!(embedded.len() >= 2);
    }
}
