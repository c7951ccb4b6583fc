//! Multi round-trip requests (MRTR, 2026-07-28): the gateway's half.
//!
//! A worker that needs the client's input answers `tools/call`, `prompts/get` or
//! `resources/read` with an `InputRequiredResult`. On the way out the gateway checks that it
//! only asks for what the client declared, and seals the worker's `requestState` with the
//! cluster key. On the retry, which may reach any node, the gateway checks `inputResponses`,
//! opens the state and hands the worker its own state back in `params.requestState`.
//! Workers therefore never hold keys, and a worker in any language gets MRTR for free.

use std::sync::Arc;

use bus_schema::mcp::{capability, Method};
use serde_json::{json, Value};

use super::caller::Caller;
use super::error::CoreError;
use super::request::Request;
use crate::catalog::{CatalogSnapshot, ListKind, Lookup};
use crate::request_state::{Binding, StateSealer};

/// The requests that may answer with an `InputRequiredResult`.
pub fn supports(method: Method) -> bool {
    matches!(
        method,
        Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead
    )
}

/// What the gateway needs to finish one request's `InputRequiredResult`.
pub struct Mrtr {
    sealer: Arc<StateSealer>,
    binding: String,
    client_capabilities: Value,
}

impl Mrtr {
    /// Validates a retry's `inputResponses` and `requestState`, replacing the sealed state
    /// with the worker's own (or removing it when the worker had none). `catalog` says which
    /// pool serves the request's target now.
    pub fn accept(
        sealer: &Arc<StateSealer>,
        catalog: &CatalogSnapshot,
        caller: &Caller,
        r: &mut Request,
    ) -> Result<Self, CoreError> {
        let binding = binding(catalog, caller, r);
        let params = r.params.as_object_mut();
        if let Some(params) = params {
            match params.get("inputResponses") {
                None => {}
                Some(Value::Object(responses)) => {
                    if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
                        return Err(invalid(format!(
                            "Invalid params: inputResponses[{key:?}] must be the client's result object"
                        )));
                    }
                }
                Some(_) => return Err(invalid("Invalid params: inputResponses must be an object")),
            }
            match params.remove("requestState") {
                None => {}
                Some(Value::String(token)) => {
                    let state = sealer.open(&binding, &token)?;
                    if let Some(state) = state {
                        params.insert("requestState".into(), state);
                    }
                }
                Some(_) => return Err(invalid("Invalid params: requestState must be a string")),
            }
        }
        Ok(Self {
            sealer: sealer.clone(),
            binding,
            client_capabilities: caller.client_capabilities.clone(),
        })
    }

    /// Makes a worker's `InputRequiredResult` fit to send: only declared capabilities, and
    /// the worker's state sealed.
    pub fn finish(&self, result: &mut Value) -> Result<(), CoreError> {
        let Some(obj) = result.as_object_mut() else {
            return Err(CoreError::BadWorkerAnswer(
                "the worker's InputRequiredResult is not an object".into(),
            ));
        };
        if let Some(requests) = obj.get("inputRequests") {
            let requests = requests.as_object().ok_or_else(|| {
                CoreError::BadWorkerAnswer("the worker's inputRequests is not an object".into())
            })?;
            for request in requests.values() {
                let method = request.get("method").and_then(Value::as_str).unwrap_or("");
                let capability = capability::for_client_request(method).ok_or_else(|| {
                    CoreError::BadWorkerAnswer(format!(
                        "the worker asked the client for {method:?}, which is not an input request"
                    ))
                })?;
                if self.client_capabilities.get(capability).is_none() {
                    return Err(missing_capability(capability, method));
                }
            }
        }
        let state = obj.remove("requestState");
        let sealed = self.sealer.seal(&self.binding, state);
        obj.insert("requestState".into(), Value::String(sealed));
        Ok(())
    }
}

/// The binding of `r`'s state ([`Binding`]): the exact target field of its method and the
/// pool serving that target.
fn binding(catalog: &CatalogSnapshot, caller: &Caller, r: &Request) -> String {
    let field = match r.method {
        Method::ResourcesRead => "uri",
        _ => "name",
    };
    let target = r.params.get(field).and_then(Value::as_str).unwrap_or("");
    let pool = match r.method {
        Method::ToolsCall => match catalog.lookup(target) {
            Lookup::Live(route) => Some(&route.pool),
            Lookup::Departed(pool) => Some(pool),
            Lookup::Unknown => None,
        },
        Method::PromptsGet => catalog.item(ListKind::Prompts, target).map(|i| &i.pool),
        Method::ResourcesRead => catalog.resource_route(target).map(|i| &i.pool),
        _ => None,
    };
    let principal = caller
        .principal
        .as_ref()
        .map(|p| p.key())
        .unwrap_or_default();
    Binding {
        principal: &principal,
        method: r.method.as_str(),
        target,
        pool: pool.map_or("", |p| p.as_str()),
        arguments: r.params.get("arguments").unwrap_or(&Value::Null),
    }
    .digest()
}

/// A worker answered with an `InputRequiredResult` where the protocol has no place for one.
pub fn not_allowed() -> CoreError {
    CoreError::BadWorkerAnswer(
        "the worker answered with an InputRequiredResult, which this request cannot carry \
         (only 2026-07-28 tools/call, prompts/get and resources/read can)"
            .into(),
    )
}

fn missing_capability(capability: &str, method: &str) -> CoreError {
    CoreError::MissingCapability {
        message: format!(
            "the client did not declare the {capability:?} capability, so it cannot be asked for {method}"
        ),
        required: json!({capability: {}}),
    }
}

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::Malformed(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_state::StateError;
    use std::time::Duration;

    fn sealer() -> Arc<StateSealer> {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        Arc::new(StateSealer::new(&[key], Duration::from_secs(60)).unwrap())
    }

    fn caller(capabilities: Value) -> Caller {
        let meta = json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": capabilities}});
        Caller::stateless(bus_schema::mcp::ProtocolVersion::V2026_07_28, &meta)
    }

    fn request(params: Value) -> Request {
        Request::parse(&caller(json!({})), json!(1), "tools/call", params).unwrap()
    }

    fn accept(s: &Arc<StateSealer>, r: &mut Request, caps: &Value) -> Result<Mrtr, CoreError> {
        Mrtr::accept(s, &CatalogSnapshot::default(), &caller(caps.clone()), r)
    }

    #[test]
    fn a_round_trip_gives_the_worker_its_own_state_back() {
        let s = sealer();
        let caps = json!({"elicitation": {}});
        let mut first = request(json!({"name": "t", "arguments": {}}));
        let mrtr = accept(&s, &mut first, &caps).unwrap();
        let mut result = json!({
            "resultType": "input_required",
            "inputRequests": {"k": {"method": "elicitation/create", "params": {}}},
            "requestState": {"answers": {}},
        });
        mrtr.finish(&mut result).unwrap();
        let token = result["requestState"].as_str().unwrap().to_owned();

        let mut retry = request(json!({
            "name": "t", "arguments": {}, "requestState": token,
            "inputResponses": {"k": {"action": "accept"}},
        }));
        accept(&s, &mut retry, &caps).unwrap();
        assert_eq!(retry.params["requestState"], json!({"answers": {}}));
    }

    #[test]
    fn bad_retries_are_invalid_params() {
        let s = sealer();
        for params in [
            json!({"name": "t", "inputResponses": null}),
            json!({"name": "t", "inputResponses": {"k": 12345}}),
            json!({"name": "t", "requestState": 7}),
            json!({"name": "t", "requestState": "forged"}),
        ] {
            let e = accept(&s, &mut request(params.clone()), &json!({})).err();
            assert!(
                matches!(
                    e,
                    Some(CoreError::Malformed(_) | CoreError::RequestState(_))
                ),
                "{params}"
            );
        }
    }

    #[test]
    fn undeclared_capabilities_are_never_asked_for() {
        let s = sealer();
        let mrtr = accept(
            &s,
            &mut request(json!({"name": "t"})),
            &json!({"sampling": {}}),
        )
        .unwrap();
        let mut result = json!({
            "resultType": "input_required",
            "inputRequests": {"k": {"method": "elicitation/create", "params": {}}},
        });
        let e = mrtr.finish(&mut result).unwrap_err();
        let CoreError::MissingCapability { required, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(required, json!({"elicitation": {}}));
    }

    #[test]
    fn a_resource_state_is_bound_to_the_uri_whatever_name_a_retry_adds() {
        let s = sealer();
        let caps = json!({"elicitation": {}});
        let read = |params: Value| {
            Request::parse(&caller(caps.clone()), json!(1), "resources/read", params).unwrap()
        };
        let mrtr = Mrtr::accept(
            &s,
            &CatalogSnapshot::default(),
            &caller(caps.clone()),
            &mut read(json!({"uri": "test://mine"})),
        )
        .unwrap();
        let mut result = json!({"resultType": "input_required", "inputRequests": {}});
        mrtr.finish(&mut result).unwrap();
        let token = result["requestState"].clone();
        // The old binding took `name` before `uri`: naming the original URI opened the state
        // for any other resource.
        let mut trick = read(json!({"uri": "test://other", "name": "test://mine",
            "requestState": token}));
        let e = Mrtr::accept(
            &s,
            &CatalogSnapshot::default(),
            &caller(caps.clone()),
            &mut trick,
        )
        .err();
        assert!(
            matches!(e, Some(CoreError::RequestState(StateError::OtherRequest))),
            "{:?}",
            e.map(|e| e.to_string())
        );
        let mut same = read(json!({"uri": "test://mine", "requestState": token}));
        assert!(Mrtr::accept(&s, &CatalogSnapshot::default(), &caller(caps), &mut same).is_ok());
    }
}
