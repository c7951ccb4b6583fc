//! Running `mcpbusctl` as an operator would: the binary, logged in as the `operator` role
//! (ADR 0021), with its output captured.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

/// Longest any `mcpbusctl` command may take here (drain waits up to its own timeout).
const WITHIN: Duration = Duration::from_secs(90);

/// Runs `mcpbusctl ARGS` against `nats_url` (given as `MCPBUS_NATS_URL`, never on the
/// command line) and returns what it did.
pub async fn run(nats_url: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(crate::bin("mcpbusctl"));
    cmd.args(args)
        .env("MCPBUS_NATS_URL", nats_url)
        .kill_on_drop(true);
    tokio::time::timeout(WITHIN, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("mcpbusctl {args:?} ran over {WITHIN:?}"))
        .expect("mcpbusctl runs")
}

/// Runs `mcpbusctl ARGS --json`, which must succeed, and parses its output.
pub async fn json(nats_url: &str, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = run(nats_url, &with_json).await;
    assert!(
        out.status.success(),
        "mcpbusctl {with_json:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mcpbusctl {with_json:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
