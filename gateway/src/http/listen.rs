//! The `subscriptions/listen` stream (2026-07-28): a long-lived POST stream of the change
//! notifications the client asked for (the core's [`ListenFilter`]), fed by the same
//! cluster-wide broadcast as the session lane's standalone stream, without replay.

use axum::response::Response;
use bus_schema::mcp::{meta, notification as note, result_type};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::jsonrpc::{notification, result_message};
use super::sse::{self, Frame};
use crate::app::App;
use crate::core::{notification_for, ListenFilter};
use crate::stream::{BroadcastItem, Follower};

pub fn open(app: &App, id: Value, filter: ListenFilter) -> Response {
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
    )
}

fn message(msg: Value) -> Frame {
    Frame::Message {
        id: None,
        data: msg.to_string(),
    }
}
