//! A client request, parsed once into what it asks for.
//!
//! The edges frame JSON-RPC and check their transport rules; everything about the request's
//! own params is read here, once, into a [`Command`]. Which methods a revision serves is
//! decided here too, from the caller's profile, so the method table in `dispatch` never
//! sees a method its caller's revision does not have.

use bus_schema::mcp::{meta, Method};
use serde_json::{Map, Value};

use super::caller::Caller;
use super::error::CoreError;
use super::limits::Limited;
use super::listen::ListenFilter;
use super::meta::meta_of;
use super::profile::{Profile, TaskFlavour};
use crate::catalog::ListKind;
use crate::metrics::METRICS;
use crate::route::CallSpec;
use bus_schema::mcp::LogLevel;
use bus_schema::messages::Lane;

/// One client request: its id, its params as sent (workers get them as they are), and what
/// it asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Value,
    pub method: Method,
    pub params: Value,
    pub command: Command,
}

/// What a request asks for, its params checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Initialize {
        protocol_version: String,
        client_info: Value,
        capabilities: Value,
    },
    Ping,
    SetLogLevel(LogLevel),
    ListTools {
        cursor: Option<String>,
    },
    ListItems {
        kind: ListKind,
        cursor: Option<String>,
    },
    CallTool {
        name: String,
        /// 2025-11-25 `params.task`: the call is to be a task (with the ttl the client asked
        /// for, if any).
        as_task: Option<Option<u64>>,
    },
    Read(ReadTarget),
    Subscribe {
        uri: String,
        on: bool,
    },
    Discover,
    Listen(ListenFilter),
    Task {
        task_id: String,
        op: TaskOp,
    },
}

/// What a routed read names: the catalogue entry whose pool serves it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadTarget {
    Resource {
        uri: String,
    },
    Prompt {
        name: String,
    },
    /// `completion/complete` with its `ref`, resolved against prompts and resources.
    Completion {
        reference: Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskOp {
    Get,
    /// 2025-11-25: block until the task ends.
    Result,
    /// 2026-07-28: answers to the task's open questions.
    Update(Map<String, Value>),
    Cancel,
}

impl Request {
    /// Parses `method` and `params` for `caller`. An unknown method, or one its revision
    /// does not have, is "method not found"; a method the client did not declare the
    /// capability for is refused before its params are read.
    pub fn parse(
        caller: &Caller,
        id: Value,
        method: &str,
        params: Value,
    ) -> Result<Self, CoreError> {
        let profile = &caller.profile;
        let not_found = || CoreError::MethodNotFound(method.to_owned());
        let known = Method::parse(method);
        METRICS.request(profile.lane, known);
        let method = known.ok_or_else(not_found)?;
        if !serves(profile, method) {
            return Err(not_found());
        }
        Limited::RequestId.check_json(&[&id])?;
        if let Some(token) = meta_of(&params, meta::PROGRESS_TOKEN) {
            Limited::ProgressToken.check_json(&[token])?;
        }
        if is_task_method(method)
            && profile.tasks == TaskFlavour::Extension
            && !caller.takes_task_extension()
        {
            return Err(CoreError::missing_task_extension(method.as_str()));
        }
        let command = Command::parse(method, &params)?;
        Ok(Self {
            id,
            method,
            params,
            command,
        })
    }

    /// `params._meta.<key>`.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        meta_of(&self.params, key)
    }

    /// The bus call for this request on behalf of `caller`.
    pub fn spec(&self, caller: &Caller) -> CallSpec {
        CallSpec {
            method: self.method.as_str().to_owned(),
            params: self.params.clone(),
            lane: caller.profile.lane,
            protocol_version: caller.profile.version,
            client_capabilities: caller.client_capabilities.clone(),
            task_id: None,
            principal: caller.principal.clone(),
        }
    }

    /// The request's progress token, if it asked for progress.
    pub fn progress_token(&self) -> Option<Value> {
        self.meta(meta::PROGRESS_TOKEN).cloned()
    }
}

fn is_task_method(method: Method) -> bool {
    matches!(
        method,
        Method::TasksGet | Method::TasksResult | Method::TasksUpdate | Method::TasksCancel
    )
}

/// The methods a revision serves: the one place where the lanes' method sets differ.
fn serves(profile: &Profile, method: Method) -> bool {
    use Method::*;
    let session = profile.lane == Lane::Session;
    match method {
        Initialize | Ping | LoggingSetLevel | ResourcesSubscribe | ResourcesUnsubscribe => session,
        ServerDiscover | SubscriptionsListen => !session,
        TasksGet | TasksCancel => profile.tasks != TaskFlavour::None,
        TasksResult => profile.tasks == TaskFlavour::Requested,
        TasksUpdate => profile.tasks == TaskFlavour::Extension,
        ToolsList
        | ToolsCall
        | ResourcesList
        | ResourcesTemplatesList
        | ResourcesRead
        | PromptsList
        | PromptsGet
        | CompletionComplete => true,
        // Notifications are not requests.
        NotificationsInitialized | NotificationsCancelled => false,
    }
}

impl Command {
    fn parse(method: Method, params: &Value) -> Result<Self, CoreError> {
        let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(match method {
            Method::Initialize => {
                let client_info = params.get("clientInfo").cloned().unwrap_or(Value::Null);
                let capabilities = params.get("capabilities").cloned().unwrap_or(Value::Null);
                Limited::ClientDeclaration.check_json(&[&client_info, &capabilities])?;
                Command::Initialize {
                    protocol_version: text("protocolVersion").ok_or_else(|| {
                        CoreError::Malformed(
                            "Invalid params: initialize needs a string \"protocolVersion\"".into(),
                        )
                    })?,
                    client_info,
                    capabilities,
                }
            }
            Method::Ping => Command::Ping,
            Method::LoggingSetLevel => {
                let level = text("level").unwrap_or_default();
                Command::SetLogLevel(LogLevel::parse(&level).ok_or_else(|| {
                    CoreError::invalid_params(format!(
                        "Invalid params: unknown log level {level:?}"
                    ))
                })?)
            }
            Method::ToolsList => Command::ListTools {
                cursor: cursor(params)?,
            },
            Method::ResourcesList | Method::ResourcesTemplatesList | Method::PromptsList => {
                let kind = match method {
                    Method::ResourcesList => ListKind::Resources,
                    Method::ResourcesTemplatesList => ListKind::Templates,
                    _ => ListKind::Prompts,
                };
                Command::ListItems {
                    kind,
                    cursor: cursor(params)?,
                }
            }
            Method::ToolsCall => {
                let name = text("name").ok_or_else(|| {
                    CoreError::invalid_params("Invalid params: tools/call needs a string \"name\"")
                })?;
                if !matches!(
                    params.get("arguments"),
                    None | Some(Value::Null) | Some(Value::Object(_))
                ) {
                    return Err(CoreError::invalid_params(
                        "Invalid params: \"arguments\" must be an object",
                    ));
                }
                let as_task = params
                    .get("task")
                    .filter(|t| t.is_object())
                    .map(|t| t.get("ttl").and_then(Value::as_u64));
                Command::CallTool { name, as_task }
            }
            Method::ResourcesRead => Command::Read(ReadTarget::Resource {
                uri: text("uri").ok_or_else(|| {
                    CoreError::invalid_params(
                        "Invalid params: resources/read needs a string \"uri\"",
                    )
                })?,
            }),
            Method::PromptsGet => Command::Read(ReadTarget::Prompt {
                name: text("name").ok_or_else(|| {
                    CoreError::invalid_params("Invalid params: prompts/get needs a string \"name\"")
                })?,
            }),
            Method::CompletionComplete => Command::Read(ReadTarget::Completion {
                reference: params.get("ref").cloned().unwrap_or(Value::Null),
            }),
            Method::ResourcesSubscribe | Method::ResourcesUnsubscribe => {
                let uri = text("uri").ok_or_else(|| {
                    CoreError::invalid_params("Invalid params: a string \"uri\" is required")
                })?;
                Limited::Uri.check(uri.len())?;
                Command::Subscribe {
                    uri,
                    on: method == Method::ResourcesSubscribe,
                }
            }
            Method::ServerDiscover => Command::Discover,
            Method::SubscriptionsListen => Command::Listen(ListenFilter::parse(params)?),
            Method::TasksGet | Method::TasksResult | Method::TasksUpdate | Method::TasksCancel => {
                let task_id = text("taskId").ok_or_else(|| {
                    CoreError::invalid_params("Invalid params: taskId must be a string")
                })?;
                let op = match method {
                    Method::TasksGet => TaskOp::Get,
                    Method::TasksResult => TaskOp::Result,
                    Method::TasksCancel => TaskOp::Cancel,
                    _ => TaskOp::Update(input_responses(params)?),
                };
                Command::Task { task_id, op }
            }
            Method::NotificationsInitialized | Method::NotificationsCancelled => {
                return Err(CoreError::MethodNotFound(method.to_string()))
            }
        })
    }
}

fn cursor(params: &Value) -> Result<Option<String>, CoreError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) => {
            Limited::Cursor.check(c.len())?;
            Ok(Some(c.clone()))
        }
        Some(_) => Err(CoreError::invalid_params(
            "Invalid params: cursor must be a string",
        )),
    }
}

fn input_responses(params: &Value) -> Result<Map<String, Value>, CoreError> {
    match params.get("inputResponses") {
        Some(responses @ Value::Object(m)) if m.values().all(Value::is_object) => {
            Limited::InputResponses.check_json(&[responses])?;
            Ok(m.clone())
        }
        _ => Err(CoreError::invalid_params(
            "Invalid params: inputResponses must map each key to the client's result object",
        )),
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use bus_schema::mcp::ProtocolVersion;
    use serde_json::json;

    fn parse(profile: Profile, method: &str, params: Value) -> Result<Command, CoreError> {
        let caller = Caller {
            profile,
            client_capabilities: json!({"extensions": {"io.modelcontextprotocol/tasks": {}}}),
            session: None,
            min_log: None,
            principal: None,
            client: crate::quota::ClientKey::unknown(),
        };
        Request::parse(&caller, json!(1), method, params).map(|r| r.command)
    }

    #[test]
    fn each_revision_serves_its_own_methods() {
        let old = Profile::session(ProtocolVersion::V2025_06_18);
        let new = Profile::session(ProtocolVersion::V2025_11_25);
        let stateless = Profile::stateless(ProtocolVersion::V2026_07_28);
        let task = json!({"taskId": "t"});
        assert!(matches!(
            parse(old, "tasks/get", task.clone()),
            Err(CoreError::MethodNotFound(_))
        ));
        assert!(parse(new, "tasks/result", task.clone()).is_ok());
        assert!(parse(stateless, "tasks/result", task.clone()).is_err());
        assert!(parse(
            new,
            "tasks/update",
            json!({"taskId": "t", "inputResponses": {}})
        )
        .is_err());
        assert!(parse(stateless, "ping", Value::Null).is_err());
        assert!(parse(new, "server/discover", Value::Null).is_err());
        assert!(parse(stateless, "server/discover", Value::Null).is_ok());
        assert!(parse(new, "tools/nope", Value::Null).is_err());
        // Without the extension, a 2026 task method is refused before its params are read.
        let bare = Caller::stateless(ProtocolVersion::V2026_07_28, &json!({}));
        assert!(matches!(
            Request::parse(&bare, json!(1), "tasks/get", json!({})),
            Err(CoreError::MissingCapability { .. })
        ));
    }

    #[test]
    fn params_are_checked_once() {
        let p = Profile::session(ProtocolVersion::V2025_11_25);
        assert_eq!(
            parse(p, "tools/call", json!({"name": "t", "task": {"ttl": 5000}})).unwrap(),
            Command::CallTool {
                name: "t".into(),
                as_task: Some(Some(5000))
            }
        );
        for bad in [json!({}), json!({"name": "t", "arguments": 3})] {
            assert!(matches!(
                parse(p, "tools/call", bad),
                Err(CoreError::InvalidParams(_))
            ));
        }
        assert!(matches!(
            parse(p, "initialize", json!({})),
            Err(CoreError::Malformed(_))
        ));
        assert!(parse(p, "tools/list", json!({"cursor": 3})).is_err());
    }
}
