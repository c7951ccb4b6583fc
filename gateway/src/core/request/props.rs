//! Every request's params come from the client: for any method of any revision and any
//! params, parsing gives a typed command or an error that is the client's (unknown method,
//! invalid or malformed params, too large, a missing capability), never a panic and never
//! an internal error.

use bus_schema::mcp::{Method, ProtocolVersion};
use bus_schema::strategies::{json_value, near};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn caller() -> impl Strategy<Value = Caller> {
    let version = prop::sample::select(ProtocolVersion::ALL.to_vec());
    (version, any::<bool>(), any::<bool>()).prop_map(|(v, stateless, extension)| Caller {
        profile: if stateless {
            Profile::stateless(v)
        } else {
            Profile::session(v)
        },
        client_capabilities: if extension {
            json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
        } else {
            json!({})
        },
        session: None,
        min_log: None,
        principal: None,
        client: crate::quota::ClientKey::unknown(),
    })
}

/// Params holding a field of every method, to change one of.
fn params() -> impl Strategy<Value = Value> {
    let every_field = json!({
        "name": "t", "arguments": {"x": 1}, "cursor": "YWZ0ZXI6dA", "taskId": "t1",
        "uri": "x://1", "level": "info", "notifications": {"resourceSubscriptions": ["x://1"]},
        "task": {"ttl": 5000}, "inputResponses": {"k": {}}, "requestState": "s",
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c"},
        "ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": "v"},
        "_meta": {"progressToken": 1}, "requestId": 1,
    });
    prop_oneof![Just(Value::Null), json_value(), near(every_field)]
}

proptest! {
    #[test]
    fn any_params_parse_or_are_the_clients_error(
        caller in caller(),
        method in prop_oneof![
            4 => prop::sample::select(Method::ALL.to_vec()).prop_map(|m| m.as_str().to_owned()),
            1 => any::<String>(),
        ],
        id in json_value(),
        params in params(),
    ) {
        if let Err(e) = Request::parse(&caller, id, &method, params) {
            let clients = matches!(
                e,
                CoreError::MethodNotFound(_)
                    | CoreError::InvalidParams(_)
                    | CoreError::Malformed(_)
                    | CoreError::TooLarge(_)
                    | CoreError::MissingCapability { .. }
            );
            prop_assert!(clients, "{method}: {e:?}");
        }
    }
}
