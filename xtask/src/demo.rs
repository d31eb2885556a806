//! `cargo xtask demo [--cars N] [--rate HZ] [--port PORT] …`: builds the processor and the
//! `demo` binary (debug, to reuse the tests' compiled dependencies) and runs the demo:
//! services, seed, Directus stand-in, processor, rally simulator, live map page. The
//! orchestration lives in `bins/demo`; this module only builds and runs it.
//!
//! `cargo xtask e2e`: the same demo, small (6 cars at 2 Hz), with its browser end-to-end
//! test (`demo --e2e`: headless Chromium over chromedriver); a step of `cargo xtask ci`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::ci::{cargo, project_root};

/// Where cargo puts the debug binaries.
fn debug_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
        .join("debug")
}

fn build() -> anyhow::Result<()> {
    let status = Command::new(cargo())
        .args(["build", "-p", "processor", "-p", "demo"])
        .current_dir(project_root())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the processor and the demo failed");
    }
    Ok(())
}

fn run_demo(args: &[String]) -> anyhow::Result<()> {
    let bin = debug_dir().join("demo");
    // The demo handles Ctrl-C itself (the terminal sends SIGINT to both processes): wait for it.
    let status = Command::new(&bin)
        .args(args)
        .current_dir(project_root())
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("the demo exited with {status}");
    }
    Ok(())
}

/// Entry point of `demo`; extra arguments go to the demo binary.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    build()?;
    run_demo(args)
}

/// Entry point of `e2e`. Without Chromium and chromedriver it skips with one line, unless
/// `CI` or `REQUIRE_SERVICES=1` is set (`.ci/run` installs them).
pub(crate) fn run_e2e(args: &[String]) -> anyhow::Result<()> {
    let have_browser = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .iter()
        .all(|path| std::path::Path::new(path).exists());
    if !have_browser {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        let message = "no /usr/bin/chromium or /usr/bin/chromedriver (apt-get install chromium chromium-driver)";
        if required {
            bail!("browser e2e test: {message}");
        }
        println!("SKIP e2e: {message}");
        return Ok(());
    }
    build()?;
    let mut demo_args: Vec<String> = ["--e2e", "--port", "0", "--cars", "6", "--rate", "2"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    demo_args.extend_from_slice(args);
    run_demo(&demo_args)
}
