//! `mcpbus-bench replay`: how long a resumed stream takes to replay missed events.
//!
//! Runs `slow_count` with `interval_ms: 0` to store N progress events and a result in one
//! request stream, then resumes it from its priming event id (so every event is missed) on
//! the other gateway, timing from the GET until the stream ends with the response.
//!
//! Three clients, one after another in each round. The harness's (`Session::get_stream`, as
//! the tests use it) builds a reqwest client per request and parses each event as it
//! arrives: the figure issue 18 was measured with. The second parses the same way with one
//! reqwest client kept for all rounds, as a client that resumes has one at hand: building
//! one loads the system's root certificates (rustls), ~1.7 ms here. The raw one splits a
//! resume into its parts, seen from the client: building the client, the response head, the
//! first and the last body byte; it only counts the events once the body is complete, so
//! its last byte is the gateway's time plus the network, not the client's parsing.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use futures::StreamExt;
use harness::mcp::Session;
use harness::sse::SseStream;
use harness::{Cluster, DEMO_TOOLS};
use serde_json::json;

use crate::echo::percentile_ms;

#[derive(Parser)]
pub struct Args {
    /// Events to replay.
    #[arg(long, default_value_t = 1000)]
    events: u32,
    /// Repetitions.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

/// One resume read by the raw client, in its parts (each from the start of the request).
#[derive(Default)]
struct Parts {
    /// `reqwest::Client::new()`: loads the system's root certificates (rustls).
    client: Duration,
    /// The response's status and headers.
    head: Duration,
    first_byte: Duration,
    last_byte: Duration,
    /// Body chunks read: how many writes the gateway's frames arrived in, at most.
    chunks: usize,
}

pub async fn run(args: Args) -> Result<()> {
    let mut cluster = Cluster::start(2, &harness::LOAD_FROM_LOOPBACK).await?;
    cluster.add_worker(&["demo"])?;
    cluster
        .wait_for_tools(&DEMO_TOOLS, Duration::from_secs(20))
        .await?;
    let urls = cluster.gateway_urls();
    let session = Session::open(&urls[0], "2025-11-25").await?;
    let params = json!({"name": "slow_count", "arguments": {"n": args.events, "interval_ms": 0},
        "_meta": {"progressToken": "bench"}});
    let original = session
        .stream_request("tools/call", params)
        .await?
        .collect(Duration::from_secs(120))
        .await?;
    let priming = original[0].id.clone().expect("priming id");
    let expected = original.len() - 1;
    let elsewhere = session.via(&urls[1]);
    let mut times = Vec::new();
    let mut kept = Vec::new();
    let mut raw = Vec::new();
    let http = reqwest::Client::new();
    for _ in 0..args.rounds {
        let t0 = Instant::now();
        let stream = elsewhere.get_stream(Some(&priming)).await?;
        times.push(read_whole(stream, t0, expected).await?);
        let t0 = Instant::now();
        let stream = SseStream::open(resume_request(&http, &elsewhere, &priming)).await?;
        kept.push(read_whole(stream, t0, expected).await?);
        raw.push(resume_raw(&elsewhere, &priming, expected).await?);
    }
    times.sort();
    kept.sort();
    let p50 = percentile_ms(&times, 0.5);
    println!("| Events replayed | Rounds | p50 (ms) | max (ms) | Events/s at p50 | p50, client kept (ms) | max, client kept (ms) |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {expected} | {} | {p50:.1} | {:.1} | {:.0} | {:.1} | {:.1} |",
        args.rounds,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        expected as f64 / (p50 / 1e3),
        percentile_ms(&kept, 0.5),
        kept.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    println!();
    println!(
        "The same resume read raw, medians of {} (ms from the start of the request):",
        args.rounds
    );
    println!();
    println!("| Client built | Response head | First body byte | Last body byte | Body chunks |");
    println!("|---|---|---|---|---|");
    let median = |part: fn(&Parts) -> Duration| {
        let mut v: Vec<Duration> = raw.iter().map(part).collect();
        v.sort();
        percentile_ms(&v, 0.5)
    };
    let mut chunks: Vec<usize> = raw.iter().map(|p| p.chunks).collect();
    chunks.sort();
    println!(
        "| {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        median(|p| p.client),
        median(|p| p.head),
        median(|p| p.first_byte),
        median(|p| p.last_byte),
        chunks[chunks.len() / 2]
    );
    Ok(())
}

/// Reads a resumed stream to its end; the time since `t0`. Checks that `expected` messages
/// came after the priming event.
async fn read_whole(mut stream: SseStream, t0: Instant, expected: usize) -> Result<Duration> {
    let replayed = stream.collect(Duration::from_secs(120)).await?;
    let took = t0.elapsed();
    ensure!(
        replayed.len() - 1 == expected,
        "replayed {} of {expected}",
        replayed.len() - 1
    );
    Ok(took)
}

/// Resumes after `priming` with a client of its own and reads the body whole, timing its
/// parts; checks that `expected` messages came.
async fn resume_raw(session: &Session, priming: &str, expected: usize) -> Result<Parts> {
    let t0 = Instant::now();
    let http = reqwest::Client::new();
    let mut parts = Parts {
        client: t0.elapsed(),
        ..Parts::default()
    };
    let resp = resume_request(&http, session, priming).send().await?;
    parts.head = t0.elapsed();
    let mut body = resp.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        if parts.chunks == 0 {
            parts.first_byte = t0.elapsed();
        }
        parts.chunks += 1;
        bytes.extend_from_slice(&chunk?);
    }
    parts.last_byte = t0.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    let messages = text.lines().filter(|l| *l == "event: message").count();
    ensure!(
        messages == expected,
        "raw resume: {messages} of {expected} messages"
    );
    Ok(parts)
}

/// `GET /mcp` resuming after `priming`, as `Session::get_stream` sends it.
fn resume_request(
    http: &reqwest::Client,
    session: &Session,
    priming: &str,
) -> reqwest::RequestBuilder {
    http.get(&session.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", &session.version)
        .header("last-event-id", priming)
}
