//! An immutable view of everything the cluster serves, rebuilt whenever the registry changes
//! and shared by every request through an `Arc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bus_schema::names::PoolName;
use serde_json::{Map, Value};

/// Where a tool call goes and how long to wait for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRoute {
    pub pool: PoolName,
    /// The MCP `Tool` object, exactly as `tools/list` shows it.
    pub tool: Arc<Map<String, Value>>,
    /// The tool's own timeout, if it declared one.
    pub timeout: Option<Duration>,
}

impl ToolRoute {
    pub fn name(&self) -> &str {
        self.tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<'a> {
    Live(&'a ToolRoute),
    /// The tool existed, but the last worker of its pool has gone.
    Departed(&'a PoolName),
    Unknown,
}

/// The aggregated catalogue at one moment.
#[derive(Debug, Default, Clone)]
pub struct CatalogSnapshot {
    /// Sorted by name: the order every gateway lists tools in, so pages agree across nodes.
    tools: Vec<ToolRoute>,
    index: HashMap<String, usize>,
    /// Tools of pools that left recently, so a call gets "no live worker" rather than
    /// "unknown tool".
    departed: HashMap<String, PoolName>,
}

/// A `tools/list` page.
#[derive(Debug, PartialEq)]
pub struct Page<'a> {
    pub tools: &'a [ToolRoute],
    pub next_cursor: Option<String>,
}

/// The cursor does not come from us.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("invalid cursor")]
pub struct BadCursor;

impl CatalogSnapshot {
    /// Builds a snapshot; `tools` need not be sorted. On duplicate names the first one in
    /// pool order wins (name prefixing comes with multi-pool conflicts, see the ADR list).
    pub fn new(mut tools: Vec<ToolRoute>, departed: HashMap<String, PoolName>) -> Self {
        tools.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.pool.cmp(&b.pool)));
        tools.dedup_by(|later, first| {
            let dup = later.name() == first.name();
            if dup {
                tracing::warn!(tool = later.name(), kept = %first.pool, dropped = %later.pool,
                    "two pools serve the same tool name; keeping one");
            }
            dup
        });
        let index = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name().to_owned(), i))
            .collect();
        Self {
            tools,
            index,
            departed,
        }
    }

    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        if let Some(&i) = self.index.get(name) {
            Lookup::Live(&self.tools[i])
        } else if let Some(pool) = self.departed.get(name) {
            Lookup::Departed(pool)
        } else {
            Lookup::Unknown
        }
    }

    pub fn tools(&self) -> &[ToolRoute] {
        &self.tools
    }

    /// A fingerprint of what `tools/list` shows: equal snapshots on different gateways give
    /// equal digests, which is what de-duplicates their `list_changed` announcements.
    pub fn digest(&self) -> String {
        bus_schema::messages::digest(
            self.tools
                .iter()
                .map(|route| serde_json::to_vec(route.tool.as_ref()).unwrap_or_default()),
        )
    }

    /// One page after `cursor`. Cursors name the last tool of the previous page rather than
    /// an offset, so a page never repeats or skips a tool that stayed while others came/went.
    pub fn page(&self, cursor: Option<&str>, size: usize) -> Result<Page<'_>, BadCursor> {
        let start = match cursor {
            None => 0,
            Some(c) => {
                let after = decode_cursor(c).ok_or(BadCursor)?;
                self.tools.partition_point(|t| t.name() <= after.as_str())
            }
        };
        let end = (start + size.max(1)).min(self.tools.len());
        let page = &self.tools[start..end];
        let next_cursor = (end < self.tools.len())
            .then(|| page.last().map(|t| encode_cursor(t.name())))
            .flatten();
        Ok(Page {
            tools: page,
            next_cursor,
        })
    }
}

const CURSOR_PREFIX: &str = "after:";

fn encode_cursor(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{name}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(pool: &str, name: &str) -> ToolRoute {
        ToolRoute {
            pool: PoolName::new(pool).unwrap(),
            tool: Arc::new(json!({"name": name}).as_object().unwrap().clone()),
            timeout: None,
        }
    }

    fn names(p: &Page<'_>) -> Vec<String> {
        p.tools.iter().map(|t| t.name().to_owned()).collect()
    }

    #[test]
    fn pages_walk_the_sorted_catalogue() {
        let snap = CatalogSnapshot::new(
            vec![route("p", "c"), route("p", "a"), route("q", "b")],
            HashMap::new(),
        );
        let first = snap.page(None, 2).unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        let second = snap.page(first.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(names(&second), ["c"]);
        assert_eq!(second.next_cursor, None);
    }

    #[test]
    fn foreign_cursors_are_rejected() {
        let snap = CatalogSnapshot::new(vec![route("p", "a")], HashMap::new());
        assert_eq!(snap.page(Some("!!"), 2), Err(BadCursor));
        assert_eq!(snap.page(Some("Zm9v"), 2), Err(BadCursor));
    }

    #[test]
    fn duplicate_names_keep_one_route() {
        let snap = CatalogSnapshot::new(vec![route("b", "t"), route("a", "t")], HashMap::new());
        assert_eq!(snap.tools().len(), 1);
        assert!(matches!(snap.lookup("t"), Lookup::Live(r) if r.pool.as_str() == "a"));
    }

    #[test]
    fn departed_tools_are_distinguished_from_unknown_ones() {
        let mut departed = HashMap::new();
        departed.insert("gone".to_owned(), PoolName::new("p").unwrap());
        let snap = CatalogSnapshot::new(vec![], departed);
        assert!(matches!(snap.lookup("gone"), Lookup::Departed(_)));
        assert_eq!(snap.lookup("never"), Lookup::Unknown);
    }
}
