//! What a tool handler returns on success: anything [`IntoToolOutput`], i.e. a
//! [`ToolOutput`], a `String` (one text block), or [`Json`] (structured content whose type
//! also becomes the tool's `outputSchema`).

use serde::Serialize;
use serde_json::{json, Value};

use crate::schema;

/// A tool result: MCP content blocks and optional structured content.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
    /// A failure the model should read (`isError: true`), e.g. passed on from a bridged
    /// server; handlers usually return [`crate::ToolError`] instead.
    pub is_error: bool,
}

impl ToolOutput {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": text.into()})],
            structured: None,
            is_error: false,
        }
    }

    /// Structured content, mirrored as a JSON text block for clients that ignore
    /// `structuredContent` (as the MCP spec recommends).
    pub fn structured(value: Value) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": value.to_string()})],
            structured: Some(value),
            is_error: false,
        }
    }

    /// The MCP `CallToolResult`.
    pub(crate) fn into_result(self) -> Value {
        let mut result = json!({"content": self.content, "isError": self.is_error});
        if let Some(s) = self.structured {
            result["structuredContent"] = s;
        }
        result
    }
}

/// What a tool handler may return on success.
pub trait IntoToolOutput {
    fn into_tool_output(self) -> ToolOutput;

    /// The `outputSchema` a tool returning this type declares: `None` for unstructured
    /// results. Called once, when the tool is declared.
    fn output_schema() -> Option<Value> {
        None
    }
}

impl IntoToolOutput for ToolOutput {
    fn into_tool_output(self) -> ToolOutput {
        self
    }
}

impl IntoToolOutput for String {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::text(self)
    }
}

impl IntoToolOutput for &'static str {
    fn into_tool_output(self) -> ToolOutput {
        ToolOutput::text(self)
    }
}

/// Structured content of type `T`, which should serialize to a JSON object (MCP's
/// `structuredContent` is one). A tool whose handler returns `Json<T>` declares `T`'s schema
/// as its `outputSchema`, so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize + schemars::JsonSchema> IntoToolOutput for Json<T> {
    fn into_tool_output(self) -> ToolOutput {
        match serde_json::to_value(self.0) {
            Ok(value) => ToolOutput::structured(value),
            // Only a type serde cannot express in JSON (e.g. a map with non-string keys) gets
            // here: a programming error the caller should see rather than a hung call.
            Err(e) => ToolOutput {
                is_error: true,
                ..ToolOutput::text(format!("the tool's result cannot be serialized: {e}"))
            },
        }
    }

    fn output_schema() -> Option<Value> {
        Some(schema::of::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, schemars::JsonSchema)]
    struct Sum {
        sum: u32,
    }

    #[test]
    fn results_have_the_mcp_shape() {
        let ok = ToolOutput::structured(json!({"sum": 3})).into_result();
        assert_eq!(ok["structuredContent"]["sum"], 3);
        assert_eq!(ok["isError"], false);
    }

    #[test]
    fn json_is_structured_content_with_a_schema() {
        let out = Json(Sum { sum: 3 }).into_tool_output().into_result();
        assert_eq!(out["structuredContent"], json!({"sum": 3}));
        assert_eq!(out["content"][0]["text"], r#"{"sum":3}"#);
        let schema = <Json<Sum>>::output_schema().expect("a schema");
        assert_eq!(schema["properties"]["sum"]["type"], "integer");
        assert_eq!(String::output_schema(), None);
    }
}
