//! `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`: one page of
//! the catalogue snapshot, as the caller's view of the policy has it. Cursors name the last
//! entry of a page, so pages agree across gateways (see `catalog/`).

use serde_json::{json, Map, Value};

use super::caller::Caller;
use super::error::CoreError;
use super::outcome::{Cache, Outcome};
use crate::app::App;
use crate::catalog::ListKind;
use crate::policy::Item;

/// One page of the aggregated tools the caller may use.
pub fn tools(app: &App, caller: &Caller, cursor: Option<&str>) -> Result<Outcome, CoreError> {
    let view = app.policy.view(caller.principal.as_ref());
    let snapshot = app.catalog.snapshot();
    let page = snapshot
        .page(
            |t| view.allows(Item::Tool, t.name(), t.pool.as_str()),
            cursor,
            app.config.page_size,
        )
        .map_err(|e| CoreError::invalid_params(format!("Invalid params: {e}")))?;
    let tools: Vec<&Map<String, Value>> = page.tools.iter().map(|t| t.tool.as_ref()).collect();
    let mut result = json!({"tools": tools});
    if let Some(next) = page.next_cursor {
        result["nextCursor"] = Value::String(next);
    }
    Ok(listed(result, view.is_filtered()))
}

/// One page of the resources, resource templates or prompts the caller may use.
pub fn items(
    app: &App,
    caller: &Caller,
    kind: ListKind,
    cursor: Option<&str>,
) -> Result<Outcome, CoreError> {
    let view = app.policy.view(caller.principal.as_ref());
    let snapshot = app.catalog.snapshot();
    let (field, plural) = kind.fields();
    let item = match kind {
        ListKind::Prompts => Item::Prompt,
        ListKind::Resources | ListKind::Templates => Item::Resource,
    };
    let (items, next) = snapshot
        .item_page(
            kind,
            |i| {
                let key = i.item.get(field).and_then(Value::as_str).unwrap_or("");
                view.allows(item, key, i.pool.as_str())
            },
            cursor,
            app.config.page_size,
        )
        .map_err(|e| CoreError::invalid_params(format!("Invalid params: {e}")))?;
    let list: Vec<&Map<String, Value>> = items.iter().map(|i| i.item.as_ref()).collect();
    let mut result = json!({ plural: list });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    Ok(listed(result, view.is_filtered()))
}

/// A list is the same for everyone unless a policy filtered it for this caller; a filtered
/// list must never be cached as public (`cacheScope`), or one principal's view would be
/// served to another.
fn listed(result: Value, filtered: bool) -> Outcome {
    Outcome::Done {
        result,
        cache: if filtered {
            Cache::Private
        } else {
            Cache::Public
        },
    }
}
