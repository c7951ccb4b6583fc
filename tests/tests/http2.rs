//! HTTP/2 in cleartext (h2c, prior knowledge) on the gateway's one port, beside HTTP/1.1
//! (issue 18, ADR 0028): MCP over it with a real HTTP/2 client (hyper's, and curl's when it is
//! built with nghttp2), listen streams sharing one connection, the per-node stream cap per
//! HTTP/2 stream, and the attacks HTTP/2 adds: more concurrent streams than the cap, and
//! "rapid reset" (CVE-2023-44487). Every attack is bounded in count and time, on loopback.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream;
use bus_schema::messages::{encode, BroadcastEvent, BroadcastKind};
use bus_schema::{headers, subjects};
use bytes::Bytes;
use harness::mcp::{modern_meta, MODERN};
use harness::Cluster;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against a hung test, far above anything a passing run needs.
const WAIT: Duration = Duration::from_secs(20);

async fn connect_h2(port: u16) -> Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .context("h2c handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}

fn post(port: u16, method: &str, body: &Value) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(format!("http://127.0.0.1:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", method)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}

fn listen_request(port: u16, id: u64) -> hyper::Request<Full<Bytes>> {
    post(
        port,
        "subscriptions/listen",
        &json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}}),
    )
}

/// Reads `body` until `needle` has arrived; everything read so far.
async fn read_until(body: &mut Incoming, needle: &str) -> Result<String> {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .context("waiting for the stream")?;
        match frame {
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
            None => bail!("the stream ended before {needle:?}: {seen:?}"),
        }
    }
    Ok(seen)
}

async fn publish_tools_changed(cluster: &Cluster, id: &str) -> Result<()> {
    let js = jetstream::new(cluster.nats.client().await);
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::MSG_ID, id);
    let body = encode(&BroadcastEvent {
        protocol: bus_schema::PROTOCOL_VERSION,
        kind: BroadcastKind::ToolsListChanged,
    });
    js.publish_with_headers(subjects::broadcast("tools"), h, body)
        .await?
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_over_h2c_beside_http1_on_one_port() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let port = cluster.gateways[0].port;
    let mut h2 = connect_h2(port).await?;
    let response = h2
        .send_request(post(
            port,
            "tools/list",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                "params": {"_meta": modern_meta()}}),
        ))
        .await?;
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    // The Host check (DNS rebinding) passed on `:authority` alone: no 421.
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("\"tools\""), "{text}");

    // The same port still speaks HTTP/1.1.
    let http1 = reqwest::Client::builder().http1_only().build()?;
    let health = http1
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await?;
    assert_eq!(health.version(), reqwest::Version::HTTP_11);
    assert!(health.status().is_success());

    // A foreign `:authority` is refused as a foreign Host is.
    let mut wrong = post(
        port,
        "tools/list",
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
            "params": {"_meta": modern_meta()}}),
    );
    *wrong.uri_mut() = format!("http://evil.example:{port}/mcp").parse()?;
    let refused = h2.send_request(wrong).await?;
    assert_eq!(refused.status(), 421);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_speaks_h2c_prior_knowledge() -> Result<()> {
    // scripts/test.sh installs curl (Debian's is built with nghttp2).
    let version = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .context("running curl (apt-get install -y curl)")?;
    anyhow::ensure!(
        String::from_utf8_lossy(&version.stdout).contains("nghttp2"),
        "this curl has no HTTP/2: {}",
        String::from_utf8_lossy(&version.stdout)
    );
    let cluster = Cluster::start(1, &[]).await?;
    let port = cluster.gateways[0].port;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": modern_meta()}})
    .to_string();
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", &format!("mcp-protocol-version: {MODERN}")])
        .args(["-H", "mcp-method: tools/list", "--data", &body])
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("2 200"), "{text}");
    assert!(text.contains("\"tools\""), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_streams_sharing_a_connection_each_get_the_change_once() -> Result<()> {
    let cluster = Cluster::start(1, &harness::LOAD_FROM_LOOPBACK).await?;
    let port = cluster.gateways[0].port;
    let h2 = connect_h2(port).await?;
    let mut bodies = Vec::new();
    for id in 0..8 {
        let response = h2.clone().send_request(listen_request(port, id)).await?;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        read_until(&mut body, "subscriptions/acknowledged").await?;
        bodies.push(body);
    }
    publish_tools_changed(&cluster, "h2-test-1").await?;
    for (id, body) in bodies.iter_mut().enumerate() {
        let mut seen = read_until(body, "tools/list_changed").await?;
        // An event may arrive in several DATA frames: read to its end.
        while !seen[seen.find("tools/list_changed").unwrap_or(0)..].contains("\n\n") {
            seen.push_str(&read_until(body, "\n").await?);
        }
        // Each stream's notification carries its own subscription id.
        let data = seen
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|d| d.contains("tools/list_changed"))
            .expect("a data line");
        let msg: Value = serde_json::from_str(data)?;
        assert_eq!(
            msg["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            json!(id),
            "{msg}"
        );
        assert_eq!(seen.matches("tools/list_changed").count(), 1, "{seen}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_stream_cap_counts_each_http2_stream() -> Result<()> {
    let mut args = harness::LOAD_FROM_LOOPBACK.to_vec();
    args.extend(["--max-open-streams", "2"]);
    let cluster = Cluster::start(1, &args).await?;
    let port = cluster.gateways[0].port;
    let h2 = connect_h2(port).await?;
    let mut open = Vec::new();
    for id in 0..2 {
        let response = h2.clone().send_request(listen_request(port, id)).await?;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        read_until(&mut body, "subscriptions/acknowledged").await?;
        open.push(body);
    }
    let third = h2.clone().send_request(listen_request(port, 3)).await?;
    assert_eq!(third.status(), 503, "a third stream on one connection");
    let text = third.into_body().collect().await?.to_bytes();
    assert!(
        String::from_utf8_lossy(&text).contains("too_many_streams"),
        "{text:?}"
    );
    Ok(())
}

// --- Raw HTTP/2 frames, for what a well-behaved client library will not send. ---

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const CANCEL: u32 = 0x8;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A request head in HPACK, from the static table and literals (no Huffman, no indexing).
fn head(method_post: bool, path: &str) -> Vec<u8> {
    let literal = |index: u8, value: &str| {
        let mut b = vec![index, value.len() as u8];
        b.extend_from_slice(value.as_bytes());
        b
    };
    // :method GET (2) or POST (3), :scheme http (6).
    let mut h = vec![if method_post { 0x83 } else { 0x82 }, 0x86];
    h.extend(literal(0x04, path)); // :path
    h.extend(literal(0x01, "127.0.0.1")); // :authority
    h
}

struct RawH2 {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl RawH2 {
    async fn open(port: u16) -> Result<Self> {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.write_all(PREFACE).await?;
        tcp.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
        let mut raw = Self {
            tcp,
            buf: Vec::new(),
        };
        // The server's settings, acknowledged, so its stream cap is in force both ways.
        loop {
            match raw.next().await? {
                Some((SETTINGS, flags, _, _)) if flags & ACK == 0 => break,
                Some(_) => continue,
                None => bail!("closed during the handshake"),
            }
        }
        raw.tcp.write_all(&frame(SETTINGS, ACK, 0, &[])).await?;
        Ok(raw)
    }

    /// The next frame (type, flags, stream, payload), or `None` once the server closed.
    async fn next(&mut self) -> Result<Option<(u8, u8, u32, Vec<u8>)>> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f: Vec<u8> = self.buf.drain(..9 + len).collect();
                    let stream = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff;
                    return Ok(Some((f[3], f[4], stream, f[9..].to_vec())));
                }
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .context("waiting for the server")?
                .unwrap_or_default();
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn error_code(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([
        payload[at],
        payload[at + 1],
        payload[at + 2],
        payload[at + 3],
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_over_the_per_connection_cap_are_refused() -> Result<()> {
    let cluster = Cluster::start(1, &["--http2-max-streams", "4"]).await?;
    let port = cluster.gateways[0].port;
    let mut raw = RawH2::open(port).await?;
    // Five POSTs whose bodies never come: each stays open, the fifth is one too many.
    let mut burst = Vec::new();
    for i in 0..5u32 {
        burst.extend(frame(HEADERS, END_HEADERS, 1 + 2 * i, &head(true, "/mcp")));
    }
    raw.tcp.write_all(&burst).await?;
    loop {
        match raw.next().await? {
            Some((RST_STREAM, _, 9, payload)) => {
                assert_eq!(error_code(&payload, 0), REFUSED_STREAM);
                break;
            }
            Some((RST_STREAM, _, stream, payload)) => {
                bail!(
                    "stream {stream} reset ({:#x}), not the fifth",
                    error_code(&payload, 0)
                )
            }
            Some((GOAWAY, ..)) | None => bail!("the connection closed instead"),
            Some(_) => continue,
        }
    }
    // The connection lives on: one stream cancelled frees a place for a new one.
    let mut next = frame(RST_STREAM, 0, 1, &CANCEL.to_be_bytes());
    next.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        11,
        &head(false, "/healthz"),
    ));
    raw.tcp.write_all(&next).await?;
    loop {
        match raw.next().await? {
            Some((HEADERS, _, 11, _)) => break,
            Some((RST_STREAM, _, 11, payload)) => {
                bail!(
                    "refused after a place was freed: {:#x}",
                    error_code(&payload, 0)
                )
            }
            Some((GOAWAY, ..)) | None => bail!("the connection closed"),
            Some(_) => continue,
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_reset_closes_the_connection_and_the_gateway_serves_on() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let port = cluster.gateways[0].port;
    let mut raw = RawH2::open(port).await?;
    // 500 requests, each cancelled as soon as it is sent, in one write.
    let mut burst = Vec::new();
    for i in 0..500u32 {
        let stream = 1 + 2 * i;
        burst.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &head(false, "/healthz"),
        ));
        burst.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
    }
    // The server may close mid-burst: a failed write is the point.
    let _ = raw.tcp.write_all(&burst).await;
    let mut goaway = None;
    while let Some((kind, _, _, payload)) = raw.next().await? {
        if kind == GOAWAY {
            goaway = Some(error_code(&payload, 4));
        }
    }
    assert_eq!(
        goaway,
        Some(ENHANCE_YOUR_CALM),
        "the connection must be closed with ENHANCE_YOUR_CALM"
    );
    // The node is unharmed: a new connection is served.
    let mut h2 = connect_h2(port).await?;
    let ok = h2
        .send_request(
            hyper::Request::get(format!("http://127.0.0.1:{port}/healthz"))
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    assert!(ok.status().is_success());
    Ok(())
}
