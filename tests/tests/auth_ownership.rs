//! With access tokens on, everything a client holds is bound to its principal, and what it
//! may see is decided by the authorization policy, against a real authorization server
//! (oidc-provider, `harness::oidc`) and two gateways:
//! - alice's session, its streams and their resumption, her tasks, the answers to her
//!   questions and her `requestState` are refused to bob, as if they did not exist;
//! - the policy shows alice (group `eng`) every tool and bob (group `ops`) only two, and a
//!   tool bob may not use is answered exactly like one that does not exist;
//! - a worker sees the verified caller (`whoami`), never the token.

use std::time::Duration;

use harness::mcp::{self, Resp, ACCEPT_BOTH, MODERN};
use harness::oidc::AuthServer;
use harness::sse::SseStream;
use harness::{texts, Cluster};
use serde_json::{json, Value};

const AUDIENCE: &str = "https://mcp.example.test/mcp";
const WAIT: Duration = Duration::from_secs(20);
/// Every attack here finishes within this, or fails.
const BOUND: Duration = Duration::from_secs(30);

struct Setup {
    cluster: Cluster,
    /// mcp-client: group `eng`, may use everything.
    alice: String,
    /// mcp-es256: group `ops`, may use `echo` and `whoami`.
    bob: String,
    _server: AuthServer,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = AuthServer::start(dir.path(), "oidc", AUDIENCE).expect("provider starts");
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"rules": [
            {"when": {"scopes": ["mcp:tools"]}, "allow": {"tools": ["echo", "whoami"]}},
            {"when": {"claims": {"groups": ["eng"]}}, "allow": {"pools": ["*"]}},
        ]})
        .to_string(),
    )
    .unwrap();
    let issuer = server.issuer();
    let args = [
        "--auth-issuer",
        &issuer,
        "--auth-audience",
        AUDIENCE,
        "--auth-required-scope",
        "mcp:tools",
        "--auth-claim",
        "groups",
        "--auth-policy",
        policy.to_str().unwrap(),
    ];
    let mut cluster = Cluster::start(2, &args).await.expect("cluster starts");
    cluster.add_worker(&["demo"]).unwrap();
    cluster.add_worker(&["conformance"]).unwrap();
    let alice = server
        .token("mcp-client", AUDIENCE, "mcp:tools")
        .await
        .unwrap();
    let bob = server
        .token("mcp-es256", AUDIENCE, "mcp:tools")
        .await
        .unwrap();
    let setup = Setup {
        cluster,
        alice,
        bob,
        _server: server,
        _dir: dir,
    };
    // Both workers registered, as alice (who sees everything) finds on both gateways.
    for url in setup.cluster.gateway_urls() {
        let until = tokio::time::Instant::now() + WAIT;
        loop {
            let names = tool_names(&url, &setup.alice).await;
            if ["whoami", "confirm_delete", "test_sampling"]
                .iter()
                .all(|t| names.iter().any(|n| n == t))
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "tools never listed: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    setup
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 2026-07-28 request as `token`, `_meta` filled in (fields given in `params._meta` win).
async fn stateless(url: &str, token: &str, method: &str, mut params: Value) -> Resp {
    let mut meta = mcp::modern_meta();
    if let (Some(m), Some(given)) = (meta.as_object_mut(), params["_meta"].as_object()) {
        m.extend(given.clone());
    }
    params["_meta"] = meta;
    let auth = bearer(token);
    let mut headers = vec![
        ("mcp-protocol-version", MODERN),
        ("mcp-method", method),
        ("authorization", auth.as_str()),
    ];
    let name = params
        .get("name")
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(n) = &name {
        headers.push(("mcp-name", n));
    }
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    mcp::post(url, &headers, &msg).await.unwrap()
}

async fn tool_names(url: &str, token: &str) -> Vec<String> {
    let r = stateless(url, token, "tools/list", json!({})).await;
    let msg = r.response().unwrap();
    msg["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A 2025-11-25 session of `token` that can be asked for samples and elicitations.
async fn initialize(url: &str, token: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"sampling": {}, "elicitation": {}},
        "clientInfo": {"name": "mcpbus-tests", "version": "0"}}});
    let auth = bearer(token);
    let r = mcp::post(url, &[("authorization", &auth)], &init)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("mcp-session-id").unwrap().to_owned()
}

/// A message in session `sid` as `token`.
async fn in_session(url: &str, token: &str, sid: &str, msg: &Value) -> Resp {
    let auth = bearer(token);
    let headers = [
        ("authorization", auth.as_str()),
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    tokio::time::timeout(BOUND, mcp::post(url, &headers, msg))
        .await
        .expect("answered in time")
        .unwrap()
}

fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 42, "method": method, "params": params})
}

/// A request in session `sid` whose SSE response stays open.
async fn stream(url: &str, token: &str, sid: &str, method: &str, params: Value) -> SseStream {
    let req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("authorization", bearer(token))
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(request(method, params).to_string());
    SseStream::open(req).await.unwrap()
}

/// `GET /mcp` (optionally resuming) or `DELETE /mcp` of session `sid` as `token`.
async fn session_verb(
    url: &str,
    token: &str,
    sid: &str,
    verb: reqwest::Method,
    last: Option<&str>,
) -> Resp {
    let auth = bearer(token);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("accept", "text/event-stream"),
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    if let Some(id) = last {
        headers.push(("last-event-id", id));
    }
    tokio::time::timeout(BOUND, mcp::send_raw(verb, url, &headers))
        .await
        .expect("answered in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_its_streams_and_its_questions_belong_to_their_principal() {
    let s = setup().await;
    let urls = s.cluster.gateway_urls();
    let sid = initialize(&urls[0], &s.alice).await;

    // Alice asks for something that makes the worker ask her for a sample.
    let mut call = stream(
        &urls[0],
        &s.alice,
        &sid,
        "tools/call",
        json!({"name": "test_sampling", "arguments": {"prompt": "hi"}}),
    )
    .await;
    let mut first_id = None;
    let question = loop {
        let e = call.next(WAIT).await.unwrap().expect("stream open");
        first_id = first_id.or(e.id.clone());
        if let Some(m) = e.json().filter(|m| m["method"] == "sampling/createMessage") {
            break m;
        }
    };
    let first_id = first_id.expect("the stream's events have ids");

    // Bob, with a valid token of his own, holds alice's session id and event ids: on either
    // gateway none of them exists for him.
    for url in &urls {
        let listed = in_session(url, &s.bob, &sid, &request("tools/list", json!({}))).await;
        assert_eq!(listed.status, 404, "{}", listed.body);
        let answered = in_session(
            url,
            &s.bob,
            &sid,
            &mcp::sampled(&question["id"], "from bob"),
        )
        .await;
        assert_eq!(answered.status, 404, "{}", answered.body);
        for last in [None, Some(first_id.as_str())] {
            let get = session_verb(url, &s.bob, &sid, reqwest::Method::GET, last).await;
            assert_eq!(get.status, 404, "GET resume {last:?}: {}", get.body);
        }
        let delete = session_verb(url, &s.bob, &sid, reqwest::Method::DELETE, None).await;
        assert_eq!(delete.status, 404, "{}", delete.body);
    }
    // Bob's own session cannot answer alice's question either: dropped, as an unknown id.
    let bobs = initialize(&urls[1], &s.bob).await;
    let r = in_session(
        &urls[1],
        &s.bob,
        &bobs,
        &mcp::sampled(&question["id"], "from bob"),
    )
    .await;
    assert_eq!(r.status, 202);

    // Alice's session is untouched: her answer is the one the worker takes.
    let r = in_session(
        &urls[1],
        &s.alice,
        &sid,
        &mcp::sampled(&question["id"], "from alice"),
    )
    .await;
    assert_eq!(r.status, 202);
    let rest = call.collect(WAIT).await.unwrap();
    let done = rest
        .iter()
        .filter_map(|e| e.json())
        .find(|m| m["id"] == 42)
        .expect("final response");
    assert_eq!(texts(&done["result"]), ["LLM response: from alice"]);
    // And she can still resume her own stream, which bob could not.
    let get = session_verb(
        &urls[1],
        &s.alice,
        &sid,
        reqwest::Method::GET,
        Some(&first_id),
    )
    .await;
    assert_eq!(get.status, 200, "{}", get.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_and_request_state_belong_to_their_principal() {
    let s = setup().await;
    let urls = s.cluster.gateway_urls();
    let takes_tasks = json!({"io.modelcontextprotocol/clientCapabilities": {
        "elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}});

    // A 2026-07-28 task of alice's.
    let created = stateless(
        &urls[0],
        &s.alice,
        "tools/call",
        json!({"name": "confirm_delete", "arguments": {"filename": "a.txt"}, "_meta": takes_tasks}),
    )
    .await;
    let created = created.response().unwrap();
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let task = created["result"]["taskId"].as_str().unwrap().to_owned();
    for url in &urls {
        for method in ["tasks/get", "tasks/cancel"] {
            let r = stateless(
                url,
                &s.bob,
                method,
                json!({"taskId": task, "_meta": takes_tasks}),
            )
            .await;
            let msg = r.response().unwrap();
            assert_eq!(msg["error"]["code"], -32602, "{method} by bob: {msg}");
        }
    }
    let mine = stateless(
        &urls[1],
        &s.alice,
        "tasks/get",
        json!({"taskId": task, "_meta": takes_tasks}),
    )
    .await;
    let mine = mine.response().unwrap();
    assert_ne!(mine["result"]["status"], "cancelled", "{mine}");

    // A requestState issued to alice does not open for bob, for the same tool, arguments
    // and answers.
    let capable = json!({"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}});
    let tool = "test_input_required_result_request_state";
    let first = stateless(
        &urls[0],
        &s.alice,
        "tools/call",
        json!({"name": tool, "arguments": {}, "_meta": capable}),
    )
    .await;
    let state = first.response().unwrap()["result"]["requestState"]
        .as_str()
        .expect("an InputRequiredResult")
        .to_owned();
    let retry = json!({"name": tool, "arguments": {}, "_meta": capable, "requestState": state,
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}}});
    let by_bob = stateless(&urls[1], &s.bob, "tools/call", retry.clone()).await;
    assert_eq!(by_bob.status, 400, "{}", by_bob.body);
    let msg = by_bob.response().unwrap();
    assert_eq!(msg["error"]["code"], -32602);
    assert!(
        msg["error"]["message"]
            .as_str()
            .unwrap()
            .contains("different request"),
        "{msg}"
    );
    let by_alice = stateless(&urls[1], &s.alice, "tools/call", retry).await;
    let ok = by_alice.response().unwrap();
    assert!(texts(&ok["result"])[0].starts_with("state-ok"), "{ok}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_shows_each_principal_its_own_tools_and_workers_see_the_caller() {
    let s = setup().await;
    let urls = s.cluster.gateway_urls();
    for url in &urls {
        let bobs = tool_names(url, &s.bob).await;
        assert_eq!(bobs, ["echo", "whoami"]);
        let alices = tool_names(url, &s.alice).await;
        assert!(
            alices.len() > 30 && alices.iter().any(|t| t == "add"),
            "{alices:?}"
        );
    }
    // Filtered per principal: never cacheable as public.
    let list = stateless(&urls[0], &s.bob, "tools/list", json!({})).await;
    assert_eq!(list.response().unwrap()["result"]["cacheScope"], "private");

    // `add` exists, but not for bob: he gets exactly what a tool that never existed gets.
    let args = json!({"a": 1, "b": 2});
    let hidden = stateless(
        &urls[1],
        &s.bob,
        "tools/call",
        json!({"name": "add", "arguments": args}),
    )
    .await;
    let missing = stateless(
        &urls[1],
        &s.bob,
        "tools/call",
        json!({"name": "nosuch", "arguments": args}),
    )
    .await;
    let shape = |r: &Resp, name: &str| {
        let m = r.response().unwrap();
        (
            r.status,
            m["error"]["code"].clone(),
            m["error"]["message"]
                .as_str()
                .unwrap_or("")
                .replace(name, "<tool>"),
        )
    };
    assert!(
        hidden.response().unwrap()["error"].is_object(),
        "{}",
        hidden.body
    );
    assert_eq!(shape(&hidden, "add"), shape(&missing, "nosuch"));
    let sum = stateless(
        &urls[1],
        &s.alice,
        "tools/call",
        json!({"name": "add", "arguments": args}),
    )
    .await;
    assert_eq!(
        sum.response().unwrap()["result"]["structuredContent"]["sum"],
        3.0
    );

    // A listen stream follows only resources its principal may read: bob's subscription to a
    // hidden resource is left out, as one to a resource that does not exist would be.
    for (token, follows) in [(&s.alice, true), (&s.bob, false)] {
        let msg = json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen", "params": {
            "notifications": {"resourceSubscriptions": ["test://static-text"]},
            "_meta": mcp::modern_meta()}});
        let req = reqwest::Client::new()
            .post(&urls[0])
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-protocol-version", MODERN)
            .header("mcp-method", "subscriptions/listen")
            .header("authorization", bearer(token))
            .body(msg.to_string());
        let mut listening = SseStream::open(req).await.unwrap();
        let ack = listening.next(WAIT).await.unwrap().unwrap().json().unwrap();
        let subscribed = &ack["params"]["notifications"]["resourceSubscriptions"];
        assert_eq!(subscribed.is_array(), follows, "{ack}");
    }

    // The worker knows who called, from the gateway: subject, scopes, allow-listed claims.
    for (token, subject, group) in [
        (&s.alice, "mcp-client", "eng"),
        (&s.bob, "mcp-es256", "ops"),
    ] {
        let r = stateless(
            &urls[0],
            token,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await;
        let result = r.response().unwrap()["result"].clone();
        let me = &result["structuredContent"]["principal"];
        assert_eq!(me["subject"], subject, "{result}");
        assert_eq!(me["scopes"], json!(["mcp:tools"]), "{result}");
        assert_eq!(me["claims"]["groups"], json!([group]), "{result}");
        assert!(
            !result.to_string().contains(token.as_str()),
            "the token reached the worker"
        );
    }
}
