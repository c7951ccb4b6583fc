//! `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list`: one page of
//! the catalogue snapshot. Cursors name the last entry of a page, so pages agree across
//! gateways (see `catalog/`).

use serde_json::{json, Map, Value};

use super::error::CoreError;
use crate::app::App;
use crate::catalog::ListKind;

/// One page of the aggregated tools.
pub fn tools(app: &App, cursor: Option<&str>) -> Result<Value, CoreError> {
    let snapshot = app.catalog.snapshot();
    let page = snapshot
        .page(cursor, app.config.page_size)
        .map_err(|e| CoreError::invalid_params(format!("Invalid params: {e}")))?;
    let tools: Vec<&Map<String, Value>> = page.tools.iter().map(|t| t.tool.as_ref()).collect();
    let mut result = json!({"tools": tools});
    if let Some(next) = page.next_cursor {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}

/// One page of resources, resource templates or prompts.
pub fn items(app: &App, kind: ListKind, cursor: Option<&str>) -> Result<Value, CoreError> {
    let snapshot = app.catalog.snapshot();
    let (items, next) = snapshot
        .item_page(kind, cursor, app.config.page_size)
        .map_err(|e| CoreError::invalid_params(format!("Invalid params: {e}")))?;
    let list: Vec<&Map<String, Value>> = items.iter().map(|i| i.item.as_ref()).collect();
    let mut result = json!({ kind.fields().1: list });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}
