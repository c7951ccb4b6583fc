//! MCP authorization (`basic/authorization`, 2025-11-25 and 2026-07-28): the gateway as an
//! OAuth 2.1 resource server, against a real authorization server (panva's oidc-provider,
//! `harness::oidc`). Each refusal is checked with its status and its `WWW-Authenticate`
//! challenge; valid JWTs (RS256, ES256) and an opaque token (RFC 7662 introspection) call
//! tools on both lanes through both gateways, and the calls on the bus carry the principal,
//! never the token.

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use harness::mcp::{self, Resp, MODERN};
use harness::oidc::AuthServer;
use harness::{bin, free_port, Cluster};
use serde_json::{json, Value};

/// The cluster's resource URI: what tokens must carry in `aud` (a name, never fetched).
const AUDIENCE: &str = "https://mcp.example.test/mcp";
/// RFC 9728 §3.1: the well-known segment between the origin and the resource's path.
const METADATA_URL: &str = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";
const OTHER_RESOURCE: &str = "https://other.example.test/mcp";
/// Every attack test finishes within this, or fails.
const BOUND: Duration = Duration::from_secs(120);

/// Two authorization servers (A trusted, B not) and a cluster that trusts A. The first
/// gateway is told where A's introspection endpoint is and discovers its keys; the second is
/// told where the keys are and discovers the introspection endpoint: both paths, for real.
struct Setup {
    cluster: Cluster,
    a: AuthServer,
    b: AuthServer,
    _dir: tempfile::TempDir,
}

async fn setup(gateways: usize, with_worker: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let a = AuthServer::start(dir.path(), "oidc-a", AUDIENCE).expect("provider A starts");
    let b = AuthServer::start(dir.path(), "oidc-b", AUDIENCE).expect("provider B starts");
    let (issuer, introspection) = (a.issuer(), a.introspection_url());
    let jwks = format!("{issuer}/jwks");
    let common = [
        "--auth-issuer",
        &issuer,
        "--auth-audience",
        AUDIENCE,
        "--auth-required-scope",
        "mcp:tools",
        "--auth-introspection-client-id",
        "gateway",
        "--auth-introspection-client-secret",
        "gateway-secret",
        "--auth-claim",
        "client_id",
        // One second of leeway so the expiry test waits seconds, not the default 30.
        "--auth-clock-leeway-secs",
        "1",
    ];
    let first = [&common[..], &["--auth-introspection-url", &introspection]].concat();
    let mut cluster = Cluster::start(1, &first).await.expect("cluster starts");
    if gateways > 1 {
        let second = [&common[..], &["--auth-jwks-url", &jwks]].concat();
        cluster
            .add_gateway(&second)
            .await
            .expect("second gateway starts");
    }
    if with_worker {
        cluster.add_worker(&["demo"]).expect("worker starts");
    }
    Setup {
        cluster,
        a,
        b,
        _dir: dir,
    }
}

/// A stateless-lane request (2026-07-28) with an optional bearer token.
async fn stateless(url: &str, token: Option<&str>, method: &str, mut params: Value) -> Resp {
    params["_meta"] = mcp::modern_meta();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    let name = params["name"].as_str().map(str::to_owned);
    if let Some(n) = &name {
        headers.push(("mcp-name", n));
    }
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    let msg = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    mcp::post(url, &headers, &msg).await.expect("request sent")
}

/// `initialize` (2025-11-25) with a token, then `tools/call` in that session.
async fn session_call(url: &str, token: &str, tool: &str, args: Value) -> Value {
    let bearer = format!("Bearer {token}");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "auth-test", "version": "0"}}});
    let r = mcp::post(url, &[("authorization", &bearer)], &init)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "initialize: {}", r.body);
    let sid = r.header("mcp-session-id").expect("a session id").to_owned();
    let headers = [
        ("authorization", bearer.as_str()),
        ("mcp-session-id", sid.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(mcp::post(url, &headers, &note).await.unwrap().status, 202);
    // The session is no key by itself: without the token the same session is refused.
    let bare = [
        ("mcp-session-id", sid.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": args}});
    assert_eq!(mcp::post(url, &bare, &call).await.unwrap().status, 401);
    let r = mcp::post(url, &headers, &call).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.response().expect("a JSON-RPC response")["result"].clone()
}

fn challenge(r: &Resp) -> String {
    r.header("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {} {}", r.status, r.body))
        .to_owned()
}

/// A 401 whose challenge says the token was bad, with the error body every refusal has.
fn assert_invalid_token(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    let c = challenge(r);
    assert!(c.starts_with("Bearer "), "{what}: {c}");
    assert!(c.contains(r#"error="invalid_token""#), "{what}: {c}");
    assert!(
        c.contains(&format!(r#"resource_metadata="{METADATA_URL}""#)),
        "{what}: {c}"
    );
    assert_eq!(r.error_code(), Some(-32600), "{what}: {}", r.body);
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_has_its_status_and_challenge() {
    let s = setup(1, false).await;
    let url = s.cluster.gateway_urls()[0].clone();
    tokio::time::timeout(BOUND, async {
        let list = json!({});

        // No token: 401 and where to learn how to get one; no error code (RFC 6750 §3.1).
        let r = stateless(&url, None, "tools/list", list.clone()).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(
            challenge(&r),
            format!(r#"Bearer scope="mcp:tools", resource_metadata="{METADATA_URL}""#)
        );
        assert_eq!(r.error_code(), Some(-32600));
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let r = mcp::send_raw(method, &url, &[("accept", "text/event-stream")])
                .await
                .unwrap();
            assert_eq!(r.status, 401);
        }

        // A valid token is accepted only from the Authorization header.
        let good = s.a.token("mcp-client", AUDIENCE, "mcp:tools").await.unwrap();
        let ok = stateless(&url, Some(&good), "tools/list", list.clone()).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let in_query = format!("{url}?access_token={good}");
        let r = stateless(&in_query, None, "tools/list", list.clone()).await;
        assert_eq!(r.status, 401, "a token in the query string was accepted");

        // Bad signature: one byte of a real token's signature changed.
        let mut parts = segments(&good);
        let sig = parts[2].as_bytes().to_vec();
        let mid = sig.len() / 2;
        let mut tampered = sig.clone();
        tampered[mid] = if sig[mid] == b'A' { b'B' } else { b'A' };
        parts[2] = String::from_utf8(tampered).unwrap();
        let r = stateless(&url, Some(&parts.join(".")), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "bad signature");
        assert!(r.body.contains("bad signature"), "{}", r.body);

        // A payload changed under a real signature (more scopes, say).
        let mut parts = segments(&good);
        let mut claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&parts[1])
                .unwrap(),
        )
        .unwrap();
        claims["sub"] = json!("someone-else");
        parts[1] = b64(&claims);
        let r = stateless(&url, Some(&parts.join(".")), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "payload swapped");

        // Wrong audience: a real token of the trusted issuer, minted for another resource.
        let other = s.a.token("mcp-client", OTHER_RESOURCE, "mcp:tools").await.unwrap();
        let r = stateless(&url, Some(&other), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "wrong audience");
        assert!(r.body.contains("aud"), "{}", r.body);

        // Wrong issuer: a real token for this very resource, from an untrusted server.
        let foreign = s.b.token("mcp-client", AUDIENCE, "mcp:tools").await.unwrap();
        let r = stateless(&url, Some(&foreign), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "wrong issuer");
        assert!(r.body.contains("not trusted"), "{}", r.body);

        // alg none, and HMAC (the algorithm-confusion attack): refused whatever the key.
        let mut parts = segments(&good);
        parts[0] = b64(&json!({"alg": "none", "typ": "at+jwt"}));
        parts[2] = String::new();
        let r = stateless(&url, Some(&parts.join(".")), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "alg none");
        assert!(r.body.contains("\\\"none\\\""), "{}", r.body);
        let mut parts = segments(&good);
        parts[0] = b64(&json!({"alg": "HS256", "typ": "at+jwt"}));
        let r = stateless(&url, Some(&parts.join(".")), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "alg HS256");

        // An opaque string the authorization server never issued (introspection: inactive).
        let r = stateless(&url, Some("not-a-token-anyone-issued"), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "unknown opaque token");

        // Insufficient scope: a valid token without mcp:tools.
        let narrow = s.a.token("mcp-client", AUDIENCE, "other").await.unwrap();
        let r = stateless(&url, Some(&narrow), "tools/list", list.clone()).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(
            challenge(&r),
            format!(
                r#"Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="{METADATA_URL}", error_description="insufficient scope: the token lacks mcp:tools""#
            )
        );

        // Each refusal is counted by reason on the metrics listener.
        let metrics = reqwest::get(s.cluster.gateways[0].metrics_url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (reason, at_least) in [("missing", 4), ("invalid", 7), ("insufficient_scope", 1)] {
            let series = format!("mcpbus_auth_refused_total{{reason=\"{reason}\"}} ");
            let n: u64 = metrics
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"));
            assert!(n >= at_least, "{series}{n}");
        }

        // Expired: a token living one second, used after TTL + leeway.
        let short = s.a.token("mcp-short", AUDIENCE, "mcp:tools").await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = stateless(&url, Some(&short), "tools/list", list.clone()).await;
        assert_invalid_token(&r, "expired");
        assert!(r.body.contains("expired"), "{}", r.body);
    })
    .await
    .expect("the refusals finished in time");
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_resource_metadata_is_served_at_both_well_known_paths() {
    let s = setup(1, false).await;
    let base = s.cluster.gateways[0].base_url();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let doc: Value = r.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": AUDIENCE,
                "authorization_servers": [s.a.issuer()],
                "bearer_methods_supported": ["header"],
                "scopes_supported": ["mcp:tools"],
            }),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_tokens_call_tools_on_both_lanes_through_both_gateways() {
    let s = setup(2, true).await;
    // Every call the gateways queue, as a worker would receive it.
    let nats = s.cluster.nats.client().await;
    let mut calls = nats
        .subscribe(bus_schema::subjects::CALLS_WILDCARD)
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let rs256 =
        s.a.token("mcp-client", AUDIENCE, "mcp:tools other")
            .await
            .unwrap();
    let es256 = s.a.token("mcp-es256", AUDIENCE, "mcp:tools").await.unwrap();
    let opaque =
        s.a.token("mcp-opaque", AUDIENCE, "mcp:tools")
            .await
            .unwrap();
    assert!(!opaque.contains('.'), "the opaque client got a JWT");
    let urls = s.cluster.gateway_urls();

    tokio::time::timeout(BOUND, async {
        // Wait until the worker's tools are listed (listing needs a token too).
        loop {
            let r = stateless(&urls[1], Some(&rs256), "tools/list", json!({})).await;
            if r.body.contains("\"echo\"") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut expected = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            for (token, subject) in [
                (&rs256, "mcp-client"),
                (&es256, "mcp-es256"),
                // Introspection names no `sub` for a client-credentials token: the subject is
                // its client id, prefixed so it cannot pass for a user of that name.
                (&opaque, "client_id:mcp-opaque"),
            ] {
                let text = format!("stateless {i} {subject}");
                let r = stateless(
                    url,
                    Some(token),
                    "tools/call",
                    json!({"name": "echo", "arguments": {"text": text}}),
                )
                .await;
                assert_eq!(r.status, 200, "{}", r.body);
                let result = &r.response().unwrap()["result"];
                assert_eq!(harness::texts(result), [text.as_str()], "{result}");
                expected.push((text, subject));

                let text = format!("session {i} {subject}");
                let result = session_call(url, token, "echo", json!({"text": text})).await;
                assert_eq!(harness::texts(&result), [text.as_str()], "{result}");
                expected.push((text, subject));
            }
        }

        // On the bus: each call names its principal; no token is anywhere in it.
        let mut seen = 0;
        while seen < expected.len() {
            let msg = calls.next().await.expect("call messages");
            let raw = String::from_utf8_lossy(&msg.payload);
            for t in [&rs256, &es256, &opaque] {
                assert!(
                    !raw.contains(t.as_str()),
                    "a client's token travelled on the bus"
                );
            }
            let call: bus_schema::messages::CallRequest =
                bus_schema::messages::decode(&msg.payload).expect("a call request");
            let text = call.params["arguments"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let Some((_, subject)) = expected.iter().find(|(t, _)| *t == text) else {
                continue;
            };
            let p = call.principal.expect("the call carries its principal");
            assert_eq!(p.issuer, s.a.issuer());
            assert_eq!(p.subject, *subject);
            assert!(p.has_scope("mcp:tools"), "{p:?}");
            let client = subject.trim_start_matches("client_id:");
            assert_eq!(p.claims.get("client_id"), Some(&json!(client)), "{p:?}");
            assert_eq!(p.claims.len(), 1, "only allow-listed claims travel: {p:?}");
            seen += 1;
        }
    })
    .await
    .expect("the calls finished in time");
}

/// A gateway reachable from the network with no auth configured does not start.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_beyond_loopback_without_auth_refuses_to_start() {
    let run = |args: Vec<String>| {
        let out = std::process::Command::new(bin("mcpbus-gateway"))
            .args(["--nats", "nats://127.0.0.1:1"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        (out.status.success(), stderr)
    };
    // The listen address is checked before anything binds: nothing listens on 0.0.0.0.
    let listen = format!("0.0.0.0:{}", free_port());
    let (ok, stderr) = run(vec![
        "--listen".into(),
        listen.clone(),
        "--metrics-listen".into(),
        "off".into(),
    ]);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "mcpbus-gateway: error: refusing to serve {listen} without authentication"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--auth none"), "{stderr}");

    for (args, says) in [
        (
            vec!["--auth", "none", "--auth-issuer", "https://as.example"],
            "cannot be combined",
        ),
        (
            vec!["--auth-issuer", "https://as.example"],
            "--auth-audience is required",
        ),
        (
            vec![
                "--auth-issuer",
                "http://as.example",
                "--auth-audience",
                AUDIENCE,
            ],
            "must use https",
        ),
        (vec!["--auth", "sometimes"], "is not a mode"),
        // One key set for two issuers would let either sign as the other.
        (
            vec![
                "--auth-issuer",
                "https://as.example",
                "--auth-issuer",
                "https://other.example",
                "--auth-audience",
                AUDIENCE,
                "--auth-jwks-url",
                "https://as.example/jwks",
            ],
            "takes exactly one --auth-issuer",
        ),
    ] {
        let (ok, stderr) = run(args.iter().map(|s| s.to_string()).collect());
        assert!(!ok, "{args:?} started");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// The real Python SDK (`mcp==2.3.0`) runs the MCP authorization flow by itself with its
/// client-credentials support, on both lanes. Here the resource URI is the gateway's own URL,
/// as the SDK asks for a token for the URL it calls and checks the metadata's `resource`.
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_gets_a_token_by_itself_and_calls_through() {
    let dir = tempfile::tempdir().unwrap();
    let a = AuthServer::start(dir.path(), "oidc-a", AUDIENCE).expect("provider starts");
    let issuer = a.issuer();
    let args = [
        "--auth-issuer",
        &issuer,
        "--auth-audience",
        "http://127.0.0.1:{port}/mcp",
        "--auth-required-scope",
        "mcp:tools",
    ];
    let mut cluster = Cluster::start(1, &args).await.expect("cluster starts");
    cluster.add_worker(&["demo"]).unwrap();
    let url = cluster.gateway_urls()[0].clone();
    let token = a.token("mcp-client", &url, "mcp:tools").await.unwrap();
    loop {
        let r = stateless(&url, Some(&token), "tools/list", json!({})).await;
        if r.body.contains("\"echo\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let python = std::env::var("MCPBUS_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| harness::workspace_root().join(".venv/bin/python"));
    let script = harness::workspace_root().join("tests/clients/py_auth_client.py");
    for mode in ["auto", "legacy"] {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(&python)
                .arg(&script)
                .args([url.as_str(), mode, issuer.as_str(), "mcp-client"])
                .output(),
        )
        .await
        .expect("the python client finished in time")
        .expect("the python client ran (run scripts/test.sh for the venv)");
        assert!(
            out.status.success(),
            "python ({mode}) failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).expect("JSON from the client");
        assert_eq!(seen["got_token"], true, "{seen}");
        assert_eq!(seen["tools"], json!(harness::DEMO_TOOLS), "{seen}");
        assert_eq!(seen["echo"], json!(["hello with a token"]), "{seen}");
    }
}
