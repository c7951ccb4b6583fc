//! A client answers a worker's request with an id it may have altered, or with an id minted
//! for someone else: only an id minted for this owner opens, to exactly its base, and any
//! one-character change or foreign text is refused without a panic.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn ids(owner: &str) -> AnswerIds {
    let key = b"0123456789abcdef0123456789abcdef-props".to_vec();
    let sealer = StateSealer::new(&[key], Duration::from_secs(60)).expect("a strong key");
    AnswerIds {
        sealer: Arc::new(sealer),
        owner: owner.to_owned(),
    }
}

/// A base id as `client_request_id::format` writes it.
const BASE: &str = "mcpbus:[A-Za-z0-9_-]{1,16}:[A-Za-z0-9]{1,32}:[0-9]{1,10}";

proptest! {
    #[test]
    fn a_minted_id_opens_to_its_base_for_its_owner_only(
        base in prop_oneof![BASE, any::<String>()],
        owner in any::<String>(),
        other in any::<String>(),
    ) {
        let id = ids(&owner).mint(&base);
        prop_assert_eq!(ids(&owner).open(&id), Some(base.as_str()));
        if other != owner {
            prop_assert_eq!(ids(&other).open(&id), None);
        }
    }

    #[test]
    fn a_changed_id_is_refused(
        base in BASE,
        at in any::<prop::sample::Index>(),
        with in prop_oneof![prop::sample::select(b"AZaz09-_:".to_vec()).prop_map(char::from), any::<char>()],
    ) {
        let a = ids("a");
        let id = a.mint(&base);
        let mut chars: Vec<char> = id.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        chars[i] = with;
        let forged: String = chars.into_iter().collect();
        prop_assert_eq!(a.open(&forged), None, "{} opened", forged);
    }

    #[test]
    fn foreign_text_is_refused(id in prop_oneof![any::<String>(), "mcpbus:[a-z]{1,4}:[a-z0-9]{1,8}:[0-9]{1,3}:[A-Za-z0-9_-]{0,50}"]) {
        prop_assert_eq!(ids("a").open(&id), None);
    }
}
