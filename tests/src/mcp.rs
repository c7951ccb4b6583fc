//! A small, explicit MCP-over-HTTP client for tests that need to see raw statuses, headers
//! and frames. Tests of client compatibility use the real SDK clients instead.

use anyhow::{anyhow, bail, Result};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";
pub const MODERN: &str = "2026-07-28";

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every JSON-RPC message in the body: one for a JSON response, each `data:` of an SSE one.
    pub fn messages(&self) -> Vec<Value> {
        let sse = self
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if !sse {
            return serde_json::from_str(&self.body).into_iter().collect();
        }
        let mut out = Vec::new();
        for event in self.body.split("\n\n") {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                if let Ok(v) = serde_json::from_str(&data.join("\n")) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The JSON-RPC response (the message with `result` or `error`).
    pub fn response(&self) -> Result<Value> {
        self.messages()
            .into_iter()
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .ok_or_else(|| {
                anyhow!(
                    "no JSON-RPC response in {} body {:?}",
                    self.status,
                    self.body
                )
            })
    }

    /// `error.code` of the response.
    pub fn error_code(&self) -> Option<i64> {
        self.response().ok()?["error"]["code"].as_i64()
    }
}

/// POSTs `body` with exactly the given headers (none added).
pub async fn post_raw(
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Result<Resp> {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await?).await
}

/// Sends any method with exactly the given headers.
pub async fn send_raw(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Resp> {
    let mut req = reqwest::Client::new().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await?).await
}

async fn read(resp: reqwest::Response) -> Result<Resp> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// POSTs a JSON-RPC message with the standard transport headers plus `extra`.
pub async fn post(url: &str, extra: &[(&str, &str)], message: &Value) -> Result<Resp> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    headers.extend_from_slice(extra);
    post_raw(url, &headers, message.to_string()).await
}

/// A session-lane session.
#[derive(Debug, Clone)]
pub struct Session {
    pub url: String,
    pub id: String,
    pub version: String,
}

impl Session {
    /// `initialize` (asking for `version`) then `notifications/initialized`.
    pub async fn open(url: &str, version: &str) -> Result<Self> {
        Self::open_declaring(url, version, json!({})).await
    }

    /// The same, declaring `capabilities` (e.g. sampling and elicitation).
    pub async fn open_declaring(url: &str, version: &str, capabilities: Value) -> Result<Self> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": "mcpbus-tests", "version": "0"}
        }});
        let resp = post(url, &[], &init).await?;
        if resp.status != 200 {
            bail!("initialize got {}: {}", resp.status, resp.body);
        }
        let id = resp
            .header("mcp-session-id")
            .ok_or_else(|| anyhow!("initialize returned no MCP-Session-Id"))?
            .to_owned();
        let negotiated = resp.response()?["result"]["protocolVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let session = Self {
            url: url.to_owned(),
            id,
            version: negotiated,
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let r = session.post(&note).await?;
        if r.status != 202 {
            bail!("notifications/initialized got {}", r.status);
        }
        Ok(session)
    }

    /// The same session, addressed to another gateway.
    pub fn via(&self, url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ..self.clone()
        }
    }

    pub async fn post(&self, message: &Value) -> Result<Resp> {
        post(
            &self.url,
            &[
                ("mcp-session-id", &self.id),
                ("mcp-protocol-version", &self.version),
            ],
            message,
        )
        .await
    }

    /// Sends a request and returns the whole response.
    pub async fn request(&self, method: &str, params: Value) -> Result<Resp> {
        self.post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .await
    }

    /// `tools/call`, returning the JSON-RPC response message.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<Value> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await?
            .response()
    }

    /// Opens an SSE stream for a request (POST), reading events as they come.
    pub async fn stream_request(
        &self,
        method: &str,
        params: Value,
    ) -> Result<crate::sse::SseStream> {
        let msg = json!({"jsonrpc": "2.0", "id": 42, "method": method, "params": params});
        let req = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", &self.version)
            .body(msg.to_string());
        crate::sse::SseStream::open(req).await
    }

    /// `GET /mcp`: the standalone stream, or a resumption with `Last-Event-ID`.
    pub async fn get_stream(&self, last_event_id: Option<&str>) -> Result<crate::sse::SseStream> {
        let mut req = reqwest::Client::new()
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", &self.version);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        crate::sse::SseStream::open(req).await
    }

    /// `GET /mcp` returning the whole (non-SSE) response, for error cases.
    pub async fn get_raw(&self, last_event_id: &str) -> Result<Resp> {
        send_raw(
            reqwest::Method::GET,
            &self.url,
            &[
                ("accept", "text/event-stream"),
                ("mcp-session-id", &self.id),
                ("last-event-id", last_event_id),
            ],
        )
        .await
    }

    pub async fn delete(&self) -> Result<Resp> {
        send_raw(
            reqwest::Method::DELETE,
            &self.url,
            &[("mcp-session-id", &self.id)],
        )
        .await
    }
}

/// The `_meta` every stateless-lane request carries.
pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "mcpbus-tests", "version": "0"}
    })
}

/// A well-formed stateless-lane request: `_meta` and the mirrored headers are filled in.
/// Fields the caller put in `params._meta` (e.g. client capabilities) win.
pub async fn stateless(url: &str, method: &str, mut params: Value) -> Result<Resp> {
    let mut meta = modern_meta();
    if let (Some(given), Some(m)) = (
        params.get("_meta").and_then(Value::as_object),
        meta.as_object_mut(),
    ) {
        m.extend(given.clone());
    }
    params["_meta"] = meta;
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .or_else(|| params.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(n) = &name {
        headers.push(("mcp-name", n.as_str()));
    }
    post(
        url,
        &headers,
        &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
}

/// Opens a `subscriptions/listen` stream (stateless lane) with the given filter.
pub async fn listen(url: &str, id: i64, notifications: Value) -> Result<crate::sse::SseStream> {
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {"notifications": notifications, "_meta": modern_meta()}});
    let req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header("mcp-protocol-version", MODERN)
        .header("mcp-method", "subscriptions/listen")
        .body(msg.to_string());
    crate::sse::SseStream::open(req).await
}

/// Every tool name, following cursors, over the stateless lane.
pub async fn list_tool_names_stateless(url: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let result = stateless(url, "tools/list", params).await?.response()?["result"].clone();
        let tools = result["tools"]
            .as_array()
            .ok_or_else(|| anyhow!("no tools in {result}"))?;
        names.extend(
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned)),
        );
        match result["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    names.sort();
    Ok(names)
}

/// The client's answer to a worker's `sampling/createMessage` request `id`: a text sample.
pub fn sampled(id: &Value, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "role": "assistant", "content": {"type": "text", "text": text},
        "model": "test-model", "stopReason": "endTurn"}})
}
