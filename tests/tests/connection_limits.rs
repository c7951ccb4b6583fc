//! Slowloris and connection floods (issue 12, finding 3). A gateway closes connections that
//! send half a request head or sit idle after a request, never cuts an open SSE stream for
//! being quiet, and refuses connections over `--max-connections` while it keeps serving the
//! ones it holds. Every attack is bounded in count and time, on loopback only.

use std::time::Duration;

use anyhow::{bail, Result};
use bus_schema::messages::BroadcastKind;
use harness::mcp::{listen, Session};
use harness::Cluster;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Short deadlines, so that the tests wait seconds, not minutes.
const SHORT_DEADLINES: [&str; 4] = [
    "--header-read-timeout-secs",
    "1",
    "--idle-timeout-secs",
    "1",
];
/// How long a connection past its 1 s deadline may take to be closed: generous for a loaded
/// machine, and far below "for ever", which is what happened before.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(10);

/// Whether the server closes `stream` (end of file or reset) within `within`; anything it
/// sends first (say a 503) is read and ignored.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends `GET path` on a kept-alive connection and returns the whole response (head and a
/// `content-length` body); an error if the server closes the connection first.
async fn get_on(stream: &mut TcpStream, path: &str) -> Result<String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf)).await??;
        if n == 0 {
            bail!(
                "closed by the server after {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= head_end + 4 + length {
                return Ok(text);
            }
        }
    }
}

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connecting to the gateway")
}

/// The value of one series in `/metrics`, read over a fresh connection.
async fn metric(port: u16, series: &str) -> f64 {
    let mut stream = connect(port).await;
    let text = get_on(&mut stream, "/metrics").await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_request_heads_are_closed_by_the_header_deadline() {
    let cluster = Cluster::start(1, &SHORT_DEADLINES).await.unwrap();
    let port = cluster.gateways[0].port;
    let mut attackers = Vec::new();
    for _ in 0..50 {
        let mut stream = connect(port).await;
        stream
            .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
            .await
            .unwrap();
        attackers.push(stream);
    }
    let closed =
        futures::future::join_all(attackers.iter_mut().map(|s| closed_within(s, CLOSE_WITHIN)))
            .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(
        open, 0,
        "{open} of 50 half-sent heads still hold a connection"
    );
    assert!(
        metric(
            cluster.gateways[0].metrics_port,
            "mcpbus_connections_timed_out_total{reason=\"header_timeout\"} "
        )
        .await
            >= 50.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_request_head_is_refused_not_buffered() {
    let cluster = Cluster::start(1, &[]).await.unwrap();
    let mut stream = connect(cluster.gateways[0].port).await;
    // 40 KB of header: over the 32 KiB default, far under hyper's own ~400 KB.
    let big = "a".repeat(40 * 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "a 40 KB head was served: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_trickled_a_byte_at_a_time_is_closed_too() {
    let cluster = Cluster::start(1, &SHORT_DEADLINES).await.unwrap();
    let mut stream = connect(cluster.gateways[0].port).await;
    // Each byte arrives well within any per-read timeout; the head as a whole never does.
    let start = Instant::now();
    let mut closed = false;
    for byte in b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaa".iter() {
        if start.elapsed() > CLOSE_WITHIN || stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        if closed_within(&mut stream, Duration::from_millis(250)).await {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a head trickled over {:?} was still being read",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed_after_it_served() {
    let cluster = Cluster::start(1, &SHORT_DEADLINES).await.unwrap();
    let port = cluster.gateways[0].port;
    let mut stream = connect(port).await;
    // Keep-alive works: two requests on the one connection.
    for _ in 0..2 {
        let response = get_on(&mut stream, "/healthz").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert!(
        closed_within(&mut stream, CLOSE_WITHIN).await,
        "an idle keep-alive connection was still open after {CLOSE_WITHIN:?}"
    );
    assert!(
        metric(
            cluster.gateways[0].metrics_port,
            "mcpbus_connections_timed_out_total{reason=\"idle_timeout\"} "
        )
        .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_sse_streams_outlive_the_idle_deadline() {
    let cluster = Cluster::start(1, &SHORT_DEADLINES).await.unwrap();
    let url = cluster.gateway_urls()[0].clone();
    let session = Session::open(&url, "2025-11-25").await.unwrap();
    let mut standalone = session.get_stream(None).await.unwrap();
    standalone.next(WAIT).await.unwrap().expect("priming event");
    let mut listening = listen(&url, 7, json!({"toolsListChanged": true}))
        .await
        .unwrap();
    listening
        .next(WAIT)
        .await
        .unwrap()
        .expect("acknowledgement");

    // Three idle deadlines without a byte on either stream (keep-alives come every 15 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster
        .nats
        .publish_broadcast(BroadcastKind::ToolsListChanged)
        .await;
    for (name, stream) in [("standalone", &mut standalone), ("listen", &mut listening)] {
        loop {
            let event = stream
                .next(WAIT)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("the {name} stream was closed while open"));
            if event.data.contains("notifications/tools/list_changed") {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_refused_while_the_others_are_served() {
    let cluster = Cluster::start(1, &["--max-connections", "5"])
        .await
        .unwrap();
    let port = cluster.gateways[0].port;
    // The harness's readiness probe may still hold a slot for a moment: retry until five
    // connections of our own are served.
    let mut held = Vec::new();
    let start = Instant::now();
    while held.len() < 5 {
        assert!(start.elapsed() < WAIT, "could not open 5 connections");
        let mut stream = connect(port).await;
        match get_on(&mut stream, "/healthz").await {
            Ok(r) if r.starts_with("HTTP/1.1 200") => held.push(stream),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    let mut sixth = connect(port).await;
    let refused = match get_on(&mut sixth, "/healthz").await {
        Ok(response) => {
            assert!(
                response.starts_with("HTTP/1.1 503"),
                "the sixth connection was served: {response}"
            );
            closed_within(&mut sixth, CLOSE_WITHIN).await
        }
        Err(_) => true,
    };
    assert!(refused, "the sixth connection was not closed");

    for stream in &mut held {
        let response = get_on(stream, "/healthz").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    drop(held.pop());
    let start = Instant::now();
    loop {
        let mut stream = connect(port).await;
        let reused = get_on(&mut stream, "/healthz")
            .await
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"));
        // Metrics are on their own listener (--metrics-listen), outside the MCP port's cap.
        let mut scrape = connect(cluster.gateways[0].metrics_port).await;
        if let (true, Ok(text)) = (reused, get_on(&mut scrape, "/metrics").await) {
            if text.starts_with("HTTP/1.1 200") {
                let refused = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("mcpbus_refused_total{limit=\"max_connections\"} ")
                    })
                    .and_then(|v| v.trim().parse::<f64>().ok());
                assert!(refused >= Some(1.0), "{text}");
                break;
            }
        }
        assert!(start.elapsed() < WAIT, "a freed slot was not reused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
