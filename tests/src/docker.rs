//! The built images, run for real (issue 17): containers and a compose project started
//! through the Docker CLI, on the host's network and loopback only, removed on drop.
//!
//! `tests/images/run.sh` builds the images and names them in the environment (below); the
//! tests that use this module are `#[ignore]`d, so a plain `cargo test` does not need
//! Docker, and the script runs them with `--ignored`. Every container carries the label
//! `mcpbus-test-run=<run>`, so the script can remove whatever a failed test left.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{free_port, workspace_root};

/// The images under test and the CLIs that run them, from the environment
/// `tests/images/run.sh` sets.
#[derive(Debug, Clone)]
pub struct Images {
    /// The docker CLI (`MCPBUS_DOCKER`).
    pub docker: String,
    /// The compose command, e.g. `docker-compose` or `docker compose` (`MCPBUS_COMPOSE`).
    pub compose: Vec<String>,
    pub gateway: String,
    pub worker: String,
    pub ctl: String,
    pub python_worker: String,
    /// A nats-server image that takes the official image's arguments.
    pub nats: String,
    /// This run's id: container labels and compose project names.
    pub run: String,
}

impl Images {
    /// The images `tests/images/run.sh` built; panics with how to run these tests when they
    /// were not named.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: the image tests run through tests/images/run.sh")
            })
        };
        Self {
            docker: var("MCPBUS_DOCKER"),
            compose: var("MCPBUS_COMPOSE")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            gateway: var("MCPBUS_IMAGE_GATEWAY"),
            worker: var("MCPBUS_IMAGE_WORKER"),
            ctl: var("MCPBUS_IMAGE_CTL"),
            python_worker: var("MCPBUS_IMAGE_PYTHON_WORKER"),
            nats: var("MCPBUS_IMAGE_NATS"),
            run: var("MCPBUS_IMAGE_RUN"),
        }
    }

    /// `docker ARGS`; its stdout, or an error with its stderr.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        checked(Command::new(&self.docker).args(args), "docker")
    }

    /// `docker run -d` of `image` on the host network, with a read-only root filesystem and
    /// the image's own user (the test checks which that is).
    pub fn run(
        &self,
        name: &str,
        image: &str,
        options: &[&str],
        args: &[&str],
    ) -> Result<Container> {
        let name = format!("mcpbus-test-{}-{name}", self.run);
        let label = format!("mcpbus-test-run={}", self.run);
        let all = run_args(&["-d", "--name", &name], &label, options, image, args);
        let id = self.docker(&all)?.trim().to_owned();
        Ok(Container {
            docker: self.docker.clone(),
            id,
        })
    }

    /// `docker run --rm` to completion: its exit status and output.
    pub fn run_once(&self, image: &str, options: &[&str], args: &[&str]) -> Result<Output> {
        let label = format!("mcpbus-test-run={}", self.run);
        let all = run_args(&["--rm"], &label, options, image, args);
        Ok(Command::new(&self.docker).args(&all).output()?)
    }

    /// The user an image runs as when none is given (`Config.User`).
    pub fn image_user(&self, image: &str) -> Result<String> {
        Ok(self
            .docker(&["image", "inspect", "-f", "{{.Config.User}}", image])?
            .trim()
            .to_owned())
    }
}

fn checked(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} {:?} failed ({}): {}",
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running container, removed (`docker rm -f`) on drop; its log is printed if the test
/// is failing.
pub struct Container {
    docker: String,
    pub id: String,
}

impl Container {
    fn inspect(&self, format: &str) -> Result<String> {
        checked(
            Command::new(&self.docker).args(["inspect", "-f", format, &self.id]),
            "docker inspect",
        )
        .map(|s| s.trim().to_owned())
    }

    /// The uid the container's main process runs as, read from the host's /proc.
    pub fn uid(&self) -> Result<u32> {
        let pid = self.inspect("{{.State.Pid}}")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading the status of pid {pid}"))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .context("no Uid line")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("no real uid")?
            .parse()?)
    }

    /// Whether Docker mounted its root filesystem read-only.
    pub fn read_only(&self) -> Result<bool> {
        Ok(self.inspect("{{.HostConfig.ReadonlyRootfs}}")? == "true")
    }

    /// Docker's health status (`healthy`, `starting`, `unhealthy`), from the image's
    /// `HEALTHCHECK`.
    pub fn health(&self) -> Result<String> {
        self.inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}")
    }

    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}")
            .is_ok_and(|s| s == "true")
    }

    pub fn logs(&self) -> String {
        Command::new(&self.docker)
            .args(["logs", "--tail", "40", &self.id])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of container {} ----\n{}",
                self.id,
                self.logs()
            );
        }
        let _ = Command::new(&self.docker)
            .args(["rm", "-f", &self.id])
            .output();
    }
}

/// The compose file's port variables, each given a free loopback port.
const PORT_VARIABLES: [&str; 13] = [
    "NATS_1_PORT",
    "NATS_2_PORT",
    "NATS_3_PORT",
    "NATS_1_ROUTE_PORT",
    "NATS_2_ROUTE_PORT",
    "NATS_3_ROUTE_PORT",
    "NATS_1_MONITOR_PORT",
    "NATS_2_MONITOR_PORT",
    "NATS_3_MONITOR_PORT",
    "GATEWAY_1_PORT",
    "GATEWAY_2_PORT",
    "GATEWAY_1_METRICS_PORT",
    "GATEWAY_2_METRICS_PORT",
];

/// `deploy/compose/docker-compose.yml`, up with the images under test on free ports and
/// the quotas lifted (`tests/images/compose.load.yml`); `down -v` (containers, volumes) on
/// drop.
pub struct Compose {
    images: Images,
    project: String,
    /// The compose file, then the tests' additions to it.
    files: [PathBuf; 2],
    pub ports: BTreeMap<&'static str, u16>,
}

impl Compose {
    /// `up -d --no-build`: the images are the ones built by the test script.
    pub fn up(images: &Images) -> Result<Self> {
        let compose = Self {
            images: images.clone(),
            project: format!("mcpbus-test-{}", images.run),
            files: [
                workspace_root().join("deploy/compose/docker-compose.yml"),
                workspace_root().join("tests/images/compose.load.yml"),
            ],
            ports: PORT_VARIABLES.iter().map(|v| (*v, free_port())).collect(),
        };
        compose.command(&["up", "-d", "--no-build"])?;
        Ok(compose)
    }

    /// `compose ARGS` in this project, with its images and ports in the environment.
    pub fn command(&self, args: &[&str]) -> Result<String> {
        let (program, first) = self.images.compose.split_first().context("no compose")?;
        let mut cmd = Command::new(program);
        cmd.args(first)
            .args(["-p", &self.project])
            .args(["-f".as_ref(), self.files[0].as_os_str()])
            .args(["-f".as_ref(), self.files[1].as_os_str()])
            .args(args)
            .env("MCPBUS_GATEWAY_IMAGE", &self.images.gateway)
            .env("MCPBUS_WORKER_IMAGE", &self.images.worker)
            .env("MCPBUS_PYTHON_WORKER_IMAGE", &self.images.python_worker)
            .env("MCPBUS_NATS_IMAGE", &self.images.nats);
        for (var, port) in &self.ports {
            cmd.env(var, port.to_string());
        }
        checked(&mut cmd, "compose")
    }

    /// The id of the container running `service`.
    pub fn container(&self, service: &str) -> Result<String> {
        let id = self.command(&["ps", "-q", service])?.trim().to_owned();
        anyhow::ensure!(!id.is_empty(), "no container for {service}");
        Ok(id)
    }

    pub fn gateway_url(&self, n: u8) -> String {
        let port = self.ports[if n == 1 {
            "GATEWAY_1_PORT"
        } else {
            "GATEWAY_2_PORT"
        }];
        format!("http://127.0.0.1:{port}")
    }

    /// The seeds, as the gateways get them.
    pub fn nats_urls(&self) -> Vec<String> {
        ["NATS_1_PORT", "NATS_2_PORT", "NATS_3_PORT"]
            .iter()
            .map(|v| format!("nats://127.0.0.1:{}", self.ports[v]))
            .collect()
    }

    /// Waits until `service`'s container has exited; its exit code.
    pub fn wait_exited(&self, service: &str, within: Duration) -> Result<i64> {
        let id = self.container(service)?;
        let start = Instant::now();
        loop {
            let state = self.images.docker(&[
                "inspect",
                "-f",
                "{{.State.Running}} {{.State.ExitCode}}",
                &id,
            ])?;
            if let Some(code) = state.trim().strip_prefix("false ") {
                return Ok(code.parse()?);
            }
            if start.elapsed() > within {
                bail!("{service} still running after {within:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(logs) = self.command(&["logs", "--no-color", "--tail", "30"]) {
                eprintln!("---- compose logs ----\n{logs}");
            }
        }
        if let Err(e) = self.command(&["down", "-v", "--remove-orphans", "-t", "5"]) {
            eprintln!("compose down failed: {e}");
        }
    }
}

/// `docker run` with `how` (detached and named, or removed at exit), labelled as this run's,
/// on the host's network with a read-only root filesystem, then `options`, `image`, `args`.
fn run_args<'a>(
    how: &[&'a str],
    label: &'a str,
    options: &[&'a str],
    image: &'a str,
    args: &[&'a str],
) -> Vec<&'a str> {
    let mut all = vec!["run"];
    all.extend_from_slice(how);
    all.extend_from_slice(&["--label", label, "--network", "host", "--read-only"]);
    all.extend_from_slice(options);
    all.push(image);
    all.extend_from_slice(args);
    all
}
