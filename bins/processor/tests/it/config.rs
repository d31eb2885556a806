//! Configuration errors, end to end: the binary exits 2 naming every bad variable.

use std::time::Duration;

use test_support::ChildProcess;

#[tokio::test]
async fn several_bad_variables_exit_2_naming_each_without_secrets() {
    let mut child = ChildProcess::spawn(
        env!("CARGO_BIN_EXE_processor"),
        [
            ("REDIS_READ_COUNT", "0"),
            ("LOG_FORMAT", "xml"),
            ("REDIS_URL", "http://user:hunter2@127.0.0.1:6379"),
            ("LIVE_ENABLED", "maybe"),
            ("SHUTDOWN_TIMEOUT_MS", "600001"),
            // Valid ones are not reported.
            ("METRICS_PORT", "0"),
        ],
    );
    let status = child.wait(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2), "{}", child.output());
    // The exit can be seen before the captured stderr: wait for the last problem's line
    // (problems are printed in the order of the variable table).
    child
        .wait_for_line(
            |l| l.contains("SHUTDOWN_TIMEOUT_MS="),
            Duration::from_secs(5),
        )
        .await;
    let output = child.output();
    for expected in [
        r#"REDIS_READ_COUNT="0": expected an integer in 1..=10000"#,
        r#"LOG_FORMAT="xml": expected `json` or `pretty`"#,
        r#"REDIS_URL="http://user:***@127.0.0.1:6379": expected a redis:// or rediss:// URL"#,
        r#"LIVE_ENABLED="maybe""#,
        r#"SHUTDOWN_TIMEOUT_MS="600001": expected an integer in 0..=600000"#,
    ] {
        assert!(
            output.contains(expected),
            "missing {expected:?} in:\n{output}"
        );
    }
    assert!(!output.contains("hunter2"), "{output}");
    assert!(!output.contains("METRICS_PORT"), "{output}");
    assert!(output.contains("5 problem(s)"), "{output}");
}

#[test]
fn a_dotenv_file_is_read_below_the_real_environment() {
    // An invalid value in `.env` is reported like an environment variable; a valid real
    // variable overrides the same one in `.env`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "REDIS_READ_COUNT=abc\nWRITE_BATCH_SIZE=0\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_processor"))
        .current_dir(dir.path())
        .env_clear()
        .env("WRITE_BATCH_SIZE", "100")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"REDIS_READ_COUNT="abc""#), "{stderr}");
    assert!(
        !stderr.contains("WRITE_BATCH_SIZE"),
        "the real variable wins: {stderr}"
    );
}
