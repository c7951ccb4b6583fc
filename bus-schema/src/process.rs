//! Conventions every mcpbus binary shares, so gateways and workers behave alike for
//! operators: logs on stderr, fatal errors as one line, SIGTERM and Ctrl-C as the stop signal.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Logs to stderr, filtered by `RUST_LOG` (default: info, and only warnings from the NATS
/// client, whose reconnect chatter would drown ours).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,async_nats=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

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
