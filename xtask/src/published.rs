//! `cargo xtask published-crates [--bless] [--no-package]`: keeps the crates other teams
//! depend on ([`PUBLISHED`]) publishable and their public API changes conscious.
//!
//! 1. `cargo publish --dry-run` for each: packaging, metadata, and a build of the packaged
//!    crate on its own (what a team adding it to their `Cargo.toml` would compile).
//! 2. The public API, listed by `cargo public-api` (rustdoc JSON, hence the nightly toolchain),
//!    compared with the committed `crates/<name>/public-api.txt`. Any difference fails with the
//!    lines added and removed; `--bless` rewrites the files after a deliberate change (then bump
//!    the version as semver says and add a CHANGELOG.md entry).
//!
//! The API check needs the nightly toolchain and cargo-public-api: CI (`CI` set) installs
//! cargo-public-api when missing; elsewhere a missing tool skips that part with one line.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::ci::{cargo, cargo_command, have, project_root, run_command};

/// The crates published for other teams.
pub(crate) const PUBLISHED: [&str; 2] = ["teltonika-codec", "live-protocol"];

/// Entry point from `main.rs`; `args` are the words after `published-crates`.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut bless = false;
    let mut package = true;
    for arg in args {
        match arg.as_str() {
            "--bless" => bless = true,
            "--no-package" => package = false,
            "-h" | "--help" => {
                println!("cargo xtask published-crates [--bless] [--no-package]");
                return Ok(());
            }
            other => bail!("unknown option {other}; try `cargo xtask published-crates --help`"),
        }
    }
    if package {
        let mut command = cargo_command(["publish", "--dry-run", "--locked", "--allow-dirty"]);
        for name in PUBLISHED {
            command.args(["-p", name]);
        }
        run_command(&mut command)?;
    }
    if !public_api_tool_present()? {
        return Ok(());
    }
    let mut changed = Vec::new();
    for name in PUBLISHED {
        if !check_public_api(name, bless)? {
            changed.push(name);
        }
    }
    if !changed.is_empty() {
        bail!(
            "the public API of {} changed without its snapshot: if the change is intended, run \
             `cargo xtask published-crates --bless`, bump the version as semver says and add a \
             CHANGELOG.md entry",
            changed.join(", ")
        );
    }
    Ok(())
}

/// True when the API can be listed; installs cargo-public-api in CI, else says why it skips.
fn public_api_tool_present() -> anyhow::Result<bool> {
    if !have("rustup", &["run", "nightly", "rustc", "--version"]) {
        println!("SKIP public API check: no nightly toolchain (rustdoc JSON needs one)");
        return Ok(false);
    }
    if have(&cargo(), &["public-api", "--version"]) {
        return Ok(true);
    }
    if std::env::var_os("CI").is_none() {
        println!(
            "SKIP public API check: cargo-public-api is not installed \
             (cargo install cargo-public-api --locked)"
        );
        return Ok(false);
    }
    println!("installing cargo-public-api (cargo install cargo-public-api --locked)");
    run_command(Command::new(cargo()).args(["install", "cargo-public-api", "--locked"]))?;
    Ok(true)
}

/// Lists `name`'s public API and compares it with the snapshot; `bless` rewrites the snapshot.
/// Returns whether they agreed (always true after a bless).
fn check_public_api(name: &str, bless: bool) -> anyhow::Result<bool> {
    let output = cargo_command(["public-api", "--package", name, "--all-features"])
        .args(["--simplified", "--simplified", "--color", "never"])
        .output()
        .with_context(|| format!("running cargo public-api for {name}"))?;
    if !output.status.success() {
        bail!(
            "cargo public-api -p {name} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let listed = String::from_utf8(output.stdout).context("cargo public-api printed non-UTF-8")?;
    let snapshot_path = snapshot_path(name);
    if bless {
        std::fs::write(&snapshot_path, &listed)
            .with_context(|| format!("writing {}", snapshot_path.display()))?;
        println!("{name}: {} written", snapshot_path.display());
        return Ok(true);
    }
    let committed = std::fs::read_to_string(&snapshot_path).unwrap_or_default();
    if committed == listed {
        println!("{name}: public API matches {}", snapshot_path.display());
        return Ok(true);
    }
    let before: BTreeSet<&str> = committed.lines().collect();
    let after: BTreeSet<&str> = listed.lines().collect();
    println!(
        "{name}: public API differs from {}:",
        snapshot_path.display()
    );
    for removed in before.difference(&after) {
        println!("  - {removed}");
    }
    for added in after.difference(&before) {
        println!("  + {added}");
    }
    Ok(false)
}

fn snapshot_path(name: &str) -> PathBuf {
    project_root()
        .join("crates")
        .join(name)
        .join("public-api.txt")
}
