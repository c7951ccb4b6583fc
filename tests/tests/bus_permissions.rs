//! The bus trusts no one (ADR 0013). Every test cluster already runs on a nats-server that
//! enforces the permissions `bus_schema::permissions` derives (see `harness::nats`), so the
//! rest of the suite shows the cluster works with least privilege. Here an attacker holds a
//! worker's credentials, for pool `evil`, and tries each attack issue 13 found on the open
//! bus. The server refuses each with a permissions violation, and the cluster keeps serving.
//! The operator's credentials (`mcpbusctl`, ADR 0021) are refused the cluster key and any
//! part in a call.
//! Every attack is one message or one request, on loopback, bounded in time.

use std::time::Duration;

use bus_schema::messages::{decode, encode, CallEvent, CallReply, CallRequest};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::subjects;
use futures::StreamExt;
use harness::mcp::{stateless, Session};
use harness::{demo_cluster, texts, Cluster};
use serde_json::json;

/// How long a refused request is given to be answered anyway.
const NO_ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Waits until nats-server logged a permissions violation naming `subject`.
async fn refused(c: &Cluster, subject: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while !c.nats.logged_violation(subject) {
        assert!(
            tokio::time::Instant::now() < until,
            "nats-server logged no permissions violation for {subject}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a request as `client` and expects no answer: the server dropped it.
async fn unanswered(client: &async_nats::Client, subject: &str, body: &str) {
    let answer = tokio::time::timeout(
        NO_ANSWER_WITHIN,
        client.request(subject.to_owned(), body.to_owned().into()),
    )
    .await;
    if let Ok(Ok(msg)) = answer {
        panic!(
            "{subject} was answered: {}",
            String::from_utf8_lossy(&msg.payload)
        );
    }
}

/// The same request as the unrestricted user is answered: the attack would work on an
/// open bus, so its refusal above is the permissions' doing.
async fn answered(client: &async_nats::Client, subject: &str, body: &str) -> String {
    let msg = tokio::time::timeout(
        NO_ANSWER_WITHIN,
        client.request(subject.to_owned(), body.to_owned().into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    String::from_utf8_lossy(&msg.payload).into_owned()
}

async fn honest_echo_works(c: &Cluster) {
    let session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let echo = session
        .call("echo", json!({"text": "still here"}))
        .await
        .unwrap();
    assert_eq!(texts(&echo["result"]), ["still here"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workers_credentials_cannot_read_the_cluster_key_or_sessions() {
    let c = demo_cluster(1, &[]).await;
    let admin = c.nats.client().await;
    let evil = c.nats.worker_client("evil").await;
    // Forged MRTR state needs the key that seals it.
    let key = format!(
        "$JS.API.DIRECT.GET.KV_mcpbus-cluster.$KV.mcpbus-cluster.{}",
        bus_schema::topology::REQUEST_STATE_KEY
    );
    assert!(!answered(&admin, &key, "").await.is_empty());
    unanswered(&evil, &key, "").await;
    refused(&c, &key).await;
    let get = "$JS.API.STREAM.MSG.GET.KV_mcpbus-cluster";
    let by_subject = r#"{"last_by_subj":"$KV.mcpbus-cluster.request-state-key"}"#;
    assert!(answered(&admin, get, by_subject)
        .await
        .contains("\"message\""));
    unanswered(&evil, get, by_subject).await;
    refused(&c, get).await;

    // Listing the live sessions (to use them) needs the sessions bucket.
    let _session = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    let info = "$JS.API.STREAM.INFO.KV_mcpbus-sessions";
    assert!(answered(&admin, info, "").await.contains("\"messages\":1"));
    unanswered(&evil, info, "").await;
    refused(&c, info).await;
    let watch = "$JS.API.CONSUMER.CREATE.KV_mcpbus-sessions";
    unanswered(&evil, watch, "{}").await;
    refused(&c, watch).await;
    let mut sub = evil.subscribe("$KV.mcpbus-sessions.>").await.unwrap();
    refused(&c, "$KV.mcpbus-sessions.>").await;
    let _second = Session::open(&c.gateway_urls()[0], "2025-11-25")
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sub.next())
            .await
            .is_err(),
        "a worker saw a session being written"
    );
    honest_echo_works(&c).await;
}

/// The operator's credentials (`mcpbusctl`, ADR 0021) read the cluster's state, but never
/// the key that seals `requestState`, and take no part in a call.
#[tokio::test(flavor = "multi_thread")]
async fn the_operators_credentials_cannot_read_the_cluster_key_or_act_in_calls() {
    let c = demo_cluster(1, &[]).await;
    let operator = c.nats.operator_client().await;
    let key = format!(
        "$JS.API.DIRECT.GET.KV_mcpbus-cluster.$KV.mcpbus-cluster.{}",
        bus_schema::topology::REQUEST_STATE_KEY
    );
    unanswered(&operator, &key, "").await;
    refused(&c, &key).await;
    let get = "$JS.API.STREAM.MSG.GET.KV_mcpbus-cluster";
    unanswered(
        &operator,
        get,
        r#"{"last_by_subj":"$KV.mcpbus-cluster.request-state-key"}"#,
    )
    .await;
    refused(&c, get).await;
    let next = "$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-demo";
    unanswered(&operator, next, r#"{"batch":1}"#).await;
    refused(&c, next).await;
    let demo = PoolName::new("demo").unwrap();
    let gateway = InstanceId::new("gw-x").unwrap();
    for subject in [
        subjects::call(&demo),
        subjects::call_reply(&demo, &gateway, "c1"),
        subjects::broadcast("tools"),
        "$KV.mcpbus-workers.demo.w9".to_owned(),
        "$KV.mcpbus-gateways.gw-x".to_owned(),
        "$KV.mcpbus-sessions.forged".to_owned(),
    ] {
        operator
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap();
        operator.flush().await.unwrap();
        refused(&c, &subject).await;
    }
    // What it is for is answered: a store's size, the registry.
    let info = "$JS.API.STREAM.INFO.KV_mcpbus-cluster";
    assert!(answered(&operator, info, "").await.contains("\"state\""));
    let info = "$JS.API.STREAM.INFO.KV_mcpbus-workers";
    assert!(answered(&operator, info, "")
        .await
        .contains("\"messages\":1"));
    honest_echo_works(&c).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workers_credentials_cannot_register_or_consume_for_another_pool() {
    let c = demo_cluster(1, &[]).await;
    let evil = c.nats.worker_client("evil").await;
    // Shadowing: registering a worker and a catalogue under pool `aaa`.
    for subject in ["$KV.mcpbus-workers.aaa.w1", "$KV.mcpbus-catalog.aaa.d1"] {
        unanswered(&evil, subject, "{}").await;
        refused(&c, subject).await;
    }
    // Taking the demo pool's calls, through its consumer or a consumer of one's own name
    // that filters on the demo pool's calls.
    let next = "$JS.API.CONSUMER.MSG.NEXT.MCPBUS_CALLS.mcpbus-pool-demo";
    unanswered(&evil, next, r#"{"batch":1}"#).await;
    refused(&c, next).await;
    let (demo, evil_pool) = (
        PoolName::new("demo").unwrap(),
        PoolName::new("evil").unwrap(),
    );
    let create = |filter: &PoolName| {
        format!(
            "$JS.API.CONSUMER.CREATE.MCPBUS_CALLS.mcpbus-pool-evil.{}",
            subjects::call(filter)
        )
    };
    let own_name_other_filter = create(&demo);
    unanswered(&evil, &own_name_other_filter, "{}").await;
    refused(&c, &own_name_other_filter).await;
    // The allowed subject with another filter inside: the server checks them against
    // each other.
    let allowed = create(&evil_pool);
    let config = json!({"stream_name": "MCPBUS_CALLS", "config": {
        "durable_name": "mcpbus-pool-evil", "name": "mcpbus-pool-evil",
        "filter_subject": subjects::call(&demo), "ack_policy": "explicit"}});
    let answer = answered(&evil, &allowed, &config.to_string()).await;
    assert!(answer.contains("\"error\""), "consumer created: {answer}");
    // A consumer on the workers bucket, whose values workers write, delivering them into
    // the demo pool's queue as forged calls: no worker may create one.
    let relay = "$JS.API.CONSUMER.CREATE.KV_mcpbus-workers";
    let config = json!({"stream_name": "KV_mcpbus-workers", "config": {
        "deliver_subject": subjects::call(&demo), "ack_policy": "none"}});
    unanswered(&evil, relay, &config.to_string()).await;
    refused(&c, relay).await;
    // A worker of pool `evil` that claims pool `aaa` cannot start serving it.
    let mut cmd = std::process::Command::new(harness::bin("mcpbus-worker"));
    cmd.args([
        "--nats",
        &c.nats.worker_url("evil"),
        "--pool",
        "aaa",
        "demo",
    ]);
    let mut shadow = harness::Proc::spawn("shadow", &mut cmd, c.dir.path()).unwrap();
    let status = shadow.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(status, Some(s) if !s.success()),
        "the shadowing worker kept running: {}",
        shadow.log_text()
    );
    // The demo pool still serves every call.
    for _ in 0..5 {
        honest_echo_works(&c).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workers_credentials_cannot_forge_or_read_other_pools_traffic() {
    let c = demo_cluster(1, &[]).await;
    let admin = c.nats.client().await;
    let evil = c.nats.worker_client("evil").await;
    // Reading: other calls' replies and live events, broadcasts, session signals, other
    // pools' cancellations and answers, the gateways' inboxes.
    let demo = PoolName::new("demo").unwrap();
    for subject in [
        subjects::REPLY_WILDCARD.to_owned(),
        subjects::EVENTS_LIVE_WILDCARD.to_owned(),
        subjects::BROADCAST_LIVE_WILDCARD.to_owned(),
        subjects::SESSION_SIGNALS_WILDCARD.to_owned(),
        subjects::pool_cancels(&demo),
        subjects::pool_answers(&demo),
        subjects::call(&demo),
        format!("{}.>", subjects::GATEWAY_INBOX_PREFIX),
    ] {
        let _sub = evil.subscribe(subject.clone()).await.unwrap();
        refused(&c, &subject).await;
    }
    // Faking traffic: list_changed and resources/updated broadcasts, session signals.
    for subject in [
        subjects::broadcast("tools"),
        subjects::broadcast("resource"),
        subjects::session_signal("s1"),
    ] {
        evil.publish(subject.clone(), "{}".into()).await.unwrap();
        evil.flush().await.unwrap();
        refused(&c, &subject).await;
    }

    // Forged replies: a call to the demo pool is in flight; the attacker knows its reply
    // subject (here from the unrestricted user, the strongest case) and answers first.
    let mut calls = admin.subscribe(subjects::call(&demo)).await.unwrap();
    let url = c.gateway_urls()[0].clone();
    let call = tokio::spawn(async move {
        stateless(
            &url,
            "tools/call",
            json!({"name": "wait", "arguments": {"ms": 1500}}),
        )
        .await
        .unwrap()
    });
    let msg = tokio::time::timeout(Duration::from_secs(10), calls.next())
        .await
        .expect("the call was published")
        .unwrap();
    let request: CallRequest = decode(&msg.payload).unwrap();
    let forged = encode(&CallReply {
        protocol: bus_schema::PROTOCOL_VERSION,
        call_id: request.call_id.clone(),
        instance: InstanceId::new("evil").unwrap(),
        event: CallEvent::Result {
            result: json!({"content": [{"type": "text", "text": "forged"}]}),
        },
    });
    // On the call's own reply subject: refused by the server.
    evil.publish(request.reply_to.clone(), forged.clone())
        .await
        .unwrap();
    evil.flush().await.unwrap();
    refused(&c, &request.reply_to).await;
    // Under its own pool, which it may publish to: the gateway knows the call went to
    // another pool and drops it.
    let gateway = request
        .reply_to
        .split('.')
        .nth(4)
        .expect("reply.<pool>.<gateway>.<call>");
    let own = subjects::call_reply(
        &PoolName::new("evil").unwrap(),
        &InstanceId::new(gateway).unwrap(),
        &request.call_id,
    );
    evil.publish(own, forged).await.unwrap();
    evil.flush().await.unwrap();
    let answer = call.await.unwrap().response().unwrap();
    assert_eq!(
        answer["result"]["structuredContent"]["waited_ms"], 1500,
        "the real result arrives: {answer}"
    );
    honest_echo_works(&c).await;
}

/// `deploy/nats/nats-server.conf`, as shipped, runs a cluster: the gateway and a `demo`
/// worker with their own users serve a call, and the `files` pool's user cannot pass for
/// the `demo` pool.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_server_configuration_runs_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    // As shipped, but for where JetStream stores (the flag would clash with the file's).
    let shipped = harness::workspace_root().join("deploy/nats/nats-server.conf");
    let text = std::fs::read_to_string(shipped).unwrap();
    let store = dir.path().join("js");
    assert!(text.contains("/data/jetstream"));
    let config = dir.path().join("nats-server.conf");
    std::fs::write(
        &config,
        text.replace("/data/jetstream", store.to_str().unwrap()),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(
        std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into()),
    );
    cmd.args(["-c", config.to_str().unwrap(), "-a", "127.0.0.1"])
        .args(["-p", &port.to_string()])
        .envs([
            ("GATEWAY_PASSWORD", "gw-secret"),
            ("OPERATOR_PASSWORD", "operator-secret"),
            ("POOL_DEMO_PASSWORD", "demo-secret"),
            ("POOL_FILES_PASSWORD", "files-secret"),
            ("SYS_PASSWORD", "sys-secret"),
        ]);
    let _nats = harness::Proc::spawn("nats-server", &mut cmd, dir.path()).unwrap();
    harness::wait_for_port(port, Duration::from_secs(10)).unwrap();
    let url = |user: &str, password: &str| format!("nats://{user}:{password}@127.0.0.1:{port}");

    let listen = harness::free_port();
    let mut gateway = std::process::Command::new(harness::bin("mcpbus-gateway"));
    gateway
        .args([
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--metrics-listen",
            "off",
        ])
        .args(["--nats", &url("gateway", "gw-secret")]);
    let _gateway = harness::Proc::spawn("gateway", &mut gateway, dir.path()).unwrap();
    let base = format!("http://127.0.0.1:{listen}");
    harness::wait_ready(&base, Duration::from_secs(20))
        .await
        .unwrap();
    let mut worker = std::process::Command::new(harness::bin("mcpbus-worker"));
    worker.args(["--nats", &url("pool-demo", "demo-secret"), "demo"]);
    let _worker = harness::Proc::spawn("worker", &mut worker, dir.path()).unwrap();

    let mcp = format!("{base}/mcp");
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let names = harness::mcp::list_tool_names_stateless(&mcp).await.unwrap();
        if names.iter().any(|n| n == "echo") {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "echo never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = stateless(
        &mcp,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "least privilege"}}),
    )
    .await
    .unwrap();
    assert_eq!(texts(&r.response().unwrap()["result"]), ["least privilege"]);
    // The operator's user sees the cluster (ADR 0021).
    let status = harness::ctl::json(&url("operator", "operator-secret"), &["status"]).await;
    assert_eq!(status["pools"][0]["pool"], "demo", "{status:#}");
    assert_eq!(status["gateways"].as_array().map(Vec::len), Some(1));

    let mut impostor = std::process::Command::new(harness::bin("mcpbus-worker"));
    impostor.args([
        "--nats",
        &url("pool-files", "files-secret"),
        "--pool",
        "demo",
        "demo",
    ]);
    let mut impostor = harness::Proc::spawn("impostor", &mut impostor, dir.path()).unwrap();
    let status = impostor.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(status, Some(s) if !s.success()),
        "the files pool's user served the demo pool: {}",
        impostor.log_text()
    );
}
