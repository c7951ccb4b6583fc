/**
 * The SDK's own log lines, to stderr, one per line with a level. Replace `log.sink` to route
 * them elsewhere. Never given secrets: connection settings are logged redacted.
 */

export type Level = "debug" | "info" | "warn" | "error";

const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export const log = {
  /** Lines below this level are dropped; `MCPBUS_LOG=debug|info|warn|error`, default info. */
  level: ((process.env.MCPBUS_LOG as Level | undefined) ?? "info") as Level,
  sink: (level: Level, line: string) => {
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} mcpbus-worker: ${line}\n`);
  },
  at(level: Level, line: string) {
    if ((order[level] ?? 1) >= (order[this.level] ?? 1)) this.sink(level, line);
  },
  debug(line: string) {
    this.at("debug", line);
  },
  info(line: string) {
    this.at("info", line);
  },
  warn(line: string) {
    this.at("warn", line);
  },
  error(line: string) {
    this.at("error", line);
  },
};
