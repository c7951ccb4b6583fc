//! What a tool handler knows about its call, and how it talks back while it runs.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use bus_schema::failover::{self, Repeat};
use bus_schema::mcp::capability;
use bus_schema::mcp::meta;
use bus_schema::messages::{decode, encode, CallEvent, CallReply, CallRequest, ClientAnswer, Lane};
use bus_schema::names::{InstanceId, PoolName};
use bus_schema::principal::Principal;
use bus_schema::refusal::CallEnvelope;
use bus_schema::PROTOCOL_VERSION;
use bus_schema::{headers, subjects};
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::call_error::{CallError, ProtocolError, ToolError};
use crate::catalogue::Catalogue;
use crate::clock;
use crate::mrtr::{Ask, Rounds};
use mcpbus_telemetry::TraceContext;

/// Handed to every tool handler.
#[derive(Clone)]
pub struct CallContext {
    /// `None` when the handler runs in-process without the bus (tests, benchmarks).
    pub(crate) nats: Option<async_nats::Client>,
    /// Subject of the gateway waiting for this call.
    pub(crate) reply_to: String,
    pub(crate) call_id: String,
    /// The pool this worker serves: its subjects for answers and cancellations.
    pub(crate) pool: PoolName,
    pub(crate) instance: InstanceId,
    /// Progress is only forwarded when the client asked for it with a `progressToken`;
    /// without one we do not even publish it.
    pub(crate) wants_progress: bool,
    pub(crate) cancel: CancellationToken,
    /// Set when the reply subject is stored (session-lane streams): replies are then
    /// published with JetStream acknowledgements so they survive a gateway crash.
    pub(crate) durable: Option<jetstream::Context>,
    /// Numbers this call's replies for their `Nats-Msg-Id`, so a retried publish is stored once.
    pub(crate) sent: Arc<AtomicU32>,
    /// Which JetStream delivery of the call this is (1 for the first): part of every
    /// reply's `Nats-Msg-Id`, so a redelivered call's replies are not taken for duplicates
    /// of those the crashed attempt stored.
    pub(crate) delivery: u64,
    /// Numbers this call's questions, for their `inputRequests` keys.
    pub(crate) asked: Arc<AtomicU32>,
    /// Numbers this call's `request` replies from 1 (`seq`, PROTOCOL §5.2).
    pub(crate) requests: Arc<AtomicU32>,
    /// What the client declared it can do; a worker never asks for anything else.
    pub(crate) client_capabilities: Value,
    pub(crate) lane: Lane,
    /// When the gateway stops waiting for this call (Unix ms).
    pub(crate) deadline_ms: u64,
    /// Answers the client brought (2026-07-28 multi round-trip requests).
    pub(crate) mrtr: Arc<Rounds>,
    /// What the worker serves; a handler may change it.
    pub(crate) catalogue: Catalogue,
    /// Set when the call may become a task; `escalated` once it has.
    pub(crate) task_id: Option<String>,
    pub(crate) escalated: Arc<AtomicBool>,
    /// Who is calling, as the gateway verified it; shared, not copied, when the context is
    /// cloned (claims can be large).
    pub(crate) principal: Option<Arc<Principal>>,
    /// The trace context every reply carries (PROTOCOL.md §11): the handler span's when
    /// tracing records it, else the one the call came with (ADR 0020).
    pub(crate) trace: Option<TraceContext>,
    /// `accepted` is due before this call's next reply other than the final one; a final
    /// reply makes it unnecessary (ADR 0026: most calls answer at once, and one message less
    /// per call is one less through nats-server). Set for a call taken from the queue.
    pub(crate) owes_accepted: Arc<tokio::sync::Mutex<bool>>,
}

impl CallContext {
    /// The context of a call pulled from the queue: what the handler may know about the
    /// request, and how it answers. `nats` is `None` only in tests.
    pub(crate) fn for_call(
        req: &CallRequest,
        nats: Option<async_nats::Client>,
        pool: PoolName,
        instance: InstanceId,
        cancel: CancellationToken,
        delivery: u64,
        catalogue: Catalogue,
    ) -> Self {
        Self {
            durable: nats
                .as_ref()
                .filter(|_| req.reply_durable)
                .map(|n| jetstream::new(n.clone())),
            nats,
            reply_to: req.reply_to.clone(),
            call_id: req.call_id.clone(),
            pool,
            instance,
            wants_progress: req
                .params
                .get("_meta")
                .and_then(|m| m.get(meta::PROGRESS_TOKEN))
                .is_some(),
            cancel,
            sent: Default::default(),
            delivery,
            asked: Default::default(),
            requests: Default::default(),
            client_capabilities: req.client_capabilities.clone(),
            lane: req.lane,
            deadline_ms: req.deadline_ms,
            mrtr: Arc::new(Rounds::from_params(&req.params)),
            catalogue,
            task_id: req.task_id.clone(),
            escalated: Default::default(),
            principal: req.principal.clone().map(Arc::new),
            trace: None,
            owes_accepted: Arc::new(tokio::sync::Mutex::new(true)),
        }
    }

    /// A context that can only answer: for a call whose body did not decode but whose
    /// envelope names where to reply.
    pub(crate) fn for_envelope(
        envelope: &CallEnvelope,
        nats: async_nats::Client,
        pool: PoolName,
        instance: InstanceId,
        delivery: u64,
    ) -> Self {
        Self {
            durable: envelope.reply_durable.then(|| jetstream::new(nats.clone())),
            nats: Some(nats),
            reply_to: envelope.reply_to.clone(),
            call_id: envelope.call_id.clone(),
            pool,
            instance,
            delivery,
            // No deadline is known: retry a durable answer the full number of times.
            deadline_ms: u64::MAX,
            ..Self::in_process()
        }
    }

    /// A context for running a handler without the bus (tests, benchmarks): replies go
    /// nowhere and the client declared no capabilities.
    pub(crate) fn in_process() -> Self {
        Self {
            nats: None,
            reply_to: String::new(),
            call_id: "in-process".into(),
            pool: PoolName::new("in-process").expect("valid name"),
            instance: InstanceId::new("in-process").expect("valid id"),
            wants_progress: false,
            cancel: Default::default(),
            durable: None,
            sent: Default::default(),
            delivery: 1,
            asked: Default::default(),
            requests: Default::default(),
            client_capabilities: Value::Null,
            lane: Lane::Session,
            deadline_ms: 0,
            mrtr: Default::default(),
            catalogue: Default::default(),
            task_id: None,
            escalated: Default::default(),
            principal: None,
            trace: None,
            owes_accepted: Default::default(),
        }
    }

    /// The W3C trace context of this call's handler span (the call's own when this process
    /// does not trace): what a handler puts on the requests it makes, so that the services
    /// it calls join the client's trace. The bridge puts it in a bridged server's `_meta`.
    pub fn trace_context(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// Who is calling: the issuer and subject of the client's access token, its scopes, and
    /// the claims the operator allow-listed, as the gateway verified them.
    ///
    /// `None` when the gateway runs without authorization (`--auth none`), and for calls
    /// run in process without a principal. The token itself is never available: the
    /// gateway does not pass tokens through (the MCP specification forbids it), so a worker
    /// that needs upstream credentials holds its own. The principal says who the gateway
    /// let in; it does not prove that this message came from a gateway (that is the bus's
    /// own credentials and permissions).
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_deref()
    }

    /// Which JetStream delivery of the call this run is: 1 for the first. Above 1 only for an
    /// idempotent tool run again because an earlier delivery was never acknowledged (a worker
    /// crashed, or a NATS node died with the delivery; PROTOCOL §5.3).
    pub fn delivery(&self) -> u64 {
        self.delivery
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    /// What this worker serves. Changes are published to the cluster at once, and clients
    /// are told with `list_changed`.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Fires when the worker is shutting down past its drain deadline. Long handlers should
    /// watch it and return early.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Sends `notifications/progress` to the client, if it asked for progress.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if self.wants_progress {
            self.send(CallEvent::Progress {
                progress,
                total,
                message,
            })
            .await;
        }
    }

    /// Makes the call a task (2026-07-28 tasks extension), if the client takes tasks and the
    /// tool supports them: the client gets a task at once and polls it for the result. Does
    /// nothing otherwise, or the second time.
    pub async fn run_as_task(&self) {
        if self.task_id.is_some() && !self.escalated.swap(true, Ordering::Relaxed) {
            self.send(CallEvent::Escalate).await;
        }
    }

    /// Whether the call is running as a task.
    pub fn is_task(&self) -> bool {
        self.escalated.load(Ordering::Relaxed)
    }

    /// Lets the gateway end the client's stream now; the client reconnects with
    /// `Last-Event-ID`, on any gateway, and receives the rest (SSE polling, SEP-1699). A long
    /// call then holds no connection while it works. Session lane only: 2026-07-28 streams
    /// cannot be resumed, so there it does nothing.
    pub async fn detach_stream(&self) {
        if self.lane == Lane::Session {
            self.send(CallEvent::Detach).await;
        }
    }

    /// Sends `notifications/message` (a log line) to the client.
    pub async fn log(&self, level: &str, data: Value) {
        self.send(CallEvent::Log {
            level: level.to_owned(),
            logger: None,
            data,
        })
        .await;
    }

    /// Sends a server-wide message to every session in the cluster, not only this call's
    /// client (ADR 0023). Waits until a gateway stored it.
    pub async fn announce(&self, message: &crate::Announce) -> Result<(), crate::AnnounceError> {
        let Some(nats) = &self.nats else {
            return Err(crate::AnnounceError::Unconfirmed(
                "no bus connection".into(),
            ));
        };
        message.send(nats, &self.pool).await
    }

    /// Asks the client (`sampling/createMessage`, `elicitation/create`, `roots/list`) and
    /// returns its answer. Fails if the client did not declare the capability.
    ///
    /// The same call works on both lanes. On a 2025 session the request goes to the client on
    /// the call's stream and its answer may reach any gateway; this waits for it. On
    /// 2026-07-28 (MRTR) the call ends here with an `InputRequiredResult` and the handler runs
    /// again when the client retries with its answers; earlier answers travel in the sealed
    /// `requestState`, so each `ask` of the rerun returns at once until the first new one.
    /// Handlers must therefore propagate this error ([`CallError::InputRequired`]) with `?`
    /// and do nothing irreversible before their last `ask`.
    pub async fn ask(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let key = format!("input-{}", self.asked.fetch_add(1, Ordering::Relaxed));
        self.ask_keyed(&key, method, params).await
    }

    /// [`ask`](Self::ask) with a chosen `inputRequests` key (2026-07-28; ignored on sessions).
    pub async fn ask_keyed(
        &self,
        key: &str,
        method: &str,
        params: Value,
    ) -> Result<Value, CallError> {
        let mut answers = self.ask_all(vec![Ask::new(key, method, params)]).await?;
        Ok(answers.remove(0))
    }

    /// Several questions at once, answered in order. On 2026-07-28 they reach the client in
    /// one `InputRequiredResult`; on a session they are asked one after the other.
    pub async fn ask_all(&self, asks: Vec<Ask>) -> Result<Vec<Value>, CallError> {
        for ask in &asks {
            self.check_capability(&ask.method)?;
        }
        match self.lane {
            Lane::Session => {
                let mut answers = Vec::with_capacity(asks.len());
                for ask in asks {
                    answers.push(self.ask_on_stream(&ask.method, ask.params).await?);
                }
                Ok(answers)
            }
            Lane::Stateless => Ok(self.mrtr.answers(asks)?),
        }
    }

    /// Whether the client declared what `method` needs; never ask for anything else.
    fn check_capability(&self, method: &str) -> Result<(), CallError> {
        let Some(capability) = capability::for_client_request(method) else {
            return Err(ToolError::new(format!("cannot ask the client for {method:?}")).into());
        };
        if self.client_supports(capability) {
            return Ok(());
        }
        let message = format!(
            "the client did not declare the {capability:?} capability, so it cannot be asked for {method}"
        );
        // 2026-07-28 has an error for exactly this; the 2025 revisions get a tool error.
        Err(match self.lane {
            Lane::Stateless => ProtocolError::missing_capability(capability, message).into(),
            Lane::Session => ToolError::new(message).into(),
        })
    }

    /// Whether the client declared `capability` (`sampling`, `elicitation`, `roots`, ...).
    pub fn client_supports(&self, capability: &str) -> bool {
        self.client_capabilities.get(capability).is_some()
    }

    /// Whether this run continues an earlier round of the same request (2026-07-28): the
    /// gateway verified the `requestState` the client echoed back.
    pub fn resumed(&self) -> bool {
        self.mrtr.resumed
    }

    /// Session lane: the request travels on the call's stream, the answer on the bus.
    async fn ask_on_stream(&self, method: &str, params: Value) -> Result<Value, ToolError> {
        let Some(nats) = &self.nats else {
            return Err(ToolError::new("not connected to the bus"));
        };
        let seq = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let mut answers = nats
            .subscribe(subjects::client_answer(&self.pool, &self.call_id, seq))
            .await
            .map_err(|e| ToolError::new(format!("cannot wait for the client's answer: {e}")))?;
        self.send(CallEvent::Request {
            seq,
            method: method.to_owned(),
            params,
        })
        .await;
        let wait = clock::until(self.deadline_ms);
        let msg = tokio::select! {
            m = tokio::time::timeout(wait, answers.next()) => m,
            _ = self.cancel.cancelled() => return Err(ToolError::new("cancelled")),
        };
        let msg = msg
            .ok()
            .flatten()
            .ok_or_else(|| ToolError::new(format!("the client did not answer {method} in time")))?;
        let answer: ClientAnswer = decode(&msg.payload)
            .map_err(|e| ToolError::new(format!("unreadable answer from the client: {e}")))?;
        match (answer.result, answer.error) {
            (Some(result), _) => Ok(result),
            (None, Some(e)) => Err(ToolError::new(format!(
                "the client refused {method}: {}",
                e.message
            ))),
            (None, None) => Err(ToolError::new(format!(
                "the client's answer to {method} was empty"
            ))),
        }
    }

    /// Publishes one reply; `true` once it is delivered (stored, for a durable reply). Durable
    /// replies are retried with the same `Nats-Msg-Id` (stored once) while the events
    /// stream's leader moves, up to 10 s and not after the call's deadline (PROTOCOL §5.2).
    pub(crate) async fn send(&self, event: CallEvent) -> bool {
        match event {
            CallEvent::Accepted => {}
            // The final reply tells the gateway the call ran; `accepted` would add nothing.
            CallEvent::Result { .. } | CallEvent::Error { .. } => {
                *self.owes_accepted.lock().await = false
            }
            _ => self.accept().await,
        }
        self.publish(event).await
    }

    /// Sends `accepted` if it is still due (PROTOCOL §5.2: before any reply but the final
    /// one). The lock orders it before a reply sent concurrently by the call's handler.
    pub(crate) async fn accept(&self) {
        let mut owed = self.owes_accepted.lock().await;
        if std::mem::take(&mut *owed) {
            self.publish(CallEvent::Accepted).await;
        }
    }

    async fn publish(&self, event: CallEvent) -> bool {
        let Some(nats) = &self.nats else { return true };
        let reply = CallReply {
            protocol: PROTOCOL_VERSION,
            call_id: self.call_id.clone(),
            instance: self.instance.clone(),
            event,
        };
        let payload = encode(&reply);
        let mut hdrs = async_nats::HeaderMap::new();
        if let Some(trace) = &self.trace {
            trace.write_nats(&mut hdrs);
        }
        let Some(js) = &self.durable else {
            // A lost core reply cannot be retried meaningfully: the gateway's timeout reports it.
            let published = nats
                .publish_with_headers(self.reply_to.clone(), hdrs, payload)
                .await;
            if let Err(e) = published {
                tracing::warn!(call_id = %self.call_id, error = %e, "could not publish call reply");
                return false;
            }
            return true;
        };
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let msg_id = format!("{}:{}:{n}", self.call_id, self.delivery);
        hdrs.insert(headers::MSG_ID, msg_id.as_str());
        // Across a leader change of the events stream, under the same id (stored once), and
        // never past the call's deadline: nobody waits for the reply then (PROTOCOL §5.2).
        let left = Duration::from_millis(self.deadline_ms.saturating_sub(clock::now_ms()));
        let until = tokio::time::Instant::now() + left.min(failover::RETRY_FOR);
        let stored = failover::retry(until, Repeat::Always, || {
            failover::store_once(
                nats,
                js,
                self.reply_to.clone(),
                hdrs.clone(),
                payload.clone(),
            )
        })
        .await;
        if let Err(e) = stored {
            tracing::error!(call_id = %self.call_id, error = %e, "gave up storing a reply");
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A call as a gateway publishes it, with `principal` set to `principal` (left out when
    /// `None`).
    fn call_body(principal: Option<Value>) -> Vec<u8> {
        let mut body = json!({
            "protocol": PROTOCOL_VERSION,
            "call_id": "c1",
            "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}},
            "reply_to": bus_schema::subjects::call_reply(
                &PoolName::new("demo").unwrap(),
                &bus_schema::names::InstanceId::new("gw").unwrap(),
                "c1",
            ),
            "deadline_ms": 1,
            "lane": "stateless",
            "protocol_version": "2026-07-28",
        });
        if let Some(p) = principal {
            body["principal"] = p;
        }
        serde_json::to_vec(&body).unwrap()
    }

    /// The context the runner builds for a call read off the bus.
    fn context_of(body: &[u8]) -> Result<CallContext, bus_schema::messages::MessageError> {
        let req: CallRequest = decode(body)?;
        Ok(CallContext::for_call(
            &req,
            None,
            PoolName::new("demo").unwrap(),
            InstanceId::new("w1").unwrap(),
            CancellationToken::new(),
            1,
            Catalogue::default(),
        ))
    }

    #[test]
    fn the_handler_sees_the_principal_the_call_carries() {
        let ctx = context_of(&call_body(Some(json!({
            "issuer": "https://issuer.test",
            "subject": "alice",
            "scopes": ["tools:read", "tools:call"],
            "claims": {"groups": ["ops"]},
        }))))
        .unwrap();
        let p = ctx.principal().expect("a principal");
        assert_eq!(p.issuer, "https://issuer.test");
        assert_eq!(p.subject, "alice");
        assert_eq!(p.scopes, ["tools:read", "tools:call"]);
        assert_eq!(p.claims["groups"], json!(["ops"]));
        // Clones (one per `ask` round, per spawned task) share it.
        assert_eq!(ctx.clone().principal(), Some(p));
    }

    #[test]
    fn scopes_and_claims_may_be_left_out() {
        let ctx = context_of(&call_body(Some(
            json!({"issuer": "https://issuer.test", "subject": "svc"}),
        )))
        .unwrap();
        let p = ctx.principal().unwrap();
        assert!(p.scopes.is_empty() && p.claims.is_empty());
    }

    #[test]
    fn without_auth_there_is_no_principal() {
        assert!(context_of(&call_body(None)).unwrap().principal().is_none());
        let null = call_body(Some(Value::Null));
        assert!(context_of(&null).unwrap().principal().is_none());
    }

    #[test]
    fn a_malformed_principal_makes_the_call_unreadable() {
        // The runner terminates an unreadable call (PROTOCOL 5.2): a handler never runs with
        // a caller half understood.
        for bad in [
            json!("alice"),
            json!({"subject": "alice"}),
            json!({"issuer": "https://issuer.test", "subject": 7}),
            json!({"issuer": "https://issuer.test", "subject": "a", "scopes": "tools:call"}),
            json!({"issuer": "https://issuer.test", "subject": "a", "scopes": [1]}),
            json!({"issuer": "https://issuer.test", "subject": "a", "scopes": null}),
            json!({"issuer": "https://issuer.test", "subject": "a", "claims": []}),
            json!({"issuer": "https://issuer.test", "subject": "a", "claims": null}),
        ] {
            assert!(
                context_of(&call_body(Some(bad.clone()))).is_err(),
                "accepted {bad}"
            );
        }
    }
}
