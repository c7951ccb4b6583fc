//! Bridging an existing MCP server into the cluster: `mcpbus-worker bridge stdio -- CMD ...`
//! or `mcpbus-worker bridge http URL`.
//!
//! The bridge spawns (or connects to) the server, talks to it with rmcp's client, and serves
//! its tools, resources and prompts as a pool: each call is forwarded with its arguments,
//! progress comes back to the caller, the server's log messages reach the calls in flight,
//! and its `list_changed` notifications republish the pool's catalogue. When the server goes
//! away, everything it served leaves the catalogue and it is started (or reconnected) again
//! with exponential backoff; its lists come back once it answers.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
#[allow(deprecated)]
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientConfig, ClientRequest, GetPromptRequestParams,
    LoggingMessageNotificationParam, MetaObject, ProgressNotificationParam, ProgressToken,
    ReadResourceRequestParams, RequestMetaObject, ServerResult,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::{Notify, RwLock};

use mcpbus_worker_sdk::{
    CallContext, CallError, Catalogue, PromptDef, ResourceDef, ToolDef, ToolError, ToolOutput,
};

use crate::stdio_server::StdioServer;

/// First and longest wait before starting a server that exited.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A server that stayed up this long is healthy again: the next restart starts from scratch.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The server's side of the bridge, shared by every forwarded call.
struct Shared {
    /// The running server, `None` while it is (re)starting.
    peer: RwLock<Option<Peer<RoleClient>>>,
    /// Calls in flight by their progress token (the call id), for progress and logs.
    calls: DashMap<String, CallContext>,
    /// Fired by the server's `notifications/tools/list_changed`.
    list_changed: Notify,
    /// Put before every bridged tool's name (e.g. `everything__`), so that two servers with
    /// a tool of the same name can sit in one catalogue.
    prefix: String,
}

/// rmcp's client callbacks: the server's notifications, routed to the calls they concern.
#[derive(Clone)]
struct Handler(Arc<Shared>);

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info.name = "mcpbus-bridge".into();
        info.client_info.version = env!("CARGO_PKG_VERSION").into();
        info
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let ctx = self
            .0
            .calls
            .get(&token_key(&params.progress_token))
            .map(|c| c.clone());
        if let Some(ctx) = ctx {
            ctx.progress(params.progress, params.total, params.message)
                .await;
        }
    }

    // Logging is deprecated from 2026-07-28 on (SEP-2577), but the servers people bridge
    // today speak 2025 revisions and log.
    #[allow(deprecated)]
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        // Server logs are not tied to a request; the calls in flight are who cares now.
        let level = serde_json::to_value(params.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "info".into());
        let calls: Vec<CallContext> = self.0.calls.iter().map(|c| c.clone()).collect();
        for ctx in calls {
            ctx.log(&level, params.data.clone()).await;
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.list_changed.notify_one();
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.list_changed.notify_one();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.list_changed.notify_one();
    }
}

/// The server behind a bridge.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A command to spawn, with its environment and user; the server speaks MCP on its
    /// stdin and stdout.
    Stdio(StdioServer),
    /// A Streamable HTTP endpoint, with extra headers and an optional bearer token.
    Http {
        url: String,
        headers: Vec<(String, String)>,
        bearer: Option<String>,
    },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Stdio(server) => write!(f, "{}", server.command.join(" ")),
            Backend::Http { url, .. } => write!(f, "{url}"),
        }
    }
}

/// Why a bridge could not start serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The first start failed: nothing to serve yet, so the worker does not start either.
    #[error("bridge: cannot start {backend}: {reason}")]
    Start { backend: String, reason: String },
}

/// Serves `backend` through `catalogue` until `stop` fires, reconnecting (restarting a stdio
/// server) whenever it goes away. Returns once the first start has filled the catalogue (or
/// failed), and keeps supervising in the background.
pub async fn supervise(
    backend: Backend,
    prefix: String,
    catalogue: Catalogue,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), BridgeError> {
    let shared = Arc::new(Shared {
        peer: RwLock::new(None),
        calls: DashMap::new(),
        list_changed: Notify::new(),
        prefix,
    });
    let first = start(&backend, &shared, &catalogue).await;
    let service = match first {
        Ok(s) => s,
        Err(e) => {
            return Err(BridgeError::Start {
                backend: backend.to_string(),
                reason: e,
            })
        }
    };
    tokio::spawn(keep_serving(backend, shared, catalogue, service, stop));
    Ok(())
}

async fn keep_serving(
    backend: Backend,
    shared: Arc<Shared>,
    catalogue: Catalogue,
    mut service: RunningService<RoleClient, Handler>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = tokio::time::Instant::now();
        // Serve until the server exits, re-listing its tools whenever it says they changed.
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    let _ = service.cancel().await;
                    return;
                }
                _ = shared.list_changed.notified() => {
                    if let Err(e) = publish_catalogue(&service, &shared, &catalogue).await {
                        tracing::warn!(error = %e, "re-listing what the bridged server serves failed");
                    }
                }
                _ = service_closed(&service) => break,
            }
        }
        tracing::warn!(server = %backend, "the bridged server went away; restarting");
        *shared.peer.write().await = None;
        withdraw_all(&catalogue);
        if started.elapsed() > HEALTHY_AFTER {
            backoff = BACKOFF_FIRST;
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match start(&backend, &shared, &catalogue).await {
                Ok(s) => {
                    tracing::info!("the bridged server is back");
                    service = s;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "restarting the bridged server failed")
                }
            }
        }
    }
}

/// Resolves when the server's connection is gone.
async fn service_closed(service: &RunningService<RoleClient, Handler>) {
    loop {
        if service.is_transport_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts (or connects to) the server, initializes it, and publishes its tools.
async fn start(
    backend: &Backend,
    shared: &Arc<Shared>,
    catalogue: &Catalogue,
) -> Result<RunningService<RoleClient, Handler>, String> {
    let handler = Handler(shared.clone());
    let service = match backend {
        Backend::Stdio(server) => {
            let transport =
                TokioChildProcess::new(server.command()?).map_err(|e| server.spawn_error(&e))?;
            handler.serve(transport).await.map_err(|e| e.to_string())?
        }
        Backend::Http {
            url,
            headers,
            bearer,
        } => {
            let mut custom = std::collections::HashMap::new();
            for (name, value) in headers {
                let name = http::HeaderName::try_from(name.as_str()).map_err(|e| e.to_string())?;
                let value =
                    http::HeaderValue::try_from(value.as_str()).map_err(|e| e.to_string())?;
                custom.insert(name, value);
            }
            let mut config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            if let Some(token) = bearer {
                config = config.auth_header(token.clone());
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            handler.serve(transport).await.map_err(|e| e.to_string())?
        }
    };
    *shared.peer.write().await = Some(service.peer().clone());
    publish_catalogue(&service, shared, catalogue).await?;
    Ok(service)
}

/// Replaces the bridged tools, resources and prompts in the catalogue with what the server
/// lists now.
async fn publish_catalogue(
    service: &RunningService<RoleClient, Handler>,
    shared: &Arc<Shared>,
    catalogue: &Catalogue,
) -> Result<(), String> {
    let capabilities = service.peer_info().map(|i| i.capabilities.clone());
    let serves = |kind: &str| {
        capabilities
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok())
            .is_some_and(|c| c.get(kind).is_some())
    };
    if serves("resources") {
        publish_resources(service, shared, catalogue).await?;
    }
    if serves("prompts") {
        publish_prompts(service, shared, catalogue).await?;
    }
    let tools = service.list_all_tools().await.map_err(|e| e.to_string())?;
    let listed: Vec<String> = tools
        .iter()
        .map(|t| format!("{}{}", shared.prefix, t.name))
        .collect();
    for stale in catalogue.tool_names() {
        if !listed.contains(&stale) {
            catalogue.remove_tool(&stale);
        }
    }
    for tool in tools {
        let decl = serde_json::to_value(&tool).map_err(|e| e.to_string())?;
        catalogue.add_tool(forwarding_tool(decl, shared.clone()));
    }
    Ok(())
}

/// Resources and templates keep their URIs (a URI names a thing; it cannot be prefixed).
async fn publish_resources(
    service: &RunningService<RoleClient, Handler>,
    shared: &Arc<Shared>,
    catalogue: &Catalogue,
) -> Result<(), String> {
    let resources = service
        .list_all_resources()
        .await
        .map_err(|e| e.to_string())?;
    let templates = service
        .list_all_resource_templates()
        .await
        .map_err(|e| e.to_string())?;
    let mut listed = Vec::new();
    let decls = resources
        .iter()
        .map(|r| (serde_json::to_value(r), false))
        .chain(templates.iter().map(|t| (serde_json::to_value(t), true)));
    for (decl, template) in decls {
        let Ok(Value::Object(decl)) = decl else {
            continue;
        };
        let key = if template { "uriTemplate" } else { "uri" };
        let Some(k) = decl.get(key).and_then(Value::as_str) else {
            continue;
        };
        listed.push(k.to_owned());
        let shared = shared.clone();
        catalogue.add_resource(ResourceDef::from_declaration(
            decl,
            template,
            move |ctx, uri| {
                let shared = shared.clone();
                async move {
                    let peer = current_peer(&shared).await?;
                    let mut params = ReadResourceRequestParams::new(uri);
                    params.meta = trace_meta(&ctx);
                    let result = peer
                        .read_resource(params)
                        .await
                        .map_err(|e| ToolError::new(format!("the bridged server failed: {e}")))?;
                    let result =
                        serde_json::to_value(result).map_err(|e| ToolError::new(e.to_string()))?;
                    Ok(result["contents"].as_array().cloned().unwrap_or_default())
                }
            },
        ));
    }
    for stale in catalogue.resource_keys() {
        if !listed.contains(&stale) {
            catalogue.remove_resource(&stale);
        }
    }
    Ok(())
}

/// Prompts take the bridge's prefix, like tools.
async fn publish_prompts(
    service: &RunningService<RoleClient, Handler>,
    shared: &Arc<Shared>,
    catalogue: &Catalogue,
) -> Result<(), String> {
    let prompts = service
        .list_all_prompts()
        .await
        .map_err(|e| e.to_string())?;
    let mut listed = Vec::new();
    for prompt in prompts {
        let Ok(Value::Object(mut decl)) = serde_json::to_value(&prompt) else {
            continue;
        };
        let name = prompt.name.to_string();
        let shown = format!("{}{name}", shared.prefix);
        decl.insert("name".into(), Value::String(shown.clone()));
        listed.push(shown);
        let shared = shared.clone();
        catalogue.add_prompt(PromptDef::from_declaration(decl, move |ctx, args| {
            let shared = shared.clone();
            let name = name.clone();
            async move {
                let peer = current_peer(&shared).await?;
                let mut params = GetPromptRequestParams::new(name);
                params.arguments = Some(args);
                params.meta = trace_meta(&ctx);
                let result = peer
                    .get_prompt(params)
                    .await
                    .map_err(|e| ToolError::new(format!("the bridged server failed: {e}")))?;
                serde_json::to_value(result).map_err(|e| CallError::tool(e.to_string()))
            }
        }));
    }
    for stale in catalogue.prompt_names() {
        if !listed.contains(&stale) {
            catalogue.remove_prompt(&stale);
        }
    }
    Ok(())
}

/// The running server, or a tool error saying it is restarting.
async fn current_peer(shared: &Shared) -> Result<Peer<RoleClient>, ToolError> {
    shared
        .peer
        .read()
        .await
        .clone()
        .ok_or_else(|| ToolError::new("the bridged server is restarting; try again shortly"))
}

/// Everything the server served leaves the catalogue while it is away.
fn withdraw_all(catalogue: &Catalogue) {
    for name in catalogue.tool_names() {
        catalogue.remove_tool(&name);
    }
    for key in catalogue.resource_keys() {
        catalogue.remove_resource(&key);
    }
    for name in catalogue.prompt_names() {
        catalogue.remove_prompt(&name);
    }
}

/// A progress token as a map key (rmcp tokens are numbers or strings).
fn token_key(token: &ProgressToken) -> String {
    serde_json::to_string(token).unwrap_or_default()
}

/// Request options carrying the call's trace context in `_meta` (SEP-414), so that the
/// bridged server's own spans join the client's trace under this worker's handler span.
fn traced(ctx: &CallContext) -> PeerRequestOptions {
    let mut options = PeerRequestOptions::no_options();
    options.meta = trace_meta(ctx);
    options
}

/// The call's trace context as a request's `_meta` (SEP-414 keys).
fn trace_meta(ctx: &CallContext) -> Option<RequestMetaObject> {
    let trace = ctx.trace_context()?;
    let mut meta = MetaObject::new();
    meta.set_traceparent(trace.traceparent());
    if let Some(state) = trace.tracestate() {
        meta.set_tracestate(state);
    }
    Some(RequestMetaObject(meta))
}

/// A tool whose calls go to the bridged server (under its own name there).
fn forwarding_tool(mut decl: Value, shared: Arc<Shared>) -> ToolDef {
    let name = decl["name"].as_str().unwrap_or_default().to_owned();
    decl["name"] = Value::String(format!("{}{name}", shared.prefix));
    ToolDef::from_declaration(decl, move |ctx, args| {
        let shared = shared.clone();
        let name = name.clone();
        async move {
            let peer = current_peer(&shared).await?;
            let mut params = CallToolRequestParams::new(name);
            params.arguments = args.as_object().cloned();
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            // rmcp numbers the request's progress token itself; route that token's progress
            // to this call.
            let handle = peer
                .send_request_with_option(request, traced(&ctx))
                .await
                .map_err(|e| ToolError::new(format!("the bridged server failed: {e}")))?;
            let token = token_key(&handle.progress_token);
            shared.calls.insert(token.clone(), ctx.clone());
            let outcome = tokio::select! {
                r = handle.await_response() => Some(r),
                _ = ctx.cancellation().cancelled() => None,
            };
            shared.calls.remove(&token);
            let result = match outcome {
                None => return Err(ToolError::new("cancelled").into()),
                Some(Ok(ServerResult::CallToolResult(r))) => r,
                Some(Ok(_)) => {
                    return Err(ToolError::new(
                        "the bridged server answered with something other than a tool result",
                    )
                    .into())
                }
                Some(Err(e)) => {
                    return Err(ToolError::new(format!("the bridged server failed: {e}")).into())
                }
            };
            let result = serde_json::to_value(result).map_err(|e| ToolError::new(e.to_string()))?;
            Ok(ToolOutput {
                content: result["content"].as_array().cloned().unwrap_or_default(),
                structured: result.get("structuredContent").cloned(),
                is_error: result["isError"].as_bool().unwrap_or(false),
            })
        }
    })
}
