//! `mcpbus-bench fanout`: one cluster-wide notification delivered to many open streams.
//!
//! Opens N `subscriptions/listen` streams spread evenly over two gateways (raw HTTP/1.1 on
//! loopback, one TCP connection each; or with `--http2 K`, HTTP/2 in cleartext with K streams
//! sharing each connection, as behind an ingress), then publishes a `tools_list_changed` event to the
//! broadcast stream exactly as a gateway does on a catalogue change, and measures, for every
//! stream, the time from just before that publish to the notification's arrival. Also reads
//! the gateways' resident memory before and after opening the streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream;
use bus_schema::messages::{encode, BroadcastEvent, BroadcastKind};
use bus_schema::{headers, subjects};
use bytes::Bytes;
use clap::Parser;
use harness::mcp::{modern_meta, MODERN};
use harness::Cluster;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use crate::echo::percentile_ms;

/// Streams being opened at once (measured: the memory figure is the same at 1 and at 32).
const OPEN_CONCURRENCY: usize = 16;

#[derive(Parser)]
pub struct Args {
    /// Numbers of open streams to measure with.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    streams: Vec<usize>,
    /// Notifications sent per stream count.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Open the streams over HTTP/2 in cleartext (h2c), this many sharing each connection
    /// (at most the gateway's `--http2-max-streams`, 256 by default). Without it, HTTP/1.1
    /// with one connection per stream.
    #[arg(long)]
    http2: Option<usize>,
}

/// An open listen stream, read until its acknowledgement.
enum Opened {
    Http1(TcpStream),
    Http2(Incoming),
}

pub async fn run(args: Args) -> Result<()> {
    // The baseline gets gateways of its own: memory freed by its connections would otherwise
    // be reused by the streams and hide their cost.
    // Thousands of clients on one address: quotas out of the way.
    // And the node caps on streams and connections, for 50,000 streams over two gateways.
    let mut quotas_off = harness::LOAD_FROM_LOOPBACK.to_vec();
    quotas_off.extend([
        "--max-open-streams",
        "100000",
        "--max-connections",
        "100000",
    ]);
    let baseline = idle_connection_cost(&Cluster::start(2, &quotas_off).await?, 2000).await?;
    let cluster = Cluster::start(2, &quotas_off).await?;
    let js = jetstream::new(cluster.nats.client().await);
    println!(
        "Baseline: an idle HTTP/1.1 keep-alive connection (after one GET /healthz) costs the \
         gateways {baseline} bytes of RSS.\n"
    );
    let protocol = match args.http2 {
        Some(k) => format!("HTTP/2, {k} streams per connection"),
        None => "HTTP/1.1, a connection per stream".to_owned(),
    };
    println!("| Open streams | Gateways | Protocol | Deliveries | p50 (ms) | p99 (ms) | max (ms) | Gateway RSS per idle stream (bytes) |");
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &args.streams {
        // HTTP/2: connection `c` to gateway `c % 2` carries streams `i` with `i / k == c`.
        let mut shared: Vec<SendRequest<Full<Bytes>>> = Vec::new();
        let (tx, mut arrivals) = mpsc::unbounded_channel();
        let mut tasks = Vec::with_capacity(n);
        // Memory is read after the first half is open and again after the second, so the
        // figure is the marginal cost of an idle stream, not the allocator's warm-up.
        let mut rss = Vec::new();
        for half in [0..n / 2, n / 2..n] {
            let gate = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
            let mut opened = Vec::with_capacity(n / 2);
            for i in half {
                let gate = gate.clone();
                let over = match args.http2 {
                    Some(k) => {
                        let c = i / k.max(1);
                        while shared.len() <= c {
                            let port = cluster.gateways[shared.len() % 2].port;
                            shared.push(connect_http2(port).await?);
                        }
                        Some(shared[c].clone())
                    }
                    None => None,
                };
                let port = match args.http2 {
                    Some(k) => cluster.gateways[(i / k.max(1)) % 2].port,
                    None => cluster.gateways[i % 2].port,
                };
                opened.push(tokio::spawn(async move {
                    let _permit = gate.acquire().await;
                    match over {
                        Some(sender) => open_listen_http2(sender, port, i).await,
                        None => open_listen(port, i).await.map(Opened::Http1),
                    }
                }));
            }
            for handle in opened {
                let stream = handle.await?.context("opening a stream")?;
                tasks.push(tokio::spawn(watch(stream, tx.clone())));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss.push(gateways_rss(&cluster));
        }
        let per_stream = rss[1].saturating_sub(rss[0]) / (n - n / 2) as u64;

        let mut latencies = Vec::with_capacity(n * args.rounds);
        for round in 0..args.rounds {
            let mut h = async_nats::HeaderMap::new();
            h.insert(
                headers::MSG_ID,
                format!("bench:{n}:{round}:{}", std::process::id()).as_str(),
            );
            let body = encode(&BroadcastEvent {
                protocol: bus_schema::PROTOCOL_VERSION,
                kind: BroadcastKind::ToolsListChanged,
            });
            let t0 = Instant::now();
            js.publish_with_headers(subjects::broadcast("tools"), h, body)
                .await?
                .await?;
            for _ in 0..n {
                let at = tokio::time::timeout(Duration::from_secs(60), arrivals.recv())
                    .await
                    .context("a stream missed the notification")?
                    .context("watchers ended")?;
                latencies.push(at.saturating_duration_since(t0));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        latencies.sort();
        println!(
            "| {n} | 2 | {protocol} | {} | {:.1} | {:.1} | {:.1} | {per_stream} |",
            latencies.len(),
            percentile_ms(&latencies, 0.50),
            percentile_ms(&latencies, 0.99),
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        );
        tasks.iter().for_each(|t| t.abort());
        drop(shared);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

/// The marginal resident memory of an idle keep-alive connection that served one
/// `GET /healthz`: what hyper and axum cost per connection before any stream exists.
async fn idle_connection_cost(cluster: &Cluster, n: usize) -> Result<u64> {
    let mut held = Vec::with_capacity(n);
    let mut rss = Vec::new();
    for _ in 0..2 {
        for i in 0..n / 2 {
            let port = cluster.gateways[i % 2].port;
            let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(
                format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
            )
            .await?;
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await?;
            held.push(s);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        rss.push(gateways_rss(cluster));
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(rss[1].saturating_sub(rss[0]) / (n / 2) as u64)
}

/// Opens a listen stream and reads until its acknowledgement.
async fn open_listen(port: u16, id: usize) -> Result<TcpStream> {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}})
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {MODERN}\r\n\
         Mcp-Method: subscriptions/listen\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !contains(&seen, b"subscriptions/acknowledged") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!(
                "closed before the acknowledgement: {}",
                String::from_utf8_lossy(&seen)
            );
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(stream)
}

/// An HTTP/2 connection in cleartext with prior knowledge (h2c), served by its own task.
async fn connect_http2(port: u16) -> Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Opens a listen stream on a shared HTTP/2 connection and reads until its acknowledgement.
async fn open_listen_http2(
    mut sender: SendRequest<Full<Bytes>>,
    port: u16,
    id: usize,
) -> Result<Opened> {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}})
    .to_string();
    let request = hyper::Request::post(format!("http://127.0.0.1:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "subscriptions/listen")
        .body(Full::new(Bytes::from(body)))?;
    sender.ready().await.context("HTTP/2 connection")?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("listen refused: {}", response.status());
    }
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !contains(&seen, b"subscriptions/acknowledged") {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            None => bail!(
                "closed before the acknowledgement: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    Ok(Opened::Http2(body))
}

/// Reports the arrival time of every `list_changed` on the stream.
async fn watch(stream: Opened, tx: mpsc::UnboundedSender<Instant>) {
    match stream {
        Opened::Http1(stream) => watch_http1(stream, tx).await,
        Opened::Http2(body) => watch_http2(body, tx).await,
    }
}

async fn watch_http2(mut body: Incoming, tx: mpsc::UnboundedSender<Instant>) {
    let mut window: Vec<u8> = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = Instant::now();
        window.extend_from_slice(&data);
        while let Some(pos) = find(&window, b"tools/list_changed") {
            let _ = tx.send(at);
            window.drain(..pos + 1);
        }
        if window.len() > 64 {
            window.drain(..window.len() - 64);
        }
    }
}

async fn watch_http1(mut stream: TcpStream, tx: mpsc::UnboundedSender<Instant>) {
    let mut window: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = Instant::now();
        window.extend_from_slice(&buf[..n]);
        while let Some(pos) = find(&window, b"tools/list_changed") {
            let _ = tx.send(at);
            window.drain(..pos + 1);
        }
        // Keep a tail long enough to catch a match split across reads.
        if window.len() > 64 {
            window.drain(..window.len() - 64);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Resident memory of all the cluster's gateways together.
fn gateways_rss(cluster: &Cluster) -> u64 {
    cluster
        .gateways
        .iter()
        .map(|g| rss_bytes(g.proc.pid()))
        .sum()
}

/// Resident set size of a process, from /proc.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
