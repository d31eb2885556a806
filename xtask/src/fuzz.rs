//! `cargo xtask fuzz [--smoke] [--time SECS] [TARGET…]`: build and run the cargo-fuzz targets
//! of `fuzz/` (teltonika-codec's decoders, framer and stream record) with the nightly
//! toolchain.
//!
//! - `--smoke`: every target for a few seconds ([`SMOKE_SECONDS`]); what `cargo xtask ci`
//!   runs. Skipped with one `SKIP` line when no nightly toolchain is installed (a nightly
//!   cannot be fetched on these machines). When the nightly exists but cargo-fuzz does not,
//!   CI (`CI` set) installs it (`cargo install cargo-fuzz --locked`, about a minute on two
//!   cores); elsewhere it is skipped with the command to run.
//! - default: every target for `--time` seconds (default [`DEFAULT_SECONDS`]).
//!
//! Each run uses a scratch corpus `fuzz/corpus/<target>` (git-ignored) seeded from the
//! committed `fuzz/seeds/<target>`; a crash leaves its input in `fuzz/artifacts/<target>/`
//! and fails the command. Limits: `-timeout` flags hangs, `-rss_limit_mb` / `-malloc_limit_mb`
//! flag runaway allocation.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::ci::project_root;

/// Seconds per target for `--smoke`.
pub(crate) const SMOKE_SECONDS: u32 = 15;
/// Seconds per target for a full run.
pub(crate) const DEFAULT_SECONDS: u32 = 180;
/// A single input taking longer than this is a hang.
const TIMEOUT_SECONDS: u32 = 10;
/// Largest input libFuzzer generates: above the codec's 64 KiB frame cap.
const MAX_LEN: u32 = 70_000;
/// Any single allocation above this is a bug for inputs of at most `MAX_LEN` bytes.
const MALLOC_LIMIT_MB: u32 = 64;
const RSS_LIMIT_MB: u32 = 1024;

/// Entry point from `main.rs`; `args` are the words after `fuzz`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut smoke = false;
    let mut seconds = None;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => smoke = true,
            "--time" => {
                let v = it.next().context("--time needs a number of seconds")?;
                seconds = Some(v.parse::<u32>().with_context(|| format!("--time {v}"))?);
            }
            "-h" | "--help" => {
                println!("cargo xtask fuzz [--smoke] [--time SECS] [TARGET…]");
                return Ok(());
            }
            t if !t.starts_with('-') => only.push(t.to_owned()),
            other => bail!("unknown option {other}; try `cargo xtask fuzz --help`"),
        }
    }
    let seconds = seconds.unwrap_or(if smoke {
        SMOKE_SECONDS
    } else {
        DEFAULT_SECONDS
    });

    if !nightly_present() {
        println!("SKIP fuzz: no nightly toolchain (`rustup toolchain list` has none)");
        return Ok(());
    }
    if !cargo_fuzz_present() {
        if std::env::var_os("CI").is_some() {
            println!("fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)");
            let status = Command::new("cargo")
                .args(["install", "cargo-fuzz", "--locked"])
                .status()
                .context("running cargo install")?;
            if !status.success() {
                bail!("cargo install cargo-fuzz failed: {status}");
            }
        } else {
            println!("SKIP fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)");
            return Ok(());
        }
    }

    let fuzz_dir = project_root().join("fuzz");
    let targets = list_targets(&fuzz_dir)?;
    let chosen: Vec<&String> = if only.is_empty() {
        targets.iter().collect()
    } else {
        for t in &only {
            if !targets.contains(t) {
                bail!("no fuzz target {t}; targets: {}", targets.join(", "));
            }
        }
        targets.iter().filter(|t| only.contains(t)).collect()
    };

    let started = Instant::now();
    println!(
        "fuzz: building {} target(s) with the nightly toolchain",
        chosen.len()
    );
    let mut build = cargo_fuzz(&fuzz_dir);
    build.arg("build");
    if !only.is_empty() {
        // `cargo fuzz build` takes one target at most; build them all otherwise.
        if let [one] = chosen.as_slice() {
            build.arg(one.as_str());
        }
    }
    let status = build.status().context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed: {status}");
    }
    println!("fuzz: built in {:.0?}", started.elapsed());

    let mut failed = Vec::new();
    for target in chosen {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let t0 = Instant::now();
        let mut cmd = cargo_fuzz(&fuzz_dir);
        cmd.args(["run", target.as_str()]).arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-timeout={TIMEOUT_SECONDS}"))
            .arg(format!("-max_len={MAX_LEN}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-malloc_limit_mb={MALLOC_LIMIT_MB}"))
            .arg("-print_final_stats=1");
        // libFuzzer reports on stderr: keep it quiet unless the target fails.
        let out = cmd
            .output()
            .with_context(|| format!("running fuzz target {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        let status = out.status;
        let runs = log
            .lines()
            .find(|l| l.starts_with("Done "))
            .unwrap_or("no final stats");
        let verdict = if status.success() { "ok" } else { "FAILED" };
        println!(
            "fuzz: {target}: {verdict} after {:.0?} ({runs})",
            t0.elapsed()
        );
        if !status.success() {
            let lines: Vec<&str> = log.lines().collect();
            for line in &lines[lines.len().saturating_sub(60)..] {
                println!("  | {line}");
            }
        }
        if !status.success() {
            failed.push(target.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz target(s) failed: {} (inputs in fuzz/artifacts/<target>/)",
            failed.join(", ")
        );
    }
    println!("fuzz: all targets ok in {:.0?}", started.elapsed());
    Ok(())
}

/// `cargo +nightly fuzz …` run from `fuzz/`, with the nightly and the rust-toolchain.toml pin
/// of the workspace kept apart.
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz"]).current_dir(fuzz_dir);
    // Invoked through `cargo xtask`, cargo's pinned toolchain leaks in through these.
    cmd.env_remove("RUSTUP_TOOLCHAIN").env_remove("CARGO");
    cmd
}

fn nightly_present() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.starts_with("nightly"))
        })
}

fn cargo_fuzz_present() -> bool {
    Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn list_targets(fuzz_dir: &Path) -> anyhow::Result<Vec<String>> {
    let out = cargo_fuzz(fuzz_dir)
        .arg("list")
        .output()
        .context("running cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
