//! Conventions every mcpbus binary shares, so gateways and workers behave alike for
//! operators: fatal errors as one line, SIGTERM and Ctrl-C as the stop signal. (Logs and
//! traces are set up by `mcpbus-telemetry`, which keeps the OpenTelemetry SDK out of this
//! crate: ctl and the tests use it too.)

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Runs `main` on a multi-threaded runtime; an error becomes one line on stderr
/// (`<program>: error: …`) and exit code 1, never a backtrace.
pub fn run_main<E: Display>(program: &str, main: impl Future<Output = Result<(), E>>) -> ExitCode {
    let result = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(main).map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot start the async runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
