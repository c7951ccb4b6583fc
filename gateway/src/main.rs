//! `mcpbus-gateway`: see `cli.rs`.

fn main() -> std::process::ExitCode {
    mcpbus_gateway::cli::main()
}
