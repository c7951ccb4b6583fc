//! A reverse proxy on loopback that adds `Authorization: Bearer <token>` to every request it
//! forwards, for clients that cannot send tokens themselves (the official conformance
//! suite): with it, such a client runs against a gateway that checks every request's token.
//! Everything else passes through unchanged, `Host` and `Origin` included (the suite tests
//! DNS-rebinding protection with them), and response bodies stream, so SSE works.

use anyhow::Result;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use futures::TryStreamExt;

/// Headers that belong to one hop, never forwarded.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
];

#[derive(Clone)]
struct Upstream {
    /// e.g. `http://127.0.0.1:8080`
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Starts a proxy to `upstream` (scheme, host and port) adding `token`; returns its port.
pub async fn start(upstream: &str, token: &str) -> Result<u16> {
    let state = Upstream {
        base: upstream.trim_end_matches('/').to_owned(),
        token: token.to_owned(),
        http: reqwest::Client::builder().build()?,
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let mut out = up
        .http
        .request(parts.method.clone(), format!("{}{path}", up.base))
        .body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != "authorization" {
            out = out.header(name, value);
        }
    }
    out = out.header("authorization", format!("Bearer {}", up.token));
    let Ok(upstream) = out.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(HeaderName::from(name), value);
        }
    }
    let stream = upstream.bytes_stream().map_err(std::io::Error::other);
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .expect("a bare status is a valid response")
}
