//! Servers from a Docker engine through `testcontainers-modules` (Redis 7, TimescaleDB).
//!
//! Containers are shared by the machine's test processes exactly like the local servers
//! ([`crate::local`]): one container per service, a guardian that removes it (`docker rm -f`,
//! or the engine's HTTP API through `curl` when the CLI is missing) once no test process has
//! used it for a few seconds. The `ContainerAsync` handle is deliberately leaked: its `Drop`
//! would remove the container when the first test process ends.

use std::path::Path;
use std::time::Duration;

use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::redis::Redis;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, Image, ImageExt};

/// The PostgreSQL image: TimescaleDB on PostgreSQL 15 (`name:tag`), overridable with
/// `TEST_POSTGRES_IMAGE`.
pub(crate) const POSTGRES_IMAGE: &str = "timescale/timescaledb:latest-pg15";
/// The Redis image (`name:tag`), overridable with `TEST_REDIS_IMAGE`.
pub(crate) const REDIS_IMAGE: &str = "redis:7";

fn image_parts(var: &str, default: &str) -> (String, String) {
    let image = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (image, "latest".to_owned()),
    }
}

/// Writes `stop.sh` removing container `id` (run by the guardian at teardown).
fn write_stop_script(dir: &Path, id: &str) -> Result<(), String> {
    let script = format!(
        "docker rm -f -v {id} || curl -s --unix-socket /var/run/docker.sock \
         -X DELETE 'http://localhost/containers/{id}?force=true&v=true'\n"
    );
    std::fs::write(dir.join("stop.sh"), script).map_err(|e| format!("writing stop.sh: {e}"))
}

async fn start<I: Image>(
    request: testcontainers_modules::testcontainers::ContainerRequest<I>,
    internal_port: u16,
) -> Result<(ContainerAsync<I>, String, u16), String> {
    let container = request
        .with_startup_timeout(Duration::from_secs(180))
        .start()
        .await
        .map_err(|e| format!("starting the container: {e}"))?;
    let host = container
        .get_host()
        .await
        .map_err(|e| e.to_string())?
        .to_string();
    let port = container
        .get_host_port_ipv4(internal_port)
        .await
        .map_err(|e| e.to_string())?;
    Ok((container, host, port))
}

pub(crate) fn shared_redis(_engine: &str) -> Result<String, String> {
    crate::local::ensure_shared("docker-redis", &|dir| {
        let (name, tag) = image_parts("TEST_REDIS_IMAGE", REDIS_IMAGE);
        let started = crate::blocking::run_on_side_thread(move || async move {
            let (container, host, port) =
                start(Redis::default().with_name(name).with_tag(tag), 6379).await?;
            let id = container.id().to_owned();
            std::mem::forget(container);
            Ok::<_, String>((id, format!("redis://{host}:{port}")))
        })
        .ok_or("the Docker start-up thread panicked")??;
        write_stop_script(dir, &started.0)?;
        Ok(started.1)
    })
}

pub(crate) fn shared_postgres(_engine: &str) -> Result<String, String> {
    crate::local::ensure_shared("docker-postgres", &|dir| {
        let (name, tag) = image_parts("TEST_POSTGRES_IMAGE", POSTGRES_IMAGE);
        let started = crate::blocking::run_on_side_thread(move || async move {
            let request = Postgres::default()
                .with_host_auth()
                .with_name(name)
                .with_tag(tag)
                .with_cmd(["postgres", "-c", "max_connections=300", "-c", "fsync=off"]);
            let (container, host, port) = start(request, 5432).await?;
            let id = container.id().to_owned();
            std::mem::forget(container);
            Ok::<_, String>((
                id,
                format!("postgres://postgres:postgres@{host}:{port}/postgres"),
            ))
        })
        .ok_or("the Docker start-up thread panicked")??;
        write_stop_script(dir, &started.0)?;
        Ok(started.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_on_the_tag() {
        assert_eq!(
            image_parts("TEST_SUPPORT_UNSET_VAR", POSTGRES_IMAGE),
            ("timescale/timescaledb".to_owned(), "latest-pg15".to_owned())
        );
        assert_eq!(
            image_parts("TEST_SUPPORT_UNSET_VAR", "localhost:5000/redis"),
            ("localhost:5000/redis".to_owned(), "latest".to_owned())
        );
    }
}
