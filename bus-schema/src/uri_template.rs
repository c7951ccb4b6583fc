//! Matching a URI against an MCP resource template (RFC 6570 level 1: `{name}` expands to one
//! or more characters). Gateways use it to route `resources/read`, workers to pick the
//! handler, so both sides always agree.

/// The variables of `uri` under `template`, or `None` if it does not match. A variable
/// never spans a `/`, so `test://t/{id}/data` does not match `test://t/a/b/data`.
pub fn match_uri(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let mut rest = uri;
    let mut tpl = template;
    while !tpl.is_empty() {
        match tpl.find('{') {
            None => return (rest == tpl).then_some(vars),
            Some(0) => {
                let close = tpl.find('}')?;
                let name = &tpl[1..close];
                tpl = &tpl[close + 1..];
                // The variable runs to the next literal character (or the end).
                let stop = tpl.chars().next();
                let end = match stop {
                    None => rest.len(),
                    Some(c) => rest.find(c)?,
                };
                let value = &rest[..end];
                if value.is_empty() || value.contains('/') {
                    return None;
                }
                vars.push((name.to_owned(), value.to_owned()));
                rest = &rest[end..];
            }
            Some(open) => {
                let literal = &tpl[..open];
                rest = rest.strip_prefix(literal)?;
                tpl = &tpl[open..];
            }
        }
    }
    rest.is_empty().then_some(vars)
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_one_templates_match_and_extract() {
        let t = "test://template/{id}/data";
        assert_eq!(
            match_uri(t, "test://template/123/data"),
            Some(vec![("id".into(), "123".into())])
        );
        assert_eq!(match_uri(t, "test://template//data"), None);
        assert_eq!(match_uri(t, "test://template/1/2/data"), None);
        assert_eq!(match_uri(t, "test://template/123/other"), None);
        assert_eq!(
            match_uri("file:///{name}", "file:///a.txt"),
            Some(vec![("name".into(), "a.txt".into())])
        );
        assert_eq!(match_uri("test://static", "test://static"), Some(vec![]));
        assert_eq!(match_uri("test://static", "test://static2"), None);
    }
}
