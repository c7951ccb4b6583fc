//! A nats-server that wants credentials or TLS (issue 13; `tests/nats_auth.rs`), started from
//! a config file written into the test's directory, with what the tests need to reach it: a
//! certificate authority and certificates made with the `openssl` CLI, user nkeys made with
//! the `nkeys` crate, and [`Access`], the connection flags and environment a gateway, a Rust
//! worker or the Python example worker is started with (all three take the same names).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{bin, free_port, venv_python, wait_for_port, workspace_root, Cluster, Nats, Proc};

/// The connection flags and environment of a process the harness starts.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub flags: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Access {
    /// `--nats URLS` (comma-separated seeds).
    pub fn servers(urls: &str) -> Self {
        Self::default().flag("--nats", urls)
    }

    pub fn flag(mut self, name: &str, value: impl AsRef<Path>) -> Self {
        self.flags.push(name.to_owned());
        self.flags.push(
            value
                .as_ref()
                .to_str()
                .expect("utf-8 test paths")
                .to_owned(),
        );
        self
    }

    pub fn switch(mut self, name: &str) -> Self {
        self.flags.push(name.to_owned());
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<Path>) -> Self {
        let value = value.as_ref().to_str().expect("utf-8 test values");
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.args(&self.flags)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
    }
}

/// Starts `nats-server` with JetStream on a free loopback port from a config file holding
/// `settings` (a `tls { }` or `authorization { }` block), and returns a cluster on it with
/// no gateway or worker yet. `dir` becomes the cluster's directory.
pub fn secure_cluster(dir: tempfile::TempDir, settings: &str) -> Result<Cluster> {
    let store = dir.path().join("nats-store");
    std::fs::create_dir_all(&store)?;
    let port = free_port();
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {store:?} }}\n{settings}\n"),
    )?;
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    let proc = Proc::spawn(
        "nats-server",
        Command::new(&bin).arg("-c").arg(&config),
        dir.path(),
    )
    .with_context(|| format!("starting {bin} (install it: apt-get install -y nats-server)"))?;
    wait_for_port(port, Duration::from_secs(10))?;
    Ok(Cluster {
        nats: Nats::from_own_config(proc, port, store, config),
        gateways: Vec::new(),
        workers: Vec::new(),
        dir,
    })
}

impl Cluster {
    /// Starts `mcpbus-worker` with `access` instead of the cluster's plain URL.
    pub fn add_worker_with(&mut self, access: &Access, args: &[&str]) -> Result<usize> {
        let mut cmd = Command::new(bin("mcpbus-worker"));
        access.apply(&mut cmd);
        cmd.args(args);
        let name = format!("worker-{}", self.workers.len());
        self.workers
            .push(Proc::spawn(&name, &mut cmd, self.dir.path())?);
        Ok(self.workers.len() - 1)
    }

    /// Starts the Python SDK's example worker (pool `py-example`) with `access`; its log is
    /// `py-worker.log` in the cluster's dir.
    pub fn start_python_worker_with(&self, access: &Access) -> Result<Proc> {
        let mut cmd = Command::new(venv_python());
        cmd.arg(workspace_root().join("worker/python/examples/example_worker.py"));
        access.apply(&mut cmd);
        Proc::spawn("py-worker", &mut cmd, self.dir.path())
    }
}

/// Runs a binary that is expected to exit (a refused start), for at most `within`.
pub fn run_to_exit(
    program: &str,
    access: &Access,
    args: &[&str],
    within: Duration,
) -> Result<Output> {
    let mut cmd = Command::new(bin(program));
    access.apply(&mut cmd);
    let mut child = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let start = std::time::Instant::now();
    while child.try_wait()?.is_none() {
        if start.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{program} still ran after {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// A certificate authority, a server certificate for 127.0.0.1 and a client certificate,
/// all PEM files in one directory, made with the `openssl` CLI.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn generate(dir: &Path) -> Result<Self> {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir)?;
        let p = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2"],
                &[
                    "-subj",
                    "/CN=mcpbus test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                ],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        )?;
        for (name, usage, san) in [
            (
                "server",
                "serverAuth",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
            ),
            ("client", "clientAuth", ""),
        ] {
            let ext = format!("{name}.ext");
            std::fs::write(
                p(&ext),
                format!("{san}extendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"),
            )?;
            let (key, csr, cert) = (
                format!("{name}-key.pem"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let subject = format!("/CN=mcpbus test {name}");
            openssl(
                &dir,
                &[
                    &["req"][..],
                    &ec,
                    &["-keyout", &key, "-out", &csr, "-subj", &subject],
                ]
                .concat(),
            )?;
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &cert,
                    "-extfile",
                    &ext,
                ],
            )?;
        }
        Ok(Self {
            ca: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server-key.pem"),
            client_cert: p("client.pem"),
            client_key: p("client-key.pem"),
        })
    }

    /// The server's `tls` block: its certificate, and client certificates from this CA
    /// required of every client.
    pub fn server_settings(&self) -> String {
        format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  timeout: 5\n}}",
            self.server_cert, self.server_key, self.ca
        )
    }

    /// Flags for a client with this CA and the client certificate.
    pub fn client_access(&self, base: Access) -> Access {
        base.flag("--nats-tls-ca", &self.ca)
            .flag("--nats-tls-cert", &self.client_cert)
            .flag("--nats-tls-key", &self.client_key)
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (apt-get install -y openssl)")?;
    if !out.status.success() {
        bail!(
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A new user nkey: its public key (`U...`, for the server's config) and the file holding
/// its seed (for `--nats-nkey`).
pub fn user_nkey(dir: &Path, name: &str) -> Result<(String, PathBuf)> {
    let pair = nkeys::KeyPair::new_user();
    let seed = pair.seed().map_err(|e| anyhow::anyhow!("nkey seed: {e}"))?;
    let path = dir.join(format!("{name}.nk"));
    std::fs::write(&path, format!("{seed}\n"))?;
    Ok((pair.public_key(), path))
}
