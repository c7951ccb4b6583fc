//! `mcpbus-worker`: runs a worker from the command line. See `cli.rs`.

/// mimalloc instead of glibc's malloc: glibc's allocator was 31 % of the worker's CPU per
/// call (issue 18's profile; ADR 0026). Only the binary sets it: workers built on the SDK
/// choose their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mcpbus_worker::main()
}
