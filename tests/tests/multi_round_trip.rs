//! Multi round-trip requests (MRTR, 2026-07-28): a worker's `ctx.ask` ends the round with an
//! `InputRequiredResult`; the client retries with its answers and the sealed `requestState`,
//! on any gateway. Tampered, expired, foreign and rotated-out states are refused with -32602.

use std::time::Duration;

use harness::mcp::{stateless, Resp};
use harness::{texts, Cluster, CONFORMANCE_TOOLS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Two secrets of the length the gateway requires.
const OLD_KEY: &str = "old-request-state-key-0123456789abcdef";
const NEW_KEY: &str = "new-request-state-key-0123456789abcdef";

async fn cluster(gateway_args: &[&str]) -> Cluster {
    let mut c = Cluster::start(2, gateway_args).await.unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&CONFORMANCE_TOOLS, WAIT).await.unwrap();
    c
}

/// Every input capability.
fn capable() -> Value {
    json!({"io.modelcontextprotocol/clientCapabilities":
        {"elicitation": {}, "sampling": {}, "roots": {}}})
}

fn accept(content: Value) -> Value {
    json!({"action": "accept", "content": content})
}

/// `tools/call` of `tool` with everything in `extra` added to the params.
async fn call(url: &str, tool: &str, extra: Value) -> Resp {
    let mut params = json!({"name": tool, "arguments": {}, "_meta": capable()});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    stateless(url, "tools/call", params).await.unwrap()
}

fn result(r: &Resp) -> Value {
    let msg = r.response().unwrap();
    assert!(msg.get("error").is_none(), "unexpected error: {msg}");
    msg["result"].clone()
}

/// The JSON-RPC error of a refused request, after checking it is invalid params with 400.
fn invalid_params(r: &Resp) -> String {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), Some(-32602), "{}", r.body);
    r.response().unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_round_may_reach_a_different_node_and_earlier_answers_travel_sealed() {
    let c = cluster(&[]).await;
    let urls = c.gateway_urls();
    let tool = "test_input_required_result_multi_round";

    let r1 = result(&call(&urls[0], tool, json!({})).await);
    assert_eq!(r1["resultType"], "input_required");
    assert_eq!(r1["inputRequests"]["step1"]["method"], "elicitation/create");
    let s1 = r1["requestState"].as_str().unwrap().to_owned();

    // Round 2 on the other node, which shares the cluster key through KV.
    let r2 = result(
        &call(
            &urls[1],
            tool,
            json!({"requestState": s1, "inputResponses": {"step1": accept(json!({"name": "Alice"}))}}),
        )
        .await,
    );
    assert_eq!(r2["resultType"], "input_required");
    assert!(r2["inputRequests"].get("step1").is_none(), "{r2}");
    assert_eq!(r2["inputRequests"]["step2"]["method"], "elicitation/create");
    let s2 = r2["requestState"].as_str().unwrap().to_owned();
    assert_ne!(s1, s2);

    // Round 3 back on the first node: step 1's answer comes out of the state.
    let r3 = result(
        &call(
            &urls[0],
            tool,
            json!({"requestState": s2, "inputResponses": {"step2": accept(json!({"color": "blue"}))}}),
        )
        .await,
    );
    assert_eq!(r3["resultType"], "complete");
    assert_eq!(texts(&r3), vec!["Alice likes blue"]);

    // A retry that leaves out the answer is asked again rather than failed.
    let again = result(
        &call(
            &urls[1],
            tool,
            json!({"requestState": s1, "inputResponses": {"other": accept(json!({}))}}),
        )
        .await,
    );
    assert_eq!(again["resultType"], "input_required");
    assert!(again["inputRequests"].get("step1").is_some());

    // Prompts ask the same way.
    let p1 = stateless(
        &urls[0],
        "prompts/get",
        json!({"name": "test_input_required_result_prompt", "_meta": capable()}),
    )
    .await
    .unwrap();
    let p1 = result(&p1);
    assert_eq!(p1["resultType"], "input_required");
    let p2 = stateless(
        &urls[1],
        "prompts/get",
        json!({"name": "test_input_required_result_prompt", "_meta": capable(),
            "requestState": p1["requestState"],
            "inputResponses": {"user_context": accept(json!({"context": "tests"}))}}),
    )
    .await
    .unwrap();
    let p2 = result(&p2);
    assert_eq!(p2["resultType"], "complete");
    assert_eq!(
        p2["messages"][0]["content"]["text"],
        "Use this context: tests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_foreign_expired_and_malformed_retries_are_refused() {
    let mut c = cluster(&[]).await;
    let urls = c.gateway_urls();
    let tool = "test_input_required_result_request_state";
    let first = result(&call(&urls[0], tool, json!({})).await);
    let state = first["requestState"].as_str().unwrap().to_owned();
    let answer = json!({"confirm": accept(json!({"ok": true}))});

    // Intact: the worker sees a verified state.
    let ok = result(
        &call(
            &urls[1],
            tool,
            json!({"requestState": state, "inputResponses": answer}),
        )
        .await,
    );
    assert!(texts(&ok)[0].starts_with("state-ok"), "{ok}");

    // One character changed in the middle of the payload.
    let mut chars: Vec<char> = state.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'x' { 'y' } else { 'x' };
    let tampered: String = chars.into_iter().collect();
    for bad in [tampered, format!("{state}-TAMPERED")] {
        let r = call(
            &urls[1],
            tool,
            json!({"requestState": bad, "inputResponses": answer}),
        )
        .await;
        assert!(invalid_params(&r).contains("integrity"));
    }
    // The state of one tool is no good for another, nor for other arguments.
    let r = call(
        &urls[0],
        "test_input_required_result_tampered_state",
        json!({"requestState": state, "inputResponses": answer}),
    )
    .await;
    assert!(invalid_params(&r).contains("different request"));
    let r = call(
        &urls[0],
        tool,
        json!({"arguments": {"x": 1}, "requestState": state, "inputResponses": answer}),
    )
    .await;
    assert!(invalid_params(&r).contains("different request"));
    // Malformed retries.
    for extra in [
        json!({"inputResponses": null}),
        json!({"inputResponses": {"confirm": 12345}}),
        json!({"requestState": 7}),
    ] {
        invalid_params(&call(&urls[0], tool, extra).await);
    }

    // A state outlives its TTL: refused.
    let short = c
        .add_gateway(&["--request-state-ttl-secs", "1"])
        .await
        .unwrap()
        .mcp_url();
    let first = result(&call(&short, tool, json!({})).await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = call(
        &short,
        tool,
        json!({"requestState": first["requestState"], "inputResponses": answer}),
    )
    .await;
    assert!(invalid_params(&r).contains("expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_still_opens_old_states_until_it_is_dropped() {
    let mut c = cluster(&["--request-state-keys", OLD_KEY]).await;
    let old = c.gateway_urls()[0].clone();
    let both = format!("{NEW_KEY},{OLD_KEY}");
    let rotated = c
        .add_gateway(&["--request-state-keys", &both])
        .await
        .unwrap()
        .mcp_url();
    let tool = "test_input_required_result_elicitation";
    let answer = json!({"user_name": accept(json!({"name": "Bob"}))});

    // Sealed with the old key, opened by a node that rotated to the new one.
    let first = result(&call(&old, tool, json!({})).await);
    let done = result(
        &call(
            &rotated,
            tool,
            json!({"requestState": first["requestState"], "inputResponses": answer}),
        )
        .await,
    );
    assert_eq!(texts(&done), vec!["Hello, Bob!"]);
    // Sealed with the new key: a node without it refuses, naming the reason.
    let first = result(&call(&rotated, tool, json!({})).await);
    let r = call(
        &old,
        tool,
        json!({"requestState": first["requestState"], "inputResponses": answer}),
    )
    .await;
    assert!(invalid_params(&r).contains("no longer holds"));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_declared_capabilities_are_asked_for() {
    let c = cluster(&[]).await;
    let url = &c.gateway_urls()[0];
    let only_sampling =
        json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}});

    // The tool adapts: it asks only what the client can answer.
    let r = result(
        &call(
            url,
            "test_input_required_result_capabilities",
            only_sampling.clone(),
        )
        .await,
    );
    let asked: Vec<&String> = r["inputRequests"].as_object().unwrap().keys().collect();
    assert_eq!(asked, vec!["capital_question"]);

    // A tool that needs elicitation from a client without it: -32021, naming the capability.
    let r = call(url, "test_input_required_result_elicitation", only_sampling).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let error = r.response().unwrap()["error"].clone();
    assert_eq!(error["code"], -32021);
    assert_eq!(
        error["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
}
