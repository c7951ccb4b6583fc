//! A buggy or hostile worker must not crash a gateway nor break what the client is
//! promised: whatever replies arrive, in whatever order, the tracker never panics, ends a
//! call once and then stays silent, forwards only finite progress that rises, and speaks
//! only for its own call.

use bus_schema::client_request_id;
use bus_schema::messages::decode;
use bus_schema::strategies::reply_bytes;
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn any_replies_end_a_call_once_with_rising_progress(
        bodies in prop::collection::vec((reply_bytes(), any::<bool>()), 0..16),
        floor in prop::option::of(-1e3f64..1e3),
    ) {
        let pool = PoolName::new("props-tracker").unwrap();
        let call_id = "c0ffee";
        let mut t = CallTracker::new(
            call_id.into(),
            "t".into(),
            pool.clone(),
            Duration::from_secs(1),
            Instant::now(),
        )
        .metered();
        if let Some(floor) = floor {
            t.raise_progress(floor);
        }
        let mut last_progress = floor;
        let mut done = false;
        for (body, ours) in bodies {
            let Ok(mut reply) = decode::<CallReply>(&body) else { continue };
            // Half the replies are made this call's; the rest name whatever they name.
            if ours {
                reply.call_id = call_id.into();
            }
            let (named, event) = (reply.call_id.clone(), reply.event.clone());
            let update = t.observe(reply);
            if done || named != call_id {
                prop_assert!(update.is_none(), "an update after the final one, or for another call: {update:?}");
                continue;
            }
            match update {
                Some(CallUpdate::Progress { progress, .. }) => {
                    prop_assert!(progress.is_finite());
                    prop_assert!(last_progress.is_none_or(|p| progress > p), "{progress} after {last_progress:?}");
                    last_progress = Some(progress);
                }
                Some(CallUpdate::ClientRequest { id, .. }) => {
                    let CallEvent::Request { seq, .. } = event else { unreachable!() };
                    // The id names this call, whatever else the reply said.
                    prop_assert_eq!(client_request_id::parse(&id), Some((pool.clone(), call_id, seq)));
                }
                Some(CallUpdate::Done(_)) => done = true,
                _ => {}
            }
            prop_assert_eq!(t.is_done(), done);
            prop_assert_eq!(t.progress(), last_progress);
        }
    }
}
