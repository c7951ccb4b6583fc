//! What each check found, and how a run is told: one line per check as it finishes
//! (`PASS name`, `FAIL name: reason`, `SKIP name: why`), then a summary; or, with `--json`,
//! one JSON document at the end.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The worker broke a rule; the reason says which and what was seen instead.
    Fail(String),
    /// An optional feature the worker does not offer (`kit_ask`, `$SRV` pings).
    Skip(String),
}

impl From<Result<(), String>> for Outcome {
    fn from(r: Result<(), String>) -> Self {
        match r {
            Ok(()) => Outcome::Pass,
            Err(reason) => Outcome::Fail(reason),
        }
    }
}

/// One finished check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Stable name, so that scripts and tests can look a check up.
    pub name: &'static str,
    pub outcome: Outcome,
    /// How long it took: a slow check points at a worker near its timeouts.
    pub took: Duration,
}

/// Every check of a run, in the order they ran.
pub struct Report {
    pub checks: Vec<CheckResult>,
    /// Print each line as the check finishes (text mode), so a slow run shows progress.
    stream_lines: bool,
}

impl Report {
    pub fn new(stream_lines: bool) -> Self {
        Self {
            checks: Vec::new(),
            stream_lines,
        }
    }

    pub fn record(&mut self, check: CheckResult, out: &mut impl Write) {
        if self.stream_lines {
            let _ = writeln!(out, "{}", line(&check));
            let _ = out.flush();
        }
        self.checks.push(check);
    }

    fn count(&self, want: fn(&Outcome) -> bool) -> usize {
        self.checks.iter().filter(|c| want(&c.outcome)).count()
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    pub fn summary(&self) -> String {
        format!(
            "worker-check: {} passed, {} failed, {} skipped",
            self.count(|o| *o == Outcome::Pass),
            self.failed(),
            self.count(|o| matches!(o, Outcome::Skip(_))),
        )
    }

    pub fn to_json(&self, pool: &str, instance: &str) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let (outcome, reason) = match &c.outcome {
                    Outcome::Pass => ("pass", None),
                    Outcome::Fail(r) => ("fail", Some(r)),
                    Outcome::Skip(r) => ("skip", Some(r)),
                };
                json!({"name": c.name, "outcome": outcome, "reason": reason,
                       "took_ms": c.took.as_millis() as u64})
            })
            .collect();
        json!({
            "pool": pool,
            "instance": instance,
            "checks": checks,
            "failed": self.failed(),
            "summary": self.summary(),
        })
    }
}

fn line(c: &CheckResult) -> String {
    match &c.outcome {
        Outcome::Pass => format!("PASS {}", c.name),
        Outcome::Fail(reason) => format!("FAIL {}: {reason}", c.name),
        Outcome::Skip(why) => format!("SKIP {}: {why}", c.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary_name_every_check() {
        let mut report = Report::new(true);
        let mut out = Vec::new();
        for (name, outcome) in [
            ("a", Outcome::Pass),
            ("b", Outcome::Fail("no reply".into())),
            ("c", Outcome::Skip("not declared".into())),
        ] {
            let took = Duration::ZERO;
            report.record(
                CheckResult {
                    name,
                    outcome,
                    took,
                },
                &mut out,
            );
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "PASS a\nFAIL b: no reply\nSKIP c: not declared\n");
        assert_eq!(report.failed(), 1);
        assert_eq!(
            report.summary(),
            "worker-check: 1 passed, 1 failed, 1 skipped"
        );
        assert_eq!(report.to_json("p", "i")["checks"][1]["outcome"], "fail");
    }
}
