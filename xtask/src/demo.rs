//! `cargo xtask demo [--cars N] [--rate HZ] [--port PORT] …`: builds the processor and the
//! `demo` binary (debug, to reuse the tests' compiled dependencies) and runs the demo:
//! services, seed, Directus stand-in, processor, rally simulator, live map page. The
//! orchestration lives in `bins/demo`; this module only builds and runs it.

use std::process::Command;

use anyhow::{Context, bail};

/// Entry point from `main.rs`; extra arguments go to the demo binary.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(["build", "-p", "processor", "-p", "demo"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the processor and the demo failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let bin = std::path::Path::new(&target).join("debug").join("demo");
    // The demo handles Ctrl-C itself (the terminal sends SIGINT to both processes): wait for it.
    let status = Command::new(&bin)
        .args(args)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("the demo exited with {status}");
    }
    Ok(())
}
