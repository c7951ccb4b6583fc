//! The JSON-RPC ids of requests a worker sends a session's client (sampling, elicitation,
//! roots), bound to the session and principal that may answer them.
//!
//! The client's answer may reach any gateway, which must publish it to the waiting worker
//! without a lookup, so the id names the call (`bus_schema::client_request_id`). Alone, that
//! id would let anyone who learns it answer in the client's place: another session could
//! post `mcpbus:<call>:<n>` and the worker would take its text. So the id also carries a tag,
//! an HMAC with the cluster key over the id and its owner (session and principal). Whichever
//! gateway receives the answer recomputes the tag for the caller it sees; an answer from
//! anyone else does not verify and is dropped. No state is stored for it.

use std::sync::Arc;

use super::caller::Caller;
use crate::request_state::StateSealer;

/// Mints and checks client-request ids for one owner.
#[derive(Clone)]
pub struct AnswerIds {
    sealer: Arc<StateSealer>,
    owner: String,
}

impl AnswerIds {
    /// The ids `caller` may answer: its session's, under its principal.
    pub fn for_caller(sealer: &Arc<StateSealer>, caller: &Caller) -> Self {
        let session = caller.session_id().map(|s| s.as_str()).unwrap_or_default();
        let principal = caller
            .principal
            .as_ref()
            .map(|p| p.key())
            .unwrap_or_default();
        Self {
            sealer: sealer.clone(),
            // Length-prefixed, so no two owners write the same string.
            owner: format!("{}:{session}{principal}", session.len()),
        }
    }

    /// The id the client sees for `base` (a `client_request_id`): `<base>:<tag>`.
    pub fn mint(&self, base: &str) -> String {
        format!("{base}:{}", self.sealer.tag(&self.signed(base)))
    }

    /// The `client_request_id` inside `id`, if its tag proves it was minted for this owner.
    pub fn open<'a>(&self, id: &'a str) -> Option<&'a str> {
        let (base, tag) = id.rsplit_once(':')?;
        self.sealer
            .verify_tag(&self.signed(base), tag)
            .then_some(base)
    }

    fn signed(&self, base: &str) -> String {
        format!("answer {} {base}", self.owner)
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Origin;
    use crate::session::{SessionId, SessionRecord};
    use bus_schema::principal::Principal;
    use serde_json::json;
    use std::time::Duration;

    fn sealer() -> Arc<StateSealer> {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        Arc::new(StateSealer::new(&[key], Duration::from_secs(60)).unwrap())
    }

    fn caller(session: &str, subject: Option<&str>) -> Caller {
        let record = SessionRecord {
            protocol_version: "2025-11-25".into(),
            client_info: json!({}),
            client_capabilities: json!({}),
            created_ms: 0,
            log_level: None,
            resource_subscriptions: vec![],
            principal: None,
        };
        let principal = subject.map(|s| Principal {
            issuer: "https://as".into(),
            subject: s.into(),
            scopes: vec![],
            claims: Default::default(),
        });
        Caller::session(SessionId::parse(session).unwrap(), record).with_origin(Origin {
            principal,
            client: crate::quota::ClientKey::unknown(),
        })
    }

    #[test]
    fn only_the_owner_can_answer() {
        let s = sealer();
        let a = caller("a0000000000000000000000000000000", Some("alice"));
        let id = AnswerIds::for_caller(&s, &a).mint("mcpbus:abc:1");
        assert_eq!(
            AnswerIds::for_caller(&s, &a).open(&id),
            Some("mcpbus:abc:1")
        );
        for other in [
            caller("b0000000000000000000000000000000", Some("alice")),
            caller("a0000000000000000000000000000000", Some("bob")),
            caller("a0000000000000000000000000000000", None),
        ] {
            assert_eq!(AnswerIds::for_caller(&s, &other).open(&id), None);
        }
        let ids = AnswerIds::for_caller(&s, &a);
        for forged in ["mcpbus:abc:1", "mcpbus:abc:2:x", &id.replace(":1:", ":2:")] {
            assert_eq!(ids.open(forged), None, "{forged}");
        }
    }
}
