//! `cargo xtask`: the project's developer commands, in plain Rust instead of shell scripts.
//!
//! Run `cargo xtask help` for the list. One module per command; `main` only dispatches.

mod bench;
mod bench_live;
mod check_boundaries;
mod ci;
mod demo;
mod fuzz;
mod integration;
mod published;
#[cfg(test)]
mod tidy;

const USAGE: &str = "cargo xtask <command>
  ci                 everything CI checks: fmt, clippy, deny, boundaries, all tests (+ optional steps)
  integration [..]   the service tests only (nextest `kind(test)`; extra args go to nextest)
  check-boundaries   crate-boundary rules from cargo metadata
  fuzz [--smoke]     cargo-fuzz targets (nightly)
  published-crates [--bless]  teltonika-codec and live-protocol: publish --dry-run, public API snapshot
  bench pipeline     end-to-end throughput of the processor vs a plain COPY (local Redis/PostgreSQL)
  bench live         live path: idle memory per connection, delivery latency, ceiling
  demo [--cars N] [--rate HZ] [--port P]  Redis+PostgreSQL, processor, rally simulator, live map page
  e2e                browser end-to-end test of the live map (headless Chromium + chromedriver)";

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_else(|| "help".to_owned());
    let args: Vec<String> = std::env::args().skip(2).collect();
    match task.as_str() {
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        "ci" => ci::run(&args),
        "integration" => integration::run(&args),
        "check-boundaries" => check_boundaries::run(&args),
        "fuzz" => fuzz::run(&args),
        "published-crates" => published::run(&args),
        "bench" => bench::run(&args),
        "demo" => demo::run(&args),
        "e2e" => demo::run_e2e(&args),
        other => anyhow::bail!("unknown xtask `{other}`; try `cargo xtask help`"),
    }
}
