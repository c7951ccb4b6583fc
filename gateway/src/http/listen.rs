//! The `subscriptions/listen` stream (2026-07-28): a long-lived POST stream of the change
//! notifications the client asked for (the core's [`ListenFilter`]), fed by the same
//! cluster-wide broadcast as the session lane's standalone stream, without replay.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bus_schema::mcp::code;
use bus_schema::mcp::{meta, notification as note, result_type};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{error_response, notification, result_message};
use super::sse::{self, Frame};
use super::wire::McpError;
use crate::app::App;
use crate::core::{notification_for, ListenFilter};
use crate::metrics::METRICS;
use crate::quota::Slot;
use crate::stream::{BroadcastItem, Follower, Rendered};

/// Opens a listen stream; `client_slot` is the client's quota slot, held while it is open.
pub fn open(app: &App, id: Value, filter: ListenFilter, client_slot: Slot) -> Response {
    let slot = match stream_slot(app) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let meta = json!({meta::SUBSCRIPTION_ID: id.clone()});
    let with_id = |mut params: Value| {
        params["_meta"] = meta.clone();
        params
    };
    let ack = notification(
        note::SUBSCRIPTIONS_ACKNOWLEDGED,
        with_id(json!({"notifications": filter.acknowledged()})),
    );
    // Graceful closure: the listen request's own response ends the stream.
    let done = message(result_message(
        &id,
        with_id(json!({"resultType": result_type::COMPLETE})),
    ));
    // This stream's own part of every notification, encoded once: its `_meta`.
    let meta = Bytes::from(meta.to_string());
    let render = move |item: Arc<BroadcastItem>| {
        let frame = filter.wants(&item.kind).then(|| {
            let shared = item.rendered.get_or_init(|| render_shared(&item));
            shared.deliveries.inc();
            Frame::Encoded([shared.head.clone(), meta.clone(), shared.tail.clone()])
        });
        std::future::ready(frame)
    };
    let live = sse::follow(
        Follower::live(&app.broadcast),
        app.release.clone(),
        CancellationToken::new(),
        render,
        done,
    );
    // The acknowledgement is the first message, before any notification.
    sse::response(
        "listen",
        app.config.sse_keep_alive,
        futures::stream::once(async move { message(ack) }).chain(live),
        (slot, client_slot),
    )
}

/// A permit for one more long-lived stream on this node, or the 503 that sends the client
/// elsewhere.
pub fn stream_slot(app: &App) -> Result<OwnedSemaphorePermit, Box<Response>> {
    app.open_streams.clone().try_acquire_owned().map_err(|_| {
        METRICS.refused.with_label_values(&["open_streams"]).inc();
        let limit = app.config.max_open_streams;
        let e = McpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::INTERNAL_ERROR,
            format!(
                "Service Unavailable: this gateway holds its maximum of {limit} open streams; \
                 retry later or on another node"
            ),
        )
        .with_data(json!({"reason": "too_many_streams", "limit": limit}));
        let mut resp = error_response(&Value::Null, &e);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        Box::new(resp)
    })
}

/// A broadcast event as every listen stream writes it, around the stream's own `_meta`:
/// `notification(method, params)` with `params._meta` last, as one SSE `message` event.
fn render_shared(item: &BroadcastItem) -> Rendered {
    let (method, mut params) = notification_for(&item.kind);
    if let Some(map) = params.as_object_mut() {
        // The stream's own `_meta` replaces any, as `with_id` does.
        map.remove("_meta");
    }
    let mut head = format!(
        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":{},\"params\":",
        Value::from(method)
    );
    let params = params.to_string();
    // `params` is an object: reopen it to append `_meta` as its last member.
    let members = params
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or("");
    head.push('{');
    head.push_str(members);
    if !members.is_empty() {
        head.push(',');
    }
    head.push_str("\"_meta\":");
    Rendered {
        head: head.into(),
        tail: Bytes::from_static(b"}}\n\n"),
        deliveries: METRICS
            .broadcast_deliveries
            .with_label_values(&[item.kind.subject_token()]),
    }
}

fn message(msg: Value) -> Frame {
    Frame::Message {
        id: None,
        data: msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::messages::BroadcastKind;

    /// The shared rendering is byte-for-byte an SSE event whose data is the notification the
    /// stream would have built for itself.
    #[test]
    fn a_shared_rendering_is_the_notification_with_the_streams_meta() {
        let kinds = [
            BroadcastKind::ToolsListChanged,
            BroadcastKind::ResourceUpdated {
                uri: "file:///a \"b\"".into(),
            },
            BroadcastKind::Message {
                level: bus_schema::mcp::LogLevel::parse("info").unwrap(),
                logger: "pool/l".into(),
                data: json!({"x": [1, {"_meta": 2}]}),
            },
        ];
        for kind in kinds {
            let item = BroadcastItem::new(7, kind.clone());
            let shared = render_shared(&item);
            let meta = json!({meta::SUBSCRIPTION_ID: "sub-1"});
            // The three parts an `Encoded` frame writes, one after another.
            let parts = [
                shared.head.clone(),
                Bytes::from(meta.to_string()),
                shared.tail.clone(),
            ];
            let text = String::from_utf8(parts.concat()).unwrap();
            let data = text
                .strip_prefix("event: message\ndata: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("not one SSE message event: {text:?}"));
            assert!(!data.contains('\n'));
            let (method, mut params) = notification_for(&kind);
            params["_meta"] = meta;
            let parsed: Value = serde_json::from_str(data).unwrap();
            assert_eq!(parsed, notification(method, params), "{kind:?}");
        }
    }
}
