//! Issue 13: gateways and workers (Rust and Python) reach a NATS server that wants TLS client
//! certificates, an nkey, a user and password or a token, with the same connection flags and
//! environment; several seed URLs survive a dead first one; a refused or mistaken setting
//! is one clear line that never shows the secret.

use std::future::Future;
use std::time::Duration;

use harness::mcp::stateless;
use harness::secure_nats::{run_to_exit, secure_cluster, user_nkey, Access, Pki};
use harness::{texts, Cluster, DEMO_TOOLS, PY_EXAMPLE_TOOLS};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
/// A refused start takes the 5 s connection timeout at most; a hang fails the test.
const REFUSED_WITHIN: Duration = Duration::from_secs(20);

/// Each test ends within two minutes, whatever hangs.
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test finished within 2 minutes");
}

fn demo_and_python_tools() -> Vec<&'static str> {
    DEMO_TOOLS
        .iter()
        .chain(&PY_EXAMPLE_TOOLS)
        .copied()
        .collect()
}

/// `echo` on every gateway (a Rust worker answers) and, when it runs, `py_add` (the Python
/// worker answers).
async fn calls_go_through(c: &Cluster, python: bool) {
    for url in c.gateway_urls() {
        let r = stateless(
            &url,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "over the secured bus"}}),
        )
        .await
        .unwrap();
        let echo = r.response().unwrap();
        assert_eq!(texts(&echo["result"]), ["over the secured bus"], "{echo}");
        if python {
            let r = stateless(
                &url,
                "tools/call",
                json!({"name": "py_add", "arguments": {"a": 2, "b": 3}}),
            )
            .await
            .unwrap();
            let result = &r.response().unwrap()["result"];
            assert_eq!(result["structuredContent"], json!({"sum": 5}), "{result}");
        }
    }
}

/// A refused start: non-zero exit, one `program: error:` line containing `expect`, and
/// nothing of `secret` in the output.
fn refused(program: &str, access: &Access, args: &[&str], expect: &str, secret: &str) {
    let out = run_to_exit(program, access, args, REFUSED_WITHIN).unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{program} started: {stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with(&format!("{program}: error: ")))
        .unwrap_or_else(|| panic!("no error line from {program}:\n{stderr}"));
    assert!(error.contains(expect), "{error}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{program} showed the secret:\n{stdout}\n{stderr}"
    );
}

const NO_LISTENERS: [&str; 4] = ["--listen", "127.0.0.1:0", "--metrics-listen", "off"];

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_client_certificates_end_to_end() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        let mut c = secure_cluster(dir, &pki.server_settings()).unwrap();
        let access = pki.client_access(Access::servers(&c.nats.url()));
        c.add_gateway_with(&access, &[]).await.unwrap();
        c.add_worker_with(&access, &["demo"]).unwrap();
        let _py = c.start_python_worker_with(&access).unwrap();
        c.wait_for_tools(&demo_and_python_tools(), WAIT)
            .await
            .unwrap();
        calls_go_through(&c, true).await;

        // Trusting the CA is not enough: the server wants a client certificate.
        let no_cert = Access::servers(&c.nats.url()).flag("--nats-tls-ca", &pki.ca);
        let at = format!("cannot connect to NATS at {}", c.nats.url());
        refused(
            "mcpbus-gateway",
            &no_cert,
            &NO_LISTENERS,
            &at,
            "PRIVATE KEY",
        );
        refused("mcpbus-worker", &no_cert, &["demo"], &at, "PRIVATE KEY");
        // Nor is a client that does not know the CA.
        refused(
            "mcpbus-worker",
            &Access::servers(&c.nats.url()),
            &["demo"],
            &at,
            "-----",
        );
        // A certificate without its key is refused before connecting.
        let half = Access::servers(&c.nats.url()).flag("--nats-tls-cert", &pki.client_cert);
        let needs =
            "--nats-tls-cert (MCPBUS_NATS_TLS_CERT) needs --nats-tls-key (MCPBUS_NATS_TLS_KEY)";
        refused("mcpbus-gateway", &half, &NO_LISTENERS, needs, "-----");
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn nkeys_for_the_gateway_and_both_workers() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (gateway_key, gateway_seed) = user_nkey(dir.path(), "gateway").unwrap();
        let (worker_key, worker_seed) = user_nkey(dir.path(), "worker").unwrap();
        let (_, stranger_seed) = user_nkey(dir.path(), "stranger").unwrap();
        let users = format!(
            "authorization {{ users = [ {{ nkey: {gateway_key:?} }}, {{ nkey: {worker_key:?} }} ] }}"
        );
        let mut c = secure_cluster(dir, &users).unwrap();
        let url = c.nats.url();
        let gateway = Access::servers(&url).flag("--nats-nkey", &gateway_seed);
        c.add_gateway_with(&gateway, &[]).await.unwrap();
        c.add_worker_with(&Access::servers(&url).flag("--nats-nkey", &worker_seed), &["demo"])
            .unwrap();
        // The Python worker reads the same variable the Rust binaries do.
        let python = Access::servers(&url).env("MCPBUS_NATS_NKEY", &worker_seed);
        let _py = c.start_python_worker_with(&python).unwrap();
        c.wait_for_tools(&demo_and_python_tools(), WAIT).await.unwrap();
        calls_go_through(&c, true).await;

        // A seed the server does not know is refused, and named as what was refused.
        let seed = std::fs::read_to_string(&stranger_seed).unwrap();
        let stranger = Access::servers(&url).flag("--nats-nkey", &stranger_seed);
        let expect = "the server refused an nkey";
        refused("mcpbus-gateway", &stranger, &NO_LISTENERS, expect, seed.trim());
        refused("mcpbus-worker", &stranger, &["demo"], expect, seed.trim());
        // Without credentials at all.
        refused("mcpbus-worker", &Access::servers(&url), &["demo"], "the server refused a connection without credentials", seed.trim());
    })
    .await
}

const PASSWORD: &str = "correct-horse-battery";

fn password_cluster(dir: tempfile::TempDir) -> Cluster {
    let users =
        format!("authorization {{ users = [ {{ user: mcpbus, password: {PASSWORD:?} }} ] }}");
    secure_cluster(dir, &users).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_and_password_from_a_file_and_from_the_environment() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nats-password");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        let mut c = password_cluster(dir);
        let user = Access::servers(&c.nats.url()).flag("--nats-user", "mcpbus");
        let from_file = user.clone().flag("--nats-password-file", &file);
        let from_env = user.clone().env("MCPBUS_NATS_PASSWORD", PASSWORD);
        c.add_gateway_with(&from_file, &[]).await.unwrap();
        c.add_worker_with(&from_env, &["demo"]).unwrap();
        let _py = c.start_python_worker_with(&from_file).unwrap();
        c.wait_for_tools(&demo_and_python_tools(), WAIT)
            .await
            .unwrap();
        calls_go_through(&c, true).await;
        // The user from its variable too.
        let all_env = Access::servers(&c.nats.url())
            .env("MCPBUS_NATS_USER", "mcpbus")
            .env("MCPBUS_NATS_PASSWORD_FILE", &file);
        c.add_gateway_with(&all_env, &[]).await.unwrap();
        calls_go_through(&c, false).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_a_file_and_from_the_environment() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let token = "a-token-of-some-length";
        let file = dir.path().join("nats-token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        let mut c = secure_cluster(dir, &format!("authorization {{ token: {token:?} }}")).unwrap();
        let url = c.nats.url();
        let from_file = Access::servers(&url).flag("--nats-token-file", &file);
        c.add_gateway_with(&from_file, &[]).await.unwrap();
        c.add_worker_with(
            &Access::servers(&url).env("MCPBUS_NATS_TOKEN", token),
            &["demo"],
        )
        .unwrap();
        let _py = c.start_python_worker_with(&from_file).unwrap();
        c.wait_for_tools(&demo_and_python_tools(), WAIT)
            .await
            .unwrap();
        calls_go_through(&c, true).await;
        let wrong = Access::servers(&url).env("MCPBUS_NATS_TOKEN", "not-the-token-9321");
        refused(
            "mcpbus-worker",
            &wrong,
            &["demo"],
            "the server refused a token",
            "not-the-token-9321",
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_one_clear_line_without_the_password() {
    bounded(async {
        let mut c = password_cluster(tempfile::tempdir().unwrap());
        let url = c.nats.url();
        let wrong = "wrong-password-7431";
        let access = Access::servers(&url)
            .flag("--nats-user", "mcpbus")
            .env("MCPBUS_NATS_PASSWORD", wrong);
        let expect = format!("cannot connect to NATS at {url}: the server refused a user and password: authorization violation");
        refused("mcpbus-gateway", &access, &NO_LISTENERS, &expect, wrong);
        refused("mcpbus-worker", &access, &["demo"], &expect, wrong);
        // The same password in a URL: the URL is shown without it.
        let in_url = url.replace("nats://", &format!("nats://mcpbus:{wrong}@"));
        let shown = url.replace("nats://", "nats://***@");
        let access = Access::servers(&in_url);
        let expect = format!("cannot connect to NATS at {shown}: the server refused a user and password");
        refused("mcpbus-gateway", &access, &NO_LISTENERS, &expect, wrong);
        refused("mcpbus-worker", &access, &["demo"], &expect, wrong);
        // The right password in a URL works (async-nats ignores a URL's userinfo: the options
        // take it out and give it as a user and password).
        let right = Access::servers(&url.replace("nats://", &format!("nats://mcpbus:{PASSWORD}@")));
        c.add_gateway_with(&right, &[]).await.unwrap();
        c.add_worker_with(&right, &["demo"]).unwrap();
        c.wait_for_tools(&DEMO_TOOLS, WAIT).await.unwrap();
        calls_go_through(&c, false).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_are_refused_before_connecting() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such.creds");
        let shown = missing.display().to_string();
        // Nothing needs to listen: the settings are checked first.
        let url = "nats://127.0.0.1:1";
        let access = Access::servers(url).flag("--nats-creds", &missing);
        let expect = format!("--nats-creds (MCPBUS_NATS_CREDS): cannot read {shown}");
        refused("mcpbus-gateway", &access, &NO_LISTENERS, &expect, "-----");
        refused("mcpbus-worker", &access, &["demo"], &expect, "-----");
        let by_env = Access::servers(url).env("MCPBUS_NATS_CREDS", &missing);
        refused("mcpbus-worker", &by_env, &["demo"], &expect, "-----");

        let (_, seed) = user_nkey(dir.path(), "user").unwrap();
        let two = Access::servers(url)
            .flag("--nats-nkey", &seed)
            .flag("--nats-user", "mcpbus")
            .env("MCPBUS_NATS_TOKEN", "s3cret-token");
        let expect = "--nats-nkey (MCPBUS_NATS_NKEY) and --nats-user (MCPBUS_NATS_USER) and MCPBUS_NATS_TOKEN cannot be combined. Authenticate one way:";
        refused("mcpbus-gateway", &two, &NO_LISTENERS, expect, "s3cret-token");
        refused("mcpbus-worker", &two, &["demo"], expect, "s3cret-token");
    })
    .await
}

#[test]
fn help_lists_every_flag_with_its_variable_and_no_secret() {
    let secret_url = Access::default().env("MCPBUS_NATS_URL", "nats://u:hunter2@10.0.0.1:4222");
    for program in ["mcpbus-gateway", "mcpbus-worker"] {
        let out = run_to_exit(program, &secret_url, &["--help"], REFUSED_WITHIN).unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{help}");
        for (flag, env) in [
            ("--nats <", "MCPBUS_NATS_URL"),
            ("--nats-creds", "MCPBUS_NATS_CREDS"),
            ("--nats-nkey", "MCPBUS_NATS_NKEY"),
            ("--nats-user", "MCPBUS_NATS_USER"),
            ("--nats-password-file", "MCPBUS_NATS_PASSWORD_FILE"),
            ("--nats-token-file", "MCPBUS_NATS_TOKEN_FILE"),
            ("--nats-tls-ca", "MCPBUS_NATS_TLS_CA"),
            ("--nats-tls-cert", "MCPBUS_NATS_TLS_CERT"),
            ("--nats-tls-key", "MCPBUS_NATS_TLS_KEY"),
            ("--nats-tls-first", "MCPBUS_NATS_TLS_FIRST"),
        ] {
            assert!(
                help.contains(flag),
                "{program} --help lacks {flag}:\n{help}"
            );
            assert!(help.contains(&format!("[env: {env}")), "{program}: {env}");
        }
        assert!(help.contains("MCPBUS_NATS_PASSWORD or --nats-password-file"));
        assert!(!help.contains("hunter2"), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_seeds_do_not_stop_a_connection() {
    bounded(async {
        let mut c = secure_cluster(tempfile::tempdir().unwrap(), "").unwrap();
        // Nothing listens on these: ports taken and released. The client tries seeds in
        // random order, so most runs meet a dead one first.
        let dead: Vec<String> = (0..3)
            .map(|_| format!("nats://127.0.0.1:{}", harness::free_port()))
            .collect();
        let seeds = format!("{},{}", dead.join(","), c.nats.url());
        let access = Access::servers(&seeds);
        c.add_gateway_with(&access, &[]).await.unwrap();
        c.add_worker_with(&access, &["demo"]).unwrap();
        let _py = c.start_python_worker_with(&access).unwrap();
        c.wait_for_tools(&demo_and_python_tools(), WAIT)
            .await
            .unwrap();
        calls_go_through(&c, true).await;
        // Only dead seeds: one line naming them all.
        let all_dead = dead.join(", ");
        refused(
            "mcpbus-worker",
            &Access::servers(&dead.join(",")),
            &["demo"],
            &format!("cannot connect to NATS at {all_dead}"),
            "-----",
        );
    })
    .await
}
