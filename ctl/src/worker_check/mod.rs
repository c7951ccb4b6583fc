//! `mcpbusctl worker-check`: the worker conformance kit (issue 16, ADR 0018). It does for
//! the worker protocol what the MCP conformance suite does for servers: it starts a worker
//! command itself, plays the gateway on the bus, and checks every row of the outcome table
//! of the worker contract (PROTOCOL.md), one line per check.
//!
//! The kit connects as an operator; the worker under test gets only the login given for it.
//! It needs the pool to itself: it refuses a pool with live workers, and purges the pool's
//! queued calls before and after.

mod ask;
mod bus;
mod call;
mod cancel;
mod capacity;
mod drain;
mod expect;
mod kit;
mod lanes;
mod launch;
mod observe;
mod ping;
mod preflight;
mod redelivery;
mod refusals;
mod registration;
mod report;
mod step;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use bus_schema::connect::NatsArgs;
use bus_schema::names::{InstanceId, PoolName};

use bus::{random_hex, Bus};
use kit::Kit;
use launch::WorkerProcess;
use observe::Recorder;
use registration::RecordWatch;
use report::{Outcome, Report};
use step::{Stepper, CHECK_LIMIT, RUN_BUDGET};

#[derive(clap::Args)]
pub struct Args {
    /// The kit's own NATS login: an operator's, allowed to declare streams, read every
    /// subject of the pool and watch its acknowledgements.
    #[command(flatten)]
    nats: NatsArgs,
    /// The pool the worker serves (MCPBUS_POOL). It must have no other live worker.
    #[arg(long)]
    pool: String,
    /// NATS URL(s) handed to the worker (MCPBUS_NATS_URL). Default: --nats, which then must
    /// carry no credentials (they are the operator's).
    #[arg(long)]
    worker_nats: Option<String>,
    /// NATS user the worker logs in as (MCPBUS_NATS_USER).
    #[arg(long)]
    worker_user: Option<String>,
    /// File holding that user's password, handed to the worker as MCPBUS_NATS_PASSWORD.
    #[arg(long)]
    worker_password_file: Option<PathBuf>,
    /// Credentials file handed to the worker (MCPBUS_NATS_CREDS).
    #[arg(long)]
    worker_creds: Option<PathBuf>,
    /// Instance name given to the worker (MCPBUS_INSTANCE). Default: kit-<random>.
    #[arg(long)]
    instance: Option<String>,
    /// How long the worker may take to register, in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    start_timeout_ms: u64,
    /// Replicas of the streams the kit creates when they are missing.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// How the last check asks the worker to drain: `signal` (SIGTERM, check `drain`) or
    /// `bus` (the drain request `mcpbusctl drain` sends, check `drain_request`).
    #[arg(long, value_enum, default_value = "signal")]
    drain_by: drain::DrainBy,
    /// Print one JSON document instead of a line per check.
    #[arg(long)]
    json: bool,
    /// The worker's command line.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// Runs the kit; `Ok(false)` when a check failed.
pub async fn run(args: Args, out: &mut impl Write) -> Result<bool> {
    let pool = PoolName::new(args.pool.as_str()).map_err(|e| anyhow::anyhow!("--pool: {e}"))?;
    let instance = InstanceId::new(
        args.instance
            .clone()
            .unwrap_or_else(|| format!("kit-{}", &random_hex()[..8])),
    )
    .map_err(|e| anyhow::anyhow!("--instance: {e}"))?;
    let env = preflight::worker_env(&args, &pool, &instance)?;
    let options = args.nats.clone().into_options()?;
    let bus = Bus::open(&options, pool.clone(), args.replicas).await?;
    preflight::refuse_live_workers(&bus).await?;
    bus.purge_pool_queue().await?;
    let records = RecordWatch::start(&bus, &instance).await?;
    let prepared = redelivery::prepare(&bus).await;
    let recorder = Recorder::start(&bus).await?;
    let mut worker = WorkerProcess::spawn(&args.command, &env)?;
    let mut kit = Kit {
        bus,
        recorder,
        instance,
        registered: None,
    };
    let mut report = Report::new(!args.json);
    let mut step = Stepper {
        report: &mut report,
        out,
        worker: &mut worker,
        registered: false,
        budget: Instant::now(),
    };

    let started = Instant::now();
    let within = Duration::from_millis(args.start_timeout_ms);
    let (registered, check) = records.registered(&kit.bus, &kit.instance, within).await;
    kit.registered = registered;
    step.registered = kit.registered.is_some();
    step.budget = Instant::now() + RUN_BUDGET;
    step.record("registration", started, check.into());
    let catalog = registration::catalog_rules(kit.registered.as_ref());
    step.record("catalog", Instant::now(), catalog.into());
    step.run("service_ping", ping::service_ping(&kit)).await;
    step.check(
        "redelivery_idempotent",
        redelivery::idempotent(&kit, &prepared),
    )
    .await;
    step.check(
        "redelivery_not_idempotent",
        redelivery::not_idempotent(&kit, &prepared),
    )
    .await;
    step.check("call_stateless", lanes::call_stateless(&kit))
        .await;
    step.check("call_session", lanes::call_session(&kit)).await;
    step.check("progress", lanes::progress(&kit)).await;
    step.check("log", lanes::log(&kit)).await;
    step.check("tool_error", lanes::tool_error(&kit)).await;
    step.check("invalid_arguments", lanes::invalid_arguments(&kit))
        .await;
    step.check("unknown_tool", refusals::unknown_tool(&kit))
        .await;
    step.check("unknown_method", refusals::unknown_method(&kit))
        .await;
    step.check("unknown_prompt", refusals::unknown_prompt(&kit))
        .await;
    step.check("unknown_resource", refusals::unknown_resource(&kit))
        .await;
    step.check(
        "unknown_completion_ref",
        refusals::unknown_completion_ref(&kit),
    )
    .await;
    step.check("unknown_protocol", refusals::unknown_protocol(&kit))
        .await;
    step.check("malformed_call", refusals::malformed_call(&kit))
        .await;
    step.check(
        "deadline_before_start",
        refusals::deadline_before_start(&kit),
    )
    .await;
    step.check("unreadable_message", refusals::unreadable_message(&kit))
        .await;
    step.check("cancel", cancel::cancel(&kit)).await;
    step.check("cancel_on", cancel::cancel_on(&kit)).await;
    step.check("deadline_during_call", cancel::deadline_during_call(&kit))
        .await;
    step.check("full_worker", capacity::full_worker(&kit)).await;
    let skip = ask::skip_unless_declared(&kit);
    step.optional("ask_session", &skip, ask::session(&kit))
        .await;
    step.optional("ask_stateless", &skip, ask::stateless(&kit))
        .await;
    step.optional(
        "ask_missing_capability",
        &skip,
        ask::missing_capability(&kit),
    )
    .await;
    let heartbeat_ms = kit.registered.as_ref().map(|r| r.record.heartbeat_ms);
    // Out of the budget: it reads what was seen all along, and waits a few beats at most.
    let beats = async {
        match heartbeat_ms {
            Some(ms) => records.heartbeats(ms).await.into(),
            None => Outcome::Fail("the worker never registered".to_owned()),
        }
    };
    step.run_within("heartbeat", CHECK_LIMIT, beats).await;
    let drain_started = Instant::now();
    let drained = match step.worker.exited() {
        Some(status) => Outcome::Fail(format!(
            "the worker exited before the drain check ({status})"
        )),
        None if !step.registered => Outcome::Fail("the worker never registered".to_owned()),
        None => drain::drain(&kit, step.worker, &records, args.drain_by)
            .await
            .into(),
    };
    step.record(args.drain_by.check_name(), drain_started, drained);
    drop(worker);
    kit.bus.purge_pool_queue().await?;

    if args.json {
        let doc = report.to_json(kit.bus.pool.as_str(), kit.instance.as_str());
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        writeln!(out, "{}", report.summary())?;
    }
    Ok(report.failed() == 0)
}
