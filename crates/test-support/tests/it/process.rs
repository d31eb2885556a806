//! The child-process driver: env, captured lines, signals, restart, exit status.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use test_support::ChildProcess;
use test_support::process::Stream;

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

/// 50 000 short lines on each stream (several pipe buffers), then an immediate exit: the
/// last pipe buffer of each is still unread when the exit can be seen.
const BURST: &str =
    "seq 50000 | sed 's/.*/x/'; seq 50000 | sed 's/.*/y/' >&2; echo last; echo last >&2";
const BURST_LINES: usize = 50_001;

fn assert_every_burst_line(child: &ChildProcess, run: usize) {
    let lines = child.lines();
    for stream in [Stream::Stdout, Stream::Stderr] {
        let texts: Vec<&str> = lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            texts.len(),
            BURST_LINES,
            "run {run}, {stream:?}: lines missing"
        );
        assert_eq!(texts.last(), Some(&"last"), "run {run}, {stream:?}");
    }
}

// Several runs on two workers: the readers and the waiter then race as they do in the
// processor's tests, and one run alone may well collect everything in time by luck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_after_the_last_line_of_a_child_that_exits_at_once() {
    for run in 0..5 {
        let mut child = ChildProcess::spawn_with_args("sh", ["-c", BURST], [("X", "")]);
        let status = child.wait(Duration::from_secs(20)).await;
        assert!(status.success());
        assert_every_burst_line(&child, run);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_status_reports_the_exit_after_the_last_line() {
    for run in 0..5 {
        let mut child = ChildProcess::spawn_with_args("sh", ["-c", BURST], [("X", "")]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_status() {
                break status;
            }
            assert!(tokio::time::Instant::now() < deadline, "no exit reported");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert!(status.success());
        assert_every_burst_line(&child, run);
    }
}
