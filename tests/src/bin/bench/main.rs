//! `mcpbus-bench`: the benchmarks behind docs/PERFORMANCE.md. Each starts its own
//! nats-server, gateways and workers (release binaries next to this one) and prints a
//! Markdown table.

mod abuse;
mod direct;
mod direct_server;
mod echo;
mod fanout;
mod presence;
mod replay;
mod soak;
mod tracing;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mcpbus-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue 12's attacks at once beside an honest client: gateway RSS and honest latency.
    Abuse(abuse::Args),
    /// Issue 18's P1/P1s: `echo` against a direct rmcp server and the cluster, alternately,
    /// with ratios and the CPU per call of every process.
    Direct(direct::Args),
    /// The direct rmcp echo server that `direct` drives (run by it, in its own process).
    #[command(hide = true)]
    DirectServer(direct_server::Args),
    /// `echo` latency and throughput, through the bus and in-process.
    Echo(echo::Args),
    /// Delivery latency of one cluster-wide notification to many open streams, and the
    /// gateway memory each idle stream costs.
    Fanout(fanout::Args),
    /// Time for a worker's tools to appear in and leave (kill -9) both gateways' lists.
    Presence(presence::Args),
    /// Time to replay missed events when a stream is resumed.
    Replay(replay::Args),
    /// Mixed traffic on a 3-node NATS cluster for N minutes: memory, files, errors.
    Soak(soak::Args),
    /// Cost of checking an access token (JWT and introspected), per request.
    Verify(verify::Args),
    /// Cost of tracing: the same calls with tracing off and on (100% sampled, exported to a
    /// collector), side by side.
    Tracing(tracing::Args),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Abuse(a) => abuse::run(a).await,
        Command::Direct(a) => direct::run(a).await,
        Command::DirectServer(a) => direct_server::run(a).await,
        Command::Echo(a) => echo::run_all(a).await,
        Command::Fanout(a) => fanout::run(a).await,
        Command::Presence(a) => presence::run(a).await,
        Command::Replay(a) => replay::run(a).await,
        Command::Soak(a) => soak::run(a).await,
        Command::Verify(a) => verify::run(a).await,
        Command::Tracing(a) => tracing::run(a).await,
    }
}
