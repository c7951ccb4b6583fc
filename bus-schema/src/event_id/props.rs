//! `Last-Event-ID` comes from any client: whatever it holds must parse to `None` or to an id
//! that names one of our streams, and every id we issue must come back unchanged.

use proptest::prelude::*;

use super::EventId;

/// Any id a gateway issues: a stream key of 1 to 64 ASCII letters and digits, any sequence,
/// and any finite progress (MCP progress is a JSON number, so the tiny and the huge too).
fn issued() -> impl Strategy<Value = EventId> {
    let progress = prop_oneof![
        Just(None),
        any::<f64>()
            .prop_filter("finite", |p| p.is_finite())
            .prop_map(Some),
    ];
    prop_oneof![
        ("[A-Za-z0-9]{1,64}", any::<u64>(), progress).prop_map(|(stream, seq, progress)| {
            EventId::Request {
                stream,
                seq,
                progress,
            }
        }),
        any::<u64>().prop_map(|seq| EventId::Standalone { seq }),
    ]
}

/// Text close to an id: the pieces of one, joined by colons in any number and order.
fn near_id() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("r".to_owned()),
        Just("g".to_owned()),
        Just(String::new()),
        "[A-Za-z0-9]{1,70}",
        "[0-9]{1,25}",
        "-?[0-9]{1,5}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,4})?",
        "[+-]?(NaN|inf|infinity|Infinity)",
        any::<String>(),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.join(":"))
}

proptest! {
    #[test]
    fn issued_ids_round_trip(id in issued()) {
        prop_assert_eq!(EventId::parse(&id.to_string()), Some(id));
    }

    /// Whatever parses names a stream we could have issued, and prints back to text that
    /// parses to the same id: a hostile id cannot smuggle a bad key or a NaN past the parser.
    #[test]
    fn anything_parses_to_nothing_or_to_an_id_we_could_issue(
        raw in prop_oneof![any::<String>(), near_id()]
    ) {
        if let Some(id) = EventId::parse(&raw) {
            if let EventId::Request { stream, progress, .. } = &id {
                prop_assert!(!stream.is_empty() && stream.len() <= 64);
                prop_assert!(stream.bytes().all(|b| b.is_ascii_alphanumeric()));
                prop_assert!(progress.is_none_or(f64::is_finite));
            }
            prop_assert_eq!(EventId::parse(&id.to_string()), Some(id));
        }
    }

    /// An issued id with one byte changed parses to nothing or to a well-formed id.
    #[test]
    fn an_issued_id_with_one_byte_changed_is_refused_or_well_formed(
        id in issued(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut raw = id.to_string().into_bytes();
        let i = at.index(raw.len());
        raw[i] = byte;
        if let Ok(raw) = String::from_utf8(raw) {
            if let Some(parsed) = EventId::parse(&raw) {
                prop_assert_eq!(EventId::parse(&parsed.to_string()), Some(parsed));
            }
        }
    }
}
