//! MCP log levels, for filtering `notifications/message`.

/// The levels in increasing severity.
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// A log level; ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(usize);

impl LogLevel {
    /// The lowest level: everything passes.
    pub const DEBUG: LogLevel = LogLevel(0);

    pub fn parse(level: &str) -> Option<Self> {
        LEVELS.iter().position(|l| *l == level).map(LogLevel)
    }

    pub fn as_str(self) -> &'static str {
        LEVELS[self.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity() {
        assert!(LogLevel::parse("error") > LogLevel::parse("info"));
        assert_eq!(LogLevel::parse("debug"), Some(LogLevel::DEBUG));
        assert_eq!(LogLevel::parse("loud"), None);
        assert_eq!(LogLevel::parse("notice").unwrap().as_str(), "notice");
    }
}
