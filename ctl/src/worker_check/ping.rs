//! The NATS service API (optional, PROTOCOL.md §4.4): the worker answers a ping on
//! `$SRV.PING.mcpbus-<pool>`, asked with an inbox under `_INBOX.srv` (the only inbox a
//! worker may answer on besides its pool's), naming its pool and instance.

use std::time::{Duration, Instant};

use bus_schema::subjects;
use futures::StreamExt;
use serde_json::Value;

use super::bus::random_hex;
use super::kit::Kit;
use super::report::Outcome;

/// How long the kit asks and collects ping answers.
const LISTEN: Duration = Duration::from_secs(2);

/// How long each ping is listened to before the next.
const ROUND: Duration = Duration::from_millis(250);

pub async fn service_ping(kit: &Kit) -> Outcome {
    match ping(kit).await {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Fail(format!("the kit could not ping: {e}")),
    }
}

async fn ping(kit: &Kit) -> Result<Outcome, async_nats::Error> {
    let client = &kit.bus.client;
    let inbox = format!("{}.{}", subjects::SERVICE_REPLY_PREFIX, random_hex());
    let mut answers = client.subscribe(inbox.clone()).await?;
    let until = Instant::now() + LISTEN;
    let mut others = Vec::new();
    // A worker may announce itself to the service API just after its first record: ask
    // again until it answers or the time is up.
    while Instant::now() < until {
        client
            .publish_with_reply(
                subjects::service_ping(&kit.bus.pool),
                inbox.clone(),
                Vec::new().into(),
            )
            .await?;
        client.flush().await?;
        let round = (Instant::now() + ROUND).min(until);
        while let Ok(Some(msg)) = tokio::time::timeout(
            round.saturating_duration_since(Instant::now()),
            answers.next(),
        )
        .await
        {
            // A status message (503: nobody listens) is NATS saying no worker answered.
            if msg.status.is_some() || msg.payload.is_empty() {
                continue;
            }
            let Ok(answer) = serde_json::from_slice::<Value>(&msg.payload) else {
                return Ok(Outcome::Fail("a ping answer is not JSON".to_owned()));
            };
            let metadata = &answer["metadata"];
            if metadata["instance"] != kit.instance.as_str() {
                others.push(metadata["instance"].to_string());
                continue;
            }
            let name = subjects::service_name(&kit.bus.pool);
            if answer["name"] != name.as_str() || metadata["pool"] != kit.bus.pool.as_str() {
                return Ok(Outcome::Fail(format!(
                    "want service {name} with metadata pool {}, got {answer}",
                    kit.bus.pool
                )));
            }
            return Ok(Outcome::Pass);
        }
    }
    Ok(match others.is_empty() {
        true => Outcome::Skip("no answer to a $SRV ping (optional)".to_owned()),
        false => Outcome::Fail(format!(
            "answers came from instances {}, none from {}",
            others.join(", "),
            kit.instance
        )),
    })
}
