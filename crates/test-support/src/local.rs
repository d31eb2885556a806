//! Servers from the local binaries (`redis-server`, `initdb`/`postgres`), never left behind.
//!
//! Two kinds:
//! - **Shared servers** (the provider of last resort behind [`crate::redis()`] and
//!   [`crate::postgres()`]): one Redis and one PostgreSQL per machine and user, shared by every
//!   test process (nextest runs a process per test; `initdb` alone takes ~2 s, so a server per
//!   process would cost minutes). They live in `$TMPDIR/test-support-<uid>/shared-<name>/`.
//!   Every process using one holds a shared `flock` on `shared-<name>.users.lock` for its whole
//!   life (the kernel drops it when the process dies, SIGKILL included). A *guardian* — a small
//!   `sh` script in its own process group, so Ctrl-C and nextest's process-group kills do not
//!   reach it — polls that lock; once nobody has held it for a few seconds it takes it
//!   exclusively, stops the server and removes the directory. A process arriving meanwhile
//!   blocks on the lock and then starts a fresh server. Without `flock(1)`, or with
//!   `TEST_SERVICES_LOCAL=per-process`, each process starts its own server instead, guarded
//!   like an owned server.
//! - **Owned servers** ([`OwnedRedis`], [`OwnedPostgres`]): one per test, which the test may
//!   stop, kill and start again on the same port and data (e.g. Redis with `appendonly` keeping
//!   its data across a restart). Their guardian holds the read end of a pipe whose write end
//!   only the test process has: when the test process dies for any reason the pipe closes and
//!   the guardian kills the server and removes its directory.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `postgres` run
//! as the `postgres` user (`Command::uid`), which owns the data directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `per-process` makes every test process start its own local servers instead of sharing.
pub const LOCAL_MODE_VAR: &str = "TEST_SERVICES_LOCAL";
/// Seconds without any user before a shared server's guardian tears it down.
const SHARED_GRACE_SECONDS: u32 = 4;
/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The guardian: `sh -c GUARDIAN guardian <dir> shared <users-lock> <grace>` or
/// `sh -c GUARDIAN guardian <dir> pipe` (stdin = the pipe).
///
/// Every `<dir>/*.pid` file other than `guardian.pid` holds `<pid> <signal>`: the guardian
/// sends that signal, waits up to 10 s, then SIGKILLs; then it runs `<dir>/stop.sh` if present
/// (Docker containers) and removes `<dir>`.
const GUARDIAN: &str = r#"
dir=$1; mode=$2
stop_all() {
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    [ "$f" = "$dir/guardian.pid" ] && continue
    pid=; sig=
    read -r pid sig < "$f" || true
    [ -n "$pid" ] || continue
    kill -s "${sig:-TERM}" "$pid" 2>/dev/null
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    kill -s KILL "$pid" 2>/dev/null
  done
  if [ -f "$dir/stop.sh" ]; then sh "$dir/stop.sh" >/dev/null 2>&1; fi
  rm -rf "$dir"
}
trap '' INT HUP
if [ "$mode" = pipe ]; then
  cat >/dev/null
  stop_all
  exit 0
fi
exec 9<"$3"
idle=0
while :; do
  sleep 1
  if flock -n -x 9; then
    idle=$((idle+1))
    if [ "$idle" -ge "$4" ]; then stop_all; exit 0; fi
    flock -u 9
  else
    idle=0
  fi
done
"#;

// ---------------------------------------------------------------------------------------------
// Finding binaries and users.

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.mode() & 0o111 != 0)
        })
}

/// The `redis-server` binary on `PATH`, if any.
pub fn find_redis_server() -> Option<PathBuf> {
    on_path("redis-server")
}

/// The directory holding `initdb` and `postgres`: `initdb`'s (resolved) directory on `PATH`,
/// else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_postgres_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(initdb) = on_path("initdb") {
        let resolved = fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = resolved.parent()
            && has_both(dir)
        {
            return Some(dir.to_path_buf());
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn current_uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .unwrap_or(u32::MAX)
}

/// The `(uid, gid)` PostgreSQL must run as: the `postgres` user when we are root.
fn postgres_identity() -> Result<Option<(u32, u32)>, String> {
    if current_uid() != 0 {
        return Ok(None);
    }
    let passwd =
        fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .map(Some)
        .ok_or_else(|| {
            "running as root and there is no `postgres` user to run PostgreSQL as".to_owned()
        })
}

/// `$TMPDIR/test-support-<uid>`, created world-traversable (PostgreSQL's user must reach its
/// data directory inside).
/// When running as root and `$TMPDIR` is not traversable by others (e.g. `mktemp -d`), the
/// `postgres` user could not reach its data directory: `/tmp` is used instead.
pub fn base_dir() -> Result<PathBuf, String> {
    let mut tmp = std::env::temp_dir();
    let traversable = |dir: &Path| {
        dir.ancestors()
            .all(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
    };
    if current_uid() == 0 && !traversable(&tmp) {
        tmp = PathBuf::from("/tmp");
    }
    let dir = tmp.join(format!("test-support-{}", current_uid()));
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    Ok(dir)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| e.to_string())
}

fn log_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

fn write_atomic(path: &Path, contents: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("renaming {}: {e}", tmp.display()))
}

fn pid_alive(pid: u32) -> bool {
    crate::postgres::pid_alive(pid)
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Guardians.

/// How a guardian learns that its users are gone.
enum Watch<'a> {
    /// Nobody holds a shared lock on this file for a few seconds.
    SharedLock(&'a Path),
    /// The pipe on its stdin closes (returned: keep it open while the server is wanted).
    Pipe,
}

/// Starts a guardian for `dir` in its own process group; records its pid in `guardian.pid`.
fn spawn_guardian(dir: &Path, watch: Watch<'_>) -> Result<(Child, Option<ChildStdin>), String> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(GUARDIAN).arg("guardian").arg(dir);
    match watch {
        Watch::SharedLock(lock) => {
            command
                .arg("shared")
                .arg(lock)
                .arg(SHARED_GRACE_SECONDS.to_string())
                .stdin(Stdio::null());
        }
        Watch::Pipe => {
            command.arg("pipe").stdin(Stdio::piped());
        }
    }
    let log = log_file(&dir.join("guardian.log"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = command
        .stdout(log)
        .stderr(log2)
        .current_dir("/")
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the guardian (sh): {e}"))?;
    fs::write(dir.join("guardian.pid"), format!("{}\n", child.id()))
        .map_err(|e| format!("writing guardian.pid: {e}"))?;
    let stdin = child.stdin.take();
    Ok((child, stdin))
}

/// Kills whatever a previous, broken instance left in `dir` and removes it.
fn clear_leftovers(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if let Some(pid) = read_pid(&dir.join("guardian.pid"))
        && pid_alive(pid)
    {
        crate::process::send_signal(pid, "KILL");
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "pid")
                && path.file_name().is_some_and(|name| name != "guardian.pid")
                && let Some(pid) = read_pid(&path)
                && pid_alive(pid)
            {
                crate::process::send_signal(pid, "KILL");
            }
        }
    }
    if dir.join("stop.sh").is_file() {
        let _ = Command::new("sh")
            .arg(dir.join("stop.sh"))
            .stdout(Stdio::null())
            .status();
    }
    let _ = fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Shared servers.

/// Locks and guardian stdin pipes this process keeps for its whole life.
static KEEP_ALIVE: Mutex<Vec<KeepAlive>> = Mutex::new(Vec::new());

#[allow(
    dead_code,
    reason = "held only for their Drop: closing them releases the server"
)]
enum KeepAlive {
    Lock(File),
    Pipe(ChildStdin),
}

fn keep(item: KeepAlive) {
    KEEP_ALIVE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(item);
}

fn open_lock(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // Readable by anyone: a guardian opens it read-only for flock.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o644));
    Ok(file)
}

fn per_process_mode() -> bool {
    std::env::var(LOCAL_MODE_VAR).is_ok_and(|mode| mode == "per-process")
        || on_path("flock").is_none()
}

/// Makes sure the shared server `name` runs (starting it with `start` when needed) and returns
/// its URL. `start(dir)` starts the server in the empty directory `dir`, records its pid in
/// `dir/server.pid` and returns its URL once it accepts connections.
pub(crate) fn ensure_shared(
    name: &str,
    start: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<String, String> {
    let base = base_dir()?;
    if per_process_mode() {
        let dir = base.join(format!("{name}-process-{}", std::process::id()));
        clear_leftovers(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let (_guardian, pipe) = spawn_guardian(&dir, Watch::Pipe)?;
        if let Some(pipe) = pipe {
            keep(KeepAlive::Pipe(pipe));
        }
        return start(&dir);
    }
    let setup = open_lock(&base.join(format!("shared-{name}.setup.lock")))?;
    setup
        .lock()
        .map_err(|e| format!("locking the setup lock: {e}"))?;
    let users_path = base.join(format!("shared-{name}.users.lock"));
    let users = open_lock(&users_path)?;
    // Blocks while a guardian is tearing the previous server down.
    users
        .lock_shared()
        .map_err(|e| format!("locking the users lock: {e}"))?;
    let dir = base.join(format!("shared-{name}"));
    if let Ok(url) = fs::read_to_string(dir.join("url"))
        && read_pid(&dir.join("guardian.pid")).is_some_and(pid_alive)
        && reachable(&url)
    {
        keep(KeepAlive::Lock(users));
        return Ok(url);
    }
    clear_leftovers(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    // The guardian first: if this process dies while starting the server, it still cleans up.
    spawn_guardian(&dir, Watch::SharedLock(&users_path))?;
    let url = start(&dir)?;
    write_atomic(&dir.join("url"), &url)?;
    keep(KeepAlive::Lock(users));
    drop(setup);
    Ok(url)
}

fn reachable(url: &str) -> bool {
    let Some(parts) = crate::url::parse(url) else {
        return false;
    };
    let Some(port) = parts.port else { return false };
    let host = parts.host.trim_start_matches('[').trim_end_matches(']');
    let Ok(mut addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok())
}

pub(crate) fn shared_redis() -> Result<String, String> {
    let binary = find_redis_server().ok_or("no redis-server on PATH")?;
    ensure_shared("redis", &|dir| {
        let server = RedisServer::start(&binary, dir, None, false)?;
        // The process does not wait for it: the guardian stops it.
        Ok(server.url())
    })
}

pub(crate) fn shared_postgres() -> Result<String, String> {
    let bin = find_postgres_bin_dir().ok_or("no initdb on PATH or /usr/lib/postgresql/*/bin")?;
    ensure_shared("postgres", &|dir| {
        let server = PostgresServer::init(&bin, dir)?;
        server.start(None)
    })
}

// ---------------------------------------------------------------------------------------------
// Redis.

struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` with its data in `dir` on `port` (a free one when `None`).
    fn start(
        binary: &Path,
        dir: &Path,
        port: Option<u16>,
        appendonly: bool,
    ) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let chosen = match port {
                Some(port) => port,
                None => free_port()?,
            };
            let log = log_file(&dir.join("redis.log"))?;
            let log2 = log.try_clone().map_err(|e| e.to_string())?;
            let mut command = Command::new(binary);
            command
                .args([
                    "--port",
                    &chosen.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args([
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                    "--logfile",
                    "",
                ])
                .arg("--dir")
                .arg(dir)
                .args(["--appendonly", if appendonly { "yes" } else { "no" }])
                .args(["--appendfsync", "always"])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .current_dir(dir);
            if port_is_shared_server(dir) {
                command.process_group(0);
            }
            let mut child = command
                .spawn()
                .map_err(|e| format!("starting {}: {e}", binary.display()))?;
            fs::write(dir.join("server.pid"), format!("{} TERM\n", child.id()))
                .map_err(|e| format!("writing server.pid: {e}"))?;
            match wait_redis_ready(chosen, &mut child) {
                Ok(()) => {
                    return Ok(Self {
                        port: chosen,
                        child,
                    });
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = error;
                    if port.is_some() {
                        break;
                    }
                }
            }
        }
        let log = fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
        Err(format!(
            "redis-server did not start: {last_error}; log:\n{log}"
        ))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Shared servers must outlive the test process that started them: their own process group.
fn port_is_shared_server(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("shared-"))
}

fn wait_redis_ready(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited with {status}"));
        }
        if redis_ping(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not answering PING after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when a Redis on `port` answers `PING` with `+PONG` (not `-LOADING`).
fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    let ok = stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n";
    let _ = stream.shutdown(Shutdown::Both);
    ok
}

/// Options of an [`OwnedRedis`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisOptions {
    /// `appendonly yes` with `appendfsync always`: data survives a restart, even after SIGKILL.
    pub appendonly: bool,
}

/// A Redis server owned by one test: stop it, kill it, start it again on the same port and
/// data directory. Removed (server killed, directory deleted) on drop or when the test process
/// dies.
#[derive(Debug)]
pub struct OwnedRedis {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    options: RedisOptions,
    child: Option<Child>,
    guardian: Child,
    pipe: Option<ChildStdin>,
}

impl OwnedRedis {
    /// Starts one, or prints the `SKIP` line and returns `None` when `redis-server` is missing
    /// (panics under `REQUIRE_SERVICES=1`).
    pub fn start(options: RedisOptions) -> Option<Self> {
        let Some(binary) = find_redis_server() else {
            crate::skip_or_panic("owned Redis", "no redis-server on PATH");
            return None;
        };
        let (dir, guardian, pipe) =
            owned_dir("redis").unwrap_or_else(|e| panic!("test-support: {e}"));
        let server = RedisServer::start(&binary, &dir, None, options.appendonly)
            .unwrap_or_else(|e| panic!("test-support: {e}"));
        Some(Self {
            binary,
            dir,
            port: server.port,
            options,
            child: Some(server.child),
            guardian,
            pipe,
        })
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, e.g. as a [`crate::TcpProxy`] target.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's data directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Graceful stop (SIGTERM; with `appendonly` the data is flushed) and wait.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, "TERM");
    }

    /// Crash (SIGKILL) and wait.
    pub fn kill(&mut self) {
        stop_child(&mut self.child, "KILL");
    }

    /// Starts the server again on the same port and data directory (after `stop`/`kill`).
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "test-support: OwnedRedis::start_again while running"
        );
        let child = start_again_on_port("Redis", Duration::from_secs(10), || {
            RedisServer::start(
                &self.binary,
                &self.dir,
                Some(self.port),
                self.options.appendonly,
            )
            .map(|server| server.child)
        });
        self.child = Some(child);
    }

    /// `stop` then `start_again`.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for OwnedRedis {
    fn drop(&mut self) {
        stop_child(&mut self.child, "KILL");
        release_owned(&mut self.pipe, &mut self.guardian);
    }
}

/// Calls `start` until it succeeds (the port may linger a moment after a kill), every 100 ms
/// for up to `patience`; panics with `server`'s name and the last error after that.
fn start_again_on_port(
    server: &str,
    patience: Duration,
    mut start: impl FnMut() -> Result<Child, String>,
) -> Child {
    let deadline = Instant::now() + patience;
    loop {
        match start() {
            Ok(child) => return child,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => panic!("test-support: restarting {server}: {error}"),
        }
    }
}

fn stop_child(child: &mut Option<Child>, signal: &str) {
    if let Some(mut running) = child.take() {
        crate::process::send_signal(running.id(), signal);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match running.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = running.kill();
                    let _ = running.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

/// A fresh directory for an owned server, with its pipe guardian.
fn owned_dir(kind: &str) -> Result<(PathBuf, Child, Option<ChildStdin>), String> {
    let dir = base_dir()?.join(format!(
        "owned-{kind}-{}-{}",
        std::process::id(),
        crate::postgres::random_suffix()
    ));
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let (guardian, pipe) = spawn_guardian(&dir, Watch::Pipe)?;
    Ok((dir, guardian, pipe))
}

/// Closes the guardian's pipe and waits (briefly) for it to remove the directory.
fn release_owned(pipe: &mut Option<ChildStdin>, guardian: &mut Child) {
    drop(pipe.take());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if matches!(guardian.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    identity: Option<(u32, u32)>,
}

impl PostgresServer {
    /// `initdb` a cluster in `dir/data` (trust auth, superuser `postgres`, no fsync).
    fn init(bin: &Path, dir: &Path) -> Result<Self, String> {
        let identity = postgres_identity()?;
        let data = dir.join("data");
        fs::create_dir_all(&data).map_err(|e| format!("mkdir {}: {e}", data.display()))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = identity {
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", data.display()))?;
        }
        let log = log_file(&dir.join("initdb.log"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(bin.join("initdb"));
        command
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(dir);
        as_identity(&mut command, identity);
        let status = command
            .status()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !status.success() {
            let log = fs::read_to_string(dir.join("initdb.log")).unwrap_or_default();
            return Err(format!("initdb failed ({status}):\n{log}"));
        }
        Ok(Self {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            identity,
        })
    }

    /// Starts `postgres` on `port` (a free one when `None`); returns the maintenance URL once
    /// it accepts queries. The process is recorded in `server.pid` (fast shutdown on SIGINT).
    fn start(&self, port: Option<u16>) -> Result<String, String> {
        self.start_child(port).map(|(url, _)| url)
    }

    fn start_child(&self, port: Option<u16>) -> Result<(String, Child), String> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let chosen = match port {
                Some(port) => port,
                None => free_port()?,
            };
            let log = log_file(&self.dir.join("postgres.log"))?;
            let log2 = log.try_clone().map_err(|e| e.to_string())?;
            let mut command = Command::new(self.bin.join("postgres"));
            command
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-p", &chosen.to_string()])
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                ])
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
                .args([
                    "-c",
                    "shared_buffers=64MB",
                    "-c",
                    "log_min_messages=warning",
                ])
                .env_remove("PGDATA")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .current_dir(&self.dir);
            if port_is_shared_server(&self.dir) {
                command.process_group(0);
            }
            as_identity(&mut command, self.identity);
            let mut child = command
                .spawn()
                .map_err(|e| format!("starting postgres: {e}"))?;
            fs::write(self.dir.join("server.pid"), format!("{} INT\n", child.id()))
                .map_err(|e| format!("writing server.pid: {e}"))?;
            let url = format!("postgres://postgres@127.0.0.1:{chosen}/postgres");
            match wait_postgres_ready(&url, &mut child) {
                Ok(()) => return Ok((url, child)),
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = error;
                    if port.is_some() {
                        break;
                    }
                }
            }
        }
        let log = fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        Err(format!("postgres did not start: {last_error}; log:\n{log}"))
    }
}

fn as_identity(command: &mut Command, identity: Option<(u32, u32)>) {
    if let Some((uid, gid)) = identity {
        command
            .gid(gid)
            .uid(uid)
            .env("HOME", "/tmp")
            .env("USER", "postgres");
    }
}

fn wait_postgres_ready(url: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited with {status}"));
        }
        if reachable(url) {
            let probe = url.to_owned();
            let answered = crate::blocking::run_on_side_thread(move || async move {
                let (client, connection) = tokio_postgres::connect(&probe, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                let task = tokio::spawn(connection);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = task.await;
                Some(ok)
            });
            if answered == Some(Some(true)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("not answering after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL server owned by one test (its own `initdb`, ~2 s): stop, kill and start it
/// again on the same port and data. Removed on drop or when the test process dies.
#[derive(Debug)]
pub struct OwnedPostgres {
    bin: PathBuf,
    dir: PathBuf,
    identity: Option<(u32, u32)>,
    port: u16,
    child: Option<Child>,
    guardian: Child,
    pipe: Option<ChildStdin>,
}

impl OwnedPostgres {
    /// Starts one, or prints the `SKIP` line and returns `None` when the binaries are missing
    /// (panics under `REQUIRE_SERVICES=1`).
    pub fn start() -> Option<Self> {
        let Some(bin) = find_postgres_bin_dir() else {
            crate::skip_or_panic(
                "owned PostgreSQL",
                "no initdb on PATH or /usr/lib/postgresql/*/bin",
            );
            return None;
        };
        let (dir, guardian, pipe) =
            owned_dir("postgres").unwrap_or_else(|e| panic!("test-support: {e}"));
        let server =
            PostgresServer::init(&bin, &dir).unwrap_or_else(|e| panic!("test-support: {e}"));
        let (url, child) = server
            .start_child(None)
            .unwrap_or_else(|e| panic!("test-support: {e}"));
        let port = crate::url::parse(&url)
            .and_then(|p| p.port)
            .unwrap_or_default();
        Some(Self {
            bin,
            dir,
            identity: server.identity,
            port,
            child: Some(child),
            guardian,
            pipe,
        })
    }

    /// The maintenance database URL (`postgres://postgres@127.0.0.1:<port>/postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `127.0.0.1:<port>`, e.g. as a [`crate::TcpProxy`] target.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The postmaster's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fast shutdown (SIGINT: clients are disconnected) and wait.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, "INT");
    }

    /// Immediate shutdown (SIGQUIT: like a crash, recovery on next start) and wait.
    pub fn kill(&mut self) {
        stop_child(&mut self.child, "QUIT");
    }

    /// Starts the server again on the same port and data (after `stop`/`kill`).
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "test-support: OwnedPostgres::start_again while running"
        );
        let server = PostgresServer {
            bin: self.bin.clone(),
            dir: self.dir.clone(),
            identity: self.identity,
        };
        let child = start_again_on_port("PostgreSQL", Duration::from_secs(15), || {
            server.start_child(Some(self.port)).map(|(_, child)| child)
        });
        self.child = Some(child);
    }

    /// `stop` then `start_again`.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for OwnedPostgres {
    fn drop(&mut self) {
        stop_child(&mut self.child, "QUIT");
        release_owned(&mut self.pipe, &mut self.guardian);
    }
}
