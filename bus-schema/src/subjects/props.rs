//! Reply subjects are chosen by whoever publishes: a gateway reads the pool and call back
//! out of them, so any subject must parse to nothing or to what its tokens say, and every
//! subject we build must parse back.

use proptest::prelude::*;

use super::*;

const NAME: &str = "[A-Za-z0-9_-]{1,64}";

/// A subject near ours: our prefixes, then dot-joined tokens of any kind.
fn near_subject() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(String::new()),
        Just("reply".to_owned()),
        Just("alive".to_owned()),
        Just("*".to_owned()),
        Just(">".to_owned()),
        "[A-Za-z0-9_-]{1,8}",
        "[0-9]{1,22}",
        any::<String>(),
    ];
    let prefix = prop::sample::select(vec![
        format!("{ROOT}.reply."),
        format!("{GATEWAY_INBOX_PREFIX}."),
        String::new(),
    ]);
    (prefix, prop::collection::vec(token, 0..8)).prop_map(|(p, t)| format!("{p}{}", t.join(".")))
}

proptest! {
    #[test]
    fn reply_subjects_round_trip(pool in NAME, gateway in NAME, call_id in "[A-Za-z0-9]{1,32}") {
        let (pool, gateway) = (PoolName::new(pool).unwrap(), InstanceId::new(gateway).unwrap());
        let subject = call_reply(&pool, &gateway, &call_id);
        prop_assert_eq!(parse_reply(&subject), Some((pool.as_str(), call_id.as_str())));
    }

    #[test]
    fn probe_reply_subjects_round_trip(
        gateway in NAME, stage in "[a-z0-9]{1,8}", revision in any::<u64>(), pool in NAME, instance in NAME,
    ) {
        let (gateway, pool) = (InstanceId::new(gateway).unwrap(), PoolName::new(pool).unwrap());
        let instance = InstanceId::new(instance).unwrap();
        let subject = alive_probe_reply(&gateway, &stage, revision, &pool, &instance);
        prop_assert_eq!(
            parse_alive_probe_reply(&subject),
            Some((stage.as_str(), revision, pool.as_str(), instance.as_str()))
        );
    }

    /// Whatever parses took its parts from whole tokens: none holds a `.`, none is empty.
    #[test]
    fn any_subject_parses_to_nothing_or_to_whole_tokens(
        subject in prop_oneof![any::<String>(), near_subject()]
    ) {
        let token = |t: &str| !t.is_empty() && !t.contains('.');
        if let Some((pool, call_id)) = parse_reply(&subject) {
            prop_assert!(token(pool) && token(call_id));
        }
        if let Some((_, _, pool, instance)) = parse_alive_probe_reply(&subject) {
            prop_assert!(token(pool) && token(instance));
        }
    }
}
