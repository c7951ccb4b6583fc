//! A list cursor comes back from the client, who may send anything: a cursor we issued
//! resumes the walk exactly where the page ended, and any other text is a `BadCursor` or a
//! page after what it names, never a panic.

use proptest::prelude::*;

use super::tests::route;
use super::*;

/// Tool names of any characters, and which of them the caller may see.
fn catalogue() -> impl Strategy<Value = Vec<(String, bool)>> {
    prop::collection::vec((any::<String>(), any::<bool>()), 0..24)
}

proptest! {
    #[test]
    fn cursors_round_trip(name in any::<String>()) {
        prop_assert_eq!(decode_cursor(&encode_cursor(&name)), Some(name));
    }

    /// Following `nextCursor` from the first page sees every visible tool once, in order,
    /// and no hidden one.
    #[test]
    fn pages_walk_every_visible_tool_once(tools in catalogue(), size in 1usize..5) {
        let hidden: std::collections::HashSet<String> =
            tools.iter().filter(|(_, v)| !v).map(|(n, _)| n.clone()).collect();
        let snap = CatalogSnapshot::new(
            tools.iter().map(|(n, _)| route("p", n)).collect(),
            HashMap::new(),
        );
        let visible = |t: &ToolRoute| !hidden.contains(t.name());
        let mut want: Vec<String> = snap.tools().iter().filter(|t| visible(t)).map(|t| t.name().to_owned()).collect();
        want.sort();
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = snap.page(visible, cursor.as_deref(), size).expect("our own cursor");
            seen.extend(page.tools.iter().map(|t| t.name().to_owned()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            prop_assert!(seen.len() <= want.len(), "the walk does not end");
        }
        prop_assert_eq!(seen, want);
    }

    #[test]
    fn any_cursor_is_refused_or_pages_after_what_it_names(
        tools in catalogue(),
        cursor in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,40}",
            any::<String>().prop_map(|n| encode_cursor(&n)),
        ],
    ) {
        let snap = CatalogSnapshot::new(
            tools.iter().map(|(n, _)| route("p", n)).collect(),
            HashMap::new(),
        );
        match snap.page(|_| true, Some(&cursor), 3) {
            Ok(page) => {
                let after = decode_cursor(&cursor).expect("only a cursor of ours is read");
                prop_assert!(page.tools.iter().all(|t| t.name() > after.as_str()));
            }
            Err(BadCursor) => prop_assert_eq!(decode_cursor(&cursor), None),
        }
    }
}
