//! `mcpbus-worker`: runs a worker from the command line. See `cli.rs`.

fn main() -> std::process::ExitCode {
    mcpbus_worker::main()
}
