//! `Nats-Msg-Id` de-duplication: a call published twice (a gateway retrying after a lost
//! acknowledgement) is stored once and runs once.

use std::time::Duration;

use async_nats::jetstream;
use bus_schema::messages::{decode, encode, CallEvent, CallReply, CallRequest, Lane};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::{headers, subjects, PROTOCOL_VERSION};
use futures::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_republished_call_runs_once() {
    let cluster = harness::demo_cluster(1, &[]).await;
    let nats = cluster.nats.client().await;
    let js = jetstream::new(nats.clone());
    let me = InstanceId::new("test-gateway").unwrap();
    let call_id = "dedup0000000001";
    let reply_to = subjects::call_reply(&PoolName::new("demo").unwrap(), &me, call_id);
    let mut replies = nats.subscribe(reply_to.clone()).await.unwrap();
    let request = CallRequest {
        protocol: PROTOCOL_VERSION,
        call_id: call_id.into(),
        method: "tools/call".into(),
        params: json!({"name": "whoami", "arguments": {}}),
        reply_to,
        deadline_ms: (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 30_000) as u64,
        lane: Lane::Session,
        protocol_version: "2025-11-25".into(),
        client_capabilities: json!({}),
        reply_durable: false,
        task_id: None,
        cancel_on: None,
        principal: None,
    };
    let subject = subjects::call(&PoolName::new("demo").unwrap());
    let mut acks = Vec::new();
    for _ in 0..2 {
        let mut h = async_nats::HeaderMap::new();
        h.insert(headers::MSG_ID, call_id);
        let ack = js
            .publish_with_headers(subject.clone(), h, encode(&request))
            .await
            .unwrap()
            .await
            .unwrap();
        acks.push(ack);
    }
    assert!(!acks[0].duplicate);
    assert!(
        acks[1].duplicate,
        "the second publish is recognised as a duplicate"
    );
    assert_eq!(acks[0].sequence, acks[1].sequence);

    let mut results = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        let reply: CallReply = decode(&msg.payload).unwrap();
        if matches!(reply.event, CallEvent::Result { .. }) {
            results += 1;
        }
    }
    assert_eq!(results, 1, "the call ran exactly once");
}
