//! `mcpbus-bench abuse`: the worst of issue 12's attacks at once against one release
//! gateway with its default limits, beside an honest client calling `echo`.
//!
//! The gateway trusts loopback as its ingress (`--trusted-proxies 127.0.0.0/8`), and every
//! party names itself in `X-Forwarded-For`, as clients behind a real ingress are named: the
//! attacker is one address, the honest client another. Attacks, all running for the whole
//! attack phase:
//! - **session flood**: `initialize` with 200 KB of capabilities, as fast as answered;
//! - **slowloris**: connections that send half a request head and stall;
//! - **stream hoarding**: standalone GETs on one session and `subscriptions/listen` streams;
//! - **unread calls**: `slow_count` calls whose responses nobody reads, on both lanes;
//! - **pool hogging**: long `wait` calls, as many as accepted;
//! - **request flood**: `server/discover` as fast as answered.
//!
//! Reported: the gateway's RSS every `--sample-secs`, the honest client's `echo` latency
//! (p50, p99) before and during the attack, and what the gateway refused, by reason.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use harness::mcp::{modern_meta, ACCEPT_BOTH, MODERN};
use harness::{Cluster, DEMO_TOOLS};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::echo::percentile_ms;
use super::fanout::rss_bytes;

#[derive(Parser)]
pub struct Args {
    /// Seconds of the honest client alone, then of the attack.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 5)]
    sample_secs: u64,
    /// Run only these attacks (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Attack>,
}

const ATTACKER: &str = "198.51.100.66";
const HONEST: &str = "198.51.100.7";

pub async fn run(args: Args) -> Result<()> {
    let mut cluster = Cluster::start(0, &[]).await?;
    cluster
        .add_gateway(&["--trusted-proxies", "127.0.0.0/8"])
        .await?;
    cluster.add_worker(&["demo"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    let url = cluster.gateway_urls()[0].clone();
    let pid = cluster.gateways[0].proc.pid();
    let http = reqwest::Client::new();
    let phase = Duration::from_secs(args.secs);

    // Unloaded.
    let rss_idle = rss_bytes(pid);
    let unloaded = honest_echo(&http, &url, phase).await?;

    // Under attack.
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut attacks = Vec::new();
    let chosen = if args.only.is_empty() {
        vec![
            Attack::SessionFlood,
            Attack::Slowloris,
            Attack::StreamHoarding,
            Attack::UnreadCalls,
            Attack::PoolHogging,
            Attack::RequestFlood,
        ]
    } else {
        args.only.clone()
    };
    for attack in chosen {
        let (url, stop, counts) = (url.clone(), stop.clone(), counts.clone());
        attacks.push(tokio::spawn(async move {
            attack.run(&url, &stop, &counts).await
        }));
    }
    let sampler = {
        let stop = stop.clone();
        let every = Duration::from_secs(args.sample_secs);
        tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((started.elapsed().as_secs(), rss_bytes(pid)));
                tokio::time::sleep(every).await;
            }
            samples
        })
    };
    let loaded = honest_echo(&http, &url, phase).await?;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await?;
    for a in attacks {
        // Attacks stop at the flag; a stuck one is abandoned rather than awaited forever.
        let _ = tokio::time::timeout(Duration::from_secs(10), a).await;
    }
    let metrics = http
        .get(cluster.gateways[0].metrics_url())
        .send()
        .await?
        .text()
        .await?;

    println!("Honest client (`echo`, session lane, one call every 50 ms):\n");
    println!("| Phase | Calls | p50 (ms) | p99 (ms) |");
    println!("|---|---|---|---|");
    for (name, l) in [("alone", &unloaded), ("under attack", &loaded)] {
        println!(
            "| {name} | {} | {:.2} | {:.2} |",
            l.len(),
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.99)
        );
    }
    println!(
        "\nGateway RSS (MiB; {:.1} before the attack):\n",
        mib(rss_idle)
    );
    println!("| Seconds into the attack | RSS (MiB) |");
    println!("|---|---|");
    for (t, rss) in &samples {
        println!("| {t} | {:.1} |", mib(*rss));
    }
    println!("\nAttack requests sent: {}\n", counts.summary());
    println!("Refusals and cut-offs reported by the gateway:\n");
    for line in metrics.lines().filter(|l| {
        (l.starts_with("mcpbus_refused_total")
            || l.starts_with("mcpbus_connections_timed_out_total")
            || l.starts_with("mcpbus_calls_cut_off_total"))
            && !l.ends_with(" 0")
    }) {
        println!("    {line}");
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// How often the honest client calls: an agent's pace, well inside its request quota.
const HONEST_EVERY: Duration = Duration::from_millis(50);

/// `echo` in a session, one call every [`HONEST_EVERY`], for `phase`; every answer is
/// checked.
async fn honest_echo(http: &reqwest::Client, url: &str, phase: Duration) -> Result<Vec<Duration>> {
    let session = initialize(http, url, HONEST, json!({}))
        .await?
        .context("honest session")?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hello"}}})
    .to_string();
    let mut latencies = Vec::new();
    let until = Instant::now() + phase;
    while Instant::now() < until {
        let t0 = Instant::now();
        // A tool call's response is an SSE stream; its last event is the result.
        let text = http
            .post(url)
            .headers(in_session(HONEST, &session))
            .body(body.clone())
            .send()
            .await?
            .text()
            .await?;
        let r: Value = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .next_back()
            .unwrap_or_else(|| json!({"unparsed": text}));
        anyhow::ensure!(
            r["result"]["content"][0]["text"] == "hello",
            "the honest call failed: {r}"
        );
        latencies.push(t0.elapsed());
        tokio::time::sleep(HONEST_EVERY.saturating_sub(t0.elapsed())).await;
    }
    latencies.sort();
    Ok(latencies)
}

/// A session for `client`, if the gateway grants one.
async fn initialize(
    http: &reqwest::Client,
    url: &str,
    client: &str,
    capabilities: Value,
) -> Result<Option<String>> {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": {"name": "mcpbus-bench", "version": "0"}}});
    let r = http
        .post(url)
        .headers(posting(client))
        .body(init.to_string())
        .send()
        .await?;
    Ok(r.headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

/// The headers of a POST by `client` (as the ingress names it) in a 2025-11-25 session.
fn in_session(client: &str, session: &str) -> HeaderMap {
    let mut h = posting(client);
    h.insert("mcp-session-id", header(session));
    h.insert("mcp-protocol-version", header("2025-11-25"));
    h
}

/// The headers of a 2026-07-28 POST of `method` (and `name`) by `client`.
fn modern(client: &str, method: &str, name: Option<&str>) -> HeaderMap {
    let mut h = posting(client);
    h.insert("mcp-protocol-version", header(MODERN));
    h.insert("mcp-method", header(method));
    if let Some(n) = name {
        h.insert("mcp-name", header(n));
    }
    h
}

fn posting(client: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", header("application/json"));
    h.insert("accept", header(ACCEPT_BOTH));
    h.insert("x-forwarded-for", header(client));
    h
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("a valid header value")
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    refused: AtomicU64,
}

impl Counts {
    fn note(&self, status: Option<u16>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if status.is_some_and(|s| s >= 400) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} ({} answered with an error status)",
            self.sent.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed)
        )
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Attack {
    SessionFlood,
    Slowloris,
    StreamHoarding,
    UnreadCalls,
    PoolHogging,
    RequestFlood,
}

impl Attack {
    async fn run(self, url: &str, stop: &AtomicBool, counts: &Counts) {
        let http = reqwest::Client::new();
        match self {
            Attack::SessionFlood => {
                let big = json!({"experimental": {"x": "y".repeat(200 * 1024)}});
                while !stop.load(Ordering::Relaxed) {
                    let r = initialize(&http, url, ATTACKER, big.clone()).await;
                    counts.note(r.ok().map(|s| if s.is_some() { 200 } else { 429 }));
                }
            }
            Attack::Slowloris => {
                let addr = url
                    .trim_start_matches("http://")
                    .trim_end_matches("/mcp")
                    .to_owned();
                let mut held: Vec<tokio::net::TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    // Keep 500 half-sent heads open; replace those the gateway closed.
                    held.retain(|s| {
                        let mut byte = [0u8; 64];
                        matches!(s.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                    });
                    while held.len() < 500 && !stop.load(Ordering::Relaxed) {
                        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                            break;
                        };
                        let _ = s.write_all(b"POST /mcp HTTP/1.1\r\nhost: x\r\n").await;
                        held.push(s);
                        counts.note(None);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            Attack::StreamHoarding => {
                let Ok(Some(session)) = initialize(&http, url, ATTACKER, json!({})).await else {
                    return;
                };
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let get = http
                        .get(url)
                        .header("accept", "text/event-stream")
                        .header("mcp-session-id", &session)
                        .header("mcp-protocol-version", "2025-11-25")
                        .header("x-forwarded-for", ATTACKER)
                        .send();
                    let listen = http
                        .post(url)
                        .headers(modern(ATTACKER, "subscriptions/listen", None))
                        .body(
                            json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
                                "params": {"notifications": {"toolsListChanged": true},
                                "_meta": modern_meta()}})
                            .to_string(),
                        )
                        .send();
                    for r in [get.await, listen.await] {
                        counts.note(r.as_ref().ok().map(|r| r.status().as_u16()));
                        if let Ok(r) = r {
                            if r.status().is_success() && held.len() < 4000 {
                                held.push(r);
                            }
                        }
                    }
                }
            }
            Attack::UnreadCalls => {
                let Ok(Some(session)) = initialize(&http, url, ATTACKER, json!({})).await else {
                    return;
                };
                let count = json!({"name": "slow_count",
                    "arguments": {"n": 200_000, "interval_ms": 0, "pad": 1024},
                    "_meta": {"progressToken": "p"}});
                let mut stateless = count.clone();
                stateless["_meta"] = modern_meta();
                stateless["_meta"]["progressToken"] = json!("p");
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let session_call = http
                        .post(url)
                        .headers(in_session(ATTACKER, &session))
                        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": count}).to_string())
                        .send();
                    let stateless_call = http
                        .post(url)
                        .headers(modern(ATTACKER, "tools/call", Some("slow_count")))
                        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": stateless}).to_string())
                        .send();
                    for r in [session_call.await, stateless_call.await] {
                        counts.note(r.as_ref().ok().map(|r| r.status().as_u16()));
                        // Held and never read.
                        if let Ok(r) = r {
                            if r.status().is_success() && held.len() < 64 {
                                held.push(r);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Attack::PoolHogging => {
                let Ok(Some(session)) = initialize(&http, url, ATTACKER, json!({})).await else {
                    return;
                };
                let wait = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "wait", "arguments": {"ms": 10_000}}})
                .to_string();
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .post(url)
                        .headers(in_session(ATTACKER, &session))
                        .body(wait.clone())
                        .send()
                        .await;
                    counts.note(r.as_ref().ok().map(|r| r.status().as_u16()));
                    if let Ok(r) = r {
                        if r.status().is_success() {
                            held.push(r);
                        }
                    }
                    if held.len() > 256 {
                        held.drain(..held.len() - 256);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Attack::RequestFlood => {
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                    "params": {"_meta": modern_meta()}})
                .to_string();
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .post(url)
                        .headers(modern(ATTACKER, "server/discover", None))
                        .body(body.clone())
                        .send()
                        .await;
                    counts.note(r.as_ref().ok().map(|r| r.status().as_u16()));
                }
            }
        }
    }
}
