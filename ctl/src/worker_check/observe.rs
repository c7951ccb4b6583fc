//! The kit as an observer: everything the worker sends about the kit's calls is logged as it
//! arrives, and checks are predicates over that log, each waited for with a bound.
//!
//! Three subscriptions feed the log: the stateless replies (the kit's gateway reply
//! subjects), the live copies of the durable replies (so only what the events stream
//! stored, with its `Nats-Msg-Id`), and the pool consumer's ack subjects, where the worker's
//! `+ACK`, `-NAK`, `+TERM` and `+WPI` travel (ADR 0018: that is how the kit tells them apart).
//! Order is kept within one subscription, not across them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bus_schema::messages::{decode, CallEvent, CallReply};
use bus_schema::{headers, subjects, topology};
use futures::StreamExt;
use tokio::sync::watch;

use super::bus::Bus;
use super::call::Sent;

/// How the worker settled a JetStream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckKind {
    Ack,
    Nak,
    Term,
    /// `+WPI`: still working; not a settlement.
    Progress,
    Other(String),
}

impl AckKind {
    fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let word = text.split_whitespace().next().unwrap_or("");
        match word {
            "" | "+ACK" | "+NXT" => AckKind::Ack,
            "-NAK" => AckKind::Nak,
            "+TERM" => AckKind::Term,
            "+WPI" => AckKind::Progress,
            _ => AckKind::Other(text.into_owned()),
        }
    }
}

/// One reply the worker sent.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply as a `CallReply`, or why it is not one.
    pub body: Result<CallReply, String>,
    /// `Nats-Msg-Id`, on durable replies.
    pub msg_id: Option<String>,
    /// Arrival order among all replies: meaningful between replies of one lane, which
    /// arrive on one subscription.
    pub at: u64,
}

impl Reply {
    pub fn event(&self) -> Option<&CallEvent> {
        self.body.as_ref().ok().map(|r| &r.event)
    }

    pub fn kind(&self) -> &'static str {
        match self.event() {
            None => "unreadable",
            Some(CallEvent::Accepted) => "accepted",
            Some(CallEvent::Progress { .. }) => "progress",
            Some(CallEvent::Log { .. }) => "log",
            Some(CallEvent::Request { .. }) => "request",
            Some(CallEvent::Detach) => "detach",
            Some(CallEvent::Escalate) => "escalate",
            Some(CallEvent::Result { .. }) => "result",
            Some(CallEvent::Error { .. }) => "error",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self.event(),
            Some(CallEvent::Result { .. } | CallEvent::Error { .. })
        )
    }
}

/// An acknowledgement the worker sent for one delivery of a call.
#[derive(Debug, Clone)]
pub struct Ack {
    pub kind: AckKind,
    /// The delivery count it acknowledges (1 the first time).
    pub delivered: u64,
}

#[derive(Default)]
struct Log {
    /// Replies seen so far, for [`Reply::at`].
    count: u64,
    /// Replies by the call id their subject (stateless) or body (durable) names, in order.
    replies: HashMap<String, Vec<Reply>>,
    /// Acks by stream sequence, in order.
    acks: HashMap<u64, Vec<Ack>>,
}

/// Everything seen about one call so far.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub replies: Vec<Reply>,
    pub acks: Vec<Ack>,
}

impl Trace {
    /// The first ack that settles the message (not `+WPI`).
    pub fn settled(&self) -> Option<&Ack> {
        self.acks.iter().find(|a| a.kind != AckKind::Progress)
    }

    pub fn final_reply(&self) -> Option<&Reply> {
        self.replies.iter().find(|r| r.is_final())
    }

    /// The kinds of the replies, in order: what a failure message shows.
    pub fn kinds(&self) -> String {
        let kinds: Vec<&str> = self.replies.iter().map(Reply::kind).collect();
        if kinds.is_empty() {
            "no replies".to_owned()
        } else {
            kinds.join(", ")
        }
    }
}

pub struct Recorder {
    log: Arc<Mutex<Log>>,
    changed: watch::Sender<u64>,
}

impl Recorder {
    /// Subscribes to everything the worker may send about the kit's calls.
    pub async fn start(bus: &Bus) -> Result<Self> {
        let log = Arc::new(Mutex::new(Log::default()));
        let (changed, _) = watch::channel(0u64);
        let mut stateless = bus
            .client
            .subscribe(subjects::gateway_replies(&bus.gateway))
            .await?;
        let mut durable = bus
            .client
            .subscribe(subjects::session_events_live_all(&bus.session))
            .await?;
        let mut acks = bus.client.subscribe(topology::pool_acks(&bus.pool)).await?;
        bus.client.flush().await?;
        let (l, c) = (log.clone(), changed.clone());
        tokio::spawn(async move {
            while let Some(msg) = stateless.next().await {
                let Some((_, call_id)) = subjects::parse_reply(&msg.subject) else {
                    continue;
                };
                let call_id = call_id.to_owned();
                let body = decode::<CallReply>(&msg.payload)
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        if r.call_id == call_id {
                            Ok(r)
                        } else {
                            Err(format!(
                                "reply names call {} on the subject of {call_id}",
                                r.call_id
                            ))
                        }
                    });
                push_reply(
                    &l,
                    &c,
                    call_id,
                    Reply {
                        body,
                        msg_id: None,
                        at: 0,
                    },
                );
            }
        });
        let (l, c) = (log.clone(), changed.clone());
        tokio::spawn(async move {
            while let Some(msg) = durable.next().await {
                let parsed = decode::<CallReply>(&msg.payload);
                let Ok(reply) = parsed else { continue };
                let msg_id = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(headers::MSG_ID))
                    .map(|v| v.as_str().to_owned());
                let call_id = reply.call_id.clone();
                push_reply(
                    &l,
                    &c,
                    call_id,
                    Reply {
                        body: Ok(reply),
                        msg_id,
                        at: 0,
                    },
                );
            }
        });
        let (l, c) = (log.clone(), changed.clone());
        tokio::spawn(async move {
            while let Some(msg) = acks.next().await {
                let Some((delivered, seq)) = ack_position(&msg.subject) else {
                    continue;
                };
                let ack = Ack {
                    kind: AckKind::parse(&msg.payload),
                    delivered,
                };
                l.lock()
                    .expect("not poisoned")
                    .acks
                    .entry(seq)
                    .or_default()
                    .push(ack);
                c.send_modify(|n| *n += 1);
            }
        });
        Ok(Self { log, changed })
    }

    /// What has been seen of `sent` so far.
    pub fn trace(&self, sent: &Sent) -> Trace {
        self.trace_of(&sent.call_id, sent.seq)
    }

    pub fn trace_of(&self, call_id: &str, seq: u64) -> Trace {
        let log = self.log.lock().expect("not poisoned");
        Trace {
            replies: log.replies.get(call_id).cloned().unwrap_or_default(),
            acks: log.acks.get(&seq).cloned().unwrap_or_default(),
        }
    }

    /// How many of `sent` (calls of one lane) were accepted before the first of them sent
    /// its final reply.
    pub fn accepted_before_first_result(&self, sent: &[Sent]) -> usize {
        let traces: Vec<Trace> = sent.iter().map(|s| self.trace(s)).collect();
        let first_final = traces
            .iter()
            .filter_map(|t| t.final_reply().map(|r| r.at))
            .min()
            .unwrap_or(u64::MAX);
        traces
            .iter()
            .filter(|t| {
                t.replies
                    .iter()
                    .any(|r| r.kind() == "accepted" && r.at < first_final)
            })
            .count()
    }

    /// Waits until `done` holds for the trace of `sent`, at most `within`; returns the trace
    /// either way and whether `done` held.
    pub async fn wait(
        &self,
        sent: &Sent,
        within: Duration,
        done: impl Fn(&Trace) -> bool,
    ) -> (Trace, bool) {
        self.wait_for(&sent.call_id, sent.seq, within, done).await
    }

    pub async fn wait_for(
        &self,
        call_id: &str,
        seq: u64,
        within: Duration,
        done: impl Fn(&Trace) -> bool,
    ) -> (Trace, bool) {
        let until = Instant::now() + within;
        let mut changed = self.changed.subscribe();
        loop {
            let trace = self.trace_of(call_id, seq);
            if done(&trace) {
                return (trace, true);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, changed.changed()).await.is_err() {
                let trace = self.trace_of(call_id, seq);
                let ok = done(&trace);
                return (trace, ok);
            }
        }
    }
}

fn push_reply(log: &Mutex<Log>, changed: &watch::Sender<u64>, call_id: String, mut reply: Reply) {
    let mut log = log.lock().expect("not poisoned");
    log.count += 1;
    reply.at = log.count;
    log.replies.entry(call_id).or_default().push(reply);
    drop(log);
    changed.send_modify(|n| *n += 1);
}

/// The delivery count and stream sequence in a JetStream ack subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
/// or the newer form with a domain and account hash before the stream (12 tokens and more).
fn ack_position(subject: &str) -> Option<(u64, u64)> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let at = match tokens.len() {
        9 => 4,
        n if n >= 11 => 6,
        _ => return None,
    };
    Some((tokens[at].parse().ok()?, tokens[at + 1].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_subjects_and_bodies_parse() {
        // The pool's ack subjects, as the server fills in the tokens after the consumer:
        // `<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>`, and in the newer
        // form with domain and account hash after `$JS.ACK` and a random token at the end.
        let pool = bus_schema::names::PoolName::new("kit").unwrap();
        let acks = topology::pool_acks(&pool);
        let v1 = acks.replace('>', "2.17.30.1700000000000000000.0");
        assert_eq!(ack_position(&v1), Some((2, 17)));
        let v2 = acks
            .replacen("$JS.ACK.", "$JS.ACK.hub.ACCHASH.", 1)
            .replace('>', "1.5.6.1700000000000000000.0.rnd");
        assert_eq!(ack_position(&v2), Some((1, 5)));
        assert_eq!(ack_position(acks.trim_end_matches(".>")), None);
        assert_eq!(AckKind::parse(b""), AckKind::Ack);
        assert_eq!(AckKind::parse(b"+ACK"), AckKind::Ack);
        assert_eq!(AckKind::parse(b"-NAK {\"delay\":1}"), AckKind::Nak);
        assert_eq!(AckKind::parse(b"+TERM bad body"), AckKind::Term);
        assert_eq!(AckKind::parse(b"+WPI"), AckKind::Progress);
    }
}
