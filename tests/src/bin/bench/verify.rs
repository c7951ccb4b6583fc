//! `mcpbus-bench verify`: what checking an access token costs a gateway per request.
//!
//! Starts the real authorization server (`harness::oidc`), takes an RS256 JWT, an ES256 JWT
//! and an opaque token from it, and times `Verifier::verify` in-process with warm caches
//! (keys fetched, introspection answer cached): the cost every `/mcp` request pays. The
//! first, cold verification of each (a JWKS fetch, an introspection round trip) is shown
//! apart.

use std::time::Instant;

use anyhow::{ensure, Result};
use clap::Parser;
use harness::oidc::AuthServer;
use mcpbus_gateway::auth::{AuthSettings, Verifier};

use crate::echo::percentile_ms;

const AUDIENCE: &str = "https://mcp.example.test/mcp";

#[derive(Parser)]
pub struct Args {
    /// Verifications per token kind.
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
}

pub async fn run(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = AuthServer::start(dir.path(), "oidc", AUDIENCE)?;
    let mut settings = AuthSettings::new(vec![server.issuer()], AUDIENCE.into());
    settings.required_scopes = vec!["mcp:tools".into()];
    settings.introspection_url = Some(server.introspection_url().parse()?);
    settings.introspection_client_id = Some("gateway".into());
    settings.introspection_client_secret = Some("gateway-secret".into());
    let verifier = Verifier::new(settings);
    println!(
        "| Token | Cold first check (ms) | Warm p50 (µs) | Warm p99 (µs) | Checks/s (one core) |"
    );
    println!("|---|---|---|---|---|");
    for (kind, client) in [
        ("RS256 JWT (2048-bit)", "mcp-client"),
        ("ES256 JWT (P-256)", "mcp-es256"),
        ("opaque, introspection cached", "mcp-opaque"),
    ] {
        let token = server.token(client, AUDIENCE, "mcp:tools").await?;
        let t0 = Instant::now();
        verifier.verify(&token).await?;
        let cold = t0.elapsed();
        let mut times = Vec::with_capacity(args.calls);
        let all = Instant::now();
        for _ in 0..args.calls {
            let t = Instant::now();
            let p = verifier.verify(&token).await?;
            times.push(t.elapsed());
            ensure!(p.subject == client, "verified as {}", p.subject);
        }
        let rate = args.calls as f64 / all.elapsed().as_secs_f64();
        times.sort();
        let us = |p: f64| format!("{:.1}", percentile_ms(&times, p) * 1000.0);
        println!(
            "| {kind} | {:.2} | {} | {} | {:.0} |",
            cold.as_secs_f64() * 1000.0,
            us(0.50),
            us(0.99),
            rate
        );
    }
    Ok(())
}
