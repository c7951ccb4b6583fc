//! `mcpbusctl`: the operator's command line for an mcpbus cluster.

mod announce;
mod config;
mod conflicts;
mod permissions;
mod worker_check;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcpbusctl", version, about = "Operate an mcpbus cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the nats-server `permissions` block one role needs (ADR 0013), generated from
    /// the wire contract so that it never drifts from what gateways and workers use.
    NatsPermissions(permissions::Args),
    /// Print a complete nats-server configuration: a JetStream account with one gateway
    /// user and one user per worker pool, each with its permissions.
    NatsConfig(config::Args),
    /// List the names two pools register, and which pool keeps each (ADR 0015), read from
    /// the registry on NATS with the gateways' own rule.
    Conflicts(conflicts::Args),
    /// The worker conformance kit: start a worker command and check it against every rule
    /// of the worker protocol (ADR 0018). One line per check; exits 1 when a check fails.
    WorkerCheck(worker_check::Args),
    /// Send a server-wide message (`notifications/message`) to every session-lane client's
    /// standalone stream, filtered by each session's log level (ADR 0023).
    Announce(announce::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::NatsPermissions(args) => permissions::run(&args, &mut std::io::stdout()),
        Command::NatsConfig(args) => config::run(&args, &mut std::io::stdout()),
        Command::Conflicts(args) => conflicts::run(args, &mut std::io::stdout()).await,
        Command::Announce(args) => announce::run(args, &mut std::io::stdout()).await,
        Command::WorkerCheck(args) => {
            if !worker_check::run(args, &mut std::io::stdout()).await? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
