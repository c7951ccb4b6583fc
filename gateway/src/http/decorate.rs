//! How a revision decorates its results. 2026-07-28 results say what they are
//! (`resultType`) and who served them (`serverInfo` in `_meta`), and cacheable ones carry
//! `ttlMs` and `cacheScope`; 2025 results are sent as they are.

use bus_schema::mcp::{meta, result_type};
use serde_json::{json, Value};

use crate::core::{server_info, Cache, Profile};

/// A revision's result decoration.
#[derive(Debug, Clone, Copy)]
pub struct Decoration {
    self_describing: bool,
    /// How long a cacheable result may be cached.
    ttl_ms: u64,
}

impl Decoration {
    pub fn new(profile: &Profile, ttl_ms: u64) -> Self {
        Self {
            self_describing: profile.self_describing_results,
            ttl_ms,
        }
    }

    pub fn apply(&self, result: &mut Value, cache: Cache) {
        if !self.self_describing {
            return;
        }
        let Some(obj) = result.as_object_mut() else {
            return;
        };
        let scope = match cache {
            Cache::None => None,
            Cache::Public => Some("public"),
            Cache::Private => Some("private"),
        };
        if let Some(scope) = scope {
            obj.insert("ttlMs".into(), json!(self.ttl_ms));
            obj.insert("cacheScope".into(), json!(scope));
        }
        // A worker's InputRequiredResult, a CreateTaskResult, keep their own type.
        obj.entry("resultType")
            .or_insert_with(|| json!(result_type::COMPLETE));
        let m = obj.entry("_meta").or_insert_with(|| json!({}));
        if let Some(m) = m.as_object_mut() {
            m.insert(meta::SERVER_INFO.into(), server_info());
        }
    }
}
