//! Identifiers, each its own type, parsed once where a request or a message enters the service
//! (or read back from a store that only ever held parsed ones), so that no function below the
//! edge takes a bare string for an id and no two kinds of id can be swapped.
//!
//! Each reads as the string it wraps (`Deref<Target = str>`) and travels as that string (serde
//! `transparent`), so keys, stored records and answers keep their spelling.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id read back from the order store or the TTL store, which hold only ids that
            /// were parsed when they entered.
            pub fn from_stored(stored: String) -> Self {
                Self(stored)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        /// Tests name ids by literals.
        #[cfg(test)]
        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }
    };
}

id_type!(
    /// An event's id in its canonical spelling (24 lower-case hexadecimal digits, see
    /// [`holdfast_common::ids`]), so that hold keys, sold-seat records and the layout cache all
    /// see one spelling of it.
    EventId
);

id_type!(
    /// A hold's id: a UUID, `offer-` and a UUID for the waitlist's offers.
    HoldId
);

id_type!(
    /// An order's id: a UUID.
    OrderId
);

id_type!(
    /// A seat's id as its event's layout names it (`R<row>-S<number>` on a grid); whether the
    /// event has the seat is the layout's to say (see [`crate::domain::hold::SeatRequest`]).
    SeatId
);

impl EventId {
    /// The id `raw` names, in any case; `None` when it is no event id.
    pub fn parse(raw: &str) -> Option<Self> {
        holdfast_common::ids::object_id(raw).map(Self)
    }
}

impl HoldId {
    /// A new hold id; `offer` ones are marked as the waitlist's.
    pub fn new(offer: bool) -> Self {
        let id = uuid::Uuid::new_v4();
        Self(if offer {
            format!("{}{id}", crate::domain::hold::OFFER_PREFIX)
        } else {
            id.to_string()
        })
    }

    /// The id a caller names in a path; any text may be looked up (an unknown one is simply
    /// not found).
    pub fn named(raw: &str) -> Self {
        Self(raw.to_string())
    }
}

impl OrderId {
    /// A new order id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id a caller names in a path or a message; any text may be looked up.
    pub fn named(raw: &str) -> Self {
        Self(raw.to_string())
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl SeatId {
    /// The seat a request or a message names; checked against the layout later.
    pub fn named(raw: &str) -> Self {
        Self(raw.to_string())
    }

    /// Every seat of `raw`, in order.
    pub fn all(raw: &[String]) -> Vec<Self> {
        raw.iter().map(|seat| Self::named(seat)).collect()
    }

    /// The seats as plain text, for messages and answers.
    pub fn texts(seats: &[SeatId]) -> Vec<String> {
        seats.iter().map(|seat| seat.0.clone()).collect()
    }

    /// The seats as borrowed text, for answers.
    pub fn strs(seats: &[SeatId]) -> Vec<&str> {
        seats.iter().map(SeatId::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{EventId, HoldId};

    #[test]
    fn an_event_id_is_read_in_any_case_and_kept_in_one() {
        let id = EventId::parse("6650C0FFEE0000000000ABCD").unwrap();
        assert_eq!(id.as_str(), "6650c0ffee0000000000abcd");
        assert_eq!(EventId::parse("6650c0ffee0000000000abcd"), Some(id));
        assert_eq!(EventId::parse("nope"), None);
        assert_eq!(EventId::parse("6650c0ffee0000000000abcd0"), None);
    }

    #[test]
    fn ids_travel_as_their_text() {
        let id = EventId::parse("6650c0ffee0000000000abcd").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"6650c0ffee0000000000abcd\""
        );
        let offer = HoldId::new(true);
        assert!(offer.starts_with("offer-"), "{offer}");
        assert!(!HoldId::new(false).starts_with("offer-"));
    }
}
