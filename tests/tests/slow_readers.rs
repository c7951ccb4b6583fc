//! A client that stops reading costs the gateway a bounded amount of memory (issue 12,
//! finding 5). Stateless lane: the call's buffered replies are capped, so a client that
//! never reads is cut off and the worker told to stop. Session lane: a stream buffers a
//! bounded number of live copies and reads the rest back from JetStream, so a client that
//! pauses still gets every event, in order (the memory bound itself is a benchmark's to
//! measure, not a test's). Bounded: a few calls on loopback.

use std::time::Duration;

use futures::StreamExt;
use harness::mcp::{modern_meta, Session, MODERN};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn a_stateless_client_that_never_reads_is_cut_off() {
    let cluster = harness::demo_cluster(1, &[]).await;
    let addr = cluster.gateway_urls()[0]
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let nats = cluster.nats.client().await;
    let mut cancels = nats
        .subscribe(bus_schema::subjects::CANCEL_WILDCARD)
        .await
        .unwrap();
    nats.flush().await.unwrap();

    // Far more progress than socket buffers hold, on a connection nobody reads.
    let mut params = json!({"name": "slow_count", "arguments": {"n": 400000, "interval_ms": 0}});
    params["_meta"] = modern_meta();
    params["_meta"]["progressToken"] = json!("p");
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: {MODERN}\r\n\
         mcp-method: tools/call\r\nmcp-name: slow_count\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    silent.write_all(request.as_bytes()).await.unwrap();

    // The gateway calls the work off while the client still holds the connection.
    let cancel = tokio::time::timeout(Duration::from_secs(120), cancels.next())
        .await
        .expect("the unread call was cut off within two minutes");
    assert!(cancel.is_some());
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_client_that_pauses_loses_nothing() {
    let cluster = harness::demo_cluster(1, &[]).await;
    let url = &cluster.gateway_urls()[0];
    let session = Session::open(url, "2025-11-25").await.unwrap();
    let n: u32 = 5_000;
    let mut stream = session
        .stream_request(
            "tools/call",
            json!({"name": "slow_count", "arguments": {"n": n, "interval_ms": 0},
                   "_meta": {"progressToken": "p"}}),
        )
        .await
        .unwrap();
    // Stop reading while the worker produces more than the stream's live buffer. (Whether
    // live copies are dropped depends on how much the kernel's socket buffers absorb first;
    // either way nothing may be lost.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    every_step_then_the_count(&mut stream, n).await;
}

/// A session client that stops reading altogether is cut off at the write deadline, which
/// frees what its stream held; resuming with `Last-Event-ID` then gets every event and the
/// result: nothing was lost with the connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_client_that_stops_reading_is_cut_off_then_resumes_losing_nothing() {
    let cluster = harness::demo_cluster(1, &["--write-timeout-secs", "2"]).await;
    let gateway = &cluster.gateways[0];
    let session = Session::open(&gateway.mcp_url(), "2025-11-25")
        .await
        .unwrap();
    // A client that reads the response head and the priming event, then nothing. 2,000
    // padded events are 16 MB, more than loopback socket buffers absorb (4 MB to send, a
    // 4 KB receive buffer here), and fewer than the per-stream event bound, so every event
    // is kept for resuming.
    let n: u32 = 2_000;
    let params = json!({"name": "slow_count", "arguments": {"n": n, "interval_ms": 0, "pad": 8192},
        "_meta": {"progressToken": "p"}});
    let body =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}).to_string();
    let addr = gateway.base_url().trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-11-25\r\n\
         mcp-session-id: {}\r\ncontent-length: {}\r\n\r\n{body}",
        session.id,
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut silent = socket.connect(addr.parse().unwrap()).await.unwrap();
    silent.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let priming = loop {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
            .await
            .expect("the response starts")
            .unwrap();
        assert!(read > 0, "closed before the priming event");
        head.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&head).into_owned();
        if let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .filter(|_| text.contains("\n\n"))
        {
            break id.trim().to_owned();
        }
    };

    let cut = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("mcpbus_connections_timed_out_total{reason=\"write_timeout\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let until = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let metrics = reqwest::get(gateway.metrics_url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if cut(&metrics) >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "the unread stream was never cut off"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(silent);

    let mut rest = session.get_stream(Some(&priming)).await.unwrap();
    every_step_then_the_count(&mut rest, n).await;
}

/// Reads a `slow_count` stream to its result: progress 1..=n in order, none missing, then the
/// count.
async fn every_step_then_the_count(stream: &mut harness::sse::SseStream, n: u32) {
    let mut expected = 1;
    loop {
        let e = stream
            .next(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the stream ends with the result");
        let Some(msg) = e.json() else { continue };
        if msg["method"] == "notifications/progress" {
            let progress = msg["params"]["progress"].as_f64().unwrap();
            assert_eq!(progress, f64::from(expected), "in order, none missing");
            expected += 1;
        } else if msg.get("result").is_some() {
            assert_eq!(msg["result"]["structuredContent"]["count"], json!(n));
            break;
        }
    }
    assert_eq!(expected, n + 1, "every progress event arrived");
}
