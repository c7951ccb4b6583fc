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

use crate::{free_port, stable_port, wait_for_port, Proc};

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
    /// One server, or the members of a JetStream cluster (`start_cluster`).
    nodes: Vec<NatsNode>,
    /// Users and their roles (`None`: the unrestricted admin). Passwords are per server.
    users: Mutex<BTreeMap<String, Option<Role>>>,
    password: String,
}

/// One `nats-server` process of the test bus.
pub struct NatsNode {
    pub proc: Proc,
    pub port: u16,
    pub store: PathBuf,
    config: PathBuf,
    /// The server name JetStream reports leaders by (`n0`, `n1`, ...); clustered nodes only.
    pub name: Option<String>,
    /// The monitoring port, whose `/jsz` names the meta leader; clustered nodes only.
    monitor_port: Option<u16>,
    /// This node's route port and every member's, to write its `cluster { }` block.
    routes: Option<(u16, Vec<u16>)>,
}

impl Nats {
    pub fn start(dir: &Path) -> Result<Self> {
        Self::start_nodes(dir, 1)
    }

    /// A JetStream cluster of `size` servers on loopback, joined by routes, each with its own
    /// file store: what production runs (the official chart's 3 nodes). Returns once every
    /// server listens; [`Nats::wait_for_meta_leader`] waits for the cluster to elect one.
    pub fn start_cluster(dir: &Path, size: usize) -> Result<Self> {
        assert!(size >= 2, "a cluster has at least two servers");
        Self::start_nodes(dir, size)
    }

    fn start_nodes(dir: &Path, size: usize) -> Result<Self> {
        let mut users = BTreeMap::from([
            (ADMIN.to_owned(), None),
            ("gateway".to_owned(), Some(Role::Gateway)),
            (OPERATOR.to_owned(), Some(Role::Operator)),
        ]);
        for pool in KNOWN_POOLS {
            let role = Role::Worker(PoolName::new(pool).expect("a valid pool name"));
            users.insert(pool_user(pool), Some(role));
        }
        // `MCPBUS_TEST_OPEN_BUS=1`: no users at all, to measure what permissions cost.
        let open = std::env::var("MCPBUS_TEST_OPEN_BUS").is_ok_and(|v| v == "1");
        let password = if open {
            users.clear();
            String::new()
        } else {
            format!("pw{}", free_port())
        };
        // Nodes are stopped and started again on their ports: ports no one else is handed.
        let route_ports: Vec<u16> = (0..size).map(|_| stable_port()).collect();
        let mut plans = Vec::new();
        for (i, route_port) in route_ports.iter().enumerate() {
            let clustered = size > 1;
            // A single server keeps its historic file names, so old logs read the same.
            let (store, config, name) = if clustered {
                (
                    dir.join(format!("nats-store-n{i}")),
                    dir.join(format!("nats-server-n{i}.conf")),
                    Some(format!("n{i}")),
                )
            } else {
                (dir.join("nats-store"), dir.join("nats-server.conf"), None)
            };
            std::fs::create_dir_all(&store)?;
            let node = NodePlan {
                port: stable_port(),
                store,
                config,
                name,
                monitor_port: clustered.then(stable_port),
                routes: clustered.then(|| (*route_port, route_ports.clone())),
            };
            node.write_config(&users, &password)?;
            plans.push(node);
        }
        // All spawned before any is waited for: a clustered server listens for clients at
        // once, but starting them together lets the routes form while the others boot.
        let procs: Vec<Proc> = plans
            .iter()
            .map(|n| spawn_unwaited(dir, &n.config, &n.log_name()))
            .collect::<Result<_>>()?;
        let mut nodes = Vec::new();
        for (plan, proc) in plans.into_iter().zip(procs) {
            wait_for_port(plan.port, Duration::from_secs(10))?;
            nodes.push(plan.into_node(proc));
        }
        Ok(Self {
            nodes,
            users: Mutex::new(users),
            password,
        })
    }

    /// A server another part of the harness started from its own configuration (TLS, nkeys:
    /// `secure_nats.rs`), without the role users: its URL carries no credentials.
    pub(crate) fn from_own_config(proc: Proc, port: u16, store: PathBuf, config: PathBuf) -> Self {
        Self {
            nodes: vec![NatsNode {
                proc,
                port,
                store,
                config,
                name: None,
                monitor_port: None,
                routes: None,
            }],
            users: Mutex::new(BTreeMap::new()),
            password: String::new(),
        }
    }

    /// The servers, in start order.
    pub fn nodes(&self) -> &[NatsNode] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> &NatsNode {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut NatsNode {
        &mut self.nodes[i]
    }

    /// How many copies a stream or bucket should keep: one per server, up to three.
    pub fn replicas(&self) -> usize {
        self.nodes.len().min(3)
    }

    fn write_config(&self) -> Result<()> {
        let users = self.users.lock().expect("not poisoned");
        for node in &self.nodes {
            node.plan().write_config(&users, &self.password)?;
        }
        Ok(())
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

    /// Every server's URL as `user`, comma-separated: the seed list `--nats` takes.
    fn url_as(&self, user: &str) -> String {
        if self.password.is_empty() {
            return self.address();
        }
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://{user}:{}@127.0.0.1:{}", self.password, n.port))
            .collect();
        urls.join(",")
    }

    /// Every server's URL without credentials, comma-separated.
    fn address(&self) -> String {
        self.addresses().join(",")
    }

    fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Signals every server to reload its configuration, and waits until `user` may connect
    /// to each.
    fn reload_until_known(&self, user: &str) {
        for node in &self.nodes {
            signal(&node.proc, "-HUP");
        }
        let start = Instant::now();
        while !self.nodes.iter().all(|n| self.accepts(n.port, user)) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not take user {user} after a reload"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server on `port` lets `user` in: a bare NATS handshake, `CONNECT` then
    /// `PING`.
    fn accepts(&self, port: u16, user: &str) -> bool {
        let attempt = || -> std::io::Result<bool> {
            let mut stream = TcpStream::connect(("127.0.0.1", port))?;
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

    /// `kill -9` the (first) server, then start it again on the same port and store: what a
    /// crash and a pod restart look like to clients.
    pub fn crash_and_restart(&mut self, down_for: Duration) -> Result<()> {
        self.kill9(0);
        std::thread::sleep(down_for);
        self.restart(0)
    }

    /// `kill -9` server `i`: a crashed pod, its connections reset at once.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].proc.kill9();
    }

    /// SIGTERM server `i` and wait for it to exit (up to 30 s, then `kill -9`): a pod stopped
    /// in a rolling restart, which steps down from its leaderships before it goes.
    pub fn stop(&mut self, i: usize) {
        let proc = &mut self.nodes[i].proc;
        proc.terminate();
        if proc.wait_exit(Duration::from_secs(30)).is_none() {
            proc.kill9();
        }
    }

    /// Starts server `i` again on its port, store and configuration, after [`Nats::kill9`].
    pub fn restart(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let dir = node
            .config
            .parent()
            .expect("the configuration is inside the cluster dir")
            .to_path_buf();
        node.proc = spawn_unwaited(&dir, &node.config, &node.plan().log_name())?;
        wait_for_port(node.port, Duration::from_secs(10))
    }

    /// SIGSTOP server `i`: a frozen process (a stalled VM, a long GC pause) whose sockets stay
    /// open, so only heartbeats can tell. [`Nats::resume`] undoes it.
    pub fn pause(&self, i: usize) {
        signal(&self.nodes[i].proc, "-STOP");
    }

    /// SIGCONT server `i` after [`Nats::pause`].
    pub fn resume(&self, i: usize) {
        signal(&self.nodes[i].proc, "-CONT");
    }

    /// The index of the JetStream meta leader, as the first answering server's `/jsz` names
    /// it; `None` while there is none (an election, or no quorum). Clustered servers only.
    pub async fn meta_leader(&self) -> Option<usize> {
        for node in &self.nodes {
            let Some(port) = node.monitor_port else {
                continue;
            };
            let url = format!("http://127.0.0.1:{port}/jsz");
            let get = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send();
            let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(2), get).await else {
                continue;
            };
            let Ok(jsz) = reply.json::<serde_json::Value>().await else {
                continue;
            };
            let leader = jsz["meta_cluster"]["leader"].as_str().unwrap_or_default();
            if let Some(i) = self.index_of(leader) {
                return Some(i);
            }
        }
        None
    }

    /// Waits until the cluster has a meta leader (it can create replicated streams).
    pub async fn wait_for_meta_leader(&self, within: Duration) -> Result<usize> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.meta_leader().await {
                return Ok(i);
            }
            anyhow::ensure!(
                start.elapsed() < within,
                "no JetStream meta leader within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The index of the server leading `stream` (its `cluster.leader` in the stream's
    /// info), or `None` while it has none.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let js = async_nats::jetstream::new(self.client().await);
        let mut handle = js.get_stream(stream).await.ok()?;
        let info = handle.info().await.ok()?;
        let leader = info.cluster.as_ref()?.leader.as_deref()?;
        self.index_of(leader)
    }

    fn index_of(&self, server_name: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name.as_deref() == Some(server_name))
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
            .connect(self.addresses())
            .await
            .expect("connecting to the test nats-server")
    }

    /// Connects as `mcpbusctl` does, with the operator role's permissions and inbox prefix.
    pub async fn operator_client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(OPERATOR.into(), self.password.clone())
            .custom_inbox_prefix(bus_schema::subjects::ADMIN_INBOX_PREFIX)
            .connect(self.addresses())
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
            .connect(self.addresses())
            .await
            .expect("connecting as a worker")
    }

    /// Whether the server logged a permissions violation mentioning `needle`.
    pub fn logged_violation(&self, needle: &str) -> bool {
        self.nodes.iter().any(|n| {
            n.proc
                .log_text()
                .lines()
                .any(|l| l.contains("Violation") && l.contains(needle))
        })
    }
}

fn signal(proc: &Proc, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &proc.pid().to_string()])
        .status();
}

/// Starts a server from `config` without waiting for it to listen.
fn spawn_unwaited(dir: &Path, config: &Path, name: &str) -> Result<Proc> {
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    Proc::spawn(
        name,
        std::process::Command::new(&bin).args(["-c", config.to_str().expect("utf-8 temp path")]),
        dir,
    )
    .with_context(|| format!("starting {bin} (install it: apt-get install -y nats-server)"))
}

/// What a server's configuration is written from, before and after it runs.
struct NodePlan {
    port: u16,
    store: PathBuf,
    config: PathBuf,
    name: Option<String>,
    monitor_port: Option<u16>,
    routes: Option<(u16, Vec<u16>)>,
}

impl NatsNode {
    fn plan(&self) -> NodePlan {
        NodePlan {
            port: self.port,
            store: self.store.clone(),
            config: self.config.clone(),
            name: self.name.clone(),
            monitor_port: self.monitor_port,
            routes: self.routes.clone(),
        }
    }
}

impl NodePlan {
    fn into_node(self, proc: Proc) -> NatsNode {
        NatsNode {
            proc,
            port: self.port,
            store: self.store,
            config: self.config,
            name: self.name,
            monitor_port: self.monitor_port,
            routes: self.routes,
        }
    }

    /// The log file's name: `nats-server.log`, or `nats-n0.log` for a cluster member.
    fn log_name(&self) -> String {
        match &self.name {
            Some(name) => format!("nats-{name}"),
            None => "nats-server".into(),
        }
    }

    /// The server's configuration: loopback, JetStream in `store`, one user per role, and
    /// for a cluster member its name, monitoring port and routes to every member.
    fn write_config(&self, users: &BTreeMap<String, Option<Role>>, password: &str) -> Result<()> {
        let mut entries = String::new();
        for (name, role) in users.iter() {
            let permissions = role
                .as_ref()
                .map(|r| format!(", {}", Permissions::of(r).to_server_config()))
                .unwrap_or_default();
            entries.push_str(&format!(
                "    {{ user: \"{name}\", password: \"{password}\"{permissions} }}\n"
            ));
        }
        let authorization = if users.is_empty() {
            String::new()
        } else {
            format!("authorization {{\n  users = [\n{entries}  ]\n}}\n")
        };
        let mut membership = String::new();
        if let (Some(name), Some(monitor), Some((own, all))) =
            (&self.name, self.monitor_port, &self.routes)
        {
            let routes: Vec<String> = all
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            membership = format!(
                "server_name: \"{name}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
                 cluster {{\n  name: \"mcpbus-test\"\n  listen: \"127.0.0.1:{own}\"\n  \
                 routes: [{}]\n}}\n",
                routes.join(", ")
            );
        }
        let text = format!(
            "listen: \"127.0.0.1:{}\"\njetstream {{ store_dir: \"{}\" }}\n{membership}{authorization}",
            self.port,
            self.store.display()
        );
        std::fs::write(&self.config, text)?;
        Ok(())
    }
}
