//! Name and URI patterns of a policy: literal text where `*` stands for any run of
//! characters (including none, and including `/`). Nothing else is special, so a URI such as
//! `file:///a?b` needs no escaping.

use serde::{Deserialize, Deserializer};

/// One pattern, e.g. `github_*`, `test://static/*`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The literal pieces between the stars, and whether the pattern starts or ends with one.
    pieces: Vec<String>,
    open_start: bool,
    open_end: bool,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Self {
            pieces: text
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            open_start: text.starts_with('*'),
            open_end: text.ends_with('*'),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut rest = text;
        let last = self.pieces.len().saturating_sub(1);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i == 0 && !self.open_start {
                match rest.strip_prefix(piece.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i == last && !self.open_end {
                // The last piece must end the text; earlier pieces take their first match,
                // which leaves the most room for the rest.
                return rest.ends_with(piece.as_str());
            } else {
                match rest.find(piece.as_str()) {
                    Some(at) => rest = &rest[at + piece.len()..],
                    None => return false,
                }
            }
        }
        self.open_end || self.open_start && self.pieces.is_empty() || rest.is_empty()
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Err(serde::de::Error::custom("a pattern may not be empty"));
        }
        Ok(Self::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run_and_everything_else_is_literal() {
        let cases = [
            ("echo", "echo", true),
            ("echo", "echo2", false),
            ("echo", "my_echo", false),
            ("github_*", "github_issues", true),
            ("github_*", "github_", true),
            ("github_*", "gitlab_issues", false),
            ("*_admin", "db_admin", true),
            ("*_admin", "db_admin_x", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("a*a", "a", false),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("test://static/*", "test://static/text", true),
            ("test://static/*", "test://other/text", false),
            ("file:///a?b", "file:///a?b", true),
            ("file:///a?b", "file:///aXb", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(text),
                want,
                "{pattern} ~ {text}"
            );
        }
    }
}
