//! The worker conformance kit (issue 16, ADR 0018): `mcpbusctl worker-check` passes a
//! worker that follows the worker contract, and names the broken rule of one that does not.
//!
//! Workers under test: the kit workers of the three SDKs (`mcpbus-worker kit`,
//! `worker/python/examples/kit_worker.py`, `worker/typescript/examples/kit-worker.ts`); and
//! `tests/workers/kit_raw_worker.py`, a worker written on raw nats-py from the protocol alone,
//! once as it is (which shows the kit asks for nothing beyond the contract) and once per
//! seeded bug. Another worker adds its run with [`run_kit`]: a pool and its command. The Rust
//! SDK also runs it with the drain asked over the bus (`--drain-by bus`).
//!
//! The runs are serialized: each takes a few seconds of timing-sensitive checks, which a
//! 2-core machine running them side by side would blur.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::{bin, node24, venv_python, workspace_root, Nats};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What one kit run printed.
struct KitReport {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl KitReport {
    /// The line of check `name`: `PASS name`, `FAIL name: …`, `SKIP name: …`.
    fn line(&self, name: &str) -> Option<&str> {
        self.stdout.lines().find(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest == name || rest.starts_with(&format!("{name}:")))
        })
    }

    fn failed(&self, name: &str) -> bool {
        self.line(name).is_some_and(|l| l.starts_with("FAIL "))
    }

    fn failures(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .collect()
    }

    /// Everything, for a failing assertion.
    fn shown(&self) -> String {
        format!(
            "exit: {}\n--- stdout ---\n{}\n--- stderr (kit and worker) ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// How the worker under test logs in.
enum Login {
    /// A URL with the pool user's credentials in it.
    Url,
    /// `--worker-user` and `--worker-password-file`.
    UserAndPasswordFile,
}

/// Runs `mcpbusctl worker-check --pool <pool> -- <command>` on a fresh permission-enforcing
/// nats-server, the kit as the admin user and the worker as its pool's user.
fn run_kit(pool: &str, command: &[&str]) -> KitReport {
    run_kit_with(pool, command, Login::Url)
}

fn run_kit_with(pool: &str, command: &[&str], login: Login) -> KitReport {
    run_kit_full(pool, &[], command, login)
}

/// [`run_kit_with`], with more `worker-check` options (`kit_args`).
fn run_kit_full(pool: &str, kit_args: &[&str], command: &[&str], login: Login) -> KitReport {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    let nats = Nats::start(dir.path()).expect("nats-server starts");
    let mut cmd = Command::new(bin("mcpbusctl"));
    cmd.args(["worker-check", "--pool", pool, "--nats", &nats.url()]);
    cmd.args(kit_args);
    match login {
        Login::Url => {
            cmd.args(["--worker-nats", &nats.worker_url(pool)]);
        }
        Login::UserAndPasswordFile => {
            let (address, user, password) = nats.worker_login(pool);
            let file = dir.path().join("worker-password");
            std::fs::write(&file, format!("{password}\n")).expect("writing the password");
            cmd.args(["--worker-nats", &address, "--worker-user", &user]);
            cmd.arg("--worker-password-file").arg(&file);
        }
    }
    cmd.arg("--").args(command);
    run_bounded(cmd, dir.path(), Duration::from_secs(180))
}

/// Runs the kit, killing it if it ever outlives `within` (it bounds itself far below).
fn run_bounded(mut cmd: Command, dir: &Path, within: Duration) -> KitReport {
    let (out, err) = (dir.join("kit.stdout"), dir.join("kit.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("mcpbusctl starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for mcpbusctl") {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("worker-check ran longer than {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    KitReport {
        status,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

fn raw_worker(bug: Option<&str>) -> Vec<String> {
    let script = workspace_root().join("tests/workers/kit_raw_worker.py");
    let mut command = vec![
        venv_python().display().to_string(),
        script.display().to_string(),
    ];
    if let Some(bug) = bug {
        command.extend(["--bug".to_owned(), bug.to_owned()]);
    }
    command
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn the_rust_sdk_passes_the_kit() {
    let worker = bin("mcpbus-worker").display().to_string();
    let report = run_kit_with("kit-rust", &[&worker, "kit"], Login::UserAndPasswordFile);
    assert!(
        report.status.success(),
        "the Rust kit worker failed: {:?}\n{}",
        report.failures(),
        report.shown()
    );
    for optional in ["service_ping", "ask_session", "ask_stateless"] {
        assert!(
            report.line(optional).is_some_and(|l| l.starts_with("PASS")),
            "the Rust SDK offers {optional}\n{}",
            report.shown()
        );
    }
}

/// `--drain-by bus`: the drain check asks with the message `mcpbusctl drain` sends (ADR 0021)
/// instead of SIGTERM, and the worker must leave just as cleanly.
#[test]
fn the_rust_sdk_drains_on_a_request_over_the_bus() {
    let worker = bin("mcpbus-worker").display().to_string();
    let report = run_kit_full(
        "kit-rust",
        &["--drain-by", "bus"],
        &[&worker, "kit"],
        Login::Url,
    );
    assert!(
        report.status.success(),
        "the Rust kit worker failed: {:?}\n{}",
        report.failures(),
        report.shown()
    );
    assert!(
        report
            .line("drain_request")
            .is_some_and(|l| l.starts_with("PASS")),
        "{}",
        report.shown()
    );
    assert!(report.line("drain").is_none(), "{}", report.shown());
}

#[test]
fn the_python_sdk_passes_the_kit() {
    let python = venv_python().display().to_string();
    let script = workspace_root().join("worker/python/examples/kit_worker.py");
    let report = run_kit("kit-python", &[&python, &script.display().to_string()]);
    assert!(
        report.status.success(),
        "the Python kit worker failed: {:?}\n{}",
        report.failures(),
        report.shown()
    );
}

#[test]
fn the_typescript_sdk_passes_the_kit() {
    let node = node24();
    let script = workspace_root().join("worker/typescript/dist/examples/kit-worker.js");
    assert!(
        script.exists(),
        "the TypeScript SDK is not built: run scripts/test.sh"
    );
    let (node, script) = (node.display().to_string(), script.display().to_string());
    let report = run_kit_with("kit-ts", &[&node, &script], Login::UserAndPasswordFile);
    assert!(
        report.status.success(),
        "the TypeScript kit worker failed: {:?}\n{}",
        report.failures(),
        report.shown()
    );
}

#[test]
fn a_worker_written_from_the_protocol_passes_the_kit() {
    let report = run_kit("kit", &as_strs(&raw_worker(None)));
    assert!(report.status.success(), "{}", report.shown());
    // It offers neither optional feature: skipped, not failed.
    for optional in [
        "service_ping",
        "ask_session",
        "ask_stateless",
        "ask_missing_capability",
    ] {
        assert!(
            report.line(optional).is_some_and(|l| l.starts_with("SKIP")),
            "{optional}\n{}",
            report.shown()
        );
    }
    assert!(report.stdout.contains("0 failed"), "{}", report.shown());
}

/// A seeded bug fails the run, and the check that names its rule.
fn caught(bug: &str, check: &str, reason: &str) {
    let report = run_kit("kit-bad", &as_strs(&raw_worker(Some(bug))));
    assert!(!report.status.success(), "{bug} passed\n{}", report.shown());
    assert!(
        report.failed(check),
        "{bug}: {check} did not fail\n{}",
        report.shown()
    );
    let line = report.line(check).expect("the check's line");
    assert!(line.contains(reason), "{bug}: {line}\n{}", report.shown());
    assert!(
        report
            .line("registration")
            .is_some_and(|l| l.starts_with("PASS")),
        "{bug}: the worker otherwise works\n{}",
        report.shown()
    );
}

#[test]
fn a_worker_that_stops_heartbeating_fails_heartbeat() {
    caught("no-heartbeat", "heartbeat", "heartbeat_ms 1000 allows");
}

#[test]
fn a_wrong_durable_reply_index_fails_call_session() {
    caught("wrong-reply-index", "call_session", "Nats-Msg-Id");
}

#[test]
fn a_worker_that_naks_on_drain_fails_drain() {
    caught("nak-on-drain", "drain", "Nak");
}
