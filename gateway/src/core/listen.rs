//! Cluster-wide notifications for clients: which broadcast event becomes which MCP
//! notification, and what a `subscriptions/listen` stream (2026-07-28) agreed to deliver.
//! The session lane's standalone stream and the stateless lane's listen stream both render
//! broadcast events through [`notification_for`].

use bus_schema::mcp::notification;
use bus_schema::messages::BroadcastKind;
use serde_json::{json, Map, Value};

use super::error::CoreError;
use super::limits::Limited;

/// The notification method and params a broadcast event is shown as.
pub fn notification_for(kind: &BroadcastKind) -> (&'static str, Value) {
    match kind {
        BroadcastKind::ToolsListChanged => (notification::TOOLS_LIST_CHANGED, json!({})),
        BroadcastKind::PromptsListChanged => (notification::PROMPTS_LIST_CHANGED, json!({})),
        BroadcastKind::ResourcesListChanged => (notification::RESOURCES_LIST_CHANGED, json!({})),
        BroadcastKind::ResourceUpdated { uri } => {
            (notification::RESOURCES_UPDATED, json!({"uri": uri}))
        }
        BroadcastKind::Message {
            level,
            logger,
            data,
        } => (
            notification::MESSAGE,
            json!({"level": level, "logger": logger, "data": data}),
        ),
    }
}

/// What a listen stream agreed to deliver.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ListenFilter {
    tools_list_changed: bool,
    prompts_list_changed: bool,
    resources_list_changed: bool,
    resource_subscriptions: Vec<String>,
}

impl ListenFilter {
    /// Keeps only the resources `visible` allows: a resource the caller may not read is one it
    /// cannot follow either, and leaving it out (as for a resource that does not exist)
    /// reveals nothing.
    pub fn retain_resources(&mut self, visible: impl Fn(&str) -> bool) {
        self.resource_subscriptions.retain(|uri| visible(uri));
    }

    pub fn parse(params: &Value) -> Result<Self, CoreError> {
        let n = params.get("notifications").cloned().unwrap_or(json!({}));
        if !n.is_object() {
            return Err(CoreError::invalid_params(
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
                    CoreError::invalid_params(
                        "Invalid params: resourceSubscriptions must be strings",
                    )
                })?,
            Some(_) => {
                return Err(CoreError::invalid_params(
                    "Invalid params: resourceSubscriptions must be an array",
                ))
            }
        };
        // Held in gateway memory for as long as the stream is open.
        Limited::ResourceSubscriptions.check(resource_subscriptions.len())?;
        for uri in &resource_subscriptions {
            Limited::Uri.check(uri.len())?;
        }
        let flag = |key: &str| n.get(key).and_then(Value::as_bool).unwrap_or(false);
        Ok(Self {
            tools_list_changed: flag("toolsListChanged"),
            prompts_list_changed: flag("promptsListChanged"),
            resources_list_changed: flag("resourcesListChanged"),
            resource_subscriptions,
        })
    }

    /// What the stream will deliver, as the client asked for it.
    pub fn acknowledged(&self) -> Value {
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

    /// Whether the stream delivers this event.
    pub fn wants(&self, kind: &BroadcastKind) -> bool {
        match kind {
            BroadcastKind::ToolsListChanged => self.tools_list_changed,
            BroadcastKind::PromptsListChanged => self.prompts_list_changed,
            BroadcastKind::ResourcesListChanged => self.resources_list_changed,
            BroadcastKind::ResourceUpdated { uri } => self.resource_subscriptions.contains(uri),
            // Server-wide messages are for session-lane standalone streams only (ADR 0023):
            // a listen stream agrees on list changes and resource updates, nothing else.
            BroadcastKind::Message { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_delivers_only_what_was_asked() {
        let f = ListenFilter::parse(
            &json!({"notifications": {"toolsListChanged": true, "promptsListChanged": true}}),
        )
        .unwrap();
        assert_eq!(
            f.acknowledged(),
            json!({"toolsListChanged": true, "promptsListChanged": true})
        );
        assert!(f.wants(&BroadcastKind::ToolsListChanged));
        assert!(f.wants(&BroadcastKind::PromptsListChanged));
        assert!(!f.wants(&BroadcastKind::ResourcesListChanged));
        assert!(!f.wants(&BroadcastKind::ResourceUpdated { uri: "a".into() }));
        let r = ListenFilter::parse(
            &json!({"notifications": {"resourceSubscriptions": ["file:///x"]}}),
        )
        .unwrap();
        assert!(r.wants(&BroadcastKind::ResourceUpdated {
            uri: "file:///x".into()
        }));
        assert!(!r.wants(&BroadcastKind::ResourceUpdated {
            uri: "file:///y".into()
        }));
        assert!(!r.wants(&BroadcastKind::ToolsListChanged));
        assert!(
            ListenFilter::parse(&json!({"notifications": {"resourceSubscriptions": [1]}})).is_err()
        );
        assert_eq!(
            notification_for(&BroadcastKind::ResourceUpdated { uri: "u".into() }).1,
            json!({"uri": "u"})
        );
    }
}
