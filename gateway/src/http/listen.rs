//! The `subscriptions/listen` stream (2026-07-28): a long-lived POST stream of the change
//! notifications the client asked for (the core's [`ListenFilter`]), fed by the same
//! cluster-wide broadcast as the session lane's standalone stream, without replay.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bus_schema::mcp::code;
use bus_schema::mcp::{meta, notification as note, result_type};
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
use crate::stream::{BroadcastItem, Follower};

/// Opens a listen stream; `client_slot` is the client's quota slot, held while it is open.
pub fn open(app: &App, id: Value, filter: ListenFilter, client_slot: Slot) -> Response {
    let slot = match stream_slot(app) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let subscription = id.clone();
    let with_id = move |mut params: Value| {
        params["_meta"] = json!({meta::SUBSCRIPTION_ID: subscription.clone()});
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
    let render = move |item: BroadcastItem| {
        let frame = filter.wants(&item.kind).then(|| {
            METRICS
                .broadcast_deliveries
                .with_label_values(&[item.kind.subject_token()])
                .inc();
            let (method, params) = notification_for(&item.kind);
            message(notification(method, with_id(params)))
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

fn message(msg: Value) -> Frame {
    Frame::Message {
        id: None,
        data: msg.to_string(),
    }
}
