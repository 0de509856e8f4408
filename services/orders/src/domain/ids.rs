//! Identifiers, parsed once where a request or a message enters the service.

use std::fmt;
use std::ops::Deref;

/// An event's id in its canonical spelling (24 lower-case hexadecimal digits, see
/// [`holdfast_common::ids`]), so that hold keys, sold-seat records and the layout cache all see
/// one spelling of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// The id `raw` names, in any case; `None` when it is no event id.
    pub fn parse(raw: &str) -> Option<Self> {
        holdfast_common::ids::object_id(raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for EventId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::EventId;

    #[test]
    fn an_event_id_is_read_in_any_case_and_kept_in_one() {
        let id = EventId::parse("6650C0FFEE0000000000ABCD").unwrap();
        assert_eq!(id.as_str(), "6650c0ffee0000000000abcd");
        assert_eq!(EventId::parse("6650c0ffee0000000000abcd"), Some(id));
        assert_eq!(EventId::parse("nope"), None);
        assert_eq!(EventId::parse("6650c0ffee0000000000abcd0"), None);
    }
}
