//! A `requestState` comes back from the client, who may change it: a state opens only as
//! it was sealed, for the request it was sealed for, and any change to the token (one
//! character replaced, added or removed) or any text we did not seal is refused with an
//! error, never opened and never a panic.

use proptest::prelude::*;

use super::*;
use bus_schema::strategies::json_value;

const SECRET: &[u8] = b"a-secret-of-at-least-thirty-two-bytes-for-props";

fn sealer() -> StateSealer {
    StateSealer::new(&[SECRET.to_vec()], Duration::from_secs(600)).expect("a strong key")
}

/// One edit of `token`: a character replaced, inserted or removed.
fn edit(token: &str, at: prop::sample::Index, with: char, kind: u8) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = at.index(chars.len() + 1);
    match kind % 3 {
        0 if i < chars.len() && chars[i] != with => chars[i] = with,
        0 | 1 => chars.insert(i, with),
        _ => {
            chars.remove(i.min(chars.len() - 1));
        }
    }
    chars.into_iter().collect()
}

/// Text shaped like a token: dot-joined parts, some of them base64url of anything.
fn near_token() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just(String::new()),
        "[0-9a-f]{8}",
        "[A-Za-z0-9_-]{0,60}",
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        json_value().prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
        any::<String>(),
    ];
    prop::collection::vec(part, 1..5).prop_map(|p| p.join("."))
}

proptest! {
    #[test]
    fn a_sealed_state_opens_to_what_was_sealed(
        binding in any::<String>(),
        state in prop::option::of(json_value()),
    ) {
        let s = sealer();
        // A JSON `null` state is sealed as no state: the payload leaves it out.
        let want = state.clone().filter(|v| !v.is_null());
        prop_assert_eq!(s.open(&binding, &s.seal(&binding, state)), Ok(want));
    }

    #[test]
    fn a_state_opens_only_for_its_own_request(a in any::<String>(), b in any::<String>()) {
        prop_assume!(a != b);
        let s = sealer();
        prop_assert_eq!(s.open(&b, &s.seal(&a, None)), Err(StateError::OtherRequest));
    }

    #[test]
    fn any_edit_of_a_token_is_refused(
        state in prop::option::of(json_value()),
        at in any::<prop::sample::Index>(),
        with in prop_oneof![
            prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=".to_vec())
                .prop_map(char::from),
            any::<char>(),
        ],
        kind in any::<u8>(),
    ) {
        let s = sealer();
        let token = s.seal("b", state);
        let forged = edit(&token, at, with, kind);
        prop_assume!(forged != token);
        prop_assert!(s.open("b", &forged).is_err(), "{forged} opened");
    }

    #[test]
    fn text_we_did_not_seal_is_refused(token in prop_oneof![any::<String>(), near_token()]) {
        prop_assert!(sealer().open("b", &token).is_err());
    }

    /// Our key id with any body and tag: the integrity check stops it before the payload
    /// is read.
    #[test]
    fn a_forged_token_under_our_key_id_is_tampered(body in near_token(), tag in near_token()) {
        let s = sealer();
        let id = s.keys[0].id.clone();
        let forged = format!("{id}.{body}.{tag}");
        prop_assert_eq!(s.open("b", &forged), Err(StateError::Tampered));
    }
}
