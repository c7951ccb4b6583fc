/**
 * mcpbus worker SDK for TypeScript: serve MCP tools to an mcpbus cluster over NATS
 * JetStream (bus-schema/PROTOCOL.md, version 2).
 */

export { Worker, type WorkerOptions, type RunOptions } from "./worker.js";
export { defineTool, ToolDef, asResult, toolError, inputSchema } from "./tool.js";
export type { CallToolResult, ToolReturn, ToolSpec, ToolHandler } from "./tool.js";
export { ToolContext, type LogLevel, type AskOptions } from "./context.js";
export { ToolError, ProtocolError, InputRequired } from "./errors.js";
export type { Principal } from "./principal.js";
export { Catalogue } from "./catalogue.js";
export type { Ask } from "./mrtr.js";
export { settingsFromEnv, type NatsSettings, NatsSettingsError, redactUrl } from "./connection.js";
export { log } from "./log.js";
export { StopError, type StopReason } from "./runner.js";
export { SDK, SDK_VERSION } from "./contract.js";
export { z } from "zod";
