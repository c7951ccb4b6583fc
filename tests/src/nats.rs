//! A real nats-server with JetStream that enforces each role's permissions, as a secured
//! deployment does (ADR 0013).
//!
//! Every test cluster runs through it: gateways connect as user `gateway`, workers of pool
//! `P` as user `pool-P`, each with the permissions `bus_schema::permissions` derives, so the
//! whole suite shows that the cluster works with least privilege. A pool's user is added the
//! first time a worker of that pool is started (the configuration is rewritten and the
//! server reloaded); `mcpbusctl` connects as `operator`. Tests that inspect or attack the
//! bus directly connect as `admin`, which has no restrictions, or as a role's user.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bus_schema::names::PoolName;
use bus_schema::permissions::{Permissions, Role};

use crate::{free_port, wait_for_port, Proc};

/// The user with no restrictions, for tests that inspect the bus.
const ADMIN: &str = "admin";

/// The user `mcpbusctl` runs as in tests, with the operator role's permissions (ADR 0021).
const OPERATOR: &str = "operator";

/// Pools the tests use, whose users exist from the start. Reloading the server to add a
/// user raced with a worker connecting meanwhile (nats-server 2.9 refused it once in a full
/// suite run), so a reload is only the fallback for a pool not listed here.
const KNOWN_POOLS: [&str; 22] = [
    "aaa",
    "bridge",
    "conformance",
    "demo",
    "everything",
    "evil",
    "extra",
    "files",
    "first",
    "isolated",
    "kit",
    "kit-bad",
    "kit-python",
    "kit-rust",
    "kit-ts",
    "py-example",
    "pyserver",
    "pysdk",
    "remote",
    "second",
    "ts-example",
    "typescript",
];

fn pool_user(pool: &str) -> String {
    format!("pool-{pool}")
}

pub struct Nats {
    pub proc: Proc,
    pub port: u16,
    pub store: PathBuf,
    config: PathBuf,
    /// Users and their roles (`None`: the unrestricted admin). Passwords are per server.
    users: Mutex<BTreeMap<String, Option<Role>>>,
    password: String,
}

impl Nats {
    pub fn start(dir: &Path) -> Result<Self> {
        let store = dir.join("nats-store");
        std::fs::create_dir_all(&store)?;
        let port = free_port();
        let mut users = BTreeMap::from([
            (ADMIN.to_owned(), None),
            ("gateway".to_owned(), Some(Role::Gateway)),
            (OPERATOR.to_owned(), Some(Role::Operator)),
        ]);
        for pool in KNOWN_POOLS {
            let role = Role::Worker(PoolName::new(pool).expect("a valid pool name"));
            users.insert(pool_user(pool), Some(role));
        }
        let config = dir.join("nats-server.conf");
        // `MCPBUS_TEST_OPEN_BUS=1`: no users at all, to measure what permissions cost.
        let open = std::env::var("MCPBUS_TEST_OPEN_BUS").is_ok_and(|v| v == "1");
        let password = if open {
            users.clear();
            String::new()
        } else {
            format!("pw{}", free_port())
        };
        write_config(&config, port, &store, &users, &password)?;
        let proc = spawn(dir, &config, port)?;
        Ok(Self {
            proc,
            port,
            store,
            config,
            users: Mutex::new(users),
            password,
        })
    }

    /// A server another part of the harness started from its own configuration (TLS, nkeys:
    /// `secure_nats.rs`), without the role users: its URL carries no credentials.
    pub(crate) fn from_own_config(proc: Proc, port: u16, store: PathBuf, config: PathBuf) -> Self {
        Self {
            proc,
            port,
            store,
            config,
            users: Mutex::new(BTreeMap::new()),
            password: String::new(),
        }
    }

    fn write_config(&self) -> Result<()> {
        let users = self.users.lock().expect("not poisoned");
        write_config(&self.config, self.port, &self.store, &users, &self.password)
    }

    /// The unrestricted URL, for tests that inspect the bus directly.
    pub fn url(&self) -> String {
        self.url_as(ADMIN)
    }

    /// The URL the operator's `mcpbusctl` connects with.
    pub fn operator_url(&self) -> String {
        self.url_as(OPERATOR)
    }

    /// The URL a gateway connects with.
    pub fn gateway_url(&self) -> String {
        self.url_as("gateway")
    }

    /// The URL a worker of `pool` connects with; the pool's user is created on first use.
    pub fn worker_url(&self, pool: &str) -> String {
        let user = self.user_for(pool);
        self.url_as(&user)
    }

    /// The user of `pool`'s workers, created on first use.
    fn user_for(&self, pool: &str) -> String {
        let user = pool_user(pool);
        if self.password.is_empty() {
            // A server with its own configuration: its users are its own business.
            return user;
        }
        let added = {
            let mut users = self.users.lock().expect("not poisoned");
            let pool = PoolName::new(pool).expect("a valid pool name");
            users
                .insert(user.clone(), Some(Role::Worker(pool)))
                .is_none()
        };
        if added {
            self.write_config()
                .expect("writing the nats-server configuration");
            self.reload_until_known(&user);
        }
        user
    }

    /// How a worker of `pool` logs in without credentials in its URL: the server's address,
    /// its user, and the password to give in `MCPBUS_NATS_PASSWORD`.
    pub fn worker_login(&self, pool: &str) -> (String, String, String) {
        (self.address(), self.user_for(pool), self.password.clone())
    }

    fn url_as(&self, user: &str) -> String {
        if self.password.is_empty() {
            return self.address();
        }
        format!("nats://{user}:{}@127.0.0.1:{}", self.password, self.port)
    }

    fn address(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Signals the server to reload its configuration, and waits until `user` may connect.
    fn reload_until_known(&self, user: &str) {
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &self.proc.pid().to_string()])
            .status();
        let start = Instant::now();
        while !self.accepts(user) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not take user {user} after a reload"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server lets `user` in: a bare NATS handshake, `CONNECT` then `PING`.
    fn accepts(&self, user: &str) -> bool {
        let attempt = || -> std::io::Result<bool> {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut line = String::new();
            reader.read_line(&mut line)?; // INFO
            write!(
                stream,
                "CONNECT {{\"user\":\"{user}\",\"pass\":\"{}\",\"verbose\":false}}\r\nPING\r\n",
                self.password
            )?;
            line.clear();
            reader.read_line(&mut line)?;
            Ok(line.starts_with("PONG"))
        };
        attempt().unwrap_or(false)
    }

    /// `kill -9` the server, then start it again on the same port and store: what a crash
    /// and a pod restart look like to clients.
    pub fn crash_and_restart(&mut self, down_for: Duration) -> Result<()> {
        self.proc.kill9();
        std::thread::sleep(down_for);
        let dir = self
            .config
            .parent()
            .expect("the configuration is inside the cluster dir")
            .to_path_buf();
        self.proc = spawn(&dir, &self.config, self.port)?;
        Ok(())
    }

    /// Stores a cluster-wide event in the broadcast stream, as a gateway or any publisher
    /// would (resources have no publisher of their own yet).
    pub async fn publish_broadcast(&self, kind: bus_schema::messages::BroadcastKind) {
        let js = async_nats::jetstream::new(self.client().await);
        let subject = bus_schema::subjects::broadcast(kind.subject_token());
        let body = bus_schema::messages::encode(&bus_schema::messages::BroadcastEvent {
            protocol: bus_schema::PROTOCOL_VERSION,
            kind,
        });
        js.publish(subject, body)
            .await
            .expect("publishing to the broadcast stream")
            .await
            .expect("the broadcast stream stored the event");
    }

    /// Connects an unrestricted client, for tests that inspect the bus directly.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(ADMIN.into(), self.password.clone())
            .custom_inbox_prefix(bus_schema::subjects::ADMIN_INBOX_PREFIX)
            .connect(self.address())
            .await
            .expect("connecting to the test nats-server")
    }

    /// Connects as `mcpbusctl` does, with the operator role's permissions and inbox prefix.
    pub async fn operator_client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(OPERATOR.into(), self.password.clone())
            .custom_inbox_prefix(bus_schema::subjects::ADMIN_INBOX_PREFIX)
            .connect(self.address())
            .await
            .expect("connecting as the operator")
    }

    /// Connects as a worker of `pool` would, with its permissions and inbox prefix: what an
    /// attacker holding that pool's credentials gets.
    pub async fn worker_client(&self, pool: &str) -> async_nats::Client {
        let prefix = bus_schema::subjects::worker_inbox_prefix(&PoolName::new(pool).unwrap());
        let user = self.user_for(pool);
        async_nats::ConnectOptions::with_user_and_password(user, self.password.clone())
            .custom_inbox_prefix(prefix)
            .connect(self.address())
            .await
            .expect("connecting as a worker")
    }

    /// Whether the server logged a permissions violation mentioning `needle`.
    pub fn logged_violation(&self, needle: &str) -> bool {
        self.proc
            .log_text()
            .lines()
            .any(|l| l.contains("Violation") && l.contains(needle))
    }
}

fn spawn(dir: &Path, config: &Path, port: u16) -> Result<Proc> {
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    let proc = Proc::spawn(
        "nats-server",
        std::process::Command::new(&bin).args(["-c", config.to_str().expect("utf-8 temp path")]),
        dir,
    )
    .with_context(|| format!("starting {bin} (install it: apt-get install -y nats-server)"))?;
    wait_for_port(port, Duration::from_secs(10))?;
    Ok(proc)
}

/// The server's configuration: loopback, JetStream in `store`, and one user per role.
fn write_config(
    config: &Path,
    port: u16,
    store: &Path,
    users: &BTreeMap<String, Option<Role>>,
    password: &str,
) -> Result<()> {
    let mut entries = String::new();
    for (name, role) in users.iter() {
        let permissions = role
            .as_ref()
            .map(|r| format!(", {}", Permissions::of(r).to_server_config()))
            .unwrap_or_default();
        entries.push_str(&format!(
            "    {{ user: \"{name}\", password: \"{}\"{permissions} }}\n",
            password
        ));
    }
    let authorization = if users.is_empty() {
        String::new()
    } else {
        format!("authorization {{\n  users = [\n{entries}  ]\n}}\n")
    };
    let text = format!(
        "listen: \"127.0.0.1:{}\"\njetstream {{ store_dir: \"{}\" }}\n{authorization}",
        port,
        store.display()
    );
    std::fs::write(config, text)?;
    Ok(())
}
