//! `cargo xtask`: the project's developer commands, in plain Rust instead of shell scripts.
//!
//! Run `cargo xtask help` for the list.

mod fuzz;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_else(|| "help".to_owned());
    match task.as_str() {
        "help" | "--help" | "-h" => {
            println!("cargo xtask <ci|integration|check-boundaries|fuzz>");
            Ok(())
        }
        "fuzz" => fuzz::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        other => anyhow::bail!("unknown xtask `{other}`; try `cargo xtask help`"),
    }
}
