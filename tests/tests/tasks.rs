//! Tasks (2026-07-28 `io.modelcontextprotocol/tasks` extension) with their state in
//! JetStream: a task made through one gateway is read, answered and cancelled through
//! another, and outlives the gateway that made it.

use std::time::Duration;

use harness::mcp::{stateless, Resp};
use harness::{texts, Cluster, CONFORMANCE_TOOLS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn cluster() -> Cluster {
    let mut c = Cluster::start(2, &[]).await.unwrap();
    c.add_worker(&["conformance"]).unwrap();
    c.wait_for_tools(&CONFORMANCE_TOOLS, WAIT).await.unwrap();
    c
}

/// Client capabilities that take tasks and can answer elicitations.
fn takes_tasks() -> Value {
    json!({"io.modelcontextprotocol/clientCapabilities": {
        "elicitation": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}})
}

async fn request(url: &str, method: &str, mut params: Value) -> Resp {
    params["_meta"] = takes_tasks();
    stateless(url, method, params).await.unwrap()
}

fn result(r: &Resp) -> Value {
    let msg = r.response().unwrap();
    assert!(msg.get("error").is_none(), "unexpected error: {msg}");
    msg["result"].clone()
}

async fn start(url: &str, tool: &str, arguments: Value) -> String {
    let created = result(
        &request(
            url,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
        .await,
    );
    assert_eq!(created["resultType"], "task", "{created}");
    assert_eq!(created["status"], "working");
    created["taskId"].as_str().unwrap().to_owned()
}

async fn get(url: &str, task: &str) -> Value {
    result(&request(url, "tasks/get", json!({"taskId": task})).await)
}

/// Polls `tasks/get` on `url` until the task reaches `status`.
async fn wait_for(url: &str, task: &str, status: &str) -> Value {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let t = get(url, task).await;
        if t["status"] == status {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "task never became {status}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_made_on_one_node_is_answered_and_finished_through_another() {
    let c = cluster().await;
    let urls = c.gateway_urls();

    let task = start(&urls[0], "confirm_delete", json!({"filename": "a.txt"})).await;
    // Readable at once on the other node (the record is durable before the answer).
    assert!(get(&urls[1], &task).await["taskId"] == task.as_str());
    let asking = wait_for(&urls[1], &task, "input_required").await;
    assert_eq!(
        asking["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let ack = result(
        &request(
            &urls[1],
            "tasks/update",
            json!({"taskId": task, "inputResponses": {
                "confirm": {"action": "accept", "content": {"confirm": true}}}}),
        )
        .await,
    );
    assert_eq!(ack["resultType"], "complete");
    assert!(ack.get("status").is_none(), "an ack carries no task: {ack}");
    let done = wait_for(&urls[0], &task, "completed").await;
    assert_eq!(texts(&done["result"]), vec!["deleted a.txt"]);
    // Each state change is counted once in the cluster, by the gateway whose write made it:
    // created working, asking, working again with the answer, completed.
    for (state, want) in [
        ("working", 2.0),
        ("input_required", 1.0),
        ("completed", 1.0),
    ] {
        let series = format!("mcpbus_tasks_total{{state=\"{state}\"}}");
        let mut counted = 0.0;
        for gateway in &c.gateways {
            counted += gateway.metric(&series).await.unwrap_or(0.0);
        }
        assert_eq!(counted, want, "tasks reaching {state}");
    }

    // Unknown ids, and clients that did not declare the extension.
    let r = request(&urls[0], "tasks/get", json!({"taskId": "0123abcd"})).await;
    assert_eq!(r.error_code(), Some(-32602));
    let r = stateless(&urls[0], "tasks/get", json!({"taskId": task}))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code()), (400, Some(-32021)));
    // Without the extension a task-supporting tool runs as an ordinary call.
    let r = stateless(
        &urls[0],
        "tools/call",
        json!({"name": "slow_compute", "arguments": {"seconds": 0, "label": "sync"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.response().unwrap()["result"]["resultType"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_outlives_the_gateway_that_made_it() {
    let mut c = cluster().await;
    let urls = c.gateway_urls();
    let task = start(
        &urls[0],
        "slow_compute",
        json!({"seconds": 2, "label": "survivor"}),
    )
    .await;
    c.gateways[0].proc.kill9();
    let done = wait_for(&urls[1], &task, "completed").await;
    assert_eq!(texts(&done["result"]), vec!["survivor: computed in 2 s"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_stops_the_work_wherever_it_runs() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let task = start(
        &urls[0],
        "slow_compute",
        json!({"seconds": 3, "label": "doomed"}),
    )
    .await;
    wait_for(&urls[1], &task, "working").await;
    let ack = result(&request(&urls[1], "tasks/cancel", json!({"taskId": task})).await);
    assert_eq!(ack["resultType"], "complete");
    // Past the time the work would have taken, the task is still cancelled, not completed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(get(&urls[0], &task).await["status"], "cancelled");
    // Cancelling again is acknowledged and changes nothing.
    let again = result(&request(&urls[0], "tasks/cancel", json!({"taskId": task})).await);
    assert_eq!(again["resultType"], "complete");
    // The worker was told: its log shows the call cancelled, not finished.
    let log = std::fs::read_to_string(c.dir.path().join("worker-0.log")).unwrap_or_default();
    assert!(log.contains("call cancelled"), "worker log:\n{log}");
}

/// A 2025-11-25 session that can answer elicitations.
async fn legacy_session(url: &str) -> (harness::mcp::Session, Value) {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "mcpbus-tests", "version": "0"}}});
    let r = harness::mcp::post(url, &[], &init).await.unwrap();
    let session = harness::mcp::Session {
        url: url.to_owned(),
        id: r.header("mcp-session-id").unwrap().to_owned(),
        version: "2025-11-25".into(),
    };
    (session, result(&r))
}

#[tokio::test(flavor = "multi_thread")]
async fn session_lane_tasks_follow_the_2025_11_25_rules_on_any_node() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let (session, init) = legacy_session(&urls[0]).await;
    assert_eq!(
        init["capabilities"]["tasks"],
        json!({"cancel": {}, "requests": {"tools": {"call": {}}}})
    );
    let other_node = session.via(&urls[1]);

    // A task-augmented call, answered while the client waits on tasks/result.
    let created = result(
        &session
            .request(
                "tools/call",
                json!({"name": "confirm_delete", "arguments": {"filename": "b.txt"},
                    "task": {"ttl": 60000}}),
            )
            .await
            .unwrap(),
    );
    let task = created["task"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(created["task"]["status"], "working");
    assert_eq!(created["task"]["ttl"], 60000);
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let t = result(
            &other_node
                .request("tasks/get", json!({"taskId": task}))
                .await
                .unwrap(),
        );
        if t["status"] == "input_required" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "never input_required: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut waiting = other_node
        .stream_request("tasks/result", json!({"taskId": task}))
        .await
        .unwrap();
    let question = loop {
        let e = waiting.next(WAIT).await.unwrap().expect("stream open");
        if let Some(m) = e.json().filter(|m| m["method"] == "elicitation/create") {
            break m;
        }
    };
    assert_eq!(
        question["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task.as_str()
    );
    let answer = json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "action": "accept", "content": {"confirm": true}}});
    assert_eq!(session.post(&answer).await.unwrap().status, 202);
    let done = loop {
        let e = waiting.next(WAIT).await.unwrap().expect("stream open");
        if let Some(m) = e.json().filter(|m| m.get("result").is_some()) {
            break m;
        }
    };
    assert_eq!(done["id"], 42, "the tasks/result request's own id");
    assert_eq!(texts(&done["result"]), vec!["deleted b.txt"]);
    assert_eq!(
        done["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        task.as_str()
    );
    let t = result(
        &session
            .request("tasks/get", json!({"taskId": task}))
            .await
            .unwrap(),
    );
    assert_eq!(t["status"], "completed");
    // A finished task cannot be cancelled; another session cannot see it at all.
    let r = session
        .request("tasks/cancel", json!({"taskId": task}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
    let (stranger, _) = legacy_session(&urls[1]).await;
    let r = stranger
        .request("tasks/get", json!({"taskId": task}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));

    // Tools called the wrong way for their taskSupport.
    let r = session
        .request(
            "tools/call",
            json!({"name": "greet", "arguments": {"name": "x"}, "task": {}}),
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32601));
    let r = session
        .request(
            "tools/call",
            json!({"name": "failing_job", "arguments": {}}),
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32601));

    // Cancelling a running task: cancelled at once, and tasks/result says there is none.
    let created = result(
        &session
            .request(
                "tools/call",
                json!({"name": "slow_compute", "arguments": {"seconds": 30}, "task": {}}),
            )
            .await
            .unwrap(),
    );
    let task = created["task"]["taskId"].as_str().unwrap().to_owned();
    let cancelled = result(
        &other_node
            .request("tasks/cancel", json!({"taskId": task}))
            .await
            .unwrap(),
    );
    assert_eq!(cancelled["status"], "cancelled");
    let r = session
        .request("tasks/result", json!({"taskId": task}))
        .await
        .unwrap();
    assert_eq!(r.error_code(), Some(-32602));
}
