//! The fixtures of the official MCP conformance suite (`@modelcontextprotocol/conformance`),
//! served by `mcpbus-worker conformance` so that the suite exercises the real path: client →
//! gateway → JetStream → this worker. Names, texts and shapes follow the suite's scenario
//! descriptions exactly.

use std::time::Duration;

use serde_json::{json, Value};

use bus_schema::mcp::{capability, code};
use mcpbus_worker_sdk::{
    Ask, Catalogue, PromptDef, ProtocolError, ResourceDef, TaskSupport, ToolDef, ToolError,
    ToolOutput,
};

/// A 1×1 red PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A WAV file with a header and no samples.
const WAV_EMPTY: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

fn content(blocks: Vec<Value>) -> ToolOutput {
    ToolOutput {
        content: blocks,
        structured: None,
        is_error: false,
    }
}

fn no_args(name: &str, description: &str) -> ToolDef {
    ToolDef::raw(name, |_ctx, _args| async { Ok(ToolOutput::text("")) })
        .description(description)
        .input_schema_value(json!({"type": "object", "properties": {}}))
}

/// Every tool fixture the conformance worker serves.
pub fn tools() -> Vec<ToolDef> {
    vec![
        no_args("test_simple_text", "Returns simple text content").handler(|_ctx, _args| async {
            Ok(ToolOutput::text(
                "This is a simple text response for testing.",
            ))
        }),
        no_args("test_image_content", "Returns image content").handler(|_ctx, _args| async {
            Ok(content(vec![
                json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"}),
            ]))
        }),
        no_args("test_audio_content", "Returns audio content").handler(|_ctx, _args| async {
            Ok(content(vec![
                json!({"type": "audio", "data": WAV_EMPTY, "mimeType": "audio/wav"}),
            ]))
        }),
        no_args("test_embedded_resource", "Returns an embedded resource").handler(
            |_ctx, _args| async {
                Ok(content(vec![json!({"type": "resource", "resource": {
                    "uri": "test://embedded-resource",
                    "mimeType": "text/plain",
                    "text": "This is an embedded resource content."
                }})]))
            },
        ),
        no_args(
            "test_multiple_content_types",
            "Returns text, image and resource content",
        )
        .handler(|_ctx, _args| async {
            Ok(content(vec![
                json!({"type": "text", "text": "Multiple content types test:"}),
                json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"}),
                json!({"type": "resource", "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}"
                }}),
            ]))
        }),
        no_args(
            "test_tool_with_logging",
            "Sends three log messages while it runs",
        )
        .handler(|ctx, _args| async move {
            ctx.log("info", json!("Tool execution started")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.log("info", json!("Tool processing data")).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.log("info", json!("Tool execution completed")).await;
            Ok(ToolOutput::text("Tool with logging executed successfully"))
        }),
        no_args("test_error_handling", "Always fails").handler(|_ctx, _args| async {
            Err::<ToolOutput, _>(ToolError::new(
                "This tool intentionally returns an error for testing",
            ).into())
        }),
        ToolDef::raw("test_sampling", |ctx, args| async move {
            let prompt = args["prompt"].as_str().unwrap_or_default().to_owned();
            let answer = ctx
                .ask(
                    "sampling/createMessage",
                    json!({"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                        "maxTokens": 100}),
                )
                .await?;
            let text = answer["content"]["text"].as_str().unwrap_or_default();
            Ok(ToolOutput::text(format!("LLM response: {text}")))
        })
        .description("Asks the client's LLM (sampling/createMessage)")
        .input_schema_value(json!({"type": "object",
            "properties": {"prompt": {"type": "string", "description": "The prompt to send to the LLM"}},
            "required": ["prompt"]})),
        ToolDef::raw("test_elicitation", |ctx, args| async move {
            let message = args["message"].as_str().unwrap_or_default().to_owned();
            let answer = ctx
                .ask(
                    "elicitation/create",
                    json!({"message": message, "requestedSchema": {"type": "object", "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}},
                        "required": ["username", "email"]}}),
                )
                .await?;
            Ok(ToolOutput::text(format!("User response: {answer}")))
        })
        .description("Asks the user for input (elicitation/create)")
        .input_schema_value(json!({"type": "object",
            "properties": {"message": {"type": "string", "description": "The message to show the user"}},
            "required": ["message"]})),
        no_args("test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type")
            .handler(|ctx, _args| async move {
                let schema = json!({"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "default": true}}});
                let answer = ctx
                    .ask("elicitation/create", json!({"message": "Please review your details", "requestedSchema": schema}))
                    .await?;
                Ok(ToolOutput::text(format!(
                    "Elicitation completed: action={}, content={}",
                    answer["action"].as_str().unwrap_or_default(),
                    answer["content"]
                )))
            }),
        no_args("test_elicitation_sep1330_enums", "Elicitation with every enum variant")
            .handler(|ctx, _args| async move {
                let schema = json!({"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"},
                        {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"}]}}}});
                let answer = ctx
                    .ask("elicitation/create", json!({"message": "Choose your options", "requestedSchema": schema}))
                    .await?;
                Ok(ToolOutput::text(format!(
                    "Elicitation completed: action={}, content={}",
                    answer["action"].as_str().unwrap_or_default(),
                    answer["content"]
                )))
            }),
        no_args("test_missing_capability", "Needs the sampling capability")
            .handler(|ctx, _args| async move {
                ctx.ask(
                    "sampling/createMessage",
                    json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hello"}}],
                        "maxTokens": 10}),
                )
                .await?;
                Ok(ToolOutput::text("the client can sample"))
            }),
        no_args("test_logging_tool", "Logs while it runs (only shown when the request asks for logs)")
            .handler(|ctx, _args| async move {
                ctx.log("info", json!("test_logging_tool ran")).await;
                Ok(ToolOutput::text("logged"))
            }),
        no_args("test_streaming_elicitation", "Asks for user input while streaming")
            .handler(|ctx, _args| async move {
                let answer = ctx
                    .ask("elicitation/create", json!({"message": "Continue?",
                        "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}))
                    .await?;
                Ok(ToolOutput::text(format!("answer: {answer}")))
            }),
        ToolDef::raw("json_schema_2020_12_tool", |_ctx, _args| async {
            Ok(ToolOutput::text("JSON Schema 2020-12 tool executed"))
        })
        .description("Tool with JSON Schema 2020-12 features")
        .input_schema_value(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"}
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": false
        })),
        no_args("test_reconnection", "Closes the client's stream mid-call; the result comes on reconnection")
            .handler(|ctx, _args| async move {
                ctx.detach_stream().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(ToolOutput::text("Reconnection test completed successfully"))
            }),
        no_args("test_trigger_tool_change", "Adds or removes the tool test_dynamic_tool")
            .handler(|ctx, _args| async move {
                let added = toggle_dynamic_tool(ctx.catalogue());
                Ok(ToolOutput::text(if added { "test_dynamic_tool added" } else { "test_dynamic_tool removed" }))
            }),
        no_args("test_trigger_prompt_change", "Adds or removes the prompt test_dynamic_prompt")
            .handler(|ctx, _args| async move {
                let catalogue = ctx.catalogue();
                let added = !catalogue.remove_prompt("test_dynamic_prompt");
                if added {
                    catalogue.add_prompt(
                        PromptDef::new("test_dynamic_prompt", |_ctx, _args| async {
                            Ok(json!({"messages": [user_text("A prompt added at run time.")]}))
                        })
                        .description("Present while test_trigger_prompt_change has toggled it on"),
                    );
                }
                Ok(ToolOutput::text(if added { "test_dynamic_prompt added" } else { "test_dynamic_prompt removed" }))
            }),
        ToolDef::raw("test_header_param", |_ctx, args| async move {
            let region = args["region"].as_str().unwrap_or_default().to_owned();
            Ok(ToolOutput::text(format!("region={region}")))
        })
        .description("Mirrors its region argument into the Mcp-Param-Region header (x-mcp-header)")
        .input_schema_value(json!({"type": "object",
            "properties": {"region": {"type": "string", "description": "Where to run",
                "x-mcp-header": "Region"}},
            "required": ["region"]})),
        no_args(
            "test_tool_with_progress",
            "Reports progress 0, 50, 100 of 100",
        )
        .handler(|ctx, _args| async move {
            for (i, p) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                ctx.progress(p, Some(100.0), None).await;
            }
            Ok(ToolOutput::text("Tool with progress executed successfully"))
        }),
    ]
    .into_iter()
    .chain(input_required_tools())
    .chain(task_tools())
    .collect()
}

/// The fixtures of the tasks extension scenarios (`tasks-*`, 2026-07-28).
fn task_tools() -> Vec<ToolDef> {
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required});
    vec![
        ToolDef::raw("greet", |_ctx, args| async move {
            let name = args["name"].as_str().unwrap_or("World").to_owned();
            Ok(ToolOutput::text(format!("Hello, {name}!")))
        })
        .description("Greets by name (never a task)")
        .input_schema_value(object(json!({"name": {"type": "string"}}), &["name"])),
        ToolDef::raw("slow_compute", |ctx, args| async move {
            let seconds = args["seconds"].as_f64().unwrap_or(1.0).max(0.0);
            let label = args["label"].as_str().unwrap_or("compute").to_owned();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
                _ = ctx.cancellation().cancelled() => return Err(ToolError::new("cancelled").into()),
            }
            Ok(ToolOutput::text(format!(
                "{label}: computed in {seconds} s"
            )))
        })
        .description("Sleeps `seconds`, then answers; runs as a task when it can")
        .input_schema_value(object(
            json!({"seconds": {"type": "number"}, "label": {"type": "string"}}),
            &[],
        ))
        .task_support(TaskSupport::Optional),
        no_args(
            "failing_job",
            "Fails as a tool after about a second; only runs as a task",
        )
        .handler(|_ctx, _args| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<ToolOutput, _>(ToolError::new("failing_job failed, as it always does").into())
        })
        .task_support(TaskSupport::Required),
        no_args(
            "protocol_error_job",
            "Fails with a protocol error; runs as a task when it can",
        )
        .handler(|_ctx, _args| async {
            Err::<ToolOutput, _>(
                ProtocolError::new(
                    code::INTERNAL_ERROR,
                    "protocol_error_job hit an internal error",
                )
                .into(),
            )
        })
        .task_support(TaskSupport::Optional),
        ToolDef::raw("confirm_delete", |ctx, args| async move {
            let file = args["filename"].as_str().unwrap_or_default().to_owned();
            let answer = ctx
                .ask_keyed(
                    "confirm",
                    "elicitation/create",
                    elicit(&format!("Delete {file}?"), "confirm", "boolean"),
                )
                .await?;
            let confirmed = answer["action"] == "accept" && answer["content"]["confirm"] != false;
            Ok(ToolOutput::text(if confirmed {
                format!("deleted {file}")
            } else {
                format!("kept {file}")
            }))
        })
        .description("Asks before deleting; runs as a task when it can")
        .input_schema_value(object(
            json!({"filename": {"type": "string"}}),
            &["filename"],
        ))
        .task_support(TaskSupport::Optional),
        no_args(
            "multi_input",
            "Asks two questions at once; runs as a task when it can",
        )
        .handler(|ctx, _args| async move {
            let answers = ctx
                .ask_all(vec![
                    Ask::new(
                        "name",
                        "elicitation/create",
                        elicit("Your name?", "name", "string"),
                    ),
                    Ask::new(
                        "confirm",
                        "elicitation/create",
                        elicit("Go ahead?", "confirm", "boolean"),
                    ),
                ])
                .await?;
            Ok(ToolOutput::text(format!(
                "name={}, confirm={}",
                elicited(&answers[0], "name"),
                elicited(&answers[1], "confirm")
            )))
        })
        .task_support(TaskSupport::Optional),
        no_args(
            "test_tool_with_task",
            "Asks for a name (MRTR), then runs on as a task",
        )
        .handler(|ctx, _args| async move {
            let answer = ctx
                .ask_keyed(
                    "user_name",
                    "elicitation/create",
                    elicit("What is your name?", "name", "string"),
                )
                .await?;
            ctx.run_as_task().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(ToolOutput::text(format!(
                "Hello, {}!",
                elicited(&answer, "name")
            )))
        })
        .task_support(TaskSupport::Required)
        .escalates_itself(),
    ]
}

/// Adds `test_dynamic_tool` if absent, removes it if present; true when added.
fn toggle_dynamic_tool(catalogue: &Catalogue) -> bool {
    if catalogue.remove_tool("test_dynamic_tool") {
        return false;
    }
    catalogue.add_tool(
        no_args(
            "test_dynamic_tool",
            "Present while test_trigger_tool_change has toggled it on",
        )
        .handler(|_ctx, _args| async { Ok(ToolOutput::text("dynamic")) }),
    );
    true
}

/// An `elicitation/create` asking for one field of `kind`.
fn elicit(message: &str, field: &str, kind: &str) -> Value {
    json!({"message": message, "requestedSchema": {"type": "object",
        "properties": {field: {"type": kind}}, "required": [field]}})
}

fn sample(text: &str, max_tokens: u32) -> Value {
    json!({"messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        "maxTokens": max_tokens})
}

/// `content.<field>` of an accepted elicitation, as text.
fn elicited(answer: &Value, field: &str) -> String {
    match &answer["content"][field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The multi round-trip (`InputRequiredResult`, 2026-07-28) fixtures. Each asks through
/// the same `ctx.ask*` calls a session-lane tool uses.
fn input_required_tools() -> Vec<ToolDef> {
    vec![
        no_args(
            "test_input_required_result_elicitation",
            "Asks for the user's name (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let answer = ctx
                .ask_keyed(
                    "user_name",
                    "elicitation/create",
                    elicit("What is your name?", "name", "string"),
                )
                .await?;
            Ok(ToolOutput::text(format!(
                "Hello, {}!",
                elicited(&answer, "name")
            )))
        }),
        no_args(
            "test_input_required_result_sampling",
            "Asks the client's LLM (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let answer = ctx
                .ask_keyed(
                    "capital_question",
                    "sampling/createMessage",
                    sample("What is the capital of France?", 100),
                )
                .await?;
            let text = answer["content"]["text"].as_str().unwrap_or_default();
            Ok(ToolOutput::text(format!("LLM response: {text}")))
        }),
        no_args(
            "test_input_required_result_list_roots",
            "Lists the client's roots (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let answer = ctx
                .ask_keyed("client_roots", "roots/list", json!({}))
                .await?;
            let uris: Vec<&str> = answer["roots"]
                .as_array()
                .map(|roots| roots.iter().filter_map(|r| r["uri"].as_str()).collect())
                .unwrap_or_default();
            Ok(ToolOutput::text(format!(
                "Client roots: {}",
                uris.join(", ")
            )))
        }),
        no_args(
            "test_input_required_result_request_state",
            "Round-trips requestState (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let answer = ctx
                .ask_keyed(
                    "confirm",
                    "elicitation/create",
                    elicit("Please confirm", "ok", "boolean"),
                )
                .await?;
            // The gateway only forwards a requestState that passed its integrity check.
            let state = if ctx.resumed() {
                "state-ok"
            } else {
                "state-missing"
            };
            Ok(ToolOutput::text(format!(
                "{state}: confirmed={}",
                elicited(&answer, "ok")
            )))
        }),
        no_args(
            "test_input_required_result_tampered_state",
            "Rejects a tampered requestState (MRTR)",
        )
        .handler(|ctx, _args| async move {
            ctx.ask_keyed(
                "confirm",
                "elicitation/create",
                elicit("Please confirm", "ok", "boolean"),
            )
            .await?;
            Ok(ToolOutput::text("state-ok"))
        }),
        no_args(
            "test_input_required_result_multiple_inputs",
            "Asks three questions at once (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let answers = ctx
                .ask_all(vec![
                    Ask::new(
                        "user_name",
                        "elicitation/create",
                        elicit("What is your name?", "name", "string"),
                    ),
                    Ask::new(
                        "greeting",
                        "sampling/createMessage",
                        sample("Generate a greeting", 50),
                    ),
                    Ask::new("client_roots", "roots/list", json!({})),
                ])
                .await?;
            Ok(ToolOutput::text(format!(
                "name={}, greeting={}, roots={}",
                elicited(&answers[0], "name"),
                answers[1]["content"]["text"].as_str().unwrap_or_default(),
                answers[2]["roots"].as_array().map_or(0, Vec::len),
            )))
        }),
        no_args(
            "test_input_required_result_multi_round",
            "Asks two questions, one per round (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let name = ctx
                .ask_keyed(
                    "step1",
                    "elicitation/create",
                    elicit("Step 1: What is your name?", "name", "string"),
                )
                .await?;
            let color = ctx
                .ask_keyed(
                    "step2",
                    "elicitation/create",
                    elicit("Step 2: What is your favorite color?", "color", "string"),
                )
                .await?;
            Ok(ToolOutput::text(format!(
                "{} likes {}",
                elicited(&name, "name"),
                elicited(&color, "color")
            )))
        }),
        no_args(
            "test_input_required_result_capabilities",
            "Asks only for what the client declared (MRTR)",
        )
        .handler(|ctx, _args| async move {
            let mut asks = Vec::new();
            if ctx.client_supports(capability::SAMPLING) {
                asks.push(Ask::new(
                    "capital_question",
                    "sampling/createMessage",
                    sample("What is the capital of France?", 100),
                ));
            }
            if ctx.client_supports(capability::ELICITATION) {
                asks.push(Ask::new(
                    "user_name",
                    "elicitation/create",
                    elicit("What is your name?", "name", "string"),
                ));
            }
            let answered = ctx.ask_all(asks).await?.len();
            Ok(ToolOutput::text(format!("{answered} answers received")))
        }),
    ]
}

/// The resource and resource-template fixtures.
pub fn resources() -> Vec<ResourceDef> {
    vec![
        ResourceDef::fixed(
            "test://static-text",
            "Static text resource",
            |_ctx, uri| async move {
                Ok(vec![json!({"uri": uri, "mimeType": "text/plain",
                "text": "This is the content of the static text resource."})])
            },
        )
        .mime_type("text/plain")
        .description("A static text resource"),
        ResourceDef::fixed(
            "test://static-binary",
            "Static binary resource",
            |_ctx, uri| async move {
                Ok(vec![
                    json!({"uri": uri, "mimeType": "image/png", "blob": PNG_1X1}),
                ])
            },
        )
        .mime_type("image/png")
        .description("A static binary resource (a 1x1 PNG)"),
        ResourceDef::template(
            "test://template/{id}/data",
            "Template resource",
            |_ctx, uri| async move {
                let id = bus_schema::uri_template::match_uri("test://template/{id}/data", &uri)
                    .and_then(|vars| vars.into_iter().next())
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let text =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string();
                Ok(vec![
                    json!({"uri": uri, "mimeType": "application/json", "text": text}),
                ])
            },
        )
        .mime_type("application/json")
        .description("Substitutes {id}")
        .completer(|_arg, typed| {
            ["123", "456", "789"]
                .iter()
                .filter(|v| v.starts_with(typed))
                .map(|v| v.to_string())
                .collect()
        }),
    ]
}

fn user_text(text: &str) -> Value {
    json!({"role": "user", "content": {"type": "text", "text": text}})
}

/// The prompt fixtures.
pub fn prompts() -> Vec<PromptDef> {
    vec![
        PromptDef::new("test_simple_prompt", |_ctx, _args| async {
            Ok(json!({"messages": [user_text("This is a simple prompt for testing.")]}))
        })
        .description("A prompt without arguments"),
        PromptDef::new("test_prompt_with_arguments", |_ctx, args| async move {
            let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
            let text = format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"));
            Ok(json!({"messages": [user_text(&text)]}))
        })
        .description("A prompt with two arguments")
        .argument("arg1", "First test argument", true)
        .argument("arg2", "Second test argument", true)
        .completer(|_arg, typed| {
            ["test1", "test2", "testing"].iter().filter(|v| v.starts_with(typed)).map(|v| v.to_string()).collect()
        }),
        PromptDef::new("test_prompt_with_embedded_resource", |_ctx, args| async move {
            let uri = args.get("resourceUri").and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok(json!({"messages": [
                {"role": "user", "content": {"type": "resource", "resource": {
                    "uri": uri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                user_text("Please process the embedded resource above."),
            ]}))
        })
        .description("A prompt that embeds a resource")
        .argument("resourceUri", "URI of the resource to embed", true),
        PromptDef::new("test_prompt_with_image", |_ctx, _args| async {
            Ok(json!({"messages": [
                {"role": "user", "content": {"type": "image", "data": PNG_1X1, "mimeType": "image/png"}},
                user_text("Please analyze the image above."),
            ]}))
        })
        .description("A prompt with an image"),
        PromptDef::new("test_input_required_result_prompt", |ctx, _args| async move {
            let answer = ctx
                .ask_keyed("user_context", "elicitation/create",
                    elicit("What context should the prompt use?", "context", "string"))
                .await?;
            let text = format!("Use this context: {}", elicited(&answer, "context"));
            Ok(json!({"messages": [user_text(&text)]}))
        })
        .description("A prompt that asks the user for context first (MRTR)"),
    ]
}
