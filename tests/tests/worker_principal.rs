//! Workers know who is calling (issue 11, item 5). A call carrying the principal a gateway
//! verified reaches the handler as `ctx.principal()`: in the Rust SDK, through the demo
//! `whoami`; in the Python SDK, through the example's `py_whoami`. A call without one has
//! none, and one whose principal is malformed never runs: it is answered `malformed_call`
//! (PROTOCOL.md §5.8) while the worker carries on serving.
//!
//! The calls are published straight to JetStream, as a gateway publishes them, so that
//! these tests hold the workers' side of the protocol whatever the gateway's auth does.

use std::time::Duration;

use async_nats::jetstream;
use bus_schema::messages::{decode, encode, CallEvent, CallReply, CallRequest, Lane};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::{headers, subjects, topology, PROTOCOL_VERSION};
use futures::StreamExt;
use harness::{start_python_example_worker, Cluster, PY_EXAMPLE_TOOLS};
use serde_json::{json, Value};

/// How long a call may take to be answered by a worker that is up.
const ANSWER: Duration = Duration::from_secs(10);
/// How long to watch for an answer that must never come.
const SILENCE: Duration = Duration::from_secs(2);

fn alice() -> Value {
    json!({
        "issuer": "https://issuer.test",
        "subject": "alice",
        "scopes": ["tools:read", "tools:call"],
        "claims": {"groups": ["ops"]},
    })
}

/// Publishes a `tools/call` of `tool` to `pool` as a gateway would, with `principal` as its
/// `principal` field (left out when `None`; any JSON, so that malformed ones can be sent),
/// and returns the tool's result, or `None` if no result or error came within `within`.
async fn call(
    nats: &async_nats::Client,
    pool: &str,
    tool: &str,
    principal: Option<Value>,
    within: Duration,
) -> Option<Value> {
    match final_reply(nats, pool, tool, principal, within).await {
        Some(CallEvent::Result { result }) => Some(result),
        Some(CallEvent::Error { error }) => panic!("{tool} failed: {error:?}"),
        _ => None,
    }
}

/// Publishes the call as [`call`] does; its final reply (`result` or `error`), or `None` if
/// none came within `within`.
async fn final_reply(
    nats: &async_nats::Client,
    pool: &str,
    tool: &str,
    principal: Option<Value>,
    within: Duration,
) -> Option<CallEvent> {
    let call_id = uuid_like();
    let reply_to = subjects::call_reply(
        &PoolName::new(pool).unwrap(),
        &InstanceId::new("test-gateway").unwrap(),
        &call_id,
    );
    let mut replies = nats.subscribe(reply_to.clone()).await.unwrap();
    let request = CallRequest {
        protocol: PROTOCOL_VERSION,
        call_id: call_id.clone(),
        method: "tools/call".into(),
        params: json!({"name": tool, "arguments": {}}),
        reply_to,
        deadline_ms: now_ms() + 30_000,
        lane: Lane::Stateless,
        protocol_version: "2026-07-28".into(),
        client_capabilities: json!({}),
        reply_durable: false,
        task_id: None,
        cancel_on: None,
        principal: None,
    };
    let mut body: Value = serde_json::from_slice(&encode(&request)).unwrap();
    if let Some(p) = principal {
        body["principal"] = p;
    }
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::MSG_ID, call_id.as_str());
    jetstream::new(nats.clone())
        .publish_with_headers(
            subjects::call(&PoolName::new(pool).unwrap()),
            h,
            serde_json::to_vec(&body).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        let reply: CallReply = decode(&msg.payload).unwrap();
        if matches!(
            reply.event,
            CallEvent::Result { .. } | CallEvent::Error { .. }
        ) {
            return Some(reply.event);
        }
    }
    None
}

/// Calls `tool` of `pool` as alice, then without a caller, then with a malformed principal,
/// and checks what each brings back: alice's identity, no `principal`, and for the malformed
/// one a `malformed_call` error instead of a result.
async fn assert_reports_the_caller(c: &Cluster, pool: &str, tool: &str) {
    let nats = c.nats.client().await;
    let with = call(&nats, pool, tool, Some(alice()), ANSWER)
        .await
        .unwrap_or_else(|| panic!("{tool} did not answer"));
    let out = &with["structuredContent"];
    assert_eq!(out["principal"]["subject"], "alice", "{with}");
    assert_eq!(
        out["principal"]["scopes"],
        json!(["tools:read", "tools:call"]),
        "{with}"
    );
    assert_eq!(out["principal"]["issuer"], "https://issuer.test", "{with}");
    assert_eq!(
        out["principal"]["claims"],
        json!({"groups": ["ops"]}),
        "{with}"
    );
    assert!(out["instance"].is_string(), "{with}");

    let without = call(&nats, pool, tool, None, ANSWER)
        .await
        .unwrap_or_else(|| panic!("{tool} did not answer"));
    let out = &without["structuredContent"];
    assert!(out["instance"].is_string(), "{without}");
    assert!(out.get("principal").is_none(), "{without}");

    // A malformed principal never runs the tool, leaves the queue at once rather than after
    // redeliveries, and the worker serves the next call.
    let bad = json!({"issuer": "https://issuer.test", "subject": ["alice"]});
    let reply = final_reply(&nats, pool, tool, Some(bad), SILENCE).await;
    match reply {
        Some(CallEvent::Error { error }) => {
            assert_eq!(error.code, -32603, "{error:?}");
            assert_eq!(
                error.data.as_ref().and_then(|d| d.get("reason")),
                Some(&json!("malformed_call")),
                "{error:?}"
            );
        }
        reply => panic!("a malformed principal got {reply:?}"),
    }
    let stream = jetstream::new(nats.clone())
        .get_stream(topology::CALLS_STREAM)
        .await
        .unwrap();
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        0,
        "the malformed call is still queued: it was not terminated"
    );
    assert!(
        call(&nats, pool, tool, Some(alice()), ANSWER)
            .await
            .is_some(),
        "the worker stopped serving after a malformed principal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_demo_whoami_names_the_verified_caller() {
    let c = harness::demo_cluster(1, &[]).await;
    assert_reports_the_caller(&c, "demo", "whoami").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_worker_sees_the_verified_caller() {
    let c = Cluster::start(1, &[]).await.unwrap();
    let _worker = start_python_example_worker(&c);
    c.wait_for_tools(&PY_EXAMPLE_TOOLS, Duration::from_secs(20))
        .await
        .unwrap();
    assert_reports_the_caller(&c, "py-example", "py_whoami").await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A call id unique within the test run.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("principal{:016x}", N.fetch_add(1, Ordering::Relaxed))
}
