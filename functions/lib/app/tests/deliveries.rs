//! Webhook deliveries on the in-memory ports: an event is POSTed signed and
//! delivered once; failures are retried with the reason kept; 410 disables
//! the endpoint; a disabled, missing or private endpoint parks the event
//! without sending; a parked event is delivered by a replay once fixed.

use meterai_app::events::{deliver, new_event, DeliveryPorts};
use meterai_app::ports::Endpoint;
use meterai_app::Outcome;
use meterai_core::events::{EventStatus, EventType};
use meterai_core::webhooks::{self, Headers, Secret};
use meterai_memory::{ManualClock, MemoryEvents, MemoryWebhookClient};

const NOW: i64 = 1_795_400_000_000;
/// A reseller id of the real shape (`rsl_` and a ULID): the adapters know no other.
const RESELLER: &str = "rsl_01JAQ3ZK8W6V1N2B5C7D9E4F0G";

struct World {
    events: MemoryEvents,
    client: MemoryWebhookClient,
    clock: ManualClock,
    secret: Secret,
}

impl World {
    fn new() -> Self {
        let world = Self {
            events: MemoryEvents::default(),
            client: MemoryWebhookClient::default(),
            clock: ManualClock::at(NOW),
            secret: Secret::generate(),
        };
        world.endpoint("https://shop.example/hooks/meterai", true);
        world
    }

    fn endpoint(&self, url: &str, enabled: bool) {
        self.events.set_endpoint(
            RESELLER,
            Endpoint {
                url: Some(url.into()),
                enabled,
                secret: self.secret.clone(),
            },
        );
    }

    /// Emits an event for the reseller and returns its id.
    fn emit(&self, reference: &str) -> String {
        let event = new_event(
            RESELLER,
            EventType::StampCompleted,
            reference,
            serde_json::json!({ "job_id": reference }),
            NOW,
        );
        let id = event.event_id.clone();
        self.events.insert(event);
        id
    }

    async fn deliver(&self, event_id: &str) -> Outcome {
        self.deliver_with(event_id, false).await
    }

    async fn deliver_with(&self, event_id: &str, allow_loopback: bool) -> Outcome {
        let ports = DeliveryPorts {
            events: &self.events,
            client: &self.client,
            clock: &self.clock,
            allow_loopback,
        };
        deliver(&ports, event_id).await
    }
}

#[tokio::test]
async fn an_event_is_posted_signed_and_delivered_once() {
    let w = World::new();
    let id = w.emit("job_1");
    assert_eq!(w.emit("job_1"), id, "emitting twice is one event");
    assert_eq!(w.deliver(&id).await, Outcome::Done);
    assert_eq!(w.deliver(&id).await, Outcome::Duplicate);

    let received = w.client.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.url, "https://shop.example/hooks/meterai");
    assert_eq!(got.webhook_id, id);
    let timestamp = got.timestamp.to_string();
    let verified = webhooks::verify(
        &w.secret,
        &Headers {
            id: Some(&got.webhook_id),
            timestamp: Some(&timestamp),
            signature: Some(&got.signature),
        },
        got.body.as_bytes(),
        NOW / 1000,
    )
    .expect("the reseller can check the signature with its secret");
    assert_eq!(verified.id, id);
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["type"], "stamp.completed");
    assert_eq!(body["data"]["job_id"], "job_1");
    let event = w.events.event(&id).unwrap();
    assert_eq!((event.status, event.attempts), (EventStatus::Delivered, 1));
}

#[tokio::test]
async fn failures_are_retried_with_their_reason_and_the_same_body() {
    let w = World::new();
    let id = w.emit("job_1");
    w.client
        .answer([Ok(500), Err("connection reset".into()), Ok(204)]);
    assert!(matches!(w.deliver(&id).await, Outcome::Retry(ref r) if r.contains("500")));
    assert_eq!(
        w.events.last_error(&id).as_deref(),
        Some("the endpoint answered 500")
    );
    w.clock.advance(60_000);
    assert!(
        matches!(w.deliver(&id).await, Outcome::Retry(ref r) if r.contains("connection reset"))
    );
    w.clock.advance(60_000);
    assert_eq!(w.deliver(&id).await, Outcome::Done);
    let received = w.client.received();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.body == received[0].body && r.webhook_id == id),
        "every attempt carries the same id and body"
    );
    assert!(
        received[2].timestamp > received[0].timestamp,
        "each attempt is signed when it is sent"
    );
    let event = w.events.event(&id).unwrap();
    assert_eq!((event.status, event.attempts), (EventStatus::Delivered, 3));
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_parks_what_follows_until_a_replay() {
    let w = World::new();
    let first = w.emit("job_1");
    let second = w.emit("job_2");
    w.client.answer([Ok(410)]);
    assert_eq!(w.deliver(&first).await, Outcome::Done);
    assert!(!w.events.endpoint_of(RESELLER).unwrap().enabled);
    // The next event is parked without a request.
    assert_eq!(w.deliver(&second).await, Outcome::Done);
    assert_eq!(w.client.received().len(), 1);
    let parked = w.events.take_parked();
    assert_eq!(parked, [first.clone(), second.clone()]);
    for id in [&first, &second] {
        assert_eq!(w.events.event(id).unwrap().status, EventStatus::Pending);
    }

    // The reseller fixes its endpoint; the operator replays.
    w.endpoint("https://shop.example/hooks/v2", true);
    for id in &parked {
        assert_eq!(w.deliver(id).await, Outcome::Done);
    }
    let received = w.client.received();
    assert_eq!(received.len(), 3);
    assert!(received[1..]
        .iter()
        .all(|r| r.url == "https://shop.example/hooks/v2"));
    for id in [&first, &second] {
        assert_eq!(w.events.event(id).unwrap().status, EventStatus::Delivered);
    }
}

#[tokio::test]
async fn a_private_or_malformed_endpoint_is_never_sent_to() {
    for url in [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "http://shop.example/hook",
        "https://user:pw@shop.example/hook",
        "http://127.0.0.1:9/hook",
    ] {
        let w = World::new();
        w.endpoint(url, true);
        let id = w.emit("job_1");
        assert_eq!(w.deliver(&id).await, Outcome::Done, "{url}");
        assert!(w.client.received().is_empty(), "{url} was sent to");
        assert_eq!(w.events.take_parked(), std::slice::from_ref(&id), "{url}");
        assert!(w.events.last_error(&id).is_some());
    }
    // Loopback is for the local stage only.
    let w = World::new();
    w.endpoint("http://127.0.0.1:9/hook", true);
    let id = w.emit("job_1");
    assert_eq!(w.deliver_with(&id, true).await, Outcome::Done);
    assert_eq!(w.client.received().len(), 1);
}

#[tokio::test]
async fn what_cannot_be_delivered_or_parked_is_poison() {
    let w = World::new();
    assert!(matches!(w.deliver("msg_nope").await, Outcome::Poison(_)));
    let orphan = new_event(
        "rsl_01JAQ3ZK8W6V1N2B5C7D9E4F0X",
        EventType::OrderPaid,
        "ord_1",
        serde_json::json!({}),
        NOW,
    );
    let orphan_id = orphan.event_id.clone();
    w.events.insert(orphan);
    assert!(matches!(w.deliver(&orphan_id).await, Outcome::Poison(_)));
    // An id that is not a reseller's shape names no reseller either.
    let malformed = new_event(
        "rsl_a",
        EventType::OrderPaid,
        "ord_2",
        serde_json::json!({}),
        NOW,
    );
    let malformed_id = malformed.event_id.clone();
    w.events.insert(malformed);
    assert!(matches!(w.deliver(&malformed_id).await, Outcome::Poison(_)));
    assert!(w.client.received().is_empty());

    // Without a dead-letter queue a disabled endpoint's event dead-letters itself.
    let w = World {
        events: MemoryEvents::default().without_dead_letter_queue(),
        ..World::new()
    };
    w.endpoint("https://shop.example/hook", false);
    let id = w.emit("job_1");
    assert!(matches!(w.deliver(&id).await, Outcome::Poison(_)));
    assert!(w.client.received().is_empty());
}
