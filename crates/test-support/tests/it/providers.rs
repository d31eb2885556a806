//! The provider chain: which provider serves, the SKIP line, `REQUIRE_SERVICES`, and that a
//! killed test process leaves no server and no directory behind.
//!
//! Provider choice is per process and read from the environment, so these tests re-run this
//! very test binary as a child (`probe` below) with a chosen environment (and a private
//! `TMPDIR`, so the child's local servers are its own).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use test_support::ChildProcess;

/// Set by the parent tests: makes [`probe`] print its servers' details and wait to be killed.
const HANG_VAR: &str = "TEST_SUPPORT_PROBE_HANG";

/// Uses both services (as any service test would) and checks they answer. Run directly it
/// checks this run's providers; the tests below run it as a child with other environments.
#[tokio::test]
async fn probe() {
    let Some(pg) = test_support::postgres().await else {
        return;
    };
    let row = pg
        .client()
        .await
        .query_one("SELECT 41 + 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    let Some(redis) = test_support::redis().await else {
        return;
    };
    let client = redis.client().await;
    let pong: String = fred::prelude::ClientLike::ping(&client, None)
        .await
        .unwrap();
    assert_eq!(pong, "PONG");
    eprintln!("PROBE OK pg={} redis={}", pg.provider(), redis.provider());
    if std::env::var_os(HANG_VAR).is_some() {
        let owned = test_support::local::OwnedRedis::start(Default::default()).unwrap();
        eprintln!("PROBE OWNED {}", owned.dir().display());
        eprintln!("PROBE HANGING");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Prints where this run's services come from (the CI log shows it: nextest's `ci` profile
/// prints this test's output even on success).
#[tokio::test]
async fn services_report() {
    let pg = test_support::postgres().await;
    let redis = test_support::redis().await;
    println!(
        "services: PostgreSQL from {}, Redis from {}",
        pg.as_ref().map_or("nowhere (skipped)".to_owned(), |pg| pg
            .provider()
            .to_string()),
        redis
            .as_ref()
            .map_or("nowhere (skipped)".to_owned(), |r| r.provider().to_string()),
    );
}

fn private_tmp() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ts-probe-{}-{}",
        std::process::id(),
        test_support::unique_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn probe_child(env: &[(&str, &str)]) -> ChildProcess {
    let exe = std::env::current_exe().unwrap();
    ChildProcess::spawn_with_args(
        exe,
        [
            "providers::probe",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ],
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// Provider-specific tests skip (without failing, even under `REQUIRE_SERVICES=1`) where that
/// provider does not exist: CI elsewhere may offer only URLs.
fn local_binaries_present() -> bool {
    let present = test_support::local::find_redis_server().is_some()
        && test_support::local::find_postgres_bin_dir().is_some();
    if !present {
        eprintln!(
            "SKIP {}: no local binaries (redis-server, initdb)",
            test_support::current_test_name()
        );
    }
    present
}

#[tokio::test]
async fn docker_provider_when_an_engine_exists() {
    let Some(engine) = test_support::provider::docker_engine() else {
        eprintln!(
            "SKIP {}: no Docker engine",
            test_support::current_test_name()
        );
        return;
    };
    let mut child = probe_child(&[
        ("TEST_SERVICES_PROVIDER", "docker"),
        ("DOCKER_HOST", &engine),
    ]);
    let status = child.wait(Duration::from_secs(600)).await;
    let output = child.output();
    assert!(status.success(), "probe failed:\n{output}");
    assert!(
        output.contains("PROBE OK pg=docker redis=docker"),
        "{output}"
    );
}

#[tokio::test]
async fn local_provider_serves_both_services() {
    if !local_binaries_present() {
        return;
    }
    let tmp = private_tmp();
    let mut child = probe_child(&[
        ("TEST_SERVICES_PROVIDER", "local"),
        ("TMPDIR", tmp.to_str().unwrap()),
    ]);
    let status = child.wait(Duration::from_secs(120)).await;
    let output = child.output();
    assert!(status.success(), "probe failed:\n{output}");
    assert!(output.contains("PROBE OK pg=local redis=local"), "{output}");
    assert!(
        output.contains("test-support: PostgreSQL from local"),
        "{output}"
    );
    assert!(
        output.contains("test-support: Redis from local"),
        "{output}"
    );
    // The shared servers' guardians tear everything down once the process is gone.
    let base = tmp.join(format!("test-support-{}", uid()));
    wait_until_gone(&base.join("shared-postgres"), Duration::from_secs(30));
    wait_until_gone(&base.join("shared-redis"), Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test]
async fn no_provider_skips_with_one_line() {
    let mut child = probe_child(&[("TEST_SERVICES_PROVIDER", "env")]);
    let status = child.wait(Duration::from_secs(60)).await;
    let output = child.output();
    assert!(
        status.success(),
        "a missing service must skip, not fail:\n{output}"
    );
    let skips: Vec<&str> = output.lines().filter(|l| l.starts_with("SKIP ")).collect();
    assert_eq!(
        skips,
        [
            "SKIP providers::probe: no PostgreSQL: TEST_DATABASE_URL unset, TEST_SERVICES_PROVIDER=env"
        ],
        "{output}"
    );
    assert!(!output.contains("PROBE OK"), "{output}");
}

#[tokio::test]
async fn require_services_turns_the_skip_into_a_failure() {
    let mut child = probe_child(&[("TEST_SERVICES_PROVIDER", "env"), ("REQUIRE_SERVICES", "1")]);
    let status = child.wait(Duration::from_secs(60)).await;
    let output = child.output();
    assert!(
        !status.success(),
        "REQUIRE_SERVICES=1 must fail without services:\n{output}"
    );
    assert!(
        output.contains("SKIP providers::probe: no PostgreSQL"),
        "{output}"
    );
    assert!(output.contains("REQUIRE_SERVICES=1"), "{output}");
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn wait_until_gone(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} still exists after {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) is not a running server.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn server_pid(dir: &Path) -> u32 {
    let text = std::fs::read_to_string(dir.join("server.pid")).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// SIGKILL a test process that uses shared local servers (its own `TMPDIR`, so it is their
/// only user) and an owned server: every server process and directory goes away.
async fn killed_child_leaves_nothing(mode: &str) {
    if !local_binaries_present() {
        return;
    }
    let tmp = private_tmp();
    let mut child = probe_child(&[
        ("TEST_SERVICES_PROVIDER", "local"),
        ("TEST_SERVICES_LOCAL", mode),
        ("TMPDIR", tmp.to_str().unwrap()),
        (HANG_VAR, "1"),
    ]);
    child
        .wait_for_line(|l| l == "PROBE HANGING", Duration::from_secs(120))
        .await;
    let base = tmp.join(format!("test-support-{}", uid()));
    let dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 3, "two shared servers and one owned: {dirs:?}");
    let pids: Vec<u32> = dirs.iter().map(|d| server_pid(d)).collect();
    assert!(pids.iter().all(|&pid| pid_alive(pid)));

    child.sigkill();
    child.wait(Duration::from_secs(10)).await;
    for dir in &dirs {
        wait_until_gone(dir, Duration::from_secs(30));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|&pid| pid_alive(pid)) {
        assert!(
            Instant::now() < deadline,
            "a server outlived the killed test process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test]
async fn killed_test_process_leaves_nothing_behind_shared() {
    killed_child_leaves_nothing("shared").await;
}

#[tokio::test]
async fn killed_test_process_leaves_nothing_behind_per_process() {
    killed_child_leaves_nothing("per-process").await;
}
