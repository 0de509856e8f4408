//! Tickets: one per sold seat, what the door lets in.
//!
//! A ticket is made with its order (in the purchase's transaction) and revoked with its seat's
//! cancellation (in the cancellation's). Its pass — the QR payload, see
//! [`holdfast_common::ticket_pass`] — names its version and secret; only the current ones
//! enter, so renewing them (a transfer) revokes every copy of the old pass.

use holdfast_common::ticket_pass::Pass;
use serde::{Deserialize, Serialize};

use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::order::Order;

/// What a ticket is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// It enters (once, or again after an exit where the event allows re-entry).
    Valid,
    /// Its seat was cancelled: the door refuses it.
    Cancelled,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "valid" => Some(Self::Valid),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// A UUID.
    pub ticket_id: String,
    pub event_id: EventId,
    pub seat_id: SeatId,
    pub order_id: OrderId,
    /// Who holds it: the buyer's user id.
    pub holder_id: String,
    pub status: TicketStatus,
    /// Starts at 1; renewed with the secret.
    pub version: u32,
    /// 12 hexadecimal digits: the pass's 6 secret bytes.
    pub secret: String,
    /// When it first entered (Unix ms) and at which gate.
    pub entered_at_ms: Option<i64>,
    pub entry_gate: Option<String>,
    /// Whether it is inside now (entered and not since scanned out).
    pub inside: bool,
    /// When any of the above last changed (Unix ms): what offline scanners sync by.
    pub changed_at_ms: i64,
}

impl Ticket {
    /// The tickets of a new order: one per seat, each with its own id and secret.
    pub fn issue(order: &Order) -> Vec<Self> {
        order
            .seat_ids
            .iter()
            .map(|seat| Self {
                ticket_id: uuid::Uuid::new_v4().to_string(),
                event_id: order.event_id.clone(),
                seat_id: seat.clone(),
                order_id: order.order_id.clone(),
                holder_id: order.user_id.clone(),
                status: TicketStatus::Valid,
                version: 1,
                secret: new_secret(),
                entered_at_ms: None,
                entry_gate: None,
                inside: false,
                changed_at_ms: order.created_at_ms,
            })
            .collect()
    }

    /// What its pass says; `None` for a record whose id or secret does not read back (the
    /// store holds only ones this module made).
    pub fn pass(&self) -> Option<Pass> {
        Some(Pass {
            ticket_id: uuid::Uuid::parse_str(&self.ticket_id).ok()?,
            version: self.version,
            secret: decode_secret(&self.secret)?,
            event_id: self.event_id.to_string(),
            seat_id: self.seat_id.to_string(),
        })
    }

    /// Whether `pass` is this ticket's current pass (an older version's is revoked).
    pub fn is_current(&self, pass: &Pass) -> bool {
        self.version == pass.version && decode_secret(&self.secret) == Some(pass.secret)
    }
}

/// 6 random bytes as 12 hexadecimal digits.
fn new_secret() -> String {
    let random = uuid::Uuid::new_v4();
    random.as_bytes()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_secret(hex: &str) -> Option<[u8; 6]> {
    if hex.len() != 12 {
        return None;
    }
    let mut secret = [0u8; 6];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::OrderStatus;

    fn order() -> Order {
        Order {
            order_id: OrderId::from("o1"),
            user_id: "u1".into(),
            event_id: EventId::from("6650c0ffee0000000000abcd"),
            seat_ids: vec![SeatId::from("R1-S1"), SeatId::from("R1-S2")],
            amount_minor: 2000,
            currency: "EUR".into(),
            payment_intent_id: "pi".into(),
            status: OrderStatus::Bought,
            created_at_ms: 5,
            cancelled_seat_ids: vec![],
            cancelled_at_ms: vec![],
            refunded_minor: 0,
            revision: 0,
            email: None,
        }
    }

    #[test]
    fn an_order_issues_one_ticket_per_seat_each_with_its_own_id_and_secret() {
        let tickets = Ticket::issue(&order());
        assert_eq!(tickets.len(), 2);
        assert_ne!(tickets[0].ticket_id, tickets[1].ticket_id);
        assert_ne!(tickets[0].secret, tickets[1].secret);
        assert_eq!(tickets[1].seat_id, "R1-S2");
        let pass = tickets[0].pass().unwrap();
        assert_eq!((pass.version, pass.seat_id.as_str()), (1, "R1-S1"));
        assert!(tickets[0].is_current(&pass));
        assert!(!tickets[1].is_current(&pass));
    }

    #[test]
    fn a_renewed_ticket_refuses_its_old_pass() {
        let mut ticket = Ticket::issue(&order()).remove(0);
        let old = ticket.pass().unwrap();
        ticket.version += 1;
        assert!(!ticket.is_current(&old));
        ticket.version -= 1;
        ticket.secret = new_secret();
        assert!(!ticket.is_current(&old));
    }
}
