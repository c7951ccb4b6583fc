//! Running the worker under test: the kit starts the command itself, so that it controls
//! the worker's environment (pool, instance, login) and can stop it with SIGTERM for the
//! drain check (ADR 0018).
//!
//! The worker gets its own process group: the signal reaches it through wrappers
//! (`sh -c`, `npx`, `uv run`), and nothing the command started outlives the kit.

use std::os::fd::AsFd;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// The worker process, killed (with its whole group) when dropped.
pub struct WorkerProcess {
    child: tokio::process::Child,
    /// The process group the command leads: its pid.
    group: i32,
    /// Set once the process has been reaped.
    status: Option<ExitStatus>,
}

/// Environment variables the kit sets for the worker. Every other `MCPBUS_` variable of the
/// kit's own environment is removed: the kit's login (an operator's) must never reach the
/// worker under test.
pub type WorkerEnv = Vec<(&'static str, String)>;

impl WorkerProcess {
    /// Starts `command` with `env`; its output goes to the kit's stderr, so that stdout holds
    /// only the report.
    pub fn spawn(command: &[String], env: &WorkerEnv) -> Result<Self> {
        let (program, args) = command.split_first().context("no worker command given")?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MCPBUS_") {
                cmd.env_remove(name);
            }
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        let stderr = || -> Result<Stdio> {
            Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
        };
        cmd.stdin(Stdio::null())
            .stdout(stderr()?)
            .stderr(stderr()?)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the worker command {program:?}"))?;
        let group = child.id().context("the worker exited at once")? as i32;
        Ok(Self {
            child,
            group,
            status: None,
        })
    }

    /// The exit status, if the worker has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// SIGTERM to the worker's group: how Kubernetes stops a pod.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the worker to exit, up to `within`.
    pub async fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = tokio::time::timeout(within, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
        self.status
    }

    fn signal(&self, signal: i32) {
        // SAFETY: killpg only sends a signal; the group is the one this process created for
        // the worker (its leader's pid), so no other process is addressed.
        unsafe {
            libc::killpg(self.group, signal);
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Even after the leader exited, what it started may still run in its group.
        self.signal(libc::SIGKILL);
    }
}
