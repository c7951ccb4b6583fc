//! What an edge tells the core about the revision it speaks: the protocol differences
//! between the lanes, as data. The core's flow is the same for every profile; it reads a
//! field here where the revisions disagree.

use bus_schema::mcp::ProtocolVersion;
use bus_schema::messages::Lane;

/// The protocol differences of one caller's revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub lane: Lane,
    pub version: ProtocolVersion,
    /// How tool calls become tasks, if they can.
    pub tasks: TaskFlavour,
    /// Whether a worker may answer with an `InputRequiredResult` (multi round-trip
    /// requests) and the client retry with `requestState`.
    pub mrtr: bool,
    /// Whether results say what they are (`resultType`) and who served them, and lists and
    /// reads carry caching hints.
    pub self_describing_results: bool,
}

/// How a revision does tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFlavour {
    /// Before 2025-11-25: `params.task` is ignored, `tasks/*` are unknown methods.
    None,
    /// 2025-11-25: the client asks with `params.task` and gets a task at once; tasks are
    /// bound to the session; a tool error is `failed`; `tasks/result` blocks.
    Requested,
    /// 2026-07-28 extension: a call from a client that declared the extension becomes a task
    /// only when the worker escalates it; input through `tasks/update`.
    Extension,
}

impl Profile {
    /// A 2025 session of revision `version`.
    pub fn session(version: ProtocolVersion) -> Self {
        Self {
            lane: Lane::Session,
            version,
            tasks: if version >= ProtocolVersion::TASKS {
                TaskFlavour::Requested
            } else {
                TaskFlavour::None
            },
            mrtr: false,
            self_describing_results: false,
        }
    }

    /// A 2026-07-28 request.
    pub fn stateless(version: ProtocolVersion) -> Self {
        Self {
            lane: Lane::Stateless,
            version,
            tasks: TaskFlavour::Extension,
            mrtr: true,
            self_describing_results: true,
        }
    }
}
