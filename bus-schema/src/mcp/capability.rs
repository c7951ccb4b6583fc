//! Capability names, as clients and servers declare them.

/// Client capability: the client answers `elicitation/create`.
pub const ELICITATION: &str = "elicitation";
/// Client capability: the client answers `sampling/createMessage`.
pub const SAMPLING: &str = "sampling";
/// Client capability: the client answers `roots/list`.
pub const ROOTS: &str = "roots";
/// Where 2026-07-28 clients and servers declare extensions.
pub const EXTENSIONS: &str = "extensions";
/// The tasks extension of 2026-07-28 (`capabilities.extensions[TASKS_EXTENSION]`).
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// The client capability a request to the client needs, by the request's method.
pub fn for_client_request(method: &str) -> Option<&'static str> {
    match method {
        "elicitation/create" => Some(ELICITATION),
        "sampling/createMessage" => Some(SAMPLING),
        "roots/list" => Some(ROOTS),
        _ => None,
    }
}
