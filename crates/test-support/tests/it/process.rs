//! The child-process driver: env, captured lines, signals, restart, exit status.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use test_support::ChildProcess;

// The trap is installed before the first line: the test signals as soon as it sees the lines.
const SCRIPT: &str = r#"
trap 'echo "{\"msg\":\"terminating\"}"; exit 3' TERM
echo "{\"msg\":\"started\",\"x\":\"$X\",\"leak\":\"${TEST_DATABASE_URL:-unset}\",\"cwd\":\"$(pwd)\"}"
echo "to stderr" >&2
while :; do sleep 0.05; done
"#;

fn spawn() -> ChildProcess {
    ChildProcess::spawn_with_args("sh", ["-c", SCRIPT], [("X", "from the map")])
}

#[tokio::test]
async fn env_lines_and_sigterm() {
    let mut child = spawn();
    let started = child
        .wait_for_json(|v| v["msg"] == "started", Duration::from_secs(10))
        .await;
    assert_eq!(started["x"], "from the map");
    assert_eq!(
        started["leak"], "unset",
        "the parent's environment must not leak in"
    );
    let cwd = std::env::current_dir().unwrap();
    assert_ne!(started["cwd"].as_str().unwrap(), cwd.to_str().unwrap());
    child
        .wait_for_line(|l| l == "to stderr", Duration::from_secs(10))
        .await;

    child.sigterm();
    child
        .wait_for_json(|v| v["msg"] == "terminating", Duration::from_secs(10))
        .await;
    let status = child.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(3));
}

#[tokio::test]
async fn sigkill_and_restart() {
    let mut child = spawn();
    child
        .wait_for_json(|v| v["msg"] == "started", Duration::from_secs(10))
        .await;
    let first = child.id().unwrap();
    child.sigkill();
    let status = child.wait(Duration::from_secs(10)).await;
    assert_eq!(status.signal(), Some(9));
    assert!(
        !child.output().contains("terminating"),
        "SIGKILL runs no handler"
    );

    child.restart().await;
    assert_ne!(child.id().unwrap(), first);
    // The cursor moved past the first run's lines: this is the second "started".
    child
        .wait_for_json(|v| v["msg"] == "started", Duration::from_secs(10))
        .await;
    let started = child
        .lines()
        .iter()
        .filter(|l| l.text.contains("\"started\""))
        .count();
    assert_eq!(started, 2);
    assert!(child.try_status().is_none());
}

#[tokio::test]
async fn wait_for_line_times_out_with_the_output() {
    let mut child = spawn();
    let waited = tokio::spawn(async move {
        child
            .wait_for_line(|l| l == "never printed", Duration::from_millis(300))
            .await
    })
    .await;
    let panic = waited.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("no matching line"), "{message}");
    assert!(
        message.contains("started"),
        "the message shows the output so far: {message}"
    );
}
