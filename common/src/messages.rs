//! Every message that travels on the bus, as a type: its payload, its routing key and its
//! schema version. Publishers build these and consumers decode them, so a renamed or retyped
//! field fails the build (or, for a message stored before the change, the decoding test) instead
//! of silently stopping a mail or a recommendation.
//!
//! On the bus a message is the envelope [`BusMessage`]: `messageId` (consumers de-duplicate by
//! it), `occurredAt` (RFC 3339, UTC), `type` (the routing key), `version` and `payload`. A
//! consumer decodes the payload with [`BusMessage::decode`]; a version newer than its own is
//! refused rather than misread. Adding an optional field keeps the version; removing,
//! renaming or retyping one bumps it.
//!
//! The table of messages in the README is generated from [`CATALOGUE`] and checked by a test.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Number;

use crate::auth::Role;
use crate::bus::{BusError, BusMessage, MessageBus};

/// A message type: its payload, its routing key and the version of its schema.
pub trait Message: Serialize + DeserializeOwned {
    /// The routing key, also the envelope's `type`.
    const TYPE: &'static str;
    /// The payload's schema version.
    const VERSION: u32;
}

/// What a consumer cannot make of a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("a {found} message is not a {expected}")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("{kind} version {found} is newer than the version {known} this service reads")]
    TooNew {
        kind: &'static str,
        found: u32,
        known: u32,
    },
    #[error("{kind} payload does not decode: {error}")]
    Payload {
        kind: &'static str,
        error: serde_json::Error,
    },
}

impl BusMessage {
    /// A new envelope of `message`, with a fresh id, stamped now.
    pub fn of<M: Message>(message: &M) -> Result<Self, BusError> {
        BusMessage::with_version(M::TYPE, M::VERSION, message)
    }

    /// The payload as `M`, if this is an `M` of a version this service reads.
    pub fn decode<M: Message>(&self) -> Result<M, DecodeError> {
        if self.routing_key != M::TYPE {
            return Err(DecodeError::WrongType {
                expected: M::TYPE,
                found: self.routing_key.clone(),
            });
        }
        if self.version > M::VERSION {
            return Err(DecodeError::TooNew {
                kind: M::TYPE,
                found: self.version,
                known: M::VERSION,
            });
        }
        M::deserialize(&self.payload).map_err(|error| DecodeError::Payload {
            kind: M::TYPE,
            error,
        })
    }
}

/// Publishes a new envelope of `message` on `bus`.
pub async fn publish<M: Message>(bus: &dyn MessageBus, message: &M) -> Result<(), BusError> {
    bus.publish(&BusMessage::of(message)?).await
}

macro_rules! message {
    ($type:ty, $key:literal, $version:literal) => {
        impl Message for $type {
            const TYPE: &'static str = $key;
            const VERSION: u32 = $version;
        }
    };
}

/// A new account (auth). Optional to deliver: recommendations warm up on the first order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSignedUp {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}
message!(UserSignedUp, "user.signed_up", 1);

/// An event as the catalogue holds it (events), the payload of `event.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetails {
    #[serde(rename = "_id")]
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// RFC 3339, UTC.
    pub date: String,
    /// IANA time zone name.
    pub timezone: String,
    pub location: Option<String>,
    pub tags: Vec<String>,
    pub image_url: Option<String>,
    pub organizer_id: String,
    pub rows: u32,
    pub seats_per_row: u32,
    /// Per seat, in major units.
    pub price: Number,
    pub currency: String,
}

/// An event was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventCreated(pub EventDetails);
message!(EventCreated, "event.created", 1);

/// An event changed (its layout, price or anything else); every orders replica drops its
/// cached layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventUpdated(pub EventDetails);
message!(EventUpdated, "event.updated", 1);

/// An event was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventDeleted(pub EventDetails);
message!(EventDeleted, "event.deleted", 1);

/// A hold's seats, the payload of `hold.*` (orders, published after the answer, not retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldSeats {
    pub hold_id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
}

/// Seats were held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldCreated(pub HoldSeats);
message!(HoldCreated, "hold.created", 1);

/// A hold was released by its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldReleased(pub HoldSeats);
message!(HoldReleased, "hold.released", 1);

/// A hold ran out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HoldExpired(pub HoldSeats);
message!(HoldExpired, "hold.expired", 1);

/// The event a message concerns, as its ticket holders read about it (optional in every
/// message: messages stored before it was carried have none, and mails then name the id).
/// Answers that show an event to its ticket holders ("My orders") use it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub title: String,
    /// RFC 3339, UTC; `None` when unknown.
    #[schema(format = DateTime)]
    pub date: Option<String>,
    /// IANA time zone name the event takes place in.
    pub timezone: Option<String>,
    pub location: Option<String>,
}

/// A seat as people read it: `Stalls, row A, seat 12`, or `Row 1, seat 3` on a grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatLabel {
    pub seat_id: String,
    pub label: String,
}

/// A ticket of a purchase, with the pass its QR code shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketPass {
    pub ticket_id: String,
    pub seat_id: String,
    pub pass: String,
}

/// An order was bought (orders, through the outbox: at least once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPurchased {
    pub order_id: String,
    pub user_id: String,
    pub event_id: String,
    pub seat_ids: Vec<String>,
    /// Major units.
    pub amount: Number,
    pub currency: String,
    /// `None` for free seats.
    pub payment_intent_id: Option<String>,
    /// The buyer's address; `None` for orders stored before it was kept (no mail then).
    pub email: Option<String>,
    #[serde(default)]
    pub event: Option<EventSummary>,
    /// The seats' labels, in `seatIds` order.
    #[serde(default)]
    pub seats: Vec<SeatLabel>,
    /// One per seat.
    #[serde(default)]
    pub tickets: Vec<TicketPass>,
}
message!(OrderPurchased, "order.purchased", 1);

/// What a cancellation refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundDetails {
    pub refund_id: String,
    /// Major units.
    pub amount: Number,
    pub currency: String,
    pub payment_intent_id: Option<String>,
}

/// Seats of an order were cancelled and refunded (orders, through the outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: String,
    pub user_id: String,
    pub event_id: String,
    /// The seats this cancellation gave back.
    pub seat_ids: Vec<String>,
    /// The order's status after it: `partially_cancelled` or `cancelled`.
    pub status: String,
    pub refund: RefundDetails,
    /// The buyer, the organizer or an admin.
    pub cancelled_by: String,
    pub email: Option<String>,
    #[serde(default)]
    pub event: Option<EventSummary>,
    /// The cancelled seats' labels.
    #[serde(default)]
    pub seats: Vec<SeatLabel>,
}
message!(OrderCancelled, "order.cancelled", 1);

/// Seats were held for the next person on the waitlist (orders, through the outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistOffered {
    pub event_id: String,
    pub user_id: String,
    pub hold_id: String,
    pub seat_ids: Vec<String>,
    /// RFC 3339, UTC: when the offer ends.
    pub expires_at: String,
    pub email: Option<String>,
    #[serde(default)]
    pub event: Option<EventSummary>,
    #[serde(default)]
    pub seats: Vec<SeatLabel>,
}
message!(WaitlistOffered, "waitlist.offered", 1);

/// A waitlist offer ran out unbought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistExpired {
    pub event_id: String,
    pub user_id: String,
    pub hold_id: String,
    pub email: Option<String>,
}
message!(WaitlistExpired, "waitlist.expired", 1);

/// Someone was taken off a waitlist because no offer could ever be made to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistRemoved {
    pub event_id: String,
    pub user_id: String,
    /// Seats they asked for.
    pub seats: usize,
    /// The most seats anyone may now hold.
    pub max_seats: usize,
    pub reason: String,
    pub email: Option<String>,
}
message!(WaitlistRemoved, "waitlist.removed", 1);

/// A ticket was given to someone else (orders, through the outbox): its old pass no longer
/// enters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketTransferred {
    pub transfer_id: String,
    pub ticket_id: String,
    pub event_id: String,
    pub seat_id: String,
    pub order_id: String,
    pub from_user_id: String,
    /// The giver's address, if known (they are told the ticket is gone).
    pub from_email: Option<String>,
    /// The receiver's address (they are told how to get it).
    pub to_email: String,
    /// RFC 3339, UTC.
    pub transferred_at: String,
    #[serde(default)]
    pub event: Option<EventSummary>,
    /// The seat's label.
    #[serde(default)]
    pub seat: Option<SeatLabel>,
    /// The code the receiver claims the ticket with (mailed to them only).
    #[serde(default)]
    pub claim_code: Option<String>,
}
message!(TicketTransferred, "ticket.transferred", 1);

/// One row of the catalogue of messages.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub routing_key: &'static str,
    pub version: u32,
    pub publisher: &'static str,
    pub consumers: &'static str,
    /// The payload's fields, in order.
    pub fields: &'static str,
}

const EVENT_FIELDS: &str = "`_id`, `title`, `description`, `date`, `timezone`, `location`, \
    `tags`, `imageUrl`, `organizerId`, `rows`, `seatsPerRow`, `price`, `currency`";
const HOLD_FIELDS: &str = "`holdId`, `userId`, `eventId`, `seatIds`";

/// Every message, who publishes it and who consumes it; the README's table is made from this.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        routing_key: UserSignedUp::TYPE,
        version: UserSignedUp::VERSION,
        publisher: "auth",
        consumers: "-",
        fields: "`userId`, `email`, `name`, `role`",
    },
    Entry {
        routing_key: EventCreated::TYPE,
        version: EventCreated::VERSION,
        publisher: "events",
        consumers: "ml",
        fields: EVENT_FIELDS,
    },
    Entry {
        routing_key: EventUpdated::TYPE,
        version: EventUpdated::VERSION,
        publisher: "events",
        consumers: "ml, orders (every replica: layout cache)",
        fields: EVENT_FIELDS,
    },
    Entry {
        routing_key: EventDeleted::TYPE,
        version: EventDeleted::VERSION,
        publisher: "events",
        consumers: "ml, orders (every replica: layout cache)",
        fields: EVENT_FIELDS,
    },
    Entry {
        routing_key: HoldCreated::TYPE,
        version: HoldCreated::VERSION,
        publisher: "orders",
        consumers: "-",
        fields: HOLD_FIELDS,
    },
    Entry {
        routing_key: HoldReleased::TYPE,
        version: HoldReleased::VERSION,
        publisher: "orders",
        consumers: "-",
        fields: HOLD_FIELDS,
    },
    Entry {
        routing_key: HoldExpired::TYPE,
        version: HoldExpired::VERSION,
        publisher: "orders",
        consumers: "-",
        fields: HOLD_FIELDS,
    },
    Entry {
        routing_key: OrderPurchased::TYPE,
        version: OrderPurchased::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications, ml, orders (the seat board)",
        fields: "`orderId`, `userId`, `eventId`, `seatIds`, `amount`, `currency`, \
            `paymentIntentId`, `email`, `event{title, date, timezone, location}`, `seats`, `tickets`",
    },
    Entry {
        routing_key: OrderCancelled::TYPE,
        version: OrderCancelled::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications, orders (waitlist)",
        fields: "`orderId`, `userId`, `eventId`, `seatIds`, `status`, \
            `refund{refundId, amount, currency, paymentIntentId}`, `cancelledBy`, `email`, \
            `event{title, date, timezone, location}`, `seats`",
    },
    Entry {
        routing_key: WaitlistOffered::TYPE,
        version: WaitlistOffered::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications",
        fields: "`eventId`, `userId`, `holdId`, `seatIds`, `expiresAt`, `email`, \
            `event{title, date, timezone, location}`, `seats`",
    },
    Entry {
        routing_key: WaitlistExpired::TYPE,
        version: WaitlistExpired::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications",
        fields: "`eventId`, `userId`, `holdId`, `email`",
    },
    Entry {
        routing_key: WaitlistRemoved::TYPE,
        version: WaitlistRemoved::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications",
        fields: "`eventId`, `userId`, `seats`, `maxSeats`, `reason`, `email`",
    },
    Entry {
        routing_key: TicketTransferred::TYPE,
        version: TicketTransferred::VERSION,
        publisher: "orders (outbox)",
        consumers: "notifications",
        fields: "`transferId`, `ticketId`, `eventId`, `seatId`, `orderId`, `fromUserId`, \
            `fromEmail`, `toEmail`, `transferredAt`, `event{title, date, timezone, location}`, \
            `seat{seatId, label}`, `claimCode`",
    },
];

/// The README's table of messages, made from [`CATALOGUE`].
pub fn catalogue_table() -> String {
    let mut table = String::from(
        "| type (routing key) | version | published by | consumed by | payload fields |\n\
         |---|---|---|---|---|\n",
    );
    for entry in CATALOGUE {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            entry.routing_key, entry.version, entry.publisher, entry.consumers, entry.fields
        ));
    }
    table
}

/// Decodes `message` as whichever type its routing key names, for checks that every message
/// a publisher emits is one a consumer can read; the error names what failed.
pub fn decode_any(message: &BusMessage) -> Result<(), String> {
    fn check<M: Message>(message: &BusMessage) -> Result<(), String> {
        message.decode::<M>().map(drop).map_err(|e| e.to_string())
    }
    match message.routing_key.as_str() {
        UserSignedUp::TYPE => check::<UserSignedUp>(message),
        EventCreated::TYPE => check::<EventCreated>(message),
        EventUpdated::TYPE => check::<EventUpdated>(message),
        EventDeleted::TYPE => check::<EventDeleted>(message),
        HoldCreated::TYPE => check::<HoldCreated>(message),
        HoldReleased::TYPE => check::<HoldReleased>(message),
        HoldExpired::TYPE => check::<HoldExpired>(message),
        OrderPurchased::TYPE => check::<OrderPurchased>(message),
        OrderCancelled::TYPE => check::<OrderCancelled>(message),
        WaitlistOffered::TYPE => check::<WaitlistOffered>(message),
        WaitlistExpired::TYPE => check::<WaitlistExpired>(message),
        WaitlistRemoved::TYPE => check::<WaitlistRemoved>(message),
        TicketTransferred::TYPE => check::<TicketTransferred>(message),
        other => Err(format!("no message type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn purchased() -> OrderPurchased {
        OrderPurchased {
            order_id: "o1".into(),
            user_id: "u1".into(),
            event_id: "e1".into(),
            seat_ids: vec!["R1-S1".into()],
            amount: crate::money::to_json(49_999),
            currency: "INR".into(),
            payment_intent_id: None,
            email: Some("a@holdfast.test".into()),
            event: Some(summary()),
            seats: vec![SeatLabel {
                seat_id: "R1-S1".into(),
                label: "Row 1, seat 1".into(),
            }],
            tickets: vec![],
        }
    }

    fn summary() -> EventSummary {
        EventSummary {
            title: "A night".into(),
            date: Some("2030-01-01T20:00:00Z".into()),
            timezone: Some("Europe/Paris".into()),
            location: Some("Hall".into()),
        }
    }

    #[test]
    fn a_message_travels_in_its_envelope_and_decodes_back() {
        let message = BusMessage::of(&purchased()).unwrap();
        let wire = serde_json::to_value(&message).unwrap();
        assert_eq!(wire["type"], "order.purchased");
        assert_eq!(wire["version"], 1);
        assert!(wire["occurredAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(wire["payload"]["amount"], json!(499.99));
        let back: BusMessage = serde_json::from_value(wire).unwrap();
        assert_eq!(back.decode::<OrderPurchased>().unwrap(), purchased());
    }

    #[test]
    fn a_message_of_another_type_or_a_newer_version_is_refused() {
        let message = BusMessage::of(&purchased()).unwrap();
        assert!(matches!(
            message.decode::<OrderCancelled>(),
            Err(DecodeError::WrongType { .. })
        ));
        let mut newer = message.clone();
        newer.version = OrderPurchased::VERSION + 1;
        assert!(matches!(
            newer.decode::<OrderPurchased>(),
            Err(DecodeError::TooNew { .. })
        ));
    }

    #[test]
    fn a_payload_missing_a_field_names_it() {
        let mut message = BusMessage::of(&purchased()).unwrap();
        message.payload.as_object_mut().unwrap().remove("seatIds");
        let error = message.decode::<OrderPurchased>().unwrap_err().to_string();
        assert!(error.contains("seatIds"), "{error}");
    }

    /// Messages stored in an outbox before the envelope had `type`, `occurredAt` and
    /// `version` still decode: as version 1, with their routing key.
    #[test]
    fn an_envelope_stored_before_the_version_decodes_as_version_1() {
        let stored = json!({
            "messageId": "7d5a1a3e-3c6e-4a53-9d8e-6c1a0f0f4b11",
            "routingKey": "order.purchased",
            "payload": serde_json::to_value(purchased()).unwrap(),
        });
        let message: BusMessage = serde_json::from_value(stored).unwrap();
        assert_eq!(message.version, 1);
        assert_eq!(message.decode::<OrderPurchased>().unwrap(), purchased());
    }

    #[test]
    fn the_catalogue_names_every_type_once_and_each_decodes() {
        let mut keys: Vec<&str> = CATALOGUE.iter().map(|e| e.routing_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CATALOGUE.len());
        for entry in CATALOGUE {
            // Every catalogued type is one `decode_any` knows (an unknown type says so).
            let probe = BusMessage {
                routing_key: entry.routing_key.into(),
                ..BusMessage::of(&purchased()).unwrap()
            };
            let outcome = decode_any(&probe);
            if entry.routing_key == OrderPurchased::TYPE {
                assert!(outcome.is_ok());
            } else {
                assert!(!outcome.unwrap_err().starts_with("no message type"));
            }
        }
    }

    /// One message of every type, with every optional field set.
    fn one_of_each() -> Vec<BusMessage> {
        let event = EventDetails {
            id: "e1".into(),
            title: "t".into(),
            description: Some("d".into()),
            date: "2030-01-01T00:00:00Z".into(),
            timezone: "UTC".into(),
            location: Some("l".into()),
            tags: vec!["jazz".into()],
            image_url: Some("https://holdfast.test/i.png".into()),
            organizer_id: "o1".into(),
            rows: 1,
            seats_per_row: 1,
            price: 1.into(),
            currency: "INR".into(),
        };
        let hold = HoldSeats {
            hold_id: "h1".into(),
            user_id: "u1".into(),
            event_id: "e1".into(),
            seat_ids: vec!["R1-S1".into()],
        };
        let email = Some("a@holdfast.test".to_string());
        vec![
            BusMessage::of(&UserSignedUp {
                user_id: "u1".into(),
                email: "a@holdfast.test".into(),
                name: Some("A".into()),
                role: Role::User,
            }),
            BusMessage::of(&EventCreated(event.clone())),
            BusMessage::of(&EventUpdated(event.clone())),
            BusMessage::of(&EventDeleted(event)),
            BusMessage::of(&HoldCreated(hold.clone())),
            BusMessage::of(&HoldReleased(hold.clone())),
            BusMessage::of(&HoldExpired(hold)),
            BusMessage::of(&purchased()),
            BusMessage::of(&OrderCancelled {
                order_id: "o1".into(),
                user_id: "u1".into(),
                event_id: "e1".into(),
                seat_ids: vec!["R1-S1".into()],
                status: "cancelled".into(),
                refund: RefundDetails {
                    refund_id: "r1".into(),
                    amount: 1.into(),
                    currency: "INR".into(),
                    payment_intent_id: Some("pi1".into()),
                },
                cancelled_by: "u1".into(),
                email: email.clone(),
                event: Some(summary()),
                seats: vec![],
            }),
            BusMessage::of(&WaitlistOffered {
                event_id: "e1".into(),
                user_id: "u1".into(),
                hold_id: "h1".into(),
                seat_ids: vec!["R1-S1".into()],
                expires_at: "2030-01-01T00:00:00Z".into(),
                email: email.clone(),
                event: Some(summary()),
                seats: vec![],
            }),
            BusMessage::of(&WaitlistExpired {
                event_id: "e1".into(),
                user_id: "u1".into(),
                hold_id: "h1".into(),
                email: email.clone(),
            }),
            BusMessage::of(&WaitlistRemoved {
                event_id: "e1".into(),
                user_id: "u1".into(),
                seats: 3,
                max_seats: 2,
                reason: "r".into(),
                email: email.clone(),
            }),
            BusMessage::of(&TicketTransferred {
                transfer_id: "t1".into(),
                ticket_id: "k1".into(),
                event_id: "e1".into(),
                seat_id: "R1-S1".into(),
                order_id: "o1".into(),
                from_user_id: "u1".into(),
                from_email: email,
                to_email: "b@holdfast.test".into(),
                transferred_at: "2030-01-01T00:00:00Z".into(),
                event: Some(summary()),
                seat: Some(SeatLabel {
                    seat_id: "R1-S1".into(),
                    label: "Row 1, seat 1".into(),
                }),
                claim_code: Some("c0de".into()),
            }),
        ]
        .into_iter()
        .map(Result::unwrap)
        .collect()
    }

    /// The catalogue lists each type's fields as its payload has them, nested ones as
    /// `name{a, b}`.
    #[test]
    fn the_catalogue_lists_the_fields_each_type_has() {
        fn fields(object: &serde_json::Map<String, serde_json::Value>) -> String {
            let names: Vec<String> = object
                .iter()
                .map(|(name, value)| match value.as_object() {
                    Some(inner) => format!("`{name}{{{}}}`", fields(inner).replace('`', "")),
                    None => format!("`{name}`"),
                })
                .collect();
            names.join(", ")
        }
        let samples = one_of_each();
        assert_eq!(samples.len(), CATALOGUE.len());
        for (sample, entry) in samples.iter().zip(CATALOGUE) {
            assert_eq!(sample.routing_key, entry.routing_key);
            assert_eq!(sample.version, entry.version);
            let payload = sample.payload.as_object().unwrap();
            assert_eq!(fields(payload), entry.fields, "{}", entry.routing_key);
            decode_any(sample).unwrap();
        }
    }

    /// The README's table of messages is the one [`catalogue_table`] makes; run with
    /// `UPDATE_README=1` to rewrite it.
    #[test]
    fn the_readme_lists_every_message_as_the_catalogue_says() {
        const BEGIN: &str = "<!-- messages:begin -->\n";
        const END: &str = "<!-- messages:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme.find(BEGIN).expect("the README marks its table") + BEGIN.len();
        let end = readme.find(END).expect("the README marks its table's end");
        let table = catalogue_table();
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert_eq!(
            &readme[start..end],
            table,
            "README.md's table of messages is stale: run UPDATE_README=1 cargo test -p holdfast-common messages"
        );
    }
}
