//! `cargo xtask bench live`: the live path's benchmark (idle memory per connection, delivered
//! frames/s and latency at 1 000 clients × 200 devices, the ceiling, the ordering check).
//!
//! xtask stays light: the load client is the `bench_live` example of `bins/processor` (it
//! needs tokio, fred, the live-protocol client and test-support's Directus stub). This module
//! builds it and the processor in release, then runs it under a raised open-file limit
//! (`ulimit -n`, up to the hard limit) so 10 000 connections fit. Figures go to stdout; they are
//! recorded in `docs/performance.md`. Not a test: nothing here asserts.
//!
//! Options (passed through): `--connections N` (10 000), `--clients N` (1 000), `--devices N`
//! (200), `--step-secs S` (8), `--max-steps N` (11), `--coalesce-ms A,B,…` (`0,20`: the delivery
//! phases run once per `LIVE_COALESCE_WINDOW_MS` value, the first being the baseline),
//! `--publish-tick-ms T` (1); `--no-build` skips the build.
//! `TEST_REDIS_URL` / `TEST_DATABASE_URL` pick the servers (as for the tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Runs the live benchmark.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let build = !args.iter().any(|a| a == "--no-build");
    let passed: Vec<&String> = args.iter().filter(|a| *a != "--no-build").collect();
    if build {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "processor",
                "--bin",
                "processor",
                "--example",
                "bench_live",
            ])
            .current_dir(&root)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p processor --example bench_live failed");
        }
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), PathBuf::from);
    let release = target.join("release");
    let client = release.join("examples").join("bench_live");
    let processor = release.join("processor");
    // The fd limit: raised to 30 000 or the hard limit, whichever is lower; inherited by the
    // processor (spawned by the client).
    let script = r#"hard=$(ulimit -Hn); want=30000
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" || exit 3
exec "$@""#;
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("bench_live")
        .arg(&client)
        .arg("--processor")
        .arg(&processor)
        .args(passed)
        .current_dir(&root)
        .status()
        .context("running the bench_live client")?;
    if !status.success() {
        bail!("bench_live failed ({status})");
    }
    Ok(())
}
