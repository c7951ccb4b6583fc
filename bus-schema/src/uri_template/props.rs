//! Templates come from workers and URIs from clients, so neither is trusted: matching never
//! panics, whatever it extracts puts the URI back together, and a URI expanded from a
//! template matches it with the values it was expanded from.

use proptest::prelude::*;

use super::match_uri;

/// `template` with its variables replaced, in order, by `values`: the inverse of
/// [`match_uri`], read the same way (a variable runs from `{` to the first `}`).
fn expand(template: &str, values: &[(String, String)]) -> String {
    let (mut out, mut rest, mut values) = (String::new(), template, values.iter());
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open
            + rest[open..]
                .find('}')
                .expect("a matched template is closed");
        out.push_str(&values.next().expect("one value per variable").1);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Template text of any shape: literals with braces, slashes and any characters.
fn any_template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("/".to_owned()),
        "\\{[a-z]{0,3}\\}",
        "[a-z:/.]{1,4}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

/// A level 1 template, values for its variables, and the URI they expand to. Each literal
/// after a variable starts with a character no value holds, which is what lets level 1
/// tell where a value ends.
fn expansion() -> impl Strategy<Value = (String, Vec<String>, String)> {
    let literal = "[a-z0-9.]{0,6}";
    let separated = "[/:?=&#~-][a-z0-9/.:-]{0,6}";
    (
        literal,
        prop::collection::vec(("[a-z]{1,8}", "[A-Za-z0-9_.%]{1,12}", separated), 0..5),
    )
        .prop_map(|(head, vars)| {
            let (mut template, mut uri, mut values) = (head.clone(), head, Vec::new());
            for (name, value, after) in vars {
                template.push_str(&format!("{{{name}}}{after}"));
                uri.push_str(&format!("{value}{after}"));
                values.push(value);
            }
            (template, values, uri)
        })
}

proptest! {
    #[test]
    fn a_match_puts_the_uri_back_together(
        template in prop_oneof![any_template(), expansion().prop_map(|e| e.0)],
        uri in prop_oneof![any::<String>(), "[a-z0-9:/.{}]{0,24}"],
    ) {
        if let Some(vars) = match_uri(&template, &uri) {
            prop_assert!(vars.iter().all(|(_, v)| !v.is_empty() && !v.contains('/')));
            prop_assert_eq!(expand(&template, &vars), uri);
        }
    }

    #[test]
    fn an_expanded_template_matches_with_its_values((template, values, uri) in expansion()) {
        let vars = match_uri(&template, &uri);
        let got: Option<Vec<String>> = vars.map(|v| v.into_iter().map(|(_, v)| v).collect());
        prop_assert_eq!(got, Some(values));
    }
}
