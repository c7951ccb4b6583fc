//! Handles belong to their owners: a question a worker asks one session can only be answered
//! by that session, and a task made in a session is invisible to anyone outside it, whatever
//! node or lane they come through. (With auth on, the principal is part of the owner too:
//! see `auth.rs`.)

use std::time::Duration;

use harness::mcp::{sampled, stateless, Session};
use harness::{texts, Cluster};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

async fn cluster() -> Cluster {
    harness::conformance_cluster(2, &[]).await
}

/// A 2025-11-25 session that declares sampling and elicitation.
async fn session(url: &str) -> Session {
    let capabilities = json!({"sampling": {}, "elicitation": {}});
    Session::open_declaring(url, "2025-11-25", capabilities)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn another_session_cannot_answer_a_sessions_question() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let owner = session(&urls[0]).await;
    let intruder = session(&urls[1]).await;
    let mut stream = owner
        .stream_request(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "hi"}}),
        )
        .await
        .unwrap();
    let question = loop {
        let e = stream.next(WAIT).await.unwrap().expect("stream open");
        if let Some(m) = e.json().filter(|m| m["method"] == "sampling/createMessage") {
            break m;
        }
    };
    let id = question["id"].as_str().unwrap().to_owned();
    // The intruder knows the id (leaked, or guessed from the call id inside it), and tries it
    // as issued, without its tag, and with the tag of another request number.
    let untagged = id.rsplit_once(':').unwrap().0.to_owned();
    for forged in [id.clone(), untagged.clone(), format!("{untagged}:AAAA")] {
        let r = intruder
            .post(&sampled(&json!(forged), "from the intruder"))
            .await
            .unwrap();
        assert_eq!(
            r.status, 202,
            "answers to unknown ids are dropped, as JSON-RPC allows"
        );
    }
    // The worker is still waiting: the owner's answer is the one it takes.
    let r = owner
        .via(&urls[1])
        .post(&sampled(&json!(id), "from the owner"))
        .await
        .unwrap();
    assert_eq!(r.status, 202);
    let rest = stream.collect(WAIT).await.unwrap();
    let response = rest
        .iter()
        .filter_map(|e| e.json())
        .find(|m| m["id"] == 42)
        .expect("final response");
    assert_eq!(texts(&response["result"]), ["LLM response: from the owner"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_task_is_unknown_outside_its_session_on_either_lane() {
    let c = cluster().await;
    let urls = c.gateway_urls();
    let owner = session(&urls[0]).await;
    let created = owner
        .request(
            "tools/call",
            json!({"name": "confirm_delete", "arguments": {"filename": "b.txt"},
                "task": {"ttl": 60000}}),
        )
        .await
        .unwrap()
        .response()
        .unwrap();
    let task = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();

    // The 2026-07-28 lane has no session: a task made in one is not its to read or cancel.
    let meta = json!({"io.modelcontextprotocol/clientCapabilities": {
        "extensions": {"io.modelcontextprotocol/tasks": {}}}});
    for method in ["tasks/get", "tasks/cancel"] {
        for url in &urls {
            let r = stateless(url, method, json!({"taskId": task, "_meta": meta}))
                .await
                .unwrap();
            let msg = r.response().unwrap();
            assert_eq!(msg["error"]["code"], -32602, "{method} via {url}: {msg}");
        }
    }
    // Another session neither.
    let stranger = session(&urls[1]).await;
    for method in ["tasks/get", "tasks/cancel", "tasks/result"] {
        let r = stranger
            .request(method, json!({"taskId": task}))
            .await
            .unwrap();
        assert_eq!(r.error_code(), Some(-32602), "{method}");
    }
    // The owner's task is untouched by all that.
    let t = owner
        .request("tasks/get", json!({"taskId": task}))
        .await
        .unwrap()
        .response()
        .unwrap();
    assert_ne!(t["result"]["status"], "cancelled", "{t}");
}
