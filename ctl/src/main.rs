//! `mcpbusctl`: the operator's command line for an mcpbus cluster.

mod announce;
mod cluster;
mod config;
mod conflicts;
mod drain;
mod permissions;
mod purge;
mod sessions;
mod status;
mod table;
mod worker_check;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcpbusctl", version, about = "Operate an mcpbus cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The cluster at a glance: gateways, pools with their replicas, tools and queue lag,
    /// name conflicts, and every stream's and bucket's use of its limits.
    Status(status::Args),
    /// The pools: live replicas, tools served, calls queued and running.
    Pools(status::Args),
    /// The tools gateways list, each with the pool that serves it.
    Tools(status::Args),
    /// How many sessions there are and how old (never their ids or content).
    Sessions(sessions::SessionsArgs),
    /// The tasks: id, state, pool, tool and age (never their content).
    Tasks(sessions::TasksArgs),
    /// Ask one worker instance to drain and leave (as SIGTERM does), and wait until it has.
    Drain(drain::Args),
    /// End a session as its client's DELETE would: record, streams, stored events.
    PurgeSession(purge::Args),
    /// List the names two pools register, and which pool keeps each (ADR 0015), read from
    /// the registry on NATS with the gateways' own rule.
    Conflicts(conflicts::Args),
    /// Print the nats-server `permissions` block one role needs (ADR 0013), generated from
    /// the wire contract so that it never drifts from what gateways and workers use.
    NatsPermissions(permissions::Args),
    /// Print a complete nats-server configuration: a JetStream account with one gateway
    /// user, one operator user and one user per worker pool, each with its permissions.
    NatsConfig(config::Args),
    /// The worker conformance kit: start a worker command and check it against every rule
    /// of the worker protocol (ADR 0018). One line per check; exits 1 when a check fails.
    WorkerCheck(worker_check::Args),
    /// Send a server-wide message (`notifications/message`) to every session-lane client's
    /// standalone stream, filtered by each session's log level (ADR 0023).
    Announce(announce::Args),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse().command).await {
        Ok(code) => code,
        // The reader went away (`mcpbusctl status | head`): nothing left to say.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the cause chain: an operator reads it at a terminal, a
            // script greps it.
            let text = format!("{e:#}").replace('\n', " ");
            eprintln!("mcpbusctl: {text}");
            ExitCode::FAILURE
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout();
    match command {
        Command::Status(args) => status::run_status(args, out).await?,
        Command::Pools(args) => status::run_pools(args, out).await?,
        Command::Tools(args) => status::run_tools(args, out).await?,
        Command::Sessions(args) => sessions::run_sessions(args, out).await?,
        Command::Tasks(args) => sessions::run_tasks(args, out).await?,
        Command::Drain(args) => drain::run(args, out).await?,
        Command::PurgeSession(args) => purge::run(args, out).await?,
        Command::Conflicts(args) => conflicts::run(args, out).await?,
        Command::Announce(args) => announce::run(args, out).await?,
        Command::NatsPermissions(args) => permissions::run(&args, out)?,
        Command::NatsConfig(args) => config::run(&args, out)?,
        Command::WorkerCheck(args) => {
            if !worker_check::run(args, out).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
