//! Which provider a service comes from, chosen once per process and logged in one line.
//!
//! Order of preference (`system.md`, "Real services in tests"): environment URLs, then a
//! Docker engine, then the local binaries. `TEST_SERVICES_PROVIDER=env|docker|local` forces one.

use std::fmt;
use std::sync::OnceLock;

/// Forces one provider: `env`, `docker` or `local` (unset: the first available).
pub const PROVIDER_VAR: &str = "TEST_SERVICES_PROVIDER";
/// The Redis URL given by the environment (e.g. CI's own Redis).
pub const REDIS_URL_VAR: &str = "TEST_REDIS_URL";
/// The PostgreSQL URL given by the environment; a maintenance database such as `postgres` on
/// a role allowed to `CREATE DATABASE`.
pub const DATABASE_URL_VAR: &str = "TEST_DATABASE_URL";

/// Where a service came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// A URL from the environment (`TEST_REDIS_URL` / `TEST_DATABASE_URL`).
    Env,
    /// A container started through `testcontainers-modules` on a Docker engine.
    Docker,
    /// A server started from the local binaries, shared by this machine's test processes.
    Local,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Env => "env",
            Self::Docker => "docker",
            Self::Local => "local",
        })
    }
}

/// The two kinds of server the provider chain knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Redis,
    Postgres,
}

impl Service {
    fn label(self) -> &'static str {
        match self {
            Self::Redis => "Redis",
            Self::Postgres => "PostgreSQL",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Self::Redis => REDIS_URL_VAR,
            Self::Postgres => DATABASE_URL_VAR,
        }
    }
}

/// A reachable server: its provider and a URL (PostgreSQL: the maintenance database).
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub(crate) provider: Provider,
    pub(crate) url: String,
}

/// Why no server is available: the text after `SKIP <test>: no <service>: `.
#[derive(Debug, Clone)]
pub(crate) struct Unavailable(pub(crate) String);

static REDIS: OnceLock<Result<Server, Unavailable>> = OnceLock::new();
static POSTGRES: OnceLock<Result<Server, Unavailable>> = OnceLock::new();

/// The process's server for `service`, resolved (and started) on first use. Panics when a
/// provider exists but fails to start (that is a broken machine, not a missing service).
pub(crate) fn server(service: Service) -> Result<Server, Unavailable> {
    let cell = match service {
        Service::Redis => &REDIS,
        Service::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| {
        let resolved = resolve(service);
        match &resolved {
            Ok(server) => eprintln!(
                "test-support: {} from {} ({})",
                service.label(),
                server.provider,
                crate::url::redact(&server.url)
            ),
            Err(Unavailable(reasons)) => {
                eprintln!("test-support: no {}: {reasons}", service.label());
            }
        }
        resolved
    })
    .clone()
}

/// The Docker engine's address when one is reachable (`DOCKER_HOST`, or a connectable
/// `/var/run/docker.sock`); cheap, no request is made.
pub fn docker_engine() -> Option<String> {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && !host.is_empty()
    {
        return Some(host);
    }
    let socket = "/var/run/docker.sock";
    std::os::unix::net::UnixStream::connect(socket)
        .ok()
        .map(|_| format!("unix://{socket}"))
}

/// Starts (or joins) the shared container of `service` on `engine`.
#[cfg(feature = "docker")]
fn docker_server(engine: &str, service: Service) -> Result<String, String> {
    match service {
        Service::Redis => crate::docker::shared_redis(engine),
        Service::Postgres => crate::docker::shared_postgres(engine),
    }
}

/// Without the `docker` feature (the demo's build) there is no container provider: testcontainers
/// and its Docker client stay out of normal builds.
#[cfg(not(feature = "docker"))]
fn docker_server(engine: &str, _service: Service) -> Result<String, String> {
    Err(format!(
        "a Docker engine is at {engine}, but test-support was built without its `docker` feature"
    ))
}

/// Returns the server, or prints the `SKIP` line (panics under `REQUIRE_SERVICES=1`).
pub(crate) fn server_or_skip(service: Service) -> Option<Server> {
    match server(service) {
        Ok(server) => Some(server),
        Err(Unavailable(reasons)) => {
            crate::skip_or_panic(service.label(), &reasons);
            None
        }
    }
}

/// The provider forced by `TEST_SERVICES_PROVIDER`, if any (panics on an unknown value).
pub(crate) fn forced() -> Option<Provider> {
    match std::env::var(PROVIDER_VAR).ok()?.as_str() {
        "" => None,
        "env" => Some(Provider::Env),
        "docker" => Some(Provider::Docker),
        "local" => Some(Provider::Local),
        other => panic!("{PROVIDER_VAR}={other:?}: expected env, docker or local"),
    }
}

fn resolve(service: Service) -> Result<Server, Unavailable> {
    let forced = forced();
    let wants = |provider: Provider| forced.is_none_or(|f| f == provider);
    let mut reasons = Vec::new();

    if wants(Provider::Env) {
        match std::env::var(service.env_var()) {
            Ok(url) if !url.is_empty() => {
                return Ok(Server {
                    provider: Provider::Env,
                    url,
                });
            }
            _ => reasons.push(format!("{} unset", service.env_var())),
        }
    }
    if wants(Provider::Docker) {
        match docker_engine() {
            Some(engine) => match docker_server(&engine, service) {
                Ok(url) => {
                    return Ok(Server {
                        provider: Provider::Docker,
                        url,
                    });
                }
                Err(error) => panic!(
                    "test-support: the Docker engine at {engine} failed to start {}: {error}",
                    service.label()
                ),
            },
            None => reasons.push("no Docker engine".to_owned()),
        }
    }
    if wants(Provider::Local) {
        let found = match service {
            Service::Redis => crate::local::find_redis_server().map(|_| ()),
            Service::Postgres => crate::local::find_postgres_bin_dir().map(|_| ()),
        };
        match found {
            Some(()) => {
                let started = match service {
                    Service::Redis => crate::local::shared_redis(),
                    Service::Postgres => crate::local::shared_postgres(),
                };
                match started {
                    Ok(url) => {
                        return Ok(Server {
                            provider: Provider::Local,
                            url,
                        });
                    }
                    Err(error) => panic!(
                        "test-support: the local {} binaries failed to start a server: {error}",
                        service.label()
                    ),
                }
            }
            None => reasons.push(match service {
                Service::Redis => "no redis-server on PATH".to_owned(),
                Service::Postgres => "no initdb on PATH or /usr/lib/postgresql/*/bin".to_owned(),
            }),
        }
    }
    if let Some(provider) = forced {
        reasons.push(format!("{PROVIDER_VAR}={provider}"));
    }
    Err(Unavailable(reasons.join(", ")))
}
