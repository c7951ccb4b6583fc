//! SSE event IDs: a cursor that names the stream it belongs to (ADR 0003, point 6). A cluster
//! contract: any gateway must read the ids any other issued, so it is defined here.

use std::fmt;

/// Where an event sits, and in which stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventId {
    /// An event of a request's stream: `r:<call id>:<events stream sequence>`, then
    /// `:<progress>` once the stream has carried progress: the highest progress value the
    /// client was sent, below which a resumed stream sends none (MCP progress only
    /// increases, even across a rerun after a worker crash; ADR 0016).
    Request {
        stream: String,
        seq: u64,
        progress: Option<f64>,
    },
    /// An event of the standalone GET stream: `g:<broadcast stream sequence>`.
    Standalone { seq: u64 },
}

impl EventId {
    /// Parses a `Last-Event-ID`. `None` for anything we did not issue.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split(':');
        let id = match (parts.next()?, parts.next(), parts.next()) {
            ("r", Some(stream), Some(seq)) => {
                let valid = !stream.is_empty()
                    && stream.len() <= 64
                    && stream.bytes().all(|b| b.is_ascii_alphanumeric());
                if !valid {
                    return None;
                }
                let progress = match parts.next() {
                    None => None,
                    Some(p) => Some(p.parse::<f64>().ok().filter(|p| p.is_finite())?),
                };
                EventId::Request {
                    stream: stream.to_owned(),
                    seq: seq.parse().ok()?,
                    progress,
                }
            }
            ("g", Some(seq), None) => EventId::Standalone {
                seq: seq.parse().ok()?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventId::Request {
                stream,
                seq,
                progress: None,
            } => write!(f, "r:{stream}:{seq}"),
            EventId::Request {
                stream,
                seq,
                progress: Some(p),
            } => write!(f, "r:{stream}:{seq}:{p}"),
            EventId::Standalone { seq } => write!(f, "g:{seq}"),
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_name_their_stream() {
        for id in [
            EventId::Request {
                stream: "abc123".into(),
                seq: 42,
                progress: None,
            },
            EventId::Request {
                stream: "abc123".into(),
                seq: 43,
                progress: Some(9.5),
            },
            EventId::Request {
                stream: "abc123".into(),
                seq: 44,
                progress: Some(1e21),
            },
            EventId::Standalone { seq: 7 },
        ] {
            assert_eq!(EventId::parse(&id.to_string()), Some(id));
        }
    }

    #[test]
    fn foreign_ids_are_refused() {
        for bad in [
            "",
            "r",
            "r:abc",
            "r:a.b:1",
            "r:abc:x",
            "g:",
            "g:1:2",
            "x:1",
            "r:abc:1:x",
            "r:abc:1:NaN",
            "r:abc:1:inf",
            "r:abc:1:2:3",
            "r::1",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
    }
}
