//! Running the checks one after the other: each within its bounds, none for a worker that
//! has exited or never registered, each recorded in the report as it finishes.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use super::expect;
use super::launch::WorkerProcess;
use super::report::{CheckResult, Outcome, Report};

/// Safety net around any one check: each wait inside is bounded far below this.
pub const CHECK_LIMIT: Duration = Duration::from_secs(45);

/// Bound on the checks of a run (registration and drain apart): a good worker needs about
/// 15 s; a hung one fails each check on a timeout of a few seconds until this is spent.
pub const RUN_BUDGET: Duration = Duration::from_secs(90);

/// Runs checks one after the other and records them.
pub struct Stepper<'a, W: Write> {
    pub report: &'a mut Report,
    pub out: &'a mut W,
    /// A check is not run once the worker has exited: it fails at once, saying so.
    pub worker: &'a mut WorkerProcess,
    /// Checks of calls fail at once for a worker that never registered: it is not serving,
    /// and each would only wait out its timeout.
    pub registered: bool,
    /// When the whole run must be over, so that a hung worker cannot hold the kit.
    pub budget: Instant,
}

impl<W: Write> Stepper<'_, W> {
    pub fn record(&mut self, name: &'static str, started: Instant, outcome: Outcome) {
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
    pub async fn run(&mut self, name: &'static str, check: impl Future<Output = Outcome>) {
        let left = self.budget.saturating_duration_since(Instant::now());
        self.run_within(name, left, check).await;
    }

    pub async fn run_within(
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

    pub async fn check(&mut self, name: &'static str, check: impl Future<Output = expect::Check>) {
        self.run(name, async { check.await.into() }).await;
    }

    /// A check of an optional feature: `skip` says the worker does not offer it.
    pub async fn optional(
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
