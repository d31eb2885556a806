//! The Processor service binary: reads the configuration, installs logging, and hands over to
//! [`processor::app::run`]. Exit status: 0 clean stop, 1 runtime failure, 2 bad configuration.

use std::process::ExitCode;

use processor::config::Config;

fn main() -> ExitCode {
    // Validate everything before any network I/O; exit 2 listing every bad variable.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("processor: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = processor::telemetry::init(&config.log) {
        eprintln!("processor: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(processor::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "processor stopped with an error");
            ExitCode::FAILURE
        }
    }
}
