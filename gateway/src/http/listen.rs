//! `subscriptions/listen` (2026-07-28): a long-lived POST stream of the change notifications
//! the client asked for, fed by the same cluster-wide broadcast as the session lane's
//! standalone stream, without replay.

use axum::response::Response;
use bus_schema::messages::BroadcastKind;
use serde_json::{json, Map, Value};

use super::jsonrpc::{error_response, notification, result_message, Request};
use super::sse::{self, Frame};
use super::version::meta;
use crate::error::McpError;
use crate::server::App;
use crate::stream::{BroadcastItem, Follower};
use futures::StreamExt;

/// What a listen stream agreed to deliver.
#[derive(Debug, Default, Clone, PartialEq)]
struct Filter {
    tools_list_changed: bool,
    prompts_list_changed: bool,
    resources_list_changed: bool,
    resource_subscriptions: Vec<String>,
}

impl Filter {
    fn parse(params: &Value) -> Result<Self, McpError> {
        let n = params.get("notifications").cloned().unwrap_or(json!({}));
        if !n.is_object() {
            return Err(McpError::invalid_params(
                "Invalid params: \"notifications\" must be an object",
            ));
        }
        let resource_subscriptions = match n.get("resourceSubscriptions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(uris)) => uris
                .iter()
                .map(|u| u.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    McpError::invalid_params(
                        "Invalid params: resourceSubscriptions must be strings",
                    )
                })?,
            Some(_) => {
                return Err(McpError::invalid_params(
                    "Invalid params: resourceSubscriptions must be an array",
                ))
            }
        };
        let flag = |key: &str| n.get(key).and_then(Value::as_bool).unwrap_or(false);
        Ok(Self {
            tools_list_changed: flag("toolsListChanged"),
            prompts_list_changed: flag("promptsListChanged"),
            resources_list_changed: flag("resourcesListChanged"),
            resource_subscriptions,
        })
    }

    /// What the stream will deliver, as the client asked for it.
    fn acknowledged(&self) -> Value {
        let mut ack = Map::new();
        for (on, key) in [
            (self.tools_list_changed, "toolsListChanged"),
            (self.prompts_list_changed, "promptsListChanged"),
            (self.resources_list_changed, "resourcesListChanged"),
        ] {
            if on {
                ack.insert(key.into(), json!(true));
            }
        }
        if !self.resource_subscriptions.is_empty() {
            ack.insert(
                "resourceSubscriptions".into(),
                json!(self.resource_subscriptions),
            );
        }
        Value::Object(ack)
    }

    fn message(&self, kind: &BroadcastKind) -> Option<(&'static str, Value)> {
        match kind {
            BroadcastKind::ToolsListChanged if self.tools_list_changed => {
                Some(("notifications/tools/list_changed", json!({})))
            }
            BroadcastKind::PromptsListChanged if self.prompts_list_changed => {
                Some(("notifications/prompts/list_changed", json!({})))
            }
            BroadcastKind::ResourcesListChanged if self.resources_list_changed => {
                Some(("notifications/resources/list_changed", json!({})))
            }
            BroadcastKind::ResourceUpdated { uri } if self.resource_subscriptions.contains(uri) => {
                Some(("notifications/resources/updated", json!({"uri": uri})))
            }
            _ => None,
        }
    }
}

pub fn open(app: &App, r: Request) -> Response {
    let filter = match Filter::parse(&r.params) {
        Ok(f) => f,
        Err(e) => return error_response(&r.id, &e),
    };
    let subscription = r.id.clone();
    let with_id = move |mut params: Value| {
        params["_meta"] = json!({meta::SUBSCRIPTION_ID: subscription.clone()});
        params
    };
    let ack = notification(
        "notifications/subscriptions/acknowledged",
        with_id(json!({"notifications": filter.acknowledged()})),
    );
    // Graceful closure: the listen request's own response ends the stream.
    let done = message(result_message(
        &r.id,
        with_id(json!({"resultType": "complete"})),
    ));
    let render = move |item: BroadcastItem| {
        let frame = filter
            .message(&item.kind)
            .map(|(method, params)| message(notification(method, with_id(params))));
        std::future::ready(frame)
    };
    let live = sse::follow(
        Follower::live(&app.broadcast),
        app.release.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_delivers_only_what_was_asked() {
        let f = Filter::parse(
            &json!({"notifications": {"toolsListChanged": true, "promptsListChanged": true}}),
        )
        .unwrap();
        assert_eq!(
            f.acknowledged(),
            json!({"toolsListChanged": true, "promptsListChanged": true})
        );
        assert!(f.message(&BroadcastKind::ToolsListChanged).is_some());
        assert!(f.message(&BroadcastKind::PromptsListChanged).is_some());
        assert!(f.message(&BroadcastKind::ResourcesListChanged).is_none());
        assert!(f
            .message(&BroadcastKind::ResourceUpdated { uri: "a".into() })
            .is_none());
        let r = Filter::parse(&json!({"notifications": {"resourceSubscriptions": ["file:///x"]}}))
            .unwrap();
        assert!(r
            .message(&BroadcastKind::ResourceUpdated {
                uri: "file:///x".into()
            })
            .is_some());
        assert!(r
            .message(&BroadcastKind::ResourceUpdated {
                uri: "file:///y".into()
            })
            .is_none());
        assert!(r.message(&BroadcastKind::ToolsListChanged).is_none());
        assert!(Filter::parse(&json!({"notifications": {"resourceSubscriptions": [1]}})).is_err());
    }
}
