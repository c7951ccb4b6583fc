//! A bridged stdio server is untrusted code (issue 13): `bridge stdio` starts it with a
//! cleared environment plus `PATH`, `HOME` and what `--env` allows, so it never sees the
//! worker's secrets, and with `--uid`/`--gid` as another user. A real Python `mcp` server
//! reports the environment and user it got.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::mcp::stateless;
use harness::{bin, texts, venv_python, workspace_root, Cluster, Proc};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

const SERVER_TOOLS: [&str; 4] = [
    "py_server_count",
    "py_server_crash",
    "py_server_env",
    "py_server_shout",
];

/// Starts `mcpbus-worker bridge stdio <flags> -- <python> py_server.py` with `worker_env`
/// added to the worker's own environment (which is this test's). The worker logs in with
/// its NATS password in `MCPBUS_NATS_PASSWORD`, as a deployment gives it from a Secret.
fn start_bridge(
    c: &mut Cluster,
    python: &Path,
    flags: &[&str],
    worker_env: &[(&str, &str)],
) -> usize {
    let (address, user, password) = c.nats.worker_login("isolated");
    let mut cmd = Command::new(bin("mcpbus-worker"));
    cmd.args(["--nats", &address, "--nats-user", &user])
        .env("MCPBUS_NATS_PASSWORD", &password)
        .args(["--pool", "isolated", "bridge", "stdio"])
        .args(flags)
        .arg("--")
        .arg(python)
        .arg(workspace_root().join("tests/clients/py_server.py"))
        .envs(worker_env.iter().copied());
    let name = format!("worker-{}", c.workers.len());
    c.workers
        .push(Proc::spawn(&name, &mut cmd, c.dir.path()).unwrap());
    c.workers.len() - 1
}

/// What `py_server_env` says about the server process.
async fn server_env(c: &Cluster) -> Value {
    let r = stateless(
        &c.gateway_urls()[0],
        "tools/call",
        json!({"name": "py_server_env", "arguments": {}}),
    )
    .await
    .unwrap();
    let result = &r.response().unwrap()["result"];
    serde_json::from_str(&texts(result)[0]).unwrap_or_else(|e| panic!("{e}: {result}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bridged_server_sees_only_path_home_and_the_allowed_names() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    start_bridge(
        &mut c,
        &venv_python(),
        &[
            "--env",
            "MCPBUS_TEST_ALLOWED",
            "--env",
            "MCPBUS_TEST_SET=set=by-flag",
            "--env",
            "MCPBUS_TEST_NOT_SET_ON_WORKER",
        ],
        &[
            // What a real worker holds besides its NATS password: an upstream token.
            ("MCPBUS_BRIDGE_BEARER", "upstream-secret"),
            ("MCPBUS_TEST_SECRET", "not-for-the-server"),
            ("MCPBUS_TEST_ALLOWED", "passed-through"),
        ],
    );
    c.wait_for_tools(&SERVER_TOOLS, WAIT).await.unwrap();
    let reported = server_env(&c).await;
    let mut env: BTreeMap<String, String> =
        serde_json::from_value(reported["env"].clone()).unwrap();
    // Python itself sets LC_CTYPE when started without a locale (PEP 538): not the bridge's.
    env.remove("LC_CTYPE");

    let mut expected = BTreeMap::from([
        (
            "MCPBUS_TEST_ALLOWED".to_owned(),
            "passed-through".to_owned(),
        ),
        ("MCPBUS_TEST_SET".to_owned(), "set=by-flag".to_owned()),
    ]);
    for name in ["PATH", "HOME"] {
        if let Ok(value) = std::env::var(name) {
            expected.insert(name.to_owned(), value);
        }
    }
    assert_eq!(
        env, expected,
        "the server saw more (or less) than PATH, HOME and the allowed names"
    );
    let text = reported.to_string();
    let (_, _, nats_password) = c.nats.worker_login("isolated");
    for secret in [&nats_password, "upstream-secret", "not-for-the-server"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// As root the server runs as the given user and group; as anyone else the worker refuses
/// to start and names the flag.
#[tokio::test(flavor = "multi_thread")]
async fn a_bridged_server_runs_as_the_given_user_or_the_worker_says_why_not() {
    let mut c = Cluster::start(1, &[]).await.unwrap();
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if root {
        // The venv's interpreter may sit where nobody else may read it (pyenv under /root);
        // Debian 12's own Python is 3.11 too and reads the venv's packages by PYTHONPATH,
        // which also shows `--env NAME=value` at work. 65534 is nobody:nogroup.
        let packages = workspace_root().join(".venv/lib/python3.11/site-packages");
        let pythonpath = format!("PYTHONPATH={}", packages.display());
        let flags = ["--uid", "65534", "--gid", "65534", "--env", &pythonpath];
        start_bridge(&mut c, Path::new("/usr/bin/python3"), &flags, &[]);
        c.wait_for_tools(&SERVER_TOOLS, WAIT).await.unwrap();
        let reported = server_env(&c).await;
        assert_eq!(
            (&reported["uid"], &reported["gid"]),
            (&json!(65534), &json!(65534))
        );
    } else {
        let w = start_bridge(&mut c, &venv_python(), &["--uid", "0"], &[]);
        let status = c.workers[w].wait_exit(WAIT).expect("the worker gave up");
        assert!(!status.success());
        let log = c.workers[w].log_text();
        assert!(
            log.contains("--uid 0") && log.contains("root"),
            "the refusal names the flag: {log}"
        );
    }
}
