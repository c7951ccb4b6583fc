//! `mcpbus-gateway`: see `cli.rs`.

/// mimalloc instead of glibc's malloc: glibc's allocator was 28 % of the gateway's CPU per
/// call (issue 18's profile; ADR 0026). Only the binary sets it, so embedders of the
/// library keep their own choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcpbus_gateway::cli::main()
}
