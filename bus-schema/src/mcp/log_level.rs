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
    /// Every level's name, in increasing severity.
    pub const NAMES: [&'static str; 8] = LEVELS;

    /// The lowest level: everything passes.
    pub const DEBUG: LogLevel = LogLevel(0);

    pub fn parse(level: &str) -> Option<Self> {
        LEVELS.iter().position(|l| *l == level).map(LogLevel)
    }

    pub fn as_str(self) -> &'static str {
        LEVELS[self.0]
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
            .ok_or_else(|| format!("unknown log level {s:?}; one of {}", LEVELS.join(", ")))
    }
}

/// On the wire, the level's name.
impl serde::Serialize for LogLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for LogLevel {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LogLevel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "enum": LEVELS})
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

    #[test]
    fn levels_travel_as_their_names() {
        let level: LogLevel = serde_json::from_str("\"warning\"").unwrap();
        assert_eq!(serde_json::to_string(&level).unwrap(), "\"warning\"");
        assert!(serde_json::from_str::<LogLevel>("\"loud\"").is_err());
    }
}
