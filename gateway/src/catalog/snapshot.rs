//! An immutable view of everything the cluster serves, rebuilt whenever the registry changes
//! and shared by every request through an `Arc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bus_schema::names::PoolName;
use serde_json::{Map, Value};

use super::claims::Conflict;

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

/// A resource, resource template or prompt, and the pool that serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRoute {
    pub pool: PoolName,
    /// The MCP `Resource`, `ResourceTemplate` or `Prompt` object, as listed.
    pub item: Arc<Map<String, Value>>,
}

impl ItemRoute {
    fn field(&self, name: &str) -> &str {
        self.item
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// The lists other than tools, each with the field it is keyed and sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Resources,
    Templates,
    Prompts,
}

impl ListKind {
    /// The field that identifies an item, and the result field the list goes in.
    pub fn fields(self) -> (&'static str, &'static str) {
        match self {
            ListKind::Resources => ("uri", "resources"),
            ListKind::Templates => ("uriTemplate", "resourceTemplates"),
            ListKind::Prompts => ("name", "prompts"),
        }
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
    resources: Vec<ItemRoute>,
    templates: Vec<ItemRoute>,
    prompts: Vec<ItemRoute>,
    generation: String,
    /// Names refused to a pool because another registered them first (`claims.rs`).
    conflicts: Arc<Vec<Conflict>>,
}

/// A `tools/list` page.
#[derive(Debug, PartialEq)]
pub struct Page<'a> {
    pub tools: Vec<&'a ToolRoute>,
    pub next_cursor: Option<String>,
}

/// The cursor does not come from us.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("invalid cursor")]
pub struct BadCursor;

impl CatalogSnapshot {
    /// Builds a snapshot; `tools` need not be sorted. The registry has already given each
    /// name to one pool (`claims.rs`, ADR 0015); duplicates left (a pool listing a name
    /// twice) keep one route.
    pub fn new(mut tools: Vec<ToolRoute>, departed: HashMap<String, PoolName>) -> Self {
        // Clients must drop a tool with invalid `x-mcp-header` annotations; do it for them.
        tools.retain(|t| {
            let schema = t.tool.get("inputSchema").unwrap_or(&Value::Null);
            match super::header_params(schema) {
                Ok(_) => true,
                Err(why) => {
                    tracing::warn!(tool = t.name(), pool = %t.pool, %why, "leaving out a tool with invalid x-mcp-header annotations");
                    false
                }
            }
        });
        tools.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.pool.cmp(&b.pool)));
        tools.dedup_by(|later, first| {
            let dup = later.name() == first.name();
            if dup {
                tracing::warn!(tool = later.name(), pool = %first.pool,
                    "a pool lists a tool name twice; keeping one");
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
            ..Default::default()
        }
    }

    /// Adds the resources, templates and prompts, each sorted by its key; duplicate keys
    /// keep one item, as for tools.
    pub fn with_items(mut self, mut items: HashMap<ListKind, Vec<ItemRoute>>) -> Self {
        for kind in [ListKind::Resources, ListKind::Templates, ListKind::Prompts] {
            let (key, _) = kind.fields();
            let mut list = items.remove(&kind).unwrap_or_default();
            list.sort_by(|a, b| {
                a.field(key)
                    .cmp(b.field(key))
                    .then_with(|| a.pool.cmp(&b.pool))
            });
            list.dedup_by(|later, first| later.field(key) == first.field(key));
            *self.items_mut(kind) = list;
        }
        self
    }

    fn items_mut(&mut self, kind: ListKind) -> &mut Vec<ItemRoute> {
        match kind {
            ListKind::Resources => &mut self.resources,
            ListKind::Templates => &mut self.templates,
            ListKind::Prompts => &mut self.prompts,
        }
    }

    pub fn items(&self, kind: ListKind) -> &[ItemRoute] {
        match kind {
            ListKind::Resources => &self.resources,
            ListKind::Templates => &self.templates,
            ListKind::Prompts => &self.prompts,
        }
    }

    /// One page of the items of a list that `visible` keeps, with the same cursor scheme
    /// as tools.
    pub fn item_page(
        &self,
        kind: ListKind,
        visible: impl Fn(&ItemRoute) -> bool,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(Vec<&ItemRoute>, Option<String>), BadCursor> {
        let (key, _) = kind.fields();
        page_of(self.items(kind), |i| i.field(key), visible, cursor, size)
    }

    /// The pool serving a URI: a resource with exactly that URI, else the first template
    /// (in key order) it matches.
    pub fn resource_route(&self, uri: &str) -> Option<&ItemRoute> {
        self.resources
            .iter()
            .find(|r| r.field("uri") == uri)
            .or_else(|| {
                self.templates.iter().find(|t| {
                    bus_schema::uri_template::match_uri(t.field("uriTemplate"), uri).is_some()
                })
            })
    }

    /// The item of `kind` whose key is exactly `key`.
    pub fn item(&self, kind: ListKind, key: &str) -> Option<&ItemRoute> {
        let (field, _) = kind.fields();
        self.items(kind).iter().find(|i| i.field(field) == key)
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

    /// Every pool serving something in this snapshot, once each.
    pub fn pools(&self) -> Vec<PoolName> {
        let mut pools: Vec<PoolName> = self
            .tools
            .iter()
            .map(|t| t.pool.clone())
            .chain(
                [&self.resources, &self.templates, &self.prompts]
                    .into_iter()
                    .flatten()
                    .map(|i| i.pool.clone()),
            )
            .collect();
        pools.sort();
        pools.dedup();
        pools
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

    /// Which registry entries this snapshot reflects (KV revisions). With the digests it
    /// names one change identically on every gateway, even when a list flips back and forth
    /// between the same two contents.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    pub fn with_generation(mut self, generation: String) -> Self {
        self.generation = generation;
        self
    }

    /// The names refused to pools because another pool registered them first.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    pub fn with_conflicts(mut self, conflicts: Vec<Conflict>) -> Self {
        self.conflicts = Arc::new(conflicts);
        self
    }

    /// The same fingerprint for the lists of `kinds` (resources and templates go together:
    /// one `resources/list_changed` covers both).
    pub fn items_digest(&self, kinds: &[ListKind]) -> String {
        bus_schema::messages::digest(kinds.iter().flat_map(|k| {
            self.items(*k)
                .iter()
                .map(|i| serde_json::to_vec(i.item.as_ref()).unwrap_or_default())
        }))
    }

    /// One page, after `cursor`, of the tools `visible` keeps (the caller's view). Cursors
    /// name the last tool of the previous page rather than an offset, so a page never
    /// repeats or skips a tool that stayed while others came or went.
    pub fn page(
        &self,
        visible: impl Fn(&ToolRoute) -> bool,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<Page<'_>, BadCursor> {
        let (tools, next_cursor) = page_of(&self.tools, |t| t.name(), visible, cursor, size)?;
        Ok(Page { tools, next_cursor })
    }
}

/// One page of the `items` (sorted by `key`) that `visible` keeps, after `cursor`. Cursors
/// name the last item of the previous page rather than an offset, so a page never repeats or
/// skips an item that stayed while others came or went, and a cursor reveals nothing the
/// caller could not see.
fn page_of<'a, T>(
    items: &'a [T],
    key: impl Fn(&T) -> &str,
    visible: impl Fn(&T) -> bool,
    cursor: Option<&str>,
    size: usize,
) -> Result<(Vec<&'a T>, Option<String>), BadCursor> {
    let start = match cursor {
        None => 0,
        Some(c) => {
            let after = decode_cursor(c).ok_or(BadCursor)?;
            items.partition_point(|t| key(t) <= after.as_str())
        }
    };
    let mut rest = items[start..].iter().filter(|t| visible(t));
    let page: Vec<&T> = rest.by_ref().take(size.max(1)).collect();
    let next = rest
        .next()
        .and_then(|_| page.last().map(|t| encode_cursor(key(t))));
    Ok((page, next))
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
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn route(pool: &str, name: &str) -> ToolRoute {
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
        let first = snap.page(|_| true, None, 2).unwrap();
        assert_eq!(names(&first), ["a", "b"]);
        let second = snap
            .page(|_| true, first.next_cursor.as_deref(), 2)
            .unwrap();
        assert_eq!(names(&second), ["c"]);
        assert_eq!(second.next_cursor, None);
    }

    #[test]
    fn pages_hold_only_what_the_caller_may_see() {
        let snap = CatalogSnapshot::new(
            ["a", "b", "c", "d", "e"].map(|n| route("p", n)).to_vec(),
            HashMap::new(),
        );
        let visible = |t: &ToolRoute| t.name() != "b" && t.name() != "e";
        let first = snap.page(visible, None, 2).unwrap();
        assert_eq!(names(&first), ["a", "c"]);
        let second = snap.page(visible, first.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(names(&second), ["d"]);
        assert_eq!(
            second.next_cursor, None,
            "no cursor to a page of hidden tools"
        );
    }

    #[test]
    fn foreign_cursors_are_rejected() {
        let snap = CatalogSnapshot::new(vec![route("p", "a")], HashMap::new());
        assert_eq!(snap.page(|_| true, Some("!!"), 2), Err(BadCursor));
        assert_eq!(snap.page(|_| true, Some("Zm9v"), 2), Err(BadCursor));
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
