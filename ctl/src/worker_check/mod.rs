//! `mcpbusctl worker-check`: the worker conformance kit (issue 16, ADR 0018). It does for
//! the worker protocol what the MCP conformance suite does for servers: it starts a worker
//! command itself, plays the gateway on the bus, and checks every row of the outcome table
//! of the worker contract (KIT-CONTRACT.md, PROTOCOL.md), one line per check.
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
mod redelivery;
mod refusals;
mod registration;
mod report;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::kv;
use bus_schema::connect::NatsArgs;
use bus_schema::messages::{decode, WorkerRecord};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use futures::StreamExt;

use bus::{random_hex, Bus};
use kit::Kit;
use launch::{WorkerEnv, WorkerProcess};
use observe::Recorder;
use registration::RecordWatch;
use report::{CheckResult, Outcome, Report};

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
    /// Print one JSON document instead of a line per check.
    #[arg(long)]
    json: bool,
    /// The worker's command line.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// Safety net around any one check: each wait inside is bounded far below this.
const CHECK_LIMIT: Duration = Duration::from_secs(45);

/// Bound on the checks of a run (registration and drain apart): a good worker needs about
/// 15 s; a hung one fails each check on a timeout of a few seconds until this is spent.
const RUN_BUDGET: Duration = Duration::from_secs(90);

/// Runs the kit; `Ok(false)` when a check failed.
pub async fn run(args: Args, out: &mut impl Write) -> Result<bool> {
    let pool = PoolName::new(args.pool.as_str()).map_err(|e| anyhow::anyhow!("--pool: {e}"))?;
    let instance = InstanceId::new(
        args.instance
            .clone()
            .unwrap_or_else(|| format!("kit-{}", &random_hex()[..8])),
    )
    .map_err(|e| anyhow::anyhow!("--instance: {e}"))?;
    let env = worker_env(&args, &pool, &instance)?;
    let options = args.nats.clone().into_options()?;
    let bus = Bus::open(&options, pool.clone(), args.replicas).await?;
    refuse_live_workers(&bus).await?;
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
        None => drain::drain(&kit, step.worker, &records).await.into(),
    };
    step.record("drain", drain_started, drained);
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

/// Runs checks one after the other and records them.
struct Stepper<'a, W: Write> {
    report: &'a mut Report,
    out: &'a mut W,
    /// A check is not run once the worker has exited: it fails at once, saying so.
    worker: &'a mut WorkerProcess,
    /// Checks of calls fail at once for a worker that never registered: it is not serving,
    /// and each would only wait out its timeout.
    registered: bool,
    /// When the whole run must be over, so that a hung worker cannot hold the kit.
    budget: Instant,
}

impl<W: Write> Stepper<'_, W> {
    fn record(&mut self, name: &'static str, started: Instant, outcome: Outcome) {
        let took = started.elapsed();
        self.report.record(
            CheckResult {
                name,
                outcome,
                took,
            },
            self.out,
        );
    }

    /// Runs `check` unless the worker has exited or never registered, within
    /// [`CHECK_LIMIT`] and what is left of the run's budget.
    async fn run(&mut self, name: &'static str, check: impl Future<Output = Outcome>) {
        let left = self.budget.saturating_duration_since(Instant::now());
        self.run_within(name, left, check).await;
    }

    async fn run_within(
        &mut self,
        name: &'static str,
        left: Duration,
        check: impl Future<Output = Outcome>,
    ) {
        let started = Instant::now();
        let outcome = match self.worker.exited() {
            Some(status) => Outcome::Fail(format!("the worker exited ({status})")),
            None if !self.registered => Outcome::Fail("the worker never registered".to_owned()),
            None if left.is_zero() => Outcome::Fail(format!("the run's {RUN_BUDGET:?} were spent")),
            None => tokio::time::timeout(CHECK_LIMIT.min(left), check)
                .await
                .unwrap_or_else(|_| {
                    Outcome::Fail("no verdict in time: the worker hangs".to_owned())
                }),
        };
        self.record(name, started, outcome);
    }

    async fn check(&mut self, name: &'static str, check: impl Future<Output = expect::Check>) {
        self.run(name, async { check.await.into() }).await;
    }

    /// A check of an optional feature: `skip` says the worker does not offer it.
    async fn optional(
        &mut self,
        name: &'static str,
        skip: &Option<Outcome>,
        check: impl Future<Output = expect::Check>,
    ) {
        match skip {
            Some(skip) => self.record(name, Instant::now(), skip.clone()),
            None => self.check(name, check).await,
        }
    }
}

/// The worker's environment: where and as whom it connects, its pool and instance.
fn worker_env(args: &Args, pool: &PoolName, instance: &InstanceId) -> Result<WorkerEnv> {
    let url = match &args.worker_nats {
        Some(url) => url.clone(),
        None if args.nats.servers.contains('@') => bail!(
            "--nats carries credentials, which the worker must not get: give the worker's \
             own with --worker-nats (and --worker-user, --worker-password-file, --worker-creds)"
        ),
        None => args.nats.servers.clone(),
    };
    let mut env: WorkerEnv = vec![
        ("MCPBUS_NATS_URL", url),
        ("MCPBUS_POOL", pool.to_string()),
        ("MCPBUS_INSTANCE", instance.to_string()),
    ];
    if let Some(user) = &args.worker_user {
        env.push(("MCPBUS_NATS_USER", user.clone()));
    }
    if let Some(file) = &args.worker_password_file {
        let password = std::fs::read_to_string(file)
            .with_context(|| format!("reading --worker-password-file {}", file.display()))?;
        env.push((
            "MCPBUS_NATS_PASSWORD",
            password.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if let Some(creds) = &args.worker_creds {
        env.push(("MCPBUS_NATS_CREDS", creds.display().to_string()));
    }
    Ok(env)
}

/// The kit needs the pool to itself: another live worker would take its calls.
async fn refuse_live_workers(bus: &Bus) -> Result<()> {
    let prefix = subjects::worker_keys_prefix(&bus.pool);
    let mut keys = bus
        .workers
        .keys()
        .await
        .context("listing the workers bucket")?;
    let mut live = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key?;
        if !key.starts_with(&prefix) {
            continue;
        }
        let Some(entry) = bus.workers.entry(&key).await? else {
            continue;
        };
        if entry.operation != kv::Operation::Put {
            continue;
        }
        let Ok(record) = decode::<WorkerRecord>(&entry.value) else {
            continue;
        };
        let written = SystemTime::UNIX_EPOCH
            + Duration::from_nanos(entry.created.unix_timestamp_nanos().max(0) as u64);
        let age = SystemTime::now()
            .duration_since(written)
            .unwrap_or_default();
        if age < Duration::from_millis(record.ttl_ms) {
            live.push(key);
        }
    }
    if !live.is_empty() {
        bail!(
            "pool {} has live workers ({}): the check needs the pool to itself",
            bus.pool,
            live.join(", ")
        );
    }
    Ok(())
}
