//! A streaming SSE reader for tests that must see events as they arrive (and drop the
//! connection mid-stream).

use std::collections::{BTreeMap, BTreeSet};
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
    /// Bytes received, line ends normalized to `\n`; events are taken from `start` on.
    buf: Vec<u8>,
    /// Where the first event not yet taken begins in `buf`. Taking an event moves it rather
    /// than shifting the rest of the buffer: a replay arrives in chunks of ~150 events, and
    /// shifting (and normalizing) the whole buffer once per event made reading them
    /// quadratic, ~9 ms of a 1,000-event resume (docs/PERFORMANCE.md, issue 18, P4).
    start: usize,
    /// The last chunk ended in `\r`: a `\n` opening the next one belongs to it.
    pending_cr: bool,
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
            buf: Vec::new(),
            start: 0,
            pending_cr: false,
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
                Ok(Some(chunk)) => self.append(&chunk?),
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

    /// Appends a chunk with its `\r\n` line ends made `\n`, dropping what was already taken
    /// once that is most of the buffer.
    fn append(&mut self, chunk: &[u8]) {
        if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // A `\r` waiting from the last chunk: dropped if this one starts with the `\n`.
        if std::mem::take(&mut self.pending_cr) && chunk.first() != Some(&b'\n') {
            self.buf.push(b'\r');
        }
        for (i, &b) in chunk.iter().enumerate() {
            match b {
                b'\r' if chunk.get(i + 1) == Some(&b'\n') => {}
                b'\r' if i + 1 == chunk.len() => self.pending_cr = true,
                _ => self.buf.push(b),
            }
        }
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let rest = &self.buf[self.start..];
        let end = rest.windows(2).position(|w| w == b"\n\n")?;
        let block = String::from_utf8_lossy(&rest[..end + 2]).into_owned();
        self.start += end + 2;
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

/// What a client saw of one request's stream across its connections: each progress step
/// with how often it came, the progress tokens they carried, the final responses, and the
/// last event id (to resume from).
#[derive(Default, Debug)]
pub struct Seen {
    pub progress: BTreeMap<u64, usize>,
    pub tokens: BTreeSet<String>,
    pub responses: Vec<Value>,
    pub last_id: Option<String>,
}

impl Seen {
    pub fn take(&mut self, e: &SseEvent) {
        if let Some(id) = &e.id {
            self.last_id = Some(id.clone());
        }
        let Some(msg) = e.json() else { return };
        if msg["method"] == "notifications/progress" {
            let step = msg["params"]["progress"]
                .as_f64()
                .expect("a numeric progress") as u64;
            *self.progress.entry(step).or_default() += 1;
            self.tokens
                .insert(msg["params"]["progressToken"].to_string());
        } else if msg.get("result").is_some() || msg.get("error").is_some() {
            self.responses.push(msg);
        }
    }

    pub fn take_all(&mut self, events: &[SseEvent]) {
        events.iter().for_each(|e| self.take(e));
    }

    /// Reads `stream` until `steps` distinct progress steps were seen, each event waited
    /// for at most `within`.
    pub async fn read_until_progress(
        &mut self,
        stream: &mut SseStream,
        steps: usize,
        within: Duration,
    ) {
        while self.progress.len() < steps {
            let e = stream
                .next(within)
                .await
                .expect("the stream broke")
                .expect("the stream ended early");
            self.take(&e);
        }
    }

    /// Reads `stream` to its end, waiting at most `within` for it.
    pub async fn read_to_end(&mut self, stream: &mut SseStream, within: Duration) {
        self.take_all(&stream.collect(within).await.expect("the stream broke"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(chunks: &[&str]) -> SseStream {
        let mut stream = SseStream {
            status: 200,
            headers: reqwest::header::HeaderMap::new(),
            body: futures::stream::empty().boxed(),
            buf: Vec::new(),
            start: 0,
            pending_cr: false,
            pending_comments: 0,
        };
        for chunk in chunks {
            stream.append(chunk.as_bytes());
        }
        stream
    }

    #[test]
    fn events_split_anywhere_across_chunks_come_out_whole_and_in_order() {
        let mut s = reader(&[
            "id: 1\r",
            "\ndata: a\r\n\r\n:\r\n\r\nid: 2\nda",
            "ta: b\n\n",
        ]);
        let first = s.take_event().expect("first event");
        assert_eq!((first.id.as_deref(), first.data.as_str()), (Some("1"), "a"));
        let second = s.take_event().expect("second event");
        assert_eq!(
            (second.id.as_deref(), second.data.as_str()),
            (Some("2"), "b")
        );
        assert_eq!(second.comments, 1);
        assert!(s.take_event().is_none());
    }

    #[test]
    fn a_carriage_return_not_followed_by_a_line_feed_is_kept() {
        let mut s = reader(&["data: a\r", "b\n\n"]);
        assert_eq!(s.take_event().expect("event").data, "a\rb");
    }
}
