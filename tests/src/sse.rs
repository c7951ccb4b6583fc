//! A streaming SSE reader for tests that must see events as they arrive (and drop the
//! connection mid-stream).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures::StreamExt;
use serde_json::Value;

/// One SSE event, or a comment line (keep-alive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
    /// Comment lines seen before this event (keep-alives).
    pub comments: usize,
}

impl SseEvent {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// An open SSE response.
pub struct SseStream {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
    pending_comments: usize,
}

impl SseStream {
    /// Sends `req` and returns the stream if the response is SSE.
    pub async fn open(req: reqwest::RequestBuilder) -> Result<Self> {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let is_sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if !is_sse {
            let body = resp.text().await.unwrap_or_default();
            bail!("not an SSE response: {status} {body}");
        }
        Ok(Self {
            status,
            headers,
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
            pending_comments: 0,
        })
    }

    /// The next event, `None` when the server closed the stream, error on timeout.
    pub async fn next(&mut self, within: Duration) -> Result<Option<SseEvent>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.take_event() {
                return Ok(Some(event));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Err(anyhow!("no SSE event within {within:?}")),
                Ok(None) => return Ok(None),
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk?)),
            }
        }
    }

    /// Events until the stream closes (or `within` passes).
    pub async fn collect(&mut self, within: Duration) -> Result<Vec<SseEvent>> {
        let mut out = Vec::new();
        while let Some(e) = self.next(within).await? {
            out.push(e);
        }
        Ok(out)
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let normalized = self.buf.replace("\r\n", "\n");
        self.buf = normalized;
        let end = self.buf.find("\n\n")?;
        let block: String = self.buf.drain(..end + 2).collect();
        let mut event = SseEvent::default();
        let mut data = Vec::new();
        let mut fields = false;
        for line in block.lines().filter(|l| !l.is_empty()) {
            if line.starts_with(':') {
                self.pending_comments += 1;
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            fields = true;
            match name {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                "retry" => event.retry = value.parse().ok(),
                _ => {}
            }
        }
        if !fields {
            // A block of comments only: keep counting, look for the next block.
            return self.take_event();
        }
        event.data = data.join("\n");
        event.comments = std::mem::take(&mut self.pending_comments);
        Some(event)
    }

    /// Comment lines seen since the last event was returned.
    pub fn comments_seen(&self) -> usize {
        self.pending_comments
    }
}
