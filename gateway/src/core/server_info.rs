//! What this server says about itself: `initialize` and `server/discover` results, and the
//! `serverInfo` every 2026-07-28 result carries.

use bus_schema::mcp::{capability, ProtocolVersion};
use serde_json::{json, Value};

use super::profile::{Profile, TaskFlavour};

const INSTRUCTIONS: &str = "Tools served by mcpbus workers over NATS JetStream.";

/// `serverInfo` / `io.modelcontextprotocol/serverInfo`.
pub fn server_info() -> Value {
    json!({"name": "mcpbus", "title": "mcpbus gateway", "version": env!("CARGO_PKG_VERSION")})
}

/// Server capabilities for a revision: list changes are announced cluster-wide (ADR 0003),
/// resource updates reach subscribers, and tasks are offered the revision's way.
pub fn capabilities(profile: &Profile) -> Value {
    let mut capabilities = json!({
        "tools": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": true},
        "prompts": {"listChanged": true},
        "completions": {},
        "logging": {},
    });
    match profile.tasks {
        TaskFlavour::None => {}
        // Tool calls may be tasks, and be cancelled. `tasks/list` is not offered: it would
        // need a per-session index, and the capability is optional.
        TaskFlavour::Requested => {
            capabilities["tasks"] = json!({"cancel": {}, "requests": {"tools": {"call": {}}}});
        }
        TaskFlavour::Extension => {
            capabilities[capability::EXTENSIONS] = json!({capability::TASKS_EXTENSION: {}});
        }
    }
    capabilities
}

/// The `initialize` result of a session that negotiated `version`.
pub fn initialize_result(version: ProtocolVersion) -> Value {
    json!({
        "protocolVersion": version.as_str(),
        "capabilities": capabilities(&Profile::session(version)),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// The `server/discover` result.
pub fn discover_result(profile: &Profile) -> Value {
    json!({
        "supportedVersions": ProtocolVersion::all_newest_first(),
        "capabilities": capabilities(profile),
        "instructions": INSTRUCTIONS,
    })
}
