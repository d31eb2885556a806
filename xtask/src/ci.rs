//! `cargo xtask ci`: everything CI checks, in order, failing at the end with every failed step.
//!
//! 1. `cargo fmt --all -- --check`
//! 2. `cargo clippy --workspace --all-targets --all-features --locked -- -D warnings`
//! 3. `cargo deny check bans licenses sources` (installs cargo-deny when missing)
//! 4. `cargo xtask check-boundaries`
//! 5. every test: `cargo nextest run --workspace --profile ci` with `REQUIRE_SERVICES=1`
//!    (service tests fail instead of skipping), then `cargo test --doc --workspace`
//! 6. `cargo xtask published-crates`: `cargo publish --dry-run` of the crates other teams use
//!    and their public API against the committed snapshots
//! 7. optional steps that skip themselves with one line when their tool is missing:
//!    `cargo xtask fuzz --smoke` (needs a nightly toolchain), `cargo xtask e2e` (headless
//!    Chromium; required when `CI` is set — `.ci/run` installs it)
//!
//! Steps keep going after a failure (the log shows every problem at once); the command fails
//! if any step failed. `--fail-fast` stops at the first failure.
//!
//! Also home of the helpers the other commands share ([`project_root`], [`cargo`], [`Step`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The workspace root (xtask lives in `<root>/xtask`).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The cargo that runs us (`CARGO`), else `cargo` from `PATH`.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A `cargo` command in the project root.
pub(crate) fn cargo_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(cargo());
    command.args(args).current_dir(project_root());
    command
}

/// Runs `command`, echoing it; fails when it does not exit with 0.
pub(crate) fn run_command(command: &mut Command) -> anyhow::Result<()> {
    println!("$ {}", render(command));
    let status = command
        .status()
        .with_context(|| format!("starting {}", render(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", render(command));
    }
    Ok(())
}

fn render(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// True when `program args…` runs and exits with 0 (e.g. `cargo deny --version`).
pub(crate) fn have(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One named step and its outcome, for the summary.
pub(crate) struct Step {
    name: &'static str,
    took: Duration,
    result: anyhow::Result<()>,
}

impl Step {
    /// Runs `body` as step `name`, printing a header and its duration.
    pub(crate) fn run(name: &'static str, body: impl FnOnce() -> anyhow::Result<()>) -> Self {
        println!("\n==> {name}");
        let started = Instant::now();
        let result = body();
        let took = started.elapsed();
        match &result {
            Ok(()) => println!("<== {name}: ok ({:.1} s)", took.as_secs_f64()),
            Err(error) => println!(
                "<== {name}: FAILED ({:.1} s): {error:#}",
                took.as_secs_f64()
            ),
        }
        Self { name, took, result }
    }
}

/// The nextest profile CI uses (`.config/nextest.toml`).
pub(crate) const NEXTEST_PROFILE: &str = "ci";

/// `cargo nextest run --workspace --profile ci --locked` + `extra`, with `REQUIRE_SERVICES=1`.
pub(crate) fn nextest(extra: &[String]) -> anyhow::Result<()> {
    if !have(&cargo(), &["nextest", "--version"]) {
        bail!("cargo-nextest is missing: `cargo install cargo-nextest --locked`");
    }
    let mut command = cargo_command(["nextest", "run", "--workspace", "--locked"]);
    command
        .args(["--profile", NEXTEST_PROFILE])
        .args(extra)
        .env("REQUIRE_SERVICES", "1");
    run_command(&mut command)
}

fn ensure_cargo_deny() -> anyhow::Result<()> {
    if have(&cargo(), &["deny", "--version"]) {
        return Ok(());
    }
    println!("cargo-deny is missing: installing it (cargo install cargo-deny --locked)");
    run_command(&mut cargo_command(["install", "cargo-deny", "--locked"]))
}

/// Entry point from `main.rs`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let fail_fast = args.iter().any(|a| a == "--fail-fast");
    if let Some(other) = args.iter().find(|a| *a != "--fail-fast") {
        bail!("unknown option {other}; usage: cargo xtask ci [--fail-fast]");
    }
    let started = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    type Body = Box<dyn FnOnce() -> anyhow::Result<()>>;
    let plan: Vec<(&'static str, Body)> = vec![
        (
            "fmt",
            Box::new(|| run_command(&mut cargo_command(["fmt", "--all", "--", "--check"]))),
        ),
        (
            "clippy",
            Box::new(|| {
                run_command(&mut cargo_command([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        ),
        (
            "deny",
            Box::new(|| {
                ensure_cargo_deny()?;
                run_command(&mut cargo_command([
                    "deny", "check", "bans", "licenses", "sources",
                ]))
            }),
        ),
        (
            "check-boundaries",
            Box::new(|| crate::check_boundaries::run(&[])),
        ),
        (
            "tests (nextest, REQUIRE_SERVICES=1)",
            Box::new(|| nextest(&[])),
        ),
        (
            "doctests",
            Box::new(|| {
                let mut command = cargo_command(["test", "--doc", "--workspace", "--locked"]);
                command.env("REQUIRE_SERVICES", "1");
                run_command(&mut command)
            }),
        ),
        (
            "published crates (publish --dry-run, public API)",
            Box::new(|| crate::published::run(&[])),
        ),
        // Optional steps: each skips itself with one line when its tool is missing.
        (
            "fuzz --smoke",
            Box::new(|| crate::fuzz::run(&["--smoke".to_owned()])),
        ),
        ("e2e (browser)", Box::new(|| crate::demo::run_e2e(&[]))),
    ];
    for (name, body) in plan {
        let step = Step::run(name, body);
        let failed = step.result.is_err();
        steps.push(step);
        if failed && fail_fast {
            break;
        }
    }
    println!(
        "\n==> summary ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    let mut failures = 0;
    for step in &steps {
        let verdict = if step.result.is_ok() { "ok" } else { "FAILED" };
        println!(
            "  {verdict:>6}  {:>6.1} s  {}",
            step.took.as_secs_f64(),
            step.name
        );
        failures += usize::from(step.result.is_err());
    }
    if failures > 0 {
        bail!("{failures} CI step(s) failed");
    }
    Ok(())
}
